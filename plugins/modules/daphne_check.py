#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: daphne_check
short_description: Check one daphne process over its own socket with its probes, and optionally the app's health check
version_added: 0.1.0
description:
  - Talks to one ASGI server process (daphne) directly on its unix socket or TCP address, whatever a balancer in
    front of it would choose. A rollout uses it after restarting a process, before the next one goes down.
  - With O(probe) (the default), first the probes of the collection's ASGI entry point, which every daphne
    process of the daphne role runs, so that no application URL is needed - an HTTP/1.1 C(GET
    /__webstack__/probe), which must answer 200 with JSON naming the release the process loaded (with
    O(expect_release), that release), then a websocket on C(/__webstack__/ws) that must echo one message. The
    entry point answers them only to requests without C(X-Forwarded-For), C(X-Real-IP) or C(Forwarded), so
    through a front they go to the application.
  - Then, when given, the application's own checks - an HTTP/1.1 C(GET) of O(health_path), which must answer
    O(expect_status) (and, without O(probe), with O(expect_release), report that release in the C(release)
    field of its JSON), and a websocket (RFC 6455) on O(websocket_path).
  - Each websocket check - the handshake must answer 101 with the right C(Sec-WebSocket-Accept) - sends one
    text message, expects the first message that comes back to contain it, then closes the websocket with
    code 1000.
  - With O(wait), the checks are repeated every O(poll_interval) seconds until all pass or O(wait) seconds
    have passed, so a task needs no C(until)/C(retries) loop while the process starts.
  - On failure the message is one line naming the process, the check that failed and why, and how many
    attempts were made in how long.
  - Read-only. It never changes anything and reports RV(ignore:changed=false).
author:
  - webstack.django_uwsgi maintainers (@webstack)
attributes:
  check_mode:
    description: Read-only; the checks run in check mode too, so a C(--check) run tests the live processes.
    support: full
  diff_mode:
    description: Nothing changes, so there is nothing to diff.
    support: none
options:
  unix_socket:
    description:
      - Path of the unix socket the process listens on (daphne's C(-u)).
      - The sockets of this collection live in a 2750 directory; run the task with C(become=true).
      - Mutually exclusive with O(address); one of the two is required.
    type: path
  address:
    description:
      - TCP C(host:port) the process listens on (daphne's C(-b) and C(-p)), for example C(127.0.0.1:8001) or
        C([::1]:8001).
      - Mutually exclusive with O(unix_socket); one of the two is required.
    type: str
  host:
    description:
      - Host header of both requests; the websocket's C(Origin) is C(http://) followed by it unless O(headers)
        gives one. Django answers 400
        and channels' origin validator refuses the websocket unless it is in C(ALLOWED_HOSTS).
    type: str
    default: localhost
  headers:
    description:
      - Further headers sent with both requests, for example C(X-Forwarded-Proto=https) when the app redirects
        plain HTTP and trusts that header from the front.
      - An C(Origin) entry replaces the default C(http://<host>) of the websocket; C(Host) and the headers of
        the websocket handshake itself are ignored.
    type: dict
    default: {}
  probe:
    description:
      - Check the process with the probes of the collection's ASGI entry point (C(GET /__webstack__/probe) and
        a websocket echo on C(/__webstack__/ws)) before the application's own checks.
      - V(false) for a daphne process that does not run that entry point; then O(health_path) or
        O(websocket_path) is needed.
      - O(headers) must not hold C(X-Forwarded-For), C(X-Real-IP) or C(Forwarded) then (the probes would pass
        the request on to the application).
    type: bool
    default: true
  health_path:
    description:
      - Path (with an optional query string) of the application's HTTP health check, an extra gate after the
        probes.
      - An empty string skips the HTTP check.
    type: str
    default: ""
  expect_status:
    description:
      - HTTP status the health check of O(health_path) must answer (the probe always must answer 200).
    type: int
    default: 200
  expect_release:
    description:
      - Release the probe's JSON (without O(probe), the health check's JSON) must report in its C(release)
        field.
      - When omitted or empty, any release (or none) passes. Needs O(probe) or O(health_path).
    type: str
  websocket_path:
    description:
      - Path of an application websocket endpoint that sends every text message back to its sender, an extra
        gate after the probes.
      - An empty string skips that check.
    type: str
    default: ""
  timeout:
    description:
      - Seconds allowed for each check of one attempt (connect, request and answer).
    type: float
    default: 5
  wait:
    description:
      - Seconds to keep retrying until every check passes. V(0) makes one attempt.
      - The last attempt starts when O(wait) has run out; like every attempt it is allowed O(timeout) per check.
    type: float
    default: 0
  poll_interval:
    description:
      - Seconds between the end of a failed attempt and the next one when O(wait) is set (shorter before the
        last attempt, which starts when O(wait) has run out).
    type: float
    default: 1
notes:
  - Without O(probe), at least one of O(health_path) and O(websocket_path) must be given; the module fails when
    both are empty rather than report a check that checked nothing.
  - The echo passes when the first data message that comes back contains the text sent, so an endpoint that
    wraps the echo (for example in JSON) passes too. Ping frames are answered while waiting.
seealso:
  - module: webstack.django_uwsgi.uwsgi_request
  - name: The WebSocket Protocol (RFC 6455)
    description: Opening handshake, framing and closing of a websocket.
    link: https://www.rfc-editor.org/rfc/rfc6455
"""

EXAMPLES = r"""
- name: Check daphne0 serves release v2 (its probes), waiting up to 60 s after its restart
  webstack.django_uwsgi.daphne_check:
    unix_socket: /run/daphne/daphne0.sock
    host: www.example.com
    expect_release: v2
    wait: 60
  become: true

- name: Check a daphne process on a TCP port once, with a short timeout
  webstack.django_uwsgi.daphne_check:
    address: 127.0.0.1:8001
    timeout: 2
  register: daphne1

- name: Show what the probe said
  ansible.builtin.debug:
    msg: "daphne1 serves {{ daphne1.probe.release }}, close code {{ daphne1.probe_websocket.close_code }}"

- name: Also ask the application's health check and websocket echo
  webstack.django_uwsgi.daphne_check:
    unix_socket: /run/daphne/daphne1.sock
    health_path: /healthz
    websocket_path: /ws/chat/echo/
  become: true

- name: Check a daphne process that does not run the collection's entry point
  webstack.django_uwsgi.daphne_check:
    address: 127.0.0.1:9001
    probe: false
    health_path: /healthz
    expect_release: v2
"""

RETURN = r"""
target:
  description: The process as messages name it, C(unix:<path>) or C(host:port).
  returned: always
  type: str
  sample: unix:/run/daphne/daphne0.sock
probe:
  description: Result of the last probe (C(GET /__webstack__/probe)); null without O(probe).
  returned: always
  type: dict
  contains:
    path:
      description: C(/__webstack__/probe).
      type: str
      sample: /__webstack__/probe
    ok:
      description: Whether the probe passed (status 200 and release).
      type: bool
      sample: true
    status:
      description: HTTP status of the answer (null when no answer came).
      type: int
      sample: 200
    json:
      description: The answer, C(release), C(process) (the supervisor program's process name) and C(pid).
      type: raw
      sample: {"release": "v2", "process": "daphne0", "pid": 4711}
    release:
      description: The C(release) field of RV(probe.json), null when absent.
      type: str
      sample: v2
    body:
      description: The body as text, cut after 500 characters.
      type: str
      sample: '{"release": "v2", "process": "daphne0", "pid": 4711}'
    error:
      description: Why the probe failed, null when it passed.
      type: str
      sample: reports release v1 (expected v2)
probe_websocket:
  description: Result of the last websocket probe (C(/__webstack__/ws)), keys as RV(websocket); null without O(probe).
  returned: always
  type: dict
healthz:
  description: Result of the last HTTP health check; null when O(health_path) is empty or no attempt got that far.
  returned: always
  type: dict
  contains:
    path:
      description: The path asked.
      type: str
      sample: /healthz
    ok:
      description: Whether the health check passed (status and release).
      type: bool
      sample: true
    status:
      description: HTTP status of the answer (null when no answer came).
      type: int
      sample: 200
    json:
      description: The body decoded as JSON, else null.
      type: raw
      sample: {"status": "ok", "release": "v2", "server": "daphne"}
    release:
      description: The C(release) field of RV(healthz.json), null when absent.
      type: str
      sample: v2
    body:
      description: The body as text, cut after 500 characters.
      type: str
      sample: '{"status": "ok", "release": "v2", "server": "daphne"}'
    error:
      description: Why the check failed, null when it passed.
      type: str
      sample: answered 404 (expected 200)
  sample: {"path": "/healthz", "ok": true, "status": 200, "json": {"status": "ok", "release": "v2"},
           "release": "v2", "body": '{"status": "ok", "release": "v2"}', "error": null}
websocket:
  description: Result of the last websocket check; null when O(websocket_path) is empty or no attempt got that far.
  returned: always
  type: dict
  contains:
    path:
      description: The path asked.
      type: str
      sample: /ws/echo/
    ok:
      description: Whether the message came back.
      type: bool
      sample: true
    status:
      description: HTTP status of the handshake answer (101 when it was accepted).
      type: int
      sample: 101
    sent:
      description: The text message sent.
      type: str
      sample: daphne_check 6F1A02C3D4E5
    echoed:
      description: The message that came back (null when none came).
      type: str
      sample: daphne_check 6F1A02C3D4E5
    close_code:
      description: Close code of the server's close frame (null when the server sent none).
      type: int
      sample: 1000
    error:
      description: Why the check failed, null when it passed.
      type: str
      sample: connection closed without echo
attempts:
  description: How many attempts were made.
  returned: always
  type: int
  sample: 3
elapsed:
  description: Seconds from the first attempt until the result.
  returned: always
  type: float
  sample: 2.04
failed_check:
  description: V(probe), V(probe_websocket), V(healthz) or V(websocket), the check that failed last.
  returned: failure
  type: str
  sample: healthz
reason_code:
  description:
    - Short key of the last failure, one of V(refused), V(missing), V(permission), V(connect), V(timeout),
      V(reset), V(empty), V(not_http), V(too_large), V(status), V(release), V(handshake), V(no_echo),
      V(mismatch).
  returned: failure
  type: str
  sample: status
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.webstack.django_uwsgi.plugins.module_utils.asgi_probe import (
    ProbeError,
    describe_target,
    http_get,
    parse_target,
    websocket_echo,
)

BODY_QUOTE = 500


PROBE_PATH = '/__webstack__/probe'
PROBE_WS_PATH = '/__webstack__/ws'
PROXY_HEADERS = ('x-forwarded-for', 'x-real-ip', 'forwarded')


def check_http(target, p, path, expect_release):
    result = {'path': path, 'ok': False, 'status': None, 'json': None, 'release': None,
              'body': None, 'error': None}
    try:
        answer = http_get(target, path, host=p['host'], timeout=p['timeout'], headers=p['headers'])
    except ProbeError as exc:
        result['error'] = str(exc)
        return result, exc.reason
    text = answer['body'].decode('utf-8', 'replace')
    doc = answer['json']
    release = doc.get('release') if isinstance(doc, dict) else None
    result.update(status=answer['status'], json=doc, body=text if len(text) <= BODY_QUOTE else text[:BODY_QUOTE] + '...',
                  release=None if release is None else str(release))
    expected = 200 if path == PROBE_PATH and p['probe'] else p['expect_status']
    if answer['status'] != expected:
        result['error'] = 'answered %d (expected %d)' % (answer['status'], expected)
        return result, 'status'
    if expect_release and result['release'] != expect_release:
        if result['release'] is None:
            seen = 'no release (the body is not JSON with a release field)'
        else:
            seen = 'release %s' % result['release']
        result['error'] = 'reports %s (expected %s)' % (seen, expect_release)
        return result, 'release'
    result['ok'] = True
    return result, None


def check_health(target, p):
    return check_http(target, p, p['health_path'], None if p['probe'] else p['expect_release'])


def check_websocket(target, p, path=None):
    path = path or p['websocket_path']
    result = {'path': path, 'ok': False, 'status': None, 'sent': None, 'echoed': None,
              'close_code': None, 'error': None}
    try:
        result.update(websocket_echo(target, path, host=p['host'], timeout=p['timeout'],
                                     headers=p['headers']))
    except ProbeError as exc:
        result.update(exc.details)
        result.update(ok=False, error=str(exc))
        return result, exc.reason
    return result, None


# name, label in messages, check
CHECKS = (
    ('probe', 'probe', lambda target, p: check_http(target, p, PROBE_PATH, p['expect_release'])),
    ('probe_websocket', 'websocket probe', lambda target, p: check_websocket(target, p, PROBE_WS_PATH)),
    ('healthz', 'health check', check_health),
    ('websocket', 'websocket', check_websocket),
)


def wanted(name, p):
    return {'probe': p['probe'], 'probe_websocket': p['probe'], 'healthz': bool(p['health_path']),
            'websocket': bool(p['websocket_path'])}[name]


def main():
    module = AnsibleModule(
        argument_spec=dict(
            unix_socket=dict(type='path'),
            address=dict(type='str'),
            host=dict(type='str', default='localhost'),
            headers=dict(type='dict', default={}),
            probe=dict(type='bool', default=True),
            health_path=dict(type='str', default=''),
            expect_status=dict(type='int', default=200),
            expect_release=dict(type='str'),
            websocket_path=dict(type='str', default=''),
            timeout=dict(type='float', default=5),
            wait=dict(type='float', default=0),
            poll_interval=dict(type='float', default=1),
        ),
        mutually_exclusive=[('unix_socket', 'address')],
        required_one_of=[('unix_socket', 'address')],
        supports_check_mode=True,
    )
    p = module.params
    try:
        target = parse_target(p['unix_socket'], p['address'])
    except ProbeError as exc:
        module.fail_json(msg=str(exc))
    label = describe_target(target)

    problems = []
    if not p['probe'] and not p['health_path'] and not p['websocket_path']:
        problems.append('probe is false and health_path and websocket_path are both empty: give at least one '
                        'check to run')
    for name in ('health_path', 'websocket_path'):
        if p[name] and not p[name].startswith('/'):
            problems.append('%s must start with / (or be empty to skip that check), got %r' % (name, p[name]))
    if p['expect_release'] and not p['health_path'] and not p['probe']:
        problems.append('expect_release needs the probe or the health check, but probe is false and health_path '
                        'is empty')
    if p['probe'] and any(name.lower() in PROXY_HEADERS for name in p['headers']):
        problems.append('headers must not hold %s with probe: the probes answer only requests that did not come '
                        'through a proxy' % ', '.join(PROXY_HEADERS))
    if not p['host'] or any(c in p['host'] for c in ' \r\n'):
        problems.append('host must be a host name without spaces, got %r' % p['host'])
    for name, value in p['headers'].items():
        if not name or any(c in name for c in ' :\r\n') or any(c in str(value) for c in '\r\n'):
            problems.append('headers must map header names (no spaces or colons) to one-line values, got %r: %r'
                            % (name, value))
    if not 100 <= p['expect_status'] <= 599:
        problems.append('expect_status must be an HTTP status from 100 to 599, got %s' % p['expect_status'])
    if p['timeout'] <= 0:
        problems.append('timeout must be a positive number of seconds, got %s' % p['timeout'])
    if p['wait'] < 0:
        problems.append('wait must be 0 (one attempt) or a positive number of seconds, got %s' % p['wait'])
    if p['poll_interval'] <= 0:
        problems.append('poll_interval must be a positive number of seconds, got %s' % p['poll_interval'])
    if problems:
        module.fail_json(msg='; '.join(problems), target=label)

    started = time.time()
    attempts = 0
    while True:
        attempts += 1
        results = dict((name, None) for name, _label, _check in CHECKS)
        failed = reason = None
        for name, _label, check in CHECKS:
            if not wanted(name, p):
                continue
            results[name], reason = check(target, p)
            if reason:
                failed = name
                break
        elapsed = round(time.time() - started, 3)
        if not failed or elapsed >= p['wait']:
            break
        time.sleep(min(p['poll_interval'], p['wait'] - elapsed))

    result = dict(changed=False, target=label, attempts=attempts, elapsed=elapsed, **results)
    if failed:
        what = dict((name, title) for name, title, _check in CHECKS)[failed]
        error = results[failed]['error']
        path = results[failed]['path']
        if reason in ('status', 'release') and failed in ('probe', 'healthz'):
            what = '%s %s %s' % (what, path, error)
        else:
            what = '%s %s: %s' % (what, path, error)
        result['msg'] = 'daphne at %s: %s after %d attempt%s in %.1f s' % (
            label, what, attempts, '' if attempts == 1 else 's', elapsed)
        module.fail_json(failed_check=failed, reason_code=reason, **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()

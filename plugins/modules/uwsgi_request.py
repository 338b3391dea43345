#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: uwsgi_request
short_description: Send one HTTP request to a uWSGI instance over its own socket in the uwsgi protocol
version_added: 0.1.0
description:
  - Builds a uwsgi protocol packet (modifier1 V(0), the vars C(REQUEST_METHOD), C(REQUEST_URI), C(PATH_INFO),
    C(QUERY_STRING), C(SERVER_NAME), C(SERVER_PORT), C(HTTP_HOST), C(SERVER_PROTOCOL) plus the given headers),
    sends it to the instance's unix or TCP socket exactly as nginx's C(uwsgi_pass) would, and reads the raw HTTP
    response until the instance closes the connection.
  - This asks one instance directly, whatever a balancer in front of it would choose. A rollout uses it to prove
    that the instance it just reloaded serves the new release.
  - With O(probe), the request is the probe of the collection's WSGI entry point (which every instance of the uwsgi
    role runs) - C(GET /__webstack__/probe) with the uwsgi var C(WEBSTACK_PROBE=1), answered by the entry point
    itself, after the app imported, with JSON naming the C(release) the worker loaded, the C(instance), the uWSGI
    C(worker) id and the C(pid); so no application URL is needed. Requests through nginx never carry that var.
  - Returns the status, the headers, the body and, when the body is JSON, the decoded document. Fails when the
    status is not in O(status_code), when the socket cannot be reached or when the answer is not HTTP.
  - Only C(GET) and C(HEAD) are offered, so the module never changes anything and reports RV(ignore:changed=false).
author:
  - webstack.django_uwsgi maintainers (@webstack)
attributes:
  check_mode:
    description: Read-only; the request is made in check mode too, so health checks work in C(--check) runs.
    support: full
  diff_mode:
    description: Nothing changes, so there is nothing to diff.
    support: none
options:
  socket:
    description:
      - The instance's uwsgi socket, as its C(socket) option spells it. A value starting with C(/) (or C(unix:))
        is a unix socket path, C(@name) a socket in the abstract namespace, anything else a TCP C(host:port).
      - The sockets of this collection are mode 0660 for the app user and the nginx group; run the task with
        C(become=true) or as a member of that group.
    type: str
    required: true
  path:
    description:
      - Path of the request (C(PATH_INFO)). A query string after C(?) is split off into C(QUERY_STRING) unless
        O(query_string) is given.
      - Defaults to C(/__webstack__/probe) with O(probe), else to C(/).
    type: str
  probe:
    description:
      - Send the uwsgi var C(WEBSTACK_PROBE=1), so that the collection's WSGI entry point answers
        C(/__webstack__/probe) itself.
      - The task then also fails when the answer (with a status in O(status_code)) is not JSON with a C(release)
        field, for an instance that does not run that entry point.
    type: bool
    default: false
  probe_workers:
    description:
      - With O(probe), the number of workers of the instance; the probe is then sent in concurrent bursts until
        every worker id from 1 to this number answered (or O(timeout) passed), and every answer must pass
        O(expect_release) and O(expect_instance). V(0) sends one probe.
      - The task fails naming the worker that answered wrong, or the workers that never answered.
    type: int
    default: 0
  expect_release:
    description:
      - With O(probe), the release every probe answer must report (the release its worker loaded).
    type: str
  expect_instance:
    description:
      - With O(probe), the instance every probe answer must report.
    type: str
  query_string:
    description:
      - Query string without the leading C(?).
    type: str
    default: ""
  method:
    description:
      - Request method. Only read-only methods are offered.
    type: str
    choices: [GET, HEAD]
    default: GET
  host:
    description:
      - Host header (C(HTTP_HOST)) and C(SERVER_NAME). Django answers 400 unless it is in C(ALLOWED_HOSTS).
    type: str
    default: localhost
  server_port:
    description:
      - C(SERVER_PORT) of the request, the port the client would have reached the front on.
    type: int
    default: 80
  headers:
    description:
      - Further request headers, sent as C(HTTP_<NAME>) vars (C(X-Forwarded-Proto) becomes
        C(HTTP_X_FORWARDED_PROTO)). A C(Host) entry is ignored; use O(host).
    type: dict
    default: {}
  extra_vars:
    description:
      - Further uwsgi vars sent as they are, for example C(HTTPS=on) or C(REMOTE_ADDR). O(probe) adds
        C(WEBSTACK_PROBE=1).
    type: dict
    default: {}
  status_code:
    description:
      - Statuses that count as success; any other status fails the task (its body is quoted in the message).
    type: list
    elements: int
    default: [200]
  timeout:
    description:
      - Seconds allowed for connecting and reading the whole answer.
    type: float
    default: 5
notes:
  - One request per call; combine it with C(until)/C(retries) to wait for an instance.
  - Unlike M(ansible.builtin.uri), no HTTP listener is needed; uWSGI instances behind nginx usually have none.
seealso:
  - module: webstack.django_uwsgi.uwsgi_stats
  - module: webstack.django_uwsgi.uwsgi_chain_reload
  - name: The uwsgi protocol
    description: Packet header and vars block of the uwsgi protocol.
    link: https://uwsgi-docs.readthedocs.io/en/latest/Protocol.html
"""

EXAMPLES = r"""
- name: Ask a worker of web1 itself which release it loaded (the probe)
  webstack.django_uwsgi.uwsgi_request:
    socket: /run/uwsgi/web1/uwsgi.sock
    probe: true
  become: true
  register: web1_probe

- name: Check that each of the 4 workers of web1 loaded release v2
  webstack.django_uwsgi.uwsgi_request:
    socket: /run/uwsgi/web1/uwsgi.sock
    probe: true
    probe_workers: 4
    expect_release: v2
    expect_instance: web1
  become: true

- name: Check that web1 serves the new release
  ansible.builtin.assert:
    that: web1_probe.json.release == 'v2' and web1_probe.json.instance == 'web1'
    fail_msg: "worker {{ web1_probe.json.worker }} of web1 serves {{ web1_probe.json.release }}"

- name: Wait until an instance on a TCP socket answers 200
  webstack.django_uwsgi.uwsgi_request:
    socket: 10.0.0.5:3031
    path: /healthz
    host: www.example.com
    headers:
      X-Forwarded-Proto: https
    timeout: 3
  register: health
  until: health is succeeded
  retries: 30
  delay: 1

- name: Accept a 503 while the app is in maintenance
  webstack.django_uwsgi.uwsgi_request:
    socket: /run/uwsgi/web2/uwsgi.sock
    path: /healthz?deep=1
    status_code: [200, 503]
  become: true
"""

RETURN = r"""
status:
  description: HTTP status of the answer (absent when no answer came).
  returned: when an answer came
  type: int
  sample: 200
reason:
  description: Reason phrase of the status line.
  returned: when an answer came
  type: str
  sample: OK
headers:
  description: Response headers (repeated headers joined with C(, )).
  returned: when an answer came
  type: dict
  sample: {"Content-Type": "application/json", "Content-Length": "97"}
body:
  description: Response body as text (undecodable bytes replaced).
  returned: when an answer came
  type: str
  sample: '{"release": "v2", "instance": "web1", "worker": 3, "pid": 5120}'
json:
  description: The decoded body when it is JSON, else null.
  returned: when an answer came
  type: raw
  sample: {"release": "v2", "instance": "web1", "worker": 3, "pid": 5120}
elapsed:
  description: Seconds from connecting until the answer was read.
  returned: when an answer came
  type: float
  sample: 0.0123
workers:
  description: With O(probe_workers), the probe answer of each worker id that answered.
  returned: with O(probe_workers)
  type: dict
  sample: {"1": {"release": "v2", "instance": "web1", "worker": 1, "pid": 5118}}
failed_worker:
  description: With O(probe), the worker whose answer failed O(expect_release) or O(expect_instance), or the first
    that did not answer.
  returned: failure of a probe check
  type: int
  sample: 3
socket:
  description: The socket as given.
  returned: always
  type: str
  sample: /run/uwsgi/web1/uwsgi.sock
request_vars:
  description: The uwsgi vars that were sent.
  returned: when an answer came
  type: dict
  sample: {"REQUEST_METHOD": "GET", "REQUEST_URI": "/healthz", "PATH_INFO": "/healthz", "QUERY_STRING": "",
           "SERVER_NAME": "localhost", "SERVER_PORT": "80", "HTTP_HOST": "localhost", "SERVER_PROTOCOL": "HTTP/1.1"}
reason_code:
  description:
    - Why the request failed without an HTTP answer, one of V(refused), V(missing), V(permission), V(connect),
      V(timeout), V(reset), V(empty), V(not_http), V(too_large), V(bad_address); with O(probe) also V(no_probe)
      (an answer that is not the probe's JSON), V(release), V(instance) (an answer failing O(expect_release) or
      O(expect_instance)) and V(unseen) (workers that did not answer).
  returned: failure without an answer, or with O(probe) an answer that is not the probe's
  type: str
  sample: refused
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.webstack.django_uwsgi.plugins.module_utils.uwsgi_protocol import (
    UwsgiProtocolError,
    body_json,
    body_text,
    probe_workers,
    uwsgi_request,
)

BODY_QUOTE = 500
PROBE_PATH = '/__webstack__/probe'


def wrong_answer(p, doc):
    """(message, reason) when the probe answer ``doc`` fails the expectations, else None."""
    where = 'worker %s of %s' % (doc.get('worker'), p['expect_instance'] or p['socket'])
    if p['expect_instance'] and doc.get('instance') != p['expect_instance']:
        return ('worker %s on %s answered the probe as instance %s instead of %s'
                % (doc.get('worker'), p['socket'], doc.get('instance'), p['expect_instance']), 'instance')
    if p['expect_release'] and str(doc.get('release')) != p['expect_release']:
        return ('%s (pid %s) answered the probe with release %s instead of %s'
                % (where, doc.get('pid'), doc.get('release'), p['expect_release']), 'release')
    return None


def check_workers(module, p):
    """Probe until every worker answered; fail naming the first wrong or missing worker."""
    try:
        seen = probe_workers(p['socket'], p['probe_workers'], host=p['host'], timeout=p['timeout'],
                             request_timeout=min(p['timeout'], 5.0))
    except UwsgiProtocolError as exc:
        module.fail_json(msg='probe of %s: %s' % (p['socket'], exc), socket=p['socket'], reason_code=exc.reason,
                         changed=False)
    result = dict(changed=False, socket=p['socket'], workers=dict((str(k), v) for k, v in seen['workers'].items()),
                  json=seen['answers'][0] if seen['answers'] else None, status=200, attempts=seen['attempts'])
    for doc in seen['answers']:
        problem = wrong_answer(p, doc)
        if problem:
            module.fail_json(msg=problem[0], reason_code=problem[1], failed_worker=doc.get('worker'), **result)
    if seen['missing']:
        module.fail_json(
            msg='worker%s %s of %s did not answer the probe within %s s (%d probes; workers %s answered)'
                % ('' if len(seen['missing']) == 1 else 's', ', '.join(str(w) for w in seen['missing']),
                   p['expect_instance'] or p['socket'], p['timeout'], seen['attempts'],
                   ', '.join(str(w) for w in sorted(seen['workers'])) or 'none'),
            reason_code='unseen', failed_worker=seen['missing'][0], **result)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type='str', required=True),
            path=dict(type='str'),
            probe=dict(type='bool', default=False),
            probe_workers=dict(type='int', default=0),
            expect_release=dict(type='str'),
            expect_instance=dict(type='str'),
            query_string=dict(type='str', default=''),
            method=dict(type='str', default='GET', choices=['GET', 'HEAD']),
            host=dict(type='str', default='localhost'),
            server_port=dict(type='int', default=80),
            headers=dict(type='dict', default={}),
            extra_vars=dict(type='dict', default={}),
            status_code=dict(type='list', elements='int', default=[200]),
            timeout=dict(type='float', default=5),
        ),
        supports_check_mode=True,
    )
    p = module.params
    if p['path'] is None:
        p['path'] = PROBE_PATH if p['probe'] else '/'
    extra_vars = dict(p['extra_vars'])
    if p['probe']:
        extra_vars['WEBSTACK_PROBE'] = '1'
    if p['timeout'] <= 0:
        module.fail_json(msg='timeout must be a positive number of seconds, got %s' % p['timeout'], socket=p['socket'])
    if not p['path'].startswith('/'):
        module.fail_json(msg='path must start with /, got %r' % p['path'], socket=p['socket'])
    if not 1 <= p['server_port'] <= 65535:
        module.fail_json(msg='server_port must be between 1 and 65535, got %s' % p['server_port'], socket=p['socket'])

    if p['probe_workers'] or p['expect_release'] or p['expect_instance']:
        if not p['probe']:
            module.fail_json(msg='probe_workers, expect_release and expect_instance need probe: true',
                             socket=p['socket'])
        if p['probe_workers'] < 0:
            module.fail_json(msg='probe_workers must be 0 or a number of workers, got %s' % p['probe_workers'],
                             socket=p['socket'])
    if p['probe'] and p['probe_workers']:
        check_workers(module, p)

    try:
        response = uwsgi_request(
            p['socket'], method=p['method'], path=p['path'], query_string=p['query_string'], host=p['host'],
            server_port=p['server_port'], headers=p['headers'], extra_vars=extra_vars, timeout=p['timeout'])
    except UwsgiProtocolError as exc:
        module.fail_json(msg='%s %s on %s: %s' % (p['method'], p['path'], p['socket'], exc),
                         socket=p['socket'], reason_code=exc.reason, changed=False)

    text = body_text(response['body'])
    result = dict(
        changed=False,
        socket=p['socket'],
        status=response['status'],
        reason=response['reason'],
        headers=response['headers'],
        body=text,
        json=body_json(response['body'], response['headers']),
        elapsed=response['elapsed'],
        request_vars=response['vars'],
    )
    if response['status'] not in p['status_code']:
        quote = text if len(text) <= BODY_QUOTE else text[:BODY_QUOTE] + '...'
        result['msg'] = ('%s %s on %s answered %d %s, expected %s. Body: %s'
                         % (p['method'], p['path'], p['socket'], response['status'], response['reason'],
                            ', '.join(str(s) for s in p['status_code']), quote))
        module.fail_json(**result)
    if p['probe'] and not (isinstance(result['json'], dict) and 'release' in result['json']):
        quote = text if len(text) <= BODY_QUOTE else text[:BODY_QUOTE] + '...'
        result['msg'] = ('the probe %s on %s answered %d without the probe\'s JSON (release, instance, worker, pid): '
                         'the instance does not run the collection\'s WSGI entry point. Body: %s'
                         % (p['path'], p['socket'], response['status'], quote))
        module.fail_json(reason_code='no_probe', **result)
    if p['probe']:
        problem = wrong_answer(p, result['json'])
        if problem:
            module.fail_json(msg=problem[0], reason_code=problem[1], failed_worker=result['json'].get('worker'),
                             **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()

#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: uwsgi_chain_reload
short_description: Chain-reload a uWSGI instance worker by worker and wait until every worker is replaced
version_added: 0.1.0
description:
  - Snapshots the worker pids from the instance's stats server, triggers a chain reload and waits until every
    worker that was running (cheap workers are skipped) has a new pid, accepts requests and was spawned after
    the trigger.
  - The trigger is either the instance's C(touch-chain-reload) file, which the module touches, or the instance's
    C(master-fifo), to which the module writes the chain reload command C(c).
  - uWSGI replaces one worker at a time and only moves on when the new worker accepts, so a broken release takes
    at most one worker out of service. The module fails fast when the chain stalls, naming the worker, its
    respawn count and, when O(log_file) is given, the last lines of the instance log (for example the import
    error of the new code).
  - A stall is a worker that respawned more than O(max_respawns) times since the trigger, a replacement that does
    not accept within O(worker_timeout), a replacement that came up without an application (uWSGI without
    C(need-app) goes on in "full dynamic mode" when the import fails), or no progress for O(worker_timeout).
author:
  - webstack.django_uwsgi maintainers (@webstack)
attributes:
  check_mode:
    description: In check mode the module reads the worker pids and reports RV(ignore:changed=true) without triggering.
    support: full
  diff_mode:
    description: A reload changes processes, not files; there is nothing to diff.
    support: none
options:
  socket:
    description:
      - Stats server of the instance, as a unix socket path, C(host:port) or C(http://host:port) (see
        M(webstack.django_uwsgi.uwsgi_stats)).
    type: str
    required: true
  touch_file:
    description:
      - The instance's C(touch-chain-reload) file. It is created when missing and its modification time is moved
        forward by at least one second (uWSGI compares whole seconds).
      - Mutually exclusive with O(master_fifo).
    type: path
  master_fifo:
    description:
      - The instance's C(master-fifo). The module writes C(c) (chain reload) to it without blocking; it fails
        when no uWSGI master reads the FIFO.
      - Mutually exclusive with O(touch_file).
    type: path
  timeout:
    description:
      - Seconds allowed for the whole chain, from the trigger until the last worker is replaced.
    type: float
    default: 300
  worker_timeout:
    description:
      - Seconds allowed for one worker, from the moment its replacement starts (or the previous worker finished)
        until the replacement accepts. Set it above the application's start time.
    type: float
    default: 60
  poll_interval:
    description:
      - Seconds between two reads of the stats server while waiting.
    type: float
    default: 0.5
  max_respawns:
    description:
      - A worker that respawned more than this many times since the trigger is declared stalled at once
        (the new code crashes at start and uWSGI keeps respawning it).
    type: int
    default: 3
  require_app:
    description:
      - Declare a replacement failed when it accepts but has no application loaded while the worker it replaced
        had one. uWSGI reports this state when the new code fails to import and C(need-app) is off.
    type: bool
    default: true
  log_file:
    description:
      - The instance log file. When given, failure messages quote the line that explains the failure (the last
        exception line) and the last O(log_lines) lines.
      - It also lets the module see a chain reload that is still running (for example the stalled chain of a
        broken release after the previous code was put back). uWSGI ignores new triggers until that chain
        completes, so the module waits for it first (see RV(waited_for_running_chain)).
    type: path
  log_lines:
    description:
      - How many lines of O(log_file) to quote on failure.
    type: int
    default: 20
  stats_timeout:
    description:
      - Seconds allowed for one read of the stats server.
    type: float
    default: 5
  nudge_socket:
    description:
      - The instance's own request socket (unix socket path or C(host:port)). When given, and the chain has waited
        O(nudge_after) seconds for an old worker to exit, the module sends one light request to the instance every
        O(poll_interval) until that worker is gone - the probe of the collection's WSGI entry point
        (C(GET /__webstack__/probe) with the uwsgi var C(WEBSTACK_PROBE=1), answered without the app), or
        C(GET) O(nudge_path) when that is given.
      - uWSGI 2.0 ends the graceful reload of a worker with several threads only after each of its threads took
        one more request; on an instance without traffic every step of the chain would otherwise wait the
        instance's C(worker-reload-mercy). Under traffic the nudges are not needed and not sent.
    type: str
  nudge_path:
    description:
      - Path of a plain nudge request to the app instead of the probe; it should be cheap and harmless (a health
        check). Empty or omitted for the probe.
    type: str
    default: ""
  nudge_host:
    description:
      - Host header of the nudge request (one the application allows).
    type: str
    default: localhost
  nudge_after:
    description:
      - Seconds the chain waits for an old worker to exit before the first nudge.
    type: float
    default: 2
notes:
  - The stats sockets of this collection are root-only; run the task with C(become=true).
  - New workers load new code only when the instance runs with C(lazy-apps); without it they are forked from
    the master, which keeps the code it loaded at start.
  - The check that a worker was spawned after the trigger compares the worker's C(last_spawn) from the stats document with the trigger time,
    so the module must run on the host of the instance (the clocks must be the same).
seealso:
  - module: webstack.django_uwsgi.uwsgi_stats
  - name: uWSGI chain reloading
    description: How uWSGI replaces workers one at a time.
    link: https://uwsgi-docs.readthedocs.io/en/latest/articles/TheArtOfGracefulReloading.html#chain-reloading-lazy-apps
"""

EXAMPLES = r"""
- name: Chain-reload web1, nudging its idle threaded workers so that the chain does not wait worker-reload-mercy
  webstack.django_uwsgi.uwsgi_chain_reload:
    socket: /run/uwsgi/web1/stats.sock
    touch_file: /run/uwsgi/web1/chain-reload
    nudge_socket: /run/uwsgi/web1/uwsgi.sock
  become: true

- name: Chain-reload web1 by touching its trigger file
  webstack.django_uwsgi.uwsgi_chain_reload:
    socket: /run/uwsgi/web1/stats.sock
    touch_file: /run/uwsgi/web1/chain-reload
    log_file: /var/log/uwsgi/web1.log
    worker_timeout: 30
  become: true
  register: web1_reload

- name: Show how long each worker took
  ansible.builtin.debug:
    msg: "{{ web1_reload.workers | map(attribute='replaced_after') | list }}"

- name: Chain-reload through the master FIFO, polling every 200 ms
  webstack.django_uwsgi.uwsgi_chain_reload:
    socket: /run/uwsgi/web2/stats.sock
    master_fifo: /run/uwsgi/web2/master.fifo
    poll_interval: 0.2
    timeout: 120
  become: true
"""

RETURN = r"""
old_pids:
  description: Pid of every worker to replace before the trigger, by worker id.
  returned: always
  type: dict
  sample: {"1": 4213, "2": 4214, "3": 4215, "4": 4216}
new_pids:
  description: Pid of every replacement that accepts, by worker id (empty in check mode).
  returned: always
  type: dict
  sample: {"1": 5120, "2": 5133, "3": 5141, "4": 5150}
workers:
  description: Per worker, its old and new pid and when the replacement accepted.
  returned: always
  type: list
  elements: dict
  contains:
    id:
      description: Worker id.
      type: int
      sample: 1
    old_pid:
      description: Pid before the trigger.
      type: int
      sample: 4213
    new_pid:
      description: Pid of the replacement, null when not replaced.
      type: int
      sample: 5120
    replaced_after:
      description: Seconds after the trigger when the replacement was first seen accepting.
      type: float
      sample: 0.61
    respawn_count:
      description: The worker's respawn count once replaced.
      type: int
      sample: 2
nudges:
  description: Nudge requests sent to the instance (see O(nudge_socket)); 0 without it.
  returned: success and not check mode
  type: int
  sample: 3
master_pid_before:
  description: Pid of the uWSGI master before the trigger, when it changed during the chain.
  returned: failure
  type: int
  sample: 4200
master_pid_now:
  description: Pid of the uWSGI master that replaced it (the instance was restarted, not chain-reloaded).
  returned: failure
  type: int
  sample: 5301
waited_for_running_chain:
  description:
    - Seconds spent waiting, before the trigger, for a chain reload that was already running (seen in O(log_file)).
      uWSGI ignores a trigger while a chain runs, so the module lets it finish first. 0 when none was running,
      and always 0 without O(log_file).
  returned: success and not check mode
  type: float
  sample: 0.0
duration:
  description: Seconds from the trigger until the last worker was replaced (or until the failure).
  returned: always
  type: float
  sample: 2.41
trigger:
  description: What was triggered, C(touch:<file>) or C(fifo:<fifo>); null in check mode.
  returned: always
  type: str
  sample: touch:/run/uwsgi/web1/chain-reload
stalled_worker:
  description: Id of the worker the chain stalled on.
  returned: failure
  type: int
  sample: 1
respawn_count:
  description: Respawn count of the stalled worker.
  returned: failure
  type: int
  sample: 6
log_tail:
  description: Last lines of O(log_file) (once triggered, only lines written since the trigger).
  returned: failure
  type: list
  elements: str
log_error:
  description: The log line that best explains the failure (the last exception line), null when none was found.
  returned: failure
  type: str
  sample: "ModuleNotFoundError: No module named 'nonexistent'"
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.webstack.django_uwsgi.plugins.module_utils.uwsgi_chain import (
    ChainReload,
    ChainReloadError,
)
from ansible_collections.webstack.django_uwsgi.plugins.module_utils.uwsgi_protocol import (
    PROBE_PATH,
    PROBE_VARS,
    UwsgiProtocolError,
    uwsgi_request,
)
from ansible_collections.webstack.django_uwsgi.plugins.module_utils.uwsgi_stats import StatsError


def make_nudge(socket, path, host):
    """One short request to the instance (the probe without ``path``); errors are of no interest (the reload is
    watched on the stats)."""
    def nudge():
        try:
            if path:
                uwsgi_request(socket, path=path, host=host, timeout=2.0)
            else:
                uwsgi_request(socket, path=PROBE_PATH, host=host, extra_vars=PROBE_VARS, timeout=2.0)
        except (UwsgiProtocolError, OSError, ValueError):
            pass
    return nudge


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type='str', required=True),
            touch_file=dict(type='path'),
            master_fifo=dict(type='path'),
            timeout=dict(type='float', default=300),
            worker_timeout=dict(type='float', default=60),
            poll_interval=dict(type='float', default=0.5),
            max_respawns=dict(type='int', default=3),
            require_app=dict(type='bool', default=True),
            log_file=dict(type='path'),
            log_lines=dict(type='int', default=20),
            stats_timeout=dict(type='float', default=5),
            nudge_socket=dict(type='str'),
            nudge_path=dict(type='str', default=''),
            nudge_host=dict(type='str', default='localhost'),
            nudge_after=dict(type='float', default=2),
        ),
        required_one_of=[('touch_file', 'master_fifo')],
        mutually_exclusive=[('touch_file', 'master_fifo')],
        supports_check_mode=True,
    )
    p = module.params
    for name in ('timeout', 'worker_timeout', 'poll_interval', 'stats_timeout', 'nudge_after'):
        if p[name] <= 0:
            module.fail_json(msg='%s must be a positive number of seconds, got %s' % (name, p[name]))
    if p['max_respawns'] < 1:
        module.fail_json(msg='max_respawns must be at least 1 (a chain reload respawns each worker once)')
    if p['log_lines'] < 0:
        module.fail_json(msg='log_lines must not be negative')

    try:
        watcher = ChainReload(
            socket=p['socket'], touch_file=p['touch_file'], master_fifo=p['master_fifo'],
            timeout=p['timeout'], worker_timeout=p['worker_timeout'], poll_interval=p['poll_interval'],
            max_respawns=p['max_respawns'], require_app=p['require_app'], log_file=p['log_file'],
            log_lines=p['log_lines'], stats_timeout=p['stats_timeout'],
            nudge=make_nudge(p['nudge_socket'], p['nudge_path'], p['nudge_host']) if p['nudge_socket'] else None,
            nudge_after=p['nudge_after'])
        result = watcher.run(check_mode=module.check_mode)
    except StatsError as exc:
        module.fail_json(msg='cannot read the worker pids before the chain reload: %s' % exc,
                         changed=False, reason=exc.reason)
    except ChainReloadError as exc:
        details = dict(exc.details)
        module.fail_json(msg=str(exc), changed=bool(details.get('trigger')), **details)
    module.exit_json(changed=True, **result)


if __name__ == '__main__':
    main()

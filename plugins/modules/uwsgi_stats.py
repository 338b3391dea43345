#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: uwsgi_stats
short_description: Read uWSGI stats servers and judge how evenly workers share the load
version_added: 0.1.0
description:
  - Reads the JSON document of one or several uWSGI stats servers (the C(stats) option of uWSGI) given as a unix
    socket path, a TCP C(host:port), or C(http://host:port) for a server started with C(stats-http).
  - With O(sample_seconds=0) it takes one snapshot. Otherwise it takes two snapshots O(sample_seconds) apart and
    computes every figure from the request deltas inside that window, not from the counters since spawn, which
    uWSGI resets when a worker respawns (that is why the percentages of C(uwsgitop) mislead after a reload).
    A worker that respawned inside the window is counted from its new spawn.
  - Cheap workers (C(status=cheap) or pid 0, see the C(cheaper) options of uWSGI) and workers that do not
    accept are left out of the fair share and listed in RV(balance.excluded_workers).
  - The verdict is V(insufficient_traffic) when fewer than O(min_requests) requests were served in the window,
    never a failure; under light traffic the kernel wakes the same worker again and again, which is not a
    fault. Otherwise it is V(imbalanced) when the busiest worker's share divided by the fair share exceeds
    O(max_share_ratio), and V(balanced) else.
  - Read-only. It never changes anything and reports RV(ignore:changed=false).
author:
  - webstack.django_uwsgi maintainers (@webstack)
attributes:
  check_mode:
    description: Can run in check mode; the module reads only, so it behaves exactly the same.
    support: full
  diff_mode:
    description: Nothing changes, so there is nothing to diff.
    support: none
options:
  socket:
    description:
      - Stats server address, or a list of them to read several instances at once (for example every
        instance behind the same nginx upstream).
      - A path (absolute or relative, or C(@name) for the abstract namespace) is a unix socket.
      - C(host:port) is a plain TCP stats server; C(http://host:port) is one started with C(stats-http).
      - Stats sockets of this collection are root-only, so run the task with C(become=true).
    type: list
    elements: str
    required: true
    aliases: [sockets]
  sample_seconds:
    description:
      - Length of the sampling window in seconds. V(0) takes one snapshot and bases shares on the counters
        since each worker spawned (RV(instances[].basis=since_spawn)).
      - Any other value takes two snapshots and bases every share on the requests served in between.
    type: float
    default: 0
  max_share_ratio:
    description:
      - Fail when the busiest worker's share of the requests in the window, divided by the fair share
        (one over the number of counted workers), exceeds this value, unless the verdict is
        V(insufficient_traffic).
      - When omitted the module never fails on balance; the verdict is then computed against V(1.5).
      - The ratio is computed over the workers of all given sockets together (what the front balancer sees);
        each instance also gets its own RV(instances[].balance).
    type: float
  min_requests:
    description:
      - Below this many requests in the window the verdict is V(insufficient_traffic) and the module does not
        fail, whatever the ratio.
    type: int
    default: 100
  timeout:
    description:
      - Seconds allowed for reading one stats document (connect and read to end of file).
    type: float
    default: 5
notes:
  - The uWSGI master answers stats requests from its main loop; a master that is blocked (for example while
    it reloads) makes the read time out with a message saying so.
  - Requests are the counts uWSGI keeps per worker. With several threads per worker the figures are still per
    worker process.
  - Field differences between uWSGI versions are tolerated. Workers without C(accepting) (old releases) are
    taken as accepting when they run and are not cheap; C(listen_queue) is only reported on Linux and is
    null elsewhere.
seealso:
  - module: webstack.django_uwsgi.uwsgi_chain_reload
  - name: uWSGI stats server
    description: The stats server and its JSON document.
    link: https://uwsgi-docs.readthedocs.io/en/latest/StatsServer.html
"""

EXAMPLES = r"""
- name: Show one snapshot of an instance
  webstack.django_uwsgi.uwsgi_stats:
    socket: /run/uwsgi/web1/stats.sock
  become: true
  register: web1_stats

- name: Print the uwsgitop-like table
  ansible.builtin.debug:
    var: web1_stats.table_lines

- name: Fail when one worker takes more than 1.5 times its fair share over 10 seconds of load
  webstack.django_uwsgi.uwsgi_stats:
    socket:
      - /run/uwsgi/web1/stats.sock
      - /run/uwsgi/web2/stats.sock
    sample_seconds: 10
    max_share_ratio: 1.5
    min_requests: 200
  become: true

- name: Read a stats server started with stats-http on a private address
  webstack.django_uwsgi.uwsgi_stats:
    socket: http://10.0.0.5:9191
    sample_seconds: 5
  register: remote_stats

- name: Gate on the listen queue
  ansible.builtin.assert:
    that: remote_stats.listen_queue is none or remote_stats.listen_queue < 10
    fail_msg: "requests are queueing in the listen backlog: {{ remote_stats.listen_queue }}"
"""

RETURN = r"""
instances:
  description: One entry per socket, in the order given.
  returned: success
  type: list
  elements: dict
  contains:
    socket:
      description: The stats address as given.
      type: str
      sample: /run/uwsgi/web1/stats.sock
    version:
      description: uWSGI version reported by the instance (null when not reported).
      type: str
      sample: 2.0.31
    master_pid:
      description: Pid of the uWSGI master.
      type: int
      sample: 4211
    basis:
      description: V(window) when shares come from deltas over the sampling window, V(since_spawn) for one snapshot.
      type: str
      sample: window
    window_seconds:
      description: Measured time between the two snapshots (0 for one snapshot).
      type: float
      sample: 5.003
    listen_queue:
      description: Connections waiting in the listen backlog (Linux only; null when not reported).
      type: int
      sample: 0
    listen_queue_errors:
      description: Listen queue overflows reported by uWSGI (null when not reported).
      type: int
      sample: 0
    totals:
      description: Sums over the instance's workers (C(requests) is in the window, C(requests_total) since start).
      type: dict
      sample: {workers: 4, workers_counted: 4, cheap_workers: 0, not_accepting_workers: 0, requests: 812,
               requests_total: 9120, rps: 162.3, exceptions: 0, harakiri_count: 0, respawns: 4, rss: 0, vsz: 0}
    workers:
      description: Per-worker figures, same keys as RV(workers).
      type: list
      elements: dict
    balance:
      description: Balance of this instance alone, same keys as RV(balance).
      type: dict
    table:
      description: uwsgitop-like text table of this instance.
      type: str
workers:
  description: Every worker of every instance.
  returned: success
  type: list
  elements: dict
  contains:
    socket:
      description: Stats address of the worker's instance.
      type: str
    id:
      description: Worker id (1-based, as uWSGI numbers them).
      type: int
      sample: 1
    pid:
      description: Worker pid (0 for a cheap worker that is not running).
      type: int
      sample: 4213
    status:
      description: Worker status as reported (idle, busy, cheap, pause, sig...).
      type: str
      sample: idle
    accepting:
      description: Whether the worker accepts requests.
      type: bool
      sample: true
    requests:
      description: Requests served in the window (since spawn for one snapshot or a worker that respawned in the window).
      type: int
      sample: 203
    requests_total:
      description: The worker slot's request counter as uWSGI reports it.
      type: int
      sample: 2280
    share:
      description: Fraction (0 to 1) of the counted requests served by this worker; null when the worker is excluded.
      type: float
      sample: 0.25
    avg_rt_ms:
      description: Average response time in milliseconds as computed by uWSGI.
      type: float
      sample: 2.13
    rss:
      description: Resident memory in bytes (0 unless uWSGI runs with C(memory-report)).
      type: int
      sample: 0
    vsz:
      description: Virtual memory in bytes (0 unless uWSGI runs with C(memory-report)).
      type: int
      sample: 0
    respawn_count:
      description: How many times uWSGI spawned this worker slot.
      type: int
      sample: 2
    respawned_in_window:
      description: Whether the worker respawned between the two snapshots.
      type: bool
      sample: false
    exceptions:
      description: Exceptions raised by the application in this worker.
      type: int
      sample: 0
    harakiri_count:
      description: Requests killed by harakiri in this worker (0 when not reported).
      type: int
      sample: 0
    last_spawn:
      description: Unix time of the worker's last spawn.
      type: int
      sample: 1795344826
    apps:
      description: Number of applications loaded in the worker (null when not reported).
      type: int
      sample: 1
    counted:
      description: Whether the worker counts toward the fair share.
      type: bool
      sample: true
    excluded_reason:
      description: V(cheap) or V(not_accepting) for excluded workers, null otherwise.
      type: str
      sample: null
totals:
  description: Sums over all instances, same keys as RV(instances[].totals).
  returned: success
  type: dict
listen_queue:
  description: Sum of the listen queues of all instances, null when none reports one (non-Linux).
  returned: success
  type: int
  sample: 0
balance:
  description: Balance over the workers of all instances together.
  returned: success
  type: dict
  contains:
    requests:
      description: Requests served by counted workers in the window.
      type: int
      sample: 812
    workers_counted:
      description: Workers in the fair share.
      type: int
      sample: 4
    top_worker:
      description: Id of the busiest worker (C(socket#id) when several sockets are read).
      type: raw
      sample: 3
    top_share:
      description: Share of the busiest worker (0 to 1).
      type: float
      sample: 0.31
    fair_share:
      description: One over the number of counted workers.
      type: float
      sample: 0.25
    ratio:
      description: O(ignore:top_share) divided by O(ignore:fair_share); null without traffic.
      type: float
      sample: 1.24
    max_share_ratio:
      description: The threshold the verdict used.
      type: float
      sample: 1.5
    min_requests:
      description: The traffic floor the verdict used.
      type: int
      sample: 100
    gini:
      description: Gini coefficient of the counted workers' requests (0 perfectly even, towards 1 concentrated).
      type: float
      sample: 0.07
    idle_workers:
      description: Counted workers that served no request in the window.
      type: list
      elements: raw
      sample: []
    excluded_workers:
      description: Workers left out of the fair share, with the reason.
      type: list
      elements: dict
      sample: [{id: 4, reason: cheap}]
    verdict:
      description: V(balanced), V(imbalanced) or V(insufficient_traffic).
      type: str
      sample: balanced
sample_seconds:
  description: The sampling window asked for.
  returned: success
  type: float
  sample: 5
table:
  description: uwsgitop-like text table of every instance, for the task output.
  returned: success
  type: str
table_lines:
  description: RV(table) split into lines, readable in the default callback output.
  returned: success
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.webstack.django_uwsgi.plugins.module_utils.uwsgi_stats import (
    VERDICT_IMBALANCED,
    StatsError,
    collect,
    parse_address,
)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            socket=dict(type='list', elements='str', required=True, aliases=['sockets']),
            sample_seconds=dict(type='float', default=0),
            max_share_ratio=dict(type='float'),
            min_requests=dict(type='int', default=100),
            timeout=dict(type='float', default=5),
        ),
        supports_check_mode=True,
    )
    params = module.params
    sockets = [s for s in params['socket'] if s and s.strip()]
    if not sockets:
        module.fail_json(msg='socket must name at least one stats server')
    if params['sample_seconds'] < 0:
        module.fail_json(msg='sample_seconds must be 0 (one snapshot) or a positive number of seconds')
    if params['max_share_ratio'] is not None and params['max_share_ratio'] < 1:
        module.fail_json(msg='max_share_ratio must be at least 1 (1 means perfectly even), got %s'
                         % params['max_share_ratio'])
    if params['min_requests'] < 0:
        module.fail_json(msg='min_requests must not be negative')
    if params['timeout'] <= 0:
        module.fail_json(msg='timeout must be a positive number of seconds')

    try:
        addresses = [parse_address(s) for s in sockets]
        result = collect(addresses, params['sample_seconds'], params['min_requests'],
                         params['max_share_ratio'], params['timeout'])
    except StatsError as exc:
        module.fail_json(msg=str(exc), socket=exc.address, reason=exc.reason)

    result['table_lines'] = result['table'].splitlines()
    bal = result['balance']
    if params['max_share_ratio'] is not None and bal['verdict'] == VERDICT_IMBALANCED:
        module.fail_json(
            msg='imbalanced: worker %s served %.1f%% of %d requests in %.1fs, %.2f times its fair share of '
                '%.1f%% (max_share_ratio=%s); consider thunder-lock or more instances behind the front'
                % (bal['top_worker'], bal['top_share'] * 100, bal['requests'], params['sample_seconds'],
                   bal['ratio'], bal['fair_share'] * 100, params['max_share_ratio']),
            changed=False, **result)
    module.exit_json(changed=False, **result)


if __name__ == '__main__':
    main()

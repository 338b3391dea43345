# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""uwsgi_stats and uwsgi_chain_reload against real uWSGI 2.0.31 processes."""

from __future__ import absolute_import, division, print_function

import threading
import time
import urllib.error
import urllib.request

import pytest

pytestmark = pytest.mark.integration


def stats(run_module, inst, **args):
    rc, res = run_module('uwsgi_stats', dict({'socket': inst.stats}, **args))
    assert rc == 0, res
    return res


def pids(res):
    return dict((w['id'], w['pid']) for w in res['workers'] if w['pid'])


def pids_now(inst):
    """Worker pids read directly (faster than a module run)."""
    from ansible_collections.webstack.django_uwsgi.plugins.module_utils.uwsgi_stats import read_stats
    return pids(read_stats(inst.stats))


@pytest.mark.parametrize('kind', ['unix', 'tcp', 'http'])
def test_stats_transports(uwsgi, run_module, kind):
    inst = uwsgi('st-%s' % kind, processes=2, threads=1, stats=kind)
    for _ in range(5):
        assert inst.get() == 200
    res = stats(run_module, inst, min_requests=1)
    assert res['instances'][0]['version'] == '2.0.31'
    assert len(res['workers']) == 2
    assert res['totals']['requests'] == 5
    assert res['changed'] is False
    assert res['table_lines'][0].startswith('uwsgi-2.0.31 - %s' % inst.stats)


def test_chain_reload_replaces_every_worker(uwsgi, run_module):
    inst = uwsgi('chain', processes=4, threads=2)
    before = pids_now(inst)
    assert len(before) == 4

    rc, res = run_module('uwsgi_chain_reload', {'socket': inst.stats, 'touch_file': inst.trigger}, check=True)
    assert rc == 0 and res['changed'] is True and res['new_pids'] == {}
    assert pids_now(inst) == before

    rc, res = run_module('uwsgi_chain_reload', {
        'socket': inst.stats, 'touch_file': inst.trigger, 'poll_interval': 0.2,
        'worker_timeout': 20, 'timeout': 60, 'log_file': inst.log})
    assert rc == 0, res
    assert res['changed'] is True
    assert sorted(res['old_pids']) == ['1', '2', '3', '4']
    assert dict((int(k), v) for k, v in res['old_pids'].items()) == before
    after = pids_now(inst)
    assert dict((int(k), v) for k, v in res['new_pids'].items()) == after
    assert set(before.values()).isdisjoint(after.values())
    assert 'chain reloading complete' in inst.log_text()
    assert inst.get() == 200

    rc, res = run_module('uwsgi_chain_reload', {
        'socket': inst.stats, 'master_fifo': inst.fifo, 'poll_interval': 0.2, 'worker_timeout': 20})
    assert rc == 0, res
    again = pids_now(inst)
    assert set(after.values()).isdisjoint(again.values())
    assert res['trigger'] == 'fifo:%s' % inst.fifo


def test_broken_import_stalls_on_first_worker(uwsgi, run_module):
    inst = uwsgi('broken', processes=4, threads=2, strict=True)
    before = pids_now(inst)
    inst.break_app()
    worker_timeout = 20
    started = time.time()
    rc, res = run_module('uwsgi_chain_reload', {
        'socket': inst.stats, 'touch_file': inst.trigger, 'poll_interval': 0.2,
        'worker_timeout': worker_timeout, 'max_respawns': 3, 'log_file': inst.log})
    elapsed = time.time() - started
    assert rc != 0
    assert res['failed'] is True
    assert elapsed < worker_timeout, elapsed
    assert res['stalled_worker'] == 1
    assert 'chain reload stalled at worker 1' in res['msg']
    assert res['respawn_count'] > 1
    assert "ModuleNotFoundError: No module named 'module_missing_from_this_release'" in res['msg']
    assert res['log_error'] == "ModuleNotFoundError: No module named 'module_missing_from_this_release'"
    # Only the first worker is out: the others still run the old code and serve.
    now = pids_now(inst)
    for wid in (2, 3, 4):
        assert now[wid] == before[wid]
    assert inst.get() == 200

    # Putting the previous code back lets the stalled chain finish on it;
    # the module waits for that chain (seen in the log), then runs its own.
    inst.fix_app()
    rc, res = run_module('uwsgi_chain_reload', {
        'socket': inst.stats, 'touch_file': inst.trigger, 'poll_interval': 0.2, 'worker_timeout': 20,
        'log_file': inst.log})
    assert rc == 0, (res['msg'], res)
    assert res['waited_for_running_chain'] > 0
    final = pids_now(inst)
    assert all(final[w] != before[w] for w in (1, 2, 3, 4))


def test_broken_import_without_exit_is_caught(uwsgi, run_module):
    """Without an exiting entry point uWSGI serves with no app; the module still stops at worker 1."""
    inst = uwsgi('noapp', processes=2, threads=1, strict=False)
    inst.break_app()
    rc, res = run_module('uwsgi_chain_reload', {
        'socket': inst.stats, 'master_fifo': inst.fifo, 'poll_interval': 0.1, 'worker_timeout': 20,
        'log_file': inst.log})
    assert rc != 0
    assert res['stalled_worker'] == 1
    assert 'without any application loaded' in res['msg']
    assert "No module named 'module_missing_from_this_release'" in res['msg']


class Load(object):
    """Bounded HTTP load on 127.0.0.1: fixed threads, stops at a deadline or a request cap."""

    def __init__(self, port, threads=4, seconds=10.0, max_requests=20000, path='/cpu'):
        self.url = 'http://127.0.0.1:%d%s' % (port, path)
        self.seconds = seconds
        self.max_requests = max_requests
        self.sent = 0
        self.errors = 0
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run) for _ in range(threads)]

    def _run(self):
        deadline = time.time() + self.seconds
        while not self.stop.is_set() and time.time() < deadline:
            with self.lock:
                if self.sent >= self.max_requests:
                    return
                self.sent += 1
            try:
                urllib.request.urlopen(self.url, timeout=5).read()
            except (urllib.error.URLError, OSError):
                with self.lock:
                    self.errors += 1

    def __enter__(self):
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for thread in self.threads:
            thread.join(10)


MEASURED = {}


@pytest.mark.parametrize('thunder_lock', [True, False], ids=['thunder-lock', 'default'])
def test_balance_under_load(uwsgi, run_module, thunder_lock, record_property):
    extra = ['thunder-lock = true'] if thunder_lock else []
    inst = uwsgi('lb-%s' % ('tl' if thunder_lock else 'def'), processes=4, threads=4, extra=extra)
    with Load(inst.port, threads=4, seconds=12) as load:
        time.sleep(1.0)
        rc, res = run_module('uwsgi_stats', {'socket': inst.stats, 'sample_seconds': 6,
                                             'max_share_ratio': 1.5, 'min_requests': 200})
    bal = res['balance']
    MEASURED['thunder-lock' if thunder_lock else 'default'] = bal['ratio']
    record_property('ratio', bal['ratio'])
    record_property('gini', bal['gini'])
    print('\n%s: ratio %s gini %s requests %s (client sent %d, errors %d)\n%s' % (
        'thunder-lock' if thunder_lock else 'default', bal['ratio'], bal['gini'], bal['requests'],
        load.sent, load.errors, res['table']))
    assert load.errors == 0
    assert bal['requests'] >= 200, res['table']
    if thunder_lock:
        assert rc == 0, res['msg']
        assert bal['verdict'] == 'balanced', res['table']
    else:
        # Whether the default is imbalanced depends on the machine: report only.
        assert bal['verdict'] in ('balanced', 'imbalanced')
        assert bal['ratio'] >= 1.0

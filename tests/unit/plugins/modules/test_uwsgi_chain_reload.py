# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""uwsgi_chain_reload through AnsibleModule, against a stats server that
behaves like a uWSGI master: it replaces its workers one by one once the
trigger file is touched or "c" arrives on its FIFO."""

from __future__ import absolute_import, division, print_function

import copy
import functools
import os
import threading
import time

import pytest


from ansible_collections.webstack.django_uwsgi.plugins.modules import uwsgi_chain_reload


@pytest.fixture
def run(run_module):
    """run(args, check_mode=False) -> (exit code, result) of uwsgi_chain_reload."""
    return functools.partial(run_module, uwsgi_chain_reload.main)


class FakeMaster(object):
    """Replaces one worker every `step` seconds after the trigger.

    With `broken_worker`, that worker respawns forever without accepting.
    """

    def __init__(self, doc, step=0.15, broken_worker=None):
        self.doc = doc
        self.step = step
        self.broken_worker = broken_worker
        self.triggered_at = None
        self.lock = threading.Lock()

    def trigger(self):
        with self.lock:
            if self.triggered_at is None:
                self.triggered_at = time.time()

    def __call__(self):
        doc = copy.deepcopy(self.doc)
        with self.lock:
            started = self.triggered_at
        if started is None:
            return doc
        elapsed = time.time() - started
        for i, w in enumerate(doc['workers']):
            if w['status'] == 'cheap':
                continue
            if elapsed < (i + 1) * self.step:
                break
            w['last_spawn'] = int(started)
            if self.broken_worker == w['id']:
                respawns = int((elapsed - (i + 1) * self.step) / 0.05) + 1
                w['pid'] = 50000 + respawns
                w['respawn_count'] += respawns
                w['accepting'] = 0
                break
            w['pid'] = 40000 + w['id']
            w['respawn_count'] += 1
        return doc


def watch_mtime(path, master, stop):
    initial = os.stat(path).st_mtime if os.path.exists(path) else None
    while not stop.is_set():
        if os.path.exists(path) and os.stat(path).st_mtime != initial:
            master.trigger()
            return
        time.sleep(0.02)


def watch_fifo(path, master, opened, stop):
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    opened.set()
    try:
        while not stop.is_set():
            try:
                data = os.read(fd, 16)
            except BlockingIOError:
                data = b''
            if b'c' in data:
                master.trigger()
                return
            time.sleep(0.02)
    finally:
        os.close(fd)


@pytest.fixture
def watcher_thread():
    stop = threading.Event()
    threads = []

    def start(target, *args):
        thread = threading.Thread(target=target, args=args + (stop,))
        thread.daemon = True
        thread.start()
        threads.append(thread)
    yield start
    stop.set()
    for thread in threads:
        thread.join(2)


def test_touch_chain_reload(run, stats_server, fixture_doc, sockdir, watcher_thread):
    master = FakeMaster(fixture_doc('basic'))
    server = stats_server('unix', master)
    trigger = os.path.join(sockdir, 'chain-reload')
    open(trigger, 'w').close()
    os.utime(trigger, (time.time() - 10, time.time() - 10))
    watcher_thread(watch_mtime, trigger, master)
    rc, out = run({'socket': server.address, 'touch_file': trigger, 'poll_interval': 0.05,
                   'worker_timeout': 5, 'timeout': 20})
    assert rc == 0, out
    assert out['changed'] is True
    assert out['trigger'] == 'touch:%s' % trigger
    assert out['new_pids'] == {'1': 40001, '2': 40002, '3': 40003, '4': 40004}
    assert set(out['old_pids'].values()).isdisjoint(out['new_pids'].values())
    times = [w['replaced_after'] for w in out['workers']]
    assert times == sorted(times)
    assert out['duration'] >= times[-1]


def test_fifo_chain_reload_with_cheap_workers(run, stats_server, fixture_doc, sockdir, watcher_thread):
    master = FakeMaster(fixture_doc('cheaper'))
    server = stats_server('tcp', master)
    fifo = os.path.join(sockdir, 'master.fifo')
    os.mkfifo(fifo)
    opened = threading.Event()
    watcher_thread(watch_fifo, fifo, master, opened)
    assert opened.wait(5)
    rc, out = run({'socket': server.address, 'master_fifo': fifo, 'poll_interval': 0.05,
                   'worker_timeout': 5})
    assert rc == 0, out
    assert out['trigger'] == 'fifo:%s' % fifo
    assert sorted(out['new_pids']) == ['1', '2']


def test_check_mode_reports_change_without_trigger(run, stats_server, fixture_doc, sockdir):
    master = FakeMaster(fixture_doc('basic'))
    server = stats_server('unix', master)
    trigger = os.path.join(sockdir, 'chain-reload')
    rc, out = run({'socket': server.address, 'touch_file': trigger}, check_mode=True)
    assert rc == 0
    assert out['changed'] is True
    assert out['new_pids'] == {}
    assert len(out['old_pids']) == 4
    assert not os.path.exists(trigger)
    assert master.triggered_at is None


def test_stall_names_worker_and_quotes_log(run, stats_server, fixture_doc, sockdir, watcher_thread):
    master = FakeMaster(fixture_doc('basic'), broken_worker=2)
    server = stats_server('unix', master)
    trigger = os.path.join(sockdir, 'chain-reload')
    log = os.path.join(sockdir, 'web1.log')
    with open(log, 'w') as handle:
        handle.write('Traceback (most recent call last):\n  File "wsgi.py", line 3, in <module>\n'
                     '    from demo.settings import X\nImportError: cannot import name \'X\' from \'demo.settings\'\n'
                     'DAMN ! worker 2 (pid: 50007) died :( trying respawn ...\n')
    watcher_thread(watch_mtime, trigger, master)
    started = time.time()
    rc, out = run({'socket': server.address, 'touch_file': trigger, 'poll_interval': 0.05,
                   'worker_timeout': 10, 'max_respawns': 3, 'log_file': log})
    assert rc == 1
    assert time.time() - started < 10
    assert out['changed'] is True
    assert out['stalled_worker'] == 2
    assert out['respawn_count'] > 4
    assert out['msg'].startswith('chain reload stalled at worker 2: it respawned')
    assert "ImportError: cannot import name 'X' from 'demo.settings'" in out['msg']
    assert out['log_error'] == "ImportError: cannot import name 'X' from 'demo.settings'"
    assert out['new_pids'] == {'1': 40001}


def test_unreadable_stats_before_trigger(run, sockdir):
    trigger = os.path.join(sockdir, 'chain-reload')
    rc, out = run({'socket': os.path.join(sockdir, 'none.sock'), 'touch_file': trigger})
    assert rc == 1
    assert out['changed'] is False
    assert out['msg'].startswith('cannot read the worker pids before the chain reload: stats socket')
    assert not os.path.exists(trigger)


def test_fifo_without_master(run, stats_server, fixture_doc, sockdir):
    server = stats_server('unix', fixture_doc('basic'))
    fifo = os.path.join(sockdir, 'master.fifo')
    os.mkfifo(fifo)
    rc, out = run({'socket': server.address, 'master_fifo': fifo})
    assert rc == 1
    assert out['changed'] is False
    assert 'no uWSGI master reads the FIFO' in out['msg']


@pytest.mark.parametrize('args, fragment', [
    ({}, 'one of the following is required: touch_file, master_fifo'),
    ({'touch_file': '/t', 'master_fifo': '/f'}, 'mutually exclusive'),
    ({'touch_file': '/t', 'timeout': 0}, 'timeout must be a positive'),
    ({'touch_file': '/t', 'worker_timeout': -1}, 'worker_timeout must be a positive'),
    ({'touch_file': '/t', 'poll_interval': 0}, 'poll_interval must be a positive'),
    ({'touch_file': '/t', 'max_respawns': 0}, 'max_respawns must be at least 1'),
    ({'touch_file': '/t', 'log_lines': -1}, 'log_lines'),
])
def test_bad_arguments(run, args, fragment):
    params = {'socket': '/run/uwsgi/web1/stats.sock'}
    params.update(args)
    rc, out = run(params)
    assert rc == 1
    assert fragment in out['msg']

# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The chain reload watcher, the triggers and the log excerpt.

The watcher is driven by a scripted sequence of stats documents (derived
from one captured from uWSGI 2.0.31) and a fake clock, so every stall path
is reproducible and fast.
"""

from __future__ import absolute_import, division, print_function

import copy
import os
import threading

import pytest

from ansible_collections.webstack.django_uwsgi.plugins.module_utils import uwsgi_chain as uc
from ansible_collections.webstack.django_uwsgi.plugins.module_utils.uwsgi_stats import StatsError

T0 = 1795345000.0


class Clock(object):
    def __init__(self, start=T0):
        self.now = start

    def __call__(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds


def worker_state(doc, wid, pid=None, accepting=None, last_spawn=None, respawn_count=None, apps=None):
    w = doc['workers'][wid - 1]
    if pid is not None:
        w['pid'] = pid
    if accepting is not None:
        w['accepting'] = int(accepting)
    if last_spawn is not None:
        w['last_spawn'] = last_spawn
    if respawn_count is not None:
        w['respawn_count'] = respawn_count
    if apps is not None:
        w['apps'] = apps
    return doc


class Script(object):
    """Stats documents keyed by poll number; the last one repeats."""

    def __init__(self, base, steps):
        self.docs = []
        doc = copy.deepcopy(base)
        self.docs.append(copy.deepcopy(doc))
        for change in steps:
            if change is not None:
                change(doc)
            self.docs.append(copy.deepcopy(doc))
        self.calls = 0

    def __call__(self):
        doc = self.docs[min(self.calls, len(self.docs) - 1)]
        self.calls += 1
        if isinstance(doc, Exception):
            raise doc
        return doc


def replace(wid, pid, at=T0, accepting=True, respawn=2, apps=None):
    def change(doc):
        worker_state(doc, wid, pid=pid, accepting=accepting, last_spawn=int(at), respawn_count=respawn, apps=apps)
    return change


def make(base, steps, clock=None, triggered=None, **kwargs):
    clock = clock or Clock()
    script = Script(base, steps)
    fired = triggered if triggered is not None else []
    kwargs.setdefault('touch_file', '/run/uwsgi/web1/chain-reload')
    watcher = uc.ChainReload(socket='/run/uwsgi/web1/stats.sock', reader=script, clock=clock,
                             sleep=clock.sleep, trigger=lambda: fired.append(clock()) or 'touch:x',
                             poll_interval=0.5, **kwargs)
    return watcher, script, clock, fired


def test_chain_completes(fixture_doc):
    base = fixture_doc('basic')
    old = [w['pid'] for w in base['workers']]
    steps = [None, replace(1, 9001), None, replace(2, 9002), replace(3, 9003), None, replace(4, 9004)]
    watcher, _script, clock, fired = make(base, steps, worker_timeout=5, timeout=30)
    res = watcher.run()
    assert fired == [T0]
    assert res['old_pids'] == dict((str(i + 1), p) for i, p in enumerate(old))
    assert res['new_pids'] == {'1': 9001, '2': 9002, '3': 9003, '4': 9004}
    assert [w['replaced_after'] for w in res['workers']] == [0.5, 1.5, 2.0, 3.0]
    assert res['duration'] == 3.0
    assert res['trigger'] == 'touch:x'


def test_check_mode_does_not_trigger(fixture_doc):
    watcher, script, _clock, fired = make(fixture_doc('basic'), [replace(1, 9001)])
    res = watcher.run(check_mode=True)
    assert fired == []
    assert script.calls == 1
    assert res['new_pids'] == {} and len(res['old_pids']) == 4 and res['trigger'] is None


def test_cheap_workers_are_not_waited_for(fixture_doc):
    base = fixture_doc('cheaper')
    watcher, _s, _c, _f = make(base, [replace(1, 9001), replace(2, 9002)], worker_timeout=5)
    res = watcher.run()
    assert sorted(res['old_pids']) == ['1', '2']
    assert res['new_pids'] == {'1': 9001, '2': 9002}


def test_old_format_without_accepting(fixture_doc):
    base = fixture_doc('old_format')

    def rep(wid, pid):
        def change(doc):
            w = doc['workers'][wid - 1]
            w['pid'] = pid
            w['last_spawn'] = int(T0) + 1
            w['respawn_count'] = 2
        return change
    watcher, _s, _c, _f = make(base, [rep(1, 1), rep(2, 2), rep(3, 3), rep(4, 4)], worker_timeout=5)
    assert watcher.run()['new_pids'] == {'1': 1, '2': 2, '3': 3, '4': 4}


def test_new_pid_not_accepting_yet_then_accepting(fixture_doc):
    steps = [replace(1, 9001, accepting=False), replace(1, 9001), replace(2, 9002), replace(3, 9003),
             replace(4, 9004)]
    watcher, _s, _c, _f = make(fixture_doc('basic'), steps, worker_timeout=5)
    res = watcher.run()
    assert res['workers'][0]['replaced_after'] == 0.5


def test_worker_spawned_before_trigger_does_not_count(fixture_doc):
    """A new pid whose last_spawn predates the trigger is not the chain's doing."""
    steps = [replace(1, 9001, at=T0 - 5), None, None]
    watcher, _s, _c, _f = make(fixture_doc('basic'), steps, worker_timeout=1, timeout=30)
    with pytest.raises(uc.ChainReloadError) as err:
        watcher.run()
    assert 'stalled at worker 1' in str(err.value)
    assert 'not accepting after worker_timeout=1s' in str(err.value)


def test_stall_by_respawn_loop_fails_fast(fixture_doc, tmp_path):
    log = tmp_path / 'web1.log'
    log.write_text(
        'Respawned uWSGI worker 1 (new pid: 9003)\n'
        'Traceback (most recent call last):\n'
        '  File "app.py", line 1, in <module>\n'
        '    import broken_dependency\n'
        "ModuleNotFoundError: No module named 'broken_dependency'\n"
        'DAMN ! worker 1 (pid: 9003) died :( trying respawn ...\n')
    steps = [replace(1, 9001, accepting=False, respawn=2), replace(1, 9002, accepting=False, respawn=3),
             replace(1, 9003, accepting=False, respawn=4), replace(1, 9004, accepting=False, respawn=5),
             replace(1, 9005, accepting=False, respawn=6)]
    watcher, _s, clock, _f = make(fixture_doc('basic'), steps, worker_timeout=60, max_respawns=3,
                                  log_file=str(log), log_lines=5)
    with pytest.raises(uc.ChainReloadError) as err:
        watcher.run()
    msg = str(err.value)
    assert 'chain reload stalled at worker 1' in msg
    assert 'respawned 4 times' in msg and 'respawn_count 5' in msg
    assert "Last error in %s: ModuleNotFoundError: No module named 'broken_dependency'" % log in msg
    assert 'DAMN ! worker 1' in msg
    assert clock() - T0 < 60
    details = err.value.details
    assert details['stalled_worker'] == 1
    assert details['respawn_count'] == 5
    assert details['log_error'] == "ModuleNotFoundError: No module named 'broken_dependency'"
    assert len(details['log_tail']) == 5
    assert details['old_pids'] and details['new_pids'] == {}


def test_stall_by_worker_timeout(fixture_doc):
    steps = [replace(1, 9001), replace(2, 9002, accepting=False)]
    watcher, _s, clock, _f = make(fixture_doc('basic'), steps, worker_timeout=3, timeout=100)
    with pytest.raises(uc.ChainReloadError) as err:
        watcher.run()
    assert 'stalled at worker 2' in str(err.value)
    assert 'pid 9002' in str(err.value)
    assert err.value.details['new_pids'] == {'1': 9001}
    assert 3 <= clock() - T0 <= 5


def test_no_app_loaded_is_a_failure(fixture_doc, tmp_path):
    log = tmp_path / 'log'
    log.write_text("ImportError: cannot import name 'x'\n*** no app loaded. going in full dynamic mode ***\n")
    steps = [replace(1, 9001, apps=[])]
    watcher, _s, _c, _f = make(fixture_doc('basic'), steps, log_file=str(log))
    with pytest.raises(uc.ChainReloadError) as err:
        watcher.run()
    assert 'worker 1 (pid 9001) came up after the chain reload without any application' in str(err.value)
    assert "ImportError: cannot import name 'x'" in str(err.value)


def test_no_app_tolerated_when_not_required(fixture_doc):
    steps = [replace(i, 9000 + i, apps=[]) for i in (1, 2, 3, 4)]
    watcher, _s, _c, _f = make(fixture_doc('basic'), steps, require_app=False)
    assert len(watcher.run()['new_pids']) == 4


def test_trigger_never_picked_up(fixture_doc):
    watcher, _s, clock, _f = make(fixture_doc('basic'), [], worker_timeout=2)
    with pytest.raises(uc.ChainReloadError) as err:
        watcher.run()
    assert 'did not start replacing any worker' in str(err.value)
    assert 'touch-chain-reload = /run/uwsgi/web1/chain-reload' in str(err.value)


def test_trigger_never_picked_up_fifo(fixture_doc):
    watcher, _s, _c, _f = make(fixture_doc('basic'), [], worker_timeout=2, touch_file=None,
                               master_fifo='/run/uwsgi/web1/master.fifo')
    with pytest.raises(uc.ChainReloadError) as err:
        watcher.run()
    assert 'master-fifo' in str(err.value)


def test_chain_stops_between_workers(fixture_doc):
    watcher, _s, _c, _f = make(fixture_doc('basic'), [replace(1, 9001)], worker_timeout=2)
    with pytest.raises(uc.ChainReloadError) as err:
        watcher.run()
    assert 'worker 2 was not replaced within worker_timeout=2s after the previous worker' in str(err.value)
    assert err.value.details['stalled_worker'] == 2


def test_overall_timeout(fixture_doc):
    # Progress every 2 s, timeout 3 s: the chain is slow, not stalled.
    steps = [None, None, None, replace(1, 9001), None, None, None, replace(2, 9002)]
    watcher, _s, _c, _f = make(fixture_doc('basic'), steps, worker_timeout=10, timeout=3)
    with pytest.raises(uc.ChainReloadError) as err:
        watcher.run()
    assert 'did not finish within timeout=3s' in str(err.value)
    assert 'workers not replaced yet: 2, 3, 4' in str(err.value)


def test_stats_server_gone_during_reload(fixture_doc):
    base = fixture_doc('basic')
    script = Script(base, [])
    script.docs = [base] + [StatsError('connection refused by stats server x', reason='refused')] * 100
    clock = Clock()
    watcher = uc.ChainReload(socket='/s.sock', touch_file='/t', reader=script, clock=clock, sleep=clock.sleep,
                             trigger=lambda: 'touch:/t', worker_timeout=4, poll_interval=0.5)
    with pytest.raises(uc.ChainReloadError) as err:
        watcher.run()
    assert 'unreachable' in str(err.value) and 'may have died' in str(err.value)


def test_transient_stats_error_is_tolerated(fixture_doc):
    base = fixture_doc('basic')
    clock = Clock()
    done = copy.deepcopy(base)
    for i in (1, 2, 3, 4):
        worker_state(done, i, pid=9000 + i, accepting=True, last_spawn=int(T0), respawn_count=2)
    script = Script(base, [])
    script.docs = [base, StatsError('timed out', reason='timeout'), done]
    watcher = uc.ChainReload(socket='/s.sock', touch_file='/t', reader=script, clock=clock, sleep=clock.sleep,
                             trigger=lambda: 'touch:/t', worker_timeout=4, poll_interval=0.5)
    assert len(watcher.run()['new_pids']) == 4


def test_nothing_to_reload(fixture_doc):
    doc = fixture_doc('cheaper')
    for w in doc['workers']:
        w['status'] = 'cheap'
        w['pid'] = 0
    watcher, _s, _c, fired = make(doc, [])
    with pytest.raises(uc.ChainReloadError) as err:
        watcher.run()
    assert 'no running worker' in str(err.value)
    assert fired == []


# -- triggers -----------------------------------------------------------

def test_touch_creates_missing_file(tmp_path):
    path = tmp_path / 'chain-reload'
    uc.touch_trigger(str(path), now=T0)
    assert path.exists()
    assert os.stat(str(path)).st_mtime == T0


def test_touch_moves_mtime_by_a_whole_second(tmp_path):
    path = tmp_path / 'chain-reload'
    path.write_text('')
    os.utime(str(path), (T0, T0))
    uc.touch_trigger(str(path), now=T0 + 0.2)
    assert os.stat(str(path)).st_mtime >= T0 + 1
    uc.touch_trigger(str(path), now=T0 + 100)
    assert os.stat(str(path)).st_mtime == T0 + 100


def test_touch_in_missing_directory(tmp_path):
    with pytest.raises(uc.ChainReloadError) as err:
        uc.touch_trigger(str(tmp_path / 'nope' / 'chain-reload'))
    assert 'cannot touch trigger file' in str(err.value)


def test_fifo_write_reaches_reader(tmp_path):
    path = str(tmp_path / 'master.fifo')
    os.mkfifo(path)
    got = []
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        uc.write_fifo(path, b'c')
        got.append(os.read(fd, 10))
    finally:
        os.close(fd)
    assert got == [b'c']


def test_fifo_without_reader(tmp_path):
    path = str(tmp_path / 'master.fifo')
    os.mkfifo(path)
    with pytest.raises(uc.ChainReloadError) as err:
        uc.write_fifo(path)
    assert 'no uWSGI master reads the FIFO' in str(err.value)


def test_fifo_missing(tmp_path):
    with pytest.raises(uc.ChainReloadError) as err:
        uc.write_fifo(str(tmp_path / 'master.fifo'))
    assert 'does not exist' in str(err.value) and 'master-fifo' in str(err.value)


def test_fifo_not_a_fifo(tmp_path):
    path = tmp_path / 'master.fifo'
    path.write_text('')
    with pytest.raises(uc.ChainReloadError) as err:
        uc.write_fifo(str(path))
    assert 'is not a FIFO' in str(err.value)


def test_real_trigger_used_without_override(tmp_path, fixture_doc):
    base = fixture_doc('basic')
    done = copy.deepcopy(base)
    for i in (1, 2, 3, 4):
        worker_state(done, i, pid=9000 + i, last_spawn=int(T0) + 1, respawn_count=2)
    trigger = tmp_path / 'chain-reload'
    clock = Clock()
    script = Script(base, [])
    script.docs = [base, done]
    watcher = uc.ChainReload(socket='/s.sock', touch_file=str(trigger), reader=script, clock=clock,
                             sleep=clock.sleep)
    res = watcher.run()
    assert res['trigger'] == 'touch:%s' % trigger
    assert trigger.exists()


# -- log excerpt ----------------------------------------------------------

def test_tail_lines(tmp_path):
    path = tmp_path / 'log'
    path.write_text(''.join('line %d\n' % i for i in range(1000)))
    assert uc.tail_lines(str(path), 3) == ['line 997', 'line 998', 'line 999']
    assert uc.tail_lines(str(tmp_path / 'missing'), 3) == []
    assert uc.tail_lines(None, 3) == []
    assert uc.tail_lines(str(path), 0) == []


@pytest.mark.parametrize('lines, expected', [
    (['ok', "ModuleNotFoundError: No module named 'x'", 'DAMN ! worker 1 died'],
     "ModuleNotFoundError: No module named 'x'"),
    (['Traceback (most recent call last):', '  File "x.py", line 1', '    raise ImproperlyConfigured()',
      'django.core.exceptions.ImproperlyConfigured: SECRET_KEY missing', 'unable to load app 0'],
     'django.core.exceptions.ImproperlyConfigured: SECRET_KEY missing'),
    (['Traceback (most recent call last):', '  File "x.py", line 1', 'SystemExit: 1',
      "ModuleNotFoundError: No module named 'y'"], 'SystemExit: 1'),
    (['worker respawning too fast !!! i have to sleep a bit (2 seconds)...'],
     'worker respawning too fast !!! i have to sleep a bit (2 seconds)...'),
    (['all good', 'nothing here'], None),
])
def test_explain_log(lines, expected):
    assert uc.explain_log(lines) == expected


def test_fifo_reader_thread_sees_command(tmp_path):
    """A blocking reader, like the uWSGI master, receives exactly "c"."""
    path = str(tmp_path / 'master.fifo')
    os.mkfifo(path)
    received = []
    ready = threading.Event()

    def reader():
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        ready.set()
        for dummy in range(100):
            try:
                data = os.read(fd, 10)
            except BlockingIOError:
                data = b''
            if data:
                received.append(data)
                break
            threading.Event().wait(0.01)
        os.close(fd)

    thread = threading.Thread(target=reader)
    thread.start()
    ready.wait(2)
    uc.write_fifo(path)
    thread.join(3)
    assert received == [b'c']


# -- a chain that is already running --------------------------------------

@pytest.mark.parametrize('lines, expected', [
    ([], None),
    (['Sun Nov 22 10:53:50 2026 - chain reload starting...',
      'Sun Nov 22 10:53:50 2026 - chain next victim is worker 1',
      'Sun Nov 22 10:53:52 2026 - chain reloading complete'], None),
    (['Sun Nov 22 10:53:50 2026 - chain reload starting...',
      'Sun Nov 22 10:53:50 2026 - chain next victim is worker 1',
      'Sun Nov 22 10:53:51 2026 - chain is still waiting for worker 1...',
      'DAMN ! worker 1 (pid: 7209) died :( trying respawn ...'], 1),
    (['chain reload starting...', 'chain next victim is worker 3'], 3),
    (['chain reload starting...'], 0),
    (['chain reload starting...', 'chain next victim is worker 1',
      '*** Starting uWSGI 2.0.31 (64bit) on [Sun Nov 22 10:54:02 2026] ***'], None),
])
def test_running_chain(lines, expected):
    assert uc.running_chain(lines) == expected


def test_waits_for_running_chain_before_trigger(fixture_doc, tmp_path):
    log = tmp_path / 'log'
    log.write_text('chain reload starting...\nchain is still waiting for worker 1...\n')
    base = fixture_doc('basic')
    clock = Clock()
    done = copy.deepcopy(base)
    for i in (1, 2, 3, 4):
        worker_state(done, i, pid=9000 + i, last_spawn=int(T0) + 10, respawn_count=3)

    def sleep(seconds):
        clock.sleep(seconds)
        if clock() - T0 >= 2 and 'complete' not in log.read_text():
            with open(str(log), 'a') as handle:
                handle.write('chain next victim is worker 2\nchain reloading complete\n')

    fired = []
    script = Script(base, [])
    script.docs = [base, base, done]
    watcher = uc.ChainReload(socket='/s.sock', touch_file='/t', reader=script, clock=clock, sleep=sleep,
                             trigger=lambda: fired.append(clock()) or 'touch:/t', log_file=str(log),
                             worker_timeout=10, poll_interval=0.5)
    res = watcher.run()
    assert res['waited_for_running_chain'] == 2.0
    assert fired == [T0 + 2.0]
    assert len(res['new_pids']) == 4


def test_running_chain_that_stalls_fails(fixture_doc, tmp_path):
    log = tmp_path / 'log'
    log.write_text("ModuleNotFoundError: No module named 'gone'\nchain reload starting...\n"
                   "chain is still waiting for worker 2...\n")
    fired = []
    watcher, _s, _c, _f = make(fixture_doc('basic'), [], triggered=fired, log_file=str(log), worker_timeout=3)
    with pytest.raises(uc.ChainReloadError) as err:
        watcher.run()
    assert 'a previous chain reload is still running and stalled at worker 2' in str(err.value)
    assert fired == []
    assert err.value.details['stalled_worker'] == 2


def test_ignored_trigger_is_repeated_after_running_chain(fixture_doc, tmp_path):
    """The log had no sign of a running chain, but uWSGI says it ignored the touch."""
    log = tmp_path / 'log'
    log.write_text('spawned uWSGI worker 4\n')
    base = fixture_doc('basic')
    clock = Clock()
    other_chain = copy.deepcopy(base)
    worker_state(other_chain, 2, pid=8002, last_spawn=int(T0), respawn_count=2)
    done = copy.deepcopy(other_chain)
    for i in (1, 2, 3, 4):
        worker_state(done, i, pid=9000 + i, last_spawn=int(T0) + 5, respawn_count=3)
    fired = []

    def trigger():
        fired.append(clock())
        with open(str(log), 'a') as handle:
            if len(fired) == 1:
                handle.write('*** chain-reload has been touched... but chain reload is already running ***\n'
                             'chain is still waiting for worker 2...\n')
        return 'touch:/t'

    def sleep(seconds):
        clock.sleep(seconds)
        if clock() - T0 >= 3 and 'complete' not in log.read_text():
            with open(str(log), 'a') as handle:
                handle.write('chain reloading complete\n')

    script = Script(base, [])
    script.docs = [base, other_chain, other_chain, other_chain, other_chain, other_chain, other_chain,
                   other_chain, other_chain, done]
    watcher = uc.ChainReload(socket='/s.sock', touch_file='/t', reader=script, clock=clock, sleep=sleep,
                             trigger=trigger, log_file=str(log), worker_timeout=10, poll_interval=0.5)
    res = watcher.run()
    assert len(fired) == 2
    assert res['waited_for_running_chain'] == 3.0
    assert res['old_pids']['2'] == 8002
    assert res['new_pids'] == {'1': 9001, '2': 9002, '3': 9003, '4': 9004}


def test_log_since_trigger_names_the_new_error(fixture_doc, tmp_path):
    """The cause is looked for in what was logged after the trigger, all of it."""
    log = tmp_path / 'web1.log'
    log.write_text("ImportError: an old failure of an earlier release\n")
    steps = [None, replace(1, 9001, accepting=False, respawn=2), replace(1, 9002, accepting=False, respawn=3),
             replace(1, 9003, accepting=False, respawn=4), replace(1, 9004, accepting=False, respawn=5)]
    watcher, script, _clock, _f = make(fixture_doc('basic'), steps, max_respawns=3, log_file=str(log),
                                       log_lines=3)
    original = script.__call__

    def reader():
        if script.calls == 1:
            # Written after the trigger: a traceback, then more lines than log_lines.
            with open(str(log), 'a') as handle:
                handle.write('Traceback (most recent call last):\n  File "x.py", line 1\n'
                             "ModuleNotFoundError: No module named 'v3_only'\n"
                             + ''.join('respawn line %d\n' % n for n in range(10)))
        return original()
    watcher.reader = reader
    with pytest.raises(uc.ChainReloadError) as err:
        watcher.run()
    details = err.value.details
    assert details['log_error'] == "ModuleNotFoundError: No module named 'v3_only'"
    assert details['log_tail'] == ['respawn line 7', 'respawn line 8', 'respawn line 9']
    assert 'since the trigger' in str(err.value)
    assert 'old failure' not in str(err.value)


def test_master_restart_fails_at_once(fixture_doc):
    def restart(doc):
        doc['pid'] = 77777
    steps = [replace(1, 9001), restart, replace(2, 9002)]
    watcher, _s, clock, _f = make(fixture_doc('basic'), steps, worker_timeout=30, timeout=100)
    with pytest.raises(uc.ChainReloadError) as err:
        watcher.run()
    assert 'master of /run/uwsgi/web1/stats.sock restarted during the chain reload' in str(err.value)
    assert err.value.details['master_pid_now'] == 77777
    assert clock() - T0 <= 1.5


def test_nudges_only_while_an_old_worker_is_awaited(fixture_doc):
    nudged = []
    clock = Clock()
    # Worker 1 is replaced at once; worker 2 exits only after 4 s of waiting.
    steps = [replace(1, 9001)] + [None] * 8 + [replace(2, 9002), replace(3, 9003), replace(4, 9004)]
    watcher, _s, _c, _f = make(fixture_doc('basic'), steps, clock=clock, worker_timeout=30,
                               nudge=lambda: nudged.append(clock()), nudge_after=2.0)
    res = watcher.run()
    assert res['new_pids'] == {'1': 9001, '2': 9002, '3': 9003, '4': 9004}
    assert res['nudges'] == len(nudged) > 0
    # None before 2 s of waiting after worker 1 (ready at the first poll); none once all are replaced.
    assert min(nudged) == T0 + 2.0
    assert max(nudged) < T0 + res['duration']


def test_no_nudge_without_nudger_or_when_fast(fixture_doc):
    steps = [replace(1, 9001), replace(2, 9002), replace(3, 9003), replace(4, 9004)]
    nudged = []
    watcher, _s, _c, _f = make(fixture_doc('basic'), steps, nudge=lambda: nudged.append(1))
    assert watcher.run()['nudges'] == 0 and nudged == []

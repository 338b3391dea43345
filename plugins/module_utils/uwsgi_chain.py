# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Trigger a uWSGI chain reload and follow it on the stats server.

A chain reload replaces workers one at a time: uWSGI kills worker 1, waits
until its replacement accepts, then moves to worker 2, and so on. This
watcher snapshots the worker pids, triggers the chain (touching the
``touch-chain-reload`` file or writing ``c`` to the master FIFO) and polls
the stats server until every worker that was running has a new pid, accepts
and was spawned after the trigger. It fails fast on a stall: a worker that
respawns again and again, or does not accept within ``worker_timeout``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import os
import re
import stat
import time

from ansible_collections.webstack.django_uwsgi.plugins.module_utils.uwsgi_stats import (
    DEFAULT_TIMEOUT,
    Snapshot,
    StatsError,
    parse_address,
    read_stats,
)

_ERROR_LINE_RE = re.compile(r'^\s*([A-Za-z_][\w.]*(Error|Exception|Exit)|KeyboardInterrupt)\b.*')
_UWSGI_HINT_RE = re.compile(r'(unable to load app|no app loaded|GAME OVER|died :\(|'
                            r'respawning too fast|OOPS|MEMORY|HARAKIRI|segmentation fault)', re.I)


class ChainReloadError(Exception):
    """The chain reload did not complete; ``details`` goes into the module result."""

    def __init__(self, message, details=None):
        super(ChainReloadError, self).__init__(message)
        self.details = details or {}


def tail_lines(path, count=20, max_bytes=256 * 1024):
    """Last ``count`` lines of a text file, or [] when it cannot be read."""
    if not path or count <= 0:
        return []
    try:
        with open(path, 'rb') as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(size - max_bytes, 0))
            data = handle.read()
    except (IOError, OSError):
        return []
    lines = data.decode('utf-8', 'replace').splitlines()
    return lines[-count:]


def explain_log(lines):
    """The line that best explains a failure: the last exception line, else a uWSGI complaint."""
    # The exception line closes a traceback: the first unindented line after it.
    for start in range(len(lines) - 1, -1, -1):
        if lines[start].startswith('Traceback (most recent call last)'):
            for line in lines[start + 1:]:
                if line.strip() and not line[0].isspace():
                    return line.strip()
            break
    for line in reversed(lines):
        if _ERROR_LINE_RE.match(line):
            return line.strip()
    for line in reversed(lines):
        if _UWSGI_HINT_RE.search(line):
            return line.strip()
    return None


_CHAIN_START_RE = re.compile(r'chain reload starting')
_CHAIN_DONE_RE = re.compile(r'chain reloading complete')
_CHAIN_WORKER_RE = re.compile(r'chain (?:next victim is|is still waiting for) worker (\d+)')
_MASTER_START_RE = re.compile(r'\*\*\* Starting uWSGI|spawned uWSGI master process')


def running_chain(lines):
    """Whether the log shows a chain reload that has not completed.

    Returns None when no chain is running, else the worker it is at (or 0
    when the log does not say). uWSGI ignores a new trigger while a chain
    runs ("chain reload already running..."), so the caller must wait.
    """
    for line in reversed(lines):
        if _CHAIN_DONE_RE.search(line) or _MASTER_START_RE.search(line):
            return None
        match = _CHAIN_WORKER_RE.search(line)
        if match:
            return int(match.group(1))
        if _CHAIN_START_RE.search(line):
            return 0
    return None


def lines_since(path, offset, max_bytes=1024 * 1024):
    """Lines a log file got after byte ``offset`` (at most the last ``max_bytes``), or None."""
    if not path or offset is None:
        return None
    try:
        with open(path, 'rb') as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            if size < offset:
                # Rotated or truncated since: all of it is new.
                offset = 0
            handle.seek(max(offset, size - max_bytes))
            data = handle.read()
    except (IOError, OSError):
        return None
    return data.decode('utf-8', 'replace').splitlines()


def log_size(path):
    try:
        return os.stat(path).st_size if path else None
    except OSError:
        return None


def trigger_ignored(path, offset):
    """Whether uWSGI logged, after ``offset``, that it ignored a trigger because a chain runs."""
    if offset is None:
        return False
    try:
        with open(path, 'rb') as handle:
            handle.seek(offset)
            data = handle.read(1024 * 1024).decode('utf-8', 'replace')
    except (IOError, OSError):
        return False
    return 'chain reload is already running' in data or 'chain reload already running' in data


def touch_trigger(path, now=None):
    """Touch the touch-chain-reload file so that uWSGI sees a new mtime.

    uWSGI compares whole-second mtimes, so the new mtime is at least one
    second after the previous one even when two reloads come quickly.
    """
    now = time.time() if now is None else now
    try:
        old = os.stat(path).st_mtime
    except OSError as exc:
        if exc.errno != errno.ENOENT:
            raise ChainReloadError('cannot stat trigger file %s: %s' % (path, exc.strerror))
        old = None
    try:
        if old is None:
            with open(path, 'a'):
                pass
        stamp = now if old is None else max(now, int(old) + 1)
        os.utime(path, (stamp, stamp))
    except (IOError, OSError) as exc:
        raise ChainReloadError('cannot touch trigger file %s: %s (does its directory exist, and is the '
                               'task run as a user that may write there?)' % (path, exc.strerror))


def write_fifo(path, command=b'c'):
    """Write a command to the uWSGI master FIFO without blocking."""
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        if exc.errno == errno.ENOENT:
            raise ChainReloadError('master FIFO %s does not exist: is `master-fifo = %s` in the instance '
                                   'config and is the instance running?' % (path, path))
        raise ChainReloadError('cannot stat master FIFO %s: %s' % (path, exc.strerror))
    if not stat.S_ISFIFO(mode):
        raise ChainReloadError('%s is not a FIFO: give the path of `master-fifo`' % path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise ChainReloadError('no uWSGI master reads the FIFO %s: the instance is not running' % path)
        raise ChainReloadError('cannot open master FIFO %s: %s' % (path, exc.strerror))
    try:
        os.write(fd, command)
    finally:
        os.close(fd)


class ChainReload(object):
    """Follow one chain reload; every collaborator can be replaced in tests."""

    def __init__(self, socket, touch_file=None, master_fifo=None, timeout=300.0, worker_timeout=60.0,
                 poll_interval=0.5, max_respawns=3, require_app=True, log_file=None, log_lines=20,
                 stats_timeout=DEFAULT_TIMEOUT, reader=None, clock=None, sleep=None, trigger=None,
                 nudge=None, nudge_after=2.0):
        self.address = parse_address(socket)
        self.socket = socket
        self.touch_file = touch_file
        self.master_fifo = master_fifo
        self.timeout = float(timeout)
        self.worker_timeout = float(worker_timeout)
        self.poll_interval = float(poll_interval)
        self.max_respawns = int(max_respawns)
        self.require_app = require_app
        self.log_file = log_file
        self.log_lines = int(log_lines)
        self.stats_timeout = float(stats_timeout)
        self.reader = reader or (lambda: read_stats(self.address, self.stats_timeout))
        self.clock = clock or time.time
        self.sleep = sleep or time.sleep
        self._trigger = trigger
        # nudge(): one light request to the instance. uWSGI 2.0 ends a
        # threaded worker's graceful reload only when each of its threads has
        # taken one more request, so on an idle instance every step of the
        # chain would wait worker-reload-mercy; nudges supply those requests.
        self.nudge = nudge
        self.nudge_after = float(nudge_after)
        self._log_offset = None

    # -- pieces --------------------------------------------------------
    def snapshot(self):
        return Snapshot(self.reader(), self.clock(), self.socket)

    def trigger(self):
        if self._trigger is not None:
            return self._trigger()
        if self.touch_file:
            touch_trigger(self.touch_file, self.clock())
            return 'touch:%s' % self.touch_file
        if self.master_fifo:
            write_fifo(self.master_fifo, b'c')
            return 'fifo:%s' % self.master_fifo
        raise ChainReloadError('no trigger given: set touch_file or master_fifo')

    def plan(self, snap):
        """Workers that must be replaced: every running, non-cheap worker."""
        targets = dict((w.id, w) for w in snap.workers if not w.cheap)
        if not targets:
            raise ChainReloadError('the instance at %s has no running worker to reload (all cheap or dead)'
                                   % self.socket, {'old_pids': {}})
        return targets

    def _log(self):
        """The log lines to show, and the line that explains the failure.

        Once triggered, only what the instance logged since the trigger
        counts: the cause (an import error of the first respawn, say) is
        looked for in all of it, the last ``log_lines`` are shown.
        """
        since = lines_since(self.log_file, self._log_offset)
        if not since:
            # Not triggered yet, or nothing logged since: the end of the log.
            lines = tail_lines(self.log_file, self.log_lines)
            return lines, explain_log(lines), False
        return since[-self.log_lines:] if self.log_lines > 0 else [], explain_log(since), True

    def _fail(self, message, state, extra=None):
        lines, cause, since_trigger = self._log()
        if cause:
            message += '. Last error in %s: %s' % (self.log_file, cause)
        if lines:
            message += '\nLast %d lines of %s%s:\n%s' % (
                len(lines), self.log_file, ' since the trigger' if since_trigger else '',
                '\n'.join(lines))
        elif self.log_file:
            message += ' (log file %s could not be read)' % self.log_file
        details = dict(state)
        details['log_tail'] = lines
        details['log_error'] = cause
        if extra:
            details.update(extra)
        raise ChainReloadError(message, details)

    def wait_running_chain(self):
        """Wait for a chain reload that is already running (seen in the log) to finish.

        Returns the seconds waited. A running chain that makes no progress
        for worker_timeout is a stall of that chain.
        """
        if not self.log_file:
            return 0.0
        start = self.clock()
        at = running_chain(tail_lines(self.log_file, 400))
        if at is None:
            return 0.0
        last_change, last_at = start, at
        while at is not None:
            now = self.clock()
            if at != last_at:
                last_change, last_at = now, at
            if now - last_change > self.worker_timeout or now - start > self.timeout:
                self._fail('a previous chain reload is still running and stalled at worker %s for more than '
                           'worker_timeout=%.0fs; uWSGI ignores new triggers until it completes'
                           % (at or '?', self.worker_timeout),
                           {'old_pids': {}, 'new_pids': {}, 'workers': [], 'duration': 0.0, 'trigger': None},
                           {'stalled_worker': at or None})
            self.sleep(self.poll_interval)
            at = running_chain(tail_lines(self.log_file, 400))
        return round(self.clock() - start, 3)

    # -- the watch -----------------------------------------------------
    def run(self, check_mode=False):
        before = self.snapshot()
        targets = self.plan(before)
        old_pids = dict((str(i), w.pid) for i, w in sorted(targets.items()))
        result = {
            'old_pids': old_pids,
            'new_pids': {},
            'workers': [],
            'duration': 0.0,
            'trigger': None,
        }
        if check_mode:
            return result

        result['waited_for_running_chain'] = self.wait_running_chain()
        if result['waited_for_running_chain']:
            before = self.snapshot()
            targets = self.plan(before)
            result['old_pids'] = dict((str(i), w.pid) for i, w in sorted(targets.items()))
        trigger_wall = self.clock()
        offset = self._log_offset = log_size(self.log_file)
        result['trigger'] = self.trigger()
        result['nudges'] = 0
        last_nudge = 0.0
        retriggered = False
        trigger_second = int(trigger_wall)
        deadline = trigger_wall + self.timeout
        # A worker's turn starts at the trigger or when the previous worker
        # finished; if nothing changes for worker_timeout the chain is stuck.
        last_progress = trigger_wall
        started = {}     # id -> time its replacement was first seen
        ready = {}       # id -> (new pid, seconds after trigger)
        unreachable_since = None

        while True:
            now = self.clock()
            try:
                snap = self.snapshot()
                unreachable_since = None
            except StatsError as exc:
                if unreachable_since is None:
                    unreachable_since = now
                if now - unreachable_since >= min(self.worker_timeout, 10.0):
                    self._fail('stats server %s unreachable for %.0fs during the chain reload: %s (the '
                               'instance may have died)' % (self.socket, now - unreachable_since, exc),
                               self._state(result, ready, targets, trigger_wall, now))
                snap = None
            if snap is not None and before.pid and snap.pid and snap.pid != before.pid:
                self._fail('the uWSGI master of %s restarted during the chain reload (pid %d, now %d): the '
                           'instance was restarted (crash, supervisor, reboot), not reloaded worker by worker'
                           % (self.socket, before.pid, snap.pid),
                           self._state(result, ready, targets, trigger_wall, now),
                           {'stalled_worker': None, 'master_pid_before': before.pid, 'master_pid_now': snap.pid})
            if snap is not None:
                current = snap.by_id()
                for wid, old in sorted(targets.items()):
                    if wid in ready:
                        continue
                    w = current.get(wid)
                    if w is None:
                        continue
                    replaced = w.pid != old.pid or w.respawn_count != old.respawn_count
                    if not replaced:
                        continue
                    started.setdefault(wid, now)
                    respawns = w.respawn_count - old.respawn_count
                    if respawns > self.max_respawns:
                        self._fail(
                            'chain reload stalled at worker %d: it respawned %d times since the trigger '
                            '(respawn_count %d, limit max_respawns=%d) without staying up'
                            % (wid, respawns, w.respawn_count, self.max_respawns),
                            self._state(result, ready, targets, trigger_wall, now),
                            {'stalled_worker': wid, 'respawn_count': w.respawn_count, 'respawns': respawns})
                    spawned_after = w.last_spawn is None or w.last_spawn >= trigger_second
                    if w.pid > 0 and w.pid != old.pid and w.accepting and spawned_after and not w.cheap:
                        if self.require_app and old.apps and w.apps == 0:
                            self._fail(
                                'worker %d (pid %d) came up after the chain reload without any application '
                                'loaded (uWSGI "full dynamic mode"): the new code failed to import'
                                % (wid, w.pid),
                                self._state(result, ready, targets, trigger_wall, now),
                                {'stalled_worker': wid, 'respawn_count': w.respawn_count})
                        ready[wid] = (w.pid, round(now - trigger_wall, 3), w.respawn_count)
                        last_progress = now
                        continue
                    if now - started[wid] > self.worker_timeout:
                        self._fail(
                            'chain reload stalled at worker %d: its replacement (pid %d, respawn_count %d) '
                            'is not accepting after worker_timeout=%.0fs'
                            % (wid, w.pid, w.respawn_count, self.worker_timeout),
                            self._state(result, ready, targets, trigger_wall, now),
                            {'stalled_worker': wid, 'respawn_count': w.respawn_count,
                             'respawns': respawns})
                if len(ready) == len(targets):
                    break
            if not retriggered and offset is not None and trigger_ignored(self.log_file, offset):
                # Someone else's chain was running: uWSGI ignored ours. Let
                # that chain finish, then trigger again, once.
                retriggered = True
                result['waited_for_running_chain'] += self.wait_running_chain()
                before = self.snapshot()
                targets = self.plan(before)
                result['old_pids'] = dict((str(i), w.pid) for i, w in sorted(targets.items()))
                started, ready = {}, {}
                trigger_wall = self.clock()
                offset = self._log_offset = log_size(self.log_file)
                result['trigger'] = self.trigger()
                trigger_second = int(trigger_wall)
                deadline = trigger_wall + self.timeout
                last_progress = trigger_wall
                continue
            in_progress = [wid for wid in started if wid not in ready]
            if (self.nudge is not None and not in_progress and now - last_progress >= self.nudge_after
                    and now - last_nudge >= self.poll_interval):
                last_nudge = now
                result['nudges'] += 1
                # A nudge only hurries an idle worker along: it handles its own errors.
                self.nudge()
            if not in_progress and now - last_progress > self.worker_timeout:
                if not ready:
                    how = ('touched %s: is `touch-chain-reload = %s` in the instance config?'
                           % (self.touch_file, self.touch_file) if self.touch_file else
                           'wrote "c" to %s: is it the master-fifo of this instance?' % self.master_fifo)
                    msg = ('uWSGI did not start replacing any worker within worker_timeout=%.0fs after the '
                           'trigger (%s)' % (self.worker_timeout, how))
                else:
                    waiting = sorted(set(targets) - set(ready))
                    msg = ('chain reload stalled: worker %d was not replaced within worker_timeout=%.0fs '
                           'after the previous worker (an old worker finishing a long request can hold it up '
                           'to worker-reload-mercy; raise worker_timeout above it)' % (waiting[0], self.worker_timeout))
                self._fail(msg, self._state(result, ready, targets, trigger_wall, now),
                           {'stalled_worker': (sorted(set(targets) - set(ready)) or [None])[0]})
            if now >= deadline:
                waiting = sorted(set(targets) - set(ready))
                self._fail('chain reload did not finish within timeout=%.0fs; workers not replaced yet: %s'
                           % (self.timeout, ', '.join(str(i) for i in waiting)),
                           self._state(result, ready, targets, trigger_wall, now),
                           {'stalled_worker': waiting[0] if waiting else None})
            self.sleep(self.poll_interval)

        state = self._state(result, ready, targets, trigger_wall, self.clock())
        return state

    def _state(self, result, ready, targets, trigger_wall, now):
        out = dict(result)
        out['new_pids'] = dict((str(i), ready[i][0]) for i in sorted(ready))
        out['workers'] = [{
            'id': wid,
            'old_pid': old.pid,
            'new_pid': ready[wid][0] if wid in ready else None,
            'replaced_after': ready[wid][1] if wid in ready else None,
            'respawn_count': ready[wid][2] if wid in ready else None,
        } for wid, old in sorted(targets.items())]
        out['duration'] = round(now - trigger_wall, 3)
        return out

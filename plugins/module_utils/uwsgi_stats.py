# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Client for the uWSGI stats server and the arithmetic behind uwsgi_stats.

The stats server (``stats = ...`` in a uWSGI ini) writes one JSON document
and closes the connection. It listens on a unix socket, on TCP ``host:port``
or, with ``stats-http``, answers HTTP on ``host:port``. Documents differ
between uWSGI versions and platforms: ``accepting``, ``harakiri_count`` and
``cores`` are missing in older releases, ``listen_queue`` is only filled on
Linux. Everything here tolerates those gaps.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import re
import socket
import time

DEFAULT_TIMEOUT = 5.0
MAX_DOCUMENT_BYTES = 64 * 1024 * 1024
# Verdict threshold used when the caller gives no max_share_ratio.
REPORT_SHARE_RATIO = 1.5

VERDICT_BALANCED = 'balanced'
VERDICT_IMBALANCED = 'imbalanced'
VERDICT_INSUFFICIENT = 'insufficient_traffic'

_TCP_RE = re.compile(r'^(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+):(?P<port>[0-9]{1,5})$')
_HTTP_RE = re.compile(r'^https?://(?P<host>\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9_.-]+)(?::(?P<port>[0-9]{1,5}))?(?P<path>/.*)?$')


class StatsError(Exception):
    """A stats server could not be read; the message says why and what to check."""

    def __init__(self, message, address=None, reason=None):
        super(StatsError, self).__init__(message)
        self.address = address
        self.reason = reason


class StatsAddress(object):
    """Where a stats server listens: kind is unix, tcp or http."""

    def __init__(self, kind, raw, path=None, host=None, port=None, url_path='/'):
        self.kind = kind
        self.raw = raw
        self.path = path
        self.host = host
        self.port = port
        self.url_path = url_path

    def __repr__(self):
        return 'StatsAddress(%s, %r)' % (self.kind, self.raw)


def parse_address(raw):
    """Classify a stats address.

    ``http://host:port`` is stats-http, ``host:port`` TCP, anything else
    (an absolute or relative path, ``@name`` for the abstract namespace)
    a unix socket.
    """
    if not isinstance(raw, str) or not raw.strip():
        raise StatsError('empty stats socket address', address=raw, reason='invalid')
    raw = raw.strip()
    if raw.startswith('http://') or raw.startswith('https://'):
        if raw.startswith('https://'):
            raise StatsError('%s: the uWSGI stats server does not speak TLS; use http://' % raw,
                             address=raw, reason='invalid')
        match = _HTTP_RE.match(raw)
        if not match:
            raise StatsError('%s is not a valid http://host:port stats address' % raw,
                             address=raw, reason='invalid')
        port = int(match.group('port') or 80)
        if not 0 < port < 65536:
            raise StatsError('%s: port out of range' % raw, address=raw, reason='invalid')
        return StatsAddress('http', raw, host=match.group('host').strip('[]'), port=port,
                            url_path=match.group('path') or '/')
    if '/' not in raw and not raw.startswith('@'):
        match = _TCP_RE.match(raw)
        if match:
            port = int(match.group('port'))
            if not 0 < port < 65536:
                raise StatsError('%s: port out of range' % raw, address=raw, reason='invalid')
            return StatsAddress('tcp', raw, host=match.group('host').strip('[]'), port=port)
    return StatsAddress('unix', raw, path=raw)


def _connect(addr, deadline):
    remaining = max(deadline - time.time(), 0.001)
    if addr.kind == 'unix':
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(remaining)
        target = addr.path
        if target.startswith('@'):
            target = '\0' + target[1:]
        try:
            sock.connect(target)
        except BaseException:
            sock.close()
            raise
        return sock
    try:
        infos = socket.getaddrinfo(addr.host, addr.port, 0, socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise StatsError('cannot resolve host %r of stats address %s: %s' % (addr.host, addr.raw, exc),
                         address=addr.raw, reason='resolve')
    last = None
    for family, socktype, proto, _canon, sockaddr in infos:
        sock = socket.socket(family, socktype, proto)
        sock.settimeout(max(deadline - time.time(), 0.001))
        try:
            sock.connect(sockaddr)
            return sock
        except (socket.timeout, OSError) as exc:
            sock.close()
            last = exc
    raise last


def _explain_os_error(addr, exc, timeout):
    """Turn a socket error into a message an operator can act on."""
    where = addr.raw
    if isinstance(exc, socket.timeout):
        return StatsError(
            'timed out after %.1fs reading the stats server at %s: the uWSGI master is busy or '
            'stuck, or something else listens there' % (timeout, where),
            address=where, reason='timeout')
    code = getattr(exc, 'errno', None)
    if code == errno.ENOENT:
        return StatsError(
            'stats socket %s does not exist: is the uWSGI instance running, and does its config '
            'have `stats = %s`?' % (where, where), address=where, reason='missing')
    if code in (errno.EACCES, errno.EPERM):
        return StatsError(
            'permission denied connecting to stats socket %s: stats sockets are root-only, run the '
            'task with become: true (or as the socket owner)' % where, address=where, reason='permission')
    if code == errno.ECONNREFUSED:
        if addr.kind == 'unix':
            hint = 'the socket file exists but nothing listens on it (stale file of a stopped uWSGI?)'
        else:
            hint = 'nothing listens on that port (uWSGI stopped, or `stats` points elsewhere?)'
        return StatsError('connection refused by stats server %s: %s' % (where, hint),
                          address=where, reason='refused')
    if code == errno.ENOTSOCK or code == errno.ENOTDIR:
        return StatsError('%s is not a unix socket: check the stats path' % where,
                          address=where, reason='not_socket')
    if code in (errno.ECONNRESET, errno.EPIPE):
        hint = ''
        if addr.kind == 'http':
            hint = ': if it is a plain `stats` server (not stats-http), give it as host:port without http://'
        return StatsError('stats server %s reset the connection before sending its document%s' % (where, hint),
                          address=where, reason='reset')
    return StatsError('cannot read stats server %s: %s' % (where, exc), address=where, reason='os_error')


def _read_all(sock, deadline):
    chunks = []
    size = 0
    while True:
        remaining = deadline - time.time()
        if remaining <= 0:
            raise socket.timeout('timed out')
        sock.settimeout(remaining)
        try:
            data = sock.recv(65536)
        except OSError as exc:
            if chunks and getattr(exc, 'errno', None) == errno.ECONNRESET:
                break
            raise
        if not data:
            break
        chunks.append(data)
        size += len(data)
        if size > MAX_DOCUMENT_BYTES:
            break
    return b''.join(chunks)


def _quote(data, limit=80):
    """First bytes of a reply, printable, for error messages."""
    head = data[:limit]
    text = repr(head)
    if text.startswith("b'") or text.startswith('b"'):
        text = text[1:]
    if len(data) > limit:
        text += '...'
    return text


def fetch_raw(address, timeout=DEFAULT_TIMEOUT):
    """Read one stats reply (bytes of the JSON body) from ``address``."""
    addr = address if isinstance(address, StatsAddress) else parse_address(address)
    deadline = time.time() + timeout
    try:
        sock = _connect(addr, deadline)
    except StatsError:
        raise
    except (socket.timeout, OSError) as exc:
        raise _explain_os_error(addr, exc, timeout)
    try:
        if addr.kind == 'http':
            request = ('GET %s HTTP/1.0\r\nHost: %s:%d\r\nAccept: application/json\r\n'
                       'Connection: close\r\n\r\n' % (addr.url_path, addr.host, addr.port))
            try:
                sock.sendall(request.encode('ascii'))
            except OSError:
                # A plain stats server writes without reading; read what it sent.
                pass
        data = _read_all(sock, deadline)
    except (socket.timeout, OSError) as exc:
        raise _explain_os_error(addr, exc, timeout)
    finally:
        sock.close()
    if addr.kind == 'http':
        data = _http_body(addr, data)
    return data


def _http_body(addr, data):
    head, sep, body = data.partition(b'\r\n\r\n')
    if not sep:
        head, sep, body = data.partition(b'\n\n')
    status_line = head.split(b'\n', 1)[0].strip()
    if not sep or not status_line.startswith(b'HTTP/'):
        raise StatsError(
            'stats server %s did not answer HTTP (first bytes: %s): is it a plain `stats` socket? '
            'then give it as host:port without http://' % (addr.raw, _quote(data)),
            address=addr.raw, reason='not_http')
    parts = status_line.split(None, 2)
    if len(parts) < 2 or parts[1] != b'200':
        raise StatsError('stats server %s answered %s instead of 200'
                         % (addr.raw, status_line.decode('latin-1')), address=addr.raw, reason='http_status')
    return body


def decode_document(data, where):
    """Parse a stats reply, with a clear message when it is not a stats document."""
    if not data.strip():
        raise StatsError('stats server %s closed the connection without sending anything' % where,
                         address=where, reason='empty')
    if data.startswith(b'HTTP/'):
        raise StatsError(
            'stats server %s answered HTTP (first bytes: %s): it runs with stats-http, give it as '
            'http://host:port' % (where, _quote(data)), address=where, reason='not_json')
    try:
        doc = json.loads(data.decode('utf-8', 'replace'))
    except ValueError as exc:
        raise StatsError(
            'reply from %s is not JSON (%s; first bytes: %s): is this the stats socket and not the '
            'uwsgi/http socket of the instance?' % (where, exc, _quote(data)), address=where, reason='not_json')
    if not isinstance(doc, dict) or not isinstance(doc.get('workers'), list):
        raise StatsError(
            'reply from %s is JSON but not a uWSGI stats document (no "workers" list; first bytes: %s)'
            % (where, _quote(data)), address=where, reason='not_stats')
    return doc


def read_stats(address, timeout=DEFAULT_TIMEOUT):
    """Return the stats document of ``address`` as a dict; raise StatsError."""
    addr = address if isinstance(address, StatsAddress) else parse_address(address)
    return decode_document(fetch_raw(addr, timeout), addr.raw)


def _int(value, default=0):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


class Worker(object):
    """One worker of a stats document, with version differences smoothed out."""

    __slots__ = ('id', 'pid', 'status', 'accepting', 'accepting_reported', 'requests', 'exceptions',
                 'harakiri_count', 'respawn_count', 'last_spawn', 'avg_rt', 'rss', 'vsz',
                 'running_time', 'tx', 'apps', 'app_requests', 'cores')

    def __init__(self, raw, position=0):
        # Never-spawned (cheap) slots report id 0; the position is the slot.
        self.id = _int(raw.get('id')) or position
        self.pid = _int(raw.get('pid'))
        self.status = str(raw.get('status', 'idle'))
        self.accepting_reported = 'accepting' in raw
        if self.accepting_reported:
            self.accepting = bool(_int(raw.get('accepting')))
        else:
            # Old releases do not report it: a running, non-cheap worker accepts.
            self.accepting = self.pid > 0 and not self.status.startswith('cheap')
        self.requests = _int(raw.get('requests'))
        self.exceptions = _int(raw.get('exceptions'))
        self.harakiri_count = _int(raw.get('harakiri_count'))
        self.respawn_count = _int(raw.get('respawn_count'))
        self.last_spawn = _int(raw.get('last_spawn'), None)
        self.avg_rt = _int(raw.get('avg_rt'))
        self.rss = _int(raw.get('rss'))
        self.vsz = _int(raw.get('vsz'))
        self.running_time = _int(raw.get('running_time'))
        self.tx = _int(raw.get('tx'))
        apps = raw.get('apps')
        self.apps = len(apps) if isinstance(apps, list) else None
        self.app_requests = (sum(_int(a.get('requests')) for a in apps if isinstance(a, dict))
                             if isinstance(apps, list) else None)
        cores = raw.get('cores')
        self.cores = len(cores) if isinstance(cores, list) else None

    @property
    def cheap(self):
        return self.status.startswith('cheap') or self.pid <= 0

    @property
    def eligible(self):
        """Counts toward the fair share: running and accepting."""
        return not self.cheap and self.accepting

    def requests_since_spawn(self):
        # uWSGI keeps the worker slot's `requests` across a respawn but
        # resets the per-app counters, so these count from the new spawn.
        if self.app_requests is not None and self.apps:
            return self.app_requests
        return self.requests


class Snapshot(object):
    """A stats document read at a point in time."""

    def __init__(self, doc, taken_at=None, address=None):
        self.doc = doc
        self.taken_at = time.time() if taken_at is None else taken_at
        self.address = address
        self.version = doc.get('version')
        self.pid = _int(doc.get('pid'), None)
        self.listen_queue = _int(doc.get('listen_queue'), None) if 'listen_queue' in doc else None
        self.listen_queue_errors = (_int(doc.get('listen_queue_errors'), None)
                                    if 'listen_queue_errors' in doc else None)
        workers = doc.get('workers') or []
        self.workers = [Worker(w, i + 1) for i, w in enumerate(workers) if isinstance(w, dict)]
        sockets = doc.get('sockets')
        self.sockets = [s for s in sockets if isinstance(s, dict)] if isinstance(sockets, list) else []

    def by_id(self):
        return dict((w.id, w) for w in self.workers)

    def socket_queue(self):
        """Sum of per-socket queues (filled on Linux), or None when not reported."""
        queues = [_int(s.get('queue'), None) for s in self.sockets if 'queue' in s]
        queues = [q for q in queues if q is not None]
        return sum(queues) if queues else None


def take_snapshot(address, timeout=DEFAULT_TIMEOUT):
    addr = address if isinstance(address, StatsAddress) else parse_address(address)
    doc = read_stats(addr, timeout)
    return Snapshot(doc, time.time(), addr.raw)


def gini(values):
    """Gini coefficient of non-negative counts: 0 even, towards 1 concentrated."""
    values = [max(float(v), 0.0) for v in values]
    n = len(values)
    total = sum(values)
    if n < 2 or total <= 0:
        return 0.0
    ordered = sorted(values)
    weighted = sum((i + 1) * v for i, v in enumerate(ordered))
    return (2.0 * weighted) / (n * total) - (n + 1.0) / n


def window_requests(before, after):
    """Requests a worker served inside the window, and whether it respawned in it.

    ``before`` may be None (one snapshot, or a worker that appeared): the
    counters since spawn are used then.
    """
    if before is None:
        return after.requests_since_spawn(), False
    respawned = (after.pid != before.pid
                 or after.respawn_count != before.respawn_count
                 or (after.last_spawn is not None and before.last_spawn is not None
                     and after.last_spawn != before.last_spawn))
    if respawned:
        return after.requests_since_spawn(), True
    delta = after.requests - before.requests
    if delta < 0:
        # Counter went backwards without a visible respawn (full reload).
        return after.requests_since_spawn(), True
    return delta, False


def _round(value, digits=4):
    return None if value is None else round(value, digits)


def worker_rows(before, after):
    """Per-worker results for one instance; ``before`` is None for one snapshot."""
    old = before.by_id() if before is not None else {}
    rows = []
    for w in after.workers:
        prev = old.get(w.id)
        if prev is not None and prev.cheap and not w.cheap:
            prev = None
        reqs, respawned = window_requests(prev, w)
        if w.cheap:
            reqs = 0
        rows.append({
            'id': w.id,
            'pid': w.pid,
            'status': w.status,
            'accepting': w.accepting,
            'requests': reqs,
            'requests_total': w.requests,
            'share': None,
            'avg_rt_ms': _round(w.avg_rt / 1000.0, 3),
            'rss': w.rss,
            'vsz': w.vsz,
            'respawn_count': w.respawn_count,
            'respawned_in_window': respawned,
            'exceptions': w.exceptions,
            'harakiri_count': w.harakiri_count,
            'last_spawn': w.last_spawn,
            'apps': w.apps,
            'counted': w.eligible,
            'excluded_reason': None if w.eligible else ('cheap' if w.cheap else 'not_accepting'),
        })
    return rows


def balance(rows, min_requests, max_share_ratio=None):
    """Balance figures over the counted workers of ``rows``; fills each row's share."""
    counted = [r for r in rows if r['counted']]
    total = sum(r['requests'] for r in counted)
    threshold = REPORT_SHARE_RATIO if max_share_ratio is None else float(max_share_ratio)
    for r in rows:
        r['share'] = _round(float(r['requests']) / total) if (total and r['counted']) else (0.0 if r['counted'] else None)
    n = len(counted)
    fair = (1.0 / n) if n else None
    top = max(counted, key=lambda r: r['requests']) if counted else None
    top_share = (float(top['requests']) / total) if (top and total) else 0.0
    ratio = (top_share / fair) if (fair and total) else None
    if n == 0 or total < max(int(min_requests), 1):
        verdict = VERDICT_INSUFFICIENT
    elif ratio is not None and ratio > threshold:
        verdict = VERDICT_IMBALANCED
    else:
        verdict = VERDICT_BALANCED
    return {
        'requests': total,
        'workers_counted': n,
        'top_worker': top['id'] if (top and total) else None,
        'top_share': _round(top_share),
        'fair_share': _round(fair),
        'ratio': _round(ratio),
        'max_share_ratio': threshold,
        'min_requests': int(min_requests),
        'gini': _round(gini([r['requests'] for r in counted])),
        'idle_workers': [r['id'] for r in counted if r['requests'] == 0],
        'excluded_workers': [{'id': r['id'], 'reason': r['excluded_reason']} for r in rows if not r['counted']],
        'verdict': verdict,
    }


def analyse_instance(before, after, min_requests, max_share_ratio=None):
    """Everything uwsgi_stats returns for one instance."""
    rows = worker_rows(before, after)
    window = (after.taken_at - before.taken_at) if before is not None else 0.0
    bal = balance(rows, min_requests, max_share_ratio)
    totals = {
        'workers': len(rows),
        'workers_counted': bal['workers_counted'],
        'cheap_workers': len([r for r in rows if r['excluded_reason'] == 'cheap']),
        'not_accepting_workers': len([r for r in rows if r['excluded_reason'] == 'not_accepting']),
        'requests': bal['requests'],
        'requests_total': sum(r['requests_total'] for r in rows),
        'rps': _round(bal['requests'] / window, 2) if window > 0 else None,
        'exceptions': sum(r['exceptions'] for r in rows),
        'harakiri_count': sum(r['harakiri_count'] for r in rows),
        'respawns': sum(r['respawn_count'] for r in rows),
        'rss': sum(r['rss'] for r in rows),
        'vsz': sum(r['vsz'] for r in rows),
    }
    lq = after.listen_queue
    if lq is None:
        lq = after.socket_queue()
    return {
        'socket': after.address,
        'version': after.version,
        'master_pid': after.pid,
        'window_seconds': _round(window, 3),
        'basis': 'window' if before is not None else 'since_spawn',
        'listen_queue': lq,
        'listen_queue_errors': after.listen_queue_errors,
        'totals': totals,
        'workers': rows,
        'balance': bal,
    }


def pooled_balance(instances, min_requests, max_share_ratio=None):
    """Balance over the workers of every instance together (what the front sees)."""
    rows = []
    for inst in instances:
        for r in inst['workers']:
            copy = dict(r)
            copy['id'] = '%s#%s' % (inst['socket'], r['id']) if len(instances) > 1 else r['id']
            rows.append(copy)
    return balance(rows, min_requests, max_share_ratio)


def _human_bytes(value):
    if not value:
        return '0'
    for unit in ('', 'K', 'M', 'G'):
        if abs(value) < 1024.0:
            return ('%d%s' % (value, unit)) if unit == '' else ('%.1f%s' % (value, unit))
        value /= 1024.0
    return '%.1fT' % value


def render_table(instance):
    """A uwsgitop-like text table for one analysed instance."""
    bal = instance['balance']
    tot = instance['totals']
    head = 'uwsgi-%s - %s - master %s - %s %ss - req %d - RPS %s - lq %s' % (
        instance['version'] or '?', instance['socket'], instance['master_pid'],
        'window' if instance['basis'] == 'window' else 'since spawn',
        instance['window_seconds'] if instance['basis'] == 'window' else '-',
        tot['requests'], '-' if tot['rps'] is None else tot['rps'],
        '-' if instance['listen_queue'] is None else instance['listen_queue'])
    cols = ('WID', '%', 'PID', 'REQ', 'STATUS', 'ACC', 'AVG', 'RSS', 'VSZ', 'EXC', 'HARA', 'ReSpwn', 'NOTE')
    lines = []
    for r in sorted(instance['workers'], key=lambda x: (-(x['requests'] or 0), x['id'])):
        note = ''
        if not r['counted']:
            note = 'excluded: %s' % r['excluded_reason']
        elif r['respawned_in_window']:
            note = 'respawned in window'
        lines.append((
            str(r['id']),
            '-' if r['share'] is None else '%.1f' % (r['share'] * 100.0),
            str(r['pid']),
            str(r['requests']),
            r['status'],
            'yes' if r['accepting'] else 'no',
            '%.1fms' % r['avg_rt_ms'],
            _human_bytes(r['rss']),
            _human_bytes(r['vsz']),
            str(r['exceptions']),
            str(r['harakiri_count']),
            str(r['respawn_count']),
            note,
        ))
    widths = [max([len(c)] + [len(line[i]) for line in lines]) for i, c in enumerate(cols)]
    out = [head]
    out.append('  '.join(c.ljust(widths[i]) for i, c in enumerate(cols)).rstrip())
    for line in lines:
        out.append('  '.join(v.ljust(widths[i]) for i, v in enumerate(line)).rstrip())
    out.append('balance: top %s fair %s ratio %s (max %s) gini %s idle %s -> %s' % (
        _pct(bal['top_share']), _pct(bal['fair_share']),
        '-' if bal['ratio'] is None else '%.2f' % bal['ratio'], bal['max_share_ratio'],
        '%.3f' % bal['gini'], ','.join(str(i) for i in bal['idle_workers']) or 'none', bal['verdict']))
    return '\n'.join(out)


def _pct(value):
    return '-' if value is None else '%.1f%%' % (value * 100.0)


def sample(addresses, sample_seconds, timeout=DEFAULT_TIMEOUT, sleep=time.sleep):
    """Snapshots of every address: (before_list or None, after_list)."""
    addrs = [a if isinstance(a, StatsAddress) else parse_address(a) for a in addresses]
    first = [take_snapshot(a, timeout) for a in addrs]
    if not sample_seconds or sample_seconds <= 0:
        return None, first
    sleep(sample_seconds)
    second = [take_snapshot(a, timeout) for a in addrs]
    return first, second


def collect(addresses, sample_seconds=0, min_requests=100, max_share_ratio=None,
            timeout=DEFAULT_TIMEOUT, sleep=time.sleep):
    """Read, analyse and render: the whole result of uwsgi_stats minus Ansible plumbing."""
    before, after = sample(addresses, sample_seconds, timeout, sleep)
    instances = []
    for i, snap in enumerate(after):
        prev = before[i] if before is not None else None
        inst = analyse_instance(prev, snap, min_requests, max_share_ratio)
        inst['table'] = render_table(inst)
        instances.append(inst)
    pooled = pooled_balance(instances, min_requests, max_share_ratio)
    queues = [i['listen_queue'] for i in instances if i['listen_queue'] is not None]
    totals = {}
    for key in ('workers', 'workers_counted', 'cheap_workers', 'not_accepting_workers', 'requests',
                'requests_total', 'exceptions', 'harakiri_count', 'respawns', 'rss', 'vsz'):
        totals[key] = sum(i['totals'][key] for i in instances)
    window = instances[0]['window_seconds'] if instances else 0.0
    totals['rps'] = _round(totals['requests'] / window, 2) if window else None
    table = '\n\n'.join(i['table'] for i in instances)
    if len(instances) > 1:
        table += '\n\nall instances: top %s fair %s ratio %s gini %.3f -> %s' % (
            _pct(pooled['top_share']), _pct(pooled['fair_share']),
            '-' if pooled['ratio'] is None else '%.2f' % pooled['ratio'], pooled['gini'], pooled['verdict'])
    return {
        'instances': instances,
        'workers': [dict(r, socket=i['socket']) for i in instances for r in i['workers']],
        'totals': totals,
        'listen_queue': sum(queues) if queues else None,
        'balance': pooled,
        'sample_seconds': sample_seconds or 0,
        'table': table,
    }

# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""daphne_check through AnsibleModule, against a tiny daphne stand-in served
from a thread of the test on a unix socket in tmp_path and on 127.0.0.1: it
speaks HTTP/1.1 for the health check and the websocket handshake plus frames
(RFC 6455: server frames unmasked, client frames must be masked). Its framing
is written here on its own, not taken from the module_utils under test."""

from __future__ import absolute_import, division, print_function

import base64
import functools
import hashlib
import json
import os
import socketserver
import struct
import threading
import time

import pytest

from ansible_collections.webstack.django_uwsgi.plugins.module_utils import asgi_probe
from ansible_collections.webstack.django_uwsgi.plugins.modules import daphne_check

GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'


# The app checks of the stand-in below; the probes of the collection's ASGI
# entry point are tested on their own at the end.
APP_CHECKS = {'probe': False, 'health_path': '/healthz', 'websocket_path': '/ws/echo/'}


@pytest.fixture
def run(run_module):
    """run(args, check_mode=False) -> (exit code, result) of daphne_check with the app checks only."""
    def call(args, check_mode=False):
        return run_module(daphne_check.main, dict(APP_CHECKS, **args), check_mode=check_mode)
    return call


@pytest.fixture
def run_probe(run_module):
    """run_probe(args) -> (exit code, result) of daphne_check with its defaults (the probes)."""
    return functools.partial(run_module, daphne_check.main)


def recv_exactly(conn, count):
    data = b''
    while len(data) < count:
        chunk = conn.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def server_frame(opcode, payload, fin=True):
    first = (0x80 if fin else 0) | opcode
    if len(payload) < 126:
        return struct.pack('!BB', first, len(payload)) + payload
    return struct.pack('!BBH', first, 126, len(payload)) + payload


def read_client_frame(conn):
    """(opcode, payload, masked) of a client frame; None at end of file."""
    head = recv_exactly(conn, 2)
    if head is None:
        return None
    first, second = bytearray(head)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack('!H', recv_exactly(conn, 2))[0]
    elif length == 127:
        length = struct.unpack('!Q', recv_exactly(conn, 8))[0]
    masked = bool(second & 0x80)
    key = bytearray(recv_exactly(conn, 4)) if masked else bytearray(4)
    payload = bytearray(recv_exactly(conn, length) if length else b'')
    return first & 0x0F, bytes(bytearray(b ^ key[i % 4] for i, b in enumerate(payload))), masked


class Handler(socketserver.BaseRequestHandler):

    def handle(self):
        app = self.server.app
        conn = self.request
        conn.settimeout(5)
        data = b''
        try:
            while b'\r\n\r\n' not in data:
                chunk = conn.recv(4096)
                if not chunk:
                    return
                data += chunk
        except OSError:
            return
        head = data.split(b'\r\n\r\n', 1)[0].decode('latin-1').split('\r\n')
        method, path, dummy = head[0].split(' ', 2)
        headers = dict((k.strip().lower(), v.strip()) for k, v in (line.split(':', 1) for line in head[1:]))
        app.requests.append({'method': method, 'path': path, 'headers': headers})
        if app.mode == 'hangup':
            return
        try:
            if headers.get('upgrade', '').lower() == 'websocket':
                self.websocket(app, conn, path, headers)
            else:
                self.http(app, conn, path)
        except OSError:
            pass

    def http(self, app, conn, path):
        if path != app.health_path:
            conn.sendall(b'HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found')
            return
        status, doc = app.health()
        body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
        reason = {200: 'OK', 404: 'Not Found', 500: 'Internal Server Error', 503: 'Service Unavailable'}.get(status, 'X')
        if app.mode == 'chunked':
            half = len(body) // 2
            chunks = b''.join(b'%x\r\n%s\r\n' % (len(part), part) for part in (body[:half], body[half:]))
            conn.sendall(b'HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n'
                         % (status, reason.encode()) + chunks + b'0\r\n\r\n')
        elif app.mode == 'eof':
            conn.sendall(b'HTTP/1.1 %d %s\r\nContent-Type: application/json\r\n\r\n' % (status, reason.encode()) + body)
        else:
            # Content-Length and the connection left open, as a keep-alive server would.
            conn.sendall(b'HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n'
                         % (status, reason.encode(), len(body)) + body)
            time.sleep(0.3)

    def websocket(self, app, conn, path, headers):
        if app.ws_mode == 'reject' or path != app.ws_path:
            conn.sendall(b'HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\nConnection: close\r\n\r\n')
            return
        if app.ws_mode == 'no_handshake':
            time.sleep(2)
            return
        key = headers['sec-websocket-key'].encode()
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        if app.ws_mode == 'bad_accept':
            accept = base64.b64encode(b'x' * 20)
        conn.sendall(b'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                     b'Sec-WebSocket-Accept: ' + accept + b'\r\n\r\n')
        frame = read_client_frame(conn)
        if frame is None:
            return
        opcode, payload, masked = frame
        app.frames.append(frame)
        mode = app.ws_mode
        if mode == 'close':
            conn.sendall(server_frame(0x8, struct.pack('!H', 1011) + b'server error'))
            return
        if mode == 'drop':
            return
        if mode == 'silent':
            time.sleep(2)
            return
        if mode == 'ping_first':
            conn.sendall(server_frame(0x9, b'are you there'))
            app.frames.append(read_client_frame(conn))
        if mode == 'wrong':
            conn.sendall(server_frame(0x1, b'something else'))
        elif mode == 'binary':
            conn.sendall(server_frame(0x2, payload))
        elif mode == 'fragmented':
            conn.sendall(server_frame(0x1, payload[:5], fin=False) + server_frame(0x0, payload[5:]))
        elif mode == 'wrapped':
            conn.sendall(server_frame(0x1, json.dumps({'echo': payload.decode()}).encode()))
        else:
            conn.sendall(server_frame(0x1, payload))
        frame = read_client_frame(conn)
        if frame is None:
            return
        app.frames.append(frame)
        if frame[0] == 0x8 and mode != 'no_close_reply':
            conn.sendall(server_frame(0x8, frame[1][:2]))


class ThreadingUnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


class ThreadingTCPServer(socketserver.ThreadingMixIn, socketserver.TCPServer):
    daemon_threads = True
    allow_reuse_address = True


class FakeDaphne(object):
    """A daphne process serving ``health_path`` (JSON) and an echo websocket on ``ws_path``.

    ``releases``: the release each health request reports in turn (the last one repeats);
    ``status``: the status of the health answers; ``mode``: ``normal``, ``chunked``,
    ``eof`` (no Content-Length, closed after the body) or ``hangup`` (close without an answer);
    ``ws_mode``: ``echo``, ``close`` (close frame 1011 instead of the echo), ``drop``, ``silent``,
    ``wrong``, ``binary``, ``fragmented``, ``wrapped``, ``ping_first``, ``reject``, ``bad_accept``,
    ``no_handshake``, ``no_close_reply``.
    """

    def __init__(self, kind, where=None, status=200, releases=('v2',), mode='normal', ws_mode='echo',
                 health_path='/healthz', ws_path='/ws/echo/', doc=None):
        self.status = status
        self.releases = list(releases)
        self.mode = mode
        self.ws_mode = ws_mode
        self.health_path = health_path
        self.ws_path = ws_path
        self.doc = doc
        self.requests = []
        self.frames = []
        if kind == 'unix':
            self.server = ThreadingUnixServer(where, Handler)
            self.address = where
            self.args = {'unix_socket': where}
        else:
            self.server = ThreadingTCPServer(('127.0.0.1', where or 0), Handler)
            self.address = '127.0.0.1:%d' % self.server.server_address[1]
            self.args = {'address': self.address}
        self.server.app = self
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={'poll_interval': 0.05})
        self.thread.daemon = True
        self.thread.start()

    def health(self):
        release = self.releases.pop(0) if len(self.releases) > 1 else self.releases[0]
        if self.doc is not None:
            return self.status, self.doc
        return self.status, {'status': 'ok', 'release': release, 'server': 'daphne', 'pid': os.getpid()}

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def daphne(tmp_path):
    """daphne(kind='unix', **settings) -> FakeDaphne, on tmp_path/d<n>.sock or a free 127.0.0.1 port."""
    servers = []

    def start(kind='unix', **settings):
        where = str(tmp_path / ('d%d.sock' % len(servers))) if kind == 'unix' else None
        server = FakeDaphne(kind, where, **settings)
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.close()


# ---------------------------------------------------------------- passing checks

@pytest.mark.parametrize('kind', ['unix', 'tcp'])
def test_ok(run, daphne, kind):
    server = daphne(kind)
    code, out = run(dict(server.args, expect_release='v2'))
    assert code == 0, out
    assert out['changed'] is False
    assert out['target'] == ('unix:' + server.address if kind == 'unix' else server.address)
    assert out['attempts'] == 1 and out['elapsed'] < 2
    health = out['healthz']
    assert health['ok'] is True and health['status'] == 200 and health['release'] == 'v2'
    assert health['json']['server'] == 'daphne' and json.loads(health['body']) == health['json']
    assert health['path'] == '/healthz' and health['error'] is None
    ws = out['websocket']
    assert ws['ok'] is True and ws['status'] == 101 and ws['echoed'] == ws['sent']
    assert ws['sent'].startswith('daphne_check ')
    assert ws['close_code'] == 1000 and ws['path'] == '/ws/echo/' and ws['error'] is None
    # every client frame masked: the message, then the close frame with 1000
    assert [(f[0], f[2]) for f in server.frames] == [(0x1, True), (0x8, True)]
    assert server.frames[0][1].decode() == ws['sent'] and server.frames[1][1] == b'\x03\xe8'


def test_check_mode_still_checks(run, daphne):
    server = daphne()
    code, out = run(server.args, check_mode=True)
    assert code == 0 and out['changed'] is False and out['websocket']['ok'] is True
    assert len(server.requests) == 2


def test_host_header_and_origin(run, daphne):
    server = daphne('tcp')
    code, out = run(dict(server.args, host='www.example.com'))
    assert code == 0
    health, upgrade = server.requests
    assert health['headers']['host'] == 'www.example.com' and health['headers']['connection'] == 'close'
    assert upgrade['headers']['host'] == 'www.example.com'
    assert upgrade['headers']['origin'] == 'http://www.example.com'
    assert upgrade['headers']['sec-websocket-version'] == '13'
    assert len(base64.b64decode(upgrade['headers']['sec-websocket-key'])) == 16


def test_extra_headers(run, daphne):
    server = daphne()
    code, out = run(dict(server.args, headers={'X-Forwarded-Proto': 'https', 'origin': 'https://front.example.com',
                                               'Host': 'ignored', 'Sec-WebSocket-Version': '8'}))
    assert code == 0, out
    health, upgrade = server.requests
    assert health['headers']['x-forwarded-proto'] == upgrade['headers']['x-forwarded-proto'] == 'https'
    assert upgrade['headers']['origin'] == 'https://front.example.com'
    assert health['headers']['host'] == upgrade['headers']['host'] == 'localhost'
    assert upgrade['headers']['sec-websocket-version'] == '13'


def test_custom_paths(run, daphne):
    server = daphne(health_path='/probe/health?deep=1', ws_path='/probe/ws/')
    code, out = run(dict(server.args, health_path='/probe/health?deep=1', websocket_path='/probe/ws/'))
    assert code == 0, out
    assert [r['path'] for r in server.requests] == ['/probe/health?deep=1', '/probe/ws/']


@pytest.mark.parametrize('mode', ['chunked', 'eof'])
def test_body_framings(run, daphne, mode):
    server = daphne(mode=mode)
    code, out = run(dict(server.args, expect_release='v2'))
    assert code == 0, out
    assert out['healthz']['json']['release'] == 'v2'


@pytest.mark.parametrize('ws_mode', ['ping_first', 'fragmented', 'wrapped', 'no_close_reply'])
def test_websocket_variants_pass(run, daphne, ws_mode):
    server = daphne(ws_mode=ws_mode, mode='eof')
    code, out = run(dict(server.args, timeout=1))
    assert code == 0, out
    assert out['websocket']['ok'] is True
    if ws_mode == 'ping_first':
        assert server.frames[1][0] == 0xA and server.frames[1][1] == b'are you there' and server.frames[1][2]
    if ws_mode == 'no_close_reply':
        assert out['websocket']['close_code'] is None


def test_other_status_accepted(run, daphne):
    server = daphne(status=503)
    code, out = run(dict(server.args, expect_status=503))
    assert code == 0 and out['healthz']['status'] == 503


def test_no_release_check_by_default(run, daphne):
    server = daphne(releases=['v1'])
    code, out = run(dict(server.args, expect_release=''))
    assert code == 0 and out['healthz']['release'] == 'v1'


# ---------------------------------------------------------------- failing checks

def test_wrong_status(run, daphne):
    server = daphne(status=404)
    code, out = run(server.args)
    assert code == 1
    assert out['msg'] == ('daphne at unix:%s: health check /healthz answered 404 (expected 200) after 1 attempt in %.1f s'
                          % (server.address, out['elapsed']))
    assert out['failed_check'] == 'healthz' and out['reason_code'] == 'status'
    assert out['healthz']['status'] == 404 and out['healthz']['ok'] is False
    assert out['websocket'] is None  # not tried once the health check failed
    assert len(server.requests) == 1


def test_wrong_release(run, daphne):
    server = daphne('tcp', releases=['v1'])
    code, out = run(dict(server.args, expect_release='v2'))
    assert code == 1
    assert out['msg'].startswith('daphne at %s: health check /healthz reports release v1 (expected v2) after 1 attempt'
                                 % server.address)
    assert out['reason_code'] == 'release' and out['healthz']['release'] == 'v1'


def test_release_not_in_body(run, daphne):
    server = daphne(doc=b'<html>ok</html>')
    code, out = run(dict(server.args, expect_release='v2'))
    assert code == 1
    assert 'reports no release (the body is not JSON with a release field) (expected v2)' in out['msg']
    assert out['healthz']['json'] is None and out['healthz']['body'] == '<html>ok</html>'


def test_long_body_is_cut(run, daphne):
    server = daphne(status=500, doc=b'x' * 2000)
    code, out = run(server.args)
    assert code == 1 and out['healthz']['body'] == 'x' * 500 + '...'
    assert '\n' not in out['msg'] and 'x' * 10 not in out['msg']


def test_server_hangs_up(run, daphne):
    server = daphne(mode='hangup')
    code, out = run(server.args)
    assert code == 1 and out['reason_code'] == 'empty'
    assert out['msg'].startswith('daphne at unix:%s: health check /healthz: connection closed without an answer'
                                 % server.address)


@pytest.mark.parametrize('ws_mode,needle,reason', [
    ('close', 'websocket /ws/echo/: connection closed without echo (close code 1011)', 'no_echo'),
    ('drop', 'websocket /ws/echo/: connection closed without echo after', 'no_echo'),
    ('wrong', "websocket /ws/echo/: echo mismatch: sent 'daphne_check ", 'mismatch'),
    ('binary', 'websocket /ws/echo/: echo mismatch: a binary frame came back', 'mismatch'),
    ('reject', 'websocket /ws/echo/: handshake answered 403 Forbidden (expected 101)', 'status'),
    ('bad_accept', 'websocket /ws/echo/: handshake answered 101 with a wrong Sec-WebSocket-Accept', 'handshake'),
    ('silent', 'websocket /ws/echo/: no echo within 0.5 s', 'timeout'),
    ('no_handshake', 'websocket /ws/echo/: no handshake answer within 0.5 s', 'timeout'),
])
def test_websocket_failures(run, daphne, ws_mode, needle, reason):
    server = daphne(ws_mode=ws_mode, mode='eof')
    started = time.time()
    code, out = run(dict(server.args, timeout=0.5))
    assert time.time() - started < 2
    assert code == 1
    assert out['msg'].startswith('daphne at unix:%s: ' % server.address)
    assert needle in out['msg'], out['msg']
    assert out['msg'].endswith(' after 1 attempt in %.1f s' % out['elapsed'])
    assert out['failed_check'] == 'websocket' and out['reason_code'] == reason
    assert out['healthz']['ok'] is True and out['websocket']['ok'] is False
    if ws_mode == 'close':
        assert out['websocket']['close_code'] == 1011 and out['websocket']['echoed'] is None
    if ws_mode == 'wrong':
        assert out['websocket']['echoed'] == 'something else'


def test_refused_connection(run, free_port):
    port = free_port()
    code, out = run({'address': '127.0.0.1:%d' % port})
    assert code == 1 and out['reason_code'] == 'refused'
    assert out['msg'].startswith('daphne at 127.0.0.1:%d: health check /healthz: cannot connect: ' % port)
    assert '(is the daphne process running?) after 1 attempt in' in out['msg']


def test_missing_unix_socket(run, tmp_path):
    path = str(tmp_path / 'none.sock')
    code, out = run({'unix_socket': path, 'health_path': ''})
    assert code == 1 and out['reason_code'] == 'missing' and out['failed_check'] == 'websocket'
    assert out['msg'].startswith('daphne at unix:%s: websocket /ws/echo/: cannot connect: No such file' % path)


# ---------------------------------------------------------------- waiting

def test_wait_succeeds_after_the_server_comes_up_late(run, daphne, tmp_path):
    started = []

    def later():
        time.sleep(1.0)
        started.append(daphne())
    thread = threading.Thread(target=later)
    thread.start()
    try:
        code, out = run({'unix_socket': str(tmp_path / 'd0.sock'), 'wait': 10, 'poll_interval': 0.2,
                         'expect_release': 'v2'})
    finally:
        thread.join()
    assert code == 0, out
    assert out['attempts'] > 2 and 0.9 < out['elapsed'] < 5
    assert out['websocket']['ok'] is True


def test_wait_until_the_release_switches(run, daphne):
    server = daphne('tcp', releases=['v1', 'v1', 'v1', 'v2'])
    code, out = run(dict(server.args, expect_release='v2', wait=10, poll_interval=0.05))
    assert code == 0, out
    assert out['attempts'] == 4 and out['healthz']['release'] == 'v2'


def test_wait_gives_up(run, daphne):
    server = daphne(status=502)
    started = time.time()
    code, out = run(dict(server.args, wait=1, poll_interval=0.25))
    took = time.time() - started
    assert code == 1
    assert 1 <= out['elapsed'] <= took < 3
    assert 4 <= out['attempts'] <= 6
    assert out['msg'] == ('daphne at unix:%s: health check /healthz answered 502 (expected 200) after %d attempts in %.1f s'
                          % (server.address, out['attempts'], out['elapsed']))


def test_no_wait_is_one_attempt(run, daphne):
    server = daphne(status=502)
    code, out = run(server.args)
    assert code == 1 and out['attempts'] == 1 and len(server.requests) == 1


# ---------------------------------------------------------------- skipping checks

def test_health_check_skipped(run, daphne):
    server = daphne(status=500)
    code, out = run(dict(server.args, health_path=''))
    assert code == 0, out
    assert out['healthz'] is None and out['websocket']['ok'] is True
    assert [r['path'] for r in server.requests] == ['/ws/echo/']


def test_websocket_skipped(run, daphne):
    server = daphne(ws_mode='reject')
    code, out = run(dict(server.args, websocket_path=''))
    assert code == 0, out
    assert out['websocket'] is None and out['healthz']['ok'] is True
    assert [r['path'] for r in server.requests] == ['/healthz']


def test_both_skipped_is_an_error(run, daphne):
    server = daphne()
    code, out = run(dict(server.args, health_path='', websocket_path=''))
    assert code == 1
    assert 'probe is false and health_path and websocket_path are both empty' in out['msg']
    assert server.requests == []


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize('args,needle', [
    ({'unix_socket': '/run/daphne/daphne0.sock', 'address': '127.0.0.1:8001'},
     'parameters are mutually exclusive: unix_socket|address'),
    ({}, 'one of the following is required: unix_socket, address'),
    ({'address': 'localhost'}, 'address must be host:port'),
    ({'address': '127.0.0.1:0'}, 'address must be host:port with a port from 1 to 65535'),
    ({'address': '127.0.0.1:70000'}, 'address must be host:port with a port from 1 to 65535'),
    ({'address': ':8001'}, 'address must be host:port'),
    ({'address': '127.0.0.1:8001', 'health_path': 'healthz'}, 'health_path must start with /'),
    ({'address': '127.0.0.1:8001', 'websocket_path': 'ws/'}, 'websocket_path must start with /'),
    ({'address': '127.0.0.1:8001', 'health_path': '', 'expect_release': 'v2'},
     'expect_release needs the probe or the health check, but probe is false and health_path is empty'),
    ({'address': '127.0.0.1:8001', 'host': 'a b'}, 'host must be a host name without spaces'),
    ({'address': '127.0.0.1:8001', 'expect_status': 42}, 'expect_status must be an HTTP status'),
    ({'address': '127.0.0.1:8001', 'headers': {'X-A': 'one\r\nX-B: two'}}, 'headers must map header names'),
    ({'address': '127.0.0.1:8001', 'headers': {'X A': 'one'}}, 'headers must map header names'),
    ({'address': '127.0.0.1:8001', 'timeout': 0}, 'timeout must be a positive number'),
    ({'address': '127.0.0.1:8001', 'wait': -1}, 'wait must be 0 (one attempt) or a positive number'),
    ({'address': '127.0.0.1:8001', 'poll_interval': 0}, 'poll_interval must be a positive number'),
    ({'address': '127.0.0.1:8001', 'wait': 'soon'}, "argument 'wait' is of type"),
])
def test_bad_input(run, args, needle):
    started = time.time()
    code, out = run(args)
    assert code == 1 and needle in out['msg'], out['msg']
    assert time.time() - started < 1


# ---------------------------------------------------------------- module_utils

@pytest.mark.parametrize('address,target,label', [
    ('127.0.0.1:8001', ('tcp', ('127.0.0.1', 8001)), '127.0.0.1:8001'),
    ('[::1]:8001', ('tcp', ('::1', 8001)), '[::1]:8001'),
    ('daphne.internal:9000', ('tcp', ('daphne.internal', 9000)), 'daphne.internal:9000'),
])
def test_parse_target(address, target, label):
    assert asgi_probe.parse_target(address=address) == target
    assert asgi_probe.describe_target(target) == label


def test_accept_key_of_the_rfc_example():
    assert asgi_probe.accept_key('dGhlIHNhbXBsZSBub25jZQ==') == 's3pPLMBiTxaQ9kYGzzhZRbK+xOo='


@pytest.mark.parametrize('size', [0, 5, 125, 126, 65535, 65536])
def test_client_frames_are_masked_and_round_trip(size):
    payload = os.urandom(size)
    data = asgi_probe.encode_frame(0x2, payload)
    assert bytearray(data)[1] & 0x80

    class Conn(object):
        def __init__(self, data):
            self.data = data

        def recv(self, count):
            out, self.data = self.data[:count], self.data[count:]
            return out
    assert read_client_frame(Conn(data)) == (0x2, payload, True)


# ---------------------------------------------------------------- the probes (the defaults)

def probe_daphne(daphne, kind='unix', release='v2', **settings):
    """A stand-in answering the probes of the collection's ASGI entry point."""
    return daphne(kind, health_path='/__webstack__/probe', ws_path='/__webstack__/ws',
                  doc={'release': release, 'process': 'daphne0', 'pid': 4711}, **settings)


@pytest.mark.parametrize('kind', ['unix', 'tcp'])
def test_probe_by_default(run_probe, daphne, kind):
    server = probe_daphne(daphne, kind)
    code, out = run_probe(dict(server.args, expect_release='v2'))
    assert code == 0, out
    assert out['probe']['ok'] is True and out['probe']['release'] == 'v2'
    assert out['probe']['json'] == {'release': 'v2', 'process': 'daphne0', 'pid': 4711}
    assert out['probe_websocket']['ok'] is True and out['probe_websocket']['path'] == '/__webstack__/ws'
    assert out['healthz'] is None and out['websocket'] is None
    assert [r['path'] for r in server.requests] == ['/__webstack__/probe', '/__webstack__/ws']
    # the probes are answered only without proxy headers: none is sent
    for request in server.requests:
        assert not set(request['headers']) & {'x-forwarded-for', 'x-real-ip', 'forwarded'}


def test_probe_wrong_release(run_probe, daphne):
    server = probe_daphne(daphne, release='v1')
    code, out = run_probe(dict(server.args, expect_release='v2'))
    assert code == 1
    assert out['failed_check'] == 'probe' and out['reason_code'] == 'release'
    assert out['msg'].startswith('daphne at unix:%s: probe /__webstack__/probe reports release v1 (expected v2) '
                                 'after 1 attempt' % server.address)


def test_probe_missing_entry_point(run_probe, daphne):
    """A process without the collection's entry point answers 404 to the probe."""
    server = daphne()
    code, out = run_probe(server.args)
    assert code == 1 and out['failed_check'] == 'probe'
    assert 'probe /__webstack__/probe answered 404 (expected 200)' in out['msg']


def test_probe_then_app_health_as_extra_gate(run_probe, daphne):
    server = probe_daphne(daphne)
    code, out = run_probe(dict(server.args, health_path='/healthz'))
    assert code == 1 and out['failed_check'] == 'healthz', out
    assert out['probe']['ok'] and out['probe_websocket']['ok']
    assert 'health check /healthz answered 404 (expected 200)' in out['msg']


def test_probe_refuses_proxy_headers(run_probe):
    code, out = run_probe({'address': '127.0.0.1:8001', 'headers': {'X-Forwarded-For': '10.0.0.1'}})
    assert code == 1 and 'must not hold x-forwarded-for' in out['msg']

# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""uwsgi_request through AnsibleModule: against a real uWSGI (the one in the
test virtualenv) on a unix and a TCP socket, and against a fake server that
records the packet it receives and answers whatever a test wants."""

from __future__ import absolute_import, division, print_function

import functools
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

import pytest


from ansible_collections.webstack.django_uwsgi.plugins.module_utils import uwsgi_protocol
from ansible_collections.webstack.django_uwsgi.plugins.modules import uwsgi_request

UWSGI = os.path.join(os.path.dirname(sys.executable), 'uwsgi')

APP = '''
import json, os

def application(environ, start_response):
    keys = ("REQUEST_METHOD", "REQUEST_URI", "PATH_INFO", "QUERY_STRING", "SERVER_NAME",
            "SERVER_PORT", "HTTP_HOST", "SERVER_PROTOCOL", "HTTP_X_FORWARDED_PROTO", "HTTPS")
    if environ["PATH_INFO"] == "/text":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"plain text"]
    if environ["PATH_INFO"] == "/missing":
        start_response("404 Not Found", [("Content-Type", "text/plain")])
        return [b"nothing here"]
    body = json.dumps({"pid": os.getpid(), "environ": dict((k, environ.get(k)) for k in keys)}).encode()
    start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body))),
                              ("X-Test", "a"), ("X-Test", "b")])
    return [body]
'''


@pytest.fixture
def run(run_module):
    """run(args, check_mode=False) -> (exit code, result) of uwsgi_request."""
    return functools.partial(run_module, uwsgi_request.main)


@pytest.fixture(scope='module')
def real_uwsgi(free_port):
    """One uWSGI instance with a unix and a TCP uwsgi socket."""
    if not os.path.exists(UWSGI):
        pytest.skip('uwsgi is not installed next to %s' % sys.executable)
    base = tempfile.mkdtemp(prefix='ws-req-')
    port = free_port()
    with open(os.path.join(base, 'app.py'), 'w') as handle:
        handle.write(APP)
    ini = os.path.join(base, 'uwsgi.ini')
    unix = os.path.join(base, 'uwsgi.sock')
    with open(ini, 'w') as handle:
        handle.write('\n'.join([
            '[uwsgi]', 'master = true', 'processes = 2', 'need-app = true', 'strict = true',
            'socket = %s' % unix, 'socket = 127.0.0.1:%d' % port, 'chdir = %s' % base,
            'module = app:application', 'logto = %s' % os.path.join(base, 'uwsgi.log'),
            'die-on-term = true']) + '\n')
    proc = subprocess.Popen([UWSGI, '--ini', ini], stdin=subprocess.DEVNULL)
    deadline = time.time() + 20
    while True:
        try:
            uwsgi_protocol.uwsgi_request(unix, path='/text', timeout=2)
            uwsgi_protocol.uwsgi_request('127.0.0.1:%d' % port, path='/text', timeout=2)
            break
        except uwsgi_protocol.UwsgiProtocolError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError('uWSGI did not start')
            time.sleep(0.1)
    yield {'unix': unix, 'tcp': '127.0.0.1:%d' % port, 'pid': proc.pid}
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    shutil.rmtree(base, ignore_errors=True)


class FakeServer(object):
    """Accepts connections on a unix socket; records each packet; answers `reply` (bytes or callable)."""

    def __init__(self, reply, delay=0.0):
        self.dir = tempfile.mkdtemp(prefix='ws-fake-')
        self.path = os.path.join(self.dir, 'fake.sock')
        self.reply = reply
        self.delay = delay
        self.packets = []
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(self.path)
        self.sock.listen(8)
        self.stop_flag = threading.Event()
        self.thread = threading.Thread(target=self.serve)
        self.thread.daemon = True
        self.thread.start()

    def read_packet(self, conn):
        head = b''
        while len(head) < 4:
            chunk = conn.recv(4 - len(head))
            if not chunk:
                return head
            head += chunk
        size = struct.unpack('<H', head[1:3])[0]
        block = b''
        while len(block) < size:
            chunk = conn.recv(size - len(block))
            if not chunk:
                break
            block += chunk
        return head + block

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stop_flag.is_set():
            try:
                conn, dummy = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                packet = self.read_packet(conn)
                self.packets.append(packet)
                if self.delay:
                    self.stop_flag.wait(self.delay)
                reply = self.reply(packet) if callable(self.reply) else self.reply
                if reply is not None:
                    try:
                        conn.sendall(reply)
                    except OSError:
                        pass

    def close(self):
        self.stop_flag.set()
        self.sock.close()
        self.thread.join(5)
        shutil.rmtree(self.dir, ignore_errors=True)


@pytest.fixture
def fake():
    servers = []

    def start(reply, delay=0.0):
        server = FakeServer(reply, delay)
        servers.append(server)
        return server
    yield start
    for server in servers:
        server.close()


# ---------------------------------------------------------------- real uWSGI

@pytest.mark.parametrize('kind', ['unix', 'tcp'])
def test_real_uwsgi_json(run, real_uwsgi, kind):
    code, out = run({'socket': real_uwsgi[kind], 'path': '/healthz?deep=1', 'host': 'example.com',
                     'server_port': 8443, 'headers': {'X-Forwarded-Proto': 'https'},
                     'extra_vars': {'HTTPS': 'on'}})
    assert code == 0, out
    assert out['changed'] is False
    assert out['status'] == 200 and out['reason'] == 'OK'
    assert out['headers']['Content-Type'] == 'application/json'
    assert out['headers']['X-Test'] == 'a, b'
    env = out['json']['environ']
    assert env == {
        'REQUEST_METHOD': 'GET', 'REQUEST_URI': '/healthz?deep=1', 'PATH_INFO': '/healthz',
        'QUERY_STRING': 'deep=1', 'SERVER_NAME': 'example.com', 'SERVER_PORT': '8443',
        'HTTP_HOST': 'example.com', 'SERVER_PROTOCOL': 'HTTP/1.1', 'HTTP_X_FORWARDED_PROTO': 'https',
        'HTTPS': 'on'}
    assert out['json']['pid'] != real_uwsgi['pid']  # a worker answered, not the master
    assert json.loads(out['body']) == out['json']
    assert out['elapsed'] >= 0


def test_real_uwsgi_text_body_has_no_json(run, real_uwsgi):
    code, out = run({'socket': real_uwsgi['unix'], 'path': '/text'})
    assert code == 0
    assert out['body'] == 'plain text'
    assert out['json'] is None


def test_real_uwsgi_unexpected_status_fails_with_body(run, real_uwsgi):
    code, out = run({'socket': real_uwsgi['tcp'], 'path': '/missing'})
    assert code == 1
    assert out['failed'] is True
    assert out['status'] == 404
    assert '404 Not Found' in out['msg'] and 'nothing here' in out['msg'] and 'expected 200' in out['msg']


def test_real_uwsgi_accepted_status_list(run, real_uwsgi):
    code, out = run({'socket': real_uwsgi['tcp'], 'path': '/missing', 'status_code': [200, 404]})
    assert code == 0 and out['status'] == 404


def test_real_uwsgi_check_mode_still_asks(run, real_uwsgi):
    code, out = run({'socket': real_uwsgi['unix'], 'path': '/text'}, check_mode=True)
    assert code == 0 and out['status'] == 200 and out['changed'] is False


def test_real_uwsgi_head(run, real_uwsgi):
    code, out = run({'socket': real_uwsgi['unix'], 'path': '/text', 'method': 'HEAD'})
    assert code == 0 and out['status'] == 200 and out['body'] == ''


# ---------------------------------------------------------------- fake server

def test_packet_layout(fake):
    server = fake(b'HTTP/1.1 204 No Content\r\n\r\n')
    uwsgi_protocol.uwsgi_request(server.path, path='/a b', query_string='x=1', host='h:8080', server_port=8080)
    packet = server.packets[0]
    modifier1, size, modifier2 = struct.unpack('<BHB', packet[:4])
    assert (modifier1, modifier2) == (0, 0)
    assert size == len(packet) - 4
    dummy_m1, dummy_m2, pairs = uwsgi_protocol.decode_packet(packet)
    expected = ['REQUEST_METHOD', 'REQUEST_URI', 'PATH_INFO', 'QUERY_STRING', 'SERVER_NAME',
                'SERVER_PORT', 'HTTP_HOST', 'SERVER_PROTOCOL']
    assert [pair[0] for pair in pairs] == expected
    values = dict(pairs)
    assert values['REQUEST_URI'] == '/a b?x=1'
    assert values['SERVER_NAME'] == 'h' and values['HTTP_HOST'] == 'h:8080' and values['SERVER_PORT'] == '8080'


def test_build_packet_length_prefixes():
    packet = uwsgi_protocol.build_packet([('AB', 'xyz')])
    assert packet == b'\x00\x09\x00\x00' + b'\x02\x00AB' + b'\x03\x00xyz'


def test_build_packet_too_large():
    with pytest.raises(uwsgi_protocol.UwsgiProtocolError) as exc:
        uwsgi_protocol.build_packet([('K', 'v' * 40000), ('L', 'w' * 40000)])
    assert exc.value.reason == 'too_large'


def test_chunked_body_is_decoded(run, fake):
    server = fake(b'HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Type: application/json\r\n\r\n'
                  b'5\r\n{"a":\r\n2\r\n1}\r\n0\r\n\r\n')
    code, out = run({'socket': server.path})
    assert code == 0 and out['json'] == {'a': 1}


@pytest.mark.parametrize('reply,reason', [
    (b'', 'empty'),
    (b'garbage that is not http', 'not_http'),
])
def test_bad_answers_fail_with_reason(run, fake, reply, reason):
    server = fake(reply)
    code, out = run({'socket': server.path, 'path': '/healthz'})
    assert code == 1
    assert out['reason_code'] == reason
    assert server.path in out['msg'] and '/healthz' in out['msg']


def test_timeout(run, fake):
    server = fake(b'HTTP/1.1 200 OK\r\n\r\nlate', delay=3)
    started = time.time()
    code, out = run({'socket': server.path, 'timeout': 0.5})
    assert code == 1 and out['reason_code'] == 'timeout'
    assert time.time() - started < 2.5


def test_refused_tcp(run, free_port):
    code, out = run({'socket': '127.0.0.1:%d' % free_port()})
    assert code == 1 and out['reason_code'] == 'refused'
    assert 'is the uWSGI instance running' in out['msg']


def test_missing_unix_socket(run, tmp_path):
    code, out = run({'socket': str(tmp_path / 'nope.sock')})
    assert code == 1 and out['reason_code'] == 'missing'


@pytest.mark.parametrize('args,needle', [
    ({'timeout': 0}, 'timeout must be a positive'),
    ({'path': 'healthz'}, 'path must start with /'),
    ({'server_port': 0}, 'server_port must be between'),
])
def test_bad_input(run, args, needle):
    code, out = run(dict({'socket': '/nonexistent.sock'}, **args))
    assert code == 1 and needle in out['msg']


def test_post_is_not_offered(run):
    code, out = run({'socket': '/nonexistent.sock', 'method': 'POST'})
    assert code == 1 and 'method' in out['msg']


@pytest.mark.parametrize('address,expected', [
    ('/run/uwsgi/web1/uwsgi.sock', ('unix', '/run/uwsgi/web1/uwsgi.sock')),
    ('unix:/run/x.sock', ('unix', '/run/x.sock')),
    ('@abstract', ('unix', '@abstract')),
    ('127.0.0.1:18511', ('tcp', ('127.0.0.1', 18511))),
    (':3031', ('tcp', ('127.0.0.1', 3031))),
    ('0.0.0.0:3031', ('tcp', ('127.0.0.1', 3031))),
    ('[::1]:3031', ('tcp', ('::1', 3031))),
])
def test_parse_address(address, expected):
    assert uwsgi_protocol.parse_address(address) == expected


def test_parse_address_rejects_garbage():
    with pytest.raises(uwsgi_protocol.UwsgiProtocolError):
        uwsgi_protocol.parse_address('no-port-here')


def test_headers_become_http_vars():
    pairs = dict(uwsgi_protocol.request_vars(headers={'X-Request-Id': 'abc', 'Host': 'ignored',
                                                      'Content-Type': 'text/plain'}))
    assert pairs['HTTP_X_REQUEST_ID'] == 'abc'
    assert pairs['HTTP_HOST'] == 'localhost'
    assert pairs['CONTENT_TYPE'] == 'text/plain'

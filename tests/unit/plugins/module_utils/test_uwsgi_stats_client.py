# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The stats client against real unix, TCP and HTTP sockets, and every error path."""

from __future__ import absolute_import, division, print_function

import json
import os
import socket
import time

import pytest

from ansible_collections.webstack.django_uwsgi.plugins.module_utils import uwsgi_stats as us


@pytest.mark.parametrize('raw, kind, fields', [
    ('/run/uwsgi/web1/stats.sock', 'unix', {'path': '/run/uwsgi/web1/stats.sock'}),
    ('stats.sock', 'unix', {'path': 'stats.sock'}),
    ('./run/stats.sock', 'unix', {'path': './run/stats.sock'}),
    ('@uwsgi-stats', 'unix', {'path': '@uwsgi-stats'}),
    ('127.0.0.1:1717', 'tcp', {'host': '127.0.0.1', 'port': 1717}),
    ('localhost:9191', 'tcp', {'host': 'localhost', 'port': 9191}),
    ('[::1]:9191', 'tcp', {'host': '::1', 'port': 9191}),
    ('http://127.0.0.1:9191', 'http', {'host': '127.0.0.1', 'port': 9191, 'url_path': '/'}),
    ('http://stats.internal:9191/x', 'http', {'host': 'stats.internal', 'port': 9191, 'url_path': '/x'}),
    ('http://127.0.0.1', 'http', {'port': 80}),
])
def test_parse_address(raw, kind, fields):
    addr = us.parse_address(raw)
    assert addr.kind == kind
    for key, value in fields.items():
        assert getattr(addr, key) == value


@pytest.mark.parametrize('raw, fragment', [
    ('', 'empty'),
    ('   ', 'empty'),
    ('https://127.0.0.1:9191', 'TLS'),
    ('http://', 'not a valid'),
    ('127.0.0.1:99999', 'out of range'),
    ('http://127.0.0.1:0', 'out of range'),
])
def test_parse_address_invalid(raw, fragment):
    with pytest.raises(us.StatsError) as err:
        us.parse_address(raw)
    assert fragment in str(err.value)
    assert err.value.reason == 'invalid'


@pytest.mark.parametrize('kind, behaviour', [('unix', 'normal'), ('tcp', 'normal'), ('tcp', 'http')])
def test_read_each_transport(stats_server, fixture_doc, kind, behaviour):
    doc = fixture_doc('basic')
    server = stats_server(kind, doc, behaviour)
    got = us.read_stats(server.address, timeout=3)
    assert got == doc
    assert got['version'] == '2.0.31'


def test_reads_to_eof_in_many_chunks(sockdir):
    """The document arrives in small pieces; the client reads until the server closes."""
    import threading
    path = os.path.join(sockdir, 'slow.sock')
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(1)
    body = json.dumps({'version': '2.0.31', 'workers': [{'id': i, 'pid': 100 + i} for i in range(1, 200)]}).encode()

    def serve():
        conn, dummy = srv.accept()
        for i in range(0, len(body), 97):
            conn.sendall(body[i:i + 97])
            time.sleep(0.001)
        conn.close()

    thread = threading.Thread(target=serve)
    thread.start()
    try:
        doc = us.read_stats(path, timeout=5)
    finally:
        thread.join(5)
        srv.close()
    assert len(doc['workers']) == 199


def test_large_document(stats_server, fixture_doc):
    doc = fixture_doc('basic')
    doc['workers'] = doc['workers'] * 300
    server = stats_server('unix', doc)
    assert len(us.read_stats(server.address)['workers']) == 1200


def test_missing_unix_socket(sockdir):
    path = os.path.join(sockdir, 'nothing.sock')
    with pytest.raises(us.StatsError) as err:
        us.read_stats(path)
    assert err.value.reason == 'missing'
    assert 'does not exist' in str(err.value)
    assert 'stats = %s' % path in str(err.value)


def test_stale_unix_socket_refused(sockdir):
    path = os.path.join(sockdir, 'stale.sock')
    s = socket.socket(socket.AF_UNIX)
    s.bind(path)
    s.close()  # the file stays, nobody listens: what a killed uWSGI leaves behind
    with pytest.raises(us.StatsError) as err:
        us.read_stats(path)
    assert err.value.reason == 'refused'
    assert 'connection refused' in str(err.value)
    assert 'stale' in str(err.value)


def test_tcp_refused():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(us.StatsError) as err:
        us.read_stats('127.0.0.1:%d' % port)
    assert err.value.reason == 'refused'
    assert 'nothing listens on that port' in str(err.value)


def test_http_refused():
    s = socket.socket()
    s.bind(('127.0.0.1', 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(us.StatsError) as err:
        us.read_stats('http://127.0.0.1:%d' % port)
    assert err.value.reason == 'refused'


def test_regular_file_is_not_a_socket(sockdir):
    path = os.path.join(sockdir, 'plain')
    with open(path, 'w') as handle:
        handle.write('x')
    with pytest.raises(us.StatsError) as err:
        us.read_stats(path)
    # Linux answers ECONNREFUSED for a regular file.
    assert err.value.reason in ('refused', 'not_socket')


def test_path_through_a_file_is_not_a_directory(sockdir):
    path = os.path.join(sockdir, 'plain')
    with open(path, 'w') as handle:
        handle.write('x')
    with pytest.raises(us.StatsError) as err:
        us.read_stats(os.path.join(path, 'stats.sock'))
    assert err.value.reason == 'not_socket'


def _in_child_as_nobody(func):
    """Run func() in a forked child with an unprivileged uid; return its message."""
    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - child
        os.close(read_fd)
        try:
            os.setgid(65534)
            os.setuid(65534)
            func()
            out = 'no error'
        except us.StatsError as exc:
            out = '%s|%s' % (exc.reason, exc)
        except BaseException as exc:
            out = 'unexpected|%r' % exc
        os.write(write_fd, out.encode())
        os._exit(0)
    os.close(write_fd)
    data = b''
    while True:
        chunk = os.read(read_fd, 4096)
        if not chunk:
            break
        data += chunk
    os.close(read_fd)
    os.waitpid(pid, 0)
    return data.decode()


def test_permission_denied(stats_server, fixture_doc, sockdir):
    server = stats_server('unix', fixture_doc('basic'))
    os.chmod(server.address, 0o600)
    os.chmod(sockdir, 0o755)
    if os.geteuid() == 0:
        out = _in_child_as_nobody(lambda: us.read_stats(server.address))
        reason, _sep, message = out.partition('|')
    else:
        with pytest.raises(us.StatsError) as err:
            us.read_stats(server.address)
        reason, message = err.value.reason, str(err.value)
    assert reason == 'permission', out if os.geteuid() == 0 else message
    assert 'permission denied' in message
    assert 'become' in message


@pytest.mark.parametrize('kind, behaviour', [('unix', 'hang'), ('tcp', 'hang')])
def test_timeout(stats_server, kind, behaviour):
    server = stats_server(kind, b'', behaviour)
    started = time.time()
    with pytest.raises(us.StatsError) as err:
        us.read_stats(server.address, timeout=0.5)
    assert time.time() - started < 3
    assert err.value.reason == 'timeout'
    assert 'timed out after 0.5s' in str(err.value)


@pytest.mark.parametrize('payload', [
    b'\x00\x10\x00\x00garbage from a uwsgi-protocol socket',
    b'<html><body>502 Bad Gateway</body></html>',
    b'{"version": "2.0.31", "workers": [',
])
def test_not_json_quotes_first_bytes(stats_server, payload):
    server = stats_server('unix', payload)
    with pytest.raises(us.StatsError) as err:
        us.read_stats(server.address)
    assert err.value.reason == 'not_json'
    assert 'is not JSON' in str(err.value)
    assert repr(payload[:10])[2:-1] in str(err.value)


def test_not_json_long_reply_is_cut(stats_server):
    server = stats_server('unix', b'x' * 500)
    with pytest.raises(us.StatsError) as err:
        us.read_stats(server.address)
    assert "'" + 'x' * 80 + "'..." in str(err.value)


def test_empty_reply(stats_server):
    server = stats_server('unix', b'')
    with pytest.raises(us.StatsError) as err:
        us.read_stats(server.address)
    assert err.value.reason == 'empty'


def test_json_but_not_stats(stats_server):
    server = stats_server('unix', {'hello': 'world'})
    with pytest.raises(us.StatsError) as err:
        us.read_stats(server.address)
    assert err.value.reason == 'not_stats'
    assert 'workers' in str(err.value)


def test_http_server_given_as_plain_tcp(stats_server, fixture_doc):
    """A stats-http server read without http:// answers nothing until it gets a request."""
    server = stats_server('tcp', b'HTTP/1.0 200 OK\r\n\r\n{}')
    with pytest.raises(us.StatsError) as err:
        us.read_stats(server.address)
    assert 'http://host:port' in str(err.value)


def test_plain_server_given_as_http(stats_server, fixture_doc):
    server = stats_server('tcp', fixture_doc('basic'))
    with pytest.raises(us.StatsError) as err:
        us.read_stats('http://' + server.address)
    # Either the JSON arrives without HTTP headers or the connection is reset
    # because the server closed without reading the request: both say what to do.
    assert err.value.reason in ('not_http', 'reset')
    assert 'without http://' in str(err.value)


def test_http_status_not_200(stats_server):
    server = stats_server('tcp', b'', 'http_status')
    with pytest.raises(us.StatsError) as err:
        us.read_stats(server.address)
    assert err.value.reason == 'http_status'
    assert '404' in str(err.value)


def test_unresolvable_host():
    with pytest.raises(us.StatsError) as err:
        us.read_stats('no-such-host.invalid:9191', timeout=2)
    assert err.value.reason == 'resolve'
    assert 'cannot resolve' in str(err.value)

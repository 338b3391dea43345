# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The WSGI entry point of the uwsgi role and the ASGI entry point of the
daphne role, with plain Python around a fake app: the probes are answered
only to the requests they are meant for, everything else reaches the app
unchanged. Then the WSGI entry point inside a real uWSGI (the one of the test
virtualenv), asked through uwsgi_request with and without its probe."""

from __future__ import absolute_import, division, print_function

import asyncio
import functools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import types

import pytest

from ansible_collections.webstack.django_uwsgi.plugins.module_utils import uwsgi_protocol
from ansible_collections.webstack.django_uwsgi.plugins.modules import uwsgi_request

ROLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'roles')
WSGI_ENTRY = os.path.join(ROLES, 'uwsgi', 'templates', 'wsgi_entry.py.j2')
ASGI_ENTRY = os.path.join(ROLES, 'daphne', 'templates', 'asgi_entry.py.j2')
UWSGI = os.path.join(os.path.dirname(sys.executable), 'uwsgi')


def source(template):
    """The Python of an entry point template (its only Jinja is the ansible_managed line)."""
    with open(template, encoding='utf-8') as handle:
        lines = handle.read().splitlines(True)
    assert lines[0].startswith('{{ ansible_managed')
    text = ''.join(lines[1:])
    assert '{{' not in text and '{%' not in text
    return text


def load(template, name):
    module = types.ModuleType(name)
    exec(compile(source(template), template, 'exec'), module.__dict__)  # noqa: S102 - the file under test
    return module


@pytest.fixture
def release_dir(tmp_path):
    """<tmp>/releases/r42 (with its RELEASE marker) and <tmp>/current pointing at it."""
    target = tmp_path / 'releases' / 'r42'
    target.mkdir(parents=True)
    (target / 'RELEASE').write_text('r42\n')
    (tmp_path / 'current').symlink_to(target)
    return tmp_path


# ---------------------------------------------------------------- WSGI

def fake_wsgi(calls):
    def app(environ, start_response):
        calls.append(environ.get('PATH_INFO'))
        start_response('200 OK', [('Content-Type', 'text/plain')])
        return [b'from the app']
    return app


def call_wsgi(app, **environ):
    seen = {}

    def start_response(status, headers):
        seen['status'], seen['headers'] = status, dict(headers)
    body = b''.join(app(dict({'REQUEST_METHOD': 'GET'}, **environ), start_response))
    return seen['status'], seen['headers'], body


def test_wsgi_probe_answered_with_the_var(release_dir):
    entry = load(WSGI_ENTRY, 'wsgi_entry')
    calls = []
    app = entry.probe(fake_wsgi(calls), entry._release_of(str(release_dir / 'current')), 'web2')
    status, headers, body = call_wsgi(app, PATH_INFO='/__webstack__/probe', WEBSTACK_PROBE='1')
    assert status == '200 OK' and headers['Content-Type'] == 'application/json'
    doc = json.loads(body)
    # no uwsgi module outside uWSGI: no worker id
    assert doc == {'release': 'r42', 'instance': 'web2', 'worker': None, 'pid': os.getpid()}
    assert calls == []


@pytest.mark.parametrize('environ', [
    {'PATH_INFO': '/__webstack__/probe'},
    {'PATH_INFO': '/__webstack__/probe', 'HTTP_WEBSTACK_PROBE': '1'},
    {'PATH_INFO': '/__webstack__/probe', 'WEBSTACK_PROBE': '0'},
    {'PATH_INFO': '/healthz', 'WEBSTACK_PROBE': '1'},
    {'PATH_INFO': '/'},
])
def test_wsgi_other_requests_reach_the_app(environ):
    entry = load(WSGI_ENTRY, 'wsgi_entry')
    calls = []
    status, _headers, body = call_wsgi(entry.probe(fake_wsgi(calls), 'r1', 'web1'), **environ)
    assert (status, body) == ('200 OK', b'from the app')
    assert calls == [environ['PATH_INFO']]


def test_wsgi_release_is_read_before_the_import(tmp_path, release_dir, monkeypatch):
    """The release is that of the directory current named when the app was imported:
    a later flip of current does not change what the worker reports."""
    package = tmp_path / 'pkg'
    package.mkdir()
    (package / 'fakeapp_wsgi.py').write_text('def application(environ, start_response):\n'
                                             '    start_response("200 OK", [])\n    return [b"app"]\n')
    monkeypatch.syspath_prepend(str(package))
    entry = load(WSGI_ENTRY, 'wsgi_entry')
    app = entry.load('fakeapp_wsgi', str(release_dir / 'current'), 'web1')
    other = release_dir / 'releases' / 'r43'
    other.mkdir()
    (release_dir / 'current').unlink()
    (release_dir / 'current').symlink_to(other)
    _status, _headers, body = call_wsgi(app, PATH_INFO='/__webstack__/probe', WEBSTACK_PROBE='1')
    assert json.loads(body)['release'] == 'r42'
    # without a RELEASE marker: the directory's name
    assert entry._release_of(str(release_dir / 'current')) == 'r43'


def test_wsgi_import_failure_exits_the_worker(tmp_path):
    env = dict(os.environ, WEBSTACK_WSGI_APP='no_such_module_anywhere:application', PYTHONPATH=str(tmp_path))
    (tmp_path / 'webstack_wsgi_entry.py').write_text(source(WSGI_ENTRY))
    out = subprocess.run([sys.executable, '-c', 'import webstack_wsgi_entry'], env=env, cwd=str(tmp_path),
                         capture_output=True, text=True, timeout=30, check=False)
    assert out.returncode == 1
    assert 'ModuleNotFoundError' in out.stderr


# ---------------------------------------------------------------- ASGI

class FakeAsgi(object):
    def __init__(self):
        self.scopes = []

    async def __call__(self, scope, receive, send):
        self.scopes.append(scope)
        if scope['type'] == 'http':
            await send({'type': 'http.response.start', 'status': 200, 'headers': []})
            await send({'type': 'http.response.body', 'body': b'from the app'})
        elif scope['type'] == 'websocket':
            await receive()
            await send({'type': 'websocket.close', 'code': 4000})


def run_asgi(app, scope, incoming=()):
    """The messages ``app`` sends for ``scope`` given the ``incoming`` ones."""
    sent = []
    queue = list(incoming)

    async def receive():
        if queue:
            return queue.pop(0)
        return {'type': 'websocket.disconnect', 'code': 1000} if scope['type'] == 'websocket' else \
            {'type': 'http.disconnect'}

    async def send(message):
        sent.append(message)
    asyncio.run(app(scope, receive, send))
    return sent


def http_scope(path, headers=()):
    return {'type': 'http', 'method': 'GET', 'path': path, 'headers': list(headers)}


def ws_scope(path, headers=()):
    return {'type': 'websocket', 'path': path, 'headers': list(headers)}


WS_CONVERSATION = [{'type': 'websocket.connect'}, {'type': 'websocket.receive', 'text': 'hello 1'}]


def test_asgi_probe_answered_directly(release_dir):
    entry = load(ASGI_ENTRY, 'asgi_entry')
    fake = FakeAsgi()
    app = entry.probe(fake, entry._release_of(str(release_dir / 'current')), 'daphne1')
    sent = run_asgi(app, http_scope('/__webstack__/probe', [(b'host', b'localhost')]))
    assert sent[0]['status'] == 200 and (b'content-type', b'application/json') in sent[0]['headers']
    assert json.loads(sent[1]['body']) == {'release': 'r42', 'process': 'daphne1', 'pid': os.getpid()}
    assert fake.scopes == []


def test_asgi_websocket_probe_echoes_and_closes():
    entry = load(ASGI_ENTRY, 'asgi_entry')
    fake = FakeAsgi()
    sent = run_asgi(entry.probe(fake, 'r1', 'daphne0'), ws_scope('/__webstack__/ws'), WS_CONVERSATION)
    assert sent == [{'type': 'websocket.accept'}, {'type': 'websocket.send', 'text': 'hello 1'},
                    {'type': 'websocket.close', 'code': 1000}]
    assert fake.scopes == []


@pytest.mark.parametrize('header', [b'x-forwarded-for', b'X-Real-IP', b'forwarded'])
def test_asgi_probes_pass_through_with_proxy_headers(header):
    entry = load(ASGI_ENTRY, 'asgi_entry')
    fake = FakeAsgi()
    app = entry.probe(fake, 'r1', 'daphne0')
    sent = run_asgi(app, http_scope('/__webstack__/probe', [(header, b'10.0.0.1')]))
    assert sent[1]['body'] == b'from the app'
    sent = run_asgi(app, ws_scope('/__webstack__/ws', [(header, b'10.0.0.1')]), WS_CONVERSATION)
    assert sent == [{'type': 'websocket.close', 'code': 4000}]
    assert [s['path'] for s in fake.scopes] == ['/__webstack__/probe', '/__webstack__/ws']


@pytest.mark.parametrize('scope', [http_scope('/'), http_scope('/__webstack__/other'), ws_scope('/ws/echo/'),
                                   ws_scope('/__webstack__/probe'), {'type': 'lifespan'}])
def test_asgi_other_requests_reach_the_app(scope):
    entry = load(ASGI_ENTRY, 'asgi_entry')
    fake = FakeAsgi()
    run_asgi(entry.probe(fake, 'r1', 'daphne0'), scope, [{'type': 'websocket.connect'}])
    assert fake.scopes == [scope]


def test_asgi_load_imports_the_named_app(tmp_path, release_dir, monkeypatch):
    package = tmp_path / 'pkg'
    package.mkdir()
    (package / 'fakeapp_asgi.py').write_text('async def app(scope, receive, send):\n    pass\n')
    monkeypatch.syspath_prepend(str(package))
    entry = load(ASGI_ENTRY, 'asgi_entry')
    app = entry.load('fakeapp_asgi:app', str(release_dir / 'current'), 'daphne0')
    sent = run_asgi(app, http_scope('/__webstack__/probe'))
    assert json.loads(sent[1]['body'])['release'] == 'r42'


# ---------------------------------------------------------------- WSGI in a real uWSGI

@pytest.fixture(scope='module')
def uwsgi_with_entry(free_port):
    """A uWSGI instance of 3 lazy-apps workers loading a fake app through the entry point."""
    if not os.path.exists(UWSGI):
        pytest.skip('uwsgi is not installed next to %s' % sys.executable)
    base = tempfile.mkdtemp(prefix='ws-entry-')
    release = os.path.join(base, 'releases', 'v7')
    os.makedirs(release)
    with open(os.path.join(release, 'RELEASE'), 'w') as handle:
        handle.write('v7\n')
    with open(os.path.join(release, 'fakeapp.py'), 'w') as handle:
        handle.write('def application(environ, start_response):\n'
                     '    start_response("200 OK", [("Content-Type", "text/plain")])\n'
                     '    return [("app saw " + environ["PATH_INFO"]).encode()]\n')
    os.symlink(release, os.path.join(base, 'current'))
    with open(os.path.join(base, 'webstack_wsgi_entry.py'), 'w') as handle:
        handle.write(source(WSGI_ENTRY))
    port = free_port()
    ini = os.path.join(base, 'uwsgi.ini')
    current = os.path.join(base, 'current')
    with open(ini, 'w') as handle:
        handle.write('\n'.join([
            '[uwsgi]', 'master = true', 'processes = 3', 'lazy-apps = true', 'strict = true',
            'pythonpath = %s' % current, 'pythonpath = %s' % base, 'module = webstack_wsgi_entry:application',
            'env = WEBSTACK_WSGI_APP=fakeapp:application', 'env = WEBSTACK_UWSGI_INSTANCE=web9',
            'env = WEBSTACK_CURRENT=%s' % current, 'socket = 127.0.0.1:%d' % port,
            'logto = %s' % os.path.join(base, 'uwsgi.log'), 'die-on-term = true']) + '\n')
    proc = subprocess.Popen([UWSGI, '--ini', ini], stdin=subprocess.DEVNULL)
    address = '127.0.0.1:%d' % port
    deadline = time.time() + 20
    while True:
        try:
            uwsgi_protocol.uwsgi_request(address, path='/', timeout=2)
            break
        except uwsgi_protocol.UwsgiProtocolError:
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                raise AssertionError('uWSGI did not start')
            time.sleep(0.1)
    yield {'address': address, 'pid': proc.pid}
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture
def run(run_module):
    return functools.partial(run_module, uwsgi_request.main)


def test_real_uwsgi_probe(run, uwsgi_with_entry):
    workers = set()
    for _attempt in range(30):
        code, out = run({'socket': uwsgi_with_entry['address'], 'probe': True})
        assert code == 0, out
        doc = out['json']
        assert out['request_vars']['WEBSTACK_PROBE'] == '1' and out['request_vars']['PATH_INFO'] == '/__webstack__/probe'
        assert doc['release'] == 'v7' and doc['instance'] == 'web9' and doc['pid'] != uwsgi_with_entry['pid']
        workers.add(doc['worker'])
        if workers == {1, 2, 3}:
            break
    assert workers <= {1, 2, 3} and workers


def test_real_uwsgi_without_the_var_reaches_the_app(run, uwsgi_with_entry):
    code, out = run({'socket': uwsgi_with_entry['address'], 'path': '/__webstack__/probe',
                     'headers': {'Webstack-Probe': '1'}})
    assert code == 0 and out['body'] == 'app saw /__webstack__/probe'


def test_probe_of_an_instance_without_the_entry_point(run, uwsgi_with_entry):
    """probe: true fails when the answer is not the probe's JSON (here a path the app answers)."""
    code, out = run({'socket': uwsgi_with_entry['address'], 'probe': True, 'path': '/elsewhere'})
    assert code == 1 and out['reason_code'] == 'no_probe'
    assert "does not run the collection's WSGI entry point" in out['msg']


def test_real_uwsgi_every_worker_probed(run, uwsgi_with_entry):
    code, out = run({'socket': uwsgi_with_entry['address'], 'probe': True, 'probe_workers': 3,
                     'expect_release': 'v7', 'expect_instance': 'web9'})
    assert code == 0, out
    assert sorted(out['workers']) == ['1', '2', '3']
    assert {d['release'] for d in out['workers'].values()} == {'v7'}


@pytest.mark.parametrize('args, needle, reason', [
    ({'expect_release': 'v8'}, 'answered the probe with release v7 instead of v8', 'release'),
    ({'expect_instance': 'web1'}, 'answered the probe as instance web9 instead of web1', 'instance'),
])
def test_real_uwsgi_wrong_answer_names_the_worker(run, uwsgi_with_entry, args, needle, reason):
    code, out = run(dict({'socket': uwsgi_with_entry['address'], 'probe': True, 'probe_workers': 3}, **args))
    assert code == 1 and needle in out['msg'] and out['reason_code'] == reason
    assert out['failed_worker'] in (1, 2, 3)
    code, out = run(dict({'socket': uwsgi_with_entry['address'], 'probe': True}, **args))
    assert code == 1 and needle in out['msg'] and out['failed_worker'] in (1, 2, 3)


def test_real_uwsgi_missing_workers_named(run, uwsgi_with_entry):
    code, out = run({'socket': uwsgi_with_entry['address'], 'probe': True, 'probe_workers': 5,
                     'expect_instance': 'web9', 'timeout': 1})
    assert code == 1 and out['reason_code'] == 'unseen' and out['failed_worker'] == 4
    assert out['msg'].startswith('workers 4, 5 of web9 did not answer the probe within 1.0 s')


def test_probe_options_need_probe(run):
    code, out = run({'socket': '127.0.0.1:9', 'probe_workers': 2})
    assert code == 1 and 'need probe: true' in out['msg']

# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make `ansible_collections.webstack.django_uwsgi` importable for pytest.

The plugins import each other through the collection namespace, so the
tests do too. In order, this uses:

1. a checkout that already lives at .../ansible_collections/webstack/django_uwsgi
   (ansible-test layout);
2. a collections path from WEBSTACK_COLLECTIONS_PATH or ANSIBLE_COLLECTIONS_PATH
   (tools/env.sh links the checkout there) whose link resolves to this checkout;
3. otherwise a private temporary collections path with a symlink to this
   checkout, removed at exit. So `pytest tests/unit` works from a fresh clone
   with nothing but the virtualenv.

Also the real stats servers of the unit tests: unix, TCP and HTTP sockets
served from a thread of the test, answering with JSON captured from uWSGI
2.0.31 (tests/unit/plugins/module_utils/fixtures; see fixtures/capture.py).
"""

from __future__ import absolute_import, division, print_function

import atexit
import copy
import json
import os
import shutil
import socket
import sys
import tempfile
import threading

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_REL = os.path.join('ansible_collections', 'webstack', 'django_uwsgi')


def _same(path_a, path_b):
    try:
        return os.path.samefile(path_a, path_b)
    except OSError:
        return False


def _collections_root():
    parts = REPO_ROOT.split(os.sep)
    if parts[-3:] == ['ansible_collections', 'webstack', 'django_uwsgi']:
        return os.sep.join(parts[:-3]) or os.sep
    candidates = []
    for var in ('WEBSTACK_COLLECTIONS_PATH', 'ANSIBLE_COLLECTIONS_PATH', 'ANSIBLE_COLLECTIONS_PATHS'):
        candidates.extend(p for p in os.environ.get(var, '').split(os.pathsep) if p)
    for root in candidates:
        if _same(os.path.join(root, _REL), REPO_ROOT):
            return root
    tmp = tempfile.mkdtemp(prefix='webstack-collections-')
    atexit.register(shutil.rmtree, tmp, True)
    os.makedirs(os.path.join(tmp, 'ansible_collections', 'webstack'))
    os.symlink(REPO_ROOT, os.path.join(tmp, _REL))
    return tmp


COLLECTIONS_ROOT = _collections_root()
if COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, COLLECTIONS_ROOT)
os.environ['WEBSTACK_TEST_COLLECTIONS_ROOT'] = COLLECTIONS_ROOT

FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'plugins', 'module_utils', 'fixtures')


def load_fixture(name):
    with open(os.path.join(FIXTURES, name + '.json')) as handle:
        return json.load(handle)


class StatsServer(object):
    """Serve one reply per connection, like the uWSGI stats server.

    ``reply`` is a dict (sent as JSON), bytes, or a callable returning either.
    ``behaviour``: ``normal``; ``hang`` (accept and never answer); ``http``
    (wrap the reply in an HTTP/1.0 200 response after reading the request);
    ``http_status`` (answer 404).
    """

    def __init__(self, kind, reply, behaviour='normal', path=None):
        self.kind = kind
        self.reply = reply
        self.behaviour = behaviour
        self.connections = 0
        self._stop = threading.Event()
        self._held = []
        if kind == 'unix':
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.bind(path)
            self.address = path
        else:
            self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind(('127.0.0.1', 0))
            port = self.sock.getsockname()[1]
            self.address = ('http://127.0.0.1:%d' % port) if behaviour.startswith('http') else ('127.0.0.1:%d' % port)
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.thread = threading.Thread(target=self._serve)
        self.thread.daemon = True
        self.thread.start()

    def _payload(self):
        reply = self.reply() if callable(self.reply) else self.reply
        if isinstance(reply, (dict, list)):
            reply = json.dumps(reply).encode()
        return reply

    def _serve(self):
        while not self._stop.is_set():
            try:
                conn, _addr = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            self.connections += 1
            if self.behaviour == 'hang':
                self._held.append(conn)
                continue
            try:
                conn.settimeout(2)
                if self.behaviour.startswith('http'):
                    request = b''
                    while b'\r\n\r\n' not in request:
                        chunk = conn.recv(4096)
                        if not chunk:
                            break
                        request += chunk
                    if self.behaviour == 'http_status':
                        conn.sendall(b'HTTP/1.0 404 Not Found\r\nContent-Type: text/plain\r\n\r\nnope')
                    else:
                        body = self._payload()
                        conn.sendall(b'HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n' + body)
                else:
                    conn.sendall(self._payload())
            except OSError:
                pass
            finally:
                conn.close()

    def close(self):
        self._stop.set()
        self.thread.join(2)
        self.sock.close()
        for conn in self._held:
            conn.close()


@pytest.fixture
def sockdir():
    # Unix socket paths are limited to 108 bytes: keep them short.
    path = tempfile.mkdtemp(prefix='ws-')
    yield path
    for name in os.listdir(path):
        try:
            os.unlink(os.path.join(path, name))
        except OSError:
            pass
    os.rmdir(path)


@pytest.fixture
def stats_server(sockdir):
    """Factory: stats_server(kind, reply, behaviour='normal') -> StatsServer."""
    servers = []
    counter = [0]

    def make(kind, reply, behaviour='normal'):
        counter[0] += 1
        path = os.path.join(sockdir, 's%d.sock' % counter[0]) if kind == 'unix' else None
        server = StatsServer(kind, reply, behaviour, path)
        servers.append(server)
        return server

    yield make
    for server in servers:
        server.close()


@pytest.fixture
def fixture_doc():
    """Factory returning a deep copy of a captured stats document."""
    return lambda name: copy.deepcopy(load_fixture(name))

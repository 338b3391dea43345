# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Integration tests of the modules against real uWSGI processes.

Each test starts its own uWSGI (the one pip-installed next to the Python
running pytest) in a temporary directory: unix sockets there, HTTP on a free
127.0.0.1 port. The modules run through `ansible` ad hoc with the json
callback, so AnsiballZ packaging and the collection loader are exercised too.
Every uWSGI is stopped by its pid in the fixture finalizer.
"""

from __future__ import absolute_import, division, print_function

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
_REL = os.path.join('ansible_collections', 'webstack', 'django_uwsgi')
BIN = os.path.dirname(sys.executable)
UWSGI = os.path.join(BIN, 'uwsgi')
ANSIBLE = os.path.join(BIN, 'ansible')


def pytest_configure(config):
    config.addinivalue_line('markers', 'integration: starts real uWSGI processes (needs uwsgi in the venv)')


def _collections_root():
    parts = REPO_ROOT.split(os.sep)
    if parts[-3:] == ['ansible_collections', 'webstack', 'django_uwsgi']:
        return os.sep.join(parts[:-3]) or os.sep
    for var in ('WEBSTACK_TEST_COLLECTIONS_ROOT', 'WEBSTACK_COLLECTIONS_PATH', 'ANSIBLE_COLLECTIONS_PATH'):
        for root in (p for p in os.environ.get(var, '').split(os.pathsep) if p):
            try:
                if os.path.samefile(os.path.join(root, _REL), REPO_ROOT):
                    return root
            except OSError:
                pass
    return None


@pytest.fixture(scope='session')
def collections_root():
    root = _collections_root()
    if root is not None:
        yield root
        return
    tmp = tempfile.mkdtemp(prefix='webstack-collections-')
    os.makedirs(os.path.join(tmp, 'ansible_collections', 'webstack'))
    os.symlink(REPO_ROOT, os.path.join(tmp, _REL))
    yield tmp
    shutil.rmtree(tmp, ignore_errors=True)


@pytest.fixture(scope='session')
def run_module(collections_root, tmp_path_factory):
    """run_module(name, args, check=False) -> (rc, result dict) through `ansible` ad hoc."""
    if not os.path.exists(ANSIBLE):
        pytest.skip('ansible is not installed next to %s' % sys.executable)
    home = str(tmp_path_factory.mktemp('ansible-home'))
    env = dict(os.environ)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': collections_root,
        'ANSIBLE_STDOUT_CALLBACK': 'ansible.builtin.json',
        'ANSIBLE_LOAD_CALLBACK_PLUGINS': '1',
        'ANSIBLE_HOST_KEY_CHECKING': '0',
        'ANSIBLE_LOCAL_TEMP': os.path.join(home, 'tmp'),
        'ANSIBLE_REMOTE_TEMP': os.path.join(home, 'remote'),
        'ANSIBLE_NOCOLOR': '1',
        'ANSIBLE_DEPRECATION_WARNINGS': '0',
    })

    def run(name, args, check=False):
        cmd = [ANSIBLE, 'localhost', '-i', 'localhost,', '-c', 'local',
               '-e', 'ansible_python_interpreter=%s' % sys.executable,
               '-m', 'webstack.django_uwsgi.%s' % name, '-a', json.dumps(args)]
        if check:
            cmd.append('--check')
        proc = subprocess.run(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=300)
        try:
            out = json.loads(proc.stdout.decode())
            result = out['plays'][0]['tasks'][0]['hosts']['localhost']
        except (ValueError, KeyError, IndexError):
            raise AssertionError('cannot parse ansible output (rc %d):\n%s\n%s'
                                 % (proc.returncode, proc.stdout.decode(), proc.stderr.decode()))
        return proc.returncode, result
    return run


APP_OK = '''
import hashlib

def application(environ, start_response):
    path = environ.get('PATH_INFO', '/')
    if path == '/cpu':
        # About 2 ms of CPU, like a small Django view.
        data = b'x'
        for _ in range(4000):
            data = hashlib.sha256(data).digest()
    start_response('200 OK', [('Content-Type', 'text/plain')])
    return [b'ok']
'''

APP_BROKEN = 'import module_missing_from_this_release\n'

# What a release's wsgi entry point does when it must not run half-loaded:
# print the traceback for the log and exit, so uWSGI respawns the worker
# (and the chain reload stalls on it) instead of serving without an app.
WSGI_STRICT = '''
import sys
import traceback
sys.path.insert(0, %(dir)r)
try:
    from app import application
except Exception:
    traceback.print_exc()
    raise SystemExit(1)
'''

WSGI_PLAIN = '''
import sys
sys.path.insert(0, %(dir)r)
from app import application
'''


class UwsgiInstance(object):
    def __init__(self, base, name, free_port, processes=4, threads=2, strict=True, stats='unix', extra=()):
        self.dir = os.path.join(base, name)
        os.makedirs(self.dir)
        self.port = free_port()
        self.log = os.path.join(self.dir, 'uwsgi.log')
        self.fifo = os.path.join(self.dir, 'master.fifo')
        self.trigger = os.path.join(self.dir, 'chain-reload')
        if stats == 'unix':
            self.stats = os.path.join(self.dir, 'stats.sock')
            stats_lines = ['stats = %s' % self.stats]
        else:
            stats_port = free_port()
            stats_lines = ['stats = 127.0.0.1:%d' % stats_port]
            self.stats = '127.0.0.1:%d' % stats_port
            if stats == 'http':
                stats_lines.append('stats-http = true')
                self.stats = 'http://' + self.stats
        self.write_app(APP_OK)
        with open(os.path.join(self.dir, 'wsgi.py'), 'w') as handle:
            handle.write((WSGI_STRICT if strict else WSGI_PLAIN) % {'dir': self.dir})
        lines = ['[uwsgi]', 'master = true', 'processes = %d' % processes, 'threads = %d' % threads,
                 'http-socket = 127.0.0.1:%d' % self.port, 'master-fifo = %s' % self.fifo,
                 'touch-chain-reload = %s' % self.trigger, 'lazy-apps = true',
                 'wsgi-file = %s' % os.path.join(self.dir, 'wsgi.py'), 'chdir = %s' % self.dir,
                 'logto = %s' % self.log, 'die-on-term = true', 'listen = 128'] + stats_lines + list(extra)
        self.ini = os.path.join(self.dir, 'uwsgi.ini')
        with open(self.ini, 'w') as handle:
            handle.write('\n'.join(lines) + '\n')
        self.proc = subprocess.Popen([UWSGI, '--ini', self.ini], stdin=subprocess.DEVNULL)
        self.wait_ready(processes)

    def break_app(self):
        """Deploy code that fails at import, as a broken release would."""
        self.write_app(APP_BROKEN)

    def fix_app(self):
        self.write_app(APP_OK)

    def write_app(self, source):
        path = os.path.join(self.dir, 'app.py')
        with open(path, 'w') as handle:
            handle.write(source)

    def get(self, path='/', timeout=5):
        return urllib.request.urlopen('http://127.0.0.1:%d%s' % (self.port, path), timeout=timeout).status

    def wait_ready(self, processes, timeout=20):
        from ansible_collections.webstack.django_uwsgi.plugins.module_utils.uwsgi_stats import (
            StatsError, read_stats)
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError('uWSGI exited with %s:\n%s' % (self.proc.returncode, self.log_text()))
            try:
                doc = read_stats(self.stats, 2)
                ready = [w for w in doc['workers'] if w.get('accepting') and w.get('apps')]
                if len(ready) == processes:
                    return
            except StatsError:
                pass
            time.sleep(0.1)
        raise AssertionError('uWSGI not ready after %ss:\n%s' % (timeout, self.log_text()))

    def log_text(self):
        try:
            with open(self.log) as handle:
                return handle.read()[-4000:]
        except IOError:
            return ''

    def stop(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


@pytest.fixture
def uwsgi(collections_root, tmp_path, free_port):
    """Factory: uwsgi(name, **options) starts an instance; all are stopped by pid afterwards."""
    if not os.path.exists(UWSGI):
        pytest.skip('uwsgi is not installed next to %s' % sys.executable)
    if collections_root not in sys.path:
        sys.path.insert(0, collections_root)
    base = tempfile.mkdtemp(prefix='ws-uwsgi-')  # short: unix socket paths are limited
    instances = []

    def start(name, **options):
        inst = UwsgiInstance(base, name, free_port, **options)
        instances.append(inst)
        return inst
    yield start
    for inst in instances:
        inst.stop()
    shutil.rmtree(base, ignore_errors=True)

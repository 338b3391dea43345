# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""socket_holders against real listening sockets of the test process and a
child that inherits them (the host's own /proc), and its parsing of uWSGI
command lines and ini files, /proc/net addresses and bad input."""

from __future__ import absolute_import, division, print_function

import os
import socket
import struct
import subprocess
import sys

import pytest

from ansible_collections.webstack.django_uwsgi.plugins.modules import socket_holders

pytestmark = pytest.mark.skipif(not sys.platform.startswith('linux'), reason='reads /proc')


@pytest.fixture
def listeners(tmp_path):
    """A listening unix socket and a listening TCP socket of this process."""
    path = str(tmp_path / 'app.sock')
    unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    unix.bind(path)
    unix.listen(4)
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(('127.0.0.1', 0))
    tcp.listen(4)
    yield {'path': path, 'port': tcp.getsockname()[1], 'unix': unix, 'tcp': tcp}
    unix.close()
    tcp.close()


@pytest.fixture
def run(run_module):
    def call(check_mode=False, **args):
        return run_module(socket_holders.main, args, check_mode=check_mode)
    return call


def mine(result):
    return [h for h in result['holders'] if h['pid'] == os.getpid()]


def test_finds_this_process_on_its_unix_and_tcp_sockets(run, listeners):
    rc, result = run(unix=[listeners['path']], tcp=['127.0.0.1:%d' % listeners['port']], check_mode=True)
    assert rc == 0 and result['changed'] is False
    [entry] = mine(result)
    assert entry['listens'] == sorted(['unix:' + listeners['path'], '127.0.0.1:%d' % listeners['port']])
    assert entry['ppid'] == os.getppid() and entry['pids'] == [os.getpid()]
    assert entry['cwd'] == os.getcwd() and entry['exe'] == os.path.realpath(sys.executable)
    assert entry['uwsgi'] is False and entry['stop_signal'] == 'TERM' and entry['configs'] == []
    assert result['unseen'] == []


def test_a_listener_whose_process_cannot_be_seen_is_reported_unseen(run, listeners, monkeypatch):
    # As when /proc/<pid>/fd of its process cannot be read, or it lives in another PID namespace.
    monkeypatch.setattr(socket_holders, 'socket_pids', lambda inodes: {})
    rc, result = run(unix=[listeners['path']], tcp=['127.0.0.1:%d' % listeners['port']])
    assert rc == 0 and result['holders'] == []
    assert result['unseen'] == sorted(['unix:' + listeners['path'], '127.0.0.1:%d' % listeners['port']])


def test_a_socket_not_asked_for_or_another_address_is_not_a_match(run, listeners, tmp_path):
    rc, result = run(unix=[str(tmp_path / 'other.sock')], tcp=['127.0.0.2:%d' % listeners['port']])
    assert rc == 0 and mine(result) == []


@pytest.mark.parametrize('wanted', ['0.0.0.0:%d', 'localhost:%d', '*:%d'])
def test_wildcard_and_localhost_addresses_match(run, listeners, wanted):
    rc, result = run(tcp=[wanted % listeners['port']])
    assert rc == 0 and [h['listens'] for h in mine(result)] == [['127.0.0.1:%d' % listeners['port']]]


def test_a_connected_socket_with_the_same_path_is_not_a_listener(run, listeners):
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.connect(listeners['path'])
    conn = listeners['unix'].accept()[0]
    try:
        listeners['unix'].close()
        rc, result = run(unix=[listeners['path']])
        assert rc == 0 and mine(result) == []
    finally:
        conn.close()
        client.close()


def test_a_child_holding_the_same_socket_is_grouped_under_its_parent(run, listeners):
    child = subprocess.Popen(['sleep', '30'], pass_fds=[listeners['tcp'].fileno()])
    try:
        rc, result = run(tcp=['127.0.0.1:%d' % listeners['port']])
        assert rc == 0
        [entry] = mine(result)
        assert entry['pids'] == sorted([os.getpid(), child.pid])
        assert child.pid not in [h['pid'] for h in result['holders']]
    finally:
        child.kill()
        child.wait()


def test_excluded_pids_and_their_descendants_are_left_out(run, listeners):
    tcp = ['127.0.0.1:%d' % listeners['port']]
    assert mine(run(tcp=tcp, exclude_pids=[os.getpid()])[1]) == []
    assert mine(run(tcp=tcp, exclude_pids=[os.getppid()])[1]) == []
    # 0 and 1 would exclude every process: ignored.
    assert len(mine(run(tcp=tcp, exclude_pids=[0, 1])[1])) == 1


@pytest.mark.parametrize('value', ['8001', '127.0.0.1', '127.0.0.1:http'])
def test_bad_tcp_address_fails_naming_it(run, value):
    rc, result = run(tcp=[value])
    assert rc == 1 and result['failed'] and repr(value) in result['msg'] and 'host:port' in result['msg']


def native(*octets):
    return '%08X' % struct.unpack('=I', bytes(bytearray(octets)))[0]


def test_proc_net_addresses():
    assert socket_holders.hex_address(native(127, 0, 0, 1)) == '127.0.0.1'
    mapped = ''.join(native(*group) for group in ([0] * 4, [0] * 4, [0, 0, 255, 255], [10, 1, 2, 3]))
    assert socket_holders.hex_address(mapped) == '10.1.2.3'
    loopback6 = ''.join(native(*group) for group in ([0] * 4, [0] * 4, [0] * 4, [0, 0, 0, 1]))
    assert socket_holders.hex_address(loopback6) == '::1'


@pytest.fixture
def project(tmp_path):
    """A hand-made uWSGI layout: bin/uwsgi.ini with a pid file next to it, started from bin/ with chdir elsewhere."""
    bin_dir = tmp_path / 'bin'
    bin_dir.mkdir()
    (bin_dir / 'uwsgi.ini').write_text('[uwsgi]\nchdir = %s\npidfile = %%duwsgi.pid\n socket = 127.0.0.1:8000\n'
                                       % tmp_path)
    (bin_dir / 'uwsgi.pid').write_text('4242\n')
    (tmp_path / 'other.pid').write_text('4243\n')
    return tmp_path


@pytest.mark.parametrize('args', [
    ['uwsgi', './uwsgi.ini'],
    ['uwsgi', '--ini', 'uwsgi.ini'],
    ['uwsgi', '--ini=./uwsgi.ini:uwsgi'],
    ['/venv/bin/uwsgi', '--master', '--ini', '{bin}/uwsgi.ini'],
])
def test_uwsgi_config_and_pidfile_resolved_from_where_it_was_started(project, args):
    bin_dir = str(project / 'bin')
    args = [a.format(bin=bin_dir) for a in args]
    # The working directory is chdir's; PWD still names where the command was typed.
    configs, pidfiles = socket_holders.uwsgi_files(args, [bin_dir, str(project)])
    assert configs == [bin_dir + '/uwsgi.ini']
    assert pidfiles == [bin_dir + '/uwsgi.pid']


def test_uwsgi_pidfile_on_the_command_line_and_missing_files(project):
    configs, pidfiles = socket_holders.uwsgi_files(
        ['uwsgi', '--pidfile', 'other.pid', '--ini', 'missing.ini', 'notes.txt', '--socket', 'x.ini'],
        ['', str(project)])
    assert configs == [] and pidfiles == [str(project / 'other.pid')]


def test_magic_variables():
    assert socket_holders.expand('%duwsgi.pid', '/srv/a/b.ini') == '/srv/a/uwsgi.pid'
    assert socket_holders.expand('/run/%n.pid', '/srv/a/web.ini') == '/run/web.pid'
    assert socket_holders.expand('%p 100%%', '/srv/a/web.ini') == '/srv/a/web.ini 100%'


def test_a_uwsgi_process_is_recognised_and_stopped_with_int(tmp_path, monkeypatch, project):
    proc = tmp_path / 'proc'
    base = proc / '4242'
    base.mkdir(parents=True)
    (base / 'cmdline').write_bytes(b'/opt/venv/bin/uwsgi\0./uwsgi.ini\0')
    (base / 'comm').write_text('uwsgi\n')
    (base / 'stat').write_text('4242 (uwsgi) S 1 4242 4242 0 -1\n')
    (base / 'environ').write_bytes(b'HOME=/root\0PWD=%s\0' % str(project / 'bin').encode())
    os.symlink('/opt/venv/bin/uwsgi', str(base / 'exe'))
    os.symlink(str(project), str(base / 'cwd'))
    monkeypatch.setattr(socket_holders, 'PROC', str(proc))
    entry = socket_holders.describe(4242)
    assert entry['uwsgi'] is True and entry['stop_signal'] == 'INT' and entry['ppid'] == 1
    assert entry['configs'] == [str(project / 'bin' / 'uwsgi.ini')]
    assert entry['pidfiles'] == [str(project / 'bin' / 'uwsgi.pid')]

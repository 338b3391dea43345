# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""daphne_listen through AnsibleModule: supervisorctl's status parsed (a
stopped spare slot included), the release of each process read from its
working directory, SIGUSR1 only to the running processes not on the kept
release, SIGUSR2 to every running one, nothing sent in check mode."""

from __future__ import absolute_import, division, print_function

import os
import signal

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.django_uwsgi.plugins.modules import daphne_listen

STATUS = """daphne:daphne0                   RUNNING   pid 101, uptime 0:10:00
daphne:daphne1                   RUNNING   pid 102, uptime 0:10:00
daphne:daphne2                   STOPPED   Not started
daphne:daphne3                   RUNNING   pid 104, uptime 0:00:05
uwsgi-web1                       RUNNING   pid 99, uptime 0:10:00
"""


@pytest.fixture
def host(monkeypatch, tmp_path):
    """A fake host: supervisorctl answers `status`, /proc/<pid>/cwd are symlinks in tmp_path, kills recorded."""
    releases = tmp_path / 'releases'
    for name in ('v1', 'v2'):
        (releases / name).mkdir(parents=True)
    proc = tmp_path / 'proc'
    for pid, release in ((101, 'v1'), (102, 'v1'), (104, 'v2')):
        (proc / str(pid)).mkdir(parents=True)
        os.symlink(str(releases / release), str(proc / str(pid) / 'cwd'))
    state = {'status': (3, STATUS, ''), 'kills': [], 'argv': []}

    def run_command(self, argv, **kwargs):
        state['argv'].append(argv)
        return state['status']

    real = daphne_listen.release_dir
    monkeypatch.setattr(AnsibleModule, 'run_command', run_command)
    monkeypatch.setattr(daphne_listen, 'release_dir', lambda pid: real(pid, proc=str(proc)))
    monkeypatch.setattr(daphne_listen.os, 'kill', lambda pid, sig: state['kills'].append((pid, sig)))
    state['v2'] = str(releases / 'v2')
    state['v1'] = str(releases / 'v1')
    return state


def test_query_lists_the_slots_and_their_release(run_module, host):
    code, result = run_module(daphne_listen.main, {'keep_release': host['v2']})
    assert code == 0 and result['changed'] is False and result['signalled'] == []
    assert [(p['program'], p['state'], p['pid'], p['on_release']) for p in result['processes']] == [
        ('daphne:daphne0', 'RUNNING', 101, False), ('daphne:daphne1', 'RUNNING', 102, False),
        ('daphne:daphne2', 'STOPPED', 0, False), ('daphne:daphne3', 'RUNNING', 104, True)]
    assert result['processes'][0]['release_dir'] == os.path.realpath(host['v1'])
    assert result['processes'][2]['release_dir'] == ''
    assert host['argv'] == [['supervisorctl', '-c', '/etc/supervisor/supervisord.conf', 'status', 'daphne:*']]
    assert host['kills'] == []


def test_refusing_signals_only_the_old_release(run_module, host):
    code, result = run_module(daphne_listen.main, {'state': 'refusing', 'keep_release': host['v2']})
    assert code == 0 and result['changed'] is True
    assert result['signalled'] == ['daphne:daphne0', 'daphne:daphne1']
    assert host['kills'] == [(101, signal.SIGUSR1), (102, signal.SIGUSR1)]


def test_refusing_when_every_process_is_on_the_release_changes_nothing(run_module, host):
    host['status'] = (3, 'daphne:daphne3   RUNNING   pid 104, uptime 0:00:05\ndaphne:daphne2   STOPPED   Not started\n', '')
    code, result = run_module(daphne_listen.main, {'state': 'refusing', 'keep_release': host['v2']})
    assert code == 0 and result['changed'] is False and host['kills'] == []


def test_accepting_signals_every_running_process(run_module, host):
    code, result = run_module(daphne_listen.main, {'state': 'accepting'})
    assert code == 0 and result['changed'] is True
    assert host['kills'] == [(101, signal.SIGUSR2), (102, signal.SIGUSR2), (104, signal.SIGUSR2)]


def test_check_mode_reports_but_sends_nothing(run_module, host):
    code, result = run_module(daphne_listen.main, {'state': 'refusing', 'keep_release': host['v2']}, check_mode=True)
    assert code == 0 and result['changed'] is True and result['signalled'] == ['daphne:daphne0', 'daphne:daphne1']
    assert host['kills'] == []


def test_refusing_needs_the_release(run_module, host):
    code, result = run_module(daphne_listen.main, {'state': 'refusing'})
    assert code == 1 and 'keep_release' in result['msg']


def test_unknown_group_fails_with_what_supervisorctl_said(run_module, host):
    host['status'] = (4, '', 'daphne: ERROR (no such group)')
    code, result = run_module(daphne_listen.main, {})
    assert code == 1 and "group 'daphne'" in result['msg'] and 'no such group' in result['msg']


def test_release_dir_of_a_missing_process_is_empty(tmp_path):
    assert daphne_listen.release_dir(4242, proc=str(tmp_path)) == ''
    assert daphne_listen.release_dir(0) == ''

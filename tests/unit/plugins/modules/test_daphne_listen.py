# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""daphne_listen through AnsibleModule: supervisorctl's status parsed (a
stopped spare slot included), the release of each running process asked of
its probe, SIGUSR1 only to the running processes that report another
release, SIGUSR2 to every running one, nothing sent in check mode."""

from __future__ import absolute_import, division, print_function

import signal

import pytest

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.django_uwsgi.plugins.module_utils.asgi_probe import ProbeError
from ansible_collections.webstack.django_uwsgi.plugins.modules import daphne_listen

STATUS = """daphne:daphne0                   RUNNING   pid 101, uptime 0:10:00
daphne:daphne1                   RUNNING   pid 102, uptime 0:10:00
daphne:daphne2                   STOPPED   Not started
daphne:daphne3                   RUNNING   pid 104, uptime 0:00:05
daphne:daphne4                   RUNNING   pid 105, uptime 0:10:00
uwsgi-web1                       RUNNING   pid 99, uptime 0:10:00
"""
SLOTS = [{'program': 'daphne:daphne0', 'socket': '/run/daphne/daphne0.sock', 'address': 'unix:/run/daphne/daphne0.sock'},
         {'program': 'daphne:daphne1', 'socket': '', 'address': '127.0.0.1:8002'},
         {'program': 'daphne:daphne2', 'socket': '', 'address': '127.0.0.1:8003'},
         {'program': 'daphne:daphne3', 'socket': '', 'address': '127.0.0.1:8004'},
         {'program': 'daphne:daphne4', 'socket': '', 'address': '127.0.0.1:8005'}]
# What each target's probe answers (daphne4 already refuses: connection refused).
RELEASES = {('unix', '/run/daphne/daphne0.sock'): 'v1', ('tcp', ('127.0.0.1', 8002)): 'v1',
            ('tcp', ('127.0.0.1', 8004)): 'v2'}


@pytest.fixture
def host(monkeypatch):
    """A fake host: supervisorctl answers `status`, the probes answer from RELEASES, kills recorded."""
    state = {'status': (3, STATUS, ''), 'kills': [], 'argv': [], 'probed': []}

    def run_command(self, argv, **kwargs):
        state['argv'].append(argv)
        return state['status']

    def http_get(target, path, timeout=5.0, **kwargs):
        state['probed'].append((target, path))
        if target not in RELEASES:
            raise ProbeError('connection failed: Connection refused', 'reset')
        return {'status': 200, 'json': {'release': RELEASES[target], 'process': 'x', 'pid': 1}}

    monkeypatch.setattr(AnsibleModule, 'run_command', run_command)
    monkeypatch.setattr(daphne_listen, 'http_get', http_get)
    monkeypatch.setattr(daphne_listen.os, 'kill', lambda pid, sig: state['kills'].append((pid, sig)))
    return state


def test_query_lists_the_slots_and_their_release(run_module, host):
    code, result = run_module(daphne_listen.main, {'processes': SLOTS, 'keep_release': 'v2'})
    assert code == 0 and result['changed'] is False and result['signalled'] == []
    assert [(p['program'], p['state'], p['pid'], p['release'], p['on_release']) for p in result['processes']] == [
        ('daphne:daphne0', 'RUNNING', 101, 'v1', False), ('daphne:daphne1', 'RUNNING', 102, 'v1', False),
        ('daphne:daphne2', 'STOPPED', 0, '', False), ('daphne:daphne3', 'RUNNING', 104, 'v2', True),
        ('daphne:daphne4', 'RUNNING', 105, '', False)]
    assert host['argv'] == [['supervisorctl', '-c', '/etc/supervisor/supervisord.conf', 'status', 'daphne:*']]
    # the stopped slot is not asked; the probe's path is the entry point's
    assert [t for t, dummy in host['probed']] == [('unix', '/run/daphne/daphne0.sock'), ('tcp', ('127.0.0.1', 8002)),
                                                  ('tcp', ('127.0.0.1', 8004)), ('tcp', ('127.0.0.1', 8005))]
    assert {path for dummy, path in host['probed']} == {'/__webstack__/probe'}
    assert host['kills'] == []


def test_refusing_signals_only_the_processes_on_another_release(run_module, host):
    code, result = run_module(daphne_listen.main, {'state': 'refusing', 'processes': SLOTS, 'keep_release': 'v2'})
    assert code == 0 and result['changed'] is True
    # daphne3 is on v2, daphne4 does not answer (it already refuses): both left alone
    assert result['signalled'] == ['daphne:daphne0', 'daphne:daphne1']
    assert host['kills'] == [(101, signal.SIGUSR1), (102, signal.SIGUSR1)]


def test_refusing_when_every_process_is_on_the_release_changes_nothing(run_module, host):
    host['status'] = (3, 'daphne:daphne3   RUNNING   pid 104, uptime 0:00:05\ndaphne:daphne2   STOPPED   Not started\n', '')
    code, result = run_module(daphne_listen.main, {'state': 'refusing', 'processes': SLOTS, 'keep_release': 'v2'})
    assert code == 0 and result['changed'] is False and host['kills'] == []


def test_accepting_signals_every_running_process(run_module, host):
    code, result = run_module(daphne_listen.main, {'state': 'accepting'})
    assert code == 0 and result['changed'] is True
    assert host['kills'] == [(101, signal.SIGUSR2), (102, signal.SIGUSR2), (104, signal.SIGUSR2), (105, signal.SIGUSR2)]
    assert host['probed'] == []


def test_check_mode_reports_but_sends_nothing(run_module, host):
    code, result = run_module(daphne_listen.main, {'state': 'refusing', 'processes': SLOTS, 'keep_release': 'v2'},
                              check_mode=True)
    assert code == 0 and result['changed'] is True and result['signalled'] == ['daphne:daphne0', 'daphne:daphne1']
    assert host['kills'] == []


@pytest.mark.parametrize('args', [{'state': 'refusing', 'processes': SLOTS}, {'state': 'refusing', 'keep_release': 'v2'}])
def test_refusing_needs_what_to_keep_and_the_slots(run_module, host, args):
    code, result = run_module(daphne_listen.main, args)
    assert code == 1 and (('keep_release' in result['msg'] and 'keep_programs' in result['msg']) or 'processes' in result['msg'])


def test_unknown_group_fails_with_what_supervisorctl_said(run_module, host):
    host['status'] = (4, '', 'daphne: ERROR (no such group)')
    code, result = run_module(daphne_listen.main, {})
    assert code == 1 and "group 'daphne'" in result['msg'] and 'no such group' in result['msg']


def test_refusing_keeps_the_named_programs_whatever_their_release(run_module, host):
    """The daphne role's restart (same release, new environment): every process
    that answers refuses but the slot it just started."""
    code, result = run_module(daphne_listen.main, {'state': 'refusing', 'processes': SLOTS,
                                                   'keep_programs': ['daphne:daphne3']})
    assert code == 0 and result['changed'] is True
    # daphne3 is kept, daphne4 does not answer: neither is signalled
    assert result['signalled'] == ['daphne:daphne0', 'daphne:daphne1']
    assert host['kills'] == [(101, signal.SIGUSR1), (102, signal.SIGUSR1)]
    assert {p['on_release'] for p in result['processes']} == {False}


def test_refusing_with_a_release_and_kept_programs_leaves_both_alone(run_module, host):
    code, result = run_module(daphne_listen.main, {'state': 'refusing', 'processes': SLOTS, 'keep_release': 'v2',
                                                   'keep_programs': ['daphne:daphne1']})
    assert code == 0 and result['signalled'] == ['daphne:daphne0']
    assert host['kills'] == [(101, signal.SIGUSR1)]

# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The stack model: one place turns the inventory's variables into the
instances and daphne processes every role and the rollout use."""

from __future__ import absolute_import, division, print_function

import os

import pytest
import yaml

from ansible_collections.webstack.django_uwsgi.plugins.plugin_utils import stack_model
from ansible_collections.webstack.django_uwsgi.plugins.plugin_utils.stack_model import (
    StackModelError,
    build,
    front_servers,
    next_upstream_timeout,
    role_defaults,
)

ROLES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'roles')


def load(role, name='defaults'):
    with open(os.path.join(ROLES, role, name, 'main.yml')) as handle:
        return yaml.safe_load(handle)


def test_defaults_come_from_the_roles_defaults_files():
    defaults = role_defaults()
    uwsgi = load('uwsgi')
    assert defaults['uwsgi_instances'] == uwsgi['uwsgi_instances']
    assert defaults['uwsgi_instance_defaults'] == uwsgi['uwsgi_instance_defaults']
    assert defaults['daphne_processes'] == load('daphne')['daphne_processes']
    assert defaults['supervisor_conf_dir'] == load('supervisor')['supervisor_conf_dir']


def test_fixed_paths_agree_with_the_roles_that_write_them():
    assert stack_model.SUPERVISOR_CONFIG == load('supervisor', 'vars')['__supervisor_config_path']
    assert load('django_app')['django_app_root'] == '/srv/{{ django_app_name }}'


ASGI = {'django_app_asgi_application': 'demo.asgi:application'}


def test_default_layout():
    model = build(dict(ASGI), host='app1')
    names = [i['name'] for i in model['instances']]
    assert names == [i['name'] for i in load('uwsgi')['uwsgi_instances']]
    web1 = model['instances'][0]
    assert web1['socket'] == '/run/uwsgi/web1/uwsgi.sock' and web1['socket_is_unix']
    assert web1['stats'] == '/run/uwsgi/web1/stats.sock'
    assert web1['chain_reload_file'] == '/run/uwsgi/web1/chain-reload'
    assert web1['master_fifo'] == '/run/uwsgi/web1/master.fifo'
    assert web1['ini'] == '/etc/uwsgi/web1.ini'
    assert web1['log'] == '/var/log/uwsgi/web1.log'
    assert web1['program'] == 'uwsgi-web1'
    assert web1['program_file'] == '/etc/supervisor/conf.d/uwsgi-web1.conf'
    assert web1['processes'] == load('uwsgi')['uwsgi_instance_defaults']['processes']
    assert web1['thunder_lock'] is True
    assert model['current'] == '/srv/demo/current'
    assert model['supervisorctl'] == ['supervisorctl', '-c', '/etc/supervisor/supervisord.conf']
    # Two processes and the spare slot (supervisord does not start it).
    assert [d['program'] for d in model['daphne']] == ['daphne:daphne0', 'daphne:daphne1', 'daphne:daphne2']
    assert [d['spare'] for d in model['daphne']] == [False, False, True]
    assert model['daphne'][0]['address'] == 'unix:/run/daphne/daphne0.sock'
    assert model['daphne'][2]['address'] == 'unix:/run/daphne/daphne2.sock'


def test_non_default_layout_three_instances_tcp_other_run_dir():
    variables = {
        'uwsgi_run_dir': '/run/shop-uwsgi',
        'uwsgi_log_dir': '/var/log/shop',
        'uwsgi_conf_dir': '/etc/shop-uwsgi',
        'supervisor_conf_dir': '/etc/supervisor/shop.d',
        'uwsgi_instances': [
            {'name': 'alpha', 'socket': '127.0.0.1:9101', 'processes': 3},
            {'name': 'beta', 'socket': '10.0.0.5:9102'},
            {'name': 'gamma'},
        ],
        'uwsgi_instance_defaults': {'processes': 2, 'threads': 1},
        'daphne_processes': 3, 'daphne_spare': False, 'daphne_bind': 'tcp', 'daphne_host': '127.0.0.1',
        'daphne_port_base': 9201, 'django_app_name': 'shop', 'django_app_root': '/opt/shop/', 'django_app_asgi_application': 'shop.asgi:app',
    }
    model = build(variables, host='shop1')
    alpha, beta, gamma = model['instances']
    assert (alpha['socket'], alpha['socket_is_unix'], alpha['processes']) == ('127.0.0.1:9101', False, 3)
    assert beta['processes'] == 2 and beta['threads'] == 1
    assert gamma['socket'] == '/run/shop-uwsgi/gamma/uwsgi.sock'
    assert alpha['stats'] == '/run/shop-uwsgi/alpha/stats.sock'
    assert gamma['log'] == '/var/log/shop/gamma.log' and gamma['ini'] == '/etc/shop-uwsgi/gamma.ini'
    assert gamma['program_file'] == '/etc/supervisor/shop.d/uwsgi-gamma.conf'
    assert model['current'] == '/opt/shop/current'
    assert [(d['host'], d['port'], d['address']) for d in model['daphne']] == [
        ('127.0.0.1', 9201, '127.0.0.1:9201'), ('127.0.0.1', 9202, '127.0.0.1:9202'), ('127.0.0.1', 9203, '127.0.0.1:9203')]


@pytest.mark.parametrize('variables', [
    {'django_app_asgi_application': ''},
    {'django_app_asgi_application': 'demo.asgi:application', 'daphne_asgi_application': ''},
    {'django_app_asgi_application': '', 'daphne_processes': 4, 'daphne_bind': 'tcp'},
])
def test_no_asgi_application_no_daphne(variables):
    """A project without an ASGI application runs no daphne process (and so no websocket location)."""
    model = build(variables, host='app1')
    assert model['daphne'] == [] and model['app']['asgi_application'] == ''
    assert front_servers([model], 'app1')['daphne'] == []


def test_daphne_asgi_application_wins_over_the_apps():
    model = build({'django_app_asgi_application': '', 'daphne_asgi_application': 'other.asgi:app'})
    assert model['app']['asgi_application'] == 'other.asgi:app' and len(model['daphne']) == 3
    model = build({'django_app_asgi_application': 'demo.asgi:application'})
    assert model['app']['asgi_application'] == 'demo.asgi:application'


def test_unset_value_none_takes_the_default():
    assert build({'uwsgi_run_dir': None})['instances'][0]['run_dir'] == '/run/uwsgi/web1'


@pytest.mark.parametrize('variables, message', [
    ({'uwsgi_instances': 'web1'}, 'uwsgi_instances must be a list'),
    ({'uwsgi_instances': [{'processes': 2}]}, r'uwsgi_instances\[0\] must be a dict with a name'),
    ({'uwsgi_instances': [{'name': 'a', 'processes': 'many'}]}, r'uwsgi_instances\[0\]\.processes must be an integer'),
    ({'uwsgi_instance_defaults': []}, 'uwsgi_instance_defaults must be a dict'),
    ({'uwsgi_instances': [{'name': 'a'}, {'name': 'b', 'harakiri': '30s'}]},
     r'uwsgi_instances\[1\]\.harakiri must be an integer'),
    ({'daphne_processes': 'two'}, 'daphne_processes must be an integer'),
    ({'daphne_spare': 'maybe', 'django_app_asgi_application': 'demo.asgi:application'}, 'daphne_spare must be a boolean'),
    ({'daphne_bind': 'udp', 'django_app_asgi_application': 'demo.asgi:application'}, 'daphne_bind must be unix or tcp'),
])
def test_bad_input_names_the_variable(variables, message):
    with pytest.raises(StackModelError, match=message):
        build(variables)


def test_front_servers_reachability():
    here = build({'uwsgi_instances': [{'name': 'web1'}]}, host='front')
    other_unix = build(dict(ASGI, uwsgi_instances=[{'name': 'web1'}], daphne_processes=1), host='app2')
    other_tcp = build({'uwsgi_instances': [{'name': 'a', 'socket': '127.0.0.1:9001'},
                                           {'name': 'b', 'socket': '0.0.0.0:9002'},
                                           {'name': 'c', 'socket': '10.1.2.3:9003'}],
                       'daphne_processes': 1, 'daphne_bind': 'tcp', 'daphne_host': '0.0.0.0',
                       'ansible_host': '10.1.2.4', **ASGI}, host='app3')
    out = front_servers([here, other_unix, other_tcp], 'front')
    by = {(s['host'], s['name']): s for s in out['uwsgi']}
    assert by[('front', 'web1')] == {'host': 'front', 'name': 'web1', 'instance': 'web1',
                                     'address': 'unix:/run/uwsgi/web1/uwsgi.sock', 'harakiri': 60, 'error': ''}
    assert 'unix socket /run/uwsgi/web1/uwsgi.sock cannot be reached from front' in by[('app2', 'web1')]['error']
    assert 'is on loopback' in by[('app3', 'a')]['error']
    assert by[('app3', 'b')]['address'] == '10.1.2.4:9002' and by[('app3', 'b')]['error'] == ''
    assert by[('app3', 'c')]['error'] == ''
    daphne = {(s['host'], s['name']): s for s in out['daphne']}
    assert 'set daphne_bind: tcp' in daphne[('app2', 'daphne0')]['error']
    assert daphne[('app3', 'daphne0')]['address'] == '10.1.2.4:8001'
    shared = front_servers([other_tcp], 'front', share_loopback=True)
    assert all(s['error'] == '' for s in shared['uwsgi'])


@pytest.mark.parametrize('spare, count', [(True, 3), ('yes', 3), (False, 2), ('false', 2)])
def test_spare_slot_is_the_next_port_and_listed_by_the_front(spare, count):
    model = build(dict(ASGI, daphne_processes=2, daphne_spare=spare, daphne_bind='tcp', daphne_host='10.0.0.7',
                       daphne_port_base=8101), host='app1')
    assert [(d['name'], d['port'], d['spare']) for d in model['daphne']] == [
        ('daphne%d' % i, 8101 + i, i == 2) for i in range(count)]
    assert [s['address'] for s in front_servers([model], 'front')['daphne']] == [
        '10.0.0.7:%d' % (8101 + i) for i in range(count)]


def test_front_retry_window_is_below_the_smallest_harakiri():
    """nginx passes a failed request on only while it has run less than any instance's harakiri.

    A worker killed by harakiri closes the connection without an answer, an
    `error` for nginx like a refused connect; past this window the request is
    answered 502 instead of being run (and killed) again on the next server.
    """
    default = front_servers([build({'uwsgi_instances': [{'name': 'web1'}]}, host='app1')], 'app1')
    assert load('uwsgi')['uwsgi_instance_defaults']['harakiri'] == 60
    assert (default['harakiri'], default['next_upstream_timeout']) == (60, '58500ms')
    # The smallest harakiri over every app host; an instance without one (0,
    # None, a defaults dict without the key) does not count.
    app1 = build({'uwsgi_instances': [{'name': 'a', 'harakiri': 30}, {'name': 'b', 'harakiri': 0}]}, host='app1')
    app2 = build({'uwsgi_instances': [{'name': 'c', 'harakiri': '6'}, {'name': 'd', 'harakiri': None}],
                  'uwsgi_instance_defaults': {'processes': 2}}, host='app2')
    out = front_servers([app1, app2], 'front', share_loopback=True)
    assert [(s['name'], s['harakiri']) for s in out['uwsgi']] == [('a', 30), ('b', 0), ('c', 6), ('d', 0)]
    assert (out['harakiri'], out['next_upstream_timeout']) == (6, '4500ms')
    none = front_servers([build({'uwsgi_instances': [{'name': 'a', 'harakiri': 0}]}, host='h')], 'h')
    assert (none['harakiri'], none['next_upstream_timeout']) == (0, '0')


@pytest.mark.parametrize('harakiri, timeout', [
    (0, '0'), (-1, '0'), (1, '250ms'), (2, '500ms'), (3, '1500ms'), (6, '4500ms'), ('60', '58500ms'),
])
def test_next_upstream_timeout_stays_below_the_earliest_harakiri_and_never_means_no_limit(harakiri, timeout):
    """uWSGI can kill a worker a little over harakiri - 1 s after its request began (whole seconds)."""
    assert next_upstream_timeout(harakiri) == timeout
    if int(harakiri) >= 3:
        assert int(timeout[:-2]) == (int(harakiri) - 1) * 1000 - 500
    elif int(harakiri) > 0:
        assert 0 < int(timeout[:-2]) < int(harakiri) * 1000

# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""uwsgi_stats through AnsibleModule: arguments, results and failures."""

from __future__ import absolute_import, division, print_function

import functools
import json
import os

import pytest


from ansible_collections.webstack.django_uwsgi.plugins.modules import uwsgi_stats


@pytest.fixture
def run(run_module):
    """run(args, check_mode=False) -> (exit code, result) of uwsgi_stats."""
    return functools.partial(run_module, uwsgi_stats.main)


def counts(doc, values):
    for worker, value in zip(doc['workers'], values):
        worker['requests'] = value
        for app in worker['apps']:
            app['requests'] = value
    return doc


@pytest.mark.parametrize('check_mode', [False, True])
def test_one_snapshot(run, stats_server, fixture_doc, check_mode):
    server = stats_server('unix', fixture_doc('basic'))
    rc, out = run({'socket': server.address, 'min_requests': 10}, check_mode)
    assert rc == 0, out
    assert out['changed'] is False
    assert len(out['workers']) == 4
    assert out['instances'][0]['version'] == '2.0.31'
    assert out['balance']['verdict'] in ('balanced', 'imbalanced')
    assert out['table_lines'][0].startswith('uwsgi-2.0.31 - %s' % server.address)
    assert out['table'] == '\n'.join(out['table_lines'])
    assert out['listen_queue'] == 0


def test_sampled_window_and_string_socket_list(run, stats_server, fixture_doc):
    seq = [counts(fixture_doc('basic'), [0, 0, 0, 0]), counts(fixture_doc('basic'), [60, 50, 50, 40])]
    server = stats_server('tcp', lambda: seq.pop(0) if len(seq) > 1 else seq[0], 'http')
    rc, out = run({'socket': server.address, 'sample_seconds': 0.2, 'max_share_ratio': 1.5,
                   'min_requests': 100})
    assert rc == 0, out
    assert out['balance']['requests'] == 200
    assert out['balance']['ratio'] == 1.2
    assert out['balance']['verdict'] == 'balanced'
    assert out['instances'][0]['basis'] == 'window'
    assert out['instances'][0]['window_seconds'] >= 0.2


def test_imbalanced_fails_with_figures(run, stats_server, fixture_doc):
    seq = [counts(fixture_doc('basic'), [0, 0, 0, 0]), counts(fixture_doc('basic'), [700, 100, 100, 100])]
    server = stats_server('unix', lambda: seq.pop(0) if len(seq) > 1 else seq[0])
    rc, out = run({'socket': [server.address], 'sample_seconds': 0.1, 'max_share_ratio': 1.5})
    assert rc == 1
    assert out['failed'] is True
    assert out['msg'].startswith('imbalanced: worker 1 served 70.0% of 1000 requests')
    assert '2.80 times its fair share of 25.0%' in out['msg']
    assert out['balance']['verdict'] == 'imbalanced'
    assert 'table' in out


def test_imbalanced_without_bound_only_reports(run, stats_server, fixture_doc):
    seq = [counts(fixture_doc('basic'), [0, 0, 0, 0]), counts(fixture_doc('basic'), [700, 100, 100, 100])]
    server = stats_server('unix', lambda: seq.pop(0) if len(seq) > 1 else seq[0])
    rc, out = run({'socket': server.address, 'sample_seconds': 0.1})
    assert rc == 0
    assert out['balance']['verdict'] == 'imbalanced'
    assert out['balance']['max_share_ratio'] == 1.5


def test_light_traffic_never_fails(run, stats_server, fixture_doc):
    seq = [counts(fixture_doc('basic'), [0, 0, 0, 0]), counts(fixture_doc('basic'), [20, 0, 0, 0])]
    server = stats_server('unix', lambda: seq.pop(0) if len(seq) > 1 else seq[0])
    rc, out = run({'socket': server.address, 'sample_seconds': 0.1, 'max_share_ratio': 1.1,
                   'min_requests': 100})
    assert rc == 0
    assert out['balance']['verdict'] == 'insufficient_traffic'
    assert out['balance']['ratio'] == 4.0


def test_missing_socket_message(run, sockdir):
    path = os.path.join(sockdir, 'gone.sock')
    rc, out = run({'socket': path})
    assert rc == 1
    assert out['msg'].startswith('stats socket %s does not exist' % path)
    assert out['reason'] == 'missing'
    assert out['socket'] == path
    assert 'Traceback' not in json.dumps(out)


def test_not_json_message(run, stats_server):
    server = stats_server('unix', b'\x00\x15\x00\x00uwsgi packet')
    rc, out = run({'socket': server.address})
    assert rc == 1
    assert 'is not JSON' in out['msg'] and 'uwsgi packet' in out['msg']


@pytest.mark.parametrize('args, fragment', [
    ({'sample_seconds': -1}, 'sample_seconds'),
    ({'max_share_ratio': 0.5}, 'max_share_ratio must be at least 1'),
    ({'min_requests': -3}, 'min_requests'),
    ({'timeout': 0}, 'timeout'),
    ({'socket': ['']}, 'at least one stats server'),
    ({'socket': 'https://127.0.0.1:9191'}, 'TLS'),
])
def test_bad_arguments(run, args, fragment):
    params = {'socket': '/run/uwsgi/web1/stats.sock'}
    params.update(args)
    rc, out = run(params)
    assert rc == 1
    assert fragment in out['msg']


def test_required_socket(run):
    rc, out = run({})
    assert rc == 1
    assert 'socket' in out['msg']

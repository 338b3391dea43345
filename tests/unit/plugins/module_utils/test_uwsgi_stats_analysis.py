# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Shares, verdicts, Gini and the table, on documents captured from uWSGI 2.0.31."""

from __future__ import absolute_import, division, print_function

import pytest

from ansible_collections.webstack.django_uwsgi.plugins.module_utils import uwsgi_stats as us


def snap(doc, at=0.0, address='/run/uwsgi/web1/stats.sock'):
    return us.Snapshot(doc, at, address)


def with_requests(doc, counts):
    """Set per-worker request counters (slot counter and app counter)."""
    for worker, count in zip(doc['workers'], counts):
        worker['requests'] = count
        for app in worker.get('apps', []):
            app['requests'] = count
    return doc


@pytest.mark.parametrize('values, expected', [
    ([], 0.0),
    ([5], 0.0),
    ([0, 0, 0], 0.0),
    ([10, 10, 10, 10], 0.0),
    ([0, 0, 0, 40], 0.75),
    ([1, 2, 3, 4], 0.25),
])
def test_gini(values, expected):
    assert us.gini(values) == pytest.approx(expected)


def test_worker_normalisation_current_format(fixture_doc):
    s = snap(fixture_doc('basic'))
    assert s.version == '2.0.31'
    assert s.listen_queue == 0
    assert [w.id for w in s.workers] == [1, 2, 3, 4]
    w = s.workers[0]
    assert w.accepting_reported and w.accepting and w.eligible
    assert w.apps == 1 and w.cores == 2
    assert w.last_spawn > 1700000000


def test_worker_normalisation_old_format(fixture_doc):
    s = snap(fixture_doc('old_format'))
    assert s.listen_queue is None
    assert s.listen_queue_errors is None
    for w in s.workers:
        assert not w.accepting_reported
        assert w.accepting  # assumed for a running non-cheap worker
        assert w.cores is None
        assert w.harakiri_count == 0


def test_cheap_workers_have_slot_ids_and_are_excluded(fixture_doc):
    doc = fixture_doc('cheaper')
    s = snap(doc)
    assert [w.id for w in s.workers] == [1, 2, 3, 4]
    assert [w.cheap for w in s.workers] == [False, False, True, True]
    inst = us.analyse_instance(None, s, min_requests=1)
    bal = inst['balance']
    assert bal['workers_counted'] == 2
    assert bal['fair_share'] == 0.5
    assert bal['excluded_workers'] == [{'id': 3, 'reason': 'cheap'}, {'id': 4, 'reason': 'cheap'}]
    assert inst['totals']['cheap_workers'] == 2
    assert [r['share'] for r in inst['workers']][2:] == [None, None]
    assert 'excluded: cheap' in us.render_table(dict(inst))


def test_not_accepting_worker_excluded(fixture_doc):
    doc = with_requests(fixture_doc('basic'), [10, 10, 10, 0])
    doc['workers'][3]['accepting'] = 0
    inst = us.analyse_instance(None, snap(doc), min_requests=1)
    assert inst['balance']['workers_counted'] == 3
    assert inst['balance']['excluded_workers'] == [{'id': 4, 'reason': 'not_accepting'}]
    assert inst['balance']['verdict'] == 'balanced'


def test_single_snapshot_uses_counters_since_spawn(fixture_doc):
    doc = fixture_doc('basic')
    inst = us.analyse_instance(None, snap(doc), min_requests=10)
    assert inst['basis'] == 'since_spawn'
    assert inst['window_seconds'] == 0
    counts = [w['apps'][0]['requests'] for w in doc['workers']]
    assert [r['requests'] for r in inst['workers']] == counts
    total = float(sum(counts))
    assert inst['balance']['top_share'] == pytest.approx(max(counts) / total, abs=1e-4)
    assert inst['totals']['rps'] is None


def test_window_deltas_not_totals(fixture_doc):
    before = with_requests(fixture_doc('basic'), [1000, 10, 10, 10])
    after = with_requests(fixture_doc('basic'), [1025, 35, 35, 35])
    inst = us.analyse_instance(snap(before, 100.0), snap(after, 105.0), min_requests=50)
    assert [r['requests'] for r in inst['workers']] == [25, 25, 25, 25]
    assert inst['balance']['verdict'] == 'balanced'
    assert inst['balance']['ratio'] == 1.0
    assert inst['balance']['gini'] == 0.0
    assert inst['totals']['rps'] == 20.0
    assert inst['basis'] == 'window'


def test_respawn_inside_window_counted_from_new_spawn(fixture_doc):
    before = fixture_doc('respawn_before')
    after = fixture_doc('respawn_after')
    inst = us.analyse_instance(snap(before, 0.0), snap(after, 3.0), min_requests=1)
    rows = dict((r['id'], r) for r in inst['workers'])
    w2_after = after['workers'][1]
    assert w2_after['pid'] != before['workers'][1]['pid']
    assert rows[2]['respawned_in_window'] is True
    # uWSGI keeps the slot's counter across the respawn but resets the app
    # counter: the window count is the new process's own requests.
    assert rows[2]['requests'] == w2_after['apps'][0]['requests']
    assert rows[2]['requests_total'] == w2_after['requests']
    for wid in (1, 3, 4):
        assert rows[wid]['respawned_in_window'] is False
        assert rows[wid]['requests'] == after['workers'][wid - 1]['requests'] - before['workers'][wid - 1]['requests']
    assert 'respawned in window' in us.render_table(inst)


def test_counter_going_backwards_is_a_reload(fixture_doc):
    before = with_requests(fixture_doc('basic'), [100, 100, 100, 100])
    after = with_requests(fixture_doc('basic'), [5, 5, 5, 5])
    rows = us.worker_rows(snap(before), snap(after))
    assert [r['requests'] for r in rows] == [5, 5, 5, 5]
    assert all(r['respawned_in_window'] for r in rows)


@pytest.mark.parametrize('counts, min_requests, max_ratio, verdict, ratio', [
    ([100, 100, 100, 100], 100, None, 'balanced', 1.0),
    ([250, 50, 50, 50], 100, None, 'imbalanced', 2.5),
    ([250, 50, 50, 50], 100, 3.0, 'balanced', 2.5),
    ([130, 90, 90, 90], 100, 1.2, 'imbalanced', 1.3),
    ([30, 0, 0, 0], 100, 1.2, 'insufficient_traffic', 4.0),
    ([0, 0, 0, 0], 1, None, 'insufficient_traffic', None),
])
def test_verdicts(fixture_doc, counts, min_requests, max_ratio, verdict, ratio):
    before = with_requests(fixture_doc('basic'), [0, 0, 0, 0])
    after = with_requests(fixture_doc('basic'), counts)
    inst = us.analyse_instance(snap(before, 0), snap(after, 10), min_requests, max_ratio)
    assert inst['balance']['verdict'] == verdict
    assert inst['balance']['ratio'] == (None if ratio is None else pytest.approx(ratio))


def test_idle_workers_listed(fixture_doc):
    before = with_requests(fixture_doc('basic'), [0, 0, 0, 0])
    after = with_requests(fixture_doc('basic'), [300, 0, 100, 0])
    bal = us.analyse_instance(snap(before, 0), snap(after, 1), 100)['balance']
    assert bal['idle_workers'] == [2, 4]
    assert bal['top_worker'] == 1
    assert bal['top_share'] == 0.75
    assert bal['fair_share'] == 0.25
    assert bal['ratio'] == 3.0


def test_old_format_analysis(fixture_doc):
    before = with_requests(fixture_doc('old_format'), [0, 0, 0, 0])
    after = with_requests(fixture_doc('old_format'), [50, 50, 50, 50])
    inst = us.analyse_instance(snap(before, 0), snap(after, 1), 100)
    assert inst['listen_queue'] is None or isinstance(inst['listen_queue'], int)
    assert inst['balance']['verdict'] == 'balanced'
    assert all(r['accepting'] for r in inst['workers'])
    assert 'uwsgi-1.9.21' in us.render_table(inst)


def test_listen_queue_falls_back_to_socket_queue(fixture_doc):
    doc = fixture_doc('old_format')
    doc['sockets'] = [{'name': 'a', 'queue': 3}, {'name': 'b', 'queue': 4}]
    assert us.analyse_instance(None, snap(doc), 1)['listen_queue'] == 7
    doc['sockets'] = [{'name': 'a'}]
    assert us.analyse_instance(None, snap(doc), 1)['listen_queue'] is None


def test_table_lists_every_worker(fixture_doc):
    before = with_requests(fixture_doc('basic'), [0, 0, 0, 0])
    after = with_requests(fixture_doc('basic'), [40, 30, 20, 10])
    inst = us.analyse_instance(snap(before, 0), snap(after, 2), 10)
    table = us.render_table(inst).splitlines()
    assert table[0].startswith('uwsgi-2.0.31 - /run/uwsgi/web1/stats.sock')
    assert 'req 100' in table[0] and 'RPS 50.0' in table[0]
    assert table[1].split()[:4] == ['WID', '%', 'PID', 'REQ']
    assert [line.split()[0] for line in table[2:6]] == ['1', '2', '3', '4']
    assert table[2].split()[1] == '40.0'
    assert table[-1].startswith('balance: top 40.0% fair 25.0% ratio 1.60')
    assert table[-1].endswith('-> imbalanced')


def test_collect_several_instances(stats_server, fixture_doc):
    docs = {'a': [with_requests(fixture_doc('basic'), [0, 0, 0, 0]),
                  with_requests(fixture_doc('basic'), [100, 100, 100, 100])],
            'b': [with_requests(fixture_doc('basic'), [0, 0, 0, 0]),
                  with_requests(fixture_doc('basic'), [400, 0, 0, 0])]}

    def replier(name):
        seq = docs[name]
        return lambda: seq.pop(0) if len(seq) > 1 else seq[0]

    a = stats_server('unix', replier('a'))
    b = stats_server('tcp', replier('b'))
    slept = []
    res = us.collect([a.address, b.address], sample_seconds=2, min_requests=100, max_share_ratio=2,
                     sleep=slept.append)
    assert slept == [2]
    assert [i['balance']['verdict'] for i in res['instances']] == ['balanced', 'imbalanced']
    assert res['totals']['requests'] == 800
    assert res['totals']['workers'] == 8
    assert res['balance']['workers_counted'] == 8
    assert res['balance']['top_worker'] == '%s#1' % b.address
    assert res['balance']['top_share'] == 0.5
    assert res['balance']['ratio'] == 4.0
    assert res['balance']['verdict'] == 'imbalanced'
    assert res['listen_queue'] == 0
    assert len(res['workers']) == 8
    assert res['workers'][4]['socket'] == b.address
    assert 'all instances:' in res['table']


def test_collect_single_snapshot_reads_once(stats_server, fixture_doc):
    server = stats_server('unix', fixture_doc('basic'))
    res = us.collect([server.address], sample_seconds=0, min_requests=1, sleep=lambda s: pytest.fail('slept'))
    assert server.connections == 1
    assert res['sample_seconds'] == 0
    assert res['instances'][0]['basis'] == 'since_spawn'
    assert 'all instances' not in res['table']


def test_workers_without_app_are_reported(fixture_doc):
    """Captured from workers whose import failed (no need-app): they accept but have no app."""
    s = snap(fixture_doc('no_app'))
    assert [w.apps for w in s.workers] == [0, 0]
    assert all(w.accepting for w in s.workers)
    rows = us.analyse_instance(None, s, 1)['workers']
    assert [r['apps'] for r in rows] == [0, 0]

# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the balance figures (benchmarks/lib/metrics.py)."""

import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))

import metrics  # noqa: E402


@pytest.mark.parametrize("counts, expected", [
    ([5, 5, 5, 5], 0.0),
    ([0, 0, 0, 8], 0.75),          # one of four did everything: (n-1)/n
    ([1, 2, 3, 4], 0.25),          # mean absolute difference 1.25 / (2 x mean 2.5)
    ([0, 0, 0, 0, 0, 0, 0, 16], 0.875),
    ([3, 1], 0.25),
])
def test_gini_known_values(counts, expected):
    assert metrics.gini(counts) == pytest.approx(expected)


def test_gini_ignores_order_and_scale():
    assert metrics.gini([4, 1, 3, 2]) == pytest.approx(metrics.gini([10, 20, 30, 40]))


@pytest.mark.parametrize("counts", [[], [7], [0, 0, 0]])
def test_gini_degenerate_is_zero(counts):
    assert metrics.gini(counts) == 0.0


def test_shares_sum_to_one():
    s = metrics.shares([30, 10, 0, 60])
    assert s == pytest.approx([0.3, 0.1, 0.0, 0.6])
    assert sum(s) == pytest.approx(1.0)


def test_shares_without_requests_are_zero():
    assert metrics.shares([0, 0]) == [0.0, 0.0]


@pytest.mark.parametrize("counts, ratio", [
    ([10, 10, 10, 10], 1.0),
    ([40, 0, 0, 0], 4.0),           # one worker of four: 4 times its fair share
    ([60, 20, 10, 10], 2.4),        # 0.6 / 0.25
    ([19, 13, 12, 12, 11, 11, 11, 11], 1.52),   # 0.19 / 0.125
])
def test_busiest_ratio(counts, ratio):
    assert metrics.busiest_ratio(counts) == pytest.approx(ratio)


def test_busiest_ratio_without_requests_is_none():
    assert metrics.busiest_ratio([0, 0, 0]) is None
    assert metrics.busiest_ratio([]) is None


def test_idle_workers():
    assert metrics.idle_workers([0, 3, 0, 1]) == 2
    assert metrics.idle_workers([1, 1]) == 0


def test_run_figures():
    summary = {"rps": 101.5, "requests": 2030, "p50_ms": 12.0, "p99_ms": 40.5, "errors": 1,
               "non_2xx": 1, "connection_errors": 0, "timeouts": 0}
    f = metrics.run_figures([1500, 500, 0, 0], summary, window_seconds=20.0)
    assert f["workers"] == 4
    assert f["requests_served"] == 2000
    assert f["worker_shares"] == [0.75, 0.25, 0.0, 0.0]
    assert f["fair_share"] == 0.25
    assert f["busiest_share"] == 0.75
    assert f["busiest_ratio"] == 3.0
    assert f["gini"] == pytest.approx(0.625)
    assert f["idle_workers"] == 2
    assert f["served_rps"] == 100.0
    assert (f["throughput_rps"], f["p50_ms"], f["p99_ms"], f["errors"]) == (101.5, 12.0, 40.5, 1)

# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Balance figures of one load run: pure functions over per-worker request counts.

The Gini coefficient is the collection's own (plugins/module_utils/uwsgi_stats.py,
what the uwsgi_stats module reports), loaded by path so that the benchmark and
the module can never disagree on it.
"""

import importlib.util
import os

_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SPEC = importlib.util.spec_from_file_location(
    "webstack_uwsgi_stats", os.path.join(_ROOT, "plugins", "module_utils", "uwsgi_stats.py"))
_UWSGI_STATS = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(_UWSGI_STATS)


def shares(counts):
    """Each worker's fraction of the requests (all 0.0 when nothing was served)."""
    total = sum(counts)
    if total <= 0:
        return [0.0 for _ in counts]
    return [c / total for c in counts]


def fair_share(counts):
    """What each worker would get if the load were even: 1 / number of workers."""
    return 1.0 / len(counts) if counts else None


def busiest_ratio(counts):
    """Busiest worker's share divided by the fair share: 1.0 is even, n is one worker doing all.

    None when no request was served (nothing to judge).
    """
    if not counts or sum(counts) <= 0:
        return None
    return max(shares(counts)) / fair_share(counts)


def gini(counts):
    """Gini coefficient of the counts: 0 even, (n-1)/n when one worker serves everything."""
    return _UWSGI_STATS.gini(counts)


def idle_workers(counts):
    """How many workers served no request in the window."""
    return sum(1 for c in counts if c == 0)


def _round(value, digits):
    return None if value is None else round(value, digits)


def run_figures(counts, load_summary, window_seconds=None):
    """Every figure of one (configuration, concurrency) run.

    counts: requests per worker in the stats window (every worker of every
    instance, the order the stats list them); load_summary: the `summary` of
    tests/load/loadgen.py's JSON; window_seconds: length of the stats window.
    """
    served = sum(counts)
    return {
        "workers": len(counts),
        "requests_served": served,
        "worker_requests": list(counts),
        "worker_shares": [round(s, 4) for s in shares(counts)],
        "fair_share": _round(fair_share(counts), 4),
        "busiest_share": _round(max(shares(counts)) if counts else None, 4),
        "busiest_ratio": _round(busiest_ratio(counts), 3),
        "gini": _round(gini(counts), 3),
        "idle_workers": idle_workers(counts),
        "throughput_rps": load_summary.get("rps"),
        "served_rps": _round(served / window_seconds, 1) if window_seconds else None,
        "requests_sent": load_summary.get("requests"),
        "p50_ms": load_summary.get("p50_ms"),
        "p99_ms": load_summary.get("p99_ms"),
        "errors": load_summary.get("errors"),
        "non_2xx": load_summary.get("non_2xx"),
        "connection_errors": load_summary.get("connection_errors"),
        "timeouts": load_summary.get("timeouts"),
    }

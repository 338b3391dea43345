# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""benchmarks/deploy/analyze.py: windows, figures and timeline on a synthetic record."""

import importlib.util
import json
import os

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
_SPEC = importlib.util.spec_from_file_location("deploy_analyze", os.path.join(HERE, "..", "deploy", "analyze.py"))
analyze = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(analyze)

T0 = 1000.0


def rec(t, outcome="ok", latency=10.0, status=200, error=None):
    return {"t": t, "kind": "http", "path": "/cpu?ms=2", "outcome": outcome, "status": status,
            "latency_ms": latency, "error": error}


def scenario():
    records = [rec(T0 + i * 0.1) for i in range(100)]                      # steady: 10 s, 10 ms
    records += [rec(T0 + 10 + i * 0.1, latency=100.0) for i in range(20)]  # deploy: 2 s, slow
    records += [rec(T0 + 10.5, "conn_error", None, None, "ConnectionRefusedError: refused")]
    records += [rec(T0 + 11.0, "http_error", 5.0, 502)]
    del records[-1]["error"]  # loadgen leaves it out of some records
    records += [rec(T0 + 12 + i * 0.1) for i in range(50)]                 # steady after
    marks = [("steady-before-x", T0), ("x", T0 + 10), ("steady-after-x", T0 + 12)]
    return records, marks, [("x", T0 + 10, T0 + 12)]


def test_figures_compare_the_deploy_window_with_the_steady_one_before():
    records, marks, deploys = scenario()
    (row,) = analyze.figures(records, marks, deploys)
    assert row["steady_window"] == "steady-before-x"
    assert row["requests"] == 22 and row["errors"] == 2
    assert row["connection_errors"] == 1 and row["non_2xx"] == 1 and row["timeouts"] == 0
    assert row["steady_requests"] == 100 and row["steady_errors"] == 0
    assert row["p99_ms"] == 100.0 and row["steady_p99_ms"] == 10.0 and row["p99_ratio"] == 10.0
    assert row["duration_s"] == 2.0
    assert "ConnectionRefusedError: refused" in row["error_samples"] and "502" in row["error_samples"]


def test_timeline_bins_by_second():
    records, _m, _d = scenario()
    line = analyze.timeline(records, T0, T0 + 17)
    assert len(line["ok"]) == 18
    assert line["ok"][0] == 10 and line["errors"][10] == 1 and line["errors"][11] == 1
    assert line["p99_ms"][10] == 100.0 and line["p99_ms"][0] == 10.0
    assert sum(line["ok"]) + sum(line["errors"]) == len(records)


def test_main_writes_json_markdown_and_png(tmp_path):
    records, marks, _d = scenario()
    load = {"config": {"rate": 10}, "started": T0, "stopped": T0 + 17, "marks": [list(m) for m in marks],
            "summary": {"requests": len(records), "errors": 2, "rps": 10.0, "p50_ms": 10.0, "p99_ms": 100.0},
            "requests": records}
    (tmp_path / "load.json").write_text(json.dumps(load))
    (tmp_path / "deploys").write_text("x %s %s\n" % (T0 + 10, T0 + 12))
    analyze.main(["--load", str(tmp_path / "load.json"), "--deploys", str(tmp_path / "deploys"),
                  "--out", str(tmp_path / "deploy")])
    doc = json.loads((tmp_path / "deploy.json").read_text())
    assert doc["deploys"][0]["errors"] == 2
    assert (tmp_path / "deploy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "| x | 2.0 | 22 | 1 | 1 | 0 |" in (tmp_path / "deploy.md").read_text()


def test_rollout_log_lines(tmp_path):
    log = tmp_path / "rollout.log"
    log.write_text('ok: [h1] => {\n    "msg": "h1 web1: 4 workers replaced in 2.5 s (pids 1 -> 2), all accepting"\n}\n'
                   'ok: [h1] => {\n    "msg": "h1: release a -> b in 31.2 s; web1 4 workers in 2.5 s"\n}\n')
    assert analyze.rollout_lines(str(log)) == ["h1 web1: 4 workers replaced in 2.5 s (pids 1 -> 2), all accepting"]
    assert analyze.host_switch_seconds(str(log)) == {"h1": 31.2}
    assert analyze.host_switch_seconds(str(tmp_path / "missing")) == {}


@pytest.mark.parametrize("prefix", ["", "webstack.django_uwsgi.rollout : "])
def test_switch_start_from_profile_tasks_stamps(tmp_path, prefix):
    log = tmp_path / "rollout.log"
    log.write_text(f"TASK [{prefix}Stage the release] ****\n"
                   "Sunday 22 November 2026  15:00:01 +0000 (0:00:01.000)       0:00:05.000 ****\n"
                   f"TASK [{prefix}Point current at release v2] ****\n"
                   "Sunday 22 November 2026  15:01:40 +0100 (0:00:02.000)       0:01:44.000 ****\n")
    assert analyze.switch_start(str(log)) == 1795356100  # 15:01:40 +0100 = 14:01:40 UTC
    assert analyze.switch_start(str(tmp_path / "none")) is None


def test_until_whole_ends_with_the_last_failed_request():
    records, _m, _d = scenario()
    # the 502 at +11.0 took 5 ms: whole 1.0 s after the window's start at +10
    assert analyze.until_whole(records, T0 + 10, T0 + 12) == 1.0
    assert analyze.until_whole(records, T0, T0 + 10) == 0.0


def test_data_tier_restart_rows_say_whether_an_app_process_restarted(tmp_path):
    records, marks, _d = scenario()
    load = {"config": {"rate": 10}, "started": T0, "stopped": T0 + 17, "marks": [list(m) for m in marks],
            "summary": {"requests": len(records), "errors": 2, "rps": 10.0, "p50_ms": 10.0, "p99_ms": 100.0},
            "requests": records}
    (tmp_path / "load.json").write_text(json.dumps(load))
    (tmp_path / "deploys").write_text("postgresql-restart %s %s app_restarted=0\n" % (T0 + 10, T0 + 12))
    analyze.main(["--load", str(tmp_path / "load.json"), "--deploys", str(tmp_path / "deploys"),
                  "--note", "2 other containers running", "--out", str(tmp_path / "deploy")])
    doc = json.loads((tmp_path / "deploy.json").read_text())
    (row,) = doc["deploys"]
    assert row["app_restarted"] is False and row["until_whole_s"] == 1.0 and row["errors"] == 2
    assert doc["machine"]["note"] == "2 other containers running"
    table = (tmp_path / "deploy.md").read_text()
    assert "| PostgreSQL restart on the data host | 2.0 | 22 | 1 | 1 | 0 |" in table
    assert table.splitlines()[2].endswith("| 1.0 | no |") and "2 other containers running" in table

# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""benchmarks/soak/analyze.py: counts, respawn causes, checks and output on a synthetic soak."""

import importlib.util
import json
import os

HERE = os.path.dirname(os.path.abspath(__file__))
_SPEC = importlib.util.spec_from_file_location("soak_analyze", os.path.join(HERE, "..", "soak", "analyze.py"))
analyze = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(analyze)

MB = 1024 * 1024
T0 = 1000.0
SETTINGS = {"duration": 60, "rate": 10, "concurrency": 2, "slow_percent": 1, "slow_path": "/slow",
            "slow_path_full": "/slow?ms=8000", "normal_path": "/cpu?ms=5",
            "hold_path": "/hold?kb=768", "hold_percent": 10, "harakiri": 6, "max_requests": 3,
            "reload_on_rss": 50, "min_worker_lifetime": 0, "processes": 2, "threads": 1, "sample_interval": 5,
            "nice": 10, "distro": "bookworm"}


def rec(t, path="/cpu?ms=5", outcome="ok", status=200, latency=6.0):
    return {"t": t, "kind": "http", "path": path, "outcome": outcome, "status": status, "latency_ms": latency}


def req_line(pid, rss_mb, path="/cpu?ms=5"):
    rss = int(rss_mb * MB)
    return ("{address space usage: 190832640 bytes/181MB} {rss usage: %d bytes/%dMB} [pid: %d|app: 0|req: 1/1] "
            "127.0.0.1 () {46 vars in 812 bytes} [Mon Dec  7 05:40:01 2026] GET %s => generated 150 bytes in "
            "7 msecs (HTTP/1.1 200) 5 headers in 159 bytes (1 switches on core 0)" % (rss, rss // MB, pid, path))


def log_lines():
    """Workers 1 (pid 101) and 2 (pid 102); the soak starts at OFFSET.

    pid 101 serves 3 requests (max-requests 3), pid 102 is harakiri'd on a slow
    request, pid 201 (worker 1's next) reaches 51 MB (reload-on-rss 50) with a
    /hold request that adds 2 MB, the largest growth of one request.
    """
    before = [
        "spawned uWSGI master process (pid: 100)",
        "spawned uWSGI worker 1 (pid: 101, cores: 1)",
        "spawned uWSGI worker 2 (pid: 102, cores: 1)",
        req_line(101, 40),                      # before the soak: counts toward pid 101's requests
    ]
    during = [
        req_line(101, 41),
        req_line(102, 40),
        req_line(101, 42),                      # pid 101's third request: max-requests
        "...The work of process 101 is done. Seeya!",
        "worker 1 killed successfully (pid: 101)",
        "Respawned uWSGI worker 1 (new pid: 201)",
        "Mon Dec  7 05:40:01 2026 - *** HARAKIRI ON WORKER 2 (pid: 102, try: 1, graceful: no) ***",
        "Mon Dec  7 05:40:01 2026 - HARAKIRI !!! worker 2 status !!!",
        "Mon Dec  7 05:40:01 2026 - HARAKIRI [core 0] 127.0.0.1 - GET /slow?ms=8000 since 1765085995",
        "Mon Dec  7 05:40:01 2026 - HARAKIRI !!! end of worker 2 status !!!",
        "Mon Dec  7 05:40:02 2026 - *** HARAKIRI ON WORKER 2 (pid: 102, try: 2, graceful: no) ***",
        "DAMN ! worker 2 (pid: 102) died, killed by signal 9 :( trying respawn ...",
        "Respawned uWSGI worker 2 (new pid: 202)",
        req_line(201, 49),
        req_line(201, 51, "/hold?kb=768"),      # over reload-on-rss: the worker leaves after it
        "...The work of process 201 is done. Seeya!",
        "Respawned uWSGI worker 1 (new pid: 301)",
        req_line(202, 39),
    ]
    return before + during, len(before)


def analyze_line(lines, pid, rss_mb):
    """The first request line of `pid` with that RSS."""
    return next(line for line in lines if "[pid: %d|" % pid in line and "{rss usage: %d bytes" % int(rss_mb * MB) in line)


def records():
    out = [rec(T0 + i * 0.5) for i in range(100)]
    out.append(rec(T0 + 10, "/slow?ms=8000", "http_error", 502, 6500.0))
    return out


def samples():
    def worker(wid, pid, rss_mb, harakiri=0, respawns=0):
        return {"id": wid, "pid": pid, "status": "idle", "requests": 1, "rss": int(rss_mb * MB),
                "harakiri_count": harakiri, "respawn_count": respawns}
    sock = "/run/uwsgi/web1/stats.sock"
    return [
        {"t": T0, "instances": [{"socket": sock, "master_pid": 100, "master_rss": 20 * MB,
                                 "workers": [worker(1, 101, 40, 0, 1), worker(2, 102, 40, 0, 1)]}]},
        {"t": T0 + 5, "instances": [{"socket": sock, "error": "timed out"}]},
        {"t": T0 + 10, "instances": [{"socket": sock, "master_pid": 100, "master_rss": 20 * MB,
                                      "workers": [worker(1, 201, 45, 0, 2), worker(2, 202, 39, 1, 2)]}]},
        {"t": T0 + 15, "instances": [{"socket": sock, "master_pid": 100, "master_rss": 21 * MB,
                                      "workers": [worker(1, 301, 41, 0, 3), worker(2, 202, 39, 1, 2)]}]},
    ]


def test_slow_and_normal_requests_are_counted_apart():
    recs = records() + [rec(T0 + 20, outcome="conn_error", status=None), rec(T0 + 21, "/hold?kb=768")]
    fig = analyze.request_figures(recs, "/slow")
    # Every request that is not a slow one is a normal one (/hold included).
    assert (fig["requests"], fig["slow"], fig["normal"]) == (103, 1, 102)
    assert fig["slow_failed"] == 1 and fig["slow_ok"] == 0
    assert fig["slow_status"] == {"502": 1}
    # A normal request's failure is reported as such, never folded into the slow ones.
    assert fig["normal_failed"] == 1 and fig["normal_outcomes"] == {"conn_error": 1, "ok": 101}
    assert fig["normal_p99_ms"] == 6.0


def test_log_gives_harakiri_events_and_respawn_causes():
    lines, offset = log_lines()
    log = analyze.parse_log(lines, offset, max_requests=3, reload_on_rss_mb=50)
    # Two HARAKIRI lines (try 1 and 2) for one process: one event.
    assert log["harakiri_events"] == 1
    assert log["harakiri_requests"] == [{"method": "GET", "path": "/slow?ms=8000", "since": 1765085995}]
    assert log["respawns"] == 3
    assert log["respawns_by_cause"] == {"max-requests": 1, "reload-on-rss": 1, "harakiri": 1, "died": 0, "other": 0}
    causes = [(r["old_pid"], r["cause"]) for r in log["respawn_list"]]
    assert causes == [(101, "max-requests"), (102, "harakiri"), (201, "reload-on-rss")]
    assert log["max_worker_rss"] == 51 * MB and log["max_worker_rss_pid"] == 201
    assert log["max_request_growth"] == {"bytes": 2 * MB, "pid": 201, "path": "/hold?kb=768"}
    assert log["requests_past_limit"] == 0 and log["max_served"] == 3
    # Lines before the offset count toward a pid's requests, not as soak requests.
    assert log["requests_logged"] == 6


def test_a_graceful_exit_below_both_limits_is_not_given_a_cause():
    lines = ["spawned uWSGI worker 1 (pid: 101, cores: 1)", req_line(101, 40),
             "...The work of process 101 is done. Seeya!", "Respawned uWSGI worker 1 (new pid: 201)"]
    log = analyze.parse_log(lines, 0, max_requests=3, reload_on_rss_mb=50)
    assert log["respawns_by_cause"]["other"] == 1


def test_stats_counters_survive_resets_and_read_errors():
    st = analyze.stats_figures(samples())
    assert st["samples"] == 4 and st["read_errors"] == 1
    (inst,) = st["instances"]
    assert inst["harakiri"] == 1 and inst["respawns"] == 3 and inst["pid_changes"] == 3
    assert inst["max_worker_rss"] == 45 * MB
    assert inst["max_instance_rss"] == (20 + 45 + 39) * MB   # the second good sample
    assert analyze.counter_increase([2, 3, 1, 4]) == 1 + 1 + 3


def test_checks_pass_on_the_synthetic_soak_and_fail_on_each_breach():
    lines, offset = log_lines()
    req = analyze.request_figures(records(), "/slow")
    log = analyze.parse_log(lines, offset, 3, 50)
    st = analyze.stats_figures(samples())
    assert all(c["ok"] for c in analyze.checks(req, log, st, SETTINGS))
    # The RSS bound is reload-on-rss + the largest growth of one request:
    # 50 + 2 MB; a worker the stats server saw at 52.5 MB is past it.
    assert analyze.rss_bound(log, SETTINGS) == 52 * MB
    big = samples()
    big[-1]["instances"][0]["workers"][1]["rss"] = int(52.5 * MB)
    failed = [c["check"] for c in analyze.checks(req, log, analyze.stats_figures(big), SETTINGS) if not c["ok"]]
    assert failed == ["largest worker RSS, log and stats server (MB)"]
    # A worker that serves on after reaching reload-on-rss (what uWSGI does
    # within min-worker-lifetime) fails the recycling check.
    crossed = lines.index(analyze_line(lines, 201, 51)) + 1
    late = lines[:crossed] + [req_line(201, 51)] + lines[crossed:]
    failed = [c["check"] for c in analyze.checks(req, analyze.parse_log(late, offset, 3, 50), st, SETTINGS)
              if not c["ok"]]
    assert failed == ["requests a worker served after one that reached reload-on-rss or max-requests (log)"]
    # So does one that serves past max-requests, which also shows in the most requests served.
    served = lines.index(analyze_line(lines, 101, 42)) + 1
    late = lines[:served] + [req_line(101, 42)] + lines[served:]
    failed = [c["check"] for c in analyze.checks(req, analyze.parse_log(late, offset, 3, 50), st, SETTINGS)
              if not c["ok"]]
    assert failed == ["requests a worker served after one that reached reload-on-rss or max-requests (log)",
                      "most requests served by one worker (log)"]
    # A normal request failing breaks the first check.
    req2 = analyze.request_figures(records() + [rec(T0 + 30, outcome="http_error", status=502)], "/slow")
    failed = [c["check"] for c in analyze.checks(req2, log, st, SETTINGS) if not c["ok"]]
    assert failed == ["normal requests that failed"]
    # A harakiri on a normal request is a failure of its own.
    log2 = analyze.parse_log(lines + ["HARAKIRI [core 0] 127.0.0.1 - GET /cpu?ms=5 since 1"], offset, 3, 50)
    failed = [c["check"] for c in analyze.checks(req, log2, st, SETTINGS) if not c["ok"]]
    assert failed == ["harakiri'd requests that were not slow ones (log)"]


def test_main_writes_json_markdown_and_chart(tmp_path):
    lines, offset = log_lines()
    head = "\n".join(lines[:offset]) + "\n"
    (tmp_path / "web1.log").write_text(head + "\n".join(lines[offset:]) + "\n")
    (tmp_path / "load.json").write_text(json.dumps({"started": T0, "stopped": T0 + 60, "requests": records()}))
    (tmp_path / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples()))
    (tmp_path / "settings.json").write_text(json.dumps(SETTINGS))
    out = tmp_path / "res" / "soak"
    status = analyze.main(["--load", str(tmp_path / "load.json"), "--samples", str(tmp_path / "samples.jsonl"),
                           "--log", str(tmp_path / "web1.log"), "--log-offset", str(len(head.encode())),
                           "--settings", str(tmp_path / "settings.json"), "--out", str(out)])
    assert status == 0
    doc = json.loads((tmp_path / "res" / "soak.json").read_text())
    assert doc["log"]["respawns_by_cause"]["max-requests"] == 1
    assert doc["timeline"][0]["slow_failed"] == 1 and doc["timeline"][0]["normal_ok"] == 100
    assert doc["timeline"][0]["respawns"] == 3
    md = (tmp_path / "res" / "soak.md").read_text()
    assert "| normal requests failed | 0 |" in md and "FAILED" not in md
    assert "10 % `/hold?kb=768`" in md
    assert (tmp_path / "res" / "soak.png").stat().st_size > 10000


def test_instance_rss_uses_proc_and_skips_a_sample_with_a_worker_of_unknown_rss():
    inst = {"master_rss": 10 * MB, "workers": [{"id": 1, "rss": 40 * MB, "proc_rss": 41 * MB},
                                               {"id": 2, "rss": 0, "proc_rss": 30 * MB}]}
    # /proc first (a worker just respawned reads rss 0 from uWSGI until its first request).
    assert analyze.instance_rss(inst) == (10 + 41 + 30) * MB
    inst["workers"][1]["proc_rss"] = None
    assert analyze.instance_rss(inst) is None
    sample = {"t": T0, "instances": [dict(inst, socket="s")]}
    assert analyze.rss_series([sample])["s"]["total"] == []

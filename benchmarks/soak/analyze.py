#!/usr/bin/env python3
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Figures, checks and chart of benchmarks/soak.sh.

    analyze.py --load load.json --samples samples.jsonl --log web1.log [--log-offset BYTES]
               --settings settings.json [--note TEXT] --out PREFIX

Inputs: the load generator's record (every request with its path, outcome
and latency; a request is slow when its path starts with the settings'
`slow_path`), the stats samples written by lib/stats_probe.py `sample`
(per worker: pid, rss, requests since spawn, harakiri_count, respawn_count;
per instance: the master's RSS), and the instance's uWSGI log (memory-report
request lines, HARAKIRI lines, respawns). Log lines before --log-offset (the
log's size when the soak started) only count toward the requests each pid
served; every event is taken from the lines after it.

Writes PREFIX.json (figures, checks, settings, the machine), PREFIX.md (the
table) and PREFIX.png (worker and instance RSS over time with the
reload-on-rss line; requests, failures and respawns per minute). The checks:
no normal request failed, every slow request failed, the slow requests'
failures equal the harakiri events of the log and of the stats server, no
harakiri hit a normal request, no worker served a request after one that
reached reload-on-rss or max-requests (the instance runs with
min-worker-lifetime 0, so uWSGI applies both after every request), and the
largest worker RSS stayed below reload-on-rss plus the largest growth of RSS
by one request seen in the log (what the last request of a worker can add
before uWSGI's check after it).
"""

import argparse
import json
import os
import platform
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "load"))
import loadgen  # noqa: E402  pylint: disable=wrong-import-position

MB = 1024 * 1024

# uWSGI 2.0 log lines (memory-report on).
REQUEST_RE = re.compile(r"\{rss usage: (\d+) bytes/\d+MB\} \[pid: (\d+)\|app: -?\d+\|req: \d+/\d+\] .*?"
                        r"\] (\w+) (\S+) => generated")
SPAWNED_RE = re.compile(r"spawned uWSGI worker (\d+) \(pid: (\d+)")
RESPAWNED_RE = re.compile(r"Respawned uWSGI worker (\d+) \(new pid: (\d+)\)")
HARAKIRI_WORKER_RE = re.compile(r"\*\*\* HARAKIRI ON WORKER (\d+) \(pid: (\d+), try: (\d+)")
HARAKIRI_REQUEST_RE = re.compile(r"HARAKIRI \[core \d+\] \S+ - (\w+) (\S+) since (\d+)")
SEEYA_RE = re.compile(r"\.\.\.The work of process (\d+) is done\. Seeya!")
DIED_RE = re.compile(r"DAMN ! worker (\d+) \(pid: (\d+)\) (?:MISTERIOUSLY )?(?:killed by signal|died)")

CAUSES = ("max-requests", "reload-on-rss", "harakiri", "died", "other")


# ---------------------------------------------------------------- requests

def split_requests(records, slow_path):
    """(slow, normal) request records."""
    slow = [r for r in records if r["path"].startswith(slow_path)]
    normal = [r for r in records if not r["path"].startswith(slow_path)]
    return slow, normal


def outcomes(records):
    out = {}
    for r in records:
        out[r["outcome"]] = out.get(r["outcome"], 0) + 1
    return dict(sorted(out.items()))


def request_figures(records, slow_path):
    slow, normal = split_requests(records, slow_path)
    normal_ok = [r["latency_ms"] for r in normal if r["outcome"] == "ok"]
    slow_failed = [r for r in slow if r["outcome"] != "ok"]
    normal_failed = [r for r in normal if r["outcome"] != "ok"]
    return {
        "requests": len(records),
        "slow": len(slow),
        "slow_share_pct": round(100.0 * len(slow) / len(records), 3) if records else None,
        "slow_failed": len(slow_failed),
        "slow_ok": len(slow) - len(slow_failed),
        "slow_outcomes": outcomes(slow),
        "slow_status": outcomes([{"outcome": str(r.get("status"))} for r in slow_failed]),
        "slow_failed_latency_ms": {
            "min": min((r["latency_ms"] for r in slow_failed), default=None),
            "max": max((r["latency_ms"] for r in slow_failed), default=None),
        },
        "normal": len(normal),
        "normal_failed": len(normal_failed),
        "normal_outcomes": outcomes(normal),
        "normal_failures": normal_failed[:20],
        "normal_p50_ms": loadgen.percentile(normal_ok, 50),
        "normal_p99_ms": loadgen.percentile(normal_ok, 99),
        "normal_max_ms": max(normal_ok, default=None),
    }


# ---------------------------------------------------------------- uWSGI log

def parse_log(lines, offset_line, max_requests, reload_on_rss_mb):
    """Events of the uWSGI log after line `offset_line`; per-pid requests over the whole log.

    Respawn causes: harakiri (a HARAKIRI line named the old pid), reload-on-rss
    (the old pid ended by itself, "Seeya", after a request whose RSS reached
    reload_on_rss), max-requests (ended by itself after serving max_requests
    requests), died (a DAMN line without harakiri), other.
    """
    current = {}          # worker id -> pid
    served = {}           # pid -> requests logged
    last_rss = {}         # pid -> rss of its last logged request
    limit = reload_on_rss_mb * MB
    growth = {"bytes": 0, "pid": None, "path": None}   # largest RSS growth of one request
    past_limit = []       # requests a pid served after one that reached a limit (inside)
    harakiri_pids = set()
    harakiri_events = []  # (worker, pid) per harakiri'd process, first try only
    harakiri_requests = []
    seeya = set()
    died = set()
    respawns = []
    max_rss = 0
    max_rss_pid = None
    requests_in_window = 0
    for number, line in enumerate(lines):
        inside = number >= offset_line
        m = REQUEST_RE.search(line)
        if m:
            rss, pid = int(m.group(1)), int(m.group(2))
            if inside and pid in served and (
                    0 < limit <= last_rss[pid] or 0 < max_requests <= served[pid]):
                past_limit.append({"pid": pid, "served_before": served[pid], "rss_before": last_rss[pid],
                                   "path": m.group(4)})
            if inside and pid in last_rss and rss - last_rss[pid] > growth["bytes"]:
                growth = {"bytes": rss - last_rss[pid], "pid": pid, "path": m.group(4)}
            served[pid] = served.get(pid, 0) + 1
            last_rss[pid] = rss
            if inside:
                requests_in_window += 1
                if rss > max_rss:
                    max_rss, max_rss_pid = rss, pid
            continue
        m = SPAWNED_RE.search(line)
        if m and not line.lstrip().startswith("Respawned"):
            current[int(m.group(1))] = int(m.group(2))
            continue
        m = HARAKIRI_WORKER_RE.search(line)
        if m:
            pid = int(m.group(2))
            if inside and pid not in harakiri_pids:
                harakiri_events.append({"worker": int(m.group(1)), "pid": pid})
            harakiri_pids.add(pid)
            continue
        m = HARAKIRI_REQUEST_RE.search(line)
        if m:
            if inside:
                harakiri_requests.append({"method": m.group(1), "path": m.group(2), "since": int(m.group(3))})
            continue
        m = SEEYA_RE.search(line)
        if m:
            seeya.add(int(m.group(1)))
            continue
        m = DIED_RE.search(line)
        if m:
            died.add(int(m.group(2)))
            continue
        m = RESPAWNED_RE.search(line)
        if m:
            worker, new = int(m.group(1)), int(m.group(2))
            old = current.get(worker)
            current[worker] = new
            if not inside:
                continue
            if old in harakiri_pids:
                cause = "harakiri"
            elif old in seeya and last_rss.get(old, 0) >= reload_on_rss_mb * MB > 0:
                cause = "reload-on-rss"
            elif old in seeya and max_requests > 0 and served.get(old, 0) >= max_requests:
                cause = "max-requests"
            elif old in died:
                cause = "died"
            else:
                cause = "other"
            respawns.append({"worker": worker, "old_pid": old, "new_pid": new, "cause": cause,
                             "served": served.get(old), "last_rss": last_rss.get(old)})
    by_cause = {c: sum(1 for r in respawns if r["cause"] == c) for c in CAUSES}
    return {
        "requests_logged": requests_in_window,
        "harakiri_events": len(harakiri_events),
        "harakiri_requests": harakiri_requests,
        "respawns": len(respawns),
        "respawns_by_cause": by_cause,
        "respawn_list": respawns,
        "max_worker_rss": max_rss,
        "max_worker_rss_pid": max_rss_pid,
        "max_request_growth": growth,
        "requests_past_limit": len(past_limit),
        "requests_past_limit_list": past_limit[:20],
        "max_served": max((n for pid, n in served.items() if pid in last_rss), default=0),
    }


# ---------------------------------------------------------------- stats samples

def read_samples(lines):
    out = []
    for line in lines:
        line = line.strip()
        if line:
            out.append(json.loads(line))
    return out


def counter_increase(values):
    """Total increase of a counter over a series, counting from 0 after a reset."""
    total = 0
    for prev, cur in zip(values, values[1:]):
        total += cur - prev if cur >= prev else cur
    return total


def stats_figures(samples):
    """Per instance and worker id: harakiri and respawn increases, pid changes, RSS series and maxima."""
    instances = {}
    errors = 0
    for s in samples:
        for inst in s["instances"]:
            if "error" in inst:
                errors += 1
                continue
            entry = instances.setdefault(inst["socket"], {"workers": {}, "total": [], "master": []})
            for w in inst["workers"]:
                series = entry["workers"].setdefault(w["id"], [])
                series.append((s["t"], w["pid"], w["rss"], w["harakiri_count"], w["respawn_count"],
                               w.get("proc_rss") or 0))
            master = inst.get("master_rss") or 0
            entry["master"].append((s["t"], master))
            total = instance_rss(inst)
            if total is not None:
                entry["total"].append((s["t"], total))
    out = {"samples": len(samples), "read_errors": errors, "instances": []}
    for sock, entry in sorted(instances.items()):
        workers = []
        for wid, series in sorted(entry["workers"].items()):
            pids = [x[1] for x in series]
            workers.append({
                "id": wid,
                "harakiri": counter_increase([x[3] for x in series]),
                "respawns": counter_increase([x[4] for x in series]),
                "pid_changes": sum(1 for a, b in zip(pids, pids[1:]) if a != b),
                "max_rss": max(x[2] for x in series),
                "max_proc_rss": max(x[5] for x in series),
            })
        out["instances"].append({
            "socket": sock,
            "workers": workers,
            "harakiri": sum(w["harakiri"] for w in workers),
            "respawns": sum(w["respawns"] for w in workers),
            "pid_changes": sum(w["pid_changes"] for w in workers),
            "max_worker_rss": max((w["max_rss"] for w in workers), default=0),
            "max_worker_proc_rss": max((w["max_proc_rss"] for w in workers), default=0),
            "max_instance_rss": max((v for _, v in entry["total"]), default=0),
            "instance_samples": len(entry["total"]),
            "max_master_rss": max((v for _, v in entry["master"]), default=0),
        })
    out["harakiri"] = sum(i["harakiri"] for i in out["instances"])
    out["respawns"] = sum(i["respawns"] for i in out["instances"])
    out["max_worker_rss"] = max((i["max_worker_rss"] for i in out["instances"]), default=0)
    out["max_worker_proc_rss"] = max((i["max_worker_proc_rss"] for i in out["instances"]), default=0)
    return out


def instance_rss(inst):
    """Master + workers: each worker's RSS from /proc, else uWSGI's; None when a worker has neither.

    uWSGI reports a worker's rss only once it has served a request: a worker
    just respawned reads 0, so without /proc the sum would dip at each respawn.
    """
    total = inst.get("master_rss") or 0
    for w in inst["workers"]:
        value = w.get("proc_rss") or w["rss"]
        if not value:
            return None
        total += value
    return total


def rss_series(samples):
    """{socket: {"workers": {id: [(t, rss)]}, "total": [(t, rss)]}} for the chart."""
    out = {}
    for s in samples:
        for inst in s["instances"]:
            if "error" in inst:
                continue
            entry = out.setdefault(inst["socket"], {"workers": {}, "total": []})
            for w in inst["workers"]:
                # A worker that has served nothing since its spawn reports rss 0: no point.
                if w["rss"]:
                    entry["workers"].setdefault(w["id"], []).append((s["t"], w["rss"]))
            total = instance_rss(inst)
            if total is not None:
                entry["total"].append((s["t"], total))
    return out


# ---------------------------------------------------------------- verdict

def rss_bound(log, settings):
    """reload-on-rss plus the largest RSS growth of one request in the log (bytes).

    uWSGI reads a worker's RSS after each request and, with
    min-worker-lifetime 0, stops the worker when it has reached reload-on-rss:
    the request that crossed the limit started below it, so no worker's RSS
    can exceed the limit by more than one request's growth. The growth is
    measured in the same run, from the RSS uWSGI logs after every request.
    """
    return settings["reload_on_rss"] * MB + log["max_request_growth"]["bytes"]


def checks(req, log, stats, settings):
    bound = rss_bound(log, settings)
    growth = log["max_request_growth"]
    harakiri_slow = sum(1 for h in log["harakiri_requests"] if h["path"].startswith(settings["slow_path"]))
    harakiri_other = len(log["harakiri_requests"]) - harakiri_slow
    max_rss = max(log["max_worker_rss"], stats["max_worker_rss"])
    rows = [
        ("normal requests that failed", req["normal_failed"], 0, req["normal_failed"] == 0),
        ("slow requests answered 2xx (must be 0: each runs past harakiri)", req["slow_ok"], 0, req["slow_ok"] == 0),
        ("slow requests failed = harakiri events in the uWSGI log", "%d = %d" % (req["slow_failed"], log["harakiri_events"]),
         "equal", req["slow_failed"] == log["harakiri_events"]),
        ("harakiri events: stats server (harakiri_count) = log", "%d = %d" % (stats["harakiri"], log["harakiri_events"]),
         "equal", stats["harakiri"] == log["harakiri_events"]),
        ("harakiri'd requests that were not slow ones (log)", harakiri_other, 0, harakiri_other == 0),
        ("requests a worker served after one that reached reload-on-rss or max-requests (log)",
         log["requests_past_limit"], 0, log["requests_past_limit"] == 0),
        ("most requests served by one worker (log)", log["max_served"],
         "<= max-requests %d" % settings["max_requests"], log["max_served"] <= settings["max_requests"]),
        ("largest worker RSS, log and stats server (MB)", "%.2f" % (max_rss / MB),
         "< %.2f (reload-on-rss %d + largest growth of one request %d KiB, %s)" % (
             bound / MB, settings["reload_on_rss"], growth["bytes"] // 1024, (growth["path"] or "-").split("?")[0]),
         max_rss < bound),
    ]
    return [{"check": c, "value": v, "want": w, "ok": bool(ok)} for c, v, w, ok in rows]


# ---------------------------------------------------------------- output

def timeline(records, slow_path, respawns_by_minute, start, end, step=60):
    """Per `step` seconds: normal ok, normal failed, slow failed."""
    buckets = int((end - start) // step) + 1
    rows = [{"t": i * step, "normal_ok": 0, "normal_failed": 0, "slow_failed": 0} for i in range(buckets)]
    for r in records:
        i = int((r["t"] - start) // step)
        if 0 <= i < buckets:
            slow = r["path"].startswith(slow_path)
            if r["outcome"] == "ok":
                if not slow:
                    rows[i]["normal_ok"] += 1
            else:
                rows[i]["slow_failed" if slow else "normal_failed"] += 1
    for row in rows:
        row["respawns"] = respawns_by_minute.get(row["t"] // step, 0)
    return rows


def chart(series, rows, settings, bound, start, path):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    fig, (ax1, ax2, ax3) = plt.subplots(3, 1, figsize=(11, 10), sharex=True,
                                        gridspec_kw={"height_ratios": [3, 2, 2]})
    limit = settings["reload_on_rss"]
    for sock, entry in sorted(series.items()):
        name = sock.rstrip("/").split("/")[-2] if "/" in sock else sock
        for wid, points in sorted(entry["workers"].items()):
            ax1.plot([(t - start) / 60 for t, _ in points], [v / MB for _, v in points], lw=0.6, alpha=0.45,
                     label="%s workers 1-%d" % (name, len(entry["workers"])) if wid == 1 else None)
        largest = {}
        for points in entry["workers"].values():
            for t, v in points:
                largest[t] = max(largest.get(t, 0), v)
        ax1.plot([(t - start) / 60 for t in sorted(largest)], [largest[t] / MB for t in sorted(largest)],
                 color="black", lw=1.3, label="%s: largest worker" % name)
        ax2.plot([(t - start) / 60 for t, _ in entry["total"]], [v / MB for _, v in entry["total"]], lw=1.2,
                 label="%s: master + workers" % name)
    ax1.axhline(limit, color="red", ls="--", lw=1.2, label="reload-on-rss %d MB" % limit)
    ax1.axhline(bound / MB, color="red", ls=":", lw=1,
                label="bound checked: + one request's largest growth (%d KiB)" % ((bound - limit * MB) // 1024))
    ax1.set_ylabel("worker RSS (MB)")
    ax1.legend(fontsize=7, ncol=2, loc="lower right")
    ax1.set_title("Soak: %d s at %s req/s, %s %% slow (%s, harakiri %d s), max-requests %d, reload-on-rss %d MB"
                  % (settings["duration"], settings["rate"], settings["slow_percent"], settings["slow_path"],
                     settings["harakiri"], settings["max_requests"], limit), fontsize=9)
    ax2.set_ylabel("instance RSS (MB)")
    ax2.legend(fontsize=7)
    minutes = [r["t"] / 60 for r in rows]
    ax3.bar(minutes, [r["normal_ok"] for r in rows], width=0.9, align="edge", color="#9ecae1", label="normal 2xx / min")
    ax3.set_ylabel("requests / min")
    ax3b = ax3.twinx()
    ax3b.step(minutes, [r["slow_failed"] for r in rows], where="post", color="orange", label="slow failed (harakiri)")
    ax3b.step(minutes, [r["normal_failed"] for r in rows], where="post", color="red", label="normal failed")
    ax3b.step(minutes, [r["respawns"] for r in rows], where="post", color="green", label="respawns")
    ax3b.set_ylabel("per minute")
    handles = ax3.get_legend_handles_labels()[0] + ax3b.get_legend_handles_labels()[0]
    labels = ax3.get_legend_handles_labels()[1] + ax3b.get_legend_handles_labels()[1]
    ax3.legend(handles, labels, fontsize=7, loc="lower right")
    ax3.set_xlabel("minutes since the start of the soak")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _mb(value):
    return "-" if value is None else "%.1f" % (value / MB)


def markdown(doc):
    s, r, lg, st = doc["settings"], doc["requests"], doc["log"], doc["stats"]
    lines = [
        "# Soak",
        "",
        "%s s (%.1f min) at %s requests/s through nginx, %s %% of them `%s` (past harakiri %d s)%s, the others "
        "`%s`; one uWSGI instance of %d processes x 1 thread, max-requests %d, reload-on-rss %d MB, "
        "min-worker-lifetime %s s."
        % (s["duration"], s["duration"] / 60.0, s["rate"], s["slow_percent"], s["slow_path_full"], s["harakiri"],
           ", %s %% `%s` (memory kept by the worker)" % (s["hold_percent"], s["hold_path"]) if s.get("hold_path") else "",
           s["normal_path"], s["processes"], s["max_requests"], s["reload_on_rss"], s.get("min_worker_lifetime", "-")),
        "",
        "| | value |",
        "|---|---|",
        "| requests | %d |" % r["requests"],
        "| slow requests (%s %%) | %d |" % (r["slow_share_pct"], r["slow"]),
        "| slow requests failed (harakiri) | %d (%s) |" % (r["slow_failed"], ", ".join(
            "%s: %d" % kv for kv in r["slow_status"].items()) or "-"),
        "| harakiri events: uWSGI log / stats server | %d / %d |" % (lg["harakiri_events"], st["harakiri"]),
        "| normal requests | %d |" % r["normal"],
        "| normal requests failed | %d |" % r["normal_failed"],
        "| normal p50 / p99 / max (ms) | %s / %s / %s |" % (r["normal_p50_ms"], r["normal_p99_ms"], r["normal_max_ms"]),
        "| worker respawns (log) | %d: %s |" % (lg["respawns"], ", ".join(
            "%s %d" % (c, n) for c, n in lg["respawns_by_cause"].items() if n)),
        "| worker respawns (stats server respawn_count / pid changes seen) | %d / %d |" % (
            st["respawns"], sum(i["pid_changes"] for i in st["instances"])),
        "| largest worker RSS: log / stats samples (MB) | %s / %s |" % (_mb(lg["max_worker_rss"]), _mb(st["max_worker_rss"])),
        "| largest worker RSS read from /proc by the sampler, possibly mid-request (MB) | %s |" % _mb(
            st.get("max_worker_proc_rss")),
        "| largest RSS growth of one request (log) | %d KiB (%s) |" % (
            lg["max_request_growth"]["bytes"] // 1024, lg["max_request_growth"]["path"] or "-"),
        "| largest instance RSS, master + workers (MB; samples where every worker's RSS was known) | %s |" % ", ".join(
            "%s (%d)" % (_mb(i["max_instance_rss"]), i["instance_samples"]) for i in st["instances"]),
        "| stats samples (every %s s) / read errors | %d / %d |" % (s["sample_interval"], st["samples"], st["read_errors"]),
        "",
        "| check | value | want | |",
        "|---|---|---|---|",
    ]
    for c in doc["checks"]:
        lines.append("| %s | %s | %s | %s |" % (c["check"], c["value"], c["want"], "ok" if c["ok"] else "FAILED"))
    lines += ["", "Machine: %s." % doc["machine"]]
    if doc.get("note"):
        lines += ["", doc["note"]]
    return "\n".join(lines) + "\n"


def machine_facts():
    load = "?"
    try:
        with open("/proc/loadavg", encoding="ascii") as handle:
            load = " ".join(handle.read().split()[:3])
    except OSError:
        pass
    return "%d cores, %s, Python %s, load average at the end %s, %s" % (
        os.cpu_count() or 0, platform.platform(), platform.python_version(), load,
        time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))


def analyse(load, samples, log_lines, log_offset_line, settings):
    records = load["requests"]
    req = request_figures(records, settings["slow_path"])
    log = parse_log(log_lines, log_offset_line, settings["max_requests"], settings["reload_on_rss"])
    stats = stats_figures(samples)
    return {"settings": settings, "started": load["started"], "stopped": load["stopped"],
            "requests": req, "log": log, "stats": stats, "checks": checks(req, log, stats, settings)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", required=True)
    parser.add_argument("--samples", required=True)
    parser.add_argument("--log", required=True)
    parser.add_argument("--log-offset", type=int, default=0, help="bytes of the log written before the soak")
    parser.add_argument("--settings", required=True)
    parser.add_argument("--note")
    parser.add_argument("--out", required=True, help="PREFIX of PREFIX.json, .md, .png")
    args = parser.parse_args(argv)
    with open(args.load, encoding="utf-8") as handle:
        load = json.load(handle)
    with open(args.samples, encoding="utf-8") as handle:
        samples = read_samples(handle)
    with open(args.log, "rb") as handle:
        raw = handle.read()
    before = raw[:args.log_offset].decode("utf-8", "replace").splitlines()
    log_lines = before + raw[args.log_offset:].decode("utf-8", "replace").splitlines()
    with open(args.settings, encoding="utf-8") as handle:
        settings = json.load(handle)
    doc = analyse(load, samples, log_lines, len(before), settings)
    doc["machine"] = machine_facts()
    doc["note"] = args.note
    start, end = load["started"], load["stopped"]
    respawn_minutes = respawn_times(samples, start)
    rows = timeline(load["requests"], settings["slow_path"], respawn_minutes, start, end)
    doc["timeline"] = rows
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out + ".json", "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=1)
    text = markdown(doc)
    with open(args.out + ".md", "w", encoding="utf-8") as handle:
        handle.write(text)
    chart(rss_series(samples), rows, settings, rss_bound(doc["log"], settings), start, args.out + ".png")
    sys.stdout.write(text)
    return 0 if all(c["ok"] for c in doc["checks"]) else 1


def respawn_times(samples, start, step=60):
    """{minute index: pid changes seen between consecutive samples}."""
    out = {}
    last = {}
    for s in samples:
        for inst in s["instances"]:
            for w in inst.get("workers", []):
                key = (inst["socket"], w["id"])
                if key in last and last[key] != w["pid"]:
                    i = int((s["t"] - start) // step)
                    out[i] = out.get(i, 0) + 1
                last[key] = w["pid"]
    return out


if __name__ == "__main__":
    sys.exit(main())

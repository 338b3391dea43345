#!/usr/bin/env python3
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Figures and chart of benchmarks/deploy.sh from the load generator's record.

    analyze.py --load load.json --deploys deploys [--rollout-log rollout.log] [--note TEXT] --out PREFIX

Writes PREFIX.json, PREFIX.md and PREFIX.png: per deploy way, the requests,
non-2xx, connection errors, timeouts and p50/p99 of its window (from the
deploy's start until every worker is new and accepting, or for a restart of
the data tier until the front serves the database and websockets again)
against the steady window before the first deploy, and the deploy's duration
(rollout.yml also with its switch part alone: the build before it touches no
process); the time until whole (from the start to the end of the last failed
request, 0 without one) and, when the deploys file says so, whether an app
process was restarted. The chart is a per-second timeline of throughput,
errors and p99 with each deploy window shaded.
"""

import argparse
import calendar
import json
import os
import platform
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "tests", "load"))
import loadgen  # noqa: E402  pylint: disable=wrong-import-position

WAYS = {
    "supervisor-restart": "supervisorctl restart (all instances)",
    "sighup": "uWSGI graceful reload (SIGHUP)",
    "rollout": "rollout.yml (chain reload), whole playbook",
    "rollout-switch": "rollout.yml, switch only (flip, chain reloads, gates, daphne)",
    "postgresql-restart": "PostgreSQL restart on the data host",
    "redis-restart": "Redis restart on the data host",
}

_STAMP_RE = re.compile(r"^\w+ (\d+ \w+ \d{4}\s+\d\d:\d\d:\d\d) ([+-]\d{4}) \(")


def read_deploys(path):
    """[(name, start, end)] from the lines 'NAME START END [KEY=VALUE ...]' the script wrote."""
    return [row[:3] for row in read_deploy_lines(path)]


def read_deploy_lines(path):
    """[(name, start, end, {key: value})] from the lines 'NAME START END [KEY=VALUE ...]'."""
    out = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            name, start, end, *extra = line.split()
            out.append((name, float(start), float(end), dict(e.split("=", 1) for e in extra if "=" in e)))
    return out


def until_whole(records, started, ended):
    """Seconds from started to the end of the last failed request that started in the window (0.0 without one)."""
    failed = [r["t"] + (r.get("latency_ms") or 0) / 1000 for r in records
              if started <= r["t"] < ended and r["outcome"] != "ok"]
    return round(max(failed) - started, 1) if failed else 0.0


def ratio(a, b):
    return round(a / b, 2) if a is not None and b else None


def figures(records, marks, deploys):
    """One row per deploy way: its window against the steady window before the first deploy."""
    before, start, end = loadgen.windows_from_marks(marks, float("inf"))[0]
    steady = loadgen.summarize([r for r in records if start <= r["t"] < end])
    rows = []
    for name, started, ended in deploys:
        window = loadgen.summarize([r for r in records if started <= r["t"] < ended])
        rows.append({
            "way": name,
            "label": WAYS.get(name, name),
            "duration_s": round(ended - started, 1),
            "requests": window["requests"],
            "non_2xx": window["non_2xx"],
            "connection_errors": window["connection_errors"],
            "timeouts": window["timeouts"],
            "errors": window["errors"],
            "error_rate": round(window["errors"] / window["requests"], 4) if window["requests"] else None,
            "p50_ms": window["p50_ms"],
            "p99_ms": window["p99_ms"],
            "steady_window": before,
            "steady_requests": steady["requests"],
            "steady_errors": steady["errors"],
            "steady_p50_ms": steady["p50_ms"],
            "steady_p99_ms": steady["p99_ms"],
            "p99_ratio": ratio(window["p99_ms"], steady["p99_ms"]),
            "until_whole_s": until_whole(records, started, ended),
            "error_samples": sorted({r.get("error") or str(r.get("status")) for r in records
                                     if started <= r["t"] < ended and r["outcome"] != "ok"})[:5],
        })
    return rows


def timeline(records, start, end):
    """Per second from start: ok requests, errors, p99 of the ok latencies."""
    seconds = int(end - start) + 1
    ok = [0] * seconds
    err = [0] * seconds
    lat = [[] for _ in range(seconds)]
    for r in records:
        i = int(r["t"] - start)
        if 0 <= i < seconds:
            if r["outcome"] == "ok":
                ok[i] += 1
                lat[i].append(r["latency_ms"])
            else:
                err[i] += 1
    return {"ok": ok, "errors": err, "p99_ms": [loadgen.percentile(v, 99) for v in lat]}


def rollout_lines(path):
    """The rollout's per-instance progress lines (one per instance reloaded)."""
    if not path or not os.path.exists(path):
        return []
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    return sorted(set(m.strip() for m in re.findall(r'"msg": "([^"]*workers\s+replaced in[^"]*)"', text)))


def host_switch_seconds(path):
    """{host: seconds} of the rollout's switch (flip, chains, gates, daphne), from its host summaries."""
    if not path or not os.path.exists(path):
        return {}
    with open(path, encoding="utf-8", errors="replace") as handle:
        text = handle.read()
    return {m.group(1): float(m.group(2)) for m in re.finditer(r'"msg": "(\S+): release \S+ -> \S+ in ([0-9.]+) s', text)}


def switch_start(path):
    """Epoch at which rollout.yml started its first "Point current at release" task (profile_tasks stamps)."""
    if not path or not os.path.exists(path):
        return None
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    for i, line in enumerate(lines):
        # the task of the rollout role ("TASK [webstack.django_uwsgi.rollout : Point current ...")
        if re.match(r"TASK \[(?:\S+ : )?Point current at release", line):
            for after in lines[i + 1:i + 4]:
                match = _STAMP_RE.match(after)
                if match:
                    stamp = re.sub(r"\s+", " ", match.group(1)) + " " + match.group(2)
                    return calendar.timegm(time.strptime(stamp[:-6], "%d %B %Y %H:%M:%S")) - _offset(match.group(2))
    return None


def _offset(text):
    sign = -1 if text[0] == "-" else 1
    return sign * (int(text[1:3]) * 3600 + int(text[3:5]) * 60)


def chart(line, rows, start, path):
    import matplotlib  # pylint: disable=import-outside-toplevel
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel

    xs = list(range(len(line["ok"])))
    fig, axes = plt.subplots(3, 1, figsize=(12, 8), sharex=True)
    axes[0].plot(xs, line["ok"], color="#1f77b4", linewidth=1)
    axes[0].set_ylabel("ok requests/s")
    axes[1].bar(xs, line["errors"], color="#d62728", width=1.0)
    axes[1].set_ylabel("errors/s")
    axes[2].plot(xs, [v if v is not None else float("nan") for v in line["p99_ms"]], color="#2ca02c", linewidth=1)
    axes[2].set_ylabel("p99 ms (per second)")
    axes[2].set_yscale("log")
    axes[2].set_xlabel("seconds since the load started")
    colours = {"supervisor-restart": "#ff7f0e", "sighup": "#9467bd", "rollout": "#17becf", "rollout-switch": "#17becf",
               "postgresql-restart": "#8c564b", "redis-restart": "#e377c2"}
    for row in rows:
        if row["way"] == "rollout" and any(r["way"] == "rollout-switch" for r in rows):
            continue  # shaded by its switch part; the build before it touches no process
        s = row["window_start"] - start
        for ax in axes:
            ax.axvspan(s, s + row["duration_s"], color=colours.get(row["way"], "#cccccc"), alpha=0.25)
        axes[0].text(s, max(line["ok"] or [1]) * 1.02, "%s\n%d errors" % (row["way"], row["errors"]), fontsize=8)
    fig.suptitle("Deploy under constant load through nginx (shaded: deploy windows)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def markdown(rows, machine, note=None):
    out = ["| deploy way | duration s | requests | non-2xx | conn errors | timeouts | p50 ms | p99 ms "
           "| steady p99 ms | p99 ratio | until whole s | app restarted |", "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        restarted = r.get("app_restarted")
        out.append("| %s | %s | %d | %d | %d | %d | %s | %s | %s | %s | %s | %s |" % (
            r["label"], r["duration_s"], r["requests"], r["non_2xx"], r["connection_errors"], r["timeouts"],
            r["p50_ms"], r["p99_ms"], r["steady_p99_ms"], r["p99_ratio"], r.get("until_whole_s"),
            "" if restarted is None else ("yes" if restarted else "no")))
    out.append("")
    out.append("Measured %s on %s (%s cores, %s)." % (machine["date"], machine["cpu"], machine["cores"],
                                                    machine["python"]))
    if note:
        out.append("")
        out.append("Machine during the run: %s." % note)
    return "\n".join(out) + "\n"


def machine_facts():
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {"date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()), "cpu": cpu, "cores": os.cpu_count(),
            "python": platform.python_version()}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--load", required=True)
    parser.add_argument("--deploys", required=True)
    parser.add_argument("--rollout-log")
    parser.add_argument("--note", help="how loaded the machine was (other containers, load average)")
    parser.add_argument("--out", required=True, help="prefix of the .json, .md and .png written")
    args = parser.parse_args(argv)
    with open(args.load, encoding="utf-8") as handle:
        load = json.load(handle)
    records, marks = load["requests"], [tuple(m) for m in load["marks"]]
    lines = read_deploy_lines(args.deploys)
    deploys = [line[:3] for line in lines]
    extras = {line[0]: line[3] for line in lines}
    switch = switch_start(args.rollout_log)
    for name, started, ended in list(deploys):
        if name == "rollout" and switch is not None and started <= switch < ended:
            # Stamps are whole seconds: the switch starts within a second of this.
            deploys.append(("rollout-switch", switch, ended))
    rows = figures(records, marks, deploys)
    for row, (_n, started, _e) in zip(rows, deploys):
        row["window_start"] = started
        if "app_restarted" in extras.get(row["way"], {}):
            row["app_restarted"] = extras[row["way"]]["app_restarted"] == "1"
    line = timeline(records, load["started"], load["stopped"])
    machine = machine_facts()
    if args.note:
        machine["note"] = args.note
    doc = {"machine": machine, "load": load["config"], "total": {k: load["summary"][k] for k in
                                                                 ("requests", "errors", "rps", "p50_ms", "p99_ms")},
           "deploys": rows, "rollout_progress": rollout_lines(args.rollout_log),
           "rollout_switch_seconds": host_switch_seconds(args.rollout_log), "timeline": line}
    with open(args.out + ".json", "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=1)
    table = markdown(rows, machine, args.note)
    with open(args.out + ".md", "w", encoding="utf-8") as handle:
        handle.write(table)
    chart(line, rows, load["started"], args.out + ".png")
    print(table)
    for text in doc["rollout_progress"]:
        print("  " + text)
    for host, seconds in doc["rollout_switch_seconds"].items():
        print("  rollout.yml switched %s in %s s (the rest of its duration built the release while the old one served)"
              % (host, seconds))
    print("wrote %s.json, %s.md, %s.png" % (args.out, args.out, args.out))


if __name__ == "__main__":
    main()

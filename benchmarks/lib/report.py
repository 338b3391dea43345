#!/usr/bin/env python3
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Facts of the machine, and the balance report from the runs of measure.py.

    report.py facts --container NAME --out FILE
        Writes what the figures depend on: nproc, CPU model, memory, host and
        container distro, kernel, date, load average.

    report.py balance --runs DIR --title TEXT --out-prefix PREFIX [--elapsed S]
        Reads DIR/facts.json and every DIR/<config>-c<C>.json and writes
        PREFIX.json (all figures and the facts), PREFIX.md (the table, also
        printed) and PREFIX.png (worker shares per configuration, one panel
        per concurrency level).
"""

import argparse
import datetime
import glob
import json
import os
import platform
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import plot  # noqa: E402


def _os_release(text):
    fields = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            fields[key.strip()] = value.strip().strip('"')
    return fields.get("PRETTY_NAME") or fields.get("NAME")


def _cpu_model():
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or None


def _mem_total_mb():
    try:
        with open("/proc/meminfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) // 1024
    except (OSError, ValueError):
        pass
    return None


def machine_facts(container):
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            host_distro = _os_release(handle.read())
    except OSError:
        host_distro = None
    done = subprocess.run(["docker", "exec", container, "cat", "/etc/os-release"],
                          capture_output=True, text=True, timeout=30, check=False)
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "mem_total_mb": _mem_total_mb(),
        "host_distro": host_distro,
        "kernel": platform.release(),
        "container_distro": _os_release(done.stdout) if done.returncode == 0 else None,
        "loadavg_at_start": list(os.getloadavg()),
        "controller_python": platform.python_version(),
    }


def load_runs(runs_dir):
    runs = []
    for path in sorted(glob.glob(os.path.join(runs_dir, "*-c*.json"))):
        with open(path, encoding="utf-8") as handle:
            runs.append(json.load(handle))
    runs.sort(key=lambda r: (r["config"], r["concurrency"]))
    return runs


def layout(run):
    """'2 x 4 proc x 2 thr' from what the stats servers reported."""
    inst = run["instances"]
    procs = sorted({i["workers"] for i in inst})
    threads = sorted({i["threads"] for i in inst})
    proc_text = "/".join(str(p) for p in procs)
    thread_text = "/".join(str(t) for t in threads)
    return "%d x %s proc x %s thr" % (len(inst), proc_text, thread_text)


def _fmt(value, pattern="%s"):
    return "-" if value is None else pattern % value


def table(runs):
    head = ("| config | workers | conc. | req/s | p50 ms | p99 ms | errors | busiest / fair | Gini | idle workers |\n"
            "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|")
    lines = [head]
    for r in runs:
        f = r["figures"]
        lines.append("| %s | %s | %d | %s | %s | %s | %s | %s | %s | %d / %d |" % (
            r["config"], layout(r), r["concurrency"], _fmt(f["throughput_rps"], "%.1f"),
            _fmt(f["p50_ms"], "%.1f"), _fmt(f["p99_ms"], "%.1f"), _fmt(f["errors"]),
            _fmt(f["busiest_ratio"], "%.2f"), _fmt(f["gini"], "%.3f"), f["idle_workers"], f["workers"]))
    return "\n".join(lines)


def markdown(runs, facts, settings, title):
    configs = []
    seen = set()
    for r in runs:
        if r["config"] not in seen:
            seen.add(r["config"])
            configs.append("- **%s**: %s (%s)" % (r["config"], r["describe"], layout(r)))
    machine = "%s x %s, %s MB, %s (host), %s (container), kernel %s" % (
        facts.get("nproc"), facts.get("cpu_model"), facts.get("mem_total_mb"), facts.get("host_distro"),
        facts.get("container_distro"), facts.get("kernel"))
    parts = [
        "# %s" % title,
        "",
        "Run %s on %s. Load average at start: %s." % (
            facts.get("date"), machine, ", ".join("%.2f" % v for v in facts.get("loadavg_at_start", []))),
        "Load: `GET /cpu?ms=%s` through nginx on 127.0.0.1, closed loop, %s s per concurrency level; "
        "uWSGI %s. Total time of the command: %s s; converges (in run order): %s." % (
            settings.get("cpu_ms"), settings.get("duration_s"), settings.get("uwsgi_version"),
            _fmt(settings.get("elapsed_s")),
            ", ".join("%s %d s (%s)" % (c["config"], c["seconds"], c["tags"]) for c in settings["converges"])
            or "-"),
        "",
        "\n".join(configs),
        "",
        table(runs),
        "",
        "busiest / fair: the busiest worker's share of the requests served in the window divided by "
        "1 / workers (1.00 is even). Gini: 0 even, (n-1)/n one worker did everything. "
        "Idle: workers that served nothing in the window. req/s, p50, p99 and errors are the "
        "client's view (tests/load/loadgen.py); shares come from uwsgi_stats request deltas.",
        "",
    ]
    return "\n".join(parts)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    facts = sub.add_parser("facts")
    facts.add_argument("--container", required=True)
    facts.add_argument("--out", required=True)
    bal = sub.add_parser("balance")
    bal.add_argument("--runs", required=True)
    bal.add_argument("--title", default="Worker balance")
    bal.add_argument("--out-prefix", required=True)
    bal.add_argument("--elapsed", type=float)
    args = parser.parse_args(argv)

    if args.command == "facts":
        with open(args.out, "w", encoding="utf-8") as handle:
            json.dump(machine_facts(args.container), handle, indent=1)
        return 0

    runs = load_runs(args.runs)
    if not runs:
        raise SystemExit("no runs in %s" % args.runs)
    with open(os.path.join(args.runs, "facts.json"), encoding="utf-8") as handle:
        facts_doc = json.load(handle)
    facts_doc["loadavg_at_end"] = list(os.getloadavg())
    converges = []
    converges_path = os.path.join(args.runs, "converges.jsonl")
    if os.path.exists(converges_path):
        with open(converges_path, encoding="utf-8") as handle:
            converges = [json.loads(line) for line in handle if line.strip()]
    settings = {
        "cpu_ms": runs[0]["cpu_ms"],
        "duration_s": runs[0]["duration_s"],
        "concurrency_levels": sorted({r["concurrency"] for r in runs}),
        "uwsgi_version": runs[0]["uwsgi_version"],
        "elapsed_s": round(args.elapsed) if args.elapsed else None,
        "order": [c["config"] for c in converges],
        "converges": converges,
    }
    doc = {"title": args.title, "machine": facts_doc, "settings": settings,
           "configs": {r["config"]: {"describe": r["describe"], "layout": layout(r)} for r in runs},
           "runs": runs}
    os.makedirs(os.path.dirname(os.path.abspath(args.out_prefix)), exist_ok=True)
    with open(args.out_prefix + ".json", "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=1)
    text = markdown(runs, facts_doc, settings, args.title)
    with open(args.out_prefix + ".md", "w", encoding="utf-8") as handle:
        handle.write(text)
    plot.balance_chart(runs, args.out_prefix + ".png",
                       "%s: GET /cpu?ms=%s through nginx, %s s per concurrency level, %s CPUs, %s" % (
                           args.title, settings["cpu_ms"], settings["duration_s"], facts_doc.get("nproc"),
                           facts_doc.get("date", "")[:10]))
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

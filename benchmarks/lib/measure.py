#!/usr/bin/env python3
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Measure one converged configuration: one load run per concurrency level.

    measure.py --config c [--label "c 2 inst rr"] --describe "..." --container webstack-bench
               --url http://127.0.0.1:18680 --socket /run/uwsgi/web1/stats.sock [--socket ...]
               [--expect-instances 2] --concurrency 1,4,16 --duration 15 --cpu-ms 10 --out-dir DIR

For each concurrency level: the stats of every instance are read (before),
tests/load/loadgen.py sends /cpu?ms=N through the front for --duration
seconds, the stats are read again (after), and DIR/<config>-c<C>.json gets
the per-worker request deltas (the collection's uwsgi_stats code, run in the
container by stats_probe.py), the load summary and the figures of metrics.py.
A short warm-up run comes first and is not measured. Every child process has
a time limit; a run that cannot be made is an error (exit 1), a slow one is not.
"""

import argparse
import json
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import metrics  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOADGEN = os.path.join(ROOT, "tests", "load", "loadgen.py")
PROBE_DIR = "/tmp/webstack-bench"   # in the container, where balance.sh copied the probe
STATS_TIMEOUT = 30


def probe(container, command, sockets):
    argv = ["docker", "exec", container, "python3", PROBE_DIR + "/stats_probe.py",
            command, PROBE_DIR + "/before.json"] + list(sockets)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=STATS_TIMEOUT, check=False)
    if done.returncode != 0:
        raise SystemExit("reading the uWSGI stats failed (%s): %s" % (" ".join(argv[3:]), done.stderr.strip()))
    return json.loads(done.stdout)


def load(url, concurrency, duration, cpu_ms, out):
    argv = [sys.executable, LOADGEN, "run", "--url", url, "--mix", "1:http:/cpu?ms=%d" % cpu_ms,
            "--concurrency", str(concurrency), "--duration", str(duration), "--timeout", "10", "--out", out]
    # loadgen stops by itself at --duration; the margin covers requests in flight.
    done = subprocess.run(argv, capture_output=True, text=True, timeout=duration + 60, check=False)
    if done.returncode != 0:
        raise SystemExit("loadgen failed: %s" % done.stderr.strip()[-2000:])
    with open(out, encoding="utf-8") as handle:
        doc = json.load(handle)
    return doc


def wait_ready(url, instances, limit=60.0):
    """Until /healthz through the front answers from `instances` distinct instances (bounded)."""
    seen = set()
    deadline = time.time() + limit
    last = None
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url + "/healthz", timeout=5) as answer:
                body = json.load(answer)
            seen.add(body.get("instance"))
            if len(seen) >= instances:
                return sorted(str(s) for s in seen)
        except (OSError, ValueError) as exc:
            last = exc
        time.sleep(0.2)
    raise SystemExit("the front at %s did not answer from %d instance(s) within %ds (seen: %s; last error: %s)"
                     % (url, instances, limit, sorted(str(s) for s in seen), last))


def topology(stats):
    """Instances, worker processes and threads as the stats servers report them."""
    out = []
    for inst in stats["instances"]:
        out.append({"socket": inst["socket"], "workers": inst["totals"]["workers"], "threads": inst["threads"]})
    return out


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", required=True, help="short name of the configuration (file name part)")
    parser.add_argument("--label", help="a few words for the chart (default: the config name)")
    parser.add_argument("--describe", required=True, help="one line: what the configuration is")
    parser.add_argument("--container", required=True)
    parser.add_argument("--url", required=True)
    parser.add_argument("--socket", action="append", required=True, help="stats socket in the container")
    parser.add_argument("--expect-instances", type=int, default=1,
                        help="wait until /healthz has answered from this many instances")
    parser.add_argument("--concurrency", default="1,4,16")
    parser.add_argument("--duration", type=int, default=15)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--cpu-ms", type=int, default=10)
    parser.add_argument("--out-dir", required=True)
    args = parser.parse_args(argv)
    levels = [int(c) for c in args.concurrency.split(",") if c.strip()]
    os.makedirs(args.out_dir, exist_ok=True)
    raw_dir = os.path.join(args.out_dir, "raw")
    os.makedirs(raw_dir, exist_ok=True)

    print("%-3s ready, /healthz answered from instance(s) %s" % (args.config, ", ".join(
        wait_ready(args.url, args.expect_instances))), flush=True)
    if args.warmup > 0:
        load(args.url, max(levels), args.warmup, args.cpu_ms, os.path.join(raw_dir, "%s-warmup.json" % args.config))

    for concurrency in levels:
        probe(args.container, "save", args.socket)
        loadgen_out = os.path.join(raw_dir, "%s-c%d-load.json" % (args.config, concurrency))
        doc = load(args.url, concurrency, args.duration, args.cpu_ms, loadgen_out)
        stats = probe(args.container, "window", args.socket)
        counts = [w["requests"] for w in stats["workers"] if w["counted"]]
        window = stats["instances"][0]["window_seconds"] if stats["instances"] else None
        figures = metrics.run_figures(counts, doc["summary"], window)
        # A worker recycled inside the window (max-requests) counts from its new spawn only.
        figures["respawned_in_window"] = sum(1 for w in stats["workers"] if w["respawned_in_window"])
        result = {
            "config": args.config,
            "label": args.label or args.config,
            "describe": args.describe,
            "concurrency": concurrency,
            "duration_s": args.duration,
            "cpu_ms": args.cpu_ms,
            "url": args.url,
            "started": doc["started"],
            "stopped": doc["stopped"],
            "stats_window_s": window,
            "instances": topology(stats),
            "uwsgi_version": stats["instances"][0]["version"] if stats["instances"] else None,
            "figures": figures,
            "uwsgi_stats_balance": stats["balance"],
            "workers": [{k: w[k] for k in ("socket", "id", "pid", "requests", "respawned_in_window",
                                            "counted", "avg_rt_ms")} for w in stats["workers"]],
            "load_summary": {k: v for k, v in doc["summary"].items() if k not in ("by_path", "windows")},
        }
        path = os.path.join(args.out_dir, "%s-c%d.json" % (args.config, concurrency))
        with open(path, "w", encoding="utf-8") as handle:
            json.dump(result, handle, indent=1)
        print("%-3s c=%-3d %6s req/s  p50 %6s ms  p99 %7s ms  errors %s  busiest/fair %s  gini %s  idle %d/%d"
              % (args.config, concurrency, figures["throughput_rps"], figures["p50_ms"], figures["p99_ms"],
                 figures["errors"], figures["busiest_ratio"], figures["gini"], figures["idle_workers"],
                 figures["workers"]), flush=True)
        time.sleep(1)
    return 0


if __name__ == "__main__":
    sys.exit(main())

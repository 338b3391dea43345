#!/usr/bin/env python3
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Write the stack's metrics for node_exporter's textfile collector.

Installed by the metrics role of webstack.django_uwsgi with the collection's
stats client (module_utils/uwsgi_stats.py, copied next to this file) and run by
a systemd timer:

    webstack_metrics.py --config /etc/webstack-metrics/config.json

The config (JSON, written by the role from the collection's stack model) names
the output file, a state file, the uWSGI instances with their stats sockets,
the daphne processes with their addresses and the nginx addresses:

    {"output": ".../webstack.prom", "state": ".../state.json", "app": "notes",
     "timeout": 2.0, "instances": [{"name": "web1", "stats": "/run/uwsgi/web1/stats.sock"}],
     "daphne": [{"name": "daphne0", "address": "127.0.0.1:8001"}],
     "nginx": [{"address": "127.0.0.1:80"}]}

Every run reads each stats server once, keeps the documents in the state file
and computes the balance ratio over the window since the previous run (the
arithmetic of the uwsgi_stats module). The output is written to a temporary
file in the same directory (a name node_exporter ignores) and renamed over the
old one, so the collector never reads half a file. Only the standard library
and uwsgi_stats.py are needed (the host's Python 3).
"""

import argparse
import json
import math
import os
import socket
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uwsgi_stats  # noqa: E402  (module_utils/uwsgi_stats.py, installed next to this file)

# name -> (type, help); the order of the output.
METRICS = (
    ("webstack_uwsgi_up", "gauge", "1 when the instance's stats server answered, else 0."),
    ("webstack_uwsgi_requests_total", "counter", "Requests served by the instance's workers (uWSGI keeps a slot's count across respawns)."),
    ("webstack_uwsgi_worker_requests_total", "counter", "Requests served by one worker slot."),
    ("webstack_uwsgi_workers", "gauge", "Workers of the instance by state (busy, idle, cheap, other)."),
    ("webstack_uwsgi_workers_accepting", "gauge", "Workers of the instance accepting requests."),
    ("webstack_uwsgi_respawns_total", "counter", "Worker respawns of the instance (max-requests, reload-on-rss, harakiri, crashes, reloads)."),
    ("webstack_uwsgi_harakiri_total", "counter", "Requests killed by harakiri in the instance."),
    ("webstack_uwsgi_exceptions_total", "counter", "Exceptions raised by the instance's app."),
    ("webstack_uwsgi_rss_bytes", "gauge", "Resident memory of the instance's workers, summed."),
    ("webstack_uwsgi_worker_rss_bytes", "gauge", "Resident memory of one worker."),
    ("webstack_uwsgi_listen_queue", "gauge", "Connections waiting in the instance's listen queue."),
    ("webstack_uwsgi_listen_queue_errors_total", "counter", "Listen queue overflows of the instance."),
    ("webstack_uwsgi_window_requests", "gauge", "Requests the counted workers served since the previous run."),
    ("webstack_uwsgi_balance_ratio", "gauge",
     "Busiest worker's share of the window's requests over the fair share (1 is even; NaN without requests)."),
    ("webstack_uwsgi_balance_ratio_all", "gauge", "Balance ratio over the workers of every instance together (what the front sees)."),
    ("webstack_daphne_up", "gauge", "1 when the daphne process accepts a connection on its socket, else 0."),
    ("webstack_daphne_accepting", "gauge",
     "Daphne slots of the app accepting connections (the stopped spare slot, when there is one, is not one of them)."),
    ("webstack_daphne_expected", "gauge",
     "Daphne processes the app should run (daphne_processes; alarm when webstack_daphne_accepting is below it)."),
    ("webstack_nginx_up", "gauge", "1 when nginx accepts a connection on the address, else 0."),
    ("webstack_metrics_last_run_timestamp_seconds", "gauge", "When this file was written (Unix time)."),
    ("webstack_metrics_duration_seconds", "gauge", "Seconds the run took."),
)
WORKER_STATES = ("busy", "idle", "cheap", "other")


def _escape(value):
    return str(value).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(labels):
    if not labels:
        return ""
    return "{" + ",".join('%s="%s"' % (k, _escape(v)) for k, v in labels.items()) + "}"


def _number(value):
    if value is None:
        return "NaN"
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        if math.isnan(value):
            return "NaN"
        return repr(round(value, 6))
    return str(int(value))


def render(samples):
    """Exposition text: one HELP and TYPE per metric that has samples, in METRICS order."""
    lines = []
    for name, kind, text in METRICS:
        rows = [s for s in samples if s[0] == name]
        if not rows:
            continue
        lines.append("# HELP %s %s" % (name, text))
        lines.append("# TYPE %s %s" % (name, kind))
        for _name, labels, value in rows:
            lines.append("%s%s %s" % (name, _labels(labels), _number(value)))
    return "\n".join(lines) + "\n"


def worker_state(worker):
    if worker.cheap:
        return "cheap"
    if worker.status in ("busy", "idle"):
        return worker.status
    return "other"


def instance_samples(app, name, before, after):
    """Samples of one instance from its snapshot (and the previous one, for the window)."""
    base = {"app": app, "instance": name}
    inst = uwsgi_stats.analyse_instance(before, after, 1)
    tot = inst["totals"]
    out = [
        ("webstack_uwsgi_up", base, 1),
        ("webstack_uwsgi_requests_total", base, tot["requests_total"]),
    ]
    for w in after.workers:
        out.append(("webstack_uwsgi_worker_requests_total", dict(base, worker=str(w.id)), w.requests))
    states = dict((s, 0) for s in WORKER_STATES)
    for w in after.workers:
        states[worker_state(w)] += 1
    for state in WORKER_STATES:
        out.append(("webstack_uwsgi_workers", dict(base, state=state), states[state]))
    out += [
        ("webstack_uwsgi_workers_accepting", base, len([w for w in after.workers if w.eligible])),
        ("webstack_uwsgi_respawns_total", base, tot["respawns"]),
        ("webstack_uwsgi_harakiri_total", base, tot["harakiri_count"]),
        ("webstack_uwsgi_exceptions_total", base, tot["exceptions"]),
        ("webstack_uwsgi_rss_bytes", base, tot["rss"]),
    ]
    for w in after.workers:
        out.append(("webstack_uwsgi_worker_rss_bytes", dict(base, worker=str(w.id)), w.rss))
    if inst["listen_queue"] is not None:
        out.append(("webstack_uwsgi_listen_queue", base, inst["listen_queue"]))
    if inst["listen_queue_errors"] is not None:
        out.append(("webstack_uwsgi_listen_queue_errors_total", base, inst["listen_queue_errors"]))
    if before is not None:
        out.append(("webstack_uwsgi_window_requests", base, inst["balance"]["requests"]))
        out.append(("webstack_uwsgi_balance_ratio", base, inst["balance"]["ratio"]))
    return out, inst


def connect_probe(address, timeout):
    """True when something accepts a connection at ``address`` (unix:/path, /path or host:port)."""
    if address.startswith("unix:") or address.startswith("/"):
        family, target = socket.AF_UNIX, address[5:] if address.startswith("unix:") else address
    else:
        host, _sep, port = address.rpartition(":")
        family, target = None, (host.strip("[]") or "127.0.0.1", int(port))
    try:
        if family is None:
            sock = socket.create_connection(target, timeout=timeout)
        else:
            sock = socket.socket(family, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(target)
            except BaseException:
                sock.close()
                raise
    except (OSError, ValueError):
        return False
    sock.close()
    return True


def load_state(path):
    """{stats address: (taken_at, document)} of the previous run; empty when there is none or it is unreadable."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return dict((k, (float(v["taken_at"]), v["doc"])) for k, v in data["snapshots"].items())
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def write_atomic(path, text, mode=0o644):
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename."""
    directory = os.path.dirname(path) or "."
    # The textfile collector reads *.prom only: the temporary name ends otherwise.
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def collect(config, clock=time.time):
    """(samples, new state, errors) of one run."""
    started = clock()
    app = str(config.get("app", ""))
    timeout = float(config.get("timeout", 2.0))
    previous = load_state(config["state"]) if config.get("state") else {}
    samples, errors, state, analysed = [], [], {}, []
    for entry in config.get("instances", []):
        name, address = str(entry["name"]), str(entry["stats"])
        try:
            after = uwsgi_stats.take_snapshot(address, timeout)
        except uwsgi_stats.StatsError as exc:
            samples.append(("webstack_uwsgi_up", {"app": app, "instance": name}, 0))
            errors.append("instance %s: %s" % (name, exc))
            continue
        prev = previous.get(address)
        before = uwsgi_stats.Snapshot(prev[1], prev[0], address) if prev else None
        if before is not None and before.pid != after.pid:
            # Another master (the instance restarted): no window across it.
            before = None
        rows, inst = instance_samples(app, name, before, after)
        samples += rows
        if before is not None:
            analysed.append(inst)
        state[address] = {"taken_at": after.taken_at, "doc": after.doc}
    if analysed:
        pooled = uwsgi_stats.pooled_balance(analysed, 1)
        samples.append(("webstack_uwsgi_balance_ratio_all", {"app": app}, pooled["ratio"]))
    # With a spare slot one slot is stopped on purpose (which one moves with
    # each rollout): its webstack_daphne_up is 0; the two totals tell whether
    # as many processes accept as the app should run.
    daphne = config.get("daphne", [])
    accepting = 0
    for entry in daphne:
        up = connect_probe(str(entry["address"]), timeout)
        accepting += 1 if up else 0
        samples.append(("webstack_daphne_up", {"app": app, "process": str(entry["name"])}, 1 if up else 0))
    if daphne:
        samples.append(("webstack_daphne_accepting", {"app": app}, accepting))
        samples.append(("webstack_daphne_expected", {"app": app}, sum(1 for e in daphne if not e.get("spare"))))
    for entry in config.get("nginx", []):
        up = connect_probe(str(entry["address"]), timeout)
        samples.append(("webstack_nginx_up", {"address": str(entry["address"])}, 1 if up else 0))
    finished = clock()
    samples.append(("webstack_metrics_last_run_timestamp_seconds", {}, round(finished, 3)))
    samples.append(("webstack_metrics_duration_seconds", {}, round(finished - started, 3)))
    return samples, {"snapshots": state}, errors


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", required=True, help="JSON config written by the metrics role")
    args = parser.parse_args(argv)
    try:
        with open(args.config, encoding="utf-8") as handle:
            config = json.load(handle)
        output = config["output"]
    except (OSError, ValueError, KeyError) as exc:
        sys.stderr.write("webstack_metrics: cannot read config %s: %s\n" % (args.config, exc))
        return 2
    samples, state, errors = collect(config)
    write_atomic(output, render(samples))
    if config.get("state"):
        write_atomic(config["state"], json.dumps(state), mode=0o600)
    for line in errors:
        # A stopped instance is a metric (up 0), not a failed run; the journal says why.
        sys.stderr.write("webstack_metrics: %s\n" % line)
    return 0


if __name__ == "__main__":
    sys.exit(main())

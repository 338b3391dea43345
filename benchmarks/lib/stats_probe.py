#!/usr/bin/env python3
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Read uWSGI stats servers with the collection's own code, inside the host.

balance.sh copies this file and plugins/module_utils/uwsgi_stats.py (the
logic of the uwsgi_stats module) side by side into the container and runs:

    stats_probe.py save FILE SOCKET...
        Reads every stats socket and stores the raw documents (with the time
        they were read) in FILE: the "before" snapshot of a load run.

    stats_probe.py window FILE SOCKET...
        Reads every socket again and prints, as JSON, what uwsgi_stats returns
        for the window between FILE and now: per-worker request deltas (a
        worker that respawned in the window counts from its new spawn), per
        instance and pooled over every instance (what the front sees).

    stats_probe.py pids SOCKET...
        Prints "SOCKET worker-ID pid" for every worker of every socket, one a
        line (deploy.sh: which processes a restart of the data tier touched).

    stats_probe.py ready OLD SECONDS SOCKET...
        Waits up to SECONDS until every worker of every socket has a pid,
        accepts, and none has a pid in OLD (comma-separated, may be empty);
        prints the pids comma-separated; exits 1 naming the workers that are
        not ready when the time is up (deploy.sh: a deploy is over).

    stats_probe.py sample OUT SECONDS INTERVAL SOCKET...
        Every INTERVAL seconds, for SECONDS at most, appends one JSON line to
        OUT: the time and, per socket, the master's pid and RSS (from /proc)
        and every worker's id, pid, status, requests since its spawn, rss
        (uWSGI's, 0 until the worker's first request), RSS from /proc,
        harakiri_count and respawn_count (soak.sh: RSS and recycling over
        time). A read that fails is written as an error line; sampling goes on.

Only the standard library and uwsgi_stats.py are needed (Python 3 of the host).
"""

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import uwsgi_stats  # noqa: E402  (module_utils/uwsgi_stats.py, copied next to this file)


def save(path, sockets):
    snaps = [uwsgi_stats.take_snapshot(s) for s in sockets]
    doc = {"snapshots": [{"socket": s.address, "taken_at": s.taken_at, "doc": s.doc} for s in snaps]}
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(doc, handle)
    return {"saved": path, "sockets": sockets, "workers": [len(s.workers) for s in snaps]}


def window(path, sockets):
    with open(path, encoding="utf-8") as handle:
        saved = {s["socket"]: s for s in json.load(handle)["snapshots"]}
    instances = []
    for sock in sockets:
        after = uwsgi_stats.take_snapshot(sock)
        prev = saved.get(sock)
        before = uwsgi_stats.Snapshot(prev["doc"], prev["taken_at"], sock) if prev else None
        # min_requests 1: the verdict is informative only, the benchmark reports.
        inst = uwsgi_stats.analyse_instance(before, after, 1)
        # Threads per worker as uWSGI reports them (one "core" per thread).
        inst["threads"] = max([w.cores or 1 for w in after.workers] or [1])
        instances.append(inst)
    pooled = uwsgi_stats.pooled_balance(instances, 1)
    return {
        "read_at": time.time(),
        "instances": [{k: v for k, v in i.items() if k != "table"} for i in instances],
        "workers": [dict(r, socket=i["socket"]) for i in instances for r in i["workers"]],
        "balance": pooled,
    }


def pids(sockets):
    return ["%s worker-%d %d" % (sock, w.id, w.pid) for sock in sockets for w in uwsgi_stats.take_snapshot(sock).workers]


def ready(old, seconds, sockets):
    """The pids of every worker once all are new and accepting; None and the laggards when time is up."""
    old = {int(p) for p in old.split(",") if p.strip()}
    deadline = time.time() + seconds
    while True:
        laggards = []
        found = []
        for sock in sockets:
            try:
                workers = uwsgi_stats.take_snapshot(sock).workers
            except uwsgi_stats.StatsError as exc:
                laggards.append("%s: %s" % (sock, exc))
                continue
            for w in workers:
                found.append(w.pid)
                if w.pid <= 0 or not w.accepting or w.pid in old:
                    laggards.append("%s worker %d (pid %d, accepting %s)" % (sock, w.id, w.pid, w.accepting))
        if not laggards:
            return found, []
        if time.time() >= deadline:
            return None, laggards
        time.sleep(0.5)


def proc_rss(pid):
    """Resident memory of a process in bytes from /proc (None when unreadable)."""
    try:
        with open("/proc/%d/status" % pid, encoding="ascii") as handle:
            for line in handle:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def sample_once(sockets):
    out = {"t": round(time.time(), 3), "instances": []}
    for sock in sockets:
        try:
            snap = uwsgi_stats.take_snapshot(sock)
        except uwsgi_stats.StatsError as exc:
            out["instances"].append({"socket": sock, "error": str(exc)})
            continue
        out["instances"].append({
            "socket": sock,
            "master_pid": snap.pid,
            "master_rss": proc_rss(snap.pid) if snap.pid else None,
            "workers": [{"id": w.id, "pid": w.pid, "status": w.status, "requests": w.requests_since_spawn(),
                         "rss": w.rss, "proc_rss": proc_rss(w.pid) if w.pid > 0 else None, "harakiri_count": w.harakiri_count, "respawn_count": w.respawn_count}
                        for w in snap.workers],
        })
    return out


def sample(path, seconds, interval, sockets):
    """Appends a sample every `interval` s for `seconds` s at most; returns how many were written."""
    deadline = time.time() + seconds
    written = 0
    with open(path, "a", encoding="utf-8") as handle:
        while time.time() < deadline:
            began = time.time()
            handle.write(json.dumps(sample_once(sockets)) + "\n")
            handle.flush()
            written += 1
            time.sleep(max(0.0, min(interval - (time.time() - began), deadline - time.time())))
    return written


def main(argv):
    if len(argv) >= 5 and argv[0] == "sample":
        written = sample(argv[1], float(argv[2]), float(argv[3]), argv[4:])
        sys.stdout.write("%d samples written to %s\n" % (written, argv[1]))
        return 0
    if len(argv) >= 2 and argv[0] == "pids":
        try:
            sys.stdout.write("".join(line + "\n" for line in pids(argv[1:])))
        except uwsgi_stats.StatsError as exc:
            sys.stderr.write("stats_probe: %s\n" % exc)
            return 1
        return 0
    if len(argv) >= 4 and argv[0] == "ready":
        found, laggards = ready(argv[1], float(argv[2]), argv[3:])
        if found is None:
            sys.stderr.write("stats_probe: not all workers new and accepting after %s s: %s\n" % (argv[2], "; ".join(laggards)))
            return 1
        sys.stdout.write(",".join(str(p) for p in found) + "\n")
        return 0
    if len(argv) < 3 or argv[0] not in ("save", "window"):
        sys.stderr.write(__doc__)
        return 2
    command, path, sockets = argv[0], argv[1], argv[2:]
    try:
        result = save(path, sockets) if command == "save" else window(path, sockets)
    except uwsgi_stats.StatsError as exc:
        sys.stderr.write("stats_probe: %s\n" % exc)
        return 1
    json.dump(result, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

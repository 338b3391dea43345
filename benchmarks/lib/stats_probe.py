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


def main(argv):
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

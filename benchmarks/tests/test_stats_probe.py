# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Unit tests of the pids and ready modes of benchmarks/lib/stats_probe.py
(what deploy.sh runs inside the app hosts), against stats servers on Unix sockets."""

import json
import os
import socket
import sys
import tempfile
import threading
import time

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "lib"))
sys.path.insert(0, os.path.join(HERE, "..", "..", "plugins", "module_utils"))

import stats_probe  # noqa: E402


class Server:
    """A stats server answering the document in self.doc (changeable while it runs)."""

    def __init__(self, path, doc):
        self.doc = doc
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.bind(path)
        self.sock.listen(8)
        self.sock.settimeout(0.2)
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while not self.stop.is_set():
            try:
                conn, _ = self.sock.accept()
            except socket.timeout:
                continue
            except OSError:
                return
            with conn:
                conn.sendall(json.dumps(self.doc).encode())

    def close(self):
        self.stop.set()
        self.thread.join(2)
        self.sock.close()


def doc(*workers):
    return {"version": "2.0.31", "listen_queue": 0,
            "workers": [{"id": i + 1, "pid": pid, "accepting": acc, "requests": 0, "status": "idle"}
                        for i, (pid, acc) in enumerate(workers)]}


@pytest.fixture
def servers():
    made = []
    folder = tempfile.mkdtemp(prefix="sp-")

    def make(document):
        path = os.path.join(folder, "s%d.sock" % len(made))
        made.append((path, Server(path, document)))
        return path, made[-1][1]

    yield make
    for path, server in made:
        server.close()
        os.unlink(path)
    os.rmdir(folder)


def test_pids_lists_every_worker_of_every_socket(servers, capsys):
    one, _ = servers(doc((101, 1), (102, 1)))
    two, _ = servers(doc((201, 1)))
    assert stats_probe.main(["pids", one, two]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "%s worker-1 101" % one, "%s worker-2 102" % one, "%s worker-1 201" % two]


def test_pids_fails_on_a_dead_socket(servers, capsys):
    path, server = servers(doc((101, 1)))
    server.close()
    assert stats_probe.main(["pids", path]) == 1
    assert "stats_probe:" in capsys.readouterr().err


def test_ready_prints_the_pids_when_all_are_new_and_accepting(servers, capsys):
    one, _ = servers(doc((101, 1), (102, 1)))
    assert stats_probe.main(["ready", "90,91", "5", one]) == 0
    assert capsys.readouterr().out.strip() == "101,102"


def test_ready_waits_for_the_old_pids_to_go(servers, capsys):
    path, server = servers(doc((90, 1), (102, 1)))
    threading.Timer(1.0, lambda: setattr(server, "doc", doc((103, 1), (102, 1)))).start()
    started = time.time()
    assert stats_probe.main(["ready", "90", "10", path]) == 0
    assert 0.9 <= time.time() - started < 5
    assert capsys.readouterr().out.strip() == "103,102"


@pytest.mark.parametrize("workers, old, named", [
    (((101, 0), (102, 1)), "", "worker 1 (pid 101, accepting False)"),
    (((0, 0),), "", "worker 1 (pid 0, accepting False)"),
    (((101, 1), (90, 1)), "90", "worker 2 (pid 90, accepting True)"),
])
def test_ready_names_the_workers_not_ready_when_time_is_up(servers, capsys, workers, old, named):
    path, _ = servers(doc(*workers))
    started = time.time()
    assert stats_probe.main(["ready", old, "1", path]) == 1
    assert time.time() - started < 4
    err = capsys.readouterr().err
    assert "not all workers new and accepting after 1 s" in err and named in err, err


def test_sample_appends_a_line_per_interval_and_records_a_failed_read(servers, capsys, tmp_path):
    document = doc((101, 1), (102, 1))
    document["pid"] = os.getpid()          # a readable /proc entry for the master's RSS
    document["workers"][1]["pid"] = os.getpid()
    document["workers"][0].update({"rss": 44 * 1024 * 1024, "harakiri_count": 2, "respawn_count": 3})
    path, server = servers(document)
    out = tmp_path / "samples.jsonl"
    threading.Timer(1.2, server.close).start()
    assert stats_probe.main(["sample", str(out), "2", "0.5", path]) == 0
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert 3 <= len(lines) <= 5, lines
    first = lines[0]["instances"][0]
    assert first["master_pid"] == os.getpid() and first["master_rss"] > 0
    # pid 101 is no process here: no RSS from /proc.
    assert first["workers"][0] == {"id": 1, "pid": 101, "status": "idle", "requests": 0, "rss": 44 * 1024 * 1024,
                                   "proc_rss": None, "harakiri_count": 2, "respawn_count": 3}
    assert first["workers"][1]["proc_rss"] == first["master_rss"] or first["workers"][1]["proc_rss"] > 0
    # After the server went away the sampler goes on and says why each read failed.
    assert "error" in lines[-1]["instances"][0]
    assert "samples written" in capsys.readouterr().out

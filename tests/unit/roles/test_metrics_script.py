# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The metrics role's script (roles/metrics/files/webstack_metrics.py) against
fake stats servers on unix sockets answering with documents captured from
uWSGI 2.0.31, with the stats client beside it as the role installs it."""

import copy
import json
import math
import os
import shutil
import socket
import stat
import subprocess
import sys
import tempfile

import pytest

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", ".."))
SCRIPT = os.path.join(REPO, "roles", "metrics", "files", "webstack_metrics.py")
CLIENT = os.path.join(REPO, "plugins", "module_utils", "uwsgi_stats.py")


@pytest.fixture
def tree(stats_server):
    """The script and the stats client side by side (as the role installs them), the output and state dirs;
    serve(name, doc) starts a stats server on a unix socket (its document is its ``reply``)."""
    root = tempfile.mkdtemp(prefix="wm-")
    lib = os.path.join(root, "lib")
    os.makedirs(lib)
    shutil.copy(SCRIPT, lib)
    shutil.copy(CLIENT, lib)
    os.makedirs(os.path.join(root, "textfile"))

    def serve(_name, doc):
        return stats_server("unix", doc)

    yield {"root": root, "lib": lib, "serve": serve}
    shutil.rmtree(root)


@pytest.fixture
def metrics(tree):
    """The script's module, imported from the copy next to its stats client."""
    sys.path.insert(0, tree["lib"])
    for name in ("webstack_metrics", "uwsgi_stats"):
        sys.modules.pop(name, None)
    import webstack_metrics  # pylint: disable=import-outside-toplevel
    yield webstack_metrics
    sys.path.remove(tree["lib"])
    for name in ("webstack_metrics", "uwsgi_stats"):
        sys.modules.pop(name, None)


def parse(text):
    """{(name, frozenset(labels)): value} of an exposition text; checks HELP/TYPE precede samples."""
    out, typed = {}, set()
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            typed.add(line.split()[2])
            continue
        if line.startswith("#") or not line.strip():
            continue
        head, number = line.rsplit(" ", 1)
        name, _brace, rest = head.partition("{")
        assert name in typed, line
        labels = {}
        for part in rest.rstrip("}").split(",") if rest else []:
            key, _equals, val = part.partition("=")
            labels[key] = val.strip('"')
        out[(name, frozenset(labels.items()))] = float(number)
    return out


def value(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def config(tree, instances, daphne=(), nginx=()):
    path = os.path.join(tree["root"], "config.json")
    doc = {
        "output": os.path.join(tree["root"], "textfile", "webstack.prom"),
        "state": os.path.join(tree["root"], "state.json"),
        "app": "notes",
        "timeout": 1.0,
        "instances": [{"name": n, "stats": s} for n, s in instances],
        "daphne": [{"name": n, "program": "daphne:" + n, "address": a, "spare": n == "daphne2"} for n, a in daphne],
        "nginx": [{"address": a} for a in nginx],
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(doc, handle)
    return path, doc


def run(path):
    """The script as the timer runs it (a separate python, no Ansible)."""
    return subprocess.run([sys.executable, os.path.join(os.path.dirname(path), "lib", "webstack_metrics.py"),
                           "--config", path], capture_output=True, text=True, timeout=30, check=False)


def read_output(doc):
    with open(doc["output"], encoding="utf-8") as handle:
        return handle.read()


def listener(kind, path=None):
    """A socket that accepts connections (a daphne process or nginx stand-in) and its address."""
    if kind == "unix":
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        address = "unix:" + path
    else:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        address = "127.0.0.1:%d" % sock.getsockname()[1]
    sock.listen(8)
    return sock, address


def closed_port():
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return "127.0.0.1:%d" % port


def test_first_run_reports_every_instance_as_its_stats_server_says(tree, fixture_doc):
    doc = fixture_doc("basic")
    server = tree["serve"]("web1", doc)
    path, cfg = config(tree, [("web1", server.address)])
    result = run(path)
    assert result.returncode == 0, result.stderr
    samples = parse(read_output(cfg))
    inst = {"app": "notes", "instance": "web1"}
    workers = doc["workers"]
    assert value(samples, "webstack_uwsgi_up", **inst) == 1
    assert value(samples, "webstack_uwsgi_requests_total", **inst) == sum(w["requests"] for w in workers)
    for w in workers:
        assert value(samples, "webstack_uwsgi_worker_requests_total", worker=str(w["id"]), **inst) == w["requests"]
        assert value(samples, "webstack_uwsgi_worker_rss_bytes", worker=str(w["id"]), **inst) == w["rss"]
    by_state = {s: value(samples, "webstack_uwsgi_workers", state=s, **inst) for s in ("busy", "idle", "cheap", "other")}
    assert sum(by_state.values()) == len(workers)
    assert by_state["busy"] == len([w for w in workers if w["status"] == "busy"])
    assert by_state["idle"] == len([w for w in workers if w["status"] == "idle"])
    assert value(samples, "webstack_uwsgi_workers_accepting", **inst) == len([w for w in workers if w["accepting"]])
    assert value(samples, "webstack_uwsgi_respawns_total", **inst) == sum(w["respawn_count"] for w in workers)
    assert value(samples, "webstack_uwsgi_harakiri_total", **inst) == sum(w["harakiri_count"] for w in workers)
    assert value(samples, "webstack_uwsgi_rss_bytes", **inst) == sum(w["rss"] for w in workers)
    assert value(samples, "webstack_uwsgi_listen_queue", **inst) == doc["listen_queue"]
    assert value(samples, "webstack_uwsgi_listen_queue_errors_total", **inst) == doc["listen_queue_errors"]
    # No window yet: no balance figures on the first run.
    assert ("webstack_uwsgi_balance_ratio", frozenset(inst.items())) not in samples
    assert value(samples, "webstack_metrics_last_run_timestamp_seconds") > 0


def test_second_run_reports_the_balance_of_the_window(tree, fixture_doc):
    doc = fixture_doc("basic")
    web1 = tree["serve"]("web1", doc)
    other = copy.deepcopy(doc)
    other["pid"] = doc["pid"] + 1000
    web2 = tree["serve"]("web2", other)
    path, cfg = config(tree, [("web1", web1.address), ("web2", web2.address)])
    assert run(path).returncode == 0
    # web1: worker 1 served 30 more requests, worker 2 10, the others none.
    web1.reply = copy.deepcopy(doc)
    web1.reply["workers"][0]["requests"] += 30
    web1.reply["workers"][1]["requests"] += 10
    # web2: even.
    web2.reply = copy.deepcopy(other)
    for w in web2.reply["workers"]:
        w["requests"] += 5
    result = run(path)
    assert result.returncode == 0, result.stderr
    samples = parse(read_output(cfg))
    n1 = len(doc["workers"])
    assert value(samples, "webstack_uwsgi_window_requests", app="notes", instance="web1") == 40
    assert value(samples, "webstack_uwsgi_balance_ratio", app="notes", instance="web1") == pytest.approx(
        (30 / 40) / (1 / n1), abs=1e-3)
    assert value(samples, "webstack_uwsgi_balance_ratio", app="notes", instance="web2") == pytest.approx(1.0)
    pooled = value(samples, "webstack_uwsgi_balance_ratio_all", app="notes")
    total = 40 + 5 * n1
    assert pooled == pytest.approx((30 / total) / (1 / (2 * n1)), abs=1e-3)


def test_window_without_requests_is_nan_and_a_restart_starts_a_new_window(tree, fixture_doc):
    doc = fixture_doc("basic")
    web1 = tree["serve"]("web1", doc)
    path, cfg = config(tree, [("web1", web1.address)])
    assert run(path).returncode == 0
    assert run(path).returncode == 0
    samples = parse(read_output(cfg))
    assert math.isnan(value(samples, "webstack_uwsgi_balance_ratio", app="notes", instance="web1"))
    # Another master pid: the previous document is not a window's start.
    web1.reply = copy.deepcopy(doc)
    web1.reply["pid"] += 1
    assert run(path).returncode == 0
    samples = parse(read_output(cfg))
    assert ("webstack_uwsgi_balance_ratio", frozenset({"app": "notes", "instance": "web1"}.items())) not in samples


def test_an_instance_that_does_not_answer_is_down_and_the_others_still_reported(tree, fixture_doc):
    web1 = tree["serve"]("web1", fixture_doc("basic"))
    missing = os.path.join(tree["root"], "gone.sock")
    path, cfg = config(tree, [("web1", web1.address), ("web2", missing)])
    result = run(path)
    assert result.returncode == 0
    assert "instance web2" in result.stderr and "does not exist" in result.stderr
    samples = parse(read_output(cfg))
    assert value(samples, "webstack_uwsgi_up", app="notes", instance="web1") == 1
    assert value(samples, "webstack_uwsgi_up", app="notes", instance="web2") == 0
    assert ("webstack_uwsgi_requests_total", frozenset({"app": "notes", "instance": "web2"}.items())) not in samples


def test_daphne_and_nginx_are_up_while_they_accept_connections(tree):
    daphne_unix, daphne0 = listener("unix", os.path.join(tree["root"], "daphne0.sock"))
    daphne_tcp, daphne1 = listener("tcp")
    nginx, nginx_address = listener("tcp")
    dead = closed_port()
    path, cfg = config(tree, [], daphne=[("daphne0", daphne0), ("daphne1", daphne1), ("daphne2", dead)],
                       nginx=[nginx_address, dead])
    try:
        assert run(path).returncode == 0
        samples = parse(read_output(cfg))
        assert value(samples, "webstack_daphne_up", app="notes", process="daphne0") == 1
        assert value(samples, "webstack_daphne_up", app="notes", process="daphne1") == 1
        assert value(samples, "webstack_daphne_up", app="notes", process="daphne2") == 0
        # daphne2 is the stopped spare slot: two accept, two expected
        assert value(samples, "webstack_daphne_accepting", app="notes") == 2
        assert value(samples, "webstack_daphne_expected", app="notes") == 2
        assert value(samples, "webstack_nginx_up", address=nginx_address) == 1
        assert value(samples, "webstack_nginx_up", address=dead) == 0
        daphne_tcp.close()
        assert run(path).returncode == 0
        samples = parse(read_output(cfg))
        assert value(samples, "webstack_daphne_up", app="notes", process="daphne1") == 0
        assert value(samples, "webstack_daphne_accepting", app="notes") == 1
        assert value(samples, "webstack_daphne_expected", app="notes") == 2
    finally:
        daphne_unix.close()
        daphne_tcp.close()
        nginx.close()


def test_output_is_replaced_whole_and_no_temporary_file_is_left(tree, fixture_doc):
    web1 = tree["serve"]("web1", fixture_doc("basic"))
    path, cfg = config(tree, [("web1", web1.address)])
    with open(cfg["output"], "w", encoding="utf-8") as handle:
        handle.write("old\n")
    before = os.stat(cfg["output"]).st_ino
    assert run(path).returncode == 0
    assert os.listdir(os.path.dirname(cfg["output"])) == ["webstack.prom"]
    # A rename: a new inode, never the old file rewritten in place.
    assert os.stat(cfg["output"]).st_ino != before
    assert stat.S_IMODE(os.stat(cfg["output"]).st_mode) == 0o644
    assert stat.S_IMODE(os.stat(cfg["state"]).st_mode) == 0o600
    assert "old" not in read_output(cfg)


def test_write_atomic_leaves_the_old_file_when_writing_fails(metrics, tree):
    target = os.path.join(tree["root"], "textfile", "webstack.prom")
    with open(target, "w", encoding="utf-8") as handle:
        handle.write("old\n")
    # Not text: the write fails after the temporary file was created.
    with pytest.raises(TypeError):
        metrics.write_atomic(target, object())
    assert open(target, encoding="utf-8").read() == "old\n"
    assert os.listdir(os.path.dirname(target)) == ["webstack.prom"]


def test_a_corrupt_state_file_is_a_first_run(metrics, tree):
    state = os.path.join(tree["root"], "state.json")
    with open(state, "w", encoding="utf-8") as handle:
        handle.write("{not json")
    assert metrics.load_state(state) == {}
    assert metrics.load_state(os.path.join(tree["root"], "missing.json")) == {}


def test_render_escapes_labels_and_writes_nan(metrics):
    text = metrics.render([("webstack_uwsgi_balance_ratio", {"app": 'a"b\\c', "instance": "x\ny"}, None),
                           ("webstack_uwsgi_up", {"app": "a", "instance": "w"}, 1)])
    lines = text.splitlines()
    assert lines[0] == "# HELP webstack_uwsgi_up " + dict((m[0], m[2]) for m in metrics.METRICS)["webstack_uwsgi_up"]
    assert "# TYPE webstack_uwsgi_balance_ratio gauge" in lines
    assert 'webstack_uwsgi_balance_ratio{app="a\\"b\\\\c",instance="x\\ny"} NaN' in lines
    assert 'webstack_uwsgi_up{app="a",instance="w"} 1' in lines


def test_a_config_that_cannot_be_read_is_an_error(tree):
    path = os.path.join(tree["root"], "config.json")
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("{}")
    result = run(path)
    assert result.returncode == 2
    assert "cannot read config" in result.stderr and "output" in result.stderr

"""Metrics and alarms of the notes stack (run before test_project.py's rollouts).

The metrics role runs node_exporter on 127.0.0.1:18699 and a timer every 5 s
that writes the stack's metrics into its textfile directory. The tests read
node_exporter's HTTP endpoint and check it against what the stats servers,
daphne and nginx say at the same moment:

1. node_exporter listens on loopback only; the script's config names the
   instances and the daphne process of the stack model (web1, web2; daphne0);
2. after N requests through nginx: per instance the workers, the request
   counters and the harakiri and respawn counts equal a fresh read of the
   stats server; the requests of the window sum to N and the balance ratio
   is the one computed from the per-worker counters;
3. daphne and nginx are up; a daphne process stopped with supervisorctl is
   down within the timer's period, and up again once started;
4. a request that runs past harakiri (a 2 s harakiri routed for requests that
   carry a test-only uwsgi variable, on a POST whose body never comes) fires
   uWSGI's harakiri alarm: its command appended the harakiri line to a file;
   the instance's harakiri count goes up in the metrics too.
"""

import json
import socket
import time
import urllib.request

from helpers import DAPHNE, HOST, INSTANCES, NGINX, PROCESSES, docker, get, uwsgi_protocol

METRICS_URL = "http://127.0.0.1:18699/metrics"
INTERVAL = 5
LIB = "/usr/local/lib/webstack-metrics"
ALARM_FILE = "/srv/notes/data/uwsgi-alarms.log"


def scrape():
    """{(name, frozenset(labels)): value} of node_exporter's webstack_* samples."""
    with urllib.request.urlopen(METRICS_URL, timeout=10) as resp:
        text = resp.read().decode()
    out = {}
    for line in text.splitlines():
        if not line.startswith("webstack_"):
            continue
        head, value = line.rsplit(" ", 1)
        name, _, rest = head.partition("{")
        labels = {}
        for part in rest.rstrip("}").split(",") if rest else []:
            key, _, val = part.partition("=")
            labels[key] = val.strip('"')
        out[(name, frozenset(labels.items()))] = float(value)
    return out


def sample(samples, name, **labels):
    return samples[(name, frozenset(labels.items()))]


def last_run(samples):
    return sample(samples, "webstack_metrics_last_run_timestamp_seconds")


def next_run(after, timeout=3 * INTERVAL):
    """The first scrape whose file was written after the time ``after``."""
    deadline = time.time() + timeout
    while True:
        samples = scrape()
        if last_run(samples) > after:
            return samples
        assert time.time() < deadline, f"no metrics run after {after} within {timeout} s"
        time.sleep(0.5)


def wait_for(predicate, timeout):
    """Scrapes until predicate(samples) holds; the last scrape."""
    deadline = time.time() + timeout
    while True:
        samples = scrape()
        if predicate(samples):
            return samples
        assert time.time() < deadline, f"not within {timeout} s"
        time.sleep(0.5)


def fresh_stats():
    """{instance: stats document} read now inside the host with the stats client the role installed."""
    code = ("import json, sys; sys.path.insert(0, %r); import uwsgi_stats; "
            "print(json.dumps({n: uwsgi_stats.read_stats('/run/uwsgi/%%s/stats.sock' %% n) for n in %r}))"
            % (LIB, sorted(INSTANCES)))
    return json.loads(docker(HOST, "python3", "-c", code))


def test_node_exporter_listens_on_loopback_only():
    args = docker(HOST, "cat", "/etc/default/prometheus-node-exporter")
    assert "--web.listen-address=127.0.0.1:18699" in args, args
    # Listening TCP sockets (state 0A) on port 18699 (0x490B): only 127.0.0.1.
    table = docker(HOST, "cat", "/proc/net/tcp", "/proc/net/tcp6").splitlines()
    listening = [line.split()[1] for line in table[1:] if len(line.split()) > 3 and line.split()[3] == "0A"]
    ours = [local for local in listening if local.endswith(":490B")]
    assert ours == ["0100007F:490B"], listening
    # Not on Debian's default port either.
    assert not [local for local in listening if local.endswith(":238C")], listening
    assert scrape(), "no webstack_ metric on node_exporter's endpoint"


def test_the_script_follows_the_stack_model():
    config = json.loads(docker(HOST, "cat", "/etc/webstack-metrics/config.json"))
    assert [(i["name"], i["stats"]) for i in config["instances"]] == [
        (name, f"/run/uwsgi/{name}/stats.sock") for name in sorted(INSTANCES)]
    # daphne0 and the stopped spare slot (daphne_spare) on the next port: each slot's up or down is reported.
    spare = f"{DAPHNE.rsplit(':', 1)[0]}:{int(DAPHNE.rsplit(':', 1)[1]) + 1}"
    assert [(d["name"], d["address"]) for d in config["daphne"]] == [("daphne0", DAPHNE), ("daphne1", spare)]
    assert config["nginx"] == [{"address": "127.0.0.1:18680"}]
    assert config["output"] == "/var/lib/prometheus/node-exporter/webstack.prom"
    timer = docker(HOST, "systemctl", "is-active", "webstack-metrics.timer").strip()
    assert timer == "active"


def test_metrics_match_the_stats_servers_after_requests_through_nginx():
    count = 40
    start = next_run(time.time())
    sent_from = time.time()
    for _ in range(count):
        assert get("/files/")[0] == 200
    sent = time.time()
    assert sent - sent_from < INTERVAL - 1, "the requests outlasted the timer's period"
    samples = next_run(sent)
    stats = fresh_stats()
    window_total = 0
    for name, doc in stats.items():
        inst = {"app": "notes", "instance": name}
        workers = doc["workers"]
        assert len(workers) == PROCESSES[name]
        assert sample(samples, "webstack_uwsgi_up", **inst) == 1
        states = {s: sample(samples, "webstack_uwsgi_workers", state=s, **inst) for s in ("busy", "idle", "cheap", "other")}
        assert sum(states.values()) == len(workers), states
        assert sample(samples, "webstack_uwsgi_workers_accepting", **inst) == len(
            [w for w in workers if w.get("accepting")])
        # No request since the run: the counters are those of a fresh read.
        assert sample(samples, "webstack_uwsgi_requests_total", **inst) == sum(w["requests"] for w in workers)
        assert sample(samples, "webstack_uwsgi_harakiri_total", **inst) == sum(w["harakiri_count"] for w in workers)
        assert sample(samples, "webstack_uwsgi_respawns_total", **inst) == sum(w["respawn_count"] for w in workers)
        assert sample(samples, "webstack_uwsgi_rss_bytes", **inst) > 0
        assert sample(samples, "webstack_uwsgi_listen_queue", **inst) == doc["listen_queue"]
        # The window is the requests sent, worker by worker.
        deltas = [sample(samples, "webstack_uwsgi_worker_requests_total", worker=str(w["id"]), **inst)
                  - sample(start, "webstack_uwsgi_worker_requests_total", worker=str(w["id"]), **inst) for w in workers]
        window = sample(samples, "webstack_uwsgi_window_requests", **inst)
        assert window == sum(deltas), (name, deltas, window)
        window_total += window
        if window:
            expected = max(deltas) / (window / len(workers))
            assert abs(sample(samples, "webstack_uwsgi_balance_ratio", **inst) - expected) < 1e-3, (name, deltas)
    assert window_total == count


def test_daphne_and_nginx_up_and_a_stopped_daphne_process_down():
    samples = scrape()
    assert sample(samples, "webstack_daphne_up", app="notes", process="daphne0") == 1
    assert sample(samples, "webstack_nginx_up", address="127.0.0.1:18680") == 1
    docker(HOST, "supervisorctl", "stop", "daphne:daphne0")
    try:
        stopped = time.time()
        samples = wait_for(lambda s: sample(s, "webstack_daphne_up", app="notes", process="daphne0") == 0,
                           INTERVAL + 5)
        print(f"daphne0 down in the metrics after {time.time() - stopped:.1f} s")
        assert last_run(samples) > stopped
        assert sample(samples, "webstack_nginx_up", address="127.0.0.1:18680") == 1
    finally:
        docker(HOST, "supervisorctl", "start", "daphne:daphne0")
    wait_for(lambda s: sample(s, "webstack_daphne_up", app="notes", process="daphne0") == 1, INTERVAL + 5)


def harakiri_request(address, seconds=15):
    """A POST /files/ whose body never comes, with the test-only uwsgi variable that routes a 2 s harakiri.

    Returns (seconds until uWSGI closed the connection, bytes it answered)."""
    host, port = address.rsplit(":", 1)
    pairs = uwsgi_protocol.request_vars(method="POST", path="/files/", host="localhost",
                                        headers={"Content-Type": "multipart/form-data; boundary=x"},
                                        extra_vars={"WEBSTACK_TEST_HARAKIRI": "1"})
    pairs.append(("CONTENT_LENGTH", "100000"))
    started, answer = time.time(), b""
    with socket.create_connection((host, int(port)), timeout=seconds) as sock:
        sock.sendall(uwsgi_protocol.build_packet(pairs) + b"--x\r\n")
        # A byte now and then (uWSGI's socket-timeout is 4 s), until the worker is gone.
        while time.time() - started < seconds:
            try:
                sock.sendall(b"a")
                sock.settimeout(0.5)
                data = sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                break
            if not data:
                break
            answer += data
    return time.time() - started, answer


def test_a_request_past_harakiri_fires_the_alarm():
    before = docker(HOST, "sh", "-c", f"cat {ALARM_FILE} 2>/dev/null || true")
    count_before = sample(scrape(), "webstack_uwsgi_harakiri_total", app="notes", instance="web2")
    took, answer = harakiri_request(INSTANCES["web2"])
    # uWSGI counts harakiri in whole seconds: a 2 s harakiri kills after 1 to 3 s.
    assert not answer and 1 <= took < 10, f"the request ended after {took:.1f} s with {answer[:200]!r}"
    deadline = time.time() + 10
    while True:
        text = docker(HOST, "sh", "-c", f"cat {ALARM_FILE} 2>/dev/null || true")
        added = text[len(before):]
        if "HARAKIRI ON WORKER" in added:
            break
        assert time.time() < deadline, f"no alarm line in {ALARM_FILE}: {text!r}"
        time.sleep(0.5)
    print(f"request killed after {took:.1f} s; alarm: {added.strip()}")
    log = docker(HOST, "tail", "-n", "200", "/var/log/uwsgi/web2.log")
    assert "HARAKIRI ON WORKER" in log
    samples = wait_for(lambda s: sample(s, "webstack_uwsgi_harakiri_total", app="notes", instance="web2")
                       > count_before, INTERVAL + 5)
    assert sample(samples, "webstack_uwsgi_harakiri_total", app="notes", instance="web2") == count_before + 1
    # The worker came back: the instance still serves, all its workers accepting.
    samples = wait_for(lambda s: sample(s, "webstack_uwsgi_workers_accepting", app="notes", instance="web2")
                       == PROCESSES["web2"], 30)
    assert get("/files/", base=NGINX)[0] == 200

"""Behaviour of the fastrouter front: balancing over subscribed instances,
leaving and rejoining the pool, unknown keys, stats, signed subscriptions."""

import collections
import threading
import time

from helpers import FREQ, KEY, STATS, SUBSCRIPTION_SERVER, TOLERANCE, instance, nodes, request, stats

INSTANCES = ("web1", "web2")
SOCKETS = {"/run/uwsgi/web1/uwsgi.sock", "/run/uwsgi/web2/uwsgi.sock"}
SUPERVISORCTL = "supervisorctl -c /etc/supervisor/supervisord.conf"


def wait_for_pool(host, expected, timeout=30):
    """Wait until the live nodes of KEY are expected. uWSGI applies the
    subscription tolerance when it routes a request, so keep requests going."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if nodes(stats(host)) == expected:
            return
        request()
        time.sleep(0.5)
    raise AssertionError(f"pool of {KEY} is {nodes(stats(host))}, expected {expected}")


def test_fastrouter_runs_as_its_user_under_supervisor(host):
    out = host.run(f"{SUPERVISORCTL} status fastrouter")
    assert out.rc == 0 and "RUNNING" in out.stdout, out.stdout + out.stderr
    users = host.run("ps -o user= -C uwsgi --no-headers | sort -u").stdout.split()
    assert "root" not in users, users
    sock = host.file("/run/fastrouter/fastrouter.sock")
    assert sock.is_socket
    assert (sock.user, sock.group, sock.mode) == ("fastrouter", "www-data", 0o660)
    private = host.file("/run/fastrouter/private")
    assert (private.user, private.mode) == ("fastrouter", 0o700)


def test_subscription_server_is_loopback_only(host):
    out = host.run("ss -H -uln")
    assert "127.0.0.1:18481" in out.stdout, out.stdout
    assert "0.0.0.0:18481" not in out.stdout and "*:18481" not in out.stdout


def test_stats_socket_lists_both_nodes(host):
    wait_for_pool(host, SOCKETS)
    doc = stats(host)
    assert nodes(doc) == SOCKETS
    assert nodes(doc, "localhost") == {"/run/uwsgi/web1/uwsgi.sock", "/run/uwsgi/web2/uwsgi.sock"}
    weights = {n["name"]: n["weight"] for s in doc["subscriptions"] if s["key"] == "localhost" for n in s["nodes"]}
    assert weights["/run/uwsgi/web2/uwsgi.sock"] == 2, weights
    # Only root and the fastrouter user can reach it.
    assert host.run("runuser -u www-data -- test -r %s", STATS).rc != 0


def test_requests_through_nginx_reach_both_instances(host):
    wait_for_pool(host, SOCKETS)
    seen = collections.Counter(instance() for _ in range(60))
    assert set(seen) == set(INSTANCES), seen
    assert min(seen.values()) >= 20, seen


def test_unknown_host_gets_a_quick_error():
    status, _, seconds = request(host="nobody.invalid")
    assert status == 502
    assert seconds < 2, f"unknown key took {seconds:.2f} s"


def test_stopped_instance_leaves_and_rejoins(host):
    wait_for_pool(host, SOCKETS)
    results = []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            status, body, _ = request()
            results.append((time.monotonic(), status, body))
            time.sleep(0.02)

    worker = threading.Thread(target=load)
    worker.start()
    try:
        time.sleep(1)
        t_stop = time.monotonic()
        out = host.run(f"{SUPERVISORCTL} stop uwsgi-web1")
        assert out.rc == 0, out.stdout + out.stderr
        t_stopped = time.monotonic()
        time.sleep(TOLERANCE + FREQ)
        t_start = time.monotonic()
        out = host.run(f"{SUPERVISORCTL} start uwsgi-web1")
        assert out.rc == 0, out.stdout + out.stderr
        deadline = time.monotonic() + 60
        t_back = None
        while time.monotonic() < deadline and t_back is None:
            time.sleep(0.1)
            t_back = next((t for t, s, b in list(results) if t > t_start and s == 200 and b"web1" in b), None)
    finally:
        stop.set()
        worker.join()

    bad = [(round(t - t_stop, 2), s) for t, s, _ in results if s != 200]
    assert not bad, f"non-200 answers while web1 stopped and started: {bad}"
    # Left: the last answer from web1 after the stop was asked for.
    web1_after = [t for t, s, b in results if t_stop <= t <= t_start and b"web1" in b]
    t_left = max(web1_after) if web1_after else t_stop
    during = [b for t, s, b in results if t_stopped < t < t_start]
    assert during and all(b"web2" in b for b in during)
    assert t_left - t_stop <= TOLERANCE, f"web1 still answered {t_left - t_stop:.2f} s after the stop"
    assert t_back is not None, "web1 did not rejoin within 60 s"
    print(
        f"\nFIGURES: {len(results)} requests, all 200; web1 last answered {t_left - t_stop:.2f} s after "
        f"'supervisorctl stop' was sent (stop returned after {t_stopped - t_stop:.2f} s); web1 answered again "
        f"{t_back - t_start:.2f} s after 'supervisorctl start' was sent"
    )
    wait_for_pool(host, SOCKETS)


def test_unsigned_subscription_is_refused(host):
    wait_for_pool(host, SOCKETS)
    uwsgi = "/opt/webstack/fastrouter-venv/bin/uwsgi"
    host.run("mkdir -p /run/intruder && chmod 1777 /run/intruder")
    common = f"{uwsgi} --strict --master --processes 1 --chmod-socket=666 --subscribe-freq 1 --die-on-term"
    try:
        # An extra uWSGI announcing itself without a signature, under the pool's key.
        out = host.run(
            f"{common} --uid nobody --gid nogroup --socket /run/intruder/unsigned.sock"
            f" --subscribe2 server={SUBSCRIPTION_SERVER},key={KEY}"
            " --pidfile2 /run/intruder/unsigned.pid --daemonize2 /run/intruder/unsigned.log"
        )
        assert out.rc == 0, out.stderr
        # Control: the same, signed with the distributed key (readable by the
        # app user only), is accepted, so the refusal is the signature's doing.
        out = host.run(
            f"{common} --uid demo --gid demo --socket /run/intruder/signed.sock"
            f" --subscribe2 server={SUBSCRIPTION_SERVER},key={KEY},sign=SHA256:/etc/uwsgi/subscription-sign.pem"
            " --pidfile2 /run/intruder/signed.pid --daemonize2 /run/intruder/signed.log"
        )
        assert out.rc == 0, out.stderr
        seen = set()
        for _ in range(10):
            time.sleep(0.5)
            seen |= nodes(stats(host))
        answered = collections.Counter(instance() for _ in range(30))
    finally:
        # SIGINT stops a uWSGI master (and it unsubscribes).
        host.run("for p in /run/intruder/*.pid; do [ -s $p ] && kill -INT $(cat $p); done; sleep 2; rm -rf /run/intruder")
    assert "/run/intruder/unsigned.sock" not in seen, seen
    assert "/run/intruder/signed.sock" in seen, f"even a signed extra subscription was refused: {seen}"
    assert set(answered) <= set(INSTANCES) | {None}, answered
    wait_for_pool(host, SOCKETS, timeout=TOLERANCE * 4)

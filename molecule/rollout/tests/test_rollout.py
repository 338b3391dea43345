"""Rollout under load (run on the controller, in file order).

0. The probes: every uWSGI worker answers GET /__webstack__/probe over its
   instance's own socket (with the uwsgi var WEBSTACK_PROBE=1) naming its
   release, instance, worker id and pid; each daphne process answers its HTTP
   probe and websocket probe directly; through nginx the probe, a forged
   attempt and the websocket probe are all refused. The inventory sets no
   rollout_healthcheck_path: the rollouts below are gated by the probes alone.
1. Release v2 rolled across both app hosts while tests/load/loadgen.py sends
   HTTP (/cpu?ms=2, /healthz) and websocket echo traffic through nginx: no
   error of any kind, every worker pid changed, every instance reports v2.
2. Release v3, which fails at import: the playbook fails on the first host
   naming the import error (its preflight import refuses it before the
   flip), that host is still on v2 with every worker accepting, the second
   host never left v2, the load saw no error.
   The same with the preflight off: the chain stalls on the first worker,
   current goes back to v2 and the chain finishes on it, the host fails
   naming instance, worker and the import error, with no error under load.
   Every failure ends with one line naming host, instance, worker, reason and
   the put-back.
3. The optional app gate: v4, whose /healthz answers 503, rolled out with
   rollout_healthcheck_path=/healthz, is stopped on the first instance and put
   back; rollback.yml (with that gate) back to the release before v2, under load.
4. Bad input fails before any host is touched.
rollout.yml --check (before 1) and rollback.yml --check (before 3) exit 0
with the plan of each host and change no pid, link or release directory.

Figures (requests, errors, p50/p99 steady vs rollout, duration per host) are
printed and written to build/rollout-<distro>.json.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

import pytest

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
sys.path.insert(0, os.path.join(PROJECT, "tests", "load"))
sys.path.insert(0, os.path.join(PROJECT, "plugins", "module_utils"))
import asgi_probe  # noqa: E402  pylint: disable=wrong-import-position
import loadgen  # noqa: E402  pylint: disable=wrong-import-position
import uwsgi_protocol  # noqa: E402  pylint: disable=wrong-import-position

ADDRESS = os.environ.get("WEBSTACK_ROLLOUT_ADDRESS", "127.0.0.1")
FRONT = "http://127.0.0.1:18580"
# rollout-app1 has the collection's default layout of two instances; rollout-app2
# another one (three instances of 3, 3 and 2 workers, its own uWSGI run dir and
# three daphne processes): the front's upstream, supervisor's programs and the
# rollout's targets must all follow what the inventory says.
APP_HOSTS = {
    "rollout-app1": {"web1": f"{ADDRESS}:18511", "web2": f"{ADDRESS}:18512"},
    "rollout-app2": {"web1": f"{ADDRESS}:18521", "web2": f"{ADDRESS}:18522", "web3": f"{ADDRESS}:18523"},
}
PROCESSES = {"rollout-app1": {"web1": 4, "web2": 4}, "rollout-app2": {"web1": 3, "web2": 3, "web3": 2}}
RUN_DIRS = {"rollout-app1": "/run/uwsgi", "rollout-app2": "/run/uwsgi-alt"}
DAPHNE = {"rollout-app1": [f"{ADDRESS}:18531", f"{ADDRESS}:18532"],
          "rollout-app2": [f"{ADDRESS}:18541", f"{ADDRESS}:18542", f"{ADDRESS}:18543"]}
DISTRO = os.environ.get("WEBSTACK_DISTRO", "bookworm")
BUILD = os.path.join(PROJECT, "build")
FIGURES = {}


# ---------------------------------------------------------------- helpers

def docker(host, *argv, check=True):
    out = subprocess.run(["docker", "exec", host, *argv], capture_output=True, text=True, timeout=60)
    if check:
        assert out.returncode == 0, out.stderr
    return out.stdout


def stats(host, instance):
    """The stats document of one instance, read inside its host (root-only socket)."""
    code = ("import socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);d=b''\n"
            "while True:\n c=s.recv(65536)\n if not c: break\n d+=c\nsys.stdout.write(d.decode())")
    return json.loads(docker(host, "python3", "-c", code, f"{RUN_DIRS[host]}/{instance}/stats.sock"))


def worker_pids(host, instance):
    return {w["id"]: w["pid"] for w in stats(host, instance)["workers"]}


def all_pids():
    return {h: {i: worker_pids(h, i) for i in instances} for h, instances in APP_HOSTS.items()}


def host_state():
    """What a check run must leave alone: worker pids, current, the release dirs, supervisor's pids."""
    return {h: {"pids": {i: worker_pids(h, i) for i in APP_HOSTS[h]},
                "current": current_release(h),
                "releases": docker(h, "ls", "/srv/demo/releases").split(),
                "programs": re.findall(r"^(\S+)\s+\S+\s+pid (\d+)", docker(h, "supervisorctl", "status", check=False), re.M)}
            for h in APP_HOSTS}


def assert_check_run(run, expected):
    """A --check run: exit 0, per app host the plan of the switch ({host: (from, to)})
    naming that host's own instances and daphne processes, and no switch task ran."""
    assert run.returncode == 0, run.text[-4000:]
    for host, (old, new) in expected.items():
        plan = re.search(rf"Check mode, nothing changed: {host} would go from release (\S+) to (\S+) \((.*?)restart (.*?) one at a time",
                         run.text, re.S)
        assert plan, run.text[-4000:]
        assert plan.groups()[0] == old
        assert new is None or plan.groups()[1] == new, plan.group(0)
        targets = " ".join(plan.group(3).split())
        wanted = " workers, then ".join(f"{i} with {n}" for i, n in PROCESSES[host].items())
        assert f"chain-reload {wanted} workers behind the health gates" in targets, targets
        programs = [p.strip() for p in " ".join(plan.group(4).split()).split(",")]
        assert programs == [f"daphne:daphne{n}" for n in range(len(DAPHNE[host]))], programs
    for title in ("Point current at release", "Reload each uWSGI instance", "Import the new release's applications"):
        assert task_results(run.text, title) <= {"skipping"}, title


def task_results(text, title):
    """The result words (ok, changed, skipping, fatal, ...) printed under the task banners starting with title."""
    found = set()
    for block in re.split(r"^TASK \[", text, flags=re.M)[1:]:
        if block.startswith(title):
            body = re.split(r"^(?:PLAY|RUNNING HANDLER) ", block, flags=re.M)[0]
            found.update(re.findall(r"^(ok|changed|skipping|fatal|failed|included):", body, re.M))
    return found


def accepting(host, instance):
    workers = stats(host, instance)["workers"]
    return len(workers) == PROCESSES[host][instance] and all(w["accepting"] and w["pid"] > 0 for w in workers)


def instance_healthz(host, instance):
    """The probe answer of every worker of the instance, asked over its own TCP socket."""
    seen = uwsgi_protocol.probe_workers(APP_HOSTS[host][instance], PROCESSES[host][instance], timeout=15)
    assert not seen["missing"], (host, instance, seen)
    assert sorted(seen["workers"]) == list(range(1, PROCESSES[host][instance] + 1))
    return seen["answers"]


def daphne_target(address):
    host, port = address.rsplit(":", 1)
    return "tcp", (host, int(port))


FAILURE_LINE = re.compile(r"(Rollout of|Rollback to) release (\S+) stopped on host (\S+), instance (\S+), "
                          r"worker (\S+?): (.*?); (current put back on release \S+ \(.*?\)|putting .*?); "
                          r"no further host is touched\.")


def failure_line(run):
    """The one line a failed switch ends with (host, instance, worker, reason, put-back)."""
    lines = [m for m in FAILURE_LINE.finditer(" ".join(run.text.split()))]
    assert lines, run.text[-4000:]
    line = lines[-1]
    reason = line.group(6)
    assert "Unknown error" not in reason and "Body:" not in reason and "Traceback" not in reason, line.group(0)
    return line


def current_release(host):
    return os.path.basename(docker(host, "readlink", "/srv/demo/current").strip())


def playbook(name, *extra):
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
           os.path.join(PROJECT, "playbooks", name), *extra]
    started = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=dict(os.environ))
    out.seconds = round(time.time() - started, 1)
    # Failures go to stderr under molecule's ansible.cfg: search both, without colours.
    out.text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + "\n" + out.stderr)
    return out


def host_durations(stdout):
    """{host: seconds} from the playbook's per-host summary lines."""
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"(rollout-app\d): release \S+ -> \S+ in ([0-9.]+) s", stdout)}


class Load:
    """loadgen.py in the background, with a steady window before the action."""

    def __init__(self, name, steady=10):
        self.dir = tempfile.mkdtemp(prefix=f"rollout-{name}-")
        self.out = os.path.join(self.dir, "load.json")
        self.marks = os.path.join(self.dir, "load.marks")
        self.pid_file = os.path.join(self.dir, "load.pid")
        self.proc = subprocess.Popen(
            [sys.executable, os.path.join(PROJECT, "tests", "load", "loadgen.py"), "run", "--url", FRONT,
             "--out", self.out, "--marks", self.marks, "--pid-file", self.pid_file,
             "--mix", "6:http:/cpu?ms=2", "--mix", "3:http:/healthz", "--mix", "1:ws:/ws/echo/",
             "--concurrency", "4", "--rate", "40", "--duration", "600", "--requests", "60000"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.mark("steady")
        time.sleep(steady)

    def mark(self, name):
        with open(self.marks, "a", encoding="utf-8") as handle:
            handle.write(f"{name} {time.time():.4f}\n")

    def stop(self, tail=3):
        time.sleep(tail)
        self.mark("after")
        time.sleep(1)
        self.proc.send_signal(signal.SIGTERM)
        output, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, output
        with open(self.out, encoding="utf-8") as handle:
            doc = json.load(handle)
        shutil.rmtree(self.dir, ignore_errors=True)
        return doc["summary"]


def figures(summary, durations, seconds):
    steady, during = summary["windows"]["steady"], summary["windows"]["rollout"]
    return {
        "requests": summary["requests"],
        "errors": summary["errors"],
        "non_2xx": summary["non_2xx"],
        "connection_errors": summary["connection_errors"],
        "ws_failures": summary["ws_failures"],
        "timeouts": summary["timeouts"],
        "by_kind": {k: v["requests"] for k, v in summary["by_kind"].items()},
        "steady": {"requests": steady["requests"], "p50_ms": steady["p50_ms"], "p99_ms": steady["p99_ms"]},
        "rollout": {"requests": during["requests"], "p50_ms": during["p50_ms"], "p99_ms": during["p99_ms"],
                    "seconds": during["seconds"]},
        "host_seconds": durations,
        "playbook_seconds": seconds,
        "error_samples": summary["error_samples"][:5],
    }


def record(name, data):
    FIGURES[name] = data
    print(f"\n=== rollout figures ({DISTRO}) {name}: {json.dumps(data, indent=1)}")
    os.makedirs(BUILD, exist_ok=True)
    with open(os.path.join(BUILD, f"rollout-{DISTRO}.json"), "w", encoding="utf-8") as handle:
        json.dump(FIGURES, handle, indent=1)


@pytest.fixture(scope="module")
def releases():
    """v2 (harmless change) and v3 (fails at import) made from the demo project."""
    base = tempfile.mkdtemp(prefix="rollout-releases-")
    demo = os.path.join(PROJECT, "examples", "demo")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.sqlite3", ".venv", "venv", "static_collected")
    for name in ("v2", "v3", "v4"):
        shutil.copytree(demo, os.path.join(base, name), ignore=ignore)
        with open(os.path.join(base, name, "MARKER"), "w", encoding="utf-8") as handle:
            handle.write(f"release {name} of the rollout scenario\n")
    with open(os.path.join(base, "v3", "demo", "wsgi.py"), "a", encoding="utf-8") as handle:
        handle.write('\nraise ImportError("v3 is broken on purpose")\n')
    with open(os.path.join(base, "v4", "demo", "urls.py"), "a", encoding="utf-8") as handle:
        handle.write('\nfrom django.http import HttpResponse  # noqa: E402\n\n'
                     'urlpatterns[1] = path("healthz", lambda request: HttpResponse("down on purpose", status=503))\n')
    yield {name: os.path.join(base, name) for name in ("v2", "v3", "v4")}
    shutil.rmtree(base, ignore_errors=True)


@pytest.fixture(scope="module")
def initial():
    return {h: current_release(h) for h in APP_HOSTS}


# ---------------------------------------------------------------- tests

def test_layout_follows_the_inventory():
    """Each app host runs the instances and daphne processes its inventory names
    (supervisor programs, stats sockets in its run dir), and the front's upstream
    lists exactly those sockets and daphne addresses."""
    for host, instances in APP_HOSTS.items():
        status = docker(host, "supervisorctl", "status", check=False)
        running = set(re.findall(r"^(\S+)\s+RUNNING", status, re.M))
        expected = {f"uwsgi-{i}" for i in instances} | {f"daphne:daphne{n}" for n in range(len(DAPHNE[host]))}
        assert expected <= running, status
        assert not {p for p in running if p.startswith("uwsgi-")} - expected, status
        for instance in instances:
            assert accepting(host, instance), (host, instance)
    site = docker("rollout-front", "cat", "/etc/nginx/sites-enabled/demo.conf")
    uwsgi_upstream = site.split("upstream demo_uwsgi {", 1)[1].split("}", 1)[0]
    daphne_upstream = site.split("upstream demo_daphne {", 1)[1].split("}", 1)[0]
    primaries = re.findall(r"^\s*server (\S+) max_fails=\d+ fail_timeout", uwsgi_upstream, re.M)
    assert sorted(primaries) == sorted(s for i in APP_HOSTS.values() for s in i.values()), uwsgi_upstream
    daphne = re.findall(r"^\s*server (\S+) max_fails=\d+ fail_timeout", daphne_upstream, re.M)
    assert sorted(daphne) == sorted(a for h in DAPHNE.values() for a in h), daphne_upstream


def test_uwsgi_probe_over_each_instance_socket(initial):
    """Every worker of every instance answers the probe over the instance's own
    socket: its release, the instance, its worker id (1..N) and its pid."""
    for host, instances in APP_HOSTS.items():
        for instance in instances:
            pids = set(worker_pids(host, instance).values())
            answers = instance_healthz(host, instance)
            assert {a["release"] for a in answers} == {initial[host]}, answers
            assert {a["instance"] for a in answers} == {instance}
            assert {a["pid"] for a in answers} == pids
            assert set(answers[0]) == {"release", "instance", "worker", "pid"}
            # without the var the request is the app's (Django's 404 for an unknown path)
            plain = uwsgi_protocol.uwsgi_request(APP_HOSTS[host][instance], path="/__webstack__/probe", timeout=5)
            assert plain["status"] == 404, plain


def test_daphne_probes_answer_directly(initial):
    for host, addresses in DAPHNE.items():
        for index, address in enumerate(addresses):
            target = daphne_target(address)
            answer = asgi_probe.http_get(target, "/__webstack__/probe", timeout=5)
            assert answer["status"] == 200, answer
            assert answer["json"]["release"] == initial[host]
            assert answer["json"]["process"] == f"daphne{index}" and answer["json"]["pid"] > 0
            echo = asgi_probe.websocket_echo(target, "/__webstack__/ws", timeout=5)
            assert echo["ok"] and echo["echoed"] == echo["sent"] and echo["close_code"] == 1000, echo
            # a proxy header: the app's answer, not the probe
            proxied = asgi_probe.http_get(target, "/__webstack__/probe", timeout=5,
                                          headers={"X-Forwarded-For": "10.9.8.7"})
            assert proxied["status"] == 404 and not (proxied["json"] or {}).get("process"), proxied


@pytest.mark.parametrize("headers", [{}, {"Webstack-Probe": "1"}, {"X-Webstack-Probe": "1"}, {"WEBSTACK_PROBE": "1"}])
def test_probes_refused_through_the_front(headers):
    status, _body = loadgen_get("/__webstack__/probe", headers)
    assert status == 404
    status, _body = loadgen_get("/__webstack__/probe/../probe", headers)
    assert status in (400, 404)


def test_websocket_probe_refused_through_the_front():
    with pytest.raises(asgi_probe.ProbeError) as exc:
        asgi_probe.websocket_echo(("tcp", ("127.0.0.1", 18580)), "/__webstack__/ws", timeout=5)
    assert exc.value.reason == "status" and exc.value.details["status"] == 404
    # the app's own websocket still works through the front
    assert asgi_probe.websocket_echo(("tcp", ("127.0.0.1", 18580)), "/ws/echo/", timeout=5)["ok"]


def loadgen_get(path, headers):
    import http.client  # noqa: PLC0415
    conn = http.client.HTTPConnection("127.0.0.1", 18580, timeout=10)
    try:
        conn.request("GET", path, headers=dict({"Host": "localhost"}, **headers))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_check_mode_rollout_changes_nothing(releases, initial):
    """rollout.yml --check (release id derived from the source, as by default):
    exit 0, the plan per host, and not a pid, link or directory changed."""
    before = host_state()
    run = playbook("rollout.yml", "-e", f"rollout_source={releases['v2']}", "--check")
    print(run.text[-3000:])
    assert_check_run(run, {h: (initial[h], None) for h in APP_HOSTS})
    assert host_state() == before


def test_v2_rolls_out_under_load_without_errors(releases, initial):
    before = all_pids()
    load = Load("v2")
    load.mark("rollout")
    run = playbook("rollout.yml", "-e", f"rollout_source={releases['v2']}", "-e", "rollout_release_id=v2")
    summary = load.stop()
    print(run.stdout[-6000:])
    durations = host_durations(run.stdout)
    record("v2", figures(summary, durations, run.seconds))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert summary["requests"] > 100
    assert summary["errors"] == 0, summary["error_samples"]
    assert summary["by_kind"]["ws"]["requests"] > 0
    assert set(durations) == set(APP_HOSTS), run.stdout[-3000:]
    for host, instances in PROCESSES.items():
        for instance, processes in instances.items():
            assert f"{host} {instance}: {processes} workers replaced" in run.text, (host, instance)
    after = all_pids()
    for host, instances in APP_HOSTS.items():
        assert current_release(host) == "v2"
        for instance in instances:
            assert set(after[host][instance]) == set(before[host][instance])
            unchanged = {w for w, pid in after[host][instance].items() if pid == before[host][instance][w]}
            assert not unchanged, f"{host} {instance}: workers {unchanged} kept their pid"
            answers = instance_healthz(host, instance)
            assert {a["release"] for a in answers} == {"v2"}, answers
            assert {a["instance"] for a in answers} == {instance}
            assert {a["pid"] for a in answers} <= set(after[host][instance].values())


def assert_first_host_back_on_v2_second_untouched(run):
    """After a refused v3: the first host still (or again) on v2 with every
    worker accepting and serving v2; the switch play never reached the second."""
    assert current_release("rollout-app1") == "v2"
    for instance in APP_HOSTS["rollout-app1"]:
        assert accepting("rollout-app1", instance)
        assert {a["release"] for a in instance_healthz("rollout-app1", instance)} == {"v2"}
    assert current_release("rollout-app2") == "v2"
    second_play = run.text.split("PLAY [Roll the release out", 1)[1].split("PLAY RECAP", 1)[0]
    assert "[rollout-app2]" not in second_play


def test_broken_v3_fails_on_the_first_host_and_hurts_no_one(releases):
    before = all_pids()
    load = Load("v3")
    load.mark("rollout")
    run = playbook("rollout.yml", "-e", f"rollout_source={releases['v3']}", "-e", "rollout_release_id=v3")
    summary = load.stop()
    print(run.stdout[-6000:])
    record("v3", figures(summary, host_durations(run.stdout), run.seconds))
    assert run.returncode != 0
    message = re.search(r"Rollout of release v3 stopped on host (\S+) before any instance was touched.*", run.text)
    assert message, run.text[-4000:]
    assert message.group(1) == "rollout-app1"
    assert "ImportError: v3 is broken on purpose" in message.group(0)
    assert_first_host_back_on_v2_second_untouched(run)
    assert all_pids() == before
    assert summary["errors"] == 0, summary["error_samples"]


def test_broken_v3_past_the_preflight_is_put_back_by_the_chain(releases):
    """What a failed rollout does: with the preflight off, v3 reaches the
    chain; the chain stalls on the first worker, current goes back to v2, the
    chain finishes on v2, the host fails naming instance, worker and the
    import error, and the second host is not touched."""
    load = Load("v3-chain")
    load.mark("rollout")
    run = playbook("rollout.yml", "-e", f"rollout_source={releases['v3']}", "-e", "rollout_release_id=v3",
                   "-e", "rollout_preflight=false")
    summary = load.stop()
    print(run.text[-6000:])
    record("v3-chain", figures(summary, host_durations(run.stdout), run.seconds))
    assert run.returncode != 0
    line = failure_line(run)
    assert line.group(1, 2, 3, 4) == ("Rollout of", "v3", "rollout-app1", "web1"), line.group(0)
    assert line.group(5).isdigit(), line.group(0)
    assert "v3 is broken on purpose" in line.group(6), line.group(0)
    assert line.group(7).startswith("current put back on release v2 (web1 chain-reloaded on it"), line.group(0)
    assert_first_host_back_on_v2_second_untouched(run)
    assert summary["errors"] == 0, summary["error_samples"]


def test_check_mode_rollback_changes_nothing(initial):
    before = host_state()
    run = playbook("rollback.yml", "--check")
    print(run.text[-3000:])
    assert_check_run(run, {h: ("v2", initial[h]) for h in APP_HOSTS})
    assert host_state() == before


def test_app_gate_stops_a_release_whose_health_check_fails(releases):
    """The optional app gate: with rollout_healthcheck_path=/healthz, v4 (its
    /healthz answers 503) is stopped on the first instance after its chain
    reload, which is put back on v2; one line says where and why."""
    run = playbook("rollout.yml", "-e", f"rollout_source={releases['v4']}", "-e", "rollout_release_id=v4",
                   "-e", "rollout_healthcheck_path=/healthz")
    print(run.text[-4000:])
    assert run.returncode != 0
    line = failure_line(run)
    assert line.group(1, 2, 3, 4) == ("Rollout of", "v4", "rollout-app1", "web1"), line.group(0)
    assert "/healthz answered 503" in line.group(6), line.group(0)
    assert line.group(7).startswith("current put back on release v2"), line.group(0)
    assert_first_host_back_on_v2_second_untouched(run)


def test_rollback_returns_to_the_first_release_under_load(initial):
    load = Load("rollback", steady=5)
    load.mark("rollout")
    # with the app's health check as an extra gate, which passes
    run = playbook("rollback.yml", "-e", "rollout_healthcheck_path=/healthz")
    summary = load.stop()
    print(run.text[-6000:])
    record("rollback", figures(summary, host_durations(run.stdout), run.seconds))
    assert run.returncode == 0, run.stdout[-4000:]
    assert summary["errors"] == 0, summary["error_samples"]
    for host in APP_HOSTS:
        assert current_release(host) == initial[host]
        for instance in APP_HOSTS[host]:
            assert {a["release"] for a in instance_healthz(host, instance)} == {initial[host]}


def test_bad_input_fails_before_any_host():
    run = playbook("rollout.yml", "-e", "rollout_serial=0", "-e", "rollout_source=/nonexistent")
    assert run.returncode != 0
    assert "rollout_serial" in run.text
    assert "PLAY [Roll the release out" not in run.text

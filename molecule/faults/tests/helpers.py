"""Helpers of the faults scenario's tests (run on the controller; the test host
shares the machine's network, so its nginx answers on 127.0.0.1:18380)."""

import json
import os
import subprocess
import sys
import time
import urllib.request

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY",
                         os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
sys.path.insert(0, os.path.join(PROJECT, "tests", "load"))
import background  # noqa: E402  pylint: disable=wrong-import-position

HOST = "faults-stack"
APP = "demo"
PORT = 18380
NGINX = f"http://127.0.0.1:{PORT}"
SECRET = "molecule-faults-5d0c8e2a7b1f4c9e8a6d3b2f1e0c9a8b-not-for-production"
INSTANCES = ("web1", "web2")
PROCESSES = 4
DAPHNE_PROCESSES = 2
SUPERVISORCTL = ["supervisorctl", "-c", "/etc/supervisor/supervisord.conf"]
BUILD = os.path.join(PROJECT, "build")


def docker(*argv, check=True, timeout=60):
    out = subprocess.run(["docker", "exec", HOST, *argv], capture_output=True, text=True, timeout=timeout)
    if check:
        assert out.returncode == 0, f"{argv}: {out.stdout}{out.stderr}"
    return out


def get(path, timeout=10):
    """GET through nginx; (status, headers, body)."""
    with urllib.request.urlopen(NGINX + path, timeout=timeout) as resp:
        return resp.status, resp.headers, resp.read()


def healthz_ok(timeout=5):
    try:
        return get("/healthz", timeout)[0] == 200
    except OSError:
        return False


def stats(instance):
    """The stats document of an instance, read as root inside the host."""
    code = ("import socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);d=b''\n"
            "while True:\n c=s.recv(65536)\n if not c: break\n d+=c\nsys.stdout.write(d.decode())")
    return json.loads(docker("python3", "-c", code, f"/run/uwsgi/{instance}/stats.sock").stdout)


def programs():
    """{program: (state, pid)} from supervisorctl status."""
    out = docker(*SUPERVISORCTL, "status", check=False).stdout
    result = {}
    for line in out.splitlines():
        parts = line.split()
        if len(parts) >= 2:
            pid = None
            if "pid" in parts:
                pid = int(parts[parts.index("pid") + 1].rstrip(","))
            result[parts[0]] = (parts[1], pid)
    return result


def expected_programs():
    return {f"uwsgi-{i}" for i in INSTANCES} | {f"daphne:daphne{n}" for n in range(DAPHNE_PROCESSES)}


def all_running():
    progs = programs()
    return expected_programs() <= set(progs) and all(progs[p][0] == "RUNNING" for p in expected_programs())


def uwsgi_processes():
    """[(pid, ppid, user)] of every uwsgi process in the host."""
    out = docker("ps", "-C", "uwsgi", "-o", "pid=,ppid=,user=", check=False).stdout
    return [tuple(int(x) if x.isdigit() else x for x in line.split()) for line in out.splitlines() if line.strip()]


def stack_complete():
    """Every program RUNNING, exactly the expected uwsgi processes (no orphans), every worker accepting."""
    if not all_running():
        return False
    if len(uwsgi_processes()) != len(INSTANCES) * (PROCESSES + 1):
        return False
    try:
        for instance in INSTANCES:
            workers = stats(instance)["workers"]
            if len(workers) != PROCESSES or not all(w["pid"] > 0 and w["accepting"] for w in workers):
                return False
    except (AssertionError, ValueError, OSError):
        return False
    return healthz_ok()


def wait_for(condition, timeout, interval=0.5):
    """Seconds until condition() held (AssertionError after timeout)."""
    start = time.time()
    while True:
        if condition():
            return round(time.time() - start, 1)
        if time.time() - start > timeout:
            raise AssertionError(f"{getattr(condition, '__name__', condition)} not true after {timeout} s")
        time.sleep(interval)


def playbook(*extra):
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
           os.path.join(PROJECT, "playbooks", "site.yml"), *extra]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=dict(os.environ))


class Load(background.Background):
    """tests/load/loadgen.py in the background (bounded, loopback), one window per fault."""

    def __init__(self, name, mix=("6:http:/cpu?ms=2", "3:http:/healthz", "1:ws:/ws/echo/"), steady=3):
        self.name = name
        super().__init__(f"faults-{name}", NGINX, mix, steady=steady, rate=40, duration=400, requests=20000,
                         timeout=10, first_mark="before")

    def stop(self, tail=None):
        """Stop the generator (SIGTERM), return its summary with windows by mark."""
        return super().stop(tail)["summary"]

    def last_error(self, since, kind):
        """Seconds after `since` at which the last failed request of this kind ended (None: no failure)."""
        ends = [r["t"] + (r["latency_ms"] or 0) / 1000 for r in self.doc["requests"]
                if r["kind"] == kind and r["t"] >= since and r["outcome"] != "ok"]
        return round(max(ends) - since, 1) if ends else None

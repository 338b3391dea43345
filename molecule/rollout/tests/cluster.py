"""What the rollout scenario's test files share (run on the controller): the
hosts and their layout as the inventory (molecule.yml) sets them, commands in
a host, the stats servers, and the load generator through the front."""

import json
import os
import subprocess
import sys

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
sys.path.insert(0, os.path.join(PROJECT, "tests", "load"))
sys.path.insert(0, os.path.join(PROJECT, "plugins", "module_utils"))
import background  # noqa: E402  pylint: disable=wrong-import-position
import loadgen  # noqa: E402  pylint: disable=wrong-import-position

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
# The spare slot of each host (daphne_spare): stopped until a rollout starts it
# and stops an old process in its place, so which slot is stopped moves.
DAPHNE_SPARE = {"rollout-app1": f"{ADDRESS}:18533", "rollout-app2": f"{ADDRESS}:18544"}
DISTRO = os.environ.get("WEBSTACK_DISTRO", "bookworm")
BUILD = os.path.join(PROJECT, "build")
MIX = ["6:http:/cpu?ms=2", "3:http:/healthz", "2:http:/db", "1:ws:/ws/echo/"]


def docker(host, *argv, check=True):
    out = subprocess.run(["docker", "exec", host, *argv], capture_output=True, text=True, timeout=60, check=False)
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


def accepting(host, instance):
    workers = stats(host, instance)["workers"]
    return len(workers) == PROCESSES[host][instance] and all(w["accepting"] and w["pid"] > 0 for w in workers)


def daphne_target(address):
    host, port = address.rsplit(":", 1)
    return "tcp", (host, int(port))


class Load(background.Background):
    """loadgen.py in the background through the front (the scenario's mix); stop()
    keeps every request in self.records and returns the summary."""

    def __init__(self, name, steady=10, mix=None):
        super().__init__(f"rollout-{name}", FRONT, mix or MIX, steady=steady, rate=40, duration=1800, requests=200000)
        self.records = []

    def stop(self, tail=3):
        doc = super().stop(tail)
        self.records = doc["requests"]
        return doc["summary"]


def window_figures(records, started, ended):
    """Requests, errors, p99 and the time until whole (the end of the last failed request) in [started, ended)."""
    window = [r for r in records if started <= r["t"] < ended]
    summary = loadgen.summarize(window)
    failed = [r["t"] + (r.get("latency_ms") or 0) / 1000 for r in window if r["outcome"] != "ok"]
    return {
        "requests": summary["requests"],
        "errors": summary["errors"],
        "non_2xx": summary["non_2xx"],
        "connection_errors": summary["connection_errors"],
        "timeouts": summary["timeouts"],
        "ws_failures": summary["ws_failures"],
        "p99_ms": summary["p99_ms"],
        "errors_until_s": round(max(failed) - started, 1) if failed else 0.0,
        "error_samples": sorted({r.get("error") or str(r.get("status")) for r in window if r["outcome"] != "ok"})[:5],
    }

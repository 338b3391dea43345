"""Helpers of the project scenario's tests (run on the controller; the test
hosts share the machine's network, so their nginx and instances are on
127.0.0.1)."""

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request
import uuid

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY",
                         os.path.abspath(os.path.join(os.path.dirname(__file__), "../../..")))
sys.path.insert(0, os.path.join(PROJECT, "tests", "load"))
sys.path.insert(0, os.path.join(PROJECT, "plugins", "module_utils"))
import background  # noqa: E402  pylint: disable=wrong-import-position
import uwsgi_protocol  # noqa: E402  pylint: disable=wrong-import-position

HOST = "project-stack"
APP = "notes"
ROOT = f"/srv/{APP}"
NGINX = "http://127.0.0.1:18680"
INSTANCES = {"web1": "127.0.0.1:18611", "web2": "127.0.0.1:18612"}
PROCESSES = {"web1": 3, "web2": 2}
DAPHNE = "127.0.0.1:18631"
PROBE = "/__webstack__/probe"


def docker(host, *argv, check=True, workdir=None):
    cmd = ["docker", "exec"] + (["-w", workdir] if workdir else []) + [host, *argv]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check:
        assert out.returncode == 0, out.stderr + out.stdout
    return out.stdout


def request(url, data=None, headers=None, method=None, timeout=10):
    """(status, headers, body) of one HTTP request; error statuses are returned too."""
    req = urllib.request.Request(url, data=data, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def get(path, base=NGINX, **kwargs):
    return request(base + path, **kwargs)


def upload(name, content, base=NGINX):
    """POST one file to the project's /files/ (multipart field "file")."""
    boundary = uuid.uuid4().hex
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    return request(base + "/files/", data=body, method="POST",
                   headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})


def django_settings(host=HOST, app=APP):
    """What Django itself says in the active release (run as the app user with its environment)."""
    code = ("import json, django; django.setup(); from django.conf import settings as s; "
            "print(json.dumps({k: str(getattr(s, k)) for k in "
            "('STATIC_URL', 'STATIC_ROOT', 'MEDIA_URL', 'MEDIA_ROOT')}))")
    root = f"/srv/{app}"
    return json.loads(docker(host, "runuser", "-u", app, "--", f"{root}/bin/envexec",
                             f"{root}/current/venv/bin/python", "-c", code, workdir=f"{root}/current"))


def current_release(host=HOST, app=APP):
    return os.path.basename(docker(host, "readlink", f"/srv/{app}/current").strip())


def releases(host=HOST, app=APP):
    return sorted(docker(host, "ls", "-A", f"/srv/{app}/releases").split())


def stats(instance, run_dir="/run/uwsgi", host=HOST):
    code = ("import socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);d=b''\n"
            "while True:\n c=s.recv(65536)\n if not c: break\n d+=c\nsys.stdout.write(d.decode())")
    return json.loads(docker(host, "python3", "-c", code, f"{run_dir}/{instance}/stats.sock"))


def worker_pids():
    return {i: {w["id"]: w["pid"] for w in stats(i)["workers"]} for i in INSTANCES}


def supervisor_programs(host=HOST):
    """{program: pid} of every RUNNING supervisor program."""
    status = docker(host, "supervisorctl", "status", check=False)
    return dict(re.findall(r"^(\S+)\s+RUNNING\s+pid (\d+)", status, re.M))


def daphne_pids(host=HOST):
    return {p: pid for p, pid in supervisor_programs(host).items() if p.startswith("daphne")}


def instance_probe(address, extra_vars=None, path=PROBE):
    """A request to the instance itself over its own socket, in the uwsgi protocol."""
    return uwsgi_protocol.uwsgi_request(address, path=path, extra_vars=extra_vars, timeout=5)


def probe_all_workers(instance, address=None):
    """The probe answers of an instance, asked often enough to meet every worker."""
    seen = []
    for _ in range(PROCESSES.get(instance, 2) * 4):
        resp = instance_probe(address or INSTANCES[instance], extra_vars={"WEBSTACK_PROBE": "1"})
        assert resp["status"] == 200, resp
        seen.append(json.loads(resp["body"]))
    return seen


def playbook(name, *extra, inventory=None, args=None):
    """ansible-playbook with the scenario's inventory, or inventory, or the inventory arguments args."""
    cmd = ["ansible-playbook", *(args or ["-i", inventory or os.environ["MOLECULE_INVENTORY_FILE"]]),
           os.path.join(PROJECT, "playbooks", name), *extra]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, env=dict(os.environ))
    # Failures go to stderr under molecule's ansible.cfg: search both, without colours.
    out.text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + "\n" + out.stderr)
    return out


def copy_project(name, edits, source="notes"):
    """A copy of examples/<source> in a temporary directory, with {relative path: (old, new)} applied."""
    base = tempfile.mkdtemp(prefix=f"project-{name}-")
    target = os.path.join(base, source)
    shutil.copytree(os.path.join(PROJECT, "examples", source), target,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.sqlite3", "media", "staticfiles"))
    for path, (old, new) in edits.items():
        full = os.path.join(target, path)
        with open(full, encoding="utf-8") as handle:
            text = handle.read()
        assert old in text, (path, old)
        with open(full, "w", encoding="utf-8") as handle:
            handle.write(text.replace(old, new, 1))
    return target


BUILD = os.path.join(PROJECT, "build")


def record(name, **figures):
    """Add one test's figures under name to build/project-<distro>.json (printed too)."""
    distro = os.environ.get("WEBSTACK_DISTRO", "trixie")
    path = os.path.join(BUILD, f"project-{distro}.json")
    doc = {"distro": distro, "figures": {}}
    if os.path.exists(path):
        with open(path, encoding="utf-8") as handle:
            doc = json.load(handle)
    doc["figures"][name] = figures
    os.makedirs(BUILD, exist_ok=True)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(doc, handle, indent=1)
    print(f"=== project figures, {name}: {json.dumps(figures)}")


class Load(background.Background):
    """tests/load/loadgen.py in the background against nginx on 127.0.0.1, its
    "rollout" window opened after the steady one; stop() returns the summary."""

    def __init__(self, name, mix, url=NGINX, steady=5):
        super().__init__(f"project-{name}", url, mix, steady=steady)
        self.mark("rollout")

    def stop(self, tail=3):
        summary = super().stop(tail)["summary"]
        print(f"load: {summary['requests']} requests, {summary['errors']} errors, "
              f"samples {summary['error_samples'][:3]}")
        return summary

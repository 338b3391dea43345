"""Shared helpers for the scenario's behaviour tests (run on the controller;
the test host shares the machine's network, so its nginx is on 127.0.0.1)."""

import json
import os
import subprocess
import urllib.request

NGINX = "http://127.0.0.1:18080"
SECRET = "molecule-default-9c1f6a2be07d43d5a8e3b1f0c2d4e6a8-not-for-production"


def get(path, timeout=10):
    """GET through nginx; return (status, body)."""
    with urllib.request.urlopen(NGINX + path, timeout=timeout) as resp:
        return resp.status, resp.read()


def healthz(timeout=10):
    status, body = get("/healthz", timeout)
    assert status == 200
    return json.loads(body)


def run_converge(*extra):
    """Run the scenario's converge playbook again against the test host."""
    scenario = os.environ["MOLECULE_SCENARIO_DIRECTORY"]
    cmd = [
        "ansible-playbook",
        "-i", os.environ["MOLECULE_INVENTORY_FILE"],
        os.path.join(scenario, "converge.yml"),
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=dict(os.environ))


"""Helpers of the legacy scenario's tests (run on the controller; the test host
shares the machine's network, so its nginx answers on 127.0.0.1:18280)."""

import json
import os
import re
import subprocess
import urllib.request

PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY",
                         os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..")))
NGINX = "http://127.0.0.1:18280"
LEGACY_BIN = "/home/legacy/project/bin"
REPORT = "/var/log/webstack-supervisor-repair.log"
SOCKET = "/run/supervisor/supervisor.sock"
PROGRAMS = {"uwsgi-web1", "uwsgi-web2", "daphne:daphne0"}
# The stopped spare slot of daphne_spare (the rollout starts it).
SPARE = "daphne:daphne1"
# Where the stack listens (and where prepare.yml started the legacy processes).
STACK_ADDRESSES = ("127.0.0.1:18201", "127.0.0.1:18210", "/run/uwsgi/web2/uwsgi.sock",
                   "/run/uwsgi/web1/stats.sock", "/run/uwsgi/web2/stats.sock")
RUN_HEADER = re.compile(r"^\S+Z legacy-stack$", re.M)


def prepared(host):
    """The PIDs prepare.yml recorded: supervisord_distro, supervisord_pip, daphne, uwsgi (master)."""
    return json.loads(host.file("/root/legacy-prepared.json").content_string)


def main_pid(host):
    return int(host.check_output("systemctl show --property=MainPID --value supervisor"))


def supervised(host, pid):
    """Whether the process runs in supervisor.service's control group (the unit's supervisord or a program of it)."""
    cgroup = host.run("cat /proc/%s/cgroup", str(pid)).stdout
    return bool(re.search(r"^0::.*/system\.slice/supervisor\.service$", cgroup, re.M))


def alive(host, pid, args_part):
    """Whether PID still runs and its command line contains args_part (a reused PID does not count)."""
    out = host.run("tr '\\0' ' ' < /proc/%s/cmdline", str(pid))
    return out.rc == 0 and args_part in out.stdout


def listeners(host):
    """{address: [pid, ...]} of the listening TCP and unix sockets of processes on the test host.

    The host shares the machine's network: sockets of other containers show up
    in `ss` without processes and are left out."""
    out = {}
    for line in host.check_output("ss -Hlnptx").splitlines():
        fields = line.split()
        pids = [int(p) for p in re.findall(r"pid=(\d+)", line)]
        if len(fields) >= 5 and pids:
            out.setdefault(fields[4], []).extend(pids)
    return out


def supervisord_processes(host):
    """[(pid, args)] of every supervisord on the host."""
    rows = []
    for line in host.check_output("ps -eo pid=,args=").splitlines():
        pid, _, args = line.strip().partition(" ")
        if re.search(r"(^|\s|/)supervisord(\s|$)", args):
            rows.append((int(pid), args))
    return rows


def statuses(host, command):
    """{program: state} from `supervisorctl status` run as given (cwd included); asserts it answered."""
    out = host.run(command)
    # 3: it answered, and a program is not running (the stopped spare slot, SPARE)
    assert out.rc in (0, 3), f"{command}: rc {out.rc}: {out.stdout}{out.stderr}"
    states = {line.split()[0]: line.split()[1] for line in out.stdout.splitlines() if len(line.split()) >= 2}
    assert states and (out.rc == 3) == any(state != "RUNNING" for state in states.values()), out.stdout
    return states


def get(url, host_header="localhost", timeout=10):
    """(status, body) of a GET."""
    request = urllib.request.Request(url, headers={"Host": host_header})
    with urllib.request.urlopen(request, timeout=timeout) as resp:
        return resp.status, resp.read()


def site(*extra, timeout=900):
    """playbooks/site.yml against the scenario's inventory, with extra arguments."""
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
           os.path.join(PROJECT, "playbooks", "site.yml"), *extra]
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="0", ANSIBLE_NOCOLOR="1")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    out.stdout = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout)
    return out

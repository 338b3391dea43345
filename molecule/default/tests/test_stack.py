"""Behaviour of the converged stack: what an operator relies on."""

import asyncio
import collections
import json
import re

import pytest
import websockets
from helpers import NGINX, SECRET, get, healthz, run_converge

APP = "demo"
APP_USER = "demo"
INSTANCES = ("web1", "web2")
DAPHNE_PROCESSES = 2


def test_healthz_through_nginx():
    data = healthz()
    assert data["instance"] in INSTANCES
    assert data["pid"] > 1
    assert data["release"]


def test_requests_reach_workers_of_both_instances():
    pids = collections.defaultdict(set)
    for _ in range(200):
        data = healthz()
        pids[data["instance"]].add(data["pid"])
    assert set(pids) == set(INSTANCES), dict(pids)
    for instance, seen in pids.items():
        assert len(seen) >= 2, f"{instance}: only pids {seen} answered 200 requests"


def test_cpu_and_slow_views():
    assert get("/cpu?ms=5")[0] == 200
    assert get("/slow?ms=5")[0] == 200


def test_static_files_served_by_nginx(host):
    index = get("/")[1].decode()
    static = re.search(r'(/static/[^"\']+\.css)', index)
    assert static, "the demo page links no stylesheet"
    status, body = get(static.group(1))
    assert status == 200 and body


def test_websocket_echo_through_nginx():
    async def round_trip():
        async with websockets.connect(
            NGINX.replace("http", "ws") + "/ws/echo/",
            origin="http://127.0.0.1:18080",
            open_timeout=10,
        ) as ws:
            await ws.send("ping over nginx")
            return await asyncio.wait_for(ws.recv(), 10)

    assert "ping over nginx" in asyncio.run(round_trip())


def supervisor_programs(host):
    """{program: state} from supervisorctl over the /run socket."""
    out = host.run("supervisorctl -s unix:///run/supervisor/supervisor.sock status")
    # supervisorctl status exits 3 when a program is not running: the stopped spare slot.
    assert out.rc in (0, 3), out.stderr
    lines = [line.split() for line in out.stdout.splitlines() if line.strip()]
    return {fields[0]: fields[1] for fields in lines}


def test_every_supervisor_program_running_over_run_socket(host):
    programs = supervisor_programs(host)
    assert {f"uwsgi-{name}" for name in INSTANCES} <= set(programs), programs
    assert all(programs[f"uwsgi-{name}"] == "RUNNING" for name in INSTANCES), programs
    # daphne_processes slots run and one is stopped: the spare slot (daphne_spare). Which one
    # is stopped moves with each rollout (the switch of the deploy tests goes through it).
    slots = {name: state for name, state in programs.items() if name.startswith("daphne:")}
    assert set(slots) == {f"daphne:daphne{i}" for i in range(DAPHNE_PROCESSES + 1)}, programs
    assert sorted(slots.values()) == ["RUNNING"] * DAPHNE_PROCESSES + ["STOPPED"], programs
    assert set(programs) == set(slots) | {f"uwsgi-{name}" for name in INSTANCES}, programs


def test_supervisor_socket_is_root_only_under_run(host):
    sock = host.file("/run/supervisor/supervisor.sock")
    assert sock.is_socket
    assert (sock.user, sock.group, sock.mode) == ("root", "root", 0o700)
    assert host.file("/run/supervisor").user == "root"


def test_nothing_of_the_stack_lives_in_tmp(host):
    assert host.run("find /tmp -type s").stdout.strip() == ""
    grep = host.run("grep -rls /tmp/ /etc/supervisor /etc/uwsgi /etc/nginx/sites-enabled")
    assert grep.stdout.strip() == "", grep.stdout
    procs = host.run("ps -eo args").stdout
    assert "/tmp/" not in procs


def can_connect(host, user, path):
    """Whether USER may connect to the unix socket PATH (permissions are checked at connect)."""
    probe = host.run(
        f"runuser -u {user} -- python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('{path}')\""
    )
    return probe.rc == 0


@pytest.mark.parametrize("instance", INSTANCES)
def test_uwsgi_socket_is_for_nginx(host, instance):
    path = f"/run/uwsgi/{instance}/uwsgi.sock"
    sock = host.file(path)
    assert sock.is_socket
    assert (sock.group, sock.mode) == ("www-data", 0o660)
    assert can_connect(host, "www-data", path)
    assert not can_connect(host, "nobody", path)


@pytest.mark.parametrize("instance", INSTANCES)
def test_stats_socket_is_private(host, instance):
    path = f"/run/uwsgi/{instance}/stats.sock"
    assert host.file(path).is_socket
    for user in ("www-data", "nobody"):
        assert not can_connect(host, user, path), f"{user} can read the stats of {instance}"
    root = host.run(f"python3 -c \"import socket; s=socket.socket(socket.AF_UNIX); s.connect('{path}'); print(s.recv(64))\"")
    assert root.rc == 0 and "version" in root.stdout


def test_daphne_sockets_reachable_by_nginx_only(host):
    running = [name.split(":", 1)[1] for name, state in supervisor_programs(host).items()
               if name.startswith("daphne:") and state == "RUNNING"]
    assert len(running) == DAPHNE_PROCESSES, running
    for name in running:
        path = f"/run/daphne/{name}.sock"
        assert host.file(path).is_socket
        assert can_connect(host, "www-data", path)
        assert not can_connect(host, "nobody", path)


def test_processes_run_as_the_app_user(host):
    for proc in host.process.filter(comm="uwsgi"):
        assert proc.user == APP_USER, (proc.pid, proc.args)
    daphnes = [p for p in host.process.filter(user=APP_USER) if "daphne" in p.args]
    assert len(daphnes) == DAPHNE_PROCESSES
    root_app = [p for p in host.process.filter(user="root") if "uwsgi" in p.args or "daphne" in p.args]
    assert root_app == [], [p.args for p in root_app]
    assert len(host.process.filter(comm="uwsgi")) >= 2 * (4 + 1)


def test_env_file_is_private(host):
    env = host.file(f"/etc/{APP}/env")
    assert (env.user, env.mode) == (APP_USER, 0o600)


def test_manage_py_check_deploy(host):
    out = host.run(
        f"runuser -u {APP_USER} -- /srv/{APP}/bin/envexec /srv/{APP}/current/venv/bin/python /srv/{APP}/current/manage.py check --deploy --fail-level WARNING"
    )
    assert out.rc == 0, out.stdout + out.stderr


def test_uwsgitop_reads_a_stats_socket(host):
    out = host.run(
        "TERM=xterm timeout 4 script -qec '/srv/demo/current/venv/bin/uwsgitop /run/uwsgi/web1/stats.sock' /dev/null"
    )
    # uwsgitop is a curses program with no batch mode: run it for one refresh
    # on a pseudo-terminal and read the screen it drew.
    assert out.rc == 124, out.stdout + out.stderr  # stopped by timeout, not crashed
    assert "WID" in out.stdout and "uwsgi" in out.stdout.lower()


def test_check_mode_reports_no_change_and_leaks_no_secret(host):
    check = run_converge("--check", "--diff")
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    recap = re.findall(r"changed=(\d+)", check.stdout)
    assert recap and all(n == "0" for n in recap), check.stdout[-3000:]
    assert SECRET not in check.stdout + check.stderr
    # Nor the data tier's generated passwords.
    for path in ("/etc/webstack/postgresql/demo.json", "/etc/webstack/redis/connection.json"):
        password = json.loads(host.check_output(f"cat {path}"))["password"]
        assert password not in check.stdout + check.stderr, path


def test_a_new_secret_is_never_printed():
    new_secret = "rotated-secret-3f9b2a7c1e5d4a8b9c0d-must-stay-hidden"
    check = run_converge("--check", "--diff", "-vv", "-e", f"django_app_secret_key={new_secret}")
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-3000:]
    assert re.search(r"changed=[1-9]", check.stdout), "a new secret should show as a pending change"
    assert new_secret not in check.stdout + check.stderr


def test_the_host_is_the_chosen_release_with_systemd(host):
    """The harness itself: systemd is PID 1 and the release is the one asked for."""
    import os

    assert host.file("/proc/1/comm").content_string.strip() == "systemd"
    assert host.system_info.codename == os.environ.get("WEBSTACK_DISTRO", "bookworm")

"""The faults operators have met on their hosts, each with load running through nginx.

For each fault, tests/load/loadgen.py sends 40 requests/s (HTTP /cpu?ms=2 and
/healthz, websocket echo) to nginx on 127.0.0.1:18380: a few seconds before,
the fault, until the stack is whole again. Every outcome is counted in the
window of the fault. The table (fault, requests, errors, recovery seconds) is
written to build/faults.json and printed at the end of the run (conftest.py).

Recovery means: every supervisor program RUNNING, exactly the expected uWSGI
processes (no orphan left behind), every worker accepting, /healthz answered.
"""

import json
import os
import re
import subprocess
import time

from helpers import (APP, BUILD, DAPHNE_PROCESSES, HOST, INSTANCES, PROCESSES, SUPERVISORCTL, Load, docker,
                     expected_programs, get, healthz_ok, playbook, programs, stack_complete, stats,
                     uwsgi_processes, wait_for)

TABLE = []


def record(fault, summary, recovery, note="", expect_zero=True):
    window = summary["windows"]["fault"]
    row = {
        "fault": fault,
        "requests": window["requests"],
        "errors": window["errors"],
        "outcomes": window["outcomes"],
        "by_kind": {k: {"requests": v["requests"], "errors": v["errors"]} for k, v in window["by_kind"].items()},
        "recovery_s": recovery,
        "p99_ms": window["p99_ms"],
        "max_ms": window["max_ms"],
        "note": note,
        "error_samples": [s for s in summary["error_samples"] if s["t"] >= window["start"]][:5],
    }
    TABLE.append(row)
    os.makedirs(BUILD, exist_ok=True)
    with open(os.path.join(BUILD, "faults.json"), "w", encoding="utf-8") as handle:
        json.dump({"distro": os.environ.get("WEBSTACK_DISTRO", "bookworm"), "faults": TABLE}, handle, indent=1)
    assert window["requests"] > 0, row
    if expect_zero:
        assert window["errors"] == 0, row
    return row


def test_stack_whole_before_the_faults():
    wait_for(stack_complete, 120)


def test_1_kill_one_uwsgi_worker():
    before = {w["id"]: w["pid"] for w in stats("web1")["workers"]}
    victim = before[2]
    load = Load("worker")
    load.mark("fault")
    started = time.time()
    docker("kill", "-9", str(victim))

    def respawned():
        workers = {w["id"]: w for w in stats("web1")["workers"]}
        return workers[2]["pid"] not in (0, victim) and workers[2]["accepting"]

    wait_for(respawned, 60)
    recovery = round(time.time() - started, 1)
    wait_for(stack_complete, 60)
    time.sleep(2)
    summary = load.stop()
    after = {w["id"]: w["pid"] for w in stats("web1")["workers"]}
    assert {k: v for k, v in after.items() if k != 2} == {k: v for k, v in before.items() if k != 2}
    record("kill -9 one uWSGI worker (web1 worker 2)", summary, recovery,
           f"worker pid {victim} -> {after[2]}, master and other workers untouched")


def test_2_kill_one_uwsgi_master():
    master = programs()["uwsgi-web1"][1]
    other = programs()["uwsgi-web2"][1]
    load = Load("master")
    load.mark("fault")
    started = time.time()
    docker("kill", "-9", str(master))

    def restarted():
        state, pid = programs().get("uwsgi-web1", (None, None))
        return state == "RUNNING" and pid not in (None, master)

    wait_for(restarted, 90)
    wait_for(stack_complete, 90)
    recovery = round(time.time() - started, 1)
    time.sleep(2)
    summary = load.stop()
    assert programs()["uwsgi-web2"][1] == other, "the other instance was restarted too"
    supervisord = int(docker("systemctl", "show", "-p", "MainPID", "--value", "supervisor").stdout.strip())
    masters = {pid for pid, ppid, _ in uwsgi_processes() if ppid == supervisord}
    assert masters == {programs()["uwsgi-web1"][1], other}
    record("kill -9 one uWSGI master (web1)", summary, recovery,
           f"master pid {master} -> {programs()['uwsgi-web1'][1]}; web2 (pid {other}) served meanwhile; "
           "no orphan worker left")


def supervisor_journal(since):
    """[(epoch, message)] of supervisor.service's journal since an epoch."""
    out = docker("journalctl", "-u", "supervisor", "--since", f"@{since:.0f}", "-o", "short-unix", "--no-pager").stdout
    entries = []
    for line in out.splitlines():
        stamp, _, rest = line.partition(" ")
        try:
            entries.append((float(stamp), rest))
        except ValueError:
            continue
    return entries


def test_3_kill_supervisord():
    """systemd restarts supervisord with every program (drop-in of the supervisor role).

    With KillMode=mixed every program goes down with supervisord, by SIGKILL at
    once (no uWSGI worker is left to hang in its own shutdown): no orphan keeps
    a socket that no supervisord controls, and the new one starts them all.
    Nothing serves in between (both instances and daphne were
    children of the killed daemon), so requests fail until the new uWSGI
    sockets are bound; the note gives the timeline from the unit's journal.
    Errors are reported, not required to be zero."""
    unit = dict(line.split("=", 1) for line in docker(
        "systemctl", "show", "-p", "KillMode", "-p", "Restart", "-p", "RestartUSec", "supervisor").stdout.split())
    assert unit == {"KillMode": "mixed", "Restart": "always", "RestartUSec": "1s"}, unit
    main_pid = int(docker("systemctl", "show", "-p", "MainPID", "--value", "supervisor").stdout.strip())
    assert main_pid > 0
    before = programs()
    assert set(before) >= set(expected_programs())
    load = Load("supervisord")
    load.mark("fault")
    started = time.time()
    docker("kill", "-9", str(main_pid))

    def back():
        pid = docker("systemctl", "show", "-p", "MainPID", "--value", "supervisor").stdout.strip()
        return pid.isdigit() and int(pid) not in (0, main_pid) and stack_complete()

    wait_for(back, 180, interval=1)
    recovery = round(time.time() - started, 1)
    time.sleep(2)
    summary = load.stop()
    assert docker("systemctl", "is-active", "supervisor").stdout.strip() == "active"
    new_main = int(docker("systemctl", "show", "-p", "MainPID", "--value", "supervisor").stdout.strip())
    after = programs()
    # Every program was started again by the new supervisord: none survived its old one.
    restarted = {p for p in expected_programs() if after[p][1] != before[p][1]}
    assert restarted == set(expected_programs()), (before, after)
    masters = {pid for pid, ppid, _ in uwsgi_processes() if ppid == new_main}
    assert masters == {after[f"uwsgi-{i}"][1] for i in INSTANCES}, (new_main, uwsgi_processes())

    journal = supervisor_journal(started - 1)

    def first(text):
        times = [t for t, message in journal if text in message and t >= started - 1]
        assert times, f"no {text!r} in the journal of supervisor.service: {journal}"
        return round(times[0] - started, 1)

    exited, stopped, restarted_at = (first("Main process exited"), first("Failed with result"),
                                     first("Started supervisor.service"))
    assert exited <= stopped <= restarted_at <= recovery
    # systemd itself killed every process the dead supervisord had started (uWSGI masters and workers,
    # daphne), each by SIGKILL: none was left to stop on its own.
    killed = {int(m.group(1)) for _, message in journal
              for m in [re.search(r"Killing process (\d+) \(\S+\) with signal SIGKILL", message)] if m}
    old = {pid for p in expected_programs() for pid in [before[p][1]] if pid}
    assert old <= killed, (sorted(old - killed), journal)
    last_http, last_ws = load.last_error(started, "http"), load.last_error(started, "ws")
    record("kill -9 supervisord", summary, recovery,
           f"systemd: main process gone +{exited} s, its programs stopped +{stopped} s (KillMode=mixed: SIGKILL), "
           f"supervisord started again +{restarted_at} s (RestartSec=1s); every program RUNNING again with new "
           f"pids and no orphan, stack whole +{recovery} s. Every instance and daphne process was a child of the "
           "killed daemon, so nothing serves in between: nginx answers 502 until the new sockets are bound (last "
           f"HTTP error +{last_http} s, last websocket error +{last_ws} s; daphne starts slower than uWSGI). "
           "Requests sent while the new workers load wait in the socket backlog instead of failing",
           expect_zero=False)


def test_4_tmp_cleaner():
    before = programs()
    uwsgi_before = sorted(uwsgi_processes())
    load = Load("tmpclean")
    load.mark("fault")
    started = time.time()
    docker("sh", "-c", "find /tmp -mindepth 1 -delete; systemd-tmpfiles --clean")
    assert docker("find", "/tmp", "-mindepth", "1").stdout.strip() == ""
    time.sleep(8)
    # supervisorctl answers: 0, or 3 while a program is stopped (the spare daphne slot)
    answer = docker(*SUPERVISORCTL, "status", check=False)
    assert answer.returncode in (0, 3) and "uwsgi-web1" in answer.stdout, answer
    recovery = round(time.time() - started, 1)
    summary = load.stop()
    assert programs() == before, "a program was restarted or lost"
    assert sorted(uwsgi_processes()) == uwsgi_before
    record("tmp cleaner: everything under /tmp deleted", summary, 0.0,
           f"supervisorctl answers, every pid unchanged after {recovery} s")


def test_5_reboot():
    load = Load("reboot")
    load.mark("fault")
    started = time.time()
    restart = subprocess.run(["docker", "restart", "-t", "20", HOST], capture_output=True, text=True, timeout=120)
    assert restart.returncode == 0, restart.stderr

    def booted():
        out = docker("systemctl", "is-system-running", check=False).stdout.strip()
        return out in ("running", "degraded")

    wait_for(booted, 180, interval=1)
    wait_for(healthz_ok, 180, interval=0.5)
    wait_for(stack_complete, 180, interval=1)
    recovery = round(time.time() - started, 1)
    time.sleep(2)
    summary = load.stop()
    assert docker("systemctl", "is-system-running").stdout.strip() == "running"
    for path, owner, mode in [("/run/supervisor/supervisor.sock", "root:root", "700")]:
        assert docker("stat", "-c", "%U:%G %a %F", path).stdout.split() == [owner, mode, "socket"]
    for instance in INSTANCES:
        out = docker("stat", "-c", "%U:%G %a %F", f"/run/uwsgi/{instance}/uwsgi.sock").stdout.split()
        assert out[1:] == ["660", "socket"] and out[0].endswith(":www-data"), out
    for n in range(DAPHNE_PROCESSES):
        out = docker("stat", "-c", "%G %a %F", f"/run/daphne/daphne{n}.sock").stdout.split()
        assert out[0] == "www-data" and out[2] == "socket", out
    assert get("/healthz")[0] == 200
    record("reboot (docker restart)", summary, recovery,
           "systemd, supervisor, every program and nginx came back; /run dirs and sockets recreated with their modes",
           expect_zero=False)


def test_6_invalid_nginx_change():
    site = f"/etc/nginx/sites-available/{APP}.conf"
    before = docker("sha256sum", site).stdout
    nginx_pid = docker("cat", "/run/nginx.pid").stdout.strip()
    load = Load("nginx")
    load.mark("fault")
    started = time.time()
    # The front's role alone (its tag): the app hosts' roles have nothing to do with it.
    out = playbook("--tags", "nginx_front", "-e", '{"nginx_front_extra_server_directives": ["webstack_bogus_directive on"]}')
    elapsed = round(time.time() - started, 1)
    time.sleep(2)
    summary = load.stop()
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-3000:]
    assert 'unknown directive "webstack_bogus_directive"' in text, text[-3000:]
    assert "nginx rejected the new" in text
    assert docker("sha256sum", site).stdout == before, "the rejected site file stayed in place"
    assert docker("cat", "/run/nginx.pid").stdout.strip() == nginx_pid
    assert docker("nginx", "-t", "-q", check=False).returncode == 0
    assert healthz_ok()
    record("invalid nginx change (unknown directive)", summary, 0.0,
           f"play failed in {elapsed} s with nginx -t's message; previous site kept, nginx pid {nginx_pid} kept serving")


def test_7_kill_one_daphne():
    state, victim = programs()["daphne:daphne0"]
    assert state == "RUNNING"
    other = programs()["daphne:daphne1"][1]
    load = Load("daphne", mix=("1:http:/healthz", "3:ws:/ws/echo/"))
    load.mark("fault")
    started = time.time()
    docker("kill", "-9", str(victim))

    def restarted():
        state, pid = programs()["daphne:daphne0"]
        return state == "RUNNING" and pid != victim

    wait_for(restarted, 60)
    recovery = round(time.time() - started, 1)
    time.sleep(3)
    summary = load.stop()
    assert programs()["daphne:daphne1"][1] == other
    assert summary["windows"]["fault"]["by_kind"]["ws"]["requests"] > 0
    record("kill -9 one daphne process (daphne0)", summary, recovery,
           f"daphne0 pid {victim} -> {programs()['daphne:daphne0'][1]}; websockets went to daphne1 meanwhile")


def test_stack_whole_after_the_faults():
    wait_for(stack_complete, 120)
    assert len(uwsgi_processes()) == len(INSTANCES) * (PROCESSES + 1)

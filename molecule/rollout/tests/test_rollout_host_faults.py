"""Faults of one app host of the cluster under load through the front (run
after test_rollout.py, on the release it left everywhere).

tests/load/loadgen.py sends 40 requests/s (HTTP /cpu?ms=2, /healthz and /db,
websocket echo) to nginx on the front host (127.0.0.1:18580) while one app
host meets a fault. The other app host serves meanwhile: every fault must end
with 0 client errors. nginx takes the host out at once (a refused or reset
connection is passed to the next server, max_fails=1) and brings it back when
it is whole: the test waits until the host is whole again (every supervisor
program RUNNING with every uWSGI worker accepting and every daphne process
answering a websocket echo directly), then until the front sends requests to
each of its instances again.

  1. every program on rollout-app1 stopped (supervisorctl stop all), started again
  2. kill -9 the uWSGI master of rollout-app1's web1
  3. kill -9 supervisord on rollout-app1 (systemd restarts it with every program)
  4. reboot rollout-app1 (docker restart)
  5. the disk rollout-app2's logs go to filled (its uWSGI and daphne log dirs are
     small tmpfs mounts, molecule.yml): serving goes on, logging resumes when
     there is room again

Per fault: requests, errors, p99, seconds until the host is whole and until
the front serves from it again, written to build/host-faults-<distro>.json
and printed.
"""

import json
import os
import re
import subprocess
import time

import pytest

from cluster import APP_HOSTS, BUILD, DAPHNE, DAPHNE_SPARE, DISTRO, PROCESSES, Load, accepting, daphne_target, docker, stats, window_figures

import asgi_probe  # noqa: E402  pylint: disable=wrong-import-position

TABLE = []
FAULTED = "rollout-app1"
LOGS_FULL = "rollout-app2"
# Log directories of rollout-app2 on their own small tmpfs (molecule.yml).
LOG_MOUNTS = ("/var/log/uwsgi", "/var/log/daphne")


def programs(host):
    """{program: (state, pid)} from supervisorctl status (empty when it does not answer)."""
    out = subprocess.run(["docker", "exec", host, "supervisorctl", "status"], capture_output=True, text=True,
                         timeout=30, check=False).stdout
    return {m.group(1): (m.group(2), int(m.group(3)) if m.group(3) else None)
            for m in re.finditer(r"^(\S+)\s+(\S+)(?:\s+pid (\d+),)?", out, re.M)}


def expected_programs(host):
    return {f"uwsgi-{i}" for i in APP_HOSTS[host]} | {f"daphne:daphne{n}" for n in range(len(DAPHNE[host]))}


def host_whole(host):
    """Every uWSGI program RUNNING with every worker accepting, as many daphne
    slots RUNNING as the inventory's daphne processes (which slot is the stopped
    one moves with each rollout), each echoing."""
    try:
        progs = programs(host)
        if not all(progs.get(f"uwsgi-{i}", ("",))[0] == "RUNNING" for i in APP_HOSTS[host]):
            return False
        slots = DAPHNE[host] + [DAPHNE_SPARE[host]]
        up = [a for n, a in enumerate(slots) if progs.get(f"daphne:daphne{n}", ("",))[0] == "RUNNING"]
        if len(up) < len(DAPHNE[host]):
            return False
        if not all(accepting(host, i) for i in APP_HOSTS[host]):
            return False
        # the collection's websocket probe, asked of each process directly
        return all(asgi_probe.websocket_echo(daphne_target(a), "/__webstack__/ws", timeout=3)["ok"] for a in up)
    except (AssertionError, ValueError, OSError, asgi_probe.ProbeError):
        return False


def served(host):
    """{instance: requests its workers served} (0 for an instance whose stats server does not answer)."""
    counts = {}
    for instance in APP_HOSTS[host]:
        try:
            counts[instance] = sum(w["requests"] for w in stats(host, instance)["workers"])
        except (AssertionError, ValueError):
            counts[instance] = 0
    return counts


def wait_until(condition, bound, interval=0.5):
    """Seconds until condition() held; None when it did not within bound seconds."""
    started = time.time()
    for _ in range(int(bound / interval) + 1):
        if condition():
            return round(time.time() - started, 1)
        if time.time() - started > bound:
            break
        time.sleep(interval)
    return None


def back_in_front(host, bound=60):
    """Seconds until the front sent at least 3 requests to every instance of host (None past bound)."""
    first = served(host)
    return wait_until(lambda: all(n - first[i] >= 3 for i, n in served(host).items()), bound)


def other_hosts_pids(host):
    """Worker pids and program pids of every app host but host: a fault must leave them alone."""
    return {h: ({i: sorted(w["pid"] for w in stats(h, i)["workers"]) for i in APP_HOSTS[h]}, programs(h))
            for h in APP_HOSTS if h != host}


def run_fault(fault, host, action, bound=180):
    """Load through the front, action() (returns a note), then wait for the host whole and back in the
    front; record the fault window's figures. Returns the row."""
    assert wait_until(lambda: host_whole(host), 120) is not None, f"{host} not whole before the fault"
    others = other_hosts_pids(host)
    load = Load(f"host-fault-{len(TABLE) + 1}", steady=3)
    load.mark("fault")
    started = time.time()
    note = action()
    whole = wait_until(lambda: host_whole(host), bound)
    whole_s = None if whole is None else round(time.time() - started, 1)
    back = back_in_front(host) if whole is not None else None
    back_s = None if back is None else round(time.time() - started, 1)
    time.sleep(3)
    summary = load.stop(tail=None)
    ended = time.time()
    row = dict(fault=fault, host=host, **window_figures(load.records, started, ended),
               whole_after_s=whole_s, serving_again_after_s=back_s, note=note,
               other_hosts_untouched=other_hosts_pids(host) == others,
               by_kind={k: v["requests"] for k, v in summary["windows"]["fault"]["by_kind"].items()})
    TABLE.append(row)
    os.makedirs(BUILD, exist_ok=True)
    with open(os.path.join(BUILD, f"host-faults-{DISTRO}.json"), "w", encoding="utf-8") as handle:
        json.dump({"distro": DISTRO, "faults": TABLE}, handle, indent=1)
    print(f"\n=== host fault ({DISTRO}): {json.dumps(row, indent=1)}")
    assert whole_s is not None, f"{fault}: {host} not whole within {bound} s"
    assert back_s is not None, f"{fault}: the front sent nothing to {host} within 60 s of it being whole"
    assert row["requests"] > 100, row
    assert row["by_kind"].get("ws", 0) > 0, row
    assert row["errors"] == 0, row
    assert row["other_hosts_untouched"], f"{fault}: a process of another app host was restarted"
    return row


@pytest.fixture(scope="module", autouse=True)
def table():
    yield TABLE
    print(f"\n=== host faults ({DISTRO}), through the front under load:")
    for row in TABLE:
        print(f"  {row['fault']:<48} requests {row['requests']:>5}  errors {row['errors']:>3}  "
              f"p99 {row['p99_ms']} ms  whole +{row['whole_after_s']} s  serving +{row['serving_again_after_s']} s")


def test_1_stop_every_program_of_a_host():
    before = programs(FAULTED)

    def action():
        docker(FAULTED, "supervisorctl", "stop", "all")
        time.sleep(8)
        down = programs(FAULTED)
        assert all(down[p][0] == "STOPPED" for p in expected_programs(FAULTED)), down
        assert docker(FAULTED, "ps", "-C", "uwsgi,daphne", "-o", "pid=", check=False).strip() == ""
        docker(FAULTED, "supervisorctl", "start", "all")
        return "supervisorctl stop all, 8 s with nothing of the host running, start all"

    run_fault("every program of a host stopped, then started", FAULTED, action)
    after = programs(FAULTED)
    assert all(after[p][1] != before[p][1] for p in expected_programs(FAULTED)), (before, after)


def test_2_kill_a_uwsgi_master():
    victim = programs(FAULTED)["uwsgi-web1"][1]
    other = programs(FAULTED)["uwsgi-web2"][1]

    def action():
        docker(FAULTED, "kill", "-9", str(victim))
        return f"web1 master pid {victim} killed; supervisord starts a new one"

    run_fault("kill -9 a uWSGI master (web1)", FAULTED, action)
    after = programs(FAULTED)
    assert after["uwsgi-web1"][1] != victim and after["uwsgi-web2"][1] == other, after
    # no orphan worker of the killed master left: a master and its workers per instance
    pids = docker(FAULTED, "ps", "-C", "uwsgi", "-o", "pid=").split()
    assert len(pids) == sum(1 + n for n in PROCESSES[FAULTED].values()), pids


def test_3_kill_supervisord():
    main_pid = int(docker(FAULTED, "systemctl", "show", "-p", "MainPID", "--value", "supervisor").strip())
    assert main_pid > 0
    before = programs(FAULTED)
    since = docker(FAULTED, "date", "+%s").strip()

    def action():
        docker(FAULTED, "kill", "-9", str(main_pid))
        return (f"supervisord pid {main_pid} killed; systemd kills every program it ran (KillMode=mixed: SIGKILL) "
                "and restarts it (Restart=always) with every program")

    run_fault("kill -9 supervisord", FAULTED, action)
    new_main = int(docker(FAULTED, "systemctl", "show", "-p", "MainPID", "--value", "supervisor").strip())
    assert new_main not in (0, main_pid)
    # No process of the dead supervisord was left to end on its own (a uWSGI worker in its own shutdown
    # keeps the instance's socket open, and the front's requests queue there): systemd killed each.
    journal = docker(FAULTED, "journalctl", "-u", "supervisor", "--since", f"@{since}", "-o", "cat", "--no-pager")
    killed = {int(pid) for pid in re.findall(r"Killing process (\d+) \(\S+\) with signal SIGKILL", journal)}
    old = {pid for program in expected_programs(FAULTED) for pid in [before[program][1]] if pid}
    assert old and old <= killed, (sorted(old - killed), journal[-3000:])


def test_4_reboot_a_host():
    def action():
        out = subprocess.run(["docker", "restart", "-t", "30", FAULTED], capture_output=True, text=True,
                             timeout=180, check=False)
        assert out.returncode == 0, out.stderr
        return "docker restart -t 30: systemd stops every unit, the host boots again"

    run_fault("reboot the host", FAULTED, action, bound=240)
    assert docker(FAULTED, "systemctl", "is-system-running", check=False).strip() in ("running", "degraded")
    assert docker(FAULTED, "stat", "-c", "%a %F", "/run/supervisor/supervisor.sock").split() == ["700", "socket"]


def log_sizes(host):
    """{log file: bytes} of the uWSGI instances' logs on host."""
    return {path: int(size) for size, path in (line.split() for line in docker(
        host, "sh", "-c", "stat -c '%s %n' /var/log/uwsgi/*.log").splitlines())}


def test_5_fill_the_log_disk():
    host = LOGS_FULL
    for mount in LOG_MOUNTS:
        # a mount of its own, small (never the machine's disk)
        fields = docker(host, "findmnt", "-n", "-o", "FSTYPE,SIZE", mount).split()
        assert fields[0] == "tmpfs", (mount, fields)
    uwsgi_masters = {i: programs(host)[f"uwsgi-{i}"][1] for i in APP_HOSTS[host]}
    workers = {i: sorted(w["pid"] for w in stats(host, i)["workers"]) for i in APP_HOSTS[host]}
    state = {}

    def action():
        try:
            for mount in LOG_MOUNTS:
                docker(host, "sh", "-c", f"dd if=/dev/zero of={mount}/filler bs=64k 2>/dev/null; sync", check=False)
                assert docker(host, "df", "--output=avail", "-B1", mount).split()[-1] == "0", mount
            time.sleep(3)
            state["sizes"] = log_sizes(host)
            time.sleep(15)
            # nothing more fits: the logs did not grow while requests were served
            assert log_sizes(host) == state["sizes"]
        finally:
            for mount in LOG_MOUNTS:
                docker(host, "rm", "-f", f"{mount}/filler")
        return "uWSGI and daphne log dirs full for 18 s, then freed"

    run_fault("the disk the logs are written to full", host, action)
    assert {i: programs(host)[f"uwsgi-{i}"][1] for i in APP_HOSTS[host]} == uwsgi_masters
    assert {i: sorted(w["pid"] for w in stats(host, i)["workers"]) for i in APP_HOSTS[host]} == workers
    # logging resumes once there is room again
    grown = wait_until(lambda: any(log_sizes(host)[p] > n for p, n in state["sizes"].items()), 30)
    assert grown is not None, "no uWSGI log grew after the log disk had room again"

"""The legacy host after site.yml: one supervisord (the unit's) on a socket
under /run, the hand-started supervisord, daphne and uWSGI stopped by PID,
nothing but the stack on its sockets, the old files moved aside, a report
kept on the host; supervisorctl survives the tmp cleaner, and the stack (not
the legacy uWSGI or daphne) answers."""

import collections
import json

from helpers import (LEGACY_BIN, NGINX, PROGRAMS, REPORT, RUN_HEADER, SOCKET, SPARE, STACK_ADDRESSES, alive, get,
                     listeners, main_pid, prepared, statuses, supervised, supervisord_processes)


def test_exactly_one_supervisord_the_units(host):
    rows = supervisord_processes(host)
    assert [pid for pid, _ in rows] == [main_pid(host)], rows
    assert "/usr/bin/supervisord -n -c /etc/supervisor/supervisord.conf" in rows[0][1]


def test_its_socket_is_under_run_and_nothing_of_it_in_tmp(host):
    sock = host.file(SOCKET)
    assert sock.is_socket and (sock.user, sock.mode) == ("root", 0o700)
    held = {addr: pids for addr, pids in listeners(host).items() if main_pid(host) in pids}
    # supervisord binds a temporary name and renames it: ss shows the name it bound.
    assert held and all(addr.startswith(SOCKET) for addr in held), held
    for path in ("/tmp/supervisor.sock", "/tmp/supervisord.pid"):
        assert not host.file(path).exists, path


def test_the_stray_processes_were_stopped_by_pid(host):
    pids = prepared(host)
    assert not alive(host, pids["supervisord_pip"], "supervisord"), pids
    assert not alive(host, pids["daphne"], "legacy_app:asgi"), pids
    assert not alive(host, pids["uwsgi"], "uwsgi.ini"), pids
    # Nothing of the legacy install runs any more: no process of its user, none from its virtualenv.
    assert host.run("pgrep -u legacy").rc == 1
    assert "/opt/legacy/" not in host.check_output("ps -eo args=")
    report = host.file(REPORT).content_string
    assert f"FOUND supervisord PID {pids['supervisord_pip']} " in report, report
    assert f"FOUND daphne PID {pids['daphne']} " in report and "stopped it with SIGTERM (PIDs" in report, report
    assert f"FOUND uwsgi PID {pids['uwsgi']} " in report and "stopped it with SIGINT (PIDs" in report, report


def test_only_the_stacks_own_processes_on_its_sockets(host):
    held = listeners(host)
    for address in STACK_ADDRESSES:
        assert held.get(address), f"nothing listens on {address}: {held}"
        strays = [pid for pid in held[address] if not supervised(host, pid)]
        assert not strays, f"{address} held by {strays}, outside supervisor.service"


def test_the_old_files_were_moved_aside_not_deleted(host):
    pids = prepared(host)
    for name, needle in (("supervisord.conf", "file=/tmp/supervisor.sock"), ("uwsgi.ini", "socket = 127.0.0.1:18210")):
        assert not host.file(f"{LEGACY_BIN}/{name}").exists, name
    assert "file=/tmp/supervisor.sock" in host.file(f"{LEGACY_BIN}/supervisord.conf.tmp-socket-disabled").content_string
    assert "socket = 127.0.0.1:18210" in host.file(f"{LEGACY_BIN}/uwsgi.ini.stray-disabled").content_string
    # The stale pid file, which `uwsgi --reload uwsgi.pid` would signal, is aside too, as it was.
    assert not host.file(f"{LEGACY_BIN}/uwsgi.pid").exists
    assert host.file(f"{LEGACY_BIN}/uwsgi.pid.stray-disabled").content_string.strip() == str(pids["uwsgi"])


def test_the_report_is_kept_on_the_host_once(host):
    report = host.file(REPORT)
    assert (report.user, report.mode) == ("root", 0o600)
    text = report.content_string
    # One run found something: the idempotence run found nothing and appended nothing.
    assert len(RUN_HEADER.findall(text)) == 1, text
    for line in (f"FOUND {LEGACY_BIN}/supervisord.conf with paths under /tmp",
                 f"moved aside to {LEGACY_BIN}/supervisord.conf.tmp-socket-disabled",
                 f"FIXED: moved aside to {LEGACY_BIN}/uwsgi.ini.stray-disabled",
                 f"FIXED: moved aside to {LEGACY_BIN}/uwsgi.pid.stray-disabled",
                 "listening on 127.0.0.1:18210, unix:/run/uwsgi/web2/uwsgi.sock outside supervisor.service",
                 "listening on 127.0.0.1:18201 outside supervisor.service",
                 f"NOW one supervisord, run by supervisor.service, socket {SOCKET}"):
        assert line in text, (line, text)


def test_supervisorctl_works_after_the_tmp_cleaner(host):
    before = statuses(host, "supervisorctl status")
    assert before == dict({p: "RUNNING" for p in PROGRAMS}, **{SPARE: "STOPPED"}), before
    # The tmp cleaner of the faults scenario: everything under /tmp deleted, then systemd's own.
    host.run_expect([0], "find /tmp -mindepth 1 -delete; systemd-tmpfiles --clean")
    assert host.check_output("find /tmp -mindepth 1") == ""
    # From anywhere, also where the hand-written supervisord.conf was (supervisorctl reads ./supervisord.conf
    # first), with Debian's supervisorctl and with the pip one operators are used to.
    for command in ("supervisorctl status", f"cd {LEGACY_BIN} && supervisorctl status",
                    f"cd {LEGACY_BIN} && /opt/legacy/venv/bin/supervisorctl status"):
        assert statuses(host, command) == before, command
    for program, line in ((p, host.check_output(f"supervisorctl pid {p}")) for p in PROGRAMS):
        assert supervised(host, int(line)), (program, line)


def test_requests_through_nginx_are_answered_by_the_stack(host):
    seen, pids = collections.Counter(), set()
    for _ in range(30):
        status, body = get(NGINX + "/healthz")
        assert status == 200 and b"legacy" not in body, body
        doc = json.loads(body)
        assert doc["server"] == "uwsgi", doc
        seen[doc["instance"]] += 1
        pids.add(doc["pid"])
    assert set(seen) == {"web1", "web2"}, seen
    assert all(supervised(host, pid) for pid in pids), pids


def test_daphne_port_is_the_stacks_daphne(host):
    status, body = get("http://127.0.0.1:18201/healthz")
    assert status == 200 and b"legacy" not in body, body
    doc = json.loads(body)
    assert doc["server"] == "asgi" and supervised(host, doc["pid"]), doc

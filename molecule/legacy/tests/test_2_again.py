"""A process started by hand again on the stack's daphne port, after the
adoption: check mode reports it and changes nothing, supervisor_repair=false
fails naming it and changes nothing, a real run stops it by PID (and only it)
and appends to the report."""

import re
import time

from helpers import REPORT, RUN_HEADER, alive, listeners, site, statuses, supervised

PORT = "127.0.0.1:18201"


def flat(text):
    """Output with every run of whitespace made one space (the callback wraps long lines)."""
    return " ".join(text.split())


def wait_listening(host, address, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if listeners(host).get(address):
            return listeners(host)[address]
        time.sleep(0.5)
    raise AssertionError(f"nothing listens on {address} after {timeout} s")


def test_a_new_stray_is_reported_in_check_mode_refused_without_repair_then_stopped(host):
    host.run_expect([0], "supervisorctl stop daphne:daphne0")
    stack_pids = {p: int(host.check_output(f"supervisorctl pid {p}")) for p in ("uwsgi-web1", "uwsgi-web2")}
    host.run_expect([0], "cd /home/legacy && setsid -f sh -c 'echo $$ >/root/stray.pid; exec setpriv --reuid=legacy "
                         "--regid=legacy --init-groups python3 -m http.server 18201 --bind 127.0.0.1 "
                         ">/dev/null 2>&1 </dev/null'")
    held = wait_listening(host, PORT)
    stray = int(host.file("/root/stray.pid").content_string)
    assert held == [stray]
    report_before = host.file(REPORT).content_string

    check = site("--check", "--tags", "supervisor_repair")
    assert check.returncode == 0, check.stdout[-3000:] + check.stderr[-2000:]
    assert re.search(rf"FOUND python3 PID {stray} \(user legacy.*listening on {PORT} outside supervisor.service; "
                     r"WOULD FIX \(check mode\): stopped it with SIGTERM", flat(check.stdout)), check.stdout
    assert re.search(r"legacy-stack\s+: ok=\d+\s+changed=[1-9]", check.stdout), "check mode must show the pending stop"
    assert alive(host, stray, "http.server")
    assert host.file(REPORT).content_string == report_before

    refused = site("--tags", "supervisor_repair", "-e", "supervisor_repair=false")
    assert refused.returncode != 0
    assert re.search(rf"NOT fixed \(supervisor_repair is false\): python3 PID {stray} .*listening on {PORT}",
                     flat(refused.stdout + refused.stderr)), refused.stdout[-2000:] + refused.stderr[-2000:]
    assert alive(host, stray, "http.server")
    assert host.file(REPORT).content_string == report_before

    fixed = site("--tags", "supervisor_repair")
    assert fixed.returncode == 0, fixed.stdout[-3000:] + fixed.stderr[-2000:]
    assert not alive(host, stray, "http.server")
    report = host.file(REPORT).content_string
    assert report.startswith(report_before) and len(RUN_HEADER.findall(report)) == 2, report
    assert f"FOUND python3 PID {stray} (user legacy" in report[len(report_before):]
    # Only the stray went: the instances the unit's supervisord runs kept their PIDs.
    assert {p: int(host.check_output(f"supervisorctl pid {p}")) for p in stack_pids} == stack_pids

    host.run_expect([0], "supervisorctl start daphne:daphne0")
    assert statuses(host, "supervisorctl status")["daphne:daphne0"] == "RUNNING"
    assert all(supervised(host, pid) for pid in wait_listening(host, PORT))

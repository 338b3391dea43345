"""The harness gives a host with systemd as PID 1 that Ansible converged."""

import os


def test_systemd_is_pid_one(host):
    assert host.file("/proc/1/comm").content_string.strip() == "systemd"


def test_system_is_running(host):
    state = host.run("systemctl is-system-running").stdout.strip()
    assert state in ("running", "degraded"), state


def test_release_is_the_chosen_one(host):
    wanted = os.environ.get("WEBSTACK_DISTRO", "bookworm")
    assert host.system_info.codename == wanted
    assert host.file("/etc/webstack-smoke").content_string.strip() == wanted


def test_pip_trusts_the_system_bundle(host):
    conf = host.file("/etc/pip.conf")
    assert conf.mode == 0o644
    assert "cert = /etc/ssl/certs/ca-certificates.crt" in conf.content_string

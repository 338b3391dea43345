"""Hostile and wrong input: each row must fail before anything changes.

Run against a converged host (the `faults` molecule scenario imports this
module into its verify step; standalone it is skipped unless
MOLECULE_INVENTORY_FILE and WEBSTACK_BADINPUT_HOST are set). For each row,
playbooks/site.yml runs in check mode, limited to the roles' validation
(argument specs and the `*_validate` tags), with the row's extra vars. It must
exit non-zero with a message naming the variable. A snapshot of the host's
configuration, the active release and the pids of every program, taken before
and after the whole table, must be identical. One row more runs the whole
play for real (no check mode, no tags): it must stop in validation with
changed=0 everywhere.
"""

import json
import os
import re
import subprocess
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", os.path.abspath(os.path.join(HERE, "..", "..")))
SITE = os.path.join(PROJECT, "playbooks", "site.yml")
INVENTORY = os.environ.get("MOLECULE_INVENTORY_FILE")
HOST = os.environ.get("WEBSTACK_BADINPUT_HOST")
APP = os.environ.get("WEBSTACK_BADINPUT_APP", "demo")
VALIDATE_TAGS = "postgresql_validate,redis_validate,django_app_validate,supervisor_validate,uwsgi_validate,daphne_validate,nginx_front_validate"
SHORT_SECRET = "short-secret-4b1d"
SHORT_PASSWORD = "pw-4b1d-short"

pytestmark = pytest.mark.skipif(
    not (INVENTORY and HOST), reason="needs a converged host: MOLECULE_INVENTORY_FILE and WEBSTACK_BADINPUT_HOST")

WEB1 = {"name": "web1", "processes": 4}
WEB2 = {"name": "web2", "processes": 4}

# (id, extra vars, regexes the failure output must match: the variable named)
ROWS = [
    ("instances-not-a-list", {"uwsgi_instances": "web1"}, [r"uwsgi_instances"]),
    ("processes-wrong-type", {"uwsgi_instances": [{"name": "web1", "processes": "many"}, WEB2]},
     [r"processes", r"uwsgi_instances"]),
    ("instance-without-name", {"uwsgi_instances": [{"processes": 2}]}, [r"name", r"uwsgi_instances"]),
    ("duplicate-instance-names", {"uwsgi_instances": [WEB1, dict(WEB1)]}, [r"uwsgi_instances.*unique names"]),
    ("two-instances-one-socket", {"uwsgi_instances": [dict(WEB1, socket="127.0.0.1:18391"),
                                                      dict(WEB2, socket="127.0.0.1:18391")]},
     [r"uwsgi_instances.*unique sockets"]),
    ("no-instance", {"uwsgi_instances": []}, [r"uwsgi_instances must hold at least one"]),
    ("processes-0", {"uwsgi_instances": [dict(WEB1, processes=0), WEB2]}, [r"uwsgi_instances\[0\] \(web1\): processes"]),
    ("threads-0", {"uwsgi_instances": [WEB1, dict(WEB2, threads=0)]}, [r"uwsgi_instances\[1\] \(web2\).*threads=0"]),
    ("min-worker-lifetime-negative", {"uwsgi_instances": [WEB1, dict(WEB2, min_worker_lifetime=-1)]},
     [r"uwsgi_instances\[1\] \(web2\).*min_worker_lifetime=-1"]),
    ("instance-name-with-space", {"uwsgi_instances": [WEB1, {"name": "web 2"}]}, [r"uwsgi_instances\[1\]\.name 'web 2'"]),
    ("chain-reload-without-lazy-apps", {"uwsgi_instances": [dict(WEB1, lazy_apps=False), WEB2]},
     [r"uwsgi_instances\[0\] \(web1\): lazy_apps must be true when chain_reload"]),
    ("uwsgi-socket-under-tmp", {"uwsgi_instances": [dict(WEB1, socket="/tmp/web1.sock"), WEB2]},
     [r"uwsgi_instances\[0\]\.socket", r"/tmp/web1\.sock"]),
    ("uwsgi-run-dir-under-var-tmp", {"uwsgi_run_dir": "/var/tmp/uwsgi"}, [r"uwsgi_run_dir", r"/var/tmp/uwsgi"]),
    ("uwsgi-tcp-socket-public", {"uwsgi_instances": [dict(WEB1, socket="0.0.0.0:18392"), WEB2]},
     [r"uwsgi_instances \(web1\)\.socket '0\.0\.0\.0:18392'"]),
    ("listen-above-somaxconn", {"uwsgi_instances": [dict(WEB1, listen=1000000), WEB2]},
     [r"uwsgi_instances \(web1\)\.listen = 1000000 exceeds net\.core\.somaxconn"]),
    ("uwsgi-user-root", {"uwsgi_user": "root"}, [r"uwsgi_user"]),
    ("supervisor-socket-under-tmp", {"supervisor_socket_path": "/tmp/supervisor.sock"},
     [r"supervisor_socket_path \(/tmp/supervisor\.sock\)"]),
    ("supervisor-conf-dir-under-var-tmp", {"supervisor_conf_dir": "/var/tmp/conf.d"},
     [r"supervisor_conf_dir \(/var/tmp/conf\.d\)"]),
    ("unknown-front", {"nginx_front_backend": "haproxy"}, [r"nginx_front_backend"]),
    ("unknown-balance", {"nginx_front_balance": "random"}, [r"nginx_front_balance"]),
    ("listen-port-out-of-range", {"nginx_front_listen_port": 70000}, [r"nginx_front_listen_port"]),
    ("listen-port-zero", {"nginx_front_listen_port": 0}, [r"nginx_front_listen_port"]),
    ("tls-port-out-of-range", {"nginx_front_tls_certificate": "/etc/ssl/certs/ssl-cert-snakeoil.pem",
                               "nginx_front_tls_certificate_key": "/etc/ssl/private/ssl-cert-snakeoil.key",
                               "nginx_front_tls_port": 65536}, [r"nginx_front_tls_port"]),
    ("tls-certificate-missing", {"nginx_front_tls_certificate": "/etc/ssl/certs/no-such-cert.pem",
                                 "nginx_front_tls_certificate_key": "/etc/ssl/private/no-such-key.pem",
                                 "nginx_front_tls_port": 18343},
     [r"nginx_front_tls_certificate.*/etc/ssl/certs/no-such-cert\.pem"]),
    ("tls-certificate-without-key", {"nginx_front_tls_certificate": "/etc/ssl/certs/ca-certificates.crt"},
     [r"nginx_front_tls_certificate_key"]),
    ("next-upstream-proxy-only-condition", {"nginx_front_uwsgi_next_upstream": ["error", "http_502"]},
     [r"nginx_front_uwsgi_next_upstream"]),
    ("daphne-processes-0", {"daphne_processes": 0}, [r"daphne_processes <= 64 \(got 0\)"]),
    ("daphne-processes-wrong-type", {"daphne_processes": "two"}, [r"daphne_processes"]),
    ("daphne-port-out-of-range", {"daphne_bind": "tcp", "daphne_port_base": 65535}, [r"daphne_port_base"]),
    ("daphne-wildcard-bind", {"daphne_bind": "tcp", "daphne_host": "0.0.0.0", "daphne_port_base": 18393},
     [r"daphne_host"]),
    ("daphne-unknown-bind", {"daphne_bind": "udp"}, [r"daphne_bind"]),
    ("app-name-dot-dot", {"django_app_name": "../etc"}, [r"django_app_name.*\.\./etc"]),
    ("app-name-with-space", {"django_app_name": "my app"}, [r"django_app_name.*my app"]),
    ("release-id-shell-metacharacters", {"django_app_release_id": "v1;rm -rf /;$(id)"},
     [r"django_app_release_id.*v1;rm -rf"]),
    ("secret-key-too-short", {"django_app_secret_key": SHORT_SECRET}, [r"django_app_secret_key"]),
    ("env-key-invalid", {"django_app_environment": {"BAD-KEY": "x"}}, [r"django_app_environment.*BAD-KEY"]),
    ("keep-releases-0", {"django_app_keep_releases": 0}, [r"django_app_keep_releases"]),
    ("allowed-hosts-empty", {"django_app_allowed_hosts": []}, [r"django_app_allowed_hosts"]),
    ("app-source-missing", {"django_app_source": ""}, [r"django_app_source must be the directory on the controller .*manage\.py"]),
    ("env-name-invalid", {"django_app_env_names": {"secret_key": "BAD-NAME"}}, [r"django_app_env_names.*BAD-NAME"]),
    ("env-names-not-distinct", {"django_app_env_names": {"debug": "DJANGO_SECRET_KEY"}},
     [r"django_app_env_names values must be distinct"]),
    ("env-names-unknown-key", {"django_app_env_names": {"colour": "APP_COLOUR"}}, [r"django_app_env_names", r"colour"]),
    ("shared-path-absolute", {"django_app_shared_paths": ["/etc"]}, [r"django_app_shared_paths.*'/etc'"]),
    ("shared-path-dot-dot", {"django_app_shared_paths": ["media/../../etc"]},
     [r"django_app_shared_paths.*media/\.\./\.\./etc"]),
    ("shared-path-empty", {"django_app_shared_paths": [""]}, [r"django_app_shared_paths items must be distinct, non-empty"]),
    ("check-fail-level-unknown", {"django_app_check_fail_level": "FATAL"}, [r"django_app_check_fail_level", r"FATAL"]),
    ("check-deploy-wrong-type", {"django_app_check_deploy": "maybe"}, [r"django_app_check_deploy"]),
    ("static-url-relative", {"nginx_front_static_url": "static/"}, [r"nginx_front_static_url.*static/"]),
    # The data tier: listening, ports, names, passwords.
    ("pg-listen-wildcard", {"postgresql_listen_addresses": ["0.0.0.0"]},
     [r"postgresql_listen_addresses must hold .*never listens on a public or wildcard address.*0\.0\.0\.0"]),
    ("pg-listen-public", {"postgresql_listen_addresses": ["127.0.0.1", "203.0.113.7"], "postgresql_listen_private": True},
     [r"postgresql_listen_addresses .*203\.0\.113\.7"]),
    ("pg-listen-private-without-flag", {"postgresql_listen_addresses": ["127.0.0.1", "10.0.0.5"]},
     [r"postgresql_listen_private must be true to listen on the private addresses \['10\.0\.0\.5'\]"]),
    ("pg-port-out-of-range", {"postgresql_port": 70000}, [r"postgresql_port must be a TCP port.*70000"]),
    ("pg-port-wrong-type", {"postgresql_port": "fast"}, [r"postgresql_port"]),
    ("pg-database-bad-name", {"postgresql_database": "demo;drop"}, [r"postgresql_database \(which defaults to django_app_name\) must be .*demo;drop"]),
    ("pg-database-reserved", {"postgresql_database": "template1"}, [r"postgresql_database \(which defaults to django_app_name\) must be .*template1"]),
    ("pg-user-upper-case", {"postgresql_user": "Demo"}, [r"postgresql_user must be .*Demo"]),
    ("pg-password-short", {"postgresql_password": SHORT_PASSWORD},
     [r"postgresql_password must be empty \(generated\) or at least 16 characters.*13 characters, value not shown"]),
    ("pg-client-public", {"postgresql_client_addresses": ["203.0.113.0/24"]},
     [r"postgresql_client_addresses must list loopback or private.*203\.0\.113\.0/24"]),
    ("pg-connect-public", {"postgresql_connect_address": "198.51.100.1"}, [r"postgresql_connect_address.*198\.51\.100\.1"]),
    ("redis-listen-wildcard", {"redis_listen_addresses": ["0.0.0.0"]},
     [r"redis_listen_addresses must hold .*0\.0\.0\.0"]),
    ("redis-listen-private-without-flag", {"redis_listen_addresses": ["192.168.10.4"]},
     [r"redis_listen_private must be true .*192\.168\.10\.4"]),
    ("redis-port-0", {"redis_port": 0}, [r"redis_port must be a TCP port"]),
    ("redis-db-16", {"redis_db": 16}, [r"redis_db must be a database number from 0 to 15 \(got 16\)"]),
    ("redis-password-short", {"redis_password": SHORT_PASSWORD}, [r"redis_password must be empty"]),
    ("redis-maxmemory-bad", {"redis_maxmemory": "lots"}, [r"redis_maxmemory must be empty \(no limit\) or a size"]),
    ("redis-policy-unknown", {"redis_maxmemory_policy": "random"}, [r"redis_maxmemory_policy"]),
    ("app-database-incomplete", {"django_app_database": {"host": "10.0.0.9"}},
     [r"django_app_database must be \{\} .*hold host, port"]),
    ("app-redis-url-not-redis", {"django_app_redis_url": "http://10.0.0.9:6379/0"},
     [r"django_app_redis_url must be empty .*redis://"]),
]

RESULTS = {}
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def docker(*argv):
    out = subprocess.run(["docker", "exec", HOST, *argv], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


def snapshot():
    """Checksums of the stack's configuration, the active release, the programs' pids."""
    files = docker("sh", "-c",
                   f"find /etc/uwsgi /etc/supervisor /etc/nginx /etc/{APP} /etc/tmpfiles.d /etc/logrotate.d "
                   f"/etc/postgresql /etc/redis /etc/webstack "
                   f"-type f -print0 | sort -z | xargs -0 sha256sum")
    links = docker("sh", "-c", f"readlink /srv/{APP}/current; find /etc/nginx/sites-enabled -printf '%p %l\\n' | sort")
    programs = docker("supervisorctl", "-c", "/etc/supervisor/supervisord.conf", "pid", "all")
    nginx = docker("sh", "-c", "cat /run/nginx.pid")
    data = docker("sh", "-c", "systemctl show -p MainPID --value 'postgresql@*-main' redis-server")
    return {"files": files, "links": links, "programs": programs, "nginx": nginx, "data": data}


def run_site(extra_vars, *args, fast=True):
    # Plain text: molecule forces colours, which would hide `fatal:` at the start of a line.
    env = dict(os.environ, ANSIBLE_FORCE_COLOR="false", ANSIBLE_NOCOLOR="true")
    if fast:
        # Validation needs only the distribution facts, gathered once for both plays.
        env.update(ANSIBLE_GATHERING="smart", ANSIBLE_GATHER_SUBSET="min")
    with tempfile.NamedTemporaryFile("w", suffix=".json", prefix="badinput-", delete=False) as handle:
        json.dump(extra_vars, handle)
    try:
        cmd = ["ansible-playbook", "-i", INVENTORY, SITE, "-e", "@" + handle.name, *args]
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)
        out.stdout, out.stderr = ANSI.sub("", out.stdout), ANSI.sub("", out.stderr)
        return out
    finally:
        os.unlink(handle.name)


@pytest.fixture(scope="module")
def host_before():
    """The host as converged, before the table; compared after it (last test)."""
    return snapshot()


@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_fails_naming_the_variable(host_before, row):
    name, extra, patterns = row
    out = run_site(extra, "--check", "--diff", "--tags", VALIDATE_TAGS)
    text = out.stdout + out.stderr
    refusal = re.search(r"^(?:fatal|failed): \[", text, re.M)
    failed = re.findall(r"TASK \[([^\]]+)\]", text[:refusal.start()] if refusal else "")
    RESULTS[name] = {"rc": out.returncode, "failed_task": failed[-1] if failed else None}
    assert failed, f"{name}: no task named before the refusal\n{text[-3000:]}"
    assert out.returncode != 0, f"{name}: accepted\n{text[-3000:]}"
    assert re.search(r"^(fatal|failed): \[|\[ERROR\]|ERROR!", text, re.M), text[-3000:]
    recap = re.findall(r"changed=(\d+)", out.stdout)
    assert all(n == "0" for n in recap), out.stdout[-2000:]
    # The message is on one logical line of the failure; newlines collapsed.
    flat = re.sub(r"\s+", " ", text.replace("\\n", " "))
    for pattern in patterns:
        assert re.search(pattern, flat), f"{name}: no {pattern!r} in the failure:\n{text[-3000:]}"
    assert SHORT_SECRET not in text and SHORT_PASSWORD not in text


def test_real_run_stops_in_validation_before_any_change(host_before):
    """No check mode, no tags: the whole site play stops at the uwsgi role's validation, changed=0."""
    out = run_site({"uwsgi_instances": [dict(WEB1, processes=0), WEB2]}, fast=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-3000:]
    assert "uwsgi_instances[0] (web1): processes" in text
    recap = re.findall(r"changed=(\d+)", out.stdout)
    assert recap and all(n == "0" for n in recap), out.stdout[-3000:]


def test_host_unchanged_by_the_whole_table(host_before):
    after = snapshot()
    for key in host_before:
        assert after[key] == host_before[key], f"{key} changed:\nbefore:\n{host_before[key]}\nafter:\n{after[key]}"
    build = os.path.join(PROJECT, "build")
    os.makedirs(build, exist_ok=True)
    with open(os.path.join(build, "badinput.json"), "w", encoding="utf-8") as handle:
        json.dump({"rows": [dict(row=name, **result) for name, result in RESULTS.items()]}, handle, indent=1)

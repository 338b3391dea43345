"""The data tier on the single host: PostgreSQL and Redis run, listen only
where allowed, let the app in with the exported passwords and nobody with a
wrong one; the connection files and the env file stay private."""

import json
import os
import re

import pytest

APP = "demo"
APP_USER = "demo"
# This scenario's ports (overridable to point the module at another scenario's host).
PG_PORT = int(os.environ.get("WEBSTACK_TEST_PG_PORT", "18091"))
REDIS_PORT = int(os.environ.get("WEBSTACK_TEST_REDIS_PORT", "18092"))
PG_FILE = f"/etc/webstack/postgresql/{APP}.json"
REDIS_FILE = "/etc/webstack/redis/connection.json"
ENVEXEC = f"/srv/{APP}/bin/envexec"

# Run as the app user with the app's environment: connect with what the env
# file exports (nothing of it on a command line).
PG_LOGIN = """
import os, sys, urllib.parse, psycopg2
u = urllib.parse.urlsplit(os.environ["DATABASE_URL"])
password = sys.argv[1] if len(sys.argv) > 1 and sys.argv[1] else urllib.parse.unquote(u.password)
dbname = sys.argv[2] if len(sys.argv) > 2 else u.path[1:]
with psycopg2.connect(host=u.hostname, port=u.port, dbname=dbname, user=urllib.parse.unquote(u.username),
                      password=password, connect_timeout=5) as conn, conn.cursor() as cur:
    cur.execute("SELECT current_user, current_database(), inet_server_port()")
    print(" ".join(str(v) for v in cur.fetchone()))
"""
REDIS_PING = """
import os, socket, sys, urllib.parse
url = urllib.parse.urlsplit(os.environ["REDIS_URL"])
password = sys.argv[1] if len(sys.argv) > 1 else urllib.parse.unquote(url.password)
def cmd(*words):
    return ("*%d\\r\\n" % len(words) + "".join("$%d\\r\\n%s\\r\\n" % (len(w), w) for w in words)).encode()
s = socket.create_connection((url.hostname, url.port), timeout=5)
s.sendall(cmd("AUTH", password) + cmd("PING") + cmd("CONFIG", "GET", "save") + cmd("CONFIG", "GET", "appendonly"))
data = b""
while data.count(b"\\r\\n") < 12 and not data.startswith(b"-"):
    chunk = s.recv(4096)
    if not chunk:
        break
    data += chunk
print(data.decode().replace("\\r\\n", "|"))
"""


def as_app(host, code, *args):
    """Run python3 CODE ARGS as the app user, with the app's environment (envexec)."""
    return host.run(" ".join(["runuser -u %s -- %s python3 -c %s"] + ["%s"] * len(args)), APP_USER, ENVEXEC, code, *args)


def connection(host, path):
    return json.loads(host.check_output(f"cat {path}"))


def listeners(host, name, user):
    """{address:port} of the TCP and UDP sockets of the processes called NAME in this host.

    Run as the server's own user: root in the container lacks CAP_SYS_PTRACE, so
    its `ss -p` cannot name the processes of other users."""
    out = host.check_output(f"runuser -u {user} -- ss -Hlntup")
    return {line.split()[4] for line in out.splitlines() if f'(("{name}"' in line}


def env_file(host):
    return dict(re.findall(r"^([A-Z_]+)=(.*)$", host.check_output(f"cat /etc/{APP}/env"), re.M))


@pytest.mark.parametrize("unit", ["postgresql", "redis-server"])
def test_data_services_run_and_start_at_boot(host, unit):
    service = host.service(unit)
    assert service.is_enabled
    if unit == "postgresql":
        version = host.check_output("ls /etc/postgresql")
        service = host.service(f"postgresql@{version}-main")
    assert service.is_running


def test_postgresql_listens_on_loopback_and_its_port_only(host):
    assert listeners(host, "postgres", "postgres") == {f"127.0.0.1:{PG_PORT}"}


def test_redis_listens_on_loopback_and_its_port_only(host):
    assert listeners(host, "redis-server", "redis") == {f"127.0.0.1:{REDIS_PORT}"}


@pytest.mark.parametrize("path", [PG_FILE, REDIS_FILE])
def test_connection_files_are_root_only(host, path):
    f = host.file(path)
    assert (f.user, f.group, f.mode) == ("root", "root", 0o600)
    assert host.file(path.rsplit("/", 1)[0]).mode == 0o700


def test_env_file_exports_the_data_tier(host):
    pg, redis = connection(host, PG_FILE), connection(host, REDIS_FILE)
    assert len(pg["password"]) == 32 and pg["password"].isalnum()
    assert (pg["host"], pg["port"], pg["name"], pg["user"]) == ("127.0.0.1", PG_PORT, APP, APP)
    env = env_file(host)
    assert env["DATABASE_URL"].strip("'") == f"postgres://{APP}:{pg['password']}@127.0.0.1:{PG_PORT}/{APP}"
    assert env["REDIS_URL"].strip("'") == f"redis://:{redis['password']}@127.0.0.1:{REDIS_PORT}/0"
    f = host.file(f"/etc/{APP}/env")
    assert (f.user, f.mode) == (APP_USER, 0o600)


def test_app_logs_in_to_postgresql_with_the_exported_settings(host):
    out = as_app(host, PG_LOGIN)
    assert out.rc == 0, out.stderr
    assert out.stdout.split() == [APP, APP, str(PG_PORT)]


def test_postgresql_refuses_a_wrong_password(host):
    out = as_app(host, PG_LOGIN, "wrong-password-0000")
    assert out.rc != 0
    assert "password authentication failed" in out.stderr


def test_postgresql_admits_the_app_role_to_its_database_only(host):
    out = as_app(host, PG_LOGIN, "", "postgres")
    assert out.rc != 0 and "no pg_hba.conf entry" in out.stderr, out.stdout + out.stderr


def test_postgresql_stores_scram_verifiers(host):
    sql = (f"SELECT current_setting('password_encryption'), rolpassword LIKE 'SCRAM-SHA-256$%' "
           f"FROM pg_authid WHERE rolname = '{APP}'")
    out = host.check_output(f"runuser -u postgres -- psql -p {PG_PORT} -Atc \"{sql}\"")
    assert out == "scram-sha-256|t"
    rules = host.check_output(f"runuser -u postgres -- psql -p {PG_PORT} -Atc "
                              "\"SELECT type, array_to_string(database, ','), array_to_string(user_name, ','), "
                              "coalesce(address, ''), auth_method, coalesce(error, '') FROM pg_hba_file_rules\"")
    lines = sorted(rules.splitlines())
    assert lines == sorted(["local|all|postgres||peer|",
                            f"host|{APP}|{APP}|127.0.0.1|scram-sha-256|",
                            f"host|{APP}|{APP}|::1|scram-sha-256|"]), lines


def test_redis_answers_the_exported_password_without_persistence(host):
    out = as_app(host, REDIS_PING)
    assert out.rc == 0, out.stderr
    assert out.stdout.strip().startswith("+OK|+PONG|"), out.stdout
    assert "|save|$0||" in out.stdout and "|appendonly|$2|no|" in out.stdout, out.stdout


def test_redis_refuses_a_wrong_password_and_none(host):
    out = as_app(host, REDIS_PING, "wrong-password-0000")
    assert out.stdout.startswith("-WRONGPASS") or out.stdout.startswith("-ERR"), out.stdout
    none = host.run(f"python3 -c \"import socket; s=socket.create_connection(('127.0.0.1', {REDIS_PORT})); "
                    "s.sendall(b'PING\\r\\n'); print(s.recv(200).decode())\"")
    assert none.stdout.startswith("-NOAUTH"), none.stdout


def test_no_password_in_world_readable_files_or_command_lines(host):
    secrets = [connection(host, PG_FILE)["password"], connection(host, REDIS_FILE)["password"]]
    pattern = " ".join(f"-e '{s}'" for s in secrets)
    # Every world-readable file where configuration, logs and data live (the
    # virtualenvs' packages skipped: pip wrote them, not the roles).
    world = host.check_output(f"find /etc /srv /var/log /var/lib /run /tmp /root /home -xdev -name venv -prune -o "
                              f"-type f -perm -o=r -size -2M -print0 2>/dev/null | xargs -0 grep -lsF {pattern} || true").split()
    assert world == [], world
    readers = host.check_output(f"grep -rlsF {pattern} /etc /srv /var/log /run /tmp || true").split()
    assert set(readers) <= {PG_FILE, REDIS_FILE, f"/etc/{APP}/env", "/etc/redis/redis.conf"}, readers
    redis_conf = host.file("/etc/redis/redis.conf")
    assert (redis_conf.user, redis_conf.mode) == ("redis", 0o640)
    ps = host.check_output("ps -eo args")
    assert not any(s in ps for s in secrets)

"""Security audit of the converged host (after the faults and the reboot).

- Only nginx listens on non-loopback addresses, on its configured port(s).
- No uWSGI, daphne or app process runs as root; the supervisor socket is 0700
  root; stats sockets refuse www-data and nobody; app sockets are 0660 with the
  nginx group; the env file is 0600.
- The secret key is in no log, no process command line, no world-readable
  file, no `ansible-playbook -v` output; nor are the data tier's passwords.
- PostgreSQL and Redis listen on loopback and their ports only; their
  connection files are root-only.
- nginx sends no version and sends the security headers.
"""

import json
import re
import urllib.error

import pytest
from helpers import APP, DAPHNE_PROCESSES, INSTANCES, PORT, SECRET, docker, get, playbook

APP_USER = APP
SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "SAMEORIGIN",
    "Referrer-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def listeners(user=None):
    """[(proto, local address, port, process names)] of sockets owned by processes of this host.

    The host shares the machine's network namespace, so `ss` also lists the
    machine's sockets; only those of processes in this container's pid
    namespace carry a process name, and only they are this host's. Root in the
    container lacks CAP_SYS_PTRACE: it names only the processes it may trace;
    USER (a server's own user) names that user's processes."""
    out = docker(*(["runuser", "-u", user, "--"] if user else []), "ss", "-Hlntup").stdout
    result = []
    for line in out.splitlines():
        if "users:" not in line:
            continue
        fields = line.split()
        local = fields[4]
        address, _, port = local.rpartition(":")
        names = sorted(set(re.findall(r'\("([^"]+)",pid=', line)))
        result.append((fields[0], address, int(port), names))
    return result


def is_loopback(address):
    address = address.strip("[]").split("%")[0]
    return address.startswith("127.") or address == "::1"


def test_only_nginx_listens_beyond_loopback():
    found = listeners()
    public = [entry for entry in found if not is_loopback(entry[1])]
    assert public, f"nginx not seen listening: {found}"
    assert all(names == ["nginx"] for _, _, _, names in public), public
    assert {port for _, _, port, _ in public} == {PORT}, public


DATA_LISTENERS = {"postgres": {("127.0.0.1", 18391)}, "redis-server": {("127.0.0.1", 18392)}}
DATA_USERS = {"postgres": "postgres", "redis-server": "redis"}
DATA_FILES = ("/etc/webstack/postgresql/demo.json", "/etc/webstack/redis/connection.json")


@pytest.mark.parametrize("name", sorted(DATA_LISTENERS))
def test_data_servers_listen_on_loopback_and_their_port_only(name):
    found = {(address, port) for proto, address, port, names in listeners(DATA_USERS[name]) if name in names}
    assert found == DATA_LISTENERS[name], found


def data_passwords():
    return [json.loads(docker("cat", path).stdout)["password"] for path in DATA_FILES]


def test_data_passwords_in_no_log_and_no_world_readable_file():
    for path in DATA_FILES:
        assert stat(path)[:3] == ("root", "root", "600"), path
    passwords = data_passwords()
    pattern = " ".join(f"-e '{p}'" for p in passwords)
    hits = docker("sh", "-c", f"grep -rlsF {pattern} /etc /var /srv /run /tmp /root /home /opt || true").stdout.split()
    assert set(hits) <= {f"/etc/{APP}/env", "/etc/redis/redis.conf", *DATA_FILES}, hits
    assert stat("/etc/redis/redis.conf")[:3] == ("redis", "redis", "640")
    world = docker("sh", "-c", f"find / -xdev -type f -perm -o=r -size -2M -print0 2>/dev/null | "
                   f"xargs -0 grep -lsF {pattern} || true", timeout=300).stdout.split()
    assert world == [], world
    ps = docker("ps", "-eo", "args").stdout
    assert not any(p in ps for p in passwords)


def test_no_stack_process_has_an_inet_socket():
    found = listeners()
    stack = [e for e in found if set(e[3]) & {"uwsgi", "daphne", "supervisord", "python3", "python"}]
    assert stack == [], stack


def test_no_app_process_runs_as_root():
    out = docker("ps", "-eo", "user:32=,args=").stdout
    stack = [line.split(None, 1) for line in out.splitlines()
             if re.search(r"uwsgi|daphne|envexec|manage\.py|/srv/", line)]
    assert len([s for s in stack if "uwsgi" in s[1]]) == len(INSTANCES) * 5, stack
    assert len([s for s in stack if "daphne" in s[1]]) >= DAPHNE_PROCESSES, stack
    root = [s for s in stack if s[0] == "root"]
    assert root == [], root
    assert {s[0] for s in stack} == {APP_USER}, stack


def stat(path):
    user, group, mode, kind = docker("stat", "-c", "%U %G %a %F", path).stdout.split(None, 3)
    return user, group, mode, kind.strip()


def can_connect(user, path):
    probe = docker("runuser", "-u", user, "--", "python3", "-c",
                   "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])", path, check=False)
    return probe.returncode == 0


def test_supervisor_socket_is_root_only():
    assert stat("/run/supervisor/supervisor.sock") == ("root", "root", "700", "socket")
    for user in ("www-data", "nobody", APP_USER):
        assert not can_connect(user, "/run/supervisor/supervisor.sock"), user


@pytest.mark.parametrize("instance", INSTANCES)
def test_stats_socket_refuses_others(instance):
    path = f"/run/uwsgi/{instance}/stats.sock"
    assert stat(path)[3] == "socket"
    for user in ("www-data", "nobody"):
        assert not can_connect(user, path), f"{user} reaches the stats of {instance}"
    root = docker("python3", "-c", "import socket,sys; s=socket.socket(socket.AF_UNIX); s.connect(sys.argv[1]);"
                  " print(s.recv(64))", path)
    assert "version" in root.stdout


@pytest.mark.parametrize("instance", INSTANCES)
def test_app_socket_is_for_the_nginx_group(instance):
    path = f"/run/uwsgi/{instance}/uwsgi.sock"
    user, group, mode, kind = stat(path)
    assert (group, mode, kind) == ("www-data", "660", "socket")
    assert can_connect("www-data", path)
    assert not can_connect("nobody", path)


def test_daphne_sockets_are_for_the_nginx_group():
    # daphne creates its sockets 0666: the directory (app user, nginx group, no access for others) guards them.
    assert stat("/run/daphne")[:3] == (APP_USER, "www-data", "2750")
    for n in range(DAPHNE_PROCESSES):
        path = f"/run/daphne/daphne{n}.sock"
        assert stat(path)[3] == "socket"
        assert can_connect("www-data", path)
        assert not can_connect("nobody", path)


def test_env_file_is_private():
    assert stat(f"/etc/{APP}/env")[:3] == (APP_USER, APP_USER, "600")


def test_secret_is_in_no_log_and_no_other_readable_file():
    hits = docker("sh", "-c", f"grep -rlsF -e '{SECRET}' /etc /var /srv /run /tmp /root /home /opt || true").stdout.split()
    assert hits == [f"/etc/{APP}/env"], hits
    world = docker("sh", "-c", f"find / -xdev -type f -perm -o=r -size -2M -print0 2>/dev/null | "
                   f"xargs -0 grep -lsF -e '{SECRET}' || true", timeout=300).stdout.split()
    assert world == [], world
    assert SECRET not in docker("ps", "-eo", "args").stdout


def test_secret_is_in_no_verbose_play_output_and_check_mode_is_clean():
    out = playbook("-v", "--check", "--diff")
    text = out.stdout + out.stderr
    assert out.returncode == 0, text[-3000:]
    assert SECRET not in text
    assert not any(p in text for p in data_passwords())
    recap = re.findall(r"changed=(\d+)", out.stdout)
    assert recap and all(n == "0" for n in recap), out.stdout[-3000:]


def app_headers(instance, path):
    """[(name, value)] of the app's own response to GET path, straight from an instance's socket (as root)."""
    code = ("import socket,struct,sys\n"
            "v={'REQUEST_METHOD':'GET','PATH_INFO':sys.argv[2],'QUERY_STRING':'','SERVER_NAME':'localhost',"
            "'SERVER_PORT':'80','SERVER_PROTOCOL':'HTTP/1.1','HTTP_HOST':'localhost','wsgi.url_scheme':'http'}\n"
            "b=b''.join(struct.pack('<H',len(x))+x for kv in v.items() for x in (kv[0].encode(),kv[1].encode()))\n"
            "s=socket.socket(socket.AF_UNIX);s.settimeout(10);s.connect(sys.argv[1])\n"
            "s.sendall(struct.pack('<BHB',0,len(b),0)+b);d=b''\n"
            "while True:\n c=s.recv(65536)\n if not c: break\n d+=c\n"
            "sys.stdout.write(d.split(b'\\r\\n\\r\\n')[0].decode())")
    head = docker("python3", "-c", code, f"/run/uwsgi/{instance}/uwsgi.sock", path).stdout.splitlines()
    assert head and head[0].startswith("HTTP/1.1 200"), head
    return [tuple(part.strip() for part in line.split(":", 1)) for line in head[1:]]


@pytest.mark.parametrize("instance", INSTANCES)
def test_app_sends_its_own_security_headers(instance):
    """Django sends X-Frame-Options DENY and the others itself: without uwsgi_hide_header in the
    front, each would go out twice (the app's copy and the front's); the test below sees them once."""
    sent = app_headers(instance, "/healthz")
    names = [name for name, _ in sent]
    assert ("X-Frame-Options", "DENY") in sent, sent
    assert [n for n in SECURITY_HEADERS if n in names] == list(SECURITY_HEADERS), sent


@pytest.mark.parametrize("path", ["/", "/healthz", "/static/", "/static/no-such-file.css", "/no-such-page/"])
def test_nginx_hides_its_version_and_sends_security_headers(path):
    try:
        status, headers, body = get(path)
    except urllib.error.HTTPError as err:
        status, headers, body = err.code, err.headers, err.read()
    assert headers["Server"] == "nginx", headers["Server"]
    assert not re.search(rb"nginx/\d", body)
    for name, value in SECURITY_HEADERS.items():
        # Once, with the front's value: two different values (the app's and
        # nginx's) make browsers ignore X-Frame-Options altogether.
        assert headers.get_all(name) == [value], (status, name, headers.get_all(name))

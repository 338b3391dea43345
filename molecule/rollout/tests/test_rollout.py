"""Rollout under load (run on the controller, in file order).

0. The probes: every uWSGI worker answers GET /__webstack__/probe over its
   instance's own socket (with the uwsgi var WEBSTACK_PROBE=1) naming its
   release, instance, worker id and pid; each daphne process answers its HTTP
   probe and websocket probe directly; through nginx the probe, a forged
   attempt and the websocket probe are all refused. The inventory sets no
   rollout_healthcheck_path: the rollouts below are gated by the probes alone.
1. Release v2 (a new field on demo.Message and a new table, migration
   demo.0002) rolled across both app hosts while tests/load/loadgen.py sends
   HTTP (/cpu?ms=2, /healthz, /db which reads the shared PostgreSQL) and
   websocket echo traffic (over the Redis channel layer) through nginx: no
   error of any kind, every worker pid changed, every instance reports v2.
   The migration ran once, on one host, before any flip: one row in
   django_migrations on the data host, one migrate line in the output.
   A second migrate by hand on the other app host while the lock is held
   waits for it and then finds nothing pending. A group chat between two
   clients that the front sent to different app hosts delivers 10 of 10.
   v5, whose migration fails, is refused before any host flips, naming the
   migration; every host stays on v2, no error under load. PostgreSQL and
   then Redis restarted on the data host under load: errors and the time
   until whole are reported; the app recovers within a bound without any
   of its processes restarted.
   50 long-lived websocket echo sessions (a message every 0.5 s each) held
   through the v2 rollout. Each app host has a stopped spare daphne slot
   (daphne_spare): the rollout starts it on v2, tells every daphne process
   still on v1 (of both hosts) to stop accepting, stops one v1 process and
   restarts the others in place, so a session a drain cuts can only
   reconnect to a process on v2: at most one cut per session, every cut with
   a close frame (1012 or 1001), reconnected within 1 s, no message lost.
   Afterwards each host runs as many daphne processes as before and one slot
   is stopped, and supervisorctl update starts none. A site.yml change (a
   variable added to the env file and an argument to daphne's) restarts
   daphne on both hosts through the stopped slot: the same figures for 50
   sessions, no HTTP error, the supervisor program unchanged; a re-run then
   changes nothing.
2. Release v3, which fails at import: the playbook fails on the first host
   naming the import error (its preflight import refuses it before the
   flip), that host is still on v2 with every worker accepting, the second
   host never left v2, the load saw no error.
   The same with the preflight off: the chain stalls on the first worker,
   current goes back to v2 and the chain finishes on it, the host fails
   naming instance, worker and the import error, with no error under load.
   v6, whose daphne fails at import after the first process of a host,
   fails in the middle of the daphne phase and is put back through the slot
   stopped then: 50 sessions, none cut more than once by the rollout or more
   than once by the put-back, no HTTP error, the second host untouched.
   Every failure ends with one line naming host, instance, worker, reason and
   the put-back.
3. The optional app gate: v4, whose /healthz answers 503, rolled out with
   rollout_healthcheck_path=/healthz, is stopped on the first instance and put
   back; rollback.yml (with that gate) back to the release before v2, under load.
4. Bad input fails before any host is touched.
rollout.yml --check (before 1) and rollback.yml --check (before 3) exit 0
with the plan of each host and change no pid, link or release directory.

Figures (requests, errors, p50/p99 steady vs rollout, duration per host; for
the restarts of the data tier errors and seconds until whole; the websocket
sessions' cuts, close codes, reconnect p50/p99, lost messages) are printed and
written to build/rollout-<distro>.json.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import tempfile
import time

import pytest
from websockets.sync.client import connect as ws_connect

from cluster import (APP_HOSTS, BUILD, DAPHNE, DAPHNE_SPARE, DISTRO, FRONT, PROCESSES, PROJECT, Load, accepting, daphne_target, docker,
                     window_figures, worker_pids)

import asgi_probe  # noqa: E402  pylint: disable=wrong-import-position
import uwsgi_protocol  # noqa: E402  pylint: disable=wrong-import-position
import ws_sessions  # noqa: E402  pylint: disable=wrong-import-position

FIGURES = {}

# The data host: PostgreSQL (the one database of both app hosts) and Redis.
DATA = "rollout-data"
PG_PORT = 18591
# The migrations the scenario's releases add to the demo (see releases()).
V2_MIGRATION = "0002_message_author_room"
V5_MIGRATION = "0003_fail_on_purpose"
# The role's migrate helper, for its lock key (derived from the database name).
_SPEC = importlib.util.spec_from_file_location("webstack_migrate", os.path.join(PROJECT, "roles", "django_app", "files", "migrate.py"))
MIGRATE_HELPER = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(MIGRATE_HELPER)
# What one test leaves for the next ones (the v2 run's output).
RUNS = {}
# The v2 and v5 rollouts back the database up before migrating, keeping one dump.
BACKUP_DIR = "/var/backups/webstack-rollout"
BACKUP = ["-e", f"rollout_backup_dir={BACKUP_DIR}", "-e", "rollout_backup_keep=1"]
BACKUP_LINE = re.compile(r"backup: database (\S+) to (\S+?):(\S+) \((\d+) bytes, .*?\) before (\d+) migration\(s\) \((.*?)\);")
# Long-lived websocket echo sessions held through the v2 rollout.
WS_SESSIONS = 50


# ---------------------------------------------------------------- helpers

def all_pids():
    return {h: {i: worker_pids(h, i) for i in instances} for h, instances in APP_HOSTS.items()}


def host_state():
    """What a check run must leave alone: worker pids, current, the release dirs, supervisor's pids."""
    return {h: {"pids": {i: worker_pids(h, i) for i in APP_HOSTS[h]},
                "current": current_release(h),
                "releases": docker(h, "ls", "/srv/demo/releases").split(),
                "programs": re.findall(r"^(\S+)\s+\S+\s+pid (\d+)", docker(h, "supervisorctl", "status", check=False), re.M)}
            for h in APP_HOSTS}


def assert_check_run(run, expected):
    """A --check run: exit 0, per app host the plan of the switch ({host: (from, to)})
    naming that host's own instances and daphne processes, and no switch task ran."""
    assert run.returncode == 0, run.text[-4000:]
    text = " ".join(run.text.split())
    for host, (old, new) in expected.items():
        plan = re.search(rf"Check mode, nothing changed: {host} would go from release (\S+) to (\S+) \((.*?)then start "
                         r"the stopped slot (\S+) on the release, tell the daphne processes on the old release of every "
                         r"app host \((.*?)\) to stop accepting, stop (\S+) \(it becomes the stopped slot\), restart (.*?) "
                         r"one at a time", text)
        assert plan, run.text[-4000:]
        assert plan.groups()[0] == old
        assert new is None or plan.groups()[1] == new, plan.group(0)
        wanted = " workers, then ".join(f"{i} with {n}" for i, n in PROCESSES[host].items())
        assert f"chain-reload {wanted} workers behind the health gates" in plan.group(3), plan.group(3)
        spare, hosts, stop, rest = plan.group(4), plan.group(5), plan.group(6), plan.group(7)
        assert hosts.split(", ") == list(APP_HOSTS), hosts
        # The slot stopped now, one running slot stopped in its place, the others restarted.
        status = docker(host, "supervisorctl", "status", check=False)
        assert re.search(rf"^{re.escape(spare)}\s+STOPPED", status, re.M), status
        slots = [f"daphne:daphne{n}" for n in range(len(DAPHNE[host]) + 1)]
        assert sorted([spare, stop] + rest.split(", ")) == slots, plan.group(0)
    for title in ("Point current at release", "Reload each uWSGI instance", "Import the new release's applications"):
        assert task_results(run.text, title) <= {"skipping"}, title


def task_results(text, title):
    """The result words (ok, changed, skipping, fatal, ...) printed under the task banners starting with title."""
    found = set()
    for block in re.split(r"^TASK \[", text, flags=re.M)[1:]:
        if block.startswith(title):
            body = re.split(r"^(?:PLAY|RUNNING HANDLER) ", block, flags=re.M)[0]
            found.update(re.findall(r"^(ok|changed|skipping|fatal|failed|included):", body, re.M))
    return found


def instance_healthz(host, instance):
    """The probe answer of every worker of the instance, asked over its own TCP socket."""
    seen = uwsgi_protocol.probe_workers(APP_HOSTS[host][instance], PROCESSES[host][instance], timeout=15)
    assert not seen["missing"], (host, instance, seen)
    assert sorted(seen["workers"]) == list(range(1, PROCESSES[host][instance] + 1))
    return seen["answers"]


FAILURE_LINE = re.compile(r"(Rollout of|Rollback to) release (\S+) stopped on host (\S+), instance (\S+), "
                          r"worker (\S+?): (.*?); (current put back on release \S+ \(.*?\)|putting .*?); "
                          r"no further host is touched\.")


def failure_line(run):
    """The one line a failed switch ends with (host, instance, worker, reason, put-back)."""
    lines = [m for m in FAILURE_LINE.finditer(" ".join(run.text.split()))]
    assert lines, run.text[-4000:]
    line = lines[-1]
    reason = line.group(6)
    assert "Unknown error" not in reason and "Body:" not in reason and "Traceback" not in reason, line.group(0)
    return line


def current_release(host):
    return os.path.basename(docker(host, "readlink", "/srv/demo/current").strip())


def playbook(name, *extra):
    cmd = ["ansible-playbook", "-i", os.environ["MOLECULE_INVENTORY_FILE"],
           os.path.join(PROJECT, "playbooks", name), *extra]
    started = time.time()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, env=dict(os.environ), check=False)
    out.seconds = round(time.time() - started, 1)
    # Failures go to stderr under molecule's ansible.cfg: search both, without colours.
    out.text = re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + "\n" + out.stderr)
    return out


def backup_of(run):
    """The one backup line of a rollout's output, checked against the dump on the data host:
    {path, bytes, pending, tables} (tables: those pg_restore --list finds in the dump)."""
    lines = BACKUP_LINE.findall(" ".join(run.text.split()))
    assert len(lines) == 1, run.text[-4000:]
    database, host, path, size, count, pending = lines[0]
    assert host == DATA and database == database_name(), lines[0]
    assert os.path.dirname(path) == BACKUP_DIR and path.endswith(".dump"), path
    # in the postgres-only directory (0700), of the size reported
    assert docker(DATA, "stat", "--format=%U %a", BACKUP_DIR).split() == ["postgres", "700"]
    assert docker(DATA, "stat", "--format=%s %U", path).split() == [size, "postgres"], (path, size)
    listing = docker(DATA, "runuser", "-u", "postgres", "--", "pg_restore", "--list", path)
    tables = sorted(set(re.findall(r"TABLE public (\S+) ", listing)))
    return {"path": path, "bytes": int(size), "pending": pending.split(", "), "count": int(count), "tables": tables,
            "dir": docker(DATA, "ls", BACKUP_DIR).split()}


def host_durations(stdout):
    """{host: seconds} from the playbook's per-host summary lines."""
    return {m.group(1): float(m.group(2))
            for m in re.finditer(r"(rollout-app\d): release \S+ -> \S+ in ([0-9.]+) s", stdout)}


def figures(summary, durations, seconds):
    steady, during = summary["windows"]["steady"], summary["windows"]["rollout"]
    return {
        "requests": summary["requests"],
        "errors": summary["errors"],
        "non_2xx": summary["non_2xx"],
        "connection_errors": summary["connection_errors"],
        "ws_failures": summary["ws_failures"],
        "timeouts": summary["timeouts"],
        "by_kind": {k: v["requests"] for k, v in summary["by_kind"].items()},
        "steady": {"requests": steady["requests"], "p50_ms": steady["p50_ms"], "p99_ms": steady["p99_ms"]},
        "rollout": {"requests": during["requests"], "p50_ms": during["p50_ms"], "p99_ms": during["p99_ms"],
                    "seconds": during["seconds"]},
        "host_seconds": durations,
        "playbook_seconds": seconds,
        "error_samples": summary["error_samples"][:5],
    }


def record(name, data):
    FIGURES[name] = data
    print(f"\n=== rollout figures ({DISTRO}) {name}: {json.dumps(data, indent=1)}")
    os.makedirs(BUILD, exist_ok=True)
    with open(os.path.join(BUILD, f"rollout-{DISTRO}.json"), "w", encoding="utf-8") as handle:
        json.dump(FIGURES, handle, indent=1)


V2_MODELS = '''

# Release v2 of the rollout scenario: a new table. The new field of Message
# (above) is nullable, so the release still serving, which does not know it,
# keeps writing rows while v2 rolls out.
class Room(models.Model):
    name = models.CharField(max_length=64, unique=True)
    created = models.DateTimeField(auto_now_add=True)
'''

V2_MIGRATION_CODE = '''from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("demo", "0001_initial")]

    operations = [
        migrations.AddField(
            model_name="message",
            name="author",
            field=models.CharField(blank=True, max_length=64, null=True),
        ),
        migrations.CreateModel(
            name="Room",
            fields=[
                ("id", models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name="ID")),
                ("name", models.CharField(max_length=64, unique=True)),
                ("created", models.DateTimeField(auto_now_add=True)),
            ],
        ),
    ]
'''

# A schema change, then an error: PostgreSQL rolls the whole migration back.
V5_MIGRATION_CODE = '''from django.db import migrations, models


def fail(apps, schema_editor):
    raise RuntimeError("v5 migration fails on purpose")


class Migration(migrations.Migration):
    dependencies = [("demo", "0002_message_author_room")]

    operations = [
        migrations.AddField(model_name="message", name="flag", field=models.BooleanField(null=True)),
        migrations.RunPython(fail, migrations.RunPython.noop),
    ]
'''


# The first daphne process that imports v6's ASGI application on a host
# serves; every later one fails at import: a rollout of v6 starts the stopped
# slot, stops one old process and fails on the next restart, in the middle of
# the daphne phase.
V6_ASGI = '''

import os as _os  # noqa: E402

with open("/tmp/rollout-v6-daphne-imports", "a", encoding="utf-8") as _marker:
    _marker.write("x")
if _os.path.getsize("/tmp/rollout-v6-daphne-imports") > 1:
    raise ImportError("v6 daphne is broken on purpose after its first process")
'''


def write(path, text, mode="w"):
    with open(path, mode, encoding="utf-8") as handle:
        handle.write(text)


@pytest.fixture(scope="module")
def releases():
    """Releases made from the demo project: v2 adds a field to demo.Message and
    the table demo.Room (migration 0002); v3 (fails at import), v4 (/healthz
    answers 503), v5 (its migration 0003 fails) and v6 (its ASGI application
    imports once per host, then fails) are made from v2."""
    base = tempfile.mkdtemp(prefix="rollout-releases-")
    demo = os.path.join(PROJECT, "examples", "demo")
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.sqlite3", ".venv", "venv", "static_collected")
    v2 = os.path.join(base, "v2")
    shutil.copytree(demo, v2, ignore=ignore)
    models_py = os.path.join(v2, "demo", "models.py")
    with open(models_py, encoding="utf-8") as handle:
        text = handle.read()
    assert "class Message(models.Model):" in text, text
    text = text.replace("class Message(models.Model):",
                        "class Message(models.Model):\n    author = models.CharField(max_length=64, null=True, blank=True)", 1)
    write(models_py, text + V2_MODELS)
    write(os.path.join(v2, "demo", "migrations", f"{V2_MIGRATION}.py"), V2_MIGRATION_CODE)
    for name in ("v3", "v4", "v5", "v6"):
        shutil.copytree(v2, os.path.join(base, name))
    for name in ("v2", "v3", "v4", "v5", "v6"):
        write(os.path.join(base, name, "MARKER"), f"release {name} of the rollout scenario\n")
    write(os.path.join(base, "v3", "demo", "wsgi.py"), '\nraise ImportError("v3 is broken on purpose")\n', "a")
    write(os.path.join(base, "v4", "demo", "urls.py"),
          '\nfrom django.http import HttpResponse  # noqa: E402\n\n'
          'urlpatterns[1] = path("healthz", lambda request: HttpResponse("down on purpose", status=503))\n', "a")
    write(os.path.join(base, "v5", "demo", "migrations", f"{V5_MIGRATION}.py"), V5_MIGRATION_CODE)
    write(os.path.join(base, "v6", "demo", "asgi.py"), V6_ASGI, "a")
    yield {name: os.path.join(base, name) for name in ("v2", "v3", "v4", "v5", "v6")}
    shutil.rmtree(base, ignore_errors=True)


# ---------------------------------------------------------------- data tier

def database_name():
    """The app database's name, from its connection file on the data host."""
    files = docker(DATA, "sh", "-c", "ls /etc/webstack/postgresql/*.json").split()
    assert len(files) == 1, files
    return json.loads(docker(DATA, "cat", files[0]))["name"]


def psql(sql, database=None):
    """One statement as the postgres superuser on the data host, unaligned output."""
    return docker(DATA, "runuser", "-u", "postgres", "--", "psql", "-X", "-v", "ON_ERROR_STOP=1", "-p", str(PG_PORT),
                  "-d", database or database_name(), "-tAc", sql).strip()


def migration_rows(name):
    return int(psql(f"SELECT count(*) FROM django_migrations WHERE app = 'demo' AND name = '{name}'"))


def message_columns():
    return set(psql("SELECT column_name FROM information_schema.columns WHERE table_name = 'demo_message'").split())


MIGRATE_MSG = re.compile(r'"msg": ("migrate: host (?:[^"\\]|\\.)*")')
MIGRATE_LINE = re.compile(r"migrate: host (\S+) release (\S+): (\{.*\})\s*$", re.S)


def migrate_lines(text):
    """[(host, release, helper JSON)] of the migrate lines a playbook printed."""
    out = []
    for match in MIGRATE_MSG.finditer(text):
        line = MIGRATE_LINE.match(json.loads(match.group(1)))
        if line:
            out.append((line.group(1), line.group(2), json.loads(line.group(3))))
    return out


def migrate_by_hand(host, release, options=None):
    """The role's migrate helper run as an operator would, on one app host; (exit code, its JSON)."""
    release_dir = f"/srv/demo/releases/{release}"
    helper = "/srv/demo/bin/webstack-migrate.py"
    if subprocess.run(["docker", "exec", host, "test", "-f", helper], timeout=30, check=False).returncode != 0:
        # The role installs the helper on the host that migrates; an operator on
        # another host puts the collection's copy there the same way.
        subprocess.run(["docker", "cp", os.path.join(PROJECT, "roles", "django_app", "files", "migrate.py"),
                        f"{host}:{helper}"], timeout=30, check=True)
        docker(host, "chown", "root:root", helper)
        docker(host, "chmod", "0644", helper)
    argument = json.dumps(dict({"release_dir": release_dir, "settings_module": "demo.settings"}, **(options or {})))
    out = subprocess.run(["docker", "exec", "-w", release_dir, host, "runuser", "-u", "demo", "--",
                          "/srv/demo/bin/envexec", f"{release_dir}/venv/bin/python", helper, argument], capture_output=True, text=True, timeout=120, check=False)
    lines = out.stdout.strip().splitlines()
    assert lines, (out.returncode, out.stderr[-3000:])
    return out.returncode, json.loads(lines[-1])


def daphne_pid_hosts():
    """{pid: {app hosts with a daphne process of that pid}} (pids of different containers may collide)."""
    found = {}
    for host in APP_HOSTS:
        status = docker(host, "supervisorctl", "status", check=False)
        for pid in re.findall(r"^daphne:\S+\s+RUNNING\s+pid (\d+)", status, re.M):
            found.setdefault(int(pid), set()).add(host)
    return found


def message_host(message, pid_hosts):
    """The app host whose daphne process delivered a chat message to its member
    (member_pid), None when the pid cannot tell (pids of two containers may collide)."""
    if message.get("host") in APP_HOSTS:
        return message["host"]
    hosts = pid_hosts.get(message.get("member_pid"), set())
    return next(iter(hosts)) if len(hosts) == 1 else None


def chat_join(room):
    return ws_connect(f"ws://127.0.0.1:18580/ws/room/{room}/", origin="http://127.0.0.1:18580",
                      open_timeout=10, close_timeout=5)


def chat_wait(client, text, timeout=10.0):
    """The chat message carrying text as client received it (others skipped), or None after timeout."""
    deadline = time.time() + timeout
    for count in range(100):
        left = deadline - time.time()
        if left <= 0 or count == 99:
            return None
        try:
            message = json.loads(client.recv(timeout=left))
        except TimeoutError:
            return None
        if message.get("text") == text:
            return message
    return None


def chat_say(client, text):
    """Send text and return the message as the sender's own process delivered it back (or None)."""
    client.send(text)
    return chat_wait(client, text)


def chat_round_trip(room):
    """One client joins room, says something and hears it back through the channel layer."""
    client = chat_join(room)
    try:
        return chat_say(client, f"ping {time.time():.3f}") is not None
    finally:
        client.close()


def front_whole():
    """Through the front: /db answers 200, a websocket echo and a group round trip work."""
    try:
        status, _body = loadgen_get("/db", {})
        if status != 200:
            return False
        if not asgi_probe.websocket_echo(("tcp", ("127.0.0.1", 18580)), "/ws/echo/", timeout=5)["ok"]:
            return False
        return chat_round_trip("whole")
    except (OSError, asgi_probe.ProbeError, ValueError) as exc:
        print(f"  not whole yet: {type(exc).__name__}: {exc}")
        return False


def wait_whole(started, bound=90.0, in_a_row=3):
    """Seconds from started until front_whole() held in_a_row times in a row; None past bound."""
    row = 0
    for attempt in range(int(bound / 0.25)):
        if time.time() - started > bound:
            break
        row = row + 1 if front_whole() else 0
        if row == in_a_row:
            print(f"  whole after {attempt + 1} checks")
            return round(time.time() - started, 1)
        time.sleep(0.25)
    return None


def app_processes():
    """Every uWSGI worker pid and supervisor program pid of every app host."""
    return {h: {"pids": {i: worker_pids(h, i) for i in APP_HOSTS[h]},
                "programs": re.findall(r"^(\S+)\s+\S+\s+pid (\d+)", docker(h, "supervisorctl", "status", check=False), re.M)}
            for h in APP_HOSTS}


@pytest.fixture(scope="module")
def initial():
    return {h: current_release(h) for h in APP_HOSTS}


# ---------------------------------------------------------------- tests

def test_layout_follows_the_inventory():
    """Each app host runs the instances and daphne processes its inventory names
    (supervisor programs, stats sockets in its run dir), and the front's upstream
    lists exactly those sockets and daphne addresses."""
    for host, instances in APP_HOSTS.items():
        status = docker(host, "supervisorctl", "status", check=False)
        running = set(re.findall(r"^(\S+)\s+RUNNING", status, re.M))
        expected = {f"uwsgi-{i}" for i in instances} | {f"daphne:daphne{n}" for n in range(len(DAPHNE[host]))}
        assert expected <= running, status
        assert re.search(rf"^daphne:daphne{len(DAPHNE[host])}\s+STOPPED", status, re.M), status
        assert not {p for p in running if p.startswith("uwsgi-")} - expected, status
        for instance in instances:
            assert accepting(host, instance), (host, instance)
    site = docker("rollout-front", "cat", "/etc/nginx/sites-enabled/demo.conf")
    uwsgi_upstream = site.split("upstream demo_uwsgi {", 1)[1].split("}", 1)[0]
    daphne_upstream = site.split("upstream demo_daphne {", 1)[1].split("}", 1)[0]
    primaries = re.findall(r"^\s*server (\S+) max_fails=\d+ fail_timeout", uwsgi_upstream, re.M)
    assert sorted(primaries) == sorted(s for i in APP_HOSTS.values() for s in i.values()), uwsgi_upstream
    daphne = re.findall(r"^\s*server (\S+) max_fails=\d+ fail_timeout", daphne_upstream, re.M)
    # Every slot, the stopped spare included (it refuses the connect, nginx passes the handshake on).
    assert sorted(daphne) == sorted([a for h in DAPHNE.values() for a in h] + list(DAPHNE_SPARE.values())), daphne_upstream


def test_uwsgi_probe_over_each_instance_socket(initial):
    """Every worker of every instance answers the probe over the instance's own
    socket: its release, the instance, its worker id (1..N) and its pid."""
    for host, instances in APP_HOSTS.items():
        for instance in instances:
            pids = set(worker_pids(host, instance).values())
            answers = instance_healthz(host, instance)
            assert {a["release"] for a in answers} == {initial[host]}, answers
            assert {a["instance"] for a in answers} == {instance}
            assert {a["pid"] for a in answers} == pids
            assert set(answers[0]) == {"release", "instance", "worker", "pid"}
            # without the var the request is the app's (Django's 404 for an unknown path)
            plain = uwsgi_protocol.uwsgi_request(APP_HOSTS[host][instance], path="/__webstack__/probe", timeout=5)
            assert plain["status"] == 404, plain


def test_daphne_probes_answer_directly(initial):
    for host, addresses in DAPHNE.items():
        for index, address in enumerate(addresses):
            target = daphne_target(address)
            answer = asgi_probe.http_get(target, "/__webstack__/probe", timeout=5)
            assert answer["status"] == 200, answer
            assert answer["json"]["release"] == initial[host]
            assert answer["json"]["process"] == f"daphne{index}" and answer["json"]["pid"] > 0
            echo = asgi_probe.websocket_echo(target, "/__webstack__/ws", timeout=5)
            assert echo["ok"] and echo["echoed"] == echo["sent"] and echo["close_code"] == 1000, echo
            # a proxy header: the app's answer, not the probe
            proxied = asgi_probe.http_get(target, "/__webstack__/probe", timeout=5,
                                          headers={"X-Forwarded-For": "10.9.8.7"})
            assert proxied["status"] == 404 and not (proxied["json"] or {}).get("process"), proxied


@pytest.mark.parametrize("headers", [{}, {"Webstack-Probe": "1"}, {"X-Webstack-Probe": "1"}, {"WEBSTACK_PROBE": "1"}])
def test_probes_refused_through_the_front(headers):
    status, _body = loadgen_get("/__webstack__/probe", headers)
    assert status == 404
    status, _body = loadgen_get("/__webstack__/probe/../probe", headers)
    assert status in (400, 404)


def test_websocket_probe_refused_through_the_front():
    with pytest.raises(asgi_probe.ProbeError) as exc:
        asgi_probe.websocket_echo(("tcp", ("127.0.0.1", 18580)), "/__webstack__/ws", timeout=5)
    assert exc.value.reason == "status" and exc.value.details["status"] == 404
    # the app's own websocket still works through the front
    assert asgi_probe.websocket_echo(("tcp", ("127.0.0.1", 18580)), "/ws/echo/", timeout=5)["ok"]


def loadgen_get(path, headers):
    import http.client  # noqa: PLC0415
    conn = http.client.HTTPConnection("127.0.0.1", 18580, timeout=10)
    try:
        conn.request("GET", path, headers=dict({"Host": "localhost"}, **headers))
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


def test_check_mode_rollout_changes_nothing(releases, initial):
    """rollout.yml --check (release id derived from the source, as by default):
    exit 0, the plan per host, and not a pid, link or directory changed."""
    before = host_state()
    run = playbook("rollout.yml", "-e", f"rollout_source={releases['v2']}", "--check")
    print(run.text[-3000:])
    assert_check_run(run, {h: (initial[h], None) for h in APP_HOSTS})
    assert host_state() == before


def test_v2_rolls_out_under_load_without_errors(releases, initial):
    before = all_pids()
    # Long-lived websocket sessions held through the rollout (checked by the next test).
    sessions = ws_sessions.Sessions("ws://127.0.0.1:18580/ws/echo/", count=WS_SESSIONS, origin=FRONT).start()
    try:
        load = Load("v2")
        load.mark("rollout")
        run = playbook("rollout.yml", "-e", f"rollout_source={releases['v2']}", "-e", "rollout_release_id=v2", *BACKUP)
        summary = load.stop()
    finally:
        RUNS["v2-websocket"] = sessions.stop()
        record("v2-websocket", RUNS["v2-websocket"])
    print(run.stdout[-6000:])
    RUNS["v2"] = run.text
    durations = host_durations(run.stdout)
    migrations = migrate_lines(run.text)
    record("v2", dict(figures(summary, durations, run.seconds),
                      migrate=[{"host": h, "release": r, **doc} for h, r, doc in migrations]))
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    # The backup before the migration: one pg_dump on the data host, of the
    # database as v1 left it (demo_message, not v2's demo_room).
    backup = backup_of(run)
    record("v2-backup", backup)
    assert "-v2-" in os.path.basename(backup["path"]) and backup["bytes"] > 1000, backup
    assert backup["pending"] == [f"demo.{V2_MIGRATION}"] and backup["count"] == 1, backup
    assert "demo_message" in backup["tables"] and "demo_room" not in backup["tables"], backup
    assert backup["dir"] == [os.path.basename(backup["path"])], backup
    # The migration ran once, on one host, before the first flip.
    assert len(migrations) == 1, migrations
    host, release, doc = migrations[0]
    assert host in APP_HOSTS and release == "v2", migrations
    assert doc["vendor"] == "postgresql" and doc["failed"] is None, doc
    assert doc["applied"] == [f"demo.{V2_MIGRATION}"], doc
    first_flip = re.search(r"^TASK \[(?:\S+ : )?Point current at release", run.text, re.M)
    assert first_flip and run.text.index(f"migrate: host {host}") < first_flip.start(), "migrated after a flip"
    assert summary["requests"] > 100
    assert summary["errors"] == 0, summary["error_samples"]
    assert summary["by_kind"]["ws"]["requests"] > 0
    assert set(durations) == set(APP_HOSTS), run.stdout[-3000:]
    for host, instances in PROCESSES.items():
        for instance, processes in instances.items():
            assert f"{host} {instance}: {processes} workers replaced" in run.text, (host, instance)
    after = all_pids()
    for host, instances in APP_HOSTS.items():
        assert current_release(host) == "v2"
        for instance in instances:
            assert set(after[host][instance]) == set(before[host][instance])
            unchanged = {w for w, pid in after[host][instance].items() if pid == before[host][instance][w]}
            assert not unchanged, f"{host} {instance}: workers {unchanged} kept their pid"
            answers = instance_healthz(host, instance)
            assert {a["release"] for a in answers} == {"v2"}, answers
            assert {a["instance"] for a in answers} == {instance}
            assert {a["pid"] for a in answers} <= set(after[host][instance].values())


def test_v2_websocket_sessions_are_drained():
    """The sessions held through the v2 rollout (on each host the stopped slot
    started on v2, every v1 process of both hosts told to stop accepting, one
    v1 process stopped, the others restarted in place): at most one cut per
    session, every cut a close frame of 1012 (the drain) or 1001, the
    reconnect within 1 s, no message lost (every sequence number echoed,
    resends after a reconnect counted once)."""
    doc = RUNS["v2-websocket"]
    print(f"  websocket sessions through the v2 rollout: {json.dumps(doc)}")
    # A cut session reconnected only to a process on v2, never cut again.
    assert_one_cut_each(doc, min_messages=WS_SESSIONS * 20)


def test_v2_left_one_stopped_slot_that_supervisor_update_leaves_stopped():
    """After the v2 rollout each host runs as many daphne processes as its
    inventory says, all on v2, and one slot is stopped (the v1 process stopped
    in place of the spare); supervisorctl update (what site.yml runs when a
    program changes) starts none of them."""
    for host, addresses in DAPHNE.items():
        status = docker(host, "supervisorctl", "status", check=False)
        running = re.findall(r"^(daphne:\S+)\s+RUNNING\s+pid (\d+)", status, re.M)
        stopped = re.findall(r"^(daphne:\S+)\s+STOPPED", status, re.M)
        assert len(running) == len(addresses) and len(stopped) == 1, status
        slots = addresses + [DAPHNE_SPARE[host]]
        for program, pid in running:
            answer = asgi_probe.http_get(daphne_target(slots[int(program.rsplit("daphne", 1)[1])]),
                                         "/__webstack__/probe", timeout=5)
            assert answer["json"]["release"] == "v2" and answer["json"]["pid"] == int(pid), (host, program, answer)
        docker(host, "supervisorctl", "update")
        again = docker(host, "supervisorctl", "status", check=False)
        assert re.findall(r"^(\S+)\s+(\S+)\s+(?:pid (\d+))?", again, re.M) == re.findall(
            r"^(\S+)\s+(\S+)\s+(?:pid (\d+))?", status, re.M), (status, again)


SITE_MARK = {"django_app_environment": {"DEMO_DB_PATH": "{{ django_app_data_dir }}/db.sqlite3",
                                        "DJANGO_SECURE_SSL_REDIRECT": "false",
                                        "DJANGO_SILENCED_SYSTEM_CHECKS": "security.W008",
                                        "WEBSTACK_ROLLOUT_SITE_MARK": "1"},
             # an argument of daphne's own: the launcher's slots file changes, the supervisor program does not
             "daphne_extra_args": ["--ping-interval", "25"]}


def daphne_slots(host):
    """{program: (state, pid)} of the host's daphne slots."""
    status = docker(host, "supervisorctl", "status", check=False)
    return {p: (s, int(pid or 0)) for p, s, pid in re.findall(r"^(daphne:\S+)\s+(\S+)\s+(?:pid (\d+))?", status, re.M)}


def assert_one_cut_each(doc, min_messages=WS_SESSIONS * 10):
    """Websocket figures of a restart through the stopped slot: every process
    went down and its sessions came back, at most one cut per session, each
    with a close frame (1012 or 1001), reconnected within 1 s, nothing lost
    (every sequence number echoed, resends after a reconnect counted once)."""
    assert doc["error"] is None and doc["sessions"] == WS_SESSIONS, doc
    assert doc["disconnects"] > 0 and doc["reconnects"] == doc["disconnects"], doc
    assert doc["max_disconnects_per_session"] <= 1, doc
    assert set(doc["close_codes"]) <= {"1012", "1001"}, doc
    assert doc["reconnect_p99_s"] <= 1.0, doc
    assert doc["messages_lost"] == 0 and doc["still_down"] == 0, doc
    assert doc["messages_echoed"] >= doc["messages_sent"] > min_messages, doc


def test_site_yml_env_change_restarts_daphne_through_the_stopped_slot():
    """An operator's change through site.yml: a variable added to the env file
    and an argument to daphne's command line on both app hosts (kept: the
    site.yml runs after this one pass the same extra vars). The daphne role's handler starts
    the stopped slot with the new env, tells every other process to stop
    accepting (both hosts, in step), stops one and restarts the others:
    50 long-lived sessions are cut at most once each, with a close frame,
    reconnect within 1 s and lose nothing; HTTP load through the front sees no
    error; every process that runs afterwards has the new env and argument,
    the supervisor program is unchanged, and one slot per host is stopped
    (the next test re-runs site.yml: it changes nothing)."""
    extra = ["-e", json.dumps(SITE_MARK)]
    before = {h: daphne_slots(h) for h in APP_HOSTS}
    programs = {h: docker(h, "cat", "/etc/supervisor/conf.d/daphne.conf") for h in APP_HOSTS}
    sessions = ws_sessions.Sessions("ws://127.0.0.1:18580/ws/echo/", count=WS_SESSIONS, origin=FRONT).start()
    try:
        load = Load("site-env", steady=5)
        load.mark("rollout")
        run = playbook("site.yml", *extra)
        summary = load.stop()
    finally:
        doc = sessions.stop()
    record("site-env-websocket", doc)
    record("site-env", figures(summary, {}, run.seconds))
    print(f"  websocket sessions through the site.yml env change: {json.dumps(doc)}")
    assert run.returncode == 0, run.text[-4000:]
    assert "Start the stopped slot" in run.text and "Tell every other daphne process to stop accepting" in run.text
    assert summary["errors"] == 0, summary["error_samples"]
    assert_one_cut_each(doc)
    for host, slots in before.items():
        after = daphne_slots(host)
        running = {p: pid for p, (state, pid) in after.items() if state == "RUNNING"}
        assert len(running) == len(DAPHNE[host]) and len(after) - len(running) == 1, (host, after)
        # every process that ran before went down; the one that runs again was the stopped slot
        assert not set(running.values()) & {pid for state, pid in slots.values()}, (host, slots, after)
        for program, pid in running.items():
            # as the processes' own user: root in a container cannot read another user's environ
            environ, cmdline = (subprocess.run(["docker", "exec", "-u", "demo", host, "cat", f"/proc/{pid}/{name}"],
                                               capture_output=True, text=True, timeout=60, check=True).stdout
                                for name in ("environ", "cmdline"))
            assert "WEBSTACK_ROLLOUT_SITE_MARK=1" in environ, (host, program)
            assert "--ping-interval\x0025" in cmdline, (host, program, cmdline)
        assert docker(host, "cat", "/etc/supervisor/conf.d/daphne.conf") == programs[host], host


def test_site_yml_after_the_rollout_leaves_the_daphne_slots_alone():
    """site.yml re-run (with the extra vars of the change above) after the v2
    rollout and the restart through the stopped slot: it succeeds, no task of
    the daphne role reports a change, and every daphne slot keeps its state
    and pid (the slot stopped last is not started again)."""
    slots = r"^(daphne:\S+)\s+(\S+)\s+(?:pid (\d+))?"
    before = {h: re.findall(slots, docker(h, "supervisorctl", "status", check=False), re.M) for h in APP_HOSTS}
    run = playbook("site.yml", "-e", json.dumps(SITE_MARK))
    assert run.returncode == 0, run.text[-4000:]
    assert task_results(run.text, "webstack.django_uwsgi.daphne :") <= {"ok", "skipping", "included"}, run.text[-4000:]
    after = {h: re.findall(slots, docker(h, "supervisorctl", "status", check=False), re.M) for h in APP_HOSTS}
    assert after == before


def test_v2_migration_ran_once_on_the_shared_database():
    """One row for demo.0002 in django_migrations on the data host, its field and
    table are there, and the rollout's output has one migrate, on one host."""
    assert migration_rows(V2_MIGRATION) == 1
    assert "author" in message_columns()
    assert psql("SELECT to_regclass('public.demo_room') IS NOT NULL") == "t"
    migrations = migrate_lines(RUNS["v2"])
    assert [(h, r) for h, r, _doc in migrations] == [(migrations[0][0], "v2")], migrations
    # Django's migrate ran nowhere else: the build of each host applies nothing.
    assert len(re.findall(rf"Applying demo\.{V2_MIGRATION}\b", RUNS["v2"])) <= 1
    # both app hosts read that one database through the front
    seen = set()
    for attempt in range(40):
        status, body = loadgen_get("/db", {})
        assert status == 200, body
        answer = json.loads(body)
        assert answer["vendor"] == "postgresql", answer
        seen.add(answer["release"])
        if attempt > 10 and seen == {"v2"}:
            break
    assert seen == {"v2"}, seen


def test_a_second_migrate_waits_on_the_lock_and_finds_nothing_pending():
    """The migrate helper run by hand on the app host that did not migrate,
    while psql on the data host holds the advisory lock for a few seconds:
    it waits for the lock, then has nothing pending and applies nothing."""
    # (run alone, without the v2 run's output: the first app host)
    migrated = migrate_lines(RUNS["v2"])[0][0] if "v2" in RUNS else "rollout-app1"
    other = next(h for h in APP_HOSTS if h != migrated)
    code, plan = migrate_by_hand(other, "v2", {"plan": True})
    assert code == 0 and plan["pending"] == [] and plan["failed"] is None, plan
    key = plan.get("lock_key") or MIGRATE_HELPER.lock_key(database_name())
    key_args = ", ".join(str(k) for k in key) if isinstance(key, (list, tuple)) else str(int(key))
    hold = 12
    holder = subprocess.Popen(
        ["docker", "exec", DATA, "runuser", "-u", "postgres", "--", "psql", "-X", "-v", "ON_ERROR_STOP=1",
         "-p", str(PG_PORT), "-d", database_name(),
         "-c", f"SELECT pg_advisory_lock({key_args})", "-c", f"SELECT pg_sleep({hold})",
         "-c", f"SELECT pg_advisory_unlock({key_args})"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        for count in range(40):
            if psql("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted") != "0":
                break
            assert count < 39, "psql never took the advisory lock"
            time.sleep(0.25)
        locked = time.time()
        code, doc = migrate_by_hand(other, "v2")
        waited = round(time.time() - locked, 1)
    finally:
        out, err = holder.communicate(timeout=60)
    print(f"  migrate by hand on {other}: {json.dumps(doc)}; {waited} s after the lock was taken")
    record("concurrent-migrate", {"host": other, "lock_held_s": hold, "seconds": waited, **doc})
    assert holder.returncode == 0, out + err
    assert code == 0, doc
    assert doc["lock_waited_s"] >= 2 and waited >= hold - 1, doc
    assert doc["pending"] == [] and doc["applied"] == [] and doc["failed"] is None, doc
    assert migration_rows(V2_MIGRATION) == 1


def test_group_chat_between_two_app_hosts_delivers_every_message():
    """Two clients in one room, sent by the front to daphne processes on
    different app hosts: 10 of 10 messages of the first reach the second
    (through the Redis channel layer on the data host)."""
    pid_hosts = daphne_pid_hosts()
    result = None
    for attempt in range(12):
        room = f"rollout{attempt}"
        first, second = chat_join(room), chat_join(room)
        try:
            hello = [chat_say(client, f"hello {n} {attempt}") for n, client in ((1, first), (2, second))]
            hosts = [message_host(m, pid_hosts) if m else None for m in hello]
            print(f"  attempt {attempt + 1}: clients on {hosts} (daphne pids {[m and m.get('member_pid') for m in hello]})")
            if None in hosts or hosts[0] == hosts[1]:
                continue
            texts = [f"message {n} of 10 in {room}" for n in range(1, 11)]
            for text in texts:
                first.send(text)
            received = [chat_wait(second, text) for text in texts]
            echoed = [chat_wait(first, text, timeout=2) for text in texts]
            result = {"attempts": attempt + 1, "room": room, "hosts": hosts, "pids": [m["member_pid"] for m in hello],
                      "sent": len(texts), "received": sum(1 for m in received if m),
                      "echoed_to_sender": sum(1 for m in echoed if m),
                      "taken_by": sorted({m["pid"] for m in received if m}),
                      "delivered_by": sorted({m["member_pid"] for m in received if m})}
            break
        finally:
            first.close()
            second.close()
    record("group-chat", result)
    assert result, "the front never sent the two clients to different app hosts in 12 attempts"
    assert result["received"] == 10, result
    # taken from the sender by its process on one host, delivered by the other host's
    assert result["taken_by"] == [result["pids"][0]] and result["delivered_by"] == [result["pids"][1]], result
    assert result["echoed_to_sender"] == 10, result


def test_a_failing_migration_is_refused_before_any_host_flips(releases):
    """v5's migration 0003 fails: the rollout stops after the stage, before any
    flip, naming the migration and the error; every host is still on v2 with
    the same processes, the migration left nothing behind, no error under load."""
    before = app_processes()
    load = Load("v5", steady=5)
    load.mark("rollout")
    run = playbook("rollout.yml", "-e", f"rollout_source={releases['v5']}", "-e", "rollout_release_id=v5", *BACKUP)
    summary = load.stop()
    print(run.text[-5000:])
    record("v5-migration-refused", figures(summary, host_durations(run.stdout), run.seconds))
    assert run.returncode != 0
    message = re.search(r"release v5 refused: migration (\S+) failed: (.*?); no host was switched", " ".join(run.text.split()))
    assert message, run.text[-4000:]
    assert message.group(1) == f"demo.{V5_MIGRATION}", message.group(0)
    # backed up before the failing migration; rollout_backup_keep=1 removed v2's dump
    backup = backup_of(run)
    record("v5-backup", backup)
    assert "-v5-" in os.path.basename(backup["path"]) and backup["pending"] == [f"demo.{V5_MIGRATION}"], backup
    assert "demo_room" in backup["tables"], backup
    assert backup["dir"] == [os.path.basename(backup["path"])], backup
    assert "v5 migration fails on purpose" in message.group(2), message.group(0)
    assert task_results(run.text, "Point current at release") <= {"skipping"}
    for host in APP_HOSTS:
        assert current_release(host) == "v2", host
    assert app_processes() == before
    assert migration_rows(V5_MIGRATION) == 0
    assert "flag" not in message_columns()
    assert summary["errors"] == 0, summary["error_samples"]


def test_postgresql_and_redis_restarts_under_load():
    """PostgreSQL, then Redis, restarted on the data host under load through the
    front: the errors and the time until whole are reported (not asserted);
    the app is whole again within 90 s each, no app process restarted."""
    before = app_processes()
    load = Load("data-tier", steady=5)
    marks = []
    whole = {}
    for name, unit in (("postgresql-restart", "postgresql"), ("redis-restart", "redis-server")):
        load.mark(name)
        started = time.time()
        docker(DATA, "systemctl", "restart", unit)
        restarted = round(time.time() - started, 1)
        whole[name] = (restarted, wait_whole(started))
        marks.append((name, started))
        time.sleep(5)
    summary = load.stop(tail=0)
    ends = [mark[1] for mark in marks[1:]] + [time.time()]
    result = {}
    for (name, started), ended in zip(marks, ends):
        result[name] = dict(window_figures(load.records, started, ended), restart_command_s=whole[name][0],
                            whole_after_s=whole[name][1])
    after = app_processes()
    result["app_processes_restarted"] = after != before
    result["total"] = {"requests": summary["requests"], "errors": summary["errors"]}
    record("data-tier-restarts", result)
    for name, seconds in whole.items():
        assert seconds[1] is not None, f"{name}: the front did not serve /db and websockets again within 90 s"
    assert after == before, "an app process was restarted"


def assert_first_host_back_on_v2_second_untouched(run):
    """After a refused v3: the first host still (or again) on v2 with every
    worker accepting and serving v2; the switch play never reached the second."""
    assert current_release("rollout-app1") == "v2"
    for instance in APP_HOSTS["rollout-app1"]:
        assert accepting("rollout-app1", instance)
        assert {a["release"] for a in instance_healthz("rollout-app1", instance)} == {"v2"}
    assert current_release("rollout-app2") == "v2"
    second_play = run.text.split("PLAY [Roll the release out", 1)[1].split("PLAY RECAP", 1)[0]
    assert "[rollout-app2]" not in second_play


def test_broken_v3_fails_on_the_first_host_and_hurts_no_one(releases):
    before = all_pids()
    load = Load("v3")
    load.mark("rollout")
    run = playbook("rollout.yml", "-e", f"rollout_source={releases['v3']}", "-e", "rollout_release_id=v3")
    summary = load.stop()
    print(run.stdout[-6000:])
    record("v3", figures(summary, host_durations(run.stdout), run.seconds))
    assert run.returncode != 0
    message = re.search(r"Rollout of release v3 stopped on host (\S+) before any instance was touched.*", run.text)
    assert message, run.text[-4000:]
    assert message.group(1) == "rollout-app1"
    assert "ImportError: v3 is broken on purpose" in message.group(0)
    assert_first_host_back_on_v2_second_untouched(run)
    assert all_pids() == before
    assert summary["errors"] == 0, summary["error_samples"]


def test_broken_v3_past_the_preflight_is_put_back_by_the_chain(releases):
    """What a failed rollout does: with the preflight off, v3 reaches the
    chain; the chain stalls on the first worker, current goes back to v2, the
    chain finishes on v2, the host fails naming instance, worker and the
    import error, and the second host is not touched."""
    load = Load("v3-chain")
    load.mark("rollout")
    run = playbook("rollout.yml", "-e", f"rollout_source={releases['v3']}", "-e", "rollout_release_id=v3",
                   "-e", "rollout_preflight=false")
    summary = load.stop()
    print(run.text[-6000:])
    record("v3-chain", figures(summary, host_durations(run.stdout), run.seconds))
    assert run.returncode != 0
    line = failure_line(run)
    assert line.group(1, 2, 3, 4) == ("Rollout of", "v3", "rollout-app1", "web1"), line.group(0)
    assert line.group(5).isdigit(), line.group(0)
    assert "v3 is broken on purpose" in line.group(6), line.group(0)
    assert line.group(7).startswith("current put back on release v2 (web1 chain-reloaded on it"), line.group(0)
    assert_first_host_back_on_v2_second_untouched(run)
    assert summary["errors"] == 0, summary["error_samples"]


def test_v6_failing_in_the_daphne_phase_is_put_back_through_the_stopped_slot(releases):
    """A rollout that fails in the middle of the daphne phase (v6: the stopped
    slot starts on it, one v2 process is stopped, the next restart fails at
    import) is put back the same way: the slot stopped now starts on v2, the
    v6 process stops accepting and goes, the broken one is started on v2,
    every process accepts again. Under load and 50 long-lived sessions: no
    HTTP error, and no session cut more than once by the rollout or more than
    once by the put-back (so at most twice), each with a close frame, back
    within 1 s, nothing lost; the second host is untouched."""
    docker("rollout-app1", "rm", "-f", "/tmp/rollout-v6-daphne-imports")
    other = daphne_slots("rollout-app2")
    sessions = ws_sessions.Sessions("ws://127.0.0.1:18580/ws/echo/", count=WS_SESSIONS, origin=FRONT).start()
    try:
        load = Load("v6", steady=5)
        load.mark("rollout")
        run = playbook("rollout.yml", "-e", f"rollout_source={releases['v6']}", "-e", "rollout_release_id=v6",
                       "-e", "rollout_preflight=false", "-e", "rollout_daphne_timeout=10")
        summary = load.stop()
    finally:
        doc = sessions.stop()
    # The put-back began when current went back to v2 (the link's own mtime).
    back = int(docker("rollout-app1", "stat", "-c", "%Y", "/srv/demo/current").strip())
    cuts = [[d["t"] for d in s.disconnects] for s in sessions.states]
    doc["cut_before_putback_max"] = max(len([t for t in c if t < back]) for c in cuts)
    doc["cut_in_putback_max"] = max(len([t for t in c if t >= back]) for c in cuts)
    record("v6-putback-websocket", doc)
    record("v6-putback", figures(summary, host_durations(run.stdout), run.seconds))
    print(run.text[-5000:])
    print(f"  websocket sessions through the failed v6 rollout and its put-back: {json.dumps(doc)}")
    assert run.returncode != 0
    line = failure_line(run)
    assert line.group(1, 2, 3) == ("Rollout of", "v6", "rollout-app1"), line.group(0)
    assert line.group(4).startswith("daphne:daphne"), line.group(0)
    assert line.group(7).startswith("current put back on release v2") and "daphne" in line.group(7), line.group(0)
    assert_first_host_back_on_v2_second_untouched(run)
    assert daphne_slots("rollout-app2") == other
    slots = daphne_slots("rollout-app1")
    running = {p: pid for p, (state, pid) in slots.items() if state == "RUNNING"}
    assert len(running) == len(DAPHNE["rollout-app1"]) and len(slots) - len(running) == 1, slots
    for program, pid in running.items():
        address = (DAPHNE["rollout-app1"] + [DAPHNE_SPARE["rollout-app1"]])[int(program.rsplit("daphne", 1)[1])]
        answer = asgi_probe.http_get(daphne_target(address), "/__webstack__/probe", timeout=5)
        assert answer["json"]["release"] == "v2" and answer["json"]["pid"] == pid, (program, answer)
    assert summary["errors"] == 0, summary["error_samples"]
    assert doc["error"] is None and doc["disconnects"] > 0 and doc["reconnects"] == doc["disconnects"], doc
    assert doc["cut_before_putback_max"] <= 1 and doc["cut_in_putback_max"] <= 1, doc
    assert set(doc["close_codes"]) <= {"1012", "1001"}, doc
    assert doc["reconnect_p99_s"] <= 1.0, doc
    assert doc["messages_lost"] == 0 and doc["still_down"] == 0, doc


def test_check_mode_rollback_changes_nothing(initial):
    before = host_state()
    run = playbook("rollback.yml", "--check")
    print(run.text[-3000:])
    assert_check_run(run, {h: ("v2", initial[h]) for h in APP_HOSTS})
    assert host_state() == before


def test_app_gate_stops_a_release_whose_health_check_fails(releases):
    """The optional app gate: with rollout_healthcheck_path=/healthz, v4 (its
    /healthz answers 503) is stopped on the first instance after its chain
    reload, which is put back on v2; one line says where and why."""
    run = playbook("rollout.yml", "-e", f"rollout_source={releases['v4']}", "-e", "rollout_release_id=v4",
                   "-e", "rollout_healthcheck_path=/healthz")
    print(run.text[-4000:])
    assert run.returncode != 0
    line = failure_line(run)
    assert line.group(1, 2, 3, 4) == ("Rollout of", "v4", "rollout-app1", "web1"), line.group(0)
    assert "/healthz answered 503" in line.group(6), line.group(0)
    assert line.group(7).startswith("current put back on release v2"), line.group(0)
    assert_first_host_back_on_v2_second_untouched(run)


def test_rollback_returns_to_the_first_release_under_load(initial):
    load = Load("rollback", steady=5)
    load.mark("rollout")
    # with the app's health check as an extra gate, which passes
    run = playbook("rollback.yml", "-e", "rollout_healthcheck_path=/healthz")
    summary = load.stop()
    print(run.text[-6000:])
    record("rollback", figures(summary, host_durations(run.stdout), run.seconds))
    assert run.returncode == 0, run.stdout[-4000:]
    assert summary["errors"] == 0, summary["error_samples"]
    for host in APP_HOSTS:
        assert current_release(host) == initial[host]
        for instance in APP_HOSTS[host]:
            assert {a["release"] for a in instance_healthz(host, instance)} == {initial[host]}


def test_bad_input_fails_before_any_host():
    run = playbook("rollout.yml", "-e", "rollout_serial=0", "-e", "rollout_source=/nonexistent")
    assert run.returncode != 0
    assert "rollout_serial" in run.text
    assert "PLAY [Roll the release out" not in run.text

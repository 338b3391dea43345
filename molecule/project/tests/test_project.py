"""A project that is not the demo, deployed and rolled out (in file order).

examples/notes has its own settings module, WSGI and ASGI names, environment
names, requirements file, static and media directories inside its tree,
uploads, and websocket rooms; no health URL. The tests check what an operator
deploying their own project relies on:

1. the app answers through nginx, and nginx serves the static files from the
   STATIC_URL and STATIC_ROOT Django reports; the env file carries the
   project's own names;
2. the reserved probe path is refused by nginx (404) and answered by each
   uWSGI instance and the daphne process over their own sockets;
3. a websocket on the project's own route (/live/<room>/) works through nginx;
4. a file uploaded under the first release is still served after release v2
   was rolled out under load (0 errors) and after rollback.yml (0 errors);
5. a release whose settings module has a syntax error is refused before it
   becomes a release: one line naming host, release and the error with its
   file and line; no directory left under releases/, current unchanged;
6. site.yml again (with a source that hashes differently): current, every
   uWSGI worker pid and the daphne pid unchanged, the secret kept;
7. the WSGI-only examples/plain on two more hosts, a cluster of two app
   hosts behind one front: no daphne program, no websocket location, a
   rollout under load moves both (0 errors), and kill -9 supervisord on one
   app host under load costs no request (the front passes its requests to
   the other host until it is whole);
8. the data lives in the data tier's PostgreSQL: the first release's
   migrations are recorded once; v2 adds a field (migration 0002), applied
   once by the rollout's migrate phase before any flip; the rollback says it
   does not reverse it; a release whose migration fails is refused before any
   flip, naming the migration;
9. (last) examples/notes on a second app host behind the same front: a
   release rolled out over both hosts under load with 50 of the project's
   websocket rooms open: each session cut at most once, with a close frame,
   back within 1 s, nothing lost, 0 HTTP errors.
"""

import asyncio
import json
import os
import re
import tempfile
import time

import pytest
import websockets
from helpers import (APP, DAPHNE, HOST, INSTANCES, NGINX, PROBE, PROJECT, Load, copy_project, current_release,
                     daphne_pids, django_settings, docker, get, instance_probe, playbook, probe_all_workers,
                     record, releases, request, stats, supervisor_programs, upload, worker_pids)

import ws_sessions  # noqa: E402  pylint: disable=wrong-import-position  (tests/load, put on the path by helpers)

STATE = {}
PG_PORT = "18691"
LOAD_MIX = ["6:http:/", "3:http:/files/"]


def env_file():
    return dict(re.findall(r"^([A-Z_][A-Z0-9_]*)=(.*)$", docker(HOST, "cat", f"/etc/{APP}/env"), re.M))


def psql(query):
    """One query on the app's PostgreSQL database, as postgres on the data host (the same container)."""
    name = env_file()["NOTES_DB_NAME"].strip("'")
    return docker(HOST, "runuser", "-u", "postgres", "--", "psql", "-p", PG_PORT, "-d", name, "-XAtc", query).split()


def migrate_lines(run):
    """The migrate lines of a playbook's output that applied (not the plan-only ones)."""
    return [line for line in run.text.splitlines() if re.search(r'"msg": "migrate: host ', line)]


def ws_room(url, room, text, origin):
    """Two members of a room: a text one sends reaches both."""
    async def run():
        async with websockets.connect(f"{url}/live/{room}/", origin=origin, open_timeout=10) as first, \
                websockets.connect(f"{url}/live/{room}/", origin=origin, open_timeout=10) as second:
            await first.send(text)
            return [json.loads(await asyncio.wait_for(m.recv(), 10)) for m in (first, second)]
    return asyncio.run(run())


# ---------------------------------------------------------------- 1. the app

def test_app_answers_through_nginx():
    status, _headers, body = get("/")
    assert status == 200
    page = body.decode()
    assert "Notes board, edition 1" in page
    assert f"Release {current_release()}." in page
    STATE["first"] = current_release()


def test_static_files_come_from_what_django_reports():
    reported = django_settings()
    release_dir = f"/srv/{APP}/releases/{current_release()}"
    assert reported["STATIC_URL"] == "/assets/"
    assert reported["STATIC_ROOT"] == f"{release_dir}/staticfiles", reported
    page = get("/")[2].decode()
    link = re.search(r'href="(/assets/board/notes\.[0-9a-f]+\.css)"', page)
    assert link, page
    status, _headers, body = get(link.group(1))
    assert status == 200
    on_disk = docker(HOST, "cat", reported["STATIC_ROOT"] + link.group(1)[len("/assets"):])
    assert body.decode() == on_disk
    site = docker(HOST, "cat", f"/etc/nginx/sites-enabled/{APP}.conf")
    assert re.search(rf"location \^?~? ?/assets/ \{{\s*alias /srv/{APP}/current/staticfiles/;", site), site


def test_env_file_uses_the_project_names():
    env = env_file()
    assert env["DJANGO_SETTINGS_MODULE"].strip("'") == "config.settings.production"
    assert len(env["NOTES_SECRET_KEY"].strip("'")) >= 50
    assert env["NOTES_ALLOWED_HOSTS"].strip("'") == "localhost,127.0.0.1"
    assert env["NOTES_DEBUG"].strip("'") == "false"
    for name in ("DJANGO_SECRET_KEY", "DJANGO_ALLOWED_HOSTS", "DJANGO_DEBUG", "DJANGO_STATIC_ROOT"):
        assert name not in env, f"{name} is exported although the project reads another name"
    STATE["secret"] = env["NOTES_SECRET_KEY"]


def test_the_data_is_in_postgresql_and_migrated_once():
    env = env_file()
    assert env["NOTES_DB_PORT"].strip("'") == PG_PORT
    assert psql("SELECT app || '.' || name FROM django_migrations WHERE app = 'board'") == ["board.0001_initial"]
    assert psql("SELECT count(*) FROM board_upload") == ["0"]


def test_media_is_a_shared_path():
    release_dir = f"/srv/{APP}/releases/{current_release()}"
    assert docker(HOST, "readlink", f"{release_dir}/media").strip() == f"/srv/{APP}/shared/media"
    owner = docker(HOST, "stat", "-c", "%U", f"/srv/{APP}/shared/media").strip()
    assert owner == APP


# ---------------------------------------------------------------- 2. probes

def test_probe_is_refused_by_nginx():
    assert get(PROBE)[0] == 404
    # A client cannot forge the uwsgi variable with a header either.
    assert get(PROBE, headers={"WEBSTACK-PROBE": "1", "X-Webstack-Probe": "1"})[0] == 404
    assert get("/__webstack__/ws")[0] == 404
    # The project has no health URL of its own, and needs none.
    assert get("/healthz")[0] == 404


@pytest.mark.parametrize("instance", sorted(INSTANCES))
def test_probe_answered_by_each_instance_over_its_socket(instance):
    answers = probe_all_workers(instance)
    assert {a["release"] for a in answers} == {current_release()}
    assert {a["instance"] for a in answers} == {instance}
    pids = worker_pids()[instance]
    assert {a["pid"] for a in answers} <= set(pids.values())
    assert {a["worker"] for a in answers} <= set(pids)
    # Without the uwsgi variable the same path is the project's own (it has none: 404).
    assert instance_probe(INSTANCES[instance])["status"] == 404


def test_probe_answered_by_daphne_over_its_socket():
    status, _headers, body = get(PROBE, base=f"http://{DAPHNE}", headers={"Host": "localhost"})
    assert status == 200, body
    answer = json.loads(body)
    assert answer["release"] == current_release()
    assert "process" in answer and str(answer["pid"]) in daphne_pids().values()
    # Anything that came through a proxy goes to the project (no such URL: 404).
    forwarded = get(PROBE, base=f"http://{DAPHNE}", headers={"Host": "localhost", "X-Forwarded-For": "10.0.0.1"})
    assert forwarded[0] == 404

    async def echo():
        async with websockets.connect(f"ws://{DAPHNE}/__webstack__/ws", open_timeout=10) as ws:
            await ws.send("probe echo")
            return await asyncio.wait_for(ws.recv(), 10)
    assert "probe echo" in asyncio.run(echo())


# ---------------------------------------------------------------- 3. websockets

def test_websocket_room_through_nginx():
    answers = ws_room(NGINX.replace("http", "ws"), "lobby", "hello room", origin=NGINX)
    assert answers == [{"room": "lobby", "message": "hello room"}] * 2
    site = docker(HOST, "cat", f"/etc/nginx/sites-enabled/{APP}.conf")
    assert re.search(rf"location /live/ \{{\s*proxy_pass http://{APP}_daphne;", site), site


# ---------------------------------------------------------------- 4. uploads across releases

def assert_upload_served(where):
    name, content = STATE["upload"]
    status, _headers, body = get(f"/uploads/{name}")
    assert status == 200, f"{where}: /uploads/{name} answered {status}"
    assert body == content, where
    listed = [f["name"] for f in json.loads(get("/files/")[2])["files"]]
    assert name in listed, (where, listed)


def test_upload_under_the_first_release():
    content = os.urandom(2048)
    status, _headers, body = upload("first-release.bin", content)
    assert status == 201, body
    sent = json.loads(body)
    assert sent["url"] == f"/uploads/{sent['name']}"
    STATE["upload"] = (sent["name"], content)
    assert_upload_served("first release")
    reported = django_settings()
    assert reported["MEDIA_URL"] == "/uploads/"
    assert reported["MEDIA_ROOT"] == f"/srv/{APP}/releases/{current_release()}/media"


V2_MIGRATION = """from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("board", "0001_initial")]
    operations = [migrations.AddField("upload", "note", models.CharField(max_length=200, null=True, blank=True))]
"""


def release_with_a_note(name, edition):
    """A copy of the project whose page says edition and whose uploads have a note field (migration 0002)."""
    path = copy_project(name, {"board/templates/board/index.html": ("edition 1", edition),
                               "board/models.py": ("    size = models.PositiveIntegerField()\n",
                                                   "    size = models.PositiveIntegerField()\n"
                                                   "    note = models.CharField(max_length=200, null=True, blank=True)\n")})
    with open(os.path.join(path, "board", "migrations", "0002_upload_note.py"), "w", encoding="utf-8") as handle:
        handle.write(V2_MIGRATION)
    return path


def test_v2_rolls_out_under_load_and_keeps_the_upload():
    v2 = release_with_a_note("v2", "edition 2")
    before = worker_pids()
    load = Load("v2", LOAD_MIX)
    run = playbook("rollout.yml", "-e", f"rollout_source={v2}", "-e", "rollout_release_id=v2")
    summary = load.stop()
    print(run.text[-5000:])
    record("v2 rollout", load=summary)
    assert run.returncode == 0, run.text[-5000:]
    assert summary["requests"] > 50
    assert summary["errors"] == 0, summary["error_samples"]
    assert current_release() == "v2"
    assert "Notes board, edition 2" in get("/")[2].decode()
    # The migration ran once, in the migrate phase, before the first flip.
    lines = migrate_lines(run)
    assert len(lines) == 1, lines
    assert re.search(r'applied\W{1,12}board\.0002_upload_note\W', lines[0]), lines[0]
    assert run.text.index(lines[0]) < run.text.index("Point current at release v2")
    assert psql("SELECT app || '.' || name FROM django_migrations WHERE app = 'board' ORDER BY id") == [
        "board.0001_initial", "board.0002_upload_note"]
    assert psql("SELECT column_name FROM information_schema.columns WHERE table_name = 'board_upload' "
                "AND column_name = 'note'") == ["note"]
    after = worker_pids()
    for instance in INSTANCES:
        kept = {w for w, pid in after[instance].items() if pid == before[instance][w]}
        assert not kept, f"{instance}: workers {kept} kept their pid"
        assert {a["release"] for a in probe_all_workers(instance)} == {"v2"}
    assert_upload_served("after v2")


def test_rollback_under_load_keeps_the_upload():
    load = Load("rollback", LOAD_MIX)
    run = playbook("rollback.yml")
    summary = load.stop()
    print(run.text[-5000:])
    record("rollback", load=summary)
    assert run.returncode == 0, run.text[-5000:]
    assert summary["errors"] == 0, summary["error_samples"]
    assert current_release() == STATE["first"]
    assert "Notes board, edition 1" in get("/")[2].decode()
    for instance in INSTANCES:
        assert {a["release"] for a in probe_all_workers(instance)} == {STATE["first"]}
    assert_upload_served("after the rollback")
    # Migrations are not reversed: the first release runs on v2's schema and says so.
    assert f"rollback: release {STATE['first']} does not know the migrations board.0002_upload_note" in run.text
    assert not migrate_lines(run)
    assert "board.0002_upload_note" in psql("SELECT app || '.' || name FROM django_migrations WHERE app = 'board'")


BROKEN_MIGRATION = """from django.db import migrations


class Migration(migrations.Migration):
    dependencies = [("board", "0001_initial")]
    operations = [migrations.RunSQL("ALTER TABLE no_such_table ADD COLUMN x integer")]
"""


def test_a_failing_migration_is_refused_before_any_flip():
    source = copy_project("badmigration", {})
    with open(os.path.join(source, "board", "migrations", "0002_broken.py"), "w", encoding="utf-8") as handle:
        handle.write(BROKEN_MIGRATION)
    before = {"current": current_release(), "pids": worker_pids(), "daphne": daphne_pids()}
    load = Load("badmigration", LOAD_MIX)
    run = playbook("rollout.yml", "-e", f"rollout_source={source}", "-e", "rollout_release_id=badmigration")
    summary = load.stop()
    print(run.text[-4000:])
    assert run.returncode != 0
    assert summary["errors"] == 0, summary["error_samples"]
    assert re.search(r"release badmigration refused: migration board\.0002_broken failed: ProgrammingError: "
                     r"relation \\?\"no_such_table\\?\" does not exist; no host was switched", run.text), run.text[-4000:]
    assert "Point current at release badmigration" not in run.text
    assert current_release() == before["current"]
    assert worker_pids() == before["pids"]
    assert daphne_pids() == before["daphne"]
    assert "board.0002_broken" not in psql("SELECT app || '.' || name FROM django_migrations WHERE app = 'board'")


# ---------------------------------------------------------------- 5. a broken settings module

BROKEN_LINE = "SECURE_HSTS_SECONDS = = 31536000"


def broken_copy():
    target = copy_project("broken", {"config/settings/production.py": ("SECURE_HSTS_SECONDS = 31536000", BROKEN_LINE)})
    with open(os.path.join(target, "config", "settings", "production.py"), encoding="utf-8") as handle:
        line = handle.read().splitlines().index(BROKEN_LINE) + 1
    return target, line


def assert_refused(run, release, line):
    assert run.returncode != 0
    matches = [text for text in run.text.splitlines()
               if HOST in text and release in text and "SyntaxError" in text
               and re.search(rf'production\.py"?, line {line}\b', text)]
    assert matches, run.text[-5000:]


@pytest.mark.parametrize("how", ["rollout.yml", "site.yml"])
def test_a_broken_settings_module_is_refused_at_build(how):
    source, line = broken_copy()
    release = f"broken-{how.split('.')[0]}"
    before = {"current": current_release(), "releases": releases(), "pids": worker_pids(), "daphne": daphne_pids()}
    if how == "rollout.yml":
        run = playbook(how, "-e", f"rollout_source={source}", "-e", f"rollout_release_id={release}")
    else:
        run = playbook(how, "-e", f"django_app_source={source}", "-e", f"django_app_release_id={release}")
    print(run.text[-4000:])
    assert_refused(run, release, line)
    assert current_release() == before["current"]
    assert releases() == before["releases"], "the half-built release was left behind"
    assert worker_pids() == before["pids"]
    assert daphne_pids() == before["daphne"]
    assert get("/")[0] == 200


# ---------------------------------------------------------------- 6. site.yml keeps the active release

def test_site_yml_again_keeps_release_and_processes():
    changed = copy_project("changed", {"board/templates/board/index.html": ("edition 1", "edition 3")})
    before = {"current": current_release(), "pids": worker_pids(), "daphne": daphne_pids()}
    assert before["daphne"]
    run = playbook("site.yml", "-e", f"django_app_source={changed}")
    print(run.text[-3000:])
    assert run.returncode == 0, run.text[-5000:]
    assert current_release() == before["current"]
    assert worker_pids() == before["pids"]
    assert daphne_pids() == before["daphne"]
    assert env_file()["NOTES_SECRET_KEY"] == STATE["secret"]
    assert "Notes board, edition 1" in get("/")[2].decode()


def test_daphne_argument_change_restarts_through_the_stopped_slot():
    """This project's websockets (its own route /live/<room>/, JSON room
    messages, one daphne process on the in-memory channel layer, a spare
    slot) through a site.yml change of daphne's arguments (kept: the last
    test, which runs site.yml on this host again, passes the same ones): the stopped slot starts with the
    change, the old process stops accepting and drains. 50 sessions, a room each: at most one cut per session, with a
    close frame (1012 or 1001), back within 1 s, nothing lost; no HTTP error;
    the supervisor program is unchanged (no group restart)."""
    program = docker(HOST, "cat", "/etc/supervisor/conf.d/daphne.conf")
    extra = ["-e", json.dumps({"daphne_extra_args": ["--ping-interval", "25"]})]
    before = daphne_pids()
    sessions = ws_sessions.Sessions(NGINX.replace("http", "ws") + "/live/s{index}/", count=50, origin=NGINX,
                                    unwrap=lambda text: json.loads(text)["message"]).start()
    try:
        load = Load("daphne-args", LOAD_MIX)
        run = playbook("site.yml", *extra)
        summary = load.stop()
    finally:
        doc = sessions.stop()
    record("daphne argument change", load=summary, websocket_sessions=doc)
    assert run.returncode == 0, run.text[-5000:]
    assert summary["errors"] == 0, summary["error_samples"]
    assert doc["error"] is None and doc["disconnects"] > 0 and doc["reconnects"] == doc["disconnects"], doc
    assert doc["max_disconnects_per_session"] <= 1, doc
    assert set(doc["close_codes"]) <= {"1012", "1001"}, doc
    assert doc["reconnect_p99_s"] <= 1.0, doc
    assert doc["messages_lost"] == 0 and doc["still_down"] == 0 and doc["messages_sent"] > 500, doc
    after = daphne_pids()
    assert len(after) == len(before) == 1 and set(after) != set(before), (before, after)
    (program_name, pid), = after.items()
    user = docker(HOST, "stat", "-c", "%U", f"/proc/{pid}").strip()
    cmdline = docker(HOST, "runuser", "-u", user, "--", "cat", f"/proc/{pid}/cmdline")
    assert "--ping-interval\x0025" in cmdline, (program_name, cmdline)
    assert docker(HOST, "cat", "/etc/supervisor/conf.d/daphne.conf") == program


# ---------------------------------------------------------------- 7. a WSGI-only project

PLAIN_HOST = "project-plain"
PLAIN_HOST2 = "project-plain2"
PLAIN_NGINX = "http://127.0.0.1:18690"
# Each app host's instance (the hosts share the machine's loopback).
PLAIN_SOCKETS = {PLAIN_HOST: "127.0.0.1:18621", PLAIN_HOST2: "127.0.0.1:18622"}


def plain_inventory(tmp):
    """An inventory of its own for two more hosts (in no group of the scenario's): project-plain is the
    front and an app host, project-plain2 another app host."""
    path = os.path.join(tmp, "plain.yml")
    doc = {
        "all": {
            "children": {
                "django_uwsgi_front": {"hosts": {PLAIN_HOST: {}}},
                "django_uwsgi_app": {"hosts": {
                    host: {"uwsgi_instances": [{"name": "web1", "processes": 2, "socket": socket}]}
                    for host, socket in PLAIN_SOCKETS.items()}},
            },
            "vars": {
                "ansible_connection": "community.docker.docker",
                "django_app_name": "plain",
                "django_app_source": os.path.join(PROJECT, "examples", "plain"),
                "django_app_settings_module": "plain.settings",
                "django_app_wsgi_module": "plain.wsgi:application",
                "django_app_asgi_application": "",
                "django_app_migrate": False,
                "django_app_allowed_hosts": ["localhost", "127.0.0.1"],
                "nginx_front_listen_port": 18690,
                # the front takes the other app host's loopback socket (on real hosts: a private address)
                "nginx_front_app_hosts_share_loopback": True,
            },
        }
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(doc, handle)
    return path


@pytest.fixture(scope="module")
def plain():
    tmp = tempfile.mkdtemp(prefix="project-plain-")
    inventory = plain_inventory(tmp)
    run = playbook("site.yml", inventory=inventory)
    print(run.text[-3000:])
    assert run.returncode == 0, run.text[-5000:]
    return inventory


def test_plain_project_has_no_daphne_and_no_websocket_location(plain):
    assert plain
    status, _headers, body = get("/", base=PLAIN_NGINX)
    assert status == 200 and body.decode().strip() == "plain release one"
    programs = supervisor_programs(PLAIN_HOST)
    assert "uwsgi-web1" in programs, programs
    assert not [p for p in programs if "daphne" in p], programs
    assert "daphne" not in docker(PLAIN_HOST, "supervisorctl", "status", check=False)
    site = docker(PLAIN_HOST, "cat", "/etc/nginx/sites-enabled/plain.conf")
    assert "daphne" not in site and "proxy_pass" not in site and "Upgrade" not in site, site
    assert get(PROBE, base=PLAIN_NGINX)[0] == 404


def test_plain_project_rolls_out(plain):
    v2 = copy_project("plain-v2", {"plain/urls.py": ("plain release one", "plain release two")}, source="plain")
    load = Load("plain", ["1:http:/"], url=PLAIN_NGINX)
    run = playbook("rollout.yml", "-e", f"rollout_source={v2}", "-e", "rollout_release_id=v2", inventory=plain)
    summary = load.stop()
    print(run.text[-4000:])
    assert run.returncode == 0, run.text[-5000:]
    assert summary["errors"] == 0, summary["error_samples"]
    assert request(PLAIN_NGINX + "/")[2].decode().strip() == "plain release two"
    for host, socket in PLAIN_SOCKETS.items():
        assert current_release(host, "plain") == "v2", host
        answers = probe_all_workers("web1", address=socket)
        assert {a["release"] for a in answers} == {"v2"}, host


def plain_served(host):
    """Requests the instance of host served (0 while its stats server does not answer)."""
    try:
        return sum(w["requests"] for w in stats("web1", host=host)["workers"])
    except (AssertionError, ValueError):
        return 0


def plain_whole(host):
    """The instance of host RUNNING with every worker accepting."""
    try:
        workers = stats("web1", host=host)["workers"]
    except (AssertionError, ValueError):
        return False
    return "uwsgi-web1" in supervisor_programs(host) and len(workers) == 2 and all(w["accepting"] for w in workers)


def test_plain_cluster_hides_a_killed_supervisord_on_one_app_host(plain):
    """This project on two app hosts: kill -9 supervisord on one of them under load through the front.
    systemd kills every program the dead supervisord ran (KillMode=mixed) and starts it again; the front
    passes the host's requests to the other one meanwhile: 0 client errors, and the host serves again."""
    assert plain
    assert plain_whole(PLAIN_HOST2)
    main_pid = int(docker(PLAIN_HOST2, "systemctl", "show", "-p", "MainPID", "--value", "supervisor").strip())
    master = int(supervisor_programs(PLAIN_HOST2)["uwsgi-web1"])
    load = Load("plain-cluster", ["1:http:/"], url=PLAIN_NGINX, steady=3)
    started = time.time()
    docker(PLAIN_HOST2, "kill", "-9", str(main_pid))
    whole = None
    for _ in range(120):
        if time.time() - started > 60:
            break
        new_main = docker(PLAIN_HOST2, "systemctl", "show", "-p", "MainPID", "--value", "supervisor").strip()
        if new_main.isdigit() and int(new_main) not in (0, main_pid) and plain_whole(PLAIN_HOST2):
            whole = round(time.time() - started, 1)
            break
        time.sleep(0.5)
    served = plain_served(PLAIN_HOST2)
    time.sleep(4)
    summary = load.stop()
    record("plain cluster, kill -9 supervisord on one app host", load=summary, whole_after_s=whole,
           served_again=plain_served(PLAIN_HOST2) - served)
    assert whole is not None, f"{PLAIN_HOST2} not whole within 60 s of the kill"
    assert int(supervisor_programs(PLAIN_HOST2)["uwsgi-web1"]) != master
    assert plain_served(PLAIN_HOST2) > served, "the front sent nothing to the host once it was whole"
    assert summary["requests"] > 100 and summary["errors"] == 0, summary


# ---------------------------------------------------------------- 9. this project on two app hosts

NOTES_HOST2 = "project-notes2"


def notes_cluster_inventory(tmp):
    """The scenario's inventory plus project-notes2 as a second app host (an inventory file of its own,
    passed after the scenario's: the scenario's group_vars apply to it too)."""
    path = os.path.join(tmp, "notes2.yml")
    doc = {
        "all": {
            "children": {"django_uwsgi_app": {"hosts": {NOTES_HOST2: {
                "ansible_connection": "community.docker.docker",
                "uwsgi_instances": [{"name": "web1", "processes": 2, "socket": "127.0.0.1:18613"}],
                "daphne_port_base": 18641,
                "metrics_node_exporter_port": 18698,
            }}}},
            # the hosts share the machine's loopback (on real hosts: private addresses)
            "vars": {"nginx_front_app_hosts_share_loopback": True, "django_app_data_hosts_share_loopback": True},
        }
    }
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(doc, handle)
    return path


def test_a_rollout_over_two_app_hosts_drains_this_projects_websockets():
    """examples/notes on a second app host behind the same front (site.yml with the host added), then a
    release rolled out over both hosts under load with 50 of the project's websocket rooms open through
    the front: every session cut at most once, with a close frame (1012 or 1001), back within 1 s,
    nothing lost; no HTTP error; both hosts end on the release."""
    inventory = notes_cluster_inventory(tempfile.mkdtemp(prefix="project-notes2-"))
    both = ["-i", os.environ["MOLECULE_INVENTORY_FILE"], "-i", inventory]
    # the daphne arguments an earlier test left on project-stack
    kept = ["-e", json.dumps({"daphne_extra_args": ["--ping-interval", "25"]})]
    run = playbook("site.yml", *kept, args=both)
    assert run.returncode == 0, run.text[-5000:]
    site = docker(HOST, "cat", "/etc/nginx/sites-enabled/notes.conf")
    assert "127.0.0.1:18613" in site and "127.0.0.1:18641" in site, site
    v3 = release_with_a_note("v3", "edition 3")
    sessions = ws_sessions.Sessions(NGINX.replace("http", "ws") + "/live/c{index}/", count=50, origin=NGINX,
                                    unwrap=lambda text: json.loads(text)["message"]).start()
    try:
        load = Load("notes-cluster", LOAD_MIX)
        run = playbook("rollout.yml", *kept, "-e", f"rollout_source={v3}", "-e", "rollout_release_id=v3",
                       args=both)
        summary = load.stop()
    finally:
        doc = sessions.stop()
    record("rollout over two app hosts", load=summary, websocket_sessions=doc)
    assert run.returncode == 0, run.text[-5000:]
    assert summary["requests"] > 50 and summary["errors"] == 0, summary["error_samples"]
    assert doc["error"] is None and doc["disconnects"] > 0 and doc["reconnects"] == doc["disconnects"], doc
    assert doc["max_disconnects_per_session"] <= 1, doc
    assert set(doc["close_codes"]) <= {"1012", "1001"}, doc
    assert doc["reconnect_p99_s"] <= 1.0, doc
    assert doc["messages_lost"] == 0 and doc["still_down"] == 0 and doc["messages_sent"] > 500, doc
    for host in (HOST, NOTES_HOST2):
        assert current_release(host) == "v3", host
    assert "Notes board, edition 3" in get("/")[2].decode()
    for address in ("127.0.0.1:18611", "127.0.0.1:18613"):
        assert {a["release"] for a in probe_all_workers("web1", address=address)} == {"v3"}, address

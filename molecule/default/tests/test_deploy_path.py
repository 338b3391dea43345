"""One deploy path, preflight at build, env names, static files from what
Django reports (run on the controller against the converged host)."""

import json
import os
import re
import shutil
import tempfile

import pytest
from helpers import get, healthz, run_converge

APP_ROOT = "/srv/demo"
HOST = "default-stack"
PROJECT = os.environ.get("MOLECULE_PROJECT_DIRECTORY", "")


def current(host):
    return host.check_output(f"readlink {APP_ROOT}/current")


def releases(host):
    return set(host.check_output(f"ls -1 {APP_ROOT}/releases").split())


@pytest.fixture(scope="module")
def sources():
    """Copies of the demo: one with a settings.py broken at line 12, one with a harmless change."""
    base = tempfile.mkdtemp(prefix="webstack-default-")
    try:
        for name in ("broken", "changed"):
            shutil.copytree(os.path.join(PROJECT, "examples", "demo"), os.path.join(base, name),
                            ignore=shutil.ignore_patterns("__pycache__", "*.sqlite3", "static_collected"))
        path = os.path.join(base, "broken", "demo", "settings.py")
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
        index = next(i for i, line in enumerate(lines) if line.startswith("DEBUG = "))
        lines[index] = "DEBUG = = True"
        broken_line = index + 1
        with open(path, "w", encoding="utf-8") as handle:
            handle.write("\n".join(lines) + "\n")
        with open(os.path.join(base, "changed", "CHANGED"), "w", encoding="utf-8") as handle:
            handle.write("a change that hashes differently\n")
        yield dict({name: os.path.join(base, name) for name in ("broken", "changed")}, broken_line=broken_line)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def test_env_file_uses_the_mapped_names(host):
    env = host.file("/etc/demo/env").content_string
    assert re.search(r"^WEBSTACK_SETTINGS_MODULE=demo\.settings$", env, re.M), env.replace("DJANGO_SECRET_KEY", "")
    assert not re.search(r"^DJANGO_SETTINGS_MODULE=", env, re.M)
    # The names left out of the mapping keep their defaults.
    assert re.search(r"^DJANGO_SECRET_KEY=", env, re.M)
    assert re.search(r"^DJANGO_STATIC_ROOT=/srv/demo/static$", env, re.M)


def test_static_files_are_served_from_what_django_reports(host):
    report = json.loads(host.file(f"{APP_ROOT}/current/.webstack-settings.json").content_string)
    assert report["settings"]["STATIC_URL"] == "/static/"
    assert report["settings"]["STATIC_ROOT"] == f"{APP_ROOT}/static"
    assert report["serve"] == {"static": {"url": "/static/", "root": f"{APP_ROOT}/static"}}
    site = host.file("/etc/nginx/sites-available/demo.conf").content_string
    assert f"location /static/ {{\n        alias {APP_ROOT}/static/;" in site
    assert "location ^~ /__webstack__/ {\n        return 404;\n    }\n" in site
    index = get("/")[1].decode()
    static = re.search(r'(/static/[^"\']+\.css)', index)
    assert static and get(static.group(1))[0] == 200


def test_probe_prefix_is_closed_at_the_front():
    with pytest.raises(Exception) as err:
        get("/__webstack__/probe")
    assert getattr(err.value, "code", None) == 404


def test_broken_settings_refused_at_preflight(host, sources):
    before, before_releases = current(host), releases(host)
    run = run_converge("-e", f"django_app_source={sources['broken']}", "-e", "django_app_release_id=broken-settings")
    text = run.stdout + run.stderr
    assert run.returncode != 0, text[-3000:]
    assert re.search(r'"msg": "host default-stack: release broken-settings refused at preflight: '
                     r'SyntaxError: invalid syntax \(settings\.py, line %d\)"' % sources["broken_line"], text), text[-3000:]
    # Refused before collectstatic, not by a collectstatic traceback.
    assert "TASK [webstack.django_uwsgi.django_app : Collect the static files" not in run.stdout
    assert current(host) == before
    assert releases(host) == before_releases
    assert not host.file(f"{APP_ROOT}/releases/broken-settings").exists


def test_site_rerun_with_other_source_keeps_current(host, sources):
    before, before_releases = current(host), releases(host)
    run = run_converge("-e", f"django_app_source={sources['changed']}")
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    assert "stays active" in run.stdout
    assert current(host) == before
    assert releases(host) == before_releases
    assert not re.search(r"RUNNING HANDLER \[[^\]]*(chain|restart|reload)", run.stdout, re.I), run.stdout[-3000:]


def test_named_release_goes_through_the_rollout_switch(host, sources):
    before = current(host)
    old_id = os.path.basename(before)
    try:
        run = run_converge("-e", f"django_app_source={sources['changed']}", "-e", "django_app_release_id=named2")
        assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-3000:]
        assert "Switch the host to the named release" in run.stdout
        assert re.search(r"release \S+ -> named2 in", run.stdout), run.stdout[-4000:]
        assert current(host) == f"{APP_ROOT}/releases/named2"
        assert {healthz()["release"] for _ in range(10)} == {"named2"}
    finally:
        back = run_converge("-e", f"django_app_release_id={old_id}")
        assert back.returncode == 0, back.stdout[-4000:] + back.stderr[-3000:]
    assert current(host) == before
    assert {healthz()["release"] for _ in range(10)} == {old_id}

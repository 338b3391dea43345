# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The one-line errors and the served roots of roles/django_app/files/preflight.py (no Django needed)."""

import importlib.util
import json
import os
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "..", "..", "..", "roles", "django_app", "files", "preflight.py")

spec = importlib.util.spec_from_file_location("webstack_preflight", SCRIPT)
preflight = importlib.util.module_from_spec(spec)
spec.loader.exec_module(preflight)


def run(release, *apps):
    args = {"release_dir": str(release), "app_root": str(release.parent), "settings_module": "",
            "apps": list(apps), "check_deploy": False}
    with open(SCRIPT, encoding="utf-8") as handle:
        code = handle.read()
    out = subprocess.run([sys.executable, "-c", code, json.dumps(args)], cwd=str(release),
                         capture_output=True, text=True, timeout=60, check=False)
    marks = [line for line in out.stdout.splitlines() if line.startswith(preflight.MARK)]
    return out.returncode, json.loads(marks[-1][len(preflight.MARK):])


def test_syntax_error_names_the_file_and_line(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "__init__.py").write_text("")
    (tmp_path / "proj" / "settings.py").write_text("A = 1\n" * 11 + "DEBUG = = True\n")
    (tmp_path / "proj" / "wsgi.py").write_text("from proj import settings\napplication = object()\n")
    rc, verdict = run(tmp_path, "proj.wsgi:application")
    assert rc == 1
    assert verdict == {"ok": False, "error": "SyntaxError: invalid syntax (settings.py, line 12)"}


def test_import_error_names_the_project_frame_not_the_venv(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "__init__.py").write_text("")
    (tmp_path / "proj" / "wsgi.py").write_text("\n\nraise ImportError('broken on purpose')\n")
    rc, verdict = run(tmp_path, "proj.wsgi:application")
    assert rc == 1
    assert verdict["error"] == "ImportError: broken on purpose (wsgi.py, line 3)"


def test_missing_attribute_is_refused(tmp_path):
    (tmp_path / "proj").mkdir()
    (tmp_path / "proj" / "__init__.py").write_text("")
    (tmp_path / "proj" / "asgi.py").write_text("app = 1\n")
    rc, verdict = run(tmp_path, "proj.asgi:application")
    assert rc == 1
    assert verdict["error"].startswith("AttributeError: ")


def test_first_check_error_picks_the_first_message():
    text = ("System check identified some issues:\n\nERRORS:\n"
            "?: (security.E101) The CSRF failure view 'x' does not take the correct number of arguments.\n"
            "?: (urls.E004) Your URL pattern is invalid.\n\nSystem check identified 2 issues (0 silenced).")
    assert preflight.first_check_error(text) == (
        "SystemCheckError: ?: (security.E101) The CSRF failure view 'x' does not take the correct number of arguments.")
    assert preflight.first_check_error("odd\n") == "SystemCheckError: odd"


@pytest.mark.parametrize("root, expected", [
    ("/srv/demo/static", "/srv/demo/static"),
    ("/srv/demo/releases/r1/static_collected", "/srv/demo/current/static_collected"),
    ("/srv/demo/releases/r1/media", "/srv/demo/shared/media"),
    ("/srv/demo/releases/r1/var/uploads/img", "/srv/demo/shared/var/uploads/img"),
    ("/srv/demo/releases/r10/x", "/srv/demo/releases/r10/x"),
    ("", ""),
])
def test_served_root(root, expected):
    assert preflight.served_root(root, "/srv/demo/releases/r1", "/srv/demo", ["media", "var/uploads"]) == expected


def test_serve_skips_remote_and_empty_urls():
    settings = {"STATIC_URL": "https://cdn.example.com/s/", "STATIC_ROOT": "/x",
                "MEDIA_URL": "/media", "MEDIA_ROOT": "/srv/demo/releases/r1/media"}
    assert preflight.serve(settings, "/srv/demo/releases/r1", "/srv/demo", ["media"]) == {
        "media": {"url": "/media/", "root": "/srv/demo/shared/media"}}
    assert preflight.serve({"STATIC_URL": "/static/", "STATIC_ROOT": "", "MEDIA_URL": "", "MEDIA_ROOT": ""},
                           "/r", "/", []) == {}


INMEMORY = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
REDIS = {"default": {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": ["redis://h:6379/0"]}}}


@pytest.mark.parametrize("layers, check, refused", [
    (INMEMORY, {"asgi": "demo.asgi:application", "daphne_processes": 2, "app_hosts": 1}, True),
    (INMEMORY, {"asgi": "demo.asgi:application", "daphne_processes": 1, "app_hosts": 2}, True),
    (INMEMORY, {"asgi": "demo.asgi:application", "daphne_processes": "2", "app_hosts": "2", "allow": "False"}, True),
    (INMEMORY, {"asgi": "demo.asgi:application", "daphne_processes": 1, "app_hosts": 1}, False),
    (INMEMORY, {"asgi": "demo.asgi:application", "daphne_processes": 2, "app_hosts": 2, "allow": True}, False),
    (INMEMORY, {"asgi": "", "daphne_processes": 0, "app_hosts": 2}, False),
    (INMEMORY, None, False),
    (REDIS, {"asgi": "demo.asgi:application", "daphne_processes": 2, "app_hosts": 2}, False),
    (None, {"asgi": "demo.asgi:application", "daphne_processes": 2, "app_hosts": 2}, False),
    ({}, {"asgi": "demo.asgi:application", "daphne_processes": 2, "app_hosts": 2}, False),
])
def test_inmemory_channel_layer_refused_behind_several_processes(layers, check, refused):
    error = preflight.channel_layer_error(layers, check)
    assert (error is not None) == refused
    if refused:
        assert "CHANNEL_LAYERS['default']['BACKEND'] is channels.layers.InMemoryChannelLayer" in error
        assert "channels_redis.core.RedisChannelLayer" in error
        assert "django_app_allow_inmemory_channel_layer: true" in error


def test_inmemory_refusal_says_what_serves_the_app():
    error = preflight.channel_layer_error(INMEMORY, {"asgi": "p.asgi:app", "daphne_processes": 2, "app_hosts": 3})
    assert "2 daphne processes on this host and 3 app hosts serve the ASGI application p.asgi:app" in error
    error = preflight.channel_layer_error(INMEMORY, {"asgi": "p.asgi:app", "daphne_processes": 1, "app_hosts": 2})
    assert " but 2 app hosts serve " in error


def _project(root, layer_backend):
    (root / "proj").mkdir()
    (root / "proj" / "__init__.py").write_text("")
    (root / "proj" / "settings.py").write_text(
        "SECRET_KEY = 'x'\nINSTALLED_APPS = []\nDATABASES = {}\n"
        "CHANNEL_LAYERS = {'default': {'BACKEND': %r}}\n" % layer_backend)
    (root / "proj" / "wsgi.py").write_text("application = object()\n")
    return root


@pytest.mark.parametrize("allow, ok", [(False, False), (True, True)])
def test_preflight_refuses_the_inmemory_layer_in_a_real_django(django_python, tmp_path, allow, ok):
    release = _project(tmp_path, "channels.layers.InMemoryChannelLayer")
    args = {"release_dir": str(release), "app_root": str(release.parent), "settings_module": "proj.settings",
            "apps": ["proj.wsgi:application"], "check_deploy": False,
            "channel_layer": {"asgi": "proj.asgi:application", "daphne_processes": 2, "app_hosts": 1, "allow": allow}}
    with open(SCRIPT, encoding="utf-8") as handle:
        code = handle.read()
    out = subprocess.run([django_python, "-c", code, json.dumps(args)], cwd=str(release), capture_output=True,
                         text=True, timeout=60, check=False)
    marks = [line for line in out.stdout.splitlines() if line.startswith(preflight.MARK)]
    verdict = json.loads(marks[-1][len(preflight.MARK):])
    assert verdict["ok"] is ok, out.stderr
    if not ok:
        assert verdict["error"].startswith("ImproperlyConfigured: CHANNEL_LAYERS['default']['BACKEND'] is ")

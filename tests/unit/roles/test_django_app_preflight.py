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

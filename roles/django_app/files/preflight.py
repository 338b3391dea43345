# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Preflight of one release, run by the django_app role in the release's own
virtualenv, as the app user, with the app's environment (through envexec):

    python -c "<this file>" '{"release_dir": ..., "app_root": ..., "shared_paths": [...],
                             "settings_module": ..., "apps": [WSGI, ASGI], "check_deploy": true,
                             "fail_level": "ERROR",
                             "channel_layer": {"asgi": ASGI, "daphne_processes": 2, "app_hosts": 2, "allow": false}}'

1. imports the WSGI application and, when named, the ASGI application;
2. runs `manage.py check --deploy --fail-level <fail_level>` (in this process,
   through call_command) when check_deploy is true;
3. refuses channels' in-memory layer as CHANNEL_LAYERS['default'] when the
   ASGI application is served by more than one daphne process or app host
   (channel_layer; its group messages never leave one process), unless
   channel_layer.allow is true;
4. reports what Django says of the static and media files, and where nginx
   serves them from: a root inside the release through <app_root>/current
   (so that a switch of `current` follows), or through <app_root>/shared
   when it lies in one of the shared paths.

The last line of stdout is always `WEBSTACK-PREFLIGHT <json>`: either
{"ok": true, "settings": {...}, "serve": {"static": {"url", "root"}, ...}} or
{"ok": false, "error": "<one line>"}, the line naming the first error with its
file and line, e.g. "SyntaxError: invalid syntax (settings.py, line 12)".
"""

import importlib
import json
import os
import re
import sys
import traceback

MARK = "WEBSTACK-PREFLIGHT "
# A system check message as Django prints it: "<obj>: (<id>) <message>".
CHECK_LINE = re.compile(r"^(?P<obj>\S.*?): \((?P<id>[A-Za-z0-9_.]+\.[A-Z]\d+)\) (?P<msg>.+)$")


def _own_frame(frames, release_dir):
    """The innermost frame in the project's code (the release, not its venv), else the innermost one."""
    if release_dir:
        root = os.path.abspath(release_dir) + os.sep
        venv = root + "venv" + os.sep
        own = [f for f in frames
               if os.path.abspath(f.filename).startswith(root) and not os.path.abspath(f.filename).startswith(venv)]
        if own:
            return own[-1]
    return frames[-1] if frames else None


def first_error(exc, release_dir=""):
    """One line for an exception: 'Type: message (file, line N)'."""
    name = type(exc).__name__
    if isinstance(exc, SyntaxError) and exc.filename:
        message = exc.msg or "invalid syntax"
        where = (os.path.basename(exc.filename), exc.lineno)
    else:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        message = lines[0] if lines else ""
        frame = _own_frame(traceback.extract_tb(exc.__traceback__), release_dir)
        where = (os.path.basename(frame.filename), frame.lineno) if frame else None
    text = "%s: %s" % (name, message) if message else name
    if where and where[1]:
        text += " (%s, line %s)" % where
    return text


def first_check_error(text):
    """The first system check message in the output of a failed `check`."""
    for line in text.splitlines():
        match = CHECK_LINE.match(line.strip())
        if match:
            return "SystemCheckError: %s: (%s) %s" % (match.group("obj"), match.group("id"), match.group("msg"))
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return "SystemCheckError: " + (lines[0] if lines else "system check failed")


INMEMORY_LAYER = "channels.layers.InMemoryChannelLayer"


def _truthy(value):
    return str(value).strip().lower() in ("true", "1", "yes", "on")


def channel_layer_error(layers, check):
    """The refusal of an in-memory channel layer behind several daphne processes or hosts, else None."""
    check = check or {}
    if not check.get("asgi") or _truthy(check.get("allow", False)):
        return None
    processes = int(check.get("daphne_processes") or 0)
    hosts = int(check.get("app_hosts") or 1)
    if processes <= 1 and hosts <= 1:
        return None
    backend = ((layers or {}).get("default") or {}).get("BACKEND", "")
    if backend != INMEMORY_LAYER:
        return None
    served = []
    if processes > 1:
        served.append("%d daphne processes on this host" % processes)
    if hosts > 1:
        served.append("%d app hosts" % hosts)
    return ("ImproperlyConfigured: CHANNEL_LAYERS['default']['BACKEND'] is %s, whose group messages never leave "
            "one process, but %s serve the ASGI application %s: set CHANNEL_LAYERS to "
            "channels_redis.core.RedisChannelLayer on a Redis every process reaches (the collection's redis role; "
            "django_app exports its URL as REDIS_URL), or set django_app_allow_inmemory_channel_layer: true "
            "if the consumers use no groups" % (INMEMORY_LAYER, " and ".join(served), check["asgi"]))


def load(spec):
    module, _, attr = spec.partition(":")
    return getattr(importlib.import_module(module), attr or "application")


def report(payload):
    sys.stdout.write(MARK + json.dumps(payload, sort_keys=True) + "\n")
    sys.stdout.flush()


def served_root(root, release_dir, app_root, shared_paths):
    """Where nginx finds a root: through `current` or `shared` when it lies in the release."""
    if not root or not release_dir or not app_root:
        return root
    release = os.path.normpath(release_dir)
    path = os.path.normpath(root)
    if path != release and not path.startswith(release + os.sep):
        return path
    rel = os.path.relpath(path, release)
    for shared in shared_paths or []:
        shared = os.path.normpath(shared)
        if rel == shared or rel.startswith(shared + os.sep):
            return os.path.join(app_root, "shared", rel)
    return os.path.normpath(os.path.join(app_root, "current", rel))


def serve(settings, release_dir, app_root, shared_paths):
    """What nginx serves: each of static and media with a local URL path and a root."""
    out = {}
    for kind in ("static", "media"):
        url = settings[kind.upper() + "_URL"]
        root = settings[kind.upper() + "_ROOT"]
        if url.startswith("/") and not url.startswith("//") and root:
            out[kind] = {"url": url if url.endswith("/") else url + "/",
                         "root": served_root(root, release_dir, app_root, shared_paths)}
    return out


def main(argv):
    args = json.loads(argv[0])
    release_dir = args["release_dir"]
    settings_module = args.get("settings_module", "")
    apps = [a for a in args.get("apps", []) if a]
    if settings_module:
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", settings_module)
    if release_dir not in sys.path:
        sys.path.insert(0, release_dir)
    try:
        for spec in apps:
            load(spec)
    except Exception as exc:  # pylint: disable=broad-except
        report({"ok": False, "error": first_error(exc, release_dir)})
        return 1
    except SystemExit as exc:
        report({"ok": False, "error": "SystemExit: %s while importing the applications" % exc.code})
        return 1

    import django
    from django.conf import settings
    django.setup()
    refusal = channel_layer_error(getattr(settings, "CHANNEL_LAYERS", None), args.get("channel_layer"))
    if refusal:
        report({"ok": False, "error": refusal})
        return 1
    if str(args.get("check_deploy", True)).lower() in ("true", "1", "yes"):
        from django.core.management import call_command
        from django.core.management.base import SystemCheckError
        try:
            call_command("check", deploy=True, fail_level=args.get("fail_level", "ERROR"))
        except SystemCheckError as exc:
            report({"ok": False, "error": first_check_error(str(exc))})
            return 1
        except Exception as exc:  # pylint: disable=broad-except
            report({"ok": False, "error": first_error(exc, release_dir)})
            return 1
    values = {name: "" if getattr(settings, name, None) is None else str(getattr(settings, name))
              for name in ("STATIC_URL", "STATIC_ROOT", "MEDIA_URL", "MEDIA_ROOT")}
    report({"ok": True, "settings": values,
            "serve": serve(values, release_dir, args.get("app_root", ""), args.get("shared_paths", []))})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

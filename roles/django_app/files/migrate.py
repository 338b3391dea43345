# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Apply the database migrations of one release, once, under a lock.

Copied by the django_app role (tasks/migrate.yml) to <app root>/bin/webstack-migrate.py
and run in the release's own virtualenv, as the app user, with the app's
environment (through envexec), from the release directory:

    runuser -u APP -- ENVEXEC RELEASE/venv/bin/python webstack-migrate.py \\
        '{"release_dir": RELEASE, "settings_module": "demo.settings"}'

Arguments (one JSON object, optional): release_dir (default: the working
directory), settings_module (default: DJANGO_SETTINGS_MODULE of the
environment), database (the alias, default "default"), plan (true: only list
what is pending, touch nothing and take no lock), lock_timeout (seconds to wait
for the lock, default 600).

With PostgreSQL, a session advisory lock (pg_advisory_lock's key derived from
the database name, so every host and every release of the app agree on it) is
taken first; then, in the same connection, what is still pending is read
again and Django's migrate runs. A second run started meanwhile (another host,
a second playbook, an operator by hand) waits on the lock and then finds
nothing pending. Other databases (sqlite on a laptop) have no such lock.

Django's own output goes to stderr. The last line of stdout is always one
JSON object:

    {"vendor": "postgresql", "database": {"name", "host", "port"}, "lock_key": int or null,
     "lock_waited_s": 0.0, "plan": false, "pending_before_lock": [...], "pending": [...],
     "applied": [...], "unknown_applied": [...],
     "failed": null or {"migration": "app.0003_x" or null, "error": "<one line>"}}

pending is what was still to apply once the lock was held; applied what this
run applied; unknown_applied what the database has applied that this release
does not know (a later release's migrations: after a rollback they stay); failed names the migration that failed (null when the failure
came before any migration, e.g. the database cannot be reached). Exit status
0, or 1 when failed is set.
"""

import hashlib
import json
import os
import sys
import time

LOCK_NAMESPACE = "webstack.django_uwsgi migrate "


class LockTimeout(Exception):
    """The migration lock was not free within lock_timeout seconds."""


def lock_key(database_name):
    """The advisory lock key of a database: a signed 64-bit integer from its name."""
    digest = hashlib.sha256((LOCK_NAMESPACE + str(database_name)).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def one_line(exc):
    """'Type: first line of the message', at most 500 characters."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    text = type(exc).__name__ + (": " + lines[0] if lines else "")
    return text[:500]


def label(migration):
    return "%s.%s" % (migration.app_label, migration.name)


def pending_migrations(connection):
    """The migrations Django's migrate would apply now, in order."""
    from django.db.migrations.executor import MigrationExecutor

    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [label(migration) for migration, backwards in plan if not backwards]


def unknown_applied(connection):
    """Migrations recorded as applied that this release does not have (applied by a later release)."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(connection)
    return sorted("%s.%s" % key for key in loader.applied_migrations
                  if key not in loader.disk_migrations and key[0] in loader.migrated_apps)


def take_lock(connection, key, timeout):
    """Wait for the session advisory lock; returns the seconds waited."""
    started = time.monotonic()
    with connection.cursor() as cursor:
        while True:
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [key])
            if cursor.fetchone()[0]:
                return time.monotonic() - started
            if time.monotonic() - started >= timeout:
                raise LockTimeout("the migration lock (pg_advisory_lock %d) is still held by another session "
                                  "after %s s: another migrate runs" % (key, timeout))
            time.sleep(0.2)


def release_lock(connection, key):
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_unlock(%s)", [key])
    except Exception:  # pylint: disable=broad-except
        pass  # the session's end releases it anyway


def run_migrate(alias, result):
    """Django's migrate, recording each migration it starts and finishes."""
    from django.core.management import call_command
    from django.db.migrations.executor import MigrationExecutor

    current = {"migration": None}
    original = MigrationExecutor.apply_migration

    def apply_migration(self, state, migration, fake=False, fake_initial=False):
        current["migration"] = label(migration)
        state = original(self, state, migration, fake=fake, fake_initial=fake_initial)
        result["applied"].append(label(migration))
        current["migration"] = None
        return state

    MigrationExecutor.apply_migration = apply_migration
    try:
        call_command("migrate", database=alias, interactive=False, verbosity=1, stdout=sys.stderr)
    except Exception as exc:  # pylint: disable=broad-except
        result["failed"] = {"migration": current["migration"], "error": one_line(exc)}
    finally:
        MigrationExecutor.apply_migration = original


def migrate(args):
    result = {"vendor": None, "database": {}, "lock_key": None, "lock_waited_s": 0.0,
              "plan": bool(args.get("plan", False)), "pending_before_lock": [], "pending": [],
              "applied": [], "unknown_applied": [], "failed": None}
    alias = args.get("database") or "default"
    key = None
    locked = False
    connection = None
    try:
        import django
        django.setup()
        from django.db import connections

        connection = connections[alias]
        result["vendor"] = connection.vendor
        result["database"] = {name.lower(): str(connection.settings_dict.get(name) or "")
                              for name in ("NAME", "HOST", "PORT")}
        connection.ensure_connection()
        result["pending_before_lock"] = result["pending"] = pending_migrations(connection)
        result["unknown_applied"] = unknown_applied(connection)
        if connection.vendor == "postgresql":
            key = result["lock_key"] = lock_key(connection.settings_dict.get("NAME"))
        if result["plan"]:
            return result
        if key is not None:
            result["lock_waited_s"] = round(take_lock(connection, key, float(args.get("lock_timeout", 600))), 3)
            locked = True
            # What another run applied while this one waited is no longer pending.
            result["pending"] = pending_migrations(connection)
        if result["pending"]:
            run_migrate(alias, result)
    except Exception as exc:  # pylint: disable=broad-except
        result["failed"] = {"migration": None, "error": one_line(exc)}
    finally:
        if locked:
            release_lock(connection, key)
    return result


def main(argv):
    args = json.loads(argv[0]) if argv and argv[0].strip() else {}
    release_dir = args.get("release_dir") or os.getcwd()
    if args.get("settings_module"):
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", args["settings_module"])
    if release_dir not in sys.path:
        sys.path.insert(0, release_dir)
    result = migrate(args)
    sys.stdout.write(json.dumps(result, sort_keys=True) + "\n")
    sys.stdout.flush()
    return 1 if result["failed"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""roles/django_app/files/migrate.py against a real Django: sqlite (no lock) and
PostgreSQL with its advisory lock (a second run started while the first
migrates waits, then finds nothing pending). The fixtures (a virtualenv with
the demo's Django and psycopg, a throwaway PostgreSQL cluster) are in conftest.py.
"""

import json
import os
import subprocess
import textwrap
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
SCRIPT = os.path.join(REPO, "roles", "django_app", "files", "migrate.py")


def sql(pg, statement, database="postgres"):
    out = subprocess.run(pg["psql"] + ["-d", database, "-c", statement], capture_output=True, text=True,
                         timeout=60, check=True)
    return out.stdout.strip()


MODEL = "from django.db import models\n\n\nclass Item(models.Model):\n    name = models.CharField(max_length=20)\n"

INITIAL = textwrap.dedent("""\
    from django.db import migrations, models


    class Migration(migrations.Migration):
        initial = True
        dependencies = []
        operations = [migrations.CreateModel("Item", [
            ("id", models.AutoField(primary_key=True)), ("name", models.CharField(max_length=20))])]
    """)


def step(name, sql_text):
    return textwrap.dedent("""\
        from django.db import migrations


        class Migration(migrations.Migration):
            dependencies = [("shop", "%s")]
            operations = [migrations.RunSQL(%r, migrations.RunSQL.noop)]
        """) % (name, sql_text)


def project(root, database, migrations):
    """A project with one app (shop) and the given migrations {name: source}."""
    (root / "shop" / "migrations").mkdir(parents=True)
    (root / "shop" / "__init__.py").write_text("")
    (root / "shop" / "models.py").write_text(MODEL)
    (root / "shop" / "migrations" / "__init__.py").write_text("")
    for name, source in migrations.items():
        (root / "shop" / "migrations" / (name + ".py")).write_text(source)
    (root / "proj").mkdir()
    (root / "proj" / "__init__.py").write_text("")
    (root / "proj" / "settings.py").write_text(
        "SECRET_KEY = 'x'\nINSTALLED_APPS = ['shop']\nUSE_TZ = True\nDATABASES = {'default': %r}\n" % (database,))
    return root


def run(python, release, **args):
    return start(python, release, **args).result()


class Run:
    def __init__(self, proc):
        self.proc = proc

    def result(self):
        out, err = self.proc.communicate(timeout=120)
        lines = out.strip().splitlines()
        assert lines, err
        return self.proc.returncode, json.loads(lines[-1])


def start(python, release, **args):
    payload = dict({"release_dir": str(release), "settings_module": "proj.settings"}, **args)
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    return Run(subprocess.Popen([python, SCRIPT, json.dumps(payload)], cwd=str(release), env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))


def test_lock_key_is_stable_and_signed_64_bit():
    spec = {}
    with open(SCRIPT, encoding="utf-8") as handle:
        exec(compile(handle.read(), SCRIPT, "exec"), spec)  # pylint: disable=exec-used
    key = spec["lock_key"]("demo")
    assert key == spec["lock_key"]("demo") != spec["lock_key"]("notes")
    assert -2 ** 63 <= key < 2 ** 63


def sqlite_db(tmp_path):
    return {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "db.sqlite3")}


def test_sqlite_applies_and_reports(django_python, tmp_path):
    release = project(tmp_path / "r1", sqlite_db(tmp_path), {"0001_initial": INITIAL})
    rc, out = run(django_python, release)
    assert rc == 0
    assert out == {"vendor": "sqlite", "database": {"name": str(tmp_path / "db.sqlite3"), "host": "", "port": ""},
                   "lock_key": None, "lock_waited_s": 0.0, "plan": False,
                   "pending_before_lock": ["shop.0001_initial"], "pending": ["shop.0001_initial"],
                   "applied": ["shop.0001_initial"], "unknown_applied": [], "failed": None}
    rc, again = run(django_python, release)
    assert (rc, again["pending"], again["applied"], again["failed"]) == (0, [], [], None)


def test_plan_lists_pending_and_applies_nothing(django_python, tmp_path):
    release = project(tmp_path / "r1", sqlite_db(tmp_path), {"0001_initial": INITIAL})
    rc, out = run(django_python, release, plan=True)
    assert (rc, out["plan"], out["pending"], out["applied"]) == (0, True, ["shop.0001_initial"], [])
    rc, out = run(django_python, release, plan=True)
    assert out["pending"] == ["shop.0001_initial"]


def test_sqlite_failing_migration_is_named(django_python, tmp_path):
    release = project(tmp_path / "r1", sqlite_db(tmp_path), {
        "0001_initial": INITIAL,
        "0002_broken": step("0001_initial", "UPDATE no_such_table SET x = 1"),
    })
    rc, out = run(django_python, release)
    assert rc == 1
    assert out["applied"] == ["shop.0001_initial"]
    assert out["failed"] == {"migration": "shop.0002_broken", "error": "OperationalError: no such table: no_such_table"}


def test_unreachable_database_fails_before_any_migration(django_python, tmp_path):
    db = {"ENGINE": "django.db.backends.sqlite3", "NAME": str(tmp_path / "missing" / "db.sqlite3")}
    release = project(tmp_path / "r1", db, {"0001_initial": INITIAL})
    rc, out = run(django_python, release)
    assert rc == 1
    assert out["failed"]["migration"] is None
    assert out["failed"]["error"].startswith("OperationalError: unable to open database file")


def pg_db(pg, name):
    sql(pg, "CREATE DATABASE %s" % name)
    return {"ENGINE": "django.db.backends.postgresql", "NAME": name, "USER": "postgres",
            "HOST": pg["socket"], "PORT": pg["port"]}


def advisory_locks(pg):
    return int(sql(pg, "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"))


def test_postgresql_second_run_waits_on_the_lock_then_finds_nothing(django_python, postgres, tmp_path):
    db = pg_db(postgres, "shop_lock")
    migrations = {"0001_initial": INITIAL, "0002_slow": step("0001_initial", "SELECT pg_sleep(3)")}
    first_release = project(tmp_path / "r1", db, migrations)
    second_release = project(tmp_path / "r2", db, migrations)
    first = start(django_python, first_release)
    deadline = time.monotonic() + 60
    while advisory_locks(postgres) == 0:
        assert time.monotonic() < deadline, "the first run never took the lock"
        time.sleep(0.1)
    second = start(django_python, second_release)
    rc1, out1 = first.result()
    rc2, out2 = second.result()
    assert (rc1, out1["failed"], out1["vendor"]) == (0, None, "postgresql")
    assert out1["applied"] == ["shop.0001_initial", "shop.0002_slow"]
    assert out1["lock_key"] == out2["lock_key"]
    # The second run saw work pending, waited for the first to finish, then had none left.
    assert rc2 == 0 and out2["failed"] is None
    assert out2["pending_before_lock"] and out2["pending"] == [] and out2["applied"] == []
    assert out2["lock_waited_s"] >= 1.0
    rows = sql(postgres, "SELECT name FROM django_migrations WHERE app = 'shop' ORDER BY id", "shop_lock")
    assert rows.splitlines() == ["0001_initial", "0002_slow"]
    assert advisory_locks(postgres) == 0


def test_postgresql_failing_migration_is_named_and_the_lock_freed(django_python, postgres, tmp_path):
    db = pg_db(postgres, "shop_fail")
    release = project(tmp_path / "r1", db, {
        "0001_initial": INITIAL,
        "0002_broken": step("0001_initial", "ALTER TABLE no_such_table ADD COLUMN x integer"),
    })
    rc, out = run(django_python, release)
    assert rc == 1
    assert out["applied"] == ["shop.0001_initial"]
    assert out["failed"]["migration"] == "shop.0002_broken"
    assert out["failed"]["error"] == 'ProgrammingError: relation "no_such_table" does not exist'
    assert advisory_locks(postgres) == 0


def test_postgresql_lock_timeout_applies_nothing(django_python, postgres, tmp_path):
    db = pg_db(postgres, "shop_busy")
    release = project(tmp_path / "r1", db, {"0001_initial": INITIAL})
    rc, out = run(django_python, release, plan=True)
    assert rc == 0 and out["lock_key"] is not None
    holder = subprocess.Popen(postgres["psql"] + ["-d", "shop_busy", "-c", "SELECT pg_advisory_lock(%d)" % out["lock_key"],
                                                  "-c", "SELECT pg_sleep(6)"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(1)
        rc, out = run(django_python, release, lock_timeout=1)
    finally:
        holder.kill()
        holder.wait()
    assert rc == 1
    assert out["failed"]["migration"] is None
    assert out["failed"]["error"].startswith("LockTimeout: the migration lock (pg_advisory_lock ")
    assert out["applied"] == []


def test_an_older_release_sees_the_later_migrations_as_unknown(django_python, tmp_path):
    db = sqlite_db(tmp_path)
    newer = project(tmp_path / "r2", db, {"0001_initial": INITIAL, "0002_more": step("0001_initial", "SELECT 1")})
    older = project(tmp_path / "r1", db, {"0001_initial": INITIAL})
    assert run(django_python, newer)[0] == 0
    rc, out = run(django_python, older, plan=True)
    assert (rc, out["pending"], out["unknown_applied"]) == (0, [], ["shop.0002_more"])

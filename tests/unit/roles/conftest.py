# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures of the role helper tests that need a real Django or PostgreSQL.

django_python: the python of a private virtualenv with the demo's pinned Django
and psycopg, built once under build/test-venvs/ (from PyPI).
postgres: a throwaway PostgreSQL cluster (initdb, pg_ctl) listening only on a
unix socket in a temporary directory, from Debian's postgresql package, which
is installed when missing and this runs as root (so CI brings its own).
"""

import glob
import hashlib
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
DEMO_REQUIREMENTS = os.path.join(REPO, "examples", "demo", "requirements.txt")


def _pins():
    with open(DEMO_REQUIREMENTS, encoding="utf-8") as handle:
        lines = [line.split("#")[0].strip() for line in handle]
    return [line for line in lines if line.lower().startswith(("django==", "psycopg[binary]=="))]


@pytest.fixture(scope="session")
def django_python():
    """The python of a virtualenv with the demo's Django and psycopg."""
    pins = _pins()
    venv = os.path.join(REPO, "build", "test-venvs",
                        "django-" + hashlib.sha256("\n".join(pins).encode()).hexdigest()[:12])
    python = os.path.join(venv, "bin", "python")
    if not os.path.exists(os.path.join(venv, ".complete")):
        shutil.rmtree(venv, ignore_errors=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", venv], check=True, capture_output=True, timeout=120)
            subprocess.run([python, "-m", "pip", "install", "--quiet", *pins], check=True, capture_output=True,
                           timeout=600)
        except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as exc:
            pytest.skip("cannot build a virtualenv with %s: %s" % (" ".join(pins), getattr(exc, "stderr", exc)))
        open(os.path.join(venv, ".complete"), "w", encoding="utf-8").close()
    return python


def _pg_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return os.path.dirname(found[-1]) if found else None


@pytest.fixture(scope="session")
def postgres():
    """A throwaway PostgreSQL cluster: {"socket", "port", "psql"}; skipped when none can run here."""
    bindir = _pg_bin()
    if bindir is None and os.geteuid() == 0 and shutil.which("apt-get"):
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "install", "-y", "-qq", "postgresql"], env=env, capture_output=True,
                       timeout=600, check=False)
        bindir = _pg_bin()
    if bindir is None:
        pytest.skip("no PostgreSQL server binaries (Debian: apt-get install postgresql)")
    run_as = []
    top = tempfile.mkdtemp(prefix="webstack-pg-")
    os.chmod(top, 0o755)
    if os.geteuid() == 0:
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root and there is no postgres user to run the server as")
        os.chown(top, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    data = os.path.join(top, "data")
    port = str(20000 + os.getpid() % 10000)
    subprocess.run(run_as + [os.path.join(bindir, "initdb"), "-D", data, "-A", "trust", "-U", "postgres"],
                   check=True, capture_output=True, timeout=120)
    subprocess.run(run_as + [os.path.join(bindir, "pg_ctl"), "-D", data, "-w", "-l", os.path.join(top, "log"),
                             "-o", "-k %s -p %s -c listen_addresses=''" % (top, port), "start"],
                   check=True, capture_output=True, timeout=120)
    psql = [os.path.join(bindir, "psql"), "-h", top, "-p", port, "-U", "postgres", "-X", "-A", "-t", "-q"]
    try:
        yield {"socket": top, "port": port, "psql": psql}
    finally:
        subprocess.run(run_as + [os.path.join(bindir, "pg_ctl"), "-D", data, "-m", "immediate", "stop"],
                       capture_output=True, timeout=120, check=False)
        shutil.rmtree(top, ignore_errors=True)

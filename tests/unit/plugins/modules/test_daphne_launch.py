# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The daphne role's launcher: it replaces itself with the command line of the
slot it is named, with the slot's variables added to its environment, and
fails naming the slot or the file when either is wrong."""

from __future__ import absolute_import, division, print_function

import json
import os
import subprocess
import sys

import pytest

LAUNCH = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..', 'roles', 'daphne',
                      'templates', 'daphne_launch.py.j2')
SHOW = 'import json, os, sys; print(json.dumps([os.getpid(), sys.argv[1:], os.environ.get("WEBSTACK_X"), os.environ.get("KEPT")]))'


@pytest.fixture
def launcher(tmp_path):
    """The launcher's Python (its only Jinja is the ansible_managed line) in a directory of its own."""
    with open(LAUNCH, encoding='utf-8') as handle:
        lines = handle.read().splitlines(True)
    assert lines[0].startswith('{{ ansible_managed')
    path = tmp_path / 'webstack_daphne_launch.py'
    path.write_text(''.join(lines[1:]), encoding='utf-8')
    return path


def run(launcher, *args):
    return subprocess.run([sys.executable, '-I', str(launcher), *args], capture_output=True, text=True, timeout=30,
                          env=dict(os.environ, KEPT='from-envexec', WEBSTACK_X='old'), check=False)


def test_execs_the_slot_with_its_variables(launcher):
    slots = {'daphne0': {'argv': [sys.executable, '-c', SHOW, '-b', '127.0.0.1', '-p', 8001], 'env': {'WEBSTACK_X': 1}},
             'daphne1': {'argv': ['/nonexistent'], 'env': {}}}
    (launcher.parent / 'slots.json').write_text(json.dumps({'managed': 'x', 'slots': slots}), encoding='utf-8')
    out = run(launcher, 'daphne0')
    assert out.returncode == 0, out.stderr
    pid, argv, var, kept = json.loads(out.stdout)
    # the slot's arguments (as strings), its variable over the inherited one, the rest of the environment kept
    assert argv == ['-b', '127.0.0.1', '-p', '8001'] and var == '1' and kept == 'from-envexec'
    assert isinstance(pid, int) and pid > 0


def test_unknown_slot_is_named(launcher):
    (launcher.parent / 'slots.json').write_text(json.dumps({'slots': {'daphne0': {'argv': ['x'], 'env': {}}}}),
                                                encoding='utf-8')
    out = run(launcher, 'daphne7')
    assert out.returncode == 1 and "no slot 'daphne7'" in out.stderr and 'slots: daphne0' in out.stderr


def test_missing_slots_file_is_named(launcher):
    out = run(launcher, 'daphne0')
    assert out.returncode == 1 and 'cannot read the slots of' in out.stderr and 'slots.json' in out.stderr


def test_usage(launcher):
    out = run(launcher)
    assert out.returncode == 1 and 'usage:' in out.stderr

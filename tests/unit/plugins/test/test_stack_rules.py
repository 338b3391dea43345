# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The stack's input rules (plugins/test/stack_rules.py): what each test takes and refuses."""

from __future__ import absolute_import, division, print_function

import os

import pytest
import yaml

from ansible_collections.webstack.django_uwsgi.plugins.test import stack_rules

TESTS = stack_rules.TestModule().tests()
PLUGIN_DIR = os.path.dirname(os.path.abspath(stack_rules.__file__))
NOT_STRINGS = [None, 1, 1.5, True, ["v1"], {"name": "v1"}, b"v1"]

# (test, value, expected)
CASES = [
    ("release_id", "v1", True),
    ("release_id", "0123456789ab", True),
    ("release_id", "0123456789ab-dirty-0123abcd", True),
    ("release_id", "A.b_c-D", True),
    ("release_id", "a" * 64, True),
    ("release_id", "a" * 65, False),
    ("release_id", "", False),
    ("release_id", "v1;rm -rf /;$(id)", False),
    ("release_id", "v1/../..", False),
    ("release_id", "v 1", False),
    ("release_id", "v1\n", False),
    ("release_id", "vé", False),
    ("app_name", "demo", True),
    ("app_name", "_shop", True),
    ("app_name", "my-app_2", True),
    ("app_name", "a" * 31, True),
    ("app_name", "a" * 32, False),
    ("app_name", "", False),
    ("app_name", "2shop", False),
    ("app_name", "-shop", False),
    ("app_name", "Demo", False),
    ("app_name", "my app", False),
    ("app_name", "../etc", False),
    ("app_name", "demo\n", False),
    ("env_key", "DJANGO_DEBUG", True),
    ("env_key", "_private", True),
    ("env_key", "db2", True),
    ("env_key", "", False),
    ("env_key", "2DB", False),
    ("env_key", "BAD-KEY", False),
    ("env_key", "A B", False),
    ("env_key", "KEY=1", False),
    ("env_key", "KEY\n", False),
    ("subscription_key", "app.test", True),
    ("subscription_key", "localhost:18480", True),
    ("subscription_key", "[::1]", True),
    ("subscription_key", "", True),
    ("subscription_key", "app test", False),
    ("subscription_key", "app/test", False),
    ("subscription_key", "*.example.com", False),
    ("private_host", "127.0.0.1", True),
    ("private_host", "127.12.0.9", True),
    ("private_host", "10.0.0.5", True),
    ("private_host", "172.16.0.1", True),
    ("private_host", "172.31.255.254", True),
    ("private_host", "192.168.1.10", True),
    ("private_host", "localhost", True),
    ("private_host", "[::1]", True),
    ("private_host", "0.0.0.0", False),
    ("private_host", "", False),
    ("private_host", "*", False),
    ("private_host", "8.8.8.8", False),
    ("private_host", "172.15.0.1", False),
    ("private_host", "172.32.0.1", False),
    ("private_host", "192.169.0.1", False),
    ("private_host", "10.300.0.1", False),
    ("private_host", "127.1", False),
    ("private_host", "::1", False),
    ("private_host", "[::]", False),
    ("private_host", "app1.internal", False),
    ("private_host", "localhost.example.com", False),
    ("private_host", "127.0.0.1:8000", False),
    ("under_tmp", "/tmp", True),
    ("under_tmp", "/tmp/", True),
    ("under_tmp", "/tmp/supervisor.sock", True),
    ("under_tmp", "/var/tmp", True),
    ("under_tmp", "/var/tmp/uwsgi/web1.sock", True),
    ("under_tmp", "//tmp/x", True),
    ("under_tmp", "/run/../tmp/x", True),
    ("under_tmp", "/run/uwsgi", False),
    ("under_tmp", "/tmpfs/x", False),
    ("under_tmp", "/var/tmpx", False),
    ("under_tmp", "/srv/tmp/x", False),
    ("under_tmp", "/tmp/../run/x", False),
    ("under_tmp", "tmp/x", False),
    ("under_tmp", "", False),
]


@pytest.mark.parametrize("name, value, expected", CASES, ids=[f"{c[0]}-{c[1]!r}" for c in CASES])
def test_rule(name, value, expected):
    assert TESTS[name](value) is expected


@pytest.mark.parametrize("name", sorted(TESTS))
@pytest.mark.parametrize("value", NOT_STRINGS, ids=repr)
def test_not_a_string_fails_every_rule(name, value):
    assert TESTS[name](value) is False


def test_every_case_names_a_test():
    assert {case[0] for case in CASES} == set(TESTS)


@pytest.mark.parametrize("name", sorted(TESTS))
def test_every_test_is_documented_in_its_own_file(name):
    with open(os.path.join(PLUGIN_DIR, name + ".yml"), encoding="utf-8") as handle:
        doc = yaml.safe_load(handle)
    assert doc["DOCUMENTATION"]["name"] == name
    assert doc["DOCUMENTATION"]["short_description"]
    assert "webstack.django_uwsgi." + name in doc["EXAMPLES"]
    assert doc["RETURN"]["_value"]["type"] == "boolean"

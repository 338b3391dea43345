# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The module_utils_source lookup: the text of the collection's own module_utils files."""

from __future__ import absolute_import, division, print_function

import os

import pytest
from ansible.errors import AnsibleLookupError

from ansible_collections.webstack.django_uwsgi.plugins.lookup.module_utils_source import LookupModule, module_source

REPO = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", ".."))


def source(name):
    with open(os.path.join(REPO, "plugins", "module_utils", name + ".py"), encoding="utf-8") as handle:
        return handle.read()


@pytest.mark.parametrize("name", ["uwsgi_stats", "uwsgi_protocol"])
def test_returns_the_file_of_the_collection(name):
    assert module_source(name) == source(name)


def test_the_lookup_returns_one_text_per_term():
    lookup = LookupModule()
    assert lookup.run(["uwsgi_stats", "uwsgi_protocol"], variables={}) == [source("uwsgi_stats"),
                                                                           source("uwsgi_protocol")]


@pytest.mark.parametrize("name, message", [
    ("no_such_module", "no module_utils named 'no_such_module'"),
    ("../plugin_utils/stack_model", "is not a module name"),
    ("uwsgi_stats.py", "is not a module name"),
    ("", "is not a module name"),
])
def test_refuses_what_is_not_a_module_utils_of_the_collection(name, message):
    with pytest.raises(AnsibleLookupError, match=message.replace(".", r"\.")):
        module_source(name)


def test_without_a_term_it_fails():
    with pytest.raises(AnsibleLookupError, match="name at least one module"):
        LookupModule().run([], variables={})

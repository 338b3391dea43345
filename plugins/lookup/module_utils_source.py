# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: module_utils_source
author:
  - webstack.django_uwsgi maintainers (@webstack)
version_added: 0.1.0
short_description: The source text of one of the collection's module_utils
description:
  - Returns the Python source of C(plugins/module_utils/<name>.py) of this collection, found through Python's import
    system (the collection as Ansible loaded it), so that a role can install the collection's own client code on a host
    beside a script that runs there without Ansible (for example the stats client C(uwsgi_stats) under the metrics
    timer of the C(metrics) role).
  - Only modules that need nothing but the Python standard library make sense on a host; the lookup does not check that.
options:
  _terms:
    description:
      - Names of module_utils modules, without C(.py) (C(uwsgi_stats)).
    type: list
    elements: str
    required: true
"""

EXAMPLES = r"""
- name: Install the stats client beside a script
  ansible.builtin.copy:
    content: "{{ lookup('webstack.django_uwsgi.module_utils_source', 'uwsgi_stats') }}"
    dest: /usr/local/lib/mytool/uwsgi_stats.py
    mode: "0644"
"""

RETURN = r"""
_raw:
  description: The source text of each module named, in order.
  type: list
  elements: str
"""

import importlib
import re

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

PACKAGE = "ansible_collections.webstack.django_uwsgi.plugins.module_utils"
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def module_source(name):
    """The text of module_utils/<name>.py of this collection."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise AnsibleLookupError(
            f"webstack.django_uwsgi.module_utils_source: {name!r} is not a module name (letters, digits, _)")
    try:
        module = importlib.import_module(f"{PACKAGE}.{name}")
    except ImportError as exc:
        raise AnsibleLookupError(
            f"webstack.django_uwsgi.module_utils_source: no module_utils named {name!r} in the collection: {exc}") from None
    path = getattr(module, "__file__", None) or ""
    if not path.endswith(".py"):
        raise AnsibleLookupError(
            f"webstack.django_uwsgi.module_utils_source: {name!r} has no Python source file ({path or 'none'})")
    with open(path, encoding="utf-8") as handle:
        return handle.read()


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        if not terms:
            raise AnsibleLookupError("webstack.django_uwsgi.module_utils_source: name at least one module")
        return [module_source(term) for term in terms]

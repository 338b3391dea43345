# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Make `ansible_collections.webstack.django_uwsgi` importable for pytest.

The plugins import each other through the collection namespace, so the
tests do too. In order, this uses:

1. a checkout that already lives at .../ansible_collections/webstack/django_uwsgi
   (ansible-test layout);
2. a collections path from WEBSTACK_COLLECTIONS_PATH or ANSIBLE_COLLECTIONS_PATH
   (tools/env.sh links the checkout there) whose link resolves to this checkout;
3. otherwise a private temporary collections path with a symlink to this
   checkout, removed at exit. So `pytest tests/unit` works from a fresh clone
   with nothing but the virtualenv.
"""

from __future__ import absolute_import, division, print_function

import atexit
import os
import shutil
import sys
import tempfile

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_REL = os.path.join('ansible_collections', 'webstack', 'django_uwsgi')


def _same(path_a, path_b):
    try:
        return os.path.samefile(path_a, path_b)
    except OSError:
        return False


def _collections_root():
    parts = REPO_ROOT.split(os.sep)
    if parts[-3:] == ['ansible_collections', 'webstack', 'django_uwsgi']:
        return os.sep.join(parts[:-3]) or os.sep
    candidates = []
    for var in ('WEBSTACK_COLLECTIONS_PATH', 'ANSIBLE_COLLECTIONS_PATH', 'ANSIBLE_COLLECTIONS_PATHS'):
        candidates.extend(p for p in os.environ.get(var, '').split(os.pathsep) if p)
    for root in candidates:
        if _same(os.path.join(root, _REL), REPO_ROOT):
            return root
    tmp = tempfile.mkdtemp(prefix='webstack-collections-')
    atexit.register(shutil.rmtree, tmp, True)
    os.makedirs(os.path.join(tmp, 'ansible_collections', 'webstack'))
    os.symlink(REPO_ROOT, os.path.join(tmp, _REL))
    return tmp


COLLECTIONS_ROOT = _collections_root()
if COLLECTIONS_ROOT not in sys.path:
    sys.path.insert(0, COLLECTIONS_ROOT)
os.environ['WEBSTACK_TEST_COLLECTIONS_ROOT'] = COLLECTIONS_ROOT

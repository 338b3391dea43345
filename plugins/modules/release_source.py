#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: release_source
short_description: Derive the release id of an application source tree and pack it into a gzipped tar
version_added: 0.1.0
description:
  - Reads a source tree (a Django project) and derives its release id. When O(path) is the top of a git work
    tree, the id is its commit (12 hex digits), with C(-dirty-<8 hex digits>) of the content hash appended when
    C(git status --porcelain) reports uncommitted changes. Any other directory gets the first 16 hex digits of
    a sha256 over the kept entries' relative paths, kinds (file, executable, directory, symlink target) and
    bytes; timestamps and owners do not count, so the same content always gets the same id.
  - With O(dest), also writes a gzipped tar of the same entries to O(dest), owned by root, directories and
    executables 0755, other files 0644, so that one transfer ships the whole release. The file is replaced
    only when its content differs from what the tree would give (compared uncompressed, so an archive packed
    by an older version of this module with the same entries counts as unchanged).
  - Meant for the controller (C(delegate_to=localhost)), where the source lives; the role
    P(webstack.django_uwsgi.django_app#role) derives its release and packs its source with it.
author:
  - webstack.django_uwsgi maintainers (@webstack)
attributes:
  check_mode:
    description: The id is derived in check mode too; with O(dest) the module reports whether it would write
      the archive, and writes nothing.
    support: full
  diff_mode:
    description: The archive is binary; there is nothing to show as a diff.
    support: none
options:
  path:
    description:
      - The source directory, on the host the module runs on.
    type: path
    required: true
  exclude:
    description:
      - Shell patterns (C(fnmatch)) matched against every file and directory name (not against paths); a
        matching directory is skipped with everything below it.
      - Excluded names count neither for the content hash nor in the archive. They do not hide changes from
        C(git status), so an untracked file that is excluded here still makes a git tree dirty.
    type: list
    elements: str
    default: []
  dest:
    description:
      - Path of the gzipped tar to write. Its directory must exist and must not be inside O(path).
      - When omitted, the module only derives the release id and never changes anything.
    type: path
notes:
  - Git is looked up on the PATH. Without git, or when O(path) is inside a work tree but not its top, the id
    is the content hash.
  - The content hash walks symlinks as links (their target text counts), never follows them.
seealso:
  - module: ansible.builtin.unarchive
"""

EXAMPLES = r"""
- name: Derive the release id of the project on the controller
  webstack.django_uwsgi.release_source:
    path: "{{ playbook_dir }}/../src/mysite"
    exclude: [.git, __pycache__, "*.pyc", .venv]
  delegate_to: localhost
  become: false
  register: source

- name: Show the release
  ansible.builtin.debug:
    msg: "release {{ source.release_id }} ({{ source.files }} files{{ ', uncommitted changes' if source.dirty else '' }})"

- name: Pack the source into a scratch directory on the controller
  webstack.django_uwsgi.release_source:
    path: /srv/build/mysite
    exclude: [.git, __pycache__, "*.pyc"]
    dest: /tmp/mysite-release.tar.gz
  delegate_to: localhost
  become: false

- name: Unpack it into the release directory on the host
  ansible.builtin.unarchive:
    src: /tmp/mysite-release.tar.gz
    dest: /srv/mysite/releases/{{ source.release_id }}
"""

RETURN = r"""
release_id:
  description: The release id of the tree.
  returned: success
  type: str
  sample: 3f2c9a1b7d4e-dirty-0c1d2e3f
git_commit:
  description: Full commit of C(HEAD) when O(path) is the top of a git work tree, else null.
  returned: success
  type: str
  sample: 3f2c9a1b7d4e5f60718293a4b5c6d7e8f9012345
dirty:
  description: Whether the git work tree has uncommitted changes (always false outside git).
  returned: success
  type: bool
  sample: false
files:
  description: Number of kept files and symlinks (directories not counted).
  returned: success
  type: int
  sample: 42
archive:
  description: The archive path (O(dest)), null when O(dest) is not given.
  returned: success
  type: str
  sample: /tmp/mysite-release.tar.gz
path:
  description: The source directory as read.
  returned: always
  type: str
  sample: /srv/build/mysite
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_native

from ansible_collections.webstack.django_uwsgi.plugins.module_utils.release_source import (
    ReleaseSourceError,
    archive_digest,
    describe,
    write_tar,
)


def _inside(child, parent):
    child, parent = os.path.realpath(child), os.path.realpath(parent)
    return child == parent or child.startswith(parent.rstrip(os.sep) + os.sep)


def pack(module, src, excludes, dest):
    """Write the archive unless ``dest`` holds the same content; True when it (would have) changed."""
    before = archive_digest(dest) if os.path.exists(dest) else None
    if module.check_mode:
        return write_tar(src, excludes) != before
    fd, tmp = tempfile.mkstemp(prefix='.%s.' % os.path.basename(dest), dir=os.path.dirname(dest))
    try:
        with os.fdopen(fd, 'wb') as out:
            after = write_tar(src, excludes, out)
        if after == before:
            return False
        module.atomic_move(tmp, dest)
        return True
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type='path', required=True),
            exclude=dict(type='list', elements='str', default=[]),
            dest=dict(type='path'),
        ),
        supports_check_mode=True,
    )
    src = module.params['path']
    excludes = [pattern for pattern in module.params['exclude'] if pattern]
    dest = module.params['dest']
    result = dict(changed=False, path=src, archive=dest)

    if not os.path.isdir(src):
        module.fail_json(msg='path %s is not a directory%s: give the source tree of the release (the module runs '
                             'where it is delegated, usually delegate_to: localhost for the controller)'
                         % (src, '' if os.path.exists(src) else ' (it does not exist)'), **result)
    if dest is not None:
        parent = os.path.dirname(os.path.abspath(dest))
        if os.path.isdir(dest):
            module.fail_json(msg='dest %s is a directory: give the path of the archive file to write' % dest, **result)
        if not os.path.isdir(parent):
            module.fail_json(msg='dest %s: its directory %s does not exist; create it first' % (dest, parent), **result)
        if _inside(parent, src):
            module.fail_json(msg='dest %s is inside path %s: the archive would pack itself; write it outside the '
                                 'source tree' % (dest, src), **result)

    try:
        result.update(describe(src, excludes, module.run_command, module.get_bin_path('git')))
        if dest is not None:
            result['changed'] = pack(module, src, excludes, dest)
    except ReleaseSourceError as exc:
        module.fail_json(msg='path %s: %s' % (src, exc), **result)
    except (IOError, OSError) as exc:
        module.fail_json(msg='path %s: cannot read the source tree%s: %s'
                             % (src, '' if dest is None else ' or write %s' % dest, to_native(exc)), **result)
    module.exit_json(**result)


if __name__ == '__main__':
    main()

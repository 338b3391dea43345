#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: files
short_description: Put several directories and files in place, with owner, group and mode, in one round trip
version_added: 0.1.0
description:
  - Makes each entry of O(paths) a directory or a regular file with the given owner, group and mode, in order.
    What C(ansible.builtin.file) with C(state=directory), C(ansible.builtin.file) with C(state=touch) (times
    preserved) and C(ansible.builtin.copy) with C(content) do for one path each, for all of them at once; a
    role's runtime directories, log files and small configuration files cost one module execution instead of
    two per file.
  - A file with O(paths[].content) gets exactly that content when it differs; it is written to a temporary
    file in the module's own temporary directory (never next to the file, where a daemon reading its whole
    directory could pick it up), checked there with O(paths[].validate) when given, and moved over the old
    file, so readers see the old or the new file, never a half-written one. A file without O(paths[].content) is created empty when
    it is missing and its content is never touched (a log, a trigger file).
  - A missing directory is created with its missing parents, each with the entry's owner, group and mode
    (as C(ansible.builtin.file) does).
  - Render a template for O(paths[].content) with the C(ansible.builtin.template) lookup.
author:
  - webstack.django_uwsgi maintainers (@webstack)
attributes:
  check_mode:
    description: Reports what it would create, write or change, and changes nothing.
    support: full
  diff_mode:
    description: One diff per changed entry, the content (for O(paths[].content)) and the state, owner, group
      and mode.
    support: full
options:
  paths:
    description:
      - The directories and files, handled in the order given.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path.
        type: path
        required: true
      state:
        description: V(directory) or V(file) (a regular file).
        type: str
        choices: [directory, file]
        default: file
      content:
        description:
          - The whole content of the file. Omitted, the file is created empty when missing and left as it is.
          - Only with O(paths[].state=file).
        type: str
      owner:
        description: Owner (name or uid). Omitted, left as it is (new paths get the module's user).
        type: str
      group:
        description: Group (name or gid). Omitted, left as it is.
        type: str
      mode:
        description: Permissions, an octal string such as V("0644"). Omitted, left as it is.
        type: raw
      validate:
        description:
          - Command run on the new content before it replaces the file, with C(%s) for the temporary file's
            path; a non-zero exit leaves the file as it was and fails the module with the command's output.
          - Only with O(paths[].content).
        type: str
notes:
  - Content goes through the module arguments, so this is meant for configuration files (kilobytes), not for large files.
  - Entries are handled in order and the module stops at the first failure; entries before it stay done.
seealso:
  - module: ansible.builtin.file
  - module: ansible.builtin.copy
  - module: ansible.builtin.template
"""

EXAMPLES = r"""
- name: Put the runtime and log directories, the access log and the logrotate rules in place
  webstack.django_uwsgi.files:
    paths:
      - {path: /run/myapp, state: directory, owner: myapp, group: www-data, mode: "2750"}
      - {path: /var/log/myapp, state: directory, owner: root, group: adm, mode: "0755"}
      - {path: /var/log/myapp/access.log, owner: myapp, group: adm, mode: "0640"}
      - path: /etc/logrotate.d/myapp
        content: "{{ lookup('ansible.builtin.template', 'logrotate.j2') }}"
        owner: root
        group: root
        mode: "0644"
        validate: logrotate --debug %s
  register: myapp_files

- name: Restart when the logrotate rules changed
  ansible.builtin.debug:
    msg: changed
  when: "'/etc/logrotate.d/myapp' in myapp_files.changed_paths"
"""

RETURN = r"""
changed_paths:
  description: The paths that were (in check mode, would be) created, rewritten or given another owner, group or
    mode, in the order of O(paths).
  returned: always
  type: list
  elements: str
  sample: [/var/log/myapp/access.log]
"""

import os
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_native, to_text

# Contents larger than this are not shown in a diff.
DIFF_MAX_BYTES = 104448


def kind(path):
    """What path is, following symlinks (as ansible.builtin.file does by default)."""
    if os.path.isdir(path):
        return 'directory'
    if os.path.isfile(path):
        return 'file'
    if os.path.lexists(path):
        return 'other'
    return 'absent'


def file_args(module, entry, path):
    return module.load_file_common_arguments(
        dict(path=path, owner=entry['owner'], group=entry['group'], mode=entry['mode']))


def set_attributes(module, entry, path, diff):
    return module.set_fs_attributes_if_different(file_args(module, entry, path), False, diff, expand=False)


def text_diff(path, before, after):
    if len(before) > DIFF_MAX_BYTES or len(after) > DIFF_MAX_BYTES or b'\x00' in before + after:
        return dict(before_header=path, after_header=path, before='(not shown)\n', after='(not shown)\n')
    return dict(before_header=path, after_header=path, before=to_text(before), after=to_text(after))


def make_directory(module, entry, path, diffs):
    """Create path and its missing parents, each with the entry's attributes."""
    missing = []
    current = path
    while kind(current) == 'absent':
        missing.append(current)
        current = os.path.dirname(current)
    if kind(current) != 'directory':
        module.fail_json(msg='%s: %s is a %s, not a directory' % (path, current, kind(current)))
    for new in reversed(missing):
        diffs.append(dict(before_header=new, after_header=new, before=dict(path=new, state='absent'),
                          after=dict(path=new, state='directory')))
        if module.check_mode:
            continue
        try:
            os.mkdir(new)
        except OSError as exc:
            module.fail_json(msg='%s: cannot create %s: %s' % (path, new, to_native(exc)))
        set_attributes(module, entry, new, None)
    return bool(missing)


def write_content(module, entry, path, existing, diffs):
    """Replace path with entry['content'] when it differs; True when it did (or would)."""
    new = to_bytes(entry['content'], errors='surrogate_or_strict')
    old = b''
    if existing == 'file':
        with open(path, 'rb') as handle:
            old = handle.read()
        if old == new:
            return False
    diffs.append(text_diff(path, old, new))
    if module.check_mode:
        return True
    # Written and validated in the module's private temporary directory, under
    # the same name (a validator may judge by it), never next to the file,
    # where a daemon reading every file of the directory would see it.
    tmp = os.path.join(tempfile.mkdtemp(dir=module.tmpdir), os.path.basename(path))
    with open(tmp, 'wb') as handle:
        handle.write(new)
    if entry['validate']:
        if '%s' not in entry['validate']:
            module.fail_json(msg='%s: validate must contain %%s: %s' % (path, entry['validate']))
        rc, out, err = module.run_command(entry['validate'] % tmp)
        if rc != 0:
            module.fail_json(msg='%s: the new content failed validation (%s): %s'
                             % (path, entry['validate'], (err or out).strip()), rc=rc, stdout=out, stderr=err)
    module.atomic_move(tmp, path)
    return True


def ensure(module, entry, diffs):
    # A symlink is followed: its target gets the content and the attributes.
    path = os.path.realpath(entry['path'])
    existing = kind(path)
    changed = False
    if entry['state'] == 'directory':
        if existing == 'absent':
            changed = make_directory(module, entry, path, diffs)
        elif existing != 'directory':
            module.fail_json(msg='%s is a %s, not a directory' % (path, existing))
    else:
        if existing not in ('absent', 'file'):
            module.fail_json(msg='%s is a %s, not a regular file' % (path, existing))
        parent = os.path.dirname(path)
        if kind(parent) != 'directory' and not module.check_mode:
            module.fail_json(msg='%s: its directory %s does not exist' % (path, parent))
        if entry['content'] is not None:
            changed = write_content(module, entry, path, existing, diffs)
        elif existing == 'absent':
            diffs.append(dict(before_header=path, after_header=path, before=dict(path=path, state='absent'),
                              after=dict(path=path, state='file')))
            changed = True
            if not module.check_mode:
                try:
                    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
                except OSError as exc:
                    module.fail_json(msg='cannot create %s: %s' % (path, to_native(exc)))
    if module.check_mode and existing == 'absent':
        # Nothing to chmod yet; the attributes of a new path are the entry's.
        return True
    attr_diff = dict(before=dict(path=path), after=dict(path=path), before_header=path, after_header=path)
    if set_attributes(module, entry, path, attr_diff):
        diffs.append(attr_diff)
        changed = True
    return changed


def main():
    module = AnsibleModule(
        argument_spec=dict(
            paths=dict(type='list', elements='dict', required=True, options=dict(
                path=dict(type='path', required=True),
                state=dict(type='str', choices=['directory', 'file'], default='file'),
                content=dict(type='str'),
                owner=dict(type='str'),
                group=dict(type='str'),
                mode=dict(type='raw'),
                validate=dict(type='str'),
            )),
        ),
        supports_check_mode=True,
    )
    diffs = []
    changed_paths = []
    for entry in module.params['paths']:
        if not os.path.isabs(entry['path']):
            module.fail_json(msg='paths: %s is not an absolute path' % entry['path'])
        if entry['state'] == 'directory' and (entry['content'] is not None or entry['validate']):
            module.fail_json(msg='%s: content and validate are for files, not directories' % entry['path'])
        if entry['validate'] and entry['content'] is None:
            module.fail_json(msg='%s: validate needs content' % entry['path'])
        if ensure(module, entry, diffs):
            changed_paths.append(entry['path'])
    result = dict(changed=bool(changed_paths), changed_paths=changed_paths)
    if module._diff:
        result['diff'] = diffs
    module.exit_json(**result)


if __name__ == '__main__':
    main()

# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""files through AnsibleModule in tmp_path: directories with parents, empty
files left alone once there, content replaced only when it differs, validate,
modes, check mode and diff."""

from __future__ import absolute_import, division, print_function

import os
import stat

import pytest

from ansible_collections.webstack.django_uwsgi.plugins.modules import files


@pytest.fixture
def run(run_module, tmp_path):
    """run(paths, check_mode=False, diff=False) -> (exit code, result) of files."""
    def call(paths, check_mode=False, diff=False):
        args = dict(paths=paths, _ansible_tmpdir=str(tmp_path / 'module-tmp'), _ansible_diff=diff)
        (tmp_path / 'module-tmp').mkdir(exist_ok=True)
        return run_module(files.main, args, check_mode=check_mode)
    return call


def mode(path):
    return '%04o' % stat.S_IMODE(os.stat(str(path)).st_mode)


def test_directories_with_parents_and_modes(run, tmp_path):
    top = tmp_path / 'a'
    deep = top / 'b' / 'c'
    rc, result = run([{'path': str(top), 'state': 'directory', 'mode': '0711'},
                      {'path': str(deep), 'state': 'directory', 'mode': '2750'}])
    assert rc == 0 and result['changed']
    assert result['changed_paths'] == [str(top), str(deep)]
    assert mode(top) == '0711'
    # The missing parent gets the entry's mode too, as ansible.builtin.file gives it.
    assert mode(top / 'b') == '2750' and mode(deep) == '2750'
    rc, result = run([{'path': str(top), 'state': 'directory', 'mode': '0711'},
                      {'path': str(deep), 'state': 'directory', 'mode': '2750'}])
    assert rc == 0 and not result['changed'] and result['changed_paths'] == []


def test_mode_fixed_and_reported_in_diff(run, tmp_path):
    d = tmp_path / 'd'
    d.mkdir(mode=0o755)
    rc, result = run([{'path': str(d), 'state': 'directory', 'mode': '0750'}], check_mode=True, diff=True)
    assert rc == 0 and result['changed_paths'] == [str(d)]
    assert mode(d) == '0755'
    assert result['diff'] == [{'before_header': str(d), 'after_header': str(d),
                               'before': {'path': str(d), 'mode': '0755'}, 'after': {'path': str(d), 'mode': '0750'}}]
    rc, result = run([{'path': str(d), 'state': 'directory', 'mode': '0750'}])
    assert rc == 0 and result['changed'] and mode(d) == '0750'


def test_empty_file_created_once_and_content_kept(run, tmp_path):
    log = tmp_path / 'access.log'
    rc, result = run([{'path': str(log), 'mode': '0640'}])
    assert rc == 0 and result['changed'] and log.read_bytes() == b'' and mode(log) == '0640'
    log.write_bytes(b'GET /\n')
    before = os.stat(str(log)).st_mtime_ns
    rc, result = run([{'path': str(log), 'mode': '0640'}])
    assert rc == 0 and not result['changed']
    assert log.read_bytes() == b'GET /\n' and os.stat(str(log)).st_mtime_ns == before


def test_content_written_only_when_it_differs(run, tmp_path):
    conf = tmp_path / 'app.conf'
    rc, result = run([{'path': str(conf), 'content': 'a = 1\n', 'mode': '0644'}], diff=True)
    assert rc == 0 and result['changed'] and conf.read_text() == 'a = 1\n' and mode(conf) == '0644'
    assert result['diff'][0]['before'] == '' and result['diff'][0]['after'] == 'a = 1\n'
    rc, result = run([{'path': str(conf), 'content': 'a = 1\n', 'mode': '0644'}])
    assert rc == 0 and not result['changed']
    rc, result = run([{'path': str(conf), 'content': 'a = 2\n', 'mode': '0644'}], check_mode=True, diff=True)
    assert rc == 0 and result['changed'] and conf.read_text() == 'a = 1\n'
    assert result['diff'][0]['before'] == 'a = 1\n' and result['diff'][0]['after'] == 'a = 2\n'


def test_new_directory_and_file_in_check_mode(run, tmp_path):
    d = tmp_path / 'new'
    rc, result = run([{'path': str(d), 'state': 'directory', 'mode': '0755'},
                      {'path': str(d / 'f.conf'), 'content': 'x\n', 'mode': '0644'},
                      {'path': str(d / 'trigger'), 'mode': '0600'}], check_mode=True)
    assert rc == 0 and result['changed_paths'] == [str(d), str(d / 'f.conf'), str(d / 'trigger')]
    assert not d.exists()


def test_validate_rejects_and_keeps_the_old_file(run, tmp_path):
    conf = tmp_path / 'app.conf'
    conf.write_text('good\n')
    checker = tmp_path / 'check.sh'
    checker.write_text('#!/bin/sh\ngrep -q good "$1" || { echo "bad line in $1" >&2; exit 1; }\n')
    checker.chmod(0o755)
    rc, result = run([{'path': str(conf), 'content': 'bad\n', 'validate': '%s %%s' % checker}])
    assert rc == 1 and 'failed validation' in result['msg'] and 'bad line' in result['msg']
    assert conf.read_text() == 'good\n'
    rc, result = run([{'path': str(conf), 'content': 'good, again\n', 'validate': '%s %%s' % checker}])
    assert rc == 0 and result['changed'] and conf.read_text() == 'good, again\n'
    # Validated away from the directory of the file: nothing else appeared there.
    assert sorted(p.name for p in tmp_path.iterdir()) == ['app.conf', 'check.sh', 'module-tmp']


def test_symlink_is_followed(run, tmp_path):
    target = tmp_path / 'real'
    target.mkdir(mode=0o700)
    link = tmp_path / 'link'
    link.symlink_to(target)
    rc, result = run([{'path': str(link), 'state': 'directory', 'mode': '0755'}])
    assert rc == 0 and result['changed_paths'] == [str(link)] and mode(target) == '0755' and link.is_symlink()


@pytest.mark.parametrize('paths, message', [
    ([{'path': 'relative', 'state': 'directory'}], 'not an absolute path'),
    ([{'path': '/x', 'state': 'directory', 'content': 'a'}], 'for files, not directories'),
    ([{'path': '/x', 'validate': 'true %s'}], 'validate needs content'),
])
def test_bad_entries(run, paths, message):
    rc, result = run(paths)
    assert rc == 1 and message in result['msg']


def test_wrong_kind_of_path(run, tmp_path):
    f = tmp_path / 'f'
    f.write_text('')
    rc, result = run([{'path': str(f), 'state': 'directory'}])
    assert rc == 1 and 'not a directory' in result['msg']
    rc, result = run([{'path': str(tmp_path), 'content': 'x'}])
    assert rc == 1 and 'not a regular file' in result['msg']

# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""release_source through AnsibleModule, on trees made in tmp_path: plain,
with excludes, git work trees clean and dirty, and the archive.

Release ids already deployed must not change. The ids below are the ones the
role's former script (roles/django_app/files/release_source.py, removed once
the module replaced it) printed for these fixture trees; commits are
reproducible with fixed dates and names. An archive written the way the script
wrote it must count as unchanged."""

from __future__ import absolute_import, division, print_function

import functools
import gzip
import io
import os
import subprocess
import tarfile

import pytest

from ansible_collections.webstack.django_uwsgi.plugins.module_utils import release_source as rs
from ansible_collections.webstack.django_uwsgi.plugins.modules import release_source

EXCLUDE = ['.git', '__pycache__', '*.pyc', '*.sqlite3', '.venv', 'venv', 'static_collected']

# Ids of the fixture trees as the former script computed them.
PLAIN_ID = 'd148324340c31a96'
PLAIN_ID_NO_EXCLUDE = '8b4babda5cb0dce4'
PLAIN_ID_NO_MYSITE = '96f1cf476311fe4c'
SUBDIR_ID = 'ed8fc1b8fadc2b7c'
GIT_COMMIT = 'bade367f8bd45ba9b71d80b4ada9b26da0bf15f8'
DIRTY_ID = 'bade367f8bd4-dirty-ffe54032'
UNTRACKED_ID = 'bade367f8bd4-dirty-011e2e0d'

GIT_ENV = {
    'GIT_CONFIG_NOSYSTEM': '1',
    'GIT_CONFIG_GLOBAL': os.devnull,
    'GIT_AUTHOR_DATE': '2024-01-02T03:04:05+00:00',
    'GIT_COMMITTER_DATE': '2024-01-02T03:04:05+00:00',
}


@pytest.fixture
def run(run_module):
    """run(args, check_mode=False) -> (exit code, result) of release_source."""
    return functools.partial(run_module, release_source.main)


def write(path, content, mode=0o644):
    parent = os.path.dirname(path)
    if not os.path.isdir(parent):
        os.makedirs(parent)
    with open(path, 'wb') as handle:
        handle.write(content)
    os.chmod(path, mode)


def make_tree(root):
    """A small Django-like project with files that the default excludes drop."""
    root = str(root)
    write(os.path.join(root, 'manage.py'), b'#!/usr/bin/env python3\nprint("manage")\n', 0o755)
    write(os.path.join(root, 'requirements.txt'), b'Django==4.2.16\n')
    write(os.path.join(root, 'mysite', '__init__.py'), b'')
    write(os.path.join(root, 'mysite', 'settings.py'), b'DEBUG = False\n')
    write(os.path.join(root, 'mysite', 'static', 'app.css'), b'body { margin: 0 }\n')
    write(os.path.join(root, 'mysite', '__pycache__', 'settings.cpython-311.pyc'), b'\x00compiled')
    write(os.path.join(root, 'stray.pyc'), b'\x00compiled')
    write(os.path.join(root, 'db.sqlite3'), b'SQLite format 3\x00')
    os.symlink('mysite/static', os.path.join(root, 'static'))
    os.symlink('requirements.txt', os.path.join(root, 'reqs.txt'))
    os.makedirs(os.path.join(root, 'empty'))
    return root


def git(root, *args):
    env = dict(os.environ, **GIT_ENV)
    return subprocess.check_output(['git', '-c', 'user.email=t@t', '-c', 'user.name=t', '-C', str(root)] + list(args),
                                   env=env).decode().strip()


def make_git_tree(root):
    make_tree(root)
    with open(os.path.join(str(root), '.gitignore'), 'w') as handle:
        handle.write('__pycache__/\n*.pyc\n*.sqlite3\n')
    os.chmod(os.path.join(str(root), '.gitignore'), 0o644)
    git(root, 'init', '-q')
    git(root, 'add', '-A')
    git(root, 'commit', '-q', '-m', 'fixture')
    return str(root)


def members(archive):
    """What unarchive would create: name, type, mode, owner, link target, mtime, content."""
    with tarfile.open(archive, 'r:gz') as tar:
        out = []
        for info in tar.getmembers():
            content = tar.extractfile(info).read() if info.isfile() else None
            out.append((info.name, info.type, info.mode, info.uid, info.gid, info.uname, info.gname,
                        info.linkname, info.mtime, content))
        return out


# ---------------------------------------------------------------- release ids

def test_plain_tree(run, tmp_path):
    src = make_tree(tmp_path / 'src')
    code, out = run({'path': src, 'exclude': EXCLUDE})
    assert code == 0, out
    assert out['changed'] is False
    assert out['release_id'] == PLAIN_ID
    assert out['git_commit'] is None and out['dirty'] is False
    # manage.py requirements.txt __init__.py settings.py app.css + 2 symlinks
    assert out['files'] == 7
    assert out['archive'] is None and out['path'] == src


@pytest.mark.parametrize('exclude,expected', [
    (EXCLUDE, PLAIN_ID),
    ([], PLAIN_ID_NO_EXCLUDE),
    (['mysite'], PLAIN_ID_NO_MYSITE),
])
def test_plain_tree_ids_are_the_former_ones(run, tmp_path, exclude, expected):
    src = make_tree(tmp_path / 'src')
    code, out = run({'path': src, 'exclude': exclude})
    assert code == 0 and out['release_id'] == expected


def test_excludes_change_the_id_and_the_count(run, tmp_path):
    src = make_tree(tmp_path / 'src')
    ids = {}
    for name, exclude in (('default', EXCLUDE), ('none', []), ('more', EXCLUDE + ['static*', 'mysite'])):
        code, out = run({'path': src, 'exclude': exclude})
        assert code == 0
        ids[name] = (out['release_id'], out['files'])
    assert ids['default'][0] == PLAIN_ID and ids['none'][0] == PLAIN_ID_NO_EXCLUDE
    assert ids['none'][1] == 10 and ids['more'][1] == 3  # manage.py requirements.txt reqs.txt
    assert len(set(i for i, dummy in ids.values())) == 3


def test_excluded_content_does_not_count(run, tmp_path):
    src = make_tree(tmp_path / 'src')
    write(os.path.join(src, 'mysite', '__pycache__', 'other.pyc'), b'new')
    write(os.path.join(src, 'stray.pyc'), b'changed')
    code, out = run({'path': src, 'exclude': EXCLUDE})
    assert out['release_id'] == PLAIN_ID


@pytest.mark.parametrize('change,expected', [
    ('content', '558de776177fc23e'),
    ('mode', 'cf81636148fb6bc6'),
    ('link', '841fd4734b2c2169'),
    ('rename', 'ca07c4b5fa076f1b'),
    ('new_dir', '0e7c8a905de02027'),
])
def test_kept_changes_change_the_id(run, tmp_path, change, expected):
    src = make_tree(tmp_path / 'src')
    if change == 'content':
        write(os.path.join(src, 'mysite', 'settings.py'), b'DEBUG = True\n')
    elif change == 'mode':
        os.chmod(os.path.join(src, 'requirements.txt'), 0o755)
    elif change == 'link':
        os.unlink(os.path.join(src, 'reqs.txt'))
        os.symlink('manage.py', os.path.join(src, 'reqs.txt'))
    elif change == 'rename':
        os.rename(os.path.join(src, 'mysite', 'settings.py'), os.path.join(src, 'mysite', 'settings2.py'))
    else:
        os.makedirs(os.path.join(src, 'logs'))
    code, out = run({'path': src, 'exclude': EXCLUDE})
    assert code == 0 and out['release_id'] == expected != PLAIN_ID


def test_timestamps_do_not_count(run, tmp_path):
    src = make_tree(tmp_path / 'src')
    os.utime(os.path.join(src, 'manage.py'), (1, 1))
    code, out = run({'path': src, 'exclude': EXCLUDE})
    assert out['release_id'] == PLAIN_ID


def test_subdirectory_of_a_work_tree_is_hashed(run, tmp_path):
    make_git_tree(tmp_path / 'repo')
    code, out = run({'path': str(tmp_path / 'repo' / 'mysite'), 'exclude': EXCLUDE})
    assert code == 0 and out['git_commit'] is None
    assert out['release_id'] == SUBDIR_ID


def test_git_clean(run, tmp_path):
    src = make_git_tree(tmp_path / 'repo')
    code, out = run({'path': src, 'exclude': EXCLUDE})
    assert code == 0, out
    assert out['git_commit'] == GIT_COMMIT == git(src, 'rev-parse', 'HEAD')
    assert out['release_id'] == GIT_COMMIT[:12]
    assert out['dirty'] is False
    assert out['files'] == 8  # the fixture's 7 and .gitignore


def test_git_dirty(run, tmp_path):
    src = make_git_tree(tmp_path / 'repo')
    write(os.path.join(src, 'mysite', 'settings.py'), b'DEBUG = True\n')
    code, out = run({'path': src, 'exclude': EXCLUDE})
    assert code == 0, out
    assert out['release_id'] == DIRTY_ID
    assert out['git_commit'] == GIT_COMMIT and out['dirty'] is True


def test_git_untracked_file_is_dirty(run, tmp_path):
    src = make_git_tree(tmp_path / 'repo')
    write(os.path.join(src, 'notes.txt'), b'todo\n')
    code, out = run({'path': src, 'exclude': EXCLUDE})
    assert out['dirty'] is True and out['release_id'] == UNTRACKED_ID


def test_git_ignored_file_is_clean(run, tmp_path):
    src = make_git_tree(tmp_path / 'repo')
    write(os.path.join(src, 'more.pyc'), b'x')
    code, out = run({'path': src, 'exclude': EXCLUDE})
    assert out['dirty'] is False and out['release_id'] == GIT_COMMIT[:12]


def test_git_without_commit_fails_clearly(run, tmp_path):
    src = make_tree(tmp_path / 'repo')
    git(src, 'init', '-q')
    code, out = run({'path': src, 'exclude': EXCLUDE})
    assert code == 1
    assert 'rev-parse HEAD' in out['msg'] and src in out['msg']
    assert 'Traceback' not in out['msg']


def test_without_git_a_work_tree_is_hashed(run, tmp_path, monkeypatch):
    src = make_git_tree(tmp_path / 'repo')
    monkeypatch.setenv('PATH', str(tmp_path / 'nowhere'))
    code, out = run({'path': src, 'exclude': EXCLUDE})
    assert code == 0 and out['git_commit'] is None and len(out['release_id']) == 16


# ---------------------------------------------------------------- archive

def test_archive_written_then_unchanged(run, tmp_path):
    src = make_tree(tmp_path / 'src')
    dest = str(tmp_path / 'release.tar.gz')
    code, out = run({'path': src, 'exclude': EXCLUDE, 'dest': dest})
    assert code == 0, out
    assert out['changed'] is True and out['archive'] == dest and out['release_id'] == PLAIN_ID
    entries = members(dest)
    names = [e[0] for e in entries]
    assert names == ['manage.py', 'reqs.txt', 'requirements.txt', 'static', 'empty', 'mysite',
                     'mysite/__init__.py', 'mysite/settings.py', 'mysite/static', 'mysite/static/app.css']
    by_name = dict((e[0], e) for e in entries)
    assert by_name['manage.py'][2] == 0o755 and by_name['requirements.txt'][2] == 0o644
    assert by_name['mysite'][1] == tarfile.DIRTYPE and by_name['mysite'][2] == 0o755
    assert by_name['static'][1] == tarfile.SYMTYPE and by_name['static'][7] == 'mysite/static'
    assert all(e[3:7] == (0, 0, 'root', 'root') for e in entries)
    assert by_name['manage.py'][9] == b'#!/usr/bin/env python3\nprint("manage")\n'
    stamp = os.stat(dest).st_mtime_ns
    with open(dest, 'rb') as handle:
        first = handle.read()

    code, out = run({'path': src, 'exclude': EXCLUDE, 'dest': dest})
    assert code == 0 and out['changed'] is False
    assert os.stat(dest).st_mtime_ns == stamp
    assert sorted(os.listdir(str(tmp_path))) == ['release.tar.gz', 'src']  # no temporary file left

    write(os.path.join(src, 'mysite', 'settings.py'), b'DEBUG = True\n')
    code, out = run({'path': src, 'exclude': EXCLUDE, 'dest': dest})
    assert code == 0 and out['changed'] is True
    with open(dest, 'rb') as handle:
        assert handle.read() != first


def test_archive_bytes_are_reproducible(tmp_path):
    src = make_tree(tmp_path / 'src')
    outs = []
    for dummy in range(2):
        buf = io.BytesIO()
        rs.write_tar(src, EXCLUDE, buf)
        outs.append(buf.getvalue())
    assert outs[0] == outs[1]
    assert outs[0][4:8] == b'\0\0\0\0'  # no timestamp in the gzip header
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(outs[0]))) as tar:
        assert tar.getnames()[0] == 'manage.py'


def test_archive_new_file_follows_the_umask(run, tmp_path):
    src = make_tree(tmp_path / 'src')
    dest = str(tmp_path / 'release.tar.gz')
    old = os.umask(0o022)
    try:
        code, out = run({'path': src, 'exclude': EXCLUDE, 'dest': dest})
    finally:
        os.umask(old)
    assert code == 0 and os.stat(dest).st_mode & 0o777 == 0o644


def test_archive_check_mode(run, tmp_path):
    src = make_tree(tmp_path / 'src')
    dest = str(tmp_path / 'release.tar.gz')
    code, out = run({'path': src, 'exclude': EXCLUDE, 'dest': dest}, check_mode=True)
    assert code == 0 and out['changed'] is True and out['release_id'] == PLAIN_ID
    assert not os.path.exists(dest)
    assert os.listdir(str(tmp_path)) == ['src']

    run({'path': src, 'exclude': EXCLUDE, 'dest': dest})
    with open(dest, 'rb') as handle:
        before = handle.read()
    code, out = run({'path': src, 'exclude': EXCLUDE, 'dest': dest}, check_mode=True)
    assert code == 0 and out['changed'] is False

    write(os.path.join(src, 'new.txt'), b'new')
    code, out = run({'path': src, 'exclude': EXCLUDE, 'dest': dest}, check_mode=True)
    assert code == 0 and out['changed'] is True
    with open(dest, 'rb') as handle:
        assert handle.read() == before


def test_archive_replaces_a_file_that_is_not_gzip(run, tmp_path):
    src = make_tree(tmp_path / 'src')
    dest = tmp_path / 'release.tar.gz'
    dest.write_bytes(b'not an archive')
    code, out = run({'path': src, 'exclude': EXCLUDE, 'dest': str(dest)})
    assert code == 0 and out['changed'] is True
    assert len(members(str(dest))) == 10


def write_like_the_former_script(src, dest, excludes):
    """The archive as the role's former script wrote it: tarfile's own gzip header (name and time)."""
    def owned_by_root(info):
        info.uid = info.gid = 0
        info.uname = info.gname = 'root'
        if info.isdir() or (info.isfile() and info.mode & 0o100):
            info.mode = 0o755
        elif info.isfile():
            info.mode = 0o644
        return info
    with tarfile.open(dest, 'w:gz') as tar:
        for rel, path in rs.walk(src, excludes):
            tar.add(path, arcname=rel, recursive=False, filter=owned_by_root)


def test_archive_of_the_former_script_counts_as_unchanged(run, tmp_path):
    src = make_git_tree(tmp_path / 'repo')
    dest = str(tmp_path / 'script.tar.gz')
    write_like_the_former_script(src, dest, EXCLUDE)
    expected = members(dest)
    code, out = run({'path': src, 'exclude': EXCLUDE, 'dest': dest})
    assert code == 0 and out['changed'] is False

    mine = str(tmp_path / 'module.tar.gz')
    code, out = run({'path': src, 'exclude': EXCLUDE, 'dest': mine})
    assert code == 0 and out['changed'] is True
    assert members(mine) == expected


# ---------------------------------------------------------------- bad input

def test_missing_path(run, tmp_path):
    missing = str(tmp_path / 'nope')
    code, out = run({'path': missing})
    assert code == 1
    assert out['msg'].startswith('path %s is not a directory (it does not exist)' % missing)
    assert 'delegate_to' in out['msg']


def test_path_is_a_file(run, tmp_path):
    target = tmp_path / 'file'
    target.write_text(u'x')
    code, out = run({'path': str(target)})
    assert code == 1 and 'is not a directory:' in out['msg']


def test_path_is_required(run):
    code, out = run({})
    assert code == 1 and 'path' in out['msg']


@pytest.mark.parametrize('where,needle', [
    ('inside', 'is inside path'),
    ('no_parent', 'does not exist; create it first'),
    ('directory', 'is a directory'),
])
def test_bad_dest(run, tmp_path, where, needle):
    src = make_tree(tmp_path / 'src')
    dest = {'inside': os.path.join(src, 'mysite', 'release.tar.gz'),
            'no_parent': str(tmp_path / 'missing' / 'release.tar.gz'),
            'directory': str(tmp_path)}[where]
    code, out = run({'path': src, 'dest': dest})
    assert code == 1 and needle in out['msg'], out['msg']
    assert not os.path.exists(os.path.join(src, 'mysite', 'release.tar.gz'))


def test_unreadable_file_fails_without_traceback(run, tmp_path, monkeypatch):
    src = make_tree(tmp_path / 'src')
    unreadable = os.path.join(src, 'mysite', 'settings.py')

    def refuse(path, *args, **kwargs):
        if path == unreadable:
            raise IOError(13, 'Permission denied', path)
        return io.open(path, *args, **kwargs)
    # The module_utils' own name lookup, so the test needs no unprivileged user.
    monkeypatch.setattr(rs, 'open', refuse, raising=False)
    code, out = run({'path': src, 'exclude': EXCLUDE})
    assert code == 1
    assert out['msg'] == "path %s: cannot read the source tree: [Errno 13] Permission denied: '%s'" % (src, unreadable)

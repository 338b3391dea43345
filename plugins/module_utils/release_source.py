# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Release id and archive of an application source tree.

The release id of a directory that is the top of a git work tree is its commit
(12 hex digits), with ``-dirty-<8 hex digits of the content hash>`` appended
when ``git status --porcelain`` reports anything; of any other directory, the
first 16 hex digits of the content hash.

The content hash is a sha256 over every kept entry in walk order: its relative
path, NUL, then ``link`` NUL and the link target, ``dir``, or ``exec``/``file``
and the file's bytes, then NUL. Excluded names (shell patterns matched against
each file and directory name), timestamps and owners do not count. Release ids
already deployed depend on this exact byte stream: do not change it.

The archive is a tar of the same entries in the same order, owned by root,
directories and executables 0755, other files 0644, gzipped without a name or
timestamp in the gzip header, so the same content always gives the same bytes.

Git is run through a ``runner(argv) -> (rc, stdout, stderr)`` callable, which
modules give as ``module.run_command``.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import fnmatch
import gzip
import hashlib
import os
import tarfile

HASH_BLOCK = 1 << 16


class ReleaseSourceError(Exception):
    """The source cannot be read or git fails on a work tree."""


def excluded(name, excludes):
    return any(fnmatch.fnmatch(name, pattern) for pattern in excludes)


def walk(src, excludes):
    """Yield (relative path, absolute path) of every kept entry, sorted,
    each directory before its content."""
    for top, dirs, files in os.walk(src):
        dirs[:] = sorted(d for d in dirs if not excluded(d, excludes))
        links = [d for d in dirs if os.path.islink(os.path.join(top, d))]
        for name in sorted(files + links):
            if not excluded(name, excludes):
                path = os.path.join(top, name)
                yield os.path.relpath(path, src), path
        dirs[:] = [d for d in dirs if d not in links]
        for name in dirs:
            path = os.path.join(top, name)
            yield os.path.relpath(path, src), path


def _to_bytes(text):
    return text.encode('utf-8', 'surrogateescape')


def content_hash(src, excludes):
    """(hex sha256 of the content, number of files and links)."""
    digest = hashlib.sha256()
    files = 0
    for rel, path in walk(src, excludes):
        digest.update(_to_bytes(rel) + b'\0')
        if os.path.islink(path):
            digest.update(b'link\0' + _to_bytes(os.readlink(path)))
            files += 1
        elif os.path.isdir(path):
            digest.update(b'dir\0')
        else:
            digest.update(b'exec\0' if os.access(path, os.X_OK) else b'file\0')
            with open(path, 'rb') as handle:
                for block in iter(lambda: handle.read(HASH_BLOCK), b''):
                    digest.update(block)
            files += 1
        digest.update(b'\0')
    return digest.hexdigest(), files


def count_files(src, excludes):
    return sum(1 for dummy, path in walk(src, excludes) if os.path.islink(path) or not os.path.isdir(path))


def _git(runner, git, src, *args):
    argv = [git, '-C', src] + list(args)
    rc, out, err = runner(argv)
    if rc != 0:
        lines = (err or out or '').strip().splitlines()
        raise ReleaseSourceError('git %s failed in %s (rc %s): %s'
                                 % (' '.join(args), src, rc, lines[-1] if lines else 'no output'))
    return out.strip()


def git_top(runner, git, src):
    """Whether ``src`` is the top of a git work tree (False without git)."""
    if not git:
        return False
    rc, out, dummy = runner([git, '-C', src, 'rev-parse', '--show-toplevel'])
    if rc != 0 or not out.strip():
        return False
    return os.path.realpath(out.strip()) == os.path.realpath(src)


def describe(src, excludes, runner, git):
    """dict(release_id, git_commit, dirty, files) of the source tree ``src``."""
    if not os.path.isdir(src):
        raise ReleaseSourceError('%s is not a directory' % src)
    if git_top(runner, git, src):
        commit = _git(runner, git, src, 'rev-parse', 'HEAD')
        if _git(runner, git, src, 'status', '--porcelain'):
            digest, files = content_hash(src, excludes)
            return {'release_id': '%s-dirty-%s' % (commit[:12], digest[:8]), 'git_commit': commit,
                    'dirty': True, 'files': files}
        return {'release_id': commit[:12], 'git_commit': commit, 'dirty': False,
                'files': count_files(src, excludes)}
    digest, files = content_hash(src, excludes)
    return {'release_id': digest[:16], 'git_commit': None, 'dirty': False, 'files': files}


def _owned_by_root(info):
    # Whatever the umask on the controller was: readable by all, writable by
    # root only (the release directory itself keeps others out).
    info.uid = info.gid = 0
    info.uname = info.gname = 'root'
    if info.isdir() or (info.isfile() and info.mode & 0o100):
        info.mode = 0o755
    elif info.isfile():
        info.mode = 0o644
    return info


class _HashingWriter(object):
    """File-like sink: hashes what is written and passes it on (or drops it)."""

    def __init__(self, out=None):
        self.digest = hashlib.sha256()
        self.out = out

    def write(self, data):
        self.digest.update(data)
        if self.out is not None:
            self.out.write(data)
        return len(data)


def write_tar(src, excludes, out=None):
    """Hex sha256 of the uncompressed tar of ``src``; the tar is gzipped into ``out`` (a binary file) if given."""
    gz = None
    if out is not None:
        gz = gzip.GzipFile(filename='', mode='wb', fileobj=out, mtime=0)
    sink = _HashingWriter(gz)
    try:
        with tarfile.open(fileobj=sink, mode='w|') as tar:
            for rel, path in walk(src, excludes):
                tar.add(path, arcname=rel, recursive=False, filter=_owned_by_root)
    finally:
        if gz is not None:
            gz.close()
    return sink.digest.hexdigest()


def archive_digest(path):
    """Hex sha256 of the uncompressed content of the gzipped tar ``path``; None when it is not gzip."""
    digest = hashlib.sha256()
    try:
        with gzip.open(path, 'rb') as handle:
            for block in iter(lambda: handle.read(HASH_BLOCK), b''):
                digest.update(block)
    except (IOError, OSError, EOFError, ValueError):
        return None
    return digest.hexdigest()

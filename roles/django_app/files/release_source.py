#!/usr/bin/env python3
"""Release id and archive of an application source tree (runs on the controller).

    release_source.py id SRC [--exclude PATTERN ...]
        Prints the release id of SRC: when SRC is the top of a git work tree,
        its commit (12 hex digits), with "-dirty-<content hash>" appended when
        the tree has uncommitted changes; otherwise a hash of the content
        (16 hex digits) that ignores excluded names, timestamps and owners.

    release_source.py archive SRC DEST [--exclude PATTERN ...]
        Writes a gzipped tar of SRC (same file selection) to DEST, entries owned
        by root, so that one transfer ships the whole release.

PATTERN is a shell pattern matched against every file and directory name.
"""

import argparse
import fnmatch
import hashlib
import os
import subprocess
import sys
import tarfile


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


def excluded(name, excludes):
    return any(fnmatch.fnmatch(name, pattern) for pattern in excludes)


def content_hash(src, excludes):
    digest = hashlib.sha256()
    for rel, path in walk(src, excludes):
        digest.update(rel.encode("utf-8", "surrogateescape") + b"\0")
        if os.path.islink(path):
            digest.update(b"link\0" + os.readlink(path).encode("utf-8", "surrogateescape"))
        elif os.path.isdir(path):
            digest.update(b"dir\0")
        else:
            digest.update(b"exec\0" if os.access(path, os.X_OK) else b"file\0")
            with open(path, "rb") as handle:
                for block in iter(lambda: handle.read(1 << 16), b""):
                    digest.update(block)
        digest.update(b"\0")
    return digest.hexdigest()


def git(src, *args):
    return subprocess.run(
        ["git", "-C", src, *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def git_top(src):
    try:
        top = git(src, "rev-parse", "--show-toplevel")
    except (OSError, subprocess.CalledProcessError):
        return None
    return top if os.path.realpath(top) == os.path.realpath(src) else None


def release_id(src, excludes):
    if git_top(src):
        commit = git(src, "rev-parse", "HEAD")[:12]
        if git(src, "status", "--porcelain"):
            return f"{commit}-dirty-{content_hash(src, excludes)[:8]}"
        return commit
    return content_hash(src, excludes)[:16]


def archive(src, dest, excludes):
    def owned_by_root(info):
        # Whatever the umask on the controller was: readable by all, writable
        # by root only (the release directory itself keeps others out).
        info.uid = info.gid = 0
        info.uname = info.gname = "root"
        if info.isdir() or (info.isfile() and info.mode & 0o100):
            info.mode = 0o755
        elif info.isfile():
            info.mode = 0o644
        return info

    with tarfile.open(dest, "w:gz") as tar:
        for rel, path in walk(src, excludes):
            tar.add(path, arcname=rel, recursive=False, filter=owned_by_root)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["id", "archive"])
    parser.add_argument("src")
    parser.add_argument("dest", nargs="?")
    parser.add_argument("--exclude", action="append", default=[])
    args = parser.parse_args()
    if not os.path.isdir(args.src):
        sys.exit(f"django_app_source: {args.src} is not a directory on the controller")
    if args.action == "id":
        print(release_id(args.src, args.exclude))
    else:
        if not args.dest:
            parser.error("archive needs DEST")
        archive(args.src, args.dest, args.exclude)


if __name__ == "__main__":
    main()

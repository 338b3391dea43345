#!/usr/bin/env python3
"""Find repeated YAML: identical windows of K significant lines (default 5).

    python tools/yaml_dupes.py                 list the duplicated windows
    python tools/yaml_dupes.py --max 120       exit 1 when there are more than 120
    python tools/yaml_dupes.py --window 8      compare 8-line windows instead
    python tools/yaml_dupes.py --root DIR      look at another checkout

Files: every ``*.yml`` and ``*.yaml`` under SEARCHED (or the paths given on
the command line, relative to the root), except under EXCLUDED directories.

Lines: each line is stripped of leading and trailing whitespace, so that
indentation does not matter; blank lines, comment-only lines (starting with
``#``) and the document markers ``---`` and ``...`` are dropped before the
windows are formed, so a comment or an empty line in the middle of a copied
block does not hide it. A trailing comment stays part of its line.

Windows: every run of K consecutive remaining lines of one file. Two windows
are identical when their K lines are equal; windows may overlap, so a copied
block of K + n lines shows as n + 1 window groups.

Trivial windows are ignored: a window whose every line sets one of the
GENERIC_KEYS (file attributes and the like: ``owner: root``, ``group: root``,
``mode: "0644"``, ``state: link``, ``force: true``, also as a list item
``- state: ...``), whatever the value. Such lines are said the same way in
every task that creates a file; five of them in a row are not a copied block.

Output: one line per group of identical windows, the ``file:line`` of each
occurrence (first the earliest) and the first line of the window, groups in
the order of their first occurrence; then the summary
``yaml_dupes: N duplicated K-line windows in M groups``, where N counts every
occurrence of every group (a block present twice is 2 windows, 1 group).
With ``--max N`` the exit status is 1 when that count exceeds N, so that new
repetition fails the lint; ``--quiet`` prints the groups only then.
"""

import argparse
import os
import re
import sys
from collections import defaultdict
from pathlib import Path

SEARCHED = ('roles', 'playbooks', 'molecule', 'examples/inventory', '.config')
EXCLUDED = ('.venv', 'build', 'changelogs', 'benchmarks/results', '.git', '.cache', '.ansible', '__pycache__')
SUFFIXES = ('.yml', '.yaml')
GENERIC_KEYS = frozenset((
    'owner', 'group', 'mode', 'state', 'force', 'follow', 'recurse', 'backup',
    'remote_src', 'become', 'become_user', 'seuser', 'serole', 'setype', 'selevel',
))
GENERIC_LINE = re.compile(r'^(?:- )?([A-Za-z_][A-Za-z0-9_]*):(?:\s|$)')


def excluded(rel):
    """True when the path (relative, with '/') lies under an EXCLUDED directory."""
    parts = rel.split('/')
    for entry in EXCLUDED:
        depth = entry.count('/') + 1
        if any('/'.join(parts[i:i + depth]) == entry for i in range(len(parts) - depth + 1)):
            return True
    return False


def yaml_files(root, tops):
    """Relative paths ('/'-separated, sorted) of the YAML files to compare."""
    found = set()
    for top in tops:
        start = root / top
        if start.is_file():
            candidates = [start]
        elif start.is_dir():
            candidates = []
            for dirpath, dirnames, filenames in os.walk(start):
                dirnames.sort()
                candidates.extend(Path(dirpath) / name for name in filenames)
        else:
            continue
        for path in candidates:
            rel = path.relative_to(root).as_posix()
            if path.name.endswith(SUFFIXES) and not excluded(rel):
                found.add(rel)
    return sorted(found)


def significant_lines(text):
    """(line number, stripped line) of the lines that take part in windows."""
    lines = []
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if not stripped or stripped.startswith('#') or stripped in ('---', '...'):
            continue
        lines.append((number, stripped))
    return lines


def is_generic(line):
    match = GENERIC_LINE.match(line)
    return bool(match) and match.group(1) in GENERIC_KEYS


def duplicate_groups(root, tops=SEARCHED, window=5):
    """Groups of identical windows: a list of (occurrences, first line), where
    occurrences is a sorted list of (path, line number), two or more each."""
    seen = defaultdict(list)
    for rel in yaml_files(root, tops):
        text = (root / rel).read_text(encoding='utf-8', errors='replace')
        lines = significant_lines(text)
        for i in range(len(lines) - window + 1):
            chunk = tuple(line for _, line in lines[i:i + window])
            if all(is_generic(line) for line in chunk):
                continue
            seen[chunk].append((rel, lines[i][0]))
    groups = [(sorted(where), chunk[0]) for chunk, where in seen.items() if len(where) > 1]
    return sorted(groups)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n', 1)[0])
    parser.add_argument('--root', type=Path, default=Path(__file__).resolve().parent.parent,
                        help='tree to look at (default: this checkout)')
    parser.add_argument('--window', type=int, default=5, metavar='K',
                        help='lines per window (default 5)')
    parser.add_argument('--max', type=int, default=None, metavar='N',
                        help='exit 1 when more than N duplicated windows are found')
    parser.add_argument('--quiet', action='store_true',
                        help='print only the summary, unless the count exceeds --max')
    parser.add_argument('paths', nargs='*',
                        help='files or directories relative to the root (default: %s)' % ', '.join(SEARCHED))
    args = parser.parse_args(argv)
    if args.window < 1:
        parser.error('--window must be at least 1')
    if not args.root.is_dir():
        parser.error('--root %s is not a directory' % args.root)

    groups = duplicate_groups(args.root, tuple(args.paths) or SEARCHED, args.window)
    count = sum(len(where) for where, _ in groups)
    over = args.max is not None and count > args.max
    if over or not args.quiet:
        for where, first in groups:
            print('%s: %s' % (', '.join('%s:%d' % occurrence for occurrence in where), first))
    print('yaml_dupes: %d duplicated %d-line windows in %d groups' % (count, args.window, len(groups)))
    if over:
        print('yaml_dupes: more than the %d allowed (--max); merge the repeated blocks '
              '(YAML anchors, a shared task file, a loop) instead of copying them' % args.max)
        return 1
    return 0


if __name__ == '__main__':
    sys.exit(main())

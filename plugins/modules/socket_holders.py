#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: socket_holders
short_description: Find the processes that listen on given unix socket paths and TCP addresses
version_added: 0.1.0
description:
  - Reads the listening sockets of the host (C(/proc/net/unix), C(/proc/net/tcp), C(/proc/net/tcp6)) and the open
    files of its processes (C(/proc/<pid>/fd)) in one pass, and returns the processes that listen on one of O(unix)
    or O(tcp), what C(ss -lxp) and C(ss -ltnp) show, in one round trip and without iproute2.
  - A process whose parent (or a further ancestor) also listens on one of them, such as the workers of a uWSGI
    master, is not listed on its own but in the RV(holders[].pids) of that ancestor, so that each entry is one
    thing to stop.
  - Processes that are, or descend from, one of O(exclude_pids) are left out; give the main PID of a process
    manager to leave it and every program it runs alone.
  - For a uWSGI process, also the configuration files named on its command line and the pid files named there
    or in its ini files, so that a caller can move them aside after stopping it.
  - Read-only. It never changes anything and reports RV(ignore:changed=false).
author:
  - webstack.django_uwsgi maintainers (@webstack)
attributes:
  check_mode:
    description: Read-only; it reads the same in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is nothing to diff.
    support: none
options:
  unix:
    description:
      - Paths of unix sockets. A process matches when it holds a listening socket bound to one of them (even when
        the path has since been removed or bound again by another process).
    type: list
    elements: path
    default: []
  tcp:
    description:
      - TCP addresses as C(host:port) (C(127.0.0.1:8001), C([::1]:8001), C(localhost:8001)). A process matches when
        it listens on the same port and on the same address, or either address is a wildcard (C(0.0.0.0), C(::),
        C(*)), since such a listener keeps the other from binding. C(localhost) stands for C(127.0.0.1) and C(::1).
    type: list
    elements: str
    default: []
  exclude_pids:
    description:
      - Processes that are one of these, or descend from one of them, are not returned. V(0) and V(1) are ignored
        (every process descends from them).
    type: list
    elements: int
    default: []
notes:
  - Run it as root (C(become=true)) to see the open files of other users' processes.
  - Only ini files are read for pid files (C(pidfile), C(pidfile2)); the magic variables C(%d), C(%n), C(%p) and
    C(%%) are expanded, others are left as they are.
requirements:
  - Linux (C(/proc)).
seealso:
  - module: webstack.django_uwsgi.uwsgi_stats
"""

EXAMPLES = r"""
- name: Look for processes outside the supervisor service on the stack's sockets
  webstack.django_uwsgi.socket_holders:
    unix: [/run/uwsgi/web1/uwsgi.sock, /run/uwsgi/web1/stats.sock]
    tcp: ["127.0.0.1:8001"]
    exclude_pids: ["{{ supervisor_main_pid | int }}"]
  register: holders

- name: Stop them
  ansible.builtin.command:
    argv: "{{ ['kill', '-s', item.stop_signal, item.pid | string] }}"
  loop: "{{ holders.holders }}"
  changed_when: true
"""

RETURN = r"""
holders:
  description: One entry per process tree that listens on a socket asked for, ordered by PID.
  returned: always
  type: list
  elements: dict
  contains:
    pid:
      description: PID of the topmost process of the tree that listens on one of the sockets.
      type: int
      sample: 4242
    ppid:
      description: Its parent's PID (V(1) for a daemon started by hand and detached).
      type: int
      sample: 1
    pids:
      description: The PID and those of its descendants that listen on one of the sockets, ascending.
      type: list
      elements: int
      sample: [4242, 4243, 4244]
    name:
      description: The process name (C(/proc/<pid>/comm)).
      type: str
      sample: uwsgi
    exe:
      description: The executable, empty when it cannot be read.
      type: str
      sample: /opt/app/venv/bin/uwsgi
    user:
      description: The user the process runs as (its uid when it has no name).
      type: str
      sample: app
    cwd:
      description: The working directory of the process.
      type: str
      sample: /home/app/project
    listens:
      description: The sockets asked for that the tree holds, C(unix:<path>) or C(address:port) as bound.
      type: list
      elements: str
      sample: ["127.0.0.1:8000", "unix:/run/uwsgi/web1/uwsgi.sock"]
    uwsgi:
      description: Whether the process is a uWSGI process.
      type: bool
      sample: true
    stop_signal:
      description:
        - The signal that shuts the process down, V(INT) for uWSGI (what C(uwsgi --stop) sends; V(TERM) reloads
          a uWSGI 2.0 master instead), V(TERM) for every other process.
      type: str
      sample: INT
    configs:
      description:
        - For uWSGI, the existing configuration files named on its command line (C(--ini), C(--yaml), C(--json),
          C(--xml), or a bare file name with such an extension), absolute. Empty otherwise.
      type: list
      elements: str
      sample: [/home/app/project/bin/uwsgi.ini]
    pidfiles:
      description: For uWSGI, the existing pid files named on its command line or in its ini files, absolute.
      type: list
      elements: str
      sample: [/home/app/project/bin/uwsgi.pid]
unseen:
  description:
    - Sockets asked for that listen but that no process visible to the module holds, C(unix:<path>) or
      C(address:port). Their processes are in another PID namespace (a container sharing the host's network), or
      the module could not read their open files (another user's C(/proc/<pid>/fd) needs C(CAP_SYS_PTRACE), which
      container runtimes drop).
  returned: always
  type: list
  elements: str
  sample: ["127.0.0.1:8001"]
"""

import os
import pwd
import re
import socket
import struct

from ansible.module_utils.basic import AnsibleModule

PROC = '/proc'
# A unix socket in the listening state has __SO_ACCEPTCON in its flags.
ACCEPTCON = 0x10000
TCP_LISTEN = '0A'
WILDCARDS = ('0.0.0.0', '::', '*', '')
CONFIG_OPTIONS = {'--ini': 'ini', '--yaml': 'yaml', '--yml': 'yaml', '--json': 'json', '--js': 'json', '--xml': 'xml'}
CONFIG_SUFFIXES = ('.ini', '.yaml', '.yml', '.json', '.js', '.xml')
PIDFILE_OPTIONS = ('--pidfile', '--pidfile2')
PIDFILE_LINE = re.compile(r'^\s*pidfile2?\s*=\s*(.+?)\s*$')


def read(path, mode='r'):
    try:
        with open(path, mode) as handle:
            return handle.read()
    except (IOError, OSError):
        return None


def readlink(path):
    try:
        return os.readlink(path)
    except OSError:
        return ''


def split_address(value):
    """'127.0.0.1:8001' -> ('127.0.0.1', 8001); '[::1]:8001' -> ('::1', 8001)."""
    host, sep, port = value.rpartition(':')
    if not sep or not port.isdigit():
        raise ValueError('not host:port: %r' % value)
    host = host.strip('[]')
    return host, int(port)


def hex_address(text):
    """The address of /proc/net/tcp{,6}, printed by the kernel as native-endian 32-bit words."""
    if len(text) == 8:
        return socket.inet_ntop(socket.AF_INET, struct.pack('=I', int(text, 16)))
    words = [struct.pack('=I', int(text[i:i + 8], 16)) for i in range(0, 32, 8)]
    address = socket.inet_ntop(socket.AF_INET6, b''.join(words))
    # An IPv4-mapped listener (::ffff:127.0.0.1) is the IPv4 address.
    return address[7:] if address.startswith('::ffff:') and '.' in address else address


def host_matches(wanted, bound):
    if wanted in WILDCARDS or bound in WILDCARDS:
        return True
    if wanted == 'localhost':
        return bound in ('127.0.0.1', '::1')
    return wanted == bound


def listening_inodes(unix_paths, tcp_wanted):
    """{inode: label} of the listening sockets asked for."""
    found = {}
    for line in (read(os.path.join(PROC, 'net', 'unix')) or '').splitlines()[1:]:
        fields = line.split(None, 7)
        if len(fields) < 8:
            continue
        if int(fields[3], 16) & ACCEPTCON and fields[7] in unix_paths:
            found[fields[6]] = 'unix:' + fields[7]
    for table in ('tcp', 'tcp6'):
        for line in (read(os.path.join(PROC, 'net', table)) or '').splitlines()[1:]:
            fields = line.split()
            if len(fields) < 10 or fields[3] != TCP_LISTEN:
                continue
            address, port = fields[1].split(':')
            host, port = hex_address(address), int(port, 16)
            if any(port == p and host_matches(h, host) for h, p in tcp_wanted):
                found[fields[9]] = ('[%s]:%d' if ':' in host else '%s:%d') % (host, port)
    return found


def pids():
    try:
        names = os.listdir(PROC)
    except OSError:
        return []
    return sorted(int(n) for n in names if n.isdigit())


def socket_pids(inodes):
    """{pid: set of labels} of the processes holding one of the inodes."""
    out = {}
    for pid in pids():
        fd_dir = os.path.join(PROC, str(pid), 'fd')
        try:
            fds = os.listdir(fd_dir)
        except OSError:
            continue
        for fd in fds:
            target = readlink(os.path.join(fd_dir, fd))
            if target.startswith('socket:[') and target[8:-1] in inodes:
                out.setdefault(pid, set()).add(inodes[target[8:-1]])
    return out


def parent(pid):
    stat = read(os.path.join(PROC, str(pid), 'stat'))
    if not stat:
        return 0
    # The name in parentheses may hold spaces and parentheses: the fields follow the last ')'.
    return int(stat[stat.rfind(')') + 2:].split()[1])


def ancestors(pid, limit=256):
    out = []
    current = parent(pid)
    while current > 0 and len(out) < limit:
        out.append(current)
        if current == 1:
            break
        current = parent(current)
    return out


def environ_pwd(pid):
    data = read(os.path.join(PROC, str(pid), 'environ'), 'rb') or b''
    for entry in data.split(b'\0'):
        if entry.startswith(b'PWD='):
            return entry[4:].decode('utf-8', 'replace')
    return ''


def resolve(path, bases):
    """The first existing absolute path of path, tried against each base directory."""
    if os.path.isabs(path):
        return os.path.normpath(path) if os.path.exists(path) else ''
    for base in bases:
        if base:
            candidate = os.path.normpath(os.path.join(base, path))
            if os.path.exists(candidate):
                return candidate
    return ''


def expand(value, config):
    """uWSGI's magic variables of a config file: %d (its directory, with a slash), %n, %p, %%."""
    name = os.path.basename(config)
    return re.sub(r'%([dnp%])', lambda m: {
        'd': os.path.dirname(config) + '/', 'n': os.path.splitext(name)[0], 'p': config, '%': '%'}[m.group(1)], value)


def uwsgi_files(args, bases):
    """(configs, pidfiles) of a uWSGI command line, existing files only, absolute."""
    configs, pidfiles, pid_values = [], [], []
    index = 1
    while index < len(args):
        arg = args[index]
        option, value = arg, None
        if arg.startswith('--') and '=' in arg:
            option, value = arg.split('=', 1)
        elif arg in CONFIG_OPTIONS or arg in PIDFILE_OPTIONS:
            if index + 1 < len(args):
                value = args[index + 1]
                index += 1
        elif not arg.startswith('-'):
            option, value = '--config', arg
        index += 1
        if value is None:
            continue
        if option in PIDFILE_OPTIONS:
            pid_values.append((value, ''))
            continue
        if option not in CONFIG_OPTIONS and option != '--config':
            continue
        # file.ini:section names a section of the file.
        head, sep, tail = value.rpartition(':')
        if sep and head.endswith(CONFIG_SUFFIXES) and '/' not in tail:
            value = head
        if option == '--config' and not value.endswith(CONFIG_SUFFIXES):
            continue
        path = resolve(value, bases)
        if path and path not in configs:
            configs.append(path)
    for config in configs:
        if not config.endswith('.ini'):
            continue
        for line in (read(config) or '').splitlines():
            match = PIDFILE_LINE.match(line)
            if match:
                pid_values.append((expand(match.group(1), config), os.path.dirname(config)))
    for value, config_dir in pid_values:
        path = resolve(value, bases + [config_dir])
        if path and path not in pidfiles:
            pidfiles.append(path)
    return configs, pidfiles


def describe(pid):
    """What the module returns about one process."""
    base = os.path.join(PROC, str(pid))
    args = [a.decode('utf-8', 'replace') for a in (read(os.path.join(base, 'cmdline'), 'rb') or b'').split(b'\0') if a]
    name = (read(os.path.join(base, 'comm')) or '').strip()
    exe = readlink(os.path.join(base, 'exe'))
    cwd = readlink(os.path.join(base, 'cwd'))
    try:
        uid = os.stat(base).st_uid
        try:
            user = pwd.getpwuid(uid).pw_name
        except KeyError:
            user = str(uid)
    except OSError:
        user = ''
    first = os.path.basename(args[0]) if args else ''
    is_uwsgi = any(os.path.basename(n).lower().startswith('uwsgi') for n in (name, exe, first) if n)
    configs, pidfiles = uwsgi_files(args, [environ_pwd(pid), cwd]) if is_uwsgi else ([], [])
    return {
        'pid': pid, 'ppid': parent(pid), 'name': name, 'exe': exe, 'user': user, 'cwd': cwd,
        'uwsgi': is_uwsgi, 'stop_signal': 'INT' if is_uwsgi else 'TERM', 'configs': configs, 'pidfiles': pidfiles,
    }


def holders(unix_paths, tcp_wanted, exclude_pids):
    """(holders, unseen): the process trees found, and the sockets asked for that no visible process holds."""
    inodes = listening_inodes(set(unix_paths), tcp_wanted)
    if not inodes:
        return [], []
    held = socket_pids(inodes)
    seen = set(label for labels in held.values() for label in labels)
    unseen = sorted(set(label for label in inodes.values() if label not in seen))
    excluded = set(p for p in exclude_pids if p > 1)
    lineage = dict((pid, ancestors(pid)) for pid in held)
    kept = [pid for pid in held if pid not in excluded and not excluded.intersection(lineage[pid])]
    groups = {}
    for pid in kept:
        # The topmost ancestor that holds one of the sockets too; itself when none does.
        top = ([a for a in lineage[pid] if a in held and a in kept] or [pid])[-1]
        groups.setdefault(top, []).append(pid)
    out = []
    for top in sorted(groups):
        entry = describe(top)
        members = sorted(groups[top])
        entry['pids'] = members
        entry['listens'] = sorted(set(label for pid in members for label in held[pid]))
        out.append(entry)
    return out, unseen


def main():
    module = AnsibleModule(
        argument_spec=dict(
            unix=dict(type='list', elements='path', default=[]),
            tcp=dict(type='list', elements='str', default=[]),
            exclude_pids=dict(type='list', elements='int', default=[]),
        ),
        supports_check_mode=True,
    )
    tcp_wanted = []
    for value in module.params['tcp']:
        try:
            tcp_wanted.append(split_address(value))
        except ValueError:
            module.fail_json(msg='tcp: %r is not host:port (for example 127.0.0.1:8001 or [::1]:8001)' % value)
    found, unseen = holders(module.params['unix'], tcp_wanted, module.params['exclude_pids'])
    module.exit_json(changed=False, holders=found, unseen=unseen)


if __name__ == '__main__':
    main()

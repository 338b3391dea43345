#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r"""
module: daphne_listen
short_description: Tell the daphne processes of a host to stop or start accepting new connections, or list them
version_added: 0.1.0
description:
  - Lists the processes of a supervisor group of daphne processes (C(supervisorctl status <group>:*)) with their
    state and pid and, for each running one named in O(processes), the release it loaded, asked of the process
    itself over its socket (C(GET /__webstack__/probe) of the collection's ASGI entry point). A process that does not
    answer (it already refuses connections) has no release.
  - With O(state=refusing), sends C(SIGUSR1) to every running process that answers its probe, except those that
    report O(keep_release) and those named in O(keep_programs). The collection's ASGI entry point then closes its
    listening socket and keeps its open sessions (a front such as nginx passes new handshakes to the other
    processes).
  - With O(state=accepting), sends C(SIGUSR2) to every running process (the entry point listens again; a process
    that was accepting is unchanged).
  - A rollout uses it on every app host so that a websocket session cut by a drain can only reconnect to a
    process on the new release.
author:
  - webstack.django_uwsgi maintainers (@webstack)
attributes:
  check_mode:
    description: In check mode the processes are listed and the signals that would be sent reported, none is sent.
    support: full
  diff_mode:
    description: No file changes; nothing to diff.
    support: none
options:
  state:
    description:
      - C(query) lists the processes and changes nothing.
      - C(refusing) sends C(SIGUSR1) (stop accepting) to the running processes that answer, but those on
        O(keep_release) or in O(keep_programs).
      - C(accepting) sends C(SIGUSR2) (accept again) to every running process.
    type: str
    choices: [query, refusing, accepting]
    default: query
  group:
    description:
      - The supervisor group of the daphne processes.
    type: str
    default: daphne
  supervisorctl:
    description:
      - The supervisorctl command line (argv) that talks to the supervisord running the processes.
    type: list
    elements: str
    default: [supervisorctl, -c, /etc/supervisor/supervisord.conf]
  processes:
    description:
      - The slots of the group, each with C(program) (C(<group>:<name>)) and C(socket) (a unix socket path) or
        C(address) (C(host:port)), as the collection's stack model lists them; their release is asked over these.
      - Required with O(state=refusing).
    type: list
    elements: dict
    default: []
  keep_release:
    description:
      - A release id; processes that report it are left alone by O(state=refusing) and reported with
        RV(processes[].on_release) true.
      - O(state=refusing) needs this or O(keep_programs).
    type: str
  keep_programs:
    description:
      - Programs (C(<group>:<name>)) left accepting by O(state=refusing) whatever release they report, such as the
        slot just started with a changed environment when the release is the same (the daphne role's restart).
      - O(state=refusing) needs this or O(keep_release).
    type: list
    elements: str
  timeout:
    description:
      - Seconds each probe may take.
    type: float
    default: 3
notes:
  - Only the collection's ASGI entry point (daphne role) handles C(SIGUSR1) and C(SIGUSR2) this way; run the
    module only against such processes.
  - Needs root (C(become=true)) to reach the sockets and signal another user's processes.
  - The release is asked of the process, not read from C(/proc/<pid>/cwd), which root cannot read in a container
    without C(CAP_SYS_PTRACE).
"""

EXAMPLES = r"""
- name: Stop every daphne process not on release v2 from accepting new sessions
  webstack.django_uwsgi.daphne_listen:
    state: refusing
    processes: "{{ lookup('webstack.django_uwsgi.stack').daphne }}"
    keep_release: v2

- name: Let every daphne process accept again
  webstack.django_uwsgi.daphne_listen:
    state: accepting

- name: Stop every daphne process but the slot just started from accepting (same release, new environment)
  webstack.django_uwsgi.daphne_listen:
    state: refusing
    processes: "{{ lookup('webstack.django_uwsgi.stack').daphne }}"
    keep_programs: [daphne:daphne2]

- name: Which daphne slots run, on which release
  webstack.django_uwsgi.daphne_listen:
    processes: "{{ lookup('webstack.django_uwsgi.stack').daphne }}"
    keep_release: v2
  register: daphne_slots
"""

RETURN = r"""
processes:
  description: Every process of the group, in supervisor's order.
  returned: always
  type: list
  elements: dict
  contains:
    program:
      description: The supervisor name, C(<group>:<name>).
      type: str
      sample: daphne:daphne0
    state:
      description: Supervisor's state (C(RUNNING), C(STOPPED), C(STARTING), ...).
      type: str
      sample: RUNNING
    pid:
      description: The process id, 0 when it does not run.
      type: int
    release:
      description: The release the process reported, empty when it does not run or did not answer its probe.
      type: str
      sample: v1
    on_release:
      description: Whether the process runs O(keep_release).
      type: bool
signalled:
  description: The programs signalled (in check mode, that would have been).
  returned: always
  type: list
  elements: str
  sample: [daphne:daphne0, daphne:daphne1]
"""

import os
import re
import signal

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.django_uwsgi.plugins.module_utils.asgi_probe import (
    ProbeError,
    http_get,
    parse_target,
)

_LINE = re.compile(r"^(?P<program>\S+)\s+(?P<state>[A-Z]+)(?:\s+pid (?P<pid>\d+),)?")
SIGNALS = {"refusing": signal.SIGUSR1, "accepting": signal.SIGUSR2}
PROBE_PATH = "/__webstack__/probe"


def parse_status(text, group):
    """[{program, state, pid}] of the group's lines of `supervisorctl status`."""
    out = []
    for line in text.splitlines():
        match = _LINE.match(line.strip())
        if match and match.group("program").startswith(group + ":"):
            out.append({"program": match.group("program"), "state": match.group("state"),
                        "pid": int(match.group("pid") or 0)})
    return out


def probed_release(slot, timeout):
    """The release the process on slot reports (its probe), empty when it does not answer."""
    try:
        target = parse_target(slot.get("socket") or None, slot.get("address") or None)
        answer = http_get(target, PROBE_PATH, timeout=timeout)
    except ProbeError:
        return ""
    if answer.get("status") != 200 or not isinstance(answer.get("json"), dict):
        return ""
    return str(answer["json"].get("release") or "")


def to_signal(processes, state, keep_programs=()):
    """The running processes that get the signal of state."""
    running = [p for p in processes if p["state"] == "RUNNING" and p["pid"]]
    if state == "refusing":
        return [p for p in running if p["release"] and not p["on_release"] and p["program"] not in keep_programs]
    if state == "accepting":
        return running
    return []


def main():
    module = AnsibleModule(
        argument_spec=dict(
            state=dict(type="str", choices=["query", "refusing", "accepting"], default="query"),
            group=dict(type="str", default="daphne"),
            supervisorctl=dict(type="list", elements="str",
                               default=["supervisorctl", "-c", "/etc/supervisor/supervisord.conf"]),
            processes=dict(type="list", elements="dict", default=[]),
            keep_release=dict(type="str"),
            keep_programs=dict(type="list", elements="str"),
            timeout=dict(type="float", default=3.0),
        ),
        required_if=[("state", "refusing", ["keep_release", "keep_programs"], True)],
        supports_check_mode=True,
    )
    p = module.params
    if p["state"] == "refusing" and not p["processes"]:
        module.fail_json(msg="state=refusing needs processes (the slots to ask for their release)")
    argv = list(p["supervisorctl"]) + ["status", p["group"] + ":*"]
    rc, out, err = module.run_command(argv)
    processes = parse_status(out, p["group"])
    # supervisorctl status exits 3 when a process does not run (a stopped slot).
    if rc not in (0, 3) or not processes:
        module.fail_json(msg=f"supervisorctl status {p['group']}:* (rc {rc}) listed no process of group "
                             f"{p['group']!r}: {(out + ' ' + err).strip()[:300]}", rc=rc)
    slots = {str(s.get("program")): s for s in p["processes"]}
    for proc in processes:
        slot = slots.get(proc["program"])
        proc["release"] = probed_release(slot, p["timeout"]) if slot and proc["state"] == "RUNNING" else ""
        proc["on_release"] = bool(p["keep_release"]) and proc["release"] == p["keep_release"]
    targets = to_signal(processes, p["state"], p["keep_programs"] or [])
    if not module.check_mode:
        for proc in targets:
            try:
                os.kill(proc["pid"], SIGNALS[p["state"]])
            except ProcessLookupError:
                # Gone since the status: nothing left to tell.
                continue
            except OSError as exc:
                module.fail_json(msg=f"signalling {proc['program']} (pid {proc['pid']}) failed: {exc}",
                                 processes=processes)
    module.exit_json(changed=bool(targets), processes=processes, signalled=[t["program"] for t in targets])


if __name__ == "__main__":
    main()

# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""loadgen.py run in the background by a test, with named windows.

    load = Background("v2", "http://127.0.0.1:18580", ["6:http:/cpu?ms=2", "1:ws:/ws/echo/"])
    load.mark("rollout")        # the window after the steady one
    ...                         # the action under load
    doc = load.stop()           # {"summary": ..., "requests": [...]}: loadgen's JSON

The generator starts with a first mark ("steady" unless told) and runs until
stop() (or its own bounds: duration seconds, requests sent); stop() waits
`tail` seconds and marks "after" (tail None: neither), ends it with SIGTERM
(it finishes the requests in flight and writes its JSON), keeps that JSON in
self.doc and removes its scratch directory.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

LOADGEN = os.path.join(os.path.dirname(os.path.abspath(__file__)), "loadgen.py")


class Background:
    """One bounded loadgen.py run against a loopback URL."""

    def __init__(self, name, url, mix, steady=5, concurrency=4, rate=30, duration=900, requests=50000,
                 timeout=None, first_mark="steady"):
        self.dir = tempfile.mkdtemp(prefix=f"load-{name}-")
        self.out = os.path.join(self.dir, "load.json")
        self.marks = os.path.join(self.dir, "load.marks")
        argv = [sys.executable, LOADGEN, "run", "--url", url, "--out", self.out, "--marks", self.marks,
                "--pid-file", os.path.join(self.dir, "load.pid"), "--concurrency", str(concurrency),
                "--rate", str(rate), "--duration", str(duration), "--requests", str(requests)]
        if timeout is not None:
            argv += ["--timeout", str(timeout)]
        for entry in mix:
            argv += ["--mix", entry]
        self.doc = None
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.mark(first_mark)
        time.sleep(steady)

    def mark(self, name):
        with open(self.marks, "a", encoding="utf-8") as handle:
            handle.write(f"{name} {time.time():.4f}\n")

    def stop(self, tail=3):
        if tail is not None:
            time.sleep(tail)
            self.mark("after")
            time.sleep(1)
        self.proc.send_signal(signal.SIGTERM)
        output, _ = self.proc.communicate(timeout=60)
        assert self.proc.returncode == 0, output
        with open(self.out, encoding="utf-8") as handle:
            self.doc = json.load(handle)
        shutil.rmtree(self.dir, ignore_errors=True)
        return self.doc

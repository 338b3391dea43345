# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tests/load/background.py (the scenarios' load in the background) against a
small HTTP server on 127.0.0.1: windows by mark, the JSON kept, scratch removed."""

import http.server
import os
import sys
import threading

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "load"))

import background  # noqa: E402


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (the http.server name)
        body = b"ok" if self.path == "/ok" else b"no"
        self.send_response(200 if self.path == "/ok" else 503)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def url():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_windows_by_mark_and_scratch_removed(url):
    load = background.Background("unit", url, ["1:http:/ok"], steady=1, rate=40, duration=60, requests=5000)
    load.mark("action")
    doc = load.stop(tail=0.5)
    summary = doc["summary"]
    assert not os.path.exists(load.dir)
    assert load.doc is doc
    assert summary["requests"] > 10 and summary["errors"] == 0, summary
    assert {"steady", "action", "after"} <= set(summary["windows"]), summary["windows"]
    assert summary["windows"]["steady"]["requests"] > 0
    assert len(doc["requests"]) == summary["requests"]


def test_errors_counted_and_no_tail(url):
    load = background.Background("unit", url, ["1:http:/bad"], steady=0.5, rate=40, duration=60, requests=5000,
                                 timeout=5, first_mark="before")
    summary = load.stop(tail=None)["summary"]
    assert summary["requests"] > 0 and summary["errors"] == summary["requests"], summary
    assert "before" in summary["windows"] and "after" not in summary["windows"], summary["windows"]

# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""tests/load/ws_sessions.py against a websocket echo server on 127.0.0.1 that
closes every session once, with a chosen close code (or without a close
frame), and drops one echo before that: the cuts, their codes, the reconnects
and the resent message are counted; only loopback targets are accepted."""

import asyncio
import json
import os
import sys
import threading
import time

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "load"))

import ws_sessions  # noqa: E402

from websockets.asyncio import server as websockets_server  # noqa: E402  (pinned in requirements.txt)


class CuttingEcho:
    """Echoes "<session>:<seq>"; the first connection of each session is cut
    after its third message, whose echo is never sent."""

    def __init__(self, code, wrap=False):
        self.code = code
        self.wrap = wrap
        self.paths = set()
        self.cut = set()
        self.port = None
        self.loop = None
        self.stop_event = None
        self.ready = threading.Event()

    async def handler(self, ws):
        count = 0
        self.paths.add(ws.request.path)
        async for message in ws:
            owner = message.partition(":")[0]
            count += 1
            if count == 3 and owner not in self.cut:
                self.cut.add(owner)
                if self.code is None:
                    ws.transport.abort()
                else:
                    await ws.close(self.code)
                return
            await ws.send(json.dumps({"room": ws.request.path, "message": message}) if self.wrap else message)

    def run(self):
        async def main():
            self.stop_event = asyncio.Event()
            async with websockets_server.serve(self.handler, "127.0.0.1", 0) as server:
                self.port = server.sockets[0].getsockname()[1]
                self.loop = asyncio.get_running_loop()
                self.ready.set()
                await self.stop_event.wait()
        asyncio.run(main())


@pytest.fixture
def server(request):
    echo = CuttingEcho(*request.param) if isinstance(request.param, tuple) else CuttingEcho(request.param)
    thread = threading.Thread(target=echo.run, daemon=True)
    thread.start()
    assert echo.ready.wait(10)
    yield echo
    echo.loop.call_soon_threadsafe(echo.stop_event.set)
    thread.join(10)


@pytest.mark.parametrize("server, expected", [(1012, {"1012": 4}), (None, {"none": 4})], indirect=["server"])
def test_sessions_count_cuts_codes_reconnects_and_resends(server, expected):
    sessions = ws_sessions.Sessions(f"ws://127.0.0.1:{server.port}/", count=4, interval=0.1, duration=30, settle=3)
    sessions.start(wait=10)
    time.sleep(1.5)
    doc = sessions.stop()
    assert doc["error"] is None
    assert doc["close_codes"] == expected
    assert doc["sessions_by_disconnects"] == {"1": 4} and doc["max_disconnects_per_session"] == 1
    assert doc["reconnects"] == 4 and doc["reconnect_p99_s"] < 1
    # The third message of each session was dropped with the cut, sent again after the reconnect.
    assert doc["messages_resent"] == 4 and doc["messages_lost"] == 0
    assert doc["messages_echoed"] == doc["messages_sent"] > 4 * 5


def test_only_loopback_targets():
    with pytest.raises(ValueError):
        ws_sessions.Sessions("ws://example.org/ws/", count=1)


@pytest.mark.parametrize("server", [(1012, True)], indirect=True)
def test_a_room_of_its_own_per_session_and_wrapped_echoes(server):
    """"{index}" in the URL gives each session its own path; unwrap reads the
    text out of what a room sends back (JSON here)."""
    sessions = ws_sessions.Sessions(f"ws://127.0.0.1:{server.port}/live/s{{index}}/", count=3, interval=0.1,
                                    duration=30, settle=3, unwrap=lambda text: json.loads(text)["message"])
    sessions.start(wait=10)
    time.sleep(1.0)
    doc = sessions.stop()
    assert server.paths == {"/live/s0/", "/live/s1/", "/live/s2/"}
    assert doc["error"] is None and doc["close_codes"] == {"1012": 3} and doc["max_disconnects_per_session"] == 1
    assert doc["messages_lost"] == 0 and doc["messages_echoed"] == doc["messages_sent"] > 3 * 5

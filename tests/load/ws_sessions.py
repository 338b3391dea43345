# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Long-lived websocket sessions held in the background (loopback only).

    sessions = Sessions("ws://127.0.0.1:18580/ws/echo/", count=50, origin="http://127.0.0.1:18580")
    sessions.start()               # returns once every session is open (or raises)
    ...                            # the action (a rollout) while they run
    doc = sessions.stop()          # figures, see figures()

Each session sends "<session>:<seq>" every `interval` seconds to an echo
endpoint and checks the echoes. `url` may hold "{index}" (each session its
own path, such as a room of its own) and `unwrap` turns what the server
sends into the text echoed (a room that wraps it in JSON). When the server closes it (or the connection
drops) it notes the close code (None: no close frame was received),
reconnects at once (a failed attempt is retried every 0.05 s) and sends
again every sequence number not echoed yet. stop() stops sending, waits up
to `settle` seconds for the last echoes, closes with 1000. A message is lost
when its sequence number was never echoed. Every loop is bounded: the run
ends after `duration` seconds whatever happens.
"""

import asyncio
import threading
import time
import urllib.parse

from loadgen import LOOPBACK, percentile  # the same folder: the load generator's definitions


class _State:
    def __init__(self):
        self.next = 0
        self.unacked = set()
        self.echoed = 0
        self.resent = 0
        self.disconnects = []      # {"t", "code"}
        self.reconnects = []       # seconds from the close to the next open session
        self.failed_attempts = 0   # handshakes refused or failed while reconnecting
        self.down_since = None
        self.open = False


class Sessions:
    """`count` echo sessions in one event loop on a background thread."""

    def __init__(self, url, count=50, origin=None, interval=0.5, duration=1200, settle=5.0, open_timeout=5.0,
                 unwrap=None):
        host = urllib.parse.urlsplit(url).hostname
        if host not in LOOPBACK:
            raise ValueError(f"{url}: only loopback targets are allowed")
        self.url, self.count, self.origin = url, count, origin
        self.unwrap = unwrap or str
        self.interval, self.duration, self.settle, self.open_timeout = interval, duration, settle, open_timeout
        self.states = [_State() for _ in range(count)]
        self.sending = True
        self.running = True
        self.loop = None
        self.thread = None
        self.error = None

    # ------------------------------------------------------------ control
    def start(self, wait=30):
        self.thread = threading.Thread(target=self._thread, name="ws-sessions", daemon=True)
        self.thread.start()
        deadline = time.time() + wait
        while time.time() < deadline:
            if self.error is not None:
                raise RuntimeError(f"websocket sessions: {self.error!r}")
            if all(s.open and s.echoed > 0 for s in self.states):
                return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"websocket sessions: not all {self.count} open and echoing after {wait} s")

    def stop(self):
        self.sending = False
        deadline = time.time() + self.settle
        while time.time() < deadline and any(s.unacked for s in self.states):
            time.sleep(0.1)
        self.running = False
        if self.thread is not None:
            self.thread.join(timeout=self.open_timeout + 10)
        return self.figures()

    def figures(self):
        """Sessions, disconnects per session, close codes, reconnect p50/p99/max, messages and losses."""
        disconnects = [d for s in self.states for d in s.disconnects]
        reconnects = [r for s in self.states for r in s.reconnects]
        codes = {}
        for d in disconnects:
            key = "none" if d["code"] is None else str(d["code"])
            codes[key] = codes.get(key, 0) + 1
        per_session = {}
        for s in self.states:
            per_session[str(len(s.disconnects))] = per_session.get(str(len(s.disconnects)), 0) + 1
        return {
            "sessions": self.count,
            "interval_s": self.interval,
            "disconnects": len(disconnects),
            "sessions_by_disconnects": dict(sorted(per_session.items())),
            "max_disconnects_per_session": max((len(s.disconnects) for s in self.states), default=0),
            "close_codes": codes,
            "reconnects": len(reconnects),
            "reconnect_p50_s": _round(percentile(reconnects, 50)),
            "reconnect_p99_s": _round(percentile(reconnects, 99)),
            "reconnect_max_s": _round(max(reconnects) if reconnects else None),
            "failed_reconnect_attempts": sum(s.failed_attempts for s in self.states),
            "messages_sent": sum(s.next for s in self.states),
            "messages_resent": sum(s.resent for s in self.states),
            "messages_echoed": sum(s.echoed for s in self.states),
            "messages_lost": sum(len(s.unacked) for s in self.states),
            "still_down": sum(1 for s in self.states if s.down_since is not None),
            "error": None if self.error is None else repr(self.error),
        }

    # ------------------------------------------------------------ the loop
    def _thread(self):
        try:
            asyncio.run(self._main())
        except Exception as exc:  # pylint: disable=broad-except
            self.error = exc

    async def _main(self):
        ends = time.monotonic() + self.duration
        await asyncio.gather(*(self._session(i, ends) for i in range(self.count)))

    async def _session(self, index, ends):
        from websockets.asyncio.client import connect  # pylint: disable=import-outside-toplevel
        from websockets.exceptions import ConnectionClosed  # pylint: disable=import-outside-toplevel

        state = self.states[index]
        await asyncio.sleep(index * 0.02)
        while self.running and time.monotonic() < ends:
            try:
                ws = await connect(self.url.replace("{index}", str(index)), origin=self.origin, open_timeout=self.open_timeout,
                                   close_timeout=2, ping_interval=None)
            except Exception:  # pylint: disable=broad-except
                # Refused or failed handshake: counted, retried shortly.
                if state.down_since is not None:
                    state.failed_attempts += 1
                await asyncio.sleep(0.05)
                continue
            state.open = True
            if state.down_since is not None:
                state.reconnects.append(time.monotonic() - state.down_since)
                state.down_since = None
            try:
                for seq in sorted(state.unacked):
                    await ws.send(f"{index}:{seq}")
                    state.resent += 1
                await self._talk(ws, index, state, ends)
                await ws.close()
                return
            except ConnectionClosed as exc:
                state.open = False
                state.down_since = time.monotonic()
                state.disconnects.append({"t": time.time(), "code": exc.rcvd.code if exc.rcvd is not None else None})

    async def _talk(self, ws, index, state, ends):
        loop = asyncio.get_running_loop()
        next_send = loop.time()
        while self.running and time.monotonic() < ends:
            if self.sending and loop.time() >= next_send:
                seq = state.next
                state.next += 1
                state.unacked.add(seq)
                await ws.send(f"{index}:{seq}")
                next_send += self.interval
                continue
            wait = max(0.01, min(0.2, next_send - loop.time())) if self.sending else 0.2
            try:
                message = await asyncio.wait_for(ws.recv(), wait)
            except asyncio.TimeoutError:
                continue
            try:
                owner, _, seq = self.unwrap(message).partition(":")
            except (TypeError, ValueError, KeyError):
                continue
            if owner == str(index) and seq.isdigit() and int(seq) in state.unacked:
                state.unacked.discard(int(seq))
                state.echoed += 1


def _round(value):
    return None if value is None else round(value, 3)

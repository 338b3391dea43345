#!/usr/bin/env python3
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Bounded load generator for the stack's tests and benchmarks (loopback only).

    loadgen.py run --url http://127.0.0.1:18580 --out load.json
              [--mix 6:http:/cpu?ms=2 --mix 3:http:/healthz --mix 1:ws:/ws/echo/]
              [--concurrency 4] [--rate 0] [--duration 300] [--requests 100000]
              [--timeout 10] [--host localhost] [--pid-file load.pid] [--marks load.marks]

        Runs `concurrency` clients, each sending one request after the other
        (closed loop, or paced so that all together make about `rate` requests
        per second). Each request is picked from the mix by weight: `http` is a
        GET over a fresh connection (so a refused or reset connection is seen),
        `ws` a websocket connect, echo of one message, close. Stops at the first
        limit reached (duration seconds or requests sent), or on SIGTERM/SIGINT
        from whoever started it: requests in flight are finished, the JSON is
        written, the pid file removed, exit status 0. Only 127.0.0.1, ::1 and
        localhost are accepted as targets.

    loadgen.py mark --marks load.marks NAME
        Appends "NAME <epoch>" to the marks file: windows run from one mark to
        the next (the last one to the end of the run). Marks given while the
        generator runs are read when it stops.

    loadgen.py summarize load.json [--window NAME=START:END ...] [--marks load.marks]
        Prints the summary of a finished run, over the given windows (epoch
        seconds) or the windows of a marks file.

The JSON holds `config`, `started`, `stopped`, `requests` (one object per
request: t = epoch of the start, kind, path, outcome, status, latency_ms,
error) and `summary`. Outcomes: ok (2xx, or websocket echo received),
http_error (non-2xx), conn_error (refused, reset, closed before a status),
timeout, ws_fail (handshake refused or echo wrong). The summary counts them
and gives p50/p99/max latency overall, per kind and per window.

The module is importable: summarize(), read_marks() and percentile() are used
by the molecule scenarios' tests.
"""

import argparse
import asyncio
import json
import os
import random
import signal
import sys
import time
import urllib.parse

LOOPBACK = {"127.0.0.1", "::1", "localhost"}
DEFAULT_MIX = ["6:http:/cpu?ms=2", "3:http:/healthz", "1:ws:/ws/echo/"]
OUTCOMES = ("ok", "http_error", "conn_error", "timeout", "ws_fail")


# ---------------------------------------------------------------- statistics

def percentile(values, pct):
    """Nearest-rank percentile of a list of numbers (None when empty)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, int(round(pct / 100.0 * len(ordered) + 0.5 - 1e-9)))
    return ordered[min(rank, len(ordered)) - 1]


def _stats(records):
    latencies = [r["latency_ms"] for r in records if r["outcome"] == "ok"]
    outcomes = {name: 0 for name in OUTCOMES}
    for r in records:
        outcomes[r["outcome"]] = outcomes.get(r["outcome"], 0) + 1
    span = (max(r["t"] for r in records) - min(r["t"] for r in records)) if records else 0.0
    return {
        "requests": len(records),
        "outcomes": outcomes,
        "errors": len(records) - outcomes["ok"],
        "non_2xx": outcomes["http_error"],
        "connection_errors": outcomes["conn_error"],
        "timeouts": outcomes["timeout"],
        "ws_failures": outcomes["ws_fail"],
        "rps": round(len(records) / span, 1) if span > 0 else None,
        "p50_ms": _round(percentile(latencies, 50)),
        "p99_ms": _round(percentile(latencies, 99)),
        "max_ms": _round(max(latencies) if latencies else None),
    }


def _round(value):
    return None if value is None else round(value, 2)


def summarize(records, windows=None):
    """Summary of a list of request records; windows: list of (name, start, end) epochs."""
    summary = _stats(records)
    summary["by_kind"] = {}
    for kind in sorted({r["kind"] for r in records}):
        summary["by_kind"][kind] = _stats([r for r in records if r["kind"] == kind])
    summary["by_path"] = {}
    for path in sorted({r["path"] for r in records}):
        summary["by_path"][path] = _stats([r for r in records if r["path"] == path])
    summary["windows"] = {}
    for name, start, end in windows or []:
        inside = [r for r in records if start <= r["t"] < end]
        entry = _stats(inside)
        entry.update({"start": start, "end": end, "seconds": round(end - start, 3)})
        entry["by_kind"] = {k: _stats([r for r in inside if r["kind"] == k]) for k in sorted({r["kind"] for r in inside})}
        summary["windows"][name] = entry
    summary["error_samples"] = [r for r in records if r["outcome"] != "ok"][:20]
    return summary


def read_marks(path):
    """[(name, epoch), ...] from a marks file (missing file: [])."""
    marks = []
    try:
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                parts = line.split()
                if len(parts) == 2:
                    marks.append((parts[0], float(parts[1])))
    except FileNotFoundError:
        pass
    return marks


def windows_from_marks(marks, end):
    """Each mark opens a window that the next mark (or `end`) closes."""
    out = []
    for i, (name, start) in enumerate(marks):
        stop = marks[i + 1][1] if i + 1 < len(marks) else end
        out.append((name, start, stop))
    return out


# ---------------------------------------------------------------- clients

def parse_mix(entries):
    mix = []
    for entry in entries:
        try:
            weight, kind, path = entry.split(":", 2)
            weight = float(weight)
        except ValueError:
            raise SystemExit(f"--mix {entry!r}: expected WEIGHT:KIND:PATH, e.g. 6:http:/cpu?ms=2")
        if kind not in ("http", "ws") or not path.startswith("/") or weight <= 0:
            raise SystemExit(f"--mix {entry!r}: KIND is http or ws, PATH starts with /, WEIGHT > 0")
        mix.append((weight, kind, path))
    return mix


async def http_get(host, port, host_header, path, timeout):
    """(outcome, status, error) of one GET over a fresh connection."""
    writer = None
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout)
        request = (f"GET {path} HTTP/1.1\r\nHost: {host_header}\r\nUser-Agent: webstack-loadgen\r\n"
                   "Accept: */*\r\nConnection: close\r\n\r\n")
        writer.write(request.encode("ascii"))
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout)
        status_line = head.split(b"\r\n", 1)[0].decode("latin-1")
        parts = status_line.split(" ", 2)
        if len(parts) < 2 or not parts[1].isdigit():
            return "conn_error", None, f"bad status line {status_line!r}"
        status = int(parts[1])
        length = None
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        if length is not None:
            await asyncio.wait_for(reader.readexactly(length), timeout)
        else:
            await asyncio.wait_for(reader.read(), timeout)
        return ("ok" if 200 <= status < 300 else "http_error"), status, None
    except asyncio.TimeoutError:
        return "timeout", None, "timeout"
    except asyncio.IncompleteReadError as exc:
        return "conn_error", None, f"closed early ({len(exc.partial)} bytes)"
    except (OSError, asyncio.LimitOverrunError, ValueError) as exc:
        return "conn_error", None, f"{type(exc).__name__}: {exc}"
    finally:
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except (OSError, asyncio.CancelledError):
                pass


def _ws_connect():
    try:
        from websockets.asyncio.client import connect  # websockets >= 13
    except ImportError:  # pragma: no cover - older websockets
        from websockets import connect
    return connect


async def ws_echo(url, origin, timeout):
    """(outcome, status, error) of a websocket connect, echo, close."""
    import websockets

    connect = _ws_connect()
    message = f"loadgen {random.getrandbits(48):012x}"
    try:
        async with connect(url, origin=origin, open_timeout=timeout, close_timeout=timeout) as ws:
            await ws.send(message)
            answer = await asyncio.wait_for(ws.recv(), timeout)
            if message not in str(answer):
                return "ws_fail", 101, f"echo mismatch: {str(answer)[:80]!r}"
        return "ok", 101, None
    except asyncio.TimeoutError:
        return "timeout", None, "timeout"
    except websockets.exceptions.InvalidStatus as exc:
        return "ws_fail", exc.response.status_code, f"handshake answered {exc.response.status_code}"
    except websockets.exceptions.WebSocketException as exc:
        return "ws_fail", None, f"{type(exc).__name__}: {exc}"
    except OSError as exc:
        return "conn_error", None, f"{type(exc).__name__}: {exc}"


class Run:
    def __init__(self, args):
        self.args = args
        url = urllib.parse.urlsplit(args.url)
        if url.scheme != "http" or url.hostname not in LOOPBACK:
            raise SystemExit(f"--url {args.url!r}: only http:// to 127.0.0.1, ::1 or localhost is allowed")
        self.host = url.hostname
        self.port = url.port or 80
        self.host_header = args.host or url.netloc
        self.ws_base = f"ws://{url.netloc}"
        self.origin = f"http://{url.netloc}"
        self.mix = parse_mix(args.mix or DEFAULT_MIX)
        self.records = []
        self.sent = 0
        self.stop = asyncio.Event()
        self.started = None

    def pick(self, rng):
        total = sum(w for w, _, _ in self.mix)
        point = rng.random() * total
        for weight, kind, path in self.mix:
            point -= weight
            if point <= 0:
                return kind, path
        return self.mix[-1][1:]

    async def client(self, index):
        rng = random.Random(index)
        interval = self.args.concurrency / self.args.rate if self.args.rate > 0 else 0.0
        next_at = time.monotonic() + rng.random() * interval
        while not self.stop.is_set():
            if self.sent >= self.args.requests or time.time() >= self.deadline:
                self.stop.set()
                break
            if interval:
                delay = next_at - time.monotonic()
                if delay > 0:
                    try:
                        await asyncio.wait_for(self.stop.wait(), delay)
                        break
                    except asyncio.TimeoutError:
                        pass
                next_at = max(next_at + interval, time.monotonic())
            self.sent += 1
            kind, path = self.pick(rng)
            t = time.time()
            begin = time.perf_counter()
            if kind == "http":
                outcome, status, error = await http_get(self.host, self.port, self.host_header, path,
                                                        self.args.timeout)
            else:
                outcome, status, error = await ws_echo(self.ws_base + path, self.origin, self.args.timeout)
            record = {"t": round(t, 4), "kind": kind, "path": path, "outcome": outcome, "status": status,
                      "latency_ms": round((time.perf_counter() - begin) * 1000, 3)}
            if error:
                record["error"] = error
            self.records.append(record)

    async def main(self):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        self.started = time.time()
        self.deadline = self.started + self.args.duration
        await asyncio.gather(*(self.client(i) for i in range(self.args.concurrency)))
        return time.time()

    def execute(self):
        if self.args.pid_file:
            with open(self.args.pid_file, "w", encoding="utf-8") as handle:
                handle.write(f"{os.getpid()}\n")
        try:
            stopped = asyncio.run(self.main())
            marks = read_marks(self.args.marks) if self.args.marks else []
            summary = summarize(self.records, windows_from_marks(marks, stopped + 1))
            doc = {
                "config": {"url": self.args.url, "host": self.host_header, "mix": [list(m) for m in self.mix],
                           "concurrency": self.args.concurrency, "rate": self.args.rate,
                           "duration": self.args.duration, "requests": self.args.requests,
                           "timeout": self.args.timeout},
                "started": self.started,
                "stopped": stopped,
                "marks": marks,
                "summary": summary,
                "requests": self.records,
            }
            tmp = self.args.out + ".tmp"
            with open(tmp, "w", encoding="utf-8") as handle:
                json.dump(doc, handle)
            os.replace(tmp, self.args.out)
            brief = {k: v for k, v in summary.items() if k not in ("by_path", "error_samples")}
            print(json.dumps(brief, indent=1))
        finally:
            if self.args.pid_file:
                try:
                    os.unlink(self.args.pid_file)
                except FileNotFoundError:
                    pass


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="generate load until a limit or SIGTERM")
    run.add_argument("--url", required=True, help="http://127.0.0.1:PORT of the front")
    run.add_argument("--out", required=True, help="JSON file written at the end")
    run.add_argument("--mix", action="append", help="WEIGHT:KIND:PATH, repeatable (default: %s)" % DEFAULT_MIX)
    run.add_argument("--concurrency", type=int, default=4)
    run.add_argument("--rate", type=float, default=0, help="total requests/second (0: as fast as answered)")
    run.add_argument("--duration", type=float, default=300, help="time limit in seconds")
    run.add_argument("--requests", type=int, default=100000, help="request limit")
    run.add_argument("--timeout", type=float, default=10, help="seconds per request")
    run.add_argument("--host", help="Host header (default: from the URL)")
    run.add_argument("--pid-file", help="written at start, removed at exit")
    run.add_argument("--marks", help="marks file read at the end to cut windows")
    mark = sub.add_parser("mark", help="append a window mark")
    mark.add_argument("--marks", required=True)
    mark.add_argument("name")
    summ = sub.add_parser("summarize", help="summary of a finished run")
    summ.add_argument("file")
    summ.add_argument("--window", action="append", default=[], help="NAME=START:END (epoch seconds)")
    summ.add_argument("--marks")
    args = parser.parse_args(argv)

    if args.command == "run":
        if args.concurrency < 1 or args.duration <= 0 or args.requests < 1 or args.timeout <= 0 or args.rate < 0:
            parser.error("concurrency, duration, requests and timeout must be positive, rate >= 0")
        Run(args).execute()
    elif args.command == "mark":
        if not args.name.replace("_", "").replace("-", "").isalnum():
            parser.error("a mark name is letters, digits, - and _")
        with open(args.marks, "a", encoding="utf-8") as handle:
            handle.write(f"{args.name} {time.time():.4f}\n")
    else:
        with open(args.file, encoding="utf-8") as handle:
            doc = json.load(handle)
        windows = []
        for spec in args.window:
            name, _, span = spec.partition("=")
            start, _, end = span.partition(":")
            windows.append((name, float(start), float(end)))
        if args.marks:
            windows += windows_from_marks(read_marks(args.marks), doc["stopped"] + 1)
        summary = summarize(doc["requests"], windows)
        print(json.dumps({k: v for k, v in summary.items() if k != "by_path"}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())

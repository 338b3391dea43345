#!/usr/bin/env python3
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Health check of one daphne process, run on its host by the rollout (stdlib only).

    daphne_check.py (--unix PATH | --tcp HOST:PORT) [--host localhost]
                    [--healthz /healthz] [--ws /ws/echo/] [--timeout 5]
                    [--expect-release ID]

GETs the health check path (expects 200 and reads the JSON it returns), then
opens a websocket on the echo path, sends one text message, expects it back
and closes. With --expect-release, the health check's JSON must report that
release. Prints one JSON line: {"ok", "healthz": {...}, "ws": {...}};
exits 0 when both passed, 1 otherwise.
"""

import argparse
import base64
import json
import os
import socket
import struct
import sys


def connect(args):
    if args.unix:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(args.timeout)
        sock.connect(args.unix)
        return sock
    host, _, port = args.tcp.rpartition(":")
    return socket.create_connection((host.strip("[]"), int(port)), timeout=args.timeout)


def read_head(sock):
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        if not chunk:
            break
        data += chunk
    head, _, rest = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    return status, headers, rest


def healthz(args):
    sock = connect(args)
    try:
        sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n" % (args.healthz, args.host)).encode())
        status, headers, body = read_head(sock)
        while True:
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    finally:
        sock.close()
    if "chunked" in headers.get("transfer-encoding", ""):
        out, pos = b"", 0
        while True:
            end = body.index(b"\r\n", pos)
            size = int(body[pos:end], 16)
            if size == 0:
                break
            out += body[end + 2:end + 2 + size]
            pos = end + 4 + size
        body = out
    try:
        doc = json.loads(body.decode("utf-8"))
    except ValueError:
        doc = None
    return {"status": status, "json": doc, "ok": status == 200}


def frame(opcode, payload):
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        head = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    else:
        head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


def read_frame(sock, pending):
    def need(count):
        nonlocal pending
        while len(pending) < count:
            chunk = sock.recv(4096)
            if not chunk:
                raise ConnectionError("connection closed inside a websocket frame")
            pending += chunk
        out, pending = pending[:count], pending[count:]
        return out
    first, second = need(2)
    length = second & 0x7F
    if length == 126:
        length = struct.unpack("!H", need(2))[0]
    elif length == 127:
        length = struct.unpack("!Q", need(8))[0]
    if second & 0x80:
        need(4)
    return first & 0x0F, need(length)


def websocket(args):
    key = base64.b64encode(os.urandom(16)).decode()
    origin = "http://%s" % args.host
    sock = connect(args)
    try:
        sock.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\nOrigin: %s\r\n\r\n"
                      % (args.ws, args.host, key, origin)).encode())
        status, dummy, pending = read_head(sock)
        if status != 101:
            return {"ok": False, "status": status, "error": "handshake answered %s" % status}
        message = ("rollout check %s" % base64.b16encode(os.urandom(6)).decode()).encode()
        sock.sendall(frame(0x1, message))
        opcode, payload = read_frame(sock, pending)
        sock.sendall(frame(0x8, struct.pack("!H", 1000)))
        ok = opcode == 0x1 and message in payload
        return {"ok": ok, "status": 101, "error": None if ok else "echo mismatch: %r" % payload[:80]}
    finally:
        sock.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--unix")
    target.add_argument("--tcp")
    parser.add_argument("--host", default="localhost")
    parser.add_argument("--healthz", default="/healthz")
    parser.add_argument("--ws", default="/ws/echo/")
    parser.add_argument("--timeout", type=float, default=5)
    parser.add_argument("--expect-release")
    args = parser.parse_args()
    result = {"target": args.unix or args.tcp}
    for name, check in (("healthz", healthz), ("ws", websocket)):
        try:
            result[name] = check(args)
        except (OSError, ValueError) as exc:
            result[name] = {"ok": False, "error": "%s: %s" % (type(exc).__name__, exc)}
    if args.expect_release and result["healthz"]["ok"]:
        release = (result["healthz"].get("json") or {}).get("release")
        if release != args.expect_release:
            result["healthz"].update(ok=False, error="serves release %s, expected %s" % (release, args.expect_release))
    result["ok"] = result["healthz"]["ok"] and result["ws"]["ok"]
    print(json.dumps(result))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())

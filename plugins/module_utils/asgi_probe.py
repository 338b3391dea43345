# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Probe one ASGI server process (daphne) directly over its unix or TCP socket.

Two checks, each on its own connection:

- an HTTP/1.1 GET of a health path (``Connection: close``), read to the end of
  the body; the body is decoded as JSON when it is JSON;
- a websocket (RFC 6455) opened on an echo path: the handshake must answer 101
  with the right ``Sec-WebSocket-Accept``, one masked text frame is sent, the
  first data frame that comes back must hold it, then the client sends a close
  frame (1000) and reads the server's close code.

Standard library only: modules using it run on the managed host's python3.
Every failure raises ProbeError with a one-line message and a short reason key.
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import base64
import errno
import hashlib
import json
import os
import socket
import struct
import time

WEBSOCKET_GUID = b'258EAFA5-E914-47DA-95CA-C5AB0DC85B11'
OP_CONTINUATION = 0x0
OP_TEXT = 0x1
OP_BINARY = 0x2
OP_CLOSE = 0x8
OP_PING = 0x9
OP_PONG = 0xA
CLOSE_NORMAL = 1000
MAX_HEAD = 64 * 1024
MAX_BODY = 1024 * 1024
MAX_FRAME = 1024 * 1024


class ProbeError(Exception):
    """A check failed; ``reason`` is a short key, ``details`` what was seen before the failure."""

    def __init__(self, message, reason, details=None):
        super(ProbeError, self).__init__(message)
        self.reason = reason
        self.details = details or {}


def parse_target(unix_socket=None, address=None):
    """('unix', path) or ('tcp', (host, port)) from exactly one of the two options."""
    if unix_socket:
        return 'unix', unix_socket
    if not address:
        raise ProbeError('one of unix_socket or address is required', 'bad_address')
    host, sep, port = address.rpartition(':')
    host = host.strip()
    if host.startswith('[') and host.endswith(']'):
        host = host[1:-1]
    if not sep or not host or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ProbeError('address must be host:port with a port from 1 to 65535 (for example 127.0.0.1:8001 '
                         'or [::1]:8001), got %r' % address, 'bad_address')
    return 'tcp', (host, int(port))


def describe_target(target):
    """How messages name the process: unix:/run/daphne/daphne0.sock or 127.0.0.1:8001."""
    kind, where = target
    if kind == 'unix':
        return 'unix:%s' % where
    host, port = where
    return ('[%s]:%d' if ':' in host else '%s:%d') % (host, port)


class _Deadline(object):
    def __init__(self, timeout):
        self.timeout = timeout
        self.end = time.time() + timeout

    def remaining(self):
        left = self.end - time.time()
        if left <= 0:
            raise socket.timeout()
        return left


def _connect(target, deadline):
    kind, where = target
    try:
        if kind == 'unix':
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.settimeout(deadline.remaining())
                sock.connect(where)
            except Exception:
                sock.close()
                raise
            return sock
        return socket.create_connection(where, timeout=deadline.remaining())
    except socket.timeout:
        raise ProbeError('connecting timed out after %s s' % deadline.timeout, 'timeout')
    except (IOError, OSError) as exc:
        code = getattr(exc, 'errno', None)
        reason = {errno.ECONNREFUSED: 'refused', errno.ENOENT: 'missing',
                  errno.EACCES: 'permission'}.get(code, 'connect')
        hint = ''
        if code == errno.EACCES:
            hint = ' (the socket is not accessible to this user: run the task with become)'
        elif code in (errno.ECONNREFUSED, errno.ENOENT):
            hint = ' (is the daphne process running?)'
        raise ProbeError('cannot connect: %s%s' % (getattr(exc, 'strerror', None) or exc, hint), reason)


class _Reader(object):
    """Buffered reads from a socket within a deadline."""

    def __init__(self, sock, deadline, pending=b''):
        self.sock = sock
        self.deadline = deadline
        self.pending = pending

    def _fill(self):
        self.sock.settimeout(self.deadline.remaining())
        chunk = self.sock.recv(65536)
        if not chunk:
            return False
        self.pending += chunk
        return True

    def head(self):
        """Status line and headers up to the blank line; None when the peer closed before any byte."""
        while b'\r\n\r\n' not in self.pending:
            if len(self.pending) > MAX_HEAD:
                raise ProbeError('the response head exceeds %d bytes' % MAX_HEAD, 'not_http')
            if not self._fill():
                if not self.pending:
                    return None
                raise ProbeError('connection closed inside the response head: %r' % self.pending[:80], 'not_http')
        head, dummy, self.pending = self.pending.partition(b'\r\n\r\n')
        return head

    def exactly(self, count):
        while len(self.pending) < count:
            if not self._fill():
                return None
        out, self.pending = self.pending[:count], self.pending[count:]
        return out

    def to_eof(self, limit):
        while self._fill():
            if len(self.pending) > limit:
                raise ProbeError('the response body exceeds %d bytes' % limit, 'too_large')
        out, self.pending = self.pending, b''
        return out


def parse_head(head):
    """(status, reason, headers with lower-case names) of a response head."""
    lines = head.decode('iso-8859-1').split('\r\n')
    parts = lines[0].split(' ', 2)
    if len(parts) < 2 or not parts[0].startswith('HTTP/') or not parts[1].isdigit():
        raise ProbeError('the answer does not start with an HTTP status line: %r' % lines[0][:80], 'not_http')
    headers = {}
    for line in lines[1:]:
        if ':' not in line:
            continue
        name, value = line.split(':', 1)
        name = name.strip().lower()
        value = value.strip()
        headers[name] = (headers[name] + ', ' + value) if name in headers else value
    return int(parts[1]), parts[2] if len(parts) > 2 else '', headers


def dechunk(body):
    """The payload of a chunked transfer-encoded body."""
    out = []
    pos = 0
    while True:
        end = body.find(b'\r\n', pos)
        if end < 0:
            raise ProbeError('malformed chunked body', 'not_http')
        try:
            size = int(body[pos:end].split(b';')[0].strip() or b'0', 16)
        except ValueError:
            raise ProbeError('malformed chunked body', 'not_http')
        pos = end + 2
        if size == 0:
            return b''.join(out)
        out.append(body[pos:pos + size])
        pos += size + 2


USER_AGENT = 'webstack.django_uwsgi.daphne_check'
OWN_HEADERS = ('host', 'connection', 'upgrade', 'sec-websocket-key', 'sec-websocket-version', 'content-length',
               'transfer-encoding')


def header_lines(defaults, headers):
    """Request header lines: ``defaults`` overridden by ``headers`` (names compared case-insensitively);
    Host and the headers the probe sets itself are left out of ``headers``."""
    merged = dict((name.lower(), (name, value)) for name, value in defaults.items())
    for name, value in (headers or {}).items():
        if name.lower() not in OWN_HEADERS:
            merged[name.lower()] = (name, value)
    return ''.join('%s: %s\r\n' % merged[key] for key in sorted(merged))


def decode_json(body):
    try:
        return json.loads(body.decode('utf-8'))
    except ValueError:
        return None


def http_get(target, path, host='localhost', timeout=5.0, headers=None):
    """dict(status, reason, headers, body (bytes), json) of GET ``path``."""
    deadline = _Deadline(timeout)
    sock = _connect(target, deadline)
    try:
        request = ('GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n%s\r\n'
                   % (path, host, header_lines({'Accept': 'application/json', 'User-Agent': USER_AGENT}, headers)))
        sock.sendall(request.encode('utf-8'))
        reader = _Reader(sock, deadline)
        head = reader.head()
        if head is None:
            raise ProbeError('connection closed without an answer', 'empty')
        status, reason, headers = parse_head(head)
        length = headers.get('content-length', '')
        if 'chunked' in headers.get('transfer-encoding', '').lower():
            body = dechunk(reader.to_eof(MAX_BODY))
        elif length.isdigit():
            if int(length) > MAX_BODY:
                raise ProbeError('the response body is %s bytes, more than %d' % (length, MAX_BODY), 'too_large')
            body = reader.exactly(int(length))
            if body is None:
                raise ProbeError('connection closed after %d of %s body bytes' % (len(reader.pending), length),
                                 'reset')
        else:
            body = reader.to_eof(MAX_BODY)
    except socket.timeout:
        raise ProbeError('no complete answer within %s s' % timeout, 'timeout')
    except (IOError, OSError) as exc:
        raise ProbeError('connection failed: %s' % (getattr(exc, 'strerror', None) or exc), 'reset')
    finally:
        sock.close()
    return {'status': status, 'reason': reason, 'headers': headers, 'body': body, 'json': decode_json(body)}


def accept_key(key):
    """Sec-WebSocket-Accept the server must answer for ``key``."""
    return base64.b64encode(hashlib.sha1(key.encode('ascii') + WEBSOCKET_GUID).digest()).decode('ascii')


def encode_frame(opcode, payload, mask=True, fin=True):
    """One websocket frame; client frames are masked (RFC 6455 5.3), server frames not."""
    first = (0x80 if fin else 0) | opcode
    length = len(payload)
    mask_bit = 0x80 if mask else 0
    if length < 126:
        head = struct.pack('!BB', first, mask_bit | length)
    elif length < 65536:
        head = struct.pack('!BBH', first, mask_bit | 126, length)
    else:
        head = struct.pack('!BBQ', first, mask_bit | 127, length)
    if not mask:
        return head + payload
    key = os.urandom(4)
    return head + key + bytes(bytearray(b ^ key[i % 4] for i, b in enumerate(bytearray(payload))))


def read_frame(reader):
    """(fin, opcode, payload) of the next frame, unmasked; None when the peer closed the connection."""
    head = reader.exactly(2)
    if head is None:
        return None
    first, second = bytearray(head)
    length = second & 0x7F
    if length == 126:
        ext = reader.exactly(2)
        length = struct.unpack('!H', ext)[0] if ext is not None else None
    elif length == 127:
        ext = reader.exactly(8)
        length = struct.unpack('!Q', ext)[0] if ext is not None else None
    if length is None:
        return None
    if length > MAX_FRAME:
        raise ProbeError('a websocket frame of %d bytes, more than %d' % (length, MAX_FRAME), 'too_large')
    key = None
    if second & 0x80:
        key = reader.exactly(4)
        if key is None:
            return None
    payload = reader.exactly(length) if length else b''
    if payload is None:
        return None
    if key is not None:
        key = bytearray(key)
        payload = bytes(bytearray(b ^ key[i % 4] for i, b in enumerate(bytearray(payload))))
    return bool(first & 0x80), first & 0x0F, payload


def close_code(payload):
    return struct.unpack('!H', payload[:2])[0] if len(payload) >= 2 else None


def _quote(data, limit=80):
    text = data.decode('utf-8', 'replace') if isinstance(data, bytes) else data
    return repr(text if len(text) <= limit else text[:limit] + '...')


def websocket_echo(target, path, host='localhost', timeout=5.0, message=None, headers=None):
    """Open a websocket on ``path``, send ``message`` (text) and expect it back.

    Returns dict(ok, status, sent, echoed, close_code). Raises ProbeError (with
    the same keys in ``details``) when the handshake, the echo or the connection fails.
    """
    if message is None:
        message = 'daphne_check %s' % base64.b16encode(os.urandom(6)).decode('ascii')
    details = {'ok': False, 'status': None, 'sent': message, 'echoed': None, 'close_code': None}
    deadline = _Deadline(timeout)
    sock = _connect(target, deadline)
    try:
        key = base64.b64encode(os.urandom(16)).decode('ascii')
        request = ('GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n'
                   'Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n%s\r\n'
                   % (path, host, key, header_lines({'Origin': 'http://%s' % host, 'User-Agent': USER_AGENT}, headers)))
        sock.sendall(request.encode('utf-8'))
        reader = _Reader(sock, deadline)
        head = reader.head()
        if head is None:
            raise ProbeError('connection closed without a handshake answer', 'empty', details)
        status, reason, headers = parse_head(head)
        details['status'] = status
        if status != 101:
            raise ProbeError('handshake answered %d %s (expected 101)' % (status, reason), 'status', details)
        if headers.get('sec-websocket-accept') != accept_key(key):
            raise ProbeError('handshake answered 101 with a wrong Sec-WebSocket-Accept %r'
                             % headers.get('sec-websocket-accept'), 'handshake', details)
        data = message.encode('utf-8')
        sock.sendall(encode_frame(OP_TEXT, data))
        received = None
        parts = []
        opcode = None
        while received is None:
            frame = read_frame(reader)
            if frame is None:
                raise ProbeError('connection closed without echo', 'no_echo', details)
            fin, op, payload = frame
            if op == OP_CLOSE:
                details['close_code'] = close_code(payload)
                raise ProbeError('connection closed without echo (close code %s)' % details['close_code'],
                                 'no_echo', details)
            if op == OP_PING:
                sock.sendall(encode_frame(OP_PONG, payload))
                continue
            if op == OP_PONG:
                continue
            if op != OP_CONTINUATION:
                opcode = op
            parts.append(payload)
            if fin:
                received = b''.join(parts)
        details['echoed'] = received.decode('utf-8', 'replace')
        if opcode != OP_TEXT:
            raise ProbeError('echo mismatch: a binary frame came back instead of the text sent', 'mismatch', details)
        if data not in received:
            raise ProbeError('echo mismatch: sent %s, got %s' % (_quote(data), _quote(received)), 'mismatch', details)
        details['ok'] = True
        sock.sendall(encode_frame(OP_CLOSE, struct.pack('!H', CLOSE_NORMAL)))
        # The server's close frame, when it sends one before the deadline; the
        # echo has passed already, so a missing close frame is not a failure.
        try:
            while True:
                frame = read_frame(reader)
                if frame is None:
                    break
                if frame[1] == OP_CLOSE:
                    details['close_code'] = close_code(frame[2])
                    break
        except (socket.timeout, IOError, OSError, ProbeError):
            pass
    except socket.timeout:
        raise ProbeError('no echo within %s s' % timeout if details['status'] == 101
                         else 'no handshake answer within %s s' % timeout, 'timeout', details)
    except (IOError, OSError) as exc:
        raise ProbeError('connection failed: %s' % (getattr(exc, 'strerror', None) or exc), 'reset', details)
    finally:
        sock.close()
    return details

# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Speak the uwsgi protocol to one uWSGI instance, as nginx's uwsgi_pass does.

A request is a 4-byte header (modifier1, little-endian u16 size of the vars
block, modifier2) followed by the vars block: each key and value as a
little-endian u16 length and its bytes. The instance answers with a raw HTTP
response (status line, headers, body) and closes the connection.

Used to ask one instance directly, bypassing any balancer in front of it (for
example the health gate of a rollout, which must know that *this* instance
serves the new release).
"""

from __future__ import absolute_import, division, print_function
__metaclass__ = type

import errno
import json
import socket
import struct
import threading
import time

# The Python/WSGI request handler of uWSGI.
MODIFIER1_WSGI = 0
MAX_VARS_SIZE = 65535


class UwsgiProtocolError(Exception):
    """The request could not be made or the answer is not HTTP; ``reason`` is a short key."""

    def __init__(self, message, reason):
        super(UwsgiProtocolError, self).__init__(message)
        self.reason = reason


def _to_bytes(value):
    if isinstance(value, bytes):
        return value
    return str(value).encode('utf-8')


def encode_vars(pairs):
    """The vars block of ``pairs`` (a list of (key, value)), u16-length-prefixed."""
    out = []
    for key, value in pairs:
        k, v = _to_bytes(key), _to_bytes(value)
        if len(k) > 0xFFFF or len(v) > 0xFFFF:
            raise UwsgiProtocolError('uwsgi var %s is longer than 65535 bytes' % key, 'too_large')
        out.append(struct.pack('<H', len(k)) + k + struct.pack('<H', len(v)) + v)
    return b''.join(out)


def build_packet(pairs, modifier1=MODIFIER1_WSGI, modifier2=0):
    """A complete uwsgi request packet (header plus vars block)."""
    block = encode_vars(pairs)
    if len(block) > MAX_VARS_SIZE:
        raise UwsgiProtocolError('the uwsgi vars block is %d bytes, more than the protocol allows (%d)'
                                 % (len(block), MAX_VARS_SIZE), 'too_large')
    return struct.pack('<BHB', modifier1, len(block), modifier2) + block


def decode_packet(data):
    """(modifier1, modifier2, [(key, value), ...]) of a request packet; for tests and fakes."""
    if len(data) < 4:
        raise ValueError('short uwsgi header')
    modifier1, size, modifier2 = struct.unpack('<BHB', data[:4])
    block = data[4:4 + size]
    if len(block) != size:
        raise ValueError('truncated uwsgi vars block')
    pairs = []
    pos = 0
    while pos < size:
        (klen,) = struct.unpack('<H', block[pos:pos + 2])
        key = block[pos + 2:pos + 2 + klen]
        pos += 2 + klen
        (vlen,) = struct.unpack('<H', block[pos:pos + 2])
        value = block[pos + 2:pos + 2 + vlen]
        pos += 2 + vlen
        pairs.append((key.decode('utf-8'), value.decode('utf-8')))
    return modifier1, modifier2, pairs


def request_vars(method='GET', path='/', query_string='', host='localhost', server_name=None,
                 server_port='80', protocol='HTTP/1.1', headers=None, extra_vars=None):
    """The CGI-style vars nginx would send for this request, in a stable order."""
    if '?' in path and not query_string:
        path, query_string = path.split('?', 1)
    uri = path + ('?' + query_string if query_string else '')
    pairs = [
        ('REQUEST_METHOD', method),
        ('REQUEST_URI', uri),
        ('PATH_INFO', path),
        ('QUERY_STRING', query_string),
        ('SERVER_NAME', server_name or host.split(':')[0]),
        ('SERVER_PORT', str(server_port)),
        ('HTTP_HOST', host),
        ('SERVER_PROTOCOL', protocol),
    ]
    for name, value in sorted((headers or {}).items()):
        key = 'HTTP_' + name.upper().replace('-', '_')
        if key == 'HTTP_HOST':
            continue
        if key in ('HTTP_CONTENT_TYPE', 'HTTP_CONTENT_LENGTH'):
            key = key[5:]
        pairs.append((key, value))
    for key, value in sorted((extra_vars or {}).items()):
        pairs.append((key, value))
    return pairs


def parse_address(address):
    """('unix', path) or ('tcp', (host, port)) for a socket as uWSGI's `socket` option spells it."""
    if not address:
        raise UwsgiProtocolError('empty socket address', 'bad_address')
    if address.startswith('unix:'):
        address = address[5:]
    if address.startswith('/') or address.startswith('@') or address.startswith('.'):
        return 'unix', address
    host, sep, port = address.rpartition(':')
    if not sep or not port.isdigit():
        raise UwsgiProtocolError('socket %r is neither a unix socket path nor host:port' % address, 'bad_address')
    host = host.strip('[]') or '127.0.0.1'
    if host in ('0.0.0.0', '*'):
        host = '127.0.0.1'
    return 'tcp', (host, int(port))


def _connect(address, timeout):
    kind, target = parse_address(address)
    if kind == 'unix':
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        if target.startswith('@'):
            target = '\0' + target[1:]
        try:
            sock.settimeout(timeout)
            sock.connect(target)
        except Exception:
            sock.close()
            raise
        return sock
    return socket.create_connection(target, timeout=timeout)


def exchange(address, packet, body=b'', timeout=5.0, max_bytes=4 * 1024 * 1024):
    """Send ``packet`` (and ``body``) to ``address`` and read the answer until EOF."""
    deadline = time.time() + timeout
    try:
        sock = _connect(address, timeout)
    except socket.timeout:
        raise UwsgiProtocolError('connecting to %s timed out after %ss' % (address, timeout), 'timeout')
    except (IOError, OSError) as exc:
        code = getattr(exc, 'errno', None)
        reason = {errno.ECONNREFUSED: 'refused', errno.ENOENT: 'missing',
                  errno.EACCES: 'permission'}.get(code, 'connect')
        hint = ''
        if code == errno.EACCES:
            hint = ' (the socket is not accessible to this user: run the task with become)'
        elif code in (errno.ECONNREFUSED, errno.ENOENT):
            hint = ' (is the uWSGI instance running?)'
        raise UwsgiProtocolError('cannot connect to %s: %s%s' % (address, getattr(exc, 'strerror', None) or exc, hint),
                                 reason)
    chunks = []
    size = 0
    try:
        sock.sendall(packet + body)
        while True:
            remaining = deadline - time.time()
            if remaining <= 0:
                raise socket.timeout()
            sock.settimeout(remaining)
            chunk = sock.recv(65536)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
            if size > max_bytes:
                raise UwsgiProtocolError('the answer of %s exceeds %d bytes' % (address, max_bytes), 'too_large')
    except socket.timeout:
        raise UwsgiProtocolError('no complete answer from %s within %ss (%d bytes received)'
                                 % (address, timeout, size), 'timeout')
    except (IOError, OSError) as exc:
        if not chunks:
            raise UwsgiProtocolError('connection to %s failed before any answer: %s'
                                     % (address, getattr(exc, 'strerror', None) or exc), 'reset')
    finally:
        sock.close()
    return b''.join(chunks)


def _dechunk(body):
    out = []
    pos = 0
    while True:
        end = body.find(b'\r\n', pos)
        if end < 0:
            raise ValueError('bad chunk size line')
        size = int(body[pos:end].split(b';')[0].strip() or b'0', 16)
        pos = end + 2
        if size == 0:
            return b''.join(out)
        out.append(body[pos:pos + size])
        pos += size + 2


def parse_response(raw):
    """dict(status, reason, protocol, headers, body) of a raw HTTP response."""
    if not raw:
        raise UwsgiProtocolError('the instance closed the connection without answering (empty response): '
                                 'it may have no application loaded or be shutting down', 'empty')
    head, sep, body = raw.partition(b'\r\n\r\n')
    if not sep:
        head, sep, body = raw.partition(b'\n\n')
    lines = head.decode('iso-8859-1').replace('\r\n', '\n').split('\n')
    status_line = lines[0]
    parts = status_line.split(' ', 2)
    if len(parts) < 2 or not parts[0].startswith('HTTP/') or not parts[1].isdigit():
        raise UwsgiProtocolError('the answer does not start with an HTTP status line: %r' % raw[:80], 'not_http')
    headers = {}
    for line in lines[1:]:
        if ':' not in line:
            continue
        name, value = line.split(':', 1)
        name = name.strip()
        value = value.strip()
        headers[name] = (headers[name] + ', ' + value) if name in headers else value
    lowered = dict((k.lower(), v) for k, v in headers.items())
    if 'chunked' in lowered.get('transfer-encoding', '').lower():
        try:
            body = _dechunk(body)
        except ValueError:
            raise UwsgiProtocolError('malformed chunked body', 'not_http')
    return {
        'protocol': parts[0],
        'status': int(parts[1]),
        'reason': parts[2] if len(parts) > 2 else '',
        'headers': headers,
        'body': body,
    }


def body_text(body):
    return body.decode('utf-8', 'replace')


def body_json(body, headers):
    """The decoded JSON body, or None when it is not JSON."""
    ctype = dict((k.lower(), v) for k, v in headers.items()).get('content-type', '')
    text = body_text(body).strip()
    if 'json' not in ctype.lower() and not (text.startswith('{') or text.startswith('[')):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def uwsgi_request(address, method='GET', path='/', query_string='', host='localhost', server_port='80',
                  headers=None, extra_vars=None, body=b'', timeout=5.0):
    """Make one request to a uWSGI socket; the parsed response plus ``elapsed`` seconds."""
    started = time.time()
    pairs = request_vars(method=method, path=path, query_string=query_string, host=host,
                         server_port=server_port, headers=headers, extra_vars=extra_vars)
    if body:
        pairs.append(('CONTENT_LENGTH', str(len(body))))
    raw = exchange(address, build_packet(pairs), body=body, timeout=timeout)
    response = parse_response(raw)
    if method == 'HEAD':
        # nginx drops the body of a HEAD answer; uWSGI itself sends what the app returned.
        response['body'] = b''
    response['elapsed'] = round(time.time() - started, 4)
    response['vars'] = dict(pairs)
    return response


# The probe of the collection's WSGI entry point: answered by the entry point
# itself (after the app imported) only when the uwsgi var WEBSTACK_PROBE is 1.
PROBE_PATH = '/__webstack__/probe'
PROBE_VARS = {'WEBSTACK_PROBE': '1'}


def probe_answer(response):
    """The probe's JSON document of a response, or None when it is not the probe's answer."""
    doc = body_json(response['body'], response['headers'])
    if response['status'] != 200 or not isinstance(doc, dict) or 'release' not in doc:
        return None
    return doc


def probe_workers(address, workers, host='localhost', timeout=10.0, request_timeout=5.0, clock=time.time):
    """Probe answers until every worker id 1..``workers`` answered, or ``timeout`` seconds passed.

    Probes go in concurrent bursts (one idle worker would otherwise take every
    request in turn). Returns dict(answers=[doc, ...], workers={id: doc},
    missing=[ids], attempts=n). Raises UwsgiProtocolError when no request of a
    burst got any answer, or an answer is not the probe's (reason no_probe).
    """
    wanted = set(range(1, workers + 1))
    burst = min(max(2 * workers, 4), 32)
    deadline = clock() + timeout
    answers, by_worker = [], {}
    attempts = 0
    while True:
        results = [None] * burst

        def one(slot):
            try:
                results[slot] = uwsgi_request(address, path=PROBE_PATH, host=host, extra_vars=PROBE_VARS,
                                              timeout=request_timeout)
            except UwsgiProtocolError as exc:
                results[slot] = exc
        threads = [threading.Thread(target=one, args=(slot,)) for slot in range(burst)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        attempts += burst
        errors = [r for r in results if isinstance(r, UwsgiProtocolError)]
        if len(errors) == burst:
            raise errors[0]
        for response in results:
            if isinstance(response, UwsgiProtocolError):
                continue
            doc = probe_answer(response)
            if doc is None:
                text = body_text(response['body'])
                raise UwsgiProtocolError(
                    'the probe answered %d %s without its JSON (release, instance, worker, pid): the instance does '
                    'not run the collection\'s WSGI entry point (answer: %r)'
                    % (response['status'], response['reason'], text[:80]), 'no_probe')
            answers.append(doc)
            if doc.get('worker') is not None:
                by_worker.setdefault(doc['worker'], doc)
        missing = sorted(wanted - set(by_worker))
        if not missing or clock() >= deadline:
            return {'answers': answers, 'workers': by_worker, 'missing': missing, 'attempts': attempts}
        time.sleep(0.05)

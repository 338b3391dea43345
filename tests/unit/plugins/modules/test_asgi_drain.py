# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The websocket drain of the daphne role's ASGI entry point, driven with fake
ASGI servers and clients: open sessions are closed with 1012 after the drain
(the app told with a websocket.disconnect of code 1012), through daphne's
protocol when the server is daphne (autobahn's sendClose refuses 1012), new
handshakes are refused once the sessions are being closed, the process is
stopped when the clients have answered, and a session that ends by itself
ends the drain early."""

from __future__ import absolute_import, division, print_function

import asyncio
import functools
import os
import time
import types

ASGI_ENTRY = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', '..', '..', '..',
                          'roles', 'daphne', 'templates', 'asgi_entry.py.j2')


def entry():
    with open(ASGI_ENTRY, encoding='utf-8') as handle:
        text = ''.join(handle.read().splitlines(True)[1:])
    module = types.ModuleType('asgi_entry_drain')
    exec(compile(text, ASGI_ENTRY, 'exec'), module.__dict__)  # noqa: S102 - the file under test
    return module


class EchoApp(object):
    """A project's websocket consumer: accepts, echoes, records what it was told."""

    def __init__(self):
        self.disconnects = []
        self.accepted = 0

    async def __call__(self, scope, receive, send):
        while True:
            message = await receive()
            if message['type'] == 'websocket.connect':
                await send({'type': 'websocket.accept'})
                self.accepted += 1
            elif message['type'] == 'websocket.receive':
                await send({'type': 'websocket.send', 'text': message['text']})
            elif message['type'] == 'websocket.disconnect':
                self.disconnects.append(message.get('code'))
                # What a consumer may still send once it is told: must go nowhere.
                await send({'type': 'websocket.send', 'text': 'late'})
                return


class Client(object):
    """One websocket connection as the server sees it: a queue towards the app,
    the messages the app sent; answers a close like a client would."""

    def __init__(self, answer_close=True):
        self.queue = asyncio.Queue()
        self.sent = []
        self.answer_close = answer_close

    async def send(self, message):
        self.sent.append(message)
        if message['type'] == 'websocket.close' and self.answer_close:
            self.queue.put_nowait({'type': 'websocket.disconnect', 'code': message.get('code', 1000)})


class FakeProtocol(object):
    """daphne's websocket protocol (autobahn): the drain's close frame goes here."""

    def __init__(self, client):
        self.client = client
        self.frames = []

    def sendCloseFrame(self, code=None, reasonUtf8=None, isReply=False):  # noqa: N802 - autobahn's name
        self.frames.append((code, isReply))
        self.client.queue.put_nowait({'type': 'websocket.disconnect', 'code': code})


def scope(path='/ws/echo/'):
    return {'type': 'websocket', 'path': path, 'headers': [(b'x-forwarded-for', b'10.0.0.1')]}


async def connect(app, client, text='m1'):
    task = asyncio.ensure_future(app(scope(), client.queue.get, client.send))
    client.queue.put_nowait({'type': 'websocket.connect'})
    client.queue.put_nowait({'type': 'websocket.receive', 'text': text})
    for dummy in range(100):
        if any(m.get('text') == text for m in client.sent):
            break
        await asyncio.sleep(0.01)
    return task


def run(coro):
    return asyncio.run(asyncio.wait_for(coro, 10))


def test_open_sessions_closed_with_1012_after_the_drain_then_stop():
    module = entry()
    events = []
    drain = module.Drain(0.3, close_listeners=lambda: events.append('listeners closed'),
                         stop=lambda: events.append('stop'), close_wait=2)
    app = EchoApp()
    wrapped = drain.wrap(app)
    clients = [Client() for dummy in range(3)]

    async def scenario():
        tasks = [await connect(wrapped, c, 'hello %d' % i) for i, c in enumerate(clients)]
        assert len(drain.sessions) == 3
        started = time.monotonic()
        await drain.begin()
        await asyncio.gather(*tasks)
        return time.monotonic() - started

    elapsed = run(scenario())
    assert events == ['listeners closed', 'stop']
    assert 0.3 <= elapsed < 1.5
    for i, client in enumerate(clients):
        assert client.sent == [{'type': 'websocket.accept'}, {'type': 'websocket.send', 'text': 'hello %d' % i},
                               {'type': 'websocket.close', 'code': 1012}]
    assert app.disconnects == [1012, 1012, 1012]
    assert drain.closed == 3 and not drain.sessions


def test_daphne_protocol_gets_the_1012_close_frame():
    module = entry()
    stopped = []
    drain = module.Drain(0, stop=lambda: stopped.append(True))
    app = EchoApp()
    client = Client()
    protocol = FakeProtocol(client)

    async def handle_reply(proto, message):
        client.sent.append(message)

    async def scenario():
        task = asyncio.ensure_future(drain.wrap(app)(scope(), client.queue.get, functools.partial(handle_reply, protocol)))
        client.queue.put_nowait({'type': 'websocket.connect'})
        client.queue.put_nowait({'type': 'websocket.receive', 'text': 'x'})
        while len(client.sent) < 2:
            await asyncio.sleep(0.01)
        await drain.begin()
        await task

    run(scenario())
    assert protocol.frames == [(1012, False)]
    assert client.sent == [{'type': 'websocket.accept'}, {'type': 'websocket.send', 'text': 'x'}]
    assert app.disconnects == [1012] and stopped == [True]


def test_handshake_refused_once_the_sessions_are_closed():
    module = entry()
    drain = module.Drain(0, stop=lambda: None)
    app = EchoApp()
    late = Client()

    async def scenario():
        await drain.begin()
        assert drain.closing
        task = asyncio.ensure_future(drain.wrap(app)(scope(), late.queue.get, late.send))
        late.queue.put_nowait({'type': 'websocket.connect'})
        await task

    run(scenario())
    # A close before accept: daphne answers the handshake 403, nothing reaches the client.
    assert late.sent == [{'type': 'websocket.close'}]
    assert app.disconnects == [1012] and not drain.sessions


def test_keep_listening_accepts_during_the_drain_and_closes_with_the_others():
    module = entry()
    drain = module.Drain(0.3, close_listeners=None, stop=lambda: None)
    app = EchoApp()
    wrapped = drain.wrap(app)
    first, during = Client(), Client()

    async def scenario():
        tasks = [await connect(wrapped, first)]
        finished = drain.begin()
        tasks.append(await connect(wrapped, during, 'during'))
        await finished
        await asyncio.gather(*tasks)

    run(scenario())
    assert during.sent[0] == {'type': 'websocket.accept'}
    assert first.sent[-1] == during.sent[-1] == {'type': 'websocket.close', 'code': 1012}
    assert app.accepted == 2 and app.disconnects == [1012, 1012]


def test_a_session_that_ends_by_itself_ends_the_drain_early():
    module = entry()
    stopped = []
    drain = module.Drain(5, stop=lambda: stopped.append(time.monotonic()))
    app = EchoApp()
    client = Client()

    async def scenario():
        task = await connect(drain.wrap(app), client)
        started = time.monotonic()
        finished = drain.begin()
        await asyncio.sleep(0.2)
        client.queue.put_nowait({'type': 'websocket.disconnect', 'code': 1000})
        await asyncio.gather(task, finished)
        return started

    started = run(scenario())
    assert stopped and stopped[0] - started < 1.5
    assert app.disconnects == [1000] and drain.closed == 0
    assert {'type': 'websocket.close', 'code': 1012} not in client.sent


def test_stop_waits_for_close_answers_but_not_forever():
    module = entry()
    stopped = []
    drain = module.Drain(0, stop=lambda: stopped.append(time.monotonic()), close_wait=0.4)
    app = EchoApp()
    silent = Client(answer_close=False)

    async def scenario():
        task = await connect(drain.wrap(app), silent)
        started = time.monotonic()
        await drain.begin()
        await task
        return started

    started = run(scenario())
    assert 0.4 <= stopped[0] - started < 1.5
    assert silent.sent[-1] == {'type': 'websocket.close', 'code': 1012}


def test_second_begin_is_the_same_drain_and_http_passes_through():
    module = entry()
    calls = []
    drain = module.Drain(0, close_listeners=lambda: calls.append('closed'), stop=lambda: calls.append('stop'))

    async def http_app(scope_, receive, send):
        await send({'type': 'http.response.start', 'status': 200, 'headers': []})

    sent = []

    async def send(message):
        sent.append(message)

    async def scenario():
        first = drain.begin()
        assert drain.begin() is first
        await first
        await drain.wrap(http_app)({'type': 'http', 'path': '/'}, None, send)

    run(scenario())
    assert calls == ['closed', 'stop'] and sent[0]['status'] == 200


def test_outside_daphne_the_app_is_unchanged(monkeypatch):
    module = entry()
    monkeypatch.delitem(module.sys.modules, 'twisted.internet.reactor', raising=False)
    app = EchoApp()
    assert module.drained(app, 2) is app


def recording_drain(seconds):
    """A Drain whose socket hooks append what they did to the returned list."""
    calls = []
    drain = entry().Drain(seconds, close_listeners=lambda: calls.append('drain closed'), stop=lambda: calls.append('stop'),
                          listeners=(lambda: calls.append('closed'), lambda: calls.append('reopened')))
    return drain, calls


def test_refuse_keeps_the_sessions_and_accept_listens_again():
    drain, calls = recording_drain(0.2)
    app = EchoApp()
    client = Client()

    async def scenario():
        task = await connect(drain.wrap(app), client)
        assert drain.refuse() and not drain.refuse()
        # The open session goes on: it still echoes.
        client.queue.put_nowait({'type': 'websocket.receive', 'text': 'after refuse'})
        for dummy in range(100):
            if {'type': 'websocket.send', 'text': 'after refuse'} in client.sent:
                break
            await asyncio.sleep(0.01)
        assert drain.accept() and not drain.accept()
        client.queue.put_nowait({'type': 'websocket.disconnect', 'code': 1000})
        await task

    run(scenario())
    assert calls == ['closed', 'reopened']
    assert {'type': 'websocket.send', 'text': 'after refuse'} in client.sent
    assert {'type': 'websocket.close', 'code': 1012} not in client.sent and app.disconnects == [1000]


def test_drain_after_refuse_keeps_the_sockets_closed_and_accept_is_ignored():
    drain, calls = recording_drain(0)
    app = EchoApp()
    client = Client()

    async def scenario():
        task = await connect(drain.wrap(app), client)
        drain.refuse()
        finished = drain.begin()
        assert not drain.accept() and not drain.refuse()
        await finished
        await task

    run(scenario())
    # Closed once (by refuse), never reopened, then the drain's 1012 and stop.
    assert calls == ['closed', 'stop']
    assert client.sent[-1] == {'type': 'websocket.close', 'code': 1012} and app.disconnects == [1012]


def test_keep_listening_mode_still_refuses_on_request():
    module = entry()
    calls = []
    drain = module.Drain(0, close_listeners=None, stop=lambda: calls.append('stop'),
                         listeners=(lambda: calls.append('closed'), lambda: calls.append('reopened')))

    async def scenario():
        assert drain.refuse()
        await drain.begin()

    run(scenario())
    assert calls == ['closed', 'stop']


def test_signals_drive_drain_refuse_and_accept(monkeypatch):
    module = entry()
    calls, handlers = [], {}
    hooks = (lambda: calls.append('closed'), lambda: calls.append('reopened'), lambda: calls.append('stop'),
             handlers.__setitem__)
    monkeypatch.setattr(module, '_twisted_hooks', lambda: hooks)
    app = EchoApp()
    wrapped = module.drained(app, 0, listen='close', close_wait=0)
    assert wrapped is not app
    assert set(handlers) == {module.signal.SIGTERM, module.signal.SIGUSR1, module.signal.SIGUSR2}

    async def scenario():
        handlers[module.signal.SIGUSR1](module.signal.SIGUSR1, None)
        await asyncio.sleep(0.05)
        handlers[module.signal.SIGUSR2](module.signal.SIGUSR2, None)
        await asyncio.sleep(0.05)
        handlers[module.signal.SIGUSR1](module.signal.SIGUSR1, None)
        await asyncio.sleep(0.05)
        handlers[module.signal.SIGTERM](module.signal.SIGTERM, None)
        for dummy in range(100):
            if 'stop' in calls:
                break
            await asyncio.sleep(0.01)

    run(scenario())
    # The drain after a refuse does not close the sockets a second time.
    assert calls == ['closed', 'reopened', 'closed', 'stop']


class FakeDeferred(object):
    def __init__(self):
        self.callbacks = []

    def addCallback(self, fn, *args):  # noqa: N802 - Twisted's name
        self.callbacks.append(('ok', fn, args))

    def addErrback(self, fn, *args):  # noqa: N802 - Twisted's name
        self.callbacks.append(('err', fn, args))

    def fire(self):
        for kind, fn, args in self.callbacks:
            if kind == 'ok':
                fn(None, *args)


class FakePort(object):
    listening = True

    def __init__(self):
        self.deferred = None

    def stopListening(self):  # noqa: N802 - Twisted's name
        self.listening = False
        self.deferred = FakeDeferred()
        return self.deferred

    def startListening(self):  # noqa: N802 - Twisted's name
        self.listening = True


def test_twisted_hooks_close_and_reopen_the_listening_ports(monkeypatch):
    module = entry()
    port, connection = FakePort(), object()
    reactor = types.SimpleNamespace(getReaders=lambda: [r for r in (port, connection) if r is not port or port.listening],
                                    running=True, callWhenRunning=lambda *args: None)
    interfaces = types.SimpleNamespace(IListeningPort=types.SimpleNamespace(providedBy=lambda r: r is port))
    internet = types.ModuleType('twisted.internet')
    internet.reactor = reactor
    monkeypatch.setitem(module.sys.modules, 'twisted', types.ModuleType('twisted'))
    monkeypatch.setitem(module.sys.modules, 'twisted.internet', internet)
    monkeypatch.setitem(module.sys.modules, 'twisted.internet.reactor', reactor)
    monkeypatch.setitem(module.sys.modules, 'twisted.internet.interfaces', interfaces)
    close, reopen, dummy_stop, dummy_install = module._twisted_hooks()
    close()
    assert not port.listening
    reopen()
    # Listening again only once the old socket is closed (the deferred fired).
    assert not port.listening
    port.deferred.fire()
    assert port.listening

"""The legacy project's entry points: what the hand-started uWSGI and daphne serve.

Every answer says "legacy", so that a test can tell it from the stack's.
"""


def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"legacy uwsgi\n"]


async def asgi(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"legacy daphne\n"})

"""Helpers for the fastrouter scenario's behaviour tests (run on the
controller; the test host shares the machine's network, so nginx is on
127.0.0.1)."""

import http.client
import json
import time

NGINX_PORT = 18480
KEY = "app.test"
STATS = "/run/fastrouter/private/stats.sock"
SUBSCRIPTION_SERVER = "127.0.0.1:18481"
TOLERANCE = 5
FREQ = 2


def request(path="/healthz", host=KEY, timeout=10):
    """GET through nginx with the given Host; return (status, body, seconds)."""
    start = time.monotonic()
    conn = http.client.HTTPConnection("127.0.0.1", NGINX_PORT, timeout=timeout)
    try:
        conn.request("GET", path, headers={"Host": host})
        resp = conn.getresponse()
        return resp.status, resp.read(), time.monotonic() - start
    finally:
        conn.close()


def instance(host=KEY):
    """The instance that answered /healthz (None when the status is not 200)."""
    status, body, _ = request(host=host)
    if status != 200:
        return None
    return json.loads(body)["instance"]


def stats(host):
    """The fastrouter stats document, read on the test host as root."""
    script = (
        "import socket,sys;s=socket.socket(socket.AF_UNIX);s.connect(sys.argv[1]);d=b''\n"
        "while True:\n c=s.recv(65536)\n if not c: break\n d+=c\n"
        "sys.stdout.write(d.decode())"
    )
    out = host.run("python3 -c %s %s", script, STATS)
    assert out.rc == 0, out.stderr
    return json.loads(out.stdout)


def nodes(doc, key=KEY):
    """Names of the live nodes subscribed under key."""
    for sub in doc.get("subscriptions", []):
        if sub["key"] == key:
            return {n["name"] for n in sub["nodes"] if not n["death_mark"]}
    return set()

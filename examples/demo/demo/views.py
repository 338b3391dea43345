"""Views used by the health checks, the balance tests, the rollout tests and the soak."""

import os
import time

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET

from demo.models import Message

try:  # importable only inside a uWSGI worker
    import uwsgi
except ImportError:  # daphne, manage.py, tests
    uwsgi = None

# Upper bound of ?ms= for /cpu and /slow: a typo must not pin a worker for minutes.
MAX_MS = 10000
# /hold?kb=N keeps N KiB for the life of the worker process, on purpose: a
# leak that uWSGI's reload-on-rss must catch (benchmarks/soak.sh). Bounds: a
# request holds at most MAX_HOLD_KB, a process at most MAX_HELD_KB in all.
MAX_HOLD_KB = 4096
MAX_HELD_KB = 262144
_HELD = []


def _read_release():
    try:
        return (settings.BASE_DIR / "RELEASE").read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


# Read once: a process keeps serving the code of the release it started from,
# even after the `current` symlink has moved on.
RELEASE = _read_release()


def _text(value):
    if isinstance(value, (list, tuple)):
        value = value[-1] if value else None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    return value.strip() if isinstance(value, str) else value


def _uwsgi_instance():
    """The uWSGI instance serving this request, or None outside uWSGI."""
    if uwsgi is None:
        return None
    name = os.environ.get("WEBSTACK_UWSGI_INSTANCE")
    if name:
        return name
    return _text(uwsgi.opt.get("procname-prefix")) or None


def _server(request):
    if uwsgi is not None:
        return "uwsgi"
    # Django's ASGIRequest keeps the ASGI scope; WSGIRequest has none.
    return "asgi" if hasattr(request, "scope") else "wsgi"


def _identity(request):
    return {
        "release": RELEASE,
        "pid": os.getpid(),
        "instance": _uwsgi_instance(),
        "worker": uwsgi.worker_id() if uwsgi is not None else None,
        "server": _server(request),
    }


def _ms(request):
    raw = request.GET.get("ms", "0")
    try:
        value = int(raw)
    except ValueError:
        return None
    if value < 0 or value > MAX_MS:
        return None
    return value


def _bad_ms():
    return JsonResponse({"error": f"ms must be an integer between 0 and {MAX_MS}"}, status=400)


@require_GET
def index(request):
    return render(request, "demo/index.html", _identity(request))


@require_GET
def healthz(request):
    return JsonResponse({"status": "ok", **_identity(request)})


@require_GET
def cpu(request):
    ms = _ms(request)
    if ms is None:
        return _bad_ms()
    deadline = time.perf_counter() + ms / 1000
    rounds = 0
    while time.perf_counter() < deadline:
        sum(i * i for i in range(200))
        rounds += 1
    return JsonResponse({"ms": ms, "rounds": rounds, **_identity(request)})


@require_GET
def slow(request):
    ms = _ms(request)
    if ms is None:
        return _bad_ms()
    time.sleep(ms / 1000)
    return JsonResponse({"ms": ms, **_identity(request)})


@require_GET
def hold(request):
    try:
        kb = int(request.GET.get("kb", "0"))
    except ValueError:
        kb = -1
    if kb < 0 or kb > MAX_HOLD_KB:
        return JsonResponse({"error": f"kb must be an integer between 0 and {MAX_HOLD_KB}"}, status=400)
    held = sum(len(block) for block in _HELD) // 1024
    if held + kb > MAX_HELD_KB:
        return JsonResponse({"error": f"this process already holds {held} KiB (at most {MAX_HELD_KB})"}, status=507)
    # Filled, not zeroed: the pages are touched, so they count in the RSS.
    _HELD.append(b"\x01" * (kb * 1024))
    return JsonResponse({"kb": kb, "held_kb": held + kb, **_identity(request)})


@require_GET
def db(request):
    """One query on the shared database (no write): a database outage shows here."""
    return JsonResponse({"rows": Message.objects.count(), "vendor": connection.vendor, **_identity(request)})

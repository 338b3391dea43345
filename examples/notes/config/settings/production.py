"""Settings of a deployed notes host, read from the NOTES_* environment.

NOTES_SECRET_KEY      required
NOTES_ALLOWED_HOSTS   comma-separated host names, required
NOTES_DEBUG           "true"/"false", default false
NOTES_DB_NAME         the PostgreSQL database every app host shares; with it:
NOTES_DB_HOST         its host (empty: the local socket), NOTES_DB_PORT (5432),
NOTES_DB_USER         NOTES_DB_PASSWORD
NOTES_DATABASE        without NOTES_DB_NAME (a laptop): path of the sqlite file,
                      default notes.sqlite3 in the project
NOTES_REDIS_URL       redis://:PASSWORD@HOST:PORT/DB, the channel layer of the
                      live rooms across daphne processes and hosts; unset: the
                      in-memory layer of base.py (one process)
"""

import os

from django.core.exceptions import ImproperlyConfigured

from config.settings.base import *  # noqa: F401,F403  pylint: disable=wildcard-import,unused-wildcard-import
from config.settings.base import BASE_DIR


def _required(name):
    value = os.environ.get(name, "").strip()
    if not value:
        raise ImproperlyConfigured(f"{name} must be set")
    return value


DEBUG = os.environ.get("NOTES_DEBUG", "false").strip().lower() in ("1", "true", "yes", "on")
SECRET_KEY = _required("NOTES_SECRET_KEY")
ALLOWED_HOSTS = [h.strip() for h in _required("NOTES_ALLOWED_HOSTS").split(",") if h.strip()]

if os.environ.get("NOTES_DB_NAME", "").strip():
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": os.environ["NOTES_DB_NAME"].strip(),
            "HOST": os.environ.get("NOTES_DB_HOST", "").strip(),
            "PORT": os.environ.get("NOTES_DB_PORT", "").strip() or "5432",
            "USER": os.environ.get("NOTES_DB_USER", "").strip(),
            "PASSWORD": os.environ.get("NOTES_DB_PASSWORD", ""),
            # Kept across requests, checked before reuse (a restarted server
            # costs a reconnect, not an error).
            "CONN_MAX_AGE": 60,
            "CONN_HEALTH_CHECKS": True,
        }
    }
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("NOTES_DATABASE") or str(BASE_DIR / "notes.sqlite3"),
            "OPTIONS": {"timeout": 20},
        }
    }

if os.environ.get("NOTES_REDIS_URL", "").strip():
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": [os.environ["NOTES_REDIS_URL"].strip()]},
        }
    }

# Hashed static names, so that a page and its stylesheet always match.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"},
}

# Served over plain HTTP behind a front that terminates (and redirects to) TLS:
# Django does not redirect itself, everything else is hardened.
SECURE_SSL_REDIRECT = False
SILENCED_SYSTEM_CHECKS = ["security.W008"]
SECURE_HSTS_SECONDS = 31536000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
X_FRAME_OPTIONS = "DENY"

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": "INFO"},
}

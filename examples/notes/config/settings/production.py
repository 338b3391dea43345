"""Settings of a deployed notes host, read from the NOTES_* environment.

NOTES_SECRET_KEY      required
NOTES_ALLOWED_HOSTS   comma-separated host names, required
NOTES_DEBUG           "true"/"false", default false
NOTES_DATABASE        path of the sqlite file, default notes.sqlite3 in the
                      project (set it outside the release to keep the data)
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

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("NOTES_DATABASE") or str(BASE_DIR / "notes.sqlite3"),
        "OPTIONS": {"timeout": 20},
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

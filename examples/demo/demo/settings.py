"""Settings of the demo project, read from environment variables only.

The django_app role writes them to the app's env file (KEY=VALUE lines) and
every process (manage.py, uWSGI, daphne) starts through the envexec wrapper
that exports them. Nothing secret lives in this file.

DJANGO_SECRET_KEY          required unless DJANGO_DEBUG is on
DJANGO_DEBUG               "true"/"false", default false
DJANGO_ALLOWED_HOSTS       comma-separated host names
DJANGO_CSRF_TRUSTED_ORIGINS comma-separated origins (https://example.com)
DJANGO_STATIC_ROOT         where collectstatic writes (served by nginx at /static/)
DATABASE_URL               postgres://USER:PASSWORD@HOST:PORT/NAME (parts percent-quoted),
                           the database every app host shares; unset: sqlite (a laptop)
DEMO_DB_PATH               the sqlite file when DATABASE_URL is unset
DEMO_DB_CONN_MAX_AGE       seconds a database connection is kept, default 60
REDIS_URL                  redis://:PASSWORD@HOST:PORT/DB, the channel layer every daphne
                           process shares; unset: the in-memory layer (one process only)
DJANGO_SECURE_*            HTTPS hardening, see below; secure by default
DJANGO_SILENCED_SYSTEM_CHECKS comma-separated check ids, default none
"""

import os
from pathlib import Path
from urllib.parse import unquote, urlsplit

from django.core.exceptions import ImproperlyConfigured

# The release directory (it holds manage.py and the RELEASE file).
BASE_DIR = Path(__file__).resolve().parent.parent


def env_bool(name, default):
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return default
    value = value.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {value!r}")


def env_int(name, default):
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError as exc:
        raise ImproperlyConfigured(f"{name} must be an integer, not {value!r}") from exc


def env_list(name, default=()):
    value = os.environ.get(name)
    if value is None:
        return list(default)
    return [item.strip() for item in value.split(",") if item.strip()]


DEBUG = env_bool("DJANGO_DEBUG", False)

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is off")
    SECRET_KEY = "django-insecure-demo-development-only"

ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.staticfiles",
    "channels",
    "demo",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "demo.urls"
WSGI_APPLICATION = "demo.wsgi.application"
ASGI_APPLICATION = "demo.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
            ],
        },
    },
]


def database_from_url(url, conn_max_age):
    """DATABASES['default'] from postgres://USER:PASSWORD@HOST:PORT/NAME (or sqlite:////ABSOLUTE/PATH)."""
    parts = urlsplit(url)
    if parts.scheme == "sqlite":
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": unquote(parts.path[1:]), "OPTIONS": {"timeout": 20}}
    if parts.scheme not in ("postgres", "postgresql", "pgsql"):
        raise ImproperlyConfigured(f"DATABASE_URL must start with postgres:// or sqlite://, not {parts.scheme!r}://")
    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise ImproperlyConfigured("DATABASE_URL names no database (postgres://USER:PASSWORD@HOST:PORT/NAME)")
    try:
        port = parts.port
    except ValueError as exc:
        raise ImproperlyConfigured(f"DATABASE_URL has an invalid port: {exc}") from exc
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": name,
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        # A host in brackets (IPv6) comes back without them; a quoted path is a socket directory.
        "HOST": unquote(parts.hostname or ""),
        "PORT": str(port or ""),
        # Connections are kept across requests and checked before reuse, so a
        # restarted PostgreSQL costs one reconnect per worker, not an error.
        "CONN_MAX_AGE": conn_max_age,
        "CONN_HEALTH_CHECKS": True,
    }


# PostgreSQL shared by every app host (DATABASE_URL, exported by the
# django_app role from the data tier's connection); without it, one sqlite
# file outside the release directories, so that every release (and every
# process of one host) sees the same data.
_database_url = os.environ.get("DATABASE_URL", "").strip()
DATABASES = {
    "default": (
        database_from_url(_database_url, env_int("DEMO_DB_CONN_MAX_AGE", 60))
        if _database_url
        else {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": os.environ.get("DEMO_DB_PATH") or str(BASE_DIR / "db.sqlite3"),
            "OPTIONS": {"timeout": 20},
        }
    )
}

# The channel layer carries the chat rooms' group messages between daphne
# processes and hosts: Redis (REDIS_URL) when deployed; the in-memory layer,
# which reaches only the clients of one process, on a laptop.
_redis_url = os.environ.get("REDIS_URL", "").strip()
CHANNEL_LAYERS = {
    "default": (
        {"BACKEND": "channels_redis.core.RedisChannelLayer", "CONFIG": {"hosts": [_redis_url]}}
        if _redis_url
        else {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    )
}

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = os.environ.get("DJANGO_STATIC_ROOT") or str(BASE_DIR / "static_collected")
# Hashed names: the files of the previous release stay next to the new ones,
# so pages served by not yet reloaded workers keep working during a rollout.
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "django.contrib.staticfiles.storage.ManifestStaticFilesStorage"
        )
    },
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- HTTPS hardening (manage.py check --deploy) -------------------------------
# Secure by default. Behind a front that terminates TLS and redirects to https
# itself, set DJANGO_SECURE_SSL_REDIRECT=false (and list security.W008 in
# DJANGO_SILENCED_SYSTEM_CHECKS to record that choice), and set
# DJANGO_SECURE_PROXY_SSL_HEADER=HTTP_X_FORWARDED_PROTO=https when the front
# sends that header.
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", True)
_proxy_header = os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER", "").strip()
if _proxy_header:
    _name, _sep, _value = _proxy_header.partition("=")
    if not _sep or not _name or not _value:
        raise ImproperlyConfigured("DJANGO_SECURE_PROXY_SSL_HEADER must look like HTTP_X_FORWARDED_PROTO=https")
    SECURE_PROXY_SSL_HEADER = (_name, _value)
SECURE_HSTS_SECONDS = env_int("DJANGO_SECURE_HSTS_SECONDS", 31536000)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", True)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", True)
X_FRAME_OPTIONS = "DENY"
SILENCED_SYSTEM_CHECKS = env_list("DJANGO_SILENCED_SYSTEM_CHECKS")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "INFO")},
}

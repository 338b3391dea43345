"""WSGI entry point of the notes project: config.web:wsgi."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.production")

wsgi = get_wsgi_application()

"""WSGI entry point of the plain project: plain.wsgi:application."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "plain.settings")

application = get_wsgi_application()

# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Jinja tests of the stack's input rules, each stated here once.

The roles' tasks/validate.yml use them (``x is webstack.django_uwsgi.release_id``);
every test is documented in the YAML file of its name next to this one.
A value that is not a string makes every test false.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re

# A release directory name: safe in paths, shell words and supervisor lines.
RELEASE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")
# The app's name names a system user and group (at most 31 characters).
APP_NAME = re.compile(r"[a-z_][a-z0-9_-]{0,30}")
# A variable name of the env file, exported by a POSIX shell.
ENV_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# A fastrouter subscription key (a Host name); empty matches requests without a Host.
SUBSCRIPTION_KEY = re.compile(r"[A-Za-z0-9._:\[\]-]*")
# The private IPv4 networks (RFC 1918) besides loopback.
PRIVATE_NETWORKS = tuple(ipaddress.IPv4Network(n) for n in ("127.0.0.0/8", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
PRIVATE_NAMES = ("localhost", "[::1]")
TMP_DIRS = ("/tmp", "/var/tmp")


def _full(pattern, value):
    return isinstance(value, str) and pattern.fullmatch(value) is not None


def release_id(value):
    """A release id: 1 to 64 letters, digits, ``.``, ``_`` or ``-``."""
    return _full(RELEASE_ID, value)


def app_name(value):
    """An app (user, group) name: lower case letters, digits, ``_``, ``-``; first a letter or ``_``; at most 31."""
    return _full(APP_NAME, value)


def env_key(value):
    """A shell variable name: letters, digits and ``_``, not starting with a digit."""
    return _full(ENV_KEY, value)


def subscription_key(value):
    """A fastrouter subscription key: letters, digits and ``. _ : [ ] -`` (may be empty)."""
    return _full(SUBSCRIPTION_KEY, value)


def private_host(value):
    """A host a socket may bind: localhost, [::1], or a loopback or private (RFC 1918) IPv4 address."""
    if not isinstance(value, str):
        return False
    if value in PRIVATE_NAMES:
        return True
    try:
        address = ipaddress.IPv4Address(value)
    except ValueError:
        return False
    return any(address in network for network in PRIVATE_NETWORKS)


def under_tmp(value):
    """A path in /tmp or /var/tmp (or one of them), once ``.`` and ``..`` are resolved."""
    if not isinstance(value, str) or not value.startswith("/"):
        return False
    path = posixpath.normpath("/" + value.lstrip("/"))
    return any(path == tmp or path.startswith(tmp + "/") for tmp in TMP_DIRS)


class TestModule:
    """The stack's input rules as Jinja tests."""

    def tests(self):
        return {
            "release_id": release_id,
            "app_name": app_name,
            "env_key": env_key,
            "subscription_key": subscription_key,
            "private_host": private_host,
            "under_tmp": under_tmp,
        }

# -*- coding: utf-8 -*-
# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Fixtures shared by the unit and the integration tests."""

from __future__ import absolute_import, division, print_function

import socket

import pytest


def pick_free_port():
    """A TCP port on 127.0.0.1 that nothing listens on at this moment."""
    sock = socket.socket()
    try:
        sock.bind(('127.0.0.1', 0))
        return sock.getsockname()[1]
    finally:
        sock.close()


@pytest.fixture(scope='session')
def free_port():
    """free_port() -> a TCP port on 127.0.0.1 that nothing listens on at this moment."""
    return pick_free_port

# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""Filters over the stack model (see the stack lookup)."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError

from ansible_collections.webstack.django_uwsgi.plugins.plugin_utils.stack_model import (
    StackModelError,
    front_servers,
)


def _front_servers(models, front_host, share_loopback=False):
    try:
        return front_servers(list(models), str(front_host), bool(share_loopback))
    except StackModelError as exc:
        raise AnsibleFilterError(f"webstack.django_uwsgi.front_servers: {exc}") from None


class FilterModule:

    def filters(self):
        return {"front_servers": _front_servers}

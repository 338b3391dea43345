# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later

from __future__ import annotations

DOCUMENTATION = r"""
name: stack
author:
  - webstack.django_uwsgi maintainers (@webstack)
version_added: 0.1.0
short_description: "The shape of an app host's stack (uWSGI instances, daphne processes, paths)"
description:
  - Returns, for each app host named (the current host when none is), the one model of its stack that every role of
    the collection and the rollout use, that is each uWSGI instance merged over C(uwsgi_instance_defaults) with its socket,
    stats socket, chain-reload trigger, master FIFO, ini, log and supervisor program, and each daphne process with its
    supervisor program and socket or TCP address.
  - The current host's variables are read as the task sees them (play, role and extra vars included); another host's
    through C(hostvars). A variable that is unset takes the value of the owning role's C(defaults/main.yml), so a
    default is written in one place.
  - Variables read are C(uwsgi_instances), C(uwsgi_instance_defaults), C(uwsgi_run_dir), C(uwsgi_log_dir),
    C(uwsgi_conf_dir), C(daphne_processes), C(daphne_spare), C(daphne_bind), C(daphne_host), C(daphne_port_base), C(supervisor_conf_dir),
    C(django_app_name), C(django_app_root), C(django_app_user), C(django_app_envexec), C(django_app_settings_module),
    C(django_app_wsgi_module), C(django_app_asgi_application), C(django_app_allowed_hosts),
    C(django_app_source_exclude), C(nginx_front_backend) and C(ansible_host).
options:
  _terms:
    description:
      - Inventory names of app hosts. None means the current host.
    type: list
    elements: str
    required: false
notes:
  - Use C(query) (or C(wantlist=true)) for several hosts; with one host C(lookup) returns its model.
"""

EXAMPLES = r"""
- name: Show the sockets of this host's uWSGI instances
  ansible.builtin.debug:
    msg: "{{ lookup('webstack.django_uwsgi.stack').instances | map(attribute='socket') | list }}"

- name: Every app host's model, as a front host sees them
  ansible.builtin.set_fact:
    app_models: "{{ query('webstack.django_uwsgi.stack', *groups['django_uwsgi_app']) }}"
"""

RETURN = r"""
_raw:
  description: One model per host.
  type: list
  elements: dict
  contains:
    host:
      description: Inventory name of the host.
      type: str
    app_root:
      description: Root of the app (C(django_app_root), else C(/srv/<django_app_name>)).
      type: str
    current:
      description: The C(current) release symlink.
      type: str
    releases_dir:
      description: The directory of the releases.
      type: str
    front_backend:
      description: The front of the stack, C(nginx_upstream) or C(fastrouter) (C(nginx_front_backend)).
      type: str
    app:
      description:
        - The app as the rollout runs it, C(name), C(user), C(envexec), C(settings_module), C(wsgi_module),
          C(asgi_application), C(allowed_hosts) and C(source_exclude).
      type: dict
    supervisorctl:
      description: The supervisorctl command line (argv) that talks to the collection's supervisord.
      type: list
      elements: str
    instances:
      description:
        - The uWSGI instances, in order; every setting of C(uwsgi_instance_defaults) merged in, plus C(socket),
          C(socket_is_unix), C(run_dir), C(stats), C(master_fifo), C(chain_reload_file), C(ini), C(log), C(program),
          C(program_file) and C(processes) (int).
      type: list
      elements: dict
    daphne:
      description:
        - The daphne processes, with C(index), C(name) (C(daphne<i>)), C(program) (C(daphne:daphne<i>)), C(bind),
          C(socket) (unix) or C(host) and C(port) (tcp), C(address) (C(unix:<path>) or C(host:port)), and C(spare)
          (true for the extra slot of C(daphne_spare), which supervisord does not start).
      type: list
      elements: dict
"""

from ansible.errors import AnsibleLookupError
from ansible.plugins.lookup import LookupBase

from ansible_collections.webstack.django_uwsgi.plugins.plugin_utils.stack_model import (
    DERIVED_VARIABLES,
    MODEL_VARIABLES,
    StackModelError,
    build,
)


class LookupModule(LookupBase):

    def run(self, terms, variables=None, **kwargs):
        self.set_options(var_options=variables, direct=kwargs)
        variables = variables or {}
        current = variables.get("inventory_hostname", "")
        hosts = list(terms) or [current]
        names = [n for group in MODEL_VARIABLES.values() for n in group] + list(DERIVED_VARIABLES)
        out = []
        for host in hosts:
            if host == current:
                # Variables of the task's own context are not templated yet.
                source = {n: self._templar.template(variables[n]) for n in names if n in variables}
            else:
                try:
                    hostvars = variables["hostvars"][host]
                except KeyError:
                    raise AnsibleLookupError(f"webstack.django_uwsgi.stack: unknown host {host!r}") from None
                source = {}
                for name in names:
                    try:
                        source[name] = hostvars[name]
                    except KeyError:
                        continue
            try:
                out.append(build(source, host=host))
            except StackModelError as exc:
                raise AnsibleLookupError(f"webstack.django_uwsgi.stack: host {host}: {exc}") from None
        return out

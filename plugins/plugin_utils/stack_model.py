# Copyright (c) webstack.django_uwsgi maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
# SPDX-License-Identifier: GPL-3.0-or-later
"""The shape of one app host's stack, computed once from its variables.

Every role and the rollout ask this module, never their own Jinja, where an
instance's socket, stats socket, chain-reload trigger, log, ini and supervisor
program are, and where each daphne process listens. The inputs are the
inventory variables of the uwsgi, daphne, supervisor and django_app roles; an
unset variable takes the value of that role's ``defaults/main.yml`` (read from
the collection itself, so a default is written once).
"""

from __future__ import annotations

import os
import re

import yaml

# Where the collection's roles are, seen from plugins/plugin_utils/.
_ROLES_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "roles")

# Fixed paths of the stack (not variables of any role).
SUPERVISOR_CONFIG = "/etc/supervisor/supervisord.conf"
DAPHNE_RUN_DIR = "/run/daphne"
DAPHNE_GROUP = "daphne"

# The role variables the model reads, with the role whose defaults hold them.
MODEL_VARIABLES = {
    "uwsgi": ("uwsgi_instances", "uwsgi_instance_defaults", "uwsgi_run_dir", "uwsgi_log_dir", "uwsgi_conf_dir"),
    "daphne": ("daphne_processes", "daphne_spare", "daphne_bind", "daphne_host", "daphne_port_base"),
    "supervisor": ("supervisor_conf_dir",),
    "nginx_front": ("nginx_front_backend",),
    "django_app": ("django_app_name", "django_app_settings_module", "django_app_wsgi_module",
                   "django_app_asgi_application", "django_app_allowed_hosts", "django_app_source_exclude"),
}
# Read when set, else derived from the values above (their defaults are templates).
DERIVED_VARIABLES = ("django_app_root", "django_app_user", "django_app_envexec", "ansible_host",
                     "daphne_asgi_application")

_LOOPBACK = re.compile(r"^(127\.|localhost$|\[::1\]$)")
_WILDCARD_HOSTS = ("", "0.0.0.0", "*", "::", "[::]")


class StackModelError(ValueError):
    """Input the model cannot be built from; the message names the variable."""


_defaults_cache = {}


def role_defaults(roles_dir=None):
    """The literal defaults of every variable in MODEL_VARIABLES, from the roles' defaults/main.yml."""
    roles_dir = os.path.abspath(roles_dir or _ROLES_DIR)
    if roles_dir not in _defaults_cache:
        out = {}
        for role, names in MODEL_VARIABLES.items():
            path = os.path.join(roles_dir, role, "defaults", "main.yml")
            with open(path, encoding="utf-8") as handle:
                data = yaml.safe_load(handle) or {}
            for name in names:
                if name not in data:
                    raise StackModelError(f"{path} has no default for {name}")
                if isinstance(data[name], str) and "{{" in data[name]:
                    raise StackModelError(f"{path}: the default of {name} must be a literal value")
                out[name] = data[name]
        _defaults_cache[roles_dir] = out
    return dict(_defaults_cache[roles_dir])


def _bool(value, name):
    """A boolean input (true/false, or their usual strings from the command line)."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "yes", "on", "1"):
        return True
    if text in ("false", "no", "off", "0"):
        return False
    raise StackModelError(f"{name} must be a boolean, got {value!r}")


def _int(value, name):
    if isinstance(value, bool):
        raise StackModelError(f"{name} must be an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        raise StackModelError(f"{name} must be an integer, got {value!r}") from None


def _split_tcp(socket):
    """'host:port' -> (host, port); '[::1]:8000' keeps its brackets."""
    host, sep, port = socket.rpartition(":")
    if not sep or not port.isdigit():
        raise StackModelError(f"not a host:port socket: {socket!r}")
    return host, int(port)


def instances(values):
    """The uWSGI instances: each entry of uwsgi_instances merged over uwsgi_instance_defaults, paths filled in."""
    items = values["uwsgi_instances"]
    if not isinstance(items, list):
        raise StackModelError(f"uwsgi_instances must be a list of dicts, got {type(items).__name__}")
    base = values["uwsgi_instance_defaults"]
    if not isinstance(base, dict):
        raise StackModelError(f"uwsgi_instance_defaults must be a dict, got {type(base).__name__}")
    run_dir = str(values["uwsgi_run_dir"]).rstrip("/")
    log_dir = str(values["uwsgi_log_dir"]).rstrip("/")
    conf_dir = str(values["uwsgi_conf_dir"]).rstrip("/")
    programs_dir = str(values["supervisor_conf_dir"]).rstrip("/")
    out = []
    for index, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("name"):
            raise StackModelError(f"uwsgi_instances[{index}] must be a dict with a name")
        merged = dict(base)
        merged.update(item)
        name = str(merged["name"])
        own_dir = f"{run_dir}/{name}"
        socket = str(merged.get("socket") or "") or f"{own_dir}/uwsgi.sock"
        merged.update({
            "name": name,
            "socket": socket,
            "socket_is_unix": socket.startswith("/"),
            "run_dir": own_dir,
            "stats": f"{own_dir}/stats.sock",
            "master_fifo": f"{own_dir}/master.fifo",
            "chain_reload_file": f"{own_dir}/chain-reload",
            "ini": f"{conf_dir}/{name}.ini",
            "log": f"{log_dir}/{name}.log",
            "program": f"uwsgi-{name}",
            "program_file": f"{programs_dir}/uwsgi-{name}.conf",
            "processes": _int(merged.get("processes", 1), f"uwsgi_instances[{index}].processes"),
            # Seconds; 0 (or unset) for none. The front derives its retry window from it.
            "harakiri": _int(merged.get("harakiri") or 0, f"uwsgi_instances[{index}].harakiri"),
        })
        out.append(merged)
    return out


def asgi_application(variables, values):
    """The ASGI application daphne serves: daphne_asgi_application when set, else django_app_asgi_application.

    Empty means the project has no ASGI application, so the host runs no daphne.
    """
    value = variables.get("daphne_asgi_application")
    if value is None:
        value = values["django_app_asgi_application"]
    return str(value or "").strip()


def daphne_processes(values, asgi=True):
    """The daphne slots of the host: supervisor program, socket or TCP address of each (none without asgi).

    daphne_processes slots run; with daphne_spare one more (the last, marked
    spare) is a stopped slot supervisord does not start (autostart false):
    the rollout starts it on the new release before it takes an old process
    out, and the front lists every slot (a stopped one refuses the connect).
    """
    count = _int(values["daphne_processes"], "daphne_processes")
    spare = _bool(values.get("daphne_spare", False), "daphne_spare")
    if not asgi:
        return []
    bind = values["daphne_bind"]
    if bind not in ("unix", "tcp"):
        raise StackModelError(f"daphne_bind must be unix or tcp, got {bind!r}")
    port_base = _int(values["daphne_port_base"], "daphne_port_base")
    out = []
    for index in range(count + (1 if spare else 0)):
        name = f"daphne{index}"
        entry = {"index": index, "name": name, "program": f"{DAPHNE_GROUP}:{name}", "bind": bind,
                 "spare": index >= count}
        if bind == "unix":
            path = f"{DAPHNE_RUN_DIR}/{name}.sock"
            entry.update({"socket": path, "host": "", "port": 0, "address": f"unix:{path}"})
        else:
            host = str(values["daphne_host"])
            entry.update({"socket": "", "host": host, "port": port_base + index,
                          "address": f"{host}:{port_base + index}"})
        out.append(entry)
    return out


def build(variables, host="", defaults=None):
    """The model of one app host from its variables (a mapping; unset names take the roles' defaults)."""
    values = role_defaults() if defaults is None else dict(defaults)
    for names in MODEL_VARIABLES.values():
        for name in names:
            if name in variables and variables[name] is not None:
                values[name] = variables[name]
    app_name = str(values["django_app_name"])
    app_root = str(variables.get("django_app_root") or f"/srv/{app_name}").rstrip("/")
    asgi = asgi_application(variables, values)
    allowed_hosts = values["django_app_allowed_hosts"]
    if not isinstance(allowed_hosts, list):
        raise StackModelError(f"django_app_allowed_hosts must be a list, got {type(allowed_hosts).__name__}")
    return {
        "host": host,
        "ansible_host": str(variables.get("ansible_host") or host),
        "app_root": app_root,
        "current": f"{app_root}/current",
        "releases_dir": f"{app_root}/releases",
        "app": {
            "name": app_name,
            "user": str(variables.get("django_app_user") or app_name),
            "envexec": str(variables.get("django_app_envexec") or f"{app_root}/bin/envexec"),
            "settings_module": str(values["django_app_settings_module"]),
            "wsgi_module": str(values["django_app_wsgi_module"]),
            "asgi_application": asgi,
            "allowed_hosts": [str(h) for h in allowed_hosts],
            "source_exclude": [str(x) for x in values["django_app_source_exclude"] or []],
        },
        "supervisor_config": SUPERVISOR_CONFIG,
        "supervisorctl": ["supervisorctl", "-c", SUPERVISOR_CONFIG],
        "supervisor_conf_dir": str(values["supervisor_conf_dir"]).rstrip("/"),
        "front_backend": str(values["nginx_front_backend"]),
        "daphne_run_dir": DAPHNE_RUN_DIR,
        "daphne_group": DAPHNE_GROUP,
        "instances": instances(values),
        "daphne": daphne_processes(values, bool(asgi)),
    }


def next_upstream_timeout(harakiri):
    """nginx's uwsgi_next_upstream_timeout for instances whose smallest harakiri is `harakiri` seconds.

    nginx passes a request whose upstream failed to the next server only while
    less than this time has gone by since its first attempt. uWSGI sets a
    worker's harakiri deadline in whole seconds (now + harakiri, from
    time(NULL)) and kills it once its whole-second clock reaches that, so a
    harakiri'd request has run more than harakiri - 1 s (measured: the kill
    second minus the start second was harakiri - 1 for 1 of 530 kills, harakiri
    or more for the others). Half a second below that, for nginx's cached
    clock: a harakiri'd request is answered 502 instead of being run, and
    killed, again on another worker, while a refused connect or a reset of a
    shorter request (an instance or host going down) is still passed on.
    Below 3 s, a quarter of harakiri (no value is both then). "0" (no limit)
    when no instance has a harakiri.
    """
    seconds = _int(harakiri, "harakiri")
    if seconds <= 0:
        return "0"
    return "%dms" % max(seconds * 1000 - 1500, seconds * 250)


def front_servers(models, front_host, share_loopback=False):
    """Where a front host reaches every uWSGI instance and daphne process of the app hosts.

    Returns {"uwsgi": [...], "daphne": [...], "harakiri": N,
    "next_upstream_timeout": T}: each server entry {host, name, instance,
    address, harakiri, error}, error empty when the front can reach the
    address, else a sentence naming the app host, the instance and what to
    change; N the smallest harakiri (s) of the instances that have one (0:
    none has), T the uwsgi_next_upstream_timeout it implies
    (next_upstream_timeout()).
    """
    uwsgi, daphne = [], []
    for model in models:
        host = model["host"]
        here = host == front_host
        for inst in model["instances"]:
            harakiri = inst.get("harakiri") or 0
            sock = inst["socket"]
            if inst["socket_is_unix"]:
                address = f"unix:{sock}"
                error = "" if here else (
                    f"app host {host}, instance {inst['name']}: unix socket {sock} cannot be reached from "
                    f"{front_host}; give the instance a TCP socket (private address)")
            else:
                addr_host, port = _split_tcp(sock)
                if addr_host in _WILDCARD_HOSTS:
                    addr_host = model["ansible_host"]
                address = f"{addr_host}:{port}"
                error = "" if here or share_loopback or not _LOOPBACK.match(addr_host) else (
                    f"app host {host}, instance {inst['name']}: TCP socket {sock} is on loopback, unreachable from "
                    f"{front_host} (unless the hosts share one loopback: nginx_front_app_hosts_share_loopback)")
            uwsgi.append({"host": host, "name": inst["name"], "instance": inst["name"], "address": address,
                          "harakiri": harakiri, "error": error})
        for proc in model["daphne"]:
            if proc["bind"] == "unix":
                address = proc["address"]
                error = "" if here else (
                    f"app host {host}: daphne unix socket {proc['socket']} cannot be reached from {front_host}; "
                    "set daphne_bind: tcp")
            else:
                addr_host = proc["host"]
                if addr_host in _WILDCARD_HOSTS:
                    addr_host = model["ansible_host"]
                address = f"{addr_host}:{proc['port']}"
                error = ""
            daphne.append({"host": host, "name": proc["name"], "address": address, "error": error})
    harakiri = min((s["harakiri"] for s in uwsgi if s["harakiri"] > 0), default=0)
    return {"uwsgi": uwsgi, "daphne": daphne, "harakiri": harakiri,
            "next_upstream_timeout": next_upstream_timeout(harakiri)}

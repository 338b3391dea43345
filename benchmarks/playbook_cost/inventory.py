#!/usr/bin/env python3
"""Inventory and container list of one playbook-cost run: a front and N app hosts.

The containers share the machine's network (molecule/shared/create.yml), so
every listening socket is on 127.0.0.1 and each app host gets its own ports
in the 187xx range:

    18780            nginx on the front (pcost-front)
    18710 + i        uWSGI instance web1 of app host i (pcost-app<i>)
    18730 + i        the daphne process of app host i

Each app host is kept light: one uWSGI instance of 2 processes and one daphne
process, so that 4 app hosts fit a 2-core machine. With --uwsgi-wheel each
release's virtualenv also gets `wheel` (django_app_pip_packages), so that the
pip of Debian 12 (23.0, which without `wheel` installs uWSGI the legacy
`setup.py install` way and caches nothing) builds a uWSGI wheel that the pip
cache keeps: uWSGI is then compiled once per machine instead of once per host
and release.

    inventory.py --hosts N --out DIR [--uwsgi-wheel]   writes DIR/inventory.yml and DIR/platforms.json
    inventory.py --warm --out DIR [--uwsgi-wheel]      one app host (pcost-warm) that fills the pip cache
    inventory.py --names N                             prints every container name up to N app hosts
"""
import argparse
import json
import os
import sys

PREFIX = "pcost"
FRONT = f"{PREFIX}-front"
FRONT_PORT = 18780
UWSGI_PORT_BASE = 18710
DAPHNE_PORT_BASE = 18730
MAX_HOSTS = 9  # ports 18711-18719 and 18731-18739
ADDRESS = "127.0.0.1"
WARM = f"{PREFIX}-warm"
WHEEL = "wheel==0.45.1"
# The demo project of this checkout (the django_app role has no default project).
DEMO = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "examples", "demo")


def app_name(i):
    return f"{PREFIX}-app{i}"


def container_names(hosts):
    return [FRONT] + [app_name(i) for i in range(1, hosts + 1)]


def platforms(hosts, names=None):
    """Extra vars for molecule/shared/{create,destroy}.yml."""
    return {
        "molecule_yml": {"platforms": [{"name": name} for name in (names or container_names(hosts))]},
        "molecule_scenario_name": "playbook_cost",
    }


def inventory(hosts, uwsgi_wheel=False):
    if not 1 <= hosts <= MAX_HOSTS:
        raise ValueError(f"number of app hosts must be 1..{MAX_HOSTS}, got {hosts}")
    connection = {
        "ansible_connection": "community.docker.docker",
        "ansible_python_interpreter": "/usr/bin/python3",
    }
    # Connection details as host variables (not group vars of all), so that the
    # tasks the roles delegate to localhost stay local (as tools/demo.sh does).
    app_hosts = {}
    for i in range(1, hosts + 1):
        app_hosts[app_name(i)] = dict(
            connection,
            uwsgi_instances=[{"name": "web1", "processes": 2, "socket": f"{ADDRESS}:{UWSGI_PORT_BASE + i}"}],
            daphne_port_base=DAPHNE_PORT_BASE + i,
        )
    common = {}
    if uwsgi_wheel:
        common["django_app_pip_packages"] = [WHEEL]
    return {
        "all": {
            "vars": {
                **common,
                "django_app_name": "demo",
                "django_app_source": DEMO,
                # The demo has websockets (channels): daphne and the websocket location.
                "django_app_asgi_application": "demo.asgi:application",
                "django_app_allowed_hosts": ["localhost", ADDRESS],
                "nginx_front_listen_port": FRONT_PORT,
                "nginx_front_listen_addresses": [ADDRESS],
                # The hosts share one loopback (host network): the front may use
                # the app hosts' 127.0.0.1 sockets.
                "nginx_front_app_hosts_share_loopback": True,
                "daphne_processes": 1,
                "daphne_bind": "tcp",
                "daphne_host": ADDRESS,
            },
            "children": {
                "django_uwsgi_front": {"hosts": {FRONT: dict(connection)}},
                "django_uwsgi_app": {"hosts": app_hosts},
            },
        }
    }


def warm_inventory(uwsgi_wheel=False):
    """One app host, no front: what --tags of the build steps need to fill the pip cache."""
    inv = inventory(1, uwsgi_wheel)
    host = inv["all"]["children"]["django_uwsgi_app"]["hosts"].pop(app_name(1))
    inv["all"]["children"]["django_uwsgi_app"]["hosts"][WARM] = host
    inv["all"]["children"]["django_uwsgi_front"]["hosts"] = {}
    return inv


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", type=int, help="number of app hosts")
    parser.add_argument("--out", help="directory for inventory.yml and platforms.json")
    parser.add_argument("--names", type=int, metavar="N", help="print the container names up to N app hosts")
    parser.add_argument("--warm", action="store_true", help="the one-host inventory that fills the pip cache")
    parser.add_argument("--uwsgi-wheel", action="store_true", help="add `wheel` to each release's virtualenv")
    args = parser.parse_args(argv)
    if args.names is not None:
        print(" ".join(container_names(args.names)))
        return 0
    if (args.hosts is None and not args.warm) or not args.out:
        parser.error("--hosts (or --warm) and --out are required")
    os.makedirs(args.out, exist_ok=True)
    if args.warm:
        inv, plat = warm_inventory(args.uwsgi_wheel), platforms(1, [WARM])
    else:
        inv, plat = inventory(args.hosts, args.uwsgi_wheel), platforms(args.hosts)
    # JSON is YAML: no PyYAML needed to write the inventory.
    with open(os.path.join(args.out, "inventory.yml"), "w", encoding="utf-8") as handle:
        json.dump(inv, handle, indent=1)
        handle.write("\n")
    with open(os.path.join(args.out, "platforms.json"), "w", encoding="utf-8") as handle:
        json.dump(plat, handle, indent=1)
        handle.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

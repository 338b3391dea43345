"""Unit tests of the pure parts of benchmarks/playbook_cost/{inventory,report}.py."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "playbook_cost"))

import inventory  # noqa: E402
import report  # noqa: E402


def test_inventory_gives_each_app_host_its_own_loopback_ports():
    inv = inventory.inventory(4)["all"]
    apps = inv["children"]["django_uwsgi_app"]["hosts"]
    assert list(apps) == ["pcost-app1", "pcost-app2", "pcost-app3", "pcost-app4"]
    sockets = [h["uwsgi_instances"][0]["socket"] for h in apps.values()]
    daphne = [h["daphne_port_base"] for h in apps.values()]
    assert sockets == ["127.0.0.1:18711", "127.0.0.1:18712", "127.0.0.1:18713", "127.0.0.1:18714"]
    assert daphne == [18731, 18732, 18733, 18734]
    assert inv["vars"]["nginx_front_listen_port"] == 18780
    assert inv["vars"]["nginx_front_app_hosts_share_loopback"] is True
    # Connection as host variables, never as group vars of all (delegated tasks stay local).
    assert "ansible_connection" not in inv["vars"]
    assert all(h["ansible_connection"] == "community.docker.docker" for h in apps.values())


@pytest.mark.parametrize("hosts", [0, 10])
def test_inventory_refuses_counts_outside_the_port_plan(hosts):
    with pytest.raises(ValueError):
        inventory.inventory(hosts)


def test_growth_per_added_host_and_ratio():
    results = {n: {"site-first": {"rc": 0, "wall_seconds": s}} for n, s in (("1", 100.0), ("2", 130.0), ("4", 190.0))}
    g = report.growth(results)["site-first"]
    assert g["seconds_per_added_host"] == 30.0
    assert g["ratio_4_to_1_hosts"] == 1.9
    assert [s["per_host"] for s in g["steps"]] == [30.0, 30.0]


def test_growth_ignores_failed_runs():
    results = {"1": {"rollout": {"rc": 0, "wall_seconds": 50.0}}, "2": {"rollout": {"rc": 2, "wall_seconds": 5.0}}}
    g = report.growth(results)["rollout"]
    assert g["seconds"] == {"1": 50.0} and g["seconds_per_added_host"] is None

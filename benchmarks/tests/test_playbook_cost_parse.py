"""Unit tests of benchmarks/playbook_cost/parse.py (pure parsing of ansible-playbook output)."""
import os
import sys

import pytest

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "playbook_cost"))

import parse  # noqa: E402

LOG = """\
PLAY [Deploy the Django application hosts] *************************************

TASK [Gathering Facts] *********************************************************
Sunday 22 November 2026  14:20:01 +0000 (0:00:00.020)       0:00:00.020 *******
ok: [pcost-app1]

TASK [webstack.django_uwsgi.django_app : Install the system packages] **********
Sunday 22 November 2026  14:20:04 +0000 (0:00:03.110)       0:00:03.130 *******
changed: [pcost-app1]

RUNNING HANDLER [webstack.django_uwsgi.supervisor : Reload supervisor] *********
changed: [pcost-app1]

TASK [Summarise the host] ******************************************************
ok: [pcost-app1] => {
    "msg": "pcost-app1: release 3f2a9c -> bench-v2 in 41.7 s; web1: 2 workers; daphne: 1 process(es) restarted one at a time"
}

PLAY RECAP *********************************************************************
pcost-app1                 : ok=61   changed=35   unreachable=0    failed=0    skipped=12   rescued=0    ignored=0   
pcost-front                : ok=20   changed=9    unreachable=0    failed=1    skipped=3    rescued=1    ignored=0   

TASKS RECAP ********************************************************************
Sunday 22 November 2026  14:24:40 +0000 (0:00:00.531)       0:04:39.150 *******
===============================================================================
webstack.django_uwsgi.django_app : Install the pinned requirements into the release's virtualenv -------- 95.12s
webstack.django_uwsgi.django_app : Install the system packages ------------------------------------------ 60.40s
Gathering Facts ----------------------------------------------------------------------------------------- 3.11s
Summarise the host --------------------------------------------------------------------------------------- 0.02s
"""


def test_recap_reads_every_host_and_counter():
    hosts = parse.parse_recap(LOG)
    assert hosts["pcost-app1"] == {"ok": 61, "changed": 35, "unreachable": 0, "failed": 0,
                                   "skipped": 12, "rescued": 0, "ignored": 0}
    assert hosts["pcost-front"]["failed"] == 1 and hosts["pcost-front"]["rescued"] == 1


def test_recap_totals_do_not_count_changed_twice():
    totals = parse.recap_totals(parse.parse_recap(LOG))
    assert totals["ok"] == 81 and totals["changed"] == 44 and totals["skipped"] == 15
    # Ansible's ok already counts each changed result.
    assert totals["task_results"] == 81 + 15


def test_recap_missing_and_colored():
    assert parse.parse_recap("no recap here") == {}
    colored = ("PLAY RECAP ***\n\x1b[0;33mpcost-app1\x1b[0m                 : \x1b[0;32mok=3   \x1b[0m"
               "\x1b[0;33mchanged=1   \x1b[0m unreachable=0    failed=0    skipped=0    rescued=0    ignored=0\n")
    assert parse.parse_recap(colored)["pcost-app1"]["changed"] == 1


def test_profile_tasks_rows_in_printed_order():
    rows = parse.parse_profile_tasks(LOG)
    assert rows == [
        ("webstack.django_uwsgi.django_app : Install the pinned requirements into the release's virtualenv", 95.12),
        ("webstack.django_uwsgi.django_app : Install the system packages", 60.40),
        ("Gathering Facts", 3.11),
        ("Summarise the host", 0.02),
    ]


@pytest.mark.parametrize("line, expected", [
    # Name longer than the terminal: no dash padding before the time.
    ("A very long task name that does not fit  1234.56s", ("A very long task name that does not fit", 1234.56)),
    # Time field of 9 characters fills its column: one space, no dash.
    ("Short name ------------------------------------------- 123.45s", ("Short name", 123.45)),
    ("Name with - a dash inside ---------- 0.00s", ("Name with - a dash inside", 0.0)),
])
def test_profile_tasks_line_shapes(line, expected):
    text = "TASKS RECAP ****\nSunday 22 November 2026 (0:00:01.000)  0:00:09.000 ****\n====\n" + line + "\n"
    assert parse.parse_profile_tasks(text) == [expected]


def test_profile_tasks_absent():
    assert parse.parse_profile_tasks("PLAY RECAP ****\n") == []


def test_task_banners_and_groups():
    assert parse.count_task_lines(LOG) == {"task_banners": 3, "handler_banners": 1}
    assert parse.task_group("Gathering Facts") == "facts"
    assert parse.task_group("webstack.django_uwsgi.nginx_front : Write the site") == "nginx_front"
    assert parse.task_group("uwsgi : Write the ini file of each instance") == "uwsgi"
    assert parse.task_group("Chain-reload the instance") == "playbook"


def test_merge_by_name_sums_included_copies():
    rows = [("Chain-reload the instance - web1", 7.5), ("Install", 9.0), ("Chain-reload the instance - web1", 3.0)]
    assert parse.merge_by_name(rows) == [("Chain-reload the instance - web1", 10.5, 2), ("Install", 9.0, 1)]


def test_rollout_host_summary():
    assert parse.parse_rollout_hosts(LOG) == {"pcost-app1": 41.7}


def test_summarize_one_run():
    summary = parse.summarize(LOG, wall_seconds=170.0, rc=0, top=2)
    assert summary["tasks"] == {"task_banners": 3, "handler_banners": 1, "profiled_tasks": 4}
    assert summary["totals"]["changed"] == 44
    assert [t["seconds"] for t in summary["top_tasks"]] == [95.12, 60.40]
    assert summary["seconds_by_group"] == {"django_app": 155.52, "facts": 3.11, "playbook": 0.02}
    assert summary["profiled_seconds"] == 158.65
    assert summary["untimed_seconds"] == pytest.approx(11.35)
    assert summary["rollout_host_seconds"] == {"pcost-app1": 41.7}

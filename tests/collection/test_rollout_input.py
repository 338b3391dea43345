"""rollout.yml refuses bad input in its first play, on the controller, naming
the variable, before any host is touched: the app host of the inventory
below is the controller itself (local connection), and no play after the
first one may start."""

import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def inventory(tmp_path_factory):
    path = tmp_path_factory.mktemp("rollout-input") / "inventory.ini"
    path.write_text("[django_uwsgi_app]\n"
                    f"app1 ansible_connection=local ansible_python_interpreter={sys.executable}\n")
    return path


@pytest.mark.parametrize("extra, wanted", [
    ({"rollout_serial": "0"}, r"rollout_serial must be a number of hosts >= 1 or a percentage 1%-100% (got 0)"),
    ({"rollout_backup_dir": "backups"}, 'rollout_backup_dir empty or an absolute path without whitespace or .. (got "backups")'),
    ({"rollout_backup_dir": "/var/backups/../etc"}, '(got "/var/backups/../etc")'),
    ({"rollout_backup_keep": "0"}, "rollout_backup_keep >= 1 (got 0)"),
    # a backup needs the PostgreSQL host: this inventory has no django_uwsgi_data
    ({"rollout_backup_dir": "/var/backups/app"},
     "rollout_backup_dir is set (/var/backups/app) but the inventory group django_uwsgi_data is empty"),
], ids=["serial-0", "backup-dir-relative", "backup-dir-dotdot", "backup-keep-0", "backup-without-data-host"])
def test_bad_rollout_input_stops_in_the_first_play(inventory, tmp_path, extra, wanted):
    argv = ["ansible-playbook", "-i", str(inventory), str(ROOT / "playbooks" / "rollout.yml"),
            "-e", f"rollout_source={tmp_path}"]
    for key, value in extra.items():
        argv += ["-e", f"{key}={value}"]
    run = subprocess.run(argv, capture_output=True, text=True, timeout=300, check=False)
    text = " ".join((run.stdout + run.stderr).split())
    assert run.returncode != 0, text[-2000:]
    assert wanted in text, text[-3000:]
    assert "PLAY [Check the rollout input" in text
    assert "PLAY [Stage the release" not in text and "PLAY [Roll the release out" not in text, text[-2000:]

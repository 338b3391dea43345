"""Every role input is documented where ansible-doc shows it: each variable of
a role's defaults/main.yml is an option of one of its entry points, with the
same default, and every documented option has a default there or is required.
For the rollout role this is the whole interface of rollout.yml and
rollback.yml: the plays read nothing else but their two play keywords."""

import json
import os
import pathlib
import re
import subprocess

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
FQCN = f"{GALAXY['namespace']}.{GALAXY['name']}"
ROLES = sorted(p.parent.parent.name for p in ROOT.glob("roles/*/meta/argument_specs.yml"))


def ansible_doc(role):
    env = dict(os.environ)
    result = subprocess.run(["ansible-doc", "-t", "role", "--json", f"{FQCN}.{role}"], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)[f"{FQCN}.{role}"]["entry_points"]


@pytest.mark.parametrize("role", ROLES)
def test_every_default_is_a_documented_option(role):
    entry_points = ansible_doc(role)
    options = {}
    for entry in entry_points.values():
        options.update(entry.get("options") or {})
    defaults = yaml.safe_load((ROOT / "roles" / role / "defaults" / "main.yml").read_text()) or {}
    missing = sorted(set(defaults) - set(options))
    assert not missing, f"{role}: in defaults/main.yml but documented by no entry point: {missing}"
    undocumented_default = sorted(name for name, spec in options.items()
                                  if name not in defaults and not spec.get("required"))
    assert not undocumented_default, f"{role}: documented, neither required nor in defaults/main.yml: {undocumented_default}"
    for name, value in defaults.items():
        if isinstance(value, str) and "{{" in value:
            continue
        if "default" in options[name]:
            assert options[name]["default"] == value, f"{role}: {name} default {options[name]['default']!r} != {value!r}"


def test_rollout_entry_points_cover_every_input():
    entry_points = ansible_doc("rollout")
    assert set(entry_points) == {"source", "stage", "migrate", "switch", "rollback", "cleanup"}
    defaults = yaml.safe_load((ROOT / "roles" / "rollout" / "defaults" / "main.yml").read_text())
    # The source phase checks every input before any host is touched.
    assert set(entry_points["source"]["options"]) == set(defaults)


def test_playbooks_read_no_rollout_input_but_play_keywords():
    """Outside the role, a rollout_* variable appears only as serial/max_fail_percentage."""
    allowed = re.compile(r"^\s*(serial|max_fail_percentage): \"\{\{ rollout_(serial|max_fail_percentage) \| default\((1|0)\) \}\}\"$")
    offenders = []
    for path in sorted(ROOT.glob("playbooks/*.yml")):
        for number, line in enumerate(path.read_text().splitlines(), 1):
            code = line.split("#", 1)[0]
            if re.search(r"\brollout_[a-z_]+", code) and not allowed.match(line):
                offenders.append(f"{path.name}:{number}: {line.strip()}")
    assert not offenders, offenders
    defaults = yaml.safe_load((ROOT / "roles" / "rollout" / "defaults" / "main.yml").read_text())
    assert (defaults["rollout_serial"], defaults["rollout_max_fail_percentage"]) == (1, 0)

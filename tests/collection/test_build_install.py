"""The collection builds, installs into an empty collections path, and its
content is then found by ansible-doc and by FQCN in a playbook."""

import json
import os
import pathlib
import subprocess
import sys
import tarfile

import pytest
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
GALAXY = yaml.safe_load((ROOT / "galaxy.yml").read_text())
FQCN = f"{GALAXY['namespace']}.{GALAXY['name']}"
ROLES = sorted(p.parent.parent.name for p in ROOT.glob("roles/*/meta/argument_specs.yml"))
MODULES = sorted(p.stem for p in ROOT.glob("plugins/modules/*.py") if p.stem != "__init__")
PLAYBOOKS = sorted(p.stem for p in ROOT.glob("playbooks/*.yml"))


def run(*args, env=None, cwd=None, check=True):
    result = subprocess.run(args, env=env, cwd=cwd, capture_output=True, text=True, timeout=300)
    if check and result.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {result.returncode}:\n{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """Build the tarball and install it into a new, empty collections path."""
    out = tmp_path_factory.mktemp("build")
    run("ansible-galaxy", "collection", "build", "--output-path", str(out), str(ROOT))
    tarballs = list(out.glob("*.tar.gz"))
    assert [t.name for t in tarballs] == [f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"]

    colls = tmp_path_factory.mktemp("collections")
    assert not any(colls.iterdir())
    # Only the new path: the checkout linked for development must not be seen.
    env = dict(os.environ)
    env["ANSIBLE_COLLECTIONS_PATH"] = str(colls)
    env.pop("ANSIBLE_ROLES_PATH", None)
    run("ansible-galaxy", "collection", "install", "--offline", "-p", str(colls), str(tarballs[0]), env=env)
    assert (colls / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"] / "MANIFEST.json").is_file()
    return {"tarball": tarballs[0], "path": colls, "env": env}


# What needs the checkout's tooling (tools/, .config/molecule, test images) or
# is a development file: galaxy.yml build_ignore keeps it out of the tarball.
NOT_SHIPPED = (
    ".venv", ".git", ".ci", ".config", "tools", "build", "requirements.txt",
    "molecule", "benchmarks", "tests/images", "tests/badinput", "tests/load",
    "tests/collection", "tests/tools", "execution-environment.yml",
    "changelogs/fragments", "changelogs/.plugin-cache.yaml",
)
# What an installed collection is used with, beyond roles, playbooks and plugins.
SHIPPED = (
    "MANIFEST.json", "FILES.json", "README.md", "CHANGELOG.md", "changelogs/changelog.yaml",
    "meta/runtime.yml", "meta/execution-environment.yml",
)


def tarball_names(installed):
    with tarfile.open(installed["tarball"]) as tar:
        return {name.rstrip("/") for name in tar.getnames()}


def test_tarball_ships_content_and_no_development_files(installed):
    names = tarball_names(installed)
    for role in ROLES:
        assert f"roles/{role}/meta/argument_specs.yml" in names
        assert any(n.startswith(f"roles/{role}/tasks/") and n.endswith(".yml") for n in names), role
    for module in MODULES:
        assert f"plugins/modules/{module}.py" in names
    for playbook in PLAYBOOKS:
        assert f"playbooks/{playbook}.yml" in names
    # Every plugin of the checkout (filters, lookups, tests, module_utils, ...).
    plugins = sorted(str(p.relative_to(ROOT)) for p in ROOT.glob("plugins/**/*")
                     if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc")
    assert plugins
    assert [p for p in plugins if p not in names] == []


@pytest.mark.parametrize("path", SHIPPED)
def test_tarball_ships(installed, path):
    assert path in tarball_names(installed)


@pytest.mark.parametrize("path", NOT_SHIPPED)
def test_tarball_leaves_out(installed, path):
    names = tarball_names(installed)
    assert [n for n in names if n == path or n.startswith(path + "/")] == []


def test_execution_environment_metadata_ships_its_files(installed):
    """ansible-builder reads meta/execution-environment.yml of the installed
    collection: every file it names must be in the tarball, and the Python
    requirements must not bring ansible or ansible-core."""
    names = tarball_names(installed)
    with tarfile.open(installed["tarball"]) as tar:
        meta = yaml.safe_load(tar.extractfile("meta/execution-environment.yml"))
        deps = meta["dependencies"]
        assert set(deps) <= {"python", "system"}, deps
        for path in deps.values():
            assert not os.path.isabs(path) and path in names, path
        requirements = tar.extractfile(deps["python"]).read().decode().splitlines()
    for line in requirements:
        name = line.split("#", 1)[0].strip().lower()
        assert not name.startswith(("ansible ", "ansible=", "ansible>", "ansible<", "ansible-core")), line
        assert name != "ansible", line


def test_collection_is_listed(installed):
    listed = run("ansible-galaxy", "collection", "list", FQCN, "--format", "json", env=installed["env"])
    found = json.loads(listed.stdout)
    assert any(FQCN in entries for entries in found.values()), listed.stdout


def test_roles_and_modules_exist():
    # The product is these roles and modules; the checks below must not pass on an empty tree.
    assert ROLES, "no role with meta/argument_specs.yml"
    assert MODULES, "no module in plugins/modules"


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_module(installed, module):
    doc = run("ansible-doc", "--json", f"{FQCN}.{module}", env=installed["env"])
    data = json.loads(doc.stdout)[f"{FQCN}.{module}"]
    assert data["doc"]["short_description"]
    assert data["examples"].strip()
    assert data["return"]


@pytest.mark.parametrize("role", ROLES)
def test_ansible_doc_renders_role(installed, role):
    doc = run("ansible-doc", "-t", "role", "--json", f"{FQCN}.{role}", env=installed["env"])
    data = json.loads(doc.stdout)[f"{FQCN}.{role}"]
    # Not every role has a main entry point (rollout has one per phase).
    assert data["entry_points"], f"role {role} has no entry point"
    assert any(entry.get("options") for entry in data["entry_points"].values()), f"role {role} documents no option"


def test_fqcn_in_a_playbook(installed, tmp_path):
    """Roles and playbooks resolve by FQCN (syntax check), and a module runs by FQCN."""
    plays = []
    if PLAYBOOKS:
        plays.append({"ansible.builtin.import_playbook": f"{FQCN}.{PLAYBOOKS[0]}"})
    plays.append({
        "name": "Use the installed collection by FQCN",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{
            "name": "Read a stats socket that does not exist",
            "block": [
                {f"{FQCN}.uwsgi_stats": {"socket": str(tmp_path / "missing.sock")}},
                {"ansible.builtin.fail": {"msg": "uwsgi_stats succeeded on a missing socket"}},
            ],
            "rescue": [{
                "name": "The module ran and named the missing socket",
                "ansible.builtin.assert": {"that": ["'missing.sock' in ansible_failed_result.msg"]},
            }],
        }] if "uwsgi_stats" in MODULES else [],
    })
    roles_play = {
        "name": "Roles resolve by FQCN",
        "hosts": "localhost",
        "gather_facts": False,
        "tasks": [{"name": f"Resolve {role}", "ansible.builtin.import_role": {"name": f"{FQCN}.{role}"}} for role in ROLES],
    }
    (tmp_path / "syntax.yml").write_text(yaml.safe_dump(plays[:-1] + [roles_play]))
    (tmp_path / "run.yml").write_text(yaml.safe_dump(plays[-1:]))
    inventory = "localhost,"
    syntax = run("ansible-playbook", "-i", inventory, "--syntax-check", str(tmp_path / "syntax.yml"),
                 env=installed["env"], cwd=tmp_path)
    assert "syntax.yml" in syntax.stdout
    played = run("ansible-playbook", "-i", inventory, "-c", "local", "-e", f"ansible_python_interpreter={sys.executable}",
                 str(tmp_path / "run.yml"),
                 env=installed["env"], cwd=tmp_path)
    assert "failed=0" in played.stdout
    if "uwsgi_stats" in MODULES:
        assert "rescued=1" in played.stdout, played.stdout

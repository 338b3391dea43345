"""Load the scripts of tools/ as modules (tools/ is not a package)."""

import importlib.util
from pathlib import Path

import pytest

TOOLS = Path(__file__).resolve().parents[2] / 'tools'


def load_tool(name):
    spec = importlib.util.spec_from_file_location('tool_' + name, TOOLS / (name + '.py'))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='session')
def role_docs():
    return load_tool('role_docs')


@pytest.fixture(scope='session')
def yaml_dupes():
    return load_tool('yaml_dupes')

#!/usr/bin/env bash
# ansible-test sanity on the collection's plugins. ansible-test wants the
# collection inside an ansible_collections/<namespace>/<name> tree and under git,
# so copy the collection's content into a temporary one. No images are
# pullable here: run with --venv (ansible-test makes its own virtualenvs with
# the pinned requirements of each sanity test, from PyPI).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
use_venv

mode="${WEBSTACK_SANITY_MODE:---venv}"
work="$(mktemp -d "${TMPDIR:-/tmp}/webstack-sanity.XXXXXX")"
trap 'rm -rf "$work"' EXIT
tree="$work/ansible_collections/webstack/django_uwsgi"
mkdir -p "$tree"
cd "$WEBSTACK_ROOT"
# Only what git tracks (plus new files not ignored), as a release would ship it.
git ls-files -z --cached --others --exclude-standard -- galaxy.yml meta plugins tests/unit \
  | xargs -0 -I{} cp --parents {} "$tree/"
cd "$tree"
printf 'tests/output/\n' >.gitignore
git init -q && git add -A && git -c user.name=sanity -c user.email=sanity@localhost commit -qm sanity

# ansible-test downloads a get-pip.py bootstrap from a host outside the package
# registries; give it the stand-in through its own cache, in a HOME of ours.
export HOME="$WEBSTACK_CACHE/ansible-test-home"
bootstrap_cache="$HOME/.ansible/test/cache"
mkdir -p "$bootstrap_cache"
pip_version="$(python -c '
import pathlib, re, ansible_test
source = pathlib.Path(ansible_test.__file__).parent / "_internal" / "python_requirements.py"
print(re.search(r"pip=.([0-9.]+).", source.read_text()).group(1))')"
cp "$WEBSTACK_ROOT/tools/get-pip-standin.py" "$bootstrap_cache/get_pip_${pip_version//./_}.py"

# The Python 3.11 controller is what this project supports and tests.
ansible-test sanity "$mode" --python 3.11 --color no \
  "$@"

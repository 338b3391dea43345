# shellcheck shell=bash
# Shared helpers for the tools/ scripts. Source it; do not run it.
set -euo pipefail

WEBSTACK_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WEBSTACK_VENV="${WEBSTACK_VENV:-$WEBSTACK_ROOT/.venv}"
WEBSTACK_CACHE="${WEBSTACK_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/webstack-django-uwsgi}"
export WEBSTACK_ROOT WEBSTACK_VENV WEBSTACK_CACHE

log() { printf '==> %s\n' "$*" >&2; }
die() { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Put the project venv first on PATH (after tools/venv.sh has made it).
use_venv() {
  [ -x "$WEBSTACK_VENV/bin/ansible-playbook" ] || die "no virtualenv at $WEBSTACK_VENV: run tools/venv.sh first"
  export PATH="$WEBSTACK_VENV/bin:$PATH"
  export VIRTUAL_ENV="$WEBSTACK_VENV"
}

# The collection as Ansible finds it by FQCN: a collections path whose
# ansible_collections/webstack/django_uwsgi is this checkout. One path per
# checkout, so that two checkouts testing at once on one machine never repoint
# each other's link in the middle of a playbook (it made Ansible fail with
# "Unexpected Exception" on a role path of the other checkout).
WEBSTACK_COLLECTIONS_PATH="${WEBSTACK_COLLECTIONS_PATH:-$WEBSTACK_CACHE/collections/$(printf '%s' "$WEBSTACK_ROOT" | sha256sum | cut -c1-16)}"
export WEBSTACK_COLLECTIONS_PATH

link_collection() {
  local ns="$WEBSTACK_COLLECTIONS_PATH/ansible_collections/webstack"
  mkdir -p "$ns"
  if [ "$(readlink "$ns/django_uwsgi" 2>/dev/null || true)" != "$WEBSTACK_ROOT" ]; then
    rm -rf "$ns/django_uwsgi"
    ln -s "$WEBSTACK_ROOT" "$ns/django_uwsgi"
  fi
  export ANSIBLE_COLLECTIONS_PATH="$WEBSTACK_COLLECTIONS_PATH"
  mkdir -p "$WEBSTACK_CACHE/pip"
}

# What a benchmark needs on this machine, in order: the project venv first on
# PATH, the collection link, a Docker engine and the test image of release $1.
prepare_machine() {
  bash "$WEBSTACK_ROOT/tools/venv.sh"
  use_venv
  link_collection
  bash "$WEBSTACK_ROOT/tools/docker.sh"
  bash "$WEBSTACK_ROOT/tests/images/build.sh" "$1"
}

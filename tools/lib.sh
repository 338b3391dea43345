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

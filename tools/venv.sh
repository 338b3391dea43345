#!/usr/bin/env bash
# Create (or update) the project-local virtualenv with the pinned tooling.
# Reinstalls only when requirements.txt changed since the last install.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

PYTHON="${WEBSTACK_PYTHON:-}"
if [ -z "$PYTHON" ]; then
  for candidate in python3.11 python3; do
    if command -v "$candidate" >/dev/null 2>&1; then PYTHON="$candidate"; break; fi
  done
fi
[ -n "$PYTHON" ] || die "Python 3.11 is required on the controller (set WEBSTACK_PYTHON to its path)"
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] >= (3, 11) else 1)' \
  || die "$PYTHON is older than 3.11; set WEBSTACK_PYTHON to a Python 3.11 interpreter"

if [ ! -x "$WEBSTACK_VENV/bin/python" ]; then
  if ! "$PYTHON" -m venv "$WEBSTACK_VENV" 2>/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
      log "installing python3-venv"
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      "$PYTHON" -m venv "$WEBSTACK_VENV"
    else
      die "cannot create a virtualenv with $PYTHON: install the venv module (Debian: python3-venv)"
    fi
  fi
fi

stamp="$WEBSTACK_VENV/.requirements.sha256"
want="$(sha256sum "$WEBSTACK_ROOT/requirements.txt" | cut -d' ' -f1)"
if [ "$(cat "$stamp" 2>/dev/null || true)" != "$want" ]; then
  log "installing pinned tooling into $WEBSTACK_VENV"
  "$WEBSTACK_VENV/bin/python" -m pip install --quiet --upgrade pip
  "$WEBSTACK_VENV/bin/python" -m pip install --quiet -r "$WEBSTACK_ROOT/requirements.txt"
  echo "$want" > "$stamp"
else
  log "virtualenv up to date ($WEBSTACK_VENV)"
fi

#!/usr/bin/env bash
# Run one molecule scenario on one or both Debian releases.
#   tools/molecule.sh SCENARIO [bookworm|trixie|both] [molecule command, default: test]
# Assumes tools/venv.sh, tools/docker.sh and tests/images/build.sh have run.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
use_venv
link_collection

scenario="${1:?usage: tools/molecule.sh SCENARIO [bookworm|trixie|both] [COMMAND]}"
distros="${2:-both}"
command="${3:-test}"
[ "$distros" = both ] && distros="bookworm trixie"
[ -d "$WEBSTACK_ROOT/molecule/$scenario" ] || die "no scenario molecule/$scenario"

# The scenario's containers have fixed names: one molecule command of a
# scenario at a time on this machine, whatever checkout it runs from.
exec 8>"${TMPDIR:-/tmp}/webstack-molecule-$scenario.lock"
if ! flock -n 8; then
  log "another checkout runs molecule/$scenario now: waiting for it"
  flock 8
fi

cd "$WEBSTACK_ROOT"
for distro in $distros; do
  log "molecule $command -s $scenario on $distro"
  WEBSTACK_DISTRO="$distro" molecule "$command" -s "$scenario"
done

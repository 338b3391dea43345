# shellcheck shell=bash
# Source this in an interactive shell to work on the collection by hand:
#   source tools/env.sh
# It puts the project venv on PATH and makes the collection findable by FQCN.
# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set +eu +o pipefail
use_venv
link_collection

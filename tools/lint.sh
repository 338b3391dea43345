#!/usr/bin/env bash
# Static checks: yamllint over the tree and ansible-lint (production profile,
# empty skip list) over roles, playbooks and scenarios.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
use_venv
link_collection
cd "$WEBSTACK_ROOT"
log "yamllint"
yamllint --strict .
log "ansible-lint (profile production)"
ansible-lint --offline

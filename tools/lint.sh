#!/usr/bin/env bash
# Static checks: yamllint over the tree, ansible-lint (production profile,
# empty skip list) over roles, playbooks and scenarios, role READMEs in step
# with meta/argument_specs.yml, and no more repeated YAML than allowed.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
use_venv
link_collection
cd "$WEBSTACK_ROOT"
log "yamllint"
yamllint --strict .
log "ansible-lint (profile production)"
ansible-lint --offline
log "role READMEs generated from meta/argument_specs.yml"
python tools/role_docs.py --check
# Lower the allowance as repeated blocks are merged; never raise it.
log "repeated YAML (identical 5-line windows)"
python tools/yaml_dupes.py --quiet --max 116

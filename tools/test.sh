#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   tools/test.sh
# Stages: tooling, Docker engine, test images, static checks (yamllint,
# ansible-lint), packaging (changelog fragments and CHANGELOG.md, the execution
# environment's build context: tools/package.sh), ansible-test sanity, pytest
# (module unit and integration tests, collection build/install, tests of
# tools/), then every molecule scenario on Debian 12 and 13. Every stage runs
# when what it needs is there; the script exits non-zero when any stage failed
# or could not run, and ends with a timing summary. Full logs of each stage:
# build/test-logs/.
#   WEBSTACK_SCENARIOS="default rollout:bookworm"   scenarios to run, each on the
#       releases after its colon (default: the list below: the demo's full
#       stack, the fastrouter front, the rollout and the faults scenarios on
#       Debian 12; the second example project (project) on Debian 13)
#   WEBSTACK_DISTROS="trixie"         run every chosen scenario on these releases instead
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set +e

SCENARIOS="${WEBSTACK_SCENARIOS:-default:bookworm project:trixie fastrouter:bookworm rollout:bookworm faults:bookworm}"
# Releases each scenario runs on, and all of them (for the image stage).
declare -A scenario_distros=()
ordered_scenarios=()
DISTROS=""
for entry in $SCENARIOS; do
  name="${entry%%:*}"
  distros="bookworm trixie"
  [ "$entry" != "$name" ] && distros="${entry#*:}"
  distros="${WEBSTACK_DISTROS:-${distros//,/ }}"
  scenario_distros[$name]="$distros"
  ordered_scenarios+=("$name")
  for d in $distros; do
    case " $DISTROS " in *" $d "*) ;; *) DISTROS="$DISTROS $d" ;; esac
  done
done
LOGS="$WEBSTACK_ROOT/build/test-logs"
rm -rf "$LOGS" && mkdir -p "$LOGS"

declare -a names=() results=() seconds=()
declare -A state=()
suite_start=$(date +%s)

# stage NAME NEEDS COMMAND...: run COMMAND unless a stage in NEEDS (comma list) did not pass.
stage() {
  local name="$1" needs="$2" start rc need
  shift 2
  for need in ${needs//,/ }; do
    if [ "${state[$need]:-}" != passed ]; then
      names+=("$name"); results+=("not run ($need did not pass)"); seconds+=(0); state[$name]="not run"
      printf '\n=== %s: not run, %s did not pass\n' "$name" "$need"
      return
    fi
  done
  printf '\n=== %s\n' "$name"
  start=$(date +%s)
  "$@" >"$LOGS/$name.log" 2>&1
  rc=$?
  names+=("$name"); seconds+=($(( $(date +%s) - start )))
  if [ "$rc" = 0 ]; then
    results+=(passed); state[$name]=passed
    sed 's/\x1b\[[0-9;]*m//g' "$LOGS/$name.log" | grep -E '[0-9]+ passed|actions=[0-9]' | tail -n 3
    printf '=== %s: passed (%ss)\n' "$name" "${seconds[-1]}"
  else
    results+=("FAILED (exit $rc)"); state[$name]=failed
    sed 's/\x1b\[[0-9;]*m//g' "$LOGS/$name.log" | tail -n 80
    printf '=== %s: FAILED with exit %s (%ss); full log: build/test-logs/%s.log\n' "$name" "$rc" "${seconds[-1]}" "$name"
  fi
}

stage tooling "" bash "$WEBSTACK_ROOT/tools/venv.sh"
stage docker "" bash "$WEBSTACK_ROOT/tools/docker.sh"
# shellcheck disable=SC2086
stage images docker bash "$WEBSTACK_ROOT/tests/images/build.sh" $DISTROS
stage lint tooling bash "$WEBSTACK_ROOT/tools/lint.sh"
stage package tooling bash "$WEBSTACK_ROOT/tools/package.sh"
stage sanity tooling bash "$WEBSTACK_ROOT/tools/sanity.sh"
# Test directories that exist in this checkout (tests/tools may not yet).
pytest_dirs=()
for dir in tests/unit tests/integration/modules tests/collection tests/tools benchmarks/tests; do
  [ -d "$WEBSTACK_ROOT/$dir" ] && pytest_dirs+=("$dir")
done
stage pytest tooling bash -c 'source "$0/tools/env.sh" && cd "$0" && pytest -p no:cacheprovider -q "${@}"' "$WEBSTACK_ROOT" "${pytest_dirs[@]}"
for scenario in "${ordered_scenarios[@]}"; do
  for distro in ${scenario_distros[$scenario]}; do
    stage "molecule-$scenario-$distro" tooling,images bash "$WEBSTACK_ROOT/tools/molecule.sh" "$scenario" "$distro" test
  done
done

passed=0; failed=0
printf '\n%-34s %-36s %8s\n' STAGE RESULT SECONDS
for i in "${!names[@]}"; do
  printf '%-34s %-36s %8s\n' "${names[$i]}" "${results[$i]}" "${seconds[$i]}"
  if [ "${results[$i]}" = passed ]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
printf '%-34s %-36s %8s\n' total "" "$(( $(date +%s) - suite_start ))"
echo
echo "stages: $passed passed, $failed failed"
[ "$failed" = 0 ]

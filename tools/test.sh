#!/usr/bin/env bash
# The whole test suite, as CI runs it (.ci/run calls exactly this):
#   tools/test.sh
# Stages: tooling, Docker engine, test images, static checks (yamllint,
# ansible-lint), packaging (changelog fragments and CHANGELOG.md, the execution
# environment's build context: tools/package.sh) and ansible-test sanity, one
# after the other beside pytest (module unit and integration tests, collection
# build/install, tests of tools/), then every molecule scenario on Debian 12
# and 13. Every stage runs when what it needs is there; the script exits
# non-zero when any stage failed or could not run, and ends with a timing
# summary. Full logs of each stage: build/test-logs/.
#   WEBSTACK_SCENARIOS="default rollout:bookworm"   scenarios to run, each on the
#       releases after its colon (default: the list below: the demo's full
#       stack, the fastrouter front, the adoption of a legacy host, the
#       rollout and the faults scenarios on Debian 12; the second example
#       project (project) on Debian 13); scenarios joined by + run side by
#       side in lanes of their own, scenarios joined by / one after the other
#       in the same lane (by default default then project in one lane,
#       fastrouter, legacy then faults in the other: each scenario has its
#       own containers and ports; then the rollout scenario alone, whose
#       zero-error and latency figures want the machine to themselves)
#   WEBSTACK_DISTROS="trixie"         run every chosen scenario on these releases instead
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
set +e

SCENARIOS="${WEBSTACK_SCENARIOS:-default:bookworm/project:trixie+fastrouter:bookworm/legacy:bookworm/faults:bookworm rollout:bookworm}"
# Releases each scenario runs on, and all of them (for the image stage);
# scenario groups: lanes joined by + run side by side, the scenarios of a lane
# (joined by /) one after the other. A group is kept as its lanes joined by +,
# each lane the names of its scenarios.
declare -A scenario_distros=()
scenario_groups=()
DISTROS=""
for group in $SCENARIOS; do
  lanes=""
  for lane in ${group//+/ }; do
    members=""
    for entry in ${lane//\// }; do
      name="${entry%%:*}"
      distros="bookworm trixie"
      [ "$entry" != "$name" ] && distros="${entry#*:}"
      distros="${WEBSTACK_DISTROS:-${distros//,/ }}"
      scenario_distros[$name]="$distros"
      members="$members $name"
      for d in $distros; do
        case " $DISTROS " in *" $d "*) ;; *) DISTROS="$DISTROS $d" ;; esac
      done
    done
    lanes="${lanes:+$lanes+}$members"
  done
  scenario_groups+=("$lanes")
done
LOGS="$WEBSTACK_ROOT/build/test-logs"
rm -rf "$LOGS" && mkdir -p "$LOGS"

declare -a names=() results=() seconds=()
declare -A state=()
suite_start=$(date +%s)

# needs_passed NAME NEEDS: true when every stage in NEEDS (comma list) passed;
# otherwise records NAME as not run.
needs_passed() {
  local name="$1" need
  for need in ${2//,/ }; do
    if [ "${state[$need]:-}" != passed ]; then
      names+=("$name"); results+=("not run ($need did not pass)"); seconds+=(0); state[$name]="not run"
      printf '\n=== %s: not run, %s did not pass\n' "$name" "$need"
      return 1
    fi
  done
}

# run_stage NAME COMMAND...: run COMMAND with its output in the stage's log;
# its exit status and seconds go to the stage's .rc file.
run_stage() {
  local name="$1" start rc
  shift
  start=$(date +%s)
  "$@" >"$LOGS/$name.log" 2>&1
  rc=$?
  echo "$rc $(( $(date +%s) - start ))" >"$LOGS/$name.rc"
}

# report_stage NAME: record and print the result of a finished stage.
report_stage() {
  local name="$1" rc secs
  read -r rc secs <"$LOGS/$name.rc"
  names+=("$name"); seconds+=("$secs")
  if [ "$rc" = 0 ]; then
    results+=(passed); state[$name]=passed
    sed 's/\x1b\[[0-9;]*m//g' "$LOGS/$name.log" | grep -E '[0-9]+ passed|actions=[0-9]' | tail -n 3
    printf '=== %s: passed (%ss)\n' "$name" "$secs"
  else
    results+=("FAILED (exit $rc)"); state[$name]=failed
    sed 's/\x1b\[[0-9;]*m//g' "$LOGS/$name.log" | tail -n 80
    printf '=== %s: FAILED with exit %s (%ss); full log: build/test-logs/%s.log\n' "$name" "$rc" "$secs" "$name"
  fi
}

# stage NAME NEEDS COMMAND...: run COMMAND unless a stage in NEEDS did not pass.
stage() {
  local name="$1" needs="$2"
  shift 2
  needs_passed "$name" "$needs" || return 0
  printf '\n=== %s\n' "$name"
  run_stage "$name" "$@"
  report_stage "$name"
}

# stage_command NAME: the command of a stage run by side_by_side: the
# function stage_NAME, or for molecule-SCENARIO-DISTRO that scenario's test.
stage_command() {
  local rest
  case "$1" in
    molecule-*)
      rest="${1#molecule-}"
      bash "$WEBSTACK_ROOT/tools/molecule.sh" "${rest%-*}" "${rest##*-}" test ;;
    *) "stage_$1" ;;
  esac
}

# side_by_side NEEDS LANE...: each LANE is a list of stage names, run one
# after the other (stage_command); the lanes run at the same
# time (the machine has two cores). Every stage is reported, in order, once
# all lanes have ended. Only for stages that read the tree and write nothing
# but their own output.
side_by_side() {
  local needs="$1" lane name ok=1
  local -a all=()
  shift
  for lane in "$@"; do
    for name in $lane; do all+=("$name"); done
  done
  for name in "${all[@]}"; do needs_passed "$name" "$needs" || ok=0; done
  [ "$ok" = 1 ] || return 0
  for lane in "$@"; do
    # shellcheck disable=SC2086  # a lane is a list of stage names
    (for name in $lane; do run_stage "$name" stage_command "$name"; done) &
  done
  printf '\n=== %s (lanes: %s)\n' "${all[*]}" "$(printf '[%s] ' "$@")"
  wait
  for name in "${all[@]}"; do
    printf '\n=== %s\n' "$name"
    report_stage "$name"
  done
}

stage tooling "" bash "$WEBSTACK_ROOT/tools/venv.sh"
stage docker "" bash "$WEBSTACK_ROOT/tools/docker.sh"
# shellcheck disable=SC2086
stage images docker bash "$WEBSTACK_ROOT/tests/images/build.sh" $DISTROS
# Test directories that exist in this checkout (tests/tools may not yet).
pytest_dirs=()
for dir in tests/unit tests/integration/modules tests/collection tests/tools benchmarks/tests; do
  [ -d "$WEBSTACK_ROOT/$dir" ] && pytest_dirs+=("$dir")
done
stage_lint() { bash "$WEBSTACK_ROOT/tools/lint.sh"; }
stage_package() { bash "$WEBSTACK_ROOT/tools/package.sh"; }
stage_sanity() { bash "$WEBSTACK_ROOT/tools/sanity.sh"; }
stage_pytest() { (source "$WEBSTACK_ROOT/tools/env.sh" && cd "$WEBSTACK_ROOT" && pytest -p no:cacheprovider -q "${pytest_dirs[@]}"); }
# The collection link every lane uses, made once before they start.
[ "${state[tooling]:-}" = passed ] && (use_venv && link_collection)
side_by_side tooling "lint package sanity" "pytest"
# A lane's scenarios, each on its releases, one after the other; the lanes of
# a group side by side (each scenario has its own containers and ports).
for group in "${scenario_groups[@]}"; do
  lanes=()
  IFS=+ read -ra group_lanes <<<"$group"
  for names in "${group_lanes[@]}"; do
    lane=""
    for scenario in $names; do
      for distro in ${scenario_distros[$scenario]}; do lane="$lane molecule-$scenario-$distro"; done
    done
    lanes+=("$lane")
  done
  if [ "${#lanes[@]}" = 1 ]; then
    for name in ${lanes[0]}; do
      stage "$name" tooling,images stage_command "$name"
    done
  else
    side_by_side tooling,images "${lanes[@]}"
  fi
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

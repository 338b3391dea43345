#!/usr/bin/env bash
# Playbook cost: how long playbooks/site.yml (first converge, idempotent re-run)
# and playbooks/rollout.yml (a second release) take for 1, 2 and 4 app hosts,
# with the task count and where the time goes (ansible.posix.profile_tasks).
#
#   bash benchmarks/playbook_cost.sh
#
# Per number of app hosts N: fresh systemd containers on the host network (one
# front pcost-front and N app hosts pcost-app<i>, from molecule/shared/create.yml),
# each app host light (one uWSGI instance of 2 processes, one daphne process,
# ports 187xx on 127.0.0.1, see benchmarks/playbook_cost/inventory.py); then
# the three timed runs; then the containers are removed.
# Writes benchmarks/results/playbook_cost.{json,md,png} and prints the table.
# Logs of every run: build/playbook_cost/hosts-<N>/<run>.log.
#
# Settings (environment):
#   BENCH_HOSTS="1 2 4"      numbers of app hosts, each 1..9
#   BENCH_KEEP=1             keep the last containers at exit (default: remove)
#   BENCH_RUN_TIMEOUT=1500   seconds one ansible-playbook run may take
#   BENCH_FORKS=10           ansible forks (above N + 1, so hosts run in parallel)
#   BENCH_OUT=DIR            results directory (default benchmarks/results)
#   BENCH_PIPELINING=1       Ansible pipelining (default on, as most production setups: a task is
#                            one command on the host instead of temp dir, copy, run, clean up;
#                            0 measures Ansible's default)
#   BENCH_UWSGI_WHEEL=1      uWSGI compiled once per machine (default), not per host and release:
#                            each release venv also gets `wheel`, so the pip of Debian 12 builds a
#                            wheel the pip cache keeps; the containers mount a pip cache of their own
#                            (WEBSTACK_CACHE/playbook-cost/pip, so this uWSGI build, without OpenSSL,
#                            never reaches the tests' cache), filled once by an untimed warm-up
#                            host before the first timed run. 0: the collection as it is (every host
#                            compiles uWSGI at every converge and rollout; the machine's pip cache).
#   WEBSTACK_DISTRO          bookworm (default) or trixie
# Slow results never fail it; it exits non-zero only when it could not run
# (tooling, Docker, images, containers) or a playbook run failed.
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"

BENCH_HOSTS="${BENCH_HOSTS:-1 2 4}"
BENCH_KEEP="${BENCH_KEEP:-0}"
BENCH_RUN_TIMEOUT="${BENCH_RUN_TIMEOUT:-1500}"
BENCH_FORKS="${BENCH_FORKS:-10}"
BENCH_OUT="${BENCH_OUT:-$WEBSTACK_ROOT/benchmarks/results}"
BENCH_UWSGI_WHEEL="${BENCH_UWSGI_WHEEL:-1}"
BENCH_PIPELINING="${BENCH_PIPELINING:-1}"
export WEBSTACK_DISTRO="${WEBSTACK_DISTRO:-bookworm}"
HERE="$WEBSTACK_ROOT/benchmarks/playbook_cost"
WORK="$WEBSTACK_ROOT/build/playbook_cost"

read -ra host_counts <<<"$BENCH_HOSTS"
max_hosts=0
for n in "${host_counts[@]}"; do
  [[ "$n" =~ ^[1-9]$ ]] || die "BENCH_HOSTS must list numbers of app hosts 1..9, got '$n'"
  if [ "$n" -gt "$max_hosts" ]; then max_hosts="$n"; fi
done
[ "$max_hosts" -gt 0 ] || die "BENCH_HOSTS is empty"
[[ "$BENCH_RUN_TIMEOUT" =~ ^[0-9]+$ ]] || die "BENCH_RUN_TIMEOUT must be seconds"
[[ "$BENCH_UWSGI_WHEEL" =~ ^[01]$ ]] || die "BENCH_UWSGI_WHEEL must be 0 or 1"
[[ "$BENCH_PIPELINING" =~ ^[01]$ ]] || die "BENCH_PIPELINING must be 0 or 1"

bench_started=$EPOCHREALTIME
prepare_machine "$WEBSTACK_DISTRO"

mkdir -p "$WORK"
# One run at a time in this tree: the containers and ports are fixed.
exec 9>"$WORK/.lock"
flock -n 9 || die "another benchmarks/playbook_cost.sh runs in this tree ($WORK/.lock)"
find "$WORK" -mindepth 1 -maxdepth 1 ! -name .lock -exec rm -rf {} +

python "$HERE/inventory.py" --hosts "$max_hosts" --out "$WORK/all"
inventory_flags=()
if [ "$BENCH_UWSGI_WHEEL" = 1 ]; then
  inventory_flags=(--uwsgi-wheel)
  # The containers' pip cache: create.yml mounts $WEBSTACK_CACHE/pip.
  bench_cache="$WEBSTACK_CACHE/playbook-cost"
  bench_cache_label='$WEBSTACK_CACHE/playbook-cost'
else
  bench_cache="$WEBSTACK_CACHE"
  bench_cache_label='$WEBSTACK_CACHE'
fi
mkdir -p "$bench_cache/pip"

destroy_all() {
  local platforms
  for platforms in "$WORK/all/platforms.json" "$WORK/warm/platforms.json"; do
    [ -f "$platforms" ] || continue
    timeout --kill-after=10 300 ansible-playbook "$WEBSTACK_ROOT/molecule/shared/destroy.yml" -e "@$platforms" \
      >"$WORK/destroy.log" 2>&1 || { tail -n 20 "$WORK/destroy.log" >&2; return 1; }
  done
}

# create_hosts DIR: start the containers of DIR/platforms.json, with the benchmark's pip cache.
create_hosts() {
  WEBSTACK_CACHE="$bench_cache" timeout --kill-after=10 600 \
    ansible-playbook "$WEBSTACK_ROOT/molecule/shared/create.yml" -e "@$1/platforms.json" \
    >"$1/create.log" 2>&1 || { tail -n 25 "$1/create.log" >&2; die "could not start the containers"; }
}

cleanup() {
  local rc=$?
  if [ "$BENCH_KEEP" = 1 ]; then
    log "BENCH_KEEP=1: keeping the containers ($(python "$HERE/inventory.py" --names "$max_hosts"))"
  elif [ -f "$WORK/all/platforms.json" ]; then
    log "removing the benchmark containers"
    destroy_all || log "could not remove every container; see $WORK/destroy.log"
  fi
  exit "$rc"
}
# The ansible-playbook run under way (its timeout wrapper), ended on INT/TERM.
current_pid=""
interrupted() {
  if [ -n "$current_pid" ]; then kill -TERM "$current_pid" 2>/dev/null || true; fi
  exit 130
}
trap cleanup EXIT
trap interrupted INT TERM

# The second release: the demo project with one changed file; its id is given.
release="$WORK/release-v2"
mkdir -p "$release"
tar -C "$WEBSTACK_ROOT/examples/demo" --exclude=__pycache__ --exclude='*.pyc' --exclude='*.sqlite3' \
  --exclude=.venv --exclude=venv --exclude=static_collected -cf - . | tar -C "$release" -xf -
echo "release bench-v2 of benchmarks/playbook_cost.sh" >"$release/MARKER"

export ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks
export ANSIBLE_STDOUT_CALLBACK=ansible.builtin.default
export PROFILE_TASKS_TASK_OUTPUT_LIMIT=all PROFILE_TASKS_SORT_ORDER=descending
export ANSIBLE_FORKS="$BENCH_FORKS" ANSIBLE_NOCOLOR=1 ANSIBLE_FORCE_COLOR=0
export ANSIBLE_RETRY_FILES_ENABLED=0 COLUMNS=160
if [ "$BENCH_PIPELINING" = 1 ]; then export ANSIBLE_PIPELINING=True; else export ANSIBLE_PIPELINING=False; fi

python "$HERE/report.py" facts --out "$WORK/facts-start.json"
log "machine: $(nproc) CPUs, load $(cut -d' ' -f1-3 /proc/loadavg), $(docker ps -q | wc -l) containers running"

failed=0
warmup="not needed"
# run LABEL DIR ANSIBLE-PLAYBOOK-ARGS...: one timed run, its log and summary.
run() {
  local label="$1" dir="$2" start end wall rc=0
  shift 2
  start=$EPOCHREALTIME
  timeout --kill-after=30 "$BENCH_RUN_TIMEOUT" \
    ansible-playbook -i "$dir/inventory.yml" "$@" >"$dir/$label.log" 2>&1 &
  current_pid=$!
  wait "$current_pid" || rc=$?
  current_pid=""
  end=$EPOCHREALTIME
  wall="$(python -c "print(round($end - $start, 2))")"
  python "$HERE/parse.py" "$dir/$label.log" --wall "$wall" --rc "$rc" --out "$dir/$label.json"
  if [ "$rc" = 0 ]; then
    log "  $label: $wall s ($(python -c "import json,sys; d=json.load(open(sys.argv[1])); print(d['tasks']['task_banners'], 'tasks,', 'changed', d['totals'].get('changed'))" "$dir/$label.json"))"
  else
    log "  $label FAILED (rc $rc) after $wall s; last lines of $dir/$label.log:"
    tail -n 25 "$dir/$label.log" >&2
    failed=1
  fi
  return "$rc"
}

# Warm-up (BENCH_UWSGI_WHEEL=1), untimed, once per machine and uWSGI version:
# the build steps of site.yml on one throwaway app host put the uWSGI wheel into
# the benchmark's pip cache, so that every timed run finds the same cache.
if [ "$BENCH_UWSGI_WHEEL" = 1 ]; then
  uwsgi_version="$(python -c 'import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))["uwsgi_version"])' \
    "$WEBSTACK_ROOT/roles/uwsgi/defaults/main.yml")"
  marker="$bench_cache/pip/.webstack-playbook-cost-$WEBSTACK_DISTRO-uwsgi-$uwsgi_version"
  if [ -f "$marker" ]; then
    warmup="cached ($bench_cache_label/pip/${marker##*/})"
  else
    log "warm-up (untimed): building uWSGI $uwsgi_version once into $bench_cache/pip"
    python "$HERE/inventory.py" --warm --out "$WORK/warm" "${inventory_flags[@]}"
    destroy_all || die "could not remove the previous containers"
    create_hosts "$WORK/warm"
    # Only the cache matters here, not whether the tagged steps converge cleanly.
    run warmup "$WORK/warm" "$WEBSTACK_ROOT/playbooks/site.yml" \
      --tags django_app_packages,django_app_user,django_app_config,django_app_release,uwsgi_install || true
    failed=0
    if find "$bench_cache/pip" -iname "uwsgi-$uwsgi_version-*.whl" | grep -q .; then
      touch "$marker"
      warmup="built in $(python -c "import json,sys; print(json.load(open(sys.argv[1]))['wall_seconds'])" "$WORK/warm/warmup.json") s"
    else
      warmup="FAILED: the first timed run compiles uWSGI (see $WORK/warm/warmup.log)"
      log "warm-up did not leave a uWSGI wheel in the cache: $warmup"
    fi
    destroy_all || die "could not remove the warm-up container"
  fi
fi

for n in "${host_counts[@]}"; do
  dir="$WORK/hosts-$n"
  python "$HERE/inventory.py" --hosts "$n" --out "$dir" "${inventory_flags[@]}"
  log "$n app host(s): fresh containers ($(python "$HERE/inventory.py" --names "$n"))"
  destroy_all || die "could not remove the previous containers"
  python "$HERE/report.py" pipcache "$bench_cache/pip" --out "$dir/pip-cache.json"
  create_hosts "$dir"

  log "$n app host(s): site.yml, first converge"
  if run site-first "$dir" "$WEBSTACK_ROOT/playbooks/site.yml"; then
    log "$n app host(s): site.yml again (idempotent)"
    run site-again "$dir" "$WEBSTACK_ROOT/playbooks/site.yml" || true
    log "$n app host(s): rollout.yml of release bench-v2"
    run rollout "$dir" "$WEBSTACK_ROOT/playbooks/rollout.yml" \
      -e "rollout_source=$release" -e rollout_release_id=bench-v2 || true
  fi
  if [ "$BENCH_KEEP" != 1 ] || [ "$n" != "${host_counts[-1]}" ]; then
    destroy_all || die "could not remove the containers"
  fi
done

python "$HERE/report.py" report --work "$WORK" --out "$BENCH_OUT" \
  --setting "hosts=$BENCH_HOSTS" --setting "distro=$WEBSTACK_DISTRO" --setting "forks=$BENCH_FORKS" \
  --setting "pipelining=$BENCH_PIPELINING" \
  --setting "app_host=1 uWSGI instance x 2 processes, 1 daphne process" \
  --setting "uwsgi_wheel=$BENCH_UWSGI_WHEEL" --setting "pip_cache=$bench_cache_label/pip" --setting "warmup=$warmup" \
  --setting "total_seconds=$(python -c "print(round($EPOCHREALTIME - $bench_started))")"
log "results: $BENCH_OUT/playbook_cost.json, .md, .png (logs: $WORK)"
[ "$failed" = 0 ] || die "a playbook run failed (see the logs above); the figures of that run are incomplete"

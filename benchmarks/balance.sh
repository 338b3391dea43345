#!/usr/bin/env bash
# Worker balance of the demo app under the same CPU-bound load, in one run, for:
#   a  the hand-written instance of configs/hand-written.ini (8 processes x 20 threads, no thunder-lock)
#   b  the collection's defaults for one instance (4 processes x 2 threads, thunder-lock)
#   c  two default instances behind nginx, round robin (site.yml's default)
#   d  two default instances behind nginx, least_conn
#   e  two default instances behind the uWSGI fastrouter
# One systemd container (Debian, host network, every port 127.0.0.1:186xx) is
# converged with playbooks/site.yml and benchmarks/configs/<config>.yml per
# configuration; tests/load/loadgen.py sends GET /cpu?ms=N through nginx at
# each concurrency level; per-worker request counts come from the stats
# servers, read before and after each run with the collection's uwsgi_stats
# code. Writes benchmarks/results/balance.{json,md,png} and prints the table.
#
#   benchmarks/balance.sh
# Environment: BENCH_CONFIGS (order of the run, "e c d b a"), BENCH_CONCURRENCY
# (1,4,16), BENCH_DURATION (seconds per level, 15), BENCH_CPU_MS (10),
# BENCH_KEEP=1 keeps the container, WEBSTACK_DISTRO (bookworm or trixie).
# Exits non-zero only when the benchmark could not run; slow is not a failure.
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"

BENCH_HOST="webstack-bench"
BENCH_URL="http://127.0.0.1:18680"
BENCH_CONFIGS="${BENCH_CONFIGS:-e c d b a}"
BENCH_CONCURRENCY="${BENCH_CONCURRENCY:-1,4,16}"
BENCH_DURATION="${BENCH_DURATION:-15}"
BENCH_CPU_MS="${BENCH_CPU_MS:-10}"
export WEBSTACK_DISTRO="${WEBSTACK_DISTRO:-bookworm}"

BENCH_DIR="$WEBSTACK_ROOT/benchmarks"
RUNS="$WEBSTACK_ROOT/build/benchmarks/balance"
PROBE_DIR="/tmp/webstack-bench"          # in the container (measure.py knows it too)
HAND_DIR="/run/uwsgi-hand-written"       # hand-written.ini's stats socket and pidfile
started_at="$(date +%s)"

# config -> vars file, stats sockets, expected instances, one-line description
declare -A VARS=(
  [a]=a-hand-written.yml [b]=b-defaults.yml [c]=c-two-rr.yml [d]=d-two-least-conn.yml [e]=e-two-fastrouter.yml)
# The first configuration of a run converges the whole site. A later one that
# follows the configuration it is written against (AFTER) converges only the
# roles whose variables differ (NARROW tags): on this 2-core machine a full
# re-converge of ~120 tasks takes 2-3 minutes even with nothing to change.
# e (the fastrouter front, a dynamic include in site.yml) always converges fully.
declare -A AFTER=([c]=e [d]=c [b]=d [a]=b)
declare -A NARROW=([c]=supervisor,uwsgi,nginx_front [d]=nginx_front [b]=supervisor,uwsgi,nginx_front [a]=nginx_front)
declare -A SOCKETS=(
  [a]="$HAND_DIR/stats.sock"
  [b]="/run/uwsgi/web1/stats.sock"
  [c]="/run/uwsgi/web1/stats.sock /run/uwsgi/web2/stats.sock"
  [d]="/run/uwsgi/web1/stats.sock /run/uwsgi/web2/stats.sock"
  [e]="/run/uwsgi/web1/stats.sock /run/uwsgi/web2/stats.sock")
declare -A LABEL=(
  [a]="a hand-written 8x20" [b]="b defaults 4x2" [c]="c 2 inst rr" [d]="d 2 inst least_conn" [e]="e 2 inst fastrouter")
declare -A DESCRIBE=(
  [a]="hand-written ini: one instance (configs/hand-written.ini), 8 processes x 20 threads, enable-threads, lazy-apps, no thunder-lock, nginx"
  [b]="collection defaults, one instance: 4 processes x 2 threads, thunder-lock, lazy-apps, nginx"
  [c]="two default instances (2 x 4 processes x 2 threads), nginx upstream round robin"
  [d]="two default instances (2 x 4 processes x 2 threads), nginx upstream least_conn"
  [e]="two default instances (2 x 4 processes x 2 threads), uWSGI fastrouter (wrr)")

# Fewer round trips per task over the docker connection (same result).
export ANSIBLE_PIPELINING=True
prepare_machine "$WEBSTACK_DISTRO"

seen=" "
for config in $BENCH_CONFIGS; do
  [ -n "${VARS[$config]:-}" ] || die "unknown configuration '$config' in BENCH_CONFIGS (known: a b c d e)"
  case "$seen" in *" $config "*) die "configuration '$config' twice in BENCH_CONFIGS" ;; esac
  seen="$seen$config "
done

platforms="{\"molecule_yml\": {\"platforms\": [{\"name\": \"$BENCH_HOST\"}]}}"
in_host() { docker exec "$BENCH_HOST" "$@"; }

# The hand-written instance is the one process this script starts in the container;
# it is stopped by the pid in its pidfile, then waited for (bounded).
hand_written_stop() {
  local pid
  pid="$(in_host cat "$HAND_DIR/master.pid" 2>/dev/null || true)"
  [ -n "$pid" ] || return 0
  in_host kill -INT "$pid" 2>/dev/null || true
  for _ in $(seq 1 30); do
    in_host kill -0 "$pid" 2>/dev/null || { in_host rm -f "$HAND_DIR/master.pid"; return 0; }
    sleep 1
  done
  log "hand-written master $pid did not stop within 30 s; killing it"
  in_host kill -KILL "$pid" 2>/dev/null || true
  in_host rm -f "$HAND_DIR/master.pid"
}

hand_written_start() {
  log "a: stopping the role's instance web1, starting configs/hand-written.ini on 127.0.0.1:18682 (nginx's upstream now)"
  in_host supervisorctl stop uwsgi-web1 >/dev/null
  hand_written_stop
  in_host install -d -o demo -g demo -m 0750 "$HAND_DIR"
  docker cp "$BENCH_DIR/configs/hand-written.ini" "$BENCH_HOST:/etc/uwsgi/hand-written.ini" >/dev/null
  # Same release, virtualenv and environment (secrets) as the role's instances.
  in_host /srv/demo/bin/envexec /srv/demo/current/venv/bin/uwsgi --ini /etc/uwsgi/hand-written.ini:secstats >/dev/null
  for _ in $(seq 1 30); do
    in_host test -S "$HAND_DIR/stats.sock" && return 0
    sleep 1
  done
  in_host tail -n 30 /var/log/uwsgi/hand-written.log >&2 || true
  die "the hand-written instance did not open its stats socket within 30 s (log above)"
}

cleanup() {
  local status=$?
  if [ "${BENCH_KEEP:-0}" = 1 ]; then
    log "BENCH_KEEP=1: keeping the container $BENCH_HOST (remove it: BENCH_KEEP=0 re-run, or docker rm -f $BENCH_HOST)"
  elif docker container inspect "$BENCH_HOST" >/dev/null 2>&1; then
    log "removing the container $BENCH_HOST"
    ansible-playbook "$WEBSTACK_ROOT/molecule/shared/destroy.yml" -e "$platforms" >/dev/null \
      || docker rm -f "$BENCH_HOST" >/dev/null 2>&1 || true
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

log "starting the benchmark host $BENCH_HOST (Debian $WEBSTACK_DISTRO, systemd, host network)"
ansible-playbook "$WEBSTACK_ROOT/molecule/shared/create.yml" -e "$platforms" >/dev/null \
  || die "could not start the container $BENCH_HOST"
in_host mkdir -p "$PROBE_DIR"
docker cp "$WEBSTACK_ROOT/plugins/module_utils/uwsgi_stats.py" "$BENCH_HOST:$PROBE_DIR/uwsgi_stats.py" >/dev/null
docker cp "$BENCH_DIR/lib/stats_probe.py" "$BENCH_HOST:$PROBE_DIR/stats_probe.py" >/dev/null

rm -rf "$RUNS"
mkdir -p "$RUNS"
python "$BENCH_DIR/lib/report.py" facts --container "$BENCH_HOST" --out "$RUNS/facts.json"

previous=""
for config in $BENCH_CONFIGS; do
  tags=()
  if [ -n "$previous" ] && [ "${AFTER[$config]:-}" = "$previous" ]; then
    tags=(--tags "${NARROW[$config]}")
  fi
  log "$config: converging playbooks/site.yml with benchmarks/configs/${VARS[$config]} ${tags[*]:-(every role)}"
  t0="$(date +%s)"
  # A host left over from an earlier run may still run the hand-written instance.
  hand_written_stop
  # The demo project (the django_app role has no default project).
  if ! ansible-playbook -i "$BENCH_DIR/inventory" -e "@$BENCH_DIR/configs/${VARS[$config]}" "${tags[@]}" \
      -e "django_app_source=$WEBSTACK_ROOT/examples/demo" \
      "$WEBSTACK_ROOT/playbooks/site.yml" >"$RUNS/converge-$config.log" 2>&1; then
    tail -n 40 "$RUNS/converge-$config.log" >&2
    die "$config: site.yml failed (full log: $RUNS/converge-$config.log)"
  fi
  converge_s=$(( $(date +%s) - t0 ))
  log "$config: converged in $converge_s s ($(grep -A1 'PLAY RECAP' "$RUNS/converge-$config.log" | tail -n1 | tr -s ' '))"
  printf '{"config": "%s", "seconds": %d, "tags": "%s"}\n' "$config" "$converge_s" "${tags[1]:-all}" \
    >>"$RUNS/converges.jsonl"
  if [ "$config" = a ]; then hand_written_start; fi
  read -r -a sockets <<<"${SOCKETS[$config]}"
  socket_args=()
  for s in "${sockets[@]}"; do socket_args+=(--socket "$s"); done
  python "$BENCH_DIR/lib/measure.py" --config "$config" --label "${LABEL[$config]}" --describe "${DESCRIBE[$config]}" \
    --container "$BENCH_HOST" --url "$BENCH_URL" "${socket_args[@]}" --expect-instances "${#sockets[@]}" \
    --concurrency "$BENCH_CONCURRENCY" --duration "$BENCH_DURATION" --cpu-ms "$BENCH_CPU_MS" \
    --out-dir "$RUNS" || die "$config: the measurement could not be made"
  if [ "$config" = a ]; then
    hand_written_stop
    in_host supervisorctl start uwsgi-web1 >/dev/null || true
  fi
  previous="$config"
done

python "$BENCH_DIR/lib/report.py" balance --runs "$RUNS" --title "Worker balance" \
  --out-prefix "$BENCH_DIR/results/balance" --elapsed "$(( $(date +%s) - started_at ))"
log "results: benchmarks/results/balance.json, balance.md, balance.png (raw runs: $RUNS)"

#!/usr/bin/env bash
# Soak: one uWSGI instance behind nginx under steady load for a long time
# (30 minutes by default) while max-requests and reload-on-rss recycle its
# workers and a small share of the requests (1 % by default) runs past
# harakiri. Checks, from the load generator's record of every request, the
# stats server sampled every few seconds and the instance's uWSGI log:
#   - only the harakiri'd requests fail: every slow request fails, their
#     number equals the harakiri events (log and stats server), no harakiri
#     hit another request, and every other request is 2xx;
#   - recycling is exact: no worker serves a request after one that reached
#     reload-on-rss or max-requests (the instance runs with
#     min-worker-lifetime 0: uWSGI's default of 10 s lets a younger worker
#     serve on past both limits);
#   - RSS is bounded: the largest worker RSS stays below reload-on-rss plus
#     the largest growth of RSS by one request, measured in the same run;
# and reports the worker respawns by cause (max-requests, reload-on-rss,
# harakiri), RSS per worker and per instance over time, and the latency of
# the normal requests. Not part of CI.
#
#   benchmarks/soak.sh      -> benchmarks/results/soak.{json,md,png}
#
# One systemd container, webstack-soak (host network, nginx on 127.0.0.1:18980),
# converged with playbooks/site.yml and benchmarks/soak/inventory.yml; the
# instance's settings come from the environment:
#   SOAK_DURATION (s, 1800), SOAK_RATE (requests/s, 20), SOAK_CONCURRENCY (16),
#   SOAK_SLOW_PERCENT (1), SOAK_HARAKIRI (s, 6), SOAK_MAX_REQUESTS (80),
#   SOAK_RELOAD_ON_RSS (MB, 48), SOAK_HOLD_PERCENT (10), SOAK_HOLD_KB (768),
#   SOAK_PROCESSES (8), SOAK_CPU_MS (5), SOAK_SAMPLE_INTERVAL (s, 5),
#   SOAK_NICE (niceness of the load generator, 10), SOAK_KEEP=1 keeps the
#   container, WEBSTACK_DISTRO (bookworm).
# Requests: slow ones GET /slow?ms=<harakiri * 1000 + 2000> (the demo's view
# that sleeps), SOAK_HOLD_PERCENT % GET /hold?kb=SOAK_HOLD_KB (the demo's view
# that keeps that memory for the life of its worker: a leak for reload-on-rss
# to catch), the others GET /cpu?ms=SOAK_CPU_MS. Every request but the slow
# ones must be 2xx. With 1 % slow requests a worker serves 100 requests on
# average before harakiri kills it, so max-requests and the leak's way to
# reload-on-rss are set to be reached within about as many.
# Exits 1 when the soak could not run or when a check failed (the results are
# written either way).
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"

HOST="webstack-soak"
PORT=18980
URL="http://127.0.0.1:$PORT"
DURATION="${SOAK_DURATION:-1800}"
RATE="${SOAK_RATE:-20}"
CONCURRENCY="${SOAK_CONCURRENCY:-16}"
SLOW_PERCENT="${SOAK_SLOW_PERCENT:-1}"
HARAKIRI="${SOAK_HARAKIRI:-6}"
MAX_REQUESTS="${SOAK_MAX_REQUESTS:-80}"
RELOAD_ON_RSS="${SOAK_RELOAD_ON_RSS:-48}"
HOLD_PERCENT="${SOAK_HOLD_PERCENT:-10}"
HOLD_KB="${SOAK_HOLD_KB:-768}"
# uWSGI applies max-requests and reload-on-rss only to workers at least
# min-worker-lifetime seconds old (its default: 10). With 0 both apply after
# every request, so a worker's RSS can pass reload-on-rss only by what its
# last request added, which analyze.py measures from the log.
MIN_WORKER_LIFETIME=0
PROCESSES="${SOAK_PROCESSES:-8}"
CPU_MS="${SOAK_CPU_MS:-5}"
SAMPLE_INTERVAL="${SOAK_SAMPLE_INTERVAL:-5}"
NICE="${SOAK_NICE:-10}"
export WEBSTACK_DISTRO="${WEBSTACK_DISTRO:-bookworm}"

for pair in DURATION:"$DURATION" RATE:"$RATE" CONCURRENCY:"$CONCURRENCY" HARAKIRI:"$HARAKIRI" \
    MAX_REQUESTS:"$MAX_REQUESTS" HOLD_KB:"$HOLD_KB" RELOAD_ON_RSS:"$RELOAD_ON_RSS" \
    PROCESSES:"$PROCESSES" CPU_MS:"$CPU_MS" SAMPLE_INTERVAL:"$SAMPLE_INTERVAL" NICE:"$NICE"; do
  [[ "${pair#*:}" =~ ^[0-9]+$ ]] || die "SOAK_${pair%%:*} must be a whole number, got '${pair#*:}'"
done
[[ "$SLOW_PERCENT" =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v p="$SLOW_PERCENT" 'BEGIN{exit !(p > 0 && p < 100)}' \
  || die "SOAK_SLOW_PERCENT must be a number above 0 and below 100, got '$SLOW_PERCENT'"
[[ "$HOLD_PERCENT" =~ ^[0-9]+(\.[0-9]+)?$ ]] && awk -v p="$SLOW_PERCENT" -v h="$HOLD_PERCENT" 'BEGIN{exit !(p + h < 100)}' \
  || die "SOAK_HOLD_PERCENT must be a number, with SOAK_SLOW_PERCENT below 100 in all, got '$HOLD_PERCENT'"
[ "$HOLD_KB" -le 4096 ] || die "SOAK_HOLD_KB must be at most 4096 (the view's bound), got $HOLD_KB"
[ "$HARAKIRI" -ge 2 ] || die "SOAK_HARAKIRI must be at least 2 seconds, got $HARAKIRI"
SLOW_MS=$(( HARAKIRI * 1000 + 2000 ))
# The demo's /slow view accepts at most 10000 ms.
[ "$SLOW_MS" -le 10000 ] || die "SOAK_HARAKIRI=$HARAKIRI: the slow request (/slow?ms=$SLOW_MS) would exceed the view's 10000 ms; use at most 8"
[ "$CPU_MS" -lt $(( HARAKIRI * 1000 / 4 )) ] || die "SOAK_CPU_MS=$CPU_MS must stay well below harakiri ($HARAKIRI s)"
SLOW_PATH="/slow?ms=$SLOW_MS"
NORMAL_PATH="/cpu?ms=$CPU_MS"
HOLD_PATH="/hold?kb=$HOLD_KB"

RESULTS="$WEBSTACK_ROOT/benchmarks/results"
INVENTORY="$WEBSTACK_ROOT/benchmarks/soak/inventory.yml"
# The raw record stays in build/ for a second look (benchmarks/soak/analyze.py).
WORK="$WEBSTACK_ROOT/build/soak"
PROBE_DIR=/root/webstack-soak-probe
STATS=/run/uwsgi/web1/stats.sock
UWSGI_LOG=/var/log/uwsgi/web1.log
SAMPLER_PID=""
platforms="{\"molecule_yml\": {\"platforms\": [{\"name\": \"$HOST\"}]}, \"molecule_scenario_name\": \"soak\"}"
in_host() { docker exec "$HOST" "$@"; }

cleanup() {
  local status=$?
  if [ -n "$SAMPLER_PID" ] && kill -0 "$SAMPLER_PID" 2>/dev/null; then
    kill -TERM "$SAMPLER_PID" 2>/dev/null || true
    wait "$SAMPLER_PID" 2>/dev/null || true
  fi
  if [ "${SOAK_KEEP:-0}" = 1 ]; then
    log "SOAK_KEEP=1: keeping the container $HOST (remove it: docker rm -f $HOST)"
  else
    ansible-playbook "$WEBSTACK_ROOT/molecule/shared/destroy.yml" -e "$platforms" >/dev/null 2>&1 \
      || docker rm -f "$HOST" >/dev/null 2>&1 || true
  fi
  exit "$status"
}

export ANSIBLE_PIPELINING=True
prepare_machine "$WEBSTACK_DISTRO"
trap cleanup EXIT
trap 'exit 130' INT TERM
rm -rf "$WORK"
mkdir -p "$RESULTS" "$WORK"

# One instance of PROCESSES x 1 thread: harakiri kills the whole worker
# process, so with threads > 1 the requests of its other threads would fail
# with the slow one. nginx passes a request whose worker was killed (closed
# without an answer: an `error`) to the next server only within
# uwsgi_next_upstream_timeout, which the nginx_front role sets 1.5 s below
# the instances' harakiri: a harakiri'd request is answered 502 and not
# run again on the upstream's backup entry, so each slow request is exactly
# one harakiri event, which the checks count.
instance="{\"uwsgi_instances\": [{\"name\": \"web1\", \"processes\": $PROCESSES, \"threads\": 1,
  \"harakiri\": $HARAKIRI, \"max_requests\": $MAX_REQUESTS, \"reload_on_rss\": $RELOAD_ON_RSS,
  \"min_worker_lifetime\": $MIN_WORKER_LIFETIME}]}"
log "host $HOST (Debian $WEBSTACK_DISTRO): one instance of $PROCESSES x 1 thread, harakiri $HARAKIRI s, max-requests $MAX_REQUESTS, reload-on-rss $RELOAD_ON_RSS MB, min-worker-lifetime $MIN_WORKER_LIFETIME s"
ansible-playbook "$WEBSTACK_ROOT/molecule/shared/destroy.yml" -e "$platforms" >/dev/null
ansible-playbook "$WEBSTACK_ROOT/molecule/shared/create.yml" -e "$platforms" >/dev/null \
  || die "could not start the container $HOST"
# The demo project (the django_app role has no default project).
ansible-playbook -i "$INVENTORY" -e "django_app_source=$WEBSTACK_ROOT/examples/demo" -e "$instance" \
  "$WEBSTACK_ROOT/playbooks/site.yml" >"$WORK/site.log" 2>&1 \
  || { tail -40 "$WORK/site.log" >&2; die "site.yml failed (full log: $WORK/site.log)"; }

# The collection's stats client (benchmarks/lib/stats_probe.py beside
# plugins/module_utils/uwsgi_stats.py), in the host.
in_host mkdir -p "$PROBE_DIR"
docker cp "$WEBSTACK_ROOT/plugins/module_utils/uwsgi_stats.py" "$HOST:$PROBE_DIR/uwsgi_stats.py" >/dev/null
docker cp "$WEBSTACK_ROOT/benchmarks/lib/stats_probe.py" "$HOST:$PROBE_DIR/stats_probe.py" >/dev/null
in_host python3 "$PROBE_DIR/stats_probe.py" ready "" 120 "$STATS" >/dev/null \
  || die "the workers of web1 are not all accepting 120 s after site.yml"
for attempt in $(seq 1 60); do
  curl -fsS -o /dev/null -H 'Host: localhost' "$URL$NORMAL_PATH" && break
  [ "$attempt" -lt 60 ] || die "nginx on $URL does not answer $NORMAL_PATH"
  sleep 1
done

log_offset="$(in_host stat -c %s "$UWSGI_LOG")"
others="$(docker ps --format '{{.Names}}' | grep -cvx "$HOST" || true)"
note_start="start: $others other containers running, load average $(cut -d' ' -f1-3 /proc/loadavg)"
log "soak: $DURATION s, $RATE requests/s from $CONCURRENCY clients: $SLOW_PERCENT % $SLOW_PATH, $HOLD_PERCENT % $HOLD_PATH, the others $NORMAL_PATH ($note_start)"
# Sampling ends by itself a little after the load (bounded either way).
in_host python3 "$PROBE_DIR/stats_probe.py" sample "$PROBE_DIR/samples.jsonl" $(( DURATION + 20 )) "$SAMPLE_INTERVAL" \
  "$STATS" >"$WORK/sampler.log" 2>&1 &
SAMPLER_PID=$!
normal_weight="$(awk -v p="$SLOW_PERCENT" -v h="$HOLD_PERCENT" 'BEGIN{print 100 - p - h}')"
mix=(--mix "$SLOW_PERCENT:http:$SLOW_PATH" --mix "$normal_weight:http:$NORMAL_PATH")
if [ "$HOLD_PERCENT" != 0 ] && [ "$HOLD_KB" != 0 ]; then mix+=(--mix "$HOLD_PERCENT:http:$HOLD_PATH"); fi
# Niced: the machine is shared; the instance, not the client, is under test.
nice -n "$NICE" python "$WEBSTACK_ROOT/tests/load/loadgen.py" run --url "$URL" --host localhost --out "$WORK/load.json" \
  "${mix[@]}" \
  --concurrency "$CONCURRENCY" --rate "$RATE" --duration "$DURATION" --requests 10000000 \
  --timeout $(( HARAKIRI + 30 )) --pid-file "$WORK/load.pid" >"$WORK/load.log" 2>&1 \
  || die "the load generator failed: $(tail -5 "$WORK/load.log")"
log "load done; waiting for the last stats samples"
wait "$SAMPLER_PID" || die "the stats sampler failed: $(tail -5 "$WORK/sampler.log")"
SAMPLER_PID=""
docker cp "$HOST:$PROBE_DIR/samples.jsonl" "$WORK/samples.jsonl" >/dev/null
docker cp "$HOST:$UWSGI_LOG" "$WORK/web1.log" >/dev/null
note_end="end: load average $(cut -d' ' -f1-3 /proc/loadavg)"

cat >"$WORK/settings.json" <<EOF
{"duration": $DURATION, "rate": $RATE, "concurrency": $CONCURRENCY, "slow_percent": $SLOW_PERCENT,
 "slow_path": "/slow", "slow_path_full": "$SLOW_PATH", "normal_path": "$NORMAL_PATH", "hold_path": "$HOLD_PATH",
 "hold_percent": $HOLD_PERCENT, "harakiri": $HARAKIRI,
 "max_requests": $MAX_REQUESTS, "reload_on_rss": $RELOAD_ON_RSS, "min_worker_lifetime": $MIN_WORKER_LIFETIME,
 "processes": $PROCESSES, "threads": 1, "sample_interval": $SAMPLE_INTERVAL, "nice": $NICE,
 "distro": "$WEBSTACK_DISTRO"}
EOF
status=0
python "$WEBSTACK_ROOT/benchmarks/soak/analyze.py" --load "$WORK/load.json" --samples "$WORK/samples.jsonl" \
  --log "$WORK/web1.log" --log-offset "$log_offset" --settings "$WORK/settings.json" \
  --note "$note_start; $note_end" --out "$RESULTS/soak" || status=$?
log "results: benchmarks/results/soak.json, soak.md, soak.png (raw: $WORK)"
[ "$status" = 0 ] || die "a check failed (see the table above)"

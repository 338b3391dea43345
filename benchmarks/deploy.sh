#!/usr/bin/env bash
# Deploy under load, shared-database topology: a front (nginx), two app hosts
# (two uWSGI instances of 2 workers and one daphne process each) and a data
# host (PostgreSQL, the one database of both app hosts, and Redis, the channel
# layer). Constant traffic through nginx (HTTP views, one of them reading the
# database, and websocket echoes over the Redis channel layer) while:
#   1. supervisorctl restart of every instance on both app hosts (what
#      operators do today);
#   2. uWSGI graceful reload: SIGHUP to each instance's master, both hosts;
#   3. playbooks/rollout.yml (build on both hosts, migrate once, then host by
#      host chain reload, gated);
#   4. systemctl restart postgresql on the data host;
#   5. systemctl restart redis-server on the data host.
# A steady window precedes each one. Per way: requests, non-2xx, connection
# errors, timeouts, p50/p99 in its window against the steady window before the
# first one, its duration and, for 4 and 5, the time until the app is whole
# again and whether any app process was restarted (it must not be).
#   benchmarks/deploy.sh            -> benchmarks/results/deploy.{json,png,md}
# Environment: BENCH_STEADY_SECONDS (default 20), BENCH_RATE (requests/s,
# default 60), BENCH_CONCURRENCY (default 8), BENCH_KEEP=1 keeps the hosts,
# WEBSTACK_DISTRO (default bookworm).
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"

FRONT="webstack-bench-deploy"
APPS=(webstack-bench-deploy-app1 webstack-bench-deploy-app2)
DATA="webstack-bench-deploy-data"
PORT=18880
STEADY="${BENCH_STEADY_SECONDS:-20}"
RATE="${BENCH_RATE:-60}"
CONCURRENCY="${BENCH_CONCURRENCY:-8}"
INSTANCES=(web1 web2)
export WEBSTACK_DISTRO="${WEBSTACK_DISTRO:-bookworm}"
RESULTS="$WEBSTACK_ROOT/benchmarks/results"
INVENTORY="$WEBSTACK_ROOT/benchmarks/deploy/inventory.yml"
# The raw record (every request, marks, logs) stays in build/ for a second look:
#   python benchmarks/deploy/analyze.py --load build/bench-deploy/load.json \
#     --deploys build/bench-deploy/deploys --rollout-log build/bench-deploy/rollout.log --out /tmp/deploy
WORK="$WEBSTACK_ROOT/build/bench-deploy"
LOAD_PID=""
platforms="{\"molecule_yml\": {\"platforms\": [{\"name\": \"$FRONT\"}, {\"name\": \"${APPS[0]}\"}, {\"name\": \"${APPS[1]}\"}, {\"name\": \"$DATA\"}]}, \"molecule_scenario_name\": \"bench-deploy\"}"

cleanup() {
  if [ -n "$LOAD_PID" ] && kill -0 "$LOAD_PID" 2>/dev/null; then
    kill -TERM "$LOAD_PID" 2>/dev/null || true
    wait "$LOAD_PID" 2>/dev/null || true
  fi
  if [ "${BENCH_KEEP:-0}" != 1 ]; then
    ansible-playbook "$WEBSTACK_ROOT/molecule/shared/destroy.yml" -e "$platforms" >/dev/null 2>&1 || true
  fi
}

# What else runs on the machine (other containers, load average): the figures
# are compared within this run, and the note says how quiet the machine was.
machine_note() {
  local others
  others="$(docker ps --format '{{.Names}}' | grep -cv '^webstack-bench-deploy' || true)"
  echo "$1: $others other containers running, load average $(cut -d' ' -f1-3 /proc/loadavg)"
}

# Pipelining as most production setups run Ansible (rollout.yml's duration is reported).
export ANSIBLE_PIPELINING=True
prepare_machine "$WEBSTACK_DISTRO"
trap cleanup EXIT
rm -rf "$WORK"
mkdir -p "$RESULTS" "$WORK"

log "hosts $FRONT, ${APPS[*]}, $DATA (Debian $WEBSTACK_DISTRO), converged with playbooks/site.yml"
ansible-playbook "$WEBSTACK_ROOT/molecule/shared/destroy.yml" -e "$platforms" >/dev/null
ansible-playbook "$WEBSTACK_ROOT/molecule/shared/create.yml" -e "$platforms" >/dev/null
# The demo project (the django_app role has no default project).
ansible-playbook -i "$INVENTORY" -e "django_app_source=$WEBSTACK_ROOT/examples/demo" \
  "$WEBSTACK_ROOT/playbooks/site.yml" >"$WORK/site.log" 2>&1 \
  || { tail -40 "$WORK/site.log" >&2; die "site.yml failed"; }

# The collection's stats client, copied into every app host after site.yml
# (benchmarks/lib/stats_probe.py beside plugins/module_utils/uwsgi_stats.py).
PROBE_DIR=/root/webstack-bench-probe
install_probe() {
  local host
  for host in "${APPS[@]}"; do
    docker exec "$host" mkdir -p "$PROBE_DIR"
    docker cp "$WEBSTACK_ROOT/plugins/module_utils/uwsgi_stats.py" "$host:$PROBE_DIR/uwsgi_stats.py" >/dev/null
    docker cp "$WEBSTACK_ROOT/benchmarks/lib/stats_probe.py" "$host:$PROBE_DIR/stats_probe.py" >/dev/null
  done
}
stats_sockets() { printf '/run/uwsgi/%s/stats.sock\n' "${INSTANCES[@]}"; }

# app_pids: "host:what:pid" of every uWSGI worker and daphne process of
# both app hosts, one a line, sorted.
app_pids() {
  local host
  for host in "${APPS[@]}"; do
    # shellcheck disable=SC2046  # one argument per socket path
    docker exec "$host" python3 "$PROBE_DIR/stats_probe.py" pids $(stats_sockets) | awk -v h="$host" '{print h ":" $1 "-" $2 ":" $3}'
    docker exec "$host" supervisorctl status | awk -v h="$host" '$1 ~ /^daphne/ && $3 == "pid" {sub(",", "", $4); print h ":" $1 ":" $4}'
  done | sort
}

# ready [OLD_PIDS]: on every app host every worker of every instance has a pid
# and accepts, and none is one of OLD_PIDS (comma-separated "host:pid");
# prints the pids. Bounded: 120 s per host.
ready() {
  local host out old all=""
  for host in "${APPS[@]}"; do
    old="$(tr ',' '\n' <<<"${1:-}" | sed -n "s/^$host://p" | paste -sd, -)"
    # shellcheck disable=SC2046
    out="$(docker exec "$host" python3 "$PROBE_DIR/stats_probe.py" ready "$old" 120 $(stats_sockets))" || return 1
    all="$all${all:+,}$(tr ',' '\n' <<<"$out" | sed "s/^/$host:/" | paste -sd, -)"
  done
  echo "$all"
}

# whole: through the front, GET /db answers 200 and a websocket echo comes
# back, 5 times in a row; bounded: 240 attempts 0.25 s apart (about 60 s).
whole() {
  python - "$PORT" <<'PY'
import http.client, sys, time
sys.path.insert(0, "plugins/module_utils")
import asgi_probe
port = int(sys.argv[1])
row = 0
for attempt in range(240):
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request("GET", "/db", headers={"Host": "localhost"})
        ok = conn.getresponse().status == 200
        conn.close()
        ok = ok and asgi_probe.websocket_echo(("tcp", ("127.0.0.1", port)), "/ws/echo/", timeout=5)["ok"]
    except (OSError, asgi_probe.ProbeError):
        ok = False
    row = row + 1 if ok else 0
    if row == 5:
        sys.exit(0)
    time.sleep(0.25)
sys.exit("the front did not answer /db and the websocket echo 5 times in a row within about 60 s")
PY
}

mark() { python "$WEBSTACK_ROOT/tests/load/loadgen.py" mark --marks "$WORK/marks" "$1"; }
# deploy NAME COMMAND...: mark the window, run the deploy, wait until every
# worker is new and accepts, record the duration, then a steady window.
deploy() {
  local name="$1" started ended old
  shift
  old="$(ready)"
  mark "$name"
  started="$(date +%s.%N)"
  "$@" >"$WORK/$name.log" 2>&1 || { tail -40 "$WORK/$name.log" >&2; die "deploy $name failed"; }
  ready "$old" >/dev/null || die "deploy $name: workers not back"
  ended="$(date +%s.%N)"
  echo "$name $started $ended" >>"$WORK/deploys"
  log "$name: $(python -c "print(round($ended - $started, 1))") s"
  mark "steady-after-$name"
  sleep "$STEADY"
}
# outage NAME COMMAND...: the same for a restart on the data host: the window
# runs until the front serves the database and the channel layer again
# (whole), and the app's processes must be the same before and after.
outage() {
  local name="$1" started ended before restarted=0
  shift
  before="$(app_pids)"
  mark "$name"
  started="$(date +%s.%N)"
  "$@" >"$WORK/$name.log" 2>&1 || { tail -40 "$WORK/$name.log" >&2; die "$name failed"; }
  (cd "$WEBSTACK_ROOT" && whole) >>"$WORK/$name.log" 2>&1 || die "$name: $(tail -1 "$WORK/$name.log")"
  ended="$(date +%s.%N)"
  [ "$(app_pids)" = "$before" ] || restarted=1
  echo "$name $started $ended app_restarted=$restarted" >>"$WORK/deploys"
  log "$name: whole after $(python -c "print(round($ended - $started, 1))") s, app processes restarted: $restarted"
  mark "steady-after-$name"
  sleep "$STEADY"
}

supervisor_restart() {
  local host
  for host in "${APPS[@]}"; do
    docker exec "$host" supervisorctl restart "${INSTANCES[@]/#/uwsgi-}"
  done
}
sighup() {
  local host name
  for host in "${APPS[@]}"; do
    for name in "${INSTANCES[@]}"; do
      docker exec "$host" sh -c "kill -HUP \"\$(supervisorctl pid uwsgi-$name)\""
    done
  done
}
rollout() {
  # profile_tasks stamps every task with the time: analyze.py finds where the
  # switch (the flip of `current`) started, after the release was built.
  ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks ansible-playbook -i "$INVENTORY" "$WEBSTACK_ROOT/playbooks/rollout.yml" \
    -e rollout_source="$WEBSTACK_ROOT/examples/demo" -e "rollout_release_id=bench-$(date +%s)"
}
postgresql_restart() { docker exec "$DATA" systemctl restart postgresql; }
redis_restart() { docker exec "$DATA" systemctl restart redis-server; }

install_probe
ready >/dev/null || die "workers not accepting after site.yml"
(cd "$WEBSTACK_ROOT" && whole) || die "the front does not serve /db and the websocket echo after site.yml"
note_start="$(machine_note start)"
log "load: $RATE requests/s, $CONCURRENCY clients, /cpu?ms=2, /healthz, /db and /ws/echo/ through nginx on 127.0.0.1:$PORT"
python "$WEBSTACK_ROOT/tests/load/loadgen.py" run --url "http://127.0.0.1:$PORT" --out "$WORK/load.json" \
  --mix 3:http:/cpu?ms=2 --mix 1:http:/healthz --mix 1:http:/db --mix 1:ws:/ws/echo/ \
  --concurrency "$CONCURRENCY" --rate "$RATE" \
  --duration 5400 --requests 400000 --marks "$WORK/marks" --pid-file "$WORK/load.pid" >"$WORK/load.log" 2>&1 &
LOAD_PID=$!
mark "steady-before-supervisor-restart"
sleep "$STEADY"
deploy supervisor-restart supervisor_restart
deploy sighup sighup
deploy rollout rollout
outage postgresql-restart postgresql_restart
outage redis-restart redis_restart
kill -0 "$LOAD_PID" 2>/dev/null || die "the load generator stopped before the last deploy: $(tail -5 "$WORK/load.log")"
kill -TERM "$LOAD_PID"
wait "$LOAD_PID" || die "the load generator failed: $(tail -5 "$WORK/load.log")"
LOAD_PID=""

python "$WEBSTACK_ROOT/benchmarks/deploy/analyze.py" --load "$WORK/load.json" --deploys "$WORK/deploys" \
  --rollout-log "$WORK/rollout.log" --note "$note_start; $(machine_note end)" --out "$RESULTS/deploy"

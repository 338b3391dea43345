#!/usr/bin/env bash
# Deploy under load: constant traffic through nginx while the two uWSGI
# instances of one host are deployed three ways, one after the other, in one
# run:
#   1. supervisorctl restart of every instance (what operators do today);
#   2. uWSGI graceful reload: SIGHUP to each instance's master;
#   3. playbooks/rollout.yml (chain reload, instance by instance, gated).
# A steady window precedes each deploy. Per way: requests, non-2xx,
# connection errors, timeouts, p50/p99 in the deploy window against the
# steady window before it, and the deploy's duration.
#   benchmarks/deploy.sh            -> benchmarks/results/deploy.{json,png,md}
# Environment: BENCH_STEADY_SECONDS (default 20), BENCH_RATE (requests/s,
# default 60), BENCH_CONCURRENCY (default 8), BENCH_KEEP=1 keeps the host,
# WEBSTACK_DISTRO (default bookworm).
source "$(dirname "${BASH_SOURCE[0]}")/../tools/lib.sh"

HOST="webstack-bench-deploy"
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
platforms="{\"molecule_yml\": {\"platforms\": [{\"name\": \"$HOST\"}]}}"

cleanup() {
  if [ -n "$LOAD_PID" ] && kill -0 "$LOAD_PID" 2>/dev/null; then
    kill -TERM "$LOAD_PID" 2>/dev/null || true
    wait "$LOAD_PID" 2>/dev/null || true
  fi
  if [ "${BENCH_KEEP:-0}" != 1 ]; then
    ansible-playbook "$WEBSTACK_ROOT/molecule/shared/destroy.yml" -e "$platforms" >/dev/null 2>&1 || true
  fi
}

# Pipelining as most production setups run Ansible (rollout.yml's duration is reported).
export ANSIBLE_PIPELINING=True
bash "$WEBSTACK_ROOT/tools/venv.sh"
use_venv
link_collection
bash "$WEBSTACK_ROOT/tools/docker.sh"
bash "$WEBSTACK_ROOT/tests/images/build.sh" "$WEBSTACK_DISTRO"
trap cleanup EXIT
rm -rf "$WORK"
mkdir -p "$RESULTS" "$WORK"

log "host $HOST (Debian $WEBSTACK_DISTRO), converged with playbooks/site.yml"
ansible-playbook "$WEBSTACK_ROOT/molecule/shared/destroy.yml" -e "$platforms" >/dev/null
ansible-playbook "$WEBSTACK_ROOT/molecule/shared/create.yml" -e "$platforms" >/dev/null
# The demo project (the django_app role has no default project).
ansible-playbook -i "$INVENTORY" -e "django_app_source=$WEBSTACK_ROOT/examples/demo" \
  "$WEBSTACK_ROOT/playbooks/site.yml" >"$WORK/site.log" 2>&1 \
  || { tail -40 "$WORK/site.log" >&2; die "site.yml failed"; }

# ready [OLD_PIDS]: every worker of every instance has a pid and accepts, and
# none is one of OLD_PIDS (comma-separated); prints the pids. Bounded: 240
# polls of 0.5 s.
ready() {
  docker exec "$HOST" python3 - "${1:-}" "${INSTANCES[@]}" <<'PY'
import json, socket, sys, time
def stats(name):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(f"/run/uwsgi/{name}/stats.sock")
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return json.loads(data)
        data += chunk
old = {int(p) for p in sys.argv[1].split(",") if p}
for _ in range(240):
    try:
        workers = [w for n in sys.argv[2:] for w in stats(n)["workers"]]
        if all(w["pid"] > 0 and w["accepting"] and w["pid"] not in old for w in workers):
            print(",".join(str(w["pid"]) for w in workers))
            sys.exit(0)
    except (OSError, ValueError):
        pass
    time.sleep(0.5)
sys.exit("workers not all new and accepting after 120 s")
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
  ready "$old" >/dev/null
  ended="$(date +%s.%N)"
  echo "$name $started $ended" >>"$WORK/deploys"
  log "$name: $(python -c "print(round($ended - $started, 1))") s"
  mark "steady-after-$name"
  sleep "$STEADY"
}

supervisor_restart() {
  docker exec "$HOST" supervisorctl restart "${INSTANCES[@]/#/uwsgi-}"
}
sighup() {
  local name
  for name in "${INSTANCES[@]}"; do
    docker exec "$HOST" sh -c "kill -HUP \"\$(supervisorctl pid uwsgi-$name)\""
  done
}
rollout() {
  # profile_tasks stamps every task with the time: analyze.py finds where the
  # switch (the flip of `current`) started, after the release was built.
  ANSIBLE_CALLBACKS_ENABLED=ansible.posix.profile_tasks ansible-playbook -i "$INVENTORY" "$WEBSTACK_ROOT/playbooks/rollout.yml" \
    -e rollout_source="$WEBSTACK_ROOT/examples/demo" -e "rollout_release_id=bench-$(date +%s)"
}

ready >/dev/null
log "load: $RATE requests/s, $CONCURRENCY clients, /cpu?ms=2 and /healthz through nginx on 127.0.0.1:$PORT"
python "$WEBSTACK_ROOT/tests/load/loadgen.py" run --url "http://127.0.0.1:$PORT" --out "$WORK/load.json" \
  --mix 3:http:/cpu?ms=2 --mix 1:http:/healthz --concurrency "$CONCURRENCY" --rate "$RATE" \
  --duration 1500 --marks "$WORK/marks" --pid-file "$WORK/load.pid" >"$WORK/load.log" 2>&1 &
LOAD_PID=$!
mark "steady-before-supervisor-restart"
sleep "$STEADY"
deploy supervisor-restart supervisor_restart
deploy sighup sighup
deploy rollout rollout
kill -TERM "$LOAD_PID"
wait "$LOAD_PID" || die "the load generator failed: $(tail -5 "$WORK/load.log")"
LOAD_PID=""

python "$WEBSTACK_ROOT/benchmarks/deploy/analyze.py" --load "$WORK/load.json" --deploys "$WORK/deploys" \
  --rollout-log "$WORK/rollout.log" --out "$RESULTS/deploy"

#!/usr/bin/env bash
# The main job on an embedded default: a local systemd container of Debian
# (WEBSTACK_DISTRO, default bookworm) as the target host, the demo project, and
# playbooks/site.yml run against it with the example inventory.
#   tools/demo.sh            converge (again) and print where the stack answers
#   tools/demo.sh destroy    remove the demo container
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEMO_HOST="webstack-demo"
DEMO_PORT="${WEBSTACK_DEMO_PORT:-8080}"
export WEBSTACK_DISTRO="${WEBSTACK_DISTRO:-bookworm}"

bash "$WEBSTACK_ROOT/tools/venv.sh"
use_venv
link_collection

platforms="{\"molecule_yml\": {\"platforms\": [{\"name\": \"$DEMO_HOST\"}]}}"
if [ "${1:-}" = destroy ]; then
  ansible-playbook "$WEBSTACK_ROOT/molecule/shared/destroy.yml" -e "$platforms"
  exit 0
fi

bash "$WEBSTACK_ROOT/tools/docker.sh"
bash "$WEBSTACK_ROOT/tests/images/build.sh" "$WEBSTACK_DISTRO"

log "starting the demo host $DEMO_HOST (Debian $WEBSTACK_DISTRO, systemd, host network)"
ansible-playbook "$WEBSTACK_ROOT/molecule/shared/create.yml" -e "$platforms"

# How to reach the container: host variables of the demo host only (extra vars
# would also apply to the tasks the roles delegate to the controller).
connection="$WEBSTACK_ROOT/build/demo-connection.yml"
mkdir -p "$(dirname "$connection")"
cat >"$connection" <<YAML
all:
  hosts:
    $DEMO_HOST:
      ansible_connection: community.docker.docker
      ansible_python_interpreter: /usr/bin/python3
      # systemd cannot set up the Redis unit's namespaces in an unprivileged container.
      redis_systemd_sandbox: false
YAML

log "running playbooks/site.yml against it"
ansible-playbook -i "$WEBSTACK_ROOT/examples/inventory" -i "$connection" \
  -e nginx_front_listen_port="$DEMO_PORT" \
  "$WEBSTACK_ROOT/playbooks/site.yml"

log "checking that the stack answers"
for _ in $(seq 1 30); do
  if body="$(curl -fsS --max-time 5 "http://127.0.0.1:$DEMO_PORT/healthz")"; then
    cat <<MSG

The demo stack answers:
  http://127.0.0.1:$DEMO_PORT/            the demo page (websocket echo at /ws/echo/)
  http://127.0.0.1:$DEMO_PORT/healthz     $body
Inside the host:  docker exec -it $DEMO_HOST bash   (supervisorctl status, uwsgitop /run/uwsgi/web1/stats.sock)
Remove it:        bash tools/demo.sh destroy
MSG
    exit 0
  fi
  sleep 1
done
die "the stack did not answer on http://127.0.0.1:$DEMO_PORT/healthz within 30 s"

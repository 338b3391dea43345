#!/usr/bin/env bash
# Make sure a Docker engine answers. A running daemon is never touched.
# On Debian/Ubuntu as root, install docker.io from the distro and start
# dockerd in the background when none answers; elsewhere say what to do.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

docker_answers() { command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; }

if docker_answers; then
  log "Docker engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
  exit 0
fi

if [ -S /var/run/docker.sock ] && pgrep -x dockerd >/dev/null 2>&1; then
  die "a dockerd runs but does not answer on /var/run/docker.sock; fix it (this script never touches a running daemon)"
fi

is_debian_like() { [ -r /etc/os-release ] && grep -Eq '^(ID|ID_LIKE)=.*(debian|ubuntu)' /etc/os-release; }
if [ "$(id -u)" != 0 ] || ! is_debian_like; then
  die "no Docker engine answers. Install and start one (Debian/Ubuntu: apt-get install docker.io), or run this as root on Debian/Ubuntu and it will do so"
fi

if ! command -v dockerd >/dev/null 2>&1; then
  log "installing docker.io from the distribution"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq docker.io >/dev/null
fi

# Prefer the init system when there is one; a container or CI machine has none.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
  log "starting docker with systemd"
  systemctl start docker
else
  mkdir -p "$WEBSTACK_CACHE"
  log "starting dockerd in the background (log: $WEBSTACK_CACHE/dockerd.log)"
  nohup dockerd >"$WEBSTACK_CACHE/dockerd.log" 2>&1 </dev/null &
  echo $! >"$WEBSTACK_CACHE/dockerd.pid"
fi

for _ in $(seq 1 60); do
  if docker_answers; then
    log "Docker engine answers ($(docker version --format '{{.Server.Version}}' 2>/dev/null))"
    exit 0
  fi
  sleep 1
done
die "dockerd did not answer within 60 s; see $WEBSTACK_CACHE/dockerd.log"

#!/usr/bin/env bash
# Build the systemd test images for Debian 12 (bookworm) and 13 (trixie)
# without any container registry: debootstrap a minimal root, finish it in a
# chroot, then `docker import`. Images are tagged with a hash of this recipe
# and of the CA certificates they trust, and rebuilt only when that changes.
#
#   tests/images/build.sh [bookworm] [trixie]      (default: both)
#
# Extra CA certificates of the build machine (/usr/local/share/ca-certificates)
# are trusted inside the image, and pip is told to use the system bundle, so
# the images work behind an intercepting corporate proxy.
source "$(dirname "${BASH_SOURCE[0]}")/../../tools/lib.sh"

IMAGE_REPO="${WEBSTACK_IMAGE_REPO:-webstack-django-uwsgi/debian}"
MIRROR="${WEBSTACK_DEBIAN_MIRROR:-http://deb.debian.org/debian}"
SECURITY_MIRROR="${WEBSTACK_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}"
CA_DIR="${WEBSTACK_EXTRA_CA_DIR:-/usr/local/share/ca-certificates}"
PACKAGES="systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,iproute2,procps,curl,sudo,locales"

recipe_hash() {
  local release="$1"
  {
    cat "${BASH_SOURCE[0]}"
    echo "$release $MIRROR $SECURITY_MIRROR $PACKAGES"
    find "$CA_DIR" -type f -name '*.crt' -print0 2>/dev/null | sort -z | xargs -0r cat
  } | sha256sum | cut -c1-12
}

ensure_tools() {
  command -v debootstrap >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    log "installing debootstrap"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null \
      || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
  else
    die "debootstrap is needed to build the test images (Debian: apt-get install debootstrap), as root"
  fi
}

build_one() {
  local release="$1" hash tag root
  hash="$(recipe_hash "$release")"
  tag="$IMAGE_REPO:$release-$hash"
  if docker image inspect "$tag" >/dev/null 2>&1; then
    log "image $tag is cached"
    docker tag "$tag" "$IMAGE_REPO:$release"
    return 0
  fi
  ensure_tools
  [ "$(id -u)" = 0 ] || die "building test images needs root (debootstrap, chroot)"
  root="$(mktemp -d "${TMPDIR:-/tmp}/webstack-image-$release.XXXXXX")"
  # shellcheck disable=SC2064
  trap "rm -rf '$root'" RETURN
  log "debootstrap $release into $root"
  debootstrap --variant=minbase --include="$PACKAGES" "$release" "$root" "$MIRROR" \
    >"$root.log" 2>&1 || { tail -n 30 "$root.log" >&2; rm -f "$root.log"; die "debootstrap $release failed"; }
  rm -f "$root.log"

  # apt sources: main, updates and security, in deb822 form.
  rm -f "$root/etc/apt/sources.list"
  cat >"$root/etc/apt/sources.list.d/debian.sources" <<SRC
Types: deb
URIs: $MIRROR
Suites: $release $release-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: $SECURITY_MIRROR
Suites: $release-security
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC

  # Trust the build machine's extra CA certificates; pip uses the system bundle.
  if compgen -G "$CA_DIR/*.crt" >/dev/null; then
    cp "$CA_DIR"/*.crt "$root/usr/local/share/ca-certificates/"
  fi
  chroot "$root" update-ca-certificates >/dev/null 2>&1
  printf '[global]\ncert = /etc/ssl/certs/ca-certificates.crt\n' >"$root/etc/pip.conf"

  # systemd in a container: no getty, no udev, no kernel-facing units.
  for unit in getty.target console-getty.service systemd-udevd.service \
              systemd-udev-trigger.service systemd-remount-fs.service \
              sys-kernel-debug.mount sys-kernel-tracing.mount \
              systemd-firstboot.service systemd-networkd-wait-online.service; do
    ln -sf /dev/null "$root/etc/systemd/system/$unit"
  done
  ln -sf /lib/systemd/system/multi-user.target "$root/etc/systemd/system/default.target"
  # As in Debian's own container images: package scripts do not start daemons.
  # Test hosts share the machine's network, so a freshly installed nginx must
  # not grab port 80 before its role has written the site; roles start what
  # they manage themselves.
  printf '#!/bin/sh\nexit 101\n' >"$root/usr/sbin/policy-rc.d"
  chmod 0755 "$root/usr/sbin/policy-rc.d"
  echo 'en_US.UTF-8 UTF-8' >"$root/etc/locale.gen"
  chroot "$root" locale-gen >/dev/null 2>&1 || true
  : >"$root/etc/machine-id"
  chroot "$root" apt-get clean
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/*.bin
  # No package lists are shipped: date the empty lists directory to the epoch so
  # that apt's cache_valid_time sees them as stale, as on any host whose lists
  # are old, instead of as fresh from the build.
  touch -d @0 "$root/var/lib/apt/lists"

  log "importing $tag"
  tar -C "$root" -c . | docker import \
    --change 'ENV container=docker' \
    --change 'ENV LANG=C.UTF-8' \
    --change 'CMD ["/lib/systemd/systemd"]' \
    - "$tag" >/dev/null
  docker tag "$tag" "$IMAGE_REPO:$release"
  log "built $tag"
}

releases=("$@")
[ "${#releases[@]}" -gt 0 ] || releases=(bookworm trixie)
for release in "${releases[@]}"; do
  case "$release" in
    bookworm|trixie) build_one "$release" ;;
    *) die "unknown release '$release' (supported: bookworm, trixie)" ;;
  esac
done

#!/usr/bin/env bash
# Packaging checks (a stage of tools/test.sh):
#   tools/package.sh
# 1. Changelog: antsibull-changelog lints the fragments in changelogs/fragments/
#    and changelogs/changelog.yaml, and CHANGELOG.md must be exactly what
#    changelog.yaml renders (`antsibull-changelog generate` into a scratch
#    file, then diff). Fragments that no release records yet are listed; they
#    join the release of galaxy.yml's version with `antsibull-changelog release`.
# 2. Execution environment: meta/ee-requirements.txt names neither ansible nor
#    ansible-core and pins nothing; the collection tarball is built into
#    build/collection, `ansible-builder create` turns execution-environment.yml
#    into build/ee-context, and the context must install this tarball (with its
#    meta/execution-environment.yml) and the requirements the collection
#    declares, which ansible-builder's introspection must find in the tarball.
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
use_venv
cd "$WEBSTACK_ROOT"

scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# The venv's Python (PyYAML comes with ansible-core); values reach it through
# the environment.
py() { python -c "$@"; }

read -r namespace name version < <(py 'import yaml; g = yaml.safe_load(open("galaxy.yml")); print(g["namespace"], g["name"], g["version"])')
tarball="$namespace-$name-$version.tar.gz"
export PACKAGE_VERSION="$version" PACKAGE_TARBALL="$tarball"

log "antsibull-changelog lint (changelogs/fragments)"
antsibull-changelog lint
log "antsibull-changelog lint-changelog-yaml"
antsibull-changelog lint-changelog-yaml --strict changelogs/changelog.yaml

log "CHANGELOG.md is what changelogs/changelog.yaml renders"
antsibull-changelog generate --output "$scratch/CHANGELOG.md"
if ! diff -u CHANGELOG.md "$scratch/CHANGELOG.md"; then
  die "CHANGELOG.md differs from what changelogs/changelog.yaml renders (diff above): regenerate it with 'antsibull-changelog generate', never edit it by hand"
fi

log "fragments not recorded in changelogs/changelog.yaml yet"
py '
import os, pathlib, yaml
changes = yaml.safe_load(open("changelogs/changelog.yaml"))
known = {f for release in (changes.get("releases") or {}).values() for f in release.get("fragments", [])}
pending = sorted(p.name for p in pathlib.Path("changelogs/fragments").iterdir()
                 if p.suffix in (".yml", ".yaml") and p.name not in known)
for name in pending:
    print("  pending: changelogs/fragments/" + name)
print("  %d pending; antsibull-changelog release records them into %s" % (len(pending), os.environ["PACKAGE_VERSION"])
      if pending else "  none: CHANGELOG.md lists every fragment")
'

log "meta/ee-requirements.txt: no ansible, no ansible-core, no pins"
py '
import re, sys
bad = []
for number, line in enumerate(open("meta/ee-requirements.txt"), 1):
    line = line.split("#", 1)[0].strip()
    if not line:
        continue
    if re.match(r"(?i)ansible(-core|-base)?\s*([<>=!~;\[]|$)", line) or "==" in line or "<" in line:
        bad.append("meta/ee-requirements.txt:%d: %s" % (number, line))
if bad:
    sys.exit("\n".join(bad) + "\nansible and ansible-core come from the EE definition, never from a collection; other requirements take a lower bound at most")
'

log "collection tarball ($tarball) into build/collection"
rm -rf build/collection
ansible-galaxy collection build --force --output-path build/collection . >/dev/null
[ -f "build/collection/$tarball" ] || die "ansible-galaxy did not write build/collection/$tarball"
tar -tzf "build/collection/$tarball" >"$scratch/tarball.list"
for member in meta/runtime.yml meta/execution-environment.yml meta/ee-requirements.txt meta/ee-bindep.txt; do
  grep -qx "$member" "$scratch/tarball.list" || die "the tarball does not ship $member"
done

log "execution-environment.yml installs $tarball"
py '
import os, sys, yaml
ee = yaml.safe_load(open("execution-environment.yml"))
want = os.environ["PACKAGE_TARBALL"]
if ee.get("version") != 3:
    sys.exit("execution-environment.yml: version must be 3 (ansible-builder 3 format)")
names = [c.get("name", "") for c in ee["dependencies"]["galaxy"]["collections"]]
srcs = [f.get("src", "") for f in ee.get("additional_build_files", [])]
if not any(n.endswith("/" + want) for n in names) or not any(s.endswith("/" + want) for s in srcs):
    sys.exit("execution-environment.yml must install and copy %s (galaxy.yml version %s): found %s, %s"
             % (want, os.environ["PACKAGE_VERSION"], names, srcs))
'

log "ansible-builder create (build/ee-context)"
rm -rf build/ee-context
ansible-builder create -f execution-environment.yml -c build/ee-context --output-filename Containerfile
ctx=build/ee-context
[ -f "$ctx/Containerfile" ] || die "ansible-builder wrote no $ctx/Containerfile"
cmp -s "build/collection/$tarball" "$ctx/_build/collections/$tarball" || die "$ctx/_build/collections/$tarball is not the tarball just built"
grep -q "collections/$tarball" "$ctx/_build/requirements.yml" || die "$ctx/_build/requirements.yml does not name collections/$tarball"
for step in '^ARG EE_BASE_IMAGE=' '^FROM \$EE_BASE_IMAGE' '^COPY _build /build' \
  'ansible-galaxy collection install .*-r requirements\.yml' 'introspect\.py introspect' 'install-from-bindep'; do
  grep -Eq "$step" "$ctx/Containerfile" || die "$ctx/Containerfile has no step matching: $step"
done

log "ansible-builder introspect: the tarball declares meta/ee-requirements.txt and meta/ee-bindep.txt"
colls="$scratch/collections"
ANSIBLE_COLLECTIONS_PATH="$colls" ansible-galaxy collection install --offline -p "$colls" "build/collection/$tarball" >/dev/null
ansible-builder introspect "$colls" --write-pip "$scratch/pip.txt" --write-bindep "$scratch/bindep.txt" >/dev/null
for kind in requirements:pip bindep:bindep; do
  file="meta/ee-${kind%%:*}.txt"
  sed -e 's/[[:space:]]*#.*//' -e '/^[[:space:]]*$/d' "$file" | sort >"$scratch/want"
  touch "$scratch/${kind#*:}.txt"
  sed -n "s/[[:space:]]*# from collection $namespace\.$name\$//p" "$scratch/${kind#*:}.txt" | sort >"$scratch/got"
  diff -u "$scratch/want" "$scratch/got" || die "ansible-builder introspect does not report $file as the collection's requirements (diff above)"
done

log "execution environment build context: $ctx/Containerfile"
echo "  base image (EE_BASE_IMAGE default): $(sed -n 's/^ARG EE_BASE_IMAGE="\(.*\)"$/\1/p' "$ctx/Containerfile")"
echo "  collection: $ctx/_build/collections/$tarball"
echo "  controller requirements: $(sed 's/[[:space:]]*#.*//' "$scratch/pip.txt" "$scratch/bindep.txt" | paste -sd' ')"
echo "  build it: podman build -t webstack-django-uwsgi-ee $ctx (--build-arg EE_BASE_IMAGE=<image> for another base)"

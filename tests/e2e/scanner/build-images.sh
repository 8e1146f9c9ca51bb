#!/usr/bin/env bash
# Builds the scanner's real test images as OCI image layouts, with what each layer
# installed according to the package managers themselves.
#
#   tests/e2e/scanner/build-images.sh OUT
#
# Runs as root (mmdebstrap --mode=root, umoci, dpkg --root); reaches only the Debian
# mirror the machine's apt sources name and the package registries that pip, npm,
# go and cargo are already configured for. OUT must not exist; it is created whole
# or not at all. For each image:
#   OUT/IMAGE/oci/          an OCI image layout holding that one image (umoci, gzip layers)
#   OUT/IMAGE/truth/N.tsv   packages once layers 1..N are applied (truth.py: dpkg-query,
#                           pip list, npm ls, go version -m, cargo metadata)
#   OUT/IMAGE/notes         what the layers did, for people
# The images:
#   debian      1 layer: mmdebstrap --variant=minbase bookworm
#   apps        debian + a venv with pinned pip packages + an npm tree (express, lodash)
#               + a Go binary (google/uuid, x/text) + a Rust binary built with
#               cargo-auditable (itoa, serde): 5 layers
#   multilayer  debian + a venv (idna, six, certifi) + a layer where dpkg upgrades a
#               package to the version the machine's apt sources have and purges another
#               + a layer where pip upgrades idna and uninstalls six: 4 layers
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=tests/e2e/lib.sh
source "$HERE/../lib.sh"

OUT="${1:?usage: $0 OUT}"
[ ! -e "$OUT" ] || { echo "$OUT exists" >&2; exit 2; }
[ "$(id -u)" -eq 0 ] || { echo "build-images.sh must run as root (mmdebstrap, dpkg --root)" >&2; exit 2; }

# Pinned so that the images only change when this file does.
PY_APPS=(requests==2.32.3 urllib3==2.2.3 idna==3.10 certifi==2024.8.30 charset-normalizer==3.4.0 PyYAML==6.0.2)
PY_MULTI=(idna==3.7 six==1.16.0 certifi==2024.8.30)
PY_MULTI_UPGRADE=idna==3.10
PY_MULTI_REMOVE=six
NPM_APPS=(express@4.21.2 lodash@4.17.21)
GO_REQUIRES=("github.com/google/uuid v1.6.0" "golang.org/x/text v0.21.0")

# The venv of scripts/install-test-deps: its pip installs into the image's venv.
PY="$TOOLS/venv/bin/python3"
PIP="$TOOLS/venv/bin/pip"
for tool in mmdebstrap umoci dpkg-query apt-get npm go cargo cargo-auditable "$PY" "$PIP"; do
    command -v "$tool" >/dev/null || { echo "$tool is missing: run scripts/install-test-deps" >&2; exit 2; }
done
export DEBIAN_FRONTEND=noninteractive npm_config_update_notifier=false npm_config_fund=false \
    npm_config_audit=false PIP_DISABLE_PIP_VERSION_CHECK=1

# Built next to OUT so that the layouts' blobs can be hard-linked into it; moved into
# place only when complete.
WORK="$(mktemp -d "$OUT.partial.XXXXXX")"
on_exit "_e2e_rm_tree '$WORK'"
LAYOUT="$WORK/layout"
step() { printf 'build-images: %4ds %s\n' "$SECONDS" "$*" >&2; }


# commit IMAGE BUNDLE N [truth.py args...]: records the truth once layer N is in the
# bundle's root filesystem, then commits the bundle's changes as layer N of IMAGE.
commit() {
    local image="$1" bundle="$2" n="$3"
    shift 3
    mkdir -p "$WORK/out/$image/truth"
    timeout 600 "$PY" "$HERE/truth.py" --root "$bundle/rootfs" --pip "$PIP" "$@" >"$WORK/out/$image/truth/$n.tsv"
    timeout 900 umoci repack --refresh-bundle --image "$LAYOUT:$image" "$bundle"
}

note() { # note IMAGE TEXT
    mkdir -p "$WORK/out/$1"
    printf '%s\n' "$2" >>"$WORK/out/$1/notes"
}

pip_into() { # pip_into ROOTFS pip-args...: pip acting on the image's venv
    local rootfs="$1"
    shift
    timeout 600 "$PIP" --python "$rootfs/opt/venv/bin/python" "$@"
}

# ------------------------------------------------------------------ debian
MIRROR="$(debian_mirror)"
[ -n "$MIRROR" ] || { echo "no apt source names suite bookworm: mmdebstrap needs a Debian mirror" >&2; exit 2; }
step "debian: mmdebstrap minbase bookworm"
timeout 900 mmdebstrap --variant=minbase --mode=root --quiet bookworm "$WORK/rootfs" "$MIRROR"
timeout 60 umoci init --layout "$LAYOUT"
timeout 60 umoci new --image "$LAYOUT:empty"
timeout 300 umoci unpack --image "$LAYOUT:empty" "$WORK/b-debian"
rmdir "$WORK/b-debian/rootfs"
mv "$WORK/rootfs" "$WORK/b-debian/rootfs"
step "debian: umoci repack"
commit debian "$WORK/b-debian" 1
note debian "layer 1: mmdebstrap --variant=minbase bookworm"
PYVER="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
SITE="opt/venv/lib/python$PYVER/site-packages"

# ------------------------------------------------------------------ apps
step "apps: pip, npm, go, cargo-auditable layers"
B="$WORK/b-apps"
R="$B/rootfs"
timeout 300 umoci unpack --image "$LAYOUT:debian" "$B"
mkdir -p "$WORK/out/apps/truth"
cp "$WORK/out/debian/truth/1.tsv" "$WORK/out/apps/truth/1.tsv"
note apps "layer 1: the debian image's layer"

timeout 120 "$PY" -m venv --without-pip "$R/opt/venv"
pip_into "$R" install -q --only-binary=:all: "${PY_APPS[@]}"
commit apps "$B" 2 --site "$SITE"
note apps "layer 2: pip install ${PY_APPS[*]} into /opt/venv"

step "apps: npm install"
mkdir -p "$R/opt/webapp"
timeout 600 npm install --prefix "$R/opt/webapp" --loglevel=error "${NPM_APPS[@]}" >&2
commit apps "$B" 3 --site "$SITE" --npm opt/webapp
note apps "layer 3: npm install ${NPM_APPS[*]} in /opt/webapp"

step "apps: go build"
GOSRC="$WORK/go"
mkdir -p "$GOSRC"
{
    printf 'module example.com/scanapp\n\ngo 1.22\n\nrequire (\n'
    printf '\t%s\n' "${GO_REQUIRES[@]}"
    printf ')\n'
} >"$GOSRC/go.mod"
cat >"$GOSRC/main.go" <<'EOF'
package main

import (
	"fmt"

	"github.com/google/uuid"
	"golang.org/x/text/language"
)

func main() {
	fmt.Println(uuid.NewString(), language.Make("en-US"))
}
EOF
(
    cd "$GOSRC"
    export GOTOOLCHAIN=local GOWORK=off GOFLAGS=-mod=mod CGO_ENABLED=0
    timeout 600 go mod tidy
    # No VCS stamp: the source sits inside this checkout, and with its commit in the
    # build info syft names the main module by a pseudo-version that changes each commit.
    timeout 600 go build -trimpath -buildvcs=false -o "$R/usr/local/bin/scanapp" .
)
commit apps "$B" 4 --site "$SITE" --npm opt/webapp --go usr/local/bin/scanapp
note apps "layer 4: /usr/local/bin/scanapp, go build with ${GO_REQUIRES[*]}"

step "apps: cargo auditable build"
RUSTSRC="$WORK/rust"
mkdir -p "$RUSTSRC/src"
cat >"$RUSTSRC/Cargo.toml" <<'EOF'
[package]
name = "hello-audited"
version = "0.1.0"
edition = "2021"

[dependencies]
itoa = "=1.0.11"
serde = "=1.0.210"

# Not a member of any enclosing workspace.
[workspace]
EOF
cat >"$RUSTSRC/src/main.rs" <<'EOF'
fn describe<T: serde::Serialize>(_: &T) -> &'static str {
    "serializable"
}

fn main() {
    let mut buffer = itoa::Buffer::new();
    println!("{} {}", buffer.format(42u32), describe(&1u8));
}
EOF
(
    cd "$RUSTSRC"
    CARGO_TARGET_DIR="$RUSTSRC/target" timeout 900 cargo auditable build --release --quiet
)
cp "$RUSTSRC/target/release/hello-audited" "$R/usr/local/bin/hello-audited"
commit apps "$B" 5 --site "$SITE" --npm opt/webapp --go usr/local/bin/scanapp --cargo-manifest "$RUSTSRC/Cargo.toml"
note apps "layer 5: /usr/local/bin/hello-audited, cargo auditable build with itoa, serde"

# ------------------------------------------------------------------ multilayer
step "multilayer: pip, dpkg upgrade and purge, pip upgrade and uninstall"
B="$WORK/b-multi"
R="$B/rootfs"
timeout 300 umoci unpack --image "$LAYOUT:debian" "$B"
mkdir -p "$WORK/out/multilayer/truth"
cp "$WORK/out/debian/truth/1.tsv" "$WORK/out/multilayer/truth/1.tsv"
note multilayer "layer 1: the debian image's layer"

timeout 120 "$PY" -m venv --without-pip "$R/opt/venv"
pip_into "$R" install -q --only-binary=:all: "${PY_MULTI[@]}"
commit multilayer "$B" 2 --site "$SITE"
note multilayer "layer 2: pip install ${PY_MULTI[*]} into /opt/venv"

# The upgrade: of the base's packages that are not Essential and that the machine's
# apt sources have in a newer version (the mirror's bookworm-security or -updates
# against mmdebstrap's plain bookworm), the one whose upgrade apt resolves with the
# fewest packages. apt only plans it (-s, against the image's dpkg status); dpkg does it.
STATUS="$R/var/lib/dpkg/status"
apt_sim() { timeout 120 apt-get -s -o Dir::State::status="$STATUS" "$@" 2>/dev/null; }
essential() { dpkg-query --admindir "$R/var/lib/dpkg" -W -f '${Essential}' "$1"; }
best=""
best_count=1000
while read -r pkg; do
    [ "$(essential "$pkg")" = yes ] && continue
    count="$(apt_sim install --only-upgrade "$pkg" | grep -c '^Inst ' || true)"
    if [ "$count" -gt 0 ] && [ "$count" -lt "$best_count" ]; then
        best="$pkg"
        best_count="$count"
        # None can do with fewer.
        [ "$count" = 1 ] && break
    fi
done < <(apt_sim upgrade | awk '/^Inst /{print $2}' | sort)
[ -n "$best" ] || { echo "no package of the base has a newer version in this machine's apt sources: the multilayer image needs one to upgrade" >&2; exit 1; }
# "Inst NAME [OLD] (NEW RELEASE [ARCH])", without [OLD] for a package new to the image.
mapfile -t upgrade < <(apt_sim install --only-upgrade "$best" |
    awk '/^Inst / { for (i = 3; i <= NF; i++) if ($i ~ /^\(/) { v = substr($i, 2); print $2 "=" v; break } }')
declare -A upgraded=()
for spec in "${upgrade[@]}"; do upgraded[${spec%%=*}]=1; done
DEBS="$WORK/debs"
mkdir -p "$DEBS"
# apt downloads as the _apt user: give it a directory it may write to.
chmod 755 "$DEBS"
if id _apt >/dev/null 2>&1; then chown _apt "$DEBS"; fi
(cd "$DEBS" && timeout 600 apt-get download -qq "${upgrade[@]}" >/dev/null)
timeout 600 dpkg --root "$R" --force-confdef --force-confold -i "$DEBS"/*.deb >&2
# The removal: the first package (by name) that is not Essential, not just upgraded,
# and that nothing else installed depends on.
victim=""
while read -r pkg; do
    [ "$(essential "$pkg")" = yes ] && continue
    [ -n "${upgraded[$pkg]:-}" ] && continue
    if [ "$(apt_sim purge "$pkg" | grep -c '^Purg ' || true)" = 1 ]; then
        victim="$pkg"
        break
    fi
done < <(dpkg-query --admindir "$R/var/lib/dpkg" -W -f '${Package}\n' | sort)
[ -n "$victim" ] || { echo "no package of the base can be purged alone" >&2; exit 1; }
timeout 300 dpkg --root "$R" --purge "$victim" >&2
commit multilayer "$B" 3 --site "$SITE"
note multilayer "layer 3: dpkg -i ${upgrade[*]} (apt-get download); dpkg --purge $victim"

pip_into "$R" install -q --only-binary=:all: "$PY_MULTI_UPGRADE"
pip_into "$R" uninstall -q -y "$PY_MULTI_REMOVE"
commit multilayer "$B" 4 --site "$SITE"
note multilayer "layer 4: pip install $PY_MULTI_UPGRADE; pip uninstall $PY_MULTI_REMOVE"

# ------------------------------------------------------------------ export
step "export one layout per image"
for image in debian apps multilayer; do
    timeout 300 "$PY" "$HERE/oci.py" export "$LAYOUT" "$image" "$WORK/out/$image/oci"
    layers="$("$PY" "$HERE/oci.py" layers "$WORK/out/$image/oci" | wc -l)"
    truths="$(find "$WORK/out/$image/truth" -name '*.tsv' | wc -l)"
    [ "$layers" = "$truths" ] || { echo "$image: $layers layers but $truths truth files" >&2; exit 1; }
done
mv "$WORK/out" "$OUT"
step "done: $OUT"

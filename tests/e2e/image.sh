#!/usr/bin/env bash
# Slipway's own container image (the Dockerfile at the repository root, issue 19), built
# by a real Docker Engine, run, pushed into the Slipway it runs and scanned by it.
#
#   tests/e2e/image.sh        (as root: mmdebstrap, Docker Engine)
#
# No public registry is reachable, so the base the Dockerfile names (debian:bookworm-slim)
# is made here: a bookworm minbase root file system from mmdebstrap, imported and tagged
# as that name (kept in target/tools/image-base for a week). The image is built with
# SLIPWAY_BUILD=prebuilt around the binary the test command built (stripped of debug
# information); the Rust build stage itself needs the rust image and is measured by hand
# (README, deployment).
#
#   image       labels, user 10001, VOLUME /var/lib/slipway, HEALTHCHECK, 0.0.0.0:5000
#   healthy     `docker run` of it turns healthy through its own HEALTHCHECK
#   user        the server runs as 10001; the data directory in the volume is 0700
#   push/pull   docker login, push of the image itself into that Slipway, rmi, pull:
#               the same image id
#   scan        `slipway scan` inside the container reads the pushed image's Debian
#               packages from the registry it serves
#   systemd     deploy/systemd/slipway.service passes systemd-analyze verify, silently
#
# Results: target/e2e-results/image-sqlite-fs-<timestamp>/. The last line printed is
# "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend_suite image sqlite-fs
W="$E2E_TMP/work"
mkdir -p "$W"
export RUST_BACKTRACE=0

[ "$(id -u)" -eq 0 ] || { echo "image: needs root (mmdebstrap, Docker Engine)" >&2; exit 2; }
for tool in mmdebstrap objcopy systemd-analyze; do
    command -v "$tool" >/dev/null || { echo "image: $tool missing: run scripts/install-test-deps" >&2; exit 2; }
done

start_dockerd >"$W/dockerd-start.log" 2>&1 || {
    cat "$W/dockerd-start.log" >&2
    exit 1
}

# ------------------------------------------------------------ the base image
BASE_DIR="$TOOLS/image-base"
BASE_TAR="$BASE_DIR/bookworm-minbase.tar"
if [ -z "$(find "$BASE_TAR" -mtime -7 2>/dev/null)" ]; then
    MIRROR="$(debian_mirror)"
    [ -n "$MIRROR" ] || { echo "image: no apt source names bookworm: mmdebstrap needs a Debian mirror" >&2; exit 2; }
    mkdir -p "$BASE_DIR"
    timeout 900 mmdebstrap --variant=minbase --mode=root --format=tar --quiet bookworm "$BASE_TAR.partial" "$MIRROR" ||
        { echo "image: mmdebstrap failed" >&2; exit 1; }
    mv "$BASE_TAR.partial" "$BASE_TAR"
fi
docker import "$BASE_TAR" debian:bookworm-slim >/dev/null

# ------------------------------------------------------------ the build
IMAGE=slipway-e2e:test
CONTEXT="$W/context"
mkdir -p "$CONTEXT/dist"
cp "$REPO_ROOT/Dockerfile" "$REPO_ROOT/.dockerignore" "$CONTEXT/"
objcopy --strip-debug "$E2E_SLIPWAY_BIN" "$CONTEXT/dist/slipway"
DOCKER_BUILDKIT=1 docker build --network none --build-arg SLIPWAY_BUILD=prebuilt -t "$IMAGE" "$CONTEXT" >"$E2E_LOG_DIR/build.log" 2>&1 || {
    tail -n 30 "$E2E_LOG_DIR/build.log" >&2
    exit 1
}

PORT="$(free_port)"
R="127.0.0.1:$PORT"
CONTAINER="slipway-e2e-$$"
# The host's network, so the registry is reached on loopback (the test engine has no
# bridge); the listener is moved from the image's 0.0.0.0:5000 to a free loopback port.
docker run -d --name "$CONTAINER" --network host -e SLIPWAY_LISTEN="$R" -e SLIPWAY_GC__INTERVAL_SECS=0 "$IMAGE" >/dev/null
on_exit "docker rm -f -v '$CONTAINER'"
on_exit "docker logs '$CONTAINER' >'$E2E_LOG_DIR/serve.log' 2>&1"
ALICE_PW="image-e2e-$RANDOM$RANDOM"

image_metadata() {
    local config
    config="$(docker image inspect --format '{{json .Config}}' "$IMAGE")"
    echo "$config" | jq .
    expect_eq "user" "10001:10001" "$(jq -r .User <<<"$config")"
    expect_eq "volume" '["/var/lib/slipway"]' "$(jq -c '.Volumes | keys' <<<"$config")"
    expect_eq "health check" '["CMD","slipway","healthcheck"]' "$(jq -c .Healthcheck.Test <<<"$config")"
    expect_eq "listen" "SLIPWAY_LISTEN=0.0.0.0:5000" "$(jq -r '.Env[] | select(startswith("SLIPWAY_LISTEN="))' <<<"$config")"
    expect_eq "title label" "Slipway" "$(jq -r '.Labels["org.opencontainers.image.title"]' <<<"$config")"
    expect_eq "entrypoint" '["slipway"]' "$(jq -c .Entrypoint <<<"$config")"
}

healthy() {
    local status i
    for i in $(seq 1 60); do
        status="$(docker inspect --format '{{.State.Health.Status}}' "$CONTAINER")"
        echo "after ${i}x2 s: $status"
        if [ "$status" = healthy ]; then
            docker inspect --format '{{json .State.Health.Log}}' "$CONTAINER" | jq -c '.[-1]'
            return 0
        fi
        [ "$(docker inspect --format '{{.State.Running}}' "$CONTAINER")" = true ] || { echo "the container stopped" >&2; return 1; }
        sleep 2
    done
    return 1
}

unprivileged() {
    expect_eq "uid of the server" "10001" "$(docker exec "$CONTAINER" sh -c 'stat -c %u /proc/1')"
    expect_eq "data directory mode" "700 10001" "$(docker exec "$CONTAINER" stat -c '%a %u' /var/lib/slipway)"
    docker exec "$CONTAINER" ls -la /var/lib/slipway
}

push_pull() {
    local id
    id="$(docker image inspect --format '{{.Id}}' "$IMAGE")"
    printf '%s' "$ALICE_PW" | docker exec -i "$CONTAINER" slipway admin create-user alice --email alice@example.com --password-stdin
    docker exec "$CONTAINER" slipway admin verify-email alice
    printf '%s' "$ALICE_PW" | docker login -u alice --password-stdin "$R"
    docker tag "$IMAGE" "$R/alice/slipway:1"
    docker push "$R/alice/slipway:1"
    docker rmi "$R/alice/slipway:1"
    docker pull "$R/alice/slipway:1"
    expect_eq "image id after pull" "$id" "$(docker image inspect --format '{{.Id}}' "$R/alice/slipway:1")"
    # The running container holds the image's layers here, so the pull above fetched the
    # manifest and config only: crane reads every blob back and checks its digest, with
    # the credentials docker login stored.
    crane validate --insecure --remote "$R/alice/slipway:1"
}

scanned() {
    # One advisory, against the base's passwd package (source package shadow), so the scan
    # has a feed to match.
    docker exec -i "$CONTAINER" sh -c 'cat >/tmp/feed.json' <<'EOF'
{"id": "SLIPWAY-E2E-1", "modified": "2026-01-01T00:00:00Z", "summary": "test advisory",
 "affected": [{"package": {"ecosystem": "Debian:12", "name": "shadow"},
               "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1:99"}]}]}]}
EOF
    printf '%s' "$ALICE_PW" | docker exec -i "$CONTAINER" slipway scan --username alice --password-stdin \
        --feed /tmp/feed.json --format cyclonedx --output /tmp/report.json "$R/alice/slipway:1"
    docker exec "$CONTAINER" cat /tmp/report.json >"$W/report.json"
    jq -r '[.components[] | .name] | length' "$W/report.json"
    jq -e '[.vulnerabilities[]? | .id] | index("SLIPWAY-E2E-1") != null' "$W/report.json"
    # The base's Debian packages, read from the image's dpkg database in its layer.
    jq -e '[.components[] | select(.purl // "" | startswith("pkg:deb/debian/"))] | map(.name) | index("libc6") != null' "$W/report.json"
    jq -e '[.components[] | select(.purl // "" | startswith("pkg:deb/debian/"))] | map(.name) | index("passwd") != null' "$W/report.json"
}

systemd_unit() {
    local root="$W/systemd-root" out
    mkdir -p "$root/usr/local/bin" "$root/etc/systemd/system" "$root/usr/lib"
    cp "$CONTEXT/dist/slipway" "$root/usr/local/bin/slipway"
    cp -r /usr/lib/systemd "$root/usr/lib/"
    cp "$REPO_ROOT/deploy/systemd/slipway.service" "$root/etc/systemd/system/"
    out="$(systemd-analyze verify --man=no --root="$root" slipway.service 2>&1)"
    # Unknown or misspelt settings are only warnings to systemd: any output fails.
    [ -z "$out" ] || { echo "$out" >&2; return 1; }
}

check "image: labels, user 10001, volume, health check, 0.0.0.0:5000" image_metadata
check "run: the container turns healthy by its own HEALTHCHECK" healthy
check "run: the server is user 10001; the data directory is 0700" unprivileged
check "docker: login, push of the image itself, rmi, pull: the same id" push_pull
check "scan: slipway scan in the container reads the pushed image's Debian packages" scanned
check "systemd: deploy/systemd/slipway.service verifies" systemd_unit

summary

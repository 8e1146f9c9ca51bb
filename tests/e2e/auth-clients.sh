#!/usr/bin/env bash
# Registry authentication end to end, with REAL clients, against Slipway started
# with authentication enforced (Docker registry token authentication):
#
#   tests/e2e/auth-clients.sh [sqlite-fs|postgres-s3]      (default sqlite-fs)
#
# Accounts are made with `slipway admin` on the running server's data dir and
# database: a publisher organization `acme` (owner olivia, maintainer alice), a
# customer carol, a robot acme+ci with an access token, and for the OCI
# conformance suite an account `conformer` owning the organization
# `conformance` (the namespace of the suite's OCI_REPO1/OCI_REPO2).
#
# What is checked, each step one "ok"/"FAIL" line:
#   docker       login (identity token), push, logout; anonymous pull of an
#                unpublished repository refused; licensed repository: the
#                customer is refused with a message naming the license, allowed
#                after `admin grant`, refused again after `admin revoke`; a
#                robot logged in with its token loses access when the token is
#                revoked (its stored identity token stops working too)
#   skopeo       login, copy/inspect/list-tags with stored and explicit creds,
#                copy between repositories of the org (cross-repo mount, 201)
#   podman       login + pull (vfs storage)
#   crane        auth login + copy between repositories of the organization
#                (cross-repo mount: several scopes in one token request)
#   oras         login + push/pull of an artifact
#   robot token  as a password: push works, refused after revoke-token
#   refusals     wrong password (clear message), push outside one's
#                organization, delete by a maintainer (owners only); a token
#                lacking an action the account holds gets 401
#                insufficient_scope (so clients ask again), not 403
#   public       anonymous pull after `set-access public`
#   conformance  tests/e2e/conformance.sh with OCI_USERNAME/OCI_PASSWORD
#
# Optional: E2E_SKIP="docker conformance" skips whole groups (docker, skopeo,
# podman, crane, oras, robot, refusals, public, conformance).
#
# Results: target/e2e-results/auth-clients-<backend>-<timestamp>/ (every
# check's log, serve.log, the conformance results). The last line printed is
# "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend_suite auth-clients "${1:-}"
W="$E2E_TMP/work"     # everything a check produces
ST="$W/state"         # values handed from one check to later ones (checks run in subshells)
IMG="$W/layout"       # the OCI layout holding the source images
mkdir -p "$W" "$ST"
# The CLI's errors should be one line, not a backtrace.
export RUST_BACKTRACE=0

# Requests are logged (tower_http at debug) so refusals can be traced in serve.log.
SLIPWAY_LOG__FILTER="${E2E_SLIPWAY_LOG_FILTER:-info,tower_http=debug,slipway_registry=debug}" E2E_AUTH_MODE=enforced start_slipway "$BACKEND" >"$W/start.log" 2>&1 || {
    cat "$W/start.log" >&2
    exit 1
}
on_exit "cp '$E2E_SLIPWAY_LOG' '$E2E_LOG_DIR/serve.log'"
R="$REGISTRY"
echo "auth-clients: backend $BACKEND, slipway at http://$R (auth enforced), logs in ${E2E_LOG_DIR#"$REPO_ROOT"/}"

# ------------------------------------------------------------------ helpers
skipped() { case " ${E2E_SKIP:-} " in *" $1 "*) return 0 ;; esac; return 1; }
get() { cat "$ST/$1"; }
# expect_fail OUTFILE CMD...: CMD must fail; its output (stdout+stderr) goes to
# OUTFILE and is echoed into the check's log.
expect_fail() {
    local out="$1" rc=0
    shift
    "$@" >"$out" 2>&1 || rc=$?
    sed 's/^/    > /' "$out"
    if [ "$rc" -eq 0 ]; then
        echo "expected a refusal, but the command succeeded: $*" >&2
        return 1
    fi
    echo "refused as expected (exit $rc)"
}
# expect_text FILE TEXT: the client's output must mention TEXT (case-insensitive).
expect_text() {
    grep -qiF -- "$2" "$1" || { echo "the client's message does not mention '$2'" >&2; return 1; }
    echo "message mentions '$2': $(grep -iF -m1 -- "$2" "$1" | cut -c1-240)"
}
# The admin CLI on the server's data dir (and, for postgres-s3, the database and
# bucket named by the SLIPWAY_* variables backend_env exported).
sa() { "$E2E_SLIPWAY_BIN" admin "$@" --data-dir "$E2E_SLIPWAY_DATA"; }
# Server log lines written since the mark (for evidence in a check's log).
log_mark() { wc -l <"$E2E_SLIPWAY_LOG" >"$ST/logmark.$1"; }
log_since() { # log_since MARK [MAX_LINES]
    tail -n +"$(($(cat "$ST/logmark.$1") + 1))" "$E2E_SLIPWAY_LOG" | sed 's/\x1b\[[0-9;]*m//g' | tail -n "${2:-20}"
}

layout_digest() { # layout_digest LAYOUT TAG
    jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$1/index.json"
}
blob_file() { echo "$1/blobs/${2%%:*}/${2#*:}"; } # blob_file LAYOUT DIGEST

# Passwords (>= 8 characters), fresh per run: login commands read them from
# stdin; --creds (skopeo) and curl -u have no other way.
pw() { printf '%s-%s' "$1" "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
OWNER_PW="$(pw olivia)"
ALICE_PW="$(pw alice)"
CAROL_PW="$(pw carol)"
CONF_PW="$(pw conformer)"

# Per-client credential stores, all under the temp dir.
AUTHFILE="$W/containers-auth.json"   # skopeo/podman (containers/image)
CRANE_CONFIG="$W/crane-config"       # crane reads DOCKER_CONFIG
ORAS_CONFIG="$W/oras-auth.json"      # oras --registry-config
mkdir -p "$CRANE_CONFIG"

# ------------------------------------------------------------- test images
build_images() {
    local b="$W/bundle" i
    umoci init --layout "$IMG"
    umoci new --image "$IMG:busybox"
    umoci unpack --image "$IMG:busybox" "$b"
    mkdir -p "$b/rootfs/bin" "$b/rootfs/etc"
    cp /bin/busybox "$b/rootfs/bin/busybox"
    for i in sh ls cat; do ln -s busybox "$b/rootfs/bin/$i"; done
    echo "slipway auth e2e $$ $(date +%s)" >"$b/rootfs/etc/motd"
    umoci repack --image "$IMG:busybox" "$b"
    umoci config --image "$IMG:busybox" --os linux --architecture amd64 --config.cmd /bin/sh
    # busybox + two random (incompressible) layers: several blobs to mount.
    for i in 1 2; do
        mkdir -p "$W/l$i/data"
        head -c $((i * 1024 * 1024 + i * 7919)) /dev/urandom >"$W/l$i/data/random-$i.bin"
        tar -C "$W/l$i" -cf "$W/l$i.tar" data
    done
    umoci raw add-layer --image "$IMG:busybox" --tag multi "$W/l1.tar"
    umoci raw add-layer --image "$IMG:multi" "$W/l2.tar"
    umoci gc --layout "$IMG"
    skopeo copy -q "oci:$IMG:busybox" "docker-archive:$W/busybox.tar:e2e-local/busybox:1"
    jq -c '.manifests[] | {tag: .annotations["org.opencontainers.image.ref.name"], digest}' "$IMG/index.json"
}
check "build test images (umoci, busybox-static, random layers)" build_images
if [ ! -f "$W/busybox.tar" ]; then
    echo "test images could not be built: the harness itself is broken (see above)" >&2
    summary
    exit 1
fi
BUSYBOX_DIGEST="$(layout_digest "$IMG" busybox)"
MULTI_DIGEST="$(layout_digest "$IMG" multi)"
BUSYBOX_CONFIG="$(jq -r .config.digest "$(blob_file "$IMG" "$BUSYBOX_DIGEST")")"
MULTI_CONFIG="$(jq -r .config.digest "$(blob_file "$IMG" "$MULTI_DIGEST")")"

# ---------------------------------------------------------------- accounts
setup_accounts() {
    printf '%s' "$OWNER_PW" | sa create-user olivia --email olivia@example.com --password-stdin
    printf '%s' "$ALICE_PW" | sa create-user alice --email alice@example.com --password-stdin
    printf '%s' "$CAROL_PW" | sa create-user carol --email carol@example.com --password-stdin
    printf '%s' "$CONF_PW" | sa create-user conformer --email conformer@example.com --password-stdin
    sa create-org acme --owner olivia
    sa add-member acme alice --role maintainer
    sa create-org conformance --owner conformer
    sa create-robot acme ci
    # Two tokens of the robot: one for skopeo, one for docker login.
    local t
    for t in skopeo docker; do
        sa create-token acme+ci --name "ci-$t" --scope 'acme/*:pull,push' >"$ST/robot-token-$t" 2>"$W/robot-token-$t.err"
        cat "$W/robot-token-$t.err"
        # "token <id> created for acme+ci; it is shown once:"
        sed -n 's/^token \([^ ]*\) created for .*/\1/p' "$W/robot-token-$t.err" >"$ST/robot-token-id-$t"
        [ -s "$ST/robot-token-id-$t" ] && grep -q . "$ST/robot-token-$t"
    done
    # The token service answers for each of them.
    for who in "olivia:$OWNER_PW" "alice:$ALICE_PW" "carol:$CAROL_PW" "acme+ci:$(get robot-token-skopeo)"; do
        expect_eq "token for ${who%%:*}" 200 "$(http_code "http://$R/auth/token?service=slipway" -u "$who")"
    done
}
check "admin CLI: users, org acme (owner+maintainer), customer, robot + tokens" setup_accounts

# ------------------------------------------------------------ Docker Engine
# docker login stores the refresh token (identitytoken) in DOCKER_CONFIG; the
# engine then uses OAuth2 grant_type=refresh_token for push and pull.
docker_login() { # docker_login USER PASSWORD
    printf '%s' "$2" | docker login -u "$1" --password-stdin "$R"
}
docker_login_maintainer() {
    docker_login alice "$ALICE_PW"
    jq '.auths | map_values(keys)' "$DOCKER_CONFIG/config.json"
    jq -e --arg r "$R" '.auths[$r].identitytoken // empty' "$DOCKER_CONFIG/config.json" >/dev/null ||
        echo "note: docker stored no identity token (login without offline_token?)"
}
docker_push() {
    docker load -i "$W/busybox.tar"
    expect_eq "loaded image id" "$BUSYBOX_CONFIG" "$(docker image inspect --format '{{.Id}}' e2e-local/busybox:1)"
    docker tag e2e-local/busybox:1 "$R/acme/app:1"
    docker tag e2e-local/busybox:1 "$R/acme/app:2"
    docker push "$R/acme/app:1"
    docker push "$R/acme/app:2"
    docker rmi "$R/acme/app:1" "$R/acme/app:2" e2e-local/busybox:1
}
# pull_as_docker TAG: rmi (if present) and pull; prints the image id.
docker_fresh_pull() {
    docker rmi -f "$R/acme/app:$1" >/dev/null 2>&1 || true
    docker pull "$R/acme/app:$1"
}
docker_anonymous_refused() {
    docker logout "$R"
    expect_fail "$W/docker-anon.out" docker_fresh_pull 1
    if docker image inspect "$R/acme/app:1" >/dev/null 2>&1; then
        echo "the image arrived although the pull was refused" >&2
        return 1
    fi
    # Over HTTP: anonymous callers get a token without the action, then a
    # fresh 401 challenge (signing in may help).
    local tok hdr="$W/anon-headers"
    tok="$(curl -sf --max-time 30 "http://$R/auth/token?service=slipway&scope=repository:acme/app:pull" | jq -r .token)"
    expect_eq "anonymous manifest GET" 401 "$(http_code "http://$R/v2/acme/app/manifests/1" -D "$hdr" -H "Authorization: Bearer $tok")"
    grep -i '^www-authenticate:' "$hdr"
}
docker_customer_denied() {
    sa set-access acme/app licensed --tier acme-pro
    docker_login carol "$CAROL_PW"
    expect_fail "$W/docker-denied.out" docker_fresh_pull 1
    expect_text "$W/docker-denied.out" "license"
    expect_text "$W/docker-denied.out" "acme-pro"
}
docker_customer_granted() {
    sa grant carol acme-pro
    docker_fresh_pull 1
    expect_eq "pulled image id" "$BUSYBOX_CONFIG" "$(docker image inspect --format '{{.Id}}' "$R/acme/app:1")"
}
docker_customer_revoked() {
    sa revoke carol acme-pro
    # The same tag again (rmi first, so the engine must fetch), with no new
    # login: the engine asks for a new registry token per pull.
    expect_fail "$W/docker-revoked.out" docker_fresh_pull 1
    expect_text "$W/docker-revoked.out" "license"
    # And a tag never pulled before.
    expect_fail "$W/docker-revoked2.out" docker_fresh_pull 2
    expect_text "$W/docker-revoked2.out" "license"
}
docker_robot_revoked() {
    # The robot's access token as the password of `docker login`: the stored
    # identity token is tied to the access token and must die with it.
    docker logout "$R"
    docker_login acme+ci "$(get robot-token-docker)"
    docker_fresh_pull 2
    sa revoke-token "$(get robot-token-id-docker)"
    expect_fail "$W/docker-robot-revoked.out" docker_fresh_pull 2
    docker logout "$R"
}
if skipped docker; then
    :
elif start_dockerd >"$W/dockerd-start.log" 2>&1; then
    check "docker: login as maintainer (password-stdin)" docker_login_maintainer
    check "docker: push acme/app:1 as maintainer" docker_push
    check "docker: logout; anonymous pull of unpublished repo refused" docker_anonymous_refused
    check "docker: licensed repo, customer without license denied (message names license)" docker_customer_denied
    check "docker: after admin grant, customer pull works, same image id" docker_customer_granted
    check "docker: after admin revoke, customer pull denied again" docker_customer_revoked
    check "docker: robot login with token; pull refused after revoke-token" docker_robot_revoked
else
    check "docker: engine starts" sh -c "cat '$W/dockerd-start.log'; exit 1"
fi

# ------------------------------------------------------------------ skopeo
skopeo_login() {
    printf '%s' "$ALICE_PW" | skopeo login --tls-verify=false --authfile "$AUTHFILE" -u alice --password-stdin "$R"
    jq '.auths | keys' "$AUTHFILE"
}
skopeo_push_stored() {
    skopeo copy --preserve-digests --dest-tls-verify=false --authfile "$AUTHFILE" \
        "oci:$IMG:multi" "docker://$R/acme/tools/multi:1"
    local j
    j="$(skopeo inspect --tls-verify=false --authfile "$AUTHFILE" "docker://$R/acme/tools/multi:1")"
    expect_eq "inspect digest" "$MULTI_DIGEST" "$(jq -r .Digest <<<"$j")"
    expect_eq "tags" "1" "$(skopeo list-tags --tls-verify=false --authfile "$AUTHFILE" "docker://$R/acme/tools/multi" | jq -r '.Tags | join(" ")')"
}
skopeo_explicit_creds() {
    # No stored credentials: --creds / --src-creds / --dest-creds.
    skopeo copy --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
        --src-creds "alice:$ALICE_PW" --dest-creds "alice:$ALICE_PW" \
        "docker://$R/acme/tools/multi:1" "docker://$R/acme/tools/multi:2"
    expect_eq "inspect with --creds" "$MULTI_DIGEST" \
        "$(skopeo inspect --tls-verify=false --creds "alice:$ALICE_PW" "docker://$R/acme/tools/multi:2" | jq -r .Digest)"
    skopeo copy --src-tls-verify=false --src-creds "alice:$ALICE_PW" "docker://$R/acme/tools/multi:2" "oci:$W/pulled:multi"
    expect_eq "pulled digest" "$MULTI_DIGEST" "$(layout_digest "$W/pulled" multi)"
    # Without credentials the unpublished repository stays closed.
    expect_fail "$W/skopeo-nocreds.out" skopeo inspect --tls-verify=false --no-creds "docker://$R/acme/tools/multi:1"
}
# Later groups use acme/tools/multi:1 pushed here.
skopeo_copy_mount() {
    # containers/image asks for pull on the source repository as an extra scope
    # and mounts each blob (POST ?mount=&from=): the registry logs each mount (at debug).
    log_mark skopeo-mount
    skopeo copy --preserve-digests --src-tls-verify=false --dest-tls-verify=false --authfile "$AUTHFILE" \
        "docker://$R/acme/tools/multi:1" "docker://$R/acme/skopeo-mirror/multi:1"
    local lines mounted
    lines="$(log_since skopeo-mount 400 | grep -F 'blob mounted' | grep -F 'acme/skopeo-mirror/multi' || true)"
    echo "$lines"
    mounted="$(grep -c . <<<"$lines" || true)"
    echo "$mounted blobs mounted"
    # 3 layers (containers/image uploads the config blob itself).
    [ "$mounted" -ge 3 ] || { echo "expected the 3 layers to be mounted" >&2; return 1; }
}
check "skopeo: login (stored in an authfile)" skopeo_login
check "skopeo: copy + inspect + list-tags with stored creds" skopeo_push_stored
check "skopeo: copy/inspect with --creds, --src-creds, --dest-creds" skopeo_explicit_creds
check "skopeo: copy between org repos mounts blobs (POST ?mount=&from= -> 201)" skopeo_copy_mount

# ------------------------------------------------------------------ podman
PODMAN_ROOT="$W/podman"
pm() {
    podman --root "$PODMAN_ROOT/root" --runroot "$PODMAN_ROOT/run" --storage-driver vfs \
        --events-backend none --cgroup-manager cgroupfs --tmpdir "$PODMAN_ROOT/tmp" "$@"
}
podman_login_pull() {
    local pf="$W/podman-auth.json"
    mkdir -p "$PODMAN_ROOT/tmp"
    printf '%s' "$ALICE_PW" | pm login --tls-verify=false --authfile "$pf" -u alice --password-stdin "$R"
    pm pull --tls-verify=false --authfile "$pf" "$R/acme/tools/multi:1"
    expect_eq "image id (config digest)" "${MULTI_CONFIG#sha256:}" "$(pm image inspect --format '{{.Id}}' "$R/acme/tools/multi:1")"
    expect_eq "manifest digest" "$MULTI_DIGEST" "$(pm image inspect --format '{{.Digest}}' "$R/acme/tools/multi:1")"
    pm logout --authfile "$pf" "$R"
    pm rmi -a -f
    expect_fail "$W/podman-anon.out" pm pull --tls-verify=false --authfile "$pf" "$R/acme/tools/multi:1"
}
skipped podman || check "podman: login + pull (vfs), image id matches; refused after logout" podman_login_pull

# ------------------------------------------------------------------- crane
crn() { DOCKER_CONFIG="$CRANE_CONFIG" crane --insecure "$@"; }
crane_login_copy() {
    printf '%s' "$ALICE_PW" | crn auth login "$R" -u alice --password-stdin
    # crane asks one token for pull,push on the target and pull on the source
    # (repeated scope=), then mounts every blob (POST ?mount=&from=, 201).
    crn -v copy "$R/acme/tools/multi:1" "$R/acme/mirror/multi:1" 2>"$W/crane-copy.log"
    grep -E 'GET /auth/token\?' "$W/crane-copy.log" | sed 's/Authorization: .*/Authorization: <redacted>/' | head -n 4
    local mounted
    mounted="$(grep -c 'mounted blob: ' "$W/crane-copy.log" || true)"
    echo "crane mounted $mounted blobs"
    if [ "$mounted" -lt 3 ]; then
        echo "expected the config and 3 layers to be mounted across repositories, got $mounted:" >&2
        grep -E 'mount=|token|<-- [0-9]+ ' "$W/crane-copy.log" | sed 's/Authorization: .*/Authorization: <redacted>/' | tail -n 20 >&2
        return 1
    fi
    expect_eq "copied digest" "$MULTI_DIGEST" "$(crn digest "$R/acme/mirror/multi:1")"
    crn validate --remote "$R/acme/mirror/multi:1"
}
skipped crane || check "crane: auth login + copy between org repos (cross-repo mount)" crane_login_copy

# -------------------------------------------------------------------- oras
oras_login_push_pull() {
    local in="$W/oras-in"
    mkdir -p "$in"
    head -c $((1024 * 1024 + 5)) /dev/urandom >"$in/payload.bin"
    printf 'slipway auth e2e artifact\n' >"$in/notes.txt"
    printf '%s' "$ALICE_PW" | oras login --plain-http --registry-config "$ORAS_CONFIG" -u alice --password-stdin "$R"
    (cd "$in" && oras push --plain-http --registry-config "$ORAS_CONFIG" \
        --artifact-type application/vnd.slipway.e2e.bundle.v1 \
        "$R/acme/artifacts/bundle:v1" payload.bin:application/octet-stream notes.txt:text/plain)
    oras pull --plain-http --registry-config "$ORAS_CONFIG" -o "$W/oras-out" "$R/acme/artifacts/bundle:v1"
    cmp "$in/payload.bin" "$W/oras-out/payload.bin"
    cmp "$in/notes.txt" "$W/oras-out/notes.txt"
    echo "artifact files byte-identical"
    oras logout --registry-config "$ORAS_CONFIG" "$R"
    expect_fail "$W/oras-anon.out" oras pull --plain-http --registry-config "$ORAS_CONFIG" -o "$W/oras-out2" "$R/acme/artifacts/bundle:v1"
}
skipped oras || check "oras: login + push/pull artifact; refused after logout" oras_login_push_pull

# ---------------------------------------------------------- robot token
robot_push() {
    skopeo copy --preserve-digests --dest-tls-verify=false --dest-creds "acme+ci:$(get robot-token-skopeo)" \
        "oci:$IMG:busybox" "docker://$R/acme/ci/app:1"
    expect_eq "pushed digest" "$BUSYBOX_DIGEST" \
        "$(skopeo inspect --tls-verify=false --creds "acme+ci:$(get robot-token-skopeo)" "docker://$R/acme/ci/app:1" | jq -r .Digest)"
    # The token is limited to acme/*: another namespace is refused.
    expect_fail "$W/robot-other.out" skopeo copy --dest-tls-verify=false --dest-creds "acme+ci:$(get robot-token-skopeo)" \
        "oci:$IMG:busybox" "docker://$R/conformance/robot/app:1"
}
robot_revoked() {
    sa revoke-token "$(get robot-token-id-skopeo)"
    expect_fail "$W/robot-revoked.out" skopeo copy --dest-tls-verify=false --dest-creds "acme+ci:$(get robot-token-skopeo)" \
        "oci:$IMG:busybox" "docker://$R/acme/ci/app:2"
    expect_text "$W/robot-revoked.out" "unauthorized"
    expect_eq "token request with the revoked token" 401 \
        "$(http_code "http://$R/auth/token?service=slipway&scope=repository:acme/ci/app:pull" -u "acme+ci:$(get robot-token-skopeo)")"
}
if ! skipped robot; then
    check "robot token as password: skopeo --dest-creds acme+ci:TOKEN pushes" robot_push
    check "robot token revoked: same creds refused" robot_revoked
fi

# ---------------------------------------------------------------- refusals
wrong_password() {
    local hdr="$W/wrong-headers"
    expect_fail "$W/skopeo-wrong.out" sh -c "printf '%s' not-the-password | skopeo login --tls-verify=false --authfile '$W/wrong-auth.json' -u alice --password-stdin '$R'"
    # containers/image prints its own text for a 401 from the token service.
    expect_text "$W/skopeo-wrong.out" "invalid username/password"
    if command -v dockerd >/dev/null && [ -n "${DOCKER_HOST:-}" ]; then
        expect_fail "$W/docker-wrong.out" sh -c "printf '%s' not-the-password | docker login -u alice --password-stdin '$R'"
        expect_text "$W/docker-wrong.out" "bad credentials"
    fi
    expect_eq "token GET, wrong password" 401 "$(http_code "http://$R/auth/token?service=slipway" -D "$hdr" -u alice:not-the-password)"
    grep -i '^www-authenticate:' "$hdr"
    expect_eq "token POST grant_type=password, wrong password" 401 "$(http_code "http://$R/auth/token" -X POST \
        --data 'grant_type=password&username=alice&password=not-the-password&service=slipway&client_id=e2e')"
    expect_eq "unknown account" 401 "$(http_code "http://$R/auth/token?service=slipway" -u nobody:not-the-password)"
}
maintainer_limits() {
    # alice maintains acme: she may not push to another namespace, nor delete
    # (owners only); olivia (owner) may delete.
    expect_fail "$W/alice-other-ns.out" skopeo copy --dest-tls-verify=false --dest-creds "alice:$ALICE_PW" \
        "oci:$IMG:busybox" "docker://$R/conformance/alice/app:1"
    skopeo copy --dest-tls-verify=false --dest-creds "alice:$ALICE_PW" "oci:$IMG:busybox" "docker://$R/acme/tools/deleteme:1"
    expect_fail "$W/alice-delete.out" skopeo delete --tls-verify=false --creds "alice:$ALICE_PW" "docker://$R/acme/tools/deleteme:1"
    skopeo delete --tls-verify=false --creds "olivia:$OWNER_PW" "docker://$R/acme/tools/deleteme:1"
    expect_fail "$W/deleted.out" skopeo inspect --tls-verify=false --creds "olivia:$OWNER_PW" "docker://$R/acme/tools/deleteme:1"
    expect_text "$W/deleted.out" "manifest unknown"
}
# A registry token lacking an action the ACCOUNT holds must get a 401 challenge
# with error="insufficient_scope" naming the scope, so that clients which cache
# one token per repository and method (the OCI conformance suite;
# distribution's client) ask for a new one. 403 DENIED is for what the account
# itself may not do.
insufficient_scope() {
    local hdr="$W/scope-headers" loc code bad=0 repo=acme/scope/app
    tok() { curl -sf --max-time 30 "http://$R/auth/token?service=slipway&scope=$2" -u "$1" | jq -r .token; }
    # req URL CURL_ARGS...: status code; headers in $hdr, body in $W/scope-body.
    req() { curl -s --max-time 30 -D "$hdr" -o "$W/scope-body" -w '%{http_code}' "$@"; }
    # expect_challenge WHAT CODE: 401 with an insufficient_scope challenge.
    expect_challenge() {
        echo "$1: $2 $(grep -i '^www-authenticate:' "$hdr" | tr -d '\r')"
        if [ "$2" != 401 ] || ! grep -qi '^www-authenticate:.*insufficient_scope' "$hdr"; then
            echo "  expected 401 with error=\"insufficient_scope\"; got $2: $(tail -c 300 "$W/scope-body")" >&2
            bad=1
        fi
    }
    loc="$(curl -sf --max-time 30 -D - -o /dev/null -X POST \
        -H "Authorization: Bearer $(tok "olivia:$OWNER_PW" "repository:$repo:pull,push")" \
        "http://$R/v2/$repo/blobs/uploads/" | tr -d '\r' | sed -n 's/^location: *//Ip')"
    [ -n "$loc" ] || { echo "upload did not start" >&2; return 1; }
    code="$(req "http://$R$loc" -X DELETE \
        -H "Authorization: Bearer $(tok "olivia:$OWNER_PW" "repository:$repo:delete")")"
    expect_challenge "owner, delete-only token, DELETE upload session" "$code"
    code="$(req "http://$R/v2/$repo/manifests/latest" \
        -H "Authorization: Bearer $(tok "olivia:$OWNER_PW" "repository:$repo:push")")"
    expect_challenge "owner, push-only token, GET manifest" "$code"
    # What the account may not do stays a 403 with a message.
    code="$(req "http://$R/v2/$repo/blobs/uploads/" -X POST \
        -H "Authorization: Bearer $(tok "carol:$CAROL_PW" "repository:$repo:pull,push")")"
    echo "customer, POST upload: $code $(cat "$W/scope-body")"
    [ "$code" = 403 ] || { echo "  expected 403 DENIED" >&2; bad=1; }
    return "$bad"
}
if ! skipped refusals; then
    check "wrong password refused with a clear message (skopeo, docker, HTTP)" wrong_password
    check "maintainer: no push outside the org, no delete; owner deletes" maintainer_limits
    check "HTTP: token lacking an action the account holds -> 401 insufficient_scope, not 403" insufficient_scope
fi

# ------------------------------------------------------------------ public
public_anonymous_pull() {
    sa set-access acme/tools/multi public
    expect_eq "anonymous inspect" "$MULTI_DIGEST" \
        "$(skopeo inspect --tls-verify=false --no-creds "docker://$R/acme/tools/multi:1" | jq -r .Digest)"
    skopeo copy --src-tls-verify=false --src-no-creds "docker://$R/acme/tools/multi:1" "oci:$W/public:multi"
    expect_eq "anonymously pulled digest" "$MULTI_DIGEST" "$(layout_digest "$W/public" multi)"
    if [ -n "${DOCKER_HOST:-}" ]; then
        sa set-access acme/app public
        docker logout "$R" >/dev/null 2>&1 || true
        docker_fresh_pull 1
        expect_eq "anonymous docker pull image id" "$BUSYBOX_CONFIG" "$(docker image inspect --format '{{.Id}}' "$R/acme/app:1")"
    fi
    # Anonymous may pull, but not push.
    expect_fail "$W/anon-push.out" skopeo copy --dest-tls-verify=false --dest-no-creds "oci:$IMG:busybox" "docker://$R/acme/tools/multi:3"
}
skipped public || check "public repo: anonymous pull works (skopeo, docker); anonymous push refused" public_anonymous_pull

# ------------------------------------------------------- OCI conformance
# The suite needs no admin: this version does not list the catalog. It caches
# one token per (repository, method class) and asks for a new one only on 401.
conformance_with_auth() {
    local dir="$E2E_LOG_DIR/conformance" rc=0
    OCI_USERNAME=conformer OCI_PASSWORD="$CONF_PW" OCI_RESULTS_DIR="$dir" \
        "$E2E_DIR/conformance.sh" >"$W/conformance.out" 2>&1 || rc=$?
    # Skips are allowed fallbacks (e.g. a blob mount answered 202, not 201):
    # listed first, so the failures stay at the end of the output.
    if [ -s "$dir/junit.xml" ]; then
        python3 - "$dir/junit.xml" <<'EOF'
import sys
import xml.etree.ElementTree as ET
cases = ET.parse(sys.argv[1]).getroot().iter("testcase")
skipped = [c.get("name") for c in cases if c.get("status") == "skipped" or c.find("skipped") is not None]
print(f"skipped tests ({len(skipped)}):")
for name in skipped:
    print(f"  SKIP {name}")
EOF
    fi
    cat "$W/conformance.out"
    return "$rc"
}
skipped conformance ||
    E2E_CHECK_TIMEOUT="$((${CONFORMANCE_TIMEOUT:-900} + 60))" check "OCI conformance suite with auth (account conformer owns conformance/)" conformance_with_auth

summary

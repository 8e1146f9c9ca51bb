#!/usr/bin/env bash
# A newcomer's first minutes, as the README's first command starts them: `slipway serve
# --demo` on a fresh data directory with NO mail server, headless Chromium and a REAL Docker
# Engine:
#
#   tests/e2e/newcomer.sh [sqlite-fs|postgres-s3]      (default sqlite-fs)
#
#   start     the log says there is no mail server and that the demo verifies sign-ups
#   browser   tests/browser/newcomer.test.mjs: sign up (verified at once), sign in, Nimbus
#             DB's free Developer tier with the license, /subscriptions' pull command, a
#             token made on /settings/tokens with the keyboard only and its docker login
#             line; a robot and its token; two-factor sign-in; single sign-on through a
#             real OpenID provider's login form; axe-core on the new pages; the same with
#             JavaScript off; screenshots
#   login     docker login with the token, with exactly the line the tokens page showed
#   pull      docker pull with exactly the command /subscriptions showed
#   run       docker run of that image: it prints its banner and its health check passes
#
# Screenshots: target/test-artifacts/browser/<backend>/newcomer-*.png. Results:
# target/e2e-results/newcomer-<backend>-<timestamp>/. The last line printed is
# "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend_suite newcomer "${1:-}"
BROWSER_DIR="$REPO_ROOT/tests/browser"
E2E_CHROMIUM="${E2E_CHROMIUM:-/usr/bin/chromium}"
ARTIFACTS="$REPO_ROOT/target/test-artifacts/browser/$BACKEND"
W="$E2E_TMP/work"
ST="$W/state"
mkdir -p "$W" "$ST" "$ARTIFACTS"
rm -f "$ARTIFACTS"/newcomer*.png
export RUST_BACKTRACE=0

if [ ! -f "$BROWSER_DIR/node_modules/playwright-core/package.json" ] || [ ! -x "$E2E_CHROMIUM" ]; then
    echo "newcomer: chromium or playwright-core missing: run scripts/install-test-deps" >&2
    exit 2
fi

# No [mail]: whatever the environment says, this is the fresh install.
unset SLIPWAY_MAIL__SMTP_URL
# Single sign-on with a real OpenID provider (zitadel's example OP, in memory): its port is
# chosen first, since Slipway's configuration names the issuer, and it starts once
# Slipway's port (its redirect URI) is known.
OP_BIN="$TOOLS/bin/oidc-op"
[ -x "$OP_BIN" ] || { echo "newcomer: $OP_BIN missing: run scripts/install-test-deps" >&2; exit 2; }
OP_PORT="$(free_port)"
cat >"$W/slipway.toml" <<EOF
[[sso]]
name = "corp"
label = "Corp SSO"
issuer = "http://localhost:$OP_PORT/"
client_id = "web"
client_secret = "secret"
EOF
E2E_AUTH_MODE=enforced E2E_SLIPWAY_SERVE_ARGS="--demo --config $W/slipway.toml" E2E_SLIPWAY_START_SECS=600 \
    SLIPWAY_LOG__FILTER=info start_slipway "$BACKEND" >"$E2E_TMP/start.log" 2>&1 || {
    cat "$E2E_TMP/start.log" >&2
    exit 1
}
on_exit "cp '$E2E_SLIPWAY_LOG' '$E2E_LOG_DIR/serve.log'"
PORT="$OP_PORT" REDIRECT_URI="http://$REGISTRY/signin/sso/corp/callback" "$OP_BIN" >"$W/oidc-op.log" 2>&1 &
OP_PID=$!
on_exit "kill_tree $OP_PID 5"
wait_until 60 "the OpenID provider" curl -sf --max-time 2 "http://localhost:$OP_PORT/.well-known/openid-configuration" || {
    cat "$W/oidc-op.log" >&2
    exit 1
}
start_dockerd >"$W/dockerd-start.log" 2>&1 || {
    cat "$W/dockerd-start.log" >&2
    exit 1
}
R="$REGISTRY"
echo "newcomer: backend $BACKEND, slipway serve --demo at http://$R without a mail server, logs in ${E2E_LOG_DIR#"$REPO_ROOT"/}"
get() { cat "$ST/$1"; }

start_notice() {
    grep -F "no mail server" "$E2E_SLIPWAY_LOG" | tee "$W/notice.txt"
    grep -q "counts new accounts' addresses as verified at once" "$W/notice.txt"
}

browser_journey() {
    local rc=0
    (cd "$BROWSER_DIR" && env PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 E2E_BASE_URL="http://$R" E2E_ARTIFACTS="$ARTIFACTS" \
        E2E_CHROMIUM="$E2E_CHROMIUM" E2E_STATE_DIR="$ST" E2E_OIDC_PROVIDER="http://localhost:$OP_PORT" node --test --test-reporter=tap newcomer.test.mjs) \
        >"$W/newcomer.tap" 2>"$W/newcomer.stderr" || rc=$?
    cp "$W/newcomer.tap" "$E2E_LOG_DIR/newcomer.tap"
    cat "$W/newcomer.tap" "$W/newcomer.stderr"
    grep -q '^# tests [1-9]' "$W/newcomer.tap" || { echo "node --test reported no tests" >&2; return 1; }
    return "$rc"
}

# The lines the pages showed, run as they are (the token in $TOKEN, as the page says).
docker_login() {
    local line
    line="$(get login-command)"
    echo "$line"
    TOKEN="$(get token)" bash -c "$line"
}

docker_pull() {
    local line
    line="$(get pull-command)"
    echo "$line"
    docker rmi -f "${line#docker pull }" >/dev/null 2>&1 || true
    bash -c "$line"
    docker image inspect "${line#docker pull }" --format '{{.Id}}'
}

# The demo image runs (a program of its own, no shell): its banner in the log, healthy.
docker_run() {
    local ref name=newcomer-demo state=""
    ref="$(get pull-command)"
    ref="${ref#docker pull }"
    docker rm -f "$name" >/dev/null 2>&1 || true
    on_exit "docker rm -f $name >/dev/null 2>&1 || true"
    docker run -d --network none --name "$name" "$ref"
    for _ in $(seq 1 60); do
        state="$(docker inspect "$name" --format '{{.State.Status}} {{.State.Health.Status}}')"
        [ "$state" = "running healthy" ] && break
        sleep 1
    done
    echo "state: $state"
    docker logs "$name" 2>&1 | tee "$W/run.log"
    [ "$state" = "running healthy" ] && grep -q "is running" "$W/run.log"
}

check "the start says there is no mail server" start_notice
E2E_CHECK_TIMEOUT="${E2E_BROWSER_TIMEOUT:-900}" check "node --test tests/browser/newcomer.test.mjs (headless Chromium)" browser_journey
check "docker login with the token, the tokens page's line" docker_login
check "docker pull, the command /subscriptions showed" docker_pull
check "docker run of the pulled image: its banner, and healthy" docker_run
summary

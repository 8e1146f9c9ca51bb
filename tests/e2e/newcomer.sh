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
#             line; axe-core on the new pages; the same with JavaScript off; screenshots
#   login     docker login with the token, with exactly the line the tokens page showed
#   pull      docker pull with exactly the command /subscriptions showed
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
E2E_AUTH_MODE=enforced E2E_SLIPWAY_SERVE_ARGS=--demo E2E_SLIPWAY_START_SECS=600 \
    SLIPWAY_LOG__FILTER=info start_slipway "$BACKEND" >"$E2E_TMP/start.log" 2>&1 || {
    cat "$E2E_TMP/start.log" >&2
    exit 1
}
on_exit "cp '$E2E_SLIPWAY_LOG' '$E2E_LOG_DIR/serve.log'"
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
        E2E_CHROMIUM="$E2E_CHROMIUM" E2E_STATE_DIR="$ST" node --test --test-reporter=tap newcomer.test.mjs) \
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

check "the start says there is no mail server" start_notice
E2E_CHECK_TIMEOUT="${E2E_BROWSER_TIMEOUT:-900}" check "node --test tests/browser/newcomer.test.mjs (headless Chromium)" browser_journey
check "docker login with the token, the tokens page's line" docker_login
check "docker pull, the command /subscriptions showed" docker_pull
summary

#!/usr/bin/env bash
# The sign-in throttle behind a REAL reverse proxy (Debian's nginx, with its own config
# on loopback ports, not the system service):
#
#   tests/e2e/proxy-throttle.sh [sqlite-fs|postgres-s3]      (default sqlite-fs)
#
# Slipway runs with trusted_proxies = ["127.0.0.1/32"]; nginx on 127.0.0.1 forwards to it
# with `proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for`. Distinct clients
# behind nginx are simulated by the X-Forwarded-For header the client sends (nginx
# appends the real peer, so the header values name the clients; no traffic goes to
# those addresses). The throttle used to key on the TCP peer only: 50 failures locked
# every user of the proxy out for 15 minutes (issue 14).
#
# What is checked, each step one "ok"/"FAIL" line:
#   proxy        nginx answers and forwards to slipway
#   one client   60 wrong passwords from client A through nginx: A is slowed (429 with
#                Retry-After), but client B signs in at once, on /auth/token and on the
#                API; A guessing 60 different names is slowed too, B still is not
#   spoofing     a direct request (peer 127.0.0.2, not a trusted proxy) with a made-up
#                X-Forwarded-For is counted against its real address: changing the
#                header does not escape the throttle, nor touch the named client
#
# Results: target/e2e-results/proxy-throttle-<backend>-<timestamp>/. The last line
# printed is "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend_suite proxy-throttle "${1:-}"
W="$E2E_TMP/work"
mkdir -p "$W"
export RUST_BACKTRACE=0

NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
[ -x "$NGINX" ] || { echo "nginx missing: run scripts/install-test-deps" >&2; exit 1; }

# A first delay of 30 s (default 1 s) so that what is let through does not depend on how
# fast this machine runs the loops.
SLIPWAY_TRUSTED_PROXIES='["127.0.0.1/32"]' SLIPWAY_SIGN_IN__FIRST_DELAY_SECS=30 E2E_AUTH_MODE=enforced start_slipway "$BACKEND" >"$W/start.log" 2>&1 || {
    cat "$W/start.log" >&2
    exit 1
}
on_exit "cp '$E2E_SLIPWAY_LOG' '$E2E_LOG_DIR/serve.log'"
DIRECT="http://$REGISTRY"

# ------------------------------------------------------------------ nginx
start_nginx() {
    local dir="$E2E_TMP/nginx" port pid
    port="$(free_port)"
    mkdir -p "$dir/logs" "$dir/tmp"
    # Workers may run as an unprivileged user: let them write their temp files.
    chmod 777 "$dir/tmp"
    cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 1;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 256; }
http {
    access_log $dir/logs/access.log;
    client_body_temp_path $dir/tmp/body;
    proxy_temp_path $dir/tmp/proxy;
    fastcgi_temp_path $dir/tmp/fastcgi;
    uwsgi_temp_path $dir/tmp/uwsgi;
    scgi_temp_path $dir/tmp/scgi;
    server {
        listen 127.0.0.1:$port;
        location / {
            proxy_pass http://$REGISTRY;
            proxy_set_header Host \$http_host;
            proxy_set_header X-Forwarded-For \$proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto \$scheme;
        }
    }
}
EOF
    "$NGINX" -p "$dir" -c "$dir/nginx.conf" >"$dir/logs/stdout.log" 2>&1 &
    pid=$!
    on_exit "kill_tree $pid 5"
    on_exit "cp -r '$dir/logs' '$E2E_LOG_DIR/nginx'"
    wait_until 30 "nginx on $port" curl -sf --max-time 2 "http://127.0.0.1:$port/healthz" ||
        _e2e_fail_start "nginx did not start" "$dir/logs/error.log" || return 1
    PROXY="http://127.0.0.1:$port"
}
start_nginx >"$W/nginx-start.log" 2>&1 || {
    cat "$W/nginx-start.log" >&2
    exit 1
}
echo "proxy-throttle: backend $BACKEND, slipway at $DIRECT behind nginx at $PROXY, logs in ${E2E_LOG_DIR#"$REPO_ROOT"/}"

PASSWORD="target-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
printf '%s' "$PASSWORD" | "$E2E_SLIPWAY_BIN" admin create-user target --email target@example.com --password-stdin \
    --data-dir "$E2E_SLIPWAY_DATA" >"$W/create-user.log" 2>&1 || {
    cat "$W/create-user.log" >&2
    exit 1
}

# ------------------------------------------------------------------ helpers
# token_code BASE USER PASSWORD [curl args...]: the status of a docker-style token request.
token_code() {
    local base="$1" user="$2" password="$3"
    shift 3
    http_code "$base/auth/token?service=slipway" -u "$user:$password" "$@"
}
expect_code() { # expect_code WHAT EXPECTED ACTUAL
    if [ "$2" != "$3" ]; then
        echo "MISMATCH $1: expected $2 got $3" >&2
        return 1
    fi
    echo "as expected, $1: $3"
}
# tally FILE: how many of the status codes in FILE (one a line) were 401, 429 or else.
# slowed_down BASE [curl args...]: wrong passwords for `target` until one is refused
# (429 with a Retry-After): after the free attempts each counted one starts a wait of a
# second or more, so the second of two back-to-back attempts is refused at the latest.
slowed_down() {
    local base="$1" i headers="$W/slowed.headers" code
    shift
    for i in 1 2; do
        code="$(curl -s -D "$headers" -o /dev/null -w '%{http_code}' --max-time 30 -u "target:wrong-again-$i" "$@" \
            "$base/auth/token?service=slipway" || true)"
        if [ "$code" = 429 ]; then
            tr -d '\r' <"$headers" | grep -i '^retry-after: [0-9]' || { echo "429 without Retry-After" >&2; return 1; }
            return 0
        fi
        echo "attempt $i: $code (a wait had just ended)"
    done
    echo "two back-to-back attempts were both let through" >&2
    return 1
}
tally() {
    echo "401: $(grep -c '^401$' "$1" || true), 429: $(grep -c '^429$' "$1" || true), other: $(grep -vc '^401$\|^429$' "$1" || true)"
}

# ------------------------------------------------------------------ checks
check_proxy_forwards() {
    expect_code "healthz through nginx" 200 "$(http_code "$PROXY/healthz")"
    expect_code "anonymous token through nginx" 200 "$(http_code "$PROXY/auth/token?service=slipway")"
    grep -q 'GET /healthz' "$E2E_TMP/nginx/logs/access.log"
    echo "nginx logged the proxied requests"
}

check_one_client_does_not_lock_out_another() {
    local i codes="$W/client-a.codes"
    : >"$codes"
    for i in $(seq 1 60); do
        token_code "$PROXY" target "wrong-$i" -H 'X-Forwarded-For: 10.1.1.1' >>"$codes"
        echo >>"$codes"
    done
    echo "client A, 60 wrong passwords: $(tally "$codes")"
    expect_code "client A's checked attempts (the free ones)" 5 "$(grep -c '^401$' "$codes")"
    slowed_down "$PROXY" -H 'X-Forwarded-For: 10.1.1.1'
    expect_code "client A, right password, must wait" 429 "$(token_code "$PROXY" target "$PASSWORD" -H 'X-Forwarded-For: 10.1.1.1')"
    expect_code "client B, right password, docker-style token" 200 "$(token_code "$PROXY" target "$PASSWORD" -H 'X-Forwarded-For: 10.2.2.2')"
    expect_code "client B, API sign-in" 200 "$(http_code "$PROXY/api/v1/session" -H 'X-Forwarded-For: 10.2.2.2' \
        -H 'content-type: application/json' --data "{\"name\":\"target\",\"password\":\"$PASSWORD\"}")"
    # Client A now tries many names: its address is slowed, client B still is not.
    codes="$W/client-a-names.codes"
    : >"$codes"
    for i in $(seq 1 60); do
        token_code "$PROXY" "name$i" wrong -H 'X-Forwarded-For: 10.1.1.1' >>"$codes"
        echo >>"$codes"
    done
    echo "client A, 60 names: $(tally "$codes")"
    grep -q '^429$' "$codes" || { echo "client A's address was never slowed down" >&2; return 1; }
    expect_code "client B after A's 120 failures" 200 "$(token_code "$PROXY" target "$PASSWORD" -H 'X-Forwarded-For: 10.2.2.2')"
}

check_spoofed_header_from_untrusted_peer_is_ignored() {
    local i codes="$W/direct.codes"
    : >"$codes"
    for i in $(seq 1 10); do
        # A different made-up client on every request, sent straight to slipway from
        # 127.0.0.2, which is not a trusted proxy.
        token_code "$DIRECT" target "wrong-$i" --interface 127.0.0.2 -H "X-Forwarded-For: 10.7.7.$i" >>"$codes"
        echo >>"$codes"
    done
    echo "direct from 127.0.0.2 with spoofed headers: $(tally "$codes")"
    # Were the headers believed, all ten made-up clients would have had their free attempts.
    expect_code "attempts checked, counted against the real peer" 5 "$(grep -c '^401$' "$codes")"
    echo "a fresh spoofed address does not help:"
    slowed_down "$DIRECT" --interface 127.0.0.2 -H 'X-Forwarded-For: 10.8.8.8'
    expect_code "the spoofed address, really behind the proxy, was not charged" 200 \
        "$(token_code "$PROXY" target "$PASSWORD" -H 'X-Forwarded-For: 10.7.7.1')"
}

check "proxy: nginx forwards to slipway" check_proxy_forwards
check "one client's 120 failures do not lock out another behind nginx" check_one_client_does_not_lock_out_another
check "a spoofed X-Forwarded-For from an untrusted peer is ignored" check_spoofed_header_from_untrusted_peer_is_ignored
summary

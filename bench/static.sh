#!/usr/bin/env bash
# A small blob GET against nginx serving the same bytes as a static file, and idle memory
# against docker-registry 2.8.2 (issue 19: "a small blob GET at least half of nginx's
# static rate on the same file; idle RSS no higher than docker-registry's"), all in the
# same run:
#
#   bench/static.sh
#
# One `slipway serve` (embedded backend, authentication off) and one docker-registry each
# get the same BENCH_SMALL_BYTES (403) byte blob by a monolithic upload; nginx (Debian's,
# its own config on a loopback port, 2 workers for the machine's 2 cores, sendfile,
# access log off) serves the same bytes from a file at the same path. wrk then GETs the
# blob, BENCH_STATIC_ROUNDS (3) rounds of BENCH_STATIC_SECS (10 s), Slipway and nginx
# alternating. Memory: VmRSS of Slipway and docker-registry after both have stored the
# blob and sat idle for 5 s (before any load). Prints each round, the medians and the
# ratios.
# Tools: wrk, nginx, docker-registry (scripts/install-test-deps), curl. E2E_SLIPWAY_BIN
# or a release build (bench/lib.sh's bench_build_slipway).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
source "$BENCH_DIR/../tests/e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

ROUNDS="${BENCH_STATIC_ROUNDS:-3}"
SECS="${BENCH_STATIC_SECS:-10}"
BYTES="${BENCH_SMALL_BYTES:-403}"
NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
need wrk curl sha256sum "$NGINX"

bench_lock
bench_build_slipway
export E2E_SLIPWAY_BIN
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/slipway.sh
source "$REPO_ROOT/tests/e2e/slipway.sh"

BLOB="$E2E_TMP/blob"
head -c "$BYTES" /dev/urandom >"$BLOB"
DIGEST="sha256:$(sha256sum "$BLOB" | cut -d' ' -f1)"
BLOB_PATH="/v2/bench/small/blobs/$DIGEST"

# upload ADDR: the blob in one PUT after a POST (docker-registry 2.8 has no single-POST
# upload), then read back.
upload() {
    local location
    location="$(curl -sf -o /dev/null -D - -X POST "http://$1/v2/bench/small/blobs/uploads/" | tr -d '\r' |
        awk 'tolower($1) == "location:" { print $2 }')" || die "POST to $1 failed"
    case "$location" in http*) ;; *) location="http://$1$location" ;; esac
    case "$location" in *\?*) location="$location&digest=$DIGEST" ;; *) location="$location?digest=$DIGEST" ;; esac
    curl -sf -o /dev/null -X PUT -H 'Content-Type: application/octet-stream' --data-binary "@$BLOB" "$location" ||
        die "PUT to $1 failed"
    curl -sf -o "$E2E_TMP/got" "http://$1$BLOB_PATH" || die "GET from $1 failed"
    cmp "$BLOB" "$E2E_TMP/got" >&2 || die "$1 serves other bytes"
}

E2E_AUTH_MODE=open start_slipway sqlite-fs >/dev/null
SLIPWAY="$REGISTRY"
SLIPWAY_PID="$E2E_SLIPWAY_PID"
upload "$SLIPWAY"

start_reference_registry >/dev/null
PEER="$REGISTRY"
PEER_PID="$(ss -ltnpH "sport = :${PEER##*:}" | grep -o 'pid=[0-9]*' | head -n 1 | cut -d= -f2)"
[ -n "$PEER_PID" ] || die "no pid for docker-registry on $PEER"
upload "$PEER"

# Outside E2E_TMP (0700): nginx's workers run as an unprivileged user and must reach it.
NGINX_DIR="$(mktemp -d "${TMPDIR:-/tmp}/slipway-bench-nginx.XXXXXX")"
on_exit "rm -rf '$NGINX_DIR'"
chmod 755 "$NGINX_DIR"
mkdir -p "$NGINX_DIR/logs" "$NGINX_DIR/root${BLOB_PATH%/*}"
cp "$BLOB" "$NGINX_DIR/root$BLOB_PATH"
chmod -R a+rX "$NGINX_DIR/root"
NGINX_PORT="$(free_port)"
cat >"$NGINX_DIR/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $NGINX_DIR/nginx.pid;
error_log $NGINX_DIR/logs/error.log warn;
events { worker_connections 1024; }
http {
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_requests 1000000;
    client_body_temp_path $NGINX_DIR/body;
    proxy_temp_path $NGINX_DIR/proxy;
    fastcgi_temp_path $NGINX_DIR/fastcgi;
    uwsgi_temp_path $NGINX_DIR/uwsgi;
    scgi_temp_path $NGINX_DIR/scgi;
    server {
        listen 127.0.0.1:$NGINX_PORT;
        root $NGINX_DIR/root;
        default_type application/octet-stream;
    }
}
EOF
"$NGINX" -p "$NGINX_DIR" -c "$NGINX_DIR/nginx.conf" >"$NGINX_DIR/logs/stdout.log" 2>&1 &
on_exit "kill_tree $! 5"
NGINX_ADDR="127.0.0.1:$NGINX_PORT"
wait_until 30 "nginx" curl -sf -o /dev/null "http://$NGINX_ADDR$BLOB_PATH" || die "nginx did not serve the blob"
curl -sf -o "$E2E_TMP/got" "http://$NGINX_ADDR$BLOB_PATH" || die "GET from nginx failed"
cmp "$BLOB" "$E2E_TMP/got" >&2 || die "nginx serves other bytes"

sleep 5
RSS_SLIPWAY="$(rss_kb "$SLIPWAY_PID" VmRSS)"
RSS_PEER="$(rss_kb "$PEER_PID" VmRSS)"

# wrk_rate ADDR: one round against that server (bench/lib.sh's wrk_round).
wrk_rate() { wrk_round "$SECS" "http://$1$BLOB_PATH"; }

declare -A ADDR=([slipway]="$SLIPWAY" [nginx]="$NGINX_ADDR") RATES=()
echo "bench/static.sh: slipway $SLIPWAY_REV, a $BYTES-byte blob GET, wrk -t2 -c32, ${SECS}s x $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
    for kind in slipway nginx; do
        read -r rps p50 p99 <<<"$(wrk_rate "${ADDR[$kind]}")"
        RATES[$kind]+="$rps "
        printf 'round %d  %-7s  %8d req/s  p50 %6d us  p99 %6d us\n' "$round" "$kind" "$rps" "$p50" "$p99"
    done
done
python3 - "$(echo "${RATES[slipway]}" | median)" "$(echo "${RATES[nginx]}" | median)" "$RSS_SLIPWAY" "$RSS_PEER" <<'EOF'
import sys
s, n, rss_s, rss_p = (int(v) for v in sys.argv[1:])
verdict = lambda ok: "met" if ok else "NOT met"
print(f"median: slipway {s} req/s, nginx {n} req/s: slipway/nginx = {s / n:.2f} (target >= 0.50: {verdict(s / n >= 0.5)})")
print(f"idle RSS with the blob stored: slipway {rss_s / 1024:.1f} MiB, docker-registry {rss_p / 1024:.1f} MiB: "
      f"slipway/registry = {rss_s / rss_p:.2f} (target <= 1.00: {verdict(rss_s <= rss_p)})")
EOF

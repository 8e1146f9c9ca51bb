#!/usr/bin/env bash
# Several `slipway serve` replicas behind a REAL load balancer (HAProxy, with its own
# config on loopback ports, not the system service), all on one PostgreSQL database and
# one S3 bucket + prefix (a private cluster and moto), authentication enforced, one
# token-signing key directory shared by all of them (auth.keys_dir):
#
#   tests/e2e/replicas.sh
#
# HAProxy balances round robin over REPLICAS_N (default 3) replicas, health-checks
# GET /readyz every 300 ms, and retries a request whose connection fails on another
# replica (retries 3, option redispatch 1). It adds X-Forwarded-For; the replicas trust
# 127.0.0.1 (trusted_proxies), and auth.public_url names the balancer, so clients only
# ever talk to the balancer.
#
# What is checked, each step one "ok"/"FAIL" line:
#   tokens      `crane auth login` through the balancer; a token issued by one replica
#               is accepted by every replica (direct requests to each); one blob upload
#               session is opened on replica 1, continued on replica 2 and closed on
#               replica 3
#   push/pull   four images (multi-MB random layers) pushed and pulled through the
#               balancer; every image passes `crane validate --remote`, the pulled
#               blobs hash to their digests and HAProxy shows every replica served
#   scheduler   gc runs every 2 s on every replica's scheduler; over a window, the gc
#               runs logged by all replicas together equal the schedule's run counter
#               in PostgreSQL, are about window/2 (not replicas x window/2), and no
#               two runs share one 2 s slot
#   rate limit  anonymous_pulls = N for the cluster: N+k anonymous manifest GETs through
#               the balancer (spread over all replicas) get exactly N 200s and k 429s
#   SIGKILL     one replica gets kill -9 in the middle of concurrent crane pushes and
#               crane pulls through the balancer, and of store checkouts (sandbox
#               provider, one Idempotency-Key per customer, the first attempt sent to
#               the doomed replica: three are answered before the kill, three are held
#               inside it by a lock psql takes on the subscriptions table, so the kill
#               lands after they claimed their key). Clients retry (bounded) through
#               the balancer: every push succeeds and validates, every pulled blob
#               matches its digest, `slipway fsck` is clean on the shared database and
#               bucket, every interrupted checkout completes when retried with its key
#               (once the key's 30 s lease has run out, resuming the dead attempt's work),
#               no customer has two subscriptions or payments (a retry answers the
#               first attempt's subscription), `slipway ledger verify` passes; the
#               killed replica restarts, HAProxy marks it up again and it serves
#
# Env: REPLICAS_N (2 or 3, default 3), REPLICAS_ANON_PULLS (default 6),
# E2E_SLIPWAY_BIN (default target/debug/slipway).
# Results: target/e2e-results/replicas-postgres-s3-<timestamp>/ (every check's log,
# every replica's serve log, haproxy.cfg). The last line printed is "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend_suite replicas postgres-s3
W="$E2E_TMP/work"
mkdir -p "$W"
export RUST_BACKTRACE=0
N="${REPLICAS_N:-3}"
case "$N" in 2 | 3) ;; *) echo "REPLICAS_N must be 2 or 3" >&2; exit 2 ;; esac
ANON="${REPLICAS_ANON_PULLS:-6}"
EXTRA=4

HAPROXY="$(command -v haproxy || echo /usr/sbin/haproxy)"
[ -x "$HAPROXY" ] || { echo "haproxy missing: run scripts/install-test-deps" >&2; exit 1; }

# ---------------------------------------------------------------- the cluster
# One database and bucket prefix for every replica (backend_env once), the demo store
# loaded into it before any replica serves (the checkouts buy its Nimbus Cache).
backend_env postgres-s3 >"$W/backend.log" 2>&1 || { cat "$W/backend.log" >&2; exit 1; }
DB_URL="$SLIPWAY_DATABASE_URL"
LB_PORT="$(free_port)"
STATS_PORT="$(free_port)"
LB="127.0.0.1:$LB_PORT"
KEYS="$E2E_TMP/keys"
mkdir -p "$KEYS"
chmod 700 "$KEYS"
export SLIPWAY_AUTH__MODE=enforced
export SLIPWAY_AUTH__KEYS_DIR="$KEYS"
export SLIPWAY_AUTH__PUBLIC_URL="http://$LB"
export SLIPWAY_TRUSTED_PROXIES='["127.0.0.1/32"]'
export SLIPWAY_RATE_LIMIT__ANONYMOUS_PULLS="$ANON"
export SLIPWAY_GC__INTERVAL_SECS=2
export SLIPWAY_LOG__FILTER=info

sw() { "$E2E_SLIPWAY_BIN" "$@" --data-dir "$E2E_TMP/admin-data"; }
mkdir -p "$E2E_TMP/admin-data"
chmod 700 "$E2E_TMP/admin-data"
if ! sw demo >"$W/demo.log" 2>&1; then
    check "slipway demo loads into the shared database and bucket" tail -n 30 "$W/demo.log"
    summary
    exit 1
fi

PORTS=() PIDS=() LOGS=() DATAS=()
# Cleanups are functions with their own locals: lib.sh's cleanup loop counts with `i`.
stop_replicas() {
    local p
    for p in "${PIDS[@]}"; do
        if [ -n "$p" ]; then kill_tree "$p" 10; fi
    done
}
save_replica_logs() {
    local n
    for n in "${!LOGS[@]}"; do cp "${LOGS[$n]}" "$E2E_LOG_DIR/serve-r$((n + 1)).log"; done
}
on_exit stop_replicas
on_exit save_replica_logs
start_replica() { # start_replica INDEX (0-based): same port and data dir on a restart
    local i="$1"
    [ -n "${PORTS[$i]:-}" ] || PORTS[i]="$(free_port)"
    if [ -z "${DATAS[$i]:-}" ]; then
        DATAS[i]="$E2E_TMP/r$((i + 1))"
        LOGS[i]="$E2E_TMP/serve-r$((i + 1)).log"
        mkdir -p "${DATAS[$i]}"
        chmod 700 "${DATAS[$i]}"
    fi
    echo "=== replicas.sh $(date +%T.%N | cut -c1-12): start r$((i + 1)) on 127.0.0.1:${PORTS[$i]}" >>"${LOGS[$i]}"
    "$E2E_SLIPWAY_BIN" serve --data-dir "${DATAS[$i]}" --listen "127.0.0.1:${PORTS[$i]}" >>"${LOGS[$i]}" 2>&1 &
    PIDS[i]=$!
    wait_until 60 "replica r$((i + 1))" curl -sf --max-time 2 "http://127.0.0.1:${PORTS[$i]}/readyz"
}
for ((i = 0; i < N; i++)); do
    if ! start_replica "$i"; then
        check "replica r$((i + 1)) starts" tail -n 30 "${LOGS[$i]}"
        summary
        exit 1
    fi
done

# ---------------------------------------------------------------- HAProxy
HA_DIR="$E2E_TMP/haproxy"
mkdir -p "$HA_DIR"
{
    cat <<EOF
global
    maxconn 1000
    log stderr format short local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout http-request 30s
    retries 3
    option redispatch 1
    retry-on conn-failure empty-response
    option forwardfor
frontend registry
    bind 127.0.0.1:$LB_PORT
    default_backend slipway
frontend stats
    bind 127.0.0.1:$STATS_PORT
    stats enable
    stats uri /stats
backend slipway
    balance roundrobin
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 300ms fall 2 rise 2
EOF
    for ((i = 0; i < N; i++)); do echo "    server r$((i + 1)) 127.0.0.1:${PORTS[$i]} check"; done
} >"$HA_DIR/haproxy.cfg"
cp "$HA_DIR/haproxy.cfg" "$E2E_LOG_DIR/haproxy.cfg"
"$HAPROXY" -c -f "$HA_DIR/haproxy.cfg" >"$HA_DIR/check.log" 2>&1 || { cat "$HA_DIR/check.log" >&2; exit 1; }
"$HAPROXY" -db -f "$HA_DIR/haproxy.cfg" >"$HA_DIR/haproxy.log" 2>&1 &
HA_PID=$!
on_exit "kill_tree $HA_PID 5"
on_exit "cp '$HA_DIR/haproxy.log' '$E2E_LOG_DIR/haproxy.log'"
# stats CSV: one line per server "NAME STATUS REQUESTS" (svname, status, stot)
ha_servers() {
    curl -sf --max-time 5 "http://127.0.0.1:$STATS_PORT/stats;csv" |
        awk -F, '$1 == "slipway" && $2 ~ /^r[0-9]$/ { print $2, $18, $8 }'
}
ha_scur() { # current sessions of server NAME
    curl -sf --max-time 5 "http://127.0.0.1:$STATS_PORT/stats;csv" | awk -F, -v s="$1" '$1 == "slipway" && $2 == s { print $5 }'
}
victim_busy() { [ "$(ha_scur "r$((VICTIM + 1))")" -ge 1 ]; }
ha_all_up() { [ "$(ha_servers | awk '$2 == "UP"' | wc -l)" = "$N" ]; }
ha_up() { ha_servers | awk -v s="$1" '$1 == s && $2 == "UP" { found = 1 } END { exit !found }'; }
if ! wait_until 30 "HAProxy with every replica up" ha_all_up; then
    check "HAProxy starts with every replica up" bash -c "cat '$HA_DIR/haproxy.log'; false"
    summary
    exit 1
fi
echo "replicas: $N replicas on ports ${PORTS[*]} behind HAProxy at $LB; one database, bucket prefix $SLIPWAY_STORAGE__S3__PREFIX; logs in ${E2E_LOG_DIR#"$REPO_ROOT"/}"

# ------------------------------------------------------------------ helpers
MANIFEST_TYPES='application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
crn() { crane --insecure "$@"; }
pw() { printf '%s-%s' "$1" "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
sha() { echo "sha256:$(sha256sum <"$1" | cut -d' ' -f1)"; }
psql_q() { psql "$DB_URL" -qAtX -c "$1"; }
ALICE_PW="$(pw alice)"
export DOCKER_CONFIG="$W/docker-config" # where crane keeps its login
mkdir -p "$DOCKER_CONFIG"

# make_image NAME SIZES_MIB...: an OCI image tarball with one random layer per size
make_image() {
    local name="$1" n=0 s files=()
    shift
    for s in "$@"; do
        n=$((n + 1))
        mkdir -p "$W/src/$name-$n/data"
        head -c $((s * 1024 * 1024 + n * 4099)) /dev/urandom >"$W/src/$name-$n/data/$name-$n.bin"
        tar -C "$W/src/$name-$n" -cf "$W/src/$name-$n.tar" data
        files+=(-f "$W/src/$name-$n.tar")
        rm -rf "${W:?}/src/$name-$n"
    done
    crane append --oci-empty-base "${files[@]}" -t "local/$name:1" -o "$W/img/$name.tar" >/dev/null
}
# verify_layout DIR: every blob of an OCI layout hashes to its name
verify_layout() {
    local f n=0
    for f in "$1"/blobs/sha256/*; do
        expect_eq "digest of pulled blob" "sha256:${f##*/}" "$(sha "$f")" 2>/dev/null ||
            { echo "pulled blob ${f##*/} does not match its digest" >&2; return 1; }
        n=$((n + 1))
    done
    [ "$n" -ge 3 ] || { echo "only $n blobs in $1" >&2; return 1; }
    echo "$1: $n blobs match their digests"
}
# pull_and_verify REF DIR: crane pull (OCI layout) through the balancer, blobs hashed
pull_and_verify() {
    rm -rf "$2"
    crn pull --format oci "$1" "$2" </dev/null
    verify_layout "$2"
}
# retry ATTEMPTS LOG CMD...: runs CMD up to ATTEMPTS times (1 s apart), "attempts N" in LOG
retry() {
    local n="$1" log="$2" a
    shift 2
    for ((a = 1; a <= n; a++)); do
        if "$@" >>"$log" 2>&1; then
            echo "attempts $a, done at $(date +%T.%N)" >>"$log"
            return 0
        fi
        echo "--- attempt $a failed" >>"$log"
        sleep 1
    done
    return 1
}

# ---------------------------------------------------------------- 1. tokens
setup() {
    printf '%s' "$ALICE_PW" | sw admin create-user alice --email alice@example.com --password-stdin
    sw admin create-org team --owner alice
    mkdir -p "$W/img" "$W/src"
    make_image one 5 3
    make_image two 8
    make_image three 1
    make_image four 12
    make_image crash1 6 2
    make_image crash2 7
    make_image crash3 4 4
    make_image crash4 9
    ls -la "$W/img"
}
check "setup: account alice, org team, 8 test images (random layers, 1-12 MiB)" setup

login() {
    printf '%s' "$ALICE_PW" | crn auth login "$LB" -u alice --password-stdin
    grep -q "$LB" "$DOCKER_CONFIG/config.json"
}
check "crane auth login through the balancer" login

token_everywhere() {
    local tok i code
    tok="$(curl -sf --max-time 10 -u "alice:$ALICE_PW" \
        "http://$LB/auth/token?service=slipway&scope=repository:team/probe:pull,push" | jq -r .token)"
    [ -n "$tok" ] && [ "$tok" != null ]
    for ((i = 0; i < N; i++)); do
        code="$(http_code "http://127.0.0.1:${PORTS[$i]}/v2/team/probe/tags/list" -H "Authorization: Bearer $tok")"
        # 404 (unknown repository) means the token was accepted; 401 would mean it was not
        case "$code" in 200 | 404) echo "r$((i + 1)) accepts the token (HTTP $code)" ;; *)
            echo "r$((i + 1)) refuses a token issued through the balancer: HTTP $code" >&2
            return 1
            ;;
        esac
    done
    expect_eq "no token" 401 "$(http_code "http://127.0.0.1:${PORTS[0]}/v2/team/probe/tags/list")"
}
check "a token from the balancer is accepted by every replica" token_everywhere

upload_across() {
    local tok h loc f="$W/chunks.bin" d size half
    tok="$(curl -sf --max-time 10 -u "alice:$ALICE_PW" \
        "http://$LB/auth/token?service=slipway&scope=repository:team/chunked:pull,push" | jq -r .token)"
    head -c $((3 * 1024 * 1024 + 17)) /dev/urandom >"$f"
    d="$(sha "$f")"
    size="$(stat -c %s "$f")"
    half=$((size / 2))
    h="$(curl -sS -D - -o /dev/null --max-time 30 -X POST -H "Authorization: Bearer $tok" \
        "http://127.0.0.1:${PORTS[0]}/v2/team/chunked/blobs/uploads/")"
    grep -q '^HTTP/1.1 202' <<<"$h"
    loc="$(grep -i '^location:' <<<"$h" | cut -d' ' -f2- | tr -d '\r')"
    echo "r1 opened $loc"
    h="$(head -c "$half" "$f" | curl -sS -D - -o /dev/null --max-time 30 -X PATCH -H "Authorization: Bearer $tok" \
        -H 'Content-Type: application/octet-stream' -H "Content-Range: 0-$((half - 1))" --data-binary @- \
        "http://127.0.0.1:${PORTS[1]}$loc")"
    grep -q '^HTTP/1.1 202' <<<"$h" || { echo "PATCH on r2: $h" >&2; return 1; }
    loc="$(grep -i '^location:' <<<"$h" | cut -d' ' -f2- | tr -d '\r')"
    echo "r2 took bytes 0-$((half - 1))"
    local r3=$((N - 1)) sep='?'
    case "$loc" in *\?*) sep='&' ;; esac
    h="$(tail -c +$((half + 1)) "$f" | curl -sS -D - -o /dev/null --max-time 30 -X PUT -H "Authorization: Bearer $tok" \
        -H 'Content-Type: application/octet-stream' -H "Content-Range: $half-$((size - 1))" --data-binary @- \
        "http://127.0.0.1:${PORTS[$r3]}$loc${sep}digest=$d")"
    grep -q '^HTTP/1.1 201' <<<"$h" || { echo "closing PUT on r$((r3 + 1)): $h" >&2; return 1; }
    echo "r$((r3 + 1)) closed it"
    curl -sf --max-time 30 -H "Authorization: Bearer $tok" "http://$LB/v2/team/chunked/blobs/$d" -o "$W/chunks.back"
    cmp "$f" "$W/chunks.back"
}
check "one upload session: opened on r1, continued on r2, closed on r$N" upload_across

# ------------------------------------------------------------- push & pull
HA_BEFORE="$W/ha-before"
ha_servers >"$HA_BEFORE" || true
push_pull() {
    local name
    for name in one two three four; do
        crn push "$W/img/$name.tar" "$LB/team/$name:1" </dev/null
    done
    for name in one two three four; do
        crn validate --remote "$LB/team/$name:1" </dev/null
        pull_and_verify "$LB/team/$name:1" "$W/pulled-$name"
        expect_eq "manifest digest of team/$name:1" "$(crn digest --tarball "$W/img/$name.tar")" \
            "$(crn digest "$LB/team/$name:1" </dev/null)"
    done
    echo "HAProxy requests per replica before/after:"
    cat "$HA_BEFORE"
    ha_servers | tee "$W/ha-after"
    # every replica served part of it (round robin)
    local s before after
    while read -r s _ after; do
        before="$(awk -v s="$s" '$1 == s { print $3 }' "$HA_BEFORE")"
        [ "$after" -gt "${before:-0}" ] || { echo "$s served none of the pushes and pulls" >&2; return 1; }
    done <"$W/ha-after"
}
E2E_CHECK_TIMEOUT=180 check "4 images pushed and pulled through the balancer, all validate, spread over every replica" push_pull

# --------------------------------------------------------------- scheduler
gc_lines() { # all "garbage collected" lines of every replica's log, timestamps only
    local i
    for ((i = 0; i < N; i++)); do
        { grep 'INFO slipway: garbage collected' "${LOGS[$i]}" || true; } | cut -d' ' -f1 | sed "s/\$/ r$((i + 1))/"
    done | sort
}
scheduler_once() {
    local runs0 runs1 lines0 lines1 window=14 got ran_on
    sw jobs status
    runs0="$(psql_q "SELECT runs FROM schedules WHERE name = 'gc'")"
    lines0="$(gc_lines | wc -l)"
    sleep "$window"
    # a run that started may still be finishing: wait for the counter to settle
    sleep 1
    runs1="$(psql_q "SELECT runs FROM schedules WHERE name = 'gc'")"
    gc_lines >"$W/gc-runs"
    lines1="$(wc -l <"$W/gc-runs")"
    sw jobs status
    got=$((lines1 - lines0))
    echo "gc runs in ${window}s: $got logged by the replicas, schedule counter +$((runs1 - runs0))"
    tail -n "$got" "$W/gc-runs"
    ran_on="$(tail -n "$got" "$W/gc-runs" | cut -d' ' -f2 | sort -u | tr '\n' ' ')"
    echo "ran on: $ran_on"
    echo "gc runs per replica over the whole run so far (every scheduler competes for each slot):"
    cut -d' ' -f2 "$W/gc-runs" | sort | uniq -c
    expect_eq "runs logged vs schedule counter" "$((runs1 - runs0))" "$got"
    # every 2 s: about window/2 runs for the cluster; each replica on its own would make N times that
    if [ "$got" -lt $((window / 2 - 2)) ] || [ "$got" -gt $((window / 2 + 1)) ]; then
        echo "expected about $((window / 2)) gc runs in ${window}s for the whole cluster, got $got" >&2
        return 1
    fi
    # no two runs in one 2 s slot: consecutive runs (any replicas) at least 1.5 s apart
    tail -n "$got" "$W/gc-runs" | cut -d' ' -f1 | python3 -c '
import sys, datetime
ts = [datetime.datetime.fromisoformat(l.strip().rstrip("Z")) for l in sys.stdin if l.strip()]
gaps = [(b - a).total_seconds() for a, b in zip(ts, ts[1:])]
print("gaps between runs (s):", " ".join(f"{g:.2f}" for g in gaps))
sys.exit(1 if any(g < 1.5 for g in gaps) else 0)
'
}
E2E_CHECK_TIMEOUT=60 check "scheduler: gc (every 2 s) runs once per slot across $N replicas" scheduler_once

# -------------------------------------------------------------- rate limit
rate_limit() {
    local tok i code ok=0 limited=0 other=0
    sw admin set-access team/three public
    ha_servers >"$W/ha-rl-before"
    tok="$(curl -sf --max-time 10 "http://$LB/auth/token?service=slipway&scope=repository:team/three:pull" | jq -r .token)"
    [ -n "$tok" ] && [ "$tok" != null ]
    for ((i = 1; i <= ANON + EXTRA; i++)); do
        code="$(http_code "http://$LB/v2/team/three/manifests/1" -H "Authorization: Bearer $tok" \
            -H "Accept: $MANIFEST_TYPES")"
        echo "GET $i: $code"
        case "$code" in 200) ok=$((ok + 1)) ;; 429) limited=$((limited + 1)) ;; *) other=$((other + 1)) ;; esac
    done
    echo "HAProxy requests per replica before/after:"
    cat "$W/ha-rl-before"
    ha_servers | tee "$W/ha-rl-after"
    local s before after
    while read -r s _ after; do
        before="$(awk -v s="$s" '$1 == s { print $3 }' "$W/ha-rl-before")"
        [ "$after" -gt "${before:-0}" ] || { echo "$s got none of the GETs" >&2; return 1; }
    done <"$W/ha-rl-after"
    expect_eq "admitted anonymous pulls" "$ANON" "$ok"
    expect_eq "refused with 429" "$EXTRA" "$limited"
    expect_eq "other answers" 0 "$other"
}
check "rate limit: anonymous_pulls=$ANON holds for the cluster ($((ANON + EXTRA)) GETs round robin)" rate_limit

# ----------------------------------------------------------------- SIGKILL
VICTIM=1 # r2
CUSTOMERS=6
customers() {
    local c tok
    for ((c = 1; c <= CUSTOMERS; c++)); do
        printf '%s' "$(pw "cust$c")" | sw admin create-user "cust$c" --email "cust$c@example.com" --password-stdin
        tok="$(sw admin create-token "cust$c" --name shop --scope api:write | grep -o 'slw_[A-Za-z0-9_]*' | head -n 1)"
        [ -n "$tok" ]
        printf '%s' "$tok" >"$W/cust$c.token"
    done
}
check "$CUSTOMERS customers with API tokens" customers

CHECKOUT_BODY='{"product": "nimbus/nimbus-cache", "tier": "enterprise", "accept_license": 1, "payment_method": "4242 4242 4242 4242"}'
# checkout C BASE: one POST /api/v1/checkout; status in $W/cC.status, body in $W/cC.body
checkout() {
    curl -s -o "$W/c$1.body" -w '%{http_code}' --max-time 30 -X POST \
        -H "Authorization: Bearer $(cat "$W/cust$1.token")" -H 'Content-Type: application/json' \
        -H "Idempotency-Key: replicas-checkout-$1" --data "$CHECKOUT_BODY" "$2/api/v1/checkout" >"$W/c$1.status" || true
    [ "$(cat "$W/c$1.status")" = 201 ]
}
# buyer C: the first attempt at the doomed replica, then (once it has been killed) retries
# through the balancer with the same key
buyer() {
    local c="$1" a
    if checkout "$c" "http://127.0.0.1:${PORTS[$VICTIM]}"; then
        echo "first attempt (r$((VICTIM + 1))): 201 $(jq -r .subscription.id "$W/c$c.body")"
        cp "$W/c$c.body" "$W/c$c.first"
    else
        echo "first attempt (r$((VICTIM + 1))): HTTP $(cat "$W/c$c.status") at $(date +%T.%N)"
    fi
    for ((a = 1; a <= 100; a++)); do
        [ -f "$W/killed" ] && break
        sleep 0.1
    done
    # A key claimed by the killed replica is held for its lease (30 s), then taken over.
    for ((a = 1; a <= 120; a++)); do
        if checkout "$c" "http://$LB"; then
            echo "retry $a (balancer): 201 $(jq -r .subscription.id "$W/c$c.body")"
            return 0
        fi
        echo "retry $a (balancer): HTTP $(cat "$W/c$c.status") $(head -c 200 "$W/c$c.body")"
        sleep 0.5
    done
    return 1
}
# Checkouts in flight when the replica dies: an exclusive lock on the subscriptions table
# (held by psql for a few seconds) makes them wait on the database after they claimed
# their Idempotency-Key, so the kill lands inside them every run.
LOCK_PID=
# shellcheck disable=SC2016
on_exit '[ -n "${LOCK_PID:-}" ] && kill_tree "$LOCK_PID" 2'
hold_lock() { # hold_lock SECONDS
    psql "$DB_URL" -qX >"$W/lock.log" 2>&1 <<EOF &
BEGIN;
LOCK TABLE subscriptions IN ACCESS EXCLUSIVE MODE;
SELECT pg_sleep($1);
COMMIT;
EOF
    # shellcheck disable=SC2034 # read by the exit cleanup
    LOCK_PID=$!
    wait_until 10 "the lock on subscriptions" lock_held
}
lock_held() {
    [ "$(psql_q "SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation
        WHERE c.relname = 'subscriptions' AND l.mode = 'AccessExclusiveLock' AND l.granted")" = 1 ]
}
running_keys() { # running_keys N: N idempotency keys claimed and still running
    [ "$(psql_q "SELECT count(*) FROM idempotency_keys WHERE state = 'running'")" = "$1" ]
}

CLIENTS=() CLIENT_NAMES=()
stop_clients() {
    local p
    for p in "${CLIENTS[@]}"; do kill_tree "$p" 2; done
}
on_exit stop_clients
launch() { # launch NAME CMD...: in the background, output in $W/client-NAME.log
    local name="$1"
    shift
    ("$@") </dev/null >"$W/client-$name.log" 2>&1 &
    CLIENTS+=($!)
    CLIENT_NAMES+=("$name")
}
KILL_LOG="$W/kill.log"
EARLY=3 # buyers 1..EARLY finish their first attempt before the kill; the others are cut by it
sigkill_round() {
    local i c name
    CLIENTS=() CLIENT_NAMES=()
    rm -f "$W/killed"
    # checkouts first: EARLY answered by the doomed replica, the others stuck in it
    for ((c = 1; c <= EARLY; c++)); do launch "buyer$c" buyer "$c"; done
    for ((c = 1; c <= EARLY; c++)); do
        wait_until 20 "first checkout of cust$c" test -s "$W/c$c.status" 2>>"$KILL_LOG" || echo "cust$c: no first answer" >>"$KILL_LOG"
    done
    hold_lock 10 2>>"$KILL_LOG" || echo "the lock on subscriptions was not granted" >>"$KILL_LOG"
    for ((c = EARLY + 1; c <= CUSTOMERS; c++)); do launch "buyer$c" buyer "$c"; done
    wait_until 10 "checkouts waiting on the database" running_keys $((CUSTOMERS - EARLY)) 2>>"$KILL_LOG" ||
        echo "not every late checkout claimed its key before the kill" >>"$KILL_LOG"
    # then pushes and pulls through the balancer; the kill once the victim serves some of them
    for i in 1 2 3 4; do
        launch "push-crash$i" retry 5 "$W/client-push-crash$i.log" crn push "$W/img/crash$i.tar" "$LB/team/crash$i:1"
    done
    for name in one two four; do
        launch "pull-$name" retry 5 "$W/client-pull-$name.log" pull_and_verify "$LB/team/$name:1" "$W/crash-pulled-$name"
    done
    wait_until 10 "r$((VICTIM + 1)) serving pushes and pulls" victim_busy 2>>"$KILL_LOG" || echo "r$((VICTIM + 1)) had no session open" >>"$KILL_LOG"
    sleep 0.3
    echo "HAProxy sessions open to r$((VICTIM + 1)) at the kill: $(ha_scur "r$((VICTIM + 1))")" >>"$KILL_LOG"
    {
        echo "idempotency keys running at the kill: $(psql_q "SELECT count(*) FROM idempotency_keys WHERE state = 'running'")"
        echo "kill -9 r$((VICTIM + 1)) (pid ${PIDS[$VICTIM]}) at $(date +%T.%N)"
        echo "=== replicas.sh $(date +%T.%N | cut -c1-12): kill -9" >>"${LOGS[$VICTIM]}"
        kill -KILL "${PIDS[$VICTIM]}"
        wait "${PIDS[$VICTIM]}" 2>/dev/null || true
        PIDS[VICTIM]=
    } >>"$KILL_LOG" 2>&1
    touch "$W/killed"
}
sigkill_round
CLIENT_RC=()
reap() { # waits up to 150 s for every client
    local deadline=$((SECONDS + 150)) i
    for i in "${!CLIENTS[@]}"; do
        while _e2e_alive "${CLIENTS[$i]}" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
        _e2e_alive "${CLIENTS[$i]}" && kill_tree "${CLIENTS[$i]}" 2
        CLIENT_RC[i]=0
        wait "${CLIENTS[$i]}" 2>/dev/null || CLIENT_RC[i]=$?
    done
}
reap

clients_done() { # clients_done PREFIX: every client whose name starts with PREFIX succeeded
    local i bad=0 seen=0
    cat "$KILL_LOG"
    for i in "${!CLIENT_NAMES[@]}"; do
        case "${CLIENT_NAMES[$i]}" in "$1"*) ;; *) continue ;; esac
        seen=$((seen + 1))
        echo "--- ${CLIENT_NAMES[$i]}: exit ${CLIENT_RC[$i]}, $(grep -c 'attempt .* failed' "$W/client-${CLIENT_NAMES[$i]}.log" || true) failed attempts"
        grep -E 'attempts [0-9]|failed|retry|first attempt|error' "$W/client-${CLIENT_NAMES[$i]}.log" | tail -n 8 || true
        [ "${CLIENT_RC[$i]}" = 0 ] || bad=$((bad + 1))
    done
    [ "$seen" -gt 0 ] || { echo "no client named $1*" >&2; return 1; }
    expect_eq "clients $1* that did not succeed" 0 "$bad"
}
crash_pushes() {
    local i
    clients_done push-
    echo "requests the clients had to retry (crane's own retries): $(cat "$W"/client-push-*.log "$W"/client-pull-*.log | grep -c retrying || true)"
    for i in 1 2 3 4; do
        crn validate --remote "$LB/team/crash$i:1" </dev/null
        expect_eq "digest of team/crash$i:1" "$(crn digest --tarball "$W/img/crash$i.tar")" "$(crn digest "$LB/team/crash$i:1" </dev/null)"
    done
}
E2E_CHECK_TIMEOUT=120 check "SIGKILL of r$((VICTIM + 1)) mid-traffic: every push succeeds through the balancer and validates" crash_pushes
check "SIGKILL: every pull succeeds, every pulled blob matches its digest" clients_done pull-

fsck_clean() {
    local report rc=0
    report="$(sw fsck 2>"$W/fsck.stderr")" || rc=$?
    echo "$report"
    if [ "$rc" != 0 ] && [ -z "$report" ]; then cat "$W/fsck.stderr" >&2; fi
    expect_eq "fsck problems" 0 "$(jq '.problems | length' <<<"$report")"
    expect_eq "fsck exit status" 0 "$rc"
}
E2E_CHECK_TIMEOUT=120 check "SIGKILL: slipway fsck clean on the shared database and bucket" fsck_clean

# The buyers: every one ends with one 201 from a retry with its key
checkouts_completed() {
    local c
    clients_done buyer || {
        for ((c = 1; c <= CUSTOMERS; c++)); do
            [ "$(cat "$W/c$c.status")" = 201 ] && continue
            echo "cust$c: last answer HTTP $(cat "$W/c$c.status"): $(cat "$W/c$c.body")" >&2
            echo "  its idempotency key row: $(psql_q "SELECT k.state, k.status, k.created_at FROM idempotency_keys k
                JOIN accounts a ON k.caller IN (a.id, a.name) WHERE a.name = 'cust$c'" | tr '\n' ' ')" >&2
            echo "  its subscriptions: $(psql_q "SELECT s.status FROM subscriptions s JOIN accounts a ON a.id = s.account_id WHERE a.name = 'cust$c'" | tr '\n' ' ')" >&2
            echo "  a checkout with a new key: HTTP $(curl -s -o "$W/c$c.newkey" -w '%{http_code}' --max-time 30 -X POST \
                -H "Authorization: Bearer $(cat "$W/cust$c.token")" -H 'Content-Type: application/json' \
                -H "Idempotency-Key: replicas-checkout-$c-new" --data "$CHECKOUT_BODY" "http://$LB/api/v1/checkout") $(head -c 250 "$W/c$c.newkey")" >&2
        done
        return 1
    }
}
check "SIGKILL: every checkout interrupted by the kill completes when retried with its Idempotency-Key" checkouts_completed

# Whatever the buyers saw: never two subscriptions or payments for one customer, a retry
# answers with the first attempt's subscription, a subscription past its reservation
# ('incomplete', made before the card is charged) has exactly its one payment, and the
# ledger balances
checkouts_once() {
    local c sub first n_sub n_res n_pay interrupted=0 done_first=0 bought=0 bad=0
    for ((c = 1; c <= CUSTOMERS; c++)); do
        if [ -f "$W/c$c.first" ]; then
            done_first=$((done_first + 1))
            first="$(jq -r .subscription.id "$W/c$c.first")"
            sub="$(jq -r .subscription.id "$W/c$c.body")"
            expect_eq "cust$c: subscription of the retry = of the first attempt" "$first" "$sub" || bad=$((bad + 1))
        else
            interrupted=$((interrupted + 1))
        fi
        n_sub="$(psql_q "SELECT count(*) FROM subscriptions s JOIN accounts a ON a.id = s.account_id
            WHERE a.name = 'cust$c' AND s.status <> 'incomplete'")"
        n_res="$(psql_q "SELECT count(*) FROM subscriptions s JOIN accounts a ON a.id = s.account_id
            WHERE a.name = 'cust$c' AND s.status = 'incomplete'")"
        n_pay="$(psql_q "SELECT count(*) FROM payments p JOIN accounts a ON a.id = p.account_id WHERE a.name = 'cust$c'")"
        echo "cust$c: $n_sub subscriptions, $n_pay payments, $n_res open reservations, last answer HTTP $(cat "$W/c$c.status")"
        if [ "$n_sub" -gt 1 ] || [ "$n_pay" -gt 1 ] || [ $((n_sub + n_res)) -gt 1 ]; then
            echo "cust$c was charged or subscribed twice" >&2
            bad=$((bad + 1))
        fi
        expect_eq "cust$c: payments = subscriptions" "$n_sub" "$n_pay" || bad=$((bad + 1))
        if [ "$(cat "$W/c$c.status")" = 201 ]; then
            expect_eq "cust$c: subscriptions after a 201" 1 "$n_sub" || bad=$((bad + 1))
            bought=$((bought + 1))
        fi
    done
    echo "$done_first first attempts answered before the kill, $interrupted cut by it; $bought customers got a 201"
    sw ledger verify | tee "$W/verify.txt"
    grep -q "records       agree with the ledger" "$W/verify.txt"
    expect_eq "customers with a wrong count" 0 "$bad"
}
check "SIGKILL: at most one subscription and payment per customer, replayed answers, ledger verify" checkouts_once

# The restart happens here, not inside the check (a check runs in a subshell, and the
# replica's pid must reach the cleanup).
RESTART_RC=0
start_replica "$VICTIM" >"$W/restart.log" 2>&1 || RESTART_RC=$?
restarted() {
    cat "$W/restart.log"
    expect_eq "restart of r$((VICTIM + 1)) (readyz)" 0 "$RESTART_RC"
    wait_until 30 "HAProxy marks r$((VICTIM + 1)) up" ha_up "r$((VICTIM + 1))"
    ha_servers
    local tok before after i
    tok="$(curl -sf --max-time 10 -u "alice:$ALICE_PW" \
        "http://$LB/auth/token?service=slipway&scope=repository:team/one:pull" | jq -r .token)"
    expect_eq "r$((VICTIM + 1)) direct manifest GET" 200 \
        "$(http_code "http://127.0.0.1:${PORTS[$VICTIM]}/v2/team/crash1/manifests/1" -H "Authorization: Bearer $(curl -sf --max-time 10 -u "alice:$ALICE_PW" \
            "http://$LB/auth/token?service=slipway&scope=repository:team/crash1:pull" | jq -r .token)")"
    before="$(ha_servers | awk -v s="r$((VICTIM + 1))" '$1 == s { print $3 }')"
    for ((i = 0; i < 2 * N; i++)); do
        expect_eq "GET through the balancer" 200 "$(http_code "http://$LB/v2/team/one/manifests/1" -H "Authorization: Bearer $tok" \
            -H "Accept: $MANIFEST_TYPES")"
    done
    after="$(ha_servers | awk -v s="r$((VICTIM + 1))" '$1 == s { print $3 }')"
    echo "r$((VICTIM + 1)) served $((after - before)) of $((2 * N)) requests through the balancer"
    [ "$((after - before))" -ge 1 ]
    crn validate --remote "$LB/team/crash2:1" </dev/null
}
E2E_CHECK_TIMEOUT=90 check "the killed replica restarts, HAProxy marks it up, it serves again" restarted

no_panic() {
    local i
    for ((i = 0; i < N; i++)); do
        if grep -n -i -E 'panicked|RUST_BACKTRACE' "${LOGS[$i]}" >&2; then
            echo "replica r$((i + 1)) panicked" >&2
            return 1
        fi
    done
    echo "no panic in $N replica logs"
}
check "no panic in any replica's log" no_panic
echo "replicas: done in ${SECONDS}s"
summary

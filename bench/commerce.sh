#!/usr/bin/env bash
# The commerce benchmarks of issue 16, on SQLite and on PostgreSQL:
#   renewals  the scheduler renews 100,000 due subscriptions in under 60 s;
#   verify    `slipway ledger verify` over 1,000,000 ledger transactions in under 10 s;
#   checkout  sandbox checkout p99 under 50 ms at 20 concurrent.
# There is no peer in the same run for any of them: the report gives absolute figures
# against the targets. Prints a markdown report on stdout; progress goes to stderr. See
# bench/README.md.
#
#   bench/commerce.sh [sqlite|postgres|both]      (default: both)
#
# Per backend, in a fresh database: `slipway demo` (the demo store: tiers, listings,
# publishers), then
#   checkout: BENCH_COMMERCE_CUSTOMERS customers, each with an api:write token, inserted
#     with SQL (commerce-load.py tokens); `slipway serve`; wrk (checkout.lua: one thread,
#     little CPU taken from the server's 2 cores) keeps 20 checkouts in flight, each a new
#     customer buying nimbus/nimbus-cache enterprise (49.00 USD a month, pm_card_visa) with
#     its own Idempotency-Key, for BENCH_COMMERCE_WARMUP_SECONDS untimed then
#     BENCH_COMMERCE_CHECKOUT_SECONDS timed; latency per request as wrk sees it;
#   renewals: BENCH_COMMERCE_RENEWALS active monthly subscriptions whose period ended a
#     minute ago, spread over the demo's paid monthly tiers (one live subscription per
#     customer and tier), each customer with a saved sandbox card, and as many paid
#     charges in the ledger (as the verify bench seeds them); `slipway serve` with
#     the renewal schedule every second; timed from the server's start until every one
#     of them is in its next period (polled once a second), or BENCH_COMMERCE_RENEWAL_LIMIT
#     seconds (then the rate so far is reported); `slipway ledger verify` must pass after;
#   verify: ledger transactions added with SQL up to BENCH_COMMERCE_LEDGER in all, each a
#     balanced charge of 3 entries with its invoice (one line), its succeeded payment and
#     a gap-free invoice number, so the commerce cross-checks have as much work as the
#     ledger's; `slipway ledger verify` timed BENCH_COMMERCE_VERIFY_RUNS (3) times, median.
#
# Knobs: BENCH_COMMERCE_RENEWALS (100000), BENCH_COMMERCE_RENEWAL_LIMIT (900 s),
# BENCH_COMMERCE_LEDGER (1000000), BENCH_COMMERCE_VERIFY_RUNS (3),
# BENCH_COMMERCE_CUSTOMERS (16000), BENCH_COMMERCE_CHECKOUT_SECONDS (10),
# BENCH_COMMERCE_WARMUP_SECONDS (2),
# BENCH_COMMERCE_CONCURRENCY (20), BENCH_COMMERCE_BENCHES ("checkout renewals verify"),
# BENCH_COMMERCE_OUT (target/bench-data: raw figures, logs and the report go to
# commerce-results-DATE/ there; `(set -a; . DIR/meta.env; bench/commerce-load.py report
# DIR/results.tsv)` renders the report again), BENCH_WAIT_QUIET, BENCH_WAIT_LOCK, and
# E2E_SLIPWAY_BIN / BENCH_BUILD=0 / BENCH_REV as
# for bench/run.sh.
#
# PostgreSQL is a private cluster on 127.0.0.1 (tests/e2e/lib.sh: start_postgres, fsync
# off); Slipway listens on 127.0.0.1 only; every external command has a time limit; the
# servers are stopped and temporary files removed on exit, even on Ctrl-C.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# REPO_ROOT, E2E_TMP (removed on exit), on_exit, free_port, wait_until, kill_tree,
# start_postgres.
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
source "$BENCH_DIR/../tests/e2e/lib.sh"
# log, die, bench_lock, builds and the machine's state.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

what="${1:-both}"
bench_backends "$what"
RENEWALS="${BENCH_COMMERCE_RENEWALS:-100000}"
RENEWAL_LIMIT="${BENCH_COMMERCE_RENEWAL_LIMIT:-900}"
LEDGER="${BENCH_COMMERCE_LEDGER:-1000000}"
VERIFY_RUNS="${BENCH_COMMERCE_VERIFY_RUNS:-3}"
CHECKOUT_SECONDS="${BENCH_COMMERCE_CHECKOUT_SECONDS:-10}"
WARMUP_SECONDS="${BENCH_COMMERCE_WARMUP_SECONDS:-2}"
CUSTOMERS="${BENCH_COMMERCE_CUSTOMERS:-16000}"
CONCURRENCY="${BENCH_COMMERCE_CONCURRENCY:-20}"
BENCHES="${BENCH_COMMERCE_BENCHES:-checkout renewals verify}"
LOAD="$BENCH_DIR/commerce-load.py"
DAY_MS=86400000

need python3 timeout curl sqlite3 wrk
case " ${BACKENDS[*]} " in *" postgres "*) command -v psql >/dev/null || die "psql is missing" ;; esac

bench_lock
bench_build_slipway
BIN="$E2E_SLIPWAY_BIN"

# Raw figures, server logs and the renewals' progress are kept for the record; the
# databases are in the temp dir.
OUT="${BENCH_COMMERCE_OUT:-$REPO_ROOT/target/bench-data}/commerce-results-$(date -u +%Y%m%d-%H%M%S)"
mkdir -p "$OUT"
RESULTS="$OUT/results.tsv"
: >"$RESULTS"
W="$E2E_TMP/work"
mkdir -p "$W"

# --------------------------------------------------------------- machine state
# "Ours": this script's tree (the client, sqlite3, psql, slipway ledger verify), the
# server and the PostgreSQL cluster.
SLIPWAY_PID=""
PG_PIDFILE=""
bench_server_ticks() { echo $(($(_proc_ticks "${SLIPWAY_PID:-0}") + $(pg_ticks))); }
bench_server_pids() { pg_pids; }

# measure_start / measure_end: what else ran between the two (fields for `record`).
measure_start() {
    F0="$(foreign_snapshot)"
    M0="$(cpu_mark)"
}
measure_end() {
    local m1 f1 others steal
    m1="$(cpu_mark)"
    f1="$(foreign_snapshot)"
    read -r others steal <<<"$(cpu_others "$M0" "$m1")"
    MEASURED="others=$others steal=$steal builds=$(foreign_builds) top=$(foreign_top "$F0" "$f1" "$M0" "$m1")"
}

now_ms() { echo $(($(date +%s%N) / 1000000)); }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", (b - a) / 1e9 }'; }

# ------------------------------------------------------------------ databases
# sql, sql_file and series are bench/lib.sh's, on BACKEND's database (DIR or DB_URL).
analyze() {
    # After a bulk load the planner needs statistics; autovacuum would gather them
    # within a minute, this does it now and the same way every run.
    case "$BACKEND" in
        sqlite) sql "ANALYZE" >/dev/null ;;
        postgres) sql "VACUUM ANALYZE" >/dev/null ;;
    esac
}

# ----------------------------------------------------------------- the server
ADDR=""
# start_server NAME [VAR=VALUE...]: `slipway serve` with scheduled GC off.
start_server() {
    local name="$1" port
    shift
    port="$(free_port)"
    SERVER_LOG="$OUT/serve-$BACKEND-$name.log"
    env SLIPWAY_GC__INTERVAL_SECS=0 "$@" "$BIN" serve --data-dir "$DIR" --listen "127.0.0.1:$port" >>"$SERVER_LOG" 2>&1 &
    SLIPWAY_PID=$!
    on_exit "kill_tree $SLIPWAY_PID 10"
    ADDR="127.0.0.1:$port"
    wait_until 120 "slipway on $ADDR" curl -sf --max-time 2 "http://$ADDR/readyz" || {
        tail -n 20 "$SERVER_LOG" >&2
        die "slipway did not become ready"
    }
}
stop_server() {
    kill_tree "$SLIPWAY_PID" 10
    SLIPWAY_PID=""
}

verify_once() { # -> seconds; the output in $W/verify.txt; dies unless it passes
    local t0 t1
    t0="$(date +%s%N)"
    timeout 1800 "$BIN" --data-dir "$DIR" ledger verify >"$W/verify.txt" 2>&1 || {
        cat "$W/verify.txt" >&2
        die "$BACKEND: slipway ledger verify failed"
    }
    t1="$(date +%s%N)"
    elapsed "$t0" "$t1"
}

# ------------------------------------------------------------------- benches
checkout_run() { # SECONDS SKIP RUN: wrk's figures (a JSON object) for SECONDS of checkouts after the first SKIP tokens
    timeout $(($1 + 120)) wrk -t1 -c"$CONCURRENCY" -d"${1}s" --timeout 30s -s "$BENCH_DIR/checkout.lua" "http://$ADDR" \
        -- "$W/tokens.txt" "$2" "$3" | grep '^{'
}

bench_checkout() {
    local out warm skip
    log "$BACKEND: $CUSTOMERS customers with tokens"
    python3 "$LOAD" tokens "$CUSTOMERS" "$(now_ms)" "$W/customers.sql" "$W/tokens.txt"
    sql_file "$W/customers.sql"
    analyze
    start_server checkout
    wait_quiet
    log "$BACKEND: checkouts at $CONCURRENCY concurrent for ${CHECKOUT_SECONDS}s (after ${WARMUP_SECONDS}s untimed)"
    warm="$(checkout_run "$WARMUP_SECONDS" 0 warmup)" || die "the warm-up's checkouts failed"
    # The warm-up's customers have bought; those of the requests in flight when it
    # stopped may have too.
    skip=$(($(python3 -c 'import json, sys; print(json.loads(sys.argv[1])["count"])' "$warm") + 2 * CONCURRENCY))
    local c0 c1 p0 p1
    c0="$(_proc_ticks "$SLIPWAY_PID")"
    p0="$(pg_ticks)"
    measure_start
    out="$(checkout_run "$CHECKOUT_SECONDS" "$skip" timed)" || die "the checkout client failed"
    measure_end
    c1="$(_proc_ticks "$SLIPWAY_PID")"
    p1="$(pg_ticks)"
    stop_server
    local fields
    fields="$(python3 -c 'import json, sys; d = json.loads(sys.argv[1]); print(" ".join(f"{k}={v}" for k, v in d.items() if k != "first_errors"))' "$out")"
    # shellcheck disable=SC2086 # key=value fields, one argument each
    record checkout "$BACKEND" $fields "concurrency=$CONCURRENCY" "server_ticks=$((c1 - c0))" "pg_ticks=$((p1 - p0))" $MEASURED
    log "$BACKEND checkout: $out ($MEASURED)"
    grep -q '"errors": 0,' <<<"$out" || die "$BACKEND: some checkouts failed (401s past the last customer: raise BENCH_COMMERCE_CUSTOMERS): $out"
}

bench_renewals() {
    local now end tiers accounts
    now="$(now_ms)"
    # Due since a minute ago; renewed, a subscription's period ends a month after this.
    end=$((now - 60000))
    sql "DROP TABLE IF EXISTS bench_tiers" >/dev/null
    sql "CREATE TABLE bench_tiers AS SELECT ROW_NUMBER() OVER (ORDER BY id) - 1 AS k, id, amount, currency
         FROM tiers WHERE amount > 0 AND billing_period = 'month'" >/dev/null
    tiers="$(sql "SELECT COUNT(*) FROM bench_tiers")"
    [ "$tiers" -gt 0 ] || die "$BACKEND: the demo has no paid monthly tier"
    accounts=$(((RENEWALS + tiers - 1) / tiers))
    log "$BACKEND: seeding $RENEWALS due subscriptions ($accounts customers x $tiers paid monthly tiers)"
    cat >"$W/renewals.sql" <<EOF
INSERT INTO accounts (id, name, email, email_verified_at, password_hash, site_role, kind, robot_org, created_at, disabled_at)
SELECT 'benchsub-' || i, 'benchsub' || i, 'benchsub' || i || '@bench.invalid', $now, NULL, 'user', 'person', NULL, $now, NULL
FROM $(series "$accounts") AS n;
INSERT INTO payment_methods (id, account_id, provider, reference, brand, last4, created_at)
SELECT 'benchpm-' || i, 'benchsub-' || i, 'sandbox', 'pm_card_visa', 'visa', '4242', $now FROM $(series "$accounts") AS n;
INSERT INTO subscriptions (id, account_id, tier_id, license_version, license_accepted_at, status, amount, currency,
    billing_period, payment_method_id, current_period_start, current_period_end, cancel_at_period_end, created_at, updated_at)
SELECT 'benchs-' || n.i, 'benchsub-' || (n.i / $tiers), t.id, 1, $now, 'active', t.amount, t.currency,
    'month', 'benchpm-' || (n.i / $tiers), $((end - 30 * DAY_MS)), $end, 0, $now, $now
FROM $(series "$RENEWALS") AS n JOIN bench_tiers t ON t.k = n.i % $tiers;
INSERT INTO subscription_periods (id, subscription_id, kind, period_start, period_end, invoice_id, created_at)
SELECT 'benchsp-' || i, 'benchs-' || i, 'paid', $((end - 30 * DAY_MS)), $end, NULL, $now FROM $(series "$RENEWALS") AS n;
INSERT INTO entitlements (id, account_id, tier, source, created_at, expires_at)
SELECT id, account_id, tier_id, 'subscription', $now, $end FROM subscriptions WHERE id LIKE 'benchs-%';
DROP TABLE bench_tiers;
EOF
    sql_file "$W/renewals.sql"
    # The charges that paid for the periods now ending: a store renewing this many has
    # at least as many in its ledger and payments. Without them those tables start empty
    # and analyzed as such, and PostgreSQL checks each new entry's transaction (the
    # foreign key) with a sequential scan until autovacuum analyzes the table again:
    # measured, 428 million rows read in the first 34,000 renewals.
    log "$BACKEND: seeding the $RENEWALS charges of the periods ending"
    seed_charges "$RENEWALS" benchs-
    analyze
    local due
    due="$(sql "SELECT COUNT(*) FROM subscriptions WHERE status = 'active' AND current_period_end <= $end")"
    wait_quiet
    log "$BACKEND: renewing $due due subscriptions (renewal schedule every 1 s; limit ${RENEWAL_LIMIT}s)"
    local t0 t1 done=0 secs c0 c1 p0 p1 first_s="" last_done=0
    measure_start
    c0=0
    p0="$(pg_ticks)"
    t0="$(date +%s%N)"
    start_server renewals SLIPWAY_COMMERCE__RENEWAL_INTERVAL_SECS=1
    : >"$OUT/renewal-progress-$BACKEND.txt"
    while :; do
        done="$(sql "SELECT COUNT(*) FROM subscriptions WHERE id LIKE 'benchs-%' AND current_period_end > $end")"
        t1="$(date +%s%N)"
        secs="$(elapsed "$t0" "$t1")"
        echo "$secs $done" >>"$OUT/renewal-progress-$BACKEND.txt"
        if [ -z "$first_s" ] && [ "$done" -gt 0 ]; then first_s="$secs"; fi
        [ "$done" -lt "$due" ] || break
        if awk -v s="$secs" -v l="$RENEWAL_LIMIT" 'BEGIN { exit !(s >= l) }'; then
            log "$BACKEND: stopping at the ${RENEWAL_LIMIT}s limit with $done of $due renewed"
            break
        fi
        if [ $((${secs%.*} % 15)) = 0 ] && [ "$done" != "$last_done" ]; then log "$BACKEND: ${secs}s: $done renewed"; fi
        last_done="$done"
        sleep 1
    done
    c1="$(_proc_ticks "$SLIPWAY_PID")"
    p1="$(pg_ticks)"
    measure_end
    # How long the scheduler's runs of the renewals job took in all (the jobs runner's
    # histogram): the rest of the time went to waiting for the next run.
    local metrics work runs
    metrics="$(curl -sf --max-time 10 "http://$ADDR/metrics" || true)"
    work="$(awk '/^slipway_job_duration_seconds_sum\{.*kind="renewals"/ { print $2 }' <<<"$metrics")"
    runs="$(awk '/^slipway_job_duration_seconds_count\{.*kind="renewals"/ { print $2 }' <<<"$metrics")"
    stop_server
    local skipped
    skipped="$(grep -c 'renewal failed' "$SERVER_LOG" || true)"
    # shellcheck disable=SC2086 # key=value fields, one argument each
    record renewals "$BACKEND" "due=$due" "renewed=$done" "seconds=$secs" "first_s=${first_s:--}" "runs=${runs:--}" \
        "work_s=${work:--}" "failed=$skipped" "server_ticks=$((c1 - c0))" "pg_ticks=$((p1 - p0))" $MEASURED
    log "$BACKEND renewals: $done of $due in ${secs}s (first renewal seen at ${first_s:--}s; ${runs:--} runs taking ${work:--}s in all; $skipped failures) ($MEASURED)"
    local v
    v="$(verify_once)"
    record info "$BACKEND" "verify_after_renewals_s=$v" "transactions=$(awk '$1 == "transactions" { print $2 }' "$W/verify.txt")"
    log "$BACKEND: ledger verify after the renewals passes (${v}s)"
}

seed_charges() { # COUNT [SUBSCRIPTION_PREFIX]: paid charges as the store records them, after those seeded before; with the prefix, charge i paid subscription PREFIX<i>
    local add="$1" from base subscription=NULL
    [ -z "${2:-}" ] || subscription="'$2' || i"
    from="$(sql "SELECT COUNT(*) FROM payments WHERE id LIKE 'benchpay-%'")"
    base=$(($(now_ms) - 365 * DAY_MS))
    # 49.00 USD, no tax, 20% to the platform: cash +4900, fees -980, publisher -3920.
    cat >"$W/ledger.sql" <<EOF
INSERT INTO payments (id, account_id, subscription_id, provider, reference, payment_method_id, amount, currency, status,
    failure, idempotency_key, created_at)
SELECT 'benchpay-' || (i + $from), 'benchbuyer', $subscription, 'sandbox', 'ch_bench' || (i + $from), NULL, 4900, 'USD', 'succeeded', '',
    'bench:' || (i + $from), $base + $from + i FROM $(series "$add") AS n;
INSERT INTO invoices (id, seller, number, kind, account_id, subscription_id, payment_id, credits, currency, subtotal, tax,
    total, platform_fee, buyer_name, buyer_country, buyer_region, buyer_postal_code, buyer_tax_id, reverse_charge, created_at)
SELECT 'benchinv-' || (i + $from), 'benchseller', i + $from + 1, 'invoice', 'benchbuyer', $subscription, 'benchpay-' || (i + $from), NULL, 'USD', 4900, 0,
    4900, 980, 'Bench Buyer', '', '', '', '', 0, $base + $from + i FROM $(series "$add") AS n;
INSERT INTO invoice_lines (invoice_id, position, description, amount, tax, tax_name, tax_rate_bps, period_start, period_end)
SELECT 'benchinv-' || (i + $from), 0, 'Bench Product Enterprise', 4900, 0, '', 0, NULL, NULL FROM $(series "$add") AS n;
INSERT INTO invoice_counters (seller, last_number) VALUES ('benchseller', $((from + add)))
    ON CONFLICT (seller) DO UPDATE SET last_number = excluded.last_number;
INSERT INTO ledger_transactions (id, kind, reference, idempotency_key, created_at)
SELECT 'benchtx-' || (i + $from), 'charge', 'benchinv-' || (i + $from), 'ledger:bench:' || (i + $from), $base + $from + i FROM $(series "$add") AS n;
INSERT INTO ledger_entries (transaction_id, account, currency, amount)
SELECT 'benchtx-' || (i + $from), 'cash:sandbox', 'USD', 4900 FROM $(series "$add") AS n;
INSERT INTO ledger_entries (transaction_id, account, currency, amount)
SELECT 'benchtx-' || (i + $from), 'platform:fees', 'USD', -980 FROM $(series "$add") AS n;
INSERT INTO ledger_entries (transaction_id, account, currency, amount)
SELECT 'benchtx-' || (i + $from), 'publisher:benchseller:payable', 'USD', -3920 FROM $(series "$add") AS n;
EOF
    sql_file "$W/ledger.sql"
}

bench_verify() {
    local have add
    have="$(sql "SELECT COUNT(*) FROM ledger_transactions")"
    add=$((LEDGER - have))
    if [ "$add" -gt 0 ]; then
        log "$BACKEND: seeding $add charges (ledger transaction, 3 entries, invoice, line, payment) onto $have"
        local t0 t1
        t0="$(date +%s%N)"
        seed_charges "$add"
        analyze
        t1="$(date +%s%N)"
        record info "$BACKEND" "ledger_seed_s=$(elapsed "$t0" "$t1")"
    fi
    local invoices
    invoices="$(sql "SELECT COUNT(*) FROM invoices")"
    wait_quiet
    local round v c0 c1 p0 p1
    for ((round = 1; round <= VERIFY_RUNS; round++)); do
        c0="$(_proc_ticks $$ children)"
        p0="$(pg_ticks)"
        measure_start
        v="$(verify_once)"
        measure_end
        c1="$(_proc_ticks $$ children)"
        p1="$(pg_ticks)"
        # shellcheck disable=SC2086 # key=value fields, one argument each
        record verify "$BACKEND" "round=$round" "seconds=$v" "cpu_ticks=$((c1 - c0))" "pg_ticks=$((p1 - p0))" \
            "transactions=$(awk '$1 == "transactions" { print $2 }' "$W/verify.txt")" \
            "entries=$(awk '$1 == "entries" { print $2 }' "$W/verify.txt")" "invoices=$invoices" $MEASURED
        log "$BACKEND verify round $round: ${v}s ($MEASURED)"
    done
}

START_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
START_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
START_BUILDS="$(foreign_builds)"
for BACKEND in "${BACKENDS[@]}"; do
    DIR="$W/$BACKEND"
    mkdir -p "$DIR"
    case "$BACKEND" in
        sqlite)
            unset SLIPWAY_DATABASE_URL
            ENGINE="SQLite (bundled with sqlx), WAL"
            ;;
        postgres)
            start_postgres || die "PostgreSQL did not start"
            PG_PIDFILE="$PG_DATA/postmaster.pid"
            timeout 60 psql "$PG_URL" -XAtqc "CREATE DATABASE slipway_commerce_bench" >/dev/null
            DB_URL="${PG_URL%/postgres}/slipway_commerce_bench"
            export SLIPWAY_DATABASE_URL="$DB_URL"
            ENGINE="PostgreSQL $(psql "$DB_URL" -XAtqc 'SHOW server_version'), shared_buffers $(psql "$DB_URL" -XAtqc 'SHOW shared_buffers'), fsync off"
            ;;
    esac
    log "$BACKEND: loading the demo store"
    t0="$(date +%s%N)"
    timeout 1800 "$BIN" --data-dir "$DIR" demo >"$W/demo-$BACKEND.log" 2>&1 || {
        tail -n 20 "$W/demo-$BACKEND.log" >&2
        die "$BACKEND: slipway demo failed"
    }
    record info "$BACKEND" "demo_s=$(elapsed "$t0" "$(date +%s%N)")" "engine=${ENGINE// /_}"
    for bench in $BENCHES; do
        case "$bench" in
            checkout) bench_checkout ;;
            renewals) bench_renewals ;;
            verify) bench_verify ;;
            *) die "unknown bench $bench (checkout, renewals, verify)" ;;
        esac
    done
    if [ "$BACKEND" = postgres ]; then
        record info "$BACKEND" "db_mb=$(($(sql "SELECT pg_database_size(current_database())") / 1000000))"
    else
        record info "$BACKEND" "db_mb=$(du -smc "$DIR"/slipway.db* | awk 'END { print $1 }')"
    fi
done

# ------------------------------------------------------------------- report
MEM_KB="$(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo)"
CPU_MODEL="$(awk -F': ' '$1 ~ /^model name/ { print $2; exit }' /proc/cpuinfo)"
# shellcheck disable=SC2034 # exported below, all at once
BENCH_META_DATE="$START_DATE" BENCH_META_NPROC="$(nproc)" BENCH_META_MEM_KB="$MEM_KB" \
    BENCH_META_CPU="$CPU_MODEL" BENCH_META_KERNEL="$(uname -r)" \
    BENCH_META_LOAD_START="$START_LOAD" BENCH_META_LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)" \
    BENCH_META_BUILDS_START="$START_BUILDS" BENCH_META_BUILDS_END="$(foreign_builds)" \
    BENCH_META_REV="$SLIPWAY_REV" BENCH_META_WHAT="$what" BENCH_META_RENEWALS="$RENEWALS" \
    BENCH_META_RENEWAL_LIMIT="$RENEWAL_LIMIT" BENCH_META_LEDGER="$LEDGER" BENCH_META_CHECKOUT_SECONDS="$CHECKOUT_SECONDS" \
    BENCH_META_WARMUP_SECONDS="$WARMUP_SECONDS" BENCH_META_CONCURRENCY="$CONCURRENCY" BENCH_META_CLK_TCK="$(getconf CLK_TCK)"
export "${!BENCH_META_@}"
env | grep '^BENCH_META_' | sed "s/=\(.*\)/='\1'/" >"$OUT/meta.env"
python3 "$BENCH_DIR/commerce-load.py" report "$RESULTS" | tee "$OUT/report.md"

#!/usr/bin/env bash
# Search and product pages over a store of 100,000 products, on SQLite and on
# PostgreSQL: wrk with 50 connections against GET /api/v1/search, /search (HTML),
# /api/v1/search/suggest and /products/PUBLISHER/SLUG, warm (a few hundred distinct
# requests in turn) and cold (no request repeats within a pass over the list), with
# GET /healthz in the same run as the floor.
# Prints a markdown report on stdout; progress goes to stderr. See bench/README.md.
#
#   bench/search.sh [sqlite|postgres|both]      (default: both)
#
# The store is loaded once per backend with `slipway demo --synthetic N` (timed) and
# kept under target/bench-data (BENCH_SEARCH_DATA) for the next run: SQLite in
# search-sqlite-N/, PostgreSQL in search-postgres-N/ (its own cluster, pg/, and
# Slipway's data dir, slipway/). Delete a directory to load it again.
#
# Knobs (environment): BENCH_SEARCH_PRODUCTS (100000), BENCH_SEARCH_ROUNDS (3 wrk
# runs per bench and backend; the report gives the medians), BENCH_SEARCH_DURATION
# (20s), BENCH_WRK_THREADS (2), BENCH_WRK_CONNECTIONS (50), BENCH_SEARCH_BENCHES
# (which benches, in order; default all: healthz api api_cold html html_cold suggest
# suggest_cold product product_cold), BENCH_SEARCH_DATA (target/bench-data),
# BENCH_WAIT_QUIET (seconds to wait for a quiet machine first, default 0),
# E2E_SLIPWAY_BIN / BENCH_BUILD=0 / BENCH_REV as in bench/run.sh.
#
# Everything listens on 127.0.0.1 only; every external command has a time limit; the
# servers (Slipway, the PostgreSQL cluster) are stopped on exit, even on Ctrl-C.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# REPO_ROOT, E2E_TMP (removed on exit), on_exit, free_port, wait_until, kill_tree.
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
source "$BENCH_DIR/../tests/e2e/lib.sh"
# log, die, bench_lock, builds and the machine's state.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

what="${1:-both}"
bench_backends "$what"

COUNT="${BENCH_SEARCH_PRODUCTS:-100000}"
ROUNDS="${BENCH_SEARCH_ROUNDS:-3}"
DURATION="${BENCH_SEARCH_DURATION:-20s}"
THREADS="${BENCH_WRK_THREADS:-2}"
CONNECTIONS="${BENCH_WRK_CONNECTIONS:-50}"
BENCHES="${BENCH_SEARCH_BENCHES:-healthz api api_cold html html_cold suggest suggest_cold product product_cold}"
DATA_ROOT="${BENCH_SEARCH_DATA:-$REPO_ROOT/target/bench-data}"
PG_DB=slipway_bench

need wrk curl python3 timeout
case " ${BACKENDS[*]} " in *" postgres "*)
    PGBIN=/usr/lib/postgresql/15/bin
    [ -x "$PGBIN/initdb" ] || PGBIN="$(dirname "$(command -v initdb 2>/dev/null || echo /nonexistent/initdb)")"
    if [ ! -x "$PGBIN/initdb" ] || [ ! -x "$PGBIN/pg_ctl" ]; then die "PostgreSQL (initdb, pg_ctl) is missing"; fi
    command -v psql >/dev/null || die "psql is missing"
    ;;
esac

bench_lock

# ------------------------------------------------------------------ slipway build
bench_build_slipway
# The schema the binary expects: a store loaded under other migrations is loaded again
# (slipway refuses to start on a database whose applied migrations were changed).
migrations_hash() {
    (cd "$BUILD_SRC/crates/slipway-db/migrations/$1" && cat ./*.sql) | sha256sum | cut -c1-16
}
BIN="$E2E_SLIPWAY_BIN"

# Raw figures and wrk's full output are kept next to the data, for the record.
RUN_ID="$(date -u +%Y%m%d-%H%M%S)"
OUT="$DATA_ROOT/search-results-$RUN_ID"
mkdir -p "$OUT"
RESULTS="$OUT/results.tsv"
: >"$RESULTS"

# --------------------------------------------------------------- machine state
# What else used the CPU while we measured (bench/lib.sh): compiler processes of
# others, and the CPU share of processes outside this run. "Ours" are this script's
# tree (wrk, curl...), the Slipway server and the PostgreSQL cluster.
SLIPWAY_PID=""
# pg_pids and pg_ticks (bench/lib.sh) read the cluster's postmaster.pid.
PG_PIDFILE=""
# What bench/lib.sh counts as this run's servers: Slipway and the PostgreSQL cluster
# (started by pg_ctl, so not among this shell's descendants).
bench_server_ticks() { echo $(($(_proc_ticks "${SLIPWAY_PID:-0}") + $(pg_ticks))); }
bench_server_pids() { pg_pids; }

# --------------------------------------------------------------------- PostgreSQL
# start_pg_cluster (bench/lib.sh) sets PG_URL, PG_FRESH and PG_PIDFILE.
pg_sql() { timeout 600 psql "$PG_URL/$PG_DB" -XAtqc "$1"; }

# ----------------------------------------------------------------- data loading
# load_store BACKEND DIR: `slipway demo --synthetic COUNT` into DIR, timed; DIR/loaded.txt
# records how it went. A DIR with loaded.txt is reused; one without (an interrupted
# load) is loaded again from scratch.
load_store() {
    local backend="$1" dir="$2" t0 t1 secs schema
    schema="$(migrations_hash "$([ "$backend" = sqlite ] && echo sqlite || echo postgres)")"
    if [ -s "$dir/loaded.txt" ] && ! grep -qx "schema=$schema" "$dir/loaded.txt"; then
        log "$backend: the store in ${dir#"$REPO_ROOT"/} was loaded under other migrations; loading it again"
        rm -f "$dir/loaded.txt"
    fi
    if [ -s "$dir/loaded.txt" ]; then
        log "$backend: reusing the store in ${dir#"$REPO_ROOT"/} ($(tr '\n' ' ' <"$dir/loaded.txt"))"
        return 0
    fi
    log "$backend: loading the demo store and $COUNT synthetic products into ${dir#"$REPO_ROOT"/} (a few minutes)"
    rm -rf "$dir"
    mkdir -p "$dir"
    if [ "$backend" = postgres ]; then
        timeout 60 psql "$PG_URL/postgres" -XAtqc "DROP DATABASE IF EXISTS $PG_DB" >/dev/null
        timeout 60 psql "$PG_URL/postgres" -XAtqc "CREATE DATABASE $PG_DB" >/dev/null
    fi
    local before_load
    before_load="$(cut -d' ' -f1-3 /proc/loadavg)"
    t0="$(date +%s%N)"
    timeout 7200 "$BIN" --data-dir "$dir" demo --synthetic "$COUNT" >"$dir/load.log" 2>&1 ||
        die "loading failed (see $dir/load.log)"
    t1="$(date +%s%N)"
    secs="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.0f", (b - a) / 1e9 }')"
    local extra=""
    if [ "$backend" = postgres ]; then
        # What autovacuum would do soon after a bulk load anyway; done here so that
        # the planner's statistics do not depend on when the benchmark starts.
        local v0 v1
        v0="$(date +%s%N)"
        pg_sql "VACUUM ANALYZE" >/dev/null
        v1="$(date +%s%N)"
        extra="vacuum_analyze_s=$(awk -v a="$v0" -v b="$v1" 'BEGIN { printf "%.0f", (b - a) / 1e9 }')"
    fi
    {
        echo "load_s=$secs"
        echo "loaded_at=$(date -u '+%Y-%m-%d %H:%M UTC')"
        echo "products=$COUNT"
        echo "schema=$schema"
        echo "binary=$SLIPWAY_REV"
        echo "loadavg_before=$before_load"
        echo "loadavg_after=$(cut -d' ' -f1-3 /proc/loadavg)"
        [ -z "$extra" ] || echo "$extra"
    } >"$dir/loaded.txt"
    log "$backend: loaded in ${secs}s ${extra}"
}

# ----------------------------------------------------------------- the server
ADDR=""
start_server() {
    local dir="$1" port log
    port="$(free_port)"
    log="$OUT/serve-$2.log"
    SLIPWAY_GC__INTERVAL_SECS=0 "$BIN" serve --data-dir "$dir" --listen "127.0.0.1:$port" >>"$log" 2>&1 &
    SLIPWAY_PID=$!
    on_exit "kill_tree $SLIPWAY_PID 10"
    ADDR="127.0.0.1:$port"
    wait_until 120 "slipway on $ADDR" curl -sf --max-time 2 "http://$ADDR/readyz" || {
        tail -n 20 "$log" >&2
        die "slipway did not become ready"
    }
}
stop_server() {
    kill_tree "$SLIPWAY_PID" 10
    SLIPWAY_PID=""
}

# ------------------------------------------------------------------- wrk runs
LISTS="$E2E_TMP/lists"
mkdir -p "$LISTS"
python3 "$BENCH_DIR/search-urls.py" generate "$COUNT" "$LISTS" >&2
cp "$LISTS/mix.txt" "$OUT/"
wrk_secs="${DURATION%s}"

# run_wrk BACKEND BENCH ROUND: one wrk run over the list of BENCH.
run_wrk() {
    local backend="$1" bench="$2" round="$3" line m0 m1 f0 f1 c0 c1 p0 p1 others steal hwm
    echo 5 2>/dev/null >"/proc/$SLIPWAY_PID/clear_refs" || true # VmHWM restarts here
    c0="$(_proc_ticks "$SLIPWAY_PID")"
    p0="$(pg_ticks)"
    f0="$(foreign_snapshot)"
    m0="$(cpu_mark)"
    timeout $((wrk_secs + 60)) wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" --timeout 10s --latency \
        -s "$BENCH_DIR/search.lua" "http://$ADDR" -- "$LISTS/$bench.txt" "$THREADS" \
        >"$OUT/wrk-$backend-$bench-$round.txt" 2>&1 || die "wrk failed on $bench (see $OUT/wrk-$backend-$bench-$round.txt)"
    m1="$(cpu_mark)"
    f1="$(foreign_snapshot)"
    c1="$(_proc_ticks "$SLIPWAY_PID")"
    p1="$(pg_ticks)"
    line="$(grep '^WRKRESULT' "$OUT/wrk-$backend-$bench-$round.txt")" || die "no result line from wrk on $bench"
    read -r others steal <<<"$(cpu_others "$m0" "$m1")"
    hwm="$(rss_kb "$SLIPWAY_PID" VmHWM)"
    record wrk "$bench" "$backend" "$round" "${line#WRKRESULT }" "server_ticks=$((c1 - c0))" "pg_ticks=$((p1 - p0))" \
        "hwm_kb=$hwm" "others=$others" "steal=$steal" "builds=$(foreign_builds)" "top=$(foreign_top "$f0" "$f1" "$m0" "$m1")"
    log "$backend $bench round $round: ${line#WRKRESULT } others=$others% steal=$steal%"
}

START_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
START_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
START_BUILDS="$(foreign_builds)"
for backend in "${BACKENDS[@]}"; do
    case "$backend" in
        sqlite)
            dir="$DATA_ROOT/search-sqlite-$COUNT"
            unset SLIPWAY_DATABASE_URL
            load_store sqlite "$dir"
            size_mb="$(du -smc "$dir"/slipway.db* | awk 'END { print $1 }')"
            engine="SQLite (bundled with sqlx), WAL"
            ;;
        postgres)
            base="$DATA_ROOT/search-postgres-$COUNT"
            start_pg_cluster "$base/pg"
            export SLIPWAY_DATABASE_URL="$PG_URL/$PG_DB"
            dir="$base/slipway"
            [ "$PG_FRESH" = 0 ] || rm -f "$dir/loaded.txt" # a new cluster holds no store yet
            load_store postgres "$dir"
            size_mb="$(($(pg_sql "SELECT pg_database_size('$PG_DB')") / 1000000))"
            engine="PostgreSQL $(pg_sql 'SHOW server_version'), shared_buffers $(pg_sql 'SHOW shared_buffers'), fsync off"
            ;;
    esac
    record info load "$backend" - "$(tr '\n' '\t' <"$dir/loaded.txt" | sed 's/ /_/g')" "size_mb=$size_mb" "engine=${engine// /_}"
    start_server "$dir" "$backend"
    log "$backend: slipway at $ADDR (pid $SLIPWAY_PID); checking every warm path and a sample of the cold ones"
    record mem idle_start "$backend" - "kb=$(rss_kb "$SLIPWAY_PID" VmRSS)"
    # Every warm path once (this also warms the server up), and the tail of each cold
    # list, which no run gets to (so the check leaves nothing cached for the runs).
    checks=()
    for bench in $BENCHES; do
        case "$bench" in
            *_cold)
                tail -n 100 "$LISTS/$bench.txt" >"$E2E_TMP/check-$bench.txt"
                checks+=("$E2E_TMP/check-$bench.txt")
                ;;
            *) checks+=("$LISTS/$bench.txt") ;;
        esac
    done
    if ! timeout 900 python3 "$BENCH_DIR/search-urls.py" check "$ADDR" "${checks[@]}" >"$OUT/check-$backend.txt" 2>&1; then
        cat "$OUT/check-$backend.txt" >&2
        die "some paths did not answer 200 (see above)"
    fi
    cat "$OUT/check-$backend.txt" >&2
    wait_quiet
    for ((round = 1; round <= ROUNDS; round++)); do
        # Odd rounds in the listed order, even rounds reversed, so drift hits all benches.
        order="$BENCHES"
        [ $((round % 2)) = 1 ] || order="$(tr ' ' '\n' <<<"$BENCHES" | tac | tr '\n' ' ')"
        for bench in $order; do
            # "warm" is measured warm: other benches ran since these were last asked
            # for, so each is asked for once first.
            case "$bench" in api | html | suggest)
                timeout 900 python3 "$BENCH_DIR/search-urls.py" check "$ADDR" "$LISTS/$bench.txt" >/dev/null ||
                    die "warming $bench failed"
                ;;
            esac
            run_wrk "$backend" "$bench" "$round"
        done
    done
    sleep 1
    record mem idle_after "$backend" - "kb=$(rss_kb "$SLIPWAY_PID" VmRSS)"
    stop_server
done

# ------------------------------------------------------------------- report
MEM_KB="$(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo)"
CPU_MODEL="$(awk -F': ' '$1 ~ /^model name/ { print $2; exit }' /proc/cpuinfo)"
# The metadata also goes to OUT/meta.env, so that the report can be rendered again:
#   (set -a; . OUT/meta.env; python3 bench/search-report.py OUT/results.tsv)
# shellcheck disable=SC2034 # exported below, all at once
BENCH_META_DATE="$START_DATE" BENCH_META_NPROC="$(nproc)" BENCH_META_MEM_KB="$MEM_KB" \
    BENCH_META_CPU="$CPU_MODEL" BENCH_META_KERNEL="$(uname -r)" \
    BENCH_META_LOAD_START="$START_LOAD" BENCH_META_LOAD_END="$(cut -d' ' -f1-3 /proc/loadavg)" \
    BENCH_META_BUILDS_START="$START_BUILDS" BENCH_META_BUILDS_END="$(foreign_builds)" \
    BENCH_META_SLIPWAY_REV="$SLIPWAY_REV" BENCH_META_SLIPWAY_BIN="${BIN#"$REPO_ROOT"/}" \
    BENCH_META_WRK="$(wrk --version 2>&1 | awk 'NR == 1 { print $2 }')" \
    BENCH_META_WRK_ARGS="-t$THREADS -c$CONNECTIONS -d$DURATION --timeout 10s --latency" \
    BENCH_META_ROUNDS="$ROUNDS" BENCH_META_PRODUCTS="$COUNT" BENCH_META_WHAT="$what" \
    BENCH_META_MIX="$(head -n 1 "$LISTS/mix.txt")" BENCH_META_COLD_DEPTH="$(sed -n 3p "$LISTS/mix.txt")" \
    BENCH_META_CLK_TCK="$(getconf CLK_TCK)" BENCH_META_OUT="${OUT#"$REPO_ROOT"/}"
export "${!BENCH_META_@}"
env | grep '^BENCH_META_' | sed "s/=\(.*\)/='\1'/" >"$OUT/meta.env"
python3 "$BENCH_DIR/search-report.py" "$RESULTS" | tee "$OUT/report.md"

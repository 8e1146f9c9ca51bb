#!/usr/bin/env bash
# The re-match benchmark of issue 5: with 10,000 images in the re-assessment index, a
# feed update touching 1% of the indexed packages is re-matched incrementally
# (Scanning::reassess, the FeedChanged job's work) and, in the same run, by the peer: a
# rescan of every image's whole inventory against the updated feed, which is what a
# scanner without the index must do. On SQLite and on PostgreSQL. Prints a markdown
# report on stdout; progress goes to stderr. See bench/README.md.
#
#   bench/rematch.sh [sqlite|postgres|both]      (default: both)
#
# The harness is crates/slipway-security/examples/rematch.rs, built in release mode into
# target/bench; each of its steps (fill, update, reassess, rescan, digest) is one process,
# measured by scan-measure.py (wall time, CPU, peak RSS of that process alone). Per
# backend: a fresh database is filled once, then each round imports another update (other
# packages) and re-matches it both ways, the incremental way first (the rescan leaves
# nothing for it to do), and checks that both leave the same findings.
#
# Knobs: BENCH_REMATCH_IMAGES (10000), BENCH_REMATCH_ROUNDS (3),
# BENCH_REMATCH_RESCAN_ROUNDS (the first N rounds also run the peer; all of them by
# default: the peer takes minutes a round, the incremental way seconds),
# BENCH_REMATCH_SHARE (0.01), BENCH_REMATCH_CONCURRENCY (4: images the fill and the rescan store at once),
# BENCH_REMATCH_SEED (1), BENCH_BUILD=0 (measure target/bench/release/examples/rematch
# as it is), BENCH_WAIT_QUIET (seconds to wait for a quiet machine first, 0),
# BENCH_WAIT_LOCK (seconds to wait for another benchmark to finish, 3600).
#
# Holds /tmp/slipway-bench.lock (bench_lock in bench/lib.sh) while it runs: two
# benchmarks must not share the cores.
# PostgreSQL is a private cluster on 127.0.0.1 (tests/e2e/lib.sh: start_postgres), stopped
# on exit; every external command has a time limit; temporary files are removed on exit.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# REPO_ROOT, E2E_TMP (removed on exit), on_exit, start_postgres.
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
source "$BENCH_DIR/../tests/e2e/lib.sh"
# log, die, bench_lock, builds and the machine's state.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

what="${1:-both}"
bench_backends "$what"
IMAGES="${BENCH_REMATCH_IMAGES:-10000}"
ROUNDS="${BENCH_REMATCH_ROUNDS:-3}"
RESCAN_ROUNDS="${BENCH_REMATCH_RESCAN_ROUNDS:-$ROUNDS}"
SHARE="${BENCH_REMATCH_SHARE:-0.01}"
CONCURRENCY="${BENCH_REMATCH_CONCURRENCY:-4}"
SEED="${BENCH_REMATCH_SEED:-1}"
MEASURE="$BENCH_DIR/scan-measure.py"

need python3 timeout cargo
case " ${BACKENDS[*]} " in *" postgres "*) command -v psql >/dev/null || die "psql is missing" ;; esac

bench_lock

# ------------------------------------------------------------------ build
bench_build_example slipway-security rematch
HARNESS="$EXAMPLE_BIN"

RESULTS="$E2E_TMP/results.tsv"
: >"$RESULTS"
W="$E2E_TMP/work"
mkdir -p "$W"

# --------------------------------------------------------------- machine state
# What else used the CPU while a step ran (bench/lib.sh): "ours" are this script's tree
# (the harness, reaped by scan-measure.py) and the PostgreSQL cluster.
PG_PIDFILE=""
bench_server_ticks() { pg_ticks; }
bench_server_pids() { pg_pids; }

# step BACKEND ROUND COMMAND [FLAGS...]: runs one step of the harness under
# scan-measure.py and records its cost, its result line and what else ran meanwhile.
step() {
    local backend="$1" round="$2" command="$3" log="$W/$1-$3-$2.log" m0 m1 f0 f1 p0 p1 others steal line cost
    shift 3
    sync
    p0="$(pg_ticks)"
    f0="$(foreign_snapshot)"
    m0="$(cpu_mark)"
    python3 "$MEASURE" 7200 "$HARNESS" "$command" --db "$DB_URL" --images "$IMAGES" --seed "$SEED" "$@" \
        >"$W/measure.json" 2>"$log" || true
    m1="$(cpu_mark)"
    f1="$(foreign_snapshot)"
    p1="$(pg_ticks)"
    cost="$(python3 -c 'import json, sys; print(" ".join(f"{k}={v}" for k, v in json.load(open(sys.argv[1])).items()))' "$W/measure.json")"
    line="$(grep '^result ' "$log" | tail -n 1)" || {
        tail -n 20 "$log" >&2
        die "$backend: $command failed ($cost)"
    }
    read -r others steal <<<"$(cpu_others "$m0" "$m1")"
    # shellcheck disable=SC2086 # the key=value fields, one argument each
    record step "$command" "$backend" "$round" ${line#result } $cost "pg_ticks=$((p1 - p0))" \
        "others=$others" "steal=$steal" "builds=$(foreign_builds)" "top=$(foreign_top "$f0" "$f1" "$m0" "$m1")"
    log "$backend round $round $command: ${line#result } ($cost, others $others%)"
}

START_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
START_LOAD="$(cut -d' ' -f1-3 /proc/loadavg)"
START_BUILDS="$(foreign_builds)"
wait_quiet
for backend in "${BACKENDS[@]}"; do
    case "$backend" in
        sqlite) DB_URL="sqlite://$W/rematch.db" ;;
        postgres)
            start_postgres || die "PostgreSQL did not start"
            PG_PIDFILE="$PG_DATA/postmaster.pid"
            DB_URL="$PG_URL"
            ;;
    esac
    log "$backend: filling the index with $IMAGES images"
    step "$backend" 0 fill --concurrency "$CONCURRENCY"
    if [ "$backend" = postgres ]; then
        # After a bulk load the planner needs statistics; autovacuum would gather them
        # within a minute, this does it now and the same way every run.
        timeout 1800 psql "$PG_URL" -XAtqc "VACUUM ANALYZE" >&2 || die "VACUUM ANALYZE failed"
    fi
    for ((round = 1; round <= ROUNDS; round++)); do
        step "$backend" "$round" update --round "$round" --share "$SHARE"
        step "$backend" "$round" reassess
        step "$backend" "$round" digest
        if [ "$round" -le "$RESCAN_ROUNDS" ]; then
            step "$backend" "$round" rescan --concurrency "$CONCURRENCY"
            step "$backend" "$round" digest
        fi
    done
    if [ "$backend" = sqlite ]; then
        record info size "$backend" - "bytes=$(du -cb "$W"/rematch.db* | tail -n 1 | cut -f1)"
        rm -f "$W"/rematch.db*
    else
        record info size "$backend" - "bytes=$(psql "$PG_URL" -XAtqc "SELECT pg_database_size(current_database())")"
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
    BENCH_META_REV="$REV" BENCH_META_WHAT="$what" BENCH_META_IMAGES="$IMAGES" BENCH_META_ROUNDS="$ROUNDS" \
    BENCH_META_RESCAN_ROUNDS="$RESCAN_ROUNDS" \
    BENCH_META_SHARE="$SHARE" BENCH_META_CONCURRENCY="$CONCURRENCY" BENCH_META_SEED="$SEED" \
    BENCH_META_POSTGRES="$(psql --version 2>/dev/null | awk '{ print $3 }')" \
    BENCH_META_CLK_TCK="$(getconf CLK_TCK)"
export "${!BENCH_META_@}"
python3 "$BENCH_DIR/rematch-report.py" "$RESULTS"

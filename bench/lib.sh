# shellcheck shell=bash
# Shared by the benchmark scripts, sourced right after tests/e2e/lib.sh (which sets
# REPO_ROOT and E2E_TMP): logging, the one-benchmark-at-a-time lock, building what is
# measured, and the machine's state while measuring. Functions that record or measure
# servers use the script's RESULTS and its bench_server_ticks / bench_server_pids (the CPU
# ticks and process ids of the servers it measures), defined before they are called.

log() { echo "bench: $*" >&2; }
die() {
    log "$@"
    exit 1
}

# need TOOL...: stops unless every tool is on PATH (bench/README.md says where each comes from).
need() {
    local tool
    for tool in "$@"; do
        command -v "$tool" >/dev/null || die "$tool is missing (see bench/README.md)"
    done
}

# bench_backends WHAT: BACKENDS, the backends a script measures, from its argument:
# sqlite, postgres or both.
# shellcheck disable=SC2034 # BACKENDS is for the scripts sourcing this
bench_backends() {
    case "$1" in sqlite) BACKENDS=(sqlite) ;; postgres) BACKENDS=(postgres) ;; both) BACKENDS=(sqlite postgres) ;; *)
        echo "usage: $0 [sqlite|postgres|both]" >&2
        exit 2
        ;;
    esac
}

# bench_lock: two benchmarks must not share the cores. Holds /tmp/slipway-bench.lock with
# flock(1) on descriptor 9 until the script exits (the file itself stays behind), waiting
# up to BENCH_WAIT_LOCK seconds (3600) for another benchmark to finish.
bench_lock() {
    local lock=/tmp/slipway-bench.lock wait="${BENCH_WAIT_LOCK:-3600}"
    exec 9>>"$lock"
    log "taking $lock (waiting up to ${wait}s for another benchmark)"
    timeout "$wait" flock 9 || die "another benchmark still holds $lock"
}

# bench_build_slipway: sets E2E_SLIPWAY_BIN (absolute), SLIPWAY_REV (what is measured,
# for the report) and BUILD_SRC (the source tree built, for its migrations).
#
# E2E_SLIPWAY_BIN (the harness's variable) names the binary to measure. A SLIPWAY_BIN
# from the caller is taken as an alias, then removed from the environment: slipway reads
# every SLIPWAY_* variable as configuration and refuses to start on an unknown one.
# Otherwise the release build in target/bench is measured, built first unless
# BENCH_BUILD=0; BENCH_REV=REV builds that commit from a clean `git archive` export (in
# the temp dir) instead of the working tree, so work in progress is not measured.
bench_build_slipway() {
    if [ -z "${E2E_SLIPWAY_BIN:-}" ] && [ -n "${SLIPWAY_BIN:-}" ]; then E2E_SLIPWAY_BIN="$SLIPWAY_BIN"; fi
    unset SLIPWAY_BIN
    BUILD_SRC="$REPO_ROOT"
    SLIPWAY_REV="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [ -n "$(git -C "$REPO_ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then
        SLIPWAY_REV="$SLIPWAY_REV (working tree, with uncommitted changes under crates/)"
    fi
    if [ -n "${E2E_SLIPWAY_BIN:-}" ]; then
        SLIPWAY_REV="given binary; working tree at $SLIPWAY_REV"
    else
        E2E_SLIPWAY_BIN="$REPO_ROOT/target/bench/release/slipway"
        if [ -n "${BENCH_REV:-}" ]; then
            local rev
            rev="$(git -C "$REPO_ROOT" rev-parse --verify "${BENCH_REV}^{commit}")" || die "unknown revision $BENCH_REV"
            BUILD_SRC="$E2E_TMP/src"
            mkdir -p "$BUILD_SRC"
            git -C "$REPO_ROOT" archive "$rev" | tar -x -C "$BUILD_SRC"
            SLIPWAY_REV="$(git -C "$REPO_ROOT" rev-parse --short "$rev") (clean export of BENCH_REV=$BENCH_REV)"
        elif [ "${BENCH_BUILD:-1}" = 0 ]; then
            SLIPWAY_REV="prebuilt target/bench binary (BENCH_BUILD=0); working tree at $SLIPWAY_REV"
        fi
        if [ -n "${BENCH_REV:-}" ] || [ "${BENCH_BUILD:-1}" != 0 ]; then
            log "building slipway ${BENCH_REV:+$BENCH_REV }(release, target/bench)"
            (cd "$BUILD_SRC" && CARGO_TARGET_DIR="$REPO_ROOT/target/bench" \
                timeout 3600 nice -n 10 cargo build --release -p slipway --bin slipway) >&2 ||
                die "cargo build failed"
        fi
    fi
    [ -x "$E2E_SLIPWAY_BIN" ] || die "no slipway binary at $E2E_SLIPWAY_BIN"
    E2E_SLIPWAY_BIN="$(realpath "$E2E_SLIPWAY_BIN")"
}

# bench_build_example PACKAGE EXAMPLE: sets EXAMPLE_BIN to the release build of a
# harness example in target/bench, built first (niced) unless BENCH_BUILD=0, and REV to
# the commit measured (noting uncommitted changes under crates/), for the report.
bench_build_example() {
    local package="$1" example="$2"
    REV="$(git -C "$REPO_ROOT" rev-parse --short HEAD 2>/dev/null || echo unknown)"
    if [ -n "$(git -C "$REPO_ROOT" status --porcelain -- crates Cargo.toml Cargo.lock 2>/dev/null)" ]; then
        REV="$REV (working tree, with uncommitted changes under crates/)"
    fi
    EXAMPLE_BIN="$REPO_ROOT/target/bench/release/examples/$example"
    if [ "${BENCH_BUILD:-1}" != 0 ]; then
        log "building $example (release, target/bench)"
        (cd "$REPO_ROOT" && CARGO_TARGET_DIR="$REPO_ROOT/target/bench" \
            timeout 3600 nice -n 10 cargo build --locked --release -p "$package" --example "$example") >&2 ||
            die "cargo build failed"
    fi
    [ -x "$EXAMPLE_BIN" ] || die "$EXAMPLE_BIN is missing"
}

# --------------------------------------------------------------- machine state
record() {
    local IFS=$'\t'
    echo "$*" >>"$RESULTS"
}

foreign_builds() {
    local n=0 p comm
    for p in /proc/[0-9]*; do
        read -r comm 2>/dev/null <"$p/comm" || continue
        case "$comm" in rustc | cargo | cc1 | cc1plus | ld | ld.lld | lld | cc | c++ | gcc) n=$((n + 1)) ;; esac
    done
    echo "$n"
}

_proc_ticks() { # PID [children]: utime + stime (+ reaped children's)
    local line f
    read -r line 2>/dev/null <"/proc/$1/stat" || {
        echo 0
        return
    }
    # shellcheck disable=SC2206 # split the fields after "pid (comm) "
    f=(${line##*) })
    if [ "${2:-}" = children ]; then
        echo $((f[11] + f[12] + f[13] + f[14]))
    else
        echo $((f[11] + f[12]))
    fi
}

cpu_others() { # MARK_BEFORE MARK_AFTER -> "OTHERS% STEAL%" of the whole machine
    # shellcheck disable=SC2086 # two marks of four numbers each
    set -- $1 $2
    awk -v b0="$1" -v t0="$2" -v s0="$3" -v o0="$4" -v b1="$5" -v t1="$6" -v s1="$7" -v o1="$8" 'BEGIN {
        t = t1 - t0; if (t <= 0) t = 1
        o = (b1 - b0) - (o1 - o0); if (o < 0) o = 0
        printf "%.1f %.1f", 100 * o / t, 100 * (s1 - s0) / t }'
}

foreign_top() { # SNAP0 SNAP1 MARK0 MARK1 -> the two biggest outside users, "comm:%,comm:%" or "-"
    local t0 t1
    t0="$(cut -d' ' -f2 <<<"$3")"
    t1="$(cut -d' ' -f2 <<<"$4")"
    awk -v t="$((t1 - t0))" 'NR == FNR { before[$1] = $2; next }
        { d = $2 - ($1 in before ? before[$1] : 0); if (d > 0) use[$3] += d }
        END {
            if (t <= 0) t = 1
            n = 0
            for (c in use) { names[++n] = c }
            out = ""
            for (k = 1; k <= 2; k++) {
                best = ""; bv = 0
                for (i = 1; i <= n; i++) if (use[names[i]] > bv) { bv = use[names[i]]; best = names[i] }
                if (best == "" || 100 * bv / t < 0.5) break
                out = out (out == "" ? "" : ",") sprintf("%s:%.0f%%", best, 100 * bv / t)
                use[best] = 0
            }
            print (out == "" ? "-" : out)
        }' <(echo "$1") <(echo "$2")
}

# pg_pids: the postmaster named by PG_PIDFILE (a cluster's postmaster.pid, set by the
# script that started it) and its children (backends, checkpointer...), if running.
pg_pids() {
    local pm
    [ -n "${PG_PIDFILE:-}" ] && [ -r "$PG_PIDFILE" ] || return 0
    pm="$(head -n 1 "$PG_PIDFILE")"
    [ -d "/proc/$pm" ] || return 0
    echo "$pm"
    _e2e_descendants "$pm"
}
# pg_ticks: the CPU ticks the cluster used, its exited backends included.
pg_ticks() {
    local t=0 p
    for p in $(pg_pids); do t=$((t + $(_proc_ticks "$p" children))); done
    echo "$t"
}

rss_kb() { awk -v f="$2:" '$1 == f { print $2 }' "/proc/$1/status"; }

machine_busy() { # % of the whole machine busy over the next 3 seconds
    local a b
    a="$(cpu_mark)"
    sleep 3
    b="$(cpu_mark)"
    awk -v a="$a" -v b="$b" 'BEGIN { split(a, x, " "); split(b, y, " ")
        t = y[2] - x[2]; if (t <= 0) t = 1; printf "%.0f", 100 * (y[1] - x[1]) / t }'
}

# CPU used by everything else on the machine while we measure. cpu_mark prints
# "BUSY TOTAL STEAL OURS" in clock ticks: machine-wide user+nice+system, all time,
# steal (from /proc/stat), and what this run used: this shell and every child it has
# reaped (wrk, skopeo, curl...) plus the servers, as the script's bench_server_ticks
# counts them. cpu_others MARK_BEFORE MARK_AFTER prints "OTHERS% STEAL%" of the whole
# machine (all CPUs) between the two marks.
cpu_mark() {
    local user nice system idle iowait irq softirq steal ours
    read -r _ user nice system idle iowait irq softirq steal _ </proc/stat
    ours=$(($(_proc_ticks $$ children) + $(bench_server_ticks)))
    echo "$((user + nice + system)) $((user + nice + system + idle + iowait + irq + softirq + steal)) $steal $ours"
}
# foreign_snapshot: "PID TICKS COMM" for every process outside this run (this shell's
# descendants and the script's bench_server_pids); TICKS: its own user + system time.
foreign_snapshot() {
    local -A ours=([$$]=1)
    local p line comm f
    for p in $(_e2e_descendants $$) $(bench_server_pids); do ours[$p]=1; done
    for p in /proc/[0-9]*; do
        p="${p#/proc/}"
        [ -z "${ours[$p]:-}" ] || continue
        read -r line 2>/dev/null <"/proc/$p/stat" || continue
        comm="${line#*(}"
        comm="${comm%)*}"
        # shellcheck disable=SC2206 # split the fields after "pid (comm) "
        f=(${line##*) })
        echo "$p $((f[11] + f[12])) ${comm// /_}"
    done
}
# wait_quiet: with BENCH_WAIT_QUIET=SECONDS, waits (up to that long) until no other
# compiler runs and the machine is under 10% busy for 9 s.
wait_quiet() {
    [ "${BENCH_WAIT_QUIET:-0}" -gt 0 ] || return 0
    log "waiting up to ${BENCH_WAIT_QUIET}s for a quiet machine (no other compilers, < 10% busy for 9 s)"
    local deadline=$((SECONDS + BENCH_WAIT_QUIET))
    until [ "$(foreign_builds)" = 0 ] && [ "$(machine_busy)" -lt 10 ] &&
        [ "$(machine_busy)" -lt 10 ] && [ "$(machine_busy)" -lt 10 ]; do
        if [ "$SECONDS" -ge "$deadline" ]; then
            log "WARNING: the machine is still busy after ${BENCH_WAIT_QUIET}s; measuring anyway"
            return 0
        fi
        sleep 2
    done
}

# start_pg_cluster DIR: a private PostgreSQL cluster kept in DIR (created there the first
# time, PG_FRESH=1), unlike start_postgres in tests/e2e/lib.sh, whose cluster lives in a
# temp dir; stopped on exit. The harness's settings: trust auth, loopback only, fsync off
# (the benchmarks measure reads; loads are faster without fsync). Everything else is
# PostgreSQL 15's defaults (shared_buffers 128 MB...). Needs PGBIN; sets PG_URL and
# PG_PIDFILE (for pg_pids and pg_ticks).
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
# shellcheck disable=SC2034 # PG_URL and PG_FRESH are for the scripts sourcing this
PG_URL="" PG_FRESH=0
# shellcheck disable=SC2034
start_pg_cluster() {
    local dir="$1" port
    mkdir -p "$dir"
    if [ ! -s "$dir/data/PG_VERSION" ]; then
        PG_FRESH=1
        rm -rf "$dir/data"
        mkdir -p "$dir/data" "$dir/sock"
        chmod 755 "$dir"
        [ "$(id -u)" != 0 ] || chown -R postgres:postgres "$dir"
        as_pg timeout 120 "$PGBIN/initdb" -D "$dir/data" -A trust -U postgres >"$dir/initdb.log" 2>&1 ||
            die "initdb failed (see $dir/initdb.log)"
    fi
    port="$(free_port)"
    PG_PIDFILE="$dir/data/postmaster.pid"
    on_exit "as_pg '$PGBIN/pg_ctl' -D '$dir/data' -m fast -t 60 stop"
    as_pg timeout 120 "$PGBIN/pg_ctl" -D "$dir/data" -w -t 60 -l "$dir/postgres.log" \
        -o "-p $port -k $dir/sock -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null ||
        die "postgres did not start (see $dir/postgres.log)"
    PG_URL="postgres://postgres@127.0.0.1:$port"
}

# sql STATEMENT prints the rows (one a line, columns |-separated); sql_file FILE runs a
# script; both on the database of the script's BACKEND: SQLite through its file
# $DIR/slipway.db (WAL: readers do not block the server), PostgreSQL at $DB_URL. Either
# stops at the first error.
# shellcheck disable=SC2153 # BACKEND, DIR and DB_URL are the sourcing script's
sql() {
    case "$BACKEND" in
        sqlite) timeout 3600 sqlite3 -batch -bail -cmd '.timeout 30000' "$DIR/slipway.db" "$1" ;;
        postgres) timeout 3600 psql "$DB_URL" -XAtq -v ON_ERROR_STOP=1 -c "$1" ;;
    esac
}
sql_file() {
    case "$BACKEND" in
        sqlite) timeout 3600 sqlite3 -batch -bail -cmd '.timeout 30000' "$DIR/slipway.db" <"$1" >/dev/null ;;
        postgres) timeout 3600 psql "$DB_URL" -XAtq -v ON_ERROR_STOP=1 -f "$1" >/dev/null ;;
    esac
}
# series N: a subquery of the integers 0..N-1 (column i), in BACKEND's dialect.
series() {
    case "$BACKEND" in
        sqlite) echo "(WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < $(($1 - 1))) SELECT i FROM n)" ;;
        postgres) echo "(SELECT generate_series(0, $(($1 - 1))) AS i)" ;;
    esac
}

# wrk_round SECS URL [wrk args...]: "RPS P50_US P99_US" of one wrk run (-t2 -c32, the
# report of wrk-report.lua); any error, non-2xx answer or timeout fails the run.
wrk_round() {
    local secs="$1" url="$2" line
    shift 2
    line="$(wrk -t2 -c32 -d"${secs}s" --timeout 10s -s "$BENCH_DIR/wrk-report.lua" "$@" "$url" | grep '^WRKRESULT')" ||
        die "wrk failed ($url)"
    python3 - "$line" <<'EOF'
import sys
f = dict(kv.split("=") for kv in sys.argv[1].split()[1:])
if int(f["status"]) or int(f["connect"]) or int(f["read"]) or int(f["timeout"]):
    sys.exit(f"errors in the run: {sys.argv[1]}")
print(round(int(f["requests"]) * 1e6 / int(f["duration_us"])), f["p50_us"], f["p99_us"])
EOF
}

# median: the median of the numbers on standard input (separated by spaces or lines).
median() { tr ' ' '\n' | grep . | sort -n | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }

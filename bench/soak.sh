#!/usr/bin/env bash
# The soak of issue 19: "200 concurrent pullers and 50 concurrent pushers for 10 minutes,
# on each backend (SQLite + filesystem, and PostgreSQL + S3 via moto), with
# authentication on: zero errors, every blob verified, RSS flat (within 10% after
# warm-up), p50/p99 reported."
#
#   bench/soak.sh [sqlite|postgres|both]      (default: both)
#
# Per backend, one `slipway serve` with authentication enforced (tests/e2e/slipway.sh's
# start_slipway; postgres is a private cluster, S3 is moto) and one user, soak, made with
# `slipway admin create-user` (a person owns the namespace of their name: soak/*). The
# load client is bench/soak (Go, standard library only), built into the temp dir. It
# authenticates as a Docker client does: a request answered 401 with a Bearer challenge
# gets a token from the realm (Basic credentials, the challenge's service and scope),
# cached per scope until shortly before its expires_in and fetched again on a 401. Before
# the clock starts it pushes BENCH_SOAK_REPOS (20) images, soak/pull-I:v1, each a config
# and 2 or 3 layers of 4 KiB to 4 MiB (tars of one random file, sizes log-uniform). Then,
# for BENCH_SOAK_SECS: pullers loop over random images (the manifest by tag, its digest
# checked against Docker-Content-Digest and the pushed one, then the config and every
# layer streamed through sha256 against their digests); pushers loop pushing a new image
# into soak/push-K (config and 2 layers of 1 KiB to 1 MiB, each POST, one or two PATCHes,
# PUT with the digest, HEAD; the manifest PUT under a new tag, then read back). The
# first BENCH_SOAK_WARMUP seconds are not measured. Every non-2xx answer, mismatch or
# transport error is an error.
#
# All workers share one HTTP client (keep-alive) and one token cache, as one client
# process would. While the load runs, Slipway's VmRSS (with RssAnon, VmRSS without mapped
# file pages such as the executable's, and its thread count) is sampled every
# 10 s; the script prints the series and compares VmRSS at the end of warm-up with the
# maximum afterwards (flat: within 10%). After the server stops, `slipway fsck` checks
# every stored blob against its digest (the pushed ones too, which the client only
# HEADs) and that every manifest's blobs exist. One verdict line per backend: PASS when the
# client saw no error, RSS stayed flat and fsck found no problem. Exits 1 if a backend
# fails. The client's summary (latency p50/p99/max per operation, rates, bytes
# verified) is a Markdown table; progress goes to stderr.
#
# Limits: pull rate limits are off (rate_limit.* = 0, the defaults, set explicitly here)
# so that the soak measures the server, not the limiter; the sign-in throttle only
# delays wrong passwords and the client shares tokens, so it never triggers. Tokens live
# auth.token_ttl_secs (300 s by default; BENCH_SOAK_TOKEN_TTL overrides it, e.g. to see
# renewals in a short run). Scheduled GC is off (start_slipway); scans on push are on
# (the default): each pushed image queues a scan job.
#
# Knobs: BENCH_SOAK_SECS (600), BENCH_SOAK_WARMUP (60), BENCH_SOAK_PULLERS (200),
# BENCH_SOAK_PUSHERS (50), BENCH_SOAK_REPOS (20), BENCH_SOAK_TOKEN_TTL (server default),
# BENCH_WAIT_LOCK (seconds to wait for another benchmark, 3600).
# Disk: pushers store what they push (about 0.3 MiB an image: at 10-30 pushes/s, 2-6 GiB
# in 10 minutes), in the temp dir (sqlite) or moto's temp files (postgres); all removed
# on exit.
# Tools: go, curl, jq; PostgreSQL and moto for postgres (scripts/install-test-deps).
# E2E_SLIPWAY_BIN or a release build (bench/lib.sh's bench_build_slipway).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
source "$BENCH_DIR/../tests/e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

bench_backends "${1:-both}"
SECS="${BENCH_SOAK_SECS:-600}"
WARMUP="${BENCH_SOAK_WARMUP:-60}"
PULLERS="${BENCH_SOAK_PULLERS:-200}"
PUSHERS="${BENCH_SOAK_PUSHERS:-50}"
REPOS="${BENCH_SOAK_REPOS:-20}"
TOKEN_TTL="${BENCH_SOAK_TOKEN_TTL:-}"
[ "$WARMUP" -lt "$SECS" ] || die "BENCH_SOAK_WARMUP ($WARMUP) must be below BENCH_SOAK_SECS ($SECS)"
need go curl jq
case " ${BACKENDS[*]} " in *" postgres "*) need psql ;; esac

bench_lock
bench_build_slipway
export E2E_SLIPWAY_BIN
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/slipway.sh
source "$REPO_ROOT/tests/e2e/slipway.sh"

log "building the load client (bench/soak)"
(cd "$BENCH_DIR/soak" && timeout 600 go build -o "$E2E_TMP/soak" .) >&2 || die "go build of bench/soak failed"

PASSWORD="soak password $RANDOM$RANDOM$RANDOM"

# CPU used outside this run while the load ran (bench/lib.sh's cpu_mark): ours are this
# shell's children (the client), Slipway, moto and PostgreSQL.
SLIPWAY_PID="" PG_PIDFILE=""
moto_pids() { if [ -n "${S3_ENDPOINT:-}" ]; then pgrep -f "moto_server.py -H 127.0.0.1 -p ${S3_ENDPOINT##*:}" || true; fi; }
bench_server_pids() {
    [ -z "$SLIPWAY_PID" ] || echo "$SLIPWAY_PID"
    moto_pids
    pg_pids
}
bench_server_ticks() {
    local t=0 p
    for p in $SLIPWAY_PID $(moto_pids); do t=$((t + $(_proc_ticks "$p"))); done
    echo $((t + $(pg_ticks)))
}

# sample_rss PID STARTED DONE OUT: once the client has created STARTED (its clock
# started), "SECONDS_SINCE VMRSS_KB RSSANON_KB THREADS" of PID into OUT every 10 s until DONE
# exists (the client has finished), then once more. RssAnon is VmRSS without the file
# pages mapped: SQLite maps up to 256 MiB of its database (PRAGMA mmap_size), pages that
# count in VmRSS as they are read but are the page cache, not the heap.
sample_rss() {
    local pid="$1" started="$2" done="$3" out="$4" t0 now next=0
    until [ -e "$started" ]; do
        [ ! -e "$done" ] || return 0
        sleep 0.2
    done
    t0="${EPOCHREALTIME/./}"
    while [ -d "/proc/$pid" ]; do
        echo "$next $(rss_kb "$pid" VmRSS) $(rss_kb "$pid" RssAnon) $(rss_kb "$pid" Threads)" >>"$out"
        next=$((next + 10))
        while [ ! -e "$done" ]; do
            now="${EPOCHREALTIME/./}"
            [ $(((now - t0) / 1000000)) -lt "$next" ] || break
            sleep 0.5
        done
        if [ -e "$done" ]; then
            # The client has finished: one last sample, at the end of the load (unless
            # one was just taken).
            now="${EPOCHREALTIME/./}"
            if [ $(((now - t0) / 1000000)) -gt $((next - 10)) ]; then
                echo "$(((now - t0) / 1000000)) $(rss_kb "$pid" VmRSS) $(rss_kb "$pid" RssAnon) $(rss_kb "$pid" Threads)" >>"$out"
            fi
            return 0
        fi
    done
}

VERDICTS=()
FAILED=0

# soak BACKEND: one soak against one backend pair; appends its verdict.
soak() {
    local backend="$1" pair w rc=0 m0 m1 f0 f1 others steal
    case "$backend" in sqlite) pair=sqlite-fs ;; postgres) pair=postgres-s3 ;; esac
    w="$E2E_TMP/$backend"
    mkdir -p "$w"
    log "$backend: starting slipway ($pair, authentication enforced)"
    if [ -n "$TOKEN_TTL" ]; then export SLIPWAY_AUTH__TOKEN_TTL_SECS="$TOKEN_TTL"; fi
    SLIPWAY_RATE_LIMIT__ANONYMOUS_PULLS=0 SLIPWAY_RATE_LIMIT__ACCOUNT_PULLS=0 E2E_AUTH_MODE=enforced \
        start_slipway "$pair" >/dev/null 2>"$w/start.err" || {
        cat "$w/start.err" >&2
        die "$backend: slipway did not start"
    }
    unset SLIPWAY_AUTH__TOKEN_TTL_SECS
    SLIPWAY_PID="$E2E_SLIPWAY_PID"
    [ -z "${PG_DATA:-}" ] || PG_PIDFILE="$PG_DATA/postmaster.pid"
    printf '%s' "$PASSWORD" | timeout 120 "$E2E_SLIPWAY_BIN" --data-dir "$E2E_SLIPWAY_DATA" admin create-user soak \
        --email soak@example.com --password-stdin >/dev/null 2>"$w/create-user.err" || {
        cat "$w/create-user.err" >&2
        die "$backend: slipway admin create-user failed"
    }
    [ "$(http_code "http://$REGISTRY/v2/soak/pull-0/manifests/v1")" = 401 ] ||
        die "$backend: the registry answered a request without a token with something else than 401"

    log "$backend: $PULLERS pullers, $PUSHERS pushers, ${SECS}s (${WARMUP}s warm-up), $REPOS images to pull"
    sample_rss "$SLIPWAY_PID" "$w/started" "$w/done" "$w/rss" &
    local sampler=$!
    f0="$(foreign_snapshot)"
    m0="$(cpu_mark)"
    SOAK_PASSWORD="$PASSWORD" timeout $((SECS + 1800)) "$E2E_TMP/soak" -registry "$REGISTRY" -user soak \
        -label "$backend ($pair)" -pullers "$PULLERS" -pushers "$PUSHERS" -repos "$REPOS" \
        -duration "${SECS}s" -warmup "${WARMUP}s" -started-file "$w/started" >"$w/client.out" || rc=$?
    m1="$(cpu_mark)"
    f1="$(foreign_snapshot)"
    read -r others steal <<<"$(cpu_others "$m0" "$m1")"
    touch "$w/done"
    wait "$sampler" || true
    kill_tree "$SLIPWAY_PID" 10
    SLIPWAY_PID=""

    cat "$w/client.out"
    local result errors
    result="$(grep '^SOAKRESULT ' "$w/client.out" || true)"
    errors="$(sed -n 's/.* errors=\([0-9]*\).*/\1/p' <<<"$result")"
    [ -n "$errors" ] || errors="no result (client exit status $rc)"

    # RSS: the series, the sample at the end of warm-up against the maximum after it.
    local rss_verdict rss_line
    [ -s "$w/rss" ] || echo "0 0 0 0" >"$w/rss"
    echo
    echo "Slipway VmRSS/RssAnon in MiB/threads every 10 s since the clock started, the last when the load ended:"
    awk '{ printf "%s%ds %.1f/%.1f/%d", (NR > 1 ? ", " : ""), $1, $2 / 1024, $3 / 1024, $4 } END { print "" }' "$w/rss" | fold -s -w 100
    rss_line="$(awk -v warm="$WARMUP" '
        !have && $1 >= warm { have = 1; t = $1; base = $2; anon = $3; next }
        have && $2 > peak { peak = $2; tp = $1 }
        have && $3 > apeak { apeak = $3 }
        END {
            if (!have || base <= 0) { print "UNKNOWN no sample after warm-up"; exit }
            if (peak == 0) { peak = base; tp = t }
            if (apeak < anon) { apeak = anon }
            g = 100 * (peak - base) / base
            printf "%s %.1f MiB at %ds (end of warm-up), max after %.1f MiB at %ds: %+.1f%% (RssAnon %.1f -> max %.1f MiB: %+.1f%%)\n",
                (g <= 10 ? "FLAT" : "GREW"), base / 1024, t, peak / 1024, tp, g,
                anon / 1024, apeak / 1024, (anon > 0 ? 100 * (apeak - anon) / anon : 0)
        }' "$w/rss")"
    rss_verdict="${rss_line%% *}"
    echo "RSS: ${rss_line#* } (flat: within 10%: $([ "$rss_verdict" = FLAT ] && echo yes || echo NO))"

    # Consistency of what was stored, with the server stopped.
    local fsck_verdict
    if timeout 3600 "$E2E_SLIPWAY_BIN" --data-dir "$E2E_SLIPWAY_DATA" fsck >"$w/fsck.json" 2>"$w/fsck.err"; then
        fsck_verdict="ok ($(jq -r '"\(.blobs_stored) blobs stored, \(.blobs_recorded) recorded"' "$w/fsck.json"))"
    else
        fsck_verdict="FAILED"
        jq -r '.problems[]?' "$w/fsck.json" 2>/dev/null | head -n 10 >&2 || true
        tail -n 5 "$w/fsck.err" >&2
    fi
    echo "fsck: $fsck_verdict"

    # The server's own complaints: ERROR lines and panics in its log.
    local log_errors
    log_errors="$(grep -c -E '\bERROR\b|panicked' "$E2E_SLIPWAY_LOG" || true)"
    if [ "$log_errors" -gt 0 ]; then
        echo "server log: $log_errors ERROR/panic lines, the first:"
        grep -E '\bERROR\b|panicked' "$E2E_SLIPWAY_LOG" | head -n 5 | cut -c1-400
    fi
    echo "machine: ${others}% of the CPU used outside this run (steal ${steal}%; the biggest: $(foreign_top "$f0" "$f1" "$m0" "$m1")), $(foreign_builds) compiler processes at the end"

    local verdict=PASS
    if [ "$rc" != 0 ] || [ "$errors" != 0 ] || [ "$rss_verdict" != FLAT ] || [ "$fsck_verdict" = FAILED ]; then
        verdict=FAIL
        FAILED=1
    fi
    VERDICTS+=("soak $backend ($pair): $verdict: errors $errors, RSS ${rss_line#* }, fsck $fsck_verdict, server log errors $log_errors, others ${others}% CPU")
}

echo "bench/soak.sh: slipway $SLIPWAY_REV, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs"
for backend in "${BACKENDS[@]}"; do
    soak "$backend"
done
echo
for v in "${VERDICTS[@]}"; do echo "$v"; done
exit "$FAILED"

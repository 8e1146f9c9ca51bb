#!/usr/bin/env bash
# Slipway performance benchmarks, measured against docker-registry 2.8.2 (the
# reference "distribution" registry) in the same run, on the same machine, with
# the same image. Prints a markdown report (figures, ratios, targets) on stdout;
# progress goes to stderr. See bench/README.md.
#
#   bench/run.sh [all|pushpull|wrk|soak]      (default: all)
#
#   all        push/pull timings, wrk load, memory
#   pushpull   push/pull timings and idle memory only
#   wrk        wrk load and memory only (one untimed push per registry for setup)
#   soak       Slipway alone under BENCH_SOAK_ROUNDS (10) rounds of the three wrk
#              loads (BENCH_SOAK_DURATION, 5s, each): does its memory level off?
#
# Knobs (environment): BENCH_RUNS (push/pull runs per registry, default 5),
# BENCH_WRK_ROUNDS (wrk runs per bench and registry, default 5; the median is
# reported), BENCH_WRK_DURATION (default 10s), BENCH_WRK_THREADS (2),
# BENCH_WRK_CONNECTIONS (16), BENCH_LAYERS (4), BENCH_LAYER_MB (50),
# BENCH_LARGE_MB (64), BENCH_SMALL_BYTES (400), BENCH_WAIT_QUIET (seconds to
# wait for a quiet machine before measuring, default 0), BENCH_SOAK_ROUNDS,
# BENCH_SOAK_DURATION, BENCH_SOAK_SCRAPE (soak mode, see bench/README.md),
# BENCH_SLIPWAY_NODELAY_SHIM=1 (an experiment: run slipway with TCP_NODELAY
# forced on its accepted sockets by bench/nodelay-shim.c), E2E_SLIPWAY_BIN
# (default: the release build in target/bench, built here first unless
# BENCH_BUILD=0; SLIPWAY_BIN is accepted as an alias), BENCH_REV (build and
# measure that commit from a clean export instead of the working tree).
#
# Everything listens on 127.0.0.1 only; all data lives in one temp dir that is
# removed on exit (tests/e2e/lib.sh). Every external command has a time limit.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# REPO_ROOT, E2E_TMP (removed on exit), on_exit, free_port, wait_until,
# kill_tree, start_reference_registry; target/tools/bin goes first on PATH.
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
source "$BENCH_DIR/../tests/e2e/lib.sh"
# log, die, bench_lock, builds and the machine's state.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

what="${1:-all}"
case "$what" in all | pushpull | wrk | soak) ;; *)
    echo "usage: $0 [all|pushpull|wrk|soak]" >&2
    exit 2
    ;;
esac

RUNS="${BENCH_RUNS:-5}"
WRK_ROUNDS="${BENCH_WRK_ROUNDS:-5}"
WRK_DURATION="${BENCH_WRK_DURATION:-10s}"
WRK_THREADS="${BENCH_WRK_THREADS:-2}"
WRK_CONNECTIONS="${BENCH_WRK_CONNECTIONS:-16}"
LAYERS="${BENCH_LAYERS:-4}"
LAYER_MB="${BENCH_LAYER_MB:-50}"
LARGE_MB="${BENCH_LARGE_MB:-64}"
SMALL_BYTES="${BENCH_SMALL_BYTES:-400}"
OCI_MANIFEST=application/vnd.oci.image.manifest.v1+json

need skopeo wrk umoci docker-registry curl python3 timeout

bench_lock

# ------------------------------------------------------------------ slipway build
bench_build_slipway
export E2E_SLIPWAY_BIN
# start_slipway BACKEND: the embedded SQLite + filesystem backend is what we
# measure, with authentication off, like the peer (token auth is not measured).
export E2E_AUTH_MODE=open
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/slipway.sh
source "$REPO_ROOT/tests/e2e/slipway.sh"

RESULTS="$E2E_TMP/results.tsv"
: >"$RESULTS"
# record KIND NAME REGISTRY ROUND key=value...: one raw figure for the report.

# Addresses and process ids of the two servers, by role: peer, slipway.
declare -A ADDR=() PID=()

# --------------------------------------------------------------- machine state
# (cpu_mark, foreign_snapshot and the rest are in bench/lib.sh.)
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
# The two servers are this shell's children: counted with it, nothing to add.
bench_server_ticks() { echo $(($(_proc_ticks "${PID[peer]:-}") + $(_proc_ticks "${PID[slipway]:-}"))); }
bench_server_pids() { :; }

# reset_hwm PID: resets the kernel's peak-RSS counter (VmHWM) so the next
# reading is the peak of what follows (Linux >= 4.0, needs the right to write
# /proc/PID/clear_refs). Returns non-zero if that is not allowed.
reset_hwm() { echo 5 2>/dev/null >"/proc/$1/clear_refs"; }

# rss_sampler PID OUT: writes the highest VmRSS seen (kB) to OUT every 50 ms
# until OUT.stop is removed. Runs in the background (awk and sleep 20 times a
# second: a few ms of CPU). Exits by itself once the temp dir is gone.
rss_sampler() {
    local pid="$1" out="$2" max=0 v
    : >"$out.stop"
    while [ -e "$out.stop" ]; do
        v="$(rss_kb "$pid" VmRSS 2>/dev/null || echo 0)"
        if [ "${v:-0}" -gt "$max" ]; then
            max="$v"
            echo "$max" >"$out"
        fi
        sleep 0.05
    done
}

# ------------------------------------------------------------------ the image
IMAGE="$E2E_TMP/image"
build_image() {
    local i dir
    log "building the test image: $LAYERS x $LAYER_MB MB random gzip layers (umoci)"
    timeout 120 umoci init --layout "$IMAGE" >/dev/null
    timeout 60 umoci new --image "$IMAGE:bench"
    for ((i = 1; i <= LAYERS; i++)); do
        dir="$E2E_TMP/layer$i"
        mkdir -p "$dir"
        head -c "${LAYER_MB}M" /dev/urandom >"$dir/data$i.bin"
        tar -C "$dir" -cf "$dir.tar" "data$i.bin"
        timeout 300 umoci raw add-layer --image "$IMAGE:bench" "$dir.tar"
        rm -rf "$dir" "$dir.tar"
    done
    # add-layer leaves each intermediate manifest and config behind.
    timeout 60 umoci gc --layout "$IMAGE"
    IMAGE_BYTES="$(du -sb "$IMAGE/blobs" | cut -f1)"
}

# ----------------------------------------------------------------- skopeo runs
# skopeo (containers/image) remembers where it has seen each blob in a
# machine-wide cache (root: /var/lib/containers/cache) and, on a push to a new
# repository of a registry it already pushed the blob to, mounts it instead of
# uploading it. Every timed copy gets an empty private cache, so each push
# really uploads its 200 MB: root runs skopeo in a private mount namespace with
# a temp dir bound over the cache dir; other users get XDG_DATA_HOME.
SKOPEO_ISOLATION=unknown
# Inner script for `unshare -m`: bind the private cache dir ($1) over the
# machine-wide one, then run the rest of the arguments.
# shellcheck disable=SC2016 # expanded by the inner sh
BIND_CACHE='mkdir -p /var/lib/containers/cache && mount --bind "$1" /var/lib/containers/cache && shift && exec "$@"'
isolated_skopeo() {
    local cache
    cache="$(mktemp -d "$E2E_TMP/bic.XXXXXX")"
    case "$SKOPEO_ISOLATION" in
        namespace) timeout 600 unshare -m --propagation private sh -c "$BIND_CACHE" sh "$cache" skopeo "$@" ;;
        xdg) XDG_DATA_HOME="$cache" timeout 600 skopeo "$@" ;;
        *) timeout 600 skopeo "$@" ;;
    esac
    rm -rf "$cache"
}
pick_skopeo_isolation() {
    if [ "$(id -u)" != 0 ]; then
        SKOPEO_ISOLATION=xdg
    elif timeout 10 unshare -m --propagation private sh -c "$BIND_CACHE" sh "$E2E_TMP" true 2>/dev/null; then
        SKOPEO_ISOLATION=namespace
    else
        SKOPEO_ISOLATION=none
        log "WARNING: cannot isolate skopeo's blob-info cache: pushes after the first may mount instead of upload"
    fi
}

now_ns() { date +%s%N; }

# timed_copy SRC DST SERVER_PID: runs one skopeo copy; sets SECS to its wall
# time in seconds and OTHERS to "others=CPU% steal=CPU% builds=N
# server_ticks=N" (the CPU the server used, in clock ticks) for the record.
timed_copy() {
    local t0 t1 m0 m1 f0 f1 others steal c0 c1 pid="$3"
    sync # start from a clean writeback state: nobody pays for the previous run's dirty pages
    c0="$(_proc_ticks "$pid")"
    f0="$(foreign_snapshot)"
    m0="$(cpu_mark)"
    t0="$(now_ns)"
    isolated_skopeo copy --quiet --src-tls-verify=false --dest-tls-verify=false "$1" "$2" >&2 ||
        die "skopeo copy $1 -> $2 failed"
    t1="$(now_ns)"
    m1="$(cpu_mark)"
    f1="$(foreign_snapshot)"
    c1="$(_proc_ticks "$pid")"
    SECS="$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.3f", (b - a) / 1e9 }')"
    read -r others steal <<<"$(cpu_others "$m0" "$m1")"
    OTHERS="others=$others steal=$steal builds=$(foreign_builds) server_ticks=$((c1 - c0))"
    OTHERS+=" top=$(foreign_top "$f0" "$f1" "$m0" "$m1")"
}

# ------------------------------------------------------------------ registries
start_registries() {
    start_reference_registry
    ADDR[peer]="$REGISTRY"
    local p comm
    for p in $(_e2e_descendants $$); do
        read -r comm 2>/dev/null <"/proc/$p/comm" || continue
        if [ "$comm" = docker-registry ]; then PID[peer]="$p"; fi
    done
    [ -n "${PID[peer]:-}" ] || die "cannot find the docker-registry process"

    if [ "${BENCH_SLIPWAY_NODELAY_SHIM:-0}" = 1 ]; then
        # EXPERIMENT, not the shipped behaviour: TCP_NODELAY on every accepted
        # socket of slipway, through an LD_PRELOAD shim (bench/nodelay-shim.c).
        command -v cc >/dev/null || die "BENCH_SLIPWAY_NODELAY_SHIM=1 needs a C compiler (cc)"
        cc -shared -fPIC -O2 -o "$E2E_TMP/nodelay-shim.so" "$BENCH_DIR/nodelay-shim.c" -ldl ||
            die "cannot build the TCP_NODELAY shim"
        LD_PRELOAD="$E2E_TMP/nodelay-shim.so" start_slipway sqlite-fs
    else
        start_slipway sqlite-fs
    fi
    ADDR[slipway]="$REGISTRY"
    PID[slipway]="$E2E_SLIPWAY_PID" # exported by start_slipway
    # Measure the binary we mean to, whatever the harness's default is.
    [ "$(readlink "/proc/$E2E_SLIPWAY_PID/exe")" = "$E2E_SLIPWAY_BIN" ] ||
        die "process $E2E_SLIPWAY_PID runs $(readlink "/proc/$E2E_SLIPWAY_PID/exe"), not $E2E_SLIPWAY_BIN"
    log "docker-registry 2.8.2 at ${ADDR[peer]} (pid ${PID[peer]}), slipway at ${ADDR[slipway]} (pid ${PID[slipway]})"
}

# Registries in alternating order by round, so neither always runs first.
order() { if [ $(($1 % 2)) = 1 ]; then echo peer slipway; else echo slipway peer; fi; }

# push_blob REGISTRY REPO FILE: a monolithic upload (POST, then PUT with the body).
push_blob() {
    local reg="$1" repo="$2" file="$3" digest loc sep code
    digest="sha256:$(sha256sum "$file" | cut -d' ' -f1)"
    loc="$(curl -s --max-time 30 -X POST -D - -o /dev/null "http://$reg/v2/$repo/blobs/uploads/" |
        awk 'tolower($1) == "location:" { print $2 }' | tr -d '\r')"
    [ -n "$loc" ] || die "no upload location from $reg"
    case "$loc" in http://*) ;; *) loc="http://$reg$loc" ;; esac
    case "$loc" in *\?*) sep='&' ;; *) sep='?' ;; esac
    code="$(curl -s --max-time 120 -o /dev/null -w '%{http_code}' -X PUT \
        -H 'Content-Type: application/octet-stream' --data-binary "@$file" "$loc${sep}digest=$digest")"
    [ "$code" = 201 ] || die "blob upload to $reg answered $code"
    echo "$digest"
}

# expect_get URL BYTES [curl args]: the URL answers 200 with exactly BYTES bytes.
expect_get() {
    local url="$1" bytes="$2" got
    shift 2
    got="$(curl -s --max-time 60 -o /dev/null -w '%{http_code} %{size_download}' "$@" "$url")"
    [ "$got" = "200 $bytes" ] || die "GET $url answered '$got', expected '200 $bytes'"
}

# ------------------------------------------------------------------- the run
# BENCH_WAIT_QUIET=SECS: first wait up to SECS seconds for a quiet machine (no
# compilers of others, under 10% busy three times in a row; the machine may be
# shared), then measure anyway.
# machine_busy: % of the whole machine busy over the next 3 seconds.
wait_quiet
START_DATE="$(date -u '+%Y-%m-%d %H:%M UTC')"
START_LOAD="$(loadavg)"
START_BUILDS="$(foreign_builds)"
build_image
pick_skopeo_isolation
start_registries
sleep 1
for r in peer slipway; do
    record mem idle_start "$r" - "kb=$(rss_kb "${PID[$r]}" VmRSS)"
done

# The first push of each registry is the setup push: it feeds the memory
# reading "after one push" and the wrk targets. In `all` and `pushpull` it is
# also timed run 1.
SECS="" OTHERS=""
timed=0 copy_runs=1
case "$what" in all | pushpull) timed=1 copy_runs="$RUNS" ;; esac
for ((i = 1; i <= copy_runs; i++)); do
    for r in $(order "$i"); do
        timed_copy "oci:$IMAGE:bench" "docker://${ADDR[$r]}/bench/push-$i:bench" "${PID[$r]}"
        log "push $i $r ${SECS}s ($OTHERS)"
        [ "$timed" = 0 ] || record time push "$r" "$i" "s=$SECS" "$OTHERS"
        if [ "$i" = 1 ]; then
            sleep 1
            record mem idle_push "$r" - "kb=$(rss_kb "${PID[$r]}" VmRSS)"
        fi
    done
done
if [ "$timed" = 1 ]; then
    for ((i = 1; i <= RUNS; i++)); do
        for r in $(order "$i"); do
            dest="$E2E_TMP/pull-$r-$i"
            timed_copy "docker://${ADDR[$r]}/bench/push-$i:bench" "oci:$dest:bench" "${PID[$r]}"
            log "pull $i $r ${SECS}s ($OTHERS)"
            record time pull "$r" "$i" "s=$SECS" "$OTHERS"
            got="$(du -sb "$dest/blobs" | cut -f1)"
            [ "$got" = "$IMAGE_BYTES" ] || die "pull $i from $r holds $got bytes, not $IMAGE_BYTES"
            rm -rf "$dest"
        done
    done
    for r in peer slipway; do
        record mem after_pushpull "$r" - "kb=$(rss_kb "${PID[$r]}" VmRSS)"
    done
fi

if [ "$what" != pushpull ]; then
    # wrk targets: the manifest by tag, a small and a large blob, all in bench/push-1.
    head -c "$SMALL_BYTES" /dev/urandom >"$E2E_TMP/small.bin"
    head -c "${LARGE_MB}M" /dev/urandom >"$E2E_TMP/large.bin"
    large_bytes="$(stat -c %s "$E2E_TMP/large.bin")"
    manifest_bytes=""
    declare -A URL_MANIFEST URL_SMALL URL_LARGE
    for r in peer slipway; do
        small="$(push_blob "${ADDR[$r]}" bench/push-1 "$E2E_TMP/small.bin")"
        large="$(push_blob "${ADDR[$r]}" bench/push-1 "$E2E_TMP/large.bin")"
        URL_MANIFEST[$r]="http://${ADDR[$r]}/v2/bench/push-1/manifests/bench"
        URL_SMALL[$r]="http://${ADDR[$r]}/v2/bench/push-1/blobs/$small"
        URL_LARGE[$r]="http://${ADDR[$r]}/v2/bench/push-1/blobs/$large"
        size="$(curl -s --max-time 30 -o /dev/null -w '%{size_download}' -H "Accept: $OCI_MANIFEST" "${URL_MANIFEST[$r]}")"
        [ -z "$manifest_bytes" ] || [ "$size" = "$manifest_bytes" ] || die "the registries serve manifests of different sizes"
        manifest_bytes="$size"
        expect_get "${URL_MANIFEST[$r]}" "$manifest_bytes" -H "Accept: $OCI_MANIFEST"
        expect_get "${URL_SMALL[$r]}" "$SMALL_BYTES"
        expect_get "${URL_LARGE[$r]}" "$large_bytes"
    done
    # Both serve the same manifest (same digest), so the runs are comparable.
    d1="$(curl -s --max-time 30 -H "Accept: $OCI_MANIFEST" "${URL_MANIFEST[peer]}" | sha256sum)"
    d2="$(curl -s --max-time 30 -H "Accept: $OCI_MANIFEST" "${URL_MANIFEST[slipway]}" | sha256sum)"
    [ "$d1" = "$d2" ] || die "the registries serve different manifests"
    record info manifest_bytes - - "bytes=$manifest_bytes"

    wrk_secs="${WRK_DURATION%s}"
    # run_wrk BENCH REGISTRY ROUND URL [wrk args]: one wrk run with RSS sampling.
    run_wrk() {
        local bench="$1" r="$2" round="$3" url="$4" pid out line hwm=none sampler m0 m1 f0 f1 others steal c0 c1
        shift 4
        pid="${PID[$r]}"
        out="$E2E_TMP/rss-$bench-$r-$round"
        # VmHWM restarts from the current RSS: read after the run, it is the
        # exact peak of the run (the 50 ms sampler is the fallback).
        local hwm_ok=0
        reset_hwm "$pid" && hwm_ok=1
        rss_sampler "$pid" "$out" &
        sampler=$!
        c0="$(_proc_ticks "$pid")"
        f0="$(foreign_snapshot)"
        m0="$(cpu_mark)"
        line="$(timeout $((wrk_secs + 60)) wrk -t"$WRK_THREADS" -c"$WRK_CONNECTIONS" -d"$WRK_DURATION" \
            --timeout 30s -s "$BENCH_DIR/wrk-report.lua" "$@" "$url" | grep '^WRKRESULT')" ||
            die "wrk failed against $url"
        rm -f "$out.stop"
        wait "$sampler" 2>/dev/null || true
        m1="$(cpu_mark)"
        f1="$(foreign_snapshot)"
        c1="$(_proc_ticks "$pid")"
        read -r others steal <<<"$(cpu_others "$m0" "$m1")"
        [ "$hwm_ok" = 0 ] || hwm="$(rss_kb "$pid" VmHWM)"
        record wrk "$bench" "$r" "$round" "${line#WRKRESULT }" "peak_kb=$(cat "$out" 2>/dev/null || echo 0)" \
            "hwm_kb=$hwm" "others=$others" "steal=$steal" "builds=$(foreign_builds)" "server_ticks=$((c1 - c0))" \
            "top=$(foreign_top "$f0" "$f1" "$m0" "$m1")"
        log "wrk $bench $r round $round: ${line#WRKRESULT } others=$others% steal=$steal%"
    }
    rounds="$WRK_ROUNDS"
    [ "$what" != soak ] || rounds=0
    for ((round = 1; round <= rounds; round++)); do
        for r in $(order "$round"); do
            run_wrk manifest "$r" "$round" "${URL_MANIFEST[$r]}" -H "Accept: $OCI_MANIFEST"
        done
        for r in $(order "$round"); do
            run_wrk small_blob "$r" "$round" "${URL_SMALL[$r]}"
        done
        for r in $(order "$round"); do
            run_wrk large_blob "$r" "$round" "${URL_LARGE[$r]}"
        done
    done
    if [ "$what" = soak ]; then
        # Slipway alone, round after round; its RSS after each round shows
        # whether memory levels off or keeps growing with the requests served.
        WRK_DURATION="${BENCH_SOAK_DURATION:-5s}"
        wrk_secs="${WRK_DURATION%s}"
        served=0
        for ((round = 1; round <= ${BENCH_SOAK_ROUNDS:-10}; round++)); do
            for bench in manifest small_blob large_blob; do
                case "$bench" in
                    manifest) run_wrk soak_manifest slipway "$round" "${URL_MANIFEST[slipway]}" -H "Accept: $OCI_MANIFEST" ;;
                    small_blob) run_wrk soak_small_blob slipway "$round" "${URL_SMALL[slipway]}" ;;
                    large_blob) run_wrk soak_large_blob slipway "$round" "${URL_LARGE[slipway]}" ;;
                esac
                served=$((served + $(tail -n 1 "$RESULTS" | grep -o 'requests=[0-9]*' | cut -d= -f2)))
            done
            # BENCH_SOAK_SCRAPE=1: render /metrics after each round, as a Prometheus
            # scrape would (the exporter drains its histogram samples then).
            if [ "${BENCH_SOAK_SCRAPE:-0}" = 1 ]; then
                curl -sf --max-time 30 -o /dev/null "http://${ADDR[slipway]}/metrics" || die "GET /metrics failed"
            fi
            record soak rss slipway "$round" "kb=$(rss_kb "${PID[slipway]}" VmRSS)" \
                "hwm_kb=$(rss_kb "${PID[slipway]}" VmHWM)" "requests=$served" \
                "threads=$(find "/proc/${PID[slipway]}/task" -mindepth 1 -maxdepth 1 | wc -l)"
            log "soak round $round: $(tail -n 1 "$RESULTS")"
        done
    fi
    for r in peer slipway; do
        sleep 1
        record mem idle_after_load "$r" - "kb=$(rss_kb "${PID[$r]}" VmRSS)"
    done
fi

# ------------------------------------------------------------------- report
MEM_KB="$(awk '$1 == "MemTotal:" { print $2 }' /proc/meminfo)"
CPU_MODEL="$(awk -F': ' '$1 ~ /^model name/ { print $2; exit }' /proc/cpuinfo)"
BENCH_META_DATE="$START_DATE" BENCH_META_NPROC="$(nproc)" BENCH_META_MEM_KB="$MEM_KB" \
    BENCH_META_CPU="$CPU_MODEL" BENCH_META_KERNEL="$(uname -r)" \
    BENCH_META_LOAD_START="$START_LOAD" BENCH_META_LOAD_END="$(loadavg)" \
    BENCH_META_BUILDS_START="$START_BUILDS" BENCH_META_BUILDS_END="$(foreign_builds)" \
    BENCH_META_SLIPWAY_REV="$SLIPWAY_REV" BENCH_META_SLIPWAY_BIN="${E2E_SLIPWAY_BIN#"$REPO_ROOT"/}" \
    BENCH_META_PEER="$(docker-registry --version 2>/dev/null | awk '{ print $3 }')" \
    BENCH_META_SKOPEO="$(skopeo --version | awk '{ print $3 }')" \
    BENCH_META_WRK="$(wrk --version 2>&1 | awk 'NR == 1 { print $2 }')" \
    BENCH_META_WRK_ARGS="-t$WRK_THREADS -c$WRK_CONNECTIONS -d$WRK_DURATION --timeout 30s" \
    BENCH_META_RUNS="$RUNS" BENCH_META_WRK_ROUNDS="$WRK_ROUNDS" BENCH_META_WHAT="$what" \
    BENCH_META_IMAGE="$LAYERS x $LAYER_MB MiB random gzip layers, $IMAGE_BYTES bytes of blobs" \
    BENCH_META_IMAGE_MB="$((IMAGE_BYTES / 1000000))" BENCH_META_LARGE_MB="$LARGE_MB" BENCH_META_SMALL_BYTES="$SMALL_BYTES" \
    BENCH_META_SOAK_SCRAPE="${BENCH_SOAK_SCRAPE:-0}" BENCH_META_CLK_TCK="$(getconf CLK_TCK)" BENCH_META_SKOPEO_ISOLATION="$SKOPEO_ISOLATION" BENCH_META_NODELAY_SHIM="${BENCH_SLIPWAY_NODELAY_SHIM:-0}" \
    python3 "$BENCH_DIR/report.py" "$RESULTS"

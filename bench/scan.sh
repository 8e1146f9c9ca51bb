#!/usr/bin/env bash
# Scanner benchmarks: the layer analyzer against syft on the same OCI image layouts, in
# the same run, on the same machine. Prints a markdown report on stdout (figures,
# ratios, a verdict per target); progress goes to stderr. See bench/README.md.
#
#   bench/scan.sh [all|cold|warm|memory]      (default: all)
#
#   cold     wall time of a scan without cached layer reports: the analyzer (release
#            build of crates/slipway-scanner/examples/scan_oci.rs, inventory written as
#            JSON) vs `syft oci-dir:… -o syft-json=…`, on the debian test image (the
#            target) and on the apps image (for information); BENCH_RUNS runs each,
#            alternating which goes first, after one untimed run of each
#   warm     a rescan with every layer report cached: read the cached reports, merge,
#            match against a synthetic OSV feed of BENCH_ADVISORIES_PER_PACKAGE
#            records per package (bench/scan-feed.py); in-process times and the
#            process's wall time
#   memory   peak RSS (wait4 ru_maxrss) of both on a large image: the debian layer plus
#            one of BENCH_BIG_RANDOM_MB of random and BENCH_BIG_TEXT_MB of text files,
#            20,000 small files and 850 package manifests (bench/scan-bigdata.py)
#
# The test images come from tests/e2e/scanner-images.sh (cached in target/); the large
# image is cached in target/scanner-bench/. Knobs: BENCH_RUNS (5), BENCH_MEMORY_RUNS
# (3), BENCH_ADVISORIES_PER_PACKAGE (30), BENCH_BIG_RANDOM_MB (900), BENCH_BIG_TEXT_MB
# (400), BENCH_BUILD=0 (measure target/bench/release/examples/scan_oci as it is),
# BENCH_WAIT_LOCK (seconds to wait for another benchmark to finish, 3600).
#
# Holds /tmp/slipway-bench.lock (bench_lock in bench/lib.sh) while it runs: two
# benchmarks must not share the cores. Runs as root (the images are built with mmdebstrap and umoci). Every external
# command has a time limit; temporary files are removed on exit.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# REPO_ROOT, TOOLS, E2E_TMP (removed on exit), on_exit; target/tools/bin first on PATH.
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
source "$BENCH_DIR/../tests/e2e/lib.sh"
# log, die, bench_lock, builds and the machine's state.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

what="${1:-all}"
case "$what" in all | cold | warm | memory) ;; *)
    echo "usage: $0 [all|cold|warm|memory]" >&2
    exit 2
    ;;
esac
RUNS="${BENCH_RUNS:-5}"
MEMORY_RUNS="${BENCH_MEMORY_RUNS:-3}"
PER_PACKAGE="${BENCH_ADVISORIES_PER_PACKAGE:-30}"
BIG_RANDOM_MB="${BENCH_BIG_RANDOM_MB:-900}"
BIG_TEXT_MB="${BENCH_BIG_TEXT_MB:-400}"
SYFT="$TOOLS/bin/syft"
MEASURE="$BENCH_DIR/scan-measure.py"

need python3 timeout umoci cargo "$SYFT"

bench_lock

# ------------------------------------------------------------------ builds
bench_build_example slipway-scanner scan_oci
SCAN="$EXAMPLE_BIN"

log "test images (tests/e2e/scanner-images.sh images)"
IMAGES="$(timeout 3600 "$REPO_ROOT/tests/e2e/scanner-images.sh" images | tail -n 1)"
[ -d "$IMAGES/debian/oci" ] || die "no test images"

RESULTS="$E2E_TMP/results.jsonl"
: >"$RESULTS"
W="$E2E_TMP/work"
mkdir -p "$W"

# Compilers and other heavy processes outside this run: a sign that the figures are
# disturbed. Counted at the start of each measurement and shown in the report.
others() {
    local n=0 p comm
    for p in /proc/[0-9]*; do
        read -r comm 2>/dev/null <"$p/comm" || continue
        case "$comm" in rustc | cargo | cc1 | cc1plus | ld | go | compile | link | syft | slipway | mmdebstrap) n=$((n + 1)) ;; esac
    done
    echo "$n"
}

# measure BENCH IMAGE TOOL RUN COMMAND...: runs COMMAND under scan-measure.py and appends
# one JSON line to RESULTS: the measure, the context, and scan_oci's own key=value line.
measure() {
    local bench="$1" image="$2" tool="$3" run="$4" load others_n out err
    shift 4
    load="$(cut -d' ' -f1 /proc/loadavg)"
    others_n="$(others)"
    sync
    out="$W/measure.json"
    err="$W/measure.err"
    python3 "$MEASURE" 1800 "$@" >"$out" 2>"$err" || true
    python3 - "$out" "$err" "$bench" "$image" "$tool" "$run" "$load" "$others_n" >>"$RESULTS" <<'EOF'
import json, sys
out, err, bench, image, tool, run, load, others = sys.argv[1:]
record = json.load(open(out))
if record["rc"] != 0:
    sys.stderr.write(open(err).read()[-4000:])
    sys.exit(f"{tool} on {image} failed with {record['rc']}")
stats = {}
for line in open(err, errors="replace"):
    if line.startswith("layers="):
        stats = dict(field.split("=", 1) for field in line.split())
record.update(bench=bench, image=image, tool=tool, run=int(run), loadavg=float(load),
              others=int(others), stats=stats)
print(json.dumps(record))
EOF
    log "$bench $image $tool run $run: $(tail -n 1 "$RESULTS" | python3 -c 'import json,sys; r=json.load(sys.stdin); print("%.3f s, %.1f MiB" % (r["wall_s"], r["maxrss_kib"] / 1024))')"
}

# image_sizes NAME LAYOUT [UNPACKED_BYTES]: the image's layer count and sizes, for the report.
image_sizes() {
    python3 - "$@" >>"$RESULTS" <<'EOF'
import json, os, sys
name, layout = sys.argv[1:3]
index = json.load(open(os.path.join(layout, "index.json")))
def blob(d):
    return os.path.join(layout, "blobs", *d.split(":", 1))
manifest = json.load(open(blob(index["manifests"][0]["digest"])))
print(json.dumps({"bench": "image", "image": name, "layers": len(manifest["layers"]),
                  "compressed_bytes": sum(l["size"] for l in manifest["layers"]),
                  "unpacked_bytes": int(sys.argv[3]) if len(sys.argv) > 3 else None}))
EOF
}
for image in debian apps; do image_sizes "$image" "$IMAGES/$image/oci"; done

# syft without its update check (no such service is reachable, and it costs time); env
# execs syft, so that the measured process is syft itself.
syft_scan=(env SYFT_CHECK_FOR_APP_UPDATE=false "$SYFT" -q)

# side_by_side BENCH IMAGE LAYOUT RUNS: both tools RUNS times, alternating the order,
# after one untimed run of each (page cache, first-run effects).
side_by_side() {
    local bench="$1" image="$2" layout="$3" runs="$4" run tool
    log "$bench: warming up on $image"
    timeout 1800 "${syft_scan[@]}" "oci-dir:$layout" -o "syft-json=$W/syft.json" >/dev/null
    timeout 1800 "$SCAN" --out "$W/ours.json" "$layout" 2>/dev/null
    for ((run = 1; run <= runs; run++)); do
        local order=(syft slipway)
        if [ $((run % 2)) = 0 ]; then order=(slipway syft); fi
        for tool in "${order[@]}"; do
            rm -f "$W/syft.json" "$W/ours.json"
            if [ "$tool" = syft ]; then
                measure "$bench" "$image" syft "$run" "${syft_scan[@]}" "oci-dir:$layout" -o "syft-json=$W/syft.json"
            else
                measure "$bench" "$image" slipway "$run" "$SCAN" --out "$W/ours.json" "$layout"
            fi
        done
    done
}

# ------------------------------------------------------------------ cold
if [ "$what" = all ] || [ "$what" = cold ]; then
    side_by_side cold debian "$IMAGES/debian/oci" "$RUNS"
    side_by_side cold apps "$IMAGES/apps/oci" "$RUNS"
fi

# ------------------------------------------------------------------ warm
if [ "$what" = all ] || [ "$what" = warm ]; then
    for image in debian apps; do
        cache="$W/cache-$image"
        mkdir -p "$cache"
        # The first scan fills the cache (and says what the image holds for the feed).
        timeout 1800 "$SCAN" --cache "$cache" --out "$W/$image-inventory.json" "$IMAGES/$image/oci" 2>/dev/null
        advisories="$(python3 "$BENCH_DIR/scan-feed.py" "$W/$image-inventory.json" "$PER_PACKAGE" "$W/$image-feed.zip")"
        echo "{\"bench\": \"feed\", \"image\": \"$image\", \"advisories\": $advisories}" >>"$RESULTS"
        log "warm: $image, $advisories synthetic advisories"
        for ((run = 1; run <= RUNS; run++)); do
            measure warm "$image" slipway "$run" "$SCAN" --cache "$cache" --feed "$W/$image-feed.zip" "$IMAGES/$image/oci"
        done
    done
fi

# ------------------------------------------------------------------ memory
if [ "$what" = all ] || [ "$what" = memory ]; then
    key="$(cat "$BENCH_DIR/scan-bigdata.py" <(echo "$IMAGES $BIG_RANDOM_MB $BIG_TEXT_MB") | sha256sum | cut -c1-16)"
    BIG="$REPO_ROOT/target/scanner-bench/big-$key"
    if [ ! -f "$BIG/index.json" ]; then
        log "memory: building the large image (debian + ${BIG_RANDOM_MB} MB random + ${BIG_TEXT_MB} MB text)"
        mkdir -p "$REPO_ROOT/target/scanner-bench"
        find "$REPO_ROOT/target/scanner-bench" -mindepth 1 -maxdepth 1 -name 'big-*' -exec rm -rf {} +
        build="$REPO_ROOT/target/scanner-bench/build-$key"
        on_exit "_e2e_rm_tree '$build'"
        mkdir -p "$build"
        # Blobs hard-linked (umoci never rewrites one), the index copied: umoci
        # rewrites it, and the test images' own must stay as they are.
        cp -al "$IMAGES/debian/oci" "$build/layout"
        rm "$build/layout/index.json"
        cp "$IMAGES/debian/oci/index.json" "$build/layout/index.json"
        timeout 600 umoci unpack --image "$build/layout:latest" "$build/bundle" >&2
        timeout 1800 python3 "$BENCH_DIR/scan-bigdata.py" "$build/bundle/rootfs/srv/bulk" "$BIG_RANDOM_MB" "$BIG_TEXT_MB" >&2
        du -sb "$build/bundle/rootfs" | cut -f1 >"$build/unpacked-bytes"
        timeout 3600 umoci repack --image "$build/layout:big" "$build/bundle" >&2
        rm -rf "$BIG.new"
        timeout 600 python3 "$REPO_ROOT/tests/e2e/scanner/oci.py" export "$build/layout" big "$BIG.new"
        mv "$build/unpacked-bytes" "$BIG.new/unpacked-bytes"
        mv "$BIG.new" "$BIG"
        _e2e_rm_tree "$build"
    fi
    image_sizes big "$BIG" "$(cat "$BIG/unpacked-bytes")"
    side_by_side memory big "$BIG" "$MEMORY_RUNS"
fi

# ------------------------------------------------------------------ report
python3 "$BENCH_DIR/scan-report.py" "$RESULTS" "$REV" "$what" "$RUNS" "$PER_PACKAGE"

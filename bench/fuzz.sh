#!/usr/bin/env bash
# Coverage-guided fuzzing of the parsers that read outside input: the cargo-fuzz
# (libFuzzer) targets in fuzz/, one after the other, each for a fixed time. Prints one
# line per target on stdout (seconds, executions, corpus size, result) and fails if any
# target crashed; progress goes to stderr.
#
#   bench/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]      (default: 600 s, every target)
#
#   bench/fuzz.sh 60                     # every target for a minute (~15 minutes)
#   bench/fuzz.sh 3600 layer_tar rpm_db  # an hour each on the layer analyzer's inputs
#
# Needs rustup's nightly toolchain (cargo-fuzz builds with sanitizers); installs
# cargo-fuzz with `cargo install --locked` when it is missing. Builds every target once
# (`cargo +nightly fuzz build -O -a`: optimised, with debug assertions and overflow
# checks, AddressSanitizer) into fuzz/target, niced and with FUZZ_BUILD_JOBS (1) jobs.
#
# Corpora: libFuzzer starts from the committed seeds in fuzz/corpus/TARGET and writes
# what it finds to fuzz/found/TARGET (git-ignored, kept between runs so that a run
# resumes where the last one stopped). The seed directory is passed second, which
# libFuzzer only reads: the committed corpora stay small. Crashes, and the log of the
# run that found them, go to fuzz/artifacts/TARGET/; minimise one with
#   (cd fuzz && cargo +nightly fuzz tmin -O -a TARGET artifacts/TARGET/crash-...)
#
# Holds /tmp/slipway-bench.lock (bench_lock in bench/lib.sh) while it runs: fuzzing
# takes a core, and two benchmarks must not share them. Every run has a time limit.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# REPO_ROOT, E2E_TMP (removed on exit), on_exit.
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
source "$BENCH_DIR/../tests/e2e/lib.sh"
# log, die, bench_lock.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

FUZZ_DIR="$REPO_ROOT/fuzz"
SECS="${1:-600}"
case "$SECS" in '' | *[!0-9]*)
    echo "usage: $0 [SECONDS_PER_TARGET] [TARGET...]" >&2
    exit 2
    ;;
esac
[ "$#" -eq 0 ] || shift
TARGETS=("$@")
if [ "${#TARGETS[@]}" -eq 0 ]; then
    for file in "$FUZZ_DIR"/fuzz_targets/*.rs; do TARGETS+=("$(basename "$file" .rs)"); done
fi
for target in "${TARGETS[@]}"; do
    [ -f "$FUZZ_DIR/fuzz_targets/$target.rs" ] || die "no fuzz target $target (see fuzz/fuzz_targets/)"
done

# max_len_of TARGET: the longest input libFuzzer makes. Text parsers see short lines;
# documents and databases need room for their structure. Every seed fits (libFuzzer
# would cut a longer one down).
max_len_of() {
    case "$1" in
        reference | scope | route | content_range | cvss | versions | money) echo 4096 ;;
        webhook_signature) echo 16384 ;;
        manifest | osv | dpkg_status | apk_installed) echo 262144 ;;
        lang_manifests) echo 1048576 ;;
        layer_tar | rpm_db) echo 4194304 ;;
        *) echo 65536 ;;
    esac
}

cargo +nightly --version >/dev/null 2>&1 || die "the nightly toolchain is missing: rustup toolchain install nightly"
if ! cargo fuzz --version >/dev/null 2>&1; then
    log "installing cargo-fuzz"
    timeout 1800 cargo install cargo-fuzz --locked >&2 || die "cargo install cargo-fuzz failed"
fi

bench_lock

log "building ${#TARGETS[@]} fuzz target(s) (release, fuzz/target)"
# One target named: build only that one; otherwise all at once (one cargo run shares
# the dependencies' build).
build_args=()
[ "${#TARGETS[@]}" -ne 1 ] || build_args=("${TARGETS[0]}")
(cd "$FUZZ_DIR" && CARGO_BUILD_JOBS="${FUZZ_BUILD_JOBS:-1}" timeout 7200 nice -n 10 \
    cargo +nightly fuzz build -O -a "${build_args[@]}") >&2 || die "cargo fuzz build failed"
BIN_DIR="$FUZZ_DIR/target/x86_64-unknown-linux-gnu/release"

printf '%-18s %7s %12s %8s  %s\n' target seconds executions corpus result
failed=0
for target in "${TARGETS[@]}"; do
    found="$FUZZ_DIR/found/$target"
    artifacts="$FUZZ_DIR/artifacts/$target"
    mkdir -p "$found" "$artifacts" "$FUZZ_DIR/corpus/$target"
    run_log="$E2E_TMP/$target.log"
    log "fuzzing $target for ${SECS}s"
    started=$SECONDS
    rc=0
    # One process, one job: the machine's other core stays free. -timeout: an input
    # that takes more than 30 s is a hang worth reporting. The outer timeout only
    # catches a libFuzzer that does not stop by itself.
    timeout "$((SECS + 600))" "$BIN_DIR/$target" \
        -max_total_time="$SECS" -rss_limit_mb=2048 -max_len="$(max_len_of "$target")" -timeout=30 \
        -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "$found" "$FUZZ_DIR/corpus/$target" >"$run_log" 2>&1 || rc=$?
    elapsed=$((SECONDS - started))
    executions="$(awk '/^stat::number_of_executed_units:/ { print $NF }' "$run_log" | tail -n 1)"
    # The corpus libFuzzer held at the end ("corp: ENTRIES/BYTES" of its last status line).
    corpus="$(grep -o 'corp: [0-9]*' "$run_log" | tail -n 1 | cut -d' ' -f2)"
    if [ "$rc" -eq 0 ]; then
        result=ok
    else
        failed=1
        artifact="$(grep -o "Test unit written to .*" "$run_log" | tail -n 1 | cut -d' ' -f5-)"
        kind=CRASH
        if grep -q 'ERROR: libFuzzer: timeout' "$run_log"; then kind=TIMEOUT; fi
        if grep -q 'ERROR: libFuzzer: out-of-memory' "$run_log"; then kind=OOM; fi
        if grep -q 'ERROR: LeakSanitizer' "$run_log"; then kind=LEAK; fi
        result="$kind ${artifact:-(no artifact; exit status $rc)}"
        cp "$run_log" "$artifacts/last-run.log"
        # The panic message and where, for the one-line report's reader.
        grep -m 1 -A 2 "panicked at" "$run_log" | sed 's/^/    /' >&2 || true
    fi
    printf '%-18s %7s %12s %8s  %s\n' "$target" "$elapsed" "${executions:--}" "${corpus:--}" "$result"
done
exit "$failed"

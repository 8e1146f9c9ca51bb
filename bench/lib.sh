# Shared by the benchmark scripts (sourced after tests/e2e/lib.sh, which sets REPO_ROOT
# and E2E_TMP): building the Slipway binary to measure.

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

#!/usr/bin/env bash
# The layer analyzer on real images, against syft and the package managers.
#
#   tests/e2e/scanner-images.sh           build (or reuse) the images, run the test
#   tests/e2e/scanner-images.sh images    only build (or reuse) them; prints their
#                                          directory on the last line (bench/scan.sh)
#
# Builds three images as OCI layouts (tests/e2e/scanner/build-images.sh: a Debian
# bookworm minbase rootfs from mmdebstrap; that plus pip, npm, Go and cargo-auditable
# layers; that plus layers where dpkg and pip upgrade and remove packages), runs syft
# (target/tools/bin/syft, scripts/install-test-deps) on each, then the analyzer's
# integration test crates/slipway-scanner/tests/it/images.rs on the same layers: for
# deb, PyPI, npm, Go and crates.io the (name, version) sets must equal syft's and
# what dpkg, pip, npm, `go version -m` and cargo metadata say, and every package must be
# attributed to the layer that introduced its version.
#
# The images and syft's findings are cached in target/scanner-images/KEY, KEY being a
# hash of this script, the helpers in tests/e2e/scanner/ and syft's pinned version:
# a rerun only runs the test (seconds, once it is compiled); a fresh machine builds them
# (about 2 minutes on 2 cores, mostly mmdebstrap, gzip and the Go and Rust builds, then
# about 20 s of syft). SCANNER_IMAGES_REBUILD=1 rebuilds. Each check's full log, the
# build's timed steps among them, is kept in target/e2e-results/scanner-images/.
#
# Runs as root. Output: "ok NAME" / "FAIL NAME" per check, the test's per-image
# counts, and a closing "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

[ "$(id -u)" -eq 0 ] || { echo "scanner-images.sh must run as root (mmdebstrap, umoci, dpkg --root)" >&2; exit 2; }
SYFT="$TOOLS/bin/syft"
[ -x "$SYFT" ] || { echo "syft is missing: run scripts/install-test-deps" >&2; exit 2; }
IMAGES_NAMES=(debian apps multilayer)

# Each check's full log (the image build's steps with their times, the test's output).
E2E_LOG_DIR="$REPO_ROOT/target/e2e-results/scanner-images"
rm -rf "$E2E_LOG_DIR"
CACHE="$REPO_ROOT/target/scanner-images"
KEY="$(cat "${BASH_SOURCE[0]}" "$E2E_DIR"/scanner/*.sh "$E2E_DIR"/scanner/*.py "$TOOLS/bin/.syft.version" | sha256sum | cut -c1-16)"
IMAGES="$CACHE/$KEY"
if [ "${SCANNER_IMAGES_REBUILD:-0}" = 1 ]; then rm -rf "$IMAGES"; fi

build() {
    # Images of other keys are stale: only one set is kept.
    mkdir -p "$CACHE"
    find "$CACHE" -mindepth 1 -maxdepth 1 ! -name "$KEY" -exec rm -rf {} +
    "$E2E_DIR/scanner/build-images.sh" "$IMAGES.new"
    local image started
    for image in "${IMAGES_NAMES[@]}"; do
        started=$SECONDS
        # No update check: the machine reaches no such service, and it would cost time.
        SYFT_CHECK_FOR_APP_UPDATE=false timeout 600 "$SYFT" -q "oci-dir:$IMAGES.new/$image/oci" \
            -o "syft-json=$IMAGES.new/$image/syft.json"
        echo "syft $image: $((SECONDS - started)) s"
    done
    mv "$IMAGES.new" "$IMAGES"
}

TEST_LOG="$E2E_TMP/images-test.log"
analyzer_test() {
    # The test prints "scanner-images: checked IMAGE" last; a run without them (the
    # variable lost, the tests filtered out) must not pass.
    SCANNER_TEST_IMAGES="$IMAGES" WORKSPACE_TEST_TIMEOUT=1800 workspace_test slipway-scanner it images:: --nocapture \
        >"$TEST_LOG" 2>&1 || { cat "$TEST_LOG"; return 1; }
    cat "$TEST_LOG"
    local image
    for image in "${IMAGES_NAMES[@]}"; do
        grep -qx "scanner-images: checked $image" "$TEST_LOG" ||
            { echo "the test did not check $image"; return 1; }
    done
}

MODE="${1:-test}"
case "$MODE" in test | images) ;; *) echo "usage: $0 [images]" >&2; exit 2 ;; esac
if [ -f "$IMAGES/multilayer/syft.json" ]; then
    echo "images: cached in ${IMAGES#"$REPO_ROOT"/}"
else
    rm -rf "$IMAGES.new"
    E2E_CHECK_TIMEOUT=2400 check "build the test images and run syft on them" build
fi
if [ "$MODE" = images ]; then
    [ -d "$IMAGES" ] || exit 1
    echo "$IMAGES"
    exit 0
fi
if [ -d "$IMAGES" ]; then
    for image in "${IMAGES_NAMES[@]}"; do sed "s/^/$image: /" "$IMAGES/$image/notes"; done
    E2E_CHECK_TIMEOUT=1800 check "analyzer vs syft and the package managers (tests/it/images.rs)" analyzer_test
    grep '^scanner-images: ' "$TEST_LOG" || true
fi
summary

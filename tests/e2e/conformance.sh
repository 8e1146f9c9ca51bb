#!/usr/bin/env bash
# Runs the official OCI distribution-spec conformance suite against a registry.
#
#   REGISTRY=127.0.0.1:PORT tests/e2e/conformance.sh
#
# Optional env:
#   OCI_USERNAME / OCI_PASSWORD  credentials, passed through to the suite
#   OCI_TLS                      disabled (default: plain http), enabled, insecure
#   OCI_RESULTS_DIR              default target/e2e-results/conformance-<timestamp>
#   OCI_REPO1 / OCI_REPO2        default conformance/<run>/team/repo1 and .../other/repo2
#   CONFORMANCE_BASELINE         a failures.txt from an earlier run (e.g. of the
#                                reference registry): prints which failures are new
#   CONFORMANCE_TIMEOUT          seconds before the suite is killed (default 900)
#   Any OCI_API_* / OCI_DATA_* variable below can be overridden from outside.
#
# Results: junit.xml, results.yaml, report.html (every request/response) and
# our own output.txt (the suite's full text report) and failures.txt (one
# failed test per line, with its first error line) in the results dir. The last
# line printed is "conformance: N passed, N failed" from junit.xml; the exit
# status is non-zero on any failure.
#
# Suite: github.com/opencontainers/distribution-spec/conformance at the pseudo
# version pinned in scripts/install-test-deps. In this version the suite is a
# plain program (not `go test`) configured by OCI_* variables; the old names
# OCI_ROOT_URL, OCI_NAMESPACE, OCI_CROSSMOUNT_NAMESPACE, OCI_TEST_PULL/PUSH/
# CONTENT_DISCOVERY/CONTENT_MANAGEMENT and OCI_HIDE_SKIPPED_WORKFLOWS are
# deprecated (they only print warnings, or are ignored), so the new names are
# used: OCI_REGISTRY + OCI_TLS, OCI_REPO1 (namespace), OCI_REPO2 (cross-mount
# namespace), OCI_API_*, OCI_DATA_*.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_registry

BIN="$TOOLS/bin/conformance"
[ -x "$BIN" ] || { echo "conformance suite missing: run scripts/install-test-deps" >&2; exit 2; }

RUN="run-$(date +%s)-$$"
export OCI_REGISTRY="$REGISTRY"
export OCI_TLS="${OCI_TLS:-disabled}"
export OCI_VERSION="${OCI_VERSION:-1.1}"
export OCI_RESULTS_DIR="${OCI_RESULTS_DIR:-$REPO_ROOT/target/e2e-results/conformance-$(date +%Y%m%d-%H%M%S)}"
# Nested repository names, fresh per run so that reruns see no stale state.
export OCI_REPO1="${OCI_REPO1:-conformance/$RUN/team/repo1}"
export OCI_REPO2="${OCI_REPO2:-conformance/$RUN/other/repo2}"
export OCI_LOG="${OCI_LOG:-warn}"
[ -n "${OCI_USERNAME:-}" ] && export OCI_USERNAME
[ -n "${OCI_PASSWORD:-}" ] && export OCI_PASSWORD
# Never read a stray oci-conformance.yaml from the current directory.
export OCI_CONFIGURATION="${OCI_CONFIGURATION:-/dev/null}"

# Every API and data switch this suite version has, all ON except sparse
# manifests. (1.1 defaults in brackets; the ones we turn on beyond the
# defaults are 1.1+dev features.)
: "${OCI_API_PING:=true}"                     # GET /v2/                                        [true]
: "${OCI_API_PULL:=true}"                     # manifest/blob GET+HEAD                          [true]
: "${OCI_API_PUSH:=true}"                     # uploads (POST/PATCH/PUT), manifest PUT          [true]
: "${OCI_API_BLOBS_ATOMIC:=true}"             # a deleted blob is gone immediately             [true]
: "${OCI_API_BLOBS_DELETE:=true}"             # DELETE /blobs/<digest>                          [true]
: "${OCI_API_BLOBS_DIGEST_HEADER:=true}"      # require Docker-Content-Digest on blob responses [false]
: "${OCI_API_BLOBS_MOUNT_ANONYMOUS:=true}"    # POST ?mount= without from= (automatic mount)    [true]
: "${OCI_API_BLOBS_UPLOAD_CANCEL:=true}"      # DELETE of a running upload session              [false]
: "${OCI_API_MANIFESTS_ATOMIC:=true}"         # a deleted manifest is gone immediately         [true]
: "${OCI_API_MANIFESTS_DELETE:=true}"         # DELETE /manifests/<digest>                      [true]
: "${OCI_API_MANIFESTS_DIGEST_HEADER:=true}"  # require Docker-Content-Digest on manifests      [false]
: "${OCI_API_MANIFESTS_TAG_PARAM:=true}"      # PUT /manifests/<digest>?tag=a&tag=b (post-1.1)  [false]
: "${OCI_API_TAGS_ATOMIC:=true}"              # a deleted tag is gone immediately              [true]
: "${OCI_API_TAGS_DELETE:=true}"              # DELETE /manifests/<tag>                         [true]
: "${OCI_API_TAGS_LIST:=true}"                # GET /tags/list (+ n/last pagination)            [true]
: "${OCI_API_REFERRER:=true}"                 # GET /referrers/<digest> (+ artifactType filter) [true]
: "${OCI_DATA_IMAGE:=true}"                   # plain image (required for anything to run)     [true]
: "${OCI_DATA_INDEX:=true}"                   # multi-platform index                            [true]
: "${OCI_DATA_INDEX_LIST:=true}"              # index containing an index                       [true]
: "${OCI_DATA_SPARSE:=false}"                 # index whose children were not pushed: OFF       [false]
: "${OCI_DATA_ARTIFACT:=true}"                # artifact with artifactType                      [true]
: "${OCI_DATA_SUBJECT:=true}"                 # manifests with subject (referrers)              [true]
: "${OCI_DATA_SUBJECT_MISSING:=true}"         # subject pointing at a missing manifest          [true]
: "${OCI_DATA_ARTIFACT_LIST:=true}"           # index with artifactType                         [true]
: "${OCI_DATA_SUBJECT_LIST:=true}"            # index with subject                              [true]
: "${OCI_DATA_DATA_FIELD:=true}"              # descriptors with embedded data                  [true]
: "${OCI_DATA_NONDISTRIBUTABLE:=true}"        # foreign layers that were never pushed           [true]
: "${OCI_DATA_CUSTOM_FIELDS:=true}"           # unknown JSON fields must be kept byte-exact     [true]
: "${OCI_DATA_NO_LAYERS:=true}"               # image with an empty layers list                 [true]
: "${OCI_DATA_EMPTY_BLOB:=true}"              # zero-byte blob                                  [true]
: "${OCI_DATA_SHA512:=true}"                  # content addressed with sha512                   [true]
export OCI_API_PING OCI_API_PULL OCI_API_PUSH OCI_API_BLOBS_ATOMIC OCI_API_BLOBS_DELETE \
    OCI_API_BLOBS_DIGEST_HEADER OCI_API_BLOBS_MOUNT_ANONYMOUS OCI_API_BLOBS_UPLOAD_CANCEL \
    OCI_API_MANIFESTS_ATOMIC OCI_API_MANIFESTS_DELETE OCI_API_MANIFESTS_DIGEST_HEADER \
    OCI_API_MANIFESTS_TAG_PARAM OCI_API_TAGS_ATOMIC OCI_API_TAGS_DELETE OCI_API_TAGS_LIST \
    OCI_API_REFERRER OCI_DATA_IMAGE OCI_DATA_INDEX OCI_DATA_INDEX_LIST OCI_DATA_SPARSE \
    OCI_DATA_ARTIFACT OCI_DATA_SUBJECT OCI_DATA_SUBJECT_MISSING OCI_DATA_ARTIFACT_LIST \
    OCI_DATA_SUBJECT_LIST OCI_DATA_DATA_FIELD OCI_DATA_NONDISTRIBUTABLE OCI_DATA_CUSTOM_FIELDS \
    OCI_DATA_NO_LAYERS OCI_DATA_EMPTY_BLOB OCI_DATA_SHA512

mkdir -p "$OCI_RESULTS_DIR"
RESULTS_REL="${OCI_RESULTS_DIR#"$REPO_ROOT"/}"
echo "conformance: registry $OCI_REGISTRY (tls $OCI_TLS), repos $OCI_REPO1 + $OCI_REPO2, results in $RESULTS_REL"

# The suite works relative to its cwd only for defaults; run it in the temp dir.
rc=0
(cd "$E2E_TMP" && timeout --kill-after=10 "${CONFORMANCE_TIMEOUT:-900}" "$BIN") \
    >"$OCI_RESULTS_DIR/output.txt" 2>"$OCI_RESULTS_DIR/stderr.txt" || rc=$?
if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
    echo "conformance suite timed out after ${CONFORMANCE_TIMEOUT:-900}s" >&2
fi

JUNIT="$OCI_RESULTS_DIR/junit.xml"
if [ ! -s "$JUNIT" ]; then
    echo "conformance suite wrote no junit.xml (exit $rc); its output:" >&2
    tail -n 40 "$OCI_RESULTS_DIR/output.txt" "$OCI_RESULTS_DIR/stderr.txt" >&2
    echo "conformance: 0 passed, 1 failed"
    exit 1
fi

# The suite's own per-area table (API conformance / Data conformance).
sed -n '/^API conformance:/,$p' "$OCI_RESULTS_DIR/output.txt"

# Counts and the list of failed tests, from junit.xml. The top-level counters
# include the group nodes of the test tree, so they exceed the number of
# <testcase> leaves; passed = tests - failures - errors - skipped.
python3 - "$JUNIT" "$OCI_RESULTS_DIR/failures.txt" "$OCI_RESULTS_DIR/counts" <<'EOF'
import sys
import xml.etree.ElementTree as ET

junit, failures_path, counts_path = sys.argv[1:4]
root = ET.parse(junit).getroot()
suites = [root] if root.tag == "testsuite" else root.findall("testsuite")
if root.tag == "testsuites" and root.get("tests") is not None:
    tot = {k: int(root.get(k, 0) or 0) for k in ("tests", "failures", "errors", "skipped")}
    tot["errors"] = sum(int(s.get("errors", 0) or 0) for s in suites) if root.get("errors") is None else tot["errors"]
else:
    tot = {k: sum(int(s.get(k, 0) or 0) for s in suites) for k in ("tests", "failures", "errors", "skipped")}
failed = []
for case in root.iter("testcase"):
    bad = case.get("status") in ("failure", "error") or case.find("failure") is not None or case.find("error") is not None
    if not bad:
        continue
    msg = ""
    for tag in ("failure", "error", "system-out"):
        el = case.find(tag)
        if el is not None:
            msg = (el.get("message") or el.text or "").strip()
            if msg:
                break
    first = msg.splitlines()[0] if msg else ""
    failed.append(f"{case.get('name')}: {first[:220]}")
with open(failures_path, "w") as f:
    f.write("".join(line + "\n" for line in failed))
passed = tot["tests"] - tot["failures"] - tot["errors"] - tot["skipped"]
bad = tot["failures"] + tot["errors"]
with open(counts_path, "w") as f:
    f.write(f"{passed} {bad} {tot['skipped']} {tot['tests']}\n")
EOF
read -r PASSED FAILED SKIPPED TOTAL <"$OCI_RESULTS_DIR/counts"

if [ -s "$OCI_RESULTS_DIR/failures.txt" ]; then
    n="$(wc -l <"$OCI_RESULTS_DIR/failures.txt")"
    echo "failed tests ($n leaf tests; full list in $RESULTS_REL/failures.txt, requests/responses in report.html):"
    head -n "${CONFORMANCE_SHOW_FAILURES:-60}" "$OCI_RESULTS_DIR/failures.txt" | sed 's/^/  FAIL /'
    [ "$n" -gt "${CONFORMANCE_SHOW_FAILURES:-60}" ] && echo "  ... $((n - ${CONFORMANCE_SHOW_FAILURES:-60})) more"
fi
if [ -n "${CONFORMANCE_BASELINE:-}" ] && [ -f "$CONFORMANCE_BASELINE" ]; then
    # Compare by test name only (messages contain digests that change per run).
    cut -d: -f1 "$CONFORMANCE_BASELINE" | sort -u >"$E2E_TMP/base"
    cut -d: -f1 "$OCI_RESULTS_DIR/failures.txt" | sort -u >"$E2E_TMP/now"
    echo "compared with baseline $CONFORMANCE_BASELINE:"
    echo "  new failures:   $(comm -13 "$E2E_TMP/base" "$E2E_TMP/now" | wc -l)"
    comm -13 "$E2E_TMP/base" "$E2E_TMP/now" | sed 's/^/    NEW /'
    echo "  fixed vs baseline: $(comm -23 "$E2E_TMP/base" "$E2E_TMP/now" | wc -l)"
fi
echo "junit totals: tests=$TOTAL skipped=$SKIPPED (skips are unsupported-but-allowed features); suite exit $rc"
echo "conformance: $PASSED passed, $FAILED failed"
[ "$FAILED" -eq 0 ] && [ "$rc" -eq 0 ]

#!/usr/bin/env bash
# A blob larger than S3's single-request copy limit, pushed into Slipway on PostgreSQL + S3
# and pulled back (issue 19: "S3 blobs larger than 5 GiB commit"):
#
#   bench/s3-large.sh
#
# moto runs through tests/e2e/s3/moto_server.py, which refuses a CopyObject whose source
# is larger than 5 GiB as AWS S3 does (moto itself copies anything). The blob,
# BENCH_LARGE_BYTES (5 GiB + 1 MiB) of AES-CTR keystream (incompressible, reproducible),
# is streamed from the generator in one PATCH (chunked transfer encoding, as Docker
# sends a layer), committed by a PUT naming its digest, then GET-streamed into sha256sum.
# Before that, BENCH_LARGE_CHECK=1 (the default) shows the check can fail: with the
# store's copy limit raised past S3's (storage.s3.max_copy_bytes = 6 GiB) a 2 MiB blob
# under a moto prefix limited to 1 MiB (`copy-limit-N/`) must be refused at commit.
# Prints the time of each step, the rate, and the peak RSS of Slipway and moto.
# Needs about 3 × the blob in free space under TMPDIR (moto keeps objects in temp files)
# and 3 × the blob in memory: moto joins a multipart upload's parts in memory and copies
# the result, and answers a GET from one buffer (measured: at 10.7 GB of RSS, moto was
# killed completing the first 5 GiB multipart upload on a 24 GiB machine). Where that is
# not to be had, BENCH_LARGE_LIMIT=N keeps the keys under moto's `copy-limit-N/` prefix
# and gives Slipway the same limit (storage.s3.max_copy_bytes), with a blob of N + 1 MiB
# unless BENCH_LARGE_BYTES says otherwise: the same paths at a size moto can hold.
# Tools: openssl, curl, sha256sum, PostgreSQL and moto (scripts/install-test-deps).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
source "$BENCH_DIR/../tests/e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

LIMIT="${BENCH_LARGE_LIMIT:-}"
BYTES="${BENCH_LARGE_BYTES:-$((${LIMIT:-5 << 30} + (1 << 20)))}"
need openssl curl sha256sum

bench_lock
bench_build_slipway
export E2E_SLIPWAY_BIN
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/slipway.sh
source "$REPO_ROOT/tests/e2e/slipway.sh"

# stream N: N reproducible, incompressible bytes on stdout.
stream() {
    openssl enc -aes-128-ctr -nosalt -K 736c69707761792d6c617267652d6221 -iv 0 </dev/zero 2>/dev/null | head -c "$1"
}

# push REPO N: streams N bytes into REPO in one PATCH and commits them; prints the digest.
# Fails (non-zero) when any step is refused.
push() {
    local repo=$1 bytes=$2 digest location code
    digest="sha256:$(stream "$bytes" | sha256sum | cut -d' ' -f1)"
    location="$(curl -sSf -o /dev/null -D - -X POST "http://$REGISTRY/v2/$repo/blobs/uploads/" | tr -d '\r' |
        awk 'tolower($1) == "location:" { print $2 }')"
    [ -n "$location" ] || { echo "POST: no upload location" >&2; return 1; }
    case "$location" in http*) ;; *) location="http://$REGISTRY$location" ;; esac
    location="$(stream "$bytes" | curl -sSf -o /dev/null -D - -X PATCH -H 'Content-Type: application/octet-stream' \
        -H 'Transfer-Encoding: chunked' -T - "$location" | tr -d '\r' | awk 'tolower($1) == "location:" { print $2 }')"
    [ -n "$location" ] || { echo "PATCH: refused" >&2; return 1; }
    case "$location" in http*) ;; *) location="http://$REGISTRY$location" ;; esac
    case "$location" in *\?*) location="$location&digest=$digest" ;; *) location="$location?digest=$digest" ;; esac
    code="$(curl -s -o "$E2E_TMP/put.out" -w '%{http_code}' -X PUT "$location")"
    [ "$code" = 201 ] || { echo "PUT answered $code: $(head -c 300 "$E2E_TMP/put.out")" >&2; return 1; }
    echo "$digest"
}

moto_pid() { pgrep -f "moto_server.py -H 127.0.0.1 -p ${S3_ENDPOINT##*:}" | head -1; }

# The peak RSS (VmHWM) of both servers, read when asked.
peaks() { echo "slipway $(($(rss_kb "$E2E_SLIPWAY_PID" VmHWM) / 1024)) MiB, moto $(($(rss_kb "$(moto_pid)" VmHWM) / 1024)) MiB"; }

# under_moto_limit DATA_DIR: puts this start's keys under moto's `copy-limit-$MOTO_LIMIT/`
# (an E2E_SLIPWAY_PREPARE hook: it runs once the backend's variables are set).
under_moto_limit() { export SLIPWAY_STORAGE__S3__PREFIX="copy-limit-$MOTO_LIMIT/$SLIPWAY_STORAGE__S3__PREFIX"; }

if [ "${BENCH_LARGE_CHECK:-1}" = 1 ]; then
    log "check: a copy above moto's limit is refused"
    MOTO_LIMIT=$((1 << 20))
    SLIPWAY_STORAGE__S3__MAX_COPY_BYTES=$((6 << 30)) E2E_SLIPWAY_PREPARE=under_moto_limit start_slipway postgres-s3 >/dev/null
    if push check/refused $((2 << 20)) >/dev/null 2>"$E2E_TMP/refused"; then
        die "a 2 MiB commit above moto's 1 MiB copy limit succeeded: the limit is not enforced"
    fi
    log "  refused as S3 would: $(head -c 200 "$E2E_TMP/refused")"
    kill_tree "$E2E_SLIPWAY_PID" 10
fi

log "pushing $BYTES bytes ($((BYTES >> 20)) MiB) to Slipway on PostgreSQL + S3 (moto), copy limit ${LIMIT:-5 GiB}"
if [ -n "$LIMIT" ]; then
    MOTO_LIMIT="$LIMIT"
    SLIPWAY_STORAGE__S3__MAX_COPY_BYTES="$LIMIT" E2E_SLIPWAY_PREPARE=under_moto_limit start_slipway postgres-s3 >/dev/null
else
    start_slipway postgres-s3 >/dev/null
fi
started=$SECONDS
digest="$(push bench/large "$BYTES")" || die "the large blob did not commit: $(tail -c 600 "$E2E_SLIPWAY_LOG")"
pushed=$((SECONDS - started))
log "  committed $digest in ${pushed}s; peak RSS: $(peaks)"
started=$SECONDS
got="sha256:$(curl -sf "http://$REGISTRY/v2/bench/large/blobs/$digest" | sha256sum | cut -d' ' -f1)"
pulled=$((SECONDS - started))
[ "$got" = "$digest" ] || die "the pulled blob hashes to $got, not $digest"
size="$(curl -sf -I "http://$REGISTRY/v2/bench/large/blobs/$digest" | tr -d '\r' | awk 'tolower($1) == "content-length:" { print $2 }')"
[ "$size" = "$BYTES" ] || die "HEAD says $size bytes, not $BYTES"
echo "s3-large: $BYTES bytes, copy limit ${LIMIT:-$((5 << 30))}: push+commit ${pushed}s ($((BYTES / (pushed > 0 ? pushed : 1) >> 20)) MiB/s)," \
    "pull ${pulled}s, byte-identical; peak RSS $(peaks); slipway $SLIPWAY_REV"

#!/usr/bin/env bash
# Crash consistency: pushes real images with real clients, kills Slipway with
# SIGKILL in the middle, restarts it on the same data (same data dir, same
# database and bucket prefix) and checks the promises that must survive a crash.
#
#   tests/e2e/crash.sh [sqlite-fs|postgres-s3]      (default sqlite-fs)
#
# Test images are built once (umoci + busybox + random layers, ~45 MB). Every
# round pushes concurrently, each client to its own nested repository:
#   skopeo copy   image a (busybox + 6 MB + 10 MB)
#   skopeo copy   image c (busybox + 12 MB)
#   crane push    image b (busybox + 8 MB + 4 MB) from an OCI layout
#   crane copy    seed image a into a new repository (cross-repository mounts)
#   curl          a fresh per-round image (busybox layer + a layer of 3 MB of
#                 new random data) as a real chunked upload: POST, PATCH with
#                 Content-Range in 512 KiB chunks, last chunk on the closing PUT,
#                 config blob as a monolithic POST ?digest=; after the crash it
#                 resumes its upload session where the registry says it stopped
# then after a random delay the server gets kill -9, the clients fail, the
# server restarts and the round checks:
#   fsck     `slipway fsck` finds no problem (stored blobs match their digest,
#            recorded blobs are stored, manifests reference recorded blobs) and
#            the server log holds no panic
#   served   every manifest (by tag and by digest) and blob of the round's
#            images that GETs with 200 hashes to its digest (blobs also equal
#            the source bytes), anything else but 404 fails; manifests that
#            exist pass `crane validate --remote`; an open upload session of
#            the chunked pusher answers 204 or 404
#   retry    the interrupted pushes are retried (the chunked one resumed) to
#            success; pulled back with skopeo, every blob is byte-identical
# At the end: `slipway gc --grace-secs 0`, then fsck again; exactly the blobs
# the tagged images need must remain and every tagged image still validates.
#
# The kill delay is drawn from 50-1500 ms, capped at the duration of a
# calibration round (the same concurrent pushes, no crash, before round 1) so
# that most kills land while pushes are running.
#
# Env: CRASH_ROUNDS (default 20), CRASH_SEED (random seed, printed),
# CRASH_MIN_MS / CRASH_MAX_MS (kill delay bounds; an explicit CRASH_MAX_MS is
# not capped by the calibration), E2E_SLIPWAY_BIN (default target/debug/slipway).
# Results: target/e2e-results/crash-<backend>-<timestamp>/ holds serve.log (all
# server runs, with a marker line per start and kill) and every check's log.
# Output: "ok NAME" / "FAIL NAME" per check and a closing "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend_suite crash "${1:-}"
ROUNDS="${CRASH_ROUNDS:-20}"
MIN_MS="${CRASH_MIN_MS:-50}"
MAX_MS="${CRASH_MAX_MS:-1500}"
SEED="${CRASH_SEED:-$(( $(date +%s) % 32768 ))}"
RANDOM="$SEED"
CHUNK=$((512 * 1024))

RUN="run-$(date +%s)-$$"
SRV_LOG="$E2E_LOG_DIR/serve.log"
: >"$SRV_LOG"
W="$E2E_TMP/work"
IMG="$W/layout"
DATA="$E2E_TMP/data"
mkdir -p "$W" "$DATA"
NS="crash/$RUN"
SEED_NS="$NS/seed/team"

echo "crash: backend $BACKEND, $ROUNDS rounds, kill delay ${MIN_MS}-${MAX_MS} ms (before calibration), seed $SEED (CRASH_SEED), logs in ${E2E_LOG_DIR#"$REPO_ROOT"/}"

# -------------------------------------------------------------- the server
# Once: PostgreSQL + moto and one database/prefix for postgres-s3 (backend_env
# creates a fresh database per call, so it is called exactly once here and the
# binary is started directly afterwards).
backend_env "$BACKEND" >"$W/backend.log" 2>&1 || { cat "$W/backend.log" >&2; exit 1; }

sw() { "$E2E_SLIPWAY_BIN" "$@"; }

SRV_PID=
R=
CLIENT_PIDS=
# shellcheck disable=SC2016 # expanded when the cleanup runs
on_exit '[ -n "${SRV_PID:-}" ] && kill_tree "$SRV_PID" 5'
# shellcheck disable=SC2016
on_exit 'for p in ${CLIENT_PIDS:-}; do kill_tree "$p" 2; done'
start_server() {
    local port
    port="$(free_port)"
    echo "=== crash.sh $(date +%T.%N | cut -c1-12): start on 127.0.0.1:$port" >>"$SRV_LOG"
    env SLIPWAY_GC__INTERVAL_SECS=0 SLIPWAY_AUTH__MODE=open \
        "$E2E_SLIPWAY_BIN" serve --data-dir "$DATA" --listen "127.0.0.1:$port" >>"$SRV_LOG" 2>&1 &
    SRV_PID=$!
    R="127.0.0.1:$port"
    wait_until 60 "slipway on $R" curl -sf --max-time 2 "http://$R/readyz"
}
stop_server() { # graceful (SIGTERM), SIGKILL after 15 s
    [ -n "$SRV_PID" ] || return 0
    echo "=== crash.sh $(date +%T.%N | cut -c1-12): stop (SIGTERM)" >>"$SRV_LOG"
    kill_tree "$SRV_PID" 15
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=
}
crash_server() { # crash_server DELAY_MS
    echo "=== crash.sh $(date +%T.%N | cut -c1-12): kill -9 after $1 ms" >>"$SRV_LOG"
    kill -KILL "$SRV_PID" 2>/dev/null || true
    wait "$SRV_PID" 2>/dev/null || true
    if _e2e_alive "$SRV_PID"; then
        echo "harness: slipway (pid $SRV_PID) survived kill -9" >&2
        exit 1
    fi
    SRV_PID=
}

# ------------------------------------------------------------------ helpers
crn() { crane --insecure "$@"; }
layout_digest() { # layout_digest LAYOUT TAG
    jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$1/index.json"
}
blob_file() { echo "$1/blobs/${2%%:*}/${2#*:}"; } # blob_file LAYOUT DIGEST
sha() { echo "sha256:$(sha256sum <"$1" | cut -d' ' -f1)"; }
# Digests of the manifest's config and layers (one per line).
closure() { jq -r '.config.digest, (.layers // [] | .[].digest)' "$(blob_file "$1" "$2")"; } # closure LAYOUT DIGEST
compare_layouts() { # compare_layouts SRC DST DIGEST: manifest and blobs byte-identical
    local d n=0
    for d in "$3" $(closure "$1" "$3"); do
        [ -f "$(blob_file "$2" "$d")" ] || { echo "blob $d missing from the pulled layout" >&2; return 1; }
        cmp "$(blob_file "$1" "$d")" "$(blob_file "$2" "$d")"
        expect_eq "sha256 of pulled $d" "$d" "$(sha "$(blob_file "$2" "$d")")"
        n=$((n + 1))
    done
    echo "  $n blobs byte-identical (manifest, config, layers)"
}
http_status() { sed -n '1s/^HTTP\/[0-9.]* \([0-9]*\).*/\1/p' <<<"$1"; }
http_header() { grep -i "^$2:" <<<"$1" | head -n1 | cut -d: -f2- | sed 's/^ *//' | tr -d '\r'; }
fsck_json() { sw fsck --data-dir "$DATA" 2>"$W/fsck.stderr"; } # stdout: the report
server_log_tail() { # a check that shows why the server is down
    tail -n 30 "$SRV_LOG"
    return 1
}

# ------------------------------------------------------------- test images
build_images() {
    local b="$W/bundle" i
    umoci init --layout "$IMG"
    umoci new --image "$IMG:busybox"
    umoci unpack --image "$IMG:busybox" "$b"
    mkdir -p "$b/rootfs/bin" "$b/rootfs/etc"
    cp "$(command -v busybox)" "$b/rootfs/bin/busybox"
    for i in sh ls cat; do ln -s busybox "$b/rootfs/bin/$i"; done
    echo "slipway crash $RUN" >"$b/rootfs/etc/motd"
    umoci repack --image "$IMG:busybox" "$b"
    umoci config --image "$IMG:busybox" --os linux --architecture amd64 --config.cmd /bin/sh
    # Random (incompressible) layers, MiB each: a = 6 + 10, b = 8 + 4, c = 12.
    local -A size=([1]=6 [2]=10 [3]=8 [4]=4 [5]=12)
    for i in 1 2 3 4 5; do
        mkdir -p "$W/l$i/data"
        head -c $((size[$i] * 1024 * 1024 + i * 7919)) /dev/urandom >"$W/l$i/data/random-$i.bin"
        tar -C "$W/l$i" -cf "$W/l$i.tar" data
    done
    umoci raw add-layer --image "$IMG:busybox" --tag a "$W/l1.tar"
    umoci raw add-layer --image "$IMG:a" "$W/l2.tar"
    umoci raw add-layer --image "$IMG:busybox" --tag b "$W/l3.tar"
    umoci raw add-layer --image "$IMG:b" "$W/l4.tar"
    umoci raw add-layer --image "$IMG:busybox" --tag c "$W/l5.tar"
    umoci gc --layout "$IMG"
    rm -rf "$b" "$W"/l[0-9]*
    # crane push takes a layout holding just the one image.
    skopeo copy -q --preserve-digests "oci:$IMG:b" "oci:$W/layout-b:b"
    du -sh "$IMG"
    jq -c '.manifests[] | {tag: .annotations["org.opencontainers.image.ref.name"], digest}' "$IMG/index.json"
}

# A fresh image per round for the chunked pusher: the busybox layer (shared
# with every other image) plus a new layer of random data. DIR becomes a
# small OCI-layout-like tree (blobs/sha256/...) with `order` (what to upload,
# how) and `digest` (the manifest's).
make_chunked_image() { # make_chunked_image DIR ROUND
    local dir="$1" bb_manifest bb_layer bb_diff bb_size diff_id layer config manifest
    mkdir -p "$dir/rootfs/data" "$dir/blobs/sha256"
    bb_manifest="$(blob_file "$IMG" "$(layout_digest "$IMG" busybox)")"
    bb_layer="$(jq -r '.layers[0].digest' "$bb_manifest")"
    bb_size="$(jq -r '.layers[0].size' "$bb_manifest")"
    bb_diff="$(jq -r '.rootfs.diff_ids[0]' "$(blob_file "$IMG" "$(jq -r .config.digest "$bb_manifest")")")"
    cp "$(blob_file "$IMG" "$bb_layer")" "$(blob_file "$dir" "$bb_layer")"
    head -c $((3 * 1024 * 1024 + $2 * 4099)) /dev/urandom >"$dir/rootfs/data/round-$2.bin"
    tar -C "$dir/rootfs" -cf "$dir/layer.tar" data
    rm -rf "$dir/rootfs"
    diff_id="$(sha "$dir/layer.tar")"
    gzip -1 -n "$dir/layer.tar"
    layer="$(sha "$dir/layer.tar.gz")"
    mv "$dir/layer.tar.gz" "$(blob_file "$dir" "$layer")"
    printf '{"architecture":"amd64","os":"linux","config":{"Cmd":["/bin/sh"]},"rootfs":{"type":"layers","diff_ids":["%s","%s"]}}' \
        "$bb_diff" "$diff_id" >"$dir/config.json"
    config="$(sha "$dir/config.json")"
    mv "$dir/config.json" "$(blob_file "$dir" "$config")"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s},{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
        "$config" "$(stat -c %s "$(blob_file "$dir" "$config")")" "$bb_layer" "$bb_size" \
        "$layer" "$(stat -c %s "$(blob_file "$dir" "$layer")")" >"$dir/manifest.json"
    manifest="$(sha "$dir/manifest.json")"
    cp "$dir/manifest.json" "$(blob_file "$dir" "$manifest")"
    printf 'chunked %s\nchunked %s\nmonolithic %s\n' "$layer" "$bb_layer" "$config" >"$dir/order"
    echo "$manifest" >"$dir/digest"
}

# The chunked pusher (curl). STATE remembers the open upload session, so a
# second run after a crash resumes it at the offset the registry reports. If
# the registry then refuses the resumed session, the pusher notes it (in
# STATE.notes, printed by the round) and uploads again in a new session, as a
# real client would.
SEND_ERR=''
send_from() { # send_from LOC OFFSET FILE DIGEST STATE: PATCHes, then the closing PUT
    local loc="$1" off="$2" f="$3" d="$4" state="$5" base="http://$R" size n h sep
    size="$(stat -c %s "$f")"
    while [ $((size - off)) -gt "$CHUNK" ]; do
        h="$(dd if="$f" iflag=skip_bytes,count_bytes skip="$off" count="$CHUNK" status=none |
            curl -sS -D - -o "$state.body" --max-time 30 -X PATCH -H 'Content-Type: application/octet-stream' \
                -H "Content-Range: $off-$((off + CHUNK - 1))" --data-binary @- "$base$loc")" || true
        if [ "$(http_status "$h")" != 202 ]; then
            SEND_ERR="PATCH $loc at $off: HTTP $(http_status "$h") $(head -c 300 "$state.body" 2>/dev/null)"
            return 1
        fi
        loc="$(http_header "$h" Location)"
        [ -n "$loc" ] || { SEND_ERR="PATCH at $off: no Location"; return 1; }
        echo "$d $loc" >"$state"
        off=$((off + CHUNK))
    done
    n=$((size - off))
    sep='?'
    case "$loc" in *\?*) sep='&' ;; esac
    if [ "$n" -gt 0 ]; then
        h="$(dd if="$f" iflag=skip_bytes,count_bytes skip="$off" count="$n" status=none |
            curl -sS -D - -o "$state.body" --max-time 30 -X PUT -H 'Content-Type: application/octet-stream' \
                -H "Content-Range: $off-$((size - 1))" --data-binary @- "$base$loc${sep}digest=$d")" || true
    else
        h="$(curl -sS -D - -o "$state.body" --max-time 30 -X PUT -H 'Content-Length: 0' "$base$loc${sep}digest=$d")" || true
    fi
    if [ "$(http_status "$h")" != 201 ]; then
        SEND_ERR="closing PUT $loc at $off: HTTP $(http_status "$h") $(head -c 300 "$state.body" 2>/dev/null)"
        return 1
    fi
}
NEW_LOC=''
new_session() { # new_session REPO DIGEST STATE -> NEW_LOC (not for $(...): errexit is off there)
    local h
    h="$(curl -sS -D - -o /dev/null --max-time 10 -X POST "http://$R/v2/$1/blobs/uploads/")"
    expect_eq "status of POST uploads" 202 "$(http_status "$h")"
    NEW_LOC="$(http_header "$h" Location)"
    [ -n "$NEW_LOC" ] || { echo "POST uploads: no Location" >&2; return 1; }
    echo "$2 $NEW_LOC" >"$3"
}
push_chunked() { # push_chunked DIR REPO TAG STATE
    local dir="$1" repo="$2" tag="$3" state="$4" base="http://$R" how d f off loc h code sd sloc range rc
    while read -r how d; do
        f="$(blob_file "$dir" "$d")"
        code="$(curl -s -o /dev/null -w '%{http_code}' -I --max-time 10 "$base/v2/$repo/blobs/$d")"
        if [ "$code" = 200 ]; then echo "$d: already in $repo"; continue; fi
        if [ "$how" = monolithic ]; then
            h="$(curl -sS -D - -o /dev/null --max-time 30 -X POST -H 'Content-Type: application/octet-stream' \
                --data-binary @"$f" "$base/v2/$repo/blobs/uploads/?digest=$d")"
            expect_eq "status of monolithic POST $d" 201 "$(http_status "$h")"
            echo "$d: monolithic upload done"
            continue
        fi
        off=0 loc=''
        if [ -f "$state" ] && read -r sd sloc <"$state" && [ "$sd" = "$d" ]; then
            h="$(curl -sS -D - -o /dev/null --max-time 10 "$base$sloc")"
            if [ "$(http_status "$h")" = 204 ]; then
                range="$(http_header "$h" Range)"
                off=$((${range#*-} + 1))
                [ "$range" = 0-0 ] && off=0
                loc="$sloc"
                echo "$d: resuming session $sloc at offset $off (Range: $range)"
            else
                echo "$d: session $sloc gone (status $(http_status "$h")), starting over"
            fi
        fi
        if [ -n "$loc" ]; then
            rc=0
            send_from "$loc" "$off" "$f" "$d" "$state" || rc=$?
            if [ "$rc" != 0 ]; then
                echo "resumed upload session refused: $SEND_ERR; uploading again in a new session" | tee -a "$state.notes" >&2
                loc=''
            fi
        fi
        if [ -z "$loc" ]; then
            new_session "$repo" "$d" "$state"
            loc="$NEW_LOC"
            rc=0
            send_from "$loc" 0 "$f" "$d" "$state" || rc=$?
            [ "$rc" = 0 ] || { echo "$SEND_ERR" >&2; return 1; }
        fi
        rm -f "$state" "$state.body"
        echo "$d: chunked upload done ($(stat -c %s "$f") bytes)"
    done <"$dir/order"
    h="$(curl -sS -D - -o /dev/null --max-time 30 -X PUT -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' \
        --data-binary @"$dir/manifest.json" "$base/v2/$repo/manifests/$tag")"
    expect_eq "status of manifest PUT" 201 "$(http_status "$h")"
    expect_eq "Docker-Content-Digest" "$(cat "$dir/digest")" "$(http_header "$h" Docker-Content-Digest)"
    echo "manifest $tag pushed"
}

# ---------------------------------------------------------------- clients
# Round r's pushes. Each line of $W/rN/expect: KIND REPO TAG DIGEST SRC, SRC
# being the layout that holds the image's bytes.
A_DIGEST='' B_DIGEST='' C_DIGEST=''
plan_round() { # plan_round ROUND -> writes $W/r$1/expect
    local r="$1" d="$W/r$1"
    mkdir -p "$d"
    make_chunked_image "$d/chunked" "$r"
    {
        echo "skopeo-a $NS/r$r/team/skopeo/a v$r $A_DIGEST $IMG"
        echo "skopeo-c $NS/r$r/team/skopeo/c v$r $C_DIGEST $IMG"
        echo "crane-b $NS/r$r/team/crane/b v$r $B_DIGEST $IMG"
        echo "mirror-a $NS/r$r/team/mirror/a v$r $A_DIGEST $IMG"
        echo "chunked $NS/r$r/team/chunked/app v$r $(cat "$d/chunked/digest") $d/chunked"
    } >"$d/expect"
}
run_client() { # run_client KIND REPO TAG SRC
    case "$1" in
        skopeo-a) skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$IMG:a" "docker://$R/$2:$3" ;;
        skopeo-c) skopeo copy -q --preserve-digests --dest-tls-verify=false "oci:$IMG:c" "docker://$R/$2:$3" ;;
        crane-b) crn push "$W/layout-b" "$R/$2:$3" ;;
        mirror-a) crn copy "$R/$SEED_NS/skopeo/a:seed" "$R/$2:$3" ;;
        chunked) push_chunked "$4" "$2" "$3" "$4.state" ;;
        *) echo "unknown client $1" >&2; return 1 ;;
    esac
}

# ------------------------------------------------------------------ checks
fsck_clean() {
    local report rc=0
    report="$(fsck_json)" || rc=$?
    echo "$report"
    if [ "$rc" != 0 ] && [ -z "$report" ]; then cat "$W/fsck.stderr" >&2; fi
    expect_eq "fsck problems" 0 "$(jq '.problems | length' <<<"$report")"
    expect_eq "fsck exit status" 0 "$rc"
}
no_panic_since() { # no_panic_since BYTE_OFFSET
    if tail -c +"$(($1 + 1))" "$SRV_LOG" | grep -n -i -E 'panicked|RUST_BACKTRACE' >&2; then
        echo "the server panicked (see serve.log above)" >&2
        return 1
    fi
}
fsck_round() { # fsck_round LOG_OFFSET
    fsck_clean
    no_panic_since "$1"
}
# Whatever the registry serves after the crash must be right: a 200 must carry
# the bytes of the digest; 404 (never got there) is fine; anything else fails.
served_ok() { # served_ok ROUND
    local kind repo tag digest src d code got=0 missing=0 out="$W/served.body"
    while read -r kind repo tag digest src; do
        for ref in "$tag" "$digest"; do
            code="$(curl -s -o "$out" -w '%{http_code}' --max-time 30 "http://$R/v2/$repo/manifests/$ref")"
            case "$code" in
                200) expect_eq "manifest $repo:$ref" "$digest" "$(sha "$out")"; got=$((got + 1)) ;;
                404) missing=$((missing + 1)) ;;
                *) echo "GET manifest $repo:$ref: HTTP $code: $(head -c 300 "$out")" >&2; return 1 ;;
            esac
        done
        if [ "$code" = 200 ]; then
            crn validate --remote "$R/$repo@$digest" </dev/null >/dev/null
            echo "$kind: $repo@$digest exists and validates"
        fi
        for d in $(closure "$src" "$digest"); do
            code="$(curl -s -o "$out" -w '%{http_code}' --max-time 60 "http://$R/v2/$repo/blobs/$d")"
            case "$code" in
                200) cmp "$out" "$(blob_file "$src" "$d")"; got=$((got + 1)) ;;
                404) missing=$((missing + 1)) ;;
                *) echo "GET blob $repo@$d: HTTP $code: $(head -c 300 "$out")" >&2; return 1 ;;
            esac
        done
    done <"$W/r$1/expect"
    # The resumable session the chunked pusher left (if any) must still answer sanely.
    if [ -f "$W/r$1/chunked.state" ]; then
        read -r d loc <"$W/r$1/chunked.state"
        [ -n "$loc" ] || { echo "harness: no session in $W/r$1/chunked.state" >&2; return 1; }
        code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://$R$loc")"
        case "$code" in 204 | 404) echo "open upload session of the chunked pusher: HTTP $code" ;; *)
            echo "GET upload session $loc: HTTP $code" >&2
            return 1
            ;;
        esac
    fi
    echo "$got manifests/blobs served with the right bytes, $missing not there (404)"
}
retry_and_compare() { # retry_and_compare ROUND
    local kind repo tag digest src pulled
    while read -r kind repo tag digest src; do
        echo "--- $kind: retry push to $repo:$tag"
        run_client "$kind" "$repo" "$tag" "$src" </dev/null
        expect_eq "manifest digest of $repo:$tag" "$digest" "$(crn manifest "$R/$repo:$tag" | sha /dev/stdin)"
        pulled="$W/r$1/pulled-$kind"
        skopeo copy -q --preserve-digests --src-tls-verify=false "docker://$R/$repo:$tag" "oci:$pulled:$tag" </dev/null
        expect_eq "pulled manifest digest" "$digest" "$(layout_digest "$pulled" "$tag")"
        compare_layouts "$src" "$pulled" "$digest"
        rm -rf "$pulled"
    done <"$W/r$1/expect"
}

# ------------------------------------------------------------------ seeding
check "build test images (umoci, busybox, random layers)" build_images
A_DIGEST="$(layout_digest "$IMG" a)"
B_DIGEST="$(layout_digest "$IMG" b)"
C_DIGEST="$(layout_digest "$IMG" c)"
if [ -z "$A_DIGEST" ] || [ -z "$B_DIGEST" ] || [ -z "$C_DIGEST" ] || [ ! -d "$W/layout-b" ]; then
    echo "test images could not be built: the harness itself is broken (see above)" >&2
    summary
    exit 1
fi

if ! start_server; then
    check "slipway starts ($BACKEND)" server_log_tail
    summary
    exit 1
fi
{
    echo "skopeo-a $SEED_NS/skopeo/a seed $A_DIGEST $IMG"
    echo "crane-b $SEED_NS/crane/b seed $B_DIGEST $IMG"
    echo "skopeo-c $SEED_NS/skopeo/c seed $C_DIGEST $IMG"
} >"$W/seed.expect"
seed_push() {
    local kind repo tag digest src
    while read -r kind repo tag digest src; do
        run_client "$kind" "$repo" "$tag" "$src" </dev/null
        expect_eq "digest of $repo:$tag" "$digest" "$(crn digest "$R/$repo:$tag" </dev/null)"
        echo "$kind: $repo:$tag $digest"
    done <"$W/seed.expect"
}
check "seed: push images a, b, c without crashes" seed_push
check "seed: fsck clean" fsck_clean
cat "$W/seed.expect" >"$W/all.expect"

# -------------------------------------------------------------------- rounds
# launch_clients ROUND: starts the round's pushes concurrently (PIDS, KINDS);
# each one that succeeds appends "KIND MS" to $W/rN/finished.
PIDS=() KINDS=()
launch_clients() {
    local r="$1" kind repo tag digest src t0
    PIDS=() KINDS=()
    : >"$W/r$r/finished"
    t0=$(($(date +%s%N) / 1000000))
    while read -r kind repo tag digest src; do
        (
            run_client "$kind" "$repo" "$tag" "$src"
            echo "$kind $(($(date +%s%N) / 1000000 - t0))" >>"$W/r$r/finished"
        ) </dev/null >"$W/r$r/$kind.push.log" 2>&1 &
        PIDS+=($!)
        KINDS+=("$kind")
    done <"$W/r$r/expect"
    # shellcheck disable=SC2034 # read by the exit cleanup
    CLIENT_PIDS="${PIDS[*]}"
}
# reap_clients SECONDS: waits that long at most, stops the stragglers (crane
# retries), and leaves the kinds that succeeded in FINISHED.
FINISHED=()
reap_clients() {
    local deadline=$((SECONDS + $1)) p i
    for p in "${PIDS[@]}"; do
        while _e2e_alive "$p" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.1; done
    done
    FINISHED=()
    for i in "${!PIDS[@]}"; do
        if _e2e_alive "${PIDS[$i]}"; then kill_tree "${PIDS[$i]}" 2; fi
        if wait "${PIDS[$i]}" 2>/dev/null; then FINISHED+=("${KINDS[$i]}"); fi
    done
    # shellcheck disable=SC2034 # read by the exit cleanup
    CLIENT_PIDS=
}

# Calibration: one round of the same concurrent pushes without a crash. Its
# duration caps the kill delay, so that kills land while pushes are running.
plan_round 0
launch_clients 0
reap_clients 120
calibration() {
    cat "$W/r0/finished"
    expect_eq "pushes finished" 5 "$(wc -l <"$W/r0/finished")"
    local kind repo tag digest src
    while read -r kind repo tag digest src; do
        expect_eq "digest of $repo:$tag" "$digest" "$(crn digest "$R/$repo:$tag" </dev/null)"
    done <"$W/r0/expect"
}
CAL_MS="$(sort -k2 -n "$W/r0/finished" | tail -n1 | cut -d' ' -f2)"
check "calibration: the 5 concurrent pushes finish without a crash (${CAL_MS:-?} ms)" calibration
cat "$W/r0/expect" >>"$W/all.expect"
if [ -z "${CRASH_MAX_MS:-}" ] && [ -n "$CAL_MS" ] && [ "$CAL_MS" -lt "$MAX_MS" ]; then
    MAX_MS=$((CAL_MS > MIN_MS + 100 ? CAL_MS : MIN_MS + 100))
fi
echo "crash: kill delay ${MIN_MS}-${MAX_MS} ms"

loop_start=$SECONDS
rounds_done=0
for ((r = 1; r <= ROUNDS; r++)); do
    plan_round "$r"
    log_offset="$(stat -c %s "$SRV_LOG")"
    stop_server
    if ! start_server; then
        check "round $r: slipway starts on the crashed data" server_log_tail
        break
    fi
    # Concurrent pushes, then kill -9 after a random delay.
    launch_clients "$r"
    delay=$((MIN_MS + RANDOM % (MAX_MS - MIN_MS + 1)))
    sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
    crash_server "$delay"
    reap_clients 5
    echo "=== crash.sh: round $r: pushes finished before the crash (ms): $(tr '\n' ' ' <"$W/r$r/finished")" >>"$SRV_LOG"
    if ! start_server; then
        check "round $r: slipway restarts after kill -9" server_log_tail
        break
    fi
    E2E_CHECK_TIMEOUT=60 check "round $r: fsck clean after kill -9 at ${delay} ms (${#FINISHED[@]}/${#PIDS[@]} pushes had finished)" \
        fsck_round "$log_offset"
    E2E_CHECK_TIMEOUT=60 check "round $r: everything served after the crash matches its digest" served_ok "$r"
    E2E_CHECK_TIMEOUT=120 check "round $r: interrupted pushes retried to success, pulls byte-identical" retry_and_compare "$r"
    if [ -f "$W/r$r/chunked.state.notes" ]; then
        sed "s/^/note: round $r: /" "$W/r$r/chunked.state.notes"
    fi
    cat "$W/r$r/expect" >>"$W/all.expect"
    rounds_done=$r
done
echo "crash: $rounds_done rounds in $((SECONDS - loop_start))s"

# --------------------------------------------------------------------- final
gc_all() {
    local out
    out="$(sw gc --data-dir "$DATA" --grace-secs 0 2>"$W/gc.stderr")" || { cat "$W/gc.stderr" >&2; return 1; }
    echo "$out"
    jq -e . <<<"$out" >/dev/null
}
# After gc with no grace exactly the blobs the tagged images need remain.
gc_left_exactly_referenced() {
    local report want
    report="$(fsck_json)"
    echo "$report"
    want="$(while read -r kind repo tag digest src; do closure "$src" "$digest"; done <"$W/all.expect" | sort -u | wc -l)"
    expect_eq "blobs recorded after gc" "$want" "$(jq .blobs_recorded <<<"$report")"
    expect_eq "blobs stored after gc" "$want" "$(jq .blobs_stored <<<"$report")"
    echo "$want blobs, all referenced"
}
all_tags_validate() {
    local kind repo tag digest src d size code n=0 full=" "
    while read -r kind repo tag digest src; do
        expect_eq "digest of $repo:$tag" "$digest" "$(crn digest "$R/$repo:$tag" </dev/null)"
        crn validate --fast --remote "$R/$repo:$tag" </dev/null >/dev/null
        for d in $(closure "$src" "$digest"); do
            size="$(stat -c %s "$(blob_file "$src" "$d")")"
            code="$(curl -s -o /dev/null -w '%{http_code} %header{content-length}' -I --max-time 10 "http://$R/v2/$repo/blobs/$d")"
            expect_eq "HEAD $repo@$d" "200 $size" "$code"
        done
        # Download and digest every distinct image once.
        case "$full" in *" $digest "*) ;; *)
            crn validate --remote "$R/$repo:$tag" </dev/null >/dev/null
            full="$full$digest "
            ;;
        esac
        n=$((n + 1))
    done <"$W/all.expect"
    echo "$n tagged images validate ($(wc -w <<<"$full") distinct, fully downloaded)"
}
E2E_CHECK_TIMEOUT=120 check "final: slipway gc --grace-secs 0 (server running)" gc_all
E2E_CHECK_TIMEOUT=120 check "final: fsck clean after gc" fsck_clean
E2E_CHECK_TIMEOUT=120 check "final: gc kept exactly the referenced blobs" gc_left_exactly_referenced
E2E_CHECK_TIMEOUT=180 check "final: every tagged image still validates after gc" all_tags_validate
stop_server
E2E_CHECK_TIMEOUT=30 check "final: no panic in the server log" no_panic_since 0
echo "crash: backend $BACKEND done in ${SECONDS}s; server log ${SRV_LOG#"$REPO_ROOT"/}"
summary

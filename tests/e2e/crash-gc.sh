#!/usr/bin/env bash
# Crash consistency of garbage collection, at a deterministic crash point:
# `slipway gc` is killed with SIGKILL right after the storage deletion of the
# first unreferenced blob has completed (the bytes are gone) and before the
# database transaction that deletes its row can commit.
#
#   tests/e2e/crash-gc.sh [sqlite-fs|postgres-s3]      (default sqlite-fs)
#
# How the process is held at that point:
#   sqlite-fs    strace delays the return of gc's first unlink(2) by 20 s
#   postgres-s3  gc talks to moto through a small proxy that forwards the first
#                deletion of a blob object (DELETE, or object_store's bulk
#                POST ?delete), then holds the response for 20 s
# Meanwhile the script sends kill -9. Afterwards `slipway fsck` must find no
# problem, and every blob the registry says it has (HEAD 200) must download.
# A registry that deletes bytes before the row is durable fails here with
# "blob ... is recorded but not stored": HEAD keeps answering 200, so clients
# skip re-uploading it and manifests referencing it are accepted, while GET
# fails with 500.
#
# Results: target/e2e-results/crash-gc-<backend>-<timestamp>/ (serve.log, gc
# logs, every check's log). Output: ok/FAIL per check, then "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend_suite crash-gc "${1:-}"
SRV_LOG="$E2E_LOG_DIR/serve.log"
W="$E2E_TMP/work"
DATA="$E2E_TMP/data"
mkdir -p "$W" "$DATA"
REPO="crash-gc/run-$(date +%s)-$$/team/garbage"
echo "crash-gc: backend $BACKEND, logs in ${E2E_LOG_DIR#"$REPO_ROOT"/}"

backend_env "$BACKEND" >"$W/backend.log" 2>&1 || { cat "$W/backend.log" >&2; exit 1; }
sw() { "$E2E_SLIPWAY_BIN" "$@"; }

SRV_PID=
R=
# shellcheck disable=SC2016 # expanded when the cleanup runs
on_exit '[ -n "${SRV_PID:-}" ] && kill_tree "$SRV_PID" 5'
start_server() {
    local port
    port="$(free_port)"
    env SLIPWAY_GC__INTERVAL_SECS=0 SLIPWAY_AUTH__MODE=open \
        "$E2E_SLIPWAY_BIN" serve --data-dir "$DATA" --listen "127.0.0.1:$port" >>"$SRV_LOG" 2>&1 &
    SRV_PID=$!
    R="127.0.0.1:$port"
    wait_until 60 "slipway on $R" curl -sf --max-time 2 "http://$R/readyz"
}
stop_server() {
    kill_tree "$SRV_PID" 15
    wait "$SRV_PID" 2>/dev/null || true
    SRV_PID=
}

# Garbage: unreferenced blobs (monolithic uploads). Kept: an image's blobs.
N_GARBAGE=4
push_blob() { # push_blob FILE -> prints the digest
    local d
    d="sha256:$(sha256sum <"$1" | cut -d' ' -f1)"
    expect_eq "POST ?digest=$d" 201 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X POST \
        --data-binary @"$1" "http://$R/v2/$REPO/blobs/uploads/?digest=$d")"
    echo "$d"
}
setup() {
    local i layer config
    for i in $(seq "$N_GARBAGE"); do
        head -c $((64 * 1024 + i)) /dev/urandom >"$W/garbage-$i"
        push_blob "$W/garbage-$i" >>"$W/garbage.digests"
    done
    mkdir -p "$W/rootfs"
    head -c 4096 /dev/urandom >"$W/rootfs/kept.bin"
    tar -C "$W/rootfs" -cf "$W/layer" kept.bin
    printf '{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
        "$(sha256sum <"$W/layer" | cut -d' ' -f1)" >"$W/config"
    gzip -n "$W/layer"
    layer="$(push_blob "$W/layer.gz")"
    config="$(push_blob "$W/config")"
    printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"%s","size":%s},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"%s","size":%s}]}' \
        "$config" "$(stat -c %s "$W/config")" "$layer" "$(stat -c %s "$W/layer.gz")" >"$W/manifest"
    expect_eq "PUT manifest" 201 "$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 -X PUT \
        -H 'Content-Type: application/vnd.oci.image.manifest.v1+json' --data-binary @"$W/manifest" \
        "http://$R/v2/$REPO/manifests/kept")"
    cat "$W/garbage.digests"
}
fsck_clean() {
    local report rc=0
    report="$(sw fsck --data-dir "$DATA" 2>"$W/fsck.stderr")" || rc=$?
    echo "$report"
    [ -n "$report" ] || cat "$W/fsck.stderr" >&2
    expect_eq "fsck problems" 0 "$(jq '.problems | length' <<<"$report")"
    expect_eq "fsck exit status" 0 "$rc"
}

# The proxy for postgres-s3: forwards everything to moto; the first DELETE of a
# blob object is forwarded, then its response is held while a marker file says
# the object is gone.
write_proxy() {
    cat >"$W/proxy.py" <<'EOF'
import http.client, http.server, os, sys, threading, time, urllib.parse
upstream = urllib.parse.urlsplit(sys.argv[2]); marker = sys.argv[3]; lock = threading.Lock()
class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *args): pass
    def relay(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        conn = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=60)
        conn.request(self.command, self.path, body, {k: v for k, v in self.headers.items()})
        resp = conn.getresponse(); data = resp.read(); conn.close()
        print(self.command, self.path, resp.status, flush=True)
        # object_store deletes with DELETE, or with a bulk POST ?delete naming the keys.
        if (self.command == "DELETE" and "/blobs/" in self.path) or \
                (self.command == "POST" and self.path.endswith("?delete") and b"/blobs/" in body):
            with lock:
                first = not os.path.exists(marker)
                if first:
                    with open(marker, "w") as f: f.write(f"{self.command} {self.path} {body[:300]!r} -> {resp.status} {data[:300]!r}\n")
            if first: time.sleep(20)
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"): self.send_header(k, v)
        self.send_header("Content-Length", str(len(data))); self.end_headers()
        if self.command != "HEAD": self.wfile.write(data)
    do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = relay
http.server.ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1])), Proxy).serve_forever()
EOF
}

# Runs gc, waits until its first blob deletion has reached storage, kills it.
gc_killed_after_first_delete() {
    local gc_pid="" marker="$W/deleted"
    case "$BACKEND" in
        sqlite-fs)
            strace -f -qq -o "$W/strace.log" -e trace=unlink,unlinkat \
                -e inject=unlink,unlinkat:delay_exit=20s:when=1 \
                env \
                "$E2E_SLIPWAY_BIN" gc --data-dir "$DATA" --grace-secs 0 >"$W/gc.out" 2>"$W/gc.err" &
            local tracer=$!
            wait_until 30 "gc's first unlink" grep -q DELAYED "$W/strace.log" ||
                { kill_tree "$tracer" 2; return 1; }
            cat "$W/strace.log"
            grep -q '/storage/blobs/.*DELAYED' "$W/strace.log" ||
                { echo "the first unlink was not a blob deletion: the crash point is wrong" >&2; kill_tree "$tracer" 2; return 1; }
            gc_pid="$(_e2e_descendants "$tracer" | head -n1)"
            echo "kill -9 gc (pid $gc_pid) while the unlinked blob's row is still uncommitted"
            kill -KILL "$gc_pid"
            kill_tree "$tracer" 5
            wait "$tracer" 2>/dev/null || true
            ;;
        postgres-s3)
            # Started directly (not through the sw function), so $! is the gc process itself.
            env \
                SLIPWAY_STORAGE__S3__ENDPOINT="http://$PROXY" \
                "$E2E_SLIPWAY_BIN" gc --data-dir "$DATA" --grace-secs 0 >"$W/gc.out" 2>"$W/gc.err" &
            gc_pid=$!
            wait_until 30 "gc's first blob DELETE" test -s "$marker" ||
                { cat "$W/proxy.log" "$W/gc.err" >&2; kill_tree "$gc_pid" 2; return 1; }
            echo "storage answered: $(cat "$marker")"
            echo "kill -9 gc (pid $gc_pid) while the deleted blob's row is still uncommitted"
            kill -KILL "$gc_pid"
            wait "$gc_pid" 2>/dev/null || true
            ;;
    esac
    if _e2e_alive "$gc_pid"; then
        echo "gc (pid $gc_pid) survived kill -9" >&2
        return 1
    fi
    echo "gc is gone; its output: $(cat "$W/gc.out")"
    cp "$W/gc.err" "$E2E_LOG_DIR/gc-killed.stderr"
}
# Every blob the registry claims (HEAD 200) must download with its digest.
claims_hold() {
    local d code n=0
    while read -r d; do
        code="$(curl -s -o /dev/null -w '%{http_code}' -I --max-time 10 "http://$R/v2/$REPO/blobs/$d")"
        [ "$code" = 200 ] || continue
        code="$(curl -s -o "$W/blob" -w '%{http_code}' --max-time 30 "http://$R/v2/$REPO/blobs/$d")"
        expect_eq "GET of $d, which HEAD reports present" 200 "$code"
        expect_eq "digest of $d" "$d" "sha256:$(sha256sum <"$W/blob" | cut -d' ' -f1)"
        n=$((n + 1))
    done <"$W/garbage.digests"
    echo "$n blobs reported present, all downloadable"
}
gc_again() {
    local t0=$SECONDS
    sw gc --data-dir "$DATA" --grace-secs 0 2>"$W/gc2.err" || { cat "$W/gc2.err" >&2; return 1; }
    echo "gc took $((SECONDS - t0))s"
    cp "$W/gc2.err" "$E2E_LOG_DIR/gc-again.stderr"
    fsck_clean
}

PROXY=''
if [ "$BACKEND" = postgres-s3 ]; then
    write_proxy
    PROXY="127.0.0.1:$(free_port)"
    "$TOOLS/venv/bin/python" "$W/proxy.py" "${PROXY#*:}" "$S3_ENDPOINT" "$W/deleted" >"$W/proxy.log" 2>&1 &
    on_exit "kill_tree $! 2"
    wait_until 20 "the S3 proxy on $PROXY" curl -s --max-time 2 -o /dev/null "http://$PROXY/"
fi
start_server
check "setup: $N_GARBAGE unreferenced blobs and one tagged image" setup
stop_server
check "fsck clean before gc" fsck_clean
E2E_CHECK_TIMEOUT=90 check "gc killed (-9) right after deleting the first blob's bytes" gc_killed_after_first_delete
check "fsck clean after the killed gc" fsck_clean
start_server
check "every blob HEAD reports present downloads with its digest" claims_hold
check "kept image still validates" crane --insecure validate --remote "$R/$REPO:kept"
stop_server
check "gc run to completion, then fsck clean" gc_again
summary

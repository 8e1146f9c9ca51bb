#!/usr/bin/env bash
# Layers built to exhaust the scanner's memory, pushed with a real client to a Slipway
# that scans on push, and scanned again with `slipway scan`:
#
#   tests/e2e/hostile-layers.sh [sqlite-fs|postgres-s3]      (default sqlite-fs)
#
# The images (each one gzip layer, ending with an /etc/os-release that the analysis must
# still reach):
#   longname   a GNU long name of 512 MiB and a long link of 64 MiB (about 0.5 MB of gzip):
#              the `tar` crate read them whole, so this layer took 1.3 GB of the server
#   pax        a PAX header whose path is 512 MiB
#   many       hundreds of long names and PAX headers around the 1 MiB header limit, and
#              whiteouts with 900 KiB names that together overrun the analysis budget
#              (the layer is reported as scanned in part)
#   dpkg       a dpkg status of 200,000 packages (about 1 MB of gzip): over the analysis
#              budget, its packages are dropped and the layer reported as scanned in part
#
# What is checked, each step one "ok"/"FAIL" line:
#   push       skopeo copies each image from an OCI layout; the server scans each on push
#              (one at a time) and logs it as scanned
#   server     the scans are stored, the layers over the analysis budget marked
#              incomplete with the reason; the server's peak RSS (VmHWM in /proc) stays
#              under 300 MB
#   scan       `slipway scan oci:DIR` on each image: its peak RSS under 300 MB, the
#              os-release after the hostile entries found, and the exit status saying
#              whether the report is complete
#
# Results: target/e2e-results/hostile-layers-<backend>-<timestamp>/. The last line
# printed is "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend_suite hostile-layers "${1:-}"
W="$E2E_TMP/work"
mkdir -p "$W"
export RUST_BACKTRACE=0
# Scans of these layers take seconds each, decompressing gigabytes.
export E2E_CHECK_TIMEOUT="${E2E_CHECK_TIMEOUT:-600}"

# Peak resident memory allowed, in kB (300 MB).
MAX_RSS_KB=$((300 * 1000))
IMAGES=(longname pax many dpkg)
FEED="$REPO_ROOT/crates/slipway-scanner/testdata/feed/good"

command -v skopeo >/dev/null || { echo "skopeo missing: run scripts/install-test-deps" >&2; exit 1; }

# ---------------------------------------------------------------- the images
# One OCI layout per image, written by streaming tar headers into gzip: nothing holds
# the gigabytes the headers claim.
python3 - "$W/images" <<'EOF'
import gzip, hashlib, io, json, os, sys, zlib

root = sys.argv[1]
OS_RELEASE = b'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\nVERSION_ID="12"\n'


class Layer:
    """A gzip tar layer written as it is built, hashing both forms."""

    def __init__(self, path):
        self.file = open(path, "wb")
        self.gz = zlib.compressobj(9, zlib.DEFLATED, 31)
        self.tar_sha = hashlib.sha256()
        self.blob_sha = hashlib.sha256()
        self.size = 0

    def raw(self, data):
        self.tar_sha.update(data)
        out = self.gz.compress(data)
        self.blob_sha.update(out)
        self.file.write(out)
        self.size += len(out)

    def header(self, name, kind, size, mode=0o644):
        block = bytearray(512)
        block[0:len(name)] = name.encode()
        block[100:108] = b"%07o\0" % mode
        block[108:116] = b"0000000\0"
        block[116:124] = b"0000000\0"
        block[124:136] = b"%011o\0" % size
        block[136:148] = b"00000000000\0"
        block[148:156] = b"        "
        block[156:157] = kind
        block[257:265] = b"ustar  \0"
        block[148:156] = b"%06o\0 " % sum(block)
        self.raw(bytes(block))

    def data(self, size, pattern=b"a", suffix=b""):
        chunk = (pattern * ((1 << 20) // len(pattern) + 1))[: 1 << 20]
        left = size - len(suffix)
        while left > 0:
            n = min(left, len(chunk))
            self.raw(chunk[:n])
            left -= n
        self.raw(suffix)
        self.raw(b"\0" * ((512 - size % 512) % 512))

    def add_file(self, name, content):
        self.header(name, b"0", len(content))
        self.raw(content)
        self.raw(b"\0" * ((512 - len(content) % 512) % 512))

    def long_name(self, size, pattern=b"a", suffix=b""):
        self.header("././@LongLink", b"L", size)
        self.data(size, pattern, suffix)

    def long_link(self, size):
        self.header("././@LongLink", b"K", size)
        self.data(size, b"l")

    def pax_path(self, size, pattern=b"p"):
        body = size + 7
        length = body + len(str(body))
        if len(str(length)) + body != length:
            length += 1
        prefix = b"%d path=" % length
        self.header("PaxHeaders/x", b"x", length)
        self.raw(prefix)
        left = size
        chunk = pattern * (1 << 20)
        while left > 0:
            n = min(left, len(chunk))
            self.raw(chunk[:n])
            left -= n
        self.raw(b"\n")
        self.raw(b"\0" * ((512 - length % 512) % 512))

    def finish(self):
        self.add_file("etc/os-release", OS_RELEASE)
        self.raw(b"\0" * 1024)
        out = self.gz.flush()
        self.blob_sha.update(out)
        self.file.write(out)
        self.size += len(out)
        self.file.close()


def longname(layer):
    layer.long_name(512 << 20)
    layer.add_file("ignored", b"named by the long name")
    layer.long_link(64 << 20)
    layer.header("usr/bin/link", b"2", 0)


def pax(layer):
    layer.pax_path(512 << 20)
    layer.add_file("ignored", b"named by the PAX header")


def many(layer):
    # First, as this layer's analysis stops at its budget, before the end.
    layer.add_file("etc/os-release", OS_RELEASE)
    for n in range(300):
        fill = bytes([ord("a") + n % 26])
        layer.long_name((1 << 20) + 1, fill)
        layer.add_file("x", b"")
        layer.pax_path(2 << 20, fill)
        layer.add_file("x", b"")
        layer.long_name(900 << 10, b"../")
        layer.add_file("x", b"")
    # Whiteouts are remembered: 300 of 900 KiB are far over the analysis budget.
    for n in range(300):
        fill = bytes([ord("a") + n % 26])
        layer.long_name(900 << 10, fill, b"/.wh.gone")
        layer.add_file("x", b"")


def dpkg(layer):
    stanzas = io.BytesIO()
    for n in range(200_000):
        stanzas.write(
            b"Package: pkg%d\nStatus: install ok installed\nArchitecture: amd64\nVersion: 1.%d-1\n\n"
            % (n, n % 97)
        )
    layer.add_file("var/lib/dpkg/status", stanzas.getvalue())


def write_image(name, build):
    out = os.path.join(root, name)
    blobs = os.path.join(out, "blobs", "sha256")
    os.makedirs(blobs)
    tmp = os.path.join(out, "layer.tmp")
    layer = Layer(tmp)
    build(layer)
    layer.finish()
    layer_digest = layer.blob_sha.hexdigest()
    os.rename(tmp, os.path.join(blobs, layer_digest))

    def blob(document):
        data = json.dumps(document, separators=(",", ":")).encode()
        digest = hashlib.sha256(data).hexdigest()
        with open(os.path.join(blobs, digest), "wb") as f:
            f.write(data)
        return "sha256:" + digest, len(data)

    config, config_size = blob({
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + layer.tar_sha.hexdigest()]},
        "config": {},
    })
    manifest, manifest_size = blob({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config, "size": config_size},
        "layers": [{
            "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
            "digest": "sha256:" + layer_digest,
            "size": layer.size,
        }],
    })
    with open(os.path.join(out, "oci-layout"), "w") as f:
        json.dump({"imageLayoutVersion": "1.0.0"}, f)
    with open(os.path.join(out, "index.json"), "w") as f:
        json.dump({"schemaVersion": 2, "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": "1"},
        }]}, f)
    with open(os.path.join(root, name + ".digest"), "w") as f:
        f.write(manifest)
    print(f"{name}: layer of {layer.size} bytes, manifest {manifest}")


for name, build in [("longname", longname), ("pax", pax), ("many", many), ("dpkg", dpkg)]:
    write_image(name, build)
EOF

for image in longname pax dpkg; do
    size="$(jq -r '.layers[0].size' "$W/images/$image/blobs/sha256/$(cut -d: -f2 "$W/images/$image.digest")")"
    case "$image" in
        longname | pax) [ "$size" -lt $((1024 * 1024)) ] ;;
        dpkg) [ "$size" -lt $((2 * 1024 * 1024)) ] ;;
    esac || { echo "the $image layer is $size bytes: larger than the issue's" >&2; exit 1; }
done

start_slipway "$BACKEND" >"$W/start.log" 2>&1 || {
    cat "$W/start.log" >&2
    exit 1
}
on_exit "cp '$E2E_SLIPWAY_LOG' '$E2E_LOG_DIR/serve.log'"
[ "$(cat "/proc/$E2E_SLIPWAY_PID/comm")" = slipway ] || { echo "pid $E2E_SLIPWAY_PID is not slipway" >&2; exit 1; }

# peak_kb PID: the process's peak resident set (VmHWM), in kB.
peak_kb() { awk '/^VmHWM:/ { print $2 }' "/proc/$1/status"; }

# ----------------------------------------------------------------- push, scan
# Each image is pushed, then its scan waited for, so that one scan runs at a time.
push_and_scan() {
    local image="$1" digest line
    digest="$(cat "$W/images/$image.digest")"
    skopeo copy --quiet --dest-tls-verify=false "oci:$W/images/$image:1" "docker://$REGISTRY/hostile/$image:1"
    wait_until 300 "the scan of $image" grep -q "image scanned.*$digest" "$E2E_SLIPWAY_LOG"
    line="$(grep "image scanned.*$digest" "$E2E_SLIPWAY_LOG" | tail -n 1)"
    echo "$line"
    # Scanned, not failed: the hostile entries are skipped and the rest analysed.
    grep -q 'Scanned' <<<"$line"
    echo "server peak so far: $(peak_kb "$E2E_SLIPWAY_PID") kB"
}
for image in "${IMAGES[@]}"; do
    check "push: $image scanned on push" push_and_scan "$image"
done

# scan_row IMAGE: the server's stored scan of IMAGE, as "status|incomplete reason".
scan_row() {
    local digest sql
    digest="$(cat "$W/images/$1.digest")"
    sql="SELECT status || '|' || COALESCE(incomplete, '') FROM image_scans WHERE digest = '$digest'"
    if [ -n "${SLIPWAY_DATABASE_URL:-}" ]; then
        psql "$SLIPWAY_DATABASE_URL" -tAc "$sql"
    else
        python3 -c 'import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' \
            "$E2E_SLIPWAY_DATA/slipway.db" "$sql"
    fi
}
stored_results() {
    local image row
    for image in "${IMAGES[@]}"; do
        row="$(scan_row "$image")"
        echo "$image: $row"
        case "$image" in
            # Done, and said to be incomplete where the analysis budget ran out.
            many | dpkg) grep -q '^done|.*analysis memory budget' <<<"$row" ;;
            *) [ "$row" = "done|" ] ;;
        esac
    done
}
check "server: scans stored as done, the over-budget ones marked incomplete" stored_results

server_peak() {
    local peak
    peak="$(peak_kb "$E2E_SLIPWAY_PID")"
    echo "server VmHWM: $peak kB (limit $MAX_RSS_KB kB)"
    [ "$peak" -lt "$MAX_RSS_KB" ]
}
check "server: peak RSS under 300 MB after scanning every image" server_peak

# ----------------------------------------------------------------- slipway scan
# scan_image IMAGE EXPECTED_STATUS: `slipway scan` under a wrapper that reports the
# child's peak RSS (getrusage's ru_maxrss, in kB).
scan_image() {
    local image="$1" expected="$2" status peak
    python3 - "$W/$image.peak" "$E2E_SLIPWAY_BIN" --data-dir "$W/scan-data" scan "oci:$W/images/$image:1" \
        --feed "$FEED" --no-cache --format json --output "$W/$image.json" 2>"$W/$image.stderr" <<'EOF' || true
import resource, subprocess, sys
status = subprocess.run(sys.argv[2:]).returncode
with open(sys.argv[1], "w") as f:
    f.write(f"{status} {resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\n")
EOF
    read -r status peak <"$W/$image.peak"
    cat "$W/$image.stderr"
    echo "slipway scan $image: exit $status, peak RSS $peak kB (limit $MAX_RSS_KB kB)"
    [ "$status" = "$expected" ]
    [ "$peak" -lt "$MAX_RSS_KB" ]
    # The os-release after the hostile entries was reached.
    [ "$(jq -r '.os.id' "$W/$image.json")" = debian ]
}
scan_complete() { scan_image "$1" 0; }
scan_partial() {
    scan_image "$1" 4
    grep -q "scanned in part: .*analysis memory budget" "$W/$1.stderr"
    [ "$(jq -r '.complete' "$W/$1.json")" = false ]
}
check "scan: longname under 300 MB, long names skipped" scan_complete longname
check "scan: pax under 300 MB, PAX header skipped" scan_complete pax
check "scan: many under 300 MB, over-budget layer reported incomplete" scan_partial many
check "scan: dpkg (200,000 packages) under 300 MB, reported incomplete" scan_partial dpkg

summary

#!/usr/bin/env bash
# Pushes and pulls REAL images with REAL clients (skopeo, podman, buildah,
# crane, oras, Docker Engine) against a plain-http registry without auth, and
# checks that what comes back is byte-identical to what went in.
#
#   REGISTRY=127.0.0.1:PORT tests/e2e/clients.sh
#
# Test images are built without any engine: umoci + busybox-static make an OCI
# layout, `umoci raw add-layer` adds random-data layers. Every repository name
# is nested (e2e/<run>/team/...), so path handling with several components is
# exercised everywhere. Each run uses a fresh <run> component, so re-running
# against the same registry never sees stale state.
#
# Output: one "ok NAME" / "FAIL NAME" line per check (FAIL followed by the tail
# of that check's output), full logs of every check in
# target/e2e-results/clients-<timestamp>/, and a closing "N passed, N failed".
# Optional: E2E_SKIP="docker podman" skips whole client groups.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
require_registry

R="$REGISTRY"
RUN="run-$(date +%s)-$$"
NS="e2e/$RUN/team"
E2E_LOG_DIR="${E2E_LOG_DIR:-$REPO_ROOT/target/e2e-results/clients-$(date +%Y%m%d-%H%M%S)}"
mkdir -p "$E2E_LOG_DIR"
W="$E2E_TMP/work"     # everything a check produces
ST="$W/state"         # values handed from one check to later ones (checks run in subshells)
mkdir -p "$W" "$ST"
IMG="$W/layout"       # the OCI layout holding the source images

echo "clients: registry http://$R, repositories under $NS/, logs in ${E2E_LOG_DIR#"$REPO_ROOT"/}"

skipped() { case " ${E2E_SKIP:-} " in *" $1 "*) return 0 ;; esac; return 1; }

# ------------------------------------------------------------------ helpers
put() { printf '%s' "$2" >"$ST/$1"; }
get() { cat "$ST/$1"; }
crn() { crane --insecure "$@"; }
# Fail with a message that says what differed.
# Digest of the manifest tagged TAG in an OCI layout.
layout_digest() { # layout_digest LAYOUT TAG
    jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$1/index.json"
}
blob_file() { echo "$1/blobs/${2%%:*}/${2#*:}"; } # blob_file LAYOUT DIGEST
# Digests of the manifest, its config and its layers (one per line).
manifest_closure() { # manifest_closure LAYOUT DIGEST
    local m
    m="$(blob_file "$1" "$2")"
    echo "$2"
    jq -r '.config.digest, (.layers // [] | .[].digest)' "$m"
}
# Every blob of image DIGEST must exist in both layouts, be byte-identical and
# hash to its name.
compare_layouts() { # compare_layouts SRC DST DIGEST
    local d a b n=0
    for d in $(manifest_closure "$1" "$3"); do
        a="$(blob_file "$1" "$d")"
        b="$(blob_file "$2" "$d")"
        [ -f "$b" ] || { echo "blob $d missing from the pulled layout" >&2; return 1; }
        cmp "$a" "$b"
        expect_eq "sha256 of pulled blob" "${d#sha256:}" "$(sha256sum <"$b" | cut -d' ' -f1)" >/dev/null
        n=$((n + 1))
    done
    echo "$n blobs byte-identical (manifest, config, layers)"
}
# Digest of the manifest of a remote reference, hashed locally from the raw
# bytes the registry serves (not trusting Docker-Content-Digest).
remote_digest() { echo "sha256:$(crn manifest "$1" | sha256sum | cut -d' ' -f1)"; }

# ------------------------------------------------------------- test images
build_images() {
    local b="$W/bundle" i
    umoci init --layout "$IMG"
    umoci new --image "$IMG:busybox"
    umoci unpack --image "$IMG:busybox" "$b"
    # A tiny real rootfs: busybox-static plus a few applet links.
    mkdir -p "$b/rootfs/bin" "$b/rootfs/etc" "$b/rootfs/tmp"
    cp /bin/busybox "$b/rootfs/bin/busybox"
    for i in sh ls cat echo true sleep; do ln -s busybox "$b/rootfs/bin/$i"; done
    echo "slipway e2e $RUN" >"$b/rootfs/etc/motd"
    umoci repack --image "$IMG:busybox" "$b"
    umoci config --image "$IMG:busybox" --os linux --architecture amd64 \
        --config.entrypoint /bin/sh --config.cmd -c --config.cmd 'cat /etc/motd'
    # Same rootfs, arm64 config: the second platform of the multi-arch index.
    umoci config --image "$IMG:busybox" --tag busybox-arm64 --architecture arm64
    # Multi-layer image: busybox + three random (incompressible) layers.
    for i in 1 2 3; do
        mkdir -p "$W/l$i/data"
        head -c $(( (i == 3 ? 24 : i) * 1024 * 1024 + i * 7919)) /dev/urandom >"$W/l$i/data/random-$i.bin"
        tar -C "$W/l$i" -cf "$W/l$i.tar" data
    done
    umoci raw add-layer --image "$IMG:busybox" --tag multi "$W/l1.tar"
    umoci raw add-layer --image "$IMG:multi" "$W/l2.tar"
    umoci raw add-layer --image "$IMG:multi" "$W/l3.tar"
    umoci gc --layout "$IMG"
    # docker-archive tarballs for `docker load`, converted without an engine.
    skopeo copy -q "oci:$IMG:busybox" "docker-archive:$W/busybox-amd64.tar:e2e-local/busybox:amd64"
    skopeo copy -q "oci:$IMG:busybox-arm64" "docker-archive:$W/busybox-arm64.tar:e2e-local/busybox:arm64"
    jq -c '.manifests[] | {tag: .annotations["org.opencontainers.image.ref.name"], digest}' "$IMG/index.json"
}
check "build test images (umoci, busybox-static, random layers)" build_images
if [ ! -f "$W/busybox-arm64.tar" ]; then
    echo "test images could not be built: the harness itself is broken (see above)" >&2
    summary
    exit 1
fi
BUSYBOX_DIGEST="$(layout_digest "$IMG" busybox)"
MULTI_DIGEST="$(layout_digest "$IMG" multi)"
ARM_DIGEST="$(layout_digest "$IMG" busybox-arm64)"
MULTI_CONFIG="$(jq -r .config.digest "$(blob_file "$IMG" "$MULTI_DIGEST")")"
BUSYBOX_CONFIG="$(jq -r .config.digest "$(blob_file "$IMG" "$BUSYBOX_DIGEST")")"

# ------------------------------------------------------------------ skopeo
# skopeo copy keeps the manifest bytes (--preserve-digests), so the digest in
# the registry must equal the layout's.
skopeo_push() { # skopeo_push TAG REPO:TAG EXPECTED_DIGEST
    skopeo copy --preserve-digests --dest-tls-verify=false "oci:$IMG:$1" "docker://$R/$2"
    expect_eq "manifest digest" "$3" "$(remote_digest "$R/$2")"
}
skopeo_inspect() {
    local j
    j="$(skopeo inspect --tls-verify=false "docker://$R/$NS/tools/multi:v1")"
    expect_eq "inspect digest" "$MULTI_DIGEST" "$(jq -r .Digest <<<"$j")"
    expect_eq "inspect layers" "$(jq -r '.layers[].digest' "$(blob_file "$IMG" "$MULTI_DIGEST")" | tr '\n' ' ')" \
        "$(jq -r '.Layers[]' <<<"$j" | tr '\n' ' ')"
    expect_eq "inspect architecture" amd64 "$(jq -r .Architecture <<<"$j")"
    # config blob through skopeo too
    expect_eq "config digest" "$MULTI_CONFIG" \
        "sha256:$(skopeo inspect --tls-verify=false --raw --config "docker://$R/$NS/tools/multi:v1" | sha256sum | cut -d' ' -f1)"
}
skopeo_list_tags() {
    # A second tag on the same manifest: a manifest-only push (blobs exist).
    skopeo copy --preserve-digests --src-tls-verify=false --dest-tls-verify=false \
        "docker://$R/$NS/tools/busybox:1.0" "docker://$R/$NS/tools/busybox:1.1"
    local tags
    tags="$(skopeo list-tags --tls-verify=false "docker://$R/$NS/tools/busybox" | jq -r '.Tags | sort | join(" ")')"
    expect_eq "tags" "1.0 1.0-arm64 1.1" "$tags"
}
skopeo_copy_back() {
    skopeo copy --preserve-digests --src-tls-verify=false "docker://$R/$NS/tools/multi:v1" "oci:$W/pulled-skopeo:multi"
    expect_eq "pulled manifest digest" "$MULTI_DIGEST" "$(layout_digest "$W/pulled-skopeo" multi)"
    compare_layouts "$IMG" "$W/pulled-skopeo" "$MULTI_DIGEST"
}
skopeo_delete() {
    local repo="$NS/tools/deleteme" code
    skopeo_push busybox "$repo:1" "$BUSYBOX_DIGEST"
    # skopeo resolves the tag to a digest and DELETEs the manifest by digest.
    skopeo delete --tls-verify=false "docker://$R/$repo:1"
    if skopeo inspect --tls-verify=false "docker://$R/$repo:1" >/dev/null 2>&1; then
        echo "image still inspectable after delete" >&2
        return 1
    fi
    code="$(http_code "http://$R/v2/$repo/manifests/$BUSYBOX_DIGEST" -H 'Accept: application/vnd.oci.image.manifest.v1+json')"
    expect_eq "GET manifest by digest after delete" 404 "$code"
    code="$(http_code "http://$R/v2/$repo/manifests/1" -H 'Accept: application/vnd.oci.image.manifest.v1+json')"
    expect_eq "GET manifest by tag after delete" 404 "$code"
    # Deleting in one repository must not touch the same content elsewhere.
    code="$(http_code "http://$R/v2/$NS/tools/busybox/manifests/$BUSYBOX_DIGEST" -H 'Accept: application/vnd.oci.image.manifest.v1+json')"
    expect_eq "same manifest in another repository" 200 "$code"
}
check "skopeo: push busybox (oci layout -> registry, nested repo)" skopeo_push busybox "$NS/tools/busybox:1.0" "$BUSYBOX_DIGEST"
check "skopeo: push multi-layer image" skopeo_push multi "$NS/tools/multi:v1" "$MULTI_DIGEST"
check "skopeo: push arm64 variant" skopeo_push busybox-arm64 "$NS/tools/busybox:1.0-arm64" "$ARM_DIGEST"
check "skopeo: inspect (digest, layers, arch, config)" skopeo_inspect
check "skopeo: list-tags" skopeo_list_tags
check "skopeo: copy back to oci layout, blobs byte-identical" skopeo_copy_back
check "skopeo: delete, then manifest 404" skopeo_delete

# ------------------------------------------------------------------- crane
crane_copy_mount() {
    # crane copy between repositories of one registry mounts blobs
    # (POST ?mount=&from=): the registry must answer 201 for each layer.
    crn -v copy "$R/$NS/tools/multi:v1" "$R/$NS/crane/mirror/multi:v1" 2>"$W/crane-copy.log"
    local mounted
    mounted="$(grep -c 'mounted blob: ' "$W/crane-copy.log" || true)"
    echo "crane mounted $mounted blobs"
    if [ "$mounted" -lt 4 ]; then
        echo "expected the 4 layers to be cross-repo mounted, got $mounted:" >&2
        grep -E 'mount=|<-- [0-9]+ .*uploads' "$W/crane-copy.log" | tail -n 12 >&2
        return 1
    fi
    expect_eq "copied digest" "$MULTI_DIGEST" "$(crn digest "$R/$NS/crane/mirror/multi:v1")"
}
crane_validate() {
    crn validate --remote "$R/$NS/tools/multi:v1"
    crn validate --remote "$R/$NS/crane/mirror/multi:v1"
}
crane_ls() {
    expect_eq "tags of tools/busybox" "1.0 1.0-arm64 1.1" "$(crn ls "$R/$NS/tools/busybox" | sort | tr '\n' ' ' | sed 's/ $//')"
}
crane_catalog() {
    local cat r
    cat="$(crn catalog "$R")"
    for r in "$NS/tools/busybox" "$NS/tools/multi" "$NS/crane/mirror/multi"; do
        grep -qx "$r" <<<"$cat" || { echo "catalog lacks $r; it has: $(grep "$RUN" <<<"$cat" | tr '\n' ' ')" >&2; return 1; }
    done
    echo "catalog lists the nested repositories"
}
crane_bytes() {
    local ref="$R/$NS/tools/multi:v1" d
    expect_eq "crane digest" "$MULTI_DIGEST" "$(crn digest "$ref")"
    # The manifest bytes served must be the bytes pushed.
    crn manifest "$ref" >"$W/crane-manifest.json"
    cmp "$W/crane-manifest.json" "$(blob_file "$IMG" "$MULTI_DIGEST")"
    crn config "$ref" >"$W/crane-config.json"
    cmp "$W/crane-config.json" "$(blob_file "$IMG" "$MULTI_CONFIG")"
    for d in $(jq -r '.layers[].digest' "$W/crane-manifest.json"); do
        crn blob "$R/$NS/tools/multi@$d" >"$W/blob"
        expect_eq "sha256 of layer" "$d" "sha256:$(sha256sum <"$W/blob" | cut -d' ' -f1)"
        cmp "$W/blob" "$(blob_file "$IMG" "$d")"
    done
}
tags_pagination() {
    # GET /v2/<name>/tags/list?n=1 returns one tag and a Link to the rest.
    local hdr body
    hdr="$W/tags-headers"
    body="$(curl -sf --max-time 30 -D "$hdr" "http://$R/v2/$NS/tools/busybox/tags/list?n=1")"
    expect_eq "tags on first page" 1 "$(jq '.tags | length' <<<"$body")"
    expect_eq "first tag" "1.0" "$(jq -r '.tags[0]' <<<"$body")"
    # The spec lets a registry omit Link (MAY); if it sends one it must point onwards.
    if grep -qi '^Link:' "$hdr"; then
        grep -qi '^Link: *<[^>]*last=1\.0[^>]*>; *rel="next"' "$hdr" ||
            { echo "Link header does not point past 1.0 with rel=\"next\":" >&2; cat "$hdr" >&2; return 1; }
    else
        echo "note: no Link header on a partial page (allowed)"
    fi
    body="$(curl -sf --max-time 30 "http://$R/v2/$NS/tools/busybox/tags/list?n=10&last=1.0")"
    expect_eq "tags after 1.0" '["1.0-arm64","1.1"]' "$(jq -c '.tags' <<<"$body")"
}
if ! skipped crane; then
    check "crane: copy across repos uses cross-repo mount" crane_copy_mount
    check "crane: validate --remote" crane_validate
    check "crane: ls" crane_ls
    check "crane: catalog lists nested repos" crane_catalog
    check "crane: digest, manifest/config/blob bytes identical" crane_bytes
    check "tags list pagination (n, last, Link)" tags_pagination
fi

# ------------------------------------------------------------------ podman
# vfs storage under the temp dir; no systemd, no events journal.
PODMAN_ROOT="$W/podman"
pm() {
    podman --root "$PODMAN_ROOT/root" --runroot "$PODMAN_ROOT/run" --storage-driver vfs \
        --events-backend none --cgroup-manager cgroupfs --tmpdir "$PODMAN_ROOT/tmp" "$@"
}
podman_pull() {
    mkdir -p "$PODMAN_ROOT/tmp"
    pm pull --tls-verify=false "$R/$NS/tools/multi:v1"
    expect_eq "image id (config digest)" "${MULTI_CONFIG#sha256:}" "$(pm image inspect --format '{{.Id}}' "$R/$NS/tools/multi:v1")"
    expect_eq "manifest digest" "$MULTI_DIGEST" "$(pm image inspect --format '{{.Digest}}' "$R/$NS/tools/multi:v1")"
}
podman_push() {
    # podman recompresses layers it stored uncompressed unless it can reuse the
    # originals: the image id (config digest over uncompressed diff_ids) is
    # what must survive; the registry must also hold valid blobs.
    pm push --tls-verify=false "$R/$NS/tools/multi:v1" "docker://$R/$NS/podman/pushed/multi:v1"
    crn validate --remote "$R/$NS/podman/pushed/multi:v1"
    expect_eq "config digest after podman push" "$MULTI_CONFIG" \
        "$(crn manifest "$R/$NS/podman/pushed/multi:v1" | jq -r .config.digest)"
}
podman_repull() {
    pm rmi -a -f
    pm pull --tls-verify=false "$R/$NS/podman/pushed/multi:v1"
    expect_eq "image id after re-pull" "${MULTI_CONFIG#sha256:}" \
        "$(pm image inspect --format '{{.Id}}' "$R/$NS/podman/pushed/multi:v1")"
}
if ! skipped podman; then
    check "podman: pull (vfs), image id and digest match" podman_pull
    check "podman: push to another nested repo" podman_push
    check "podman: rmi + re-pull pushed image" podman_repull
fi

# ----------------------------------------------------------------- buildah
BUILDAH_ROOT="$W/buildah"
bh() { buildah --root "$BUILDAH_ROOT/root" --runroot "$BUILDAH_ROOT/run" --storage-driver vfs "$@"; }
buildah_build_push() {
    local ctr base_layers new_layers n
    mkdir -p "$BUILDAH_ROOT/tmp"
    export TMPDIR="$BUILDAH_ROOT/tmp"
    head -c $((512 * 1024 + 13)) /dev/urandom >"$W/payload.bin"
    ctr="$(bh from --tls-verify=false "$R/$NS/tools/busybox:1.0")"
    bh add "$ctr" "$W/payload.bin" /data/payload.bin
    bh config --label org.slipway.e2e="$RUN" --cmd '["cat","/etc/motd"]' "$ctr"
    bh commit "$ctr" "e2e-local/buildah-app:1"
    # Push into a new repository: base layers come from tools/busybox, so
    # buildah mounts them across repositories (?mount=&from=) and uploads the
    # new layer with POST/PATCH/PUT.
    bh push --tls-verify=false "e2e-local/buildah-app:1" "docker://$R/$NS/buildah/app:1"
    crn validate --remote "$R/$NS/buildah/app:1"
    crn manifest "$R/$NS/buildah/app:1" >"$W/buildah-manifest.json"
    base_layers="$(jq -r '.layers[].digest' "$(blob_file "$IMG" "$BUSYBOX_DIGEST")")"
    new_layers="$(jq -r '.layers[].digest' "$W/buildah-manifest.json")"
    n="$(wc -l <<<"$new_layers")"
    expect_eq "layer count" 2 "$n"
    expect_eq "base layer reused" "$base_layers" "$(head -n1 <<<"$new_layers")"
    # The added file must come back byte-identical from the new top layer.
    crn blob "$R/$NS/buildah/app@$(tail -n1 <<<"$new_layers")" >"$W/top.layer"
    mkdir -p "$W/top"
    tar -xf "$W/top.layer" -C "$W/top"
    cmp "$W/payload.bin" "$W/top/data/payload.bin"
    echo "payload byte-identical"
}
if ! skipped buildah; then
    check "buildah: from + add + commit + push (cross-repo mount)" buildah_build_push
fi

# -------------------------------------------------------------------- oras
ORAS_IN="$W/oras-in"
oras_push() {
    mkdir -p "$ORAS_IN"
    head -c $((3 * 1024 * 1024 + 5)) /dev/urandom >"$ORAS_IN/payload.bin"
    printf 'slipway e2e artifact %s\n' "$RUN" >"$ORAS_IN/notes.txt"
    # oras wants relative file names (it stores them as layer titles).
    (cd "$ORAS_IN" && oras push --plain-http --artifact-type application/vnd.slipway.e2e.bundle.v1 \
        --annotation org.slipway.e2e=bundle \
        "$R/$NS/artifacts/bundle:v1" payload.bin:application/octet-stream notes.txt:text/plain)
    local m
    m="$(oras manifest fetch --plain-http "$R/$NS/artifacts/bundle:v1")"
    expect_eq "artifactType" application/vnd.slipway.e2e.bundle.v1 "$(jq -r .artifactType <<<"$m")"
    expect_eq "layers" 2 "$(jq '.layers | length' <<<"$m")"
}
oras_pull() {
    oras pull --plain-http -o "$W/oras-out" "$R/$NS/artifacts/bundle:v1"
    cmp "$ORAS_IN/payload.bin" "$W/oras-out/payload.bin"
    cmp "$ORAS_IN/notes.txt" "$W/oras-out/notes.txt"
    echo "artifact files byte-identical"
}
oras_attach() {
    # A signature-like artifact whose subject is the busybox image. Forcing
    # the referrers API (not the sha256-<digest> tag fallback) so the
    # registry's subject handling is what gets tested.
    printf '{"signature":"%s","subject":"%s"}\n' "$RUN" "$BUSYBOX_DIGEST" >"$W/signature.json"
    local out
    out="$(cd "$W" && oras attach --plain-http --distribution-spec v1.1-referrers-api --format json \
        --artifact-type application/vnd.slipway.e2e.signature.v1 \
        "$R/$NS/tools/busybox:1.0" signature.json:application/vnd.slipway.e2e.signature.v1+json)"
    echo "$out"
    put sig_digest "$(jq -r .digest <<<"$out")"
    local m
    m="$(oras manifest fetch --plain-http "$R/$NS/tools/busybox@$(get sig_digest)")"
    expect_eq "subject of attached manifest" "$BUSYBOX_DIGEST" "$(jq -r .subject.digest <<<"$m")"
}
oras_discover() {
    local out
    out="$(oras discover --plain-http --distribution-spec v1.1-referrers-api --format json "$R/$NS/tools/busybox:1.0")"
    echo "$out"
    expect_eq "discovered referrer" "$(get sig_digest) application/vnd.slipway.e2e.signature.v1" \
        "$(jq -r '.referrers[] | "\(.digest) \(.artifactType)"' <<<"$out")"
}
referrers_api() {
    # GET /v2/<name>/referrers/<digest> directly: an image index listing the
    # attachment with its artifactType; the artifactType filter must keep it
    # and must drop everything for an unknown type.
    local base="http://$R/v2/$NS/tools/busybox/referrers/$BUSYBOX_DIGEST" body hdr="$W/referrers-headers"
    body="$(curl -sS --max-time 30 -D "$hdr" "$base")"
    expect_eq "status" 200 "$(head -n1 "$hdr" | cut -d' ' -f2)"
    grep -qi '^Content-Type: application/vnd.oci.image.index.v1+json' "$hdr" ||
        { echo "wrong Content-Type:" >&2; cat "$hdr" >&2; return 1; }
    expect_eq "referrers" "$(get sig_digest) application/vnd.slipway.e2e.signature.v1" \
        "$(jq -r '.manifests[] | "\(.digest) \(.artifactType)"' <<<"$body")"
    body="$(curl -sS --max-time 30 -D "$hdr" "$base?artifactType=application/vnd.slipway.e2e.signature.v1")"
    expect_eq "filtered referrers" "$(get sig_digest)" "$(jq -r '.manifests[].digest' <<<"$body")"
    body="$(curl -sS --max-time 30 -D "$hdr" "$base?artifactType=application/vnd.slipway.e2e.none")"
    if grep -qi '^OCI-Filters-Applied: *artifactType' "$hdr"; then
        expect_eq "referrers for an unknown type" 0 "$(jq '.manifests | length' <<<"$body")"
    else
        echo "note: registry did not apply the artifactType filter (allowed, no OCI-Filters-Applied header)"
    fi
}
oras_pull_signature() {
    oras pull --plain-http -o "$W/sig-out" "$R/$NS/tools/busybox@$(get sig_digest)"
    cmp "$W/signature.json" "$W/sig-out/signature.json"
    echo "signature byte-identical"
}
if ! skipped oras; then
    check "oras: push artifact with --artifact-type" oras_push
    check "oras: pull artifact, files byte-identical" oras_pull
    check "oras: attach signature to image (subject)" oras_attach
    check "oras: discover lists it via referrers API" oras_discover
    check "referrers API: index, artifactType filter" referrers_api
    check "oras: pull attached signature by digest" oras_pull_signature
fi

# ------------------------------------------------------------ Docker Engine
docker_push_pull() {
    local id out
    docker load -i "$W/busybox-amd64.tar"
    id="$(docker image inspect --format '{{.Id}}' e2e-local/busybox:amd64)"
    # docker-archive keeps the config bytes: the engine's id is our config digest.
    expect_eq "loaded image id" "$BUSYBOX_CONFIG" "$id"
    docker tag e2e-local/busybox:amd64 "$R/$NS/docker/busybox:1"
    docker push "$R/$NS/docker/busybox:1"
    put docker_id "$id"
    expect_eq "config digest in registry" "$id" "$(crn manifest "$R/$NS/docker/busybox:1" | jq -r .config.digest)"
    crn validate --remote "$R/$NS/docker/busybox:1"
}
docker_rmi_pull() {
    docker rmi "$R/$NS/docker/busybox:1" e2e-local/busybox:amd64
    if docker image inspect "$(get docker_id)" >/dev/null 2>&1; then
        echo "image still present after rmi" >&2
        return 1
    fi
    docker pull "$R/$NS/docker/busybox:1"
    expect_eq "image id after pull" "$(get docker_id)" "$(docker image inspect --format '{{.Id}}' "$R/$NS/docker/busybox:1")"
    # The pulled image's RepoDigest must be the digest the registry serves.
    expect_eq "repo digest" "$R/$NS/docker/busybox@$(crn digest "$R/$NS/docker/busybox:1")" \
        "$(docker image inspect --format '{{index .RepoDigests 0}}' "$R/$NS/docker/busybox:1")"
}
docker_multiarch() {
    local repo="$R/$NS/docker/multiarch" idx amd arm
    docker load -i "$W/busybox-amd64.tar"
    docker load -i "$W/busybox-arm64.tar"
    docker tag e2e-local/busybox:amd64 "$repo:amd64"
    docker tag e2e-local/busybox:arm64 "$repo:arm64"
    docker push "$repo:amd64"
    docker push "$repo:arm64"
    amd="$(crn digest "$repo:amd64")"
    arm="$(crn digest "$repo:arm64")"
    docker manifest create --insecure "$repo:latest" "$repo:amd64" "$repo:arm64"
    docker manifest push --insecure "$repo:latest"
    idx="$(crn manifest "$repo:latest")"
    echo "$idx"
    expect_eq "index entries" \
        "$(printf '%s linux/amd64\n%s linux/arm64' "$amd" "$arm" | sort)" \
        "$(jq -r '.manifests[] | "\(.digest) \(.platform.os)/\(.platform.architecture)"' <<<"$idx" | sort)"
    # crane resolves the platform through the index.
    expect_eq "arm64 via index" "$arm" "$(crn digest --platform linux/arm64 "$repo:latest")"
}
if ! skipped docker; then
    if start_dockerd >"$W/dockerd-start.log" 2>&1; then
        check "docker: load, push; id equals config digest" docker_push_pull
        check "docker: rmi + pull, same image id" docker_rmi_pull
        check "docker: manifest create/push multi-arch index" docker_multiarch
    else
        check "docker: engine starts" sh -c "cat '$W/dockerd-start.log'; exit 1"
    fi
fi

summary

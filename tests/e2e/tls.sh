#!/usr/bin/env bash
# HTTPS as a Docker Engine on another host meets it (`[tls]`, issue 19): Slipway listens on
# 0.0.0.0 inside a network namespace this script makes, reached from the host over a veth
# pair at an address that is not loopback (198.18.0.0/15, the range set aside for network
# tests). Docker Engine treats every registry outside 127.0.0.0/8 as secure: it must verify
# the certificate, and trusts the test CA only through /etc/docker/certs.d/HOST:PORT/,
# with no insecure-registries entry.
#
#   tests/e2e/tls.sh        (as root: network namespaces, /etc/docker/certs.d)
#
#   untrusted   before the CA is installed, docker login fails on the certificate
#   https       the challenge's token realm is https://HOST:PORT/auth/token; curl speaks
#               HTTP/2 and HTTP/1.1 (ALPN)
#   docker      docker login, push of an imported image, rmi, pull: the same image id
#   renewal     a new certificate (another subject) is moved over the files: the next
#               connection is served it, and docker pulls again across the change
#
# Results: target/e2e-results/tls-sqlite-fs-<timestamp>/. The last line printed is
# "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend_suite tls sqlite-fs
W="$E2E_TMP/work"
mkdir -p "$W"
export RUST_BACKTRACE=0

[ "$(id -u)" -eq 0 ] || { echo "tls: needs root (a network namespace, /etc/docker/certs.d)" >&2; exit 2; }
for tool in ip openssl curl; do
    command -v "$tool" >/dev/null || { echo "tls: $tool missing: run scripts/install-test-deps" >&2; exit 2; }
done

# ------------------------------------------------------------ the other host
NS="slipway-tls-$$"
HOST_IF="stls$$h"
NS_IF="stls$$n"
NET="198.18.$((RANDOM % 250)).$((4 * (RANDOM % 60)))"
HOST_IP="${NET%.*}.$((${NET##*.} + 1))"
SLIPWAY_IP="${NET%.*}.$((${NET##*.} + 2))"
PORT=5443
R="$SLIPWAY_IP:$PORT"
ip netns add "$NS"
on_exit "ip netns del '$NS'"
ip link add "$HOST_IF" type veth peer name "$NS_IF"
on_exit "ip link del '$HOST_IF'"
ip link set "$NS_IF" netns "$NS"
ip addr add "$HOST_IP/30" dev "$HOST_IF"
ip link set "$HOST_IF" up
ip netns exec "$NS" ip addr add "$SLIPWAY_IP/30" dev "$NS_IF"
ip netns exec "$NS" ip link set "$NS_IF" up
ip netns exec "$NS" ip link set lo up

# ------------------------------------------------------------ the test CA
# issue NAME: a certificate for $SLIPWAY_IP with subject CN=NAME, signed by the CA, moved
# over the files Slipway serves (a rename, as renewal tools do).
openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 2 \
    -subj "/CN=Slipway e2e CA" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$W/ca.key" -out "$W/ca.crt" 2>/dev/null
issue() {
    openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj "/CN=$1" \
        -keyout "$W/next.key" -out "$W/next.csr" 2>/dev/null
    printf 'subjectAltName=IP:%s\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' "$SLIPWAY_IP" >"$W/next.ext"
    openssl x509 -req -in "$W/next.csr" -CA "$W/ca.crt" -CAkey "$W/ca.key" -CAcreateserial -days 2 \
        -extfile "$W/next.ext" -out "$W/next.crt" 2>/dev/null
    mv "$W/next.key" "$W/server.key"
    mv "$W/next.crt" "$W/server.crt"
}
issue first.slipway.test

# ------------------------------------------------------------ slipway on the other host
DATA="$W/data"
ALICE_PW="tls-e2e-$RANDOM$RANDOM"
printf '%s' "$ALICE_PW" | "$E2E_SLIPWAY_BIN" admin create-user alice --email alice@example.com --password-stdin \
    --data-dir "$DATA" >"$W/admin.log" 2>&1
"$E2E_SLIPWAY_BIN" admin verify-email alice --data-dir "$DATA" >>"$W/admin.log" 2>&1
unset SLIPWAY_DATABASE_URL SLIPWAY_STORAGE__S3__BUCKET
ip netns exec "$NS" env SLIPWAY_TLS__CERT_FILE="$W/server.crt" SLIPWAY_TLS__KEY_FILE="$W/server.key" \
    SLIPWAY_AUTH__MODE=enforced SLIPWAY_GC__INTERVAL_SECS=0 \
    "$E2E_SLIPWAY_BIN" serve --data-dir "$DATA" --listen "0.0.0.0:$PORT" >"$W/serve.log" 2>&1 &
SLIPWAY_PID=$!
on_exit "kill_tree $SLIPWAY_PID 10"
on_exit "cp '$W/serve.log' '$E2E_LOG_DIR/serve.log'"
wait_until 60 "slipway on https://$R" curl -sf --max-time 2 --cacert "$W/ca.crt" "https://$R/readyz" || {
    tail -n 30 "$W/serve.log" >&2
    exit 1
}

start_dockerd >"$W/dockerd-start.log" 2>&1 || {
    cat "$W/dockerd-start.log" >&2
    exit 1
}
CERTS_D="/etc/docker/certs.d/$R"
on_exit "rm -rf '$CERTS_D'"

docker_login() {
    printf '%s' "$ALICE_PW" | docker login -u alice --password-stdin "$R"
}

untrusted() {
    # No insecure-registries entry covers the address...
    docker info --format '{{json .RegistryConfig.IndexConfigs}} {{json .RegistryConfig.InsecureRegistryCIDRs}}' |
        tee "$W/registry-config.json"
    if grep -q "$SLIPWAY_IP" "$W/registry-config.json"; then
        echo "$SLIPWAY_IP is configured as an insecure registry" >&2
        return 1
    fi
    # ...so without the CA the engine refuses the certificate.
    if docker_login >"$W/untrusted.out" 2>&1; then
        echo "docker login succeeded without trusting the CA" >&2
        return 1
    fi
    cat "$W/untrusted.out"
    grep -qi "certificate" "$W/untrusted.out"
}

https_answers() {
    local headers version
    headers="$(curl -sS --cacert "$W/ca.crt" -o /dev/null -D - "https://$R/v2/")"
    echo "$headers"
    grep -qi "^www-authenticate: Bearer realm=\"https://$R/auth/token\"" <<<"$headers"
    version="$(curl -sS --http2 --cacert "$W/ca.crt" -o /dev/null -w '%{http_version}' "https://$R/v2/")"
    expect_eq "HTTP version with ALPN h2" "2" "$version"
    version="$(curl -sS --http1.1 --cacert "$W/ca.crt" -o /dev/null -w '%{http_version}' "https://$R/v2/")"
    expect_eq "HTTP version with ALPN http/1.1" "1.1" "$version"
}

push_pull() {
    mkdir -p "$CERTS_D"
    cp "$W/ca.crt" "$CERTS_D/ca.crt"
    docker_login
    mkdir -p "$W/rootfs"
    printf 'pushed over TLS %s\n' "$RANDOM$RANDOM" >"$W/rootfs/hello.txt"
    tar -C "$W/rootfs" -c . | docker import - "$R/alice/tls:1"
    docker image inspect --format '{{.Id}}' "$R/alice/tls:1" >"$W/image-id"
    docker push "$R/alice/tls:1"
    docker rmi "$R/alice/tls:1"
    docker pull "$R/alice/tls:1"
    expect_eq "image id after pull" "$(cat "$W/image-id")" "$(docker image inspect --format '{{.Id}}' "$R/alice/tls:1")"
}

served_subject() {
    openssl s_client -connect "$R" -CAfile "$W/ca.crt" -verify_return_error </dev/null 2>/dev/null |
        openssl x509 -noout -subject
}

renewal() {
    served_subject | tee "$W/subject-before"
    grep -q "first.slipway.test" "$W/subject-before"
    issue second.slipway.test
    served_subject | tee "$W/subject-after"
    grep -q "second.slipway.test" "$W/subject-after"
    grep -q "TLS certificate reloaded" "$W/serve.log"
    docker rmi "$R/alice/tls:1"
    docker pull "$R/alice/tls:1"
    expect_eq "image id after renewal" "$(cat "$W/image-id")" "$(docker image inspect --format '{{.Id}}' "$R/alice/tls:1")"
}

check "untrusted: docker refuses the certificate without the CA (no insecure entry)" untrusted
check "https: realm is https, ALPN gives HTTP/2 and HTTP/1.1" https_answers
check "docker: login, push, rmi, pull over TLS on $SLIPWAY_IP" push_pull
check "renewal: the next connection gets the new certificate; docker pulls again" renewal

summary

#!/usr/bin/env bash
# Slipway behind the reverse proxies the project ships configurations for (deploy/nginx/
# slipway.conf and deploy/caddy/Caddyfile, issue 19): each proxy terminates TLS with a
# test CA's certificate for 127.0.0.1 and forwards plain HTTP to Slipway on loopback.
#
#   tests/e2e/proxy-tls.sh          (Debian's nginx and caddy, crane; loopback only)
#
# The SHIPPED files are rendered, not rewritten: only the placeholders change (server
# name, ports, certificate paths, the upstream address; nginx's IPv6 listen lines go, and
# Caddy gets a global block: admin API off, test ports, no ACME, no trust-store install),
# so what passes here is what an operator drops in. PROXY_TLS_DEPLOY_DIR points at
# another copy of deploy/ (to try a change, or to see a check fail on a broken one).
#
# Slipway runs with authentication enforced, trusted_proxies = ["127.0.0.1/32"] and
# auth.public_url = https://127.0.0.1:PORT (the proxy's address); a second Slipway runs
# without public_url. nginx, then Caddy, listens on that PORT (and an http:// port),
# each checked the same way, one "ok"/"FAIL" line each:
#
#   https        TLS verified against the test CA (refused without it), HTTP/2 and
#                HTTP/1.1, http:// redirects to https://, the challenge's realm is
#                https://127.0.0.1:PORT/auth/token, HSTS once, /metrics refused (a
#                forwarded request), every listening socket on 127.0.0.1
#   no public_url  in front of the Slipway without auth.public_url, the realm is still
#                https://127.0.0.1:PORT2/auth/token over HTTP/1.1 and HTTP/2, and a
#                session's cookie is Secure: Host and X-Forwarded-Proto reach Slipway
#   crane        crane auth login, push, pull through the proxy trusting the CA through
#                SSL_CERT_FILE (no --insecure); refused with another CA
#   large layer  a PROXY_TLS_LAYER_MIB (default 1024) MiB incompressible layer pushed
#                with crane (HTTP/2): its digest round-trips through a streamed download;
#                while it goes, what crane has written (/proc/PID/io) is never more than
#                a quarter of the layer ahead of what Slipway holds (a buffering proxy
#                takes the whole body first); the proxy's peak memory stays under 256 MiB;
#                nginx holds no temp file
#   paused upload  an HTTP/1.1 chunked PATCH (docker's way) stops after 32 MiB: Slipway
#                holds at least 24 MiB of it before the client sends the rest
#   pull limit   anonymous pulls (rate_limit.anonymous_pulls = 3) are counted per client:
#                127.0.0.2's fourth is refused (429), 127.0.0.3 pulls
#   throttle     50 wrong passwords from 127.0.0.2 (each with a made-up X-Forwarded-For)
#                through the proxy: 5 checked, then slowed (429, Retry-After); the right
#                password from 127.0.0.3 still signs in, on /auth/token and the API
#   mail         a sign-up through the proxy is mailed a link at https://127.0.0.1:PORT/,
#                and following that link through the proxy verifies the address
#
# and once, straight to Slipway (no proxy) from 127.0.0.9, not a trusted proxy: a made-up
# X-Forwarded-For does not escape the throttle, a made-up X-Forwarded-Proto is dropped.
#
# Results: target/e2e-results/proxy-tls-sqlite-fs-<timestamp>/ (each check's log, both
# Slipways' and the proxies' logs and rendered configurations). The last line printed is
# "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend_suite proxy-tls sqlite-fs
W="$E2E_TMP/work"
mkdir -p "$W" "$W/no-certs"
export RUST_BACKTRACE=0
DEPLOY="${PROXY_TLS_DEPLOY_DIR:-$REPO_ROOT/deploy}"
LAYER_MIB="${PROXY_TLS_LAYER_MIB:-1024}"

NGINX="$(command -v nginx || echo /usr/sbin/nginx)"
for tool in "$NGINX" caddy crane openssl curl ss python3; do
    command -v "$tool" >/dev/null || { echo "proxy-tls: $tool missing: run scripts/install-test-deps" >&2; exit 2; }
done
for file in "$DEPLOY/nginx/slipway.conf" "$DEPLOY/caddy/Caddyfile"; do
    [ -f "$file" ] || { echo "proxy-tls: $file missing" >&2; exit 2; }
done
# Clients trust exactly what each command names: the machine's CA variables stay out.
unset SSL_CERT_FILE SSL_CERT_DIR CURL_CA_BUNDLE REQUESTS_CA_BUNDLE
export DOCKER_CONFIG="$W/docker-config"
mkdir -p "$DOCKER_CONFIG"

# ------------------------------------------------------------ the test CA
# ca.crt signs server.crt (for IP 127.0.0.1); other-ca.crt signs nothing of ours.
CA="$W/ca.crt"
make_ca() {
    openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -days 2 \
        -subj "/CN=$2" -addext "basicConstraints=critical,CA:TRUE" \
        -addext "keyUsage=critical,keyCertSign,cRLSign" -keyout "$W/$1.key" -out "$W/$1.crt" 2>/dev/null
}
make_ca ca "Slipway proxy e2e CA"
make_ca other-ca "Some other CA"
openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -subj "/CN=127.0.0.1" \
    -keyout "$W/server.key" -out "$W/server.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\nbasicConstraints=CA:FALSE\n' >"$W/server.ext"
openssl x509 -req -in "$W/server.csr" -CA "$CA" -CAkey "$W/ca.key" -CAcreateserial -days 2 \
    -extfile "$W/server.ext" -out "$W/server.crt" 2>/dev/null
# The proxies read the key once at start (nginx's master, before its workers drop to nobody).
chmod 600 "$W/server.key"

# ------------------------------------------------------------ ports
# Four distinct free loopback ports: the proxies' https and http ports, in front of
# the Slipway with a public URL and of the one without.
PORTS=()
while [ "${#PORTS[@]}" -lt 4 ]; do
    p="$(free_port)"
    case " ${PORTS[*]} " in *" $p "*) ;; *) PORTS+=("$p") ;; esac
done
PORT="${PORTS[0]}" HTTP_PORT="${PORTS[1]}" BARE_PORT="${PORTS[2]}" BARE_HTTP_PORT="${PORTS[3]}"
PUBLIC="127.0.0.1:$PORT"
PUBLIC_URL="https://$PUBLIC"

# ------------------------------------------------------------ the two Slipways
# A first delay of 30 s (default 1 s): what the throttle lets through does not depend on
# this machine's speed. No scans on push: nobody needs those of a gigabyte of noise.
# Three anonymous manifest GETs per client address.
MAILDIR="$W/mail"
ANONYMOUS_PULLS=3
{
    start_smtp_sink "$MAILDIR" &&
        SLIPWAY_TRUSTED_PROXIES='["127.0.0.1/32"]' SLIPWAY_SIGN_IN__FIRST_DELAY_SECS=30 SLIPWAY_SCAN__ON_PUSH=false \
            SLIPWAY_RATE_LIMIT__ANONYMOUS_PULLS="$ANONYMOUS_PULLS" E2E_AUTH_MODE=enforced \
            SLIPWAY_AUTH__PUBLIC_URL="$PUBLIC_URL" start_slipway sqlite-fs
} >"$W/start.log" 2>&1 || {
    cat "$W/start.log" >&2
    exit 1
}
UPSTREAM="$REGISTRY" DATA="$E2E_SLIPWAY_DATA"
on_exit "cp '$E2E_SLIPWAY_LOG' '$E2E_LOG_DIR/serve.log'"
SLIPWAY_TRUSTED_PROXIES='["127.0.0.1/32"]' SLIPWAY_SCAN__ON_PUSH=false E2E_AUTH_MODE=enforced \
    start_slipway sqlite-fs >"$W/start-bare.log" 2>&1 || {
    cat "$W/start-bare.log" >&2
    exit 1
}
BARE_UPSTREAM="$REGISTRY" BARE_DATA="$E2E_SLIPWAY_DATA"
on_exit "cp '$E2E_SLIPWAY_LOG' '$E2E_LOG_DIR/serve-without-public-url.log'"

sa() { "$E2E_SLIPWAY_BIN" "$@" --data-dir "$DATA"; }
pw() { echo "$1-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
new_user() { # new_user NAME PASSWORD: an account with a verified address
    printf '%s' "$2" | sa admin create-user "$1" --email "$1@example.com" --password-stdin &&
        sa admin verify-email "$1"
}
ALICE_PW="$(pw alice)"
TARGET_PW="$(pw target)"
CAROL_PW="$(pw carol)"
{
    new_user alice "$ALICE_PW" && new_user target "$TARGET_PW" &&
        DATA="$BARE_DATA" new_user carol "$CAROL_PW"
} >"$W/users.log" 2>&1 || {
    cat "$W/users.log" >&2
    exit 1
}

# ------------------------------------------------------------ rendering the shipped files
# Non-comment lines that must not survive rendering: a placeholder left means the shipped
# file changed in a way the suite does not know, and the run would not test it.
leftovers() { # leftovers FILE REGEX
    if grep -v '^\s*#' "$1" | grep -En "$2"; then
        echo "placeholders left in the rendered $1 (the shipped file changed?)" >&2
        return 1
    fi
}

# render_nginx DIR HTTPS_PORT HTTP_PORT UPSTREAM: deploy/nginx/slipway.conf in DIR/conf.d,
# included from a main nginx.conf like Debian's (temp paths, pid and logs in DIR).
render_nginx() {
    local dir="$1" port="$2" http_port="$3" upstream="$4" tmp
    mkdir -p "$dir/conf.d" "$dir/logs"
    # Workers run as nobody: their temp files (there should be none, but a broken
    # configuration must fail for buffering, not for a permission) go to a directory
    # they can reach, outside the private E2E_TMP. NGINX_TMP names it.
    tmp="$(mktemp -d "${TMPDIR:-/tmp}/slipway-nginx-tmp.XXXXXX")"
    on_exit "rm -rf '$tmp'"
    chmod 777 "$tmp"
    NGINX_TMP="$tmp"
    sed -e "s|https://registry\.example\.com|https://127.0.0.1:$port|g" \
        -e "s|^\(\s*\)server_name registry\.example\.com;|\1server_name 127.0.0.1;|" \
        -e "s|^\(\s*\)listen 443 ssl http2;|\1listen 127.0.0.1:$port ssl http2;|" \
        -e "s|^\(\s*\)listen 80;|\1listen 127.0.0.1:$http_port;|" \
        -e '/^\s*listen \[::\]:/d' \
        -e "s|^\(\s*ssl_certificate\s\+\)/etc/ssl/slipway/fullchain\.pem;|\1$W/server.crt;|" \
        -e "s|^\(\s*ssl_certificate_key\s\+\)/etc/ssl/slipway/privkey\.pem;|\1$W/server.key;|" \
        -e "s|^\(\s*\)server 127\.0\.0\.1:5000;|\1server $upstream;|" \
        "$DEPLOY/nginx/slipway.conf" >"$dir/conf.d/slipway.conf"
    leftovers "$dir/conf.d/slipway.conf" 'example\.com|/etc/ssl|:5000|\[::\]|listen (80|443)\b'
    diff "$DEPLOY/nginx/slipway.conf" "$dir/conf.d/slipway.conf" >"$dir/rendered.diff" || true
    cat >"$dir/nginx.conf" <<EOF
daemon off;
worker_processes 2;
pid $dir/nginx.pid;
error_log $dir/logs/error.log warn;
events { worker_connections 256; }
http {
    sendfile on;
    tcp_nopush on;
    types_hash_max_size 2048;
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    gzip on;
    access_log $dir/logs/access.log;
    client_body_temp_path $tmp/body;
    proxy_temp_path $tmp/proxy;
    fastcgi_temp_path $tmp/fastcgi;
    uwsgi_temp_path $tmp/uwsgi;
    scgi_temp_path $tmp/scgi;
    include $dir/conf.d/*.conf;
}
EOF
}

# render_caddy DIR HTTPS_PORT HTTP_PORT UPSTREAM: deploy/caddy/Caddyfile as DIR/Caddyfile,
# after a global block for the test: no admin API, the test ports, no certificate
# automation (the site's own `tls` line gives the test certificate), nothing installed in
# the machine's trust store, state in DIR. The site binds 127.0.0.1 only.
render_caddy() {
    local dir="$1" port="$2" http_port="$3" upstream="$4"
    mkdir -p "$dir/home" "$dir/data" "$dir/config"
    {
        printf '{\n\tadmin off\n\thttp_port %s\n\thttps_port %s\n\tauto_https disable_certs\n' "$http_port" "$port"
        printf '\tskip_install_trust\n\tstorage file_system %s\n}\n\n' "$dir/data/caddy"
        sed -e "s|^registry\.example\.com {|https://127.0.0.1:$port {\n\tbind 127.0.0.1|" \
            -e "s|^\(\s*\)# tls /etc/ssl/slipway/fullchain\.pem /etc/ssl/slipway/privkey\.pem$|\1tls $W/server.crt $W/server.key|" \
            -e "s|^\(\s*\)reverse_proxy 127\.0\.0\.1:5000 {|\1reverse_proxy $upstream {|" \
            "$DEPLOY/caddy/Caddyfile"
    } >"$dir/Caddyfile"
    leftovers "$dir/Caddyfile" 'example\.com|/etc/ssl|:5000'
    grep -q "^\s*tls $W/server.crt" "$dir/Caddyfile" || { echo "no tls line was rendered" >&2; return 1; }
    diff "$DEPLOY/caddy/Caddyfile" "$dir/Caddyfile" >"$dir/rendered.diff" || true
}

# start_proxy KIND NAME HTTPS_PORT HTTP_PORT UPSTREAM: renders and starts KIND (nginx or
# caddy) as E2E_TMP/NAME, waits until it answers over TLS and sets STARTED_PID. Its logs
# and rendered files are kept with the results; stop_proxy PID stops it.
start_proxy() {
    local kind="$1" dir="$E2E_TMP/$2" port="$3" pid
    mkdir -p "$dir"
    "render_$kind" "$dir" "$3" "$4" "$5" || return 1
    case "$kind" in
        nginx)
            "$NGINX" -p "$dir" -c "$dir/nginx.conf" >"$dir/logs/stdout.log" 2>&1 &
            pid=$!
            ;;
        caddy)
            HOME="$dir/home" XDG_DATA_HOME="$dir/data" XDG_CONFIG_HOME="$dir/config" \
                caddy run --config "$dir/Caddyfile" --adapter caddyfile >"$dir/caddy.log" 2>&1 &
            pid=$!
            ;;
    esac
    on_exit "keep_proxy_files '$dir' '$E2E_LOG_DIR/$2'"
    on_exit "stop_proxy $pid"
    wait_until 30 "$kind on $port" curl -sf --max-time 2 --cacert "$CA" "https://127.0.0.1:$port/healthz" || {
        tail -n 30 "$dir"/logs/error.log "$dir"/caddy.log 2>/dev/null >&2
        stop_proxy "$pid"
        return 1
    }
    STARTED_PID="$pid"
}
# keep_proxy_files DIR DEST: the rendered configuration, its diff from the shipped file and
# the logs (not Caddy's state: its own throwaway CA and autosaved configuration).
keep_proxy_files() {
    local f
    mkdir -p "$2"
    for f in nginx.conf conf.d logs Caddyfile caddy.log rendered.diff; do
        if [ -e "$1/$f" ]; then cp -r "$1/$f" "$2/"; fi
    done
}
STOPPED=" "
stop_proxy() {
    case "$STOPPED" in *" $1 "*) return 0 ;; esac
    kill_tree "$1" 10
    STOPPED+="$1 "
}

# ------------------------------------------------------------ helpers
expect_code() { # expect_code WHAT EXPECTED ACTUAL
    if [ "$2" != "$3" ]; then
        echo "MISMATCH $1: expected $2 got $3" >&2
        return 1
    fi
    echo "as expected, $1: $3"
}
# tcurl ARGS...: curl trusting the test CA only.
tcurl() { curl -sS --max-time 60 --cacert "$CA" "$@"; }
tcode() { # tcode URL [curl args...]: the status (000 on a failed connection)
    local url="$1"
    shift
    tcurl -o /dev/null -w '%{http_code}' "$@" "$url" 2>/dev/null || true
}
# crane trusting the test CA only (an exec, so that $! is crane itself).
tcrane() { env SSL_CERT_FILE="$CA" SSL_CERT_DIR="$W/no-certs" crane "$@"; }
header() { # header NAME FILE: the values of a header in a dump of response headers
    tr -d '\r' <"$2" | grep -i "^$1:" | cut -d: -f2- | sed 's/^ //'
}
tally() {
    echo "401: $(grep -c '^401$' "$1" || true), 429: $(grep -c '^429$' "$1" || true), other: $(grep -vc '^401$\|^429$' "$1" || true)"
}
# upload_bytes: bytes in Slipway's unfinished uploads (filesystem store: uploads/<uuid>).
upload_bytes() {
    find "$DATA" -path '*/uploads/*' -type f -printf '%s\n' 2>/dev/null | awk '{ s += $1 } END { print s + 0 }'
}
upload_at_least() { [ "$(upload_bytes)" -ge "$1" ]; }
# tar_gz FILE MIB: a gzip'd tar holding MIB MiB of random bytes, stored (deflate level 0:
# fast, and random data would not shrink anyway). Prints its sha256 digest.
tar_gz() {
    python3 - "$1" "$2" <<'PY'
import hashlib, io, os, sys, tarfile
path, mib = sys.argv[1], int(sys.argv[2])
class Noise(io.RawIOBase):
    def __init__(self, n): self.left = n
    def readable(self): return True
    def readinto(self, b):
        n = min(len(b), self.left, 1 << 20)
        b[:n] = os.urandom(n)
        self.left -= n
        return n
info = tarfile.TarInfo("noise.bin")
info.size, info.mode = mib << 20, 0o644
with tarfile.open(path, "w:gz", compresslevel=0) as tar:
    tar.addfile(info, io.BufferedReader(Noise(info.size), 1 << 20))
h = hashlib.sha256()
with open(path, "rb") as f:
    while chunk := f.read(1 << 20):
        h.update(chunk)
print("sha256:" + h.hexdigest())
PY
}
# peak_rss_mib PID: the largest peak resident size (VmHWM) of PID and its descendants.
peak_rss_mib() {
    local p kb max=0
    for p in "$1" $(_e2e_descendants "$1"); do
        kb="$(awk '/^VmHWM:/ { print $2 }' "/proc/$p/status" 2>/dev/null || true)"
        [ -n "$kb" ] && [ "$kb" -gt "$max" ] && max="$kb"
    done
    echo $((max / 1024))
}
# temp_files PID DIR: how many files below DIR the process and its descendants hold open.
temp_files() {
    local p n=0
    for p in "$1" $(_e2e_descendants "$1"); do
        n=$((n + $(find "/proc/$p/fd" -lname "$2/*" 2>/dev/null | wc -l)))
    done
    echo "$n"
}

# ------------------------------------------------------------ checks (per proxy)
# These read KIND, PROXY_PID, PROXY_TMP (nginx's temp directory), ATTACKER and VICTIM, set
# by run_proxy.

check_https() {
    local h="$W/$KIND-v2.headers" realm listening
    # Refused with a CA that did not sign the certificate...
    if curl -sS --max-time 30 --cacert "$W/other-ca.crt" -o /dev/null "$PUBLIC_URL/v2/" 2>"$W/$KIND-untrusted.err"; then
        echo "the proxy's certificate was accepted with another CA" >&2
        return 1
    fi
    echo "with another CA: $(cat "$W/$KIND-untrusted.err")"
    # ...verified with the test CA, over both protocols.
    expect_code "HTTP version offering h2" 2 "$(tcurl --http2 -o /dev/null -w '%{http_version}' "$PUBLIC_URL/v2/")"
    expect_code "HTTP version offering http/1.1 only" 1.1 "$(tcurl --http1.1 -o /dev/null -w '%{http_version}' "$PUBLIC_URL/v2/")"
    tcurl -o /dev/null -D "$h" "$PUBLIC_URL/v2/"
    cat "$h"
    expect_code "status of /v2/" 401 "$(head -n 1 "$h" | awk '{ print $2 }')"
    realm="$(header www-authenticate "$h")"
    expect_code "challenge" "Bearer realm=\"$PUBLIC_URL/auth/token\",service=\"slipway\"" "$realm"
    expect_code "Strict-Transport-Security headers" 1 "$(header strict-transport-security "$h" | grep -c 'max-age=[1-9]')"
    # http:// answers with a redirect to the same path over https.
    curl -sS --max-time 30 -o /dev/null -D "$h" "http://127.0.0.1:$HTTP_PORT/v2/?x=1"
    cat "$h"
    head -n 1 "$h" | grep -Eq ' 30[178] ' || { echo "http:// did not redirect" >&2; return 1; }
    header location "$h" | grep -Eq "^https://127\.0\.0\.1(:$PORT)?/v2/\?x=1$" ||
        { echo "redirected elsewhere: $(header location "$h")" >&2; return 1; }
    # Slipway sees a forwarded request: /metrics is only for local scrapers.
    expect_code "/metrics through the proxy" 403 "$(tcode "$PUBLIC_URL/metrics")"
    expect_code "/metrics straight from loopback (control)" 200 "$(http_code "http://$UPSTREAM/metrics")"
    # Every socket the proxy listens on is on loopback.
    listening="$(ss -Hltun -p | grep -E "pid=($PROXY_PID|$(_e2e_descendants "$PROXY_PID" | paste -sd'|')),")"
    echo "$listening"
    [ -n "$listening" ]
    if awk '{ print $5 }' <<<"$listening" | grep -v '^127\.0\.0\.1:'; then
        echo "the proxy listens beyond 127.0.0.1" >&2
        return 1
    fi
}

check_realm_without_public_url() {
    local url="https://127.0.0.1:$BARE_PORT" v realm h="$W/$KIND-bare-session.headers"
    local session='{"name":"carol","password":"'"$CAROL_PW"'"}'
    for v in --http1.1 --http2; do
        realm="$(tcurl "$v" -o /dev/null -D - "$url/v2/" | tr -d '\r' | grep -i '^www-authenticate:' | cut -d' ' -f2-)"
        expect_code "challenge ($v)" "Bearer realm=\"$url/auth/token\",service=\"slipway\"" "$realm"
    done
    # A session started through the proxy gets a Secure cookie (X-Forwarded-Proto).
    tcurl -o /dev/null -D "$h" -H 'content-type: application/json' --data "$session" "$url/api/v1/session"
    header set-cookie "$h"
    header set-cookie "$h" | grep -q '; Secure' || { echo "a session through the https proxy got no Secure cookie" >&2; return 1; }
    # The controls: straight to that Slipway, over plain http, the realm is its own
    # address and the cookie is not Secure.
    realm="$(curl -sS -o /dev/null -D - "http://$BARE_UPSTREAM/v2/" | tr -d '\r' | grep -i '^www-authenticate:' | cut -d' ' -f2-)"
    expect_code "challenge, direct" "Bearer realm=\"http://$BARE_UPSTREAM/auth/token\",service=\"slipway\"" "$realm"
    curl -sS -o /dev/null -D "$h" -H 'content-type: application/json' --data "$session" "http://$BARE_UPSTREAM/api/v1/session"
    header set-cookie "$h"
    if header set-cookie "$h" | grep '; Secure'; then
        echo "a session over plain http got a Secure cookie" >&2
        return 1
    fi
}

check_crane() {
    local repo="$PUBLIC/alice/small-$KIND" pushed layer
    rm -f "$DOCKER_CONFIG/config.json"
    tcrane auth login "$PUBLIC" -u alice -p "$ALICE_PW"
    mkdir -p "$W/$KIND-small"
    printf 'through %s %s\n' "$KIND" "$RANDOM$RANDOM" >"$W/$KIND-small/hello.txt"
    tar -C "$W/$KIND-small" -czf "$W/$KIND-small.tar.gz" hello.txt
    layer="sha256:$(sha256sum "$W/$KIND-small.tar.gz" | cut -d' ' -f1)"
    pushed="$(tcrane append -f "$W/$KIND-small.tar.gz" -t "$repo:1")"
    echo "pushed $pushed"
    expect_code "digest of the tag" "${pushed#*@}" "$(tcrane digest "$repo:1")"
    expect_code "layer in the manifest" "$layer" "$(tcrane manifest "$repo:1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["layers"][0]["digest"])')"
    tcrane pull --format oci "$repo:1" "$W/$KIND-pulled"
    expect_code "the pulled layer" "${layer#sha256:}" "$(sha256sum "$W/$KIND-pulled/blobs/sha256/${layer#sha256:}" | cut -d' ' -f1)"
    # Without the test CA, crane refuses the proxy's certificate.
    if env SSL_CERT_FILE="$W/other-ca.crt" SSL_CERT_DIR="$W/no-certs" crane digest "$repo:1" >"$W/$KIND-crane-untrusted.out" 2>&1; then
        echo "crane accepted the certificate with another CA" >&2
        return 1
    fi
    cat "$W/$KIND-crane-untrusted.out"
    grep -q x509 "$W/$KIND-crane-untrusted.out"
}

check_large_layer() {
    local file="$W/$KIND-large.tar.gz" repo="$PUBLIC/alice/large-$KIND" digest size pid
    local u u_max=0 done=0 w gap max_gap=0 samples=0 deadline temp max_temp=0 rc=0 peak bad=0
    digest="$(tar_gz "$file" "$LAYER_MIB")"
    size="$(stat -c %s "$file")"
    echo "layer $digest, $size bytes"
    tcrane auth login "$PUBLIC" -u alice -p "$ALICE_PW"
    env SSL_CERT_FILE="$CA" SSL_CERT_DIR="$W/no-certs" crane append -f "$file" -t "$repo:1" >"$W/$KIND-append.out" 2>&1 &
    pid=$!
    deadline=$((SECONDS + 540))
    # While crane runs, compare what it has written (wchar: its socket writes; it only
    # reads the file) with what Slipway holds of the upload: the gap is what is in flight,
    # in socket buffers and in the proxy. A proxy that buffers the body lets it grow to
    # the whole layer before Slipway gets a byte. (Slipway is read first, so the gap
    # errs on the large side.) nginx must hold no temp file meanwhile.
    while _e2e_alive "$pid" && [ "$SECONDS" -lt "$deadline" ]; do
        u="$(upload_bytes)"
        w="$(awk '/^wchar:/ { print $2 }' "/proc/$pid/io" 2>/dev/null || true)"
        # Once Slipway has had the layer's bytes and holds none again (or all), the
        # upload is over: later samples compare crane's total with nothing.
        [ "$u" -gt "$u_max" ] && u_max="$u"
        if [ "$u_max" -gt $((1 << 20)) ] && { [ "$u" -eq 0 ] || [ "$u" -ge "$size" ]; }; then
            done=1
        fi
        if [ "$done" = 0 ] && [ -n "$w" ] && [ "$w" -gt $((1 << 20)) ]; then
            gap=$((w - u))
            [ "$u" -gt 0 ] && samples=$((samples + 1))
            if [ "$gap" -gt "$max_gap" ]; then
                max_gap="$gap"
                echo "crane has written $w bytes, Slipway holds $u: $((gap >> 20)) MiB in flight"
            fi
        fi
        if [ "$KIND" = nginx ]; then
            temp="$(temp_files "$PROXY_PID" "$PROXY_TMP")"
            [ "$temp" -gt "$max_temp" ] && max_temp="$temp"
        fi
        sleep 0.05
    done
    wait "$pid" || rc=$?
    cat "$W/$KIND-append.out"
    [ "$rc" -eq 0 ] || { echo "crane append failed ($rc)" >&2; return 1; }
    expect_code "layer in the manifest" "$digest" "$(tcrane manifest "$repo:1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["layers"][0]["digest"])')"
    expect_code "the layer downloaded through the proxy" "$digest" "sha256:$(tcrane blob "$repo@$digest" | sha256sum | cut -d' ' -f1)"
    rm -f "$file"
    # Every finding is reported, then the check fails if any was bad.
    echo "$samples samples while Slipway held part of the upload; at most $((max_gap >> 20)) MiB in flight"
    [ "$samples" -ge 3 ] || { echo "too few samples while the upload was under way" >&2; bad=1; }
    if [ "$max_gap" -ge $((size / 4)) ]; then
        echo "$max_gap of $size bytes sent by crane were not at Slipway yet: the proxy buffered the body" >&2
        bad=1
    fi
    peak="$(peak_rss_mib "$PROXY_PID")"
    echo "the proxy's peak resident memory: $peak MiB"
    [ "$peak" -lt 256 ] || { echo "the proxy held $peak MiB at its peak" >&2; bad=1; }
    if [ "$KIND" = nginx ]; then
        expect_code "temp files nginx held open (largest count seen)" 0 "$max_temp" || bad=1
        if grep -i 'buffered to a temporary file' "$E2E_TMP/$KIND/logs/error.log"; then
            echo "nginx buffered a body to a temporary file" >&2
            bad=1
        fi
        # crane spoke HTTP/2 to nginx: the unbuffered path was the h2 one.
        grep -E "\"PATCH /v2/alice/large-$KIND/blobs/uploads/[^ ]* HTTP/2.0\" 202 " "$E2E_TMP/$KIND/logs/access.log" || bad=1
    fi
    [ "$bad" = 0 ]
}

check_paused_upload() {
    local flags="$W/$KIND-paused" pid rc=0 received=0
    mkdir -p "$flags"
    rm -f "$flags"/*
    python3 - "$PORT" "$CA" alice "$ALICE_PW" "alice/paused-$KIND" "$flags" >"$W/$KIND-paused.out" 2>&1 <<'PY' &
import base64, hashlib, http.client, json, os, ssl, sys, time, urllib.parse
port, ca, user, password, repo, flags = sys.argv[1:]
FIRST, REST = 32, 8   # MiB before and after the pause
ctx = ssl.create_default_context(cafile=ca)
conn = http.client.HTTPSConnection("127.0.0.1", int(port), context=ctx, timeout=120)
basic = base64.b64encode(f"{user}:{password}".encode()).decode()
conn.request("GET", f"/auth/token?service=slipway&scope=repository:{repo}:pull,push", headers={"Authorization": "Basic " + basic})
r = conn.getresponse()
body = json.loads(r.read())
assert r.status == 200, (r.status, body)
bearer = {"Authorization": "Bearer " + (body.get("token") or body["access_token"])}
conn.request("POST", f"/v2/{repo}/blobs/uploads/", headers={**bearer, "Content-Length": "0"})
r = conn.getresponse()
r.read()
assert r.status == 202, r.status
location = urllib.parse.urlsplit(r.getheader("Location"))
path = location.path + ("?" + location.query if location.query else "")
digest = hashlib.sha256()
def chunks():
    for i in range(FIRST + REST):
        if i == FIRST:
            print(f"sent {FIRST} MiB, pausing", flush=True)
            open(os.path.join(flags, "paused"), "w").close()
            deadline = time.time() + 60
            while not os.path.exists(os.path.join(flags, "resume")) and time.time() < deadline:
                time.sleep(0.05)
            print("resuming", flush=True)
        chunk = os.urandom(1 << 20)
        digest.update(chunk)
        yield chunk
# No Content-Length: http.client sends it chunked, as docker does.
conn.request("PATCH", path, body=chunks(), headers={**bearer, "Content-Type": "application/octet-stream"}, encode_chunked=True)
r = conn.getresponse()
r.read()
print("PATCH", r.status, r.getheader("Range"), flush=True)
assert r.status == 202, r.status
location = urllib.parse.urlsplit(r.getheader("Location"))
sep = "&" if location.query else "?"
path = location.path + ("?" + location.query if location.query else "") + sep + "digest=sha256:" + digest.hexdigest()
conn.request("PUT", path, headers={**bearer, "Content-Length": "0"})
r = conn.getresponse()
r.read()
print("PUT", r.status, r.getheader("Docker-Content-Digest"), flush=True)
assert r.status == 201, r.status
assert r.getheader("Docker-Content-Digest") == "sha256:" + digest.hexdigest()
PY
    pid=$!
    if wait_until 60 "the client's pause" test -e "$flags/paused"; then
        # The client sent 32 MiB and waits: an unbuffered proxy has passed them on.
        if wait_until 20 "24 MiB at Slipway" upload_at_least $((24 << 20)); then received=1; fi
        echo "Slipway held $(upload_bytes) bytes of the upload while the client paused"
    fi
    touch "$flags/resume"
    wait "$pid" || rc=$?
    cat "$W/$KIND-paused.out"
    [ "$received" = 1 ] || { echo "Slipway had not received 24 MiB while the client paused after 32 MiB" >&2; return 1; }
    [ "$rc" -eq 0 ]
}

# anonymous_pull CLIENT REPO: the status of an anonymous manifest GET from CLIENT's address
# through the proxy (a fresh anonymous token first, as docker gets one).
anonymous_pull() {
    local token
    token="$(tcurl --interface "$1" "$PUBLIC_URL/auth/token?service=slipway&scope=repository:$2:pull" |
        python3 -c 'import json, sys; print(json.load(sys.stdin)["token"])')"
    tcode "$PUBLIC_URL/v2/$2/manifests/1" --interface "$1" -H "Authorization: Bearer $token" \
        -H 'Accept: application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json'
}

check_pull_limit() {
    local repo="alice/small-$KIND" i
    sa admin set-access "$repo" public
    for i in $(seq 1 "$ANONYMOUS_PULLS"); do
        expect_code "$ATTACKER, anonymous pull $i" 200 "$(anonymous_pull "$ATTACKER" "$repo")"
    done
    expect_code "$ATTACKER, one pull over the limit" 429 "$(anonymous_pull "$ATTACKER" "$repo")"
    expect_code "$VICTIM, its first pull" 200 "$(anonymous_pull "$VICTIM" "$repo")"
}

check_throttle() {
    local i codes="$W/$KIND-attacker.codes" h="$W/$KIND-slowed.headers" token_url="$PUBLIC_URL/auth/token?service=slipway"
    : >"$codes"
    for i in $(seq 1 50); do
        # A made-up client in X-Forwarded-For on every attempt: a forged header must not
        # give the attacker fresh free attempts.
        tcode "$token_url" --interface "$ATTACKER" -u "target:wrong-$i" -H "X-Forwarded-For: 10.66.$i.1" >>"$codes"
        echo >>"$codes"
    done
    echo "$ATTACKER, 50 wrong passwords through $KIND: $(tally "$codes")"
    expect_code "attempts checked (the free ones)" 5 "$(grep -c '^401$' "$codes")"
    expect_code "attempts refused while waiting" 45 "$(grep -c '^429$' "$codes")"
    tcurl -o /dev/null -D "$h" --interface "$ATTACKER" -u "target:$TARGET_PW" "$token_url" || true
    expect_code "$ATTACKER, right password, must wait" 429 "$(head -n 1 "$h" | awk '{ print $2 }')"
    header retry-after "$h" | grep -Eq '^[0-9]+$' || { echo "429 without Retry-After" >&2; return 1; }
    expect_code "$VICTIM, right password, token" 200 "$(tcode "$token_url" --interface "$VICTIM" -u "target:$TARGET_PW")"
    expect_code "$VICTIM, API sign-in" 200 "$(tcode "$PUBLIC_URL/api/v1/session" --interface "$VICTIM" \
        -H 'content-type: application/json' --data "{\"name\":\"target\",\"password\":\"$TARGET_PW\"}")"
}

check_mail_link() {
    local name="mailed-$KIND" password link text
    password="$(pw "$name")"
    expect_code "sign-up through the proxy" 201 "$(tcode "$PUBLIC_URL/api/v1/accounts" -H 'content-type: application/json' \
        --data "{\"name\":\"$name\",\"email\":\"$name@example.com\",\"password\":\"$password\"}")"
    text="$(mail_text "$name@example.com" verify-email)"
    echo "$text"
    link="$(grep -o 'https\?://[^ <>"]*/verify-email?token=[A-Za-z0-9_-]*' <<<"$text" | head -n 1)"
    case "$link" in
        "$PUBLIC_URL/verify-email?token="?*) echo "the link starts at the public URL: ${link%%\?*}" ;;
        *) echo "the mailed link is not at $PUBLIC_URL: '$link'" >&2; return 1 ;;
    esac
    expect_code "token before verifying" 401 "$(tcode "$PUBLIC_URL/auth/token?service=slipway" -u "$name:$password")"
    expect_code "the mailed link, through the proxy" 200 "$(tcode "$link")"
    expect_code "token after verifying" 200 "$(tcode "$PUBLIC_URL/auth/token?service=slipway" -u "$name:$password")"
}

# run_proxy KIND ATTACKER VICTIM: KIND in front of both Slipways, every check, then stopped.
run_proxy() {
    KIND="$1" ATTACKER="$2" VICTIM="$3" PROXY_PID="" BARE_PID=""
    if ! { start_proxy "$KIND" "$KIND" "$PORT" "$HTTP_PORT" "$UPSTREAM" && PROXY_PID="$STARTED_PID" PROXY_TMP="${NGINX_TMP:-}" &&
        start_proxy "$KIND" "$KIND-bare" "$BARE_PORT" "$BARE_HTTP_PORT" "$BARE_UPSTREAM" && BARE_PID="$STARTED_PID"; } 2>"$W/$KIND-start.err"; then
        echo "FAIL $KIND did not start"
        sed 's/^/    | /' "$W/$KIND-start.err"
        E2E_FAILED=$((E2E_FAILED + 1))
        E2E_FAILED_NAMES+=("$KIND started")
        if [ -n "$PROXY_PID" ]; then stop_proxy "$PROXY_PID"; fi
        return 0
    fi
    check "$KIND https: CA-verified TLS, h2 and http/1.1, http:// redirect, realm $PUBLIC_URL/auth/token, HSTS, loopback only" check_https
    check "$KIND without auth.public_url: the realm names the proxy, cookies are Secure (Host, X-Forwarded-Proto)" check_realm_without_public_url
    check "$KIND crane: login, push, pull trusting the test CA (refused with another)" check_crane
    E2E_CHECK_TIMEOUT=600 check "$KIND large layer: $LAYER_MIB MiB streamed through over HTTP/2, digest round-trips" check_large_layer
    check "$KIND paused HTTP/1.1 chunked upload reaches Slipway before the client finishes" check_paused_upload
    check "$KIND pull limit: $ANONYMOUS_PULLS anonymous pulls from $ATTACKER leave $VICTIM its own" check_pull_limit
    check "$KIND throttle: 50 failures from $ATTACKER (forged X-Forwarded-For) do not lock out $VICTIM" check_throttle
    check "$KIND mail: the verification link is at the public URL and works through the proxy" check_mail_link
    stop_proxy "$BARE_PID"
    stop_proxy "$PROXY_PID"
}

# ------------------------------------------------------------ checks (no proxy)
check_direct_spoofing() {
    local i codes="$W/direct.codes" realm
    : >"$codes"
    for i in $(seq 1 10); do
        http_code "http://$UPSTREAM/auth/token?service=slipway" --interface 127.0.0.9 -u "target:wrong-$i" \
            -H "X-Forwarded-For: 10.77.$i.1" >>"$codes"
        echo >>"$codes"
    done
    echo "127.0.0.9 straight to Slipway, a new X-Forwarded-For each time: $(tally "$codes")"
    # Were the header believed, each made-up client would have had its free attempts.
    expect_code "attempts checked, counted against the real peer" 5 "$(grep -c '^401$' "$codes")"
    # X-Forwarded-Proto: believed from the trusted proxy's address, dropped from another.
    realm="$(curl -sS -o /dev/null -D - --interface 127.0.0.9 -H 'X-Forwarded-Proto: https' "http://$BARE_UPSTREAM/v2/" |
        tr -d '\r' | grep -i '^www-authenticate:' | cut -d' ' -f2-)"
    expect_code "realm, forged https from 127.0.0.9" "Bearer realm=\"http://$BARE_UPSTREAM/auth/token\",service=\"slipway\"" "$realm"
    realm="$(curl -sS -o /dev/null -D - -H 'X-Forwarded-Proto: https' "http://$BARE_UPSTREAM/v2/" |
        tr -d '\r' | grep -i '^www-authenticate:' | cut -d' ' -f2-)"
    expect_code "realm, https from 127.0.0.1 (control)" "Bearer realm=\"https://$BARE_UPSTREAM/auth/token\",service=\"slipway\"" "$realm"
}

echo "proxy-tls: slipway at $UPSTREAM (public URL $PUBLIC_URL) and $BARE_UPSTREAM (none), configurations from ${DEPLOY#"$REPO_ROOT"/}, logs in ${E2E_LOG_DIR#"$REPO_ROOT"/}"
run_proxy nginx 127.0.0.2 127.0.0.3
run_proxy caddy 127.0.0.4 127.0.0.5
check "direct: a forged X-Forwarded-For or -Proto from 127.0.0.9 (not a trusted proxy) is ignored" check_direct_spoofing
summary

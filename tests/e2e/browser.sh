#!/usr/bin/env bash
# The web store end to end in a REAL browser (Debian's headless Chromium driven by
# playwright-core), then the image bought there pulled with REAL registry clients:
#
#   tests/e2e/browser.sh [sqlite-fs|postgres-s3]      (default sqlite-fs)
#
# Slipway is loaded with its demo content (`slipway demo`), serves with authentication
# enforced, and sends its mail to an SMTP sink (aiosmtpd's Mailbox handler, a maildir).
# tests/browser/store.test.mjs (node --test) then walks one customer's journey:
#
#   sign up (random name) -> the verification mail's link -> sign in -> typeahead
#   suggestions for "nimb" -> search "database" with the certified filter -> Nimbus DB's
#   product page -> all versions (tag 7.2, its digest) -> the Developer tier: refused
#   without accepting the license, then accepted -> /subscriptions shows the pull command;
#   /subscriptions refused without a session; no JavaScript errors
#
# and each of its steps becomes one "ok"/"FAIL" line here. tests/browser/commerce.test.mjs
# then buys as another customer (made with `slipway admin create-user`): Nimbus Cache
# Enterprise's Buy -> checkout (price, tax, total; billing details; the license) -> a
# declined test card's message -> a good card -> /subscriptions with the pull command and
# the invoice -> the invoice page; no JavaScript errors. tests/browser/moderation.test.mjs
# takes a new product from a publisher's draft through a moderator's review to the store,
# and a change to it after (accounts made with `slipway admin create-user`). Then, as the
# first account:
#   crane   auth login + pull of the pull command's reference; its digest is the one the
#           versions page shows
#   skopeo  copy of tag 7.2 with --src-creds; its digest is the one the versions page shows
#   refused an anonymous pull, and a signed-in account without the license
#
# Screenshots (home, search, product, versions, subscriptions, checkout-declined,
# subscriptions-paid, invoice, moderation-*, and failure-*.png when a
# step fails): target/test-artifacts/browser/<backend>/. Logs (every check, node's TAP
# output, serve.log): target/e2e-results/browser-<backend>-<timestamp>/.
# Tools: scripts/install-test-deps (chromium, playwright-core in tests/browser/node_modules,
# aiosmtpd in target/tools/venv, crane, skopeo). The last line printed is
# "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend_suite browser "${1:-}"
BROWSER_DIR="$REPO_ROOT/tests/browser"
E2E_CHROMIUM="${E2E_CHROMIUM:-/usr/bin/chromium}"
ARTIFACTS="$REPO_ROOT/target/test-artifacts/browser/$BACKEND"
W="$E2E_TMP/work"     # everything a check produces
ST="$W/state"         # what the browser journey hands to the client checks
MAILDIR="$W/mail"     # the SMTP sink's maildir
mkdir -p "$W" "$ST" "$ARTIFACTS"
rm -f "$ARTIFACTS"/*.png
export RUST_BACKTRACE=0

missing=()
command -v node >/dev/null 2>&1 || missing+=(node)
[ -x "$E2E_CHROMIUM" ] || missing+=("chromium ($E2E_CHROMIUM)")
[ -f "$BROWSER_DIR/node_modules/playwright-core/package.json" ] || missing+=("playwright-core (tests/browser/node_modules)")
[ -x "$TOOLS/venv/bin/python" ] || missing+=("aiosmtpd (target/tools/venv)")
command -v crane >/dev/null 2>&1 || missing+=(crane)
command -v skopeo >/dev/null 2>&1 || missing+=(skopeo)
if [ "${#missing[@]}" -gt 0 ]; then
    echo "browser: missing ${missing[*]}: run scripts/install-test-deps" >&2
    exit 2
fi

# ------------------------------------------------------------------ services
start_demo_store "$BACKEND" "$MAILDIR"
R="$REGISTRY"
echo "browser: backend $BACKEND, slipway at http://$R (demo content, auth enforced), screenshots in ${ARTIFACTS#"$REPO_ROOT"/}, logs in ${E2E_LOG_DIR#"$REPO_ROOT"/}"

# ------------------------------------------------------------- the browser
TAP="$W/store.tap"
browser_journey() {
    local rc=0
    # --no-sandbox as root is decided by the test itself; playwright-core never downloads
    # a browser (it has no install hook), the variable only makes that explicit.
    (cd "$BROWSER_DIR" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 \
        E2E_BASE_URL="http://$R" E2E_MAILDIR="$MAILDIR" E2E_ARTIFACTS="$ARTIFACTS" \
        E2E_STATE_DIR="$ST" E2E_CHROMIUM="$E2E_CHROMIUM" \
        node --test --test-reporter=tap store.test.mjs) >"$TAP" 2>"$W/store.stderr" || rc=$?
    cp "$TAP" "$E2E_LOG_DIR/store.tap"
    cat "$TAP" "$W/store.stderr"
    grep -q '^# tests [1-9]' "$TAP" || { echo "node --test reported no tests" >&2; return 1; }
    return "$rc"
}
E2E_CHECK_TIMEOUT="${E2E_BROWSER_TIMEOUT:-900}" check "node --test tests/browser/store.test.mjs (headless Chromium)" browser_journey
# The runner's own closing lines.
grep -E '^# (tests|pass|fail|cancelled|skipped) [0-9]+$' "$TAP" 2>/dev/null | sed 's/^/    | /' || true

# One check line per step: its TAP block (result, YAML details, diagnostics) is its log.
STEPS="$W/steps"
mkdir -p "$STEPS"
python3 - "$TAP" "$STEPS" <<'EOF'
import re, sys
tap, out = sys.argv[1], sys.argv[2]
try:
    lines = open(tap, encoding="utf-8", errors="replace").read().splitlines()
except FileNotFoundError:
    lines = []
steps, cur, in_stack = [], None, False
for line in lines:
    m = re.match(r"^# Subtest: (.*)$", line)
    if m:
        cur = {"name": m.group(1), "status": "missing", "log": []}
        steps.append(cur)
        continue
    if re.match(r"^1\.\.\d+$", line):
        cur = None
        continue
    if cur is None:
        continue
    # Of the stack only the test file's frames: the runner's would push the error out of
    # the tail a failed check shows.
    if re.match(r"^  stack: ", line):
        in_stack = True
        cur["log"].append("  stack (test file frames):")
        continue
    if in_stack and line.startswith("    "):
        if ".test.mjs" in line:
            cur["log"].append(line)
        continue
    in_stack = False
    cur["log"].append(line)
    m = re.match(r"^(not ok|ok) \d+ - (.*)$", line)
    if m and cur["status"] == "missing":
        ok, rest = m.group(1) == "ok", m.group(2)
        skip = re.search(r" # SKIP\b ?(.*)$", rest)
        cur["status"] = "skip" if skip else ("ok" if ok else "fail")
for i, s in enumerate(steps):
    base = f"{out}/{i:02d}"
    open(base + ".name", "w").write(s["name"].replace("\\#", "#"))
    open(base + ".status", "w").write(s["status"])
    open(base + ".log", "w").write("\n".join(s["log"]) + "\n")
EOF
step_result() { # step_result N: the step's TAP block; fails unless it passed
    sed 's/^/  /' "$STEPS/$1.log"
    case "$(cat "$STEPS/$1.status")" in
        ok) return 0 ;;
        skip) echo "not run (skipped): $(grep -m1 -o '# SKIP.*' "$STEPS/$1.log")" >&2 ;;
        missing) echo "no result reported for this step" >&2 ;;
    esac
    return 1
}
for f in "$STEPS"/*.name; do
    [ -e "$f" ] || break
    n="$(basename "$f" .name)"
    check "browser: $(cat "$f")" step_result "$n"
done

# ------------------------------------------------------------ buying
# A customer of its own: signing up (and its mail) is the journey's part above.
BUYER="buyer-$RANDOM$RANDOM"
BUYER_PW="pw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# A store administrator, who sees the publisher's sales page.
SELLER="seller-$RANDOM$RANDOM"
SELLER_PW="pw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
# node_journey NAME VAR=VALUE...: tests/browser/NAME.test.mjs with the variables given,
# its TAP output in $W/NAME.tap (and the logs); fails unless it ran tests and all passed.
node_journey() {
    local name="$1" rc=0
    shift
    (cd "$BROWSER_DIR" && env PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 E2E_BASE_URL="http://$R" \
        E2E_ARTIFACTS="$ARTIFACTS" E2E_CHROMIUM="$E2E_CHROMIUM" "$@" \
        node --test --test-reporter=tap "$name.test.mjs") >"$W/$name.tap" 2>"$W/$name.stderr" || rc=$?
    cp "$W/$name.tap" "$E2E_LOG_DIR/$name.tap"
    cat "$W/$name.tap" "$W/$name.stderr"
    grep -q '^# tests [1-9]' "$W/$name.tap" || { echo "node --test reported no tests" >&2; return 1; }
    return "$rc"
}
COMMERCE_TAP="$W/commerce.tap"
commerce_journey() {
    printf '%s' "$BUYER_PW" | "$E2E_SLIPWAY_BIN" admin create-user "$BUYER" --email "$BUYER@example.com" --password-stdin --data-dir "$E2E_SLIPWAY_DATA"
    printf '%s' "$SELLER_PW" | "$E2E_SLIPWAY_BIN" admin create-user "$SELLER" --email "$SELLER@example.com" --password-stdin --admin --data-dir "$E2E_SLIPWAY_DATA"
    node_journey commerce E2E_CUSTOMER="$BUYER" E2E_CUSTOMER_PASSWORD="$BUYER_PW" E2E_SELLER="$SELLER" E2E_SELLER_PASSWORD="$SELLER_PW"
}
E2E_CHECK_TIMEOUT="${E2E_BROWSER_TIMEOUT:-900}" check \
    "node --test tests/browser/commerce.test.mjs: checkout, a declined card, /subscriptions with the invoice, the sales page" commerce_journey
grep -E '^(not )?ok [0-9]+ - ' "$COMMERCE_TAP" 2>/dev/null | sed 's/^/    | /' || true

# ---------------------------------------------------------- moderation
# A publisher and a moderator of their own, each with a page of its own.
PUB="pub-$RANDOM$RANDOM"
PUB_PW="pw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
MOD="mod-$RANDOM$RANDOM"
LAMP_ORG="lamp-$RANDOM$RANDOM"   # the organization the journey publishes Lantern from
MOD_PW="pw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
MODERATION_TAP="$W/moderation.tap"
moderation_journey() {
    printf '%s' "$PUB_PW" | "$E2E_SLIPWAY_BIN" admin create-user "$PUB" --email "$PUB@example.com" --password-stdin --data-dir "$E2E_SLIPWAY_DATA"
    printf '%s' "$MOD_PW" | "$E2E_SLIPWAY_BIN" admin create-user "$MOD" --email "$MOD@example.com" --password-stdin --moderator --data-dir "$E2E_SLIPWAY_DATA"
    node_journey moderation E2E_PUBLISHER="$PUB" E2E_PUBLISHER_PASSWORD="$PUB_PW" E2E_MODERATOR="$MOD" E2E_MODERATOR_PASSWORD="$MOD_PW" \
        E2E_MODERATION_ORG="$LAMP_ORG"
}
E2E_CHECK_TIMEOUT="${E2E_BROWSER_TIMEOUT:-900}" check \
    "node --test tests/browser/moderation.test.mjs: submit, changes requested, approve, publish, a revision" moderation_journey
grep -E '^(not )?ok [0-9]+ - ' "$MODERATION_TAP" 2>/dev/null | sed 's/^/    | /' || true

# ------------------------------------------------------- real clients
get() { cat "$ST/$1"; }
have_state() {
    local f
    for f in "$@"; do [ -s "$ST/$f" ] || { echo "the browser journey did not get as far as: $f" >&2; return 1; }; done
}
expect_fail() { # expect_fail OUTFILE CMD...: CMD must fail; its output goes to OUTFILE
    local out="$1" rc=0
    shift
    "$@" >"$out" 2>&1 || rc=$?
    sed 's/^/    > /' "$out"
    if [ "$rc" -eq 0 ]; then
        echo "expected a refusal, but the command succeeded: $*" >&2
        return 1
    fi
    echo "refused as expected (exit $rc)"
}
layout_digest() { # layout_digest LAYOUT TAG
    jq -r --arg t "$2" '.manifests[] | select(.annotations["org.opencontainers.image.ref.name"] == $t) | .digest' "$1/index.json"
}
CRANE_CONFIG="$W/crane-config"       # crane reads DOCKER_CONFIG
EMPTY_CONFIG="$W/empty-config"       # no credentials at all
mkdir -p "$CRANE_CONFIG" "$EMPTY_CONFIG"
crn() { DOCKER_CONFIG="$CRANE_CONFIG" crane --insecure "$@"; }
# The repository part of the pull reference: HOST/REPO:TAG -> REPO.
ref_repo() { local r="${1#*/}"; echo "${r%:*}"; }
# The digest the versions page showed for TAG.
page_digest() { awk -F'\t' -v t="$1" '$1 == t { print $2 }' "$ST/versions.tsv"; }
TAG=7.2   # the tag the journey finds on the versions page

crane_pull() {
    have_state user password pull-ref versions.tsv
    local ref
    ref="$(get pull-ref)"
    printf '%s' "$(get password)" | crn auth login "$R" -u "$(get user)" --password-stdin
    crn pull --format oci "$ref" "$W/crane-oci"
    jq -c '.manifests[] | {mediaType, digest, size}' "$W/crane-oci/index.json"
    expect_eq "digest of $ref (versions page vs registry)" "$(page_digest "${ref##*:}")" "$(crn digest "$ref")"
    # Every blob arrived whole: the layout's files match their digests.
    local f bad=0
    while read -r f; do
        [ "sha256:$(sha256sum "$f" | cut -d' ' -f1)" = "sha256:$(basename "$f")" ] || { echo "corrupt blob $f" >&2; bad=1; }
    done < <(find "$W/crane-oci/blobs/sha256" -type f)
    echo "$(find "$W/crane-oci/blobs/sha256" -type f | wc -l) blobs verified"
    return "$bad"
}
check "crane: the subscriber pulls the reference /subscriptions shows" crane_pull

skopeo_pull() {
    have_state user password pull-ref versions.tsv
    local ref
    ref="$R/$(ref_repo "$(get pull-ref)"):$TAG"
    skopeo copy --src-creds "$(get user):$(get password)" --src-tls-verify=false \
        "docker://$ref" "oci:$W/skopeo-oci:pulled"
    [ -n "$(layout_digest "$W/skopeo-oci" pulled)" ] || { echo "nothing copied" >&2; return 1; }
    echo "copied $ref: $(layout_digest "$W/skopeo-oci" pulled)"
    expect_eq "digest of $ref (versions page vs skopeo inspect --raw)" "$(page_digest "$TAG")" \
        "$(skopeo inspect --raw --creds "$(get user):$(get password)" --tls-verify=false "docker://$ref" | sha256sum | sed 's/^/sha256:/; s/ .*//')"
}
check "skopeo: the subscriber copies tag $TAG with --src-creds" skopeo_pull

anonymous_refused() {
    have_state pull-ref
    local ref repo
    ref="$(get pull-ref)"
    repo="$(ref_repo "$ref")"
    expect_fail "$W/anon-skopeo.out" skopeo copy --src-no-creds --src-tls-verify=false "docker://$ref" "oci:$W/anon-oci:x"
    expect_fail "$W/anon-crane.out" env DOCKER_CONFIG="$EMPTY_CONFIG" crane --insecure manifest "$ref"
    # Over HTTP: the token service grants anonymous callers no pull of $repo.
    local tok
    tok="$(curl -sf --max-time 30 "http://$R/auth/token?service=slipway&scope=repository:$repo:pull" | jq -r .token)"
    expect_eq "anonymous manifest GET" 401 "$(http_code "http://$R/v2/$repo/manifests/${ref##*:}" -H "Authorization: Bearer $tok")"
}
check "anonymous pull of the licensed repository is refused (skopeo, crane, HTTP)" anonymous_refused

unlicensed_refused() {
    have_state pull-ref
    local name pw
    name="window-shopper-$RANDOM"
    pw="pw-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    printf '%s' "$pw" | "$E2E_SLIPWAY_BIN" admin create-user "$name" --email "$name@example.com" --password-stdin --data-dir "$E2E_SLIPWAY_DATA"
    expect_fail "$W/unlicensed.out" skopeo copy --src-creds "$name:$pw" --src-tls-verify=false \
        "docker://$(get pull-ref)" "oci:$W/unlicensed-oci:x"
    grep -qi 'licen[cs]e' "$W/unlicensed.out" || { echo "the refusal does not mention the license" >&2; return 1; }
}
check "a signed-in account that has not accepted the license is refused" unlicensed_refused

# Per-tag release with real clients, on the Lantern product the moderation journey
# published (public tier, tags 1.*; 1.0 released when it was published): the publisher
# pushes 1.1 (offered, not released yet) and edge (outside the tier's tags) with crane;
# anonymous customers get 1.0 but neither 1.1 nor edge's digest, a signed-in customer
# neither (skopeo); the publisher gets both; the moderator releases the new versions and
# 1.1 is pulled, edge still not.
released_versions() {
    local ref="$R/$LAMP_ORG/lantern" pub_config="$W/pub-config" edge tok
    mkdir -p "$pub_config"
    pub() { DOCKER_CONFIG="$pub_config" crane --insecure "$@"; }
    printf '%s' "$PUB_PW" | pub auth login "$R" -u "$PUB" --password-stdin
    pub mutate --label org.example.release=1.1 "$ref:1.0" --tag "$ref:1.1"
    pub mutate --label org.example.release=edge "$ref:1.0" --tag "$ref:edge"
    edge="$(pub digest "$ref:edge")"
    anon() { DOCKER_CONFIG="$EMPTY_CONFIG" crane --insecure "$@"; }
    anon manifest "$ref:1.0" >/dev/null || return 1
    echo "anonymous: 1.0 pulled"
    expect_fail "$W/release-anon-1.1.out" anon manifest "$ref:1.1"
    expect_fail "$W/release-anon-edge.out" anon manifest "$ref@$edge"
    expect_fail "$W/release-customer-1.1.out" skopeo inspect --raw --creds "$BUYER:$BUYER_PW" --tls-verify=false "docker://$ref:1.1"
    pub manifest "$ref:1.1" >/dev/null || return 1
    pub manifest "$ref@$edge" >/dev/null || return 1
    echo "the publisher pulls 1.1 and edge"
    tok="$(printf '' | "$E2E_SLIPWAY_BIN" admin create-token "$MOD" --name release --scope api:write --data-dir "$E2E_SLIPWAY_DATA" 2>/dev/null)"
    expect_eq "released by the moderator" '["1.1"]' \
        "$(curl -sf --max-time 30 -X POST -H "Authorization: Bearer $tok" "http://$R/api/v1/products/$LAMP_ORG/lantern/releases" | jq -c '[.versions[].tag]')" || return 1
    anon manifest "$ref:1.1" >/dev/null || return 1
    echo "anonymous: 1.1 pulled once released"
    expect_fail "$W/release-anon-edge-after.out" anon manifest "$ref@$edge"
}
check "per-tag release: customers pull released tags only (crane, skopeo); the moderator's release opens 1.1" released_versions

echo "screenshots: $(find "$ARTIFACTS" -maxdepth 1 -name '*.png' -printf '%f\n' | sort | tr '\n' ' ')"
summary

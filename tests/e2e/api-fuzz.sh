#!/usr/bin/env bash
# The REST API fuzzed against its own OpenAPI document with schemathesis:
#
#   tests/e2e/api-fuzz.sh [sqlite-fs|postgres-s3]      (default sqlite-fs)
#
# Slipway is loaded with its demo content (`slipway demo`: publishers, products, versions),
# serves with authentication enforced and sends its mail to an SMTP sink. An admin account
# is made with `slipway admin create-user --admin` and signed in with curl (POST
# /api/v1/session: a session cookie and a CSRF token), and later given an access token with
# the api:write scope. Then `schemathesis run` reads /api/openapi.json and tests every
# operation of /api/v1 three times:
#
#   anonymous       no credentials
#   signed in       the admin's session cookie and X-CSRF-Token on every request; sign-out
#                   (DELETE /api/v1/session) is left out, so the session lives through the
#                   run, and a last check proves it still does (the run really was signed in)
#   bearer          the admin's api:write token as Authorization: Bearer on every request,
#                   no cookie, no CSRF token (token management and sign-out answer 403);
#                   a last check proves the token still works
#
# The anonymous run also sends made-up credentials (the document declares the session cookie,
# X-CSRF-Token and bearer schemes), which must be refused as documented; the other two send
# only the real ones (--generation-with-security-parameters false): a made-up bearer header
# would win over the session and turn the signed-in run's requests into 401s.
#
# Each run: all phases (examples, coverage, fuzzing, stateful), positive and negative data,
# E2E_FUZZ_MAX_EXAMPLES test cases per operation (default 100: about half a minute a run),
# a fixed seed (E2E_FUZZ_SEED, default 1) and no example database, so a run is repeatable;
# --continue-on-failure, so one finding does not hide the next on the same operation.
# Path parameters are drawn half the time from names that exist (two demo publishers and
# their products, a token of the admin), so the tests get past 404. Checks
# (E2E_FUZZ_CHECKS, comma-separated):
#   not_a_server_error            no 5xx
#   response_schema_conformance   bodies match the documented schema
#   status_code_conformance       every status is documented
#   content_type_conformance      every Content-Type is documented
# E2E_FUZZ_ARGS adds options to both runs (e.g. "--phases fuzzing").
#
# Each run is one check; after it come its distinct findings, one line each, and
# schemathesis's own summary. The full output, with a curl line reproducing each finding
# (unsanitized: the session is a throwaway one of a server that is gone), JUnit XML,
# openapi.json and serve.log are in target/e2e-results/api-fuzz-<backend>-<timestamp>/.
# Tools: scripts/install-test-deps (schemathesis and aiosmtpd in target/tools/venv). The
# last line printed is "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend_suite api-fuzz "${1:-}"
W="$E2E_TMP/work"     # everything a check produces
ST="$W/state"         # values handed from one check to later ones (checks run in subshells)
MAILDIR="$W/mail"
mkdir -p "$W" "$ST"
export RUST_BACKTRACE=0

SCHEMATHESIS="$TOOLS/venv/bin/schemathesis"
FUZZ_CHECKS="${E2E_FUZZ_CHECKS:-not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance}"
FUZZ_MAX_EXAMPLES="${E2E_FUZZ_MAX_EXAMPLES:-100}"
FUZZ_SEED="${E2E_FUZZ_SEED:-1}"
read -ra FUZZ_ARGS <<<"${E2E_FUZZ_ARGS:-}"
if [ ! -x "$SCHEMATHESIS" ] || [ ! -x "$TOOLS/venv/bin/python" ]; then
    echo "api-fuzz: schemathesis missing (target/tools/venv): run scripts/install-test-deps" >&2
    exit 2
fi

# ------------------------------------------------------------------ services
start_demo_store "$BACKEND" "$MAILDIR"
R="$REGISTRY"
API="http://$R/api/v1"
echo "api-fuzz: backend $BACKEND, slipway at http://$R (demo content, auth enforced), schemathesis $("$SCHEMATHESIS" --version | sed 's/.* //'), logs in ${E2E_LOG_DIR#"$REPO_ROOT"/}"

# ------------------------------------------------------------------ helpers
get() { cat "$ST/$1"; }
ADMIN=fuzzadmin
ADMIN_PW="fuzz-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"

# api METHOD PATH [curl args...]: a signed-in JSON call; the body goes to stdout, a status
# other than 2xx fails (curl --fail-with-body).
api() {
    local method="$1" path="$2"
    shift 2
    curl -sS --max-time 30 --fail-with-body -X "$method" -b "$W/cookies" \
        -H "X-CSRF-Token: $(get csrf)" "$@" "$API$path"
}

# ------------------------------------------------------------------ setup
openapi_document() {
    curl -sS --max-time 30 --fail-with-body -o "$W/openapi.json" "http://$R/api/openapi.json"
    cp "$W/openapi.json" "$E2E_LOG_DIR/openapi.json"
    jq -e '.openapi | startswith("3.1")' "$W/openapi.json"
    jq -r '.paths | to_entries[] | .key as $p | .value | keys[] | "  \(ascii_upcase) \($p)"' "$W/openapi.json"
}
check "GET /api/openapi.json: an OpenAPI 3.1 document" openapi_document

demo_content() {
    # The demo's products, found through the API itself: the fuzzer's known names.
    curl -sS --max-time 30 --fail-with-body "$API/search?limit=100" >"$W/search.json"
    # Two publishers and all their products: a drawn pair names a product often enough.
    jq -r '[.items[].publisher] | unique | .[:2][]' "$W/search.json" >"$ST/publishers"
    jq -r --slurpfile p <(jq -R . "$ST/publishers") '.items[] | select(.publisher | IN($p[])) | .slug' \
        "$W/search.json" | sort -u >"$ST/slugs"
    echo "$(jq '.items | length' "$W/search.json") products; publishers: $(tr '\n' ' ' <"$ST/publishers"); slugs: $(tr '\n' ' ' <"$ST/slugs")"
    [ -s "$ST/publishers" ] && [ -s "$ST/slugs" ]
}
check "demo content: published products found by GET /api/v1/search" demo_content

admin_account() {
    printf '%s' "$ADMIN_PW" | "$E2E_SLIPWAY_BIN" admin create-user "$ADMIN" --email "$ADMIN@example.com" \
        --admin --password-stdin --data-dir "$E2E_SLIPWAY_DATA"
}
check "slipway admin create-user $ADMIN --admin" admin_account

sign_in() {
    jq -n --arg n "$ADMIN" --arg p "$ADMIN_PW" '{name: $n, password: $p}' |
        curl -sS --max-time 30 --fail-with-body -c "$W/cookies" -H 'Content-Type: application/json' \
            --data-binary @- "$API/session" >"$W/session.json"
    jq -r '.csrf_token // empty' "$W/session.json" >"$ST/csrf"
    [ -s "$ST/csrf" ] || { echo "no csrf_token in $(cat "$W/session.json")" >&2; return 1; }
    # The cookie jar (Netscape format) as one Cookie header.
    awk -F '\t' 'NF >= 7 && $6 != "" { printf "%s%s=%s", (n++ ? "; " : ""), $6, $7 }' "$W/cookies" >"$ST/cookie"
    [ -s "$ST/cookie" ] || { echo "no session cookie was set" >&2; return 1; }
    echo "cookies: $(sed 's/=[^;]*/=.../g' "$ST/cookie")"
    # The session works, and state-changing calls pass with the CSRF token: a token of the
    # admin's own, so DELETE /api/v1/tokens/{id} has one that exists.
    api GET /me | jq -c .
    api POST /tokens -H 'Content-Type: application/json' -d "{\"name\":\"fuzz\",\"scopes\":[\"$ADMIN/*:pull\"]}" >"$W/token.json"
    jq -r '.id // empty' "$W/token.json" >"$ST/token-id"
    api GET /tokens | jq -r '.. | objects | .id? // empty' >>"$ST/token-id"
    sort -u -o "$ST/token-id" "$ST/token-id"
    echo "token ids: $(tr '\n' ' ' <"$ST/token-id")"
    [ -s "$ST/token-id" ]
}
check "POST /api/v1/session as $ADMIN: session cookie and CSRF token" sign_in

if [ ! -s "$ST/cookie" ] || [ ! -s "$ST/token-id" ] || [ ! -s "$ST/publishers" ]; then
    echo "api-fuzz: no session or no demo content: the harness itself is broken (see above)" >&2
    summary
    exit 1
fi

# schemathesis's configuration: path parameters drawn from existing names half the time.
toml_list() { jq -cRn '[inputs | select(. != "")]' "$ST/$1"; }
cat >"$W/schemathesis.toml" <<EOF
[dictionaries]
publishers = { values = $(toml_list publishers) }
slugs = { values = $(toml_list slugs) }
tokens = { values = $(toml_list token-id) }

[parameters]
"path.org" = { dictionary = "publishers", probability = 0.5 }
"path.publisher" = { dictionary = "publishers", probability = 0.5 }
"path.slug" = { dictionary = "slugs", probability = 0.5 }
"path.id" = { dictionary = "tokens", probability = 0.5 }
EOF
cp "$W/schemathesis.toml" "$E2E_LOG_DIR/schemathesis.toml"

# ------------------------------------------------------------------ fuzzing
# fuzz NAME [schemathesis run args...]: one run; its whole output is the check's log and
# $E2E_LOG_DIR/schemathesis-NAME.txt.
fuzz() {
    local name="$1" rc=0
    shift
    # In the work dir: nothing schemathesis might write lands in the repository.
    (cd "$W" && "$SCHEMATHESIS" --config-file "$W/schemathesis.toml" run "http://$R/api/openapi.json" \
        --no-color --checks "$FUZZ_CHECKS" --max-examples "$FUZZ_MAX_EXAMPLES" --seed "$FUZZ_SEED" \
        --generation-database none --continue-on-failure --workers 1 --request-timeout 30 --output-sanitize false \
        --report junit --report-junit-path "$E2E_LOG_DIR/schemathesis-$name.junit.xml" \
        "${FUZZ_ARGS[@]}" "$@") >"$E2E_LOG_DIR/schemathesis-$name.txt" 2>&1 || rc=$?
    cat "$E2E_LOG_DIR/schemathesis-$name.txt"
    grep -q '^Test cases:' "$E2E_LOG_DIR/schemathesis-$name.txt" || { echo "schemathesis ran no test (exit $rc)" >&2; return 1; }
    return "$rc"
}
# fuzz_report NAME: the distinct findings (schemathesis's check, the status and what was
# received) with the operations showing each, then schemathesis's own summary.
fuzz_report() {
    local out="$E2E_LOG_DIR/schemathesis-$1.txt"
    [ -f "$out" ] || return 0
    if ! grep -q '^=* SUMMARY =*$' "$out"; then
        tail -n 25 "$out" | sed 's/^/    | /'
        return 0
    fi
    python3 - "$out" "${out#"$REPO_ROOT"/}" <<'PY'
import re, sys
text = open(sys.argv[1], encoding="utf-8", errors="replace").read()
m = re.search(r"^=+ FAILURES =+$(.*?)^=+ (?:WARNINGS|SUMMARY) =+$", text, re.S | re.M)
if m:
    print(f"    findings, by kind (each with a curl line reproducing it in {sys.argv[2]}):")
    op, kinds = None, {}
    for block in re.split(r"^(?=_{2,} .+ _{2,}$)|^(?=\d+\. Test Case ID)", m.group(1), flags=re.M):
        head = re.match(r"_{2,} (.+?) _{2,}$", block.strip())
        if head:
            op = head.group(1)
            continue
        status = re.search(r"^\[(\d+)\]", block, re.M)
        received = re.search(r"^ +Received: (.*)$", block, re.M)
        for title in re.findall(r"^- (.+)$", block, re.M):
            kind = title
            if status:
                kind += f" (HTTP {status.group(1)}"
                if received and received.group(1) != status.group(1):
                    kind += f", {received.group(1)}"
                kind += ")"
            ops = kinds.setdefault(kind, [])
            if op not in ops:
                ops.append(op)
    for kind in sorted(kinds):
        print(f"      {kind}:")
        line = "         "
        for i, op in enumerate(kinds[kind]):
            item = op + ("," if i + 1 < len(kinds[kind]) else "")
            if len(line) + 1 + len(item) > 100 and line.strip():
                print(line)
                line = "         "
            line += " " + item
        print(line)
PY
    sed -n '/^=* SUMMARY =*$/,$p' "$out" | sed '/^ *$/d; s/^/    | /'
}

E2E_FUZZ_TIMEOUT="${E2E_FUZZ_TIMEOUT:-900}"
E2E_TAIL_LINES=0 E2E_CHECK_TIMEOUT="$E2E_FUZZ_TIMEOUT" check "schemathesis run: anonymous" fuzz anonymous
fuzz_report anonymous
E2E_TAIL_LINES=0 E2E_CHECK_TIMEOUT="$E2E_FUZZ_TIMEOUT" check "schemathesis run: signed in as admin $ADMIN (cookie + X-CSRF-Token)" \
    fuzz signed-in -H "Cookie: $(get cookie)" -H "X-CSRF-Token: $(get csrf)" --exclude-operation-id sign_out \
    --generation-with-security-parameters false
fuzz_report signed-in

session_survived() {
    api GET /me | jq -c .
}
check "the admin's session still works after the signed-in run" session_survived

# Made only now: the signed-in run revokes the tokens it finds (its stateful phase follows
# GET /api/v1/tokens to DELETE /api/v1/tokens/{id}), and the bearer run cannot.
bearer_token() {
    api POST /tokens -H 'Content-Type: application/json' -d '{"name":"fuzz-bearer","scopes":["api:write"]}' >"$W/bearer.json"
    jq -r '.token // empty' "$W/bearer.json" >"$ST/bearer"
    [ -s "$ST/bearer" ] || { echo "no token in $(cat "$W/bearer.json")" >&2; return 1; }
    curl -sS --max-time 30 --fail-with-body -H "Authorization: Bearer $(get bearer)" "$API/me" | jq -c .
}
check "POST /api/v1/tokens: an api:write access token of $ADMIN, working as a bearer token" bearer_token

E2E_TAIL_LINES=0 E2E_CHECK_TIMEOUT="$E2E_FUZZ_TIMEOUT" check "schemathesis run: admin $ADMIN's api:write access token (Authorization: Bearer)" \
    fuzz bearer -H "Authorization: Bearer $(get bearer)" --generation-with-security-parameters false
fuzz_report bearer

bearer_survived() {
    curl -sS --max-time 30 --fail-with-body -H "Authorization: Bearer $(get bearer)" "$API/me" | jq -c .
}
check "the admin's access token still works after the bearer run" bearer_survived

summary

#!/usr/bin/env bash
# The store taking money, end to end with a REAL Docker Engine, on the demo store served
# with authentication enforced, the sandbox payment provider, the test clock and mail to an
# SMTP sink:
#
#   tests/e2e/commerce.sh [sqlite-fs|postgres-s3]      (default sqlite-fs)
#
#   search       `docker search HOST/nimbus` lists the demo's Nimbus products (the v1
#                search API), with --limit; a misspelling finds Nimbus Cache
#   buy          a customer buys Nimbus Cache Enterprise (49.00 USD a month) with a test
#                card that succeeds now and declines on renewal (POST /api/v1/checkout
#                with an Idempotency-Key); a retry with the key is answered from the first
#   pull         docker login + docker pull of the tier's image
#   past due     `slipway admin clock advance 31d`: the scheduler's renewal is declined,
#                the subscription is past_due, and docker still pulls (grace period)
#   lapsed       8 days on: expired, and docker pull is refused
#   pays again   a new checkout with 4242 4242 4242 4242: docker pulls again
#   refund       a full refund by an administrator (POST /api/v1/refunds): refused again
#   fulfillment  the publisher's robot token with the api:fulfillment scope orders the tier
#                for a new customer by email (POST /api/fulfillment/v1/orders); the
#                invitation reaches the SMTP sink; the customer signs up, verifies the
#                address from the mailed link and docker pulls; the order is cancelled:
#                refused
#   ledger       `slipway ledger verify` exits 0 (every transaction balances, and
#                invoices, payments and refunds agree with the ledger)
#
# Results: target/e2e-results/commerce-<backend>-<timestamp>/. The last line printed is
# "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend_suite commerce "${1:-}"
W="$E2E_TMP/work"
ST="$W/state"
MAILDIR="$W/mail"
mkdir -p "$W" "$ST"
export RUST_BACKTRACE=0

# The test clock (moved by `slipway admin clock advance`), renewals every second.
export SLIPWAY_TESTING__CLOCK=true SLIPWAY_COMMERCE__RENEWAL_INTERVAL_SECS=1
start_demo_store "$BACKEND" "$MAILDIR"
start_dockerd >"$W/dockerd-start.log" 2>&1 || {
    cat "$W/dockerd-start.log" >&2
    exit 1
}
R="$REGISTRY"
API="http://$R"
echo "commerce: backend $BACKEND, slipway at $API (auth enforced, test clock), logs in ${E2E_LOG_DIR#"$REPO_ROOT"/}"

REPO="nimbus/nimbus-cache-enterprise"
TAG="3.4"
get() { cat "$ST/$1"; }
put() { printf '%s' "$2" >"$ST/$1"; }
sa() { "$E2E_SLIPWAY_BIN" "$@" --data-dir "$E2E_SLIPWAY_DATA"; }
pw() { printf '%s-%s' "$1" "$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"; }
CAROL_PW="$(pw carol)"
ROOT_PW="$(pw root)"

# api METHOD PATH TOKEN [BODY] [IDEMPOTENCY_KEY]: the response body on stdout, the status
# in $ST/status.
api() {
    local args=(-s -o "$W/body.json" -w '%{http_code}' -X "$1" -H "Authorization: Bearer $3")
    if [ -n "${4:-}" ]; then args+=(-H 'Content-Type: application/json' --data "$4"); fi
    if [ -n "${5:-}" ]; then args+=(-H "Idempotency-Key: $5"); fi
    curl "${args[@]}" "$API$2" >"$ST/status"
    cat "$W/body.json"
    echo
}
expect_status() {
    [ "$(get status)" = "$1" ] || { echo "expected HTTP $1, got $(get status)" >&2; return 1; }
}
# status_of ID: the subscription's status as carol's list shows it.
status_of() {
    api GET /api/v1/subscriptions "$(get carol_token)" >/dev/null
    jq -r --arg id "$1" '.subscriptions[] | select(.id == $id) | .status' "$W/body.json"
}
wait_status() { # wait_status ID STATUS
    local _
    for _ in $(seq 1 60); do
        [ "$(status_of "$1")" = "$2" ] && { echo "subscription $1 is $2"; return 0; }
        sleep 0.5
    done
    echo "subscription $1 is $(status_of "$1"), not $2" >&2
    return 1
}
fresh_pull() {
    docker rmi -f "$R/$REPO:$TAG" >/dev/null 2>&1 || true
    docker pull "$R/$REPO:$TAG"
}
refused_pull() {
    docker rmi -f "$R/$REPO:$TAG" >/dev/null 2>&1 || true
    if docker pull "$R/$REPO:$TAG" >"$W/refused.log" 2>&1; then
        echo "docker pull succeeded; expected a refusal" >&2
        return 1
    fi
    sed 's/^/    > /' "$W/refused.log"
    grep -qi "license required\|denied\|unauthorized" "$W/refused.log"
}

accounts() {
    printf '%s' "$CAROL_PW" | sa admin create-user carol --email carol@example.com --password-stdin
    printf '%s' "$ROOT_PW" | sa admin create-user root --email root@example.com --password-stdin --admin
    put carol_token "$(sa admin create-token carol --name shop --scope api:write | grep -o 'slw_[A-Za-z0-9_]*' | head -n 1)"
    put root_token "$(sa admin create-token root --name refunds --scope api:write | grep -o 'slw_[A-Za-z0-9_]*' | head -n 1)"
    [ -n "$(get carol_token)" ] && [ -n "$(get root_token)" ]
}

buy() {
    local body='{"product": "nimbus/nimbus-cache", "tier": "enterprise", "accept_license": 1, "payment_method": "pm_card_declinedOffSession"}'
    api POST /api/v1/checkout "$(get carol_token)" "$body" "e2e-buy-1"
    expect_status 201
    put first "$(jq -r .subscription.id "$W/body.json")"
    [ "$(jq -r .subscription.status "$W/body.json")" = active ]
    [ "$(jq -r .invoice.total.amount "$W/body.json")" = 4900 ]
    # The same request again: the first answer, nothing charged twice.
    api POST /api/v1/checkout "$(get carol_token)" "$body" "e2e-buy-1"
    expect_status 201
    [ "$(jq -r .subscription.id "$W/body.json")" = "$(get first)" ]
}

pull() {
    printf '%s' "$CAROL_PW" | docker login "$R" -u carol --password-stdin
    fresh_pull
}

past_due() {
    sa admin clock advance 31d
    wait_status "$(get first)" past_due
    fresh_pull
}

lapsed() {
    sa admin clock advance 8d
    wait_status "$(get first)" expired
    refused_pull
}

pays_again() {
    local body='{"product": "nimbus/nimbus-cache", "tier": "enterprise", "accept_license": 1, "payment_method": "4242 4242 4242 4242"}'
    api POST /api/v1/checkout "$(get carol_token)" "$body" "e2e-buy-2"
    expect_status 201
    put second "$(jq -r .subscription.id "$W/body.json")"
    fresh_pull
}

refund() {
    api POST /api/v1/refunds "$(get root_token)" "{\"subscription\": \"$(get second)\"}" "e2e-refund-1"
    expect_status 201
    [ "$(jq -r .ended_subscription "$W/body.json")" = true ]
    [ "$(jq -r .credit_note.kind "$W/body.json")" = credit_note ]
    refused_pull
}


isv_order() {
    sa admin create-robot nimbus isv --role owner
    put isv_token "$(sa admin create-token nimbus+isv --name fulfillment --scope api:fulfillment | grep -o 'slw_[A-Za-z0-9_]*' | head -n 1)"
    local body='{"product": "nimbus/nimbus-cache", "tier": "enterprise", "email": "dana@example.com", "external_id": "isv-42", "product_key": "NC-4242"}'
    api POST /api/fulfillment/v1/orders "$(get isv_token)" "$body" "e2e-order-1"
    expect_status 201
    put order "$(jq -r .id "$W/body.json")"
    # A token of someone else, without the fulfillment scope, cannot touch the product.
    api POST /api/fulfillment/v1/orders "$(get carol_token)" "$body" "e2e-order-2"
    expect_status 404
}

invited_customer_pulls() {
    mail_text dana@example.com "nimbus/nimbus-cache" | tee "$W/invitation.txt"
    grep -q "NC-4242" "$W/invitation.txt"
    DANA_PW="$(pw dana)"
    put dana_pw "$DANA_PW"
    curl -sf -H 'Content-Type: application/json' \
        --data "{\"name\": \"dana\", \"email\": \"dana@example.com\", \"password\": \"$DANA_PW\"}" "$API/api/v1/accounts"
    local token
    token="$(mail_text dana@example.com verify-email | grep -o 'verify-email?token=[A-Za-z0-9_-]*' | head -n 1 | cut -d= -f2)"
    [ -n "$token" ]
    curl -sf -H 'Content-Type: application/json' --data "{\"token\": \"$token\"}" "$API/api/v1/accounts/verify"
    printf '%s' "$DANA_PW" | docker login "$R" -u dana --password-stdin
    fresh_pull
}

cancelled_order() {
    api POST "/api/fulfillment/v1/orders/$(get order)/cancel" "$(get isv_token)" "" "e2e-cancel-1"
    expect_status 200
    refused_pull
}

# docker search HOST/TERM: Docker Engine pings /v1/_ping and asks GET /v1/search; the demo's
# products come back named by their pull paths, a misspelling finds one too, --limit holds.
docker_search() {
    docker search --no-trunc "$R/nimbus" | tee "$W/search.txt"
    grep -Eq "^$R/nimbus/nimbus-db +A distributed SQL database" "$W/search.txt"
    [ "$(docker search --limit 2 "$R/nimbus" | tail -n +2 | wc -l)" = 2 ]
    docker search "$R/reddis" | tee "$W/search-misspelt.txt"
    grep -Eq "^$R/nimbus/nimbus-cache " "$W/search-misspelt.txt"
}

ledger() {
    sa ledger verify | tee "$W/verify.txt"
    grep -q "records       agree with the ledger" "$W/verify.txt"
}

check "docker search finds the demo's products" docker_search
check "accounts and tokens" accounts
check "buy a monthly tier with a test card (idempotent)" buy
check "docker pull the bought tier" pull
check "a month on, the card declines: past due, still pulling" past_due
check "after the grace period: expired, pull refused" lapsed
check "pays again with 4242: pulling again" pays_again
check "a full refund: pull refused" refund
check "an ISV orders the tier for a new customer by email" isv_order
check "the invited customer signs up and pulls" invited_customer_pulls
check "the order is cancelled: pull refused" cancelled_order
check "slipway ledger verify" ledger
summary

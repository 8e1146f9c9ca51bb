#!/usr/bin/env bash
# Manifest GETs with a registry token against the same GETs without authentication
# (issue 19: "a token-authenticated manifest GET runs at least at 80% of the
# unauthenticated rate"), one Slipway binary, both in the same run:
#
#   bench/auth.sh
#
# Two `slipway serve` on the embedded backend: one with authentication off, one enforced
# (a user made with `slipway admin create-user`, a pull token from /auth/token that lives
# an hour). The same small artifact is pushed to both with oras; wrk then GETs its
# manifest by tag, BENCH_AUTH_ROUNDS (3) rounds of BENCH_AUTH_SECS (10 s) each, the two
# servers alternating, the token sent as `Authorization: Bearer` to the second. Prints
# requests per second, p50 and p99 per round, the medians, and the ratio.
# Tools: wrk, oras (scripts/install-test-deps), curl, jq. E2E_SLIPWAY_BIN or a release
# build (bench/lib.sh's bench_build_slipway).
set -euo pipefail
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
source "$BENCH_DIR/../tests/e2e/lib.sh"
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

ROUNDS="${BENCH_AUTH_ROUNDS:-3}"
SECS="${BENCH_AUTH_SECS:-10}"
need wrk curl jq
ORAS="$TOOLS/bin/oras"
[ -x "$ORAS" ] || die "oras is missing: run scripts/install-test-deps"

bench_lock
bench_build_slipway
export E2E_SLIPWAY_BIN
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/slipway.sh
source "$REPO_ROOT/tests/e2e/slipway.sh"

PASSWORD="bench password $RANDOM$RANDOM"
echo "artifact for bench/auth.sh" >"$E2E_TMP/artifact.txt"

declare -A ADDR=()
E2E_AUTH_MODE=open start_slipway sqlite-fs >/dev/null
ADDR[open]="$REGISTRY"
SLIPWAY_AUTH__TOKEN_TTL_SECS=3600 E2E_AUTH_MODE=enforced start_slipway sqlite-fs >/dev/null
ADDR[token]="$REGISTRY"
printf '%s' "$PASSWORD" | "$E2E_SLIPWAY_BIN" --data-dir "$E2E_SLIPWAY_DATA" admin create-user bench --email bench@example.com --password-stdin >/dev/null ||
    die "slipway admin create-user failed"

(cd "$E2E_TMP" && "$ORAS" push --plain-http "${ADDR[open]}/bench/app:v1" artifact.txt >/dev/null) || die "oras push (open) failed"
(cd "$E2E_TMP" && "$ORAS" push --plain-http -u bench -p "$PASSWORD" "${ADDR[token]}/bench/app:v1" artifact.txt >/dev/null) ||
    die "oras push (enforced) failed"
TOKEN="$(curl -sf -u "bench:$PASSWORD" "http://${ADDR[token]}/auth/token?service=slipway&scope=repository:bench/app:pull" | jq -r .token)"
if [ -z "$TOKEN" ] || [ "$TOKEN" = null ]; then die "no pull token"; fi

ACCEPT="Accept: application/vnd.oci.image.manifest.v1+json"
curl -sf -o /dev/null -H "$ACCEPT" "http://${ADDR[open]}/v2/bench/app/manifests/v1" || die "open GET failed"
curl -sf -o /dev/null -H "$ACCEPT" -H "Authorization: Bearer $TOKEN" "http://${ADDR[token]}/v2/bench/app/manifests/v1" ||
    die "token GET failed"
curl -s -o /dev/null -w '%{http_code}' -H "$ACCEPT" "http://${ADDR[token]}/v2/bench/app/manifests/v1" | grep -q 401 ||
    die "the enforced server answered a GET without a token"

# wrk_rate KIND: one round against that server (bench/lib.sh's wrk_round).
wrk_rate() {
    local headers=(-H "$ACCEPT")
    [ "$1" = token ] && headers+=(-H "Authorization: Bearer $TOKEN")
    wrk_round "$SECS" "http://${ADDR[$1]}/v2/bench/app/manifests/v1" "${headers[@]}"
}

declare -A RATES=()
echo "bench/auth.sh: slipway $SLIPWAY_REV, manifest GET by tag, wrk -t2 -c32, ${SECS}s x $ROUNDS rounds"
for round in $(seq 1 "$ROUNDS"); do
    for kind in open token; do
        read -r rps p50 p99 <<<"$(wrk_rate "$kind")"
        RATES[$kind]+="$rps "
        printf 'round %d  %-5s  %8d req/s  p50 %6d us  p99 %6d us\n' "$round" "$kind" "$rps" "$p50" "$p99"
    done
done
open_median="$(echo "${RATES[open]}" | median)"
token_median="$(echo "${RATES[token]}" | median)"
python3 -c "
o, t = $open_median, $token_median
print(f'median: open {o} req/s, token {t} req/s: token/open = {t / o:.2f} (target >= 0.80: {\"met\" if t / o >= 0.8 else \"NOT met\"})')"

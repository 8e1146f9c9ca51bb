#!/usr/bin/env bash
# Runs the end-to-end suites against Slipway on one backend pair:
#   tests/e2e/run.sh sqlite-fs      (the embedded default)
#   tests/e2e/run.sh postgres-s3    (private PostgreSQL cluster + moto S3)
# The OCI conformance suite and the real-client suite each print their own summary line.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend="${1:-sqlite-fs}"
start_slipway "$backend"
echo "e2e[$backend]: slipway at $REGISTRY"
status=0
"$E2E_DIR/conformance.sh" || status=1
"$E2E_DIR/clients.sh" || status=1
if [ "$status" -ne 0 ]; then
    echo "e2e[$backend]: failures; server log tail:"
    tail -n 30 "$E2E_SLIPWAY_LOG" | sed 's/^/  /'
fi
exit "$status"

#!/usr/bin/env bash
# Traces and metrics as an operator's tools see them (issue 19): Slipway exports spans over
# OTLP/HTTP to a receiver that decodes them with OTLP's own protobuf definitions
# (tests/e2e/otlp/receiver.py), and serves /metrics on a listener of its own.
#
#   tests/e2e/observability.sh
#
#   trace       a request carrying a W3C traceparent becomes a server span of that trace,
#               child of the caller's span, named by method and route template, with the
#               status, the path (never the query) and the configured service.name
#   push        crane's push is traced request by request (upload, manifest routes)
#   metrics     the separate listener serves /metrics (and only it), with the build, the
#               routes by template and the job queue (no workers here: the scan waits)
#
# Results: target/e2e-results/observability-sqlite-fs-<timestamp>/. The last line printed
# is "N passed, N failed".
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
# shellcheck source=tests/e2e/slipway.sh
source "$E2E_DIR/slipway.sh"

backend_suite observability sqlite-fs
W="$E2E_TMP/work"
mkdir -p "$W"
export RUST_BACKTRACE=0
PY="$TOOLS/venv/bin/python"
[ -x "$PY" ] || { echo "observability: $PY missing: run scripts/install-test-deps" >&2; exit 2; }

OTLP_PORT="$(free_port)"
SPANS="$W/spans.jsonl"
touch "$SPANS"
"$PY" "$E2E_DIR/otlp/receiver.py" "$OTLP_PORT" "$SPANS" >"$W/receiver.log" 2>&1 &
on_exit "kill_tree $! 5"
on_exit "cp '$SPANS' '$E2E_LOG_DIR/spans.jsonl'"
wait_until 30 "OTLP receiver" python3 -c "import socket; socket.create_connection(('127.0.0.1', $OTLP_PORT), 1).close()" || {
    cat "$W/receiver.log" >&2
    exit 1
}

METRICS_PORT="$(free_port)"
SLIPWAY_TRACES__OTLP_ENDPOINT="http://127.0.0.1:$OTLP_PORT/v1/traces" SLIPWAY_TRACES__SERVICE_NAME=slipway-e2e \
    SLIPWAY_METRICS__LISTEN="127.0.0.1:$METRICS_PORT" OTEL_BSP_SCHEDULE_DELAY=200 SLIPWAY_JOBS__WORKERS=0 \
    start_slipway sqlite-fs >"$W/start.log" 2>&1 || {
    cat "$W/start.log" >&2
    exit 1
}
on_exit "cp '$E2E_SLIPWAY_LOG' '$E2E_LOG_DIR/serve.log'"

# spans_of TRACE_ID: that trace's spans, waiting (bounded) for the exporter's batch.
spans_of() {
    local i
    for i in $(seq 1 50); do
        if grep -q "\"trace_id\": \"$1\"" "$SPANS"; then
            grep "\"trace_id\": \"$1\"" "$SPANS"
            return 0
        fi
        sleep 0.2
    done
    echo "no span of trace $1 after 10 s" >&2
    return 1
}

trace_continues() {
    local trace parent span
    trace="$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
    parent="$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')"
    curl -sf -o /dev/null -H "traceparent: 00-$trace-$parent-01" "http://$REGISTRY/v2/?probe=secret-looking-query"
    span="$(spans_of "$trace" | head -n 1)"
    echo "$span" | jq .
    expect_eq "parent" "$parent" "$(jq -r .parent_span_id <<<"$span")"
    expect_eq "name" "GET base" "$(jq -r .name <<<"$span")"
    expect_eq "kind (server)" "2" "$(jq -r .kind <<<"$span")"
    expect_eq "status" "200" "$(jq -r '.attributes["http.response.status_code"]' <<<"$span")"
    expect_eq "path" "/v2/" "$(jq -r '.attributes["url.path"]' <<<"$span")"
    expect_eq "route" "base" "$(jq -r '.attributes["http.route"]' <<<"$span")"
    expect_eq "service.name" "slipway-e2e" "$(jq -r '.resource["service.name"]' <<<"$span")"
    if grep -q "secret-looking-query" "$SPANS"; then
        echo "a query string reached the spans" >&2
        return 1
    fi
}

push_traced() {
    local i
    # An image of one layer made here and pushed: each request of the push is a span.
    printf 'traced %s\n' "$RANDOM" >"$W/file.txt"
    tar -C "$W" -cf "$W/layer.tar" file.txt
    crane append --insecure -f "$W/layer.tar" -t "$REGISTRY/e2e/traced:2"
    for i in $(seq 1 50); do
        if grep -q '"name": "PUT manifest"' "$SPANS" && grep -q '"name": "PUT upload"' "$SPANS"; then
            grep -c '"http.route": "upload"' "$SPANS"
            return 0
        fi
        sleep 0.2
    done
    echo "the push's manifest and upload spans did not arrive" >&2
    jq -r .name "$SPANS" | sort | uniq -c >&2
    return 1
}

metrics_listener() {
    local text
    text="$(curl -sf "http://127.0.0.1:$METRICS_PORT/metrics")"
    grep '^slipway_build_info{' <<<"$text"
    grep 'slipway_http_requests_total{route="manifest",method="PUT",status="201"}' <<<"$text"
    # No workers here: the pushed image's scan waits in the queue.
    grep '^slipway_jobs_queued{kind="scan_image"} [1-9]' <<<"$text"
    # The main listener has no /metrics then, and the metrics listener nothing else.
    expect_eq "main listener /metrics" "404" "$(http_code "http://$REGISTRY/metrics")"
    expect_eq "metrics listener /v2/" "404" "$(http_code "http://127.0.0.1:$METRICS_PORT/v2/")"
}

check "trace: traceparent continued, span named by route, status, service.name, no query" trace_continues
check "push: every request of a crane push is a span (upload, manifest)" push_traced
check "metrics: the separate listener serves build, routes and the job queue" metrics_listener

summary

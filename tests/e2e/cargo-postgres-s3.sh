#!/usr/bin/env bash
# Runs the Rust integration suite (crates/slipway/tests/it) and the database crate's
# own tests against PostgreSQL + S3:
# a private PostgreSQL cluster and moto's S3 server, both on loopback, both stopped
# on exit, then slipway-db's query tests on the same PostgreSQL. The same suites run on
# SQLite + filesystem in a plain `cargo test`.
set -euo pipefail
# shellcheck source=tests/e2e/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
start_postgres
start_moto
cd "$REPO_ROOT"
# Arguments are passed on as a test filter: `cargo-postgres-s3.sh scanning`.
export SLIPWAY_TEST_POSTGRES_URL="$PG_URL" SLIPWAY_TEST_S3_ENDPOINT="$S3_ENDPOINT" SLIPWAY_TEST_S3_BUCKET="$S3_BUCKET"
workspace_test slipway it "$@"
# The database crate's query tests, which take PostgreSQL from the same variable.
workspace_test slipway-db lib "$@"

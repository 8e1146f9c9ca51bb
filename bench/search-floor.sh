#!/usr/bin/env bash
# What one uncached search costs inside each engine, without Slipway: the statements a
# search runs (the ranked page and the count), timed in the database itself over the
# stores bench/search.sh loads (100,000 synthetic products), beside cheaper shapes that
# show the floor: ranking only the first 1,000 matches, and finding 20 matches unranked.
# Tells whether a target is within an engine's reach before Slipway's own costs (HTTP,
# templates, pools) are added. Prints a markdown table on stdout.
#
#   bench/search-floor.sh [sqlite|postgres|both]      (default: both)
#
# Needs the stores of a previous `bench/search.sh` run (BENCH_SEARCH_DATA, default
# target/bench-data) and the sqlite3 command-line shell for SQLite. SQLite: CPU time
# (user + sys) reported by the shell's `.timer`; PostgreSQL: "Execution Time" of
# EXPLAIN ANALYZE with per-node timing off. Each statement runs once untimed, then
# BENCH_FLOOR_RUNS (5) times; the median is shown. Holds the bench lock.
set -euo pipefail

BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source-path=SCRIPTDIR source=../tests/e2e/lib.sh
source "$BENCH_DIR/../tests/e2e/lib.sh"
# log, die, bench_lock, builds and the machine's state.
# shellcheck source-path=SCRIPTDIR source=lib.sh
source "$BENCH_DIR/lib.sh"

what="${1:-both}"
bench_backends "$what"
RUNS="${BENCH_FLOOR_RUNS:-5}"
DATA_ROOT="${BENCH_SEARCH_DATA:-$REPO_ROOT/target/bench-data}"
COUNT="${BENCH_SEARCH_PRODUCTS:-100000}"
PGBIN=/usr/lib/postgresql/15/bin

bench_lock

# The searches, as Slipway words them for each engine (crates/slipway-db/src/catalog.rs,
# match_expression): label | FTS5 expression | tsquery.
SEARCHES=(
    'database|("database")|database'
    'secure database|("secure") AND ("database")|secure & database'
    'payment* gateway (typed)|("payment"*) AND ("gateway")|payment:* & gateway'
    'polar telemetry proxy|("polar") AND ("telemetry") AND ("proxy")|polar & telemetry & proxy'
)
COLUMNS='{name tags publisher short_description long_description}'
BM25='bm25(listing_search, 10.0, 5.0, 3.0, 2.0, 1.0, 0.0)'

median() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

# sqlite_ms DB SQL: median CPU milliseconds of SQL over RUNS runs (after one untimed).
sqlite_ms() {
    { echo ".timer on"; for _ in $(seq 0 "$RUNS"); do echo "$2;"; done; } |
        timeout 600 sqlite3 -readonly "$1" | awk '/^Run Time/ { print ($6 + $8) * 1000 }' | tail -n "$RUNS" | median
}

# pg_ms SQL: median server-side execution milliseconds over RUNS runs (after one untimed).
pg_ms() {
    for _ in $(seq 0 "$RUNS"); do
        timeout 600 psql "$PG_URL/slipway_bench" -XAtqc "EXPLAIN (ANALYZE, TIMING OFF, SUMMARY ON) $1" |
            awk '/^Execution Time/ { print $3 }'
    done | tail -n "$RUNS" | median
}

echo "| backend | search | matches | ranked page (Slipway's statement) | count (Slipway's) | rank the first 1,000 matches only | 20 matches, unranked |"
echo "|---|---|---:|---:|---:|---:|---:|"
for backend in "${BACKENDS[@]}"; do
    case "$backend" in
        sqlite)
            command -v sqlite3 >/dev/null || die "the sqlite3 shell is missing"
            db="$DATA_ROOT/search-sqlite-$COUNT/slipway.db"
            [ -s "$db" ] || die "no SQLite store at $db: run bench/search.sh sqlite first"
            for search in "${SEARCHES[@]}"; do
                IFS='|' read -r label fts _ <<<"$search"
                match="listing_search MATCH '$COLUMNS : $fts'"
                matches="$(sqlite3 -readonly "$db" "SELECT count(*) FROM listing_search WHERE $match")"
                page="$(sqlite_ms "$db" "SELECT rowid, $BM25 AS score FROM listing_search WHERE $match ORDER BY score, rowid LIMIT 20")"
                count="$(sqlite_ms "$db" "SELECT count(*) FROM listing_search WHERE $match")"
                first="$(sqlite_ms "$db" "SELECT rowid, score FROM (SELECT rowid, $BM25 AS score FROM listing_search WHERE $match LIMIT 1000) ORDER BY score, rowid LIMIT 20")"
                any="$(sqlite_ms "$db" "SELECT rowid FROM listing_search WHERE $match LIMIT 20")"
                echo "| SQLite | $label | $matches | $page ms | $count ms | $first ms | $any ms |"
            done
            ;;
        postgres)
            dir="$DATA_ROOT/search-postgres-$COUNT/pg"
            [ -s "$dir/data/PG_VERSION" ] || die "no PostgreSQL store under $dir: run bench/search.sh postgres first"
            start_pg_cluster "$dir"
            for search in "${SEARCHES[@]}"; do
                IFS='|' read -r label _ tsq <<<"$search"
                q="to_tsquery('simple', '$tsq')"
                matches="$(psql "$PG_URL/slipway_bench" -XAtqc "SELECT count(*) FROM listing_search WHERE document @@ $q")"
                page="$(pg_ms "SELECT listing_id, -ts_rank(document, $q) AS score FROM listing_search WHERE document @@ $q ORDER BY score, listing_id LIMIT 20")"
                count="$(pg_ms "SELECT count(*) FROM listing_search WHERE document @@ $q")"
                first="$(pg_ms "SELECT listing_id, score FROM (SELECT listing_id, -ts_rank(document, $q) AS score FROM listing_search WHERE document @@ $q LIMIT 1000) f ORDER BY score, listing_id LIMIT 20")"
                any="$(pg_ms "SELECT listing_id FROM listing_search WHERE document @@ $q LIMIT 20")"
                echo "| PostgreSQL | $label | $matches | $page ms | $count ms | $first ms | $any ms |"
            done
            ;;
    esac
done

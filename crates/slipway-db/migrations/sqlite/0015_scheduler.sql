-- Periodic work: one row per schedule, and the test clock's offset.

-- A schedule's next run is taken by a compare-and-set on next_run_at: of the replicas that
-- find it due, only the one whose update matched enqueues the run. The last_* columns are
-- the latest run's history (for `slipway jobs status`), written when a run ends. scope is
-- 'cluster' (one run per interval across replicas) or 'replica' (a run in every replica,
-- for work on a replica's own memory; the row shows whichever ran last).
CREATE TABLE schedules (
    name TEXT PRIMARY KEY,
    scope TEXT NOT NULL,
    interval_ms BIGINT NOT NULL,
    next_run_at BIGINT NOT NULL,
    last_started_at BIGINT,
    last_finished_at BIGINT,
    last_duration_ms BIGINT,
    last_outcome TEXT,
    last_error TEXT,
    runs BIGINT NOT NULL DEFAULT 0
);

-- `[testing] clock = true`: how far the test clock runs ahead of the system time, in
-- milliseconds. One row, kept in the database so that every replica reads the same time;
-- it only grows.
CREATE TABLE test_clock (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    offset_ms BIGINT NOT NULL
);
INSERT INTO test_clock (id, offset_ms) VALUES (1, 0);

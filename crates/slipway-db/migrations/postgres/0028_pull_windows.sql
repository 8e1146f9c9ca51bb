-- Pull rate limits counted in the database, so that every replica counts against the same
-- window: a client spreading pulls over replicas behind a load balancer gets the limit
-- once, not once per replica. One row per key (account:<name> or ip:<group>).
CREATE TABLE pull_windows (
    key TEXT PRIMARY KEY,
    pulls BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);
CREATE INDEX pull_windows_by_start ON pull_windows (window_start);

-- Sign-in throttling by growing delays instead of hard locks. One row per key: a (user
-- name, client address) pair, or a client address alone (IPv6 by /64). Each attempt is
-- counted before its password is hashed; once `attempts` reaches the key's free
-- allowance, the next attempt must wait `delay_ms` after `updated_at`, and the delay
-- doubles with each further attempt up to a cap. Rows silent for long are forgotten.
-- Times are unix milliseconds.
DROP TABLE login_failures;

CREATE TABLE sign_in_attempts (
    key TEXT PRIMARY KEY,
    attempts BIGINT NOT NULL,
    delay_ms BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX sign_in_attempts_by_age ON sign_in_attempts (updated_at);

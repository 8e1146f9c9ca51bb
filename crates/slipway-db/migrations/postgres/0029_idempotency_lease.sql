-- A claimed Idempotency-Key is held for a lease, not for ever: when the process running
-- its request dies, a retry after `locked_until` takes the key over and finishes the
-- request. Keys claimed before this column existed read 0: past, so a retry may take
-- them over.
ALTER TABLE idempotency_keys ADD COLUMN locked_until BIGINT NOT NULL DEFAULT 0;
-- What the request under the key made, written in the same transaction: a checkout's
-- reservation, which a retry that takes over resumes (same subscription, same charge
-- under the same provider key) rather than reserving a second.
ALTER TABLE idempotency_keys ADD COLUMN resource TEXT;

-- The payment provider's customer of each account (Stripe's cus_...), made on the
-- account's first attach and kept for every later charge and after restarts. Written
-- insert-if-absent and read back, so two attaches at once agree on one customer.
CREATE TABLE payment_customers (
    account_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    reference TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (account_id, provider)
);

-- The provider's webhook events received, by the provider's event id: a delivery of an
-- id already here is a replay (providers deliver at least once) and does nothing.
-- kind is the event's type, object_id the id of the object it is about ('' when none).
CREATE TABLE webhook_events (
    provider TEXT NOT NULL,
    event_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    object_id TEXT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (provider, event_id)
);

-- The fulfillment API (bring your own license): orders an ISV's systems place for their
-- customers, and the signed webhooks that tell the ISV about each order's changes.

-- An order grants a tier of one of the publisher's listings. tier_id is the tier's
-- entitlement name (publisher/listing/tier); the entitlement it grants has the order's id.
-- kind: purchase, trial or beta. state: pending (mailed to an address without an account
-- yet; the entitlement attaches when an account verifies that address), active, canceled,
-- expired. customer is what the ISV named (an account name, or the address lower-cased).
-- external_id is the ISV's own id: one order per publisher and external id.
CREATE TABLE fulfillment_orders (
    id TEXT PRIMARY KEY,
    publisher TEXT NOT NULL,
    tier_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    customer TEXT NOT NULL,
    email TEXT,
    account_id TEXT,
    external_id TEXT NOT NULL,
    product_key TEXT NOT NULL,
    expires_at BIGINT,
    created_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    activated_at BIGINT,
    ended_at BIGINT,
    UNIQUE (publisher, external_id)
);
CREATE INDEX fulfillment_orders_by_publisher ON fulfillment_orders (publisher, created_at);
CREATE INDEX fulfillment_orders_pending ON fulfillment_orders (email, state);
CREATE INDEX fulfillment_orders_expiring ON fulfillment_orders (state, expires_at);

-- Where a publisher's order events go, and the key they are signed with. The key is kept
-- so the server can sign (it is the ISV who verifies): not a credential checked here.
CREATE TABLE fulfillment_webhooks (
    publisher TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- The webhook outbox and delivery log: one row per event, written in the transaction of
-- the order's change. state: pending, delivered or failed (given up after the last
-- attempt). A sender holds a row while it sends (locked_until), so replicas never send
-- one event at once.
CREATE TABLE webhook_deliveries (
    id TEXT PRIMARY KEY,
    publisher TEXT NOT NULL,
    order_id TEXT NOT NULL,
    event TEXT NOT NULL,
    payload TEXT NOT NULL,
    state TEXT NOT NULL,
    attempts BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    last_status BIGINT,
    last_error TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    delivered_at BIGINT
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (state, next_attempt_at);
CREATE INDEX webhook_deliveries_by_publisher ON webhook_deliveries (publisher, created_at);

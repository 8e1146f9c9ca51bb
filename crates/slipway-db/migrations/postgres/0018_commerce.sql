-- Commerce: prices with periods and trials, billing profiles, payment methods,
-- subscriptions with their periods, payments, invoices and credit notes, refunds, and the
-- idempotency keys of money-moving requests. Amounts are signed integers in the minor
-- units of their ISO 4217 currency; rows that record money are never updated in place
-- except for a status that moves forward.

-- A tier's price: amount (minor units per period; 0 for free), billing_period (free,
-- month, year or one_time) and an optional free trial of trial_days days.
ALTER TABLE tiers RENAME COLUMN price_cents TO amount;
ALTER TABLE tiers ADD COLUMN trial_days BIGINT NOT NULL DEFAULT 0;

-- Who the customer is for tax and on invoices.
CREATE TABLE billing_profiles (
    account_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    country TEXT NOT NULL,
    region TEXT NOT NULL,
    postal_code TEXT NOT NULL,
    tax_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- A payment method saved with a provider for renewals: reference is the provider's id
-- (pm_...). Never a card number.
CREATE TABLE payment_methods (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    reference TEXT NOT NULL,
    brand TEXT NOT NULL,
    last4 TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX payment_methods_by_account ON payment_methods (account_id, created_at);

-- Every subscription is its own record: a new purchase after one ended is a new row.
-- status: incomplete (checkout in progress), trialing, active, past_due, canceled,
-- expired. tier_id is the tier's entitlement name (publisher/listing/tier). The price is
-- the subscription's own (a tier's new price reaches it at a renewal after a notice).
-- current_period_end is NULL for free and one-time purchases, which do not renew.
CREATE TABLE subscriptions_v2 (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    tier_id TEXT NOT NULL,
    license_version BIGINT NOT NULL,
    license_accepted_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    billing_period TEXT NOT NULL,
    payment_method_id TEXT,
    current_period_start BIGINT,
    current_period_end BIGINT,
    trial_end BIGINT,
    cancel_at_period_end BIGINT NOT NULL,
    past_due_since BIGINT,
    next_attempt_at BIGINT,
    price_notice_at BIGINT,
    canceled_at BIGINT,
    ended_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
INSERT INTO subscriptions_v2 (id, account_id, tier_id, license_version, license_accepted_at, status, amount, currency,
    billing_period, cancel_at_period_end, created_at, updated_at)
SELECT id, account_id, tier_id, license_version, license_accepted_at, status, 0, 'USD', 'free', 0, created_at, created_at
FROM subscriptions;
DROP TABLE subscriptions;
ALTER TABLE subscriptions_v2 RENAME TO subscriptions;
-- One live subscription per account and tier: concurrent checkouts of one tier cannot
-- both succeed.
CREATE UNIQUE INDEX subscriptions_live ON subscriptions (account_id, tier_id)
    WHERE status IN ('incomplete', 'trialing', 'active', 'past_due');
CREATE INDEX subscriptions_by_account ON subscriptions (account_id, created_at);
CREATE INDEX subscriptions_due ON subscriptions (status, current_period_end);

-- The periods a subscription has run through, one row each, never rewritten: kind trial
-- or paid. The unique key is what makes charging one period twice impossible.
CREATE TABLE subscription_periods (
    id TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    period_end BIGINT,
    invoice_id TEXT,
    created_at BIGINT NOT NULL,
    UNIQUE (subscription_id, period_start)
);

-- Every attempt to take money: status succeeded or failed (with the provider's message).
CREATE TABLE payments (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    subscription_id TEXT,
    provider TEXT NOT NULL,
    reference TEXT NOT NULL,
    payment_method_id TEXT,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    status TEXT NOT NULL,
    failure TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);
CREATE INDEX payments_by_subscription ON payments (subscription_id, created_at);

-- The last invoice number of each seller, taken in the transaction that writes the
-- invoice, so numbers have no gaps.
CREATE TABLE invoice_counters (
    seller TEXT PRIMARY KEY,
    last_number BIGINT NOT NULL
);

-- kind invoice or credit_note (a refund's, with credits naming the invoice). The buyer's
-- billing details are copied in as they were. Amounts: subtotal + tax = total.
CREATE TABLE invoices (
    id TEXT PRIMARY KEY,
    seller TEXT NOT NULL,
    number BIGINT NOT NULL,
    kind TEXT NOT NULL,
    account_id TEXT NOT NULL,
    subscription_id TEXT,
    payment_id TEXT,
    credits TEXT,
    currency TEXT NOT NULL,
    subtotal BIGINT NOT NULL,
    tax BIGINT NOT NULL,
    total BIGINT NOT NULL,
    platform_fee BIGINT NOT NULL,
    buyer_name TEXT NOT NULL,
    buyer_country TEXT NOT NULL,
    buyer_region TEXT NOT NULL,
    buyer_postal_code TEXT NOT NULL,
    buyer_tax_id TEXT NOT NULL,
    reverse_charge BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (seller, number)
);
CREATE INDEX invoices_by_account ON invoices (account_id, created_at);
CREATE INDEX invoices_by_subscription ON invoices (subscription_id, created_at);

-- An invoice's lines, each with its own tax.
CREATE TABLE invoice_lines (
    invoice_id TEXT NOT NULL,
    position BIGINT NOT NULL,
    description TEXT NOT NULL,
    amount BIGINT NOT NULL,
    tax BIGINT NOT NULL,
    tax_name TEXT NOT NULL,
    tax_rate_bps BIGINT NOT NULL,
    period_start BIGINT,
    period_end BIGINT,
    PRIMARY KEY (invoice_id, position)
);

-- Money given back on a payment, with its credit note.
CREATE TABLE refunds (
    id TEXT PRIMARY KEY,
    payment_id TEXT NOT NULL,
    invoice_id TEXT NOT NULL,
    credit_note_id TEXT NOT NULL,
    subscription_id TEXT,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    reason TEXT NOT NULL,
    refunded_by TEXT NOT NULL,
    reference TEXT NOT NULL,
    created_at BIGINT NOT NULL
);
CREATE INDEX refunds_by_payment ON refunds (payment_id);

-- A money-moving request's Idempotency-Key, per caller: the first request claims it and
-- stores its answer; a retry with the same body gets that answer, with another body a
-- refusal. state: running or done.
CREATE TABLE idempotency_keys (
    caller TEXT NOT NULL,
    idempotency_key TEXT NOT NULL,
    request_hash TEXT NOT NULL,
    state TEXT NOT NULL,
    status BIGINT NOT NULL,
    response TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (caller, idempotency_key)
);

-- `slipway ledger verify` finds the ledger transaction of each invoice and credit note.
CREATE INDEX ledger_transactions_by_reference ON ledger_transactions (reference);

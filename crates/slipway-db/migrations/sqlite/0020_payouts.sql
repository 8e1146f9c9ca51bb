-- Payout statements: what the store owes each publisher, one statement per publisher,
-- currency and calendar month (UTC). Amounts are minor units of the statement's currency:
-- gross (invoice subtotals), refunds (credit-note subtotals), tax (collected less given
-- back, for information), platform_fee (kept less given back), carried_in (the previous
-- statement's negative net, 0 or less), net = gross - refunds - platform_fee + carried_in,
-- and net_due = max(net, 0). A negative net is carried into the next statement. The
-- amounts are never rewritten; only status moves from open to paid, with the admin's
-- reference, in the database transaction that posts the payout to the ledger.
CREATE TABLE payout_statements (
    id TEXT PRIMARY KEY,
    publisher TEXT NOT NULL,
    currency TEXT NOT NULL,
    month TEXT NOT NULL,
    period_start BIGINT NOT NULL,
    period_end BIGINT NOT NULL,
    gross BIGINT NOT NULL,
    refunds BIGINT NOT NULL,
    tax BIGINT NOT NULL,
    platform_fee BIGINT NOT NULL,
    carried_in BIGINT NOT NULL,
    net BIGINT NOT NULL,
    net_due BIGINT NOT NULL,
    status TEXT NOT NULL,
    reference TEXT NOT NULL,
    paid_by TEXT NOT NULL,
    paid_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (publisher, currency, month)
);
CREATE INDEX payout_statements_by_month ON payout_statements (month, publisher);

-- A month's statements add up the invoices and credit notes written in it.
CREATE INDEX invoices_by_created ON invoices (created_at);

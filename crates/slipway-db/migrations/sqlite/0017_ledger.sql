-- The double-entry ledger: every money movement is a transaction of two or more entries
-- whose amounts sum to zero in each currency. Rows are only ever added: a correction is a
-- new transaction that reverses the old one.

-- kind names the movement (charge, refund, payout, ...), reference the business record it
-- belongs to (an invoice, refund or payout id). A retried post carries the same
-- idempotency_key and finds the transaction written the first time.
CREATE TABLE ledger_transactions (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    reference TEXT NOT NULL,
    idempotency_key TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL
);

-- account is a colon-separated name (customer:<id>, platform:fees,
-- publisher:<org>:payable, tax:<country>, cash:<provider>); currency an ISO 4217 code;
-- amount a signed count of the currency's minor units: a debit is positive, a credit
-- negative, so a transaction balances when its amounts per currency sum to zero.
CREATE TABLE ledger_entries (
    id INTEGER PRIMARY KEY,
    transaction_id TEXT NOT NULL REFERENCES ledger_transactions (id),
    account TEXT NOT NULL,
    currency TEXT NOT NULL,
    amount BIGINT NOT NULL
);
CREATE INDEX ledger_entries_by_transaction ON ledger_entries (transaction_id);
CREATE INDEX ledger_entries_by_account ON ledger_entries (account, currency);

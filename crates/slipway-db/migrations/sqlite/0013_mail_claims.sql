-- Mail and email secrets: outbox leases, bodies dropped once sent, one live email token per
-- account and purpose, and request counters for mail that anyone can trigger.

-- A sender claims a message before delivering it (claimed_until: the lease's end), so two
-- replicas never send the same message; a sender that died leaves a lease that runs out.
ALTER TABLE outbox ADD COLUMN claimed_until BIGINT NOT NULL DEFAULT 0;
ALTER TABLE outbox ADD COLUMN claimed_by TEXT;

-- Bodies hold reset and invitation codes: once the mail server has the message, the
-- database keeps only its recipient and subject.
UPDATE outbox SET body = '' WHERE sent_at IS NOT NULL;

-- One live (unused) token per account and purpose: a new one replaces the old, so a mailbox
-- never holds several working reset codes. Older live duplicates go first.
DELETE FROM email_tokens WHERE used_at IS NULL AND EXISTS (
    SELECT 1 FROM email_tokens newer
    WHERE newer.account_id = email_tokens.account_id AND newer.purpose = email_tokens.purpose AND newer.used_at IS NULL
      AND (newer.created_at > email_tokens.created_at
           OR (newer.created_at = email_tokens.created_at AND newer.token_hash > email_tokens.token_hash))
);
CREATE UNIQUE INDEX email_tokens_live ON email_tokens (account_id, purpose) WHERE used_at IS NULL;

-- Requests counted per key (e.g. reset-email:<address>, reset-ip:<client>) in a fixed
-- window, shared by replicas: they bound how much mail one caller can have sent.
CREATE TABLE request_windows (
    key TEXT PRIMARY KEY,
    hits BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);
CREATE INDEX request_windows_by_start ON request_windows (window_start);

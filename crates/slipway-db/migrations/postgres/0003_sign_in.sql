-- Web sign-in: sessions, one-time email tokens, the outgoing mail queue, and login
-- throttling. Times are unix milliseconds.

-- A browser session; only a hash of the cookie value is kept. csrf is the token that
-- state-changing requests must echo.
CREATE TABLE web_sessions (
    id_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    csrf TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_by_account ON web_sessions (account_id);

-- Email verification and password reset links (purpose: verify or reset), single use.
CREATE TABLE email_tokens (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    purpose TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    used_at BIGINT
);

-- Mail waits here until the SMTP server has accepted it, so a request never fails or
-- blocks because mail is slow, and nothing is lost when the server is down.
CREATE TABLE outbox (
    id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    subject TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    next_attempt_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    sent_at BIGINT,
    last_error TEXT
);
CREATE INDEX outbox_pending ON outbox (sent_at, next_attempt_at);

-- Failed sign-ins per key (account:<name> or ip:<address>) in the current window.
CREATE TABLE login_failures (
    key TEXT PRIMARY KEY,
    failures BIGINT NOT NULL,
    window_start BIGINT NOT NULL
);

-- Two-factor sign-in (issue 18). An account's TOTP secret (RFC 6238, base32): while
-- enabled_at is NULL it waits for the first code that proves the authenticator has it.
-- last_step is the newest time step a code was accepted for: a code is accepted once.
CREATE TABLE two_factor (
    account_id TEXT PRIMARY KEY,
    secret TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    enabled_at BIGINT,
    last_step BIGINT NOT NULL DEFAULT -1
);

-- One-time recovery codes (their SHA-256), replaced as a set.
CREATE TABLE recovery_codes (
    account_id TEXT NOT NULL,
    code_hash TEXT NOT NULL,
    used_at BIGINT,
    PRIMARY KEY (account_id, code_hash)
);

-- A password sign-in that waits for its second factor (the browser holds the secret
-- whose hash is id_hash): it becomes a web session when a code holds, or expires.
CREATE TABLE sign_in_challenges (
    id_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    user_agent TEXT NOT NULL,
    client TEXT NOT NULL
);
CREATE INDEX sign_in_challenges_by_account ON sign_in_challenges (account_id);

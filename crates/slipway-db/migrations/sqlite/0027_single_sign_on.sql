-- Single sign-on with OpenID Connect (issue 18). A sign-in sent to a provider and waiting
-- for its answer: the state's hash (the browser holds the state in a cookie too), the
-- nonce the ID token must carry, and the PKCE verifier; single use, short-lived.
CREATE TABLE sso_logins (
    state_hash TEXT PRIMARY KEY,
    provider TEXT NOT NULL,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);

-- An account's identity at a provider: (issuer, subject) names one person there.
CREATE TABLE sso_links (
    issuer TEXT NOT NULL,
    subject TEXT NOT NULL,
    account_id TEXT NOT NULL,
    provider TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (issuer, subject)
);
CREATE INDEX sso_links_by_account ON sso_links (account_id);

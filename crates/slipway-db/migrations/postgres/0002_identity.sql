-- Accounts, organizations, access tokens, and what the registry's access decisions read.
-- Times are unix milliseconds.

-- People and robots (service accounts). A robot belongs to one organization and has no
-- password: it authenticates with its access tokens only.
CREATE TABLE accounts (
    id TEXT PRIMARY KEY,
    name TEXT COLLATE "C" NOT NULL UNIQUE,
    email TEXT UNIQUE,
    email_verified_at BIGINT,
    password_hash TEXT,
    site_role TEXT NOT NULL,
    kind TEXT NOT NULL,
    robot_org TEXT,
    created_at BIGINT NOT NULL,
    disabled_at BIGINT
);

CREATE TABLE organizations (
    name TEXT COLLATE "C" PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- role: owner, maintainer or viewer.
CREATE TABLE memberships (
    org TEXT NOT NULL,
    account_id TEXT NOT NULL,
    role TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (org, account_id)
);
CREATE INDEX memberships_by_account ON memberships (account_id);

-- Personal and robot access tokens, usable as a password. Only a hash is kept.
-- scopes: JSON [{"repositories": "acme/*", "actions": ["pull", "push"]}].
CREATE TABLE access_tokens (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    name TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    scopes TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    last_used_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX access_tokens_by_account ON access_tokens (account_id);

-- Refresh tokens handed to `docker login` (offline_token=true) and OAuth2 clients.
CREATE TABLE refresh_tokens (
    token_hash TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    access_token_id TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);

-- Who may pull a repository. No row: a private staging repository of its namespace.
-- access: staging, public, logged_in or licensed (which needs an entitlement to tier).
CREATE TABLE repository_policies (
    repository TEXT PRIMARY KEY,
    access TEXT NOT NULL,
    tier TEXT,
    updated_at BIGINT NOT NULL
);

-- A customer's right to pull a licensed tier: a purchase, a trial, a fulfillment order
-- or an administrator's grant.
CREATE TABLE entitlements (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    tier TEXT NOT NULL,
    source TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT,
    revoked_at BIGINT
);
CREATE INDEX entitlements_by_account ON entitlements (account_id, tier);

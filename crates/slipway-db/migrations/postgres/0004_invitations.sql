-- Invitations to join an organization, sent by email; only a hash of the link's secret
-- is kept. Accepting one adds the accepting account with the invited role.
CREATE TABLE invitations (
    token_hash TEXT PRIMARY KEY,
    org TEXT NOT NULL,
    email TEXT NOT NULL,
    role TEXT NOT NULL,
    invited_by TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    accepted_at BIGINT
);
CREATE INDEX invitations_by_org ON invitations (org);

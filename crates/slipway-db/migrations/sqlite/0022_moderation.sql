-- Where a product runs, as its publisher declares it (the eligibility table of the
-- publishing guide): 'enterprise' (certified infrastructure: may be certified, publisher
-- support required), 'community' (may be published, not certified, support optional),
-- 'neither' (may not be published), or '' (not declared yet: cannot be submitted).
ALTER TABLE listings ADD COLUMN runs_on TEXT NOT NULL DEFAULT '';

-- Every move of a listing through moderation and every message of its review thread, in
-- order: from_status = to_status for a message that moves nothing. actor_id is the
-- account that acted (NULL for the operator's command line and the scheduler);
-- actor_name is kept as it was then.
CREATE TABLE listing_events (
    id TEXT PRIMARY KEY,
    listing_id TEXT NOT NULL REFERENCES listings (id),
    seq BIGINT NOT NULL,
    at BIGINT NOT NULL,
    actor_id TEXT,
    actor_name TEXT NOT NULL,
    from_status TEXT NOT NULL,
    to_status TEXT NOT NULL,
    message TEXT NOT NULL,
    UNIQUE (listing_id, seq)
);

-- The versions of the publisher agreement each publisher accepted, by whom and when.
CREATE TABLE publisher_agreements (
    org TEXT NOT NULL,
    version BIGINT NOT NULL,
    account_id TEXT NOT NULL,
    accepted_at BIGINT NOT NULL,
    PRIMARY KEY (org, version)
);

-- The change its publisher made to a live listing, waiting for review: the live listing
-- stays as it is until a moderator approves this, which replaces it. content is the
-- listing as written (JSON), status draft, submitted, in_review or changes_requested.
CREATE TABLE listing_revisions (
    listing_id TEXT PRIMARY KEY REFERENCES listings (id),
    content TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

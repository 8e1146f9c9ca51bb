-- The store's catalog: publisher profiles, product listings with tiers, license
-- agreements, and customers' subscriptions. Lists (tags, screenshots, badges, platforms)
-- are JSON arrays in TEXT columns: they are read and written whole with their listing.

-- A publisher is an organization with a public profile.
CREATE TABLE publishers (
    org TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    legal_name TEXT NOT NULL,
    website TEXT NOT NULL,
    phone TEXT NOT NULL,
    email TEXT NOT NULL,
    email_verified_at BIGINT,
    logo TEXT,
    story TEXT NOT NULL,
    verified_at BIGINT,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);

-- Logos and screenshots, decoded, checked and re-encoded on upload; id is the SHA-256
-- of the stored bytes, so a URL to one never changes meaning.
CREATE TABLE media (
    id TEXT PRIMARY KEY,
    content_type TEXT NOT NULL,
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    content BYTEA NOT NULL,
    created_at BIGINT NOT NULL
);

-- status: draft or published. trust_level: official, verified or community.
-- product_type: image, plugin or agent. license_version: the current agreement (0: none).
CREATE TABLE listings (
    id TEXT PRIMARY KEY,
    publisher TEXT NOT NULL,
    name TEXT NOT NULL,
    slug TEXT NOT NULL,
    logo TEXT,
    short_description TEXT NOT NULL,
    category TEXT NOT NULL,
    search_tags TEXT NOT NULL,
    long_description TEXT NOT NULL,
    screenshots TEXT NOT NULL,
    support_url TEXT NOT NULL,
    support_email TEXT NOT NULL,
    support_info TEXT NOT NULL,
    sla TEXT NOT NULL,
    install_instructions TEXT NOT NULL,
    product_type TEXT NOT NULL,
    trust_level TEXT NOT NULL,
    badges TEXT NOT NULL,
    platforms TEXT NOT NULL,
    license_version BIGINT NOT NULL,
    featured BIGINT NOT NULL,
    free BIGINT NOT NULL,
    paid BIGINT NOT NULL,
    pulls BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    published_at BIGINT,
    UNIQUE (publisher, slug)
);
CREATE INDEX listings_browse ON listings (status, category, pulls);
CREATE INDEX listings_by_update ON listings (status, updated_at);
CREATE INDEX listings_by_pulls ON listings (status, pulls);

-- access: public, logged_in or licensed. A tier is backed by one repository (none other
-- shares it, so the repository's pull policy is the tier's) and optionally a tag list.
CREATE TABLE tiers (
    id TEXT PRIMARY KEY,
    listing_id TEXT NOT NULL,
    slug TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT NOT NULL,
    price_cents BIGINT NOT NULL,
    currency TEXT NOT NULL,
    billing_period TEXT NOT NULL,
    access TEXT NOT NULL,
    repository TEXT NOT NULL UNIQUE,
    tags TEXT NOT NULL,
    position BIGINT NOT NULL,
    UNIQUE (listing_id, slug)
);

-- Every version of a listing's license agreement: a link, a text, or both.
CREATE TABLE license_agreements (
    listing_id TEXT NOT NULL,
    version BIGINT NOT NULL,
    url TEXT NOT NULL,
    body TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (listing_id, version)
);

-- A customer's subscription to a tier, with the agreement version accepted and when.
CREATE TABLE subscriptions (
    id TEXT PRIMARY KEY,
    account_id TEXT NOT NULL,
    tier_id TEXT NOT NULL,
    license_version BIGINT NOT NULL,
    license_accepted_at BIGINT NOT NULL,
    status TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (account_id, tier_id)
);

-- Vocabulary of the searchable text, for correcting misspelt query words.
CREATE TABLE search_terms (
    term TEXT PRIMARY KEY
);

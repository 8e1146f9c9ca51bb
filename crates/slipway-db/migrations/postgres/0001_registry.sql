-- Registry metadata. Times are unix milliseconds; sizes are bytes.
CREATE TABLE repositories (
    name TEXT COLLATE "C" PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- Every blob held in storage, once, whatever repositories link it. A row exists only
-- while the bytes are stored under the digest; touched_at feeds GC's grace period.
CREATE TABLE blobs (
    digest TEXT PRIMARY KEY,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    touched_at BIGINT NOT NULL
);

-- Blobs whose row garbage collection has deleted but whose bytes it may not have deleted
-- yet. The row goes first (durably), so a crash never leaves a row without bytes; a push
-- of the same digest removes the tombstone, which tells GC to leave the bytes alone.
CREATE TABLE blob_tombstones (
    digest TEXT PRIMARY KEY,
    created_at BIGINT NOT NULL
);

-- Which blobs a repository may serve (uploaded or mounted into it).
CREATE TABLE repository_blobs (
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX repository_blobs_by_digest ON repository_blobs (digest);

CREATE TABLE manifests (
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    media_type TEXT NOT NULL,
    artifact_type TEXT,
    subject TEXT,
    annotations TEXT,
    size BIGINT NOT NULL,
    content BYTEA NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (repository, digest)
);
CREATE INDEX manifests_by_subject ON manifests (repository, subject);

-- What each manifest needs: its blobs (kind 'blob') and an index's children ('manifest').
-- GC keeps every blob that some manifest references.
CREATE TABLE manifest_references (
    repository TEXT NOT NULL,
    manifest TEXT NOT NULL,
    child TEXT NOT NULL,
    kind TEXT NOT NULL,
    PRIMARY KEY (repository, manifest, child)
);
CREATE INDEX manifest_references_by_child ON manifest_references (child);

CREATE TABLE tags (
    repository TEXT NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    digest TEXT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (repository, name)
);
CREATE INDEX tags_by_digest ON tags (repository, digest);

-- Upload sessions live here, not in a replica's memory, so any replica can continue one.
CREATE TABLE uploads (
    id TEXT PRIMARY KEY,
    repository TEXT NOT NULL,
    algorithm TEXT NOT NULL,
    size BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE INDEX uploads_by_update ON uploads (updated_at);

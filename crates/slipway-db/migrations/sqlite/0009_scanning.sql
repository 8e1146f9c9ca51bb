-- Security scanning: the OSV advisory feed, the per-layer analysis cache, each image's
-- inventory and findings, the re-assessment index, new-vulnerability events, and the
-- background job queue. Times are unix milliseconds. Results are keyed by image digest
-- alone: an image's content, and so its scan, is the same in every repository holding it.

-- One row per feed import or sync. A declared seam: identity columns are INTEGER
-- PRIMARY KEY (a rowid) on SQLite and BIGSERIAL PRIMARY KEY on PostgreSQL.
CREATE TABLE feed_revisions (
    revision INTEGER PRIMARY KEY,
    source TEXT NOT NULL,
    started_at BIGINT NOT NULL,
    finished_at BIGINT,
    imported BIGINT NOT NULL,
    updated BIGINT NOT NULL,
    unchanged BIGINT NOT NULL,
    rejected BIGINT NOT NULL
);

-- Advisories as slipway_scanner::osv::Advisory JSON. content_hash (SHA-256 of content)
-- tells an unchanged re-import without reading the content back.
CREATE TABLE advisories (
    id TEXT PRIMARY KEY,
    modified TEXT NOT NULL,
    withdrawn TEXT,
    content_hash TEXT NOT NULL,
    content TEXT NOT NULL,
    source TEXT NOT NULL,
    revision BIGINT NOT NULL,
    imported_at BIGINT NOT NULL
);

-- Which advisories name which package (names normalised as the matcher compares them;
-- release '' applies to every release). Withdrawn advisories have no rows: they never match.
CREATE TABLE advisory_packages (
    ecosystem TEXT NOT NULL,
    name TEXT NOT NULL,
    release TEXT NOT NULL,
    advisory_id TEXT NOT NULL,
    PRIMARY KEY (ecosystem, name, release, advisory_id)
);
CREATE INDEX advisory_packages_by_advisory ON advisory_packages (advisory_id);

-- Packages whose advisories changed and whose images are not re-matched yet; the
-- re-assessment job deletes a row once it has re-matched the package at that revision.
CREATE TABLE feed_changes (
    ecosystem TEXT NOT NULL,
    name TEXT NOT NULL,
    revision BIGINT NOT NULL,
    PRIMARY KEY (ecosystem, name)
);

-- What `feed sync` last saw at each configured URL, so an unchanged feed is skipped.
CREATE TABLE feed_sources (
    url TEXT PRIMARY KEY,
    etag TEXT,
    last_modified TEXT,
    checked_at BIGINT NOT NULL,
    changed_at BIGINT,
    last_error TEXT
);

-- The layer analyzer's output (zstd-compressed slipway_scanner::analyzer::LayerReport
-- JSON): a layer seen before costs nothing to rescan until the analyzer changes.
CREATE TABLE layer_reports (
    digest TEXT NOT NULL,
    analyzer_version BIGINT NOT NULL,
    report BLOB NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (digest, analyzer_version)
);

-- The latest scan of each image manifest. status: done, failed or unsupported (not a
-- container image). The class counts are the findings' policy classes, kept current by
-- re-assessment.
CREATE TABLE image_scans (
    digest TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    scanned_at BIGINT NOT NULL,
    analyzer_version BIGINT NOT NULL,
    feed_revision BIGINT NOT NULL,
    os TEXT,
    error TEXT,
    layers_analyzed BIGINT NOT NULL,
    layers_cached BIGINT NOT NULL,
    critical BIGINT NOT NULL,
    major BIGINT NOT NULL,
    minor BIGINT NOT NULL,
    unrated BIGINT NOT NULL
);

-- The re-assessment index: every package of every scanned image, with the layer that
-- introduced it. match_name is what advisories call it (a distribution's source package,
-- normalised), so a feed change finds its images through one index lookup.
CREATE TABLE image_packages (
    digest TEXT NOT NULL,
    purl TEXT NOT NULL,
    path TEXT NOT NULL,
    ecosystem TEXT NOT NULL,
    release TEXT NOT NULL,
    name TEXT NOT NULL,
    match_name TEXT NOT NULL,
    version TEXT NOT NULL,
    source_name TEXT,
    source_version TEXT,
    layer TEXT NOT NULL,
    PRIMARY KEY (digest, purl, path)
);
CREATE INDEX image_packages_by_package ON image_packages (ecosystem, match_name);

-- An advisory affecting a package (by purl) of an image. aliases: JSON array, CVE ids
-- first. status: fix_available, unfixed or will_not_fix. severity:
-- slipway_scanner::cvss::Severity JSON; class: critical, major, minor or unrated.
CREATE TABLE findings (
    digest TEXT NOT NULL,
    package TEXT NOT NULL,
    advisory_id TEXT NOT NULL,
    ecosystem TEXT NOT NULL,
    match_name TEXT NOT NULL,
    package_name TEXT NOT NULL,
    aliases TEXT NOT NULL,
    installed_version TEXT NOT NULL,
    fixed_version TEXT,
    status TEXT NOT NULL,
    severity TEXT,
    class TEXT NOT NULL,
    first_seen BIGINT NOT NULL,
    PRIMARY KEY (digest, package, advisory_id)
);
CREATE INDEX findings_by_package ON findings (ecosystem, match_name);

-- A vulnerability that re-assessment found in an image already scanned, once per
-- (image, package, vulnerability): the CVE id, or the advisory id when it names none.
-- Notifications read them in id order.
CREATE TABLE vulnerability_events (
    id INTEGER PRIMARY KEY,
    digest TEXT NOT NULL,
    package TEXT NOT NULL,
    advisory_id TEXT NOT NULL,
    vulnerability TEXT NOT NULL,
    class TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    UNIQUE (digest, package, vulnerability)
);

-- Background jobs. A worker claims a due job by moving locked_until into the future
-- with compare-and-set, so replicas never run one job twice at once, and a crashed
-- worker's job becomes due again when its lease runs out. dedup_key makes enqueueing
-- idempotent (NULL keys never collide). failed_at: attempts exhausted, kept for inspection.
CREATE TABLE jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    dedup_key TEXT,
    payload TEXT NOT NULL,
    run_at BIGINT NOT NULL,
    attempts BIGINT NOT NULL,
    max_attempts BIGINT NOT NULL,
    locked_until BIGINT NOT NULL,
    lock_token TEXT,
    last_error TEXT,
    failed_at BIGINT,
    created_at BIGINT NOT NULL,
    UNIQUE (kind, dedup_key)
);
CREATE INDEX jobs_due ON jobs (run_at) WHERE failed_at IS NULL;

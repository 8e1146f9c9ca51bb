-- Inventories stored once, not once per manifest. An image's inventory is split into
-- parts, one per layer that introduced packages, and each part is stored once under a
-- hash of its rows (`content`, computed by the scanning service): a thousand manifests
-- pointing at one layer of 200,000 packages share one copy of its rows. An image is the
-- join of its parts (image_parts).
--
-- A part is written under a fresh id in bounded transactions and only gets its
-- `content` once every row is in, so a scan never finds (and a reader never sees) a
-- half-written part; an image's parts are swapped in one short transaction at the end.
-- used_at: when a scan last wrote or reused the part; a part no image references is
-- pruned once used_at is older than a grace period, so a scan that is about to reference
-- it never loses it. A declared seam: id is INTEGER PRIMARY KEY (a rowid) on SQLite and
-- BIGSERIAL PRIMARY KEY on PostgreSQL.
CREATE TABLE inventory_parts (
    id INTEGER PRIMARY KEY,
    content TEXT,
    packages BIGINT NOT NULL,
    used_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX inventory_parts_by_content ON inventory_parts (content);

-- The rows of each part: what image_packages held, without the image's digest.
CREATE TABLE part_packages (
    part BIGINT NOT NULL,
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
    PRIMARY KEY (part, purl, path)
);
CREATE INDEX part_packages_by_package ON part_packages (ecosystem, match_name);

CREATE TABLE image_parts (
    digest TEXT NOT NULL,
    part BIGINT NOT NULL,
    PRIMARY KEY (digest, part)
);
CREATE INDEX image_parts_by_part ON image_parts (part);

-- A scan's findings on their way in: written in bounded transactions under a batch no
-- reader looks at, then moved into findings by set-based statements in the scan's last
-- transaction, and deleted. Batches of scans that died midway are swept after an hour.
CREATE TABLE finding_batches (
    id INTEGER PRIMARY KEY,
    digest TEXT NOT NULL,
    created_at BIGINT NOT NULL
);

CREATE TABLE staged_findings (
    batch BIGINT NOT NULL,
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
    PRIMARY KEY (batch, package, advisory_id)
);

-- Why a scan's results are partial (an inventory or its findings over a cap); NULL when
-- they are complete.
ALTER TABLE image_scans ADD COLUMN incomplete TEXT;

-- Existing inventories become one part per image, under a key no hash of rows can take
-- (so they are never shared), and used_at 0: pruned as soon as a rescan replaces them.
INSERT INTO inventory_parts (content, packages, used_at)
SELECT 'legacy:' || digest, COUNT(*), 0 FROM image_packages GROUP BY digest;

INSERT INTO part_packages (part, purl, path, ecosystem, release, name, match_name, version, source_name, source_version, layer)
SELECT p.id, i.purl, i.path, i.ecosystem, i.release, i.name, i.match_name, i.version, i.source_name, i.source_version, i.layer
FROM image_packages i JOIN inventory_parts p ON p.content = 'legacy:' || i.digest;

INSERT INTO image_parts (digest, part)
SELECT substr(content, 8), id FROM inventory_parts WHERE content LIKE 'legacy:%';

DROP TABLE image_packages;

-- What customers may pull of a live listing's tier repositories: the tags a moderator
-- released, each as it pointed then (a tag pushed again is a new version awaiting review),
-- and every manifest those releases reference (the tags' manifests and, for an index, its
-- children), for pulls by digest. Members of the namespace and staff pull everything
-- (`Action::PullUnreleased`). Written by the catalog when a listing enters the store, a
-- revision is approved or a moderator releases new versions; read by the registry.
CREATE TABLE released_tags (
    repository TEXT NOT NULL,
    tag TEXT NOT NULL,
    digest TEXT NOT NULL,
    released_at BIGINT NOT NULL,
    PRIMARY KEY (repository, tag)
);

CREATE TABLE released_manifests (
    repository TEXT NOT NULL,
    digest TEXT NOT NULL,
    PRIMARY KEY (repository, digest)
);

-- Before releases, every tag of a live listing's tier repository was offered: they are
-- released as they are, so upgrading takes nothing from customers.
INSERT INTO released_tags (repository, tag, digest, released_at)
SELECT DISTINCT g.repository, g.name, g.digest, g.updated_at
FROM tags g
JOIN tiers t ON t.repository = g.repository
JOIN listings l ON l.id = t.listing_id
WHERE l.status IN ('published', 'on_hold');

INSERT INTO released_manifests (repository, digest)
SELECT DISTINCT repository, digest FROM released_tags;

INSERT INTO released_manifests (repository, digest)
SELECT DISTINCT r.repository, r.child
FROM manifest_references r
JOIN released_manifests m ON m.repository = r.repository AND m.digest = r.manifest
WHERE r.kind = 'manifest'
  AND NOT EXISTS (SELECT 1 FROM released_manifests x WHERE x.repository = r.repository AND x.digest = r.child);

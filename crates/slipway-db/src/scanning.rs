//! Queries behind security scanning: the advisory feed, the layer cache, image scans
//! with their inventory and findings, re-assessment after feed changes, and the events
//! it emits.

use std::collections::{BTreeSet, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};

use sqlx::{Any, Transaction};

use crate::{DbError, ScanningDb};

/// A normalised advisory to store.
#[derive(Clone, Debug)]
pub struct AdvisoryRow {
    pub id: String,
    pub modified: String,
    pub withdrawn: Option<String>,
    /// The advisory as JSON.
    pub content: String,
    /// A hash of `content`: an import whose hash matches the stored one changes nothing.
    pub content_hash: String,
    /// The packages it affects; none for a withdrawn advisory, which never matches.
    pub packages: Vec<AdvisoryPackage>,
}

/// A package an advisory names: OSV ecosystem, normalised name, release ('' for all).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct AdvisoryPackage {
    pub ecosystem: String,
    pub name: String,
    pub release: String,
}

/// What a batch of advisories did to the stored feed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AdvisoryCounts {
    pub imported: u64,
    pub updated: u64,
    pub unchanged: u64,
}

/// One import or sync of the feed.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FeedRevisionRecord {
    pub revision: i64,
    pub source: String,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub imported: i64,
    pub updated: i64,
    pub unchanged: i64,
    pub rejected: i64,
}

/// The stored feed at a glance.
#[derive(Clone, Debug, Default)]
pub struct FeedTotals {
    pub advisories: i64,
    pub withdrawn: i64,
    /// Packages whose images still wait for re-assessment.
    pub pending_changes: i64,
    pub scanned_images: i64,
}

/// What `feed sync` last saw at a URL.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct FeedSourceRecord {
    pub url: String,
    pub etag: Option<String>,
    pub last_modified: Option<String>,
    pub checked_at: i64,
    pub changed_at: Option<i64>,
    pub last_error: Option<String>,
}

/// A package whose advisories changed at `revision`.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct FeedChange {
    pub ecosystem: String,
    pub name: String,
    pub revision: i64,
}

/// The outcome of scanning one image manifest.
#[derive(Clone, Debug)]
pub struct NewImageScan<'a> {
    pub digest: &'a str,
    /// `done`, `failed` or `unsupported`.
    pub status: &'a str,
    pub analyzer_version: i64,
    pub feed_revision: i64,
    pub os: Option<&'a str>,
    pub error: Option<&'a str>,
    pub layers_analyzed: i64,
    pub layers_cached: i64,
    /// Why the results are partial (an inventory or its findings over a cap); `None`
    /// when they are complete.
    pub incomplete: Option<&'a str>,
}

/// Part of an image's inventory (the packages one layer introduced), stored once
/// however many images hold it.
#[derive(Clone, Copy, Debug)]
pub struct InventoryPart<'a> {
    /// What identifies the rows: a collision-resistant hash of them (every field but
    /// the digest). Images with parts of equal content share their rows.
    pub content: &'a str,
    /// The rows; their `digest` is not stored (an image's rows carry its own).
    pub packages: &'a [ImagePackageRecord],
}

/// The latest scan of an image manifest, with its findings counted per policy class.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ImageScanRecord {
    pub digest: String,
    pub status: String,
    pub scanned_at: i64,
    pub analyzer_version: i64,
    pub feed_revision: i64,
    pub os: Option<String>,
    pub error: Option<String>,
    /// Why the results are partial; `None` when they are complete.
    pub incomplete: Option<String>,
    pub layers_analyzed: i64,
    pub layers_cached: i64,
    pub critical: i64,
    pub major: i64,
    pub minor: i64,
    pub unrated: i64,
}

/// A package of an image: a row of the re-assessment index.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ImagePackageRecord {
    pub digest: String,
    pub purl: String,
    /// The file the package was found in.
    pub path: String,
    /// The OSV ecosystem (`Debian`, `PyPI`).
    pub ecosystem: String,
    /// The distribution release, '' for language packages.
    pub release: String,
    pub name: String,
    /// The name advisories use for it: the source package for distributions, normalised.
    pub match_name: String,
    pub version: String,
    pub source_name: Option<String>,
    pub source_version: Option<String>,
    /// The layer that introduced this version of the package.
    pub layer: String,
}

/// An advisory affecting a package of an image.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct FindingRecord {
    pub digest: String,
    /// The package's purl.
    pub package: String,
    pub advisory_id: String,
    pub ecosystem: String,
    pub match_name: String,
    pub package_name: String,
    /// JSON array of aliases, CVE ids first.
    pub aliases: String,
    pub installed_version: String,
    pub fixed_version: Option<String>,
    /// `fix_available`, `unfixed` or `will_not_fix`.
    pub status: String,
    /// The severity as JSON.
    pub severity: Option<String>,
    /// `critical`, `major`, `minor` or `unrated`.
    pub class: String,
    /// When the finding was first stored; an earlier stored value wins over this one.
    pub first_seen: i64,
}

/// A vulnerability re-assessment found in an image already scanned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewVulnerabilityEvent {
    pub digest: String,
    pub package: String,
    pub advisory_id: String,
    /// The CVE id, or the advisory id when it names no CVE.
    pub vulnerability: String,
    pub class: String,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct VulnerabilityEventRecord {
    pub id: i64,
    pub digest: String,
    pub package: String,
    pub advisory_id: String,
    pub vulnerability: String,
    pub class: String,
    pub created_at: i64,
}

/// What re-matching one changed package does to the stored findings.
#[derive(Clone, Debug, Default)]
pub struct Rematch {
    pub added: Vec<FindingRecord>,
    /// Findings still present whose details (fix, severity, aliases) changed.
    pub updated: Vec<FindingRecord>,
    /// (digest, package, advisory id) of findings that no longer match.
    pub removed: Vec<(String, String, String)>,
    pub events: Vec<NewVulnerabilityEvent>,
}

/// Rows one multi-row statement writes: a re-match touching every image writes tens of
/// thousands, and a statement each would cost a round trip each. Not more: sqlx binds
/// SQLite's parameters by name, looking each up among all of the statement's, so a
/// statement's binding time grows with the square of its parameters.
const ROWS_PER_STATEMENT: usize = 100;

/// Inventory rows written per transaction: a few milliseconds of SQLite's one write
/// lock, so a scan of a large image never stalls other writers (pushes, sign-ins) for
/// long.
const ROWS_PER_TRANSACTION: usize = 2_000;

/// How long an inventory part no image names is kept after a scan last wrote or reused
/// it: far longer than a scan takes between storing its parts and naming them.
const PART_GRACE_MS: i64 = 3_600_000;

/// A part no image names and no scan used within the grace period ($2: its start).
const UNUSED_PART: &str = "used_at < $2 AND NOT EXISTS (SELECT 1 FROM image_parts i WHERE i.part = inventory_parts.id)";

/// How often a process sweeps every unused part (those of scans that died midway); the
/// parts an image stops naming are pruned at once.
const SWEEP_INTERVAL_MS: i64 = 600_000;
static LAST_SWEEP: AtomicI64 = AtomicI64::new(0);

impl ScanningDb {
    // ---- the feed ------------------------------------------------------------------------

    /// Opens a feed revision for an import from `source`.
    pub async fn begin_feed_revision(&self, source: &str) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar::<Any, i64>(
            "INSERT INTO feed_revisions (source, started_at, imported, updated, unchanged, rejected)
             VALUES ($1, $2, 0, 0, 0, 0) RETURNING revision",
        )
        .bind(source)
        .bind(self.clock.now_ms())
        .fetch_one(&self.write)
        .await?)
    }

    /// Closes a feed revision with what its import did.
    pub async fn finish_feed_revision(&self, revision: i64, counts: AdvisoryCounts, rejected: u64) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE feed_revisions SET finished_at = $1, imported = $2, updated = $3, unchanged = $4, rejected = $5 WHERE revision = $6",
        )
        .bind(self.clock.now_ms())
        .bind(counts.imported as i64)
        .bind(counts.updated as i64)
        .bind(counts.unchanged as i64)
        .bind(rejected as i64)
        .bind(revision)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The latest feed revision (0 before any import).
    pub async fn feed_revision(&self) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar::<Any, i64>("SELECT COALESCE(MAX(revision), 0) FROM feed_revisions").fetch_one(&self.read).await?)
    }

    /// The most recent feed revisions, newest first.
    pub async fn feed_revisions(&self, limit: i64) -> Result<Vec<FeedRevisionRecord>, DbError> {
        Ok(sqlx::query_as::<Any, FeedRevisionRecord>(
            "SELECT revision, source, started_at, finished_at, imported, updated, unchanged, rejected
             FROM feed_revisions ORDER BY revision DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    pub async fn feed_totals(&self) -> Result<FeedTotals, DbError> {
        let count = |sql: &'static str| async move { sqlx::query_scalar::<Any, i64>(sql).fetch_one(&self.read).await };
        Ok(FeedTotals {
            advisories: count("SELECT COUNT(*) FROM advisories").await?,
            withdrawn: count("SELECT COUNT(*) FROM advisories WHERE withdrawn IS NOT NULL").await?,
            pending_changes: count("SELECT COUNT(*) FROM feed_changes").await?,
            scanned_images: count("SELECT COUNT(*) FROM image_scans").await?,
        })
    }

    /// Stores a batch of advisories in one transaction, skipping unchanged ones. Every
    /// package a new or changed advisory names, before or after the change, is noted in
    /// `feed_changes` for re-assessment.
    pub async fn upsert_advisories(&self, revision: i64, source: &str, rows: &[AdvisoryRow]) -> Result<AdvisoryCounts, DbError> {
        let now = self.clock.now_ms();
        let mut counts = AdvisoryCounts::default();
        let mut tx = self.begin_write().await?;
        for row in rows {
            let stored = sqlx::query_scalar::<Any, String>("SELECT content_hash FROM advisories WHERE id = $1")
                .bind(&row.id)
                .fetch_optional(&mut *tx)
                .await?;
            let mut changed: BTreeSet<(String, String)> = row.packages.iter().map(|p| (p.ecosystem.clone(), p.name.clone())).collect();
            match stored {
                Some(hash) if hash == row.content_hash => {
                    counts.unchanged += 1;
                    continue;
                }
                Some(_) => {
                    let before =
                        sqlx::query_as::<Any, (String, String)>("SELECT ecosystem, name FROM advisory_packages WHERE advisory_id = $1")
                            .bind(&row.id)
                            .fetch_all(&mut *tx)
                            .await?;
                    changed.extend(before);
                    sqlx::query("DELETE FROM advisory_packages WHERE advisory_id = $1").bind(&row.id).execute(&mut *tx).await?;
                    sqlx::query(
                        "UPDATE advisories SET modified = $1, withdrawn = $2, content_hash = $3, content = $4, source = $5,
                           revision = $6, imported_at = $7
                         WHERE id = $8",
                    )
                    .bind(&row.modified)
                    .bind(row.withdrawn.as_deref())
                    .bind(&row.content_hash)
                    .bind(&row.content)
                    .bind(source)
                    .bind(revision)
                    .bind(now)
                    .bind(&row.id)
                    .execute(&mut *tx)
                    .await?;
                    counts.updated += 1;
                }
                None => {
                    sqlx::query(
                        "INSERT INTO advisories (id, modified, withdrawn, content_hash, content, source, revision, imported_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                    )
                    .bind(&row.id)
                    .bind(&row.modified)
                    .bind(row.withdrawn.as_deref())
                    .bind(&row.content_hash)
                    .bind(&row.content)
                    .bind(source)
                    .bind(revision)
                    .bind(now)
                    .execute(&mut *tx)
                    .await?;
                    counts.imported += 1;
                }
            }
            for package in &row.packages {
                sqlx::query(
                    "INSERT INTO advisory_packages (ecosystem, name, release, advisory_id) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                )
                .bind(&package.ecosystem)
                .bind(&package.name)
                .bind(&package.release)
                .bind(&row.id)
                .execute(&mut *tx)
                .await?;
            }
            for (ecosystem, name) in changed {
                sqlx::query(
                    "INSERT INTO feed_changes (ecosystem, name, revision) VALUES ($1, $2, $3)
                     ON CONFLICT (ecosystem, name) DO UPDATE SET revision = excluded.revision",
                )
                .bind(ecosystem)
                .bind(name)
                .bind(revision)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(counts)
    }

    /// The advisories (as JSON) that name any of `packages` ((ecosystem, name) pairs),
    /// withdrawn ones excepted. One naming several of them may come more than once.
    pub async fn advisories_naming(&self, packages: &[(&str, &str)]) -> Result<Vec<String>, DbError> {
        let mut contents = Vec::new();
        for chunk in packages.chunks(ROWS_PER_STATEMENT) {
            // ORs, each looked up in the primary key (see write_rematch).
            let keys: Vec<String> = (0..chunk.len()).map(|i| format!("(ecosystem = ${} AND name = ${})", 2 * i + 1, 2 * i + 2)).collect();
            let sql = format!(
                "SELECT content FROM advisories WHERE id IN (SELECT advisory_id FROM advisory_packages WHERE {}) ORDER BY id",
                keys.join(" OR ")
            );
            let mut query = sqlx::query_scalar::<Any, String>(sqlx::AssertSqlSafe(sql));
            for (ecosystem, name) in chunk {
                query = query.bind(*ecosystem).bind(*name);
            }
            contents.extend(query.fetch_all(&self.read).await?);
        }
        Ok(contents)
    }

    pub async fn feed_source(&self, url: &str) -> Result<Option<FeedSourceRecord>, DbError> {
        Ok(sqlx::query_as::<Any, FeedSourceRecord>(
            "SELECT url, etag, last_modified, checked_at, changed_at, last_error FROM feed_sources WHERE url = $1",
        )
        .bind(url)
        .fetch_optional(&self.read)
        .await?)
    }

    pub async fn feed_sources(&self) -> Result<Vec<FeedSourceRecord>, DbError> {
        Ok(sqlx::query_as::<Any, FeedSourceRecord>(
            "SELECT url, etag, last_modified, checked_at, changed_at, last_error FROM feed_sources ORDER BY url",
        )
        .fetch_all(&self.read)
        .await?)
    }

    /// Records a successful check of a feed URL: its validators, and whether it changed.
    pub async fn feed_source_checked(
        &self,
        url: &str,
        etag: Option<&str>,
        last_modified: Option<&str>,
        changed: bool,
    ) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        sqlx::query(
            "INSERT INTO feed_sources (url, etag, last_modified, checked_at, changed_at, last_error) VALUES ($1, $2, $3, $4, $5, NULL)
             ON CONFLICT (url) DO UPDATE SET etag = excluded.etag, last_modified = excluded.last_modified,
               checked_at = excluded.checked_at, changed_at = COALESCE(excluded.changed_at, feed_sources.changed_at), last_error = NULL",
        )
        .bind(url)
        .bind(etag)
        .bind(last_modified)
        .bind(now)
        .bind(changed.then_some(now))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Records a failed check of a feed URL, keeping its validators.
    pub async fn feed_source_failed(&self, url: &str, error: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO feed_sources (url, checked_at, last_error) VALUES ($1, $2, $3)
             ON CONFLICT (url) DO UPDATE SET checked_at = excluded.checked_at, last_error = excluded.last_error",
        )
        .bind(url)
        .bind(self.clock.now_ms())
        .bind(error)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    // ---- the layer cache -----------------------------------------------------------------

    pub async fn layer_report(&self, digest: &str, analyzer_version: i64) -> Result<Option<Vec<u8>>, DbError> {
        Ok(sqlx::query_scalar::<Any, Vec<u8>>("SELECT report FROM layer_reports WHERE digest = $1 AND analyzer_version = $2")
            .bind(digest)
            .bind(analyzer_version)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Caches a layer's report; a report already cached (by a concurrent scan of the same
    /// layer, which found the same) stays.
    pub async fn put_layer_report(&self, digest: &str, analyzer_version: i64, report: &[u8]) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO layer_reports (digest, analyzer_version, report, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (digest, analyzer_version) DO NOTHING",
        )
        .bind(digest)
        .bind(analyzer_version)
        .bind(report)
        .bind(self.clock.now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    // ---- image scans ---------------------------------------------------------------------

    /// Stores a scan's results: its findings staged where no reader looks and its
    /// inventory parts (each stored once, whatever number of images share it), both in
    /// transactions of at most `ROWS_PER_TRANSACTION` rows; then, in one short
    /// transaction, which parts make up the image, its findings (those seen before keep
    /// their `first_seen`) and the scan record. Readers see either the previous results
    /// or these, never a mix: nothing is named before it is complete.
    pub async fn store_scan(
        &self,
        scan: &NewImageScan<'_>,
        parts: &[InventoryPart<'_>],
        findings: &[FindingRecord],
    ) -> Result<(), DbError> {
        let batch = self.stage_findings(scan.digest, findings).await?;
        let stored = self.store_scan_parts(scan, parts, batch).await;
        if let Err(e) = self.drop_batch(batch).await {
            tracing::warn!("dropping staged findings: {e}");
        }
        stored
    }

    async fn store_scan_parts(&self, scan: &NewImageScan<'_>, parts: &[InventoryPart<'_>], batch: i64) -> Result<(), DbError> {
        // A part pruned between being stored and being named (an hour of grace makes this
        // all but impossible) is stored again.
        for _ in 0..3 {
            let mut ids = Vec::with_capacity(parts.len());
            for part in parts {
                ids.push(self.store_part(part).await?);
            }
            if let Some(dropped) = self.finish_scan(scan, &ids, batch).await? {
                // The parts this image no longer names go now if nothing else uses them;
                // the rest (parts of scans that died) in a sweep every few minutes.
                let now = self.clock.now_ms();
                let sweep = now - LAST_SWEEP.load(Ordering::Relaxed) > SWEEP_INTERVAL_MS;
                if sweep {
                    LAST_SWEEP.store(now, Ordering::Relaxed);
                }
                let pruned = match sweep {
                    true => self.prune_inventory_parts().await,
                    false => self.prune_parts(&dropped).await,
                };
                if let Err(e) = pruned {
                    tracing::warn!("pruning unused inventory parts: {e}");
                }
                return Ok(());
            }
        }
        Err(DbError::Conflict(format!("the inventory parts of {} kept disappearing while its scan was stored", scan.digest)))
    }

    /// The id of a stored part with `part`'s content, storing it first if there is none.
    async fn store_part(&self, part: &InventoryPart<'_>) -> Result<i64, DbError> {
        let now = self.clock.now_ms();
        let reuse = || async {
            sqlx::query_scalar::<Any, i64>("UPDATE inventory_parts SET used_at = $1 WHERE content = $2 RETURNING id")
                .bind(self.clock.now_ms())
                .bind(part.content)
                .fetch_optional(&self.write)
                .await
        };
        if let Some(id) = reuse().await? {
            return Ok(id);
        }
        // A package found twice at one path is one row (as it always was).
        let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(part.packages.len());
        let rows: Vec<&ImagePackageRecord> = part.packages.iter().filter(|p| seen.insert((p.purl.as_str(), p.path.as_str()))).collect();
        let id =
            sqlx::query_scalar::<Any, i64>("INSERT INTO inventory_parts (content, packages, used_at) VALUES (NULL, $1, $2) RETURNING id")
                .bind(rows.len() as i64)
                .bind(now)
                .fetch_one(&self.write)
                .await?;
        // Bounded transactions: a part of 50,000 rows never holds SQLite's one write lock
        // for more than a few milliseconds at a time.
        for chunk in rows.chunks(ROWS_PER_TRANSACTION) {
            let mut tx = self.begin_write().await?;
            for rows in chunk.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO part_packages (part, purl, path, ecosystem, release, name, match_name, version, source_name, source_version, layer)
                     VALUES {} ON CONFLICT (part, purl, path) DO NOTHING",
                    values(rows.len(), 11)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for p in rows {
                    query = query
                        .bind(id)
                        .bind(&p.purl)
                        .bind(&p.path)
                        .bind(&p.ecosystem)
                        .bind(&p.release)
                        .bind(&p.name)
                        .bind(&p.match_name)
                        .bind(&p.version)
                        .bind(p.source_name.as_deref())
                        .bind(p.source_version.as_deref())
                        .bind(&p.layer);
                }
                query.execute(&mut *tx).await?;
            }
            // A part retired by pruning (used_at 0: its writer stalled past the grace
            // period) is not revived.
            let touched = sqlx::query("UPDATE inventory_parts SET used_at = $1 WHERE id = $2 AND used_at > 0")
                .bind(self.clock.now_ms())
                .bind(id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if touched == 0 {
                tx.rollback().await?;
                return Err(DbError::Conflict("an inventory part was pruned while it was written".into()));
            }
            tx.commit().await?;
        }
        // Complete: from now on scans find it by its content.
        let completed = sqlx::query("UPDATE inventory_parts SET content = $1, used_at = $2 WHERE id = $3 AND used_at > 0")
            .bind(part.content)
            .bind(self.clock.now_ms())
            .bind(id)
            .execute(&self.write)
            .await;
        match completed {
            Ok(done) if done.rows_affected() == 1 => Ok(id),
            Ok(_) => Err(DbError::Conflict("an inventory part was pruned while it was written".into())),
            // Another scan stored the same part meanwhile (the content is unique): that
            // one is used, and this copy is left for pruning.
            Err(e) => reuse().await?.ok_or(DbError::from(e)),
        }
    }

    /// Names the image's parts, replaces its findings and records the scan, in one
    /// transaction; returns the parts the image named before and no longer does, or
    /// `None` (and nothing written) if one of the parts was pruned meanwhile.
    async fn finish_scan(&self, scan: &NewImageScan<'_>, parts: &[i64], batch: i64) -> Result<Option<Vec<i64>>, DbError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        let parts: BTreeSet<i64> = parts.iter().copied().collect();
        for part in &parts {
            // Touching the part also serialises with pruning: a prune that saw it unused
            // either ran first (0 rows: store it again) or finds it used now.
            let touched = sqlx::query("UPDATE inventory_parts SET used_at = $1 WHERE id = $2 AND content IS NOT NULL")
                .bind(now)
                .bind(part)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if touched == 0 {
                tx.rollback().await?;
                return Ok(None);
            }
        }
        let dropped: Vec<i64> = sqlx::query_scalar::<Any, i64>("SELECT part FROM image_parts WHERE digest = $1")
            .bind(scan.digest)
            .fetch_all(&mut *tx)
            .await?
            .into_iter()
            .filter(|part| !parts.contains(part))
            .collect();
        sqlx::query("DELETE FROM image_parts WHERE digest = $1").bind(scan.digest).execute(&mut *tx).await?;
        let parts: Vec<i64> = parts.into_iter().collect();
        for chunk in parts.chunks(ROWS_PER_STATEMENT) {
            let sql = format!("INSERT INTO image_parts (digest, part) VALUES {}", values(chunk.len(), 2));
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
            for part in chunk {
                query = query.bind(scan.digest).bind(*part);
            }
            query.execute(&mut *tx).await?;
        }
        // The staged findings replace the stored ones in three set-based statements (no
        // row crosses the connection): gone ones deleted, changed ones updated (keeping
        // when they were first seen), new ones inserted.
        let staged = "FROM staged_findings s WHERE s.batch = $2 AND s.package = findings.package AND s.advisory_id = findings.advisory_id";
        sqlx::query(sqlx::AssertSqlSafe(format!("DELETE FROM findings WHERE digest = $1 AND NOT EXISTS (SELECT 1 {staged})")))
            .bind(scan.digest)
            .bind(batch)
            .execute(&mut *tx)
            .await?;
        let columns = "ecosystem, match_name, package_name, aliases, installed_version, fixed_version, status, severity, class";
        let changed = "(findings.ecosystem, findings.match_name, findings.package_name, findings.aliases, findings.installed_version,
                        findings.fixed_version, findings.status, findings.severity, findings.class)
                       IS DISTINCT FROM (s.ecosystem, s.match_name, s.package_name, s.aliases, s.installed_version,
                        s.fixed_version, s.status, s.severity, s.class)";
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE findings SET ({columns}) = (SELECT {columns} {staged})
             WHERE digest = $1 AND EXISTS (SELECT 1 {staged} AND {changed})"
        )))
        .bind(scan.digest)
        .bind(batch)
        .execute(&mut *tx)
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO findings (digest, package, advisory_id, {columns}, first_seen)
             SELECT $1, package, advisory_id, {columns}, first_seen FROM staged_findings WHERE batch = $2
             ON CONFLICT (digest, package, advisory_id) DO NOTHING"
        )))
        .bind(scan.digest)
        .bind(batch)
        .execute(&mut *tx)
        .await?;
        upsert_scan(&mut tx, scan, self.clock.now_ms()).await?;
        refresh_counts(&mut tx, &[scan.digest], self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(Some(dropped))
    }

    /// Writes a scan's findings where no reader looks (`staged_findings`, under a new
    /// batch), in bounded transactions; the scan's last transaction moves them in.
    async fn stage_findings(&self, digest: &str, findings: &[FindingRecord]) -> Result<i64, DbError> {
        let batch = sqlx::query_scalar::<Any, i64>("INSERT INTO finding_batches (digest, created_at) VALUES ($1, $2) RETURNING id")
            .bind(digest)
            .bind(self.clock.now_ms())
            .fetch_one(&self.write)
            .await?;
        // A finding twice in the list is one finding (the first kept).
        let mut seen: HashSet<(&str, &str)> = HashSet::with_capacity(findings.len());
        let rows: Vec<&FindingRecord> = findings.iter().filter(|f| seen.insert((f.package.as_str(), f.advisory_id.as_str()))).collect();
        for chunk in rows.chunks(ROWS_PER_TRANSACTION) {
            let mut tx = self.begin_write().await?;
            for rows in chunk.chunks(ROWS_PER_STATEMENT) {
                let sql = format!(
                    "INSERT INTO staged_findings (batch, package, advisory_id, ecosystem, match_name, package_name, aliases,
                       installed_version, fixed_version, status, severity, class, first_seen)
                     VALUES {}",
                    values(rows.len(), 13)
                );
                let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
                for f in rows {
                    query = query
                        .bind(batch)
                        .bind(&f.package)
                        .bind(&f.advisory_id)
                        .bind(&f.ecosystem)
                        .bind(&f.match_name)
                        .bind(&f.package_name)
                        .bind(&f.aliases)
                        .bind(&f.installed_version)
                        .bind(f.fixed_version.as_deref())
                        .bind(&f.status)
                        .bind(f.severity.as_deref())
                        .bind(&f.class)
                        .bind(f.first_seen);
                }
                query.execute(&mut *tx).await?;
            }
            tx.commit().await?;
        }
        Ok(batch)
    }

    /// Deletes a batch of staged findings, in bounded statements.
    async fn drop_batch(&self, batch: i64) -> Result<(), DbError> {
        loop {
            let deleted = sqlx::query(
                "DELETE FROM staged_findings WHERE batch = $1 AND package IN
                   (SELECT package FROM staged_findings WHERE batch = $1 ORDER BY package LIMIT $2)",
            )
            .bind(batch)
            .bind(ROWS_PER_TRANSACTION as i64)
            .execute(&self.write)
            .await?
            .rows_affected();
            if deleted == 0 {
                break;
            }
        }
        sqlx::query("DELETE FROM finding_batches WHERE id = $1").bind(batch).execute(&self.write).await?;
        Ok(())
    }

    /// Deletes stored parts that no image names and no scan used within the grace
    /// period; returns how many. A part is first retired (no content: no scan finds it
    /// any more), then its rows are deleted in bounded statements, then the part.
    pub async fn prune_inventory_parts(&self) -> Result<u64, DbError> {
        // Findings staged by scans that died midway.
        let abandoned = sqlx::query_scalar::<Any, i64>("SELECT id FROM finding_batches WHERE created_at < $1")
            .bind(self.clock.now_ms() - PART_GRACE_MS)
            .fetch_all(&self.read)
            .await?;
        for batch in abandoned {
            self.drop_batch(batch).await?;
        }
        let (mut after, mut pruned) = (0, 0);
        loop {
            let candidates = sqlx::query_scalar::<Any, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT id FROM inventory_parts WHERE id > $1 AND {UNUSED_PART} ORDER BY id LIMIT 100"
            )))
            .bind(after)
            .bind(self.clock.now_ms() - PART_GRACE_MS)
            .fetch_all(&self.read)
            .await?;
            let Some(last) = candidates.last() else { return Ok(pruned) };
            after = *last;
            pruned += self.prune_parts(&candidates).await?;
        }
    }

    /// Prunes those of `parts` that are unused (see `prune_inventory_parts`).
    async fn prune_parts(&self, parts: &[i64]) -> Result<u64, DbError> {
        let cutoff = self.clock.now_ms() - PART_GRACE_MS;
        let unused = UNUSED_PART;
        let mut pruned = 0;
        for &id in parts {
            let retired = sqlx::query(sqlx::AssertSqlSafe(format!(
                "UPDATE inventory_parts SET content = NULL, used_at = 0 WHERE id = $1 AND {unused}"
            )))
            .bind(id)
            .bind(cutoff)
            .execute(&self.write)
            .await?
            .rows_affected();
            if retired == 0 {
                continue;
            }
            loop {
                let deleted = sqlx::query(
                    "DELETE FROM part_packages WHERE part = $1 AND purl IN (SELECT purl FROM part_packages WHERE part = $1 ORDER BY purl LIMIT $2)",
                )
                .bind(id)
                .bind(ROWS_PER_TRANSACTION as i64)
                .execute(&self.write)
                .await?
                .rows_affected();
                if deleted == 0 {
                    break;
                }
            }
            sqlx::query("DELETE FROM inventory_parts WHERE id = $1 AND content IS NULL").bind(id).execute(&self.write).await?;
            pruned += 1;
        }
        Ok(pruned)
    }

    /// Records a scan that found nothing to store (failed, or not an image); an earlier
    /// scan's inventory and findings stay.
    pub async fn record_scan_outcome(&self, scan: &NewImageScan<'_>) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        upsert_scan(&mut tx, scan, self.clock.now_ms()).await?;
        refresh_counts(&mut tx, &[scan.digest], self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn image_scan(&self, digest: &str) -> Result<Option<ImageScanRecord>, DbError> {
        Ok(sqlx::query_as::<Any, ImageScanRecord>(
            "SELECT digest, status, scanned_at, analyzer_version, feed_revision, os, error, incomplete, layers_analyzed, layers_cached,
                    critical, major, minor, unrated
             FROM image_scans WHERE digest = $1",
        )
        .bind(digest)
        .fetch_optional(&self.read)
        .await?)
    }

    /// An image's inventory: the rows of the parts it names.
    pub async fn image_packages(&self, digest: &str) -> Result<Vec<ImagePackageRecord>, DbError> {
        Ok(sqlx::query_as::<Any, ImagePackageRecord>(
            "SELECT i.digest, p.purl, p.path, p.ecosystem, p.release, p.name, p.match_name, p.version, p.source_name, p.source_version, p.layer
             FROM image_parts i JOIN part_packages p ON p.part = i.part
             WHERE i.digest = $1 ORDER BY p.ecosystem, p.name, p.version, p.path",
        )
        .bind(digest)
        .fetch_all(&self.read)
        .await?)
    }

    /// Stored inventory rows and parts, counted: what an inventory costs.
    pub async fn inventory_totals(&self) -> Result<(i64, i64), DbError> {
        let rows = sqlx::query_scalar::<Any, i64>("SELECT COUNT(*) FROM part_packages").fetch_one(&self.read).await?;
        let parts = sqlx::query_scalar::<Any, i64>("SELECT COUNT(*) FROM inventory_parts").fetch_one(&self.read).await?;
        Ok((rows, parts))
    }

    pub async fn findings(&self, digest: &str) -> Result<Vec<FindingRecord>, DbError> {
        Ok(sqlx::query_as::<Any, FindingRecord>(
            "SELECT digest, package, advisory_id, ecosystem, match_name, package_name, aliases, installed_version, fixed_version,
                    status, severity, class, first_seen
             FROM findings WHERE digest = $1 ORDER BY package, advisory_id",
        )
        .bind(digest)
        .fetch_all(&self.read)
        .await?)
    }

    // ---- re-assessment -------------------------------------------------------------------

    /// Drops noted changes to packages that no scanned image contains; returns how many.
    pub async fn prune_feed_changes(&self) -> Result<u64, DbError> {
        Ok(sqlx::query(
            "DELETE FROM feed_changes WHERE NOT EXISTS
               (SELECT 1 FROM part_packages p JOIN image_parts i ON i.part = p.part
                WHERE p.ecosystem = feed_changes.ecosystem AND p.match_name = feed_changes.name)",
        )
        .execute(&self.write)
        .await?
        .rows_affected())
    }

    /// Changed packages waiting for re-assessment, in name order.
    pub async fn feed_changes(&self, limit: i64) -> Result<Vec<FeedChange>, DbError> {
        Ok(sqlx::query_as::<Any, FeedChange>("SELECT ecosystem, name, revision FROM feed_changes ORDER BY ecosystem, name LIMIT $1")
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
    }

    /// Every image package that advisories call `match_name` in `ecosystem`.
    pub async fn packages_named(&self, ecosystem: &str, match_name: &str) -> Result<Vec<ImagePackageRecord>, DbError> {
        Ok(sqlx::query_as::<Any, ImagePackageRecord>(
            "SELECT i.digest, p.purl, p.path, p.ecosystem, p.release, p.name, p.match_name, p.version, p.source_name, p.source_version, p.layer
             FROM part_packages p JOIN image_parts i ON i.part = p.part
             WHERE p.ecosystem = $1 AND p.match_name = $2 ORDER BY i.digest, p.purl, p.path",
        )
        .bind(ecosystem)
        .bind(match_name)
        .fetch_all(&self.read)
        .await?)
    }

    /// Every stored finding for packages advisories call `match_name` in `ecosystem`.
    pub async fn findings_named(&self, ecosystem: &str, match_name: &str) -> Result<Vec<FindingRecord>, DbError> {
        Ok(sqlx::query_as::<Any, FindingRecord>(
            "SELECT digest, package, advisory_id, ecosystem, match_name, package_name, aliases, installed_version, fixed_version,
                    status, severity, class, first_seen
             FROM findings WHERE ecosystem = $1 AND match_name = $2 ORDER BY digest, package, advisory_id",
        )
        .bind(ecosystem)
        .bind(match_name)
        .fetch_all(&self.read)
        .await?)
    }

    /// Applies the re-matches of changed packages in one transaction, recounting each
    /// touched image once, and marks each change done unless its package changed again
    /// meanwhile (a later revision). One transaction for many packages: an image that
    /// several changes touch is recounted and its pages written (and, on SQLite,
    /// checkpointed) once, not once per package.
    pub async fn apply_rematches(&self, rematches: &[(FeedChange, Rematch)]) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        let mut touched: BTreeSet<&str> = BTreeSet::new();
        for (change, rematch) in rematches {
            write_rematch(&mut tx, rematch, now).await?;
            touched.extend(
                rematch
                    .added
                    .iter()
                    .chain(&rematch.updated)
                    .map(|f| f.digest.as_str())
                    .chain(rematch.removed.iter().map(|(digest, _, _)| digest.as_str())),
            );
            sqlx::query("DELETE FROM feed_changes WHERE ecosystem = $1 AND name = $2 AND revision = $3")
                .bind(&change.ecosystem)
                .bind(&change.name)
                .bind(change.revision)
                .execute(&mut *tx)
                .await?;
        }
        refresh_counts(&mut tx, &touched.into_iter().collect::<Vec<_>>(), self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Events after `after_id`, oldest first, for the notifier to deliver.
    pub async fn vulnerability_events(&self, after_id: i64, limit: i64) -> Result<Vec<VulnerabilityEventRecord>, DbError> {
        Ok(sqlx::query_as::<Any, VulnerabilityEventRecord>(
            "SELECT id, digest, package, advisory_id, vulnerability, class, created_at
             FROM vulnerability_events WHERE id > $1 ORDER BY id LIMIT $2",
        )
        .bind(after_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }
}

/// `($1, ..., $columns), ...`: the placeholders of `rows` rows of a multi-row statement.
fn values(rows: usize, columns: usize) -> String {
    (0..rows)
        .map(|row| format!("({})", (1..=columns).map(|c| format!("${}", row * columns + c)).collect::<Vec<_>>().join(", ")))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A re-match's findings and events, written into `tx`; the counts are the caller's.
async fn write_rematch(tx: &mut Transaction<'static, Any>, rematch: &Rematch, now: i64) -> Result<(), sqlx::Error> {
    insert_findings(tx, &rematch.added).await?;
    for f in &rematch.updated {
        sqlx::query(
            "UPDATE findings SET aliases = $1, installed_version = $2, fixed_version = $3, status = $4, severity = $5, class = $6
             WHERE digest = $7 AND package = $8 AND advisory_id = $9",
        )
        .bind(&f.aliases)
        .bind(&f.installed_version)
        .bind(f.fixed_version.as_deref())
        .bind(&f.status)
        .bind(f.severity.as_deref())
        .bind(&f.class)
        .bind(&f.digest)
        .bind(&f.package)
        .bind(&f.advisory_id)
        .execute(&mut **tx)
        .await?;
    }
    delete_findings(tx, &rematch.removed).await?;
    for chunk in rematch.events.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO vulnerability_events (digest, package, advisory_id, vulnerability, class, created_at)
             VALUES {} ON CONFLICT (digest, package, vulnerability) DO NOTHING",
            values(chunk.len(), 6)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for e in chunk {
            query = query.bind(&e.digest).bind(&e.package).bind(&e.advisory_id).bind(&e.vulnerability).bind(&e.class).bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Deletes findings by (digest, package, advisory id).
async fn delete_findings(tx: &mut Transaction<'static, Any>, keys: &[(String, String, String)]) -> Result<(), sqlx::Error> {
    for chunk in keys.chunks(ROWS_PER_STATEMENT) {
        // ORs: SQLite scans the whole table for a row value IN (VALUES ...), and looks
        // each of these up in the primary key.
        let keys: Vec<String> = (0..chunk.len())
            .map(|i| format!("(digest = ${} AND package = ${} AND advisory_id = ${})", 3 * i + 1, 3 * i + 2, 3 * i + 3))
            .collect();
        let sql = format!("DELETE FROM findings WHERE {}", keys.join(" OR "));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (digest, package, advisory) in chunk {
            query = query.bind(digest).bind(package).bind(advisory);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Inserts findings; one already stored stays.
async fn insert_findings(tx: &mut Transaction<'static, Any>, findings: &[FindingRecord]) -> Result<(), sqlx::Error> {
    write_findings(tx, findings, "DO NOTHING").await
}

/// Inserts findings, doing `on_conflict` with those already stored.
async fn write_findings(
    tx: &mut Transaction<'static, Any>,
    findings: &[FindingRecord],
    on_conflict: &'static str,
) -> Result<(), sqlx::Error> {
    for chunk in findings.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "INSERT INTO findings (digest, package, advisory_id, ecosystem, match_name, package_name, aliases,
               installed_version, fixed_version, status, severity, class, first_seen)
             VALUES {} ON CONFLICT (digest, package, advisory_id) {on_conflict}",
            values(chunk.len(), 13)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for f in chunk {
            query = query
                .bind(&f.digest)
                .bind(&f.package)
                .bind(&f.advisory_id)
                .bind(&f.ecosystem)
                .bind(&f.match_name)
                .bind(&f.package_name)
                .bind(&f.aliases)
                .bind(&f.installed_version)
                .bind(f.fixed_version.as_deref())
                .bind(&f.status)
                .bind(f.severity.as_deref())
                .bind(&f.class)
                .bind(f.first_seen);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn upsert_scan(tx: &mut Transaction<'static, Any>, scan: &NewImageScan<'_>, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO image_scans (digest, status, scanned_at, analyzer_version, feed_revision, os, error, layers_analyzed, layers_cached,
                                  critical, major, minor, unrated, incomplete)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, 0, 0, 0, 0, $10)
         ON CONFLICT (digest) DO UPDATE SET status = excluded.status, scanned_at = excluded.scanned_at,
           analyzer_version = excluded.analyzer_version, feed_revision = excluded.feed_revision, os = excluded.os,
           error = excluded.error, layers_analyzed = excluded.layers_analyzed, layers_cached = excluded.layers_cached,
           incomplete = COALESCE(excluded.incomplete, CASE WHEN excluded.status = 'done' THEN NULL ELSE image_scans.incomplete END)",
    )
    .bind(scan.digest)
    .bind(scan.status)
    .bind(now)
    .bind(scan.analyzer_version)
    .bind(scan.feed_revision)
    .bind(scan.os)
    .bind(scan.error)
    .bind(scan.layers_analyzed)
    .bind(scan.layers_cached)
    .bind(scan.incomplete)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The CVE ids a finding is about (its advisory's id and `aliases`, a JSON array), or its
/// advisory's id when it names none: what events, notices and the security team's classes
/// are about, so two advisories about one CVE (a distribution's and GitHub's) are one
/// vulnerability.
pub fn vulnerability_ids(advisory_id: &str, aliases: &str) -> Vec<String> {
    let aliases: Vec<String> = serde_json::from_str(aliases).unwrap_or_default();
    let mut cves: Vec<String> = Vec::new();
    for id in std::iter::once(advisory_id).chain(aliases.iter().map(String::as_str)) {
        if id.starts_with("CVE-") && !cves.iter().any(|c| c == id) {
            cves.push(id.to_owned());
        }
    }
    if cves.is_empty() {
        cves.push(advisory_id.to_owned());
    }
    cves
}

/// Recounts images' findings per class from the findings themselves, reading each
/// image's findings once, and marks them changed at `now` (the vulnerability policy
/// reports the released ones changed since its last run).
async fn refresh_counts(tx: &mut Transaction<'static, Any>, digests: &[&str], now: i64) -> Result<(), sqlx::Error> {
    for chunk in digests.chunks(ROWS_PER_STATEMENT) {
        let sql = format!(
            "UPDATE image_scans SET (critical, major, minor, unrated) = (
               SELECT COUNT(CASE WHEN class = 'critical' THEN 1 END), COUNT(CASE WHEN class = 'major' THEN 1 END),
                      COUNT(CASE WHEN class = 'minor' THEN 1 END), COUNT(CASE WHEN class = 'unrated' THEN 1 END)
               FROM findings WHERE findings.digest = image_scans.digest), changed_at = ${}
             WHERE digest IN (VALUES {})",
            chunk.len() + 1,
            values(chunk.len(), 1)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for digest in chunk {
            query = query.bind(*digest);
        }
        query.bind(now).execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{NewManifest, now_ms, test_databases};

    fn advisory(id: &str, hash: &str, packages: &[(&str, &str, &str)]) -> AdvisoryRow {
        AdvisoryRow {
            id: id.into(),
            modified: "2024-01-01T00:00:00Z".into(),
            withdrawn: None,
            content: format!("{{\"id\":\"{id}\",\"v\":\"{hash}\"}}"),
            content_hash: hash.into(),
            packages: packages
                .iter()
                .map(|(ecosystem, name, release)| AdvisoryPackage {
                    ecosystem: (*ecosystem).into(),
                    name: (*name).into(),
                    release: (*release).into(),
                })
                .collect(),
        }
    }

    fn package(digest: &str, name: &str, version: &str) -> ImagePackageRecord {
        ImagePackageRecord {
            digest: digest.into(),
            purl: format!("pkg:pypi/{name}@{version}"),
            path: format!("site-packages/{name}.dist-info/METADATA"),
            ecosystem: "PyPI".into(),
            release: String::new(),
            name: name.into(),
            match_name: name.into(),
            version: version.into(),
            source_name: None,
            source_version: None,
            layer: "sha256:l1".into(),
        }
    }

    fn finding(digest: &str, name: &str, advisory: &str, class: &str, first_seen: i64) -> FindingRecord {
        FindingRecord {
            digest: digest.into(),
            package: format!("pkg:pypi/{name}@1.0"),
            advisory_id: advisory.into(),
            ecosystem: "PyPI".into(),
            match_name: name.into(),
            package_name: name.into(),
            aliases: "[\"CVE-2024-1\"]".into(),
            installed_version: "1.0".into(),
            fixed_version: Some("1.1".into()),
            status: "fix_available".into(),
            severity: None,
            class: class.into(),
            first_seen,
        }
    }

    fn scan(digest: &str) -> NewImageScan<'_> {
        NewImageScan {
            digest,
            status: "done",
            analyzer_version: 1,
            feed_revision: 1,
            os: Some("Debian 12"),
            error: None,
            layers_analyzed: 2,
            layers_cached: 0,
            incomplete: None,
        }
    }

    /// Stores a scan whose packages make one inventory part, keyed by the rows themselves
    /// (the scanning service keys parts by a hash of them).
    async fn store(db: &ScanningDb, scan: &NewImageScan<'_>, packages: &[ImagePackageRecord], findings: &[FindingRecord]) {
        let content: Vec<String> = packages.iter().map(|p| format!("{}|{}|{}|{}", p.purl, p.path, p.version, p.layer)).collect();
        let content = content.join("\n");
        db.store_scan(scan, &[InventoryPart { content: &content, packages }], findings).await.unwrap();
    }

    fn names(changes: &[FeedChange]) -> Vec<(&str, &str, i64)> {
        changes.iter().map(|c| (c.ecosystem.as_str(), c.name.as_str(), c.revision)).collect()
    }

    #[tokio::test]
    async fn advisories_upsert_by_content_and_note_what_changed() {
        for (db, _dir) in test_databases().await {
            let db = db.scanning();
            assert_eq!(db.feed_revision().await.unwrap(), 0);
            let r1 = db.begin_feed_revision("import a").await.unwrap();
            let rows = [
                advisory("A-1", "h1", &[("PyPI", "jinja2", ""), ("PyPI", "jinja2", "")]),
                advisory("D-1", "h1", &[("Debian", "zlib", "12"), ("Debian", "zlib", "11")]),
            ];
            let counts = db.upsert_advisories(r1, "import a", &rows).await.unwrap();
            assert_eq!(counts, AdvisoryCounts { imported: 2, updated: 0, unchanged: 0 });
            db.finish_feed_revision(r1, counts, 3).await.unwrap();
            assert_eq!(names(&db.feed_changes(10).await.unwrap()), [("Debian", "zlib", r1), ("PyPI", "jinja2", r1)]);
            assert_eq!(db.advisories_naming(&[("Debian", "zlib")]).await.unwrap(), [rows[1].content.clone()]);

            // A-1 now names another package and D-1 is withdrawn: the packages named before
            // and after are noted; D-1 no longer matches anything.
            let r2 = db.begin_feed_revision("import b").await.unwrap();
            assert!(r2 > r1);
            let mut withdrawn = advisory("D-1", "h2", &[]);
            withdrawn.withdrawn = Some("2024-02-01T00:00:00Z".into());
            let rows = [advisory("A-1", "h2", &[("PyPI", "markupsafe", "")]), withdrawn, advisory("A-2", "h1", &[])];
            let counts = db.upsert_advisories(r2, "import b", &rows).await.unwrap();
            assert_eq!(counts, AdvisoryCounts { imported: 1, updated: 2, unchanged: 0 });
            assert_eq!(
                names(&db.feed_changes(10).await.unwrap()),
                [("Debian", "zlib", r2), ("PyPI", "jinja2", r2), ("PyPI", "markupsafe", r2)]
            );
            assert!(db.advisories_naming(&[("Debian", "zlib")]).await.unwrap().is_empty());
            assert!(db.advisories_naming(&[("PyPI", "jinja2")]).await.unwrap().is_empty());
            assert_eq!(db.advisories_naming(&[("PyPI", "markupsafe"), ("PyPI", "jinja2")]).await.unwrap().len(), 1);
            let again = db.upsert_advisories(r2, "import b", &rows).await.unwrap();
            assert_eq!(again, AdvisoryCounts { imported: 0, updated: 0, unchanged: 3 });

            let totals = db.feed_totals().await.unwrap();
            assert_eq!((totals.advisories, totals.withdrawn, totals.pending_changes, totals.scanned_images), (3, 1, 3, 0));
            let revisions = db.feed_revisions(10).await.unwrap();
            assert_eq!(revisions.iter().map(|r| r.revision).collect::<Vec<_>>(), [r2, r1]);
            assert_eq!((revisions[1].imported, revisions[1].rejected, revisions[1].finished_at.is_some()), (2, 3, true));
            assert_eq!(revisions[0].finished_at, None);
            assert_eq!(db.feed_revision().await.unwrap(), r2);

            // Only packages some image contains stay for re-assessment.
            store(&db, &scan("sha256:i1"), &[package("sha256:i1", "jinja2", "3.1.2")], &[]).await;
            assert_eq!(db.prune_feed_changes().await.unwrap(), 2);
            assert_eq!(names(&db.feed_changes(10).await.unwrap()), [("PyPI", "jinja2", r2)]);
        }
    }

    #[tokio::test]
    async fn feed_sources_keep_validators_across_failures() {
        for (db, _dir) in test_databases().await {
            let db = db.scanning();
            let url = "file:///feeds/pypi.zip";
            assert!(db.feed_source(url).await.unwrap().is_none());
            db.feed_source_checked(url, Some("\"e1\""), Some("Mon, 01 Jan 2024 00:00:00 GMT"), true).await.unwrap();
            let first = db.feed_source(url).await.unwrap().unwrap();
            assert!(first.changed_at.is_some());
            db.feed_source_failed(url, "connection refused").await.unwrap();
            let failed = db.feed_source(url).await.unwrap().unwrap();
            assert_eq!((failed.etag.as_deref(), failed.last_error.as_deref()), (Some("\"e1\""), Some("connection refused")));
            db.feed_source_checked(url, Some("\"e1\""), None, false).await.unwrap();
            let unchanged = db.feed_source(url).await.unwrap().unwrap();
            assert_eq!((unchanged.changed_at, unchanged.last_error), (first.changed_at, None));
            assert_eq!(db.feed_sources().await.unwrap().len(), 1);
        }
    }

    #[tokio::test]
    async fn layer_reports_are_cached_per_analyzer_version() {
        for (db, _dir) in test_databases().await {
            let db = db.scanning();
            db.put_layer_report("sha256:l1", 1, b"first").await.unwrap();
            db.put_layer_report("sha256:l1", 1, b"second").await.unwrap();
            assert_eq!(db.layer_report("sha256:l1", 1).await.unwrap().as_deref(), Some(&b"first"[..]));
            assert!(db.layer_report("sha256:l1", 2).await.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn scans_replace_inventory_and_keep_first_seen() {
        for (db, _dir) in test_databases().await {
            let db = db.scanning();
            let d = "sha256:i1";
            let findings = [
                finding(d, "jinja2", "A-1", "major", 100),
                finding(d, "jinja2", "A-2", "critical", 100),
                finding(d, "pyyaml", "A-3", "unrated", 100),
            ];
            store(&db, &scan(d), &[package(d, "jinja2", "1.0"), package(d, "pyyaml", "1.0")], &findings).await;
            let stored = db.image_scan(d).await.unwrap().unwrap();
            assert_eq!((stored.critical, stored.major, stored.minor, stored.unrated), (1, 1, 0, 1));
            assert_eq!((stored.status.as_str(), stored.os.as_deref(), stored.layers_analyzed), ("done", Some("Debian 12"), 2));

            // A rescan: one finding gone, one new; the one kept keeps when it was first seen.
            let rescan = [finding(d, "jinja2", "A-1", "major", 500), finding(d, "jinja2", "A-4", "minor", 500)];
            store(&db, &NewImageScan { layers_analyzed: 0, layers_cached: 2, ..scan(d) }, &[package(d, "jinja2", "1.0")], &rescan).await;
            let stored = db.findings(d).await.unwrap();
            assert_eq!(stored.iter().map(|f| (f.advisory_id.as_str(), f.first_seen)).collect::<Vec<_>>(), [("A-1", 100), ("A-4", 500)]);
            assert_eq!(db.image_packages(d).await.unwrap(), [package(d, "jinja2", "1.0")]);
            let counts = db.image_scan(d).await.unwrap().unwrap();
            assert_eq!((counts.critical, counts.major, counts.minor, counts.unrated, counts.layers_cached), (0, 1, 1, 0, 2));

            // A failed rescan records the failure and leaves the results.
            db.record_scan_outcome(&NewImageScan { status: "failed", error: Some("layer is corrupt"), ..scan(d) }).await.unwrap();
            let failed = db.image_scan(d).await.unwrap().unwrap();
            assert_eq!((failed.status.as_str(), failed.error.as_deref(), failed.major), ("failed", Some("layer is corrupt"), 1));
            assert_eq!(db.findings(d).await.unwrap().len(), 2);
            assert!(db.image_scan("sha256:none").await.unwrap().is_none());
        }
    }

    fn layer_package(name: &str, layer: &str) -> ImagePackageRecord {
        ImagePackageRecord { layer: layer.into(), ..package("", name, "1.0") }
    }

    /// Issue 14, item 5: each manifest pointing at a layer of many packages stored all of
    /// them again (200,000 rows per 449-byte manifest). A layer's part is stored once, in
    /// bounded transactions, and each image still reads its whole inventory.
    #[tokio::test]
    async fn a_large_layer_shared_by_three_manifests_is_stored_once() {
        for (db, _dir) in test_databases().await {
            let db = db.scanning();
            let big: Vec<ImagePackageRecord> = (0..5_000).map(|i| layer_package(&format!("pkg{i:05}"), "sha256:big")).collect();
            let digests = ["sha256:m1", "sha256:m2", "sha256:m3"];
            for (n, digest) in digests.iter().enumerate() {
                let own = [layer_package(&format!("own{n}"), &format!("sha256:small{n}"))];
                let own_key = format!("small{n}");
                let parts = [InventoryPart { content: "big", packages: &big }, InventoryPart { content: &own_key, packages: &own }];
                db.store_scan(&scan(digest), &parts, &[]).await.unwrap();
            }
            assert_eq!(db.inventory_totals().await.unwrap(), (5_003, 4), "the big layer's rows once, plus one row per manifest");
            for digest in digests {
                let packages = db.image_packages(digest).await.unwrap();
                assert_eq!(packages.len(), 5_001);
                assert!(packages.iter().all(|p| p.digest == digest));
            }
            let named = db.packages_named("PyPI", "pkg04999").await.unwrap();
            assert_eq!(named.iter().map(|p| p.digest.as_str()).collect::<Vec<_>>(), digests);

            // A rescan of m1 that no longer holds the big layer: m2 and m3 keep it.
            let own = [layer_package("own0", "sha256:small0")];
            db.store_scan(&scan("sha256:m1"), &[InventoryPart { content: "small0", packages: &own }], &[]).await.unwrap();
            assert_eq!(db.image_packages("sha256:m1").await.unwrap().len(), 1);
            assert_eq!(db.image_packages("sha256:m2").await.unwrap().len(), 5_001);
            // Parts nobody names are pruned after the grace period, not before.
            let orphan = [layer_package("gone", "sha256:gone")];
            db.store_scan(&scan("sha256:m4"), &[InventoryPart { content: "gone", packages: &orphan }], &[]).await.unwrap();
            db.store_scan(&scan("sha256:m4"), &[], &[]).await.unwrap();
            assert_eq!(db.prune_inventory_parts().await.unwrap(), 0);
            assert_eq!(db.inventory_totals().await.unwrap(), (5_004, 5));
            sqlx::query("UPDATE inventory_parts SET used_at = 0").execute(&db.write).await.unwrap();
            assert_eq!(db.prune_inventory_parts().await.unwrap(), 1);
            assert_eq!(db.inventory_totals().await.unwrap(), (5_003, 4));
            // A pruned part is stored again when a scan needs it.
            db.store_scan(&scan("sha256:m4"), &[InventoryPart { content: "gone", packages: &orphan }], &[]).await.unwrap();
            assert_eq!(db.image_packages("sha256:m4").await.unwrap().len(), 1);
        }
    }

    /// Issue 14, item 5: a scan over a cap says so; the reason stays with the results
    /// through a failed rescan, and a complete rescan clears it.
    #[tokio::test]
    async fn an_incomplete_scan_keeps_its_reason_until_a_complete_one() {
        for (db, _dir) in test_databases().await {
            let db = db.scanning();
            let d = "sha256:i1";
            let reason = "layer sha256:l1 lists 9 packages, over the limit of 5";
            store(&db, &NewImageScan { incomplete: Some(reason), ..scan(d) }, &[package(d, "jinja2", "1.0")], &[]).await;
            assert_eq!(db.image_scan(d).await.unwrap().unwrap().incomplete.as_deref(), Some(reason));
            db.record_scan_outcome(&NewImageScan { status: "failed", error: Some("layer is corrupt"), ..scan(d) }).await.unwrap();
            assert_eq!(db.image_scan(d).await.unwrap().unwrap().incomplete.as_deref(), Some(reason));
            store(&db, &scan(d), &[package(d, "jinja2", "1.0")], &[]).await;
            assert_eq!(db.image_scan(d).await.unwrap().unwrap().incomplete, None);
        }
    }

    /// Issue 14, item 5: results are written in bounded transactions, so they must not
    /// be seen half-written: staged findings and a stored part are invisible until the
    /// scan's last transaction names them, and a part left unfinished is never reused.
    #[tokio::test]
    async fn results_are_invisible_until_the_last_transaction() {
        for (db, _dir) in test_databases().await {
            let db = db.scanning();
            let d = "sha256:i1";
            store(&db, &scan(d), &[package(d, "jinja2", "1.0")], &[finding(d, "jinja2", "A-1", "major", 100)]).await;
            let new_rows = [package(d, "flask", "2.0")];
            let part = db.store_part(&InventoryPart { content: "next", packages: &new_rows }).await.unwrap();
            let batch = db.stage_findings(d, &[finding(d, "flask", "F-1", "critical", 200)]).await.unwrap();
            assert_eq!(db.image_packages(d).await.unwrap(), [package(d, "jinja2", "1.0")]);
            assert_eq!(db.findings(d).await.unwrap().iter().map(|f| f.advisory_id.as_str()).collect::<Vec<_>>(), ["A-1"]);
            assert!(db.finish_scan(&scan(d), &[part], batch).await.unwrap().is_some());
            assert_eq!(db.image_packages(d).await.unwrap(), new_rows);
            assert_eq!(db.findings(d).await.unwrap().iter().map(|f| f.advisory_id.as_str()).collect::<Vec<_>>(), ["F-1"]);
            db.drop_batch(batch).await.unwrap();

            // A part whose writer died before completing it has no content: a scan of the
            // same rows writes its own.
            sqlx::query("INSERT INTO inventory_parts (content, packages, used_at) VALUES (NULL, 1, $1)")
                .bind(now_ms())
                .execute(&db.write)
                .await
                .unwrap();
            let pending: i64 = sqlx::query_scalar("SELECT MAX(id) FROM inventory_parts").fetch_one(&db.read).await.unwrap();
            let other = [package(d, "django", "5.0")];
            let stored = db.store_part(&InventoryPart { content: "other", packages: &other }).await.unwrap();
            assert_ne!(stored, pending);
            assert!(db.finish_scan(&scan(d), &[pending], batch).await.unwrap().is_none(), "an unfinished part cannot be named");
        }
    }

    /// Migration 0012 moves the inventories stored per image into parts: after it every
    /// image reads the packages it had, and a rescan's parts replace its old one.
    #[tokio::test]
    async fn migration_keeps_existing_inventories() {
        sqlx::any::install_default_drivers();
        let dir = tempfile::tempdir().unwrap();
        let sqlite = format!("sqlite://{}", dir.path().join("old.db").display());
        let mut urls = vec![(format!("{sqlite}?mode=rwc"), sqlite, crate::Backend::Sqlite)];
        // Dropped at the end of the test, and the database with it.
        let postgres = match std::env::var("SLIPWAY_TEST_POSTGRES_URL") {
            Ok(url) => Some(crate::TestPostgres::create(&url, "mig").await),
            Err(_) => None,
        };
        if let Some(database) = &postgres {
            urls.push((database.url.clone(), database.url.clone(), crate::Backend::Postgres));
        }
        for (pool_url, db_url, backend) in urls {
            let pool = sqlx::AnyPool::connect(&pool_url).await.unwrap();
            let migrator = match backend {
                crate::Backend::Sqlite => sqlx::migrate!("migrations/sqlite"),
                crate::Backend::Postgres => sqlx::migrate!("migrations/postgres"),
            };
            migrator.run_to(11, &pool).await.unwrap();
            let rows = [("sha256:i1", "jinja2"), ("sha256:i1", "flask"), ("sha256:i2", "jinja2")];
            for (digest, name) in rows {
                let p = package(digest, name, "1.0");
                sqlx::query(
                    "INSERT INTO image_packages (digest, purl, path, ecosystem, release, name, match_name, version, source_name, source_version, layer)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, NULL, NULL, $9)",
                )
                .bind(&p.digest)
                .bind(&p.purl)
                .bind(&p.path)
                .bind(&p.ecosystem)
                .bind(&p.release)
                .bind(&p.name)
                .bind(&p.match_name)
                .bind(&p.version)
                .bind(&p.layer)
                .execute(&pool)
                .await
                .unwrap();
            }
            pool.close().await;

            let opened = crate::Db::connect(&db_url).await.unwrap();
            let db = opened.scanning();
            assert_eq!(
                db.image_packages("sha256:i1").await.unwrap(),
                [package("sha256:i1", "flask", "1.0"), package("sha256:i1", "jinja2", "1.0")]
            );
            assert_eq!(db.image_packages("sha256:i2").await.unwrap(), [package("sha256:i2", "jinja2", "1.0")]);
            assert_eq!(db.packages_named("PyPI", "jinja2").await.unwrap().len(), 2);
            assert_eq!(db.prune_inventory_parts().await.unwrap(), 0, "parts images name stay");
            assert_eq!(db.inventory_totals().await.unwrap(), (3, 2));
            // A rescan of i1 stores its part; i1's old one goes at once, i2's stays.
            store(&db, &scan("sha256:i1"), &[package("sha256:i1", "jinja2", "1.0")], &[]).await;
            assert_eq!(db.inventory_totals().await.unwrap(), (2, 2));
            assert_eq!(db.image_packages("sha256:i2").await.unwrap(), [package("sha256:i2", "jinja2", "1.0")]);
            opened.close().await;
        }
    }

    #[tokio::test]
    async fn rematch_applies_a_diff_and_emits_each_event_once() {
        for (db, _dir) in test_databases().await {
            let db = db.scanning();
            let (d1, d2) = ("sha256:i1", "sha256:i2");
            store(&db, &scan(d1), &[package(d1, "jinja2", "1.0")], &[finding(d1, "jinja2", "A-1", "major", 100)]).await;
            store(&db, &scan(d2), &[package(d2, "jinja2", "1.0")], &[]).await;
            assert_eq!(db.packages_named("PyPI", "jinja2").await.unwrap().len(), 2);
            assert_eq!(db.findings_named("PyPI", "jinja2").await.unwrap().len(), 1);
            let revision = db.begin_feed_revision("test").await.unwrap();
            db.upsert_advisories(revision, "test", &[advisory("A-2", "h", &[("PyPI", "jinja2", "")])]).await.unwrap();
            let change = db.feed_changes(1).await.unwrap().remove(0);

            let mut updated = finding(d1, "jinja2", "A-1", "critical", 100);
            updated.fixed_version = Some("1.2".into());
            let event = |digest: &str| NewVulnerabilityEvent {
                digest: digest.into(),
                package: "pkg:pypi/jinja2@1.0".into(),
                advisory_id: "A-2".into(),
                vulnerability: "CVE-2024-2".into(),
                class: "minor".into(),
            };
            let rematch = Rematch {
                added: vec![finding(d2, "jinja2", "A-2", "minor", 900)],
                updated: vec![updated.clone()],
                removed: vec![],
                events: vec![event(d2), event(d2)],
            };
            // A change noted again meanwhile (a later revision) stays for the next run.
            let stale = FeedChange { revision: change.revision - 1, ..change.clone() };
            db.apply_rematches(&[(stale, rematch)]).await.unwrap();
            assert_eq!(db.feed_changes(10).await.unwrap(), std::slice::from_ref(&change));
            db.apply_rematches(&[(change.clone(), Rematch { events: vec![event(d2)], ..Rematch::default() })]).await.unwrap();
            assert!(db.feed_changes(10).await.unwrap().is_empty());

            assert_eq!(db.findings(d1).await.unwrap(), [updated]);
            assert_eq!(db.image_scan(d1).await.unwrap().unwrap().critical, 1);
            assert_eq!(db.image_scan(d2).await.unwrap().unwrap().minor, 1);
            let events = db.vulnerability_events(0, 10).await.unwrap();
            assert_eq!(events.len(), 1, "{events:?}");
            assert_eq!((events[0].digest.as_str(), events[0].vulnerability.as_str()), (d2, "CVE-2024-2"));
            assert!(db.vulnerability_events(events[0].id, 10).await.unwrap().is_empty());

            let removal = Rematch { removed: vec![(d1.into(), "pkg:pypi/jinja2@1.0".into(), "A-1".into())], ..Rematch::default() };
            db.apply_rematches(&[(change, removal)]).await.unwrap();
            assert!(db.findings(d1).await.unwrap().is_empty());
            assert_eq!(db.image_scan(d1).await.unwrap().unwrap().critical, 0);
        }
    }

    #[tokio::test]
    async fn rematches_of_several_packages_apply_together_and_recount_an_image_once() {
        for (db, _dir) in test_databases().await {
            let db = db.scanning();
            let d = "sha256:i1";
            let packages = [package(d, "jinja2", "1.0"), package(d, "flask", "1.0")];
            store(&db, &scan(d), &packages, &[finding(d, "flask", "F-1", "major", 100)]).await;
            let revision = db.begin_feed_revision("test").await.unwrap();
            let advisories = [advisory("J-1", "h", &[("PyPI", "jinja2", "")]), advisory("F-2", "h", &[("PyPI", "flask", "")])];
            db.upsert_advisories(revision, "test", &advisories).await.unwrap();
            let changes = db.feed_changes(10).await.unwrap();
            assert_eq!(changes.len(), 2);
            let for_change = |change: &FeedChange| match change.name.as_str() {
                "jinja2" => Rematch { added: vec![finding(d, "jinja2", "J-1", "critical", 200)], ..Rematch::default() },
                _ => Rematch { removed: vec![(d.into(), "pkg:pypi/flask@1.0".into(), "F-1".into())], ..Rematch::default() },
            };
            let batch: Vec<_> = changes.iter().map(|c| (c.clone(), for_change(c))).collect();
            db.apply_rematches(&batch).await.unwrap();

            assert!(db.feed_changes(10).await.unwrap().is_empty());
            let found: Vec<_> = db.findings(d).await.unwrap().into_iter().map(|f| f.advisory_id).collect();
            assert_eq!(found, ["J-1"]);
            let counts = db.image_scan(d).await.unwrap().unwrap();
            assert_eq!((counts.critical, counts.major), (1, 0));
        }
    }

    #[tokio::test]
    async fn events_name_the_repositories_holding_the_image() {
        for (db, _dir) in test_databases().await {
            let registry = db.registry();
            for repository in ["acme/app", "beta/app"] {
                let manifest = NewManifest {
                    repository,
                    digest: "sha256:i1",
                    media_type: "application/vnd.oci.image.index.v1+json",
                    artifact_type: None,
                    subject: None,
                    annotations: None,
                    content: b"{}",
                    tags: vec!["1.0"],
                    blobs: vec![],
                    manifests: vec![],
                };
                registry.put_manifest(&manifest).await.unwrap();
            }
            assert_eq!(registry.images().repositories_with_manifest("sha256:i1").await.unwrap(), ["acme/app", "beta/app"]);
        }
    }
}

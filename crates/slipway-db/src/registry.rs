//! Queries behind the /v2/ API and garbage collection.

use std::future::Future;

use sqlx::{Any, Transaction};

use crate::shared::Shared;
use crate::{DbError, RegistryDb};

/// A stored manifest.
#[derive(Clone, Debug)]
pub struct ManifestRecord {
    pub digest: String,
    pub media_type: String,
    pub content: Vec<u8>,
}

/// A manifest to store, with what it references already extracted.
pub struct NewManifest<'a> {
    pub repository: &'a str,
    pub digest: &'a str,
    pub media_type: &'a str,
    pub artifact_type: Option<&'a str>,
    pub subject: Option<&'a str>,
    pub annotations: Option<String>,
    pub content: &'a [u8],
    pub tags: Vec<&'a str>,
    /// Blobs that must be linked into the repository.
    pub blobs: Vec<&'a str>,
    /// Child manifests (of an index) that must be in the repository.
    pub manifests: Vec<&'a str>,
}

#[derive(Debug, thiserror::Error)]
pub enum PutManifestError {
    #[error("blob {0} is not in the repository")]
    MissingBlob(String),
    #[error("manifest {0} is not in the repository")]
    MissingManifest(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

impl PutManifestError {
    /// A manifest naming what the repository does not hold is the pusher's error.
    pub fn kind(&self) -> slipway_types::ErrorKind {
        match self {
            PutManifestError::MissingBlob(_) | PutManifestError::MissingManifest(_) => slipway_types::ErrorKind::Invalid,
            PutManifestError::Db(e) => e.kind(),
        }
    }
}

impl From<sqlx::Error> for PutManifestError {
    fn from(e: sqlx::Error) -> Self {
        PutManifestError::Db(e.into())
    }
}

/// A manifest whose `subject` is the digest asked about.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct Referrer {
    pub digest: String,
    pub media_type: String,
    pub size: i64,
    pub artifact_type: Option<String>,
    pub annotations: Option<String>,
}

#[derive(Clone, Debug)]
pub struct Upload {
    pub id: String,
    pub repository: String,
    pub algorithm: String,
    pub size: i64,
}

#[derive(Clone, Debug, Default)]
pub struct CatalogPage {
    pub names: Vec<String>,
    /// Whether more names follow the last one returned.
    pub more: bool,
}

impl RegistryDb {
    // ---- pulls -------------------------------------------------------------------------

    /// Adds pulls the registry counted to the repository's running total. The catalog
    /// folds totals into its listings' popularity (`CatalogDb::fold_pulls`).
    pub async fn add_pulls(&self, repository: &str, pulls: i64) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO repository_pulls (repository, pulls) VALUES ($1, $2)
             ON CONFLICT (repository) DO UPDATE SET pulls = repository_pulls.pulls + excluded.pulls",
        )
        .bind(repository)
        .bind(pulls)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    // ---- blobs -------------------------------------------------------------------------

    /// The size of a blob the repository may serve.
    pub async fn blob_in_repository(&self, repository: &str, digest: &str) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar::<Any, i64>(
            "SELECT b.size FROM repository_blobs rb JOIN blobs b ON b.digest = rb.digest
             WHERE rb.repository = $1 AND rb.digest = $2",
        )
        .bind(repository)
        .bind(digest)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Records a verified blob and links it into `repository`. `publish` makes the bytes
    /// visible in storage; it runs while this transaction holds the blob's row, so GC
    /// cannot delete the bytes between publication and the commit of the row.
    pub async fn commit_blob<F, Fut, E>(
        &self,
        repository: &str,
        digest: &str,
        size: i64,
        upload_id: Option<&str>,
        publish: F,
    ) -> Result<(), DbError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        // Waits for a GC that is deleting this digest's bytes, then tells any later GC
        // step for it to leave the bytes published here alone.
        sqlx::query("DELETE FROM blob_tombstones WHERE digest = $1").bind(digest).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO blobs (digest, size, created_at, touched_at) VALUES ($1, $2, $3, $3)
             ON CONFLICT (digest) DO UPDATE SET touched_at = excluded.touched_at",
        )
        .bind(digest)
        .bind(size)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        link_blob(&mut tx, repository, digest, now).await?;
        if let Some(id) = upload_id {
            sqlx::query("DELETE FROM uploads WHERE id = $1").bind(id).execute(&mut *tx).await?;
        }
        Shared::inside(tx, publish).await
    }

    /// Links an already stored blob into `repository` (cross-repository mount). With
    /// `from`, the blob must be linked there; without, any stored blob can be mounted.
    /// Returns the blob's size, or `None` if it cannot be mounted.
    pub async fn mount_blob(&self, repository: &str, digest: &str, from: Option<&str>) -> Result<Option<i64>, DbError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        let size = match from {
            Some(from) => {
                sqlx::query_scalar::<Any, i64>(
                    "UPDATE blobs SET touched_at = $1 WHERE digest = $2
                 AND EXISTS (SELECT 1 FROM repository_blobs WHERE repository = $3 AND digest = $2)
                 RETURNING size",
                )
                .bind(now)
                .bind(digest)
                .bind(from)
                .fetch_optional(&mut *tx)
                .await?
            }
            None => {
                sqlx::query_scalar::<Any, i64>("UPDATE blobs SET touched_at = $1 WHERE digest = $2 RETURNING size")
                    .bind(now)
                    .bind(digest)
                    .fetch_optional(&mut *tx)
                    .await?
            }
        };
        if size.is_some() {
            link_blob(&mut tx, repository, digest, now).await?;
            tx.commit().await?;
        }
        Ok(size)
    }

    /// Unlinks a blob from a repository. Its bytes go when GC finds nothing needs them.
    pub async fn unlink_blob(&self, repository: &str, digest: &str) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        let done = sqlx::query("DELETE FROM repository_blobs WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(done > 0)
    }

    // ---- manifests and tags ------------------------------------------------------------

    /// Stores a manifest (and optionally tags it) if everything it references is present.
    pub async fn put_manifest(&self, m: &NewManifest<'_>) -> Result<(), PutManifestError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        for blob in &m.blobs {
            // Touching the row locks it against a concurrent GC deleting it.
            let present = sqlx::query(
                "UPDATE blobs SET touched_at = $1 WHERE digest = $2
                 AND EXISTS (SELECT 1 FROM repository_blobs WHERE repository = $3 AND digest = $2)",
            )
            .bind(now)
            .bind(*blob)
            .bind(m.repository)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if present == 0 {
                return Err(PutManifestError::MissingBlob((*blob).to_owned()));
            }
        }
        for child in &m.manifests {
            let present = sqlx::query("SELECT 1 FROM manifests WHERE repository = $1 AND digest = $2")
                .bind(m.repository)
                .bind(*child)
                .fetch_optional(&mut *tx)
                .await?;
            if present.is_none() {
                return Err(PutManifestError::MissingManifest((*child).to_owned()));
            }
        }
        ensure_repository(&mut tx, m.repository, now).await?;
        let inserted = sqlx::query(
            "INSERT INTO manifests (repository, digest, media_type, artifact_type, subject, annotations, size, content, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (repository, digest) DO NOTHING",
        )
        .bind(m.repository)
        .bind(m.digest)
        .bind(m.media_type)
        .bind(m.artifact_type)
        .bind(m.subject)
        .bind(m.annotations.as_deref())
        .bind(m.content.len() as i64)
        .bind(m.content)
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted > 0 {
            let children = m.blobs.iter().map(|d| (*d, "blob")).chain(m.manifests.iter().map(|d| (*d, "manifest")));
            for (child, kind) in children {
                sqlx::query(
                    "INSERT INTO manifest_references (repository, manifest, child, kind) VALUES ($1, $2, $3, $4)
                     ON CONFLICT DO NOTHING",
                )
                .bind(m.repository)
                .bind(m.digest)
                .bind(child)
                .bind(kind)
                .execute(&mut *tx)
                .await?;
            }
        }
        for tag in &m.tags {
            sqlx::query(
                "INSERT INTO tags (repository, name, digest, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (repository, name) DO UPDATE SET digest = excluded.digest, updated_at = excluded.updated_at",
            )
            .bind(m.repository)
            .bind(*tag)
            .bind(m.digest)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Deletes a manifest, the tags pointing at it and what it references.
    pub async fn delete_manifest(&self, repository: &str, digest: &str) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query("DELETE FROM manifests WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        for sql in [
            "DELETE FROM tags WHERE repository = $1 AND digest = $2",
            "DELETE FROM manifest_references WHERE repository = $1 AND manifest = $2",
        ] {
            sqlx::query(sql).bind(repository).bind(digest).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(deleted > 0)
    }

    pub async fn delete_tag(&self, repository: &str, tag: &str) -> Result<bool, DbError> {
        let deleted = sqlx::query("DELETE FROM tags WHERE repository = $1 AND name = $2")
            .bind(repository)
            .bind(tag)
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(deleted > 0)
    }

    pub async fn repository_exists(&self, repository: &str) -> Result<bool, DbError> {
        Ok(sqlx::query("SELECT 1 FROM repositories WHERE name = $1").bind(repository).fetch_optional(&self.read).await?.is_some())
    }

    /// Tags after `last` in bytewise order, at most `limit` of them.
    pub async fn list_tags(&self, repository: &str, last: &str, limit: i64) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>("SELECT name FROM tags WHERE repository = $1 AND name > $2 ORDER BY name LIMIT $3")
            .bind(repository)
            .bind(last)
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
    }

    /// Repository names after `last`, at most `limit` of them.
    pub async fn catalog(&self, last: &str, limit: i64) -> Result<CatalogPage, DbError> {
        let mut names = sqlx::query_scalar::<Any, String>("SELECT name FROM repositories WHERE name > $1 ORDER BY name LIMIT $2")
            .bind(last)
            .bind(limit + 1)
            .fetch_all(&self.read)
            .await?;
        let more = names.len() as i64 > limit;
        names.truncate(limit.max(0) as usize);
        Ok(CatalogPage { names, more })
    }

    pub async fn referrers(&self, repository: &str, subject: &str, artifact_type: Option<&str>) -> Result<Vec<Referrer>, DbError> {
        Ok(sqlx::query_as::<Any, Referrer>(
            "SELECT digest, media_type, size, artifact_type, annotations FROM manifests
             WHERE repository = $1 AND subject = $2 AND ($3 IS NULL OR artifact_type = $3)
             ORDER BY created_at, digest",
        )
        .bind(repository)
        .bind(subject)
        .bind(artifact_type)
        .fetch_all(&self.read)
        .await?)
    }

    // ---- upload sessions ---------------------------------------------------------------

    pub async fn create_upload(&self, id: &str, repository: &str, algorithm: &str) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        sqlx::query("INSERT INTO uploads (id, repository, algorithm, size, created_at, updated_at) VALUES ($1, $2, $3, 0, $4, $4)")
            .bind(id)
            .bind(repository)
            .bind(algorithm)
            .bind(now)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn upload(&self, id: &str) -> Result<Option<Upload>, DbError> {
        let row = sqlx::query_as::<Any, (String, String, String, i64)>("SELECT id, repository, algorithm, size FROM uploads WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?;
        Ok(row.map(|(id, repository, algorithm, size)| Upload { id, repository, algorithm, size }))
    }

    /// Moves an upload's recorded length from `from` to `to`; false if another request
    /// changed it first.
    pub async fn advance_upload(&self, id: &str, from: i64, to: i64) -> Result<bool, DbError> {
        let n = sqlx::query("UPDATE uploads SET size = $1, updated_at = $2 WHERE id = $3 AND size = $4")
            .bind(to)
            .bind(self.clock.now_ms())
            .bind(id)
            .bind(from)
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    pub async fn delete_upload(&self, id: &str) -> Result<bool, DbError> {
        let n = sqlx::query("DELETE FROM uploads WHERE id = $1").bind(id).execute(&self.write).await?.rows_affected();
        Ok(n > 0)
    }

    /// Whether an upload session is recorded (the orphan sweep keeps data of live ones).
    pub async fn upload_exists(&self, id: &str) -> Result<bool, DbError> {
        Ok(self.upload(id).await?.is_some())
    }

    // ---- garbage collection ------------------------------------------------------------

    /// Upload sessions idle since before `cutoff_ms`.
    pub async fn stale_uploads(&self, cutoff_ms: i64) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>("SELECT id FROM uploads WHERE updated_at < $1").bind(cutoff_ms).fetch_all(&self.read).await?)
    }

    /// Blobs no manifest references and nobody touched since `cutoff_ms`: GC candidates.
    pub async fn unreferenced_blobs(&self, cutoff_ms: i64) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>(
            "SELECT digest FROM blobs b WHERE touched_at < $1
             AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.child = b.digest)",
        )
        .bind(cutoff_ms)
        .fetch_all(&self.read)
        .await?)
    }

    /// Deletes a GC candidate's row if it still is one, leaving a tombstone; returns
    /// whether it did. The bytes go afterwards, in `remove_tombstoned`, so that a crash in
    /// between leaves stray bytes (swept later), never a row without bytes.
    pub async fn collect_blob(&self, digest: &str, cutoff_ms: i64) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        let deleted = sqlx::query(
            "DELETE FROM blobs WHERE digest = $1 AND touched_at < $2
             AND NOT EXISTS (SELECT 1 FROM manifest_references r WHERE r.child = $1)",
        )
        .bind(digest)
        .bind(cutoff_ms)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if deleted == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM repository_blobs WHERE digest = $1").bind(digest).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO blob_tombstones (digest, created_at) VALUES ($1, $2) ON CONFLICT (digest) DO NOTHING")
            .bind(digest)
            .bind(self.clock.now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Digests whose bytes garbage collection still has to delete (including those a
    /// crashed run left behind).
    pub async fn tombstones(&self) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>("SELECT digest FROM blob_tombstones ORDER BY digest").fetch_all(&self.read).await?)
    }

    /// Runs `remove` (deleting the bytes) while holding the digest's tombstone, unless a
    /// push removed the tombstone first. A concurrent `commit_blob` of the digest waits.
    pub async fn remove_tombstoned<F, Fut, E>(&self, digest: &str, remove: F) -> Result<bool, DbError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let mut tx = self.begin_write().await?;
        let held = sqlx::query("DELETE FROM blob_tombstones WHERE digest = $1").bind(digest).execute(&mut *tx).await?.rows_affected();
        if held == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        Shared::inside(tx, remove).await?;
        Ok(true)
    }

    /// Deletes stored bytes that have no blob row (left by a crash between publishing and
    /// committing). A placeholder row is inserted first so that a concurrent `commit_blob`
    /// of the same digest waits for this transaction instead of racing it.
    pub async fn collect_orphan<F, Fut, E>(&self, digest: &str, remove: F) -> Result<bool, DbError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        let mut tx = self.begin_write().await?;
        let claimed = sqlx::query(
            "INSERT INTO blobs (digest, size, created_at, touched_at) VALUES ($1, -1, 0, 0)
             ON CONFLICT (digest) DO NOTHING",
        )
        .bind(digest)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if claimed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        sqlx::query("DELETE FROM blobs WHERE digest = $1").bind(digest).execute(&mut *tx).await?;
        Shared::inside(tx, remove).await?;
        Ok(true)
    }

    /// Every digest some manifest references, for consistency checks.
    pub async fn referenced_blobs(&self) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>("SELECT DISTINCT child FROM manifest_references WHERE kind = 'blob'")
            .fetch_all(&self.read)
            .await?)
    }

    /// Every recorded blob with its size, for consistency checks.
    pub async fn recorded_blobs(&self) -> Result<Vec<(String, i64)>, DbError> {
        Ok(sqlx::query_as::<Any, (String, i64)>(RECORDED_BLOBS).fetch_all(&self.read).await?)
    }

    /// Counts a pull under `key` and returns the pulls counted in the key's current window,
    /// this one included, and when that window started. A window that started at or
    /// before `ended_before` has ended, and a new one starts now. One statement, so pulls
    /// on every replica count against the same window.
    pub async fn count_pull_window(&self, key: &str, ended_before: i64) -> Result<(i64, i64), DbError> {
        Ok(sqlx::query_as::<Any, (i64, i64)>(
            "INSERT INTO pull_windows (key, pulls, window_start) VALUES ($1, 1, $2)
             ON CONFLICT (key) DO UPDATE SET
               pulls = CASE WHEN pull_windows.window_start > $3 THEN pull_windows.pulls + 1 ELSE 1 END,
               window_start = CASE WHEN pull_windows.window_start > $3 THEN pull_windows.window_start ELSE $2 END
             RETURNING pulls, window_start",
        )
        .bind(key)
        .bind(self.clock.now_ms())
        .bind(ended_before)
        .fetch_one(&self.write)
        .await?)
    }

    /// Forgets pull windows that started at or before `ended_before` (they have ended).
    pub async fn forget_pull_windows(&self, ended_before: i64) -> Result<u64, DbError> {
        Ok(sqlx::query("DELETE FROM pull_windows WHERE window_start <= $1").bind(ended_before).execute(&self.write).await?.rows_affected())
    }

    /// PostgreSQL: exports a snapshot (a read-only repeatable-read transaction), runs
    /// `dump` with its name (for `pg_dump --snapshot`) while the transaction holds it, and
    /// returns the blobs recorded in that same snapshot with what `dump` returned: the
    /// inventory of a backup is exactly the dump's.
    pub async fn recorded_blobs_in_exported_snapshot<T, F, Fut>(&self, dump: F) -> Result<(Vec<(String, i64)>, T), DbError>
    where
        F: FnOnce(String) -> Fut,
        Fut: std::future::Future<Output = T>,
    {
        if self.backend != crate::Backend::Postgres {
            return Err(DbError::Conflict("exported snapshots are PostgreSQL's".into()));
        }
        let mut tx = self.write.begin().await?;
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY").execute(&mut *tx).await?;
        let (snapshot,): (String,) = sqlx::query_as("SELECT pg_export_snapshot()").fetch_one(&mut *tx).await?;
        let blobs = sqlx::query_as::<Any, (String, i64)>(RECORDED_BLOBS).fetch_all(&mut *tx).await?;
        let dumped = dump(snapshot).await;
        tx.rollback().await?;
        Ok((blobs, dumped))
    }
}

const RECORDED_BLOBS: &str = "SELECT digest, size FROM blobs ORDER BY digest";

async fn ensure_repository(tx: &mut Transaction<'static, Any>, repository: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO repositories (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
        .bind(repository)
        .bind(now)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn link_blob(tx: &mut Transaction<'static, Any>, repository: &str, digest: &str, now: i64) -> Result<(), sqlx::Error> {
    ensure_repository(tx, repository, now).await?;
    sqlx::query(
        "INSERT INTO repository_blobs (repository, digest, created_at) VALUES ($1, $2, $3)
         ON CONFLICT (repository, digest) DO NOTHING",
    )
    .bind(repository)
    .bind(digest)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

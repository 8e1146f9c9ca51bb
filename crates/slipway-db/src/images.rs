//! The registry's read model: what images repositories hold, read-only. The catalog
//! (versions of a listing) and security (what to scan, whose image an event is about)
//! read images here; only the registry (`RegistryDb`) writes these tables.

use sqlx::Any;

use crate::{DbError, ImagesDb, ManifestRecord};

impl ImagesDb {
    pub async fn manifest_exists(&self, repository: &str, digest: &str) -> Result<bool, DbError> {
        Ok(sqlx::query("SELECT 1 FROM manifests WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .fetch_optional(&self.read)
            .await?
            .is_some())
    }

    pub async fn manifest_by_digest(&self, repository: &str, digest: &str) -> Result<Option<ManifestRecord>, DbError> {
        let row = sqlx::query_as::<Any, (String, String, Vec<u8>)>(
            "SELECT digest, media_type, content FROM manifests WHERE repository = $1 AND digest = $2",
        )
        .bind(repository)
        .bind(digest)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(digest, media_type, content)| ManifestRecord { digest, media_type, content }))
    }

    pub async fn manifest_by_tag(&self, repository: &str, tag: &str) -> Result<Option<ManifestRecord>, DbError> {
        let row = sqlx::query_as::<Any, (String, String, Vec<u8>)>(
            "SELECT m.digest, m.media_type, m.content FROM tags t
             JOIN manifests m ON m.repository = t.repository AND m.digest = t.digest
             WHERE t.repository = $1 AND t.name = $2",
        )
        .bind(repository)
        .bind(tag)
        .fetch_optional(&self.read)
        .await?;
        Ok(row.map(|(digest, media_type, content)| ManifestRecord { digest, media_type, content }))
    }

    /// Tags of a repository with their manifests, newest push first.
    pub async fn tagged_manifests(&self, repository: &str) -> Result<Vec<(String, String, String, Vec<u8>, i64)>, DbError> {
        Ok(sqlx::query_as::<Any, (String, String, String, Vec<u8>, i64)>(
            "SELECT t.name, m.digest, m.media_type, m.content, t.updated_at FROM tags t
             JOIN manifests m ON m.repository = t.repository AND m.digest = t.digest
             WHERE t.repository = $1 ORDER BY t.updated_at DESC, t.name",
        )
        .bind(repository)
        .fetch_all(&self.read)
        .await?)
    }

    /// The `limit` most recently pushed tags of a repository with their manifests, newest
    /// first.
    pub async fn recent_tags(&self, repository: &str, limit: i64) -> Result<Vec<(String, String, String, Vec<u8>, i64)>, DbError> {
        Ok(sqlx::query_as::<Any, (String, String, String, Vec<u8>, i64)>(
            "SELECT t.name, m.digest, m.media_type, m.content, t.updated_at FROM tags t
             JOIN manifests m ON m.repository = t.repository AND m.digest = t.digest
             WHERE t.repository = $1 ORDER BY t.updated_at DESC, t.name LIMIT $2",
        )
        .bind(repository)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// The first `limit` repositories of a namespace (`acme/...`), by name. A range over
    /// the primary key: '0' follows '/', so every name below it starts with `acme/`.
    pub async fn repositories_in(&self, namespace: &str, limit: i64) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>("SELECT name FROM repositories WHERE name > $1 AND name < $2 ORDER BY name LIMIT $3")
            .bind(format!("{namespace}/"))
            .bind(format!("{namespace}0"))
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
    }

    /// The manifests an index of `repository` lists (none for an image manifest).
    pub async fn manifest_children(&self, repository: &str, digest: &str) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>(
            "SELECT child FROM manifest_references WHERE repository = $1 AND manifest = $2 AND kind = 'manifest' ORDER BY child",
        )
        .bind(repository)
        .bind(digest)
        .fetch_all(&self.read)
        .await?)
    }

    /// The repositories holding a manifest, to tell whose image an event is about.
    pub async fn repositories_with_manifest(&self, digest: &str) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>("SELECT repository FROM manifests WHERE digest = $1 ORDER BY repository")
            .bind(digest)
            .fetch_all(&self.read)
            .await?)
    }
}

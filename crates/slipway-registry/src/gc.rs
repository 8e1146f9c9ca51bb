//! Garbage collection that runs while the registry serves pushes.
//!
//! A blob is garbage when no manifest references it and nobody has uploaded, mounted or
//! referenced it within the grace period. Each deletion re-checks both conditions on the
//! locked row (`RegistryDb::collect_blob`) while pushes touch the rows they rely on inside their own
//! transactions, so a blob that a push is using is never deleted under it.
//!
//! Rows go before bytes: `collect_blob` commits the row's deletion with a tombstone, then
//! `remove_tombstoned` deletes the bytes under the tombstone's lock. A crash between the two
//! leaves bytes without a row (harmless; the next run deletes them), and a push of the same
//! digest in between removes the tombstone so its freshly published bytes stay.

use std::time::Duration;

use serde::Serialize;
use slipway_oci::Digest;

use crate::error::RegistryError;
use crate::service::Registry;

#[derive(Clone, Debug)]
pub struct GcSettings {
    /// Unreferenced blobs younger than this are kept: a push uploads blobs before the
    /// manifest that references them.
    pub grace: Duration,
    /// Upload sessions idle for longer than this are abandoned.
    pub upload_ttl: Duration,
}

#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct GcReport {
    pub blobs_deleted: u64,
    pub uploads_expired: u64,
    /// Stored bytes with no database record, left by a crash between the two.
    pub orphan_blobs_deleted: u64,
    pub orphan_uploads_deleted: u64,
}

impl Registry {
    pub async fn collect_garbage(&self, settings: &GcSettings) -> Result<GcReport, RegistryError> {
        let now = self.db.clock().now_ms();
        let blob_cutoff = now - settings.grace.as_millis() as i64;
        let upload_cutoff = now - settings.upload_ttl.as_millis() as i64;
        let mut report = GcReport::default();

        for id in self.db.stale_uploads(upload_cutoff).await? {
            if self.db.delete_upload(&id).await? {
                if let Some(upload) = slipway_storage::UploadId::parse(&id) {
                    self.store.abort(&upload).await?;
                }
                report.uploads_expired += 1;
            }
        }

        for digest in self.db.unreferenced_blobs(blob_cutoff).await? {
            if self.db.collect_blob(&digest, blob_cutoff).await? {
                if let Ok(digest) = digest.parse::<Digest>() {
                    self.forget_links(&digest);
                }
                report.blobs_deleted += 1;
            }
        }
        // Also finishes the deletions of an earlier run that stopped half-way.
        for text in self.db.tombstones().await? {
            let Ok(digest) = text.parse::<Digest>() else { continue };
            let store = self.store.clone();
            self.db.remove_tombstoned(&text, || async move { store.delete(&digest).await }).await?;
        }

        for object in self.store.list_blobs().await? {
            if object.modified_ms >= blob_cutoff {
                continue;
            }
            let store = self.store.clone();
            let digest = object.key.clone();
            if self.db.collect_orphan(&object.key.to_string(), || async move { store.delete(&digest).await }).await? {
                report.orphan_blobs_deleted += 1;
            }
        }

        for object in self.store.list_uploads().await? {
            if object.modified_ms < upload_cutoff && !self.db.upload_exists(&object.key.to_string()).await? {
                self.store.abort(&object.key).await?;
                report.orphan_uploads_deleted += 1;
            }
        }
        tracing::info!(?report, "garbage collection finished");
        Ok(report)
    }
}

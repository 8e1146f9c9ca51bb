//! A consistency check of database and storage, for operators (`slipway fsck`) and for
//! the crash tests, which assert the invariants the registry promises:
//! every stored blob matches its digest, every recorded blob is stored, and every blob a
//! manifest references is recorded.

use std::collections::BTreeSet;

use serde::Serialize;
use slipway_oci::Digest;
use slipway_storage::BlobRead;
use tokio::io::AsyncReadExt;

use crate::error::RegistryError;
use crate::service::Registry;

#[derive(Debug, Default, Serialize)]
pub struct VerifyReport {
    pub blobs_stored: u64,
    pub blobs_recorded: u64,
    pub problems: Vec<String>,
}

impl Registry {
    pub async fn verify(&self) -> Result<VerifyReport, RegistryError> {
        let mut report = VerifyReport::default();
        let mut stored = BTreeSet::new();
        for object in self.store.list_blobs().await? {
            report.blobs_stored += 1;
            match self.store.read(&object.key, None).await? {
                Some(blob) => {
                    let actual = hash(blob, &object.key).await?;
                    if actual != object.key {
                        report.problems.push(format!("stored blob {} holds content {actual}", object.key));
                    }
                }
                None => continue,
            }
            stored.insert(object.key.to_string());
        }
        let mut recorded = BTreeSet::new();
        for (digest, size) in self.db.recorded_blobs().await? {
            report.blobs_recorded += 1;
            if !stored.contains(&digest) {
                report.problems.push(format!("blob {digest} ({size} bytes) is recorded but not stored"));
            }
            recorded.insert(digest);
        }
        for digest in self.db.referenced_blobs().await? {
            if !recorded.contains(&digest) {
                report.problems.push(format!("a manifest references blob {digest}, which is not recorded"));
            }
        }
        Ok(report)
    }
}

async fn hash(blob: BlobRead, digest: &Digest) -> Result<Digest, RegistryError> {
    let mut hasher = digest.algorithm().hasher();
    let mut reader = blob.into_reader();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = reader.read(&mut buf).await.map_err(slipway_storage::StorageError::from)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finish())
}

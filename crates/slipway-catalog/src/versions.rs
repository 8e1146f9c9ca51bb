//! "View all versions": each tag of a tier's repository with its digest, compressed size
//! and platforms. Manifests and configs are immutable under their digests, so what is
//! worked out from them is cached by digest and never goes stale.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use serde::Deserialize;
use slipway_db::ImagesDb;
use slipway_oci::{Digest, Platform};
use slipway_storage::BlobStore;
use tokio::io::AsyncReadExt;

use crate::CatalogError;

/// Size and platforms of one manifest (an index: of all its images).
#[derive(Clone, Debug, Default)]
pub struct ImageSummary {
    pub compressed_size: u64,
    pub platforms: Vec<String>,
}

/// Entries kept before the cache starts over; summaries are small.
const CACHE_LIMIT: usize = 50_000;
const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

#[derive(Clone, Default)]
pub struct SummaryCache {
    entries: Arc<Mutex<HashMap<String, ImageSummary>>>,
}

#[derive(Deserialize)]
struct Manifest {
    #[serde(default)]
    config: Option<Descriptor>,
    #[serde(default)]
    layers: Vec<Descriptor>,
    #[serde(default)]
    manifests: Vec<Descriptor>,
}

#[derive(Deserialize)]
struct Descriptor {
    digest: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    platform: Option<Platform>,
}

impl SummaryCache {
    /// Summarises a manifest stored in `repository`.
    pub async fn summary(
        &self,
        db: &ImagesDb,
        store: &dyn BlobStore,
        repository: &str,
        digest: &str,
        content: &[u8],
    ) -> Result<ImageSummary, CatalogError> {
        if let Some(hit) = self.entries.lock().expect("summary cache").get(digest) {
            return Ok(hit.clone());
        }
        let manifest: Manifest = serde_json::from_slice(content).map_err(|e| CatalogError::Internal(format!("manifest {digest}: {e}")))?;
        let summary = if manifest.manifests.is_empty() {
            image_summary(store, &manifest).await?
        } else {
            let mut total = ImageSummary::default();
            for child in &manifest.manifests {
                let Some(platform) = child.platform.as_ref().and_then(Platform::label) else { continue };
                let Some(record) = db.manifest_by_digest(repository, &child.digest).await? else { continue };
                let child_manifest: Manifest = serde_json::from_slice(&record.content)
                    .map_err(|e| CatalogError::Internal(format!("manifest {}: {e}", child.digest)))?;
                total.compressed_size += child_manifest.layers.iter().map(|l| l.size).sum::<u64>();
                total.platforms.push(platform);
            }
            total
        };
        let mut entries = self.entries.lock().expect("summary cache");
        if entries.len() >= CACHE_LIMIT {
            entries.clear();
        }
        entries.insert(digest.to_owned(), summary.clone());
        Ok(summary)
    }
}

/// A single image: layer sizes from the manifest, platform from its config blob.
async fn image_summary(store: &dyn BlobStore, manifest: &Manifest) -> Result<ImageSummary, CatalogError> {
    let compressed_size = manifest.layers.iter().map(|l| l.size).sum();
    let mut platforms = Vec::new();
    if let Some(config) = &manifest.config
        && config.size <= MAX_CONFIG_BYTES
        && let Ok(digest) = config.digest.parse::<Digest>()
        && let Some(bytes) = read_small(store, &digest).await?
        && let Some(label) = serde_json::from_slice::<Platform>(&bytes).ok().and_then(|p| p.label())
    {
        platforms.push(label);
    }
    Ok(ImageSummary { compressed_size, platforms })
}

async fn read_small(store: &dyn BlobStore, digest: &Digest) -> Result<Option<Vec<u8>>, CatalogError> {
    let storage = |e: std::io::Error| CatalogError::Internal(format!("reading blob {digest}: {e}"));
    let Some(read) = store.read(digest, None).await.map_err(|e| CatalogError::Internal(e.to_string()))? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    read.into_reader().take(MAX_CONFIG_BYTES).read_to_end(&mut bytes).await.map_err(storage)?;
    Ok(Some(bytes))
}

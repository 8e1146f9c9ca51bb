//! Scanning one manifest: each layer through the cache or the analyzer, the merged
//! inventory matched against the stored feed, and the results stored with the
//! re-assessment index.

use std::collections::BTreeSet;

use slipway_db::NewImageScan;
use slipway_oci::{media_type, platform_images, Descriptor, Digest, ParsedManifest};
use slipway_scanner::analyzer::{ANALYZER_VERSION, Compression, Inventory, LayerReport, analyze_layer, merge};
use slipway_scanner::ScanError;
use slipway_storage::BlobRead;
use tokio::io::AsyncRead;
use tokio_util::io::{StreamReader, SyncIoBridge};

use crate::jobs::ScanImage;
use crate::matching::{advisories_for, index_row, match_rows};
use crate::{Scanning, ScanningError};

/// Config media types of runnable images; other manifests are artifacts (signatures,
/// SBOMs, Helm charts) with nothing to scan.
const IMAGE_CONFIGS: [&str; 2] = ["application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"];

/// Times the matching is redone when the feed changes while a scan stores its results.
const MAX_REMATCHES: usize = 3;

/// What a scan did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ScanOutcome {
    /// Stored: the layers analysed and those found in the cache.
    Scanned { analyzed: usize, cached: usize },
    /// An index: a scan of each platform image was enqueued.
    Platforms(usize),
    /// A manifest that is not a container image; recorded as such.
    Unsupported,
    /// A layer that cannot be analysed (corrupt, or over the limits); recorded as failed.
    Failed(String),
    /// The manifest was deleted before its scan ran.
    Gone,
}

impl Scanning {
    /// Scans a manifest of `repository` now (the `ScanImage` job's work). Failures of the
    /// image itself are recorded and returned as an outcome; an error means the scan
    /// could not run (database or storage trouble) and should be retried.
    pub async fn scan_image(&self, repository: &str, digest: &str) -> Result<ScanOutcome, ScanningError> {
        let Some(record) = self.db.manifest_by_digest(repository, digest).await? else {
            return Ok(ScanOutcome::Gone);
        };
        let manifest = match ParsedManifest::parse(&record.content, Some(&record.media_type)) {
            Ok(manifest) => manifest,
            Err(e) => return self.unscannable(digest, "failed", Some(&format!("manifest does not parse: {e}"))).await,
        };
        if media_type::is_index(&manifest.media_type) {
            let images = platform_images(&record.content);
            for (child, _) in &images {
                self.queue.enqueue(&ScanImage { repository: repository.to_owned(), digest: child.clone() }).await?;
            }
            return Ok(ScanOutcome::Platforms(images.len()));
        }
        if !manifest.config.as_ref().is_some_and(|c| IMAGE_CONFIGS.contains(&c.media_type.as_str())) {
            return self.unscannable(digest, "unsupported", None).await;
        }

        let mut layers: Vec<(String, LayerReport)> = Vec::with_capacity(manifest.layers.len());
        let (mut analyzed, mut cached) = (0, 0);
        for layer in &manifest.layers {
            if media_type::is_non_distributable(&layer.media_type) && self.store.read(&layer.digest, None).await?.is_none() {
                // Foreign layers (Windows base images) live elsewhere; nothing here to read.
                continue;
            }
            match self.layer_report(layer).await? {
                Ok((report, from_cache)) => {
                    if from_cache {
                        cached += 1;
                    } else {
                        analyzed += 1;
                    }
                    layers.push((layer.digest.to_string(), report));
                }
                Err(e) => {
                    let error = format!("layer {}: {e}", layer.digest);
                    return self.unscannable(digest, "failed", Some(&error)).await;
                }
            }
        }
        self.store_inventory(digest, &merge(&layers), analyzed, cached).await?;
        Ok(ScanOutcome::Scanned { analyzed, cached })
    }

    /// Matches an image's merged inventory against the stored feed and stores it, with its
    /// findings and its rows of the re-assessment index: the end of every scan, once its
    /// layers are analysed (`analyzed`) or read from the cache (`cached`).
    pub async fn store_inventory(&self, digest: &str, inventory: &Inventory, analyzed: usize, cached: usize) -> Result<(), ScanningError> {
        let os = inventory.os.as_ref().map(|os| os.pretty_name.clone().unwrap_or_else(|| os.id.clone()));
        let rows: Vec<_> = inventory.packages.iter().map(|p| index_row(digest, p, inventory.os.as_ref())).collect();

        // Advisories imported while this scan matched would be missed by the
        // re-assessment of that import if it ran before these rows were stored: match
        // again until the feed stood still across a whole round.
        for _ in 0..MAX_REMATCHES {
            let revision = self.db.feed_revision().await?;
            let index = advisories_for(&self.db, rows.iter().map(|r| (r.ecosystem.as_str(), r.match_name.as_str()))).await?;
            let findings = match_rows(&index, &rows, slipway_db::now_ms());
            let scan = NewImageScan {
                digest,
                status: "done",
                analyzer_version: i64::from(ANALYZER_VERSION),
                feed_revision: revision,
                os: os.as_deref(),
                error: None,
                layers_analyzed: analyzed as i64,
                layers_cached: cached as i64,
            };
            self.db.store_scan(&scan, &rows, &findings).await?;
            if self.db.feed_revision().await? == revision {
                break;
            }
        }
        Ok(())
    }

    async fn unscannable(&self, digest: &str, status: &str, error: Option<&str>) -> Result<ScanOutcome, ScanningError> {
        let scan = NewImageScan {
            digest,
            status,
            analyzer_version: i64::from(ANALYZER_VERSION),
            feed_revision: self.db.feed_revision().await?,
            os: None,
            error,
            layers_analyzed: 0,
            layers_cached: 0,
        };
        self.db.record_scan_outcome(&scan).await?;
        Ok(match error {
            Some(e) => ScanOutcome::Failed(e.to_owned()),
            None => ScanOutcome::Unsupported,
        })
    }

    /// A layer's report, from the cache (true) or analysed now. The inner error is the
    /// layer's own fault (corrupt, over the limits): retrying would not help.
    async fn layer_report(&self, layer: &Descriptor) -> Result<Result<(LayerReport, bool), ScanError>, ScanningError> {
        let key = layer.digest.to_string();
        if let Some(report) = self.cache.get(&key, ANALYZER_VERSION).await? {
            return Ok(Ok((report, true)));
        }
        let reader = self.open(&layer.digest).await?;
        let compression = Compression::from_media_type(&layer.media_type);
        let limits = self.limits;
        // The analyzer reads synchronously: it runs on a blocking thread, pulling the
        // blob through a bridge, so a layer is never held in memory whole.
        let bridge = SyncIoBridge::new(reader);
        let analysed = tokio::task::spawn_blocking(move || analyze_layer(bridge, compression, &limits))
            .await
            .map_err(|e| ScanningError::Internal(format!("layer analysis stopped: {e}")))?;
        let report = match analysed {
            Ok(report) => report,
            Err(e) => return Ok(Err(e)),
        };
        self.cache.put(&key, ANALYZER_VERSION, &report).await?;
        Ok(Ok((report, false)))
    }

    async fn open(&self, digest: &Digest) -> Result<Box<dyn AsyncRead + Send + Unpin>, ScanningError> {
        let blob = self
            .store
            .read(digest, None)
            .await?
            .ok_or_else(|| ScanningError::Internal(format!("layer {digest} is referenced but not stored")))?;
        Ok(match blob {
            BlobRead::File { file, .. } => Box::new(file),
            BlobRead::Stream { stream, .. } => Box::new(StreamReader::new(stream)),
        })
    }

    /// Image manifests whose scan is requested for `digest` of `repository`: the image
    /// itself, or an index's platform images.
    pub(crate) async fn scan_targets(&self, repository: &str, digest: &str, content: &[u8], media: &str) -> Result<BTreeSet<String>, ScanningError> {
        if !media_type::is_index(media) {
            return Ok(BTreeSet::from([digest.to_owned()]));
        }
        let mut targets = BTreeSet::new();
        for (child, _) in platform_images(content) {
            if self.db.manifest_exists(repository, &child).await? {
                targets.insert(child);
            }
        }
        Ok(targets)
    }
}

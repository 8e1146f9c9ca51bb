//! Scanning one manifest: each layer through the cache or the analyzer, the merged
//! inventory matched against the stored feed, and the results stored with the
//! re-assessment index.

use std::collections::{BTreeMap, BTreeSet};

use sha2::{Digest as _, Sha256};
use slipway_db::{ImagePackageRecord, InventoryPart, NewImageScan};
use slipway_oci::{Descriptor, Digest, ParsedManifest, media_type, platform_images};
use slipway_scanner::ScanError;
use slipway_scanner::analyzer::{ANALYZER_VERSION, Compression, Finding, Inventory, LayerReport, analyze_layer, merge};
use tokio::io::AsyncRead;
use tokio_util::io::SyncIoBridge;

use crate::jobs::ScanImage;
use crate::matching::{advisories_for, index_row, match_rows};
use crate::results::class_rank;
use crate::{Scanning, ScanningError};

/// Config media types of runnable images; other manifests are artifacts (signatures,
/// SBOMs, Helm charts) with nothing to scan.
const IMAGE_CONFIGS: [&str; 2] = ["application/vnd.oci.image.config.v1+json", "application/vnd.docker.container.image.v1+json"];

/// Keeps the first `max` packages a layer lists (in path order) and empties the rest of
/// its package findings (an emptied database still hides those below it, as the full
/// one would); returns how many packages it listed.
fn cap_layer(report: &mut LayerReport, max: usize) -> usize {
    let mut listed = 0;
    for finding in report.findings.values_mut() {
        if let Finding::Packages { packages } = finding {
            let room = max.saturating_sub(listed);
            listed += packages.len();
            packages.truncate(room);
        }
    }
    listed
}

/// An image's index rows split into the parts the database stores once each: the rows of
/// each layer, keyed by a SHA-256 of their content (everything but the image digest), so
/// images sharing a layer (and the OS release that names its packages) share its rows.
fn inventory_parts(rows: &[ImagePackageRecord]) -> Vec<(String, Vec<ImagePackageRecord>)> {
    let mut by_layer: BTreeMap<&str, Vec<ImagePackageRecord>> = BTreeMap::new();
    for row in rows {
        by_layer.entry(row.layer.as_str()).or_default().push(row.clone());
    }
    by_layer
        .into_values()
        .map(|packages| {
            let mut hash = Sha256::new();
            hash.update(b"slipway inventory part 1\n");
            for p in &packages {
                let fields = [
                    Some(&p.purl),
                    Some(&p.path),
                    Some(&p.ecosystem),
                    Some(&p.release),
                    Some(&p.name),
                    Some(&p.match_name),
                    Some(&p.version),
                    p.source_name.as_ref(),
                    p.source_version.as_ref(),
                    Some(&p.layer),
                ];
                for field in fields {
                    // Length-prefixed (absent is not empty): no two rows hash alike.
                    match field {
                        Some(text) => {
                            hash.update((text.len() as u64 + 1).to_le_bytes());
                            hash.update(text.as_bytes());
                        }
                        None => hash.update(0_u64.to_le_bytes()),
                    }
                }
            }
            (format!("sha256:{}", hex::encode(hash.finalize())), packages)
        })
        .collect()
}

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
        let _timed = crate::Timed::new("slipway_scan_duration_seconds");
        let Some(record) = self.images.manifest_by_digest(repository, digest).await? else {
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
        let mut incomplete = Vec::new();
        let max = self.inventory_limits.max_packages_per_layer;
        for (layer, report) in &mut layers {
            // The analysis stopped short of the layer's end (its memory budget ran out).
            if let Some(reason) = &report.incomplete {
                incomplete.push(format!("layer {layer}: {reason}"));
            }
            let listed = cap_layer(report, max);
            if listed > max {
                incomplete.push(format!(
                    "layer {layer} lists {listed} packages, over the limit of {max} per layer (scan.max_packages_per_layer): only the first {max} are kept"
                ));
            }
        }
        self.store_results(digest, merge(&layers), analyzed, cached, incomplete).await?;
        Ok(ScanOutcome::Scanned { analyzed, cached })
    }

    /// Matches an image's merged inventory against the stored feed and stores it, with its
    /// findings and its rows of the re-assessment index: the end of every scan, once its
    /// layers are analysed (`analyzed`) or read from the cache (`cached`).
    pub async fn store_inventory(&self, digest: &str, inventory: &Inventory, analyzed: usize, cached: usize) -> Result<(), ScanningError> {
        self.store_results(digest, inventory.clone(), analyzed, cached, Vec::new()).await
    }

    /// `store_inventory`, with the image's inventory and findings held to their limits;
    /// `incomplete` says what was left out already (layers over their limit).
    async fn store_results(
        &self,
        digest: &str,
        mut inventory: Inventory,
        analyzed: usize,
        cached: usize,
        mut incomplete: Vec<String>,
    ) -> Result<(), ScanningError> {
        let limits = self.inventory_limits;
        let listed = inventory.packages.len();
        if listed > limits.max_packages_per_image {
            inventory.packages.truncate(limits.max_packages_per_image);
            incomplete.push(format!(
                "the image holds {listed} packages, over the limit of {} per image (scan.max_packages_per_image): only the first {} are kept",
                limits.max_packages_per_image, limits.max_packages_per_image
            ));
        }
        let os = inventory.os.as_ref().map(|os| os.pretty_name.clone().unwrap_or_else(|| os.id.clone()));
        let rows: Vec<_> = inventory.packages.iter().map(|p| index_row(digest, p, inventory.os.as_ref())).collect();
        let parts = inventory_parts(&rows);
        let parts: Vec<InventoryPart<'_>> = parts.iter().map(|(content, packages)| InventoryPart { content, packages }).collect();

        // Advisories imported while this scan matched would be missed by the
        // re-assessment of that import if it ran before these rows were stored: match
        // again until the feed stood still across a whole round.
        for _ in 0..MAX_REMATCHES {
            let revision = self.db.feed_revision().await?;
            let index = advisories_for(&self.db, rows.iter().map(|r| (r.ecosystem.as_str(), r.match_name.as_str()))).await?;
            let mut findings = match_rows(&index, &rows, self.db.clock().now_ms());
            let mut reasons = incomplete.clone();
            let found = findings.len();
            let max = limits.max_findings_per_image;
            if found > max {
                findings.sort_by_key(|f| class_rank(&f.class));
                findings.truncate(max);
                reasons.push(format!(
                    "{found} findings, over the limit of {max} per image (scan.max_findings_per_image): only the {max} most severe are kept"
                ));
            }
            let reasons = (!reasons.is_empty()).then(|| reasons.join("; "));
            let scan = NewImageScan {
                digest,
                status: "done",
                analyzer_version: i64::from(ANALYZER_VERSION),
                feed_revision: revision,
                os: os.as_deref(),
                error: None,
                layers_analyzed: analyzed as i64,
                layers_cached: cached as i64,
                incomplete: reasons.as_deref(),
            };
            self.db.store_scan(&scan, &parts, &findings).await?;
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
            incomplete: None,
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
        Ok(blob.into_reader())
    }

    /// Image manifests whose scan is requested for `digest` of `repository`: the image
    /// itself, or an index's platform images.
    pub(crate) async fn scan_targets(
        &self,
        repository: &str,
        digest: &str,
        content: &[u8],
        media: &str,
    ) -> Result<BTreeSet<String>, ScanningError> {
        if !media_type::is_index(media) {
            return Ok(BTreeSet::from([digest.to_owned()]));
        }
        let mut targets = BTreeSet::new();
        for (child, _) in platform_images(content) {
            if self.images.manifest_exists(repository, &child).await? {
                targets.insert(child);
            }
        }
        Ok(targets)
    }
}

#[cfg(test)]
mod tests {
    use slipway_scanner::analyzer::{Ecosystem, FoundPackage};

    use super::*;

    fn found(name: &str) -> FoundPackage {
        FoundPackage {
            ecosystem: Ecosystem::Npm,
            name: name.into(),
            version: "1.0".into(),
            source_name: None,
            source_version: None,
            arch: None,
            inner_path: None,
            files: Vec::new(),
        }
    }

    fn row(digest: &str, name: &str, layer: &str) -> ImagePackageRecord {
        ImagePackageRecord {
            digest: digest.into(),
            purl: format!("pkg:npm/{name}@1.0"),
            path: format!("app/node_modules/{name}/package.json"),
            ecosystem: "npm".into(),
            release: String::new(),
            name: name.into(),
            match_name: name.into(),
            version: "1.0".into(),
            source_name: None,
            source_version: None,
            layer: layer.into(),
        }
    }

    /// Issue 14, item 5: a layer's packages are held to the per-layer limit, the first
    /// in path order kept.
    #[test]
    fn a_layer_over_the_limit_keeps_its_first_packages() {
        let mut report = LayerReport::default();
        report.findings.insert("a/package.json".into(), Finding::Packages { packages: vec![found("a1"), found("a2")] });
        report.findings.insert("b/package.json".into(), Finding::Packages { packages: vec![found("b1"), found("b2")] });
        report.findings.insert("c/package.json".into(), Finding::Packages { packages: vec![found("c1")] });
        assert_eq!(cap_layer(&mut report.clone(), 5), 5);
        assert_eq!(cap_layer(&mut report, 3), 5);
        let kept: Vec<&str> = report
            .findings
            .values()
            .flat_map(|f| match f {
                Finding::Packages { packages } => packages.iter().map(|p| p.name.as_str()).collect(),
                _ => Vec::new(),
            })
            .collect();
        assert_eq!(kept, ["a1", "a2", "b1"]);
    }

    /// Parts are per layer, and keyed by their rows alone: two images sharing a layer
    /// share its part.
    #[test]
    fn parts_are_per_layer_and_keyed_by_content_not_image() {
        let first = inventory_parts(&[row("sha256:i1", "a", "sha256:l1"), row("sha256:i1", "b", "sha256:l2")]);
        let second = inventory_parts(&[row("sha256:i2", "a", "sha256:l1"), row("sha256:i2", "c", "sha256:l3")]);
        assert_eq!((first.len(), second.len()), (2, 2));
        assert_eq!(first[0].0, second[0].0, "the shared layer's part");
        assert_ne!(first[1].0, second[1].0);
        // A field moved from one column to the next is another part.
        let mut shifted = row("sha256:i1", "a", "sha256:l1");
        shifted.source_name = Some(String::new());
        assert_ne!(inventory_parts(&[shifted])[0].0, first[0].0);
    }
}

//! Scan results and scan requests, and what each caller sees (the policy decides who).
//!
//! Full results (packages, findings, layers) are for the members of the organization
//! owning the repository (its first path segment) and for moderators and admins. To
//! everyone else a repository's results do not exist: the answer is the same "not found"
//! as for a repository that does not exist, so private repositories stay unseen. A
//! published listing shows everyone a summary per version instead.

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;
use slipway_auth::access::Subject;
use slipway_db::{FindingRecord, ImagePackageRecord, ImageScanRecord, ManifestRecord};
use slipway_oci::{Reference, RepoName, media_type};
use slipway_policy::{Action, Actor, Resource, decide};
use slipway_scanner::cvss::Severity;
use utoipa::ToSchema;

use crate::jobs::ScanImage;
use crate::layers::LayerEntry;
use crate::{Scanning, ScanningError};
use slipway_oci::platform_images;

/// Findings per store policy class.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct ClassCounts {
    /// CVSS 7.0 and above: to be fixed within 72 hours.
    pub critical: i64,
    /// CVSS 4.0 to 6.9: to be fixed within 7 days.
    pub major: i64,
    /// Below 4.0.
    pub minor: i64,
    /// Without a severity.
    pub unrated: i64,
}

impl ClassCounts {
    pub(crate) fn of(scan: &ImageScanRecord) -> ClassCounts {
        ClassCounts { critical: scan.critical, major: scan.major, minor: scan.minor, unrated: scan.unrated }
    }

    /// Per class, the larger count.
    fn worst(self, other: ClassCounts) -> ClassCounts {
        ClassCounts {
            critical: self.critical.max(other.critical),
            major: self.major.max(other.major),
            minor: self.minor.max(other.minor),
            unrated: self.unrated.max(other.unrated),
        }
    }
}

/// A version's public summary.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct SecuritySummary {
    /// For a multi-platform image, per class the count of its worst platform.
    pub counts: ClassCounts,
    /// Unix milliseconds of the (oldest platform's) scan.
    pub scanned_at: i64,
    /// Whether the counts come from partial results (some platform's inventory or
    /// findings were over the configured limits).
    pub incomplete: bool,
    /// No vulnerability feed is loaded in this store: zero counts mean "not checked",
    /// never "clean". (Once one is, re-assessment matches every scanned image against it.)
    pub without_feed: bool,
}

/// Everything known about a manifest's security.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ScanResults {
    pub repository: String,
    pub reference: String,
    pub digest: String,
    pub media_type: String,
    /// The image, or each platform image of an index.
    pub images: Vec<ImageResults>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ImageResults {
    pub digest: String,
    /// `os/architecture[/variant]`, for a platform image of an index.
    pub platform: Option<String>,
    /// Whether a scan of it waits or runs.
    pub queued: bool,
    /// The latest scan; absent if it was never scanned.
    pub scan: Option<ScanState>,
    /// Its layers from the base, each with the build step that made it.
    pub layers: Vec<LayerEntry>,
    pub packages: Vec<PackageEntry>,
    /// Most severe first.
    pub findings: Vec<FindingEntry>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ScanState {
    /// `done`, `failed`, or `unsupported` (not a container image).
    pub status: String,
    pub scanned_at: i64,
    pub os: Option<String>,
    pub error: Option<String>,
    pub analyzer_version: i64,
    /// The feed revision the findings were matched against at scan time; re-assessment
    /// keeps them current since.
    pub feed_revision: i64,
    pub layers_analyzed: i64,
    /// Layers whose analysis came from the cache.
    pub layers_cached: i64,
    pub counts: ClassCounts,
    /// Why the packages or findings shown are only part of the image's (more than the
    /// configured limits allow); absent when they are complete.
    pub incomplete: Option<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PackageEntry {
    pub ecosystem: String,
    pub name: String,
    pub version: String,
    pub source_name: Option<String>,
    pub source_version: Option<String>,
    pub purl: String,
    /// The file it was found in.
    pub path: String,
    /// The digest of the layer that introduced this version.
    pub layer: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct FindingEntry {
    pub advisory_id: String,
    /// CVE ids first.
    pub aliases: Vec<String>,
    pub package_name: String,
    /// The affected package's purl.
    pub purl: String,
    pub installed_version: String,
    pub fixed_version: Option<String>,
    /// `fix_available`, `unfixed` or `will_not_fix`.
    pub status: String,
    /// `critical`, `major`, `minor` or `unrated`.
    pub class: String,
    pub severity: Option<SeverityEntry>,
    pub first_seen: i64,
    /// The layers that introduced the affected package.
    pub layers: Vec<String>,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SeverityEntry {
    /// The CVSS base score, when the severity came from a vector.
    pub score: Option<f64>,
    pub vector: Option<String>,
    /// The vendor's own word, when it came from a vendor's rating.
    pub rating: Option<String>,
    /// The CVSS qualitative band: None, Low, Medium, High, Critical.
    pub band: String,
    /// Where it came from, e.g. "CVSS v3.1 vector" or "Debian urgency".
    pub source: String,
}

impl From<Severity> for SeverityEntry {
    fn from(s: Severity) -> SeverityEntry {
        SeverityEntry {
            score: s.score.map(|score| score.value()),
            vector: s.vector,
            rating: s.rating,
            band: s.band.to_string(),
            source: s.source.to_string(),
        }
    }
}

/// Scans enqueued on request.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ScanRequested {
    pub repository: String,
    /// The image manifests to be scanned (an index's platform images).
    pub digests: Vec<String>,
    /// The queued job of each, in the same order.
    pub jobs: Vec<String>,
}

/// The organization owning a repository.
/// Names and references are checked before any query: the database never sees text that
/// no repository could have (PostgreSQL refuses some, such as NUL, with an error).
pub(crate) fn repository_name(repository: &str) -> Result<RepoName, ScanningError> {
    repository.parse().map_err(|_| invalid(repository))
}

fn invalid(what: &str) -> ScanningError {
    ScanningError::Invalid(format!("{what:?} is not a repository name or reference"))
}

/// Asks the policy about `repository`'s scans. A refusal that hides them answers
/// `not_found`, word for word what a repository without the manifest answers; the policy
/// sends nobody asking about scans to sign in (anonymous callers are not shown them either).
pub(crate) fn check(
    subject: Option<&Subject>,
    action: Action,
    repository: &str,
    not_found: impl FnOnce() -> ScanningError,
) -> Result<(), ScanningError> {
    match decide(&Actor::maybe(subject), action, &Resource::Scans { repository }).into_result() {
        Ok(()) => Ok(()),
        Err(refusal) if refusal.kind == slipway_types::ErrorKind::NotFound => Err(not_found()),
        Err(refusal) => Err(ScanningError::Forbidden(refusal.reason)),
    }
}

/// Most severe first.
pub(crate) fn class_rank(class: &str) -> u8 {
    match class {
        "critical" => 0,
        "major" => 1,
        "minor" => 2,
        _ => 3,
    }
}

impl Scanning {
    /// The full results for a tag or digest of `repository`, for those who may read them.
    pub async fn results(&self, subject: Option<&Subject>, repository: &str, reference: &str) -> Result<ScanResults, ScanningError> {
        let not_found = || ScanningError::NotFound(format!("no manifest {reference} in {repository}"));
        check(subject, Action::ReadScans, repository, not_found)?;
        let name = repository_name(repository)?;
        let manifest = self.manifest(&name, reference).await?.ok_or_else(not_found)?;
        let targets: Vec<(String, Option<String>)> = if media_type::is_index(&manifest.media_type) {
            platform_images(&manifest.content).into_iter().map(|(digest, platform)| (digest, Some(platform))).collect()
        } else {
            vec![(manifest.digest.clone(), None)]
        };
        let mut images = Vec::with_capacity(targets.len());
        for (digest, platform) in targets {
            images.push(self.image_results(repository, digest, platform).await?);
        }
        Ok(ScanResults {
            repository: repository.to_owned(),
            reference: reference.to_owned(),
            digest: manifest.digest,
            media_type: manifest.media_type,
            images,
        })
    }

    /// Enqueues scans of a tag or digest of `repository`, or of every tagged manifest.
    /// Members may see whether a repository exists; only its maintainers and owners (and
    /// moderators) may have it scanned.
    pub async fn request_scan(
        &self,
        subject: Option<&Subject>,
        repository: &str,
        reference: Option<&str>,
    ) -> Result<ScanRequested, ScanningError> {
        let not_found = || ScanningError::NotFound(format!("no manifest {} in {repository}", reference.unwrap_or("tagged")));
        check(subject, Action::RequestScan, repository, not_found)?;
        let name = repository_name(repository)?;
        let mut targets = BTreeSet::new();
        match reference {
            Some(reference) => {
                let manifest = self.manifest(&name, reference).await?.ok_or_else(not_found)?;
                targets.extend(self.scan_targets(repository, &manifest.digest, &manifest.content, &manifest.media_type).await?);
            }
            None => {
                for (_, digest, media, content, _) in self.images.tagged_manifests(name.as_str()).await? {
                    targets.extend(self.scan_targets(repository, &digest, &content, &media).await?);
                }
            }
        }
        if targets.is_empty() {
            return Err(not_found());
        }
        let mut requested = ScanRequested { repository: repository.to_owned(), digests: Vec::new(), jobs: Vec::new() };
        for digest in targets {
            let job = self.queue.enqueue(&ScanImage { repository: repository.to_owned(), digest: digest.clone() }).await?;
            requested.digests.push(digest);
            requested.jobs.push(job);
        }
        Ok(requested)
    }

    /// The public summary of a manifest of `repository`; `None` until it was scanned.
    /// The caller shows it only for a published listing's versions.
    pub async fn summary(&self, repository: &str, digest: &str) -> Result<Option<SecuritySummary>, ScanningError> {
        let Some(manifest) = self.images.manifest_by_digest(repository, digest).await? else { return Ok(None) };
        let images: Vec<String> = if media_type::is_index(&manifest.media_type) {
            platform_images(&manifest.content).into_iter().map(|(digest, _)| digest).collect()
        } else {
            vec![manifest.digest]
        };
        let without_feed = self.db.feed_revision().await? == 0;
        let mut summary: Option<SecuritySummary> = None;
        for image in images {
            let Some(scan) = self.db.image_scan(&image).await?.filter(|s| s.status == "done") else { continue };
            let this = SecuritySummary {
                counts: ClassCounts::of(&scan),
                scanned_at: scan.scanned_at,
                incomplete: scan.incomplete.is_some(),
                without_feed,
            };
            summary = Some(match summary {
                Some(s) => SecuritySummary {
                    counts: s.counts.worst(this.counts),
                    scanned_at: s.scanned_at.min(this.scanned_at),
                    incomplete: s.incomplete || this.incomplete,
                    without_feed,
                },
                None => this,
            });
        }
        Ok(summary)
    }

    async fn manifest(&self, repository: &RepoName, reference: &str) -> Result<Option<ManifestRecord>, ScanningError> {
        let reference: Reference = reference.parse().map_err(|_| invalid(reference))?;
        Ok(match reference {
            Reference::Tag(tag) => self.images.manifest_by_tag(repository.as_str(), tag.as_str()).await?,
            Reference::Digest(digest) => self.images.manifest_by_digest(repository.as_str(), &digest.to_string()).await?,
        })
    }

    async fn image_results(&self, repository: &str, digest: String, platform: Option<String>) -> Result<ImageResults, ScanningError> {
        let queued = self.queue.job_by_key::<ScanImage>(&digest).await?.is_some_and(|job| job.failed_at.is_none());
        let scan = self.db.image_scan(&digest).await?;
        let packages = self.db.image_packages(&digest).await?;
        let mut layers: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for p in &packages {
            layers.entry(p.purl.as_str()).or_default().insert(p.layer.as_str());
        }
        let mut findings = Vec::new();
        for f in self.db.findings(&digest).await? {
            let layers = layers.get(f.package.as_str()).map(|l| l.iter().map(|s| (*s).to_owned()).collect()).unwrap_or_default();
            findings.push(finding_entry(f, layers)?);
        }
        findings.sort_by(|a, b| (class_rank(&a.class), &a.advisory_id, &a.purl).cmp(&(class_rank(&b.class), &b.advisory_id, &b.purl)));
        Ok(ImageResults {
            layers: self.layers(repository, &digest).await?,
            scan: scan.map(|s| ScanState {
                counts: ClassCounts::of(&s),
                status: s.status,
                scanned_at: s.scanned_at,
                os: s.os,
                error: s.error,
                incomplete: s.incomplete,
                analyzer_version: s.analyzer_version,
                feed_revision: s.feed_revision,
                layers_analyzed: s.layers_analyzed,
                layers_cached: s.layers_cached,
            }),
            packages: packages.into_iter().map(package_entry).collect(),
            findings,
            digest,
            platform,
            queued,
        })
    }
}

fn package_entry(p: ImagePackageRecord) -> PackageEntry {
    PackageEntry {
        ecosystem: p.ecosystem,
        name: p.name,
        version: p.version,
        source_name: p.source_name,
        source_version: p.source_version,
        purl: p.purl,
        path: p.path,
        layer: p.layer,
    }
}

fn finding_entry(f: FindingRecord, layers: Vec<String>) -> Result<FindingEntry, ScanningError> {
    let severity = f.severity.as_deref().map(serde_json::from_str::<Severity>).transpose()?.map(SeverityEntry::from);
    Ok(FindingEntry {
        advisory_id: f.advisory_id,
        aliases: serde_json::from_str(&f.aliases)?,
        package_name: f.package_name,
        purl: f.package,
        installed_version: f.installed_version,
        fixed_version: f.fixed_version,
        status: f.status,
        class: f.class,
        severity,
        first_seen: f.first_seen,
        layers,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_worst_platform_decides_each_class() {
        let a = ClassCounts { critical: 1, major: 0, minor: 5, unrated: 0 };
        let b = ClassCounts { critical: 0, major: 2, minor: 3, unrated: 1 };
        assert_eq!(a.worst(b), ClassCounts { critical: 1, major: 2, minor: 5, unrated: 1 });
    }
}

//! A manifest's stored scan results as a download for its publisher: CSV, one line per
//! vulnerability of a package of an image.

use slipway_auth::access::Subject;
use slipway_oci::{Digest, ParsedManifest, media_type};
use slipway_policy::Action;
use slipway_scanner::analyzer::{Ecosystem, OsRelease, Package};
use slipway_scanner::cvss::{PolicyClass, Severity};
use slipway_scanner::image::{Image, Layer};
use slipway_scanner::osv::FixState;
use slipway_scanner::report::{self, Generator};
use slipway_scanner::scan::{LayerOutcome, LayerState, ScanReport, ScannedPackage, Timings, Vulnerability};
use slipway_types::csv_line;

use crate::results::{ScanResults, check, repository_name};
use crate::{Scanning, ScanningError};

const COLUMNS: [&str; 15] = [
    "image",
    "platform",
    "vulnerability",
    "advisory",
    "aliases",
    "class",
    "cvss_score",
    "cvss_vector",
    "severity_source",
    "package",
    "purl",
    "installed_version",
    "fixed_version",
    "status",
    "layers",
];

/// The results as CSV (RFC 4180, CRLF line ends), a header line first; `vulnerability` is
/// the first CVE id of the finding, or its advisory's id.
fn findings_csv(results: &ScanResults) -> String {
    let mut out = csv_line(&COLUMNS);
    for image in &results.images {
        for f in &image.findings {
            let vulnerability =
                std::iter::once(&f.advisory_id).chain(&f.aliases).find(|id| id.starts_with("CVE-")).unwrap_or(&f.advisory_id);
            let score = f.severity.as_ref().and_then(|s| s.score).map(|s| format!("{s:.1}")).unwrap_or_default();
            out.push_str(&csv_line(&[
                image.digest.as_str(),
                image.platform.as_deref().unwrap_or_default(),
                vulnerability,
                &f.advisory_id,
                &f.aliases.join(" "),
                &f.class,
                &score,
                f.severity.as_ref().and_then(|s| s.vector.as_deref()).unwrap_or_default(),
                f.severity.as_ref().map_or("", |s| s.source.as_str()),
                &f.package_name,
                &f.purl,
                &f.installed_version,
                f.fixed_version.as_deref().unwrap_or_default(),
                &f.status,
                &f.layers.join(" "),
            ]));
        }
    }
    out
}

/// A download's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExportFormat {
    Csv,
    /// SARIF 2.1.0, for code scanning services.
    Sarif,
    /// A CycloneDX 1.6 SBOM with its vulnerabilities.
    CycloneDx,
}

impl ExportFormat {
    pub fn parse(s: &str) -> Option<ExportFormat> {
        match s {
            "csv" => Some(ExportFormat::Csv),
            "sarif" => Some(ExportFormat::Sarif),
            "cyclonedx" => Some(ExportFormat::CycloneDx),
            _ => None,
        }
    }

    /// The Content-Type and file extension of a download.
    pub fn content_type(self) -> (&'static str, &'static str) {
        match self {
            ExportFormat::Csv => ("text/csv; charset=utf-8", "csv"),
            ExportFormat::Sarif => ("application/sarif+json", "sarif.json"),
            ExportFormat::CycloneDx => ("application/vnd.cyclonedx+json", "cdx.json"),
        }
    }
}

impl Scanning {
    /// An image's stored results as a download: for its repository's members and staff.
    /// SARIF and CycloneDX are written by the scanner's own writers (as `slipway scan`
    /// writes them) from a report rebuilt from what the scan stored; an index is one
    /// download per platform image.
    pub async fn export(
        &self,
        subject: Option<&Subject>,
        repository: &str,
        digest: &str,
        format: ExportFormat,
    ) -> Result<String, ScanningError> {
        if format == ExportFormat::Csv {
            return Ok(findings_csv(&self.results(subject, repository, digest).await?));
        }
        let report = self.stored_report(subject, repository, digest).await?;
        let now_ms = self.db.clock().now_ms();
        let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(u64::try_from(now_ms).unwrap_or_default());
        let timestamp = humantime::format_rfc3339_seconds(at).to_string();
        let generator = Generator { name: "slipway", version: env!("CARGO_PKG_VERSION"), timestamp: &timestamp };
        let document = match format {
            ExportFormat::Sarif => report::sarif::document(&report, &generator),
            _ => report::cyclonedx::document(&report, &generator, &format!("urn:uuid:{}", uuid::Uuid::new_v4())),
        };
        Ok(serde_json::to_string_pretty(&document)?)
    }

    async fn stored_report(&self, subject: Option<&Subject>, repository: &str, digest: &str) -> Result<ScanReport, ScanningError> {
        let not_found = || ScanningError::NotFound(format!("no image {digest} in {repository}"));
        check(subject, Action::ReadScans, repository, not_found)?;
        repository_name(repository)?;
        let parsed: Digest = digest.parse().map_err(|_| ScanningError::Invalid(format!("{digest:?} is not a digest")))?;
        let record = self.images.manifest_by_digest(repository, digest).await?.ok_or_else(not_found)?;
        let manifest = ParsedManifest::parse(&record.content, Some(&record.media_type)).map_err(|_| not_found())?;
        if media_type::is_index(&manifest.media_type) {
            return Err(ScanningError::Invalid(format!("{digest} is an index: download each platform's image")));
        }
        let scan = self.db.image_scan(digest).await?;
        let rows = self.db.image_packages(digest).await?;
        let os = scan.as_ref().and_then(|s| s.os.clone()).map(|pretty| {
            let distribution = rows.iter().find(|p| !p.release.is_empty());
            OsRelease {
                id: distribution.map(|p| p.ecosystem.to_lowercase()).unwrap_or_default(),
                version_id: distribution.map(|p| p.release.clone()),
                version_codename: None,
                pretty_name: Some(pretty),
            }
        });
        let packages: Vec<ScannedPackage> = rows
            .into_iter()
            .filter_map(|p| {
                let ecosystem = ecosystem_of(&p.purl)?;
                Some(ScannedPackage {
                    package: Package {
                        ecosystem,
                        name: p.name,
                        version: p.version,
                        source_name: p.source_name,
                        source_version: p.source_version,
                        arch: None,
                        purl: p.purl,
                        path: p.path,
                        layer: p.layer,
                    },
                    osv: None,
                    error: None,
                })
            })
            .collect();
        // The first package of each purl, found once per finding without a scan of the
        // list (tens of thousands of findings and packages at the limits).
        let mut by_purl: std::collections::HashMap<&str, usize> = std::collections::HashMap::new();
        for (i, p) in packages.iter().enumerate() {
            by_purl.entry(p.package.purl.as_str()).or_insert(i);
        }
        let mut vulnerabilities = Vec::new();
        for f in self.db.findings(digest).await? {
            let Some(&package) = by_purl.get(f.package.as_str()) else { continue };
            let severity = f.severity.as_deref().map(serde_json::from_str::<Severity>).transpose()?;
            vulnerabilities.push(Vulnerability {
                package,
                aliases: serde_json::from_str(&f.aliases)?,
                advisory_id: f.advisory_id,
                summary: None,
                details: None,
                published: None,
                modified: None,
                installed_version: f.installed_version,
                fixed_version: f.fixed_version,
                status: match f.status.as_str() {
                    "fix_available" => FixState::FixAvailable,
                    "will_not_fix" => FixState::WillNotFix,
                    _ => FixState::Unfixed,
                },
                severities: severity.iter().cloned().collect(),
                severity,
            });
        }
        // Most severe first, as a scan reports them.
        vulnerabilities.sort_by(|a, b| b.class().map(rank).cmp(&a.class().map(rank)).then_with(|| a.advisory_id.cmp(&b.advisory_id)));
        let incomplete = scan.as_ref().and_then(|s| s.incomplete.clone());
        let layers = manifest
            .layers
            .iter()
            .enumerate()
            .map(|(i, l)| LayerOutcome {
                digest: l.digest.clone(),
                media_type: Some(l.media_type.clone()),
                size: Some(l.size),
                state: LayerState::Cached,
                // What the stored scan left out is told once, on the first layer.
                incomplete: if i == 0 { incomplete.clone() } else { None },
                elapsed: std::time::Duration::ZERO,
            })
            .collect();
        let image = Image {
            name: format!("{repository}@{digest}"),
            digest: Some(parsed),
            config_digest: manifest.config.as_ref().map(|c| c.digest.clone()),
            platform: None,
            layers: manifest
                .layers
                .iter()
                .map(|l| Layer { digest: l.digest.clone(), media_type: Some(l.media_type.clone()), size: Some(l.size) })
                .collect(),
        };
        Ok(ScanReport { image, os, distribution: None, packages, vulnerabilities, layers, issues: Vec::new(), timings: Timings::default() })
    }
}

fn rank(class: PolicyClass) -> u8 {
    match class {
        PolicyClass::Critical => 3,
        PolicyClass::Major => 2,
        PolicyClass::Minor => 1,
    }
}

/// The package format of a purl, by its type.
fn ecosystem_of(purl: &str) -> Option<Ecosystem> {
    let kind = purl.strip_prefix("pkg:")?.split('/').next()?;
    Some(match kind {
        "deb" => Ecosystem::Deb,
        "apk" => Ecosystem::Apk,
        "rpm" => Ecosystem::Rpm,
        "pypi" => Ecosystem::PyPI,
        "npm" => Ecosystem::Npm,
        "golang" => Ecosystem::Go,
        "cargo" => Ecosystem::CratesIo,
        "maven" => Ecosystem::Maven,
        "gem" => Ecosystem::RubyGems,
        "composer" => Ecosystem::Packagist,
        _ => return None,
    })
}

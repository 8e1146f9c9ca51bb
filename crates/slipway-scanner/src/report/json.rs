//! Slipway's JSON report, `schema_version` 1.
//!
//! Stable: fields are only ever added within a schema version; a removal or a change
//! of meaning bumps it. Absent values are `null`, never missing. The document:
//!
//! ```text
//! {
//!   "schema_version": 1,
//!   "generator": {"name": "slipway", "version": "0.1.0"},
//!   "generated_at": "2024-05-01T12:00:00Z",          RFC 3339
//!   "image": {
//!     "name": "oci:./image:1.0",                      the target as given
//!     "digest": "sha256:…" | null,                    the manifest's (none for docker save)
//!     "config_digest": "sha256:…" | null,             the image ID
//!     "platform": "linux/amd64" | null
//!   },
//!   "os": {"id", "version_id", "version_codename", "pretty_name"} | null,   os-release
//!   "osv_ecosystem": "Debian:12" | null,              the distribution's advisories
//!   "complete": true,                                 false if a layer failed
//!   "layers": [{
//!     "digest", "media_type", "size",
//!     "state": "analyzed" | "cached" | "failed",
//!     "bytes_read": n | null, "error": "…" | null, "elapsed_ms": n
//!   }],
//!   "packages": [{
//!     "ecosystem": "deb" | "apk" | "rpm" | "PyPI" | "npm" | "Go" | "crates.io" | "Maven"
//!                  | "RubyGems" | "Packagist",
//!     "name", "version", "source_name", "source_version", "arch", "purl",
//!     "path",                                         the database or manifest read
//!     "layer",                                        digest of the layer that installed it
//!     "osv_ecosystem": "Debian:12" | "PyPI" | null,   null: no advisory database covers it
//!     "error": "…" | null                             why it could not be checked
//!   }],
//!   "vulnerabilities": [{                             most severe first
//!     "id": "DEBIAN-CVE-2024-6387", "aliases": ["CVE-2024-6387"],
//!     "summary", "details", "published", "modified", "url",
//!     "package": n,                                   index into "packages"
//!     "package_name", "installed_version", "fixed_version" | null,
//!     "fix_state": "fix_available" | "unfixed" | "will_not_fix",
//!     "severity": {                                   the rating shown; null if none
//!       "class": "critical" | "major" | "minor",      the store's policy class
//!       "fix_within_hours": 72 | 168 | null,
//!       "band": "none" | "low" | "medium" | "high" | "critical",   CVSS band
//!       "score": 8.1 | null, "vector": "CVSS:3.1/…" | null,
//!       "rating": "low" | null,                       a vendor's own word
//!       "source": "cvss_v3.0" | "cvss_v3.1" | "cvss_v4.0" | "debian_urgency"
//!                 | "ubuntu_priority" | "ghsa_severity"
//!     } | null,
//!     "ratings": [ same objects ]                     every rating, in precedence order
//!   }],
//!   "summary": {"critical": n, "major": n, "minor": n, "unrated": n, "packages": n,
//!               "unchecked_packages": n},
//!   "issues": [{"layer", "path", "message"}],        files inside layers not read
//!   "timings_ms": {"analysis": n, "matching": n}
//! }
//! ```

use serde_json::{Value, json};

use super::{Generator, advisory_url, band_name, class_name, fix_state_name, source_name};
use crate::cvss::{PolicyClass, Severity};
use crate::scan::{LayerState, ScanReport};

/// The schema version this module writes.
pub const SCHEMA_VERSION: u32 = 1;

pub fn document(report: &ScanReport, generator: &Generator<'_>) -> Value {
    let image = &report.image;
    let layers: Vec<Value> = report
        .layers
        .iter()
        .map(|layer| {
            let (state, bytes, error) = match &layer.state {
                LayerState::Analyzed { bytes } => ("analyzed", Some(*bytes), None),
                LayerState::Cached => ("cached", None, None),
                LayerState::Failed { error } => ("failed", None, Some(error.as_str())),
            };
            json!({
                "digest": layer.digest.to_string(),
                "media_type": layer.media_type,
                "size": layer.size,
                "state": state,
                "bytes_read": bytes,
                "error": error,
                "incomplete": layer.incomplete,
                "elapsed_ms": millis(layer.elapsed),
            })
        })
        .collect();
    let packages: Vec<Value> = report
        .packages
        .iter()
        .map(|scanned| {
            let p = &scanned.package;
            json!({
                "ecosystem": p.ecosystem,
                "name": p.name,
                "version": p.version,
                "source_name": p.source_name,
                "source_version": p.source_version,
                "arch": p.arch,
                "purl": p.purl,
                "path": p.path,
                "layer": p.layer,
                "osv_ecosystem": scanned.osv.as_ref().map(ToString::to_string),
                "error": scanned.error,
            })
        })
        .collect();
    let vulnerabilities: Vec<Value> = report
        .vulnerabilities
        .iter()
        .map(|v| {
            json!({
                "id": v.advisory_id,
                "aliases": v.aliases,
                "summary": v.summary,
                "details": v.details,
                "published": v.published,
                "modified": v.modified,
                "url": advisory_url(&v.advisory_id),
                "package": v.package,
                "package_name": report.packages[v.package].package.name,
                "installed_version": v.installed_version,
                "fixed_version": v.fixed_version,
                "fix_state": fix_state_name(v.status),
                "severity": v.severity.as_ref().map(severity),
                "ratings": v.severities.iter().map(severity).collect::<Vec<_>>(),
            })
        })
        .collect();
    let count = |class| report.vulnerabilities.iter().filter(|v| v.class() == class).count();
    json!({
        "schema_version": SCHEMA_VERSION,
        "generator": {"name": generator.name, "version": generator.version},
        "generated_at": generator.timestamp,
        "image": {
            "name": image.name,
            "digest": image.digest.as_ref().map(ToString::to_string),
            "config_digest": image.config_digest.as_ref().map(ToString::to_string),
            "platform": image.platform.as_ref().map(ToString::to_string),
        },
        "os": report.os.as_ref().map(|os| json!({
            "id": os.id,
            "version_id": os.version_id,
            "version_codename": os.version_codename,
            "pretty_name": os.pretty_name,
        })),
        "osv_ecosystem": report.distribution.as_ref().map(ToString::to_string),
        "complete": report.is_complete(),
        "layers": layers,
        "packages": packages,
        "vulnerabilities": vulnerabilities,
        "summary": {
            "critical": count(Some(PolicyClass::Critical)),
            "major": count(Some(PolicyClass::Major)),
            "minor": count(Some(PolicyClass::Minor)),
            "unrated": count(None),
            "packages": report.packages.len(),
            "unchecked_packages": report.packages.iter().filter(|p| p.osv.is_none() || p.error.is_some()).count(),
        },
        "issues": report.issues.iter().map(|issue| json!({
            "layer": issue.layer,
            "path": issue.issue.path,
            "message": issue.issue.message,
        })).collect::<Vec<_>>(),
        "timings_ms": {
            "analysis": millis(report.timings.analysis),
            "matching": millis(report.timings.matching),
        },
    })
}

fn severity(severity: &Severity) -> Value {
    json!({
        "class": class_name(severity.class),
        "fix_within_hours": severity.class.fix_within().map(|d| d.as_secs() / 3600),
        "band": band_name(severity.band),
        "score": severity.score.map(|s| s.value()),
        "vector": severity.vector,
        "rating": severity.rating,
        "source": source_name(severity.source),
    })
}

fn millis(duration: std::time::Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

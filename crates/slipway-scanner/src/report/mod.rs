//! Scan reports as documents: Slipway's own JSON ([`json`]), SARIF 2.1.0 for code
//! scanning tools ([`sarif`]) and a CycloneDX 1.6 SBOM with its vulnerabilities
//! ([`cyclonedx`]).

pub mod cyclonedx;
pub mod json;
pub mod sarif;

use crate::cvss::{Band, CvssVersion, PolicyClass, Severity, SeveritySource, VendorScale};
use crate::osv::FixState;

/// Who made a document, and when.
#[derive(Clone, Copy, Debug)]
pub struct Generator<'a> {
    pub name: &'a str,
    pub version: &'a str,
    /// RFC 3339, e.g. `2024-05-01T12:00:00Z`.
    pub timestamp: &'a str,
}

/// Machine names used across the documents.
fn class_name(class: PolicyClass) -> &'static str {
    match class {
        PolicyClass::Critical => "critical",
        PolicyClass::Major => "major",
        PolicyClass::Minor => "minor",
    }
}

fn band_name(band: Band) -> &'static str {
    match band {
        Band::None => "none",
        Band::Low => "low",
        Band::Medium => "medium",
        Band::High => "high",
        Band::Critical => "critical",
    }
}

fn source_name(source: SeveritySource) -> &'static str {
    match source {
        SeveritySource::Cvss(CvssVersion::V3_0) => "cvss_v3.0",
        SeveritySource::Cvss(CvssVersion::V3_1) => "cvss_v3.1",
        SeveritySource::Cvss(CvssVersion::V4_0) => "cvss_v4.0",
        SeveritySource::Vendor(VendorScale::DebianUrgency) => "debian_urgency",
        SeveritySource::Vendor(VendorScale::UbuntuPriority) => "ubuntu_priority",
        SeveritySource::Vendor(VendorScale::GhsaSeverity) => "ghsa_severity",
    }
}

fn fix_state_name(state: FixState) -> &'static str {
    match state {
        FixState::FixAvailable => "fix_available",
        FixState::Unfixed => "unfixed",
        FixState::WillNotFix => "will_not_fix",
    }
}

/// A score to rank a severity by: the CVSS score, or for a vendor's rating the lower
/// bound of its band, so that tools which sort or bucket by score place it in its band.
fn ranking_score(severity: &Severity) -> f64 {
    match severity.score {
        Some(score) => score.value(),
        None => match severity.band {
            Band::None => 0.0,
            Band::Low => 0.1,
            Band::Medium => 4.0,
            Band::High => 7.0,
            Band::Critical => 9.0,
        },
    }
}

/// Where users read about an advisory.
fn advisory_url(id: &str) -> String {
    format!("https://osv.dev/vulnerability/{id}")
}

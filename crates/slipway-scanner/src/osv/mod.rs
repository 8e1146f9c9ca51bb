//! The OSV advisory model and feed import.
//!
//! [`record`] reads OSV records as published; [`Advisory`] is the normalised form the
//! rest of the crate uses: ecosystem and release split apart (`Debian:12` is `Debian`,
//! release `12`), package names normalised per ecosystem, validated ranges, severities
//! scored and ordered by precedence, fix availability and the vendor's status.
//! [`import`] reads files, directory trees and zip archives of records.

pub mod import;
pub mod record;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ScanError;
use crate::cvss::{Severity, VendorScale};
pub use import::{Feed, ImportReport, Importer, Rejected, import_path};
pub use record::RangeKind;
use record::{Record, RecordAffected, RecordEvent, RecordRange, RecordSeverity};

/// A vulnerability advisory, normalised from one OSV record.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Advisory {
    pub id: String,
    pub modified: String,
    pub published: Option<String>,
    /// When the database withdrew the advisory; withdrawn advisories are kept so that a
    /// re-import replaces the earlier version, but never match.
    pub withdrawn: Option<String>,
    pub aliases: Vec<String>,
    /// Upstream vulnerabilities this one derives from: distributions' records name the
    /// CVE here rather than in `aliases`.
    pub upstream: Vec<String>,
    pub related: Vec<String>,
    pub summary: Option<String>,
    pub details: Option<String>,
    /// The record's own severities (top-level CVSS vectors, Ubuntu priority, GitHub
    /// severity), in precedence order.
    pub severities: Vec<Severity>,
    /// Affected packages; entries without a package (GIT-only) are left out.
    pub affected: Vec<AffectedPackage>,
}

impl Advisory {
    /// Whether the advisory is withdrawn.
    pub fn is_withdrawn(&self) -> bool {
        self.withdrawn.is_some()
    }

    /// The CVE ids among the aliases and upstream ids.
    pub fn cve_ids(&self) -> impl Iterator<Item = &str> {
        self.aliases.iter().chain(&self.upstream).map(String::as_str).filter(|id| id.starts_with("CVE-"))
    }
}

/// One `affected[]` entry: a package in one ecosystem (and release), its affected
/// versions, and what the vendor says about a fix.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AffectedPackage {
    /// The ecosystem's base name, e.g. `Debian`, `PyPI`.
    pub ecosystem: String,
    /// The release the entry is scoped to, normalised with [`normalize_release`]
    /// (`12`, `22.04`, `Pro:18.04`, `3.19`); `None` applies to every release.
    pub release: Option<String>,
    /// The registry a `Maven:<url>` or `Packagist:<url>` entry names.
    pub repository: Option<String>,
    /// The package name, normalised with [`normalize_name`]. For distributions this is
    /// the source package.
    pub name: String,
    pub purl: Option<String>,
    pub ranges: Vec<Range>,
    pub versions: Vec<String>,
    /// Every severity that applies to this package, in precedence order: the vendor's
    /// rating first, then CVSS v4.0, v3.1, v3.0 (see
    /// [`SeveritySource::precedence`](crate::cvss::SeveritySource::precedence)).
    pub severities: Vec<Severity>,
    pub fix: FixState,
}

impl AffectedPackage {
    /// The severity to show: the first in precedence order.
    pub fn severity(&self) -> Option<&Severity> {
        self.severities.first()
    }
}

/// Whether a fix exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum FixState {
    /// A fixed version exists.
    FixAvailable,
    /// No fixed version yet.
    Unfixed,
    /// No fixed version, and the vendor has said it will not ship one: Debian's
    /// urgency "unimportant" (a non-issue in practice, never fixed in a security update)
    /// or "end-of-life" (the release no longer gets support for the package). Ubuntu's
    /// OSV records carry no such status: an unfixed Ubuntu entry is `Unfixed`.
    WillNotFix,
}

/// A range of affected versions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Range {
    pub kind: RangeKind,
    pub repo: Option<String>,
    pub events: Vec<Event>,
}

/// A range event. `Introduced("0")` sorts before every version; `Limit("*")` is infinity.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    Introduced(String),
    Fixed(String),
    LastAffected(String),
    Limit(String),
}

impl Event {
    pub fn version(&self) -> &str {
        match self {
            Event::Introduced(v) | Event::Fixed(v) | Event::LastAffected(v) | Event::Limit(v) => v,
        }
    }
}

/// Ecosystems whose suffix names a registry rather than a release.
const REGISTRY_SUFFIXED: &[&str] = &["Maven", "Packagist", "VSCode"];

/// Splits an OSV ecosystem string into its base name and suffix: `Debian:12` is
/// (`Debian`, `12`), `Ubuntu:Pro:18.04:LTS` is (`Ubuntu`, `Pro:18.04:LTS`).
pub fn split_ecosystem(ecosystem: &str) -> (&str, Option<&str>) {
    match ecosystem.split_once(':') {
        Some((base, suffix)) if !suffix.is_empty() => (base, Some(suffix)),
        Some((base, _)) => (base, None),
        None => (ecosystem, None),
    }
}

/// A release in the form the matcher compares, from an OSV suffix or an image's
/// `os-release` `VERSION_ID`: Alpine's `v3.19` and `3.19.1` are `3.19` (its advisories
/// are per release branch); Ubuntu's `22.04:LTS` is `22.04` (the suffix only marks LTS
/// releases) but `Pro:18.04:LTS` stays `Pro:18.04`, as Ubuntu Pro fixes reach only
/// systems attached to Pro, which an image scan cannot tell.
pub fn normalize_release(ecosystem: &str, release: &str) -> String {
    match ecosystem {
        "Alpine" => {
            let release = release.strip_prefix('v').unwrap_or(release);
            let mut parts = release.splitn(3, '.');
            match (parts.next(), parts.next()) {
                (Some(major), Some(minor)) => format!("{major}.{minor}"),
                _ => release.to_owned(),
            }
        }
        "Ubuntu" => release.strip_suffix(":LTS").unwrap_or(release).to_owned(),
        _ => release.to_owned(),
    }
}

/// A package name in the form the matcher compares: PyPI names as PEP 503 normalises
/// them (lower case, runs of `-`, `_`, `.` as one `-`); crates.io names lower case with
/// `-` for `_` (the registry treats those as the same crate); Packagist and NuGet names
/// lower case (both registries are case-insensitive). npm, Go, Maven and RubyGems names
/// are case-sensitive and distribution package names are already canonical: unchanged.
pub fn normalize_name(ecosystem: &str, name: &str) -> String {
    match ecosystem {
        "PyPI" => {
            let mut out = String::with_capacity(name.len());
            let mut separator = false;
            for c in name.chars() {
                if matches!(c, '-' | '_' | '.') {
                    separator = true;
                } else {
                    if separator && !out.is_empty() {
                        out.push('-');
                    }
                    separator = false;
                    out.push(c.to_ascii_lowercase());
                }
            }
            out
        }
        "crates.io" => name.to_ascii_lowercase().replace('_', "-"),
        "Packagist" | "NuGet" => name.to_ascii_lowercase(),
        _ => name.to_owned(),
    }
}

impl TryFrom<Record> for Advisory {
    type Error = ScanError;

    fn try_from(record: Record) -> Result<Advisory, ScanError> {
        if record.id.trim().is_empty() {
            return Err(ScanError::InvalidRecord("empty id".into()));
        }
        let id = record.id;
        let mut severities = parse_severities(&id, &record.severity);
        // GitHub's own rating; other databases use `database_specific.severity` for
        // scales of their own, so only GHSA records are read this way.
        if id.starts_with("GHSA-")
            && let Some(rating) = text_at(record.database_specific.as_ref(), "severity")
            && let Some(severity) = Severity::from_vendor(VendorScale::GhsaSeverity, rating)
        {
            severities.push(severity);
        }
        sort_by_precedence(&mut severities);

        let mut affected = Vec::with_capacity(record.affected.len());
        for (index, entry) in record.affected.into_iter().enumerate() {
            let context = |reason: String| ScanError::InvalidRecord(format!("affected[{index}]: {reason}"));
            let ranges = entry
                .ranges
                .iter()
                .enumerate()
                .map(|(i, range)| convert_range(range).map_err(|reason| context(format!("ranges[{i}]: {reason}"))))
                .collect::<Result<Vec<_>, _>>()?;
            if let Some(package) = affected_package(&id, entry, ranges, &severities).map_err(context)? {
                affected.push(package);
            }
        }

        Ok(Advisory {
            id,
            modified: record.modified,
            published: record.published,
            withdrawn: record.withdrawn,
            aliases: record.aliases,
            upstream: record.upstream,
            related: record.related,
            summary: record.summary,
            details: record.details,
            severities,
            affected,
        })
    }
}

fn affected_package(
    id: &str,
    entry: RecordAffected,
    ranges: Vec<Range>,
    top_level: &[Severity],
) -> Result<Option<AffectedPackage>, String> {
    let Some(package) = entry.package else {
        return Ok(None);
    };
    let (ecosystem, suffix) = split_ecosystem(&package.ecosystem);
    if ecosystem.is_empty() {
        return Err("package has an empty ecosystem".into());
    }
    // Checked once normalised: PyPI's `_` normalises to nothing (found by the osv fuzz
    // target), and a nameless package could never match.
    let name = normalize_name(ecosystem, &package.name);
    if name.is_empty() {
        return Err("package has an empty name".into());
    }
    let (release, repository) = match suffix {
        Some(url) if REGISTRY_SUFFIXED.contains(&ecosystem) => (None, Some(url.to_owned())),
        Some(release) => (Some(normalize_release(ecosystem, release)), None),
        None => (None, None),
    };

    let mut severities = parse_severities(id, &entry.severity);
    let specific = entry.ecosystem_specific.as_ref();
    let urgency = (ecosystem == "Debian").then(|| text_at(specific, "urgency")).flatten();
    if let Some(severity) = urgency.and_then(|u| Severity::from_vendor(VendorScale::DebianUrgency, u)) {
        severities.push(severity);
    }
    // Older Ubuntu records carry the priority here instead of in `severity[]`.
    if ecosystem == "Ubuntu"
        && let Some(severity) = text_at(specific, "ubuntu_priority").and_then(|p| Severity::from_vendor(VendorScale::UbuntuPriority, p))
    {
        severities.push(severity);
    }
    severities.extend(top_level.iter().cloned());
    sort_by_precedence(&mut severities);

    let has_fix = ranges.iter().any(|r| r.events.iter().any(|e| matches!(e, Event::Fixed(_))));
    let will_not_fix = urgency.is_some_and(|u| matches!(u.trim().trim_end_matches('*'), "unimportant" | "end-of-life"));
    let fix = match (has_fix, will_not_fix) {
        (true, _) => FixState::FixAvailable,
        (false, true) => FixState::WillNotFix,
        (false, false) => FixState::Unfixed,
    };

    Ok(Some(AffectedPackage {
        name,
        ecosystem: ecosystem.to_owned(),
        release,
        repository,
        purl: package.purl,
        ranges,
        versions: entry.versions,
        severities,
        fix,
    }))
}

/// Checks a range against the schema's rules that the evaluation relies on.
fn convert_range(range: &RecordRange) -> Result<Range, String> {
    if range.kind == RangeKind::Git && range.repo.is_none() {
        return Err("GIT range without a repo".into());
    }
    let events = range.events.iter().map(convert_event).collect::<Result<Vec<_>, _>>()?;
    if !events.iter().any(|e| matches!(e, Event::Introduced(_))) {
        return Err("no introduced event".into());
    }
    let fixed = events.iter().any(|e| matches!(e, Event::Fixed(_)));
    let last_affected = events.iter().any(|e| matches!(e, Event::LastAffected(_)));
    if fixed && last_affected {
        return Err("both fixed and last_affected events".into());
    }
    Ok(Range { kind: range.kind, repo: range.repo.clone(), events })
}

fn convert_event(event: &RecordEvent) -> Result<Event, String> {
    let RecordEvent { introduced, fixed, last_affected, limit } = event.clone();
    match (introduced, fixed, last_affected, limit) {
        (Some(v), None, None, None) => Ok(Event::Introduced(v)),
        (None, Some(v), None, None) => Ok(Event::Fixed(v)),
        (None, None, Some(v), None) => Ok(Event::LastAffected(v)),
        (None, None, None, Some(v)) => Ok(Event::Limit(v)),
        (None, None, None, None) => Err("event without introduced, fixed, last_affected or limit".into()),
        _ => Err("event with more than one of introduced, fixed, last_affected, limit".into()),
    }
}

/// Scores a `severity[]` list. An entry that does not parse is skipped with a warning
/// rather than failing the record: the advisory still tells which versions are
/// affected. CVSS v2 vectors are not scored (no v2 scoring here, and the feeds that
/// carry v2 carry v3 alongside).
fn parse_severities(id: &str, entries: &[RecordSeverity]) -> Vec<Severity> {
    entries
        .iter()
        .filter_map(|entry| match entry.kind.as_str() {
            "CVSS_V3" | "CVSS_V4" => {
                Severity::from_vector(&entry.score).inspect_err(|e| tracing::warn!(advisory = id, "skipping severity: {e}")).ok()
            }
            "Ubuntu" => {
                let severity = Severity::from_vendor(VendorScale::UbuntuPriority, &entry.score);
                if severity.is_none() {
                    tracing::debug!(advisory = id, priority = entry.score, "Ubuntu priority is not a severity");
                }
                severity
            }
            other => {
                tracing::debug!(advisory = id, kind = other, "severity type not scored");
                None
            }
        })
        .collect()
}

fn sort_by_precedence(severities: &mut [Severity]) {
    severities.sort_by_key(|s| s.source.precedence());
}

fn text_at<'a>(object: Option<&'a Value>, key: &str) -> Option<&'a str> {
    object?.get(key)?.as_str()
}

//! Which advisories affect which packages.
//!
//! Ranges are evaluated as the OSV specification's `IsVulnerable` pseudocode does:
//! a version is affected if it lies in any range or is listed in `versions`; within a
//! range, events are sorted (`introduced: "0"` first) and walked, `introduced` opening
//! and `fixed` closing the affected interval, `last_affected` closing it after its own
//! version, and `limit` events bounding the range from above. ECOSYSTEM and SEMVER
//! ranges use the ecosystem's version order, which is SemVer for every ecosystem that
//! publishes SEMVER ranges; GIT ranges need a repository's commit graph and are left
//! to the `versions` list.
//!
//! Distribution feeds (Debian, Ubuntu, Alpine, ...) name source packages: a binary
//! package is matched by its source package's name and version when the caller gives
//! them (`libssl3` from source `openssl`).

use std::cmp::Ordering;
use std::collections::HashMap;

use crate::ScanError;
use crate::cvss::Severity;
use crate::osv::{Advisory, AffectedPackage, Event, FixState, Range, RangeKind, normalize_name, normalize_release};
use crate::version::Scheme;

/// A version ordering for one ecosystem.
pub trait VersionOrder {
    /// Compares two versions; fails if either is not a version of this ecosystem.
    fn compare(&self, a: &str, b: &str) -> Result<Ordering, ScanError>;
}

impl<F> VersionOrder for F
where
    F: Fn(&str, &str) -> Result<Ordering, ScanError>,
{
    fn compare(&self, a: &str, b: &str) -> Result<Ordering, ScanError> {
        self(a, b)
    }
}

impl VersionOrder for Scheme {
    fn compare(&self, a: &str, b: &str) -> Result<Ordering, ScanError> {
        Scheme::compare(*self, a, b)
    }
}

/// Ecosystems whose OSV package names are source packages (per the OSV ecosystem list).
const SOURCE_NAMED: &[&str] = &[
    "AlmaLinux",
    "Alpaquita",
    "Alpine",
    "Azure Linux",
    "BellSoft Hardened Containers",
    "Debian",
    "Echo",
    "Mageia",
    "openEuler",
    "openSUSE",
    "Rocky Linux",
    "SUSE",
    "TuxCare",
    "Ubuntu",
];

/// An installed package to check.
#[derive(Clone, Copy, Debug)]
pub struct Package<'a> {
    /// The OSV ecosystem's base name (`Debian`, `PyPI`).
    pub ecosystem: &'a str,
    /// The distribution release, as OSV suffixes name it or as `os-release`'s
    /// `VERSION_ID` gives it (`12`, `22.04`, `3.19.1`); `None` for language packages.
    pub release: Option<&'a str>,
    pub name: &'a str,
    pub version: &'a str,
    /// The source package a distribution's binary package was built from.
    pub source: Option<SourcePackage<'a>>,
}

impl Package<'_> {
    /// The ecosystem and normalised name under which advisories list this package: a
    /// distribution's source package where the ecosystem names those.
    pub fn advisory_key(&self) -> (&str, String) {
        (self.ecosystem, normalize_name(self.ecosystem, self.lookup().0))
    }

    /// The name advisories know the package by, normalised as [`AdvisoryIndex`] looks it
    /// up. Callers that index packages for later re-matching key them by this.
    pub fn advisory_name(&self) -> String {
        self.advisory_key().1
    }

    /// The name and version the advisories compare.
    fn lookup(&self) -> (&str, &str) {
        match self.source {
            Some(source) if SOURCE_NAMED.contains(&self.ecosystem) => (source.name, source.version.unwrap_or(self.version)),
            _ => (self.name, self.version),
        }
    }
}

/// A binary package's source package. Its version can differ from the binary's (binary
/// NMUs, or binaries versioned on their own like `cpp` from `gcc-defaults`).
#[derive(Clone, Copy, Debug)]
pub struct SourcePackage<'a> {
    pub name: &'a str,
    /// `None` when it equals the binary package's version.
    pub version: Option<&'a str>,
}

/// An advisory that affects an installed package.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub advisory_id: String,
    /// Aliases and upstream ids, CVE ids first.
    pub aliases: Vec<String>,
    /// The installed package's name.
    pub package: String,
    pub installed_version: String,
    /// The version that closes the affected range the installed version is in.
    pub fixed_version: Option<String>,
    pub status: FixState,
    /// The severity to show: the first of `severities`.
    pub severity: Option<Severity>,
    /// Every rating that applies, in precedence order.
    pub severities: Vec<Severity>,
}

/// Advisories indexed by ecosystem and package name.
#[derive(Clone, Debug, Default)]
pub struct AdvisoryIndex {
    advisories: Vec<Advisory>,
    /// Advisory id -> position (the last advisory of an id wins).
    by_id: HashMap<String, usize>,
    /// ecosystem -> package name -> (advisory, affected entry) positions.
    by_package: HashMap<String, HashMap<String, Vec<(usize, usize)>>>,
}

impl FromIterator<Advisory> for AdvisoryIndex {
    fn from_iter<I: IntoIterator<Item = Advisory>>(advisories: I) -> Self {
        AdvisoryIndex::new(advisories.into_iter().collect())
    }
}

impl AdvisoryIndex {
    /// Indexes `advisories`; withdrawn ones are kept but never match.
    pub fn new(advisories: Vec<Advisory>) -> Self {
        let mut by_package: HashMap<String, HashMap<String, Vec<(usize, usize)>>> = HashMap::new();
        let mut by_id = HashMap::with_capacity(advisories.len());
        for (a, advisory) in advisories.iter().enumerate() {
            by_id.insert(advisory.id.clone(), a);
            if advisory.is_withdrawn() {
                continue;
            }
            for (e, entry) in advisory.affected.iter().enumerate() {
                by_package.entry(entry.ecosystem.clone()).or_default().entry(entry.name.clone()).or_default().push((a, e));
            }
        }
        AdvisoryIndex { advisories, by_id, by_package }
    }

    pub fn advisories(&self) -> &[Advisory] {
        &self.advisories
    }

    /// The advisory with this id.
    pub fn get(&self, id: &str) -> Option<&Advisory> {
        self.by_id.get(id).map(|&a| &self.advisories[a])
    }

    /// The advisories that affect `package`, one finding per advisory, ordered by
    /// advisory id. Fails if an advisory names the package and `order` cannot parse the
    /// installed version; a range whose own versions do not parse is skipped with a
    /// warning.
    pub fn findings(&self, package: &Package<'_>, order: &(impl VersionOrder + ?Sized)) -> Result<Vec<Finding>, ScanError> {
        let (ecosystem, name) = package.advisory_key();
        let (_, version) = package.lookup();
        // The Go vulnerability database writes versions without Go's leading "v".
        let version = match package.ecosystem {
            "Go" => version.strip_prefix('v').unwrap_or(version),
            _ => version,
        };
        let release = package.release.map(|r| normalize_release(package.ecosystem, r));
        let Some(entries) = self.by_package.get(ecosystem).and_then(|names| names.get(&name)) else {
            return Ok(Vec::new());
        };

        // Parses the installed version once, so that a failure below is the advisory's.
        order.compare(version, version)?;

        let mut findings: Vec<Finding> = Vec::new();
        for &(a, e) in entries {
            let advisory = &self.advisories[a];
            let entry = &advisory.affected[e];
            let release_matches = entry.release.is_none() || entry.release == release;
            if !release_matches || findings.last().is_some_and(|f| f.advisory_id == advisory.id) {
                continue;
            }
            if let Some(fixed_version) = affected(advisory, entry, version, order) {
                findings.push(finding(advisory, entry, package, fixed_version));
            }
        }
        findings.sort_by(|a, b| a.advisory_id.cmp(&b.advisory_id));
        Ok(findings)
    }
}

fn finding(advisory: &Advisory, entry: &AffectedPackage, package: &Package<'_>, fixed_version: Option<String>) -> Finding {
    let mut aliases: Vec<String> = Vec::new();
    for alias in advisory.aliases.iter().chain(&advisory.upstream) {
        if *alias != advisory.id && !aliases.contains(alias) {
            aliases.push(alias.clone());
        }
    }
    aliases.sort_by_key(|alias| !alias.starts_with("CVE-"));
    let status = match (&fixed_version, entry.fix) {
        (Some(_), _) => FixState::FixAvailable,
        (None, FixState::WillNotFix) => FixState::WillNotFix,
        (None, _) => FixState::Unfixed,
    };
    Finding {
        advisory_id: advisory.id.clone(),
        aliases,
        package: package.name.to_owned(),
        installed_version: package.version.to_owned(),
        fixed_version,
        status,
        severity: entry.severity().cloned(),
        severities: entry.severities.clone(),
    }
}

/// Whether `version` is affected by `entry`, and if so the fixed version, if any.
fn affected(advisory: &Advisory, entry: &AffectedPackage, version: &str, order: &(impl VersionOrder + ?Sized)) -> Option<Option<String>> {
    for range in entry.ranges.iter().filter(|r| r.kind != RangeKind::Git) {
        match in_range(range, version, order) {
            Ok(Some(fixed)) => return Some(fixed),
            Ok(None) => {}
            Err(error) => tracing::warn!(advisory = advisory.id, package = entry.name, "skipping range: {error}"),
        }
    }
    // `versions` may hold strings in another syntax (tags of GIT ranges): a version the
    // order cannot compare is simply not equal.
    let listed = entry.versions.iter().any(|listed| listed == version || matches!(order.compare(version, listed), Ok(Ordering::Equal)));
    listed.then(|| next_fix(entry, version, order))
}

/// Evaluates one range: `Some(fixed version)` if `version` is in it.
fn in_range(range: &Range, version: &str, order: &(impl VersionOrder + ?Sized)) -> Result<Option<Option<String>>, ScanError> {
    let limits: Vec<&str> = range
        .events
        .iter()
        .filter_map(|e| match e {
            Event::Limit(v) => Some(v.as_str()),
            _ => None,
        })
        .collect();
    if !limits.is_empty() {
        let mut below_a_limit = false;
        for limit in limits {
            if limit == "*" || order.compare(version, limit)? == Ordering::Less {
                below_a_limit = true;
                break;
            }
        }
        if !below_a_limit {
            return Ok(None);
        }
    }

    // Each event with the installed version's order relative to it.
    let mut events: Vec<(&Event, Ordering)> = Vec::with_capacity(range.events.len());
    for event in range.events.iter().filter(|e| !matches!(e, Event::Limit(_))) {
        let relative = if is_zero(event) { Ordering::Greater } else { order.compare(version, event.version())? };
        // Insertion sort: the lists are short, and a fallible comparison cannot be
        // handed to the standard sorts.
        let mut at = events.len();
        while at > 0 && compare_events(event, events[at - 1].0, order)? == Ordering::Less {
            at -= 1;
        }
        events.insert(at, (event, relative));
    }

    let mut vulnerable = false;
    for (event, relative) in &events {
        match event {
            Event::Introduced(_) if relative.is_ge() => vulnerable = true,
            Event::Fixed(_) if relative.is_ge() => vulnerable = false,
            Event::LastAffected(_) if relative.is_gt() => vulnerable = false,
            _ => {}
        }
    }
    if !vulnerable {
        return Ok(None);
    }
    // The event that closes the interval the version is in: a fix above it, or a
    // last_affected at or above it (no known fix).
    let closing = events.iter().find_map(|(event, relative)| match event {
        Event::Fixed(v) if relative.is_lt() => Some(Some(v.clone())),
        Event::LastAffected(_) if relative.is_le() => Some(None),
        _ => None,
    });
    Ok(Some(closing.flatten()))
}

/// The lowest fixed version above `version` in any range, for a version matched by the
/// `versions` list alone.
fn next_fix(entry: &AffectedPackage, version: &str, order: &(impl VersionOrder + ?Sized)) -> Option<String> {
    let mut best: Option<&str> = None;
    let fixes = entry.ranges.iter().filter(|r| r.kind != RangeKind::Git).flat_map(|r| &r.events).filter_map(|e| match e {
        Event::Fixed(v) => Some(v.as_str()),
        _ => None,
    });
    for fixed in fixes {
        let above = matches!(order.compare(version, fixed), Ok(Ordering::Less));
        if above && best.is_none_or(|b| matches!(order.compare(fixed, b), Ok(Ordering::Less))) {
            best = Some(fixed);
        }
    }
    best.map(str::to_owned)
}

fn is_zero(event: &Event) -> bool {
    matches!(event, Event::Introduced(v) if v == "0")
}

fn compare_events(a: &Event, b: &Event, order: &(impl VersionOrder + ?Sized)) -> Result<Ordering, ScanError> {
    match (is_zero(a), is_zero(b)) {
        (true, true) => Ok(Ordering::Equal),
        (true, false) => Ok(Ordering::Less),
        (false, true) => Ok(Ordering::Greater),
        (false, false) => order.compare(a.version(), b.version()),
    }
}

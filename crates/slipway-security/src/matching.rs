//! From inventory packages to findings: each package's OSV ecosystem and release, the
//! name the re-assessment index keys it by, and matching against stored advisories. Image
//! scans and re-assessment share this, so both find exactly the same.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use slipway_db::{FindingRecord, ImagePackageRecord, ScanningDb};
use slipway_scanner::analyzer::{Ecosystem, OsRelease, Package};
use slipway_scanner::cvss::{PolicyClass, Severity};
use slipway_scanner::matcher::{self, AdvisoryIndex, Finding, SourcePackage};
use slipway_scanner::osv::{Advisory, FixState};
use slipway_scanner::scan::{Wanted, osv_ecosystem};
use slipway_scanner::version::Scheme;

use crate::ScanningError;

/// The OSV ecosystem and release a package is matched in (the scanner's mapping, which
/// `slipway scan` uses too). OS packages of a distribution without OSV advisories keep
/// the package format's name and match nothing.
fn ecosystem_and_release(ecosystem: Ecosystem, os: Option<&OsRelease>) -> (String, String) {
    match osv_ecosystem(ecosystem, os) {
        Some(osv) => (osv.name.to_owned(), osv.release.unwrap_or_default()),
        None => {
            let format = match ecosystem {
                Ecosystem::Deb => "deb",
                Ecosystem::Apk => "apk",
                _ => "rpm",
            };
            (format.to_owned(), String::new())
        }
    }
}

/// An inventory package as a row of the re-assessment index.
pub(crate) fn index_row(digest: &str, package: &Package, os: Option<&OsRelease>) -> ImagePackageRecord {
    let (ecosystem, release) = ecosystem_and_release(package.ecosystem, os);
    let mut row = ImagePackageRecord {
        digest: digest.to_owned(),
        purl: package.purl.clone(),
        path: package.path.clone(),
        ecosystem,
        release,
        name: package.name.clone(),
        match_name: String::new(),
        version: package.version.clone(),
        source_name: package.source_name.clone(),
        source_version: package.source_version.clone(),
        layer: package.layer.clone(),
    };
    row.match_name = matcher_package(&row).advisory_name();
    row
}

fn matcher_package(row: &ImagePackageRecord) -> matcher::Package<'_> {
    matcher::Package {
        ecosystem: &row.ecosystem,
        release: Some(row.release.as_str()).filter(|r| !r.is_empty()),
        name: &row.name,
        version: &row.version,
        source: row.source_name.as_deref().map(|name| SourcePackage { name, version: row.source_version.as_deref() }),
    }
}

/// The stored advisories naming any package in `wanted`: `slipway scan`'s offline feed,
/// found as image scans find theirs.
pub async fn stored_advisories(db: &ScanningDb, wanted: &Wanted) -> Result<AdvisoryIndex, ScanningError> {
    advisories_for(db, wanted.names().flat_map(|(ecosystem, names)| names.iter().map(move |name| (ecosystem, name.as_str())))).await
}

/// The advisories naming any of `packages` ((ecosystem, advisory name) pairs), indexed.
pub(crate) async fn advisories_for(
    db: &ScanningDb,
    packages: impl IntoIterator<Item = (&str, &str)>,
) -> Result<AdvisoryIndex, ScanningError> {
    let wanted: BTreeSet<(&str, &str)> = packages.into_iter().filter(|(ecosystem, _)| Scheme::for_ecosystem(ecosystem).is_some()).collect();
    let mut advisories: BTreeMap<String, Advisory> = BTreeMap::new();
    for json in db.advisories_naming(&wanted.into_iter().collect::<Vec<_>>()).await? {
        let advisory: Advisory = serde_json::from_str(&json)?;
        advisories.insert(advisory.id.clone(), advisory);
    }
    Ok(AdvisoryIndex::new(advisories.into_values().collect()))
}

/// The findings for `rows`, first seen `now` unless stored earlier. Each distinct
/// installed package is matched once, however many images hold it.
pub(crate) fn match_rows(index: &AdvisoryIndex, rows: &[ImagePackageRecord], now: i64) -> Vec<FindingRecord> {
    type Identity<'a> = (&'a str, &'a str, &'a str, &'a str, Option<&'a str>, Option<&'a str>);
    let mut matched: HashMap<Identity<'_>, Vec<Finding>> = HashMap::new();
    let mut findings: BTreeMap<(String, String, String), FindingRecord> = BTreeMap::new();
    for row in rows {
        let identity = (
            row.ecosystem.as_str(),
            row.release.as_str(),
            row.name.as_str(),
            row.version.as_str(),
            row.source_name.as_deref(),
            row.source_version.as_deref(),
        );
        let found = matched.entry(identity).or_insert_with(|| {
            let Some(scheme) = Scheme::for_ecosystem(&row.ecosystem) else { return Vec::new() };
            let order = move |a: &str, b: &str| scheme.compare(a, b);
            index.findings(&matcher_package(row), &order).unwrap_or_else(|e| {
                tracing::warn!(package = %row.purl, "not matched: {e}");
                Vec::new()
            })
        });
        for finding in found.iter() {
            let record = record(row, finding, now);
            // A package found at two paths is one package: its findings are kept once.
            findings.entry((record.digest.clone(), record.package.clone(), record.advisory_id.clone())).or_insert(record);
        }
    }
    findings.into_values().collect()
}

fn record(row: &ImagePackageRecord, finding: &Finding, now: i64) -> FindingRecord {
    FindingRecord {
        digest: row.digest.clone(),
        package: row.purl.clone(),
        advisory_id: finding.advisory_id.clone(),
        ecosystem: row.ecosystem.clone(),
        match_name: row.match_name.clone(),
        package_name: finding.package.clone(),
        aliases: serde_json::to_string(&finding.aliases).unwrap_or_else(|_| "[]".into()),
        installed_version: finding.installed_version.clone(),
        fixed_version: finding.fixed_version.clone(),
        status: fix_state(finding.status).to_owned(),
        severity: finding.severity.as_ref().and_then(|s| serde_json::to_string(s).ok()),
        class: class(finding.severity.as_ref()).to_owned(),
        first_seen: now,
    }
}

fn fix_state(state: FixState) -> &'static str {
    match state {
        FixState::FixAvailable => "fix_available",
        FixState::Unfixed => "unfixed",
        FixState::WillNotFix => "will_not_fix",
    }
}

/// The store's policy class of a severity; findings without one are `unrated`.
fn class(severity: Option<&Severity>) -> &'static str {
    match severity.map(|s| s.class) {
        Some(PolicyClass::Critical) => "critical",
        Some(PolicyClass::Major) => "major",
        Some(PolicyClass::Minor) => "minor",
        None => "unrated",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, version: &str) -> OsRelease {
        OsRelease { id: id.into(), version_id: Some(version.into()), ..OsRelease::default() }
    }

    #[test]
    fn packages_get_their_osv_ecosystem_and_release() {
        let cases = [
            (Ecosystem::Deb, Some(os("debian", "12")), ("Debian", "12")),
            (Ecosystem::Deb, Some(os("ubuntu", "22.04")), ("Ubuntu", "22.04")),
            (Ecosystem::Apk, Some(os("alpine", "3.19.1")), ("Alpine", "3.19")),
            (Ecosystem::Rpm, Some(os("rocky", "9.3")), ("Rocky Linux", "9")),
            (Ecosystem::Deb, Some(os("pureos", "10")), ("deb", "")),
            (Ecosystem::Apk, None, ("apk", "")),
            (Ecosystem::PyPI, Some(os("debian", "12")), ("PyPI", "")),
            (Ecosystem::CratesIo, None, ("crates.io", "")),
        ];
        for (ecosystem, os, (name, release)) in cases {
            assert_eq!(ecosystem_and_release(ecosystem, os.as_ref()), (name.to_owned(), release.to_owned()), "{ecosystem:?} {os:?}");
        }
    }

    #[test]
    fn index_rows_are_keyed_by_the_name_advisories_use() {
        let libssl = Package {
            ecosystem: Ecosystem::Deb,
            name: "libssl3".into(),
            version: "3.0.11-1~deb12u1".into(),
            source_name: Some("openssl".into()),
            source_version: None,
            arch: Some("amd64".into()),
            purl: "pkg:deb/debian/libssl3@3.0.11-1~deb12u1?arch=amd64&distro=debian-12".into(),
            path: "var/lib/dpkg/status".into(),
            layer: "sha256:l1".into(),
        };
        let row = index_row("sha256:i", &libssl, Some(&os("debian", "12")));
        assert_eq!((row.ecosystem.as_str(), row.release.as_str(), row.match_name.as_str()), ("Debian", "12", "openssl"));
        let jinja = Package { ecosystem: Ecosystem::PyPI, name: "Jinja2".into(), source_name: None, ..libssl };
        assert_eq!(index_row("sha256:i", &jinja, None).match_name, "jinja2");
    }
}

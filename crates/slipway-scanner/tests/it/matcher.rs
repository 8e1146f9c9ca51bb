//! Matching: the OSV evaluation algorithm on small advisories, then the test feed
//! against the packages of a few test images.
//!
//! The algorithm tests order versions as dotted numbers, so that ranges can be written
//! with short versions that not every ecosystem accepts; the feed and image tests use
//! each ecosystem's own ordering.

use std::cmp::Ordering;
use std::io;

use slipway_scanner::ScanError;
use slipway_scanner::cvss::{Band, CvssVersion, PolicyClass, SeveritySource, VendorScale};
use slipway_scanner::matcher::{AdvisoryIndex, Finding, Package, SourcePackage};
use slipway_scanner::osv::record::Record;
use slipway_scanner::osv::{Advisory, FixState, import_path};
use slipway_scanner::version::Scheme;

use super::feed::good_dir;

fn not_a_version(version: &str) -> ScanError {
    ScanError::Io(io::Error::new(io::ErrorKind::InvalidInput, format!("not a version: {version:?}")))
}

/// Dot-separated numbers, trailing zeros insignificant: `1.10.2`, `1.3` = `1.3.0`.
fn dotted(a: &str, b: &str) -> Result<Ordering, ScanError> {
    let parse = |v: &str| {
        let mut parts = v.split('.').map(|part| part.parse::<u64>().map_err(|_| not_a_version(v))).collect::<Result<Vec<_>, _>>()?;
        while parts.last() == Some(&0) {
            parts.pop();
        }
        Ok::<_, ScanError>(parts)
    };
    Ok(parse(a)?.cmp(&parse(b)?))
}

fn advisory(json: &str) -> Advisory {
    Advisory::try_from(serde_json::from_str::<Record>(json).unwrap()).unwrap()
}

/// An advisory on npm package `pkg` with one range of `events`, and `versions`.
fn npm_advisory(id: &str, events: &str, versions: &str) -> Advisory {
    advisory(&format!(
        r#"{{"id": "{id}", "modified": "2024-01-01T00:00:00Z", "aliases": ["GHSA-aaaa-bbbb-cccc", "CVE-2024-1000"],
            "affected": [{{"package": {{"ecosystem": "npm", "name": "pkg"}},
                           "ranges": [{{"type": "SEMVER", "events": [{events}]}}], "versions": [{versions}]}}]}}"#
    ))
}

fn npm<'a>(name: &'a str, version: &'a str) -> Package<'a> {
    Package { ecosystem: "npm", release: None, name, version, source: None }
}

/// The fixed version found for each version, `None` where the version is unaffected.
fn evaluate(index: &AdvisoryIndex, versions: &[&'static str]) -> Vec<Option<Option<String>>> {
    versions
        .iter()
        .map(|version| {
            let findings = index.findings(&npm("pkg", version), &dotted).unwrap();
            assert!(findings.len() <= 1);
            findings.into_iter().next().map(|f| f.fixed_version)
        })
        .collect()
}

fn fixed(version: &str) -> Option<Option<String>> {
    Some(Some(version.to_owned()))
}

const UNFIXED: Option<Option<String>> = Some(None);

#[test]
fn introduced_and_fixed_bound_the_range() {
    let index = AdvisoryIndex::new(vec![npm_advisory("OSV-1", r#"{"introduced": "1.0"}, {"fixed": "2.0"}"#, "")]);
    assert_eq!(evaluate(&index, &["0.9", "1.0", "1.5", "2.0", "3.0"]), [None, fixed("2.0"), fixed("2.0"), None, None]);

    let from_zero = AdvisoryIndex::new(vec![npm_advisory("OSV-2", r#"{"introduced": "0"}, {"fixed": "2.0"}"#, "")]);
    assert_eq!(evaluate(&from_zero, &["0.0.1", "1.9", "2.0"]), [fixed("2.0"), fixed("2.0"), None]);
}

#[test]
fn events_are_sorted_before_they_are_walked() {
    // Two intervals, the events out of order, a last one never fixed.
    let events = r#"{"fixed": "2.3"}, {"introduced": "3.0"}, {"introduced": "2.0"}, {"fixed": "1.5"}, {"introduced": "1.0"}"#;
    let index = AdvisoryIndex::new(vec![npm_advisory("OSV-1", events, "")]);
    assert_eq!(
        evaluate(&index, &["0.5", "1.2", "1.5", "1.7", "2.0", "2.2", "2.3", "3.0", "9.0"]),
        [None, fixed("1.5"), None, None, fixed("2.3"), fixed("2.3"), None, UNFIXED, UNFIXED]
    );
}

#[test]
fn last_affected_is_inclusive_and_gives_no_fix() {
    let index = AdvisoryIndex::new(vec![npm_advisory("OSV-1", r#"{"introduced": "0"}, {"last_affected": "2.1"}"#, "")]);
    assert_eq!(evaluate(&index, &["1.0", "2.1", "2.1.1", "3.0"]), [UNFIXED, UNFIXED, None, None]);
    let finding = &index.findings(&npm("pkg", "2.1"), &dotted).unwrap()[0];
    assert_eq!(finding.status, FixState::Unfixed);
}

#[test]
fn limits_bound_the_range_from_above() {
    let index = AdvisoryIndex::new(vec![npm_advisory("OSV-1", r#"{"introduced": "1.0"}, {"limit": "2.0"}"#, "")]);
    assert_eq!(evaluate(&index, &["0.9", "1.0", "1.9", "2.0", "5.0"]), [None, UNFIXED, UNFIXED, None, None]);

    let two_limits = r#"{"introduced": "1.0"}, {"limit": "2.0"}, {"limit": "3.0"}, {"fixed": "2.5"}"#;
    let index = AdvisoryIndex::new(vec![npm_advisory("OSV-2", two_limits, "")]);
    assert_eq!(evaluate(&index, &["2.2", "2.7", "3.0"]), [fixed("2.5"), None, None]);

    let infinity = AdvisoryIndex::new(vec![npm_advisory("OSV-3", r#"{"introduced": "1.0"}, {"limit": "*"}"#, "")]);
    assert_eq!(evaluate(&infinity, &["0.1", "100.0"]), [None, UNFIXED]);
}

#[test]
fn listed_versions_are_affected() {
    // Listed versions match on their own, and the range's fix is reported for them.
    let index =
        AdvisoryIndex::new(vec![npm_advisory("OSV-1", r#"{"introduced": "5.0"}, {"fixed": "5.2"}"#, r#""1.1", "1.3", "not-a-version""#)]);
    assert_eq!(evaluate(&index, &["1.1", "1.2", "1.3", "1.3.0", "5.1"]), [fixed("5.2"), None, fixed("5.2"), fixed("5.2"), fixed("5.2")]);

    let only_versions = advisory(
        r#"{"id": "MAL-1", "modified": "2024-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "npm", "name": "pkg"}, "versions": ["0.1.1"]}]}"#,
    );
    let index = AdvisoryIndex::new(vec![only_versions]);
    assert_eq!(evaluate(&index, &["0.1.0", "0.1.1"]), [None, UNFIXED]);
}

#[test]
fn a_range_that_does_not_parse_is_skipped_not_fatal() {
    let index = AdvisoryIndex::new(vec![
        npm_advisory("OSV-1", r#"{"introduced": "0"}, {"fixed": "2.0-beta"}"#, ""),
        npm_advisory("OSV-2", r#"{"introduced": "0"}, {"fixed": "3.0"}"#, ""),
    ]);
    let findings = index.findings(&npm("pkg", "1.0"), &dotted).unwrap();
    assert_eq!(findings.iter().map(|f| f.advisory_id.as_str()).collect::<Vec<_>>(), ["OSV-2"]);

    // An installed version the order cannot read fails the package.
    assert!(index.findings(&npm("pkg", "1.0-local"), &dotted).is_err());
}

#[test]
fn one_finding_per_advisory_with_cve_ids_first() {
    let two_entries = advisory(
        r#"{"id": "GHSA-aaaa-bbbb-cccc", "modified": "2024-01-01T00:00:00Z", "aliases": ["PYSEC-1", "CVE-2024-2"],
            "upstream": ["CVE-2024-1", "GHSA-aaaa-bbbb-cccc"],
            "affected": [{"package": {"ecosystem": "npm", "name": "pkg"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "2.0"}]}]},
                         {"package": {"ecosystem": "npm", "name": "pkg"}, "ranges": [{"type": "SEMVER", "events": [{"introduced": "1.0"}, {"fixed": "1.5"}]}]}]}"#,
    );
    let index = AdvisoryIndex::new(vec![two_entries]);
    let findings = index.findings(&npm("pkg", "1.2"), &dotted).unwrap();
    let [finding] = &findings[..] else { panic!("{findings:?}") };
    assert_eq!(finding.aliases, ["CVE-2024-2", "CVE-2024-1", "PYSEC-1"]);
    assert_eq!(finding.fixed_version.as_deref(), Some("2.0"));
}

#[test]
fn withdrawn_advisories_never_match() {
    let mut withdrawn = npm_advisory("OSV-1", r#"{"introduced": "0"}"#, "");
    withdrawn.withdrawn = Some("2024-02-01T00:00:00Z".into());
    let index: AdvisoryIndex = [withdrawn].into_iter().collect();
    assert_eq!(index.advisories().len(), 1);
    assert!(index.findings(&npm("pkg", "1.0"), &dotted).unwrap().is_empty());
}

fn debian_advisory(ecosystem: &str, name: &str, events: &str, urgency: &str) -> Advisory {
    advisory(&format!(
        r#"{{"id": "DEBIAN-CVE-2024-{name}", "modified": "2024-01-01T00:00:00Z",
            "affected": [{{"package": {{"ecosystem": "{ecosystem}", "name": "{name}"}},
                           "ranges": [{{"type": "ECOSYSTEM", "events": [{events}]}}],
                           "ecosystem_specific": {{"urgency": "{urgency}"}}}}]}}"#
    ))
}

fn deb(
    release: Option<&'static str>,
    name: &'static str,
    version: &'static str,
    source: Option<(&'static str, Option<&'static str>)>,
) -> Package<'static> {
    Package { ecosystem: "Debian", release, name, version, source: source.map(|(name, version)| SourcePackage { name, version }) }
}

fn ids(findings: &[Finding]) -> Vec<&str> {
    findings.iter().map(|f| f.advisory_id.as_str()).collect()
}

#[test]
fn distribution_releases_must_match() {
    let index = AdvisoryIndex::new(vec![
        debian_advisory("Debian:12", "bookworm-only", r#"{"introduced": "0"}"#, "low"),
        debian_advisory("Debian", "every-release", r#"{"introduced": "0"}"#, "low"),
    ]);
    let check = |release, name| ids(&index.findings(&deb(release, name, "1.0-1", None), &Scheme::Dpkg).unwrap()).len();
    assert_eq!(check(Some("12"), "bookworm-only"), 1);
    assert_eq!(check(Some("11"), "bookworm-only"), 0);
    assert_eq!(check(None, "bookworm-only"), 0, "an unknown release cannot be checked");
    assert_eq!(check(Some("11"), "every-release"), 1);
    assert_eq!(check(None, "every-release"), 1);
}

#[test]
fn binary_packages_match_by_source_name_and_version() {
    let index =
        AdvisoryIndex::new(vec![debian_advisory("Debian:12", "gcc-defaults", r#"{"introduced": "0"}, {"fixed": "1.204"}"#, "medium")]);
    // cpp 4:12.2.0-3 is built from gcc-defaults 1.203: the source version decides.
    let cpp = deb(Some("12"), "cpp", "4:12.2.0-3", Some(("gcc-defaults", Some("1.203"))));
    let findings = index.findings(&cpp, &Scheme::Dpkg).unwrap();
    let [finding] = &findings[..] else { panic!("{findings:?}") };
    assert_eq!(finding.package, "cpp");
    assert_eq!(finding.installed_version, "4:12.2.0-3");
    assert_eq!(finding.fixed_version.as_deref(), Some("1.204"));

    let fixed = deb(Some("12"), "cpp", "4:12.2.0-3", Some(("gcc-defaults", Some("1.204"))));
    assert!(index.findings(&fixed, &Scheme::Dpkg).unwrap().is_empty());
    // Without its source, a binary package is looked up by its own name.
    assert!(index.findings(&deb(Some("12"), "cpp", "4:12.2.0-3", None), &Scheme::Dpkg).unwrap().is_empty());
    // Language ecosystems name packages themselves: a source given there is ignored.
    let npm_with_source = Package { source: Some(SourcePackage { name: "gcc-defaults", version: None }), ..npm("cpp", "1.0") };
    assert!(index.findings(&npm_with_source, &Scheme::Semver).unwrap().is_empty());
    // The name to index packages by for re-matching follows the same rules.
    assert_eq!(cpp.advisory_name(), "gcc-defaults");
    assert_eq!(npm_with_source.advisory_name(), "cpp");
    assert_eq!(
        Package { ecosystem: "PyPI", release: None, name: "Zope.Interface", version: "6.0", source: None }.advisory_name(),
        "zope-interface"
    );
}

#[test]
fn epochs_decide_before_upstream_versions() {
    let index = AdvisoryIndex::new(vec![debian_advisory("Debian:12", "tool", r#"{"introduced": "0"}, {"fixed": "1.5-1"}"#, "low")]);
    let affected = |version| !index.findings(&deb(Some("12"), "tool", version, None), &Scheme::Dpkg).unwrap().is_empty();
    assert!(affected("1.0-1"));
    assert!(affected("0:1.4-9"));
    assert!(!affected("1:1.0-1"), "epoch 1 sorts after every epoch-0 version");
    assert!(!affected("1.5-1"));
}

#[test]
fn go_versions_lose_their_v() {
    let index = AdvisoryIndex::new(vec![advisory(
        r#"{"id": "GO-2024-1", "modified": "2024-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "Go", "name": "example.com/mod"},
                          "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "1.2.0"}]}]}]}"#,
    )]);
    let package = Package { ecosystem: "Go", release: None, name: "example.com/mod", version: "v1.1.0", source: None };
    let findings = index.findings(&package, &Scheme::Go).unwrap();
    assert_eq!(findings[0].installed_version, "v1.1.0");
    assert_eq!(findings[0].fixed_version.as_deref(), Some("1.2.0"));
}

// ------------------------------------------------------ the test feed and images

/// How a finding is rated: band, policy class, and where the severity came from.
type Rating = Option<(Band, PolicyClass, SeveritySource)>;

/// What a finding is expected to be: package, advisory, fixed version, status, rating.
type Expected = (&'static str, &'static str, Option<&'static str>, FixState, Rating);

type Summary = (String, String, Option<String>, FixState, Rating);

fn summarize(findings: Vec<Finding>) -> Vec<Summary> {
    findings
        .into_iter()
        .map(|f| {
            let rating = f.severity.map(|s| (s.band, s.class, s.source));
            (f.package, f.advisory_id, f.fixed_version, f.status, rating)
        })
        .collect()
}

fn scan(index: &AdvisoryIndex, packages: &[Package<'_>]) -> Vec<Finding> {
    let mut findings = Vec::new();
    for package in packages {
        let scheme = Scheme::for_ecosystem(package.ecosystem).unwrap();
        findings.extend(index.findings(package, &scheme).unwrap());
    }
    findings
}

fn assert_findings(findings: Vec<Finding>, expected: &[Expected]) {
    let expected: Vec<_> = expected
        .iter()
        .map(|&(package, id, fixed, status, severity)| (package.to_owned(), id.to_owned(), fixed.map(str::to_owned), status, severity))
        .collect();
    assert_eq!(summarize(findings), expected);
}

fn feed_index() -> AdvisoryIndex {
    let feed = import_path(&good_dir()).unwrap();
    assert!(feed.report.rejected.is_empty(), "{:?}", feed.report.rejected);
    AdvisoryIndex::new(feed.advisories)
}

use FixState::{FixAvailable, Unfixed, WillNotFix};
const DEBIAN: SeveritySource = SeveritySource::Vendor(VendorScale::DebianUrgency);
const UBUNTU: SeveritySource = SeveritySource::Vendor(VendorScale::UbuntuPriority);
const GHSA: SeveritySource = SeveritySource::Vendor(VendorScale::GhsaSeverity);
const V31: SeveritySource = SeveritySource::Cvss(CvssVersion::V3_1);
const V40: SeveritySource = SeveritySource::Cvss(CvssVersion::V4_0);

#[test]
fn debian_image() {
    let packages = [
        deb(Some("12"), "apt", "2.6.1", Some(("apt", None))),
        deb(Some("12"), "libgcc-s1", "12.2.0-14", Some(("gcc-12", Some("12.2.0-14")))),
        deb(Some("12"), "libssl3", "3.0.11-1~deb12u2", Some(("openssl", None))),
        deb(Some("12"), "libxml2", "2.9.14+dfsg-1.3~deb12u1", Some(("libxml2", None))),
        deb(Some("12"), "openssh-client", "1:9.2p1-2+deb12u2", Some(("openssh", None))),
        deb(Some("12"), "openssl", "3.0.11-1~deb12u2", Some(("openssl", None))),
        deb(Some("12"), "zlib1g", "1:1.2.13.dfsg-1", Some(("zlib", None))),
        deb(Some("12"), "libc6", "2.36-9+deb12u4", Some(("glibc", None))),
    ];
    assert_findings(
        scan(&feed_index(), &packages),
        &[
            // "unimportant": never fixed in a security update.
            ("apt", "DEBIAN-CVE-2011-3374", None, WillNotFix, Some((Band::Low, PolicyClass::Minor, DEBIAN))),
            // No urgency assigned yet: the CVSS v3.1 vector rates it.
            ("libgcc-s1", "DEBIAN-CVE-2023-4039", None, Unfixed, Some((Band::Medium, PolicyClass::Major, V31))),
            // Keyed by the source package; Debian's "low" outranks CVSS 5.3.
            ("libssl3", "DEBIAN-CVE-2023-5678", Some("3.0.13-1~deb12u1"), FixAvailable, Some((Band::Low, PolicyClass::Minor, DEBIAN))),
            // Exactly the last affected version.
            ("libxml2", "DEBIAN-CVE-2024-25062", None, Unfixed, Some((Band::Low, PolicyClass::Minor, DEBIAN))),
            // Epoch 1 on both sides; DEBIAN-CVE-2023-48795 is fixed in exactly this version.
            (
                "openssh-client",
                "DEBIAN-CVE-2024-6387",
                Some("1:9.2p1-2+deb12u3"),
                FixAvailable,
                Some((Band::High, PolicyClass::Critical, V31)),
            ),
            ("openssl", "DEBIAN-CVE-2023-5678", Some("3.0.13-1~deb12u1"), FixAvailable, Some((Band::Low, PolicyClass::Minor, DEBIAN))),
        ],
    );

    // The same packages on Debian 11 meet the bullseye entries only.
    let bullseye = [
        deb(Some("11"), "libssl1.1", "1.1.1w-0+deb11u1", Some(("openssl", None))),
        deb(Some("11"), "openssh-client", "1:8.4p1-5+deb11u3", Some(("openssh", None))),
    ];
    assert_findings(
        scan(&feed_index(), &bullseye),
        &[("libssl1.1", "DEBIAN-CVE-2023-5678", Some("1.1.1w-0+deb11u2"), FixAvailable, Some((Band::Low, PolicyClass::Minor, DEBIAN)))],
    );
}

#[test]
fn ubuntu_image() {
    let ubuntu = |name, version, source| Package {
        ecosystem: "Ubuntu",
        release: Some("24.04"),
        name,
        version,
        source: Some(SourcePackage { name: source, version: None }),
    };
    let packages = [
        ubuntu("openssh-client", "1:9.6p1-3ubuntu13", "openssh"),
        ubuntu("libc6", "2.39-0ubuntu8.3", "glibc"),
        ubuntu("libssl3t64", "3.0.13-0ubuntu3.4", "openssl"),
    ];
    assert_findings(
        scan(&feed_index(), &packages),
        &[
            (
                "openssh-client",
                "UBUNTU-CVE-2024-6387",
                Some("1:9.6p1-3ubuntu13.3"),
                FixAvailable,
                Some((Band::High, PolicyClass::Critical, UBUNTU)),
            ),
            ("libc6", "UBUNTU-CVE-2025-0395", Some("2.39-0ubuntu8.4"), FixAvailable, Some((Band::Medium, PolicyClass::Major, UBUNTU))),
        ],
    );
    // The Pro entry for 16.04 applies to systems attached to Ubuntu Pro only.
    let xenial = Package { release: Some("16.04"), version: "2.23-0ubuntu11.3", ..ubuntu("libc6", "", "glibc") };
    assert!(feed_index().findings(&xenial, &Scheme::Dpkg).unwrap().is_empty());
    let xenial_pro = Package { release: Some("Pro:16.04"), ..xenial };
    assert_eq!(ids(&feed_index().findings(&xenial_pro, &Scheme::Dpkg).unwrap()), ["UBUNTU-CVE-2025-0395"]);
}

#[test]
fn alpine_image() {
    let apk = |name, version, origin| Package {
        ecosystem: "Alpine",
        release: Some("3.19.1"),
        name,
        version,
        source: Some(SourcePackage { name: origin, version: None }),
    };
    let packages =
        [apk("libcrypto3", "3.1.4-r0", "openssl"), apk("busybox", "1.36.1-r15", "busybox"), apk("musl", "1.2.4_git20230717-r4", "musl")];
    assert_findings(
        scan(&feed_index(), &packages),
        &[
            ("libcrypto3", "ALPINE-CVE-2024-0727", Some("3.1.4-r5"), FixAvailable, Some((Band::Medium, PolicyClass::Major, V31))),
            ("busybox", "ALPINE-CVE-2023-42366", Some("1.36.1-r16"), FixAvailable, Some((Band::Medium, PolicyClass::Major, V31))),
        ],
    );
}

#[test]
fn application_image() {
    let package = |ecosystem, name, version| Package { ecosystem, release: None, name, version, source: None };
    let packages = [
        package("PyPI", "requests", "2.28.1"),
        package("PyPI", "PyYAML", "5.3.1"),
        package("PyPI", "Jinja2", "3.1.3"),
        package("npm", "lodash", "4.17.20"),
        package("npm", "cross-spawn", "7.0.3"),
        package("npm", "flatmap-stream", "0.1.1"),
        package("Go", "golang.org/x/net", "v0.17.0"),
        package("crates.io", "idna", "0.5.0"),
        package("crates.io", "openssl", "0.10.54"),
        package("Maven", "org.apache.logging.log4j:log4j-core", "2.14.1"),
        package("RubyGems", "nokogiri", "1.13.3"),
        package("Packagist", "GuzzleHttp/Guzzle", "7.4.4"),
    ];
    assert_findings(
        scan(&feed_index(), &packages),
        &[
            ("requests", "GHSA-j8r2-6x86-q33q", Some("2.31.0"), FixAvailable, Some((Band::Medium, PolicyClass::Major, GHSA))),
            // Found under its PEP 503 name.
            ("PyYAML", "GHSA-8q59-q68h-6hv4", Some("5.4"), FixAvailable, Some((Band::Critical, PolicyClass::Critical, GHSA))),
            // Jinja2 3.1.3 is the fixed version; the withdrawn lodash advisory is skipped.
            ("lodash", "GHSA-35jh-r3h4-6jhm", Some("4.17.21"), FixAvailable, Some((Band::High, PolicyClass::Critical, GHSA))),
            // The second of two ranges.
            ("cross-spawn", "GHSA-3xgq-45jj-v275", Some("7.0.5"), FixAvailable, Some((Band::High, PolicyClass::Critical, GHSA))),
            // Listed versions only: no fix.
            ("flatmap-stream", "GHSA-mh6f-8j2x-4483", None, Unfixed, Some((Band::Critical, PolicyClass::Critical, GHSA))),
            // The Go database gives no severity.
            ("golang.org/x/net", "GO-2024-2687", Some("0.23.0"), FixAvailable, None),
            // CVSS v4.0 (6.3) before v3.1 (3.7).
            ("idna", "RUSTSEC-2024-0421", Some("1.0.0"), FixAvailable, Some((Band::Medium, PolicyClass::Major, V40))),
            ("openssl", "RUSTSEC-2023-0044", Some("0.10.55"), FixAvailable, Some((Band::Medium, PolicyClass::Major, V31))),
            (
                "org.apache.logging.log4j:log4j-core",
                "GHSA-jfh8-c2jp-5v3q",
                Some("2.15.0"),
                FixAvailable,
                Some((Band::Critical, PolicyClass::Critical, GHSA)),
            ),
            ("nokogiri", "GHSA-crjr-9rc5-ghw8", Some("1.13.4"), FixAvailable, Some((Band::High, PolicyClass::Critical, GHSA))),
            ("GuzzleHttp/Guzzle", "GHSA-25mq-v84q-4j7r", Some("7.4.5"), FixAvailable, Some((Band::Medium, PolicyClass::Major, GHSA))),
        ],
    );

    let findings = feed_index().findings(&package("npm", "lodash", "4.17.20"), &Scheme::Semver).unwrap();
    let finding = &findings[0];
    assert_eq!(finding.aliases, ["CVE-2021-23337"]);
    assert_eq!(finding.installed_version, "4.17.20");
    let severity = finding.severity.as_ref().unwrap();
    assert_eq!(severity.rating.as_deref(), Some("HIGH"));
    assert_eq!(severity.score, None);
}

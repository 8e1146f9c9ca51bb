//! OSV feed import: the model, normalisation, each input form, and bad records.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use slipway_scanner::ScanError;
use slipway_scanner::cvss::{Band, CvssVersion, PolicyClass, SeveritySource, VendorScale};
use slipway_scanner::osv::record::Record;
use slipway_scanner::osv::{
    Advisory, Event, FixState, Importer, RangeKind, import_path, normalize_name, normalize_release, split_ecosystem,
};
use zip::write::SimpleFileOptions;

fn feed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("testdata/feed")
}

pub fn good_dir() -> PathBuf {
    feed_dir().join("good")
}

fn good_files() -> Vec<PathBuf> {
    fn walk(dir: &Path, files: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, files);
            } else {
                files.push(path);
            }
        }
    }
    let mut files = Vec::new();
    walk(&good_dir(), &mut files);
    files.sort();
    files
}

fn import_one(relative: &str) -> Advisory {
    let feed = import_path(&good_dir().join(relative)).unwrap();
    assert!(feed.report.rejected.is_empty(), "{:?}", feed.report.rejected);
    let [advisory] = <[Advisory; 1]>::try_from(feed.advisories).unwrap();
    advisory
}

fn parse(json: &str) -> Result<Advisory, ScanError> {
    let record: Record = serde_json::from_str(json).map_err(|e| ScanError::InvalidRecord(e.to_string()))?;
    Advisory::try_from(record)
}

fn sorted_ids(advisories: &[Advisory]) -> Vec<&str> {
    let mut ids: Vec<&str> = advisories.iter().map(|a| a.id.as_str()).collect();
    ids.sort();
    ids
}

#[test]
fn imports_a_directory_tree_and_reports_bad_records() {
    let feed = import_path(&feed_dir()).unwrap();
    let report = &feed.report;

    assert_eq!(report.imported, good_files().len());
    assert_eq!(feed.advisories.len(), report.imported);
    assert_eq!(report.withdrawn, 1);
    let ecosystems: std::collections::BTreeSet<&str> =
        feed.advisories.iter().flat_map(|a| &a.affected).map(|p| p.ecosystem.as_str()).collect();
    assert_eq!(
        ecosystems.into_iter().collect::<Vec<_>>(),
        ["Alpine", "Debian", "Go", "Maven", "Packagist", "PyPI", "RubyGems", "Ubuntu", "crates.io", "npm"]
    );

    // Each bad file is named, with why; README.md is not a record and is not read.
    let rejected: Vec<(String, &str)> = report
        .rejected
        .iter()
        .map(|r| (Path::new(&r.file).file_name().unwrap().to_string_lossy().into_owned(), r.reason.as_str()))
        .collect();
    let expected = [
        ("event-with-two-versions.json", "ranges[0]: event with more than one of"),
        ("fixed-and-last-affected.json", "both fixed and last_affected"),
        ("invalid-json.json", "EOF while parsing"),
        ("missing-id.json", "missing field `id`"),
        ("missing-package-name.json", "missing field `name`"),
        ("unknown-range-type.json", "unknown variant `VERSIONS`"),
    ];
    assert_eq!(rejected.len(), expected.len(), "{rejected:?}");
    for ((file, reason), (expected_file, expected_reason)) in rejected.iter().zip(expected) {
        assert_eq!(file, expected_file);
        assert!(reason.contains(expected_reason), "{file}: {reason}");
    }
    assert!(report.rejected.iter().all(|r| r.file.contains("testdata/feed/bad/")));
}

#[test]
fn normalises_a_debian_record() {
    let advisory = import_one("debian/DEBIAN-CVE-2023-5678.json");
    assert_eq!(advisory.id, "DEBIAN-CVE-2023-5678");
    assert_eq!(advisory.upstream, ["CVE-2023-5678"]);
    assert!(advisory.aliases.is_empty());
    assert_eq!(advisory.cve_ids().collect::<Vec<_>>(), ["CVE-2023-5678"]);
    assert_eq!(advisory.modified, "2024-11-02T05:14:31Z");
    assert!(!advisory.is_withdrawn());

    let releases: Vec<Option<&str>> = advisory.affected.iter().map(|p| p.release.as_deref()).collect();
    assert_eq!(releases, [Some("11"), Some("12")]);
    let bookworm = &advisory.affected[1];
    assert_eq!((bookworm.ecosystem.as_str(), bookworm.name.as_str()), ("Debian", "openssl"));
    assert_eq!(bookworm.purl.as_deref(), Some("pkg:deb/debian/openssl?arch=source"));
    assert_eq!(bookworm.fix, FixState::FixAvailable);
    assert_eq!(bookworm.ranges.len(), 1);
    assert_eq!(bookworm.ranges[0].kind, RangeKind::Ecosystem);
    assert_eq!(bookworm.ranges[0].events, [Event::Introduced("0".into()), Event::Fixed("3.0.13-1~deb12u1".into())]);

    // The urgency comes first, then the record's CVSS vector.
    let [urgency, cvss] = &bookworm.severities[..] else { panic!("{:?}", bookworm.severities) };
    assert_eq!(urgency.source, SeveritySource::Vendor(VendorScale::DebianUrgency));
    assert_eq!(urgency.rating.as_deref(), Some("low"));
    assert_eq!((urgency.band, urgency.class), (Band::Low, PolicyClass::Minor));
    assert_eq!(cvss.source, SeveritySource::Cvss(CvssVersion::V3_1));
    assert_eq!(cvss.score.unwrap().to_string(), "5.3");
    assert_eq!((cvss.band, cvss.class), (Band::Medium, PolicyClass::Major));
    assert_eq!(bookworm.severity(), Some(urgency));
    assert_eq!(advisory.severities, std::slice::from_ref(cvss));
}

#[test]
fn keeps_debian_fix_states() {
    let apt = import_one("debian/DEBIAN-CVE-2011-3374.json");
    assert!(apt.affected.iter().all(|p| p.fix == FixState::WillNotFix));
    assert_eq!(apt.affected[0].severity().unwrap().rating.as_deref(), Some("unimportant"));

    // "not yet assigned" is no severity: the CVSS vector is used.
    let gcc = import_one("debian/DEBIAN-CVE-2023-4039.json");
    assert_eq!(gcc.affected[0].fix, FixState::Unfixed);
    let severity = gcc.affected[0].severity().unwrap();
    assert_eq!(severity.source, SeveritySource::Cvss(CvssVersion::V3_1));
    assert_eq!((severity.band, severity.class), (Band::Medium, PolicyClass::Major));

    let libxml2 = import_one("debian/DEBIAN-CVE-2024-25062.json");
    assert_eq!(libxml2.affected[0].fix, FixState::Unfixed);
    assert_eq!(libxml2.affected[0].ranges[0].events[1], Event::LastAffected("2.9.14+dfsg-1.3~deb12u1".into()));

    let dsa = import_one("debian/DSA-5532-1.json");
    assert_eq!(dsa.aliases, ["CVE-2023-5363"]);
    assert_eq!(dsa.affected[0].release.as_deref(), Some("11"));
    assert!(dsa.affected[0].severities.is_empty());
}

#[test]
fn normalises_ubuntu_and_alpine_releases() {
    let glibc = import_one("ubuntu/UBUNTU-CVE-2025-0395.json");
    let releases: Vec<Option<&str>> = glibc.affected.iter().map(|p| p.release.as_deref()).collect();
    assert_eq!(releases, [Some("Pro:16.04"), Some("22.04"), Some("24.04")]);
    assert_eq!(glibc.related, ["USN-7259-1"]);
    let severity = glibc.affected[2].severity().unwrap();
    assert_eq!(severity.source, SeveritySource::Vendor(VendorScale::UbuntuPriority));
    assert_eq!((severity.band, severity.class), (Band::Medium, PolicyClass::Major));
    assert_eq!(glibc.affected[2].versions.len(), 4);

    let openssl = import_one("alpine/ALPINE-CVE-2024-0727.json");
    let releases: Vec<Option<&str>> = openssl.affected.iter().map(|p| p.release.as_deref()).collect();
    assert_eq!(releases, [Some("3.18"), Some("3.19")]);
}

#[test]
fn normalises_language_ecosystem_records() {
    let pyyaml = import_one("pypi/GHSA-8q59-q68h-6hv4.json");
    assert_eq!(pyyaml.affected[0].name, "pyyaml");
    assert_eq!((pyyaml.affected[0].ecosystem.as_str(), pyyaml.affected[0].release.as_deref()), ("PyPI", None));
    // GitHub's rating comes before its CVSS vector.
    let sources: Vec<SeveritySource> = pyyaml.severities.iter().map(|s| s.source).collect();
    assert_eq!(sources, [SeveritySource::Vendor(VendorScale::GhsaSeverity), SeveritySource::Cvss(CvssVersion::V3_1)]);

    let cross_spawn = import_one("npm/GHSA-3xgq-45jj-v275.json");
    let scores: Vec<String> = cross_spawn.affected[0]
        .severities
        .iter()
        .map(|s| format!("{} {}", s.source, s.score.map(|s| s.to_string()).unwrap_or_default()))
        .collect();
    assert_eq!(scores, ["GitHub advisory severity ", "CVSS v4.0 vector 8.7", "CVSS v3.1 vector 7.5"]);
    assert_eq!(cross_spawn.affected[0].ranges.len(), 2);
    assert_eq!(cross_spawn.affected[0].ranges[0].kind, RangeKind::Semver);

    // Without a vendor rating, CVSS v4.0 comes before v3.1.
    let idna = import_one("crates/RUSTSEC-2024-0421.json");
    let severity = idna.affected[0].severity().unwrap();
    assert_eq!(severity.source, SeveritySource::Cvss(CvssVersion::V4_0));
    assert_eq!(severity.score.unwrap().to_string(), "6.3");
    assert_eq!(idna.cve_ids().collect::<Vec<_>>(), ["CVE-2024-12224"]);

    let go = import_one("go/GO-2024-2687.json");
    assert!(go.severities.is_empty() && go.affected[0].severity().is_none());

    let flatmap = import_one("npm/GHSA-mh6f-8j2x-4483.json");
    assert!(flatmap.affected[0].ranges.is_empty());
    assert_eq!(flatmap.affected[0].versions, ["0.1.1"]);
    assert_eq!(flatmap.affected[0].fix, FixState::Unfixed);

    let withdrawn = import_one("npm/GHSA-x9x9-x9x9-x9x9.json");
    assert_eq!(withdrawn.withdrawn.as_deref(), Some("2024-01-05T12:00:00Z"));
    assert!(withdrawn.is_withdrawn());

    let log4j = import_one("maven/GHSA-jfh8-c2jp-5v3q.json");
    assert_eq!(log4j.affected[0].name, "org.apache.logging.log4j:log4j-core");
    assert_eq!(log4j.affected[0].severity().unwrap().band, Band::Critical);
}

#[test]
fn names_releases_and_ecosystems() {
    assert_eq!(normalize_name("PyPI", "Zope.Interface__Extra"), "zope-interface-extra");
    assert_eq!(normalize_name("PyPI", "PyYAML"), "pyyaml");
    assert_eq!(normalize_name("crates.io", "Tokio_Util"), "tokio-util");
    assert_eq!(normalize_name("Packagist", "GuzzleHttp/Guzzle"), "guzzlehttp/guzzle");
    assert_eq!(normalize_name("npm", "JSONStream"), "JSONStream");
    assert_eq!(normalize_name("Go", "github.com/BurntSushi/toml"), "github.com/BurntSushi/toml");

    assert_eq!(normalize_release("Alpine", "v3.19"), "3.19");
    assert_eq!(normalize_release("Alpine", "3.19.1"), "3.19");
    assert_eq!(normalize_release("Alpine", "edge"), "edge");
    assert_eq!(normalize_release("Ubuntu", "22.04:LTS"), "22.04");
    assert_eq!(normalize_release("Ubuntu", "23.10"), "23.10");
    assert_eq!(normalize_release("Ubuntu", "Pro:18.04:LTS"), "Pro:18.04");
    assert_eq!(normalize_release("Debian", "12"), "12");

    assert_eq!(split_ecosystem("Debian:12"), ("Debian", Some("12")));
    assert_eq!(split_ecosystem("Maven:https://maven.example"), ("Maven", Some("https://maven.example")));
    assert_eq!(split_ecosystem("npm"), ("npm", None));
}

#[test]
fn registry_suffixes_are_not_releases() {
    let advisory = parse(
        r#"{"id": "GHSA-1111-2222-3333", "modified": "2024-01-01T00:00:00Z",
            "affected": [{"package": {"ecosystem": "Maven:https://maven.example", "name": "com.example:lib"},
                          "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.2"}]}]}]}"#,
    )
    .unwrap();
    let package = &advisory.affected[0];
    assert_eq!(package.ecosystem, "Maven");
    assert_eq!(package.release, None);
    assert_eq!(package.repository.as_deref(), Some("https://maven.example"));
}

#[test]
fn tolerates_what_the_schema_allows() {
    // Unknown fields, null arrays, GIT-only entries without a package, a severity that
    // does not score: the record is kept.
    let advisory = parse(
        r#"{"schema_version": "1.9.0", "id": "OSV-2024-9", "modified": "2024-01-01T00:00:00Z",
            "aliases": null, "related": null, "references": null, "future_field": {"x": 1},
            "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:X"}, {"type": "CVSS_V2", "score": "AV:N/AC:L/Au:N/C:P/I:P/A:P"}],
            "affected": [
              {"ranges": [{"type": "GIT", "repo": "https://example.com/repo.git",
                           "events": [{"introduced": "0"}, {"fixed": "0123456789abcdef0123456789abcdef01234567"}]}]},
              {"package": {"ecosystem": "PyPI", "name": "example"}, "severity": null, "versions": null,
               "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "1.0"}, {"limit": "*"}], "new": true}]}
            ]}"#,
    )
    .unwrap();
    assert!(advisory.aliases.is_empty() && advisory.severities.is_empty());
    assert_eq!(advisory.affected.len(), 1);
    assert_eq!(advisory.affected[0].ranges[0].events[1], Event::Limit("*".into()));
    assert_eq!(advisory.affected[0].fix, FixState::Unfixed);

    let empty = parse(r#"{"id": "OSV-2024-10", "modified": "2024-01-01T00:00:00Z", "affected": null}"#).unwrap();
    assert!(empty.affected.is_empty());
}

#[test]
fn refuses_what_matching_cannot_use() {
    for (json, reason) in [
        (r#"{"id": "", "modified": "x"}"#, "empty id"),
        (r#"{"id": "OSV-1"}"#, "missing field `modified`"),
        (
            r#"{"id": "OSV-1", "modified": "x", "affected": [{"package": {"ecosystem": "", "name": "a"}}]}"#,
            "affected[0]: package has an empty ecosystem",
        ),
        (
            r#"{"id": "PYSEC-0", "modified": "x", "affected": [{"package": {"ecosystem": "PyPI", "name": "_"}, "versions": ["1.0"]}]}"#,
            "affected[0]: package has an empty name",
        ),
        (
            r#"{"id": "OSV-1", "modified": "x", "affected": [{"package": {"ecosystem": "npm", "name": "a"},
                "ranges": [{"type": "SEMVER", "events": [{"fixed": "1.0.0"}]}]}]}"#,
            "affected[0]: ranges[0]: no introduced event",
        ),
        (
            r#"{"id": "OSV-1", "modified": "x", "affected": [{"package": {"ecosystem": "npm", "name": "a"},
                "ranges": [{"type": "GIT", "events": [{"introduced": "0"}]}]}]}"#,
            "GIT range without a repo",
        ),
        (
            r#"{"id": "OSV-1", "modified": "x", "affected": [{"package": {"ecosystem": "npm", "name": "a"},
                "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {}]}]}]}"#,
            "event without introduced",
        ),
    ] {
        let error = parse(json).expect_err(json).to_string();
        assert!(error.contains(reason), "{error}");
    }
}

/// Builds an archive the way osv.dev publishes an ecosystem: one `<ID>.json` per
/// advisory at the top level; with a directory entry, a file that is not JSON, and a
/// broken record.
fn write_archive(path: &Path) {
    let mut zip = zip::ZipWriter::new(fs::File::create(path).unwrap());
    let options = SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
    zip.add_directory("docs/", options).unwrap();
    zip.start_file("docs/README.txt", options).unwrap();
    zip.write_all(b"not a record").unwrap();
    for file in good_files() {
        zip.start_file(file.file_name().unwrap().to_string_lossy(), options).unwrap();
        zip.write_all(&fs::read(&file).unwrap()).unwrap();
    }
    zip.start_file("BROKEN-1.json", options).unwrap();
    zip.write_all(b"{\"id\": ").unwrap();
    zip.finish().unwrap();
}

#[test]
fn imports_a_zip_archive_entry_by_entry() {
    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("all.zip");
    write_archive(&archive);

    let from_zip = import_path(&archive).unwrap();
    let from_dir = import_path(&good_dir()).unwrap();
    assert_eq!(sorted_ids(&from_zip.advisories), sorted_ids(&from_dir.advisories));
    for advisory in &from_zip.advisories {
        assert!(from_dir.advisories.contains(advisory), "{} differs", advisory.id);
    }
    assert_eq!(from_zip.report.imported, good_files().len());
    assert_eq!(from_zip.report.withdrawn, 1);
    let [rejected] = &from_zip.report.rejected[..] else { panic!("{:?}", from_zip.report.rejected) };
    assert_eq!(rejected.file, format!("{}:BROKEN-1.json", archive.display()));

    // A directory holding archives reads them too.
    let feed = import_path(dir.path()).unwrap();
    assert_eq!(feed.report, from_zip.report);
}

#[test]
fn streams_advisories_to_a_callback() {
    let mut ids = Vec::new();
    let report = Importer::default().import_with(&good_dir(), |advisory| ids.push(advisory.id)).unwrap();
    assert_eq!(ids.len(), report.imported);
    assert!(ids.windows(2).all(|w| w[0] != w[1]));
    assert!(ids.contains(&"GHSA-jfh8-c2jp-5v3q".to_owned()));
}

#[test]
fn refuses_records_over_the_size_limit() {
    const LIMIT: u64 = 1500;
    let sizes: Vec<u64> = good_files().iter().map(|f| fs::metadata(f).unwrap().len()).collect();
    let over = sizes.iter().filter(|&&size| size > LIMIT).count();
    assert!(over > 0 && over < sizes.len(), "the limit should split the test feed");

    let importer = Importer::default().max_record_bytes(LIMIT);
    let feed = importer.import(&good_dir()).unwrap();
    assert_eq!(feed.report.imported, sizes.len() - over);
    assert_eq!(feed.report.rejected.len(), over);
    assert!(feed.report.rejected.iter().all(|r| r.reason == "record is larger than the 1500-byte limit"));

    let dir = tempfile::tempdir().unwrap();
    let archive = dir.path().join("all.zip");
    write_archive(&archive);
    let feed = importer.import(&archive).unwrap();
    assert_eq!(feed.report.imported, sizes.len() - over);
    assert_eq!(feed.report.rejected.len(), over + 1, "the oversized entries and the broken one");
}

#[test]
fn fails_on_a_feed_it_cannot_read() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    assert!(matches!(import_path(&missing), Err(ScanError::FeedRead { .. })));

    let not_zip = dir.path().join("Debian.zip");
    fs::write(&not_zip, b"this is not a zip archive").unwrap();
    assert!(matches!(import_path(&not_zip), Err(ScanError::FeedArchive { .. })));

    // A single record file that is not JSON is a rejected record, not a failure.
    let text = dir.path().join("record.txt");
    fs::write(&text, b"hello").unwrap();
    let feed = import_path(&text).unwrap();
    assert_eq!(feed.report.rejected.len(), 1);
}

/// Callers store normalised advisories as JSON: every field survives the round trip,
/// and a stored score over 10.0 is refused rather than trusted.
#[test]
fn advisories_round_trip_through_json() {
    for advisory in import_path(&good_dir()).unwrap().advisories {
        let json = serde_json::to_string(&advisory).unwrap();
        let back: Advisory = serde_json::from_str(&json).unwrap();
        assert_eq!(back, advisory, "{json}");
    }
    assert!(serde_json::from_str::<slipway_scanner::cvss::Score>("101").is_err());
    assert_eq!(serde_json::from_str::<slipway_scanner::cvss::Score>("98").unwrap().to_string(), "9.8");
}

//! OSV records as the feeds serve them (slipway-scanner's record model, Advisory's
//! validation and normalisation), then matched (AdvisoryIndex::findings).
//!
//! An accepted advisory survives the JSON round trip the scan results are stored with;
//! normalising a package name twice changes nothing (the index and the lookup each
//! normalise); and every version an entry lists under `versions` is reported as
//! affected, with a fixed version (if any) above it, as the OSV specification's
//! `IsVulnerable` requires.
#![no_main]

use std::cmp::Ordering;

use libfuzzer_sys::fuzz_target;
use slipway_scanner::matcher::{AdvisoryIndex, Package};
use slipway_scanner::osv::record::Record;
use slipway_scanner::osv::{Advisory, normalize_name};
use slipway_scanner::version::Scheme;

fuzz_target!(|data: &[u8]| {
    let Ok(record) = serde_json::from_slice::<Record>(data) else { return };
    let Ok(advisory) = Advisory::try_from(record) else { return };

    let json = serde_json::to_string(&advisory).expect("an advisory serialises");
    let back: Advisory = serde_json::from_str(&json).expect("a serialised advisory reads back");
    assert_eq!(back, advisory);

    for entry in &advisory.affected {
        assert!(!entry.ecosystem.is_empty() && !entry.name.is_empty());
        assert_eq!(normalize_name(&entry.ecosystem, &entry.name), entry.name, "normalising {:?} is not idempotent", entry.name);
        // Severities in precedence order: vendor, then CVSS v4.0, v3.1, v3.0.
        assert!(entry.severities.windows(2).all(|w| w[0].source.precedence() <= w[1].source.precedence()));
    }
    if advisory.is_withdrawn() {
        return;
    }
    let index = AdvisoryIndex::new(vec![advisory.clone()]);
    for entry in advisory.affected.iter().filter(|e| e.release.is_none()) {
        let Some(scheme) = Scheme::for_ecosystem(&entry.ecosystem) else { continue };
        // Go's "v" is stripped from installed versions before matching.
        for version in entry.versions.iter().filter(|v| entry.ecosystem != "Go" || !v.starts_with('v')).take(8) {
            if scheme.compare(version, version).is_err() {
                continue;
            }
            let package = Package { ecosystem: &entry.ecosystem, release: None, name: &entry.name, version, source: None };
            let findings = index.findings(&package, &scheme).expect("the installed version parses");
            let finding = findings
                .iter()
                .find(|f| f.advisory_id == advisory.id)
                .unwrap_or_else(|| panic!("{version:?} is listed as affected in {:?} but not reported", entry.name));
            if let Some(fixed) = &finding.fixed_version {
                assert_eq!(scheme.compare(version, fixed).ok(), Some(Ordering::Less), "the fix {fixed:?} is not above {version:?}");
            }
        }
    }
});

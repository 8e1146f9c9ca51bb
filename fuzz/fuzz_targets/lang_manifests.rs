//! The language-package detectors, each fed the rest of the input as the file at a path
//! it claims: npm `package.json`, Python METADATA / PKG-INFO / egg-info, Composer's
//! `installed.json`, gemspecs, executables (ELF headers, Go build info, the
//! cargo-auditable `.dep-v0` section), Java archives (nested jars, pom.properties,
//! MANIFEST.MF) and os-release. What is found must be of the detector's ecosystem, and
//! agree with the file where the format is plain enough to read here.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use slipway_fuzz::{analyze_file, assert_ecosystem, packages_at};
use slipway_scanner::analyzer::{Ecosystem, Finding};

/// (path, mode, ecosystem found there; None for os-release).
const FILES: [(&str, u32, Option<Ecosystem>); 10] = [
    ("usr/lib/node_modules/left-pad/package.json", 0o644, Some(Ecosystem::Npm)),
    ("app/node_modules/@scope/pkg/package.json", 0o644, Some(Ecosystem::Npm)),
    ("usr/lib/python3/site-packages/six-1.16.0.dist-info/METADATA", 0o644, Some(Ecosystem::PyPI)),
    ("usr/lib/python3/dist-packages/six-1.16.0.egg-info", 0o644, Some(Ecosystem::PyPI)),
    ("var/www/html/vendor/composer/installed.json", 0o644, Some(Ecosystem::Packagist)),
    ("usr/local/bundle/specifications/rack-2.2.8.gemspec", 0o644, Some(Ecosystem::RubyGems)),
    ("usr/local/bin/app", 0o755, None),
    ("srv/app.jar", 0o644, Some(Ecosystem::Maven)),
    ("opt/tools/app.war", 0o644, Some(Ecosystem::Maven)),
    ("etc/os-release", 0o644, None),
];

fuzz_target!(|data: &[u8]| {
    let Some((&selector, content)) = data.split_first() else { return };
    let (path, mode, ecosystem) = FILES[usize::from(selector) % FILES.len()];
    let report = analyze_file(path, mode, content);
    match report.findings.get(path) {
        None => {}
        Some(Finding::OwnedFiles { .. }) => panic!("file ownership found in {path}"),
        Some(Finding::OsRelease(release)) => {
            assert_eq!(path, "etc/os-release");
            // The format's default ID.
            assert!(!release.id.is_empty());
        }
        Some(Finding::Packages { packages }) => match ecosystem {
            Some(ecosystem) => assert_ecosystem(packages, ecosystem),
            // Executables: Go modules and crates.io crates only.
            None => {
                assert_ne!(path, "etc/os-release");
                assert!(packages.iter().all(|p| matches!(p.ecosystem, Ecosystem::Go | Ecosystem::CratesIo)), "{packages:?}");
                // Go versions lose their `v`; `(devel)` and local replacements are dropped.
                for package in packages.iter().filter(|p| p.ecosystem == Ecosystem::Go && p.name != "stdlib") {
                    assert!(!package.version.is_empty() && !package.version.starts_with('('), "{package:?}");
                }
            }
        },
    }
    // npm: a package.json is one package, with the name and version it declares.
    if path.ends_with("package.json")
        && let Some(packages) = packages_at(&report, path)
    {
        assert_eq!(packages.len(), 1);
        // Fields other than name and version are skipped unchecked, so the file may hold
        // escapes a full JSON reading refuses (a lone surrogate): compare when it reads.
        if let Ok(declared) = serde_json::from_slice::<Value>(content) {
            assert_eq!(declared["name"].as_str(), Some(packages[0].name.as_str()));
            assert_eq!(declared["version"].as_str(), Some(packages[0].version.as_str()));
        }
    }
    // Maven artifacts are named group:artifact.
    if ecosystem == Some(Ecosystem::Maven)
        && let Some(packages) = packages_at(&report, path)
    {
        for package in packages {
            assert!(package.name.contains(':'), "{package:?}");
        }
    }
});

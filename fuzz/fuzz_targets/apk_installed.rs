//! apk's database, `lib/apk/db/installed` (and the merged-/usr path).
//!
//! Odd first bytes: the rest of the input is the database. Even first bytes: the rest
//! describes packages with their files, written out as apk writes its database; the
//! analyzer must find exactly those packages, each owning exactly its files.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use slipway_fuzz::{analyze_file, assert_ecosystem, packages_at};
use slipway_scanner::analyzer::{Ecosystem, path_hash};

const PATHS: [&str; 2] = ["lib/apk/db/installed", "usr/lib/apk/db/installed"];

#[derive(Arbitrary, Debug)]
struct Package {
    name: String,
    version: String,
    arch: Option<String>,
    origin: Option<String>,
    /// Directories (`F:`), each with its files (`R:`).
    dirs: Vec<(String, Vec<String>)>,
    /// Other fields: checksum, size, maintainer, dependencies...
    extra: Vec<(u8, String)>,
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    let path = PATHS[usize::from(mode / 2) % PATHS.len()];
    if mode % 2 == 1 {
        let report = analyze_file(path, 0o644, rest);
        if let Some(packages) = packages_at(&report, path) {
            assert_ecosystem(packages, Ecosystem::Apk);
            assert!(packages.iter().all(|p| !p.name.is_empty() && !p.version.is_empty()), "{packages:?}");
        }
        return;
    }
    let Ok(packages) = Vec::<Package>::arbitrary_take_rest(Unstructured::new(rest)) else { return };
    let packages: Vec<Package> = packages.into_iter().filter_map(clean).collect();
    let mut db = String::new();
    for package in &packages {
        db.push_str(&format!("C:Q1abcdefghijklmnopqrstuvwxyz0123=\nP:{}\nV:{}\n", package.name, package.version));
        if let Some(arch) = &package.arch {
            db.push_str(&format!("A:{arch}\n"));
        }
        if let Some(origin) = &package.origin {
            db.push_str(&format!("o:{origin}\n"));
        }
        for (key, value) in &package.extra {
            db.push_str(&format!("{}:{value}\n", char::from(*key)));
        }
        for (dir, files) in &package.dirs {
            db.push_str(&format!("F:{dir}\n"));
            for file in files {
                db.push_str(&format!("R:{file}\na:0:0:755\nZ:Q1hash=\n"));
            }
        }
        db.push('\n');
    }
    let report = analyze_file(path, 0o644, db.as_bytes());
    assert!(report.issues.is_empty(), "{:?}\n{db}", report.issues);
    let found = packages_at(&report, path).unwrap_or_default();
    assert_eq!(found.len(), packages.len(), "{db}");
    for (found, expected) in found.iter().zip(&packages) {
        assert_eq!(found.ecosystem, Ecosystem::Apk);
        assert_eq!(found.name, expected.name);
        assert_eq!(found.version, expected.version);
        assert_eq!(found.arch, expected.arch);
        assert_eq!(found.source_name, expected.origin);
        let files: Vec<u64> = expected
            .dirs
            .iter()
            .flat_map(|(dir, files)| files.iter().map(move |file| path_hash(&format!("{dir}/{file}"))))
            .collect();
        assert_eq!(found.files, files, "{db}");
    }
});

/// Values apk could write: one line, not empty; extra fields under keys the test does not
/// set. A package left without a name or version is dropped.
fn clean(mut package: Package) -> Option<Package> {
    let line = |text: &str| -> String { text.chars().filter(|c| !c.is_control()).collect() };
    package.name = line(&package.name);
    package.version = line(&package.version);
    package.arch = package.arch.map(|a| line(&a)).filter(|a| !a.is_empty());
    package.origin = package.origin.map(|o| line(&o)).filter(|o| !o.is_empty());
    package.dirs = package
        .dirs
        .into_iter()
        .map(|(dir, files)| (line(&dir), files.iter().map(|f| line(f)).filter(|f| !f.is_empty()).collect()))
        .filter(|(dir, _): &(String, Vec<String>)| !dir.is_empty())
        .collect();
    package.extra.retain(|(key, _)| key.is_ascii_alphanumeric() && !b"PVAoFRC".contains(key));
    package.extra.iter_mut().for_each(|(_, value)| *value = line(value));
    (!package.name.is_empty() && !package.version.is_empty()).then_some(package)
}

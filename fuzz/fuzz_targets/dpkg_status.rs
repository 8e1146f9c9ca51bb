//! dpkg's databases in a layer: `var/lib/dpkg/status`, distroless `status.d/` entries,
//! and the `info/*.list` and `status.d/*.md5sums` file lists.
//!
//! Odd first bytes: the rest of the input is the file, at a path the first byte picks.
//! Even first bytes: the rest describes packages (names, versions, states, sources,
//! architectures, extra fields with continuation lines), which are written out as a
//! status file the way dpkg writes it; the analyzer must then find exactly the installed
//! ones, with the source package dpkg's rules give.
#![no_main]

use arbitrary::{Arbitrary, Unstructured};
use libfuzzer_sys::fuzz_target;
use slipway_fuzz::{analyze_file, assert_ecosystem, packages_at};
use slipway_scanner::analyzer::{Ecosystem, Finding, path_hash};

const PATHS: [&str; 5] = [
    "var/lib/dpkg/status",
    "var/lib/dpkg/status.d/base",
    "var/lib/dpkg/info/libc6:amd64.list",
    "var/lib/dpkg/status.d/base.md5sums",
    "var/lib/dpkg/status.d/libssl3",
];

#[derive(Arbitrary, Debug)]
struct Package {
    name: String,
    version: String,
    state: State,
    arch: Option<String>,
    /// Source name, and its version when it differs from the binary's.
    source: Option<(String, Option<String>)>,
    /// Other fields, some over several lines.
    extra: Vec<(String, Vec<String>)>,
}

#[derive(Arbitrary, Debug, Clone, Copy)]
enum State {
    /// No Status field, as in distroless `status.d`.
    Absent,
    Installed,
    ConfigFiles,
    NotInstalled,
    HalfConfigured,
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else { return };
    if mode % 2 == 1 {
        let path = PATHS[usize::from(mode / 2) % PATHS.len()];
        let report = analyze_file(path, 0o644, rest);
        match report.findings.get(path) {
            Some(Finding::Packages { packages }) => {
                assert_ecosystem(packages, Ecosystem::Deb);
                // Every package names its source (itself when there is no Source field).
                assert!(packages.iter().all(|p| p.source_name.is_some() && p.source_version.is_some()), "{packages:?}");
            }
            Some(Finding::OwnedFiles { files }) => assert!(files.len() <= rest.split(|&b| b == b'\n').count()),
            Some(Finding::OsRelease(_)) => panic!("os-release found in a dpkg file"),
            None => {}
        }
        return;
    }
    let Ok(packages) = Vec::<Package>::arbitrary_take_rest(Unstructured::new(rest)) else { return };
    let packages: Vec<Package> = packages.into_iter().filter_map(clean).collect();
    let mut status = String::new();
    for package in &packages {
        status.push_str(&format!("Package: {}\n", package.name));
        match package.state {
            State::Absent => {}
            State::Installed => status.push_str("Status: install ok installed\n"),
            State::ConfigFiles => status.push_str("Status: deinstall ok config-files\n"),
            State::NotInstalled => status.push_str("Status: purge ok not-installed\n"),
            State::HalfConfigured => status.push_str("Status: install ok half-configured\n"),
        }
        for (field, lines) in &package.extra {
            let mut lines = lines.iter();
            status.push_str(&format!("{field}: {}\n", lines.next().map_or("", String::as_str)));
            for line in lines {
                status.push_str(&format!(" {line}\n"));
            }
        }
        if let Some(arch) = &package.arch {
            status.push_str(&format!("Architecture: {arch}\n"));
        }
        match &package.source {
            Some((name, Some(version))) => status.push_str(&format!("Source: {name} ({version})\n")),
            Some((name, None)) => status.push_str(&format!("Source: {name}\n")),
            None => {}
        }
        status.push_str(&format!("Version: {}\nDescription: a package\n fuzzed\n .\n more\n\n", package.version));
    }
    let report = analyze_file(PATHS[0], 0o644, status.as_bytes());
    let installed: Vec<&Package> = packages.iter().filter(|p| !matches!(p.state, State::ConfigFiles | State::NotInstalled)).collect();
    let found = packages_at(&report, PATHS[0]).unwrap_or_default();
    assert!(report.issues.is_empty(), "{:?}\n{status}", report.issues);
    assert_eq!(found.len(), installed.len(), "{status}");
    for (found, expected) in found.iter().zip(installed) {
        assert_eq!(found.ecosystem, Ecosystem::Deb);
        assert_eq!(found.name, expected.name);
        assert_eq!(found.version, expected.version);
        assert_eq!(found.arch, expected.arch);
        let (source_name, source_version) = match &expected.source {
            Some((name, Some(version))) => (name, version),
            Some((name, None)) => (name, &expected.version),
            None => (&expected.name, &expected.version),
        };
        assert_eq!(found.source_name.as_ref(), Some(source_name));
        assert_eq!(found.source_version.as_ref(), Some(source_version));
    }
    // A file list names paths relative to the root; `/.` is the root itself.
    let list = "/.\n/usr\n/usr/bin/x\n";
    let report = analyze_file(PATHS[2], 0o644, list.as_bytes());
    assert_eq!(report.findings.get(PATHS[2]), Some(&Finding::OwnedFiles { files: vec![path_hash("usr"), path_hash("usr/bin/x")] }));
});

/// Values as dpkg writes them: one word, no spaces or control characters; field names
/// that are not ones the test sets. Packages left with an empty name or version are
/// dropped.
fn clean(mut package: Package) -> Option<Package> {
    let word = |text: &str| -> String { text.chars().filter(|c| c.is_ascii_graphic() && *c != ',' && *c != '(' && *c != ')').collect() };
    package.name = word(&package.name);
    package.version = word(&package.version);
    package.arch = package.arch.map(|a| word(&a)).filter(|a| !a.is_empty());
    package.source = package.source.and_then(|(name, version)| {
        let name = word(&name);
        let version = version.map(|v| word(&v)).filter(|v| !v.is_empty());
        (!name.is_empty()).then_some((name, version))
    });
    package.extra = package
        .extra
        .into_iter()
        .filter_map(|(field, lines)| {
            let field: String = field.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
            let known = ["package", "status", "version", "architecture", "source"];
            if field.is_empty() || known.contains(&field.to_ascii_lowercase().as_str()) {
                return None;
            }
            let lines = lines.iter().map(|l| word(l)).filter(|l| !l.is_empty()).collect();
            Some((field, lines))
        })
        .collect();
    (!package.name.is_empty() && !package.version.is_empty()).then_some(package)
}

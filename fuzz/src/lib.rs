//! What the fuzz targets share: a layer tar around one file, the analyzer with small
//! limits, the invariants every layer report must hold, and the ordering laws.

use std::cmp::Ordering;
use std::fmt::Debug;

use slipway_scanner::ScanError;
use slipway_scanner::analyzer::{Compression, Ecosystem, Finding, FoundPackage, LayerReport, Limits, analyze_layer, merge};

/// Small enough that one input costs milliseconds and the process stays far below
/// `-rss_limit_mb`, large enough for every seed: the bounds themselves are what the
/// hostile-layer tests check, the fuzzer looks for what happens inside them.
pub const LIMITS: Limits =
    Limits { max_layer_bytes: 16 << 20, max_file_bytes: 4 << 20, max_header_bytes: 64 << 10, max_analysis_bytes: 4 << 20 };

/// An uncompressed tar of one regular file: a POSIX ustar header, the content padded
/// to 512 bytes, and the two zero blocks that end an archive. `path` must fit the
/// header's 100-byte name field (the targets use fixed, short paths).
pub fn tar_with(path: &str, mode: u32, content: &[u8]) -> Vec<u8> {
    assert!(path.len() < 100, "path too long for a plain ustar name");
    let mut header = [0u8; 512];
    header[..path.len()].copy_from_slice(path.as_bytes());
    let octal = |field: &mut [u8], value: u64| {
        let text = format!("{value:0width$o}", width = field.len() - 1);
        field[..text.len()].copy_from_slice(text.as_bytes());
    };
    octal(&mut header[100..108], u64::from(mode));
    octal(&mut header[108..116], 0);
    octal(&mut header[116..124], 0);
    octal(&mut header[124..136], content.len() as u64);
    octal(&mut header[136..148], 0);
    header[156] = b'0';
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|&b| u32::from(b)).sum();
    let text = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(text.as_bytes());
    let mut tar = Vec::with_capacity(512 + content.len().next_multiple_of(512) + 1024);
    tar.extend_from_slice(&header);
    tar.extend_from_slice(content);
    tar.resize(tar.len().next_multiple_of(512) + 1024, 0);
    tar
}

/// The analyzer on an uncompressed layer, under [`LIMITS`].
pub fn analyze_tar(tar: &[u8]) -> Result<LayerReport, ScanError> {
    analyze_layer(tar, Compression::None, &LIMITS)
}

/// Analyzes a layer holding only `content` at `path` and checks the report.
pub fn analyze_file(path: &str, mode: u32, content: &[u8]) -> LayerReport {
    let report = analyze_tar(&tar_with(path, mode, content)).expect("a well-formed one-file tar is always readable");
    check_report(&report);
    report
}

/// The packages a detector found at `path`, if any.
pub fn packages_at<'r>(report: &'r LayerReport, path: &str) -> Option<&'r [FoundPackage]> {
    match report.findings.get(path)? {
        Finding::Packages { packages } => Some(packages),
        _ => None,
    }
}

/// What every layer report must hold, whatever the layer was.
pub fn check_report(report: &LayerReport) {
    // Entry hashes are looked up by binary search.
    assert!(report.entries.windows(2).all(|w| w[0] < w[1]), "entries are not sorted and unique");
    // Findings are keyed by normalised path: merging matches them against whiteouts and
    // later layers' entries by that form.
    for path in report.findings.keys() {
        assert!(!path.is_empty() && !path.starts_with('/'), "finding at unnormalised path {path:?}");
        assert!(path.split('/').all(|part| !matches!(part, "" | "." | "..")), "finding at unnormalised path {path:?}");
    }
    // At most 1000 issues are listed, plus the count of the rest and why the walk stopped.
    assert!(report.issues.len() <= 1002, "{} issues listed", report.issues.len());
    // Reports are cached as JSON and read back on the next scan: the round trip must be
    // exact, or a rescan would see another image.
    let json = serde_json::to_vec(report).expect("a report serialises");
    let back: LayerReport = serde_json::from_slice(&json).expect("a serialised report reads back");
    assert_eq!(&back, report, "the report changed in a JSON round trip");

    // Stacked alone, every OS package found is in the inventory (only language packages
    // owned by an OS package are left out), each at the path it was found at.
    let inventory = merge(&[("sha256:fuzz", report)]);
    let os_found = report
        .findings
        .values()
        .map(|finding| match finding {
            Finding::Packages { packages } => packages.iter().filter(|p| p.ecosystem.is_os()).count(),
            _ => 0,
        })
        .sum::<usize>();
    let os_listed = inventory.packages.iter().filter(|p| p.ecosystem.is_os()).count();
    assert_eq!(os_found, os_listed, "OS packages lost or invented by the merge");
    for package in &inventory.packages {
        // `FILE!/INNER` inside archives; the file's own name may hold `!/` too.
        let path = &package.path;
        let found_at = report.findings.contains_key(path) || path.match_indices("!/").any(|(i, _)| report.findings.contains_key(&path[..i]));
        assert!(found_at, "package {:?} at {path:?}, which has no finding", package.name);
        assert_eq!(package.layer, "sha256:fuzz");
        assert!(package.purl.starts_with("pkg:"), "purl {:?}", package.purl);
    }
}

/// The ecosystem is the one the detector at that path speaks for.
pub fn assert_ecosystem(packages: &[FoundPackage], ecosystem: Ecosystem) {
    for package in packages {
        assert_eq!(package.ecosystem, ecosystem, "{package:?}");
    }
}

/// The laws of a total order, on the pairs and the triple of `values` that `compare`
/// accepts: reflexive, antisymmetric (`cmp(a, b) == cmp(b, a).reverse()`) and, if
/// `transitive`, transitive (for `<=`, and for `==` being an equivalence). A value
/// refused on one side of a comparison must be refused on the other side too.
pub fn check_order<T: Debug + ?Sized, E: Debug>(
    values: [&T; 3],
    transitive: bool,
    compare: impl Fn(&T, &T) -> Result<Ordering, E>,
) {
    let mut table = [[None; 3]; 3];
    for i in 0..3 {
        for j in 0..3 {
            table[i][j] = compare(values[i], values[j]).ok();
        }
    }
    for i in 0..3 {
        if let Some(ordering) = table[i][i] {
            assert_eq!(ordering, Ordering::Equal, "{:?} is not equal to itself", values[i]);
        }
        for j in 0..3 {
            assert_eq!(
                table[i][j].is_some(),
                table[j][i].is_some(),
                "{:?} and {:?} compare one way but not the other",
                values[i],
                values[j]
            );
            if let (Some(ab), Some(ba)) = (table[i][j], table[j][i]) {
                assert_eq!(ab, ba.reverse(), "not antisymmetric: {:?} vs {:?} is {ab:?}, the reverse is {ba:?}", values[i], values[j]);
            }
        }
    }
    if !transitive {
        return;
    }
    for i in 0..3 {
        for j in 0..3 {
            for k in 0..3 {
                let (Some(ij), Some(jk), Some(ik)) = (table[i][j], table[j][k], table[i][k]) else { continue };
                if ij.is_le() && jk.is_le() {
                    assert!(
                        ik.is_le(),
                        "not transitive: {:?} <= {:?} <= {:?} but the first is greater than the last",
                        values[i],
                        values[j],
                        values[k]
                    );
                }
                if ij.is_eq() && jk.is_eq() {
                    assert!(ik.is_eq(), "equality not transitive: {:?} == {:?} == {:?} but not the ends", values[i], values[j], values[k]);
                }
            }
        }
    }
}

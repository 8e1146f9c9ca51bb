//! CVSS scores, bands, policy classes and vendor ratings; and scores checked against
//! the Python `cvss` library (an implementation of FIRST's calculators) as oracle.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use slipway_scanner::ScanError;
use slipway_scanner::cvss::{Band, CvssVersion, PolicyClass, Score, Severity, SeveritySource, VendorScale, base_score};

use crate::oracle::Rng;

fn score(vector: &str) -> String {
    base_score(vector).unwrap().score.to_string()
}

#[test]
fn scores_known_vectors() {
    assert_eq!(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"), "9.8");
    assert_eq!(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H"), "10.0");
    assert_eq!(score("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N"), "7.5");
    assert_eq!(score("CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:L/A:N"), "3.7");
    assert_eq!(score("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N"), "0.0");
    assert_eq!(score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N"), "8.7");
    assert_eq!(score("CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N"), "6.3");
    assert_eq!(score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N"), "0.0");

    let v4 = base_score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H").unwrap();
    assert_eq!(v4.version, CvssVersion::V4_0);
    assert_eq!(v4.score.tenths(), 100);
}

#[test]
fn v3_temporal_and_environmental_metrics_leave_the_base_score() {
    let full = "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:P/RL:O/RC:C/CR:L/MAV:L/MS:C";
    assert_eq!(score(full), "9.8");
    // In any order, as the specification allows.
    assert_eq!(score("CVSS:3.1/A:H/I:H/C:H/S:U/UI:N/PR:N/AC:L/AV:N"), "9.8");
}

#[test]
fn v4_threat_and_environmental_metrics_count() {
    let vector = "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N";
    assert_eq!(score(vector), "9.3");
    assert_eq!(score(&format!("{vector}/E:U")), "8.1");
    assert_eq!(score(&format!("{vector}/MSI:S/U:Red")), "10.0");
}

#[test]
fn refuses_vectors_the_specification_refuses() {
    for vector in [
        // A base metric missing: the crate alone would score it as if zero.
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
        // A metric twice: the crate alone would take the last.
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/A:L",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/SA:H",
        // Values are case-sensitive.
        "CVSS:3.1/AV:n/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:4.0/AV:n/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/U:red",
        "cvss:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        // Metrics of another version, unknown values, malformed fields.
        "CVSS:3.1/AV:N/AC:L/AT:N/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/MSC:S",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E",
        "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H:H",
        // Unsupported versions.
        "AV:N/AC:L/Au:N/C:P/I:P/A:P",
        "CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P",
        "CVSS:3.2/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
        "",
    ] {
        let error = base_score(vector).expect_err(vector);
        assert!(matches!(error, ScanError::InvalidCvss { .. }), "{vector}: {error}");
    }
}

#[test]
fn bands_and_policy_classes() {
    let cases = [
        (0, Band::None, PolicyClass::Minor),
        (1, Band::Low, PolicyClass::Minor),
        (39, Band::Low, PolicyClass::Minor),
        (40, Band::Medium, PolicyClass::Major),
        (69, Band::Medium, PolicyClass::Major),
        (70, Band::High, PolicyClass::Critical),
        (89, Band::High, PolicyClass::Critical),
        (90, Band::Critical, PolicyClass::Critical),
        (100, Band::Critical, PolicyClass::Critical),
    ];
    for (tenths, band, class) in cases {
        let score = Score::from_tenths(tenths).unwrap();
        assert_eq!((score.band(), score.policy_class()), (band, class), "{score}");
        assert_eq!(band.policy_class(), class, "{band}");
    }
    assert_eq!(Score::from_tenths(101), None);
    assert_eq!(Score::from_tenths(45).unwrap().to_string(), "4.5");
    assert_eq!(Score::from_tenths(45).unwrap().value(), 4.5);

    assert_eq!(PolicyClass::Critical.fix_within(), Some(Duration::from_secs(72 * 3600)));
    assert_eq!(PolicyClass::Major.fix_within(), Some(Duration::from_secs(7 * 24 * 3600)));
    assert_eq!(PolicyClass::Minor.fix_within(), None);
}

#[test]
fn vendor_ratings() {
    use VendorScale::*;
    let cases = [
        (DebianUrgency, "unimportant", Some(Band::Low)),
        (DebianUrgency, "low", Some(Band::Low)),
        (DebianUrgency, "medium**", Some(Band::Medium)),
        (DebianUrgency, "high", Some(Band::High)),
        (DebianUrgency, "not yet assigned", None),
        (DebianUrgency, "end-of-life", None),
        (UbuntuPriority, "negligible", Some(Band::Low)),
        (UbuntuPriority, "low", Some(Band::Low)),
        (UbuntuPriority, "medium", Some(Band::Medium)),
        (UbuntuPriority, "high", Some(Band::High)),
        (UbuntuPriority, "critical", Some(Band::Critical)),
        (UbuntuPriority, "untriaged", None),
        (GhsaSeverity, "LOW", Some(Band::Low)),
        (GhsaSeverity, "MODERATE", Some(Band::Medium)),
        (GhsaSeverity, "HIGH", Some(Band::High)),
        (GhsaSeverity, "CRITICAL", Some(Band::Critical)),
        (GhsaSeverity, "UNKNOWN", None),
    ];
    for (scale, rating, band) in cases {
        assert_eq!(scale.band(rating), band, "{scale} {rating}");
    }

    let severity = Severity::from_vendor(GhsaSeverity, "MODERATE").unwrap();
    assert_eq!(severity.score, None);
    assert_eq!(severity.rating.as_deref(), Some("MODERATE"));
    assert_eq!((severity.band, severity.class), (Band::Medium, PolicyClass::Major));
    assert_eq!(severity.source.to_string(), "GitHub advisory severity");
}

#[test]
fn severity_of_a_vector_records_its_source() {
    let severity = Severity::from_vector("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H").unwrap();
    assert_eq!(severity.score.unwrap().to_string(), "7.2");
    assert_eq!((severity.band, severity.class), (Band::High, PolicyClass::Critical));
    assert_eq!(severity.source, SeveritySource::Cvss(CvssVersion::V3_1));
    assert_eq!(severity.source.to_string(), "CVSS v3.1 vector");
    assert_eq!(severity.vector.as_deref(), Some("CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H"));
}

#[test]
fn precedence_is_vendor_then_v4_then_v3() {
    let order = [
        SeveritySource::Vendor(VendorScale::DebianUrgency),
        SeveritySource::Cvss(CvssVersion::V4_0),
        SeveritySource::Cvss(CvssVersion::V3_1),
        SeveritySource::Cvss(CvssVersion::V3_0),
    ];
    assert!(order.windows(2).all(|w| w[0].precedence() < w[1].precedence()));
}

// ---------------------------------------------------------------- the oracle

/// CVSS v3.x metrics and values, from the specification.
const V3: &[(&str, &[&str])] = &[
    ("AV", &["N", "A", "L", "P"]),
    ("AC", &["L", "H"]),
    ("PR", &["N", "L", "H"]),
    ("UI", &["N", "R"]),
    ("S", &["U", "C"]),
    ("C", &["H", "L", "N"]),
    ("I", &["H", "L", "N"]),
    ("A", &["H", "L", "N"]),
    ("E", &["X", "H", "F", "P", "U"]),
    ("RL", &["X", "U", "W", "T", "O"]),
    ("RC", &["X", "C", "R", "U"]),
    ("CR", &["X", "H", "M", "L"]),
    ("IR", &["X", "H", "M", "L"]),
    ("AR", &["X", "H", "M", "L"]),
    ("MAV", &["X", "N", "A", "L", "P"]),
    ("MAC", &["X", "L", "H"]),
    ("MPR", &["X", "N", "L", "H"]),
    ("MUI", &["X", "N", "R"]),
    ("MS", &["X", "U", "C"]),
    ("MC", &["X", "H", "L", "N"]),
    ("MI", &["X", "H", "L", "N"]),
    ("MA", &["X", "H", "L", "N"]),
];
const V3_BASE: usize = 8;

/// CVSS v4.0 metrics and values, from the specification.
const V4: &[(&str, &[&str])] = &[
    ("AV", &["N", "A", "L", "P"]),
    ("AC", &["L", "H"]),
    ("AT", &["N", "P"]),
    ("PR", &["N", "L", "H"]),
    ("UI", &["N", "P", "A"]),
    ("VC", &["H", "L", "N"]),
    ("VI", &["H", "L", "N"]),
    ("VA", &["H", "L", "N"]),
    ("SC", &["H", "L", "N"]),
    ("SI", &["H", "L", "N"]),
    ("SA", &["H", "L", "N"]),
    ("E", &["X", "A", "P", "U"]),
    ("CR", &["X", "H", "M", "L"]),
    ("IR", &["X", "H", "M", "L"]),
    ("AR", &["X", "H", "M", "L"]),
    ("MAV", &["X", "N", "A", "L", "P"]),
    ("MAC", &["X", "L", "H"]),
    ("MAT", &["X", "N", "P"]),
    ("MPR", &["X", "N", "L", "H"]),
    ("MUI", &["X", "N", "P", "A"]),
    ("MVC", &["X", "H", "L", "N"]),
    ("MVI", &["X", "H", "L", "N"]),
    ("MVA", &["X", "H", "L", "N"]),
    ("MSC", &["X", "H", "L", "N"]),
    ("MSI", &["X", "S", "H", "L", "N"]),
    ("MSA", &["X", "S", "H", "L", "N"]),
    ("S", &["X", "N", "P"]),
    ("AU", &["X", "N", "Y"]),
    ("R", &["X", "A", "U", "I"]),
    ("V", &["X", "D", "C"]),
    ("RE", &["X", "L", "M", "H"]),
    ("U", &["X", "Clear", "Green", "Amber", "Red"]),
];
const V4_BASE: usize = 11;

/// Random vectors per version; the brief's floor is 1,000.
const RANDOM_PER_VERSION: usize = 1500;

/// A random valid vector: every base metric, each other metric one time in three, and
/// one vector in five in shuffled order (the specification allows any order).
fn random_vector(rng: &mut Rng, prefix: &str, table: &[(&str, &[&str])], base: usize) -> String {
    let mut fields = Vec::new();
    for (i, (name, values)) in table.iter().enumerate() {
        if i < base || rng.below(3) == 0 {
            fields.push(format!("{name}:{}", values[rng.below(values.len())]));
        }
    }
    if rng.below(5) == 0 {
        for i in (1..fields.len()).rev() {
            fields.swap(i, rng.below(i + 1));
        }
    }
    format!("{prefix}/{}", fields.join("/"))
}

/// Every v3 base vector (2,592 per version).
fn all_v3_base_vectors(prefix: &str) -> Vec<String> {
    let mut vectors = vec![prefix.to_owned()];
    for (name, values) in &V3[..V3_BASE] {
        vectors = vectors.iter().flat_map(|v| values.iter().map(move |value| format!("{v}/{name}:{value}"))).collect();
    }
    vectors
}

/// Vectors both implementations must refuse.
const MALFORMED: &[&str] = &[
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/A:L",
    "CVSS:3.1/AV:n/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:Q",
    "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/MS:S",
    "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/FOO:X",
    "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N",
    "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/SA:H",
    "CVSS:4.0/AV:n/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N",
    "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/U:red",
    "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/MSC:S",
    "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N//E:A",
    "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A:B",
];

/// Scores every line with the Python library in one process: "score band" or "ERR".
const ORACLE: &str = r#"
import sys
from cvss import CVSS3, CVSS4
for line in sys.stdin:
    vector = line.rstrip("\n")
    try:
        if vector.startswith("CVSS:4.0/"):
            c = CVSS4(vector)
            print("%.1f %s" % (c.base_score, c.severity))
        else:
            c = CVSS3(vector)
            print("%.1f %s" % (c.scores()[0], c.severities()[0]))
    except Exception:
        print("ERR")
"#;

fn python_scores(vectors: &[String]) -> Vec<String> {
    let python = crate::oracle::python();
    let mut child = Command::new(&python)
        .args(["-c", ORACLE])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e} (see scripts/install-test-deps)", python.display()));
    let input = vectors.join("\n") + "\n";
    let mut stdin = child.stdin.take().unwrap();
    // Written from another thread: the oracle answers while it reads, and a full
    // stdout pipe would otherwise block both sides.
    let writer = std::thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().unwrap();
    let written = writer.join().unwrap();
    assert!(
        output.status.success(),
        "the CVSS oracle failed (is cvss==3.6 installed? see scripts/install-test-deps):\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    written.unwrap();
    let lines: Vec<String> = String::from_utf8(output.stdout).unwrap().lines().map(str::to_owned).collect();
    assert_eq!(lines.len(), vectors.len(), "the oracle answered {} of {} vectors", lines.len(), vectors.len());
    lines
}

fn our_score(vector: &str) -> String {
    match base_score(vector) {
        Ok(base) => format!("{} {}", base.score, base.score.band()),
        Err(_) => "ERR".to_owned(),
    }
}

#[test]
fn scores_match_the_python_cvss_library() {
    let mut rng = Rng(0x5eed_c055);
    let mut vectors: Vec<String> = Vec::new();
    for (prefix, table, base) in [("CVSS:3.0", V3, V3_BASE), ("CVSS:3.1", V3, V3_BASE), ("CVSS:4.0", V4, V4_BASE)] {
        vectors.extend((0..RANDOM_PER_VERSION).map(|_| random_vector(&mut rng, prefix, table, base)));
    }
    vectors.extend(all_v3_base_vectors("CVSS:3.0"));
    vectors.extend(all_v3_base_vectors("CVSS:3.1"));
    vectors.extend(MALFORMED.iter().map(|v| (*v).to_owned()));

    let expected = python_scores(&vectors);
    let mut mismatches = Vec::new();
    let mut scored = [0usize; 3];
    for (vector, expected) in vectors.iter().zip(&expected) {
        let ours = our_score(vector);
        if ours != *expected {
            mismatches.push(format!("{vector}: ours {ours}, python {expected}"));
        } else if ours != "ERR" {
            let version = ["CVSS:3.0/", "CVSS:3.1/", "CVSS:4.0/"].iter().position(|p| vector.starts_with(p)).unwrap();
            scored[version] += 1;
        }
    }
    for mismatch in mismatches.iter().take(50) {
        eprintln!("{mismatch}");
    }
    assert!(mismatches.is_empty(), "{} of {} vectors score differently", mismatches.len(), vectors.len());
    for (version, count) in ["3.0", "3.1", "4.0"].iter().zip(scored) {
        assert!(count >= 1000, "only {count} valid v{version} vectors compared");
        eprintln!("CVSS v{version}: {count} vectors scored identically");
    }
    for vector in MALFORMED {
        assert_eq!(our_score(vector), "ERR", "{vector}");
    }
}

//! CVSS base scores, severity bands, the store's policy classes, and the vendors' own
//! severity ratings.
//!
//! Scores come from the RustSec `cvss` crate; the vector is checked here first, because
//! the crate is lenient where the specification is not: for v3 it scores vectors that
//! lack base metrics (counting them as zero) or repeat one (the last wins) and rejects
//! the temporal and environmental metrics that a full vector may carry; for v4 it
//! accepts lower-case values. Vectors are therefore validated against the
//! specification's metric table (case-sensitive, no duplicates, every base metric
//! present), and a v3 vector is scored from its base metrics alone.
//!
//! The scoring itself was checked against the Python `cvss` library (Red Hat's, which
//! implements FIRST's reference calculators): all 2,592 base vectors of each of v3.0
//! and v3.1, all 104,976 v4.0 base vectors and 100,000 random v4.0 vectors with threat,
//! environmental and supplemental metrics score identically; `tests/it/cvss.rs` keeps a
//! seeded sample of that comparison in the test suite.
//!
//! For v4.0 the score is that of the vector as written: a vector with threat or
//! environmental metrics yields CVSS-BT, -BE or -BTE in the specification's
//! nomenclature, as FIRST's calculator and the Python library compute it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::ScanError;

/// A CVSS version whose vectors this module scores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CvssVersion {
    V3_0,
    V3_1,
    V4_0,
}

impl CvssVersion {
    fn prefix(self) -> &'static str {
        match self {
            Self::V3_0 => "CVSS:3.0",
            Self::V3_1 => "CVSS:3.1",
            Self::V4_0 => "CVSS:4.0",
        }
    }
}

impl fmt::Display for CvssVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::V3_0 => "3.0",
            Self::V3_1 => "3.1",
            Self::V4_0 => "4.0",
        })
    }
}

/// A score from 0.0 to 10.0 with one decimal, held in tenths so that comparisons
/// with the band and class boundaries are exact.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Score(u8);

impl Score {
    /// The score of `tenths` tenths, if at most 10.0.
    pub const fn from_tenths(tenths: u8) -> Option<Score> {
        if tenths <= 100 { Some(Score(tenths)) } else { None }
    }

    pub const fn tenths(self) -> u8 {
        self.0
    }

    pub fn value(self) -> f64 {
        f64::from(self.0) / 10.0
    }

    /// The CVSS qualitative severity rating of this score.
    pub fn band(self) -> Band {
        match self.0 {
            0 => Band::None,
            1..=39 => Band::Low,
            40..=69 => Band::Medium,
            70..=89 => Band::High,
            _ => Band::Critical,
        }
    }

    /// The store's policy class: Critical from 7.0, Major from 4.0, Minor below.
    pub fn policy_class(self) -> PolicyClass {
        match self.0 {
            70.. => PolicyClass::Critical,
            40..=69 => PolicyClass::Major,
            _ => PolicyClass::Minor,
        }
    }

    fn from_value(value: f64) -> Option<Score> {
        let tenths = (value * 10.0).round();
        (0.0..=100.0).contains(&tenths).then_some(Score(tenths as u8))
    }
}

/// Stored scores are read back through the same bound as computed ones.
impl TryFrom<u8> for Score {
    type Error = String;

    fn try_from(tenths: u8) -> Result<Score, String> {
        Score::from_tenths(tenths).ok_or_else(|| format!("score of {tenths} tenths is over 10.0"))
    }
}

impl From<Score> for u8 {
    fn from(score: Score) -> u8 {
        score.0
    }
}

impl fmt::Display for Score {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.0 / 10, self.0 % 10)
    }
}

/// The CVSS qualitative severity rating scale (the same in v3 and v4).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Band {
    None,
    Low,
    Medium,
    High,
    Critical,
}

impl Band {
    /// The policy class of a rating without a score: the bands' boundaries (4.0, 7.0)
    /// are the classes' boundaries, so the class follows from the band alone.
    pub fn policy_class(self) -> PolicyClass {
        match self {
            Band::Critical | Band::High => PolicyClass::Critical,
            Band::Medium => PolicyClass::Major,
            Band::Low | Band::None => PolicyClass::Minor,
        }
    }
}

impl fmt::Display for Band {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Band::None => "None",
            Band::Low => "Low",
            Band::Medium => "Medium",
            Band::High => "High",
            Band::Critical => "Critical",
        })
    }
}

/// The store's severity classes, each with the time a publisher has to ship a fix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum PolicyClass {
    /// CVSS 7.0 to 10.0: fix within 72 hours.
    Critical,
    /// CVSS 4.0 to 6.9: fix within 7 days.
    Major,
    /// Below 4.0: no deadline.
    Minor,
}

impl PolicyClass {
    /// How long a publisher has to ship a fixed image, if the class sets a deadline.
    pub fn fix_within(self) -> Option<Duration> {
        const HOUR: u64 = 60 * 60;
        match self {
            PolicyClass::Critical => Some(Duration::from_secs(72 * HOUR)),
            PolicyClass::Major => Some(Duration::from_secs(7 * 24 * HOUR)),
            PolicyClass::Minor => None,
        }
    }
}

impl fmt::Display for PolicyClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PolicyClass::Critical => "Critical",
            PolicyClass::Major => "Major",
            PolicyClass::Minor => "Minor",
        })
    }
}

/// The base score of a vector, with the version the vector declared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BaseScore {
    pub version: CvssVersion,
    pub score: Score,
}

/// One metric of a version's table: its name, allowed values, and whether a vector
/// must carry it.
struct Metric {
    name: &'static str,
    values: &'static [&'static str],
    base: bool,
}

const fn base(name: &'static str, values: &'static [&'static str]) -> Metric {
    Metric { name, values, base: true }
}

const fn optional(name: &'static str, values: &'static [&'static str]) -> Metric {
    Metric { name, values, base: false }
}

/// CVSS v3.0 and v3.1 metrics, in the specification's order.
const V3_METRICS: &[Metric] = &[
    base("AV", &["N", "A", "L", "P"]),
    base("AC", &["L", "H"]),
    base("PR", &["N", "L", "H"]),
    base("UI", &["N", "R"]),
    base("S", &["U", "C"]),
    base("C", &["H", "L", "N"]),
    base("I", &["H", "L", "N"]),
    base("A", &["H", "L", "N"]),
    optional("E", &["X", "H", "F", "P", "U"]),
    optional("RL", &["X", "U", "W", "T", "O"]),
    optional("RC", &["X", "C", "R", "U"]),
    optional("CR", &["X", "H", "M", "L"]),
    optional("IR", &["X", "H", "M", "L"]),
    optional("AR", &["X", "H", "M", "L"]),
    optional("MAV", &["X", "N", "A", "L", "P"]),
    optional("MAC", &["X", "L", "H"]),
    optional("MPR", &["X", "N", "L", "H"]),
    optional("MUI", &["X", "N", "R"]),
    optional("MS", &["X", "U", "C"]),
    optional("MC", &["X", "H", "L", "N"]),
    optional("MI", &["X", "H", "L", "N"]),
    optional("MA", &["X", "H", "L", "N"]),
];

/// CVSS v4.0 metrics, in the specification's order.
const V4_METRICS: &[Metric] = &[
    base("AV", &["N", "A", "L", "P"]),
    base("AC", &["L", "H"]),
    base("AT", &["N", "P"]),
    base("PR", &["N", "L", "H"]),
    base("UI", &["N", "P", "A"]),
    base("VC", &["H", "L", "N"]),
    base("VI", &["H", "L", "N"]),
    base("VA", &["H", "L", "N"]),
    base("SC", &["H", "L", "N"]),
    base("SI", &["H", "L", "N"]),
    base("SA", &["H", "L", "N"]),
    optional("E", &["X", "A", "P", "U"]),
    optional("CR", &["X", "H", "M", "L"]),
    optional("IR", &["X", "H", "M", "L"]),
    optional("AR", &["X", "H", "M", "L"]),
    optional("MAV", &["X", "N", "A", "L", "P"]),
    optional("MAC", &["X", "L", "H"]),
    optional("MAT", &["X", "N", "P"]),
    optional("MPR", &["X", "N", "L", "H"]),
    optional("MUI", &["X", "N", "P", "A"]),
    optional("MVC", &["X", "H", "L", "N"]),
    optional("MVI", &["X", "H", "L", "N"]),
    optional("MVA", &["X", "H", "L", "N"]),
    optional("MSC", &["X", "H", "L", "N"]),
    optional("MSI", &["X", "S", "H", "L", "N"]),
    optional("MSA", &["X", "S", "H", "L", "N"]),
    optional("S", &["X", "N", "P"]),
    optional("AU", &["X", "N", "Y"]),
    optional("R", &["X", "A", "U", "I"]),
    optional("V", &["X", "D", "C"]),
    optional("RE", &["X", "L", "M", "H"]),
    optional("U", &["X", "Clear", "Green", "Amber", "Red"]),
];

/// Parses a `CVSS:3.0`, `CVSS:3.1` or `CVSS:4.0` vector and computes its base score.
pub fn base_score(vector: &str) -> Result<BaseScore, ScanError> {
    let invalid = |reason: String| ScanError::InvalidCvss { vector: vector.to_owned(), reason };
    let (prefix, metrics) = vector.trim().split_once('/').ok_or_else(|| invalid("no metrics".into()))?;
    let (version, table) = match prefix {
        "CVSS:3.0" => (CvssVersion::V3_0, V3_METRICS),
        "CVSS:3.1" => (CvssVersion::V3_1, V3_METRICS),
        "CVSS:4.0" => (CvssVersion::V4_0, V4_METRICS),
        other => return Err(invalid(format!("unsupported prefix {other:?}"))),
    };

    // Values found, indexed like the table.
    let mut found: Vec<Option<&str>> = vec![None; table.len()];
    for field in metrics.split('/') {
        let (name, value) = field.split_once(':').ok_or_else(|| invalid(format!("malformed field {field:?}")))?;
        let index = table.iter().position(|m| m.name == name).ok_or_else(|| invalid(format!("unknown metric {name:?}")))?;
        if !table[index].values.contains(&value) {
            return Err(invalid(format!("invalid value {value:?} for {name}")));
        }
        if found[index].replace(value).is_some() {
            return Err(invalid(format!("metric {name} given twice")));
        }
    }
    let missing: Vec<&str> = table.iter().zip(&found).filter(|(m, v)| m.base && v.is_none()).map(|(m, _)| m.name).collect();
    if !missing.is_empty() {
        return Err(invalid(format!("missing base metrics {}", missing.join(", "))));
    }

    let value = match version {
        CvssVersion::V3_0 | CvssVersion::V3_1 => {
            // Temporal and environmental metrics do not enter the base score, and the
            // crate refuses them: score the base metrics alone.
            let base: String =
                table.iter().zip(&found).filter(|(m, _)| m.base).filter_map(|(m, v)| v.map(|v| format!("/{}:{v}", m.name))).collect();
            ::cvss::v3::Base::from_str(&format!("{}{base}", version.prefix())).map_err(|e| invalid(e.to_string()))?.score().value()
        }
        CvssVersion::V4_0 => ::cvss::v4::Vector::from_str(vector.trim()).map_err(|e| invalid(e.to_string()))?.score().value(),
    };
    let score = Score::from_value(value).ok_or_else(|| invalid(format!("score {value} out of range")))?;
    Ok(BaseScore { version, score })
}

/// A vendor's own severity scale, as the OSV feeds carry it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum VendorScale {
    /// Debian security tracker urgency (`affected[].ecosystem_specific.urgency`).
    DebianUrgency,
    /// Ubuntu priority (`severity[]` of type `Ubuntu`, or
    /// `affected[].ecosystem_specific.ubuntu_priority` in older records).
    UbuntuPriority,
    /// GitHub advisory database severity (`database_specific.severity`).
    GhsaSeverity,
}

impl VendorScale {
    /// The band of a rating on this scale; `None` for ratings that are not a
    /// severity ("not yet assigned", "untriaged", "end-of-life", unknown words).
    ///
    /// Debian's "unimportant" and Ubuntu's "negligible" are rated Low rather than
    /// None: both vendors still list the package as affected, and CVSS's None means
    /// "no impact".
    pub fn band(self, rating: &str) -> Option<Band> {
        // The Debian tracker marks provisional urgencies with trailing asterisks.
        let rating = rating.trim().trim_end_matches('*').to_ascii_lowercase();
        match (self, rating.as_str()) {
            (Self::DebianUrgency, "unimportant" | "low") => Some(Band::Low),
            (Self::DebianUrgency, "medium") => Some(Band::Medium),
            (Self::DebianUrgency, "high") => Some(Band::High),
            (Self::UbuntuPriority, "negligible" | "low") => Some(Band::Low),
            (Self::UbuntuPriority, "medium") => Some(Band::Medium),
            (Self::UbuntuPriority, "high") => Some(Band::High),
            (Self::UbuntuPriority, "critical") => Some(Band::Critical),
            (Self::GhsaSeverity, "low") => Some(Band::Low),
            (Self::GhsaSeverity, "moderate") => Some(Band::Medium),
            (Self::GhsaSeverity, "high") => Some(Band::High),
            (Self::GhsaSeverity, "critical") => Some(Band::Critical),
            _ => None,
        }
    }
}

impl fmt::Display for VendorScale {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::DebianUrgency => "Debian urgency",
            Self::UbuntuPriority => "Ubuntu priority",
            Self::GhsaSeverity => "GitHub advisory severity",
        })
    }
}

/// Where a severity came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SeveritySource {
    Vendor(VendorScale),
    Cvss(CvssVersion),
}

impl SeveritySource {
    /// Rank in the precedence order, lowest first: a vendor's own rating, then a
    /// CVSS v4.0 vector, then v3.1, then v3.0. The vendor knows how its build and
    /// configuration expose the flaw, which a CVSS vector written for the upstream
    /// project does not; among vectors, the newer version is the better model.
    pub fn precedence(self) -> u8 {
        match self {
            Self::Vendor(_) => 0,
            Self::Cvss(CvssVersion::V4_0) => 1,
            Self::Cvss(CvssVersion::V3_1) => 2,
            Self::Cvss(CvssVersion::V3_0) => 3,
        }
    }
}

impl fmt::Display for SeveritySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Vendor(scale) => scale.fmt(f),
            Self::Cvss(version) => write!(f, "CVSS v{version} vector"),
        }
    }
}

/// A severity as shown to users: the CVSS band and the store's policy class, with the
/// score and vector when it came from CVSS, and where it came from.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Severity {
    pub score: Option<Score>,
    pub vector: Option<String>,
    /// The vendor's own word ("unimportant", "MODERATE"), for vendor ratings.
    pub rating: Option<String>,
    pub band: Band,
    pub class: PolicyClass,
    pub source: SeveritySource,
}

impl Severity {
    /// The severity of a CVSS vector.
    pub fn from_vector(vector: &str) -> Result<Severity, ScanError> {
        let BaseScore { version, score } = base_score(vector)?;
        Ok(Severity {
            score: Some(score),
            vector: Some(vector.trim().to_owned()),
            rating: None,
            band: score.band(),
            class: score.policy_class(),
            source: SeveritySource::Cvss(version),
        })
    }

    /// The severity of a vendor's rating, if the rating is a severity on its scale.
    pub fn from_vendor(scale: VendorScale, rating: &str) -> Option<Severity> {
        let band = scale.band(rating)?;
        Some(Severity {
            score: None,
            vector: None,
            rating: Some(rating.to_owned()),
            band,
            class: band.policy_class(),
            source: SeveritySource::Vendor(scale),
        })
    }
}

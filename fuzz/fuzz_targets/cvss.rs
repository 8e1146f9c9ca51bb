//! CVSS vectors as advisories carry them (cvss::base_score, Severity::from_vector):
//! v3.0, v3.1 and v4.0. An accepted vector has a score from 0.0 to 10.0 and the version
//! its prefix names; it scores 0.0 exactly when it has no impact (v3: C, I and A all
//! None; v4.0 base vectors: every impact metric None); and in v3, raising one base
//! metric's severity (scope fixed) never lowers the score.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_scanner::cvss::{CvssVersion, Severity, base_score};

/// v3 base metrics whose values are listed from least to most severe.
const V3_ORDERED: [(&str, [&str; 4]); 7] = [
    ("AV", ["P", "L", "A", "N"]),
    ("AC", ["H", "L", "", ""]),
    ("PR", ["H", "L", "N", ""]),
    ("UI", ["R", "N", "", ""]),
    ("C", ["N", "L", "H", ""]),
    ("I", ["N", "L", "H", ""]),
    ("A", ["N", "L", "H", ""]),
];
const V4_IMPACT: [&str; 6] = ["VC", "VI", "VA", "SC", "SI", "SA"];
const V4_BASE: [&str; 11] = ["AV", "AC", "AT", "PR", "UI", "VC", "VI", "VA", "SC", "SI", "SA"];

fuzz_target!(|data: &[u8]| {
    let Ok(vector) = std::str::from_utf8(data) else { return };
    let Ok(score) = base_score(vector) else { return };
    assert!(score.score.tenths() <= 100);
    let prefix = vector.trim().split('/').next().unwrap_or_default();
    let expected = match prefix {
        "CVSS:3.0" => CvssVersion::V3_0,
        "CVSS:3.1" => CvssVersion::V3_1,
        _ => CvssVersion::V4_0,
    };
    assert_eq!(score.version, expected);
    let severity = Severity::from_vector(vector).expect("a scored vector is a severity");
    assert_eq!(severity.band, score.score.band());
    assert_eq!(severity.class, score.score.policy_class());

    let metrics: Vec<(&str, &str)> = vector.trim().split('/').skip(1).filter_map(|m| m.split_once(':')).collect();
    let get = |name: &str| metrics.iter().find(|(n, _)| *n == name).map(|(_, v)| *v);
    match expected {
        CvssVersion::V4_0 => {
            if metrics.iter().all(|(name, _)| V4_BASE.contains(name)) {
                let no_impact = V4_IMPACT.iter().all(|m| get(m) == Some("N"));
                assert_eq!(score.score.tenths() == 0, no_impact, "{vector}: {:?}", score.score);
            }
        }
        _ => {
            let no_impact = ["C", "I", "A"].iter().all(|m| get(m) == Some("N"));
            assert_eq!(score.score.tenths() == 0, no_impact, "{vector}: {:?}", score.score);
            if get("S") == Some("U") {
                for (name, ordered) in V3_ORDERED {
                    let ordered: Vec<&str> = ordered.into_iter().filter(|v| !v.is_empty()).collect();
                    let current = get(name).expect("a scored vector has every base metric");
                    let rank = ordered.iter().position(|v| *v == current).expect("a valid value");
                    for worse in &ordered[rank + 1..] {
                        let raised: Vec<String> = metrics
                            .iter()
                            .map(|(n, v)| if *n == name { format!("{n}:{worse}") } else { format!("{n}:{v}") })
                            .collect();
                        let raised = format!("{prefix}/{}", raised.join("/"));
                        let higher = base_score(&raised).expect("the raised vector is valid");
                        assert!(higher.score >= score.score, "{raised} scores {:?}, below {vector}'s {:?}", higher.score, score.score);
                    }
                }
            }
        }
    }
});

//! Which tags a tier offers: its tag patterns, where `*` stands for any run of
//! characters (`1.*`, `*-alpine`); no patterns offer every tag. Customers pull the offered
//! tags a moderator released (see `Catalog::release_versions`).

/// Whether a tier with `patterns` offers `tag`.
pub(crate) fn offers(patterns: &[String], tag: &str) -> bool {
    // The policy's matcher of token rule patterns: iterative, at most pattern x tag steps.
    patterns.is_empty() || patterns.iter().any(|p| slipway_policy::glob_match(p.as_bytes(), tag.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn patterns(p: &[&str]) -> Vec<String> {
        p.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn patterns_match_whole_tags() {
        let cases = [
            (&["1.0"][..], "1.0", true),
            (&["1.0"], "1.0.1", false),
            (&["1.*"], "1.0.1", true),
            (&["1.*"], "11.0", false),
            (&["*-alpine"], "3.19-alpine", true),
            (&["*-alpine"], "3.19-alpine-slim", false),
            (&["*"], "anything", true),
            (&["1.*.*"], "1.2", false),
            (&["1.*.*"], "1.2.3", true),
            (&["a*b*c"], "aXbYbZc", true),
            (&["a*b*c"], "aXbYbZ", false),
            (&[], "whatever", true),
            (&["2.0", "latest"], "latest", true),
        ];
        for (p, tag, expected) in cases {
            assert_eq!(offers(&patterns(p), tag), expected, "{p:?} {tag}");
        }
    }

    /// A hostile pattern of many stars against the longest tag (128 characters) answers
    /// at once: the matcher is iterative.
    #[test]
    fn hostile_patterns_stay_cheap() {
        let pattern = format!("{}b", "*a".repeat(60));
        let tag = "a".repeat(128);
        assert!(!offers(&[pattern], &tag));
    }
}

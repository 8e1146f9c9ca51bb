//! Python versions through `pep440_rs`, which parses and orders as `packaging` does,
//! except for numbers beyond 64 bits: packaging takes any size, `pep440_rs` refuses them
//! (and reads such a number in a local label as text).

use std::cmp::Ordering;
use std::str::FromStr;

use pep440_rs::Version;

use super::Scheme;
use crate::ScanError;

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, ScanError> {
    Ok(parse(a)?.cmp(&parse(b)?))
}

fn parse(version: &str) -> Result<Version, ScanError> {
    // packaging allows any Unicode whitespace around the version (Python's `\s`);
    // pep440_rs only ASCII whitespace.
    let trimmed = version.trim_matches(is_python_whitespace);
    Version::from_str(trimmed).map_err(|e| Scheme::Pep440.invalid(version, e.to_string()))
}

/// Python's `str.isspace`: Unicode White_Space plus the information separators.
fn is_python_whitespace(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The ordering example of PEP 440 ("Summary of permitted suffixes and relative ordering").
    #[test]
    fn pep_440_summary_ordering() {
        let ascending = [
            "1.dev0",
            "1.0.dev456",
            "1.0a1",
            "1.0a2.dev456",
            "1.0a12.dev456",
            "1.0a12",
            "1.0b1.dev456",
            "1.0b2",
            "1.0b2.post345.dev456",
            "1.0b2.post345",
            "1.0rc1.dev456",
            "1.0rc1",
            "1.0",
            "1.0+abc.5",
            "1.0+abc.7",
            "1.0+5",
            "1.0.post456.dev34",
            "1.0.post456",
            "1.0.15",
            "1.1.dev1",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(cmp(pair[0], pair[1]), Ordering::Less, "{pair:?}");
        }
    }

    #[test]
    fn normalised_spellings_are_equal() {
        let same = [
            ("1.0.0a1", "1.0a1"),
            ("1.0-post1", "1.0.post1"),
            ("1.0-1", "1.0.post1"),
            ("v1.0", "1.0"),
            ("1.0ALPHA1", "1.0a1"),
            ("1.0c1", "1.0rc1"),
            ("1.0-preview_2", "1.0rc2"),
            ("1.0.rev", "1.0.post0"),
            ("0!1.0", "1.0"),
            ("1.0+Ubuntu-1", "1.0+ubuntu.1"),
            ("\u{a0}1.0\u{2003}", "1.0"),
            ("\u{1f}1.0", "1.0"),
        ];
        for (a, b) in same {
            assert_eq!(cmp(a, b), Ordering::Equal, "{a} = {b}");
        }
        assert_eq!(cmp("1!0.1", "2.0"), Ordering::Greater);
    }

    #[test]
    fn refusals() {
        for bad in ["", "1.0-", "1..0", "1.0.", "1.0+", "1.0+a..b", "1.0.*", "a1.0", "1.0 1"] {
            assert!(compare(bad, "1.0").is_err(), "{bad:?} should be refused");
        }
    }
}

//! Semantic Versioning 2.0 through the `semver` crate, with the spellings each ecosystem's
//! tool accepts around it. Build metadata never affects the order.
//!
//! Numeric pre-release identifiers compare exactly, as the spec says; node-semver turns
//! those beyond 2^53 into floating-point numbers first.

use std::cmp::Ordering;

use ::semver::Version;

use super::Scheme;
use crate::ScanError;

/// node-semver refuses longer version strings (counted in UTF-16 units, as JavaScript does).
const NPM_MAX_LENGTH: usize = 256;
/// node-semver keeps major, minor and patch as JavaScript numbers, exact up to 2^53 - 1.
const NPM_MAX_NUMBER: u64 = (1 << 53) - 1;

/// Orders npm (and crates.io) versions as node-semver's `compare` does without `loose`:
/// surrounding whitespace and one leading `v` are allowed, nothing else is.
pub(super) fn compare_npm(a: &str, b: &str) -> Result<Ordering, ScanError> {
    Ok(parse_npm(a)?.cmp_precedence(&parse_npm(b)?))
}

pub(super) fn parse_npm(version: &str) -> Result<Version, ScanError> {
    let invalid = |reason: &str| Scheme::Semver.invalid(version, reason);
    if version.encode_utf16().count() > NPM_MAX_LENGTH {
        return Err(invalid("longer than 256 characters"));
    }
    let trimmed = version.trim_matches(is_js_whitespace);
    let plain = trimmed.strip_prefix('v').unwrap_or(trimmed);
    let parsed = Version::parse(plain).map_err(|e| invalid(&e.to_string()))?;
    if [parsed.major, parsed.minor, parsed.patch].iter().any(|&n| n > NPM_MAX_NUMBER) {
        return Err(invalid("number larger than 2^53 - 1"));
    }
    Ok(parsed)
}

/// What JavaScript's `String.prototype.trim` removes: WhiteSpace and LineTerminator.
pub(super) fn is_js_whitespace(c: char) -> bool {
    matches!(
        c,
        '\t' | '\n' | '\u{b}' | '\u{c}' | '\r' | ' ' | '\u{a0}' | '\u{1680}' | '\u{2000}'
            ..='\u{200a}' | '\u{2028}' | '\u{2029}' | '\u{202f}' | '\u{205f}' | '\u{3000}' | '\u{feff}'
    )
}

/// Orders Go module versions as Go's `x/mod/semver` package does. The leading `v` is
/// optional because OSV's Go entries leave it out; `v1` and `v1.2` stand for `v1.0.0`
/// and `v1.2.0`. Pseudo-versions are pre-releases and `+incompatible` is build metadata,
/// so both order correctly as they are.
pub(super) fn compare_go(a: &str, b: &str) -> Result<Ordering, ScanError> {
    Ok(parse_go(a)?.cmp_precedence(&parse_go(b)?))
}

fn parse_go(version: &str) -> Result<Version, ScanError> {
    let plain = version.strip_prefix('v').unwrap_or(version);
    // Go's shorthands have no pre-release or build: the core is then all digits and dots.
    let expanded = if plain.bytes().all(|c| c.is_ascii_digit() || c == b'.') {
        match plain.bytes().filter(|&c| c == b'.').count() {
            0 => format!("{plain}.0.0"),
            1 => format!("{plain}.0"),
            _ => plain.to_owned(),
        }
    } else {
        plain.to_owned()
    };
    Version::parse(&expanded).map_err(|e| Scheme::Go.invalid(version, e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npm(a: &str, b: &str) -> Ordering {
        compare_npm(a, b).unwrap_or_else(|e| panic!("{e}"))
    }

    fn go(a: &str, b: &str) -> Ordering {
        compare_go(a, b).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn semver_spec_precedence() {
        // semver.org, item 11.
        let ascending = [
            "1.0.0-alpha",
            "1.0.0-alpha.1",
            "1.0.0-alpha.beta",
            "1.0.0-beta",
            "1.0.0-beta.2",
            "1.0.0-beta.11",
            "1.0.0-rc.1",
            "1.0.0",
            "2.0.0",
            "2.1.0",
            "2.1.1",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(npm(pair[0], pair[1]), Ordering::Less, "{pair:?}");
        }
        assert_eq!(npm("1.0.0+build.1", "1.0.0+build.2"), Ordering::Equal);
        assert_eq!(npm("1.0.0-1", "1.0.0-a"), Ordering::Less);
    }

    #[test]
    fn npm_spellings() {
        assert_eq!(npm("v1.2.3", "1.2.3"), Ordering::Equal);
        assert_eq!(npm("  1.2.3\n", "1.2.3"), Ordering::Equal);
        assert_eq!(npm("\u{feff}1.2.3\u{a0}", "1.2.3"), Ordering::Equal);
        assert_eq!(npm("9007199254740991.0.0", "1.0.0"), Ordering::Greater);
        for bad in [
            "=1.2.3",
            "V1.2.3",
            "vv1.2.3",
            "1.2",
            "01.2.3",
            "1.2.3-01",
            "1.2.3-",
            "1.2.3+",
            "1.2.3.4",
            "\u{85}1.2.3",
            "9007199254740992.0.0",
            "x",
            "",
        ] {
            assert!(compare_npm(bad, "1.0.0").is_err(), "{bad:?} should be refused");
        }
        let longest = format!("1.2.3-{}", "a".repeat(250));
        assert!(compare_npm(&longest, "1.0.0").is_ok());
        assert!(compare_npm(&format!("{longest}a"), "1.0.0").is_err());
    }

    #[test]
    fn go_module_versions() {
        assert_eq!(go("v1", "v1.0.0"), Ordering::Equal);
        assert_eq!(go("v1.2", "1.2.0"), Ordering::Equal);
        assert_eq!(go("v2.0.0+incompatible", "v2.0.0"), Ordering::Equal);
        // Pseudo-versions: before the release they lead up to, ordered by time.
        let ascending = [
            "v0.0.0-20190101000000-abcdefabcdef",
            "v0.0.0-20200101000000-000000000000",
            "v1.2.3",
            "v1.2.4-0.20210101000000-abcdefabcdef",
            "v1.2.4-pre.0.20210101000000-abcdefabcdef",
            "v1.2.4-pre.0.20220101000000-abcdefabcdef",
            "v1.2.4",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(go(pair[0], pair[1]), Ordering::Less, "{pair:?}");
        }
        for bad in ["v1.2-pre", "v1.2.3.4", "v01.2.3", "1.2.3-01", "", "v"] {
            assert!(compare_go(bad, "v1.0.0").is_err(), "{bad:?} should be refused");
        }
    }
}

//! RPM versions, `[epoch:]version[-release]`, each part ordered by `rpmvercmp`.
//!
//! rpm itself skips the release when only one side has one (`1.0` matches any `1.0-N`),
//! which is not an order; here a missing release is an empty one, so `1.0` < `1.0-1`,
//! which is what an advisory's "fixed in 1.0-1" needs.

use std::cmp::Ordering;

use super::Scheme;
use crate::ScanError;

struct Evr<'a> {
    epoch: &'a [u8],
    version: &'a [u8],
    release: &'a [u8],
}

/// rpm's `parseEVR`: digits up to a colon are the epoch, the last hyphen starts the release.
fn parse(evr: &str) -> Result<Evr<'_>, ScanError> {
    if evr.is_empty() {
        return Err(Scheme::Rpm.invalid(evr, "version is empty"));
    }
    let bytes = evr.as_bytes();
    let digits = bytes.iter().take_while(|c| c.is_ascii_digit()).count();
    let (epoch, rest) = match bytes.get(digits) {
        Some(b':') if digits == 0 => (&b"0"[..], &bytes[1..]),
        Some(b':') => (&bytes[..digits], &bytes[digits + 1..]),
        _ => (&b"0"[..], bytes),
    };
    let (version, release) = match rest.iter().rposition(|&c| c == b'-') {
        Some(hyphen) => (&rest[..hyphen], &rest[hyphen + 1..]),
        None => (rest, &b""[..]),
    };
    Ok(Evr { epoch, version, release })
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, ScanError> {
    let (a, b) = (parse(a)?, parse(b)?);
    Ok(rpmvercmp(a.epoch, b.epoch).then_with(|| rpmvercmp(a.version, b.version)).then_with(|| rpmvercmp(a.release, b.release)))
}

/// rpm's `rpmvercmp`: alphabetic and numeric segments, separators ignored, `~` before
/// anything (even the end), `^` after the end but before anything else.
fn rpmvercmp(a: &[u8], b: &[u8]) -> Ordering {
    if a == b {
        return Ordering::Equal;
    }
    let is_separator = |c: &u8| !c.is_ascii_alphanumeric() && *c != b'~' && *c != b'^';
    let (mut one, mut two) = (a, b);
    loop {
        one = &one[one.iter().take_while(|c| is_separator(c)).count()..];
        two = &two[two.iter().take_while(|c| is_separator(c)).count()..];
        let (c1, c2) = (one.first().copied(), two.first().copied());
        if c1.is_none() && c2.is_none() {
            return Ordering::Equal;
        }
        if c1 == Some(b'~') || c2 == Some(b'~') {
            if c1 != Some(b'~') {
                return Ordering::Greater;
            }
            if c2 != Some(b'~') {
                return Ordering::Less;
            }
            one = &one[1..];
            two = &two[1..];
            continue;
        }
        if c1 == Some(b'^') || c2 == Some(b'^') {
            match (c1, c2) {
                (None, _) => return Ordering::Less,
                (_, None) => return Ordering::Greater,
                (Some(b'^'), Some(b'^')) => {
                    one = &one[1..];
                    two = &two[1..];
                    continue;
                }
                (Some(b'^'), _) => return Ordering::Less,
                _ => return Ordering::Greater,
            }
        }
        let (Some(c1), Some(_)) = (c1, c2) else {
            // Whichever still has segments left is newer.
            return if c1.is_none() { Ordering::Less } else { Ordering::Greater };
        };
        let numeric = c1.is_ascii_digit();
        let in_segment = |c: &u8| {
            if numeric { c.is_ascii_digit() } else { c.is_ascii_alphabetic() }
        };
        let len1 = one.iter().take_while(|c| in_segment(c)).count();
        let len2 = two.iter().take_while(|c| in_segment(c)).count();
        if len2 == 0 {
            // Segments of different types: the numeric one is newer.
            return if numeric { Ordering::Greater } else { Ordering::Less };
        }
        let (seg1, seg2) = (&one[..len1], &two[..len2]);
        let ord = if numeric { super::cmp_digits(seg1, seg2) } else { seg1.cmp(seg2) };
        if ord != Ordering::Equal {
            return ord;
        }
        one = &one[len1..];
        two = &two[len2..];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap()
    }

    /// Cases from rpm's own test suite (tests/rpmvercmp.at).
    #[test]
    fn rpmvercmp_test_suite() {
        let cases: &[(&str, &str, i8)] = &[
            ("1.0", "1.0", 0),
            ("1.0", "2.0", -1),
            ("2.0.1", "2.0.1", 0),
            ("2.0", "2.0.1", -1),
            ("2.0.1a", "2.0.1a", 0),
            ("2.0.1a", "2.0.1", 1),
            ("5.5p1", "5.5p2", -1),
            ("5.5p10", "5.5p1", 1),
            ("10xyz", "10.1xyz", -1),
            ("xyz10", "xyz10.1", -1),
            ("xyz.4", "8", -1),
            ("xyz.4", "2", -1),
            ("5.5p2", "5.6p1", -1),
            ("5.6p1", "6.5p1", -1),
            ("6.0.rc1", "6.0", 1),
            ("10b2", "10a1", 1),
            ("1.0aa", "1.0a", 1),
            ("10.0001", "10.1", 0),
            ("10.0001", "10.0039", -1),
            ("4.999.9", "5.0", -1),
            ("20101121", "20101122", -1),
            ("2_0", "2_0", 0),
            ("2.0", "2_0", 0),
            ("a", "a", 0),
            ("a+", "a_", 0),
            ("+", "_", 0),
            ("1.0~rc1", "1.0~rc1", 0),
            ("1.0~rc1", "1.0", -1),
            ("1.0~rc1", "1.0~rc2", -1),
            ("1.0~rc1~git123", "1.0~rc1", -1),
            ("1.0^", "1.0", 1),
            ("1.0^git1", "1.0", 1),
            ("1.0^git1", "1.0^git2", -1),
            ("1.0^git1", "1.01", -1),
            ("1.0^20160101", "1.0.1", -1),
            ("1.0^20160101^git1", "1.0^20160101", 1),
            ("1.0~rc1^git1", "1.0~rc1", 1),
            ("1.0^git1~pre", "1.0^git1", -1),
        ];
        for &(a, b, expected) in cases {
            assert_eq!(rpmvercmp(a.as_bytes(), b.as_bytes()) as i8, expected, "{a} vs {b}");
            assert_eq!(rpmvercmp(b.as_bytes(), a.as_bytes()) as i8, -expected, "{b} vs {a}");
        }
    }

    #[test]
    fn epoch_version_release() {
        assert_eq!(cmp("1:1.0-1", "2.0-1"), Ordering::Greater);
        assert_eq!(cmp("0:1.0-1", "1.0-1"), Ordering::Equal);
        assert_eq!(cmp(":1.0-1", "1.0-1"), Ordering::Equal);
        assert_eq!(cmp("1.0-1.el8", "1.0-1.el8_2"), Ordering::Less);
        assert_eq!(cmp("1.0-10", "1.0-9"), Ordering::Greater);
        assert_eq!(cmp("1.0", "1.0-1"), Ordering::Less);
        assert_eq!(cmp("1.0-2-3", "1.0-2-4"), Ordering::Less);
        // Not an epoch: the colon is just a separator inside the version.
        assert_eq!(cmp("a:1.0", "a.1.0"), Ordering::Equal);
        assert!(compare("", "1").is_err());
    }
}

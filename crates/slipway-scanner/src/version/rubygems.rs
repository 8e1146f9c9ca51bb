//! Ruby gem versions, ordered as `Gem::Version#<=>` does.

use std::cmp::Ordering;

use super::Scheme;
use crate::ScanError;

#[derive(Debug, PartialEq, Eq)]
enum Segment<'a> {
    /// Digits as written; compared as unbounded integers.
    Number(&'a str),
    Text(&'a str),
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, ScanError> {
    let (a, b) = (canonical_segments(a)?, canonical_segments(b)?);
    for i in 0..a.len().max(b.len()) {
        let zero = Segment::Number("0");
        let (l, r) = (a.get(i).unwrap_or(&zero), b.get(i).unwrap_or(&zero));
        let ord = match (l, r) {
            (Segment::Number(l), Segment::Number(r)) => super::cmp_digits(l.as_bytes(), r.as_bytes()),
            (Segment::Text(_), Segment::Number(_)) => Ordering::Less,
            (Segment::Number(_), Segment::Text(_)) => Ordering::Greater,
            (Segment::Text(l), Segment::Text(r)) => l.cmp(r),
        };
        if ord.is_ne() {
            return Ok(ord);
        }
    }
    Ok(Ordering::Equal)
}

/// `Gem::Version#canonical_segments`: the segments, with trailing zeros dropped from the
/// release part and from the pre-release part (which starts at the first letters).
fn canonical_segments(version: &str) -> Result<Vec<Segment<'_>>, ScanError> {
    let trimmed = version.trim_matches(is_ruby_whitespace);
    if !trimmed.is_empty() && !is_correct(trimmed) {
        return Err(Scheme::RubyGems.invalid(version, "malformed version number string"));
    }
    // A `-` becomes `.pre.`: a letter segment, which only moves what follows into the
    // pre-release part. Splitting on it is then enough.
    let mut segments = Vec::new();
    let bytes = trimmed.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let c = bytes[i];
        let run = bytes[i..].iter().take_while(|b| b.is_ascii_digit() == c.is_ascii_digit() && b.is_ascii_alphanumeric()).count();
        if c == b'-' {
            segments.push(Segment::Text("pre"));
            i += 1;
        } else if run == 0 {
            i += 1;
        } else if c.is_ascii_digit() {
            segments.push(Segment::Number(&trimmed[i..i + run]));
            i += run;
        } else {
            segments.push(Segment::Text(&trimmed[i..i + run]));
            i += run;
        }
    }
    let split = segments.iter().position(|s| matches!(s, Segment::Text(_))).unwrap_or(segments.len());
    let mut pre = segments.split_off(split);
    drop_trailing_zeros(&mut segments);
    drop_trailing_zeros(&mut pre);
    segments.append(&mut pre);
    Ok(segments)
}

fn drop_trailing_zeros(segments: &mut Vec<Segment<'_>>) {
    while matches!(segments.last(), Some(Segment::Number(n)) if n.bytes().all(|d| d == b'0')) {
        segments.pop();
    }
}

/// Ruby's `\s`.
fn is_ruby_whitespace(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

/// `Gem::Version::ANCHORED_VERSION_PATTERN` on the trimmed string:
/// `[0-9]+(\.[0-9a-zA-Z]+)*(-[0-9A-Za-z-]+(\.[0-9A-Za-z-]+)*)?`.
fn is_correct(version: &str) -> bool {
    let (release, pre) = match version.split_once('-') {
        Some((release, pre)) => (release, Some(pre)),
        None => (version, None),
    };
    let mut parts = release.split('.');
    let head_ok = parts.next().is_some_and(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_digit()));
    let rest_ok = parts.all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric()));
    let pre_ok = pre.is_none_or(|pre| pre.split('.').all(|p| !p.is_empty() && p.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')));
    head_ok && rest_ok && pre_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Orderings from RubyGems' test_gem_version.rb.
    #[test]
    fn rubygems_test_suite_orderings() {
        let cases = [
            ("1.0", "=", "1.0.0"),
            ("1.0", ">", "1.0.a"),
            ("1.8.2", ">", "0.0.0"),
            ("1.8.2", ">", "1.8.2.a"),
            ("1.8.2.b", ">", "1.8.2.a"),
            ("1.8.2.a", "<", "1.8.2"),
            ("1.8.2.a10", ">", "1.8.2.a9"),
            ("", "<", "1.8.2"),
            ("0.beta.1", "=", "0.0.beta.1"),
            ("0.0.beta", "<", "0.0.beta.1"),
            ("0.0.beta", "<", "0.beta.1"),
            ("5.a", "<", "5.0.0.rc2"),
            ("5.x", ">", "5.0.0.rc2"),
            ("1.9.3", "=", "1.9.3.0"),
            ("1.9.3.0", "=", "1.9.3"),
            ("1.2.3-1", "<", "1.2.3"),
            ("1.2.3-1", "=", "1.2.3.pre.1"),
            ("1.0.0.a", "=", "1.0.a"),
            ("1.0.0.a.0", "=", "1.0.a"),
            ("1.0.a1", "=", "1.0.a.1"),
            ("1.0.0a", "=", "1.0.a"),
            (" 1.0 ", "=", "1"),
            ("1.0.A", "<", "1.0.a"),
        ];
        for (a, op, b) in cases {
            let expected = match op {
                "<" => Ordering::Less,
                "=" => Ordering::Equal,
                _ => Ordering::Greater,
            };
            assert_eq!(cmp(a, b), expected, "{a} {op} {b}");
            assert_eq!(cmp(b, a), expected.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn refusals() {
        for bad in ["junk", "1.0\n2.0", "1..2", "1.2\\ 3.4", "1.0-", "1.0.", "1.0-.a", "a1", "1.0 2"] {
            assert!(compare(bad, "1").is_err(), "{bad:?} should be refused");
        }
        for good in ["1.0-pre-1", "1-2-3", "1-2-", "\t1.0\n", "\u{b}1.0", "1.0.0.ba1"] {
            assert!(compare(good, "1").is_ok(), "{good:?}");
        }
    }
}

//! Debian versions, `[epoch:]upstream[-revision]`, ordered as dpkg's `verrevcmp` does.
//!
//! Parsing follows dpkg's `parseversion`: what it refuses (an empty version, embedded
//! blanks, a bad epoch, an empty upstream or revision) is an error; what it only warns
//! about (an upstream not starting with a digit, characters outside the policy's set)
//! is compared all the same, as `dpkg --compare-versions` does.

use std::cmp::Ordering;

use super::Scheme;
use crate::ScanError;

struct Version<'a> {
    epoch: u32,
    upstream: &'a [u8],
    revision: &'a [u8],
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, ScanError> {
    let (a, b) = (parse(a)?, parse(b)?);
    Ok(a.epoch.cmp(&b.epoch).then_with(|| verrevcmp(a.upstream, b.upstream)).then_with(|| verrevcmp(a.revision, b.revision)))
}

fn parse(version: &str) -> Result<Version<'_>, ScanError> {
    let invalid = |reason: &str| Scheme::Dpkg.invalid(version, reason);
    // dpkg trims blanks (space and tab) only; any other whitespace is just a bad character.
    let is_blank = |c: char| c == ' ' || c == '\t';
    let trimmed = version.trim_matches(is_blank);
    if trimmed.is_empty() {
        return Err(invalid("version string is empty"));
    }
    if trimmed.contains(is_blank) {
        return Err(invalid("version string has embedded spaces"));
    }
    let (epoch, rest) = match trimmed.split_once(':') {
        Some((epoch, rest)) => {
            let epoch = parse_epoch(epoch).map_err(invalid)?;
            if rest.is_empty() {
                return Err(invalid("nothing after colon in version number"));
            }
            (epoch, rest)
        }
        None => (0, trimmed),
    };
    let (upstream, revision) = match rest.rsplit_once('-') {
        Some((_, "")) => return Err(invalid("revision number is empty")),
        Some((upstream, revision)) => (upstream, revision),
        None => (rest, ""),
    };
    if upstream.is_empty() {
        return Err(invalid("version number is empty"));
    }
    Ok(Version { epoch, upstream: upstream.as_bytes(), revision: revision.as_bytes() })
}

/// The epoch as dpkg reads it with `strtol`: leading whitespace and a sign are allowed,
/// the number must run up to the colon, and it must fit in a C `int`.
fn parse_epoch(epoch: &str) -> Result<u32, &'static str> {
    let unsigned = epoch.trim_start_matches([' ', '\t', '\n', '\x0b', '\x0c', '\r']);
    let (negative, digits) = match unsigned.as_bytes().first() {
        Some(b'-') => (true, &unsigned[1..]),
        Some(b'+') => (false, &unsigned[1..]),
        _ => (false, unsigned),
    };
    let digit_count = digits.bytes().take_while(u8::is_ascii_digit).count();
    if digit_count == 0 {
        return Err("epoch in version is empty");
    }
    if digit_count != digits.len() {
        return Err("epoch in version is not number");
    }
    let significant = digits.trim_start_matches('0');
    let value = if significant.len() > 10 { u64::MAX } else { significant.parse::<u64>().unwrap_or(0) };
    if negative && value != 0 {
        return Err("epoch in version is negative");
    }
    u32::try_from(value).ok().filter(|&epoch| epoch <= i32::MAX as u32).ok_or("epoch in version is too big")
}

/// dpkg's `verrevcmp`: alternating non-digit and digit runs; non-digits compare by
/// `order`, digit runs numerically.
fn verrevcmp(mut a: &[u8], mut b: &[u8]) -> Ordering {
    while !a.is_empty() || !b.is_empty() {
        loop {
            let (ca, cb) = (a.first().copied(), b.first().copied());
            let a_text = ca.is_some_and(|c| !c.is_ascii_digit());
            let b_text = cb.is_some_and(|c| !c.is_ascii_digit());
            if !a_text && !b_text {
                break;
            }
            let (oa, ob) = (order(ca), order(cb));
            if oa != ob {
                return oa.cmp(&ob);
            }
            a = &a[1..];
            b = &b[1..];
        }
        let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
        let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
        let ord = super::cmp_digits(&a[..da], &b[..db]);
        if ord != Ordering::Equal {
            return ord;
        }
        a = &a[da..];
        b = &b[db..];
    }
    Ordering::Equal
}

/// The weight of one character: `~` below the end of the string, letters next, then
/// everything else. Bytes above 127 weigh as dpkg computes them where `char` is signed
/// (amd64, i386): `c + 256` of a negative `c` is the byte's own value.
fn order(c: Option<u8>) -> i32 {
    match c {
        None => 0,
        Some(c) if c.is_ascii_digit() => 0,
        Some(c) if c.is_ascii_alphabetic() => i32::from(c),
        Some(b'~') => -1,
        Some(c) if c >= 0x80 => i32::from(c),
        Some(c) => i32::from(c) + 256,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap_or_else(|e| panic!("{a} vs {b}: {e}"))
    }

    #[test]
    fn debian_policy_examples() {
        // Debian Policy 5.6.12: `~` sorts before anything, even the end of a part.
        let ascending = ["1.0~~", "1.0~~a", "1.0~", "1.0", "1.0a", "1.0+", "1.0.1"];
        for pair in ascending.windows(2) {
            assert_eq!(cmp(pair[0], pair[1]), Ordering::Less, "{pair:?}");
        }
        assert_eq!(cmp("1:0.1", "2.0"), Ordering::Greater);
        assert_eq!(cmp("1.2-3", "1.2-10"), Ordering::Less);
        assert_eq!(cmp("2.30-1", "2.4-9"), Ordering::Greater);
        assert_eq!(cmp("1.0-1~bpo1", "1.0-1"), Ordering::Less);
        assert_eq!(cmp("7.4.052-1ubuntu3.1", "7.4.052-1ubuntu3"), Ordering::Greater);
        assert_eq!(cmp("1.0a", "1.0A"), Ordering::Greater, "lower case sorts after upper");
        assert_eq!(cmp("1.0-a", "1.0-+"), Ordering::Less, "letters before non-letters");
    }

    #[test]
    fn equal_spellings() {
        assert_eq!(cmp("1.0", "1.0-0"), Ordering::Equal);
        assert_eq!(cmp("0:1.0", "1.0"), Ordering::Equal);
        assert_eq!(cmp("1.01", "1.1"), Ordering::Equal);
        assert_eq!(cmp("  1.0\t", "1.0"), Ordering::Equal);
        assert_eq!(cmp("+1:2", "1:2"), Ordering::Equal);
        assert_eq!(cmp("-0:2", "2"), Ordering::Equal);
    }

    #[test]
    fn hyphens_and_colons_split_where_dpkg_splits() {
        // The last hyphen starts the revision; later colons belong to the upstream.
        assert_eq!(cmp("1.0-2-3", "1.0-2-4"), Ordering::Less);
        assert_eq!(cmp("1:2:3", "1:2:4"), Ordering::Less);
    }

    #[test]
    fn warnings_still_compare() {
        assert_eq!(cmp("a1.0", "1.0"), Ordering::Greater);
        assert_eq!(cmp("1.0_1", "1.0+1"), Ordering::Greater);
        assert_eq!(cmp("1.0é", "1.0+"), Ordering::Less);
    }

    #[test]
    fn refusals() {
        for bad in ["", " ", "1 0", ":1", "a:1", "1a:1", "-1:1", "1:", "1.0-", "-1", "2147483648:1", "99999999999999999999:1"] {
            assert!(compare(bad, "1").is_err(), "{bad:?} should be refused");
        }
        assert_eq!(cmp("2147483647:1", "1"), Ordering::Greater);
    }
}

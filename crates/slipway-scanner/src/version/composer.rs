//! Packagist versions: normalized as composer/semver's `VersionParser::normalize` does
//! (`v1.2` is `1.2.0.0`, `1.0-b2` is `1.0.0.0-beta2`, `1.x-dev` is
//! `1.9999999.9999999.9999999-dev`), then ordered by PHP's `version_compare`, which is
//! what Composer's constraints do. Branches (`dev-main`) have no order: a branch is only
//! equal to itself, and comparing it with anything else is an error.

use std::cmp::Ordering;

use super::Scheme;
use crate::ScanError;

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, ScanError> {
    let (na, nb) = (normalize(a)?, normalize(b)?);
    match (na.starts_with("dev-"), nb.starts_with("dev-")) {
        (false, false) => Ok(php_version_compare(&na, &nb)),
        _ if na == nb => Ok(Ordering::Equal),
        (true, _) => Err(Scheme::Composer.invalid(a, "a branch has no order")),
        (false, true) => Err(Scheme::Composer.invalid(b, "a branch has no order")),
    }
}

/// PHP's `trim` and PCRE's `\s` (without the `u` flag).
fn is_php_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\0' | '\u{b}')
}

fn is_pcre_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

const STABILITIES: [&str; 5] = ["stable", "RC", "beta", "alpha", "dev"];
/// The modifier words of `$modifierRegex`, in the regex's order.
const MODIFIERS: [&str; 9] = ["stable", "beta", "b", "RC", "alpha", "a", "patch", "pl", "p"];

/// `VersionParser::normalize`.
fn normalize(original: &str) -> Result<String, ScanError> {
    let invalid = || Scheme::Composer.invalid(original, "invalid version string");
    let mut version = original.trim_matches(is_php_space);
    if let Some(source) = strip_alias(version) {
        version = source;
    }
    for stability in STABILITIES {
        let len = version.len();
        if len > stability.len()
            && version.is_char_boundary(len - stability.len() - 1)
            && version[len - stability.len() - 1..].eq_ignore_ascii_case(&format!("@{stability}"))
        {
            version = &version[..len - stability.len() - 1];
            break;
        }
    }
    if matches!(version, "master" | "trunk" | "default") {
        return Ok(format!("dev-{version}"));
    }
    if version.len() >= 4 && version.is_char_boundary(4) && version[..4].eq_ignore_ascii_case("dev-") {
        return Ok(format!("dev-{}", &version[4..]));
    }
    if let Some(core) = strip_build(version) {
        version = core;
    }
    if let Some(normalized) = classical(version).or_else(|| date_based(version)) {
        return Ok(normalized);
    }
    // `1.x-dev` and the like: a numeric branch.
    if let Some(branch) = strip_dev_suffix(version)
        && let Some(normalized) = numeric_branch(branch.trim_matches(is_php_space))
    {
        return Ok(normalized);
    }
    Err(invalid())
}

/// `^([^,\s]++) ++as ++([^,\s]++)$`: the part before ` as `.
fn strip_alias(version: &str) -> Option<&str> {
    let s = version.as_bytes();
    let word = |at: usize| at + s[at..].iter().take_while(|&&c| c != b',' && !is_pcre_space(c)).count();
    let spaces = |at: usize| at + s[at..].iter().take_while(|&&c| c == b' ').count();
    let source_end = word(0);
    let as_at = spaces(source_end);
    if source_end == 0 || as_at == source_end || !s[as_at..].starts_with(b"as") {
        return None;
    }
    let target_at = spaces(as_at + 2);
    (target_at > as_at + 2 && target_at < s.len() && word(target_at) == s.len()).then(|| &version[..source_end])
}

/// `^([^,\s+]++)\+[^\s]++$`: the part before build metadata.
fn strip_build(version: &str) -> Option<&str> {
    let s = version.as_bytes();
    let core = s.iter().take_while(|&&c| c != b',' && c != b'+' && !is_pcre_space(c)).count();
    let build = s.get(core + 1..)?;
    (core > 0 && s[core] == b'+' && !build.is_empty() && !build.iter().any(|&c| is_pcre_space(c))).then(|| &version[..core])
}

/// `(.*?)[.-]?dev$` (case-insensitive): the part before a `dev` suffix.
fn strip_dev_suffix(version: &str) -> Option<&str> {
    let len = version.len();
    if len < 3 || !version.is_char_boundary(len - 3) || !version[len - 3..].eq_ignore_ascii_case("dev") {
        return None;
    }
    let mut prefix = &version[..len - 3];
    if let Some(shorter) = prefix.strip_suffix(['.', '-']) {
        prefix = shorter;
    }
    // `.` stops at a line break.
    (!prefix.contains('\n')).then_some(prefix)
}

/// `normalizeBranch` for a numeric branch: `1.2.x` is `1.2.9999999.9999999-dev`.
fn numeric_branch(name: &str) -> Option<String> {
    let s = name.as_bytes();
    let mut at = usize::from(matches!(s.first(), Some(b'v' | b'V')));
    let digits = digit_run(s, at);
    if digits == 0 {
        return None;
    }
    let mut normalized = name[at..at + digits].to_owned();
    at += digits;
    let mut parts = 1;
    while parts < 4 && s.get(at) == Some(&b'.') {
        let digits = digit_run(s, at + 1);
        let len = if digits > 0 {
            digits
        } else if matches!(s.get(at + 1), Some(b'x' | b'X' | b'*')) {
            1
        } else {
            break;
        };
        normalized.push('.');
        normalized.push_str(&name[at + 1..at + 1 + len]);
        at += 1 + len;
        parts += 1;
    }
    if at != s.len() {
        return None;
    }
    for _ in parts..4 {
        normalized.push_str(".x");
    }
    let normalized = normalized.replace(['*', 'X', 'x'], "9999999");
    Some(format!("{normalized}-dev"))
}

fn digit_run(s: &[u8], at: usize) -> usize {
    s.get(at..).unwrap_or_default().iter().take_while(|c| c.is_ascii_digit()).count()
}

/// The classical form: `v?(\d{1,5})(\.\d++)?(\.\d++)?(\.\d++)?` and a modifier.
fn classical(version: &str) -> Option<String> {
    let s = version.as_bytes();
    let start = usize::from(matches!(s.first(), Some(b'v' | b'V')));
    let major = digit_run(s, start);
    if !(1..=5).contains(&major) {
        return None;
    }
    let mut at = start + major;
    let mut normalized = version[start..at].to_owned();
    for _ in 0..3 {
        let digits = if s.get(at) == Some(&b'.') { digit_run(s, at + 1) } else { 0 };
        if digits > 0 {
            normalized.push_str(&version[at..at + 1 + digits]);
            at += 1 + digits;
        } else {
            normalized.push_str(".0");
        }
    }
    with_modifier(normalized, version, at)
}

/// The date-based form: `v?(\d{4}(?:[.:-]?\d{2}){1,6}(?:[.:-]?\d{1,3})?)` and a modifier,
/// tried in the order a backtracking regex engine tries it.
fn date_based(version: &str) -> Option<String> {
    let s = version.as_bytes();
    let start = usize::from(matches!(s.first(), Some(b'v' | b'V')));
    if digit_run(s, start) < 4 {
        return None;
    }
    let separator = |at: usize| usize::from(matches!(s.get(at), Some(b'.' | b':' | b'-')));
    // Ends of one to six `[.:-]?\d{2}` groups, matched greedily.
    let mut ends = vec![start + 4];
    while ends.len() <= 6 {
        let at = *ends.last()?;
        let digits_at = at + separator(at);
        if digit_run(s, digits_at) < 2 {
            break;
        }
        ends.push(digits_at + 2);
    }
    for &end in ends[1..].iter().rev() {
        let digits_at = end + separator(end);
        let digits = digit_run(s, digits_at).min(3);
        let candidates = (1..=digits).rev().map(|n| digits_at + n).chain([end]);
        for date_end in candidates {
            let date: String = version[start..date_end].chars().map(|c| if c.is_ascii_digit() { c } else { '.' }).collect();
            if let Some(normalized) = with_modifier(date, version, date_end) {
                return Some(normalized);
            }
        }
    }
    None
}

/// `[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?\d+)*+)?)?([.-]?dev)?$`
/// (case-insensitive) from `at` to the end, appended to the normalized number.
fn with_modifier(mut normalized: String, version: &str, mut at: usize) -> Option<String> {
    let s = version.as_bytes();
    if matches!(s.get(at), Some(b'.' | b'_' | b'-')) {
        at += 1;
    }
    let word = MODIFIERS.into_iter().find(|word| s.get(at..at + word.len()).is_some_and(|w| w.eq_ignore_ascii_case(word.as_bytes())));
    let mut stability = None;
    if let Some(word) = word {
        let text = &version[at..at + word.len()];
        at += word.len();
        let numbers_start = at;
        loop {
            let digits_at = at + usize::from(matches!(s.get(at), Some(b'.' | b'-')));
            let digits = digit_run(s, digits_at);
            if digits == 0 {
                break;
            }
            at = digits_at + digits;
        }
        stability = Some((text, &version[numbers_start..at]));
    }
    let dev_at = at + usize::from(matches!(s.get(at), Some(b'.' | b'-')));
    let dev = s.get(dev_at..dev_at + 3).is_some_and(|w| w.eq_ignore_ascii_case(b"dev"));
    if dev {
        at = dev_at + 3;
    }
    if at != s.len() {
        return None;
    }
    if let Some((text, numbers)) = stability {
        if text == "stable" {
            return Some(normalized);
        }
        let expanded = match text.to_ascii_lowercase().as_str() {
            "a" => "alpha".to_owned(),
            "b" => "beta".to_owned(),
            "p" | "pl" => "patch".to_owned(),
            "rc" => "RC".to_owned(),
            other => other.to_owned(),
        };
        normalized.push('-');
        normalized.push_str(&expanded);
        normalized.push_str(numbers.trim_start_matches(['.', '-']));
    }
    if dev {
        normalized.push_str("-dev");
    }
    Some(normalized)
}

/// PHP's `version_compare` (ext/standard/versioning.c).
fn php_version_compare(a: &str, b: &str) -> Ordering {
    match (a.is_empty(), b.is_empty()) {
        (true, true) => return Ordering::Equal,
        (true, false) => return Ordering::Less,
        (false, true) => return Ordering::Greater,
        _ => {}
    }
    let a = if a.starts_with('#') { a.to_owned() } else { canonicalize(a) };
    let b = if b.starts_with('#') { b.to_owned() } else { canonicalize(b) };
    let (mut pa, mut pb) = (a.split('.'), b.split('.'));
    loop {
        match (pa.next(), pb.next()) {
            (Some(x), Some(y)) => {
                let ord = compare_parts(x, y);
                if ord.is_ne() {
                    return ord;
                }
            }
            (Some(x), None) => return remainder(x),
            (None, Some(y)) => return remainder(y).reverse(),
            (None, None) => return Ordering::Equal,
        }
    }
}

/// What PHP makes of the parts left over on one side: a number wins; otherwise the first
/// part compares against a number (enough for normalized versions, whose parts never
/// start with `#`).
fn remainder(first: &str) -> Ordering {
    if first.as_bytes().first().is_some_and(u8::is_ascii_digit) {
        Ordering::Greater
    } else {
        special_form_order(first).cmp(&special_form_order("#"))
    }
}

fn compare_parts(x: &str, y: &str) -> Ordering {
    let digit = |p: &str| p.as_bytes().first().is_some_and(u8::is_ascii_digit);
    match (digit(x), digit(y)) {
        (true, true) => strtol(x).cmp(&strtol(y)),
        (false, false) => special_form_order(x).cmp(&special_form_order(y)),
        (true, false) => special_form_order("#").cmp(&special_form_order(y)),
        (false, true) => special_form_order(x).cmp(&special_form_order("#")),
    }
}

/// C's `strtol` on a run of digits: saturates at `LONG_MAX`.
fn strtol(digits: &str) -> i64 {
    digits.bytes().take_while(u8::is_ascii_digit).fold(0i64, |n, d| n.saturating_mul(10).saturating_add(i64::from(d - b'0')))
}

/// PHP's special forms, matched as prefixes in this order; anything else sorts first.
fn special_form_order(part: &str) -> i32 {
    const FORMS: [(&str, i32); 10] =
        [("dev", 0), ("alpha", 1), ("a", 1), ("beta", 2), ("b", 2), ("RC", 3), ("rc", 3), ("#", 4), ("pl", 5), ("p", 5)];
    FORMS.iter().find(|(form, _)| part.starts_with(form)).map_or(-1, |&(_, order)| order)
}

/// `php_canonicalize_version`: `-`, `_` and `+` become `.`, other non-alphanumerics too,
/// and a `.` goes between digits and non-digits.
fn canonicalize(version: &str) -> String {
    let s = version.as_bytes();
    let mut out = vec![s[0]];
    let mut previous = s[0];
    let is_digit = |c: u8| c.is_ascii_digit();
    let is_non_digit = |c: u8| !c.is_ascii_digit() && c != b'.';
    for &c in &s[1..] {
        let last = *out.last().expect("starts with one byte");
        if matches!(c, b'-' | b'_' | b'+') {
            if last != b'.' {
                out.push(b'.');
            }
        } else if (is_non_digit(previous) && is_digit(c)) || (is_digit(previous) && is_non_digit(c)) {
            if last != b'.' {
                out.push(b'.');
            }
            out.push(c);
        } else if !c.is_ascii_alphanumeric() {
            if last != b'.' {
                out.push(b'.');
            }
        } else {
            out.push(c);
        }
        previous = c;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Normalizations from composer/semver's VersionParserTest.
    #[test]
    fn normalizes_as_composer() {
        let cases = [
            ("1.0.0", "1.0.0.0"),
            ("1.2.3.4", "1.2.3.4"),
            ("1.0.0RC1dev", "1.0.0.0-RC1-dev"),
            ("1.0.0-rC15-dev", "1.0.0.0-RC15-dev"),
            ("1.0.0.RC.15-dev", "1.0.0.0-RC15-dev"),
            ("1.0.0-rc1", "1.0.0.0-RC1"),
            ("1.0.0.pl3-dev", "1.0.0.0-patch3-dev"),
            ("1.0-dev", "1.0.0.0-dev"),
            ("0", "0.0.0.0"),
            ("10.4.13-beta", "10.4.13.0-beta"),
            ("10.4.13beta2", "10.4.13.0-beta2"),
            ("10.4.13beta.2", "10.4.13.0-beta2"),
            ("v1.13.11-beta.0", "1.13.11.0-beta0"),
            ("1.13.11.0-beta0", "1.13.11.0-beta0"),
            ("10.4.13-b", "10.4.13.0-beta"),
            ("10.4.13-b5", "10.4.13.0-beta5"),
            ("v1.0.0", "1.0.0.0"),
            ("v20100102", "20100102"),
            ("2010.01", "2010.01.0.0"),
            ("2010.01.02", "2010.01.02.0"),
            ("2010-01-02", "2010.01.02"),
            ("2010-01-02.5", "2010.01.02.5"),
            ("2010.1.555", "2010.1.555.0"),
            ("2010.10.200", "2010.10.200.0"),
            ("20100102-203040", "20100102.203040"),
            ("20100102203040-10", "20100102203040.10"),
            ("20100102-203040-p1", "20100102.203040-patch1"),
            ("2010-01-02.5-dev", "2010.01.02.5-dev"),
            ("1.0.0-stable", "1.0.0.0"),
            ("1.0.0+foo@dev", "1.0.0.0"),
            ("1.0.0-alpha.3.1+foo/-bar@dev", "1.0.0.0-alpha3.1"),
            ("master", "dev-master"),
            ("dev-master", "dev-master"),
            ("dev-feature-foo", "dev-feature-foo"),
            ("DEV-FOOBAR", "dev-FOOBAR"),
            ("1.x-dev", "1.9999999.9999999.9999999-dev"),
            ("1.0.x-dev", "1.0.9999999.9999999-dev"),
            ("1.0.3.x-dev", "1.0.3.9999999-dev"),
            ("dev-1.0.x", "dev-1.0.x"),
            ("1.0.0 as 1.2", "1.0.0.0"),
            (" 1.0.0", "1.0.0.0"),
            ("1.0.0 ", "1.0.0.0"),
            ("00.01.03.04", "00.01.03.04"),
            ("000.001.003.004", "000.001.003.004"),
            ("0.000.103.204", "0.000.103.204"),
            ("0700", "0700.0.0.0"),
            ("041.x-dev", "041.9999999.9999999.9999999-dev"),
            ("dev-041.003", "dev-041.003"),
        ];
        for (input, expected) in cases {
            assert_eq!(normalize(input).unwrap(), expected, "{input}");
        }
        for bad in ["a", "1.0.0-meh", "1.0.0.0.0", "feature-foo", "1.0.0+foo bar", "1.0.0-SNAPSHOT", ""] {
            assert!(normalize(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn orders_as_version_compare() {
        let ascending =
            ["1.0.0-dev", "1.0.0-alpha", "1.0.0-alpha2", "1.0.0-beta", "1.0.0-RC1", "1.0.0", "1.0.0-p1", "1.0.1", "1.x-dev", "2.0"];
        for pair in ascending.windows(2) {
            assert_eq!(cmp(pair[0], pair[1]), Ordering::Less, "{pair:?}");
        }
        assert_eq!(cmp("v1.2", "1.2.0.0"), Ordering::Equal);
        assert_eq!(cmp("1.0.0+build", "1.0.0"), Ordering::Equal);
        assert_eq!(cmp("dev-main", "dev-main"), Ordering::Equal);
        assert!(compare("dev-main", "1.0").is_err());
        assert!(compare("dev-main", "dev-other").is_err());
    }
}

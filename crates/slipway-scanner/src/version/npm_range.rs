//! npm ranges as node-semver 7 (`semver.satisfies`, neither `loose` nor
//! `includePrerelease`) reads them.
//!
//! node-semver defines its range grammar as a series of regex rewrites (hyphen ranges,
//! operator trimming, carets, tildes, x-ranges, stars) over the range text, and the
//! rewrites' quirks are part of what npm accepts. So this follows the same stages on the
//! same text; each matcher mirrors one of node-semver's regexes, with the repetition
//! bounds of its "safe" variants (a digit run is at most 256 digits, an identifier's tail
//! at most 250 characters), and returns the match a backtracking engine would find first.

use std::cmp::Ordering;

use ::semver::Version;

use super::Scheme;
use super::semver::{is_js_whitespace, parse_npm};
use crate::ScanError;

/// Whether `version` satisfies the npm `range`. A range or version that node-semver
/// refuses is an error (where `semver.satisfies` just answers false).
pub fn npm_range_satisfies(range: &str, version: &str) -> Result<bool, ScanError> {
    let sets = parse_range(range).ok_or_else(|| Scheme::Semver.invalid(range, "not an npm version range"))?;
    let version = parse_npm(version)?;
    Ok(sets.iter().any(|set| test_set(set, &version)))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Op {
    Eq,
    Lt,
    Le,
    Gt,
    Ge,
}

struct Comparator {
    op: Op,
    /// `None` matches any version (node-semver's `ANY`).
    version: Option<Version>,
    /// node-semver's `value`: the operator and the version without build metadata.
    value: String,
}

const NULL_SET: &str = "<0.0.0-0";

/// node-semver's `Range` constructor: whitespace collapsed, `||` alternatives, then the
/// clean-ups of the set list.
fn parse_range(range: &str) -> Option<Vec<Vec<Comparator>>> {
    let raw = collapse_whitespace(range.trim_matches(is_js_whitespace));
    let mut sets = raw.split("||").map(|alternative| parse_alternative(alternative.trim_matches(' '))).collect::<Option<Vec<_>>>()?;
    // Sets that match nothing go, unless all do; a set that matches anything is then the
    // whole range (which drops the pre-releases the other sets would have let in).
    if sets.len() > 1 {
        if sets.iter().all(|set| set[0].value == NULL_SET) {
            sets.truncate(1);
        } else {
            sets.retain(|set| set[0].value != NULL_SET);
            if let Some(any) = sets.iter().position(|s| s.len() == 1 && s[0].version.is_none()) {
                sets = vec![sets.swap_remove(any)];
            }
        }
    }
    Some(sets)
}

/// Replaces each run of JavaScript whitespace by one space.
fn collapse_whitespace(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_space = false;
    for c in text.chars() {
        if is_js_whitespace(c) {
            if !in_space {
                out.push(' ');
            }
            in_space = true;
        } else {
            out.push(c);
            in_space = false;
        }
    }
    out
}

/// `"a  b ".split(/\s+/)` as JavaScript does it: leading and trailing runs leave an empty
/// piece, inner runs separate.
fn split_whitespace_js(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let mut rest = text;
    loop {
        match rest.find(' ') {
            Some(at) => {
                pieces.push(&rest[..at]);
                rest = rest[at..].trim_start_matches(' ');
            }
            None => {
                pieces.push(rest);
                return pieces;
            }
        }
    }
}

/// node-semver's `parseRange`: one `||` alternative to a set of comparators.
fn parse_alternative(alternative: &str) -> Option<Vec<Comparator>> {
    let text = replace_hyphen_range(alternative).unwrap_or_else(|| alternative.to_owned());
    let text = trim_comparators(&text);
    let text = trim_operator(&text, b'~');
    let text = trim_operator(&text, b'^');
    let rewritten: Vec<String> = text.split(' ').map(rewrite_comparator).collect();
    let joined = rewritten.join(" ");
    let comparators = split_whitespace_js(&joined)
        .into_iter()
        // `>=0.0.0` is `*`.
        .map(|c| if c == ">=0.0.0" { "" } else { c })
        .map(parse_comparator)
        .collect::<Option<Vec<_>>>()?;
    if let Some(null) = comparators.iter().position(|c| c.value == NULL_SET) {
        return Some(vec![comparators.into_iter().nth(null)?]);
    }
    // Duplicates collapse (the first position, the last one kept), and `*` goes when
    // anything else is there.
    let mut unique: Vec<Comparator> = Vec::new();
    for comparator in comparators {
        match unique.iter_mut().find(|c| c.value == comparator.value) {
            Some(existing) => *existing = comparator,
            None => unique.push(comparator),
        }
    }
    if unique.len() > 1 {
        unique.retain(|c| !c.value.is_empty());
    }
    Some(unique)
}

/// node-semver's `Comparator` constructor: `^((?:<|>)?=?)\s?(FULLPLAIN)$|^$`.
fn parse_comparator(text: &str) -> Option<Comparator> {
    if text.is_empty() {
        return Some(Comparator { op: Op::Eq, version: None, value: String::new() });
    }
    let s = text.as_bytes();
    for op_len in operator_lengths(s, 0) {
        for &space in optional_space(s, op_len) {
            let start = op_len + space;
            if full_plain(s, start) != Some(s.len()) {
                continue;
            }
            let (op, op_text) = match &text[..op_len] {
                "<" => (Op::Lt, "<"),
                "<=" => (Op::Le, "<="),
                ">" => (Op::Gt, ">"),
                ">=" => (Op::Ge, ">="),
                _ => (Op::Eq, ""),
            };
            let version = parse_npm(&text[start..]).ok()?;
            let value = format!("{op_text}{}", without_build(&version));
            return Some(Comparator { op, version: Some(version), value });
        }
    }
    None
}

fn without_build(version: &Version) -> String {
    let mut text = format!("{}.{}.{}", version.major, version.minor, version.patch);
    if !version.pre.is_empty() {
        text.push('-');
        text.push_str(version.pre.as_str());
    }
    text
}

/// node-semver's `testSet`: every comparator matches, and a pre-release version only
/// matches where a comparator names a pre-release of the same `major.minor.patch`.
fn test_set(set: &[Comparator], version: &Version) -> bool {
    let matches = |c: &Comparator| {
        let Some(bound) = &c.version else { return true };
        let ord = version.cmp_precedence(bound);
        match c.op {
            Op::Eq => ord == Ordering::Equal,
            Op::Lt => ord == Ordering::Less,
            Op::Le => ord != Ordering::Greater,
            Op::Gt => ord == Ordering::Greater,
            Op::Ge => ord != Ordering::Less,
        }
    };
    if !set.iter().all(matches) {
        return false;
    }
    version.pre.is_empty()
        || set
            .iter()
            .filter_map(|c| c.version.as_ref())
            .any(|bound| !bound.pre.is_empty() && (bound.major, bound.minor, bound.patch) == (version.major, version.minor, version.patch))
}

// ---------------------------------------------------------------- the rewrites

/// `HYPHENRANGE`: `1.2 - 3.4` becomes `>=1.2.0 <3.5.0-0`.
fn replace_hyphen_range(text: &str) -> Option<String> {
    let s = text.as_bytes();
    let from = xrange_plain(s, 0)?;
    let to_start = from.end + 3;
    if s.get(from.end..to_start) != Some(b" - ") {
        return None;
    }
    let to = xrange_plain(s, to_start)?;
    if to.end != s.len() {
        return None;
    }
    let part = |r: Option<(usize, usize)>| r.map(|(a, b)| &text[a..b]);
    let (f_major, f_minor, f_patch) = (part(Some(from.major)), part(from.minor), part(from.patch));
    let low = if is_x(f_major) {
        String::new()
    } else if is_x(f_minor) {
        format!(">={}.0.0", f_major?)
    } else if is_x(f_patch) {
        format!(">={}.{}.0", f_major?, f_minor?)
    } else {
        format!(">={}", &text[from.start..from.end])
    };
    let (t_major, t_minor, t_patch) = (part(Some(to.major)), part(to.minor), part(to.patch));
    let high = if is_x(t_major) {
        String::new()
    } else if is_x(t_minor) {
        format!("<{}.0.0-0", increment(t_major?))
    } else if is_x(t_patch) {
        format!("<{}.{}.0-0", t_major?, increment(t_minor?))
    } else if let Some(pre) = part(to.pre) {
        format!("<={}.{}.{}-{pre}", t_major?, t_minor?, t_patch?)
    } else {
        format!("<={}", &text[to.start..to.end])
    };
    Some(format!("{low} {high}").trim_matches(' ').to_owned())
}

/// `COMPARATORTRIM` (global): `> 1.2.3` becomes `>1.2.3`. A match is an optional space,
/// an operator, an optional space and a version; the second space is dropped.
fn trim_comparators(text: &str) -> String {
    let s = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < s.len() {
        match comparator_trim_at(s, at) {
            Some((end, dropped)) => {
                if let Some(space) = dropped {
                    out.push_str(&text[copied..space]);
                    copied = space + 1;
                }
                at = end;
            }
            None => at += 1,
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// One `COMPARATORTRIM` match starting at `at`, tried in a backtracking engine's order:
/// its end and the position of the space it drops, if any.
fn comparator_trim_at(s: &[u8], at: usize) -> Option<(usize, Option<usize>)> {
    for &lead in optional_space(s, at) {
        let op_at = at + lead;
        for op_len in operator_lengths(s, op_at) {
            let space_at = op_at + op_len;
            for &space in optional_space(s, space_at) {
                let version_at = space_at + space;
                if let Some(end) = loose_plain(s, version_at).or_else(|| xrange_plain(s, version_at).map(|m| m.end)) {
                    return Some((end, (space == 1).then_some(space_at)));
                }
            }
        }
    }
    None
}

/// `TILDETRIM` and `CARETTRIM` (global): `~ 1.2`, `~> 1.2` and `^ 1.2` lose the space
/// (and `~>` its `>`).
fn trim_operator(text: &str, operator: u8) -> String {
    let s = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    let mut at = 0;
    while at < s.len() {
        if s[at] == operator {
            let after = at + 1;
            let arrow = usize::from(operator == b'~' && s.get(after) == Some(&b'>'));
            let matched = [arrow, 0].into_iter().find(|&gt| s.get(after + gt) == Some(&b' ')).map(|gt| after + gt + 1);
            if let Some(end) = matched {
                out.push_str(&text[copied..after]);
                copied = end;
                at = end;
                continue;
            }
        }
        at += 1;
    }
    out.push_str(&text[copied..]);
    out
}

/// node-semver's `parseComparator` on one space-separated piece: build metadata out,
/// then carets, tildes, x-ranges and stars rewritten into plain comparators.
fn rewrite_comparator(piece: &str) -> String {
    let piece = remove_first_build(piece);
    let carets: Vec<String> = split_whitespace_js(piece.trim_matches(' ')).into_iter().map(replace_caret).collect();
    let carets = carets.join(" ");
    let tildes: Vec<String> = split_whitespace_js(carets.trim_matches(' ')).into_iter().map(replace_tilde).collect();
    let tildes = tildes.join(" ");
    let xranges: Vec<String> = split_whitespace_js(&tildes).into_iter().map(replace_xrange).collect();
    remove_first_star(xranges.join(" ").trim_matches(' '))
}

/// `comp.replace(BUILD, '')`: the first `+build` anywhere goes.
fn remove_first_build(text: &str) -> String {
    let s = text.as_bytes();
    (0..s.len()).find_map(|at| build(s, at).map(|end| format!("{}{}", &text[..at], &text[end..]))).unwrap_or_else(|| text.to_owned())
}

/// `comp.replace(STAR, '')`: the first `(<|>)?=?\s?\*` anywhere goes.
fn remove_first_star(text: &str) -> String {
    let s = text.as_bytes();
    for at in 0..s.len() {
        for &angle in optional(s, at, |c| c == b'<' || c == b'>') {
            for &eq in optional(s, at + angle, |c| c == b'=') {
                for &space in optional(s, at + angle + eq, |c| c == b' ') {
                    let star = at + angle + eq + space;
                    if s.get(star) == Some(&b'*') {
                        return format!("{}{}", &text[..at], &text[star + 1..]);
                    }
                }
            }
        }
    }
    text.to_owned()
}

/// `CARET`: `^1.2.3` becomes `>=1.2.3 <2.0.0-0`, `^0.1.2` becomes `>=0.1.2 <0.2.0-0`...
fn replace_caret(piece: &str) -> String {
    let s = piece.as_bytes();
    let Some(m) = (s.first() == Some(&b'^')).then(|| xrange_plain(s, 1)).flatten().filter(|m| m.end == s.len()) else {
        return piece.to_owned();
    };
    let part = |r: Option<(usize, usize)>| concrete(r.map(|(a, b)| &piece[a..b]));
    let Some(major) = part(Some(m.major)) else {
        return String::new();
    };
    let Some(minor) = part(m.minor) else {
        return format!(">={major}.0.0 <{}.0.0-0", increment(major));
    };
    let Some(patch) = part(m.patch) else {
        return if major == "0" {
            format!(">={major}.{minor}.0 <{major}.{}.0-0", increment(minor))
        } else {
            format!(">={major}.{minor}.0 <{}.0.0-0", increment(major))
        };
    };
    let pre = m.pre.map(|(a, b)| format!("-{}", &piece[a..b])).unwrap_or_default();
    let high = if major != "0" {
        format!("<{}.0.0-0", increment(major))
    } else if minor != "0" {
        format!("<{major}.{}.0-0", increment(minor))
    } else {
        format!("<{major}.{minor}.{}-0", increment(patch))
    };
    format!(">={major}.{minor}.{patch}{pre} {high}")
}

/// `TILDE`: `~1.2.3` becomes `>=1.2.3 <1.3.0-0`, `~1` becomes `>=1.0.0 <2.0.0-0`...
fn replace_tilde(piece: &str) -> String {
    let s = piece.as_bytes();
    let start = match s {
        [b'~', b'>', ..] if xrange_plain(s, 2).is_some_and(|m| m.end == s.len()) => 2,
        [b'~', ..] => 1,
        _ => return piece.to_owned(),
    };
    let Some(m) = xrange_plain(s, start).filter(|m| m.end == s.len()) else {
        return piece.to_owned();
    };
    let part = |r: Option<(usize, usize)>| concrete(r.map(|(a, b)| &piece[a..b]));
    let Some(major) = part(Some(m.major)) else {
        return String::new();
    };
    let Some(minor) = part(m.minor) else {
        return format!(">={major}.0.0 <{}.0.0-0", increment(major));
    };
    let high = format!("<{major}.{}.0-0", increment(minor));
    let Some(patch) = part(m.patch) else {
        return format!(">={major}.{minor}.0 {high}");
    };
    let pre = m.pre.map(|(a, b)| format!("-{}", &piece[a..b])).unwrap_or_default();
    format!(">={major}.{minor}.{patch}{pre} {high}")
}

/// `XRANGE`: `1.2.x` becomes `>=1.2.0 <1.3.0-0`, `>1.x` becomes `>=2.0.0`, `*` stays.
fn replace_xrange(piece: &str) -> String {
    let piece = piece.trim_matches(' ');
    let s = piece.as_bytes();
    let matched = operator_lengths(s, 0).into_iter().find_map(|op_len| {
        optional_space(s, op_len)
            .iter()
            .find_map(|&space| xrange_plain(s, op_len + space).filter(|m| m.end == s.len()).map(|m| (op_len, m)))
    });
    let Some((op_len, m)) = matched else {
        return piece.to_owned();
    };
    let part = |r: Option<(usize, usize)>| r.map(|(a, b)| &piece[a..b]);
    let (major, minor, patch) = (part(Some(m.major)), part(m.minor), part(m.patch));
    let x_major = is_x(major);
    let x_minor = x_major || is_x(minor);
    let x_patch = x_minor || is_x(patch);
    let mut op = &piece[..op_len];
    if op == "=" && x_patch {
        op = "";
    }
    if x_major {
        return if op == ">" || op == "<" { NULL_SET } else { "*" }.to_owned();
    }
    let major = major.unwrap_or_default();
    if !op.is_empty() && x_patch {
        let (mut major, mut minor) = (major.to_owned(), if x_minor { "0" } else { minor.unwrap_or_default() }.to_owned());
        let mut pre = "";
        match op {
            ">" => {
                op = ">=";
                if x_minor {
                    major = increment(&major);
                    minor = "0".to_owned();
                } else {
                    minor = increment(&minor);
                }
            }
            "<=" => {
                op = "<";
                if x_minor {
                    major = increment(&major);
                } else {
                    minor = increment(&minor);
                }
            }
            _ => {}
        }
        if op == "<" {
            pre = "-0";
        }
        return format!("{op}{major}.{minor}.0{pre}");
    }
    if x_minor {
        format!(">={major}.0.0 <{}.0.0-0", increment(major))
    } else if x_patch {
        let minor = minor.unwrap_or_default();
        format!(">={major}.{minor}.0 <{major}.{}.0-0", increment(minor))
    } else {
        piece.to_owned()
    }
}

/// node-semver's `isX`: a missing part, `x`, `X` or `*`.
fn is_x(part: Option<&str>) -> bool {
    matches!(part, None | Some("" | "x" | "X" | "*"))
}

/// The part when it is a number, `None` when it is an X.
fn concrete(part: Option<&str>) -> Option<&str> {
    part.filter(|p| !is_x(Some(p)))
}

/// `+n + 1` on a digit string, exactly. Where JavaScript's number would be inexact the
/// result is above 2^53 - 1 either way, and the comparator built from it is refused.
fn increment(digits: &str) -> String {
    let mut out: Vec<u8> = digits.bytes().collect();
    for d in out.iter_mut().rev() {
        if *d == b'9' {
            *d = b'0';
        } else {
            *d += 1;
            return String::from_utf8(out).expect("ASCII digits");
        }
    }
    out.insert(0, b'1');
    String::from_utf8(out).expect("ASCII digits")
}

// ---------------------------------------------------------------- the matchers

/// A match of `XRANGEPLAIN`, as byte ranges: the whole match and its captures.
struct XRange {
    start: usize,
    end: usize,
    major: (usize, usize),
    minor: Option<(usize, usize)>,
    patch: Option<(usize, usize)>,
    pre: Option<(usize, usize)>,
}

const MAX_DIGITS: usize = 256;
const MAX_TAIL: usize = 250;

/// Lengths `((?:<|>)?=?)` can take at `at`, longest first.
fn operator_lengths(s: &[u8], at: usize) -> Vec<usize> {
    let mut lengths = Vec::with_capacity(3);
    match s.get(at) {
        Some(b'<' | b'>') => {
            if s.get(at + 1) == Some(&b'=') {
                lengths.push(2);
            }
            lengths.push(1);
        }
        Some(b'=') => lengths.push(1),
        _ => {}
    }
    lengths.push(0);
    lengths
}

/// Lengths `\s?` can take at `at`, longest first.
fn optional_space(s: &[u8], at: usize) -> &'static [usize] {
    optional(s, at, |c| c == b' ')
}

/// Lengths an optional single character can take at `at`, longest first.
fn optional(s: &[u8], at: usize, class: impl Fn(u8) -> bool) -> &'static [usize] {
    if s.get(at).is_some_and(|&c| class(c)) { &[1, 0] } else { &[0] }
}

fn run(s: &[u8], at: usize, max: usize, class: impl Fn(u8) -> bool) -> usize {
    s.get(at..).unwrap_or_default().iter().take(max).take_while(|&&c| class(c)).count()
}

fn is_ident_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'-'
}

/// `0|[1-9]\d{0,256}`
fn numeric_identifier(s: &[u8], at: usize) -> Option<usize> {
    match s.get(at)? {
        b'0' => Some(at + 1),
        b'1'..=b'9' => Some(at + 1 + run(s, at + 1, MAX_DIGITS, |c| c.is_ascii_digit())),
        _ => None,
    }
}

/// `\d{0,256}[a-zA-Z-][a-zA-Z0-9-]{0,250}`
fn non_numeric_identifier(s: &[u8], at: usize) -> Option<usize> {
    let digits = run(s, at, usize::MAX, |c| c.is_ascii_digit());
    let letter = at + digits;
    if digits > MAX_DIGITS || !s.get(letter).is_some_and(|&c| c.is_ascii_alphabetic() || c == b'-') {
        return None;
    }
    Some(letter + 1 + run(s, letter + 1, MAX_TAIL, is_ident_char))
}

/// `PRERELEASEIDENTIFIER`
fn prerelease_identifier(s: &[u8], at: usize) -> Option<usize> {
    non_numeric_identifier(s, at).or_else(|| numeric_identifier(s, at))
}

/// `PRERELEASEIDENTIFIERLOOSE`
fn prerelease_identifier_loose(s: &[u8], at: usize) -> Option<usize> {
    non_numeric_identifier(s, at).or_else(|| {
        let digits = run(s, at, MAX_DIGITS, |c| c.is_ascii_digit());
        (digits > 0).then_some(at + digits)
    })
}

/// `BUILDIDENTIFIER`
fn build_identifier(s: &[u8], at: usize) -> Option<usize> {
    let len = run(s, at, MAX_TAIL, is_ident_char);
    (len > 0).then_some(at + len)
}

/// `ID(?:\.ID)*`
fn dotted(s: &[u8], at: usize, identifier: fn(&[u8], usize) -> Option<usize>) -> Option<usize> {
    let mut end = identifier(s, at)?;
    while s.get(end) == Some(&b'.') {
        match identifier(s, end + 1) {
            Some(next) => end = next,
            None => break,
        }
    }
    Some(end)
}

/// `PRERELEASE`: `-` and dotted identifiers; returns the end and the capture.
fn prerelease(s: &[u8], at: usize) -> Option<(usize, (usize, usize))> {
    if s.get(at) != Some(&b'-') {
        return None;
    }
    let end = dotted(s, at + 1, prerelease_identifier)?;
    Some((end, (at + 1, end)))
}

/// `PRERELEASELOOSE`: the hyphen is optional.
fn prerelease_loose(s: &[u8], at: usize) -> Option<usize> {
    if s.get(at) == Some(&b'-')
        && let Some(end) = dotted(s, at + 1, prerelease_identifier_loose)
    {
        return Some(end);
    }
    dotted(s, at, prerelease_identifier_loose)
}

/// `BUILD`
fn build(s: &[u8], at: usize) -> Option<usize> {
    if s.get(at) != Some(&b'+') {
        return None;
    }
    dotted(s, at + 1, build_identifier)
}

/// `[v=\s]*`
fn skip_prefix(s: &[u8], at: usize) -> usize {
    at + run(s, at, usize::MAX, |c| matches!(c, b'v' | b'=' | b' '))
}

/// `XRANGEIDENTIFIER`: `0|[1-9]\d{0,256}|x|X|\*`
fn xrange_identifier(s: &[u8], at: usize) -> Option<usize> {
    numeric_identifier(s, at).or_else(|| matches!(s.get(at)?, b'x' | b'X' | b'*').then_some(at + 1))
}

/// `XRANGEPLAIN`: `[v=\s]*M(.m(.p(PRERELEASE)?(BUILD)?)?)?` with `x`, `X` or `*` allowed
/// for any number.
fn xrange_plain(s: &[u8], at: usize) -> Option<XRange> {
    let major_at = skip_prefix(s, at);
    let major_end = xrange_identifier(s, major_at)?;
    let mut m = XRange { start: at, end: major_end, major: (major_at, major_end), minor: None, patch: None, pre: None };
    let Some(minor_end) = dot_then(s, m.end, xrange_identifier) else {
        return Some(m);
    };
    m.minor = Some((m.end + 1, minor_end));
    m.end = minor_end;
    let Some(patch_end) = dot_then(s, m.end, xrange_identifier) else {
        return Some(m);
    };
    m.patch = Some((m.end + 1, patch_end));
    m.end = patch_end;
    if let Some((end, pre)) = prerelease(s, m.end) {
        m.pre = Some(pre);
        m.end = end;
    }
    if let Some(end) = build(s, m.end) {
        m.end = end;
    }
    Some(m)
}

fn dot_then(s: &[u8], at: usize, part: fn(&[u8], usize) -> Option<usize>) -> Option<usize> {
    if s.get(at) == Some(&b'.') { part(s, at + 1) } else { None }
}

/// `LOOSEPLAIN`: `[v=\s]*\d+\.\d+\.\d+(PRERELEASELOOSE)?(BUILD)?`
fn loose_plain(s: &[u8], at: usize) -> Option<usize> {
    let mut end = skip_prefix(s, at);
    for _ in 0..2 {
        let digits = run(s, end, usize::MAX, |c| c.is_ascii_digit());
        if digits == 0 || digits > MAX_DIGITS || s.get(end + digits) != Some(&b'.') {
            return None;
        }
        end += digits + 1;
    }
    let digits = run(s, end, MAX_DIGITS, |c| c.is_ascii_digit());
    if digits == 0 {
        return None;
    }
    end += digits;
    if let Some(pre_end) = prerelease_loose(s, end) {
        end = pre_end;
    }
    Some(build(s, end).unwrap_or(end))
}

/// `FULLPLAIN`: `v?M.m.p(PRERELEASE)?(BUILD)?`
fn full_plain(s: &[u8], at: usize) -> Option<usize> {
    let mut end = if s.get(at) == Some(&b'v') { at + 1 } else { at };
    end = numeric_identifier(s, end)?;
    end = dot_then(s, end, numeric_identifier)?;
    end = dot_then(s, end, numeric_identifier)?;
    if let Some((pre_end, _)) = prerelease(s, end) {
        end = pre_end;
    }
    Some(build(s, end).unwrap_or(end))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sat(range: &str, version: &str) -> bool {
        npm_range_satisfies(range, version).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Examples from node-semver's README.
    #[test]
    fn readme_examples() {
        assert!(sat("1.x || >=2.5.0 || 5.0.0 - 7.2.3", "1.2.3"));
        assert!(sat(">=1.2.7", "1.2.8") && !sat(">=1.2.7", "1.2.6"));
        assert!(sat(">=1.2.7 <1.3.0", "1.2.99") && !sat(">=1.2.7 <1.3.0", "1.3.0"));
        assert!(sat("1.2.7 || >=1.2.9 <2.0.0", "1.4.6") && !sat("1.2.7 || >=1.2.9 <2.0.0", "1.2.8"));
        // Pre-releases only match a comparator on the same major.minor.patch.
        assert!(sat(">1.2.3-alpha.3", "1.2.3-alpha.7"));
        assert!(!sat(">1.2.3-alpha.3", "3.4.5-alpha.9"));
        assert!(sat(">1.2.3-alpha.3", "3.4.5"));
        // Hyphen ranges.
        assert!(sat("1.2 - 2.3.4", "1.2.0") && !sat("1.2 - 2.3.4", "2.3.5"));
        assert!(sat("1.2.3 - 2.3", "2.3.9") && !sat("1.2.3 - 2.3", "2.4.0"));
        assert!(sat("1.2.3 - 2", "2.9.9") && !sat("1.2.3 - 2", "3.0.0"));
        // X-ranges.
        assert!(sat("*", "0.0.0") && sat("", "99.0.0") && sat("1.x", "1.9.9"));
        assert!(!sat("1.2.x", "1.3.0") && sat("1", "1.5.0"));
        // Tilde and caret.
        assert!(sat("~1.2.3", "1.2.9") && !sat("~1.2.3", "1.3.0"));
        assert!(sat("~1", "1.9.0") && !sat("~0.2", "0.3.0"));
        assert!(sat("~1.2.3-beta.2", "1.2.3-beta.4") && !sat("~1.2.3-beta.2", "1.2.4-beta.2"));
        assert!(sat("^1.2.3", "1.9.9") && !sat("^1.2.3", "2.0.0"));
        assert!(sat("^0.2.3", "0.2.9") && !sat("^0.2.3", "0.3.0"));
        assert!(sat("^0.0.3", "0.0.3") && !sat("^0.0.3", "0.0.4"));
        assert!(sat("^1.2.3-beta.2", "1.2.3-beta.4") && !sat("^1.2.3-beta.2", "1.2.4-beta.2"));
        assert!(sat("^0.0.x", "0.0.9") && !sat("^0.0", "0.1.0") && sat("^1.x", "1.0.0"));
    }

    #[test]
    fn rewrites_quirks() {
        assert!(sat(">= 1.2.3 < 2", "1.5.0"));
        assert!(sat("~> 1.2", "1.2.5") && sat("^ 1.2", "1.9.0"));
        assert!(sat("v1.2.3", "1.2.3") && sat("=1.2.3", "1.2.3"));
        assert!(sat("1.2.3+build", "1.2.3"));
        assert!(!sat(">1.x", "1.9.9") && sat(">1.x", "2.0.0"));
        assert!(!sat("<1.x", "1.0.0") && !sat(">*", "1.0.0") && !sat("<*", "1.0.0"));
        assert!(sat("<=1.2", "1.2.9") && !sat("<=1.2", "1.3.0"));
        // Any set that is `*` swallows the others, pre-releases included.
        assert!(!sat("1.2.3-beta || *", "1.2.3-beta"));
        assert!(sat("1.2.3-beta || 1.x", "1.2.3-beta"));
    }

    #[test]
    fn refusals() {
        for range in [">=a", "1.2.3 - ", "=1.2.3 - 2", "^9007199254740991.0.0", "<01.2.3", "1.2.3.4"] {
            assert!(npm_range_satisfies(range, "1.0.0").is_err(), "{range:?} should be refused");
        }
        assert!(npm_range_satisfies("*", "1.2").is_err());
        assert!(npm_range_satisfies("*", "=1.2.3").is_err());
    }

    #[test]
    fn javascript_split() {
        assert_eq!(split_whitespace_js(""), [""]);
        assert_eq!(split_whitespace_js(" a"), ["", "a"]);
        assert_eq!(split_whitespace_js("a  b "), ["a", "b", ""]);
        assert_eq!(increment("9"), "10");
        assert_eq!(increment("199"), "200");
    }
}

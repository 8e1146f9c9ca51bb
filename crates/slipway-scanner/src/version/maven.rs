//! Maven versions, ordered as Maven 3.9's `ComparableVersion` does. Any string is a
//! Maven version.
//!
//! The version splits into items: numbers, qualifiers and sub-lists (a `-`, or a switch
//! between letters and digits, opens a sub-list); trailing "null" items (`0`, `""`, `ga`,
//! `final`, `release`, empty lists) are dropped before comparing.
//!
//! Digits are ASCII digits; Java's `Character.isDigit` also takes other scripts' digits.

use std::cmp::Ordering;

#[derive(Debug, PartialEq, Eq)]
enum Item {
    /// Maven keeps numbers as `int`, `long` or `BigInteger` by digit count, and orders
    /// numbers of different kinds by kind alone: `size` is that kind.
    Number {
        size: NumberSize,
        digits: String,
    },
    Text(String),
    List(Vec<Item>),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum NumberSize {
    Int,
    Long,
    Big,
}

/// Known qualifiers in order; the empty one is the release.
const QUALIFIERS: [&str; 7] = ["alpha", "beta", "milestone", "rc", "snapshot", "", "sp"];
const RELEASE_INDEX: &str = "5";

pub(super) fn compare(a: &str, b: &str) -> Ordering {
    compare_lists(&parse(a), &parse(b))
}

impl Item {
    fn number(digits: &str) -> Item {
        // Leading zeros go, unless the digits are all zeros (then they stay, and count).
        let stripped = match digits.trim_start_matches('0') {
            "" => digits,
            rest => rest,
        };
        let size = match stripped.len() {
            0..=9 => NumberSize::Int,
            10..=18 => NumberSize::Long,
            _ => NumberSize::Big,
        };
        Item::Number { size, digits: stripped.to_owned() }
    }

    fn text(text: &str, followed_by_digit: bool) -> Item {
        let text = match text {
            "a" if followed_by_digit => "alpha",
            "b" if followed_by_digit => "beta",
            "m" if followed_by_digit => "milestone",
            "ga" | "final" | "release" => "",
            "cr" => "rc",
            other => other,
        };
        Item::Text(text.to_owned())
    }

    fn zero() -> Item {
        Item::number("0")
    }

    fn is_null(&self) -> bool {
        match self {
            Item::Number { digits, .. } => digits.bytes().all(|d| d == b'0'),
            Item::Text(text) => text.is_empty(),
            Item::List(items) => items.is_empty(),
        }
    }

    /// `compareTo(null)`: this item against nothing (a shorter version).
    fn cmp_missing(&self) -> Ordering {
        match self {
            Item::Number { .. } => {
                if self.is_null() {
                    Ordering::Equal
                } else {
                    Ordering::Greater
                }
            }
            Item::Text(text) => cmp_utf16(&comparable_qualifier(text), RELEASE_INDEX),
            Item::List(items) => items.iter().map(Item::cmp_missing).find(|o| o.is_ne()).unwrap_or(Ordering::Equal),
        }
    }

    fn cmp_item(&self, other: &Item) -> Ordering {
        match (self, other) {
            (Item::Number { size: sa, digits: da }, Item::Number { size: sb, digits: db }) => {
                sa.cmp(sb).then_with(|| super::cmp_digits(da.as_bytes(), db.as_bytes()))
            }
            (Item::Number { .. }, _) => Ordering::Greater,
            (Item::Text(a), Item::Text(b)) => cmp_utf16(&comparable_qualifier(a), &comparable_qualifier(b)),
            (Item::Text(_), _) => Ordering::Less,
            (Item::List(_), Item::Number { .. }) => Ordering::Less,
            (Item::List(_), Item::Text(_)) => Ordering::Greater,
            (Item::List(a), Item::List(b)) => compare_lists(a, b),
        }
    }
}

fn compare_lists(a: &[Item], b: &[Item]) -> Ordering {
    for i in 0..a.len().max(b.len()) {
        let ord = match (a.get(i), b.get(i)) {
            (Some(l), Some(r)) => l.cmp_item(r),
            (Some(l), None) => l.cmp_missing(),
            (None, Some(r)) => r.cmp_missing().reverse(),
            (None, None) => Ordering::Equal,
        };
        if ord.is_ne() {
            return ord;
        }
    }
    Ordering::Equal
}

/// Known qualifiers sort by position, unknown ones after them, by text.
fn comparable_qualifier(qualifier: &str) -> String {
    match QUALIFIERS.iter().position(|q| *q == qualifier) {
        Some(i) => i.to_string(),
        None => format!("{}-{qualifier}", QUALIFIERS.len()),
    }
}

/// Java's `String.compareTo`: by UTF-16 code units.
fn cmp_utf16(a: &str, b: &str) -> Ordering {
    a.encode_utf16().cmp(b.encode_utf16())
}

/// `ComparableVersion.parseVersion`, with the stack of open lists as a path of indices.
fn parse(version: &str) -> Vec<Item> {
    let version = version.to_lowercase();
    let mut root = Vec::new();
    // Each open list is reached from the root through the last item of its parent.
    let mut depth = 0;
    let mut is_digit = false;
    let mut start = 0;
    let chars: Vec<(usize, char)> = version.char_indices().collect();
    for &(i, c) in &chars {
        let list = open_list(&mut root, depth);
        if c == '.' || c == '-' {
            list.push(if i == start { Item::zero() } else { parse_item(is_digit, &version[start..i]) });
            start = i + c.len_utf8();
            if c == '-' {
                list.push(Item::List(Vec::new()));
                depth += 1;
            }
        } else if c.is_ascii_digit() {
            if !is_digit && i > start {
                if !list.is_empty() {
                    list.push(Item::List(Vec::new()));
                    depth += 1;
                }
                let list = open_list(&mut root, depth);
                list.push(Item::text(&version[start..i], true));
                start = i;
                list.push(Item::List(Vec::new()));
                depth += 1;
            }
            is_digit = true;
        } else {
            if is_digit && i > start {
                list.push(parse_item(true, &version[start..i]));
                start = i;
                list.push(Item::List(Vec::new()));
                depth += 1;
            }
            is_digit = false;
        }
    }
    if version.len() > start {
        let list = open_list(&mut root, depth);
        if !is_digit && !list.is_empty() {
            list.push(Item::List(Vec::new()));
            depth += 1;
        }
        open_list(&mut root, depth).push(parse_item(is_digit, &version[start..]));
    }
    normalize_open_lists(&mut root, depth);
    root
}

/// The list opened `depth` levels down: always the last item of its parent.
fn open_list(root: &mut Vec<Item>, depth: usize) -> &mut Vec<Item> {
    let mut list = root;
    for _ in 0..depth {
        list = match list.last_mut() {
            Some(Item::List(items)) => items,
            _ => unreachable!("an open list is the last item of its parent"),
        };
    }
    list
}

/// `ListItem.normalize` on every list that was opened, innermost first: trailing null
/// items go, stopping at the first non-null item that is not a list.
fn normalize_open_lists(root: &mut Vec<Item>, depth: usize) {
    for level in (0..=depth).rev() {
        let list = open_list(root, level);
        let mut i = list.len();
        while i > 0 {
            i -= 1;
            if list[i].is_null() {
                list.remove(i);
            } else if !matches!(list[i], Item::List(_)) {
                break;
            }
        }
    }
}

fn parse_item(is_digit: bool, text: &str) -> Item {
    if is_digit { Item::number(text) } else { Item::text(text, false) }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmp(a: &str, b: &str) -> Ordering {
        compare(a, b)
    }

    /// Orderings from Maven's ComparableVersionTest.
    #[test]
    fn maven_test_suite_orderings() {
        let qualifiers = [
            "1-alpha2snapshot",
            "1-alpha2",
            "1-alpha-123",
            "1-beta-2",
            "1-beta123",
            "1-m2",
            "1-m11",
            "1-rc",
            "1-cr2",
            "1-rc123",
            "1-SNAPSHOT",
            "1",
            "1-sp",
            "1-sp2",
            "1-sp123",
            "1-abc",
            "1-def",
            "1-pom-1",
            "1-1-snapshot",
            "1-1",
            "1-2",
            "1-123",
            "2",
        ];
        let numbers = [
            "2.0", "2.0.a", "2-1", "2.0.2", "2.0.123", "2.1.0", "2.1-a", "2.1b", "2.1-c", "2.1-1", "2.1.0.1", "2.2", "2.123", "11.a2",
            "11.a11", "11.b2", "11.b11", "11.m2", "11.m11", "11", "11.a", "11b", "11c", "11m",
        ];
        for list in [&qualifiers[..], &numbers[..]] {
            for pair in list.windows(2) {
                assert_eq!(cmp(pair[0], pair[1]), Ordering::Less, "{pair:?}");
                assert_eq!(cmp(pair[1], pair[0]), Ordering::Greater, "{pair:?}");
            }
        }
    }

    #[test]
    fn equal_spellings() {
        let same = [
            ("1", "1.0"),
            ("1", "1.0.0"),
            ("1.0", "1.0.0"),
            ("1", "1-0"),
            ("1", "1.0-0"),
            ("1.0", "1.0-0"),
            ("1a", "1-a"),
            ("1a", "1.0-a"),
            ("1a", "1.0.0-a"),
            ("1.0a", "1-a"),
            ("1.0.0a", "1-a"),
            ("1x", "1-x"),
            ("1x", "1.0-x"),
            ("1.0x", "1-x"),
            ("1.0.0x", "1-x"),
            ("1ga", "1"),
            ("1release", "1"),
            ("1final", "1"),
            ("1cr", "1rc"),
            ("1a1", "1-alpha-1"),
            ("1b2", "1-beta-2"),
            ("1m3", "1-milestone-3"),
            ("1X", "1x"),
            ("1A", "1a"),
            ("1B", "1b"),
            ("1M", "1m"),
            ("1Ga", "1"),
            ("1GA", "1"),
            ("1RELEASE", "1"),
            ("1release", "1"),
            ("1RELeaSE", "1"),
            ("1Final", "1"),
            ("1FinaL", "1"),
            ("1FINAL", "1"),
            ("1Cr", "1Rc"),
            ("1cR", "1rC"),
            ("1m3", "1Milestone3"),
            ("1m3", "1MileStone3"),
            ("1m3", "1MILESTONE3"),
        ];
        for (a, b) in same {
            assert_eq!(cmp(a, b), Ordering::Equal, "{a} = {b}");
        }
    }

    #[test]
    fn number_kinds() {
        // All-zero digits keep their length: ten zeros make a `long` item, which Maven
        // orders above any `int`, though it is still null at the end of a version.
        assert_eq!(cmp("1.0000000000.1", "1.5"), Ordering::Greater);
        assert_eq!(cmp("1.0000000000", "1"), Ordering::Equal);
        assert_eq!(cmp("1.2147483648", "1.2147483647"), Ordering::Greater);
        assert_eq!(cmp("1.99999999999999999999", "1.9223372036854775808"), Ordering::Greater);
        assert_eq!(cmp("1.0123", "1.123"), Ordering::Equal);
    }
}

//! Alpine versions, `digits{.digits}{letter}{_suffix{digits}}{~hash}{-rN}`, ordered as
//! apk-tools' `apk_version_compare` does. A string that `apk_version_validate` refuses
//! is an error.

use std::cmp::Ordering;

use super::Scheme;
use crate::ScanError;

/// Token kinds in the order apk declares them: at the first point where two versions
/// differ in kind, the higher kind is the older version (`1.0` < `1.0.1`, `1.0` <
/// `1.0-r1`), except that a pre-release suffix is older than anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    InitialDigit,
    Digit,
    Letter,
    Suffix,
    SuffixNo,
    CommitHash,
    RevisionNo,
    End,
    Invalid,
}

/// Suffixes by rank; `None` is the pivot between pre-releases and post-releases.
const SUFFIXES: [&str; 10] = ["alpha", "beta", "pre", "rc", "", "cvs", "svn", "git", "hg", "p"];
const SUFFIX_NONE: usize = 4;

struct Token<'a> {
    kind: Kind,
    /// The token's text: the digits of a number, the letter, the suffix or the hash.
    text: &'a [u8],
    /// Digits' value as apk reads them (wrapping past `u64`), or the suffix's rank.
    value: u64,
}

struct Tokens<'a> {
    rest: &'a [u8],
    token: Token<'a>,
}

impl<'a> Tokens<'a> {
    fn new(version: &'a str) -> Self {
        let mut tokens = Tokens { rest: version.as_bytes(), token: Token { kind: Kind::InitialDigit, text: &[], value: 0 } };
        tokens.digits();
        tokens
    }

    fn digits(&mut self) {
        let len = self.rest.iter().take_while(|c| c.is_ascii_digit()).count();
        let (text, rest) = self.rest.split_at(len);
        self.token.text = text;
        self.token.value = text.iter().fold(0u64, |value, &d| value.wrapping_mul(10).wrapping_add(u64::from(d - b'0')));
        self.rest = rest;
        if len == 0 {
            self.token.kind = Kind::Invalid;
        }
    }

    /// apk's `token_next`: the next token's kind follows from its first character, and
    /// must be allowed after the current one.
    fn advance(&mut self) {
        let kind = self.token.kind;
        let Some(&first) = self.rest.first() else {
            self.token.kind = Kind::End;
            return;
        };
        match first {
            b'a'..=b'z' if kind <= Kind::Digit => {
                self.token = Token { kind: Kind::Letter, text: &self.rest[..1], value: u64::from(first) };
                self.rest = &self.rest[1..];
            }
            b'.' | b'0'..=b'9' => {
                if first == b'.' {
                    if kind > Kind::Digit {
                        self.token.kind = Kind::Invalid;
                        return;
                    }
                    self.rest = &self.rest[1..];
                }
                self.token.kind = match kind {
                    Kind::InitialDigit | Kind::Digit => Kind::Digit,
                    Kind::Suffix => Kind::SuffixNo,
                    _ => {
                        self.token.kind = Kind::Invalid;
                        return;
                    }
                };
                self.digits();
            }
            b'_' if kind <= Kind::SuffixNo => {
                let len = self.rest[1..].iter().take_while(|c| c.is_ascii_lowercase()).count();
                let name = &self.rest[1..=len];
                self.rest = &self.rest[1 + len..];
                match SUFFIXES.iter().position(|s| !s.is_empty() && s.as_bytes() == name) {
                    Some(rank) => self.token = Token { kind: Kind::Suffix, text: name, value: rank as u64 },
                    None => self.token.kind = Kind::Invalid,
                }
            }
            b'~' if kind < Kind::CommitHash => {
                let len = self.rest[1..].iter().take_while(|c| matches!(c, b'0'..=b'9' | b'a'..=b'f')).count();
                self.token = Token { kind: if len == 0 { Kind::Invalid } else { Kind::CommitHash }, text: &self.rest[1..=len], value: 0 };
                self.rest = &self.rest[1 + len..];
            }
            b'-' if kind < Kind::RevisionNo && self.rest.starts_with(b"-r") => {
                self.rest = &self.rest[2..];
                self.token.kind = Kind::RevisionNo;
                self.digits();
            }
            _ => self.token.kind = Kind::Invalid,
        }
    }
}

/// apk's `token_cmp` for two tokens of the same kind.
fn token_cmp(a: &Token<'_>, b: &Token<'_>) -> Ordering {
    match a.kind {
        // A leading zero makes a component a string, as in Gentoo: 1.01 < 1.1.
        Kind::Digit if a.text[0] == b'0' || b.text[0] == b'0' => a.text.cmp(b.text),
        Kind::InitialDigit | Kind::Digit | Kind::SuffixNo | Kind::RevisionNo | Kind::Letter | Kind::Suffix => a.value.cmp(&b.value),
        _ => a.text.cmp(b.text),
    }
}

fn validate(version: &str) -> Result<(), ScanError> {
    let mut tokens = Tokens::new(version);
    while tokens.token.kind < Kind::End {
        tokens.advance();
    }
    if tokens.token.kind == Kind::Invalid {
        return Err(Scheme::Apk.invalid(version, "not an apk version"));
    }
    Ok(())
}

pub(super) fn compare(a: &str, b: &str) -> Result<Ordering, ScanError> {
    validate(a)?;
    validate(b)?;
    let (mut ta, mut tb) = (Tokens::new(a), Tokens::new(b));
    while ta.token.kind == tb.token.kind && ta.token.kind < Kind::End {
        let ord = token_cmp(&ta.token, &tb.token);
        if ord != Ordering::Equal {
            return Ok(ord);
        }
        ta.advance();
        tb.advance();
    }
    let (ka, kb) = (ta.token.kind, tb.token.kind);
    let pre_release = |t: &Token<'_>| t.kind == Kind::Suffix && t.value < SUFFIX_NONE as u64;
    Ok(if ka == kb {
        Ordering::Equal
    } else if pre_release(&ta.token) {
        Ordering::Less
    } else if pre_release(&tb.token) {
        Ordering::Greater
    } else {
        kb.cmp(&ka)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pairs from apk-tools' own version test data.
    #[test]
    fn apk_tools_orderings() {
        let cases = [
            ("2.34", ">", "0.1.0_alpha"),
            ("0.1.0_alpha", "=", "0.1.0_alpha"),
            ("0.1.0_alpha2", ">", "0.1.0_alpha"),
            ("1.0.4-r3", "<", "1.0.4-r4"),
            ("1.1", ">", "1.1_alpha1"),
            ("1.2.1", ">", "1.2"),
            ("1.3_alpha2", "<", "1.3_alpha3"),
            ("2.3.0b-r1", "<", "2.3.0b-r2"),
            ("3.1_p16", "<", "3.1_p17"),
            ("1.06-r6", "<", "006"),
            ("1.2.2-r1", ">", "1.2.2"),
            ("2.59", "<", "20050718-r1"),
            ("3.0.20060720", "<", "20060720"),
            ("2.1.9.200602141850", ">", "1.6"),
            ("2.5.1-r8", "<", "2.5.1a-r1"),
            ("1.6d", ">", "1.2.07.8"),
            ("1.2.07.8", "<", "1.2.12.04"),
            ("0.20070118", "<", "0.20070207_rc1"),
            ("4.5_p1-r1", ">", "4.5_p1"),
            ("0.9.8c-r1", "<", "0.9.8d"),
            ("2.12r-r4", "<", "2.12r-r5"),
            ("7.0.17", "<", "7.0.174"),
            ("0.1.0_alpha_pre2", "<", "0.1.0_alpha"),
            ("1.0_p10-r0", ">", "1.0_p9-r0"),
            ("6.0_pre1", "<", "6.0"),
            ("6.0_p1", ">", "6.0"),
            ("8.2.0", "<", "8.2.001"),
            ("8.2.0015", "<", "8.2.002"),
            ("1.0~1234", "<", "1.0~2345"),
            ("1.0~1234-r1", "<", "1.0~2345-r0"),
            ("1.0~1234-r1", ">", "1.0~1234-r0"),
        ];
        for (a, op, b) in cases {
            let expected = match op {
                "<" => Ordering::Less,
                "=" => Ordering::Equal,
                _ => Ordering::Greater,
            };
            assert_eq!(compare(a, b).unwrap(), expected, "{a} {op} {b}");
            assert_eq!(compare(b, a).unwrap(), expected.reverse(), "{b} vs {a}");
        }
    }

    #[test]
    fn suffix_ranks() {
        let ascending = [
            "1.0_alpha",
            "1.0_beta",
            "1.0_pre",
            "1.0_rc",
            "1.0",
            "1.0-r1",
            "1.0_cvs",
            "1.0_svn",
            "1.0_git",
            "1.0_hg",
            "1.0_p",
            "1.0a",
            "1.0.0",
        ];
        for pair in ascending.windows(2) {
            assert_eq!(compare(pair[0], pair[1]).unwrap(), Ordering::Less, "{pair:?}");
        }
    }

    #[test]
    fn validation_follows_apk() {
        for good in ["1.2", "0.1_pre2", "0.1_pre2~1234abcd", "0.1_p1_pre2", "0.1_git20240101_pre1"] {
            assert!(validate(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "0.1bc",
            "0.1bc1",
            "0.1a1",
            "0.1a.1",
            "0.1_pre2~",
            "0.1_pre2~1234xbcd",
            "0.1_pre2~1234abcd_pre1",
            "0.1_pre2-r1~1234xbcd",
            "0.1_foobar",
            "0.1_foobar1",
            "0.1-pre1.1",
            "0.1-r",
            "0.1-r2_pre1",
            "0.1-r2_p3_pre1",
            "0.1-r2-r3",
            "0.1-r2.1",
            ".1",
            "a",
            "_pre1",
            "-r1",
            "0.1_",
            "0.1_-r0",
            "0.1__alpha",
            "0.1_1_alpha",
            "1.0~ABCD",
        ] {
            assert!(validate(bad).is_err(), "{bad:?} should be refused");
        }
    }
}

//! What an access token may be limited to: actions on repositories matching a pattern,
//! and scopes of the REST API.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// An action on a repository of the registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RepoAction {
    Pull,
    Push,
    Delete,
}

impl RepoAction {
    pub const ALL: [RepoAction; 3] = [RepoAction::Pull, RepoAction::Push, RepoAction::Delete];

    pub fn as_str(self) -> &'static str {
        match self {
            RepoAction::Pull => "pull",
            RepoAction::Push => "push",
            RepoAction::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<RepoAction> {
        match s {
            "pull" => Some(RepoAction::Pull),
            "push" => Some(RepoAction::Push),
            "delete" => Some(RepoAction::Delete),
            _ => None,
        }
    }
}

impl fmt::Display for RepoAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scope of the REST API (`/api/v1`) written on an access token as `api:read`,
/// `api:write` or `api:fulfillment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ApiScope {
    /// Reading: GET and HEAD.
    Read,
    /// Everything `Read` allows, and changing state (POST, PUT, PATCH, DELETE).
    Write,
    /// Reserved for the fulfillment calls of commerce (a seller's systems confirming orders);
    /// accepted and stored now so tokens made for it keep working, but no endpoint needs it
    /// yet and it allows nothing else.
    Fulfillment,
}

impl ApiScope {
    pub fn as_str(self) -> &'static str {
        match self {
            ApiScope::Read => "read",
            ApiScope::Write => "write",
            ApiScope::Fulfillment => "fulfillment",
        }
    }

    pub fn parse(s: &str) -> Option<ApiScope> {
        match s {
            "read" => Some(ApiScope::Read),
            "write" => Some(ApiScope::Write),
            "fulfillment" => Some(ApiScope::Fulfillment),
            _ => None,
        }
    }
}

/// A limit written on an access token: which repositories (a glob where `*` matches any
/// run of characters, `/` included) and which actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RepositoryRule {
    pub repositories: String,
    pub actions: BTreeSet<RepoAction>,
}

impl RepositoryRule {
    /// Parses the CLI form `PATTERN:ACTION[,ACTION...]`, e.g. `acme/*:pull,push`.
    pub fn parse(text: &str) -> Option<RepositoryRule> {
        let (pattern, actions) = text.rsplit_once(':')?;
        let actions: BTreeSet<RepoAction> = actions.split(',').map(RepoAction::parse).collect::<Option<_>>()?;
        (!pattern.is_empty() && !actions.is_empty()).then(|| RepositoryRule { repositories: pattern.to_owned(), actions })
    }

    pub fn matches(&self, repository: &str) -> bool {
        glob_match(self.repositories.as_bytes(), repository.as_bytes())
    }
}

/// Actions on `repository` that a token with these rules may use at most.
pub(crate) fn token_allows(rules: &[RepositoryRule], repository: &str) -> BTreeSet<RepoAction> {
    rules.iter().filter(|r| r.matches(repository)).flat_map(|r| r.actions.iter().copied()).collect()
}

/// Whether `text` matches `pattern`, where `*` matches any run of bytes (`/` included).
///
/// Iterative, with a single backtrack point: on a mismatch, only the most recent `*` is
/// made to absorb one more byte. Earlier stars never need revisiting, because whatever
/// an earlier star could absorb the later one can too (`*` matches any run). So the work
/// is at most pattern length x text length, and the stack does not grow with the pattern
/// (a recursive matcher overflowed it on 40,000 stars, and backtracked exponentially on
/// `*a*a*a...b`).
pub fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // (pattern index just after the last star, text index that star's run ends at)
    let mut resume: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                resume = Some((p, t));
            }
            Some(&c) if c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match resume {
                Some((after_star, end)) => {
                    p = after_star;
                    t = end + 1;
                    resume = Some((after_star, end + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_rules_match_globs() {
        let rules = vec![RepositoryRule::parse("acme/*:pull").unwrap(), RepositoryRule::parse("acme/ci/app:push").unwrap()];
        assert_eq!(token_allows(&rules, "acme/deep/er/x"), [RepoAction::Pull].into());
        assert_eq!(token_allows(&rules, "acme/ci/app"), [RepoAction::Pull, RepoAction::Push].into());
        assert!(token_allows(&rules, "other/x").is_empty());
        assert!(RepositoryRule::parse("acme/*:fly").is_none());
        assert!(RepositoryRule::parse(":pull").is_none());
    }

    /// The plain recursive definition, as an oracle on small cases only.
    fn reference_match(pattern: &[u8], text: &[u8]) -> bool {
        match pattern.split_first() {
            None => text.is_empty(),
            Some((b'*', rest)) => (0..=text.len()).any(|i| reference_match(rest, &text[i..])),
            Some((c, rest)) => text.first() == Some(c) && reference_match(rest, &text[1..]),
        }
    }

    #[test]
    fn glob_matcher_agrees_with_the_reference_on_random_small_cases() {
        // A small xorshift generator: deterministic, no dependency.
        let mut state = 0x9E37_79B9_7F4A_7C15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let (mut matched, mut total) = (0, 0);
        for _ in 0..50_000 {
            let pattern: Vec<u8> = (0..next() % 8).map(|_| b"ab*/"[(next() % 4) as usize]).collect();
            let text: Vec<u8> = (0..next() % 10).map(|_| b"ab/"[(next() % 3) as usize]).collect();
            let expected = reference_match(&pattern, &text);
            assert_eq!(
                glob_match(&pattern, &text),
                expected,
                "{:?} against {:?}",
                String::from_utf8_lossy(&pattern),
                String::from_utf8_lossy(&text)
            );
            matched += usize::from(expected);
            total += 1;
        }
        // The cases exercise both answers, not just one.
        assert!(matched > total / 20 && matched < total - total / 20, "{matched} of {total} matched");
    }

    #[test]
    fn glob_matching_edge_cases() {
        for (pattern, text, expected) in [
            ("", "", true),
            ("", "a", false),
            ("*", "", true),
            ("*", "acme/deep/x", true),
            ("acme/*", "acme/", true),
            ("acme/*", "acme", false),
            ("a*b*c", "abc", true),
            ("a*b*c", "axxbyyc", true),
            ("a*b*c", "axxbyyca", false),
            ("*a", "bbba", true),
            ("*a", "bbab", false),
            ("a**b", "ab", true),
            ("acme/app", "acme/app", true),
            ("acme/app", "acme/ap", false),
        ] {
            assert_eq!(glob_match(pattern.as_bytes(), text.as_bytes()), expected, "{pattern:?} against {text:?}");
        }
    }

    /// Issue 14, item 1: 40,000 `*` overflowed the stack of the recursive matcher and
    /// aborted the process.
    #[test]
    fn forty_thousand_stars_do_not_overflow_the_stack() {
        let pattern = "*".repeat(40_000);
        assert!(glob_match(pattern.as_bytes(), b"acme/app"));
        let rule = RepositoryRule { repositories: format!("{pattern}x"), actions: [RepoAction::Pull].into() };
        assert!(!rule.matches("acme/app"));
        assert!(rule.matches("acme/appx"));
    }

    /// Issue 14, item 2: `*a*a*a*a*a*a*a*a*a*a*b` against 255 characters backtracked
    /// exponentially (years of CPU). The answer must come, and be right.
    #[test]
    fn many_stars_against_a_long_name_answer_correctly() {
        let pattern = "*a".repeat(10) + "*b";
        let name = "a".repeat(255);
        assert!(!glob_match(pattern.as_bytes(), name.as_bytes()));
        let ending_in_b = "a".repeat(254) + "b";
        assert!(glob_match(pattern.as_bytes(), ending_in_b.as_bytes()));
        let too_few_a = "a".repeat(9) + "b";
        assert!(!glob_match(pattern.as_bytes(), too_few_a.as_bytes()));
    }
}

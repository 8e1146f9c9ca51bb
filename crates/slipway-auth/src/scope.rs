//! Registry token scopes (`repository:acme/app:pull,push`, `registry:catalog:*`), and the
//! rules that limit access tokens: repository patterns, and scopes of the REST API.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::AuthError;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Pull,
    Push,
    Delete,
}

impl Action {
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Pull => "pull",
            Action::Push => "push",
            Action::Delete => "delete",
        }
    }

    pub fn parse(s: &str) -> Option<Action> {
        match s {
            "pull" => Some(Action::Pull),
            "push" => Some(Action::Push),
            "delete" => Some(Action::Delete),
            _ => None,
        }
    }

    pub const ALL: [Action; 3] = [Action::Pull, Action::Push, Action::Delete];
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One requested scope. Unknown actions are dropped (the spec allows granting less);
/// `*` on a repository means every action.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    Repository { name: String, actions: BTreeSet<Action> },
    Catalog,
}

impl Scope {
    /// Parses `type:name:actions`; the name may itself contain colons (a port).
    pub fn parse(text: &str) -> Option<Scope> {
        let (kind, rest) = text.split_once(':')?;
        let (name, actions) = rest.rsplit_once(':')?;
        match kind {
            "repository" => {
                let actions =
                    if actions == "*" { Action::ALL.into_iter().collect() } else { actions.split(',').filter_map(Action::parse).collect() };
                Some(Scope::Repository { name: name.to_owned(), actions })
            }
            "registry" if name == "catalog" => Some(Scope::Catalog),
            _ => None,
        }
    }
}

/// A limit written on an access token: which repositories (a glob where `*` matches any
/// run of characters, `/` included) and which actions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScopeRule {
    pub repositories: String,
    pub actions: BTreeSet<Action>,
}

impl ScopeRule {
    /// Parses the CLI form `PATTERN:ACTION[,ACTION...]`, e.g. `acme/*:pull,push`.
    pub fn parse(text: &str) -> Option<ScopeRule> {
        let (pattern, actions) = text.rsplit_once(':')?;
        let actions: BTreeSet<Action> = actions.split(',').map(Action::parse).collect::<Option<_>>()?;
        (!pattern.is_empty() && !actions.is_empty()).then(|| ScopeRule { repositories: pattern.to_owned(), actions })
    }

    pub fn matches(&self, repository: &str) -> bool {
        glob_match(self.repositories.as_bytes(), repository.as_bytes())
    }
}

/// Actions on `repository` that a token with these rules may use at most.
pub fn token_allows(rules: &[ScopeRule], repository: &str) -> BTreeSet<Action> {
    rules.iter().filter(|r| r.matches(repository)).flat_map(|r| r.actions.iter().copied()).collect()
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

/// One rule written on an access token. Stored as JSON in one list: a repository rule as
/// `{"repositories": "acme/*", "actions": ["pull"]}`, an API scope as `{"api": "read"}`
/// (so rows written before API scopes existed read unchanged).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum TokenRule {
    Repository(ScopeRule),
    Api { api: ApiScope },
}

impl TokenRule {
    /// Parses the CLI and API form: `api:read`, `api:write`, `api:fulfillment`, or a
    /// repository rule `PATTERN:ACTION[,ACTION...]`. Repository patterns cannot hold `:`,
    /// so the two never overlap; `api:pull` stays the repository rule it always was.
    pub fn parse(text: &str) -> Option<TokenRule> {
        if let Some(api) = text.strip_prefix("api:").and_then(ApiScope::parse) {
            return Some(TokenRule::Api { api });
        }
        ScopeRule::parse(text).map(TokenRule::Repository)
    }
}

impl From<ScopeRule> for TokenRule {
    fn from(rule: ScopeRule) -> TokenRule {
        TokenRule::Repository(rule)
    }
}

/// The repository rules among a token's rules: what the registry matches. A token with API
/// scopes only has none, so it may do nothing in the registry.
pub fn repository_rules(rules: &[TokenRule]) -> Vec<ScopeRule> {
    rules
        .iter()
        .filter_map(|r| match r {
            TokenRule::Repository(rule) => Some(rule.clone()),
            TokenRule::Api { .. } => None,
        })
        .collect()
}

/// Why a token with these rules may not make an API request (`changes_state`: anything but
/// GET and HEAD), or None when it may. Every token holds at least one rule (creation and
/// use both refuse an empty list), so the API is open to a token only through its `api:`
/// scopes: a token made for pushing images cannot also manage the account.
pub fn api_refusal(rules: &[TokenRule], changes_state: bool) -> Option<String> {
    let scopes: BTreeSet<ApiScope> = rules
        .iter()
        .filter_map(|r| match r {
            TokenRule::Api { api } => Some(*api),
            TokenRule::Repository(_) => None,
        })
        .collect();
    if scopes.is_empty() {
        return Some("this token has no API scope: create one with api:read or api:write to use the API".into());
    }
    let may_write = scopes.contains(&ApiScope::Write);
    let may_read = may_write || scopes.contains(&ApiScope::Read);
    match (changes_state, may_read, may_write) {
        (true, _, false) => Some("this token's API scopes do not allow changes: that needs api:write".into()),
        (false, false, _) => Some("this token's API scopes do not allow reading: that needs api:read or api:write".into()),
        _ => None,
    }
}

/// Limits on the rules written on an access token. A pattern is matched against every
/// repository a token is used for, so its size bounds the work per request; the limits are
/// checked when a token is created and again whenever a stored token is used, so a row
/// written before they existed (or behind the service's back) cannot be used either.
pub const MAX_PATTERN_BYTES: usize = 255;
/// Wildcards per pattern: more than a few says nothing a shorter pattern does not.
pub const MAX_PATTERN_STARS: usize = 16;
/// Rules per token.
pub const MAX_RULES: usize = 32;

impl ScopeRule {
    /// The size limits only: what a stored rule must meet to be used at all.
    fn check_limits(&self) -> Result<(), AuthError> {
        let pattern = &self.repositories;
        if pattern.is_empty() || pattern.len() > MAX_PATTERN_BYTES {
            return Err(AuthError::Invalid(format!(
                "a repository pattern needs 1 to {MAX_PATTERN_BYTES} bytes (this one has {})",
                pattern.len()
            )));
        }
        let stars = pattern.bytes().filter(|&b| b == b'*').count();
        if stars > MAX_PATTERN_STARS {
            return Err(AuthError::Invalid(format!(
                "a repository pattern may hold at most {MAX_PATTERN_STARS} `*` (this one has {stars})"
            )));
        }
        if self.actions.is_empty() {
            return Err(AuthError::Invalid(format!("the pattern {pattern:?} names no action: use pull, push or delete")));
        }
        Ok(())
    }

    /// Everything a new rule must meet: the limits, and only characters that can appear
    /// in a repository name (anything else could never match).
    pub fn check(&self) -> Result<(), AuthError> {
        self.check_limits()?;
        let pattern = &self.repositories;
        if let Some(c) = pattern.chars().find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/*".contains(c))) {
            return Err(AuthError::Invalid(format!(
                "the repository pattern {pattern:?} holds {c:?}: use lowercase letters, digits, . _ - / and *"
            )));
        }
        Ok(())
    }
}

/// Checks the rules of a token about to be created. API scopes count towards the rules
/// per token like repository rules.
pub fn check_new_rules(rules: &[TokenRule]) -> Result<(), AuthError> {
    if rules.is_empty() {
        return Err(AuthError::Invalid("a token needs at least one scope, e.g. acme/*:pull,push or api:read".into()));
    }
    if rules.len() > MAX_RULES {
        return Err(AuthError::Invalid(format!("a token may hold at most {MAX_RULES} scopes (this one has {})", rules.len())));
    }
    rules.iter().try_for_each(|rule| match rule {
        TokenRule::Repository(rule) => rule.check(),
        TokenRule::Api { .. } => Ok(()),
    })
}

/// The rules stored with a token (JSON), refused if they cannot be read or exceed the
/// limits: such a token is refused rather than matched.
pub fn stored_rules(json: &str) -> Result<Vec<TokenRule>, AuthError> {
    let rules: Vec<TokenRule> = serde_json::from_str(json).map_err(|_| AuthError::Invalid(STORED_REFUSED.into()))?;
    let over_limits = |rule: &TokenRule| matches!(rule, TokenRule::Repository(rule) if rule.check_limits().is_err());
    if rules.is_empty() || rules.len() > MAX_RULES || rules.iter().any(over_limits) {
        return Err(AuthError::Invalid(STORED_REFUSED.into()));
    }
    Ok(rules)
}

const STORED_REFUSED: &str = "this access token's scopes are unreadable or exceed the limits on patterns; revoke it and create a new one";

/// Whether `text` matches `pattern`, where `*` matches any run of bytes (`/` included).
///
/// Iterative, with a single backtrack point: on a mismatch, only the most recent `*` is
/// made to absorb one more byte. Earlier stars never need revisiting, because whatever
/// an earlier star could absorb the later one can too (`*` matches any run). So the work
/// is at most pattern length x text length, and the stack does not grow with the pattern
/// (a recursive matcher overflowed it on 40,000 stars, and backtracked exponentially on
/// `*a*a*a...b`).
fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
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
    fn parses_registry_scopes() {
        assert_eq!(
            Scope::parse("repository:acme/app:pull,push,bogus"),
            Some(Scope::Repository { name: "acme/app".into(), actions: [Action::Pull, Action::Push].into() })
        );
        assert_eq!(Scope::parse("repository:acme/app:*"), Some(Scope::Repository { name: "acme/app".into(), actions: Action::ALL.into() }));
        assert_eq!(Scope::parse("registry:catalog:*"), Some(Scope::Catalog));
        assert_eq!(Scope::parse("nonsense"), None);
    }

    #[test]
    fn token_rules_match_globs() {
        let rules = vec![ScopeRule::parse("acme/*:pull").unwrap(), ScopeRule::parse("acme/ci/app:push").unwrap()];
        assert_eq!(token_allows(&rules, "acme/deep/er/x"), [Action::Pull].into());
        assert_eq!(token_allows(&rules, "acme/ci/app"), [Action::Pull, Action::Push].into());
        assert!(token_allows(&rules, "other/x").is_empty());
        assert!(ScopeRule::parse("acme/*:fly").is_none());
        assert!(ScopeRule::parse(":pull").is_none());
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
        let rule = ScopeRule { repositories: format!("{pattern}x"), actions: [Action::Pull].into() };
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

    #[test]
    fn new_rules_are_limited() {
        let rule = |pattern: &str| TokenRule::from(ScopeRule { repositories: pattern.to_owned(), actions: [Action::Pull].into() });
        assert!(check_new_rules(&[rule("acme/*")]).is_ok());
        assert!(check_new_rules(&[rule(&"a".repeat(MAX_PATTERN_BYTES))]).is_ok());
        assert!(check_new_rules(&[]).is_err());
        let refusals = [
            (vec![rule(&"a".repeat(MAX_PATTERN_BYTES + 1))], "bytes"),
            (vec![rule(&"*".repeat(40_000))], "bytes"),
            (vec![rule(&"*a".repeat(MAX_PATTERN_STARS + 1))], "at most 16 `*`"),
            (vec![rule("acme/*"); MAX_RULES + 1], "at most 32 scopes"),
            (vec![rule("acme/\0app")], "holds"),
            (vec![rule("Acme/*")], "holds"),
            (vec![rule("acme/* ")], "holds"),
            (vec![ScopeRule { repositories: "acme/*".into(), actions: BTreeSet::new() }.into()], "no action"),
        ];
        for (rules, says) in refusals {
            let message = check_new_rules(&rules).unwrap_err().to_string();
            assert!(message.contains(says), "{message}");
        }
        assert!(check_new_rules(&vec![rule("acme/*"); MAX_RULES]).is_ok());
        // API scopes are rules like the others: accepted, and counted towards the limit.
        let read = TokenRule::parse("api:read").unwrap();
        assert!(check_new_rules(&[read.clone(), rule("acme/*")]).is_ok());
        let message = check_new_rules(&vec![read; MAX_RULES + 1]).unwrap_err().to_string();
        assert!(message.contains("at most 32 scopes"), "{message}");
    }

    #[test]
    fn api_scopes_parse_and_are_stored_beside_repository_rules() {
        for (text, scope) in [("api:read", ApiScope::Read), ("api:write", ApiScope::Write), ("api:fulfillment", ApiScope::Fulfillment)] {
            assert_eq!(TokenRule::parse(text), Some(TokenRule::Api { api: scope }));
        }
        // `api` as a repository pattern keeps meaning what it meant.
        assert_eq!(TokenRule::parse("api:pull"), Some(TokenRule::Repository(ScopeRule::parse("api:pull").unwrap())));
        assert_eq!(TokenRule::parse("api:admin"), None);
        assert_eq!(TokenRule::parse("api:"), None);
        let rules = vec![TokenRule::parse("acme/*:pull").unwrap(), TokenRule::parse("api:write").unwrap()];
        let json = serde_json::to_string(&rules).unwrap();
        assert_eq!(json, r#"[{"repositories":"acme/*","actions":["pull"]},{"api":"write"}]"#);
        assert_eq!(stored_rules(&json).unwrap(), rules);
        assert_eq!(repository_rules(&rules), vec![ScopeRule::parse("acme/*:pull").unwrap()]);
        assert!(stored_rules(r#"[{"api":"admin"}]"#).is_err());
    }

    #[test]
    fn api_scopes_decide_api_requests() {
        let rules = |texts: &[&str]| texts.iter().map(|t| TokenRule::parse(t).unwrap()).collect::<Vec<_>>();
        // (rules, may read, may change state)
        for (texts, read, write) in [
            (&["api:read"][..], true, false),
            (&["api:write"][..], true, true),
            (&["api:read", "api:write"][..], true, true),
            (&["api:fulfillment"][..], false, false),
            (&["acme/*:pull,push"][..], false, false),
            (&["acme/*:pull", "api:read"][..], true, false),
        ] {
            let rules = rules(texts);
            assert_eq!(api_refusal(&rules, false).is_none(), read, "{texts:?} reading");
            assert_eq!(api_refusal(&rules, true).is_none(), write, "{texts:?} writing");
        }
        assert!(api_refusal(&rules(&["acme/*:pull"]), false).unwrap().contains("no API scope"));
    }

    /// Stored rules over the limits (written before the limits, or straight into the
    /// database) are refused, not matched.
    #[test]
    fn stored_rules_over_the_limits_are_refused() {
        let stored = |rules: &[ScopeRule]| serde_json::to_string(rules).unwrap();
        let ok = ScopeRule::parse("acme/*:pull").unwrap();
        assert_eq!(stored_rules(&stored(std::slice::from_ref(&ok))).unwrap(), vec![TokenRule::from(ok.clone())]);
        let hostile = ScopeRule { repositories: "*".repeat(40_000), actions: [Action::Pull].into() };
        assert!(stored_rules(&stored(&[ok.clone(), hostile])).is_err());
        let exponential = ScopeRule { repositories: "*a".repeat(17), actions: [Action::Pull].into() };
        assert!(stored_rules(&stored(&[exponential])).is_err());
        assert!(stored_rules(&stored(&vec![ok; MAX_RULES + 1])).is_err());
        assert!(stored_rules("not json").is_err());
        assert!(stored_rules("[]").is_err());
    }
}

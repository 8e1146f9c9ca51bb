//! Token scopes and the rules written on access tokens: the registry token endpoint's
//! `scope=` parameter (Scope::parse), the CLI and API form of a token's rules
//! (TokenRule::parse, RepositoryRule::parse, ApiScope::parse), the JSON they are stored
//! as, and the glob matcher that applies a rule's pattern to every repository a token
//! is used for, checked against a plain dynamic-programming matcher.
#![no_main]

use libfuzzer_sys::fuzz_target;
use slipway_auth::scope::{Action, ApiScope, Scope, ScopeRule, TokenRule, check_rule, stored_rules};
use slipway_policy::{RepositoryRule, glob_match};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };

    if let Some(scope) = Scope::parse(text) {
        // Printed in the wire form, the scope reads back the same.
        let printed = match &scope {
            Scope::Repository { name, actions } => {
                format!("repository:{name}:{}", actions.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(","))
            }
            Scope::Catalog => "registry:catalog:*".to_owned(),
        };
        assert_eq!(Scope::parse(&printed), Some(scope), "{text:?} printed as {printed:?}");
    }

    if let Some(api) = ApiScope::parse(text) {
        assert_eq!(api.as_str(), text);
    }

    if let Some(rule) = RepositoryRule::parse(text) {
        assert!(!rule.repositories.is_empty() && !rule.actions.is_empty(), "{rule:?}");
        assert_eq!(RepositoryRule::parse(&print_rule(&rule)).as_ref(), Some(&rule));
    }

    if let Some(rule) = TokenRule::parse(text) {
        let printed = match &rule {
            TokenRule::Api { api } => format!("api:{}", api.as_str()),
            TokenRule::Repository(rule) => print_rule(rule),
        };
        assert_eq!(TokenRule::parse(&printed).as_ref(), Some(&rule), "{text:?} printed as {printed:?}");
        // Stored as JSON with the token; read back by `stored_rules` (which also applies
        // the limits, so only an accepted rule must survive it).
        let json = serde_json::to_string(&[&rule]).expect("rules serialise");
        let back: Vec<TokenRule> = serde_json::from_str(&json).expect("stored rules read back");
        assert_eq!(back, [rule.clone()], "{json}");
        if let TokenRule::Repository(repository) = &rule
            && check_rule(repository).is_ok()
        {
            assert_eq!(stored_rules(&json).expect("an accepted rule is usable"), [rule.clone()]);
        }
    }

    // The glob matcher against an independent one, on a pattern and a name taken from the
    // input (split at the first newline).
    let (pattern, name) = text.split_once('\n').unwrap_or((text, ""));
    if pattern.len() <= 256 && name.len() <= 256 {
        let expected = reference_match(pattern.as_bytes(), name.as_bytes());
        assert_eq!(glob_match(pattern.as_bytes(), name.as_bytes()), expected, "{pattern:?} against {name:?}");
        let rule = ScopeRule { repositories: pattern.to_owned(), actions: [Action::Pull].into() };
        assert_eq!(rule.matches(name), expected);
    }
});

fn print_rule(rule: &RepositoryRule) -> String {
    format!("{}:{}", rule.repositories, rule.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(","))
}

/// `*` matches any run of bytes, everything else itself: the textbook table, where
/// `matches[i][j]` says whether the first `i` pattern bytes match the first `j` text bytes.
fn reference_match(pattern: &[u8], text: &[u8]) -> bool {
    let mut matches = vec![vec![false; text.len() + 1]; pattern.len() + 1];
    matches[0][0] = true;
    for i in 1..=pattern.len() {
        for j in 0..=text.len() {
            matches[i][j] = if pattern[i - 1] == b'*' {
                matches[i - 1][j] || (j > 0 && matches[i][j - 1])
            } else {
                j > 0 && pattern[i - 1] == text[j - 1] && matches[i - 1][j - 1]
            };
        }
    }
    matches[pattern.len()][text.len()]
}

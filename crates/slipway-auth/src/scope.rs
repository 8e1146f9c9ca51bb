//! Registry token scopes (`repository:acme/app:pull,push`, `registry:catalog:*`), and the
//! rules that limit access tokens: repository patterns, and scopes of the REST API.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::AuthError;

/// The registry's actions, the API scopes and the repository rules written on tokens are
/// the policy's words: re-exported under the names this crate has always used.
pub use slipway_policy::{ApiScope, RepoAction as Action, RepositoryRule as ScopeRule};

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

/// The API scopes among a token's rules: what the policy limits its API requests to
/// (`slipway_policy::Action::ApiRead`, `ApiWrite`). Every token holds at least one rule
/// (creation and use both refuse an empty list), so a token made for pushing images has
/// none of these and cannot also manage the account.
pub fn api_scopes(rules: &[TokenRule]) -> BTreeSet<ApiScope> {
    rules
        .iter()
        .filter_map(|r| match r {
            TokenRule::Api { api } => Some(*api),
            TokenRule::Repository(_) => None,
        })
        .collect()
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

/// The size limits only: what a stored rule must meet to be used at all.
fn check_limits(rule: &ScopeRule) -> Result<(), AuthError> {
    let pattern = &rule.repositories;
    if pattern.is_empty() || pattern.len() > MAX_PATTERN_BYTES {
        return Err(AuthError::Invalid(format!(
            "a repository pattern needs 1 to {MAX_PATTERN_BYTES} bytes (this one has {})",
            pattern.len()
        )));
    }
    let stars = pattern.bytes().filter(|&b| b == b'*').count();
    if stars > MAX_PATTERN_STARS {
        return Err(AuthError::Invalid(format!("a repository pattern may hold at most {MAX_PATTERN_STARS} `*` (this one has {stars})")));
    }
    if rule.actions.is_empty() {
        return Err(AuthError::Invalid(format!("the pattern {pattern:?} names no action: use pull, push or delete")));
    }
    Ok(())
}

/// Everything a new rule must meet: the limits, and only characters that can appear
/// in a repository name (anything else could never match).
pub fn check_rule(rule: &ScopeRule) -> Result<(), AuthError> {
    check_limits(rule)?;
    let pattern = &rule.repositories;
    if let Some(c) = pattern.chars().find(|&c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/*".contains(c))) {
        return Err(AuthError::Invalid(format!(
            "the repository pattern {pattern:?} holds {c:?}: use lowercase letters, digits, . _ - / and *"
        )));
    }
    Ok(())
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
        TokenRule::Repository(rule) => check_rule(rule),
        TokenRule::Api { .. } => Ok(()),
    })
}

/// The rules stored with a token (JSON), refused if they cannot be read or exceed the
/// limits: such a token is refused rather than matched.
pub fn stored_rules(json: &str) -> Result<Vec<TokenRule>, AuthError> {
    let rules: Vec<TokenRule> = serde_json::from_str(json).map_err(|_| AuthError::Invalid(STORED_REFUSED.into()))?;
    let over_limits = |rule: &TokenRule| matches!(rule, TokenRule::Repository(rule) if check_limits(rule).is_err());
    if rules.is_empty() || rules.len() > MAX_RULES || rules.iter().any(over_limits) {
        return Err(AuthError::Invalid(STORED_REFUSED.into()));
    }
    Ok(rules)
}

const STORED_REFUSED: &str = "this access token's scopes are unreadable or exceed the limits on patterns; revoke it and create a new one";

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
        use slipway_policy::{Action as Policy, Actor, Credential, Resource, decide};
        let rules = |texts: &[&str]| texts.iter().map(|t| TokenRule::parse(t).unwrap()).collect::<Vec<_>>();
        let account = slipway_policy::Subject::default();
        // (rules, may read, may change state)
        for (texts, read, write) in [
            (&["api:read"][..], true, false),
            (&["api:write"][..], true, true),
            (&["api:read", "api:write"][..], true, true),
            (&["api:fulfillment"][..], false, false),
            (&["acme/*:pull,push"][..], false, false),
            (&["acme/*:pull", "api:read"][..], true, false),
        ] {
            let (repositories, api) = (repository_rules(&rules(texts)), api_scopes(&rules(texts)));
            let actor = Actor { subject: Some(&account), credential: Credential::Token { repositories: &repositories, api: &api } };
            assert_eq!(decide(&actor, Policy::ApiRead, &Resource::Api).is_allowed(), read, "{texts:?} reading");
            assert_eq!(decide(&actor, Policy::ApiWrite, &Resource::Api).is_allowed(), write, "{texts:?} writing");
        }
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

//! Registry token scopes (`repository:acme/app:pull,push`, `registry:catalog:*`) and the
//! repository patterns that limit access tokens.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

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
                let actions = if actions == "*" {
                    Action::ALL.into_iter().collect()
                } else {
                    actions.split(',').filter_map(Action::parse).collect()
                };
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

fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    match pattern.split_first() {
        None => text.is_empty(),
        Some((b'*', rest)) => (0..=text.len()).any(|i| glob_match(rest, &text[i..])),
        Some((c, rest)) => text.first() == Some(c) && glob_match(rest, &text[1..]),
    }
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
        assert_eq!(
            Scope::parse("repository:acme/app:*"),
            Some(Scope::Repository { name: "acme/app".into(), actions: Action::ALL.into() })
        );
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
}

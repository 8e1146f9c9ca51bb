//! The access decision: what a subject may do to a repository. Pure, so it is tested as a
//! matrix and explains every refusal.

use std::collections::{BTreeMap, BTreeSet};

use crate::scope::{Action, ScopeRule, token_allows};

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SiteRole {
    User,
    Moderator,
    Admin,
}

impl SiteRole {
    pub fn parse(s: &str) -> SiteRole {
        match s {
            "admin" => SiteRole::Admin,
            "moderator" => SiteRole::Moderator,
            _ => SiteRole::User,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            SiteRole::User => "user",
            SiteRole::Moderator => "moderator",
            SiteRole::Admin => "admin",
        }
    }
}

/// A member's role in an organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OrgRole {
    Viewer,
    Maintainer,
    Owner,
}

impl OrgRole {
    pub fn parse(s: &str) -> Option<OrgRole> {
        match s {
            "viewer" => Some(OrgRole::Viewer),
            "maintainer" => Some(OrgRole::Maintainer),
            "owner" => Some(OrgRole::Owner),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            OrgRole::Viewer => "viewer",
            OrgRole::Maintainer => "maintainer",
            OrgRole::Owner => "owner",
        }
    }

    /// Viewers pull; maintainers also push; owners also delete.
    fn actions(self) -> BTreeSet<Action> {
        match self {
            OrgRole::Viewer => [Action::Pull].into(),
            OrgRole::Maintainer => [Action::Pull, Action::Push].into(),
            OrgRole::Owner => Action::ALL.into(),
        }
    }
}

/// An authenticated account as the decision sees it.
#[derive(Clone, Debug, Default)]
pub struct Subject {
    pub name: String,
    pub site_role: Option<SiteRole>,
    /// Organization (or, for a person, their own namespace) to role.
    pub namespaces: BTreeMap<String, OrgRole>,
    /// Tiers the account is entitled to.
    pub tiers: BTreeSet<String>,
}

/// Who may pull a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Not published: only its namespace's members (and moderators) may pull.
    Staging,
    Public,
    LoggedIn,
    Licensed {
        tier: String,
    },
}

impl Policy {
    pub fn from_record(access: &str, tier: Option<String>) -> Policy {
        match (access, tier) {
            ("public", _) => Policy::Public,
            ("logged_in", _) => Policy::LoggedIn,
            ("licensed", Some(tier)) => Policy::Licensed { tier },
            _ => Policy::Staging,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: BTreeSet<Action>,
    /// Why pulling is refused, when it is.
    pub pull_refusal: Option<String>,
}

/// The namespace a repository belongs to: its first path component.
pub fn namespace(repository: &str) -> &str {
    repository.split('/').next().unwrap_or(repository)
}

/// What `subject` (None: anonymous) may do to `repository` under `policy`, further limited
/// by `token_rules` when the request authenticated with an access token.
pub fn decide(subject: Option<&Subject>, token_rules: Option<&[ScopeRule]>, repository: &str, policy: &Policy) -> Decision {
    let ns = namespace(repository);
    let mut allowed = BTreeSet::new();
    if let Some(s) = subject {
        if let Some(role) = s.namespaces.get(ns) {
            allowed.extend(role.actions());
        }
        match s.site_role {
            Some(SiteRole::Admin) => allowed.extend(Action::ALL),
            Some(SiteRole::Moderator) => {
                allowed.insert(Action::Pull);
            }
            _ => {}
        }
    }
    let pull_by_policy = match policy {
        Policy::Public => true,
        Policy::LoggedIn => subject.is_some(),
        Policy::Licensed { tier } => subject.is_some_and(|s| s.tiers.contains(tier)),
        Policy::Staging => false,
    };
    if pull_by_policy {
        allowed.insert(Action::Pull);
    }
    if let Some(rules) = token_rules {
        let limit = token_allows(rules, repository);
        allowed.retain(|a| limit.contains(a));
    }
    let pull_refusal = (!allowed.contains(&Action::Pull)).then(|| {
        if token_rules.is_some_and(|rules| !token_allows(rules, repository).contains(&Action::Pull)) {
            return format!("the access token used does not allow pulling {repository}");
        }
        match policy {
            Policy::Staging => format!("repository {repository} is not published; only members of {ns} can pull it"),
            Policy::LoggedIn => format!("sign in to pull {repository}"),
            Policy::Licensed { tier } if subject.is_none() => {
                format!("sign in with an account holding a license for tier {tier} to pull {repository}")
            }
            Policy::Licensed { tier } => format!("license required for tier {tier} to pull {repository}"),
            Policy::Public => format!("pulling {repository} is not allowed"),
        }
    });
    Decision { allowed, pull_refusal }
}

//! The actors this crate builds for `slipway_policy::decide`, which alone decides access:
//! an account's roles and entitlements as the policy sees them (`AuthService::subject`),
//! with the limits of the access token it came with.

use std::collections::{BTreeMap, BTreeSet};

use slipway_db::AccountRecord;
use slipway_policy::{Actor, ApiScope, Credential, Refusal, Resource, decide as ask};
pub use slipway_policy::{OrgRole, RepoAccess as Policy, SiteRole, Subject};
use slipway_types::ErrorKind;

use crate::scope::{Action, ScopeRule, TokenRule, api_scopes, repository_rules};
use crate::{AuthError, AuthService};

/// What the registry may let a caller do to one repository: the actions allowed, and why
/// each of the others is refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    pub allowed: BTreeSet<Action>,
    pub refusals: BTreeMap<Action, String>,
    /// Whether a pull gets every version, or only those released to customers.
    pub unreleased: bool,
}

/// A registry caller knows only its token's repository rules: no API scope applies there.
static NO_API_SCOPES: BTreeSet<ApiScope> = BTreeSet::new();

/// The actor of a registry or token-service request: `subject` (None: anonymous), limited
/// by `token_rules` when it authenticated with an access token.
pub fn registry_actor<'a>(subject: Option<&'a Subject>, token_rules: Option<&'a [ScopeRule]>) -> Actor<'a> {
    let credential = match token_rules {
        Some(repositories) => Credential::Token { repositories, api: &NO_API_SCOPES },
        None => Credential::Session,
    };
    Actor { subject, credential }
}

/// What `subject` (None: anonymous) may do to `repository` under `policy`, further limited
/// by `token_rules` when the request authenticated with an access token.
pub fn decide(subject: Option<&Subject>, token_rules: Option<&[ScopeRule]>, repository: &str, policy: &Policy) -> Decision {
    let actor = registry_actor(subject, token_rules);
    let resource = Resource::Repository { name: repository, access: policy };
    let unreleased = ask(&actor, slipway_policy::Action::PullUnreleased, &resource).is_allowed();
    let mut decision = Decision { allowed: BTreeSet::new(), refusals: BTreeMap::new(), unreleased };
    for action in Action::ALL {
        if let Err(refusal) = ask(&actor, action.into(), &resource).into_result() {
            decision.refusals.insert(action, refusal.reason);
        } else {
            decision.allowed.insert(action);
        }
    }
    decision
}

/// The rules of a token presented to the REST API, split as the policy reads them.
#[derive(Clone, Debug)]
pub struct ApiTokenLimits {
    repositories: Vec<ScopeRule>,
    api: BTreeSet<ApiScope>,
}

impl ApiTokenLimits {
    pub fn new(rules: &[TokenRule]) -> ApiTokenLimits {
        ApiTokenLimits { repositories: repository_rules(rules), api: api_scopes(rules) }
    }

    /// The actor of an API request made with this token by `subject`.
    pub fn actor<'a>(&'a self, subject: &'a Subject) -> Actor<'a> {
        Actor { subject: Some(subject), credential: Credential::Token { repositories: &self.repositories, api: &self.api } }
    }
}

impl AuthService {
    /// The policy's view of an account: its roles and entitlements. A person owns the
    /// namespace of their own name.
    pub async fn subject(&self, account: &AccountRecord) -> Result<Subject, AuthError> {
        let mut namespaces = BTreeMap::new();
        if account.kind == "person" {
            namespaces.insert(account.name.clone(), OrgRole::Owner);
        }
        for (org, role) in self.db().memberships(&account.id).await? {
            if let Some(role) = OrgRole::parse(&role) {
                namespaces.insert(org, role);
            }
        }
        Ok(Subject {
            id: account.id.clone(),
            name: account.name.clone(),
            verified_email: account.email.clone().filter(|_| account.email_verified_at.is_some()),
            site_role: Some(SiteRole::parse(&account.site_role)),
            namespaces,
            tiers: self.db().entitled_tiers(&account.id).await?.into_iter().collect(),
        })
    }
}

/// A refusal of the policy as this crate's error, keeping its kind: hidden things are not
/// found, the rest forbidden. (This crate asks only about signed-in accounts, which the
/// policy never sends to sign in; were one refused so, it stays a refusal, not a fault.)
impl From<Refusal> for AuthError {
    fn from(refusal: Refusal) -> AuthError {
        match refusal.kind {
            ErrorKind::NotFound => AuthError::NotFound(refusal.reason),
            _ => AuthError::Forbidden(refusal.reason),
        }
    }
}

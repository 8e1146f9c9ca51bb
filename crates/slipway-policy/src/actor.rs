//! Who is acting: an account with its roles and entitlements, and the credential it came
//! with. Built by the crates that know the account (`slipway-auth`'s `access` module);
//! read only by `decide`.

use std::collections::{BTreeMap, BTreeSet};

use crate::scopes::{ApiScope, RepositoryRule};

/// An account's role on the whole site.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum SiteRole {
    User,
    Moderator,
    Admin,
}

impl SiteRole {
    /// The stored text; anything unknown is an ordinary user, so a typo grants nothing.
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
}

/// An account as the policy sees it.
#[derive(Clone, Debug, Default)]
pub struct Subject {
    pub id: String,
    pub name: String,
    /// The account's email address once it is verified: what invitations are bound to.
    pub verified_email: Option<String>,
    /// None only where no site role is known (a subject built by hand); it grants nothing.
    pub site_role: Option<SiteRole>,
    /// Organization (or, for a person, their own namespace) to role.
    pub namespaces: BTreeMap<String, OrgRole>,
    /// Tiers the account is entitled to (`publisher/listing/tier`).
    pub tiers: BTreeSet<String>,
}

/// How the actor proved who it is.
#[derive(Clone, Copy, Debug)]
pub enum Credential<'a> {
    /// No credential (anonymous), or a password, refresh token or browser session: the
    /// account's own rights, unlimited.
    Session,
    /// An access token: the account's rights, limited by the token's rules. A surface fills
    /// in the rules it reads (the registry the repository rules, the API the API scopes);
    /// the others are then empty, which allows nothing of that kind.
    Token { repositories: &'a [RepositoryRule], api: &'a BTreeSet<ApiScope> },
    /// The operator at the command line, who runs the site: allowed everything.
    Operator,
}

/// Who asks: an account (None: anonymous) and its credential.
#[derive(Clone, Copy, Debug)]
pub struct Actor<'a> {
    pub subject: Option<&'a Subject>,
    pub credential: Credential<'a>,
}

impl<'a> Actor<'a> {
    pub const ANONYMOUS: Actor<'static> = Actor { subject: None, credential: Credential::Session };
    pub const OPERATOR: Actor<'static> = Actor { subject: None, credential: Credential::Operator };

    /// A signed-in account with its full rights (a password, refresh token or session).
    pub fn signed_in(subject: &'a Subject) -> Actor<'a> {
        Actor { subject: Some(subject), credential: Credential::Session }
    }

    /// An account, or nobody, without a token's limits.
    pub fn maybe(subject: Option<&'a Subject>) -> Actor<'a> {
        Actor { subject, credential: Credential::Session }
    }

    pub(crate) fn role_in(&self, org: &str) -> Option<OrgRole> {
        self.subject.and_then(|s| s.namespaces.get(org).copied())
    }

    pub(crate) fn site_role(&self) -> Option<SiteRole> {
        self.subject.and_then(|s| s.site_role)
    }

    pub(crate) fn is_admin(&self) -> bool {
        self.site_role() == Some(SiteRole::Admin)
    }

    /// Moderators and administrators.
    pub(crate) fn is_staff(&self) -> bool {
        matches!(self.site_role(), Some(SiteRole::Moderator | SiteRole::Admin))
    }

    pub(crate) fn is_operator(&self) -> bool {
        matches!(self.credential, Credential::Operator)
    }
}

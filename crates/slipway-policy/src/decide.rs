//! The decision: what an actor may do to a resource, and, when it may not, why and how
//! the refusal is answered.

use std::collections::BTreeSet;

use slipway_types::ErrorKind;

use crate::actor::{Actor, Credential, OrgRole, SiteRole};
use crate::scopes::{ApiScope, RepoAction, token_allows};

/// Who may pull a repository.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RepoAccess {
    /// Not published: only its namespace's members (and moderators) may pull.
    Staging,
    Public,
    LoggedIn,
    Licensed {
        tier: String,
    },
}

impl RepoAccess {
    /// The stored `access` and `tier`; anything unknown stays private.
    pub fn from_record(access: &str, tier: Option<String>) -> RepoAccess {
        match (access, tier) {
            ("public", _) => RepoAccess::Public,
            ("logged_in", _) => RepoAccess::LoggedIn,
            ("licensed", Some(tier)) => RepoAccess::Licensed { tier },
            _ => RepoAccess::Staging,
        }
    }
}

/// What the actor wants to do. Each action is about one kind of `Resource`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Registry actions on a `Resource::Repository`.
    Pull,
    Push,
    Delete,
    /// Pulling versions of a `Resource::Repository` that are not released to customers
    /// (tags outside a tier's set, new versions awaiting review): its namespace's members
    /// and staff. Everyone else who may pull gets the released versions only.
    PullUnreleased,
    /// `registry:catalog:*` on `Resource::Catalog`.
    ListCatalog,
    /// A repository's full scan results (`Resource::Scans`).
    ReadScans,
    /// Having a repository scanned now (`Resource::Scans`).
    RequestScan,
    /// Creating or changing an organization's publisher profile (`Resource::Organization`).
    EditPublisher,
    /// Moderation: marking a publisher verified (`Resource::Organization`).
    VerifyPublisher,
    /// Seeing an organization's members (`Resource::Organization`).
    ListMembers,
    /// Inviting members (`Resource::Organization`).
    ManageMembers,
    /// Joining an organization by an invitation (`Resource::Invitation`).
    AcceptInvitation,
    /// Seeing a listing (`Resource::Listing`).
    ViewListing,
    /// Creating or changing a listing's content (`Resource::Listing`).
    EditListing,
    /// Adding a version of a listing's license agreement (`Resource::Listing`).
    ChangeLicense,
    /// Moderation on a `Resource::Listing`: reviewing a submission, requesting changes,
    /// rejecting it, putting a live listing on hold, lifting the hold, revoking it,
    /// withdrawing it from the store; awarding badges, featuring it, marking it official.
    Moderate,
    /// Approving a submission (or publishing directly) on a `Resource::Listing`: moderators
    /// who are not members of its publisher, who would be approving their own work.
    Approve,
    /// The vulnerability policy: setting a vulnerability's class (for every product on
    /// `Resource::Store`, for one on `Resource::Listing`) and excusing one of a product's
    /// from its deadline: the security team (staff), never for a publisher they belong to.
    GovernSecurity,
    AwardBadges,
    Feature,
    MarkOfficial,
    /// Creating, listing and revoking one's access tokens, and signing out
    /// (`Resource::Account`).
    ManageCredentials,
    /// Revoking one access token (`Resource::AccessToken`).
    RevokeToken,
    /// Calling the REST API (`Resource::Api`): reading, or changing state.
    ApiRead,
    ApiWrite,
    /// Cancelling, paying or changing one's subscription (`Resource::Subscription`).
    ManageSubscription,
    /// Seeing a publisher's orders, subscriptions, refunds and statements (`Resource::Sales`).
    ViewSales,
    /// Refunding a publisher's customer (`Resource::Sales`).
    Refund,
    /// Creating and cancelling a publisher's orders through the fulfillment API
    /// (`Resource::Sales`): an access token with `api:fulfillment` only.
    Fulfill,
}

impl Action {
    /// Every action, for the matrix test and for documentation.
    pub const ALL: [Action; 29] = [
        Action::Pull,
        Action::Push,
        Action::Delete,
        Action::PullUnreleased,
        Action::ListCatalog,
        Action::ReadScans,
        Action::RequestScan,
        Action::EditPublisher,
        Action::VerifyPublisher,
        Action::ListMembers,
        Action::ManageMembers,
        Action::AcceptInvitation,
        Action::ViewListing,
        Action::EditListing,
        Action::ChangeLicense,
        Action::Moderate,
        Action::Approve,
        Action::GovernSecurity,
        Action::AwardBadges,
        Action::Feature,
        Action::MarkOfficial,
        Action::ManageCredentials,
        Action::RevokeToken,
        Action::ApiRead,
        Action::ApiWrite,
        Action::ManageSubscription,
        Action::ViewSales,
        Action::Refund,
        Action::Fulfill,
    ];
}

impl From<RepoAction> for Action {
    fn from(action: RepoAction) -> Action {
        match action {
            RepoAction::Pull => Action::Pull,
            RepoAction::Push => Action::Push,
            RepoAction::Delete => Action::Delete,
        }
    }
}

/// What an action is about.
#[derive(Clone, Copy, Debug)]
pub enum Resource<'a> {
    /// A repository of the registry, with who may pull it.
    Repository {
        name: &'a str,
        access: &'a RepoAccess,
    },
    /// The registry's list of every repository.
    Catalog,
    /// The scan results of a repository's images.
    Scans {
        repository: &'a str,
    },
    Organization {
        name: &'a str,
    },
    /// An invitation to join an organization, mailed to `email`.
    Invitation {
        email: &'a str,
    },
    /// A listing of `publisher`'s, published or a draft.
    Listing {
        publisher: &'a str,
        published: bool,
    },
    /// An account's own credentials.
    Account {
        id: &'a str,
    },
    /// An access token of the account `owner` (its id).
    AccessToken {
        owner: &'a str,
    },
    /// The REST API as a whole.
    Api,
    /// The store as a whole: rules that hold for every product.
    Store,
    /// A customer's subscription, of the account `owner` (its id).
    Subscription {
        owner: &'a str,
    },
    /// What `publisher` has sold: its orders, subscriptions, refunds and statements.
    Sales {
        publisher: &'a str,
    },
}

/// Why an action is refused, and how: `kind` is `NotFound` when the caller may not learn
/// that the resource exists, `Forbidden` when it may, `Unauthenticated` when signing in
/// could change the answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    pub kind: ErrorKind,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny(Refusal),
}

impl Decision {
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow)
    }

    pub fn into_result(self) -> Result<(), Refusal> {
        match self {
            Decision::Allow => Ok(()),
            Decision::Deny(refusal) => Err(refusal),
        }
    }
}

fn deny(kind: ErrorKind, reason: String) -> Decision {
    Decision::Deny(Refusal { kind, reason })
}

fn allow_if(allowed: bool, refusal: impl FnOnce() -> Decision) -> Decision {
    if allowed { Decision::Allow } else { refusal() }
}

/// The namespace a repository belongs to: its first path component.
fn namespace(repository: &str) -> &str {
    repository.split('/').next().unwrap_or(repository)
}

const SESSION_ONLY: &str = "this needs a signed-in session (POST /api/v1/session): an access token cannot do it";

/// What `actor` may do: the one decision every surface asks.
pub fn decide(actor: &Actor<'_>, action: Action, resource: &Resource<'_>) -> Decision {
    if actor.is_operator() {
        return Decision::Allow;
    }
    match (action, *resource) {
        (Action::Pull, Resource::Repository { name, access }) => repository(actor, RepoAction::Pull, name, access),
        (Action::Push, Resource::Repository { name, access }) => repository(actor, RepoAction::Push, name, access),
        (Action::Delete, Resource::Repository { name, access }) => repository(actor, RepoAction::Delete, name, access),
        (Action::PullUnreleased, Resource::Repository { name, access }) => unreleased(actor, name, access),
        (Action::ListCatalog, Resource::Catalog) => catalog(actor),
        (Action::ReadScans | Action::RequestScan, Resource::Scans { repository }) => scans(actor, action, repository),
        (
            Action::EditPublisher | Action::VerifyPublisher | Action::ListMembers | Action::ManageMembers,
            Resource::Organization { name },
        ) => organization(actor, action, name),
        (
            Action::ViewListing
            | Action::EditListing
            | Action::ChangeLicense
            | Action::Moderate
            | Action::Approve
            | Action::GovernSecurity
            | Action::AwardBadges
            | Action::Feature
            | Action::MarkOfficial,
            Resource::Listing { publisher, published },
        ) => listing(actor, action, publisher, published),
        (Action::AcceptInvitation, Resource::Invitation { email }) => invitation(actor, email),
        (Action::ManageCredentials, Resource::Account { id }) => own(actor, id, || "no such account".into()),
        (Action::RevokeToken, Resource::AccessToken { owner }) => own(actor, owner, || "you have no such token".into()),
        (Action::ApiRead | Action::ApiWrite, Resource::Api) => api(actor, action == Action::ApiWrite),
        (Action::ManageSubscription, Resource::Subscription { owner }) => subscription(actor, owner),
        (Action::ViewSales | Action::Refund, Resource::Sales { publisher }) => sales(actor, action, publisher),
        (Action::Fulfill, Resource::Sales { publisher }) => fulfill(actor, publisher),
        (Action::GovernSecurity, Resource::Store) => match actor.subject {
            None => sign_in("change how vulnerabilities count"),
            Some(_) => {
                allow_if(actor.is_staff(), || deny(ErrorKind::Forbidden, "only the security team changes how vulnerabilities count".into()))
            }
        },
        // A caller asking about the wrong kind of resource is a bug there: refuse.
        (action, resource) => deny(ErrorKind::Forbidden, format!("{action:?} does not apply to {resource:?}")),
    }
}

fn sign_in(what: &str) -> Decision {
    deny(ErrorKind::Unauthenticated, format!("sign in to {what}"))
}

/// Members pull (viewers), push (maintainers) and delete (owners) in their namespace;
/// moderators pull and administrators do anything anywhere; the access level lets others
/// pull; a token narrows all of it to its rules.
fn repository_allows(actor: &Actor<'_>, repository: &str, access: &RepoAccess) -> BTreeSet<RepoAction> {
    let by_role: &[RepoAction] = match actor.role_in(namespace(repository)) {
        Some(OrgRole::Viewer) => &[RepoAction::Pull],
        Some(OrgRole::Maintainer) => &[RepoAction::Pull, RepoAction::Push],
        Some(OrgRole::Owner) => &RepoAction::ALL,
        None => &[],
    };
    let by_site_role: &[RepoAction] = match actor.site_role() {
        Some(SiteRole::Admin) => &RepoAction::ALL,
        Some(SiteRole::Moderator) => &[RepoAction::Pull],
        Some(SiteRole::User) | None => &[],
    };
    let mut allowed: BTreeSet<RepoAction> = by_role.iter().chain(by_site_role).copied().collect();
    let by_access = match access {
        RepoAccess::Public => true,
        RepoAccess::LoggedIn => actor.subject.is_some(),
        RepoAccess::Licensed { tier } => actor.subject.is_some_and(|s| s.tiers.contains(tier)),
        RepoAccess::Staging => false,
    };
    if by_access {
        allowed.insert(RepoAction::Pull);
    }
    if let Credential::Token { repositories, .. } = actor.credential {
        let limit = token_allows(repositories, repository);
        allowed.retain(|a| limit.contains(a));
    }
    allowed
}

fn repository(actor: &Actor<'_>, action: RepoAction, repository: &str, access: &RepoAccess) -> Decision {
    if repository_allows(actor, repository, access).contains(&action) {
        return Decision::Allow;
    }
    let kind = if actor.subject.is_some() { ErrorKind::Forbidden } else { ErrorKind::Unauthenticated };
    let token_refuses = match actor.credential {
        Credential::Token { repositories, .. } => !token_allows(repositories, repository).contains(&action),
        Credential::Session | Credential::Operator => false,
    };
    let ns = namespace(repository);
    let reason = match (action, actor.subject) {
        (RepoAction::Pull, _) if token_refuses => format!("the access token used does not allow pulling {repository}"),
        (_, _) if token_refuses => format!("the access token used does not allow {action} on {repository}"),
        (RepoAction::Pull, subject) => match access {
            RepoAccess::Staging => format!("repository {repository} is not published; only members of {ns} can pull it"),
            RepoAccess::LoggedIn => format!("sign in to pull {repository}"),
            RepoAccess::Licensed { tier } if subject.is_none() => {
                format!("sign in with an account holding a license for tier {tier} to pull {repository}")
            }
            RepoAccess::Licensed { tier } => format!("license required for tier {tier} to pull {repository}"),
            RepoAccess::Public => format!("pulling {repository} is not allowed"),
        },
        (_, Some(subject)) => format!("{} may not {action} {repository}", subject.name),
        (_, None) => format!("sign in to {action} {repository}"),
    };
    deny(kind, reason)
}

/// Unreleased versions are for those who pull by their role, not by the repository's
/// access level: members of its namespace and staff, as far as a token lets them pull.
fn unreleased(actor: &Actor<'_>, repository: &str, access: &RepoAccess) -> Decision {
    let pull = self::repository(actor, RepoAction::Pull, repository, access);
    if !pull.is_allowed() {
        return pull;
    }
    let by_role = actor.is_staff() || actor.role_in(namespace(repository)).is_some();
    allow_if(by_role, || deny(ErrorKind::Forbidden, format!("only the released versions of {repository} are offered to customers")))
}

/// Only administrators list every repository, and not through a token: a token is limited
/// to repositories its rules name.
fn catalog(actor: &Actor<'_>) -> Decision {
    if actor.subject.is_none() {
        return sign_in("list the catalog");
    }
    let session = matches!(actor.credential, Credential::Session);
    allow_if(actor.is_admin() && session, || deny(ErrorKind::Forbidden, "only administrators may list the catalog".into()))
}

/// Full results are for the owning organization's members and staff; to anyone else the
/// repository's results do not exist. Scans are requested by maintainers, owners and staff.
fn scans(actor: &Actor<'_>, action: Action, repository: &str) -> Decision {
    let ns = namespace(repository);
    let role = actor.role_in(ns);
    if !(actor.is_staff() || role.is_some()) {
        return deny(ErrorKind::NotFound, format!("no scan results for {repository}"));
    }
    let may_request = actor.is_staff() || role.is_some_and(|r| r >= OrgRole::Maintainer);
    allow_if(action == Action::ReadScans || may_request, || {
        deny(ErrorKind::Forbidden, format!("only maintainers and owners of {ns} request scans"))
    })
}

fn organization(actor: &Actor<'_>, action: Action, org: &str) -> Decision {
    let role = actor.role_in(org);
    if action == Action::ListMembers {
        // Who belongs to an organization is for its members and staff only.
        return allow_if(actor.is_staff() || role.is_some(), || deny(ErrorKind::NotFound, format!("no organization named {org:?}")));
    }
    if actor.subject.is_none() {
        return sign_in("manage organizations");
    }
    let (allowed, refusal) = match action {
        Action::EditPublisher => (
            role.is_some_and(|r| r >= OrgRole::Maintainer) || actor.is_admin(),
            format!("only owners and maintainers of {org} can edit its publisher profile"),
        ),
        Action::ManageMembers => (role == Some(OrgRole::Owner) || actor.is_admin(), format!("only owners of {org} can manage its members")),
        _ => (actor.is_staff(), "only moderators can verify publishers".into()),
    };
    allow_if(allowed, || deny(ErrorKind::Forbidden, refusal))
}

/// An invitation is bound to the address it was mailed to: only an account whose verified
/// address is that one may accept it, so holding the code alone is not enough. The
/// invited address is not repeated: the code alone should not reveal it.
fn invitation(actor: &Actor<'_>, invited: &str) -> Decision {
    let Some(subject) = actor.subject else { return sign_in("accept an invitation") };
    match &subject.verified_email {
        None => deny(ErrorKind::Forbidden, "verify your email address before accepting an invitation".into()),
        Some(email) => allow_if(email.eq_ignore_ascii_case(invited), || {
            deny(
                ErrorKind::Forbidden,
                "this invitation was sent to another email address: accept it signed in as the account with that address".into(),
            )
        }),
    }
}

fn listing(actor: &Actor<'_>, action: Action, publisher: &str, published: bool) -> Decision {
    let role = actor.role_in(publisher);
    if action == Action::ViewListing {
        // Drafts are seen only by the publisher's members and staff; to anyone else they
        // do not exist.
        return allow_if(published || role.is_some() || actor.is_staff(), || {
            deny(ErrorKind::NotFound, format!("no such product of {publisher}"))
        });
    }
    if actor.subject.is_none() {
        return sign_in("change products");
    }
    let editor = role.is_some_and(|r| r >= OrgRole::Maintainer) || actor.is_admin();
    let (allowed, refusal) = match action {
        Action::EditListing => (editor, format!("only owners and maintainers of {publisher} can edit its products")),
        Action::ChangeLicense => (editor, format!("only owners and maintainers of {publisher} can change its licenses")),
        Action::Moderate => (actor.is_staff(), "only moderators review and withdraw products".into()),
        Action::Approve if actor.is_staff() && role.is_some() => {
            (false, format!("you are a member of {publisher}: another moderator approves its submissions"))
        }
        Action::Approve => (actor.is_staff(), "only moderators approve products".into()),
        Action::GovernSecurity if actor.is_staff() && role.is_some() => {
            (false, format!("you are a member of {publisher}: another moderator decides on its vulnerabilities"))
        }
        Action::GovernSecurity => (actor.is_staff(), "only the security team changes how vulnerabilities count".into()),
        Action::AwardBadges => (actor.is_staff(), "only moderators award badges".into()),
        Action::Feature => (actor.is_staff(), "only moderators feature products".into()),
        _ => (actor.is_staff(), "only moderators mark products official".into()),
    };
    allow_if(allowed, || deny(ErrorKind::Forbidden, refusal))
}

/// An account's own credentials: only the account, and only with a session, so a leaked
/// token cannot make itself successors that outlive its revocation, nor revoke the
/// owner's other tokens. Another account's are not there at all.
fn own(actor: &Actor<'_>, owner: &str, not_found: impl FnOnce() -> String) -> Decision {
    let Some(subject) = actor.subject else { return sign_in("manage your credentials") };
    if let Credential::Token { .. } = actor.credential {
        return deny(ErrorKind::Forbidden, SESSION_ONLY.into());
    }
    allow_if(subject.id == owner, || deny(ErrorKind::NotFound, not_found()))
}

/// A subscription is its customer's (and administrators', for support); to anyone else
/// it does not exist.
fn subscription(actor: &Actor<'_>, owner: &str) -> Decision {
    let Some(subject) = actor.subject else { return sign_in("manage your subscriptions") };
    allow_if(subject.id == owner || actor.is_admin(), || deny(ErrorKind::NotFound, "you have no such subscription".into()))
}

/// A publisher's sales are its owners' business (and administrators'): its other members
/// are refused, and to everyone else they do not exist. Refunds are given by the same.
fn sales(actor: &Actor<'_>, action: Action, publisher: &str) -> Decision {
    if actor.subject.is_none() {
        return sign_in("see sales");
    }
    let role = actor.role_in(publisher);
    if role.is_none() && !actor.is_admin() {
        return deny(ErrorKind::NotFound, format!("no publisher {publisher:?} of yours"));
    }
    let what = if action == Action::Refund { "give refunds" } else { "see sales" };
    allow_if(role == Some(OrgRole::Owner) || actor.is_admin(), || deny(ErrorKind::Forbidden, format!("only owners of {publisher} {what}")))
}

/// The fulfillment API grants a publisher's products, so it is the owners' (as refunds
/// are), and only through an access token holding `api:fulfillment`: an ISV's systems call
/// it, never a browser, and a token made for reading or writing the API cannot grant
/// licenses. To anyone outside the publisher its orders do not exist.
fn fulfill(actor: &Actor<'_>, publisher: &str) -> Decision {
    if actor.subject.is_none() {
        return sign_in("fulfill orders");
    }
    let role = actor.role_in(publisher);
    if role.is_none() && !actor.is_admin() {
        return deny(ErrorKind::NotFound, format!("no publisher {publisher:?} of yours"));
    }
    let scoped = matches!(actor.credential, Credential::Token { api, .. } if api.contains(&ApiScope::Fulfillment));
    if !scoped {
        return deny(
            ErrorKind::Forbidden,
            "the fulfillment API takes an access token with the api:fulfillment scope (Authorization: Bearer)".into(),
        );
    }
    allow_if(role == Some(OrgRole::Owner) || actor.is_admin(), || {
        deny(ErrorKind::Forbidden, format!("only owners of {publisher} (or their robots with the owner role) fulfill orders"))
    })
}

/// A session may use the whole API (its CSRF token is checked separately); a token only as
/// far as its API scopes go. A token made for pushing images has no API scope, so it
/// cannot also manage the account.
fn api(actor: &Actor<'_>, changes_state: bool) -> Decision {
    let scopes = match actor.credential {
        Credential::Token { api, .. } => api,
        Credential::Session | Credential::Operator if changes_state && actor.subject.is_none() => return sign_in("change anything"),
        Credential::Session | Credential::Operator => return Decision::Allow,
    };
    if scopes.is_empty() {
        return deny(ErrorKind::Forbidden, "this token has no API scope: create one with api:read or api:write to use the API".into());
    }
    let may_write = scopes.contains(&ApiScope::Write);
    let may_read = may_write || scopes.contains(&ApiScope::Read);
    match (changes_state, may_read, may_write) {
        (true, _, false) => deny(ErrorKind::Forbidden, "this token's API scopes do not allow changes: that needs api:write".into()),
        (false, false, _) => {
            deny(ErrorKind::Forbidden, "this token's API scopes do not allow reading: that needs api:read or api:write".into())
        }
        _ => Decision::Allow,
    }
}

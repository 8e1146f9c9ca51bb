//! The permission matrix: every action of the policy, for every kind of actor, against the
//! answer written out below. Changing a rule changes a cell, so this test fails until the
//! table says the new rule too.

use std::collections::{BTreeMap, BTreeSet};

use slipway_policy::{
    Action, Actor, ApiScope, Credential, Decision, OrgRole, RepoAccess, RepositoryRule, Resource, SiteRole, Subject, decide,
};
use slipway_types::ErrorKind;

/// Columns: the kinds of actor (`modm`: a moderator who maintains acme). Every token
/// belongs to acme's owner except `tAdm`, an administrator's token. `cust` holds the
/// entitlement to tier `acme/app/pro`.
const ACTORS: [&str; 15] =
    ["anon", "user", "view", "mnt", "own", "mod", "modm", "adm", "cust", "tRd", "tWr", "tFul", "tRepo", "tAdm", "op"];

/// A: allowed; 4: refused as not found (its existence is not revealed); 3: forbidden;
/// 1: sign in first. API scopes are a gate of their own (ApiRead, ApiWrite): a token's
/// organization rights beyond it are its account's.
const EXPECTED: &str = "
#                                      anon user view mnt  own  mod  modm adm  cust tRd  tWr  tFul tRepo tAdm op
Pull               acme/app@staging    1    3    A    A    A    A    A    A    3    3    3    3    A    A    A
Pull               acme/app@public     A    A    A    A    A    A    A    A    A    3    3    3    A    A    A
Pull               acme/app@logged_in  1    A    A    A    A    A    A    A    A    3    3    3    A    A    A
Pull               acme/app@licensed   1    3    A    A    A    A    A    A    A    3    3    3    A    A    A
Pull               other/app@staging   1    3    3    3    3    A    A    A    3    3    3    3    3    A    A
Push               acme/app@staging    1    3    3    A    A    3    A    A    3    3    3    3    3    A    A
Push               other/app@public    1    3    3    3    3    3    3    A    3    3    3    3    3    A    A
Delete             acme/app@staging    1    3    3    3    A    3    3    A    3    3    3    3    3    A    A
PullUnreleased     acme/app@public     3    3    A    A    A    A    A    A    3    3    3    3    A    A    A
PullUnreleased     acme/app@licensed   1    3    A    A    A    A    A    A    3    3    3    3    A    A    A
PullUnreleased     other/app@public    3    3    3    3    3    A    A    A    3    3    3    3    3    A    A
ListCatalog        catalog             1    3    3    3    3    3    3    A    3    3    3    3    3    3    A
ReadScans          scans:acme/app      4    4    A    A    A    A    A    A    4    A    A    A    A    A    A
ReadScans          scans:other/app     4    4    4    4    4    A    A    A    4    4    4    4    4    A    A
RequestScan        scans:acme/app      4    4    3    A    A    A    A    A    4    A    A    A    A    A    A
EditPublisher      org:acme            1    3    3    A    A    3    A    A    3    A    A    A    A    A    A
VerifyPublisher    org:acme            1    3    3    3    3    A    A    A    3    3    3    3    3    A    A
ListMembers        org:acme            4    4    A    A    A    A    A    A    4    A    A    A    A    A    A
ManageMembers      org:acme            1    3    3    3    A    3    3    A    3    A    A    A    A    A    A
AcceptInvitation   invitation:own      1    A    A    A    A    A    A    A    A    A    A    A    A    A    A
AcceptInvitation   invitation:other    1    3    3    3    3    3    3    3    3    3    3    3    3    3    A
ViewListing        listing:published   A    A    A    A    A    A    A    A    A    A    A    A    A    A    A
ViewListing        listing:draft       4    4    A    A    A    A    A    A    4    A    A    A    A    A    A
EditListing        listing:draft       1    3    3    A    A    3    A    A    3    A    A    A    A    A    A
ChangeLicense      listing:published   1    3    3    A    A    3    A    A    3    A    A    A    A    A    A
Moderate           listing:draft       1    3    3    3    3    A    A    A    3    3    3    3    3    A    A
Approve            listing:draft       1    3    3    3    3    A    3    A    3    3    3    3    3    A    A
GovernSecurity     listing:published   1    3    3    3    3    A    3    A    3    3    3    3    3    A    A
GovernSecurity     store               1    3    3    3    3    A    A    A    3    3    3    3    3    A    A
AwardBadges        listing:published   1    3    3    3    3    A    A    A    3    3    3    3    3    A    A
Feature            listing:published   1    3    3    3    3    A    A    A    3    3    3    3    3    A    A
MarkOfficial       listing:published   1    3    3    3    3    A    A    A    3    3    3    3    3    A    A
ManageCredentials  account:own         1    A    A    A    A    A    A    A    A    3    3    3    3    3    A
ManageCredentials  account:other       1    4    4    4    4    4    4    4    4    3    3    3    3    3    A
RevokeToken        token:own           1    A    A    A    A    A    A    A    A    3    3    3    3    3    A
RevokeToken        token:other         1    4    4    4    4    4    4    4    4    3    3    3    3    3    A
ApiRead            api                 A    A    A    A    A    A    A    A    A    A    A    3    3    A    A
ApiWrite           api                 1    A    A    A    A    A    A    A    A    3    A    3    3    A    A
ManageSubscription subscription:own    1    A    A    A    A    A    A    A    A    A    A    A    A    A    A
ManageSubscription subscription:other  1    4    4    4    4    4    4    A    4    4    4    4    4    A    A
ViewSales          sales:acme          1    4    3    3    A    4    3    A    4    A    A    A    A    A    A
Refund             sales:acme          1    4    3    3    A    4    3    A    4    A    A    A    A    A    A
Fulfill            sales:acme          1    4    3    3    3    4    3    3    4    3    3    A    3    3    A
Fulfill            sales:other         1    4    4    4    4    4    4    3    4    4    4    4    4    3    A
";

fn subject(id: &str, site_role: SiteRole, acme: Option<OrgRole>, tiers: &[&str]) -> Subject {
    let mut namespaces: BTreeMap<String, OrgRole> = [(id.to_owned(), OrgRole::Owner)].into();
    namespaces.extend(acme.map(|role| ("acme".to_owned(), role)));
    Subject {
        id: id.into(),
        name: id.into(),
        verified_email: Some(format!("{id}@example.com")),
        site_role: Some(site_role),
        namespaces,
        tiers: tiers.iter().map(|t| (*t).to_owned()).collect(),
    }
}

/// What each column's actor holds: its account (if any), and its token's rules.
struct Holder {
    subject: Option<Subject>,
    token: Option<(Vec<RepositoryRule>, BTreeSet<ApiScope>)>,
    operator: bool,
}

impl Holder {
    fn actor(&self) -> Actor<'_> {
        if self.operator {
            return Actor::OPERATOR;
        }
        let credential = match &self.token {
            Some((repositories, api)) => Credential::Token { repositories, api },
            None => Credential::Session,
        };
        Actor { subject: self.subject.as_ref(), credential }
    }
}

fn holder(kind: &str) -> Holder {
    let owner = || subject("olga", SiteRole::User, Some(OrgRole::Owner), &[]);
    let rules = |texts: &[&str]| texts.iter().map(|t| RepositoryRule::parse(t).unwrap()).collect::<Vec<_>>();
    let (subject, token) = match kind {
        "anon" | "op" => (None, None),
        "user" => (Some(subject("dana", SiteRole::User, None, &[])), None),
        "view" => (Some(subject("vic", SiteRole::User, Some(OrgRole::Viewer), &[])), None),
        "mnt" => (Some(subject("mia", SiteRole::User, Some(OrgRole::Maintainer), &[])), None),
        "own" => (Some(owner()), None),
        "mod" => (Some(subject("moe", SiteRole::Moderator, None, &[])), None),
        "modm" => (Some(subject("max", SiteRole::Moderator, Some(OrgRole::Maintainer), &[])), None),
        "adm" => (Some(subject("ada", SiteRole::Admin, None, &[])), None),
        "cust" => (Some(subject("cy", SiteRole::User, None, &["acme/app/pro"])), None),
        "tRd" => (Some(owner()), Some((vec![], [ApiScope::Read].into()))),
        "tWr" => (Some(owner()), Some((vec![], [ApiScope::Write].into()))),
        "tFul" => (Some(owner()), Some((vec![], [ApiScope::Fulfillment].into()))),
        "tRepo" => (Some(owner()), Some((rules(&["acme/*:pull"]), BTreeSet::new()))),
        "tAdm" => (Some(subject("ada", SiteRole::Admin, None, &[])), Some((rules(&["*:pull,push,delete"]), [ApiScope::Write].into()))),
        other => panic!("unknown actor {other}"),
    };
    Holder { subject, token, operator: kind == "op" }
}

fn access(label: &str) -> RepoAccess {
    match label {
        "licensed" => RepoAccess::Licensed { tier: "acme/app/pro".into() },
        other => RepoAccess::from_record(other, None),
    }
}

fn action(name: &str) -> Action {
    Action::ALL.into_iter().find(|a| format!("{a:?}") == name).unwrap_or_else(|| panic!("unknown action {name}"))
}

/// The answer to one cell, in the table's notation.
fn cell(decision: &Decision) -> &'static str {
    match decision {
        Decision::Allow => "A",
        Decision::Deny(refusal) => match refusal.kind {
            ErrorKind::NotFound => "4",
            ErrorKind::Forbidden => "3",
            ErrorKind::Unauthenticated => "1",
            other => panic!("the policy refuses only as not found, forbidden or unauthenticated, not {other:?}"),
        },
    }
}

/// One row: the action, and the resource as `kind:name` (repositories as `name@access`).
fn answer(holder: &Holder, action: Action, resource: &str) -> &'static str {
    let actor = holder.actor();
    let own_id = holder.subject.as_ref().map_or("nobody", |s| s.id.as_str());
    let own_email = holder.subject.as_ref().and_then(|s| s.verified_email.as_deref()).unwrap_or("nobody@example.com");
    let (kind, name) = resource.split_once(':').unwrap_or((resource, ""));
    let decision = match kind {
        "catalog" => decide(&actor, action, &Resource::Catalog),
        "api" => decide(&actor, action, &Resource::Api),
        "store" => decide(&actor, action, &Resource::Store),
        "scans" => decide(&actor, action, &Resource::Scans { repository: name }),
        "org" => decide(&actor, action, &Resource::Organization { name }),
        "listing" => decide(&actor, action, &Resource::Listing { publisher: "acme", published: name == "published" }),
        "account" => decide(&actor, action, &Resource::Account { id: if name == "own" { own_id } else { "someone-else" } }),
        "invitation" => decide(&actor, action, &Resource::Invitation { email: if name == "own" { own_email } else { "else@example.com" } }),
        "subscription" => decide(&actor, action, &Resource::Subscription { owner: if name == "own" { own_id } else { "someone-else" } }),
        "sales" => decide(&actor, action, &Resource::Sales { publisher: name }),
        "token" => decide(&actor, action, &Resource::AccessToken { owner: if name == "own" { own_id } else { "someone-else" } }),
        _ => {
            let (repository, level) = resource.split_once('@').expect("repository@access");
            decide(&actor, action, &Resource::Repository { name: repository, access: &access(level) })
        }
    };
    cell(&decision)
}

#[test]
fn every_action_for_every_actor_matches_the_table() {
    let header: Vec<&str> = EXPECTED.lines().find(|l| l.starts_with('#')).unwrap().split_whitespace().skip(1).collect();
    assert_eq!(header, ACTORS, "the table's columns are the actors");
    let holders: Vec<Holder> = ACTORS.iter().map(|kind| holder(kind)).collect();
    let mut covered = BTreeSet::new();
    let mut wrong = Vec::new();
    for line in EXPECTED.lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(fields.len(), 2 + ACTORS.len(), "{line}");
        let action = action(fields[0]);
        covered.insert(action);
        for ((kind, holder), expected) in ACTORS.iter().zip(&holders).zip(&fields[2..]) {
            let got = answer(holder, action, fields[1]);
            if got != *expected {
                wrong.push(format!("{} on {} by {kind}: expected {expected}, got {got}", fields[0], fields[1]));
            }
        }
    }
    assert!(wrong.is_empty(), "{} cells differ:\n{}", wrong.len(), wrong.join("\n"));
    let missing: Vec<_> = Action::ALL.iter().filter(|a| !covered.contains(*a)).collect();
    assert!(missing.is_empty(), "actions without a row: {missing:?}");
}

/// `Action::ALL` lists every action: this match has no wildcard, so a new action does not
/// compile until it is placed here, and then fails until it is in `ALL` (and the table).
#[test]
fn every_action_is_listed() {
    fn listed(action: Action) -> bool {
        match action {
            Action::Pull
            | Action::Push
            | Action::Delete
            | Action::PullUnreleased
            | Action::ListCatalog
            | Action::ReadScans
            | Action::RequestScan
            | Action::EditPublisher
            | Action::VerifyPublisher
            | Action::ListMembers
            | Action::ManageMembers
            | Action::AcceptInvitation
            | Action::ViewListing
            | Action::EditListing
            | Action::ChangeLicense
            | Action::Moderate
            | Action::Approve
            | Action::GovernSecurity
            | Action::AwardBadges
            | Action::Feature
            | Action::MarkOfficial
            | Action::ManageCredentials
            | Action::RevokeToken
            | Action::ApiRead
            | Action::ApiWrite
            | Action::ManageSubscription
            | Action::ViewSales
            | Action::Refund
            | Action::Fulfill => Action::ALL.contains(&action),
        }
    }
    for action in Action::ALL {
        assert!(listed(action));
    }
    let distinct: BTreeSet<Action> = Action::ALL.into();
    assert_eq!(distinct.len(), Action::ALL.len());
}

/// A caller asking about the wrong kind of resource is refused, not allowed.
#[test]
fn an_action_on_another_kind_of_resource_is_refused() {
    let admin = subject("ada", SiteRole::Admin, None, &[]);
    for (action, resource) in [(Action::Pull, Resource::Api), (Action::ViewListing, Resource::Organization { name: "acme" })] {
        let Decision::Deny(refusal) = decide(&Actor::signed_in(&admin), action, &resource) else { panic!("{action:?} allowed") };
        assert_eq!(refusal.kind, ErrorKind::Forbidden);
        assert!(refusal.reason.contains("does not apply"), "{}", refusal.reason);
    }
}

/// The reasons the registry shows: they tell the caller what would let them in.
#[test]
fn refusals_explain_themselves() {
    let reason = |holder: &Holder, action: Action, repository: &str, level: &str| match decide(
        &holder.actor(),
        action,
        &Resource::Repository { name: repository, access: &access(level) },
    ) {
        Decision::Deny(refusal) => refusal.reason,
        Decision::Allow => panic!("{action:?} {repository} allowed"),
    };
    let (anon, user, viewer, token) = (holder("anon"), holder("user"), holder("view"), holder("tRepo"));
    assert_eq!(
        reason(&user, Action::Pull, "acme/app", "staging"),
        "repository acme/app is not published; only members of acme can pull it"
    );
    assert_eq!(reason(&anon, Action::Pull, "acme/app", "logged_in"), "sign in to pull acme/app");
    assert_eq!(
        reason(&anon, Action::Pull, "acme/app", "licensed"),
        "sign in with an account holding a license for tier acme/app/pro to pull acme/app"
    );
    assert_eq!(reason(&user, Action::Pull, "acme/app", "licensed"), "license required for tier acme/app/pro to pull acme/app");
    assert_eq!(reason(&viewer, Action::Push, "acme/app", "staging"), "vic may not push acme/app");
    assert_eq!(reason(&token, Action::Push, "acme/app", "staging"), "the access token used does not allow push on acme/app");
    assert_eq!(reason(&token, Action::Pull, "other/app", "public"), "the access token used does not allow pulling other/app");
}

/// A namespace is a whole first path segment: one that merely starts like the owner's is
/// another organization.
#[test]
fn a_namespace_that_starts_like_another_is_another() {
    let mut lookalike = subject("lee", SiteRole::User, None, &[]);
    lookalike.namespaces.extend([("acm".to_owned(), OrgRole::Owner), ("acme-labs".to_owned(), OrgRole::Owner)]);
    let actor = Actor::signed_in(&lookalike);
    for action in [Action::ReadScans, Action::RequestScan] {
        assert!(!decide(&actor, action, &Resource::Scans { repository: "acme/tools/app" }).is_allowed(), "{action:?}");
    }
    let staging = RepoAccess::Staging;
    assert!(!decide(&actor, Action::Pull, &Resource::Repository { name: "acme/tools/app", access: &staging }).is_allowed());
    assert!(decide(&actor, Action::Pull, &Resource::Repository { name: "acme-labs/app", access: &staging }).is_allowed());
}

/// An invitation needs a verified address, compared without regard to case.
#[test]
fn invitations_are_bound_to_a_verified_address() {
    let mut invited = subject("ivy", SiteRole::User, None, &[]);
    let actor = |s: &Subject| decide(&Actor::signed_in(s), Action::AcceptInvitation, &Resource::Invitation { email: "Ivy@Example.com" });
    assert!(actor(&invited).is_allowed());
    invited.verified_email = None;
    let Decision::Deny(refusal) = actor(&invited) else { panic!("accepted without a verified address") };
    assert_eq!((refusal.kind, refusal.reason.as_str()), (ErrorKind::Forbidden, "verify your email address before accepting an invitation"));
}

//! An organization's members page (`/orgs/{org}/members`): its members and robots with
//! their roles, for its members and site staff; its owners invite by email, change roles,
//! remove members and hand ownership on; every member may leave (the last owner only after
//! making another owner). Every change is a form with the session's CSRF token, and the
//! policy behind each AuthService call decides, as for the API. Owners also run the
//! organization's robot accounts there: add one, give it tokens (each shown once, with its
//! `docker login` line), revoke them, delete it.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use slipway_auth::AuthError;
use slipway_auth::access::OrgRole;
use slipway_types::ErrorKind;

use crate::WebState;

use super::settings::{EXPIRY_CHOICES, NewTokenForm, TokenRow, describe, rules_of};
use super::{Chrome, PageError, PageResult, Visit, filters};

const ROLES: [&str; 3] = ["viewer", "maintainer", "owner"];

struct Member {
    name: String,
    role: String,
    /// A robot account (`org+name`): it signs in with access tokens only.
    robot: bool,
    /// The viewer themselves.
    me: bool,
}

/// A robot as its organization's owners see it.
struct RobotView {
    /// In full: `org+name`, as `docker login -u` takes it.
    name: String,
    /// Its own part, as URLs name it.
    short: String,
    role: String,
    tokens: Vec<TokenRow>,
}

/// A robot's token just made: its secret, shown this once.
struct RobotToken {
    robot: String,
    name: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "org_members.html")]
struct MembersPage {
    chrome: Chrome,
    org: String,
    members: Vec<Member>,
    roles: &'static [&'static str],
    /// The viewer manages the members (an owner, or a site administrator).
    manages: bool,
    /// The viewer is a member (and so may leave).
    member: bool,
    /// The people ownership may be handed to: the other members that are not robots.
    heirs: Vec<String>,
    notice: Option<String>,
    error: Option<String>,
    invite_email: String,
    /// The robots, for those who manage the members.
    robots: Vec<RobotView>,
    robot_roles: &'static [&'static str],
    expiry_choices: &'static [(&'static str, &'static str)],
    created: Option<RobotToken>,
}

impl MembersPage {
    async fn of(state: &WebState, visit: &Visit, org: &str) -> Result<MembersPage, PageError> {
        let account = &visit.require(&format!("/orgs/{org}/members"))?.account;
        let listed = state.auth.members(account, org).await?;
        let member = listed.iter().any(|(name, _)| *name == account.name);
        let members: Vec<Member> =
            listed.into_iter().map(|(name, role)| Member { robot: name.contains('+'), me: name == account.name, name, role }).collect();
        let heirs = members.iter().filter(|m| !m.me && !m.robot).map(|m| m.name.clone()).collect();
        let manages = state.auth.manages_members(account, org).await?;
        let now = state.auth.now_ms();
        let robots = match manages {
            true => state
                .auth
                .robots(account, org)
                .await?
                .into_iter()
                .map(|r| RobotView {
                    short: r.account.name.split_once('+').map(|(_, own)| own.to_owned()).unwrap_or_default(),
                    name: r.account.name,
                    role: r.role,
                    tokens: r.tokens.iter().map(|t| describe(t, now)).collect(),
                })
                .collect(),
            false => Vec::new(),
        };
        Ok(MembersPage {
            chrome: visit.chrome_clone(),
            org: org.to_owned(),
            members,
            roles: &ROLES,
            manages,
            member,
            heirs,
            notice: None,
            error: None,
            invite_email: String::new(),
            robots,
            robot_roles: &ROLES[..2],
            expiry_choices: &EXPIRY_CHOICES,
            created: None,
        })
    }
}

#[derive(Deserialize)]
pub(super) struct DoneQuery {
    done: Option<String>,
}

pub(super) async fn members(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(query): Query<DoneQuery>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let mut page = MembersPage::of(&state, &visit, &org).await?;
    page.notice = match query.done.as_deref() {
        Some("invited") => Some("The invitation is on its way: it works for 7 days.".into()),
        Some("role") => Some("The role is changed.".into()),
        Some("removed") => Some("The member is removed.".into()),
        Some("transferred") => Some("Ownership is handed on: you are a maintainer now.".into()),
        Some("created") => Some(format!("{org} is created, with you as its owner.")),
        Some("robot") => Some("The robot is added: give it a token below.".into()),
        Some("robot-token-revoked") => Some("The token is revoked: tools that used it are signed out within minutes.".into()),
        Some("robot-deleted") => Some("The robot is deleted: its tokens no longer work.".into()),
        _ => None,
    };
    visit.render(page)
}

/// After a change: the page again with the outcome, or the refusal shown on it.
async fn answer(state: &WebState, visit: &Visit, org: &str, outcome: Result<&str, AuthError>, invite_email: String) -> PageResult {
    match outcome {
        Ok(done) => Ok(Redirect::to(&format!("/orgs/{org}/members?done={done}")).into_response()),
        Err(e) if matches!(e.kind(), ErrorKind::Invalid | ErrorKind::Conflict | ErrorKind::NotFound) => {
            let mut page = MembersPage::of(state, visit, org).await?;
            page.error = Some(e.to_string());
            page.invite_email = invite_email;
            visit.render_refused(e.kind(), page)
        }
        Err(e) => Err(e.into()),
    }
}

fn role(text: &str) -> Result<OrgRole, AuthError> {
    OrgRole::parse(text).ok_or_else(|| AuthError::Invalid(format!("{text:?} is not a role: viewer, maintainer or owner")))
}

#[derive(Deserialize)]
pub(super) struct InviteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    role: String,
}

pub(super) async fn invite(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Form(form): Form<InviteForm>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(&format!("/orgs/{org}/members"))?.account;
    let outcome = match role(&form.role) {
        Ok(role) => state.auth.invite(account, &org, form.email.trim(), role).await.map(|()| "invited"),
        Err(e) => Err(e),
    };
    answer(&state, &visit, &org, outcome, form.email).await
}

#[derive(Deserialize)]
pub(super) struct RoleForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    role: String,
}

pub(super) async fn change_role(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((org, member)): Path<(String, String)>,
    Form(form): Form<RoleForm>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(&format!("/orgs/{org}/members"))?.account;
    let outcome = match role(&form.role) {
        Ok(role) => state.auth.set_member_role(account, &org, &member, role).await.map(|()| "role"),
        Err(e) => Err(e),
    };
    answer(&state, &visit, &org, outcome, String::new()).await
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn remove(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((org, member)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(&format!("/orgs/{org}/members"))?.account;
    let outcome = state.auth.remove_member(account, &org, &member).await.map(|()| "removed");
    answer(&state, &visit, &org, outcome, String::new()).await
}

pub(super) async fn leave(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(&format!("/orgs/{org}/members"))?.account;
    match state.auth.leave(account, &org).await {
        Ok(()) => Ok(Redirect::to("/settings?done=left").into_response()),
        Err(e) => answer(&state, &visit, &org, Err(e), String::new()).await,
    }
}

#[derive(Deserialize)]
pub(super) struct TransferForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to: String,
}

pub(super) async fn transfer(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Form(form): Form<TransferForm>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(&format!("/orgs/{org}/members"))?.account;
    let outcome = state.auth.transfer_ownership(account, &org, &form.to).await.map(|()| "transferred");
    answer(&state, &visit, &org, outcome, String::new()).await
}

#[derive(Deserialize)]
pub(super) struct NewOrgForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
}

/// Creates an organization owned by the signed-in account (from the settings page).
pub(super) async fn create(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<NewOrgForm>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require("/settings")?.account;
    let name = form.name.trim();
    state.auth.create_organization(name, &account.name).await?;
    Ok(Redirect::to(&format!("/orgs/{name}/members?done=created")).into_response())
}

#[derive(Deserialize)]
pub(super) struct RobotForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    role: String,
}

pub(super) async fn add_robot(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Form(form): Form<RobotForm>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(&format!("/orgs/{org}/members"))?.account;
    let outcome = match role(&form.role) {
        Ok(role) => state.auth.add_robot(account, &org, form.name.trim(), role).await.map(|_| "robot"),
        Err(e) => Err(e),
    };
    answer(&state, &visit, &org, outcome, String::new()).await
}

/// A robot's new token is shown on the page that answers the form (never stored, never
/// in a URL; the answer is not cached).
pub(super) async fn create_robot_token(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((org, robot)): Path<(String, String)>,
    Form(form): Form<NewTokenForm>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(&format!("/orgs/{org}/members"))?.account;
    let made = match rules_of(&form) {
        Ok((rules, expires)) => state.auth.create_robot_token(account, &org, &robot, form.name.trim(), &rules, expires).await,
        Err(message) => Err(AuthError::Invalid(message)),
    };
    match made {
        Ok((secret, _)) => {
            let mut page = MembersPage::of(&state, &visit, &org).await?;
            let robot = page.robots.iter().find(|r| r.short == robot || r.name == robot).map(|r| r.name.clone()).unwrap_or(robot);
            page.created = Some(RobotToken { robot, name: form.name.trim().to_owned(), secret });
            let mut response = visit.render(page)?;
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            Ok(response)
        }
        Err(e) => answer(&state, &visit, &org, Err(e), String::new()).await,
    }
}

pub(super) async fn revoke_robot_token(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((org, robot, id)): Path<(String, String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(&format!("/orgs/{org}/members"))?.account;
    let outcome = state.auth.revoke_robot_token(account, &org, &robot, &id).await.map(|()| "robot-token-revoked");
    answer(&state, &visit, &org, outcome, String::new()).await
}

pub(super) async fn delete_robot(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((org, robot)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(&format!("/orgs/{org}/members"))?.account;
    let outcome = state.auth.delete_robot(account, &org, &robot).await.map(|()| "robot-deleted");
    answer(&state, &visit, &org, outcome, String::new()).await
}

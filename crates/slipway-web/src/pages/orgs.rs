//! An organization's members page (`/orgs/{org}/members`): its members and robots with
//! their roles, for its members and site staff; its owners invite by email, change roles,
//! remove members and hand ownership on; every member may leave (the last owner only after
//! making another owner). Every change is a form with the session's CSRF token, and the
//! policy behind each AuthService call decides, as for the API.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use slipway_auth::AuthError;
use slipway_auth::access::OrgRole;
use slipway_types::ErrorKind;

use crate::WebState;

use super::{Chrome, PageError, PageResult, Visit};

const ROLES: [&str; 3] = ["viewer", "maintainer", "owner"];

struct Member {
    name: String,
    role: String,
    /// A robot account (`org+name`): it signs in with access tokens only.
    robot: bool,
    /// The viewer themselves.
    me: bool,
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
}

impl MembersPage {
    async fn of(state: &WebState, visit: &Visit, org: &str) -> Result<MembersPage, PageError> {
        let account = &visit.require(&format!("/orgs/{org}/members"))?.account;
        let listed = state.auth.members(account, org).await?;
        let member = listed.iter().any(|(name, _)| *name == account.name);
        let members: Vec<Member> =
            listed.into_iter().map(|(name, role)| Member { robot: name.contains('+'), me: name == account.name, name, role }).collect();
        let heirs = members.iter().filter(|m| !m.me && !m.robot).map(|m| m.name.clone()).collect();
        Ok(MembersPage {
            chrome: visit.chrome_clone(),
            org: org.to_owned(),
            members,
            roles: &ROLES,
            manages: state.auth.manages_members(account, org).await?,
            member,
            heirs,
            notice: None,
            error: None,
            invite_email: String::new(),
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

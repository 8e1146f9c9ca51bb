//! Account settings and organization membership under /api/v1, as the pages under
//! /settings and /orgs/{org}/members offer them: the caller's sessions (listed, the others
//! signed out), a new password, a new email address (counted once the mailed link is
//! followed); members' roles changed, members removed, leaving, ownership handed on.
//! Changes to the account itself need a session (an access token gets 403): a leaked token
//! must not take the account over.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_auth::{AuthService, client_ip};
use slipway_types::ErrorKind;
use utoipa::ToSchema;

use crate::WebState;
use crate::account_api::Role;
use crate::extract::{ApiJson, SessionOnly, SignedIn};
use crate::problem::{ApiResult, Problem, ProblemDocument};
use crate::session::session_token;

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/api/v1/me", delete(delete_account))
        .route("/api/v1/me/sessions", get(sessions).delete(sign_out_others))
        .route("/api/v1/me/password", put(change_password))
        .route("/api/v1/me/email", post(change_email))
        .route("/api/v1/accounts/email/confirm", post(confirm_email))
        .route("/api/v1/orgs/{org}/members/{member}", put(set_role).delete(remove_member))
        .route("/api/v1/orgs/{org}/leave", post(leave))
        .route("/api/v1/orgs/{org}/transfer", post(transfer))
        .with_state(state)
}

#[derive(Deserialize, ToSchema)]
struct AccountDeletion {
    /// The current password.
    password: String,
}

/// Deletes the caller's account (with a session only): its sessions and tokens end, its
/// address is forgotten, its name stays reserved. 409 with the reasons while it owns an
/// organization or has a subscription that renews or an unpaid invoice.
#[utoipa::path(delete, path = "/api/v1/me", tag = "accounts", request_body = AccountDeletion,
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, body = ProblemDocument, content_type = "application/problem+json")))]
async fn delete_account(State(state): State<WebState>, SessionOnly(signed): SessionOnly, request: Request) -> ApiResult {
    let ip = client_ip(request.extensions());
    let ApiJson(form) = ApiJson::<AccountDeletion>::from_request(request, &()).await?;
    let viewer = signed.viewer(&state.catalog).await?;
    let blockers = state.commerce.deletion_blockers(&viewer).await?;
    if !blockers.is_empty() {
        return Err(Problem(ErrorKind::Conflict, format!("the account cannot be deleted yet: {}", blockers.join("; "))));
    }
    match state.auth.delete_account(&viewer.account, &form.password, ip).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => Ok(crate::problem::auth_problem(e)),
    }
}

#[derive(Serialize, ToSchema)]
struct Session {
    created_at: i64,
    expires_at: i64,
    /// The browser's User-Agent when it signed in (shortened); empty if unknown.
    user_agent: String,
    /// The client's address (IPv6 by /64); empty if unknown.
    client: String,
    /// The session this request came with.
    current: bool,
}

#[derive(Serialize, ToSchema)]
struct Sessions {
    sessions: Vec<Session>,
}

/// The caller's live browser sessions, newest first (with a session only).
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "accounts",
    responses((status = 200, body = Sessions), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json")))]
async fn sessions(State(auth): State<AuthService>, SessionOnly(SignedIn { account, .. }): SessionOnly, headers: HeaderMap) -> ApiResult {
    let cookie = session_token(&auth, &headers).unwrap_or_default();
    let sessions = auth
        .sessions(&account, cookie)
        .await?
        .into_iter()
        .map(|s| Session {
            created_at: s.created_at,
            expires_at: s.expires_at,
            user_agent: s.user_agent,
            client: s.client,
            current: s.current,
        })
        .collect();
    Ok(Json(Sessions { sessions }).into_response())
}

#[derive(Serialize, ToSchema)]
struct SignedOut {
    /// How many other sessions ended.
    signed_out: u64,
}

/// Signs out every other session of the caller and ends the sign-ins `docker login`
/// stored with the password (with a session only).
#[utoipa::path(delete, path = "/api/v1/me/sessions", tag = "accounts",
    responses((status = 200, body = SignedOut), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json")))]
async fn sign_out_others(
    State(auth): State<AuthService>,
    SessionOnly(SignedIn { account, .. }): SessionOnly,
    headers: HeaderMap,
) -> ApiResult {
    let cookie = session_token(&auth, &headers).unwrap_or_default();
    let signed_out = auth.sign_out_other_sessions(&account, cookie).await?;
    Ok(Json(SignedOut { signed_out }).into_response())
}

#[derive(Deserialize, ToSchema)]
struct PasswordChange {
    current: String,
    #[schema(min_length = 8, max_length = 1024)]
    new: String,
}

/// Sets a new password after checking the current one; every other session ends, this one
/// and access tokens stay; the address is told (with a session only).
#[utoipa::path(put, path = "/api/v1/me/password", tag = "accounts", request_body = PasswordChange,
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, body = ProblemDocument, content_type = "application/problem+json")))]
async fn change_password(
    State(auth): State<AuthService>,
    SessionOnly(SignedIn { account, .. }): SessionOnly,
    request: Request,
) -> ApiResult {
    let ip = client_ip(request.extensions());
    let cookie = session_token(&auth, request.headers()).unwrap_or_default().to_owned();
    let ApiJson(form) = ApiJson::<PasswordChange>::from_request(request, &()).await?;
    match auth.change_password(&account, &form.current, &form.new, &cookie, ip).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => Ok(crate::problem::auth_problem(e)),
    }
}

#[derive(Deserialize, ToSchema)]
struct EmailChange {
    #[schema(format = Email)]
    email: String,
    /// The current password.
    password: String,
}

/// Mails a link to the new address that makes it the account's once followed; the
/// current address is told. An address another account has gets the same answer and no
/// mail (with a session only).
#[utoipa::path(post, path = "/api/v1/me/email", tag = "accounts", request_body = EmailChange,
    responses((status = 202), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, body = ProblemDocument, content_type = "application/problem+json")))]
async fn change_email(State(auth): State<AuthService>, SessionOnly(SignedIn { account, .. }): SessionOnly, request: Request) -> ApiResult {
    let ip = client_ip(request.extensions());
    let ApiJson(form) = ApiJson::<EmailChange>::from_request(request, &()).await?;
    match auth.request_email_change(&account, &form.password, form.email.trim(), ip).await {
        Ok(()) => Ok(StatusCode::ACCEPTED.into_response()),
        Err(e) => Ok(crate::problem::auth_problem(e)),
    }
}

#[derive(Deserialize, ToSchema)]
struct EmailToken {
    /// The secret from the mailed link.
    token: String,
}

#[derive(Serialize, ToSchema)]
struct EmailChanged {
    name: String,
    email: String,
}

/// Follows an email-change link: its address becomes the account's, verified.
#[utoipa::path(post, path = "/api/v1/accounts/email/confirm", tag = "accounts", request_body = EmailToken,
    responses((status = 200, body = EmailChanged), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn confirm_email(State(auth): State<AuthService>, ApiJson(form): ApiJson<EmailToken>) -> ApiResult {
    let account = auth.confirm_email_change(&form.token).await?;
    Ok(Json(EmailChanged { name: account.name, email: account.email.unwrap_or_default() }).into_response())
}

#[derive(Deserialize, ToSchema)]
struct MemberRole {
    role: Role,
}

/// Gives a member another role (owners and administrators); the last owner stays one.
#[utoipa::path(put, path = "/api/v1/orgs/{org}/members/{member}", tag = "accounts", request_body = MemberRole,
    params(("org" = String, Path), ("member" = String, Path)),
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn set_role(
    State(auth): State<AuthService>,
    SignedIn { account, .. }: SignedIn,
    Path((org, member)): Path<(String, String)>,
    ApiJson(form): ApiJson<MemberRole>,
) -> ApiResult {
    auth.set_member_role(&account, &org, &member, form.role.into()).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Removes a member (owners and administrators); the last owner stays.
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/members/{member}", tag = "accounts",
    params(("org" = String, Path), ("member" = String, Path)),
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn remove_member(
    State(auth): State<AuthService>,
    SignedIn { account, .. }: SignedIn,
    Path((org, member)): Path<(String, String)>,
) -> ApiResult {
    auth.remove_member(&account, &org, &member).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Leaves an organization; its last owner cannot until another member is made owner.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/leave", tag = "accounts", params(("org" = String, Path)),
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn leave(State(auth): State<AuthService>, SignedIn { account, .. }: SignedIn, Path(org): Path<String>) -> ApiResult {
    auth.leave(&account, &org).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, ToSchema)]
struct Transfer {
    /// The member who becomes an owner; the caller becomes a maintainer.
    to: String,
}

/// Hands ownership to another member; the caller, an owner, becomes a maintainer.
#[utoipa::path(post, path = "/api/v1/orgs/{org}/transfer", tag = "accounts", request_body = Transfer, params(("org" = String, Path)),
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn transfer(
    State(auth): State<AuthService>,
    SignedIn { account, .. }: SignedIn,
    Path(org): Path<String>,
    ApiJson(form): ApiJson<Transfer>,
) -> ApiResult {
    auth.transfer_ownership(&account, &org, &form.to).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    delete_account,
    sessions,
    sign_out_others,
    change_password,
    change_email,
    confirm_email,
    set_role,
    remove_member,
    leave,
    transfer
))]
pub struct SettingsApi;

//! The account API under /api/v1: sign-up, email verification, sessions (cookies),
//! password reset, access tokens, organizations and invitations. Errors are RFC 9457
//! problem documents. Cookie-authenticated requests that change state must echo the
//! session's CSRF token in `X-CSRF-Token`.

use axum::extract::{Path, Request, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use utoipa::ToSchema;
use slipway_auth::access::OrgRole;
use slipway_auth::scope::ScopeRule;
use slipway_auth::{client_ip, AuthError, AuthService};

use crate::problem::{ApiResult, Problem, ProblemDocument};
use crate::session::{base_url, cookie, scheme, session_cookie, signed_in, SESSION_COOKIE};

pub fn router(auth: AuthService) -> Router {
    Router::new()
        .route("/api/v1/accounts", post(sign_up))
        .route("/api/v1/accounts/verify", post(verify))
        .route("/api/v1/session", post(sign_in).delete(sign_out))
        .route("/api/v1/me", get(me))
        .route("/api/v1/password-reset", post(request_reset))
        .route("/api/v1/password-reset/confirm", post(confirm_reset))
        .route("/api/v1/tokens", get(list_tokens).post(create_token))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route("/api/v1/orgs", post(create_org))
        .route("/api/v1/orgs/{org}/members", get(members))
        .route("/api/v1/orgs/{org}/invitations", post(invite))
        .route("/api/v1/invitations/accept", post(accept))
        .with_state(auth)
}

#[derive(Deserialize, ToSchema)]
struct SignUp {
    name: String,
    email: String,
    password: String,
}

#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = SignUp, responses((status = 201, description = "Created; a verification link is mailed"), (status = 422, body = ProblemDocument)))]
async fn sign_up(State(auth): State<AuthService>, headers: HeaderMap, Json(form): Json<SignUp>) -> ApiResult {
    let account = auth.sign_up(&form.name, &form.email, &form.password, &base_url(&auth, &headers)).await?;
    let body = serde_json::json!({"name": account.name, "email": account.email, "verified": false});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize, ToSchema)]
struct TokenForm {
    token: String,
}

#[utoipa::path(post, path = "/api/v1/accounts/verify", tag = "accounts", request_body = TokenForm, responses((status = 204), (status = 422, body = ProblemDocument)))]
async fn verify(State(auth): State<AuthService>, Json(form): Json<TokenForm>) -> ApiResult {
    auth.verify_email(&form.token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, ToSchema)]
struct Credentials {
    name: String,
    password: String,
}

#[utoipa::path(post, path = "/api/v1/session", tag = "accounts", request_body = Credentials, responses((status = 200, description = "Signed in: a session cookie is set; the body holds the CSRF token"), (status = 401, body = ProblemDocument), (status = 429, body = ProblemDocument)))]
async fn sign_in(State(auth): State<AuthService>, request: Request) -> ApiResult {
    let ip = client_ip(request.extensions());
    let secure = scheme(&auth, request.headers()) == "https";
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|_| Problem(StatusCode::PAYLOAD_TOO_LARGE, "body too large".into()))?;
    let form: Credentials =
        serde_json::from_slice(&body).map_err(|e| Problem(StatusCode::BAD_REQUEST, format!("expected {{\"name\", \"password\"}}: {e}")))?;
    let (cookie, csrf, account) = auth.sign_in(&form.name, &form.password, ip).await?;
    let mut response = Json(serde_json::json!({"name": account.name, "csrf_token": csrf})).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(&cookie, secure));
    Ok(response)
}

#[utoipa::path(delete, path = "/api/v1/session", tag = "accounts", responses((status = 204), (status = 401, body = ProblemDocument), (status = 403, body = ProblemDocument)))]
async fn sign_out(State(auth): State<AuthService>, headers: HeaderMap) -> ApiResult {
    signed_in(&auth, &headers, true).await?;
    if let Some(value) = cookie(&headers, SESSION_COOKIE) {
        auth.sign_out(value).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie("", false));
    Ok(response)
}

#[utoipa::path(get, path = "/api/v1/me", tag = "accounts", responses((status = 200, description = "The signed-in account, its organizations and CSRF token"), (status = 401, body = ProblemDocument)))]
async fn me(State(auth): State<AuthService>, headers: HeaderMap) -> ApiResult {
    let (account, csrf) = signed_in(&auth, &headers, false).await?;
    let organizations: Vec<_> = auth
        .db()
        .memberships(&account.id)
        .await
        .map_err(AuthError::from)?
        .into_iter()
        .map(|(name, role)| serde_json::json!({"name": name, "role": role}))
        .collect();
    Ok(Json(serde_json::json!({
        "name": account.name, "email": account.email, "site_role": account.site_role,
        "organizations": organizations, "csrf_token": csrf,
    }))
    .into_response())
}

#[derive(Deserialize, ToSchema)]
struct ResetRequest {
    email: String,
}

#[utoipa::path(post, path = "/api/v1/password-reset", tag = "accounts", request_body = ResetRequest, responses((status = 202), (status = 422, body = ProblemDocument)))]
async fn request_reset(State(auth): State<AuthService>, headers: HeaderMap, Json(form): Json<ResetRequest>) -> ApiResult {
    auth.request_password_reset(&form.email, &base_url(&auth, &headers)).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Deserialize, ToSchema)]
struct ResetConfirm {
    token: String,
    password: String,
}

#[utoipa::path(post, path = "/api/v1/password-reset/confirm", tag = "accounts", request_body = ResetConfirm, responses((status = 204), (status = 422, body = ProblemDocument)))]
async fn confirm_reset(State(auth): State<AuthService>, Json(form): Json<ResetConfirm>) -> ApiResult {
    auth.reset_password(&form.token, &form.password).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, ToSchema)]
struct NewToken {
    name: String,
    /// `PATTERN:ACTIONS` strings, e.g. `acme/*:pull,push`.
    scopes: Vec<String>,
    expires_days: Option<u32>,
}

#[utoipa::path(post, path = "/api/v1/tokens", tag = "accounts", request_body = NewToken, responses((status = 201, description = "The token, shown once"), (status = 401, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn create_token(State(auth): State<AuthService>, headers: HeaderMap, Json(form): Json<NewToken>) -> ApiResult {
    let (account, _) = signed_in(&auth, &headers, true).await?;
    let rules = form
        .scopes
        .iter()
        .map(|s| ScopeRule::parse(s).ok_or_else(|| Problem(StatusCode::UNPROCESSABLE_ENTITY, format!("scope {s:?} is not PATTERN:pull[,push][,delete]"))))
        .collect::<Result<Vec<_>, _>>()?;
    let (secret, record) = auth.create_token(&account.name, &form.name, &rules, form.expires_days).await?;
    let body = serde_json::json!({"id": record.id, "name": record.name, "token": secret, "expires_at": record.expires_at});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[utoipa::path(get, path = "/api/v1/tokens", tag = "accounts", responses((status = 200, description = "The caller's access tokens"), (status = 401, body = ProblemDocument)))]
async fn list_tokens(State(auth): State<AuthService>, headers: HeaderMap) -> ApiResult {
    let (account, _) = signed_in(&auth, &headers, false).await?;
    let tokens: Vec<_> = auth
        .db()
        .access_tokens_of(&account.id)
        .await
        .map_err(AuthError::from)?
        .into_iter()
        .map(|t| {
            serde_json::json!({
                "id": t.id, "name": t.name, "scopes": serde_json::from_str::<serde_json::Value>(&t.scopes).unwrap_or_default(),
                "created_at": t.created_at, "expires_at": t.expires_at, "last_used_at": t.last_used_at, "revoked_at": t.revoked_at,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "tokens": tokens })).into_response())
}

#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "accounts", params(("id" = String, Path)), responses((status = 204), (status = 401, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn revoke_token(State(auth): State<AuthService>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let (account, _) = signed_in(&auth, &headers, true).await?;
    let owned = auth.db().access_token(&id).await.map_err(AuthError::from)?.is_some_and(|t| t.account_id == account.id);
    if !owned {
        return Err(Problem(StatusCode::NOT_FOUND, format!("you have no token {id}")));
    }
    auth.revoke_token(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, ToSchema)]
struct NewOrg {
    name: String,
}

#[utoipa::path(post, path = "/api/v1/orgs", tag = "accounts", request_body = NewOrg, responses((status = 201), (status = 401, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn create_org(State(auth): State<AuthService>, headers: HeaderMap, Json(form): Json<NewOrg>) -> ApiResult {
    let (account, _) = signed_in(&auth, &headers, true).await?;
    auth.create_organization(&form.name, &account.name).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({"name": form.name, "owner": account.name}))).into_response())
}

#[utoipa::path(get, path = "/api/v1/orgs/{org}/members", tag = "accounts", params(("org" = String, Path)), responses((status = 200, description = "Members and their roles"), (status = 401, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn members(State(auth): State<AuthService>, headers: HeaderMap, Path(org): Path<String>) -> ApiResult {
    let (account, _) = signed_in(&auth, &headers, false).await?;
    let members: Vec<_> = auth
        .members(&account, &org)
        .await?
        .into_iter()
        .map(|(name, role)| serde_json::json!({"name": name, "role": role}))
        .collect();
    Ok(Json(serde_json::json!({ "members": members })).into_response())
}

#[derive(Deserialize, ToSchema)]
struct Invitation {
    email: String,
    role: String,
}

#[utoipa::path(post, path = "/api/v1/orgs/{org}/invitations", tag = "accounts", params(("org" = String, Path)), request_body = Invitation, responses((status = 202), (status = 401, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn invite(State(auth): State<AuthService>, headers: HeaderMap, Path(org): Path<String>, Json(form): Json<Invitation>) -> ApiResult {
    let (account, _) = signed_in(&auth, &headers, true).await?;
    let role = OrgRole::parse(&form.role)
        .ok_or_else(|| Problem(StatusCode::UNPROCESSABLE_ENTITY, "role must be owner, maintainer or viewer".into()))?;
    auth.invite(&account, &org, &form.email, role, &base_url(&auth, &headers)).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "accounts", request_body = TokenForm, responses((status = 200, description = "The organization joined and the role"), (status = 401, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn accept(State(auth): State<AuthService>, headers: HeaderMap, Json(form): Json<TokenForm>) -> ApiResult {
    let (account, _) = signed_in(&auth, &headers, true).await?;
    let (org, role) = auth.accept_invitation(&account, &form.token).await?;
    Ok(Json(serde_json::json!({"org": org, "role": role.as_str()})).into_response())
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(sign_up, verify, sign_in, sign_out, me, request_reset, confirm_reset, create_token, list_tokens, revoke_token, create_org, members, invite, accept),
    tags((name = "accounts", description = "Sign-up, sessions, tokens and organizations"))
)]
pub struct AccountApi;

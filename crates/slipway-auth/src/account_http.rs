//! The account API under /api/v1: sign-up, email verification, sessions (cookies),
//! password reset, and personal access tokens. Errors are RFC 9457 problem documents.
//! Cookie-authenticated requests that change state must echo the session's CSRF token in
//! `X-CSRF-Token`.

use axum::extract::{Path, Query, Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::Deserialize;
use slipway_db::AccountRecord;

use crate::access::OrgRole;
use crate::scope::ScopeRule;
use crate::service::AuthService;
use crate::token_http::client_ip;
use crate::AuthError;

const COOKIE: &str = "slipway_session";

pub fn router(auth: AuthService) -> Router {
    Router::new()
        .route("/api/v1/accounts", post(sign_up))
        .route("/api/v1/accounts/verify", post(verify))
        .route("/verify-email", get(verify_page))
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

/// An RFC 9457 problem response.
struct Problem(StatusCode, String);

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let title = self.0.canonical_reason().unwrap_or("error");
        let body = serde_json::json!({"type": "about:blank", "title": title, "status": self.0.as_u16(), "detail": self.1});
        let mut response = (self.0, Json(body)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        response
    }
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Problem {
        let status = match &e {
            AuthError::BadCredentials | AuthError::Unverified => StatusCode::UNAUTHORIZED,
            AuthError::Throttled => StatusCode::TOO_MANY_REQUESTS,
            AuthError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AuthError::NotFound(_) => StatusCode::NOT_FOUND,
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthError::Token(_) | AuthError::Db(_) | AuthError::Keys(_) => {
                tracing::error!(error = %e, "account API failure");
                return Problem(StatusCode::INTERNAL_SERVER_ERROR, "internal server error".into());
            }
        };
        Problem(status, e.to_string())
    }
}

type ApiResult = Result<Response, Problem>;

/// The base URL links in mail point to: the configured public URL, else this request's.
fn base_url(auth: &AuthService, headers: &HeaderMap) -> String {
    if let Some(url) = &auth.settings().public_url {
        return url.clone();
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    format!("{}://{host}", scheme(headers))
}

fn scheme(headers: &HeaderMap) -> &str {
    headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http")
}

fn cookie_value(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(COOKIE)?.strip_prefix('='))
}

/// The signed-in account; for state changes, also checks the CSRF token.
async fn signed_in(auth: &AuthService, headers: &HeaderMap, changes_state: bool) -> Result<(AccountRecord, String), Problem> {
    let unauthenticated = || Problem(StatusCode::UNAUTHORIZED, "sign in first".into());
    let cookie = cookie_value(headers).ok_or_else(unauthenticated)?;
    let (account, csrf) = auth.session(cookie).await?.ok_or_else(unauthenticated)?;
    if changes_state {
        let sent = headers.get("x-csrf-token").map(|v| v.as_bytes()).unwrap_or_default();
        let matches = sent.len() == csrf.len() && sent.iter().zip(csrf.as_bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0;
        if !matches {
            return Err(Problem(StatusCode::FORBIDDEN, "missing or wrong X-CSRF-Token".into()));
        }
    }
    Ok((account, csrf))
}

#[derive(Deserialize)]
struct SignUp {
    name: String,
    email: String,
    password: String,
}

async fn sign_up(State(auth): State<AuthService>, headers: HeaderMap, Json(form): Json<SignUp>) -> ApiResult {
    let account = auth.sign_up(&form.name, &form.email, &form.password, &base_url(&auth, &headers)).await?;
    let body = serde_json::json!({"name": account.name, "email": account.email, "verified": false});
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

#[derive(Deserialize)]
struct TokenForm {
    token: String,
}

async fn verify(State(auth): State<AuthService>, Json(form): Json<TokenForm>) -> ApiResult {
    auth.verify_email(&form.token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// The page the verification email links to. The link's secret is single-use, so a GET
/// that consumes it is safe to follow.
async fn verify_page(State(auth): State<AuthService>, Query(form): Query<TokenForm>) -> Response {
    let (status, message) = match auth.verify_email(&form.token).await {
        Ok(()) => (StatusCode::OK, "Your email address is verified. You can sign in now."),
        Err(_) => (StatusCode::BAD_REQUEST, "This verification link is invalid, used or expired."),
    };
    let page = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Slipway</title></head><body><main><h1>Email verification</h1><p>{message}</p></main></body></html>"
    );
    (status, Html(page)).into_response()
}

#[derive(Deserialize)]
struct Credentials {
    name: String,
    password: String,
}

async fn sign_in(State(auth): State<AuthService>, request: Request) -> ApiResult {
    let ip = client_ip(request.extensions());
    let secure = scheme(request.headers()) == "https" || auth.settings().public_url.as_deref().is_some_and(|u| u.starts_with("https://"));
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|_| Problem(StatusCode::PAYLOAD_TOO_LARGE, "body too large".into()))?;
    let form: Credentials =
        serde_json::from_slice(&body).map_err(|e| Problem(StatusCode::BAD_REQUEST, format!("expected {{\"name\", \"password\"}}: {e}")))?;
    let (cookie, csrf, account) = auth.sign_in(&form.name, &form.password, ip).await?;
    let cookie = format!(
        "{COOKIE}={cookie}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{}",
        14 * 24 * 3600,
        if secure { "; Secure" } else { "" }
    );
    let mut response = Json(serde_json::json!({"name": account.name, "csrf_token": csrf})).into_response();
    response.headers_mut().insert(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(|e| Problem(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?);
    Ok(response)
}

async fn sign_out(State(auth): State<AuthService>, headers: HeaderMap) -> ApiResult {
    signed_in(&auth, &headers, true).await?;
    if let Some(cookie) = cookie_value(&headers) {
        auth.sign_out(cookie).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response
        .headers_mut()
        .insert(header::SET_COOKIE, HeaderValue::from_static("slipway_session=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0"));
    Ok(response)
}

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

#[derive(Deserialize)]
struct ResetRequest {
    email: String,
}

async fn request_reset(State(auth): State<AuthService>, headers: HeaderMap, Json(form): Json<ResetRequest>) -> ApiResult {
    auth.request_password_reset(&form.email, &base_url(&auth, &headers)).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Deserialize)]
struct ResetConfirm {
    token: String,
    password: String,
}

async fn confirm_reset(State(auth): State<AuthService>, Json(form): Json<ResetConfirm>) -> ApiResult {
    auth.reset_password(&form.token, &form.password).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct NewToken {
    name: String,
    /// `PATTERN:ACTIONS` strings, e.g. `acme/*:pull,push`.
    scopes: Vec<String>,
    expires_days: Option<u32>,
}

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

async fn revoke_token(State(auth): State<AuthService>, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let (account, _) = signed_in(&auth, &headers, true).await?;
    let owned = auth.db().access_token(&id).await.map_err(AuthError::from)?.is_some_and(|t| t.account_id == account.id);
    if !owned {
        return Err(Problem(StatusCode::NOT_FOUND, format!("you have no token {id}")));
    }
    auth.revoke_token(&id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize)]
struct NewOrg {
    name: String,
}

async fn create_org(State(auth): State<AuthService>, headers: HeaderMap, Json(form): Json<NewOrg>) -> ApiResult {
    let (account, _) = signed_in(&auth, &headers, true).await?;
    auth.create_organization(&form.name, &account.name).await?;
    Ok((StatusCode::CREATED, Json(serde_json::json!({"name": form.name, "owner": account.name}))).into_response())
}

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

#[derive(Deserialize)]
struct Invitation {
    email: String,
    role: String,
}

async fn invite(State(auth): State<AuthService>, headers: HeaderMap, Path(org): Path<String>, Json(form): Json<Invitation>) -> ApiResult {
    let (account, _) = signed_in(&auth, &headers, true).await?;
    let role = OrgRole::parse(&form.role)
        .ok_or_else(|| Problem(StatusCode::UNPROCESSABLE_ENTITY, "role must be owner, maintainer or viewer".into()))?;
    auth.invite(&account, &org, &form.email, role, &base_url(&auth, &headers)).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

async fn accept(State(auth): State<AuthService>, headers: HeaderMap, Json(form): Json<TokenForm>) -> ApiResult {
    let (account, _) = signed_in(&auth, &headers, true).await?;
    let (org, role) = auth.accept_invitation(&account, &form.token).await?;
    Ok(Json(serde_json::json!({"org": org, "role": role.as_str()})).into_response())
}

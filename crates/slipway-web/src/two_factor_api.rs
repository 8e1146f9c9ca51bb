//! Two-factor sign-in under /api/v1/me/two-factor, as /settings/two-factor offers it:
//! set up with a code from an authenticator, new recovery codes, turned off. Every call
//! needs a session (an access token gets 403): a leaked token must not change how the
//! account signs in. A sign-in with it on sends the code as `otp` to POST /api/v1/session.

use axum::extract::{FromRequest, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_auth::{AuthService, client_ip};
use utoipa::ToSchema;

use crate::WebState;
use crate::extract::{ApiJson, SessionOnly, SignedIn};
use crate::problem::{ApiResult, ProblemDocument, auth_problem};

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/api/v1/me/two-factor", get(two_factor_status).post(begin_two_factor).delete(disable_two_factor))
        .route("/api/v1/me/two-factor/enable", post(enable_two_factor))
        .route("/api/v1/me/two-factor/recovery-codes", post(new_recovery_codes))
        .with_state(state)
}

#[derive(Serialize, ToSchema)]
struct Status {
    enabled: bool,
    /// The site requires it of this account: it cannot be turned off.
    required: bool,
    recovery_codes_left: i64,
}

/// Whether the caller uses two-factor sign-in (with a session only).
#[utoipa::path(get, path = "/api/v1/me/two-factor", tag = "accounts",
    responses((status = 200, body = Status), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json")))]
async fn two_factor_status(State(auth): State<AuthService>, SessionOnly(SignedIn { account, .. }): SessionOnly) -> ApiResult {
    let s = auth.two_factor_status(&account).await?;
    Ok(Json(Status { enabled: s.enabled, required: s.required, recovery_codes_left: s.recovery_codes_left }).into_response())
}

#[derive(Serialize, ToSchema)]
struct Enrolment {
    /// The key to type into an authenticator app (base32).
    secret: String,
    /// The same as an `otpauth://totp/` URI, as QR codes carry it.
    otpauth_uri: String,
}

/// Starts setting up two-factor sign-in: a new secret for the authenticator (replacing an
/// unfinished set-up); 409 when it is on (with a session only).
#[utoipa::path(post, path = "/api/v1/me/two-factor", tag = "accounts",
    responses((status = 201, body = Enrolment), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json")))]
async fn begin_two_factor(State(auth): State<AuthService>, SessionOnly(SignedIn { account, .. }): SessionOnly) -> ApiResult {
    let e = auth.begin_two_factor(&account).await?;
    Ok((StatusCode::CREATED, Json(Enrolment { secret: e.secret, otpauth_uri: e.otpauth_uri })).into_response())
}

#[derive(Deserialize, ToSchema)]
struct Code {
    /// The authenticator's current six-digit code.
    code: String,
}

#[derive(Serialize, ToSchema)]
struct RecoveryCodes {
    /// Ten one-time codes that stand in for the authenticator: shown only now.
    recovery_codes: Vec<String>,
}

/// Finishes setting up with the authenticator's current code; answers the recovery codes
/// (with a session only). Wrong codes are counted and slowed down like failed sign-ins.
#[utoipa::path(post, path = "/api/v1/me/two-factor/enable", tag = "accounts", request_body = Code,
    responses((status = 200, body = RecoveryCodes), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, body = ProblemDocument, content_type = "application/problem+json")))]
async fn enable_two_factor(
    State(auth): State<AuthService>,
    SessionOnly(SignedIn { account, .. }): SessionOnly,
    ApiJson(form): ApiJson<Code>,
) -> ApiResult {
    match auth.enable_two_factor(&account, &form.code).await {
        Ok(recovery_codes) => Ok(Json(RecoveryCodes { recovery_codes }).into_response()),
        Err(e) => Ok(auth_problem(e)),
    }
}

#[derive(Deserialize, ToSchema)]
struct Password {
    /// The current password.
    password: String,
}

/// Replaces the recovery codes with ten new ones, after the password (with a session only).
#[utoipa::path(post, path = "/api/v1/me/two-factor/recovery-codes", tag = "accounts", request_body = Password,
    responses((status = 200, body = RecoveryCodes), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, body = ProblemDocument, content_type = "application/problem+json")))]
async fn new_recovery_codes(
    State(auth): State<AuthService>,
    SessionOnly(SignedIn { account, .. }): SessionOnly,
    request: Request,
) -> ApiResult {
    let ip = client_ip(request.extensions());
    let ApiJson(form) = ApiJson::<Password>::from_request(request, &()).await?;
    match auth.new_recovery_codes(&account, &form.password, ip).await {
        Ok(recovery_codes) => Ok(Json(RecoveryCodes { recovery_codes }).into_response()),
        Err(e) => Ok(auth_problem(e)),
    }
}

/// Turns two-factor sign-in off, after the password; 403 while the site requires it of
/// the account (with a session only).
#[utoipa::path(delete, path = "/api/v1/me/two-factor", tag = "accounts", request_body = Password,
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, body = ProblemDocument, content_type = "application/problem+json")))]
async fn disable_two_factor(
    State(auth): State<AuthService>,
    SessionOnly(SignedIn { account, .. }): SessionOnly,
    request: Request,
) -> ApiResult {
    let ip = client_ip(request.extensions());
    let ApiJson(form) = ApiJson::<Password>::from_request(request, &()).await?;
    match auth.disable_two_factor(&account, &form.password, ip).await {
        Ok(()) => Ok(StatusCode::NO_CONTENT.into_response()),
        Err(e) => Ok(auth_problem(e)),
    }
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(two_factor_status, begin_two_factor, enable_two_factor, new_recovery_codes, disable_two_factor))]
pub struct TwoFactorApi;

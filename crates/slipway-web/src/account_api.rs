//! The account API under /api/v1: sign-up, email verification, sessions (cookies),
//! password reset, access tokens, organizations and invitations. Errors are RFC 9457
//! problem documents. Cookie-authenticated requests that change state must echo the
//! session's CSRF token in `X-CSRF-Token`; an access token sent as `Authorization: Bearer`
//! needs no CSRF token but its API scopes, and cannot manage tokens or the session.

use axum::extract::{FromRequest, Path, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_auth::access::OrgRole;
use slipway_auth::scope::TokenRule;
use slipway_auth::{AccessTokenRecord, AuthError, AuthService, SignInStep, SignedUp, client_ip};
use slipway_types::ErrorKind;
use utoipa::ToSchema;

use crate::extract::{ApiJson, SessionOnly, SignedIn};
use crate::problem::{ApiResult, Problem, ProblemDocument};
use crate::session::{scheme, secure, session_cookie, session_token, user_agent};

pub fn router(auth: AuthService) -> Router {
    Router::new()
        .route("/api/v1/accounts", post(sign_up))
        .route("/api/v1/accounts/verify", post(verify))
        .route("/api/v1/accounts/verify/resend", post(resend_verification))
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
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,62}[a-z0-9]$")]
    name: String,
    #[schema(format = Email)]
    email: String,
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
}

#[derive(Serialize, ToSchema)]
struct AccountCreated {
    name: String,
    email: Option<String>,
    /// False until the mailed link is followed.
    verified: bool,
}

/// Creates an account and mails a verification link to its address. An address that
/// already has an account gets the same answer (its owner is told by mail), so sign-up
/// does not reveal who has an account; a taken name is refused (names are public).
#[utoipa::path(post, path = "/api/v1/accounts", tag = "accounts", request_body = SignUp,
    responses((status = 201, body = AccountCreated), (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn sign_up(State(auth): State<AuthService>, ApiJson(form): ApiJson<SignUp>) -> ApiResult {
    let verified = auth.sign_up(&form.name, &form.email, &form.password).await? == SignedUp::Verified;
    Ok((StatusCode::CREATED, Json(AccountCreated { name: form.name, email: Some(form.email), verified })).into_response())
}

#[derive(Deserialize, ToSchema)]
struct TokenForm {
    /// The secret from the mailed link.
    token: String,
}

/// Verifies an email address with the secret from the mailed link.
#[utoipa::path(post, path = "/api/v1/accounts/verify", tag = "accounts", request_body = TokenForm,
    responses((status = 204), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn verify(State(auth): State<AuthService>, ApiJson(form): ApiJson<TokenForm>) -> ApiResult {
    auth.verify_email(&form.token).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Mails the verification link again if the address belongs to an account that has not
/// verified it. The answer is the same either way, limited as reset requests are.
#[utoipa::path(post, path = "/api/v1/accounts/verify/resend", tag = "accounts", request_body = LinkRequest,
    responses((status = 202), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn resend_verification(State(auth): State<AuthService>, request: Request) -> ApiResult {
    let ip = client_ip(request.extensions());
    let ApiJson(form) = ApiJson::<LinkRequest>::from_request(request, &()).await?;
    auth.resend_verification(&form.email, ip).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Deserialize, ToSchema)]
struct Credentials {
    name: String,
    password: String,
    /// With two-factor sign-in on: the authenticator's current code, or a recovery code.
    #[serde(default)]
    otp: Option<String>,
}

#[derive(Serialize, ToSchema)]
struct SessionStarted {
    name: String,
    /// Echo it in `X-CSRF-Token` on requests that change state.
    csrf_token: String,
}

/// Signs in: sets the session cookie and returns its CSRF token.
#[utoipa::path(post, path = "/api/v1/session", tag = "accounts", request_body = Credentials,
    responses((status = 200, body = SessionStarted), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 429, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 503, body = ProblemDocument, content_type = "application/problem+json")))]
async fn sign_in(State(auth): State<AuthService>, request: Request) -> ApiResult {
    let ip = client_ip(request.extensions());
    let secure = scheme(&auth, request.headers()) == "https";
    let agent = user_agent(request.headers()).to_owned();
    let ApiJson(form) = ApiJson::<Credentials>::from_request(request, &()).await?;
    let opened = match auth.sign_in(&form.name, &form.password, ip, &agent).await {
        Ok(SignInStep::Session(opened)) => Ok(*opened),
        Ok(SignInStep::SecondFactor { set_up: true, .. }) => Err(AuthError::Forbidden(
            "this site requires two-factor sign-in of your account: sign in with a browser once to set it up".into(),
        )),
        Ok(SignInStep::SecondFactor { challenge, .. }) => match form.otp.as_deref() {
            Some(code) => auth.complete_sign_in(&challenge, code).await,
            None => Err(AuthError::CodeRequired),
        },
        Err(e) => Err(e),
    };
    let opened = match opened {
        Ok(opened) => opened,
        // With Retry-After when throttled or busy.
        Err(e) => return Ok(crate::problem::auth_problem(e)),
    };
    let mut response = Json(SessionStarted { name: opened.account.name, csrf_token: opened.csrf }).into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie(&opened.cookie, secure));
    Ok(response)
}

/// Signs out: ends the session (an access token gets 403).
#[utoipa::path(delete, path = "/api/v1/session", tag = "accounts",
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json")))]
async fn sign_out(State(auth): State<AuthService>, _signed: SessionOnly, headers: HeaderMap) -> ApiResult {
    if let Some(value) = session_token(&auth, &headers) {
        auth.sign_out(value).await?;
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie("", secure(&auth, &headers)));
    Ok(response)
}

#[derive(Serialize, ToSchema)]
struct Membership {
    name: String,
    role: String,
}

#[derive(Serialize, ToSchema)]
struct Me {
    name: String,
    email: Option<String>,
    /// user, moderator or admin.
    site_role: String,
    organizations: Vec<Membership>,
    /// The session's CSRF token; absent when the caller used an access token.
    #[serde(skip_serializing_if = "Option::is_none")]
    csrf_token: Option<String>,
}

/// The signed-in account, its organizations and its session's CSRF token.
#[utoipa::path(get, path = "/api/v1/me", tag = "accounts",
    responses((status = 200, body = Me), (status = 401, body = ProblemDocument, content_type = "application/problem+json")))]
async fn me(State(auth): State<AuthService>, SignedIn { account, csrf, .. }: SignedIn) -> ApiResult {
    let organizations = auth.memberships(&account).await?.into_iter().map(|(name, role)| Membership { name, role }).collect();
    Ok(Json(Me { name: account.name, email: account.email, site_role: account.site_role, organizations, csrf_token: csrf }).into_response())
}

/// An email address to mail a link to.
#[derive(Deserialize, ToSchema)]
struct LinkRequest {
    #[schema(format = Email)]
    email: String,
}

/// Mails a password reset code if the address has an account. The answer is the same
/// either way, and also when the mail is held back: requests are limited per address and
/// per client, and a code mailed in the last 15 minutes stands.
#[utoipa::path(post, path = "/api/v1/password-reset", tag = "accounts", request_body = LinkRequest,
    responses((status = 202), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn request_reset(State(auth): State<AuthService>, request: Request) -> ApiResult {
    let ip = client_ip(request.extensions());
    let ApiJson(form) = ApiJson::<LinkRequest>::from_request(request, &()).await?;
    auth.request_password_reset(&form.email, ip).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Deserialize, ToSchema)]
struct ResetConfirm {
    token: String,
    #[schema(min_length = 8, max_length = 1024)]
    password: String,
}

/// Sets a new password with the mailed code; every session ends and the account's access
/// tokens are revoked (the owner is told by mail).
#[utoipa::path(post, path = "/api/v1/password-reset/confirm", tag = "accounts", request_body = ResetConfirm,
    responses((status = 204), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn confirm_reset(State(auth): State<AuthService>, ApiJson(form): ApiJson<ResetConfirm>) -> ApiResult {
    auth.reset_password(&form.token, &form.password).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, ToSchema)]
pub(crate) struct NewToken {
    #[schema(min_length = 1, max_length = 100)]
    pub(crate) name: String,
    /// `PATTERN:ACTIONS` strings for the registry, e.g. `acme/*:pull,push` (a pattern has
    /// at most 255 bytes and 16 `*`), and API scopes for bearer use of this API: `api:read`
    /// (GET), `api:write` (everything), `api:fulfillment` (reserved for commerce). A token
    /// uses the API only with an API scope, and the registry only with repository rules.
    #[schema(min_items = 1, max_items = 32)]
    pub(crate) scopes: Vec<String>,
    #[schema(minimum = 1, maximum = 3650)]
    pub(crate) expires_days: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct TokenCreated {
    id: String,
    name: String,
    /// The secret, shown only now: use it as a password (registry) or as
    /// `Authorization: Bearer` (this API).
    token: String,
    expires_at: Option<i64>,
}

/// Creates a personal access token (with a session only: an access token gets 403).
#[utoipa::path(post, path = "/api/v1/tokens", tag = "accounts", request_body = NewToken,
    responses((status = 201, body = TokenCreated), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn create_token(
    State(auth): State<AuthService>,
    SessionOnly(SignedIn { account, .. }): SessionOnly,
    ApiJson(form): ApiJson<NewToken>,
) -> ApiResult {
    let rules = parse_scopes(&form.scopes)?;
    let (secret, record) = auth.create_token(&account.name, &form.name, &rules, form.expires_days).await?;
    Ok(TokenCreated::answer(secret, record))
}

/// A new token's scopes, as the API takes them.
pub(crate) fn parse_scopes(scopes: &[String]) -> Result<Vec<TokenRule>, Problem> {
    scopes
        .iter()
        .map(|s| {
            TokenRule::parse(s).ok_or_else(|| {
                Problem(ErrorKind::Invalid, format!("scope {s:?} is not PATTERN:pull[,push][,delete] or api:read|write|fulfillment"))
            })
        })
        .collect()
}

impl TokenCreated {
    /// 201 with the new token's secret, shown this once.
    pub(crate) fn answer(secret: String, record: AccessTokenRecord) -> axum::response::Response {
        (StatusCode::CREATED, Json(TokenCreated { id: record.id, name: record.name, token: secret, expires_at: record.expires_at }))
            .into_response()
    }
}

impl From<AccessTokenRecord> for TokenInfo {
    fn from(t: AccessTokenRecord) -> TokenInfo {
        TokenInfo {
            scopes: serde_json::from_str(&t.scopes).unwrap_or_default(),
            id: t.id,
            name: t.name,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct TokenInfo {
    id: String,
    name: String,
    /// `{"repositories": PATTERN, "actions": [...]}` rules and `{"api": "read"}` scopes.
    #[schema(value_type = Vec<Object>)]
    scopes: serde_json::Value,
    created_at: i64,
    expires_at: Option<i64>,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

#[derive(Serialize, ToSchema)]
struct TokenList {
    tokens: Vec<TokenInfo>,
}

/// The caller's access tokens (never their secrets).
#[utoipa::path(get, path = "/api/v1/tokens", tag = "accounts",
    responses((status = 200, body = TokenList), (status = 401, body = ProblemDocument, content_type = "application/problem+json")))]
async fn list_tokens(State(auth): State<AuthService>, SignedIn { account, .. }: SignedIn) -> ApiResult {
    let tokens = auth.access_tokens_of(&account).await?.into_iter().map(TokenInfo::from).collect();
    Ok(Json(TokenList { tokens }).into_response())
}

/// Revokes one of the caller's access tokens (with a session only: an access token gets 403).
#[utoipa::path(delete, path = "/api/v1/tokens/{id}", tag = "accounts", params(("id" = String, Path)),
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn revoke_token(
    State(auth): State<AuthService>,
    SessionOnly(SignedIn { account, .. }): SessionOnly,
    Path(id): Path<String>,
) -> ApiResult {
    auth.revoke_own_token(&account, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, ToSchema)]
struct NewOrg {
    #[schema(pattern = "^[a-z0-9][a-z0-9._-]{0,62}[a-z0-9]$")]
    name: String,
}

#[derive(Serialize, ToSchema)]
struct OrgCreated {
    name: String,
    owner: String,
}

/// Creates an organization with the caller as its owner.
#[utoipa::path(post, path = "/api/v1/orgs", tag = "accounts", request_body = NewOrg,
    responses((status = 201, body = OrgCreated), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn create_org(State(auth): State<AuthService>, SignedIn { account, .. }: SignedIn, ApiJson(form): ApiJson<NewOrg>) -> ApiResult {
    auth.create_organization(&form.name, &account.name).await?;
    Ok((StatusCode::CREATED, Json(OrgCreated { name: form.name, owner: account.name })).into_response())
}

#[derive(Serialize, ToSchema)]
struct Members {
    members: Vec<Membership>,
}

/// An organization's members and their roles (for its members).
#[utoipa::path(get, path = "/api/v1/orgs/{org}/members", tag = "accounts", params(("org" = String, Path)),
    responses((status = 200, body = Members), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn members(State(auth): State<AuthService>, SignedIn { account, .. }: SignedIn, Path(org): Path<String>) -> ApiResult {
    let members = auth.members(&account, &org).await?.into_iter().map(|(name, role)| Membership { name, role }).collect();
    Ok(Json(Members { members }).into_response())
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Role {
    Owner,
    Maintainer,
    Viewer,
}

impl From<Role> for OrgRole {
    fn from(role: Role) -> OrgRole {
        match role {
            Role::Owner => OrgRole::Owner,
            Role::Maintainer => OrgRole::Maintainer,
            Role::Viewer => OrgRole::Viewer,
        }
    }
}

#[derive(Deserialize, ToSchema)]
struct Invitation {
    #[schema(format = Email)]
    email: String,
    role: Role,
}

/// Invites someone by email to join an organization (owners).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/invitations", tag = "accounts", params(("org" = String, Path)), request_body = Invitation,
    responses((status = 202), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn invite(
    State(auth): State<AuthService>,
    SignedIn { account, .. }: SignedIn,
    Path(org): Path<String>,
    ApiJson(form): ApiJson<Invitation>,
) -> ApiResult {
    auth.invite(&account, &org, &form.email, form.role.into()).await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

#[derive(Serialize, ToSchema)]
struct Joined {
    org: String,
    role: String,
}

/// Accepts an invitation with the mailed code.
#[utoipa::path(post, path = "/api/v1/invitations/accept", tag = "accounts", request_body = TokenForm,
    responses((status = 200, body = Joined), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn accept(State(auth): State<AuthService>, SignedIn { account, .. }: SignedIn, ApiJson(form): ApiJson<TokenForm>) -> ApiResult {
    let (org, role) = auth.accept_invitation(&account, &form.token).await?;
    Ok(Json(Joined { org, role: role.as_str().to_owned() }).into_response())
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(sign_up, verify, resend_verification, sign_in, sign_out, me, request_reset, confirm_reset, create_token, list_tokens, revoke_token, create_org, members, invite, accept),
    tags((name = "accounts", description = "Sign-up, sessions, tokens and organizations"))
)]
pub struct AccountApi;

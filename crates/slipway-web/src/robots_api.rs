//! An organization's robot accounts under /api/v1/orgs/{org}/robots, as its members page
//! offers them to owners: listed with their tokens, added with a role, given tokens (the
//! secret answered once), tokens revoked, deleted. Changes need a session (an access token
//! gets 403): a leaked token must not mint others.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_auth::AuthService;
use utoipa::ToSchema;

use crate::WebState;
use crate::account_api::{NewToken, Role, TokenCreated, TokenInfo, parse_scopes};
use crate::extract::{ApiJson, SessionOnly, SignedIn};
use crate::problem::{ApiResult, ProblemDocument};

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/api/v1/orgs/{org}/robots", get(list_robots).post(add_robot))
        .route("/api/v1/orgs/{org}/robots/{robot}", delete(delete_robot))
        .route("/api/v1/orgs/{org}/robots/{robot}/tokens", post(create_robot_token))
        .route("/api/v1/orgs/{org}/robots/{robot}/tokens/{id}", delete(revoke_robot_token))
        .with_state(state)
}

#[derive(Serialize, ToSchema)]
struct RobotInfo {
    /// In full, as `docker login -u` takes it: `org+name`.
    name: String,
    role: String,
    tokens: Vec<TokenInfo>,
}

#[derive(Serialize, ToSchema)]
struct Robots {
    robots: Vec<RobotInfo>,
}

/// The organization's robots and their tokens (never their secrets), for its owners.
#[utoipa::path(get, path = "/api/v1/orgs/{org}/robots", tag = "accounts", params(("org" = String, Path)),
    responses((status = 200, body = Robots), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn list_robots(State(auth): State<AuthService>, SignedIn { account, .. }: SignedIn, Path(org): Path<String>) -> ApiResult {
    let robots = auth
        .robots(&account, &org)
        .await?
        .into_iter()
        .map(|r| RobotInfo { name: r.account.name, role: r.role, tokens: r.tokens.into_iter().map(TokenInfo::from).collect() })
        .collect();
    Ok(Json(Robots { robots }).into_response())
}

#[derive(Deserialize, ToSchema)]
struct NewRobot {
    /// Its own part: the robot is named `org+name`.
    name: String,
    role: Role,
}

#[derive(Serialize, ToSchema)]
struct RobotAdded {
    name: String,
}

/// Adds a robot `org+name` with a role (owners, with a session only).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/robots", tag = "accounts", params(("org" = String, Path)), request_body = NewRobot,
    responses((status = 201, body = RobotAdded), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn add_robot(
    State(auth): State<AuthService>,
    SessionOnly(SignedIn { account, .. }): SessionOnly,
    Path(org): Path<String>,
    ApiJson(form): ApiJson<NewRobot>,
) -> ApiResult {
    let robot = auth.add_robot(&account, &org, &form.name, form.role.into()).await?;
    Ok((StatusCode::CREATED, Json(RobotAdded { name: robot.name })).into_response())
}

/// Deletes a robot: its tokens stop working, its name stays taken (owners, with a session only).
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/robots/{robot}", tag = "accounts",
    params(("org" = String, Path), ("robot" = String, Path, description = "`name` or `org+name`")),
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn delete_robot(
    State(auth): State<AuthService>,
    SessionOnly(SignedIn { account, .. }): SessionOnly,
    Path((org, robot)): Path<(String, String)>,
) -> ApiResult {
    auth.delete_robot(&account, &org, &robot).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A new token for a robot; its secret is answered only now (owners, with a session only).
#[utoipa::path(post, path = "/api/v1/orgs/{org}/robots/{robot}/tokens", tag = "accounts",
    params(("org" = String, Path), ("robot" = String, Path, description = "`name` or `org+name`")), request_body = NewToken,
    responses((status = 201, body = TokenCreated), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn create_robot_token(
    State(auth): State<AuthService>,
    SessionOnly(SignedIn { account, .. }): SessionOnly,
    Path((org, robot)): Path<(String, String)>,
    ApiJson(form): ApiJson<NewToken>,
) -> ApiResult {
    let rules = parse_scopes(&form.scopes)?;
    let (secret, record) = auth.create_robot_token(&account, &org, &robot, &form.name, &rules, form.expires_days).await?;
    Ok(TokenCreated::answer(secret, record))
}

/// Revokes one of a robot's tokens (owners, with a session only).
#[utoipa::path(delete, path = "/api/v1/orgs/{org}/robots/{robot}/tokens/{id}", tag = "accounts",
    params(("org" = String, Path), ("robot" = String, Path), ("id" = String, Path)),
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn revoke_robot_token(
    State(auth): State<AuthService>,
    SessionOnly(SignedIn { account, .. }): SessionOnly,
    Path((org, robot, id)): Path<(String, String, String)>,
) -> ApiResult {
    auth.revoke_robot_token(&account, &org, &robot, &id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(list_robots, add_robot, delete_robot, create_robot_token, revoke_robot_token))]
pub struct RobotsApi;

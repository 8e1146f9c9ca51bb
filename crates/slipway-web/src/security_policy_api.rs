//! The REST API of the vulnerability policy: a product's notices, deadlines and
//! exceptions (its publisher's members and staff), and the security team's classes and
//! exceptions.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::Serialize;
use slipway_catalog::vulnerability_policy::{ClassInput, ExceptionInput, SecurityException, SecurityStanding, VulnerabilityClass};
use utoipa::ToSchema;

use crate::WebState;
use crate::extract::{ApiJson, SignedIn};
use crate::problem::{ApiResult, ProblemDocument};

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/api/v1/products/{publisher}/{slug}/security-policy", get(standing))
        .route(
            "/api/v1/products/{publisher}/{slug}/security-policy/exceptions/{vulnerability}",
            put(grant_exception).delete(withdraw_exception),
        )
        .route("/api/v1/vulnerability-classes", get(classes))
        .route("/api/v1/vulnerability-classes/{vulnerability}", put(set_class))
        .with_state(state)
}

/// A product's standing under the vulnerability policy: every Critical and Major
/// vulnerability reported to its publisher (when, and the deadline: 72 hours and 7 days
/// from the report), which are past due, the exceptions granted and the classes the
/// security team set. Its publisher's members and staff.
#[utoipa::path(get, path = "/api/v1/products/{publisher}/{slug}/security-policy", tag = "security",
    params(("publisher" = String, Path), ("slug" = String, Path)),
    responses((status = 200, body = SecurityStanding), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn standing(State(state): State<WebState>, signed: SignedIn, Path((publisher, slug)): Path<(String, String)>) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    Ok(Json(state.catalog.security_standing(&viewer, &publisher, &slug).await?).into_response())
}

/// Excuses one vulnerability of a product from its deadline, with a reason, until
/// `expires_at` (within a year): the security team, not for a publisher they belong to.
#[utoipa::path(put, path = "/api/v1/products/{publisher}/{slug}/security-policy/exceptions/{vulnerability}", tag = "security",
    params(("publisher" = String, Path), ("slug" = String, Path), ("vulnerability" = String, Path)), request_body = ExceptionInput,
    responses((status = 200, body = SecurityException), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn grant_exception(
    State(state): State<WebState>,
    signed: SignedIn,
    Path((publisher, slug, vulnerability)): Path<(String, String, String)>,
    ApiJson(input): ApiJson<ExceptionInput>,
) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    Ok(Json(state.catalog.grant_security_exception(&viewer, &publisher, &slug, &vulnerability, &input).await?).into_response())
}

/// Withdraws an exception: the deadline counts again.
#[utoipa::path(delete, path = "/api/v1/products/{publisher}/{slug}/security-policy/exceptions/{vulnerability}", tag = "security",
    params(("publisher" = String, Path), ("slug" = String, Path), ("vulnerability" = String, Path)),
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn withdraw_exception(
    State(state): State<WebState>,
    signed: SignedIn,
    Path((publisher, slug, vulnerability)): Path<(String, String, String)>,
) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    state.catalog.withdraw_security_exception(&viewer, &publisher, &slug, &vulnerability).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Serialize, ToSchema)]
pub struct Classes {
    classes: Vec<VulnerabilityClass>,
}

/// The classes the security team set, for every product and for one (staff).
#[utoipa::path(get, path = "/api/v1/vulnerability-classes", tag = "security",
    responses((status = 200, body = Classes), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json")))]
async fn classes(State(state): State<WebState>, signed: SignedIn) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    Ok(Json(Classes { classes: state.catalog.vulnerability_classes(&viewer).await? }).into_response())
}

/// Sets a vulnerability's class (critical, major or minor, with a reason) for every
/// product, or for one (`product`: publisher/slug); `class` null removes it. Deadlines
/// follow at the next sweep: a raised class starts one, a lowered class ends it.
#[utoipa::path(put, path = "/api/v1/vulnerability-classes/{vulnerability}", tag = "security",
    params(("vulnerability" = String, Path)), request_body = ClassInput,
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn set_class(
    State(state): State<WebState>,
    signed: SignedIn,
    Path(vulnerability): Path<String>,
    ApiJson(input): ApiJson<ClassInput>,
) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    state.catalog.set_vulnerability_class(&viewer, &vulnerability, &input).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(standing, grant_exception, withdraw_exception, classes, set_class))]
pub struct SecurityPolicyApi;

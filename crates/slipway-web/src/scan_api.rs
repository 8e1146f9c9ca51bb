//! Security scanning under /api/v1: full results and on-demand scans for a publisher's
//! members (and moderators), a summary per version of a listing for everyone who can see it.

use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_catalog::{Listing, Viewer};
use slipway_policy::{Action, Actor, Resource, decide};
use slipway_security::{ScanRequested, ScanResults, SecuritySummary};
use utoipa::{IntoParams, ToSchema};

use crate::WebState;
use crate::extract::{ApiJson, ApiQuery, SignedIn};
use crate::problem::{ApiResult, Problem, ProblemDocument};

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/api/v1/scans", get(scan_results).post(request_scan))
        .route("/api/v1/products/{publisher}/{slug}/security", get(product_security))
        .with_state(state)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ScanQuery {
    /// The repository, e.g. `acme/tools/app`.
    repository: String,
    /// A tag or a digest of it.
    reference: String,
}

/// A manifest's scan results: for each image (each platform of a multi-platform image)
/// its packages with the layer that introduced them, and the vulnerabilities found.
/// Only members of the organization owning the repository and moderators see them; to
/// everyone else they do not exist (404).
#[utoipa::path(get, path = "/api/v1/scans", tag = "security", params(ScanQuery),
    responses((status = 200, body = ScanResults), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn scan_results(State(state): State<WebState>, headers: HeaderMap, ApiQuery(query): ApiQuery<ScanQuery>) -> ApiResult {
    let viewer = crate::store_api::maybe_viewer(&state, &headers).await?;
    let results = state.scanning.results(viewer.as_ref().map(|v| &v.subject), &query.repository, &query.reference).await?;
    Ok(Json(results).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct ScanRequest {
    /// The repository, e.g. `acme/tools/app`.
    repository: String,
    /// A tag or digest; without one, every tagged manifest of the repository is scanned.
    reference: Option<String>,
}

/// Queues scans of a repository's manifest (or of all its tagged manifests) now, for
/// maintainers and owners of its organization and moderators. Answers 202 with the jobs.
#[utoipa::path(post, path = "/api/v1/scans", tag = "security", request_body = ScanRequest,
    responses((status = 202, body = ScanRequested), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn request_scan(State(state): State<WebState>, signed: SignedIn, ApiJson(request): ApiJson<ScanRequest>) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    let requested = state.scanning.request_scan(Some(&viewer.subject), &request.repository, request.reference.as_deref()).await?;
    Ok((StatusCode::ACCEPTED, Json(requested)).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct VersionSecurity {
    tier: String,
    tag: String,
    digest: String,
    /// Absent until the version has been scanned.
    summary: Option<SecuritySummary>,
}

#[derive(Serialize, ToSchema)]
pub struct ProductSecurity {
    /// False when the publisher keeps its scan results to itself (the default): the
    /// versions come without summaries, except to its members and staff.
    shared: bool,
    versions: Vec<VersionSecurity>,
}

/// Vulnerabilities per policy class for each version a product offers: for its
/// publisher's members and staff, and for everyone where the publisher shares them
/// (`public_scan_summary`).
#[utoipa::path(get, path = "/api/v1/products/{publisher}/{slug}/security", tag = "security", params(("publisher" = String, Path), ("slug" = String, Path)),
    responses((status = 200, body = ProductSecurity), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn product_security(State(state): State<WebState>, headers: HeaderMap, Path((publisher, slug)): Path<(String, String)>) -> ApiResult {
    let viewer = crate::store_api::maybe_viewer(&state, &headers).await?;
    let listing = state.catalog.listing(viewer.as_ref(), &publisher, &slug).await?;
    let shows = shows_summaries(viewer.as_ref(), &listing);
    let mut versions = Vec::new();
    for version in state.catalog.versions(&listing).await? {
        let summary = if shows { summary(&state, &listing, &version.tier, &version.digest).await? } else { None };
        versions.push(VersionSecurity { tier: version.tier, tag: version.tag, digest: version.digest, summary });
    }
    Ok(Json(ProductSecurity { shared: listing.public_scan_summary, versions }).into_response())
}

/// Whether `viewer` sees the vulnerability counts of `listing`'s versions: everyone when
/// its publisher shares them, otherwise those who may read its scans (its members and
/// staff).
pub(crate) fn shows_summaries(viewer: Option<&Viewer>, listing: &Listing) -> bool {
    let actor = viewer.map_or(Actor::ANONYMOUS, Viewer::actor);
    listing.public_scan_summary
        || listing.tiers.iter().any(|t| decide(&actor, Action::ReadScans, &Resource::Scans { repository: &t.repository }).is_allowed())
}

/// The summary of a version of `listing` offered by the tier named `tier`.
pub(crate) async fn summary(state: &WebState, listing: &Listing, tier: &str, digest: &str) -> Result<Option<SecuritySummary>, Problem> {
    let Some(tier) = listing.tiers.iter().find(|t| t.name == tier) else { return Ok(None) };
    Ok(state.scanning.summary(&tier.repository, digest).await?)
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(scan_results, request_scan, product_security),
    tags((name = "security", description = "Vulnerability scans of images: results for publishers, summaries for everyone"))
)]
pub struct ScanApi;

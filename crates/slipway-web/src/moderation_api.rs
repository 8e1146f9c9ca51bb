//! The REST API of moderation: moving a listing through review (submit, review, request
//! changes, approve, publish, unpublish, hold, revoke), its review thread, the moderators'
//! queue, and the publisher agreement.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::{get, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_catalog::{
    Listing, ListingEvent, ListingStatus, MoveRequest, PUBLISHER_AGREEMENT, PUBLISHER_AGREEMENT_VERSION, PendingVersion, QueuedSubmission,
    Revision,
};
use utoipa::ToSchema;

use crate::WebState;
use crate::extract::{ApiJson, SignedIn};
use crate::problem::{ApiResult, ProblemDocument};
use crate::session::mail_base_url;

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/api/v1/products/{publisher}/{slug}/status", put(move_listing))
        .route("/api/v1/products/{publisher}/{slug}/review", get(review_thread).post(add_message))
        .route("/api/v1/products/{publisher}/{slug}/revision", get(revision))
        .route("/api/v1/products/{publisher}/{slug}/revision/status", put(move_revision))
        .route("/api/v1/products/{publisher}/{slug}/releases", get(pending_versions).post(release_versions))
        .route("/api/v1/moderation/queue", get(queue))
        .route("/api/v1/publisher-agreement", get(agreement))
        .route("/api/v1/publishers/{org}/agreement", get(accepted).put(accept))
        .with_state(state)
}

/// Moves a product through moderation: `submitted` (its publisher: needs where it runs,
/// support for Docker Enterprise, the publisher agreement and an image for every tier),
/// `in_review`, `changes_requested`, `approved` (moderators who are not its members),
/// `draft` (a withdrawn or rejected submission), `published` (once approved),
/// `unpublished`, `on_hold` and back to `published`, `revoked`. A move from a status that
/// does not lead to the one asked, or that a concurrent move overtook, is 409.
#[utoipa::path(put, path = "/api/v1/products/{publisher}/{slug}/status", tag = "moderation",
    params(("publisher" = String, Path), ("slug" = String, Path)), request_body = MoveRequest,
    responses((status = 200, body = Listing), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn move_listing(
    State(state): State<WebState>,
    signed: SignedIn,
    Path((publisher, slug)): Path<(String, String)>,
    ApiJson(input): ApiJson<MoveRequest>,
) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    let listing = state.catalog.move_listing(&viewer, &publisher, &slug, &input, &mail_base_url(&state.auth)).await?;
    if input.status == ListingStatus::Revoked {
        end_revoked_subscriptions(&state).await;
    }
    Ok(Json(listing).into_response())
}

/// Ends the subscriptions of a product just revoked, refunding what is unused, rather than
/// at the vulnerability policy's next sweep (which ends whatever this leaves).
pub(crate) async fn end_revoked_subscriptions(state: &WebState) {
    if let Err(e) = state.commerce.end_revoked_subscriptions().await {
        tracing::warn!(error = %e, "ending a revoked product's subscriptions failed; the next sweep ends them");
    }
}

#[derive(Serialize, ToSchema)]
pub struct PendingRevision {
    /// The change waiting for review; absent when there is none (or it was just approved).
    revision: Option<Revision>,
}

/// The change to a live product waiting for review, with what it changes (its publisher's
/// members and staff). Saving a live product (`PUT /api/v1/products/{publisher}/{slug}`)
/// makes or replaces it; the live product stays as it is until a moderator approves it.
#[utoipa::path(get, path = "/api/v1/products/{publisher}/{slug}/revision", tag = "moderation",
    params(("publisher" = String, Path), ("slug" = String, Path)),
    responses((status = 200, body = PendingRevision), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn revision(State(state): State<WebState>, signed: SignedIn, Path((publisher, slug)): Path<(String, String)>) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    Ok(Json(PendingRevision { revision: state.catalog.revision(&viewer, &publisher, &slug).await? }).into_response())
}

/// Moves a live product's revision through review as a submission moves (`submitted`,
/// `in_review`, `changes_requested`, `draft`); `approved` makes it the live product.
#[utoipa::path(put, path = "/api/v1/products/{publisher}/{slug}/revision/status", tag = "moderation",
    params(("publisher" = String, Path), ("slug" = String, Path)), request_body = MoveRequest,
    responses((status = 200, body = PendingRevision), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn move_revision(
    State(state): State<WebState>,
    signed: SignedIn,
    Path((publisher, slug)): Path<(String, String)>,
    ApiJson(input): ApiJson<MoveRequest>,
) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    let revision = state.catalog.move_revision(&viewer, &publisher, &slug, &input, &mail_base_url(&state.auth)).await?;
    Ok(Json(PendingRevision { revision }).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct Versions {
    versions: Vec<PendingVersion>,
}

/// The versions of a live product that customers cannot pull yet: tags its tiers offer
/// (their patterns) that were never released, or were pushed again since (its publisher's
/// members and staff; members and staff pull every version).
#[utoipa::path(get, path = "/api/v1/products/{publisher}/{slug}/releases", tag = "moderation",
    params(("publisher" = String, Path), ("slug" = String, Path)),
    responses((status = 200, body = Versions), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn pending_versions(State(state): State<WebState>, signed: SignedIn, Path((publisher, slug)): Path<(String, String)>) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    Ok(Json(Versions { versions: state.catalog.pending_versions(&viewer, &publisher, &slug).await? }).into_response())
}

/// Releases a live product's new versions to customers (moderators who are not its
/// members); the answer lists what was released.
#[utoipa::path(post, path = "/api/v1/products/{publisher}/{slug}/releases", tag = "moderation",
    params(("publisher" = String, Path), ("slug" = String, Path)),
    responses((status = 200, body = Versions), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json")))]
async fn release_versions(State(state): State<WebState>, signed: SignedIn, Path((publisher, slug)): Path<(String, String)>) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    let versions = state.catalog.release_versions(&viewer, &publisher, &slug, &mail_base_url(&state.auth)).await?;
    Ok(Json(Versions { versions }).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct ReviewThread {
    events: Vec<ListingEvent>,
}

/// A product's moves through moderation and the messages between its publisher and the
/// moderators, oldest first: for the publisher's members and staff.
#[utoipa::path(get, path = "/api/v1/products/{publisher}/{slug}/review", tag = "moderation",
    params(("publisher" = String, Path), ("slug" = String, Path)),
    responses((status = 200, body = ReviewThread), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn review_thread(State(state): State<WebState>, signed: SignedIn, Path((publisher, slug)): Path<(String, String)>) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    Ok(Json(ReviewThread { events: state.catalog.review_thread(&viewer, &publisher, &slug).await? }).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct ReviewMessage {
    message: String,
}

/// Writes to a product's review thread (its editors, or a moderator); the other side is
/// mailed.
#[utoipa::path(post, path = "/api/v1/products/{publisher}/{slug}/review", tag = "moderation",
    params(("publisher" = String, Path), ("slug" = String, Path)), request_body = ReviewMessage,
    responses((status = 201, body = ReviewThread), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn add_message(
    State(state): State<WebState>,
    signed: SignedIn,
    Path((publisher, slug)): Path<(String, String)>,
    ApiJson(input): ApiJson<ReviewMessage>,
) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    let events = state.catalog.add_review_message(&viewer, &publisher, &slug, &input.message, &mail_base_url(&state.auth)).await?;
    Ok((StatusCode::CREATED, Json(ReviewThread { events })).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct Queue {
    submissions: Vec<QueuedSubmission>,
}

/// Submissions waiting for a moderator, the longest waiting first (empty for anyone who
/// moderates nothing).
#[utoipa::path(get, path = "/api/v1/moderation/queue", tag = "moderation",
    responses((status = 200, body = Queue), (status = 401, body = ProblemDocument, content_type = "application/problem+json")))]
async fn queue(State(state): State<WebState>, signed: SignedIn) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    Ok(Json(Queue { submissions: state.catalog.moderation_queue(&viewer).await? }).into_response())
}

#[derive(Serialize, Deserialize, ToSchema)]
pub struct Agreement {
    version: i64,
    /// Markdown; only in answers.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    text: String,
}

/// The current publisher agreement, which a publisher accepts before its first submission.
#[utoipa::path(get, path = "/api/v1/publisher-agreement", tag = "publishing", responses((status = 200, body = Agreement)))]
async fn agreement() -> ApiResult {
    Ok(Json(Agreement { version: PUBLISHER_AGREEMENT_VERSION, text: PUBLISHER_AGREEMENT.to_owned() }).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct Accepted {
    /// The latest version the publisher accepted; absent if none.
    accepted_version: Option<i64>,
    current_version: i64,
}

/// Which version of the publisher agreement an organization accepted (its members and staff).
#[utoipa::path(get, path = "/api/v1/publishers/{org}/agreement", tag = "publishing", params(("org" = String, Path)),
    responses((status = 200, body = Accepted), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn accepted(State(state): State<WebState>, signed: SignedIn, Path(org): Path<String>) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    let accepted_version = state.catalog.accepted_publisher_agreement(&viewer, &org).await?;
    Ok(Json(Accepted { accepted_version, current_version: PUBLISHER_AGREEMENT_VERSION }).into_response())
}

/// Accepts the publisher agreement for an organization (its owners and maintainers):
/// `version` must be the current one.
#[utoipa::path(put, path = "/api/v1/publishers/{org}/agreement", tag = "publishing", params(("org" = String, Path)),
    request_body = Agreement,
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn accept(State(state): State<WebState>, signed: SignedIn, Path(org): Path<String>, ApiJson(input): ApiJson<Agreement>) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    state.catalog.accept_publisher_agreement(&viewer, &org, input.version).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(
    move_listing,
    review_thread,
    add_message,
    revision,
    move_revision,
    pending_versions,
    release_versions,
    queue,
    agreement,
    accepted,
    accept
))]
pub struct ModerationApi;

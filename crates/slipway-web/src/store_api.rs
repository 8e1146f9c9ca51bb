//! The store's REST API under /api/v1: search, products, publishers, media, licenses and
//! subscriptions. Every handler is annotated for the OpenAPI document.

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_catalog::media::MediaKind;
use slipway_catalog::{
    Badge, License, Listing, ListingInput, ListingSummary, Publisher, PublisherInput, SearchParams, Suggestion, Version, Viewer,
};
use slipway_types::ErrorKind;
use utoipa::{IntoParams, ToSchema};

use crate::WebState;
use crate::extract::{ApiJson, ApiQuery, SignedIn};
use crate::problem::{ApiResult, Problem, ProblemDocument};
use crate::session::mail_base_url;

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/api/v1/search", get(search))
        .route("/api/v1/search/suggest", get(suggest))
        .route("/api/v1/categories", get(categories))
        .route("/api/v1/media", post(upload_media))
        .route("/api/v1/publishers/{org}", get(publisher).put(save_publisher))
        .route("/api/v1/publishers/{org}/verification", put(verify_publisher))
        .route("/api/v1/publishers/{org}/products", get(publisher_products).post(create_product))
        .route("/api/v1/products/{publisher}/{slug}", get(product).put(update_product))
        .route("/api/v1/products/{publisher}/{slug}/versions", get(versions))
        .route("/api/v1/products/{publisher}/{slug}/license", get(license).put(set_license))
        .route("/api/v1/products/{publisher}/{slug}/publication", put(publication))
        .route("/api/v1/products/{publisher}/{slug}/badges", put(badges))
        .with_state(state)
}

/// The caller of a read (GET) that anyone may make: a bearer token's account, the
/// session's, or None for an anonymous caller.
pub(crate) async fn maybe_viewer(state: &WebState, headers: &HeaderMap) -> Result<Option<Viewer>, Problem> {
    match crate::session::api_caller(&state.auth, headers, false).await? {
        Some(signed) => Ok(Some(signed.viewer(&state.catalog).await?)),
        None => Ok(None),
    }
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Page {
    /// Where the previous page ended (its `next_cursor`).
    cursor: Option<String>,
    /// Items per page (default 20).
    #[param(minimum = 1, maximum = 100)]
    limit: Option<i64>,
}

impl Page {
    fn offset(&self) -> Result<i64, Problem> {
        match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => Ok(0),
            Some(c) => c
                .strip_prefix('o')
                .and_then(|n| n.parse::<i64>().ok())
                .filter(|n| (0..=1_000_000).contains(n))
                .ok_or_else(|| Problem(ErrorKind::Malformed, format!("cursor {c:?} is not one this API returned"))),
        }
    }

    fn limit(&self) -> i64 {
        self.limit.unwrap_or(20).clamp(1, 100)
    }
}

#[derive(Serialize, ToSchema)]
pub struct SearchResults {
    /// The products on this page, as search shows them (`GET /api/v1/products/{publisher}/{slug}`
    /// has the rest).
    items: Vec<ListingSummary>,
    /// How many products match in all.
    total: i64,
    /// Pass as `cursor` for the next page; absent on the last page.
    next_cursor: Option<String>,
}

/// Search published products.
#[utoipa::path(get, path = "/api/v1/search", tag = "catalog", params(SearchParams, Page),
    responses((status = 200, body = SearchResults), (status = 400, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn search(State(state): State<WebState>, ApiQuery(params): ApiQuery<SearchParams>, ApiQuery(page): ApiQuery<Page>) -> ApiResult {
    let (offset, limit) = (page.offset()?, page.limit());
    let found = state.catalog.search(&params, offset, limit).await?;
    let end = offset + found.items.len() as i64;
    let next_cursor = (end < found.total && !found.items.is_empty()).then(|| format!("o{end}"));
    Ok(Json(SearchResults { items: found.items, total: found.total, next_cursor }).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SuggestQuery {
    /// What has been typed so far.
    #[serde(default)]
    q: String,
}

#[derive(Serialize, ToSchema)]
pub struct Suggestions {
    suggestions: Vec<Suggestion>,
}

/// Typeahead suggestions for a partly typed query.
#[utoipa::path(get, path = "/api/v1/search/suggest", tag = "catalog", params(SuggestQuery),
    responses((status = 200, body = Suggestions), (status = 400, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn suggest(State(state): State<WebState>, ApiQuery(query): ApiQuery<SuggestQuery>) -> ApiResult {
    let suggestions = state.catalog.suggest(&query.q, 8).await?;
    Ok(Json(Suggestions { suggestions }).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct Category {
    slug: String,
    title: String,
    /// Published products in it.
    products: i64,
}

/// The store's categories.
#[utoipa::path(get, path = "/api/v1/categories", tag = "catalog", responses((status = 200, body = Vec<Category>)))]
async fn categories(State(state): State<WebState>) -> ApiResult {
    let categories: Vec<Category> = state
        .catalog
        .categories()
        .await?
        .into_iter()
        .map(|(slug, title, products)| Category { slug: slug.into(), title: title.into(), products })
        .collect();
    Ok(Json(categories).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MediaQuery {
    /// A logo must be square and at least 512x512 pixels.
    kind: MediaKindParam,
}

#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MediaKindParam {
    Logo,
    Screenshot,
}

/// The image file's bytes.
#[derive(ToSchema)]
#[schema(value_type = String, format = Binary)]
pub struct ImageBytes(#[allow(dead_code)] Vec<u8>);

#[derive(Serialize, ToSchema)]
pub struct Uploaded {
    id: String,
    url: String,
}

/// Uploads a logo or screenshot (PNG, JPEG or WebP as the raw body). It is checked and
/// re-encoded; reference it by id in a profile or listing.
#[utoipa::path(post, path = "/api/v1/media", tag = "publishing", params(MediaQuery),
    request_body(content = ImageBytes, content_type = "application/octet-stream", description = "A PNG, JPEG or WebP image"),
    responses((status = 201, body = Uploaded), (status = 401, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn upload_media(State(state): State<WebState>, signed: SignedIn, ApiQuery(query): ApiQuery<MediaQuery>, body: Bytes) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    let kind = match query.kind {
        MediaKindParam::Logo => MediaKind::Logo,
        MediaKindParam::Screenshot => MediaKind::Screenshot,
    };
    let id = state.catalog.upload_media(&viewer, kind, body.to_vec()).await?;
    Ok((StatusCode::CREATED, Json(Uploaded { url: slipway_catalog::media_url(&id), id })).into_response())
}

/// A publisher's public profile.
#[utoipa::path(get, path = "/api/v1/publishers/{org}", tag = "catalog", params(("org" = String, Path)),
    responses((status = 200, body = Publisher), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn publisher(State(state): State<WebState>, Path(org): Path<String>) -> ApiResult {
    let found = state.catalog.publisher(&org).await?.ok_or_else(|| Problem(ErrorKind::NotFound, format!("no publisher {org}")))?;
    Ok(Json(found).into_response())
}

/// Creates or updates a publisher profile; a new organization is created with the caller
/// as owner. A new company email is sent a verification link.
#[utoipa::path(put, path = "/api/v1/publishers/{org}", tag = "publishing", params(("org" = String, Path)), request_body = PublisherInput,
    responses((status = 200, body = Publisher), (status = 401, body = ProblemDocument, content_type = "application/problem+json"), (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn save_publisher(
    State(state): State<WebState>,
    signed: SignedIn,
    Path(org): Path<String>,
    ApiJson(input): ApiJson<PublisherInput>,
) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    let saved = state.catalog.save_publisher(&viewer, &org, &input, &mail_base_url(&state.auth)).await?;
    Ok(Json(saved).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct Verification {
    verified: bool,
}

/// Sets verified-publisher status (moderators).
#[utoipa::path(put, path = "/api/v1/publishers/{org}/verification", tag = "moderation", params(("org" = String, Path)), request_body = Verification,
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"), (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn verify_publisher(
    State(state): State<WebState>,
    signed: SignedIn,
    Path(org): Path<String>,
    ApiJson(input): ApiJson<Verification>,
) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    state.catalog.set_publisher_verified(slipway_catalog::Actor::User(&viewer), &org, input.verified).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// A publisher's products: drafts too for its members.
#[utoipa::path(get, path = "/api/v1/publishers/{org}/products", tag = "catalog", params(("org" = String, Path)),
    responses((status = 200, body = Vec<Listing>), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn publisher_products(State(state): State<WebState>, headers: HeaderMap, Path(org): Path<String>) -> ApiResult {
    if state.catalog.publisher(&org).await?.is_none() {
        return Err(Problem(ErrorKind::NotFound, format!("no publisher {org}")));
    }
    let viewer = maybe_viewer(&state, &headers).await?;
    Ok(Json(state.catalog.listings_of(viewer.as_ref(), &org).await?).into_response())
}

/// Creates a draft product listing.
#[utoipa::path(post, path = "/api/v1/publishers/{org}/products", tag = "publishing", params(("org" = String, Path)), request_body = ListingInput,
    responses((status = 201, body = Listing), (status = 401, body = ProblemDocument, content_type = "application/problem+json"), (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn create_product(
    State(state): State<WebState>,
    signed: SignedIn,
    Path(org): Path<String>,
    ApiJson(input): ApiJson<ListingInput>,
) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    let listing = state.catalog.save_listing(&viewer, &org, None, &input).await?;
    Ok((StatusCode::CREATED, Json(listing)).into_response())
}

/// A product: published ones for everyone, drafts for the publisher's members.
#[utoipa::path(get, path = "/api/v1/products/{publisher}/{slug}", tag = "catalog", params(("publisher" = String, Path), ("slug" = String, Path)),
    responses((status = 200, body = Listing), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn product(State(state): State<WebState>, headers: HeaderMap, Path((publisher, slug)): Path<(String, String)>) -> ApiResult {
    let viewer = maybe_viewer(&state, &headers).await?;
    Ok(Json(state.catalog.listing(viewer.as_ref(), &publisher, &slug).await?).into_response())
}

/// Replaces a product's content (its status, license and counters stay).
#[utoipa::path(put, path = "/api/v1/products/{publisher}/{slug}", tag = "publishing", params(("publisher" = String, Path), ("slug" = String, Path)),
    request_body = ListingInput,
    responses((status = 200, body = Listing), (status = 401, body = ProblemDocument, content_type = "application/problem+json"), (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"), (status = 409, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn update_product(
    State(state): State<WebState>,
    signed: SignedIn,
    Path((publisher, slug)): Path<(String, String)>,
    ApiJson(input): ApiJson<ListingInput>,
) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    Ok(Json(state.catalog.save_listing(&viewer, &publisher, Some(&slug), &input).await?).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct Versions {
    versions: Vec<Version>,
}

/// Every tag a product offers, with digest, compressed size and platforms.
#[utoipa::path(get, path = "/api/v1/products/{publisher}/{slug}/versions", tag = "catalog", params(("publisher" = String, Path), ("slug" = String, Path)),
    responses((status = 200, body = Versions), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn versions(State(state): State<WebState>, headers: HeaderMap, Path((publisher, slug)): Path<(String, String)>) -> ApiResult {
    let viewer = maybe_viewer(&state, &headers).await?;
    let listing = state.catalog.listing(viewer.as_ref(), &publisher, &slug).await?;
    Ok(Json(Versions { versions: state.catalog.versions(&listing).await? }).into_response())
}

/// The product's current license agreement.
#[utoipa::path(get, path = "/api/v1/products/{publisher}/{slug}/license", tag = "catalog", params(("publisher" = String, Path), ("slug" = String, Path)),
    responses((status = 200, body = License), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn license(State(state): State<WebState>, headers: HeaderMap, Path((publisher, slug)): Path<(String, String)>) -> ApiResult {
    let viewer = maybe_viewer(&state, &headers).await?;
    let listing = state.catalog.listing(viewer.as_ref(), &publisher, &slug).await?;
    let license = state
        .catalog
        .license(&listing)
        .await?
        .ok_or_else(|| Problem(ErrorKind::NotFound, format!("{} has no license agreement", listing.name)))?;
    Ok(Json(license).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct LicenseVersion {
    version: i64,
}

/// Adds a new version of the license agreement; customers accept it anew.
#[utoipa::path(put, path = "/api/v1/products/{publisher}/{slug}/license", tag = "publishing", params(("publisher" = String, Path), ("slug" = String, Path)),
    request_body = License,
    responses((status = 200, body = LicenseVersion), (status = 401, body = ProblemDocument, content_type = "application/problem+json"), (status = 403, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn set_license(
    State(state): State<WebState>,
    signed: SignedIn,
    Path((publisher, slug)): Path<(String, String)>,
    ApiJson(input): ApiJson<License>,
) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    let version = state.catalog.set_license(&viewer, &publisher, &slug, &input).await?;
    Ok(Json(LicenseVersion { version }).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct Publication {
    published: bool,
}

/// Publishes or withdraws a product (moderators).
#[utoipa::path(put, path = "/api/v1/products/{publisher}/{slug}/publication", tag = "moderation", params(("publisher" = String, Path), ("slug" = String, Path)),
    request_body = Publication,
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"), (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn publication(
    State(state): State<WebState>,
    signed: SignedIn,
    Path((publisher, slug)): Path<(String, String)>,
    ApiJson(input): ApiJson<Publication>,
) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    state.catalog.set_published(slipway_catalog::Actor::User(&viewer), &publisher, &slug, input.published).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct Badges {
    badges: Vec<Badge>,
}

/// Sets a product's badges (moderators).
#[utoipa::path(put, path = "/api/v1/products/{publisher}/{slug}/badges", tag = "moderation", params(("publisher" = String, Path), ("slug" = String, Path)),
    request_body = Badges,
    responses((status = 204), (status = 401, body = ProblemDocument, content_type = "application/problem+json"), (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn badges(
    State(state): State<WebState>,
    signed: SignedIn,
    Path((publisher, slug)): Path<(String, String)>,
    ApiJson(input): ApiJson<Badges>,
) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    state.catalog.set_badges(slipway_catalog::Actor::User(&viewer), &publisher, &slug, &input.badges).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

#[derive(utoipa::OpenApi)]
#[openapi(
    info(title = "Slipway store API", description = "Search the catalog, publish products, and subscribe to them. Errors are RFC 9457 problem documents. Signed-in calls use the session cookie from POST /api/v1/session, and calls that change state echo its CSRF token in X-CSRF-Token; or an access token as Authorization: Bearer slw_..., without CSRF token, as far as its API scopes allow (api:read: GET; api:write: everything but managing tokens and the session)."),
    paths(search, suggest, categories, upload_media, publisher, save_publisher, verify_publisher, publisher_products, create_product,
        product, update_product, versions, license, set_license, publication, badges),
    components(schemas(MediaKindParam, ImageBytes)),
    tags((name = "catalog", description = "What anyone can read"), (name = "publishing", description = "Publishers' profiles and listings"),
        (name = "moderation", description = "Moderators' decisions"))
)]
pub struct StoreApi;

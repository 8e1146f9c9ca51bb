//! `docker search HOST/TERM`: the registry's v1 search API (`GET /v1/search?q=&n=&page=`),
//! answered from the store's search index, so customers find products from the Docker CLI.
//! Docker Engine pings `/v1/_ping` first and searches anonymously (it sends credentials
//! only to a standalone registry over https, and the catalog is public anyway).

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::{Deserialize, Serialize};
use slipway_catalog::{ListingSummary, SearchParams, TrustLevel};
use slipway_types::ErrorKind;

use crate::WebState;
use crate::extract::ApiQuery;
use crate::problem::{ApiResult, Problem};
use crate::session::registry_host;

/// Docker's default page size, and the most it asks for (`docker search --limit`).
const DEFAULT_PAGE_SIZE: i64 = 25;
const MAX_PAGE_SIZE: i64 = 100;
/// The deepest result reached by paging, as the store API's cursors allow.
const MAX_OFFSET: i64 = 1_000_000;

pub fn router(state: WebState) -> Router {
    Router::new().route("/v1/_ping", get(ping)).route("/v1/search", get(search)).with_state(state)
}

/// The v1 ping: Slipway is its own index (standalone), and answers search here.
async fn ping() -> impl IntoResponse {
    ([("x-docker-registry-standalone", HeaderValue::from_static("true"))], Json(serde_json::json!({"standalone": true})))
}

#[derive(Deserialize)]
struct V1Query {
    #[serde(default)]
    q: String,
    /// Results per page, 1 to 100 (Docker sends 25 unless told otherwise).
    n: Option<i64>,
    /// From 1.
    page: Option<i64>,
}

/// One result as Docker Engine reads it (`registry.SearchResult`).
#[derive(Serialize)]
struct V1Result {
    /// The pull path: what follows `docker pull`.
    name: String,
    description: String,
    /// Docker shows stars; the store's measure of popularity is pulls.
    star_count: i64,
    is_official: bool,
    is_automated: bool,
}

#[derive(Serialize)]
struct V1Results {
    num_results: i64,
    num_pages: i64,
    page: i64,
    page_size: i64,
    query: String,
    results: Vec<V1Result>,
}

async fn search(State(state): State<WebState>, headers: HeaderMap, ApiQuery(query): ApiQuery<V1Query>) -> ApiResult {
    let page_size = query.n.unwrap_or(DEFAULT_PAGE_SIZE);
    if !(1..=MAX_PAGE_SIZE).contains(&page_size) {
        return Err(Problem(ErrorKind::Malformed, format!("n is 1 to {MAX_PAGE_SIZE}, not {page_size}")));
    }
    let page = query.page.unwrap_or(1);
    let offset = page.checked_sub(1).and_then(|p| p.checked_mul(page_size)).filter(|o| (0..=MAX_OFFSET).contains(o));
    let Some(offset) = offset else {
        return Err(Problem(ErrorKind::Malformed, format!("page is 1 to {}, not {page}", MAX_OFFSET / page_size + 1)));
    };
    let params = SearchParams { q: query.q.clone(), ..SearchParams::default() };
    let found = state.catalog.search(&params, offset, page_size).await?;
    let host = registry_host(&state.auth, &headers);
    let results = found.items.iter().map(|listing| result(&host, listing)).collect();
    Ok(Json(V1Results {
        num_results: found.total,
        num_pages: (found.total + page_size - 1) / page_size,
        page,
        page_size,
        query: query.q,
        results,
    })
    .into_response())
}

/// A listing as a search result: named by the repository a customer most likely pulls
/// first (a free tier's, else the first tier's).
fn result(host: &str, listing: &ListingSummary) -> V1Result {
    let tier = listing.tiers.iter().find(|t| t.amount == 0).or(listing.tiers.first());
    let repository = tier.map_or_else(|| format!("{}/{}", listing.publisher, listing.slug), |t| t.repository.clone());
    V1Result {
        name: format!("{host}/{repository}"),
        description: listing.short_description.clone(),
        star_count: listing.pulls,
        is_official: listing.trust_level == TrustLevel::Official,
        is_automated: false,
    }
}

//! The store's money under /api/v1: checkout, subscriptions (list, cancel, pay),
//! refunds, the billing profile and invoices. Every request that can move money takes an
//! `Idempotency-Key` header (as Stripe's API does): the first request with a key does the
//! work and its answer is stored; a retry with the same key and body gets that answer again
//! (with `Idempotent-Replayed: true`) and moves nothing.

use std::future::Future;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use slipway_catalog::Viewer;
use slipway_commerce::{BillingProfile, CheckoutInput, CheckoutResult, Invoice, KeyClaim, Quote, Refund, RefundInput, Subscription};
use slipway_types::ErrorKind;
use utoipa::{IntoParams, ToSchema};

use crate::WebState;
use crate::extract::{ApiJson, ApiQuery, SignedIn, json_body};
use crate::problem::{ApiResult, Problem, ProblemDocument};
use crate::session::registry_host;

/// The longest Idempotency-Key accepted (Stripe's limit).
const MAX_KEY_LEN: usize = 255;
/// The largest answer stored for replay: every answer here is far smaller.
const MAX_STORED_RESPONSE: usize = 256 * 1024;

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/api/v1/checkout", post(checkout))
        .route("/api/v1/checkout/quote", get(quote))
        .route("/api/v1/products/{publisher}/{slug}/subscriptions", post(subscribe))
        .route("/api/v1/subscriptions", get(subscriptions))
        .route("/api/v1/subscriptions/{id}/cancel", post(cancel))
        .route("/api/v1/subscriptions/{id}/pay", post(pay))
        .route("/api/v1/subscriptions/{id}/change", post(change))
        .route("/api/v1/refunds", post(refund))
        .route("/api/v1/billing-profile", get(billing_profile).put(save_billing_profile))
        .route("/api/v1/invoices", get(invoices))
        .route("/api/v1/invoices/{id}", get(invoice))
        .with_state(state)
}

/// Runs `work` at most once per caller and `Idempotency-Key`: a retry gets the first
/// answer (unless that was a server error, which frees the key for a real retry); the same
/// key with another request is refused, as is one whose first request is still running.
/// `required`: money-moving requests refuse to run without a key.
pub(crate) async fn idempotent<F, Fut>(
    state: &WebState,
    caller: &str,
    headers: &HeaderMap,
    route: &str,
    body: &[u8],
    required: bool,
    work: F,
) -> ApiResult
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = ApiResult>,
{
    let Some(key) = headers.get("idempotency-key") else {
        if required {
            return Err(Problem(
                ErrorKind::Malformed,
                "a request that moves money needs an Idempotency-Key header: a unique string (a UUID) per intended operation, \
                 repeated on retries"
                    .into(),
            ));
        }
        return work().await;
    };
    let key = key
        .to_str()
        .ok()
        .filter(|k| !k.is_empty() && k.len() <= MAX_KEY_LEN && k.bytes().all(|b| b.is_ascii_graphic()))
        .ok_or_else(|| Problem(ErrorKind::Malformed, format!("Idempotency-Key is 1 to {MAX_KEY_LEN} visible ASCII characters")))?;
    let mut hasher = Sha256::new();
    hasher.update(route.as_bytes());
    hasher.update([0]);
    hasher.update(body);
    let request_hash = hex::encode(hasher.finalize());
    match state.commerce.claim_key(caller, key, &request_hash).await? {
        KeyClaim::Done { status, response } => {
            let status = u16::try_from(status).ok().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::OK);
            let content_type = if status.is_success() { "application/json" } else { "application/problem+json" };
            let mut replay = (status, [(header::CONTENT_TYPE, content_type)], response).into_response();
            replay.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
            Ok(replay)
        }
        KeyClaim::Running => {
            Err(Problem(ErrorKind::Conflict, "a request with this Idempotency-Key is still being processed: retry shortly".into()))
        }
        KeyClaim::OtherRequest => Err(Problem(
            ErrorKind::Conflict,
            "this Idempotency-Key was used for another request: a key names one operation, use a new key for a new one".into(),
        )),
        KeyClaim::Claimed => {
            let _lease = state.commerce.hold_key(caller, key);
            let response = work().await.unwrap_or_else(IntoResponse::into_response);
            let (parts, body) = response.into_parts();
            let bytes = axum::body::to_bytes(body, MAX_STORED_RESPONSE)
                .await
                .map_err(|e| Problem(ErrorKind::Internal, format!("reading the answer to store: {e}")))?;
            if parts.status.is_server_error() {
                state.commerce.release_key(caller, key).await?;
            } else {
                state.commerce.finish_key(caller, key, i64::from(parts.status.as_u16()), &String::from_utf8_lossy(&bytes)).await?;
            }
            Ok(Response::from_parts(parts, axum::body::Body::from(bytes)))
        }
    }
}

async fn viewer(state: &WebState, signed: SignedIn) -> Result<Viewer, Problem> {
    Ok(signed.viewer(&state.catalog).await?)
}

/// Buys a tier with a payment method (or starts its free trial), accepting its license:
/// the subscription, its first invoice and the entitlement, together. A declined card is
/// 402 with the card's message. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/checkout", tag = "commerce", request_body = CheckoutInput,
    params(("Idempotency-Key" = String, Header, description = "One key per intended purchase, repeated on retries")),
    responses((status = 201, body = CheckoutResult), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 402, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn checkout(State(state): State<WebState>, signed: SignedIn, headers: HeaderMap, body: Bytes) -> ApiResult {
    let viewer = viewer(&state, signed).await?;
    let mut input: CheckoutInput = json_body(&headers, &body)?;
    // The key `idempotent` claims below (it refuses the request if the key is unusable).
    let key = headers.get("idempotency-key").and_then(|k| k.to_str().ok());
    input.idempotency = key.map(|key| (viewer.account.id.clone(), key.to_owned()));
    let host = registry_host(&state.auth, &headers);
    idempotent(&state, &viewer.account.id, &headers, "checkout", &body, true, || async {
        let done = state.commerce.checkout(&viewer, &input, &host).await?;
        Ok((StatusCode::CREATED, Json(done)).into_response())
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct QuoteQuery {
    /// `PUBLISHER/SLUG`.
    product: String,
    tier: String,
}

/// What buying a tier costs the caller now: price, tax (by the billing profile) and total.
#[utoipa::path(get, path = "/api/v1/checkout/quote", tag = "commerce", params(QuoteQuery),
    responses((status = 200, body = Quote), (status = 401, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn quote(State(state): State<WebState>, signed: SignedIn, ApiQuery(query): ApiQuery<QuoteQuery>) -> ApiResult {
    let viewer = viewer(&state, signed).await?;
    Ok(Json(state.commerce.quote(&viewer, &query.product, &query.tier).await?).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct SubscribeRequest {
    /// The tier's slug.
    tier: String,
    /// The license agreement version accepted (the product's current one).
    accept_license_version: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct SubscriptionList {
    subscriptions: Vec<Subscription>,
}

/// "Get Image": subscribes the caller to a free tier, recording the license acceptance.
/// Paid tiers answer 402: they are bought through POST /api/v1/checkout.
#[utoipa::path(post, path = "/api/v1/products/{publisher}/{slug}/subscriptions", tag = "subscriptions",
    params(("publisher" = String, Path), ("slug" = String, Path)), request_body = SubscribeRequest,
    responses((status = 201, body = SubscriptionList), (status = 401, body = ProblemDocument, content_type = "application/problem+json"), (status = 402, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn subscribe(
    State(state): State<WebState>,
    signed: SignedIn,
    headers: HeaderMap,
    Path((publisher, slug)): Path<(String, String)>,
    ApiJson(input): ApiJson<SubscribeRequest>,
) -> ApiResult {
    let viewer = viewer(&state, signed).await?;
    state.commerce.subscribe_free(&viewer, &publisher, &slug, &input.tier, input.accept_license_version).await?;
    let subscriptions = state.commerce.subscriptions(&viewer, &registry_host(&state.auth, &headers)).await?;
    Ok((StatusCode::CREATED, Json(SubscriptionList { subscriptions })).into_response())
}

/// The caller's subscriptions, newest first, with their state, price, period and
/// `docker pull` commands.
#[utoipa::path(get, path = "/api/v1/subscriptions", tag = "subscriptions",
    responses((status = 200, body = SubscriptionList), (status = 401, body = ProblemDocument, content_type = "application/problem+json")))]
async fn subscriptions(State(state): State<WebState>, signed: SignedIn, headers: HeaderMap) -> ApiResult {
    let viewer = viewer(&state, signed).await?;
    let subscriptions = state.commerce.subscriptions(&viewer, &registry_host(&state.auth, &headers)).await?;
    Ok(Json(SubscriptionList { subscriptions }).into_response())
}

#[derive(Deserialize, ToSchema)]
pub struct CancelRequest {
    /// True (the default): access lasts until the paid period ends, and it does not renew.
    /// False: ends now, refunding the unused part where the publisher's policy allows.
    #[serde(default = "yes")]
    at_period_end: bool,
}

fn yes() -> bool {
    true
}

/// Cancels a subscription, at the period's end by default. The body is optional; an
/// `Idempotency-Key` is taken (an immediate cancellation may refund).
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/cancel", tag = "subscriptions", params(("id" = String, Path)),
    request_body(content = Option<CancelRequest>, description = "Optional"),
    responses((status = 200, body = Subscription), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 404, body = ProblemDocument, content_type = "application/problem+json"), (status = 409, body = ProblemDocument, content_type = "application/problem+json")))]
async fn cancel(State(state): State<WebState>, signed: SignedIn, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let viewer = viewer(&state, signed).await?;
    let input: CancelRequest = if body.is_empty() { CancelRequest { at_period_end: true } } else { json_body(&headers, &body)? };
    let host = registry_host(&state.auth, &headers);
    let route = format!("cancel:{id}");
    idempotent(&state, &viewer.account.id, &headers, &route, &body, false, || async {
        Ok(Json(state.commerce.cancel(&viewer, &id, input.at_period_end, &host).await?).into_response())
    })
    .await
}

#[derive(Deserialize, ToSchema)]
pub struct PayRequest {
    /// The payment method to pay with and renew with from now on.
    payment_method: String,
}

/// Pays a past-due subscription now with another payment method. Needs an
/// `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/pay", tag = "subscriptions", params(("id" = String, Path)), request_body = PayRequest,
    responses((status = 200, body = Subscription), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 402, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json")))]
async fn pay(State(state): State<WebState>, signed: SignedIn, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let viewer = viewer(&state, signed).await?;
    let input: PayRequest = json_body(&headers, &body)?;
    let host = registry_host(&state.auth, &headers);
    let route = format!("pay:{id}");
    idempotent(&state, &viewer.account.id, &headers, &route, &body, true, || async {
        Ok(Json(state.commerce.pay(&viewer, &id, &input.payment_method, &host).await?).into_response())
    })
    .await
}

#[derive(Deserialize, ToSchema)]
pub struct ChangeRequest {
    /// The slug of another paid tier of the same product, billed alike.
    tier: String,
}

/// Upgrades or downgrades to another tier of the product for the rest of the period: the
/// prorated difference is charged (with an invoice) or refunded (with a credit note) now,
/// and the next renewal charges the new price. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/subscriptions/{id}/change", tag = "subscriptions", params(("id" = String, Path)), request_body = ChangeRequest,
    responses((status = 200, body = Subscription), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 402, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn change(State(state): State<WebState>, signed: SignedIn, headers: HeaderMap, Path(id): Path<String>, body: Bytes) -> ApiResult {
    let viewer = viewer(&state, signed).await?;
    let input: ChangeRequest = json_body(&headers, &body)?;
    let host = registry_host(&state.auth, &headers);
    let route = format!("change:{id}");
    idempotent(&state, &viewer.account.id, &headers, &route, &body, true, || async {
        Ok(Json(state.commerce.change_tier(&viewer, &id, &input.tier, &host).await?).into_response())
    })
    .await
}

/// Refunds a subscription's last payment, in full or in part (`amount` in minor units),
/// with a credit note: by the publisher's owners or an administrator. A full refund ends the
/// subscription and its access. Needs an `Idempotency-Key`.
#[utoipa::path(post, path = "/api/v1/refunds", tag = "commerce", request_body = RefundInput,
    params(("Idempotency-Key" = String, Header, description = "One key per intended refund, repeated on retries")),
    responses((status = 201, body = Refund), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 409, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn refund(State(state): State<WebState>, signed: SignedIn, headers: HeaderMap, body: Bytes) -> ApiResult {
    let viewer = viewer(&state, signed).await?;
    let input: RefundInput = json_body(&headers, &body)?;
    idempotent(&state, &viewer.account.id, &headers, "refund", &body, true, || async {
        Ok((StatusCode::CREATED, Json(state.commerce.refund(&viewer, &input).await?)).into_response())
    })
    .await
}

/// The caller's billing profile (404 until one is saved).
#[utoipa::path(get, path = "/api/v1/billing-profile", tag = "commerce",
    responses((status = 200, body = BillingProfile), (status = 401, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn billing_profile(State(state): State<WebState>, signed: SignedIn) -> ApiResult {
    let viewer = viewer(&state, signed).await?;
    let profile = state
        .commerce
        .billing_profile(&viewer)
        .await?
        .ok_or_else(|| Problem(ErrorKind::NotFound, "no billing profile yet: PUT one, or give `billing` at checkout".into()))?;
    Ok(Json(profile).into_response())
}

/// Saves the caller's billing profile: who invoices name, and where tax is owed.
#[utoipa::path(put, path = "/api/v1/billing-profile", tag = "commerce", request_body = BillingProfile,
    responses((status = 200, body = BillingProfile), (status = 401, body = ProblemDocument, content_type = "application/problem+json"), (status = 422, body = ProblemDocument, content_type = "application/problem+json")))]
async fn save_billing_profile(State(state): State<WebState>, signed: SignedIn, ApiJson(input): ApiJson<BillingProfile>) -> ApiResult {
    let viewer = viewer(&state, signed).await?;
    Ok(Json(state.commerce.save_billing_profile(&viewer, &input).await?).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct InvoiceList {
    invoices: Vec<Invoice>,
}

/// The caller's invoices and credit notes, newest first.
#[utoipa::path(get, path = "/api/v1/invoices", tag = "commerce",
    responses((status = 200, body = InvoiceList), (status = 401, body = ProblemDocument, content_type = "application/problem+json")))]
async fn invoices(State(state): State<WebState>, signed: SignedIn) -> ApiResult {
    let viewer = viewer(&state, signed).await?;
    Ok(Json(InvoiceList { invoices: state.commerce.invoices(&viewer).await? }).into_response())
}

/// One invoice or credit note: its buyer's, or the seller's owners'.
#[utoipa::path(get, path = "/api/v1/invoices/{id}", tag = "commerce", params(("id" = String, Path)),
    responses((status = 200, body = Invoice), (status = 401, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn invoice(State(state): State<WebState>, signed: SignedIn, Path(id): Path<String>) -> ApiResult {
    let viewer = viewer(&state, signed).await?;
    Ok(Json(state.commerce.invoice(&viewer, &id).await?).into_response())
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(checkout, quote, subscribe, subscriptions, cancel, pay, change, refund, billing_profile, save_billing_profile, invoices, invoice),
    tags((name = "commerce", description = "Checkout, refunds, billing profiles and invoices: money-moving requests take an Idempotency-Key"),
        (name = "subscriptions", description = "Get Image, My subscriptions, cancelling and paying"))
)]
pub struct CommerceApi;

//! The fulfillment API under /api/fulfillment/v1, for ISVs who sell elsewhere and have
//! Slipway grant their products (bring your own license): orders (create, get, list,
//! cancel), the webhook endpoint their order events go to, and the delivery log.
//!
//! Only an access token holding `api:fulfillment`, sent as `Authorization: Bearer`, is
//! taken: a session cookie is not read here, and the policy (`Action::Fulfill`) lets the
//! token act for the publishers its account owns (a robot: its organization). Creating
//! and cancelling take an optional `Idempotency-Key`; creating is idempotent by
//! `external_id` too.

use axum::body::Bytes;
use axum::extract::{FromRequestParts, Path, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::{get, post, put};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use slipway_auth::AccountRecord;
use slipway_auth::access::{ApiTokenLimits, Subject};
use slipway_commerce::{FulfillmentOrder, FulfillmentOrderInput, FulfillmentOrderPage, OrderQuery, WebhookDelivery, WebhookEndpoint};
use slipway_policy::Actor;
use slipway_types::ErrorKind;
use utoipa::{IntoParams, ToSchema};

use crate::WebState;
use crate::commerce_api::idempotent;
use crate::extract::{ApiJson, ApiQuery, json_body};
use crate::problem::{ApiResult, Problem, ProblemDocument};
use crate::session::{bearer, check_bearer};

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/api/fulfillment/v1/orders", post(create_order).get(list_orders))
        .route("/api/fulfillment/v1/orders/{id}", get(get_order))
        .route("/api/fulfillment/v1/orders/{id}/cancel", post(cancel_order))
        .route("/api/fulfillment/v1/webhook", put(set_webhook))
        .route("/api/fulfillment/v1/webhook/deliveries", get(deliveries))
        .with_state(state)
}

/// The caller: a live access token's account, its roles, and the token's limits, from
/// which the policy decides each request (`Action::Fulfill`).
pub struct Isv {
    account: AccountRecord,
    subject: Subject,
    limits: ApiTokenLimits,
}

impl Isv {
    fn actor(&self) -> Actor<'_> {
        self.limits.actor(&self.subject)
    }
}

impl FromRequestParts<WebState> for Isv {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &WebState) -> Result<Self, Problem> {
        let secret = bearer(&parts.headers).ok_or_else(|| {
            Problem(
                ErrorKind::Unauthenticated,
                "the fulfillment API takes an access token with the api:fulfillment scope as Authorization: Bearer".into(),
            )
        })?;
        let token = check_bearer(&state.auth, secret).await?;
        let subject = state.auth.subject(&token.account).await?;
        Ok(Isv { account: token.account, subject, limits: ApiTokenLimits::new(&token.rules) })
    }
}

const PROBLEM: &str = "application/problem+json";

/// Creates an order: the customer (by `account`, or by `email`: invited by mail when no
/// account has verified the address, and entitled once one does) gets the tier until
/// `expires_at` or cancellation. 201 with the new order; 200 with the existing one when
/// the publisher already has this order under `external_id`, 409 when it has another.
#[utoipa::path(post, path = "/api/fulfillment/v1/orders", tag = "fulfillment", request_body = FulfillmentOrderInput,
    params(("Idempotency-Key" = Option<String>, Header, description = "Optional: one key per intended order, repeated on retries")),
    security(("bearer" = [])),
    responses((status = 201, body = FulfillmentOrder, description = "Created"), (status = 200, body = FulfillmentOrder, description = "The order already created under this external_id"),
        (status = 400, body = ProblemDocument, content_type = PROBLEM), (status = 401, body = ProblemDocument, content_type = PROBLEM),
        (status = 403, body = ProblemDocument, content_type = PROBLEM), (status = 404, body = ProblemDocument, content_type = PROBLEM),
        (status = 409, body = ProblemDocument, content_type = PROBLEM), (status = 415, body = ProblemDocument, content_type = PROBLEM),
        (status = 422, body = ProblemDocument, content_type = PROBLEM)))]
async fn create_order(State(state): State<WebState>, isv: Isv, headers: HeaderMap, body: Bytes) -> ApiResult {
    let input: FulfillmentOrderInput = json_body(&headers, &body)?;
    idempotent(&state, &isv.account.id, &headers, "fulfillment-order", &body, false, || async {
        let (order, created) = state.fulfillment.create(&isv.actor(), &isv.account, &input).await?;
        let status = if created { StatusCode::CREATED } else { StatusCode::OK };
        Ok((status, Json(order)).into_response())
    })
    .await
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrdersQuery {
    /// The publisher (default: the robot's organization).
    publisher: Option<String>,
    /// An account name or email address, as orders named the customer.
    customer: Option<String>,
    /// pending, active, canceled or expired.
    state: Option<String>,
    /// The `next` of the previous page.
    before: Option<String>,
    /// 1 to 100 (default 100).
    limit: Option<i64>,
}

/// The publisher's orders, newest first, by customer and state, a page at a time.
#[utoipa::path(get, path = "/api/fulfillment/v1/orders", tag = "fulfillment", params(OrdersQuery), security(("bearer" = [])),
    responses((status = 200, body = FulfillmentOrderPage), (status = 400, body = ProblemDocument, content_type = PROBLEM),
        (status = 401, body = ProblemDocument, content_type = PROBLEM), (status = 403, body = ProblemDocument, content_type = PROBLEM),
        (status = 404, body = ProblemDocument, content_type = PROBLEM), (status = 422, body = ProblemDocument, content_type = PROBLEM)))]
async fn list_orders(State(state): State<WebState>, isv: Isv, ApiQuery(q): ApiQuery<OrdersQuery>) -> ApiResult {
    let query = OrderQuery {
        publisher: q.publisher.as_deref(),
        customer: q.customer.as_deref(),
        state: q.state.as_deref(),
        before: q.before.as_deref(),
        limit: q.limit,
    };
    Ok(Json(state.fulfillment.orders(&isv.actor(), &isv.account, &query).await?).into_response())
}

/// One of the publisher's orders.
#[utoipa::path(get, path = "/api/fulfillment/v1/orders/{id}", tag = "fulfillment", params(("id" = String, Path)), security(("bearer" = [])),
    responses((status = 200, body = FulfillmentOrder), (status = 401, body = ProblemDocument, content_type = PROBLEM),
        (status = 403, body = ProblemDocument, content_type = PROBLEM), (status = 404, body = ProblemDocument, content_type = PROBLEM)))]
async fn get_order(State(state): State<WebState>, isv: Isv, Path(id): Path<String>) -> ApiResult {
    Ok(Json(state.fulfillment.order(&isv.actor(), &id).await?).into_response())
}

/// Cancels an order: the customer's access ends now. 409 when it has already ended.
#[utoipa::path(post, path = "/api/fulfillment/v1/orders/{id}/cancel", tag = "fulfillment", params(("id" = String, Path),
        ("Idempotency-Key" = Option<String>, Header, description = "Optional: repeated on retries")), security(("bearer" = [])),
    responses((status = 200, body = FulfillmentOrder), (status = 400, body = ProblemDocument, content_type = PROBLEM),
        (status = 401, body = ProblemDocument, content_type = PROBLEM),
        (status = 403, body = ProblemDocument, content_type = PROBLEM), (status = 404, body = ProblemDocument, content_type = PROBLEM),
        (status = 409, body = ProblemDocument, content_type = PROBLEM)))]
async fn cancel_order(State(state): State<WebState>, isv: Isv, headers: HeaderMap, Path(id): Path<String>) -> ApiResult {
    let route = format!("fulfillment-cancel:{id}");
    idempotent(&state, &isv.account.id, &headers, &route, &[], false, || async {
        Ok(Json(state.fulfillment.cancel(&isv.actor(), &id).await?).into_response())
    })
    .await
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookInput {
    /// Where order events are POSTed: http(s), at most 2048 characters.
    url: String,
    /// The publisher (default: the robot's organization).
    #[serde(default)]
    publisher: Option<String>,
}

/// Sets where the publisher's order events go, with a new signing secret (`whsec_...`)
/// shown this once. Each event is POSTed as JSON with `Slipway-Signature: t=…,v1=…`
/// (Stripe's scheme: HMAC-SHA256 of `"{t}.{body}"`), retried with backoff (1 min, 5 min,
/// 30 min, 2 h, 12 h) until the endpoint answers 2xx.
#[utoipa::path(put, path = "/api/fulfillment/v1/webhook", tag = "fulfillment", request_body = WebhookInput, security(("bearer" = [])),
    responses((status = 200, body = WebhookEndpoint), (status = 400, body = ProblemDocument, content_type = PROBLEM),
        (status = 401, body = ProblemDocument, content_type = PROBLEM), (status = 403, body = ProblemDocument, content_type = PROBLEM),
        (status = 404, body = ProblemDocument, content_type = PROBLEM), (status = 415, body = ProblemDocument, content_type = PROBLEM),
        (status = 422, body = ProblemDocument, content_type = PROBLEM)))]
async fn set_webhook(State(state): State<WebState>, isv: Isv, ApiJson(input): ApiJson<WebhookInput>) -> ApiResult {
    let endpoint = state.fulfillment.set_webhook(&isv.actor(), &isv.account, input.publisher.as_deref(), &input.url).await?;
    Ok(Json(endpoint).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeliveriesQuery {
    /// The publisher (default: the robot's organization).
    publisher: Option<String>,
    /// 1 to 100 (default 100).
    limit: Option<i64>,
}

#[derive(Serialize, ToSchema)]
pub struct DeliveryLog {
    deliveries: Vec<WebhookDelivery>,
}

/// The delivery log: the publisher's latest events, newest first, with their attempts,
/// the endpoint's last answer and whether they were delivered, are retrying or failed.
#[utoipa::path(get, path = "/api/fulfillment/v1/webhook/deliveries", tag = "fulfillment", params(DeliveriesQuery), security(("bearer" = [])),
    responses((status = 200, body = DeliveryLog), (status = 400, body = ProblemDocument, content_type = PROBLEM),
        (status = 401, body = ProblemDocument, content_type = PROBLEM), (status = 403, body = ProblemDocument, content_type = PROBLEM),
        (status = 404, body = ProblemDocument, content_type = PROBLEM), (status = 422, body = ProblemDocument, content_type = PROBLEM)))]
async fn deliveries(State(state): State<WebState>, isv: Isv, ApiQuery(q): ApiQuery<DeliveriesQuery>) -> ApiResult {
    let deliveries = state.fulfillment.deliveries(&isv.actor(), &isv.account, q.publisher.as_deref(), q.limit).await?;
    Ok(Json(DeliveryLog { deliveries }).into_response())
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(create_order, list_orders, get_order, cancel_order, set_webhook, deliveries),
    components(schemas(slipway_commerce::FulfillmentEvent)),
    tags((name = "fulfillment", description = "Bring your own license: an ISV's orders, with an access token holding api:fulfillment \
        (Authorization: Bearer) of the publisher's owner or an owner robot. Order changes are POSTed to the webhook endpoint as \
        FulfillmentEvent, signed with Slipway-Signature."))
)]
pub struct FulfillmentApi;

//! `POST /api/v1/webhooks/stripe`: the events Stripe sends this store. No session or
//! access token: the `Stripe-Signature` header under `[commerce] stripe_webhook_secret`
//! authenticates the request, and a stale one (over 5 minutes by the server's clock) is
//! refused like a forged one. What is done with an event is `Commerce::stripe_webhook`'s.

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;
use slipway_commerce::WebhookOutcome;
use slipway_commerce::stripe::MAX_WEBHOOK_BYTES;
use slipway_types::ErrorKind;
use utoipa::ToSchema;

use crate::WebState;
use crate::problem::{ApiResult, Problem, ProblemDocument};

const PROBLEM: &str = "application/problem+json";

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/api/v1/webhooks/stripe", post(stripe_webhook))
        // Stripe's events are a few KiB: more is refused before it is read.
        .layer(axum::extract::DefaultBodyLimit::max(MAX_WEBHOOK_BYTES))
        .with_state(state)
}

#[derive(utoipa::OpenApi)]
#[openapi(paths(stripe_webhook), tags((name = "webhooks", description = "Events payment providers send this store")))]
pub struct WebhookApi;

/// What was done with a webhook.
#[derive(Serialize, ToSchema)]
pub struct WebhookReceipt {
    /// The provider's event id (`evt_...`).
    event: String,
    /// recorded, replayed (the id was seen before: nothing done) or ignored (a type not
    /// recorded).
    outcome: WebhookOutcome,
}

/// Receives an event from Stripe: `payment_intent.succeeded`,
/// `payment_intent.payment_failed` and `charge.refunded` are recorded, an event seen
/// before and other types answer 200 with nothing done. 400 when the `Stripe-Signature`
/// header is missing, malformed, does not match the payload under the store's webhook
/// secret, or was signed more than 5 minutes from now; 404 when this store does not take
/// Stripe webhooks (another provider, or no webhook secret).
#[utoipa::path(post, path = "/api/v1/webhooks/stripe", tag = "webhooks", request_body(content = String, content_type = "application/json",
        description = "The event as Stripe sent it, byte for byte"),
    params(("Stripe-Signature" = String, Header, description = "t=<unix seconds>,v1=<HMAC-SHA256 hex>[,v1=...]")),
    responses((status = 200, body = WebhookReceipt),
        (status = 400, body = ProblemDocument, content_type = PROBLEM, description = "A missing, malformed, forged or stale signature, or not a Stripe event"),
        (status = 404, body = ProblemDocument, content_type = PROBLEM, description = "This store does not receive Stripe webhooks"),
        (status = 413, body = ProblemDocument, content_type = PROBLEM, description = "A body over 1 MiB")))]
async fn stripe_webhook(State(state): State<WebState>, headers: HeaderMap, body: Result<Bytes, BytesRejection>) -> ApiResult {
    let body = body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => {
            Problem(ErrorKind::TooLarge, format!("the webhook payload is larger than {MAX_WEBHOOK_BYTES} bytes"))
        }
        _ => Problem(ErrorKind::Malformed, e.body_text()),
    })?;
    // Bytes that are not text cannot be a signature: the check refuses them as malformed
    // or as a mismatch.
    let signature = headers.get("stripe-signature").map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
    let (event, outcome) = state.commerce.stripe_webhook(&body, signature.as_deref()).await?;
    Ok(Json(WebhookReceipt { event, outcome }).into_response())
}

//! A publisher's sales under /api/v1: its orders, subscriptions (trials marked), refunds
//! and monthly payout statements, for the publisher's owners and administrators. Refunds
//! are given through POST /api/v1/refunds (commerce_api).

use axum::extract::{Path, State};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use slipway_commerce::{Sales, Statement};
use utoipa::ToSchema;

use crate::WebState;
use crate::extract::SignedIn;
use crate::problem::{ApiResult, ProblemDocument};

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/api/v1/publishers/{org}/sales", get(sales))
        .route("/api/v1/publishers/{org}/statements", get(statements))
        .with_state(state)
}

/// What the publisher sold, newest first in each list: orders (its invoices),
/// subscriptions with what is left to refund of each, refunds, and payout statements.
/// For the publisher's owners and administrators; to anyone else the publisher's sales do
/// not exist (404).
#[utoipa::path(get, path = "/api/v1/publishers/{org}/sales", tag = "sales", params(("org" = String, Path)),
    responses((status = 200, body = Sales), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn sales(State(state): State<WebState>, signed: SignedIn, Path(org): Path<String>) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    Ok(Json(state.commerce.sales(&viewer, &org).await?).into_response())
}

#[derive(Serialize, ToSchema)]
pub struct StatementList {
    statements: Vec<Statement>,
}

/// The publisher's monthly payout statements, newest month first: gross sales, refunds,
/// tax, the platform's fee, the balance carried in and over, the net due and whether it
/// was paid (with the payment's reference).
#[utoipa::path(get, path = "/api/v1/publishers/{org}/statements", tag = "sales", params(("org" = String, Path)),
    responses((status = 200, body = StatementList), (status = 401, body = ProblemDocument, content_type = "application/problem+json"),
        (status = 403, body = ProblemDocument, content_type = "application/problem+json"), (status = 404, body = ProblemDocument, content_type = "application/problem+json")))]
async fn statements(State(state): State<WebState>, signed: SignedIn, Path(org): Path<String>) -> ApiResult {
    let viewer = signed.viewer(&state.catalog).await?;
    Ok(Json(StatementList { statements: state.commerce.publisher_statements(&viewer, &org).await? }).into_response())
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(sales, statements),
    tags((name = "sales", description = "A publisher's orders, subscriptions, refunds and payout statements"))
)]
pub struct SalesApi;

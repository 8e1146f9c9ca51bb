//! The publisher's sales page (`/publishers/{org}/sales`): orders, subscriptions with
//! trials marked, refunds, and the monthly payout statements with their CSV, for the
//! publisher's owners and administrators. Each paid subscription has a refund form that
//! works without JavaScript; it carries the session's CSRF token and an idempotency key
//! made when the page was rendered, so a double click (or a resent form) refunds once.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use slipway_auth::random_secret;
use slipway_catalog::Viewer;
use slipway_commerce::{KeyClaim, RefundInput, Sales, SoldSubscription, statements_csv};
use slipway_types::{Currency, ErrorKind, Money};

use crate::WebState;

use super::{Chrome, PageError, PageResult, Visit, filters};

/// The longest idempotency key a refund form may carry (the page makes 64 hex digits).
const MAX_FORM_KEY: usize = 128;

/// A subscription row with its refund form's key.
struct Row {
    s: SoldSubscription,
    key: String,
}

#[derive(Template)]
#[template(path = "sales.html")]
struct SalesPage {
    chrome: Chrome,
    org: String,
    sales: Sales,
    rows: Vec<Row>,
    notice: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct SalesQuery {
    refunded: Option<String>,
}

/// The page's own path for `org`: kept to characters a header may carry, whatever was
/// asked for (a publisher's name is lower-case letters, digits and dashes).
fn sales_path(org: &str) -> String {
    let safe: String = org.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')).collect();
    format!("/publishers/{safe}/sales")
}

async fn page(
    state: &WebState,
    visit: &Visit,
    viewer: &Viewer,
    org: &str,
    notice: Option<String>,
    error: Option<String>,
) -> Result<SalesPage, PageError> {
    let sales = state.commerce.sales(viewer, org).await?;
    let rows = sales.subscriptions.iter().cloned().map(|s| Row { s, key: random_secret() }).collect();
    Ok(SalesPage { chrome: visit.chrome_clone(), org: org.to_owned(), sales, rows, notice, error })
}

pub(super) async fn sales(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Query(query): Query<SalesQuery>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require(&sales_path(&org))?;
    let notice = query.refunded.map(|_| "The refund was given, with a credit note to the customer.".to_owned());
    visit.render(page(&state, &visit, viewer, &org, notice, None).await?)
}

/// The publisher's statements as CSV, for a spreadsheet or the accounts.
pub(super) async fn statements_download(State(state): State<WebState>, headers: HeaderMap, Path(org): Path<String>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require(&sales_path(&org))?;
    let statements = state.commerce.publisher_statements(viewer, &org).await?;
    let name: String = org.chars().filter(|c| c.is_ascii_alphanumeric() || *c == '-').collect();
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{name}-statements.csv\""))
        .map_err(|e| PageError::Refused(ErrorKind::Internal, e.to_string()))?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8")), (header::CONTENT_DISPOSITION, disposition)],
        statements_csv(&statements),
    )
        .into_response())
}

#[derive(Deserialize)]
pub(super) struct RefundForm {
    #[serde(default)]
    csrf: String,
    /// The idempotency key the page made for this form.
    #[serde(default)]
    key: String,
    #[serde(default)]
    subscription: String,
    /// In the currency's units (`9.00`); empty for all that is left of the last payment.
    #[serde(default)]
    amount: String,
    #[serde(default)]
    currency: String,
    #[serde(default)]
    reason: String,
}

/// The amount typed, in minor units of `currency`; None when left empty (refund the rest).
fn amount_of(form: &RefundForm) -> Result<Option<i64>, String> {
    let typed = form.amount.trim();
    if typed.is_empty() {
        return Ok(None);
    }
    let currency = Currency::parse(&form.currency).map_err(|e| format!("the form's currency: {e}"))?;
    Money::parse(typed, currency).map(|m| Some(m.minor)).map_err(|e| format!("{typed:?} is not an amount of {currency}: {e}"))
}

/// Refunds through `Commerce::refund` once per form key: the first post does it and
/// stores the outcome; a repeat (a double click, a reload that resends) finds it and gives
/// the same outcome without refunding again.
pub(super) async fn refund(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Form(form): Form<RefundForm>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require(&sales_path(&org))?;
    visit.check_csrf(&form.csrf)?;
    match refund_once(&state, viewer, &form).await? {
        Ok(()) => Ok(Redirect::to(&format!("{}?refunded=1", sales_path(&org))).into_response()),
        Err((kind, message)) => {
            let page = page(&state, &visit, viewer, &org, None, Some(message)).await?;
            visit.render_refused(kind, page)
        }
    }
}

/// The refund a form asks for, given once per form key: Ok(Ok) when it was given (now or
/// by an earlier post of the same form), Ok(Err) with what to tell the publisher when it
/// was refused.
async fn refund_once(state: &WebState, viewer: &Viewer, form: &RefundForm) -> Result<Result<(), (ErrorKind, String)>, PageError> {
    let key = form.key.trim();
    if key.is_empty() || key.len() > MAX_FORM_KEY || !key.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Ok(Err((ErrorKind::Invalid, "This form has expired. Reload the page and try again.".into())));
    }
    let amount = match amount_of(form) {
        Ok(amount) => amount,
        Err(why) => return Ok(Err((ErrorKind::Invalid, why))),
    };
    let input = RefundInput { subscription: form.subscription.clone(), amount, reason: form.reason.clone() };
    let caller = &viewer.account.id;
    // Namespaced apart from the API's Idempotency-Keys, which the same caller may send.
    let stored = format!("sales-page:{key}");
    let mut hasher = Sha256::new();
    hasher.update(format!("refund\0{}\0{:?}\0{}", input.subscription, input.amount, input.reason));
    let request_hash = hex::encode(hasher.finalize());
    Ok(match state.commerce.claim_key(caller, &stored, &request_hash).await? {
        KeyClaim::Claimed => {
            let lease = state.commerce.hold_key(caller, &stored);
            let refunded = state.commerce.refund(viewer, &input).await;
            drop(lease);
            match refunded {
                Ok(r) => {
                    state.commerce.finish_key(caller, &stored, 201, &r.id).await?;
                    Ok(())
                }
                Err(e) if matches!(e.kind(), ErrorKind::Internal | ErrorKind::Unavailable) => {
                    // Worth a real retry: the key is freed for it.
                    state.commerce.release_key(caller, &stored).await?;
                    return Err(e.into());
                }
                Err(e) => {
                    state.commerce.finish_key(caller, &stored, i64::from(e.kind().status()), &e.to_string()).await?;
                    Err((e.kind(), e.to_string()))
                }
            }
        }
        KeyClaim::Done { status, .. } if (200..300).contains(&status) => Ok(()),
        KeyClaim::Done { status, response } => {
            let kinds = [ErrorKind::NotFound, ErrorKind::Forbidden, ErrorKind::Conflict, ErrorKind::PaymentRequired];
            Err((kinds.into_iter().find(|k| i64::from(k.status()) == status).unwrap_or(ErrorKind::Invalid), response))
        }
        KeyClaim::Running => Err((ErrorKind::Conflict, "This refund is being given. Reload the page in a moment to see it.".into())),
        KeyClaim::OtherRequest => {
            Err((ErrorKind::Conflict, "This form was sent before with other values. Reload the page to give another refund.".into()))
        }
    })
}

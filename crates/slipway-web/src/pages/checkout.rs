//! Buying in the store: the checkout page, the billing profile, My subscriptions with its
//! cancel and pay forms, and invoices. A form that moves money carries an idempotency key
//! made when its page is rendered and goes through the API's Idempotency-Key store, so a
//! double click (or a reload that sends the form again) charges once.

use std::future::Future;
use std::time::Duration;

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use slipway_catalog::{License, Listed, Listing, Tier, Viewer};
use slipway_commerce::{BillingProfile, CheckoutInput, CommerceError, Invoice, KeyClaim, Quote, Subscription};
use slipway_types::ErrorKind;

use crate::WebState;
use crate::session::registry_host;

use super::{Chrome, PageError, PageResult, Visit, encode, filters, status_of};

/// How often, and how many times, a repeated submission looks whether the first one has
/// finished (20 seconds in all: longer than a payment provider's answer takes).
const POLL: Duration = Duration::from_millis(100);
const POLLS: u32 = 200;

// ---- one purchase per form ---------------------------------------------------------------

/// What a money-moving form came to, as its key keeps it for the form sent again.
enum Outcome {
    /// Done: the page to go to.
    Done(String),
    /// Refused (a declined card, a rule): the status and the customer's message.
    Refused(StatusCode, String),
}

/// The status a finished form is stored with: a redirect to the location stored beside it.
const DONE: i64 = 303;

/// Runs `work` once per caller and form `key`: the same form sent again waits for the
/// first to finish and gets its outcome; the key sent with other values is refused.
/// `fields` identify the request (the CSRF token and the key itself are not among them).
async fn once<F, Fut>(
    state: &WebState,
    caller: &str,
    key: &str,
    route: &str,
    fields: &[(&str, &str)],
    work: F,
) -> Result<Outcome, PageError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<String, CommerceError>> + Send + 'static,
{
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(PageError::Refused(ErrorKind::Malformed, "This form is incomplete. Reload the page and try again.".into()));
    }
    let mut hasher = Sha256::new();
    hasher.update(format!("page:{route}").as_bytes());
    hasher.update([0]);
    hasher.update(serde_urlencoded::to_string(fields).unwrap_or_default().as_bytes());
    let request_hash = hex::encode(hasher.finalize());
    let mut work = Some(work);
    for _ in 0..POLLS {
        match state.commerce.claim_key(caller, key, &request_hash).await? {
            KeyClaim::Claimed => {
                let Some(work) = work.take() else { break };
                // Spawned: a browser that gives up on a request (a second click aborts the
                // first) closes its connection, and the server drops the handler with it.
                // A purchase that has begun must finish and answer its key all the same.
                let (state, caller, key, run) = (state.clone(), caller.to_owned(), key.to_owned(), work());
                let task = tokio::spawn(async move {
                    let lease = state.commerce.hold_key(&caller, &key);
                    let ran = run.await;
                    drop(lease);
                    let (status, stored) = match ran {
                        Ok(location) => (DONE, location),
                        Err(e) if e.kind().status() >= 500 => {
                            state.commerce.release_key(&caller, &key).await?;
                            return Err(PageError::from(e));
                        }
                        Err(e) => (i64::from(e.kind().status()), e.to_string()),
                    };
                    state.commerce.finish_key(&caller, &key, status, &stored).await?;
                    Ok(outcome(status, stored))
                });
                return task.await.map_err(|e| PageError::Refused(ErrorKind::Internal, format!("the purchase's task failed: {e}")))?;
            }
            KeyClaim::Done { status, response } => return Ok(outcome(status, response)),
            KeyClaim::Running => tokio::time::sleep(POLL).await,
            KeyClaim::OtherRequest => {
                return Err(PageError::Refused(
                    ErrorKind::Conflict,
                    "This form was already sent with other values. Go back, reload the page and try again.".into(),
                ));
            }
        }
    }
    Err(PageError::Refused(
        ErrorKind::Conflict,
        "Your payment is still being processed. Look at My subscriptions in a moment before trying again.".into(),
    ))
}

fn outcome(status: i64, stored: String) -> Outcome {
    if status == DONE {
        return Outcome::Done(stored);
    }
    let status = u16::try_from(status).ok().and_then(|s| StatusCode::from_u16(s).ok()).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
    Outcome::Refused(status, stored)
}

fn new_key() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A price in basis points as people read it: 1900 as "19%", 825 as "8.25%".
fn percent(bps: i64) -> String {
    let whole = format!("{}.{:02}", bps / 100, bps % 100);
    format!("{}%", whole.trim_end_matches('0').trim_end_matches('.'))
}

// ---- checkout ----------------------------------------------------------------------------

#[derive(Deserialize)]
pub(super) struct CheckoutQuery {
    #[serde(default)]
    product: String,
    #[serde(default)]
    tier: String,
}

fn checkout_path(product: &str, tier: &str) -> String {
    format!("/checkout?product={}&tier={}", encode(product), encode(tier))
}

/// What the customer typed, shown again when the page comes back.
#[derive(Default)]
struct Draft {
    billing: Option<BillingProfile>,
    accepted: bool,
    payment_method: String,
}

#[derive(Template)]
#[template(path = "checkout.html")]
struct CheckoutPage {
    chrome: Chrome,
    listing: Listing,
    tier: Tier,
    quote: Quote,
    license: Option<License>,
    /// The profile on file; None asks for one on this page.
    profile: Option<BillingProfile>,
    billing: BillingProfile,
    accepted: bool,
    payment_method: String,
    /// This rendering's idempotency key.
    key: String,
    /// The sandbox's test cards are listed as a hint.
    sandbox: bool,
    error: Option<String>,
    notice: Option<String>,
}

impl CheckoutPage {
    fn total_field(&self) -> String {
        total_field(&self.quote)
    }

    fn rate(&self) -> String {
        percent(i64::from(self.quote.tax_rate_bps))
    }
}

/// The total a checkout page showed, sent back with its form: the purchase goes ahead only
/// at the total the customer saw.
fn total_field(quote: &Quote) -> String {
    format!("{} {}", quote.total.amount, quote.total.currency)
}

pub(super) async fn checkout_form(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<CheckoutQuery>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require(&checkout_path(&query.product, &query.tier))?;
    checkout_page(&state, &visit, viewer, &query.product, &query.tier, Draft::default(), StatusCode::OK, None, None).await
}

#[allow(clippy::too_many_arguments)]
async fn checkout_page(
    state: &WebState,
    visit: &Visit,
    viewer: &Viewer,
    product: &str,
    tier: &str,
    draft: Draft,
    status: StatusCode,
    error: Option<String>,
    notice: Option<String>,
) -> PageResult {
    let (publisher, slug) =
        product.split_once('/').ok_or_else(|| PageError::Refused(ErrorKind::NotFound, format!("There is no product {product:?}.")))?;
    let listing = state.catalog.listing(Some(viewer), publisher, slug).await?;
    let chosen = listing
        .tiers
        .iter()
        .find(|t| t.slug == tier)
        .cloned()
        .ok_or_else(|| PageError::Refused(ErrorKind::NotFound, format!("{} has no tier {tier:?}.", listing.name)))?;
    if chosen.is_free() {
        // Free tiers are got on the product page, without checkout.
        return Ok(Redirect::to(&format!("{}#tiers", listing.path())).into_response());
    }
    let quote = state.commerce.quote(viewer, &format!("{publisher}/{slug}"), tier).await?;
    let license = state.catalog.license(&listing).await?;
    let profile = state.commerce.billing_profile(viewer).await?;
    let billing = draft.billing.or_else(|| profile.clone()).unwrap_or_default();
    let page = CheckoutPage {
        chrome: visit.chrome_clone(),
        listing,
        tier: chosen,
        quote,
        license,
        profile,
        billing,
        accepted: draft.accepted,
        payment_method: draft.payment_method,
        key: new_key(),
        sandbox: state.commerce.provider().name() == "sandbox",
        error,
        notice,
    };
    visit.render_status(status, page)
}

#[derive(Deserialize)]
pub(super) struct CheckoutForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    product: String,
    #[serde(default)]
    tier: String,
    /// The total the page showed (`4900 USD`).
    #[serde(default)]
    total: String,
    accept_license: Option<String>,
    #[serde(default)]
    license_version: String,
    #[serde(default)]
    payment_method: String,
    /// The billing profile, when the page asked for one.
    billing_name: Option<String>,
    #[serde(default)]
    billing_country: String,
    #[serde(default)]
    billing_region: String,
    #[serde(default)]
    billing_postal_code: String,
    #[serde(default)]
    billing_tax_id: String,
}

impl CheckoutForm {
    fn billing(&self) -> Option<BillingProfile> {
        self.billing_name.as_ref().map(|name| BillingProfile {
            name: name.clone(),
            country: self.billing_country.clone(),
            region: self.billing_region.clone(),
            postal_code: self.billing_postal_code.clone(),
            tax_id: self.billing_tax_id.clone(),
        })
    }
}

pub(super) async fn checkout(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<CheckoutForm>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require(&checkout_path(&form.product, &form.tier))?;
    visit.check_csrf(&form.csrf)?;
    let billing = form.billing();
    let accepted = form.accept_license.is_some();
    let payment_method = form.payment_method.trim().to_owned();
    let draft = || Draft { billing: billing.clone(), accepted, payment_method: payment_method.clone() };
    let again = |draft: Draft, status: StatusCode, error: Option<String>, notice: Option<String>| {
        checkout_page(&state, &visit, viewer, &form.product, &form.tier, draft, status, error, notice)
    };
    // What can be checked before anything is charged comes back on the page as it was.
    if let Some(billing) = &billing {
        match state.commerce.save_billing_profile(viewer, billing).await {
            Ok(_) => {}
            Err(e @ CommerceError::Invalid(_)) => {
                return again(draft(), status_of(e.kind()), Some(capitalized(&e.to_string())), None).await;
            }
            Err(e) => return Err(e.into()),
        }
    } else if state.commerce.billing_profile(viewer).await?.is_none() {
        // The first paid checkout asks for them: invoices name the buyer, tax follows them.
        let message = "Enter your billing details: invoices name the buyer, and tax follows the country.".to_owned();
        return again(draft(), status_of(ErrorKind::Invalid), Some(message), None).await;
    }
    let quote = state.commerce.quote(viewer, &form.product, &form.tier).await?;
    let accept_license = match form.license_version.parse::<i64>() {
        Ok(version) if accepted => Some(version),
        _ => None,
    };
    if quote.license_version > 0 && accept_license.is_none() {
        let message = "Accept the license agreement to buy this product.".to_owned();
        return again(draft(), status_of(ErrorKind::Invalid), Some(message), None).await;
    }
    if quote.trial_days == 0 && payment_method.is_empty() {
        let message = "Enter a payment method to pay with.".to_owned();
        return again(draft(), status_of(ErrorKind::Invalid), Some(message), None).await;
    }
    if total_field(&quote) != form.total {
        let notice = format!(
            "With your billing details the total is {}{}. Check it and confirm again.",
            quote.total.display,
            if quote.tax.amount > 0 { format!(", tax included ({} {})", quote.tax_name, quote.tax.display) } else { String::new() }
        );
        return again(draft(), StatusCode::OK, None, Some(notice)).await;
    }
    let input = CheckoutInput {
        product: form.product.clone(),
        tier: form.tier.clone(),
        accept_license,
        payment_method: Some(payment_method.clone()).filter(|m| !m.is_empty()),
        billing: None,
        idempotency: Some((viewer.account.id.clone(), form.key.clone())),
    };
    let fields = [("product", form.product.as_str()), ("tier", &form.tier), ("total", &form.total), ("payment_method", &payment_method)];
    let (commerce, buyer, host) = (state.commerce.clone(), viewer.clone(), registry_host(&state.auth, &headers));
    let done = once(&state, &viewer.account.id, &form.key, "checkout", &fields, move || async move {
        let done = commerce.checkout(&buyer, &input, &host).await?;
        Ok(format!("/subscriptions#subscription-{}", done.subscription.id))
    })
    .await?;
    match done {
        Outcome::Done(location) => Ok(Redirect::to(&location).into_response()),
        Outcome::Refused(status, message) => {
            // A declined card is not offered again.
            let declined = status == StatusCode::PAYMENT_REQUIRED;
            let draft = Draft { payment_method: if declined { String::new() } else { payment_method.clone() }, ..draft() };
            again(draft, status, Some(capitalized(&message)), None).await
        }
    }
}

/// The service's messages start in lower case (they are also the API's); pages show
/// sentences.
fn capitalized(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

// ---- the billing profile -----------------------------------------------------------------

#[derive(Template)]
#[template(path = "billing.html")]
struct BillingPage {
    chrome: Chrome,
    billing: BillingProfile,
    existing: bool,
    error: Option<String>,
    saved: bool,
}

pub(super) async fn billing_form(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require("/billing")?;
    let profile = state.commerce.billing_profile(viewer).await?;
    let page = BillingPage {
        chrome: visit.chrome_clone(),
        existing: profile.is_some(),
        billing: profile.unwrap_or_default(),
        error: None,
        saved: false,
    };
    visit.render(page)
}

#[derive(Deserialize)]
pub(super) struct BillingForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    country: String,
    #[serde(default)]
    region: String,
    #[serde(default)]
    postal_code: String,
    #[serde(default)]
    tax_id: String,
}

pub(super) async fn save_billing(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<BillingForm>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require("/billing")?;
    visit.check_csrf(&form.csrf)?;
    let input =
        BillingProfile { name: form.name, country: form.country, region: form.region, postal_code: form.postal_code, tax_id: form.tax_id };
    let existing = state.commerce.billing_profile(viewer).await?.is_some();
    match state.commerce.save_billing_profile(viewer, &input).await {
        Ok(saved) => visit.render(BillingPage { chrome: visit.chrome_clone(), billing: saved, existing: true, error: None, saved: true }),
        Err(e @ CommerceError::Invalid(_)) => {
            let page = BillingPage {
                chrome: visit.chrome_clone(),
                billing: input,
                existing,
                error: Some(capitalized(&e.to_string())),
                saved: false,
            };
            visit.render_refused(e.kind(), page)
        }
        Err(e) => Err(e.into()),
    }
}

// ---- My subscriptions --------------------------------------------------------------------

/// One subscription as My subscriptions shows it.
struct SubscriptionRow {
    s: Subscription,
    /// Its invoices and credit notes.
    invoices: Vec<Invoice>,
    /// The idempotency key of its Pay now form.
    pay_key: String,
    /// Why paying or cancelling it was refused just now.
    error: Option<String>,
}

impl SubscriptionRow {
    fn status_label(&self) -> &'static str {
        match self.s.status.as_str() {
            "active" if self.s.cancel_at_period_end => "Canceled at period end",
            "active" => "Active",
            "trialing" if self.s.cancel_at_period_end => "Free trial, canceled",
            "trialing" => "Free trial",
            "past_due" => "Payment due",
            "canceled" => "Canceled",
            "expired" => "Expired",
            _ => "Pending",
        }
    }

    /// Whether it may still be canceled.
    fn cancelable(&self) -> bool {
        matches!(self.s.status.as_str(), "active" | "trialing" | "past_due") && !self.s.cancel_at_period_end
    }

    fn per_period(&self) -> &'static str {
        match self.s.billing_period.as_str() {
            "month" => " / month",
            "year" => " / year",
            "one_time" => " one-time",
            _ => "",
        }
    }
}

#[derive(Template)]
#[template(path = "subscriptions.html")]
struct SubscriptionsPage {
    chrome: Chrome,
    rows: Vec<SubscriptionRow>,
    invoices: Vec<Invoice>,
    billing: Option<BillingProfile>,
    sandbox: bool,
}

/// A refusal of one subscription's form, shown beside it.
pub(super) struct RowError {
    subscription: String,
    status: StatusCode,
    message: String,
}

/// My subscriptions, with the refusal of one of its forms if there was one.
pub(super) async fn subscriptions_page(state: &WebState, visit: &Visit, headers: &HeaderMap, refused: Option<RowError>) -> PageResult {
    let viewer = visit.require("/subscriptions")?;
    let subscriptions = state.commerce.subscriptions(viewer, &registry_host(&state.auth, headers)).await?;
    let invoices = state.commerce.invoices(viewer).await?;
    let status = refused.as_ref().map_or(StatusCode::OK, |r| r.status);
    let mut refused = refused;
    let rows = subscriptions
        .into_iter()
        .map(|s| SubscriptionRow {
            invoices: invoices.iter().filter(|i| i.subscription.as_deref() == Some(s.id.as_str())).cloned().collect(),
            pay_key: new_key(),
            error: refused.take_if(|r| r.subscription == s.id).map(|r| r.message),
            s,
        })
        .collect();
    if let Some(r) = refused {
        // Its subscription is not listed (any more): the message stands on its own.
        return Err(PageError::Refused(ErrorKind::NotFound, r.message));
    }
    let page = SubscriptionsPage {
        chrome: visit.chrome_clone(),
        rows,
        invoices,
        billing: state.commerce.billing_profile(viewer).await?,
        sandbox: state.commerce.provider().name() == "sandbox",
    };
    visit.render_status(status, page)
}

#[derive(Deserialize)]
pub(super) struct CancelForm {
    #[serde(default)]
    csrf: String,
    /// `now` ends it at once (refunding the unused part where the publisher allows);
    /// anything else, at the period's end.
    #[serde(default)]
    when: String,
}

/// Cancels a subscription: a recurring one at the end of the period paid for (it keeps its
/// access until then) unless the customer asks for now, anything else at once.
pub(super) async fn cancel(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CancelForm>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require("/subscriptions")?;
    visit.check_csrf(&form.csrf)?;
    let at_period_end = form.when != "now";
    match state.commerce.cancel(viewer, &id, at_period_end, &registry_host(&state.auth, &headers)).await {
        Ok(_) => Ok(Redirect::to(&format!("/subscriptions#subscription-{id}")).into_response()),
        // Sent twice, or it ended meanwhile: the page shows where it stands.
        Err(e @ CommerceError::Conflict(_)) => {
            let refused = RowError { subscription: id, status: status_of(e.kind()), message: capitalized(&e.to_string()) };
            subscriptions_page(&state, &visit, &headers, Some(refused)).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct PayForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    payment_method: String,
}

/// Pays a past-due subscription now, with a payment method that is then kept for renewals.
pub(super) async fn pay(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<PayForm>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require("/subscriptions")?;
    visit.check_csrf(&form.csrf)?;
    let method = form.payment_method.trim().to_owned();
    if method.is_empty() {
        let refused =
            RowError { subscription: id, status: status_of(ErrorKind::Invalid), message: "Enter a payment method to pay with.".into() };
        return subscriptions_page(&state, &visit, &headers, Some(refused)).await;
    }
    let (commerce, payer, host, sub, card) =
        (state.commerce.clone(), viewer.clone(), registry_host(&state.auth, &headers), id.clone(), method.clone());
    let route = format!("pay:{id}");
    let done = once(&state, &viewer.account.id, &form.key, &route, &[("payment_method", &method)], move || async move {
        commerce.pay(&payer, &sub, &card, &host).await?;
        Ok(format!("/subscriptions#subscription-{sub}"))
    })
    .await?;
    match done {
        Outcome::Done(location) => Ok(Redirect::to(&location).into_response()),
        Outcome::Refused(status, message) => {
            let refused = RowError { subscription: id, status, message: capitalized(&message) };
            subscriptions_page(&state, &visit, &headers, Some(refused)).await
        }
    }
}

// ---- invoices ----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "invoice.html")]
struct InvoicePage {
    chrome: Chrome,
    invoice: Invoice,
    /// The seller's display and legal names; the organization's id when it has no profile.
    seller_name: String,
    seller_legal_name: String,
    /// For a credit note: the number of the invoice it credits.
    credits_number: Option<String>,
}

impl InvoicePage {
    fn is_credit_note(&self) -> bool {
        self.invoice.kind == "credit_note"
    }

    fn title(&self) -> &'static str {
        if self.is_credit_note() { "Credit note" } else { "Invoice" }
    }

    fn rate(&self, bps: &i64) -> String {
        percent(*bps)
    }
}

async fn invoice_page(state: &WebState, headers: &HeaderMap, id: &str, next: &str) -> Result<(Visit, InvoicePage), PageError> {
    let visit = Visit::of(state, headers).await?;
    let viewer = visit.require(next)?;
    let invoice = state.commerce.invoice(viewer, id).await?;
    let (seller_name, seller_legal_name) = match state.catalog.publisher(&invoice.seller).await? {
        Some(p) => (p.display_name, p.legal_name),
        None => (invoice.seller.clone(), String::new()),
    };
    let credits_number = match &invoice.credits {
        Some(credited) => Some(state.commerce.invoice(viewer, credited).await?.number),
        None => None,
    };
    let page = InvoicePage { chrome: visit.chrome_clone(), invoice, seller_name, seller_legal_name, credits_number };
    Ok((visit, page))
}

pub(super) async fn invoice(State(state): State<WebState>, headers: HeaderMap, Path(id): Path<String>) -> PageResult {
    let (visit, page) = invoice_page(&state, &headers, &id, &format!("/invoices/{}", encode(&id))).await?;
    visit.render(page)
}

/// The invoice's page as a file to keep.
pub(super) async fn download_invoice(State(state): State<WebState>, headers: HeaderMap, Path(id): Path<String>) -> PageResult {
    let (visit, page) = invoice_page(&state, &headers, &id, &format!("/invoices/{}", encode(&id))).await?;
    // Invoice numbers are the seller's upper-cased organization and digits: a safe name.
    let filename = format!("{}.html", page.invoice.number);
    let mut response = visit.render(page)?;
    let disposition = HeaderValue::from_str(&format!("attachment; filename=\"{filename}\""))
        .map_err(|e| PageError::Refused(ErrorKind::Internal, format!("invoice file name: {e}")))?;
    response.headers_mut().insert(header::CONTENT_DISPOSITION, disposition);
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tax_rates_read_as_percentages() {
        assert_eq!(percent(1900), "19%");
        assert_eq!(percent(825), "8.25%");
        assert_eq!(percent(750), "7.5%");
        assert_eq!(percent(0), "0%");
    }

    #[test]
    fn stored_outcomes_come_back_as_they_were() {
        assert!(matches!(outcome(DONE, "/subscriptions".into()), Outcome::Done(l) if l == "/subscriptions"));
        assert!(
            matches!(outcome(402, "Your card was declined.".into()), Outcome::Refused(StatusCode::PAYMENT_REQUIRED, m) if m == "Your card was declined.")
        );
    }

    #[test]
    fn messages_become_sentences() {
        assert_eq!(capitalized("accept the license"), "Accept the license");
        assert_eq!(capitalized(""), "");
    }
}

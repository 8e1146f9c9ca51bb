//! Stripe as a `PaymentProvider`, over its REST API (form-encoded requests, JSON answers),
//! and the events of its webhooks.

use std::net::IpAddr;
use std::time::Duration;

use reqwest::{Client, Response, StatusCode};
use serde::Deserialize;
use serde_json::Value;
use sha2::{Digest, Sha256};
use slipway_db::CommerceDb;
use url::{Host, Url};

use crate::CommerceError;
use crate::provider::{ChargeOutcome, ChargeRequest, PaymentProvider, RefundRequest, SavedMethod};
use crate::signature::{self, DEFAULT_TOLERANCE_SECS};

/// Stripe's API.
pub const DEFAULT_API_BASE: &str = "https://api.stripe.com";
/// The API version the answers are read as, sent with every request so that a change of
/// the account's default version cannot change their shape. stripe-mock's spec has it.
pub const API_VERSION: &str = "2026-08-26.dahlia";
/// The largest webhook body read: Stripe's events are a few KiB.
pub const MAX_WEBHOOK_BYTES: usize = 1 << 20;
/// The largest answer read from the API: the objects asked for are a few KiB.
const MAX_RESPONSE_BYTES: usize = 1 << 20;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Stripe's limit on an idempotency key and on an object id.
const MAX_KEY_LEN: usize = 255;

pub struct StripeProvider {
    client: Client,
    /// Without a trailing slash: paths are appended.
    api_base: String,
    secret_key: String,
    live: bool,
    /// Where the Stripe customer of each account is kept (`payment_customers`), so every
    /// replica and every restart charges the customer the account's methods are saved with.
    customers: CommerceDb,
}

impl StripeProvider {
    /// `api_base` is [`DEFAULT_API_BASE`] or a stand-in; plain http only on loopback, since
    /// the secret key travels in every request. `secret_key` is a secret or restricted key
    /// (`sk_...`, `rk_...`). `customers` keeps each account's Stripe customer.
    pub fn new(api_base: String, secret_key: String, customers: CommerceDb) -> Result<Self, CommerceError> {
        let url = Url::parse(&api_base).map_err(|e| config(format!("api base {api_base:?}: {e}")))?;
        let loopback = match url.host() {
            Some(Host::Domain(domain)) => domain == "localhost",
            Some(Host::Ipv4(ip)) => IpAddr::V4(ip).is_loopback(),
            Some(Host::Ipv6(ip)) => IpAddr::V6(ip).is_loopback(),
            None => false,
        };
        match url.scheme() {
            "https" => {}
            "http" if loopback => {}
            _ => return Err(config(format!("api base {api_base:?} must be https (http only on loopback)"))),
        }
        if url.host().is_none()
            || !url.username().is_empty()
            || url.password().is_some()
            || url.query().is_some()
            || url.fragment().is_some()
        {
            return Err(config(format!("api base {api_base:?} must be a plain http(s)://host[:port][/path]")));
        }
        let valid_key = (secret_key.starts_with("sk_") || secret_key.starts_with("rk_"))
            && secret_key.len() <= MAX_KEY_LEN
            && secret_key.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
        if !valid_key {
            // The key itself is never repeated in a message.
            return Err(config("the secret key is not a Stripe secret key (sk_... or rk_...)".to_owned()));
        }
        let client = slipway_net::client()
            .timeout(REQUEST_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            // A redirect would carry the key elsewhere; Stripe's API never redirects.
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| config(format!("http client: {e}")))?;
        let live = !(secret_key.starts_with("sk_test_") || secret_key.starts_with("rk_test_"));
        Ok(StripeProvider { client, api_base: url.as_str().trim_end_matches('/').to_owned(), secret_key, live, customers })
    }

    async fn post(&self, path: &str, form: &[(&str, String)], idempotency_key: &str) -> Result<(StatusCode, Value), CommerceError> {
        let request = self
            .client
            .post(format!("{}{path}", self.api_base))
            .header("Idempotency-Key", idempotency_key_header(idempotency_key))
            .form(form);
        self.send(request).await
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> Result<(StatusCode, Value), CommerceError> {
        let response = request
            .bearer_auth(&self.secret_key)
            .header("Stripe-Version", API_VERSION)
            .send()
            .await
            .map_err(|e| CommerceError::Unavailable(format!("cannot reach Stripe: {e}")))?;
        let status = response.status();
        let body = read_bounded(response).await?;
        let value = serde_json::from_slice(&body)
            .map_err(|_| CommerceError::Unavailable(format!("Stripe answered {status} with a body that is not JSON")))?;
        Ok((status, value))
    }

    /// The account's Stripe customer, made on first use. Two attaches at once may both
    /// ask Stripe, under one idempotency key (so for one customer while Stripe keeps the
    /// key, a day); whichever is recorded first is the account's for both.
    async fn customer_for(&self, account: &str) -> Result<String, CommerceError> {
        if let Some(id) = self.customers.payment_customer(account, self.name()).await? {
            return Ok(id);
        }
        let form = [("metadata[account]", account.to_owned())];
        let (status, body) = self.post("/v1/customers", &form, &format!("slipway-customer-{account}")).await?;
        if !status.is_success() {
            return Err(CommerceError::Unavailable(describe_failure(status, &body)));
        }
        let id = object_id(&body, "cus_")?;
        Ok(self.customers.claim_payment_customer(account, self.name(), &id).await?)
    }

    /// The customer a charge names: the one the account's methods were attached to.
    async fn customer_of(&self, account: &str, method: &str) -> Result<String, CommerceError> {
        self.customers
            .payment_customer(account, self.name())
            .await?
            .ok_or_else(|| CommerceError::Invalid(format!("payment method {method} is not saved with Stripe: attach it first")))
    }
}

/// A configuration that cannot work: refused when the server starts.
fn config(why: String) -> CommerceError {
    CommerceError::Invalid(format!("invalid Stripe configuration: {why}"))
}

#[async_trait::async_trait]
impl PaymentProvider for StripeProvider {
    fn name(&self) -> &'static str {
        "stripe"
    }

    fn is_live(&self) -> bool {
        self.live
    }

    async fn attach(&self, customer: &str, method: &str) -> Result<SavedMethod, CommerceError> {
        check_method(method)?;
        let stripe_customer = self.customer_for(customer).await?;
        let form = [("customer", stripe_customer.clone())];
        let key = format!("slipway-attach-{stripe_customer}-{method}");
        let (status, body) = self.post(&format!("/v1/payment_methods/{method}/attach"), &form, &key).await?;
        attach_result(status, &body)
    }

    async fn charge(&self, request: &ChargeRequest<'_>) -> Result<ChargeOutcome, CommerceError> {
        check_method(request.method)?;
        let stripe_customer = self.customer_of(request.customer, request.method).await?;
        let mut form = vec![
            ("amount", request.amount.minor.to_string()),
            ("currency", request.amount.currency.code().to_ascii_lowercase()),
            ("customer", stripe_customer),
            ("payment_method", request.method.to_owned()),
            // Cards only: no method that would redirect the customer, which a confirm
            // without a return URL refuses.
            ("payment_method_types[]", "card".to_owned()),
            ("confirm", "true".to_owned()),
            ("metadata[account]", request.customer.to_owned()),
        ];
        if !request.description.is_empty() {
            form.push(("description", request.description.to_owned()));
        }
        if request.off_session {
            form.push(("off_session", "true".to_owned()));
        }
        let (status, body) = self.post("/v1/payment_intents", &form, request.idempotency_key).await?;
        charge_outcome(status, &body)
    }

    async fn refund(&self, request: &RefundRequest<'_>) -> Result<String, CommerceError> {
        let form = [("payment_intent", request.payment.to_owned()), ("amount", request.amount.minor.to_string())];
        let (status, body) = self.post("/v1/refunds", &form, request.idempotency_key).await?;
        refund_result(status, &body)
    }
}

/// The id goes into a URL path: only Stripe's id characters pass.
fn check_method(method: &str) -> Result<(), CommerceError> {
    if is_object_id(method, "pm_") {
        Ok(())
    } else {
        Err(CommerceError::Invalid(format!("{method:?} is not a Stripe payment method id (pm_...)")))
    }
}

fn is_object_id(id: &str, prefix: &str) -> bool {
    id.len() > prefix.len()
        && id.len() <= MAX_KEY_LEN
        && id.starts_with(prefix)
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Stripe takes up to 255 printable characters; a longer or odder key is replaced by its
/// hash, which keeps a retry with the same key the same request.
fn idempotency_key_header(key: &str) -> String {
    if !key.is_empty() && key.len() <= MAX_KEY_LEN && key.bytes().all(|b| b.is_ascii_graphic()) {
        key.to_owned()
    } else {
        format!("slipway-{}", hex::encode(Sha256::digest(key.as_bytes())))
    }
}

async fn read_bounded(mut response: Response) -> Result<Vec<u8>, CommerceError> {
    let too_large = || CommerceError::Unavailable(format!("Stripe's answer is larger than {MAX_RESPONSE_BYTES} bytes"));
    if response.content_length().is_some_and(|n| n > MAX_RESPONSE_BYTES as u64) {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(|e| CommerceError::Unavailable(format!("reading Stripe's answer: {e}")))? {
        if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The `error` object of a failed request.
#[derive(Debug, Default, Deserialize)]
struct ApiError {
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<String>,
    decline_code: Option<String>,
    message: Option<String>,
}

fn api_error(body: &Value) -> ApiError {
    body.get("error").and_then(|e| ApiError::deserialize(e).ok()).unwrap_or_default()
}

fn describe_failure(status: StatusCode, body: &Value) -> String {
    let error = api_error(body);
    let mut text = format!("Stripe answered {status}");
    for part in [error.kind, error.code, error.message].into_iter().flatten() {
        text.push_str(": ");
        text.push_str(&part);
    }
    text
}

fn object_id(body: &Value, prefix: &str) -> Result<String, CommerceError> {
    match body.get("id").and_then(Value::as_str) {
        Some(id) if is_object_id(id, prefix) => Ok(id.to_owned()),
        _ => Err(CommerceError::Unavailable(format!("Stripe's answer has no {prefix}... id"))),
    }
}

/// A refusal that is about the payment method: a card declined on attach, a method Stripe
/// does not know.
fn method_failure(status: StatusCode, body: &Value) -> CommerceError {
    let error = api_error(body);
    let about_method = error.kind.as_deref() == Some("card_error")
        || (error.kind.as_deref() == Some("invalid_request_error")
            && matches!(status, StatusCode::BAD_REQUEST | StatusCode::NOT_FOUND)
            && error.code.as_deref() == Some("resource_missing"));
    if about_method {
        CommerceError::Invalid(error.message.unwrap_or_else(|| "the payment method was refused".to_owned()))
    } else {
        CommerceError::Unavailable(describe_failure(status, body))
    }
}

fn attach_result(status: StatusCode, body: &Value) -> Result<SavedMethod, CommerceError> {
    if !status.is_success() {
        return Err(method_failure(status, body));
    }
    let reference = object_id(body, "pm_")?;
    let card = body.get("card").filter(|c| c.is_object());
    let field = |name: &str| card.and_then(|c| c.get(name)).and_then(Value::as_str).map(str::to_owned);
    match (field("brand"), field("last4")) {
        (Some(brand), Some(last4)) => Ok(SavedMethod { reference, brand, last4 }),
        _ => Err(CommerceError::Invalid(format!("payment method {reference} is not a card"))),
    }
}

fn charge_outcome(status: StatusCode, body: &Value) -> Result<ChargeOutcome, CommerceError> {
    if status == StatusCode::PAYMENT_REQUIRED {
        let error = api_error(body);
        if error.kind.as_deref() == Some("card_error") {
            return Ok(ChargeOutcome::Declined {
                code: error.decline_code.or(error.code).unwrap_or_else(|| "card_declined".to_owned()),
                message: error.message.unwrap_or_else(|| "Your card was declined.".to_owned()),
            });
        }
    }
    if !status.is_success() {
        return Err(CommerceError::Unavailable(describe_failure(status, body)));
    }
    let id = object_id(body, "pi_")?;
    match body.get("status").and_then(Value::as_str) {
        Some("succeeded") => Ok(ChargeOutcome::Succeeded { reference: id }),
        // The bank wants the customer to authenticate: nobody here can, so it is a decline
        // under the code Stripe gives an off-session charge in that case.
        Some("requires_action") => Ok(ChargeOutcome::Declined {
            code: "authentication_required".to_owned(),
            message: "Your card requires authentication.".to_owned(),
        }),
        other => Err(CommerceError::Unavailable(format!("payment intent {id} is {}", other.unwrap_or("without a status")))),
    }
}

fn refund_result(status: StatusCode, body: &Value) -> Result<String, CommerceError> {
    if !status.is_success() {
        return Err(CommerceError::Unavailable(describe_failure(status, body)));
    }
    let id = object_id(body, "re_")?;
    match body.get("status").and_then(Value::as_str) {
        Some("failed" | "canceled") => Err(CommerceError::Unavailable(format!("refund {id} failed"))),
        _ => Ok(id),
    }
}

/// The part of a webhook event the service acts on.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StripeEvent {
    /// `evt_...`: the same event may be delivered more than once.
    pub id: String,
    /// Its `type`: `payment_intent.succeeded`, `charge.refunded`, ...
    pub kind: String,
    /// `data.object.id`, when the object has one.
    pub object_id: Option<String>,
    /// `data.object.status`, when the object has one.
    pub object_status: Option<String>,
}

#[derive(Deserialize)]
struct RawEvent {
    id: String,
    #[serde(rename = "type")]
    kind: String,
    data: RawData,
}

#[derive(Deserialize)]
struct RawData {
    object: serde_json::Map<String, Value>,
}

/// Verifies a webhook's `Stripe-Signature` header (within [`DEFAULT_TOLERANCE_SECS`] of
/// `now_secs`), then reads the event.
pub fn parse_webhook(payload: &[u8], header: &str, secret: &str, now_secs: i64) -> Result<StripeEvent, CommerceError> {
    if payload.len() > MAX_WEBHOOK_BYTES {
        return Err(CommerceError::TooLarge(format!("the webhook payload is larger than {MAX_WEBHOOK_BYTES} bytes")));
    }
    signature::verify(secret, payload, header, now_secs, DEFAULT_TOLERANCE_SECS)?;
    let malformed = |why: String| CommerceError::Malformed(format!("the webhook payload is not a Stripe event: {why}"));
    let raw: RawEvent = serde_json::from_slice(payload).map_err(|e| malformed(e.to_string()))?;
    if raw.id.is_empty() || raw.kind.is_empty() {
        return Err(malformed("the event has no id or type".to_owned()));
    }
    let text = |name: &str| raw.data.object.get(name).and_then(Value::as_str).map(str::to_owned);
    Ok(StripeEvent { object_id: text("id"), object_status: text("status"), id: raw.id, kind: raw.kind })
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use slipway_types::ErrorKind;

    use super::*;

    #[tokio::test]
    async fn configuration_is_checked() {
        // Only made, never queried: one database serves.
        let (db, _home) = slipway_db::test_databases().await.swap_remove(0);
        let provider = |base: &str, key: &str| StripeProvider::new(base.to_owned(), key.to_owned(), db.commerce());
        assert!(provider(DEFAULT_API_BASE, "sk_live_abc").unwrap().is_live());
        assert!(provider("http://127.0.0.1:12111/", "sk_test_abc").is_ok_and(|p| !p.is_live() && p.api_base == "http://127.0.0.1:12111"));
        assert!(!provider("http://localhost:1", "rk_test_abc").unwrap().is_live());
        for (base, key) in [
            ("http://stripe.example", "sk_test_abc"),
            ("ftp://127.0.0.1", "sk_test_abc"),
            ("not a url", "sk_test_abc"),
            ("https://user:pw@api.stripe.com", "sk_test_abc"),
            ("https://api.stripe.com/?x=1", "sk_test_abc"),
            (DEFAULT_API_BASE, "pk_test_abc"),
            (DEFAULT_API_BASE, "sk_test_abc\r\nX: y"),
            (DEFAULT_API_BASE, ""),
        ] {
            let err = provider(base, key).err().unwrap_or_else(|| panic!("{base} {key:?} accepted"));
            assert_eq!(err.kind(), ErrorKind::Invalid);
            assert!(!err.to_string().contains("sk_test_abc"), "{err}");
        }
    }

    #[test]
    fn method_ids_are_checked_before_they_reach_a_path() {
        assert!(check_method("pm_card_visa").is_ok());
        for bad in ["4242424242424242", "pm_", "pm_../../v1/charges", "pm_a/b", "pm_a?x=1", "card_123"] {
            assert!(matches!(check_method(bad), Err(CommerceError::Invalid(_))), "{bad}");
        }
    }

    #[test]
    fn idempotency_keys_stay_within_stripes_limits_and_stable() {
        assert_eq!(idempotency_key_header("charge-1"), "charge-1");
        let long = "k".repeat(300);
        assert_eq!(idempotency_key_header(&long), idempotency_key_header(&long));
        assert!(idempotency_key_header(&long).len() <= MAX_KEY_LEN);
        assert_ne!(idempotency_key_header("a b"), "a b");
        assert_ne!(idempotency_key_header("a b"), idempotency_key_header("a c"));
    }

    #[test]
    fn card_errors_are_declines_with_stripes_codes() {
        let body = json!({"error": {"type": "card_error", "code": "card_declined", "decline_code": "insufficient_funds",
            "message": "Your card has insufficient funds.", "payment_intent": {"id": "pi_1"}}});
        assert_eq!(
            charge_outcome(StatusCode::PAYMENT_REQUIRED, &body).unwrap(),
            ChargeOutcome::Declined { code: "insufficient_funds".into(), message: "Your card has insufficient funds.".into() }
        );
        let body = json!({"error": {"type": "card_error", "code": "expired_card", "message": "Your card has expired."}});
        assert!(
            matches!(charge_outcome(StatusCode::PAYMENT_REQUIRED, &body), Ok(ChargeOutcome::Declined { code, .. }) if code == "expired_card")
        );
        let body = json!({"id": "pi_1", "status": "requires_action"});
        assert!(
            matches!(charge_outcome(StatusCode::OK, &body), Ok(ChargeOutcome::Declined { code, .. }) if code == "authentication_required")
        );
    }

    #[test]
    fn other_failures_are_unavailable() {
        for (status, body) in [
            (StatusCode::BAD_REQUEST, json!({"error": {"type": "invalid_request_error", "message": "bad amount"}})),
            (StatusCode::PAYMENT_REQUIRED, json!({"error": {"type": "invalid_request_error"}})),
            (StatusCode::TOO_MANY_REQUESTS, json!({"error": {"type": "invalid_request_error", "code": "rate_limit"}})),
            (StatusCode::INTERNAL_SERVER_ERROR, json!({})),
            (StatusCode::OK, json!({"id": "pi_1", "status": "processing"})),
            (StatusCode::OK, json!({"id": "ch_1", "status": "succeeded"})),
        ] {
            assert!(matches!(charge_outcome(status, &body), Err(CommerceError::Unavailable(_))), "{status} {body}");
        }
        assert_eq!(
            charge_outcome(StatusCode::OK, &json!({"id": "pi_1", "status": "succeeded"})).unwrap(),
            ChargeOutcome::Succeeded { reference: "pi_1".into() }
        );
    }

    #[test]
    fn attach_reads_the_card_and_refuses_unknown_methods() {
        let body = json!({"id": "pm_1", "card": {"brand": "visa", "last4": "4242"}});
        assert_eq!(
            attach_result(StatusCode::OK, &body).unwrap(),
            SavedMethod { reference: "pm_1".into(), brand: "visa".into(), last4: "4242".into() }
        );
        assert!(matches!(attach_result(StatusCode::OK, &json!({"id": "pm_1", "card": null})), Err(CommerceError::Invalid(_))));
        let missing =
            json!({"error": {"type": "invalid_request_error", "code": "resource_missing", "message": "No such PaymentMethod: 'pm_x'"}});
        assert!(matches!(attach_result(StatusCode::NOT_FOUND, &missing), Err(CommerceError::Invalid(m)) if m.contains("pm_x")));
        let declined = json!({"error": {"type": "card_error", "code": "card_declined", "message": "Your card was declined."}});
        assert!(matches!(attach_result(StatusCode::PAYMENT_REQUIRED, &declined), Err(CommerceError::Invalid(_))));
        assert!(matches!(attach_result(StatusCode::SERVICE_UNAVAILABLE, &json!({})), Err(CommerceError::Unavailable(_))));
    }

    #[test]
    fn refunds_that_failed_are_errors() {
        assert_eq!(refund_result(StatusCode::OK, &json!({"id": "re_1", "status": "pending"})).unwrap(), "re_1");
        assert!(refund_result(StatusCode::OK, &json!({"id": "re_1", "status": "failed"})).is_err());
        assert!(refund_result(StatusCode::BAD_REQUEST, &json!({"error": {"type": "invalid_request_error"}})).is_err());
    }

    #[test]
    fn webhooks_are_verified_then_read() {
        let secret = "whsec_abc";
        let now = 1_700_000_000;
        let payload = json!({"id": "evt_1", "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_1", "object": "payment_intent", "status": "succeeded"}}})
        .to_string();
        let header = signature::sign(secret, payload.as_bytes(), now);
        assert_eq!(
            parse_webhook(payload.as_bytes(), &header, secret, now + 10).unwrap(),
            StripeEvent {
                id: "evt_1".into(),
                kind: "payment_intent.succeeded".into(),
                object_id: Some("pi_1".into()),
                object_status: Some("succeeded".into()),
            }
        );
        let err = parse_webhook(payload.as_bytes(), &header, "whsec_other", now).unwrap_err();
        assert!(matches!(&err, CommerceError::Signature(m) if m.contains("matches the payload")), "{err}");
        assert_eq!(err.kind(), ErrorKind::Malformed);
        let err = parse_webhook(payload.as_bytes(), &header, secret, now + 301).unwrap_err();
        assert!(matches!(&err, CommerceError::Signature(m) if m.contains("away from now")), "{err}");

        let not_event = br#"{"id": "evt_1"}"#;
        let header = signature::sign(secret, not_event, now);
        let err = parse_webhook(not_event, &header, secret, now).unwrap_err();
        assert!(matches!(&err, CommerceError::Malformed(m) if m.contains("not a Stripe event")), "{err}");

        let big = vec![b' '; MAX_WEBHOOK_BYTES + 1];
        let header = signature::sign(secret, &big, now);
        assert_eq!(parse_webhook(&big, &header, secret, now).unwrap_err().kind(), ErrorKind::TooLarge);
    }
}

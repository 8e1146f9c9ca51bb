//! Stripe's webhooks to the store (`POST /api/v1/webhooks/stripe`): a signed event is
//! recorded once and its redelivery is a replay that does nothing; forged, stale,
//! malformed and missing signatures are refused with a 400 and nothing recorded; a body
//! over 1 MiB is refused; a store on the sandbox, or without a webhook secret, has no such
//! endpoint. One event is signed by Stripe's own Python library (the oracle that
//! scripts/install-test-deps installs), so the endpoint takes Stripe's signatures.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slipway::config::Secret;
use slipway_commerce::signature;
use slipway_test_support::{Backend, TestApp};

const PATH: &str = "/api/v1/webhooks/stripe";
const SECRET: &str = "whsec_test";

async fn stripe_store(webhook_secret: Option<&str>) -> TestApp {
    Backend::with(|c| {
        c.commerce.provider = "stripe".into();
        c.commerce.stripe_secret_key = Some(Secret::new("sk_test_x"));
        // Never reached: receiving webhooks does not call Stripe.
        c.commerce.stripe_api_base = "http://127.0.0.1:9".into();
        c.commerce.stripe_webhook_secret = webhook_secret.map(Secret::new);
    })
    .await
    .spawn()
    .await
}

fn event(id: &str, kind: &str, object: &str) -> String {
    json!({"id": id, "object": "event", "type": kind, "api_version": "2026-08-26.dahlia",
        "data": {"object": {"id": object, "object": "payment_intent", "status": "succeeded", "amount": 4900}}})
    .to_string()
}

fn now(t: &TestApp) -> i64 {
    t.app.commerce.clock().now_ms() / 1000
}

async fn deliver(t: &TestApp, payload: &str, header: Option<&str>) -> (StatusCode, Value) {
    let mut request = t.request(Method::POST, PATH).header("content-type", "application/json; charset=utf-8").body(payload.to_owned());
    if let Some(header) = header {
        request = request.header("stripe-signature", header);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    if !status.is_success() {
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{status}");
        assert!(!response.headers().contains_key("www-authenticate"), "a webhook is not asked for credentials");
    }
    (status, response.json().await.unwrap_or_default())
}

async fn recorded(t: &TestApp, id: &str) -> Option<slipway_db::WebhookEventRecord> {
    t.app.db.commerce().webhook_event("stripe", id).await.unwrap()
}

/// The `Stripe-Signature` header Stripe's Python library makes for `payload`, through
/// slipway-commerce's oracle script.
fn python_signature(payload: &str, secret: &str, timestamp: i64) -> String {
    let hint = "run scripts/install-test-deps (as root) to install the Python stripe package";
    let python = match std::env::var_os("SLIPWAY_TEST_PYTHON") {
        Some(python) => PathBuf::from(python),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/venv/bin/python"),
    };
    assert!(python.exists(), "{} not found: {hint} (or set SLIPWAY_TEST_PYTHON)", python.display());
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../slipway-commerce/tests/oracle_signature.py");
    let mut child = Command::new(&python)
        .arg(&script)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {}: {e} ({hint})", python.display()));
    let input = json!({"cases": [{"op": "sign", "payload": payload, "secret": secret, "timestamp": timestamp}]});
    child.stdin.take().unwrap().write_all(input.to_string().as_bytes()).unwrap();
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the stripe oracle failed ({hint}):\n{}", String::from_utf8_lossy(&output.stderr));
    let answers: Vec<Value> = serde_json::from_slice(&output.stdout).unwrap();
    answers[0]["header"].as_str().expect("a header").to_owned()
}

#[tokio::test]
async fn signed_events_are_recorded_once_and_bad_signatures_are_refused() {
    let t = stripe_store(Some(SECRET)).await;

    let paid = event("evt_paid", "payment_intent.succeeded", "pi_1");
    let header = signature::sign(SECRET, paid.as_bytes(), now(&t));
    let (status, body) = deliver(&t, &paid, Some(&header)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, json!({"event": "evt_paid", "outcome": "recorded"}));
    let first = recorded(&t, "evt_paid").await.expect("recorded");
    assert_eq!((first.kind.as_str(), first.object_id.as_str()), ("payment_intent.succeeded", "pi_1"));

    // Stripe delivers at least once: the same event again does nothing, even re-signed.
    let (status, body) = deliver(&t, &paid, Some(&header)).await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("replayed")), "{body}");
    let resigned = signature::sign(SECRET, paid.as_bytes(), now(&t) - 1);
    let (status, body) = deliver(&t, &paid, Some(&resigned)).await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("replayed")), "{body}");
    assert_eq!(recorded(&t, "evt_paid").await, Some(first), "recorded once");

    // Signed by Stripe's own library.
    let refunded = event("evt_refunded", "charge.refunded", "ch_1");
    let header = python_signature(&refunded, SECRET, now(&t));
    let (status, body) = deliver(&t, &refunded, Some(&header)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["outcome"], "recorded");
    assert_eq!(recorded(&t, "evt_refunded").await.expect("recorded").kind, "charge.refunded");

    let failed = event("evt_failed", "payment_intent.payment_failed", "pi_2");
    let (status, body) = deliver(&t, &failed, Some(&signature::sign(SECRET, failed.as_bytes(), now(&t)))).await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("recorded")), "{body}");

    // A type the store does not record is answered, and not kept.
    let other = event("evt_other", "customer.created", "cus_1");
    let (status, body) = deliver(&t, &other, Some(&signature::sign(SECRET, other.as_bytes(), now(&t)))).await;
    assert_eq!((status, body["outcome"].as_str()), (StatusCode::OK, Some("ignored")), "{body}");
    assert_eq!(recorded(&t, "evt_other").await, None);

    // Refused, each with its reason, and nothing recorded.
    let fresh = event("evt_bad", "payment_intent.succeeded", "pi_3");
    let forged = signature::sign("whsec_forged", fresh.as_bytes(), now(&t));
    let stale = signature::sign(SECRET, fresh.as_bytes(), now(&t) - 600);
    let tampered_header = signature::sign(SECRET, fresh.as_bytes(), now(&t));
    let tampered = fresh.replace("4900", "1");
    let refusals: [(&str, Option<&str>, &str); 6] = [
        (&fresh, Some(&forged), "no signature in the Stripe-Signature header matches the payload"),
        (&tampered, Some(&tampered_header), "no signature in the Stripe-Signature header matches the payload"),
        (&fresh, Some(&stale), "s away from now"),
        (&fresh, None, "no Stripe-Signature header"),
        (&fresh, Some("garbage"), "malformed Stripe-Signature header"),
        (&fresh, Some(&format!("t={}", now(&t))), "has no v1 signature"),
    ];
    for (payload, header, reason) in refusals {
        let (status, body) = deliver(&t, payload, header).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{header:?}: {body}");
        let detail = body["detail"].as_str().unwrap_or_default();
        assert!(detail.contains(reason), "{header:?}: {detail}");
    }
    assert_eq!(recorded(&t, "evt_bad").await, None);

    // A body over 1 MiB is not read, however it is signed.
    let big = format!("{{\"id\":\"evt_big\",\"pad\":\"{}\"}}", "x".repeat(1 << 20));
    let (status, body) = deliver(&t, &big, Some(&signature::sign(SECRET, big.as_bytes(), now(&t)))).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert_eq!(recorded(&t, "evt_big").await, None);
}

#[tokio::test]
async fn a_store_without_stripe_webhooks_has_no_such_endpoint() {
    let payload = event("evt_1", "payment_intent.succeeded", "pi_1");
    // The sandbox, even signed with what would be the secret.
    let sandbox = Backend::with(|c| c.commerce.stripe_webhook_secret = Some(Secret::new(SECRET))).await.spawn().await;
    let header = signature::sign(SECRET, payload.as_bytes(), now(&sandbox));
    let (status, body) = deliver(&sandbox, &payload, Some(&header)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(sandbox.app.db.commerce().webhook_event("sandbox", "evt_1").await.unwrap(), None);
    assert_eq!(sandbox.app.db.commerce().webhook_event("stripe", "evt_1").await.unwrap(), None);

    // Stripe without a webhook secret.
    let unsigned = stripe_store(None).await;
    let (status, body) = deliver(&unsigned, &payload, Some(&header)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(recorded(&unsigned, "evt_1").await, None);
}

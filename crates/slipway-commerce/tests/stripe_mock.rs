//! `StripeProvider` against stripe-mock (Stripe's own mock of its API, which validates
//! every request against Stripe's OpenAPI spec and answers fixtures), through a relay on
//! loopback that records the requests, so their headers and bodies can be checked.
//! scripts/install-test-deps installs stripe-mock in target/tools/bin; a missing one fails
//! the test.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use slipway_commerce::stripe::{API_VERSION, StripeProvider};
use slipway_commerce::{ChargeOutcome, ChargeRequest, CommerceError, PaymentProvider, RefundRequest};
use slipway_db::{Db, TestHome};
use slipway_types::{Currency, Money};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const KEY: &str = "sk_test_slipway";

fn stripe_mock_binary() -> PathBuf {
    let binary = match std::env::var_os("SLIPWAY_TEST_STRIPE_MOCK") {
        Some(binary) => PathBuf::from(binary),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/bin/stripe-mock"),
    };
    assert!(
        binary.exists(),
        "{} not found: run scripts/install-test-deps (as root) to install stripe-mock (or set SLIPWAY_TEST_STRIPE_MOCK)",
        binary.display()
    );
    binary
}

/// A running stripe-mock on a loopback port it picked itself; killed when dropped.
struct StripeMock {
    child: Child,
    addr: SocketAddr,
}

impl StripeMock {
    /// With the bundled fixtures, or with `fixtures` (a JSON file) instead.
    fn start(fixtures: Option<&Path>) -> StripeMock {
        let mut command = Command::new(stripe_mock_binary());
        // Both listeners on loopback: stripe-mock opens HTTPS on every interface unless told.
        command.args(["-http-addr", "127.0.0.1:0", "-https-addr", "127.0.0.1:0"]);
        if let Some(fixtures) = fixtures {
            command.arg("-fixtures").arg(fixtures);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().expect("start stripe-mock");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        // Keeps reading after the address is found: stripe-mock logs every request, and a
        // full pipe would stall it.
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if let Some(addr) = line.strip_prefix("Listening for HTTP at address: ") {
                    let _ = tx.send(addr.parse::<SocketAddr>().expect("stripe-mock's address"));
                }
            }
        });
        let mut mock = StripeMock { child, addr: "127.0.0.1:0".parse().unwrap() };
        mock.addr = rx.recv_timeout(Duration::from_secs(20)).expect("stripe-mock did not start listening within 20 s");
        mock
    }
}

impl Drop for StripeMock {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TCP relay in front of `upstream` that keeps every byte the client sent.
struct Relay {
    addr: SocketAddr,
    sent: Arc<Mutex<Vec<u8>>>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let sent = Arc::new(Mutex::new(Vec::new()));
        let log = sent.clone();
        // Ends with the test's runtime.
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let log = log.clone();
                tokio::spawn(async move {
                    let Ok(server) = TcpStream::connect(upstream).await else { return };
                    let (mut client_read, mut client_write) = client.into_split();
                    let (mut server_read, mut server_write) = server.into_split();
                    let up = async {
                        let mut buf = vec![0; 16 * 1024];
                        while let Ok(n @ 1..) = client_read.read(&mut buf).await {
                            log.lock().unwrap().extend_from_slice(&buf[..n]);
                            if server_write.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                        let _ = server_write.shutdown().await;
                    };
                    let down = tokio::io::copy(&mut server_read, &mut client_write);
                    let _ = tokio::join!(up, down);
                });
            }
        });
        Relay { addr, sent }
    }

    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// What the client sent since the last call, lower-cased (header names are
    /// case-insensitive), and forgotten.
    fn take(&self) -> String {
        String::from_utf8_lossy(&std::mem::take(&mut *self.sent.lock().unwrap())).to_lowercase()
    }
}

/// A database for the customers the provider records (SQLite: the queries are tested on
/// both backends in slipway-db).
async fn database() -> (Db, TestHome) {
    slipway_db::test_databases().await.swap_remove(0)
}

fn eur(minor: i64) -> Money {
    Money::new(minor, Currency::parse("EUR").unwrap())
}

fn charge<'a>(customer: &'a str, method: &'a str, key: &'a str, off_session: bool) -> ChargeRequest<'a> {
    ChargeRequest { customer, method, amount: eur(1234), idempotency_key: key, description: "Pro tier, monthly", off_session }
}

#[tokio::test]
async fn attach_charge_and_refund_speak_stripes_api() {
    let mock = StripeMock::start(None);
    let relay = Relay::start(mock.addr).await;
    let (db, _home) = database().await;
    let stripe = StripeProvider::new(relay.base(), KEY.to_owned(), db.commerce()).unwrap();
    assert_eq!(stripe.name(), "stripe");
    assert!(!stripe.is_live());

    // Attach makes the account's customer, then attaches the method and reads its card
    // (the bundled fixture is a visa ending in 4242).
    let saved = stripe.attach("acct-1", "pm_card_visa").await.unwrap();
    assert_eq!((saved.reference.as_str(), saved.brand.as_str(), saved.last4.as_str()), ("pm_card_visa", "visa", "4242"));
    let sent = relay.take();
    assert!(sent.contains("post /v1/customers http/1.1"), "{sent}");
    assert!(sent.contains("metadata%5baccount%5d=acct-1"), "{sent}");
    assert!(sent.contains("post /v1/payment_methods/pm_card_visa/attach http/1.1"), "{sent}");
    assert!(sent.contains("customer=cus_"), "{sent}");
    assert_eq!(sent.matches(&format!("authorization: bearer {KEY}\r\n")).count(), 2, "{sent}");
    assert_eq!(sent.matches(&format!("stripe-version: {API_VERSION}\r\n")).count(), 2, "{sent}");
    assert_eq!(sent.matches("idempotency-key: slipway-").count(), 2, "{sent}");
    assert!(sent.contains("content-type: application/x-www-form-urlencoded"), "{sent}");

    // The customer is made once per account, and recorded.
    let customer = db.commerce().payment_customer("acct-1", "stripe").await.unwrap().expect("recorded");
    assert!(customer.starts_with("cus_"), "{customer}");
    stripe.attach("acct-1", "pm_card_mastercard").await.unwrap();
    assert!(!relay.take().contains("/v1/customers"));

    // The bundled payment intent has not succeeded (requires_payment_method): that is not a
    // payment, and not a decline either.
    let err = stripe.charge(&charge("acct-1", "pm_card_visa", "order-7-attempt-1", true)).await.unwrap_err();
    assert!(matches!(&err, CommerceError::Unavailable(m) if m.contains("requires_payment_method")), "{err}");
    let sent = relay.take();
    assert!(sent.contains("post /v1/payment_intents http/1.1"), "{sent}");
    assert!(sent.contains("idempotency-key: order-7-attempt-1\r\n"), "{sent}");
    for field in ["amount=1234", "currency=eur", "customer=cus_", "payment_method=pm_card_visa", "confirm=true", "off_session=true"] {
        assert!(sent.contains(field), "{field} not in {sent}");
    }

    let refund = stripe.refund(&RefundRequest { payment: "pi_123", amount: eur(500), idempotency_key: "refund-9" }).await.unwrap();
    assert!(refund.starts_with("re_"), "{refund}");
    let sent = relay.take();
    assert!(sent.contains("post /v1/refunds http/1.1"), "{sent}");
    assert!(sent.contains("idempotency-key: refund-9\r\n"), "{sent}");
    assert!(sent.contains("payment_intent=pi_123") && sent.contains("amount=500"), "{sent}");

    // A method id that is not one never reaches Stripe.
    let err = stripe.attach("acct-1", "4242424242424242").await.unwrap_err();
    assert!(matches!(err, CommerceError::Invalid(_)), "{err}");
    assert_eq!(relay.take(), "");
}

#[tokio::test]
async fn a_succeeded_payment_intent_is_a_payment_even_after_a_restart() {
    // stripe-mock answers its fixtures' status: these say the payment went through, and
    // the payment method is saved with a customer.
    let fixtures = tempfile::Builder::new().suffix(".json").tempfile().unwrap();
    std::fs::write(
        fixtures.path(),
        serde_json::json!({"resources": {
            "customer": {"id": "cus_fixture", "object": "customer", "metadata": {}},
            "payment_method": {"id": "pm_fixture", "object": "payment_method", "type": "card", "customer": "cus_fixture",
                "card": {"brand": "mastercard", "last4": "4444"}, "metadata": {}},
            "payment_intent": {"id": "pi_fixture", "object": "payment_intent", "status": "succeeded", "amount": 1,
                "currency": "usd", "customer": null, "payment_method": null, "metadata": {}},
            "refund": {"id": "re_fixture", "object": "refund", "status": "pending", "amount": 1, "currency": "usd",
                "payment_intent": null, "metadata": {}},
        }})
        .to_string(),
    )
    .unwrap();
    let mock = StripeMock::start(Some(fixtures.path()));
    let relay = Relay::start(mock.addr).await;
    let (db, _home) = database().await;

    let stripe = StripeProvider::new(relay.base(), KEY.to_owned(), db.commerce()).unwrap();
    let saved = stripe.attach("acct-2", "pm_card_mastercard").await.unwrap();
    assert_eq!((saved.brand.as_str(), saved.last4.as_str()), ("mastercard", "4444"));
    let outcome = stripe.charge(&charge("acct-2", &saved.reference, "order-8", false)).await.unwrap();
    let ChargeOutcome::Succeeded { reference } = outcome else { panic!("{outcome:?}") };
    assert!(reference.starts_with("pi_"), "{reference}");
    let sent = relay.take();
    assert!(!sent.contains("off_session"), "an on-session charge says nothing of it: {sent}");

    // A new provider on the same database (a restart, another replica) charges the
    // account's recorded customer: it neither makes another nor asks Stripe for it.
    let restarted = StripeProvider::new(relay.base(), KEY.to_owned(), db.commerce()).unwrap();
    let outcome = restarted.charge(&charge("acct-2", "pm_card_mastercard", "order-9", true)).await.unwrap();
    assert!(matches!(outcome, ChargeOutcome::Succeeded { .. }), "{outcome:?}");
    let sent = relay.take();
    let customer = db.commerce().payment_customer("acct-2", "stripe").await.unwrap().expect("recorded");
    assert!(sent.contains(&format!("customer={}", customer.to_lowercase())), "{customer} not in {sent}");
    assert!(!sent.contains("/v1/customers") && !sent.contains("/v1/payment_methods"), "{sent}");

    // Two attaches for a new account at once (stripe-mock makes a new customer for each
    // request) end with one customer for it, the one both methods were attached to.
    let (a, b) = tokio::join!(stripe.attach("acct-4", "pm_card_visa"), restarted.attach("acct-4", "pm_card_mastercard"));
    a.unwrap();
    b.unwrap();
    let customer = db.commerce().payment_customer("acct-4", "stripe").await.unwrap().expect("recorded").to_lowercase();
    let sent = relay.take();
    let attaches: Vec<&str> = sent.split("post /v1/payment_methods/").skip(1).collect();
    assert_eq!(attaches.len(), 2, "{sent}");
    for attach in attaches {
        let body = attach.split("\r\n\r\n").nth(1).unwrap_or_default();
        assert!(body.starts_with(&format!("customer={customer}")), "{customer}: {attach}");
    }
    stripe.attach("acct-4", "pm_card_amex").await.unwrap();
    assert!(!relay.take().contains("/v1/customers"), "the recorded customer is used");
}

#[tokio::test]
async fn refusals_from_the_api_are_errors() {
    let mock = StripeMock::start(None);
    let relay = Relay::start(mock.addr).await;
    let base = relay.base();
    let mock_base = format!("http://{}", mock.addr);
    let (db, _home) = database().await;

    // An account that never attached a method has no customer to charge: refused before
    // anything reaches Stripe.
    let stripe = StripeProvider::new(base.clone(), KEY.to_owned(), db.commerce()).unwrap();
    let err = stripe.charge(&charge("acct-3", "pm_card_visa", "order-10", true)).await.unwrap_err();
    assert!(matches!(&err, CommerceError::Invalid(m) if m.contains("attach it first")), "{err}");
    assert_eq!(relay.take(), "");

    // stripe-mock takes test keys only: a live one is refused (401) as Stripe refuses a
    // revoked key.
    let live = StripeProvider::new(base.clone(), "sk_live_slipway".to_owned(), db.commerce()).unwrap();
    assert!(live.is_live());
    let err = live.attach("acct-3", "pm_card_visa").await.unwrap_err();
    assert!(matches!(&err, CommerceError::Unavailable(m) if m.contains("401")), "{err}");

    // A path Stripe does not have (a wrong api base) answers 404: not the method's fault.
    let wrong = StripeProvider::new(format!("{base}/nope"), KEY.to_owned(), db.commerce()).unwrap();
    let err = wrong.refund(&RefundRequest { payment: "pi_1", amount: eur(1), idempotency_key: "r" }).await.unwrap_err();
    assert!(matches!(&err, CommerceError::Unavailable(m) if m.contains("404")), "{err}");

    // Nothing listening: unavailable, and quickly.
    drop(mock);
    let gone = StripeProvider::new(mock_base, KEY.to_owned(), db.commerce()).unwrap();
    let err = gone.refund(&RefundRequest { payment: "pi_1", amount: eur(1), idempotency_key: "r" }).await.unwrap_err();
    assert!(matches!(&err, CommerceError::Unavailable(m) if m.contains("cannot reach Stripe")), "{err}");
}

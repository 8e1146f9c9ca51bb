//! The fulfillment API (bring your own license) on the demo store: an ISV's robot (nimbus,
//! with an `api:fulfillment` token) orders a tier for a customer by account name (who
//! can then pull) and by email (invited by mail; entitled once they sign up and verify),
//! cancels (denied again); orders are idempotent by Idempotency-Key and by external id;
//! order changes reach the ISV's endpoint as signed webhooks, retried after a failure;
//! other publishers' products, other credentials and bad input are refused with nothing
//! written.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode as AxumStatus};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slipway_auth::access::{OrgRole, SiteRole};
use slipway_auth::scope::TokenRule;
use slipway_commerce::signature;
use slipway_test_support::{Backend, TestApp, Via};

const PASSWORD: &str = "fulfillment test password";
/// The demo's Nimbus Cache Enterprise: licensed; its repository opens to entitled accounts.
const CACHE: &str = "nimbus/nimbus-cache";
const CACHE_REPO: &str = "nimbus/nimbus-cache-enterprise";
const DAY: Duration = Duration::from_secs(86_400);

async fn store() -> (TestApp, String) {
    store_with(true).await
}

/// The demo store; `private_webhooks`: whether webhooks may go to loopback, where the
/// tests' ISV endpoint listens.
async fn store_with(private_webhooks: bool) -> (TestApp, String) {
    let backend = Backend::with(|c| {
        c.commerce.webhooks_to_private_addresses = private_webhooks;
        c.testing.clock = true;
        c.commerce.renewal_interval_secs = 0;
        c.auth.mode = slipway::config::AuthMode::Enforced;
    })
    .await;
    let t = backend.spawn().await;
    let (_, admin_password) = slipway::demo::load(&t.app).await.expect("demo loads");
    (t, admin_password)
}

/// An access token of nimbus's owner robot with `scopes`.
async fn robot_token(t: &TestApp, name: &str, scopes: &[&str], days: Option<u32>) -> String {
    let robot = match t.app.auth.create_robot("nimbus", name, OrgRole::Owner).await {
        Ok(robot) => robot.name,
        Err(_) => format!("nimbus+{name}"),
    };
    let rules: Vec<TokenRule> = scopes.iter().map(|s| TokenRule::parse(s).unwrap()).collect();
    t.app.auth.create_token(&robot, "isv", &rules, days).await.unwrap().0
}

async fn send(t: &TestApp, token: &str, method: Method, path: &str, key: Option<&str>, body: Option<&Value>) -> (StatusCode, Value) {
    let mut request = t.request(method, path).bearer_auth(token);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    if !status.is_success() {
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{status}");
    }
    (status, response.json().await.unwrap_or_default())
}

async fn order(t: &TestApp, token: &str, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
    send(t, token, Method::POST, "/api/fulfillment/v1/orders", key, Some(body)).await
}

async fn orders(t: &TestApp, token: &str, query: &str) -> Vec<Value> {
    let (status, page) = send(t, token, Method::GET, &format!("/api/fulfillment/v1/orders{query}"), None, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["orders"].as_array().unwrap().clone()
}

async fn customer(t: &TestApp, name: &str) {
    t.app.auth.create_user(name, &format!("{name}@example.com"), PASSWORD, SiteRole::User).await.unwrap();
}

/// Whether `name` (with the tests' password) may pull `repository:tag`.
async fn can_pull(t: &TestApp, name: &str, repository: &str, tag: &str) -> bool {
    t.can_pull(name, PASSWORD, repository, tag).await
}

/// Mail taken from the outbox, as (recipient, subject, body).
#[derive(Default)]
struct Inbox(Mutex<Vec<(String, String, String)>>);

impl slipway_auth::MailTransport for Inbox {
    fn send<'a>(
        &'a self,
        recipient: &'a str,
        subject: &'a str,
        body: &'a str,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + 'a>> {
        self.0.lock().unwrap().push((recipient.to_owned(), subject.to_owned(), body.to_owned()));
        Box::pin(async { Ok(()) })
    }
}

impl Inbox {
    async fn collect(&self, t: &TestApp) -> Vec<(String, String, String)> {
        t.app.auth.deliver_mail(self).await.unwrap();
        std::mem::take(&mut *self.0.lock().unwrap())
    }
}

/// An ISV's webhook endpoint on loopback: it records each request and answers `status`.
struct Endpoint {
    url: String,
    received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
    status: Arc<Mutex<AxumStatus>>,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.server.abort();
    }
}

async fn endpoint() -> Endpoint {
    let received: Arc<Mutex<Vec<(HeaderMap, Bytes)>>> = Arc::default();
    let status = Arc::new(Mutex::new(AxumStatus::OK));
    let (r, s) = (received.clone(), status.clone());
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (r, s) = (r.clone(), s.clone());
            async move {
                r.lock().unwrap().push((headers, body));
                *s.lock().unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let server = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Endpoint { url, received, status, server }
}

/// The events the endpoint received, each checked against its signature.
fn verified_events(t: &TestApp, endpoint: &Endpoint, secret: &str) -> Vec<Value> {
    let now = i64::try_from(t.app.db.clock().now_secs()).unwrap();
    endpoint
        .received
        .lock()
        .unwrap()
        .iter()
        .map(|(headers, body)| {
            let header = headers["slipway-signature"].to_str().unwrap();
            signature::verify(secret, body, header, now, signature::DEFAULT_TOLERANCE_SECS).expect("signed with the endpoint's secret");
            assert!(signature::verify("whsec_other", body, header, now, signature::DEFAULT_TOLERANCE_SECS).is_err());
            serde_json::from_slice(body).unwrap()
        })
        .collect()
}

fn by_account(external_id: &str, account: &str) -> Value {
    json!({"product": CACHE, "tier": "enterprise", "account": account, "external_id": external_id, "product_key": "NIM-1234"})
}

/// By account: the customer pulls; the same order again (by key or by external id) is the
/// same order; cancelled, the customer is denied. By email: a mail invites the address;
/// signing up and verifying it entitles the new account. Every change is delivered to the
/// endpoint, signed, and a failed delivery is retried after the clock moves.
#[tokio::test]
async fn orders_grant_and_cancel_access_and_are_announced_by_signed_webhooks() {
    let (t, _) = store().await;
    let token = robot_token(&t, "fulfill", &["api:fulfillment"], None).await;
    let hook = endpoint().await;
    let (status, set) = send(&t, &token, Method::PUT, "/api/fulfillment/v1/webhook", None, Some(&json!({"url": hook.url}))).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    let secret = set["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert_eq!(set["publisher"], "nimbus");

    customer(&t, "carol").await;
    assert!(!can_pull(&t, "carol", CACHE_REPO, "3.4").await);
    let (status, created) = order(&t, &token, Some("order-1"), &by_account("crm-1", "carol")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!((created["state"].as_str(), created["account"].as_str()), (Some("active"), Some("carol")));
    assert_eq!((created["product"].as_str(), created["tier"].as_str()), (Some(CACHE), Some("enterprise")));
    assert_eq!(created["product_key"], "NIM-1234");
    assert!(can_pull(&t, "carol", CACHE_REPO, "3.4").await, "the order's entitlement opens the repository");

    // A retry with the key replays the answer; the same external id without a key finds
    // the order (200); another customer under that external id is a conflict.
    let replay = t
        .request(Method::POST, "/api/fulfillment/v1/orders")
        .bearer_auth(&token)
        .header("idempotency-key", "order-1")
        .json(&by_account("crm-1", "carol"))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), StatusCode::CREATED);
    assert_eq!(replay.headers()["idempotent-replayed"], "true");
    assert_eq!(replay.json::<Value>().await.unwrap()["id"], id.as_str());
    let (status, again) = order(&t, &token, None, &by_account("crm-1", "carol")).await;
    assert_eq!((status, again["id"].as_str()), (StatusCode::OK, Some(id.as_str())));
    customer(&t, "dave").await;
    let (status, conflict) = order(&t, &token, None, &by_account("crm-1", "dave")).await;
    assert_eq!(status, StatusCode::CONFLICT, "{conflict}");
    assert!(conflict["detail"].as_str().unwrap().contains("customer"), "{conflict}");
    assert_eq!(orders(&t, &token, "").await.len(), 1, "one order");
    assert!(!can_pull(&t, "dave", CACHE_REPO, "3.4").await);

    let (status, got) = send(&t, &token, Method::GET, &format!("/api/fulfillment/v1/orders/{id}"), None, None).await;
    assert_eq!((status, got["external_id"].as_str()), (StatusCode::OK, Some("crm-1")));

    // By email: no account has the address yet, so the order waits and a mail invites it.
    let inbox = Inbox::default();
    inbox.collect(&t).await;
    let body = json!({"product": CACHE, "tier": "enterprise", "email": "Erin@Example.com", "external_id": "crm-2", "kind": "trial"});
    let (status, pending) = order(&t, &token, None, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{pending}");
    assert_eq!((pending["state"].as_str(), pending["email"].as_str()), (Some("pending"), Some("erin@example.com")));
    assert_eq!(pending["kind"], "trial");
    let mail = inbox.collect(&t).await;
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert_eq!(mail[0].0, "erin@example.com");
    assert!(mail[0].2.contains("/signup") && mail[0].2.contains(CACHE), "{}", mail[0].2);
    let waiting = orders(&t, &token, "?state=pending").await;
    assert_eq!(waiting.len(), 1);
    assert_eq!(orders(&t, &token, "?customer=erin@example.com").await.len(), 1);
    assert_eq!(orders(&t, &token, "?customer=carol").await.len(), 1);

    let signed_up = t
        .request(Method::POST, "/api/v1/accounts")
        .json(&json!({"name": "erin", "email": "erin@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(signed_up.status(), StatusCode::CREATED);
    let mail = inbox.collect(&t).await;
    let link = mail.iter().find(|(to, _, _)| to == "erin@example.com").map(|(_, _, body)| body.clone()).expect("verification mail");
    let start = link.find("/verify-email?token=").unwrap() + "/verify-email?token=".len();
    let code: String = link[start..].chars().take_while(char::is_ascii_hexdigit).collect();
    assert_eq!(t.get(&format!("/verify-email?token={code}")).await.status(), StatusCode::OK);
    let (_, attached) =
        send(&t, &token, Method::GET, &format!("/api/fulfillment/v1/orders/{}", pending["id"].as_str().unwrap()), None, None).await;
    assert_eq!(attached["state"], "active", "attached at verification: {attached}");
    assert!(can_pull(&t, "erin", CACHE_REPO, "3.4").await);

    // Cancelled: the customer is denied; cancelling again is a conflict.
    let cancel = format!("/api/fulfillment/v1/orders/{id}/cancel");
    let (status, canceled) = send(&t, &token, Method::POST, &cancel, Some("cancel-1"), None).await;
    assert_eq!((status, canceled["state"].as_str()), (StatusCode::OK, Some("canceled")), "{canceled}");
    assert!(!can_pull(&t, "carol", CACHE_REPO, "3.4").await, "cancelled: denied");
    let (status, _) = send(&t, &token, Method::POST, &cancel, Some("cancel-1"), None).await;
    assert_eq!(status, StatusCode::OK, "the key replays the first answer");
    let (status, _) = send(&t, &token, Method::POST, &cancel, None, None).await;
    assert_eq!(status, StatusCode::CONFLICT);

    // The events go out signed: created, created (pending), activated, canceled.
    let report = t.app.fulfillment.run().await.unwrap();
    assert_eq!((report.delivered, report.retrying), (4, 0), "{report:?}");
    let events = verified_events(&t, &hook, &secret);
    let kinds: Vec<(&str, &str)> =
        events.iter().map(|e| (e["type"].as_str().unwrap(), e["order"]["external_id"].as_str().unwrap())).collect();
    for expected in [("order.created", "crm-1"), ("order.created", "crm-2"), ("order.activated", "crm-2"), ("order.canceled", "crm-1")] {
        assert!(kinds.contains(&expected), "{expected:?} in {kinds:?}");
    }
    assert_eq!(kinds.len(), 4, "each event once: {kinds:?}");
    assert!(t.app.fulfillment.run().await.unwrap().delivered == 0, "delivered ones are not sent again");

    // A failing endpoint: logged and retried after a minute, then delivered.
    *hook.status.lock().unwrap() = AxumStatus::INTERNAL_SERVER_ERROR;
    let second = by_account("crm-3", "dave");
    assert_eq!(order(&t, &token, None, &second).await.0, StatusCode::CREATED);
    let report = t.app.fulfillment.run().await.unwrap();
    assert_eq!((report.delivered, report.retrying), (0, 1), "{report:?}");
    let (_, log) = send(&t, &token, Method::GET, "/api/fulfillment/v1/webhook/deliveries", None, None).await;
    let failing = log["deliveries"].as_array().unwrap().iter().find(|d| d["state"] == "pending").cloned().expect("logged");
    assert_eq!((failing["attempts"].as_i64(), failing["last_status"].as_i64()), (Some(1), Some(500)), "{failing}");
    assert_eq!(t.app.fulfillment.run().await.unwrap().delivered, 0, "not retried before its time");
    *hook.status.lock().unwrap() = AxumStatus::OK;
    t.app.jobs.advance_test_clock(Duration::from_secs(61)).await.unwrap();
    let report = t.app.fulfillment.run().await.unwrap();
    assert_eq!(report.delivered, 1, "{report:?}");
    let (_, log) = send(&t, &token, Method::GET, "/api/fulfillment/v1/webhook/deliveries", None, None).await;
    assert!(log["deliveries"].as_array().unwrap().iter().all(|d| d["state"] == "delivered"), "{log}");
    assert_eq!(verified_events(&t, &hook, &secret).len(), 6, "the failed attempt and its retry reached the endpoint");
}

/// Orders with an expiry end by themselves: the entitlement stops at once, the order is
/// marked expired by the next run and announced.
#[tokio::test]
async fn an_order_expires_at_its_time() {
    let (t, _) = store().await;
    let token = robot_token(&t, "fulfill", &["api:fulfillment"], None).await;
    customer(&t, "fay").await;
    let now = t.app.db.clock().now_ms();
    let body = json!({"product": CACHE, "tier": "enterprise", "account": "fay", "external_id": "beta-1", "kind": "beta",
        "expires_at": now + 2 * 86_400_000_i64});
    let (status, created) = order(&t, &token, None, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(can_pull(&t, "fay", CACHE_REPO, "3.4").await);
    t.app.jobs.advance_test_clock(3 * DAY).await.unwrap();
    assert!(!can_pull(&t, "fay", CACHE_REPO, "3.4").await, "expired");
    assert_eq!(t.app.fulfillment.run().await.unwrap().expired, 1);
    let (_, got) =
        send(&t, &token, Method::GET, &format!("/api/fulfillment/v1/orders/{}", created["id"].as_str().unwrap()), None, None).await;
    assert_eq!(got["state"], "expired");
}

/// Only an unexpired token with api:fulfillment of the product's publisher is taken; another
/// publisher's product or order is not found; bad input is refused with nothing written.
#[tokio::test]
async fn other_credentials_publishers_and_bad_input_are_refused_with_nothing_written() {
    let (t, admin_password) = store().await;
    let token = robot_token(&t, "fulfill", &["api:fulfillment"], None).await;
    customer(&t, "gus").await;
    let body = by_account("crm-9", "gus");

    // No token, a session, a token without the scope, an expired token.
    let anonymous = t.request(Method::POST, "/api/fulfillment/v1/orders").json(&body).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(anonymous.headers()["content-type"], "application/problem+json");
    let admin = t.caller("admin", &admin_password, Via::Session).await;
    let by_session = t.call(&admin, Method::POST, "/api/fulfillment/v1/orders").json(&body).send().await.unwrap();
    assert_eq!(by_session.status(), StatusCode::UNAUTHORIZED, "a session cookie is not read here");
    let writer = robot_token(&t, "writer", &["api:write"], None).await;
    assert_eq!(order(&t, &writer, None, &body).await.0, StatusCode::FORBIDDEN);
    let short = robot_token(&t, "short", &["api:fulfillment"], Some(1)).await;
    let viewer = t.app.auth.create_robot("nimbus", "viewer", OrgRole::Viewer).await.unwrap();
    let rules = [TokenRule::parse("api:fulfillment").unwrap()];
    let viewer_token = t.app.auth.create_token(&viewer.name, "isv", &rules, None).await.unwrap().0;
    assert_eq!(order(&t, &viewer_token, None, &body).await.0, StatusCode::FORBIDDEN, "owners only");

    // Another organization's product and orders do not exist for this token.
    let other = json!({"product": "northwind/anything", "tier": "enterprise", "account": "gus", "external_id": "x-1"});
    assert_eq!(order(&t, &token, None, &other).await.0, StatusCode::NOT_FOUND);
    let (status, _) = send(&t, &token, Method::GET, "/api/fulfillment/v1/orders?publisher=northwind", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let now = t.app.db.clock().now_ms();
    let bad = [
        json!({"product": CACHE, "tier": "enterprise", "account": "gus", "external_id": "b1", "expires_at": now + 100 * 366 * 86_400_000_i64}),
        json!({"product": CACHE, "tier": "enterprise", "account": "gus", "external_id": "b2", "expires_at": now - 1000}),
        json!({"product": CACHE, "tier": "no-such-tier", "account": "gus", "external_id": "b3"}),
        json!({"product": CACHE, "tier": "enterprise", "email": "not an address", "external_id": "b4"}),
        json!({"product": CACHE, "tier": "enterprise", "account": "gus", "external_id": "b5", "product_key": "K".repeat(5000)}),
        json!({"product": CACHE, "tier": "enterprise", "account": "gus", "email": "gus@example.com", "external_id": "b6"}),
        json!({"product": CACHE, "tier": "enterprise", "account": "nobody-here", "external_id": "b7"}),
        json!({"product": CACHE, "tier": "enterprise", "account": "gus", "external_id": "x".repeat(300)}),
        json!({"product": CACHE, "tier": "enterprise", "account": "gus", "external_id": "b9", "kind": "gift"}),
    ];
    for body in &bad {
        let (status, problem) = order(&t, &token, None, body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body} -> {problem}");
        assert!(!problem["detail"].as_str().unwrap_or_default().is_empty());
    }
    let (status, _) = send(&t, &token, Method::GET, "/api/fulfillment/v1/orders?limit=500", None, None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let (status, _) =
        send(&t, &token, Method::PUT, "/api/fulfillment/v1/webhook", None, Some(&json!({"url": "ftp://127.0.0.1/hooks"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(orders(&t, &token, "").await.is_empty(), "nothing was written");
    assert!(!can_pull(&t, "gus", CACHE_REPO, "3.4").await);

    // The good order goes through; the expired token is refused once its day is over.
    assert_eq!(order(&t, &short, None, &body).await.0, StatusCode::CREATED);
    let (status, _) = send(&t, &token, Method::GET, "/api/fulfillment/v1/orders/nonexistent", None, None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    t.app.jobs.advance_test_clock(2 * DAY).await.unwrap();
    let (status, _) = send(&t, &short, Method::GET, "/api/fulfillment/v1/orders", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "expired token");
    assert_eq!(orders(&t, &token, "").await.len(), 1);

    // The OpenAPI document describes the API, taking bearer tokens alone.
    let doc: Value = t.get("/api/openapi.json").await.json().await.unwrap();
    let bearer_only = json!([{"bearer": []}]);
    for (path, method) in [
        ("/api/fulfillment/v1/orders", "post"),
        ("/api/fulfillment/v1/orders", "get"),
        ("/api/fulfillment/v1/orders/{id}", "get"),
        ("/api/fulfillment/v1/orders/{id}/cancel", "post"),
        ("/api/fulfillment/v1/webhook", "put"),
        ("/api/fulfillment/v1/webhook/deliveries", "get"),
    ] {
        assert_eq!(doc["paths"][path][method]["security"], bearer_only, "{method} {path}");
    }
    assert!(doc["components"]["schemas"]["FulfillmentEvent"].is_object());
}

/// A deployment's webhooks go to public endpoints only: a loopback, private or link-local
/// address (the metadata service's) is refused when set, and a name resolving to one is
/// refused at delivery, so an ISV cannot make the store call its own network.
#[tokio::test]
async fn webhooks_never_go_to_the_stores_own_network() {
    let (t, _) = store_with(false).await;
    let token = robot_token(&t, "isv", &["api:fulfillment"], None).await;
    for url in ["http://127.0.0.1:9/hooks", "http://169.254.169.254/latest/meta-data", "http://[::1]/x", "http://10.0.0.7/x"] {
        let (status, problem) = send(&t, &token, Method::PUT, "/api/fulfillment/v1/webhook", None, Some(&json!({"url": url}))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{url}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains("non-public address"), "{problem}");
    }
    // A name that resolves to loopback is accepted as a URL, and refused when called.
    let (status, _) =
        send(&t, &token, Method::PUT, "/api/fulfillment/v1/webhook", None, Some(&json!({"url": "http://localhost:9/hooks"}))).await;
    assert_eq!(status, StatusCode::OK);
    t.app.auth.create_user("hal", "hal@example.com", PASSWORD, SiteRole::User).await.unwrap();
    let (status, created) =
        order(&t, &token, None, &json!({"product": CACHE, "tier": "enterprise", "account": "hal", "external_id": "h1"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    t.app.fulfillment.run().await.unwrap();
    let (_, log) = send(&t, &token, Method::GET, "/api/fulfillment/v1/webhook/deliveries", None, None).await;
    let first = &log["deliveries"][0];
    assert!(first["last_error"].as_str().unwrap_or_default().contains("non-public address"), "{log}");
    assert_ne!(first["state"], "delivered", "{log}");
}

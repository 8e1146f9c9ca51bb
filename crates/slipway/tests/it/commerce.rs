//! The store taking money through its API, on the demo store with the sandbox provider and
//! the test clock: checkout with test cards and the registry's answer, renewals with a card
//! that now declines, the grace period, paying again, refunds with credit notes, trials,
//! cancellation, idempotency keys under concurrency, bad input, and the ledger agreeing
//! with all of it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slipway::config::Config;
use slipway_auth::access::SiteRole;
use slipway_commerce::TaxRate;

use slipway_test_support::{Backend, Caller, TestApp, Via};

const PASSWORD: &str = "commerce test password";
const DAY: Duration = Duration::from_secs(86_400);
/// The demo's Nimbus Cache Enterprise: 49.00 USD a month, licensed, no trial.
const CACHE: &str = "nimbus/nimbus-cache";
/// Its repository, which the registry opens to entitled accounts only.
const CACHE_REPO: &str = "nimbus/nimbus-cache-enterprise";

fn store_config(config: &mut Config) {
    config.testing.clock = true;
    config.commerce.tax = vec![TaxRate { country: "DE".into(), region: None, rate_bps: 1900, name: "VAT".into() }];
    config.commerce.seller_country = "US".into();
    config.commerce.renewal_interval_secs = 0;
}

async fn store() -> TestApp {
    let backend = Backend::with(|c| {
        store_config(c);
        c.auth.mode = slipway::config::AuthMode::Enforced;
    })
    .await;
    let t = backend.spawn().await;
    slipway::demo::load(&t.app).await.expect("demo loads");
    t
}

async fn customer(t: &TestApp, name: &str, via: Via) -> Caller {
    t.app.auth.create_user(name, &format!("{name}@example.com"), PASSWORD, SiteRole::User).await.unwrap();
    t.caller(name, PASSWORD, via).await
}

async fn post(t: &TestApp, caller: &Caller, path: &str, key: Option<&str>, body: &Value) -> (StatusCode, Value) {
    let mut request = t.call(caller, Method::POST, path).json(body);
    if let Some(key) = key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

async fn get(t: &TestApp, caller: &Caller, path: &str) -> Value {
    let response = t.call(caller, Method::GET, path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

fn checkout_body(product: &str, tier: &str, method: &str) -> Value {
    json!({"product": product, "tier": tier, "accept_license": 1, "payment_method": method})
}

/// Whether `name` (with the tests' password) may pull `repository:tag`.
async fn can_pull(t: &TestApp, name: &str, repository: &str, tag: &str) -> bool {
    t.can_pull(name, PASSWORD, repository, tag).await
}

async fn renew(t: &TestApp) -> slipway_commerce::RenewalReport {
    t.app.commerce.renew_due().await.expect("renewals run")
}

async fn advance(t: &TestApp, by: Duration) {
    t.app.jobs.advance_test_clock(by).await.unwrap();
}

async fn ledger_is_sound(t: &TestApp) {
    let report = t.app.db.ledger().verify().await.unwrap();
    assert_eq!(report.problem_count, 0, "{:?}", report.problems);
    let problems = t.app.commerce.verify().await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
}

async fn subscription(t: &TestApp, caller: &Caller, id: &str) -> Value {
    let list = get(t, caller, "/api/v1/subscriptions").await;
    list["subscriptions"].as_array().unwrap().iter().find(|s| s["id"] == id).cloned().expect("listed")
}

/// The whole life of a monthly subscription: bought with a test card, pulled; a month on
/// the card now declines: past due, still pulling through the grace period, denied after
/// it; paid again with another card: allowed; refunded in full: denied. The ledger
/// balances and agrees with the invoices at every step.
#[tokio::test]
async fn a_monthly_subscription_from_checkout_through_dunning_to_refund() {
    let t = store().await;
    let carol = customer(&t, "carol", Via::Bearer).await;
    assert!(!can_pull(&t, "carol", CACHE_REPO, "3.4").await);

    let (status, bought) =
        post(&t, &carol, "/api/v1/checkout", Some("buy-1"), &checkout_body(CACHE, "enterprise", "pm_card_declinedOffSession")).await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    let id = bought["subscription"]["id"].as_str().unwrap().to_owned();
    assert_eq!(bought["subscription"]["status"], "active");
    assert_eq!(bought["subscription"]["price"]["amount"], 4900);
    assert_eq!(bought["invoice"]["total"]["amount"], 4900, "no billing profile: no tax");
    assert_eq!(bought["invoice"]["number"], "NIMBUS-000001");
    let host = t.base.trim_start_matches("http://");
    assert_eq!(bought["subscription"]["pull_command"], format!("docker pull {host}/{CACHE_REPO}:3.4"));
    assert!(can_pull(&t, "carol", CACHE_REPO, "3.4").await);
    ledger_is_sound(&t).await;

    // Nothing is due yet.
    assert_eq!(renew(&t).await, slipway_commerce::RenewalReport::default());
    // A month on, the renewal is declined: past due, still entitled in the grace period.
    advance(&t, 31 * DAY).await;
    let report = renew(&t).await;
    assert_eq!((report.renewed, report.declined), (0, 1), "{report:?}");
    // Access tokens and sessions expire too as the clock moves: sign in again.
    let carol = t.caller("carol", PASSWORD, Via::Bearer).await;
    let s = subscription(&t, &carol, &id).await;
    assert_eq!(s["status"], "past_due");
    assert!(s["grace_period_end"].as_i64().is_some());
    assert!(can_pull(&t, "carol", CACHE_REPO, "3.4").await, "pulls work during the grace period");
    // A retry a day later declines again; nobody is charged twice for the period.
    advance(&t, DAY).await;
    assert_eq!(renew(&t).await.declined, 1);
    // Past the grace period (7 days): expired and denied.
    advance(&t, 7 * DAY).await;
    let report = renew(&t).await;
    assert_eq!(report.ended, 1, "{report:?}");
    let carol = t.caller("carol", PASSWORD, Via::Bearer).await;
    assert_eq!(subscription(&t, &carol, &id).await["status"], "expired");
    assert!(!can_pull(&t, "carol", CACHE_REPO, "3.4").await, "denied after the grace period");

    // Buying again with a good card opens it again; a full refund closes it.
    let (status, again) =
        post(&t, &carol, "/api/v1/checkout", Some("buy-2"), &checkout_body(CACHE, "enterprise", "4242 4242 4242 4242")).await;
    assert_eq!(status, StatusCode::CREATED, "{again}");
    assert!(can_pull(&t, "carol", CACHE_REPO, "3.4").await);
    let second = again["subscription"]["id"].as_str().unwrap().to_owned();
    assert_ne!(second, id, "a new subscription record, the old one kept");
    assert_eq!(again["invoice"]["number"], "NIMBUS-000002", "numbers without gaps");

    let admin = staff(&t).await;
    let (status, refund) = post(&t, &admin, "/api/v1/refunds", Some("refund-1"), &json!({"subscription": second, "amount": 5000})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "more than was paid: {refund}");
    assert!(refund["detail"].as_str().unwrap().contains("too much"), "{refund}");
    let (status, refund) =
        post(&t, &admin, "/api/v1/refunds", Some("refund-2"), &json!({"subscription": second, "amount": 900, "reason": "outage"})).await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    assert_eq!(refund["credit_note"]["kind"], "credit_note");
    assert_eq!(refund["credit_note"]["number"], "NIMBUS-000003");
    assert!(can_pull(&t, "carol", CACHE_REPO, "3.4").await, "a partial refund keeps access");
    let (status, refund) = post(&t, &admin, "/api/v1/refunds", Some("refund-3"), &json!({"subscription": second})).await;
    assert_eq!(status, StatusCode::CREATED, "{refund}");
    assert_eq!(refund["amount"]["amount"], 4000, "the rest");
    assert_eq!(refund["ended_subscription"], true);
    assert!(!can_pull(&t, "carol", CACHE_REPO, "3.4").await, "a full refund ends access");
    let (status, _) = post(&t, &admin, "/api/v1/refunds", Some("refund-4"), &json!({"subscription": second, "amount": 1})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "nothing left to refund");
    ledger_is_sound(&t).await;
    // What is left is the first month, paid and used: 49.00 taken, 20% the platform's fee,
    // the rest owed to the publisher; the refunded purchase nets out everywhere.
    let balances: Vec<(String, i64)> =
        t.app.db.ledger().balances("", 100).await.unwrap().into_iter().map(|b| (b.account, b.balance)).collect();
    let expected = [("cash:sandbox", 4900), ("platform:fees", -980), ("publisher:nimbus:payable", -3920)];
    assert_eq!(balances, expected.map(|(a, b)| (a.to_owned(), b)), "{balances:?}");

    // The customer sees both invoices and both credit notes, newest first.
    let invoices = get(&t, &carol, "/api/v1/invoices").await;
    let numbers: Vec<(&str, &str)> =
        invoices["invoices"].as_array().unwrap().iter().map(|i| (i["number"].as_str().unwrap(), i["kind"].as_str().unwrap())).collect();
    assert_eq!(
        numbers,
        [("NIMBUS-000004", "credit_note"), ("NIMBUS-000003", "credit_note"), ("NIMBUS-000002", "invoice"), ("NIMBUS-000001", "invoice")]
    );
}

/// Paying a past-due subscription with another card renews it at once.
#[tokio::test]
async fn a_past_due_subscription_paid_with_another_card_is_active_again() {
    let t = store().await;
    let dave = customer(&t, "dave", Via::Session).await;
    let (status, bought) =
        post(&t, &dave, "/api/v1/checkout", Some("k1"), &checkout_body(CACHE, "enterprise", "pm_card_declinedOffSession")).await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    let id = bought["subscription"]["id"].as_str().unwrap().to_owned();
    advance(&t, 31 * DAY).await;
    assert_eq!(renew(&t).await.declined, 1);
    let dave = t.caller("dave", PASSWORD, Via::Session).await;
    let pay = format!("/api/v1/subscriptions/{id}/pay");
    let (status, declined) = post(&t, &dave, &pay, Some("p1"), &json!({"payment_method": "pm_card_chargeDeclinedInsufficientFunds"})).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(declined["detail"], "Your card has insufficient funds.");
    let (status, paid) = post(&t, &dave, &pay, Some("p2"), &json!({"payment_method": "pm_card_visa"})).await;
    assert_eq!(status, StatusCode::OK, "{paid}");
    assert_eq!(paid["status"], "active");
    assert!(can_pull(&t, "dave", CACHE_REPO, "3.4").await);
    // The retry of the same request is answered from the first, and charges nothing.
    let (status, replay) = post(&t, &dave, &pay, Some("p2"), &json!({"payment_method": "pm_card_visa"})).await;
    assert_eq!((status, replay["current_period_end"].clone()), (StatusCode::OK, paid["current_period_end"].clone()));
    let renewed = renew(&t).await;
    assert_eq!(renewed.renewed + renewed.declined, 0, "the new period is not due: {renewed:?}");
    ledger_is_sound(&t).await;
}

/// Upgrading mid-period charges the prorated difference and opens the dearer tier's
/// repository instead; downgrading refunds the difference with a credit note; the next
/// renewal charges the new tier's price.
#[tokio::test]
async fn upgrades_and_downgrades_are_prorated() {
    let t = store().await;
    let nora = customer(&t, "nora", Via::Bearer).await;
    let (status, bought) = post(&t, &nora, "/api/v1/checkout", Some("n1"), &checkout_body(CACHE, "team", "pm_card_visa")).await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    let id = bought["subscription"]["id"].as_str().unwrap().to_owned();
    let (start, end) =
        (bought["subscription"]["current_period_start"].as_i64().unwrap(), bought["subscription"]["current_period_end"].as_i64().unwrap());
    assert!(can_pull(&t, "nora", "nimbus/nimbus-cache-team", "3.4").await);
    assert!(!can_pull(&t, "nora", CACHE_REPO, "3.4").await);
    advance(&t, 10 * DAY).await;
    let nora = t.caller("nora", PASSWORD, Via::Bearer).await;
    let change = format!("/api/v1/subscriptions/{id}/change");
    let (status, up) = post(&t, &nora, &change, Some("up"), &json!({"tier": "enterprise"})).await;
    assert_eq!(status, StatusCode::OK, "{up}");
    assert_eq!((up["tier"].as_str(), up["price"]["amount"].as_i64()), (Some("Enterprise"), Some(4900)));
    assert_eq!(up["current_period_end"].as_i64(), Some(end), "the period stays");
    assert!(can_pull(&t, "nora", CACHE_REPO, "3.4").await);
    assert!(!can_pull(&t, "nora", "nimbus/nimbus-cache-team", "3.4").await);
    let invoices = get(&t, &nora, "/api/v1/invoices").await;
    let upgrade = &invoices["invoices"][0];
    // 30.00 a month more, for the unused part of the period (the clock moved 10 days of it).
    let now = t.app.commerce.clock().now_ms();
    let unused = |amount: i64| i64::try_from(i128::from(amount) * i128::from(end - now) / i128::from(end - start)).unwrap();
    assert_eq!(upgrade["subtotal"]["amount"].as_i64(), Some(unused(4900) - unused(1900)), "{upgrade}");
    assert_eq!(upgrade["lines"].as_array().unwrap().len(), 2);
    assert!(upgrade["lines"][0]["amount"]["amount"].as_i64().unwrap() < 0, "the unused time on Team is credited");
    let (status, again) = post(&t, &nora, &change, Some("up-again"), &json!({"tier": "enterprise"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{again}");
    let (status, free) = post(&t, &nora, &change, Some("free"), &json!({"tier": "developer"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a free tier is not a move: {free}");

    let (status, down) = post(&t, &nora, &change, Some("down"), &json!({"tier": "team"})).await;
    assert_eq!(status, StatusCode::OK, "{down}");
    assert!(can_pull(&t, "nora", "nimbus/nimbus-cache-team", "3.4").await);
    assert!(!can_pull(&t, "nora", CACHE_REPO, "3.4").await);
    let invoices = get(&t, &nora, "/api/v1/invoices").await;
    assert_eq!(invoices["invoices"][0]["kind"], "credit_note", "the difference is refunded");
    ledger_is_sound(&t).await;

    advance(&t, 25 * DAY).await;
    assert_eq!(renew(&t).await.renewed, 1);
    let nora = t.caller("nora", PASSWORD, Via::Bearer).await;
    let invoices = get(&t, &nora, "/api/v1/invoices").await;
    assert_eq!(invoices["invoices"][0]["subtotal"]["amount"], 1900, "the renewal charges Team's price");
    ledger_is_sound(&t).await;
}

/// A publisher's new price reaches an existing subscription at its next renewal after a
/// notice: the renewal that notices it charges the old price and mails the customer; the
/// one after charges the new price.
#[tokio::test]
async fn a_price_change_applies_at_the_renewal_after_a_notice() {
    let t = store().await;
    let olga = customer(&t, "olga", Via::Bearer).await;
    let (status, bought) = post(&t, &olga, "/api/v1/checkout", Some("o1"), &checkout_body(CACHE, "enterprise", "pm_card_visa")).await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&t.app.config.database_url()).await.unwrap();
    // The publisher raises the price (as its listing editor would store it).
    sqlx::query("UPDATE tiers SET amount = 5900 WHERE id = 'nimbus/nimbus-cache/enterprise'").execute(&pool).await.unwrap();
    let notices = || async {
        sqlx::query_as::<_, (String, String)>("SELECT subject, body FROM outbox WHERE recipient = 'olga@example.com' ORDER BY created_at")
            .fetch_all(&pool)
            .await
            .unwrap()
    };
    assert!(notices().await.is_empty());
    advance(&t, 31 * DAY).await;
    assert_eq!(renew(&t).await.renewed, 1);
    let olga = t.caller("olga", PASSWORD, Via::Bearer).await;
    let invoices = get(&t, &olga, "/api/v1/invoices").await;
    assert_eq!(invoices["invoices"][0]["subtotal"]["amount"], 4900, "the renewal that notices the change charges the old price");
    let sent = notices().await;
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert!(sent[0].0.contains("Nimbus Cache Enterprise"), "{sent:?}");
    assert!(sent[0].1.contains("49.00 USD to 59.00 USD"), "{sent:?}");
    advance(&t, 31 * DAY).await;
    assert_eq!(renew(&t).await.renewed, 1);
    let olga = t.caller("olga", PASSWORD, Via::Bearer).await;
    let invoices = get(&t, &olga, "/api/v1/invoices").await;
    assert_eq!(invoices["invoices"][0]["subtotal"]["amount"], 5900, "then the new price");
    assert_eq!(notices().await.len(), 1, "one notice");
    pool.close().await;
    ledger_is_sound(&t).await;
}

/// Renewals due together are recorded in one transaction; when one of them cannot be
/// recorded (its period was written meanwhile), the batch is rolled back whole and
/// recorded one by one: the others are renewed, invoice numbers stay gap-free, and the one
/// left is renewed at the next run with the charge the provider already took.
#[tokio::test]
async fn renewals_recorded_together_and_one_that_cannot_be_does_not_hold_back_the_others() {
    let t = store().await;
    let mut ids = Vec::new();
    for (n, name) in ["rita", "ravi", "rosa"].into_iter().enumerate() {
        let caller = customer(&t, name, Via::Bearer).await;
        let (status, bought) =
            post(&t, &caller, "/api/v1/checkout", Some(&format!("r{n}")), &checkout_body(CACHE, "enterprise", "pm_card_visa")).await;
        assert_eq!(status, StatusCode::CREATED, "{bought}");
        ids.push(bought["subscription"]["id"].as_str().unwrap().to_owned());
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&t.app.config.database_url()).await.unwrap();
    // Ravi's next period is taken before the renewals run.
    sqlx::query(
        "INSERT INTO subscription_periods (id, subscription_id, kind, period_start, period_end, invoice_id, created_at)
         SELECT 'squatter', id, 'paid', current_period_end, NULL, NULL, 0 FROM subscriptions WHERE id = $1",
    )
    .bind(&ids[1])
    .execute(&pool)
    .await
    .unwrap();
    advance(&t, 31 * DAY).await;
    let report = renew(&t).await;
    assert_eq!((report.renewed, report.skipped), (2, 1), "{report:?}");
    let invoices_of = |id: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT number FROM invoices WHERE subscription_id = $1 ORDER BY number")
                .bind(id)
                .fetch_all(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(invoices_of(ids[1].clone()).await.len(), 1, "Ravi's renewal is not recorded");
    let numbers: Vec<i64> =
        sqlx::query_scalar("SELECT number FROM invoices WHERE seller = 'nimbus' ORDER BY number").fetch_all(&pool).await.unwrap();
    assert_eq!(numbers, [1, 2, 3, 4, 5], "the rolled-back batch gave its numbers back");
    ledger_is_sound(&t).await;

    sqlx::query("DELETE FROM subscription_periods WHERE id = 'squatter'").execute(&pool).await.unwrap();
    let report = renew(&t).await;
    assert_eq!((report.renewed, report.skipped), (1, 0), "{report:?}");
    assert_eq!(invoices_of(ids[1].clone()).await, [2, 6]);
    let keys: Vec<String> = sqlx::query_scalar("SELECT idempotency_key FROM payments WHERE subscription_id = $1 ORDER BY created_at")
        .bind(&ids[1])
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(keys.len(), 2, "{keys:?}");
    // The first attempt's key: the provider answers it with the charge it took the first
    // time, so Ravi is charged once for the period.
    assert!(keys[1].ends_with(":0"), "{keys:?}");
    pool.close().await;
    ledger_is_sound(&t).await;
}

/// A declined card at checkout leaves no subscription, charges nothing and says why;
/// tax follows the billing profile, with the EU reverse charge for a VAT id.
#[tokio::test]
async fn declines_and_tax_at_checkout() {
    let t = store().await;
    let erin = customer(&t, "erin", Via::Bearer).await;
    let (status, declined) = post(&t, &erin, "/api/v1/checkout", Some("d1"), &checkout_body(CACHE, "enterprise", "4000000000000002")).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert_eq!(declined["detail"], "Your card was declined.");
    assert!(get(&t, &erin, "/api/v1/subscriptions").await["subscriptions"].as_array().unwrap().is_empty());
    assert!(!can_pull(&t, "erin", CACHE_REPO, "3.4").await);

    let profile = json!({"name": "Erin GmbH", "country": "DE", "postal_code": "10115"});
    let saved = t.call(&erin, Method::PUT, "/api/v1/billing-profile").json(&profile).send().await.unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    let quote = get(&t, &erin, &format!("/api/v1/checkout/quote?product={CACHE}&tier=enterprise")).await;
    assert_eq!(
        (quote["subtotal"]["amount"].as_i64(), quote["tax"]["amount"].as_i64(), quote["total"]["amount"].as_i64()),
        (Some(4900), Some(931), Some(5831))
    );
    let (status, bought) = post(&t, &erin, "/api/v1/checkout", Some("d2"), &checkout_body(CACHE, "enterprise", "pm_card_visa")).await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    let invoice = &bought["invoice"];
    assert_eq!((invoice["tax"]["amount"].as_i64(), invoice["total"]["amount"].as_i64()), (Some(931), Some(5831)));
    assert_eq!(invoice["lines"][0]["tax_name"], "VAT");
    assert_eq!(invoice["buyer"]["name"], "Erin GmbH");

    let frank = customer(&t, "frank", Via::Bearer).await;
    let b2b = json!({"product": CACHE, "tier": "enterprise", "accept_license": 1, "payment_method": "pm_card_visa",
        "billing": {"name": "Frank AG", "country": "DE", "tax_id": "DE123456789"}});
    let (status, bought) = post(&t, &frank, "/api/v1/checkout", Some("f1"), &b2b).await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    assert_eq!(bought["invoice"]["tax"]["amount"], 0);
    assert_eq!(bought["invoice"]["reverse_charge"], true);
    ledger_is_sound(&t).await;
}

/// Trials: no charge at checkout and access at once; converted at their end with a card on
/// file, expired without one. A trial is offered once.
#[tokio::test]
async fn trials_convert_with_a_card_and_expire_without() {
    let t = store().await;
    // Nimbus DB Enterprise: 199.00 USD a month after a 14-day trial.
    let gina = customer(&t, "gina", Via::Bearer).await;
    let hank = customer(&t, "hank", Via::Bearer).await;
    let (status, with_card) =
        post(&t, &gina, "/api/v1/checkout", Some("g"), &checkout_body("nimbus/nimbus-db", "enterprise", "pm_card_visa")).await;
    assert_eq!(status, StatusCode::CREATED, "{with_card}");
    assert_eq!(with_card["subscription"]["status"], "trialing");
    assert!(with_card["invoice"].is_null(), "nothing charged during a trial");
    let no_card = json!({"product": "nimbus/nimbus-db", "tier": "enterprise", "accept_license": 1});
    let (status, without) = post(&t, &hank, "/api/v1/checkout", Some("h"), &no_card).await;
    assert_eq!(status, StatusCode::CREATED, "{without}");
    assert!(can_pull(&t, "hank", "nimbus/nimbus-db-enterprise", "7.2").await, "a trial is entitled");
    advance(&t, 15 * DAY).await;
    let report = renew(&t).await;
    assert_eq!((report.renewed, report.ended), (1, 1), "{report:?}");
    let (gina, hank) = (t.caller("gina", PASSWORD, Via::Bearer).await, t.caller("hank", PASSWORD, Via::Bearer).await);
    assert_eq!(subscription(&t, &gina, with_card["subscription"]["id"].as_str().unwrap()).await["status"], "active");
    assert_eq!(subscription(&t, &hank, without["subscription"]["id"].as_str().unwrap()).await["status"], "expired");
    assert!(can_pull(&t, "gina", "nimbus/nimbus-db-enterprise", "7.2").await);
    assert!(!can_pull(&t, "hank", "nimbus/nimbus-db-enterprise", "7.2").await);
    // Hank's next checkout is charged at once: the trial was his once.
    let (status, refused) = post(&t, &hank, "/api/v1/checkout", Some("h2"), &no_card).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{refused}");
    assert!(refused["detail"].as_str().unwrap().contains("payment_method"), "{refused}");
    ledger_is_sound(&t).await;
}

/// Cancelling at the period's end keeps access until then and does not renew; at once
/// ends it.
#[tokio::test]
async fn cancellation_at_period_end_and_at_once() {
    let t = store().await;
    let ivy = customer(&t, "ivy", Via::Bearer).await;
    let (_, bought) = post(&t, &ivy, "/api/v1/checkout", Some("i1"), &checkout_body(CACHE, "enterprise", "pm_card_visa")).await;
    let id = bought["subscription"]["id"].as_str().unwrap().to_owned();
    let (status, canceled) = post(&t, &ivy, &format!("/api/v1/subscriptions/{id}/cancel"), None, &json!({})).await;
    assert_eq!(status, StatusCode::OK, "{canceled}");
    assert_eq!((canceled["status"].as_str(), canceled["cancel_at_period_end"].as_bool()), (Some("active"), Some(true)));
    assert!(can_pull(&t, "ivy", CACHE_REPO, "3.4").await, "access lasts until the period's end");
    advance(&t, 32 * DAY).await;
    assert!(!can_pull(&t, "ivy", CACHE_REPO, "3.4").await, "no grace after a cancellation");
    assert_eq!(renew(&t).await.ended, 1);
    let ivy = t.caller("ivy", PASSWORD, Via::Bearer).await;
    assert_eq!(subscription(&t, &ivy, &id).await["status"], "canceled");

    // Someone else's subscription does not exist for them.
    let (_, bought) = post(&t, &ivy, "/api/v1/checkout", Some("i2"), &checkout_body(CACHE, "enterprise", "pm_card_visa")).await;
    let id = bought["subscription"]["id"].as_str().unwrap().to_owned();
    let jack = customer(&t, "jack", Via::Bearer).await;
    let (status, _) = post(&t, &jack, &format!("/api/v1/subscriptions/{id}/cancel"), None, &json!({"at_period_end": false})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = post(&t, &jack, "/api/v1/refunds", Some("j"), &json!({"subscription": id})).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "a customer cannot refund");
    let (status, ended) = post(&t, &ivy, &format!("/api/v1/subscriptions/{id}/cancel"), None, &json!({"at_period_end": false})).await;
    assert_eq!((status, ended["status"].as_str()), (StatusCode::OK, Some("canceled")));
    assert!(!can_pull(&t, "ivy", CACHE_REPO, "3.4").await);
    ledger_is_sound(&t).await;
}

/// 50 checkouts at once with one key charge once; 50 with different keys for one tier
/// make one subscription and refuse the rest.
#[tokio::test]
async fn concurrent_checkouts_charge_once() {
    let t = store().await;
    let kim = customer(&t, "kim", Via::Bearer).await;
    let body = checkout_body(CACHE, "enterprise", "pm_card_visa");
    let same_key = futures::future::join_all((0..50).map(|_| post(&t, &kim, "/api/v1/checkout", Some("same"), &body))).await;
    let created: Vec<_> = same_key.iter().filter(|(s, _)| *s == StatusCode::CREATED).collect();
    assert!(same_key.iter().all(|(s, _)| [StatusCode::CREATED, StatusCode::CONFLICT].contains(s)), "{same_key:?}");
    let ids: std::collections::BTreeSet<_> = created.iter().map(|(_, b)| b["subscription"]["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ids.len(), 1, "every success is the one first answer");
    let lee = customer(&t, "lee", Via::Bearer).await;
    let keys: Vec<String> = (0..50).map(|i| format!("key-{i}")).collect();
    let different = futures::future::join_all(keys.iter().map(|k| post(&t, &lee, "/api/v1/checkout", Some(k), &body))).await;
    let won = different.iter().filter(|(s, _)| *s == StatusCode::CREATED).count();
    let refused = different.iter().filter(|(s, _)| *s == StatusCode::CONFLICT).count();
    assert_eq!((won, refused), (1, 49), "{different:?}");
    // Two charges in all: one per customer.
    let charges = t.app.db.ledger().balances("cash:", 10).await.unwrap();
    assert_eq!(charges[0].balance, 2 * 4900, "{charges:?}");
    ledger_is_sound(&t).await;
}

/// Bad input, each refused clearly with nothing written.
#[tokio::test]
async fn bad_checkout_and_refund_input_is_refused() {
    let t = store().await;
    let mia = customer(&t, "mia", Via::Bearer).await;
    let long_key = "k".repeat(256);
    let cases: Vec<(Option<&str>, Value, StatusCode, &str)> = vec![
        (None, checkout_body(CACHE, "enterprise", "pm_card_visa"), StatusCode::BAD_REQUEST, "Idempotency-Key"),
        (Some(""), checkout_body(CACHE, "enterprise", "pm_card_visa"), StatusCode::BAD_REQUEST, "Idempotency-Key"),
        (Some(&long_key), checkout_body(CACHE, "enterprise", "pm_card_visa"), StatusCode::BAD_REQUEST, "Idempotency-Key"),
        (Some("b1"), checkout_body("nimbus", "enterprise", "pm_card_visa"), StatusCode::UNPROCESSABLE_ENTITY, "PUBLISHER/SLUG"),
        (Some("b2"), checkout_body(CACHE, "platinum", "pm_card_visa"), StatusCode::NOT_FOUND, "no tier"),
        (
            Some("b3"),
            json!({"product": CACHE, "tier": "enterprise", "payment_method": "pm_card_visa"}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "license",
        ),
        (Some("b4"), checkout_body(CACHE, "enterprise", "4111111111111111"), StatusCode::UNPROCESSABLE_ENTITY, "test cards"),
        (Some("b5"), checkout_body(CACHE, "enterprise", ""), StatusCode::UNPROCESSABLE_ENTITY, "payment_method"),
        (
            Some("b6"),
            json!({"product": CACHE, "tier": "enterprise", "accept_license": 1, "payment_method": "pm_card_visa",
            "billing": {"name": "M", "country": "Germany"}}),
            StatusCode::UNPROCESSABLE_ENTITY,
            "country code",
        ),
        (Some("b7"), json!({"product": CACHE, "tier": 7}), StatusCode::UNPROCESSABLE_ENTITY, "body"),
    ];
    for (key, body, status, message) in cases {
        let (got, problem) = post(&t, &mia, "/api/v1/checkout", key, &body).await;
        assert_eq!(got, status, "{body}: {problem}");
        assert!(problem["detail"].as_str().unwrap_or_default().contains(message), "{body}: {problem}");
    }
    // A key reused with another body is refused.
    let (status, _) = post(&t, &mia, "/api/v1/checkout", Some("b5"), &checkout_body(CACHE, "enterprise", "pm_card_visa")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(get(&t, &mia, "/api/v1/subscriptions").await["subscriptions"].as_array().unwrap().is_empty());
    assert!(t.app.db.ledger().balances("", 10).await.unwrap().is_empty(), "nothing was charged");

    let admin = staff(&t).await;
    let (_, bought) = post(&t, &mia, "/api/v1/checkout", Some("ok"), &checkout_body(CACHE, "enterprise", "pm_card_visa")).await;
    let id = bought["subscription"]["id"].as_str().unwrap().to_owned();
    for (amount, message) in [(json!(-1), "positive"), (json!(0), "positive"), (json!(4901), "too much"), (json!(i64::MAX), "too much")] {
        let (status, problem) =
            post(&t, &admin, "/api/v1/refunds", Some(&format!("r{amount}")), &json!({"subscription": id, "amount": amount})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{amount}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(message), "{amount}: {problem}");
    }
    let (status, _) = post(&t, &admin, "/api/v1/refunds", Some("r-float"), &json!({"subscription": id, "amount": 12.5})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "no floats near money");
    let (status, _) = post(&t, &admin, "/api/v1/refunds", Some("r-x"), &json!({"subscription": id, "reason": "x".repeat(501)})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    ledger_is_sound(&t).await;
}

/// An administrator of the store (who may refund any publisher's sales).
async fn staff(t: &TestApp) -> Caller {
    t.app.auth.create_user("root", "root@example.com", PASSWORD, SiteRole::Admin).await.unwrap();
    t.caller("root", PASSWORD, Via::Bearer).await
}

/// A moved clock would renew subscriptions early: the test clock is refused with a payment
/// provider that moves real money, and allowed with test-mode keys.
#[tokio::test]
async fn the_test_clock_is_refused_with_a_live_payment_provider() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
    config.testing.clock = true;
    config.commerce.provider = "stripe".into();
    config.commerce.stripe_secret_key = Some(slipway::config::Secret::new("sk_live_not_a_real_key"));
    let error = slipway::App::build(config.clone()).await.err().expect("refused");
    assert!(error.to_string().contains("real money"), "{error}");
    config.commerce.stripe_secret_key = Some(slipway::config::Secret::new("sk_test_not_a_real_key"));
    assert!(slipway::App::build(config).await.is_ok(), "test-mode keys are fine");
}

/// Issue 18: deleting an account is refused, with the reasons, while it has a subscription
/// that renews (or an unpaid invoice) and while it owns an organization; once settled, its
/// sessions and tokens end, its address is forgotten and its name stays taken. Account
/// changes need a session: an access token gets 403.
#[tokio::test]
async fn an_account_is_deleted_once_its_subscriptions_and_organizations_are_settled() {
    let t = store().await;
    let dora = customer(&t, "dora", Via::Session).await;
    let (_, bought) = post(&t, &dora, "/api/v1/checkout", Some("d1"), &checkout_body(CACHE, "enterprise", "pm_card_visa")).await;
    let id = bought["subscription"]["id"].as_str().unwrap().to_owned();
    t.app.auth.create_organization("dora-labs", "dora").await.unwrap();
    let (token, _) =
        t.app.auth.create_token("dora", "ci", &[slipway_auth::scope::TokenRule::parse("api:write").unwrap()], None).await.unwrap();
    let delete = |password: &str| t.call(&dora, Method::DELETE, "/api/v1/me").json(&json!({"password": password})).send();
    let by_token = t.request(Method::DELETE, "/api/v1/me").bearer_auth(&token).json(&json!({"password": PASSWORD})).send().await.unwrap();
    assert_eq!(by_token.status(), StatusCode::FORBIDDEN, "a token cannot delete the account");

    let refused = delete(PASSWORD).await.unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    let detail = refused.json::<Value>().await.unwrap()["detail"].as_str().unwrap().to_owned();
    assert!(detail.contains("Nimbus Cache Enterprise renews: cancel it"), "{detail}");
    let (status, _) = post(&t, &dora, &format!("/api/v1/subscriptions/{id}/cancel"), None, &json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let refused = delete(PASSWORD).await.unwrap();
    assert_eq!(refused.status(), StatusCode::CONFLICT);
    assert!(refused.text().await.unwrap().contains("the account owns dora-labs"));
    t.app.auth.create_user("heir", "heir@example.com", PASSWORD, SiteRole::User).await.unwrap();
    t.app.auth.set_member("dora-labs", "heir", slipway_auth::access::OrgRole::Viewer).await.unwrap();
    let account = t.app.db.identity().account_by_name("dora").await.unwrap().unwrap();
    t.app.auth.transfer_ownership(&account, "dora-labs", "heir").await.unwrap();
    assert_eq!(delete("not the password").await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY);

    assert_eq!(delete(PASSWORD).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(t.call(&dora, Method::GET, "/api/v1/me").send().await.unwrap().status(), StatusCode::UNAUTHORIZED, "signed out");
    assert_eq!(t.request(Method::GET, "/api/v1/me").bearer_auth(&token).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert!(!can_pull(&t, "dora", CACHE_REPO, "3.4").await, "no sign-in at all");
    let gone = t.app.db.identity().account_by_name("dora").await.unwrap().unwrap();
    assert!(gone.disabled_at.is_some() && gone.email.is_none() && gone.password_hash.is_none());
    assert!(t.app.db.identity().memberships(&gone.id).await.unwrap().is_empty());
    let taken = t.app.auth.create_user("dora", "dora2@example.com", PASSWORD, SiteRole::User).await.unwrap_err();
    assert!(taken.to_string().contains("taken"), "the name stays reserved: {taken}");
    t.app.auth.create_user("dora2", "dora@example.com", PASSWORD, SiteRole::User).await.expect("the address is free again");
    ledger_is_sound(&t).await;
}

/// A checkout whose process died after claiming its Idempotency-Key and reserving the
/// subscription (a replica killed mid-request) was stuck: every retry with the key heard
/// "still being processed" for a day, and a new key "you already have a subscription" for
/// an hour. The key is held for its lease only; then a retry with it takes it over and
/// resumes that reservation: one subscription, one payment, one invoice.
#[tokio::test]
async fn a_checkout_whose_process_died_is_finished_by_a_retry_with_its_key() {
    use sha2::Digest;
    let t = store().await;
    let dave = customer(&t, "dave", Via::Bearer).await;
    let account = t.app.db.identity().account_by_name("dave").await.unwrap().unwrap().id;
    let body = checkout_body(CACHE, "enterprise", "pm_card_visa");
    // What the dead attempt did: claimed the key for this very request, then reserved.
    let hash = hex::encode(
        sha2::Sha256::new().chain_update(b"checkout").chain_update([0]).chain_update(serde_json::to_vec(&body).unwrap()).finalize(),
    );
    assert!(matches!(t.app.commerce.claim_key(&account, "died-1", &hash).await.unwrap(), slipway_db::KeyClaim::Claimed));
    let tier_id = slipway_types::entitlement_id("nimbus", "nimbus-cache", "enterprise");
    let reservation = slipway_db::NewSubscription {
        id: "sub-of-the-dead-attempt",
        account_id: &account,
        tier_id: &tier_id,
        license_version: 1,
        status: "incomplete",
        amount: 4900,
        currency: "USD",
        billing_period: "month",
        payment_method_id: None,
        for_key: Some((&account, "died-1")),
    };
    t.app.db.commerce().create_subscription(&reservation).await.unwrap();

    // Within the lease the key is still its first request's.
    let (status, busy) = post(&t, &dave, "/api/v1/checkout", Some("died-1"), &body).await;
    assert_eq!(status, StatusCode::CONFLICT, "{busy}");
    assert!(busy["detail"].as_str().unwrap().contains("still being processed"), "{busy}");
    // Past it, the retry takes over and finishes the reservation the dead attempt made.
    advance(&t, Duration::from_secs(31)).await;
    let dave = t.caller("dave", PASSWORD, Via::Bearer).await;
    let (status, bought) = post(&t, &dave, "/api/v1/checkout", Some("died-1"), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    assert_eq!(bought["subscription"]["id"], "sub-of-the-dead-attempt");
    assert_eq!(bought["subscription"]["status"], "active");
    assert_eq!(bought["invoice"]["total"]["amount"], 4900);
    // Retries from now on are answered from the key.
    let (status, again) = post(&t, &dave, "/api/v1/checkout", Some("died-1"), &body).await;
    assert_eq!((status, &again["subscription"]["id"]), (StatusCode::CREATED, &bought["subscription"]["id"]));
    let list = get(&t, &dave, "/api/v1/subscriptions").await;
    assert_eq!(list["subscriptions"].as_array().unwrap().len(), 1, "{list}");
    let invoices = get(&t, &dave, "/api/v1/invoices").await;
    assert_eq!(invoices["invoices"].as_array().unwrap().len(), 1, "{invoices}");
    ledger_is_sound(&t).await;
}

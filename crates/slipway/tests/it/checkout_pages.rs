//! The store's commerce pages as a browser uses them (session cookie, form posts with the
//! CSRF token, redirects not followed), on the demo store with the sandbox provider: the
//! checkout page's price, tax and total, license and billing details, a declined card, a
//! double submission charging once, My subscriptions with invoices, cancelling, paying a
//! past-due subscription, the billing page, and who may see an invoice.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slipway_auth::access::SiteRole;
use slipway_commerce::TaxRate;

use slipway_test_support::{Backend, Caller, TestApp, Via};

const PASSWORD: &str = "checkout pages test password";
/// The demo's Nimbus Cache Enterprise: 49.00 USD a month, licensed (version 1), no trial.
const CHECKOUT: &str = "/checkout?product=nimbus/nimbus-cache&tier=enterprise";

async fn store() -> TestApp {
    let backend = Backend::with(|c| {
        c.testing.clock = true;
        c.commerce.tax = vec![TaxRate { country: "DE".into(), region: None, rate_bps: 1900, name: "VAT".into() }];
        c.commerce.seller_country = "US".into();
        c.commerce.renewal_interval_secs = 0;
        c.auth.mode = slipway::config::AuthMode::Enforced;
    })
    .await;
    let t = backend.spawn().await;
    slipway::demo::load(&t.app).await.expect("demo loads");
    t
}

/// A browser's session: its cookie and the CSRF token its pages' forms carry.
struct Browser {
    cookie: String,
    csrf: String,
    caller: Caller,
}

async fn customer(t: &TestApp, name: &str) -> Browser {
    t.app.auth.create_user(name, &format!("{name}@example.com"), PASSWORD, SiteRole::User).await.unwrap();
    signed_in(t, name).await
}

async fn signed_in(t: &TestApp, name: &str) -> Browser {
    let caller = t.caller(name, PASSWORD, Via::Session).await;
    let Caller::Session { cookie, csrf } = caller.clone() else { unreachable!("a session") };
    Browser { cookie, csrf, caller }
}

async fn page(t: &TestApp, b: &Browser, path: &str) -> (StatusCode, String) {
    let response = t.request(Method::GET, path).header("cookie", &b.cookie).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Posts a form; (status, Location, body).
async fn submit(t: &TestApp, b: &Browser, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String, String) {
    let response = t.request(Method::POST, path).header("cookie", &b.cookie).form(fields).send().await.unwrap();
    let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
    (response.status(), location, response.text().await.unwrap())
}

/// The value of a form field rendered as `name="NAME" value="..."`.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} field in {html}")) + marker.len();
    html[start..].split('"').next().unwrap().to_owned()
}

async fn api(t: &TestApp, b: &Browser, path: &str) -> Value {
    let response = t.call(&b.caller, Method::GET, path).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    response.json().await.unwrap()
}

/// The checkout form as the page fills it, with the customer's own entries.
fn checkout_fields<'a>(b: &'a Browser, html: &str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, String)> {
    let mut fields: Vec<(&str, String)> = vec![
        ("csrf", b.csrf.clone()),
        ("key", field(html, "key")),
        ("product", field(html, "product")),
        ("tier", field(html, "tier")),
        ("total", field(html, "total")),
        ("license_version", field(html, "license_version")),
    ];
    fields.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    fields
}

async fn post_checkout(t: &TestApp, b: &Browser, fields: &[(&str, String)]) -> (StatusCode, String, String) {
    let borrowed: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
    submit(t, b, "/checkout", &borrowed).await
}

/// From the product page through a refused license, billing details that change the total,
/// a declined card and a double click, to My subscriptions with the invoice.
#[tokio::test]
async fn checkout_from_the_product_page_to_the_invoice() {
    let t = store().await;
    let erin = customer(&t, "erin").await;

    // The product page links paid tiers to checkout; free ones keep their form.
    let (_, product) = page(&t, &erin, "/products/nimbus/nimbus-cache").await;
    assert!(
        product.contains("href=\"/checkout?product=nimbus/nimbus-cache&#38;tier=enterprise\"")
            || product.contains("href=\"/checkout?product=nimbus/nimbus-cache&amp;tier=enterprise\""),
        "{product}"
    );
    let (_, db) = page(&t, &erin, "/products/nimbus/nimbus-db").await;
    assert!(db.contains("Start 14-day free trial"), "the trial tier's link says so");

    let (status, html) = page(&t, &erin, CHECKOUT).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for shown in [
        "Nimbus Cache",
        "Enterprise",
        "49.00 USD",
        "Tax",
        "Total",
        "name=\"billing_name\"",
        "name=\"accept_license\"",
        "4000 0000 0000 0002",
    ] {
        assert!(html.contains(shown), "the checkout page shows {shown}");
    }
    assert_eq!(field(&html, "total"), "4900 USD");
    let key = field(&html, "key");
    assert_eq!(uuid::Uuid::parse_str(&key).map(|u| u.get_version_num()), Ok(4), "{key}");

    // The license is required; nothing is bought without it, and the page keeps what was typed.
    let billing = [("billing_name", "Erin GmbH"), ("billing_country", "de"), ("billing_postal_code", "10115")];
    let mut without_license = checkout_fields(&erin, &html, &billing);
    without_license.push(("payment_method", "4242 4242 4242 4242".into()));
    let (status, _, refused) = post_checkout(&t, &erin, &without_license).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.contains("Accept the license agreement"), "{refused}");
    assert!(refused.contains("value=\"4242 4242 4242 4242\""), "the card is kept");
    assert!(api(&t, &erin, "/api/v1/subscriptions").await["subscriptions"].as_array().unwrap().is_empty());

    // German billing details add 19% VAT: the page shows the new total before charging it.
    let mut accepted = checkout_fields(&erin, &html, &billing);
    accepted.extend([("accept_license", "1".into()), ("payment_method", "4242 4242 4242 4242".into())]);
    let (status, _, confirm) = post_checkout(&t, &erin, &accepted).await;
    assert_eq!(status, StatusCode::OK, "{confirm}");
    assert!(confirm.contains("the total is 58.31 USD"), "{confirm}");
    assert!(confirm.contains("9.31 USD") && confirm.contains("VAT 19%"), "{confirm}");
    assert!(!confirm.contains("name=\"billing_name\""), "the profile is saved: not asked again");
    assert!(api(&t, &erin, "/api/v1/invoices").await["invoices"].as_array().unwrap().is_empty(), "nothing charged yet");
    assert_eq!(api(&t, &erin, "/api/v1/billing-profile").await["country"], "DE");

    // A declined card: its message, the card cleared, a new key.
    let declined_fields = checkout_fields(&erin, &confirm, &[("accept_license", "1"), ("payment_method", "4000 0000 0000 0002")]);
    let (status, _, declined) = post_checkout(&t, &erin, &declined_fields).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{declined}");
    assert!(declined.contains("Your card was declined."), "{declined}");
    assert!(!declined.contains("value=\"4000 0000 0000 0002\""));
    assert_ne!(field(&declined, "key"), field(&confirm, "key"));
    // The declined form sent again is answered the same, and charges nothing.
    let (status, _, again) = post_checkout(&t, &erin, &declined_fields).await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert!(again.contains("Your card was declined."));

    // A double click: the same form twice buys once.
    let good = checkout_fields(&erin, &declined, &[("accept_license", "1"), ("payment_method", "4242 4242 4242 4242")]);
    let (first, second) = tokio::join!(post_checkout(&t, &erin, &good), post_checkout(&t, &erin, &good));
    let (third_status, third_location, _) = post_checkout(&t, &erin, &good).await;
    for (status, location, body) in [first, second, (third_status, third_location, String::new())] {
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        assert!(location.starts_with("/subscriptions#subscription-"), "{location}");
    }
    let subscriptions = api(&t, &erin, "/api/v1/subscriptions").await;
    let subscriptions = subscriptions["subscriptions"].as_array().unwrap();
    assert_eq!(subscriptions.len(), 1, "{subscriptions:?}");
    assert_eq!(subscriptions[0]["status"], "active");
    let invoices = api(&t, &erin, "/api/v1/invoices").await;
    let invoices = invoices["invoices"].as_array().unwrap();
    assert_eq!(invoices.len(), 1, "one invoice: {invoices:?}");
    assert_eq!(invoices[0]["total"]["amount"], 5831);
    let invoice_id = invoices[0]["id"].as_str().unwrap();
    let number = invoices[0]["number"].as_str().unwrap();

    // My subscriptions: the subscription, its pull command and its invoice.
    let (status, mine) = page(&t, &erin, "/subscriptions").await;
    assert_eq!(status, StatusCode::OK);
    for shown in [
        "Nimbus Cache",
        "Active",
        "49.00 USD / month",
        "Renews ",
        "docker pull ",
        "nimbus/nimbus-cache-enterprise:",
        "Cancel at period end",
        "Cancel now",
    ] {
        assert!(mine.contains(shown), "/subscriptions shows {shown}: {mine}");
    }
    assert!(mine.contains(&format!("href=\"/invoices/{invoice_id}\"")), "{mine}");
    assert!(mine.contains(number) && mine.contains("Billed to Erin GmbH, DE"));

    // The invoice: seller, buyer, the line's tax, totals; and as a file.
    let (status, invoice) = page(&t, &erin, &format!("/invoices/{invoice_id}")).await;
    assert_eq!(status, StatusCode::OK);
    for shown in [
        "Invoice",
        number,
        "Nimbus",
        "Erin GmbH",
        "10115 DE",
        "Nimbus Cache Enterprise",
        "VAT 19%",
        "49.00 USD",
        "9.31 USD",
        "58.31 USD",
        "Subtotal",
    ] {
        assert!(invoice.contains(shown), "the invoice shows {shown}: {invoice}");
    }
    assert!(!invoice.contains("Reverse charge"));
    let download = t.request(Method::GET, &format!("/invoices/{invoice_id}/download")).header("cookie", &erin.cookie).send().await.unwrap();
    assert_eq!(download.status(), StatusCode::OK);
    assert_eq!(download.headers()["content-disposition"], format!("attachment; filename=\"{number}.html\"").as_str());
    assert!(download.text().await.unwrap().contains("58.31 USD"));

    // Nobody else sees it; signed out, it asks to sign in.
    let frank = customer(&t, "frank").await;
    assert_eq!(page(&t, &frank, &format!("/invoices/{invoice_id}")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(page(&t, &frank, &format!("/invoices/{invoice_id}/download")).await.0, StatusCode::NOT_FOUND);
    let anonymous = t.get(&format!("/invoices/{invoice_id}")).await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert!(anonymous.headers()["location"].to_str().unwrap().starts_with("/signin?next="));

    // Checkout again: already subscribed, said on the page, nothing charged.
    let (_, html) = page(&t, &erin, CHECKOUT).await;
    let (status, _, conflict) =
        post_checkout(&t, &erin, &checkout_fields(&erin, &html, &[("accept_license", "1"), ("payment_method", "4242424242424242")])).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(conflict.contains("You already have a subscription"), "{conflict}");
    assert_eq!(api(&t, &erin, "/api/v1/invoices").await["invoices"].as_array().unwrap().len(), 1);
}

/// Forms need the session's CSRF token and a signed-in account; the key names one request.
#[tokio::test]
async fn checkout_forms_refuse_forgeries_and_strangers() {
    let t = store().await;
    let gina = customer(&t, "gina").await;
    let (_, html) = page(&t, &gina, CHECKOUT).await;
    let billing = [("billing_name", "Gina"), ("billing_country", "US")];
    let mut fields = checkout_fields(&gina, &html, &[("accept_license", "1"), ("payment_method", "pm_card_visa")]);
    fields[0].1 = "0".repeat(64);
    assert_eq!(post_checkout(&t, &gina, &fields).await.0, StatusCode::FORBIDDEN);

    let anonymous = t.get(CHECKOUT).await;
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert_eq!(anonymous.headers()["location"], "/signin?next=%2Fcheckout%3Fproduct%3Dnimbus%252Fnimbus-cache%26tier%3Denterprise");
    let signed_out =
        t.request(Method::POST, "/checkout").form(&[("product", "nimbus/nimbus-cache"), ("tier", "enterprise")]).send().await.unwrap();
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    for path in ["/subscriptions/x/cancel", "/subscriptions/x/pay", "/billing"] {
        let response = t.request(Method::POST, path).form(&[("csrf", "x")]).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(response.headers()["location"].to_str().unwrap().starts_with("/signin"), "{path}");
    }

    // Billing details are required at the first paid checkout.
    let (status, _, body) =
        post_checkout(&t, &gina, &checkout_fields(&gina, &html, &[("accept_license", "1"), ("payment_method", "pm_card_visa")])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("Enter your billing details"), "{body}");

    // A key reused with another card is refused, and charges nothing.
    let mut first = checkout_fields(&gina, &html, &billing);
    first.extend([("accept_license", "1".into()), ("payment_method", "4000000000000002".into())]);
    assert_eq!(post_checkout(&t, &gina, &first).await.0, StatusCode::PAYMENT_REQUIRED);
    let mut reused = first.clone();
    reused.last_mut().unwrap().1 = "4242424242424242".into();
    let (status, _, body) = post_checkout(&t, &gina, &reused).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(api(&t, &gina, "/api/v1/subscriptions").await["subscriptions"].as_array().unwrap().is_empty());

    // Unknown products and tiers, and free tiers (got on the product page).
    assert_eq!(page(&t, &gina, "/checkout?product=nimbus/no-such&tier=enterprise").await.0, StatusCode::NOT_FOUND);
    assert_eq!(page(&t, &gina, "/checkout?product=nimbus/nimbus-cache&tier=no-such").await.0, StatusCode::NOT_FOUND);
    assert_eq!(page(&t, &gina, "/checkout?product=nonsense&tier=x").await.0, StatusCode::NOT_FOUND);
    let free =
        t.request(Method::GET, "/checkout?product=nimbus/nimbus-db&tier=developer").header("cookie", &gina.cookie).send().await.unwrap();
    assert_eq!(free.status(), StatusCode::SEE_OTHER);
    assert_eq!(free.headers()["location"], "/products/nimbus/nimbus-db#tiers");
}

/// The billing page: asked for at the first checkout when missing, editable, validated.
#[tokio::test]
async fn the_billing_profile_is_editable_and_validated() {
    let t = store().await;
    let hana = customer(&t, "hana").await;
    let (status, html) = page(&t, &hana, "/billing").await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("no billing details yet"));
    let (status, _, bad) = submit(&t, &hana, "/billing", &[("csrf", &hana.csrf), ("name", "Hana"), ("country", "Germany")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(bad.contains("is not a country code"), "{bad}");
    assert!(bad.contains("value=\"Germany\""), "the entry is kept");
    assert_eq!(t.call(&hana.caller, Method::GET, "/api/v1/billing-profile").send().await.unwrap().status(), StatusCode::NOT_FOUND);
    let (status, _, saved) =
        submit(&t, &hana, "/billing", &[("csrf", &hana.csrf), ("name", "Hana KK"), ("country", "jp"), ("tax_id", "")]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(saved.contains("Saved.") && saved.contains("value=\"JP\""), "{saved}");
    let (_, checkout) = page(&t, &hana, CHECKOUT).await;
    assert!(!checkout.contains("name=\"billing_name\""), "a saved profile is not asked for again");
    assert!(checkout.contains("Hana KK") && checkout.contains("href=\"/billing\""));
    assert_eq!(submit(&t, &hana, "/billing", &[("name", "x"), ("country", "DE")]).await.0, StatusCode::FORBIDDEN);

    // A tier with a free trial starts it without a card: nothing charged, no invoice.
    let (_, trial) = page(&t, &hana, "/checkout?product=nimbus/nimbus-db&tier=enterprise").await;
    assert!(trial.contains("Start 14-day free trial") && trial.contains("nothing is charged now"), "{trial}");
    let (status, location, body) = post_checkout(&t, &hana, &checkout_fields(&hana, &trial, &[("accept_license", "1")])).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(location.starts_with("/subscriptions#subscription-"));
    let (_, mine) = page(&t, &hana, "/subscriptions").await;
    assert!(mine.contains("Nimbus DB") && mine.contains("Free trial until "), "{mine}");
    assert!(api(&t, &hana, "/api/v1/invoices").await["invoices"].as_array().unwrap().is_empty());
}

/// Buys the checkout page's tier as `b` (billed to `name` in the US) with `card`;
/// returns the new subscription's id, from the page it redirects to.
async fn buy_from_page(t: &TestApp, b: &Browser, name: &str, card: &str) -> String {
    let (_, html) = page(t, b, CHECKOUT).await;
    let fields =
        checkout_fields(b, &html, &[("billing_name", name), ("billing_country", "US"), ("accept_license", "1"), ("payment_method", card)]);
    let (status, location, body) = post_checkout(t, b, &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    location.trim_start_matches("/subscriptions#subscription-").to_owned()
}

/// Cancelling at the period's end; a card that declines on renewal: payment due, Pay now
/// with a declined card then a good one; a refund's credit note among the invoices.
#[tokio::test]
async fn subscriptions_are_cancelled_paid_and_credited_from_their_page() {
    let t = store().await;
    let ivan = customer(&t, "ivan").await;
    let id = buy_from_page(&t, &ivan, "Ivan", "pm_card_declinedOffSession").await;

    // A month on, the renewal is declined: payment due, with the grace period's end and a Pay now form.
    t.app.jobs.advance_test_clock(Duration::from_secs(31 * 86_400)).await.unwrap();
    t.app.commerce.renew_due().await.unwrap();
    let ivan = signed_in(&t, "ivan").await;
    let (_, mine) = page(&t, &ivan, "/subscriptions").await;
    assert!(mine.contains("Payment due") && mine.contains("access ends"), "{mine}");
    assert!(mine.contains(&format!("action=\"/subscriptions/{id}/pay\"")), "{mine}");
    let pay_key = field(&mine, "key");
    let (status, _, declined) = submit(
        &t,
        &ivan,
        &format!("/subscriptions/{id}/pay"),
        &[("csrf", &ivan.csrf), ("key", &pay_key), ("payment_method", "4000000000000002")],
    )
    .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert!(declined.contains("Your card was declined."), "{declined}");
    let pay_key = field(&declined, "key");
    let pay = [("csrf", ivan.csrf.as_str()), ("key", &pay_key), ("payment_method", "4242 4242 4242 4242")];
    for _ in 0..2 {
        let (status, location, body) = submit(&t, &ivan, &format!("/subscriptions/{id}/pay"), &pay).await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
        assert_eq!(location, format!("/subscriptions#subscription-{id}"));
    }
    let invoices = api(&t, &ivan, "/api/v1/invoices").await;
    assert_eq!(invoices["invoices"].as_array().unwrap().len(), 2, "the renewal paid once: {invoices}");

    // Cancel: at the period's end, access kept until then; sent again, said so.
    let (status, _, _) = submit(&t, &ivan, &format!("/subscriptions/{id}/cancel"), &[("csrf", "forged")]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, location, _) =
        submit(&t, &ivan, &format!("/subscriptions/{id}/cancel"), &[("csrf", &ivan.csrf), ("when", "period_end")]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, format!("/subscriptions#subscription-{id}").as_str()));
    let (_, mine) = page(&t, &ivan, "/subscriptions").await;
    assert!(mine.contains("Canceled at period end") && mine.contains("does not renew"), "{mine}");
    assert!(!mine.contains(&format!("action=\"/subscriptions/{id}/cancel\"")), "no second cancel form");
    assert_eq!(api(&t, &ivan, "/api/v1/subscriptions").await["subscriptions"][0]["cancel_at_period_end"], true);
    // Another customer cannot cancel it.
    let jane = customer(&t, "jane").await;
    assert_eq!(submit(&t, &jane, &format!("/subscriptions/{id}/cancel"), &[("csrf", &jane.csrf)]).await.0, StatusCode::NOT_FOUND);

    // A refund by the store's staff: its credit note is listed and shown as one.
    t.app.auth.create_user("root", "root@example.com", PASSWORD, SiteRole::Admin).await.unwrap();
    let root = t.caller("root", PASSWORD, Via::Bearer).await;
    let refund = t
        .call(&root, Method::POST, "/api/v1/refunds")
        .header("idempotency-key", "page-refund")
        .json(&json!({"subscription": id, "amount": 1000, "reason": "outage"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refund.status(), StatusCode::CREATED);
    let refund: Value = refund.json().await.unwrap();
    let note = refund["credit_note"]["id"].as_str().unwrap();
    let (_, mine) = page(&t, &ivan, "/subscriptions").await;
    assert!(mine.contains(&format!("href=\"/invoices/{note}\"")) && mine.contains("Credit note"), "{mine}");
    let (status, credit) = page(&t, &ivan, &format!("/invoices/{note}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(credit.contains("Credit note") && credit.contains("credits invoice") && credit.contains("10.00 USD"), "{credit}");
}

/// "Cancel now" from /subscriptions ends the subscription and its access at once.
#[tokio::test]
async fn a_subscription_is_cancelled_at_once_from_its_page() {
    let t = store().await;
    let kay = customer(&t, "kay").await;
    let id = buy_from_page(&t, &kay, "Kay", "pm_card_visa").await;
    let (_, mine) = page(&t, &kay, "/subscriptions").await;
    assert!(mine.contains("Cancel now") && mine.contains("Cancel at period end"), "{mine}");
    assert!(t.can_pull("kay", PASSWORD, "nimbus/nimbus-cache-enterprise", "3.4").await);
    let (status, _, _) = submit(&t, &kay, &format!("/subscriptions/{id}/cancel"), &[("csrf", &kay.csrf), ("when", "now")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(api(&t, &kay, "/api/v1/subscriptions").await["subscriptions"][0]["status"], "canceled");
    assert!(!t.can_pull("kay", PASSWORD, "nimbus/nimbus-cache-enterprise", "3.4").await, "access ends at once");
}

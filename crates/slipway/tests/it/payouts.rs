//! Payouts and the publisher's sales page, on the demo store with the sandbox provider and
//! the test clock: sales and a trial shown to the publisher's owner, a refund through the
//! page's form (CSRF checked, a double click refunding once), the month's statement
//! generated once the month is over, marked paid (the ledger's payout with it), exported
//! as CSV, a month whose refunds exceed its sales carried over, and who may see any of it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slipway::config::Config;
use slipway::payouts::{PayoutsCommand, StatusFilter, output};
use slipway_auth::access::{OrgRole, SiteRole};

use slipway_test_support::{Backend, Caller, TestApp, Via};

const PASSWORD: &str = "payouts test password";
/// The demo's Nimbus Cache Enterprise: 49.00 USD a month, licensed, no trial.
const CACHE: &str = "nimbus/nimbus-cache";
/// The demo's Nimbus DB Enterprise: a 14-day trial, then 199.00 USD a month.
const DB: &str = "nimbus/nimbus-db";
const SALES: &str = "/publishers/nimbus/sales";

async fn store() -> TestApp {
    let backend = Backend::with(|c: &mut Config| {
        c.testing.clock = true;
        c.commerce.renewal_interval_secs = 0;
        c.auth.mode = slipway::config::AuthMode::Enforced;
    })
    .await;
    let t = backend.spawn().await;
    slipway::demo::load(&t.app).await.expect("demo loads");
    t
}

async fn user(t: &TestApp, name: &str) {
    t.app.auth.create_user(name, &format!("{name}@example.com"), PASSWORD, SiteRole::User).await.unwrap();
}

async fn post(t: &TestApp, caller: &Caller, path: &str, key: &str, body: &Value) -> (StatusCode, Value) {
    let response = t.call(caller, Method::POST, path).header("idempotency-key", key).json(body).send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

/// Buys `product`'s enterprise tier for `name` with a test card; the subscription's id.
async fn buy(t: &TestApp, name: &str, product: &str) -> String {
    let caller = t.caller(name, PASSWORD, Via::Bearer).await;
    let body = json!({"product": product, "tier": "enterprise", "accept_license": 1, "payment_method": "pm_card_visa"});
    let (status, bought) = post(t, &caller, "/api/v1/checkout", &format!("buy-{name}-{product}"), &body).await;
    assert_eq!(status, StatusCode::CREATED, "{bought}");
    bought["subscription"]["id"].as_str().unwrap().to_owned()
}

/// A page fetched with a session cookie: status and body.
async fn page(t: &TestApp, cookie: &str, path: &str) -> (StatusCode, String) {
    let response = t.request(Method::GET, path).header("cookie", cookie).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// The value of the refund form's `key` field in the row of subscription `id`.
fn form_key(html: &str, id: &str) -> String {
    let row = &html[html.find(&format!("id=\"subscription-{id}\"")).expect("the subscription is listed")..];
    let at = row.find("name=\"key\" value=\"").expect("its row has a refund form") + "name=\"key\" value=\"".len();
    row[at..at + 64].to_owned()
}

async fn refund_form(t: &TestApp, cookie: &str, fields: &[(&str, &str)]) -> reqwest::Response {
    t.request(Method::POST, &format!("{SALES}/refund")).header("cookie", cookie).form(fields).send().await.unwrap()
}

async fn sales_api(t: &TestApp, caller: &Caller) -> Value {
    let response = t.call(caller, Method::GET, "/api/v1/publishers/nimbus/sales").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json().await.unwrap()
}

/// `YYYY-MM` of the test clock's now.
fn this_month(t: &TestApp) -> String {
    humantime::format_rfc3339(t.app.jobs.clock().now()).to_string()[..7].to_owned()
}

/// Moves the test clock an hour past the end of the current month; that month.
async fn finish_month(t: &TestApp) -> String {
    let month = this_month(t);
    let (_, end) = slipway_commerce::month_bounds(&month).unwrap();
    let now = t.app.jobs.clock().now_ms();
    t.app.jobs.advance_test_clock(Duration::from_millis((end - now) as u64 + 3_600_000)).await.unwrap();
    month
}

async fn payouts(t: &TestApp, command: PayoutsCommand) -> anyhow::Result<String> {
    output(&t.app, command).await
}

/// `slipway ARGS` on the test's data directory and database, with the test clock.
fn slipway(t: &TestApp, args: &[&str]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"));
    command.current_dir(dir.path()).arg("--data-dir").arg(&t.app.config.data_dir).arg("--database-url").arg(t.app.config.database_url());
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SLIPWAY_")) {
        command.env_remove(name);
    }
    command.env("SLIPWAY_TESTING__CLOCK", "true").env("SLIPWAY_LOG__FILTER", "error");
    command.args(args).output().expect("slipway runs")
}

async fn ledger_is_sound(t: &TestApp) {
    let report = t.app.db.ledger().verify().await.unwrap();
    assert_eq!(report.problem_count, 0, "{:?}", report.problems);
    let problems = t.app.commerce.verify().await.unwrap();
    assert!(problems.is_empty(), "{problems:?}");
}

async fn payable(t: &TestApp) -> i64 {
    let balances = t.app.db.ledger().balances("publisher:nimbus:payable", 10).await.unwrap();
    balances.iter().map(|b| b.balance).sum()
}

#[tokio::test]
async fn a_month_of_sales_is_refunded_on_the_page_stated_paid_out_and_carried_over() {
    let t = store().await;
    for name in ["olga", "carol", "dave", "erin", "frank"] {
        user(&t, name).await;
    }
    t.app.auth.set_member("nimbus", "olga", OrgRole::Owner).await.unwrap();
    let carol = buy(&t, "carol", CACHE).await;
    let dave = buy(&t, "dave", CACHE).await;
    let erin = buy(&t, "erin", DB).await;

    // The owner's sales page: orders, subscriptions with the trial marked, refund forms.
    let (cookie, csrf) = t.sign_in("olga", PASSWORD).await;
    let (status, html) = page(&t, &cookie, SALES).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    for shown in ["NIMBUS-000001", "NIMBUS-000002", "carol", "dave", "erin", "Trial", "No statements yet", "49.00 USD"] {
        assert!(html.contains(shown), "{shown} missing");
    }
    let (portal_status, portal) = page(&t, &cookie, "/publish").await;
    assert_eq!(portal_status, StatusCode::OK);
    assert!(portal.contains("href=\"/publishers/nimbus/sales\""), "the portal links to the sales page");
    let erin_row = &html[html.find(&format!("id=\"subscription-{erin}\"")).unwrap()..];
    assert!(erin_row[..erin_row.find("</tr>").unwrap()].contains("Nothing to refund"), "a trial has paid nothing");
    let key = form_key(&html, &carol);
    let mut fields = [
        ("csrf", ""),
        ("key", key.as_str()),
        ("subscription", carol.as_str()),
        ("amount", "9.00"),
        ("currency", "USD"),
        ("reason", "outage"),
    ];

    // Without the CSRF token: 403, nothing refunded.
    let response = refund_form(&t, &cookie, &fields).await;
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let olga_api = t.caller("olga", PASSWORD, Via::Bearer).await;
    assert_eq!(sales_api(&t, &olga_api).await["refunds"].as_array().unwrap().len(), 0);
    // With it, a refund of 9.00; the same form sent twice (a double click) refunds once.
    fields[0].1 = &csrf;
    for _ in 0..2 {
        let response = refund_form(&t, &cookie, &fields).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(response.headers()["location"], format!("{SALES}?refunded=1"));
    }
    let sales = sales_api(&t, &olga_api).await;
    let refunds = sales["refunds"].as_array().unwrap();
    assert_eq!(refunds.len(), 1, "{refunds:?}");
    assert_eq!((refunds[0]["amount"]["amount"].as_i64(), refunds[0]["reason"].as_str()), (Some(900), Some("outage")));
    assert_eq!(refunds[0]["refunded_by"], "olga");
    let carol_row = sales["subscriptions"].as_array().unwrap().iter().find(|s| s["id"] == carol.as_str()).unwrap().clone();
    assert_eq!(carol_row["refundable"]["amount"], 4000);
    let erin_api = sales["subscriptions"].as_array().unwrap().iter().find(|s| s["id"] == erin.as_str()).unwrap().clone();
    assert_eq!((erin_api["trialing"].as_bool(), erin_api["refundable"].is_null()), (Some(true), true));
    // Too much is refused on the page, with nothing written.
    let key = form_key(&page(&t, &cookie, SALES).await.1, &carol);
    let mut too_much = fields;
    too_much[1].1 = &key;
    too_much[3].1 = "41.00";
    let response = refund_form(&t, &cookie, &too_much).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("too much"));
    assert_eq!(sales_api(&t, &olga_api).await["refunds"].as_array().unwrap().len(), 1);

    // The month is stated once it is over.
    let month = this_month(&t);
    let early = payouts(&t, PayoutsCommand::Generate { month: month.clone() }).await.unwrap_err();
    assert!(early.to_string().contains("not over yet"), "{early}");
    assert_eq!(finish_month(&t).await, month);
    let made = payouts(&t, PayoutsCommand::Generate { month: month.clone() }).await.unwrap();
    assert!(made.starts_with(&format!("{month}: 1 statement(s) created, 0 existed already")), "{made}");
    let again = payouts(&t, PayoutsCommand::Generate { month: month.clone() }).await.unwrap();
    assert!(again.starts_with(&format!("{month}: 0 statement(s) created, 1 existed already")), "{again}");
    let id = format!("nimbus-{month}-USD");
    let open = payouts(&t, PayoutsCommand::List { status: Some(StatusFilter::Open), publisher: Some("nimbus".into()) }).await.unwrap();
    assert!(open.contains(&id) && open.contains("71.20 USD"), "{open}");
    // 98.00 sold, 9.00 refunded, fee 19.60 less 1.80 given back: 71.20 due.
    let olga_api = t.caller("olga", PASSWORD, Via::Bearer).await;
    let statements: Value =
        t.call(&olga_api, Method::GET, "/api/v1/publishers/nimbus/statements").send().await.unwrap().json().await.unwrap();
    let s = &statements["statements"][0];
    let amounts: Vec<i64> = ["gross", "refunds", "tax", "platform_fee", "carried_in", "net", "net_due", "carried_over"]
        .iter()
        .map(|f| s[f]["amount"].as_i64().unwrap())
        .collect();
    assert_eq!(amounts, [9800, 900, 0, 1780, 0, 7120, 7120, 0], "{s}");
    assert_eq!(s["status"], "open");
    ledger_is_sound(&t).await;

    // Marked paid once, with the ledger's payout; a second mark is refused.
    let paid = payouts(&t, PayoutsCommand::MarkPaid { id: id.clone(), reference: "WIRE-2027-001".into() }).await.unwrap();
    assert!(paid.contains("71.20 USD"), "{paid}");
    let twice = payouts(&t, PayoutsCommand::MarkPaid { id: id.clone(), reference: "WIRE-2027-002".into() }).await.unwrap_err();
    assert!(twice.to_string().contains("paid already"), "{twice}");
    let bad = payouts(&t, PayoutsCommand::MarkPaid { id: id.clone(), reference: "=cmd()".into() }).await.unwrap_err();
    assert!(bad.to_string().contains("payment reference"), "{bad}");
    assert_eq!(payable(&t).await, 0, "everything owed for the month was paid out");
    let payouts_cash = t.app.db.ledger().balances("cash:payouts", 10).await.unwrap();
    assert_eq!(payouts_cash.iter().map(|b| b.balance).collect::<Vec<_>>(), [-7120]);
    ledger_is_sound(&t).await;

    // The CSV, from the command and from the page.
    let csv = payouts(&t, PayoutsCommand::Csv { month: month.clone() }).await.unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "statement,publisher,month,currency,gross,refunds,tax,platform_fee,carried_in,net,net_due,carried_over,status,reference,paid_at"
    );
    let row: Vec<&str> = lines[1].split(',').collect();
    assert_eq!(
        row[..14],
        [id.as_str(), "nimbus", &month, "USD", "98.00", "9.00", "0.00", "17.80", "0.00", "71.20", "71.20", "0.00", "paid", "WIRE-2027-001"]
    );
    assert!(row[14].ends_with('Z') && row[14].len() == 20, "{}", row[14]);
    assert_eq!(lines.len(), 2);
    // The real binary, on the same database, says the same.
    let out = slipway(&t, &["admin", "payouts", "csv", "--month", &month]);
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8(out.stdout).unwrap(), csv);
    let out = slipway(&t, &["admin", "payouts", "list", "--status", "paid", "--publisher", "nimbus"]);
    assert!(out.status.success() && String::from_utf8_lossy(&out.stdout).contains("WIRE-2027-001"), "{out:?}");
    let out = slipway(&t, &["admin", "payouts", "mark-paid", &id, "--reference", "WIRE-9"]);
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("paid already"), "{out:?}");
    let (cookie, csrf) = t.sign_in("olga", PASSWORD).await;
    let response = t.request(Method::GET, &format!("{SALES}/statements.csv")).header("cookie", &cookie).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(response.headers()["content-disposition"].to_str().unwrap().contains("nimbus-statements.csv"));
    assert_eq!(response.text().await.unwrap(), csv);
    let html = page(&t, &cookie, SALES).await.1;
    assert!(html.contains("ref. WIRE-2027-001") && html.contains("71.20 USD"), "the page shows the paid statement");

    // Next month the rest of Carol's payment and all of Dave's are refunded, nothing sold:
    // refunds exceed sales, nothing is due and the balance is carried over.
    for subscription in [&carol, &dave] {
        let key = form_key(&page(&t, &cookie, SALES).await.1, subscription);
        let fields = [("csrf", csrf.as_str()), ("key", &key), ("subscription", subscription), ("amount", ""), ("currency", "USD")];
        assert_eq!(refund_form(&t, &cookie, &fields).await.status(), StatusCode::SEE_OTHER);
    }
    let second = finish_month(&t).await;
    payouts(&t, PayoutsCommand::Generate { month: second.clone() }).await.unwrap();
    let second_id = format!("nimbus-{second}-USD");
    let listed = t.app.commerce.list_statements(None, Some("nimbus"), Some(&second)).await.unwrap();
    let s = &listed[0];
    // 89.00 refunded, 17.80 of fee given back: -71.20, carried over.
    assert_eq!(
        (s.gross.amount, s.refunds.amount, s.platform_fee.amount, s.net.amount, s.net_due.amount, s.carried_over.amount),
        (0, 8900, -1780, -7120, 0, -7120)
    );
    let nothing = payouts(&t, PayoutsCommand::MarkPaid { id: second_id.clone(), reference: "WIRE-2".into() }).await.unwrap_err();
    assert!(nothing.to_string().contains("nothing due"), "{nothing}");

    // The month after, a sale of 49.00 (39.20 after the fee) only reduces what is carried.
    buy(&t, "frank", CACHE).await;
    let third = finish_month(&t).await;
    payouts(&t, PayoutsCommand::Generate { month: third.clone() }).await.unwrap();
    let s = t.app.commerce.list_statements(None, None, Some(&third)).await.unwrap().remove(0);
    assert_eq!((s.gross.amount, s.carried_in.amount, s.net.amount, s.net_due.amount), (4900, -7120, -3200, 0));
    let old = payouts(&t, PayoutsCommand::Generate { month: "2020-01".into() }).await.unwrap();
    assert!(old.starts_with("2020-01: 0 statement(s) created"), "a month without sales states nothing: {old}");
    ledger_is_sound(&t).await;
    let open = payouts(&t, PayoutsCommand::List { status: Some(StatusFilter::Paid), publisher: None }).await.unwrap();
    assert_eq!(open.lines().count(), 2, "the header and the one paid statement: {open}");
}

/// Only the publisher's owners and administrators see its sales or refund its customers:
/// a customer and another publisher's owner find nothing (404), a maintainer is refused
/// (403), an anonymous visitor is sent to sign in (401 from the API).
#[tokio::test]
async fn sales_are_refused_to_everyone_but_the_publishers_owners_and_admins() {
    let t = store().await;
    for name in ["carol", "mallory", "max"] {
        user(&t, name).await;
    }
    t.app.auth.create_user("root", "root@example.com", PASSWORD, SiteRole::Admin).await.unwrap();
    t.app.auth.create_organization("otherco", "mallory").await.unwrap();
    t.app.auth.set_member("nimbus", "max", OrgRole::Maintainer).await.unwrap();
    // The name on Carol's invoices is hers to choose, markup included.
    let carol = t.caller("carol", PASSWORD, Via::Bearer).await;
    let profile = json!({"name": "<script>alert(1)</script> & Co", "country": "US"});
    let response = t.call(&carol, Method::PUT, "/api/v1/billing-profile").json(&profile).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let carol_sub = buy(&t, "carol", CACHE).await;

    for (name, status) in [("carol", StatusCode::NOT_FOUND), ("mallory", StatusCode::NOT_FOUND), ("max", StatusCode::FORBIDDEN)] {
        let (cookie, csrf) = t.sign_in(name, PASSWORD).await;
        assert_eq!(page(&t, &cookie, SALES).await.0, status, "{name}'s page");
        let csv = t.request(Method::GET, &format!("{SALES}/statements.csv")).header("cookie", &cookie).send().await.unwrap();
        assert_eq!(csv.status(), status, "{name}'s CSV");
        let api = t.caller(name, PASSWORD, Via::Bearer).await;
        for path in ["/api/v1/publishers/nimbus/sales", "/api/v1/publishers/nimbus/statements"] {
            assert_eq!(t.call(&api, Method::GET, path).send().await.unwrap().status(), status, "{name}: {path}");
        }
        // A form made up with the caller's own session refunds nothing.
        let key = "a".repeat(64);
        let fields = [("csrf", csrf.as_str()), ("key", &key), ("subscription", &carol_sub), ("amount", "1.00"), ("currency", "USD")];
        assert_eq!(refund_form(&t, &cookie, &fields).await.status(), status, "{name}'s refund");
    }
    let anonymous = t.request(Method::GET, SALES).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::SEE_OTHER);
    assert!(anonymous.headers()["location"].to_str().unwrap().starts_with("/signin?next="));
    let api = t.request(Method::GET, "/api/v1/publishers/nimbus/sales").send().await.unwrap();
    assert_eq!(api.status(), StatusCode::UNAUTHORIZED);
    let posted = t.request(Method::POST, &format!("{SALES}/refund")).form(&[("subscription", carol_sub.as_str())]).send().await.unwrap();
    assert_eq!(posted.status(), StatusCode::SEE_OTHER, "sent to sign in");

    // An administrator sees it all; nothing was refunded by the others.
    let root = t.caller("root", PASSWORD, Via::Bearer).await;
    let sales = sales_api(&t, &root).await;
    assert_eq!(sales["refunds"].as_array().unwrap().len(), 0);
    assert_eq!(sales["orders"].as_array().unwrap().len(), 1);
    assert_eq!(t.call(&root, Method::GET, "/api/v1/publishers/nobody/sales").send().await.unwrap().status(), StatusCode::NOT_FOUND);
    assert_eq!(sales["orders"][0]["customer"], "<script>alert(1)</script> & Co");
    let doc: Value = t.get("/api/openapi.json").await.json().await.unwrap();
    for path in ["/api/v1/publishers/{org}/sales", "/api/v1/publishers/{org}/statements"] {
        let security = doc["paths"][path]["get"]["security"].as_array().expect("described, with who may call it").clone();
        assert!(security.iter().any(|s| s.get("bearer").is_some()), "{path}: {security:?}");
    }
    // The customer's markup reaches the page escaped.
    let (cookie, _) = t.sign_in("root", PASSWORD).await;
    let html = page(&t, &cookie, SALES).await.1;
    assert!(html.contains("&#60;script&#62;alert(1)&#60;/script&#62; &#38; Co"), "escaped");
    assert!(!html.contains("<script>alert"), "never as markup");
}

//! Property tests of the store's money: random sequences of checkouts, clock moves with
//! renewals, declines, payments, upgrades and downgrades, cancellations, refunds and
//! monthly payouts, on a
//! fresh store each. After every step: the ledger balances and agrees with invoices,
//! payments and refunds; no period is charged twice; and the registry's entitlement holds
//! exactly while a subscription is paid for, in trial or in its grace period.

use std::time::Duration;

use proptest::prelude::*;
use slipway::config::Config;
use slipway_auth::access::SiteRole;
use slipway_catalog::media::MediaKind;
use slipway_catalog::{Access, Actor, ListingInput, ProductType, PublisherInput, Tier, Viewer};
use slipway_commerce::{CheckoutInput, RefundInput, Subscription, TaxRate};
use slipway_test_support::{Backend, TestApp};

const DAY_MS: i64 = 86_400_000;
const GRACE_DAYS: i64 = 7;
const PRODUCT: &str = "acme/rocket";
const TIERS: [&str; 3] = ["team", "enterprise", "trial"];
const CARDS: [&str; 3] = ["pm_card_visa", "pm_card_chargeDeclined", "pm_card_declinedOffSession"];

#[derive(Clone, Debug)]
enum Op {
    Checkout {
        tier: usize,
        card: usize,
    },
    Advance {
        days: u8,
    },
    Cancel {
        at_period_end: bool,
    },
    Pay {
        card: usize,
    },
    Change {
        tier: usize,
    },
    Refund {
        part: Option<u8>,
    },
    /// Last month's statements generated (if it is over) and every open one paid out.
    Payout,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..3usize, 0..3usize).prop_map(|(tier, card)| Op::Checkout { tier, card }),
        4 => (1..40u8).prop_map(|days| Op::Advance { days }),
        1 => any::<bool>().prop_map(|at_period_end| Op::Cancel { at_period_end }),
        1 => (0..3usize).prop_map(|card| Op::Pay { card }),
        1 => (0..2usize).prop_map(|tier| Op::Change { tier }),
        1 => proptest::option::of(1..100u8).prop_map(|part| Op::Refund { part }),
        1 => Just(Op::Payout),
    ]
}

fn tier(slug: &str, amount: i64, trial_days: i64) -> Tier {
    Tier {
        slug: slug.into(),
        name: slug.to_uppercase(),
        description: String::new(),
        amount,
        currency: "EUR".into(),
        billing_period: "month".into(),
        trial_days,
        access: Access::Licensed,
        repository: format!("acme/rocket-{slug}"),
        tags: Vec::new(),
    }
}

/// A store with one product of three paid monthly tiers (one with a week's trial), a tax
/// rate, a customer and an administrator.
async fn store() -> (TestApp, Viewer, Viewer) {
    let backend = Backend::with(|c: &mut Config| {
        c.testing.clock = true;
        c.commerce.renewal_interval_secs = 0;
        c.commerce.tax = vec![TaxRate { country: "FR".into(), region: None, rate_bps: 2000, name: "VAT".into() }];
    })
    .await;
    let t = backend.spawn().await;
    let admin = t.app.auth.create_user("root", "root@example.com", "property test password", SiteRole::Admin).await.unwrap();
    let admin = t.app.catalog.viewer(admin).await.unwrap();
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::new_rgb8(512, 512).write_to(&mut png, image::ImageFormat::Png).unwrap();
    let logo = t.app.catalog.upload_media(&admin, MediaKind::Logo, png.into_inner()).await.unwrap();
    let profile = PublisherInput {
        display_name: "Acme".into(),
        legal_name: "Acme SA".into(),
        website: "https://acme.example".into(),
        phone: "+33 1 00 00 00 00".into(),
        email: "store@acme.example".into(),
        logo: Some(logo.clone()),
        story: String::new(),
    };
    t.app.catalog.save_publisher(&admin, "acme", &profile, "http://localhost").await.unwrap();
    let admin = t.app.catalog.viewer(admin.account).await.unwrap();
    let listing = ListingInput {
        name: "Rocket".into(),
        logo: Some(logo),
        short_description: "Launches things.".into(),
        category: "devops-tools".into(),
        search_tags: Vec::new(),
        long_description: String::new(),
        screenshots: Vec::new(),
        support_url: "https://acme.example/help".into(),
        support_email: String::new(),
        support_info: String::new(),
        sla: String::new(),
        install_instructions: String::new(),
        product_type: ProductType::Image,
        runs_on: None,
        public_scan_summary: false,
        tiers: vec![tier("team", 1_990, 0), tier("enterprise", 4_990, 0), tier("trial", 990, 7)],
    };
    t.app.catalog.save_listing(&admin, "acme", None, &listing).await.unwrap();
    t.app.catalog.set_published(Actor::Operator, "acme", "rocket", true).await.unwrap();
    let customer = t.app.auth.create_user("cy", "cy@example.com", "property test password", SiteRole::User).await.unwrap();
    let customer = t.app.catalog.viewer(customer).await.unwrap();
    let billing = slipway_commerce::BillingProfile { name: "Cy".into(), country: "FR".into(), ..Default::default() };
    t.app.commerce.save_billing_profile(&customer, &billing).await.unwrap();
    (t, customer, admin)
}

/// The subscription the next step acts on: the newest live one, else the newest.
fn current(subscriptions: &[Subscription]) -> Option<&Subscription> {
    subscriptions.iter().find(|s| matches!(s.status.as_str(), "trialing" | "active" | "past_due")).or(subscriptions.first())
}

/// Whether a subscription entitles its customer at `now`, by the rule: while paid
/// for (until the period's end, and through the grace period unless cancelled), in trial,
/// or past due within the grace period after the unpaid period began.
fn should_be_entitled(s: &Subscription, now: i64, had_method: bool) -> bool {
    let grace = GRACE_DAYS * DAY_MS;
    match s.status.as_str() {
        "active" => s.current_period_end.is_some_and(|end| now < end + if s.cancel_at_period_end { 0 } else { grace }),
        "trialing" => s.trial_end.is_some_and(|end| now < end + if had_method && !s.cancel_at_period_end { grace } else { 0 }),
        "past_due" => s.current_period_end.is_some_and(|end| now < end + grace),
        _ => false,
    }
}

async fn check(t: &TestApp, customer: &Viewer, step: usize, op: &Op, methods: &std::collections::HashSet<String>) {
    let report = t.app.db.ledger().verify().await.unwrap();
    assert_eq!(report.problem_count, 0, "after step {step} {op:?}: {:?}", report.problems);
    let disagreements = t.app.commerce.verify().await.unwrap();
    assert!(disagreements.is_empty(), "after step {step} {op:?}: {disagreements:?}");
    // No period charged twice: one successful charge per subscription and period start.
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&t.app.config.database_url()).await.unwrap();
    let twice: Vec<(String, i64)> = sqlx::query_as(
        "SELECT p.subscription_id, COUNT(*) FROM payments p JOIN invoices i ON i.payment_id = p.id AND i.kind = 'invoice'
             JOIN invoice_lines l ON l.invoice_id = i.id AND l.position = 0
         WHERE p.status = 'succeeded' AND substr(p.idempotency_key, 1, 7) = 'charge:'
         GROUP BY p.subscription_id, l.period_start HAVING COUNT(*) > 1",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    if !twice.is_empty() {
        let payments: Vec<(String, String, String, i64)> =
            sqlx::query_as("SELECT id, status, idempotency_key, created_at FROM payments ORDER BY created_at")
                .fetch_all(&pool)
                .await
                .unwrap();
        panic!("after step {step} {op:?}: a period charged twice: {twice:?}\npayments: {payments:#?}");
    }
    pool.close().await;
    // The registry's view (the entitlements behind a pull token) against the rule.
    let now = t.app.commerce.clock().now_ms();
    let subject = t.app.auth.subject(&customer.account).await.unwrap();
    let subscriptions = t.app.commerce.subscriptions(customer, "registry.test").await.unwrap();
    for slug in TIERS {
        let entitlement = slipway_types::entitlement_id("acme", "rocket", slug);
        let expected =
            subscriptions.iter().filter(|s| s.tier == slug.to_uppercase()).any(|s| should_be_entitled(s, now, methods.contains(&s.id)));
        assert_eq!(
            subject.tiers.contains(&entitlement),
            expected,
            "after step {step} {op:?}: entitlement to {slug} at {now}: {subscriptions:#?}"
        );
    }
}

async fn run(ops: Vec<Op>) {
    let (t, customer, admin) = store().await;
    // Subscriptions bought with a payment method (a trial converts or gets grace then).
    let mut methods = std::collections::HashSet::new();
    for (step, op) in ops.iter().enumerate() {
        let subscriptions = t.app.commerce.subscriptions(&customer, "registry.test").await.unwrap();
        let target = current(&subscriptions).cloned();
        match op {
            Op::Checkout { tier, card } => {
                let input = CheckoutInput {
                    product: PRODUCT.into(),
                    tier: TIERS[*tier].into(),
                    accept_license: None,
                    payment_method: Some(CARDS[*card].into()),
                    billing: None,
                    idempotency: None,
                };
                if let Ok(done) = t.app.commerce.checkout(&customer, &input, "registry.test").await {
                    methods.insert(done.subscription.id);
                }
            }
            Op::Advance { days } => {
                t.app.jobs.advance_test_clock(Duration::from_secs(u64::from(*days) * 86_400)).await.unwrap();
                // Renewals run daily in a real store: as many runs as days passed (bounded).
                for _ in 0..(*days).min(12) {
                    t.app.commerce.renew_due().await.unwrap();
                }
            }
            Op::Cancel { at_period_end } => {
                if let Some(s) = &target {
                    let _ = t.app.commerce.cancel(&customer, &s.id, *at_period_end, "registry.test").await;
                }
            }
            Op::Pay { card } => {
                if let Some(s) = &target {
                    let _ = t.app.commerce.pay(&customer, &s.id, CARDS[*card], "registry.test").await;
                }
            }
            Op::Change { tier } => {
                if let Some(s) = &target {
                    let _ = t.app.commerce.change_tier(&customer, &s.id, TIERS[*tier], "registry.test").await;
                }
            }
            Op::Payout => {
                t.app.commerce.generate_last_month().await.unwrap();
                for statement in t.app.commerce.list_statements(Some("open"), None, None).await.unwrap() {
                    if statement.net_due.amount > 0 {
                        t.app.commerce.mark_statement_paid(&statement.id, "wire-1", "property").await.unwrap();
                    }
                }
                // What was paid out is gone from the publisher's payable balance, which
                // never owes the platform more than refunds carried over.
                let paid: i64 =
                    t.app.commerce.list_statements(Some("paid"), None, None).await.unwrap().iter().map(|s| s.net_due.amount).sum();
                let payouts = t.app.db.ledger().balances("cash:payouts", 10).await.unwrap();
                assert_eq!(payouts.iter().map(|b| -b.balance).sum::<i64>(), paid, "after step {step}: payouts in the ledger");
            }
            Op::Refund { part } => {
                if let Some(s) = &target {
                    let amount = part.map(|p| i64::from(p) * 10);
                    let input = RefundInput { subscription: s.id.clone(), amount, reason: "property".into() };
                    let _ = t.app.commerce.refund(&admin, &input).await;
                }
            }
        }
        eprintln!("step {step}: {op:?}");
        check(&t, &customer, step, op, &methods).await;
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, max_shrink_iters: 20, ..ProptestConfig::default() })]

    #[test]
    fn money_stays_exact_and_access_follows_payment(ops in proptest::collection::vec(op(), 1..14)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(run(ops));
    }
}

//! Issue 17: a product reaches the store through moderation. A publisher submits it
//! (eligible, supported where it must be, the publisher agreement accepted, an image
//! pushed for every tier); a moderator reviews it, asks for changes, approves it; the
//! publisher publishes it; a moderator can put it on hold and revoke it. Who may make each
//! move, what each side is mailed, and what customers see and may buy at each step.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slipway_auth::access::{OrgRole, Policy, SiteRole};

use slipway_test_support::{Backend, Caller, TestApp, Via};

pub(crate) const PASSWORD: &str = "moderation test password";
const PRODUCT: &str = "/api/v1/products/pia-co/widget-server";

pub(crate) async fn send(t: &TestApp, caller: &Caller, method: Method, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = t.call(caller, method, path).json(body).send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

pub(crate) async fn get(t: &TestApp, caller: &Caller, path: &str) -> (StatusCode, Value) {
    let response = t.call(caller, Method::GET, path).send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

pub(crate) async fn account(t: &TestApp, name: &str, role: SiteRole, via: Via) -> Caller {
    t.app.auth.create_user(name, &format!("{name}@example.com"), PASSWORD, role).await.unwrap();
    t.caller(name, PASSWORD, via).await
}

/// pia-co's publisher profile, with a logo, saved by `caller` (who becomes its owner).
pub(crate) async fn profile(t: &TestApp, caller: &Caller) {
    let mut png = std::io::Cursor::new(Vec::new());
    image::DynamicImage::new_rgb8(600, 600).write_to(&mut png, image::ImageFormat::Png).unwrap();
    let logo: Value =
        t.call(caller, Method::POST, "/api/v1/media?kind=logo").body(png.into_inner()).send().await.unwrap().json().await.unwrap();
    let profile = json!({"display_name": "Pia Inc", "legal_name": "Pia Inc.", "website": "https://example.com",
        "phone": "+1 555 0100", "email": "legal@pia.example", "logo": logo["id"], "story": "We make widgets."});
    let (status, body) = send(t, caller, Method::PUT, "/api/v1/publishers/pia-co", &profile).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Moves the product as `caller`; the status and the answer.
async fn move_to(t: &TestApp, caller: &Caller, status: &str, message: &str) -> (StatusCode, Value) {
    send(t, caller, Method::PUT, &format!("{PRODUCT}/status"), &json!({"status": status, "message": message})).await
}

/// Moves the product's pending revision as `caller`.
async fn revise(t: &TestApp, caller: &Caller, status: &str) -> (StatusCode, Value) {
    send(t, caller, Method::PUT, &format!("{PRODUCT}/revision/status"), &json!({"status": status, "message": ""})).await
}

fn listing(runs_on: Option<&str>, support_email: &str) -> Value {
    json!({
        "name": "Widget Server", "short_description": "Serves widgets.", "category": "web-servers",
        "long_description": "Fast.", "support_url": "https://example.com/help", "support_email": support_email,
        "product_type": "image", "runs_on": runs_on,
        "tiers": [{"slug": "free", "name": "Free", "access": "public", "repository": "pia-co/widget-server", "tags": ["1.0"]}],
    })
}

/// The outbox's messages to `recipient`, as (subject, body).
pub(crate) async fn mail_to(t: &TestApp, recipient: &str) -> Vec<(String, String)> {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&t.app.config.database_url()).await.unwrap();
    let mail = sqlx::query_as("SELECT subject, body FROM outbox WHERE recipient = $1 ORDER BY created_at, id")
        .bind(recipient)
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    mail
}

#[tokio::test]
async fn a_submission_is_reviewed_changed_approved_published_held_and_revoked() {
    let t = Backend::new().await.spawn().await;
    let pia = account(&t, "pia", SiteRole::User, Via::Session).await;
    profile(&t, &pia).await;
    let mona = account(&t, "mona", SiteRole::Moderator, Via::Bearer).await;
    // A moderator who is also a maintainer of the publisher: a conflict of interest.
    let max = account(&t, "max", SiteRole::Moderator, Via::Bearer).await;
    t.app.auth.set_member("pia-co", "max", OrgRole::Maintainer).await.unwrap();
    let cy = account(&t, "cy", SiteRole::User, Via::Bearer).await;
    let anonymous = Caller::Anonymous;

    // A draft without where it runs, the agreement or an image: every gap at once.
    let (status, body) = send(&t, &pia, Method::POST, "/api/v1/publishers/pia-co/products", &listing(None, "")).await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::CREATED, Some("draft")), "{body}");
    let (status, body) = move_to(&t, &pia, "submitted", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let detail = body["detail"].as_str().unwrap();
    for gap in ["runs_on", "publisher agreement (version 1)", "push an image to pia-co/widget-server with one of the tags 1.0"] {
        assert!(detail.contains(gap), "{gap:?} in {detail}");
    }
    // Where it runs decides: nowhere certified cannot be published; Enterprise needs support.
    for (runs_on, support_email, gap) in
        [("neither", "help@pia.example", "cannot be published in the store"), ("enterprise", "", "needs its publisher's support")]
    {
        let (status, body) = send(&t, &pia, Method::PUT, PRODUCT, &listing(Some(runs_on), support_email)).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        let (status, body) = move_to(&t, &pia, "submitted", "").await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["detail"].as_str().unwrap().contains(gap), "{runs_on}: {body}");
    }
    let (status, body) = send(&t, &pia, Method::PUT, PRODUCT, &listing(Some("enterprise"), "help@pia.example")).await;
    assert_eq!((status, body["runs_on"].as_str()), (StatusCode::OK, Some("enterprise")), "{body}");

    // The publisher agreement: only its current version, only by the publisher's editors.
    let (_, agreement) = get(&t, &anonymous, "/api/v1/publisher-agreement").await;
    assert_eq!(agreement["version"], 1);
    assert!(agreement["text"].as_str().unwrap().contains("72 hours"));
    let (status, _) = send(&t, &cy, Method::PUT, "/api/v1/publishers/pia-co/agreement", &json!({"version": 1})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a customer does not accept for pia-co");
    let (status, _) = send(&t, &pia, Method::PUT, "/api/v1/publishers/pia-co/agreement", &json!({"version": 2})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "not the current version");
    let (status, _) = send(&t, &pia, Method::PUT, "/api/v1/publishers/pia-co/agreement", &json!({"version": 1})).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(get(&t, &pia, "/api/v1/publishers/pia-co/agreement").await.1["accepted_version"], 1);
    assert_eq!(get(&t, &cy, "/api/v1/publishers/pia-co/agreement").await.0, StatusCode::NOT_FOUND);

    // An image under a tag the tier does not offer is not enough; under one it offers is.
    t.push_image("pia-co/widget-server", "nightly", b"nightly layer").await;
    let (status, body) = move_to(&t, &pia, "submitted", "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    t.push_image("pia-co/widget-server", "1.0", b"release layer").await;
    let other = account(&t, "otto", SiteRole::User, Via::Bearer).await;
    assert_eq!(move_to(&t, &other, "submitted", "").await.0, StatusCode::NOT_FOUND, "another publisher's draft is not there");
    let (status, body) = move_to(&t, &pia, "submitted", "Ready for review.").await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("submitted")), "{body}");
    let (status, body) = send(&t, &pia, Method::PUT, PRODUCT, &listing(Some("enterprise"), "help@pia.example")).await;
    assert_eq!(status, StatusCode::CONFLICT, "no edits under review: {body}");

    // The queue: moderators see it, customers see nothing in it; the product stays hidden.
    let (_, queue) = get(&t, &mona, "/api/v1/moderation/queue").await;
    assert_eq!(queue["submissions"][0]["slug"], "widget-server", "{queue}");
    assert_eq!(get(&t, &cy, "/api/v1/moderation/queue").await.1["submissions"], json!([]));
    assert_eq!(get(&t, &anonymous, PRODUCT).await.0, StatusCode::NOT_FOUND);

    // Review: changes requested (with a message, which is required), then resubmitted.
    assert_eq!(move_to(&t, &pia, "in_review", "").await.0, StatusCode::FORBIDDEN, "publishers do not review");
    assert_eq!(move_to(&t, &mona, "in_review", "").await.1["status"], "in_review");
    let (status, body) = move_to(&t, &mona, "changes_requested", "  ").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert_eq!(move_to(&t, &mona, "changes_requested", "Add install instructions.").await.1["status"], "changes_requested");
    assert_eq!(move_to(&t, &mona, "approved", "").await.0, StatusCode::CONFLICT, "changes were requested");
    let (status, _) = send(&t, &pia, Method::POST, &format!("{PRODUCT}/review"), &json!({"message": "Added them."})).await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(move_to(&t, &pia, "submitted", "").await.1["status"], "submitted");

    // Approval: not by the publisher, not by a moderator who is its member.
    assert_eq!(move_to(&t, &pia, "approved", "").await.0, StatusCode::FORBIDDEN);
    let (status, body) = move_to(&t, &max, "approved", "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("member of pia-co"), "{body}");
    assert_eq!(move_to(&t, &mona, "approved", "").await.1["status"], "approved");
    assert_eq!(get(&t, &anonymous, PRODUCT).await.0, StatusCode::NOT_FOUND, "approved is not yet published");
    assert_eq!(t.app.auth.policy("pia-co/widget-server").await.unwrap(), Policy::Staging);
    let (status, body) = move_to(&t, &pia, "published", "").await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("published")), "{body}");
    assert_eq!(get(&t, &anonymous, PRODUCT).await.0, StatusCode::OK);
    assert_eq!(t.app.auth.policy("pia-co/widget-server").await.unwrap(), Policy::Public);

    // The thread, in order, for the publisher and staff only; each side was mailed.
    let (_, thread) = get(&t, &pia, &format!("{PRODUCT}/review")).await;
    let moves: Vec<(&str, &str)> =
        thread["events"].as_array().unwrap().iter().map(|e| (e["actor"].as_str().unwrap(), e["to"].as_str().unwrap())).collect();
    assert_eq!(
        moves,
        [
            ("pia", "submitted"),
            ("mona", "in_review"),
            ("mona", "changes_requested"),
            ("pia", "changes_requested"),
            ("pia", "submitted"),
            ("mona", "approved"),
            ("pia", "published")
        ]
    );
    assert!(thread["events"][2]["message"].as_str().unwrap().ends_with("Add install instructions."), "{thread}");
    assert_eq!(get(&t, &cy, &format!("{PRODUCT}/review")).await.0, StatusCode::NOT_FOUND);
    assert_eq!(get(&t, &max, &format!("{PRODUCT}/review")).await.0, StatusCode::OK);
    let to_publisher = mail_to(&t, "legal@pia.example").await;
    assert!(
        to_publisher.iter().any(|(s, b)| s.contains("mona requested changes") && b.contains("Add install instructions.")),
        "{to_publisher:?}"
    );
    assert!(to_publisher.iter().any(|(s, _)| s.contains("mona approved")), "{to_publisher:?}");
    let to_moderators = mail_to(&t, "mona@example.com").await;
    assert!(to_moderators.iter().any(|(s, b)| s.contains("pia submitted") && b.contains("Ready for review.")), "{to_moderators:?}");
    assert!(to_moderators.iter().any(|(s, b)| s.contains("pia wrote") && b.contains("Added them.")), "{to_moderators:?}");

    // A change to the live listing is a revision: customers see the live one until a
    // moderator approves it, and it is submitted by the same rules.
    let mut changed = listing(Some("enterprise"), "help@pia.example");
    changed["name"] = json!("Widget Server Two");
    changed["tiers"][0]["tags"] = json!(["2.0"]);
    let (status, body) = send(&t, &pia, Method::PUT, PRODUCT, &changed).await;
    assert_eq!((status, body["name"].as_str()), (StatusCode::OK, Some("Widget Server")), "the live listing: {body}");
    assert_eq!(get(&t, &anonymous, PRODUCT).await.1["name"], "Widget Server");
    let (_, pending) = get(&t, &pia, &format!("{PRODUCT}/revision")).await;
    assert_eq!(pending["revision"]["status"], "draft", "{pending}");
    assert_eq!(pending["revision"]["changed"], json!(["name", "tiers"]), "{pending}");
    assert_eq!(pending["revision"]["listing"]["name"], "Widget Server Two");
    assert_eq!(get(&t, &cy, &format!("{PRODUCT}/revision")).await.0, StatusCode::NOT_FOUND, "customers do not see it");
    let (status, body) = revise(&t, &pia, "submitted").await;
    assert!(status == StatusCode::UNPROCESSABLE_ENTITY && body["detail"].as_str().unwrap().contains("tags 2.0"), "{status} {body}");
    t.push_image("pia-co/widget-server", "2.0", b"second release").await;
    assert_eq!(revise(&t, &pia, "submitted").await.1["revision"]["status"], "submitted");
    let (_, queue) = get(&t, &mona, "/api/v1/moderation/queue").await;
    assert_eq!(queue["submissions"][0]["revision"], true, "{queue}");
    assert_eq!(revise(&t, &pia, "approved").await.0, StatusCode::FORBIDDEN);
    assert_eq!(revise(&t, &max, "approved").await.0, StatusCode::FORBIDDEN, "a member moderator");
    let (status, body) = revise(&t, &mona, "approved").await;
    assert_eq!((status, &body["revision"]), (StatusCode::OK, &Value::Null), "{body}");
    assert_eq!(get(&t, &anonymous, PRODUCT).await.1["name"], "Widget Server Two", "approved: live");
    assert_eq!(get(&t, &pia, &format!("{PRODUCT}/revision")).await.1["revision"], Value::Null);
    assert_eq!(revise(&t, &pia, "submitted").await.0, StatusCode::NOT_FOUND, "nothing pending");

    // On hold: still shown and pullable, but nothing new is sold; a moderator lifts it.
    assert_eq!(move_to(&t, &mona, "on_hold", "").await.0, StatusCode::UNPROCESSABLE_ENTITY, "a hold says why");
    assert_eq!(move_to(&t, &pia, "on_hold", "").await.0, StatusCode::FORBIDDEN);
    assert_eq!(move_to(&t, &mona, "on_hold", "CVE-2026-0001 is past its deadline.").await.1["status"], "on_hold");
    assert_eq!(get(&t, &anonymous, PRODUCT).await.0, StatusCode::OK);
    let page = t.get("/products/pia-co/widget-server").await.text().await.unwrap();
    assert!(page.contains(r#"id="on-hold""#), "the product page warns");
    let (_, found) = get(&t, &anonymous, "/api/v1/search?q=widget").await;
    assert_eq!(found["items"][0]["on_hold"], true, "search results too: {found}");
    assert!(t.get("/search?q=widget").await.text().await.unwrap().contains("On hold: unfixed vulnerabilities"));
    assert_eq!(t.app.auth.policy("pia-co/widget-server").await.unwrap(), Policy::Public);
    let (status, body) = send(&t, &cy, Method::POST, &format!("{PRODUCT}/subscriptions"), &json!({"tier": "free"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("on hold"), "{body}");
    assert_eq!(move_to(&t, &mona, "published", "").await.1["status"], "published");
    assert!(!t.get("/products/pia-co/widget-server").await.text().await.unwrap().contains(r#"id="on-hold""#), "lifted");
    let (status, body) = send(&t, &cy, Method::POST, &format!("{PRODUCT}/subscriptions"), &json!({"tier": "free"})).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");

    // Moves the machine does not have are conflicts; revoked is final and closes the
    // repository.
    assert_eq!(move_to(&t, &pia, "draft", "").await.0, StatusCode::CONFLICT);
    assert_eq!(move_to(&t, &pia, "revoked", "").await.0, StatusCode::FORBIDDEN);
    assert_eq!(move_to(&t, &mona, "revoked", "Unfixed for a month.").await.1["status"], "revoked");
    assert_eq!(get(&t, &anonymous, PRODUCT).await.0, StatusCode::NOT_FOUND);
    assert_eq!(t.app.auth.policy("pia-co/widget-server").await.unwrap(), Policy::Staging);
    for status in ["submitted", "published", "draft"] {
        assert_eq!(move_to(&t, &pia, status, "").await.0, StatusCode::CONFLICT, "revoked -> {status}");
    }
    assert_eq!(get(&t, &pia, PRODUCT).await.1["status"], "revoked", "the publisher still sees it");
}

/// Two moderators acting on one submission at once: one move is made, the other is told
/// the listing changed; the thread records one.
#[tokio::test]
async fn concurrent_moves_make_one() {
    let t = Backend::new().await.spawn().await;
    let pia = account(&t, "pia", SiteRole::User, Via::Bearer).await;
    profile(&t, &pia).await;
    assert_eq!(send(&t, &pia, Method::PUT, "/api/v1/publishers/pia-co/agreement", &json!({"version": 1})).await.0, StatusCode::NO_CONTENT);
    let (status, body) = send(&t, &pia, Method::POST, "/api/v1/publishers/pia-co/products", &listing(Some("community"), "")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    t.push_image("pia-co/widget-server", "1.0", b"layer").await;
    assert_eq!(move_to(&t, &pia, "submitted", "").await.0, StatusCode::OK, "community products need no support email");
    let moderators =
        [account(&t, "mona", SiteRole::Moderator, Via::Bearer).await, account(&t, "mo", SiteRole::Moderator, Via::Bearer).await];
    let (a, b) = tokio::join!(move_to(&t, &moderators[0], "approved", ""), move_to(&t, &moderators[1], "changes_requested", "No."));
    let mut statuses = [a.0, b.0];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::OK, StatusCode::CONFLICT], "{a:?} {b:?}");
    let (_, thread) = get(&t, &pia, &format!("{PRODUCT}/review")).await;
    assert_eq!(thread["events"].as_array().unwrap().len(), 2, "{thread}");
}

/// The review forms of the web pages: the publisher's on its editor and the moderator's
/// console post moves and messages with the session's CSRF token (refused without it,
/// sent to sign in without a session); the queue and console are the moderators' (a
/// customer finds no console); messages are shown escaped.
#[tokio::test]
async fn the_review_pages_move_listings_with_the_session_and_its_csrf_token() {
    let t = Backend::new().await.spawn().await;
    let pia = account(&t, "pia", SiteRole::User, Via::Session).await;
    profile(&t, &pia).await;
    assert_eq!(send(&t, &pia, Method::PUT, "/api/v1/publishers/pia-co/agreement", &json!({"version": 1})).await.0, StatusCode::NO_CONTENT);
    let (status, body) = send(&t, &pia, Method::POST, "/api/v1/publishers/pia-co/products", &listing(Some("community"), "")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    t.push_image("pia-co/widget-server", "1.0", b"layer").await;
    let mona = account(&t, "mona", SiteRole::Moderator, Via::Session).await;
    let cy = account(&t, "cy", SiteRole::User, Via::Session).await;
    let session = |caller: &Caller| match caller {
        Caller::Session { cookie, csrf } => (cookie.clone(), csrf.clone()),
        other => panic!("{other:?} has no session"),
    };
    let post = |caller: Option<&Caller>, path: &'static str, to: &'static str, message: &'static str, good_token: bool| {
        let (cookie, csrf) = caller.map(session).unwrap_or_default();
        let csrf = if good_token { csrf } else { "0".repeat(64) };
        let request = t.request(Method::POST, path).form(&[("csrf", csrf.as_str()), ("to", to), ("message", message)]);
        async move { if cookie.is_empty() { request } else { request.header("cookie", cookie) }.send().await.unwrap() }
    };
    let page = |caller: &Caller, path: &'static str| {
        let (cookie, _) = session(caller);
        let request = t.request(Method::GET, path).header("cookie", cookie);
        async move {
            let answer = request.send().await.unwrap();
            (answer.status(), answer.text().await.unwrap())
        }
    };
    let editor_form = "/publish/pia-co/products/widget-server/review";
    let console = "/moderation/pia-co/widget-server";

    let (status, editor) = page(&pia, "/publish/pia-co/products/widget-server").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        editor.contains(r#"value="listing:submitted""#) && !editor.contains(r#"value="listing:approved""#),
        "the publisher's moves only"
    );
    assert_eq!(post(Some(&pia), editor_form, "listing:submitted", "", false).await.status(), StatusCode::FORBIDDEN, "a forged form");
    let anonymous = post(None, editor_form, "listing:submitted", "", true).await;
    assert!(anonymous.status().is_redirection() && anonymous.headers()["location"].to_str().unwrap().starts_with("/signin"));
    let moved = post(Some(&pia), editor_form, "listing:submitted", "<script>alert(1)</script>", true).await;
    assert_eq!(moved.status(), StatusCode::SEE_OTHER);
    assert_eq!(moved.headers()["location"], "/publish/pia-co/products/widget-server#review");
    assert_eq!(get(&t, &pia, PRODUCT).await.1["status"], "submitted");

    let (status, queue) = page(&mona, "/moderation").await;
    assert!(status == StatusCode::OK && queue.contains("Widget Server"), "{queue}");
    assert!(!page(&cy, "/moderation").await.1.contains("Widget Server"), "a customer's queue is empty");
    assert_eq!(page(&cy, console).await.0, StatusCode::NOT_FOUND);
    let (status, shown) = page(&mona, console).await;
    assert_eq!(status, StatusCode::OK);
    assert!(shown.contains(r#"value="listing:approved""#) && shown.contains("alert(1)") && !shown.contains("<script>alert"), "{shown}");
    let refused = post(Some(&mona), console, "listing:changes_requested", "", true).await;
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY, "a reason is required");
    assert_eq!(
        post(Some(&cy), console, "listing:approved", "", true).await.status(),
        StatusCode::NOT_FOUND,
        "a submission is not theirs to see"
    );
    assert_eq!(post(Some(&mona), console, "listing:approved", "", true).await.status(), StatusCode::SEE_OTHER);
    assert_eq!(get(&t, &pia, PRODUCT).await.1["status"], "approved");
    assert_eq!(post(Some(&mona), console, "nonsense", "", true).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

/// Hostile and malformed requests get clear refusals and write nothing: an unknown status,
/// a message over the bound, a move nobody signed in asks for, a revision of a listing
/// that is not live, the agreement for an organization one is not in.
#[tokio::test]
async fn bad_moderation_input_is_refused_clearly() {
    let t = Backend::new().await.spawn().await;
    let pia = account(&t, "pia", SiteRole::User, Via::Bearer).await;
    profile(&t, &pia).await;
    let (status, body) = send(&t, &pia, Method::POST, "/api/v1/publishers/pia-co/products", &listing(Some("community"), "")).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = send(&t, &pia, Method::PUT, &format!("{PRODUCT}/status"), &json!({"status": "bogus"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let long = "x".repeat(10_001);
    let (status, body) = move_to(&t, &pia, "submitted", &long).await;
    assert!(status == StatusCode::UNPROCESSABLE_ENTITY && body["detail"].as_str().unwrap().contains("message"), "{status} {body}");
    let (status, body) = send(&t, &pia, Method::POST, &format!("{PRODUCT}/review"), &json!({"message": long})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, _) = send(&t, &pia, Method::POST, &format!("{PRODUCT}/review"), &json!({"message": " \n "})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "an empty message");
    assert_eq!(move_to(&t, &Caller::Anonymous, "submitted", "").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(get(&t, &Caller::Anonymous, "/api/v1/moderation/queue").await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(revise(&t, &pia, "submitted").await.0, StatusCode::NOT_FOUND, "a draft has no revision");
    assert_eq!(get(&t, &pia, &format!("{PRODUCT}/revision")).await.1["revision"], Value::Null);
    let other = account(&t, "otto", SiteRole::User, Via::Bearer).await;
    let (status, _) = send(&t, &other, Method::PUT, "/api/v1/publishers/pia-co/agreement", &json!({"version": 1})).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (_, thread) = get(&t, &pia, &format!("{PRODUCT}/review")).await;
    assert_eq!(thread["events"], json!([]), "nothing was written");
    assert_eq!(get(&t, &pia, PRODUCT).await.1["status"], "draft");
}

/// Per-tag release on a registry that enforces authentication: customers pull the tags a
/// tier offers (its patterns) as they were released, and by digest only what a release
/// references; a tag pushed after publication, or pushed again, waits for a moderator's
/// release; members and staff pull everything; revoking closes it all.
#[tokio::test]
async fn customers_pull_released_versions_only() {
    let t = Backend::enforced().await.spawn().await;
    let pia = account(&t, "pia", SiteRole::User, Via::Bearer).await;
    profile(&t, &pia).await;
    assert_eq!(send(&t, &pia, Method::PUT, "/api/v1/publishers/pia-co/agreement", &json!({"version": 1})).await.0, StatusCode::NO_CONTENT);
    let mut offered = listing(Some("community"), "");
    offered["tiers"][0]["tags"] = json!(["1.*"]);
    let (status, body) = send(&t, &pia, Method::POST, "/api/v1/publishers/pia-co/products", &offered).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let repo = "pia-co/widget-server";
    let first = t.push_image_as("pia", PASSWORD, repo, "1.0", b"one").await;
    let outside = t.push_image_as("pia", PASSWORD, repo, "nightly", b"nightly").await;
    let mona = account(&t, "mona", SiteRole::Moderator, Via::Bearer).await;
    account(&t, "cy", SiteRole::User, Via::Bearer).await;
    for (who, status) in [(&pia, "submitted"), (&mona, "approved"), (&pia, "published")] {
        assert_eq!(move_to(&t, who, status, "").await.0, StatusCode::OK, "{status}");
    }
    let scope = format!("repository:{repo}:pull");
    let customer = t.registry_token_for(Some(("cy", PASSWORD)), &scope).await;
    let anonymous = t.registry_token_for(None, &scope).await;
    let member = t.registry_token_for(Some(("pia", PASSWORD)), &scope).await;
    let staff = t.registry_token_for(Some(("mona", PASSWORD)), &scope).await;
    let pull = |token: &str, reference: &str| {
        let (token, reference) = (token.to_owned(), reference.to_owned());
        let t = &t;
        async move { t.get_manifest(&token, repo, &reference).await }
    };

    // Released at publication: the offered tag, by tag and by digest, for anyone who may pull.
    for token in [&customer, &anonymous] {
        assert_eq!(pull(token, "1.0").await.0, StatusCode::OK);
        assert_eq!(pull(token, &first.to_string()).await.0, StatusCode::OK);
    }
    // Outside the tier's tags: refused to customers, with why; members and staff pull it.
    let (status, body) = pull(&customer, "nightly").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["errors"][0]["code"], "DENIED");
    assert!(body["errors"][0]["detail"].as_str().unwrap().contains("not released"), "{body}");
    assert_eq!(pull(&customer, &outside.to_string()).await.0, StatusCode::FORBIDDEN, "by digest too");
    for token in [&member, &staff] {
        assert_eq!(pull(token, "nightly").await.0, StatusCode::OK);
    }
    let tag_list = |token: &str| {
        let request = t.request(Method::GET, &format!("/v2/{repo}/tags/list")).bearer_auth(token);
        async move { request.send().await.unwrap().json::<Value>().await.unwrap()["tags"].clone() }
    };
    assert_eq!(tag_list(&customer).await, json!(["1.0"]), "customers list the released tags");
    assert_eq!(tag_list(&member).await, json!(["1.0", "nightly"]));

    // A new version awaits review: customers keep being refused until a moderator releases it.
    let second = t.push_image_as("pia", PASSWORD, repo, "1.1", b"two").await;
    let again = t.push_image_as("pia", PASSWORD, repo, "1.0", b"one, rebuilt").await;
    assert_ne!(again, first);
    let (status, body) = pull(&customer, "1.0").await;
    assert!(
        status == StatusCode::FORBIDDEN && body["errors"][0]["detail"].as_str().unwrap().contains("awaits the store's review"),
        "{body}"
    );
    assert_eq!(pull(&customer, "1.1").await.0, StatusCode::FORBIDDEN);
    assert_eq!(pull(&customer, &first.to_string()).await.0, StatusCode::OK, "the released digest stays pullable");
    assert_eq!(pull(&member, "1.1").await.0, StatusCode::OK);
    let (_, pending) = get(&t, &pia, "/api/v1/products/pia-co/widget-server/releases").await;
    let tags: Vec<&str> = pending["versions"].as_array().unwrap().iter().map(|v| v["tag"].as_str().unwrap()).collect();
    assert_eq!(tags.len(), 2, "1.0 again and 1.1, not nightly: {pending}");
    assert!(tags.contains(&"1.0") && tags.contains(&"1.1"), "{pending}");
    let release = "/api/v1/products/pia-co/widget-server/releases";
    assert_eq!(send(&t, &pia, Method::POST, release, &Value::Null).await.0, StatusCode::FORBIDDEN, "publishers do not release");
    let (status, released) = send(&t, &mona, Method::POST, release, &Value::Null).await;
    assert_eq!((status, released["versions"].as_array().map(Vec::len)), (StatusCode::OK, Some(2)), "{released}");
    for reference in ["1.0".to_owned(), "1.1".to_owned(), second.to_string(), again.to_string()] {
        assert_eq!(pull(&customer, &reference).await.0, StatusCode::OK, "{reference}");
    }
    assert_eq!(get(&t, &pia, release).await.1["versions"], json!([]));

    // Revoked: customers are refused everything; members still pull.
    assert_eq!(move_to(&t, &mona, "revoked", "Gone.").await.0, StatusCode::OK);
    let customer = t.registry_token_for(Some(("cy", PASSWORD)), &scope).await;
    assert_ne!(pull(&customer, "1.1").await.0, StatusCode::OK);
    let member = t.registry_token_for(Some(("pia", PASSWORD)), &scope).await;
    assert_eq!(pull(&member, "1.1").await.0, StatusCode::OK);
}

//! The store through its REST API and pages: search quality and filters over the demo
//! store, Get Image and the registry's enforcement of it, bad input, and who may do what.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slipway_auth::access::SiteRole;
use slipway_catalog::{Actor, Badge};

use slipway_test_support::{Backend, Caller, TestApp, Via};

const PASSWORD: &str = "store test password";

async fn demo_store(backend: Backend) -> TestApp {
    let t = backend.spawn().await;
    slipway::demo::load(&t.app).await.expect("demo loads");
    t
}

async fn search(t: &TestApp, query: &str) -> Value {
    let response = t.get(&format!("/api/v1/search?{query}")).await;
    assert_eq!(response.status(), StatusCode::OK, "{query}");
    response.json().await.unwrap()
}

fn names(body: &Value) -> Vec<String> {
    body["items"].as_array().unwrap().iter().map(|i| i["name"].as_str().unwrap().to_owned()).collect()
}

/// Twenty queries a customer would type (names, publishers, description words, tags,
/// misspellings, partial words) and the product that must come first.
#[tokio::test]
async fn search_finds_the_expected_product_first() {
    let t = demo_store(Backend::new().await).await;
    let expectations = [
        ("nimbus db", "Nimbus DB"),
        ("nimbus cache", "Nimbus Cache"),
        ("gateway", "Northwind Gateway"),
        ("wireguard", "Northwind VPN"),
        ("opentelemetry", "Tidepool Tracing"),
        ("prometheus", "Tidepool Metrics"),
        ("cypher", "Nimbus Graph"),
        ("s3", "Nimbus Object Store"),
        ("amqp", "Northwind Message Queue"),
        ("crm", "Bluefin CRM"),
        ("jakarta", "OpenForge Application Server"),
        ("dkim", "OpenForge Mail Relay"),
        ("tidepool logs", "Tidepool Logs"),
        ("runtime threat detection", "Ironclad Runtime Guard"),
        // Misspellings.
        ("reddis", "Nimbus Cache"),
        ("wiregaurd", "Northwind VPN"),
        ("promethues", "Tidepool Metrics"),
        ("alpnie", "OpenForge Alpine Base"),
        ("gatway", "Northwind Gateway"),
        ("Nimbus Timeserise", "Nimbus Timeseries"),
    ];
    for (query, expected) in expectations {
        let found = names(&search(&t, &format!("q={}", urlencode(query))).await);
        assert_eq!(found.first().map(String::as_str), Some(expected), "q={query:?} found {found:?}");
    }
    // Issue 18: typeahead completed "nimbs" to the Nimbus products, and Enter found none.
    let suggested: Value = t.get("/api/v1/search/suggest?q=nimbs").await.json().await.unwrap();
    let mut suggested: Vec<String> =
        suggested["suggestions"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect();
    let mut found = names(&search(&t, "q=nimbs").await);
    suggested.sort();
    found.sort();
    assert_eq!(found, suggested, "Enter finds what the suggestions showed");
    assert_eq!(found.len(), 5, "{found:?}");
    // Publisher names find their products.
    let by_publisher = search(&t, "q=bluefin+labs").await;
    assert!(by_publisher["items"].as_array().unwrap().iter().all(|i| i["publisher"] == "bluefin"), "{by_publisher}");
    assert_eq!(by_publisher["total"], 7);
    // Typeahead matches the word being typed as a prefix.
    let suggestions: Value = t.get("/api/v1/search/suggest?q=gatew").await.json().await.unwrap();
    assert_eq!(suggestions["suggestions"][0]["name"], "Northwind Gateway");
    let suggestions: Value = t.get("/api/v1/search/suggest?q=nimb").await.json().await.unwrap();
    let suggested: Vec<&str> = suggestions["suggestions"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap()).collect();
    assert_eq!(suggested.len(), 5, "{suggested:?}");
    assert!(suggested.contains(&"Nimbus DB"));
    // Suggestions come from names and tags; a word of a long description is found by a
    // search, not suggested while it is typed.
    let t = &t;
    let suggest = |q: &'static str| async move {
        let body: Value = t.get(&format!("/api/v1/search/suggest?q={q}")).await.json().await.unwrap();
        body["suggestions"].as_array().unwrap().iter().map(|s| s["name"].as_str().unwrap().to_owned()).collect::<Vec<_>>()
    };
    assert_eq!(suggest("ebp").await, ["Ironclad Runtime Guard"], "a tag");
    assert_eq!(names(&search(t, "q=escalation").await), ["Ironclad Runtime Guard"]);
    assert!(suggest("escalat").await.is_empty());
    // Earlier words match whole, the last as a prefix; a misspelt earlier word is corrected.
    assert_eq!(suggest("nimbus+gr").await, ["Nimbus Graph"]);
    assert_eq!(suggest("nimbsu+gr").await, ["Nimbus Graph"]);
    // A withdrawn product leaves the suggestions at once, and comes back when published.
    t.app.catalog.set_published(Actor::Operator, "northwind", "northwind-gateway", false).await.unwrap();
    assert!(!suggest("gatew").await.contains(&"Northwind Gateway".to_owned()));
    t.app.catalog.set_published(Actor::Operator, "northwind", "northwind-gateway", true).await.unwrap();
    assert_eq!(suggest("gatew").await[0], "Northwind Gateway");
    // Nothing like it: no results, not an error.
    assert_eq!(search(t, "q=zzyzx").await["total"], 0);
}

fn urlencode(s: &str) -> String {
    s.replace(' ', "+")
}

#[tokio::test]
async fn filters_sorting_and_pagination() {
    let t = demo_store(Backend::new().await).await;
    let certified = search(&t, "certified=1&limit=100").await;
    assert!(certified["items"].as_array().unwrap().iter().all(|i| i["badges"].as_array().unwrap().contains(&json!("certified"))));
    assert_eq!(certified["total"], 10);
    let databases = search(&t, "category=databases&limit=100").await;
    assert!(databases["items"].as_array().unwrap().iter().all(|i| i["category"] == "databases"));
    let plugins = names(&search(&t, "type=plugin").await);
    assert_eq!(plugins, ["Ironclad Volume Encryption"]);
    let community = search(&t, "trust=community&limit=100").await;
    assert!(community["items"].as_array().unwrap().iter().all(|i| ["tidepool", "openforge"].contains(&i["publisher"].as_str().unwrap())));
    let paid = search(&t, "pricing=paid&limit=100").await;
    assert!(
        paid["items"].as_array().unwrap().iter().all(|i| i["tiers"].as_array().unwrap().iter().any(|t| t["amount"].as_i64() > Some(0)))
    );
    let free = search(&t, "pricing=free&limit=100").await;
    assert_eq!(free["total"].as_i64().unwrap() + 6, 32, "six demo products are paid-only");
    assert_eq!(search(&t, "platform=linux/arm64").await["total"], 32);
    assert_eq!(search(&t, "platform=linux/s390x").await["total"], 0);
    // Filters combine with words.
    assert_eq!(names(&search(&t, "q=database&certified=1&category=databases").await), ["Nimbus DB", "Nimbus Cache"]);
    // ...and follow a published listing's changes (the index holds them as facet words).
    let product_page = || async { t.get("/products/nimbus/nimbus-db").await.text().await.unwrap() };
    assert!(product_page().await.contains("Docker Certified"));
    t.app.catalog.set_badges(Actor::Operator, "nimbus", "nimbus-db", &[]).await.unwrap();
    assert!(!product_page().await.contains("Docker Certified"), "a cached product page outlived a change");
    assert_eq!(names(&search(&t, "q=database&certified=1&category=databases").await), ["Nimbus Cache"]);
    assert_eq!(search(&t, "certified=1&limit=100").await["total"], 9);
    t.app.catalog.set_badges(Actor::Operator, "nimbus", "nimbus-db", &[Badge::Certified]).await.unwrap();
    assert_eq!(names(&search(&t, "q=database&certified=1&category=databases").await), ["Nimbus DB", "Nimbus Cache"]);

    // The publisher's verification shows on its products' pages, and follows it.
    let t = &t;
    let page = |path: &'static str| async move { t.get(path).await.text().await.unwrap() };
    assert!(page("/products/nimbus/nimbus-db").await.contains("Verified Publisher"));
    assert!(!page("/products/tidepool/tidepool-logs").await.contains("Verified Publisher"));
    // Prices show in their currency, per their period, with any free trial.
    let nimbus = page("/products/nimbus/nimbus-db").await;
    assert!(nimbus.contains("$199.00 / month") && nimbus.contains("14-day free trial"), "{nimbus}");
    assert!(page("/products/tidepool/tidepool-insights").await.contains("€2,490.00 / year"));
    let deploy = page("/products/bluefin/bluefin-deploy").await;
    assert!(deploy.contains("$99.00 one-time") && !deploy.contains("free trial"), "{deploy}");
    t.app.catalog.set_publisher_verified(Actor::Operator, "tidepool", true).await.unwrap();
    assert!(page("/products/tidepool/tidepool-logs").await.contains("Verified Publisher"));

    let popular = search(t, "sort=popular&limit=100").await;
    let pulls: Vec<i64> = popular["items"].as_array().unwrap().iter().map(|i| i["pulls"].as_i64().unwrap()).collect();
    assert!(pulls.windows(2).all(|w| w[0] >= w[1]), "{pulls:?}");

    // Cursor pagination visits every product once.
    let mut seen = std::collections::BTreeSet::new();
    let mut cursor = String::new();
    loop {
        let page = search(t, &format!("limit=7&cursor={cursor}")).await;
        for item in page["items"].as_array().unwrap() {
            assert!(seen.insert(item["id"].as_str().unwrap().to_owned()), "{item} twice");
        }
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(seen.len(), 32);

    // Bad parameters get a problem document.
    for bad in ["category=nope", "sort=sideways", "pricing=cheap", "platform=linux%3Bdrop", "cursor=xyz", "type=robot"] {
        let response = t.get(&format!("/api/v1/search?{bad}")).await;
        assert!(matches!(response.status(), StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY), "{bad}");
        assert_eq!(response.headers()["content-type"], "application/problem+json", "{bad}");
    }
    // The pages: a category browse page and a search page with a filter.
    let page = t.get("/categories/security").await.text().await.unwrap();
    assert!(page.contains("Ironclad Scanner") && !page.contains("Nimbus DB"));
    let page = t.get("/search?q=nimbus&certified=1").await.text().await.unwrap();
    assert!(page.contains("Nimbus DB") && !page.contains("Nimbus Graph"));
}

/// Get Image: the license must be accepted, the subscription is recorded with the
/// agreement's version, and only then does the registry let the customer pull.
#[tokio::test]
async fn getting_a_licensed_tier_opens_the_registry() {
    let t = demo_store(Backend::enforced().await).await;
    t.app.auth.create_user("carol", "carol@example.com", PASSWORD, SiteRole::User).await.unwrap();
    let pull_allowed = |who: Option<(&'static str, &'static str)>| {
        let t = &t;
        async move {
            let mut request =
                t.request(Method::GET, "/auth/token").query(&[("service", "slipway"), ("scope", "repository:nimbus/nimbus-db:pull")]);
            if let Some((user, password)) = who {
                request = request.basic_auth(user, Some(password));
            }
            let token: Value = request.send().await.unwrap().json().await.unwrap();
            let response = t
                .request(Method::GET, "/v2/nimbus/nimbus-db/manifests/7.2")
                .bearer_auth(token["token"].as_str().unwrap())
                .header("accept", "application/vnd.oci.image.index.v1+json")
                .send()
                .await
                .unwrap();
            response.status()
        }
    };
    assert_ne!(pull_allowed(None).await, StatusCode::OK);
    assert_ne!(pull_allowed(Some(("carol", PASSWORD))).await, StatusCode::OK);

    let (cookie, csrf) = t.sign_in("carol", PASSWORD).await;
    let subscribe = |body: Value| {
        t.request(Method::POST, "/api/v1/products/nimbus/nimbus-db/subscriptions")
            .header("cookie", &cookie)
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
    };
    let refused = subscribe(json!({"tier": "developer"})).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.text().await.unwrap().contains("accept the license agreement (version 1)"));
    let paid = subscribe(json!({"tier": "enterprise", "accept_license_version": 1})).await.unwrap();
    assert_eq!(paid.status(), StatusCode::PAYMENT_REQUIRED);
    let ok = subscribe(json!({"tier": "developer", "accept_license_version": 1})).await.unwrap();
    assert_eq!(ok.status(), StatusCode::CREATED);
    let body: Value = ok.json().await.unwrap();
    let subscription = &body["subscriptions"][0];
    assert_eq!(subscription["license_version"], 1);
    assert!(subscription["license_accepted_at"].as_i64().unwrap() > 0);
    let host = t.base.trim_start_matches("http://");
    assert_eq!(subscription["pull_command"], format!("docker pull {host}/nimbus/nimbus-db:7.2"));
    assert_eq!(pull_allowed(Some(("carol", PASSWORD))).await, StatusCode::OK);
    // The page lists it with the command.
    let page = t.request(Method::GET, "/subscriptions").header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(page.contains(&format!("docker pull {host}/nimbus/nimbus-db:7.2")));
    assert!(page.contains(&format!("docker login {host}</code>")), "the login hint names the registry: {page}");

    // Issue 18 item 7: one registry host in every command of every page: the product page's
    // install text, /subscriptions' pull and login commands, for the Host the reader used.
    let read_as = |path: &'static str, host: &'static str| {
        let (t, cookie) = (&t, cookie.clone());
        async move { t.request(Method::GET, path).header("cookie", cookie).header("host", host).send().await.unwrap().text().await.unwrap() }
    };
    for host in ["localhost:5999", "store.example:443", "[::1]:5999"] {
        let product = read_as("/products/nimbus/nimbus-db", host).await;
        assert!(product.contains(&format!("docker pull {host}/nimbus/nimbus-db:7.2")), "{host}: {product}");
        assert!(product.contains(&format!("docker login {host}")), "{host}");
        assert!(!product.contains("{{registry}}") && !product.contains("localhost:5000"), "{host}");
        let subscriptions = read_as("/subscriptions", host).await;
        assert!(subscriptions.contains(&format!("docker pull {host}/nimbus/nimbus-db:7.2")), "{host}");
        assert!(subscriptions.contains(&format!("docker login {host}</code>")), "{host}");
    }
    // A Host that is not a plain host[:port] is not written into commands (nor into HTML).
    let listen = t.app.auth.settings().listen.to_string();
    for hostile in ["evil.example\"><script>alert(1)</script>", "a b", "x/y", "x@y"] {
        let product = read_as("/products/nimbus/nimbus-db", hostile).await;
        assert!(!product.contains("<script>alert(1)"), "{hostile}");
        assert!(product.contains(&format!("docker pull {listen}/nimbus/nimbus-db:7.2")), "{hostile}: falls back to the listen address");
    }

    // "View all versions": every tag with digest, size and platforms.
    let versions: Value = t.get("/api/v1/products/nimbus/nimbus-db/versions").await.json().await.unwrap();
    let v72 = versions["versions"].as_array().unwrap().iter().find(|v| v["tag"] == "7.2" && v["tier"] == "Developer").expect("7.2").clone();
    assert!(v72["digest"].as_str().unwrap().starts_with("sha256:"));
    assert!(v72["compressed_size"].as_u64().unwrap() > 0);
    assert_eq!(v72["platforms"], json!(["linux/amd64", "linux/arm64"]));
}

/// A publisher's profile through the API, with a logo, by a new account `name` calling
/// the way `via` says; returns the caller.
async fn publisher(t: &TestApp, name: &str, via: Via) -> Caller {
    t.app.auth.create_user(name, &format!("{name}@example.com"), PASSWORD, SiteRole::User).await.unwrap();
    let session = t.caller(name, PASSWORD, via).await;
    let logo = upload(t, &session, "logo", png(600, 600)).await;
    assert_eq!(logo.0, StatusCode::CREATED, "{}", logo.1);
    let profile = json!({"display_name": format!("{name} Inc"), "legal_name": format!("{name} Inc."), "website": "https://example.com",
        "phone": "+1 555 0100", "email": format!("legal@{name}.example"), "logo": logo.1["id"], "story": "We make things."});
    let saved = send(t, &session, Method::PUT, &format!("/api/v1/publishers/{name}-co"), &profile).await;
    assert_eq!(saved.0, StatusCode::OK, "{}", saved.1);
    session
}

async fn upload(t: &TestApp, caller: &Caller, kind: &str, bytes: Vec<u8>) -> (StatusCode, Value) {
    let response = t.call(caller, Method::POST, &format!("/api/v1/media?kind={kind}")).body(bytes).send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

async fn send(t: &TestApp, caller: &Caller, method: Method, path: &str, body: &Value) -> (StatusCode, Value) {
    let response = t.call(caller, method, path).json(body).send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::new_rgb8(width, height).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// Changes a published product as its publisher (a revision, with where it runs, the
/// publisher agreement and an image for each tier), and has a moderator approve the change.
async fn revise_and_approve(t: &TestApp, owner: &Caller, moderator: &Caller, product: &str, changed: &Value) {
    let mut changed = changed.clone();
    changed["runs_on"] = json!("community");
    let (org, _) = product.split_once('/').unwrap();
    let accepted = send(t, owner, Method::PUT, &format!("/api/v1/publishers/{org}/agreement"), &json!({"version": 1})).await;
    assert_eq!(accepted.0, StatusCode::NO_CONTENT, "{}", accepted.1);
    for tier in changed["tiers"].as_array().unwrap() {
        t.push_image(tier["repository"].as_str().unwrap(), "latest", b"a layer").await;
    }
    let (status, body) = send(t, owner, Method::PUT, &format!("/api/v1/products/{product}"), &changed).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    for (who, status) in [(owner, "submitted"), (moderator, "approved")] {
        let moved = send(t, who, Method::PUT, &format!("/api/v1/products/{product}/revision/status"), &json!({"status": status})).await;
        assert_eq!(moved.0, StatusCode::OK, "{status}: {}", moved.1);
    }
}

fn listing(org: &str) -> Value {
    json!({
        "name": "Widget Server", "short_description": "Serves widgets.", "category": "web-servers", "search_tags": ["widgets"],
        "long_description": "Fast.", "support_url": "https://example.com/help", "product_type": "image",
        "tiers": [{"slug": "free", "name": "Free", "access": "public", "repository": format!("{org}/widget-server")}],
    })
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_message_or_rendered_inert_by_session() {
    bad_input_is_refused(Via::Session).await;
}

#[tokio::test]
async fn bad_input_is_refused_with_a_clear_message_or_rendered_inert_by_token() {
    bad_input_is_refused(Via::Bearer).await;
}

async fn bad_input_is_refused(via: Via) {
    let t = Backend::new().await.spawn().await;
    let session = publisher(&t, "acme", via).await;
    // Logos: non-square, tiny, not an image, a decompression bomb.
    for (bytes, message) in [
        (png(600, 500), "must be square"),
        (png(100, 100), "at least 512x512"),
        (b"<svg><script>alert(1)</script></svg>".to_vec(), "not a PNG"),
        (bomb(), "too large to decode"),
    ] {
        let (status, body) = upload(&t, &session, "logo", bytes).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(body["detail"].as_str().unwrap().contains(message), "{body}");
    }
    let path = "/api/v1/publishers/acme-co/products";
    let cases: Vec<(&str, Value, &str)> = vec![
        ("short_description", json!("x".repeat(141)), "141 characters"),
        ("name", json!("n".repeat(81)), "at most 80"),
        ("long_description", json!("y".repeat(20_001)), "at most 20000"),
        ("support_url", json!("javascript:alert(1)"), "not an http(s) URL"),
        ("category", json!("toys"), "unknown category"),
        ("search_tags", json!(["Bad Tag!"]), "search tags"),
        ("tiers", json!([]), "1 to 10 tiers"),
        (
            "tiers",
            json!([{"slug": "pro", "name": "Pro", "access": "public", "amount": 900, "billing_period": "month", "repository": "acme-co/w"}]),
            "must be licensed",
        ),
        (
            "tiers",
            json!([{"slug": "pro", "name": "Pro", "access": "licensed", "amount": 900, "currency": "usd", "billing_period": "month", "repository": "acme-co/w"}]),
            "tier pro: currency",
        ),
        (
            "tiers",
            json!([{"slug": "pro", "name": "Pro", "access": "licensed", "amount": -900, "billing_period": "month", "repository": "acme-co/w"}]),
            "negative",
        ),
        (
            "tiers",
            json!([{"slug": "pro", "name": "Pro", "access": "licensed", "amount": 900, "billing_period": "one_time", "trial_days": 14, "repository": "acme-co/w"}]),
            "not one_time",
        ),
        (
            "tiers",
            json!([{"slug": "pro", "name": "Pro", "access": "licensed", "amount": 900, "billing_period": "month", "trial_days": 91, "repository": "acme-co/w"}]),
            "trial_days 91",
        ),
        ("tiers", json!([{"slug": "x", "name": "X", "access": "public", "repository": "someone-else/w"}]), "namespace"),
        ("logo", json!("0".repeat(64)), "no uploaded image"),
    ];
    for (field, value, message) in cases {
        let mut body = listing("acme-co");
        body[field] = value;
        let (status, problem) = send(&t, &session, Method::POST, path, &body).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{field}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains(message), "{field}: {problem}");
    }
    // Script in every text field and a javascript: link in Markdown: stored as written,
    // shown inert.
    let script = "<script>alert('x')</script>";
    let mut body = listing("acme-co");
    for field in ["name", "short_description", "support_info", "sla"] {
        body[field] = json!(format!("{field} {script}"));
    }
    body["long_description"] = json!(format!("[click me](javascript:alert(1)) {script} <img src=x onerror=alert(2)>"));
    body["install_instructions"] = json!(format!("<iframe src=\"https://evil.example\"></iframe> {script}"));
    body["search_tags"] = json!(["widgets"]);
    body["tiers"][0]["name"] = json!(format!("Tier {script}"));
    body["tiers"][0]["description"] = json!(script);
    let (status, created) = send(&t, &session, Method::POST, path, &body).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let slug = created["slug"].as_str().unwrap().to_owned();
    // Pages and forms are the browser's: a session, whichever way the API was called.
    let Caller::Session { cookie, csrf } = t.caller("acme", PASSWORD, Via::Session).await else { unreachable!("a session") };
    let page = t.request(Method::GET, &format!("/products/acme-co/{slug}")).header("cookie", &cookie).send().await.unwrap();
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let html = page.text().await.unwrap();
    assert!(!html.contains("<script>alert"), "a script tag got through");
    assert!(!html.contains("javascript:"), "a javascript: link got through");
    assert!(!html.contains("onerror") && !html.contains("<iframe"), "{html}");
    assert!(html.contains("short_description &#60;script&#62;alert"), "text is shown, escaped");
    // The publisher's own fields, and a query echoed on the search page, are escaped too.
    let logo = upload(&t, &session, "logo", png(512, 512)).await.1["id"].clone();
    let profile = json!({"display_name": format!("Acme {script}"), "legal_name": format!("Acme {script}"), "website": "https://example.com/?a=<b>",
        "phone": "+1 555 0100", "email": "legal@acme.example", "logo": logo, "story": format!("[x](javascript:alert(1)) {script}")});
    assert_eq!(send(&t, &session, Method::PUT, "/api/v1/publishers/acme-co", &profile).await.0, StatusCode::OK);
    for page in ["/publishers/acme-co".to_owned(), format!("/search?q={}", urlencode(script))] {
        let html = t.get(&page).await.text().await.unwrap();
        assert!(!html.contains("<script>alert") && !html.contains("javascript:"), "{page}");
        assert!(html.contains("&#60;script&#62;"), "{page} shows the text escaped");
    }
    // Forms refuse a missing CSRF token.
    let forged = t
        .request(Method::POST, &format!("/products/acme-co/{slug}/subscribe"))
        .header("cookie", &cookie)
        .form(&[("tier", "free")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
    let no_header = t.request(Method::POST, path).header("cookie", &cookie).json(&listing("acme-co")).send().await.unwrap();
    assert_eq!(no_header.status(), StatusCode::FORBIDDEN);
    // Malformed JSON is a problem document, not a plain-text rejection.
    let malformed = t
        .request(Method::POST, path)
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(malformed.headers()["content-type"], "application/problem+json");
}

/// A PNG header claiming 20000x20000 pixels over a few kilobytes of zeros.
fn bomb() -> Vec<u8> {
    let mut out = Vec::new();
    let mut encoder = png::Encoder::new(&mut out, 20_000, 20_000);
    encoder.set_color(png::ColorType::Grayscale);
    encoder.set_compression(png::Compression::Fast);
    let mut writer = encoder.write_header().unwrap();
    let mut stream = writer.stream_writer().unwrap();
    let row = vec![0u8; 20_000];
    for _ in 0..2_000 {
        std::io::Write::write_all(&mut stream, &row).unwrap();
    }
    drop(stream);
    drop(writer);
    out
}

/// One row of the matrix: what is tried, by whom (cookie, CSRF token), the request and the
/// status it must get.
type Case<'a> = (&'a str, &'a Caller, Method, String, Value, StatusCode);

/// Who may do what with a listing: anonymous, another user, a member of the publisher,
/// a moderator; each calling by session, then each by access token.
#[tokio::test]
async fn store_authorization_matrix_by_session() {
    authorization_matrix(Via::Session).await;
}

#[tokio::test]
async fn store_authorization_matrix_by_token() {
    authorization_matrix(Via::Bearer).await;
}

async fn authorization_matrix(via: Via) {
    let t = Backend::new().await.spawn().await;
    let owner = publisher(&t, "owner", via).await;
    let (status, created) = send(&t, &owner, Method::POST, "/api/v1/publishers/owner-co/products", &listing("owner-co")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    t.app.auth.create_user("stranger", "s@example.com", PASSWORD, SiteRole::User).await.unwrap();
    t.app.auth.create_user("moderator", "m@example.com", PASSWORD, SiteRole::Moderator).await.unwrap();
    let stranger = t.caller("stranger", PASSWORD, via).await;
    let moderator = t.caller("moderator", PASSWORD, via).await;
    let anonymous = Caller::Anonymous;
    let product = "/api/v1/products/owner-co/widget-server";

    let matrix: Vec<Case> = vec![
        ("anonymous reads a draft", &anonymous, Method::GET, product.into(), Value::Null, StatusCode::NOT_FOUND),
        ("stranger reads a draft", &stranger, Method::GET, product.into(), Value::Null, StatusCode::NOT_FOUND),
        ("owner reads its draft", &owner, Method::GET, product.into(), Value::Null, StatusCode::OK),
        ("moderator reads a draft", &moderator, Method::GET, product.into(), Value::Null, StatusCode::OK),
        ("anonymous edits", &anonymous, Method::PUT, product.into(), listing("owner-co"), StatusCode::UNAUTHORIZED),
        ("stranger edits", &stranger, Method::PUT, product.into(), listing("owner-co"), StatusCode::FORBIDDEN),
        ("owner edits", &owner, Method::PUT, product.into(), listing("owner-co"), StatusCode::OK),
        (
            "stranger creates for owner",
            &stranger,
            Method::POST,
            "/api/v1/publishers/owner-co/products".into(),
            listing("owner-co"),
            StatusCode::FORBIDDEN,
        ),
        ("owner publishes", &owner, Method::PUT, format!("{product}/publication"), json!({"published": true}), StatusCode::FORBIDDEN),
        ("owner awards a badge", &owner, Method::PUT, format!("{product}/badges"), json!({"badges": ["certified"]}), StatusCode::FORBIDDEN),
        (
            "owner verifies itself",
            &owner,
            Method::PUT,
            "/api/v1/publishers/owner-co/verification".into(),
            json!({"verified": true}),
            StatusCode::FORBIDDEN,
        ),
        ("stranger sets the license", &stranger, Method::PUT, format!("{product}/license"), json!({"text": "mine"}), StatusCode::FORBIDDEN),
        ("owner sets the license", &owner, Method::PUT, format!("{product}/license"), json!({"text": "Use it well."}), StatusCode::OK),
        (
            "moderator publishes",
            &moderator,
            Method::PUT,
            format!("{product}/publication"),
            json!({"published": true}),
            StatusCode::NO_CONTENT,
        ),
        (
            "moderator awards a badge",
            &moderator,
            Method::PUT,
            format!("{product}/badges"),
            json!({"badges": ["certified"]}),
            StatusCode::NO_CONTENT,
        ),
        (
            "moderator verifies",
            &moderator,
            Method::PUT,
            "/api/v1/publishers/owner-co/verification".into(),
            json!({"verified": true}),
            StatusCode::NO_CONTENT,
        ),
        ("anonymous reads it published", &anonymous, Method::GET, product.into(), Value::Null, StatusCode::OK),
        (
            "stranger takes over the profile",
            &stranger,
            Method::PUT,
            "/api/v1/publishers/owner-co".into(),
            json!({"display_name": "x", "legal_name": "x", "website": "https://x.example", "phone": "+1 555 0100", "email": "x@x.example", "logo": null}),
            StatusCode::UNPROCESSABLE_ENTITY,
        ),
        (
            "anonymous subscribes",
            &anonymous,
            Method::POST,
            format!("{product}/subscriptions"),
            json!({"tier": "free"}),
            StatusCode::UNAUTHORIZED,
        ),
        ("anonymous lists subscriptions", &anonymous, Method::GET, "/api/v1/subscriptions".into(), Value::Null, StatusCode::UNAUTHORIZED),
        ("anonymous uploads", &anonymous, Method::POST, "/api/v1/media?kind=logo".into(), Value::Null, StatusCode::UNAUTHORIZED),
    ];
    for (case, who, method, path, body, expected) in matrix {
        let mut request = t.call(who, method.clone(), &path);
        if !body.is_null() {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), expected, "{case} ({via:?}): {}", response.text().await.unwrap_or_default());
    }
    // A published product appears in search, its tier's repository is now public, and its
    // trust level followed the publisher's verification.
    let found = search(&t, "q=widget").await;
    assert_eq!(found["items"][0]["trust_level"], "verified");
    assert_eq!(found["items"][0]["badges"], json!(["certified"]));
    // An approved revision of a published listing re-indexes it in place: the new name is
    // found once, the old one no more; withdrawing it takes it out of search.
    let mut renamed = listing("owner-co");
    renamed["name"] = json!("Gizmo Server");
    renamed["search_tags"] = json!(["gizmos"]);
    renamed["short_description"] = json!("Serves gizmos.");
    revise_and_approve(&t, &owner, &moderator, "owner-co/widget-server", &renamed).await;
    assert_eq!(search(&t, "q=gizmo").await["total"], 1);
    assert_eq!(search(&t, "q=widget").await["total"], 0);
    let withdraw = send(&t, &moderator, Method::PUT, &format!("{product}/publication"), &json!({"published": false})).await;
    assert_eq!(withdraw.0, StatusCode::NO_CONTENT);
    assert_eq!(search(&t, "q=gizmo").await["total"], 0);
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let t = TestApp::spawn().await;
    let doc: Value = t.get("/api/openapi.json").await.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    let paths = doc["paths"].as_object().unwrap();
    for path in [
        "/api/v1/search",
        "/api/v1/search/suggest",
        "/api/v1/products/{publisher}/{slug}",
        "/api/v1/products/{publisher}/{slug}/subscriptions",
        "/api/v1/publishers/{org}",
        "/api/v1/media",
        "/api/v1/session",
        "/api/v1/tokens",
    ] {
        assert!(paths.contains_key(path), "{path} is not described");
    }
    assert!(doc["components"]["schemas"]["Listing"].is_object());

    // Both ways to sign in are declared: the session cookie with X-CSRF-Token, and an
    // access token as a bearer token.
    let schemes = &doc["components"]["securitySchemes"];
    assert_eq!(schemes["session"]["type"], "apiKey");
    assert_eq!(schemes["session"]["in"], "cookie");
    assert_eq!(schemes["session"]["name"], "slipway_session");
    assert_eq!(schemes["csrf"]["type"], "apiKey");
    assert_eq!(schemes["csrf"]["in"], "header");
    assert_eq!(schemes["csrf"]["name"], "X-CSRF-Token");
    assert_eq!(schemes["bearer"]["type"], "http");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    let security = |path: &str, method: &str| doc["paths"][path][method]["security"].clone();
    let session_csrf_or_bearer = serde_json::json!([{"session": [], "csrf": []}, {"bearer": []}]);
    assert_eq!(security("/api/v1/orgs", "post"), session_csrf_or_bearer);
    assert_eq!(security("/api/v1/products/{publisher}/{slug}", "put"), session_csrf_or_bearer);
    assert_eq!(security("/api/v1/me", "get"), serde_json::json!([{"session": []}, {"bearer": []}]));
    // Managing tokens and the session needs a session.
    assert_eq!(security("/api/v1/tokens", "post"), serde_json::json!([{"session": [], "csrf": []}]));
    assert_eq!(security("/api/v1/session", "delete"), serde_json::json!([{"session": [], "csrf": []}]));
    // Anyone may read a product; a signed-in caller may see drafts.
    assert_eq!(security("/api/v1/products/{publisher}/{slug}", "get"), serde_json::json!([{}, {"session": []}, {"bearer": []}]));
    assert!(security("/api/v1/search", "get").is_null());
    assert!(security("/api/v1/session", "post").is_null());
    // Every operation that takes a caller documents the refusals of a bad or limited token,
    // and every one answering 401 declares how to sign in.
    for (path, item) in paths {
        for (method, operation) in item.as_object().unwrap() {
            let responses = operation["responses"].as_object().unwrap();
            if operation.get("security").is_some() {
                assert!(responses.contains_key("401") && responses.contains_key("403"), "{method} {path}: {responses:?}");
            } else if responses.contains_key("401") {
                assert_eq!((method.as_str(), path.as_str()), ("post", "/api/v1/session"), "answers 401 without security");
            }
        }
    }
}

/// Popularity is pulls as Docker Hub counts them: every manifest GET (not HEAD).
#[tokio::test]
async fn pulls_count_towards_popularity() {
    let t = demo_store(Backend::new().await).await;
    let before = product_pulls(&t).await;
    let manifest = "/v2/openforge/openforge-debian-base/manifests/12";
    let accept = "application/vnd.oci.image.index.v1+json";
    for _ in 0..3 {
        assert_eq!(t.request(Method::GET, manifest).header("accept", accept).send().await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(t.request(Method::HEAD, manifest).header("accept", accept).send().await.unwrap().status(), StatusCode::OK);
    t.app.registry.flush_pulls().await.unwrap();
    t.app.catalog.count_pulls().await.unwrap();
    assert_eq!(product_pulls(&t).await, before + 3);
}

async fn product_pulls(t: &TestApp) -> i64 {
    let product: Value = t.get("/api/v1/products/openforge/openforge-debian-base").await.json().await.unwrap();
    product["pulls"].as_i64().unwrap()
}

/// Issue 14 item 9: withdrawing a listing used to leave its tiers' repositories open.
/// Anonymous pulls of a public tier work while the listing is published and get a
/// challenge once it is withdrawn (a fresh token grants nothing). (A moved tier:
/// `a_tier_moved_by_an_approved_revision_closes_its_old_repository`.)
#[tokio::test]
async fn withdrawn_listings_close_their_repositories() {
    let t = demo_store(Backend::enforced().await).await;
    let manifest = "/v2/openforge/openforge-debian-base/manifests/12";
    let anonymous_pull = || async {
        let token: Value = t
            .request(Method::GET, "/auth/token")
            .query(&[("service", "slipway"), ("scope", "repository:openforge/openforge-debian-base:pull")])
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        t.request(Method::GET, manifest)
            .bearer_auth(token["token"].as_str().unwrap())
            .header("accept", "application/vnd.oci.image.index.v1+json")
            .send()
            .await
            .unwrap()
    };
    assert_eq!(anonymous_pull().await.status(), StatusCode::OK, "a published public tier is pullable anonymously");
    t.app.catalog.set_published(Actor::Operator, "openforge", "openforge-debian-base", false).await.unwrap();
    let refused = anonymous_pull().await;
    assert!(matches!(refused.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), "withdrawn, still {}", refused.status());
    let challenge = refused.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert!(challenge.starts_with("Bearer ") && challenge.contains("openforge/openforge-debian-base"), "{challenge}");
    t.app.catalog.set_published(Actor::Operator, "openforge", "openforge-debian-base", true).await.unwrap();
    assert_eq!(anonymous_pull().await.status(), StatusCode::OK, "published again");
}

/// A tier moved to another repository by an approved revision: the old repository is
/// staging again, the new one opens as the tier says.
#[tokio::test]
async fn a_tier_moved_by_an_approved_revision_closes_its_old_repository() {
    let t = Backend::new().await.spawn().await;
    let owner = publisher(&t, "owner", Via::Session).await;
    t.app.auth.create_user("moderator", "m@example.com", PASSWORD, SiteRole::Moderator).await.unwrap();
    let moderator = t.caller("moderator", PASSWORD, Via::Session).await;
    let (status, created) = send(&t, &owner, Method::POST, "/api/v1/publishers/owner-co/products", &listing("owner-co")).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    t.app.catalog.set_published(Actor::Operator, "owner-co", "widget-server", true).await.unwrap();
    assert_eq!(t.app.auth.policy("owner-co/widget-server").await.unwrap(), slipway_auth::access::Policy::Public);
    let mut moved = listing("owner-co");
    moved["tiers"][0]["repository"] = json!("owner-co/widget-server-v2");
    revise_and_approve(&t, &owner, &moderator, "owner-co/widget-server", &moved).await;
    assert_eq!(t.app.auth.policy("owner-co/widget-server").await.unwrap(), slipway_auth::access::Policy::Staging);
    assert_eq!(t.app.auth.policy("owner-co/widget-server-v2").await.unwrap(), slipway_auth::access::Policy::Public);
}

/// Issue 14 item 10: the sign-in form followed `next=/%09/evil.example` to
/// `Location: /\t/evil.example` (browsers read `//evil.example`) and answered 500 for
/// `next=/%0a/x`. Hostile values go to `/`, a path of the site is followed, whether
/// `next` comes in the page's query or the posted form.
#[tokio::test]
async fn sign_in_only_follows_same_origin_next_paths() {
    let t = TestApp::spawn().await;
    t.app.auth.create_user("dora", "dora@example.com", PASSWORD, SiteRole::User).await.unwrap();
    let long = format!("/{}", "a".repeat(3_000));
    let cases = [
        ("/\t/evil.example", "/"),
        ("/\n/x", "/"),
        ("//evil.example", "/"),
        ("/\\evil.example", "/"),
        ("/%09/evil.example", "/"),
        ("https://evil.example", "/"),
        ("javascript:alert(1)", "/"),
        (long.as_str(), "/"),
        ("/subscriptions", "/subscriptions"),
        ("/products/nimbus/nimbus-db?tab=versions", "/products/nimbus/nimbus-db?tab=versions"),
    ];
    for (next, expected) in cases {
        // The form as a browser gets it: the CSRF cookie(s) and the hidden fields.
        let page = t.request(Method::GET, "/signin").query(&[("next", next)]).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK, "{next:?}");
        let cookies: Vec<String> =
            page.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().split(';').next().unwrap().to_owned()).collect();
        let html = page.text().await.unwrap();
        let hidden = |name: &str| {
            let marker = format!("name=\"{name}\" value=\"");
            let start = html.find(&marker).unwrap_or_else(|| panic!("no {name} field")) + marker.len();
            html[start..].split('"').next().unwrap().to_owned()
        };
        assert_eq!(hidden("next").replace("&#38;", "&").replace("&amp;", "&"), expected, "the form carries {next:?} as");
        let csrf = hidden("csrf");
        let response = t
            .request(Method::POST, "/signin")
            .header("cookie", cookies.join("; "))
            .form(&[("csrf", csrf.as_str()), ("name", "dora"), ("password", PASSWORD), ("next", next)])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "{next:?}: {}", response.text().await.unwrap_or_default());
        assert_eq!(response.headers()["location"].to_str().unwrap(), expected, "{next:?}");
    }
}

/// Issue 18 item 10: `docker search HOST/TERM` calls `GET /v1/search?q=&n=` (after a
/// `/v1/_ping`). It answers from the store's search index: the pull path as the name, the
/// short description, pulls as stars, Official listings marked; paging and its bounds.
#[tokio::test]
async fn the_v1_search_api_answers_docker_search() {
    let t = demo_store(Backend::new().await).await;
    let ping = t.get("/v1/_ping").await;
    assert_eq!(ping.status(), StatusCode::OK);
    assert_eq!(ping.headers()["x-docker-registry-standalone"], "true");
    t.app.catalog.set_official(slipway_catalog::Actor::Operator, "nimbus", "nimbus-db").await.unwrap();

    let host = t.base.trim_start_matches("http://").to_owned();
    let found: Value = t.get("/v1/search?q=nimbus+db&n=25").await.json().await.unwrap();
    let first = &found["results"][0];
    assert_eq!(first["name"], format!("{host}/nimbus/nimbus-db"), "{found}");
    assert_eq!(first["is_official"], true);
    assert_eq!(first["is_automated"], false);
    let api: Value = search(&t, "q=nimbus+db").await;
    assert_eq!(first["description"], api["items"][0]["short_description"]);
    assert_eq!(first["star_count"], api["items"][0]["pulls"]);
    assert!(first["star_count"].as_i64().unwrap() > 0);
    assert_eq!(found["num_results"], api["total"]);
    assert_eq!((found["query"].as_str(), found["page"].as_i64(), found["page_size"].as_i64()), (Some("nimbus db"), Some(1), Some(25)));
    assert!(found["results"].as_array().unwrap()[1..].iter().all(|r| r["is_official"] == false), "{found}");
    // A misspelling finds a product too.
    let misspelt: Value = t.get("/v1/search?q=reddis").await.json().await.unwrap();
    assert_eq!(misspelt["results"][0]["name"], format!("{host}/nimbus/nimbus-cache"), "{misspelt}");

    // Paging: every product once over the pages, in the index's order.
    let all: Value = t.get("/v1/search?q=&n=100").await.json().await.unwrap();
    let total = all["num_results"].as_i64().unwrap();
    assert!(total >= 20, "{all}");
    let mut paged = Vec::new();
    for page in 1..=(total + 6) / 7 {
        let body: Value = t.get(&format!("/v1/search?n=7&page={page}")).await.json().await.unwrap();
        assert_eq!(body["num_pages"], (total + 6) / 7);
        paged.extend(body["results"].as_array().unwrap().iter().map(|r| r["name"].clone()));
    }
    assert_eq!(paged, all["results"].as_array().unwrap().iter().map(|r| r["name"].clone()).collect::<Vec<_>>());
    let beyond: Value = t.get(&format!("/v1/search?n=7&page={}", total)).await.json().await.unwrap();
    assert_eq!(beyond["results"], serde_json::json!([]));

    // The Host a request names is the host in names when no public URL is set.
    let via_localhost: Value =
        t.request(Method::GET, "/v1/search?q=nimbus+db").header("host", "localhost:5999").send().await.unwrap().json().await.unwrap();
    assert_eq!(via_localhost["results"][0]["name"], "localhost:5999/nimbus/nimbus-db");

    for bad in ["n=0", "n=101", "n=ten", "page=0", "page=-1", "n=100&page=10002", "page=9223372036854775807"] {
        let refused = t.get(&format!("/v1/search?q=nimbus&{bad}")).await;
        assert_eq!(refused.status(), StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(refused.headers()["content-type"], "application/problem+json", "{bad}");
    }
    let long = t.get(&format!("/v1/search?q={}", "nimbus+".repeat(2000))).await;
    assert!(matches!(long.status(), StatusCode::OK | StatusCode::BAD_REQUEST | StatusCode::UNPROCESSABLE_ENTITY), "{}", long.status());
}

/// Issue 18 item 9: anyone could make a publisher named like a verified one ("Docker,
/// Inc."), public at once. A new name, or a new organization, that reads like a verified
/// publisher's (case, spacing, punctuation, legal-form endings and look-alike characters
/// folded) is refused with the reason; unverified publishers are labelled as such.
#[tokio::test]
async fn publisher_names_may_not_imitate_a_verified_one() {
    let t = demo_store(Backend::new().await).await;
    let verified = t.app.catalog.publisher("nimbus").await.unwrap().unwrap();
    assert!(verified.verified, "the demo's Nimbus Data is verified");
    t.app.auth.create_user("mimic", "mimic@example.com", PASSWORD, SiteRole::User).await.unwrap();
    let mimic = t.caller("mimic", PASSWORD, Via::Session).await;
    let logo = upload(&t, &mimic, "logo", png(600, 600)).await.1["id"].clone();
    let profile = |name: &str| {
        json!({"display_name": name, "legal_name": "Mimic LLC", "website": "https://mimic.example", "phone": "+1 555 0100",
            "email": "legal@mimic.example", "logo": logo, "story": ""})
    };
    for (org, name) in [
        ("mimic-co", "Nimbus Data, Inc."),
        ("mimic-co", "NIMBUS DATA"),
        ("mimic-co", "Nimbus  Data GmbH"),
        ("mimic-co", "Nіmbus Data"),
        ("mimic-co", "Nimbus Dаta"),
        ("mimic-co", "nimbus"),
        ("nirnbus", "Totally Different"),
    ] {
        let (status, problem) = send(&t, &mimic, Method::PUT, &format!("/api/v1/publishers/{org}"), &profile(name)).await;
        assert_eq!(status, StatusCode::CONFLICT, "{org} {name:?}: {problem}");
        assert!(problem["detail"].as_str().unwrap().contains("reads like the verified publisher Nimbus Data (nimbus)"), "{problem}");
    }
    assert!(t.app.catalog.publisher("mimic-co").await.unwrap().is_none(), "nothing was made");
    let (status, saved) = send(&t, &mimic, Method::PUT, "/api/v1/publishers/mimic-co", &profile("Mimic Labs")).await;
    assert_eq!(status, StatusCode::OK, "{saved}");
    let page = t.get("/publishers/mimic-co").await.text().await.unwrap();
    assert!(page.contains("Unverified publisher"), "{page}");
    assert!(!t.get("/publishers/nimbus").await.text().await.unwrap().contains("Unverified publisher"));
    // Renaming later is checked too; a verified publisher may rename itself.
    let (status, _) = send(&t, &mimic, Method::PUT, "/api/v1/publishers/mimic-co", &profile("Nimbus-Data")).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let mut nimbus_profile = profile("Nimbus Data Ltd");
    nimbus_profile["email"] = json!(verified.email);
    t.app
        .catalog
        .save_publisher(
            &t.app.catalog.viewer(t.app.db.identity().account_by_name("admin").await.unwrap().unwrap()).await.unwrap(),
            "nimbus",
            &serde_json::from_value(nimbus_profile).unwrap(),
            "http://localhost",
        )
        .await
        .unwrap();
}

//! One refusal, one status: the same refusal made on the REST API (a problem document
//! whose `type` names the kind), on the store's pages (a readable HTML page) and, where
//! the registry has it, at /v2/ (the OCI error envelope) answers the same status. The one
//! exception is the distribution spec's: /v2/ answers invalid requests 400, not 422.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slipway_auth::access::SiteRole;

use slipway_test_support::{Backend, Caller, TestApp, Via};

const PASSWORD: &str = "errors test password";

/// Asserts a problem+json answer of `kind` (`urn:slipway:problem:<kind>`) with `status`.
async fn problem(response: reqwest::Response, status: StatusCode, kind: &str) -> Value {
    let (answered, content_type) = (response.status(), response.headers()["content-type"].clone());
    let body: Value = response.json().await.expect("a problem document");
    assert_eq!(answered, status, "{body}");
    assert_eq!(content_type, "application/problem+json");
    assert_eq!(body["type"], format!("urn:slipway:problem:{kind}"), "{body}");
    assert_eq!(body["status"], status.as_u16(), "{body}");
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()), "{body}");
    body
}

/// Asserts a readable HTML page answered with `status`; returns its text.
async fn page(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status);
    let content_type = response.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = response.text().await.unwrap();
    assert!(html.contains("<html"), "{html}");
    html
}

/// Asserts an OCI error envelope with `status` whose first error has `code`.
async fn envelope(response: reqwest::Response, status: StatusCode, code: &str) {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("an OCI error envelope");
    assert_eq!(body["errors"][0]["code"], code, "{body}");
}

/// A registry token for `scope` as `name`, from /auth/token as docker asks for one.
async fn registry_token(t: &TestApp, name: &str, scope: &str) -> String {
    let response = t
        .request(Method::GET, "/auth/token")
        .query(&[("service", "slipway"), ("scope", scope)])
        .basic_auth(name, Some(PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
}

/// A browser's multipart form, as the publisher portal posts it.
fn multipart(fields: &[(&str, &str)]) -> (String, Vec<u8>) {
    let boundary = "slipway-errors-test-boundary";
    let mut body = String::new();
    for (name, value) in fields {
        body.push_str(&format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n"));
    }
    body.push_str(&format!("--{boundary}--\r\n"));
    (format!("multipart/form-data; boundary={boundary}"), body.into_bytes())
}

/// The listing editor's fields for a listing of `org` with one public tier.
fn listing_form<'a>(csrf: &'a str, short_description: &'a str, repository: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("csrf", csrf),
        ("name", "Widget Server"),
        ("short_description", short_description),
        ("category", "web-servers"),
        ("product_type", "image"),
        ("long_description", "Fast."),
        ("support_url", "https://example.com/help"),
        ("tier_0_name", "Free"),
        ("tier_0_access", "public"),
        ("tier_0_period", "free"),
        ("tier_0_currency", "USD"),
        ("tier_0_repository", repository),
        ("action", "save"),
    ]
}

fn listing(org: &str, short_description: &str) -> Value {
    json!({
        "name": "Widget Server", "short_description": short_description, "category": "web-servers", "search_tags": ["widgets"],
        "long_description": "Fast.", "support_url": "https://example.com/help", "product_type": "image",
        "tiers": [{"slug": "free", "name": "Free", "access": "public", "repository": format!("{org}/widget-server")}],
    })
}

fn png(side: u32) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::new_rgb8(side, side).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// `owner` runs publisher `owner-co` with a draft listing `widget-server`; `stranger`
/// belongs to no organization.
struct Cast {
    t: TestApp,
    owner: Caller,
    owner_cookie: (String, String),
    stranger: Caller,
    stranger_cookie: (String, String),
}

async fn cast() -> Cast {
    let t = Backend::enforced().await.spawn().await;
    for name in ["owner", "stranger"] {
        t.app.auth.create_user(name, &format!("{name}@example.com"), PASSWORD, SiteRole::User).await.unwrap();
    }
    let owner = t.caller("owner", PASSWORD, Via::Bearer).await;
    let logo = t.call(&owner, Method::POST, "/api/v1/media?kind=logo").body(png(512)).send().await.unwrap();
    assert_eq!(logo.status(), StatusCode::CREATED);
    let logo: Value = logo.json().await.unwrap();
    let profile = json!({"display_name": "Owner Inc", "legal_name": "Owner Inc.", "website": "https://example.com",
        "phone": "+1 555 0100", "email": "legal@owner.example", "logo": logo["id"], "story": "We make things."});
    let saved = t.call(&owner, Method::PUT, "/api/v1/publishers/owner-co").json(&profile).send().await.unwrap();
    assert_eq!(saved.status(), StatusCode::OK);
    let created = t
        .call(&owner, Method::POST, "/api/v1/publishers/owner-co/products")
        .json(&listing("owner-co", "Serves widgets."))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let owner_cookie = t.sign_in("owner", PASSWORD).await;
    let stranger_cookie = t.sign_in("stranger", PASSWORD).await;
    let stranger = t.caller("stranger", PASSWORD, Via::Bearer).await;
    Cast { t, owner, owner_cookie, stranger, stranger_cookie }
}

/// Something that is not there: a listing, a product page, a repository's manifest.
#[tokio::test]
async fn not_found_answers_404_everywhere() {
    let Cast { t, owner, .. } = cast().await;
    let api = t.call(&owner, Method::GET, "/api/v1/products/owner-co/no-such-product").send().await.unwrap();
    problem(api, StatusCode::NOT_FOUND, "not-found").await;
    let publisher = t.get("/api/v1/publishers/no-such-org").await;
    problem(publisher, StatusCode::NOT_FOUND, "not-found").await;

    page(t.get("/products/owner-co/no-such-product").await, StatusCode::NOT_FOUND).await;
    page(t.get("/publishers/no-such-org").await, StatusCode::NOT_FOUND).await;

    let token = registry_token(&t, "owner", "repository:owner-co/no-such-product:pull").await;
    let v2 = t.request(Method::GET, "/v2/owner-co/no-such-product/manifests/latest").bearer_auth(token).send().await.unwrap();
    envelope(v2, StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN").await;
}

/// A stranger writing to what the owner runs: its listing through the API and the
/// portal, its repository through the registry.
#[tokio::test]
async fn forbidden_answers_403_everywhere() {
    let Cast { t, stranger, stranger_cookie: (cookie, csrf), .. } = cast().await;
    let api =
        t.call(&stranger, Method::PUT, "/api/v1/products/owner-co/widget-server").json(&listing("owner-co", "Mine now.")).send().await;
    problem(api.unwrap(), StatusCode::FORBIDDEN, "forbidden").await;

    let (content_type, body) = multipart(&listing_form(&csrf, "Mine now.", "owner-co/widget-server"));
    let portal = t
        .request(Method::POST, "/publish/owner-co/products/widget-server")
        .header("cookie", &cookie)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    page(portal, StatusCode::FORBIDDEN).await;

    let token = registry_token(&t, "stranger", "repository:owner-co/widget-server:pull,push").await;
    let v2 = t.request(Method::POST, "/v2/owner-co/widget-server/blobs/uploads/").bearer_auth(token).send().await.unwrap();
    envelope(v2, StatusCode::FORBIDDEN, "DENIED").await;
}

/// Content that breaks a rule: a short description over 140 characters in the API and
/// the portal (422), a manifest that is not one at /v2/ (400, as the spec says).
#[tokio::test]
async fn invalid_answers_422_and_400_at_v2_as_the_spec_says() {
    let Cast { t, owner, owner_cookie: (cookie, csrf), .. } = cast().await;
    let long = "x".repeat(141);
    let api = t.call(&owner, Method::PUT, "/api/v1/products/owner-co/widget-server").json(&listing("owner-co", &long)).send().await;
    let body = problem(api.unwrap(), StatusCode::UNPROCESSABLE_ENTITY, "invalid").await;
    assert!(body["detail"].as_str().unwrap().contains("141 characters"), "{body}");

    let (content_type, form) = multipart(&listing_form(&csrf, &long, "owner-co/widget-server"));
    let portal = t
        .request(Method::POST, "/publish/owner-co/products/widget-server")
        .header("cookie", &cookie)
        .header("content-type", content_type)
        .body(form)
        .send()
        .await
        .unwrap();
    assert!(page(portal, StatusCode::UNPROCESSABLE_ENTITY).await.contains("141 characters"));

    let token = registry_token(&t, "owner", "repository:owner-co/widget-server:pull,push").await;
    let v2 = t
        .request(Method::PUT, "/v2/owner-co/widget-server/manifests/1.0")
        .bearer_auth(token)
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body("not a manifest")
        .send()
        .await
        .unwrap();
    envelope(v2, StatusCode::BAD_REQUEST, "MANIFEST_INVALID").await;
}

/// Credentials that do not hold: a wrong password at the API's and the store's sign-in
/// and at the token service, no credentials at /v2/. Each 401 names a scheme to use.
#[tokio::test]
async fn unauthenticated_answers_401_everywhere() {
    let Cast { t, .. } = cast().await;
    let wrong = json!({"name": "owner", "password": "not the password"});
    let api = t.request(Method::POST, "/api/v1/session").json(&wrong).send().await.unwrap();
    assert!(api.headers().contains_key("www-authenticate"));
    problem(api, StatusCode::UNAUTHORIZED, "unauthenticated").await;
    let anonymous = t.get("/api/v1/subscriptions").await;
    problem(anonymous, StatusCode::UNAUTHORIZED, "unauthenticated").await;

    let csrf = "c".repeat(64);
    let store = t
        .request(Method::POST, "/signin")
        .header("cookie", format!("slipway_csrf={csrf}"))
        .form(&[("csrf", csrf.as_str()), ("name", "owner"), ("password", "not the password")])
        .send()
        .await
        .unwrap();
    assert!(page(store, StatusCode::UNAUTHORIZED).await.contains("Wrong user name or password."));

    let token = t.request(Method::GET, "/auth/token").query(&[("service", "slipway")]).basic_auth("owner", Some("not the password"));
    assert_eq!(token.send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    let v2 = t.get("/v2/").await;
    assert!(v2.headers().contains_key("www-authenticate"));
    envelope(v2, StatusCode::UNAUTHORIZED, "UNAUTHORIZED").await;
}

/// A name already taken: 409 from the API and from the store's sign-up page (which
/// answered 422 before errors had kinds).
#[tokio::test]
async fn conflict_answers_409_everywhere() {
    let Cast { t, .. } = cast().await;
    let taken = json!({"name": "owner", "email": "someone-else@example.com", "password": PASSWORD});
    let api = t.request(Method::POST, "/api/v1/accounts").json(&taken).send().await.unwrap();
    problem(api, StatusCode::CONFLICT, "conflict").await;

    let csrf = "c".repeat(64);
    let store = t
        .request(Method::POST, "/signup")
        .header("cookie", format!("slipway_csrf={csrf}"))
        .form(&[("csrf", csrf.as_str()), ("name", "owner"), ("email", "someone-else@example.com"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    page(store, StatusCode::CONFLICT).await;
}

/// Issue 18 item 8: a 60 MB upload answered "Error parsing multipart/form-data request" on
/// a page that looked signed out, with the form gone. Over the form limit, the editor comes
/// back as stored, signed in, with the limits in words; nothing is saved.
#[tokio::test]
async fn an_upload_over_the_limit_keeps_the_editor_and_the_session() {
    let Cast { t, owner_cookie: (cookie, csrf), .. } = cast().await;
    let boundary = "slipway-errors-test-boundary";
    let mut body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf\"\r\n\r\n{csrf}\r\n").into_bytes();
    body.extend(
        format!(
            "--{boundary}\r\nContent-Disposition: form-data; name=\"screenshots\"; filename=\"big.png\"\r\nContent-Type: image/png\r\n\r\n"
        )
        .into_bytes(),
    );
    body.extend(std::iter::repeat_n(b'x', 60_000_000));
    body.extend(format!("\r\n--{boundary}--\r\n").into_bytes());
    let before = t.get("/api/v1/products/owner-co/widget-server").await.text().await.unwrap();
    let portal = t
        .request(Method::POST, "/publish/owner-co/products/widget-server")
        .header("cookie", &cookie)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let html = page(portal, StatusCode::PAYLOAD_TOO_LARGE).await;
    assert!(html.contains("The form was larger than the 50.3 MB it may be") && html.contains("at most 5.2 MB each"), "{html}");
    assert!(html.contains("id=\"listing\"") && html.contains("Widget Server"), "the editor, as stored: {html}");
    assert!(html.contains("id=\"account\""), "still signed in");
    assert!(!html.contains("Error parsing"), "{html}");
    assert_eq!(t.get("/api/v1/products/owner-co/widget-server").await.text().await.unwrap(), before, "nothing saved");
    // The editor states the limits, and the browser checks them before sending.
    let editor = t.request(Method::GET, "/publish/owner-co/products/widget-server").header("cookie", &cookie).send().await.unwrap();
    let editor = editor.text().await.unwrap();
    assert!(
        editor.contains("data-max-file=\"5242880\" data-max-total=\"50331648\"") && editor.contains("id=\"upload-limits\""),
        "{editor}"
    );
}

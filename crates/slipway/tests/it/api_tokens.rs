//! Access tokens on the REST API (issue 15 item 3): `Authorization: Bearer slw_...` on
//! /api/v1, without CSRF token, as far as the token's API scopes (`api:read`, `api:write`)
//! allow; bad tokens get 401 with a challenge, tokens without an API scope 403, and
//! managing tokens and the session needs a session.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slipway_auth::access::SiteRole;
use slipway_auth::scope::TokenRule;

use slipway_test_support::{Backend, TestApp};

const PASSWORD: &str = "a long enough password";

/// A verified account `name` and a token of it holding `scopes`; returns the token.
async fn token_of(t: &TestApp, name: &str, scopes: &[&str]) -> String {
    if t.app.db.identity().account_by_name(name).await.unwrap().is_none() {
        t.app.auth.create_user(name, &format!("{name}@example.com"), PASSWORD, SiteRole::User).await.unwrap();
    }
    let rules: Vec<TokenRule> = scopes.iter().map(|s| TokenRule::parse(s).unwrap()).collect();
    t.app.auth.create_token(name, "api", &rules, None).await.unwrap().0
}

/// Asserts a refusal is a problem document with `status`, and returns its detail.
async fn problem(response: reqwest::Response, status: StatusCode) -> String {
    assert_eq!(response.status(), status, "{:?}", response.headers());
    assert_eq!(response.headers()["content-type"], "application/problem+json");
    if status == StatusCode::UNAUTHORIZED {
        let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Bearer "), "{challenge}");
    }
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status.as_u16());
    body["detail"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn bearer_tokens_use_the_api_as_their_scopes_allow() {
    let t = Backend::enforced().await.spawn().await;
    let read = token_of(&t, "dev", &["api:read"]).await;
    let write = token_of(&t, "dev", &["dev/*:pull", "api:write"]).await;
    let repository_only = token_of(&t, "dev", &["dev/*:pull,push"]).await;
    let fulfillment = token_of(&t, "dev", &["api:fulfillment"]).await;

    // GET /api/v1/me: the token's account, and no CSRF token (none is needed).
    for token in [&read, &write] {
        let response = t.request(Method::GET, "/api/v1/me").bearer_auth(token).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let me: Value = response.json().await.unwrap();
        assert_eq!(me["name"], "dev");
        assert!(me.get("csrf_token").is_none(), "{me}");
    }
    // The scheme name is case-insensitive (RFC 9110).
    let lower = t.request(Method::GET, "/api/v1/me").header("authorization", format!("bearer {read}")).send().await.unwrap();
    assert_eq!(lower.status(), StatusCode::OK);

    // A state change without any CSRF header: api:write may, api:read may not.
    let create_org =
        |token: &str, name: &str| t.request(Method::POST, "/api/v1/orgs").bearer_auth(token).json(&json!({"name": name})).send();
    let created = create_org(&write, "devorg").await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.json::<Value>().await.unwrap()["owner"], "dev");
    let detail = problem(create_org(&read, "readorg").await.unwrap(), StatusCode::FORBIDDEN).await;
    assert!(detail.contains("api:write"), "{detail}");
    assert!(!t.app.db.identity().organization_exists("readorg").await.unwrap());

    // A token made for the registry only has no business with the account.
    let detail =
        problem(t.request(Method::GET, "/api/v1/me").bearer_auth(&repository_only).send().await.unwrap(), StatusCode::FORBIDDEN).await;
    assert!(detail.contains("no API scope"), "{detail}");
    // api:fulfillment is reserved: accepted, but it reads and writes nothing yet.
    problem(t.request(Method::GET, "/api/v1/me").bearer_auth(&fulfillment).send().await.unwrap(), StatusCode::FORBIDDEN).await;

    // With a cookie and a bearer token, the bearer token is used.
    t.app.auth.create_user("other", "other@example.com", PASSWORD, SiteRole::User).await.unwrap();
    let (cookie, csrf) = t.sign_in("other", PASSWORD).await;
    let both = t.request(Method::GET, "/api/v1/me").header("cookie", &cookie).bearer_auth(&read).send().await.unwrap();
    assert_eq!(both.json::<Value>().await.unwrap()["name"], "dev");
    let both = t
        .request(Method::POST, "/api/v1/orgs")
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .bearer_auth(&read)
        .json(&json!({"name": "cookieorg"}))
        .send()
        .await
        .unwrap();
    problem(both, StatusCode::FORBIDDEN).await;

    // Registry and API scopes stay apart: an API-only token is granted nothing in the
    // registry, and a token's repository rules still work there.
    let grant = |token: String| {
        t.request(Method::GET, "/auth/token")
            .query(&[("service", "slipway"), ("scope", "repository:dev/app:pull")])
            .basic_auth("dev", Some(token))
            .send()
    };
    let access = |body: Value| body["token"].as_str().map(|jwt| jwt.split('.').nth(1).unwrap().to_owned()).unwrap();
    let claims = |payload: String| -> Value {
        use base64::Engine;
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    let api_only = claims(access(grant(read.clone()).await.unwrap().json().await.unwrap()));
    assert_eq!(api_only["access"], json!([{"type": "repository", "name": "dev/app", "actions": []}]));
    let mixed = claims(access(grant(write.clone()).await.unwrap().json().await.unwrap()));
    assert_eq!(mixed["access"], json!([{"type": "repository", "name": "dev/app", "actions": ["pull"]}]));

    // Reads that anyone may make see the token's account too: the token's own (draft)
    // listings are visible to it, and a token without an API scope is refused there as well.
    let drafts = t.request(Method::GET, "/api/v1/products/devorg/nothing").bearer_auth(&read).send().await.unwrap();
    assert_eq!(drafts.status(), StatusCode::NOT_FOUND);
    problem(
        t.request(Method::GET, "/api/v1/products/devorg/nothing").bearer_auth(&repository_only).send().await.unwrap(),
        StatusCode::FORBIDDEN,
    )
    .await;
}

/// API scopes through the token API and the CLI's parser: accepted, listed, limited.
#[tokio::test]
async fn api_scopes_are_created_listed_and_limited_like_repository_rules() {
    let t = Backend::enforced().await.spawn().await;
    t.app.auth.create_user("dev", "dev@example.com", PASSWORD, SiteRole::User).await.unwrap();
    let (cookie, csrf) = t.sign_in("dev", PASSWORD).await;
    let create =
        |body: Value| t.request(Method::POST, "/api/v1/tokens").header("cookie", &cookie).header("x-csrf-token", &csrf).json(&body).send();
    let created = create(json!({"name": "reader", "scopes": ["api:read"], "expires_days": 7})).await.unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let secret = created.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned();
    assert_eq!(t.request(Method::GET, "/api/v1/me").bearer_auth(&secret).send().await.unwrap().status(), StatusCode::OK);

    let listed: Value = t.request(Method::GET, "/api/v1/tokens").bearer_auth(&secret).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["tokens"][0]["scopes"], json!([{"api": "read"}]));
    assert!(listed["tokens"][0]["last_used_at"].is_i64(), "API use counts as use: {listed}");

    let many: Vec<&str> = vec!["api:read"; 33];
    for (body, says) in [
        (json!({"name": "bad", "scopes": ["api:admin"]}), "api:read|write|fulfillment"),
        (json!({"name": "many", "scopes": many}), "at most 32 scopes"),
        (json!({"name": "none", "scopes": []}), "at least one scope"),
    ] {
        let detail = problem(create(body).await.unwrap(), StatusCode::UNPROCESSABLE_ENTITY).await;
        assert!(detail.contains(says), "{detail}");
    }
}

/// Expired, revoked, unknown and malformed tokens, and stored rules over the limits: 401,
/// a problem document, and `WWW-Authenticate: Bearer`, on endpoints that need a caller and
/// on those that only read.
#[tokio::test]
async fn bad_bearer_tokens_get_401_with_a_challenge() {
    let t = Backend::enforced().await.spawn().await;
    let revoked = token_of(&t, "dev", &["api:write"]).await;
    let id = t.app.db.identity().access_token_by_hash(&slipway_auth::token_hash(&revoked)).await.unwrap().unwrap().id;
    t.app.auth.revoke_token(&id).await.unwrap();
    let app = &t;
    let stored = |scopes: &'static str, expires_at: Option<i64>| async move {
        let db = app.app.db.identity();
        let account = db.account_by_name("dev").await.unwrap().unwrap();
        let (secret, hash) = slipway_auth::new_access_token();
        let id = uuid::Uuid::new_v4().to_string();
        let token = slipway_db::NewAccessToken { id: &id, account_id: &account.id, name: "stored", token_hash: &hash, scopes, expires_at };
        db.create_access_token(&token).await.unwrap();
        secret
    };
    // Written straight to the database: the service refuses both.
    let expired = stored(r#"[{"api":"write"}]"#, Some(slipway_types::Clock::system().now_ms() - 1)).await;
    let hostile = stored(r#"[{"api":"write"},{"repositories":"*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b","actions":["pull"]}]"#, None).await;
    let unknown = slipway_auth::new_access_token().0;

    let hashes_before = t.app.auth.password_hashes();
    for (what, value) in [
        ("expired", format!("Bearer {expired}")),
        ("revoked", format!("Bearer {revoked}")),
        ("unknown", format!("Bearer {unknown}")),
        ("over the limits", format!("Bearer {hostile}")),
        ("not an slw_ token", "Bearer not-a-token".to_owned()),
        ("a password", format!("Bearer {PASSWORD}")),
        ("empty", "Bearer ".to_owned()),
    ] {
        for (method, path) in [(Method::GET, "/api/v1/me"), (Method::POST, "/api/v1/orgs"), (Method::GET, "/api/v1/products/dev/app")] {
            let response =
                t.request(method.clone(), path).header("authorization", &value).json(&json!({"name": "neworg"})).send().await.unwrap();
            assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what} token on {method} {path}");
            problem(response, StatusCode::UNAUTHORIZED).await;
        }
    }
    assert_eq!(t.app.auth.password_hashes(), hashes_before, "no bearer value is taken for a password");
    // Endpoints that only a session may use still tell a bad token from a good one.
    problem(t.request(Method::POST, "/api/v1/tokens").bearer_auth(&unknown).send().await.unwrap(), StatusCode::UNAUTHORIZED).await;
    // Other schemes are not read: anonymous, as before.
    let basic = t.request(Method::GET, "/api/v1/me").basic_auth("dev", Some(PASSWORD)).send().await.unwrap();
    problem(basic, StatusCode::UNAUTHORIZED).await;
}

/// Password guesses lock the password, never the tokens: a throttled account's token works
/// on the API, and bearer use neither hashes passwords nor counts as a sign-in attempt.
#[tokio::test]
async fn bearer_tokens_work_while_the_password_is_throttled() {
    let t = Backend::with(|c| {
        c.auth.mode = slipway::config::AuthMode::Enforced;
        c.sign_in.first_delay_secs = 60;
    })
    .await
    .spawn()
    .await;
    let read = token_of(&t, "dev", &["api:read"]).await;
    let mut statuses = Vec::new();
    for i in 0..10 {
        let guess = t.request(Method::POST, "/api/v1/session").json(&json!({"name": "dev", "password": format!("guess {i}")})).send();
        statuses.push(guess.await.unwrap().status());
    }
    assert!(statuses.contains(&StatusCode::TOO_MANY_REQUESTS), "{statuses:?}");
    let hashes_before = t.app.auth.password_hashes();
    for _ in 0..20 {
        assert_eq!(t.request(Method::GET, "/api/v1/me").bearer_auth(&read).send().await.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(t.app.auth.password_hashes(), hashes_before);
    let still = t.request(Method::POST, "/api/v1/session").json(&json!({"name": "dev", "password": PASSWORD})).send().await.unwrap();
    assert_eq!(still.status(), StatusCode::TOO_MANY_REQUESTS, "the password stays throttled");
}

/// Who may call what on the API: each caller against several endpoints, as a table.
#[tokio::test]
async fn api_authorization_matrix() {
    let t = Backend::enforced().await.spawn().await;
    let read = token_of(&t, "dev", &["api:read"]).await;
    let write = token_of(&t, "dev", &["api:write"]).await;
    let repository_only = token_of(&t, "dev", &["dev/*:pull,push"]).await;
    // Two sessions, so that signing out with one leaves the other.
    let (cookie, csrf) = t.sign_in("dev", PASSWORD).await;
    let (cookie_without_csrf, _) = t.sign_in("dev", PASSWORD).await;

    const CALLERS: [&str; 6] = ["session+csrf", "session, no csrf", "bearer api:read", "bearer api:write", "bearer repo-only", "anonymous"];
    let call = |caller: usize, method: Method, path: &str, body: Option<Value>| {
        let mut request = t.request(method, path);
        request = match caller {
            0 => request.header("cookie", &cookie).header("x-csrf-token", &csrf),
            1 => request.header("cookie", &cookie_without_csrf),
            2 => request.bearer_auth(&read),
            3 => request.bearer_auth(&write),
            4 => request.bearer_auth(&repository_only),
            _ => request,
        };
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let (ok, created, accepted, none) = (200, 201, 202, 204);
    let (unauthorized, forbidden, not_found) = (401, 403, 404);
    // Expected statuses per caller, in CALLERS order. Sign-out comes last: it ends the
    // first session.
    let table: Vec<(Method, &str, Option<Value>, [u16; 6])> = vec![
        (Method::GET, "/api/v1/me", None, [ok, ok, ok, ok, forbidden, unauthorized]),
        (Method::GET, "/api/v1/tokens", None, [ok, ok, ok, ok, forbidden, unauthorized]),
        (Method::GET, "/api/v1/subscriptions", None, [ok, ok, ok, ok, forbidden, unauthorized]),
        (Method::GET, "/api/v1/orgs/dev-org-0/members", None, [ok, ok, ok, ok, forbidden, unauthorized]),
        (Method::POST, "/api/v1/orgs", Some(json!({"name": "ORG"})), [created, forbidden, forbidden, created, forbidden, unauthorized]),
        (
            Method::POST,
            "/api/v1/orgs/dev-org-0/invitations",
            Some(json!({"email": "friend@example.com", "role": "viewer"})),
            [accepted, forbidden, forbidden, accepted, forbidden, unauthorized],
        ),
        // Anyone may read a product; a token without an API scope may not even that.
        (Method::GET, "/api/v1/products/dev/nothing", None, [not_found, not_found, not_found, not_found, forbidden, not_found]),
        (Method::GET, "/api/v1/search", None, [ok, ok, ok, ok, ok, ok]),
        // Managing tokens and the session needs a session.
        (
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "more", "scopes": ["api:write"]})),
            [created, forbidden, forbidden, forbidden, forbidden, unauthorized],
        ),
        (Method::DELETE, "/api/v1/tokens/no-such-token", None, [not_found, forbidden, forbidden, forbidden, forbidden, unauthorized]),
        (Method::DELETE, "/api/v1/session", None, [none, forbidden, forbidden, forbidden, forbidden, unauthorized]),
    ];
    t.app.auth.create_organization("dev-org-0", "dev").await.unwrap();
    let mut failures = Vec::new();
    for (row, (method, path, body, expected)) in table.into_iter().enumerate() {
        for (caller, want) in expected.into_iter().enumerate() {
            // A fresh organization name for each call that creates one.
            let body = body.clone().map(|b| if b["name"] == "ORG" { json!({"name": format!("org-{row}-{caller}")}) } else { b });
            let response = call(caller, method.clone(), path, body).await.unwrap();
            let status = response.status().as_u16();
            if status >= 400 {
                assert_eq!(response.headers()["content-type"], "application/problem+json", "{method} {path} as {}", CALLERS[caller]);
            }
            if status != want {
                failures.push(format!("{method} {path} as {}: {status}, expected {want}", CALLERS[caller]));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

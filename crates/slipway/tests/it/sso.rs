//! Issue 18: single sign-on with OpenID Connect against a real provider, the example OP of
//! the certified zitadel OIDC library (in memory; users `test-user@localhost` and
//! `test-user2`, password `verysecure`), its login form filled in as a browser would.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode, Url};
use serde_json::json;
use slipway::config::{AuthMode, Secret, SsoConfig};
use slipway_auth::access::SiteRole;
use slipway_test_support::{Backend, TestApp};

/// The provider, killed on drop.
struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Provider {
    /// A port for the provider, chosen before Slipway starts (its issuer goes in the
    /// configuration), and the provider started once Slipway's callback address is known.
    fn port() -> u16 {
        std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    async fn start(port: u16, redirect_uri: &str) -> Provider {
        let bin = std::env::var("SLIPWAY_TEST_OIDC_OP")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/bin/oidc-op"));
        assert!(bin.exists(), "{} is missing: run scripts/install-test-deps", bin.display());
        let child = Command::new(bin)
            .env("PORT", port.to_string())
            .env("REDIRECT_URI", redirect_uri)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("the provider starts");
        let provider = Provider { child, issuer: format!("http://localhost:{port}/") };
        let discovery = format!("{}.well-known/openid-configuration", provider.issuer);
        for _ in 0..100 {
            if reqwest::get(&discovery).await.is_ok_and(|r| r.status().is_success()) {
                return provider;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the provider did not answer at {discovery}");
    }
}

fn corp(port: u16, sso_only: bool) -> SsoConfig {
    SsoConfig {
        name: "corp".into(),
        label: "Corp SSO".into(),
        issuer: format!("http://localhost:{port}/"),
        client_id: "web".into(),
        client_secret: Secret::new("secret"),
        create_accounts: true,
        sso_only,
    }
}

async fn setup(sso_only: bool) -> (TestApp, Provider) {
    let port = Provider::port();
    let t = Backend::with(|c| {
        c.auth.mode = AuthMode::Enforced;
        c.testing.clock = true;
        c.sso = vec![corp(port, sso_only)];
    })
    .await
    .spawn()
    .await;
    let provider = Provider::start(port, &t.url("/signin/sso/corp/callback")).await;
    (t, provider)
}

/// A browser's visit to the site: its cookies, kept by hand.
struct Browser<'a> {
    t: &'a TestApp,
    cookies: Vec<(String, String)>,
}

impl<'a> Browser<'a> {
    fn new(t: &'a TestApp) -> Browser<'a> {
        Browser { t, cookies: Vec::new() }
    }

    fn cookie_header(&self) -> String {
        self.cookies.iter().map(|(n, v)| format!("{n}={v}")).collect::<Vec<_>>().join("; ")
    }

    fn keep(&mut self, response: &reqwest::Response) {
        for value in response.headers().get_all("set-cookie") {
            let pair = value.to_str().unwrap().split(';').next().unwrap();
            let (name, value) = pair.split_once('=').unwrap();
            self.cookies.retain(|(n, _)| n != name);
            if !value.is_empty() {
                self.cookies.push((name.to_owned(), value.to_owned()));
            }
        }
    }

    fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.iter().find(|(n, _)| n == name).map(|(_, v)| v.clone())
    }

    /// GET a path of the site with this browser's cookies.
    async fn get(&mut self, url: &str) -> reqwest::Response {
        let response = self.t.client.get(url).header("cookie", self.cookie_header()).send().await.unwrap();
        self.keep(&response);
        response
    }

    /// Starts signing in with the provider: the provider's authorization URL.
    async fn start(&mut self) -> Url {
        let response = self.get(&self.t.url("/signin/sso/corp?next=%2Fsettings")).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert!(self.cookie("slipway_sso").is_some());
        let authorize = Url::parse(response.headers()["location"].to_str().unwrap()).unwrap();
        let query: Vec<(String, String)> = authorize.query_pairs().into_owned().collect();
        let has = |k: &str, v: Option<&str>| query.iter().any(|(qk, qv)| qk == k && v.is_none_or(|v| qv == v));
        assert!(has("code_challenge_method", Some("S256")) && has("code_challenge", None), "PKCE: {authorize}");
        assert!(has("nonce", None) && has("state", None) && has("response_type", Some("code")), "{authorize}");
        authorize
    }
}

/// Goes through the provider as a person would: its login form, filled in; returns the
/// callback URL it sends the browser back to.
async fn provider_login(authorize: &Url, user: &str) -> Url {
    let op = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let mut at = authorize.clone();
    let mut form_posted = false;
    for _ in 0..10 {
        let response = op.get(at.clone()).send().await.unwrap();
        if response.status().is_redirection() {
            let next = at.join(response.headers()["location"].to_str().unwrap()).unwrap();
            if next.path().ends_with("/signin/sso/corp/callback") {
                return next;
            }
            at = next;
            continue;
        }
        assert!(!form_posted, "the provider showed its form again: {}", response.text().await.unwrap());
        let page = response.text().await.unwrap();
        assert!(page.contains("action=\"/login/username\""), "{page}");
        let id = page.split("name=\"id\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
        let posted = op
            .post(at.join("/login/username").unwrap())
            .form(&[("id", id.as_str()), ("username", user), ("password", "verysecure")])
            .send()
            .await
            .unwrap();
        assert!(posted.status().is_redirection(), "{}", posted.status());
        at = at.join(posted.headers()["location"].to_str().unwrap()).unwrap();
        form_posted = true;
    }
    panic!("the provider never sent the browser back");
}

/// Signs in through the provider; the name of the account the session is for.
async fn sign_in(browser: &mut Browser<'_>, user: &str) -> String {
    let authorize = browser.start().await;
    let callback = provider_login(&authorize, user).await;
    let response = browser.get(callback.as_str()).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER, "{}", response.text().await.unwrap());
    assert_eq!(response.headers()["location"], "/settings");
    assert!(browser.cookie("slipway_sso").is_none(), "the state cookie is cleared");
    signed_in_as(browser).await
}

async fn signed_in_as(browser: &mut Browser<'_>) -> String {
    let me = browser.get(&browser.t.url("/api/v1/me")).await;
    assert_eq!(me.status(), StatusCode::OK);
    me.json::<serde_json::Value>().await.unwrap()["name"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_first_sign_in_creates_the_account_and_the_next_ones_use_it() {
    let (t, _provider) = setup(false).await;
    let page = t.get("/signin").await.text().await.unwrap();
    assert!(page.contains("href=\"/signin/sso/corp?next=%2F\"") && page.contains("Sign in with Corp SSO"), "{page}");

    let mut first = Browser::new(&t);
    assert_eq!(sign_in(&mut first, "test-user2").await, "test-user2");
    let me: serde_json::Value = first.get(&t.url("/api/v1/me")).await.json().await.unwrap();
    assert_eq!(me["email"], "test-user2@zitadel.ch", "the address the provider verified: {me}");
    let response = t.request(Method::POST, "/api/v1/session").json(&json!({"name": "test-user2", "password": ""})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "a created account has no password");

    let mut again = Browser::new(&t);
    assert_eq!(sign_in(&mut again, "test-user2").await, "test-user2", "linked: the same account");

    // The verified address links an existing account on its first sign-in.
    t.app.auth.create_user("zed", "test-user@zitadel.ch", "zed's own password", SiteRole::User).await.unwrap();
    let mut third = Browser::new(&t);
    assert_eq!(sign_in(&mut third, "test-user@localhost").await, "zed");
    let response =
        t.request(Method::POST, "/api/v1/session").json(&json!({"name": "zed", "password": "zed's own password"})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "without sso_only the password still works");
}

#[tokio::test]
async fn tampered_state_wrong_nonce_and_expired_or_replayed_answers_are_refused() {
    let (t, _provider) = setup(false).await;

    // A tampered state: no session, and the page says why.
    let mut browser = Browser::new(&t);
    let authorize = browser.start().await;
    let callback = provider_login(&authorize, "test-user2").await;
    let mut tampered = callback.clone();
    let pairs: Vec<(String, String)> =
        callback.query_pairs().into_owned().map(|(k, v)| if k == "state" { (k, format!("{v}x")) } else { (k, v) }).collect();
    tampered.query_pairs_mut().clear().extend_pairs(pairs);
    let response = browser.get(tampered.as_str()).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("Single sign-on did not work"));
    assert!(browser.cookie("slipway_session").is_none());

    // A callback link from someone else's sign-in (this browser holds another state).
    let mut victim = Browser::new(&t);
    let _ = victim.start().await;
    let response = victim.get(callback.as_str()).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(victim.cookie("slipway_session").is_none());

    // A nonce changed on the way to the provider: the ID token carries the wrong one.
    let mut browser = Browser::new(&t);
    let mut authorize = browser.start().await;
    let pairs: Vec<(String, String)> =
        authorize.query_pairs().into_owned().map(|(k, v)| if k == "nonce" { (k, "forged-nonce".into()) } else { (k, v) }).collect();
    authorize.query_pairs_mut().clear().extend_pairs(pairs);
    let callback = provider_login(&authorize, "test-user2").await;
    let response = browser.get(callback.as_str()).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let page = response.text().await.unwrap();
    assert!(page.contains("ID token does not hold"), "{page}");
    assert!(browser.cookie("slipway_session").is_none());

    // A code from another sign-in (the PKCE verifier does not match): the provider refuses it.
    let mut browser = Browser::new(&t);
    let first = provider_login(&browser.start().await, "test-user2").await;
    let second = browser.start().await;
    let state = second.query_pairs().find(|(k, _)| k == "state").unwrap().1.into_owned();
    let code = first.query_pairs().find(|(k, _)| k == "code").unwrap().1.into_owned();
    let mut injected = first.clone();
    injected.query_pairs_mut().clear().append_pair("code", &code).append_pair("state", &state);
    let response = browser.get(injected.as_str()).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("did not accept the code"));

    // An answer that comes after the sign-in expired, and one replayed.
    let mut browser = Browser::new(&t);
    let callback = provider_login(&browser.start().await, "test-user2").await;
    t.app.jobs.advance_test_clock(Duration::from_secs(11 * 60)).await.unwrap();
    let response = browser.get(callback.as_str()).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("unknown, used or expired"));
    let mut browser = Browser::new(&t);
    let authorize = browser.start().await;
    let callback = provider_login(&authorize, "test-user2").await;
    let held = browser.cookie("slipway_sso").unwrap();
    assert_eq!(browser.get(callback.as_str()).await.status(), StatusCode::SEE_OTHER);
    browser.cookies.push(("slipway_sso".into(), held));
    assert_eq!(browser.get(callback.as_str()).await.status(), StatusCode::UNPROCESSABLE_ENTITY, "a replayed answer");

    // The provider's own refusal is shown, not a server error; an unknown provider is 404.
    let response = browser.get(&t.url("/signin/sso/corp/callback?error=access_denied&error_description=cancelled")).await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(response.text().await.unwrap().contains("cancelled"));
    assert_eq!(browser.get(&t.url("/signin/sso/nobody")).await.status(), StatusCode::NOT_FOUND);
    let huge = format!("/signin/sso/corp/callback?code=x&state={}", "s".repeat(10_000));
    assert_eq!(browser.get(&t.url(&huge)).await.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn accounts_of_an_sso_only_provider_cannot_use_their_password() {
    let (t, _provider) = setup(true).await;
    t.app.auth.create_user("zed", "test-user@zitadel.ch", "zed's own password", SiteRole::User).await.unwrap();
    let response =
        t.request(Method::POST, "/api/v1/session").json(&json!({"name": "zed", "password": "zed's own password"})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "not linked yet");
    let mut browser = Browser::new(&t);
    assert_eq!(sign_in(&mut browser, "test-user@localhost").await, "zed");
    let response =
        t.request(Method::POST, "/api/v1/session").json(&json!({"name": "zed", "password": "zed's own password"})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("signs in with Corp SSO"), "{body}");
    let (status, body) = crate::accounts::token_status(&t, "zed", "zed's own password").await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.to_string().contains("access token"), "{body}");
}

/// Each start fetches the provider's discovery document and stores a pending sign-in:
/// one client may start 30 in ten minutes, then waits; another client is not held up.
#[tokio::test]
async fn one_client_cannot_start_sign_ins_without_end() {
    // No provider answers here: the starts fail after being counted, which is the point.
    let unreachable = Provider::port();
    let t = Backend::with(|c| {
        c.auth.mode = AuthMode::Enforced;
        c.sso = vec![corp(unreachable, false)];
        c.trusted_proxies = vec!["127.0.0.1/32".into()];
    })
    .await
    .spawn()
    .await;
    let start = |client: &'static str| t.request(Method::GET, "/signin/sso/corp").header("x-forwarded-for", client).send();
    for _ in 0..30 {
        let page = start("203.0.113.7").await.unwrap();
        assert_eq!(page.status(), StatusCode::UNPROCESSABLE_ENTITY, "the provider is unreachable: refused, counted");
    }
    let held = start("203.0.113.7").await.unwrap();
    assert_eq!(held.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(held.headers().contains_key("retry-after"));
    assert_eq!(start("203.0.113.8").await.unwrap().status(), StatusCode::UNPROCESSABLE_ENTITY, "another client starts");
}

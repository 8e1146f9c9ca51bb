//! Issue 18: two-factor sign-in with TOTP (RFC 6238), its codes computed by an independent
//! implementation (pyotp), one-time recovery codes, throttled guessing, and the site
//! requiring it of staff; registry clients are told to use an access token.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slipway::config::{AuthMode, TwoFactorGroup};
use slipway_auth::access::SiteRole;
use slipway_auth::scope::TokenRule;
use slipway_test_support::{Backend, Caller, TestApp, Via};

use crate::accounts::token_status;

const PASSWORD: &str = "a long enough password";
const CSRF: &str = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff";

async fn app(required_for: Vec<TwoFactorGroup>) -> TestApp {
    Backend::with(|c| {
        c.auth.mode = AuthMode::Enforced;
        c.testing.clock = true;
        c.auth.two_factor_required_for = required_for;
    })
    .await
    .spawn()
    .await
}

/// The code pyotp computes for `secret` at the server's current time.
fn pyotp(t: &TestApp, secret: &str) -> String {
    let python = std::env::var("SLIPWAY_TEST_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/venv/bin/python"));
    assert!(python.exists(), "{} is missing: run scripts/install-test-deps (it installs pyotp)", python.display());
    let at = (t.app.auth.now_ms() / 1000).to_string();
    let secret = secret.replace(' ', "");
    let out = Command::new(python)
        .args(["-c", "import pyotp, sys; print(pyotp.TOTP(sys.argv[1]).at(int(sys.argv[2])))", &secret, &at])
        .output()
        .expect("python runs");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let code = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert_eq!(code.len(), 6, "{code}");
    code
}

/// Moves the server's clock to the next 30-second step, so a new code is due.
async fn next_step(t: &TestApp) {
    t.app.jobs.advance_test_clock(Duration::from_secs(30)).await.unwrap();
}

async fn api_sign_in(t: &TestApp, name: &str, password: &str, otp: Option<&str>) -> (StatusCode, Value) {
    let mut body = json!({"name": name, "password": password});
    if let Some(otp) = otp {
        body["otp"] = json!(otp);
    }
    let response = t.request(Method::POST, "/api/v1/session").json(&body).send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

async fn send(t: &TestApp, caller: &Caller, method: Method, path: &str, body: Value) -> (StatusCode, Value) {
    let response = t.call(caller, method, path).json(&body).send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

/// Turns two-factor sign-in on for `name` through the API; returns (secret, recovery
/// codes, the code that turned it on).
async fn enrol(t: &TestApp, name: &str) -> (String, Vec<String>, String) {
    let caller = t.caller(name, PASSWORD, Via::Session).await;
    let (status, enrolment) = send(t, &caller, Method::POST, "/api/v1/me/two-factor", json!({})).await;
    assert_eq!(status, StatusCode::CREATED, "{enrolment}");
    let secret = enrolment["secret"].as_str().unwrap().to_owned();
    assert!(enrolment["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/Slipway:"), "{enrolment}");
    let (status, wrong) = send(t, &caller, Method::POST, "/api/v1/me/two-factor/enable", json!({"code": "000000"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{wrong}");
    let code = pyotp(t, &secret);
    let (status, codes) = send(t, &caller, Method::POST, "/api/v1/me/two-factor/enable", json!({"code": code})).await;
    assert_eq!(status, StatusCode::OK, "{codes}");
    let codes: Vec<String> = codes["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(codes.len(), 10);
    (secret, codes, code)
}

#[tokio::test]
async fn codes_from_an_independent_totp_sign_in_once_and_recovery_codes_once() {
    let t = app(Vec::new()).await;
    t.app.auth.create_user("tess", "tess@example.com", PASSWORD, SiteRole::User).await.unwrap();
    let (secret, recovery, used_at_enrolment) = enrol(&t, "tess").await;

    // The password alone no longer opens a session; the code does, once.
    let (status, body) = api_sign_in(&t, "tess", PASSWORD, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("otp"), "{body}");
    // The same code again (the clock runs: a code computed now may be the next step's).
    let (status, body) = api_sign_in(&t, "tess", PASSWORD, Some(&used_at_enrolment)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "the code that turned it on is used: {body}");
    next_step(&t).await;
    let code = pyotp(&t, &secret);
    let (status, body) = api_sign_in(&t, "tess", PASSWORD, Some(&code)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = api_sign_in(&t, "tess", PASSWORD, Some(&code)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a replayed code: {body}");
    let (status, body) = api_sign_in(&t, "tess", "wrong password", Some(&code)).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // A recovery code (typed in capitals, with spaces) works once.
    let typed = format!(" {} ", recovery[3].to_uppercase());
    let (status, body) = api_sign_in(&t, "tess", PASSWORD, Some(&typed)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, _) = api_sign_in(&t, "tess", PASSWORD, Some(&recovery[3])).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let caller = t.caller("tess", PASSWORD, Via::Bearer).await;
    let (status, _) = send(&t, &caller, Method::GET, "/api/v1/me/two-factor", json!({})).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "an access token cannot manage two-factor sign-in");

    // Registry clients cannot answer for a code: the password is refused with the way out,
    // and an access token works.
    let (status, body) = token_status(&t, "tess", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(body.to_string().contains("use an access token as the password"), "{body}");
    let (token, _) = t.app.auth.create_token("tess", "laptop", &[TokenRule::parse("tess/*:pull").unwrap()], None).await.unwrap();
    assert_eq!(token_status(&t, "tess", &token).await.0, StatusCode::OK);

    // Turned off with the password: the password alone signs in again.
    let (cookie, csrf) = web_session(&t, "tess", &secret).await;
    let status =
        t.request(Method::GET, "/api/v1/me/two-factor").header("cookie", &cookie).send().await.unwrap().json::<Value>().await.unwrap();
    assert_eq!(status["enabled"], true);
    assert_eq!(status["recovery_codes_left"], 9, "{status}");
    let response = t
        .request(Method::DELETE, "/api/v1/me/two-factor")
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(api_sign_in(&t, "tess", PASSWORD, None).await.0, StatusCode::OK);
    assert_eq!(token_status(&t, "tess", PASSWORD).await.0, StatusCode::OK);
}

/// Signs in through the pages: the password, then the code page; returns the session
/// cookie and the CSRF token of its pages.
async fn web_session(t: &TestApp, name: &str, secret: &str) -> (String, String) {
    let response = t
        .request(Method::POST, "/signin")
        .header("cookie", format!("slipway_csrf={CSRF}"))
        .form(&[("csrf", CSRF), ("name", name), ("password", PASSWORD), ("next", "/settings")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/signin/two-factor?next=%2Fsettings");
    let challenge = set_cookie(&response, "slipway_signin");
    assert!(set_cookie_line(&response, "slipway_signin").contains("HttpOnly; SameSite=Strict"));
    let cookies = format!("slipway_csrf={CSRF}; {challenge}");
    let page = t.request(Method::GET, "/signin/two-factor").header("cookie", &cookies).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Authentication code") && page.contains("recovery codes"), "{page}");
    next_step(t).await;
    let response = t
        .request(Method::POST, "/signin/two-factor")
        .header("cookie", &cookies)
        .form(&[("csrf", CSRF), ("code", &pyotp(t, secret)), ("next", "/settings")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(response.headers()["location"], "/settings");
    let session = set_cookie(&response, "slipway_session");
    assert!(set_cookie_line(&response, "slipway_signin").contains("Max-Age=0"), "the challenge cookie is cleared");
    // The challenge is used up: the page says to sign in again.
    let again = t.request(Method::GET, "/signin/two-factor").header("cookie", &cookies).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    let settings = t.request(Method::GET, "/settings").header("cookie", &session).send().await.unwrap().text().await.unwrap();
    let csrf = settings.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    (session, csrf)
}

fn set_cookie_line(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name} cookie set"))
}

fn set_cookie(response: &reqwest::Response, name: &str) -> String {
    set_cookie_line(response, name).split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn guessing_codes_is_slowed_down_even_with_the_right_password() {
    let t = app(Vec::new()).await;
    t.app.auth.create_user("gus", "gus@example.com", PASSWORD, SiteRole::User).await.unwrap();
    let (secret, _, _) = enrol(&t, "gus").await;
    next_step(&t).await;
    for guess in 0..5 {
        let (status, body) = api_sign_in(&t, "gus", PASSWORD, Some(&format!("{:06}", 100_000 + guess))).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "guess {guess}: {body}");
    }
    // Counted before it is checked: while the delay runs even the right code is refused.
    let response = t
        .request(Method::POST, "/api/v1/session")
        .json(&json!({"name": "gus", "password": PASSWORD, "otp": pyotp(&t, &secret)}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(response.headers().contains_key("retry-after"));
    t.app.jobs.advance_test_clock(Duration::from_secs(2)).await.unwrap();
    next_step(&t).await;
    assert_eq!(api_sign_in(&t, "gus", PASSWORD, Some(&pyotp(&t, &secret))).await.0, StatusCode::OK);
    // Hostile sizes are refused as wrong codes, not processed.
    next_step(&t).await;
    let (status, _) = api_sign_in(&t, "gus", PASSWORD, Some(&"9".repeat(100_000))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn staff_set_it_up_before_any_session_and_cannot_turn_it_off() {
    let t = app(vec![TwoFactorGroup::Staff]).await;
    t.app.auth.create_user("mo", "mo@example.com", PASSWORD, SiteRole::Moderator).await.unwrap();
    t.app.auth.create_user("ursula", "ursula@example.com", PASSWORD, SiteRole::User).await.unwrap();
    assert_eq!(api_sign_in(&t, "ursula", PASSWORD, None).await.0, StatusCode::OK, "not required of ordinary users");
    let (status, body) = api_sign_in(&t, "mo", PASSWORD, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("set it up"), "{body}");
    let (status, body) = token_status(&t, "mo", PASSWORD).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    // The browser is taken through the set-up: a QR code and the key, then the code.
    let response = t
        .request(Method::POST, "/signin")
        .header("cookie", format!("slipway_csrf={CSRF}"))
        .form(&[("csrf", CSRF), ("name", "mo"), ("password", PASSWORD), ("next", "/moderation")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert!(response.headers().get_all("set-cookie").iter().all(|v| !v.to_str().unwrap().starts_with("slipway_session=")));
    let cookies = format!("slipway_csrf={CSRF}; {}", set_cookie(&response, "slipway_signin"));
    let page = t.request(Method::GET, "/signin/two-factor").header("cookie", &cookies).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("<svg") && page.contains("requires two-factor sign-in"), "{page}");
    let secret = page.split("id=\"two-factor-secret\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    // Reloading keeps the key an authenticator may have scanned.
    let again = t.request(Method::GET, "/signin/two-factor").header("cookie", &cookies).send().await.unwrap().text().await.unwrap();
    assert!(again.contains(&secret));
    let response = t
        .request(Method::POST, "/signin/two-factor")
        .header("cookie", &cookies)
        .form(&[("csrf", CSRF), ("code", &pyotp(&t, &secret)), ("next", "/moderation")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let session = set_cookie(&response, "slipway_session");
    let codes_page = response.text().await.unwrap();
    assert_eq!(codes_page.matches("<li><code>").count(), 10, "{codes_page}");
    assert!(codes_page.contains("href=\"/moderation\""), "{codes_page}");

    let settings = t.request(Method::GET, "/settings/two-factor").header("cookie", &session).send().await.unwrap().text().await.unwrap();
    assert!(settings.contains("cannot be turned off") && !settings.contains("two-factor-disable"), "{settings}");
    let csrf = settings.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap();
    let response = t
        .request(Method::POST, "/settings/two-factor/disable")
        .header("cookie", &session)
        .form(&[("csrf", csrf), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.text().await.unwrap().contains("cannot be turned off"));
}

#[tokio::test]
async fn the_settings_page_sets_it_up_and_a_forged_challenge_is_no_sign_in() {
    let t = app(Vec::new()).await;
    t.app.auth.create_user("pat", "pat@example.com", PASSWORD, SiteRole::User).await.unwrap();
    let Caller::Session { cookie, .. } = t.caller("pat", PASSWORD, Via::Session).await else { unreachable!() };
    let page = t.request(Method::GET, "/settings/two-factor").header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("is <strong>off</strong>") && page.contains("id=\"two-factor-begin\""), "{page}");
    let csrf = page.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let post = |path: &'static str, fields: Vec<(&'static str, String)>| {
        let mut form = vec![("csrf", csrf.clone())];
        form.extend(fields);
        t.request(Method::POST, path).header("cookie", &cookie).form(&form).send()
    };
    assert_eq!(post("/settings/two-factor/setup", vec![]).await.unwrap().status(), StatusCode::SEE_OTHER);
    let page = t.request(Method::GET, "/settings/two-factor").header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    let secret = page.split("id=\"two-factor-secret\">").nth(1).unwrap().split('<').next().unwrap().to_owned();
    let wrong = post("/settings/two-factor/enable", vec![("code", "123 456".into())]).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(wrong.text().await.unwrap().contains(&secret), "the same key is shown again");
    let codes = post("/settings/two-factor/enable", vec![("code", pyotp(&t, &secret))]).await.unwrap().text().await.unwrap();
    assert_eq!(codes.matches("<li><code>").count(), 10, "{codes}");
    let renewed = post("/settings/two-factor/recovery-codes", vec![("password", PASSWORD.into())]).await.unwrap().text().await.unwrap();
    assert_eq!(renewed.matches("<li><code>").count(), 10);
    let page = t.request(Method::GET, "/settings/two-factor").header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("is <strong>on</strong>") && page.contains("10 unused recovery codes"), "{page}");

    // A made-up or tampered challenge cookie is no sign-in.
    for forged in ["slipway_signin=0000", "slipway_signin="] {
        let cookies = format!("slipway_csrf={CSRF}; {forged}");
        let response = t
            .request(Method::POST, "/signin/two-factor")
            .header("cookie", &cookies)
            .form(&[("csrf", CSRF), ("code", &pyotp(&t, &secret))])
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(response.headers().get_all("set-cookie").iter().all(|v| !v.to_str().unwrap().starts_with("slipway_session=")));
    }
}

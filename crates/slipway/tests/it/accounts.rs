//! Self-service accounts through the REST API, with mail delivered to a real SMTP server
//! (aiosmtpd, on loopback) and read back from its maildir.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};

use slipway_test_support::{Backend, TestApp};

/// aiosmtpd storing every message in a maildir; killed on drop.
pub(crate) struct SmtpSink {
    child: Child,
    maildir: tempfile::TempDir,
    port: u16,
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl SmtpSink {
    pub(crate) fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub(crate) async fn start() -> SmtpSink {
        let python = std::env::var("SLIPWAY_TEST_PYTHON")
            .map(PathBuf::from)
            .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/venv/bin/python"));
        assert!(python.exists(), "{} is missing: run scripts/install-test-deps (it installs aiosmtpd)", python.display());
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let maildir = tempfile::tempdir().unwrap();
        let child = Command::new(python)
            .args(["-m", "aiosmtpd", "-n", "-l", &format!("127.0.0.1:{port}"), "-c", "aiosmtpd.handlers.Mailbox"])
            .arg(maildir.path().join("mail"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start aiosmtpd");
        // Built before waiting, so a failed start still kills and reaps the process.
        let sink = SmtpSink { child, maildir, port };
        // Ready once it greets a session (220), not merely once its port accepts: a busy
        // machine can take a while between the two, and mail sent meanwhile would wait for
        // its retry.
        for _ in 0..150 {
            if greets(port).await {
                return sink;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("aiosmtpd did not start on port {port}");
    }

    /// Every delivered message, oldest first, with quoted-printable soft line breaks and
    /// `=3D` escapes undone (the only encodings these ASCII messages get).
    pub(crate) fn messages(&self) -> Vec<String> {
        let dir = self.maildir.path().join("mail").join("new");
        let mut files: Vec<_> = std::fs::read_dir(&dir).map(|d| d.flatten().collect()).unwrap_or_default();
        files.sort_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|e| std::fs::read_to_string(e.path()).unwrap().replace("=\r\n", "").replace("=\n", "").replace("=3D", "="))
            .collect()
    }
}

/// Whether an SMTP server on `port` answers a new session with its 220 greeting.
async fn greets(port: u16) -> bool {
    use tokio::io::AsyncReadExt;
    let Ok(mut stream) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await else { return false };
    let mut greeting = [0u8; 3];
    matches!(tokio::time::timeout(Duration::from_secs(5), stream.read_exact(&mut greeting)).await, Ok(Ok(_)) if &greeting == b"220")
}

/// A server that enforces authentication and sends its mail to `smtp`.
pub(crate) async fn with_mail(smtp: &SmtpSink) -> TestApp {
    let url = smtp.url();
    Backend::with(|c| {
        c.auth.mode = slipway::config::AuthMode::Enforced;
        c.mail.smtp_url = Some(slipway::config::Secret::new(url));
    })
    .await
    .spawn()
    .await
}

/// Delivers the outbox once, as the background loop in `serve` does.
pub(crate) async fn deliver(t: &TestApp) -> usize {
    t.app.deliver_mail().await.unwrap()
}

/// The hex secret following `marker` in a message.
pub(crate) fn secret_after(message: &str, marker: &str) -> String {
    let start = message.find(marker).unwrap_or_else(|| panic!("{marker} not in {message}")) + marker.len();
    message[start..].chars().take_while(char::is_ascii_hexdigit).collect()
}

pub(crate) async fn token_status(t: &TestApp, user: &str, password: &str) -> (StatusCode, serde_json::Value) {
    let response =
        t.request(Method::GET, "/auth/token").query(&[("service", "slipway")]).basic_auth(user, Some(password)).send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn sign_up_verify_sign_in_tokens_and_reset() {
    let smtp = SmtpSink::start().await;
    let t = with_mail(&smtp).await;
    let password = "first password 1";

    let created = t
        .request(Method::POST, "/api/v1/accounts")
        .json(&serde_json::json!({"name": "newbie", "email": "newbie@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    let duplicate = t
        .request(Method::POST, "/api/v1/accounts")
        .json(&serde_json::json!({"name": "newbie", "email": "other@example.com", "password": password}))
        .send()
        .await
        .unwrap();
    // A taken name is a conflict, as when two sign-ups race for it (it answered 422 unless they raced).
    assert_eq!(duplicate.status(), StatusCode::CONFLICT);
    assert_eq!(duplicate.headers()["content-type"], "application/problem+json");

    let (status, body) = token_status(&t, "newbie", password).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("not verified"), "{body}");

    assert_eq!(deliver(&t).await, 1);
    let mail = smtp.messages().pop().expect("verification mail");
    assert!(mail.contains("To: newbie@example.com"), "{mail}");
    let link_token = secret_after(&mail, "/verify-email?token=");
    // No public URL is configured: links point at the listen address.
    assert!(mail.contains(&format!("http://{}/verify-email?token=", t.app.config.listen)), "links point at this server: {mail}");
    let page = t.get(&format!("/verify-email?token={link_token}")).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("verified"));
    // Single use: refused as the API refuses it (422), not with a page-only 400.
    assert_eq!(t.get(&format!("/verify-email?token={link_token}")).await.status(), StatusCode::UNPROCESSABLE_ENTITY, "single use");
    assert_eq!(token_status(&t, "newbie", password).await.0, StatusCode::OK);

    // A browser session: cookie flags, CSRF on state changes, access tokens.
    let session =
        t.request(Method::POST, "/api/v1/session").json(&serde_json::json!({"name": "newbie", "password": password})).send().await.unwrap();
    assert_eq!(session.status(), StatusCode::OK);
    let set_cookie = session.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Lax"), "{set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    let csrf = session.json::<serde_json::Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_owned();
    let me: serde_json::Value = t.request(Method::GET, "/api/v1/me").header("cookie", &cookie).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["name"], "newbie");
    let new_token = serde_json::json!({"name": "laptop", "scopes": ["newbie/*:pull,push"], "expires_days": 30});
    let forged = t.request(Method::POST, "/api/v1/tokens").header("cookie", &cookie).json(&new_token).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let made = t
        .request(Method::POST, "/api/v1/tokens")
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&new_token)
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);
    let made: serde_json::Value = made.json().await.unwrap();
    let secret = made["token"].as_str().unwrap().to_owned();
    assert_eq!(token_status(&t, "newbie", &secret).await.0, StatusCode::OK, "the token works as a password");
    let listed: serde_json::Value =
        t.request(Method::GET, "/api/v1/tokens").header("cookie", &cookie).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["tokens"][0]["name"], "laptop");
    assert!(listed["tokens"][0]["last_used_at"].is_i64(), "last use is recorded: {listed}");
    assert!(!listed.to_string().contains(&secret), "the secret is shown once only");
    let revoked = t
        .request(Method::DELETE, &format!("/api/v1/tokens/{}", made["id"].as_str().unwrap()))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(revoked.status(), StatusCode::NO_CONTENT);
    assert_eq!(token_status(&t, "newbie", &secret).await.0, StatusCode::UNAUTHORIZED);

    // Password reset: mailed code, new password, every session ended.
    let unknown =
        t.request(Method::POST, "/api/v1/password-reset").json(&serde_json::json!({"email": "nobody@example.com"})).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::ACCEPTED, "no hint whether the address exists");
    let asked =
        t.request(Method::POST, "/api/v1/password-reset").json(&serde_json::json!({"email": "newbie@example.com"})).send().await.unwrap();
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    assert_eq!(deliver(&t).await, 1, "only the real account gets mail");
    let mail = smtp.messages().pop().unwrap();
    let code = secret_after(&mail, "/reset-password?token=");
    let new_password = "second password 2";
    let reset = t
        .request(Method::POST, "/api/v1/password-reset/confirm")
        .json(&serde_json::json!({"token": code, "password": new_password}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_eq!(t.request(Method::GET, "/api/v1/me").header("cookie", &cookie).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(token_status(&t, "newbie", password).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(token_status(&t, "newbie", new_password).await.0, StatusCode::OK);
}

#[tokio::test]
async fn failed_sign_ins_are_throttled() {
    let t = Backend::enforced().await.spawn().await;
    t.app.auth.create_user("target", "target@example.com", "the right password", slipway_auth::access::SiteRole::User).await.unwrap();
    // Five free attempts per name and address, then growing delays (tests/it/throttle.rs).
    for _ in 0..5 {
        assert_eq!(token_status(&t, "target", "guess").await.0, StatusCode::UNAUTHORIZED);
    }
    let (status, body) = token_status(&t, "target", "the right password").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    let web = t
        .request(Method::POST, "/api/v1/session")
        .json(&serde_json::json!({"name": "target", "password": "the right password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(web.status(), StatusCode::TOO_MANY_REQUESTS);
    // Other accounts are unaffected.
    t.app.auth.create_user("bystander", "by@example.com", "another password", slipway_auth::access::SiteRole::User).await.unwrap();
    assert_eq!(token_status(&t, "bystander", "another password").await.0, StatusCode::OK);
}

#[tokio::test]
async fn organizations_invite_members_by_email() {
    let smtp = SmtpSink::start().await;
    let t = with_mail(&smtp).await;
    let password = "publisher password";
    for name in ["founder", "bob", "mallory"] {
        t.app.auth.create_user(name, &format!("{name}@example.com"), password, slipway_auth::access::SiteRole::User).await.unwrap();
    }
    let (founder, founder_csrf) = t.sign_in("founder", password).await;
    let made = t
        .request(Method::POST, "/api/v1/orgs")
        .header("cookie", &founder)
        .header("x-csrf-token", &founder_csrf)
        .json(&serde_json::json!({"name": "widgets"}))
        .send()
        .await
        .unwrap();
    assert_eq!(made.status(), StatusCode::CREATED);

    let (mallory, mallory_csrf) = t.sign_in("mallory", password).await;
    let refused = t
        .request(Method::POST, "/api/v1/orgs/widgets/invitations")
        .header("cookie", &mallory)
        .header("x-csrf-token", &mallory_csrf)
        .json(&serde_json::json!({"email": "mallory@example.com", "role": "owner"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN, "only owners invite");

    let invited = t
        .request(Method::POST, "/api/v1/orgs/widgets/invitations")
        .header("cookie", &founder)
        .header("x-csrf-token", &founder_csrf)
        .json(&serde_json::json!({"email": "bob@example.com", "role": "maintainer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(invited.status(), StatusCode::ACCEPTED);
    assert_eq!(deliver(&t).await, 1);
    let mail = smtp.messages().pop().unwrap();
    assert!(mail.contains("To: bob@example.com") && mail.contains("widgets"), "{mail}");
    let code = secret_after(&mail, "/invitations/accept?code=slw_");

    let (bob, bob_csrf) = t.sign_in("bob", password).await;
    let accept = |cookie: String, csrf: String| {
        let t = &t;
        let code = code.clone();
        async move {
            t.request(Method::POST, "/api/v1/invitations/accept")
                .header("cookie", cookie)
                .header("x-csrf-token", csrf)
                .json(&serde_json::json!({"token": format!("slw_{code}")}))
                .send()
                .await
                .unwrap()
        }
    };
    let accepted = accept(bob.clone(), bob_csrf.clone()).await;
    assert_eq!(accepted.status(), StatusCode::OK);
    assert_eq!(accepted.json::<serde_json::Value>().await.unwrap()["role"], "maintainer");
    assert_eq!(accept(mallory, mallory_csrf).await.status(), StatusCode::UNPROCESSABLE_ENTITY, "single use");

    let members: serde_json::Value =
        t.request(Method::GET, "/api/v1/orgs/widgets/members").header("cookie", &founder).send().await.unwrap().json().await.unwrap();
    assert_eq!(members["members"], serde_json::json!([{"name": "bob", "role": "maintainer"}, {"name": "founder", "role": "owner"}]));
    // Membership shows up in registry grants at bob's next token.
    let grant = t
        .request(Method::GET, "/auth/token")
        .query(&[("service", "slipway"), ("scope", "repository:widgets/app:pull,push,delete")])
        .basic_auth("bob", Some(password))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = grant.json().await.unwrap();
    let payload = body["token"].as_str().unwrap().split('.').nth(1).unwrap().to_owned();
    use base64::Engine;
    let claims: serde_json::Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["access"][0]["actions"], serde_json::json!(["pull", "push"]));
}

// ---- issue 14: mail links, reset limits, sign-up enumeration, tokens revoked on reset ----

/// A server like `with_mail`'s, adjusted further.
pub(crate) async fn with_mail_and(smtp: &SmtpSink, adjust: impl FnOnce(&mut slipway::config::Config)) -> TestApp {
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    Backend::with(|c| {
        c.auth.mode = slipway::config::AuthMode::Enforced;
        c.mail.smtp_url = Some(slipway::config::Secret::new(url));
        adjust(c);
    })
    .await
    .spawn()
    .await
}

async fn ask_reset(t: &TestApp, email: &str) -> StatusCode {
    t.request(Method::POST, "/api/v1/password-reset").json(&serde_json::json!({"email": email})).send().await.unwrap().status()
}

fn mail_to<'a>(smtp_messages: &'a [String], to: &str) -> Vec<&'a String> {
    smtp_messages.iter().filter(|m| m.contains(&format!("To: {to}"))).collect()
}

/// Issue 14 item 3: `POST /api/v1/password-reset` with `Host: evil.example` mailed the
/// real user `http://evil.example/reset-password?token=...`; verification mail was built
/// the same way. Links come from the public URL, else the listen address.
#[tokio::test]
async fn mail_links_ignore_the_requests_host_headers() {
    let smtp = SmtpSink::start().await;
    let hostile = |request: reqwest::RequestBuilder| {
        request.header("host", "evil.example").header("x-forwarded-host", "evil.example").header("x-forwarded-proto", "https")
    };
    for public_url in [Some("http://store.example.test"), None] {
        let t = with_mail_and(&smtp, |c| c.auth.public_url = public_url.map(str::to_owned)).await;
        let expected = public_url.map_or_else(|| format!("http://{}", t.app.config.listen), str::to_owned);
        t.app
            .auth
            .create_user("victim", "victim@example.com", "victim keeps a long passphrase", slipway_auth::access::SiteRole::User)
            .await
            .unwrap();
        let asked = hostile(t.request(Method::POST, "/api/v1/password-reset")).json(&serde_json::json!({"email": "victim@example.com"}));
        assert_eq!(asked.send().await.unwrap().status(), StatusCode::ACCEPTED);
        let signed_up = hostile(t.request(Method::POST, "/api/v1/accounts"))
            .json(&serde_json::json!({"name": "fresh", "email": "fresh@example.com", "password": "an unrelated passphrase 7"}));
        assert_eq!(signed_up.send().await.unwrap().status(), StatusCode::CREATED);
        assert_eq!(deliver(&t).await, 2);
        let messages = smtp.messages();
        for (to, link) in [("victim@example.com", "/reset-password?token="), ("fresh@example.com", "/verify-email?token=")] {
            let mail = mail_to(&messages, to).pop().unwrap_or_else(|| panic!("no mail to {to}"));
            assert!(!mail.contains("evil.example"), "{mail}");
            assert!(mail.contains(&format!("{expected}{link}")), "links start at {expected}: {mail}");
        }
    }
}

/// Issue 14 item 13: 30 reset requests queued 30 mails to one inbox. A code mailed in the
/// last 15 minutes stands (no new mail), and requests are limited per address; the answer
/// never changes.
#[tokio::test]
async fn repeated_reset_requests_for_one_address_send_one_mail() {
    let smtp = SmtpSink::start().await;
    let t = with_mail(&smtp).await;
    t.app.auth.create_user("busy", "busy@example.com", "busy keeps a long passphrase", slipway_auth::access::SiteRole::User).await.unwrap();
    for _ in 0..30 {
        assert_eq!(ask_reset(&t, "busy@example.com").await, StatusCode::ACCEPTED);
    }
    assert_eq!(deliver(&t).await, 1);
    assert_eq!(mail_to(&smtp.messages(), "busy@example.com").len(), 1);
}

/// Issue 14 item 13: one client could ask for resets of any number of addresses. After
/// its allowance (20 an hour), its requests send no mail, even for a real account; the
/// answer stays 202.
#[tokio::test]
async fn reset_requests_from_one_client_are_limited() {
    let smtp = SmtpSink::start().await;
    let t = with_mail(&smtp).await;
    t.app
        .auth
        .create_user("later", "later@example.com", "later keeps a long passphrase", slipway_auth::access::SiteRole::User)
        .await
        .unwrap();
    for i in 0..20 {
        assert_eq!(ask_reset(&t, &format!("someone{i}@example.com")).await, StatusCode::ACCEPTED);
    }
    assert_eq!(ask_reset(&t, "later@example.com").await, StatusCode::ACCEPTED);
    assert_eq!(deliver(&t).await, 0, "the client's allowance is spent");
}

/// Issue 14 item 14: sign-up with a taken email answered 409, telling anyone who has an
/// account. It now answers as a sign-up that worked, and the address's owner is told by
/// mail; no account is made. A taken name is still refused (names are public).
#[tokio::test]
async fn sign_up_with_a_taken_email_answers_as_a_new_one_and_tells_the_owner() {
    let smtp = SmtpSink::start().await;
    let t = with_mail(&smtp).await;
    t.app
        .auth
        .create_user("owner", "owner@example.com", "owner keeps a long passphrase", slipway_auth::access::SiteRole::User)
        .await
        .unwrap();
    let sign_up = |name: &str, email: &str| {
        t.request(Method::POST, "/api/v1/accounts")
            .json(&serde_json::json!({"name": name, "email": email, "password": "some password 1"}))
            .send()
    };
    let new = sign_up("newcomer", "newcomer@example.com").await.unwrap();
    let taken = sign_up("intruder", "owner@example.com").await.unwrap();
    assert_eq!((new.status(), taken.status()), (StatusCode::CREATED, StatusCode::CREATED));
    assert_eq!(new.headers()["content-type"], taken.headers()["content-type"]);
    let (new, taken): (serde_json::Value, serde_json::Value) = (new.json().await.unwrap(), taken.json().await.unwrap());
    assert_eq!(new, serde_json::json!({"name": "newcomer", "email": "newcomer@example.com", "verified": false}));
    assert_eq!(taken, serde_json::json!({"name": "intruder", "email": "owner@example.com", "verified": false}));
    assert!(t.app.db.identity().account_by_name("intruder").await.unwrap().is_none(), "no account is made");

    assert_eq!(deliver(&t).await, 2);
    let messages = smtp.messages();
    let note = mail_to(&messages, "owner@example.com").pop().expect("the owner is told");
    assert!(note.contains("someone tried to sign up") && !note.contains("token="), "{note}");
    // The owner's note is sent once a window, however many attempts.
    sign_up("intruder2", "owner@example.com").await.unwrap();
    assert_eq!(deliver(&t).await, 0);

    let name_taken = sign_up("owner", "elsewhere@example.com").await.unwrap();
    assert_ne!(name_taken.status(), StatusCode::CREATED, "a taken name is refused");
    assert_eq!(name_taken.headers()["content-type"], "application/problem+json");
}

/// Issue 14 item 17: access tokens survived a password reset. The reset revokes the
/// account's access tokens with the password change, and the owner is told by mail.
#[tokio::test]
async fn a_password_reset_revokes_the_accounts_access_tokens() {
    let smtp = SmtpSink::start().await;
    let t = with_mail(&smtp).await;
    let password = "first password 1";
    t.app.auth.create_user("holder", "holder@example.com", password, slipway_auth::access::SiteRole::User).await.unwrap();
    let rules = [slipway_auth::scope::TokenRule::parse("holder/*:pull").unwrap()];
    let (token, _) = t.app.auth.create_token("holder", "ci", &rules, None).await.unwrap();
    assert_eq!(token_status(&t, "holder", &token).await.0, StatusCode::OK, "the token works before the reset");

    assert_eq!(ask_reset(&t, "holder@example.com").await, StatusCode::ACCEPTED);
    assert_eq!(deliver(&t).await, 1);
    let code = secret_after(&smtp.messages().pop().unwrap(), "/reset-password?token=");
    let reset = t
        .request(Method::POST, "/api/v1/password-reset/confirm")
        .json(&serde_json::json!({"token": code, "password": "second password 2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), StatusCode::NO_CONTENT);
    assert_eq!(token_status(&t, "holder", &token).await.0, StatusCode::UNAUTHORIZED, "the token is revoked");
    assert_eq!(token_status(&t, "holder", "second password 2").await.0, StatusCode::OK);

    assert_eq!(deliver(&t).await, 1);
    let told = smtp.messages().pop().unwrap();
    assert!(told.contains("To: holder@example.com") && told.contains("password of your Slipway account was just changed"), "{told}");
    assert!(told.contains("access token was revoked"), "{told}");
}

// ---- issue 14: invitations bound to the invited address, password policy ----

/// Issue 14 item 16: an invitation could be accepted by any account holding its code.
/// Only an account whose verified email is the invited address (in any case) accepts it;
/// a refused attempt does not use it up.
#[tokio::test]
async fn invitations_are_accepted_only_by_the_invited_verified_address() {
    let t = Backend::enforced().await.spawn().await;
    let auth = &t.app.auth;
    let password = "invitation password";
    for name in ["founder", "bob", "mallory"] {
        auth.create_user(name, &format!("{name}@example.com"), password, slipway_auth::access::SiteRole::User).await.unwrap();
    }
    auth.create_organization("widgets", "founder").await.unwrap();
    // The code as the invitation mail carries it; the row as `invite` writes it.
    let (code, hash) = slipway_auth::new_access_token();
    let founder = t.app.db.identity().account_by_name("founder").await.unwrap().unwrap();
    let expires = slipway_types::Clock::system().now_ms() + 3_600_000;
    t.app.db.identity().create_invitation(&hash, "widgets", "Bob@Example.COM", "maintainer", &founder.id, expires).await.unwrap();

    let accept = |who: &'static str| {
        let (t, code) = (&t, code.clone());
        async move {
            let (cookie, csrf) = t.sign_in(who, password).await;
            let response = t
                .request(Method::POST, "/api/v1/invitations/accept")
                .header("cookie", cookie)
                .header("x-csrf-token", csrf)
                .json(&serde_json::json!({"token": code}))
                .send()
                .await
                .unwrap();
            (response.status(), response.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let (status, problem) = accept("mallory").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{problem}");
    assert!(problem["detail"].as_str().unwrap().contains("another email address"), "{problem}");
    assert!(!problem.to_string().to_lowercase().contains("bob@example.com"), "the refusal does not reveal the invited address");
    assert!(t.app.db.identity().members("widgets").await.unwrap().iter().all(|(name, _)| name != "mallory"));

    // An account with the address but not verified is refused too.
    let unverified =
        slipway_db::AccountRecord { email_verified_at: None, ..t.app.db.identity().account_by_name("bob").await.unwrap().unwrap() };
    let refused = auth.accept_invitation(&unverified, &code).await.unwrap_err();
    assert!(matches!(refused, slipway_auth::AuthError::Forbidden(_)), "{refused}");

    let (status, body) = accept("bob").await;
    assert_eq!(status, StatusCode::OK, "the refused attempts left the invitation usable: {body}");
    assert_eq!(body["role"], "maintainer");
    let (status, _) = accept("bob").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "single use");
    assert_eq!(
        t.app.db.identity().members("widgets").await.unwrap(),
        vec![("bob".to_owned(), "maintainer".to_owned()), ("founder".to_owned(), "owner".to_owned())]
    );
}

/// Issue 14 item 15: `password`, `12345678` and a password equal to the user name were
/// accepted. Sign-up, administrators' accounts and resets apply NIST SP 800-63B.
#[tokio::test]
async fn common_and_personal_passwords_are_refused_everywhere() {
    let t = Backend::enforced().await.spawn().await;
    for (password, says) in [
        ("password", "commonly used"),
        ("12345678", "commonly used"),
        ("qwertyui", "commonly used"),
        ("iloveyou", "commonly used"),
        ("P@ssw0rd123", "commonly used"),
        ("weakling", "name or email"),
        ("Weakling2024", "name or email"),
        ("weakling@example.com", "name or email"),
    ] {
        let response = t
            .request(Method::POST, "/api/v1/accounts")
            .json(&serde_json::json!({"name": "weakling", "email": "weakling@example.com", "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "{password}");
        let problem: serde_json::Value = response.json().await.unwrap();
        assert!(problem["detail"].as_str().unwrap().contains(says), "{password}: {problem}");
        let refused = t.app.auth.create_user("weakling", "weakling@example.com", password, slipway_auth::access::SiteRole::User).await;
        assert!(refused.is_err(), "{password}");
    }
    assert!(t.app.db.identity().account_by_name("weakling").await.unwrap().is_none());
    t.app.auth.create_user("weakling", "weakling@example.com", "four unrelated words", slipway_auth::access::SiteRole::User).await.unwrap();
}

/// Issue 14 item 21: mail could go out twice with several replicas, each reading the
/// outbox without a claim. Two replicas delivering at once send every message once.
#[tokio::test]
async fn replicas_delivering_at_once_send_each_message_once() {
    let smtp = SmtpSink::start().await;
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    let backend = Backend::with(|c| c.mail.smtp_url = Some(slipway::config::Secret::new(url))).await;
    let (a, b) = (backend.spawn().await, backend.spawn().await);
    for i in 0..30 {
        a.app.auth.enqueue_mail("many@example.com", &format!("message {i:02}"), "hello").await.unwrap();
    }
    let (sent_a, sent_b) = tokio::join!(deliver(&a), deliver(&b));
    assert_eq!(sent_a + sent_b, 30);
    let mut subjects: Vec<String> =
        smtp.messages().iter().filter_map(|m| m.lines().find_map(|l| l.strip_prefix("Subject: ").map(str::to_owned))).collect();
    subjects.sort();
    assert_eq!(subjects, (0..30).map(|i| format!("message {i:02}")).collect::<Vec<_>>(), "each message once");
}

/// A form POST of a signed-out visitor, with the double-submit CSRF cookie and token.
pub(crate) async fn post_form(t: &TestApp, path: &str, fields: &[(&str, &str)]) -> (StatusCode, String) {
    let csrf = "f".repeat(64);
    let mut form = vec![("csrf", csrf.as_str())];
    form.extend_from_slice(fields);
    let response = t.request(Method::POST, path).header("cookie", format!("slipway_csrf={csrf}")).form(&form).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

/// Issue 18: "Forgot your password?" on the sign-in page, the mailed link's page, and a
/// new password that signs in; the pages tell no one who has an account.
#[tokio::test]
async fn a_forgotten_password_is_reset_through_the_mailed_link() {
    let smtp = SmtpSink::start().await;
    let t = with_mail(&smtp).await;
    t.app.auth.create_user("rita", "rita@example.com", "rita's first password", slipway_auth::access::SiteRole::User).await.unwrap();
    let signin = t.get("/signin").await.text().await.unwrap();
    assert!(signin.contains("href=\"/forgot-password\""), "{signin}");
    assert_eq!(t.get("/forgot-password").await.status(), StatusCode::OK);

    // Unknown and known addresses get the same answer; only the known one gets mail.
    let (status, unknown) = post_form(&t, "/forgot-password", &[("email", "nobody@example.com")]).await;
    assert_eq!(status, StatusCode::OK);
    let (status, known) = post_form(&t, "/forgot-password", &[("email", "rita@example.com")]).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(unknown, known, "the page does not tell who has an account");
    let (status, bad) = post_form(&t, "/forgot-password", &[("email", "not an address")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{bad}");
    deliver(&t).await;
    let mail = smtp.messages();
    assert_eq!(mail.len(), 1, "{mail:?}");
    assert!(mail[0].contains("To: rita@example.com"), "{}", mail[0]);
    let token = secret_after(&mail[0], "/reset-password?token=");

    // Following the link shows the form and uses nothing; a wrong code is refused with the
    // form again; the right one changes the password once.
    let form = t.get(&format!("/reset-password?token={token}")).await.text().await.unwrap();
    assert!(form.contains(&format!("name=\"token\" value=\"{token}\"")), "{form}");
    let (status, refused) = post_form(&t, "/reset-password", &[("token", "0000"), ("password", "rita's second password")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(refused.contains("invalid, used or expired") && refused.contains("id=\"reset-password\""), "{refused}");
    let (status, weak) = post_form(&t, "/reset-password", &[("token", &token), ("password", "short")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{weak}");
    let (status, done) = post_form(&t, "/reset-password", &[("token", &token), ("password", "rita's second password")]).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done.contains("Password changed"), "{done}");
    let (status, again) = post_form(&t, "/reset-password", &[("token", &token), ("password", "rita's third password")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "a code works once: {again}");
    assert_eq!(token_status(&t, "rita", "rita's second password").await.0, StatusCode::OK);
    assert_eq!(token_status(&t, "rita", "rita's first password").await.0, StatusCode::UNAUTHORIZED);
    // Without the CSRF cookie the form is refused.
    let forged = t.request(Method::POST, "/reset-password").form(&[("csrf", "x"), ("token", "t"), ("password", "p")]).send().await.unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN);
}

/// Issue 18: an installation without a mail server verifies a sign-up from the command
/// line, with the real binary.
#[tokio::test]
async fn the_operator_verifies_an_address_with_the_admin_command() {
    let t = Backend::new().await.spawn().await;
    let created = t
        .request(Method::POST, "/api/v1/accounts")
        .json(&serde_json::json!({"name": "sam", "email": "sam@example.com", "password": "sam's own password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(token_status(&t, "sam", "sam's own password").await.0, StatusCode::UNAUTHORIZED, "not verified yet");
    let done = crate::scheduler::stdout(&crate::scheduler::slipway(&t, false, &["admin", "verify-email", "sam"]));
    assert_eq!(done, "verified sam@example.com for sam\n");
    assert_eq!(token_status(&t, "sam", "sam's own password").await.0, StatusCode::OK);
    // Again changes nothing; an unknown account is refused with the reason.
    crate::scheduler::stdout(&crate::scheduler::slipway(&t, false, &["admin", "verify-email", "sam"]));
    let refused = crate::scheduler::refused(&crate::scheduler::slipway(&t, false, &["admin", "verify-email", "nobody"]));
    assert!(refused.contains("no account named \"nobody\""), "{refused}");
}

//! Self-service accounts through the REST API, with mail delivered to a real SMTP server
//! (aiosmtpd, on loopback) and read back from its maildir.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use reqwest::{Method, StatusCode};

use crate::app::{Backend, TestApp};

/// aiosmtpd storing every message in a maildir; killed on drop.
struct SmtpSink {
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
    async fn start() -> SmtpSink {
        let python = std::env::var("SLIPWAY_TEST_PYTHON").map(PathBuf::from).unwrap_or_else(|_| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/tools/venv/bin/python")
        });
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
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok() {
                return sink;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("aiosmtpd did not start on port {port}");
    }

    /// Every delivered message, oldest first, with quoted-printable soft line breaks and
    /// `=3D` escapes undone (the only encodings these ASCII messages get).
    fn messages(&self) -> Vec<String> {
        let dir = self.maildir.path().join("mail").join("new");
        let mut files: Vec<_> = std::fs::read_dir(&dir).map(|d| d.flatten().collect()).unwrap_or_default();
        files.sort_by_key(|e| e.metadata().and_then(|m| m.modified()).ok());
        files
            .iter()
            .map(|e| std::fs::read_to_string(e.path()).unwrap().replace("=\r\n", "").replace("=\n", "").replace("=3D", "="))
            .collect()
    }
}

/// A server that enforces authentication and sends its mail to `smtp`.
async fn with_mail(smtp: &SmtpSink) -> TestApp {
    let url = format!("smtp://127.0.0.1:{}", smtp.port);
    Backend::with(|c| {
        c.auth.mode = slipway::config::AuthMode::Enforced;
        c.mail.smtp_url = Some(slipway::config::Secret::new(url));
    })
    .await
    .spawn()
    .await
}

/// Delivers the outbox once, as the background loop in `serve` does.
async fn deliver(t: &TestApp) -> usize {
    slipway_auth::mail::deliver_due(t.app.auth.db(), &t.app.auth.settings().mail).await.unwrap()
}

/// The hex secret following `marker` in a message.
fn secret_after(message: &str, marker: &str) -> String {
    let start = message.find(marker).unwrap_or_else(|| panic!("{marker} not in {message}")) + marker.len();
    message[start..].chars().take_while(char::is_ascii_hexdigit).collect()
}

async fn token_status(t: &TestApp, user: &str, password: &str) -> (StatusCode, serde_json::Value) {
    let response = t.request(Method::GET, "/auth/token").query(&[("service", "slipway")]).basic_auth(user, Some(password)).send().await.unwrap();
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
    assert_eq!(duplicate.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(duplicate.headers()["content-type"], "application/problem+json");

    let (status, body) = token_status(&t, "newbie", password).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("not verified"), "{body}");

    assert_eq!(deliver(&t).await, 1);
    let mail = smtp.messages().pop().expect("verification mail");
    assert!(mail.contains("To: newbie@example.com"), "{mail}");
    let link_token = secret_after(&mail, "/verify-email?token=");
    assert!(mail.contains(&format!("{}/verify-email?token=", t.base)), "links point at this server: {mail}");
    let page = t.get(&format!("/verify-email?token={link_token}")).await;
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("verified"));
    assert_eq!(t.get(&format!("/verify-email?token={link_token}")).await.status(), StatusCode::BAD_REQUEST, "single use");
    assert_eq!(token_status(&t, "newbie", password).await.0, StatusCode::OK);

    // A browser session: cookie flags, CSRF on state changes, access tokens.
    let session = t.request(Method::POST, "/api/v1/session").json(&serde_json::json!({"name": "newbie", "password": password})).send().await.unwrap();
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
    let listed: serde_json::Value = t.request(Method::GET, "/api/v1/tokens").header("cookie", &cookie).send().await.unwrap().json().await.unwrap();
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
    let unknown = t.request(Method::POST, "/api/v1/password-reset").json(&serde_json::json!({"email": "nobody@example.com"})).send().await.unwrap();
    assert_eq!(unknown.status(), StatusCode::ACCEPTED, "no hint whether the address exists");
    let asked = t.request(Method::POST, "/api/v1/password-reset").json(&serde_json::json!({"email": "newbie@example.com"})).send().await.unwrap();
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
    let web = t.request(Method::POST, "/api/v1/session").json(&serde_json::json!({"name": "target", "password": "the right password"})).send().await.unwrap();
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
    let code = secret_after(&mail, "within 7 days:\n\nslw_");

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

    let members: serde_json::Value = t.request(Method::GET, "/api/v1/orgs/widgets/members").header("cookie", &founder).send().await.unwrap().json().await.unwrap();
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
    let claims: serde_json::Value = serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims["access"][0]["actions"], serde_json::json!(["pull", "push"]));
}

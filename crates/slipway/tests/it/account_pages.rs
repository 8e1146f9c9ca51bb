//! Issue 18: accounts in the web store without reading a database: sign-up that completes
//! without a mail server (the link in the log, the demo verifying at once), the
//! verification link sent again, and invitations accepted through the mailed link.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use slipway_test_support::Backend;

use crate::accounts::{SmtpSink, deliver, post_form, secret_after, token_status, with_mail, with_mail_and};

/// `slipway serve` as an operator starts it, its log (stderr) collected; killed on drop.
struct Served {
    child: Mutex<Child>,
    log: Arc<Mutex<String>>,
    base: String,
    _data: tempfile::TempDir,
}

impl Drop for Served {
    fn drop(&mut self) {
        let child = self.child.get_mut().unwrap();
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Served {
    fn start(args: &[&str]) -> Served {
        let data = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut command = Command::new(env!("CARGO_BIN_EXE_slipway"));
        command.current_dir(data.path()).arg("--data-dir").arg(data.path()).arg("serve").arg("--listen").arg(format!("127.0.0.1:{port}"));
        for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SLIPWAY_")) {
            command.env_remove(name);
        }
        let mut child = command.args(args).stdout(Stdio::null()).stderr(Stdio::piped()).spawn().expect("slipway starts");
        let log = Arc::new(Mutex::new(String::new()));
        let stderr = child.stderr.take().unwrap();
        let sink = log.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let mut log = sink.lock().unwrap();
                log.push_str(&line);
                log.push('\n');
            }
        });
        Served { child: Mutex::new(child), log, base: format!("http://127.0.0.1:{port}"), _data: data }
    }

    /// The log once it contains `text`; panics with the log after `secs`.
    async fn log_with(&self, text: &str, secs: u64) -> String {
        for _ in 0..secs * 10 {
            let log = self.log.lock().unwrap().clone();
            if log.contains(text) {
                return log;
            }
            if let Some(status) = self.child.lock().unwrap().try_wait().unwrap() {
                panic!("slipway serve ended ({status}) before logging {text:?}:\n{log}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("{text:?} not logged within {secs} s:\n{}", self.log.lock().unwrap());
    }
}

/// Without `[mail]`, Slipway says so at start, and the verification link of a sign-up is
/// written to its log: following it completes the sign-up. With the real binary.
#[tokio::test]
async fn without_a_mail_server_the_verification_link_is_in_the_log() {
    let served = Served::start(&[]);
    let log = served.log_with("slipway is serving", 120).await;
    assert!(log.contains("no mail server") && log.contains("verification") && log.contains("links are written to this log"), "{log}");
    let client = reqwest::Client::new();
    let created = client
        .post(format!("{}/api/v1/accounts", served.base))
        .json(&serde_json::json!({"name": "nomail", "email": "nomail@example.com", "password": "no mail server here"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.json::<serde_json::Value>().await.unwrap()["verified"], false);
    let token_status = || async {
        client
            .get(format!("{}/auth/token?service=slipway", served.base))
            .basic_auth("nomail", Some("no mail server here"))
            .send()
            .await
            .unwrap()
            .status()
    };
    assert_eq!(token_status().await, StatusCode::UNAUTHORIZED, "not verified yet");
    let log = served.log_with("/verify-email?token=", 30).await;
    assert!(log.contains("account=nomail"), "{log}");
    assert!(!log.contains('\u{1b}'), "a log that is not a terminal has no colour codes: {log:?}");
    let token = secret_after(&log, "/verify-email?token=");
    assert_eq!(token.len(), 64, "{log}");
    let page = client.get(format!("{}/verify-email?token={token}", served.base)).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    assert!(page.text().await.unwrap().contains("Your email address is verified"));
    assert_eq!(token_status().await, StatusCode::OK);
    assert!(!served.log.lock().unwrap().contains("no mail server here"), "the password is never logged");
}

/// The demo without a mail server counts a sign-up's address as verified at once, says so,
/// and the account signs in; the API says `verified: true`.
#[tokio::test]
async fn the_demo_without_a_mail_server_verifies_sign_ups_at_once() {
    let t = Backend::with(|c| {
        c.auth.mode = slipway::config::AuthMode::Enforced;
        c.mail.demo_verifies_sign_ups = true;
    })
    .await
    .spawn()
    .await;
    let csrf = "f".repeat(64);
    let signed_up = t
        .request(Method::POST, "/signup")
        .header("cookie", format!("slipway_csrf={csrf}"))
        .form(&[("csrf", csrf.as_str()), ("name", "newcomer"), ("email", "newcomer@example.com"), ("password", "a newcomer's password")])
        .send()
        .await
        .unwrap();
    assert_eq!(signed_up.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_up.headers()["location"], "/signup/verified");
    let page = t.get("/signup/verified").await.text().await.unwrap();
    assert!(page.contains("no mail server") && page.contains("href=\"/signin\""), "{page}");
    assert_eq!(token_status(&t, "newcomer", "a newcomer's password").await.0, StatusCode::OK);

    let created = t
        .request(Method::POST, "/api/v1/accounts")
        .json(&serde_json::json!({"name": "second", "email": "second@example.com", "password": "second newcomer's password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(created.json::<serde_json::Value>().await.unwrap()["verified"], true);
    assert!(t.app.db.identity().account_by_name("second").await.unwrap().unwrap().email_verified_at.is_some());
}

/// "Send the link again": from the sign-in page's refusal, the same answer for any address,
/// a new link only after a minute (the first stands until then) and only for an address
/// still unverified; the new link replaces the old one.
#[tokio::test]
async fn the_verification_link_is_sent_again_on_request() {
    let smtp = SmtpSink::start().await;
    let t = with_mail_and(&smtp, |c| c.testing.clock = true).await;
    let (status, _) =
        post_form(&t, "/signup", &[("name", "late"), ("email", "late@example.com"), ("password", "late arriving password")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(deliver(&t).await, 1);
    let first = secret_after(&smtp.messages()[0], "/verify-email?token=");
    let sent_page = t.get("/signup/sent").await.text().await.unwrap();
    assert!(sent_page.contains("href=\"/verify-email/resend\""), "{sent_page}");

    let (status, refused) = post_form(&t, "/signin", &[("name", "late"), ("password", "late arriving password")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(refused.contains("id=\"resend-verification-link\""), "the refusal offers the link again: {refused}");
    let (_, wrong_password) = post_form(&t, "/signin", &[("name", "late"), ("password", "not the password")]).await;
    assert!(!wrong_password.contains("resend-verification-link"), "only an unverified address is offered it");
    assert_eq!(t.get("/verify-email/resend").await.status(), StatusCode::OK);

    let resend = |email: &'static str| {
        let t = &t;
        async move { post_form(t, "/verify-email/resend", &[("email", email)]).await }
    };
    let (status, known) = resend("late@example.com").await;
    assert_eq!(status, StatusCode::OK);
    let (_, unknown) = resend("nobody@example.com").await;
    assert_eq!(known, unknown, "the page does not tell who has an account");
    assert_eq!(deliver(&t).await, 0, "a link mailed less than a minute ago stands");
    let (status, _) = resend("not an address").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    t.app.jobs.advance_test_clock(Duration::from_secs(120)).await.unwrap();
    resend("late@example.com").await;
    assert_eq!(deliver(&t).await, 1);
    let second = secret_after(smtp.messages().last().unwrap(), "/verify-email?token=");
    assert_ne!(first, second);
    assert_eq!(t.get(&format!("/verify-email?token={first}")).await.status(), StatusCode::UNPROCESSABLE_ENTITY, "replaced");
    assert_eq!(t.get(&format!("/verify-email?token={second}")).await.status(), StatusCode::OK);

    // A verified address gets no more links; the per-address limit holds the rest back.
    t.app.jobs.advance_test_clock(Duration::from_secs(120)).await.unwrap();
    resend("late@example.com").await;
    assert_eq!(deliver(&t).await, 0, "already verified");
    t.app.auth.sign_up("later", "later@example.com", "later arriving password").await.unwrap();
    for _ in 0..8 {
        t.app.jobs.advance_test_clock(Duration::from_secs(61)).await.unwrap();
        resend("later@example.com").await;
    }
    assert_eq!(deliver(&t).await, 1 + 5, "the sign-up's link and 5 more: the limit is 5 an hour");
}

/// The invitation mail links to a page that says what it offers; only the invited
/// address, verified, gets the Accept button, and accepting makes the membership.
#[tokio::test]
async fn an_invitation_is_accepted_through_the_mailed_link() {
    let smtp = SmtpSink::start().await;
    let t = with_mail(&smtp).await;
    let password = "invitation password";
    for name in ["founder", "bob", "mallory"] {
        t.app.auth.create_user(name, &format!("{name}@example.com"), password, slipway_auth::access::SiteRole::User).await.unwrap();
    }
    t.app.auth.create_organization("widgets", "founder").await.unwrap();
    let founder = t.app.db.identity().account_by_name("founder").await.unwrap().unwrap();
    t.app.auth.invite(&founder, "widgets", "bob@example.com", slipway_auth::access::OrgRole::Maintainer).await.unwrap();
    assert_eq!(deliver(&t).await, 1);
    let mail = smtp.messages().pop().unwrap();
    let link = format!("/invitations/accept?code=slw_{}", secret_after(&mail, "/invitations/accept?code=slw_"));
    assert!(mail.contains(&format!("{}{link}", t.app.auth.settings().mail_link_base())), "{mail}");

    let signed_out = t.get(&link).await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    let to_sign_in = signed_out.headers()["location"].to_str().unwrap().to_owned();
    assert!(to_sign_in.starts_with("/signin?next=%2Finvitations%2Faccept%3Fcode%3Dslw_"), "{to_sign_in}");

    let page_for = |who: &'static str| {
        let (t, link) = (&t, link.clone());
        async move {
            let (cookie, csrf) = t.sign_in(who, password).await;
            let page = t.request(Method::GET, &link).header("cookie", &cookie).send().await.unwrap();
            (page.status(), page.text().await.unwrap(), cookie, csrf)
        }
    };
    let (status, page, mallory, mallory_csrf) = page_for("mallory").await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("Join widgets") && page.contains("another email address") && !page.contains("id=\"accept-invitation\""),
        "{page}"
    );
    assert!(!page.contains("bob@example.com"), "the invited address is not shown to another account");
    let code = link.rsplit('=').next().unwrap().to_owned();
    let accept = |cookie: String, csrf: String| {
        let (t, code) = (&t, code.clone());
        async move {
            let response = t
                .request(Method::POST, "/invitations/accept")
                .header("cookie", cookie)
                .form(&[("csrf", csrf.as_str()), ("code", code.as_str())])
                .send()
                .await
                .unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    assert_eq!(accept(mallory.clone(), mallory_csrf.clone()).await.0, StatusCode::FORBIDDEN);
    let (status, page, bob, bob_csrf) = page_for("bob").await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("id=\"accept-invitation\"") && page.contains("maintainer"), "{page}");
    assert_eq!(accept(bob.clone(), "0".repeat(64)).await.0, StatusCode::FORBIDDEN, "CSRF");
    let (status, done) = accept(bob.clone(), bob_csrf.clone()).await;
    assert_eq!(status, StatusCode::OK, "{done}");
    assert!(done.contains("You are now a member of widgets, as maintainer."), "{done}");
    assert!(t.app.db.identity().members("widgets").await.unwrap().contains(&("bob".to_owned(), "maintainer".to_owned())));
    let (status, again) = accept(bob, bob_csrf).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "single use: {again}");
    let used = t.request(Method::GET, &link).header("cookie", &mallory).send().await.unwrap();
    assert_eq!(used.status(), StatusCode::NOT_FOUND);
    assert!(used.text().await.unwrap().contains("invalid, used or expired"));
}

/// `/settings/tokens`: create a token (name, expiry, patterns, actions, API access), see its
/// secret once with the `docker login` line for this registry, sign in to the registry with
/// it, see it used, revoke it. Refusals keep the form; another account's token is not found.
#[tokio::test]
async fn access_tokens_are_made_used_and_revoked_on_the_tokens_page() {
    let t = Backend::enforced().await.spawn().await;
    let password = "token page password";
    for name in ["tess", "other"] {
        t.app.auth.create_user(name, &format!("{name}@example.com"), password, slipway_auth::access::SiteRole::User).await.unwrap();
    }
    let signed_out = t.get("/settings/tokens").await;
    assert_eq!(signed_out.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_out.headers()["location"], "/signin?next=%2Fsettings%2Ftokens");

    let (cookie, csrf) = t.sign_in("tess", password).await;
    let page = |path: &'static str| {
        let (t, cookie) = (&t, cookie.clone());
        async move { t.request(Method::GET, path).header("cookie", cookie).send().await.unwrap() }
    };
    let empty = page("/settings/tokens").await.text().await.unwrap();
    assert!(empty.contains("You have no access tokens yet") && empty.contains("id=\"create-token\""), "{empty}");
    let post = |path: String, fields: Vec<(&'static str, String)>| {
        let (t, cookie, csrf) = (&t, cookie.clone(), csrf.clone());
        async move {
            let mut form = vec![("csrf", csrf)];
            form.extend(fields);
            let response = t.request(Method::POST, &path).header("cookie", cookie).form(&form).send().await.unwrap();
            let (status, headers) = (response.status(), response.headers().clone());
            (status, headers, response.text().await.unwrap())
        }
    };
    let create =
        |fields: &[(&'static str, &str)]| post("/settings/tokens".into(), fields.iter().map(|(k, v)| (*k, (*v).to_owned())).collect());

    // Refusals say why and keep what was typed.
    for (fields, why) in [
        (vec![("name", "ci"), ("patterns", "tess/*")], "Choose what the token may do"),
        (vec![("name", "ci"), ("pull", "on")], "Name the repositories"),
        (vec![("name", ""), ("patterns", "tess/*"), ("pull", "on")], "name"),
        (vec![("name", "ci"), ("patterns", "a:b"), ("pull", "on")], "is not a repository pattern"),
        (vec![("name", "ci"), ("patterns", "tess/*"), ("pull", "on"), ("expires", "99999")], "days is out of range"),
        (vec![("name", "ci"), ("patterns", "tess/*"), ("pull", "on"), ("api", "admin")], "is not read or write"),
    ] {
        let (status, _, body) = create(&fields).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}");
        assert!(body.contains(why), "{fields:?}: {body}");
        assert!(body.contains("role=\"alert\""));
    }
    let many = (0..40).map(|i| format!("tess/r{i}")).collect::<Vec<_>>().join("\n");
    let (status, _, body) = create(&[("name", "many"), ("patterns", &many), ("pull", "on")]).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("at most 32 scopes") && body.contains("tess/r39"), "the form keeps the patterns: {body}");
    let forged = t
        .request(Method::POST, "/settings/tokens")
        .header("cookie", &cookie)
        .form(&[("csrf", "0".repeat(64).as_str()), ("name", "x"), ("patterns", "tess/*"), ("pull", "on")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), StatusCode::FORBIDDEN, "a form without this session's CSRF token is refused");

    let (status, headers, _) = create(&[
        ("name", "laptop"),
        ("expires", "30"),
        ("patterns", "tess/*\r\nshared/app"),
        ("pull", "on"),
        ("push", "on"),
        ("api", "read"),
    ])
    .await;
    // Made, then redirected: reloading the page never makes a second token. The secret
    // rides to the page in a short-lived cookie scoped to it.
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/settings/tokens");
    let carried = headers["set-cookie"].to_str().unwrap().to_owned();
    for attribute in ["slipway_new_token=", "Path=/settings/tokens", "HttpOnly", "SameSite=Strict", "Max-Age=120"] {
        assert!(carried.contains(attribute), "{attribute}: {carried}");
    }
    let carried = carried.split(';').next().unwrap().to_owned();
    let shown = t.request(Method::GET, "/settings/tokens").header("cookie", format!("{cookie}; {carried}")).send().await.unwrap();
    assert_eq!(shown.headers()["cache-control"], "no-store", "a page with a secret is not cached");
    assert!(shown.headers()["set-cookie"].to_str().unwrap().starts_with("slipway_new_token=; "), "the page clears the cookie");
    let made = shown.text().await.unwrap();
    let secret = format!("slw_{}", secret_after(&made, "id=\"new-token-secret\" class=\"secret\" value=\"slw_"));
    assert!(carried.ends_with(&format!(".{secret}")), "{carried}");
    let host = t.base.trim_start_matches("http://");
    assert!(made.contains(&format!("<code id=\"docker-login-command\">docker login {host} -u tess</code>")), "{made}");
    // Another account's browser holding the cookie sees nothing of it.
    let (other, other_csrf) = t.sign_in("other", password).await;
    let foreign = t
        .request(Method::GET, "/settings/tokens")
        .header("cookie", format!("{other}; {carried}"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!foreign.contains(&secret) && !foreign.contains("new-token-secret"), "{foreign}");
    for access in ["tess/*: pull, push", "shared/app: pull, push", "API: read"] {
        assert!(made.contains(access), "{access}: {made}");
    }
    let listed = page("/settings/tokens").await.text().await.unwrap();
    assert!(listed.contains("laptop") && !listed.contains(&secret), "the secret is shown once only");
    assert!(listed.contains("<td>never</td>"), "not used yet (and it expires): {listed}");

    // docker login does what this does: the token as the password.
    assert_eq!(token_status(&t, "tess", &secret).await.0, StatusCode::OK);
    let listed = page("/settings/tokens").await.text().await.unwrap();
    assert!(!listed.contains("<td>never</td>"), "used now: {listed}");

    // Another account cannot revoke it, nor learn it exists.
    let id = listed.split("/settings/tokens/").nth(1).unwrap().split('/').next().unwrap().to_owned();
    let foreign = t
        .request(Method::POST, &format!("/settings/tokens/{id}/revoke"))
        .header("cookie", &other)
        .form(&[("csrf", other_csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(foreign.status(), StatusCode::NOT_FOUND);
    assert_eq!(token_status(&t, "tess", &secret).await.0, StatusCode::OK);

    let (status, headers, _) = post(format!("/settings/tokens/{id}/revoke"), vec![]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(headers["location"], "/settings/tokens?revoked=1");
    let after = page("/settings/tokens?revoked=1").await.text().await.unwrap();
    assert!(after.contains("The token is revoked") && after.contains("revoked</td>"), "{after}");
    assert!(!after.contains(&format!("/settings/tokens/{id}/revoke")), "no Revoke button on a revoked token");
    assert_eq!(token_status(&t, "tess", &secret).await.0, StatusCode::UNAUTHORIZED);
}

/// `/settings`: the profile, a new password (the current one asked again; other sessions
/// end, this one and access tokens stay), the sessions list with "sign out every other
/// session", and a new email address that counts once the link mailed to it is followed.
#[tokio::test]
async fn account_settings_change_password_sessions_and_email() {
    let smtp = SmtpSink::start().await;
    let t = with_mail(&smtp).await;
    let password = "settings first password";
    for name in ["sam", "taken"] {
        t.app.auth.create_user(name, &format!("{name}@example.com"), password, slipway_auth::access::SiteRole::User).await.unwrap();
    }
    assert_eq!(t.get("/settings").await.headers()["location"], "/signin?next=%2Fsettings");
    let sign_in_as = |agent: &'static str, secret: &'static str| {
        let t = &t;
        async move {
            let response = t
                .request(Method::POST, "/api/v1/session")
                .header("user-agent", agent)
                .json(&serde_json::json!({"name": "sam", "password": secret}))
                .send()
                .await
                .unwrap();
            let status = response.status();
            let cookie = response.headers().get("set-cookie").map(|c| c.to_str().unwrap().split(';').next().unwrap().to_owned());
            let csrf = response.json::<serde_json::Value>().await.unwrap_or_default()["csrf_token"].as_str().unwrap_or_default().to_owned();
            (status, cookie.unwrap_or_default(), csrf)
        }
    };
    let (_, laptop, csrf) = sign_in_as("Firefox on the laptop", password).await;
    let (_, phone, _) = sign_in_as("Safari <b>on</b> the phone", password).await;
    let (token, _) =
        t.app.auth.create_token("sam", "ci", &[slipway_auth::scope::TokenRule::parse("sam/*:pull").unwrap()], None).await.unwrap();
    let page = |cookie: String| {
        let t = &t;
        async move {
            let response = t.request(Method::GET, "/settings").header("cookie", cookie).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };
    let (status, settings) = page(laptop.clone()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(settings.contains("<dd>sam</dd>") && settings.contains("sam@example.com") && settings.contains(">verified<"), "{settings}");
    assert!(settings.contains("<title>Your account · Slipway Store</title>"), "{settings}");
    assert_eq!(settings.matches("id=\"delete-account\"").count(), 1, "{settings}");
    assert!(settings.contains("Firefox on the laptop <strong>(this session)</strong>"), "{settings}");
    assert!(
        settings.contains("Safari &#60;b&#62;on&#60;/b&#62; the phone") || settings.contains("Safari &lt;b&gt;on&lt;/b&gt; the phone"),
        "escaped: {settings}"
    );
    assert!(settings.contains("127.0.0.1"), "{settings}");

    let post = |path: &'static str, fields: Vec<(&'static str, &'static str)>| {
        let (t, laptop, csrf) = (&t, laptop.clone(), csrf.clone());
        async move {
            let mut form = vec![("csrf", csrf.as_str())];
            form.extend(fields);
            let response = t.request(Method::POST, path).header("cookie", laptop).form(&form).send().await.unwrap();
            let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
            (response.status(), location, response.text().await.unwrap())
        }
    };
    // The password: refusals say why.
    for (fields, why) in [
        (vec![("current", "not the password"), ("new", "settings second password")], "the current password is wrong"),
        (vec![("current", password), ("new", "short")], "at least 8"),
        (vec![("current", password), ("new", password)], "the new password is the current one"),
    ] {
        let (status, _, body) = post("/settings/password", fields.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}: {body}");
        assert!(body.contains(why), "{why}: {body}");
    }
    let (status, location, _) = post("/settings/password", vec![("current", password), ("new", "settings second password")]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/settings?done=password"));
    assert_eq!(page(laptop.clone()).await.0, StatusCode::OK, "this session stays");
    assert_eq!(page(phone.clone()).await.0, StatusCode::SEE_OTHER, "the other session is signed out");
    assert_eq!(token_status(&t, "sam", &token).await.0, StatusCode::OK, "access tokens still work");
    assert_eq!(token_status(&t, "sam", "settings second password").await.0, StatusCode::OK);
    assert_eq!(token_status(&t, "sam", password).await.0, StatusCode::UNAUTHORIZED);
    deliver(&t).await;
    assert!(
        smtp.messages()
            .iter()
            .any(|m| m.contains("To: sam@example.com") && m.contains("password of your Slipway account was just changed"))
    );

    // Sessions: a new one elsewhere, then signed out from here.
    let (_, tablet, _) = sign_in_as("the tablet", "settings second password").await;
    assert!(page(laptop.clone()).await.1.contains("the tablet"));
    let (status, location, _) = post("/settings/sessions/sign-out-others", vec![]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/settings?done=sessions"));
    assert_eq!(page(tablet).await.0, StatusCode::SEE_OTHER);
    let (_, settings) = page(laptop.clone()).await;
    assert!(!settings.contains("the tablet"), "{settings}");

    // The email address: refusals, a taken address answered as any, then the real change.
    let before = smtp.messages().len();
    for (fields, why) in [
        (vec![("email", "new@example.com"), ("password", "wrong password")], "the current password is wrong"),
        (vec![("email", "sam@example.com"), ("password", "settings second password")], "already your email address"),
        (vec![("email", "not an address"), ("password", "settings second password")], "email"),
    ] {
        let (status, _, body) = post("/settings/email", fields.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{fields:?}: {body}");
        assert!(body.contains(why), "{why}: {body}");
    }
    let (status, taken, _) = post("/settings/email", vec![("email", "taken@example.com"), ("password", "settings second password")]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (status, fresh, _) =
        post("/settings/email", vec![("email", "sam.new@example.com"), ("password", "settings second password")]).await;
    assert_eq!((status, &fresh), (StatusCode::SEE_OTHER, &taken), "a taken address gets the same answer");
    deliver(&t).await;
    let mail = smtp.messages()[before..].to_vec();
    assert!(mail_count(&mail, "taken@example.com") == 0, "nothing is mailed to another account's address");
    assert!(mail.iter().any(|m| m.contains("To: sam@example.com") && m.contains("sam.new@example.com")), "the old address is told");
    let link_mail = mail.iter().find(|m| m.contains("To: sam.new@example.com")).expect("the new address gets the link");
    let link = secret_after(link_mail, "/settings/email/confirm?token=");
    assert_eq!(t.app.db.identity().account_by_name("sam").await.unwrap().unwrap().email.as_deref(), Some("sam@example.com"), "not yet");
    let confirmed = t.get(&format!("/settings/email/confirm?token={link}")).await;
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert!(confirmed.text().await.unwrap().contains("The email address of sam is now sam.new@example.com."));
    let sam = t.app.db.identity().account_by_name("sam").await.unwrap().unwrap();
    assert_eq!((sam.email.as_deref(), sam.email_verified_at.is_some()), (Some("sam.new@example.com"), true));
    assert_eq!(t.get(&format!("/settings/email/confirm?token={link}")).await.status(), StatusCode::UNPROCESSABLE_ENTITY, "once");
    deliver(&t).await;
    assert!(smtp.messages().iter().any(|m| m.contains("To: sam@example.com") && m.contains("is now sam.new@example.com")));
    // Mail for the account goes to the new address now.
    t.request(Method::POST, "/api/v1/password-reset").json(&serde_json::json!({"email": "sam.new@example.com"})).send().await.unwrap();
    deliver(&t).await;
    assert!(smtp.messages().last().unwrap().contains("To: sam.new@example.com"));
}

fn mail_count(mail: &[String], to: &str) -> usize {
    mail.iter().filter(|m| m.contains(&format!("To: {to}"))).count()
}

/// `/orgs/ORG/members`: created from the settings page; its owner invites by email (the
/// link accepted by the invitee), changes roles, hands ownership on, removes; members see
/// the list but no owner's forms, and their posts are refused; the last owner cannot
/// leave; outsiders see nothing.
#[tokio::test]
async fn an_organization_is_run_from_its_members_page() {
    let smtp = SmtpSink::start().await;
    let t = with_mail(&smtp).await;
    let password = "members page password";
    for name in ["olga", "pete", "quinn"] {
        t.app.auth.create_user(name, &format!("{name}@example.com"), password, slipway_auth::access::SiteRole::User).await.unwrap();
    }
    let session = |who: &'static str| {
        let t = &t;
        async move { t.sign_in(who, password).await }
    };
    let (olga, olga_csrf) = session("olga").await;
    let (pete, pete_csrf) = session("pete").await;
    let (quinn, _) = session("quinn").await;
    let post = |cookie: &str, csrf: &str, path: String, fields: Vec<(&'static str, String)>| {
        let (t, cookie, csrf) = (&t, cookie.to_owned(), csrf.to_owned());
        async move {
            let mut form = vec![("csrf", csrf)];
            form.extend(fields);
            let response = t.request(Method::POST, &path).header("cookie", cookie).form(&form).send().await.unwrap();
            let location = response.headers().get("location").map(|l| l.to_str().unwrap().to_owned()).unwrap_or_default();
            (response.status(), location, response.text().await.unwrap())
        }
    };
    let get = |cookie: &str| {
        let (t, cookie) = (&t, cookie.to_owned());
        async move {
            let response = t.request(Method::GET, "/orgs/gadgets/members").header("cookie", cookie).send().await.unwrap();
            (response.status(), response.text().await.unwrap())
        }
    };

    let (status, location, _) = post(&olga, &olga_csrf, "/orgs".into(), vec![("name", "gadgets".into())]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/orgs/gadgets/members?done=created"));
    let (status, page) = get(&olga).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        page.contains("olga") && page.contains("id=\"invite\"") && !page.contains("id=\"transfer\""),
        "no one to hand it to yet: {page}"
    );
    assert_eq!(get(&quinn).await.0, StatusCode::NOT_FOUND, "outsiders do not learn it exists");

    // Invite pete by email; he accepts through the mailed link.
    let (status, location, _) = post(
        &olga,
        &olga_csrf,
        "/orgs/gadgets/members/invite".into(),
        vec![("email", "pete@example.com".into()), ("role", "viewer".into())],
    )
    .await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/orgs/gadgets/members?done=invited"));
    deliver(&t).await;
    let code = format!("slw_{}", secret_after(smtp.messages().last().unwrap(), "/invitations/accept?code=slw_"));
    let (status, _, joined) = post(&pete, &pete_csrf, "/invitations/accept".into(), vec![("code", code)]).await;
    assert_eq!(status, StatusCode::OK, "{joined}");

    // pete, a viewer, sees the members but no owner's forms, and is refused.
    let (status, page) = get(&pete).await;
    assert_eq!(status, StatusCode::OK);
    assert!(page.contains("pete") && !page.contains("id=\"invite\"") && page.contains("id=\"leave\""), "{page}");
    let (status, _, _) = post(&pete, &pete_csrf, "/orgs/gadgets/members/olga/remove".into(), vec![]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post(&pete, &pete_csrf, "/orgs/gadgets/members/pete/role".into(), vec![("role", "owner".into())]).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "no one raises themselves");

    // Roles, refusals with reasons, and the last owner.
    for (path, fields, why) in [
        ("/orgs/gadgets/members/pete/role", vec![("role", "emperor".to_owned())], "is not a role"),
        ("/orgs/gadgets/members/olga/role", vec![("role", "viewer".to_owned())], "must keep an owner"),
        ("/orgs/gadgets/members/quinn/role", vec![("role", "viewer".to_owned())], "quinn is not a member of gadgets"),
        ("/orgs/gadgets/leave", vec![], "must keep an owner"),
        ("/orgs/gadgets/transfer", vec![("to", "quinn".to_owned())], "not to quinn"),
    ] {
        let (status, _, body) = post(&olga, &olga_csrf, path.into(), fields).await;
        assert!(status == StatusCode::UNPROCESSABLE_ENTITY || status == StatusCode::NOT_FOUND, "{path}: {status}");
        assert!(body.contains(why) && body.contains("role=\"alert\""), "{path}: {body}");
    }
    let (status, location, _) =
        post(&olga, &olga_csrf, "/orgs/gadgets/members/pete/role".into(), vec![("role", "maintainer".into())]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/orgs/gadgets/members?done=role"));
    let (status, _, _) = post(&olga, &olga_csrf, "/orgs/gadgets/transfer".into(), vec![("to", "pete".into())]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let members = t.app.db.identity().members("gadgets").await.unwrap();
    assert_eq!(members, vec![("olga".to_owned(), "maintainer".to_owned()), ("pete".to_owned(), "owner".to_owned())]);
    // Now olga may leave; pete, the only owner, removes no one he should not.
    let (status, location, _) = post(&olga, &olga_csrf, "/orgs/gadgets/leave".into(), vec![]).await;
    assert_eq!((status, location.as_str()), (StatusCode::SEE_OTHER, "/settings?done=left"));
    assert_eq!(get(&olga).await.0, StatusCode::NOT_FOUND, "no longer a member");
    assert_eq!(t.app.db.identity().members("gadgets").await.unwrap(), vec![("pete".to_owned(), "owner".to_owned())]);
    // A forged form (no CSRF token of this session) is refused.
    let (status, _, _) = post(&pete, &"0".repeat(64), "/orgs/gadgets/leave".into(), vec![]).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

/// The same settings through /api/v1: sessions listed and the others signed out, a new
/// password and a new email address, with a session only (an access token gets 403); and
/// membership changed by an owner's access token.
#[tokio::test]
async fn account_settings_and_membership_through_the_api() {
    let smtp = SmtpSink::start().await;
    let t = with_mail(&smtp).await;
    let password = "api settings password";
    for name in ["ada", "bo"] {
        t.app.auth.create_user(name, &format!("{name}@example.com"), password, slipway_auth::access::SiteRole::User).await.unwrap();
    }
    let (cookie, csrf) = t.sign_in("ada", password).await;
    let (other, _) = t.sign_in("ada", password).await;
    let call = |method: Method, path: &str, body: Option<serde_json::Value>| {
        let mut request = t.request(method, path).header("cookie", &cookie).header("x-csrf-token", &csrf);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send()
    };
    let listed: serde_json::Value = call(Method::GET, "/api/v1/me/sessions", None).await.unwrap().json().await.unwrap();
    let sessions = listed["sessions"].as_array().unwrap();
    assert_eq!(sessions.len(), 2, "{listed}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let (token, _) =
        t.app.auth.create_token("ada", "api", &[slipway_auth::scope::TokenRule::parse("api:write").unwrap()], None).await.unwrap();
    for (method, path) in [
        (Method::GET, "/api/v1/me/sessions"),
        (Method::DELETE, "/api/v1/me/sessions"),
        (Method::PUT, "/api/v1/me/password"),
        (Method::POST, "/api/v1/me/email"),
    ] {
        let refused = t.request(method.clone(), path).bearer_auth(&token).json(&serde_json::json!({})).send().await.unwrap();
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{method} {path} with an access token");
    }
    let ended: serde_json::Value = call(Method::DELETE, "/api/v1/me/sessions", None).await.unwrap().json().await.unwrap();
    assert_eq!(ended["signed_out"], 1);
    assert_eq!(t.request(Method::GET, "/api/v1/me").header("cookie", &other).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    let wrong =
        call(Method::PUT, "/api/v1/me/password", Some(serde_json::json!({"current": "nope", "new": "api settings second"}))).await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(wrong.headers()["content-type"], "application/problem+json");
    let changed = call(Method::PUT, "/api/v1/me/password", Some(serde_json::json!({"current": password, "new": "api settings second"})))
        .await
        .unwrap();
    assert_eq!(changed.status(), StatusCode::NO_CONTENT);
    assert_eq!(token_status(&t, "ada", "api settings second").await.0, StatusCode::OK);

    let asked = call(
        Method::POST,
        "/api/v1/me/email",
        Some(serde_json::json!({"email": "ada.new@example.com", "password": "api settings second"})),
    )
    .await
    .unwrap();
    assert_eq!(asked.status(), StatusCode::ACCEPTED);
    deliver(&t).await;
    let link = smtp.messages().into_iter().find(|m| m.contains("To: ada.new@example.com")).unwrap();
    let secret = secret_after(&link, "/settings/email/confirm?token=");
    let confirmed =
        t.request(Method::POST, "/api/v1/accounts/email/confirm").json(&serde_json::json!({"token": secret})).send().await.unwrap();
    assert_eq!(confirmed.status(), StatusCode::OK);
    assert_eq!(confirmed.json::<serde_json::Value>().await.unwrap(), serde_json::json!({"name": "ada", "email": "ada.new@example.com"}));

    // Membership by the owner's access token (automation may manage members).
    t.app.auth.create_organization("team", "ada").await.unwrap();
    t.app.auth.set_member("team", "bo", slipway_auth::access::OrgRole::Viewer).await.unwrap();
    let by_token =
        |method: Method, path: &'static str, body: serde_json::Value| t.request(method, path).bearer_auth(&token).json(&body).send();
    assert_eq!(
        by_token(Method::PUT, "/api/v1/orgs/team/members/bo", serde_json::json!({"role": "maintainer"})).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    let last = by_token(Method::PUT, "/api/v1/orgs/team/members/ada", serde_json::json!({"role": "viewer"})).await.unwrap();
    assert_eq!(last.status(), StatusCode::UNPROCESSABLE_ENTITY);
    assert!(last.text().await.unwrap().contains("must keep an owner"));
    assert_eq!(
        by_token(Method::POST, "/api/v1/orgs/team/transfer", serde_json::json!({"to": "bo"})).await.unwrap().status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(by_token(Method::POST, "/api/v1/orgs/team/leave", serde_json::json!({})).await.unwrap().status(), StatusCode::NO_CONTENT);
    assert_eq!(t.app.db.identity().members("team").await.unwrap(), vec![("bo".to_owned(), "owner".to_owned())]);
    let gone = by_token(Method::DELETE, "/api/v1/orgs/team/members/bo", serde_json::json!({})).await.unwrap();
    assert_eq!(gone.status(), StatusCode::FORBIDDEN, "no longer a member, so no longer managing it");
}

/// The settings page deletes the account once its name is typed again and its password
/// given: the session ends and the cookie is cleared.
#[tokio::test]
async fn an_account_is_deleted_from_the_settings_page() {
    let t = Backend::enforced().await.spawn().await;
    t.app.auth.create_user("leaver", "leaver@example.com", "leaving password", slipway_auth::access::SiteRole::User).await.unwrap();
    let (cookie, csrf) = t.sign_in("leaver", "leaving password").await;
    let send = |confirm: &'static str, password: &'static str| {
        let (t, cookie, csrf) = (&t, cookie.clone(), csrf.clone());
        async move {
            let form = [("csrf", csrf.as_str()), ("confirm", confirm), ("password", password)];
            let response = t.request(Method::POST, "/settings/delete").header("cookie", cookie).form(&form).send().await.unwrap();
            let cleared = response.headers().get("set-cookie").is_some_and(|c| c.to_str().unwrap().contains("Max-Age=0"));
            (response.status(), cleared, response.text().await.unwrap())
        }
    };
    let (status, _, body) = send("someone", "leaving password").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body.contains("type your user name, leaver, to confirm"), "{body}");
    let (status, _, body) = send("leaver", "wrong password").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let (status, cleared, body) = send("leaver", "leaving password").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("The account leaver is deleted") && cleared, "{body}");
    assert_eq!(t.request(Method::GET, "/settings").header("cookie", &cookie).send().await.unwrap().status(), StatusCode::SEE_OTHER);
    assert_eq!(token_status(&t, "leaver", "leaving password").await.0, StatusCode::UNAUTHORIZED);
}

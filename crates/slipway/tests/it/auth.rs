//! Identity and access: the token service and the registry's enforcement, as an
//! authorization matrix, plus forged-token and revocation checks.

use std::collections::BTreeMap;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use reqwest::{Method, StatusCode};
use slipway_auth::access::{OrgRole, Policy, SiteRole};
use slipway_auth::scope::{ScopeRule, TokenRule};

use slipway_test_support::{Backend, TestApp};

const PASSWORD: &str = "a long enough password";
const REPOS: [&str; 4] = ["acme/staging", "acme/public", "acme/members", "acme/licensed"];

/// Sets up the cast: an organization with members of each role, site staff, customers,
/// and repositories under each access policy. Returns the credentials of each role.
async fn cast(t: &TestApp) -> BTreeMap<&'static str, Option<(String, String)>> {
    let auth = &t.app.auth;
    for (name, role) in [
        ("owner", SiteRole::User),
        ("maintainer", SiteRole::User),
        ("viewer", SiteRole::User),
        ("stranger", SiteRole::User),
        ("customer", SiteRole::User),
        ("lapsed", SiteRole::User),
        ("moderator", SiteRole::Moderator),
        ("admin", SiteRole::Admin),
    ] {
        auth.create_user(name, &format!("{name}@example.com"), PASSWORD, role).await.unwrap();
    }
    auth.create_organization("acme", "owner").await.unwrap();
    auth.set_member("acme", "maintainer", OrgRole::Maintainer).await.unwrap();
    auth.set_member("acme", "viewer", OrgRole::Viewer).await.unwrap();
    auth.set_policy("acme/public", &Policy::Public).await.unwrap();
    auth.set_policy("acme/members", &Policy::LoggedIn).await.unwrap();
    auth.set_policy("acme/licensed", &Policy::Licensed { tier: "acme-pro".into() }).await.unwrap();
    auth.grant_entitlement("customer", "acme-pro", "grant", None).await.unwrap();
    auth.grant_entitlement("lapsed", "acme-pro", "trial", Some(0)).await.unwrap();

    let scoped = ScopeRule::parse("acme/public:pull,push").unwrap();
    let (in_scope, _) = auth.create_token("maintainer", "ci", &[scoped.clone().into()], None).await.unwrap();
    // Written straight to the database: the service refuses an expiry of zero days.
    let expired = stored_token(
        t,
        "maintainer",
        &serde_json::to_string(std::slice::from_ref(&scoped)).unwrap(),
        Some(slipway_types::Clock::system().now_ms() - 1),
    )
    .await;
    let (revoked, record) = auth.create_token("maintainer", "leaked", &[scoped.into()], None).await.unwrap();
    auth.revoke_token(&record.id).await.unwrap();
    let robot = auth.create_robot("acme", "ci", OrgRole::Maintainer).await.unwrap();
    let (robot_token, _) = auth.create_token(&robot.name, "deploy", &[TokenRule::parse("acme/*:pull,push").unwrap()], None).await.unwrap();

    let password = |name: &str| Some((name.to_owned(), PASSWORD.to_owned()));
    BTreeMap::from([
        ("anonymous", None),
        ("stranger", password("stranger")),
        ("viewer", password("viewer")),
        ("maintainer", password("maintainer")),
        ("owner", password("owner")),
        ("moderator", password("moderator")),
        ("admin", password("admin")),
        ("customer", password("customer")),
        ("lapsed customer", password("lapsed")),
        ("token in scope", Some(("maintainer".to_owned(), in_scope))),
        ("robot token", Some((robot.name.clone(), robot_token))),
        ("expired token", Some(("maintainer".to_owned(), expired))),
        ("revoked token", Some(("maintainer".to_owned(), revoked))),
        ("wrong password", Some(("owner".to_owned(), "not the password".to_owned()))),
    ])
}

/// An access token row written directly, bypassing the service's checks (as an old row, or
/// a hand-edited one, would be); returns its secret.
async fn stored_token(t: &TestApp, account: &str, scopes: &str, expires_at: Option<i64>) -> String {
    let db = t.app.db.identity();
    let account = db.account_by_name(account).await.unwrap().unwrap();
    let (secret, hash) = slipway_auth::new_access_token();
    let id = uuid::Uuid::new_v4().to_string();
    db.create_access_token(&slipway_db::NewAccessToken {
        id: &id,
        account_id: &account.id,
        name: "stored",
        token_hash: &hash,
        scopes,
        expires_at,
    })
    .await
    .unwrap();
    secret
}

/// GET /auth/token as docker and skopeo do; returns the status and JSON body.
async fn token(t: &TestApp, who: &Option<(String, String)>, scopes: &[String]) -> (StatusCode, serde_json::Value) {
    let mut query: Vec<(&str, &str)> = vec![("service", "slipway")];
    query.extend(scopes.iter().map(|s| ("scope", s.as_str())));
    let mut request = t.request(Method::GET, "/auth/token").query(&query);
    if let Some((user, secret)) = who {
        request = request.basic_auth(user, Some(secret));
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap_or_default())
}

/// The actions granted per repository, as "pull,push" strings.
fn granted(body: &serde_json::Value) -> BTreeMap<String, String> {
    body_claims(body)["access"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            (
                a["name"].as_str().unwrap().to_owned(),
                a["actions"].as_array().unwrap().iter().map(|x| x.as_str().unwrap()).collect::<Vec<_>>().join(","),
            )
        })
        .collect()
}

fn body_claims(body: &serde_json::Value) -> serde_json::Value {
    let token = body["token"].as_str().unwrap_or_default();
    let payload = token.split('.').nth(1).unwrap_or_default();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap_or_default()).unwrap_or_default()
}

#[tokio::test]
async fn authorization_matrix() {
    let t = Backend::enforced().await.spawn().await;
    let people = cast(&t).await;
    let all = "pull,push,delete";
    // Expected grants per role, in REPOS order (staging, public, members, licensed).
    let expected: BTreeMap<&str, [&str; 4]> = BTreeMap::from([
        ("anonymous", ["", "pull", "", ""]),
        ("stranger", ["", "pull", "pull", ""]),
        ("viewer", ["pull", "pull", "pull", "pull"]),
        ("maintainer", ["pull,push", "pull,push", "pull,push", "pull,push"]),
        ("owner", [all, all, all, all]),
        ("moderator", ["pull", "pull", "pull", "pull"]),
        ("admin", [all, all, all, all]),
        ("customer", ["", "pull", "pull", "pull"]),
        ("lapsed customer", ["", "pull", "pull", ""]),
        ("token in scope", ["", "pull,push", "", ""]),
        ("robot token", ["pull,push", "pull,push", "pull,push", "pull,push"]),
    ]);
    let scopes: Vec<String> = REPOS.iter().map(|r| format!("repository:{r}:{all}")).chain(["registry:catalog:*".to_owned()]).collect();
    for (role, who) in &people {
        let (status, body) = token(&t, who, &scopes).await;
        match expected.get(role) {
            Some(row) => {
                assert_eq!(status, StatusCode::OK, "{role}: {body}");
                let grants = granted(&body);
                for (repo, want) in REPOS.iter().zip(row) {
                    assert_eq!(grants.get(*repo).map(String::as_str).unwrap_or(""), *want, "{role} on {repo}");
                }
                assert_eq!(grants.contains_key("catalog"), *role == "admin", "{role} on the catalog");
            }
            None => {
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{role} must be refused: {body}");
                assert_eq!(body["errors"][0]["message"], "bad credentials");
            }
        }
    }

    // The registry enforces the grants: pull with each role's token, push where granted.
    for (role, row) in &expected {
        let (_, body) = token(&t, &people[role], &scopes).await;
        let bearer = body["token"].as_str().unwrap().to_owned();
        for (repo, want) in REPOS.iter().zip(row) {
            let pull = t.request(Method::GET, &format!("/v2/{repo}/tags/list")).bearer_auth(&bearer).send().await.unwrap();
            if want.contains("pull") {
                assert_eq!(pull.status(), StatusCode::NOT_FOUND, "{role} pulls {repo}: allowed, but nothing pushed yet");
            } else {
                assert!(matches!(pull.status(), StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN), "{role} pulls {repo}");
            }
            let push = t.request(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).bearer_auth(&bearer).send().await.unwrap();
            let allowed = want.contains("push");
            assert_eq!(push.status() == StatusCode::ACCEPTED, allowed, "{role} pushes to {repo}: {}", push.status());
        }
        let catalog = t.request(Method::GET, "/v2/_catalog").bearer_auth(&bearer).send().await.unwrap();
        assert_eq!(catalog.status() == StatusCode::OK, *role == "admin", "{role} lists the catalog");
    }
}

#[tokio::test]
async fn refusals_say_why() {
    let t = Backend::enforced().await.spawn().await;
    let people = cast(&t).await;
    let scope = vec!["repository:acme/licensed:pull".to_owned()];
    let (_, body) = token(&t, &people["stranger"], &scope).await;
    let response =
        t.request(Method::GET, "/v2/acme/licensed/manifests/latest").bearer_auth(body["token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    let error: serde_json::Value = response.json().await.unwrap();
    assert_eq!(error["errors"][0]["code"], "DENIED");
    assert_eq!(error["errors"][0]["message"], "license required for tier acme-pro to pull acme/licensed");

    // Anonymous callers are challenged, so that clients know to sign in.
    let (_, body) = token(&t, &None, &scope).await;
    let response =
        t.request(Method::GET, "/v2/acme/licensed/manifests/latest").bearer_auth(body["token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let challenge = response.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.starts_with(&format!("Bearer realm=\"{}/auth/token\",service=\"slipway\"", t.base)), "{challenge}");
    assert!(challenge.contains("scope=\"repository:acme/licensed:pull\""), "{challenge}");
    assert!(challenge.contains("error=\"insufficient_scope\""), "{challenge}");

    let bare = t.get("/v2/").await;
    assert_eq!(bare.status(), StatusCode::UNAUTHORIZED);
    assert!(bare.headers().contains_key("www-authenticate"));
}

#[tokio::test]
async fn entitlement_revocation_applies_at_the_next_token() {
    let t = Backend::enforced().await.spawn().await;
    let people = cast(&t).await;
    let scope = vec!["repository:acme/licensed:pull".to_owned()];
    let (_, before) = token(&t, &people["customer"], &scope).await;
    assert_eq!(granted(&before)["acme/licensed"], "pull");
    assert_eq!(t.app.auth.revoke_entitlement("customer", "acme-pro").await.unwrap(), 1);
    let (_, after) = token(&t, &people["customer"], &scope).await;
    assert_eq!(granted(&after)["acme/licensed"], "");
    t.app.auth.grant_entitlement("customer", "acme-pro", "purchase", Some(30)).await.unwrap();
    let (_, again) = token(&t, &people["customer"], &scope).await;
    assert_eq!(granted(&again)["acme/licensed"], "pull");
}

#[tokio::test]
async fn refresh_and_oauth_flows() {
    let t = Backend::enforced().await.spawn().await;
    cast(&t).await;
    // docker login: GET with offline_token=true and no scope returns a refresh token.
    let login = t
        .request(Method::GET, "/auth/token")
        .query(&[("service", "slipway"), ("offline_token", "true"), ("client_id", "docker"), ("account", "maintainer")])
        .basic_auth("maintainer", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    let login: serde_json::Value = login.json().await.unwrap();
    let refresh = login["refresh_token"].as_str().expect("refresh token").to_owned();
    // containerd: POST grant_type=refresh_token with scopes.
    let refreshed = t
        .request(Method::POST, "/auth/token")
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("service", "slipway"),
            ("scope", "repository:acme/staging:pull,push"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(refreshed.status(), StatusCode::OK);
    let refreshed: serde_json::Value = refreshed.json().await.unwrap();
    assert_eq!(granted(&refreshed)["acme/staging"], "pull,push");
    let claims = body_claims(&refreshed);
    assert_eq!(claims["sub"], "maintainer");
    assert_eq!(claims["aud"], "slipway");
    // POST grant_type=password, and a wrong refresh token.
    let password = t
        .request(Method::POST, "/auth/token")
        .form(&[("grant_type", "password"), ("username", "viewer"), ("password", PASSWORD), ("scope", "repository:acme/staging:pull,push")])
        .send()
        .await
        .unwrap();
    let password: serde_json::Value = password.json().await.unwrap();
    assert_eq!(granted(&password)["acme/staging"], "pull");
    let bogus =
        t.request(Method::POST, "/auth/token").form(&[("grant_type", "refresh_token"), ("refresh_token", "slw_00")]).send().await.unwrap();
    assert_eq!(bogus.status(), StatusCode::UNAUTHORIZED);
    let jwks: serde_json::Value = t.get("/auth/jwks.json").await.json().await.unwrap();
    assert_eq!(jwks["keys"][0]["kid"], body_claims_header(&refreshed)["kid"]);
}

fn body_claims_header(body: &serde_json::Value) -> serde_json::Value {
    let header = body["token"].as_str().unwrap().split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

#[tokio::test]
async fn forged_tokens_are_refused() {
    let t = Backend::enforced().await.spawn().await;
    cast(&t).await;
    let (_, body) = token(&t, &Some(("viewer".into(), PASSWORD.into())), &["repository:acme/public:pull".into()]).await;
    let genuine = body["token"].as_str().unwrap().to_owned();
    let ok = t.request(Method::GET, "/v2/acme/public/tags/list").bearer_auth(&genuine).send().await.unwrap();
    assert_eq!(ok.status(), StatusCode::NOT_FOUND, "the genuine token works");

    let claims = body_claims(&body);
    let now = claims["iat"].as_u64().unwrap();
    let keys = t.app.auth.keys();
    let with = |patch: serde_json::Value| {
        let mut c = claims.clone();
        for (k, v) in patch.as_object().unwrap() {
            c[k] = v.clone();
        }
        keys.sign(&c).unwrap()
    };
    let stranger_dir = tempfile::tempdir().unwrap();
    let stranger_keys = slipway_auth::KeyRing::load_or_create(stranger_dir.path()).unwrap();
    let unsigned = format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims).unwrap())
    );
    let parts: Vec<&str> = genuine.split('.').collect();
    let mut tampered_claims = claims.clone();
    tampered_claims["access"][0]["actions"] = serde_json::json!(["pull", "push", "delete"]);
    let tampered = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(serde_json::to_vec(&tampered_claims).unwrap()), parts[2]);
    let unknown_kid = {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"ES256","typ":"JWT","kid":"nobody"}"#);
        format!("{header}.{}.{}", parts[1], parts[2])
    };
    let forgeries = [
        ("alg=none", unsigned),
        ("wrong key", stranger_keys.sign(&claims).unwrap()),
        ("unknown kid", unknown_kid),
        ("expired", with(serde_json::json!({"exp": now - 120, "iat": now - 600, "nbf": now - 600}))),
        ("not yet valid", with(serde_json::json!({"nbf": now + 600, "exp": now + 900}))),
        ("wrong audience", with(serde_json::json!({"aud": "another-registry"}))),
        ("wrong issuer", with(serde_json::json!({"iss": "someone-else"}))),
        ("tampered access claim", tampered),
        ("garbage", "not.a.jwt".to_owned()),
        ("basic credentials are not a registry token", format!("Basic {}", STANDARD.encode(format!("viewer:{PASSWORD}")))),
    ];
    for (what, forged) in forgeries {
        let response = t.request(Method::GET, "/v2/acme/public/tags/list").bearer_auth(&forged).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{what}");
    }
}

#[tokio::test]
async fn anonymous_pulls_are_rate_limited() {
    let backend = Backend::with(|c| {
        c.auth.mode = slipway::config::AuthMode::Enforced;
        c.rate_limit.anonymous_pulls = 3;
        c.rate_limit.account_pulls = 100;
    })
    .await;
    let t = backend.spawn().await;
    cast(&t).await;
    let (_, body) = token(&t, &None, &["repository:acme/public:pull".into()]).await;
    let bearer = body["token"].as_str().unwrap().to_owned();
    for remaining in ["2", "1", "0"] {
        let pull = t.request(Method::GET, "/v2/acme/public/manifests/latest").bearer_auth(&bearer).send().await.unwrap();
        assert_eq!(pull.status(), StatusCode::NOT_FOUND, "counted, then answered");
        assert_eq!(pull.headers()["ratelimit-limit"], "3;w=21600");
        assert_eq!(pull.headers()["ratelimit-remaining"], remaining);
    }
    let refused = t.request(Method::GET, "/v2/acme/public/manifests/latest").bearer_auth(&bearer).send().await.unwrap();
    assert_eq!(refused.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(refused.headers()["ratelimit-remaining"], "0");
    assert!(refused.headers().contains_key("retry-after"));
    let error: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(error["errors"][0]["code"], "TOOMANYREQUESTS");
    // HEAD requests (how clients check for updates) are not pulls.
    let head = t.request(Method::HEAD, "/v2/acme/public/manifests/latest").bearer_auth(&bearer).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::NOT_FOUND);
    // A signed-in customer has a quota of their own.
    let (_, body) = token(&t, &Some(("customer".into(), PASSWORD.into())), &["repository:acme/public:pull".into()]).await;
    let signed_in =
        t.request(Method::GET, "/v2/acme/public/manifests/latest").bearer_auth(body["token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(signed_in.headers()["ratelimit-remaining"], "99");
}

/// Regression: a token missing an action its holder has (clients keep one token per
/// scope) got 403 DENIED instead of a challenge to fetch a fitting token.
#[tokio::test]
async fn under_scoped_tokens_of_entitled_holders_are_challenged() {
    let t = Backend::enforced().await.spawn().await;
    let people = cast(&t).await;
    let (_, body) = token(&t, &people["owner"], &["repository:acme/staging:delete".into()]).await;
    let delete_only = body["token"].as_str().unwrap().to_owned();
    let pull = t.request(Method::GET, "/v2/acme/staging/tags/list").bearer_auth(&delete_only).send().await.unwrap();
    assert_eq!(pull.status(), StatusCode::UNAUTHORIZED);
    assert!(pull.headers()["www-authenticate"].to_str().unwrap().contains("error=\"insufficient_scope\""));
    assert_eq!(pull.headers()["docker-distribution-api-version"], "registry/2.0");

    // A mount from a repository the token did not ask for, but its holder may read:
    // challenge for both scopes instead of silently uploading.
    let (_, body) = token(&t, &people["owner"], &["repository:acme/public:pull,push".into()]).await;
    let push_only_here = body["token"].as_str().unwrap().to_owned();
    let digest = format!("sha256:{}", "a".repeat(64));
    let mount = t
        .request(Method::POST, &format!("/v2/acme/public/blobs/uploads/?mount={digest}&from=acme/staging"))
        .bearer_auth(&push_only_here)
        .send()
        .await
        .unwrap();
    assert_eq!(mount.status(), StatusCode::UNAUTHORIZED);
    let challenge = mount.headers()["www-authenticate"].to_str().unwrap().to_owned();
    assert!(challenge.contains("scope=\"repository:acme/public:pull,push repository:acme/staging:pull\""), "{challenge}");
    // A source the holder cannot read is not revealed: the request becomes an upload.
    let (_, body) = token(&t, &people["stranger"], &["repository:stranger/own:pull,push".into()]).await;
    let stranger = body["token"].as_str().unwrap().to_owned();
    let mount = t
        .request(Method::POST, &format!("/v2/stranger/own/blobs/uploads/?mount={digest}&from=acme/staging"))
        .bearer_auth(&stranger)
        .send()
        .await
        .unwrap();
    assert_eq!(mount.status(), StatusCode::ACCEPTED);

    // Where the holder lacks the right, the answer is a reasoned refusal.
    let (_, body) = token(&t, &people["viewer"], &["repository:acme/staging:pull".into()]).await;
    let push =
        t.request(Method::POST, "/v2/acme/staging/blobs/uploads/").bearer_auth(body["token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(push.status(), StatusCode::FORBIDDEN);
    let error: serde_json::Value = push.json().await.unwrap();
    assert_eq!(error["errors"][0]["message"], "viewer may not push acme/staging");
}

/// Issue 14, items 1, 2 and 20: token creation accepted patterns of any length and shape
/// (40,000 `*` later overflowed the stack of /auth/token; `*a*a...*b` backtracked for
/// years), an expiry of zero days and control characters in names.
#[tokio::test]
async fn token_creation_refuses_oversized_patterns_and_bad_fields() {
    let t = Backend::enforced().await.spawn().await;
    t.app.auth.create_user("limited", "limited@example.com", PASSWORD, SiteRole::User).await.unwrap();
    let (cookie, csrf) = t.sign_in("limited", PASSWORD).await;
    let create = |body: serde_json::Value| {
        let (t, cookie, csrf) = (&t, cookie.clone(), csrf.clone());
        async move {
            let response = t
                .request(Method::POST, "/api/v1/tokens")
                .header("cookie", cookie)
                .header("x-csrf-token", csrf)
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = response.status();
            let content_type = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
            (status, content_type, response.json::<serde_json::Value>().await.unwrap_or_default())
        }
    };
    let stars = "*".repeat(40_000);
    let exponential = "*a".repeat(17) + "*b";
    let too_long = format!("limited/{}", "a".repeat(248));
    let many: Vec<String> = (0..33).map(|i| format!("limited/app{i}:pull")).collect();
    let refusals = [
        (serde_json::json!({"name": "stars", "scopes": [format!("{stars}:pull")]}), "255 bytes"),
        (serde_json::json!({"name": "long", "scopes": [format!("{too_long}:pull")]}), "255 bytes"),
        (serde_json::json!({"name": "backtracking", "scopes": [format!("{exponential}:pull")]}), "at most 16 `*`"),
        (serde_json::json!({"name": "many", "scopes": many}), "at most 32 scopes"),
        (serde_json::json!({"name": "odd", "scopes": ["limited/\u{1b}[2J:pull"]}), "holds"),
        (serde_json::json!({"name": "zero", "scopes": ["limited/*:pull"], "expires_days": 0}), "1 to 3650 days"),
        (serde_json::json!({"name": "forever", "scopes": ["limited/*:pull"], "expires_days": 3651}), "1 to 3650 days"),
        (serde_json::json!({"name": "nul\u{0}name", "scopes": ["limited/*:pull"]}), "control characters"),
        (serde_json::json!({"name": "x".repeat(101), "scopes": ["limited/*:pull"]}), "1 to 100 characters"),
    ];
    for (body, says) in refusals {
        let (status, content_type, problem) = create(body.clone()).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body:.200}: {problem}");
        assert_eq!(content_type, "application/problem+json");
        assert!(problem["detail"].as_str().unwrap().contains(says), "{problem}");
    }
    let longest = format!("limited/{}", "a".repeat(247));
    let (status, _, made) =
        create(serde_json::json!({"name": "fine", "scopes": [format!("{longest}:pull"), "limited/*/*:push"], "expires_days": 3650})).await;
    assert_eq!(status, StatusCode::CREATED, "{made}");
    let listed: serde_json::Value =
        t.request(Method::GET, "/api/v1/tokens").header("cookie", &cookie).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["tokens"].as_array().unwrap().len(), 1, "nothing refused was stored: {listed:.300}");
}

/// Issue 14, items 1 and 2: a stored token whose patterns exceed the limits (a row from
/// before them, or written behind the service's back) is refused at /auth/token instead
/// of being matched, and the server keeps serving.
#[tokio::test]
async fn hostile_stored_token_patterns_are_refused_not_matched() {
    let t = Backend::enforced().await.spawn().await;
    t.app.auth.create_user("holder", "holder@example.com", PASSWORD, SiteRole::User).await.unwrap();
    let rule = |pattern: String| serde_json::json!([{"repositories": pattern, "actions": ["pull"]}]).to_string();
    let name = format!("holder/{}", "a".repeat(200));
    let scope = format!("repository:{name}:pull");
    for scopes in [rule("*".repeat(40_000)), rule("*a".repeat(10) + "*b" + &"*".repeat(7)), rule("x".repeat(256)), "not json".to_owned()] {
        let secret = stored_token(&t, "holder", &scopes, None).await;
        let (status, body) = token(&t, &Some(("holder".into(), secret.clone())), std::slice::from_ref(&scope)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{scopes:.60}: {body}");
        assert!(body["errors"][0]["message"].as_str().unwrap().contains("exceed the limits"), "{body}");
        let oauth = t
            .request(Method::POST, "/auth/token")
            .form(&[("grant_type", "password"), ("username", "holder"), ("password", &secret), ("service", "slipway"), ("scope", &scope)])
            .send()
            .await
            .unwrap();
        assert_eq!(oauth.status(), StatusCode::BAD_REQUEST);
        assert_eq!(t.get("/healthz").await.status(), StatusCode::OK, "the server still answers");
    }
    // The same patterns within the limits match, quickly and correctly.
    let secret = stored_token(&t, "holder", &rule("*a".repeat(10) + "*b"), None).await;
    let matching = format!("holder/{}b", "a".repeat(10));
    let (status, body) = token(
        &t,
        &Some(("holder".into(), secret)),
        &[scope.clone(), format!("repository:{matching}:pull"), "repository:holder/ab:pull".into()],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(granted(&body), BTreeMap::from([(name, String::new()), (matching, "pull".into()), ("holder/ab".into(), String::new())]));
}

/// The same limits hold for `slipway admin create-token`, with the reason as its error.
#[tokio::test]
async fn admin_create_token_refuses_oversized_patterns() {
    use slipway::admin::{AdminCommand, run};
    let t = Backend::enforced().await.spawn().await;
    t.app.auth.create_user("operator", "operator@example.com", PASSWORD, SiteRole::User).await.unwrap();
    let command = |scope: String, expires_days: Option<u32>| AdminCommand::CreateToken {
        account: "operator".into(),
        name: "ci".into(),
        scopes: vec![scope],
        expires_days,
    };
    for (scope, days, says) in [
        (format!("{}:pull", "*".repeat(40_000)), None, "255 bytes"),
        (format!("{}:pull", "*a".repeat(20)), None, "at most 16 `*`"),
        ("operator/*:pull".to_owned(), Some(0), "1 to 3650 days"),
    ] {
        let error = run(&t.app, command(scope, days)).await.unwrap_err();
        assert!(format!("{error:#}").contains(says), "{error:#}");
    }
    run(&t.app, command("operator/*:pull".into(), Some(30))).await.unwrap();
    let account = t.app.db.identity().account_by_name("operator").await.unwrap().unwrap();
    assert_eq!(t.app.db.identity().access_tokens_of(&account.id).await.unwrap().len(), 1);
}

/// Issue 19: a verified token is kept (its signature is not checked again), but never
/// past its lifetime: the Clock decides at every use, as before the cache.
#[tokio::test]
async fn a_kept_token_still_expires_on_time() {
    let t = Backend::with(|c| {
        c.auth.mode = slipway::config::AuthMode::Enforced;
        c.testing.clock = true;
    })
    .await
    .spawn()
    .await;
    t.app.auth.create_user("kim", "kim@example.com", PASSWORD, SiteRole::User).await.unwrap();
    t.app.auth.create_organization("kims", "kim").await.unwrap();
    let token = t.registry_token_for(Some(("kim", PASSWORD)), "repository:kims/app:pull").await;
    for _ in 0..3 {
        // Allowed (the repository is empty: 404, not 401), the second and third time from the cache.
        assert_eq!(t.get_manifest(&token, "kims/app", "latest").await.0, StatusCode::NOT_FOUND);
    }
    // A kept token with one character changed is another token: checked in full, refused.
    let mut tampered = token.clone();
    tampered.pop();
    assert_eq!(t.get_manifest(&tampered, "kims/app", "latest").await.0, StatusCode::UNAUTHORIZED);
    // The token lives 300 s; the replicas' clock-skew leeway is 30 s.
    t.app.jobs.advance_test_clock(std::time::Duration::from_secs(300 + 29)).await.unwrap();
    assert_eq!(t.get_manifest(&token, "kims/app", "latest").await.0, StatusCode::NOT_FOUND);
    t.app.jobs.advance_test_clock(std::time::Duration::from_secs(2)).await.unwrap();
    assert_eq!(t.get_manifest(&token, "kims/app", "latest").await.0, StatusCode::UNAUTHORIZED);
}

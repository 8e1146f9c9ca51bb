//! Issue 18: an organization's robot accounts, run by its owners on the members page and
//! through the API: added with a role, given tokens that sign in to the registry as
//! `org+name`, tokens revoked, robots deleted; members who are not owners, and access
//! tokens, are refused.

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slipway::config::AuthMode;
use slipway_auth::access::SiteRole;
use slipway_test_support::{Backend, Caller, TestApp, Via};

use crate::accounts::token_status;

const PASSWORD: &str = "a long enough password";

async fn app() -> TestApp {
    let t = Backend::with(|c| c.auth.mode = AuthMode::Enforced).await.spawn().await;
    for name in ["olivia", "mia"] {
        t.app.auth.create_user(name, &format!("{name}@example.com"), PASSWORD, SiteRole::User).await.unwrap();
    }
    t.app.auth.create_organization("acme", "olivia").await.unwrap();
    t.app.auth.set_member("acme", "mia", slipway_auth::access::OrgRole::Maintainer).await.unwrap();
    t
}

async fn send(t: &TestApp, caller: &Caller, method: Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let mut request = t.call(caller, method, path);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    (response.status(), response.json().await.unwrap_or_default())
}

#[tokio::test]
async fn owners_run_robots_and_their_tokens_through_the_api() {
    let t = app().await;
    let owner = t.caller("olivia", PASSWORD, Via::Session).await;
    let maintainer = t.caller("mia", PASSWORD, Via::Session).await;
    let bearer = t.caller("olivia", PASSWORD, Via::Bearer).await;

    let (status, body) =
        send(&t, &owner, Method::POST, "/api/v1/orgs/acme/robots", Some(json!({"name": "ci", "role": "maintainer"}))).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body["name"], "acme+ci");
    let (status, _) = send(&t, &owner, Method::POST, "/api/v1/orgs/acme/robots", Some(json!({"name": "ci", "role": "viewer"}))).await;
    assert_eq!(status, StatusCode::CONFLICT, "the name is taken");
    let (status, _) =
        send(&t, &owner, Method::POST, "/api/v1/orgs/acme/robots", Some(json!({"name": "Bad Name!", "role": "viewer"}))).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // Only owners: a maintainer is refused, and an access token may not add robots.
    for (caller, method, path) in [
        (&maintainer, Method::GET, "/api/v1/orgs/acme/robots"),
        (&maintainer, Method::POST, "/api/v1/orgs/acme/robots/ci/tokens"),
        (&maintainer, Method::DELETE, "/api/v1/orgs/acme/robots/ci"),
        (&bearer, Method::POST, "/api/v1/orgs/acme/robots"),
        (&bearer, Method::POST, "/api/v1/orgs/acme/robots/ci/tokens"),
    ] {
        let body = json!({"name": "x", "role": "viewer", "scopes": ["acme/*:pull"]});
        let (status, answer) = send(&t, caller, method.clone(), path, Some(body)).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {answer}");
    }
    let (status, _) = send(&t, &owner, Method::GET, "/api/v1/orgs/nowhere/robots", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    let new_token = json!({"name": "deploy", "scopes": ["acme/*:pull,push"], "expires_days": 30});
    let (status, created) = send(&t, &owner, Method::POST, "/api/v1/orgs/acme/robots/ci/tokens", Some(new_token.clone())).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    let secret = created["token"].as_str().unwrap().to_owned();
    let (status, second) = send(&t, &owner, Method::POST, "/api/v1/orgs/acme/robots/acme+ci/tokens", Some(new_token)).await;
    assert_eq!(status, StatusCode::CREATED, "named in full too: {second}");
    assert_eq!(token_status(&t, "acme+ci", &secret).await.0, StatusCode::OK, "the robot signs in with its token");
    assert_eq!(token_status(&t, "acme+ci", "a password").await.0, StatusCode::UNAUTHORIZED, "and with nothing else");

    let (status, listed) = send(&t, &owner, Method::GET, "/api/v1/orgs/acme/robots", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(listed["robots"][0]["name"], "acme+ci");
    assert_eq!(listed["robots"][0]["role"], "maintainer");
    assert_eq!(listed["robots"][0]["tokens"].as_array().unwrap().len(), 2);
    assert!(!listed.to_string().contains(&secret), "never the secret");

    // Another account's token is not the robot's to revoke.
    let (mine, _) =
        t.app.auth.create_token("olivia", "laptop", &[slipway_auth::scope::TokenRule::parse("acme/*:pull").unwrap()], None).await.unwrap();
    let (_, own) = send(&t, &owner, Method::GET, "/api/v1/tokens", None).await;
    let own_id = own["tokens"].as_array().unwrap().iter().find(|t| t["name"] == "laptop").unwrap()["id"].as_str().unwrap().to_owned();
    let (status, _) = send(&t, &owner, Method::DELETE, &format!("/api/v1/orgs/acme/robots/ci/tokens/{own_id}"), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(token_status(&t, "olivia", &mine).await.0, StatusCode::OK);

    let id = created["id"].as_str().unwrap();
    let (status, _) = send(&t, &owner, Method::DELETE, &format!("/api/v1/orgs/acme/robots/ci/tokens/{id}"), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(token_status(&t, "acme+ci", &secret).await.0, StatusCode::UNAUTHORIZED, "revoked");

    // Deleted: its other token stops working, it is no member, and its name stays taken.
    let (status, _) = send(&t, &owner, Method::DELETE, "/api/v1/orgs/acme/robots/ci", None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert_eq!(token_status(&t, "acme+ci", second["token"].as_str().unwrap()).await.0, StatusCode::UNAUTHORIZED);
    let (_, members) = send(&t, &owner, Method::GET, "/api/v1/orgs/acme/members", None).await;
    assert!(!members.to_string().contains("acme+ci"), "{members}");
    let (status, _) = send(&t, &owner, Method::DELETE, "/api/v1/orgs/acme/robots/ci", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(&t, &owner, Method::POST, "/api/v1/orgs/acme/robots", Some(json!({"name": "ci", "role": "viewer"}))).await;
    assert_eq!(status, StatusCode::CONFLICT);
    // A person is not a robot to delete.
    let (status, _) = send(&t, &owner, Method::DELETE, "/api/v1/orgs/acme/robots/mia", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_members_page_adds_a_robot_and_shows_its_token_once_with_its_login_line() {
    let t = app().await;
    let Caller::Session { cookie, csrf } = t.caller("olivia", PASSWORD, Via::Session).await else { unreachable!() };
    let post = |path: String, fields: Vec<(&'static str, &'static str)>| {
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(fields);
        t.request(Method::POST, &path).header("cookie", &cookie).form(&form).send()
    };
    let page = t.request(Method::GET, "/orgs/acme/members").header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("id=\"add-robot\""), "{page}");

    let added = post("/orgs/acme/robots".into(), vec![("name", "ci"), ("role", "maintainer")]).await.unwrap();
    assert_eq!(added.status(), StatusCode::SEE_OTHER);
    assert_eq!(added.headers()["location"], "/orgs/acme/members?done=robot");
    let refused = post("/orgs/acme/robots".into(), vec![("name", "ci"), ("role", "root")]).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let made = post(
        "/orgs/acme/robots/ci/tokens".into(),
        vec![("name", "deploy"), ("expires", "30"), ("patterns", "acme/*"), ("pull", "on"), ("push", "on")],
    )
    .await
    .unwrap();
    assert_eq!(made.status(), StatusCode::OK);
    assert_eq!(made.headers()["cache-control"], "no-store");
    let page = made.text().await.unwrap();
    let secret =
        page.split("id=\"new-robot-token-secret\" class=\"secret\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    assert!(secret.starts_with("slw_"), "{secret}");
    assert!(page.contains(&format!("docker login {} -u acme+ci", t.base.trim_start_matches("http://"))), "{page}");
    assert_eq!(token_status(&t, "acme+ci", &secret).await.0, StatusCode::OK);
    let shown_again = t.request(Method::GET, "/orgs/acme/members").header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(!shown_again.contains(&secret), "shown once");
    assert!(shown_again.contains("deploy") && shown_again.contains("acme/*: pull, push"), "{shown_again}");

    let no_rules = post("/orgs/acme/robots/ci/tokens".into(), vec![("name", "empty"), ("patterns", "acme/*")]).await.unwrap();
    assert_eq!(no_rules.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let id = shown_again.split("/orgs/acme/robots/ci/tokens/").nth(1).unwrap().split('/').next().unwrap().to_owned();
    let revoked = post(format!("/orgs/acme/robots/ci/tokens/{id}/revoke"), vec![]).await.unwrap();
    assert_eq!(revoked.headers()["location"], "/orgs/acme/members?done=robot-token-revoked");
    assert_eq!(token_status(&t, "acme+ci", &secret).await.0, StatusCode::UNAUTHORIZED);
    let deleted = post("/orgs/acme/robots/ci/delete".into(), vec![]).await.unwrap();
    assert_eq!(deleted.headers()["location"], "/orgs/acme/members?done=robot-deleted");
    let page = t.request(Method::GET, "/orgs/acme/members").header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("acme+ci"), "{page}");

    // A maintainer sees no robot forms, and its posts are refused.
    let Caller::Session { cookie, csrf } = t.caller("mia", PASSWORD, Via::Session).await else { unreachable!() };
    let page = t.request(Method::GET, "/orgs/acme/members").header("cookie", &cookie).send().await.unwrap().text().await.unwrap();
    assert!(!page.contains("id=\"add-robot\""));
    let response = t
        .request(Method::POST, "/orgs/acme/robots")
        .header("cookie", &cookie)
        .form(&[("csrf", csrf.as_str()), ("name", "mine"), ("role", "viewer")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
}

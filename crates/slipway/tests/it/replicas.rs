//! Several replicas share one database and one blob store: any of them can continue
//! an upload that another started.

use reqwest::{Method, StatusCode};
use slipway_oci::{Algorithm, Digest};

use slipway_test_support::{Backend, random_bytes};

#[tokio::test]
async fn second_replica_finishes_an_upload() {
    let backend = Backend::new().await;
    let (a, b) = (backend.spawn().await, backend.spawn().await);
    let content = random_bytes(200_000);
    let digest = Digest::of(Algorithm::Sha256, &content);
    let start = a.request(Method::POST, "/v2/ha/repo/blobs/uploads/").send().await.unwrap();
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let first =
        a.request(Method::PATCH, &location).header("content-range", "0-99999").body(content[..100_000].to_vec()).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    let status = b.request(Method::GET, &location).send().await.unwrap();
    assert_eq!(status.headers()["range"], "0-99999");
    let second = b
        .request(Method::PATCH, &location)
        .header("content-range", "100000-199999")
        .body(content[100_000..].to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::ACCEPTED);
    let put = a.request(Method::PUT, &format!("{location}?digest={digest}")).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::CREATED, "{}", put.text().await.unwrap());
    for replica in [&a, &b] {
        let pulled = replica.get(&format!("/v2/ha/repo/blobs/{digest}")).await.bytes().await.unwrap();
        assert_eq!(pulled.as_ref(), content.as_slice());
    }
}

#[tokio::test]
async fn presigned_redirects_serve_the_blob() {
    let backend = Backend::with(|c| {
        if let Some(s3) = c.storage.s3.as_mut() {
            s3.redirect_downloads = true;
        }
    })
    .await;
    if !backend.is_s3() {
        // Presigned URLs are an S3 feature: the filesystem store serves bytes itself.
        let t = backend.spawn().await;
        let digest = t.push_blob("plain/repo", b"direct").await;
        assert_eq!(t.get(&format!("/v2/plain/repo/blobs/{digest}")).await.status(), StatusCode::OK);
        return;
    }
    let t = backend.spawn().await;
    let digest = t.push_blob("signed/repo", b"via the bucket").await;
    let response = t.get(&format!("/v2/signed/repo/blobs/{digest}")).await;
    assert_eq!(response.status(), StatusCode::TEMPORARY_REDIRECT);
    let target = response.headers()["location"].to_str().unwrap().to_owned();
    assert!(target.starts_with("http://127.0.0.1"), "{target}");
    let fetched = reqwest::get(&target).await.unwrap();
    assert_eq!(fetched.status(), StatusCode::OK);
    assert_eq!(fetched.bytes().await.unwrap().as_ref(), b"via the bucket");
}

#[tokio::test]
async fn a_token_from_one_replica_works_on_another() {
    // Replicas share the key directory (here: the same data directory).
    let backend = Backend::enforced().await;
    let (a, b) = (backend.spawn().await, backend.spawn().await);
    a.app.auth.create_user("ops", "ops@example.com", "replicated password", slipway_auth::access::SiteRole::Admin).await.unwrap();
    let token: serde_json::Value = a
        .request(Method::GET, "/auth/token")
        .query(&[("service", "slipway"), ("scope", "registry:catalog:*")])
        .basic_auth("ops", Some("replicated password"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let catalog = b.request(Method::GET, "/v2/_catalog").bearer_auth(token["token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(catalog.status(), StatusCode::OK);
}

/// Pull rate limits hold for the cluster: a client alternating between two replicas gets
/// its quota once, not once per replica (the counters were per process).
#[tokio::test]
async fn pull_limits_hold_across_replicas() {
    let backend = Backend::with(|c| c.rate_limit.anonymous_pulls = 4).await;
    let (a, b) = (backend.spawn().await, backend.spawn().await);
    a.push_image("ha/limited", "v1", &random_bytes(1000)).await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let replica = if i % 2 == 0 { &a } else { &b };
        statuses.push(replica.get("/v2/ha/limited/manifests/v1").await.status());
    }
    let admitted = statuses.iter().filter(|s| **s == StatusCode::OK).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((admitted, refused), (4, 4), "{statuses:?}");
}

/// Each replica briefly keeps which blobs a repository links, and small blobs' bytes
/// (issue 19's blob GET speed); what it keeps never serves a deleted blob as present from
/// the replica that deleted it, nor turns a blob another replica's garbage collection took
/// into a server error.
#[tokio::test]
async fn kept_blob_links_follow_deletes_and_collection() {
    let backend = Backend::new().await;
    let (a, b) = (backend.spawn().await, backend.spawn().await);
    let path = |digest: &Digest| format!("/v2/ha/links/blobs/{digest}");
    let deleted = a.push_blob("ha/links", b"deleted through the API").await;
    // Above the size whose bytes are kept in memory: its GET goes to storage.
    let collected = a.push_blob("ha/links", &random_bytes(100_000)).await;
    for digest in [&deleted, &collected] {
        // Twice: the second answer comes from what the first kept.
        for _ in 0..2 {
            assert_eq!(a.get(&path(digest)).await.status(), StatusCode::OK);
        }
    }

    let delete = a.request(Method::DELETE, &path(&deleted)).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::ACCEPTED);
    for method in [Method::HEAD, Method::GET] {
        let answer = a.request(method.clone(), &path(&deleted)).send().await.unwrap();
        assert_eq!(answer.status(), StatusCode::NOT_FOUND, "{method} right after the delete");
    }
    assert_eq!(b.get(&path(&deleted)).await.status(), StatusCode::NOT_FOUND);

    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let grace =
        slipway_registry::GcSettings { grace: std::time::Duration::from_millis(10), upload_ttl: std::time::Duration::from_secs(3600) };
    // Both: the unlinked blob is garbage too.
    assert_eq!(b.app.registry.collect_garbage(&grace).await.unwrap().blobs_deleted, 2);
    let answer = a.get(&path(&collected)).await;
    assert_eq!(answer.status(), StatusCode::NOT_FOUND, "a kept link to collected bytes: {}", answer.text().await.unwrap());
    let again = a.get(&path(&collected)).await;
    assert_eq!(again.status(), StatusCode::NOT_FOUND);
    assert_eq!(slipway_test_support::error_code(again).await, "BLOB_UNKNOWN");
}

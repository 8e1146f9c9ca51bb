//! Bad input gets the spec's error code and changes nothing.

use reqwest::{Method, StatusCode};
use slipway_oci::{Algorithm, Digest};

use slipway_test_support::{TestApp, error_code, image_manifest};

/// Catalog and tag listing before and after, to show a refused request changed nothing.
async fn state(t: &TestApp, repo: &str) -> (String, String) {
    (t.get("/v2/_catalog").await.text().await.unwrap(), t.get(&format!("/v2/{repo}/tags/list")).await.text().await.unwrap())
}

#[tokio::test]
async fn malformed_and_dangling_manifests() {
    let t = TestApp::spawn().await;
    let repo = "bad/input";
    t.push_image(repo, "keep", b"kept").await;
    let before = state(&t, repo).await;
    let config = t.push_blob(repo, b"{}").await;
    let missing = Digest::of(Algorithm::Sha256, b"never pushed");
    let cases: Vec<(&str, Vec<u8>, &str, StatusCode)> = vec![
        ("not json", b"{not json".to_vec(), "MANIFEST_INVALID", StatusCode::BAD_REQUEST),
        ("schema 1", br#"{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}"#.to_vec(), "MANIFEST_INVALID", StatusCode::BAD_REQUEST),
        (
            "no config",
            br#"{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","layers":[]}"#.to_vec(),
            "MANIFEST_INVALID",
            StatusCode::BAD_REQUEST,
        ),
        (
            "bad descriptor digest",
            r#"{"schemaVersion":2,"config":{"digest":"sha256:../../etc","size":1},"layers":[]}"#.to_string().into_bytes(),
            "MANIFEST_INVALID",
            StatusCode::BAD_REQUEST,
        ),
        ("missing layer", image_manifest(&config, &[(&missing, 5)]), "MANIFEST_BLOB_UNKNOWN", StatusCode::BAD_REQUEST),
        ("too large", vec![b' '; 4 * 1024 * 1024 + 1], "MANIFEST_INVALID", StatusCode::PAYLOAD_TOO_LARGE),
    ];
    for (what, body, code, status) in cases {
        let response = t
            .request(Method::PUT, &format!("/v2/{repo}/manifests/latest"))
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{what}");
        assert_eq!(error_code(response).await, code, "{what}");
    }
    let good = image_manifest(&config, &[]);
    let wrong_digest = Digest::of(Algorithm::Sha256, b"something else");
    let response = t
        .request(Method::PUT, &format!("/v2/{repo}/manifests/{wrong_digest}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(good)
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(response).await, "DIGEST_INVALID");
    assert_eq!(state(&t, repo).await, before);
}

#[tokio::test]
async fn wrong_blob_digest_stores_nothing() {
    let t = TestApp::spawn().await;
    let claimed = Digest::of(Algorithm::Sha256, b"what the client claims");
    let response = t
        .request(Method::POST, &format!("/v2/some/repo/blobs/uploads/?digest={claimed}"))
        .body(b"what the client sends".to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(response).await, "DIGEST_INVALID");
    assert_eq!(t.get(&format!("/v2/some/repo/blobs/{claimed}")).await.status(), StatusCode::NOT_FOUND);
    let unsupported =
        t.request(Method::POST, "/v2/some/repo/blobs/uploads/?digest=md5:d41d8cd98f00b204e9800998ecf8427e").send().await.unwrap();
    assert_eq!(error_code(unsupported).await, "DIGEST_INVALID");
    let report = t.app.registry.verify().await.unwrap();
    assert_eq!((report.blobs_stored, report.blobs_recorded), (0, 0));
}

#[tokio::test]
async fn traversal_names_are_refused() {
    let t = TestApp::spawn().await;
    // HTTP clients normalise `..` and `%2e%2e` away before sending, so these requests go
    // out over a raw socket, exactly as written.
    for path in [
        "/v2/../etc/passwd/tags/list",
        "/v2/a/../../b/manifests/latest",
        "/v2/a/./b/blobs/uploads/",
        "/v2/%2e%2e/x/tags/list",
        "/v2/a/%2e%2e/b/manifests/latest",
        "/v2/a/%2E%2E/%2E%2E/b/blobs/sha256:0",
        "/v2//abs/tags/list",
        "/v2/UPPER/tags/list",
    ] {
        let head = raw_request(&t, &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")).await;
        assert!(head.starts_with("HTTP/1.1 400"), "{path}: {head}");
        assert!(head.contains("NAME_INVALID"), "{path}: {head}");
    }
    let upload = t.request(Method::POST, "/v2/..%2f..%2froot/blobs/uploads/").send().await.unwrap();
    assert_eq!(error_code(upload).await, "NAME_INVALID");
    let tags = t.get("/v2/never/pushed/tags/list").await;
    assert_eq!(tags.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(tags).await, "NAME_UNKNOWN");
}

#[tokio::test]
async fn upload_protocol_errors() {
    let t = TestApp::spawn().await;
    let unknown = "/v2/x/y/blobs/uploads/8b0f5a2e-8a7e-4a53-9a43-3a2b1c0d9e8f";
    for method in [Method::GET, Method::PATCH, Method::PUT, Method::DELETE] {
        let response = t.request(method.clone(), &format!("{unknown}?digest=sha256:{}", "0".repeat(64))).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{method}");
        assert_eq!(error_code(response).await, "BLOB_UPLOAD_UNKNOWN", "{method}");
    }
    let not_uuid = t.get("/v2/x/y/blobs/uploads/..%2f..%2fstorage").await;
    assert_eq!(error_code(not_uuid).await, "BLOB_UPLOAD_UNKNOWN");

    let start = t.request(Method::POST, "/v2/x/y/blobs/uploads/").send().await.unwrap();
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let first = t.request(Method::PATCH, &location).header("content-range", "0-3").body("abcd").send().await.unwrap();
    assert_eq!(first.status(), StatusCode::ACCEPTED);
    for bogus in ["10-13", "bytes=4-7", "7-4", "x-y"] {
        let response = t.request(Method::PATCH, &location).header("content-range", bogus).body("efgh").send().await.unwrap();
        assert_eq!(response.status(), StatusCode::RANGE_NOT_SATISFIABLE, "{bogus}");
    }
    let size_lie = t.request(Method::PATCH, &location).header("content-range", "4-9").body("efgh").send().await.unwrap();
    assert_eq!(size_lie.status(), StatusCode::BAD_REQUEST);
    let status = t.request(Method::GET, &location).send().await.unwrap();
    assert_eq!(status.headers()["range"], "0-3", "refused chunks left the session as it was");
    let digest = Digest::of(Algorithm::Sha256, b"abcdefgh");
    let finish =
        t.request(Method::PUT, &format!("{location}?digest={digest}")).header("content-range", "4-7").body("efgh").send().await.unwrap();
    assert_eq!(finish.status(), StatusCode::CREATED);
    assert_eq!(t.get(&format!("/v2/x/y/blobs/{digest}")).await.bytes().await.unwrap().as_ref(), b"abcdefgh");
    let cancel = t.request(Method::DELETE, &location).send().await.unwrap();
    assert_eq!(error_code(cancel).await, "BLOB_UPLOAD_UNKNOWN", "a finished session is gone");
    let method = t.request(Method::PATCH, "/v2/x/y/tags/list").send().await.unwrap();
    assert_eq!(method.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(error_code(method).await, "UNSUPPORTED");
}

async fn raw_request(t: &TestApp, request: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(t.base.trim_start_matches("http://")).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    response
}

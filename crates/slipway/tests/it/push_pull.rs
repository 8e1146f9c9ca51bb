use reqwest::{Method, StatusCode};
use slipway_oci::{Algorithm, Digest};

use slipway_test_support::{Backend, TestApp, error_code, random_bytes};

/// Pushes `content` to `repo` in PATCHes of `chunk` bytes, checking the offsets each
/// answer reports, then commits it with a PUT naming its digest.
async fn push_in_chunks(t: &TestApp, repo: &str, content: &[u8], chunk: usize) -> Digest {
    let digest = Digest::of(Algorithm::Sha256, content);
    let start = t.request(Method::POST, &format!("/v2/{repo}/blobs/uploads/")).send().await.unwrap();
    let mut location = start.headers()["location"].to_str().unwrap().to_owned();
    for (i, piece) in content.chunks(chunk).enumerate() {
        let from = i * chunk;
        let patch = t
            .request(Method::PATCH, &location)
            .header("content-range", format!("{from}-{}", from + piece.len() - 1))
            .header("content-length", piece.len())
            .body(piece.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(patch.status(), StatusCode::ACCEPTED);
        assert_eq!(patch.headers()["range"], format!("0-{}", from + piece.len() - 1).as_str());
        location = patch.headers()["location"].to_str().unwrap().to_owned();
    }
    let status = t.request(Method::GET, &location).send().await.unwrap();
    assert_eq!(status.status(), StatusCode::NO_CONTENT);
    assert_eq!(status.headers()["range"], format!("0-{}", content.len() - 1).as_str());
    let put = t.request(Method::PUT, &format!("{location}?digest={digest}")).send().await.unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(put.headers()["docker-content-digest"], digest.to_string().as_str());
    digest
}

/// Whole, HEAD and ranged GETs of a blob streamed from storage and of one small enough
/// that its bytes are kept in memory (asked twice: read, then kept).
#[tokio::test]
async fn chunked_upload_then_ranged_pull() {
    let t = TestApp::spawn().await;
    for (len, piece) in [(300_000, 100_000), (5_000, 2_000)] {
        let content = random_bytes(len);
        let digest = push_in_chunks(&t, "org/team/app", &content, piece).await;
        let blob = format!("/v2/org/team/app/blobs/{digest}");
        for _ in 0..2 {
            let whole = t.get(&blob).await;
            assert_eq!(whole.status(), StatusCode::OK);
            assert_eq!(whole.bytes().await.unwrap().as_ref(), content.as_slice());
            let head = t.request(Method::HEAD, &blob).send().await.unwrap();
            assert_eq!(head.headers()["content-length"], len.to_string().as_str());
            let part = t.request(Method::GET, &blob).header("range", "bytes=1000-1999").send().await.unwrap();
            assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
            assert_eq!(part.headers()["content-range"], format!("bytes 1000-1999/{len}").as_str());
            assert_eq!(part.bytes().await.unwrap().as_ref(), &content[1000..2000]);
            let tail = t.request(Method::GET, &blob).header("range", "bytes=-10").send().await.unwrap();
            assert_eq!(tail.status(), StatusCode::PARTIAL_CONTENT);
            assert_eq!(tail.bytes().await.unwrap().as_ref(), &content[len - 10..]);
            let beyond = t.request(Method::GET, &blob).header("range", format!("bytes={len}-")).send().await.unwrap();
            assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
            assert_eq!(beyond.headers()["content-range"], format!("bytes */{len}").as_str());
        }
    }
}

/// S3 copies at most 5 GiB in one request: a blob above the bucket's copy limit (lowered
/// here to 64 KiB, on both sides: the suite's moto refuses copies above N bytes under a
/// `copy-limit-N/` prefix) is committed by a streamed multipart copy, whole, whether it
/// came in one request or in chunks; one below it by the server-side copy. (On the
/// filesystem the same pushes are renames.) `bench/s3-large.sh` commits a real 5 GiB +
/// 1 MiB blob.
#[tokio::test]
async fn blobs_above_the_copy_limit_commit_whole() {
    const LIMIT: u64 = 64 << 10;
    let backend = Backend::with(|c| {
        if let Some(s3) = c.storage.s3.as_mut() {
            s3.max_copy_bytes = LIMIT;
            s3.prefix = format!("copy-limit-{LIMIT}/{}", s3.prefix);
        }
    })
    .await;
    let t = backend.spawn().await;
    let small = random_bytes(1_000);
    let whole = random_bytes(300_000);
    let chunked = random_bytes(250_000);
    let pushed = [
        (t.push_blob("big/blobs", &small).await, &small),
        (t.push_blob("big/blobs", &whole).await, &whole),
        (push_in_chunks(&t, "big/blobs", &chunked, 100_000).await, &chunked),
    ];
    for (digest, content) in pushed {
        let response = t.get(&format!("/v2/big/blobs/blobs/{digest}")).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.bytes().await.unwrap().as_ref(), content.as_slice(), "{digest}");
    }
}

#[tokio::test]
async fn manifests_tags_catalog_and_referrers() {
    let t = TestApp::spawn().await;
    let repo = "acme/tools/builder";
    let image = t.push_image(repo, "v1", b"layer one").await;
    for tag in ["a", "b", "c", "v2"] {
        t.push_image(repo, tag, tag.as_bytes()).await;
    }
    t.push_image("zeta/other", "latest", b"x").await;

    let by_tag = t.get(&format!("/v2/{repo}/manifests/v1")).await;
    assert_eq!(by_tag.status(), StatusCode::OK);
    assert_eq!(by_tag.headers()["docker-content-digest"], image.to_string().as_str());
    assert_eq!(by_tag.headers()["content-type"], "application/vnd.oci.image.manifest.v1+json");
    let refused = t
        .request(Method::GET, &format!("/v2/{repo}/manifests/v1"))
        .header("accept", "application/vnd.docker.distribution.manifest.list.v2+json")
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::NOT_FOUND, "Accept negotiation refuses other types");

    let page = t.get(&format!("/v2/{repo}/tags/list?n=2")).await;
    assert_eq!(page.headers()["link"], format!("</v2/{repo}/tags/list?n=2&last=b>; rel=\"next\"").as_str());
    let body: serde_json::Value = page.json().await.unwrap();
    assert_eq!(body["tags"], serde_json::json!(["a", "b"]));
    let rest: serde_json::Value = t.get(&format!("/v2/{repo}/tags/list?n=10&last=b")).await.json().await.unwrap();
    assert_eq!(rest["tags"], serde_json::json!(["c", "v1", "v2"]));
    let catalog = t.get("/v2/_catalog?n=1").await;
    assert!(catalog.headers().contains_key("link"));
    let all: serde_json::Value = t.get("/v2/_catalog").await.json().await.unwrap();
    assert_eq!(all["repositories"], serde_json::json!([repo, "zeta/other"]));

    // An artifact whose subject is the image shows up in the referrers API.
    let empty = t.push_blob(repo, b"{}").await;
    let signature = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "artifactType": "application/vnd.example.signature",
        "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": empty.to_string(), "size": 2},
        "layers": [],
        "subject": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": image.to_string(), "size": 1},
        "annotations": {"org.example.signer": "ci"}
    }))
    .unwrap();
    let sig_digest = Digest::of(Algorithm::Sha256, &signature);
    let put = t
        .request(Method::PUT, &format!("/v2/{repo}/manifests/{sig_digest}"))
        .header("content-type", "application/vnd.oci.image.manifest.v1+json")
        .body(signature)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED);
    assert_eq!(put.headers()["oci-subject"], image.to_string().as_str());
    let referrers = t.get(&format!("/v2/{repo}/referrers/{image}?artifactType=application/vnd.example.signature")).await;
    assert_eq!(referrers.headers()["oci-filters-applied"], "artifactType");
    let index: serde_json::Value = referrers.json().await.unwrap();
    assert_eq!(index["manifests"][0]["digest"], sig_digest.to_string());
    assert_eq!(index["manifests"][0]["annotations"]["org.example.signer"], "ci");
    let none: serde_json::Value = t.get(&format!("/v2/{repo}/referrers/{image}?artifactType=other")).await.json().await.unwrap();
    assert_eq!(none["manifests"], serde_json::json!([]));

    // Deleting a tag leaves the manifest; deleting the manifest removes its tags.
    let delete_tag = t.request(Method::DELETE, &format!("/v2/{repo}/manifests/a")).send().await.unwrap();
    assert_eq!(delete_tag.status(), StatusCode::ACCEPTED);
    assert_eq!(t.get(&format!("/v2/{repo}/manifests/a")).await.status(), StatusCode::NOT_FOUND);
    let delete = t.request(Method::DELETE, &format!("/v2/{repo}/manifests/{image}")).send().await.unwrap();
    assert_eq!(delete.status(), StatusCode::ACCEPTED);
    let gone = t.get(&format!("/v2/{repo}/manifests/v1")).await;
    assert_eq!(error_code(gone).await, "MANIFEST_UNKNOWN");
}

#[tokio::test]
async fn mount_with_and_without_from() {
    let t = TestApp::spawn().await;
    let digest = t.push_blob("source/repo", b"shared layer").await;
    let mount = t.request(Method::POST, &format!("/v2/target/one/blobs/uploads/?mount={digest}&from=source/repo")).send().await.unwrap();
    assert_eq!(mount.status(), StatusCode::CREATED);
    let anonymous = t.request(Method::POST, &format!("/v2/target/two/blobs/uploads/?mount={digest}")).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::CREATED);
    let wrong_source =
        t.request(Method::POST, &format!("/v2/target/three/blobs/uploads/?mount={digest}&from=target/none")).send().await.unwrap();
    assert_eq!(wrong_source.status(), StatusCode::ACCEPTED, "falls back to an upload session");
    assert_eq!(t.get(&format!("/v2/target/two/blobs/{digest}")).await.bytes().await.unwrap().as_ref(), b"shared layer");
    assert_eq!(t.get(&format!("/v2/target/three/blobs/{digest}")).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn operational_endpoints() {
    let t = TestApp::spawn().await;
    assert_eq!(t.get("/healthz").await.status(), StatusCode::OK);
    // Ready once the search index is built: nothing has built it yet, so the first probe
    // is refused and starts the build.
    let first = t.get("/readyz").await;
    assert_eq!(first.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(first.text().await.unwrap(), "building the search index");
    let mut ready = t.get("/readyz").await;
    for _ in 0..100 {
        if ready.status() == StatusCode::OK {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        ready = t.get("/readyz").await;
    }
    assert_eq!(ready.status(), StatusCode::OK);
    t.push_image("metrics/check", "latest", b"bytes").await;
    let metrics = t.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains("slipway_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"manifest\""), "{metrics}");
    assert!(metrics.contains("slipway_upload_bytes_total"), "{metrics}");
    let ping = t.get("/v2/").await;
    assert_eq!(ping.headers()["docker-distribution-api-version"], "registry/2.0");
}

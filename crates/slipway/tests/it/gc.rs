//! Garbage collection removes what nothing needs, and never what a push is using.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use slipway_registry::GcSettings;

use slipway_test_support::{TestApp, random_bytes};

fn settings(grace_ms: u64) -> GcSettings {
    GcSettings { grace: Duration::from_millis(grace_ms), upload_ttl: Duration::from_millis(grace_ms) }
}

#[tokio::test]
async fn collects_unreferenced_blobs_and_stale_uploads() {
    let t = TestApp::spawn().await;
    let kept = t.push_image("gc/repo", "latest", b"referenced layer").await;
    let garbage = t.push_blob("gc/repo", b"uploaded but never referenced").await;
    let abandoned = t.request(Method::POST, "/v2/gc/repo/blobs/uploads/").send().await.unwrap();
    let abandoned = abandoned.headers()["location"].to_str().unwrap().to_owned();
    t.request(Method::PATCH, &abandoned).body("partial").send().await.unwrap();

    // Within the grace period nothing goes.
    let report = t.app.registry.collect_garbage(&settings(60_000)).await.unwrap();
    assert_eq!((report.blobs_deleted, report.uploads_expired), (0, 0));

    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = t.app.registry.collect_garbage(&settings(10)).await.unwrap();
    assert_eq!((report.blobs_deleted, report.uploads_expired), (1, 1));
    assert_eq!(t.get(&format!("/v2/gc/repo/blobs/{garbage}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(t.get(&abandoned).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(t.get(&format!("/v2/gc/repo/manifests/{kept}")).await.status(), StatusCode::OK);
    let verify = t.app.registry.verify().await.unwrap();
    assert!(verify.problems.is_empty(), "{:?}", verify.problems);
    assert_eq!(verify.blobs_stored, 2, "config and layer of the kept image remain");

    // Deleting the image makes its blobs garbage.
    t.request(Method::DELETE, &format!("/v2/gc/repo/manifests/{kept}")).send().await.unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let report = t.app.registry.collect_garbage(&settings(10)).await.unwrap();
    assert_eq!(report.blobs_deleted, 2);
    assert_eq!(t.app.registry.verify().await.unwrap().blobs_stored, 0);
}

#[tokio::test]
async fn pushes_and_mounts_survive_concurrent_collection() {
    const GRACE_MS: u64 = 4000;
    let t = std::sync::Arc::new(TestApp::spawn().await);
    // Two old unreferenced blobs: one a mount revives while GC runs, one nobody wants.
    let revived = t.push_blob("gc/source", b"old layer mounted again").await;
    let doomed = t.push_blob("gc/source", b"old layer nobody wants").await;
    tokio::time::sleep(Duration::from_millis(GRACE_MS + 200)).await;

    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let collector = {
        let (t, stop) = (t.clone(), stop.clone());
        tokio::spawn(async move {
            let mut deleted = 0;
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                deleted += t.app.registry.collect_garbage(&settings(GRACE_MS)).await.unwrap().blobs_deleted;
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            deleted
        })
    };
    let mounted_at = std::time::Instant::now();
    let mount = t.request(Method::POST, &format!("/v2/gc/target/blobs/uploads/?mount={revived}&from=gc/source")).send().await.unwrap();
    let mounted = mount.status() == StatusCode::CREATED;
    let mut pushes = Vec::new();
    for i in 0..12 {
        let t = t.clone();
        pushes.push(tokio::spawn(async move {
            let layer = random_bytes(20_000 + i);
            t.push_image(&format!("gc/concurrent/{i}"), "latest", &layer).await
        }));
    }
    for push in pushes {
        push.await.expect("every push succeeds while GC runs");
    }
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let deleted = collector.await.unwrap();
    let revived_status = t.get(&format!("/v2/gc/target/blobs/{revived}")).await.status();
    assert!(deleted >= 1, "the doomed blob is collected");
    assert_eq!(t.get(&format!("/v2/gc/source/blobs/{doomed}")).await.status(), StatusCode::NOT_FOUND);
    if mounted && mounted_at.elapsed() < Duration::from_millis(GRACE_MS) {
        // The mount touched the blob, so it outlives GC runs within the grace period even
        // though no manifest references it.
        assert_eq!(revived_status, StatusCode::OK);
    }
    for i in 0..12 {
        let manifest = t.get(&format!("/v2/gc/concurrent/{i}/manifests/latest")).await;
        assert_eq!(manifest.status(), StatusCode::OK);
    }
    let verify = t.app.registry.verify().await.unwrap();
    assert!(verify.problems.is_empty(), "{:?}", verify.problems);
}

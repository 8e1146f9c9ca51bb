//! `/metrics` (issue 19): label values stay bounded whatever clients send, and the
//! exposition carries the build, the job queue and scan durations.

use reqwest::{Method, StatusCode};
use slipway_test_support::{Backend, random_bytes};

#[tokio::test]
async fn labels_are_templates_and_known_methods_whatever_clients_send() {
    let t = Backend::new().await.spawn().await;
    // Methods no one defined, and paths no one routed: each a new label value, were
    // labels taken from the request as sent.
    for i in 0..20 {
        let method = Method::from_bytes(format!("XPROBE{i}").as_bytes()).unwrap();
        t.request(method, "/v2/").send().await.unwrap();
        assert_eq!(t.get(&format!("/no/such/page/{i}")).await.status(), StatusCode::NOT_FOUND);
        t.get(&format!("/products/acme/missing-{i}")).await;
    }
    let text = t.get("/metrics").await.text().await.unwrap();
    assert!(!text.contains("XPROBE") && !text.contains("missing-") && !text.contains("/no/such"), "request text in labels");
    assert!(text.contains(r#"method="other""#), "{text}");
    assert!(text.contains(r#"route="/products/{publisher}/{slug}""#), "the route's template");
    assert!(text.contains(r#"route="unmatched""#), "404s of no route");
    assert!(text.contains(&format!(r#"slipway_build_info{{version="{}"}} 1"#, env!("CARGO_PKG_VERSION"))), "build info");
}

#[tokio::test]
async fn the_job_queue_and_scan_durations_are_exposed() {
    let t = Backend::with(|c| c.jobs.workers = 0).await.spawn().await;
    // A pushed image is queued for its scan; with no workers here it waits.
    t.push_image("team/queued", "v1", &random_bytes(2000)).await;
    let text = t.get("/metrics").await.text().await.unwrap();
    let queued = text.lines().find(|l| l.starts_with(r#"slipway_jobs_queued{kind="scan_image"}"#)).unwrap_or_default();
    assert!(queued.ends_with(" 1") || queued.ends_with(" 2"), "{queued:?} in {text}");
    assert!(text.contains(r#"slipway_jobs_oldest_due_age_seconds{kind="scan_image"}"#), "{text}");
    // Scanning it now records its duration.
    let digest = t.get("/v2/team/queued/manifests/v1").await.headers()["docker-content-digest"].to_str().unwrap().to_owned();
    t.app.scanning.scan_image("team/queued", &digest).await.unwrap();
    let text = t.get("/metrics").await.text().await.unwrap();
    assert!(text.contains("slipway_scan_duration_seconds_count"), "{text}");
}

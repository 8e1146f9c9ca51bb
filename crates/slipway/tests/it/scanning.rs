//! Security scanning end to end: images pushed through the registry API are scanned by
//! the job runner against the test feed, a feed change re-matches only what it touches,
//! rescans come from the layer cache, and results are shown only to whom they belong.

use std::collections::BTreeSet;
use std::io::Write;
use std::path::PathBuf;

use flate2::write::GzEncoder;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use slipway_auth::access::{OrgRole, SiteRole};
use slipway_catalog::media::MediaKind;
use slipway_catalog::{Access, Actor, ListingInput, ProductType, PublisherInput, Tier};
use slipway_oci::Digest;
use slipway_security::Reassessment;

use slipway_test_support::{Backend, Caller, TestApp, Via};

const PASSWORD: &str = "scanning test password";

pub(crate) fn feed_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../slipway-scanner/testdata/feed/good")
}

/// A gzip-compressed layer tar holding `files`.
fn layer(files: &[(&str, &str)]) -> Vec<u8> {
    let mut tar = tar::Builder::new(GzEncoder::new(Vec::new(), flate2::Compression::default()));
    for (path, content) in files {
        let mut header = tar::Header::new_gnu();
        header.set_mode(0o644);
        header.set_size(content.len() as u64);
        tar.append_data(&mut header, path, content.as_bytes()).unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap()
}

fn dpkg_entry(package: &str, source: &str, version: &str) -> String {
    format!(
        "Package: {package}\nStatus: install ok installed\nArchitecture: amd64\nSource: {source}\nVersion: {version}\nDescription: {package}\n\n"
    )
}

/// A Debian 12 base layer: OpenSSH, OpenSSL, zlib and apt from dpkg's database.
fn debian_base() -> Vec<u8> {
    let status = [
        dpkg_entry("openssh-client", "openssh", "1:9.2p1-2+deb12u2"),
        dpkg_entry("libssl3", "openssl", "3.0.11-1~deb12u2"),
        dpkg_entry("zlib1g", "zlib", "1:1.2.13.dfsg-1"),
        dpkg_entry("apt", "apt", "2.6.1"),
    ]
    .concat();
    let os_release = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";
    layer(&[("etc/os-release", os_release), ("var/lib/dpkg/status", &status)])
}

/// An application layer of Python distributions.
fn python_app(packages: &[(&str, &str)]) -> Vec<u8> {
    let files: Vec<(String, String)> = packages
        .iter()
        .map(|(name, version)| {
            let path = format!("usr/local/lib/python3.11/site-packages/{name}-{version}.dist-info/METADATA");
            (path, format!("Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"))
        })
        .collect();
    layer(&files.iter().map(|(p, c)| (p.as_str(), c.as_str())).collect::<Vec<_>>())
}

/// Pushes an image of `layers` through the registry API; returns the manifest digest and
/// the layers' digests.
async fn push_image(t: &TestApp, repo: &str, tag: &str, layers: &[&[u8]]) -> (Digest, Vec<Digest>) {
    let config = t.push_blob(repo, br#"{"architecture":"amd64","os":"linux"}"#).await;
    let mut pushed = Vec::new();
    for layer in layers {
        pushed.push((t.push_blob(repo, layer).await, layer.len()));
    }
    let refs: Vec<(&Digest, usize)> = pushed.iter().map(|(d, len)| (d, *len)).collect();
    let (status, body, digest) = t.push_manifest(repo, tag, &config, &refs).await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    (digest, pushed.into_iter().map(|(d, _)| d).collect())
}

pub(crate) async fn run_jobs(t: &TestApp) -> usize {
    t.app.job_runner().run_until_idle().await.expect("jobs run")
}

type FindingKey = (String, String, Option<String>, String, String);

async fn findings(t: &TestApp, digest: &Digest) -> BTreeSet<FindingKey> {
    t.app
        .db
        .scanning()
        .findings(&digest.to_string())
        .await
        .unwrap()
        .into_iter()
        .map(|f| (f.package_name, f.advisory_id, f.fixed_version, f.status, f.class))
        .collect()
}

fn expected(items: &[(&str, &str, Option<&str>, &str, &str)]) -> BTreeSet<FindingKey> {
    items
        .iter()
        .map(|(p, a, fixed, status, class)| ((*p).into(), (*a).into(), fixed.map(str::to_owned), (*status).into(), (*class).into()))
        .collect()
}

/// The findings the test feed yields for `debian_base` + `python_app` of Jinja2 3.1.2,
/// requests 2.31.0 and PyYAML 6.0.1: OpenSSH before deb12u3, OpenSSL before 3.0.13, apt's
/// unfixed (unimportant) advisory, Jinja2 before 3.1.3; zlib, requests and PyYAML are
/// past their fixes.
fn base_findings() -> BTreeSet<FindingKey> {
    expected(&[
        ("openssh-client", "DEBIAN-CVE-2024-6387", Some("1:9.2p1-2+deb12u3"), "fix_available", "critical"),
        ("libssl3", "DEBIAN-CVE-2023-5678", Some("3.0.13-1~deb12u1"), "fix_available", "minor"),
        ("apt", "DEBIAN-CVE-2011-3374", None, "will_not_fix", "minor"),
        ("Jinja2", "GHSA-h5c8-rqwp-cp95", Some("3.1.3"), "fix_available", "major"),
    ])
}

/// An advisory for `requests` below 2.32.0, as a feed update would bring it.
fn requests_advisory(withdrawn: bool) -> String {
    json!({
        "schema_version": "1.6.0",
        "id": "GHSA-slip-0001-test",
        "modified": if withdrawn { "2099-01-02T00:00:00Z" } else { "2099-01-01T00:00:00Z" },
        "withdrawn": if withdrawn { Some("2099-01-02T00:00:00Z") } else { None },
        "aliases": ["CVE-2099-0001"],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
        "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.32.0"}]}]}],
    })
    .to_string()
}

async fn import_file(t: &TestApp, content: &str) -> slipway_security::FeedImport {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("update.json");
    std::fs::File::create(&path).unwrap().write_all(content.as_bytes()).unwrap();
    t.app.scanning.import_feed(&[path], "test update").await.unwrap()
}

#[tokio::test]
async fn pushed_images_are_scanned_reassessed_and_rescanned_from_the_cache() {
    let t = TestApp::spawn().await;
    let db = t.app.db.scanning();
    let feed = t.app.scanning.import_feed(&[feed_dir()], "test feed").await.unwrap();
    assert!(feed.rejected.is_empty(), "{:?}", feed.rejected);
    assert_eq!((feed.imported, feed.updated, feed.unchanged), (25, 0, 0), "every record of the test feed");

    let (base, app) = (debian_base(), python_app(&[("Jinja2", "3.1.2"), ("requests", "2.31.0"), ("PyYAML", "6.0.1")]));
    let (digest, layers) = push_image(&t, "acme/app", "1.0", &[&base, &app]).await;
    // The feed's re-assessment (nothing scanned yet: nothing to do) and the push's scan.
    assert_eq!(run_jobs(&t).await, 2);

    let scan = db.image_scan(&digest.to_string()).await.unwrap().expect("scanned");
    assert_eq!((scan.status.as_str(), scan.os.as_deref()), ("done", Some("Debian GNU/Linux 12 (bookworm)")));
    assert_eq!((scan.layers_analyzed, scan.layers_cached), (2, 0));
    assert_eq!((scan.critical, scan.major, scan.minor, scan.unrated), (1, 1, 2, 0));
    assert_eq!(findings(&t, &digest).await, base_findings());
    // The inventory, each package with the layer that introduced it.
    let packages: BTreeSet<(String, String, String, String)> = db
        .image_packages(&digest.to_string())
        .await
        .unwrap()
        .into_iter()
        .map(|p| (p.ecosystem, p.match_name, p.version, p.layer))
        .collect();
    let (l1, l2) = (layers[0].to_string(), layers[1].to_string());
    let want: BTreeSet<(String, String, String, String)> = [
        ("Debian", "openssh", "1:9.2p1-2+deb12u2", &l1),
        ("Debian", "openssl", "3.0.11-1~deb12u2", &l1),
        ("Debian", "zlib", "1:1.2.13.dfsg-1", &l1),
        ("Debian", "apt", "2.6.1", &l1),
        ("PyPI", "jinja2", "3.1.2", &l2),
        ("PyPI", "requests", "2.31.0", &l2),
        ("PyPI", "pyyaml", "6.0.1", &l2),
    ]
    .into_iter()
    .map(|(e, n, v, l)| (e.into(), n.into(), v.into(), l.clone()))
    .collect();
    assert_eq!(packages, want);
    let first_seen: Vec<i64> = db.findings(&digest.to_string()).await.unwrap().iter().map(|f| f.first_seen).collect();

    // A feed update with an advisory for requests: only requests is re-matched, and one
    // event tells of the one new vulnerability.
    let update = import_file(&t, &requests_advisory(false)).await;
    assert_eq!((update.imported, update.updated, update.unchanged), (1, 0, 0));
    assert!(update.reassessment_job.is_some());
    let done = t.app.scanning.reassess().await.unwrap();
    assert_eq!(done, Reassessment { packages: 1, images: 1, added: 1, updated: 0, removed: 0, events: 1 });
    let mut with_requests = base_findings();
    with_requests.extend(expected(&[("requests", "GHSA-slip-0001-test", Some("2.32.0"), "fix_available", "critical")]));
    assert_eq!(findings(&t, &digest).await, with_requests);
    let events = db.vulnerability_events(0, 100).await.unwrap();
    assert_eq!(events.len(), 1, "{events:?}");
    let event = &events[0];
    assert_eq!(
        (event.digest.as_str(), event.advisory_id.as_str(), event.vulnerability.as_str()),
        (digest.to_string().as_str(), "GHSA-slip-0001-test", "CVE-2099-0001")
    );
    assert_eq!((event.package.as_str(), event.class.as_str()), ("pkg:pypi/requests@2.31.0", "critical"));
    assert_eq!(t.app.db.images().repositories_with_manifest(&event.digest).await.unwrap(), ["acme/app"]);
    let untouched: Vec<i64> =
        db.findings(&digest.to_string()).await.unwrap().iter().filter(|f| f.package_name != "requests").map(|f| f.first_seen).collect();
    assert_eq!(untouched, first_seen);
    assert_eq!(db.image_scan(&digest.to_string()).await.unwrap().unwrap().critical, 2);
    // The queued job finds the change handled; the same import again changes nothing.
    assert_eq!(run_jobs(&t).await, 1);
    assert_eq!(import_file(&t, &requests_advisory(false)).await.unchanged, 1);
    assert_eq!(db.vulnerability_events(0, 100).await.unwrap().len(), 1);

    // Withdrawn: the finding goes, and nothing is announced.
    assert_eq!(import_file(&t, &requests_advisory(true)).await.updated, 1);
    assert_eq!(run_jobs(&t).await, 1);
    assert_eq!(findings(&t, &digest).await, base_findings());
    assert_eq!(db.vulnerability_events(0, 100).await.unwrap().len(), 1);

    // An on-demand rescan, asked for by a member: every layer comes from the cache.
    t.app.auth.create_user("alice", "alice@example.com", PASSWORD, SiteRole::User).await.unwrap();
    t.app.auth.create_organization("acme", "alice").await.unwrap();
    let (cookie, csrf) = t.sign_in("alice", PASSWORD).await;
    let response = t
        .request(Method::POST, "/api/v1/scans")
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&json!({"repository": "acme/app", "reference": "1.0"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let requested: Value = response.json().await.unwrap();
    assert_eq!(requested["digests"], json!([digest.to_string()]));
    assert_eq!(requested["jobs"].as_array().unwrap().len(), 1);
    assert_eq!(run_jobs(&t).await, 1);
    let rescan = db.image_scan(&digest.to_string()).await.unwrap().unwrap();
    assert_eq!((rescan.layers_analyzed, rescan.layers_cached), (0, 2));
    assert_eq!(findings(&t, &digest).await, base_findings());

    // Another image on the same base: only its own layer is analysed.
    let (second, _) = push_image(&t, "acme/app", "2.0", &[&base, &python_app(&[("Jinja2", "3.1.3")])]).await;
    assert_eq!(run_jobs(&t).await, 1);
    let scan = db.image_scan(&second.to_string()).await.unwrap().unwrap();
    assert_eq!((scan.layers_analyzed, scan.layers_cached, scan.major), (1, 1, 0));

    // The member reads the results: findings with the layers that brought them.
    let response =
        t.request(Method::GET, "/api/v1/scans?repository=acme/app&reference=1.0").header("cookie", &cookie).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let results: Value = response.json().await.unwrap();
    let image = &results["images"][0];
    assert_eq!(image["digest"], digest.to_string());
    assert_eq!(image["scan"]["counts"], json!({"critical": 1, "major": 1, "minor": 2, "unrated": 0}));
    assert_eq!(image["packages"].as_array().unwrap().len(), 7);
    let findings = image["findings"].as_array().unwrap();
    assert_eq!(findings[0]["advisory_id"], "DEBIAN-CVE-2024-6387", "most severe first");
    assert_eq!(findings[0]["severity"]["score"], 8.1);
    let jinja = findings.iter().find(|f| f["advisory_id"] == "GHSA-h5c8-rqwp-cp95").unwrap();
    assert_eq!(jinja["layers"], json!([l2]));
    assert_eq!(jinja["aliases"], json!(["CVE-2024-22195"]));
}

/// Issue 14, item 5: a layer's dpkg status of any size was stored whole, again for every
/// manifest pointing at it. Over the configured limits the scan keeps the first packages
/// (and the most severe findings), says through the API that it is incomplete and why,
/// and three manifests sharing the layer store its packages once.
#[tokio::test]
async fn an_inventory_over_the_limits_is_cut_flagged_and_stored_once() {
    let t = Backend::with(|config| {
        config.scan.max_packages_per_layer = 50;
        config.scan.max_packages_per_image = 40;
        config.scan.max_findings_per_image = 2;
    })
    .await
    .spawn()
    .await;
    let db = t.app.db.scanning();
    t.app.scanning.import_feed(&[feed_dir()], "test feed").await.unwrap();
    // The vulnerable packages first (kept by both limits: the layer keeps the first it
    // lists, the image the first by name), then fillers up to 120 packages.
    let mut status = vec![
        dpkg_entry("openssh-client", "openssh", "1:9.2p1-2+deb12u2"),
        dpkg_entry("libssl3", "openssl", "3.0.11-1~deb12u2"),
        dpkg_entry("apt", "apt", "2.6.1"),
    ];
    status.extend((0..117).map(|i| dpkg_entry(&format!("zz-filler-{i:03}"), "zz-filler", "1.0")));
    let os_release = "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n";
    let big = layer(&[("etc/os-release", os_release), ("var/lib/dpkg/status", &status.concat())]);
    let layer_digest = t.push_blob("acme/big", &big).await;
    let mut digests = Vec::new();
    for n in 0..3 {
        // Three manifests differing only in their config, all pointing at the one layer.
        let config = t.push_blob("acme/big", format!(r#"{{"architecture":"amd64","os":"linux","created":"{n}"}}"#).as_bytes()).await;
        let (status, body, digest) = t.push_manifest("acme/big", &format!("v{n}"), &config, &[(&layer_digest, big.len())]).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        digests.push(digest);
    }
    run_jobs(&t).await;
    assert_eq!(db.inventory_totals().await.unwrap(), (40, 1), "one copy of the layer's kept packages");

    t.app.auth.create_user("alice", "alice@example.com", PASSWORD, SiteRole::User).await.unwrap();
    t.app.auth.create_organization("acme", "alice").await.unwrap();
    let (cookie, _) = t.sign_in("alice", PASSWORD).await;
    for (n, digest) in digests.iter().enumerate() {
        let response = t
            .request(Method::GET, &format!("/api/v1/scans?repository=acme/big&reference=v{n}"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let results: Value = response.json().await.unwrap();
        let image = &results["images"][0];
        assert_eq!(image["digest"], digest.to_string());
        assert_eq!(image["scan"]["status"], "done");
        let incomplete = image["scan"]["incomplete"].as_str().expect("the scan says it is incomplete");
        assert!(incomplete.contains(&format!("layer {layer_digest} lists 120 packages, over the limit of 50 per layer")), "{incomplete}");
        assert!(incomplete.contains("the image holds 50 packages, over the limit of 40 per image"), "{incomplete}");
        assert!(incomplete.contains("3 findings, over the limit of 2 per image"), "{incomplete}");
        assert_eq!(image["packages"].as_array().unwrap().len(), 40);
        let findings: Vec<&str> = image["findings"].as_array().unwrap().iter().map(|f| f["advisory_id"].as_str().unwrap()).collect();
        assert_eq!(findings.len(), 2);
        assert_eq!(findings[0], "DEBIAN-CVE-2024-6387", "the most severe kept");
        assert_eq!(image["scan"]["counts"]["critical"], 1);
    }
}

fn png_logo() -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    image::DynamicImage::new_rgb8(512, 512).write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

/// The owner's publisher profile `acme` and a draft listing `acme/shop` with a public tier.
/// acme's listing `shop` (a free tier of `acme/shop`), saved by `owner`, who owns acme:
/// the owner and what was saved.
async fn listing(t: &TestApp, owner: &str) -> (slipway_catalog::Viewer, ListingInput) {
    let account = t.app.auth.create_user(owner, &format!("{owner}@example.com"), PASSWORD, SiteRole::User).await.unwrap();
    let viewer = t.app.catalog.viewer(account).await.unwrap();
    let logo = t.app.catalog.upload_media(&viewer, MediaKind::Logo, png_logo()).await.unwrap();
    let profile = PublisherInput {
        display_name: "Acme".into(),
        legal_name: "Acme Inc.".into(),
        website: "https://acme.example".into(),
        phone: "+1 555 0100".into(),
        email: "legal@acme.example".into(),
        logo: Some(logo.clone()),
        story: String::new(),
    };
    t.app.catalog.save_publisher(&viewer, "acme", &profile, "http://localhost").await.unwrap();
    let viewer = t.app.catalog.viewer(viewer.account).await.unwrap();
    let input = ListingInput {
        name: "Shop".into(),
        logo: Some(logo),
        short_description: "Sells things.".into(),
        category: slipway_catalog::CATEGORIES[0].0.into(),
        search_tags: vec!["shop".into()],
        long_description: "A shop.".into(),
        screenshots: Vec::new(),
        support_url: "https://acme.example/help".into(),
        support_email: String::new(),
        support_info: String::new(),
        sla: String::new(),
        install_instructions: String::new(),
        product_type: ProductType::Image,
        runs_on: None,
        public_scan_summary: false,
        tiers: vec![Tier {
            slug: "free".into(),
            name: "Free".into(),
            description: String::new(),
            amount: 0,
            currency: "USD".into(),
            billing_period: "free".into(),
            trial_days: 0,
            access: Access::Public,
            repository: "acme/shop".into(),
            tags: Vec::new(),
        }],
    };
    t.app.catalog.save_listing(&viewer, "acme", None, &input).await.unwrap();
    (viewer, input)
}

/// Full results and scan requests by who asks: anonymous, a user of another
/// organization, a viewer, a maintainer and the owner of the owning organization, and a
/// moderator. Those who may not see a repository's results get 404, as for a repository
/// that does not exist. The public summary follows the listing's publication.
#[tokio::test]
async fn scan_results_are_for_the_publishers_members_and_moderators() {
    let t = Backend::new().await.spawn().await;
    t.app.scanning.import_feed(&[feed_dir()], "test feed").await.unwrap();
    let (olga, mut shop) = listing(&t, "olga").await;
    for (name, role) in [("otto", SiteRole::User), ("vera", SiteRole::User), ("max", SiteRole::User), ("mona", SiteRole::Moderator)] {
        t.app.auth.create_user(name, &format!("{name}@example.com"), PASSWORD, role).await.unwrap();
    }
    t.app.auth.create_organization("other", "otto").await.unwrap();
    t.app.auth.set_member("acme", "vera", OrgRole::Viewer).await.unwrap();
    t.app.auth.set_member("acme", "max", OrgRole::Maintainer).await.unwrap();
    let app = python_app(&[("Jinja2", "3.1.2")]);
    push_image(&t, "acme/private", "1.0", &[&app]).await;
    push_image(&t, "acme/shop", "1.0", &[&app]).await;
    run_jobs(&t).await;

    let read = "/api/v1/scans?repository=acme/private&reference=1.0";
    let missing = "/api/v1/scans?repository=acme/nothing&reference=1.0";
    let scan = json!({"repository": "acme/private"});
    let send = |method: Method, path: &str, caller: &Caller, body: Option<Value>| {
        let request = t.call(caller, method, path);
        match body {
            Some(body) => request.json(&body).send(),
            None => request.send(),
        }
    };
    let matrix = [
        // (who, read, read a missing repository, request a scan)
        ("anonymous", StatusCode::NOT_FOUND, StatusCode::NOT_FOUND, StatusCode::UNAUTHORIZED),
        ("otto", StatusCode::NOT_FOUND, StatusCode::NOT_FOUND, StatusCode::NOT_FOUND),
        ("vera", StatusCode::OK, StatusCode::NOT_FOUND, StatusCode::FORBIDDEN),
        ("max", StatusCode::OK, StatusCode::NOT_FOUND, StatusCode::ACCEPTED),
        ("olga", StatusCode::OK, StatusCode::NOT_FOUND, StatusCode::ACCEPTED),
        ("mona", StatusCode::OK, StatusCode::NOT_FOUND, StatusCode::ACCEPTED),
    ];
    // Each by session, then each by access token.
    let mut moderator = Caller::Anonymous;
    for via in Via::ALL {
        for (who, read_status, missing_status, scan_status) in matrix {
            let caller = match who {
                "anonymous" => Caller::Anonymous,
                name => t.caller(name, PASSWORD, via).await,
            };
            let response = send(Method::GET, read, &caller, None).await.unwrap();
            assert_eq!(response.status(), read_status, "{who} reads ({via:?})");
            if read_status == StatusCode::OK {
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["images"][0]["scan"]["counts"]["major"], 1, "{who}: {body}");
            } else {
                assert_eq!(response.headers()["content-type"], "application/problem+json");
            }
            let status = send(Method::GET, missing, &caller, None).await.unwrap().status();
            assert_eq!(status, missing_status, "{who} reads a missing repository ({via:?})");
            let response = send(Method::POST, "/api/v1/scans", &caller, Some(scan.clone())).await.unwrap();
            assert_eq!(response.status(), scan_status, "{who} asks for a scan ({via:?})");
            moderator = caller;
        }
    }
    for bad in ["acme/\u{0}", "Acme/App", "acme/../x", "acme//x"] {
        let response = send(Method::POST, "/api/v1/scans", &moderator, Some(json!({"repository": bad}))).await.unwrap();
        // An invalid name is refused as the catalog refuses one (422), not with a 400 of its own.
        assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY, "scan of {bad:?}");
        let query = format!("/api/v1/scans?repository={}&reference=1.0", bad.replace('\u{0}', "%00"));
        let results = send(Method::GET, &query, &moderator, None).await.unwrap().status();
        assert_eq!(results, StatusCode::UNPROCESSABLE_ENTITY, "results of {bad:?}");
    }

    // The summary per version: not for a draft; once published, for its members and
    // staff, and for everyone only when the publisher shares it.
    let security = "/api/v1/products/acme/shop/security";
    assert_eq!(t.get(security).await.status(), StatusCode::NOT_FOUND);
    t.app.catalog.set_published(Actor::Operator, "acme", "shop", true).await.unwrap();
    let kept: Value = t.get(security).await.json().await.unwrap();
    assert_eq!(
        (&kept["shared"], &kept["versions"][0]["tag"], &kept["versions"][0]["summary"]),
        (&json!(false), &json!("1.0"), &Value::Null)
    );
    let page = t.get("/products/acme/shop/versions").await.text().await.unwrap();
    assert!(page.contains("1.0") && !page.contains("major") && !page.contains("Vulnerabilities"), "{page}");
    let vera = t.caller("vera", PASSWORD, Via::Bearer).await;
    let member: Value = t.call(&vera, Method::GET, security).send().await.unwrap().json().await.unwrap();
    assert_eq!(member["versions"][0]["summary"]["counts"]["major"], 1, "a member sees them: {member}");
    t.app.catalog.set_published(Actor::Operator, "acme", "shop", false).await.unwrap();
    shop.public_scan_summary = true;
    t.app.catalog.save_listing(&olga, "acme", Some("shop"), &shop).await.unwrap();
    t.app.catalog.set_published(Actor::Operator, "acme", "shop", true).await.unwrap();
    let response = t.get(security).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["shared"], true);
    assert_eq!(body["versions"][0]["summary"]["counts"], json!({"critical": 0, "major": 1, "minor": 0, "unrated": 0}));
    assert!(body["versions"][0].get("findings").is_none(), "only a summary is public");
    let page = t.get("/products/acme/shop/versions").await.text().await.unwrap();
    assert!(page.contains("1 major"), "{page}");
    // The OpenAPI document describes the scanning API.
    let doc: Value = t.get("/api/openapi.json").await.json().await.unwrap();
    for path in ["/api/v1/scans", "/api/v1/products/{publisher}/{slug}/security"] {
        assert!(doc["paths"].get(path).is_some(), "{path} is documented");
    }
}

/// `feed sync` imports a source when it changed and skips it otherwise: a file by its
/// modification time, an HTTP server by ETag (304 Not Modified). A failing URL is
/// reported and recorded without stopping the others.
#[tokio::test]
async fn feed_sync_skips_unchanged_sources() {
    use axum::http::{HeaderMap, header};
    use axum::response::IntoResponse;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let t = TestApp::spawn().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("feed.json");
    std::fs::write(&file, requests_advisory(false)).unwrap();
    let file_url = format!("file://{}", file.display());

    let requests = Arc::new(AtomicUsize::new(0));
    let counter = requests.clone();
    let server = axum::Router::new().route(
        "/osv/feed.json",
        axum::routing::get(move |headers: HeaderMap| {
            counter.fetch_add(1, Ordering::SeqCst);
            async move {
                if headers.get(header::IF_NONE_MATCH).is_some_and(|v| v == "\"v1\"") {
                    return StatusCode::NOT_MODIFIED.into_response();
                }
                ([(header::ETAG, "\"v1\"")], requests_advisory(false).replace("GHSA-slip-0001-test", "GHSA-slip-0002-test")).into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let serving = tokio::spawn(async move { axum::serve(listener, server).await.unwrap() });
    let urls = [file_url.clone(), format!("{base}/osv/feed.json"), format!("{base}/osv/missing.zip")];

    let outcomes = |results: Vec<slipway_security::FeedSync>| results.iter().map(|r| r.outcome).collect::<Vec<_>>();
    let first = t.app.scanning.sync_feeds(&urls).await;
    assert_eq!(first[0].import.as_ref().unwrap().imported, 1);
    assert_eq!(first[1].import.as_ref().unwrap().imported, 1);
    assert!(first[2].error.as_deref().unwrap().contains("404"), "{:?}", first[2]);
    assert_eq!(outcomes(first), ["imported", "imported", "failed"]);
    assert_eq!(outcomes(t.app.scanning.sync_feeds(&urls).await), ["unchanged", "unchanged", "failed"]);
    assert_eq!(requests.load(Ordering::SeqCst), 2, "the second request was conditional");

    // The file changes: it is imported again.
    std::fs::write(&file, requests_advisory(true)).unwrap();
    let later = slipway_types::Clock::system().now() + std::time::Duration::from_secs(5);
    std::fs::File::options().write(true).open(&file).unwrap().set_modified(later).unwrap();
    let third = t.app.scanning.sync_feeds(&urls[..1]).await;
    assert_eq!(third[0].import.as_ref().unwrap().updated, 1);

    let status = t.app.scanning.feed_status().await.unwrap();
    assert_eq!((status.advisories, status.withdrawn), (2, 1));
    let missing = status.sources.iter().find(|s| s.url.ends_with("missing.zip")).unwrap();
    assert!(missing.last_error.is_some());
    assert!(status.sources.iter().filter(|s| !s.url.ends_with("missing.zip")).all(|s| s.last_error.is_none() && s.changed_at.is_some()));
    assert_eq!(status.revisions.len(), 3);
    serving.abort();
}

/// Issue 18 item 8: with no vulnerability feed loaded, a scanned version showed
/// "0 critical / 0 major / 0 minor", which reads as clean when nothing was checked. It says
/// no feed is loaded until one is; then the re-assessed counts show.
#[tokio::test]
async fn versions_say_when_no_feed_was_loaded() {
    let t = Backend::new().await.spawn().await;
    let (_, mut shop) = listing(&t, "olga").await;
    shop.public_scan_summary = true;
    let olga = t.app.catalog.viewer(t.app.db.identity().account_by_name("olga").await.unwrap().unwrap()).await.unwrap();
    t.app.catalog.save_listing(&olga, "acme", Some("shop"), &shop).await.unwrap();
    t.app.catalog.set_published(Actor::Operator, "acme", "shop", true).await.unwrap();
    push_image(&t, "acme/shop", "1.0", &[&python_app(&[("Jinja2", "3.1.2")])]).await;
    run_jobs(&t).await;
    let page = t.get("/products/acme/shop/versions").await.text().await.unwrap();
    assert!(page.contains("Scanned, no vulnerability feed loaded") && !page.contains("0 critical"), "{page}");

    t.app.scanning.import_feed(&[feed_dir()], "test feed").await.unwrap();
    run_jobs(&t).await;
    let page = t.get("/products/acme/shop/versions").await.text().await.unwrap();
    assert!(page.contains("1 major") && !page.contains("no vulnerability feed"), "{page}");
}

//! Issue 17, the publisher's security pages: a repository's tags by platform with size,
//! OS and counts; an image's layers with the build step of each, the components each
//! brought and their vulnerabilities (severity, CVSS, fixed version, a link to the CVE
//! entry); the results as CSV. Private to the publisher's members and staff.

use reqwest::{Method, StatusCode};
use slipway_auth::access::{OrgRole, SiteRole};
use slipway_scanner::fixtures::debian_python_image;
use slipway_test_support::{Backend, Caller, TestApp, Via};

use crate::scan::push;
use crate::scanning::{feed_dir, run_jobs};

const PASSWORD: &str = "security pages password";

async fn page(t: &TestApp, caller: &Caller, path: &str) -> (StatusCode, String) {
    let response = t.call(caller, Method::GET, path).send().await.unwrap();
    (response.status(), response.text().await.unwrap())
}

#[tokio::test]
async fn the_publisher_sees_tags_layers_components_and_vulnerabilities_and_downloads_them() {
    let t = Backend::new().await.spawn().await;
    t.app.scanning.import_feed(&[feed_dir()], "test feed").await.unwrap();
    for (name, role) in [("olga", SiteRole::User), ("vera", SiteRole::User), ("otto", SiteRole::User), ("mona", SiteRole::Moderator)] {
        t.app.auth.create_user(name, &format!("{name}@example.com"), PASSWORD, role).await.unwrap();
    }
    t.app.auth.create_organization("acme", "olga").await.unwrap();
    t.app.auth.set_member("acme", "vera", OrgRole::Viewer).await.unwrap();
    t.app.auth.create_organization("other", "otto").await.unwrap();
    // The fixture image with the history a build records: one step per layer, and steps
    // that made no layer (one of them hostile HTML).
    let mut image = debian_python_image();
    let mut config: serde_json::Value = serde_json::from_slice(&image.config).unwrap();
    config["history"] = serde_json::json!([
        {"created_by": "/bin/sh -c #(nop) ADD file:1234 in / "},
        {"created_by": "/bin/sh -c #(nop)  LABEL x=<script>alert(1)</script>", "empty_layer": true},
        {"created_by": "RUN /bin/sh -c pip install requests==2.28.1 PyYAML==5.3.1 # buildkit"},
        {"created_by": "CMD [\"python3\"]", "empty_layer": true},
    ]);
    image.config = serde_json::to_vec(&config).unwrap();
    let digest = push(&t, "acme/app", "1.0", &image, None).await;
    push(&t, "other/app", "1.0", &image, None).await;
    run_jobs(&t).await;
    let olga = t.caller("olga", PASSWORD, Via::Session).await;
    let vera = t.caller("vera", PASSWORD, Via::Session).await;
    let mona = t.caller("mona", PASSWORD, Via::Session).await;
    let otto = t.caller("otto", PASSWORD, Via::Session).await;

    let (status, repositories) = page(&t, &olga, "/publish/acme/security").await;
    assert_eq!(status, StatusCode::OK, "{repositories}");
    assert!(repositories.contains("acme/app") && !repositories.contains("other/app"), "{repositories}");
    let (status, tags) = page(&t, &olga, "/publish/acme/security?repository=acme/app").await;
    assert_eq!(status, StatusCode::OK);
    for shown in ["<code>1.0</code>", "linux/amd64", "Debian GNU/Linux 12 (bookworm)", "2 critical", "2 major", &digest] {
        assert!(tags.contains(shown), "{shown} in {tags}");
    }

    let image_page = format!("/publish/acme/security/image?repository=acme/app&digest={digest}");
    for caller in [&olga, &vera, &mona] {
        let (status, body) = page(&t, caller, &image_page).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }
    let (_, body) = page(&t, &vera, &image_page).await;
    // The layers in order, each with its step (Docker's nop prefix dropped); the steps
    // that made no layer are not layers.
    let base = body.find("ADD file:1234 in /").expect("the base layer's step");
    let app = body.find("RUN /bin/sh -c pip install requests==2.28.1").expect("the second layer's step");
    assert!(base < app, "from the base up");
    assert!(!body.contains("<script>alert(1)</script>") && !body.contains("LABEL x="), "empty steps are no layers");
    // The base layer's components and their vulnerabilities, linked to the CVE list.
    for shown in [
        "openssh-client",
        "https://www.cve.org/CVERecord?id=CVE-2024-6387",
        "1:9.2p1-2+deb12u3",
        "badge sev critical",
        "PyYAML",
        "CVSS:3.1/AV:N",
    ] {
        assert!(body.contains(shown), "{shown} in the image page");
    }
    assert!(body.find("openssh-client").unwrap() < app && body.find("PyYAML").unwrap() > app, "each component under its layer");

    let csv = format!("/publish/acme/security/export?repository=acme/app&digest={digest}&format=csv");
    let response = t.call(&olga, Method::GET, &csv).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    assert!(response.headers()["content-disposition"].to_str().unwrap().starts_with("attachment; filename=\"acme-app-"));
    let csv_text = response.text().await.unwrap();
    let mut lines = csv_text.split("\r\n");
    assert!(lines.next().unwrap().starts_with("image,platform,vulnerability,advisory,aliases,class,cvss_score"));
    let openssh = csv_text.lines().find(|l| l.contains("CVE-2024-6387")).expect("OpenSSH's line");
    assert!(openssh.contains(",critical,") && openssh.contains("openssh-client") && openssh.contains("1:9.2p1-2+deb12u3"), "{openssh}");
    assert_eq!(csv_text.lines().count(), 1 + 7, "a header and one line per finding");

    // SARIF and a CycloneDX SBOM, written by the scanner's own writers, valid by the
    // official schemas and the CycloneDX project's validator.
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for (format, content_type) in [("sarif", "application/sarif+json"), ("cyclonedx", "application/vnd.cyclonedx+json")] {
        let url = format!("/publish/acme/security/export?repository=acme/app&digest={digest}&format={format}");
        let response = t.call(&vera, Method::GET, &url).send().await.unwrap();
        assert_eq!((response.status(), response.headers()["content-type"].to_str().unwrap()), (StatusCode::OK, content_type));
        let document: serde_json::Value = response.json().await.unwrap();
        let path = dir.path().join(format);
        std::fs::write(&path, serde_json::to_vec(&document).unwrap()).unwrap();
        files.push((path, document));
    }
    let sarif = &files[0].1["runs"][0];
    let openssh = sarif["results"].as_array().unwrap().iter().find(|r| r["ruleId"] == "DEBIAN-CVE-2024-6387").expect("OpenSSH's result");
    assert_eq!(openssh["level"], "error");
    assert_eq!(sarif["properties"]["imageDigest"], digest.as_str());
    let bom = &files[1].1;
    assert!(bom["components"].as_array().unwrap().iter().any(|c| c["name"] == "openssh-client"), "{bom}");
    assert!(bom["vulnerabilities"].as_array().unwrap().iter().any(|v| v["id"] == "DEBIAN-CVE-2024-6387"));
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let python = std::env::var("SLIPWAY_TEST_PYTHON").map_or_else(|_| root.join("target/tools/venv/bin/python"), std::path::PathBuf::from);
    let output = std::process::Command::new(&python)
        .arg(root.join("tests/oracles/validate-reports.py"))
        .arg(root.join("tests/oracles/node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json"))
        .args([&files[0].0, &files[1].0])
        .output()
        .unwrap_or_else(|e| panic!("{}: {e} (run scripts/install-test-deps)", python.display()));
    assert!(output.status.success(), "{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));

    // Private: another publisher, anyone signed out, another organization's repository,
    // a digest not of the repository, a format that does not exist.
    for path in ["/publish/acme/security", "/publish/acme/security?repository=acme/app", image_page.as_str(), csv.as_str()] {
        assert_eq!(page(&t, &otto, path).await.0, StatusCode::NOT_FOUND, "{path}");
        let signed_out = t.request(Method::GET, path).send().await.unwrap();
        assert_eq!(signed_out.status(), StatusCode::SEE_OTHER, "{path}");
        assert!(signed_out.headers()["location"].to_str().unwrap().starts_with("/signin"), "{path}");
    }
    for path in [
        "/publish/acme/security?repository=other/app".to_owned(),
        format!("/publish/acme/security/image?repository=other/app&digest={digest}"),
        format!("/publish/acme/security/image?repository=acme/app&digest=sha256:{}", "0".repeat(64)),
        "/publish/acme/security?repository=acme".to_owned(),
    ] {
        assert_eq!(page(&t, &olga, &path).await.0, StatusCode::NOT_FOUND, "{path}");
    }
    let malformed = "/publish/acme/security/image?repository=acme/app&digest=sha256:0000";
    assert_eq!(page(&t, &olga, malformed).await.0, StatusCode::UNPROCESSABLE_ENTITY);
    let xml = format!("/publish/acme/security/export?repository=acme/app&digest={digest}&format=xml");
    assert_eq!(page(&t, &olga, &xml).await.0, StatusCode::UNPROCESSABLE_ENTITY);
}

//! `slipway scan`, the binary itself, against images pushed to a Slipway registry on
//! 127.0.0.1, an OCI layout and `docker save` archives, with the scanner's test feed.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

use reqwest::{Method, StatusCode};
use slipway_auth::access::{Policy, SiteRole};
use slipway_scanner::fixtures::{ImageFixture, LayerBuilder, debian_python_image, sha256};
use tokio::io::AsyncWriteExt;

use slipway_test_support::{Backend, TestApp};

const PASSWORD: &str = "a long enough password";

/// The advisories of the fixture image, most severe first.
const EXPECTED: [&str; 7] = [
    "DEBIAN-CVE-2024-6387",
    "GHSA-8q59-q68h-6hv4",
    "DEBIAN-CVE-2023-4039",
    "GHSA-j8r2-6x86-q33q",
    "DEBIAN-CVE-2011-3374",
    "DEBIAN-CVE-2023-5678",
    "DEBIAN-CVE-2023-5678",
];

fn feed() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../slipway-scanner/testdata/feed/good")
}

/// Runs `slipway scan ARGS` with its own data directory, `stdin` written to its input.
async fn scan(data_dir: &Path, args: &[&str], stdin: Option<&str>) -> Output {
    scan_with_env(data_dir, args, stdin, &[]).await
}

/// As [`scan`], with `env` set.
async fn scan_with_env(data_dir: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    slipway(data_dir, &[&["scan"], args].concat(), stdin, env).await
}

/// Runs `slipway ARGS` on `data_dir`, with `env` set; no other SLIPWAY_ variable of the
/// test's environment (those naming the suite's PostgreSQL and S3) reaches the command.
async fn slipway(data_dir: &Path, args: &[&str], stdin: Option<&str>, env: &[(&str, &str)]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_slipway"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("SLIPWAY_") {
            command.env_remove(name);
        }
    }
    let mut child = command
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .envs(env.iter().copied())
        .env("NO_COLOR", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run slipway");
    let mut input = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).await.unwrap();
    }
    drop(input);
    child.wait_with_output().await.unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn json(output: &Output) -> serde_json::Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}\n{}", String::from_utf8_lossy(&output.stdout), stderr(output)))
}

fn ids(report: &serde_json::Value) -> Vec<String> {
    report["vulnerabilities"].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_owned()).collect()
}

fn authorized(request: reqwest::RequestBuilder, bearer: Option<&str>) -> reqwest::RequestBuilder {
    match bearer {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// Pushes the fixture's config and layers.
async fn push_blobs(t: &TestApp, repo: &str, image: &ImageFixture, bearer: Option<&str>) {
    let blobs = std::iter::once(&image.config).chain(image.layers.iter().map(|(_, blob)| blob));
    for blob in blobs {
        let start = authorized(t.request(Method::POST, &format!("/v2/{repo}/blobs/uploads/")), bearer).send().await.unwrap();
        assert_eq!(start.status(), StatusCode::ACCEPTED);
        let location = start.headers()["location"].to_str().unwrap().to_owned();
        let put = authorized(t.request(Method::PUT, &format!("{location}?digest={}", sha256(blob))), bearer)
            .body(blob.clone())
            .send()
            .await
            .unwrap();
        assert_eq!(put.status(), StatusCode::CREATED);
    }
}

/// PUTs a manifest of `media_type` under `reference`; returns its digest.
async fn push_manifest(t: &TestApp, repo: &str, reference: &str, media_type: &str, manifest: &[u8], bearer: Option<&str>) -> String {
    let put = authorized(t.request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}")), bearer)
        .header("content-type", media_type)
        .body(manifest.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), StatusCode::CREATED, "{}", put.text().await.unwrap_or_default());
    sha256(manifest).to_string()
}

/// Pushes the fixture as an OCI image tagged `tag`, with a bearer token if given.
pub(crate) async fn push(t: &TestApp, repo: &str, tag: &str, image: &ImageFixture, bearer: Option<&str>) -> String {
    push_blobs(t, repo, image, bearer).await;
    push_manifest(t, repo, tag, "application/vnd.oci.image.manifest.v1+json", &image.manifest(), bearer).await
}

fn target(t: &TestApp, repo: &str) -> String {
    format!("{}/{repo}", t.base.trim_start_matches("http://"))
}

#[tokio::test]
async fn registry_image_in_every_format() {
    let t = TestApp::spawn().await;
    let image = debian_python_image();
    let digest = push(&t, "acme/app", "1.0", &image, None).await;
    let data = tempfile::tempdir().unwrap();
    let feed = feed();
    let feed = feed.to_str().unwrap();
    let reference = target(&t, "acme/app:1.0");

    let output = scan(data.path(), &[&reference, "--feed", feed, "--format", "json"], None).await;
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let report = json(&output);
    assert_eq!(ids(&report), EXPECTED);
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["image"]["name"], reference);
    assert_eq!(report["image"]["digest"], digest);
    assert_eq!(report["image"]["platform"], "linux/amd64");
    assert_eq!(report["osv_ecosystem"], "Debian:12");
    assert_eq!(report["complete"], true);
    assert_eq!(
        report["summary"],
        serde_json::json!({"critical": 2, "major": 2, "minor": 3, "unrated": 0, "packages": 9, "unchecked_packages": 0})
    );
    let openssh = &report["vulnerabilities"][0];
    assert_eq!(openssh["package_name"], "openssh-client");
    assert_eq!(openssh["fixed_version"], "1:9.2p1-2+deb12u3");
    assert_eq!(openssh["severity"]["class"], "critical");
    assert_eq!(openssh["severity"]["fix_within_hours"], 72);
    assert_eq!(openssh["severity"]["band"], "high");
    assert_eq!(openssh["severity"]["source"], "cvss_v3.1");
    assert!(openssh["severity"]["vector"].as_str().unwrap().starts_with("CVSS:3.1/"));
    let layers = report["layers"].as_array().unwrap();
    assert!(layers.iter().all(|l| l["state"] == "analyzed"), "{layers:?}");

    // The second scan takes every layer from the cache in the data directory.
    let again = json(&scan(data.path(), &[&reference, "--feed", feed, "--format", "json"], None).await);
    assert!(again["layers"].as_array().unwrap().iter().all(|l| l["state"] == "cached"));
    assert_eq!(ids(&again), EXPECTED);

    let sarif = json(&scan(data.path(), &[&reference, "--feed", feed, "--format", "sarif"], None).await);
    assert_eq!(sarif["version"], "2.1.0");
    let run = &sarif["runs"][0];
    assert_eq!(run["tool"]["driver"]["name"], "slipway");
    assert_eq!(run["tool"]["driver"]["rules"].as_array().unwrap().len(), 6, "one rule per advisory");
    let results = run["results"].as_array().unwrap();
    let levels: Vec<&str> = results.iter().map(|r| r["level"].as_str().unwrap()).collect();
    assert_eq!(levels, ["error", "error", "warning", "warning", "note", "note", "note"]);
    assert_eq!(results[0]["locations"][0]["physicalLocation"]["artifactLocation"]["uri"], "var/lib/dpkg/status");

    let bom = json(&scan(data.path(), &[&reference, "--feed", feed, "--format", "cyclonedx"], None).await);
    assert_eq!(bom["bomFormat"], "CycloneDX");
    assert_eq!(bom["specVersion"], "1.6");
    assert_eq!(bom["components"].as_array().unwrap().len(), 10, "the OS and nine packages");
    assert_eq!(bom["vulnerabilities"].as_array().unwrap().len(), 6);
    assert!(bom["serialNumber"].as_str().unwrap().starts_with("urn:uuid:"));

    let table = scan(data.path(), &[&reference, "--feed", feed], None).await;
    let text = String::from_utf8(table.stdout).unwrap();
    assert!(text.contains("OS:       Debian GNU/Linux 12 (bookworm) (advisories: Debian:12)"), "{text}");
    assert!(text.contains("CVE-2024-6387 (DEBIAN-CVE-2024-6387)"), "{text}");
    assert!(text.contains("7 vulnerabilities: 2 Critical (fix within 72 h), 2 Major (fix within 7 days), 3 Minor, 0 unrated"), "{text}");
    assert!(!text.contains('\x1b'), "no colors off a terminal");

    let output_file = data.path().join("report.json");
    let written =
        scan(data.path(), &[&reference, "--feed", feed, "--format", "json", "--output", output_file.to_str().unwrap()], None).await;
    assert!(written.stdout.is_empty());
    let from_file: serde_json::Value = serde_json::from_slice(&std::fs::read(&output_file).unwrap()).unwrap();
    assert_eq!(ids(&from_file), EXPECTED);
}

/// Without --feed, a scan matches against the feed `slipway feed import` stored in the
/// data directory's database, and finds what the same files given with --feed find.
#[tokio::test]
async fn the_stored_feed_is_used_without_feed_files() {
    let t = TestApp::spawn().await;
    push(&t, "acme/app", "1.0", &debian_python_image(), None).await;
    let data = tempfile::tempdir().unwrap();
    let reference = target(&t, "acme/app:1.0");

    // An empty database is refused like a missing one: no feed, no clean bill of health.
    let status = slipway(data.path(), &["feed", "status"], None, &[]).await;
    assert!(status.status.success(), "{}", stderr(&status));
    let empty = scan(data.path(), &[&reference, "--format", "json"], None).await;
    assert_eq!(empty.status.code(), Some(3));
    assert!(stderr(&empty).contains("the database holds no advisories"), "{}", stderr(&empty));

    let import = slipway(data.path(), &["feed", "import", feed().to_str().unwrap()], None, &[]).await;
    assert!(import.status.success(), "{}", stderr(&import));
    let stored = scan(data.path(), &[&reference, "--format", "json"], None).await;
    assert_eq!(stored.status.code(), Some(0), "{}", stderr(&stored));
    assert_eq!(ids(&json(&stored)), EXPECTED);
}

#[tokio::test]
async fn exit_codes_follow_the_selected_severities() {
    let t = TestApp::spawn().await;
    push(&t, "acme/app", "1.0", &debian_python_image(), None).await;
    let data = tempfile::tempdir().unwrap();
    let feed = feed();
    let reference = target(&t, "acme/app:1.0");
    let run = |extra: &[&str]| {
        let mut args: Vec<String> = vec![reference.clone(), "--feed".into(), feed.display().to_string(), "--format".into(), "json".into()];
        args.extend(extra.iter().map(|a| a.to_string()));
        let data = data.path().to_owned();
        async move { scan(&data, &args.iter().map(String::as_str).collect::<Vec<_>>(), None).await }
    };

    let found = run(&["--exit-code", "5"]).await;
    assert_eq!(found.status.code(), Some(5));
    assert_eq!(ids(&json(&found)).len(), 7, "the report is written all the same");
    let fixed_minor = run(&["--exit-code", "5", "--class", "minor", "--ignore-unfixed"]).await;
    assert_eq!(fixed_minor.status.code(), Some(5));
    assert_eq!(ids(&json(&fixed_minor)), ["DEBIAN-CVE-2023-5678", "DEBIAN-CVE-2023-5678"]);
    let band = run(&["--exit-code", "1", "--band", "critical"]).await;
    assert_eq!(band.status.code(), Some(1));
    assert_eq!(ids(&json(&band)), ["GHSA-8q59-q68h-6hv4"]);
    let none = run(&["--exit-code", "5", "--class", "unrated"]).await;
    assert_eq!(none.status.code(), Some(0));
    assert_eq!(json(&none)["vulnerabilities"], serde_json::json!([]));
    assert_eq!(run(&[]).await.status.code(), Some(0), "without --exit-code findings do not fail");

    // --severity as trivy means it: CVSS bands, any case, selected from the unfiltered
    // report by each finding's band (trivy's UNKNOWN: unrated, or a score of 0.0).
    let all = json(&found);
    let with_bands = |bands: &[&str]| -> Vec<String> {
        let findings = all["vulnerabilities"].as_array().unwrap();
        let band = |f: &serde_json::Value| f["severity"]["band"].as_str().unwrap_or("unrated").to_owned();
        findings.iter().filter(|f| bands.contains(&band(f).as_str())).map(|f| f["id"].as_str().unwrap().to_owned()).collect()
    };
    for (flag, bands) in [
        ("HIGH,CRITICAL", &["high", "critical"][..]),
        ("critical,High", &["high", "critical"][..]),
        ("MEDIUM", &["medium"][..]),
        ("LOW,UNKNOWN", &["low", "none", "unrated"][..]),
    ] {
        let selected = run(&["--exit-code", "1", "--severity", flag]).await;
        let expected = with_bands(bands);
        assert_eq!(selected.status.code(), Some(if expected.is_empty() { 0 } else { 1 }), "{flag}");
        assert_eq!(ids(&json(&selected)), expected, "{flag}");
    }
    for band in ["critical", "high", "medium", "low"] {
        assert!(!with_bands(&[band]).is_empty(), "the fixture has a finding rated {band}");
    }
    // The store's classes: critical is CVSS 7.0 and above, HIGH and CRITICAL together.
    let class = run(&["--class", "critical"]).await;
    assert_eq!(ids(&json(&class)), with_bands(&["high", "critical"]));
    // The old spellings still work, saying so; lowercase critical alone is trivy's now.
    let old = run(&["--severity", "major,critical"]).await;
    assert_eq!(old.status.code(), Some(0), "{}", stderr(&old));
    assert_eq!(ids(&json(&old)), ids(&json(&run(&["--class", "major,critical"]).await)));
    assert!(stderr(&old).contains("use --class major,critical"), "{}", stderr(&old));
    let lowercase = run(&["--severity", "critical"]).await;
    assert_eq!(ids(&json(&lowercase)), ["GHSA-8q59-q68h-6hv4"]);
    assert!(stderr(&lowercase).contains("now means CVSS 9.0-10.0"), "{}", stderr(&lowercase));
    let quiet = run(&["--severity", "critical", "--quiet"]).await;
    assert_eq!(stderr(&quiet), "", "--quiet leaves standard error to errors");
    let mixed = run(&["--severity", "HIGH,minor"]).await;
    assert_eq!(mixed.status.code(), Some(2));
    assert!(stderr(&mixed).contains("mixes store classes"), "{}", stderr(&mixed));
    let unknown = run(&["--severity", "SEVERE"]).await;
    assert_eq!(unknown.status.code(), Some(2));
    assert!(stderr(&unknown).contains("is not a severity"), "{}", stderr(&unknown));

    // Errors have statuses of their own.
    let reserved = run(&["--exit-code", "3"]).await;
    assert_eq!(reserved.status.code(), Some(2));
    assert!(stderr(&reserved).contains("reserved"), "{}", stderr(&reserved));
    for conflicting in [
        &["--severity", "HIGH", "--band", "high"][..],
        &["--class", "major", "--band", "high"],
        &["--severity", "HIGH", "--class", "major"],
    ] {
        assert_eq!(run(conflicting).await.status.code(), Some(2), "{conflicting:?}");
    }
    let missing = scan(data.path(), &[&target(&t, "acme/app:2.0"), "--feed", feed.to_str().unwrap()], None).await;
    assert_eq!(missing.status.code(), Some(3));
    assert!(stderr(&missing).contains("manifest acme/app:2.0 not found"), "{}", stderr(&missing));
    let no_feed = scan(data.path(), &[&reference], None).await;
    assert_eq!(no_feed.status.code(), Some(3));
    assert!(stderr(&no_feed).contains("no advisory feed: there is no database"), "{}", stderr(&no_feed));
    assert!(!data.path().join("slipway.db").exists(), "a scan creates no database");
}

/// Names without a registry host are read as docker reads them, on Docker Hub or on the
/// registry standing in for it (here the test's, as `--default-registry` and through
/// SLIPWAY_SCAN_DEFAULT_REGISTRY): `app:1.0` is `library/app:1.0` there.
#[tokio::test]
async fn short_names_resolve_on_the_default_registry() {
    let t = TestApp::spawn().await;
    push(&t, "library/app", "1.0", &debian_python_image(), None).await;
    push(&t, "acme/app", "1.0", &debian_python_image(), None).await;
    let data = tempfile::tempdir().unwrap();
    let feed = feed();
    let host = t.base.trim_start_matches("http://").to_owned();
    for name in ["app:1.0", "library/app:1.0", "acme/app:1.0"] {
        let flag =
            scan(data.path(), &[name, "--default-registry", &host, "--feed", feed.to_str().unwrap(), "--format", "json"], None).await;
        assert_eq!(flag.status.code(), Some(0), "{name}: {}", stderr(&flag));
        let report = json(&flag);
        assert_eq!(ids(&report), EXPECTED, "{name}");
        assert_eq!(report["image"]["name"], name, "named as given, as trivy names it");
        let env = [("SLIPWAY_SCAN_DEFAULT_REGISTRY", host.as_str())];
        let by_env = scan_with_env(data.path(), &[name, "--feed", feed.to_str().unwrap(), "--format", "json"], None, &env).await;
        assert_eq!(ids(&json(&by_env)), EXPECTED, "{name} through the environment");
    }
    let missing = scan(data.path(), &["other:1.0", "--default-registry", &host, "--feed", feed.to_str().unwrap()], None).await;
    assert_eq!(missing.status.code(), Some(3));
    assert!(stderr(&missing).contains("library/other"), "{}", stderr(&missing));
}

#[tokio::test]
async fn oci_layouts_and_docker_archives() {
    let image = debian_python_image();
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    image.write_oci_layout(&layout, "1.0").unwrap();
    let archive = dir.path().join("image.tar");
    image.write_docker_archive(&archive, "acme/app:1.0", false).unwrap();
    let feed = feed();
    let feed = feed.to_str().unwrap();

    let oci_target = format!("oci:{}:1.0", layout.display());
    let oci = scan(dir.path(), &[&oci_target, "--feed", feed, "--format", "json", "--no-cache"], None).await;
    assert_eq!(oci.status.code(), Some(0), "{}", stderr(&oci));
    assert_eq!(ids(&json(&oci)), EXPECTED);
    let archive_target = format!("docker-archive:{}", archive.display());
    let docker = scan(dir.path(), &[&archive_target, "--feed", feed, "--format", "json", "--no-cache"], None).await;
    assert_eq!(docker.status.code(), Some(0), "{}", stderr(&docker));
    let report = json(&docker);
    assert_eq!(ids(&report), EXPECTED);
    assert_eq!(report["image"]["digest"], serde_json::Value::Null);
    assert_eq!(report["image"]["config_digest"], sha256(&image.config).to_string());

    // A layer whose bytes do not match its digest is reported and the scan goes on.
    let python = sha256(&image.layers[1].1);
    std::fs::write(layout.join("blobs/sha256").join(python.hex()), b"tampered").unwrap();
    let tampered =
        scan(dir.path(), &[&oci_target, "--feed", feed, "--format", "json", "--no-cache", "--exit-code", "1", "--severity", "minor"], None)
            .await;
    assert_eq!(tampered.status.code(), Some(1), "findings take precedence over incompleteness");
    let incomplete = scan(dir.path(), &[&oci_target, "--feed", feed, "--format", "json", "--no-cache"], None).await;
    assert_eq!(incomplete.status.code(), Some(4));
    assert!(stderr(&incomplete).contains(&format!("warning: layer {python} was not scanned: digest mismatch")), "{}", stderr(&incomplete));
    let report = json(&incomplete);
    assert_eq!(report["complete"], false);
    assert_eq!(report["layers"][1]["state"], "failed");
    assert!(!ids(&report).iter().any(|id| id.starts_with("GHSA-")), "the Python layer was left out");

    let wrong_tag = scan(dir.path(), &[&format!("oci:{}:2.0", layout.display()), "--feed", feed], None).await;
    assert_eq!(wrong_tag.status.code(), Some(3));
    assert!(stderr(&wrong_tag).contains("no image tagged \"2.0\""), "{}", stderr(&wrong_tag));
}

/// Issue 14, item 11: the table printed image-controlled strings raw, so an os-release
/// whose name held escape sequences cleared the terminal and showed a fake "No
/// vulnerabilities found.". Every control character now reaches the terminal written out.
#[tokio::test]
async fn the_table_writes_out_control_characters_from_the_image() {
    let os_release = "PRETTY_NAME=\"\x1b[2J\x1b[HNo vulnerabilities found.\x1b[8m\u{9b}1A\r\x07\x7f\"\nID=debian\nVERSION_ID=\"12\"\n";
    let status = "Package: openssh-client\x1b]0;pwned\x07\x08\x08\nStatus: install ok installed\nArchitecture: amd64\nSource: openssh\nVersion: 1:9.2p1-2+deb12u2\n";
    let layer = LayerBuilder::default().file("etc/os-release", os_release.as_bytes()).file("var/lib/dpkg/status", status.as_bytes()).tar();
    let image = ImageFixture::new(vec![layer]);
    let dir = tempfile::tempdir().unwrap();
    let layout = dir.path().join("layout");
    image.write_oci_layout(&layout, "1.0").unwrap();
    let feed = feed();
    let target = format!("oci:{}:1.0", layout.display());

    let table = scan(dir.path(), &[&target, "--feed", feed.to_str().unwrap(), "--no-cache"], None).await;
    assert_eq!(table.status.code(), Some(0), "{}", stderr(&table));
    let text = String::from_utf8(table.stdout.clone()).unwrap();
    let raw: Vec<char> = text.chars().filter(|c| c.is_control() && *c != '\n').collect();
    assert!(raw.is_empty(), "raw control characters {raw:?} in\n{text}");
    assert!(
        text.contains(r"OS:       \x1b[2J\x1b[HNo vulnerabilities found.\x1b[8m\u{9b}1A\x0d\x07\x7f (advisories: Debian:12)"),
        "{text}"
    );
    assert!(text.contains(r"openssh-client\x1b]0;pwned\x07\x08\x08"), "{text}");
    assert!(text.contains("DEBIAN-CVE-2024-6387"), "{text}");
    // JSON keeps the strings as they are, escaped by the serializer.
    let report = json(&scan(dir.path(), &[&target, "--feed", feed.to_str().unwrap(), "--no-cache", "--format", "json"], None).await);
    assert_eq!(report["packages"][0]["name"], "openssh-client\x1b]0;pwned\x07\x08\x08");
}

#[tokio::test]
async fn token_flow_anonymous_and_with_credentials() {
    let t = Backend::enforced().await.spawn().await;
    let auth = &t.app.auth;
    auth.create_user("maintainer", "maintainer@example.com", PASSWORD, SiteRole::User).await.unwrap();
    auth.create_organization("acme", "maintainer").await.unwrap();
    auth.set_policy("acme/public", &Policy::Public).await.unwrap();
    auth.set_policy("acme/members", &Policy::LoggedIn).await.unwrap();
    let token = t
        .request(Method::GET, "/auth/token")
        .query(&[("service", "slipway"), ("scope", "repository:acme/public:pull,push"), ("scope", "repository:acme/members:pull,push")])
        .basic_auth("maintainer", Some(PASSWORD))
        .send()
        .await
        .unwrap();
    let token: serde_json::Value = token.json().await.unwrap();
    let bearer = token["token"].as_str().unwrap();
    let image = debian_python_image();
    push(&t, "acme/public", "1.0", &image, Some(bearer)).await;
    push(&t, "acme/members", "1.0", &image, Some(bearer)).await;

    let data = tempfile::tempdir().unwrap();
    let feed = feed();
    let feed = feed.to_str().unwrap();
    let public = scan(data.path(), &[&target(&t, "acme/public:1.0"), "--feed", feed, "--format", "json"], None).await;
    assert_eq!(public.status.code(), Some(0), "{}", stderr(&public));
    assert_eq!(ids(&json(&public)), EXPECTED);

    let anonymous = scan(data.path(), &[&target(&t, "acme/members:1.0"), "--feed", feed], None).await;
    assert_eq!(anonymous.status.code(), Some(3));
    assert!(stderr(&anonymous).contains("access denied"), "{}", stderr(&anonymous));
    let signed_in = scan(
        data.path(),
        &[&target(&t, "acme/members:1.0"), "--feed", feed, "--format", "json", "--username", "maintainer", "--password-stdin"],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    assert_eq!(signed_in.status.code(), Some(0), "{}", stderr(&signed_in));
    assert_eq!(ids(&json(&signed_in)), EXPECTED);
    // The password can come from the environment too.
    let from_env = scan_with_env(
        data.path(),
        &[&target(&t, "acme/members:1.0"), "--feed", feed, "--format", "json"],
        None,
        &[("SLIPWAY_SCAN_USERNAME", "maintainer"), ("SLIPWAY_SCAN_PASSWORD", PASSWORD)],
    )
    .await;
    assert_eq!(from_env.status.code(), Some(0), "{}", stderr(&from_env));
    assert_eq!(ids(&json(&from_env)), EXPECTED);
    let wrong = scan(
        data.path(),
        &[&target(&t, "acme/members:1.0"), "--feed", feed, "--username", "maintainer", "--password-stdin"],
        Some("not the password"),
    )
    .await;
    assert_eq!(wrong.status.code(), Some(3));
    assert!(stderr(&wrong).contains("refused the credentials"), "{}", stderr(&wrong));
}

#[tokio::test]
async fn manifest_lists_pick_the_platform_asked_for() {
    let t = TestApp::spawn().await;
    let repo = "acme/multi";
    // linux/amd64: the Debian image as an OCI manifest, pushed by digest.
    let debian = debian_python_image();
    push_blobs(&t, repo, &debian, None).await;
    let debian_manifest = debian.manifest();
    let debian_digest = sha256(&debian_manifest).to_string();
    push_manifest(&t, repo, &debian_digest, "application/vnd.oci.image.manifest.v1+json", &debian_manifest, None).await;
    // linux/arm64/v8: Alpine with a vulnerable busybox, as a Docker schema 2 manifest.
    let mut alpine = ImageFixture::new(vec![
        LayerBuilder::default()
            .file("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\nPRETTY_NAME=\"Alpine Linux v3.19\"\n")
            .file("lib/apk/db/installed", b"P:busybox\nV:1.36.1-r15\nA:aarch64\no:busybox\n\n")
            .tar(),
    ]);
    let diff_id = sha256(&alpine.layers[0].0).to_string();
    alpine.config = serde_json::to_vec(&serde_json::json!({
        "architecture": "arm64", "variant": "v8", "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
    }))
    .unwrap();
    push_blobs(&t, repo, &alpine, None).await;
    let alpine_manifest = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json", "digest": sha256(&alpine.config).to_string(), "size": alpine.config.len()},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip", "digest": sha256(&alpine.layers[0].1).to_string(), "size": alpine.layers[0].1.len()}],
    }))
    .unwrap();
    let alpine_digest = sha256(&alpine_manifest).to_string();
    push_manifest(&t, repo, &alpine_digest, "application/vnd.docker.distribution.manifest.v2+json", &alpine_manifest, None).await;
    let list = serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
        "manifests": [
            {"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": debian_digest, "size": debian_manifest.len(),
             "platform": {"architecture": "amd64", "os": "linux"}},
            {"mediaType": "application/vnd.docker.distribution.manifest.v2+json", "digest": alpine_digest, "size": alpine_manifest.len(),
             "platform": {"architecture": "arm64", "os": "linux", "variant": "v8"}},
        ],
    }))
    .unwrap();
    push_manifest(&t, repo, "1.0", "application/vnd.docker.distribution.manifest.list.v2+json", &list, None).await;

    let data = tempfile::tempdir().unwrap();
    let feed = feed();
    let reference = target(&t, "acme/multi:1.0");
    let arm =
        scan(data.path(), &[&reference, "--feed", feed.to_str().unwrap(), "--format", "json", "--platform", "linux/arm64"], None).await;
    assert_eq!(arm.status.code(), Some(0), "{}", stderr(&arm));
    let report = json(&arm);
    assert_eq!(report["image"]["digest"], alpine_digest);
    assert_eq!(report["image"]["platform"], "linux/arm64/v8");
    assert_eq!(report["osv_ecosystem"], "Alpine:v3.19");
    assert_eq!(ids(&report), ["ALPINE-CVE-2023-42366"]);
    assert_eq!(report["vulnerabilities"][0]["fixed_version"], "1.36.1-r16");

    let amd64 = json(
        &scan(data.path(), &[&reference, "--feed", feed.to_str().unwrap(), "--format", "json", "--platform", "linux/amd64"], None).await,
    );
    assert_eq!(amd64["image"]["digest"], debian_digest);
    assert_eq!(ids(&amd64), EXPECTED);

    let missing = scan(data.path(), &[&reference, "--feed", feed.to_str().unwrap(), "--platform", "linux/s390x"], None).await;
    assert_eq!(missing.status.code(), Some(3));
    assert!(stderr(&missing).contains("(it has linux/amd64, linux/arm64/v8)"), "{}", stderr(&missing));
}

/// `--timeout` bounds the whole scan, as trivy's does: a registry that accepts the
/// connection and never answers ends the scan with status 3 at the limit.
#[tokio::test]
async fn a_registry_that_never_answers_times_out() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = silent.local_addr().unwrap();
    let held = tokio::spawn(async move {
        let mut connections = Vec::new();
        while let Ok((socket, _)) = silent.accept().await {
            connections.push(socket);
        }
    });
    let data = tempfile::tempdir().unwrap();
    let feed = feed();
    let output = scan(data.path(), &[&format!("{address}/acme/app:1.0"), "--feed", feed.to_str().unwrap(), "--timeout", "1s"], None).await;
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(stderr(&output).contains("did not finish within --timeout 1s"), "{}", stderr(&output));
    held.abort();
}

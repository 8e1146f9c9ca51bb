//! The server's own defences (issue 14): connection limits (12), private data-directory
//! modes (18), who may read /metrics (19), and cookies and HSTS behind https (20).

use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use futures::StreamExt as _;
use reqwest::{Method, StatusCode};
use slipway::config::{Config, Secret};
use slipway_auth::access::SiteRole;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use slipway_test_support::{Backend, TestApp};

const PASSWORD: &str = "hardening test password";

async fn with_http(adjust: impl FnOnce(&mut Config)) -> TestApp {
    Backend::with(adjust).await.spawn().await
}

async fn connect(t: &TestApp) -> TcpStream {
    TcpStream::connect(t.base.trim_start_matches("http://")).await.expect("connect")
}

/// Reads until the server closes the connection; returns what it sent and when it closed,
/// or `None` if it still held the connection after `patience`.
async fn until_closed(stream: &mut TcpStream, patience: Duration) -> Option<(String, Duration)> {
    let started = Instant::now();
    let mut received = Vec::new();
    let read = tokio::time::timeout(patience, async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => received.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    read.ok().map(|()| (String::from_utf8_lossy(&received).into_owned(), started.elapsed()))
}

/// 5,000 half-sent heads were all held after 40 s: a head begun must be complete within
/// `http.header_read_timeout_secs`.
#[tokio::test]
async fn a_half_sent_head_is_closed_after_the_header_timeout() {
    let t = with_http(|c| {
        c.http.header_read_timeout_secs = 1;
        c.http.idle_timeout_secs = 30;
    })
    .await;
    let mut stream = connect(&t).await;
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ").await.unwrap();
    let (_, after) = until_closed(&mut stream, Duration::from_secs(5)).await.expect("a half-sent head is not held");
    assert!(after >= Duration::from_millis(800) && after < Duration::from_secs(3), "closed after {after:?}");
}

/// A connection that sends nothing, before its first request or between requests, is
/// closed after `http.idle_timeout_secs`.
#[tokio::test]
async fn silent_connections_are_closed_after_the_idle_timeout() {
    let t = with_http(|c| {
        c.http.header_read_timeout_secs = 30;
        c.http.idle_timeout_secs = 1;
    })
    .await;
    let mut silent = connect(&t).await;
    let (_, after) = until_closed(&mut silent, Duration::from_secs(5)).await.expect("a silent connection is not held");
    assert!(after < Duration::from_secs(3), "closed after {after:?}");

    let mut kept_alive = connect(&t).await;
    kept_alive.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    let (response, after) = until_closed(&mut kept_alive, Duration::from_secs(5)).await.expect("an idle keep-alive connection is not held");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(after >= Duration::from_millis(800) && after < Duration::from_secs(3), "closed after {after:?}");
}

/// Beyond `http.max_connections`, connections are answered 503 and closed at once, while
/// the open ones keep working; a closed one frees its place.
#[tokio::test]
async fn connections_beyond_the_cap_are_refused_while_open_ones_work() {
    let t = with_http(|c| c.http.max_connections = 2).await;
    let mut first = connect(&t).await;
    let _second = connect(&t).await;
    let mut third = connect(&t).await;
    let (refusal, after) = until_closed(&mut third, Duration::from_secs(2)).await.expect("the third connection is closed at once");
    assert!(refusal.starts_with("HTTP/1.1 503"), "{refusal:?}");
    assert!(after < Duration::from_secs(1), "refused after {after:?}");

    first.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
    let (response, _) = until_closed(&mut first, Duration::from_secs(5)).await.expect("answered");
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    drop(first);

    // The first connection's place is free again once the server has seen it close.
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mut again = connect(&t).await;
        again.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").await.unwrap();
        let (response, _) = until_closed(&mut again, Duration::from_secs(5)).await.expect("answered");
        if response.starts_with("HTTP/1.1 200") {
            break;
        }
        assert!(Instant::now() < deadline, "the freed place was not reused: {response}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The body limit is silence, not a total: an upload trickling bytes for longer than every
/// timeout succeeds, and one that stops sending is ended.
#[tokio::test]
async fn slow_uploads_work_while_bytes_flow_and_stalled_ones_end() {
    let t = with_http(|c| {
        c.http.header_read_timeout_secs = 1;
        c.http.idle_timeout_secs = 1;
        c.http.body_timeout_secs = 1;
    })
    .await;
    let chunks: Vec<Vec<u8>> = (0..12).map(|i| vec![i as u8; 1000]).collect();
    let content: Vec<u8> = chunks.concat();
    let digest = slipway_oci::Digest::of(slipway_oci::Algorithm::Sha256, &content);
    let start = t.request(Method::POST, "/v2/slow/upload/blobs/uploads/").send().await.unwrap();
    assert_eq!(start.status(), StatusCode::ACCEPTED);
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let trickle = futures::stream::iter(chunks).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(250)).await;
        Ok::<_, std::io::Error>(chunk)
    });
    let started = Instant::now();
    let put = t
        .request(Method::PUT, &format!("{location}?digest={digest}"))
        .header("content-length", content.len())
        .body(reqwest::Body::wrap_stream(trickle))
        .send()
        .await
        .expect("the slow upload is answered");
    assert_eq!(put.status(), StatusCode::CREATED, "{}", put.text().await.unwrap_or_default());
    assert!(started.elapsed() > Duration::from_secs(2), "the upload took longer than every timeout");

    let start = t.request(Method::POST, "/v2/slow/upload/blobs/uploads/").send().await.unwrap();
    let location = start.headers()["location"].to_str().unwrap().to_owned();
    let mut stalled = connect(&t).await;
    let head = format!("PUT {location}?digest={digest} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\n\r\n", content.len());
    stalled.write_all(head.as_bytes()).await.unwrap();
    stalled.write_all(&content[..1000]).await.unwrap();
    let (_, after) = until_closed(&mut stalled, Duration::from_secs(6)).await.expect("a stalled upload is ended");
    assert!(after < Duration::from_secs(4), "ended after {after:?}");
}

/// The data directory was created 0755 and `slipway.db` 0644: any local user could read
/// password hashes and the mail queue. Now 0700 and 0600, whatever the umask.
#[tokio::test]
async fn a_new_data_directory_and_database_are_private() {
    // The default database, a SQLite file in the data directory: the case with files to
    // protect (this process keeps its umask, unlike the binary).
    let parent = tempfile::tempdir().unwrap();
    let data_dir = parent.path().join("data");
    let mut config = Config { data_dir: data_dir.clone(), ..Config::default() };
    config.storage.s3 = None;
    let app = slipway::App::build(config).await.expect("builds");
    assert_eq!(mode(&data_dir), 0o700);
    // One write, so the -wal file exists too.
    app.auth.create_user("private", "private@example.com", PASSWORD, SiteRole::User).await.unwrap();
    for file in ["slipway.db", "slipway.db-wal", "slipway.db-shm"] {
        assert_eq!(mode(&data_dir.join(file)), 0o600, "{file}");
    }
    app.db.close().await;
}

fn mode(path: &std::path::Path) -> u32 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
}

/// The binary sets umask 077 for the commands that keep data: nothing it creates under
/// the data directory (blob store, keys, database) is open to other local users.
#[test]
fn the_binary_creates_nothing_others_can_read() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().join("data");
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"));
    command.current_dir(dir.path()).arg("--data-dir").arg(&data_dir).arg("fsck");
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SLIPWAY_")) {
        command.env_remove(name);
    }
    let output = command.output().expect("slipway runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let mut open = Vec::new();
    let mut stack = vec![data_dir];
    while let Some(path) = stack.pop() {
        if mode(&path) & 0o077 != 0 {
            open.push(format!("{} {:o}", path.display(), mode(&path)));
        }
        if path.is_dir() {
            stack.extend(std::fs::read_dir(&path).unwrap().map(|entry| entry.unwrap().path()));
        }
    }
    assert!(open.is_empty(), "open to others: {open:?}");
}

/// `/metrics` was public. Unconfigured, it answers loopback peers only, not requests a
/// proxy forwarded.
#[tokio::test]
async fn metrics_unconfigured_answer_loopback_peers_only() {
    let t = TestApp::spawn().await;
    assert_eq!(t.get("/metrics").await.status(), StatusCode::OK);
    for header in ["x-forwarded-for", "forwarded", "x-real-ip"] {
        let forwarded = t.request(Method::GET, "/metrics").header(header, "203.0.113.9").send().await.unwrap();
        assert_eq!(forwarded.status(), StatusCode::FORBIDDEN, "{header}");
    }
}

#[tokio::test]
async fn metrics_token_is_required_when_set_and_never_printed() {
    let t = with_http(|c| c.metrics.token = Some(Secret::new("scrape-secret-1234"))).await;
    assert_eq!(t.get("/metrics").await.status(), StatusCode::UNAUTHORIZED);
    let wrong = t.request(Method::GET, "/metrics").bearer_auth("scrape-secret-1235").send().await.unwrap();
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let right = t.request(Method::GET, "/metrics").bearer_auth("scrape-secret-1234").send().await.unwrap();
    assert_eq!(right.status(), StatusCode::OK);
    assert!(right.text().await.unwrap().contains("slipway_http_requests_total"));
    let shown = t.app.config.redacted().to_string();
    assert!(!shown.contains("scrape-secret"), "{shown}");
}

#[tokio::test]
async fn metrics_listen_serves_metrics_there_only() {
    let t = with_http(|c| c.metrics.listen = Some("127.0.0.1:0".parse().unwrap())).await;
    assert_eq!(t.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    let separate = t.metrics_base.clone().expect("a metrics listener");
    let scraped = t.client.get(format!("{separate}/metrics")).send().await.unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(t.client.get(format!("{separate}/healthz")).send().await.unwrap().status() == StatusCode::NOT_FOUND);
}

pub(crate) fn set_cookies(response: &reqwest::Response) -> Vec<String> {
    response.headers().get_all("set-cookie").iter().map(|v| v.to_str().unwrap().to_owned()).collect()
}

/// Behind an https public URL the CSRF cookie lacked Secure, no cookie had the `__Host-`
/// prefix and there was no HSTS.
#[tokio::test]
async fn over_https_cookies_are_secure_host_cookies_and_hsts_is_sent() {
    let t = with_http(|c| c.auth.public_url = Some("https://store.example".into())).await;
    t.app.auth.create_user("hosted", "hosted@example.com", PASSWORD, SiteRole::User).await.unwrap();

    let page = t.get("/signin").await;
    assert_eq!(page.headers()["strict-transport-security"], "max-age=31536000");
    let csrf = set_cookies(&page);
    assert_eq!(csrf.len(), 1, "{csrf:?}");
    assert!(csrf[0].starts_with("__Host-slipway_csrf="), "{csrf:?}");
    assert!(csrf[0].contains("; Secure") && csrf[0].contains("Path=/") && !csrf[0].contains("Domain"), "{csrf:?}");
    assert!(t.get("/v2/").await.headers().contains_key("strict-transport-security"));

    let signed_in =
        t.request(Method::POST, "/api/v1/session").json(&serde_json::json!({"name": "hosted", "password": PASSWORD})).send().await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::OK);
    let session = set_cookies(&signed_in);
    assert!(session[0].starts_with("__Host-slipway_session=") && session[0].contains("; Secure"), "{session:?}");
    let pair = session[0].split(';').next().unwrap().to_owned();
    let me = t.request(Method::GET, "/api/v1/me").header("cookie", &pair).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::OK, "the __Host- cookie is read back");
    // A bare-named cookie (one a sibling subdomain could plant) is not read over https.
    let bare = pair.replacen("__Host-", "", 1);
    let me = t.request(Method::GET, "/api/v1/me").header("cookie", &bare).send().await.unwrap();
    assert_eq!(me.status(), StatusCode::UNAUTHORIZED);

    let csrf_token = signed_in.json::<serde_json::Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_owned();
    let out = t.request(Method::DELETE, "/api/v1/session").header("cookie", &pair).header("x-csrf-token", csrf_token).send().await.unwrap();
    assert_eq!(out.status(), StatusCode::NO_CONTENT);
    let ended = set_cookies(&out);
    assert!(ended[0].starts_with("__Host-slipway_session=;") && ended[0].contains("; Secure"), "{ended:?}");
}

#[tokio::test]
async fn over_http_cookies_keep_bare_names_and_no_hsts() {
    let t = TestApp::spawn().await;
    let page = t.get("/signin").await;
    assert!(!page.headers().contains_key("strict-transport-security"));
    let csrf = set_cookies(&page);
    assert!(csrf[0].starts_with("slipway_csrf=") && !csrf[0].contains("Secure"), "{csrf:?}");
}

/// `X-Forwarded-Proto: https` is believed only from a trusted proxy: from anyone else it
/// is the client's own claim (it used to pick secure cookie names and the token realm for
/// whoever sent it).
#[tokio::test]
async fn forwarded_proto_is_believed_only_from_trusted_proxies() {
    let untrusted = Backend::enforced().await.spawn().await;
    let page = untrusted.request(Method::GET, "/signin").header("x-forwarded-proto", "https").send().await.unwrap();
    let csrf = set_cookies(&page);
    assert!(csrf[0].starts_with("slipway_csrf=") && !csrf[0].contains("Secure"), "{csrf:?}");
    let challenge = untrusted.request(Method::GET, "/v2/").header("x-forwarded-proto", "https").send().await.unwrap();
    let realm = challenge.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    assert!(realm.starts_with("Bearer realm=\"http://"), "{realm}");

    let trusted = Backend::with(|c| c.trusted_proxies = vec!["127.0.0.1/32".into()]).await.spawn().await;
    let page = trusted.request(Method::GET, "/signin").header("x-forwarded-proto", "https").send().await.unwrap();
    let csrf = set_cookies(&page);
    assert!(csrf[0].starts_with("__Host-slipway_csrf=") && csrf[0].contains("Secure"), "{csrf:?}");
}

/// SIGTERM still lets a request in flight finish, while a connection partway through a
/// head (which the header timeout alone would hold for its 30 s) does not delay the stop.
#[tokio::test]
async fn shutdown_finishes_requests_in_flight_and_drops_partial_heads() {
    use axum::routing::get;
    let router = axum::Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(700)).await;
            "done"
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(slipway::server::serve(listener, None, router, Config::default().http.limits(), async {
        let _ = stopped.await;
    }));
    let mut partial = TcpStream::connect(address).await.unwrap();
    partial.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n").await.unwrap();
    let mut in_flight = TcpStream::connect(address).await.unwrap();
    in_flight.write_all(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    stop.send(()).unwrap();
    let (response, _) = until_closed(&mut in_flight, Duration::from_secs(5)).await.expect("the request in flight is answered");
    assert!(response.starts_with("HTTP/1.1 200") && response.ends_with("done"), "{response}");
    tokio::time::timeout(Duration::from_secs(3), server).await.expect("the server stops").unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "stopped after {:?}", started.elapsed());
    assert!(until_closed(&mut partial, Duration::from_secs(1)).await.is_some(), "the partial head's connection is closed");
}

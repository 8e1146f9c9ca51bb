//! HTTPS on the listener (`[tls]`, issue 19): real TLS clients against the served app,
//! trusting a test CA made fresh for each test.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use reqwest::{StatusCode, Version};
use rustls::pki_types::{CertificateDer, ServerName};
use slipway_test_support::{Backend, TestApp};
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

use crate::hardening::set_cookies;

/// A test CA and the server certificates it signs.
struct TestCa {
    issuer: rcgen::CertifiedIssuer<'static, rcgen::KeyPair>,
    dir: tempfile::TempDir,
}

impl TestCa {
    fn new() -> TestCa {
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "Slipway test CA");
        let issuer = rcgen::CertifiedIssuer::self_signed(params, rcgen::KeyPair::generate().unwrap()).unwrap();
        TestCa { issuer, dir: tempfile::tempdir().unwrap() }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// Signs a certificate for 127.0.0.1 and localhost and puts it (and its key) at the
    /// paths `[tls]` names, by rename as renewal tools do; returns its DER.
    fn issue(&self, common_name: &str) -> Vec<u8> {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
        params.distinguished_name.push(rcgen::DnType::CommonName, common_name);
        let key = rcgen::KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        for (path, text) in [(self.cert_file(), cert.pem()), (self.key_file(), key.serialize_pem())] {
            let tmp = path.with_extension("new");
            std::fs::write(&tmp, text).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        }
        cert.der().to_vec()
    }

    fn cert_file(&self) -> PathBuf {
        self.dir.path().join("server.crt")
    }

    fn key_file(&self) -> PathBuf {
        self.dir.path().join("server.key")
    }

    /// A reqwest client that trusts only this CA.
    fn client(&self, http1_only: bool) -> reqwest::Client {
        let root = reqwest::Certificate::from_pem(self.pem().as_bytes()).unwrap();
        let builder = reqwest::Client::builder().tls_certs_only([root]).redirect(reqwest::redirect::Policy::none());
        if http1_only { builder.http1_only() } else { builder }.build().unwrap()
    }

    /// The certificate a new TLS connection to `app` is served.
    async fn served_certificate(&self, app: &TestApp) -> Vec<u8> {
        let tls = self.connect(app, Vec::new()).await;
        tls.get_ref().1.peer_certificates().expect("a certificate")[0].to_vec()
    }

    /// A TLS connection to `app`, verified against this CA, offering `alpn`.
    async fn connect(&self, app: &TestApp, alpn: Vec<Vec<u8>>) -> tokio_rustls::client::TlsStream<TcpStream> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(CertificateDer::from(self.issuer.der().to_vec())).unwrap();
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let mut config = config;
        config.alpn_protocols = alpn;
        let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
        let tcp = TcpStream::connect(address(app)).await.unwrap();
        connector.connect(ServerName::try_from("localhost").unwrap(), tcp).await.expect("the handshake verifies")
    }
}

fn address(app: &TestApp) -> String {
    app.url("").trim_start_matches("https://").to_owned()
}

async fn spawn(ca: &TestCa, adjust: impl FnOnce(&mut slipway::config::Config)) -> TestApp {
    let (cert, key) = (ca.cert_file(), ca.key_file());
    Backend::with(|c| {
        c.auth.mode = slipway::config::AuthMode::Enforced;
        c.tls.cert_file = Some(cert);
        c.tls.key_file = Some(key);
        adjust(c);
    })
    .await
    .spawn()
    .await
}

fn realm(response: &reqwest::Response) -> String {
    response.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default()
}

/// ALPN picks HTTP/2 for a client that offers it and HTTP/1.1 for one that does not; over
/// either, the token realm, cookies and HSTS say https, whatever the client's own
/// X-Forwarded-Proto claims.
#[tokio::test]
async fn https_speaks_http2_and_http1_and_tells_clients_it_is_https() {
    let ca = TestCa::new();
    ca.issue("slipway.test");
    let app = spawn(&ca, |_| {}).await;
    assert!(app.url("").starts_with("https://"));
    for (http1_only, version) in [(false, Version::HTTP_2), (true, Version::HTTP_11)] {
        let client = ca.client(http1_only);
        let challenge = client.get(app.url("/v2/")).header("x-forwarded-proto", "http").send().await.unwrap();
        assert_eq!((challenge.status(), challenge.version()), (StatusCode::UNAUTHORIZED, version));
        let expected = format!("Bearer realm=\"https://{}/auth/token\"", address(&app));
        assert!(realm(&challenge).starts_with(&expected), "{} vs {expected}", realm(&challenge));

        let page = client.get(app.url("/signin")).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::OK);
        let cookies = set_cookies(&page);
        assert!(cookies.iter().any(|c| c.starts_with("__Host-slipway_csrf=") && c.contains("Secure")), "{cookies:?}");
        assert!(page.headers().contains_key("strict-transport-security"), "{:?}", page.headers());
    }
    // Links in mail start where the server is reached: https.
    assert!(app.app.auth.settings().mail_link_base().starts_with("https://"), "{}", app.app.auth.settings().mail_link_base());
    // Plain HTTP to the TLS port gets no answer in HTTP.
    let plain = reqwest::Client::new().get(app.url("/v2/").replacen("https://", "http://", 1)).send().await;
    assert!(plain.is_err() || plain.is_ok_and(|r| r.status() == StatusCode::BAD_REQUEST));
}

/// A certificate renewed on disk is served from the next connection on; a client trusting
/// only the CA keeps working across the change.
#[tokio::test]
async fn a_renewed_certificate_is_served_to_the_next_connection() {
    let ca = TestCa::new();
    let first = ca.issue("first");
    let app = spawn(&ca, |_| {}).await;
    assert_eq!(ca.served_certificate(&app).await, first);
    let client = ca.client(false);
    assert_eq!(client.get(app.url("/v2/")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    let second = ca.issue("second");
    assert_ne!(first, second);
    assert_eq!(ca.served_certificate(&app).await, second);
    assert_eq!(ca.client(false).get(app.url("/v2/")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);

    // A broken replacement (the key of another certificate) leaves the second one served.
    let stray = rcgen::KeyPair::generate().unwrap();
    std::fs::write(ca.key_file(), stray.serialize_pem()).unwrap();
    assert_eq!(ca.served_certificate(&app).await, second);
}

/// A client that connects and never starts the handshake is dropped after
/// `header_read_timeout`, as one that stalls in a request head is.
#[tokio::test]
async fn a_silent_connection_is_closed_before_its_handshake() {
    let ca = TestCa::new();
    ca.issue("slipway.test");
    let app = spawn(&ca, |c| c.http.header_read_timeout_secs = 1).await;
    let mut silent = TcpStream::connect(address(&app)).await.unwrap();
    let started = Instant::now();
    let mut buf = [0u8; 64];
    let read = tokio::time::timeout(Duration::from_secs(10), silent.read(&mut buf)).await.expect("closed by the server");
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "{waited:?}");
    // The server goes on serving others.
    assert_eq!(ca.client(true).get(app.url("/v2/")).send().await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

/// Half of `[tls]` is refused at start rather than silently serving plain HTTP.
#[test]
fn half_a_tls_section_is_refused() {
    let tls = slipway::config::TlsConfig { cert_file: Some(Path::new("a.pem").to_owned()), key_file: None };
    let error = tls.files().unwrap_err().to_string();
    assert!(error.contains("both cert_file and key_file"), "{error}");
    assert!(slipway::config::TlsConfig::default().files().unwrap().is_none());
}

/// 300 requests at once over one HTTP/2 connection, three times the server's stream bound:
/// the client holds the excess until streams free up, and every one is answered.
#[tokio::test]
async fn many_http2_requests_on_one_connection_all_succeed() {
    let ca = TestCa::new();
    ca.issue("slipway.test");
    let app = spawn(&ca, |_| {}).await;
    let client = ca.client(false);
    let requests = (0..300).map(|_| {
        let client = client.clone();
        let url = app.url("/v2/");
        async move { client.get(url).send().await.map(|r| (r.status(), r.version())) }
    });
    let results = futures::future::join_all(requests).await;
    assert!(results.iter().all(|r| matches!(r, Ok((StatusCode::UNAUTHORIZED, Version::HTTP_2)))), "{results:?}");
}

/// The server's SETTINGS bound the streams one HTTP/2 connection may have open.
#[tokio::test]
async fn http2_streams_per_connection_are_bounded() {
    let ca = TestCa::new();
    ca.issue("slipway.test");
    let app = spawn(&ca, |_| {}).await;
    let tls = ca.connect(&app, vec![b"h2".to_vec()]).await;
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut send, mut connection) = h2::client::handshake(tls).await.unwrap();
    let request = axum::http::Request::get(app.url("/v2/")).body(()).unwrap();
    let (response, _) = send.send_request(request, true).unwrap();
    let response = tokio::select! {
        response = response => response.unwrap(),
        ended = &mut connection => panic!("the connection ended first: {ended:?}"),
    };
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(connection.max_concurrent_send_streams(), 100);
}

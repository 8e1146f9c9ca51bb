//! What Slipway's integration tests share.
//!
//! - [`Backend`]: a test's deployment state (data directory; on PostgreSQL its own
//!   database, dropped with the last user; on S3 its own key prefix), built from
//!   `Config` adjustments. Several `TestApp`s spawned from one `Backend` are replicas.
//! - [`TestApp`]: one Slipway instance served on a free loopback port.
//! - [`Caller`] and [`Via`]: who calls `/api/v1`, by session cookie with its CSRF token or
//!   by an access token as a bearer token, so API tests run both ways.
//!
//! The backend comes from the environment: SQLite + filesystem by default;
//! `SLIPWAY_TEST_POSTGRES_URL` and `SLIPWAY_TEST_S3_ENDPOINT`/`SLIPWAY_TEST_S3_BUCKET`
//! switch to PostgreSQL and S3 (tests/e2e/cargo-postgres-s3.sh sets them).

use std::sync::atomic::{AtomicU32, Ordering};

use reqwest::{Method, StatusCode};
use slipway::App;
use slipway::config::{AuthMode, Config, S3Section, Secret};
use slipway_auth::scope::TokenRule;
use slipway_oci::{Algorithm, Digest};
use tokio::task::JoinHandle;

pub struct TestApp {
    pub app: App,
    pub base: String,
    /// `metrics.listen`'s server, when the configuration sets one (on a free port).
    pub metrics_base: Option<String>,
    pub client: reqwest::Client,
    server: JoinHandle<()>,
    metrics_server: Option<JoinHandle<()>>,
    _state: std::sync::Arc<TestState>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.server.abort();
        if let Some(metrics) = &self.metrics_server {
            metrics.abort();
        }
    }
}

/// Where a test's state lives; several `TestApp`s built from one `Backend` share it,
/// like replicas of one deployment.
#[derive(Clone)]
pub struct Backend {
    config: Config,
    state: std::sync::Arc<TestState>,
}

/// A test's state outside the process: its data directory and, on PostgreSQL, its
/// database. Shared by its `Backend` and every `TestApp` spawned from it, and removed with
/// the last of them.
struct TestState {
    _dir: tempfile::TempDir,
    _database: Option<slipway_db::TestPostgres>,
}

impl Backend {
    pub async fn new() -> Backend {
        Self::with(|_| {}).await
    }

    /// A backend whose registry enforces authentication and access rules.
    pub async fn enforced() -> Backend {
        Self::with(|c| c.auth.mode = AuthMode::Enforced).await
    }

    /// Tests of the registry protocol run with authentication off unless they adjust it.
    pub async fn with(adjust: impl FnOnce(&mut Config)) -> Backend {
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = Config { data_dir: dir.path().to_owned(), ..Config::default() };
        config.gc.interval_secs = 0;
        config.auth.mode = AuthMode::Open;
        let unique = format!("t{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst), rand::random::<u32>());
        let mut database = None;
        if let Ok(url) = std::env::var("SLIPWAY_TEST_POSTGRES_URL") {
            let created = slipway_db::TestPostgres::create(&url, "t").await;
            config.database_url = Some(Secret::new(created.url.clone()));
            database = Some(created);
        }
        if let Ok(endpoint) = std::env::var("SLIPWAY_TEST_S3_ENDPOINT") {
            config.storage.s3 = Some(S3Section {
                bucket: std::env::var("SLIPWAY_TEST_S3_BUCKET").expect("SLIPWAY_TEST_S3_BUCKET"),
                region: "us-east-1".into(),
                endpoint: Some(endpoint),
                access_key_id: "test".into(),
                secret_access_key: Secret::new("test"),
                prefix: unique,
                redirect_downloads: false,
                presign_ttl_secs: 60,
                max_copy_bytes: slipway_storage::SINGLE_COPY_LIMIT,
            });
        }
        adjust(&mut config);
        Backend { config, state: std::sync::Arc::new(TestState { _dir: dir, _database: database }) }
    }

    /// The configuration the apps it spawns are built from (for commands such as
    /// `slipway restore` that work on a store without serving it).
    pub fn config(&self) -> &Config {
        &self.config
    }

    pub fn is_s3(&self) -> bool {
        self.config.storage.s3.is_some()
    }

    pub async fn spawn(&self) -> TestApp {
        let app = App::build(self.config.clone()).await.expect("app builds");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
        // The server `slipway serve` runs, with its connection limits and `[tls]`.
        let tls = app.config.tls.files().expect("[tls]").map(|(cert, key)| slipway::tls::acceptor(cert, key).expect("[tls] loads"));
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base = format!("{scheme}://{}", listener.local_addr().expect("addr"));
        let limits = app.config.http.limits();
        let server = tokio::spawn(slipway::server::serve(listener, tls, app.router(), limits, std::future::pending()));
        let (metrics_base, metrics_server) = match app.config.metrics.listen {
            Some(_) => {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind loopback");
                let base = format!("http://{}", listener.local_addr().expect("addr"));
                (
                    Some(base),
                    Some(tokio::spawn(slipway::server::serve(listener, None, app.metrics_router(), limits, std::future::pending()))),
                )
            }
            None => (None, None),
        };
        let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        TestApp { app, base, metrics_base, client, server, metrics_server, _state: self.state.clone() }
    }
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        Backend::new().await.spawn().await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path))
    }

    /// Signs in through the API; returns (cookie, CSRF token).
    pub async fn sign_in(&self, name: &str, password: &str) -> (String, String) {
        let response = self
            .request(Method::POST, "/api/v1/session")
            .json(&serde_json::json!({"name": name, "password": password}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        let cookie = response.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
        let csrf = response.json::<serde_json::Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_owned();
        (cookie, csrf)
    }

    /// A caller of the API as account `name` (which must exist), signed in the way `via`
    /// says: a session, or an access token with `api:write` (and the pull and push rights
    /// an account has anyway).
    pub async fn caller(&self, name: &str, password: &str, via: Via) -> Caller {
        match via {
            Via::Session => {
                let (cookie, csrf) = self.sign_in(name, password).await;
                Caller::Session { cookie, csrf }
            }
            Via::Bearer => {
                let rules = [TokenRule::parse("api:write").expect("api:write parses")];
                let (token, _) = self.app.auth.create_token(name, "tests", &rules, None).await.expect("token created");
                Caller::Bearer(token)
            }
        }
    }

    /// A request to the API on behalf of `caller`.
    pub fn call(&self, caller: &Caller, method: Method, path: &str) -> reqwest::RequestBuilder {
        caller.authorize(self.request(method, path))
    }

    /// Whether account `name` (signing in with `password`) gets a pull token for
    /// `repository` and, with it, the manifest of `reference`: what `docker pull` does.
    pub async fn can_pull(&self, name: &str, password: &str, repository: &str, reference: &str) -> bool {
        let token = self.registry_token(name, password, &format!("repository:{repository}:pull")).await;
        self.get_manifest(&token, repository, reference).await.0 == StatusCode::OK
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.request(Method::GET, path).send().await.expect("request")
    }

    /// Uploads a blob with POST then PUT; returns its digest.
    pub async fn push_blob(&self, repo: &str, content: &[u8]) -> Digest {
        self.push_blob_with(repo, content, None).await
    }

    async fn push_blob_with(&self, repo: &str, content: &[u8], bearer: Option<&str>) -> Digest {
        let digest = Digest::of(Algorithm::Sha256, content);
        let start = with_bearer(self.request(Method::POST, &format!("/v2/{repo}/blobs/uploads/")), bearer).send().await.expect("post");
        assert_eq!(start.status(), StatusCode::ACCEPTED);
        let location = start.headers()["location"].to_str().unwrap().to_owned();
        let put = with_bearer(self.request(Method::PUT, &format!("{location}?digest={digest}")), bearer)
            .body(content.to_vec())
            .send()
            .await
            .expect("put");
        assert_eq!(put.status(), StatusCode::CREATED, "{}", put.text().await.unwrap_or_default());
        digest
    }

    /// Pushes an image manifest naming `config` and `layers` (all already pushed).
    pub async fn push_manifest(
        &self,
        repo: &str,
        reference: &str,
        config: &Digest,
        layers: &[(&Digest, usize)],
    ) -> (StatusCode, serde_json::Value, Digest) {
        self.push_manifest_with(repo, reference, config, layers, None).await
    }

    async fn push_manifest_with(
        &self,
        repo: &str,
        reference: &str,
        config: &Digest,
        layers: &[(&Digest, usize)],
        bearer: Option<&str>,
    ) -> (StatusCode, serde_json::Value, Digest) {
        let body = image_manifest(config, layers);
        let response = with_bearer(self.request(Method::PUT, &format!("/v2/{repo}/manifests/{reference}")), bearer)
            .header("content-type", "application/vnd.oci.image.manifest.v1+json")
            .body(body.clone())
            .send()
            .await
            .expect("put manifest");
        let status = response.status();
        let json = response.json().await.unwrap_or(serde_json::Value::Null);
        (status, json, Digest::of(Algorithm::Sha256, &body))
    }

    /// Pushes a one-layer image; returns the manifest digest.
    pub async fn push_image(&self, repo: &str, tag: &str, layer: &[u8]) -> Digest {
        self.push_image_with(repo, tag, layer, None).await
    }

    /// Pushes a one-layer image as account `name`, with a registry token of its own (what
    /// `docker login` then `docker push` do, on a registry that enforces authentication).
    pub async fn push_image_as(&self, name: &str, password: &str, repo: &str, tag: &str, layer: &[u8]) -> Digest {
        let token = self.registry_token(name, password, &format!("repository:{repo}:pull,push")).await;
        self.push_image_with(repo, tag, layer, Some(&token)).await
    }

    async fn push_image_with(&self, repo: &str, tag: &str, layer: &[u8], bearer: Option<&str>) -> Digest {
        let config = self.push_blob_with(repo, format!("{{\"layer\":{}}}", layer.len()).as_bytes(), bearer).await;
        let layer_digest = self.push_blob_with(repo, layer, bearer).await;
        let (status, body, digest) = self.push_manifest_with(repo, tag, &config, &[(&layer_digest, layer.len())], bearer).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        digest
    }

    /// A registry token for account `name` (None: anonymous) asking for `scope`.
    pub async fn registry_token_for(&self, account: Option<(&str, &str)>, scope: &str) -> String {
        let request = self.request(Method::GET, "/auth/token").query(&[("service", "slipway"), ("scope", scope)]);
        let request = match account {
            Some((name, password)) => request.basic_auth(name, Some(password)),
            None => request,
        };
        let token: serde_json::Value = request.send().await.unwrap().json().await.unwrap();
        token["token"].as_str().unwrap_or_default().to_owned()
    }

    async fn registry_token(&self, name: &str, password: &str, scope: &str) -> String {
        self.registry_token_for(Some((name, password)), scope).await
    }

    /// GET of a manifest of `repository` with `token`: the status and the answer (the
    /// registry's error envelope when refused).
    pub async fn get_manifest(&self, token: &str, repository: &str, reference: &str) -> (StatusCode, serde_json::Value) {
        let response = self
            .request(Method::GET, &format!("/v2/{repository}/manifests/{reference}"))
            .bearer_auth(token)
            .header("accept", "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json")
            .send()
            .await
            .unwrap();
        (response.status(), response.json().await.unwrap_or_default())
    }
}

fn with_bearer(request: reqwest::RequestBuilder, bearer: Option<&str>) -> reqwest::RequestBuilder {
    match bearer {
        Some(token) => request.bearer_auth(token),
        None => request,
    }
}

/// How a test signs its API calls in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// The session cookie, with the CSRF token on state changes: the store's own pages.
    Session,
    /// `Authorization: Bearer slw_...`: programs, no CSRF token.
    Bearer,
}

impl Via {
    /// Both ways: API tests loop over this.
    pub const ALL: [Via; 2] = [Via::Session, Via::Bearer];
}

/// Someone calling the API.
#[derive(Clone, Debug)]
pub enum Caller {
    Anonymous,
    Session { cookie: String, csrf: String },
    Bearer(String),
}

impl Caller {
    /// Adds the caller's credentials to a request.
    pub fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        match self {
            Caller::Anonymous => request,
            Caller::Session { cookie, csrf } => request.header("cookie", cookie).header("x-csrf-token", csrf),
            Caller::Bearer(token) => request.bearer_auth(token),
        }
    }
}

pub fn image_manifest(config: &Digest, layers: &[(&Digest, usize)]) -> Vec<u8> {
    let layers: Vec<_> = layers
        .iter()
        .map(|(d, size)| serde_json::json!({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": d.to_string(), "size": size}))
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config.to_string(), "size": 2},
        "layers": layers,
    }))
    .unwrap()
}

/// The `code` of the first error in an OCI error envelope.
pub async fn error_code(response: reqwest::Response) -> String {
    let body: serde_json::Value = response.json().await.expect("error body is JSON");
    body["errors"][0]["code"].as_str().unwrap_or_default().to_owned()
}

pub fn random_bytes(len: usize) -> Vec<u8> {
    (0..len).map(|_| rand::random::<u8>()).collect()
}

#![doc = include_str!("../README.md")]

pub mod admin;
pub mod config;
pub mod demo;
pub mod feed;
mod metrics_layer;
pub mod scan;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use futures::future::BoxFuture;
use slipway_db::Db;
use slipway_jobs::{Queue, Runner};
use slipway_oci::{Digest, RepoName, media_type};
use slipway_registry::{PushHook, Registry, RegistrySettings};
use slipway_security::Scanning;
use slipway_storage::{BlobStore, FsStore, S3Config, S3Store};
use tower_http::trace::TraceLayer;

use config::AuthMode;
pub use config::Config;
use slipway_auth::{AuthService, KeyRing};
use slipway_catalog::Catalog;
use slipway_web::WebState;

/// The assembled service, shared by `serve`, the maintenance subcommands and tests.
#[derive(Clone)]
pub struct App {
    pub registry: Registry,
    pub auth: AuthService,
    pub catalog: Catalog,
    pub scanning: Scanning,
    pub config: Arc<Config>,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        prepare_data_dir(&config.data_dir)?;
        let db = Db::connect(&config.database_url()).await.context("opening the database")?;
        let (store, redirect_blob_gets): (Arc<dyn BlobStore>, bool) = match &config.storage.s3 {
            Some(s3) => {
                let store = S3Store::new(&S3Config {
                    bucket: s3.bucket.clone(),
                    region: s3.region.clone(),
                    endpoint: s3.endpoint.clone(),
                    access_key_id: s3.access_key_id.clone(),
                    secret_access_key: s3.secret_access_key.expose().to_owned(),
                    prefix: s3.prefix.clone(),
                    presign_ttl: s3.redirect_downloads.then(|| Duration::from_secs(s3.presign_ttl_secs)),
                })
                .context("configuring S3 storage")?;
                (Arc::new(store), s3.redirect_downloads)
            }
            None => (Arc::new(FsStore::open(config.data_dir.join("storage")).await?), false),
        };
        let keys_dir = config.auth.keys_dir.clone().unwrap_or_else(|| config.data_dir.join("keys"));
        let keys = KeyRing::load_or_create(&keys_dir).context("loading the token-signing keys")?;
        // Links in mail fall back to the listen address, never to a request's Host.
        let auth_settings = slipway_auth::AuthSettings { listen: config.listen, ..config.auth_settings()? };
        let auth = AuthService::new(db.clone(), keys, auth_settings);
        let catalog = Catalog::new(db.clone(), store.clone(), auth.clone());
        let scanning = Scanning::new(db.clone(), store.clone(), Queue::new(db.clone()), config.scan.limits())
            .with_inventory_limits(config.scan.inventory_limits());
        let mut registry = Registry::new(db, store, RegistrySettings { redirect_blob_gets });
        if config.scan.on_push {
            registry = registry.with_push_hook(Arc::new(ScanOnPush(scanning.clone())));
        }
        Ok(App { registry, auth, catalog, scanning, config: Arc::new(config) })
    }

    /// Every route Slipway serves.
    pub fn router(&self) -> Router {
        let ops = Router::new()
            .route("/healthz", get(|| async { "ok" }))
            .route("/readyz", get(ready))
            .route("/metrics", get(metrics_layer::render_main))
            .with_state(self.clone());
        let guard = (self.config.auth.mode == AuthMode::Enforced).then(|| self.auth.clone());
        let router = slipway_registry::router(self.registry.clone(), guard, self.config.rate_limit.settings())
            .merge(slipway_auth::router(self.auth.clone()))
            .merge(slipway_web::router(WebState {
                catalog: self.catalog.clone(),
                auth: self.auth.clone(),
                scanning: self.scanning.clone(),
            }))
            .merge(ops);
        // Browsers that once reached the https public URL refuse plain http to it for a year.
        let router = if self.config.auth.public_url.as_deref().is_some_and(|url| url.starts_with("https://")) {
            router.layer(axum::middleware::map_response(strict_transport_security))
        } else {
            router
        };
        router
            // The client's address, once per request, for everything that counts by address.
            .layer(axum::middleware::from_fn_with_state(self.auth.clone(), slipway_auth::record_client_addr))
            .layer(axum::middleware::from_fn(metrics_layer::record))
            .layer(TraceLayer::new_for_http())
    }

    /// What `metrics.listen` serves: `/metrics` alone.
    pub fn metrics_router(&self) -> Router {
        Router::new().route("/metrics", get(metrics_layer::render_separate)).with_state(self.clone())
    }

    /// Delivers queued mail every few seconds until the process ends.
    pub fn spawn_mailer(&self) {
        let auth = self.auth.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(2));
            loop {
                ticker.tick().await;
                if let Err(e) = slipway_auth::mail::deliver_due(auth.db(), &auth.settings().mail).await {
                    tracing::warn!(error = %e, "mail delivery round failed");
                }
            }
        });
    }

    /// Builds this replica's search index in the background, so the first search after a
    /// start does not wait for it.
    pub fn spawn_search_index(&self) {
        let catalog = self.catalog.clone();
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            match catalog.prepare_search().await {
                Ok(listings) => tracing::info!(listings, elapsed_ms = started.elapsed().as_millis() as u64, "search index built"),
                Err(e) => tracing::warn!(error = %e, "building the search index failed"),
            }
        });
    }

    /// Adds counted pulls to products' popularity every few seconds.
    pub fn spawn_pull_counter(&self) {
        let registry = self.registry.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(10));
            loop {
                ticker.tick().await;
                if let Err(e) = registry.flush_pulls().await {
                    tracing::warn!(error = %e, "recording pull counts failed");
                }
            }
        });
    }

    /// The background job runner with every kind of job registered, as `serve` starts it.
    pub fn job_runner(&self) -> Runner {
        self.scanning.register(Runner::new(self.scanning.queue().clone(), self.config.jobs.settings()))
    }

    /// Syncs the configured feed URLs every `feed.sync_interval_secs` until the process
    /// ends, the first time at once.
    pub fn spawn_feed_sync(&self) {
        let (urls, interval) = (self.config.feed.urls.clone(), self.config.feed.sync_interval_secs);
        if urls.is_empty() || interval == 0 {
            return;
        }
        let scanning = self.scanning.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(interval));
            loop {
                ticker.tick().await;
                for sync in scanning.sync_feeds(&urls).await {
                    if let Some(import) = &sync.import {
                        tracing::info!(url = %sync.url, imported = import.imported, updated = import.updated, "feed synced");
                    }
                }
            }
        });
    }

    /// Runs garbage collection every `interval` until the process ends.
    pub fn spawn_gc(&self) {
        let interval = self.config.gc.interval_secs;
        if interval == 0 {
            return;
        }
        let (registry, settings) = (self.registry.clone(), self.config.gc.settings());
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(Duration::from_secs(interval));
            ticker.tick().await;
            loop {
                ticker.tick().await;
                if let Err(e) = registry.collect_garbage(&settings).await {
                    tracing::warn!(error = %e, "scheduled garbage collection failed");
                }
            }
        });
    }
}

/// Creates the data directory 0700: it holds the database (password hashes, the mail queue),
/// the token-signing keys and the blobs, none of them for other local users. An existing
/// one that others can enter is left as the operator made it, with a warning.
fn prepare_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating data directory {}", dir.display()))?;
    let mode = std::fs::metadata(dir).with_context(|| format!("reading data directory {}", dir.display()))?.permissions().mode();
    if mode & 0o077 != 0 {
        tracing::warn!(
            data_dir = %dir.display(),
            mode = format!("{:o}", mode & 0o777),
            "the data directory is open to other local users (it holds password hashes and keys): chmod 700 it"
        );
    }
    Ok(())
}

async fn strict_transport_security(mut response: axum::response::Response) -> axum::response::Response {
    response.headers_mut().insert(axum::http::header::STRICT_TRANSPORT_SECURITY, axum::http::HeaderValue::from_static("max-age=31536000"));
    response
}

/// Enqueues a scan of each image manifest pushed. An index is not scanned itself: its
/// platform images were pushed, and so scanned, before it.
struct ScanOnPush(Scanning);

impl PushHook for ScanOnPush {
    fn manifest_pushed<'a>(&'a self, repository: &'a RepoName, digest: &'a Digest, media: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            if media_type::is_index(media) {
                return;
            }
            // The push has succeeded; a scan that could not be queued is asked for again
            // on demand.
            if let Err(e) = self.0.enqueue_scan(repository.as_str(), &digest.to_string()).await {
                tracing::warn!(repository = %repository, digest = %digest, error = %e, "queueing a scan failed");
            }
        })
    }
}

/// Ready once the database answers and the search index has been built: a replica that
/// took traffic sooner would make its first searches wait for the build (seconds over a
/// large catalog). A probe finding no index starts a build (after a failed one, again).
async fn ready(State(app): State<App>) -> impl IntoResponse {
    if let Err(e) = app.registry.db().ping().await {
        tracing::warn!(error = %e, "readiness check failed");
        return (StatusCode::SERVICE_UNAVAILABLE, "database unavailable");
    }
    if !app.catalog.search_ready() {
        let catalog = app.catalog.clone();
        // Concurrent builds are one: later probes wait for the same build.
        tokio::spawn(async move { catalog.prepare_search().await });
        return (StatusCode::SERVICE_UNAVAILABLE, "building the search index");
    }
    (StatusCode::OK, "ready")
}

#![doc = include_str!("../README.md")]

pub mod admin;
pub mod backup;
mod client_addr;
pub mod config;
pub mod demo;
mod demo_program;
pub mod feed;
pub mod healthcheck;
pub mod jobs;
pub mod ledger;
mod metrics_layer;
pub mod payouts;
mod run_to_completion;
pub mod runtime;
pub mod scan;
pub mod server;
mod smtp;
pub mod telemetry;
pub mod tls;

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
use slipway_jobs::{Queue, Runner, Schedule};
use slipway_oci::{Digest, RepoName, media_type};
use slipway_registry::{PushHook, Registry, RegistrySettings};
use slipway_security::Scanning;
use slipway_storage::{BlobStore, FsStore, S3Config, S3Store};
use tower_http::trace::TraceLayer;

use config::AuthMode;
pub use config::Config;
use slipway_auth::{AuthService, KeyRing};
use slipway_catalog::Catalog;
use slipway_commerce::{Commerce, RenewalReport};
use slipway_web::WebState;

/// The assembled service, shared by `serve`, the maintenance subcommands and tests.
#[derive(Clone)]
pub struct App {
    /// The database itself: readiness, shutdown and the maintenance commands. Services
    /// hold only their own domain's handle of it.
    pub db: Db,
    pub registry: Registry,
    pub auth: AuthService,
    pub catalog: Catalog,
    pub commerce: Commerce,
    /// The fulfillment API's orders and webhooks (bring your own license).
    pub fulfillment: slipway_commerce::Fulfillment,
    pub scanning: Scanning,
    /// The job queue and its clock: what `serve`'s runner claims from, and what moves the
    /// test clock.
    pub jobs: Queue,
    pub config: Arc<Config>,
}

impl App {
    pub async fn build(config: Config) -> anyhow::Result<App> {
        prepare_data_dir(&config.data_dir)?;
        let db = Db::connect(&config.database_url()).await.context("opening the database")?;
        let db = if config.testing.clock { with_test_clock(db).await? } else { db };
        let jobs = Queue::new(db.jobs());
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
                    max_copy_bytes: s3.max_copy_bytes,
                })
                .context("configuring S3 storage")?;
                (Arc::new(store), s3.redirect_downloads)
            }
            None => (Arc::new(FsStore::open(config.data_dir.join("storage")).await?), false),
        };
        let keys_dir = config.auth.keys_dir.clone().unwrap_or_else(|| config.data_dir.join("keys"));
        let keys = KeyRing::load_or_create(&keys_dir).context("loading the token-signing keys")?;
        // Links in mail fall back to the listen address, never to a request's Host.
        let auth_settings =
            slipway_auth::AuthSettings { listen: config.listen, listen_tls: config.tls.files()?.is_some(), ..config.auth_settings()? };
        let auth = AuthService::new(db.identity(), keys, auth_settings);
        let catalog = Catalog::new(db.catalog(), db.images(), store.clone(), auth.clone());
        let provider = config.commerce.provider(db.commerce())?;
        // A moved clock would renew subscriptions early: never with real money.
        anyhow::ensure!(
            !(config.testing.clock && provider.is_live()),
            "[testing] clock = true is refused with a payment provider that moves real money ({}): use test-mode keys",
            provider.name()
        );
        let commerce = Commerce::new(db.commerce(), catalog.clone(), provider, config.commerce.settings()?);
        let fulfillment = slipway_commerce::Fulfillment::new(
            db.commerce(),
            &auth.settings().mail_link_base(),
            config.commerce.webhooks_to_private_addresses,
        )?;
        // Orders placed for an address attach when an account verifies it.
        auth.set_email_verified_hook(Arc::new(fulfillment.clone()));
        let scanning = Scanning::new(db.scanning(), db.images(), store.clone(), jobs.clone(), config.scan.limits())
            .with_inventory_limits(config.scan.inventory_limits());
        let mut registry = Registry::new(db.registry(), store, RegistrySettings { redirect_blob_gets });
        if config.scan.on_push {
            registry = registry.with_push_hook(Arc::new(ScanOnPush(scanning.clone())));
        }
        Ok(App { db, registry, auth, catalog, commerce, fulfillment, scanning, jobs, config: Arc::new(config) })
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
            .merge(slipway_registry::token_router(self.auth.clone()))
            .merge(slipway_web::router(WebState {
                catalog: self.catalog.clone(),
                commerce: self.commerce.clone(),
                fulfillment: self.fulfillment.clone(),
                auth: self.auth.clone(),
                scanning: self.scanning.clone(),
            }))
            .merge(ops)
            .layer(axum::middleware::from_fn(run_to_completion::run_writes_to_completion));
        // Browsers that once reached the https public URL (or this listener's TLS) refuse
        // plain http to it for a year.
        let https_public_url = self.config.auth.public_url.as_deref().is_some_and(|url| url.starts_with("https://"));
        let router = if https_public_url || matches!(self.config.tls.files(), Ok(Some(_))) {
            router.layer(axum::middleware::map_response(strict_transport_security))
        } else {
            router
        };
        router
            // The client's address, once per request, for everything that counts by address.
            .layer(axum::middleware::from_fn_with_state(self.auth.clone(), client_addr::record_client_addr))
            .layer(axum::middleware::from_fn(metrics_layer::record))
            .layer(TraceLayer::new_for_http().make_span_with(telemetry::request_span).on_response(
                |response: &axum::response::Response, latency: std::time::Duration, span: &tracing::Span| {
                    use tower_http::trace::OnResponse;
                    telemetry::record_status(response.status().as_u16());
                    tower_http::trace::DefaultOnResponse::default().on_response(response, latency, span)
                },
            ))
    }

    /// What `metrics.listen` serves: `/metrics` alone.
    pub fn metrics_router(&self) -> Router {
        Router::new().route("/metrics", get(metrics_layer::render_separate)).with_state(self.clone())
    }

    /// Builds this replica's search index in the background, so the first search after a
    /// start does not wait for it. Not a schedule: the index lives in this replica's memory
    /// and rebuilds itself on the first search after a catalog change or once stale, so
    /// there is nothing to run on a clock.
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

    /// The background job runner with every kind of job and every schedule registered, as
    /// `serve` starts it.
    pub fn job_runner(&self) -> Runner {
        let runner = self.scanning.register(Runner::new(self.jobs.clone(), self.config.jobs.settings()));
        self.schedules().into_iter().fold(runner, Runner::schedule)
    }

    /// Delivers due mail from the outbox once over `[mail]`'s SMTP server; returns how many
    /// messages were sent (none without a server: they wait in the outbox).
    pub async fn deliver_mail(&self) -> anyhow::Result<usize> {
        let Some(url) = &self.config.mail.smtp_url else { return Ok(0) };
        let smtp = smtp::Smtp::new(url.expose(), &self.config.mail.from)?;
        Ok(self.auth.deliver_mail(&smtp).await?)
    }

    /// The periodic work, each run once per interval across replicas unless it works on a
    /// replica's own memory (ARCHITECTURE.md, "Scheduled work"). An interval of zero turns
    /// one off. The names are stored: they must not change.
    pub fn schedules(&self) -> Vec<Schedule> {
        let config = &self.config;
        let (registry, catalog, scanning) = (self.registry.clone(), self.catalog.clone(), self.scanning.clone());
        let gc_settings = config.gc.settings();
        let gc = Schedule::cluster("gc", Duration::from_secs(config.gc.interval_secs), move || {
            let (registry, settings) = (registry.clone(), gc_settings.clone());
            async move {
                let report = registry.collect_garbage(&settings).await?;
                tracing::info!(report = ?report, "garbage collected");
                Ok(())
            }
        });
        let urls = config.feed.urls.clone();
        let feed_interval = if urls.is_empty() { Duration::ZERO } else { Duration::from_secs(config.feed.sync_interval_secs) };
        let feed_sync = Schedule::cluster("feed-sync", feed_interval, move || {
            let (scanning, urls) = (scanning.clone(), urls.clone());
            async move { sync_feeds(&scanning, &urls).await }
        })
        .at_start();
        // Without an SMTP server messages wait in the outbox: nothing to deliver.
        let mail_interval = if config.mail.smtp_url.is_some() { MAIL_INTERVAL } else { Duration::ZERO };
        let app = self.clone();
        let mail = Schedule::cluster("mail", mail_interval, move || {
            let app = app.clone();
            async move {
                app.deliver_mail().await?;
                Ok(())
            }
        })
        .at_start();
        let registry = self.registry.clone();
        // Pulls are counted in this replica's memory: every replica writes its own out.
        let pull_flush = Schedule::replica("pull-flush", PULL_INTERVAL, move || {
            let registry = registry.clone();
            async move { Ok(registry.flush_pulls().await?) }
        });
        let pull_fold = Schedule::cluster("pull-fold", PULL_INTERVAL, move || {
            let catalog = catalog.clone();
            async move {
                catalog.count_pulls().await?;
                Ok(())
            }
        });
        let commerce = self.commerce.clone();
        let renewals = Schedule::cluster("renewals", Duration::from_secs(config.commerce.renewal_interval_secs), move || {
            let commerce = commerce.clone();
            async move {
                let report = commerce.renew_due().await?;
                if report != RenewalReport::default() {
                    tracing::info!(report = ?report, "subscriptions renewed");
                }
                Ok(())
            }
        });
        let fulfillment = self.fulfillment.clone();
        // Order expiries, late attachments and webhook deliveries with their retries.
        let webhooks = Schedule::cluster("webhooks", WEBHOOK_INTERVAL, move || {
            let fulfillment = fulfillment.clone();
            async move {
                let report = fulfillment.run().await?;
                if report != slipway_commerce::WebhookReport::default() {
                    tracing::info!(report = ?report, "fulfillment webhooks run");
                }
                Ok(())
            }
        });
        let commerce = self.commerce.clone();
        // Daily: last month is stated once it is over; later runs find it done.
        let statements = Schedule::cluster("statements", STATEMENTS_INTERVAL, move || {
            let commerce = commerce.clone();
            async move {
                let report = commerce.generate_last_month().await?;
                if !report.created.is_empty() {
                    tracing::info!(month = %report.month, created = report.created.len(), "payout statements generated");
                }
                Ok(())
            }
        });
        let app = self.clone();
        let vulnerability_policy = Schedule::cluster("vulnerability-policy", POLICY_INTERVAL, move || {
            let app = app.clone();
            async move { app.enforce_vulnerability_policy().await.map(|_| ()) }
        });
        vec![gc, feed_sync, mail, pull_flush, pull_fold, renewals, webhooks, statements, vulnerability_policy]
    }

    /// One run of the vulnerability policy's deadline sweep (reports, holds, lifts,
    /// revocations), then the end of the revoked products' subscriptions.
    pub async fn enforce_vulnerability_policy(&self) -> anyhow::Result<slipway_catalog::vulnerability_policy::PolicyReport> {
        let report = self.catalog.sweep_vulnerability_policy().await?;
        if report != Default::default() {
            tracing::info!(report = ?report, "vulnerability policy enforced");
        }
        let ended = self.commerce.end_revoked_subscriptions().await?;
        if ended > 0 {
            tracing::info!(ended, "subscriptions of revoked products ended");
        }
        Ok(report)
    }
}

/// How often order events are sent to ISVs' endpoints (and due retries made).
const WEBHOOK_INTERVAL: Duration = Duration::from_secs(10);
/// How often queued mail is sent: soon enough for a sign-up's verification link.
const MAIL_INTERVAL: Duration = Duration::from_secs(2);
/// How often pulls counted in memory reach the database, and products' popularity.
const PULL_INTERVAL: Duration = Duration::from_secs(10);
/// How often the vulnerability policy's deadlines are checked: a few minutes late on a
/// deadline of days.
const POLICY_INTERVAL: Duration = Duration::from_secs(300);
/// How often last month's payout statements are looked for.
const STATEMENTS_INTERVAL: Duration = Duration::from_secs(86_400);

/// One feed sync round: every URL, a failed run if any of them failed.
async fn sync_feeds(scanning: &Scanning, urls: &[String]) -> anyhow::Result<()> {
    let syncs = scanning.sync_feeds(urls).await;
    for sync in &syncs {
        if let Some(import) = &sync.import {
            tracing::info!(url = %sync.url, imported = import.imported, updated = import.updated, "feed synced");
        }
    }
    let failed: Vec<String> = syncs.iter().filter_map(|s| s.error.as_ref().map(|e| format!("{}: {e}", s.url))).collect();
    anyhow::ensure!(failed.is_empty(), "{} of {} feed URLs failed: {}", failed.len(), syncs.len(), failed.join("; "));
    Ok(())
}

/// `[testing] clock = true`: the database's clock becomes the test clock, at the offset
/// the replicas share, and the start says so loudly.
async fn with_test_clock(db: Db) -> anyhow::Result<Db> {
    let offset = db.jobs().test_clock_offset().await.context("reading the test clock")?;
    tracing::warn!(
        offset = %humantime::format_duration(offset),
        "THE TEST CLOCK IS ON ([testing] clock = true): time runs ahead of the system time by the stored offset, and \
         `slipway admin clock advance` moves it for every replica; never run a real deployment like this"
    );
    Ok(db.with_clock(slipway_types::Clock::test(offset)))
}

/// Creates the data directory 0700: it holds the database (password hashes, the mail queue),
/// the token-signing keys and the blobs, none of them for other local users. An existing
/// one that others can enter is left as the operator made it, with a warning.
pub(crate) fn prepare_data_dir(dir: &std::path::Path) -> anyhow::Result<()> {
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
    if let Err(e) = app.db.ping().await {
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

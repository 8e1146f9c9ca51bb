/// mimalloc rather than glibc's malloc: a page read afresh allocates many small, short-lived
/// strings and rows across worker threads, and glibc's arenas spent 17% of the CPU on
/// them; with mimalloc the same product pages cost 15-30% less CPU (bench/RESULTS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use slipway::App;
use slipway::admin::{self, AdminCommand};
use slipway::config::{Config, Overrides};
use slipway::feed::{self, FeedCommand};
use slipway::jobs::{self, JobsCommand};
use slipway::ledger::{self, LedgerCommand};
use slipway_auth::SignUpVerification;

/// Slipway: a self-hosted marketplace for container software.
#[derive(Parser)]
#[command(version)]
struct Cli {
    /// Configuration file (default: slipway.toml in the working directory, if present).
    #[arg(long, global = true)]
    config: Option<PathBuf>,
    /// Directory for the embedded database and blob store.
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Database URL: sqlite://PATH or postgres://USER@HOST/DB.
    #[arg(long, global = true)]
    database_url: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the registry, the store and the API.
    Serve {
        /// Address to listen on (default 127.0.0.1:5000).
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
        /// Load the demo store first if the store is empty.
        #[arg(long)]
        demo: bool,
    },
    /// Load the demo store (publishers, ~30 products, images) into an empty store.
    Demo {
        /// Also generate this many synthetic products (for benchmarks at scale).
        #[arg(long, default_value_t = 0)]
        synthetic: usize,
    },
    /// Delete unreferenced blobs and abandoned uploads (safe while `serve` runs).
    Gc {
        /// Keep unreferenced blobs younger than this many seconds (overrides gc.grace_secs).
        #[arg(long)]
        grace_secs: Option<u64>,
    },
    /// Check that every stored blob matches its digest and every manifest's blobs exist.
    Fsck,
    /// Print the effective configuration, secrets redacted.
    Config,
    /// Exit 0 if the server this configuration describes is ready (a container's HEALTHCHECK).
    Healthcheck,
    /// Copy the store (database, blobs, signing keys) into a new directory, while it serves.
    Backup(slipway::backup::BackupArgs),
    /// Make a new store (data directory, or database and bucket) from a backup.
    Restore(slipway::backup::RestoreArgs),
    /// Manage accounts, organizations, tokens, access and entitlements.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Scan an image for vulnerable packages (a registry image, an OCI layout or a docker save archive).
    Scan(Box<slipway::scan::ScanArgs>),
    /// Load and inspect the OSV vulnerability feed that scans are matched against.
    Feed {
        #[command(subcommand)]
        command: FeedCommand,
    },
    /// Inspect the background job queue and the scheduled work.
    Jobs {
        #[command(subcommand)]
        command: JobsCommand,
    },
    /// Check the double-entry ledger of money movements.
    Ledger {
        #[command(subcommand)]
        command: LedgerCommand,
    },
}

fn main() -> anyhow::Result<()> {
    slipway::runtime::build()?.block_on(run())
}

async fn run() -> anyhow::Result<()> {
    let cli = Cli::parse();
    restrict_new_files();
    let listen = match &cli.command {
        Command::Serve { listen, .. } => *listen,
        _ => None,
    };
    let overrides = Overrides { listen, data_dir: cli.data_dir.clone(), database_url: cli.database_url.clone() };
    let (config, warnings) = Config::load(cli.config.as_deref(), &overrides)?;
    let telemetry = slipway::telemetry::init(&config)?;
    for warning in warnings {
        tracing::warn!("{warning}");
    }

    match cli.command {
        Command::Config => {
            println!("{}", serde_json::to_string_pretty(&config.redacted())?);
        }
        Command::Serve { demo, .. } => serve(config, demo).await?,
        Command::Demo { synthetic } => {
            let app = App::build(config).await?;
            anyhow::ensure!(
                slipway::demo::store_is_empty(&app).await?,
                "the store already has content; the demo loads only into an empty one"
            );
            announce_demo(&slipway::demo::load(&app).await?);
            if synthetic > 0 {
                slipway::demo::load_synthetic(&app, synthetic).await?;
            }
        }
        Command::Gc { grace_secs } => {
            let mut settings = config.gc.settings();
            if let Some(secs) = grace_secs {
                settings.grace = std::time::Duration::from_secs(secs);
            }
            let app = App::build(config).await?;
            let report = app.registry.collect_garbage(&settings).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
        }
        Command::Admin { command } => {
            let app = App::build(config).await?;
            admin::run(&app, command).await?;
        }
        Command::Scan(args) => std::process::exit(slipway::scan::run(*args, &config.data_dir, config.database_url()).await),
        Command::Feed { command } => {
            let app = App::build(config).await?;
            feed::run(&app, command).await?;
        }
        Command::Jobs { command } => {
            let app = App::build(config).await?;
            jobs::run(&app, command).await?;
        }
        Command::Ledger { command } => {
            let app = App::build(config).await?;
            ledger::run(&app, command).await?;
        }
        Command::Healthcheck => slipway::healthcheck::run(&config).await?,
        Command::Backup(args) => {
            let app = App::build(config).await?;
            let manifest = slipway::backup::backup(&app, &args).await?;
            eprintln!(
                "backed up the {} database, {} blobs ({} bytes) and the signing keys to {}",
                manifest.database,
                manifest.blobs.len(),
                manifest.blob_bytes,
                args.dir.display()
            );
        }
        Command::Restore(args) => {
            let report = slipway::backup::restore(config, &args).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            anyhow::ensure!(report.problems.is_empty(), "the restored store has {} problem(s)", report.problems.len());
        }
        Command::Fsck => {
            let app = App::build(config).await?;
            let report = app.registry.verify().await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            anyhow::ensure!(report.problems.is_empty(), "{} problem(s) found", report.problems.len());
        }
    }
    // The exporter's thread sends what is queued; blocking is fine on the way out.
    tokio::task::block_in_place(|| telemetry.shutdown());
    Ok(())
}

async fn serve(mut config: Config, demo: bool) -> anyhow::Result<()> {
    if demo && config.commerce.tax.is_empty() {
        // The demo sells with tax, so a newcomer's checkout shows it; a configured table wins.
        config.commerce.tax = slipway::demo::tax_table();
    }
    // A newcomer signs up and signs in without a mail server or a log to read.
    config.mail.demo_verifies_sign_ups = demo;
    let listen = config.listen;
    let app = App::build(config).await?;
    if demo && slipway::demo::store_is_empty(&app).await? {
        tracing::info!("loading the demo store");
        announce_demo(&slipway::demo::load(&app).await?);
    }
    if app.config.auth.public_url.is_none() {
        tracing::warn!(
            links = %app.auth.settings().mail_link_base(),
            "auth.public_url is not set: links in mail (verification, password reset, invitations) use the listen address; set auth.public_url to the address users reach"
        );
    }
    match app.auth.settings().sign_up_verification {
        SignUpVerification::Mail => {}
        SignUpVerification::Log => tracing::warn!(
            "no mail server ([mail] smtp_url): password reset and invitation mail waits in the outbox, and verification \
             links are written to this log; or verify a sign-up with `slipway admin verify-email USER`"
        ),
        SignUpVerification::AtOnce => tracing::warn!(
            "no mail server ([mail] smtp_url): the demo counts new accounts' addresses as verified at once; \
             password reset and invitation mail waits in the outbox"
        ),
    }
    app.spawn_search_index();
    // The scheduler runs in every replica, also one with no workers: it flushes this
    // replica's pull counts, and enqueues cluster runs for other replicas' workers.
    let jobs = app.job_runner().start();
    let listener = tokio::net::TcpListener::bind(listen).await.with_context(|| format!("binding {listen}"))?;
    let limits = app.config.http.limits();
    let tls = match app.config.tls.files()? {
        Some((cert, key)) => Some(slipway::tls::acceptor(cert, key)?),
        None => None,
    };
    let metrics_server = match app.config.metrics.listen {
        Some(address) => {
            let metrics = tokio::net::TcpListener::bind(address).await.with_context(|| format!("binding metrics.listen {address}"))?;
            tracing::info!(address = %metrics.local_addr()?, "serving /metrics");
            let router = app.metrics_router();
            Some(tokio::spawn(slipway::server::serve(metrics, None, router, limits, std::future::pending())))
        }
        None => None,
    };
    tracing::info!(address = %listener.local_addr()?, tls = tls.is_some(), "slipway is serving");
    slipway::server::serve(listener, tls, app.router(), limits, shutdown_signal()).await;
    if let Some(metrics_server) = metrics_server {
        metrics_server.abort();
    }
    jobs.shutdown().await;
    if let Err(e) = app.registry.flush_pulls().await {
        tracing::warn!(error = %e, "recording the last pull counts failed");
    }
    app.db.close().await;
    tracing::info!("slipway stopped");
    Ok(())
}

/// Everything the commands create (the database and its -wal and -shm files, blobs,
/// uploads, keys, `slipway scan`'s cache, directories) is for this user alone: password
/// hashes, codes and private images are not for other local users, whatever the
/// inherited umask.
fn restrict_new_files() {
    // SAFETY: umask(2) only sets the process's file mode creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// The demo administrator's password is shown once, on the terminal, never logged.
fn announce_demo((name, password): &(String, String)) {
    eprintln!("Demo store loaded. Sign in as {name} with password {password}");
}

/// Ctrl-C or SIGTERM: stop accepting, let requests in flight finish.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

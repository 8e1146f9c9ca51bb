#![doc = include_str!("../README.md")]

mod catalog;
mod clock;
mod commerce;
mod fulfillment;
mod identity;
mod images;
mod jobs;
mod ledger;
#[cfg(test)]
mod ownership;
mod payment_customers;
mod payouts;
mod registry;
mod scanning;
mod sign_in;
mod sso;
mod throttle;
mod two_factor;
mod vulnerability_policy;

use std::future::Future;
use std::str::FromStr;
use std::time::Duration;

use slipway_types::Clock;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, Connection, Transaction};

pub use catalog::{EventInput, LicenseRecord, ListingEventRecord, ListingRecord, MediaRecord, ProductRecord, PublisherRecord, TierRecord};
pub use commerce::{
    BillingProfileRecord, DueRenewal, Grant, InvoiceLine, InvoiceRecord, KeyClaim, NewInvoice, NewPayment, NewPeriod, NewRefund,
    NewSubscription, PaidPeriod, PaymentMethodRecord, PaymentRecord, ProrationWrite, RefundRecord, RefundWrite, Retier, SubscriptionChange,
    SubscriptionRecord, charge_key_prefix,
};
pub use fulfillment::{CustomerAccount, DeliveryRecord, DueDelivery, NewOrder, OrderRecord, OrderWrite, Payload, WebhookRecord};
pub use identity::{AccessTokenRecord, AccountRecord, InvitationRecord, NewAccessToken, NewAccount, PolicyRecord, RefreshTokenRecord};
pub use jobs::{ClaimedJob, JobCounts, JobRecord, NewJob, ScheduleRecord, following_slot};
pub use ledger::{LedgerBalance, LedgerEntry, LedgerProblem, LedgerReport, NewLedgerTransaction, Posted};
pub use payment_customers::WebhookEventRecord;
pub use payouts::{MarkPaid, MonthTotals, NewStatement, SoldPayment, SoldRefund, StatementRecord};
pub use registry::{CatalogPage, ManifestRecord, NewManifest, PutManifestError, Referrer, Upload};
pub use scanning::{
    AdvisoryCounts, AdvisoryPackage, AdvisoryRow, FeedChange, FeedRevisionRecord, FeedSourceRecord, FeedTotals, FindingRecord,
    ImagePackageRecord, ImageScanRecord, InventoryPart, NewImageScan, NewVulnerabilityEvent, Rematch, VulnerabilityEventRecord,
    vulnerability_ids,
};
pub use sign_in::{EmailChange, Mail, NewSession, OutboxMessage, PasswordReset, SessionRecord};
pub use sso::{NewSsoLogin, SsoIdentity, SsoLogin};
pub use throttle::{Attempt, AttemptPolicy};
pub use two_factor::{ChallengeRecord, TwoFactorRecord, TwoFactorRule};
pub use vulnerability_policy::{ClassRecord, ExceptionRecord, NoticeChanges, NoticeRecord, PolicyListing, ReleasedFinding};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("database: {0}")]
    Sqlx(sqlx::Error),
    /// Text the database cannot hold: PostgreSQL refuses NUL characters in text, which
    /// SQLite stores. The input is at fault, not the database: an `Invalid` request.
    #[error("text the database cannot store: {0}")]
    BadText(String),
    #[error("database migration: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("{0}")]
    Conflict(String),
    #[error("unsupported database URL {0:?}: use sqlite://PATH or postgres://...")]
    UnsupportedUrl(String),
    /// A storage step run inside a database transaction failed; the transaction was rolled back.
    #[error("{0}")]
    Storage(String),
    /// A ledger transaction refused before anything was written: unbalanced, too few or
    /// too many entries, a zero entry, an unknown currency. The caller's input is at fault.
    #[error("{0}")]
    Ledger(String),
}

impl DbError {
    /// What kind of failure this is at every surface. BadText is the caller's input, so
    /// it is `Invalid` like any other content rule, not a separate 400.
    pub fn kind(&self) -> slipway_types::ErrorKind {
        use slipway_types::ErrorKind;
        match self {
            DbError::BadText(_) | DbError::Ledger(_) => ErrorKind::Invalid,
            DbError::Conflict(_) => ErrorKind::Conflict,
            DbError::Sqlx(_) | DbError::Migrate(_) | DbError::UnsupportedUrl(_) | DbError::Storage(_) => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod kind_tests {
    use super::{DbError, PutManifestError};
    use slipway_types::ErrorKind;

    #[test]
    fn every_error_has_the_kind_its_surfaces_answer() {
        let cases = [
            (DbError::Sqlx(sqlx::Error::RowNotFound), ErrorKind::Internal),
            (DbError::BadText("nul".into()), ErrorKind::Invalid),
            (DbError::Migrate(sqlx::migrate::MigrateError::VersionMissing(1)), ErrorKind::Internal),
            (DbError::Conflict("taken".into()), ErrorKind::Conflict),
            (DbError::UnsupportedUrl("mysql://".into()), ErrorKind::Internal),
            (DbError::Storage("disk".into()), ErrorKind::Internal),
            (DbError::Ledger("unbalanced".into()), ErrorKind::Invalid),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error:?}");
        }
        assert_eq!(PutManifestError::MissingBlob("sha256:a".into()).kind(), ErrorKind::Invalid);
        assert_eq!(PutManifestError::MissingManifest("sha256:a".into()).kind(), ErrorKind::Invalid);
        assert_eq!(PutManifestError::Db(DbError::Conflict("x".into())).kind(), ErrorKind::Conflict);
    }
}

impl From<sqlx::Error> for DbError {
    fn from(e: sqlx::Error) -> DbError {
        /// SQLSTATE character_not_in_repertoire: a NUL, or bytes invalid in the encoding.
        const CHARACTER_NOT_IN_REPERTOIRE: &str = "22021";
        match &e {
            sqlx::Error::Database(db) if db.code().as_deref() == Some(CHARACTER_NOT_IN_REPERTOIRE) => {
                DbError::BadText(db.message().to_owned())
            }
            _ => DbError::Sqlx(e),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The metadata database: it connects, migrates and hands out one handle per domain
/// (`registry()`, `identity()`, `catalog()`, `scanning()`, `jobs()`, `ledger()`, and `images()`, the
/// registry's read-only view of what images repositories hold). Each domain service holds
/// only its own handle, and each handle's queries touch only its domain's tables (checked
/// by `ownership::every_query_touches_only_its_domains_tables`), so no domain writes
/// another's rows behind its back.
#[derive(Clone)]
pub struct Db {
    shared: Shared,
}

mod shared {
    use super::{Backend, Clock};
    use sqlx::AnyPool;

    /// What every handle shares: a read pool and a write pool (the same pool on
    /// PostgreSQL), the backend and the clock. Public only so that handles can deref to
    /// it; it is not nameable outside the crate and exposes nothing but the clock.
    #[derive(Clone)]
    pub struct Shared {
        pub(crate) read: AnyPool,
        pub(crate) write: AnyPool,
        pub(crate) backend: Backend,
        /// Every time the database records comes from here, never from the system.
        pub(crate) clock: Clock,
    }

    impl Shared {
        pub fn clock(&self) -> &Clock {
            &self.clock
        }

        pub fn backend(&self) -> Backend {
            self.backend
        }
    }
}

use shared::Shared;

impl std::ops::Deref for Db {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.shared
    }
}

/// Declares a domain handle: a cheap clone of the shared pools that derefs to them (so
/// query bodies read `self.read`, `self.write`), with only its own domain's methods.
macro_rules! handle {
    ($(#[$doc:meta])* $name:ident, $getter:ident) => {
        $(#[$doc])*
        #[derive(Clone)]
        pub struct $name(Shared);

        impl std::ops::Deref for $name {
            type Target = Shared;
            fn deref(&self) -> &Shared {
                &self.0
            }
        }

        impl Db {
            pub fn $getter(&self) -> $name {
                $name(self.shared.clone())
            }
        }
    };
}

handle!(
    /// Repositories, blobs, uploads, manifests, tags, references, GC tombstones and the
    /// registry's own pull counts.
    RegistryDb,
    registry
);
handle!(
    /// What images repositories hold, read-only: the registry's read model, for the
    /// catalog (versions of a listing) and security (what to scan). Only the registry
    /// writes these tables.
    ImagesDb,
    images
);
handle!(
    /// Accounts, organizations, tokens, sessions, email codes, the mail outbox, sign-in
    /// throttling, entitlements and repository policies.
    IdentityDb,
    identity
);
handle!(
    /// Publishers, listings, tiers, media and license agreements.
    CatalogDb,
    catalog
);
handle!(
    /// Advisory feeds, layer reports, image inventories, findings and vulnerability events.
    ScanningDb,
    scanning
);
handle!(
    /// The job queue.
    JobsDb,
    jobs
);
handle!(
    /// Billing profiles, payment methods, subscriptions and their periods, payments,
    /// invoices, refunds and idempotency keys.
    CommerceDb,
    commerce
);
handle!(
    /// The double-entry ledger of money movements.
    LedgerDb,
    ledger
);

impl RegistryDb {
    /// The registry's read-only view, for code that only reads images.
    pub fn images(&self) -> ImagesDb {
        ImagesDb(self.0.clone())
    }
}

/// SQLite creates a new database 0644 less the umask, and its -wal and -shm files with the
/// database's mode: readable by every local user, while it holds password hashes and the
/// mail queue. Creating the file 0600 first keeps all three private, whatever the umask.
fn create_private_sqlite_file(url: &str) -> Result<(), DbError> {
    let rest = url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).unwrap_or_default();
    let path = rest.split('?').next().unwrap_or_default();
    if path.is_empty() || path.contains(":memory:") || path.starts_with("file:") {
        return Ok(());
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    match options.open(path) {
        Ok(_) => Ok(()),
        // An existing database keeps its mode; a missing directory is sqlx's error to give.
        Err(e) if matches!(e.kind(), std::io::ErrorKind::AlreadyExists | std::io::ErrorKind::NotFound) => Ok(()),
        Err(e) => Err(DbError::Sqlx(sqlx::Error::Io(e))),
    }
}

impl Db {
    /// Connects and brings the schema up to date. `sqlite://PATH` creates the file.
    pub async fn connect(url: &str) -> Result<Db, DbError> {
        sqlx::any::install_default_drivers();
        let backend = if url.starts_with("sqlite:") {
            Backend::Sqlite
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Backend::Postgres
        } else {
            return Err(DbError::UnsupportedUrl(url.to_owned()));
        };
        let db = match backend {
            Backend::Sqlite => {
                let url = if url.contains('?') { url.to_owned() } else { format!("{url}?mode=rwc") };
                create_private_sqlite_file(&url)?;
                let options = AnyConnectOptions::from_str(&url)?;
                // One writer: SQLite serializes writes anyway, and queueing them in the pool
                // is cheaper than retrying on SQLITE_BUSY.
                let write = sqlite_pool(1).connect_with(options.clone()).await?;
                sqlx::query("PRAGMA journal_mode = WAL").execute(&write).await?;
                let read = sqlite_pool(8).connect_with(options).await?;
                Db { shared: Shared { read, write, backend, clock: Clock::system() } }
            }
            Backend::Postgres => {
                let pool = pool_options(16).connect(url).await?;
                Db { shared: Shared { read: pool.clone(), write: pool, backend, clock: Clock::system() } }
            }
        };
        db.migrate().await?;
        Ok(db)
    }

    /// The same database, recording times from `clock`.
    pub fn with_clock(mut self, clock: Clock) -> Db {
        self.shared.clock = clock;
        self
    }

    pub fn clock(&self) -> &Clock {
        &self.clock
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    async fn migrate(&self) -> Result<(), DbError> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("migrations/sqlite").run(&self.write).await?,
            Backend::Postgres => sqlx::migrate!("migrations/postgres").run(&self.write).await?,
        }
        Ok(())
    }

    /// A trivial round trip, for readiness checks.
    pub async fn ping(&self) -> Result<(), DbError> {
        sqlx::query("SELECT 1").execute(&self.read).await?;
        Ok(())
    }

    pub async fn close(&self) {
        self.write.close().await;
        self.read.close().await;
    }

    /// Writes a consistent copy of a SQLite database to `path` (`VACUUM INTO`: one read
    /// transaction, so writers go on meanwhile and none of their half-done work is in the
    /// copy), for `slipway backup`. PostgreSQL's counterpart is `pg_dump` with
    /// `RegistryDb::recorded_blobs_in_exported_snapshot`.
    pub async fn copy_sqlite_into(&self, path: &std::path::Path) -> Result<(), DbError> {
        if self.backend != Backend::Sqlite {
            return Err(DbError::Conflict("only a SQLite database is copied by VACUUM".into()));
        }
        let path = path.to_str().ok_or_else(|| DbError::Conflict(format!("{} is not UTF-8", path.display())))?;
        sqlx::query("VACUUM INTO $1").bind(path).execute(&self.read).await?;
        Ok(())
    }
}

/// Whether the database at `url` holds no tables yet (a fresh one for `slipway restore`),
/// looked at without migrating it.
pub async fn database_is_empty(url: &str) -> Result<bool, DbError> {
    sqlx::any::install_default_drivers();
    let mut connection = sqlx::AnyConnection::connect(url).await?;
    let sql = if url.starts_with("sqlite:") {
        "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"
    } else {
        "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema()"
    };
    let (tables,): (i64,) = sqlx::query_as(sql).fetch_one(&mut connection).await?;
    connection.close().await?;
    Ok(tables == 0)
}

impl Shared {
    /// Starts a write transaction. Single-statement writes skip this and run on
    /// `self.write` directly: they are atomic on their own, and on SQLite the pool's one
    /// connection already queues them.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, DbError> {
        Ok(match self.backend {
            Backend::Sqlite => self.write.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.write.begin().await?,
        })
    }

    /// Runs `step` (a storage action) inside a write transaction begun by the caller,
    /// rolling back if it fails.
    pub(crate) async fn inside<F, Fut, E>(tx: Transaction<'static, Any>, step: F) -> Result<(), DbError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<(), E>>,
        E: std::fmt::Display,
    {
        match step().await {
            Ok(()) => {
                tx.commit().await?;
                Ok(())
            }
            Err(e) => {
                tx.rollback().await?;
                Err(DbError::Storage(e.to_string()))
            }
        }
    }
}

/// A connection used this recently is handed out without a check.
const TRUSTED_IDLE: Duration = Duration::from_secs(1);

/// What both backends' pools share. sqlx by default pings every connection it hands out:
/// one more round trip to PostgreSQL, or hand-off to SQLite's connection thread, for
/// every statement, which doubled the cost of a page read afresh. As HikariCP does, a
/// connection that was in use moments ago is taken as alive, and one idle for longer is
/// pinged first and replaced if the ping fails (a restarted PostgreSQL).
fn pool_options(max: u32) -> AnyPoolOptions {
    AnyPoolOptions::new()
        .max_connections(max)
        .acquire_timeout(Duration::from_secs(30))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| Box::pin(async move { Ok(meta.idle_for < TRUSTED_IDLE || conn.ping().await.is_ok()) }))
}

/// Every SQLite connection's settings. Memory-mapped I/O (`mmap_size`) stays off: each
/// connection maps the file for itself, so once the product pages had all been read the
/// process's RSS held the database once per connection (bench/search.sh over 100,000
/// products: 517 MiB after start, 1,312 MiB after one walk, the heap unchanged). Pages are
/// read with `pread` from the OS page cache into each connection's 2 MB page cache; the
/// searches the mapping once sped up are answered from memory now.
const SQLITE_PRAGMAS: [&str; 4] =
    ["PRAGMA busy_timeout = 10000", "PRAGMA synchronous = NORMAL", "PRAGMA foreign_keys = ON", "PRAGMA mmap_size = 0"];

fn sqlite_pool(max: u32) -> AnyPoolOptions {
    pool_options(max).after_connect(|conn, _| {
        Box::pin(async move {
            // busy_timeout lets a second process (e.g. `slipway gc`) wait its turn;
            // synchronous=NORMAL is durable across process crashes in WAL mode. No mmap
            // (`SQLITE_PRAGMAS` says why).
            for pragma in SQLITE_PRAGMAS {
                sqlx::query(pragma).execute(&mut *conn).await?;
            }
            Ok(())
        })
    })
}

/// The rows of a multi-row `VALUES` list, numbered from `$1`: `($1, $2), ($3, $4)` for
/// 2 rows of 2 columns. A batch written in one statement instead of one per row: on
/// SQLite each statement is a round trip to the connection's thread, on PostgreSQL to the
/// server, and that round trip is most of a small insert's cost. Callers bound the rows so
/// that `rows * cols` stays under both databases' parameter limit (`MAX_PARAMETERS`).
pub(crate) fn values_list(rows: usize, cols: usize) -> String {
    assert!(rows > 0 && cols > 0 && rows * cols <= MAX_PARAMETERS, "{rows} rows of {cols} columns");
    let mut out = String::with_capacity(rows * (cols * 6 + 4));
    for row in 0..rows {
        if row > 0 {
            out.push_str(", ");
        }
        out.push('(');
        for col in 0..cols {
            if col > 0 {
                out.push_str(", ");
            }
            out.push_str(&format!("${}", row * cols + col + 1));
        }
        out.push(')');
    }
    out
}

/// The most parameters one statement takes: SQLite's default limit (32,766) is the
/// smaller of the two (PostgreSQL's is 65,535).
pub(crate) const MAX_PARAMETERS: usize = 32_766;

/// The parameters a multi-row statement is given at most; longer batches are split. Far
/// under `MAX_PARAMETERS` because binding is quadratic on SQLite: the driver looks up each
/// parameter's name, and SQLite finds a name by walking the list of them. At 2,000
/// parameters a statement that lookup was a fifth of a renewal's CPU (perf); at 256 it is
/// lost in the noise, and a statement still carries 12 to 64 rows.
pub(crate) const BATCH_PARAMETERS: usize = 256;

/// The time the query tests pass where callers pass the Clock's.
#[cfg(test)]
pub(crate) fn now_ms() -> i64 {
    Clock::system().now_ms()
}

/// Fresh databases for the query tests: SQLite always, and PostgreSQL too when
/// `SLIPWAY_TEST_POSTGRES_URL` names a server (tests/e2e/cargo-postgres-s3.sh sets it).
/// Each comes with what removes it when dropped: SQLite's temporary directory, or the
/// PostgreSQL database itself.
#[cfg(any(test, feature = "testing"))]
pub async fn test_databases() -> Vec<(Db, TestHome)> {
    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.expect("SQLite opens");
    let mut dbs = vec![(sqlite, TestHome::Sqlite { _dir: dir })];
    if let Ok(url) = std::env::var("SLIPWAY_TEST_POSTGRES_URL") {
        let database = TestPostgres::create(&url, "db").await;
        let db = Db::connect(&database.url).await.expect("PostgreSQL opens");
        dbs.push((db, TestHome::Postgres { _database: database }));
    }
    dbs
}

/// Where a test database lives, removed with this value: kept only to be dropped.
#[cfg(any(test, feature = "testing"))]
pub enum TestHome {
    Sqlite { _dir: tempfile::TempDir },
    Postgres { _database: TestPostgres },
}

/// A database of its own for one test on the `SLIPWAY_TEST_POSTGRES_URL` server, dropped
/// with this value, after the test or while its panic unwinds: a server the suites run
/// against again and again would otherwise collect one database per test and run.
#[cfg(any(test, feature = "testing"))]
#[doc(hidden)]
pub struct TestPostgres {
    /// The new database's URL.
    pub url: String,
    admin_url: String,
    name: String,
}

#[cfg(any(test, feature = "testing"))]
impl TestPostgres {
    /// Creates a database named PREFIX, the process id, a counter and the time: unique
    /// among tests running at once, in this process and others.
    pub async fn create(admin_url: &str, prefix: &str) -> TestPostgres {
        use sqlx::{Connection, Executor};
        use std::sync::atomic::{AtomicU32, Ordering};
        static COUNTER: AtomicU32 = AtomicU32::new(0);
        let name = format!("{prefix}{}_{}_{}", std::process::id(), COUNTER.fetch_add(1, Ordering::SeqCst), Clock::system().now_ms());
        let mut admin = sqlx::PgConnection::connect(admin_url).await.expect("connect to test PostgreSQL");
        admin.execute(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}"))).await.expect("create test database");
        let base = admin_url.rsplit_once('/').map_or(admin_url, |(b, _)| b);
        TestPostgres { url: format!("{base}/{name}"), admin_url: admin_url.to_owned(), name }
    }
}

#[cfg(any(test, feature = "testing"))]
impl Drop for TestPostgres {
    fn drop(&mut self) {
        use sqlx::{Connection, Executor};
        // Drop cannot await, and it runs on the test's runtime (often the current-thread
        // one, which cannot block on a future of its own): a thread with a runtime of its
        // own drops the database while this waits, so it is gone when the test ends.
        // WITH (FORCE) ends the connections the test's pool may still hold.
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || -> Result<(), String> {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| e.to_string())?;
            runtime.block_on(async {
                let mut admin = sqlx::PgConnection::connect(&admin_url).await.map_err(|e| e.to_string())?;
                admin
                    .execute(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")))
                    .await
                    .map_err(|e| e.to_string())?;
                Ok(())
            })
        })
        .join();
        // Reported, not a panic: a panic here, during a failing test's unwinding, would
        // abort the whole test binary.
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(e)) => eprintln!("test database {} not dropped: {e}", self.name),
            Err(_) => eprintln!("test database {} not dropped: the dropping thread panicked", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    fn migration_names(dialect: &str) -> BTreeSet<String> {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join(dialect);
        std::fs::read_dir(dir).expect("migrations folder").map(|e| e.expect("entry").file_name().to_string_lossy().into_owned()).collect()
    }

    #[test]
    fn values_list_numbers_rows_then_columns() {
        assert_eq!(super::values_list(1, 1), "($1)");
        assert_eq!(super::values_list(2, 3), "($1, $2, $3), ($4, $5, $6)");
    }

    /// A statement past the parameter limit is refused before either database sees it.
    #[test]
    #[should_panic(expected = "rows of")]
    fn values_list_refuses_more_parameters_than_a_statement_takes() {
        super::values_list(super::MAX_PARAMETERS, 2);
    }

    /// Every SQLite connection, reader or writer, has the pragmas: memory-mapped I/O off
    /// (each connection mapped the database for itself and RSS grew by the database once
    /// per connection), the rest on.
    #[tokio::test]
    async fn sqlite_connections_read_without_mmap() {
        let (db, _home) = super::test_databases().await.swap_remove(0);
        for pool in [&db.shared.read, &db.shared.write] {
            let pragma = |name: &'static str| sqlx::query_scalar::<_, i64>(name).fetch_one(pool);
            assert_eq!(pragma("PRAGMA mmap_size").await.unwrap(), 0);
            assert_eq!(pragma("PRAGMA busy_timeout").await.unwrap(), 10_000);
            assert_eq!(pragma("PRAGMA foreign_keys").await.unwrap(), 1);
            assert_eq!(pragma("PRAGMA synchronous").await.unwrap(), 1, "NORMAL");
        }
    }

    /// Both dialects must evolve in lockstep: same numbered migrations.
    #[test]
    fn migrations_match_between_dialects() {
        assert_eq!(migration_names("sqlite"), migration_names("postgres"));
    }

    /// Apart from the declared seams (types, collation, identity columns, and the former
    /// search index, whose migrations are named `*_search*.sql`), the two schemas are the
    /// same text.
    #[test]
    fn schemas_differ_only_in_declared_seams() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations");
        for name in migration_names("sqlite").into_iter().filter(|n| !n.contains("_search")) {
            let read = |d: &str| std::fs::read_to_string(dir.join(d).join(&name)).expect("migration");
            let normalise = |s: String| {
                s.replace("BYTEA", "BLOB").replace(" COLLATE \"C\"", "").replace("BIGSERIAL PRIMARY KEY", "INTEGER PRIMARY KEY")
            };
            assert_eq!(normalise(read("sqlite")), normalise(read("postgres")), "{name}");
        }
    }

    #[tokio::test]
    async fn sqlite_opens_in_wal_mode() {
        let dir = tempfile::tempdir().unwrap();
        let db = super::Db::connect(&format!("sqlite://{}", dir.path().join("t.db").display())).await.unwrap();
        let mode: String = sqlx::query_scalar("PRAGMA journal_mode").fetch_one(&db.read).await.unwrap();
        assert_eq!(mode, "wal");
        assert!(super::Db::connect("mysql://x").await.is_err());
    }

    /// Connections are handed out without a ping while in steady use; one left idle is
    /// checked first, so a PostgreSQL that dropped the pool's connections (a restart, an
    /// administrator) costs no request an error.
    #[tokio::test]
    async fn connections_dropped_while_idle_are_replaced_unnoticed() {
        use sqlx::{Connection, Executor};
        for (db, _dir) in super::test_databases().await {
            let busy = || futures::future::try_join_all((0..4).map(|_| db.ping()));
            busy().await.expect("the pool opens connections");
            if db.backend() == super::Backend::Postgres {
                let name: String = sqlx::query_scalar("SELECT current_database()::text").fetch_one(&db.read).await.unwrap();
                let url = std::env::var("SLIPWAY_TEST_POSTGRES_URL").unwrap();
                let mut admin = sqlx::PgConnection::connect(&url).await.unwrap();
                let killed = admin
                    .fetch_all(sqlx::AssertSqlSafe(format!(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"
                    )))
                    .await
                    .unwrap();
                assert!(!killed.is_empty(), "the pool's connections were found and ended");
            }
            tokio::time::sleep(super::TRUSTED_IDLE + std::time::Duration::from_millis(300)).await;
            busy().await.expect("idle connections are checked, and dead ones replaced");
            busy().await.expect("and the pool keeps working");
        }
    }

    /// A NUL reaching PostgreSQL is the caller's bad input (a 400 at the edges), not a
    /// database failure (a 500); SQLite stores it.
    #[tokio::test]
    async fn text_postgres_cannot_store_is_bad_text() {
        for (db, _dir) in super::test_databases().await {
            let read = db.catalog().publisher("acme\0corp").await;
            match db.backend() {
                super::Backend::Sqlite => assert!(matches!(read, Ok(None)), "{read:?}"),
                super::Backend::Postgres => assert!(matches!(read, Err(super::DbError::BadText(_))), "{read:?}"),
            }
        }
    }
}

//! Configuration: defaults, then `slipway.toml`, then `SLIPWAY_*` variables (`__` nests),
//! then command-line flags. Only the binary reads configuration; library crates get typed
//! values built from it.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::Figment;
use figment::providers::{Env, Format, Serialized, Toml};
use serde::{Deserialize, Serialize};

const DEFAULT_FILE: &str = "slipway.toml";

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Address the HTTP server listens on.
    pub listen: SocketAddr,
    /// Directory for the embedded database, blobs and keys.
    pub data_dir: PathBuf,
    /// `sqlite://...` or `postgres://...`; defaults to a SQLite file in `data_dir`.
    pub database_url: Option<Secret>,
    pub storage: StorageConfig,
    pub gc: GcConfig,
    pub auth: AuthConfig,
    /// Reverse proxies (CIDRs or addresses) whose forwarding header names the client, for
    /// everything that counts by address; from any other peer the header is ignored.
    pub trusted_proxies: Vec<String>,
    /// The header those proxies set: `x-forwarded-for`, or `forwarded` (RFC 7239).
    pub client_address_header: String,
    pub sign_in: SignInConfig,
    pub rate_limit: RateLimitConfig,
    pub mail: MailConfig,
    pub log: LogConfig,
    pub traces: TracesConfig,
    pub jobs: JobsConfig,
    pub scan: ScanConfig,
    pub feed: FeedConfig,
    pub http: HttpConfig,
    pub tls: TlsConfig,
    pub metrics: MetricsConfig,
    pub commerce: CommerceSection,
    /// OpenID Connect providers people may sign in with (`[[sso]]`, one table each).
    pub sso: Vec<SsoConfig>,
    pub testing: TestingConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: "127.0.0.1:5000".parse().expect("valid address"),
            data_dir: PathBuf::from("slipway-data"),
            database_url: None,
            storage: StorageConfig::default(),
            gc: GcConfig::default(),
            auth: AuthConfig::default(),
            trusted_proxies: Vec::new(),
            client_address_header: "x-forwarded-for".into(),
            sign_in: SignInConfig::default(),
            rate_limit: RateLimitConfig::default(),
            mail: MailConfig::default(),
            log: LogConfig::default(),
            traces: TracesConfig::default(),
            jobs: JobsConfig::default(),
            scan: ScanConfig::default(),
            feed: FeedConfig::default(),
            http: HttpConfig::default(),
            tls: TlsConfig::default(),
            metrics: MetricsConfig::default(),
            commerce: CommerceSection::default(),
            sso: Vec::new(),
            testing: TestingConfig::default(),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct StorageConfig {
    /// When set, blobs go to this S3-compatible bucket instead of `data_dir`.
    pub s3: Option<S3Section>,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct S3Section {
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    pub endpoint: Option<String>,
    pub access_key_id: String,
    pub secret_access_key: Secret,
    #[serde(default)]
    pub prefix: String,
    /// Redirect blob downloads to presigned URLs, so bytes flow from the bucket directly.
    #[serde(default)]
    pub redirect_downloads: bool,
    #[serde(default = "default_presign_secs")]
    pub presign_ttl_secs: u64,
    /// The largest blob the bucket copies server-side in one request when an upload is
    /// committed: 5 GiB on AWS S3; larger blobs are streamed into a multipart upload. Lower
    /// it for a server with a smaller limit.
    #[serde(default = "default_max_copy_bytes")]
    pub max_copy_bytes: u64,
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

fn default_presign_secs() -> u64 {
    600
}

fn default_max_copy_bytes() -> u64 {
    slipway_storage::SINGLE_COPY_LIMIT
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcConfig {
    /// Unreferenced blobs younger than this are kept.
    pub grace_secs: u64,
    /// Upload sessions idle longer than this are removed.
    pub upload_ttl_secs: u64,
    /// How often `serve` collects garbage; 0 turns the scheduled run off.
    pub interval_secs: u64,
}

impl Default for GcConfig {
    fn default() -> Self {
        GcConfig { grace_secs: 6 * 3600, upload_ttl_secs: 24 * 3600, interval_secs: 3600 }
    }
}

impl GcConfig {
    pub fn settings(&self) -> slipway_registry::GcSettings {
        slipway_registry::GcSettings { grace: Duration::from_secs(self.grace_secs), upload_ttl: Duration::from_secs(self.upload_ttl_secs) }
    }
}

/// Outgoing mail (verification links, password resets).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MailConfig {
    /// `smtp://host:port`, `smtp://user:password@host:587?tls=required` or
    /// `smtps://...`. Unset: messages wait in the outbox.
    pub smtp_url: Option<Secret>,
    pub from: String,
    /// Without a mail server, sign-ups count as verified at once: set by `serve --demo`
    /// only, never from a file or the environment (a real store verifies addresses).
    #[serde(skip)]
    pub demo_verifies_sign_ups: bool,
}

impl Default for MailConfig {
    fn default() -> Self {
        MailConfig { smtp_url: None, from: "Slipway <slipway@localhost>".into(), demo_verifies_sign_ups: false }
    }
}

impl MailConfig {
    fn sign_up_verification(&self) -> slipway_auth::SignUpVerification {
        use slipway_auth::SignUpVerification::{AtOnce, Log, Mail};
        match (&self.smtp_url, self.demo_verifies_sign_ups) {
            (Some(_), _) => Mail,
            (None, true) => AtOnce,
            (None, false) => Log,
        }
    }
}

/// Pull (manifest GET) limits; 0 turns a limit off.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateLimitConfig {
    /// Per client address (IPv6 by /64) for anonymous pulls.
    pub anonymous_pulls: u32,
    /// Per account for signed-in pulls of free content (licensed pulls are not limited).
    pub account_pulls: u32,
    pub window_secs: u64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        RateLimitConfig { anonymous_pulls: 0, account_pulls: 0, window_secs: 6 * 3600 }
    }
}

impl RateLimitConfig {
    pub fn settings(&self) -> slipway_registry::RateLimitSettings {
        slipway_registry::RateLimitSettings {
            anonymous_pulls: self.anonymous_pulls,
            account_pulls: self.account_pulls,
            window: Duration::from_secs(self.window_secs),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// Every /v2/ request needs a registry token; access rules apply.
    Enforced,
    /// No authentication at all: only for isolated test setups.
    Open,
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    pub mode: AuthMode,
    /// The `service` (token audience) clients name in token requests.
    pub service: String,
    /// How long registry tokens live: revocations take effect within this time.
    pub token_ttl_secs: u64,
    /// Externally visible base URL, for the token realm behind proxies.
    pub public_url: Option<String>,
    /// Where the token-signing keys live (default: `keys` in the data directory). Replicas
    /// must share it.
    pub keys_dir: Option<PathBuf>,
    /// Who must use two-factor sign-in: `staff` (moderators and administrators) and
    /// `publisher-owners` (owners of organizations with a publisher profile). They set it
    /// up when they next sign in; their passwords no longer work with registry clients.
    pub two_factor_required_for: Vec<TwoFactorGroup>,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "kebab-case")]
pub enum TwoFactorGroup {
    Staff,
    PublisherOwners,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::Enforced,
            service: "slipway".into(),
            token_ttl_secs: 300,
            public_url: None,
            keys_dir: None,
            two_factor_required_for: Vec::new(),
        }
    }
}

impl AuthConfig {
    pub fn settings(&self) -> slipway_auth::AuthSettings {
        slipway_auth::AuthSettings {
            issuer: self.service.clone(),
            service: self.service.clone(),
            token_ttl: Duration::from_secs(self.token_ttl_secs),
            public_url: self.public_url.clone(),
            two_factor: slipway_auth::TwoFactorRule {
                staff: self.two_factor_required_for.contains(&TwoFactorGroup::Staff),
                publisher_owners: self.two_factor_required_for.contains(&TwoFactorGroup::PublisherOwners),
            },
            ..slipway_auth::AuthSettings::default()
        }
    }
}

/// An OpenID Connect provider (authorization code flow with PKCE). Register the redirect
/// URI `PUBLIC_URL/signin/sso/NAME/callback` with it.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SsoConfig {
    /// Its name in URLs: lowercase letters, digits and dashes.
    pub name: String,
    /// The sign-in button says "Sign in with LABEL".
    pub label: String,
    /// The issuer URL; its `/.well-known/openid-configuration` is read at sign-in.
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Secret,
    /// Whether a first sign-in that matches no account (by verified address) creates one.
    #[serde(default = "yes")]
    pub create_accounts: bool,
    /// Accounts linked to this provider cannot sign in with a password (access tokens
    /// still work for tools).
    #[serde(default)]
    pub sso_only: bool,
}

fn yes() -> bool {
    true
}

impl SsoConfig {
    fn provider(&self) -> anyhow::Result<slipway_auth::SsoProvider> {
        let plain = !self.name.is_empty()
            && self.name.len() <= 40
            && self.name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
        anyhow::ensure!(plain, "sso provider name {:?}: use lowercase letters, digits and dashes", self.name);
        anyhow::ensure!(!self.label.trim().is_empty(), "sso provider {:?} needs a label", self.name);
        let web = self.issuer.starts_with("https://") || self.issuer.starts_with("http://");
        anyhow::ensure!(web, "sso provider {:?}: the issuer {:?} is not an http(s) URL", self.name, self.issuer);
        Ok(slipway_auth::SsoProvider {
            name: self.name.clone(),
            label: self.label.clone(),
            issuer: self.issuer.clone(),
            client_id: self.client_id.clone(),
            client_secret: self.client_secret.expose().to_owned(),
            create_accounts: self.create_accounts,
            sso_only: self.sso_only,
        })
    }
}

/// Failed password sign-ins are slowed down by delays that start at 1 s and double, per
/// (user name, client address) and, more loosely, per address; access tokens are never
/// throttled. Password hashing (argon2, 19 MiB each) is bounded.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct SignInConfig {
    /// Attempts per user name and client address before the delays start.
    pub free_attempts: i64,
    /// The first delay; each further attempt doubles it.
    pub first_delay_secs: i64,
    /// The longest delay for a user name and address.
    pub max_delay_secs: i64,
    /// Attempts per client address (IPv6 by /64), across names, before it is slowed down.
    pub address_free_attempts: i64,
    /// The longest delay for an address.
    pub address_max_delay_secs: i64,
    /// Attempts are forgotten after this long without another.
    pub forget_after_secs: i64,
    /// Password hashes computed at once; 0 means twice the CPU count.
    pub hash_permits: usize,
    /// How long a request waits for a hashing permit before it is answered 503.
    pub hash_wait_ms: u64,
}

impl Default for SignInConfig {
    fn default() -> Self {
        let d = slipway_auth::SignInSettings::default();
        SignInConfig {
            free_attempts: d.pair.free,
            first_delay_secs: d.pair.first_delay_ms / 1000,
            max_delay_secs: d.pair.max_delay_ms / 1000,
            address_free_attempts: d.address.free,
            address_max_delay_secs: d.address.max_delay_ms / 1000,
            forget_after_secs: d.pair.forget_ms / 1000,
            hash_permits: d.hash_permits,
            hash_wait_ms: d.hash_wait.as_millis() as u64,
        }
    }
}

impl SignInConfig {
    pub fn settings(&self) -> slipway_auth::SignInSettings {
        let forget_ms = self.forget_after_secs.max(1) * 1000;
        let first_delay_ms = self.first_delay_secs.max(1) * 1000;
        slipway_auth::SignInSettings {
            pair: slipway_db::AttemptPolicy {
                free: self.free_attempts.max(1),
                first_delay_ms,
                max_delay_ms: self.max_delay_secs.max(1) * 1000,
                forget_ms,
            },
            address: slipway_db::AttemptPolicy {
                free: self.address_free_attempts.max(1),
                first_delay_ms,
                max_delay_ms: self.address_max_delay_secs.max(1) * 1000,
                forget_ms,
            },
            hash_permits: self.hash_permits,
            hash_wait: Duration::from_millis(self.hash_wait_ms),
        }
    }
}

impl Config {
    /// The token service's settings: `[auth]` and `[mail]`, the sign-in throttle, and the
    /// trusted proxies (refused at start when one is not a CIDR).
    pub fn auth_settings(&self) -> anyhow::Result<slipway_auth::AuthSettings> {
        Ok(slipway_auth::AuthSettings {
            sign_in: self.sign_in.settings(),
            trusted_proxies: slipway_auth::TrustedProxies::new(&self.trusted_proxies, &self.client_address_header)?,
            sign_up_verification: self.mail.sign_up_verification(),
            sso: self.sso.iter().map(SsoConfig::provider).collect::<anyhow::Result<_>>()?,
            ..self.auth.settings()
        })
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` for people, `json` for log pipelines.
    pub format: String,
    /// A tracing filter, e.g. `info` or `slipway_registry=debug,info`.
    pub filter: String,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig { format: "text".to_owned(), filter: "info".to_owned() }
    }
}

/// Traces of requests and background work, sent to an OpenTelemetry collector over
/// OTLP/HTTP (protobuf): off unless `otlp_endpoint` is set.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracesConfig {
    /// The collector's traces URL, e.g. `http://collector:4318/v1/traces`.
    pub otlp_endpoint: Option<String>,
    /// The share of requests traced when the caller did not decide (0.0 to 1.0); a request
    /// carrying a W3C `traceparent` follows its sampled flag.
    pub sample_ratio: f64,
    /// `service.name` of every span.
    pub service_name: String,
}

impl Default for TracesConfig {
    fn default() -> Self {
        TracesConfig { otlp_endpoint: None, sample_ratio: 1.0, service_name: "slipway".to_owned() }
    }
}

/// The background job queue (image scans, re-assessment after feed changes).
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct JobsConfig {
    /// Jobs this replica runs at once; 0 leaves them to other replicas.
    pub workers: usize,
}

impl Default for JobsConfig {
    fn default() -> Self {
        JobsConfig { workers: 2 }
    }
}

impl JobsConfig {
    pub fn settings(&self) -> slipway_jobs::RunnerSettings {
        slipway_jobs::RunnerSettings { workers: self.workers, ..slipway_jobs::RunnerSettings::default() }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct ScanConfig {
    /// Scan every image manifest when it is pushed.
    pub on_push: bool,
    /// Decompressed bytes read from one layer before its scan fails (a decompression bomb).
    pub max_layer_bytes: u64,
    /// Largest file inside a layer that the analyzer reads (package databases, manifests).
    pub max_file_bytes: u64,
    /// Largest tar metadata entry (GNU long name or link, PAX header) a layer's analysis
    /// holds; the entry it describes is skipped with an issue.
    pub max_header_bytes: u64,
    /// Memory one layer's report may hold (findings, paths, entry hashes, issues); what
    /// does not fit is dropped and the layer is marked incomplete.
    pub max_analysis_bytes: u64,
    /// Packages one layer may list; over it the scan keeps the first and is marked incomplete.
    pub max_packages_per_layer: usize,
    /// Packages one image's inventory may hold; over it the scan is marked incomplete.
    pub max_packages_per_image: usize,
    /// Findings stored per image (the most severe kept); over it the scan is marked incomplete.
    pub max_findings_per_image: usize,
}

impl Default for ScanConfig {
    fn default() -> Self {
        let limits = slipway_scanner::analyzer::Limits::default();
        let inventory = slipway_security::InventoryLimits::default();
        ScanConfig {
            on_push: true,
            max_layer_bytes: limits.max_layer_bytes,
            max_file_bytes: limits.max_file_bytes,
            max_header_bytes: limits.max_header_bytes,
            max_analysis_bytes: limits.max_analysis_bytes,
            max_packages_per_layer: inventory.max_packages_per_layer,
            max_packages_per_image: inventory.max_packages_per_image,
            max_findings_per_image: inventory.max_findings_per_image,
        }
    }
}

impl ScanConfig {
    pub fn inventory_limits(&self) -> slipway_security::InventoryLimits {
        slipway_security::InventoryLimits {
            max_packages_per_layer: self.max_packages_per_layer,
            max_packages_per_image: self.max_packages_per_image,
            max_findings_per_image: self.max_findings_per_image,
        }
    }

    pub fn limits(&self) -> slipway_scanner::analyzer::Limits {
        slipway_scanner::analyzer::Limits {
            max_layer_bytes: self.max_layer_bytes,
            max_file_bytes: self.max_file_bytes,
            max_header_bytes: self.max_header_bytes,
            max_analysis_bytes: self.max_analysis_bytes,
        }
    }
}

/// The OSV vulnerability feed.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct FeedConfig {
    /// `https://`, `http://` or `file://` URLs of OSV JSON files or zip archives, fetched by
    /// `slipway feed sync` and on a schedule in `serve`.
    pub urls: Vec<String>,
    /// How often `serve` syncs the URLs; 0 turns the schedule off.
    pub sync_interval_secs: u64,
}

impl Default for FeedConfig {
    fn default() -> Self {
        FeedConfig { urls: Vec::new(), sync_interval_secs: 6 * 3600 }
    }
}

/// Connection limits of the HTTP server (see `server`); every one is needed against
/// clients that open connections and send nothing, or a byte at a time.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpConfig {
    /// Time a client has to send a whole request head once it has begun one.
    pub header_read_timeout_secs: u64,
    /// Silence allowed on a connection between requests (keep-alive).
    pub idle_timeout_secs: u64,
    /// Silence allowed while a request body is read or a response waits for the client
    /// to take its bytes: not a total, so slow large uploads work while bytes flow.
    pub body_timeout_secs: u64,
    /// Connections open at once; more are answered 503 and closed.
    pub max_connections: usize,
}

impl Default for HttpConfig {
    fn default() -> Self {
        let limits = crate::server::Limits::default();
        HttpConfig {
            header_read_timeout_secs: limits.header_read_timeout.as_secs(),
            idle_timeout_secs: limits.idle_timeout.as_secs(),
            body_timeout_secs: limits.body_timeout.as_secs(),
            max_connections: limits.max_connections,
        }
    }
}

impl HttpConfig {
    pub fn limits(&self) -> crate::server::Limits {
        crate::server::Limits {
            header_read_timeout: Duration::from_secs(self.header_read_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(self.idle_timeout_secs.max(1)),
            body_timeout: Duration::from_secs(self.body_timeout_secs.max(1)),
            max_connections: self.max_connections.max(1),
        }
    }
}

/// Who may read `/metrics`. Unset, it is served on the main listener to loopback peers
/// only (a scraper on the same host, not the world, nor a proxy forwarding the world).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct MetricsConfig {
    /// A separate address serving `/metrics` (only it); the main listener then has none.
    pub listen: Option<SocketAddr>,
    /// A bearer token `/metrics` requires wherever it is served.
    pub token: Option<Secret>,
}

/// HTTPS on the main listener (`tls::Certificate`): both files set, or neither (plain
/// HTTP, for a TLS-terminating proxy in front). Both are read again when either changes.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TlsConfig {
    /// PEM: the server's certificate first, then the intermediates.
    pub cert_file: Option<PathBuf>,
    /// PEM: the private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: Option<PathBuf>,
}

impl TlsConfig {
    /// The certificate and key files, when TLS is on.
    pub fn files(&self) -> anyhow::Result<Option<(&Path, &Path)>> {
        match (&self.cert_file, &self.key_file) {
            (Some(cert), Some(key)) => Ok(Some((cert, key))),
            (None, None) => Ok(None),
            _ => anyhow::bail!("[tls] needs both cert_file and key_file (or neither, for plain HTTP)"),
        }
    }
}

/// The store's money: who takes payments, the platform's fee, the grace period of a failed
/// renewal, and the tax table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct CommerceSection {
    /// `sandbox` (no money moves; Stripe's test cards behave as documented) or `stripe`.
    pub provider: String,
    /// Stripe's API (only for `stripe`): its base URL and secret key.
    pub stripe_api_base: String,
    pub stripe_secret_key: Option<Secret>,
    /// The signing secret of Stripe's webhooks to this store (`whsec_...`).
    pub stripe_webhook_secret: Option<Secret>,
    /// The platform's fee on sales before tax, in basis points (2000 = 20%).
    pub platform_fee_bps: u32,
    /// Per-publisher fees replacing it: `{ acme = 1500 }`.
    pub publisher_fee_bps: std::collections::BTreeMap<String, u32>,
    /// Publishers who refund the unused part of a period when a customer cancels at once.
    pub prorated_refunds: Vec<String>,
    /// Days a past-due subscription keeps access while its payment is retried.
    pub grace_days: u32,
    /// The seller's country (ISO 3166 alpha-2): an EU business buyer elsewhere in the EU
    /// is reverse-charged.
    pub seller_country: String,
    /// `[[commerce.tax]] country = "DE", rate_bps = 1900, name = "VAT"` (optionally
    /// `region = "CA"`); prices are before tax.
    pub tax: Vec<slipway_commerce::TaxRate>,
    /// How often renewals, dunning retries and trial ends are run; 0 turns it off.
    pub renewal_interval_secs: u64,
    /// Whether fulfillment webhooks may go to loopback, private and link-local addresses
    /// (only for rehearsals where the ISV's endpoint is on the same network).
    pub webhooks_to_private_addresses: bool,
}

impl Default for CommerceSection {
    fn default() -> Self {
        let defaults = slipway_commerce::CommerceConfig::default();
        CommerceSection {
            provider: "sandbox".into(),
            stripe_api_base: "https://api.stripe.com".into(),
            stripe_secret_key: None,
            stripe_webhook_secret: None,
            platform_fee_bps: defaults.platform_fee_bps,
            publisher_fee_bps: Default::default(),
            prorated_refunds: Vec::new(),
            grace_days: defaults.grace_days,
            seller_country: "US".into(),
            tax: Vec::new(),
            renewal_interval_secs: 60,
            webhooks_to_private_addresses: false,
        }
    }
}

impl CommerceSection {
    /// The service's settings, checked: fees at most 100%, a well-formed tax table.
    pub fn settings(&self) -> anyhow::Result<slipway_commerce::CommerceConfig> {
        let fees = std::iter::once(&self.platform_fee_bps).chain(self.publisher_fee_bps.values());
        anyhow::ensure!(fees.into_iter().all(|bps| *bps <= 10_000), "commerce fees are at most 10000 basis points");
        anyhow::ensure!(self.grace_days <= 60, "commerce.grace_days is at most 60");
        Ok(slipway_commerce::CommerceConfig {
            platform_fee_bps: self.platform_fee_bps,
            publisher_fee_bps: self.publisher_fee_bps.clone(),
            prorated_refunds: self.prorated_refunds.clone(),
            grace_days: self.grace_days,
            tax: slipway_commerce::TaxTable::new(self.tax.clone(), &self.seller_country)?,
            stripe_webhook_secret: self.stripe_webhook_secret.as_ref().map(|s| s.expose().to_owned()),
        })
    }

    /// The configured payment provider; Stripe keeps its customers in `customers`.
    pub fn provider(&self, customers: slipway_db::CommerceDb) -> anyhow::Result<std::sync::Arc<dyn slipway_commerce::PaymentProvider>> {
        match self.provider.as_str() {
            "sandbox" => Ok(std::sync::Arc::new(slipway_commerce::SandboxProvider)),
            "stripe" => {
                let key = self
                    .stripe_secret_key
                    .as_ref()
                    .ok_or_else(|| anyhow::anyhow!("commerce.provider = \"stripe\" needs commerce.stripe_secret_key"))?;
                Ok(std::sync::Arc::new(slipway_commerce::stripe::StripeProvider::new(
                    self.stripe_api_base.clone(),
                    key.expose().to_owned(),
                    customers,
                )?))
            }
            other => anyhow::bail!("commerce.provider is sandbox or stripe, not {other:?}"),
        }
    }
}

/// Settings for rehearsing a deployment, never for a real one. `App::build` refuses to
/// start with `clock = true` and a payment provider that moves real money (Stripe with a
/// live key): a moved clock would charge renewals early for real.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct TestingConfig {
    /// The test clock: time runs ahead of the system time by an offset stored in the
    /// database (so every replica agrees), which `slipway admin clock advance` moves
    /// forward; renewals, deadlines, schedules and delayed jobs follow it. Logged loudly at
    /// start.
    pub clock: bool,
}

/// A value that must never reach a log: prints as `***`.
#[derive(Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"***\"")
    }
}

/// Values given on the command line; `None` leaves the lower layers' value.
#[derive(Debug, Default, Serialize)]
pub struct Overrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub data_dir: Option<PathBuf>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub database_url: Option<String>,
}

impl Config {
    /// Loads the layers. `file` defaults to `slipway.toml` in the working directory,
    /// which may be absent; an explicitly named file must exist. Also returns warnings
    /// about `SLIPWAY_*` variables that name no setting, for the caller to log once
    /// logging is set up.
    pub fn load(file: Option<&Path>, overrides: &Overrides) -> anyhow::Result<(Config, Vec<String>)> {
        let mut figment = Figment::from(Serialized::defaults(Config::default()));
        match file {
            Some(path) => {
                anyhow::ensure!(path.exists(), "config file {} does not exist", path.display());
                figment = figment.merge(Toml::file_exact(path));
            }
            None if Path::new(DEFAULT_FILE).exists() => figment = figment.merge(Toml::file_exact(DEFAULT_FILE)),
            None => {}
        }
        let config: Config = figment.merge(settings_env()).merge(Serialized::defaults(overrides)).extract()?;
        Ok((config, unknown_env_warnings()))
    }

    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(url) => url.expose().to_owned(),
            None => format!("sqlite://{}", self.data_dir.join("slipway.db").display()),
        }
    }

    /// The effective configuration with secrets replaced, for `slipway config`.
    pub fn redacted(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or_default();
        if self.database_url.is_some() {
            value["database_url"] = redact_url(&self.database_url()).into();
        }
        if let Some(s3) = value.pointer_mut("/storage/s3/secret_access_key") {
            *s3 = "***".into();
        }
        if self.metrics.token.is_some() {
            value["metrics"]["token"] = "***".into();
        }
        if let Some(smtp) = &self.mail.smtp_url {
            value["mail"]["smtp_url"] = redact_url(smtp.expose()).into();
        }
        for key in ["stripe_secret_key", "stripe_webhook_secret"] {
            if let Some(secret) = value.pointer_mut(&format!("/commerce/{key}")).filter(|v| !v.is_null()) {
                *secret = "***".into();
            }
        }
        value
    }
}

/// How a `SLIPWAY_*` variable (prefix stripped, lowercase, `__` nesting) is treated.
#[derive(Debug, PartialEq, Eq)]
enum EnvKey {
    /// Names a setting (or a section whose fields serde checks itself).
    Setting,
    /// `slipway scan`'s registry credentials share the prefix but are not configuration.
    ScanCredential,
    /// Set by Kubernetes for a Service, e.g. `SLIPWAY_PORT=tcp://10.0.0.1:5000` for one
    /// named `slipway`, in every pod of its namespace: not ours, ignored silently.
    ServiceLink,
    /// Names nothing: warned about and ignored, so a variable from elsewhere cannot stop
    /// the start (in the TOML file an unknown key stays an error).
    Unknown,
}

fn classify_env_key(key: &str) -> EnvKey {
    static DEFAULTS: std::sync::OnceLock<serde_json::Value> = std::sync::OnceLock::new();
    let defaults = DEFAULTS.get_or_init(|| serde_json::to_value(Config::default()).unwrap_or_default());
    let key = key.to_ascii_lowercase();
    if key == "scan_username" || key == "scan_password" {
        return EnvKey::ScanCredential;
    }
    // Walk the defaults: a path leaving the known sections names nothing. A path reaching
    // a value or an unset optional section (`storage.s3`) is left to serde to judge.
    let mut node = defaults;
    let mut known = true;
    for part in key.split("__") {
        match node.as_object() {
            Some(fields) => match fields.get(part) {
                Some(child) => node = child,
                None => {
                    known = false;
                    break;
                }
            },
            None => break,
        }
    }
    if known {
        EnvKey::Setting
    } else if is_service_link(&key) {
        EnvKey::ServiceLink
    } else {
        EnvKey::Unknown
    }
}

/// Kubernetes' service-link variables (Docker's links use the same names), of a Service
/// named `slipway` (the prefix stripped: `port`, `port_5000_tcp_addr`, `service_host`...)
/// or `slipway-<name>` (`<name>_service_port`...).
fn is_service_link(key: &str) -> bool {
    let protocol = |s: &str| matches!(s, "tcp" | "udp" | "sctp");
    let number = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let parts: Vec<&str> = key.split('_').collect();
    for (i, part) in parts.iter().enumerate() {
        let rest = &parts[i + 1..];
        let link = match *part {
            // <name>_SERVICE_HOST, <name>_SERVICE_PORT, <name>_SERVICE_PORT_<port name>
            "service" => matches!(rest, ["host"] | ["port", ..]),
            // <name>_PORT, <name>_PORT_<n>_<proto>, <name>_PORT_<n>_<proto>_ADDR|PORT|PROTO
            "port" => match rest {
                [] => true,
                [n, p] => number(n) && protocol(p),
                [n, p, "addr" | "port" | "proto"] => number(n) && protocol(p),
                _ => false,
            },
            _ => false,
        };
        if link {
            return true;
        }
    }
    false
}

/// The `SLIPWAY_*` variables that configure settings.
fn settings_env() -> Env {
    Env::prefixed("SLIPWAY_").filter(|key| classify_env_key(key.as_str()) == EnvKey::Setting).split("__")
}

fn unknown_env_warnings() -> Vec<String> {
    let mut names: Vec<String> = Env::prefixed("SLIPWAY_")
        .iter()
        .filter(|(key, _)| classify_env_key(key.as_str()) == EnvKey::Unknown)
        .map(|(key, _)| format!("SLIPWAY_{}", key.as_str().to_ascii_uppercase()))
        .collect();
    names.sort();
    names.into_iter().map(|name| format!("ignoring environment variable {name}: it names no setting")).collect()
}

/// Hides the password of a `scheme://user:password@host` URL.
fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}://{user}:***@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
#[allow(clippy::result_large_err)] // figment::Jail's error type, not ours
mod tests {
    use super::*;

    /// A figment jail with only the variables the test sets, not the test run's own
    /// (`SLIPWAY_TEST_POSTGRES_URL` would be warned about as naming no setting).
    fn isolated(test: impl FnOnce(&mut figment::Jail) -> figment::Result<()>) {
        figment::Jail::expect_with(|jail| {
            jail.clear_env();
            test(jail)
        });
    }

    #[test]
    fn layers_apply_in_order() {
        isolated(|jail| {
            jail.create_file("slipway.toml", "listen = \"127.0.0.1:6000\"\ndata_dir = \"from-file\"\n[gc]\ngrace_secs = 5\n")?;
            jail.set_env("SLIPWAY_DATA_DIR", "from-env");
            jail.set_env("SLIPWAY_GC__UPLOAD_TTL_SECS", "7");
            let flags = Overrides { database_url: Some("postgres://u:hunter2@h/db".into()), ..Default::default() };
            let (config, warnings) = Config::load(None, &flags).expect("loads");
            assert!(warnings.is_empty(), "{warnings:?}");
            assert_eq!(config.listen.port(), 6000);
            assert_eq!(config.data_dir, PathBuf::from("from-env"));
            assert_eq!((config.gc.grace_secs, config.gc.upload_ttl_secs), (5, 7));
            assert_eq!(config.database_url(), "postgres://u:hunter2@h/db");
            let shown = config.redacted().to_string();
            assert!(!shown.contains("hunter2"), "{shown}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_are_errors() {
        isolated(|jail| {
            jail.create_file("slipway.toml", "lisen = \"127.0.0.1:6000\"\n")?;
            assert!(Config::load(None, &Overrides::default()).is_err());
            Ok(())
        });
    }

    /// Kubernetes sets `SLIPWAY_PORT=tcp://10.0.0.1:5000` and friends in every pod of a
    /// namespace with a Service named `slipway`; they used to stop the start with
    /// "unknown field".
    #[test]
    fn kubernetes_service_links_are_ignored() {
        isolated(|jail| {
            for (name, value) in [
                ("SLIPWAY_PORT", "tcp://10.0.0.1:5000"),
                ("SLIPWAY_PORT_5000_TCP", "tcp://10.0.0.1:5000"),
                ("SLIPWAY_PORT_5000_TCP_ADDR", "10.0.0.1"),
                ("SLIPWAY_PORT_5000_TCP_PORT", "5000"),
                ("SLIPWAY_PORT_5000_TCP_PROTO", "tcp"),
                ("SLIPWAY_SERVICE_HOST", "10.0.0.1"),
                ("SLIPWAY_SERVICE_PORT", "5000"),
                ("SLIPWAY_SERVICE_PORT_HTTP", "5000"),
                // A Service named `slipway-postgres` in the same namespace.
                ("SLIPWAY_POSTGRES_SERVICE_HOST", "10.0.0.2"),
                ("SLIPWAY_POSTGRES_PORT_5432_TCP_ADDR", "10.0.0.2"),
            ] {
                jail.set_env(name, value);
            }
            jail.set_env("SLIPWAY_GC__GRACE_SECS", "9");
            let (config, warnings) = Config::load(None, &Overrides::default()).expect("service links do not stop the start");
            assert_eq!(config.gc.grace_secs, 9, "real settings still apply");
            assert!(warnings.is_empty(), "service links are not warned about: {warnings:?}");
            Ok(())
        });
    }

    /// Any other variable with the prefix that names no setting is warned about, not fatal.
    #[test]
    fn unknown_env_vars_warn_and_the_start_proceeds() {
        isolated(|jail| {
            jail.set_env("SLIPWAY_LISEN", "127.0.0.1:6000");
            jail.set_env("SLIPWAY_GC__GRACE", "5");
            jail.set_env("SLIPWAY_SCAN_USERNAME", "robot");
            jail.set_env("SLIPWAY_DATA_DIR", "from-env");
            let (config, warnings) = Config::load(None, &Overrides::default()).expect("unknown env vars do not stop the start");
            assert_eq!(config.data_dir, PathBuf::from("from-env"));
            assert_eq!(config.listen, Config::default().listen);
            assert_eq!(warnings.len(), 2, "{warnings:?}");
            assert!(warnings[0].contains("SLIPWAY_GC__GRACE"), "{warnings:?}");
            assert!(warnings[1].contains("SLIPWAY_LISEN"), "{warnings:?}");
            Ok(())
        });
    }

    #[test]
    fn unknown_keys_in_the_file_stay_errors_with_service_links_set() {
        isolated(|jail| {
            jail.set_env("SLIPWAY_PORT", "tcp://10.0.0.1:5000");
            jail.create_file("slipway.toml", "[gc]\ngrace = 5\n")?;
            let error = Config::load(None, &Overrides::default()).expect_err("unknown nested key in the file");
            assert!(error.to_string().contains("grace"), "{error}");
            Ok(())
        });
    }

    #[test]
    fn the_test_clock_is_off_unless_asked_for() {
        isolated(|jail| {
            let (config, _) = Config::load(None, &Overrides::default()).expect("loads");
            assert!(!config.testing.clock);
            jail.create_file("slipway.toml", "[testing]\nclock = true\n")?;
            assert!(Config::load(None, &Overrides::default()).expect("loads").0.testing.clock);
            jail.create_file("slipway.toml", "")?;
            jail.set_env("SLIPWAY_TESTING__CLOCK", "true");
            let (config, warnings) = Config::load(None, &Overrides::default()).expect("loads");
            assert!(config.testing.clock && !warnings.iter().any(|w| w.contains("TESTING")), "{warnings:?}");
            Ok(())
        });
    }

    /// The commerce section from TOML: the tax table as an array of tables, fees checked,
    /// the demo's table well-formed, and a live provider's key never printed.
    #[test]
    fn the_commerce_section_reads_its_tax_table_and_refuses_bad_fees() {
        // Where Stripe would keep its customers: made, never queried here.
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        let db = runtime.block_on(slipway_db::Db::connect("sqlite::memory:")).expect("database");
        isolated(|jail| {
            jail.create_file(
                "slipway.toml",
                "[commerce]\nplatform_fee_bps = 1500\nseller_country = \"IE\"\n[commerce.publisher_fee_bps]\nacme = 1000\n\
                 [[commerce.tax]]\ncountry = \"DE\"\nrate_bps = 1900\nname = \"VAT\"\n\
                 [[commerce.tax]]\ncountry = \"US\"\nregion = \"CA\"\nrate_bps = 725\nname = \"Sales tax\"\n",
            )?;
            let (config, warnings) = Config::load(None, &Overrides::default()).expect("loads");
            assert!(warnings.is_empty(), "{warnings:?}");
            let settings = config.commerce.settings().expect("valid");
            assert_eq!((settings.platform_fee_bps, settings.publisher_fee_bps["acme"], settings.grace_days), (1500, 1000, 7));
            assert_eq!(config.commerce.tax.len(), 2);
            assert_eq!(config.commerce.provider(db.commerce()).expect("sandbox").name(), "sandbox");
            jail.create_file("slipway.toml", "[commerce]\nplatform_fee_bps = 10001\n")?;
            assert!(Config::load(None, &Overrides::default()).expect("loads").0.commerce.settings().is_err());
            jail.create_file("slipway.toml", "[commerce]\nprovider = \"stripe\"\n")?;
            let error = Config::load(None, &Overrides::default()).expect("loads").0.commerce.provider(db.commerce()).err().expect("no key");
            assert!(error.to_string().contains("stripe_secret_key"), "{error}");
            jail.create_file("slipway.toml", "[commerce]\nprovider = \"stripe\"\nstripe_secret_key = \"sk_live_hunter2\"\n")?;
            let (config, _) = Config::load(None, &Overrides::default()).expect("loads");
            assert!(config.commerce.provider(db.commerce()).expect("stripe").is_live());
            assert!(!config.redacted().to_string().contains("hunter2"));
            Ok(())
        });
        let demo = CommerceSection { tax: crate::demo::tax_table(), ..CommerceSection::default() };
        assert!(demo.settings().is_ok(), "the demo's tax table is well-formed");
    }

    #[test]
    fn secrets_do_not_print() {
        assert_eq!(format!("{:?}", Secret::new("hunter2")), "\"***\"");
    }
}

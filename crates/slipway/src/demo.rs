//! Demo content: a small, realistic store (publishers, ~30 products with logos, tiers,
//! license agreements, and real multi-platform images pushed into the registry), so a
//! newcomer's first `serve --demo` shows a living store.

use std::io::Write as _;

use anyhow::Context;
use futures::StreamExt;
use serde_json::json;
use sha2::{Digest as _, Sha256};
use slipway_auth::access::SiteRole;
use slipway_catalog::media::MediaKind;
use slipway_catalog::{
    Access, Actor, Badge, License, ListingInput, ProductType, PublisherInput, REGISTRY_PLACEHOLDER, RunsOn, SearchParams, Tier,
};
use slipway_oci::{Algorithm, Digest, Reference, RepoName, Tag};
use slipway_registry::Chunk;

use crate::App;

struct DemoPublisher {
    org: &'static str,
    name: &'static str,
    legal: &'static str,
    verified: bool,
    story: &'static str,
}

const PUBLISHERS: &[DemoPublisher] = &[
    DemoPublisher {
        org: "nimbus",
        name: "Nimbus Data",
        legal: "Nimbus Data, Inc.",
        verified: true,
        story: "Nimbus Data builds databases that scale from a laptop to a planet. Founded in 2014, trusted by 4,000 companies.",
    },
    DemoPublisher {
        org: "northwind",
        name: "Northwind Networks",
        legal: "Northwind Networks GmbH",
        verified: true,
        story: "Networking software for container platforms: load balancers, service meshes and VPN gateways.",
    },
    DemoPublisher {
        org: "ironclad",
        name: "Ironclad Security",
        legal: "Ironclad Security Ltd.",
        verified: true,
        story: "Ironclad secures software supply chains, from build to runtime.",
    },
    DemoPublisher {
        org: "tidepool",
        name: "Tidepool Analytics",
        legal: "Tidepool Analytics LLC",
        verified: false,
        story: "Observability and analytics for teams that ship every day.",
    },
    DemoPublisher {
        org: "bluefin",
        name: "Bluefin Labs",
        legal: "Bluefin Labs S.A.",
        verified: true,
        story: "Developer tools and runtimes, open source at heart.",
    },
    DemoPublisher {
        org: "openforge",
        name: "OpenForge Community",
        legal: "OpenForge Foundation",
        verified: false,
        story: "Community-maintained base images and web servers.",
    },
];

/// Pricing shapes of the demo products.
#[derive(Clone, Copy)]
enum Plan {
    /// One free tier anyone can pull.
    Open,
    /// One free tier for signed-in users.
    Members,
    /// A free licensed developer tier and a paid enterprise tier.
    Freemium(Price),
    /// A free licensed developer tier, a paid team tier and a dearer enterprise tier, billed
    /// alike, so a subscription can move up and down between them.
    Tiered(Price, Price),
    /// Only a paid tier.
    Paid(Price),
}

/// A demo tier's price: amount in minor units of currency, per period, with a free trial.
#[derive(Clone, Copy)]
struct Price {
    amount: i64,
    currency: &'static str,
    period: &'static str,
    trial_days: i64,
}

impl Price {
    const fn usd(amount: i64, period: &'static str) -> Price {
        Price { amount, currency: "USD", period, trial_days: 0 }
    }

    const fn in_eur(self) -> Price {
        Price { currency: "EUR", ..self }
    }

    const fn trial(self, trial_days: i64) -> Price {
        Price { trial_days, ..self }
    }
}

const fn monthly(amount: i64) -> Price {
    Price::usd(amount, "month")
}

const fn yearly(amount: i64) -> Price {
    Price::usd(amount, "year")
}

const fn one_time(amount: i64) -> Price {
    Price::usd(amount, "one_time")
}

struct DemoProduct {
    org: &'static str,
    name: &'static str,
    category: &'static str,
    short: &'static str,
    tags: &'static [&'static str],
    about: &'static str,
    kind: ProductType,
    plan: Plan,
    versions: &'static [&'static str],
    certified: bool,
    featured: bool,
}

macro_rules! product {
    ($org:literal, $name:literal, $cat:literal, $short:literal, [$($tag:literal),*], $about:literal, $kind:ident, $plan:expr, [$($v:literal),+], $cert:literal, $feat:literal) => {
        DemoProduct { org: $org, name: $name, category: $cat, short: $short, tags: &[$($tag),*], about: $about, kind: ProductType::$kind, plan: $plan, versions: &[$($v),+], certified: $cert, featured: $feat }
    };
}

const PRODUCTS: &[DemoProduct] = &[
    product!(
        "nimbus",
        "Nimbus DB",
        "databases",
        "A distributed SQL database with automatic sharding and point-in-time recovery.",
        ["sql", "database", "distributed"],
        "Nimbus DB speaks the PostgreSQL wire protocol, shards tables automatically and keeps three replicas of every range. Backups are continuous, restores are point-in-time.",
        Image,
        Plan::Freemium(monthly(19900).trial(14)),
        ["7.2", "7.1", "6.9"],
        true,
        true
    ),
    product!(
        "nimbus",
        "Nimbus Cache",
        "databases",
        "An in-memory key-value cache compatible with the Redis protocol, with persistence.",
        ["cache", "redis", "key-value"],
        "Nimbus Cache is a drop-in cache for Redis clients with snapshots, replication and eviction policies tuned for containers.",
        Image,
        Plan::Tiered(monthly(1900), monthly(4900)),
        ["3.4", "3.3"],
        true,
        false
    ),
    product!(
        "nimbus",
        "Nimbus Graph",
        "databases",
        "A property graph database with a Cypher-compatible query language.",
        ["graph", "cypher", "database"],
        "Store connected data and query it with patterns. Nimbus Graph runs in one container for development and scales out for production.",
        Image,
        Plan::Freemium(yearly(299000)),
        ["2.0", "1.9"],
        false,
        false
    ),
    product!(
        "nimbus",
        "Nimbus Timeseries",
        "databases",
        "Time-series storage for metrics and events, with downsampling and retention.",
        ["timeseries", "metrics", "database"],
        "Ingest millions of points per second; query with SQL extensions for windows and gaps.",
        Image,
        Plan::Open,
        ["1.8"],
        false,
        false
    ),
    product!(
        "northwind",
        "Northwind Gateway",
        "networking",
        "An API gateway and load balancer with automatic TLS and rate limiting.",
        ["gateway", "load-balancer", "tls"],
        "Northwind Gateway routes HTTP, gRPC and WebSocket traffic, issues certificates and enforces quotas per client.",
        Image,
        Plan::Freemium(monthly(9900).in_eur()),
        ["5.1", "5.0"],
        true,
        true
    ),
    product!(
        "northwind",
        "Northwind Mesh",
        "networking",
        "A lightweight service mesh with mutual TLS and traffic shifting.",
        ["service-mesh", "mtls", "networking"],
        "Encrypt traffic between services, shift it gradually between versions, and see every call.",
        Image,
        Plan::Paid(yearly(499000).trial(30)),
        ["2.3"],
        true,
        false
    ),
    product!(
        "northwind",
        "Northwind VPN",
        "networking",
        "A WireGuard VPN gateway for clusters, with single sign-on.",
        ["vpn", "wireguard", "sso"],
        "Connect developers to private clusters with WireGuard and your identity provider.",
        Image,
        Plan::Members,
        ["1.4"],
        false,
        false
    ),
    product!(
        "northwind",
        "Northwind DNS",
        "networking",
        "An authoritative and caching DNS server configured from labels.",
        ["dns", "networking"],
        "Serve DNS for your services straight from container labels.",
        Image,
        Plan::Open,
        ["0.9"],
        false,
        false
    ),
    product!(
        "ironclad",
        "Ironclad Scanner",
        "security",
        "Scans images for vulnerabilities and secrets before they ship.",
        ["vulnerability", "scanner", "cve", "sbom"],
        "Ironclad Scanner finds known CVEs in OS and language packages, leaked secrets and risky configuration, and writes SBOMs.",
        Image,
        Plan::Freemium(monthly(14900).trial(14)),
        ["4.0", "3.9"],
        true,
        true
    ),
    product!(
        "ironclad",
        "Ironclad Vault",
        "security",
        "Secrets management with dynamic credentials and audit logging.",
        ["secrets", "vault", "encryption"],
        "Issue short-lived database credentials, encrypt data in transit and keep an audit trail of every access.",
        Image,
        Plan::Paid(monthly(39900)),
        ["2.1"],
        true,
        false
    ),
    product!(
        "ironclad",
        "Ironclad Runtime Guard",
        "security",
        "Runtime threat detection for containers using eBPF.",
        ["runtime", "ebpf", "detection"],
        "Detect shells in containers, unexpected network connections and privilege escalation as they happen.",
        Agent,
        Plan::Freemium(monthly(9900)),
        ["1.2"],
        false,
        false
    ),
    product!(
        "ironclad",
        "Ironclad Volume Encryption",
        "storage",
        "A volume plugin that encrypts container data at rest.",
        ["encryption", "volume", "plugin"],
        "Transparent encryption for Docker volumes with keys kept in your KMS.",
        Plugin,
        Plan::Paid(one_time(19900)),
        ["1.0"],
        true,
        false
    ),
    product!(
        "tidepool",
        "Tidepool Metrics",
        "monitoring",
        "Prometheus-compatible metrics with long-term storage and dashboards.",
        ["prometheus", "metrics", "dashboards"],
        "Scrape, store and graph metrics for years without running a Prometheus fleet.",
        Image,
        Plan::Freemium(monthly(7900).in_eur().trial(14)),
        ["3.0", "2.9"],
        false,
        true
    ),
    product!(
        "tidepool",
        "Tidepool Logs",
        "monitoring",
        "Log aggregation with full-text search and alerting.",
        ["logs", "search", "alerting"],
        "Ship container logs with one agent and search them in seconds.",
        Image,
        Plan::Freemium(monthly(5900)),
        ["2.2"],
        false,
        false
    ),
    product!(
        "tidepool",
        "Tidepool Tracing",
        "monitoring",
        "Distributed tracing compatible with OpenTelemetry.",
        ["tracing", "opentelemetry", "apm"],
        "Follow a request across services and find the slow span.",
        Image,
        Plan::Members,
        ["1.5"],
        false,
        false
    ),
    product!(
        "tidepool",
        "Tidepool Agent",
        "monitoring",
        "A host agent that collects container metrics and logs.",
        ["agent", "metrics", "logs"],
        "One small agent per host for metrics, logs and traces.",
        Agent,
        Plan::Open,
        ["3.0"],
        false,
        false
    ),
    product!(
        "tidepool",
        "Tidepool Insights",
        "analytics",
        "Product analytics you can self-host: funnels, retention and cohorts.",
        ["analytics", "funnels", "events"],
        "Understand how people use your product without sending data to a third party.",
        Image,
        Plan::Paid(yearly(249000).in_eur()),
        ["1.1"],
        false,
        false
    ),
    product!(
        "tidepool",
        "Tidepool Warehouse",
        "analytics",
        "A columnar analytics engine for event data.",
        ["olap", "columnar", "sql"],
        "Query billions of events with SQL in under a second.",
        Image,
        Plan::Freemium(monthly(34900)),
        ["0.8"],
        false,
        false
    ),
    product!(
        "bluefin",
        "Bluefin Node Runtime",
        "programming-languages",
        "A hardened Node.js runtime image with security updates every week.",
        ["node", "javascript", "runtime"],
        "Node.js LTS on a minimal base, rebuilt weekly with the latest fixes.",
        Image,
        Plan::Open,
        ["22", "20"],
        true,
        false
    ),
    product!(
        "bluefin",
        "Bluefin Python",
        "programming-languages",
        "Python runtime images, slim and reproducible.",
        ["python", "runtime"],
        "CPython builds with pip, slim and full variants, rebuilt on every security release.",
        Image,
        Plan::Open,
        ["3.13", "3.12"],
        true,
        false
    ),
    product!(
        "bluefin",
        "Bluefin Go Builder",
        "programming-languages",
        "A Go toolchain image for reproducible builds.",
        ["go", "golang", "builder"],
        "Build static Go binaries reproducibly, with module caching.",
        Image,
        Plan::Open,
        ["1.23"],
        false,
        false
    ),
    product!(
        "bluefin",
        "Bluefin CI Runner",
        "devops-tools",
        "A self-hosted CI runner that executes jobs in containers.",
        ["ci", "runner", "pipelines"],
        "Run pipelines on your own hardware with caching and secrets built in.",
        Image,
        Plan::Freemium(monthly(2900)),
        ["4.2"],
        false,
        true
    ),
    product!(
        "bluefin",
        "Bluefin Artifact Proxy",
        "devops-tools",
        "A caching proxy for npm, PyPI, Maven and Go modules.",
        ["proxy", "cache", "packages"],
        "Speed up builds and survive registry outages with a local package cache.",
        Image,
        Plan::Members,
        ["2.0"],
        false,
        false
    ),
    product!(
        "bluefin",
        "Bluefin Deploy",
        "devops-tools",
        "GitOps deployments for Docker hosts and swarms.",
        ["gitops", "deploy", "cd"],
        "Declare your services in git; Bluefin Deploy keeps hosts in sync.",
        Image,
        Plan::Paid(one_time(9900)),
        ["1.3"],
        false,
        false
    ),
    product!(
        "openforge",
        "OpenForge Debian Base",
        "base-images",
        "A minimal Debian base image, rebuilt daily.",
        ["debian", "base", "minimal"],
        "Debian stable with only what is needed to run, signed and rebuilt daily.",
        Image,
        Plan::Open,
        ["12", "11"],
        false,
        false
    ),
    product!(
        "openforge",
        "OpenForge Alpine Base",
        "base-images",
        "A tiny Alpine Linux base image.",
        ["alpine", "base", "minimal"],
        "Alpine Linux for the smallest images.",
        Image,
        Plan::Open,
        ["3.20"],
        false,
        false
    ),
    product!(
        "openforge",
        "OpenForge Web Server",
        "web-servers",
        "A fast HTTP server and reverse proxy with sane defaults.",
        ["http", "reverse-proxy", "web"],
        "Serve static sites and proxy applications with HTTP/2 and automatic compression.",
        Image,
        Plan::Open,
        ["1.27", "1.26"],
        false,
        false
    ),
    product!(
        "openforge",
        "OpenForge Mail Relay",
        "messaging",
        "An SMTP relay for applications, with DKIM signing.",
        ["smtp", "mail", "dkim"],
        "Send application mail reliably with retries, DKIM and rate limits.",
        Image,
        Plan::Open,
        ["0.5"],
        false,
        false
    ),
    product!(
        "northwind",
        "Northwind Message Queue",
        "messaging",
        "A durable message broker with AMQP and MQTT.",
        ["amqp", "mqtt", "queue", "broker"],
        "Queues, topics and streams with replication and exactly-once delivery.",
        Image,
        Plan::Freemium(monthly(12900).trial(7)),
        ["3.8"],
        true,
        false
    ),
    product!(
        "nimbus",
        "Nimbus Object Store",
        "storage",
        "S3-compatible object storage you can run anywhere.",
        ["s3", "object-storage", "storage"],
        "An S3 API over local disks with erasure coding and replication.",
        Image,
        Plan::Freemium(monthly(15900)),
        ["2.6"],
        false,
        false
    ),
    product!(
        "bluefin",
        "Bluefin CRM",
        "business-software",
        "A customer relationship manager for small teams.",
        ["crm", "sales", "business"],
        "Contacts, deals and pipelines, self-hosted.",
        Image,
        Plan::Paid(monthly(4900).trial(14)),
        ["1.0"],
        false,
        false
    ),
    product!(
        "openforge",
        "OpenForge Application Server",
        "application-infrastructure",
        "A Java application server for Jakarta EE applications.",
        ["java", "jakarta", "application-server"],
        "Run Jakarta EE applications with clustering and hot deploys.",
        Image,
        Plan::Open,
        ["10.1"],
        false,
        false
    ),
];

/// Adds `count` generated products from 20 generated publishers, for benchmarks at
/// scale. Their tiers name repositories that hold no images.
pub async fn load_synthetic(app: &App, count: usize) -> anyhow::Result<()> {
    let host = REGISTRY_PLACEHOLDER;
    const ADJECTIVES: &[&str] = &[
        "rapid", "secure", "quiet", "elastic", "atomic", "golden", "silent", "bright", "polar", "swift", "lunar", "solid", "vivid",
        "urban", "noble", "prime", "clever", "steady", "cosmic", "modular",
    ];
    const NOUNS: &[&str] = &[
        "database", "gateway", "cache", "proxy", "scanner", "broker", "runner", "vault", "tracker", "indexer", "router", "monitor",
        "builder", "store", "engine", "mesh", "agent", "server", "pipeline", "notebook",
    ];
    const DOMAINS: &[&str] = &[
        "payments",
        "logistics",
        "healthcare",
        "retail",
        "gaming",
        "media",
        "telemetry",
        "search",
        "billing",
        "identity",
        "messaging",
        "analytics",
        "backups",
        "images",
        "video",
        "maps",
        "weather",
        "energy",
        "finance",
        "education",
    ];
    let admin = app.auth.create_user("synthetic-admin", "synthetic@store.example", &slipway_auth::random_secret(), SiteRole::Admin).await?;
    let viewer = app.catalog.viewer(admin).await?;
    let logo = app.catalog.upload_media(&viewer, MediaKind::Logo, logo_png("Vendor", 3)).await?;
    for v in 0..20 {
        let org = format!("vendor{v:02}");
        let input = PublisherInput {
            display_name: format!("Vendor {v:02} {}", DOMAINS[v % DOMAINS.len()]),
            legal_name: format!("Vendor {v:02} Ltd."),
            website: format!("https://{org}.example"),
            phone: "+1 555 0100 300".into(),
            email: format!("store@{org}.example"),
            logo: Some(logo.clone()),
            story: "Generated for benchmarks.".into(),
        };
        app.catalog.save_publisher(&viewer, &org, &input, "http://localhost").await?;
    }
    let viewer = app.catalog.viewer(viewer.account).await?;
    for i in 0..count {
        let (a, n, d) = (ADJECTIVES[i % 20], NOUNS[(i / 20) % 20], DOMAINS[(i / 400) % 20]);
        let org = format!("vendor{:02}", i % 20);
        let name = format!("{} {} {i}", capitalise(a), capitalise(n));
        let slug = slipway_catalog::text::slugify(&name);
        let input = ListingInput {
            name,
            logo: Some(logo.clone()),
            short_description: format!("A {a} {n} for {d} teams, built for containers."),
            category: slipway_catalog::CATEGORIES[i % slipway_catalog::CATEGORIES.len()].0.into(),
            search_tags: vec![a.into(), n.into(), d.into()],
            long_description: format!(
                "The {a} {n} keeps {d} workloads fast and observable. It scales horizontally and ships with dashboards."
            ),
            screenshots: Vec::new(),
            support_url: format!("https://{org}.example/support"),
            support_email: String::new(),
            support_info: String::new(),
            sla: String::new(),
            install_instructions: format!("docker pull {host}/{org}/{slug}"),
            product_type: ProductType::Image,
            runs_on: Some(RunsOn::Enterprise),
            public_scan_summary: true,
            tiers: vec![Tier {
                slug: "community".into(),
                name: "Community".into(),
                description: String::new(),
                amount: if i % 3 == 0 { 2900 } else { 0 },
                currency: "USD".into(),
                billing_period: if i % 3 == 0 { "month".into() } else { "free".into() },
                trial_days: 0,
                access: if i % 3 == 0 { Access::Licensed } else { Access::Public },
                repository: format!("{org}/{slug}"),
                tags: Vec::new(),
            }],
        };
        app.catalog.save_listing(&viewer, &org, None, &input).await?;
        if i % 7 == 0 {
            app.catalog.set_badges(Actor::Operator, &org, &slug, &[Badge::Certified]).await?;
        }
        app.catalog.set_published(Actor::Operator, &org, &slug, true).await?;
        if i % 10_000 == 9_999 {
            eprintln!("{} synthetic products", i + 1);
        }
    }
    Ok(())
}

fn capitalise(word: &str) -> String {
    let mut chars = word.chars();
    chars.next().map(|c| c.to_uppercase().chain(chars).collect()).unwrap_or_default()
}

/// The demo store's tax table (used by `serve --demo` when none is configured): VAT in a
/// few EU states and the UK, sales tax in two US states, GST in Australia.
pub fn tax_table() -> Vec<slipway_commerce::TaxRate> {
    let rate = |country: &str, region: Option<&str>, rate_bps, name: &str| slipway_commerce::TaxRate {
        country: country.into(),
        region: region.map(Into::into),
        rate_bps,
        name: name.into(),
    };
    vec![
        rate("DE", None, 1900, "VAT"),
        rate("FR", None, 2000, "VAT"),
        rate("NL", None, 2100, "VAT"),
        rate("IE", None, 2300, "VAT"),
        rate("GB", None, 2000, "VAT"),
        rate("US", Some("CA"), 725, "Sales tax"),
        rate("US", Some("NY"), 400, "Sales tax"),
        rate("AU", None, 1000, "GST"),
    ]
}

/// Whether the store already has content (then the demo is not loaded again).
pub async fn store_is_empty(app: &App) -> anyhow::Result<bool> {
    Ok(app.catalog.search(&SearchParams::default(), 0, 1).await?.total == 0 && app.catalog.publisher("nimbus").await?.is_none())
}

/// Loads the demo store; returns the demo administrator's name and password.
pub async fn load(app: &App) -> anyhow::Result<(String, String)> {
    // The store front fills in the host each reader reaches, as its pull commands do.
    let host = REGISTRY_PLACEHOLDER;
    let password = slipway_auth::random_secret()[..20].to_owned();
    let admin = app
        .auth
        .create_user("admin", "admin@store.example", &password, SiteRole::Admin)
        .await
        .context("creating the demo administrator")?;
    let viewer = app.catalog.viewer(admin).await?;
    for p in PUBLISHERS {
        let logo = app.catalog.upload_media(&viewer, MediaKind::Logo, logo_png(p.name, 0)).await?;
        let input = PublisherInput {
            display_name: p.name.into(),
            legal_name: p.legal.into(),
            website: format!("https://{}.example", p.org),
            phone: "+1 555 0100 200".into(),
            email: format!("store@{}.example", p.org),
            logo: Some(logo),
            story: p.story.into(),
        };
        app.catalog.save_publisher(&viewer, p.org, &input, "http://localhost").await?;
        app.db.catalog().verify_publisher_email(p.org, &input.email).await?;
        if p.verified {
            app.catalog.set_publisher_verified(Actor::Operator, p.org, true).await?;
        }
    }
    // A viewer whose roles include the organizations just created.
    let viewer = app.catalog.viewer(viewer.account).await?;
    for (i, p) in PRODUCTS.iter().enumerate() {
        let slug = slipway_catalog::text::slugify(p.name);
        let tiers = tiers(p, &slug);
        for tier in &tiers {
            push_images(app, &tier.repository, p.versions, i).await.with_context(|| format!("pushing {}", tier.repository))?;
        }
        let input = ListingInput {
            name: p.name.into(),
            logo: Some(app.catalog.upload_media(&viewer, MediaKind::Logo, logo_png(p.name, i + 1)).await?),
            short_description: p.short.into(),
            category: p.category.into(),
            search_tags: p.tags.iter().map(|t| t.to_string()).collect(),
            long_description: format!(
                "## Overview\n\n{}\n\n## Features\n\n- Runs as a non-root user\n- Configured through environment variables\n- Health checks included\n",
                p.about
            ),
            screenshots: if p.featured {
                let mut shots = Vec::new();
                for (view, seed) in [(ScreenshotView::Dashboard, i), (ScreenshotView::Terminal, i + 7)] {
                    shots.push(app.catalog.upload_media(&viewer, MediaKind::Screenshot, screenshot_png(p.name, view, seed)).await?);
                }
                shots
            } else {
                Vec::new()
            },
            support_url: format!("https://{}.example/support", p.org),
            support_email: format!("support@{}.example", p.org),
            support_info: "Documentation, community forum and ticketed support for subscribers.".into(),
            sla: "Business hours support; first response within one business day for paid tiers.".into(),
            install_instructions: format!(
                "Pull the image (sign in first with `docker login {host}` if the tier needs it):\n\n```\ndocker pull {host}/{}:{}\n```\n\nThen run it:\n\n```\ndocker run -d --name {slug} {host}/{}:{}\n```\n\n`docker logs {slug}` shows its banner, and `docker ps` shows it healthy.\n",
                tiers[0].repository, p.versions[0], tiers[0].repository, p.versions[0]
            ),
            product_type: p.kind,
            runs_on: Some(RunsOn::Enterprise),
            public_scan_summary: true,
            tiers,
        };
        app.catalog.save_listing(&viewer, p.org, None, &input).await.with_context(|| format!("listing {}", p.name))?;
        if !matches!(p.plan, Plan::Open | Plan::Members) {
            let license = License {
                version: 0,
                url: format!("https://{}.example/legal/eula", p.org),
                text: format!(
                    "{} END USER LICENSE AGREEMENT\n\nBy pulling or running this software you agree to use it under the terms of your tier. Redistribution is not permitted.",
                    p.name.to_uppercase()
                ),
            };
            app.catalog.set_license(&viewer, p.org, &slug, &license).await?;
        }
        if p.certified {
            app.catalog.set_badges(Actor::Operator, p.org, &slug, &[Badge::Certified]).await?;
        }
        if p.featured {
            app.catalog.set_featured(Actor::Operator, p.org, &slug, true).await?;
        }
        app.catalog.set_published(Actor::Operator, p.org, &slug, true).await?;
        app.db.registry().add_pulls(&format!("{}/{slug}", p.org), popularity(p.name)).await?;
    }
    app.catalog.count_pulls().await?;
    Ok(("admin".into(), password))
}

fn tiers(p: &DemoProduct, slug: &str) -> Vec<Tier> {
    let free = Price { amount: 0, currency: "USD", period: "free", trial_days: 0 };
    let tier = |tier_slug: &str, name: &str, description: &str, price: Price, access: Access, repository: String| Tier {
        slug: tier_slug.into(),
        name: name.into(),
        description: description.into(),
        amount: price.amount,
        currency: price.currency.into(),
        billing_period: price.period.into(),
        trial_days: price.trial_days,
        access,
        repository,
        tags: Vec::new(),
    };
    let main = format!("{}/{slug}", p.org);
    match p.plan {
        Plan::Open => vec![tier("community", "Community", "Free for everyone.", free, Access::Public, main)],
        Plan::Members => vec![tier("standard", "Standard", "Free for signed-in users.", free, Access::LoggedIn, main)],
        Plan::Freemium(price) => vec![
            tier("developer", "Developer", "Free for development and evaluation.", free, Access::Licensed, main),
            tier(
                "enterprise",
                "Enterprise",
                "Production use with support and SLA.",
                price,
                Access::Licensed,
                format!("{}/{slug}-enterprise", p.org),
            ),
        ],
        Plan::Tiered(team, enterprise) => vec![
            tier("developer", "Developer", "Free for development and evaluation.", free, Access::Licensed, main),
            tier("team", "Team", "Production use for one team, with support.", team, Access::Licensed, format!("{}/{slug}-team", p.org)),
            tier(
                "enterprise",
                "Enterprise",
                "Production use across the company, with support and SLA.",
                enterprise,
                Access::Licensed,
                format!("{}/{slug}-enterprise", p.org),
            ),
        ],
        Plan::Paid(price) => vec![tier("business", "Business", "Production use with support.", price, Access::Licensed, main)],
    }
}

/// A stable, varied pull count, so "most pulled" has an order.
fn popularity(name: &str) -> i64 {
    let hash = Sha256::digest(name.as_bytes());
    i64::from(u16::from_be_bytes([hash[0], hash[1]])) * 37
}

const SECOND_NS: u64 = 1_000_000_000;

/// Pushes each version as a two-platform image index (linux/amd64 and linux/arm64).
async fn push_images(app: &App, repository: &str, versions: &[&str], seed: usize) -> anyhow::Result<()> {
    let repo: RepoName = repository.parse()?;
    // Oldest first, so push dates follow version order; the newest is also `latest`.
    for (v, version) in versions.iter().enumerate().rev() {
        let mut children = Vec::new();
        for arch in ["amd64", "arm64"] {
            let layer = layer_tar_gz(repository, version, arch, seed * 31 + v)?;
            let diff_id = format!("sha256:{}", hex_sha256(&gunzip(&layer)?));
            let layer_digest = push_blob(app, &repo, layer.clone()).await?;
            let run = format!("/opt/{}/run", repository.replace('/', "-"));
            // The program runs as nobody; it stops on SIGKILL, since as PID 1 without a
            // handler it would ignore docker stop's SIGTERM for the 10 s grace period.
            let config = serde_json::to_vec(&json!({
                "architecture": arch, "os": "linux", "created": "2026-11-01T00:00:00Z",
                "config": {
                    "Cmd": [run], "User": "65534:65534", "StopSignal": "SIGKILL",
                    "Healthcheck": {"Test": ["CMD", run, "health"], "Interval": SECOND_NS * 5, "Timeout": SECOND_NS * 3, "Retries": 3},
                    "Labels": {"org.opencontainers.image.version": version},
                },
                "rootfs": {"type": "layers", "diff_ids": [diff_id]},
            }))?;
            let config_len = config.len();
            let config_digest = push_blob(app, &repo, config).await?;
            let manifest = serde_json::to_vec(&json!({
                "schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest.to_string(), "size": config_len},
                "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": layer_digest.to_string(), "size": layer.len()}],
            }))?;
            let digest = Digest::of(Algorithm::Sha256, &manifest);
            app.registry
                .put_manifest(&repo, &Reference::Digest(digest.clone()), &[], Some("application/vnd.oci.image.manifest.v1+json"), &manifest)
                .await?;
            children.push(json!({
                "mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": digest.to_string(), "size": manifest.len(),
                "platform": {"os": "linux", "architecture": arch},
            }));
        }
        let index = serde_json::to_vec(
            &json!({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": children}),
        )?;
        let tag: Tag = version.parse()?;
        let extra: Vec<Tag> = if v == 0 { vec!["latest".parse()?] } else { Vec::new() };
        app.registry.put_manifest(&repo, &Reference::Tag(tag), &extra, Some("application/vnd.oci.image.index.v1+json"), &index).await?;
    }
    Ok(())
}

async fn push_blob(app: &App, repo: &RepoName, bytes: Vec<u8>) -> anyhow::Result<Digest> {
    let digest = Digest::of(Algorithm::Sha256, &bytes);
    let len = bytes.len() as u64;
    let body = futures::stream::once(async move { Ok(bytes::Bytes::from(bytes)) }).boxed();
    app.registry.put_blob(repo, &digest, Chunk { start: None, len: Some(len), body }).await?;
    Ok(digest)
}

/// One layer: a README, the program that runs (demo_program.rs) and some data, so sizes
/// differ between products.
fn layer_tar_gz(repository: &str, version: &str, arch: &str, seed: usize) -> anyhow::Result<Vec<u8>> {
    let dir = format!("opt/{}", repository.replace('/', "-"));
    let program_arch = crate::demo_program::Arch::parse(arch).ok_or_else(|| anyhow::anyhow!("no demo program for {arch}"))?;
    let banner = format!(
        "{repository} {version} (linux/{arch}) is running.\nDemo content of the Slipway store: it serves nothing and stays up until stopped.\n"
    );
    let mut data = vec![0u8; 20_000 + (seed % 13) * 7_919];
    let mut state = (seed as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for byte in data.iter_mut() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        *byte = state as u8;
    }
    let files: Vec<(String, Vec<u8>, u32)> = vec![
        (
            format!("{dir}/README"),
            format!("{repository} {version} for linux/{arch}: demo content of the Slipway store.\n").into_bytes(),
            0o644,
        ),
        (format!("{dir}/run"), crate::demo_program::executable(program_arch, &banner), 0o755),
        (format!("{dir}/data.bin"), data, 0o644),
    ];
    let mut builder = tar::Builder::new(Vec::new());
    // The directories first, readable by all: without entries of their own, runtimes make
    // them 0700, and the program (which runs as nobody) could not be reached.
    for directory in ["opt/".to_owned(), format!("{dir}/")] {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(tar::EntryType::Directory);
        header.set_size(0);
        header.set_mode(0o755);
        header.set_mtime(1_767_225_600);
        header.set_cksum();
        builder.append_data(&mut header, directory, std::io::empty())?;
    }
    for (path, content, mode) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(content.len() as u64);
        header.set_mode(mode);
        header.set_mtime(1_767_225_600);
        header.set_cksum();
        builder.append_data(&mut header, path, content.as_slice())?;
    }
    let tar = builder.into_inner()?;
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar)?;
    Ok(gz.finish()?)
}

fn gunzip(bytes: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(bytes), &mut out)?;
    Ok(out)
}

fn hex_sha256(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The colours of logos and screenshots.
const PALETTE: &[[u8; 3]] = &[[11, 92, 173], [26, 127, 55], [154, 103, 0], [180, 35, 24], [110, 64, 170], [13, 34, 56], [0, 122, 122]];

/// A 512x512 logo: a coloured tile with the name's initial in a 5x7 pixel font.
fn logo_png(name: &str, seed: usize) -> Vec<u8> {
    let background = PALETTE[(seed + name.len()) % PALETTE.len()];
    let glyph = glyph(name.chars().next().unwrap_or('?'));
    let image = image::RgbImage::from_fn(512, 512, |x, y| {
        // The glyph's 5x7 cells are 56 pixels square, centred.
        let (gx, gy) = (x as i64 - 116, y as i64 - 60);
        let inside = (0..280).contains(&gx) && (0..392).contains(&gy);
        let lit = inside && glyph[(gy / 56) as usize] & (0b10000 >> (gx / 56)) != 0;
        if lit { image::Rgb([255, 255, 255]) } else { image::Rgb(background) }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).expect("encoding a PNG in memory");
    out.into_inner()
}

#[derive(Clone, Copy)]
enum ScreenshotView {
    /// A console: a header with the product's initial, a menu, cards, a bar chart.
    Dashboard,
    /// A terminal: lines of output as bars of varying length.
    Terminal,
}

/// A 1280x800 picture of the product at work, drawn from the name (the featured products'
/// screenshots; a real listing uploads real ones).
fn screenshot_png(name: &str, view: ScreenshotView, seed: usize) -> Vec<u8> {
    let accent = PALETTE[(seed + name.len()) % PALETTE.len()];
    let glyph = glyph(name.chars().next().unwrap_or('?'));
    // A stable sequence of heights and lengths from the name.
    let digest = Sha256::digest(format!("{name}{seed}").as_bytes());
    let value = |i: i64| i64::from(digest[i.unsigned_abs() as usize % digest.len()]);
    let image = image::RgbImage::from_fn(1280, 800, |x, y| {
        let (x, y) = (i64::from(x), i64::from(y));
        let rgb = match view {
            ScreenshotView::Dashboard => {
                let initial =
                    (24..59).contains(&x) && (14..63).contains(&y) && glyph[((y - 14) / 7) as usize] & (0b10000 >> ((x - 24) / 7)) != 0;
                if y < 76 {
                    if initial { [255, 255, 255] } else { accent }
                } else if x < 240 {
                    // The menu: one light bar per entry.
                    let row = (y - 100) / 44;
                    let on = y >= 100 && (y - 100) % 44 < 16 && row < 8 && (32..96 + value(row) % 100).contains(&x);
                    if on { [200, 208, 218] } else { [237, 240, 244] }
                } else if (100..240).contains(&y) {
                    // Three cards.
                    let card = (x - 272) / 330;
                    let inside = x >= 272 && (x - 272) % 330 < 300 && card < 3;
                    let figure = inside && (150..180).contains(&y) && ((x - 272) % 330) < 60 + value(card + 8) % 180;
                    if figure {
                        accent
                    } else if inside {
                        [255, 255, 255]
                    } else {
                        [246, 248, 250]
                    }
                } else if (280..760).contains(&y) && (272..1232).contains(&x) {
                    // A bar chart of 24 hours.
                    let bar = (x - 272) / 40;
                    let top = 740 - (value(bar + 16) * 400 / 255);
                    let in_bar = (x - 272) % 40 >= 8 && (x - 272) % 40 < 32 && y >= top && y < 740;
                    if in_bar {
                        accent
                    } else if y == 740 {
                        [150, 160, 170]
                    } else {
                        [255, 255, 255]
                    }
                } else {
                    [246, 248, 250]
                }
            }
            ScreenshotView::Terminal => {
                // Output lines 28 px apart, each a bar of its own length; prompts in the accent.
                let line = (y - 40).max(0) / 28;
                let length = 120 + value(line) * 4;
                let text = y >= 40 && (y - 40) % 28 < 14 && line < 26 && (48..48 + length).contains(&x);
                let prompt = text && x < 72 && line % 6 == 0;
                if prompt {
                    accent
                } else if text {
                    [190, 200, 190]
                } else {
                    [24, 28, 33]
                }
            }
        };
        image::Rgb(rgb)
    });
    let mut out = std::io::Cursor::new(Vec::new());
    image.write_to(&mut out, image::ImageFormat::Png).expect("encoding a PNG in memory");
    out.into_inner()
}

/// Rows of a 5x7 glyph, most significant bit on the left.
fn glyph(c: char) -> [u8; 7] {
    match c.to_ascii_uppercase() {
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'N' => [0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        _ => [0x1F, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1F],
    }
}

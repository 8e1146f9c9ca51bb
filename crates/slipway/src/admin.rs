//! `slipway admin ...`: account, organization, token, policy and entitlement
//! administration from the command line. Works on the same data directory and database as
//! `serve`, also while it runs.

use std::io::Read;
use std::time::Duration;

use anyhow::Context;
use clap::{Subcommand, ValueEnum};
use slipway_auth::KeyRing;
use slipway_auth::access::{OrgRole, Policy, SiteRole};
use slipway_auth::scope::TokenRule;
use slipway_catalog::{Actor, Badge};
use slipway_types::ClockKind;

use crate::App;

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create a person's account. The password is read from standard input.
    CreateUser {
        name: String,
        #[arg(long)]
        email: String,
        /// Read the password from standard input (there is no default password).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[arg(long, conflicts_with = "moderator")]
        admin: bool,
        #[arg(long)]
        moderator: bool,
    },
    /// Mark an account's email address verified, as following the mailed link does: for
    /// an installation without a mail server, or a user who cannot receive the link.
    VerifyEmail {
        /// The account's name.
        user: String,
    },
    /// Create an organization (a publisher namespace) owned by an account.
    CreateOrg {
        name: String,
        #[arg(long)]
        owner: String,
    },
    /// Add a member to an organization, or change their role.
    AddMember {
        org: String,
        account: String,
        /// owner, maintainer or viewer.
        #[arg(long, value_parser = org_role)]
        role: OrgRole,
    },
    /// Create a robot (service) account of an organization, named ORG+NAME.
    CreateRobot {
        org: String,
        name: String,
        /// owner, maintainer or viewer.
        #[arg(long, value_parser = org_role, default_value = "maintainer")]
        role: OrgRole,
    },
    /// Create an access token (printed once): a password for the registry, a bearer token
    /// for the REST API.
    CreateToken {
        account: String,
        #[arg(long)]
        name: String,
        /// PATTERN:ACTIONS, e.g. `acme/*:pull,push` (a pattern has at most 255 bytes and 16
        /// `*`), or an API scope: `api:read`, `api:write`, `api:fulfillment` (repeatable, up
        /// to 32 scopes in all).
        #[arg(long = "scope", required = true)]
        scopes: Vec<String>,
        /// Days until the token expires, 1 to 3650 (never, when not given).
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// Revoke an access token by id.
    RevokeToken { id: String },
    /// Set who may pull a repository.
    SetAccess {
        repository: String,
        #[arg(value_enum)]
        access: AccessMode,
        /// The tier whose license holders may pull (for `licensed`).
        #[arg(long, required_if_eq("access", "licensed"))]
        tier: Option<String>,
    },
    /// Entitle an account to a licensed tier.
    Grant {
        account: String,
        tier: String,
        #[arg(long)]
        expires_days: Option<u32>,
    },
    /// Revoke an account's entitlements to a tier.
    Revoke { account: String, tier: String },
    /// Make a new token-signing key; the previous one still verifies tokens already issued.
    RotateKeys,
    /// Publish a product listing (PUBLISHER/PRODUCT): it appears in search and its tiers'
    /// repositories open as each tier says. --withdraw turns it back into a draft.
    Publish {
        product: String,
        #[arg(long)]
        withdraw: bool,
    },
    /// Set (or with --revoke clear) a publisher's Verified Publisher status.
    VerifyPublisher {
        org: String,
        #[arg(long)]
        revoke: bool,
    },
    /// Set a product's badges (PUBLISHER/PRODUCT), e.g. --badge certified; none clears them.
    Badges {
        product: String,
        #[arg(long = "badge")]
        badges: Vec<String>,
    },
    /// Feature a product on the home page (--remove to stop).
    Feature {
        product: String,
        #[arg(long)]
        remove: bool,
    },
    /// Read or move the test clock (`[testing] clock = true`).
    Clock {
        #[command(subcommand)]
        command: ClockCommand,
    },
    /// Monthly payout statements: generate, list, mark paid, export as CSV.
    Payouts {
        #[command(subcommand)]
        command: crate::payouts::PayoutsCommand,
    },
}

#[derive(Subcommand)]
pub enum ClockCommand {
    /// Print the current time, the clock's kind and the test clock's offset.
    Show,
    /// Move the test clock forward for every replica by DURATION (e.g. 1d, 36h, 30m;
    /// at most ten years at once). Scheduled work and delayed jobs that fall due run.
    Advance {
        #[arg(allow_hyphen_values = true)]
        duration: String,
    },
}

/// PUBLISHER/PRODUCT as given on the command line.
fn product_ref(product: &str) -> anyhow::Result<(&str, &str)> {
    product
        .split_once('/')
        .filter(|(p, s)| !p.is_empty() && !s.is_empty() && !s.contains('/'))
        .context("name the product as PUBLISHER/PRODUCT")
}

fn org_role(text: &str) -> Result<OrgRole, String> {
    OrgRole::parse(text).ok_or_else(|| format!("{text:?} is not a role: owner, maintainer or viewer"))
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccessMode {
    Staging,
    Public,
    LoggedIn,
    Licensed,
}

pub async fn run(app: &App, command: AdminCommand) -> anyhow::Result<()> {
    let auth = &app.auth;
    match command {
        AdminCommand::VerifyEmail { user } => {
            let account = auth.verify_email_of(&user).await?;
            println!("verified {} for {}", account.email.as_deref().unwrap_or_default(), account.name);
        }
        AdminCommand::CreateUser { name, email, password_stdin: _, admin, moderator } => {
            let mut password = String::new();
            std::io::stdin().read_to_string(&mut password).context("reading the password from standard input")?;
            let password = password.trim_end_matches(['\n', '\r']);
            let role = if admin {
                SiteRole::Admin
            } else if moderator {
                SiteRole::Moderator
            } else {
                SiteRole::User
            };
            let account = auth.create_user(&name, &email, password, role).await?;
            println!("created {} account {} ({})", role.as_str(), account.name, account.id);
        }
        AdminCommand::CreateOrg { name, owner } => {
            auth.create_organization(&name, &owner).await?;
            println!("created organization {name}, owned by {owner}");
        }
        AdminCommand::AddMember { org, account, role } => {
            auth.set_member(&org, &account, role).await?;
            println!("{account} is now {} of {org}", role.as_str());
        }
        AdminCommand::CreateRobot { org, name, role } => {
            let robot = auth.create_robot(&org, &name, role).await?;
            println!("created robot {} ({}); give it a token with `slipway admin create-token {}`", robot.name, robot.id, robot.name);
        }
        AdminCommand::CreateToken { account, name, scopes, expires_days } => {
            let rules = scopes
                .iter()
                .map(|s| {
                    TokenRule::parse(s)
                        .with_context(|| format!("scope {s:?} is not PATTERN:pull[,push][,delete] or api:read|write|fulfillment"))
                })
                .collect::<anyhow::Result<Vec<_>>>()?;
            let (secret, record) = auth.create_token(&account, &name, &rules, expires_days).await?;
            eprintln!("token {} created for {account}; it is shown once:", record.id);
            println!("{secret}");
        }
        AdminCommand::RevokeToken { id } => {
            auth.revoke_token(&id).await?;
            println!("revoked token {id}");
        }
        AdminCommand::SetAccess { repository, access, tier } => {
            let policy = match access {
                AccessMode::Staging => Policy::Staging,
                AccessMode::Public => Policy::Public,
                AccessMode::LoggedIn => Policy::LoggedIn,
                AccessMode::Licensed => Policy::Licensed { tier: tier.context("--tier is required for licensed")? },
            };
            auth.set_policy(&repository, &policy).await?;
            println!("{repository}: {policy:?}");
        }
        AdminCommand::Grant { account, tier, expires_days } => {
            auth.grant_entitlement(&account, &tier, "grant", expires_days).await?;
            println!("{account} is entitled to {tier}");
        }
        AdminCommand::Revoke { account, tier } => {
            let n = auth.revoke_entitlement(&account, &tier).await?;
            println!("revoked {n} entitlement(s) of {account} to {tier}");
        }
        AdminCommand::RotateKeys => {
            let dir = app.config.auth.keys_dir.clone().unwrap_or_else(|| app.config.data_dir.join("keys"));
            let ring = KeyRing::rotate(&dir)?;
            println!("new signing key {}; restart replicas to load it", ring.signing_kid());
        }
        AdminCommand::Publish { product, withdraw } => {
            let (publisher, slug) = product_ref(&product)?;
            app.catalog.set_published(Actor::Operator, publisher, slug, !withdraw).await?;
            println!("{product} {}", if withdraw { "withdrawn (unpublished)" } else { "published" });
        }
        AdminCommand::VerifyPublisher { org, revoke } => {
            app.catalog.set_publisher_verified(Actor::Operator, &org, !revoke).await?;
            println!("{org} {}", if revoke { "is no longer a verified publisher" } else { "is a verified publisher" });
        }
        AdminCommand::Badges { product, badges } => {
            let (publisher, slug) = product_ref(&product)?;
            let badges = badges
                .iter()
                .map(|b| Badge::parse(b).with_context(|| format!("unknown badge {b:?}: use certified or verified_publisher")))
                .collect::<anyhow::Result<Vec<_>>>()?;
            app.catalog.set_badges(Actor::Operator, publisher, slug, &badges).await?;
            println!("{product} badges set");
        }
        AdminCommand::Feature { product, remove } => {
            let (publisher, slug) = product_ref(&product)?;
            app.catalog.set_featured(Actor::Operator, publisher, slug, !remove).await?;
            println!("{product} {}", if remove { "no longer featured" } else { "featured" });
        }
        AdminCommand::Clock { command } => clock(app, command).await?,
        AdminCommand::Payouts { command } => crate::payouts::run(app, command).await?,
    }
    Ok(())
}

async fn clock(app: &App, command: ClockCommand) -> anyhow::Result<()> {
    let jobs = &app.jobs;
    match command {
        ClockCommand::Show => jobs.sync_test_clock().await?,
        ClockCommand::Advance { duration } => {
            anyhow::ensure!(
                jobs.clock().kind() == ClockKind::Test,
                "the test clock is off: set `[testing] clock = true` (or SLIPWAY_TESTING__CLOCK=true) to move time"
            );
            let by = parse_step(&duration)?;
            jobs.advance_test_clock(by).await?;
            println!("advanced the test clock by {}", humantime::format_duration(by));
        }
    }
    let clock = jobs.clock();
    println!("time    {}", humantime::format_rfc3339_millis(clock.now()));
    println!("kind    {}", format!("{:?}", clock.kind()).to_lowercase());
    println!("offset  {}", humantime::format_duration(clock.offset()));
    Ok(())
}

/// A step for the test clock: a humantime duration (`1d`, `36h`, `30m`); it moves forward
/// only (the bounds on size are the queue's).
fn parse_step(duration: &str) -> anyhow::Result<Duration> {
    anyhow::ensure!(!duration.trim_start().starts_with('-'), "the test clock moves forward only: {duration:?} is negative");
    humantime::parse_duration(duration).with_context(|| format!("{duration:?} is not a duration like 1d, 36h or 30m"))
}

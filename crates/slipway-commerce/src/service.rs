//! The commerce service: checkout, subscriptions and their renewals, cancellations,
//! refunds, billing profiles and invoices, each with its access rule.
//!
//! A money movement is computed here (price, tax, platform fee and publisher share, the
//! ledger entries that record them) and written by `CommerceDb` in one database
//! transaction with the business change. The provider is asked to move money before that
//! transaction, with an idempotency key derived from what is being paid for (the
//! subscription, the period's start and the number of failed attempts at it), so a retry
//! after a crash between the two asks the provider for the same charge, never a second.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use slipway_catalog::{Access, Catalog, CatalogError, Tier, Viewer, product_path};
use slipway_db::{
    BillingProfileRecord, CommerceDb, DbError, DueRenewal, Grant, InvoiceLine, InvoiceRecord, KeyClaim, LedgerEntry, Mail, NewInvoice,
    NewLedgerTransaction, NewPayment, NewPeriod, NewRefund, NewSubscription, PaidPeriod, PaymentMethodRecord, ProrationWrite, RefundWrite,
    Retier, SubscriptionChange, SubscriptionRecord, charge_key_prefix,
};
use slipway_policy::{Action, Resource, decide};
use slipway_types::{Clock, Currency, Money};
use utoipa::ToSchema;

use crate::CommerceError;
use crate::provider::{ChargeOutcome, ChargeRequest, PaymentProvider, RefundRequest};
use crate::tax::TaxTable;

const DAY_MS: i64 = 24 * 3600 * 1000;
/// A past-due subscription's charge is retried this long after each failure (within the
/// grace period).
const RETRY_AFTER_MS: i64 = DAY_MS;
/// Subscriptions `renew_due` reads at a time.
pub const RENEWAL_BATCH: i64 = 500;
/// Renewals of a batch charged at once on PostgreSQL: each waits mostly on the provider.
const RENEWAL_CONCURRENCY: usize = 8;
/// Renewals charged, then recorded together in one transaction.
const RENEWAL_WRITE_CHUNK: usize = 100;
/// How long one `renew_due` run keeps taking batches; the rest wait for the next run.
const RENEWAL_RUN_BUDGET: std::time::Duration = std::time::Duration::from_secs(45);
/// A checkout that reserved a subscription and never finished frees it after this long.
const STALE_RESERVATION_MS: i64 = 3_600_000;
/// How long an Idempotency-Key's answer is kept for retries (a day, as Stripe does).
const KEY_TTL_MS: i64 = DAY_MS;
/// How long a claimed key is held for its request without a renewal (`hold_key` renews it
/// while the request runs). A retry after it takes the key over, which is how a request
/// whose process died gets finished.
const KEY_LEASE_MS: i64 = 30_000;
/// Invoices `invoices` lists at most.
const MAX_INVOICES: i64 = 200;
/// Disagreements `verify` lists per check.
const MAX_PROBLEMS_PER_CHECK: i64 = 100;
/// The longest reason a refund may give.
const MAX_REASON: usize = 500;

/// A claimed Idempotency-Key's lease, renewed until dropped (`Commerce::hold_key`).
pub struct KeyLease(tokio::task::JoinHandle<()>);

impl Drop for KeyLease {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What the store charges and keeps.
#[derive(Clone, Debug)]
pub struct CommerceConfig {
    /// The platform's fee on sales before tax, in basis points (2000 = 20%).
    pub platform_fee_bps: u32,
    /// Per-publisher fees that replace the global one.
    pub publisher_fee_bps: BTreeMap<String, u32>,
    /// Publishers who refund the unused part of a period when a customer cancels at once.
    pub prorated_refunds: Vec<String>,
    /// How long a past-due subscription keeps its entitlement while its payment is retried.
    pub grace_days: u32,
    pub tax: TaxTable,
    /// The signing secret of Stripe's webhooks to this store (`whsec_...`); without it
    /// (or with another provider) none are received.
    pub stripe_webhook_secret: Option<String>,
}

impl Default for CommerceConfig {
    fn default() -> CommerceConfig {
        CommerceConfig {
            platform_fee_bps: 2000,
            publisher_fee_bps: BTreeMap::new(),
            prorated_refunds: Vec::new(),
            grace_days: 7,
            tax: TaxTable::default(),
            stripe_webhook_secret: None,
        }
    }
}

/// A customer's billing details, as the API reads and writes them.
#[derive(Clone, Debug, Default, Serialize, Deserialize, ToSchema)]
pub struct BillingProfile {
    /// The person's or company's name, as invoices show it.
    pub name: String,
    /// ISO 3166-1 alpha-2 country code (DE, US).
    pub country: String,
    /// State, province or region code, where tax depends on it (CA).
    #[serde(default)]
    pub region: String,
    #[serde(default)]
    pub postal_code: String,
    /// A business's tax id (an EU VAT number, for the reverse charge).
    #[serde(default)]
    pub tax_id: String,
}

/// A paid or free tier to buy (`POST /api/v1/checkout`).
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct CheckoutInput {
    /// `PUBLISHER/SLUG`.
    pub product: String,
    /// The tier's slug.
    pub tier: String,
    /// The version of the product's license agreement accepted (its current one).
    #[serde(default)]
    pub accept_license: Option<i64>,
    /// A test payment method (`pm_card_visa`) or, in the sandbox, a test card number.
    /// Needed unless the tier starts with a free trial.
    #[serde(default)]
    pub payment_method: Option<String>,
    /// Sets the billing profile first (else the one on file is used).
    #[serde(default)]
    pub billing: Option<BillingProfile>,
    /// The caller and Idempotency-Key the request came under: a retry that takes the key
    /// over from an attempt that died resumes that attempt's reservation.
    #[serde(skip)]
    pub idempotency: Option<(String, String)>,
}

/// A price as shown: minor units and the currency, and the same for people.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct Amount {
    /// In the currency's minor units (cents; yen).
    pub amount: i64,
    pub currency: String,
    /// `49.00 USD`.
    pub display: String,
}

impl From<Money> for Amount {
    fn from(m: Money) -> Amount {
        Amount { amount: m.minor, currency: m.currency.code().to_owned(), display: m.to_string() }
    }
}

/// What a checkout will charge, before it does.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Quote {
    pub product: String,
    pub tier: String,
    pub billing_period: String,
    pub subtotal: Amount,
    pub tax: Amount,
    pub total: Amount,
    /// VAT, sales tax; empty when none applies.
    pub tax_name: String,
    pub tax_rate_bps: u32,
    pub reverse_charge: bool,
    /// Days of free trial this checkout starts with (0: charged now).
    pub trial_days: i64,
    pub license_version: i64,
}

/// A customer's subscription as `GET /api/v1/subscriptions` shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Subscription {
    pub id: String,
    pub product: String,
    pub product_path: String,
    pub tier: String,
    pub access: Access,
    /// trialing, active, past_due, canceled or expired.
    pub status: String,
    /// None for a free tier.
    pub price: Option<Amount>,
    /// free, month, year or one_time.
    pub billing_period: String,
    /// Unix milliseconds; None for free and one-time purchases.
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
    pub cancel_at_period_end: bool,
    /// While past due: when access ends unless a payment succeeds.
    pub grace_period_end: Option<i64>,
    pub ended_at: Option<i64>,
    pub license_version: i64,
    pub license_accepted_at: i64,
    pub pull_command: String,
    /// Whether the subscription grants access now.
    pub entitled: bool,
}

/// An invoice or credit note.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Invoice {
    pub id: String,
    /// `ACME-000042`: the seller's sequence, without gaps.
    pub number: String,
    pub seller: String,
    /// invoice or credit_note.
    pub kind: String,
    pub subscription: Option<String>,
    /// For a credit note, the invoice it credits.
    pub credits: Option<String>,
    pub subtotal: Amount,
    pub tax: Amount,
    pub total: Amount,
    pub buyer: BillingProfile,
    pub reverse_charge: bool,
    pub lines: Vec<InvoiceLineView>,
    pub created_at: i64,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct InvoiceLineView {
    pub description: String,
    pub amount: Amount,
    pub tax: Amount,
    pub tax_name: String,
    pub tax_rate_bps: i64,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
}

/// What a checkout made.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct CheckoutResult {
    pub subscription: Subscription,
    /// None for a free tier or a trial.
    pub invoice: Option<Invoice>,
}

/// A refund to give (`POST /api/v1/refunds`).
#[derive(Clone, Debug, Deserialize, ToSchema)]
pub struct RefundInput {
    pub subscription: String,
    /// Minor units; the whole of the last payment's unrefunded amount when absent.
    #[serde(default)]
    pub amount: Option<i64>,
    #[serde(default)]
    pub reason: String,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Refund {
    pub id: String,
    pub subscription: String,
    pub amount: Amount,
    pub credit_note: Invoice,
    /// Whether the refund ended the subscription (a full refund does).
    pub ended_subscription: bool,
}

/// What one renewal run did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RenewalReport {
    pub renewed: u64,
    pub declined: u64,
    pub ended: u64,
    pub skipped: u64,
}

#[derive(Clone)]
pub struct Commerce {
    pub(crate) db: CommerceDb,
    pub(crate) catalog: Catalog,
    provider: Arc<dyn PaymentProvider>,
    pub(crate) config: Arc<CommerceConfig>,
}

/// Asks the policy; a refusal keeps its kind.
fn check(viewer: &Viewer, action: Action, resource: Resource<'_>) -> Result<(), CommerceError> {
    decide(&viewer.actor(), action, &resource).into_result().map_err(|r| CommerceError::Refused(r.kind, r.reason))
}

fn money(minor: i64, currency: &str) -> Result<Money, CommerceError> {
    Ok(Money::new(minor, Currency::parse(currency).map_err(|e| CommerceError::Invalid(e.to_string()))?))
}

fn overflow(e: slipway_types::MoneyError) -> CommerceError {
    CommerceError::Invalid(e.to_string())
}

/// The end of a period of `billing_period` starting at `start` (Unix ms), by the calendar
/// in UTC: a month from January 31 ends on the last day of February.
pub fn period_end(start: i64, billing_period: &str) -> Option<i64> {
    let months = match billing_period {
        "month" => 1,
        "year" => 12,
        _ => return None,
    };
    let at = chrono::DateTime::from_timestamp_millis(start)?;
    at.checked_add_months(chrono::Months::new(months)).map(|t| t.timestamp_millis())
}

fn new_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

impl Commerce {
    pub fn new(db: CommerceDb, catalog: Catalog, provider: Arc<dyn PaymentProvider>, config: CommerceConfig) -> Commerce {
        Commerce { db, catalog, provider, config: Arc::new(config) }
    }

    pub fn clock(&self) -> &Clock {
        self.db.clock()
    }

    pub fn provider(&self) -> &dyn PaymentProvider {
        &*self.provider
    }

    fn now(&self) -> i64 {
        self.db.clock().now_ms()
    }

    fn grace_ms(&self) -> i64 {
        i64::from(self.config.grace_days) * DAY_MS
    }

    fn fee_bps(&self, publisher: &str) -> u32 {
        self.config.publisher_fee_bps.get(publisher).copied().unwrap_or(self.config.platform_fee_bps)
    }

    // ---- idempotency keys of money-moving requests ----------------------------------------

    /// Claims a caller's `Idempotency-Key` for a request (`request_hash`: its route and body).
    pub async fn claim_key(&self, caller: &str, key: &str, request_hash: &str) -> Result<KeyClaim, CommerceError> {
        Ok(self.db.claim_key(caller, key, request_hash, KEY_LEASE_MS).await?)
    }

    /// Holds a claimed key while its request runs, renewing the lease every third of it, so
    /// that only a request whose process died is taken over, never one that is merely slow
    /// (two runs of one checkout would record its charge once and then give it back).
    /// Dropping the returned lease stops the renewals.
    pub fn hold_key(&self, caller: &str, key: &str) -> KeyLease {
        let (db, caller, key) = (self.db.clone(), caller.to_owned(), key.to_owned());
        KeyLease(tokio::spawn(async move {
            loop {
                tokio::time::sleep(std::time::Duration::from_millis((KEY_LEASE_MS / 3) as u64)).await;
                if let Err(e) = db.renew_key(&caller, &key, db.clock().now_ms() + KEY_LEASE_MS).await {
                    tracing::warn!(error = %e, "renewing an Idempotency-Key's lease failed");
                }
            }
        }))
    }

    /// Stores the answer of a claimed key's request for its retries.
    pub async fn finish_key(&self, caller: &str, key: &str, status: i64, response: &str) -> Result<(), CommerceError> {
        Ok(self.db.finish_key(caller, key, status, response).await?)
    }

    /// Frees a claimed key whose request failed on the server's side, for a real retry.
    pub async fn release_key(&self, caller: &str, key: &str) -> Result<(), CommerceError> {
        Ok(self.db.release_key(caller, key).await?)
    }

    // ---- billing profiles --------------------------------------------------------------

    pub async fn billing_profile(&self, viewer: &Viewer) -> Result<Option<BillingProfile>, CommerceError> {
        Ok(self.db.billing_profile(&viewer.account.id).await?.map(|p| BillingProfile {
            name: p.name,
            country: p.country,
            region: p.region,
            postal_code: p.postal_code,
            tax_id: p.tax_id,
        }))
    }

    pub async fn save_billing_profile(&self, viewer: &Viewer, input: &BillingProfile) -> Result<BillingProfile, CommerceError> {
        let clean = |s: &str| s.trim().to_owned();
        let profile = BillingProfile {
            name: clean(&input.name),
            country: clean(&input.country).to_ascii_uppercase(),
            region: clean(&input.region).to_ascii_uppercase(),
            postal_code: clean(&input.postal_code),
            tax_id: clean(&input.tax_id).to_ascii_uppercase(),
        };
        let bounded = |what: &str, value: &str, max: usize| {
            if value.chars().count() > max || value.chars().any(char::is_control) {
                Err(CommerceError::Invalid(format!("the billing {what} has at most {max} characters and no control characters")))
            } else {
                Ok(())
            }
        };
        if profile.name.is_empty() {
            return Err(CommerceError::Invalid("the billing name is required".into()));
        }
        bounded("name", &profile.name, 200)?;
        if !crate::tax::is_country(&profile.country) {
            return Err(CommerceError::Invalid(format!(
                "{:?} is not a country code: use ISO 3166 alpha-2, such as DE or US",
                input.country
            )));
        }
        bounded("region", &profile.region, 16)?;
        bounded("postal code", &profile.postal_code, 20)?;
        bounded("tax id", &profile.tax_id, 24)?;
        self.db
            .put_billing_profile(&BillingProfileRecord {
                account_id: viewer.account.id.clone(),
                name: profile.name.clone(),
                country: profile.country.clone(),
                region: profile.region.clone(),
                postal_code: profile.postal_code.clone(),
                tax_id: profile.tax_id.clone(),
                ..BillingProfileRecord::default()
            })
            .await?;
        Ok(profile)
    }

    /// The buyer as invoices show it: the profile, or the account's name alone.
    async fn buyer(&self, viewer_id: &str, fallback_name: &str) -> Result<BillingProfileRecord, CommerceError> {
        Ok(self.db.billing_profile(viewer_id).await?.unwrap_or_else(|| unprofiled_buyer(viewer_id, fallback_name)))
    }

    // ---- checkout ----------------------------------------------------------------------

    fn split_product(product: &str) -> Result<(&str, &str), CommerceError> {
        product
            .split_once('/')
            .filter(|(p, s)| !p.is_empty() && !s.is_empty() && !s.contains('/'))
            .ok_or_else(|| CommerceError::Invalid(format!("product {product:?} is not PUBLISHER/SLUG")))
    }

    /// What buying `tier` of `product` costs the viewer now.
    pub async fn quote(&self, viewer: &Viewer, product: &str, tier: &str) -> Result<Quote, CommerceError> {
        let (publisher, slug) = Self::split_product(product)?;
        let listing = self.catalog.listing(Some(viewer), publisher, slug).await?;
        let chosen = listing
            .tiers
            .iter()
            .find(|t| t.slug == tier)
            .ok_or_else(|| CommerceError::NotFound(format!("{} has no tier {tier:?}", listing.name)))?;
        let buyer = self.buyer(&viewer.account.id, &viewer.account.name).await?;
        let price = tier_price(chosen)?;
        let assessed = self.config.tax.assess(place(&buyer), price)?;
        let trial = self.trial_days(viewer, &slipway_types::entitlement_id(publisher, slug, tier), chosen).await?;
        Ok(Quote {
            product: format!("{publisher}/{slug}"),
            tier: chosen.slug.clone(),
            billing_period: chosen.billing_period.clone(),
            subtotal: price.into(),
            tax: assessed.tax.into(),
            total: price.checked_add(&assessed.tax).map_err(overflow)?.into(),
            tax_name: assessed.name,
            tax_rate_bps: assessed.rate_bps,
            reverse_charge: assessed.reverse_charge,
            trial_days: trial,
            license_version: listing.license_version,
        })
    }

    /// A trial is offered once per account and tier, on recurring tiers that have one.
    async fn trial_days(&self, viewer: &Viewer, tier_id: &str, tier: &Tier) -> Result<i64, CommerceError> {
        if tier.trial_days <= 0 || !matches!(tier.billing_period.as_str(), "month" | "year") {
            return Ok(0);
        }
        Ok(if self.db.had_trial(&viewer.account.id, tier_id).await? { 0 } else { tier.trial_days })
    }

    /// "Get Image" of a free tier: records the license acceptance and, for a licensed
    /// tier, the entitlement.
    pub async fn subscribe_free(
        &self,
        viewer: &Viewer,
        publisher: &str,
        slug: &str,
        tier: &str,
        accepted: Option<i64>,
    ) -> Result<(), CommerceError> {
        let (listing, chosen) = self.catalog.tier_to_get(viewer, publisher, slug, tier, accepted).await?;
        if !chosen.is_free() {
            return Err(CommerceError::PaymentRequired(format!(
                "{} costs {}: paid tiers are bought through checkout (POST /api/v1/checkout)",
                chosen.name,
                chosen.price_label()
            )));
        }
        let tier_id = slipway_types::entitlement_id(publisher, slug, &chosen.slug);
        let licensed = chosen.access == Access::Licensed;
        self.db.subscribe_free(&new_id(), &viewer.account.id, &tier_id, listing.license_version, licensed).await?;
        Ok(())
    }

    /// Buys a tier: checks the product, tier and license; starts a trial, or charges the
    /// first period (or the one-time price) and writes the subscription, payment, invoice,
    /// entitlement and ledger together. A free tier is subscribed to as "Get Image" does.
    pub async fn checkout(&self, viewer: &Viewer, input: &CheckoutInput, registry_host: &str) -> Result<CheckoutResult, CommerceError> {
        let (publisher, slug) = Self::split_product(&input.product)?;
        let (listing, tier) = self.catalog.tier_to_get(viewer, publisher, slug, &input.tier, input.accept_license).await?;
        let tier_id = slipway_types::entitlement_id(publisher, slug, &tier.slug);
        if tier.is_free() {
            self.subscribe_free(viewer, publisher, slug, &tier.slug, input.accept_license).await?;
            let subscription = self
                .subscriptions(viewer, registry_host)
                .await?
                .into_iter()
                .find(|s| s.product_path == product_path(publisher, slug) && s.tier == tier.name && s.ended_at.is_none())
                .ok_or_else(|| CommerceError::Internal("the subscription just made is not listed".into()))?;
            return Ok(CheckoutResult { subscription, invoice: None });
        }
        if let Some(billing) = &input.billing {
            self.save_billing_profile(viewer, billing).await?;
        }
        let price = tier_price(&tier)?;
        let trial_days = self.trial_days(viewer, &tier_id, &tier).await?;
        if trial_days == 0 && input.payment_method.as_deref().is_none_or(str::is_empty) {
            return Err(CommerceError::Invalid(format!(
                "{} costs {}: give a payment_method (such as pm_card_visa)",
                tier.name,
                tier.price_label()
            )));
        }
        // A retry that took the key over from an attempt that died finds that attempt's
        // reservation: the work goes on from there (or, if it was paid, its answer is given).
        let for_key = input.idempotency.as_ref().map(|(caller, key)| (caller.as_str(), key.as_str()));
        let earlier = match for_key {
            Some((caller, key)) => match self.db.key_resource(caller, key).await? {
                Some(id) => self.db.subscription(&id).await?.filter(|s| s.account_id == viewer.account.id),
                None => None,
            },
            None => None,
        };
        let id = match &earlier {
            Some(earlier) if earlier.status != "incomplete" => {
                let subscription = self.subscription_view(viewer, &earlier.id, registry_host).await?;
                return Ok(CheckoutResult { subscription, invoice: None });
            }
            Some(earlier) => earlier.id.clone(),
            None => {
                let id = new_id();
                self.create_reservation(viewer, &id, &listing, &tier, price, for_key).await?;
                id
            }
        };
        // The charge's provider key comes from the reservation and its start, so a resumed
        // checkout asks the provider for the same charge.
        let start = match self.db.subscription(&id).await? {
            Some(reserved) => reserved.created_at,
            None => return Err(CommerceError::Internal("the reservation just made is not there".into())),
        };
        let outcome =
            self.complete_checkout(viewer, &id, &tier_id, &listing.publisher, &listing.name, &tier, price, trial_days, start, input).await;
        let invoice = match outcome {
            Ok(invoice) => invoice,
            Err(e) => {
                // Whatever failed, the reservation goes: a declined card is recorded with
                // it gone; anything else leaves nothing charged.
                self.db.drop_reservation(&id).await?;
                return Err(e);
            }
        };
        let subscription = self.subscription_view(viewer, &id, registry_host).await?;
        let invoice = match invoice {
            Some(id) => Some(self.invoice_view(&id).await?),
            None => None,
        };
        Ok(CheckoutResult { subscription, invoice })
    }

    /// Reserves the subscription a checkout is for: `incomplete` until paid (one live
    /// subscription per customer and tier).
    async fn create_reservation(
        &self,
        viewer: &Viewer,
        id: &str,
        listing: &slipway_catalog::Listing,
        tier: &Tier,
        price: Money,
        for_key: Option<(&str, &str)>,
    ) -> Result<(), CommerceError> {
        let tier_id = slipway_types::entitlement_id(&listing.publisher, &listing.slug, &tier.slug);
        self.db
            .create_subscription(&NewSubscription {
                id,
                account_id: &viewer.account.id,
                tier_id: &tier_id,
                license_version: listing.license_version,
                status: "incomplete",
                amount: price.minor,
                currency: price.currency.code(),
                billing_period: &tier.billing_period,
                payment_method_id: None,
                for_key,
            })
            .await
            .map_err(|e| match e {
                DbError::Conflict(_) => CommerceError::Conflict(format!(
                    "you already have a subscription to {} {}: see /subscriptions to change or cancel it",
                    listing.name, tier.name
                )),
                other => other.into(),
            })?;
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    async fn complete_checkout(
        &self,
        viewer: &Viewer,
        id: &str,
        tier_id: &str,
        publisher: &str,
        product: &str,
        tier: &Tier,
        price: Money,
        trial_days: i64,
        start: i64,
        input: &CheckoutInput,
    ) -> Result<Option<String>, CommerceError> {
        let method = match input.payment_method.as_deref().filter(|m| !m.is_empty()) {
            Some(m) => Some(self.save_method(&viewer.account.id, m).await?),
            None => None,
        };
        let now = self.now();
        if trial_days > 0 {
            let trial_end = now + trial_days * DAY_MS;
            // Without a payment method the trial simply ends; with one it converts, and a
            // failed conversion gets the grace period like any renewal.
            let expires_at = if method.is_some() { trial_end + self.grace_ms() } else { trial_end };
            let change = SubscriptionChange {
                status: "trialing",
                amount: price.minor,
                payment_method_id: method.as_ref().map(|m| m.id.as_str()),
                current_period_start: Some(now),
                current_period_end: Some(trial_end),
                trial_end: Some(trial_end),
                ..SubscriptionChange::default()
            };
            let period = NewPeriod { id: &new_id(), kind: "trial", start: now, end: Some(trial_end) };
            self.db.record_trial(id, &change, &period, &Grant { tier: tier_id, expires_at: Some(expires_at) }).await?;
            return Ok(None);
        }
        let method = method.ok_or_else(|| CommerceError::Invalid("a payment method is needed".into()))?;
        let buyer = self.buyer(&viewer.account.id, &viewer.account.name).await?;
        let charge = PeriodCharge {
            subscription_id: id,
            account_id: &viewer.account.id,
            tier_id,
            publisher,
            description: format!("{product} {}", tier.name),
            billing_period: &tier.billing_period,
            price,
            method: &method,
            buyer: &buyer,
            start,
            // The reservation was made for this checkout: its one charge (asked for again,
            // under the same provider key, by a checkout resumed after a crash).
            attempt: 0,
            off_session: false,
            from: "incomplete",
            price_notice_at: None,
            notice: None,
        };
        match self.charge_period(&charge).await? {
            Charged::Paid { invoice_id } => Ok(Some(invoice_id)),
            Charged::Declined { message } => Err(CommerceError::Declined(message)),
        }
    }

    async fn save_method(&self, account_id: &str, method: &str) -> Result<PaymentMethodRecord, CommerceError> {
        let saved = self.provider.attach(account_id, method).await?;
        let record = PaymentMethodRecord {
            id: new_id(),
            account_id: account_id.to_owned(),
            provider: self.provider.name().to_owned(),
            reference: saved.reference,
            brand: saved.brand,
            last4: saved.last4,
            created_at: self.now(),
        };
        self.db.add_payment_method(&record).await?;
        Ok(record)
    }

    /// Charges one period (from `start`) and, when paid, records it whole. A declined
    /// charge is recorded as a failed payment and reported, not an error.
    async fn charge_period(&self, c: &PeriodCharge<'_>) -> Result<Charged, CommerceError> {
        let paid = match self.take_charge(c).await? {
            Taken::Paid(paid) => paid,
            Taken::Declined { message } => return Ok(Charged::Declined { message }),
        };
        if let Err(e) = self.record_paid(&[&paid]).await {
            // A renewal's retry asks the provider for this same charge (same key) and
            // records it then; a checkout's reservation is dropped, so its retry would be a
            // new charge: give this one back before failing.
            if c.from == "incomplete" {
                let refund = RefundRequest { payment: &paid.reference, amount: paid.total, idempotency_key: &format!("void:{}", paid.key) };
                if let Err(refund_error) = self.provider.refund(&refund).await {
                    tracing::error!(payment = %paid.reference, error = %refund_error, "a charge that could not be recorded was not given back");
                }
            }
            return Err(e);
        }
        Ok(Charged::Paid { invoice_id: paid.invoice_id.clone() })
    }

    /// Asks the provider for one period's charge. A decline is recorded (a failed payment)
    /// and reported; a success comes back with all its recording writes, not yet written.
    async fn take_charge(&self, c: &PeriodCharge<'_>) -> Result<Taken, CommerceError> {
        let assessed = self.config.tax.assess(place(c.buyer), c.price)?;
        let total = c.price.checked_add(&assessed.tax).map_err(overflow)?;
        let (fee, share) = c.price.split_bps(self.fee_bps(c.publisher)).map_err(overflow)?;
        let key = format!("{}{}", charge_key_prefix(c.subscription_id, c.start), c.attempt);
        let outcome = self
            .provider
            .charge(&ChargeRequest {
                customer: c.account_id,
                method: &c.method.reference,
                amount: total,
                idempotency_key: &key,
                description: &c.description,
                off_session: c.off_session,
            })
            .await?;
        let payment_id = new_id();
        let reference = match outcome {
            ChargeOutcome::Succeeded { reference } => reference,
            ChargeOutcome::Declined { code, message } => {
                let failure = format!("{code}: {message}");
                let payment = NewPayment {
                    id: &payment_id,
                    account_id: c.account_id,
                    subscription_id: Some(c.subscription_id),
                    provider: self.provider.name(),
                    reference: "",
                    payment_method_id: Some(&c.method.id),
                    amount: total.minor,
                    currency: total.currency.code(),
                    status: "failed",
                    failure: &failure,
                    idempotency_key: &key,
                };
                let reservation = (c.from == "incomplete").then_some(c.subscription_id);
                self.db.record_failed_payment(&payment, reservation).await?;
                return Ok(Taken::Declined { message });
            }
        };
        let end = period_end(c.start, c.billing_period);
        Ok(Taken::Paid(Box::new(PaidCharge {
            subscription_id: c.subscription_id.to_owned(),
            from: c.from.to_owned(),
            account_id: c.account_id.to_owned(),
            tier_id: c.tier_id.to_owned(),
            publisher: c.publisher.to_owned(),
            method_id: c.method.id.clone(),
            provider: self.provider.name().to_owned(),
            reference,
            ledger_key: format!("ledger:{key}"),
            key,
            price: c.price,
            total,
            fee,
            start: c.start,
            end,
            price_notice_at: c.price_notice_at,
            access_until: end.map(|e| e + self.grace_ms()),
            buyer: c.buyer.clone(),
            reverse_charge: assessed.reverse_charge,
            line: InvoiceLine {
                description: c.description.clone(),
                amount: c.price.minor,
                tax: assessed.tax.minor,
                tax_name: assessed.name.clone(),
                tax_rate_bps: i64::from(assessed.rate_bps),
                period_start: end.map(|_| c.start),
                period_end: end,
            },
            entries: charge_entries(self.provider.name(), c.publisher, &assessed.account, total, assessed.tax, fee, share),
            notice: c.notice.clone(),
            period_id: new_id(),
            payment_id,
            invoice_id: new_id(),
            ledger_id: new_id(),
            notice_id: new_id(),
        })))
    }

    /// Records charges the provider took (`take_charge`), all in one transaction.
    async fn record_paid(&self, paid: &[&PaidCharge]) -> Result<(), CommerceError> {
        let writes: Vec<PaidPeriod<'_>> = paid.iter().map(|p| p.write()).collect();
        Ok(self.db.record_paid_periods(&writes).await?)
    }

    // ---- subscriptions -------------------------------------------------------------------

    pub async fn subscriptions(&self, viewer: &Viewer, registry_host: &str) -> Result<Vec<Subscription>, CommerceError> {
        let mut out = Vec::new();
        for s in self.db.subscriptions_of(&viewer.account.id).await? {
            out.push(self.view(s, registry_host).await?);
        }
        Ok(out)
    }

    /// Why the viewer's account may not be deleted yet, as far as money goes: a subscription
    /// with an unpaid renewal (past due), or one that renews and would bill a deleted
    /// account. Empty when nothing stands in the way.
    pub async fn deletion_blockers(&self, viewer: &Viewer) -> Result<Vec<String>, CommerceError> {
        let mut blockers = Vec::new();
        for s in self.db.subscriptions_of(&viewer.account.id).await? {
            let name = format!("{} {}", s.listing_name, s.tier_name);
            let renews =
                matches!(s.status.as_str(), "active" | "trialing") && s.cancel_at_period_end == 0 && s.current_period_end.is_some();
            if s.status == "past_due" {
                blockers.push(format!("{name} has an unpaid invoice: pay it or cancel the subscription"));
            } else if renews {
                blockers.push(format!("{name} renews: cancel it (at period end) first"));
            }
        }
        Ok(blockers)
    }

    async fn subscription_view(&self, viewer: &Viewer, id: &str, registry_host: &str) -> Result<Subscription, CommerceError> {
        let record = self.owned_subscription(viewer, id).await?;
        self.view(record, registry_host).await
    }

    /// A subscription the viewer may manage; to anyone else it does not exist.
    async fn owned_subscription(&self, viewer: &Viewer, id: &str) -> Result<SubscriptionRecord, CommerceError> {
        let record = self
            .db
            .subscription(id)
            .await?
            .filter(|s| s.status != "incomplete")
            .ok_or_else(|| CommerceError::NotFound("you have no such subscription".into()))?;
        check(viewer, Action::ManageSubscription, Resource::Subscription { owner: &record.account_id })?;
        Ok(record)
    }

    /// While past due: when access ends unless a payment succeeds.
    fn grace_period_end(&self, s: &SubscriptionRecord) -> Option<i64> {
        (s.status == "past_due").then(|| s.current_period_end.map(|e| e + self.grace_ms())).flatten()
    }

    /// Whether the subscription grants access at `now`.
    fn entitled(&self, s: &SubscriptionRecord, now: i64) -> bool {
        match s.status.as_str() {
            "active" if s.billing_period == "free" || s.billing_period == "one_time" => true,
            "active" => s.current_period_end.is_some_and(|e| now < e + if s.cancel_at_period_end != 0 { 0 } else { self.grace_ms() }),
            "trialing" => s.trial_end.is_some_and(|e| now < e),
            "past_due" => self.grace_period_end(s).is_some_and(|e| now < e),
            _ => false,
        }
    }

    /// The tiers (by name) of `publisher/slug` the viewer holds a subscription to that
    /// grants access now, for the product page: one query, none of a view's lookups.
    pub async fn owned_tiers(&self, viewer: &Viewer, publisher: &str, slug: &str) -> Result<Vec<String>, CommerceError> {
        let now = self.now();
        Ok(self
            .db
            .subscriptions_of(&viewer.account.id)
            .await?
            .into_iter()
            .filter(|s| s.publisher == publisher && s.slug == slug && self.entitled(s, now))
            .map(|s| s.tier_name)
            .collect())
    }

    async fn view(&self, s: SubscriptionRecord, registry_host: &str) -> Result<Subscription, CommerceError> {
        let now = self.now();
        let pull_command = self.catalog.pull_command(&s.repository, &s.tier_tags, registry_host).await?;
        let grace_period_end = self.grace_period_end(&s);
        let entitled = self.entitled(&s, now);
        let price = if s.billing_period == "free" { None } else { Some(money(s.amount, &s.currency)?.into()) };
        Ok(Subscription {
            id: s.id,
            product: s.listing_name,
            product_path: product_path(&s.publisher, &s.slug),
            tier: s.tier_name,
            access: Access::parse(&s.access).unwrap_or(Access::Licensed),
            status: s.status,
            price,
            billing_period: s.billing_period,
            current_period_start: s.current_period_start,
            current_period_end: s.current_period_end,
            trial_end: s.trial_end,
            cancel_at_period_end: s.cancel_at_period_end != 0,
            grace_period_end,
            ended_at: s.ended_at,
            license_version: s.license_version,
            license_accepted_at: s.license_accepted_at,
            pull_command,
            entitled,
        })
    }

    /// Cancels a subscription: at the period's end (the default; access lasts until
    /// then), or at once, refunding the unused part of the period where the publisher's
    /// policy allows.
    pub async fn cancel(&self, viewer: &Viewer, id: &str, at_period_end: bool, registry_host: &str) -> Result<Subscription, CommerceError> {
        let s = self.owned_subscription(viewer, id).await?;
        if !matches!(s.status.as_str(), "active" | "trialing" | "past_due") {
            return Err(CommerceError::Conflict(format!("the subscription is {} already", s.status)));
        }
        let recurring = s.current_period_end.is_some() && s.status != "past_due";
        if at_period_end && recurring {
            self.db.set_cancel_at_period_end(id, true, s.current_period_end).await?;
        } else {
            let refundable = s.status == "active" && self.config.prorated_refunds.contains(&s.publisher);
            let refunded = match (refundable, s.current_period_start, s.current_period_end) {
                (true, Some(start), Some(end)) if end > start => {
                    self.prorated_refund(&s, start, end, "canceled by the customer: unused part of the period", "customer").await?
                }
                _ => false,
            };
            if !refunded {
                self.db.end_subscription(id, "canceled").await?;
            }
        }
        self.subscription_view(viewer, id, registry_host).await
    }

    /// Refunds the unused part of the current period on cancellation, ending the
    /// subscription with it; false when nothing was left to refund.
    async fn prorated_refund(&self, s: &SubscriptionRecord, start: i64, end: i64, reason: &str, by: &str) -> Result<bool, CommerceError> {
        let Some(payment) = self.db.payments_of_subscription(&s.id).await?.into_iter().find(|p| p.status == "succeeded") else {
            return Ok(false);
        };
        let unused = (end - self.now()).clamp(0, end - start);
        let refundable = payment.amount - self.db.refunded(&payment.id).await?;
        // i128: amount times milliseconds overflows i64 for large amounts.
        let amount = i64::try_from(i128::from(refundable) * i128::from(unused) / i128::from(end - start)).unwrap_or(0);
        if amount <= 0 {
            return Ok(false);
        }
        self.write_refund(s, &payment.id, amount, reason, by, AfterRefund::End).await?;
        Ok(true)
    }

    /// Ends the live subscriptions of revoked products (the vulnerability policy's last
    /// step, or a moderator's revocation): a paid period is refunded for its unused part,
    /// whatever the publisher's refund policy, since the store took the product away.
    /// Each is handled on its own; one that fails is logged and retried next run. Returns
    /// how many ended.
    pub async fn end_revoked_subscriptions(&self) -> Result<usize, CommerceError> {
        const PAGE: i64 = 200;
        let mut ended = 0;
        loop {
            let page = self.db.subscriptions_of_revoked(PAGE).await?;
            let mut progressed = false;
            for s in &page {
                match self.end_revoked(s).await {
                    Ok(()) => {
                        ended += 1;
                        progressed = true;
                    }
                    Err(e) => tracing::warn!(subscription = %s.id, error = %e, "ending a revoked product's subscription failed"),
                }
            }
            // A page that ended nothing is all failures: they wait for the next run.
            if (page.len() as i64) < PAGE || !progressed {
                return Ok(ended);
            }
        }
    }

    async fn end_revoked(&self, s: &SubscriptionRecord) -> Result<(), CommerceError> {
        let refunded = match (s.status.as_str(), s.current_period_start, s.current_period_end) {
            ("active", Some(start), Some(end)) if end > start => {
                let reason = "the product was revoked from the store: unused part of the period";
                self.prorated_refund(s, start, end, reason, "store").await?
            }
            _ => false,
        };
        if !refunded {
            self.db.end_subscription(&s.id, "canceled").await?;
        }
        Ok(())
    }

    /// Moves a subscription to another tier of its product billed alike (same currency and
    /// period), for the rest of the current period: a dearer tier is charged the prorated
    /// difference now, a cheaper one refunds it; the next renewal charges the new price. A
    /// trial just changes tier.
    pub async fn change_tier(&self, viewer: &Viewer, id: &str, tier: &str, registry_host: &str) -> Result<Subscription, CommerceError> {
        let s = self.owned_subscription(viewer, id).await?;
        if !matches!(s.status.as_str(), "active" | "trialing") || s.cancel_at_period_end != 0 {
            return Err(CommerceError::Conflict(format!(
                "the subscription is {}{}: only an active one changes tiers",
                s.status,
                if s.cancel_at_period_end != 0 { " and ends with its period" } else { "" }
            )));
        }
        let listing = self.catalog.listing(Some(viewer), &s.publisher, &s.slug).await?;
        let target = listing
            .tiers
            .iter()
            .find(|t| t.slug == tier)
            .ok_or_else(|| CommerceError::NotFound(format!("{} has no tier {tier:?}", listing.name)))?;
        let tier_id = slipway_types::entitlement_id(&s.publisher, &s.slug, &target.slug);
        if tier_id == s.tier_id {
            return Err(CommerceError::Conflict(format!("the subscription is to {} already", target.name)));
        }
        if target.is_free() || target.currency != s.currency || target.billing_period != s.billing_period {
            return Err(CommerceError::Invalid(format!(
                "{} is billed {}: a subscription moves between paid tiers billed alike ({} {}); cancel and buy the other instead",
                target.name,
                target.price_label(),
                s.currency,
                s.billing_period
            )));
        }
        let retier = Retier { tier_id: &tier_id, amount: target.amount };
        let (Some(start), Some(end)) = (s.current_period_start, s.current_period_end) else {
            return Err(CommerceError::Internal("an active recurring subscription without a period".into()));
        };
        if s.status == "trialing" {
            self.db.retier(id, &retier).await?;
            return self.subscription_view(viewer, id, registry_host).await;
        }
        let now = self.now();
        let unused = (end - now).clamp(0, end - start);
        let prorate = |amount: i64| i64::try_from(i128::from(amount) * i128::from(unused) / i128::from((end - start).max(1))).unwrap_or(0);
        let (credit, charge) = (prorate(s.amount), prorate(target.amount));
        let currency = money(0, &s.currency)?.currency;
        let buyer = self.buyer(&s.account_id, &s.account_name).await?;
        match charge - credit {
            0 => self.db.retier(id, &retier).await?,
            net if net > 0 => {
                let method = match &s.payment_method_id {
                    Some(m) => self.db.payment_method(m).await?,
                    None => None,
                }
                .ok_or_else(|| CommerceError::Invalid("no payment method on file to charge the difference".into()))?;
                let line = |description: String, amount: i64| -> Result<InvoiceLine, CommerceError> {
                    let assessed = self.config.tax.assess(place(&buyer), Money::new(amount.abs(), currency))?;
                    Ok(InvoiceLine {
                        description,
                        amount,
                        tax: assessed.tax.minor * amount.signum(),
                        tax_name: assessed.name,
                        tax_rate_bps: i64::from(assessed.rate_bps),
                        period_start: Some(now),
                        period_end: Some(end),
                    })
                };
                let lines = [
                    line(format!("Unused time on {} {}", s.listing_name, s.tier_name), -credit)?,
                    line(format!("Remaining time on {} {}", s.listing_name, target.name), charge)?,
                ];
                let tax: i64 = lines.iter().map(|l| l.tax).sum();
                let tax_account = self.config.tax.assess(place(&buyer), Money::new(net, currency))?.account;
                let (subtotal, tax) = (Money::new(net, currency), Money::new(tax.max(0), currency));
                let total = subtotal.checked_add(&tax).map_err(overflow)?;
                let (fee, share) = subtotal.split_bps(self.fee_bps(&s.publisher)).map_err(overflow)?;
                let prefix = format!("prorate:{id}:{start}:");
                let key = format!("{prefix}{}", self.db.attempts(id, &prefix).await?);
                let description = format!("{} {} to {}", s.listing_name, s.tier_name, target.name);
                let outcome = self
                    .provider
                    .charge(&ChargeRequest {
                        customer: &s.account_id,
                        method: &method.reference,
                        amount: total,
                        idempotency_key: &key,
                        description: &description,
                        off_session: false,
                    })
                    .await?;
                let payment_id = new_id();
                let reference = match outcome {
                    ChargeOutcome::Succeeded { reference } => reference,
                    ChargeOutcome::Declined { code, message } => {
                        let failure = format!("{code}: {message}");
                        let payment = NewPayment {
                            id: &payment_id,
                            account_id: &s.account_id,
                            subscription_id: Some(id),
                            provider: self.provider.name(),
                            reference: "",
                            payment_method_id: Some(&method.id),
                            amount: total.minor,
                            currency: &s.currency,
                            status: "failed",
                            failure: &failure,
                            idempotency_key: &key,
                        };
                        self.db.record_failed_payment(&payment, None).await?;
                        return Err(CommerceError::Declined(message));
                    }
                };
                let invoice_id = new_id();
                let entries = charge_entries(self.provider.name(), &s.publisher, &tax_account, total, tax, fee, share);
                let ledger_key = format!("ledger:{key}");
                self.db
                    .record_proration(&ProrationWrite {
                        subscription_id: id,
                        retier,
                        payment: NewPayment {
                            id: &payment_id,
                            account_id: &s.account_id,
                            subscription_id: Some(id),
                            provider: self.provider.name(),
                            reference: &reference,
                            payment_method_id: Some(&method.id),
                            amount: total.minor,
                            currency: &s.currency,
                            status: "succeeded",
                            failure: "",
                            idempotency_key: &key,
                        },
                        invoice: NewInvoice {
                            id: &invoice_id,
                            seller: &s.publisher,
                            kind: "invoice",
                            account_id: &s.account_id,
                            subscription_id: Some(id),
                            payment_id: Some(&payment_id),
                            credits: None,
                            currency: &s.currency,
                            subtotal: net,
                            tax: tax.minor,
                            total: total.minor,
                            platform_fee: fee.minor,
                            buyer: &buyer,
                            reverse_charge: false,
                            lines: &lines,
                        },
                        ledger: NewLedgerTransaction {
                            id: &new_id(),
                            kind: "charge",
                            reference: &invoice_id,
                            idempotency_key: &ledger_key,
                            entries: &entries,
                        },
                    })
                    .await?;
            }
            net => {
                // The difference comes back from the period's payment, tax in proportion.
                let payment = self
                    .db
                    .payments_of_subscription(id)
                    .await?
                    .into_iter()
                    .find(|p| p.status == "succeeded")
                    .ok_or_else(|| CommerceError::Invalid("nothing was paid on this subscription".into()))?;
                let assessed = self.config.tax.assess(place(&buyer), Money::new(-net, currency))?;
                let remaining = payment.amount - self.db.refunded(&payment.id).await?;
                let amount = (-net + assessed.tax.minor).min(remaining);
                let reason = format!("moved to {}: unused difference of the period", target.name);
                if amount > 0 {
                    self.write_refund(&s, &payment.id, amount, &reason, &viewer.account.name, AfterRefund::Retier(retier)).await?;
                } else {
                    self.db.retier(id, &retier).await?;
                }
            }
        }
        self.subscription_view(viewer, id, registry_host).await
    }

    // ---- refunds -------------------------------------------------------------------------

    /// Refunds (part of) the subscription's last payment: by the publisher's owners or an
    /// administrator, never more than was paid. A refund of everything paid ends the
    /// subscription and its entitlement.
    pub async fn refund(&self, viewer: &Viewer, input: &RefundInput) -> Result<Refund, CommerceError> {
        let s = self
            .db
            .subscription(&input.subscription)
            .await?
            .ok_or_else(|| CommerceError::NotFound(format!("no subscription {:?}", input.subscription)))?;
        check(viewer, Action::Refund, Resource::Sales { publisher: &s.publisher })?;
        if input.reason.chars().count() > MAX_REASON {
            return Err(CommerceError::Invalid(format!("a refund's reason has at most {MAX_REASON} characters")));
        }
        let payment = self
            .db
            .payments_of_subscription(&s.id)
            .await?
            .into_iter()
            .find(|p| p.status == "succeeded")
            .ok_or_else(|| CommerceError::Invalid("nothing was paid on this subscription".into()))?;
        let remaining = payment.amount - self.db.refunded(&payment.id).await?;
        let amount = input.amount.unwrap_or(remaining);
        if amount <= 0 {
            return Err(CommerceError::Invalid(format!("a refund is of a positive amount, not {amount}")));
        }
        if amount > remaining {
            return Err(CommerceError::Invalid(format!(
                "{} was paid and {} is left to refund: {} is too much",
                money(payment.amount, &payment.currency)?,
                money(remaining, &payment.currency)?,
                money(amount, &payment.currency)?
            )));
        }
        let full = amount == remaining;
        let reason = if input.reason.trim().is_empty() { "requested by the publisher" } else { input.reason.trim() };
        let then = if full { AfterRefund::End } else { AfterRefund::Keep };
        let (id, credit_note) = self.write_refund(&s, &payment.id, amount, reason, &viewer.account.name, then).await?;
        Ok(Refund {
            id,
            subscription: s.id,
            amount: money(amount, &payment.currency)?.into(),
            credit_note: self.invoice_view(&credit_note).await?,
            ended_subscription: full,
        })
    }

    /// Refunds `amount` of a payment through the provider, then writes the refund, its
    /// credit note and the ledger reversal (tax, fee and share in proportion) together.
    async fn write_refund(
        &self,
        s: &SubscriptionRecord,
        payment_id: &str,
        amount: i64,
        reason: &str,
        by: &str,
        then: AfterRefund<'_>,
    ) -> Result<(String, String), CommerceError> {
        let payment = self.db.payment(payment_id).await?.ok_or_else(|| CommerceError::NotFound(format!("no payment {payment_id}")))?;
        let invoice = self
            .db
            .invoice_of_payment(payment_id)
            .await?
            .ok_or_else(|| CommerceError::Internal(format!("payment {payment_id} has no invoice")))?;
        let before = self.db.refunded(payment_id).await?;
        let part = Proportion { paid: invoice.total, before, amount };
        let tax = part.of(invoice.tax);
        let fee = part.of(invoice.platform_fee);
        let share = amount - tax - fee;
        let currency = money(0, &invoice.currency)?.currency;
        let m = |minor| Money::new(minor, currency);
        let provider_key = format!("refund:{payment_id}:{before}:{amount}");
        let reference =
            self.provider.refund(&RefundRequest { payment: &payment.reference, amount: m(amount), idempotency_key: &provider_key }).await?;
        let tax_account = self.tax_account(&invoice);
        let entries: Vec<LedgerEntry> =
            charge_entries(self.provider.name(), &s.publisher, &tax_account, m(amount), m(tax), m(fee), m(share))
                .into_iter()
                .map(|e| LedgerEntry { amount: -e.amount, ..e })
                .collect();
        let buyer = BillingProfileRecord {
            name: invoice.buyer_name.clone(),
            country: invoice.buyer_country.clone(),
            region: invoice.buyer_region.clone(),
            postal_code: invoice.buyer_postal_code.clone(),
            tax_id: invoice.buyer_tax_id.clone(),
            ..BillingProfileRecord::default()
        };
        let (refund_id, credit_note_id) = (new_id(), new_id());
        let line = InvoiceLine {
            description: format!("Refund: {reason}"),
            amount: amount - tax,
            tax,
            tax_name: String::new(),
            tax_rate_bps: 0,
            period_start: None,
            period_end: None,
        };
        let ledger_key = format!("ledger:{provider_key}");
        let w = RefundWrite {
            refund: NewRefund {
                id: &refund_id,
                payment_id,
                invoice_id: &invoice.id,
                subscription_id: Some(&s.id),
                amount,
                currency: &invoice.currency,
                reason,
                refunded_by: by,
                reference: &reference,
            },
            credit_note: NewInvoice {
                id: &credit_note_id,
                seller: &invoice.seller,
                kind: "credit_note",
                account_id: &invoice.account_id,
                subscription_id: Some(&s.id),
                payment_id: Some(payment_id),
                credits: Some(&invoice.id),
                currency: &invoice.currency,
                subtotal: amount - tax,
                tax,
                total: amount,
                platform_fee: fee,
                buyer: &buyer,
                reverse_charge: invoice.reverse_charge != 0,
                lines: std::slice::from_ref(&line),
            },
            ledger: NewLedgerTransaction {
                id: &new_id(),
                kind: "refund",
                reference: &credit_note_id,
                idempotency_key: &ledger_key,
                entries: &entries,
            },
            end_subscription: matches!(then, AfterRefund::End).then_some("canceled"),
            retier: match then {
                AfterRefund::Retier(retier) => Some(retier),
                AfterRefund::Keep | AfterRefund::End => None,
            },
        };
        self.db.record_refund(&w, payment.amount).await.map_err(|e| match e {
            DbError::Conflict(why) => CommerceError::Invalid(why),
            other => other.into(),
        })?;
        Ok((refund_id, credit_note_id))
    }

    /// The ledger account an invoice's tax was owed to, from its buyer's place.
    fn tax_account(&self, invoice: &InvoiceRecord) -> String {
        let price = Money::zero(Currency::parse(&invoice.currency).unwrap_or(Currency::parse("USD").expect("USD")));
        let place = (!invoice.buyer_country.is_empty()).then_some((
            invoice.buyer_country.as_str(),
            invoice.buyer_region.as_str(),
            invoice.buyer_tax_id.as_str(),
        ));
        self.config.tax.assess(place, price).map(|a| a.account).unwrap_or_default()
    }

    // ---- renewals ------------------------------------------------------------------------

    /// Renews, retries, converts and ends what is due: the scheduler's job. Each
    /// subscription is handled on its own; one that fails is logged and retried next run.
    pub async fn renew_due(&self) -> Result<RenewalReport, CommerceError> {
        use futures::StreamExt;
        let now = self.now();
        let mut report = RenewalReport::default();
        self.db.expire_keys(now - KEY_TTL_MS).await?;
        for stale in self.db.stale_reservations(now - STALE_RESERVATION_MS, RENEWAL_BATCH).await? {
            self.db.drop_reservation(&stale).await?;
        }
        // Batch after batch until nothing is due, a batch moves nothing on (the ones left
        // keep failing: the next run tries them again), or the run has taken its budget.
        let started = std::time::Instant::now();
        // SQLite has one writer: renewals at once would only queue for it (and time out
        // waiting); PostgreSQL writes them side by side.
        let concurrency = match self.db.backend() {
            slipway_db::Backend::Sqlite => 1,
            slipway_db::Backend::Postgres => RENEWAL_CONCURRENCY,
        };
        loop {
            let due = self.db.due_renewals(now, RENEWAL_BATCH).await?;
            let (count, full) = (due.len() as u64, due.len() as i64 == RENEWAL_BATCH);
            let skipped_before = report.skipped;
            let mut due = due.into_iter().peekable();
            while due.peek().is_some() {
                // Owned, not borrowed: a stream of futures borrowing from the batch is not
                // Send as the scheduler's job needs it.
                let chunk: Vec<DueRenewal> = due.by_ref().take(RENEWAL_WRITE_CHUNK).collect();
                let steps: Vec<(String, Result<RenewStep, CommerceError>)> = futures::stream::iter(chunk)
                    .map(|d| async move {
                        let step = self.renew(&d, now).await;
                        (d.subscription.id, step)
                    })
                    .buffered(concurrency)
                    .collect()
                    .await;
                let mut paid = Vec::new();
                for (id, step) in steps {
                    match step {
                        Ok(RenewStep::Paid(charge)) => paid.push(charge),
                        Ok(RenewStep::Declined) => report.declined += 1,
                        Ok(RenewStep::Ended) => report.ended += 1,
                        Err(e) => {
                            report.skipped += 1;
                            tracing::warn!(subscription = %id, error = %e, "renewal failed; retried at the next run");
                        }
                    }
                }
                let recorded = self.record_renewals(&paid).await;
                report.renewed += recorded;
                report.skipped += paid.len() as u64 - recorded;
            }
            let stuck = report.skipped - skipped_before == count;
            if !full || stuck || started.elapsed() > RENEWAL_RUN_BUDGET {
                return Ok(report);
            }
        }
    }

    /// Records the renewals' charges together; when that fails (one subscription changed
    /// meanwhile), each on its own, so the others still count. Returns how many were
    /// recorded; the rest are charged again with the same key at the next run, which the
    /// provider answers with the charge it already took.
    async fn record_renewals(&self, paid: &[Box<PaidCharge>]) -> u64 {
        let all: Vec<&PaidCharge> = paid.iter().map(|p| &**p).collect();
        if all.is_empty() {
            return 0;
        }
        match self.record_paid(&all).await {
            Ok(()) => return all.len() as u64,
            Err(e) if all.len() == 1 => {
                tracing::warn!(subscription = %all[0].subscription_id, error = %e, "renewal not recorded; retried at the next run");
                return 0;
            }
            Err(e) => tracing::info!(renewals = all.len(), error = %e, "recording renewals one by one"),
        }
        let mut recorded = 0;
        for p in all {
            match self.record_paid(&[p]).await {
                Ok(()) => recorded += 1,
                Err(e) => tracing::warn!(subscription = %p.subscription_id, error = %e, "renewal not recorded; retried at the next run"),
            }
        }
        recorded
    }

    /// One due subscription's renewal up to its charge: ended, declined (and so recorded),
    /// or paid and still to be recorded (`record_renewals`).
    async fn renew(&self, d: &DueRenewal, now: i64) -> Result<RenewStep, CommerceError> {
        let s = &d.subscription;
        let Some(period_end_at) = s.current_period_end else { return Ok(RenewStep::Ended) };
        if s.cancel_at_period_end != 0 {
            self.db.end_subscription(&s.id, "canceled").await?;
            return Ok(RenewStep::Ended);
        }
        let grace_end = period_end_at + self.grace_ms();
        if s.status == "past_due" && now >= grace_end {
            self.db.end_subscription(&s.id, "expired").await?;
            return Ok(RenewStep::Ended);
        }
        let Some(method) = d.payment_method() else {
            // A trial without a payment method ends with the trial.
            self.db.end_subscription(&s.id, "expired").await?;
            return Ok(RenewStep::Ended);
        };
        let buyer = d.billing_profile().unwrap_or_else(|| unprofiled_buyer(&s.account_id, &s.account_name));
        let renewal = self.renewal_price(d, period_end(period_end_at, &s.billing_period))?;
        let charge = PeriodCharge {
            subscription_id: &s.id,
            account_id: &s.account_id,
            tier_id: &s.tier_id,
            publisher: &s.publisher,
            description: format!("{} {}", s.listing_name, s.tier_name),
            billing_period: &s.billing_period,
            price: renewal.price,
            method: &method,
            buyer: &buyer,
            start: period_end_at,
            attempt: d.failed_attempts,
            off_session: true,
            from: &s.status,
            price_notice_at: renewal.notice_at,
            notice: renewal.notice,
        };
        match self.take_charge(&charge).await? {
            Taken::Paid(paid) => Ok(RenewStep::Paid(paid)),
            Taken::Declined { .. } => {
                let change = SubscriptionChange {
                    status: "past_due",
                    amount: s.amount,
                    current_period_start: s.current_period_start,
                    current_period_end: s.current_period_end,
                    past_due_since: s.past_due_since.or(Some(now)),
                    // The last retry falls at the grace period's end, which then expires it.
                    next_attempt_at: Some((now + RETRY_AFTER_MS).min(grace_end)),
                    price_notice_at: s.price_notice_at,
                    ..SubscriptionChange::default()
                };
                self.db
                    .change_subscription(
                        &s.id,
                        &[s.status.as_str()],
                        &change,
                        Some(&Grant { tier: &s.tier_id, expires_at: Some(grace_end) }),
                        false,
                    )
                    .await?;
                Ok(RenewStep::Declined)
            }
        }
    }

    /// The price a renewal charges: the subscription's own, until the tier's price has
    /// changed and the customer has been told, with the renewal that noticed it; then the
    /// new one, from the renewal after. Returns the price, when the notice went out, and
    /// the notice to send with this renewal (recipient, subject, body).
    fn renewal_price(&self, d: &DueRenewal, next_end: Option<i64>) -> Result<RenewalPrice, CommerceError> {
        let s = &d.subscription;
        let current = money(s.amount, &s.currency)?;
        let unchanged = RenewalPrice { price: current, notice_at: s.price_notice_at, notice: None };
        let (amount, currency) = (d.tier_amount, &d.tier_currency);
        if *currency != s.currency || amount <= 0 || amount == s.amount {
            return Ok(unchanged);
        }
        if s.price_notice_at.is_some() {
            return Ok(RenewalPrice { price: money(amount, currency)?, notice_at: None, notice: None });
        }
        let new = money(amount, currency)?;
        let when = next_end
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map_or_else(String::new, |t| format!(" on {}", t.format("%Y-%m-%d")));
        let notice = s.account_email.clone().map(|recipient| {
            let subject = format!("The price of {} {} changes at your next renewal", s.listing_name, s.tier_name);
            let body = format!(
                "Hello {},\n\nThe price of your {} {} subscription changes from {current} to {new} per {}. This renewal was charged \
                 at the old price; the new one applies from your next renewal{when}.\n\nTo keep the old terms until then and stop \
                 there, cancel at the period's end in /subscriptions.\n",
                s.account_name, s.listing_name, s.tier_name, s.billing_period
            );
            (recipient, subject, body)
        });
        Ok(RenewalPrice { price: current, notice_at: Some(self.now()), notice })
    }

    /// Pays a past-due subscription now with `payment_method` (saved for later renewals).
    pub async fn pay(&self, viewer: &Viewer, id: &str, payment_method: &str, registry_host: &str) -> Result<Subscription, CommerceError> {
        let s = self.owned_subscription(viewer, id).await?;
        if s.status != "past_due" {
            return Err(CommerceError::Conflict(format!("the subscription is {}, not past due: nothing to pay", s.status)));
        }
        let method = self.save_method(&s.account_id, payment_method).await?;
        let start = s.current_period_end.ok_or_else(|| CommerceError::Internal("a past-due subscription without a period".into()))?;
        let buyer = self.buyer(&s.account_id, &viewer.account.name).await?;
        let charge = PeriodCharge {
            subscription_id: &s.id,
            account_id: &s.account_id,
            tier_id: &s.tier_id,
            publisher: &s.publisher,
            description: format!("{} {}", s.listing_name, s.tier_name),
            billing_period: &s.billing_period,
            price: money(s.amount, &s.currency)?,
            method: &method,
            buyer: &buyer,
            start,
            attempt: self.db.failed_attempts(&s.id, &charge_key_prefix(&s.id, start)).await?,
            off_session: false,
            from: "past_due",
            price_notice_at: s.price_notice_at,
            notice: None,
        };
        match self.charge_period(&charge).await? {
            Charged::Paid { .. } => self.subscription_view(viewer, id, registry_host).await,
            Charged::Declined { message } => Err(CommerceError::Declined(message)),
        }
    }

    /// Where invoices, payments and refunds disagree with the ledger (`slipway ledger
    /// verify` prints these after the ledger's own checks); empty when they agree.
    pub async fn verify(&self) -> Result<Vec<String>, CommerceError> {
        Ok([self.db.verify(MAX_PROBLEMS_PER_CHECK).await?, crate::payouts::verify(&self.db, MAX_PROBLEMS_PER_CHECK).await?].concat())
    }

    // ---- invoices --------------------------------------------------------------------------

    pub async fn invoices(&self, viewer: &Viewer) -> Result<Vec<Invoice>, CommerceError> {
        let mut out = Vec::new();
        for record in self.db.invoices_of(&viewer.account.id, MAX_INVOICES).await? {
            out.push(self.invoice_view(&record.id).await?);
        }
        Ok(out)
    }

    /// An invoice for its buyer, the seller's owners or an administrator.
    pub async fn invoice(&self, viewer: &Viewer, id: &str) -> Result<Invoice, CommerceError> {
        let invoice = self.invoice_view(id).await?;
        let (record, _) = self.db.invoice(id).await?.ok_or_else(|| CommerceError::NotFound("no such invoice".into()))?;
        let buyer = check(viewer, Action::ManageSubscription, Resource::Subscription { owner: &record.account_id });
        if buyer.is_err() {
            check(viewer, Action::ViewSales, Resource::Sales { publisher: &record.seller })
                .map_err(|_| CommerceError::NotFound("no such invoice".into()))?;
        }
        Ok(invoice)
    }

    async fn invoice_view(&self, id: &str) -> Result<Invoice, CommerceError> {
        let (r, lines) = self.db.invoice(id).await?.ok_or_else(|| CommerceError::NotFound("no such invoice".into()))?;
        let m = |minor| money(minor, &r.currency).map(Amount::from);
        Ok(Invoice {
            id: r.id.clone(),
            number: invoice_number(&r.seller, r.number),
            seller: r.seller.clone(),
            kind: r.kind.clone(),
            subscription: r.subscription_id.clone(),
            credits: r.credits.clone(),
            subtotal: m(r.subtotal)?,
            tax: m(r.tax)?,
            total: m(r.total)?,
            buyer: BillingProfile {
                name: r.buyer_name.clone(),
                country: r.buyer_country.clone(),
                region: r.buyer_region.clone(),
                postal_code: r.buyer_postal_code.clone(),
                tax_id: r.buyer_tax_id.clone(),
            },
            reverse_charge: r.reverse_charge != 0,
            lines: lines
                .into_iter()
                .map(|l| {
                    Ok(InvoiceLineView {
                        description: l.description,
                        amount: m(l.amount)?,
                        tax: m(l.tax)?,
                        tax_name: l.tax_name,
                        tax_rate_bps: l.tax_rate_bps,
                        period_start: l.period_start,
                        period_end: l.period_end,
                    })
                })
                .collect::<Result<_, CommerceError>>()?,
            created_at: r.created_at,
        })
    }
}

/// `ACME-000042`.
pub fn invoice_number(seller: &str, number: i64) -> String {
    format!("{}-{number:06}", seller.to_ascii_uppercase())
}

fn place(buyer: &BillingProfileRecord) -> Option<(&str, &str, &str)> {
    (!buyer.country.is_empty()).then_some((buyer.country.as_str(), buyer.region.as_str(), buyer.tax_id.as_str()))
}

fn tier_price(tier: &Tier) -> Result<Money, CommerceError> {
    let price = money(tier.amount, &tier.currency)?;
    if price.minor <= 0 {
        return Err(CommerceError::Invalid(format!("{} is free", tier.name)));
    }
    Ok(price)
}

/// The ledger entries of a charge of `total` (tax included): the provider's cash is
/// debited with all of it, and credited to the tax owed, the platform's fee and the
/// publisher's payable share. Zero legs are left out (the ledger refuses them).
/// The buyer on an invoice of an account without a billing profile: its name, no address.
fn unprofiled_buyer(account_id: &str, name: &str) -> BillingProfileRecord {
    BillingProfileRecord { account_id: account_id.to_owned(), name: name.to_owned(), ..BillingProfileRecord::default() }
}

fn charge_entries(
    provider: &str,
    publisher: &str,
    tax_account: &str,
    total: Money,
    tax: Money,
    fee: Money,
    share: Money,
) -> Vec<LedgerEntry> {
    let currency = total.currency.code().to_owned();
    let entry = |account: String, amount: i64| LedgerEntry { account, currency: currency.clone(), amount };
    [
        entry(format!("cash:{provider}"), total.minor),
        entry(tax_account.to_owned(), -tax.minor),
        entry("platform:fees".into(), -fee.minor),
        entry(format!("publisher:{publisher}:payable"), -share.minor),
    ]
    .into_iter()
    .filter(|e| e.amount != 0)
    .collect()
}

/// The part of a charged amount that a refund gives back, taken cumulatively so that
/// refunds adding up to the whole give back exactly the whole: each refund gets the
/// rounded-down share of everything refunded so far, less what earlier ones got.
struct Proportion {
    paid: i64,
    before: i64,
    amount: i64,
}

impl Proportion {
    fn of(&self, part: i64) -> i64 {
        let share = |refunded: i64| {
            if self.paid == 0 {
                return 0;
            }
            i64::try_from(i128::from(part) * i128::from(refunded) / i128::from(self.paid)).unwrap_or(0)
        };
        share(self.before + self.amount) - share(self.before)
    }
}

struct PeriodCharge<'a> {
    subscription_id: &'a str,
    account_id: &'a str,
    tier_id: &'a str,
    publisher: &'a str,
    description: String,
    billing_period: &'a str,
    price: Money,
    method: &'a PaymentMethodRecord,
    /// Who the invoice is to (`Commerce::buyer`).
    buyer: &'a BillingProfileRecord,
    start: i64,
    /// Failed charges for this period so far: this attempt's number, in its key.
    attempt: i64,
    off_session: bool,
    /// The status the subscription must still be in for the payment to be recorded.
    from: &'a str,
    price_notice_at: Option<i64>,
    /// A notice to the customer written with the payment: (recipient, subject, body).
    notice: Option<(String, String, String)>,
}

/// What charging a period came to (`Commerce::take_charge`).
enum Taken {
    Paid(Box<PaidCharge>),
    Declined { message: String },
}

/// A charge the provider took, with everything that records it: owned, so that the
/// renewals can record a batch of them in one transaction (`Commerce::record_paid`).
struct PaidCharge {
    subscription_id: String,
    from: String,
    account_id: String,
    tier_id: String,
    publisher: String,
    method_id: String,
    provider: String,
    /// The provider's reference of the charge.
    reference: String,
    /// The charge's idempotency key at the provider, and its ledger transaction's.
    key: String,
    ledger_key: String,
    price: Money,
    total: Money,
    fee: Money,
    start: i64,
    end: Option<i64>,
    price_notice_at: Option<i64>,
    /// The entitlement's end: the period's and the grace period after it.
    access_until: Option<i64>,
    buyer: BillingProfileRecord,
    reverse_charge: bool,
    line: InvoiceLine,
    entries: Vec<LedgerEntry>,
    notice: Option<(String, String, String)>,
    period_id: String,
    payment_id: String,
    invoice_id: String,
    ledger_id: String,
    notice_id: String,
}

impl PaidCharge {
    fn write(&self) -> PaidPeriod<'_> {
        let currency = self.total.currency.code();
        PaidPeriod {
            subscription_id: &self.subscription_id,
            from: &self.from,
            change: SubscriptionChange {
                status: "active",
                amount: self.price.minor,
                payment_method_id: Some(&self.method_id),
                current_period_start: Some(self.start),
                current_period_end: self.end,
                price_notice_at: self.price_notice_at,
                ..SubscriptionChange::default()
            },
            period: NewPeriod { id: &self.period_id, kind: "paid", start: self.start, end: self.end },
            payment: NewPayment {
                id: &self.payment_id,
                account_id: &self.account_id,
                subscription_id: Some(&self.subscription_id),
                provider: &self.provider,
                reference: &self.reference,
                payment_method_id: Some(&self.method_id),
                amount: self.total.minor,
                currency,
                status: "succeeded",
                failure: "",
                idempotency_key: &self.key,
            },
            invoice: NewInvoice {
                id: &self.invoice_id,
                seller: &self.publisher,
                kind: "invoice",
                account_id: &self.account_id,
                subscription_id: Some(&self.subscription_id),
                payment_id: Some(&self.payment_id),
                credits: None,
                currency,
                subtotal: self.price.minor,
                tax: self.line.tax,
                total: self.total.minor,
                platform_fee: self.fee.minor,
                buyer: &self.buyer,
                reverse_charge: self.reverse_charge,
                lines: std::slice::from_ref(&self.line),
            },
            grant: Some(Grant { tier: &self.tier_id, expires_at: self.access_until }),
            ledger: NewLedgerTransaction {
                id: &self.ledger_id,
                kind: "charge",
                reference: &self.invoice_id,
                idempotency_key: &self.ledger_key,
                entries: &self.entries,
            },
            notice: self.notice.as_ref().map(|(recipient, subject, body)| Mail { id: &self.notice_id, recipient, subject, body }),
        }
    }
}

/// What a renewal charges and tells (`Commerce::renewal_price`).
struct RenewalPrice {
    price: Money,
    notice_at: Option<i64>,
    notice: Option<(String, String, String)>,
}

enum Charged {
    Paid { invoice_id: String },
    Declined { message: String },
}

/// What a refund does to its subscription besides giving money back.
enum AfterRefund<'a> {
    Keep,
    /// Ends it and its access (a full refund, a cancellation at once).
    End,
    /// Moves it to a cheaper tier (the refund is the unused difference).
    Retier(Retier<'a>),
}

/// Where a due subscription's renewal got to (`Commerce::renew`).
enum RenewStep {
    Paid(Box<PaidCharge>),
    Declined,
    Ended,
}

impl From<CatalogError> for CommerceError {
    fn from(e: CatalogError) -> CommerceError {
        CommerceError::Catalog(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_follow_the_calendar() {
        let at = |s: &str| chrono::DateTime::parse_from_rfc3339(s).unwrap().timestamp_millis();
        assert_eq!(period_end(at("2026-01-31T10:00:00Z"), "month"), Some(at("2026-02-28T10:00:00Z")));
        assert_eq!(period_end(at("2028-02-29T00:00:00Z"), "year"), Some(at("2029-02-28T00:00:00Z")));
        assert_eq!(period_end(at("2026-12-06T00:00:00Z"), "month"), Some(at("2027-01-06T00:00:00Z")));
        assert_eq!(period_end(at("2026-12-06T00:00:00Z"), "one_time"), None);
    }

    #[test]
    fn partial_refunds_add_up_to_exactly_the_whole() {
        // 10 refunds of 1 of a total of 10 with tax 3: each gets 0 or 1, together 3.
        let (paid, tax) = (10, 3);
        let mut given = 0;
        for before in 0..paid {
            given += Proportion { paid, before, amount: 1 }.of(tax);
        }
        assert_eq!(given, tax);
        assert_eq!(Proportion { paid: 1190, before: 0, amount: 1190 }.of(190), 190, "a full refund gives all the tax back");
        assert_eq!(Proportion { paid: 1190, before: 0, amount: 595 }.of(190), 95);
    }

    #[test]
    fn charge_entries_balance_and_leave_out_zero_legs() {
        let usd = Currency::parse("USD").unwrap();
        let m = |minor| Money::new(minor, usd);
        let entries = charge_entries("sandbox", "acme", "tax:DE", m(5831), m(931), m(980), m(3920));
        assert_eq!(entries.iter().map(|e| e.amount).sum::<i64>(), 0);
        assert_eq!(entries.len(), 4);
        let untaxed = charge_entries("sandbox", "acme", "", m(4900), m(0), m(980), m(3920));
        assert_eq!(
            untaxed.iter().map(|e| e.account.as_str()).collect::<Vec<_>>(),
            ["cash:sandbox", "platform:fees", "publisher:acme:payable"]
        );
    }
}

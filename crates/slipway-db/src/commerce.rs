//! Commerce: billing profiles, payment methods, subscriptions with their periods, payments,
//! invoices and credit notes, refunds, and the idempotency keys of money-moving requests.
//!
//! Every write that records money (`record_paid_periods`, `record_refund`) runs in one
//! database transaction with the ledger transaction that records the same movement
//! (`ledger::post_in`) and the entitlement it grants or ends, so a charge never exists
//! without its invoice, ledger entries and access, or the other way round. The caller
//! (slipway-commerce) computes amounts and entries; this module writes them whole.

use sqlx::{Any, Transaction};

use crate::ledger::{post_all_in, post_in};
use crate::sign_in::{Mail, enqueue_mail_in};
use crate::{CommerceDb, DbError, NewLedgerTransaction};

/// Statuses in which a subscription is live: at most one per account and tier.
pub const LIVE_STATUSES: &str = "('incomplete', 'trialing', 'active', 'past_due')";

#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct BillingProfileRecord {
    pub account_id: String,
    pub name: String,
    /// ISO 3166-1 alpha-2.
    pub country: String,
    pub region: String,
    pub postal_code: String,
    /// Empty when none.
    pub tax_id: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentMethodRecord {
    pub id: String,
    pub account_id: String,
    pub provider: String,
    pub reference: String,
    pub brand: String,
    pub last4: String,
    pub created_at: i64,
}

/// A subscription as stored, with the product it is to (for lists and pages).
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct SubscriptionRecord {
    pub id: String,
    pub account_id: String,
    /// The customer's account name, for invoices without a billing profile.
    pub account_name: String,
    /// Where notices to the customer go.
    pub account_email: Option<String>,
    pub tier_id: String,
    pub tier_name: String,
    pub repository: String,
    pub tier_tags: String,
    pub access: String,
    pub listing_name: String,
    pub publisher: String,
    pub slug: String,
    pub license_version: i64,
    pub license_accepted_at: i64,
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub billing_period: String,
    pub payment_method_id: Option<String>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
    pub cancel_at_period_end: i64,
    pub past_due_since: Option<i64>,
    pub next_attempt_at: Option<i64>,
    pub price_notice_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub ended_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// A subscription's columns (`SubscriptionRecord`) and the tables they come from, apart
/// so that a query can add columns of its own between them (`due_renewals`).
macro_rules! subscription_fields {
    () => {
    "s.id, s.account_id, a.name AS account_name, a.email AS account_email, s.tier_id, t.name AS tier_name, t.repository, t.tags AS tier_tags, t.access,
     l.name AS listing_name, l.publisher, l.slug, s.license_version, s.license_accepted_at, s.status, s.amount, s.currency,
     s.billing_period, s.payment_method_id, s.current_period_start, s.current_period_end, s.trial_end, s.cancel_at_period_end,
     s.past_due_since, s.next_attempt_at, s.price_notice_at, s.canceled_at, s.ended_at, s.created_at, s.updated_at"
    };
}
macro_rules! subscription_from {
    () => {
    "FROM subscriptions s JOIN tiers t ON t.id = s.tier_id JOIN listings l ON l.id = t.listing_id JOIN accounts a ON a.id = s.account_id"
    };
}
pub(crate) const SUBSCRIPTION_COLUMNS: &str = concat!(subscription_fields!(), " ", subscription_from!());

/// The idempotency-key prefix of the charges for subscription `s`'s current period, in
/// SQL: `charge_key_prefix` (which the charges use) spelled for a query.
const CHARGE_KEY_PREFIX: &str = "('charge:' || s.id || ':' || s.current_period_end || ':')";

/// The idempotency-key prefix of the charges for the period of `subscription_id` from
/// `start`: each attempt's key is this and the attempt's number, so a retry after a
/// failure is a new charge and a repeat of the same attempt is not.
pub fn charge_key_prefix(subscription_id: &str, start: i64) -> String {
    format!("charge:{subscription_id}:{start}:")
}

/// A subscription due for renewal with what its renewal reads (`due_renewals`).
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct DueRenewal {
    #[sqlx(flatten)]
    pub subscription: SubscriptionRecord,
    method_provider: Option<String>,
    method_reference: Option<String>,
    method_brand: Option<String>,
    method_last4: Option<String>,
    method_created_at: Option<i64>,
    /// The tier's price now (a change applies from the renewal after the one noticing it).
    pub tier_amount: i64,
    pub tier_currency: String,
    buyer_name: Option<String>,
    buyer_country: Option<String>,
    buyer_region: Option<String>,
    buyer_postal_code: Option<String>,
    buyer_tax_id: Option<String>,
    /// Failed charges for the current period so far: the next attempt's number.
    pub failed_attempts: i64,
}

impl DueRenewal {
    /// The payment method on file, if it still exists.
    pub fn payment_method(&self) -> Option<PaymentMethodRecord> {
        let s = &self.subscription;
        Some(PaymentMethodRecord {
            id: s.payment_method_id.clone()?,
            account_id: s.account_id.clone(),
            provider: self.method_provider.clone()?,
            reference: self.method_reference.clone()?,
            brand: self.method_brand.clone().unwrap_or_default(),
            last4: self.method_last4.clone().unwrap_or_default(),
            created_at: self.method_created_at.unwrap_or_default(),
        })
    }

    /// The buyer's billing profile, if they saved one.
    pub fn billing_profile(&self) -> Option<BillingProfileRecord> {
        Some(BillingProfileRecord {
            account_id: self.subscription.account_id.clone(),
            name: self.buyer_name.clone()?,
            country: self.buyer_country.clone().unwrap_or_default(),
            region: self.buyer_region.clone().unwrap_or_default(),
            postal_code: self.buyer_postal_code.clone().unwrap_or_default(),
            tax_id: self.buyer_tax_id.clone().unwrap_or_default(),
            created_at: 0,
            updated_at: 0,
        })
    }
}

/// A subscription about to be created (a checkout's reservation, a trial, a free tier).
#[derive(Clone, Debug)]
pub struct NewSubscription<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub tier_id: &'a str,
    pub license_version: i64,
    pub status: &'a str,
    pub amount: i64,
    pub currency: &'a str,
    pub billing_period: &'a str,
    pub payment_method_id: Option<&'a str>,
    /// The caller and Idempotency-Key of the request making it: the key records it, in
    /// the same transaction, for a retry that takes the key over (`key_resource`).
    pub for_key: Option<(&'a str, &'a str)>,
}

/// The state a subscription moves to.
#[derive(Clone, Debug, Default)]
pub struct SubscriptionChange<'a> {
    pub status: &'a str,
    pub amount: i64,
    pub payment_method_id: Option<&'a str>,
    pub current_period_start: Option<i64>,
    pub current_period_end: Option<i64>,
    pub trial_end: Option<i64>,
    pub past_due_since: Option<i64>,
    pub next_attempt_at: Option<i64>,
    pub price_notice_at: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct NewPeriod<'a> {
    pub id: &'a str,
    /// trial or paid.
    pub kind: &'a str,
    pub start: i64,
    pub end: Option<i64>,
}

#[derive(Clone, Debug)]
pub struct NewPayment<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub subscription_id: Option<&'a str>,
    pub provider: &'a str,
    /// The provider's id (empty for a failure it gave none).
    pub reference: &'a str,
    pub payment_method_id: Option<&'a str>,
    pub amount: i64,
    pub currency: &'a str,
    /// succeeded or failed.
    pub status: &'a str,
    pub failure: &'a str,
    pub idempotency_key: &'a str,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct PaymentRecord {
    pub id: String,
    pub account_id: String,
    pub subscription_id: Option<String>,
    pub provider: String,
    pub reference: String,
    pub amount: i64,
    pub currency: String,
    pub status: String,
    pub failure: String,
    pub created_at: i64,
}

/// One line of an invoice or credit note: amount before tax, and its tax.
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct InvoiceLine {
    pub description: String,
    pub amount: i64,
    pub tax: i64,
    pub tax_name: String,
    pub tax_rate_bps: i64,
    pub period_start: Option<i64>,
    pub period_end: Option<i64>,
}

/// An invoice or credit note to write; its number is the seller's next.
#[derive(Clone, Debug)]
pub struct NewInvoice<'a> {
    pub id: &'a str,
    pub seller: &'a str,
    /// invoice or credit_note.
    pub kind: &'a str,
    pub account_id: &'a str,
    pub subscription_id: Option<&'a str>,
    pub payment_id: Option<&'a str>,
    /// For a credit note: the invoice it credits.
    pub credits: Option<&'a str>,
    pub currency: &'a str,
    pub subtotal: i64,
    pub tax: i64,
    pub total: i64,
    pub platform_fee: i64,
    pub buyer: &'a BillingProfileRecord,
    pub reverse_charge: bool,
    pub lines: &'a [InvoiceLine],
}

#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct InvoiceRecord {
    pub id: String,
    pub seller: String,
    pub number: i64,
    pub kind: String,
    pub account_id: String,
    pub subscription_id: Option<String>,
    pub payment_id: Option<String>,
    pub credits: Option<String>,
    pub currency: String,
    pub subtotal: i64,
    pub tax: i64,
    pub total: i64,
    pub platform_fee: i64,
    pub buyer_name: String,
    pub buyer_country: String,
    pub buyer_region: String,
    pub buyer_postal_code: String,
    pub buyer_tax_id: String,
    pub reverse_charge: i64,
    pub created_at: i64,
}

pub(crate) const INVOICE_COLUMNS: &str =
    "id, seller, number, kind, account_id, subscription_id, payment_id, credits, currency, subtotal, tax, total,
     platform_fee, buyer_name, buyer_country, buyer_region, buyer_postal_code, buyer_tax_id, reverse_charge, created_at";

/// The access a change grants: the entitlement (named like the subscription) to `tier`
/// until `expires_at` (None: no end).
#[derive(Clone, Debug)]
pub struct Grant<'a> {
    pub tier: &'a str,
    pub expires_at: Option<i64>,
}

/// A period paid for (a checkout, a renewal, a trial's conversion, a past-due payment):
/// everything one successful charge writes, together.
#[derive(Clone, Debug)]
pub struct PaidPeriod<'a> {
    pub subscription_id: &'a str,
    /// The status the subscription must still be in for the payment to be recorded.
    pub from: &'a str,
    pub change: SubscriptionChange<'a>,
    pub period: NewPeriod<'a>,
    pub payment: NewPayment<'a>,
    pub invoice: NewInvoice<'a>,
    pub grant: Option<Grant<'a>>,
    pub ledger: NewLedgerTransaction<'a>,
    /// A notice to the customer sent with it (a price change at the next renewal).
    pub notice: Option<Mail<'a>>,
}

#[derive(Clone, Debug)]
pub struct NewRefund<'a> {
    pub id: &'a str,
    pub payment_id: &'a str,
    pub invoice_id: &'a str,
    pub subscription_id: Option<&'a str>,
    pub amount: i64,
    pub currency: &'a str,
    pub reason: &'a str,
    pub refunded_by: &'a str,
    pub reference: &'a str,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct RefundRecord {
    pub id: String,
    pub payment_id: String,
    pub invoice_id: String,
    pub credit_note_id: String,
    pub subscription_id: Option<String>,
    pub amount: i64,
    pub currency: String,
    pub reason: String,
    pub refunded_by: String,
    pub created_at: i64,
}

/// What a refund writes together: the refund, its credit note, the ledger reversal and,
/// for one that ends the subscription, its end and the entitlement's.
#[derive(Clone, Debug)]
pub struct RefundWrite<'a> {
    pub refund: NewRefund<'a>,
    pub credit_note: NewInvoice<'a>,
    pub ledger: NewLedgerTransaction<'a>,
    /// Some(status): the subscription ends now in this status (canceled) and its
    /// entitlement is revoked.
    pub end_subscription: Option<&'a str>,
    /// Some: the refund is the unused difference of a move to a cheaper tier, made with it.
    pub retier: Option<Retier<'a>>,
}

/// A move of a subscription to another tier of its product for the rest of its period.
#[derive(Clone, Debug)]
pub struct Retier<'a> {
    pub tier_id: &'a str,
    /// The new tier's price per period.
    pub amount: i64,
}

/// A tier change that costs more for the rest of the period: the difference charged,
/// with its invoice and ledger transaction, and the move, together.
#[derive(Clone, Debug)]
pub struct ProrationWrite<'a> {
    pub subscription_id: &'a str,
    pub retier: Retier<'a>,
    pub payment: NewPayment<'a>,
    pub invoice: NewInvoice<'a>,
    pub ledger: NewLedgerTransaction<'a>,
}

/// What a claim on an idempotency key found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyClaim {
    /// The key is new: the caller does the work, then `finish_key` (or `release_key`).
    Claimed,
    /// The request was answered before: its status and body.
    Done { status: i64, response: String },
    /// A request with the key is still running.
    Running,
    /// The key was used with another request.
    OtherRequest,
}

impl CommerceDb {
    // ---- billing profiles and payment methods ----------------------------------------

    pub async fn billing_profile(&self, account_id: &str) -> Result<Option<BillingProfileRecord>, DbError> {
        Ok(sqlx::query_as::<Any, BillingProfileRecord>(
            "SELECT account_id, name, country, region, postal_code, tax_id, created_at, updated_at FROM billing_profiles WHERE account_id = $1",
        )
        .bind(account_id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Creates or replaces the account's billing profile (created_at stays).
    pub async fn put_billing_profile(&self, p: &BillingProfileRecord) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        sqlx::query(
            "INSERT INTO billing_profiles (account_id, name, country, region, postal_code, tax_id, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $7)
             ON CONFLICT (account_id) DO UPDATE SET name = excluded.name, country = excluded.country, region = excluded.region,
                 postal_code = excluded.postal_code, tax_id = excluded.tax_id, updated_at = excluded.updated_at",
        )
        .bind(&p.account_id)
        .bind(&p.name)
        .bind(&p.country)
        .bind(&p.region)
        .bind(&p.postal_code)
        .bind(&p.tax_id)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn add_payment_method(&self, m: &PaymentMethodRecord) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO payment_methods (id, account_id, provider, reference, brand, last4, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&m.id)
        .bind(&m.account_id)
        .bind(&m.provider)
        .bind(&m.reference)
        .bind(&m.brand)
        .bind(&m.last4)
        .bind(self.clock.now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn payment_method(&self, id: &str) -> Result<Option<PaymentMethodRecord>, DbError> {
        Ok(sqlx::query_as::<Any, PaymentMethodRecord>(
            "SELECT id, account_id, provider, reference, brand, last4, created_at FROM payment_methods WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    // ---- subscriptions ---------------------------------------------------------------

    /// Creates a subscription; `DbError::Conflict` when the account already has a live one
    /// to the tier (the unique index decides, so concurrent checkouts cannot both pass).
    pub async fn create_subscription(&self, s: &NewSubscription<'_>) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        let inserted = sqlx::query(
            "INSERT INTO subscriptions (id, account_id, tier_id, license_version, license_accepted_at, status, amount, currency,
                 billing_period, payment_method_id, cancel_at_period_end, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 0, $5, $5)
             ON CONFLICT DO NOTHING",
        )
        .bind(s.id)
        .bind(s.account_id)
        .bind(s.tier_id)
        .bind(s.license_version)
        .bind(now)
        .bind(s.status)
        .bind(s.amount)
        .bind(s.currency)
        .bind(s.billing_period)
        .bind(s.payment_method_id)
        .execute(&mut *tx)
        .await?;
        if inserted.rows_affected() == 0 {
            return Err(DbError::Conflict(format!("already subscribed to {}", s.tier_id)));
        }
        if let Some((caller, key)) = s.for_key {
            sqlx::query("UPDATE idempotency_keys SET resource = $1 WHERE caller = $2 AND idempotency_key = $3 AND state = 'running'")
                .bind(s.id)
                .bind(caller)
                .bind(key)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Subscribes an account to a free tier having accepted `license_version`, and for a
    /// licensed tier grants the entitlement the registry checks, in one transaction.
    /// Subscribing again records the newer acceptance on the live subscription.
    pub async fn subscribe_free(
        &self,
        id: &str,
        account_id: &str,
        tier_id: &str,
        license_version: i64,
        licensed: bool,
    ) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        let live: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM subscriptions WHERE account_id = $1 AND tier_id = $2 AND status IN {LIVE_STATUSES}"
        )))
        .bind(account_id)
        .bind(tier_id)
        .fetch_optional(&mut *tx)
        .await?;
        let id = match live {
            Some(live) => {
                sqlx::query("UPDATE subscriptions SET license_version = $1, license_accepted_at = $2, updated_at = $2 WHERE id = $3")
                    .bind(license_version)
                    .bind(now)
                    .bind(&live)
                    .execute(&mut *tx)
                    .await?;
                live
            }
            None => {
                sqlx::query(
                    "INSERT INTO subscriptions (id, account_id, tier_id, license_version, license_accepted_at, status, amount, currency,
                         billing_period, cancel_at_period_end, created_at, updated_at)
                     VALUES ($1, $2, $3, $4, $5, 'active', 0, 'USD', 'free', 0, $5, $5)",
                )
                .bind(id)
                .bind(account_id)
                .bind(tier_id)
                .bind(license_version)
                .bind(now)
                .execute(&mut *tx)
                .await?;
                id.to_owned()
            }
        };
        if licensed {
            grant(&mut tx, now, &id, account_id, &Grant { tier: tier_id, expires_at: None }).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn subscription(&self, id: &str) -> Result<Option<SubscriptionRecord>, DbError> {
        Ok(sqlx::query_as::<Any, SubscriptionRecord>(sqlx::AssertSqlSafe(format!("SELECT {SUBSCRIPTION_COLUMNS} WHERE s.id = $1")))
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Live subscriptions (trialing, active, past due) to tiers of revoked listings, at
    /// most `limit`: the store ends them.
    pub async fn subscriptions_of_revoked(&self, limit: i64) -> Result<Vec<SubscriptionRecord>, DbError> {
        Ok(sqlx::query_as::<Any, SubscriptionRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {SUBSCRIPTION_COLUMNS}
             WHERE l.status = 'revoked' AND s.status IN ('trialing', 'active', 'past_due') ORDER BY s.id LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// The account's subscriptions, newest first, reservations of checkouts in progress
    /// left out.
    pub async fn subscriptions_of(&self, account_id: &str) -> Result<Vec<SubscriptionRecord>, DbError> {
        Ok(sqlx::query_as::<Any, SubscriptionRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} WHERE s.account_id = $1 AND s.status <> 'incomplete' ORDER BY s.created_at DESC, s.id"
        )))
        .bind(account_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// Whether the account ever had a trial of the tier (a trial is offered once).
    pub async fn had_trial(&self, account_id: &str, tier_id: &str) -> Result<bool, DbError> {
        let n: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM subscriptions WHERE account_id = $1 AND tier_id = $2 AND trial_end IS NOT NULL")
                .bind(account_id)
                .bind(tier_id)
                .fetch_one(&self.read)
                .await?;
        Ok(n > 0)
    }

    /// Up to `limit` subscriptions due at `now` (a period ended, or a retry's time came),
    /// each with all a renewal reads: its payment method, its tier's current price, the
    /// buyer's billing profile and the failed attempts at this period's charge. One query
    /// per batch rather than four per renewal. The due ones are picked first, from the
    /// `subscriptions_due` index alone and in no particular order: sorting them all (or
    /// joining them all before the limit) made each batch cost as much as every due
    /// subscription, 100,000 at a time.
    pub async fn due_renewals(&self, now: i64, limit: i64) -> Result<Vec<DueRenewal>, DbError> {
        Ok(sqlx::query_as::<Any, DueRenewal>(sqlx::AssertSqlSafe(format!(
            "SELECT {fields},
                 pm.provider AS method_provider, pm.reference AS method_reference, pm.brand AS method_brand,
                 pm.last4 AS method_last4, pm.created_at AS method_created_at,
                 t.amount AS tier_amount, t.currency AS tier_currency,
                 b.name AS buyer_name, b.country AS buyer_country, b.region AS buyer_region,
                 b.postal_code AS buyer_postal_code, b.tax_id AS buyer_tax_id,
                 (SELECT COUNT(*) FROM payments p WHERE p.subscription_id = s.id AND p.status = 'failed'
                    AND substr(p.idempotency_key, 1, length({CHARGE_KEY_PREFIX})) = {CHARGE_KEY_PREFIX}) AS failed_attempts
             {from}
             JOIN (
                 SELECT id FROM subscriptions
                 WHERE (status IN ('active', 'trialing') AND current_period_end <= $1) OR (status = 'past_due' AND next_attempt_at <= $1)
                 LIMIT $2
             ) due ON due.id = s.id
             LEFT JOIN payment_methods pm ON pm.id = s.payment_method_id
             LEFT JOIN billing_profiles b ON b.account_id = s.account_id",
            fields = subscription_fields!(),
            from = subscription_from!(),
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Failed charges of the subscription whose idempotency key starts with `key_prefix`
    /// (one period's attempts): the next attempt's number.
    pub async fn failed_attempts(&self, subscription_id: &str, key_prefix: &str) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM payments WHERE subscription_id = $1 AND status = 'failed' AND substr(idempotency_key, 1, length($2)) = $2",
        )
        .bind(subscription_id)
        .bind(key_prefix)
        .fetch_one(&self.write)
        .await?)
    }

    /// Reservations older than `before`: checkouts that never finished.
    pub async fn stale_reservations(&self, before: i64, limit: i64) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT id FROM subscriptions WHERE status = 'incomplete' AND created_at < $1 ORDER BY created_at LIMIT $2")
            .bind(before)
            .bind(limit)
            .fetch_all(&self.read)
            .await?)
    }

    /// Moves a subscription to `change` when it is still in one of `from` (so a change
    /// computed from a stale read does nothing: false), with the entitlement `grant` (or,
    /// for None with `revoke`, revoking it), in one transaction.
    pub async fn change_subscription(
        &self,
        id: &str,
        from: &[&str],
        change: &SubscriptionChange<'_>,
        grant_access: Option<&Grant<'_>>,
        revoke: bool,
    ) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        let changed = update_subscription(&mut tx, now, id, from, change).await?;
        if changed {
            let account_id: String =
                sqlx::query_scalar("SELECT account_id FROM subscriptions WHERE id = $1").bind(id).fetch_one(&mut *tx).await?;
            if let Some(g) = grant_access {
                grant(&mut tx, now, id, &account_id, g).await?;
            } else if revoke {
                revoke_grant(&mut tx, now, id).await?;
            }
        }
        tx.commit().await?;
        Ok(changed)
    }

    /// Ends a subscription (canceled or expired) and revokes its entitlement, unless it has
    /// ended already.
    pub async fn end_subscription(&self, id: &str, status: &str) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        let ended = end(&mut tx, now, id, status).await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// Sets or clears cancellation at the period's end; the entitlement then ends with the
    /// period (`expires_at`) rather than after the grace period.
    pub async fn set_cancel_at_period_end(&self, id: &str, cancel: bool, expires_at: Option<i64>) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        let n = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE subscriptions SET cancel_at_period_end = $1, canceled_at = $2, updated_at = $3
             WHERE id = $4 AND status IN {LIVE_STATUSES}"
        )))
        .bind(i64::from(cancel))
        .bind(cancel.then_some(now))
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if n > 0 {
            sqlx::query("UPDATE entitlements SET expires_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(expires_at)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Records a failed charge; for a checkout's reservation (`drop_reservation`) removes
    /// the reservation too, so the customer may try again.
    pub async fn record_failed_payment(&self, payment: &NewPayment<'_>, drop_reservation: Option<&str>) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        insert_payments(&mut tx, now, &[payment]).await?;
        if let Some(id) = drop_reservation {
            sqlx::query("DELETE FROM subscriptions WHERE id = $1 AND status = 'incomplete'").bind(id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Drops a checkout's reservation that was never charged.
    pub async fn drop_reservation(&self, id: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM subscriptions WHERE id = $1 AND status = 'incomplete'").bind(id).execute(&self.write).await?;
        Ok(())
    }

    /// Writes everything successful charges for periods record, in one transaction: each
    /// subscription's new state, the period, the payment, the invoice with its lines and
    /// number, the entitlement, the ledger transaction and any notice. `DbError::Conflict`
    /// when a subscription is no longer in a state its charge was for, or a period was paid
    /// already (its unique key): nothing at all is written then. Several at once (the
    /// renewals) cost a few statements each rather than a transaction each.
    pub async fn record_paid_periods(&self, all: &[PaidPeriod<'_>]) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        for w in all {
            if !update_subscription(&mut tx, now, w.subscription_id, &[w.from], &w.change).await? {
                return Err(DbError::Conflict(format!("subscription {} changed while it was being charged", w.subscription_id)));
            }
        }
        for chunk in all.chunks(crate::BATCH_PARAMETERS / 7) {
            let sql = format!(
                "INSERT INTO subscription_periods (id, subscription_id, kind, period_start, period_end, invoice_id, created_at)
                 VALUES {} ON CONFLICT DO NOTHING RETURNING subscription_id",
                crate::values_list(chunk.len(), 7)
            );
            let mut query = sqlx::query_scalar::<Any, String>(sqlx::AssertSqlSafe(sql));
            for w in chunk {
                query = query.bind(w.period.id).bind(w.subscription_id).bind(w.period.kind).bind(w.period.start);
                query = query.bind(w.period.end).bind(w.invoice.id).bind(now);
            }
            let inserted: std::collections::HashSet<String> = query.fetch_all(&mut *tx).await?.into_iter().collect();
            if let Some(w) = chunk.iter().find(|w| !inserted.contains(w.subscription_id)) {
                return Err(DbError::Conflict(format!(
                    "the period from {} of subscription {} is paid already",
                    w.period.start, w.subscription_id
                )));
            }
        }
        insert_payments(&mut tx, now, &all.iter().map(|w| &w.payment).collect::<Vec<_>>()).await?;
        let grants: Vec<_> = all.iter().filter_map(|w| w.grant.as_ref().map(|g| (w.subscription_id, w.payment.account_id, g))).collect();
        grant_all(&mut tx, now, &grants).await?;
        let ledger: Vec<NewLedgerTransaction<'_>> = all.iter().map(|w| w.ledger.clone()).collect();
        post_all_in(&mut tx, &self.clock, &ledger).await?;
        for notice in all.iter().filter_map(|w| w.notice.as_ref()) {
            enqueue_mail_in(&mut tx, now, notice).await?;
        }
        // Last: the seller's invoice counter is the one row every charge to that seller
        // shares, so it is held for as short a time as the transaction allows.
        insert_invoices(&mut tx, now, &all.iter().map(|w| &w.invoice).collect::<Vec<_>>()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Records a trial's start: the period row (kind trial) with the subscription's move
    /// to trialing and its entitlement.
    pub async fn record_trial(
        &self,
        subscription_id: &str,
        change: &SubscriptionChange<'_>,
        period: &NewPeriod<'_>,
        g: &Grant<'_>,
    ) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        if !update_subscription(&mut tx, now, subscription_id, &["incomplete"], change).await? {
            return Err(DbError::Conflict(format!("subscription {subscription_id} is not a checkout in progress")));
        }
        sqlx::query(
            "INSERT INTO subscription_periods (id, subscription_id, kind, period_start, period_end, invoice_id, created_at)
             VALUES ($1, $2, $3, $4, $5, NULL, $6)",
        )
        .bind(period.id)
        .bind(subscription_id)
        .bind(period.kind)
        .bind(period.start)
        .bind(period.end)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let account_id: String =
            sqlx::query_scalar("SELECT account_id FROM subscriptions WHERE id = $1").bind(subscription_id).fetch_one(&mut *tx).await?;
        grant(&mut tx, now, subscription_id, &account_id, g).await?;
        tx.commit().await?;
        Ok(())
    }

    // ---- payments, invoices and refunds ------------------------------------------------

    pub async fn payment(&self, id: &str) -> Result<Option<PaymentRecord>, DbError> {
        Ok(sqlx::query_as::<Any, PaymentRecord>(
            "SELECT id, account_id, subscription_id, provider, reference, amount, currency, status, failure, created_at FROM payments WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// A subscription's payments, newest first.
    pub async fn payments_of_subscription(&self, subscription_id: &str) -> Result<Vec<PaymentRecord>, DbError> {
        Ok(sqlx::query_as::<Any, PaymentRecord>(
            "SELECT id, account_id, subscription_id, provider, reference, amount, currency, status, failure, created_at FROM payments
             WHERE subscription_id = $1 ORDER BY created_at DESC, id",
        )
        .bind(subscription_id)
        .fetch_all(&self.read)
        .await?)
    }

    pub async fn invoice(&self, id: &str) -> Result<Option<(InvoiceRecord, Vec<InvoiceLine>)>, DbError> {
        let Some(invoice) =
            sqlx::query_as::<Any, InvoiceRecord>(sqlx::AssertSqlSafe(format!("SELECT {INVOICE_COLUMNS} FROM invoices WHERE id = $1")))
                .bind(id)
                .fetch_optional(&self.read)
                .await?
        else {
            return Ok(None);
        };
        let lines = sqlx::query_as::<Any, InvoiceLine>(
            "SELECT description, amount, tax, tax_name, tax_rate_bps, period_start, period_end FROM invoice_lines WHERE invoice_id = $1 ORDER BY position",
        )
        .bind(id)
        .fetch_all(&self.read)
        .await?;
        Ok(Some((invoice, lines)))
    }

    /// The account's invoices and credit notes, newest first, at most `limit`.
    pub async fn invoices_of(&self, account_id: &str, limit: i64) -> Result<Vec<InvoiceRecord>, DbError> {
        Ok(sqlx::query_as::<Any, InvoiceRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices WHERE account_id = $1 ORDER BY created_at DESC, number DESC LIMIT $2"
        )))
        .bind(account_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// The invoice a payment was charged on.
    pub async fn invoice_of_payment(&self, payment_id: &str) -> Result<Option<InvoiceRecord>, DbError> {
        Ok(sqlx::query_as::<Any, InvoiceRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {INVOICE_COLUMNS} FROM invoices WHERE payment_id = $1 AND kind = 'invoice'"
        )))
        .bind(payment_id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Refunded so far on a payment.
    pub async fn refunded(&self, payment_id: &str) -> Result<i64, DbError> {
        let total: Option<i64> = sqlx::query_scalar("SELECT CAST(SUM(amount) AS BIGINT) FROM refunds WHERE payment_id = $1")
            .bind(payment_id)
            .fetch_one(&self.read)
            .await?;
        Ok(total.unwrap_or(0))
    }

    pub async fn refunds_of_subscription(&self, subscription_id: &str) -> Result<Vec<RefundRecord>, DbError> {
        Ok(sqlx::query_as::<Any, RefundRecord>(
            "SELECT id, payment_id, invoice_id, credit_note_id, subscription_id, amount, currency, reason, refunded_by, created_at
             FROM refunds WHERE subscription_id = $1 ORDER BY created_at, id",
        )
        .bind(subscription_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// Writes a refund with its credit note and ledger reversal in one transaction,
    /// refusing (`DbError::Conflict`, nothing written) one that would take the payment's
    /// refunds above `paid`: checked inside the transaction, so two concurrent refunds
    /// cannot together exceed it.
    pub async fn record_refund(&self, w: &RefundWrite<'_>, paid: i64) -> Result<i64, DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        // On PostgreSQL, lock the payment's row so concurrent refunds of it queue here.
        sqlx::query("UPDATE payments SET status = status WHERE id = $1").bind(w.refund.payment_id).execute(&mut *tx).await?;
        let before: Option<i64> = sqlx::query_scalar("SELECT CAST(SUM(amount) AS BIGINT) FROM refunds WHERE payment_id = $1")
            .bind(w.refund.payment_id)
            .fetch_one(&mut *tx)
            .await?;
        let before = before.unwrap_or(0);
        if before + w.refund.amount > paid {
            return Err(DbError::Conflict(format!(
                "{} was paid and {before} refunded already: at most {} more can be refunded",
                paid,
                paid - before
            )));
        }
        let number = insert_invoice(&mut tx, now, &w.credit_note).await?;
        let r = &w.refund;
        sqlx::query(
            "INSERT INTO refunds (id, payment_id, invoice_id, credit_note_id, subscription_id, amount, currency, reason, refunded_by,
                 reference, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(r.id)
        .bind(r.payment_id)
        .bind(r.invoice_id)
        .bind(w.credit_note.id)
        .bind(r.subscription_id)
        .bind(r.amount)
        .bind(r.currency)
        .bind(r.reason)
        .bind(r.refunded_by)
        .bind(r.reference)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        post_in(&mut tx, &self.clock, &w.ledger).await?;
        if let (Some(status), Some(id)) = (w.end_subscription, r.subscription_id) {
            end(&mut tx, now, id, status).await?;
        }
        if let (Some(retier), Some(id)) = (&w.retier, r.subscription_id) {
            move_tier(&mut tx, now, id, retier).await?;
        }
        tx.commit().await?;
        Ok(number)
    }

    /// Moves an active subscription to another tier for no money (a trial, or a change
    /// that costs the same), with its entitlement.
    pub async fn retier(&self, id: &str, retier: &Retier<'_>) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        move_tier(&mut tx, self.clock.now_ms(), id, retier).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Charges the difference of a move to a dearer tier and makes the move, together.
    pub async fn record_proration(&self, w: &ProrationWrite<'_>) -> Result<i64, DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        move_tier(&mut tx, now, w.subscription_id, &w.retier).await?;
        insert_payments(&mut tx, now, &[&w.payment]).await?;
        let number = insert_invoice(&mut tx, now, &w.invoice).await?;
        post_in(&mut tx, &self.clock, &w.ledger).await?;
        tx.commit().await?;
        Ok(number)
    }

    /// Payments of a subscription whose idempotency key starts with `key_prefix`, of any
    /// status: the next attempt's number for a kind of charge that may repeat in a period.
    pub async fn attempts(&self, subscription_id: &str, key_prefix: &str) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM payments WHERE subscription_id = $1 AND substr(idempotency_key, 1, length($2)) = $2")
            .bind(subscription_id)
            .bind(key_prefix)
            .fetch_one(&self.write)
            .await?)
    }

    // ---- cross-checks with the ledger ------------------------------------------------------

    /// Where the business records and the ledger disagree, each as a line for people (at
    /// most `limit` per check): a payment without its invoice or of another amount, an
    /// invoice or credit note whose ledger transaction moved other cash, invoice arithmetic
    /// that does not add up, refunds above their payment, numbering with gaps, and charge
    /// or refund transactions without their document. Set-based queries, so a large ledger
    /// is checked in a few statements.
    pub async fn verify(&self, limit: i64) -> Result<Vec<String>, DbError> {
        let checks: [(&str, &str); 7] = [
            (
                "payment {} has no invoice of its amount",
                "SELECT p.id FROM payments p LEFT JOIN invoices i ON i.payment_id = p.id AND i.kind = 'invoice'
                 WHERE p.status = 'succeeded' AND (i.id IS NULL OR i.total <> p.amount) ORDER BY p.id LIMIT $1",
            ),
            (
                "invoice {}: the ledger's cash does not equal its total",
                "SELECT i.id FROM invoices i LEFT JOIN ledger_transactions t ON t.reference = i.id
                     LEFT JOIN ledger_entries e ON e.transaction_id = t.id AND substr(e.account, 1, 5) = 'cash:'
                 GROUP BY i.id, i.kind, i.total
                 HAVING COALESCE(SUM(e.amount), 0) <> CASE WHEN i.kind = 'credit_note' THEN -i.total ELSE i.total END
                 ORDER BY i.id LIMIT $1",
            ),
            (
                "invoice {}: subtotal and tax do not add up to its total",
                "SELECT id FROM invoices WHERE subtotal + tax <> total ORDER BY id LIMIT $1",
            ),
            (
                "invoice {}: its lines do not add up to its subtotal and tax",
                "SELECT i.id FROM invoices i LEFT JOIN invoice_lines l ON l.invoice_id = i.id GROUP BY i.id, i.subtotal, i.tax
                 HAVING COALESCE(SUM(l.amount), 0) <> i.subtotal OR COALESCE(SUM(l.tax), 0) <> i.tax ORDER BY i.id LIMIT $1",
            ),
            (
                "payment {} was refunded more than it took",
                "SELECT p.id FROM payments p JOIN refunds r ON r.payment_id = p.id GROUP BY p.id, p.amount
                 HAVING SUM(r.amount) > p.amount ORDER BY p.id LIMIT $1",
            ),
            (
                "seller {}: invoice numbers have gaps",
                "SELECT c.seller FROM invoice_counters c LEFT JOIN invoices i ON i.seller = c.seller GROUP BY c.seller, c.last_number
                 HAVING COUNT(i.id) <> c.last_number OR COALESCE(MAX(i.number), 0) <> c.last_number ORDER BY c.seller LIMIT $1",
            ),
            (
                "ledger transaction {} records a charge or refund with no invoice or credit note",
                "SELECT t.id FROM ledger_transactions t LEFT JOIN invoices i ON i.id = t.reference
                 WHERE t.kind IN ('charge', 'refund') AND i.id IS NULL ORDER BY t.id LIMIT $1",
            ),
        ];
        let mut problems = Vec::new();
        for (message, sql) in checks {
            for id in sqlx::query_scalar::<Any, String>(sql).bind(limit).fetch_all(&self.read).await? {
                problems.push(message.replace("{}", &id));
            }
        }
        Ok(problems)
    }

    // ---- idempotency keys ----------------------------------------------------------------

    /// Claims `key` for `caller`'s request (`request_hash` identifies its method, path and
    /// body) for `lease_ms`. A key whose request still runs after its lease (the process
    /// running it died) is taken over: `Claimed` again, by one retry only.
    pub async fn claim_key(&self, caller: &str, key: &str, request_hash: &str, lease_ms: i64) -> Result<KeyClaim, DbError> {
        let now = self.clock.now_ms();
        let inserted = sqlx::query(
            "INSERT INTO idempotency_keys (caller, idempotency_key, request_hash, state, status, response, created_at, locked_until)
             VALUES ($1, $2, $3, 'running', 0, '', $4, $5) ON CONFLICT DO NOTHING",
        )
        .bind(caller)
        .bind(key)
        .bind(request_hash)
        .bind(now)
        .bind(now + lease_ms)
        .execute(&self.write)
        .await?;
        if inserted.rows_affected() == 1 {
            return Ok(KeyClaim::Claimed);
        }
        let (hash, state, status, response, locked_until) = sqlx::query_as::<Any, (String, String, i64, String, i64)>(
            "SELECT request_hash, state, status, response, locked_until FROM idempotency_keys WHERE caller = $1 AND idempotency_key = $2",
        )
        .bind(caller)
        .bind(key)
        .fetch_one(&self.write)
        .await?;
        if hash != request_hash {
            return Ok(KeyClaim::OtherRequest);
        }
        if state != "running" {
            return Ok(KeyClaim::Done { status, response });
        }
        if locked_until > now {
            return Ok(KeyClaim::Running);
        }
        // Compare-and-set on the lease seen: of retries arriving together, one takes over.
        let taken = sqlx::query(
            "UPDATE idempotency_keys SET locked_until = $1
             WHERE caller = $2 AND idempotency_key = $3 AND state = 'running' AND locked_until = $4",
        )
        .bind(now + lease_ms)
        .bind(caller)
        .bind(key)
        .bind(locked_until)
        .execute(&self.write)
        .await?;
        Ok(if taken.rows_affected() == 1 { KeyClaim::Claimed } else { KeyClaim::Running })
    }

    /// Extends a running key's lease to `locked_until` (its request is still at work).
    pub async fn renew_key(&self, caller: &str, key: &str, locked_until: i64) -> Result<(), DbError> {
        sqlx::query("UPDATE idempotency_keys SET locked_until = $1 WHERE caller = $2 AND idempotency_key = $3 AND state = 'running'")
            .bind(locked_until)
            .bind(caller)
            .bind(key)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// What the request under a running key made (`NewSubscription::for_key`), if anything.
    pub async fn key_resource(&self, caller: &str, key: &str) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, Option<String>>(
            "SELECT resource FROM idempotency_keys WHERE caller = $1 AND idempotency_key = $2 AND state = 'running'",
        )
        .bind(caller)
        .bind(key)
        .fetch_optional(&self.write)
        .await?
        .flatten())
    }

    /// Stores the answer to a claimed key's request.
    pub async fn finish_key(&self, caller: &str, key: &str, status: i64, response: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE idempotency_keys SET state = 'done', status = $1, response = $2 WHERE caller = $3 AND idempotency_key = $4")
            .bind(status)
            .bind(response)
            .bind(caller)
            .bind(key)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Frees a claimed key whose request failed in a way worth retrying (the provider or
    /// the database was unavailable): the retry does the work afresh.
    pub async fn release_key(&self, caller: &str, key: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM idempotency_keys WHERE caller = $1 AND idempotency_key = $2 AND state = 'running'")
            .bind(caller)
            .bind(key)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Drops answers stored before `before` (keys are kept for a day, as Stripe does).
    pub async fn expire_keys(&self, before: i64) -> Result<u64, DbError> {
        Ok(sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1").bind(before).execute(&self.write).await?.rows_affected())
    }
}

async fn update_subscription(
    tx: &mut Transaction<'static, Any>,
    now: i64,
    id: &str,
    from: &[&str],
    c: &SubscriptionChange<'_>,
) -> Result<bool, DbError> {
    // The allowed previous statuses as a list of literals: they come from this crate's
    // callers (fixed words), never from input; checked to be plain words regardless.
    assert!(from.iter().all(|s| s.bytes().all(|b| b.is_ascii_lowercase() || b == b'_')), "statuses are words");
    let from = from.iter().map(|s| format!("'{s}'")).collect::<Vec<_>>().join(", ");
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE subscriptions SET status = $1, amount = $2, payment_method_id = COALESCE($3, payment_method_id),
             current_period_start = $4, current_period_end = $5, trial_end = COALESCE($6, trial_end), past_due_since = $7,
             next_attempt_at = $8, price_notice_at = $9, updated_at = $10
         WHERE id = $11 AND status IN ({from})"
    )))
    .bind(c.status)
    .bind(c.amount)
    .bind(c.payment_method_id)
    .bind(c.current_period_start)
    .bind(c.current_period_end)
    .bind(c.trial_end)
    .bind(c.past_due_since)
    .bind(c.next_attempt_at)
    .bind(c.price_notice_at)
    .bind(now)
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    Ok(n > 0)
}

/// Moves a live subscription (trialing or active) to another tier, with its entitlement;
/// refused when the account already has a live subscription to that tier.
async fn move_tier(tx: &mut Transaction<'static, Any>, now: i64, id: &str, r: &Retier<'_>) -> Result<(), DbError> {
    let (account_id, status): (String, String) =
        sqlx::query_as("SELECT account_id, status FROM subscriptions WHERE id = $1").bind(id).fetch_one(&mut **tx).await?;
    if status != "active" && status != "trialing" {
        return Err(DbError::Conflict(format!("the subscription is {status}: only an active one changes tiers")));
    }
    let taken: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
        "SELECT id FROM subscriptions WHERE account_id = $1 AND tier_id = $2 AND status IN {LIVE_STATUSES}"
    )))
    .bind(&account_id)
    .bind(r.tier_id)
    .fetch_optional(&mut **tx)
    .await?;
    if taken.is_some() {
        return Err(DbError::Conflict(format!("already subscribed to {}", r.tier_id)));
    }
    sqlx::query("UPDATE subscriptions SET tier_id = $1, amount = $2, price_notice_at = NULL, updated_at = $3 WHERE id = $4")
        .bind(r.tier_id)
        .bind(r.amount)
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    sqlx::query("UPDATE entitlements SET tier = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(r.tier_id)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

async fn end(tx: &mut Transaction<'static, Any>, now: i64, id: &str, status: &str) -> Result<bool, DbError> {
    let n = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE subscriptions SET status = $1, ended_at = $2, canceled_at = COALESCE(canceled_at, $3), updated_at = $2
         WHERE id = $4 AND status IN {LIVE_STATUSES}"
    )))
    .bind(status)
    .bind(now)
    .bind((status == "canceled").then_some(now))
    .bind(id)
    .execute(&mut **tx)
    .await?
    .rows_affected();
    revoke_grant(tx, now, id).await?;
    Ok(n > 0)
}

async fn insert_payments(tx: &mut Transaction<'static, Any>, now: i64, all: &[&NewPayment<'_>]) -> Result<(), DbError> {
    for chunk in all.chunks(crate::BATCH_PARAMETERS / 12) {
        let sql = format!(
            "INSERT INTO payments (id, account_id, subscription_id, provider, reference, payment_method_id, amount, currency, status,
                 failure, idempotency_key, created_at)
             VALUES {}",
            crate::values_list(chunk.len(), 12)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for p in chunk {
            query = query.bind(p.id).bind(p.account_id).bind(p.subscription_id).bind(p.provider).bind(p.reference);
            query = query.bind(p.payment_method_id).bind(p.amount).bind(p.currency).bind(p.status).bind(p.failure);
            query = query.bind(p.idempotency_key).bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Writes one invoice or credit note (`insert_invoices`); returns its number.
async fn insert_invoice(tx: &mut Transaction<'static, Any>, now: i64, i: &NewInvoice<'_>) -> Result<i64, DbError> {
    Ok(insert_invoices(tx, now, &[i]).await?[0])
}

/// Writes invoices or credit notes, each with its seller's next number, taken in this
/// transaction (one counter update per seller for all of them): a rolled-back transaction
/// gives its numbers back, so numbers have no gaps. Returns the numbers, in order.
async fn insert_invoices(tx: &mut Transaction<'static, Any>, now: i64, all: &[&NewInvoice<'_>]) -> Result<Vec<i64>, DbError> {
    let mut next: std::collections::BTreeMap<&str, i64> = std::collections::BTreeMap::new();
    for i in all {
        *next.entry(i.seller).or_default() += 1;
    }
    for (seller, count) in next.iter_mut() {
        let last: i64 = sqlx::query_scalar(
            "INSERT INTO invoice_counters (seller, last_number) VALUES ($1, $2)
             ON CONFLICT (seller) DO UPDATE SET last_number = invoice_counters.last_number + excluded.last_number RETURNING last_number",
        )
        .bind(*seller)
        .bind(*count)
        .fetch_one(&mut **tx)
        .await?;
        *count = last - *count + 1;
    }
    let numbers: Vec<i64> = all
        .iter()
        .map(|i| {
            let n = next.get_mut(i.seller).expect("every seller was counted");
            *n += 1;
            *n - 1
        })
        .collect();
    for (chunk, numbers) in all.chunks(crate::BATCH_PARAMETERS / 20).zip(numbers.chunks(crate::BATCH_PARAMETERS / 20)) {
        let sql = format!("INSERT INTO invoices ({INVOICE_COLUMNS}) VALUES {}", crate::values_list(chunk.len(), 20));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (i, number) in chunk.iter().zip(numbers) {
            query = query.bind(i.id).bind(i.seller).bind(*number).bind(i.kind).bind(i.account_id).bind(i.subscription_id);
            query = query.bind(i.payment_id).bind(i.credits).bind(i.currency).bind(i.subtotal).bind(i.tax).bind(i.total);
            query = query.bind(i.platform_fee).bind(&i.buyer.name).bind(&i.buyer.country).bind(&i.buyer.region);
            query = query.bind(&i.buyer.postal_code).bind(&i.buyer.tax_id).bind(i64::from(i.reverse_charge)).bind(now);
        }
        query.execute(&mut **tx).await?;
    }
    let lines: Vec<(&str, usize, &InvoiceLine)> =
        all.iter().flat_map(|i| i.lines.iter().enumerate().map(move |(position, line)| (i.id, position, line))).collect();
    for chunk in lines.chunks(crate::BATCH_PARAMETERS / 9) {
        let sql = format!(
            "INSERT INTO invoice_lines (invoice_id, position, description, amount, tax, tax_name, tax_rate_bps, period_start, period_end)
             VALUES {}",
            crate::values_list(chunk.len(), 9)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, position, line) in chunk {
            query = query.bind(*id).bind(*position as i64).bind(&line.description).bind(line.amount).bind(line.tax);
            query = query.bind(&line.tax_name).bind(line.tax_rate_bps).bind(line.period_start).bind(line.period_end);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(numbers)
}

/// Grants (or extends) the subscription's entitlement: named like the subscription, so a
/// renewal moves its end rather than adding rows.
async fn grant(tx: &mut Transaction<'static, Any>, now: i64, id: &str, account_id: &str, g: &Grant<'_>) -> Result<(), DbError> {
    grant_all(tx, now, &[(id, account_id, g)]).await
}

/// `grant` for several subscriptions (each at most once) in as few statements as the
/// parameter limit allows.
async fn grant_all(tx: &mut Transaction<'static, Any>, now: i64, all: &[(&str, &str, &Grant<'_>)]) -> Result<(), DbError> {
    for chunk in all.chunks(crate::BATCH_PARAMETERS / 6) {
        let sql = format!(
            "INSERT INTO entitlements (id, account_id, tier, source, created_at, expires_at) VALUES {}
             ON CONFLICT (id) DO UPDATE SET tier = excluded.tier, expires_at = excluded.expires_at, revoked_at = NULL",
            crate::values_list(chunk.len(), 6)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, account_id, g) in chunk {
            query = query.bind(*id).bind(*account_id).bind(g.tier).bind("subscription").bind(now).bind(g.expires_at);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

async fn revoke_grant(tx: &mut Transaction<'static, Any>, now: i64, id: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE entitlements SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
        .bind(now)
        .bind(id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use slipway_types::Clock;

    use crate::{KeyClaim, test_databases};

    /// A key whose request outlives its lease (its process died) is taken over by one
    /// retry, however many arrive at once; within the lease every retry hears it runs.
    #[tokio::test]
    async fn a_key_past_its_lease_is_taken_over_once() {
        for (db, _home) in test_databases().await {
            let clock = Clock::manual(1_800_000_000_000);
            let db = db.with_clock(clock.clone()).commerce();
            assert!(matches!(db.claim_key("alice", "k", "h", 30_000).await.unwrap(), KeyClaim::Claimed));
            assert!(matches!(db.claim_key("alice", "k", "h", 30_000).await.unwrap(), KeyClaim::Running));
            assert!(matches!(db.claim_key("alice", "k", "other", 30_000).await.unwrap(), KeyClaim::OtherRequest));
            clock.advance(std::time::Duration::from_secs(31)).unwrap();
            let retries = futures::future::join_all((0..8).map(|_| db.claim_key("alice", "k", "h", 30_000))).await;
            let taken = retries.iter().filter(|r| matches!(r, Ok(KeyClaim::Claimed))).count();
            let waiting = retries.iter().filter(|r| matches!(r, Ok(KeyClaim::Running))).count();
            assert_eq!((taken, waiting), (1, 7), "{:?}", db.backend());
            // A renewed lease (the request is still at work) is not taken over.
            let renewed_until = clock.now_ms() + 30_000;
            db.renew_key("alice", "k", renewed_until).await.unwrap();
            clock.advance(std::time::Duration::from_secs(20)).unwrap();
            assert!(matches!(db.claim_key("alice", "k", "h", 30_000).await.unwrap(), KeyClaim::Running));
            db.finish_key("alice", "k", 201, "{}").await.unwrap();
            clock.advance(std::time::Duration::from_secs(60)).unwrap();
            assert!(matches!(db.claim_key("alice", "k", "h", 30_000).await.unwrap(), KeyClaim::Done { status: 201, .. }));
        }
    }
}

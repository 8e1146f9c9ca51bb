//! The fulfillment API's orders (bring your own license), the ISVs' webhook endpoints and
//! the webhook outbox with its delivery log.
//!
//! An order's change, the entitlement it grants or ends, the invitation mail of a customer
//! named by address and the webhook event announcing the change are written in one
//! database transaction, so the ISV is told of every change that happened and of none that
//! did not. The caller (slipway-commerce) decides what changes and builds each event's
//! payload from the order as it stands after the change (`Payload`).

use sqlx::{Any, Transaction};

use crate::sign_in::{Mail, enqueue_mail_in};
use crate::{CommerceDb, DbError};

/// States in which an order has not ended: pending (waiting for its customer's account)
/// and active.
const OPEN_STATES: &str = "('pending', 'active')";

#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct OrderRecord {
    pub id: String,
    pub publisher: String,
    /// The tier's entitlement name (publisher/listing/tier).
    pub tier_id: String,
    /// purchase, trial or beta.
    pub kind: String,
    /// pending, active, canceled or expired.
    pub state: String,
    /// The account name or address the ISV named.
    pub customer: String,
    /// The address an order by email waits for (lower-cased).
    pub email: Option<String>,
    /// The customer's account, once known.
    pub account_id: Option<String>,
    pub external_id: String,
    pub product_key: String,
    pub expires_at: Option<i64>,
    pub created_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub activated_at: Option<i64>,
    pub ended_at: Option<i64>,
}

const ORDER_COLUMNS: &str = "id, publisher, tier_id, kind, state, customer, email, account_id, external_id, product_key, expires_at, \
                             created_by, created_at, updated_at, activated_at, ended_at";

/// An order to write. With `account_id` it is active at once and grants its entitlement;
/// without, it waits for an account to verify `email`, and `invitation` is mailed there.
#[derive(Clone, Debug)]
pub struct NewOrder<'a> {
    pub id: &'a str,
    pub publisher: &'a str,
    pub tier_id: &'a str,
    pub kind: &'a str,
    pub customer: &'a str,
    pub email: Option<&'a str>,
    pub account_id: Option<&'a str>,
    pub external_id: &'a str,
    pub product_key: &'a str,
    pub expires_at: Option<i64>,
    pub created_by: &'a str,
    /// (mail id, subject, body) of the invitation, for an order waiting for its customer.
    pub invitation: Option<(&'a str, &'a str, &'a str)>,
}

/// What creating an order did: created it, or found the publisher's order of that
/// external id (which the caller compares with what was asked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OrderWrite {
    Created(OrderRecord),
    Existing(OrderRecord),
}

/// The body of an order's webhook event (`event` such as `order.created`), from the order
/// as it stands after the change.
pub type Payload<'a> = &'a (dyn Fn(&OrderRecord, &str) -> String + Sync);

#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookRecord {
    pub publisher: String,
    pub url: String,
    /// The signing key (`whsec_...`).
    pub secret: String,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRecord {
    pub id: String,
    pub publisher: String,
    pub order_id: String,
    pub event: String,
    pub payload: String,
    /// pending, delivered or failed.
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_status: Option<i64>,
    pub last_error: String,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

const DELIVERY_COLUMNS: &str =
    "id, publisher, order_id, event, payload, state, attempts, next_attempt_at, last_status, last_error, created_at, delivered_at";

/// A delivery claimed for sending, with where it goes and the key it is signed with.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct DueDelivery {
    pub id: String,
    pub event: String,
    pub payload: String,
    pub attempts: i64,
    pub url: String,
    pub secret: String,
}

/// A customer account an order may attach to.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct CustomerAccount {
    pub id: String,
    pub name: String,
    pub kind: String,
    pub disabled_at: Option<i64>,
}

impl CommerceDb {
    // ---- orders ------------------------------------------------------------------------

    /// Whether `tier_id` is a tier of `publisher`'s, and its access (`licensed`, `public`...).
    pub async fn fulfillment_tier(&self, publisher: &str, tier_id: &str) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>(
            "SELECT t.access FROM tiers t JOIN listings l ON l.id = t.listing_id WHERE t.id = $1 AND l.publisher = $2",
        )
        .bind(tier_id)
        .bind(publisher)
        .fetch_optional(&self.read)
        .await?)
    }

    /// The account named `name`, for an order to a customer named by account.
    pub async fn customer_by_name(&self, name: &str) -> Result<Option<CustomerAccount>, DbError> {
        Ok(sqlx::query_as::<Any, CustomerAccount>("SELECT id, name, kind, disabled_at FROM accounts WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.read)
            .await?)
    }

    /// The person account that verified `email` (as given or lower-cased), if any.
    pub async fn customer_by_verified_email(&self, email: &str) -> Result<Option<CustomerAccount>, DbError> {
        Ok(sqlx::query_as::<Any, CustomerAccount>(
            "SELECT id, name, kind, disabled_at FROM accounts
             WHERE (email = $1 OR email = $2) AND email_verified_at IS NOT NULL AND kind = 'person'",
        )
        .bind(email)
        .bind(email.to_lowercase())
        .fetch_optional(&self.read)
        .await?)
    }

    /// Writes an order whole: the order, its entitlement (when its customer is known), its
    /// invitation mail (when not) and its `order.created` event. A second order of the same
    /// publisher and external id writes nothing and returns the first.
    pub async fn create_order(&self, o: &NewOrder<'_>, payload: Payload<'_>) -> Result<OrderWrite, DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        let state = if o.account_id.is_some() { "active" } else { "pending" };
        let inserted = sqlx::query(
            "INSERT INTO fulfillment_orders (id, publisher, tier_id, kind, state, customer, email, account_id, external_id, product_key,
                 expires_at, created_by, created_at, updated_at, activated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $13, $14)
             ON CONFLICT (publisher, external_id) DO NOTHING",
        )
        .bind(o.id)
        .bind(o.publisher)
        .bind(o.tier_id)
        .bind(o.kind)
        .bind(state)
        .bind(o.customer)
        .bind(o.email)
        .bind(o.account_id)
        .bind(o.external_id)
        .bind(o.product_key)
        .bind(o.expires_at)
        .bind(o.created_by)
        .bind(now)
        .bind(o.account_id.map(|_| now))
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if inserted == 0 {
            tx.rollback().await?;
            let existing = self
                .order_by_external_id(o.publisher, o.external_id)
                .await?
                .ok_or_else(|| DbError::Conflict(format!("order {:?} changed meanwhile: retry", o.external_id)))?;
            return Ok(OrderWrite::Existing(existing));
        }
        if let Some(account_id) = o.account_id {
            grant(&mut tx, now, o.id, account_id, o.tier_id, o.expires_at).await?;
        }
        if let (Some((id, subject, body)), Some(recipient)) = (o.invitation, o.email) {
            enqueue_mail_in(&mut tx, now, &Mail { id, recipient, subject, body }).await?;
        }
        let order = order_in(&mut tx, o.id).await?;
        announce(&mut tx, now, &order, "order.created", payload).await?;
        tx.commit().await?;
        Ok(OrderWrite::Created(order))
    }

    pub async fn order(&self, id: &str) -> Result<Option<OrderRecord>, DbError> {
        Ok(sqlx::query_as::<Any, OrderRecord>(sqlx::AssertSqlSafe(format!("SELECT {ORDER_COLUMNS} FROM fulfillment_orders WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    pub async fn order_by_external_id(&self, publisher: &str, external_id: &str) -> Result<Option<OrderRecord>, DbError> {
        Ok(sqlx::query_as::<Any, OrderRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM fulfillment_orders WHERE publisher = $1 AND external_id = $2"
        )))
        .bind(publisher)
        .bind(external_id)
        .fetch_optional(&self.write)
        .await?)
    }

    /// A publisher's orders, newest first, optionally of one customer (account name or
    /// address, as the order named it) or in one state; `before` pages on (created_at, id).
    pub async fn orders(
        &self,
        publisher: &str,
        customer: Option<&str>,
        state: Option<&str>,
        before: Option<(i64, &str)>,
        limit: i64,
    ) -> Result<Vec<OrderRecord>, DbError> {
        let (before_at, before_id) = before.map_or((None, None), |(at, id)| (Some(at), Some(id)));
        Ok(sqlx::query_as::<Any, OrderRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {ORDER_COLUMNS} FROM fulfillment_orders
             WHERE publisher = $1 AND ($2 IS NULL OR customer = $2) AND ($3 IS NULL OR state = $3)
                 AND ($4 IS NULL OR created_at < $4 OR (created_at = $4 AND id < $5))
             ORDER BY created_at DESC, id DESC LIMIT $6"
        )))
        .bind(publisher)
        .bind(customer)
        .bind(state)
        .bind(before_at)
        .bind(before_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Ends an open order (`state`: canceled or expired) with its entitlement, announcing
    /// `order.<state>`; None when it had already ended.
    pub async fn end_order(&self, id: &str, state: &str, payload: Payload<'_>) -> Result<Option<OrderRecord>, DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        let changed = sqlx::query(sqlx::AssertSqlSafe(format!(
            "UPDATE fulfillment_orders SET state = $1, ended_at = $2, updated_at = $2 WHERE id = $3 AND state IN {OPEN_STATES}"
        )))
        .bind(state)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if changed == 0 {
            tx.rollback().await?;
            return Ok(None);
        }
        sqlx::query("UPDATE entitlements SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        let order = order_in(&mut tx, id).await?;
        announce(&mut tx, now, &order, &format!("order.{state}"), payload).await?;
        tx.commit().await?;
        Ok(Some(order))
    }

    /// Open orders whose expiry has passed (their entitlements already stopped opening
    /// anything at that time), for `end_order(.., "expired")`.
    pub async fn expired_orders(&self, now: i64, limit: i64) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>(sqlx::AssertSqlSafe(format!(
            "SELECT id FROM fulfillment_orders WHERE state IN {OPEN_STATES} AND expires_at IS NOT NULL AND expires_at <= $1
             ORDER BY expires_at LIMIT $2"
        )))
        .bind(now)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Attaches the pending orders waiting for `email` to the account that verified it:
    /// each becomes active and grants its entitlement, announcing `order.activated`.
    pub async fn attach_orders(&self, email: &str, account_id: &str, payload: Payload<'_>) -> Result<Vec<OrderRecord>, DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        let pending = sqlx::query_scalar::<Any, String>(
            "SELECT id FROM fulfillment_orders WHERE email = $1 AND state = 'pending' AND account_id IS NULL ORDER BY created_at",
        )
        .bind(email)
        .fetch_all(&mut *tx)
        .await?;
        let mut attached = Vec::new();
        for id in pending {
            let changed = sqlx::query(
                "UPDATE fulfillment_orders SET state = 'active', account_id = $1, activated_at = $2, updated_at = $2
                 WHERE id = $3 AND state = 'pending'",
            )
            .bind(account_id)
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if changed == 0 {
                continue;
            }
            let order = order_in(&mut tx, &id).await?;
            grant(&mut tx, now, &id, account_id, &order.tier_id, order.expires_at).await?;
            announce(&mut tx, now, &order, "order.activated", payload).await?;
            attached.push(order);
        }
        tx.commit().await?;
        Ok(attached)
    }

    /// Addresses with pending orders that a person account has verified meanwhile (the
    /// fallback for a verification whose hook did not run), as (address, account id).
    pub async fn verified_pending_customers(&self, limit: i64) -> Result<Vec<(String, String)>, DbError> {
        Ok(sqlx::query_as::<Any, (String, String)>(
            "SELECT DISTINCT o.email, a.id FROM fulfillment_orders o JOIN accounts a ON a.email = o.email
             WHERE o.state = 'pending' AND a.email_verified_at IS NOT NULL AND a.kind = 'person' LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    // ---- webhook endpoints -------------------------------------------------------------

    /// Sets where `publisher`'s events go and the key they are signed with.
    pub async fn put_webhook(&self, publisher: &str, url: &str, secret: &str) -> Result<WebhookRecord, DbError> {
        let now = self.clock.now_ms();
        sqlx::query(
            "INSERT INTO fulfillment_webhooks (publisher, url, secret, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)
             ON CONFLICT (publisher) DO UPDATE SET url = excluded.url, secret = excluded.secret, updated_at = excluded.updated_at",
        )
        .bind(publisher)
        .bind(url)
        .bind(secret)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(WebhookRecord {
            publisher: publisher.to_owned(),
            url: url.to_owned(),
            secret: secret.to_owned(),
            created_at: now,
            updated_at: now,
        })
    }

    pub async fn webhook(&self, publisher: &str) -> Result<Option<WebhookRecord>, DbError> {
        Ok(sqlx::query_as::<Any, WebhookRecord>(
            "SELECT publisher, url, secret, created_at, updated_at FROM fulfillment_webhooks WHERE publisher = $1",
        )
        .bind(publisher)
        .fetch_optional(&self.read)
        .await?)
    }

    // ---- deliveries --------------------------------------------------------------------

    /// Claims up to `limit` due deliveries until `lease_until`: a claim moves
    /// `locked_until` with a compare-and-set, so one sender at a time holds each.
    pub async fn claim_deliveries(&self, limit: i64, lease_until: i64) -> Result<Vec<DueDelivery>, DbError> {
        let now = self.clock.now_ms();
        let due = sqlx::query_scalar::<Any, String>(
            "SELECT id FROM webhook_deliveries WHERE state = 'pending' AND next_attempt_at <= $1 AND locked_until <= $1
             ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        let mut claimed = Vec::new();
        for id in due {
            let won =
                sqlx::query("UPDATE webhook_deliveries SET locked_until = $1 WHERE id = $2 AND state = 'pending' AND locked_until <= $3")
                    .bind(lease_until)
                    .bind(&id)
                    .bind(now)
                    .execute(&self.write)
                    .await?
                    .rows_affected();
            if won == 0 {
                continue;
            }
            let delivery = sqlx::query_as::<Any, DueDelivery>(
                "SELECT d.id, d.event, d.payload, d.attempts, w.url, w.secret
                 FROM webhook_deliveries d JOIN fulfillment_webhooks w ON w.publisher = d.publisher WHERE d.id = $1",
            )
            .bind(&id)
            .fetch_optional(&self.write)
            .await?;
            claimed.extend(delivery);
        }
        Ok(claimed)
    }

    /// Records one attempt: delivered, or failed with the status (if any) and error, then
    /// retried at `retry_at` or, without one, given up (`failed`).
    pub async fn record_attempt(
        &self,
        id: &str,
        delivered: bool,
        status: Option<i64>,
        error: &str,
        retry_at: Option<i64>,
    ) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        let state = match (delivered, retry_at) {
            (true, _) => "delivered",
            (false, Some(_)) => "pending",
            (false, None) => "failed",
        };
        sqlx::query(
            "UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, last_status = $2, last_error = $3,
                 next_attempt_at = COALESCE($4, next_attempt_at), locked_until = 0, delivered_at = $5
             WHERE id = $6",
        )
        .bind(state)
        .bind(status)
        .bind(error)
        .bind(retry_at)
        .bind(delivered.then_some(now))
        .bind(id)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// A publisher's delivery log, newest first.
    pub async fn deliveries(&self, publisher: &str, limit: i64) -> Result<Vec<DeliveryRecord>, DbError> {
        Ok(sqlx::query_as::<Any, DeliveryRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {DELIVERY_COLUMNS} FROM webhook_deliveries WHERE publisher = $1 ORDER BY created_at DESC, id DESC LIMIT $2"
        )))
        .bind(publisher)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }
}

async fn order_in(tx: &mut Transaction<'static, Any>, id: &str) -> Result<OrderRecord, DbError> {
    Ok(sqlx::query_as::<Any, OrderRecord>(sqlx::AssertSqlSafe(format!("SELECT {ORDER_COLUMNS} FROM fulfillment_orders WHERE id = $1")))
        .bind(id)
        .fetch_one(&mut **tx)
        .await?)
}

/// The order's entitlement, named like the order, ending when the order expires.
async fn grant(
    tx: &mut Transaction<'static, Any>,
    now: i64,
    id: &str,
    account_id: &str,
    tier_id: &str,
    expires_at: Option<i64>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO entitlements (id, account_id, tier, source, created_at, expires_at) VALUES ($1, $2, $3, 'fulfillment', $4, $5)
         ON CONFLICT (id) DO UPDATE SET account_id = excluded.account_id, tier = excluded.tier, expires_at = excluded.expires_at,
             revoked_at = NULL",
    )
    .bind(id)
    .bind(account_id)
    .bind(tier_id)
    .bind(now)
    .bind(expires_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Queues the order's event for the publisher's endpoint, if it has set one (an event
/// without an endpoint has nowhere to go). An order goes through each event once, so the
/// delivery is named `<order id>/<event>`.
async fn announce(
    tx: &mut Transaction<'static, Any>,
    now: i64,
    order: &OrderRecord,
    event: &str,
    payload: Payload<'_>,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO webhook_deliveries (id, publisher, order_id, event, payload, state, attempts, next_attempt_at, locked_until,
             last_error, created_at)
         SELECT $1, publisher, $2, $3, $4, 'pending', 0, $5, 0, '', $5 FROM fulfillment_webhooks WHERE publisher = $6",
    )
    .bind(format!("{}/{event}", order.id))
    .bind(&order.id)
    .bind(event)
    .bind(payload(order, event))
    .bind(now)
    .bind(&order.publisher)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_types::Clock;

    fn body(order: &OrderRecord, event: &str) -> String {
        format!("{{\"type\":\"{event}\",\"order\":\"{}\",\"state\":\"{}\"}}", order.id, order.state)
    }

    fn order<'a>(id: &'a str, external_id: &'a str, account_id: Option<&'a str>) -> NewOrder<'a> {
        NewOrder {
            id,
            publisher: "acme",
            tier_id: "acme/db/pro",
            kind: "purchase",
            customer: "dana@example.com",
            email: account_id.is_none().then_some("dana@example.com"),
            account_id,
            external_id,
            product_key: "KEY-1",
            expires_at: None,
            created_by: "robot",
            invitation: account_id.is_none().then_some(("mail-1", "You have a license", "Sign up")),
        }
    }

    /// An order by address waits, is found again by its external id, attaches with its
    /// event when the address is verified, ends once; deliveries are claimed by one sender
    /// and retried or given up as told.
    #[tokio::test]
    async fn orders_attach_end_and_announce_in_one_transaction() {
        for (db, _home) in crate::test_databases().await {
            let db = db.with_clock(Clock::manual(1_000_000));
            let c = db.commerce();
            // No endpoint yet: the event has nowhere to go.
            let OrderWrite::Created(first) = c.create_order(&order("o1", "ext-1", None), &body).await.unwrap() else { panic!() };
            assert_eq!((first.state.as_str(), first.account_id.as_deref()), ("pending", None));
            assert!(c.deliveries("acme", 10).await.unwrap().is_empty());
            c.put_webhook("acme", "http://127.0.0.1:9/hook", "whsec_x").await.unwrap();
            let again = c.create_order(&order("o2", "ext-1", None), &body).await.unwrap();
            assert_eq!(again, OrderWrite::Existing(first.clone()), "one order per external id");
            let attached = c.attach_orders("dana@example.com", "acct-dana", &body).await.unwrap();
            assert_eq!(attached.len(), 1);
            assert_eq!((attached[0].state.as_str(), attached[0].account_id.as_deref()), ("active", Some("acct-dana")));
            assert!(c.attach_orders("dana@example.com", "acct-dana", &body).await.unwrap().is_empty(), "attached once");
            let ended = c.end_order("o1", "canceled", &body).await.unwrap().expect("open order ends");
            assert_eq!(ended.state, "canceled");
            assert!(c.end_order("o1", "canceled", &body).await.unwrap().is_none(), "ended once");
            let log = c.deliveries("acme", 10).await.unwrap();
            let events: Vec<_> = log.iter().map(|d| d.event.as_str()).collect();
            assert_eq!(events.len(), 2);
            assert!(events.contains(&"order.activated") && events.contains(&"order.canceled"), "{events:?}");

            let claimed = c.claim_deliveries(10, 2_000_000).await.unwrap();
            assert_eq!(claimed.len(), 2);
            assert_eq!(claimed[0].url, "http://127.0.0.1:9/hook");
            assert!(c.claim_deliveries(10, 2_000_000).await.unwrap().is_empty(), "claimed ones are held");
            c.record_attempt(&claimed[0].id, false, Some(500), "HTTP 500", Some(1_060_000)).await.unwrap();
            c.record_attempt(&claimed[1].id, false, None, "refused", None).await.unwrap();
            let log = c.deliveries("acme", 10).await.unwrap();
            let retried = log.iter().find(|d| d.id == claimed[0].id).unwrap();
            assert_eq!((retried.state.as_str(), retried.attempts, retried.last_status), ("pending", 1, Some(500)));
            assert_eq!(log.iter().find(|d| d.id == claimed[1].id).unwrap().state, "failed");
            assert!(c.claim_deliveries(10, 2_000_000).await.unwrap().is_empty(), "not due before its retry time");
        }
    }
}

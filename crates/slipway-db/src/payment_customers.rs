//! What the payment provider keeps for Slipway: the provider's customer of each account
//! (`payment_customers`) and the provider's webhook events received (`webhook_events`).
//! Both are written insert-if-absent, so concurrent writers agree on one row: the first.

use sqlx::Any;

use crate::{CommerceDb, DbError};

/// A provider's webhook event as recorded.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct WebhookEventRecord {
    pub provider: String,
    pub event_id: String,
    pub kind: String,
    /// The id of the object the event is about; empty when it has none.
    pub object_id: String,
    pub received_at: i64,
}

impl CommerceDb {
    /// The provider's customer of `account_id`, if one was recorded.
    pub async fn payment_customer(&self, account_id: &str, provider: &str) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT reference FROM payment_customers WHERE account_id = $1 AND provider = $2")
            .bind(account_id)
            .bind(provider)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Records `reference` as the account's customer unless one is recorded already, and
    /// returns the one recorded: of two made at once, both callers get the first written.
    pub async fn claim_payment_customer(&self, account_id: &str, provider: &str, reference: &str) -> Result<String, DbError> {
        sqlx::query(
            "INSERT INTO payment_customers (account_id, provider, reference, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT DO NOTHING",
        )
        .bind(account_id)
        .bind(provider)
        .bind(reference)
        .bind(self.clock.now_ms())
        .execute(&self.write)
        .await?;
        // Read from the write pool: a read replica may not have the row yet.
        Ok(sqlx::query_scalar("SELECT reference FROM payment_customers WHERE account_id = $1 AND provider = $2")
            .bind(account_id)
            .bind(provider)
            .fetch_one(&self.write)
            .await?)
    }

    /// Records a received webhook event; false (and nothing written) when this provider's
    /// event of that id was recorded before: a replay.
    pub async fn record_webhook_event(&self, provider: &str, event_id: &str, kind: &str, object_id: &str) -> Result<bool, DbError> {
        let inserted = sqlx::query(
            "INSERT INTO webhook_events (provider, event_id, kind, object_id, received_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT DO NOTHING",
        )
        .bind(provider)
        .bind(event_id)
        .bind(kind)
        .bind(object_id)
        .bind(self.clock.now_ms())
        .execute(&self.write)
        .await?;
        Ok(inserted.rows_affected() == 1)
    }

    pub async fn webhook_event(&self, provider: &str, event_id: &str) -> Result<Option<WebhookEventRecord>, DbError> {
        Ok(sqlx::query_as::<Any, WebhookEventRecord>(
            "SELECT provider, event_id, kind, object_id, received_at FROM webhook_events WHERE provider = $1 AND event_id = $2",
        )
        .bind(provider)
        .bind(event_id)
        .fetch_optional(&self.read)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use crate::test_databases;

    #[tokio::test]
    async fn the_first_customer_recorded_stays_the_accounts() {
        for (db, _home) in test_databases().await {
            let commerce = db.commerce();
            assert_eq!(commerce.payment_customer("acct-1", "stripe").await.unwrap(), None);
            // Two attaches at once, each with a customer of its own: both end with one.
            let (a, b) = tokio::join!(
                commerce.claim_payment_customer("acct-1", "stripe", "cus_a"),
                commerce.claim_payment_customer("acct-1", "stripe", "cus_b"),
            );
            let (a, b) = (a.unwrap(), b.unwrap());
            assert_eq!(a, b);
            assert!(a == "cus_a" || a == "cus_b", "{a}");
            assert_eq!(commerce.payment_customer("acct-1", "stripe").await.unwrap(), Some(a.clone()));
            assert_eq!(commerce.claim_payment_customer("acct-1", "stripe", "cus_c").await.unwrap(), a);
            // Per account and per provider.
            assert_eq!(commerce.claim_payment_customer("acct-2", "stripe", "cus_d").await.unwrap(), "cus_d");
            assert_eq!(commerce.payment_customer("acct-1", "other").await.unwrap(), None);
        }
    }

    #[tokio::test]
    async fn a_webhook_event_is_recorded_once() {
        for (db, _home) in test_databases().await {
            let commerce = db.commerce();
            assert!(commerce.record_webhook_event("stripe", "evt_1", "charge.refunded", "ch_1").await.unwrap());
            assert!(!commerce.record_webhook_event("stripe", "evt_1", "payment_intent.succeeded", "pi_2").await.unwrap());
            let event = commerce.webhook_event("stripe", "evt_1").await.unwrap().unwrap();
            assert_eq!((event.kind.as_str(), event.object_id.as_str()), ("charge.refunded", "ch_1"), "the replay changed nothing");
            assert!(commerce.record_webhook_event("other", "evt_1", "charge.refunded", "").await.unwrap());
            assert_eq!(commerce.webhook_event("stripe", "evt_2").await.unwrap(), None);
        }
    }
}

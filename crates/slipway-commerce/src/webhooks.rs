//! Stripe's webhooks to this store (`POST /api/v1/webhooks/stripe`), authenticated by their
//! `Stripe-Signature` under `[commerce] stripe_webhook_secret`.
//!
//! Slipway's charges and refunds are synchronous: checkout, renewals and refunds learn
//! from Stripe's answer whether the money moved and record it then, in the transaction
//! that posts the ledger. So the events about them (`payment_intent.succeeded`,
//! `payment_intent.payment_failed`, `charge.refunded`) change nothing here: they are
//! logged and recorded in `webhook_events`, which also makes a redelivered event (Stripe
//! delivers at least once) a replay that does nothing. Other event types are ignored.

use serde::Serialize;
use utoipa::ToSchema;

use crate::stripe::{MAX_WEBHOOK_BYTES, parse_webhook};
use crate::{Commerce, CommerceError};

/// The event types recorded.
const RECORDED: [&str; 3] = ["payment_intent.succeeded", "payment_intent.payment_failed", "charge.refunded"];
const PROVIDER: &str = "stripe";

/// What receiving a webhook did; every one is answered 200, so Stripe stops sending it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum WebhookOutcome {
    /// A type recorded, seen for the first time.
    Recorded,
    /// An event id seen before: nothing done.
    Replayed,
    /// A type this store does not record.
    Ignored,
}

impl Commerce {
    /// Verifies and records a webhook Stripe sent: `signature` is its `Stripe-Signature`
    /// header, checked against the Clock's now within the default tolerance (300 s).
    /// NotFound when this store does not take Stripe webhooks (another provider, or no
    /// webhook secret); a missing, malformed, forged or stale signature is a
    /// `CommerceError::Signature`, and nothing is recorded.
    pub async fn stripe_webhook(&self, payload: &[u8], signature: Option<&str>) -> Result<(String, WebhookOutcome), CommerceError> {
        let secret = match &self.config.stripe_webhook_secret {
            Some(secret) if self.provider().name() == PROVIDER => secret,
            _ => return Err(CommerceError::NotFound("this store does not receive Stripe webhooks".to_owned())),
        };
        if payload.len() > MAX_WEBHOOK_BYTES {
            return Err(CommerceError::TooLarge(format!("the webhook payload is larger than {MAX_WEBHOOK_BYTES} bytes")));
        }
        let signature = signature
            .ok_or_else(|| CommerceError::Signature("no Stripe-Signature header: Stripe signs every webhook it sends".to_owned()))?;
        let event = parse_webhook(payload, signature, secret, self.clock().now_ms().div_euclid(1000))?;
        if !RECORDED.contains(&event.kind.as_str()) {
            tracing::debug!(event = %event.id, kind = %event.kind, "Stripe webhook of a type not recorded");
            return Ok((event.id, WebhookOutcome::Ignored));
        }
        let object = event.object_id.as_deref().unwrap_or_default();
        let first = self.db.record_webhook_event(PROVIDER, &event.id, &event.kind, object).await?;
        if first {
            tracing::info!(event = %event.id, kind = %event.kind, object, status = event.object_status.as_deref().unwrap_or_default(), "Stripe webhook recorded");
            Ok((event.id, WebhookOutcome::Recorded))
        } else {
            tracing::info!(event = %event.id, kind = %event.kind, "Stripe webhook replayed: already recorded");
            Ok((event.id, WebhookOutcome::Replayed))
        }
    }
}

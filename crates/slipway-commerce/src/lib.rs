#![doc = include_str!("../README.md")]

pub mod fulfillment;
mod payouts;
pub mod provider;
pub mod sandbox;
mod service;
pub mod signature;
pub mod stripe;
pub mod tax;
mod webhooks;

pub use fulfillment::{
    Fulfillment, FulfillmentEvent, FulfillmentOrder, FulfillmentOrderInput, FulfillmentOrderPage, OrderKind, OrderQuery, WebhookDelivery,
    WebhookEndpoint, WebhookReport,
};
pub use payouts::{GenerateReport, Order, SaleRefund, Sales, SoldSubscription, Statement, month_bounds, statements_csv};
pub use provider::{ChargeOutcome, ChargeRequest, PaymentProvider, RefundRequest, SavedMethod};
pub use sandbox::SandboxProvider;
pub use service::{
    Amount, BillingProfile, CheckoutInput, CheckoutResult, Commerce, CommerceConfig, Invoice, InvoiceLineView, KeyLease, Quote, Refund,
    RefundInput, RenewalReport, Subscription, invoice_number, period_end,
};
pub use slipway_db::KeyClaim;
pub use tax::{TaxRate, TaxTable};
pub use webhooks::WebhookOutcome;

use slipway_types::ErrorKind;

#[derive(Debug, thiserror::Error)]
pub enum CommerceError {
    /// Input that breaks a rule; the message says which and how.
    #[error("{0}")]
    Invalid(String),
    /// A request that cannot be read: a webhook payload that is not a Stripe event.
    #[error("{0}")]
    Malformed(String),
    /// A webhook signature that does not hold: malformed, missing, forged or outside the
    /// tolerance. Answered 400, as Stripe's guidance has a webhook endpoint answer it (a
    /// 401 would ask for credentials Stripe does not have); the message says which.
    #[error("{0}")]
    Signature(String),
    /// A webhook payload larger than is read.
    #[error("{0}")]
    TooLarge(String),
    #[error("{0}")]
    NotFound(String),
    /// The policy's refusal, with its kind (not found, forbidden, sign in).
    #[error("{1}")]
    Refused(ErrorKind, String),
    /// Already subscribed, already ended, changed meanwhile.
    #[error("{0}")]
    Conflict(String),
    /// The card was declined: the message is the customer's.
    #[error("{0}")]
    Declined(String),
    /// A paid tier asked for without checkout.
    #[error("{0}")]
    PaymentRequired(String),
    /// The payment provider could not be reached: retry with the same idempotency key.
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Catalog(slipway_catalog::CatalogError),
    #[error(transparent)]
    Db(#[from] slipway_db::DbError),
    #[error("{0}")]
    Internal(String),
}

impl CommerceError {
    /// What kind of failure this is at every surface.
    pub fn kind(&self) -> ErrorKind {
        match self {
            CommerceError::Invalid(_) => ErrorKind::Invalid,
            CommerceError::Malformed(_) | CommerceError::Signature(_) => ErrorKind::Malformed,
            CommerceError::TooLarge(_) => ErrorKind::TooLarge,
            CommerceError::NotFound(_) => ErrorKind::NotFound,
            CommerceError::Refused(kind, _) => *kind,
            CommerceError::Conflict(_) => ErrorKind::Conflict,
            CommerceError::Declined(_) | CommerceError::PaymentRequired(_) => ErrorKind::PaymentRequired,
            CommerceError::Unavailable(_) => ErrorKind::Unavailable,
            CommerceError::Catalog(e) => e.kind(),
            CommerceError::Db(e) => e.kind(),
            CommerceError::Internal(_) => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod kind_tests {
    use super::*;

    #[test]
    fn every_error_has_the_kind_its_surfaces_answer() {
        let cases = [
            (CommerceError::Invalid("amount".into()), ErrorKind::Invalid),
            (CommerceError::Malformed("not an event".into()), ErrorKind::Malformed),
            (CommerceError::Signature("no signature matches".into()), ErrorKind::Malformed),
            (CommerceError::TooLarge("1 MiB".into()), ErrorKind::TooLarge),
            (CommerceError::NotFound("no subscription".into()), ErrorKind::NotFound),
            (CommerceError::Refused(ErrorKind::Forbidden, "owners only".into()), ErrorKind::Forbidden),
            (CommerceError::Conflict("subscribed".into()), ErrorKind::Conflict),
            (CommerceError::Declined("Your card was declined.".into()), ErrorKind::PaymentRequired),
            (CommerceError::PaymentRequired("paid tier".into()), ErrorKind::PaymentRequired),
            (CommerceError::Unavailable("provider".into()), ErrorKind::Unavailable),
            (CommerceError::Catalog(slipway_catalog::CatalogError::NotFound("x".into())), ErrorKind::NotFound),
            (CommerceError::Db(slipway_db::DbError::Conflict("x".into())), ErrorKind::Conflict),
            (CommerceError::Internal("x".into()), ErrorKind::Internal),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error:?}");
        }
    }
}

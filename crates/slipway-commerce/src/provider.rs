//! Payment providers behind one trait: the service never knows whose API takes the money.

use slipway_types::Money;

use crate::CommerceError;

/// A payment method saved with the provider for later (off-session) charges.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedMethod {
    /// The provider's id for it (`pm_...`): what later charges name.
    pub reference: String,
    /// `visa`, `mastercard`, ...
    pub brand: String,
    pub last4: String,
}

/// One charge to make.
#[derive(Clone, Debug)]
pub struct ChargeRequest<'a> {
    /// The customer's account id (the provider may keep its own customer for it).
    pub customer: &'a str,
    /// A `SavedMethod::reference`.
    pub method: &'a str,
    pub amount: Money,
    /// Sent to the provider so a retried charge is the same charge.
    pub idempotency_key: &'a str,
    pub description: &'a str,
    /// True for renewals: the customer is not there to authenticate.
    pub off_session: bool,
}

/// How a charge ended, when the provider answered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ChargeOutcome {
    /// The money was taken; `reference` is the provider's id for the payment.
    Succeeded { reference: String },
    /// The card was declined: `code` as Stripe names it (`card_declined`,
    /// `insufficient_funds`, ...), `message` for the customer.
    Declined { code: String, message: String },
}

/// One refund to make of a succeeded payment.
#[derive(Clone, Debug)]
pub struct RefundRequest<'a> {
    /// The payment's `ChargeOutcome::Succeeded::reference`.
    pub payment: &'a str,
    pub amount: Money,
    pub idempotency_key: &'a str,
}

/// What went wrong talking to a provider is a `CommerceError`: `Invalid` for a payment
/// method the provider does not know or accept, `Unavailable` when it could not be reached
/// or answered something unexpected (safe to retry with the same idempotency key). A
/// decline is not an error: it is an outcome.
#[async_trait::async_trait]
pub trait PaymentProvider: Send + Sync {
    /// `sandbox` or `stripe`: recorded with every payment.
    fn name(&self) -> &'static str;
    /// Whether the provider moves real money: a test clock is refused with one that does.
    fn is_live(&self) -> bool;
    /// Saves `method` (a test payment-method id such as `pm_card_visa`, or, in the
    /// sandbox only, a test card number) for the customer.
    async fn attach(&self, customer: &str, method: &str) -> Result<SavedMethod, CommerceError>;
    async fn charge(&self, request: &ChargeRequest<'_>) -> Result<ChargeOutcome, CommerceError>;
    /// Returns the provider's id for the refund.
    async fn refund(&self, request: &RefundRequest<'_>) -> Result<String, CommerceError>;
}

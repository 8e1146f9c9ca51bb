//! The `sandbox` payment provider, the default: no money moves, and Stripe's public test
//! cards and test payment-method ids behave as Stripe's test mode documents them. It keeps
//! no state, so every replica answers alike: a method's behaviour is in its id.

use sha2::{Digest, Sha256};

use crate::CommerceError;
use crate::provider::{ChargeOutcome, ChargeRequest, PaymentProvider, RefundRequest, SavedMethod};

/// How a test method behaves when charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Behaviour {
    Succeeds,
    /// Declined with Stripe's decline code.
    Declines(&'static str),
    /// Succeeds while the customer is present (checkout) and declines off-session
    /// (renewals): Slipway's extension, for a card that "succeeds once and declines on
    /// renewal".
    DeclinesOffSession,
}

/// (test payment-method id, card number, brand, behaviour), from Stripe's testing guide.
const METHODS: &[(&str, &str, &str, Behaviour)] = &[
    ("pm_card_visa", "4242424242424242", "visa", Behaviour::Succeeds),
    ("pm_card_visa_debit", "4000056655665556", "visa", Behaviour::Succeeds),
    ("pm_card_mastercard", "5555555555554444", "mastercard", Behaviour::Succeeds),
    ("pm_card_amex", "378282246310005", "amex", Behaviour::Succeeds),
    ("pm_card_chargeDeclined", "4000000000000002", "visa", Behaviour::Declines("generic_decline")),
    ("pm_card_chargeDeclinedInsufficientFunds", "4000000000009995", "visa", Behaviour::Declines("insufficient_funds")),
    ("pm_card_chargeDeclinedLostCard", "4000000000009987", "visa", Behaviour::Declines("lost_card")),
    ("pm_card_chargeDeclinedStolenCard", "4000000000009979", "visa", Behaviour::Declines("stolen_card")),
    ("pm_card_chargeDeclinedExpiredCard", "4000000000000069", "visa", Behaviour::Declines("expired_card")),
    ("pm_card_chargeDeclinedIncorrectCvc", "4000000000000127", "visa", Behaviour::Declines("incorrect_cvc")),
    ("pm_card_chargeDeclinedProcessingError", "4000000000000119", "visa", Behaviour::Declines("processing_error")),
    // Stripe: "Attaching this card to a Customer object succeeds, but attempts to charge
    // the customer fail."
    ("pm_card_chargeCustomerFail", "4000000000000341", "visa", Behaviour::Declines("generic_decline")),
    ("pm_card_declinedOffSession", "", "visa", Behaviour::DeclinesOffSession),
];

/// The customer's message for a decline code, as Stripe words them.
fn decline_message(code: &str) -> &'static str {
    match code {
        "insufficient_funds" => "Your card has insufficient funds.",
        "lost_card" | "stolen_card" | "generic_decline" => "Your card was declined.",
        "expired_card" => "Your card has expired.",
        "incorrect_cvc" => "Your card's security code is incorrect.",
        "processing_error" => "An error occurred while processing your card. Try again in a little bit.",
        _ => "Your card was declined.",
    }
}

/// A payment method the sandbox knows: by its test id, or by its test card number (spaces
/// and dashes allowed; numbers that are not test cards are refused, so a real card number
/// is never stored or accepted here).
fn find(method: &str) -> Option<&'static (&'static str, &'static str, &'static str, Behaviour)> {
    if method.len() > 64 {
        return None;
    }
    let digits: String = method.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
    METHODS.iter().find(|(id, number, _, _)| *id == method || (!number.is_empty() && *number == digits))
}

fn derived_id(prefix: &str, key: &str) -> String {
    let digest = Sha256::digest(key.as_bytes());
    format!("{prefix}_sandbox_{}", &hex::encode(digest)[..24])
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SandboxProvider;

#[async_trait::async_trait]
impl PaymentProvider for SandboxProvider {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn is_live(&self) -> bool {
        false
    }

    async fn attach(&self, _customer: &str, method: &str) -> Result<SavedMethod, CommerceError> {
        let (id, number, brand, _) = find(method).ok_or_else(|| {
            CommerceError::Invalid(
                "the sandbox takes Stripe's test cards only: a test payment method such as pm_card_visa, or a test card number such as \
                 4242 4242 4242 4242"
                    .into(),
            )
        })?;
        let last4 = if number.is_empty() { "0000" } else { &number[number.len() - 4..] };
        Ok(SavedMethod { reference: (*id).to_owned(), brand: (*brand).to_owned(), last4: last4.to_owned() })
    }

    async fn charge(&self, request: &ChargeRequest<'_>) -> Result<ChargeOutcome, CommerceError> {
        let (_, _, _, behaviour) =
            find(request.method).ok_or_else(|| CommerceError::Invalid(format!("no payment method {:?}", request.method)))?;
        if request.amount.minor <= 0 {
            return Err(CommerceError::Invalid("a charge is of a positive amount".into()));
        }
        let declined = match behaviour {
            Behaviour::Succeeds => None,
            Behaviour::Declines(code) => Some(*code),
            Behaviour::DeclinesOffSession => request.off_session.then_some("generic_decline"),
        };
        Ok(match declined {
            None => ChargeOutcome::Succeeded { reference: derived_id("pi", request.idempotency_key) },
            Some(code) => ChargeOutcome::Declined { code: code.to_owned(), message: decline_message(code).to_owned() },
        })
    }

    async fn refund(&self, request: &RefundRequest<'_>) -> Result<String, CommerceError> {
        if request.amount.minor <= 0 {
            return Err(CommerceError::Invalid("a refund is of a positive amount".into()));
        }
        Ok(derived_id("re", request.idempotency_key))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_types::{Currency, Money};

    fn charge<'a>(method: &'a str, key: &'a str, off_session: bool) -> ChargeRequest<'a> {
        ChargeRequest {
            customer: "acct",
            method,
            amount: Money::new(4900, Currency::parse("USD").unwrap()),
            idempotency_key: key,
            description: "test",
            off_session,
        }
    }

    #[tokio::test]
    async fn test_cards_behave_as_stripe_documents() {
        let p = SandboxProvider;
        let visa = p.attach("acct", "4242 4242 4242 4242").await.unwrap();
        assert_eq!((visa.reference.as_str(), visa.brand.as_str(), visa.last4.as_str()), ("pm_card_visa", "visa", "4242"));
        assert_eq!(p.attach("acct", "pm_card_mastercard").await.unwrap().last4, "4444");
        let ok = p.charge(&charge("pm_card_visa", "k1", false)).await.unwrap();
        assert!(matches!(&ok, ChargeOutcome::Succeeded { reference } if reference.starts_with("pi_sandbox_")));
        assert_eq!(p.charge(&charge("pm_card_visa", "k1", true)).await.unwrap(), ok, "one key, one payment");
        assert_ne!(p.charge(&charge("pm_card_visa", "k2", false)).await.unwrap(), ok);
        let declined = p.charge(&charge("pm_card_chargeDeclined", "k3", false)).await.unwrap();
        assert_eq!(declined, ChargeOutcome::Declined { code: "generic_decline".into(), message: "Your card was declined.".into() });
        let insufficient = p.charge(&charge("pm_card_chargeDeclinedInsufficientFunds", "k4", false)).await.unwrap();
        assert!(matches!(insufficient, ChargeOutcome::Declined { code, .. } if code == "insufficient_funds"));
        assert!(p.attach("acct", "4000000000000341").await.is_ok(), "attaching the customer-fail card succeeds");
        assert!(matches!(p.charge(&charge("pm_card_chargeCustomerFail", "k5", false)).await.unwrap(), ChargeOutcome::Declined { .. }));
    }

    #[tokio::test]
    async fn the_renewal_declining_card_succeeds_at_checkout_only() {
        let p = SandboxProvider;
        assert!(matches!(p.charge(&charge("pm_card_declinedOffSession", "a", false)).await.unwrap(), ChargeOutcome::Succeeded { .. }));
        assert!(matches!(p.charge(&charge("pm_card_declinedOffSession", "b", true)).await.unwrap(), ChargeOutcome::Declined { .. }));
    }

    #[tokio::test]
    async fn anything_but_a_test_card_is_refused() {
        let p = SandboxProvider;
        for bad in ["4111 1111 1111 1112", "pm_card_unknown", "", &"4".repeat(100), "pm_card_visa\n"] {
            assert!(matches!(p.attach("acct", bad).await, Err(CommerceError::Invalid(_))), "{bad:?}");
        }
        let mut zero = charge("pm_card_visa", "z", false);
        zero.amount = Money::new(0, zero.amount.currency);
        assert!(p.charge(&zero).await.is_err());
    }
}

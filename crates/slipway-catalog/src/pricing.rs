//! The rules of a tier's price: what amount, currency, billing period and free trial a
//! publisher may ask for.

use slipway_types::Currency;

use crate::CatalogError;
use crate::model::Tier;
use crate::text::invalid;

/// The longest free trial, in days.
pub const MAX_TRIAL_DAYS: i64 = 90;

/// The highest price is ten million whole units of the tier's currency (10,000,000.00 USD,
/// 10,000,000 JPY, 10,000,000.000 KWD): a bound per exponent, so that a currency with
/// fewer decimal places does not get a far lower ceiling.
const MAX_WHOLE_UNITS_EXPONENT: u32 = 7;

/// A tier's price as it is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Price {
    /// Minor units of `currency`; 0 for free.
    pub amount: i64,
    /// The ISO 4217 code, as `Currency::parse` accepted it.
    pub currency: String,
    /// `free`, `month`, `year` or `one_time`.
    pub billing_period: &'static str,
    pub trial_days: i64,
}

/// Checks the price of the tier `slug`: the currency an active ISO 4217 code in upper case;
/// amount 0 a free tier (period `free` or empty, no trial); a paid amount positive and at
/// most the currency's ceiling, billed per `month`, per `year` or `one_time`; a trial of at
/// most `MAX_TRIAL_DAYS` days, and only on a tier that renews.
pub fn validate_price(slug: &str, t: &Tier) -> Result<Price, CatalogError> {
    let field = format!("tier {slug}");
    let currency = Currency::parse(&t.currency).map_err(|e| invalid(&field, format!("currency: {e}")))?;
    if t.amount < 0 {
        return Err(invalid(&field, format!("amount {} is negative: a price is 0 (free) or more", t.amount)));
    }
    if !(0..=MAX_TRIAL_DAYS).contains(&t.trial_days) {
        return Err(invalid(&field, format!("trial_days {} is not between 0 and {MAX_TRIAL_DAYS}", t.trial_days)));
    }
    let period = t.billing_period.trim();
    if t.amount == 0 {
        if !matches!(period, "" | "free") {
            return Err(invalid(&field, format!("billing_period {period:?}: a tier with amount 0 is free, billed \"free\"")));
        }
        if t.trial_days != 0 {
            return Err(invalid(&field, "a free tier has no trial".into()));
        }
        return Ok(Price { amount: 0, currency: currency.code().to_owned(), billing_period: "free", trial_days: 0 });
    }
    let exponent = MAX_WHOLE_UNITS_EXPONENT + u32::from(currency.exponent());
    let max = 10_i64.pow(exponent);
    if t.amount > max {
        let ceiling = slipway_types::Money::new(max, currency);
        return Err(invalid(
            &field,
            format!("amount {} is above the highest price of {ceiling} ({max} in minor units of {currency})", t.amount),
        ));
    }
    let billing_period = match period {
        "month" => "month",
        "year" => "year",
        "one_time" => "one_time",
        other => {
            return Err(invalid(&field, format!("billing_period {other:?}: a paid tier is billed per month, per year or one_time")));
        }
    };
    if t.trial_days > 0 && billing_period == "one_time" {
        return Err(invalid(&field, "a free trial is only for tiers billed per month or per year, not one_time".into()));
    }
    Ok(Price { amount: t.amount, currency: currency.code().to_owned(), billing_period, trial_days: t.trial_days })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tier(amount: i64, currency: &str, billing_period: &str, trial_days: i64) -> Tier {
        crate::model::priced_tier(amount, currency, billing_period, trial_days)
    }

    fn refusal(t: Tier) -> String {
        match validate_price("pro", &t) {
            Err(CatalogError::Invalid(message)) => message,
            other => panic!("{t:?} was not refused as invalid: {other:?}"),
        }
    }

    fn price(amount: i64, currency: &str, billing_period: &'static str, trial_days: i64) -> Price {
        Price { amount, currency: currency.into(), billing_period, trial_days }
    }

    #[test]
    fn free_tiers() {
        assert_eq!(validate_price("pro", &tier(0, "USD", "free", 0)).unwrap(), price(0, "USD", "free", 0));
        assert_eq!(validate_price("pro", &tier(0, "EUR", "", 0)).unwrap(), price(0, "EUR", "free", 0));
        assert!(refusal(tier(0, "USD", "month", 0)).contains("amount 0 is free"));
        assert!(refusal(tier(0, "USD", "free", 14)).contains("free tier has no trial"));
    }

    #[test]
    fn paid_tiers_in_any_iso_currency() {
        assert_eq!(validate_price("pro", &tier(4_900, "USD", "month", 14)).unwrap(), price(4_900, "USD", "month", 14));
        assert_eq!(validate_price("pro", &tier(49_000, "EUR", "year", 90)).unwrap(), price(49_000, "EUR", "year", 90));
        assert_eq!(validate_price("pro", &tier(9_900, "GBP", "one_time", 0)).unwrap(), price(9_900, "GBP", "one_time", 0));
        assert_eq!(validate_price("pro", &tier(1_500, "JPY", "month", 0)).unwrap(), price(1_500, "JPY", "month", 0));
        assert_eq!(validate_price("pro", &tier(12_345, "KWD", "month", 0)).unwrap(), price(12_345, "KWD", "month", 0));
    }

    #[test]
    fn currencies_must_be_active_iso_codes_in_upper_case() {
        for code in ["XYZ", "usd", "", "US", "USDX", "€", "XXX"] {
            let message = refusal(tier(4_900, code, "month", 0));
            assert!(message.starts_with("tier pro: currency"), "{code:?}: {message}");
        }
        assert!(refusal(tier(0, "xyz", "free", 0)).contains("currency"), "a free tier's currency is checked too");
    }

    #[test]
    fn amounts_are_not_negative_and_have_a_ceiling_per_exponent() {
        assert!(refusal(tier(-1, "USD", "month", 0)).contains("negative"));
        assert!(refusal(tier(i64::MIN, "USD", "month", 0)).contains("negative"));
        assert!(refusal(tier(i64::MAX, "USD", "month", 0)).contains("above the highest price"));
        // Ten million whole units, whatever the exponent.
        for (code, max) in [("USD", 1_000_000_000), ("JPY", 10_000_000), ("KWD", 10_000_000_000), ("CLF", 100_000_000_000)] {
            assert!(validate_price("pro", &tier(max, code, "month", 0)).is_ok(), "{code} {max}");
            assert!(refusal(tier(max + 1, code, "month", 0)).contains("above the highest price"), "{code} {max}");
        }
        assert!(refusal(tier(10_000_001, "JPY", "year", 0)).contains("10000000 JPY"));
    }

    #[test]
    fn paid_tiers_need_a_billing_period() {
        for period in ["", "free", "week", "Month", "one-time"] {
            assert!(refusal(tier(4_900, "USD", period, 0)).contains("billing_period"), "{period:?}");
        }
    }

    #[test]
    fn trials_are_up_to_90_days_and_only_on_renewing_tiers() {
        assert!(refusal(tier(4_900, "USD", "month", 91)).contains("trial_days 91"));
        assert!(refusal(tier(4_900, "USD", "month", -1)).contains("trial_days -1"));
        assert!(refusal(tier(4_900, "USD", "month", i64::MAX)).contains("trial_days"));
        assert!(refusal(tier(9_900, "USD", "one_time", 14)).contains("not one_time"));
        assert_eq!(validate_price("pro", &tier(9_900, "USD", "one_time", 0)).unwrap().trial_days, 0);
    }
}

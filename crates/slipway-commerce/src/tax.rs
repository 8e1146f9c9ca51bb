//! Tax: a rate table from the configuration, applied to tax-exclusive prices by the
//! buyer's billing country and region, with the EU's reverse charge for a business buyer
//! in another member state.

use serde::{Deserialize, Serialize};
use slipway_types::Money;

use crate::CommerceError;

/// One row of the table: the rate of `country` (ISO 3166-1 alpha-2), or of one `region`
/// of it (a state, a province), in basis points (1900 = 19%).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub struct TaxRate {
    pub country: String,
    #[serde(default)]
    pub region: Option<String>,
    pub rate_bps: u32,
    /// As the invoice names it: VAT, GST, sales tax.
    pub name: String,
}

/// What one amount owes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Assessment {
    pub rate_bps: u32,
    /// Empty when no tax applies.
    pub name: String,
    pub tax: Money,
    /// The buyer accounts for the VAT (EU business buyer in another member state).
    pub reverse_charge: bool,
    /// The ledger account the tax is owed to (`tax:DE`, `tax:US-CA`).
    pub account: String,
}

/// The EU member states, by the ISO code of their billing country.
const EU: [&str; 27] = [
    "AT", "BE", "BG", "CY", "CZ", "DE", "DK", "EE", "ES", "FI", "FR", "GR", "HR", "HU", "IE", "IT", "LT", "LU", "LV", "MT", "NL", "PL",
    "PT", "RO", "SE", "SI", "SK",
];

/// The longest country or region code, and the most rows a table may have.
const MAX_CODE: usize = 16;
pub const MAX_RATES: usize = 2_000;

#[derive(Clone, Debug, Default)]
pub struct TaxTable {
    rates: Vec<TaxRate>,
    /// The seller's member state: a buyer there is charged VAT even with a VAT id.
    seller_country: String,
}

impl TaxTable {
    /// Checks the table: known shapes of codes, rates up to 100%, one row per place.
    pub fn new(rates: Vec<TaxRate>, seller_country: &str) -> Result<TaxTable, CommerceError> {
        if rates.len() > MAX_RATES {
            return Err(CommerceError::Invalid(format!("the tax table has {} rows; at most {MAX_RATES}", rates.len())));
        }
        let mut seen = std::collections::BTreeSet::new();
        for r in &rates {
            if !is_country(&r.country) {
                return Err(CommerceError::Invalid(format!("tax rate country {:?} is not an ISO 3166 alpha-2 code such as DE", r.country)));
            }
            if r.region.as_ref().is_some_and(|region| region.is_empty() || region.len() > MAX_CODE) {
                return Err(CommerceError::Invalid(format!("tax rate region of {} is empty or longer than {MAX_CODE}", r.country)));
            }
            if r.rate_bps > 10_000 || r.name.trim().is_empty() || r.name.len() > 40 {
                return Err(CommerceError::Invalid(format!("tax rate of {} needs a name and at most 10000 basis points", r.country)));
            }
            if !seen.insert((r.country.clone(), r.region.clone())) {
                return Err(CommerceError::Invalid(format!("the tax table lists {} {:?} twice", r.country, r.region)));
            }
        }
        if !seller_country.is_empty() && !is_country(seller_country) {
            return Err(CommerceError::Invalid(format!("seller country {seller_country:?} is not an ISO 3166 alpha-2 code")));
        }
        Ok(TaxTable { rates, seller_country: seller_country.to_owned() })
    }

    /// The tax on `amount` (tax-exclusive) for a buyer in `country`/`region` with
    /// `tax_id` (empty: none). No billing country (None): no tax.
    pub fn assess(&self, place: Option<(&str, &str, &str)>, amount: Money) -> Result<Assessment, CommerceError> {
        let none = |reverse_charge| Assessment {
            rate_bps: 0,
            name: if reverse_charge { "VAT reverse charge".into() } else { String::new() },
            tax: Money::zero(amount.currency),
            reverse_charge,
            account: String::new(),
        };
        let Some((country, region, tax_id)) = place else { return Ok(none(false)) };
        if eu_reverse_charge(country, tax_id, &self.seller_country) {
            return Ok(none(true));
        }
        let rate = self
            .rates
            .iter()
            .find(|r| r.country == country && r.region.as_deref() == Some(region).filter(|r| !r.is_empty()))
            .or_else(|| self.rates.iter().find(|r| r.country == country && r.region.is_none()));
        let Some(rate) = rate else { return Ok(none(false)) };
        let tax = amount.share_bps(rate.rate_bps).map_err(|e| CommerceError::Invalid(e.to_string()))?;
        let account = match &rate.region {
            Some(region) => format!("tax:{country}-{region}"),
            None => format!("tax:{country}"),
        };
        Ok(Assessment { rate_bps: rate.rate_bps, name: rate.name.clone(), tax, reverse_charge: false, account })
    }
}

pub fn is_country(code: &str) -> bool {
    code.len() == 2 && code.bytes().all(|b| b.is_ascii_uppercase())
}

/// Whether a sale to a buyer in `country` with `tax_id` is reverse-charged: the buyer is
/// in an EU member state other than the seller's, and gives a VAT id of that state in its
/// format (checked for shape only: whether the id is registered is VIES's business).
pub fn eu_reverse_charge(country: &str, tax_id: &str, seller_country: &str) -> bool {
    EU.contains(&country) && country != seller_country && is_eu_vat_id(country, tax_id)
}

/// The shape of an EU VAT identification number: the state's prefix (Greece's is EL),
/// then 8 to 12 letters and digits with at least 7 digits.
pub fn is_eu_vat_id(country: &str, tax_id: &str) -> bool {
    let prefix = if country == "GR" { "EL" } else { country };
    let compact: String = tax_id.chars().filter(|c| !matches!(c, ' ' | '-' | '.')).collect::<String>().to_ascii_uppercase();
    let Some(rest) = compact.strip_prefix(prefix) else { return false };
    (8..=12).contains(&rest.len())
        && rest.bytes().all(|b| b.is_ascii_alphanumeric())
        && rest.bytes().filter(u8::is_ascii_digit).count() >= 7
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_types::Currency;

    fn table() -> TaxTable {
        let rate = |country: &str, region: Option<&str>, rate_bps, name: &str| TaxRate {
            country: country.into(),
            region: region.map(Into::into),
            rate_bps,
            name: name.into(),
        };
        TaxTable::new(
            vec![rate("DE", None, 1900, "VAT"), rate("US", Some("CA"), 725, "Sales tax"), rate("JP", None, 1000, "Consumption tax")],
            "IE",
        )
        .unwrap()
    }

    fn usd(minor: i64) -> Money {
        Money::new(minor, Currency::parse("USD").unwrap())
    }

    #[test]
    fn the_rate_of_the_region_or_the_country_applies_rounded_half_even() {
        let t = table();
        let de = t.assess(Some(("DE", "", "")), usd(4900)).unwrap();
        assert_eq!((de.tax.minor, de.rate_bps, de.name.as_str(), de.account.as_str()), (931, 1900, "VAT", "tax:DE"));
        let ca = t.assess(Some(("US", "CA", "")), usd(1000)).unwrap();
        assert_eq!((ca.tax.minor, ca.account.as_str()), (72, "tax:US-CA"), "72.5 rounds to the even 72");
        let ny = t.assess(Some(("US", "NY", "")), usd(1000)).unwrap();
        assert_eq!(ny.tax.minor, 0, "no row for the state and none for the country: no tax");
        let yen = t.assess(Some(("JP", "", "")), Money::new(1505, Currency::parse("JPY").unwrap())).unwrap();
        assert_eq!(yen.tax.minor, 150, "150.5 yen rounds to even: no fractions of a minor unit");
        assert_eq!(t.assess(None, usd(4900)).unwrap().tax.minor, 0, "no billing country: no tax");
    }

    #[test]
    fn an_eu_business_in_another_member_state_is_reverse_charged() {
        let t = table();
        let b2b = t.assess(Some(("DE", "", "DE123456789")), usd(4900)).unwrap();
        assert!(b2b.reverse_charge);
        assert_eq!(b2b.tax.minor, 0);
        let malformed = t.assess(Some(("DE", "", "DE12")), usd(4900)).unwrap();
        assert_eq!((malformed.reverse_charge, malformed.tax.minor), (false, 931), "a malformed id is charged VAT");
        let other_state = t.assess(Some(("DE", "", "FR12345678901")), usd(4900)).unwrap();
        assert!(!other_state.reverse_charge, "an id of another state than the billing country's");
        assert!(eu_reverse_charge("GR", "EL123456789", "IE"));
        assert!(!eu_reverse_charge("IE", "IE1234567WA", "IE"), "the seller's own state pays VAT");
        assert!(!eu_reverse_charge("US", "US123456789", "IE"), "not in the EU");
    }

    #[test]
    fn a_bad_table_is_refused() {
        let rate = |country: &str, rate_bps| TaxRate { country: country.into(), region: None, rate_bps, name: "VAT".into() };
        for bad in [vec![rate("de", 1900)], vec![rate("DE", 10_001)], vec![rate("DE", 1900), rate("DE", 700)], vec![rate("DEU", 1900)]] {
            assert!(TaxTable::new(bad.clone(), "IE").is_err(), "{bad:?}");
        }
        assert!(TaxTable::new((0..=MAX_RATES).map(|_| rate("DE", 1)).collect(), "IE").is_err(), "bounded");
        assert!(TaxTable::new(vec![], "Ireland").is_err());
    }
}

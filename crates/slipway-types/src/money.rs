//! Money as integers: an amount in a currency's minor units (cents, yen, fils) and the
//! ISO 4217 currency it is in. No floats: every operation is checked integer arithmetic,
//! and every rounding is stated where it happens.

use std::fmt;

/// What a money operation refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    #[error("{0:?} is not an active ISO 4217 currency code (three upper-case letters, such as USD)")]
    UnknownCurrency(String),
    #[error("amounts in {0} and {1} cannot be combined")]
    CurrencyMismatch(Currency, Currency),
    #[error("the amount is out of range")]
    Overflow,
    #[error("{0:?} is not an amount in {1} (digits, at most {2} after the point)")]
    BadAmount(String, Currency, u8),
    #[error("a share is between 0 and 10000 basis points, not {0}")]
    BadShare(u32),
}

/// The active ISO 4217 currencies that have a minor unit, with its exponent (the number of
/// decimal places of the minor unit), from List One of the standard as maintained by SIX
/// (amendments up to 2025: XCG and ZWG in, HRK, SLL and ZWL withdrawn). Sorted by code,
/// for the binary search. Codes whose minor unit is "N.A." (precious metals, XDR, XTS,
/// XXX) are left out: nothing is sold in them.
#[rustfmt::skip]
const CURRENCIES: &[(&str, u8)] = &[
    ("AED", 2), ("AFN", 2), ("ALL", 2), ("AMD", 2), ("AOA", 2), ("ARS", 2), ("AUD", 2), ("AWG", 2), ("AZN", 2),
    ("BAM", 2), ("BBD", 2), ("BDT", 2), ("BGN", 2), ("BHD", 3), ("BIF", 0), ("BMD", 2), ("BND", 2), ("BOB", 2),
    ("BOV", 2), ("BRL", 2), ("BSD", 2), ("BTN", 2), ("BWP", 2), ("BYN", 2), ("BZD", 2), ("CAD", 2), ("CDF", 2),
    ("CHE", 2), ("CHF", 2), ("CHW", 2), ("CLF", 4), ("CLP", 0), ("CNY", 2), ("COP", 2), ("COU", 2), ("CRC", 2),
    ("CUP", 2), ("CVE", 2), ("CZK", 2), ("DJF", 0), ("DKK", 2), ("DOP", 2), ("DZD", 2), ("EGP", 2), ("ERN", 2),
    ("ETB", 2), ("EUR", 2), ("FJD", 2), ("FKP", 2), ("GBP", 2), ("GEL", 2), ("GHS", 2), ("GIP", 2), ("GMD", 2),
    ("GNF", 0), ("GTQ", 2), ("GYD", 2), ("HKD", 2), ("HNL", 2), ("HTG", 2), ("HUF", 2), ("IDR", 2), ("ILS", 2),
    ("INR", 2), ("IQD", 3), ("IRR", 2), ("ISK", 0), ("JMD", 2), ("JOD", 3), ("JPY", 0), ("KES", 2), ("KGS", 2),
    ("KHR", 2), ("KMF", 0), ("KPW", 2), ("KRW", 0), ("KWD", 3), ("KYD", 2), ("KZT", 2), ("LAK", 2), ("LBP", 2),
    ("LKR", 2), ("LRD", 2), ("LSL", 2), ("LYD", 3), ("MAD", 2), ("MDL", 2), ("MGA", 2), ("MKD", 2), ("MMK", 2),
    ("MNT", 2), ("MOP", 2), ("MRU", 2), ("MUR", 2), ("MVR", 2), ("MWK", 2), ("MXN", 2), ("MXV", 2), ("MYR", 2),
    ("MZN", 2), ("NAD", 2), ("NGN", 2), ("NIO", 2), ("NOK", 2), ("NPR", 2), ("NZD", 2), ("OMR", 3), ("PAB", 2),
    ("PEN", 2), ("PGK", 2), ("PHP", 2), ("PKR", 2), ("PLN", 2), ("PYG", 0), ("QAR", 2), ("RON", 2), ("RSD", 2),
    ("RUB", 2), ("RWF", 0), ("SAR", 2), ("SBD", 2), ("SCR", 2), ("SDG", 2), ("SEK", 2), ("SGD", 2), ("SHP", 2),
    ("SLE", 2), ("SOS", 2), ("SRD", 2), ("SSP", 2), ("STN", 2), ("SVC", 2), ("SYP", 2), ("SZL", 2), ("THB", 2),
    ("TJS", 2), ("TMT", 2), ("TND", 3), ("TOP", 2), ("TRY", 2), ("TTD", 2), ("TWD", 2), ("TZS", 2), ("UAH", 2),
    ("UGX", 0), ("USD", 2), ("USN", 2), ("UYI", 0), ("UYU", 2), ("UYW", 4), ("UZS", 2), ("VED", 2), ("VES", 2),
    ("VND", 0), ("VUV", 0), ("WST", 2), ("XAF", 0), ("XCD", 2), ("XCG", 2), ("XOF", 0), ("XPF", 0), ("YER", 2),
    ("ZAR", 2), ("ZMW", 2), ("ZWG", 2),
];

/// An active ISO 4217 currency: its alphabetic code, and the exponent of its minor unit
/// (JPY 0, USD 2, KWD 3). Only `Currency::parse` makes one, so every value is in the table.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency {
    code: [u8; 3],
    exponent: u8,
}

impl Currency {
    /// The currency of an upper-case three-letter code. Lower case is refused rather than
    /// folded: a stored code is compared byte for byte, so there is one spelling.
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        let bytes: [u8; 3] =
            code.as_bytes().try_into().map_err(|_| MoneyError::UnknownCurrency(code.chars().take(16).collect::<String>()))?;
        CURRENCIES
            .binary_search_by(|(c, _)| c.as_bytes().cmp(&bytes[..]))
            .map(|i| Currency { code: bytes, exponent: CURRENCIES[i].1 })
            .map_err(|_| MoneyError::UnknownCurrency(code.to_owned()))
    }

    pub fn code(&self) -> &str {
        // Always ASCII: it came from the table.
        std::str::from_utf8(&self.code).unwrap_or("XXX")
    }

    /// Decimal places of the minor unit.
    pub fn exponent(&self) -> u8 {
        self.exponent
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// An amount of money: a signed count of the currency's minor units.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

/// The longest amount string `Money::parse` reads: i64 has 19 digits, plus sign and point.
const MAX_AMOUNT_LEN: usize = 24;

impl Money {
    pub fn new(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    pub fn zero(currency: Currency) -> Money {
        Money { minor: 0, currency }
    }

    fn same_currency(&self, other: &Money) -> Result<(), MoneyError> {
        if self.currency == other.currency { Ok(()) } else { Err(MoneyError::CurrencyMismatch(self.currency, other.currency)) }
    }

    pub fn checked_add(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Ok(Money { minor: self.minor.checked_add(other.minor).ok_or(MoneyError::Overflow)?, currency: self.currency })
    }

    pub fn checked_sub(&self, other: &Money) -> Result<Money, MoneyError> {
        self.same_currency(other)?;
        Ok(Money { minor: self.minor.checked_sub(other.minor).ok_or(MoneyError::Overflow)?, currency: self.currency })
    }

    pub fn checked_neg(&self) -> Result<Money, MoneyError> {
        Ok(Money { minor: self.minor.checked_neg().ok_or(MoneyError::Overflow)?, currency: self.currency })
    }

    /// `bps` basis points (1/10000) of this amount, rounded half to even (banker's
    /// rounding, so that many roundings do not drift one way): 50 bps of 1 cent is 0, of 3
    /// cents is 0 (0.15), of 30 cents is 2 (1.5 → 2), of 50 cents is 2 (2.5 → 2).
    pub fn share_bps(&self, bps: u32) -> Result<Money, MoneyError> {
        if bps > 10_000 {
            return Err(MoneyError::BadShare(bps));
        }
        let product = i128::from(self.minor) * i128::from(bps);
        let (quotient, remainder) = (product.div_euclid(10_000), product.rem_euclid(10_000));
        let rounded = match remainder.cmp(&5_000) {
            std::cmp::Ordering::Less => quotient,
            std::cmp::Ordering::Greater => quotient + 1,
            std::cmp::Ordering::Equal => quotient + (quotient & 1),
        };
        // |share| <= |minor| since bps <= 10000, so it fits; checked all the same.
        Ok(Money { minor: i64::try_from(rounded).map_err(|_| MoneyError::Overflow)?, currency: self.currency })
    }

    /// Splits this amount into the `bps` share (as `share_bps` rounds it) and the rest:
    /// the two always add up to the whole, so a split neither loses nor makes a minor unit.
    pub fn split_bps(&self, bps: u32) -> Result<(Money, Money), MoneyError> {
        let share = self.share_bps(bps)?;
        Ok((share, self.checked_sub(&share)?))
    }

    /// Reads a decimal amount such as `12.34`, `-0.5` or `1000` in `currency`: digits with
    /// an optional leading minus and at most the currency's exponent of decimal places.
    /// More places are refused, never rounded away.
    pub fn parse(amount: &str, currency: Currency) -> Result<Money, MoneyError> {
        let bad = || MoneyError::BadAmount(amount.chars().take(MAX_AMOUNT_LEN).collect(), currency, currency.exponent);
        if amount.len() > MAX_AMOUNT_LEN {
            return Err(bad());
        }
        let (negative, digits) = match amount.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, amount),
        };
        let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
        let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !all_digits(whole) || !all_digits(fraction) || (digits.contains('.') && fraction.is_empty()) {
            return Err(bad());
        }
        let exponent = usize::from(currency.exponent);
        if fraction.len() > exponent {
            return Err(bad());
        }
        let padded = format!("{whole}{fraction:0<exponent$}");
        // Parsed with its sign so that i64::MIN itself reads back.
        let signed = if negative { format!("-{padded}") } else { padded };
        let minor: i64 = signed.parse().map_err(|_| MoneyError::Overflow)?;
        Ok(Money { minor, currency })
    }

    /// The amount as a plain decimal, with exactly the currency's decimal places: `12.34`,
    /// `-0.05`, `1000` (JPY), `1.500` (KWD).
    pub fn amount_string(&self) -> String {
        let exponent = u32::from(self.currency.exponent);
        let digits = self.minor.unsigned_abs().to_string();
        let sign = if self.minor < 0 { "-" } else { "" };
        if exponent == 0 {
            return format!("{sign}{digits}");
        }
        let width = exponent as usize + 1;
        let padded = format!("{digits:0>width$}");
        let (whole, fraction) = padded.split_at(padded.len() - exponent as usize);
        format!("{sign}{whole}.{fraction}")
    }
}

impl fmt::Display for Money {
    /// `12.34 USD`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.amount_string(), self.currency)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(code: &str) -> Currency {
        Currency::parse(code).unwrap()
    }

    fn m(minor: i64, code: &str) -> Money {
        Money::new(minor, c(code))
    }

    #[test]
    fn the_table_is_sorted_unique_and_well_formed() {
        assert!(CURRENCIES.windows(2).all(|w| w[0].0 < w[1].0), "sorted and unique, for the binary search");
        for (code, exponent) in CURRENCIES {
            assert!(code.len() == 3 && code.bytes().all(|b| b.is_ascii_uppercase()), "{code}");
            assert!(*exponent <= 4, "{code}");
            assert_eq!(Currency::parse(code).unwrap().code(), *code);
        }
    }

    /// The exponents ISO 4217 gives the currencies whose minor unit is not two places: every
    /// one of them is in the table with its exponent, and every other entry has 2.
    #[test]
    fn exponents_match_the_standard() {
        let zero = ["BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"];
        let three = ["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
        let four = ["CLF", "UYW"];
        for (codes, exponent) in [(&zero[..], 0), (&three[..], 3), (&four[..], 4)] {
            for code in codes {
                assert_eq!(c(code).exponent(), exponent, "{code}");
            }
        }
        let special = zero.len() + three.len() + four.len();
        assert_eq!(CURRENCIES.iter().filter(|(_, e)| *e != 2).count(), special);
        for code in ["USD", "EUR", "GBP", "CHF", "INR", "BRL"] {
            assert_eq!(c(code).exponent(), 2, "{code}");
        }
    }

    #[test]
    fn bad_codes_are_refused() {
        for code in ["usd", "Usd", "US", "USDD", "", "XXX", "XAU", "ABC", "U\u{0}D", "ÜSD", &"A".repeat(10_000)] {
            assert!(matches!(Currency::parse(code), Err(MoneyError::UnknownCurrency(_))), "{code:?}");
        }
        let long = Currency::parse(&"A".repeat(10_000)).unwrap_err().to_string();
        assert!(long.len() < 200, "the error does not echo a huge input: {long}");
    }

    #[test]
    fn arithmetic_is_checked() {
        assert_eq!(m(150, "USD").checked_add(&m(-50, "USD")).unwrap(), m(100, "USD"));
        assert_eq!(m(150, "USD").checked_sub(&m(200, "USD")).unwrap(), m(-50, "USD"));
        assert_eq!(m(1, "USD").checked_add(&m(1, "EUR")), Err(MoneyError::CurrencyMismatch(c("USD"), c("EUR"))));
        assert_eq!(m(i64::MAX, "USD").checked_add(&m(1, "USD")), Err(MoneyError::Overflow));
        assert_eq!(m(i64::MIN, "USD").checked_sub(&m(1, "USD")), Err(MoneyError::Overflow));
        assert_eq!(m(i64::MIN, "USD").checked_neg(), Err(MoneyError::Overflow));
        assert_eq!(m(i64::MAX, "USD").checked_neg().unwrap(), m(-i64::MAX, "USD"));
    }

    #[test]
    fn shares_round_half_to_even() {
        let share = |minor: i64, bps: u32| m(minor, "USD").share_bps(bps).unwrap().minor;
        assert_eq!(share(10_000, 1_500), 1_500);
        assert_eq!(share(30, 500), 2, "1.5 rounds to 2");
        assert_eq!(share(50, 500), 2, "2.5 rounds to 2");
        assert_eq!(share(70, 500), 4, "3.5 rounds to 4");
        assert_eq!(share(3, 500), 0, "0.15 rounds to 0");
        assert_eq!(share(-30, 500), -2, "-1.5 rounds to -2");
        assert_eq!(share(-50, 500), -2, "-2.5 rounds to -2");
        assert_eq!(share(-70, 500), -4);
        assert_eq!(share(-31, 500), -2, "-1.55 rounds to -2");
        assert_eq!(share(i64::MAX, 10_000), i64::MAX);
        assert_eq!(share(i64::MIN, 10_000), i64::MIN);
        assert_eq!(share(i64::MAX, 0), 0);
        assert_eq!(m(1, "USD").share_bps(10_001), Err(MoneyError::BadShare(10_001)));
    }

    #[test]
    fn splits_add_up_to_the_whole() {
        for minor in [0, 1, 2, 3, 7, 99, 101, 12_345, -1, -99, -12_345, i64::MAX, i64::MIN, i64::MIN + 1] {
            for bps in [0, 1, 333, 1_500, 5_000, 6_667, 9_999, 10_000] {
                let whole = m(minor, "JPY");
                let (share, rest) = whole.split_bps(bps).unwrap();
                assert_eq!(share.checked_add(&rest).unwrap(), whole, "{minor} at {bps}");
                assert_eq!(share.currency, whole.currency);
            }
        }
    }

    #[test]
    fn amounts_parse_and_print_in_the_currencys_places() {
        assert_eq!(Money::parse("12.34", c("USD")).unwrap(), m(1_234, "USD"));
        assert_eq!(Money::parse("12.3", c("USD")).unwrap(), m(1_230, "USD"));
        assert_eq!(Money::parse("12", c("USD")).unwrap(), m(1_200, "USD"));
        assert_eq!(Money::parse("-0.05", c("USD")).unwrap(), m(-5, "USD"));
        assert_eq!(Money::parse("1000", c("JPY")).unwrap(), m(1_000, "JPY"));
        assert_eq!(Money::parse("1.5", c("KWD")).unwrap(), m(1_500, "KWD"));
        assert_eq!(Money::parse("92233720368547758.07", c("USD")).unwrap(), m(i64::MAX, "USD"));
        assert_eq!(Money::parse("-92233720368547758.08", c("USD")).unwrap(), m(i64::MIN, "USD"));
        assert_eq!(Money::parse("92233720368547758.08", c("USD")), Err(MoneyError::Overflow));
        for bad in ["", "-", ".5", "1.", "1.234", "1,00", "1e3", "+1", " 1", "1 ", "--1", "1.2.3", "0x10", "١٢"] {
            assert!(matches!(Money::parse(bad, c("USD")), Err(MoneyError::BadAmount(..))), "{bad:?}");
        }
        assert!(matches!(Money::parse("1.5", c("JPY")), Err(MoneyError::BadAmount(..))));
        assert!(matches!(Money::parse(&"9".repeat(1_000), c("USD")), Err(MoneyError::BadAmount(..))));

        assert_eq!(m(1_234, "USD").to_string(), "12.34 USD");
        assert_eq!(m(-5, "USD").amount_string(), "-0.05");
        assert_eq!(m(0, "EUR").amount_string(), "0.00");
        assert_eq!(m(1_000, "JPY").amount_string(), "1000");
        assert_eq!(m(1_500, "KWD").amount_string(), "1.500");
        assert_eq!(m(i64::MIN, "USD").amount_string(), "-92233720368547758.08");
        for minor in [0, 1, -1, 99, -100, 123_456, i64::MAX, i64::MIN] {
            for code in ["USD", "JPY", "KWD", "CLF"] {
                let money = m(minor, code);
                assert_eq!(Money::parse(&money.amount_string(), money.currency).unwrap(), money, "{money}");
            }
        }
    }
}

//! Money as prices, refunds and payouts read it (slipway-types: Currency::parse,
//! Money::parse, amount_string, the checked arithmetic and basis-point shares).
//!
//! Amounts print and read back exactly in every currency; an accepted amount string is
//! the same number as the printed one; a share rounds half to even and a split never
//! loses or makes a minor unit; arithmetic fails exactly where i64 overflows.
#![no_main]

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use slipway_types::{Currency, Money, MoneyError};

/// Codes of every exponent in the table (0, 2, 3, 4), and whatever the input spells.
const CODES: [&str; 8] = ["USD", "JPY", "KWD", "CLF", "EUR", "BHD", "UYW", "ISK"];

#[derive(Arbitrary, Debug)]
struct Input {
    code: String,
    known: u8,
    minor: i64,
    other: i64,
    amount: String,
    bps: u32,
}

fuzz_target!(|input: Input| {
    if let Ok(currency) = Currency::parse(&input.code) {
        assert_eq!(currency.code(), input.code);
        assert_eq!(currency.to_string(), input.code);
        assert!(currency.exponent() <= 4);
    }
    let currency = Currency::parse(&input.code)
        .unwrap_or_else(|_| Currency::parse(CODES[usize::from(input.known) % CODES.len()]).expect("a code from the table"));

    // Any amount prints and reads back exactly.
    let money = Money::new(input.minor, currency);
    let printed = money.amount_string();
    assert_eq!(Money::parse(&printed, currency), Ok(money), "{printed:?}");
    assert_eq!(money.to_string(), format!("{printed} {currency}"));

    // An accepted amount string is the number it spells.
    if let Ok(parsed) = Money::parse(&input.amount, currency) {
        assert_eq!(parsed.currency, currency);
        assert_eq!(parsed.amount_string(), canonical(&input.amount, currency.exponent()), "{:?}", input.amount);
    }

    let other = Money::new(input.other, currency);
    assert_eq!(money.checked_add(&other).ok().map(|m| m.minor), input.minor.checked_add(input.other));
    assert_eq!(money.checked_sub(&other).ok().map(|m| m.minor), input.minor.checked_sub(input.other));
    assert_eq!(money.checked_neg().ok().map(|m| m.minor), input.minor.checked_neg());
    if let Ok(usd) = Currency::parse("USD")
        && let Ok(jpy) = Currency::parse("JPY")
    {
        assert!(matches!(Money::new(1, usd).checked_add(&Money::new(1, jpy)), Err(MoneyError::CurrencyMismatch(..))));
    }

    match money.share_bps(input.bps) {
        Err(MoneyError::BadShare(bps)) => assert!(bps > 10_000 && bps == input.bps),
        Err(e) => panic!("share of {money:?}: {e}"),
        Ok(share) => {
            assert!(input.bps <= 10_000);
            assert_eq!(share.minor, half_even(input.minor, input.bps), "{} bps of {}", input.bps, input.minor);
            assert!(share.minor.unsigned_abs() <= input.minor.unsigned_abs());
            match money.split_bps(input.bps) {
                Ok((share2, rest)) => {
                    assert_eq!(share2, share);
                    assert_eq!(i128::from(share.minor) + i128::from(rest.minor), i128::from(input.minor), "the split lost a unit");
                }
                // The rest overflows only if the share and the whole have opposite signs,
                // which a share never has.
                Err(e) => panic!("split of {money:?} at {} bps: {e}", input.bps),
            }
        }
    }
    assert_eq!(money.share_bps(10_000).map(|m| m.minor), Ok(input.minor));
    assert_eq!(money.share_bps(0).map(|m| m.minor), Ok(0));
});

/// `minor * bps / 10000`, rounded half to even, by long division on the magnitude.
fn half_even(minor: i64, bps: u32) -> i64 {
    let product = i128::from(minor).unsigned_abs() * u128::from(bps);
    let (quotient, remainder) = (product / 10_000, product % 10_000);
    let magnitude = match remainder.cmp(&5_000) {
        std::cmp::Ordering::Less => quotient,
        std::cmp::Ordering::Greater => quotient + 1,
        std::cmp::Ordering::Equal => quotient + (quotient % 2),
    };
    let magnitude = i128::try_from(magnitude).expect("no larger than |minor|");
    i64::try_from(if minor < 0 { -magnitude } else { magnitude }).expect("no larger than |minor|")
}

/// The canonical spelling of an accepted amount: no leading zeros, exactly `exponent`
/// decimals, no sign on zero.
fn canonical(amount: &str, exponent: u8) -> String {
    let (negative, digits) = match amount.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, amount),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let whole = whole.trim_start_matches('0');
    let whole = if whole.is_empty() { "0" } else { whole };
    let fraction = format!("{fraction:0<width$}", width = usize::from(exponent));
    let zero = whole == "0" && fraction.bytes().all(|b| b == b'0');
    let sign = if negative && !zero { "-" } else { "" };
    if exponent == 0 { format!("{sign}{whole}") } else { format!("{sign}{whole}.{fraction}") }
}

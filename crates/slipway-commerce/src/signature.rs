//! Stripe's webhook signature scheme: `Stripe-Signature: t=<unix secs>,v1=<hex>[,v1=...]`,
//! the HMAC-SHA256 under the endpoint secret of `"{t}.{payload}"`. Checked on the webhooks
//! Stripe sends us, and used to sign the fulfillment webhooks Slipway sends, so a
//! publisher can verify ours with any Stripe library.

use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::CommerceError;

/// How far a signed timestamp may be from now, either way: Stripe's libraries' default.
pub const DEFAULT_TOLERANCE_SECS: i64 = 300;
/// The longest header read: a real one (a timestamp and a few signatures) is ~200 bytes.
pub const MAX_HEADER_LEN: usize = 4096;
/// The most `key=value` entries read: Stripe sends one `v1` per active secret (two while
/// a secret is rolled) and maybe a `v0`.
pub const MAX_ENTRIES: usize = 16;

/// The one scheme checked: `v0` (and any other) is ignored, as Stripe's libraries do.
const SCHEME: &str = "v1";

// The refusals, each with its own message: all are `CommerceError::Signature` (400).

fn malformed(why: &str) -> CommerceError {
    CommerceError::Signature(format!("malformed Stripe-Signature header: {why}"))
}

fn no_signature() -> CommerceError {
    CommerceError::Signature("the Stripe-Signature header has no v1 signature".to_owned())
}

fn mismatch() -> CommerceError {
    CommerceError::Signature("no signature in the Stripe-Signature header matches the payload".to_owned())
}

/// Refused both ways: an old one may be a replay, one far ahead a forgery kept for later.
fn outside_tolerance(timestamp: i64, now: i64, tolerance_secs: i64) -> CommerceError {
    CommerceError::Signature(format!("the signed timestamp {timestamp} is more than {tolerance_secs} s away from now ({now})"))
}

fn mac(secret: &str, payload: &[u8], timestamp: i64) -> Hmac<Sha256> {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(payload);
    mac
}

/// The `Stripe-Signature` header value for `payload` signed at `timestamp`.
pub fn sign(secret: &str, payload: &[u8], timestamp: i64) -> String {
    let signature = hex::encode(mac(secret, payload, timestamp).finalize().into_bytes());
    format!("t={timestamp},{SCHEME}={signature}")
}

/// Checks `header` against `payload`: one of its v1 signatures must match (compared in
/// constant time) and its timestamp be within `tolerance_secs` of `now_secs`. Returns the
/// signed timestamp.
pub fn verify(secret: &str, payload: &[u8], header: &str, now_secs: i64, tolerance_secs: i64) -> Result<i64, CommerceError> {
    if header.len() > MAX_HEADER_LEN {
        return Err(malformed("longer than 4 KiB"));
    }
    let mut timestamp = None;
    let mut signatures = Vec::new();
    for (i, entry) in header.split(',').enumerate() {
        if i == MAX_ENTRIES {
            return Err(malformed("too many entries"));
        }
        let Some((key, value)) = entry.split_once('=') else {
            return Err(malformed("an entry is not key=value"));
        };
        match key {
            "t" => {
                if timestamp.is_some() {
                    return Err(malformed("more than one timestamp"));
                }
                // Digits only: `+5`, ` 5` or `5_0` are not what Stripe writes.
                if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(malformed("the timestamp is not a number"));
                }
                timestamp = Some(value.parse::<i64>().map_err(|_| malformed("the timestamp is out of range"))?);
            }
            SCHEME => signatures.push(value),
            _ => {}
        }
    }
    let timestamp = timestamp.ok_or_else(|| malformed("no timestamp"))?;
    if signatures.is_empty() {
        return Err(no_signature());
    }
    let expected = mac(secret, payload, timestamp);
    // A value that is not hex cannot match; it is not a reason to refuse the others.
    let matched = signatures.iter().filter_map(|s| hex::decode(s).ok()).any(|candidate| expected.clone().verify_slice(&candidate).is_ok());
    if !matched {
        return Err(mismatch());
    }
    let tolerance = tolerance_secs.max(0).unsigned_abs();
    if now_secs.abs_diff(timestamp) > tolerance {
        return Err(outside_tolerance(timestamp, now_secs, tolerance_secs));
    }
    Ok(timestamp)
}

#[cfg(test)]
mod tests {
    use slipway_types::ErrorKind;

    use super::*;

    const SECRET: &str = "whsec_test_secret";
    const NOW: i64 = 1_700_000_000;
    const BODY: &[u8] = br#"{"id":"evt_1","type":"payment_intent.succeeded"}"#;

    fn verify_now(header: &str) -> Result<i64, CommerceError> {
        verify(SECRET, BODY, header, NOW, DEFAULT_TOLERANCE_SECS)
    }

    /// The refusal's message, after checking it is a signature refusal (a 400).
    fn refusal(result: Result<i64, CommerceError>) -> String {
        let err = result.expect_err("refused");
        assert!(matches!(err, CommerceError::Signature(_)), "{err:?}");
        assert_eq!(err.kind(), ErrorKind::Malformed);
        err.to_string()
    }

    #[test]
    fn a_signed_payload_verifies_and_returns_its_timestamp() {
        let header = sign(SECRET, BODY, NOW);
        assert!(header.starts_with(&format!("t={NOW},v1=")));
        assert_eq!(header.len(), format!("t={NOW},v1=").len() + 64);
        assert_eq!(verify_now(&header).unwrap(), NOW);
    }

    #[test]
    fn a_known_vector_matches() {
        // HMAC-SHA256("whsec_test_secret", "1700000000.{body}"), from Python's hmac module.
        let header = sign(SECRET, BODY, NOW);
        assert_eq!(header, "t=1700000000,v1=22d8dc182f5c588077683bd378368e29765bfe5df2560112b4f28fef120f0e31");
    }

    #[test]
    fn the_refusals_say_which_they_are() {
        let messages = [malformed("no timestamp"), no_signature(), mismatch(), outside_tolerance(1, 2, 3)].map(|e| e.to_string());
        assert_eq!(messages.iter().collect::<std::collections::BTreeSet<_>>().len(), messages.len(), "{messages:?}");
        assert_eq!(messages[0], "malformed Stripe-Signature header: no timestamp");
        assert_eq!(messages[3], "the signed timestamp 1 is more than 3 s away from now (2)");
    }

    #[test]
    fn any_of_several_v1_signatures_may_match_and_v0_is_ignored() {
        let good = sign(SECRET, BODY, NOW);
        let good_sig = good.split_once(",v1=").unwrap().1;
        let other = sign("whsec_old", BODY, NOW);
        let other_sig = other.split_once(",v1=").unwrap().1;
        let header = format!("t={NOW},v1={other_sig},v0={good_sig},v1=nothex,v1={good_sig}");
        assert_eq!(verify_now(&header).unwrap(), NOW);
        // The right signature under v0 alone does not count.
        assert_eq!(refusal(verify_now(&format!("t={NOW},v0={good_sig}"))), no_signature().to_string());
    }

    #[test]
    fn a_tampered_payload_or_wrong_secret_is_a_mismatch() {
        let header = sign(SECRET, BODY, NOW);
        let mismatch = mismatch().to_string();
        assert_eq!(refusal(verify(SECRET, b"{\"id\":\"evt_2\"}", &header, NOW, 300)), mismatch);
        assert_eq!(refusal(verify("whsec_other", BODY, &header, NOW, 300)), mismatch);
        // The timestamp is signed too: moving it breaks the signature.
        let moved = header.replacen(&NOW.to_string(), &(NOW + 1).to_string(), 1);
        assert_eq!(refusal(verify_now(&moved)), mismatch);
        let sig = header.split_once(",v1=").unwrap().1;
        assert_eq!(refusal(verify_now(&format!("t={NOW},v1={}", &sig[..62]))), mismatch);
    }

    #[test]
    fn timestamps_too_old_or_too_far_ahead_are_refused() {
        for t in [NOW - 301, NOW + 301, 0] {
            let header = sign(SECRET, BODY, t);
            assert_eq!(refusal(verify_now(&header)), outside_tolerance(t, NOW, DEFAULT_TOLERANCE_SECS).to_string(), "{t}");
        }
        for t in [NOW - 300, NOW + 300] {
            assert_eq!(verify_now(&sign(SECRET, BODY, t)).unwrap(), t);
        }
    }

    #[test]
    fn malformed_headers_are_refused() {
        let sig = sign(SECRET, BODY, NOW).split_once(",v1=").unwrap().1.to_owned();
        for header in [
            String::new(),
            "garbage".to_owned(),
            format!("v1={sig}"),
            format!("t=,v1={sig}"),
            format!("t=-5,v1={sig}"),
            format!("t=+5,v1={sig}"),
            format!("t=99999999999999999999,v1={sig}"),
            format!("t={NOW},t={NOW},v1={sig}"),
            format!("t={NOW},v1={sig},"),
        ] {
            let message = refusal(verify_now(&header));
            assert!(message.starts_with("malformed Stripe-Signature header: "), "{header:?}: {message}");
        }
        assert_eq!(refusal(verify_now(&format!("t={NOW}"))), no_signature().to_string());
    }

    #[test]
    fn headers_are_bounded_in_length_and_entries() {
        let good = sign(SECRET, BODY, NOW);
        // 15 ignored entries then the good ones: 17 entries, one too many.
        let padded = format!("{}{good}", "v0=x,".repeat(MAX_ENTRIES - 1));
        assert_eq!(refusal(verify_now(&padded)), malformed("too many entries").to_string());
        let fits = format!("{}{good}", "v0=x,".repeat(MAX_ENTRIES - 2));
        assert_eq!(verify_now(&fits).unwrap(), NOW);
        let long = format!("{good},v0={}", "a".repeat(MAX_HEADER_LEN));
        assert_eq!(refusal(verify_now(&long)), malformed("longer than 4 KiB").to_string());
    }
}

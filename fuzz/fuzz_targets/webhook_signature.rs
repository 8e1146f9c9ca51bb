//! Webhook signatures (slipway-commerce's `signature`: Stripe's scheme, checked on the
//! webhooks Stripe sends and used to sign the fulfillment webhooks Slipway sends) and
//! `stripe::parse_webhook`.
//!
//! The header is assembled from the input, and may carry the true signature of the
//! payload, computed here with an independent HMAC. A header that verifies must name a
//! timestamp within the tolerance and carry the signer's signature of exactly that
//! timestamp and payload; the same header must not verify another payload or under
//! another secret; and what `sign` writes always verifies.
#![no_main]

use arbitrary::Arbitrary;
use hmac::{Hmac, Mac};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;
use sha2::Sha256;
use slipway_commerce::signature::{sign, verify};
use slipway_commerce::stripe::parse_webhook;

#[derive(Arbitrary, Debug)]
struct Input {
    secret: String,
    payload: Vec<u8>,
    /// The timestamp the true signature is made for.
    timestamp: u32,
    /// Now, relative to the timestamp.
    skew: i32,
    tolerance: i16,
    entries: Vec<Entry>,
}

#[derive(Arbitrary, Debug)]
enum Entry {
    /// `t=` with the timestamp.
    Timestamp,
    /// `t=` with anything.
    OtherTimestamp(String),
    /// `v1=` with the true signature.
    Signature,
    /// `v1=` with the true signature in upper case.
    UpperSignature,
    /// `v1=` with anything.
    OtherSignature(String),
    /// `v0=` (ignored by Stripe's libraries) with the true signature.
    V0Signature,
    Raw(String),
}

fuzz_target!(|input: Input| {
    let timestamp = i64::from(input.timestamp);
    let now = timestamp + i64::from(input.skew);
    let tolerance = i64::from(input.tolerance);
    let truth = hmac(&input.secret, timestamp, &input.payload);
    let header: Vec<String> = input
        .entries
        .iter()
        .map(|entry| match entry {
            Entry::Timestamp => format!("t={timestamp}"),
            Entry::OtherTimestamp(t) => format!("t={t}"),
            Entry::Signature => format!("v1={truth}"),
            Entry::UpperSignature => format!("v1={}", truth.to_ascii_uppercase()),
            Entry::OtherSignature(s) => format!("v1={s}"),
            Entry::V0Signature => format!("v0={truth}"),
            Entry::Raw(raw) => raw.clone(),
        })
        .collect();
    let header = header.join(",");

    if let Ok(signed_at) = verify(&input.secret, &input.payload, &header, now, tolerance) {
        let stamps: Vec<&str> = header.split(',').filter_map(|e| e.strip_prefix("t=")).collect();
        assert_eq!(stamps.len(), 1, "{header:?}");
        assert_eq!(stamps[0].parse::<i64>().ok(), Some(signed_at));
        assert!(now.abs_diff(signed_at) <= tolerance.max(0).unsigned_abs(), "outside the tolerance: {header:?}");
        let expected = hex::decode(hmac(&input.secret, signed_at, &input.payload)).expect("hex");
        let signed = header.split(',').filter_map(|e| e.strip_prefix("v1=")).any(|s| hex::decode(s).ok().as_ref() == Some(&expected));
        assert!(signed, "{header:?} verified without the signer's signature of {signed_at}");

        let mut other_payload = input.payload.clone();
        other_payload.push(b'x');
        assert!(verify(&input.secret, &other_payload, &header, now, tolerance).is_err(), "verified another payload");
        let other_secret = format!("{}x", input.secret);
        assert!(verify(&other_secret, &input.payload, &header, now, tolerance).is_err(), "verified under another secret");
    }

    // What we sign (the fulfillment webhooks) verifies, at the signing time.
    let written = sign(&input.secret, &input.payload, timestamp);
    assert_eq!(written, format!("t={timestamp},v1={truth}"));
    assert_eq!(verify(&input.secret, &input.payload, &written, timestamp, 0).ok(), Some(timestamp));

    // A Stripe event read from a verified payload is the event the payload holds.
    if let Ok(event) = parse_webhook(&input.payload, &header, &input.secret, now) {
        assert!(verify(&input.secret, &input.payload, &header, now, 300).is_ok());
        // Unknown fields are skipped unchecked: compare when the payload reads in full.
        if let Ok(raw) = serde_json::from_slice::<Value>(&input.payload) {
            assert_eq!(raw["id"].as_str(), Some(event.id.as_str()));
            assert_eq!(raw["type"].as_str(), Some(event.kind.as_str()));
        }
        assert!(!event.id.is_empty() && !event.kind.is_empty());
    }
});

/// HMAC-SHA256 of `"{timestamp}.{payload}"`, hex: Stripe's scheme, from the hmac crate.
fn hmac(secret: &str, timestamp: i64, payload: &[u8]) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.").as_bytes());
    mac.update(payload);
    hex::encode(mac.finalize().into_bytes())
}

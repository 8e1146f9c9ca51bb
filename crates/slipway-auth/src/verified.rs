//! Registry tokens already verified, kept until they expire (issue 19): checking an ES256
//! signature costs tens of microseconds, more than the rest of a manifest GET, and a client
//! sends the same token with every request of a pull.
//!
//! Keyed by the token's SHA-256, so the cache holds no usable token. Only tokens whose
//! signature, issuer and audience held are kept; a hit still checks the token's times
//! against the Clock, so an expired token is refused exactly as before. Revocations and
//! role changes take effect as they did: within a token's lifetime (`auth.token_ttl_secs`),
//! since the token itself was already trusted that long. Bounded: when full, the expired
//! entries go, and if that frees nothing the cache starts empty again (a burst of fresh
//! tokens then costs one verification each, as without a cache).

use std::collections::HashMap;
use std::sync::Mutex;

use sha2::{Digest, Sha256};

use crate::service::Claims;

/// The most tokens kept: ~ one per concurrent client, each a few hundred bytes.
pub(crate) const MAX_VERIFIED: usize = 10_000;

#[derive(Default)]
pub(crate) struct VerifiedTokens {
    entries: Mutex<HashMap<[u8; 32], Claims>>,
}

impl VerifiedTokens {
    fn key(token: &str) -> [u8; 32] {
        Sha256::digest(token.as_bytes()).into()
    }

    /// The claims of a token verified before, if its times still hold at `now_secs`.
    pub(crate) fn get(&self, token: &str, now_secs: u64, leeway: u64) -> Option<Claims> {
        let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        let claims = entries.get(&Self::key(token))?;
        (claims.exp + leeway > now_secs && claims.nbf <= now_secs + leeway).then(|| claims.clone())
    }

    pub(crate) fn insert(&self, token: &str, claims: &Claims, now_secs: u64) {
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        if entries.len() >= MAX_VERIFIED {
            entries.retain(|_, c| c.exp > now_secs);
            if entries.len() >= MAX_VERIFIED {
                entries.clear();
            }
        }
        entries.insert(Self::key(token), claims.clone());
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.lock().unwrap().len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: u64) -> Claims {
        Claims {
            iss: "slipway".into(),
            sub: "ada".into(),
            aud: "slipway".into(),
            exp,
            nbf: 100,
            iat: 100,
            jti: "j".into(),
            access: Vec::new(),
            tid: None,
        }
    }

    #[test]
    fn kept_until_expiry_and_bounded() {
        let cache = VerifiedTokens::default();
        cache.insert("token-a", &claims(400), 100);
        assert_eq!(cache.get("token-a", 200, 30).map(|c| c.sub), Some("ada".into()));
        assert!(cache.get("token-a", 430, 30).is_none(), "expired, leeway included");
        assert!(cache.get("token-a", 10, 30).is_none(), "not valid yet");
        assert!(cache.get("token-b", 200, 30).is_none());
        for i in 0..MAX_VERIFIED + 5 {
            cache.insert(&format!("t{i}"), &claims(400), 100);
            assert!(cache.len() <= MAX_VERIFIED);
        }
        // Expired entries go first when it is full.
        let cache = VerifiedTokens::default();
        for i in 0..MAX_VERIFIED {
            cache.insert(&format!("old{i}"), &claims(150), 100);
        }
        cache.insert("fresh", &claims(400), 200);
        assert_eq!(cache.len(), 1);
        assert!(cache.get("fresh", 200, 30).is_some());
    }
}

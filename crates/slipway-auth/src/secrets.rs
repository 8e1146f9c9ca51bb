//! Passwords and access tokens: only hashes are stored.

use argon2::Argon2;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use rand::Rng;
use sha2::{Digest as _, Sha256};

/// Access tokens start with this, so they are recognisable in a password field and by
/// secret scanners.
pub const TOKEN_PREFIX: &str = "slw_";

/// argon2id with the crate's defaults (19 MiB, 2 passes), as OWASP recommends.
pub fn hash_password(password: &str) -> Result<String, crate::AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| crate::AuthError::Invalid(format!("cannot hash password: {e}")))
}

/// An argon2id hash (default parameters, like every stored one) of a password no account
/// has: checked against when a name has no password to check, so that unknown names take
/// as long as wrong passwords.
pub(crate) const DUMMY_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$SrsscIWXDBUk3OSXcQz2tA$GnRn82F/qT7rgUNQYDU8BEIjlD1P48/Fa2OGXJrbtjo";

pub fn verify_password(password: &str, stored: &str) -> bool {
    PasswordHash::new(stored).map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok()).unwrap_or(false)
}

/// A new random access token (shown once) and its stored hash. 32 random bytes make a
/// slow hash unnecessary: SHA-256 cannot be brute-forced back to them.
pub fn new_access_token() -> (String, String) {
    let bytes: [u8; 32] = rand::rng().random();
    let token = format!("{TOKEN_PREFIX}{}", hex::encode(bytes));
    let hash = token_hash(&token);
    (token, hash)
}

/// 32 random bytes in hex: email links, session ids, CSRF tokens.
pub fn random_secret() -> String {
    let bytes: [u8; 32] = rand::rng().random();
    hex::encode(bytes)
}

pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Constant-time comparison of two secrets.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && !b.is_empty() && a.bytes().zip(b.bytes()).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_round_trip_and_hashes_differ() {
        let a = hash_password("correct horse").unwrap();
        let b = hash_password("correct horse").unwrap();
        assert_ne!(a, b, "salted");
        assert!(a.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &a));
        assert!(!verify_password("wrong", &a));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    /// The dummy must cost a real check: a hash that failed to parse would return at
    /// once, and the timing would tell unknown names apart again.
    #[test]
    fn dummy_hash_costs_a_full_check() {
        let dummy = PasswordHash::new(DUMMY_HASH).expect("parses");
        let real = hash_password("anything").unwrap();
        let real = PasswordHash::new(&real).unwrap();
        assert_eq!(dummy.algorithm, real.algorithm);
        assert_eq!(dummy.params, real.params, "same cost as stored hashes");
        assert!(!verify_password("", DUMMY_HASH));
    }

    #[test]
    fn tokens_are_random_and_hashed() {
        let (t1, h1) = new_access_token();
        let (t2, _) = new_access_token();
        assert_ne!(t1, t2);
        assert!(t1.starts_with(TOKEN_PREFIX));
        assert_eq!(token_hash(&t1), h1);
        assert!(!h1.contains(&t1[TOKEN_PREFIX.len()..]));
    }
}

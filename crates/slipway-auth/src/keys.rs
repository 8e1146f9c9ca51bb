//! The ES256 keys that sign registry tokens. Generated on first start, kept 0600 in the
//! key directory; rotation keeps the previous key for verification so tokens issued just
//! before a rotation stay valid until they expire.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest as _, Sha256};

use crate::AuthError;

const CURRENT: &str = "signing-current.p8";
const PREVIOUS: &str = "signing-previous.p8";

struct PublicKey {
    kid: String,
    x: String,
    y: String,
    decoding: DecodingKey,
}

pub struct KeyRing {
    kid: String,
    encoding: EncodingKey,
    public: Vec<PublicKey>,
}

fn keys_error(e: impl std::fmt::Display) -> AuthError {
    AuthError::Keys(e.to_string())
}

impl KeyRing {
    /// Loads the keys in `dir`, generating the signing key if there is none.
    pub fn load_or_create(dir: &Path) -> Result<KeyRing, AuthError> {
        std::fs::create_dir_all(dir).map_err(keys_error)?;
        if !dir.join(CURRENT).exists() {
            write_private(&dir.join(CURRENT), &generate()?)?;
        }
        Self::load(dir)
    }

    /// Makes a new signing key; the old one stays for verification only.
    pub fn rotate(dir: &Path) -> Result<KeyRing, AuthError> {
        let current = dir.join(CURRENT);
        if current.exists() {
            std::fs::rename(&current, dir.join(PREVIOUS)).map_err(keys_error)?;
        }
        write_private(&current, &generate()?)?;
        Self::load(dir)
    }

    fn load(dir: &Path) -> Result<KeyRing, AuthError> {
        let current = std::fs::read(dir.join(CURRENT)).map_err(keys_error)?;
        let mut public = vec![public_key(&current)?];
        if let Ok(previous) = std::fs::read(dir.join(PREVIOUS)) {
            public.push(public_key(&previous)?);
        }
        Ok(KeyRing { kid: public[0].kid.clone(), encoding: EncodingKey::from_ec_der(&current), public })
    }

    pub fn signing_kid(&self) -> &str {
        &self.kid
    }

    /// The public keys as a JWKS document.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<_> = self
            .public
            .iter()
            .map(|k| serde_json::json!({"kty": "EC", "crv": "P-256", "alg": "ES256", "use": "sig", "kid": k.kid, "x": k.x, "y": k.y}))
            .collect();
        serde_json::json!({ "keys": keys })
    }

    pub fn sign<T: Serialize>(&self, claims: &T) -> Result<String, AuthError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".to_owned());
        // Signing fails only on the server's own key, never on what a caller sent.
        jsonwebtoken::encode(&header, claims, &self.encoding).map_err(|e| AuthError::Keys(format!("signing a token: {e}")))
    }

    /// Verifies signature (ES256 only, by `kid`), expiry and not-before at `now_secs` (the
    /// service's Clock, so a moved test clock moves token lifetimes too), issuer and
    /// audience.
    pub fn verify<T: DeserializeOwned>(&self, token: &str, issuer: &str, audience: &str, now_secs: u64) -> Result<T, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| AuthError::Token(e.to_string()))?;
        if header.alg != Algorithm::ES256 {
            return Err(AuthError::Token(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let kid = header.kid.ok_or_else(|| AuthError::Token("no kid".into()))?;
        let key = self.public.iter().find(|k| k.kid == kid).ok_or_else(|| AuthError::Token(format!("unknown kid {kid}")))?;
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        // The library would compare times with the system clock: checked below instead.
        validation.validate_exp = false;
        validation.validate_nbf = false;
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud"]);
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key.decoding, &validation)
            .map(|data| data.claims)
            .map_err(|e| AuthError::Token(e.to_string()))?;
        let time =
            |name: &str| claims.get(name).and_then(serde_json::Value::as_u64).ok_or_else(|| AuthError::Token(format!("no numeric {name}")));
        if time("exp")? + LEEWAY_SECS <= now_secs {
            return Err(AuthError::Token("the token has expired".into()));
        }
        if time("nbf")? > now_secs + LEEWAY_SECS {
            return Err(AuthError::Token("the token is not valid yet".into()));
        }
        serde_json::from_value(claims).map_err(|e| AuthError::Token(e.to_string()))
    }
}

/// Clock skew allowed between replicas when checking a token's times.
pub(crate) const LEEWAY_SECS: u64 = 30;

fn generate() -> Result<Vec<u8>, AuthError> {
    let document = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &SystemRandom::new()).map_err(keys_error)?;
    Ok(document.as_ref().to_vec())
}

fn public_key(pkcs8: &[u8]) -> Result<PublicKey, AuthError> {
    let pair = EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8).map_err(keys_error)?;
    // An uncompressed SEC1 point: 0x04, then 32 bytes of x and 32 of y.
    let point = pair.public_key().as_ref();
    if point.len() != 65 || point[0] != 4 {
        return Err(AuthError::Keys("unexpected public key encoding".into()));
    }
    let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
    let y = URL_SAFE_NO_PAD.encode(&point[33..]);
    // RFC 7638 thumbprint: SHA-256 of the required members in lexical order.
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    let kid = URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()));
    let decoding = DecodingKey::from_ec_components(&x, &y).map_err(keys_error)?;
    Ok(PublicKey { kid, x, y, decoding })
}

/// Written whole, owner-only, then renamed into place: never a partial or readable key.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), AuthError> {
    let tmp: PathBuf = path.with_extension("tmp");
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp).map_err(keys_error)?;
    file.write_all(bytes).map_err(keys_error)?;
    file.sync_all().map_err(keys_error)?;
    std::fs::rename(&tmp, path).map_err(keys_error)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[derive(Serialize, serde::Deserialize, PartialEq, Debug)]
    struct C {
        iss: String,
        aud: String,
        exp: u64,
        nbf: u64,
        sub: String,
    }

    fn now() -> u64 {
        slipway_types::Clock::system().now_secs()
    }

    fn claims(offset_exp: i64) -> C {
        let now = now();
        C { iss: "iss".into(), aud: "svc".into(), exp: (now as i64 + offset_exp) as u64, nbf: now - 1, sub: "alice".into() }
    }

    #[test]
    fn keys_are_private_signed_tokens_verify_and_rotation_keeps_old_ones() {
        let dir = tempfile::tempdir().unwrap();
        let ring = KeyRing::load_or_create(dir.path()).unwrap();
        let mode = std::fs::metadata(dir.path().join(CURRENT)).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let token = ring.sign(&claims(300)).unwrap();
        assert_eq!(ring.verify::<C>(&token, "iss", "svc", now()).unwrap(), claims(300));
        assert!(ring.verify::<C>(&token, "iss", "other", now()).is_err(), "wrong audience");
        assert!(ring.verify::<C>(&ring.sign(&claims(-120)).unwrap(), "iss", "svc", now()).is_err(), "expired");
        // Times are the caller's clock's, not the system's: a token issued on a test clock
        // a month ahead is valid then, not yet valid now, and expired two months on.
        let month = 31 * 86_400;
        let ahead = C { nbf: now() + month, exp: now() + month + 300, ..claims(0) };
        let signed = ring.sign(&ahead).unwrap();
        assert!(ring.verify::<C>(&signed, "iss", "svc", now() + month).is_ok());
        assert!(ring.verify::<C>(&signed, "iss", "svc", now()).is_err(), "not valid yet");
        assert!(ring.verify::<C>(&signed, "iss", "svc", now() + 2 * month).is_err(), "expired");

        let again = KeyRing::load_or_create(dir.path()).unwrap();
        assert_eq!(again.signing_kid(), ring.signing_kid(), "the key persists");
        let rotated = KeyRing::rotate(dir.path()).unwrap();
        assert_ne!(rotated.signing_kid(), ring.signing_kid());
        assert!(rotated.verify::<C>(&token, "iss", "svc", now()).is_ok(), "old tokens still verify");
        assert_eq!(rotated.jwks()["keys"].as_array().unwrap().len(), 2);

        let stranger = tempfile::tempdir().unwrap();
        let other = KeyRing::load_or_create(stranger.path()).unwrap();
        assert!(ring.verify::<C>(&other.sign(&claims(300)).unwrap(), "iss", "svc", now()).is_err(), "unknown kid");
    }
}

#![doc = include_str!("../README.md")]

pub mod access;
mod client_addr;
mod directory;
mod keys;
pub mod mail;
pub mod scope;
mod secrets;
mod service;
mod sign_in;
mod throttle;
mod token_http;
pub use client_addr::{ClientAddr, ForwardedHeader, TrustedProxies, address_group, client_ip, record_client_addr};
pub use service::{ApiToken, AuthService, AuthSettings, Authenticated, Claims, Credentials, ResourceActions, TokenResponse};
pub use throttle::SignInSettings;
pub use token_http::{basic_credentials, router};

pub use directory::check_email;
pub use keys::KeyRing;
pub use secrets::{TOKEN_PREFIX, hash_password, new_access_token, random_secret, token_hash, verify_password};

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("bad credentials")]
    BadCredentials,
    #[error("{0}")]
    Invalid(String),
    #[error("token rejected: {0}")]
    Token(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    #[error(transparent)]
    Db(#[from] slipway_db::DbError),
    /// Too many failed sign-ins for this name from this address (or from this address):
    /// the next attempt must wait this many seconds.
    #[error("too many failed sign-ins: try again in {0} seconds")]
    Throttled(u64),
    /// Every password-hashing permit stayed taken while the request waited.
    #[error("the server is busy checking passwords: try again in a moment")]
    Busy,
    #[error("email address not verified: follow the link sent to it")]
    Unverified,
    #[error("key storage: {0}")]
    Keys(String),
}

impl AuthError {
    /// Seconds the caller should wait before trying again (`Retry-After`), for refusals
    /// that are about timing rather than the request.
    pub fn retry_after(&self) -> Option<u64> {
        match self {
            AuthError::Throttled(secs) => Some(*secs),
            AuthError::Busy => Some(1),
            _ => None,
        }
    }
}

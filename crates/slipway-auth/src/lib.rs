#![doc = include_str!("../README.md")]

pub mod access;
mod directory;
mod keys;
pub mod mail;
pub mod scope;
mod secrets;
mod service;
mod sign_in;
mod token_http;
pub use token_http::{basic_credentials, client_ip, router};
pub use service::{AuthService, AuthSettings, Authenticated, Claims, Credentials, ResourceActions, TokenResponse};

pub use keys::KeyRing;
pub use directory::check_email;
pub use secrets::{hash_password, new_access_token, random_secret, token_hash, verify_password, TOKEN_PREFIX};



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
    #[error("too many failed sign-ins; try again in 15 minutes")]
    Throttled,
    #[error("email address not verified: follow the link sent to it")]
    Unverified,
    #[error("key storage: {0}")]
    Keys(String),
}

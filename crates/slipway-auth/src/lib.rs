#![doc = include_str!("../README.md")]

pub mod access;
mod client_addr;
mod directory;
mod keys;
pub mod mail;
mod robots;
pub mod scope;
mod secrets;
mod service;
mod settings;
mod sign_in;
mod sso;
mod throttle;
mod two_factor;
mod verified;
pub use client_addr::{ClientAddr, ForwardedHeader, TrustedProxies, address_group, client_ip};
pub use robots::Robot;
pub use service::{
    ApiToken, AuthService, AuthSettings, Authenticated, Claims, Credentials, ResourceActions, SignUpVerification, TokenResponse,
};
pub use slipway_db::TwoFactorRule;
pub use sso::{SsoAnswer, SsoProvider, SsoRedirect};
pub use throttle::SignInSettings;
pub use two_factor::{Challenge, Enrolment, OpenedSession, SignInStep, TwoFactorStatus};

pub use directory::check_email;
pub use keys::KeyRing;
pub use mail::MailTransport;
pub use secrets::{TOKEN_PREFIX, hash_password, new_access_token, random_secret, same_secret, token_hash, verify_password};
pub use settings::SessionInfo;
pub use sign_in::{EmailVerifiedHook, SignedUp};
/// The account record callers receive from the service (the web crate names it from here,
/// never from the database crate).
pub use slipway_db::{AccessTokenRecord, AccountRecord};

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
    /// A name already in use: the same refusal as the database's unique constraint gives
    /// when two sign-ups race for it.
    #[error("{0}")]
    Conflict(String),
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
    /// A registry client gave the password of an account with two-factor sign-in: it
    /// cannot answer for a second factor, so it must use an access token.
    #[error("two-factor sign-in is on for this account: use an access token as the password (create one under Settings, Access tokens)")]
    TokenRequired,
    /// A right password of an account with two-factor sign-in, without a code.
    #[error("two-factor sign-in is on for this account: send the authenticator's code (or a recovery code) as otp")]
    CodeRequired,
    /// A password sign-in of an account that must use single sign-on.
    #[error("this account signs in with {0}: use it, and an access token for docker login and other tools")]
    SsoOnly(String),
}

impl AuthError {
    /// What kind of failure this is at every surface.
    pub fn kind(&self) -> slipway_types::ErrorKind {
        use slipway_types::ErrorKind;
        match self {
            // A token that does not verify is a credential that does not hold; an email
            // address not yet verified cannot sign in either.
            AuthError::BadCredentials
            | AuthError::Token(_)
            | AuthError::Unverified
            | AuthError::TokenRequired
            | AuthError::CodeRequired
            | AuthError::SsoOnly(_) => ErrorKind::Unauthenticated,
            AuthError::Invalid(_) => ErrorKind::Invalid,
            AuthError::NotFound(_) => ErrorKind::NotFound,
            AuthError::Forbidden(_) => ErrorKind::Forbidden,
            AuthError::Conflict(_) => ErrorKind::Conflict,
            AuthError::Db(e) => e.kind(),
            AuthError::Throttled(_) => ErrorKind::Throttled,
            AuthError::Busy => ErrorKind::Unavailable,
            AuthError::Keys(_) => ErrorKind::Internal,
        }
    }

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

#[cfg(test)]
mod kind_tests {
    use super::AuthError;
    use slipway_db::DbError;
    use slipway_types::ErrorKind;

    #[test]
    fn every_error_has_the_kind_its_surfaces_answer() {
        let cases = [
            (AuthError::BadCredentials, ErrorKind::Unauthenticated),
            (AuthError::Invalid("name".into()), ErrorKind::Invalid),
            (AuthError::Token("expired".into()), ErrorKind::Unauthenticated),
            (AuthError::NotFound("no org".into()), ErrorKind::NotFound),
            (AuthError::Forbidden("not a member".into()), ErrorKind::Forbidden),
            (AuthError::Conflict("the name \"acme\" is taken".into()), ErrorKind::Conflict),
            (AuthError::Db(DbError::Conflict("taken".into())), ErrorKind::Conflict),
            (AuthError::Db(DbError::BadText("nul".into())), ErrorKind::Invalid),
            (AuthError::Db(DbError::Storage("disk".into())), ErrorKind::Internal),
            (AuthError::Throttled(30), ErrorKind::Throttled),
            (AuthError::Busy, ErrorKind::Unavailable),
            (AuthError::Unverified, ErrorKind::Unauthenticated),
            (AuthError::Keys("unreadable".into()), ErrorKind::Internal),
            (AuthError::TokenRequired, ErrorKind::Unauthenticated),
            (AuthError::CodeRequired, ErrorKind::Unauthenticated),
            (AuthError::SsoOnly("Corp".into()), ErrorKind::Unauthenticated),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error:?}");
        }
    }
}

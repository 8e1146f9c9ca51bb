#![doc = include_str!("../README.md")]

mod cache;
mod index;
pub mod media;
pub mod model;
mod moderation;
mod pricing;
mod release;
pub mod search;
mod service;
pub mod text;
mod typeahead;
mod versions;
pub mod vulnerability_policy;

pub use model::*;
pub use moderation::MoveOption;
pub use search::SearchParams;
pub use service::{Actor, Catalog, PUBLISHER_AGREEMENT, PUBLISHER_AGREEMENT_VERSION, Product, ReviewState, SearchPage, Viewer, media_url};

#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// Input that breaks a rule; the message says which and how.
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Forbidden(String),
    /// A paid tier asked for without going through checkout.
    #[error("{0}")]
    PaymentRequired(String),
    /// A move the listing's status does not allow, or one a concurrent change overtook.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Db(#[from] slipway_db::DbError),
    #[error(transparent)]
    Auth(#[from] slipway_auth::AuthError),
    #[error("{0}")]
    Internal(String),
}

impl CatalogError {
    /// What kind of failure this is at every surface.
    pub fn kind(&self) -> slipway_types::ErrorKind {
        use slipway_types::ErrorKind;
        match self {
            CatalogError::Invalid(_) => ErrorKind::Invalid,
            CatalogError::NotFound(_) => ErrorKind::NotFound,
            CatalogError::Forbidden(_) => ErrorKind::Forbidden,
            CatalogError::PaymentRequired(_) => ErrorKind::PaymentRequired,
            CatalogError::Conflict(_) => ErrorKind::Conflict,
            CatalogError::Db(e) => e.kind(),
            CatalogError::Auth(e) => e.kind(),
            CatalogError::Internal(_) => ErrorKind::Internal,
        }
    }
}

#[cfg(test)]
mod kind_tests {
    use super::CatalogError;
    use slipway_auth::AuthError;
    use slipway_db::DbError;
    use slipway_types::ErrorKind;

    #[test]
    fn every_error_has_the_kind_its_surfaces_answer() {
        let cases = [
            (CatalogError::Invalid("slug".into()), ErrorKind::Invalid),
            (CatalogError::NotFound("no listing".into()), ErrorKind::NotFound),
            (CatalogError::Forbidden("not yours".into()), ErrorKind::Forbidden),
            (CatalogError::PaymentRequired("paid tier".into()), ErrorKind::PaymentRequired),
            (CatalogError::Conflict("not a draft".into()), ErrorKind::Conflict),
            (CatalogError::Db(DbError::Conflict("slug taken".into())), ErrorKind::Conflict),
            (CatalogError::Db(DbError::Storage("disk".into())), ErrorKind::Internal),
            (CatalogError::Auth(AuthError::Forbidden("not a member".into())), ErrorKind::Forbidden),
            (CatalogError::Internal("index".into()), ErrorKind::Internal),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error:?}");
        }
    }
}

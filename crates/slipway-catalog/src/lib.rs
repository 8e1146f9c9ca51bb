#![doc = include_str!("../README.md")]

mod cache;
mod index;
pub mod media;
pub mod model;
pub mod search;
mod service;
pub mod text;
mod typeahead;
mod versions;

pub use model::*;
pub use search::SearchParams;
pub use service::{Actor, Catalog, Product, SearchPage, Viewer, media_url};

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
    #[error(transparent)]
    Db(#[from] slipway_db::DbError),
    #[error(transparent)]
    Auth(#[from] slipway_auth::AuthError),
    #[error("{0}")]
    Internal(String),
}

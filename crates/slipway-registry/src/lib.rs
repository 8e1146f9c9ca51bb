#![doc = include_str!("../README.md")]

mod error;
mod fsck;
mod gc;
mod guard;
mod kept;
mod path;
mod rate_limit;
mod routes;
mod service;
mod token_http;

pub use error::RegistryError;
pub use fsck::VerifyReport;
pub use gc::{GcReport, GcSettings};
pub use rate_limit::RateLimitSettings;
pub use routes::{RouteLabel, router};
pub use service::{Chunk, PushHook, Registry, RegistrySettings};
pub use token_http::token_router;
// The parsers of request paths and headers, for the fuzz targets (fuzz/).
#[doc(hidden)]
pub use path::Route;
#[doc(hidden)]
pub use routes::{parse_content_range, parse_range};

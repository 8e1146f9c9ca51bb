#![doc = include_str!("../README.md")]

mod error;
mod fsck;
mod gc;
mod guard;
mod path;
mod routes;
mod service;

pub use error::RegistryError;
pub use fsck::VerifyReport;
pub use gc::{GcReport, GcSettings};
pub use routes::{router, RouteLabel};
pub use service::{Registry, RegistrySettings};

#![doc = include_str!("../README.md")]

mod error;
pub mod version;

pub use error::ScanError;

#![doc = include_str!("../README.md")]

pub mod analyzer;
mod error;
pub mod version;

pub use error::ScanError;

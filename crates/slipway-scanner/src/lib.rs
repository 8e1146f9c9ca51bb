#![doc = include_str!("../README.md")]

pub mod analyzer;
pub mod cvss;
mod error;
pub mod matcher;
pub mod osv;
pub mod version;

pub use error::ScanError;

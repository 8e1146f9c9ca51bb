#![doc = include_str!("../README.md")]

pub mod analyzer;
pub mod cvss;
mod error;
#[cfg(feature = "fixtures")]
pub mod fixtures;
pub mod image;
pub mod matcher;
pub mod osv;
pub mod report;
pub mod scan;
pub mod version;

pub use error::ScanError;

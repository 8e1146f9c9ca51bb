#![doc = include_str!("../README.md")]

mod clock;
mod csv;
mod error;
mod money;
mod names;
mod units;

pub use clock::{Clock, ClockError, ClockKind};
pub use csv::csv_line;
pub use error::ErrorKind;
pub use money::{Currency, Money, MoneyError};
pub use names::entitlement_id;
pub use units::human_bytes;

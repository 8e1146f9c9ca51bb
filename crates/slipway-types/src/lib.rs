#![doc = include_str!("../README.md")]

mod clock;
mod error;
mod money;
mod names;

pub use clock::{Clock, ClockError, ClockKind};
pub use error::ErrorKind;
pub use money::{Currency, Money, MoneyError};
pub use names::entitlement_id;

//! The one source of the current time.
//!
//! Domain code asks a [`Clock`] for the time and never the operating system, so that tests
//! (and an operator rehearsing renewals and deadlines on a test clock, as with Stripe's
//! test clocks) can move time forward and see every expiry, schedule and delayed job
//! follow.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Where the time comes from. Cheap to clone; every clone sees the same time, and moving
/// one moves them all.
#[derive(Clone, Debug)]
pub struct Clock {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    kind: ClockKind,
    /// Test clock: milliseconds added to the system time. Manual clock: the time itself.
    ms: AtomicI64,
}

/// How a [`Clock`] tells the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockKind {
    /// The operating system's time: what production runs on.
    System,
    /// The system time plus an offset that only moves forward: `[testing] clock = true`.
    /// The offset is kept in the database, so that every replica sees the same time.
    Test,
    /// A time that stands still until moved: unit tests.
    Manual,
}

impl Clock {
    /// The operating system's time.
    pub fn system() -> Clock {
        Clock::with(ClockKind::System, 0)
    }

    /// A test clock: the system time moved forward by `offset`.
    pub fn test(offset: Duration) -> Clock {
        Clock::with(ClockKind::Test, duration_ms(offset))
    }

    /// A clock that stands at `unix_ms` until moved.
    pub fn manual(unix_ms: i64) -> Clock {
        Clock::with(ClockKind::Manual, unix_ms)
    }

    fn with(kind: ClockKind, ms: i64) -> Clock {
        Clock { inner: Arc::new(Inner { kind, ms: AtomicI64::new(ms) }) }
    }

    pub fn kind(&self) -> ClockKind {
        self.inner.kind
    }

    /// Milliseconds since the Unix epoch.
    pub fn now_ms(&self) -> i64 {
        match self.inner.kind {
            ClockKind::System => system_ms(),
            ClockKind::Test => system_ms().saturating_add(self.inner.ms.load(Ordering::Relaxed)),
            ClockKind::Manual => self.inner.ms.load(Ordering::Relaxed),
        }
    }

    /// Whole seconds since the Unix epoch (never negative).
    pub fn now_secs(&self) -> u64 {
        u64::try_from(self.now_ms() / 1000).unwrap_or_default()
    }

    pub fn now(&self) -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(u64::try_from(self.now_ms()).unwrap_or_default())
    }

    /// How far a test clock runs ahead of the system time (zero for the others).
    pub fn offset(&self) -> Duration {
        match self.inner.kind {
            ClockKind::Test => Duration::from_millis(u64::try_from(self.inner.ms.load(Ordering::Relaxed)).unwrap_or_default()),
            ClockKind::System | ClockKind::Manual => Duration::ZERO,
        }
    }

    /// Moves a test or manual clock forward by `by`.
    pub fn advance(&self, by: Duration) -> Result<(), ClockError> {
        match self.inner.kind {
            ClockKind::System => Err(ClockError::NotMovable),
            ClockKind::Test | ClockKind::Manual => {
                self.inner.ms.fetch_add(duration_ms(by), Ordering::Relaxed);
                Ok(())
            }
        }
    }

    /// Sets a test clock's offset to what another replica recorded. The offset only moves
    /// forward: an older reading never turns the clock back.
    pub fn observe_offset(&self, offset: Duration) -> Result<(), ClockError> {
        match self.inner.kind {
            ClockKind::Test => {
                self.inner.ms.fetch_max(duration_ms(offset), Ordering::Relaxed);
                Ok(())
            }
            ClockKind::System | ClockKind::Manual => Err(ClockError::NotMovable),
        }
    }
}

/// A request the clock cannot honour.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClockError {
    #[error("the system clock cannot be moved: enable the test clock with `[testing] clock = true`")]
    NotMovable,
}

// The one reading of the wall clock in the workspace (clippy.toml disallows it elsewhere).
#[allow(clippy::disallowed_methods)]
fn system_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(duration_ms).unwrap_or_default()
}

fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DAY: Duration = Duration::from_secs(86_400);

    #[test]
    fn the_system_clock_follows_the_system_and_cannot_be_moved() {
        let clock = Clock::system();
        let before = system_ms();
        let read = clock.now_ms();
        assert!(read >= before && read <= system_ms(), "{read} outside [{before}, now]");
        assert_eq!(clock.advance(DAY), Err(ClockError::NotMovable));
        assert_eq!(clock.observe_offset(DAY), Err(ClockError::NotMovable));
        assert_eq!(clock.offset(), Duration::ZERO);
    }

    #[test]
    fn a_test_clock_runs_ahead_by_its_offset_and_clones_move_together() {
        let clock = Clock::test(Duration::ZERO);
        let replica_view = clock.clone();
        clock.advance(DAY).unwrap();
        let ahead = replica_view.now_ms() - system_ms();
        assert!((86_399_000..=86_400_000).contains(&ahead), "ahead by {ahead} ms");
        assert_eq!(replica_view.offset(), DAY);
    }

    #[test]
    fn an_older_offset_never_turns_a_test_clock_back() {
        let clock = Clock::test(DAY * 2);
        clock.observe_offset(DAY).unwrap();
        assert_eq!(clock.offset(), DAY * 2);
        clock.observe_offset(DAY * 3).unwrap();
        assert_eq!(clock.offset(), DAY * 3);
    }

    #[test]
    fn a_manual_clock_stands_still_until_moved() {
        let clock = Clock::manual(1_000);
        assert_eq!(clock.now_ms(), 1_000);
        assert_eq!(clock.now_secs(), 1);
        clock.advance(Duration::from_millis(1_500)).unwrap();
        assert_eq!(clock.now_ms(), 2_500);
        assert_eq!(clock.now(), UNIX_EPOCH + Duration::from_millis(2_500));
        assert_eq!(Clock::manual(-5).now_secs(), 0, "times before the epoch read as zero");
    }
}

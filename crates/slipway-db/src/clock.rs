//! The test clock's offset, stored so that every replica (and `slipway admin clock`, a
//! process of its own) reads the same time.

use std::time::Duration;

use slipway_types::ClockKind;
use sqlx::Any;

use crate::{DbError, JobsDb};

/// The jobs domain owns the test clock: the scheduler and the job queue are what it moves.
impl JobsDb {
    /// How far the stored test clock runs ahead of the system time.
    pub async fn test_clock_offset(&self) -> Result<Duration, DbError> {
        let ms = sqlx::query_scalar::<Any, i64>("SELECT offset_ms FROM test_clock WHERE id = 1").fetch_one(&self.read).await?;
        Ok(Duration::from_millis(u64::try_from(ms).unwrap_or_default()))
    }

    /// Moves the stored test clock forward by `by` and this handle's clock with it;
    /// returns the new offset. Advances from several processes at once all count: the
    /// offset is added to in the database, never overwritten.
    pub async fn advance_test_clock(&self, by: Duration) -> Result<Duration, DbError> {
        let by = i64::try_from(by.as_millis()).map_err(|_| DbError::Conflict("the test clock cannot move that far".into()))?;
        let ms = sqlx::query_scalar::<Any, i64>("UPDATE test_clock SET offset_ms = offset_ms + $1 WHERE id = 1 RETURNING offset_ms")
            .bind(by)
            .fetch_one(&self.write)
            .await?;
        let offset = Duration::from_millis(u64::try_from(ms).unwrap_or_default());
        if self.clock.kind() == ClockKind::Test {
            // Only fails for the other kinds, excluded above.
            let _ = self.clock.observe_offset(offset);
        }
        Ok(offset)
    }

    /// Brings a test clock up to the stored offset (another replica, or `slipway admin
    /// clock advance`, may have moved it); one single-row read. Other clocks are left
    /// alone, without a query.
    pub async fn sync_test_clock(&self) -> Result<(), DbError> {
        if self.clock.kind() == ClockKind::Test {
            let offset = self.test_clock_offset().await?;
            let _ = self.clock.observe_offset(offset);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use slipway_types::Clock;

    use crate::test_databases;

    const DAY: Duration = Duration::from_secs(86_400);

    #[tokio::test]
    async fn replicas_see_the_stored_offset_and_it_only_grows() {
        for (db, _dir) in test_databases().await {
            assert_eq!(db.jobs().test_clock_offset().await.unwrap(), Duration::ZERO);
            let a = db.clone().with_clock(Clock::test(Duration::ZERO)).jobs();
            let b = db.clone().with_clock(Clock::test(Duration::ZERO)).jobs();
            let db = db.jobs();
            assert_eq!(a.advance_test_clock(DAY).await.unwrap(), DAY);
            assert_eq!(a.clock().offset(), DAY, "the advancing replica moves at once");
            assert_eq!(b.clock().offset(), Duration::ZERO, "the other one until it syncs");
            b.sync_test_clock().await.unwrap();
            assert_eq!(b.clock().offset(), DAY);
            // Advances add up, whoever makes them.
            assert_eq!(b.advance_test_clock(DAY).await.unwrap(), DAY * 2);
            a.sync_test_clock().await.unwrap();
            assert_eq!(a.clock().offset(), DAY * 2);
            // A system clock is not touched by a sync, and reads no offset.
            db.sync_test_clock().await.unwrap();
            assert_eq!(db.clock().offset(), Duration::ZERO);
        }
    }
}

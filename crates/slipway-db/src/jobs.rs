//! Queries behind the background job queue.
//!
//! A worker claims a job in two steps that work alike on both databases and across
//! replicas: it reads the ids of due, unleased jobs, then takes each with a
//! compare-and-set `UPDATE ... WHERE locked_until <= now` that only one claimant can win.
//! Every later step names the claim's token, so a worker whose lease ran out (and whose
//! job another worker took over) cannot complete, retry or release it.

use sqlx::Any;

use crate::{DbError, JobsDb};

/// A job to enqueue.
#[derive(Clone, Debug)]
pub struct NewJob<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    /// Jobs of one kind with the same key are enqueued once: while one waits or runs, a
    /// second enqueue returns its id. A job that failed for good is revived instead.
    pub dedup_key: Option<&'a str>,
    /// The job's parameters as JSON.
    pub payload: &'a str,
    pub run_at: i64,
    pub max_attempts: i64,
}

/// A job this worker now holds the lease of.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ClaimedJob {
    pub id: String,
    pub kind: String,
    pub payload: String,
    /// Attempts so far, this one included.
    pub attempts: i64,
    pub max_attempts: i64,
}

/// A queued job as stored.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct JobRecord {
    pub id: String,
    pub kind: String,
    pub dedup_key: Option<String>,
    pub payload: String,
    pub run_at: i64,
    pub attempts: i64,
    pub max_attempts: i64,
    pub locked_until: i64,
    pub last_error: Option<String>,
    /// Set when the job ran out of attempts.
    pub failed_at: Option<i64>,
    pub created_at: i64,
}

/// Jobs of one kind: waiting or running, of those the running ones, and failed for good.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct JobCounts {
    pub kind: String,
    pub pending: i64,
    pub running: i64,
    pub failed: i64,
    /// When the longest-waiting job that is due and not running became due: how far
    /// behind the workers are.
    pub oldest_due_at: Option<i64>,
}

/// A periodic task as stored: when it runs next, and how its latest run went.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct ScheduleRecord {
    pub name: String,
    /// `cluster` (once per interval across replicas) or `replica` (in every replica).
    pub scope: String,
    pub interval_ms: i64,
    pub next_run_at: i64,
    pub last_started_at: Option<i64>,
    pub last_finished_at: Option<i64>,
    pub last_duration_ms: Option<i64>,
    /// `done` or `failed`.
    pub last_outcome: Option<String>,
    pub last_error: Option<String>,
    /// Runs finished so far.
    pub runs: i64,
}

impl JobsDb {
    /// Enqueues a job, or finds the one already enqueued under its key; returns its id.
    pub async fn enqueue_job(&self, job: &NewJob<'_>) -> Result<String, DbError> {
        // The key's job can finish, and be deleted, between the insert that finds it and
        // the read of its id: the insert then adds the job anew on the next try. Each
        // retry means a job under the key finished meanwhile, so a few are plenty.
        const TRIES: usize = 5;
        for _ in 0..TRIES {
            let id = sqlx::query_scalar::<Any, String>(
                "INSERT INTO jobs (id, kind, dedup_key, payload, run_at, attempts, max_attempts, locked_until, created_at)
                 VALUES ($1, $2, $3, $4, $5, 0, $6, 0, $7)
                 ON CONFLICT (kind, dedup_key) DO UPDATE SET payload = excluded.payload, run_at = excluded.run_at,
                   attempts = 0, max_attempts = excluded.max_attempts, last_error = NULL, failed_at = NULL
                 WHERE jobs.failed_at IS NOT NULL
                 RETURNING id",
            )
            .bind(job.id)
            .bind(job.kind)
            .bind(job.dedup_key)
            .bind(job.payload)
            .bind(job.run_at)
            .bind(job.max_attempts)
            .bind(self.clock.now_ms())
            .fetch_optional(&self.write)
            .await?;
            if let Some(id) = id {
                return Ok(id);
            }
            // The key's job is waiting or running.
            let waiting = sqlx::query_scalar::<Any, String>("SELECT id FROM jobs WHERE kind = $1 AND dedup_key = $2")
                .bind(job.kind)
                .bind(job.dedup_key)
                .fetch_optional(&self.write)
                .await?;
            if let Some(id) = waiting {
                return Ok(id);
            }
        }
        Err(DbError::Conflict(format!("job {} {:?} kept finishing while it was enqueued", job.kind, job.dedup_key)))
    }

    /// Takes the leases of up to `limit` due jobs until `lease_until`, under `token`.
    pub async fn claim_jobs(&self, token: &str, lease_until: i64, limit: i64) -> Result<Vec<ClaimedJob>, DbError> {
        let now = self.clock.now_ms();
        let due = sqlx::query_scalar::<Any, String>(
            "SELECT id FROM jobs WHERE failed_at IS NULL AND run_at <= $1 AND locked_until <= $1 ORDER BY run_at, id LIMIT $2",
        )
        .bind(now)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for id in due {
            // Another worker may have taken it since the read: then this matches nothing.
            let job = sqlx::query_as::<Any, ClaimedJob>(
                "UPDATE jobs SET locked_until = $1, lock_token = $2, attempts = attempts + 1
                 WHERE id = $3 AND failed_at IS NULL AND locked_until <= $4
                 RETURNING id, kind, payload, attempts, max_attempts",
            )
            .bind(lease_until)
            .bind(token)
            .bind(&id)
            .bind(now)
            .fetch_optional(&self.write)
            .await?;
            claimed.extend(job);
        }
        Ok(claimed)
    }

    /// Moves a held lease's end; false if the lease was lost.
    pub async fn extend_job_lease(&self, id: &str, token: &str, lease_until: i64) -> Result<bool, DbError> {
        let n = sqlx::query("UPDATE jobs SET locked_until = $1 WHERE id = $2 AND lock_token = $3")
            .bind(lease_until)
            .bind(id)
            .bind(token)
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Removes a job that ran to completion.
    pub async fn complete_job(&self, id: &str, token: &str) -> Result<bool, DbError> {
        let n = sqlx::query("DELETE FROM jobs WHERE id = $1 AND lock_token = $2")
            .bind(id)
            .bind(token)
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(n > 0)
    }

    /// Records a failed attempt: the job runs again at `retry_at`, or, with `None`, has
    /// failed for good.
    pub async fn fail_job(&self, id: &str, token: &str, error: &str, retry_at: Option<i64>) -> Result<bool, DbError> {
        let query = match retry_at {
            Some(at) => sqlx::query(
                "UPDATE jobs SET run_at = $1, last_error = $2, locked_until = 0, lock_token = NULL WHERE id = $3 AND lock_token = $4",
            )
            .bind(at),
            None => sqlx::query(
                "UPDATE jobs SET failed_at = $1, last_error = $2, locked_until = 0, lock_token = NULL WHERE id = $3 AND lock_token = $4",
            )
            .bind(self.clock.now_ms()),
        };
        let n = query.bind(error).bind(id).bind(token).execute(&self.write).await?.rows_affected();
        Ok(n > 0)
    }

    /// Gives a job back unfinished (the worker is shutting down): due again at once,
    /// and the interrupted attempt does not count.
    pub async fn release_job(&self, id: &str, token: &str) -> Result<bool, DbError> {
        let n =
            sqlx::query("UPDATE jobs SET locked_until = 0, lock_token = NULL, attempts = attempts - 1 WHERE id = $1 AND lock_token = $2")
                .bind(id)
                .bind(token)
                .execute(&self.write)
                .await?
                .rows_affected();
        Ok(n > 0)
    }

    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, DbError> {
        Ok(sqlx::query_as::<Any, JobRecord>(
            "SELECT id, kind, dedup_key, payload, run_at, attempts, max_attempts, locked_until, last_error, failed_at, created_at
             FROM jobs WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// The job enqueued under a key, waiting, running or failed for good.
    pub async fn job_by_key(&self, kind: &str, dedup_key: &str) -> Result<Option<JobRecord>, DbError> {
        Ok(sqlx::query_as::<Any, JobRecord>(
            "SELECT id, kind, dedup_key, payload, run_at, attempts, max_attempts, locked_until, last_error, failed_at, created_at
             FROM jobs WHERE kind = $1 AND dedup_key = $2",
        )
        .bind(kind)
        .bind(dedup_key)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Per kind: how many jobs wait or run, how many of them run (hold a live lease), and
    /// how many failed for good.
    pub async fn job_counts(&self) -> Result<Vec<JobCounts>, DbError> {
        Ok(sqlx::query_as::<Any, JobCounts>(
            "SELECT kind, COUNT(CASE WHEN failed_at IS NULL THEN 1 END) AS pending,
                    COUNT(CASE WHEN failed_at IS NULL AND locked_until > $1 THEN 1 END) AS running,
                    COUNT(failed_at) AS failed,
                    MIN(CASE WHEN failed_at IS NULL AND locked_until <= $1 AND run_at <= $1 THEN run_at END) AS oldest_due_at
             FROM jobs GROUP BY kind ORDER BY kind",
        )
        .bind(self.clock.now_ms())
        .fetch_all(&self.read)
        .await?)
    }

    // ---- schedules ------------------------------------------------------------------------

    /// Stores a schedule, first due at `first_run_at`, or updates a stored one's scope and
    /// interval. A stored schedule keeps its next run unless one interval from now is
    /// sooner (a shortened interval applies at once): a replica starting neither delays a
    /// run nor adds one.
    pub async fn register_schedule(&self, name: &str, scope: &str, interval_ms: i64, first_run_at: i64) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO schedules (name, scope, interval_ms, next_run_at, runs) VALUES ($1, $2, $3, $4, 0)
             ON CONFLICT (name) DO UPDATE SET scope = excluded.scope, interval_ms = excluded.interval_ms,
               next_run_at = CASE WHEN $5 < schedules.next_run_at THEN $5 ELSE schedules.next_run_at END",
        )
        .bind(name)
        .bind(scope)
        .bind(interval_ms)
        .bind(first_run_at)
        .bind(self.clock.now_ms().saturating_add(interval_ms))
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Forgets a schedule that is turned off, so that its history is not shown as current.
    pub async fn remove_schedule(&self, name: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM schedules WHERE name = $1").bind(name).execute(&self.write).await?;
        Ok(())
    }

    /// Takes the schedule's due run, if it is due: moves next_run_at past now by whole
    /// intervals (runs missed while nothing ran are not made up) with a compare-and-set
    /// that only one caller wins. Returns the slot taken (the run's due time) to the winner.
    pub async fn take_schedule_slot(&self, name: &str, interval_ms: i64) -> Result<Option<i64>, DbError> {
        let now = self.clock.now_ms();
        let next = sqlx::query_scalar::<Any, i64>("SELECT next_run_at FROM schedules WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.write)
            .await?;
        let Some(slot) = next.filter(|next| *next <= now) else { return Ok(None) };
        let won = sqlx::query("UPDATE schedules SET next_run_at = $1 WHERE name = $2 AND next_run_at = $3")
            .bind(following_slot(slot, now, interval_ms))
            .bind(name)
            .bind(slot)
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok((won > 0).then_some(slot))
    }

    /// Records that a run started; `next_run_at`, for a schedule each replica keeps itself,
    /// is shown as the schedule's next run.
    pub async fn schedule_started(&self, name: &str, next_run_at: Option<i64>) -> Result<(), DbError> {
        sqlx::query("UPDATE schedules SET last_started_at = $1, next_run_at = COALESCE($2, next_run_at) WHERE name = $3")
            .bind(self.clock.now_ms())
            .bind(next_run_at)
            .bind(name)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Records how a run ended: `done`, or `failed` with its error.
    pub async fn schedule_finished(&self, name: &str, duration_ms: i64, error: Option<&str>) -> Result<(), DbError> {
        sqlx::query(
            "UPDATE schedules SET last_finished_at = $1, last_duration_ms = $2, last_outcome = $3, last_error = $4, runs = runs + 1
             WHERE name = $5",
        )
        .bind(self.clock.now_ms())
        .bind(duration_ms)
        .bind(if error.is_some() { "failed" } else { "done" })
        .bind(error)
        .bind(name)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Every stored schedule, by name.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRecord>, DbError> {
        Ok(sqlx::query_as::<Any, ScheduleRecord>(
            "SELECT name, scope, interval_ms, next_run_at, last_started_at, last_finished_at, last_duration_ms, last_outcome,
                    last_error, runs
             FROM schedules ORDER BY name",
        )
        .fetch_all(&self.read)
        .await?)
    }
}

/// The first slot after `now` of a schedule due at `due`: whole intervals later, so that
/// runs missed meanwhile (a replica stopped, a clock moved by days) are not made up.
pub fn following_slot(due: i64, now: i64, interval_ms: i64) -> i64 {
    let interval = interval_ms.max(1);
    due.saturating_add(((now - due).max(0) / interval + 1).saturating_mul(interval))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use slipway_types::Clock;

    use super::{JobCounts, NewJob, ScheduleRecord, following_slot};
    use crate::{now_ms, test_databases};

    const MINUTE: i64 = 60_000;

    fn job<'a>(id: &'a str, dedup_key: Option<&'a str>) -> NewJob<'a> {
        NewJob { id, kind: "test", dedup_key, payload: "{}", run_at: now_ms(), max_attempts: 2 }
    }

    #[tokio::test]
    async fn enqueue_is_idempotent_per_key_and_revives_failed_jobs() {
        for (db, _dir) in test_databases().await {
            let db = db.jobs();
            assert_eq!(db.enqueue_job(&job("a", Some("k"))).await.unwrap(), "a");
            assert_eq!(db.enqueue_job(&job("b", Some("k"))).await.unwrap(), "a");
            assert_eq!(db.enqueue_job(&job("c", None)).await.unwrap(), "c");
            assert_eq!(db.enqueue_job(&job("d", None)).await.unwrap(), "d");
            let claimed = db.claim_jobs("t1", now_ms() + MINUTE, 10).await.unwrap();
            assert_eq!(claimed.len(), 3);
            assert!(claimed.iter().all(|j| j.attempts == 1 && j.max_attempts == 2 && j.kind == "test"));
            // Still running: a second enqueue under the key finds it.
            assert_eq!(db.enqueue_job(&job("b", Some("k"))).await.unwrap(), "a");
            assert!(db.fail_job("a", "t1", "boom", None).await.unwrap());
            let failed = db.job("a").await.unwrap().unwrap();
            assert!(failed.failed_at.is_some());
            assert_eq!(failed.last_error.as_deref(), Some("boom"));
            assert_eq!(
                db.job_counts().await.unwrap(),
                [JobCounts { kind: "test".into(), pending: 2, running: 2, failed: 1, oldest_due_at: None }]
            );
            // A failed job is not claimed again, but enqueueing its key revives it.
            assert!(db.claim_jobs("t2", now_ms() + MINUTE, 10).await.unwrap().is_empty());
            assert_eq!(db.enqueue_job(&job("e", Some("k"))).await.unwrap(), "a");
            let revived = db.job_by_key("test", "k").await.unwrap().unwrap();
            assert_eq!((revived.attempts, revived.failed_at, revived.last_error), (0, None, None));
            assert_eq!(db.claim_jobs("t2", now_ms() + MINUTE, 10).await.unwrap().len(), 1);
        }
    }

    /// The key's job may finish, and go, between the insert that finds it and the read of
    /// its id: enqueueing then adds the job anew instead of failing (a 500 that
    /// schemathesis found on POST /api/v1/scans while the scan it repeated was running).
    #[tokio::test]
    async fn enqueueing_beside_a_worker_finishing_the_keys_job_never_fails() {
        const ENQUEUES: usize = 400;
        for (db, _dir) in test_databases().await {
            let db = db.jobs();
            let backend = db.backend();
            // The worker finishes every job it claims, and says which, in order.
            let worker = {
                let db = db.clone();
                tokio::spawn(async move {
                    let mut finished = Vec::new();
                    for _ in 0..ENQUEUES {
                        for claimed in db.claim_jobs("w", now_ms() + MINUTE, 10).await.unwrap() {
                            assert!(db.complete_job(&claimed.id, "w").await.unwrap(), "{backend:?}: the worker holds {}", claimed.id);
                            finished.push(claimed.id);
                        }
                    }
                    finished
                })
            };
            let mut returned = Vec::with_capacity(ENQUEUES);
            for i in 0..ENQUEUES {
                let id = format!("j{i}");
                match db.enqueue_job(&job(&id, Some("k"))).await {
                    Ok(got) => returned.push(got),
                    Err(e) => panic!("{backend:?}: enqueue {i} failed beside the worker: {e}"),
                }
            }
            let finished = worker.await.unwrap();
            let number = |id: &str| id.strip_prefix('j').and_then(|n| n.parse::<usize>().ok()).expect("an id this test enqueued");

            // Each enqueue returned its own job, added anew, or the key's job enqueued
            // before it; once a newer job was added the older one was never named again
            // (only one job per key exists at a time).
            let numbers: Vec<usize> = returned.iter().map(|id| number(id)).collect();
            for (i, &n) in numbers.iter().enumerate() {
                assert!(n <= i, "{backend:?}: enqueue {i} returned the later job j{n}");
                assert!(i == 0 || numbers[i - 1] <= n, "{backend:?}: enqueue {i} went back to j{n}");
            }
            let mut added: Vec<&str> = returned.iter().map(String::as_str).collect();
            added.dedup();
            // The worker finished each job once, in the order they were added, and only
            // jobs the enqueues returned.
            let finished: Vec<&str> = finished.iter().map(String::as_str).collect();
            assert!(finished.len() <= added.len(), "{backend:?}: finished {finished:?}, added {added:?}");
            assert_eq!(finished, added[..finished.len()], "{backend:?}: finished jobs");
            // The race the test is about ran: the key's job finished while enqueueing
            // went on, and later enqueues added it anew.
            assert!(added.len() > 1, "{backend:?}: the worker finished no job while enqueueing went on");

            // With the worker gone, the last enqueue's job waits, unclaimed and not failed,
            // unless the worker finished it; nothing else is left under the key.
            let last = returned.last().unwrap();
            match db.job_by_key("test", "k").await.unwrap() {
                Some(waiting) => {
                    assert_eq!(&waiting.id, last, "{backend:?}: the key's job is the one the last enqueue returned");
                    assert_eq!(finished.len(), added.len() - 1, "{backend:?}: every other job was finished");
                    assert_eq!((waiting.attempts, waiting.failed_at, waiting.locked_until), (0, None, 0), "{backend:?}: it waits");
                    let counts = JobCounts { kind: "test".into(), pending: 1, running: 0, failed: 0, oldest_due_at: Some(waiting.run_at) };
                    assert_eq!(db.job_counts().await.unwrap(), [counts], "{backend:?}: it is due, and how long it waited shows");
                }
                None => assert_eq!(finished.len(), added.len(), "{backend:?}: the worker finished the last job"),
            }
        }
    }

    /// Replicas finding a schedule due at once race for its slot: one wins each slot, and
    /// the next slot lies whole intervals later (runs missed meanwhile are not made up).
    #[tokio::test]
    async fn each_slot_of_a_schedule_is_taken_once() {
        const HOUR: i64 = 60 * MINUTE;
        for (db, _dir) in test_databases().await {
            let clock = Clock::manual(1_000_000 * HOUR);
            let db = db.with_clock(clock.clone()).jobs();
            let start = clock.now_ms();
            db.register_schedule("gc", "cluster", HOUR, start + HOUR).await.unwrap();
            assert_eq!(db.take_schedule_slot("gc", HOUR).await.unwrap(), None, "not due yet");
            assert_eq!(db.take_schedule_slot("missing", HOUR).await.unwrap(), None);
            clock.advance(Duration::from_secs(3600)).unwrap();
            let replicas: Vec<_> = (0..8).map(|_| db.clone()).collect();
            let taken = futures::future::try_join_all(replicas.iter().map(|r| r.take_schedule_slot("gc", HOUR))).await.unwrap();
            assert_eq!(taken.iter().flatten().collect::<Vec<_>>(), [&(start + HOUR)], "{taken:?}");
            // Three and a half intervals later: one run, due at the slot that passed first.
            clock.advance(Duration::from_secs(3 * 3600 + 1800)).unwrap();
            assert_eq!(db.take_schedule_slot("gc", HOUR).await.unwrap(), Some(start + 2 * HOUR));
            assert_eq!(db.take_schedule_slot("gc", HOUR).await.unwrap(), None);
            assert_eq!(db.schedules().await.unwrap()[0].next_run_at, start + 5 * HOUR);
            // A replica starting with a shorter interval brings the next run forward; one
            // with a longer interval, or running it at its start, never moves it.
            db.register_schedule("gc", "cluster", 2 * HOUR, clock.now_ms() + 2 * HOUR).await.unwrap();
            assert_eq!(db.schedules().await.unwrap()[0].next_run_at, start + 5 * HOUR);
            db.register_schedule("gc", "cluster", HOUR, clock.now_ms()).await.unwrap();
            assert_eq!(db.schedules().await.unwrap()[0].next_run_at, start + 5 * HOUR);
            db.register_schedule("gc", "cluster", MINUTE, clock.now_ms() + MINUTE).await.unwrap();
            let stored = db.schedules().await.unwrap().remove(0);
            assert_eq!((stored.interval_ms, stored.next_run_at), (MINUTE, clock.now_ms() + MINUTE));
        }
    }

    #[tokio::test]
    async fn a_schedules_history_shows_its_latest_run() {
        for (db, _dir) in test_databases().await {
            let clock = Clock::manual(5_000_000);
            let db = db.with_clock(clock.clone()).jobs();
            db.register_schedule("mail", "cluster", MINUTE, 0).await.unwrap();
            db.register_schedule("pulls", "replica", MINUTE, 0).await.unwrap();
            db.schedule_started("mail", None).await.unwrap();
            clock.advance(Duration::from_millis(250)).unwrap();
            db.schedule_finished("mail", 250, Some("smtp down")).await.unwrap();
            db.schedule_started("pulls", Some(7_000_000)).await.unwrap();
            db.schedule_finished("pulls", 3, None).await.unwrap();
            db.schedule_started("mail", None).await.unwrap();
            db.schedule_finished("mail", 10, None).await.unwrap();
            let [mail, pulls] = <[ScheduleRecord; 2]>::try_from(db.schedules().await.unwrap()).unwrap();
            assert_eq!(
                mail,
                ScheduleRecord {
                    name: "mail".into(),
                    scope: "cluster".into(),
                    interval_ms: MINUTE,
                    next_run_at: 0,
                    last_started_at: Some(5_000_250),
                    last_finished_at: Some(5_000_250),
                    last_duration_ms: Some(10),
                    last_outcome: Some("done".into()),
                    last_error: None,
                    runs: 2,
                }
            );
            assert_eq!((pulls.next_run_at, pulls.last_outcome.as_deref(), pulls.runs), (7_000_000, Some("done"), 1));
            db.remove_schedule("pulls").await.unwrap();
            assert_eq!(db.schedules().await.unwrap().len(), 1);
        }
    }

    #[tokio::test]
    async fn leases_are_exclusive_and_tokens_guard_every_step() {
        for (db, _dir) in test_databases().await {
            let db = db.jobs();
            db.enqueue_job(&job("a", None)).await.unwrap();
            db.enqueue_job(&NewJob { run_at: now_ms() + MINUTE, ..job("later", None) }).await.unwrap();
            let claimed = db.claim_jobs("w1", now_ms() + MINUTE, 10).await.unwrap();
            assert_eq!(claimed.iter().map(|j| j.id.as_str()).collect::<Vec<_>>(), ["a"]);
            assert!(db.claim_jobs("w2", now_ms() + MINUTE, 10).await.unwrap().is_empty());
            assert!(!db.complete_job("a", "w2").await.unwrap());
            assert!(db.extend_job_lease("a", "w1", now_ms() + 2 * MINUTE).await.unwrap());
            // A retry due now is claimed again, and the attempt counts.
            assert!(db.fail_job("a", "w1", "transient", Some(now_ms())).await.unwrap());
            let again = db.claim_jobs("w2", now_ms() + MINUTE, 10).await.unwrap();
            assert_eq!((again.len(), again[0].attempts), (1, 2));
            assert_eq!(db.job("a").await.unwrap().unwrap().last_error.as_deref(), Some("transient"));
            assert!(!db.extend_job_lease("a", "w1", now_ms()).await.unwrap());
            // Released at shutdown: due at once, and the interrupted attempt does not count.
            assert!(db.release_job("a", "w2").await.unwrap());
            let third = db.claim_jobs("w3", now_ms() + MINUTE, 10).await.unwrap();
            assert_eq!(third[0].attempts, 2);
            assert!(db.complete_job("a", "w3").await.unwrap());
            assert!(db.job("a").await.unwrap().is_none());
        }
    }

    #[tokio::test]
    async fn an_expired_lease_lets_another_worker_take_over() {
        for (db, _dir) in test_databases().await {
            let db = db.jobs();
            db.enqueue_job(&job("a", None)).await.unwrap();
            assert_eq!(db.claim_jobs("w1", now_ms() - 1, 1).await.unwrap().len(), 1);
            let taken = db.claim_jobs("w2", now_ms() + MINUTE, 1).await.unwrap();
            assert_eq!(taken[0].attempts, 2);
            assert!(!db.complete_job("a", "w1").await.unwrap());
            assert!(db.complete_job("a", "w2").await.unwrap());
        }
    }

    #[test]
    fn the_following_slot_skips_missed_ones() {
        assert_eq!(following_slot(100, 100, 10), 110);
        assert_eq!(following_slot(100, 109, 10), 110);
        assert_eq!(following_slot(100, 135, 10), 140);
        assert_eq!(following_slot(100, 50, 10), 110, "not due yet: the next interval");
    }
}

//! Queries behind the background job queue.
//!
//! A worker claims a job in two steps that work alike on both databases and across
//! replicas: it reads the ids of due, unleased jobs, then takes each with a
//! compare-and-set `UPDATE ... WHERE locked_until <= now` that only one claimant can win.
//! Every later step names the claim's token, so a worker whose lease ran out (and whose
//! job another worker took over) cannot complete, retry or release it.

use sqlx::Any;

use crate::{Db, DbError};

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

/// Jobs of one kind: waiting or running, and failed for good.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct JobCounts {
    pub kind: String,
    pub pending: i64,
    pub failed: i64,
}

impl Db {
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

    /// Per kind: how many jobs wait or run, and how many failed for good.
    pub async fn job_counts(&self) -> Result<Vec<JobCounts>, DbError> {
        Ok(sqlx::query_as::<Any, JobCounts>(
            "SELECT kind, COUNT(CASE WHEN failed_at IS NULL THEN 1 END) AS pending,
                    COUNT(failed_at) AS failed
             FROM jobs GROUP BY kind ORDER BY kind",
        )
        .fetch_all(&self.read)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::{JobCounts, NewJob};
    use crate::{now_ms, test_databases};

    const MINUTE: i64 = 60_000;

    fn job<'a>(id: &'a str, dedup_key: Option<&'a str>) -> NewJob<'a> {
        NewJob { id, kind: "test", dedup_key, payload: "{}", run_at: now_ms(), max_attempts: 2 }
    }

    #[tokio::test]
    async fn enqueue_is_idempotent_per_key_and_revives_failed_jobs() {
        for (db, _dir) in test_databases().await {
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
            assert_eq!(db.job_counts().await.unwrap(), [JobCounts { kind: "test".into(), pending: 2, failed: 1 }]);
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
                    assert_eq!(db.job_counts().await.unwrap(), [JobCounts { kind: "test".into(), pending: 1, failed: 0 }]);
                }
                None => assert_eq!(finished.len(), added.len(), "{backend:?}: the worker finished the last job"),
            }
        }
    }

    #[tokio::test]
    async fn leases_are_exclusive_and_tokens_guard_every_step() {
        for (db, _dir) in test_databases().await {
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
            db.enqueue_job(&job("a", None)).await.unwrap();
            assert_eq!(db.claim_jobs("w1", now_ms() - 1, 1).await.unwrap().len(), 1);
            let taken = db.claim_jobs("w2", now_ms() + MINUTE, 1).await.unwrap();
            assert_eq!(taken[0].attempts, 2);
            assert!(!db.complete_job("a", "w1").await.unwrap());
            assert!(db.complete_job("a", "w2").await.unwrap());
        }
    }
}

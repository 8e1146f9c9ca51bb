//! Periodic work. A [`Schedule`] names a task and an interval; the [`Runner`](crate::Runner)
//! it is given to ticks every poll and runs it on the Clock:
//! - a cluster schedule runs once per interval across all replicas: every replica's
//!   scheduler tries to move the stored `next_run_at` past now with a compare-and-set, and
//!   only the one that wins enqueues the run, as a job of the schedule's name that any
//!   replica's workers claim with a lease;
//! - a replica schedule runs in every replica, for work on the replica's own memory (pull
//!   counts gathered by this process); it runs in the scheduler's task, not the queue,
//!   where another replica's worker could take it.
//!
//! Both record the latest run (start, duration, outcome, error) in the `schedules` table
//! and in metrics. Times are the Db's Clock's, so moving a test clock fires what falls due.

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::AtomicI64;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use slipway_db::JobsDb;

use crate::millis;

/// What a schedule runs.
pub type Task = Arc<dyn Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// Where a schedule runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Once per interval across all replicas, as a job on the queue.
    Cluster,
    /// Once per interval in every replica, for work on the replica's own memory.
    Replica,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Cluster => "cluster",
            Scope::Replica => "replica",
        }
    }
}

/// A periodic task. An interval of zero turns it off (and forgets its stored history).
#[derive(Clone)]
pub struct Schedule {
    pub(crate) name: &'static str,
    pub(crate) scope: Scope,
    pub(crate) interval: Duration,
    pub(crate) at_start: bool,
    pub(crate) task: Task,
    /// Replica schedules: when this replica runs it next, in the Clock's milliseconds.
    pub(crate) next_local: Arc<AtomicI64>,
}

impl Schedule {
    /// Runs `task` once per `interval` across all replicas, the first time one interval
    /// after the schedule is first stored. `name` is stored, and is the kind of the jobs
    /// its runs are: it must not change between releases nor equal another job kind.
    pub fn cluster<F, Fut>(name: &'static str, interval: Duration, task: F) -> Schedule
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Schedule::new(name, Scope::Cluster, interval, task)
    }

    /// Runs `task` once per `interval` in every replica, the first time one interval after
    /// the replica starts.
    pub fn replica<F, Fut>(name: &'static str, interval: Duration, task: F) -> Schedule
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        Schedule::new(name, Scope::Replica, interval, task)
    }

    fn new<F, Fut>(name: &'static str, scope: Scope, interval: Duration, task: F) -> Schedule
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = anyhow::Result<()>> + Send + 'static,
    {
        let task: Task = Arc::new(move || task().boxed());
        Schedule { name, scope, interval, at_start: false, task, next_local: Arc::default() }
    }

    /// Runs the first time at once: a cluster schedule when it is first stored (a replica
    /// starting later does not add a run), a replica schedule when its replica starts.
    pub fn at_start(self) -> Schedule {
        Schedule { at_start: true, ..self }
    }

    pub fn name(&self) -> &'static str {
        self.name
    }

    /// Runs the task once here and now, outside the schedule (`slipway jobs run`): a run
    /// the servers make meanwhile is not held off, so the task must bear one at a time
    /// (every scheduled task does: they are retried by their next run).
    pub async fn run_now(&self) -> anyhow::Result<()> {
        (self.task)().await
    }

    pub(crate) fn enabled(&self) -> bool {
        !self.interval.is_zero()
    }

    pub(crate) fn interval_ms(&self) -> i64 {
        millis(self.interval).max(1)
    }

    /// When the first run is due, for a schedule stored or started at `now`.
    pub(crate) fn first_run_at(&self, now: i64) -> i64 {
        if self.at_start { now } else { now.saturating_add(self.interval_ms()) }
    }
}

/// Runs one of a schedule's runs and records it: the start, then the duration, outcome and
/// error, in the `schedules` table and in metrics. A panic is a failed run. `next_local`
/// is a replica schedule's next run, stored for display.
pub(crate) async fn run_recorded(db: &JobsDb, name: &'static str, next_local: Option<i64>, task: &Task) -> anyhow::Result<()> {
    // History is for people and dashboards: failing to write it does not stop the work.
    if let Err(e) = db.schedule_started(name, next_local).await {
        tracing::warn!(schedule = name, error = %e, "recording a scheduled run's start failed");
    }
    let started = Instant::now();
    let result = match AssertUnwindSafe(task()).catch_unwind().await {
        Ok(result) => result,
        Err(_) => Err(anyhow::anyhow!("the task panicked")),
    };
    let error = result.as_ref().err().map(|e| format!("{e:#}"));
    if let Err(e) = db.schedule_finished(name, millis(started.elapsed()), error.as_deref()).await {
        tracing::warn!(schedule = name, error = %e, "recording a scheduled run's outcome failed");
    }
    if result.is_ok() {
        metrics::gauge!("slipway_schedule_last_success_seconds", "schedule" => name).set(db.clock().now_ms() as f64 / 1000.0);
    }
    result
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde::{Deserialize, Serialize};
    use slipway_db::{Db, ScheduleRecord};
    use slipway_types::Clock;

    use super::*;
    use crate::{Job, JobError, MAX_CLOCK_STEP, Queue, Runner, RunnerSettings};

    const HOUR: Duration = Duration::from_secs(3600);
    const DAY: Duration = Duration::from_secs(86_400);

    /// A replica: its own runner on the shared database, reading time from `clock`;
    /// `Delayed` jobs count their runs in `delayed`.
    fn replica(db: &Db, clock: &Clock, schedules: Vec<Schedule>, delayed: &Arc<AtomicUsize>) -> Runner {
        let queue = Queue::new(db.clone().with_clock(clock.clone()).jobs());
        let settings = RunnerSettings { backoff: Duration::ZERO, poll: Duration::from_millis(20), ..RunnerSettings::default() };
        schedules.into_iter().fold(Runner::new(queue, settings).register::<Delayed>(delayed.clone()), Runner::schedule)
    }

    /// A task counting its runs, failing those whose number (from 1) is in `fail`.
    fn counting(
        runs: &Arc<AtomicUsize>,
        fail: &'static [usize],
    ) -> impl Fn() -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync + use<> {
        let runs = runs.clone();
        move || {
            let run = runs.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                anyhow::ensure!(!fail.contains(&run), "run {run} fails");
                Ok(())
            }
            .boxed()
        }
    }

    /// Every replica's scheduler round at once, then every replica's workers until idle;
    /// returns how many runs the rounds started.
    async fn round(replicas: &[&Runner]) -> usize {
        let started = futures::future::try_join_all(replicas.iter().map(|r| r.tick())).await.unwrap().into_iter().sum();
        futures::future::try_join_all(replicas.iter().map(|r| r.run_until_idle())).await.unwrap();
        started
    }

    #[derive(Serialize, Deserialize)]
    struct Delayed;

    impl Job for Delayed {
        const KIND: &'static str = "delayed";
        type Context = AtomicUsize;

        async fn run(&self, ran: &AtomicUsize) -> anyhow::Result<()> {
            ran.fetch_add(1, Ordering::SeqCst);
            Ok(())
        }
    }

    #[tokio::test]
    async fn a_cluster_schedule_runs_once_per_interval_across_replicas() {
        for (db, _home) in slipway_db::test_databases().await {
            let clock = Clock::manual(1_700_000_000_000);
            let runs = Arc::new(AtomicUsize::new(0));
            let daily = || Schedule::cluster("daily", DAY, counting(&runs, &[]));
            let (a, b) = (replica(&db, &clock, vec![daily()], &Arc::default()), replica(&db, &clock, vec![daily()], &Arc::default()));
            assert_eq!(round(&[&a, &b]).await, 0, "not due before a day has passed");
            clock.advance(DAY).unwrap();
            assert_eq!(round(&[&a, &b]).await, 1, "one replica wins the slot");
            assert_eq!(runs.load(Ordering::SeqCst), 1);
            assert_eq!(round(&[&a, &b]).await, 0);
            clock.advance(DAY - HOUR).unwrap();
            assert_eq!(round(&[&a, &b]).await, 0, "not again before the next day");
            // Three days later: one run, not three.
            clock.advance(HOUR + 3 * DAY).unwrap();
            assert_eq!(round(&[&a, &b]).await, 1);
            assert_eq!(round(&[&b, &a]).await, 0);
            assert_eq!(runs.load(Ordering::SeqCst), 2);
            let stored = a.queue.schedules().await.unwrap();
            assert_eq!(stored.len(), 1);
            let daily = &stored[0];
            assert_eq!((daily.name.as_str(), daily.scope.as_str(), daily.runs), ("daily", "cluster", 2));
            assert_eq!((daily.last_outcome.as_deref(), daily.last_error.as_deref()), (Some("done"), None));
            assert_eq!(daily.last_started_at, Some(clock.now_ms()));
            assert_eq!(daily.next_run_at, 1_700_000_000_000 + 6 * millis(DAY), "the next whole day after the last");
            assert!(a.queue.job_counts().await.unwrap().is_empty(), "finished runs leave no job behind");
        }
    }

    /// `[testing] clock`: one replica (or `slipway admin clock advance`) moves the stored
    /// offset; every replica follows it at its next round or claim.
    #[tokio::test]
    async fn moving_the_test_clock_a_day_fires_daily_work_once_and_delayed_jobs() {
        for (db, _home) in slipway_db::test_databases().await {
            let (runs, delayed) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
            let daily = || Schedule::cluster("gc", DAY, counting(&runs, &[]));
            let a = replica(&db, &Clock::test(Duration::ZERO), vec![daily()], &delayed);
            let b = replica(&db, &Clock::test(Duration::ZERO), vec![daily()], &delayed);
            let admin = Queue::new(db.clone().with_clock(Clock::test(Duration::ZERO)).jobs());
            a.queue.enqueue_at(&Delayed, a.queue.clock().now_ms() + millis(2 * HOUR)).await.unwrap();
            assert_eq!(round(&[&a, &b]).await, 0);
            assert_eq!(delayed.load(Ordering::SeqCst), 0, "the delayed job is due in two hours");

            assert_eq!(admin.advance_test_clock(DAY).await.unwrap(), DAY);
            assert_eq!(round(&[&a, &b]).await, 1, "the daily job fires once");
            assert_eq!((runs.load(Ordering::SeqCst), a.queue.clock().offset(), b.queue.clock().offset()), (1, DAY, DAY));
            assert_eq!(delayed.load(Ordering::SeqCst), 1, "the delayed job fires by the moved clock");
            assert_eq!(round(&[&a, &b]).await, 0, "and the daily one not again the same day");

            admin.advance_test_clock(DAY).await.unwrap();
            assert_eq!(round(&[&b, &a]).await, 1, "the next day, once more");
            assert_eq!(runs.load(Ordering::SeqCst), 2);
        }
    }

    #[tokio::test]
    async fn replica_schedules_run_in_every_replica() {
        for (db, _home) in slipway_db::test_databases().await {
            let clock = Clock::manual(1_700_000_000_000);
            let runs = Arc::new(AtomicUsize::new(0));
            let flush = || Schedule::replica("pull-counts", Duration::from_secs(10), counting(&runs, &[])).at_start();
            let (a, b) = (replica(&db, &clock, vec![flush()], &Arc::default()), replica(&db, &clock, vec![flush()], &Arc::default()));
            assert_eq!(round(&[&a, &b]).await, 2, "each replica runs it at its start");
            assert_eq!(round(&[&a, &b]).await, 0);
            clock.advance(Duration::from_secs(10)).unwrap();
            assert_eq!(round(&[&a, &b]).await, 2);
            assert_eq!(runs.load(Ordering::SeqCst), 4);
            assert!(a.queue.job_counts().await.unwrap().is_empty(), "replica schedules never reach the shared queue");
            let stored = &a.queue.schedules().await.unwrap()[0];
            assert_eq!((stored.scope.as_str(), stored.runs, stored.next_run_at), ("replica", 4, clock.now_ms() + 10_000));
        }
    }

    #[tokio::test]
    async fn a_failed_run_is_recorded_and_the_next_slot_runs_again() {
        for (db, _home) in slipway_db::test_databases().await {
            let clock = Clock::manual(1_700_000_000_000);
            let runs = Arc::new(AtomicUsize::new(0));
            let panicking = || Schedule::cluster("panics", HOUR, || async { panic!("boom") });
            let a = replica(&db, &clock, vec![Schedule::cluster("mail", HOUR, counting(&runs, &[1])), panicking()], &Arc::default());
            assert_eq!(round(&[&a]).await, 0, "first due an hour after the schedules are stored");
            clock.advance(HOUR).unwrap();
            assert_eq!(round(&[&a]).await, 2);
            let [mail, panics] = <[ScheduleRecord; 2]>::try_from(a.queue.schedules().await.unwrap()).unwrap();
            assert_eq!((mail.last_outcome.as_deref(), mail.last_error.as_deref()), (Some("failed"), Some("run 1 fails")));
            assert_eq!((panics.last_outcome.as_deref(), panics.last_error.as_deref()), (Some("failed"), Some("the task panicked")));
            // A failed run is not retried (the next slot is its retry), and its job is the
            // one the next slot revives: failures leave one row per schedule, not per slot.
            assert_eq!(round(&[&a]).await, 0);
            let counts = a.queue.job_counts().await.unwrap();
            assert_eq!(counts.iter().map(|c| (c.kind.as_str(), c.failed)).collect::<Vec<_>>(), [("mail", 1), ("panics", 1)]);
            clock.advance(HOUR).unwrap();
            assert_eq!(round(&[&a]).await, 2);
            let mail = &a.queue.schedules().await.unwrap()[0];
            assert_eq!((mail.last_outcome.as_deref(), mail.last_error.as_deref(), mail.runs), (Some("done"), None, 2));
            let counts = a.queue.job_counts().await.unwrap();
            assert_eq!(counts.iter().map(|c| (c.kind.as_str(), c.failed)).collect::<Vec<_>>(), [("panics", 1)]);
        }
    }

    #[tokio::test]
    async fn a_schedule_turned_off_is_forgotten() {
        for (db, _home) in slipway_db::test_databases().await {
            let clock = Clock::manual(1_700_000_000_000);
            let on = replica(&db, &clock, vec![Schedule::cluster("feed-sync", HOUR, || async { Ok(()) })], &Arc::default());
            round(&[&on]).await;
            assert_eq!(on.queue.schedules().await.unwrap().len(), 1);
            let off = replica(&db, &clock, vec![Schedule::cluster("feed-sync", Duration::ZERO, || async { Ok(()) })], &Arc::default());
            clock.advance(2 * HOUR).unwrap();
            assert_eq!(round(&[&off]).await, 0);
            assert!(off.queue.schedules().await.unwrap().is_empty());
        }
    }

    #[tokio::test]
    async fn the_test_clock_moves_forward_by_bounded_steps_only() {
        for (db, _home) in slipway_db::test_databases().await {
            let test = Queue::new(db.clone().with_clock(Clock::test(Duration::ZERO)).jobs());
            assert!(matches!(test.advance_test_clock(Duration::ZERO).await, Err(JobError::Invalid(_))));
            assert!(matches!(test.advance_test_clock(MAX_CLOCK_STEP + Duration::from_millis(1)).await, Err(JobError::Invalid(_))));
            assert_eq!(test.advance_test_clock(MAX_CLOCK_STEP).await.unwrap(), MAX_CLOCK_STEP);
            let system = Queue::new(db.jobs());
            assert!(matches!(system.advance_test_clock(HOUR).await, Err(JobError::Clock(_))));
            assert_eq!(system.clock().offset(), Duration::ZERO);
        }
    }
}

#![doc = include_str!("../README.md")]

mod schedule;

use std::collections::HashMap;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use futures::FutureExt;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use slipway_db::{ClaimedJob, DbError, JobCounts, JobRecord, JobsDb, NewJob, ScheduleRecord};
use slipway_types::{Clock, ClockError, ClockKind};
use tokio::sync::{Notify, OnceCell};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("job payload: {0}")]
    Payload(#[from] serde_json::Error),
    #[error(transparent)]
    Clock(#[from] ClockError),
    #[error("{0}")]
    Invalid(String),
}

pub use schedule::{Schedule, Scope, Task};

/// The longest step `Queue::advance_test_clock` takes at once: ten years is past any
/// renewal, deadline or expiry a rehearsal needs, and a bound keeps a typo (`100000d`)
/// from moving every replica's time beyond repair (the offset only grows).
pub const MAX_CLOCK_STEP: Duration = Duration::from_secs(10 * 366 * 86_400);

impl JobError {
    /// What kind of failure this is at every surface: a payload the queue cannot
    /// (de)serialize is a fault of the server's own job types.
    pub fn kind(&self) -> slipway_types::ErrorKind {
        match self {
            JobError::Db(e) => e.kind(),
            JobError::Payload(_) => slipway_types::ErrorKind::Internal,
            // Moving a clock that cannot move, or by a step out of bounds, is the request's fault.
            JobError::Clock(_) | JobError::Invalid(_) => slipway_types::ErrorKind::Invalid,
        }
    }
}

#[cfg(test)]
mod kind_tests {
    use slipway_types::ErrorKind;

    use super::{ClockError, DbError, JobError};

    #[test]
    fn every_error_has_the_kind_its_surfaces_answer() {
        let payload = serde_json::from_str::<u32>("x").expect_err("not a number");
        let cases = [
            (JobError::Payload(payload), ErrorKind::Internal),
            (JobError::Db(DbError::Conflict("kept finishing".into())), ErrorKind::Conflict),
            (JobError::Db(DbError::Storage("disk".into())), ErrorKind::Internal),
            (JobError::Clock(ClockError::NotMovable), ErrorKind::Invalid),
            (JobError::Invalid("step too long".into()), ErrorKind::Invalid),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error:?}");
        }
    }
}

/// A kind of background job: its parameters are the value itself, stored as JSON.
pub trait Job: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The kind's name in the queue; stored, so it must not change between releases.
    const KIND: &'static str;
    /// Attempts before the job fails for good.
    const MAX_ATTEMPTS: u32 = 5;
    /// What running the job needs (services, settings).
    type Context: Send + Sync + 'static;

    /// Jobs of this kind with the same key are queued once at a time.
    fn dedup_key(&self) -> Option<String> {
        None
    }

    fn run(&self, ctx: &Self::Context) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Enqueues jobs. Cheap to clone; wakes the runners of this process at once.
#[derive(Clone)]
pub struct Queue {
    db: JobsDb,
    wake: Arc<Notify>,
}

impl Queue {
    pub fn new(db: JobsDb) -> Queue {
        Queue { db, wake: Arc::default() }
    }

    /// Enqueues `job` to run now; returns its id (an existing job's, if its key is taken).
    pub async fn enqueue<J: Job>(&self, job: &J) -> Result<String, JobError> {
        self.enqueue_at(job, self.db.clock().now_ms()).await
    }

    /// Enqueues `job` to run once the Clock reads `run_at` (Unix milliseconds) or later;
    /// a test clock moved past it makes it due at once.
    pub async fn enqueue_at<J: Job>(&self, job: &J, run_at: i64) -> Result<String, JobError> {
        let payload = serde_json::to_string(job)?;
        let key = job.dedup_key();
        self.enqueue_raw(J::KIND, key.as_deref(), &payload, run_at, i64::from(J::MAX_ATTEMPTS)).await
    }

    async fn enqueue_raw(&self, kind: &str, key: Option<&str>, payload: &str, run_at: i64, attempts: i64) -> Result<String, JobError> {
        let id = uuid::Uuid::new_v4().to_string();
        let id = self.db.enqueue_job(&NewJob { id: &id, kind, dedup_key: key, payload, run_at, max_attempts: attempts }).await?;
        self.wake.notify_waiters();
        Ok(id)
    }

    /// The Clock jobs and schedules run by.
    pub fn clock(&self) -> &Clock {
        self.db.clock()
    }

    /// Moves the test clock forward by `by` for every replica (they follow at their next
    /// poll); returns the new offset. Refused when the clock is not a test clock, and for
    /// a step of zero or over [`MAX_CLOCK_STEP`].
    pub async fn advance_test_clock(&self, by: Duration) -> Result<Duration, JobError> {
        if self.clock().kind() != ClockKind::Test {
            return Err(ClockError::NotMovable.into());
        }
        if by.is_zero() {
            return Err(JobError::Invalid("the test clock moves forward only: give a duration above zero".into()));
        }
        if by > MAX_CLOCK_STEP {
            return Err(JobError::Invalid(format!("the test clock moves at most {} days at once", MAX_CLOCK_STEP.as_secs() / 86_400)));
        }
        Ok(self.db.advance_test_clock(by).await?)
    }

    /// Brings a test clock up to the offset another process stored (a no-op otherwise).
    pub async fn sync_test_clock(&self) -> Result<(), JobError> {
        Ok(self.db.sync_test_clock().await?)
    }

    /// Every stored schedule with its latest run.
    pub async fn schedules(&self) -> Result<Vec<ScheduleRecord>, JobError> {
        Ok(self.db.schedules().await?)
    }

    /// Per kind: jobs waiting or running, running, and failed for good.
    pub async fn job_counts(&self) -> Result<Vec<JobCounts>, JobError> {
        Ok(self.db.job_counts().await?)
    }

    pub async fn job(&self, id: &str) -> Result<Option<JobRecord>, JobError> {
        Ok(self.db.job(id).await?)
    }

    /// The job queued under `J`'s kind and `key`, if any (waiting, running or failed).
    pub async fn job_by_key<J: Job>(&self, key: &str) -> Result<Option<JobRecord>, JobError> {
        Ok(self.db.job_by_key(J::KIND, key).await?)
    }
}

/// How the runner works.
#[derive(Clone, Debug)]
pub struct RunnerSettings {
    /// Jobs run at once by this process; with 0 it runs none (other replicas do) but its
    /// scheduler still runs its replica schedules and enqueues cluster runs.
    pub workers: usize,
    /// How long a claim holds a job; renewed every third of it while the job runs.
    pub lease: Duration,
    /// How often idle workers look for due jobs (enqueues in this process wake them sooner),
    /// and how often the scheduler looks for due schedules.
    pub poll: Duration,
    /// The first retry's delay; each further one doubles it, up to `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// How long running jobs may take to finish at shutdown before they are given back.
    pub shutdown_grace: Duration,
}

impl Default for RunnerSettings {
    fn default() -> Self {
        RunnerSettings {
            workers: 2,
            lease: Duration::from_secs(120),
            poll: Duration::from_secs(2),
            backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(3600),
            shutdown_grace: Duration::from_secs(20),
        }
    }
}

type Handler = Arc<dyn Fn(String) -> BoxFuture<'static, anyhow::Result<()>> + Send + Sync>;

/// Runs queued jobs of the kinds registered with it, and the schedules given to it.
#[derive(Clone)]
pub struct Runner {
    queue: Queue,
    settings: RunnerSettings,
    handlers: HashMap<&'static str, Handler>,
    schedules: Vec<Schedule>,
    /// Set once the schedules are stored, on the first tick.
    stored: Arc<OnceCell<()>>,
}

/// How one claimed job ended.
enum Outcome {
    Done,
    Failed(String),
    /// Interrupted by shutdown.
    Stopped,
}

impl Runner {
    pub fn new(queue: Queue, settings: RunnerSettings) -> Runner {
        Runner { queue, settings, handlers: HashMap::new(), schedules: Vec::new(), stored: Arc::default() }
    }

    /// Runs jobs of kind `J` with `ctx`.
    pub fn register<J: Job>(self, ctx: Arc<J::Context>) -> Runner {
        let handler: Handler = Arc::new(move |payload: String| {
            let ctx = ctx.clone();
            async move {
                let job: J = serde_json::from_str(&payload)?;
                job.run(&ctx).await
            }
            .boxed()
        });
        self.with_handler(J::KIND, handler)
    }

    fn with_handler(mut self, kind: &'static str, handler: Handler) -> Runner {
        // Two handlers for one kind would each get the other's jobs.
        assert!(self.handlers.insert(kind, handler).is_none(), "job kind {kind} is registered twice");
        self
    }

    /// Runs `schedule` (see [`Schedule`]); with an interval of zero it is off, and its
    /// stored history is removed on the first tick.
    pub fn schedule(mut self, schedule: Schedule) -> Runner {
        if schedule.enabled() && schedule.scope == Scope::Cluster {
            let (db, name, task) = (self.queue.db.clone(), schedule.name, schedule.task.clone());
            let handler: Handler = Arc::new(move |_slot: String| {
                let (db, task) = (db.clone(), task.clone());
                async move { schedule::run_recorded(&db, name, None, &task).await }.boxed()
            });
            self = self.with_handler(name, handler);
        }
        self.schedules.push(schedule);
        self
    }

    /// One round of the scheduler, as the running scheduler does every poll: follows a
    /// moved test clock, enqueues the due runs of cluster schedules that this replica wins,
    /// and runs its due replica schedules. Returns how many runs it enqueued or ran.
    pub async fn tick(&self) -> Result<usize, JobError> {
        let db = &self.queue.db;
        db.sync_test_clock().await?;
        self.stored.get_or_try_init(|| self.store_schedules()).await?;
        let mut started = 0;
        for schedule in self.schedules.iter().filter(|s| s.enabled()) {
            let name = schedule.name;
            match schedule.scope {
                Scope::Cluster => {
                    let Some(slot) = db.take_schedule_slot(name, schedule.interval_ms()).await? else { continue };
                    // Keyed by the schedule alone: a run still waiting or running takes in
                    // this slot instead of a second one running beside it, and a failed
                    // run's row is revived rather than one more kept per slot.
                    let payload = serde_json::json!({ "slot": slot }).to_string();
                    let id = self.queue.enqueue_raw(name, Some(name), &payload, db.clock().now_ms(), 1).await?;
                    tracing::debug!(schedule = name, slot, job = %id, "scheduled run enqueued");
                    started += 1;
                }
                Scope::Replica => {
                    let (now, due) = (db.clock().now_ms(), schedule.next_local.load(Ordering::Relaxed));
                    if due > now {
                        continue;
                    }
                    let next = slipway_db::following_slot(due, now, schedule.interval_ms());
                    schedule.next_local.store(next, Ordering::Relaxed);
                    let started_at = Instant::now();
                    let result = schedule::run_recorded(db, name, Some(next), &schedule.task).await;
                    if let Err(e) = &result {
                        tracing::warn!(schedule = name, error = %format!("{e:#}"), "scheduled run failed");
                    }
                    observe(name, if result.is_ok() { "done" } else { "failed" }, started_at);
                    started += 1;
                }
            }
        }
        Ok(started)
    }

    /// Stores every schedule (a replica's first run is due one interval from now, or now)
    /// and forgets those turned off.
    async fn store_schedules(&self) -> Result<(), JobError> {
        let db = &self.queue.db;
        let now = db.clock().now_ms();
        for schedule in &self.schedules {
            if !schedule.enabled() {
                db.remove_schedule(schedule.name).await?;
                continue;
            }
            let first = schedule.first_run_at(now);
            db.register_schedule(schedule.name, schedule.scope.as_str(), schedule.interval_ms(), first).await?;
            schedule.next_local.store(first, Ordering::Relaxed);
        }
        Ok(())
    }

    /// Runs due jobs one after another until none is due (jobs they enqueue included);
    /// returns how many ran. For one-shot commands and tests.
    pub async fn run_until_idle(&self) -> Result<usize, JobError> {
        let mut ran = 0;
        loop {
            let token = uuid::Uuid::new_v4().to_string();
            let Some(job) = self.claim(&token).await? else { return Ok(ran) };
            self.run_claimed(job, &token, &CancellationToken::new()).await?;
            ran += 1;
        }
    }

    /// Starts the workers and the scheduler; they run until `RunnerHandle::shutdown`.
    pub fn start(self) -> RunnerHandle {
        let stop = CancellationToken::new();
        let mut tasks = JoinSet::new();
        let runner = Arc::new(self);
        for _ in 0..runner.settings.workers {
            let (runner, stop) = (runner.clone(), stop.clone());
            tasks.spawn(async move { runner.work(&stop).await });
        }
        if !runner.schedules.is_empty() {
            let (runner, stop) = (runner.clone(), stop.clone());
            tasks.spawn(async move { runner.run_schedules(&stop).await });
        }
        RunnerHandle { stop, tasks }
    }

    async fn run_schedules(&self, stop: &CancellationToken) {
        while !stop.is_cancelled() {
            if let Err(e) = self.tick().await {
                tracing::warn!(error = %e, "a scheduler round failed");
            }
            tokio::select! {
                () = tokio::time::sleep(self.settings.poll) => {}
                () = stop.cancelled() => {}
            }
        }
    }

    async fn work(&self, stop: &CancellationToken) {
        while !stop.is_cancelled() {
            let token = uuid::Uuid::new_v4().to_string();
            let claimed = match self.claim(&token).await {
                Ok(claimed) => claimed,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming a job failed");
                    None
                }
            };
            match claimed {
                Some(job) => {
                    if let Err(e) = self.run_claimed(job, &token, stop).await {
                        tracing::warn!(error = %e, "recording a job's outcome failed");
                    }
                }
                None => {
                    // Registered before the sleep, so an enqueue in between is not missed.
                    let woken = self.queue.wake.notified();
                    tokio::select! {
                        () = woken => {}
                        () = tokio::time::sleep(self.settings.poll) => {}
                        () = stop.cancelled() => {}
                    }
                }
            }
        }
    }

    async fn claim(&self, token: &str) -> Result<Option<ClaimedJob>, JobError> {
        // Delayed jobs fall due by the test clock another process may have moved.
        self.queue.db.sync_test_clock().await?;
        let lease_until = self.queue.db.clock().now_ms() + millis(self.settings.lease);
        Ok(self.queue.db.claim_jobs(token, lease_until, 1).await?.pop())
    }

    async fn run_claimed(&self, job: ClaimedJob, token: &str, stop: &CancellationToken) -> Result<(), JobError> {
        let db = &self.queue.db;
        let (kind, id, attempt) = (job.kind.as_str(), job.id.as_str(), job.attempts);
        let started = Instant::now();
        let outcome = if job.attempts > job.max_attempts {
            // Every attempt ended with its lease running out: the worker died or stalled.
            Outcome::Failed("its lease ran out on every attempt".into())
        } else {
            match self.handlers.get(job.kind.as_str()) {
                Some(handler) => self.supervise(handler(job.payload.clone()), &job, token, stop).await,
                None => Outcome::Failed(format!("no handler for job kind {}", job.kind)),
            }
        };
        match outcome {
            Outcome::Done => {
                db.complete_job(&job.id, token).await?;
                observe(kind, "done", started);
            }
            Outcome::Failed(error) => {
                let retry_at =
                    (job.attempts < job.max_attempts).then(|| self.queue.db.clock().now_ms() + millis(self.backoff(job.attempts)));
                match retry_at {
                    Some(_) => tracing::warn!(kind, id, attempt, error = %error, "job failed; it will be retried"),
                    None => tracing::error!(kind, id, attempt, error = %error, "job failed for good"),
                }
                db.fail_job(&job.id, token, &error, retry_at).await?;
                observe(kind, if retry_at.is_some() { "retry" } else { "failed" }, started);
            }
            Outcome::Stopped => {
                tracing::info!(kind, id, "job interrupted by shutdown; given back to the queue");
                db.release_job(&job.id, token).await?;
            }
        }
        Ok(())
    }

    /// Runs a job's future, renewing its lease, until it ends or shutdown's grace runs out.
    async fn supervise(
        &self,
        run: BoxFuture<'static, anyhow::Result<()>>,
        job: &ClaimedJob,
        token: &str,
        stop: &CancellationToken,
    ) -> Outcome {
        let mut run = AssertUnwindSafe(run).catch_unwind();
        // The lease is renewed beside the job, not between its polls: a renewal waiting for
        // the database (on SQLite, for the one write connection) must not stop the job,
        // which may be the one holding it.
        let lease = self.keep_lease(job, token);
        tokio::pin!(lease);
        let grace = self.settings.shutdown_grace;
        let stopped = async {
            stop.cancelled().await;
            tokio::time::sleep(grace).await;
        };
        tokio::pin!(stopped);
        tokio::select! {
            result = &mut run => match result {
                Ok(Ok(())) => Outcome::Done,
                Ok(Err(e)) => Outcome::Failed(format!("{e:#}")),
                Err(_) => Outcome::Failed("the job panicked".into()),
            },
            never = &mut lease => match never {},
            () = &mut stopped => Outcome::Stopped,
        }
    }

    /// Renews a running job's lease every third of it, for as long as it is polled.
    async fn keep_lease(&self, job: &ClaimedJob, token: &str) -> std::convert::Infallible {
        let mut renew = tokio::time::interval(self.settings.lease / 3);
        renew.tick().await;
        loop {
            renew.tick().await;
            let until = self.queue.db.clock().now_ms() + millis(self.settings.lease);
            match self.queue.db.extend_job_lease(&job.id, token, until).await {
                Ok(true) => {}
                Ok(false) => tracing::warn!(id = %job.id, "job lease lost; another worker may run it too"),
                Err(e) => tracing::warn!(id = %job.id, error = %e, "renewing a job lease failed"),
            }
        }
    }

    /// The delay before the retry that follows attempt `attempt` (1-based).
    fn backoff(&self, attempt: i64) -> Duration {
        let doublings = u32::try_from(attempt.saturating_sub(1)).unwrap_or(u32::MAX).min(30);
        self.settings.backoff.saturating_mul(1 << doublings).min(self.settings.max_backoff)
    }
}

/// The running workers.
pub struct RunnerHandle {
    stop: CancellationToken,
    tasks: JoinSet<()>,
}

impl RunnerHandle {
    /// Stops claiming, lets running jobs finish within the grace period, gives back the
    /// rest, and waits for the workers to end.
    pub async fn shutdown(mut self) {
        self.stop.cancel();
        while self.tasks.join_next().await.is_some() {}
    }
}

/// Counts a job's or a replica schedule's run by outcome, and its duration.
fn observe(kind: &str, outcome: &'static str, started: Instant) {
    metrics::counter!("slipway_jobs_total", "kind" => kind.to_owned(), "outcome" => outcome).increment(1);
    metrics::histogram!("slipway_job_duration_seconds", "kind" => kind.to_owned()).record(started.elapsed().as_secs_f64());
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use serde::Deserialize;

    use super::*;

    /// Records each run; fails the first `fail_first` runs of each job, panics for
    /// `Panic`, and sleeps for `Sleep`.
    #[derive(Default)]
    struct Log {
        runs: Mutex<Vec<String>>,
    }

    #[derive(Serialize, Deserialize)]
    enum Test {
        Count {
            name: String,
            fail_first: usize,
        },
        Panic,
        Sleep {
            ms: u64,
        },
        /// Holds the database's write lock (SQLite, from a connection of its own) for `ms`.
        HoldWrite {
            url: String,
            ms: u64,
        },
    }

    impl Job for Test {
        const KIND: &'static str = "test";
        const MAX_ATTEMPTS: u32 = 3;
        type Context = Log;

        fn dedup_key(&self) -> Option<String> {
            match self {
                Test::Count { name, .. } if name.starts_with("keyed") => Some(name.clone()),
                _ => None,
            }
        }

        async fn run(&self, log: &Log) -> anyhow::Result<()> {
            match self {
                Test::Count { name, fail_first } => {
                    let earlier = {
                        let mut runs = log.runs.lock().unwrap();
                        runs.push(name.clone());
                        runs.iter().filter(|r| *r == name).count() - 1
                    };
                    anyhow::ensure!(earlier >= *fail_first, "run {} of {name} fails", earlier + 1);
                    Ok(())
                }
                Test::Panic => panic!("boom"),
                Test::Sleep { ms } => {
                    tokio::time::sleep(Duration::from_millis(*ms)).await;
                    log.runs.lock().unwrap().push("slept".into());
                    Ok(())
                }
                Test::HoldWrite { url, ms } => {
                    use sqlx::Connection;
                    let mut conn = sqlx::SqliteConnection::connect(url).await?;
                    sqlx::query("BEGIN IMMEDIATE").execute(&mut conn).await?;
                    tokio::time::sleep(Duration::from_millis(*ms)).await;
                    sqlx::query("COMMIT").execute(&mut conn).await?;
                    log.runs.lock().unwrap().push("held".into());
                    Ok(())
                }
            }
        }
    }

    fn count(name: &str, fail_first: usize) -> Test {
        Test::Count { name: name.into(), fail_first }
    }

    fn quick() -> RunnerSettings {
        RunnerSettings { backoff: Duration::ZERO, poll: Duration::from_millis(20), ..RunnerSettings::default() }
    }

    async fn setup(settings: RunnerSettings) -> (Queue, Runner, Arc<Log>, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = slipway_db::Db::connect(&format!("sqlite://{}", dir.path().join("jobs.db").display())).await.unwrap().jobs();
        let queue = Queue::new(db);
        let log = Arc::new(Log::default());
        let runner = Runner::new(queue.clone(), settings).register::<Test>(log.clone());
        (queue, runner, log, dir)
    }

    /// A job holding the database's write lock across lease renewals: each renewal waits
    /// for the lock while the job goes on and lets go of it. Were the renewal awaited
    /// instead of the job, neither would move until SQLite's busy timeout (10 s) failed the
    /// renewal; the job ends well before that.
    #[tokio::test]
    async fn a_lease_renewal_waiting_for_the_database_does_not_stop_the_job() {
        let settings = RunnerSettings { lease: Duration::from_millis(300), ..quick() };
        let (queue, runner, log, dir) = setup(settings).await;
        let url = format!("sqlite://{}", dir.path().join("jobs.db").display());
        queue.enqueue(&Test::HoldWrite { url, ms: 700 }).await.unwrap();
        let handle = runner.start();
        let held = async {
            while !log.runs.lock().unwrap().contains(&"held".to_owned()) {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), held).await.expect("the job ends while its lease is renewed");
        handle.shutdown().await;
    }

    #[tokio::test]
    async fn jobs_are_retried_until_they_succeed_or_run_out_of_attempts() {
        let (queue, runner, log, _dir) = setup(quick()).await;
        queue.enqueue(&count("flaky", 2)).await.unwrap();
        let doomed = queue.enqueue(&count("doomed", 5)).await.unwrap();
        let panics = queue.enqueue(&Test::Panic).await.unwrap();
        assert_eq!(runner.run_until_idle().await.unwrap(), 3 + 3 + 3);
        let runs = log.runs.lock().unwrap().clone();
        assert_eq!(runs.iter().filter(|r| *r == "flaky").count(), 3);
        assert_eq!(runs.iter().filter(|r| *r == "doomed").count(), 3);
        let doomed = queue.job(&doomed).await.unwrap().expect("failed jobs are kept");
        assert!(doomed.failed_at.is_some());
        assert_eq!((doomed.attempts, doomed.last_error.as_deref()), (3, Some("run 3 of doomed fails")));
        assert_eq!(queue.job(&panics).await.unwrap().unwrap().last_error.as_deref(), Some("the job panicked"));
        // The job that succeeded is gone.
        assert_eq!(queue.db.job_counts().await.unwrap()[0].pending, 0);
    }

    #[tokio::test]
    async fn retries_back_off_exponentially() {
        let settings = RunnerSettings { backoff: Duration::from_secs(10), max_backoff: Duration::from_secs(25), ..quick() };
        let (queue, runner, _log, _dir) = setup(settings).await;
        assert_eq!(runner.backoff(1), Duration::from_secs(10));
        assert_eq!(runner.backoff(2), Duration::from_secs(20));
        assert_eq!(runner.backoff(3), Duration::from_secs(25));
        assert_eq!(runner.backoff(70), Duration::from_secs(25));
        let id = queue.enqueue(&count("later", 1)).await.unwrap();
        let before = queue.db.clock().now_ms();
        assert_eq!(runner.run_until_idle().await.unwrap(), 1, "the retry is not due yet");
        let job = queue.job(&id).await.unwrap().unwrap();
        assert!(job.run_at >= before + 10_000 && job.failed_at.is_none(), "{job:?}");
    }

    #[tokio::test]
    async fn keyed_jobs_are_queued_once() {
        let (queue, runner, log, _dir) = setup(quick()).await;
        let first = queue.enqueue(&count("keyed-a", 0)).await.unwrap();
        assert_eq!(queue.enqueue(&count("keyed-a", 0)).await.unwrap(), first);
        assert_eq!(queue.job_by_key::<Test>("keyed-a").await.unwrap().unwrap().id, first);
        assert_ne!(queue.enqueue(&count("unkeyed", 0)).await.unwrap(), queue.enqueue(&count("unkeyed", 0)).await.unwrap());
        assert_eq!(runner.run_until_idle().await.unwrap(), 3);
        assert_eq!(log.runs.lock().unwrap().len(), 3);
        // Once done, the key is free again.
        assert_ne!(queue.enqueue(&count("keyed-a", 0)).await.unwrap(), first);
    }

    /// Two replicas' runners share one queue: every job runs exactly once.
    #[tokio::test]
    async fn workers_on_several_replicas_share_the_queue() {
        let (queue, runner, log, _dir) = setup(RunnerSettings { workers: 3, ..quick() }).await;
        let replica = Runner::new(Queue::new(queue.db.clone()), RunnerSettings { workers: 3, ..quick() }).register::<Test>(log.clone());
        let (a, b) = (runner.start(), replica.start());
        for i in 0..40 {
            queue.enqueue(&count(&format!("job{i}"), 0)).await.unwrap();
        }
        tokio::time::timeout(Duration::from_secs(30), async {
            while log.runs.lock().unwrap().len() < 40 {
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
        .await
        .expect("every job runs");
        a.shutdown().await;
        b.shutdown().await;
        let mut runs = log.runs.lock().unwrap().clone();
        runs.sort();
        runs.dedup();
        assert_eq!(runs.len(), 40, "a job ran twice");
        assert!(queue.db.job_counts().await.unwrap().iter().all(|c| c.pending == 0));
    }

    #[tokio::test]
    async fn shutdown_lets_short_jobs_finish_and_gives_back_long_ones() {
        let settings = RunnerSettings { workers: 2, shutdown_grace: Duration::from_millis(300), ..quick() };
        let (queue, runner, log, _dir) = setup(settings).await;
        let short = queue.enqueue(&Test::Sleep { ms: 100 }).await.unwrap();
        let long = queue.enqueue(&Test::Sleep { ms: 60_000 }).await.unwrap();
        let handle = runner.start();
        tokio::time::timeout(Duration::from_secs(10), async {
            while queue.job(&long).await.unwrap().unwrap().attempts == 0
                || queue.job(&short).await.unwrap().is_some_and(|j| j.attempts == 0)
            {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("both jobs start");
        tokio::time::timeout(Duration::from_secs(10), handle.shutdown()).await.expect("shutdown ends within the grace period");
        assert_eq!(log.runs.lock().unwrap().as_slice(), ["slept"]);
        assert!(queue.job(&short).await.unwrap().is_none());
        let given_back = queue.job(&long).await.unwrap().unwrap();
        assert_eq!((given_back.attempts, given_back.locked_until, given_back.failed_at), (0, 0, None));
    }
}

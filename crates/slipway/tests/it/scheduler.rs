//! Scheduled work on the job queue and the test clock: two replicas on one database run
//! each periodic task once per interval; moving the test clock a day fires the daily work
//! once; `slipway admin clock` and `slipway jobs status` through the real binary.

use std::collections::HashMap;
use std::process::Output;
use std::time::Duration;

use reqwest::StatusCode;
use slipway::config::{Config, Secret};
use slipway_jobs::Runner;

use slipway_test_support::{Backend, TestApp};

const DAY: Duration = Duration::from_secs(86_400);

/// Every periodic task on: GC daily, the feed every 6 hours (a file), mail (an SMTP server
/// nothing listens on; with an empty outbox nothing is sent), pulls every 10 seconds,
/// subscription renewals and payout statements daily.
fn scheduled(config: &mut Config, feed: &std::path::Path) {
    config.testing.clock = true;
    config.gc.interval_secs = DAY.as_secs();
    config.feed.urls = vec![format!("file://{}", feed.display())];
    config.feed.sync_interval_secs = 6 * 3600;
    config.mail.smtp_url = Some(Secret::new("smtp://127.0.0.1:9"));
    config.commerce.renewal_interval_secs = DAY.as_secs();
}

fn advisory() -> String {
    serde_json::json!({
        "schema_version": "1.6.0",
        "id": "GHSA-slip-0900-test",
        "modified": "2099-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "PyPI", "name": "requests"}, "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.32.0"}]}]}],
    })
    .to_string()
}

/// Every replica's scheduler round at once, then every replica's workers until idle.
async fn round(runners: &[&Runner]) {
    futures::future::try_join_all(runners.iter().map(|r| r.tick())).await.expect("scheduler rounds");
    futures::future::try_join_all(runners.iter().map(|r| r.run_until_idle())).await.expect("workers");
}

/// Runs finished per schedule, each checked to have succeeded.
async fn runs(t: &TestApp) -> HashMap<String, i64> {
    let schedules = t.app.jobs.schedules().await.unwrap();
    for s in &schedules {
        assert!(s.runs == 0 || s.last_outcome.as_deref() == Some("done"), "{s:?}");
    }
    schedules.into_iter().map(|s| (s.name, s.runs)).collect()
}

fn expect(pairs: &[(&str, i64)]) -> HashMap<String, i64> {
    pairs.iter().map(|(name, runs)| ((*name).to_owned(), *runs)).collect()
}

#[tokio::test]
async fn two_replicas_run_each_periodic_task_once_per_interval_on_the_test_clock() {
    let feed_dir = tempfile::tempdir().unwrap();
    let feed = feed_dir.path().join("feed.json");
    std::fs::write(&feed, advisory()).unwrap();
    let backend = Backend::with(|c| scheduled(c, &feed)).await;
    let (a, b) = (backend.spawn().await, backend.spawn().await);
    let (ra, rb) = (a.app.job_runner(), b.app.job_runner());

    // At start: the feed and the mail run at once, once for both replicas.
    round(&[&ra, &rb]).await;
    round(&[&rb, &ra]).await;
    let at_start = expect(&[
        ("gc", 0),
        ("feed-sync", 1),
        ("mail", 1),
        ("pull-flush", 0),
        ("pull-fold", 0),
        ("renewals", 0),
        ("webhooks", 0),
        ("statements", 0),
        ("vulnerability-policy", 0),
    ]);
    assert_eq!(runs(&a).await, at_start);
    assert_eq!(a.app.scanning.feed_status().await.unwrap().advisories, 1, "the feed was imported");

    // An unreferenced blob, older than GC's grace period once a day has passed.
    let garbage = a.push_blob("sched/repo", b"never referenced").await;
    a.app.jobs.advance_test_clock(DAY).await.unwrap();
    round(&[&ra, &rb]).await;
    round(&[&rb, &ra]).await;
    // Daily GC once; the 6-hourly feed sync once, not four times; mail and the pull fold
    // once; the pull flush once in each replica.
    let after_a_day = expect(&[
        ("gc", 1),
        ("feed-sync", 2),
        ("mail", 2),
        ("pull-flush", 2),
        ("pull-fold", 1),
        ("renewals", 1),
        ("webhooks", 1),
        ("statements", 1),
        ("vulnerability-policy", 1),
    ]);
    assert_eq!(runs(&b).await, after_a_day);
    assert_eq!(b.get(&format!("/v2/sched/repo/blobs/{garbage}")).await.status(), StatusCode::NOT_FOUND, "GC ran");

    // Twelve hours on: the feed and the frequent tasks again; GC not before the next day.
    a.app.jobs.advance_test_clock(DAY / 2).await.unwrap();
    round(&[&ra, &rb]).await;
    round(&[&ra, &rb]).await;
    assert_eq!(
        runs(&a).await,
        expect(&[
            ("gc", 1),
            ("feed-sync", 3),
            ("mail", 3),
            ("pull-flush", 4),
            ("pull-fold", 2),
            ("renewals", 1),
            ("webhooks", 2),
            ("statements", 1),
            ("vulnerability-policy", 2)
        ])
    );
    b.app.jobs.advance_test_clock(DAY / 2).await.unwrap();
    round(&[&rb, &ra]).await;
    assert_eq!(runs(&a).await["gc"], 2, "the next day, GC once more");
}

/// The periodic tasks are spread over the replicas' workers, and a replica without
/// workers still flushes its own pull counts.
#[tokio::test]
async fn the_running_schedulers_share_the_work_and_a_replica_without_workers_flushes_its_pulls() {
    let feed_dir = tempfile::tempdir().unwrap();
    let feed = feed_dir.path().join("feed.json");
    std::fs::write(&feed, advisory()).unwrap();
    let backend = Backend::with(|c| scheduled(c, &feed)).await;
    let (a, b) = (backend.spawn().await, backend.spawn().await);
    let settings = |workers| slipway_jobs::RunnerSettings { workers, poll: Duration::from_millis(50), ..Default::default() };
    let runner = |t: &TestApp, workers| {
        let base = t.app.scanning.register(Runner::new(t.app.jobs.clone(), settings(workers)));
        t.app.schedules().into_iter().fold(base, Runner::schedule)
    };
    let (ra, rb) = (runner(&a, 2), runner(&b, 0));
    // A first round stores the schedules before the clock moves, as a running replica's has.
    round(&[&ra, &rb]).await;
    let (ha, hb) = (ra.start(), rb.start());
    // A pull counted in the memory of the replica without workers.
    a.push_image("sched/pulled", "latest", b"a layer").await;
    assert_eq!(b.get("/v2/sched/pulled/manifests/latest").await.status(), StatusCode::OK);
    a.app.jobs.advance_test_clock(DAY).await.unwrap();
    let done = |r: &HashMap<String, i64>| r.get("gc") == Some(&1) && r.get("feed-sync") == Some(&2);
    let waited = tokio::time::timeout(Duration::from_secs(30), async {
        while !done(&runs(&a).await) || stored_pulls(&a, "sched/pulled").await == 0 {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    });
    if waited.await.is_err() {
        panic!("the day's work did not run: {:?}, pulls {}", runs(&a).await, stored_pulls(&a, "sched/pulled").await);
    }
    ha.shutdown().await;
    hb.shutdown().await;
    let after = runs(&a).await;
    assert_eq!((after["gc"], after["feed-sync"]), (1, 2), "{after:?}");
}

/// The pulls of `repository` the registry has recorded in the database.
async fn stored_pulls(t: &TestApp, repository: &str) -> i64 {
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&t.app.config.database_url()).await.unwrap();
    let pulls = sqlx::query_scalar::<_, i64>("SELECT pulls FROM repository_pulls WHERE repository = $1")
        .bind(repository)
        .fetch_optional(&pool)
        .await
        .unwrap();
    pool.close().await;
    pulls.unwrap_or(0)
}

/// Runs the real binary on `t`'s data directory and database.
pub(crate) fn slipway(t: &TestApp, test_clock: bool, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"));
    command.current_dir(dir.path()).arg("--data-dir").arg(&t.app.config.data_dir).arg("--database-url").arg(t.app.config.database_url());
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SLIPWAY_")) {
        command.env_remove(name);
    }
    if test_clock {
        command.env("SLIPWAY_TESTING__CLOCK", "true");
    }
    command.env("SLIPWAY_LOG__FILTER", "error");
    command.args(args).output().expect("slipway runs")
}

pub(crate) fn stdout(output: &Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub(crate) fn refused(output: &Output) -> String {
    assert!(!output.status.success(), "{}", String::from_utf8_lossy(&output.stdout));
    String::from_utf8_lossy(&output.stderr).into_owned()
}

#[tokio::test]
async fn admin_clock_show_and_advance_through_the_binary() {
    let t = Backend::with(|c| c.testing.clock = true).await.spawn().await;
    let shown = stdout(&slipway(&t, true, &["admin", "clock", "show"]));
    assert!(shown.contains("kind    test\n") && shown.contains("offset  0s\n"), "{shown}");
    let time = shown.lines().next().unwrap().strip_prefix("time    ").unwrap().to_owned();
    let before = humantime::parse_rfc3339(&time).unwrap();

    let advanced = stdout(&slipway(&t, true, &["admin", "clock", "advance", "36h"]));
    assert!(advanced.contains("advanced the test clock by 1day 12h") && advanced.contains("offset  1day 12h\n"), "{advanced}");
    let shown = stdout(&slipway(&t, true, &["admin", "clock", "show"]));
    let after = humantime::parse_rfc3339(shown.lines().next().unwrap().strip_prefix("time    ").unwrap()).unwrap();
    let moved = after.duration_since(before).unwrap();
    assert!(moved >= Duration::from_secs(36 * 3600) && moved < Duration::from_secs(36 * 3600 + 60), "{moved:?}");
    // The running app follows at its next round.
    t.app.jobs.sync_test_clock().await.unwrap();
    assert_eq!(t.app.jobs.clock().offset(), Duration::from_secs(36 * 3600));

    for (step, error) in [
        ("0s", "above zero"),
        ("-1d", "forward only"),
        ("soon", "not a duration like 1d, 36h or 30m"),
        ("3661d", "at most 3660 days at once"),
    ] {
        let stderr = refused(&slipway(&t, true, &["admin", "clock", "advance", step]));
        assert!(stderr.contains(error), "{step}: {stderr}");
    }
    let stderr = refused(&slipway(&t, false, &["admin", "clock", "advance", "1d"]));
    assert!(stderr.contains("the test clock is off: set `[testing] clock = true`"), "{stderr}");
    let system = stdout(&slipway(&t, false, &["admin", "clock", "show"]));
    assert!(system.contains("kind    system\n") && system.contains("offset  0s\n"), "{system}");
    let shown = stdout(&slipway(&t, true, &["admin", "clock", "show"]));
    assert!(shown.contains("offset  1day 12h\n"), "refused steps moved nothing: {shown}");
}

#[tokio::test]
async fn jobs_status_shows_each_schedules_latest_run_and_the_queue() {
    let feed_dir = tempfile::tempdir().unwrap();
    let t = Backend::with(|c| scheduled(c, &feed_dir.path().join("missing.json"))).await.spawn().await;
    let runner = t.app.job_runner();
    round(&[&runner]).await;
    t.app.scanning.enqueue_scan("sched/repo", &format!("sha256:{}", "a".repeat(64))).await.unwrap();

    let status = stdout(&slipway(&t, true, &["jobs", "status"]));
    let mut lines = status.lines();
    let header = lines.next().unwrap();
    assert_eq!(
        header.split_whitespace().collect::<Vec<_>>(),
        ["SCHEDULE", "SCOPE", "INTERVAL", "LAST", "RUN", "DURATION", "OUTCOME", "NEXT", "RUN", "ERROR"]
    );
    let row =
        |name: &str| status.lines().find(|l| l.starts_with(&format!("{name} "))).unwrap_or_else(|| panic!("{name}: {status}")).to_owned();
    let gc = row("gc");
    assert!(gc.contains("cluster") && gc.contains(" 1day ") && gc.contains(" never "), "{gc}");
    let mail = row("mail");
    assert!(mail.contains(" 2s ") && mail.contains(" done "), "{mail}");
    let feed_sync = row("feed-sync");
    assert!(feed_sync.contains(" 6h ") && feed_sync.contains(" failed "), "a broken feed fails its run: {feed_sync}");
    assert!(row("pull-flush").contains("replica"), "{status}");
    let queue = status.split("\n\n").nth(1).expect("the queue table");
    assert!(queue.starts_with("KIND") && queue.contains("WAITING  RUNNING  FAILED"), "{queue}");
    let counts = |kind: &str| -> Vec<String> {
        let line = queue.lines().find(|l| l.starts_with(&format!("{kind} "))).unwrap_or_else(|| panic!("{kind}: {queue}"));
        line.split_whitespace().skip(1).map(String::from).collect()
    };
    assert_eq!(counts("scan_image"), ["1", "0", "0"], "waiting, running, failed");
    assert_eq!(counts("feed-sync"), ["0", "0", "1"], "the failed run is kept until the next slot revives it");
}

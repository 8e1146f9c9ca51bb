//! `slipway jobs ...`: the job queue and the schedules from the command line. Works on the
//! same database as `serve`, also while it runs.

use std::fmt::Write as _;
use std::time::{Duration, UNIX_EPOCH};

use clap::Subcommand;
use slipway_db::{JobCounts, ScheduleRecord};

use crate::App;
use crate::scan::printable::printable;

#[derive(Subcommand)]
pub enum JobsCommand {
    /// Show every schedule's latest run and next run, and the queued jobs by kind.
    Status,
    /// Run a schedule's task once, here and now (e.g. `vulnerability-policy` after moving
    /// the test clock), and print how long it took.
    Run {
        /// The schedule's name, as `slipway jobs status` shows it.
        schedule: String,
    },
}

pub async fn run(app: &App, command: JobsCommand) -> anyhow::Result<()> {
    match command {
        JobsCommand::Status => {
            app.jobs.sync_test_clock().await?;
            print!("{}", status(&app.jobs.schedules().await?, &app.jobs.job_counts().await?));
        }
        JobsCommand::Run { schedule } => {
            let schedules = app.schedules();
            let Some(found) = schedules.iter().find(|s| s.name() == schedule) else {
                let names: Vec<&str> = schedules.iter().map(|s| s.name()).collect();
                anyhow::bail!("no schedule {schedule:?}: one of {}", names.join(", "));
            };
            app.jobs.sync_test_clock().await?;
            let started = std::time::Instant::now();
            found.run_now().await?;
            println!("{schedule}: done in {:.3} s", started.elapsed().as_secs_f64());
        }
    }
    Ok(())
}

/// Two tables: the schedules, then the queue by kind.
pub fn status(schedules: &[ScheduleRecord], counts: &[JobCounts]) -> String {
    let mut rows =
        vec![["SCHEDULE", "SCOPE", "INTERVAL", "LAST RUN", "DURATION", "OUTCOME", "NEXT RUN", "ERROR"].map(String::from).to_vec()];
    for s in schedules {
        rows.push(vec![
            s.name.clone(),
            s.scope.clone(),
            humantime::format_duration(Duration::from_millis(u64::try_from(s.interval_ms).unwrap_or_default())).to_string(),
            s.last_started_at.map_or_else(|| "never".into(), time),
            s.last_duration_ms.map_or_else(|| "-".into(), |ms| format!("{ms}ms")),
            s.last_outcome.clone().unwrap_or_else(|| "-".into()),
            time(s.next_run_at),
            // A run's error can quote a remote server (a feed URL's answer): written out,
            // not acted on by the terminal.
            s.last_error.as_deref().map(|e| printable(e).into_owned()).unwrap_or_default(),
        ]);
    }
    let mut out = table(&rows);
    out.push('\n');
    let mut queue = vec![["KIND", "WAITING", "RUNNING", "FAILED"].map(String::from).to_vec()];
    for c in counts {
        queue.push(vec![c.kind.clone(), (c.pending - c.running).to_string(), c.running.to_string(), c.failed.to_string()]);
    }
    out.push_str(&table(&queue));
    out
}

fn time(unix_ms: i64) -> String {
    humantime::format_rfc3339_seconds(UNIX_EPOCH + Duration::from_millis(u64::try_from(unix_ms).unwrap_or_default())).to_string()
}

/// Left-aligned columns two spaces apart; the last column is not padded.
fn table(rows: &[Vec<String>]) -> String {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns).map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0)).collect();
    let mut out = String::new();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

//! `slipway feed ...`: the OSV vulnerability feed from the command line. Works on the same
//! database as `serve`, also while it runs; the re-assessment an import queues runs in
//! `serve`'s job workers.

use std::path::PathBuf;

use clap::Subcommand;

use crate::App;

#[derive(Subcommand)]
pub enum FeedCommand {
    /// Import OSV JSON files, directories of them, or osv.dev's per-ecosystem zip archives.
    Import {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
    },
    /// Fetch the configured feed.urls and import those that changed.
    Sync,
    /// Show the stored feed, recent imports, sources, and the scanning queue.
    Status,
}

pub async fn run(app: &App, command: FeedCommand) -> anyhow::Result<()> {
    match command {
        FeedCommand::Import { paths } => {
            let source = paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(" ");
            let import = app.scanning.import_feed(&paths, &format!("import {source}")).await?;
            for rejected in &import.rejected {
                println!("rejected {}: {}", rejected.file, rejected.reason);
            }
            println!(
                "imported {}, updated {}, unchanged {}, rejected {} (feed revision {})",
                import.imported,
                import.updated,
                import.unchanged,
                import.rejected.len(),
                import.revision
            );
            if let Some(job) = &import.reassessment_job {
                println!("re-assessment of scanned images queued as job {job}");
            }
        }
        FeedCommand::Sync => {
            anyhow::ensure!(!app.config.feed.urls.is_empty(), "no feed.urls configured");
            let results = app.scanning.sync_feeds(&app.config.feed.urls).await;
            println!("{}", serde_json::to_string_pretty(&results)?);
            let failed = results.iter().filter(|r| r.error.is_some()).count();
            anyhow::ensure!(failed == 0, "{failed} feed URL(s) failed");
        }
        FeedCommand::Status => {
            println!("{}", serde_json::to_string_pretty(&app.scanning.feed_status().await?)?);
        }
    }
    Ok(())
}

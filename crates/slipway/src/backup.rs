//! `slipway backup DIR` and `slipway restore DIR`: a consistent copy of a running store,
//! and a new data directory (or database and bucket) made from one.
//!
//! The database is copied first, as one snapshot: SQLite through `VACUUM INTO` (a read
//! transaction, so pushes go on meanwhile), PostgreSQL through `pg_dump --snapshot` on a
//! snapshot exported by a transaction that also lists the blobs. The blobs copied are
//! exactly those the snapshot records, each checked against its digest as it is written;
//! a blob the snapshot records is always stored (a push stores bytes before it records
//! them), unless garbage collection deleted it after the snapshot, which fails the backup
//! with a message to run it again. Blobs pushed after the snapshot are not in it, as
//! nothing in the copied database refers to them. The token-signing keys go along, so
//! tokens and sessions issued before stay valid.
//!
//! Everything is written under a temporary name beside DIR and renamed to DIR when
//! complete: a DIR that exists is a whole backup.
//!
//! Layout: `backup.json` (what, when, and every blob with its size), `database.sqlite` or
//! `database.pgdump` (pg_dump's custom format), `keys/`, and `blobs/<algorithm>/<first
//! two hex>/<hex>` (the filesystem store's own layout).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use slipway_db::{Backend, Db};
use slipway_oci::Digest;
use slipway_storage::{BlobStore, UploadId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{App, Config};

/// Blobs copied at once: enough to keep S3 busy, few enough for the file descriptors.
const PARALLEL_BLOBS: usize = 4;
const FORMAT: u32 = 1;

#[derive(clap::Args)]
pub struct BackupArgs {
    /// The directory to write; it must not exist yet.
    pub dir: PathBuf,
    /// PostgreSQL only: the pg_dump to run (its major version at least the server's).
    #[arg(long, default_value = "pg_dump")]
    pub pg_dump: PathBuf,
}

#[derive(clap::Args)]
pub struct RestoreArgs {
    /// A directory `slipway backup` wrote.
    pub dir: PathBuf,
    /// PostgreSQL only: the pg_restore to run.
    #[arg(long, default_value = "pg_restore")]
    pub pg_restore: PathBuf,
}

/// `backup.json`.
#[derive(Debug, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub slipway_version: String,
    /// When the snapshot was taken (RFC 3339).
    pub created_at: String,
    /// `sqlite` or `postgres`: a backup restores into the same kind of database.
    pub database: String,
    pub blob_bytes: u64,
    pub blobs: Vec<BlobEntry>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct BlobEntry {
    pub digest: String,
    pub size: u64,
}

fn database_kind(backend: Backend) -> &'static str {
    match backend {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    }
}

/// Writes a backup of `app`'s store to `args.dir`.
pub async fn backup(app: &App, args: &BackupArgs) -> anyhow::Result<Manifest> {
    let dir = &args.dir;
    anyhow::ensure!(!dir.exists(), "{} exists: a backup goes into a new directory", dir.display());
    let name = dir.file_name().with_context(|| format!("{} names no directory", dir.display()))?;
    let partial = dir.with_file_name(format!(".{}.partial-{}", name.to_string_lossy(), std::process::id()));
    std::fs::create_dir_all(&partial).with_context(|| format!("creating {}", partial.display()))?;
    match write_backup(app, args, &partial).await {
        Ok(manifest) => {
            std::fs::rename(&partial, dir).with_context(|| format!("renaming {} to {}", partial.display(), dir.display()))?;
            sync_dir(dir.parent().unwrap_or(Path::new(".")))?;
            Ok(manifest)
        }
        Err(e) => {
            let _ = std::fs::remove_dir_all(&partial);
            Err(e)
        }
    }
}

async fn write_backup(app: &App, args: &BackupArgs, out: &Path) -> anyhow::Result<Manifest> {
    let created_at = humantime::format_rfc3339_seconds(SystemTime::UNIX_EPOCH + Duration::from_millis(app.db.clock().now_ms() as u64));
    let blobs = match app.db.backend() {
        Backend::Sqlite => {
            let copy = out.join("database.sqlite");
            app.db.copy_sqlite_into(&copy).await.context("copying the SQLite database")?;
            // The inventory comes from the copy itself.
            let snapshot = Db::connect(&format!("sqlite://{}", copy.display())).await.context("opening the copied database")?;
            let blobs = snapshot.registry().recorded_blobs().await;
            snapshot.close().await;
            blobs?
        }
        Backend::Postgres => {
            let file = out.join("database.pgdump");
            let url = app.config.database_url();
            let (blobs, dumped) =
                app.db.registry().recorded_blobs_in_exported_snapshot(|snapshot| pg_dump(&args.pg_dump, url, snapshot, file)).await?;
            dumped?;
            blobs
        }
    };
    copy_keys(&keys_dir(&app.config), &out.join("keys"))?;
    let store = app.registry.store().clone();
    let blobs_dir = out.join("blobs");
    let entries: Vec<BlobEntry> = futures::stream::iter(blobs)
        .map(|(digest, size)| {
            let (store, blobs_dir) = (store.clone(), blobs_dir.clone());
            async move {
                let parsed: Digest = digest.parse().with_context(|| format!("recorded blob {digest:?} is not a digest"))?;
                let size = u64::try_from(size).with_context(|| format!("blob {digest} has size {size}"))?;
                copy_blob_out(&*store, &parsed, size, &blob_path(&blobs_dir, &parsed)).await?;
                anyhow::Ok(BlobEntry { digest, size })
            }
        })
        .buffered(PARALLEL_BLOBS)
        .try_collect()
        .await?;
    let manifest = Manifest {
        format: FORMAT,
        slipway_version: env!("CARGO_PKG_VERSION").to_owned(),
        created_at: created_at.to_string(),
        database: database_kind(app.db.backend()).to_owned(),
        blob_bytes: entries.iter().map(|b| b.size).sum(),
        blobs: entries,
    };
    let path = out.join("backup.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&manifest)?).with_context(|| format!("writing {}", path.display()))?;
    std::fs::File::open(&path)?.sync_all()?;
    sync_dir(out)?;
    Ok(manifest)
}

/// Runs pg_dump on the exported snapshot. The password goes in PGPASSWORD rather than on
/// the command line, where other local users could read it.
async fn pg_dump(program: &Path, url: String, snapshot: String, file: PathBuf) -> anyhow::Result<()> {
    let (url, password) = split_password(&url)?;
    let mut command = tokio::process::Command::new(program);
    command.arg("--format=custom").arg(format!("--snapshot={snapshot}")).arg("--file").arg(&file).arg("--dbname").arg(url);
    if let Some(password) = password {
        command.env("PGPASSWORD", password);
    }
    run(command, "pg_dump").await
}

async fn run(mut command: tokio::process::Command, what: &str) -> anyhow::Result<()> {
    let output = command
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .with_context(|| format!("running {what} (install PostgreSQL's client tools, or name it with --{what} PATH)"))?;
    anyhow::ensure!(output.status.success(), "{what} failed ({}): {}", output.status, String::from_utf8_lossy(&output.stderr).trim());
    Ok(())
}

fn split_password(url: &str) -> anyhow::Result<(String, Option<String>)> {
    let mut parsed = url::Url::parse(url).context("the database URL")?;
    let password = parsed.password().map(|p| percent_encoding::percent_decode_str(p).decode_utf8_lossy().into_owned());
    let _ = parsed.set_password(None);
    Ok((parsed.to_string(), password))
}

fn keys_dir(config: &Config) -> PathBuf {
    config.auth.keys_dir.clone().unwrap_or_else(|| config.data_dir.join("keys"))
}

/// Copies the regular files of `from` (the signing keys) into a new `to`.
fn copy_keys(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let entries = match std::fs::read_dir(from) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("reading {}", from.display())),
    };
    for entry in entries {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            let target = to.join(entry.file_name());
            std::fs::copy(entry.path(), &target).with_context(|| format!("copying {}", entry.path().display()))?;
            std::fs::File::open(&target)?.sync_all()?;
        }
    }
    sync_dir(to)
}

fn blob_path(blobs_dir: &Path, digest: &Digest) -> PathBuf {
    let hex = digest.hex();
    blobs_dir.join(digest.algorithm().as_str()).join(&hex[..2]).join(hex)
}

/// Copies one blob out of the store to `path`, checking its size and digest on the way.
async fn copy_blob_out(store: &dyn BlobStore, digest: &Digest, size: u64, path: &Path) -> anyhow::Result<()> {
    let blob = store.read(digest, None).await?.with_context(|| {
        format!("blob {digest} is recorded in the snapshot but no longer stored: garbage collection removed it during the backup; run the backup again")
    })?;
    if let Some(parent) = path.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let mut reader = blob.into_reader();
    let mut file = tokio::fs::File::create(path).await.with_context(|| format!("creating {}", path.display()))?;
    let mut hasher = digest.algorithm().hasher();
    let mut buf = vec![0u8; 256 * 1024];
    let mut written = 0u64;
    loop {
        let n = reader.read(&mut buf).await.with_context(|| format!("reading blob {digest}"))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
        file.write_all(&buf[..n]).await?;
        written += n as u64;
    }
    anyhow::ensure!(written == size, "blob {digest}: {written} bytes stored, {size} recorded");
    let actual = hasher.finish();
    anyhow::ensure!(actual == *digest, "blob {digest}: the stored bytes hash to {actual}");
    file.sync_all().await?;
    Ok(())
}

fn sync_dir(dir: &Path) -> anyhow::Result<()> {
    std::fs::File::open(dir).and_then(|d| d.sync_all()).with_context(|| format!("syncing {}", dir.display()))
}

/// What `restore` did.
#[derive(Debug, Serialize)]
pub struct RestoreReport {
    pub database: String,
    pub blobs_written: u64,
    pub blobs_already_stored: u64,
    pub blob_bytes: u64,
    pub problems: Vec<String>,
}

/// Makes the configured database, blob store and keys from the backup in `args.dir`. The
/// database must be new (no SQLite file; a PostgreSQL database without tables) and the
/// keys directory empty: a restore never overwrites a store.
pub async fn restore(config: Config, args: &RestoreArgs) -> anyhow::Result<RestoreReport> {
    let dir = &args.dir;
    let manifest: Manifest = serde_json::from_slice(
        &std::fs::read(dir.join("backup.json")).with_context(|| format!("{} is not a backup (no backup.json)", dir.display()))?,
    )
    .context("reading backup.json")?;
    anyhow::ensure!(
        manifest.format == FORMAT,
        "backup format {} is not {FORMAT}: restore it with the slipway that wrote it",
        manifest.format
    );
    let url = config.database_url();
    let target = if url.starts_with("sqlite:") { "sqlite" } else { "postgres" };
    anyhow::ensure!(
        target == manifest.database,
        "the backup holds a {} database and the configured one is {target}: restore into the same kind",
        manifest.database
    );
    let keys = keys_dir(&config);
    anyhow::ensure!(is_empty_dir(&keys)?, "{} already holds keys: restore into a new data directory", keys.display());
    crate::prepare_data_dir(&config.data_dir)?;
    match target {
        "sqlite" => {
            let path = sqlite_path(&url);
            anyhow::ensure!(!path.exists(), "{} exists: restore into a new data directory", path.display());
            let tmp = path.with_file_name(".slipway.db.restoring");
            std::fs::copy(dir.join("database.sqlite"), &tmp).context("copying the database")?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)?;
        }
        _ => {
            anyhow::ensure!(
                slipway_db::database_is_empty(&url).await.context("looking at the configured database")?,
                "the configured PostgreSQL database has tables: restore into a new, empty database"
            );
            let (url, password) = split_password(&url)?;
            let mut command = tokio::process::Command::new(&args.pg_restore);
            command
                .args(["--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction", "--dbname"])
                .arg(url)
                .arg(dir.join("database.pgdump"));
            if let Some(password) = password {
                command.env("PGPASSWORD", password);
            }
            run(command, "pg_restore").await?;
        }
    }
    copy_keys(&dir.join("keys"), &keys)?;
    let app = App::build(config).await.context("opening the restored store")?;
    let store = app.registry.store().clone();
    // A bucket the database is restored next to may hold the blobs already.
    let stored: std::collections::HashSet<Digest> = store.list_blobs().await?.into_iter().map(|o| o.key).collect();
    let blobs_dir = dir.join("blobs");
    let written: Vec<bool> = futures::stream::iter(&manifest.blobs)
        .map(|entry| {
            let (store, blobs_dir, stored) = (store.clone(), blobs_dir.clone(), &stored);
            async move {
                let digest: Digest = entry.digest.parse().with_context(|| format!("backup.json: {:?} is not a digest", entry.digest))?;
                if stored.contains(&digest) {
                    return Ok(false);
                }
                copy_blob_in(store, &digest, entry.size, &blob_path(&blobs_dir, &digest)).await?;
                anyhow::Ok(true)
            }
        })
        .buffered(PARALLEL_BLOBS)
        .try_collect()
        .await?;
    let report = app.registry.verify().await?;
    let blobs_written = written.iter().filter(|w| **w).count() as u64;
    Ok(RestoreReport {
        database: manifest.database,
        blobs_written,
        blobs_already_stored: written.len() as u64 - blobs_written,
        blob_bytes: manifest.blob_bytes,
        problems: report.problems,
    })
}

fn is_empty_dir(dir: &Path) -> anyhow::Result<bool> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => Ok(entries.next().is_none()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
        Err(e) => Err(e).with_context(|| format!("reading {}", dir.display())),
    }
}

/// Stores one blob from the backup through the store's own upload path, which checks the
/// digest before anything becomes visible.
async fn copy_blob_in(store: Arc<dyn BlobStore>, digest: &Digest, size: u64, path: &Path) -> anyhow::Result<()> {
    let file = tokio::fs::File::open(path).await.with_context(|| format!("the backup lacks blob {digest} ({})", path.display()))?;
    let upload = UploadId::new();
    let body = tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).boxed();
    let result = async {
        let len = store.append(&upload, 0, digest.algorithm(), body).await?;
        anyhow::ensure!(len == size, "blob {digest}: the backup holds {len} bytes, {size} recorded");
        store.seal(&upload, len, digest).await?.commit().await?;
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        let _ = store.abort(&upload).await;
    }
    result
}

/// The file of a `sqlite://PATH?OPTIONS` URL.
fn sqlite_path(url: &str) -> PathBuf {
    let rest = url.trim_start_matches("sqlite:").trim_start_matches("//");
    PathBuf::from(rest.split('?').next().unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_password_leaves_the_url_for_the_environment() {
        let (url, password) = split_password("postgres://slipway:p%40ss+w@db.internal:5432/store?sslmode=require").unwrap();
        assert_eq!(url, "postgres://slipway@db.internal:5432/store?sslmode=require");
        assert_eq!(password.as_deref(), Some("p@ss+w"));
        let (url, password) = split_password("postgres://slipway@db/store").unwrap();
        assert_eq!((url.as_str(), password), ("postgres://slipway@db/store", None));
    }

    #[test]
    fn a_sqlite_url_names_its_file() {
        assert_eq!(sqlite_path("sqlite:///var/lib/slipway/slipway.db"), Path::new("/var/lib/slipway/slipway.db"));
        assert_eq!(sqlite_path("sqlite://data/slipway.db?mode=rwc"), Path::new("data/slipway.db"));
    }
}

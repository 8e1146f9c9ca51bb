//! `slipway backup` and `slipway restore` (issue 19): a backup taken while pushes go on
//! restores into a new store that pulls every backed-up image byte for byte, on each
//! backend pair (SQLite + filesystem; PostgreSQL + S3 with pg_dump and pg_restore).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use reqwest::StatusCode;
use slipway::backup::{BackupArgs, RestoreArgs};
use slipway_test_support::{Backend, TestApp, random_bytes};

fn backup_args(dir: &std::path::Path) -> BackupArgs {
    BackupArgs { dir: dir.to_owned(), pg_dump: "pg_dump".into() }
}

fn restore_args(dir: &std::path::Path) -> RestoreArgs {
    RestoreArgs { dir: dir.to_owned(), pg_restore: "pg_restore".into() }
}

/// The manifest's bytes and its one layer's bytes, as a client pulls them.
async fn pull(t: &TestApp, repo: &str, tag: &str) -> Option<(Vec<u8>, Vec<u8>)> {
    let manifest = t.get(&format!("/v2/{repo}/manifests/{tag}")).await;
    if manifest.status() == StatusCode::NOT_FOUND {
        return None;
    }
    assert_eq!(manifest.status(), StatusCode::OK);
    let bytes = manifest.bytes().await.unwrap().to_vec();
    let json: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let layer = json["layers"][0]["digest"].as_str().unwrap();
    let blob = t.get(&format!("/v2/{repo}/blobs/{layer}")).await;
    assert_eq!(blob.status(), StatusCode::OK, "{repo}:{tag} layer {layer}");
    Some((bytes, blob.bytes().await.unwrap().to_vec()))
}

fn keys(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut keys: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap())
        })
        .collect();
    keys.sort();
    keys
}

#[tokio::test]
async fn a_backup_taken_during_pushes_restores_every_image_byte_for_byte() {
    let source = Backend::new().await;
    let t = source.spawn().await;
    let mut images = Vec::new();
    for i in 0..6 {
        let repo = format!("team/app{i}");
        t.push_image(&repo, "v1", &random_bytes(1000 + i * 70_000)).await;
        images.push(repo);
    }
    // Pushes go on while the backup runs.
    let stop = Arc::new(AtomicBool::new(false));
    let pusher = {
        let (t, stop) = (source.spawn().await, stop.clone());
        tokio::spawn(async move {
            let mut pushed = 0;
            while !stop.load(Ordering::SeqCst) && pushed < 200 {
                t.push_image("team/busy", &format!("n{pushed}"), &random_bytes(20_000)).await;
                pushed += 1;
            }
            pushed
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("backup");
    let manifest = slipway::backup::backup(&t.app, &backup_args(&dir)).await.unwrap();
    stop.store(true, Ordering::SeqCst);
    let pushed_during = pusher.await.unwrap();
    assert!(pushed_during > 0);
    assert!(manifest.blobs.len() >= 12, "{}", manifest.blobs.len());
    // Only the finished backup is there, under its name.
    let names: Vec<_> = std::fs::read_dir(work.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("backup")]);
    // A second backup does not write over the first.
    let again = slipway::backup::backup(&t.app, &backup_args(&dir)).await.unwrap_err().to_string();
    assert!(again.contains("exists"), "{again}");

    // Restored into a new store: a new data directory, or a new database and key prefix.
    let target = Backend::new().await;
    let report = slipway::backup::restore(target.config().clone(), &restore_args(&dir)).await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.blobs_written as usize, manifest.blobs.len());
    let r = target.spawn().await;
    for repo in &images {
        assert_eq!(pull(&r, repo, "v1").await.expect("restored"), pull(&t, repo, "v1").await.unwrap(), "{repo}");
    }
    // What was pushed during the backup is in it whole or not at all.
    let mut restored_during = 0;
    for n in 0..pushed_during {
        if let Some(image) = pull(&r, "team/busy", &format!("n{n}")).await {
            assert_eq!(Some(image), pull(&t, "team/busy", &format!("n{n}")).await);
            restored_during += 1;
        }
    }
    let report = r.app.registry.verify().await.unwrap();
    assert!(report.problems.is_empty(), "{:?}", report.problems);
    assert_eq!(report.blobs_recorded as usize, manifest.blobs.len(), "{restored_during} pushed during the backup restored");
    // The signing keys came along: tokens and sessions issued before stay valid.
    let keys_of = |b: &Backend| b.config().auth.keys_dir.clone().unwrap_or_else(|| b.config().data_dir.join("keys"));
    assert_eq!(keys(&keys_of(&target)), keys(&keys_of(&source)));

    // A restore never writes over a store.
    let refused = slipway::backup::restore(target.config().clone(), &restore_args(&dir)).await.unwrap_err().to_string();
    assert!(refused.contains("keys") || refused.contains("exists") || refused.contains("tables"), "{refused}");
}

/// A blob the snapshot records but garbage collection removed before it was copied fails
/// the backup, with what to do, and leaves nothing behind.
#[tokio::test]
async fn a_blob_removed_during_the_backup_fails_it_cleanly() {
    let t = Backend::new().await.spawn().await;
    t.push_image("team/app", "v1", &random_bytes(5000)).await;
    let orphan = t.push_blob("team/app", &random_bytes(3000)).await;
    t.app.registry.store().delete(&orphan).await.unwrap();
    let work = tempfile::tempdir().unwrap();
    let error = format!("{:#}", slipway::backup::backup(&t.app, &backup_args(&work.path().join("b"))).await.unwrap_err());
    assert!(error.contains("garbage collection") && error.contains("run the backup again"), "{error}");
    assert_eq!(std::fs::read_dir(work.path()).unwrap().count(), 0);
}

/// A backup holds the kind of database it came from: restoring it into the other kind is
/// refused before anything is written.
#[tokio::test]
async fn a_backup_restores_only_into_the_same_kind_of_database() {
    let t = Backend::new().await.spawn().await;
    let work = tempfile::tempdir().unwrap();
    let dir = work.path().join("b");
    let manifest = slipway::backup::backup(&t.app, &backup_args(&dir)).await.unwrap();
    let mut other = Backend::new().await.config().clone();
    let data_dir = work.path().join("other");
    other.data_dir = data_dir.clone();
    other.database_url = Some(slipway::config::Secret::new(if manifest.database == "sqlite" {
        "postgres://nobody@127.0.0.1:1/none".to_owned()
    } else {
        format!("sqlite://{}/slipway.db", data_dir.display())
    }));
    let error = slipway::backup::restore(other, &restore_args(&dir)).await.unwrap_err().to_string();
    assert!(error.contains("restore into the same kind"), "{error}");
    assert!(!data_dir.exists());
}

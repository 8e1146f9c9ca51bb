//! `slipway ledger verify` through the real binary: a sound ledger passes, and a ledger
//! whose stored rows were altered behind the application's back fails, naming the
//! transaction.

use std::process::Output;

use slipway_db::{LedgerEntry, NewLedgerTransaction};
use slipway_test_support::{Backend, TestApp};

/// Runs the real binary on `t`'s data directory and database.
fn slipway(t: &TestApp, args: &[&str]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_slipway"));
    command.current_dir(dir.path()).arg("--data-dir").arg(&t.app.config.data_dir).arg("--database-url").arg(t.app.config.database_url());
    for (name, _) in std::env::vars().filter(|(name, _)| name.starts_with("SLIPWAY_")) {
        command.env_remove(name);
    }
    command.env("SLIPWAY_LOG__FILTER", "error");
    command.args(args).output().expect("slipway runs")
}

fn entry(account: &str, currency: &str, amount: i64) -> LedgerEntry {
    LedgerEntry { account: account.into(), currency: currency.into(), amount }
}

#[tokio::test]
async fn ledger_verify_passes_a_sound_ledger_and_names_a_corrupted_transaction() {
    let t = Backend::new().await.spawn().await;
    let empty = slipway(&t, &["ledger", "verify"]);
    assert!(empty.status.success(), "{}", String::from_utf8_lossy(&empty.stderr));
    assert!(String::from_utf8_lossy(&empty.stdout).starts_with("transactions  0\nentries       0\ncurrencies    -\nproblems      0\n"));

    let ledger = t.app.db.ledger();
    let charge = [entry("cash:sandbox", "USD", 1_200), entry("platform:fees", "USD", -180), entry("publisher:acme:payable", "USD", -1_020)];
    let yen = [entry("cash:sandbox", "JPY", 500), entry("customer:7", "JPY", -500)];
    for (id, entries) in [("txn-charge", &charge[..]), ("txn-yen", &yen[..])] {
        // Posted directly, not by a checkout: kind "adjustment", which needs no invoice.
        let new = NewLedgerTransaction { id, kind: "adjustment", reference: "inv-1", idempotency_key: id, entries };
        ledger.post(&new).await.unwrap();
    }
    let sound = slipway(&t, &["ledger", "verify"]);
    let out = String::from_utf8_lossy(&sound.stdout);
    assert!(sound.status.success(), "{out}{}", String::from_utf8_lossy(&sound.stderr));
    assert_eq!(out, "transactions  2\nentries       5\ncurrencies    JPY, USD\nproblems      0\nrecords       agree with the ledger\n");

    // A charge in the ledger with no invoice behind it: balanced, but the records disagree.
    let orphan = [entry("cash:sandbox", "USD", 100), entry("platform:fees", "USD", -100)];
    let new =
        NewLedgerTransaction { id: "txn-orphan", kind: "charge", reference: "inv-missing", idempotency_key: "orphan", entries: &orphan };
    ledger.post(&new).await.unwrap();
    let disagreeing = slipway(&t, &["ledger", "verify"]);
    let out = String::from_utf8_lossy(&disagreeing.stdout);
    assert!(!disagreeing.status.success(), "{out}");
    assert!(
        out.contains("problems      0\n") && out.contains("ledger transaction txn-orphan records a charge or refund with no invoice"),
        "{out}"
    );
    assert!(String::from_utf8_lossy(&disagreeing.stderr).contains("1 record(s) disagree with the ledger"));

    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&t.app.config.database_url()).await.unwrap();
    let changed = sqlx::query("UPDATE ledger_entries SET amount = -179 WHERE transaction_id = 'txn-charge' AND account = 'platform:fees'")
        .execute(&pool)
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    pool.close().await;

    let corrupted = slipway(&t, &["ledger", "verify"]);
    let out = String::from_utf8_lossy(&corrupted.stdout);
    assert!(!corrupted.status.success(), "{out}");
    assert!(out.contains("problems      1\n") && out.contains("transaction txn-charge: its USD entries sum to 1, not 0\n"), "{out}");
    assert!(!out.contains("txn-yen"), "{out}");
    assert!(String::from_utf8_lossy(&corrupted.stderr).contains("the ledger has 1 problem(s)"));
}

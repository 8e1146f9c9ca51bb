//! The double-entry ledger: every money movement is one transaction of entries that sum
//! to zero in each currency (a debit is a positive amount, a credit a negative one).
//!
//! A transaction is checked before it is written and written whole: its row and all its
//! entries in one database transaction. Business code that records a money movement
//! (a charge, a refund, a payout) writes the ledger inside its own database transaction
//! with `post_in`, so the business change and its ledger transaction commit together or
//! not at all. `verify` re-checks the stored ledger for `slipway ledger verify`.

use std::collections::{BTreeMap, BTreeSet};

use slipway_types::{Clock, Currency};
use sqlx::{Any, Transaction};

use crate::{DbError, LedgerDb};

/// Entries one transaction may have: a charge with tax, fee and share has five or six.
pub const MAX_ENTRIES: usize = 64;
/// The longest account name, kind, reference or idempotency key.
pub const MAX_NAME_LEN: usize = 200;
/// Problems `verify` lists; past this it only counts them.
pub const MAX_PROBLEMS: usize = 1_000;
/// Balances `balances` returns at most.
pub const MAX_BALANCES: i64 = 10_000;
/// Transactions `verify` reads per page.
const VERIFY_PAGE: i64 = 5_000;

/// One leg of a transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LedgerEntry {
    pub account: String,
    /// An ISO 4217 code, checked when posted.
    pub currency: String,
    /// Minor units: a debit positive, a credit negative.
    pub amount: i64,
}

/// A transaction to post.
#[derive(Clone, Debug)]
pub struct NewLedgerTransaction<'a> {
    pub id: &'a str,
    pub kind: &'a str,
    pub reference: &'a str,
    pub idempotency_key: &'a str,
    pub entries: &'a [LedgerEntry],
}

/// What a post did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Posted {
    /// The transaction's id: the new one, or the one first posted under the key.
    pub id: String,
    /// True when the key had been posted before and nothing was written.
    pub replayed: bool,
}

/// Something wrong in the stored ledger.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LedgerProblem {
    /// The transaction's entries in `currency` sum to `sum`, not zero.
    Unbalanced { transaction: String, currency: String, sum: i128 },
    /// The transaction has no entries at all.
    NoEntries { transaction: String },
    /// An entry of the transaction is in something that is not an active ISO 4217 code.
    BadCurrency { transaction: String, currency: String },
}

impl std::fmt::Display for LedgerProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LedgerProblem::Unbalanced { transaction, currency, sum } => {
                write!(f, "transaction {transaction}: its {currency} entries sum to {sum}, not 0")
            }
            LedgerProblem::NoEntries { transaction } => write!(f, "transaction {transaction}: no entries"),
            LedgerProblem::BadCurrency { transaction, currency } => {
                write!(f, "transaction {transaction}: an entry in {currency:?}, not an ISO 4217 currency")
            }
        }
    }
}

/// What `verify` found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct LedgerReport {
    pub transactions: u64,
    pub entries: u64,
    /// Every currency the entries use.
    pub currencies: BTreeSet<String>,
    /// The first `MAX_PROBLEMS` problems.
    pub problems: Vec<LedgerProblem>,
    /// All problems found, listed or not.
    pub problem_count: u64,
}

impl LedgerReport {
    fn found(&mut self, problem: LedgerProblem) {
        self.problem_count += 1;
        if self.problems.len() < MAX_PROBLEMS {
            self.problems.push(problem);
        }
    }
}

/// An account's balance in one currency.
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct LedgerBalance {
    pub account: String,
    pub currency: String,
    /// Minor units: debits less credits.
    pub balance: i64,
}

fn refuse(why: String) -> DbError {
    DbError::Ledger(why)
}

/// The checks a transaction passes before anything is written.
fn check(new: &NewLedgerTransaction<'_>) -> Result<(), DbError> {
    for (what, value) in [("id", new.id), ("kind", new.kind), ("reference", new.reference), ("idempotency key", new.idempotency_key)] {
        if value.is_empty() || value.len() > MAX_NAME_LEN {
            return Err(refuse(format!("a ledger transaction's {what} has 1 to {MAX_NAME_LEN} bytes")));
        }
    }
    if new.entries.len() < 2 || new.entries.len() > MAX_ENTRIES {
        return Err(refuse(format!("a ledger transaction has 2 to {MAX_ENTRIES} entries, not {}", new.entries.len())));
    }
    let mut sums: BTreeMap<Currency, i128> = BTreeMap::new();
    for entry in new.entries {
        if entry.account.is_empty() || entry.account.len() > MAX_NAME_LEN {
            return Err(refuse(format!("a ledger account name has 1 to {MAX_NAME_LEN} bytes")));
        }
        let currency = Currency::parse(&entry.currency).map_err(|e| refuse(e.to_string()))?;
        if entry.amount == 0 {
            return Err(refuse(format!("the entry for {} is zero: every entry moves money", entry.account)));
        }
        // i128: 64 entries of i64 cannot overflow it, so an overflowing set is reported
        // as unbalanced rather than wrapping into a false zero.
        *sums.entry(currency).or_default() += i128::from(entry.amount);
    }
    if let Some((currency, sum)) = sums.iter().find(|(_, sum)| **sum != 0) {
        return Err(refuse(format!("the {currency} entries sum to {sum}, not 0: debits and credits must balance")));
    }
    Ok(())
}

/// Posts `new` inside `tx`, a write transaction the caller began and commits: for business
/// code in this crate that must record a money movement in the same database transaction
/// as the change it belongs to. Checks it first (`DbError::Ledger` when it does not
/// balance, has fewer than 2 or more than `MAX_ENTRIES` entries, a zero entry or an unknown
/// currency); a key posted before returns that transaction, replayed, writing nothing,
/// if it is the same movement (kind, reference and entries), else `DbError::Conflict`: a
/// key reused for another movement is a caller's bug, never a silent success.
pub(crate) async fn post_in(tx: &mut Transaction<'static, Any>, clock: &Clock, new: &NewLedgerTransaction<'_>) -> Result<Posted, DbError> {
    check(new)?;
    // On PostgreSQL a concurrent post of the same key waits here for the other to commit,
    // then inserts nothing; on SQLite the write transactions run one at a time.
    let inserted = sqlx::query_scalar::<Any, String>(
        "INSERT INTO ledger_transactions (id, kind, reference, idempotency_key, created_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (idempotency_key) DO NOTHING RETURNING id",
    )
    .bind(new.id)
    .bind(new.kind)
    .bind(new.reference)
    .bind(new.idempotency_key)
    .bind(clock.now_ms())
    .fetch_optional(&mut **tx)
    .await?;
    let Some(id) = inserted else {
        let (id, kind, reference) = sqlx::query_as::<Any, (String, String, String)>(
            "SELECT id, kind, reference FROM ledger_transactions WHERE idempotency_key = $1",
        )
        .bind(new.idempotency_key)
        .fetch_one(&mut **tx)
        .await?;
        let entries = sqlx::query_as::<Any, (String, String, i64)>(
            "SELECT account, currency, amount FROM ledger_entries WHERE transaction_id = $1 ORDER BY id",
        )
        .bind(&id)
        .fetch_all(&mut **tx)
        .await?;
        let same = kind == new.kind
            && reference == new.reference
            && entries.len() == new.entries.len()
            && entries.iter().zip(new.entries).all(|((a, c, m), e)| *a == e.account && *c == e.currency && *m == e.amount);
        if !same {
            return Err(DbError::Conflict(format!(
                "idempotency key {:?} was used for another ledger transaction ({id})",
                new.idempotency_key
            )));
        }
        return Ok(Posted { id, replayed: true });
    };
    insert_entries(tx, std::slice::from_ref(new)).await?;
    Ok(Posted { id, replayed: false })
}

/// Posts several new transactions inside `tx` (renewals recorded together), each checked
/// like `post_in`; a key posted before is `DbError::Conflict` here, not a replay: these
/// come with the business records they belong to, which cannot have been written twice.
pub(crate) async fn post_all_in(
    tx: &mut Transaction<'static, Any>,
    clock: &Clock,
    all: &[NewLedgerTransaction<'_>],
) -> Result<(), DbError> {
    for new in all {
        check(new)?;
    }
    let now = clock.now_ms();
    for chunk in all.chunks(crate::BATCH_PARAMETERS / 5) {
        let sql = format!(
            "INSERT INTO ledger_transactions (id, kind, reference, idempotency_key, created_at) VALUES {}
             ON CONFLICT (idempotency_key) DO NOTHING",
            crate::values_list(chunk.len(), 5)
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for new in chunk {
            query = query.bind(new.id).bind(new.kind).bind(new.reference).bind(new.idempotency_key).bind(now);
        }
        if query.execute(&mut **tx).await?.rows_affected() != chunk.len() as u64 {
            return Err(DbError::Conflict("a ledger transaction's idempotency key was used before".into()));
        }
    }
    insert_entries(tx, all).await
}

/// The entries of transactions just inserted, in as few statements as the parameter
/// limit allows (their ids keep the order given).
async fn insert_entries(tx: &mut Transaction<'static, Any>, all: &[NewLedgerTransaction<'_>]) -> Result<(), DbError> {
    let rows: Vec<(&str, &LedgerEntry)> = all.iter().flat_map(|t| t.entries.iter().map(move |e| (t.id, e))).collect();
    for chunk in rows.chunks(crate::BATCH_PARAMETERS / 4) {
        let sql =
            format!("INSERT INTO ledger_entries (transaction_id, account, currency, amount) VALUES {}", crate::values_list(chunk.len(), 4));
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
        for (id, entry) in chunk {
            query = query.bind(*id).bind(&entry.account).bind(&entry.currency).bind(entry.amount);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

impl LedgerDb {
    /// Posts a transaction on its own: checked, then written whole or not at all.
    pub async fn post(&self, new: &NewLedgerTransaction<'_>) -> Result<Posted, DbError> {
        let mut tx = self.begin_write().await?;
        let posted = post_in(&mut tx, &self.clock, new).await?;
        tx.commit().await?;
        Ok(posted)
    }

    /// A transaction's entries, in the order they were posted.
    pub async fn entries(&self, transaction: &str) -> Result<Vec<LedgerEntry>, DbError> {
        let rows = sqlx::query_as::<Any, (String, String, i64)>(
            "SELECT account, currency, amount FROM ledger_entries WHERE transaction_id = $1 ORDER BY id",
        )
        .bind(transaction)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|(account, currency, amount)| LedgerEntry { account, currency, amount }).collect())
    }

    /// Balances per account and currency of the accounts whose names start with
    /// `account_prefix`, by account then currency; at most `limit` (capped at
    /// `MAX_BALANCES`).
    pub async fn balances(&self, account_prefix: &str, limit: i64) -> Result<Vec<LedgerBalance>, DbError> {
        // substr rather than LIKE: a prefix holding % or _ matches only itself.
        Ok(sqlx::query_as::<Any, LedgerBalance>(
            "SELECT account, currency, CAST(SUM(amount) AS BIGINT) AS balance FROM ledger_entries
             WHERE substr(account, 1, length($1)) = $1
             GROUP BY account, currency ORDER BY account, currency LIMIT $2",
        )
        .bind(account_prefix)
        .bind(limit.clamp(0, MAX_BALANCES))
        .fetch_all(&self.read)
        .await?)
    }

    /// Checks the whole stored ledger, a page of transactions at a time: every transaction
    /// has entries, each in an ISO 4217 currency, summing to zero per currency.
    pub async fn verify(&self) -> Result<LedgerReport, DbError> {
        let mut report = LedgerReport::default();
        let mut after = String::new();
        loop {
            let ids = sqlx::query_scalar::<Any, String>("SELECT id FROM ledger_transactions WHERE id > $1 ORDER BY id LIMIT $2")
                .bind(&after)
                .bind(VERIFY_PAGE)
                .fetch_all(&self.read)
                .await?;
            let Some(last) = ids.last().cloned() else { break };
            let rows = sqlx::query_as::<Any, (String, String, i64)>(
                "SELECT transaction_id, currency, amount FROM ledger_entries WHERE transaction_id > $1 AND transaction_id <= $2",
            )
            .bind(&after)
            .bind(&last)
            .fetch_all(&self.read)
            .await?;
            let mut sums: BTreeMap<&str, BTreeMap<&str, i128>> = BTreeMap::new();
            for (transaction, currency, amount) in &rows {
                *sums.entry(transaction).or_default().entry(currency).or_default() += i128::from(*amount);
            }
            report.entries += rows.len() as u64;
            for id in &ids {
                report.transactions += 1;
                let Some(by_currency) = sums.get(id.as_str()) else {
                    report.found(LedgerProblem::NoEntries { transaction: id.clone() });
                    continue;
                };
                for (currency, sum) in by_currency {
                    report.currencies.insert((*currency).to_owned());
                    if Currency::parse(currency).is_err() {
                        report.found(LedgerProblem::BadCurrency { transaction: id.clone(), currency: (*currency).to_owned() });
                    }
                    if *sum != 0 {
                        report.found(LedgerProblem::Unbalanced { transaction: id.clone(), currency: (*currency).to_owned(), sum: *sum });
                    }
                }
            }
            after = last;
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_databases;

    fn entry(account: &str, currency: &str, amount: i64) -> LedgerEntry {
        LedgerEntry { account: account.into(), currency: currency.into(), amount }
    }

    /// A charge of 12.00 USD with 2.00 tax: the customer pays, the platform keeps 15% of
    /// the net, the publisher is owed the rest.
    fn charge() -> Vec<LedgerEntry> {
        vec![
            entry("cash:sandbox", "USD", 1_400),
            entry("tax:DE", "USD", -200),
            entry("platform:fees", "USD", -180),
            entry("publisher:acme:payable", "USD", -1_020),
        ]
    }

    fn new<'a>(id: &'a str, key: &'a str, entries: &'a [LedgerEntry]) -> NewLedgerTransaction<'a> {
        NewLedgerTransaction { id, kind: "charge", reference: "inv-1", idempotency_key: key, entries }
    }

    async fn count(db: &crate::Db, table: &str) -> i64 {
        sqlx::query_scalar::<Any, i64>(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}"))).fetch_one(&db.read).await.unwrap()
    }

    #[tokio::test]
    async fn balanced_transactions_post_whole_and_replay_by_key() {
        for (db, _home) in test_databases().await {
            let db = db.with_clock(Clock::manual(1_700_000_000_000));
            let ledger = db.ledger();
            let entries = charge();
            let posted = ledger.post(&new("t1", "k1", &entries)).await.unwrap();
            assert_eq!(posted, Posted { id: "t1".into(), replayed: false });
            assert_eq!(ledger.entries("t1").await.unwrap(), entries);
            let created: i64 =
                sqlx::query_scalar("SELECT created_at FROM ledger_transactions WHERE id = 't1'").fetch_one(&db.read).await.unwrap();
            assert_eq!(created, 1_700_000_000_000, "the Db clock's time");

            // Two currencies in one transaction, each balanced on its own.
            let fx = [
                entry("cash:sandbox", "JPY", 1_000),
                entry("customer:7", "JPY", -1_000),
                entry("cash:sandbox", "KWD", 5),
                entry("customer:7", "KWD", -5),
            ];
            assert!(!ledger.post(&new("t2", "k2", &fx)).await.unwrap().replayed);

            // The same movement under the same key again, even with another id: the first
            // transaction, nothing written. Another movement under the key: refused.
            assert_eq!(ledger.post(&new("t3", "k1", &entries)).await.unwrap(), Posted { id: "t1".into(), replayed: true });
            let other = [entry("cash:sandbox", "USD", 1), entry("customer:7", "USD", -1)];
            let reused = ledger.post(&new("t3", "k1", &other)).await.unwrap_err();
            assert!(matches!(&reused, DbError::Conflict(why) if why.contains("another ledger transaction (t1)")), "{reused}");
            let mut reordered = entries.clone();
            reordered.swap(0, 1);
            assert!(matches!(ledger.post(&new("t3", "k1", &reordered)).await, Err(DbError::Conflict(_))));
            let refund = NewLedgerTransaction { kind: "refund", ..new("t3", "k1", &entries) };
            assert!(matches!(ledger.post(&refund).await, Err(DbError::Conflict(_))));
            assert_eq!((count(&db, "ledger_transactions").await, count(&db, "ledger_entries").await), (2, 8));

            let report = ledger.verify().await.unwrap();
            assert_eq!((report.transactions, report.entries, report.problem_count), (2, 8, 0), "{report:?}");
            assert_eq!(report.currencies.into_iter().collect::<Vec<_>>(), ["JPY", "KWD", "USD"]);
        }
    }

    #[tokio::test]
    async fn a_transaction_breaking_a_rule_is_refused_with_nothing_written() {
        for (db, _home) in test_databases().await {
            let ledger = db.ledger();
            let many: Vec<LedgerEntry> =
                (0..=MAX_ENTRIES).map(|i| entry(&format!("customer:{i}"), "USD", if i == 0 { -(MAX_ENTRIES as i64) } else { 1 })).collect();
            assert_eq!(many.iter().map(|e| e.amount).sum::<i64>(), 0, "balanced, only too long");
            let cases: Vec<(Vec<LedgerEntry>, &str)> = vec![
                (vec![entry("cash:sandbox", "USD", 100), entry("customer:1", "USD", -99)], "sum to 1, not 0"),
                (vec![entry("cash:sandbox", "USD", 100), entry("customer:1", "EUR", -100)], "not 0"),
                (vec![entry("cash:sandbox", "USD", 0)], "2 to 64 entries, not 1"),
                (vec![], "2 to 64 entries, not 0"),
                (many, "2 to 64 entries, not 65"),
                (vec![entry("cash:sandbox", "USD", 0), entry("customer:1", "USD", 0)], "is zero"),
                (vec![entry("cash:sandbox", "usd", 1), entry("customer:1", "usd", -1)], "not an active ISO 4217"),
                (vec![entry("cash:sandbox", "XXX", 1), entry("customer:1", "XXX", -1)], "not an active ISO 4217"),
                (vec![entry("", "USD", 1), entry("customer:1", "USD", -1)], "account name"),
                (vec![entry(&"a".repeat(MAX_NAME_LEN + 1), "USD", 1), entry("customer:1", "USD", -1)], "account name"),
                // Sums that overflow i64 are not a wrapped-around zero.
                (vec![entry("a", "USD", i64::MAX), entry("b", "USD", i64::MAX), entry("c", "USD", 2)], "not 0"),
            ];
            for (entries, why) in &cases {
                let refused = ledger.post(&new("t", "k", entries)).await.unwrap_err();
                assert!(matches!(refused, DbError::Ledger(_)) && refused.to_string().contains(why), "{why}: {refused}");
                assert_eq!(refused.kind(), slipway_types::ErrorKind::Invalid);
            }
            let ok = charge();
            for bad in [new("", "k", &ok), new("t", "", &ok), NewLedgerTransaction { kind: "", ..new("t", "k", &ok) }] {
                assert!(matches!(ledger.post(&bad).await, Err(DbError::Ledger(_))), "{bad:?}");
            }
            assert_eq!((count(&db, "ledger_transactions").await, count(&db, "ledger_entries").await), (0, 0));
        }
    }

    /// Posted inside a business transaction that then fails, the ledger transaction goes
    /// with it.
    #[tokio::test]
    async fn a_post_inside_a_rolled_back_transaction_leaves_nothing() {
        for (db, _home) in test_databases().await {
            let ledger = db.ledger();
            let entries = charge();
            let mut tx = ledger.begin_write().await.unwrap();
            assert!(!post_in(&mut tx, db.clock(), &new("t1", "k1", &entries)).await.unwrap().replayed);
            tx.rollback().await.unwrap();
            assert_eq!((count(&db, "ledger_transactions").await, count(&db, "ledger_entries").await), (0, 0));
            let mut tx = ledger.begin_write().await.unwrap();
            post_in(&mut tx, db.clock(), &new("t1", "k1", &entries)).await.unwrap();
            tx.commit().await.unwrap();
            assert_eq!(ledger.entries("t1").await.unwrap(), entries);
        }
    }

    #[tokio::test]
    async fn concurrent_posts_of_one_key_write_one_transaction() {
        for (db, _home) in test_databases().await {
            let ledger = db.ledger();
            let entries = charge();
            let ids: Vec<String> = (0..20).map(|i| format!("t{i}")).collect();
            let posts = ids.iter().map(|id| {
                let ledger = ledger.clone();
                let entries = entries.clone();
                let id = id.clone();
                tokio::spawn(async move { ledger.post(&new(&id, "same-key", &entries)).await })
            });
            let posted: Vec<Posted> = futures::future::join_all(posts).await.into_iter().map(|r| r.unwrap().unwrap()).collect();
            assert_eq!(posted.iter().filter(|p| !p.replayed).count(), 1, "{posted:?}");
            let first = &posted.iter().find(|p| !p.replayed).unwrap().id;
            assert!(posted.iter().all(|p| &p.id == first), "every post answers the one transaction: {posted:?}");
            assert_eq!((count(&db, "ledger_transactions").await, count(&db, "ledger_entries").await), (1, 4));
        }
    }

    #[tokio::test]
    async fn verify_finds_every_corrupted_transaction() {
        for (db, _home) in test_databases().await {
            let ledger = db.ledger();
            let entries = charge();
            for i in 0..5 {
                ledger.post(&new(&format!("t{i}"), &format!("k{i}"), &entries)).await.unwrap();
            }
            assert_eq!(ledger.verify().await.unwrap().problem_count, 0);
            sqlx::query("UPDATE ledger_entries SET amount = amount + 7 WHERE transaction_id = 't1' AND account = 'tax:DE'")
                .execute(&db.write)
                .await
                .unwrap();
            sqlx::query("UPDATE ledger_entries SET currency = 'usd' WHERE transaction_id = 't3'").execute(&db.write).await.unwrap();
            sqlx::query(
                "INSERT INTO ledger_transactions (id, kind, reference, idempotency_key, created_at) VALUES ('t9', 'charge', 'x', 'k9', 0)",
            )
            .execute(&db.write)
            .await
            .unwrap();
            let report = ledger.verify().await.unwrap();
            assert_eq!((report.transactions, report.entries), (6, 20));
            assert_eq!(
                report.problems,
                [
                    LedgerProblem::Unbalanced { transaction: "t1".into(), currency: "USD".into(), sum: 7 },
                    LedgerProblem::BadCurrency { transaction: "t3".into(), currency: "usd".into() },
                    LedgerProblem::NoEntries { transaction: "t9".into() },
                ]
            );
            assert_eq!(report.problem_count, 3);
            assert_eq!(report.problems[0].to_string(), "transaction t1: its USD entries sum to 7, not 0");
        }
    }

    #[tokio::test]
    async fn balances_sum_an_accounts_entries_per_currency() {
        for (db, _home) in test_databases().await {
            let ledger = db.ledger();
            let entries = charge();
            ledger.post(&new("t1", "k1", &entries)).await.unwrap();
            ledger.post(&new("t2", "k2", &entries)).await.unwrap();
            let refund = [entry("publisher:acme:payable", "USD", 510), entry("cash:sandbox", "USD", -510)];
            ledger.post(&NewLedgerTransaction { kind: "refund", ..new("t3", "k3", &refund) }).await.unwrap();
            let eur = [entry("publisher:acme:payable", "EUR", -900), entry("cash:sandbox", "EUR", 900)];
            ledger.post(&new("t4", "k4", &eur)).await.unwrap();
            let balance =
                |account: &str, currency: &str, balance: i64| LedgerBalance { account: account.into(), currency: currency.into(), balance };
            assert_eq!(
                ledger.balances("publisher:", 100).await.unwrap(),
                [balance("publisher:acme:payable", "EUR", -900), balance("publisher:acme:payable", "USD", -1_530)]
            );
            assert_eq!(ledger.balances("", 100).await.unwrap().len(), 6);
            assert_eq!(ledger.balances("", 2).await.unwrap().len(), 2);
            assert!(ledger.balances("publisher%", 100).await.unwrap().is_empty(), "a prefix is not a LIKE pattern");
            assert!(ledger.balances("", -1).await.unwrap().is_empty());
        }
    }
}

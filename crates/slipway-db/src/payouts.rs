//! Payout statements and the publisher's view of its sales.
//!
//! A statement sums one publisher's invoices and credit notes of one currency and month;
//! marking it paid writes its status and the payout's ledger transaction in one database
//! transaction (`ledger::post_in`), so a paid statement never exists without the ledger's
//! record of the payout or the other way round. The caller (slipway-commerce) computes the
//! statements' arithmetic and the payout's entries; this module reads and writes them.

use sqlx::{Any, Transaction};

use crate::commerce::{INVOICE_COLUMNS, InvoiceRecord, RefundRecord, SUBSCRIPTION_COLUMNS, SubscriptionRecord};
use crate::ledger::post_in;
use crate::{CommerceDb, DbError, NewLedgerTransaction};

/// A publisher's sales in one currency over one month, before any carry-over.
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct MonthTotals {
    pub publisher: String,
    pub currency: String,
    /// Subtotals of invoices.
    pub gross: i64,
    /// Subtotals of credit notes.
    pub refunds: i64,
    /// Tax of invoices less tax of credit notes.
    pub tax: i64,
    /// Platform fee of invoices less that of credit notes.
    pub platform_fee: i64,
}

/// A statement as stored.
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct StatementRecord {
    pub id: String,
    pub publisher: String,
    pub currency: String,
    /// `YYYY-MM`.
    pub month: String,
    /// Unix ms: the month's first instant, and the next month's.
    pub period_start: i64,
    pub period_end: i64,
    pub gross: i64,
    pub refunds: i64,
    pub tax: i64,
    pub platform_fee: i64,
    /// The previous statement's negative net (0 or less).
    pub carried_in: i64,
    /// gross - refunds - platform_fee + carried_in; negative is carried to the next month.
    pub net: i64,
    pub net_due: i64,
    /// open or paid.
    pub status: String,
    /// The payment's reference when paid, else empty.
    pub reference: String,
    pub paid_by: String,
    pub paid_at: Option<i64>,
    pub created_at: i64,
}

const STATEMENT_COLUMNS: &str = "id, publisher, currency, month, period_start, period_end, gross, refunds, tax, platform_fee, carried_in,
     net, net_due, status, reference, paid_by, paid_at, created_at";

/// A statement to create; its status starts open.
#[derive(Clone, Debug)]
pub struct NewStatement<'a> {
    pub id: &'a str,
    pub totals: &'a MonthTotals,
    pub month: &'a str,
    pub period_start: i64,
    pub period_end: i64,
    pub carried_in: i64,
    pub net: i64,
    pub net_due: i64,
}

/// What marking a statement paid did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MarkPaid {
    Paid(StatementRecord),
    NotFound,
    /// Nothing was written: it was paid before (with this record's reference).
    AlreadyPaid(StatementRecord),
    /// Nothing was written: it owes nothing.
    NothingDue(StatementRecord),
}

/// A succeeded payment on one of a publisher's subscriptions, with what was refunded of it.
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct SoldPayment {
    pub id: String,
    pub subscription_id: String,
    pub amount: i64,
    pub currency: String,
    pub refunded: i64,
    pub created_at: i64,
}

/// A refund of one of the publisher's sales, with its credit note's number.
#[derive(Clone, Debug, Default, PartialEq, Eq, sqlx::FromRow)]
pub struct SoldRefund {
    #[sqlx(flatten)]
    pub refund: RefundRecord,
    pub credit_note_number: i64,
}

impl CommerceDb {
    /// Every publisher's sales per currency between `start` (inclusive) and `end`
    /// (exclusive), by publisher then currency.
    pub async fn month_totals(&self, start: i64, end: i64) -> Result<Vec<MonthTotals>, DbError> {
        Ok(sqlx::query_as::<Any, MonthTotals>(
            "SELECT seller AS publisher, currency,
                 CAST(SUM(CASE WHEN kind = 'invoice' THEN subtotal ELSE 0 END) AS BIGINT) AS gross,
                 CAST(SUM(CASE WHEN kind = 'invoice' THEN 0 ELSE subtotal END) AS BIGINT) AS refunds,
                 CAST(SUM(CASE WHEN kind = 'invoice' THEN tax ELSE -tax END) AS BIGINT) AS tax,
                 CAST(SUM(CASE WHEN kind = 'invoice' THEN platform_fee ELSE -platform_fee END) AS BIGINT) AS platform_fee
             FROM invoices WHERE created_at >= $1 AND created_at < $2
             GROUP BY seller, currency ORDER BY seller, currency",
        )
        .bind(start)
        .bind(end)
        .fetch_all(&self.read)
        .await?)
    }

    /// The latest statement before `month` of each publisher and currency whose net was
    /// negative: what the month's statement carries in.
    pub async fn negative_balances_before(&self, month: &str) -> Result<Vec<StatementRecord>, DbError> {
        Ok(sqlx::query_as::<Any, StatementRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {STATEMENT_COLUMNS} FROM payout_statements s
             WHERE s.net < 0 AND s.month = (SELECT MAX(p.month) FROM payout_statements p
                 WHERE p.publisher = s.publisher AND p.currency = s.currency AND p.month < $1)
             ORDER BY s.publisher, s.currency"
        )))
        .bind(month)
        .fetch_all(&self.read)
        .await?)
    }

    /// The latest month any statement is for.
    pub async fn latest_statement_month(&self) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT MAX(month) FROM payout_statements").fetch_one(&self.read).await?)
    }

    /// Creates the statements that do not exist yet (one per publisher, currency and
    /// month: a second run, or a concurrent one, writes nothing), in one transaction;
    /// returns the ids created.
    pub async fn create_statements(&self, statements: &[NewStatement<'_>]) -> Result<Vec<String>, DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        let mut created = Vec::new();
        for s in statements {
            let inserted = sqlx::query(
                "INSERT INTO payout_statements (id, publisher, currency, month, period_start, period_end, gross, refunds, tax, platform_fee,
                     carried_in, net, net_due, status, reference, paid_by, paid_at, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'open', '', '', NULL, $14)
                 ON CONFLICT DO NOTHING",
            )
            .bind(s.id)
            .bind(&s.totals.publisher)
            .bind(&s.totals.currency)
            .bind(s.month)
            .bind(s.period_start)
            .bind(s.period_end)
            .bind(s.totals.gross)
            .bind(s.totals.refunds)
            .bind(s.totals.tax)
            .bind(s.totals.platform_fee)
            .bind(s.carried_in)
            .bind(s.net)
            .bind(s.net_due)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            if inserted.rows_affected() == 1 {
                created.push(s.id.to_owned());
            }
        }
        tx.commit().await?;
        Ok(created)
    }

    pub async fn statement(&self, id: &str) -> Result<Option<StatementRecord>, DbError> {
        Ok(sqlx::query_as::<Any, StatementRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {STATEMENT_COLUMNS} FROM payout_statements WHERE id = $1"
        )))
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    /// Statements, newest month first, then by publisher and currency; each filter when
    /// given. At most `limit`.
    pub async fn statements(
        &self,
        publisher: Option<&str>,
        status: Option<&str>,
        month: Option<&str>,
        limit: i64,
    ) -> Result<Vec<StatementRecord>, DbError> {
        Ok(sqlx::query_as::<Any, StatementRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {STATEMENT_COLUMNS} FROM payout_statements
             WHERE ($1 IS NULL OR publisher = $1) AND ($2 IS NULL OR status = $2) AND ($3 IS NULL OR month = $3)
             ORDER BY month DESC, publisher, currency LIMIT $4"
        )))
        .bind(publisher)
        .bind(status)
        .bind(month)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Marks an open statement with something due paid with `reference`, and posts the
    /// payout `ledger` in the same transaction. Nothing is written unless it was open and
    /// owed something: the answer says which.
    pub async fn mark_statement_paid(
        &self,
        id: &str,
        reference: &str,
        paid_by: &str,
        ledger: &NewLedgerTransaction<'_>,
    ) -> Result<MarkPaid, DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        // The condition decides under the row's lock: of two concurrent marks, one pays.
        let marked = sqlx::query(
            "UPDATE payout_statements SET status = 'paid', reference = $1, paid_by = $2, paid_at = $3
             WHERE id = $4 AND status = 'open' AND net_due > 0",
        )
        .bind(reference)
        .bind(paid_by)
        .bind(now)
        .bind(id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let found = statement_in(&mut tx, id).await?;
        let Some(statement) = found else { return Ok(MarkPaid::NotFound) };
        if marked == 0 {
            return Ok(if statement.status == "paid" { MarkPaid::AlreadyPaid(statement) } else { MarkPaid::NothingDue(statement) });
        }
        // The payout moves exactly the net due out of the publisher's payable account.
        let payable = format!("publisher:{}:payable", statement.publisher);
        let moved: i64 = ledger.entries.iter().filter(|e| e.account == payable && e.currency == statement.currency).map(|e| e.amount).sum();
        if moved != statement.net_due {
            return Err(DbError::Ledger(format!(
                "the payout of statement {id} debits {payable} {moved}, not the {} {} due",
                statement.net_due, statement.currency
            )));
        }
        post_in(&mut tx, &self.clock, ledger).await?;
        tx.commit().await?;
        Ok(MarkPaid::Paid(statement))
    }

    // ---- the publisher's sales ---------------------------------------------------------------

    /// The publisher's invoices (kind invoice), newest first, at most `limit`, each with
    /// the tier its subscription is to.
    pub async fn orders_of(&self, publisher: &str, limit: i64) -> Result<Vec<(InvoiceRecord, Option<String>)>, DbError> {
        let columns = INVOICE_COLUMNS.split(',').map(|c| format!("i.{}", c.trim())).collect::<Vec<_>>().join(", ");
        #[derive(sqlx::FromRow)]
        struct Row {
            #[sqlx(flatten)]
            invoice: InvoiceRecord,
            tier_id: Option<String>,
        }
        let rows = sqlx::query_as::<Any, Row>(sqlx::AssertSqlSafe(format!(
            "SELECT {columns}, s.tier_id FROM invoices i LEFT JOIN subscriptions s ON s.id = i.subscription_id
             WHERE i.seller = $1 AND i.kind = 'invoice' ORDER BY i.number DESC LIMIT $2"
        )))
        .bind(publisher)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        Ok(rows.into_iter().map(|r| (r.invoice, r.tier_id)).collect())
    }

    /// The publisher's subscriptions, newest first, reservations of checkouts in progress
    /// left out; at most `limit`.
    pub async fn subscriptions_sold(&self, publisher: &str, limit: i64) -> Result<Vec<SubscriptionRecord>, DbError> {
        Ok(sqlx::query_as::<Any, SubscriptionRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {SUBSCRIPTION_COLUMNS} WHERE l.publisher = $1 AND s.status <> 'incomplete' ORDER BY s.created_at DESC, s.id LIMIT $2"
        )))
        .bind(publisher)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// The succeeded payments invoiced by the publisher on `subscription_ids`, newest
    /// first, with what has been refunded of each.
    pub async fn payments_sold(&self, publisher: &str, subscription_ids: &[String]) -> Result<Vec<SoldPayment>, DbError> {
        let mut out = Vec::new();
        // A bounded IN list per query: the page lists a few hundred subscriptions at most.
        for chunk in subscription_ids.chunks(100) {
            let marks = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect::<Vec<_>>().join(", ");
            let sql = format!(
                "SELECT p.id, p.subscription_id, p.amount, p.currency, CAST(COALESCE(SUM(r.amount), 0) AS BIGINT) AS refunded, p.created_at
                 FROM payments p JOIN invoices i ON i.payment_id = p.id AND i.kind = 'invoice' LEFT JOIN refunds r ON r.payment_id = p.id
                 WHERE i.seller = $1 AND p.status = 'succeeded' AND p.subscription_id IN ({marks})
                 GROUP BY p.id, p.subscription_id, p.amount, p.currency, p.created_at"
            );
            let mut query = sqlx::query_as::<Any, SoldPayment>(sqlx::AssertSqlSafe(sql)).bind(publisher);
            for id in chunk {
                query = query.bind(id);
            }
            out.extend(query.fetch_all(&self.read).await?);
        }
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then_with(|| a.id.cmp(&b.id)));
        Ok(out)
    }

    /// Refunds of the publisher's sales, newest first, at most `limit`.
    pub async fn refunds_sold(&self, publisher: &str, limit: i64) -> Result<Vec<SoldRefund>, DbError> {
        Ok(sqlx::query_as::<Any, SoldRefund>(
            "SELECT r.id, r.payment_id, r.invoice_id, r.credit_note_id, r.subscription_id, r.amount, r.currency, r.reason, r.refunded_by,
                 r.created_at, c.number AS credit_note_number
             FROM refunds r JOIN invoices c ON c.id = r.credit_note_id
             WHERE c.seller = $1 ORDER BY r.created_at DESC, r.id LIMIT $2",
        )
        .bind(publisher)
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    // ---- cross-checks with the invoices and the ledger ---------------------------------------

    /// Where statements disagree with the invoices they sum, with each other or with the
    /// ledger, each as a line for people (at most `limit` per check): amounts that do not
    /// add up, sums that differ from the month's invoices and credit notes, a carry-over
    /// that is not the previous statement's negative net, a paid statement without its
    /// payout in the ledger (or of another amount), and a payout without a paid statement.
    pub async fn verify_statements(&self, limit: i64) -> Result<Vec<String>, DbError> {
        let checks: [(&str, &str); 6] = [
            (
                "statement {}: its amounts do not add up (net = gross - refunds - fee + carried in; due = net when positive)",
                "SELECT id FROM payout_statements
                 WHERE net <> gross - refunds - platform_fee + carried_in OR carried_in > 0
                    OR net_due <> CASE WHEN net > 0 THEN net ELSE 0 END
                 ORDER BY id LIMIT $1",
            ),
            (
                "statement {}: its sales, refunds, tax or fee differ from the month's invoices and credit notes",
                "SELECT s.id FROM payout_statements s LEFT JOIN invoices i
                     ON i.seller = s.publisher AND i.currency = s.currency AND i.created_at >= s.period_start AND i.created_at < s.period_end
                 GROUP BY s.id, s.gross, s.refunds, s.tax, s.platform_fee
                 HAVING COALESCE(SUM(CASE WHEN i.kind = 'invoice' THEN i.subtotal ELSE 0 END), 0) <> s.gross
                     OR COALESCE(SUM(CASE WHEN i.kind = 'credit_note' THEN i.subtotal ELSE 0 END), 0) <> s.refunds
                     OR COALESCE(SUM(CASE WHEN i.kind = 'invoice' THEN i.tax WHEN i.kind = 'credit_note' THEN -i.tax ELSE 0 END), 0) <> s.tax
                     OR COALESCE(SUM(CASE WHEN i.kind = 'invoice' THEN i.platform_fee WHEN i.kind = 'credit_note' THEN -i.platform_fee ELSE 0 END), 0)
                        <> s.platform_fee
                 ORDER BY s.id LIMIT $1",
            ),
            (
                "statement {}: what it carries in is not the previous statement's negative balance",
                "SELECT s.id FROM payout_statements s LEFT JOIN payout_statements p
                     ON p.publisher = s.publisher AND p.currency = s.currency
                    AND p.month = (SELECT MAX(q.month) FROM payout_statements q
                        WHERE q.publisher = s.publisher AND q.currency = s.currency AND q.month < s.month)
                 WHERE s.carried_in <> CASE WHEN p.net < 0 THEN p.net ELSE 0 END
                 ORDER BY s.id LIMIT $1",
            ),
            (
                "statement {}: paid, but the ledger's payout from the publisher's payable account is not its net due",
                "SELECT s.id FROM payout_statements s LEFT JOIN ledger_transactions t ON t.reference = s.id AND t.kind = 'payout'
                     LEFT JOIN ledger_entries e ON e.transaction_id = t.id AND e.currency = s.currency
                        AND e.account = 'publisher:' || s.publisher || ':payable'
                 WHERE s.status = 'paid'
                 GROUP BY s.id, s.net_due HAVING COALESCE(SUM(e.amount), 0) <> s.net_due
                 ORDER BY s.id LIMIT $1",
            ),
            (
                "statement {}: paid, but the ledger's payout in cash is not its net due",
                "SELECT s.id FROM payout_statements s LEFT JOIN ledger_transactions t ON t.reference = s.id AND t.kind = 'payout'
                     LEFT JOIN ledger_entries e ON e.transaction_id = t.id AND e.currency = s.currency AND e.account = 'cash:payouts'
                 WHERE s.status = 'paid'
                 GROUP BY s.id, s.net_due HAVING COALESCE(SUM(e.amount), 0) <> -s.net_due
                 ORDER BY s.id LIMIT $1",
            ),
            (
                "ledger transaction {} records a payout with no paid statement",
                "SELECT t.id FROM ledger_transactions t LEFT JOIN payout_statements s ON s.id = t.reference AND s.status = 'paid'
                 WHERE t.kind = 'payout' AND s.id IS NULL ORDER BY t.id LIMIT $1",
            ),
        ];
        let mut problems = Vec::new();
        for (message, sql) in checks {
            for id in sqlx::query_scalar::<Any, String>(sql).bind(limit).fetch_all(&self.read).await? {
                problems.push(message.replace("{}", &id));
            }
        }
        Ok(problems)
    }
}

async fn statement_in(tx: &mut Transaction<'static, Any>, id: &str) -> Result<Option<StatementRecord>, DbError> {
    Ok(sqlx::query_as::<Any, StatementRecord>(sqlx::AssertSqlSafe(format!(
        "SELECT {STATEMENT_COLUMNS} FROM payout_statements WHERE id = $1"
    )))
    .bind(id)
    .fetch_optional(&mut **tx)
    .await?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Db, LedgerEntry, test_databases};

    /// 2026-11-01, 2026-12-01 and 2027-01-01 UTC, in Unix ms.
    const NOV: i64 = 1_793_491_200_000;
    const DEC: i64 = 1_796_083_200_000;
    const JAN: i64 = 1_798_761_600_000;

    /// Writes an invoice or credit note as the commerce service would, at `at`.
    /// `amounts`: subtotal, tax and platform fee.
    async fn document(db: &Db, id: &str, seller: &str, kind: &str, amounts: [i64; 3], at: i64) {
        let [subtotal, tax, fee] = amounts;
        let number: i64 =
            sqlx::query_scalar("SELECT COUNT(*) + 1 FROM invoices WHERE seller = $1").bind(seller).fetch_one(&db.read).await.unwrap();
        sqlx::query(
            "INSERT INTO invoices (id, seller, number, kind, account_id, subscription_id, payment_id, credits, currency, subtotal, tax, total,
                 platform_fee, buyer_name, buyer_country, buyer_region, buyer_postal_code, buyer_tax_id, reverse_charge, created_at)
             VALUES ($1, $2, $3, $4, 'a1', NULL, NULL, NULL, 'USD', $5, $6, $7, $8, 'Carol', '', '', '', '', 0, $9)",
        )
        .bind(id)
        .bind(seller)
        .bind(number)
        .bind(kind)
        .bind(subtotal)
        .bind(tax)
        .bind(subtotal + tax)
        .bind(fee)
        .bind(at)
        .execute(&db.write)
        .await
        .unwrap();
    }

    /// States a month the way the commerce service does: totals, plus the previous
    /// negative balance carried in.
    async fn state(db: &Db, month: &str, start: i64, end: i64) -> Vec<String> {
        let c = db.commerce();
        let mut totals = c.month_totals(start, end).await.unwrap();
        let carried = c.negative_balances_before(month).await.unwrap();
        for b in &carried {
            if !totals.iter().any(|t| t.publisher == b.publisher && t.currency == b.currency) {
                totals.push(MonthTotals { publisher: b.publisher.clone(), currency: b.currency.clone(), ..MonthTotals::default() });
            }
        }
        let planned: Vec<(String, MonthTotals, i64)> = totals
            .into_iter()
            .map(|t| {
                let carried_in = carried.iter().find(|b| b.publisher == t.publisher && b.currency == t.currency).map_or(0, |b| b.net);
                (format!("{}-{month}-{}", t.publisher, t.currency), t, carried_in)
            })
            .collect();
        let new: Vec<NewStatement<'_>> = planned
            .iter()
            .map(|(id, t, carried_in)| {
                let net = t.gross - t.refunds - t.platform_fee + carried_in;
                NewStatement {
                    id,
                    totals: t,
                    month,
                    period_start: start,
                    period_end: end,
                    carried_in: *carried_in,
                    net,
                    net_due: net.max(0),
                }
            })
            .collect();
        c.create_statements(&new).await.unwrap()
    }

    fn payout<'a>(id: &'a str, key: &'a str, entries: &'a [LedgerEntry]) -> NewLedgerTransaction<'a> {
        NewLedgerTransaction { id, kind: "payout", reference: &key[7..], idempotency_key: key, entries }
    }

    fn entries(publisher: &str, amount: i64) -> Vec<LedgerEntry> {
        vec![
            LedgerEntry { account: format!("publisher:{publisher}:payable"), currency: "USD".into(), amount },
            LedgerEntry { account: "cash:payouts".into(), currency: "USD".into(), amount: -amount },
        ]
    }

    /// November: two sales and a partial refund; December: a full refund bigger than the
    /// month's sales, carried into January, whose sales pay it off first.
    #[tokio::test]
    async fn statements_sum_their_month_and_carry_a_negative_balance() {
        for (db, _home) in test_databases().await {
            let c = db.commerce();
            document(&db, "i1", "acme", "invoice", [4900, 931, 980], NOV + 10).await;
            document(&db, "i2", "acme", "invoice", [10_000, 0, 2000], NOV + 20).await;
            document(&db, "c1", "acme", "credit_note", [900, 171, 180], NOV + 30).await;
            document(&db, "i3", "zeta", "invoice", [100, 0, 20], NOV + 40).await;
            document(&db, "late", "acme", "invoice", [1, 0, 0], DEC).await;
            assert_eq!(state(&db, "2026-11", NOV, DEC).await, ["acme-2026-11-USD", "zeta-2026-11-USD"]);
            assert!(state(&db, "2026-11", NOV, DEC).await.is_empty(), "a second run creates nothing");
            let nov = c.statement("acme-2026-11-USD").await.unwrap().unwrap();
            assert_eq!(
                (nov.gross, nov.refunds, nov.tax, nov.platform_fee, nov.carried_in, nov.net, nov.net_due),
                (14_900, 900, 760, 2800, 0, 11_200, 11_200)
            );
            assert_eq!(nov.status, "open");

            // December: refunds of 10,000 against sales of 1.
            document(&db, "c2", "acme", "credit_note", [10_000, 0, 2000], DEC + 5).await;
            assert_eq!(state(&db, "2026-12", DEC, JAN).await, ["acme-2026-12-USD"]);
            let dec = c.statement("acme-2026-12-USD").await.unwrap().unwrap();
            assert_eq!((dec.gross, dec.refunds, dec.platform_fee, dec.net, dec.net_due), (1, 10_000, -2000, -7999, 0));
            // January: nothing sold by zeta (no statement), acme's balance carried, then a sale.
            document(&db, "i4", "acme", "invoice", [10_000, 0, 2000], JAN + 5).await;
            let feb = JAN + 31 * 86_400_000;
            assert_eq!(state(&db, "2027-01", JAN, feb).await, ["acme-2027-01-USD"]);
            let jan = c.statement("acme-2027-01-USD").await.unwrap().unwrap();
            assert_eq!((jan.carried_in, jan.net, jan.net_due), (-7999, 1, 1));
            assert!(c.verify_statements(10).await.unwrap().is_empty());
            let open = c.statements(Some("acme"), Some("open"), None, 10).await.unwrap();
            assert_eq!(open.iter().map(|s| s.month.as_str()).collect::<Vec<_>>(), ["2027-01", "2026-12", "2026-11"]);
            assert_eq!(c.latest_statement_month().await.unwrap().as_deref(), Some("2027-01"));
        }
    }

    /// Marking paid writes the status and the payout together; a second mark and a
    /// statement owing nothing are refused with nothing written; the ledger and the
    /// statements agree until someone edits a statement behind the service's back.
    #[tokio::test]
    async fn a_payout_is_posted_with_its_statement_once_and_verify_catches_tampering() {
        for (db, _home) in test_databases().await {
            let c = db.commerce();
            document(&db, "i1", "acme", "invoice", [4900, 0, 980], NOV + 10).await;
            document(&db, "i2", "zeta", "invoice", [100, 0, 20], NOV + 10).await;
            document(&db, "c2", "zeta", "credit_note", [100, 0, 20], NOV + 11).await;
            state(&db, "2026-11", NOV, DEC).await;

            let e = entries("acme", 3920);
            let marked =
                c.mark_statement_paid("acme-2026-11-USD", "WIRE-1", "root", &payout("t1", "payout:acme-2026-11-USD", &e)).await.unwrap();
            let MarkPaid::Paid(paid) = marked else { panic!("{marked:?}") };
            assert_eq!((paid.status.as_str(), paid.reference.as_str(), paid.paid_by.as_str()), ("paid", "WIRE-1", "root"));
            assert!(paid.paid_at.is_some());
            assert_eq!(db.ledger().entries("t1").await.unwrap(), e);
            let balances = db.ledger().balances("", 10).await.unwrap();
            assert_eq!(
                balances.iter().map(|b| (b.account.as_str(), b.balance)).collect::<Vec<_>>(),
                [("cash:payouts", -3920), ("publisher:acme:payable", 3920)]
            );

            let again =
                c.mark_statement_paid("acme-2026-11-USD", "WIRE-2", "root", &payout("t2", "payout:acme-2026-11-USD", &e)).await.unwrap();
            assert!(matches!(&again, MarkPaid::AlreadyPaid(s) if s.reference == "WIRE-1"), "{again:?}");
            let z = entries("zeta", 1);
            let nothing =
                c.mark_statement_paid("zeta-2026-11-USD", "WIRE-3", "root", &payout("t3", "payout:zeta-2026-11-USD", &z)).await.unwrap();
            assert!(matches!(&nothing, MarkPaid::NothingDue(s) if s.status == "open"), "{nothing:?}");
            let missing = c
                .mark_statement_paid("nobody-2026-11-USD", "WIRE-4", "root", &payout("t4", "payout:nobody-2026-11-USD", &z))
                .await
                .unwrap();
            assert_eq!(missing, MarkPaid::NotFound);
            let transactions: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM ledger_transactions").fetch_one(&db.read).await.unwrap();
            assert_eq!(transactions, 1, "refused marks post nothing");
            // A payout of another amount, or an unbalanced one, is refused whole: the
            // statement stays open.
            let lopsided = vec![LedgerEntry { amount: 2, ..z[0].clone() }, z[1].clone()];
            document(&db, "i3", "zeta", "invoice", [100, 0, 20], DEC + 1).await;
            state(&db, "2026-12", DEC, JAN).await;
            let refused = c.mark_statement_paid("zeta-2026-12-USD", "W", "root", &payout("t5", "payout:zeta-2026-12-USD", &lopsided)).await;
            assert!(matches!(refused, Err(DbError::Ledger(_))), "{refused:?}");
            let wrong = entries("zeta", 79);
            let refused = c.mark_statement_paid("zeta-2026-12-USD", "W", "root", &payout("t5", "payout:zeta-2026-12-USD", &wrong)).await;
            assert!(matches!(&refused, Err(DbError::Ledger(why)) if why.contains("not the 80 USD due")), "{refused:?}");
            assert_eq!(c.statement("zeta-2026-12-USD").await.unwrap().unwrap().status, "open");
            assert!(c.verify_statements(10).await.unwrap().is_empty());

            // Tampering: a paid statement's amount, an open one's arithmetic, a stray payout.
            sqlx::query("UPDATE payout_statements SET net_due = 5000, net = 5000, gross = 5980 WHERE id = 'acme-2026-11-USD'")
                .execute(&db.write)
                .await
                .unwrap();
            sqlx::query("UPDATE payout_statements SET net_due = 70 WHERE id = 'zeta-2026-12-USD'").execute(&db.write).await.unwrap();
            db.ledger().post(&payout("t6", "payout:ghost", &entries("ghost", 5))).await.unwrap();
            let problems = c.verify_statements(10).await.unwrap();
            let expect = [
                "statement zeta-2026-12-USD: its amounts do not add up",
                "statement acme-2026-11-USD: its sales, refunds, tax or fee differ",
                "statement acme-2026-11-USD: paid, but the ledger's payout from the publisher's payable account",
                "statement acme-2026-11-USD: paid, but the ledger's payout in cash",
                "ledger transaction t6 records a payout with no paid statement",
            ];
            assert_eq!(problems.len(), expect.len(), "{problems:#?}");
            for (problem, start) in problems.iter().zip(expect) {
                assert!(problem.starts_with(start), "{problem} / {start}");
            }
            // A carry-over that is not the previous balance.
            sqlx::query("UPDATE payout_statements SET carried_in = -5, net = 75 WHERE id = 'zeta-2026-12-USD'")
                .execute(&db.write)
                .await
                .unwrap();
            let problems = c.verify_statements(10).await.unwrap();
            assert!(problems.iter().any(|p| p.starts_with("statement zeta-2026-12-USD: what it carries in")), "{problems:#?}");
        }
    }
}

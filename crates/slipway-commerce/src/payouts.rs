//! Payouts: a monthly statement per publisher and currency of what the store owes it, and
//! the publisher's view of its sales (orders, subscriptions, trials, refunds, statements).
//!
//! A statement adds up one calendar month (UTC) of the publisher's invoices and credit
//! notes: gross sales (invoice subtotals), refunds (credit-note subtotals), tax collected
//! and the platform's fee (each net of what credit notes gave back). Its net is gross less
//! refunds less the fee, plus the previous statement's net when that was negative (refunds
//! that exceeded a month's sales are carried over, and nothing is due while they last).
//! Money moves outside Slipway; an administrator marks a statement paid with the payment's
//! reference, which posts the payout to the ledger (`publisher:<org>:payable` debited,
//! `cash:payouts` credited) in the same database transaction.

use chrono::{Datelike, NaiveDate};
use serde::Serialize;
use slipway_catalog::{Viewer, product_path};
use slipway_db::{CommerceDb, LedgerEntry, MarkPaid, MonthTotals, NewLedgerTransaction, NewStatement, StatementRecord};
use slipway_policy::{Action, Resource, decide};
use slipway_types::{Currency, Money};
use utoipa::ToSchema;

use crate::CommerceError;
use crate::service::{Amount, Commerce, invoice_number};

/// Rows of each kind the sales page and API list, newest first.
const MAX_SALES_ROWS: i64 = 200;
/// Statements listed at most (a publisher's or the administrator's list, a month's CSV).
const MAX_STATEMENTS: i64 = 10_000;
/// The longest payment reference an administrator may record.
const MAX_REFERENCE: usize = 100;
/// The ledger account payouts are paid from.
pub const PAYOUT_CASH_ACCOUNT: &str = "cash:payouts";

/// A statement as the portal, the API and `slipway admin payouts` show it.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct Statement {
    /// `PUBLISHER-YYYY-MM-CURRENCY`.
    pub id: String,
    pub publisher: String,
    /// `YYYY-MM`, a calendar month in UTC.
    pub month: String,
    pub currency: String,
    /// Invoice subtotals (before tax).
    pub gross: Amount,
    /// Credit-note subtotals.
    pub refunds: Amount,
    /// Tax collected, less tax given back; owed to tax authorities, not the publisher.
    pub tax: Amount,
    /// The platform's fee, less fee given back.
    pub platform_fee: Amount,
    /// The previous statement's negative balance carried into this one (zero or less).
    pub carried_in: Amount,
    /// gross - refunds - platform_fee + carried_in.
    pub net: Amount,
    /// What is paid out: the net when positive.
    pub net_due: Amount,
    /// The negative net carried into the next statement (zero or less).
    pub carried_over: Amount,
    /// open or paid.
    pub status: String,
    /// The payment's reference, once paid.
    pub reference: Option<String>,
    /// Unix milliseconds.
    pub paid_at: Option<i64>,
    pub created_at: i64,
}

/// What a statement run made.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GenerateReport {
    pub month: String,
    /// Statements created by this run.
    pub created: Vec<Statement>,
    /// Statements of the month that existed already (left as they were).
    pub existing: usize,
}

/// An invoice of the publisher's (an order).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Order {
    pub invoice: String,
    /// `NIMBUS-000042`.
    pub number: String,
    /// The buyer's name on the invoice.
    pub customer: String,
    pub subscription: Option<String>,
    /// The tier bought (`PUBLISHER/PRODUCT/TIER`).
    pub tier: Option<String>,
    pub subtotal: Amount,
    pub tax: Amount,
    pub total: Amount,
    pub created_at: i64,
}

/// A subscription to one of the publisher's products.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SoldSubscription {
    pub id: String,
    /// The customer's account name.
    pub customer: String,
    pub product: String,
    pub product_path: String,
    pub tier: String,
    /// trialing, active, past_due, canceled or expired.
    pub status: String,
    /// In its free trial: nothing was paid yet.
    pub trialing: bool,
    pub trial_end: Option<i64>,
    /// None for a free tier.
    pub price: Option<Amount>,
    pub billing_period: String,
    pub current_period_end: Option<i64>,
    pub cancel_at_period_end: bool,
    pub created_at: i64,
    /// What is left to refund of its last payment; None when nothing is.
    pub refundable: Option<Amount>,
}

/// A refund given on one of the publisher's sales.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct SaleRefund {
    pub id: String,
    pub subscription: Option<String>,
    /// The credit note's number.
    pub credit_note: String,
    pub amount: Amount,
    pub reason: String,
    /// Who gave it (an account name, or `customer` for a cancellation's prorated refund).
    pub refunded_by: String,
    pub created_at: i64,
}

/// Everything a publisher has sold, newest first in each list.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Sales {
    pub publisher: String,
    pub orders: Vec<Order>,
    pub subscriptions: Vec<SoldSubscription>,
    pub refunds: Vec<SaleRefund>,
    pub statements: Vec<Statement>,
}

fn money(minor: i64, currency: &str) -> Result<Amount, CommerceError> {
    let currency = Currency::parse(currency).map_err(|e| CommerceError::Internal(format!("a stored currency: {e}")))?;
    Ok(Money::new(minor, currency).into())
}

/// The first instant of `month` (`YYYY-MM`) and of the month after it, in Unix
/// milliseconds (UTC); a clear refusal for anything else.
pub fn month_bounds(month: &str) -> Result<(i64, i64), CommerceError> {
    let bad = || CommerceError::Invalid(format!("{month:?} is not a month: give it as YYYY-MM, e.g. 2026-01"));
    let b = month.as_bytes();
    if b.len() != 7 || b[4] != b'-' || !b.iter().enumerate().all(|(i, c)| i == 4 || c.is_ascii_digit()) {
        return Err(bad());
    }
    let year: i32 = month[..4].parse().map_err(|_| bad())?;
    let number: u32 = month[5..].parse().map_err(|_| bad())?;
    let first = NaiveDate::from_ymd_opt(year, number, 1).filter(|_| year >= 1970).ok_or_else(bad)?;
    let next = first.checked_add_months(chrono::Months::new(1)).ok_or_else(bad)?;
    let ms = |d: NaiveDate| d.and_hms_opt(0, 0, 0).map(|t| t.and_utc().timestamp_millis()).ok_or_else(bad);
    Ok((ms(first)?, ms(next)?))
}

/// `YYYY-MM` of the month before the one holding `now_ms`.
fn previous_month(now_ms: i64) -> Result<String, CommerceError> {
    let now = chrono::DateTime::from_timestamp_millis(now_ms).ok_or_else(|| CommerceError::Internal("the clock is out of range".into()))?;
    let first = NaiveDate::from_ymd_opt(now.year(), now.month(), 1).expect("the first of a month exists");
    let previous = first.checked_sub_months(chrono::Months::new(1)).ok_or_else(|| CommerceError::Internal("no month before".into()))?;
    Ok(previous.format("%Y-%m").to_string())
}

/// A statement's net and net due: gross less refunds less the fee plus what is carried in;
/// nothing is due unless that is positive.
fn settle(t: &MonthTotals, carried_in: i64) -> Result<(i64, i64), CommerceError> {
    let overflow = || CommerceError::Invalid(format!("the {} statement of {} overflows", t.currency, t.publisher));
    let net = t
        .gross
        .checked_sub(t.refunds)
        .and_then(|n| n.checked_sub(t.platform_fee))
        .and_then(|n| n.checked_add(carried_in))
        .ok_or_else(overflow)?;
    Ok((net, net.max(0)))
}

fn statement_id(publisher: &str, month: &str, currency: &str) -> String {
    format!("{publisher}-{month}-{currency}")
}

fn view(r: &StatementRecord) -> Result<Statement, CommerceError> {
    let m = |minor| money(minor, &r.currency);
    Ok(Statement {
        id: r.id.clone(),
        publisher: r.publisher.clone(),
        month: r.month.clone(),
        currency: r.currency.clone(),
        gross: m(r.gross)?,
        refunds: m(r.refunds)?,
        tax: m(r.tax)?,
        platform_fee: m(r.platform_fee)?,
        carried_in: m(r.carried_in)?,
        net: m(r.net)?,
        net_due: m(r.net_due)?,
        carried_over: m(r.net - r.net_due)?,
        status: r.status.clone(),
        reference: (!r.reference.is_empty()).then(|| r.reference.clone()),
        paid_at: r.paid_at,
        created_at: r.created_at,
    })
}

/// A payment reference as an administrator types it: 1 to `MAX_REFERENCE` letters,
/// digits and `-_./:#`, starting with a letter or digit (so it stays one plain cell in a
/// spreadsheet: nothing there can start a formula).
fn check_reference(reference: &str) -> Result<(), CommerceError> {
    let fine = |c: char| c.is_ascii_alphanumeric() || "-_./:#".contains(c);
    if reference.is_empty()
        || reference.len() > MAX_REFERENCE
        || !reference.starts_with(|c: char| c.is_ascii_alphanumeric())
        || !reference.chars().all(fine)
    {
        return Err(CommerceError::Invalid(format!(
            "a payment reference has 1 to {MAX_REFERENCE} letters, digits and -_./:#, starting with a letter or digit"
        )));
    }
    Ok(())
}

/// The columns of the statements CSV, in order.
pub const CSV_COLUMNS: [&str; 15] = [
    "statement",
    "publisher",
    "month",
    "currency",
    "gross",
    "refunds",
    "tax",
    "platform_fee",
    "carried_in",
    "net",
    "net_due",
    "carried_over",
    "status",
    "reference",
    "paid_at",
];

/// Statements as CSV (RFC 4180, CRLF line ends), a header line first; amounts in the
/// currency's major units (`49.00`), times in RFC 3339 UTC.
pub fn statements_csv(statements: &[Statement]) -> String {
    let amount =
        |a: &Amount| Currency::parse(&a.currency).map(|c| Money::new(a.amount, c).amount_string()).unwrap_or_else(|_| a.amount.to_string());
    let mut out = slipway_types::csv_line(&CSV_COLUMNS);
    for s in statements {
        let paid_at = s
            .paid_at
            .and_then(chrono::DateTime::from_timestamp_millis)
            .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
            .unwrap_or_default();
        let row = [
            s.id.clone(),
            s.publisher.clone(),
            s.month.clone(),
            s.currency.clone(),
            amount(&s.gross),
            amount(&s.refunds),
            amount(&s.tax),
            amount(&s.platform_fee),
            amount(&s.carried_in),
            amount(&s.net),
            amount(&s.net_due),
            amount(&s.carried_over),
            s.status.clone(),
            s.reference.clone().unwrap_or_default(),
            paid_at,
        ];
        out.push_str(&slipway_types::csv_line(&row));
    }
    out
}

/// Where statements disagree with the invoices they sum or with the ledger's payouts:
/// `Commerce::verify` adds these to its own checks.
pub(crate) async fn verify(db: &CommerceDb, limit: i64) -> Result<Vec<String>, CommerceError> {
    Ok(db.verify_statements(limit).await?)
}

impl Commerce {
    // ---- statements: the administrator's (`slipway admin payouts`, the schedule) -----------

    /// Creates the statements of `month` (`YYYY-MM`), which must be over by the clock: one
    /// per publisher and currency that sold or refunded in it, or carries a negative
    /// balance into it. Running it again creates only what is missing (nothing, once a
    /// month is done). Months are stated in order: a month before one that has statements
    /// is refused, since its balance could not be carried.
    pub async fn generate_statements(&self, month: &str) -> Result<GenerateReport, CommerceError> {
        let (start, end) = month_bounds(month)?;
        if end > self.clock().now_ms() {
            return Err(CommerceError::Invalid(format!("{month} is not over yet: a month is stated once it has ended")));
        }
        let existing = self.db.statements(None, None, Some(month), MAX_STATEMENTS).await?;
        let mut totals = self.db.month_totals(start, end).await?;
        let carried = self.db.negative_balances_before(month).await?;
        for c in &carried {
            if !totals.iter().any(|t| t.publisher == c.publisher && t.currency == c.currency) {
                totals.push(MonthTotals { publisher: c.publisher.clone(), currency: c.currency.clone(), ..MonthTotals::default() });
            }
        }
        let missing: Vec<&MonthTotals> =
            totals.iter().filter(|t| !existing.iter().any(|e| e.publisher == t.publisher && e.currency == t.currency)).collect();
        if !missing.is_empty()
            && let Some(latest) = self.db.latest_statement_month().await?.filter(|latest| latest.as_str() > month)
        {
            return Err(CommerceError::Conflict(format!(
                "statements of {latest} exist already: {month} can no longer be stated (its balance would not reach them)"
            )));
        }
        let mut planned = Vec::new();
        for t in &missing {
            let carried_in = carried.iter().find(|c| c.publisher == t.publisher && c.currency == t.currency).map_or(0, |c| c.net);
            let (net, net_due) = settle(t, carried_in)?;
            planned.push((statement_id(&t.publisher, month, &t.currency), *t, carried_in, net, net_due));
        }
        let new: Vec<NewStatement<'_>> = planned
            .iter()
            .map(|(id, totals, carried_in, net, net_due)| NewStatement {
                id,
                totals,
                month,
                period_start: start,
                period_end: end,
                carried_in: *carried_in,
                net: *net,
                net_due: *net_due,
            })
            .collect();
        let created_ids = self.db.create_statements(&new).await?;
        let mut created = Vec::new();
        for id in &created_ids {
            if let Some(r) = self.db.statement(id).await? {
                created.push(view(&r)?);
            }
        }
        Ok(GenerateReport { month: month.to_owned(), existing: existing.len() + planned.len() - created.len(), created })
    }

    /// The scheduled run: states last month once it is over (daily; idempotent).
    pub async fn generate_last_month(&self) -> Result<GenerateReport, CommerceError> {
        self.generate_statements(&previous_month(self.clock().now_ms())?).await
    }

    /// Statements for the administrator, newest month first; `status` open or paid.
    pub async fn list_statements(
        &self,
        status: Option<&str>,
        publisher: Option<&str>,
        month: Option<&str>,
    ) -> Result<Vec<Statement>, CommerceError> {
        if let Some(status) = status.filter(|s| !matches!(*s, "open" | "paid")) {
            return Err(CommerceError::Invalid(format!("a statement is open or paid, not {status:?}")));
        }
        if let Some(month) = month {
            month_bounds(month)?;
        }
        self.db.statements(publisher, status, month, MAX_STATEMENTS).await?.iter().map(view).collect()
    }

    /// Records that an open statement's net due was paid, with the payment's `reference`:
    /// its status and the payout's ledger transaction are written together. Refused (with
    /// nothing written) for a statement paid already or owing nothing.
    pub async fn mark_statement_paid(&self, id: &str, reference: &str, paid_by: &str) -> Result<Statement, CommerceError> {
        check_reference(reference)?;
        let s = self.db.statement(id).await?.ok_or_else(|| CommerceError::NotFound(format!("no statement {id:?}")))?;
        if s.net_due <= 0 {
            return Err(CommerceError::Conflict(format!("statement {id} has nothing due: there is nothing to pay")));
        }
        let entries = [
            LedgerEntry { account: format!("publisher:{}:payable", s.publisher), currency: s.currency.clone(), amount: s.net_due },
            LedgerEntry { account: PAYOUT_CASH_ACCOUNT.to_owned(), currency: s.currency.clone(), amount: -s.net_due },
        ];
        let key = format!("payout:{id}");
        let ledger = NewLedgerTransaction {
            id: &uuid::Uuid::new_v4().to_string(),
            kind: "payout",
            reference: id,
            idempotency_key: &key,
            entries: &entries,
        };
        match self.db.mark_statement_paid(id, reference, paid_by, &ledger).await? {
            MarkPaid::Paid(r) => view(&r),
            MarkPaid::NotFound => Err(CommerceError::NotFound(format!("no statement {id:?}"))),
            MarkPaid::AlreadyPaid(r) => {
                Err(CommerceError::Conflict(format!("statement {id} was marked paid already (reference {})", r.reference)))
            }
            MarkPaid::NothingDue(_) => Err(CommerceError::Conflict(format!("statement {id} has nothing due: there is nothing to pay"))),
        }
    }

    // ---- the publisher's sales ------------------------------------------------------------

    /// Checks that the viewer may see (`Action::ViewSales`) the sales of `publisher`, a
    /// publisher that exists.
    async fn sales_of(&self, viewer: &Viewer, publisher: &str) -> Result<(), CommerceError> {
        decide(&viewer.actor(), Action::ViewSales, &Resource::Sales { publisher })
            .into_result()
            .map_err(|r| CommerceError::Refused(r.kind, r.reason))?;
        match self.catalog.publisher(publisher).await.map_err(CommerceError::Catalog)? {
            Some(_) => Ok(()),
            None => Err(CommerceError::NotFound(format!("no publisher {publisher:?}"))),
        }
    }

    /// What `publisher` sold: its orders, subscriptions (trials marked), refunds and
    /// statements, for its owners and administrators.
    pub async fn sales(&self, viewer: &Viewer, publisher: &str) -> Result<Sales, CommerceError> {
        self.sales_of(viewer, publisher).await?;
        let mut orders = Vec::new();
        for (i, tier) in self.db.orders_of(publisher, MAX_SALES_ROWS).await? {
            let m = |minor| money(minor, &i.currency);
            orders.push(Order {
                number: invoice_number(&i.seller, i.number),
                customer: i.buyer_name.clone(),
                subscription: i.subscription_id.clone(),
                tier,
                subtotal: m(i.subtotal)?,
                tax: m(i.tax)?,
                total: m(i.total)?,
                created_at: i.created_at,
                invoice: i.id,
            });
        }
        let records = self.db.subscriptions_sold(publisher, MAX_SALES_ROWS).await?;
        let ids: Vec<String> = records.iter().map(|s| s.id.clone()).collect();
        let payments = self.db.payments_sold(publisher, &ids).await?;
        let mut subscriptions = Vec::new();
        for s in records {
            // The payment a refund takes from: the subscription's last (as `refund` picks it).
            let refundable = payments
                .iter()
                .find(|p| p.subscription_id == s.id)
                .filter(|p| p.amount > p.refunded)
                .map(|p| money(p.amount - p.refunded, &p.currency))
                .transpose()?;
            let price = if s.billing_period == "free" { None } else { Some(money(s.amount, &s.currency)?) };
            subscriptions.push(SoldSubscription {
                customer: s.account_name,
                product: s.listing_name,
                product_path: product_path(&s.publisher, &s.slug),
                tier: s.tier_name,
                trialing: s.status == "trialing",
                status: s.status,
                trial_end: s.trial_end,
                price,
                billing_period: s.billing_period,
                current_period_end: s.current_period_end,
                cancel_at_period_end: s.cancel_at_period_end != 0,
                created_at: s.created_at,
                refundable,
                id: s.id,
            });
        }
        let mut refunds = Vec::new();
        for r in self.db.refunds_sold(publisher, MAX_SALES_ROWS).await? {
            refunds.push(SaleRefund {
                credit_note: invoice_number(publisher, r.credit_note_number),
                amount: money(r.refund.amount, &r.refund.currency)?,
                subscription: r.refund.subscription_id,
                reason: r.refund.reason,
                refunded_by: r.refund.refunded_by,
                created_at: r.refund.created_at,
                id: r.refund.id,
            });
        }
        let statements =
            self.db.statements(Some(publisher), None, None, MAX_SALES_ROWS).await?.iter().map(view).collect::<Result<_, _>>()?;
        Ok(Sales { publisher: publisher.to_owned(), orders, subscriptions, refunds, statements })
    }

    /// The publisher's statements, newest month first, for its owners and administrators.
    pub async fn publisher_statements(&self, viewer: &Viewer, publisher: &str) -> Result<Vec<Statement>, CommerceError> {
        self.sales_of(viewer, publisher).await?;
        self.db.statements(Some(publisher), None, None, MAX_STATEMENTS).await?.iter().map(view).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_are_calendar_months_in_utc() {
        assert_eq!(month_bounds("2026-12").unwrap(), (1_796_083_200_000, 1_798_761_600_000));
        let (start, end) = month_bounds("2028-02").unwrap();
        assert_eq!((end - start) / 86_400_000, 29, "a leap February");
        for bad in ["2026-13", "2026-00", "2026-1", "26-01", "2026/01", "2026-01-01", "", "abcd-ef", "1969-12", "+202-01"] {
            let e = month_bounds(bad).unwrap_err();
            assert!(e.to_string().contains("YYYY-MM"), "{bad}: {e}");
        }
        assert_eq!(previous_month(month_bounds("2027-01").unwrap().0).unwrap(), "2026-12");
        assert_eq!(previous_month(month_bounds("2027-01").unwrap().1 - 1).unwrap(), "2026-12");
    }

    #[test]
    fn a_negative_net_owes_nothing() {
        let t = MonthTotals { gross: 4900, refunds: 0, platform_fee: 980, ..MonthTotals::default() };
        assert_eq!(settle(&t, 0).unwrap(), (3920, 3920));
        assert_eq!(settle(&t, -5000).unwrap(), (-1080, 0));
        let t = MonthTotals { gross: 0, refunds: 4900, platform_fee: -980, ..MonthTotals::default() };
        assert_eq!(settle(&t, 0).unwrap(), (-3920, 0));
        let huge = MonthTotals { gross: i64::MAX, refunds: -1, ..MonthTotals::default() };
        assert!(settle(&huge, 0).is_err());
    }

    #[test]
    fn references_are_plain_words() {
        for good in ["WIRE-2027-001", "sepa/123:4#5", "a"] {
            check_reference(good).unwrap();
        }
        for bad in ["", "=HYPERLINK(\"x\")", "-1", "+1", "@x", "a b", "a,b", "ä", &"x".repeat(MAX_REFERENCE + 1)] {
            assert!(check_reference(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_csv_has_its_columns_and_escapes_cells() {
        let usd = |minor| Amount::from(Money::new(minor, Currency::parse("USD").unwrap()));
        let s = Statement {
            id: "acme-2026-12-USD".into(),
            publisher: "acme".into(),
            month: "2026-12".into(),
            currency: "USD".into(),
            gross: usd(4900),
            refunds: usd(0),
            tax: usd(931),
            platform_fee: usd(980),
            carried_in: usd(-100),
            net: usd(3820),
            net_due: usd(3820),
            carried_over: usd(0),
            status: "paid".into(),
            reference: Some("a,\"b\"".into()),
            paid_at: Some(1_798_761_600_000),
            created_at: 0,
        };
        let csv = statements_csv(&[s]);
        let lines: Vec<&str> = csv.split("\r\n").collect();
        assert_eq!(lines[0], CSV_COLUMNS.join(","));
        assert_eq!(
            lines[1],
            "acme-2026-12-USD,acme,2026-12,USD,49.00,0.00,9.31,9.80,-1.00,38.20,38.20,0.00,paid,\"a,\"\"b\"\"\",2027-01-01T00:00:00Z"
        );
        assert_eq!(lines[2], "");
    }
}

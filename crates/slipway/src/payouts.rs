//! `slipway admin payouts ...`: the monthly payout statements from the command line. The
//! money itself moves outside Slipway (a bank transfer); this records that it did. Works
//! on the same database as `serve`, also while it runs.

use clap::{Subcommand, ValueEnum};
use slipway_commerce::{Statement, statements_csv};

use crate::App;

#[derive(Subcommand)]
pub enum PayoutsCommand {
    /// Create the statements of a month that is over: one per publisher and currency
    /// (running it again creates only what is missing).
    Generate {
        /// YYYY-MM (UTC).
        #[arg(long)]
        month: String,
    },
    /// List statements, newest month first.
    List {
        #[arg(long, value_enum)]
        status: Option<StatusFilter>,
        /// Only this publisher's.
        #[arg(long)]
        publisher: Option<String>,
    },
    /// Record that a statement's net due was paid, with the payment's reference; posts
    /// the payout to the ledger. Refused for a statement paid already or owing nothing.
    MarkPaid {
        /// The statement's id (PUBLISHER-YYYY-MM-CURRENCY).
        id: String,
        #[arg(long)]
        reference: String,
    },
    /// Print a month's statements as CSV.
    Csv {
        /// YYYY-MM (UTC).
        #[arg(long)]
        month: String,
    },
}

#[derive(Clone, Copy, ValueEnum)]
pub enum StatusFilter {
    Open,
    Paid,
}

impl StatusFilter {
    fn as_str(self) -> &'static str {
        match self {
            StatusFilter::Open => "open",
            StatusFilter::Paid => "paid",
        }
    }
}

/// Who a payout recorded from the command line was recorded by.
pub const OPERATOR: &str = "operator";

/// Runs a command, returning what it prints.
pub async fn output(app: &App, command: PayoutsCommand) -> anyhow::Result<String> {
    let commerce = &app.commerce;
    Ok(match command {
        PayoutsCommand::Generate { month } => {
            let report = commerce.generate_statements(&month).await?;
            let mut out = format!("{}: {} statement(s) created, {} existed already\n", report.month, report.created.len(), report.existing);
            out.push_str(&table(&report.created));
            out
        }
        PayoutsCommand::List { status, publisher } => {
            table(&commerce.list_statements(status.map(StatusFilter::as_str), publisher.as_deref(), None).await?)
        }
        PayoutsCommand::MarkPaid { id, reference } => {
            let s = commerce.mark_statement_paid(&id, &reference, OPERATOR).await?;
            format!("{} paid: {} to {} (reference {})\n", s.id, s.net_due.display, s.publisher, s.reference.unwrap_or_default())
        }
        PayoutsCommand::Csv { month } => statements_csv(&commerce.list_statements(None, None, Some(&month)).await?),
    })
}

pub async fn run(app: &App, command: PayoutsCommand) -> anyhow::Result<()> {
    print!("{}", output(app, command).await?);
    Ok(())
}

/// One line per statement, with a header; nothing when there are none.
fn table(statements: &[Statement]) -> String {
    if statements.is_empty() {
        return String::new();
    }
    let mut out =
        format!("{:<40} {:<8} {:>14} {:>14} {:>14} {:<6} {}\n", "STATEMENT", "MONTH", "NET", "DUE", "CARRIED OVER", "STATUS", "REFERENCE");
    for s in statements {
        out.push_str(&format!(
            "{:<40} {:<8} {:>14} {:>14} {:>14} {:<6} {}\n",
            s.id,
            s.month,
            s.net.display,
            s.net_due.display,
            s.carried_over.display,
            s.status,
            s.reference.as_deref().unwrap_or("-")
        ));
    }
    out
}

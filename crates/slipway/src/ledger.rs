//! `slipway ledger ...`: the double-entry ledger from the command line. Works on the same
//! database as `serve`, also while it runs.

use clap::Subcommand;
use slipway_db::LedgerReport;

use crate::App;

#[derive(Subcommand)]
pub enum LedgerCommand {
    /// Check that every stored ledger transaction has entries, in ISO 4217 currencies,
    /// that balance per currency, and that invoices, payments and refunds agree with the
    /// ledger; exits non-zero when anything does not.
    Verify,
}

pub async fn run(app: &App, command: LedgerCommand) -> anyhow::Result<()> {
    match command {
        LedgerCommand::Verify => {
            // The ledger's own checks and the cross-checks read different rows: run together
            // on two connections, they take the longer one's time rather than the sum.
            let ledger = app.db.ledger();
            let (report, disagreements) = tokio::join!(ledger.verify(), app.commerce.verify());
            let (report, disagreements) = (report?, disagreements?);
            print!("{}", summary(&report));
            println!("records       {}", if disagreements.is_empty() { "agree with the ledger" } else { "DISAGREE with the ledger" });
            for d in &disagreements {
                println!("{d}");
            }
            anyhow::ensure!(report.problem_count == 0, "the ledger has {} problem(s)", report.problem_count);
            anyhow::ensure!(disagreements.is_empty(), "{} record(s) disagree with the ledger", disagreements.len());
        }
    }
    Ok(())
}

/// What was checked, then one line per problem (the first `MAX_PROBLEMS` of them).
pub fn summary(report: &LedgerReport) -> String {
    let currencies =
        if report.currencies.is_empty() { "-".to_owned() } else { report.currencies.iter().cloned().collect::<Vec<_>>().join(", ") };
    let mut out = format!(
        "transactions  {}\nentries       {}\ncurrencies    {currencies}\nproblems      {}\n",
        report.transactions, report.entries, report.problem_count
    );
    for problem in &report.problems {
        out.push_str(&format!("{problem}\n"));
    }
    if report.problem_count > report.problems.len() as u64 {
        out.push_str(&format!("... and {} more\n", report.problem_count - report.problems.len() as u64));
    }
    out
}

#[cfg(test)]
mod tests {
    use slipway_db::{LedgerProblem, LedgerReport};

    #[test]
    fn the_summary_lists_the_problems_kept_and_counts_the_rest() {
        let report = LedgerReport {
            transactions: 3,
            entries: 6,
            currencies: ["EUR".to_owned(), "USD".to_owned()].into(),
            problems: vec![LedgerProblem::NoEntries { transaction: "t1".into() }],
            problem_count: 4,
        };
        assert_eq!(
            super::summary(&report),
            "transactions  3\nentries       6\ncurrencies    EUR, USD\nproblems      4\ntransaction t1: no entries\n... and 3 more\n"
        );
    }
}

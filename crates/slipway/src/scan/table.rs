//! The report for people: a header about the image, one aligned row per vulnerability,
//! and a summary by the store's classes. Every string that the image, the registry or the
//! feed chose goes through [`printable`]: this table is the one report read in a terminal.

use std::fmt::Write;

use slipway_scanner::cvss::{PolicyClass, Severity, SeveritySource, VendorScale};
use slipway_scanner::scan::{LayerState, ScanReport, Vulnerability};

use super::printable::printable;
use super::progress::short;

const RED: &str = "\x1b[1;31m";
const YELLOW: &str = "\x1b[33m";
const CYAN: &str = "\x1b[36m";
const DIM: &str = "\x1b[2m";
const RESET: &str = "\x1b[0m";

pub fn render(report: &ScanReport, color: bool) -> String {
    let mut out = String::new();
    let image = &report.image;
    let _ = writeln!(out, "Target:   {}", printable(&image.name));
    if let Some(digest) = image.digest.as_ref().or(image.config_digest.as_ref()) {
        let platform = image.platform.as_ref().map(|p| format!(" ({})", printable(&p.to_string()))).unwrap_or_default();
        let _ = writeln!(out, "Image:    {digest}{platform}");
    }
    let os = match (&report.os, &report.distribution) {
        (Some(os), Some(ecosystem)) => {
            format!("{} (advisories: {})", printable(os.pretty_name.as_deref().unwrap_or(&os.id)), printable(&ecosystem.to_string()))
        }
        (Some(os), None) => format!("{} (no advisory database covers it)", printable(os.pretty_name.as_deref().unwrap_or(&os.id))),
        (None, _) => "unknown (no os-release)".to_owned(),
    };
    let _ = writeln!(out, "OS:       {os}");
    let unchecked = report.packages.iter().filter(|p| p.osv.is_none() || p.error.is_some()).count();
    let _ = write!(out, "Packages: {}", report.packages.len());
    if unchecked > 0 {
        let _ = write!(out, " ({unchecked} not checked)");
    }
    out.push('\n');
    let cached = report.layers.iter().filter(|l| l.state == LayerState::Cached).count();
    let failed = report.layers.iter().filter(|l| matches!(l.state, LayerState::Failed { .. })).count();
    let partial = report.layers.iter().filter(|l| l.incomplete.is_some()).count();
    let _ = write!(out, "Layers:   {}", report.layers.len());
    if cached > 0 {
        let _ = write!(out, " ({cached} from cache)");
    }
    if failed > 0 {
        let _ = write!(out, " ({failed} NOT SCANNED: results are incomplete)");
    }
    if partial > 0 {
        let _ = write!(out, " ({partial} SCANNED IN PART: results are incomplete)");
    }
    out.push_str("\n\n");

    if report.vulnerabilities.is_empty() {
        out.push_str("No vulnerabilities found.\n");
        return out;
    }
    let header = ["CLASS", "CVSS", "PACKAGE", "INSTALLED", "FIXED", "VULNERABILITY", "LAYER"];
    let rows: Vec<[String; 7]> = report.vulnerabilities.iter().map(|v| row(report, v).map(|cell| printable(&cell).into_owned())).collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |out: &mut String, cells: &[String; 7], paint: Option<&str>| {
        for (index, (cell, width)) in cells.iter().zip(widths).enumerate() {
            let padded = if index + 1 == cells.len() { cell.clone() } else { format!("{cell:<width$}  ") };
            match (index, paint) {
                (0, Some(code)) => {
                    let _ = write!(out, "{code}{padded}{RESET}");
                }
                _ => out.push_str(&padded),
            }
        }
        out.push('\n');
    };
    let header = header.map(str::to_owned);
    line(&mut out, &header, color.then_some(DIM));
    for (row, v) in rows.iter().zip(&report.vulnerabilities) {
        line(&mut out, row, color.then(|| class_color(v.class())));
    }
    out.push('\n');
    out.push_str(&summary(report));
    out
}

fn row(report: &ScanReport, v: &Vulnerability) -> [String; 7] {
    let package = &report.packages[v.package].package;
    let class = v.class().map_or_else(|| "Unrated".to_owned(), |c| c.to_string());
    let id = if v.display_id() == v.advisory_id { v.advisory_id.clone() } else { format!("{} ({})", v.display_id(), v.advisory_id) };
    [
        class,
        v.severity.as_ref().map(band).unwrap_or_default(),
        package.name.clone(),
        v.installed_version.clone(),
        v.fixed_version.clone().unwrap_or_else(|| {
            if v.status == slipway_scanner::osv::FixState::WillNotFix { "(will not fix)".to_owned() } else { "-".to_owned() }
        }),
        id,
        short(&package.layer).to_owned(),
    ]
}

/// The CVSS band, with the score when a vector gave one, else whose rating it is.
fn band(severity: &Severity) -> String {
    match (severity.score, severity.source) {
        (Some(score), _) => format!("{score} {}", severity.band),
        (None, SeveritySource::Vendor(scale)) => {
            let who = match scale {
                VendorScale::DebianUrgency => "Debian",
                VendorScale::UbuntuPriority => "Ubuntu",
                VendorScale::GhsaSeverity => "GitHub",
            };
            format!("{} ({who})", severity.band)
        }
        (None, SeveritySource::Cvss(_)) => severity.band.to_string(),
    }
}

fn class_color(class: Option<PolicyClass>) -> &'static str {
    match class {
        Some(PolicyClass::Critical) => RED,
        Some(PolicyClass::Major) => YELLOW,
        Some(PolicyClass::Minor) => CYAN,
        None => DIM,
    }
}

fn summary(report: &ScanReport) -> String {
    let count = |class| report.vulnerabilities.iter().filter(|v| v.class() == class).count();
    let total = report.vulnerabilities.len();
    format!(
        "{total} {}: {} Critical (fix within 72 h), {} Major (fix within 7 days), {} Minor, {} unrated\n",
        if total == 1 { "vulnerability" } else { "vulnerabilities" },
        count(Some(PolicyClass::Critical)),
        count(Some(PolicyClass::Major)),
        count(Some(PolicyClass::Minor)),
        count(None),
    )
}

//! SARIF 2.1.0: one rule per advisory, one result per affected package.
//!
//! Results are located at the file the package was found in (the dpkg status file, a
//! `METADATA` file, `app.jar!/lib/inner.jar`), relative to the image root, with the
//! package's purl as a logical location. Levels follow the store's classes: Critical is
//! `error`, Major and unrated `warning`, Minor `note`. Each rule carries the
//! `security-severity` property that code scanning services sort and bucket by.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::{Value, json};

use super::{Generator, advisory_url, class_name, ranking_score};
use crate::cvss::PolicyClass;
use crate::scan::{ScanReport, Vulnerability};

pub const SCHEMA: &str = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json";

pub fn document(report: &ScanReport, generator: &Generator<'_>) -> Value {
    // One rule per advisory, in first-seen order (most severe first).
    let mut rule_index: BTreeMap<&str, usize> = BTreeMap::new();
    let mut rules: Vec<Value> = Vec::new();
    for vulnerability in &report.vulnerabilities {
        if !rule_index.contains_key(vulnerability.advisory_id.as_str()) {
            rule_index.insert(&vulnerability.advisory_id, rules.len());
            rules.push(rule(vulnerability));
        }
    }
    let results: Vec<Value> = report.vulnerabilities.iter().map(|v| result(report, v, rule_index[v.advisory_id.as_str()])).collect();
    let mut properties = json!({
        "image": report.image.name,
        "complete": report.is_complete(),
    });
    if let Some(digest) = &report.image.digest {
        properties["imageDigest"] = json!(digest.to_string());
    }
    if let Some(os) = report.os.as_ref().and_then(|os| os.pretty_name.as_ref()) {
        properties["os"] = json!(os);
    }
    json!({
        "$schema": SCHEMA,
        "version": "2.1.0",
        "runs": [{
            "tool": {"driver": {
                "name": generator.name,
                "version": generator.version,
                "semanticVersion": generator.version,
                "rules": rules,
            }},
            "invocations": [{
                "executionSuccessful": report.is_complete(),
                "endTimeUtc": generator.timestamp,
                "toolExecutionNotifications": report.layers.iter().filter_map(|layer| match &layer.state {
                    crate::scan::LayerState::Failed { error } => Some(json!({
                        "level": "error",
                        "message": {"text": format!("layer {} was not scanned: {error}", layer.digest)},
                    })),
                    _ => layer.incomplete.as_ref().map(|reason| json!({
                        "level": "error",
                        "message": {"text": format!("layer {} was scanned in part: {reason}", layer.digest)},
                    })),
                }).collect::<Vec<_>>(),
            }],
            "results": results,
            "properties": properties,
        }],
    })
}

fn rule(vulnerability: &Vulnerability) -> Value {
    let id = &vulnerability.advisory_id;
    let short = vulnerability.summary.clone().unwrap_or_else(|| format!("{} in {}", vulnerability.display_id(), id));
    let full = vulnerability.details.clone().unwrap_or_else(|| short.clone());
    let mut tags = vec!["security".to_owned(), "vulnerability".to_owned()];
    let mut properties = json!({});
    if let Some(severity) = &vulnerability.severity {
        tags.push(class_name(severity.class).to_owned());
        properties["security-severity"] = json!(format!("{:.1}", ranking_score(severity)));
    }
    properties["tags"] = json!(tags);
    let mut rule = json!({
        "id": id,
        "shortDescription": {"text": short},
        "fullDescription": {"text": full},
        "helpUri": advisory_url(id),
        "help": {"text": format!("{}: {}", vulnerability.display_id(), advisory_url(id))},
        "properties": properties,
    });
    if !vulnerability.aliases.is_empty() {
        rule["name"] = json!(vulnerability.aliases.join(", "));
    }
    rule
}

fn result(report: &ScanReport, vulnerability: &Vulnerability, rule_index: usize) -> Value {
    let package = &report.packages[vulnerability.package].package;
    let level = match vulnerability.class() {
        Some(PolicyClass::Critical) => "error",
        Some(PolicyClass::Major) | None => "warning",
        Some(PolicyClass::Minor) => "note",
    };
    let fix = match &vulnerability.fixed_version {
        Some(fixed) => format!("fixed in {fixed}"),
        None => "no fixed version".to_owned(),
    };
    let text = format!(
        "{} {} is affected by {} ({}); {fix}.",
        package.name,
        vulnerability.installed_version,
        vulnerability.display_id(),
        vulnerability.advisory_id,
    );
    json!({
        "ruleId": vulnerability.advisory_id,
        "ruleIndex": rule_index,
        "level": level,
        "message": {"text": text},
        "locations": [{
            "physicalLocation": {"artifactLocation": {"uri": uri(&package.path)}},
            "logicalLocations": [{"fullyQualifiedName": package.purl, "kind": "package"}],
        }],
        "partialFingerprints": {
            "packageAdvisory/v1": format!("{}|{}|{}", package.purl, package.path, vulnerability.advisory_id),
        },
        "properties": {
            "purl": package.purl,
            "installedVersion": vulnerability.installed_version,
            "fixedVersion": vulnerability.fixed_version,
            "layer": package.layer,
        },
    })
}

/// A path inside the image as a relative URI reference: characters outside the
/// unreserved set and path delimiters are percent-encoded.
fn uri(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/!$&'()*+,;=:@".contains(&byte) {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_become_relative_uri_references() {
        assert_eq!(uri("var/lib/dpkg/status"), "var/lib/dpkg/status");
        assert_eq!(uri("opt/my app/a.jar!/lib/b c.jar"), "opt/my%20app/a.jar!/lib/b%20c.jar");
        assert_eq!(uri("usr/lib/x%y"), "usr/lib/x%25y");
    }
}

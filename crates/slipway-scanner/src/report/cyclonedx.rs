//! A CycloneDX 1.6 SBOM (JSON): the image as the described component, the distribution
//! and every package as components with their purls, and the vulnerabilities with
//! their ratings and the components they affect.

use std::collections::{BTreeMap, HashSet};

use serde_json::{Value, json};

use super::{Generator, advisory_url, band_name};
use crate::cvss::{CvssVersion, Severity, SeveritySource, VendorScale};
use crate::osv::FixState;
use crate::scan::{ScanReport, Vulnerability};

/// `serial_number` is the document's `urn:uuid:…`, unique per generated document.
pub fn document(report: &ScanReport, generator: &Generator<'_>, serial_number: &str) -> Value {
    let refs = bom_refs(report);
    let mut components: Vec<Value> = Vec::with_capacity(report.packages.len() + 1);
    if let Some(os) = &report.os {
        let mut component = json!({"type": "operating-system", "bom-ref": "os", "name": os.id});
        if let Some(version) = &os.version_id {
            component["version"] = json!(version);
        }
        if let Some(pretty) = &os.pretty_name {
            component["description"] = json!(pretty);
        }
        components.push(component);
    }
    for (scanned, bom_ref) in report.packages.iter().zip(&refs) {
        let p = &scanned.package;
        let mut properties = vec![
            json!({"name": "slipway:package:path", "value": p.path}),
            json!({"name": "slipway:package:layer", "value": p.layer}),
            json!({"name": "slipway:package:ecosystem", "value": p.ecosystem}),
        ];
        if let Some(source) = &p.source_name {
            properties.push(json!({"name": "slipway:package:source_name", "value": source}));
        }
        if let Some(version) = &p.source_version {
            properties.push(json!({"name": "slipway:package:source_version", "value": version}));
        }
        components.push(json!({
            "type": "library",
            "bom-ref": bom_ref,
            "name": p.name,
            "version": p.version,
            "purl": p.purl,
            "properties": properties,
        }));
    }

    // One vulnerability per advisory, affecting every component it was found in.
    let mut by_advisory: BTreeMap<&str, Vec<&Vulnerability>> = BTreeMap::new();
    let mut order: Vec<&str> = Vec::new();
    for v in &report.vulnerabilities {
        let entry = by_advisory.entry(&v.advisory_id).or_default();
        if entry.is_empty() {
            order.push(&v.advisory_id);
        }
        entry.push(v);
    }
    let vulnerabilities: Vec<Value> = order.iter().map(|id| vulnerability(report, &by_advisory[id], &refs)).collect();

    let image = &report.image;
    let mut described = json!({
        "type": "container",
        "bom-ref": "image",
        "name": image.name,
    });
    if let Some(digest) = image.digest.as_ref().or(image.config_digest.as_ref()) {
        described["version"] = json!(digest.to_string());
    }
    json!({
        "$schema": "http://cyclonedx.org/schema/bom-1.6.schema.json",
        "bomFormat": "CycloneDX",
        "specVersion": "1.6",
        "serialNumber": serial_number,
        "version": 1,
        "metadata": {
            "timestamp": generator.timestamp,
            "tools": {"components": [{
                "type": "application",
                "name": generator.name,
                "version": generator.version,
            }]},
            "component": described,
        },
        "components": components,
        "vulnerabilities": vulnerabilities,
    })
}

/// A unique reference per package: its purl, with the path it was found at when the
/// same purl occurs more than once.
fn bom_refs(report: &ScanReport) -> Vec<String> {
    let mut seen: HashSet<&str> = HashSet::new();
    let duplicated: HashSet<&str> = report.packages.iter().map(|p| p.package.purl.as_str()).filter(|purl| !seen.insert(purl)).collect();
    let mut used: HashSet<String> = HashSet::new();
    report
        .packages
        .iter()
        .enumerate()
        .map(|(index, scanned)| {
            let p = &scanned.package;
            let mut reference = if duplicated.contains(p.purl.as_str()) { format!("{}#{}", p.purl, p.path) } else { p.purl.clone() };
            if used.contains(&reference) {
                reference = format!("{reference}#{index}");
            }
            used.insert(reference.clone());
            reference
        })
        .collect()
}

fn vulnerability(report: &ScanReport, found: &[&Vulnerability], refs: &[String]) -> Value {
    let first = found[0];
    let mut references: Vec<Value> =
        first.aliases.iter().map(|alias| json!({"id": alias, "source": {"url": advisory_url(alias)}})).collect();
    references.dedup();
    let affects: Vec<Value> = found
        .iter()
        .map(|v| {
            json!({
                "ref": refs[v.package],
                "versions": [{"version": v.installed_version, "status": "affected"}],
            })
        })
        .collect();
    let mut value = json!({
        "bom-ref": format!("vulnerability:{}", first.advisory_id),
        "id": first.advisory_id,
        "source": {"name": "OSV", "url": advisory_url(&first.advisory_id)},
        "references": references,
        "ratings": first.severities.iter().map(rating).collect::<Vec<_>>(),
        "affects": affects,
    });
    if let Some(summary) = &first.summary {
        value["description"] = json!(summary);
    }
    if let Some(details) = &first.details {
        value["detail"] = json!(details);
    }
    let fixes: Vec<String> = found
        .iter()
        .filter_map(|v| {
            let fixed = v.fixed_version.as_ref()?;
            Some(format!("Upgrade {} to {fixed}", report.packages[v.package].package.name))
        })
        .collect();
    if !fixes.is_empty() {
        value["recommendation"] = json!(fixes.join("; "));
    }
    if found.iter().all(|v| v.status == FixState::WillNotFix) {
        value["analysis"] = json!({
            "state": "exploitable",
            "response": ["will_not_fix"],
            "detail": "The distribution will not ship a fix for this release.",
        });
    }
    if let Some(published) = &first.published {
        value["published"] = json!(published);
    }
    if let Some(modified) = &first.modified {
        value["updated"] = json!(modified);
    }
    value
}

fn rating(severity: &Severity) -> Value {
    let (method, source) = match severity.source {
        SeveritySource::Cvss(CvssVersion::V3_0) => ("CVSSv3", "OSV"),
        SeveritySource::Cvss(CvssVersion::V3_1) => ("CVSSv31", "OSV"),
        SeveritySource::Cvss(CvssVersion::V4_0) => ("CVSSv4", "OSV"),
        SeveritySource::Vendor(VendorScale::DebianUrgency) => ("other", "Debian"),
        SeveritySource::Vendor(VendorScale::UbuntuPriority) => ("other", "Ubuntu"),
        SeveritySource::Vendor(VendorScale::GhsaSeverity) => ("other", "GitHub"),
    };
    let mut rating = json!({
        "source": {"name": source},
        "severity": band_name(severity.band),
        "method": method,
    });
    if let Some(score) = severity.score {
        rating["score"] = json!(score.value());
    }
    if let Some(vector) = &severity.vector {
        rating["vector"] = json!(vector);
    }
    if let Some(word) = &severity.rating {
        rating["justification"] = json!(format!("{} {word}", severity.source));
    }
    rating
}

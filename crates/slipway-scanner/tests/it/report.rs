//! The report documents of a scan of the test image: the fields each format requires,
//! that their cross-references (rule indexes, bom-refs) resolve, and that they validate
//! against the SARIF 2.1.0 and CycloneDX 1.6 schemas.

use std::collections::HashSet;
use std::fs;
use std::path::Path;
use std::process::Command;

use serde_json::Value;
use slipway_scanner::fixtures::debian_python_image;
use slipway_scanner::image::OciLayout;
use slipway_scanner::matcher::AdvisoryIndex;
use slipway_scanner::osv::import_path;
use slipway_scanner::report::{Generator, cyclonedx, json, sarif};
use slipway_scanner::scan::{LayerEvent, LayerState, ScanReport, Scanner};

use super::feed::good_dir;

const GENERATOR: Generator<'static> = Generator { name: "slipway", version: "0.1.0", timestamp: "2024-05-01T12:00:00Z" };

fn report() -> ScanReport {
    let dir = tempfile::tempdir().unwrap();
    debian_python_image().write_oci_layout(dir.path(), "1.0").unwrap();
    let source = OciLayout::open(dir.path(), None, None, "oci:image:1.0").unwrap();
    let feed = AdvisoryIndex::new(import_path(&good_dir()).unwrap().advisories);
    Scanner::default().scan(&source, &feed, &|_: usize, _: LayerEvent| {})
}

fn strings<'v>(values: impl IntoIterator<Item = &'v Value>, key: &str) -> Vec<&'v str> {
    values.into_iter().map(|v| v[key].as_str().unwrap_or_else(|| panic!("{key} in {v}"))).collect()
}

#[test]
fn json_report() {
    let report = report();
    let doc = json::document(&report, &GENERATOR);
    assert_eq!(doc["schema_version"], 1);
    assert_eq!(doc["generated_at"], "2024-05-01T12:00:00Z");
    assert_eq!(doc["os"]["id"], "debian");
    assert_eq!(doc["osv_ecosystem"], "Debian:12");
    let packages = doc["packages"].as_array().unwrap();
    assert_eq!(packages.len(), 9);
    let six = packages.iter().find(|p| p["name"] == "libssl3").unwrap();
    assert_eq!(six["ecosystem"], "deb");
    assert_eq!(six["source_name"], "openssl");
    assert_eq!(six["osv_ecosystem"], "Debian:12");
    assert_eq!(six["purl"], "pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12");
    let vulnerabilities = doc["vulnerabilities"].as_array().unwrap();
    for v in vulnerabilities {
        let package = &packages[usize::try_from(v["package"].as_u64().unwrap()).unwrap()];
        assert_eq!(v["package_name"], package["name"]);
        assert_eq!(v["installed_version"], package["version"]);
        // Every field is present, null when absent.
        for key in ["summary", "details", "published", "fixed_version", "severity"] {
            assert!(v.get(key).is_some(), "{key} missing in {v}");
        }
    }
    let gcc = vulnerabilities.iter().find(|v| v["package_name"] == "libgcc-s1").unwrap();
    assert_eq!(gcc["fixed_version"], Value::Null);
    assert_eq!(gcc["fix_state"], "unfixed");
    assert_eq!(gcc["severity"]["class"], "major");
    assert_eq!(gcc["severity"]["fix_within_hours"], 168);
    assert_eq!(gcc["severity"]["band"], "medium");
    assert_eq!(gcc["severity"]["score"], 4.8);
    let apt = vulnerabilities.iter().find(|v| v["package_name"] == "apt").unwrap();
    assert_eq!(apt["fix_state"], "will_not_fix");
    assert_eq!(apt["severity"]["source"], "debian_urgency");
    assert_eq!(apt["severity"]["rating"], "unimportant");
    assert_eq!(apt["severity"]["fix_within_hours"], Value::Null);
    assert_eq!(
        doc["summary"],
        serde_json::json!({"critical": 2, "major": 2, "minor": 3, "unrated": 0, "packages": 9, "unchecked_packages": 0})
    );
}

#[test]
fn sarif_report() {
    let report = report();
    let doc = sarif::document(&report, &GENERATOR);
    assert_eq!(doc["version"], "2.1.0");
    assert_eq!(doc["$schema"], sarif::SCHEMA);
    let runs = doc["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 1);
    let driver = &runs[0]["tool"]["driver"];
    assert_eq!(driver["name"], "slipway");
    let rules = driver["rules"].as_array().unwrap();
    let rule_ids = strings(rules, "id");
    assert_eq!(rule_ids.iter().collect::<HashSet<_>>().len(), rule_ids.len(), "one rule per advisory");
    for rule in rules {
        assert!(rule["shortDescription"]["text"].is_string(), "{rule}");
        assert!(rule["fullDescription"]["text"].is_string(), "{rule}");
        let score: f64 = rule["properties"]["security-severity"].as_str().unwrap().parse().unwrap();
        assert!((0.0..=10.0).contains(&score), "{rule}");
    }
    let results = runs[0]["results"].as_array().unwrap();
    assert_eq!(results.len(), report.vulnerabilities.len());
    for result in results {
        let index = usize::try_from(result["ruleIndex"].as_u64().unwrap()).unwrap();
        assert_eq!(rules[index]["id"], result["ruleId"]);
        assert!(["error", "warning", "note"].contains(&result["level"].as_str().unwrap()));
        assert!(!result["message"]["text"].as_str().unwrap().is_empty());
        let location = &result["locations"][0];
        assert!(
            location["physicalLocation"]["artifactLocation"]["uri"].as_str().unwrap().ends_with("METADATA")
                || location["physicalLocation"]["artifactLocation"]["uri"] == "var/lib/dpkg/status"
        );
        assert!(location["logicalLocations"][0]["fullyQualifiedName"].as_str().unwrap().starts_with("pkg:"));
    }
    let openssh = &results[0];
    assert_eq!(openssh["ruleId"], "DEBIAN-CVE-2024-6387");
    assert_eq!(openssh["level"], "error");
    assert_eq!(
        openssh["message"]["text"],
        "openssh-client 1:9.2p1-2+deb12u2 is affected by CVE-2024-6387 (DEBIAN-CVE-2024-6387); fixed in 1:9.2p1-2+deb12u3."
    );
    assert_eq!(runs[0]["invocations"][0]["executionSuccessful"], true);
}

#[test]
fn cyclonedx_report() {
    let report = report();
    let serial = "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79";
    let doc = cyclonedx::document(&report, &GENERATOR, serial);
    assert_eq!(doc["bomFormat"], "CycloneDX");
    assert_eq!(doc["specVersion"], "1.6");
    assert_eq!(doc["serialNumber"], serial);
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["metadata"]["timestamp"], "2024-05-01T12:00:00Z");
    assert_eq!(doc["metadata"]["component"]["type"], "container");
    let components = doc["components"].as_array().unwrap();
    let refs = strings(components, "bom-ref");
    let refs: HashSet<&str> = refs.into_iter().collect();
    assert_eq!(refs.len(), components.len(), "bom-refs are unique");
    assert_eq!(components[0]["type"], "operating-system");
    assert_eq!(components[0]["version"], "12");
    for component in &components[1..] {
        assert_eq!(component["type"], "library");
        assert!(component["purl"].as_str().unwrap().starts_with("pkg:"));
        assert!(component["name"].is_string() && component["version"].is_string());
    }
    let vulnerabilities = doc["vulnerabilities"].as_array().unwrap();
    let ids = strings(vulnerabilities, "id");
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), ids.len());
    for v in vulnerabilities {
        for affected in v["affects"].as_array().unwrap() {
            assert!(refs.contains(affected["ref"].as_str().unwrap()), "{v}");
            assert_eq!(affected["versions"][0]["status"], "affected");
        }
        for rating in v["ratings"].as_array().unwrap() {
            assert!(["CVSSv3", "CVSSv31", "CVSSv4", "other"].contains(&rating["method"].as_str().unwrap()));
            assert!(["critical", "high", "medium", "low", "none"].contains(&rating["severity"].as_str().unwrap()));
        }
    }
    // Both binaries of openssl share one vulnerability entry.
    let openssl = vulnerabilities.iter().find(|v| v["id"] == "DEBIAN-CVE-2023-5678").unwrap();
    assert_eq!(openssl["affects"].as_array().unwrap().len(), 2);
    assert_eq!(openssl["recommendation"], "Upgrade libssl3 to 3.0.13-1~deb12u1; Upgrade openssl to 3.0.13-1~deb12u1");
    let openssh = vulnerabilities.iter().find(|v| v["id"] == "DEBIAN-CVE-2024-6387").unwrap();
    let rating = &openssh["ratings"][0];
    assert_eq!(rating["method"], "CVSSv31");
    assert_eq!(rating["severity"], "high");
    assert!(rating["vector"].as_str().unwrap().starts_with("CVSS:3.1/"));
    let apt = vulnerabilities.iter().find(|v| v["id"] == "DEBIAN-CVE-2011-3374").unwrap();
    assert_eq!(apt["analysis"]["response"][0], "will_not_fix");
}

#[test]
fn documents_validate_against_the_official_schemas() {
    // The Python has cyclonedx-python-lib[json-validation] too.
    let python = crate::oracle::python();
    let root = crate::oracle::workspace_root();
    let sarif_schema = root.join("tests/oracles/node_modules/@microsoft/jest-sarif/lib/schemas/sarif-2.1.0-rtm.5.json");
    assert!(sarif_schema.exists(), "{} not found: run scripts/install-test-deps", sarif_schema.display());

    // A complete scan, and one with a layer that fails (notifications, will-not-fix).
    let complete = report();
    let mut incomplete = complete.clone();
    incomplete.layers[1].state = LayerState::Failed { error: "digest mismatch".to_owned() };
    let dir = tempfile::tempdir().unwrap();
    for (name, report) in [("complete", &complete), ("incomplete", &incomplete)] {
        let sarif_log = dir.path().join(format!("{name}.sarif"));
        let bom = dir.path().join(format!("{name}.cdx.json"));
        let write = |path: &Path, doc: Value| fs::write(path, serde_json::to_vec(&doc).unwrap()).unwrap();
        write(&sarif_log, sarif::document(report, &GENERATOR));
        write(&bom, cyclonedx::document(report, &GENERATOR, "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79"));
        let output = Command::new(&python)
            .arg(root.join("tests/oracles/validate-reports.py"))
            .args([&sarif_schema, &sarif_log, &bom])
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e} ({})", python.display(), crate::oracle::INSTALL_HINT));
        assert!(output.status.success(), "{name}: {}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    }
}

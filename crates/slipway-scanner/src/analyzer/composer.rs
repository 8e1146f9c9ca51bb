//! PHP Composer: `vendor/composer/installed.json`, in its 1.x (a list) and 2.x
//! (`{"packages": [...]}`) forms.

use super::{Ecosystem, FoundPackage};
use crate::ScanError;
use serde::Deserialize;

pub(super) fn is_installed(path: &str) -> bool {
    path == "vendor/composer/installed.json" || path.ends_with("/vendor/composer/installed.json")
}

#[derive(Deserialize)]
#[serde(untagged)]
enum Installed {
    V2 { packages: Vec<Entry> },
    V1(Vec<Entry>),
}

#[derive(Deserialize)]
struct Entry {
    name: String,
    version: String,
}

pub(super) fn parse(data: &[u8]) -> Result<Vec<FoundPackage>, ScanError> {
    let installed: Installed =
        serde_json::from_slice(data).map_err(|err| ScanError::Malformed { what: "composer installed.json", detail: err.to_string() })?;
    let (Installed::V2 { packages } | Installed::V1(packages)) = installed;
    Ok(packages.into_iter().map(|entry| FoundPackage::new(Ecosystem::Packagist, entry.name, entry.version)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_formats() {
        let v2 = br#"{"packages": [{"name": "monolog/monolog", "version": "3.5.0", "version_normalized": "3.5.0.0",
            "type": "library"}, {"name": "psr/log", "version": "3.0.0"}], "dev": true, "dev-package-names": []}"#;
        let names: Vec<String> = parse(v2).unwrap().into_iter().map(|p| format!("{}@{}", p.name, p.version)).collect();
        assert_eq!(names, ["monolog/monolog@3.5.0", "psr/log@3.0.0"]);
        let v1 = br#"[{"name": "symfony/console", "version": "v5.4.0"}]"#;
        assert_eq!(parse(v1).unwrap()[0].version, "v5.4.0");
        assert!(parse(br#"{"packages": 1}"#).is_err());
        assert!(is_installed("var/www/vendor/composer/installed.json"));
    }
}

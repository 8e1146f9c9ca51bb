//! npm: `package.json` of each package directory under `node_modules`.

use super::{Ecosystem, FoundPackage};
use crate::ScanError;

/// `…/node_modules/NAME/package.json` or `…/node_modules/@SCOPE/NAME/package.json`, not
/// the many package.json files deeper inside packages.
pub(super) fn is_manifest(path: &str) -> bool {
    let mut parts = path.rsplit('/');
    if parts.next() != Some("package.json") {
        return false;
    }
    let (Some(_name), Some(parent)) = (parts.next(), parts.next()) else {
        return false;
    };
    parent == "node_modules" || (parent.starts_with('@') && parts.next() == Some("node_modules"))
}

/// A manifest without a name or version (a workspace placeholder) is no package.
pub(super) fn parse(data: &[u8]) -> Result<Option<FoundPackage>, ScanError> {
    #[derive(serde::Deserialize)]
    struct Manifest {
        name: Option<String>,
        version: Option<String>,
    }
    let manifest: Manifest =
        serde_json::from_slice(data).map_err(|err| ScanError::Malformed { what: "package.json", detail: err.to_string() })?;
    Ok(match (manifest.name, manifest.version) {
        (Some(name), Some(version)) if !name.is_empty() && !version.is_empty() => Some(FoundPackage::new(Ecosystem::Npm, name, version)),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifest_paths() {
        assert!(is_manifest("app/node_modules/express/package.json"));
        assert!(is_manifest("app/node_modules/@babel/core/package.json"));
        assert!(is_manifest("node_modules/a/node_modules/b/package.json"));
        assert!(!is_manifest("app/package.json"));
        assert!(!is_manifest("app/node_modules/express/lib/package.json"));
        assert!(!is_manifest("app/node_modules/@babel/core/lib/package.json"));
    }

    #[test]
    fn manifests() {
        let package = parse(br#"{"name": "@babel/core", "version": "7.23.2", "dependencies": {}}"#).unwrap().unwrap();
        assert_eq!(package.name, "@babel/core");
        assert!(parse(br#"{"private": true}"#).unwrap().is_none());
        assert!(parse(b"{not json").is_err());
    }
}

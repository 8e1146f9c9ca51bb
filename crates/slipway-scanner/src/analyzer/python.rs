//! Python distributions: `*.dist-info/METADATA` and `*.egg-info` (file or directory).

use super::rfc822::{field, paragraphs};
use super::{Ecosystem, FoundPackage};
use crate::ScanError;

pub(super) fn is_metadata(path: &str) -> bool {
    path.ends_with(".dist-info/METADATA")
        || path.ends_with(".egg-info/PKG-INFO")
        || path.ends_with("/EGG-INFO/PKG-INFO")
        || path.ends_with(".egg-info")
}

pub(super) fn parse(data: &[u8]) -> Result<Option<FoundPackage>, ScanError> {
    let text = String::from_utf8_lossy(data);
    let headers = paragraphs(&text, "Python metadata", true)?;
    let Some(headers) = headers.first() else {
        return Ok(None);
    };
    let name = field(headers, "Name");
    let version = field(headers, "Version");
    match (name, version) {
        (Some(name), Some(version)) => Ok(Some(FoundPackage::new(Ecosystem::PyPI, name, version))),
        _ => Err(ScanError::Malformed { what: "Python metadata", detail: "no Name or no Version header".to_owned() }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_paths() {
        assert!(is_metadata("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/METADATA"));
        assert!(is_metadata("usr/lib/python3/dist-packages/six-1.16.0.egg-info"));
        assert!(is_metadata("app/.venv/lib/python3.12/site-packages/x-1.egg-info/PKG-INFO"));
        assert!(!is_metadata("usr/lib/python3/dist-packages/requests-2.31.0.dist-info/RECORD"));
    }

    #[test]
    fn core_metadata_headers_only() {
        let metadata = b"Metadata-Version: 2.1
Name: requests
Version: 2.31.0
Summary: Python HTTP for Humans.
Requires-Dist: charset-normalizer (<4,>=2)

Name: not-a-header
Version: 0
";
        let package = parse(metadata).unwrap().unwrap();
        assert_eq!((package.name.as_str(), package.version.as_str()), ("requests", "2.31.0"));
        assert!(parse(b"Metadata-Version: 2.1\nName: x\n").is_err());
    }
}

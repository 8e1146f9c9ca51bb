//! The dependency list that cargo-auditable embeds in Rust binaries: zlib-compressed
//! JSON in the `.dep-v0` section.

use super::{Ecosystem, FoundPackage};
use crate::ScanError;
use flate2::read::ZlibDecoder;
use serde::Deserialize;
use std::io::Read;

#[derive(Deserialize)]
struct Audit {
    packages: Vec<AuditPackage>,
}

#[derive(Deserialize)]
struct AuditPackage {
    name: String,
    version: String,
    source: String,
}

/// The crates from crates.io; path and git dependencies have no advisories to match.
/// The JSON is inflated to at most `cap` bytes.
pub(super) fn packages(section: &[u8], cap: u64) -> Result<Vec<FoundPackage>, ScanError> {
    let malformed = |detail: String| ScanError::Malformed { what: "cargo-auditable data", detail };
    let mut json = Vec::new();
    ZlibDecoder::new(section).take(cap).read_to_end(&mut json).map_err(|err| malformed(err.to_string()))?;
    let audit: Audit = serde_json::from_slice(&json).map_err(|err| malformed(err.to_string()))?;
    Ok(audit
        .packages
        .into_iter()
        .filter(|package| package.source == "crates.io")
        .map(|package| FoundPackage::new(Ecosystem::CratesIo, package.name, package.version))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::ZlibEncoder;
    use std::io::Write;

    #[test]
    fn crates_io_packages_only() {
        let json = br#"{"packages":[
            {"name":"app","version":"0.1.0","source":"local","root":true,"dependencies":[1]},
            {"name":"serde","version":"1.0.197","source":"crates.io"},
            {"name":"forked","version":"0.3.0","source":"git"}]}"#;
        let mut encoder = ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(json).unwrap();
        let found = packages(&encoder.finish().unwrap(), 1 << 20).unwrap();
        assert_eq!(found, [FoundPackage::new(Ecosystem::CratesIo, "serde", "1.0.197")]);
        assert!(packages(b"not zlib", 1 << 20).is_err());
    }
}

//! dpkg: `var/lib/dpkg/status`, distroless `status.d/`, and the file lists that say which
//! files the packages own.

use super::rfc822::{field, paragraphs};
use super::{Ecosystem, FoundPackage, path_hash};
use crate::ScanError;

const STATUS: &str = "var/lib/dpkg/status";
const STATUS_D: &str = "var/lib/dpkg/status.d/";
const INFO: &str = "var/lib/dpkg/info/";

pub(super) enum Kind {
    /// Package paragraphs: the status file, or one distroless `status.d` entry.
    Status,
    /// Owned paths: `info/NAME.list`, or `status.d/NAME.md5sums` in distroless.
    Files,
}

pub(super) fn classify(path: &str) -> Option<Kind> {
    if path == STATUS {
        return Some(Kind::Status);
    }
    if let Some(name) = path.strip_prefix(STATUS_D) {
        if name.contains('/') {
            return None;
        }
        return Some(if name.ends_with(".md5sums") { Kind::Files } else { Kind::Status });
    }
    let name = path.strip_prefix(INFO)?;
    (!name.contains('/') && name.ends_with(".list")).then_some(Kind::Files)
}

/// The installed packages of a status file. A paragraph without `Package` or `Version`
/// makes the whole file malformed: a half-read database would under-report silently.
pub(super) fn parse_status(data: &[u8]) -> Result<Vec<FoundPackage>, ScanError> {
    let text = std::str::from_utf8(data).map_err(|err| ScanError::Malformed { what: "dpkg status", detail: err.to_string() })?;
    let mut packages = Vec::new();
    for paragraph in paragraphs(text, "dpkg status", false)? {
        let missing = |name: &str| ScanError::Malformed { what: "dpkg status", detail: format!("a paragraph has no {name} field") };
        let name = field(&paragraph, "Package").ok_or_else(|| missing("Package"))?;
        // Distroless entries have no Status: they are installed by construction.
        let state = field(&paragraph, "Status").and_then(|status| status.split_whitespace().nth(2));
        if matches!(state, Some("not-installed" | "config-files")) {
            continue;
        }
        let version = field(&paragraph, "Version").ok_or_else(|| missing("Version"))?;
        let mut package = FoundPackage::new(Ecosystem::Deb, name, version);
        package.arch = field(&paragraph, "Architecture").map(str::to_owned);
        // `Source: name` or `Source: name (version)` when the binary version differs.
        let (source_name, source_version) = match field(&paragraph, "Source") {
            Some(source) => match source.split_once(' ') {
                Some((source_name, rest)) => (source_name, rest.trim().trim_start_matches('(').trim_end_matches(')')),
                None => (source, version),
            },
            None => (name, version),
        };
        package.source_name = Some(source_name.to_owned());
        package.source_version = Some(source_version.to_owned());
        packages.push(package);
    }
    Ok(packages)
}

/// Hashes of the owned paths, taken relative to the root like every path here.
pub(super) fn parse_file_list(path: &str, data: &[u8]) -> Vec<u64> {
    let text = String::from_utf8_lossy(data);
    let md5sums = path.ends_with(".md5sums");
    text.lines()
        .filter_map(|line| {
            // md5sums lines are `HASH  path`; .list lines are absolute paths.
            let owned = if md5sums { line.split_once("  ")?.1 } else { line };
            let owned = owned.trim_start_matches('/');
            (!owned.is_empty() && owned != ".").then(|| path_hash(owned))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_paths() {
        assert!(matches!(classify("var/lib/dpkg/status"), Some(Kind::Status)));
        assert!(matches!(classify("var/lib/dpkg/status.d/base"), Some(Kind::Status)));
        assert!(matches!(classify("var/lib/dpkg/status.d/libc6.md5sums"), Some(Kind::Files)));
        assert!(matches!(classify("var/lib/dpkg/info/libc6:amd64.list"), Some(Kind::Files)));
        assert!(classify("var/lib/dpkg/info/libc6.md5sums").is_none());
        assert!(classify("var/lib/dpkg/status-old").is_none());
    }

    #[test]
    fn status_with_sources_and_states() {
        let status = b"Package: libc6
Status: install ok installed
Architecture: amd64
Multi-Arch: same
Source: glibc
Version: 2.36-9+deb12u4
Description: GNU C Library: Shared libraries
 Contains the standard libraries.

Package: gcc-12-base
Status: deinstall ok config-files
Version: 12.2.0-14

Package: libgnutls30
Status: install ok installed
Architecture: amd64
Source: gnutls28 (3.7.9-2+deb12u2)
Version: 3.7.9-2+deb12u2
";
        let packages = parse_status(status).unwrap();
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[0].name, "libc6");
        assert_eq!(packages[0].source_name.as_deref(), Some("glibc"));
        assert_eq!(packages[0].source_version.as_deref(), Some("2.36-9+deb12u4"));
        assert_eq!(packages[1].source_version.as_deref(), Some("3.7.9-2+deb12u2"));
        assert_eq!(packages[1].arch.as_deref(), Some("amd64"));
    }

    #[test]
    fn missing_version_is_malformed() {
        let err = parse_status(b"Package: x\nStatus: install ok installed\n").unwrap_err();
        assert!(err.to_string().contains("no Version field"), "{err}");
    }

    #[test]
    fn file_lists() {
        assert_eq!(parse_file_list("var/lib/dpkg/info/a.list", b"/.\n/usr\n/usr/bin/a\n"), [path_hash("usr"), path_hash("usr/bin/a")]);
        assert_eq!(
            parse_file_list("var/lib/dpkg/status.d/a.md5sums", b"d41d8cd98f00b204e9800998ecf8427e  usr/bin/a\n"),
            [path_hash("usr/bin/a")]
        );
    }
}

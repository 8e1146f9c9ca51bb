//! apk: `lib/apk/db/installed`.

use super::{Ecosystem, FoundPackage, path_hash};
use crate::ScanError;

/// The database, and where merged-/usr Alpine keeps it.
pub(super) const INSTALLED: [&str; 2] = ["lib/apk/db/installed", "usr/lib/apk/db/installed"];

/// Packages with the files they own (`F:` names a directory, `R:` a file in it).
pub(super) fn parse(data: &[u8]) -> Result<Vec<FoundPackage>, ScanError> {
    let text = std::str::from_utf8(data).map_err(|err| ScanError::Malformed { what: "apk database", detail: err.to_string() })?;
    let mut packages = Vec::new();
    for (index, block) in text.split("\n\n").enumerate() {
        let mut package = FoundPackage::new(Ecosystem::Apk, "", "");
        let mut dir = String::new();
        for line in block.lines().filter(|line| !line.is_empty()) {
            let Some((key, value)) = line.split_once(':') else {
                return Err(ScanError::Malformed {
                    what: "apk database",
                    detail: format!("entry {}: line without a key: {line:?}", index + 1),
                });
            };
            match key {
                "P" => package.name = value.to_owned(),
                "V" => package.version = value.to_owned(),
                "A" => package.arch = Some(value.to_owned()),
                "o" => package.source_name = Some(value.to_owned()),
                "F" => dir = value.to_owned(),
                "R" if dir.is_empty() => package.files.push(path_hash(value)),
                "R" => package.files.push(path_hash(&format!("{dir}/{value}"))),
                _ => {}
            }
        }
        if package.name.is_empty() && package.version.is_empty() {
            continue;
        }
        if package.name.is_empty() || package.version.is_empty() {
            return Err(ScanError::Malformed {
                what: "apk database",
                detail: format!("entry {} lacks a name (P:) or version (V:)", index + 1),
            });
        }
        packages.push(package);
    }
    Ok(packages)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn installed_db() {
        let db = b"C:Q1abc=
P:musl
V:1.2.4_git20230717-r4
A:x86_64
S:407574
o:musl
F:lib
R:ld-musl-x86_64.so.1
R:libc.musl-x86_64.so.1

C:Q1def=
P:libcrypto3
V:3.1.4-r5
A:x86_64
o:openssl
F:lib
R:libcrypto.so.3
F:usr/lib/engines-3
R:afalg.so
";
        let packages = parse(db).unwrap();
        assert_eq!(packages.len(), 2);
        assert_eq!(packages[1].name, "libcrypto3");
        assert_eq!(packages[1].source_name.as_deref(), Some("openssl"));
        assert_eq!(packages[1].files, [path_hash("lib/libcrypto.so.3"), path_hash("usr/lib/engines-3/afalg.so")]);
    }

    #[test]
    fn entry_without_version_is_malformed() {
        assert!(parse(b"P:musl\nA:x86_64\n").is_err());
        assert!(parse(b"P:musl\ngarbage\n").is_err());
    }
}

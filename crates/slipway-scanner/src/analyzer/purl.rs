//! Package URLs (the purl specification) for merged packages.

use super::{Ecosystem, FoundPackage, OsRelease};
use std::fmt::Write;

pub(super) fn purl(package: &FoundPackage, os: Option<&OsRelease>) -> String {
    let name = package.name.as_str();
    let (kind, path) = match package.ecosystem {
        Ecosystem::Deb => ("deb", vec![distro_id(os), name]),
        Ecosystem::Apk => ("apk", vec![distro_id(os), name]),
        Ecosystem::Rpm => ("rpm", vec![distro_id(os), name]),
        Ecosystem::PyPI => return simple("pypi", &pep503(name), &package.version),
        Ecosystem::Npm => ("npm", name.split('/').collect()),
        Ecosystem::Go => ("golang", name.split('/').collect()),
        Ecosystem::CratesIo => ("cargo", vec![name]),
        Ecosystem::Maven => ("maven", name.split(':').collect()),
        Ecosystem::RubyGems => ("gem", vec![name]),
        Ecosystem::Packagist => ("composer", name.split('/').collect()),
    };
    let mut out = format!("pkg:{kind}");
    for segment in path {
        out.push('/');
        encode(&mut out, segment);
    }
    out.push('@');
    // Go versions are kept without the `v` that module versions carry.
    if package.ecosystem == Ecosystem::Go {
        out.push('v');
    }
    encode(&mut out, &package.version);
    let mut qualifiers = Vec::new();
    if let Some(arch) = &package.arch {
        qualifiers.push(("arch", arch.clone()));
    }
    match (package.ecosystem, os) {
        (Ecosystem::Apk, Some(os)) => {
            qualifiers.push(("distro", os.version_id.clone().unwrap_or_default()));
        }
        (Ecosystem::Deb | Ecosystem::Rpm, Some(os)) => {
            let version = os.version_id.as_deref().unwrap_or_default();
            qualifiers.push(("distro", format!("{}-{version}", os.id)));
        }
        _ => {}
    }
    for (index, (key, value)) in qualifiers.iter().enumerate() {
        out.push(if index == 0 { '?' } else { '&' });
        out.push_str(key);
        out.push('=');
        encode(&mut out, value);
    }
    out
}

fn distro_id(os: Option<&OsRelease>) -> &str {
    os.map_or("linux", |os| os.id.as_str())
}

fn simple(kind: &str, name: &str, version: &str) -> String {
    let mut out = format!("pkg:{kind}/");
    encode(&mut out, name);
    out.push('@');
    encode(&mut out, version);
    out
}

/// PEP 503 normalisation, which the purl spec prescribes for PyPI names.
fn pep503(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.chars() {
        if matches!(c, '-' | '_' | '.') {
            if !out.ends_with('-') {
                out.push('-');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out
}

/// Percent-encodes all but unreserved characters and `:`, which the spec leaves bare.
fn encode(out: &mut String, text: &str) {
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b':') {
            out.push(char::from(byte));
        } else {
            let _ = write!(out, "%{byte:02X}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn found(ecosystem: Ecosystem, name: &str, version: &str) -> FoundPackage {
        FoundPackage::new(ecosystem, name, version)
    }

    #[test]
    fn os_packages_carry_distro_and_arch() {
        let os = OsRelease { id: "debian".into(), version_id: Some("12".into()), ..Default::default() };
        let mut libc = found(Ecosystem::Deb, "libc6", "2.36-9+deb12u4");
        libc.arch = Some("amd64".into());
        assert_eq!(purl(&libc, Some(&os)), "pkg:deb/debian/libc6@2.36-9%2Bdeb12u4?arch=amd64&distro=debian-12");
        let epoch = found(Ecosystem::Deb, "zlib1g", "1:1.2.13.dfsg-1");
        assert_eq!(purl(&epoch, None), "pkg:deb/linux/zlib1g@1:1.2.13.dfsg-1");
        let alpine = OsRelease { id: "alpine".into(), version_id: Some("3.19.1".into()), ..Default::default() };
        assert_eq!(purl(&found(Ecosystem::Apk, "musl", "1.2.4-r2"), Some(&alpine)), "pkg:apk/alpine/musl@1.2.4-r2?distro=3.19.1");
    }

    #[test]
    fn language_packages() {
        assert_eq!(purl(&found(Ecosystem::PyPI, "Zope.Interface", "6.0"), None), "pkg:pypi/zope-interface@6.0");
        assert_eq!(purl(&found(Ecosystem::Npm, "@babel/core", "7.23.2"), None), "pkg:npm/%40babel/core@7.23.2");
        assert_eq!(purl(&found(Ecosystem::Go, "golang.org/x/text", "0.14.0"), None), "pkg:golang/golang.org/x/text@v0.14.0");
        assert_eq!(
            purl(&found(Ecosystem::Maven, "org.apache.logging.log4j:log4j-core", "2.14.1"), None),
            "pkg:maven/org.apache.logging.log4j/log4j-core@2.14.1"
        );
    }
}

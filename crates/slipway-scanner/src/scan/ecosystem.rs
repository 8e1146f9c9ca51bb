//! Which OSV ecosystem (and distribution release) an installed package's advisories are
//! published under.

use std::fmt;

use crate::analyzer::{Ecosystem, OsRelease};

/// The OSV ecosystem and release that a package is matched in.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OsvEcosystem {
    /// The ecosystem's base name: `Debian`, `PyPI`.
    pub name: &'static str,
    /// The distribution release, as OSV suffixes name it (`12`, `22.04`, `3.19`,
    /// `Leap 15.5`); `None` for language ecosystems and rolling distributions.
    pub release: Option<String>,
}

impl fmt::Display for OsvEcosystem {
    /// The ecosystem string of OSV records: `Debian:12`, `Alpine:v3.19`, `PyPI`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.release, self.name) {
            (Some(release), "Alpine") => write!(f, "Alpine:v{release}"),
            (Some(release), name) => write!(f, "{name}:{release}"),
            (None, name) => f.write_str(name),
        }
    }
}

/// The OSV ecosystem of a package of `ecosystem` in an image whose `os-release` is `os`;
/// `None` when no OSV database covers it: an OS package of a distribution that OSV
/// does not cover as `os-release` names it (Red Hat's records are scoped to product
/// streams such as `enterprise_linux:9::appstream`, SUSE's to modules such as `Linux
/// Enterprise Module for Basesystem 15 SP5`: neither is named by `os-release`), or of
/// an image without `os-release`.
pub fn osv_ecosystem(ecosystem: Ecosystem, os: Option<&OsRelease>) -> Option<OsvEcosystem> {
    let language = |name| Some(OsvEcosystem { name, release: None });
    match ecosystem {
        Ecosystem::PyPI => language("PyPI"),
        Ecosystem::Npm => language("npm"),
        Ecosystem::Go => language("Go"),
        Ecosystem::CratesIo => language("crates.io"),
        Ecosystem::Maven => language("Maven"),
        Ecosystem::RubyGems => language("RubyGems"),
        Ecosystem::Packagist => language("Packagist"),
        Ecosystem::Deb | Ecosystem::Apk | Ecosystem::Rpm => {
            let distribution = distribution(os?)?;
            (distribution.format == ecosystem).then_some(distribution.ecosystem)
        }
    }
}

/// The OSV ecosystem of an image's distribution, for the report's summary.
pub fn distribution_ecosystem(os: &OsRelease) -> Option<OsvEcosystem> {
    distribution(os).map(|d| d.ecosystem)
}

struct Distribution {
    format: Ecosystem,
    ecosystem: OsvEcosystem,
}

fn distribution(os: &OsRelease) -> Option<Distribution> {
    let version = os.version_id.as_deref().filter(|v| !v.is_empty());
    let major = || version.map(|v| v.split('.').next().unwrap_or(v).to_owned());
    let (format, name, release) = match os.id.as_str() {
        // Debian testing and unstable carry no VERSION_ID, only the codename of the
        // release in preparation, which OSV already lists under its number.
        "debian" => (Ecosystem::Deb, "Debian", version.map(str::to_owned).or_else(|| debian_number(os.version_codename.as_deref()?))),
        "ubuntu" => (Ecosystem::Deb, "Ubuntu", version.map(str::to_owned)),
        // OSV's Alpine records are per release branch: 3.19.1 is matched as v3.19.
        "alpine" => (Ecosystem::Apk, "Alpine", version.map(|v| crate::osv::normalize_release("Alpine", v))),
        "wolfi" => (Ecosystem::Apk, "Wolfi", None),
        "chainguard" => (Ecosystem::Apk, "Chainguard", None),
        "rocky" => (Ecosystem::Rpm, "Rocky Linux", major()),
        "almalinux" => (Ecosystem::Rpm, "AlmaLinux", major()),
        "opensuse-leap" => (Ecosystem::Rpm, "openSUSE", version.map(|v| format!("Leap {v}"))),
        "opensuse-tumbleweed" => (Ecosystem::Rpm, "openSUSE", Some("Tumbleweed".to_owned())),
        "mageia" => (Ecosystem::Rpm, "Mageia", version.map(str::to_owned)),
        "azurelinux" => (Ecosystem::Rpm, "Azure Linux", major()),
        _ => return None,
    };
    Some(Distribution { format, ecosystem: OsvEcosystem { name, release } })
}

fn debian_number(codename: &str) -> Option<String> {
    let number = match codename {
        "buster" => "10",
        "bullseye" => "11",
        "bookworm" => "12",
        "trixie" => "13",
        "forky" => "14",
        _ => return None,
    };
    Some(number.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(id: &str, version: Option<&str>, codename: Option<&str>) -> OsRelease {
        OsRelease {
            id: id.to_owned(),
            version_id: version.map(str::to_owned),
            version_codename: codename.map(str::to_owned),
            pretty_name: None,
        }
    }

    fn osv(ecosystem: Ecosystem, os: &OsRelease) -> Option<String> {
        osv_ecosystem(ecosystem, Some(os)).map(|e| e.to_string())
    }

    #[test]
    fn distributions_map_to_osv_ecosystems() {
        let cases = [
            (Ecosystem::Deb, os("debian", Some("12"), Some("bookworm")), "Debian:12"),
            (Ecosystem::Deb, os("debian", None, Some("trixie")), "Debian:13"),
            (Ecosystem::Deb, os("ubuntu", Some("22.04"), Some("jammy")), "Ubuntu:22.04"),
            (Ecosystem::Apk, os("alpine", Some("3.19.1"), None), "Alpine:v3.19"),
            (Ecosystem::Apk, os("wolfi", Some("20230201"), None), "Wolfi"),
            (Ecosystem::Rpm, os("rocky", Some("9.3"), None), "Rocky Linux:9"),
            (Ecosystem::Rpm, os("almalinux", Some("8.10"), None), "AlmaLinux:8"),
            (Ecosystem::Rpm, os("opensuse-leap", Some("15.5"), None), "openSUSE:Leap 15.5"),
            (Ecosystem::Rpm, os("opensuse-tumbleweed", Some("20240101"), None), "openSUSE:Tumbleweed"),
            (Ecosystem::Rpm, os("azurelinux", Some("3.0"), None), "Azure Linux:3"),
        ];
        for (ecosystem, release, expected) in cases {
            assert_eq!(osv(ecosystem, &release).as_deref(), Some(expected), "{release:?}");
        }
    }

    #[test]
    fn uncovered_packages_have_no_ecosystem() {
        // Red Hat and SUSE scope their records to product streams and modules; a deb on
        // Alpine is not Alpine's.
        assert_eq!(osv(Ecosystem::Rpm, &os("rhel", Some("9.3"), None)), None);
        assert_eq!(osv(Ecosystem::Rpm, &os("sles", Some("15.5"), None)), None);
        assert_eq!(osv(Ecosystem::Deb, &os("alpine", Some("3.19.1"), None)), None);
        assert_eq!(osv(Ecosystem::Deb, &os("linux", None, None)), None);
        assert_eq!(osv_ecosystem(Ecosystem::Deb, None), None);
        // Language packages do not depend on the distribution.
        assert_eq!(osv(Ecosystem::PyPI, &os("rhel", None, None)).as_deref(), Some("PyPI"));
    }
}

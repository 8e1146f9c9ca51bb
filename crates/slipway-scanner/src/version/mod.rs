//! Version ordering per ecosystem.
//!
//! Each scheme follows the reference tool of its ecosystem, quirks included: an
//! advisory's "fixed in" bound only means what the package manager that installs the
//! package takes it to mean. A version the tool refuses is an error here too; where the
//! tool compares anything (dpkg warns and goes on), so does this module.

mod apk;
mod composer;
mod dpkg;
mod maven;
mod npm_range;
mod pep440;
mod rpm;
mod rubygems;
mod semver;

use std::cmp::Ordering;
use std::fmt;

pub use npm_range::npm_range_satisfies;

use crate::ScanError;

/// A version ordering: how one ecosystem sorts its version strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Debian and Ubuntu packages: `dpkg --compare-versions`.
    Dpkg,
    /// Alpine and the other apk-based distributions: apk-tools.
    Apk,
    /// Red Hat, SUSE and the other RPM-based distributions: `rpmvercmp` on
    /// `epoch:version-release`.
    Rpm,
    /// Python packages: PEP 440, as `packaging.version.Version` orders them.
    Pep440,
    /// npm and crates.io: Semantic Versioning 2.0, as node-semver's `compare` parses it.
    Semver,
    /// Go modules: semver with an optional `v`, `vMAJOR` and `vMAJOR.MINOR` shorthands;
    /// pseudo-versions and `+incompatible` need nothing more.
    Go,
    /// Maven artifacts: `ComparableVersion`.
    Maven,
    /// Ruby gems: `Gem::Version`.
    RubyGems,
    /// Packagist: composer/semver's normalization, then PHP's `version_compare`.
    Composer,
}

impl Scheme {
    /// The ordering of an OSV ecosystem (`affected[].package.ecosystem`), with or without
    /// its `:<RELEASE>` suffix; `None` for an ecosystem without a known ordering.
    pub fn for_ecosystem(ecosystem: &str) -> Option<Scheme> {
        let (name, rest) = ecosystem.split_once(':').unwrap_or((ecosystem, ""));
        Some(match name {
            "Debian" | "Ubuntu" => Scheme::Dpkg,
            "Alpine" | "Alpaquita" | "BellSoft Hardened Containers" | "Chainguard" | "MinimOS" | "Wolfi" => Scheme::Apk,
            "AlmaLinux" | "Azure Linux" | "Mageia" | "openEuler" | "openSUSE" | "Photon OS" | "Red Hat" | "Rocky Linux" | "SUSE" => {
                Scheme::Rpm
            }
            "PyPI" => Scheme::Pep440,
            "npm" | "crates.io" | "Hex" | "SwiftURL" => Scheme::Semver,
            "Go" | "Kubernetes" => Scheme::Go,
            "Maven" => Scheme::Maven,
            "RubyGems" => Scheme::RubyGems,
            "Packagist" => Scheme::Composer,
            // Root's variants name the ecosystem they patch: `Root:Alpine:3.18`, `Root:PyPI`.
            "Root" => return Scheme::for_ecosystem(rest),
            _ => return None,
        })
    }

    /// Orders two versions of this scheme.
    pub fn compare(self, a: &str, b: &str) -> Result<Ordering, ScanError> {
        match self {
            Scheme::Dpkg => dpkg::compare(a, b),
            Scheme::Apk => apk::compare(a, b),
            Scheme::Rpm => rpm::compare(a, b),
            Scheme::Pep440 => pep440::compare(a, b),
            Scheme::Semver => semver::compare_npm(a, b),
            Scheme::Go => semver::compare_go(a, b),
            Scheme::Maven => Ok(maven::compare(a, b)),
            Scheme::RubyGems => rubygems::compare(a, b),
            Scheme::Composer => composer::compare(a, b),
        }
    }

    /// The error for a version this scheme refuses.
    fn invalid(self, version: &str, reason: impl Into<String>) -> ScanError {
        ScanError::Version { scheme: self, version: version.to_owned(), reason: reason.into() }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scheme::Dpkg => "dpkg",
            Scheme::Apk => "apk",
            Scheme::Rpm => "rpm",
            Scheme::Pep440 => "PEP 440",
            Scheme::Semver => "semver",
            Scheme::Go => "Go",
            Scheme::Maven => "Maven",
            Scheme::RubyGems => "RubyGems",
            Scheme::Composer => "Composer",
        })
    }
}

/// Compares two runs of ASCII digits as unbounded integers.
fn cmp_digits(a: &[u8], b: &[u8]) -> Ordering {
    let a = trim_zeros(a);
    let b = trim_zeros(b);
    a.len().cmp(&b.len()).then_with(|| a.cmp(b))
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let start = digits.iter().position(|&d| d != b'0').unwrap_or(digits.len());
    &digits[start..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ecosystems_map_to_their_orderings() {
        let cases = [
            ("Debian", Scheme::Dpkg),
            ("Debian:12", Scheme::Dpkg),
            ("Ubuntu:22.04:LTS", Scheme::Dpkg),
            ("Ubuntu:Pro:18.04:LTS", Scheme::Dpkg),
            ("Alpine", Scheme::Apk),
            ("Alpine:v3.19", Scheme::Apk),
            ("Wolfi", Scheme::Apk),
            ("Red Hat", Scheme::Rpm),
            ("Red Hat:rhel_aus:8.4::appstream", Scheme::Rpm),
            ("Rocky Linux:9", Scheme::Rpm),
            ("AlmaLinux:8", Scheme::Rpm),
            ("openSUSE:Tumbleweed", Scheme::Rpm),
            ("SUSE:Linux Enterprise Server 15 SP5", Scheme::Rpm),
            ("PyPI", Scheme::Pep440),
            ("npm", Scheme::Semver),
            ("crates.io", Scheme::Semver),
            ("Go", Scheme::Go),
            ("Maven", Scheme::Maven),
            ("Maven:https://maven.example", Scheme::Maven),
            ("RubyGems", Scheme::RubyGems),
            ("Packagist", Scheme::Composer),
            ("Root:Alpine:3.18", Scheme::Apk),
            ("Root:PyPI", Scheme::Pep440),
        ];
        for (ecosystem, scheme) in cases {
            assert_eq!(Scheme::for_ecosystem(ecosystem), Some(scheme), "{ecosystem}");
        }
        for unknown in ["", "debian", "Linux", "GitHub Actions", "Root", "Root:Nix"] {
            assert_eq!(Scheme::for_ecosystem(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn invalid_versions_name_scheme_and_version() {
        let err = Scheme::Semver.compare("1.2", "1.2.0").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("semver") && message.contains("\"1.2\""), "{message}");
        assert!(matches!(
            err,
            ScanError::Version { scheme: Scheme::Semver, ref version, .. } if version == "1.2"
        ));
    }

    #[test]
    fn digit_runs_compare_as_unbounded_integers() {
        assert_eq!(cmp_digits(b"007", b"7"), Ordering::Equal);
        assert_eq!(cmp_digits(b"10", b"9"), Ordering::Greater);
        assert_eq!(cmp_digits(b"", b"0"), Ordering::Equal);
        assert_eq!(cmp_digits(b"123456789012345678901234567890", b"123456789012345678901234567891"), Ordering::Less);
    }
}

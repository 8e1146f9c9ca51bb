//! Stacking layer reports into an image inventory.

use super::{Finding, FoundPackage, Inventory, LayerIssue, LayerReport, OsRelease, Package, os_release, path_hash, purl};
use std::borrow::Borrow;
use std::collections::{BTreeMap, HashSet};

/// A finding visible in the stacked filesystem, with the index of the layer that
/// introduced each of its packages (parallel to the packages; empty for other findings).
struct Visible<'r> {
    finding: &'r Finding,
    introduced: Vec<usize>,
}

/// Applies the layers bottom to top as an OCI runtime would (whiteouts, opaque
/// directories, later files replacing earlier ones) and lists what the final filesystem
/// holds. Each package is attributed to the layer that introduced its current version:
/// rewriting a database without changing a package keeps its original layer, while an
/// upgrade, or a reinstall after a removal, moves it to the layer that did it.
///
/// Language packages found in files that an OS package owns are left out: the OS
/// package already reports them, under the version its distribution patches.
pub fn merge<D: AsRef<str>, R: Borrow<LayerReport>>(layers: &[(D, R)]) -> Inventory {
    let mut visible: BTreeMap<&str, Visible<'_>> = BTreeMap::new();
    for (index, (_, report)) in layers.iter().enumerate() {
        let report = report.borrow();
        for path in &report.whiteouts {
            remove_tree(&mut visible, path, true);
        }
        for dir in &report.opaque_dirs {
            remove_tree(&mut visible, dir, false);
        }
        visible.retain(|path, _| report.findings.contains_key(*path) || !shadowed(report, path));
        for (path, finding) in &report.findings {
            let previous = visible.remove(path.as_str());
            let introduced = match finding {
                Finding::Packages { packages } => {
                    packages.iter().map(|package| inherited(package, previous.as_ref()).unwrap_or(index)).collect()
                }
                _ => Vec::new(),
            };
            visible.insert(path, Visible { finding, introduced });
        }
    }
    inventory(layers, &visible)
}

/// Whether a non-directory entry of `report` replaces `path` or a directory above it.
fn shadowed(report: &LayerReport, path: &str) -> bool {
    report.has_entry(path) || path.match_indices('/').any(|(slash, _)| report.has_entry(&path[..slash]))
}

/// Removes `root` and everything below it, or only what is below it.
fn remove_tree(visible: &mut BTreeMap<&str, Visible<'_>>, root: &str, including_root: bool) {
    if root.is_empty() {
        visible.clear();
        return;
    }
    let below = format!("{root}/");
    let doomed: Vec<&str> = visible
        .range(root..)
        .map(|(path, _)| *path)
        .take_while(|path| path.starts_with(root))
        .filter(|path| path.starts_with(&below) || (including_root && *path == root))
        .collect();
    for path in doomed {
        visible.remove(path);
    }
}

/// The layer a package keeps if the same install was visible at that path before.
fn inherited(package: &FoundPackage, previous: Option<&Visible<'_>>) -> Option<usize> {
    let previous = previous?;
    let Finding::Packages { packages } = previous.finding else {
        return None;
    };
    packages.iter().zip(&previous.introduced).find(|(earlier, _)| earlier.same_install(package)).map(|(_, layer)| *layer)
}

fn inventory<D: AsRef<str>, R: Borrow<LayerReport>>(layers: &[(D, R)], visible: &BTreeMap<&str, Visible<'_>>) -> Inventory {
    let os = os_release::PATHS.iter().find_map(|path| match visible.get(path)?.finding {
        Finding::OsRelease(release) => Some(release.clone()),
        _ => None,
    });
    let mut owned: HashSet<u64> = HashSet::new();
    for entry in visible.values() {
        match entry.finding {
            Finding::OwnedFiles { files } => owned.extend(files),
            Finding::Packages { packages } => owned.extend(packages.iter().filter(|p| p.ecosystem.is_os()).flat_map(|p| &p.files)),
            Finding::OsRelease(_) => {}
        }
    }
    let mut packages = Vec::new();
    for (path, entry) in visible {
        let Finding::Packages { packages: found } = entry.finding else {
            continue;
        };
        for (package, layer) in found.iter().zip(&entry.introduced) {
            if !package.ecosystem.is_os() && is_owned(&owned, path) {
                continue;
            }
            packages.push(package_of(package, path, layers[*layer].0.as_ref(), os.as_ref()));
        }
    }
    packages.sort_by(|a, b| (a.ecosystem, &a.name, &a.version, &a.path).cmp(&(b.ecosystem, &b.name, &b.version, &b.path)));
    let issues = layers
        .iter()
        .flat_map(|(digest, report)| {
            report.borrow().issues.iter().map(|issue| LayerIssue { layer: digest.as_ref().to_owned(), issue: issue.clone() })
        })
        .collect();
    Inventory { os, packages, issues }
}

/// Whether an OS package owns `path`. Package lists name `/bin/x` where a merged-/usr
/// image keeps the file at `usr/bin/x`.
fn is_owned(owned: &HashSet<u64>, path: &str) -> bool {
    const MERGED: [&str; 6] = ["bin/", "sbin/", "lib/", "lib32/", "lib64/", "libx32/"];
    owned.contains(&path_hash(path))
        || path.strip_prefix("usr/").is_some_and(|rest| MERGED.iter().any(|dir| rest.starts_with(dir)) && owned.contains(&path_hash(rest)))
}

fn package_of(found: &FoundPackage, path: &str, layer: &str, os: Option<&OsRelease>) -> Package {
    Package {
        ecosystem: found.ecosystem,
        name: found.name.clone(),
        version: found.version.clone(),
        source_name: found.source_name.clone(),
        source_version: found.source_version.clone(),
        arch: found.arch.clone(),
        purl: purl::purl(found, os),
        path: match &found.inner_path {
            Some(inner) => format!("{path}!/{inner}"),
            None => path.to_owned(),
        },
        layer: layer.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Ecosystem;
    use super::*;

    fn layer(findings: &[(&str, &[(&str, &str)])]) -> LayerReport {
        let mut report = LayerReport::default();
        for (path, packages) in findings {
            let packages = packages.iter().map(|(name, version)| FoundPackage::new(Ecosystem::Npm, *name, *version)).collect();
            report.findings.insert((*path).to_owned(), Finding::Packages { packages });
            report.entries.push(path_hash(path));
        }
        report.entries.sort_unstable();
        report
    }

    fn summary(inventory: &Inventory) -> Vec<(String, String, String)> {
        inventory.packages.iter().map(|p| (p.name.clone(), p.version.clone(), p.layer.clone())).collect()
    }

    fn owned(items: &[(&str, &str, &str)]) -> Vec<(String, String, String)> {
        items.iter().map(|(a, b, c)| ((*a).to_owned(), (*b).to_owned(), (*c).to_owned())).collect()
    }

    #[test]
    fn rewritten_unchanged_packages_keep_their_layer() {
        let base = layer(&[("db", &[("a", "1"), ("b", "1")])]);
        let upgrade = layer(&[("db", &[("a", "1"), ("b", "2"), ("c", "1")])]);
        let inventory = merge(&[("l1", base), ("l2", upgrade)]);
        assert_eq!(summary(&inventory), owned(&[("a", "1", "l1"), ("b", "2", "l2"), ("c", "1", "l2")]));
    }

    #[test]
    fn whiteout_then_reinstall_moves_to_the_reinstalling_layer() {
        let base = layer(&[("x/node_modules/a/package.json", &[("a", "1")])]);
        let mut removal = LayerReport::default();
        removal.whiteouts.push("x/node_modules/a".into());
        let reinstall = layer(&[("x/node_modules/a/package.json", &[("a", "1")])]);
        assert!(merge(&[("l1", &base), ("l2", &removal)]).packages.is_empty());
        let inventory = merge(&[("l1", &base), ("l2", &removal), ("l3", &reinstall)]);
        assert_eq!(summary(&inventory), owned(&[("a", "1", "l3")]));
    }

    #[test]
    fn opaque_directory_hides_only_lower_layers() {
        let base = layer(&[("app/node_modules/a/package.json", &[("a", "1")]), ("app2/package.json", &[("c", "1")])]);
        let mut rebuilt = layer(&[("app/node_modules/b/package.json", &[("b", "1")])]);
        rebuilt.opaque_dirs.push("app/node_modules".into());
        let inventory = merge(&[("l1", base), ("l2", rebuilt)]);
        assert_eq!(summary(&inventory), owned(&[("b", "1", "l2"), ("c", "1", "l1")]));
    }

    #[test]
    fn merged_usr_paths_count_as_owned() {
        let owned: HashSet<u64> = ["bin/tool", "usr/share/java/a.jar"].into_iter().map(path_hash).collect();
        assert!(is_owned(&owned, "usr/bin/tool"));
        assert!(is_owned(&owned, "usr/share/java/a.jar"));
        assert!(!is_owned(&owned, "usr/local/bin/tool"));
        assert!(!is_owned(&owned, "usr/share/bin/tool"));
    }

    #[test]
    fn plain_file_replacing_a_finding_or_its_directory_hides_it() {
        let base = layer(&[("a/package.json", &[("a", "1")]), ("b/package.json", &[("b", "1")])]);
        let mut entries = vec![path_hash("a/package.json"), path_hash("b")];
        entries.sort_unstable();
        let replaced = LayerReport { entries, ..LayerReport::default() };
        assert!(merge(&[("l1", base), ("l2", replaced)]).packages.is_empty());
    }
}

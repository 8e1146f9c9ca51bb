//! The analyzer on real images, against syft and against the package managers' own
//! record of what each layer installed.
//!
//! Only meaningful under `tests/e2e/scanner-images.sh`, which builds the images
//! (mmdebstrap, pip, npm, go, cargo-auditable, umoci), runs syft on them and sets
//! `SCANNER_TEST_IMAGES` to a directory holding, per image, `oci/` (an OCI image layout
//! with that one image), `syft.json` (`syft oci-dir:… -o syft-json`) and `truth/N.tsv`
//! (what dpkg, pip, npm, `go version -m` and cargo metadata say the filesystem holds once
//! layers 1..=N are applied). Without the variable the tests say so and pass; the script
//! checks for the line each test prints last, so a run that skipped them fails there.
//!
//! For deb, PyPI, npm, Go and crates.io packages the (name, version) sets must equal
//! syft's and the truth's, and every package must be attributed to the layer that
//! introduced its current version according to the truth of the layers before it.

use slipway_scanner::analyzer::{Compression, Ecosystem, Inventory, LayerReport, Limits, analyze_layer, merge};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::fs::File;
use std::io::BufReader;
use std::path::{Path, PathBuf};
use std::time::Instant;

/// (ecosystem, name, version), normalised as [`key`] does.
type Key = (Ecosystem, String, String);

/// The ecosystems compared with syft, with syft's package type for each.
const COMPARED: [(Ecosystem, &str); 5] = [
    (Ecosystem::Deb, "deb"),
    (Ecosystem::PyPI, "python"),
    (Ecosystem::Npm, "npm"),
    (Ecosystem::Go, "go-module"),
    (Ecosystem::CratesIo, "rust-crate"),
];

/// Where the images are, or `None` (after saying so) when not run by the script.
fn images_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("SCANNER_TEST_IMAGES").map(PathBuf::from);
    if dir.is_none() {
        println!(
            "SCANNER_TEST_IMAGES is unset: the real-image tests run from \
             tests/e2e/scanner-images.sh, which builds the images; nothing checked here"
        );
    }
    dir
}

/// Names and versions as each ecosystem compares them; `None` for what is deliberately
/// not compared:
/// - a Go main module at `(devel)`: syft lists the binary's own module, built from a
///   local tree, which has no released version that an advisory could name; the
///   analyzer leaves it out on purpose (see `analyzer/golang.rs`).
fn key(ecosystem: Ecosystem, name: &str, version: &str) -> Option<Key> {
    let (name, version) = match ecosystem {
        // PEP 503: case and runs of `-`, `_`, `.` do not distinguish projects.
        Ecosystem::PyPI => (pep503(name), version.to_owned()),
        Ecosystem::Go if version == "(devel)" => return None,
        // Module versions with or without Go's `v`; the toolchain as `go1.x.y`.
        Ecosystem::Go if name == "stdlib" => (name.to_owned(), version.trim_start_matches("go").to_owned()),
        Ecosystem::Go => (name.to_owned(), version.trim_start_matches('v').to_owned()),
        _ => (name.to_owned(), version.to_owned()),
    };
    Some((ecosystem, name, version))
}

fn pep503(name: &str) -> String {
    let mut out = String::new();
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

fn ecosystem_named(name: &str) -> Ecosystem {
    match name {
        "deb" => Ecosystem::Deb,
        "PyPI" => Ecosystem::PyPI,
        "npm" => Ecosystem::Npm,
        "Go" => Ecosystem::Go,
        "crates.io" => Ecosystem::CratesIo,
        other => panic!("unknown ecosystem {other:?} in a truth file"),
    }
}

struct Image {
    name: &'static str,
    /// Layer digests, bottom first.
    layers: Vec<String>,
    inventory: Inventory,
    /// `truth[i]`: the packages once layers `0..=i` are applied.
    truth: Vec<BTreeSet<Key>>,
}

fn read_json(path: &Path) -> serde_json::Value {
    let file = File::open(path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
    serde_json::from_reader(BufReader::new(file)).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
}

fn blob(layout: &Path, digest: &str) -> PathBuf {
    let (algorithm, hex) = digest.split_once(':').expect("algorithm:hex");
    layout.join("blobs").join(algorithm).join(hex)
}

/// Analyzes every layer of the layout's only image and merges them.
fn scan(layout: &Path) -> (Vec<String>, Inventory) {
    let index = read_json(&layout.join("index.json"));
    let manifests = index["manifests"].as_array().expect("manifests");
    assert_eq!(manifests.len(), 1, "{}: one image", layout.display());
    let manifest = read_json(&blob(layout, manifests[0]["digest"].as_str().unwrap()));
    let mut reports: Vec<(String, LayerReport)> = Vec::new();
    for layer in manifest["layers"].as_array().expect("layers") {
        let digest = layer["digest"].as_str().unwrap().to_owned();
        let compression = Compression::from_media_type(layer["mediaType"].as_str().unwrap());
        let file = File::open(blob(layout, &digest)).unwrap();
        let report = analyze_layer(file, compression, &Limits::default()).unwrap_or_else(|err| panic!("layer {digest}: {err}"));
        reports.push((digest, report));
    }
    let inventory = merge(&reports);
    (reports.into_iter().map(|(digest, _)| digest).collect(), inventory)
}

fn load(name: &'static str) -> Option<Image> {
    let dir = images_dir()?.join(name);
    let started = Instant::now();
    let (layers, inventory) = scan(&dir.join("oci"));
    println!("scanner-images: {name}: {} layers analyzed and merged in {:.2?} (this build's profile)", layers.len(), started.elapsed());
    let truth = (1..=layers.len())
        .map(|n| {
            let path = dir.join("truth").join(format!("{n}.tsv"));
            let text = std::fs::read_to_string(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()));
            text.lines()
                .filter_map(|line| {
                    let fields: Vec<&str> = line.split('\t').collect();
                    let [ecosystem, name, version] = fields[..] else {
                        panic!("{}: bad line {line:?}", path.display());
                    };
                    key(ecosystem_named(ecosystem), name, version)
                })
                .collect()
        })
        .collect();
    Some(Image { name, layers, inventory, truth })
}

/// The compared packages syft found, with a count of the others by type (shown, so
/// that a new kind of finding does not go unnoticed).
fn syft_packages(name: &str) -> (BTreeSet<Key>, BTreeMap<String, usize>) {
    let path = images_dir().unwrap().join(name).join("syft.json");
    let document = read_json(&path);
    let mut compared = BTreeSet::new();
    let mut others: BTreeMap<String, usize> = BTreeMap::new();
    for artifact in document["artifacts"].as_array().expect("artifacts") {
        let kind = artifact["type"].as_str().unwrap_or_default();
        let Some(&(ecosystem, _)) = COMPARED.iter().find(|(_, syft)| *syft == kind) else {
            *others.entry(kind.to_owned()).or_default() += 1;
            continue;
        };
        // cargo-auditable lists the binary's own crate and path or git dependencies
        // too; only crates.io packages have advisories, so the analyzer keeps only those
        // (see `analyzer/cargo_auditable.rs`).
        if ecosystem == Ecosystem::CratesIo && artifact["metadata"]["source"] != "crates.io" {
            continue;
        }
        let name = artifact["name"].as_str().unwrap();
        let version = artifact["version"].as_str().unwrap();
        // The binary's own module without a version: syft says `UNKNOWN` where the build
        // info says `(devel)` (see `key`).
        if ecosystem == Ecosystem::Go && artifact["metadata"]["mainModule"] == name && version == "UNKNOWN" {
            continue;
        }
        compared.extend(key(ecosystem, name, version));
    }
    (compared, others)
}

fn ours(inventory: &Inventory) -> BTreeSet<Key> {
    inventory.packages.iter().filter_map(|p| key(p.ecosystem, &p.name, &p.version)).collect()
}

fn of(set: &BTreeSet<Key>, ecosystem: Ecosystem) -> BTreeSet<&Key> {
    set.iter().filter(|k| k.0 == ecosystem).collect()
}

/// Fails listing what only one side has.
fn assert_same(what: &str, ours: &BTreeSet<&Key>, theirs: &BTreeSet<&Key>) {
    if ours != theirs {
        let only_ours: Vec<_> = ours.difference(theirs).collect();
        let only_theirs: Vec<_> = theirs.difference(ours).collect();
        panic!("{what}:\n  only the analyzer: {only_ours:?}\n  only the other: {only_theirs:?}");
    }
}

/// The inventory equals syft's and the truth's for every compared ecosystem; prints the
/// counts. Returns the counts per ecosystem.
fn compare_with_syft_and_truth(image: &Image) -> BTreeMap<Ecosystem, usize> {
    let name = image.name;
    assert!(image.inventory.issues.is_empty(), "{name}: issues {:#?}", image.inventory.issues);
    let os = image.inventory.os.as_ref().expect("os-release found");
    assert_eq!((os.id.as_str(), os.version_id.as_deref()), ("debian", Some("12")));
    let ours = ours(&image.inventory);
    let (syft, others) = syft_packages(name);
    let truth = image.truth.last().expect("one layer at least");
    let mut line = format!("scanner-images: {name}: analyzer = syft = package managers:");
    let mut counts = BTreeMap::new();
    for (ecosystem, _) in COMPARED {
        let (a, s, t) = (of(&ours, ecosystem), of(&syft, ecosystem), of(truth, ecosystem));
        assert_same(&format!("{name}: {ecosystem:?} vs syft"), &a, &s);
        assert_same(&format!("{name}: {ecosystem:?} vs the package managers"), &a, &t);
        if !a.is_empty() {
            write!(line, " {ecosystem:?} {}", a.len()).unwrap();
        }
        counts.insert(ecosystem, a.len());
    }
    if !others.is_empty() {
        write!(line, " (syft's other findings, not compared: {others:?})").unwrap();
    }
    println!("{line}");
    counts
}

/// The layer that introduced a package's current version: the lowest layer from which
/// on every layer's truth holds it.
fn introducing_layer(truth: &[BTreeSet<Key>], key: &Key) -> Option<usize> {
    let top = truth.len() - 1;
    if !truth[top].contains(key) {
        return None;
    }
    let mut layer = top;
    while layer > 0 && truth[layer - 1].contains(key) {
        layer -= 1;
    }
    Some(layer)
}

/// Every package is attributed to the layer the truth says introduced it. Returns how
/// many packages each layer got.
fn check_layers(image: &Image) -> Vec<usize> {
    let mut wrong = Vec::new();
    let mut per_layer = vec![0; image.layers.len()];
    for package in &image.inventory.packages {
        let Some(key) = key(package.ecosystem, &package.name, &package.version) else {
            continue;
        };
        let expected = introducing_layer(&image.truth, &key).unwrap_or_else(|| panic!("{}: {key:?} is not in the image", image.name));
        let actual = image.layers.iter().position(|d| *d == package.layer);
        if actual == Some(expected) {
            per_layer[expected] += 1;
        } else {
            wrong.push(format!("{key:?} at {}: layer {actual:?}, expected {expected} (0 = bottom)", package.path));
        }
    }
    assert!(wrong.is_empty(), "{}: wrong layers:\n  {}", image.name, wrong.join("\n  "));
    println!("scanner-images: {}: packages attributed per layer, bottom first: {per_layer:?}", image.name);
    per_layer
}

/// What changed from the layer below to `layer`: (upgraded or added, removed) names.
fn changes(image: &Image, layer: usize, ecosystem: Ecosystem) -> (Vec<String>, Vec<String>) {
    let names = |set: &BTreeSet<Key>| -> BTreeMap<String, String> {
        of(set, ecosystem).into_iter().map(|(_, name, version)| (name.clone(), version.clone())).collect()
    };
    let (before, after) = (names(&image.truth[layer - 1]), names(&image.truth[layer]));
    let changed = after.iter().filter(|(name, version)| before.get(*name) != Some(version)).map(|(name, _)| name.clone()).collect();
    let removed = before.keys().filter(|name| !after.contains_key(*name)).cloned().collect();
    (changed, removed)
}

fn done(name: &str) {
    println!("scanner-images: checked {name}");
}

#[test]
fn debian_bookworm_minbase() {
    let Some(image) = load("debian") else {
        return;
    };
    let counts = compare_with_syft_and_truth(&image);
    // mmdebstrap's minbase is about a hundred packages and nothing else.
    assert!(counts[&Ecosystem::Deb] > 50, "{counts:?}");
    assert_eq!(counts.values().sum::<usize>(), counts[&Ecosystem::Deb]);
    check_layers(&image);
    done(image.name);
}

#[test]
fn debian_with_python_npm_go_and_rust_layers() {
    let Some(image) = load("apps") else {
        return;
    };
    let counts = compare_with_syft_and_truth(&image);
    for ecosystem in [Ecosystem::PyPI, Ecosystem::Npm, Ecosystem::Go, Ecosystem::CratesIo] {
        assert!(counts[&ecosystem] > 0, "no {ecosystem:?} package: {counts:?}");
    }
    // One ecosystem per layer on top of the base: each layer gets exactly its own.
    let per_layer = check_layers(&image);
    assert!(per_layer.iter().all(|&n| n > 0), "{per_layer:?}");
    done(image.name);
}

#[test]
fn upgrades_and_removals_in_later_layers() {
    let Some(image) = load("multilayer") else {
        return;
    };
    compare_with_syft_and_truth(&image);
    // The image must really exercise what it is for: the script's layers 3 (dpkg) and
    // 4 (pip) each upgrade one package and remove another.
    let (dpkg_upgraded, dpkg_removed) = changes(&image, 2, Ecosystem::Deb);
    let (pip_upgraded, pip_removed) = changes(&image, 3, Ecosystem::PyPI);
    println!(
        "scanner-images: multilayer: dpkg upgraded {dpkg_upgraded:?}, purged {dpkg_removed:?}; \
         pip upgraded {pip_upgraded:?}, uninstalled {pip_removed:?}"
    );
    for list in [&dpkg_upgraded, &dpkg_removed, &pip_upgraded, &pip_removed] {
        assert!(!list.is_empty(), "the image lacks an upgrade or a removal");
    }
    let per_layer = check_layers(&image);
    // By normalised name, as the truth spells them.
    let layer_of = |ecosystem: Ecosystem, name: &str| -> Option<usize> {
        let package = image
            .inventory
            .packages
            .iter()
            .find(|p| p.ecosystem == ecosystem && key(ecosystem, &p.name, &p.version).is_some_and(|k| k.1 == name))?;
        image.layers.iter().position(|d| *d == package.layer)
    };
    // Spelled out, though check_layers covers it: upgrades belong to the upgrading
    // layer, removals are gone, and the rest of the rewritten dpkg database and
    // site-packages stays with the layers below.
    for name in &dpkg_upgraded {
        assert_eq!(layer_of(Ecosystem::Deb, name), Some(2), "{name}");
    }
    for name in &dpkg_removed {
        assert_eq!(layer_of(Ecosystem::Deb, name), None, "{name}");
    }
    for name in &pip_upgraded {
        assert_eq!(layer_of(Ecosystem::PyPI, name), Some(3), "{name}");
    }
    for name in &pip_removed {
        assert_eq!(layer_of(Ecosystem::PyPI, name), None, "{name}");
    }
    let unchanged_deb = of(image.truth.last().unwrap(), Ecosystem::Deb).len() - dpkg_upgraded.len();
    assert_eq!(per_layer[0], unchanged_deb, "{per_layer:?}");
    assert!(per_layer[1] > 0, "pip layer packages kept: {per_layer:?}");
    done(image.name);
}

//! The harness of `bench/rematch.sh`: 10,000 synthetic images stored through the scan
//! path, OSV feeds generated to fit them, and the two ways of bringing their findings up
//! to date after a feed update. Each step is its own process, so that the script measures
//! the wall time, CPU and peak memory of one step alone.
//!
//! ```text
//! rematch fill     --db URL [--images N] [--seed S] [--concurrency C]
//! rematch update   --db URL --round K [--images N] [--seed S] [--share F]
//! rematch reassess --db URL
//! rematch rescan   --db URL [--images N] [--seed S] [--concurrency C]
//! rematch digest   --db URL [--images N] [--seed S]
//! ```
//!
//! - `fill` imports the initial feed, stores every image's inventory with
//!   `Scanning::store_inventory` (what a scan stores once its layers are read: index rows
//!   and findings), then runs `Scanning::reassess` once to settle the import's changes.
//! - `update` imports the feed update of round K: for a share F (0.01) of the distinct
//!   indexed packages of each ecosystem, new advisories, changed ranges and withdrawn
//!   advisories; plus changes to packages no image holds. Rounds touch disjoint packages.
//! - `reassess` is the incremental re-match: `Scanning::reassess`, as the `FeedChanged`
//!   job runs it.
//! - `rescan` is the peer, what a scanner without the index does: every image's whole
//!   inventory matched again against the feed and stored (`Scanning::store_inventory`,
//!   C images at a time).
//! - `digest` hashes every image's findings, so that the state the incremental re-match
//!   leaves can be checked against the state a full rescan leaves.
//!
//! Everything is generated from the seed: a process regenerates the images and feeds it
//! needs instead of reading them back. Each command ends with one line on stdout:
//! `result key=value...`, with `ms`, the time of the step itself in process.

use std::collections::BTreeSet;
use std::error::Error;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use futures::{StreamExt, TryStreamExt, stream};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};
use slipway_db::{Db, ScanningDb};
use slipway_jobs::Queue;
use slipway_scanner::analyzer::{Ecosystem, Inventory, Limits, OsRelease, Package};
use slipway_security::Scanning;
use slipway_storage::FsStore;

type Result<T> = std::result::Result<T, Box<dyn Error + Send + Sync>>;

/// Debian 12 point releases the base images were built from: a source package's version
/// moves (a `+deb12uN` security update) between some of them.
const SNAPSHOTS: usize = 4;
/// Newer snapshots are more common among images.
const SNAPSHOT_WEIGHTS: [usize; SNAPSHOTS] = [1, 2, 3, 4];
const DEBIAN_SOURCES: usize = 200;
/// Base images as ranges of Debian source packages (all binaries of each): every base
/// holds the slim core, the others add build or runtime dependencies.
const FLAVOURS: [(&str, &[(usize, usize)]); 5] = [
    ("slim", &[(0, 60)]),
    ("standard", &[(0, 85)]),
    ("python", &[(0, 85), (85, 115)]),
    ("node", &[(0, 85), (115, 145)]),
    ("buildpack", &[(0, 85), (145, 200)]),
];
/// Distinct names in each language's pool, and how popular a name is: the n-th most
/// popular is drawn with weight 1/n (Zipf), so a few are in most images and a long tail
/// in few.
const PYPI_NAMES: usize = 5_000;
const NPM_NAMES: usize = 10_000;
const GO_NAMES: usize = 3_000;
/// Advisories in the initial feed for packages no image holds: a real feed names far
/// more packages than any registry holds, and their changes are pruned, not re-matched.
const UNINDEXED_ADVISORIES: usize = 10_000;
/// Changes to packages no image holds per changed package an image holds, in an update.
const UNINDEXED_CHANGES_PER_CHANGE: usize = 4;
const LAYERS_PER_IMAGE: usize = 2;

const CVSS: [&str; 4] = [
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H",
    "CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:L/I:L/A:N",
    "CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:L/I:N/A:N",
];
const URGENCIES: [&str; 5] = ["low", "medium", "high", "not yet assigned", "unimportant"];

/// A deterministic generator (SplitMix64): the same seed gives the same images and feeds
/// in every process.
struct Rng(u64);

impl Rng {
    fn new(parts: &[u64]) -> Rng {
        let mut rng = Rng(0x5EED);
        for part in parts {
            rng.0 ^= *part;
            rng.next();
        }
        rng
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn weighted(&mut self, weights: &[usize]) -> usize {
        let mut left = self.below(weights.iter().sum());
        for (i, w) in weights.iter().enumerate() {
            if left < *w {
                return i;
            }
            left -= w;
        }
        weights.len() - 1
    }

    /// 1 plus the number of successes before the first failure, at most `max`.
    fn count(&mut self, p: f64, max: usize) -> usize {
        let mut n = 1;
        while n < max && self.chance(p) {
            n += 1;
        }
        n
    }
}

fn sha256(text: &str) -> String {
    format!("sha256:{}", hex::encode(Sha256::digest(text.as_bytes())))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Eco {
    Debian,
    PyPI,
    Npm,
    Go,
}

const LANGUAGES: [Eco; 3] = [Eco::PyPI, Eco::Npm, Eco::Go];

impl Eco {
    fn osv(self) -> &'static str {
        match self {
            Eco::Debian => "Debian",
            Eco::PyPI => "PyPI",
            Eco::Npm => "npm",
            Eco::Go => "Go",
        }
    }

    /// Its pool of names; languages only.
    fn pool(self) -> usize {
        match self {
            Eco::PyPI => 0,
            Eco::Npm => 1,
            _ => 2,
        }
    }
}

struct Source {
    name: String,
    binaries: Vec<String>,
    /// The version at each snapshot, never decreasing.
    versions: [String; SNAPSHOTS],
}

struct Pool {
    names: Vec<String>,
    /// Each name's published versions, oldest first.
    versions: Vec<Vec<String>>,
    /// Cumulative popularity, for drawing names.
    cumulative: Vec<f64>,
}

/// A package an advisory can name: a Debian source package, or a name of a pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Named {
    eco: Eco,
    index: usize,
}

struct ImagePlan {
    digest: String,
    flavour: usize,
    snapshot: usize,
    language: Eco,
    /// (name, version) indexes into the language's pool.
    picks: Vec<(usize, usize)>,
}

/// An advisory, before it is written as OSV JSON.
struct Spec {
    id: String,
    cve: String,
    eco: Eco,
    name: String,
    events: Vec<(&'static str, String)>,
    cvss: Option<&'static str>,
    urgency: Option<&'static str>,
    modified: &'static str,
    withdrawn: bool,
}

struct World {
    seed: u64,
    sources: Vec<Source>,
    pools: Vec<Pool>,
}

impl World {
    fn new(seed: u64) -> World {
        let sources = (0..DEBIAN_SOURCES).map(|i| source(seed, i)).collect();
        let pools = [(Eco::PyPI, PYPI_NAMES), (Eco::Npm, NPM_NAMES), (Eco::Go, GO_NAMES)]
            .into_iter()
            .map(|(eco, size)| pool(seed, eco, size))
            .collect();
        World { seed, sources, pools }
    }

    fn plan(&self, image: usize) -> ImagePlan {
        let mut rng = Rng::new(&[self.seed, 1, image as u64]);
        let (language, flavours, picks): (Eco, &[(usize, usize)], (usize, usize)) = match rng.weighted(&[40, 35, 25]) {
            0 => (Eco::PyPI, &[(2, 65), (0, 35)], (50, 200)),
            1 => (Eco::Npm, &[(3, 65), (0, 35)], (60, 220)),
            _ => (Eco::Go, &[(0, 40), (1, 35), (4, 25)], (25, 120)),
        };
        let weights: Vec<usize> = flavours.iter().map(|(_, w)| *w).collect();
        let flavour = flavours[rng.weighted(&weights)].0;
        let snapshot = rng.weighted(&SNAPSHOT_WEIGHTS);
        let pool = &self.pools[language.pool()];
        let wanted = rng.between(picks.0, picks.1);
        let mut names = BTreeSet::new();
        while names.len() < wanted {
            let u = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
            names.insert(pool.cumulative.partition_point(|c| *c < u).min(pool.names.len() - 1));
        }
        let picks = names
            .into_iter()
            .map(|name| {
                let n = pool.versions[name].len();
                // Most images are on the latest release or the one before.
                let back = match rng.weighted(&[50, 30, 20]) {
                    0 => 0,
                    1 => 1,
                    _ => rng.below(n),
                };
                (name, n - 1 - back.min(n - 1))
            })
            .collect();
        ImagePlan { digest: sha256(&format!("image/{}/{image}", self.seed)), flavour, snapshot, language, picks }
    }

    fn inventory(&self, plan: &ImagePlan) -> Inventory {
        let os = OsRelease {
            id: "debian".into(),
            version_id: Some("12".into()),
            version_codename: Some("bookworm".into()),
            pretty_name: Some("Debian GNU/Linux 12 (bookworm)".into()),
        };
        let base = sha256(&format!("base/{}/{}/{}", self.seed, plan.flavour, plan.snapshot));
        let app = sha256(&format!("app/{}", plan.digest));
        let mut packages = Vec::new();
        for source in flavour_sources(plan.flavour).map(|s| &self.sources[s]) {
            let version = &source.versions[plan.snapshot];
            for binary in &source.binaries {
                packages.push(Package {
                    ecosystem: Ecosystem::Deb,
                    name: binary.clone(),
                    version: version.clone(),
                    source_name: (*binary != source.name).then(|| source.name.clone()),
                    source_version: None,
                    arch: Some("amd64".into()),
                    purl: format!(
                        "pkg:deb/debian/{binary}@{}?arch=amd64&distro=debian-12",
                        version.replace(':', "%3A").replace('+', "%2B")
                    ),
                    path: "var/lib/dpkg/status".into(),
                    layer: base.clone(),
                });
            }
        }
        let pool = &self.pools[plan.language.pool()];
        for &(name, version) in &plan.picks {
            let (name, version) = (&pool.names[name], &pool.versions[name][version]);
            let (ecosystem, purl, path) = match plan.language {
                Eco::PyPI => (
                    Ecosystem::PyPI,
                    format!("pkg:pypi/{name}@{version}"),
                    format!("usr/local/lib/python3.11/site-packages/{name}-{version}.dist-info/METADATA"),
                ),
                Eco::Npm => (
                    Ecosystem::Npm,
                    format!("pkg:npm/{}@{version}", name.replace('@', "%40")),
                    format!("app/node_modules/{name}/package.json"),
                ),
                _ => (Ecosystem::Go, format!("pkg:golang/{name}@v{version}"), "app/server".into()),
            };
            packages.push(Package {
                ecosystem,
                name: name.clone(),
                version: version.clone(),
                source_name: None,
                source_version: None,
                arch: None,
                purl,
                path,
                layer: app.clone(),
            });
        }
        Inventory { os: Some(os), packages, issues: Vec::new() }
    }

    /// The distinct packages the images hold, as advisories name them.
    fn indexed(&self, images: usize) -> BTreeSet<Named> {
        let mut named = BTreeSet::new();
        for image in 0..images {
            let plan = self.plan(image);
            named.extend(flavour_sources(plan.flavour).map(|index| Named { eco: Eco::Debian, index }));
            named.extend(plan.picks.iter().map(|&(index, _)| Named { eco: plan.language, index }));
        }
        named
    }

    fn name(&self, named: Named) -> &str {
        match named.eco {
            Eco::Debian => &self.sources[named.index].name,
            eco => &self.pools[eco.pool()].names[named.index],
        }
    }

    /// The advisories the initial feed holds for a package: most Debian source packages
    /// have some (many never fixed, or not worth fixing), a minority of language packages.
    fn initial(&self, named: Named) -> Vec<Spec> {
        let mut rng = Rng::new(&[self.seed, 2, named.eco as u64, named.index as u64]);
        let (share, more) = match named.eco {
            Eco::Debian => (0.6, 0.6),
            Eco::PyPI => (0.12, 0.4),
            Eco::Npm => (0.08, 0.4),
            Eco::Go => (0.10, 0.4),
        };
        if !rng.chance(share) {
            return Vec::new();
        }
        (0..rng.count(more, 25)).map(|k| self.spec(&mut rng, named, format!("{}", named.index * 100 + k), "2025-06-01T00:00:00Z")).collect()
    }

    fn spec(&self, rng: &mut Rng, named: Named, number: String, modified: &'static str) -> Spec {
        let id = match named.eco {
            Eco::Debian => format!("DEBIAN-CVE-2025-{number}"),
            Eco::PyPI => format!("PYSEC-2025-{number}"),
            Eco::Npm => format!("GHSA-npm-{number}"),
            Eco::Go => format!("GO-2025-{number}"),
        };
        let cve = format!("CVE-2025-{}{number}", named.eco as usize);
        let urgency = (named.eco == Eco::Debian).then(|| URGENCIES[rng.below(URGENCIES.len())]);
        let cvss = rng.chance(0.8).then(|| CVSS[rng.below(CVSS.len())]);
        let events = self.events(rng, named);
        Spec { id, cve, eco: named.eco, name: self.name(named).to_owned(), events, cvss, urgency, modified, withdrawn: false }
    }

    /// An affected range: fixed before every installed version, between two of them, or
    /// after all of them, or never fixed.
    fn events(&self, rng: &mut Rng, named: Named) -> Vec<(&'static str, String)> {
        let zero = ("introduced", "0".to_owned());
        match named.eco {
            Eco::Debian => {
                let versions = &self.sources[named.index].versions;
                match rng.weighted(&[35, 20, 20, 25]) {
                    0 => vec![zero, ("fixed", versions[0].clone())],
                    1 => vec![zero, ("fixed", versions[rng.between(1, SNAPSHOTS - 1)].clone())],
                    2 => vec![zero],
                    _ => vec![zero, ("fixed", next_debian(&versions[SNAPSHOTS - 1]))],
                }
            }
            eco => {
                let versions = &self.pools[eco.pool()].versions[named.index];
                let fixed = rng.between(0, versions.len());
                let fixed_version = versions.get(fixed).cloned().unwrap_or_else(|| next_release(&versions[versions.len() - 1]));
                let introduced = match fixed {
                    0 => zero,
                    _ if rng.chance(0.3) => ("introduced", versions[rng.below(fixed)].clone()),
                    _ => zero,
                };
                vec![introduced, ("fixed", fixed_version)]
            }
        }
    }

    /// The initial feed: advisories for the packages the images hold, and for packages
    /// none holds. Returns how many were written.
    fn write_initial(&self, images: usize, dir: &Path) -> Result<usize> {
        let mut written = 0;
        for named in self.indexed(images) {
            for spec in self.initial(named) {
                write_record(dir, &spec)?;
                written += 1;
            }
        }
        for i in 0..UNINDEXED_ADVISORIES {
            write_record(dir, &self.unindexed(i, "2025-06-01T00:00:00Z"))?;
            written += 1;
        }
        Ok(written)
    }

    fn unindexed(&self, i: usize, modified: &'static str) -> Spec {
        let mut rng = Rng::new(&[self.seed, 3, i as u64]);
        Spec {
            id: format!("GHSA-unindexed-{i}"),
            cve: format!("CVE-2025-9{i:06}"),
            eco: LANGUAGES[i % 2],
            name: format!("unindexed-{i}"),
            events: vec![("introduced", "0".into()), ("fixed", format!("{}.{}.0", rng.below(9), rng.below(30)))],
            cvss: Some(CVSS[rng.below(CVSS.len())]),
            urgency: None,
            modified,
            withdrawn: false,
        }
    }

    /// The feed update of `round`: `share` of the distinct indexed packages of each
    /// ecosystem (disjoint from other rounds'), each getting a new advisory, a changed
    /// range or a withdrawn advisory, plus changes to packages no image holds.
    fn write_update(&self, images: usize, round: usize, share: f64, dir: &Path) -> Result<UpdateSummary> {
        const MODIFIED: &str = "2026-01-15T00:00:00Z";
        let indexed = self.indexed(images);
        let mut summary = UpdateSummary { indexed: indexed.len(), ..UpdateSummary::default() };
        for eco in [Eco::Debian, Eco::PyPI, Eco::Npm, Eco::Go] {
            // Half of the packages changed have advisories already (whose ranges change, or
            // which are withdrawn), half get their first; a uniform draw would pick
            // mostly packages without any, as most language packages have none.
            let (with, without): (Vec<Named>, Vec<Named>) =
                indexed.iter().copied().filter(|n| n.eco == eco).partition(|n| !self.initial(*n).is_empty());
            let take = (((with.len() + without.len()) as f64 * share).round() as usize).max(1);
            let mut chosen = Vec::with_capacity(take);
            for (part, (mut names, count)) in [(with, take.div_ceil(2)), (without, take / 2)].into_iter().enumerate() {
                // The same order in every round, so that rounds take disjoint slices.
                let mut rng = Rng::new(&[self.seed, 4, eco as u64, part as u64]);
                for i in (1..names.len()).rev() {
                    names.swap(i, rng.below(i + 1));
                }
                let start = (round - 1) * count;
                chosen.extend_from_slice(names.get(start..start + count).ok_or("more rounds than packages to change")?);
            }
            for (k, &named) in chosen.iter().enumerate() {
                let mut rng = Rng::new(&[self.seed, 5, round as u64, eco as u64, named.index as u64]);
                let mut initial = self.initial(named);
                // The first package of a round with advisories always loses one.
                let withdraw = !initial.is_empty() && (summary.withdrawn == 0 || rng.chance(0.05));
                let spec = if withdraw {
                    summary.withdrawn += 1;
                    Spec { withdrawn: true, modified: MODIFIED, ..initial.swap_remove(0) }
                } else if !initial.is_empty() && rng.chance(0.5) {
                    summary.changed += 1;
                    let mut spec = initial.swap_remove(0);
                    let before = std::mem::take(&mut spec.events);
                    while spec.events.is_empty() || spec.events == before {
                        spec.events = self.events(&mut rng, named);
                    }
                    Spec { modified: MODIFIED, ..spec }
                } else {
                    summary.added += 1;
                    self.spec(&mut rng, named, format!("9{round:02}{}{k:05}", eco as usize), MODIFIED)
                };
                write_record(dir, &spec)?;
                summary.packages += 1;
            }
        }
        for i in 0..summary.packages * UNINDEXED_CHANGES_PER_CHANGE {
            let offset = (round - 1) * summary.packages * UNINDEXED_CHANGES_PER_CHANGE + i;
            let spec = self.unindexed(offset % UNINDEXED_ADVISORIES, MODIFIED);
            write_record(dir, &Spec { events: vec![("introduced", "0".into()), ("fixed", format!("99.{round}.0"))], ..spec })?;
            summary.unindexed += 1;
        }
        Ok(summary)
    }
}

/// Writes an advisory as an OSV record, one file each as osv.dev's archives hold them.
fn write_record(dir: &Path, spec: &Spec) -> Result<()> {
    let events: Vec<Value> = spec.events.iter().map(|(kind, version)| json!({ *kind: version })).collect();
    let name = &spec.name;
    let mut affected = vec![json!({
        "package": {"ecosystem": if spec.eco == Eco::Debian { "Debian:12" } else { spec.eco.osv() }, "name": name},
        "ranges": [{"type": "ECOSYSTEM", "events": events}],
    })];
    if let Some(urgency) = spec.urgency {
        affected[0]["ecosystem_specific"] = json!({ "urgency": urgency });
        // Debian's records name every release; the matcher keeps to the image's.
        affected.push(json!({
            "package": {"ecosystem": "Debian:11", "name": name},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "0.1-1"}]}],
        }));
    }
    let mut record = json!({
        "schema_version": "1.6.0",
        "id": spec.id,
        "modified": spec.modified,
        "published": "2025-06-01T00:00:00Z",
        "details": format!("Synthetic advisory for {name}."),
        "affected": affected,
    });
    record[if spec.eco == Eco::Debian { "upstream" } else { "aliases" }] = json!([spec.cve]);
    if let Some(vector) = spec.cvss {
        record["severity"] = json!([{ "type": "CVSS_V3", "score": vector }]);
    }
    if spec.withdrawn {
        record["withdrawn"] = json!(spec.modified);
    }
    std::fs::write(dir.join(format!("{}.json", spec.id)), serde_json::to_vec(&record)?)?;
    Ok(())
}

#[derive(Default)]
struct UpdateSummary {
    indexed: usize,
    packages: usize,
    added: usize,
    changed: usize,
    withdrawn: usize,
    unindexed: usize,
}

fn flavour_sources(flavour: usize) -> impl Iterator<Item = usize> {
    FLAVOURS[flavour].1.iter().flat_map(|&(start, end)| start..end)
}

fn source(seed: u64, i: usize) -> Source {
    let mut rng = Rng::new(&[seed, 6, i as u64]);
    let name = format!("debsrc{i:03}");
    // Most source packages build one binary package an image installs, some many.
    let binaries = match rng.weighted(&[65, 20, 8, 7]) {
        0 => 1,
        1 => 2,
        2 => 3,
        _ => rng.between(4, 8),
    };
    let binaries = (0..binaries).map(|b| if b == 0 { name.clone() } else { format!("lib{name}-{b}") }).collect();
    let epoch = if rng.chance(0.1) { "1:" } else { "" };
    let upstream = format!("{epoch}{}.{}.{}-{}", rng.below(4), rng.below(40), rng.below(20), rng.between(1, 9));
    let mut update = rng.below(3);
    let versions = std::array::from_fn(|s| {
        if s > 0 && rng.chance(0.3) {
            update += 1;
        }
        match update {
            0 => upstream.clone(),
            n => format!("{upstream}+deb12u{n}"),
        }
    });
    Source { name, binaries, versions }
}

fn next_debian(version: &str) -> String {
    match version.rsplit_once("+deb12u") {
        Some((upstream, n)) => format!("{upstream}+deb12u{}", n.parse::<u32>().unwrap_or(0) + 1),
        None => format!("{version}+deb12u1"),
    }
}

fn next_release(version: &str) -> String {
    let mut parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap_or(0)).collect();
    *parts.last_mut().expect("a version has parts") += 1;
    parts.iter().map(u32::to_string).collect::<Vec<_>>().join(".")
}

fn pool(seed: u64, eco: Eco, size: usize) -> Pool {
    let mut names = Vec::with_capacity(size);
    let mut versions = Vec::with_capacity(size);
    for i in 0..size {
        let mut rng = Rng::new(&[seed, 7, eco as u64, i as u64]);
        names.push(match eco {
            Eco::PyPI => format!("pypkg-{i}"),
            Eco::Npm if rng.chance(0.2) => format!("@scope{}/npmpkg-{i}", rng.below(300)),
            Eco::Npm => format!("npmpkg-{i}"),
            _ => format!("github.com/org{}/gomod{i}", rng.below(800)),
        });
        let (mut major, mut minor, mut patch) = (rng.below(5), rng.below(30), rng.below(10));
        let releases = (0..rng.between(1, 6))
            .map(|_| {
                match rng.weighted(&[60, 30, 10]) {
                    0 => patch += rng.between(1, 3),
                    1 => (minor, patch) = (minor + 1, 0),
                    _ => (major, minor, patch) = (major + 1, 0, 0),
                }
                format!("{major}.{minor}.{patch}")
            })
            .collect();
        versions.push(releases);
    }
    let total: f64 = (1..=size).map(|n| 1.0 / n as f64).sum();
    let cumulative = (1..=size)
        .scan(0.0, |sum, n| {
            *sum += 1.0 / n as f64 / total;
            Some(*sum)
        })
        .collect();
    Pool { names, versions, cumulative }
}

struct Args {
    command: String,
    db: String,
    images: usize,
    seed: u64,
    concurrency: usize,
    round: usize,
    share: f64,
}

fn parse_args() -> Result<Args> {
    let mut args = std::env::args().skip(1);
    let command = args.next().ok_or("usage: rematch fill|update|reassess|rescan|digest --db URL [flags]")?;
    let mut parsed = Args { command, db: String::new(), images: 10_000, seed: 1, concurrency: 4, round: 1, share: 0.01 };
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} lacks its value"))?;
        match flag.as_str() {
            "--db" => parsed.db = value,
            "--images" => parsed.images = value.parse()?,
            "--seed" => parsed.seed = value.parse()?,
            "--concurrency" => parsed.concurrency = value.parse()?,
            "--round" => parsed.round = value.parse()?,
            "--share" => parsed.share = value.parse()?,
            _ => return Err(format!("unknown flag {flag}").into()),
        }
    }
    if parsed.db.is_empty() {
        return Err("--db URL is required".into());
    }
    Ok(parsed)
}

/// The scanning service on the database at `url`, and its tables for the measurements to
/// read; nothing here reads or writes blobs.
async fn scanning(url: &str, blobs: &Path) -> Result<(Scanning, ScanningDb)> {
    let db = Db::connect(url).await?;
    let store = Arc::new(FsStore::open(blobs).await?);
    Ok((Scanning::new(db.scanning(), db.images(), store, Queue::new(db.jobs()), Limits::default()), db.scanning()))
}

/// Stores every image's inventory as a scan does, `concurrency` images at a time.
async fn store_images(scanning: &Scanning, world: &Arc<World>, images: usize, concurrency: usize) -> Result<()> {
    stream::iter(0..images)
        .map(|image| {
            let (scanning, world) = (scanning.clone(), world.clone());
            tokio::spawn(async move {
                let plan = world.plan(image);
                scanning.store_inventory(&plan.digest, &world.inventory(&plan), 0, LAYERS_PER_IMAGE).await
            })
        })
        .buffer_unordered(concurrency)
        .map(|joined| -> Result<()> { Ok(joined??) })
        .try_collect()
        .await
}

#[tokio::main]
async fn main() -> Result<()> {
    let args = parse_args()?;
    let blobs = tempfile::tempdir()?;
    let (scanning, db) = scanning(&args.db, blobs.path()).await?;
    let world = Arc::new(World::new(args.seed));
    let started = Instant::now();
    let ms = |started: Instant| started.elapsed().as_millis();
    let result = match args.command.as_str() {
        "fill" => {
            let feed = tempfile::tempdir()?;
            let advisories = world.write_initial(args.images, feed.path())?;
            let import = scanning.import_feed(&[feed.path().to_owned()], "bench: initial feed").await?;
            let import_ms = ms(started);
            let stored = Instant::now();
            store_images(&scanning, &world, args.images, args.concurrency).await?;
            let store_ms = ms(stored);
            let settled = Instant::now();
            let settle = scanning.reassess().await?;
            let settle_ms = ms(settled);
            let indexed = world.indexed(args.images);
            let count = |eco: Eco| indexed.iter().filter(|n| n.eco == eco).count();
            let packages: usize = (0..args.images).map(|i| world.inventory(&world.plan(i)).packages.len()).sum();
            format!(
                "images={} packages={packages} distinct={} distinct_debian={} distinct_pypi={} distinct_npm={} distinct_go={} \
                 advisories={advisories} imported={} rejected={} import_ms={import_ms} store_ms={store_ms} \
                 settle_ms={settle_ms} settle_packages={} settle_added={} settle_updated={} settle_removed={} settle_events={}",
                args.images,
                indexed.len(),
                count(Eco::Debian),
                count(Eco::PyPI),
                count(Eco::Npm),
                count(Eco::Go),
                import.imported,
                import.rejected.len(),
                settle.packages,
                settle.added,
                settle.updated,
                settle.removed,
                settle.events,
            )
        }
        "update" => {
            let feed = tempfile::tempdir()?;
            let summary = world.write_update(args.images, args.round, args.share, feed.path())?;
            let import = scanning.import_feed(&[feed.path().to_owned()], &format!("bench: update {}", args.round)).await?;
            let pending = db.feed_totals().await?.pending_changes;
            format!(
                "round={} indexed={} changed_packages={} new_advisories={} changed_ranges={} withdrawn={} unindexed_changes={} \
                 imported={} updated={} rejected={} pending_changes={pending}",
                args.round,
                summary.indexed,
                summary.packages,
                summary.added,
                summary.changed,
                summary.withdrawn,
                summary.unindexed,
                import.imported,
                import.updated,
                import.rejected.len(),
            )
        }
        "reassess" => {
            let done = scanning.reassess().await?;
            format!(
                "packages={} images={} added={} updated={} removed={} events={}",
                done.packages, done.images, done.added, done.updated, done.removed, done.events
            )
        }
        "rescan" => {
            store_images(&scanning, &world, args.images, args.concurrency).await?;
            format!("images={} concurrency={}", args.images, args.concurrency)
        }
        "digest" => {
            let mut hash = Sha256::new();
            let mut findings = 0;
            for image in 0..args.images {
                let digest = world.plan(image).digest;
                for f in db.findings(&digest).await? {
                    // Without first_seen, which only says when the finding was first stored.
                    let fields = (
                        &f.digest,
                        &f.package,
                        &f.advisory_id,
                        &f.aliases,
                        &f.installed_version,
                        &f.fixed_version,
                        &f.status,
                        &f.severity,
                        &f.class,
                    );
                    hash.update(format!("{fields:?}\n").as_bytes());
                    findings += 1;
                }
            }
            format!("findings={findings} hash={}", hex::encode(&hash.finalize()[..8]))
        }
        other => return Err(format!("unknown command {other}").into()),
    };
    println!("result command={} {result} ms={}", args.command, ms(started));
    Ok(())
}

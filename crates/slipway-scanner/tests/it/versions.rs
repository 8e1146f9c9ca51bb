//! Version ordering checked against the ecosystems' own tools on generated versions:
//! `dpkg --compare-versions`, Python's `packaging`, npm's `semver` package, rpm's
//! `rpm.vercmp`, Maven's `ComparableVersion`, RubyGems' `Gem::Version`, and composer/semver
//! with PHP's `version_compare`. Every pair must agree, refusals included.
//! scripts/install-test-deps installs the oracles; a missing one fails the test.

use std::cmp::Ordering;
use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering as AtomicOrdering};
use std::thread;
use std::time::Instant;

use slipway_scanner::ScanError;
use slipway_scanner::version::{Scheme, npm_range_satisfies};

use crate::oracle::{INSTALL_HINT, Rng, python, workspace_root};

impl Rng {
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn number(&mut self) -> String {
        match self.below(10) {
            0 => "0".to_owned(),
            1 => format!("{}", self.below(100_000)),
            2 => format!("0{}", self.below(10)),
            _ => format!("{}", self.below(5)),
        }
    }
}

fn ordering_name(ord: Ordering) -> &'static str {
    match ord {
        Ordering::Less => "<",
        Ordering::Equal => "=",
        Ordering::Greater => ">",
    }
}

/// Our answer in the oracle's notation: `<`, `=`, `>`, or `E1`/`E2` for a refused side.
fn ours(scheme: Scheme, a: &str, b: &str) -> String {
    match scheme.compare(a, b) {
        Ok(ord) => ordering_name(ord).to_owned(),
        Err(_) if scheme.compare(a, a).is_err() => "E1".to_owned(),
        Err(_) => "E2".to_owned(),
    }
}

/// How often the oracle gave each answer, e.g. `<: 2810, =: 403, >: 2787`.
fn tally<'a>(answers: impl IntoIterator<Item = &'a str>) -> String {
    let mut counts = std::collections::BTreeMap::new();
    for answer in answers {
        *counts.entry(answer).or_insert(0) += 1;
    }
    counts.iter().map(|(answer, n)| format!("{answer}: {n}")).collect::<Vec<_>>().join(", ")
}

fn assert_agreement(what: &str, mismatches: &[String], total: usize, started: Instant) {
    println!("{what}: {total} pairs compared with the oracle in {:.1} s", started.elapsed().as_secs_f64());
    assert!(
        mismatches.is_empty(),
        "{what}: {} of {total} pairs disagree with the oracle:\n{}",
        mismatches.len(),
        mismatches.iter().take(60).cloned().collect::<Vec<_>>().join("\n")
    );
}

/// Runs `program` once with all `lines` on stdin; returns one output line per input line.
fn run_oracle(mut command: Command, input: &str, expected_lines: usize) -> Vec<String> {
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?} ({e}): {INSTALL_HINT}"));
    let mut stdin = child.stdin.take().expect("piped stdin");
    let input = input.to_owned();
    let writer = thread::spawn(move || stdin.write_all(input.as_bytes()));
    let output = child.wait_with_output().expect("oracle output");
    writer.join().expect("writer thread").expect("oracle stdin");
    assert!(output.status.success(), "{command:?} failed: {}\n{INSTALL_HINT}", String::from_utf8_lossy(&output.stderr));
    let lines: Vec<String> =
        String::from_utf8(output.stdout).expect("UTF-8 oracle output").lines().filter(|line| !line.is_empty()).map(str::to_owned).collect();
    assert_eq!(lines.len(), expected_lines, "one answer per question from {command:?}");
    lines
}

// ---------------------------------------------------------------- dpkg

fn dpkg_version(rng: &mut Rng) -> String {
    let mut v = String::new();
    if rng.chance(30) {
        let _ = write!(v, "{}:", rng.pick(&["0", "1", "2", "10", "01", "00"]));
    }
    let upstream_len = 1 + rng.below(6);
    for i in 0..upstream_len {
        let piece = match rng.below(12) {
            0..=4 => rng.number(),
            5 | 6 => rng.pick(&["a", "b", "rc", "alpha", "Z", "dfsg", "git"]).to_owned(),
            7 => "~".to_owned(),
            8 => "+".to_owned(),
            9 => ".".to_owned(),
            10 if v.contains(':') => ":".to_owned(),
            _ => rng.pick(&["~~", "~rc", "+b", ".0"]).to_owned(),
        };
        if i == 0 && !rng.chance(5) && !piece.starts_with(|c: char| c.is_ascii_digit()) {
            v.push_str(&rng.number());
        }
        v.push_str(&piece);
    }
    if rng.chance(60) {
        if rng.chance(15) {
            v.push_str("-0");
        }
        v.push('-');
        for _ in 0..1 + rng.below(3) {
            match rng.below(6) {
                0..=2 => v.push_str(&rng.number()),
                3 => v.push_str(rng.pick(&["ubuntu", "deb", "bpo", "build"])),
                4 => v.push_str(rng.pick(&["~", "+", "."])),
                _ => v.push_str(rng.pick(&["~bpo1", "+deb12u1", ".1"])),
            }
        }
    }
    // What dpkg only warns about, and what it refuses.
    match rng.below(60) {
        0 => v.push('_'),
        1 => v.insert(0, 'v'),
        2 => v.push('-'),
        3 => v = format!("{v} 1"),
        4 => v = format!("x:{v}"),
        5 => v = format!(" {v}\t"),
        6 => v = format!("99999999999:{v}"),
        _ => {}
    }
    v
}

fn dpkg_mutation(rng: &mut Rng, a: &str) -> String {
    let mut b = a.to_owned();
    match rng.below(6) {
        0 => b.push_str(rng.pick(&["~", "+", "a", "0", ".0", "-1", "~rc1"])),
        1 if b.len() > 1 => {
            b.pop();
        }
        2 => {
            let at = rng.below(b.len() + 1);
            if b.is_char_boundary(at) {
                b.insert_str(at, rng.pick(&["~", "0", "1", "a", "."]));
            }
        }
        3 => b = b.replacen(|c: char| c.is_ascii_digit(), &rng.number(), 1),
        _ => b = dpkg_version(rng),
    }
    b
}

/// dpkg's answer: `<`, `=`, `>`, or `E` when it refuses either version.
fn dpkg_compare(a: &str, b: &str) -> String {
    let ask = |op: &str| {
        Command::new("dpkg")
            .args(["--compare-versions", a, op, b])
            .stderr(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("cannot run dpkg ({e}): {INSTALL_HINT}"))
            .code()
    };
    match ask("lt") {
        Some(0) => "<".to_owned(),
        Some(1) => match ask("eq") {
            Some(0) => "=".to_owned(),
            Some(1) => ">".to_owned(),
            other => panic!("dpkg eq exited {other:?} for {a:?} {b:?}"),
        },
        Some(2) => "E".to_owned(),
        other => panic!("dpkg exited {other:?} for {a:?} {b:?}"),
    }
}

#[test]
fn dpkg_agrees_with_dpkg_compare_versions() {
    const PAIRS: usize = 10_000;
    let mut rng = Rng(20250101);
    let pairs: Vec<(String, String)> = (0..PAIRS)
        .map(|_| {
            let a = dpkg_version(&mut rng);
            let b = if rng.chance(70) { dpkg_mutation(&mut rng, &a) } else { dpkg_version(&mut rng) };
            (a, b)
        })
        .collect();
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let threads = thread::available_parallelism().map_or(2, |n| n.get()).max(2);
    // (dpkg's answer, and the pair's description where ours differs)
    let results: Vec<(String, Option<String>)> = thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut results = Vec::new();
                    loop {
                        let i = next.fetch_add(1, AtomicOrdering::Relaxed);
                        let Some((a, b)) = pairs.get(i) else { break };
                        let expected = dpkg_compare(a, b);
                        let got = match ours(Scheme::Dpkg, a, b) {
                            e if e.starts_with('E') => "E".to_owned(),
                            ord => ord,
                        };
                        let mismatch = (got != expected).then(|| format!("{a:?} vs {b:?}: dpkg {expected}, ours {got}"));
                        results.push((expected, mismatch));
                    }
                    results
                })
            })
            .collect();
        workers.into_iter().flat_map(|w| w.join().expect("worker")).collect()
    });
    println!("dpkg answers: {}", tally(results.iter().map(|(e, _)| e.as_str())));
    let mismatches: Vec<String> = results.into_iter().filter_map(|(_, m)| m).collect();
    let refused = pairs.iter().filter(|(a, b)| Scheme::Dpkg.compare(a, b).is_err()).count();
    assert_agreement("dpkg", &mismatches, PAIRS, started);
    assert!(refused > PAIRS / 50 && refused < PAIRS / 5, "{refused} refusals: too few or too many");
}

// ---------------------------------------------------------------- PEP 440

fn pep440_version(rng: &mut Rng) -> String {
    let sep = |rng: &mut Rng| rng.pick(&["", "", ".", "-", "_"]);
    let mut v = String::new();
    if rng.chance(4) {
        v.push_str(rng.pick(&[" ", "\t", "\u{a0}", "\u{2003}", "\u{1f}", "\u{b}", "\n"]));
    }
    if rng.chance(8) {
        v.push(if rng.chance(80) { 'v' } else { 'V' });
    }
    if rng.chance(10) {
        let _ = write!(v, "{}!", rng.number());
    }
    let release: Vec<String> = (0..1 + rng.below(4)).map(|_| rng.number()).collect();
    v.push_str(&release.join("."));
    if rng.chance(35) {
        v.push_str(sep(rng));
        v.push_str(rng.pick(&["a", "alpha", "b", "beta", "c", "rc", "pre", "preview", "RC", "Alpha"]));
        v.push_str(sep(rng));
        if rng.chance(80) {
            v.push_str(&rng.number());
        }
    }
    if rng.chance(25) {
        if rng.chance(30) {
            let _ = write!(v, "-{}", rng.number());
        } else {
            v.push_str(sep(rng));
            v.push_str(rng.pick(&["post", "rev", "r", "POST"]));
            v.push_str(sep(rng));
            if rng.chance(80) {
                v.push_str(&rng.number());
            }
        }
    }
    if rng.chance(25) {
        v.push_str(sep(rng));
        v.push_str(rng.pick(&["dev", "DEV"]));
        v.push_str(sep(rng));
        if rng.chance(80) {
            v.push_str(&rng.number());
        }
    }
    if rng.chance(20) {
        v.push('+');
        for i in 0..1 + rng.below(3) {
            if i > 0 {
                v.push_str(rng.pick(&[".", "-", "_"]));
            }
            v.push_str(&match rng.below(3) {
                0 => rng.number(),
                1 => rng.pick(&["ubuntu", "Local", "abc", "cpu", "cu118"]).to_owned(),
                _ => format!("{}{}", rng.pick(&["g", "x"]), rng.number()),
            });
        }
    }
    match rng.below(25) {
        0 => v.push_str(rng.pick(&[".", "-", "_", "+", "..1", ".*", "!", "+a..b", "_1"])),
        1 => v.insert_str(0, rng.pick(&["a", "!", ".", "=", "vv"])),
        2 => v.push_str(rng.pick(&[" 1", "a", "alpha", "post", "dev1dev", "+local+"])),
        3 => v.push_str(rng.pick(&[" ", "\u{a0}", "\u{3000}", "\u{1c}", "\r\n"])),
        _ => {}
    }
    v
}

fn pep440_mutation(rng: &mut Rng, a: &str) -> String {
    match rng.below(5) {
        0 => format!("{a}{}", rng.pick(&[".0", "0", ".post1", ".dev0", "a1", "+1", "-1"])),
        1 => a.replacen(|c: char| c.is_ascii_digit(), &rng.number(), 1),
        2 => a.replace('.', "-").replace("post", "rev"),
        3 => a.to_uppercase(),
        _ => pep440_version(rng),
    }
}

#[test]
fn pep440_agrees_with_packaging() {
    const PAIRS: usize = 6_000;
    let python = python();
    let mut rng = Rng(20250102);
    let pairs: Vec<(String, String)> = (0..PAIRS)
        .map(|_| {
            let a = pep440_version(&mut rng);
            let b = if rng.chance(60) { pep440_mutation(&mut rng, &a) } else { pep440_version(&mut rng) };
            (a, b)
        })
        .collect();
    let started = Instant::now();
    let input: String = pairs.iter().map(|(a, b)| serde_json::to_string(&[a, b]).expect("JSON") + "\n").collect();
    let script = r#"
import json, sys
from packaging.version import InvalidVersion, Version
def parse(v):
    try:
        return Version(v)
    except InvalidVersion:
        return None
out = []
for line in sys.stdin:
    a, b = json.loads(line)
    va, vb = parse(a), parse(b)
    if va is None:
        out.append("E1")
    elif vb is None:
        out.append("E2")
    else:
        out.append("<" if va < vb else ">" if va > vb else "=")
print("\n".join(out))
"#;
    let mut command = Command::new(&python);
    command.args(["-c", script]);
    let answers = run_oracle(command, &input, PAIRS);
    let mismatches: Vec<String> = pairs
        .iter()
        .zip(&answers)
        .filter_map(|((a, b), expected)| {
            let got = ours(Scheme::Pep440, a, b);
            (&got != expected).then(|| format!("{a:?} vs {b:?}: packaging {expected}, ours {got}"))
        })
        .collect();
    let refused = answers.iter().filter(|a| a.starts_with('E')).count();
    println!("packaging answers: {}", tally(answers.iter().map(String::as_str)));
    assert_agreement("PEP 440", &mismatches, PAIRS, started);
    assert!(refused > PAIRS / 50 && refused < PAIRS / 3, "{refused} refusals: too few or too many");
}

// ---------------------------------------------------------------- npm

fn node_semver() -> PathBuf {
    let package = workspace_root().join("tests/oracles/node_modules/semver");
    if !package.join("package.json").exists() {
        panic!("{} not found: {INSTALL_HINT}", package.display());
    }
    package
}

fn npm_part(rng: &mut Rng) -> String {
    match rng.below(60) {
        0..=4 => rng.pick(&["x", "X", "*"]).to_owned(),
        5 => rng.pick(&["01", "10", "9007199254740990", "9007199254740991", "9007199254740992"]).to_owned(),
        _ => format!("{}", rng.below(4)),
    }
}

fn npm_version(rng: &mut Rng, allow_x: bool) -> String {
    let part = |rng: &mut Rng| {
        let p = npm_part(rng);
        if !allow_x && matches!(p.as_str(), "x" | "X" | "*") { "1".to_owned() } else { p }
    };
    let mut v = String::new();
    if rng.chance(6) {
        v.push_str(rng.pick(&["v", "=", "v", "=", "v=", "= ", "=v", "V"]));
    }
    v.push_str(&part(rng));
    let parts = if allow_x {
        rng.below(3)
    } else if rng.chance(97) {
        2
    } else {
        rng.below(4)
    };
    for _ in 0..parts {
        v.push('.');
        v.push_str(&part(rng));
    }
    if rng.chance(if parts == 2 { 30 } else { 2 }) {
        v.push('-');
        let ids: Vec<String> = (0..1 + rng.below(3))
            .map(|_| match rng.below(6) {
                0 | 1 => format!("{}", rng.below(4)),
                2 => rng.pick(&["alpha", "beta", "rc", "pre"]).to_owned(),
                3 if rng.chance(30) => rng.pick(&["0a", "-x", "a-1", "00", "01", ""]).to_owned(),
                _ => rng.pick(&["alpha", "beta"]).to_owned(),
            })
            .collect();
        v.push_str(&ids.join("."));
    }
    if rng.chance(8) {
        v.push('+');
        let garbage = rng.chance(10);
        v.push_str(if garbage { rng.pick(&["", "a..b", "b_1"]) } else { rng.pick(&["build", "001", "b.2", "x-y"]) });
    }
    v
}

fn npm_comparator(rng: &mut Rng) -> String {
    let op = rng.pick(&["", "", "", "=", "<", "<=", ">", ">=", "~", "~>", "^", "^", "~"]);
    let space = if rng.chance(15) { " " } else { "" };
    format!("{op}{space}{}", npm_version(rng, true))
}

fn npm_range(rng: &mut Rng) -> String {
    let alternatives = 1 + rng.below(3);
    let mut range = String::new();
    for i in 0..alternatives {
        if i > 0 {
            range.push_str(rng.pick(&[" || ", "||", " ||", "|| ", "  ||\t"]));
        }
        if rng.chance(15) {
            let _ = write!(range, "{} - {}", npm_version(rng, true), npm_version(rng, true));
            continue;
        }
        let comparators: Vec<String> = (0..1 + rng.below(3)).map(|_| npm_comparator(rng)).collect();
        range.push_str(&comparators.join(rng.pick(&[" ", " ", "  ", "\t"])));
    }
    match rng.below(40) {
        0 => range.push_str(rng.pick(&[" -", "||", " >=", "*1", " foo", "1.2.3.4"])),
        1 => range.insert_str(0, rng.pick(&["  ", "\u{a0}", "~ ", "^ ", ">= ", "<=  ", "v", "x "])),
        2 => range = rng.pick(&["", "*", "x", ">=0.0.0", "<0.0.0-0", "1.x.3", "^0.0.x", "~>*"]).to_owned(),
        _ => {}
    }
    range
}

#[test]
fn npm_ranges_and_versions_agree_with_node_semver() {
    const RANGES: usize = 8_000;
    const COMPARES: usize = 4_000;
    let semver = node_semver();
    let mut rng = Rng(20250103);
    let mut questions: Vec<(&str, String, String)> = Vec::new();
    for _ in 0..RANGES {
        questions.push(("satisfies", npm_range(&mut rng), npm_version(&mut rng, false)));
    }
    for _ in 0..COMPARES {
        let ws = |rng: &mut Rng| {
            if rng.chance(5) { rng.pick(&[" ", "\t", "\u{a0}", "\u{feff}", "\u{85}", "\n"]) } else { "" }
        };
        let a = format!("{}{}{}", ws(&mut rng), npm_version(&mut rng, false), ws(&mut rng));
        let b = if rng.chance(30) {
            let core = a.trim_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
            let prefix = rng.pick(&["", "v", " "]);
            let build = rng.pick(&["", "+b.1", "+001"]);
            format!("{prefix}{}{build}", core.split('+').next().unwrap_or(core))
        } else {
            npm_version(&mut rng, false)
        };
        questions.push(("compare", a, b));
    }
    let long = format!("1.2.3-{}", "a".repeat(250));
    questions.push(("compare", long.clone(), "1.0.0".to_owned()));
    questions.push(("compare", format!("{long}b"), "1.0.0".to_owned()));
    let started = Instant::now();
    let input: String =
        questions.iter().map(|(kind, a, b)| serde_json::to_string(&[kind, a.as_str(), b.as_str()]).expect("JSON") + "\n").collect();
    let script = r#"
const semver = require(process.argv[1]);
const lines = require("fs").readFileSync(0, "utf8").split("\n").filter(Boolean);
const out = lines.map((line) => {
  const [kind, a, b] = JSON.parse(line);
  if (kind === "satisfies") {
    if (semver.validRange(a) === null) return "R";
    if (semver.parse(b) === null) return "V";
    return semver.satisfies(b, a) ? "1" : "0";
  }
  if (semver.parse(a) === null) return "E1";
  if (semver.parse(b) === null) return "E2";
  return ["<", "=", ">"][semver.compare(a, b) + 1];
});
process.stdout.write(out.join("\n") + "\n");
"#;
    let mut command = Command::new("node");
    command.args(["-e", script]).arg(&semver);
    let answers = run_oracle(command, &input, questions.len());
    let mut mismatches = Vec::new();
    let (mut invalid_ranges, mut matched) = (0, 0);
    for ((kind, a, b), expected) in questions.iter().zip(&answers) {
        let got = if *kind == "satisfies" {
            match npm_range_satisfies(a, b) {
                Ok(true) => "1".to_owned(),
                Ok(false) => "0".to_owned(),
                Err(ScanError::Version { version, .. }) if version == *a => "R".to_owned(),
                Err(ScanError::Version { .. }) => "V".to_owned(),
                Err(e) => panic!("unexpected error: {e}"),
            }
        } else {
            ours(Scheme::Semver, a, b)
        };
        invalid_ranges += usize::from(expected == "R");
        matched += usize::from(expected == "1");
        if &got != expected {
            mismatches.push(format!("{kind} {a:?} {b:?}: node-semver {expected}, ours {got}"));
        }
    }
    println!("node-semver answers: {}", tally(answers.iter().map(String::as_str)));
    assert_agreement("npm", &mismatches, questions.len(), started);
    assert!(invalid_ranges > RANGES / 20 && invalid_ranges < RANGES / 3, "{invalid_ranges} invalid ranges");
    assert!(matched > RANGES / 10, "only {matched} satisfied ranges");
}

// ---------------------------------------------------------------- rpm

fn rpm_version(rng: &mut Rng, release: bool) -> String {
    let mut v = String::new();
    if rng.chance(20) {
        let _ = write!(v, "{}:", rng.pick(&["0", "1", "2", "01", ""]));
    }
    let part = |rng: &mut Rng, v: &mut String| {
        for i in 0..1 + rng.below(5) {
            match rng.below(10) {
                0..=4 => v.push_str(&rng.number()),
                5 | 6 => v.push_str(rng.pick(&["a", "b", "rc", "el", "fc", "git", "Z", "beta"])),
                7 if i > 0 => v.push_str(rng.pick(&["~", "^", "~~", "^git"])),
                _ => v.push_str(rng.pick(&[".", ".", "_", "+", "."])),
            }
        }
    };
    part(rng, &mut v);
    if release {
        v.push('-');
        part(rng, &mut v);
    }
    v
}

fn rpm_mutation(rng: &mut Rng, a: &str, release: bool) -> String {
    match rng.below(5) {
        0 => format!("{a}{}", rng.pick(&["~rc1", "^git1", ".0", "a", "0", "_1", "~"])),
        1 => a.replacen(|c: char| c.is_ascii_digit(), &rng.number(), 1),
        2 => a.replacen('.', rng.pick(&["_", "+", ".."]), 1),
        3 if !a.contains(':') => format!("{}:{a}", rng.below(2)),
        _ => rpm_version(rng, release),
    }
}

#[test]
fn rpm_agrees_with_rpm_vercmp() {
    const PAIRS: usize = 6_000;
    let mut rng = Rng(20250104);
    // rpm skips the release when only one side has one, which is no order: both or neither.
    let pairs: Vec<(String, String)> = (0..PAIRS)
        .map(|_| {
            let release = rng.chance(60);
            let a = rpm_version(&mut rng, release);
            let b = if rng.chance(60) { rpm_mutation(&mut rng, &a, release) } else { rpm_version(&mut rng, release) };
            (a, b)
        })
        .collect();
    let started = Instant::now();
    let input: String = pairs.iter().map(|(a, b)| format!("{a}\t{b}\n")).collect();
    let mut command = Command::new("rpm");
    command.args([
        "--eval",
        r#"%{lua: for line in io.lines() do local a, b = line:match("^(.-)\t(.*)$"); io.write(rpm.vercmp(a, b), "\n") end}"#,
    ]);
    let answers = run_oracle(command, &input, PAIRS);
    let mismatches: Vec<String> = pairs
        .iter()
        .zip(&answers)
        .filter_map(|((a, b), expected)| {
            let expected = match expected.as_str() {
                "-1" => "<",
                "0" => "=",
                "1" => ">",
                other => panic!("rpm answered {other:?}"),
            };
            let got = ours(Scheme::Rpm, a, b);
            (got != expected).then(|| format!("{a:?} vs {b:?}: rpm {expected}, ours {got}"))
        })
        .collect();
    println!("rpm answers: {}", tally(answers.iter().map(String::as_str)));
    assert_agreement("rpm", &mismatches, PAIRS, started);
}

// ---------------------------------------------------------------- Maven

fn maven_artifact_jar() -> PathBuf {
    let jar = workspace_root().join("target/tools/maven/maven-artifact.jar");
    if !jar.exists() {
        panic!("{} not found: {INSTALL_HINT}", jar.display());
    }
    jar
}

fn maven_version(rng: &mut Rng) -> String {
    let mut v = rng.number();
    for _ in 0..rng.below(5) {
        match rng.below(10) {
            0..=3 => {
                v.push_str(rng.pick(&[".", ".", "-"]));
                v.push_str(&rng.number());
            }
            4..=6 => {
                v.push_str(rng.pick(&[".", "-", "", "-", "."]));
                v.push_str(rng.pick(&[
                    "alpha",
                    "a",
                    "beta",
                    "b",
                    "milestone",
                    "m",
                    "rc",
                    "cr",
                    "SNAPSHOT",
                    "snapshot",
                    "ga",
                    "final",
                    "release",
                    "sp",
                    "foo",
                    "RC",
                    "Final",
                    "pfd",
                    "x",
                ]));
            }
            7 => v.push_str(&rng.number()),
            8 => v.push_str(rng.pick(&["0000000000", "99999999999", "1234567890123456789012", "000"])),
            _ => v.push_str(rng.pick(&[".", "-", "..", "-.", ".-"])),
        }
    }
    v
}

fn maven_mutation(rng: &mut Rng, a: &str) -> String {
    match rng.below(5) {
        0 => format!("{a}{}", rng.pick(&[".0", "-0", "-SNAPSHOT", ".1", "a1", "-sp", "-ga", "."])),
        1 => a.replacen(|c: char| c.is_ascii_digit(), &rng.number(), 1),
        2 => a.replace('.', "-"),
        3 => a.to_uppercase(),
        _ => maven_version(rng),
    }
}

#[test]
fn maven_agrees_with_comparable_version() {
    const VERSIONS: usize = 6_000;
    let jar = maven_artifact_jar();
    let mut rng = Rng(20250105);
    // ComparableVersion's main compares each argument with the one before it.
    let mut versions = vec![maven_version(&mut rng)];
    while versions.len() < VERSIONS {
        let last = versions.last().expect("one version");
        let next = if rng.chance(60) { maven_mutation(&mut rng, last) } else { maven_version(&mut rng) };
        versions.push(next);
    }
    let started = Instant::now();
    let mut command = Command::new("java");
    command.arg("-cp").arg(&jar).arg("org.apache.maven.artifact.versioning.ComparableVersion").args(&versions);
    let output = run_oracle(command, "", 2 * VERSIONS);
    let answers: Vec<&String> = output.iter().filter(|line| line.starts_with("   ")).collect();
    assert_eq!(answers.len(), VERSIONS - 1, "one comparison per consecutive pair");
    let mut mismatches = Vec::new();
    let mut expected_ops = Vec::new();
    for (pair, answer) in versions.windows(2).zip(answers) {
        let (a, b) = (&pair[0], &pair[1]);
        // "   <a> <op> <b>"
        let expected = &answer[3 + a.len() + 1..answer.len() - b.len() - 1];
        expected_ops.push(expected);
        let got = match ours(Scheme::Maven, a, b).as_str() {
            "=" => "==".to_owned(),
            other => other.to_owned(),
        };
        if got != expected {
            mismatches.push(format!("{a:?} vs {b:?}: Maven {expected}, ours {got}"));
        }
    }
    println!("Maven answers: {}", tally(expected_ops));
    assert_agreement("Maven", &mismatches, VERSIONS - 1, started);
}

// ---------------------------------------------------------------- RubyGems

fn gem_version(rng: &mut Rng) -> String {
    let mut v = String::new();
    if rng.chance(4) {
        v.push_str(rng.pick(&[" ", "\t", "\n", "\u{b}", "\u{a0}"]));
    }
    v.push_str(&rng.number());
    for _ in 0..rng.below(5) {
        match rng.below(8) {
            0..=3 => {
                v.push('.');
                v.push_str(&rng.number());
            }
            4 | 5 => {
                v.push_str(rng.pick(&[".", ".", "", "-"]));
                v.push_str(rng.pick(&["a", "b", "pre", "rc", "beta", "A", "alpha", "x"]));
            }
            6 => v.push_str(&rng.number()),
            _ => v.push_str(rng.pick(&["-", ".", "..", "-1", "_", " "])),
        }
    }
    if rng.chance(4) {
        v.push_str(rng.pick(&[" ", "\t\n", "\r"]));
    }
    if rng.chance(2) {
        v = String::new();
    }
    v
}

fn gem_mutation(rng: &mut Rng, a: &str) -> String {
    match rng.below(5) {
        0 => format!("{a}{}", rng.pick(&[".0", ".a", "a", "-1", ".pre.1", "0"])),
        1 => a.replacen(|c: char| c.is_ascii_digit(), &rng.number(), 1),
        2 => a.replace('-', ".pre."),
        3 => a.trim().to_owned(),
        _ => gem_version(rng),
    }
}

#[test]
fn rubygems_agrees_with_gem_version() {
    const PAIRS: usize = 6_000;
    let mut rng = Rng(20250106);
    let pairs: Vec<(String, String)> = (0..PAIRS)
        .map(|_| {
            let a = gem_version(&mut rng);
            let b = if rng.chance(60) { gem_mutation(&mut rng, &a) } else { gem_version(&mut rng) };
            (a, b)
        })
        .collect();
    let started = Instant::now();
    let input: String = pairs.iter().map(|(a, b)| serde_json::to_string(&[a, b]).expect("JSON") + "\n").collect();
    let script = r#"
require "json"
require "rubygems"
STDIN.each_line do |line|
  a, b = JSON.parse(line)
  if !Gem::Version.correct?(a)
    puts "E1"
  elsif !Gem::Version.correct?(b)
    puts "E2"
  else
    puts ["<", "=", ">"][(Gem::Version.new(a) <=> Gem::Version.new(b)) + 1]
  end
end
"#;
    let mut command = Command::new("ruby");
    command.args(["-e", script]);
    let answers = run_oracle(command, &input, PAIRS);
    let mismatches: Vec<String> = pairs
        .iter()
        .zip(&answers)
        .filter_map(|((a, b), expected)| {
            let got = ours(Scheme::RubyGems, a, b);
            (&got != expected).then(|| format!("{a:?} vs {b:?}: RubyGems {expected}, ours {got}"))
        })
        .collect();
    println!("RubyGems answers: {}", tally(answers.iter().map(String::as_str)));
    assert_agreement("RubyGems", &mismatches, PAIRS, started);
}

// ---------------------------------------------------------------- Composer

fn composer_version(rng: &mut Rng) -> String {
    let mut v = String::new();
    match rng.below(30) {
        0 => {
            return rng.pick(&["master", "dev-main", "dev-feature/x", "DEV-Foo", "trunk"]).to_owned();
        }
        1 => {
            return format!("{}{}", rng.pick(&["2023", "2010"]), rng.pick(&["-01-02", "0102", ".01.02.5", "-01-02-203040", "01021234567"]));
        }
        _ => {}
    }
    if rng.chance(10) {
        v.push_str(rng.pick(&["v", "V"]));
    }
    v.push_str(&match rng.below(12) {
        0 => rng.pick(&["123456", "12345", "00"]).to_owned(),
        _ => rng.number(),
    });
    for _ in 0..rng.below(4) {
        v.push('.');
        v.push_str(if rng.chance(8) { rng.pick(&["x", "*", "X"]) } else { "" });
        if !v.ends_with(['x', '*', 'X']) {
            v.push_str(&rng.number());
        }
    }
    if rng.chance(40) {
        v.push_str(rng.pick(&["", "-", ".", "_"]));
        v.push_str(rng.pick(&["alpha", "a", "beta", "b", "RC", "rc", "patch", "pl", "p", "stable", "Stable", "dev", "BETA", "snapshot"]));
        for _ in 0..rng.below(3) {
            v.push_str(rng.pick(&["", ".", "-"]));
            v.push_str(&rng.number());
        }
    }
    if rng.chance(15) {
        v.push_str(rng.pick(&["-dev", ".dev", "dev", "-DEV"]));
    }
    match rng.below(25) {
        0 => v.push_str(rng.pick(&["+build.1", "+", "+a b", "@dev", "@stable", "@RC", " as 1.0", "#abc"])),
        1 => v = format!("{}{v}{}", rng.pick(&[" ", "\t"]), rng.pick(&[" ", "\n", ""])),
        2 => v.push_str(rng.pick(&[".0.0.0.0", "-meh", "..", "/", "-"])),
        _ => {}
    }
    v
}

fn composer_mutation(rng: &mut Rng, a: &str) -> String {
    match rng.below(5) {
        0 => format!("{a}{}", rng.pick(&[".0", "-dev", "1", "-beta", "-p1", ".x-dev"])),
        1 => a.replacen(|c: char| c.is_ascii_digit(), &rng.number(), 1),
        2 => a.replace('-', "."),
        3 => a.to_uppercase(),
        _ => composer_version(rng),
    }
}

#[test]
fn composer_agrees_with_composer_semver() {
    const PAIRS: usize = 6_000;
    let mut rng = Rng(20250107);
    let pairs: Vec<(String, String)> = (0..PAIRS)
        .map(|_| {
            let a = composer_version(&mut rng);
            let b = if rng.chance(60) { composer_mutation(&mut rng, &a) } else { composer_version(&mut rng) };
            (a, b)
        })
        .collect();
    let started = Instant::now();
    let input: String = pairs.iter().map(|(a, b)| serde_json::to_string(&[a, b]).expect("JSON") + "\n").collect();
    // Branches only equal themselves: anything else about them is "B" (no order).
    let script = r#"
require "/usr/share/php/Composer/Semver/autoload.php";
$parser = new Composer\Semver\VersionParser();
$normalize = function ($v) use ($parser) {
    try { return $parser->normalize($v); } catch (UnexpectedValueException $e) { return null; }
};
while (($line = fgets(STDIN)) !== false) {
    [$a, $b] = json_decode($line);
    $na = $normalize($a);
    $nb = $normalize($b);
    if ($na === null) { echo "E1\n"; continue; }
    if ($nb === null) { echo "E2\n"; continue; }
    if (str_starts_with($na, "dev-") || str_starts_with($nb, "dev-")) {
        echo $na === $nb ? "=\n" : "B\n";
        continue;
    }
    echo ["<", "=", ">"][version_compare($na, $nb) + 1], "\n";
}
"#;
    let mut command = Command::new("php");
    command.args(["-r", script]);
    let answers = run_oracle(command, &input, PAIRS);
    let mismatches: Vec<String> = pairs
        .iter()
        .zip(&answers)
        .filter_map(|((a, b), expected)| {
            let got = match ours(Scheme::Composer, a, b) {
                e if e.starts_with('E') && Scheme::Composer.compare(a, a).is_ok() && Scheme::Composer.compare(b, b).is_ok() => {
                    "B".to_owned()
                }
                other => other,
            };
            (&got != expected).then(|| format!("{a:?} vs {b:?}: Composer {expected}, ours {got}"))
        })
        .collect();
    println!("Composer answers: {}", tally(answers.iter().map(String::as_str)));
    assert_agreement("Composer", &mismatches, PAIRS, started);
}

//! `slipway scan`: a standalone image scanner, like `trivy image`, offline against a
//! local advisory feed: OSV files given with `--feed`, or the feed stored in the database.
//!
//! Exit status: 0 when nothing at the selected severities is found (or `--exit-code`
//! is 0), the `--exit-code` value when something is, 2 for a usage error, 3 when the scan
//! could not run, 4 when a report was written but some layers could not be scanned.

mod feed;
pub(crate) mod printable;
mod progress;
mod registry;
mod table;

use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::ValueEnum;
use slipway_scanner::cvss::{Band, PolicyClass};
use slipway_scanner::image::{DockerArchive, ImageSource, OciLayout, Platform};
use slipway_scanner::report::{Generator, cyclonedx, json, sarif};
use slipway_scanner::scan::{DirCache, Filter, LayerState, ScanReport, Scanner, SeveritySelection};

use printable::printable;

pub use feed::AdvisorySource;
pub use registry::{ImageRef, RegistryImage, RegistryOptions};

/// The scan could not run: no report.
pub const EXIT_ERROR: i32 = 3;
/// A report was written, but some layers were not scanned.
pub const EXIT_INCOMPLETE: i32 = 4;

/// Arguments of `slipway scan`.
#[derive(clap::Args, Debug)]
#[command(after_help = "Exit status: 0 when nothing is reported (or --exit-code is 0), the --exit-code value \
when a vulnerability is reported, 2 for a usage error, 3 when the scan could not run, 4 when some layers \
could not be scanned (the report is incomplete).")]
pub struct ScanArgs {
    /// The image: [HOST[:PORT]/]REPOSITORY[:TAG][@DIGEST] (a registry; without a host,
    /// Docker Hub or --default-registry, as docker reads it), oci:DIR[:TAG] (an OCI image
    /// layout) or docker-archive:FILE[:REPO:TAG] (a `docker save` tarball).
    pub target: String,
    /// Report format.
    #[arg(long, short, value_enum, default_value_t = Format::Table)]
    pub format: Format,
    /// Write the report to this file instead of standard output.
    #[arg(long, short)]
    pub output: Option<PathBuf>,
    /// Report only these severities, as trivy's --severity means them: CVSS bands, in any
    /// case (UNKNOWN: no rating, or 0.0; LOW: 0.1-3.9; MEDIUM: 4.0-6.9; HIGH: 7.0-8.9;
    /// CRITICAL: 9.0-10.0). The store's classes major, minor and unrated are still taken
    /// here, deprecated: use --class.
    #[arg(long, value_delimiter = ',', value_parser = severity_arg, conflicts_with_all = ["class", "band"])]
    pub severity: Vec<SeverityArg>,
    /// Report only these store policy classes (critical: CVSS 7.0-10.0, major: 4.0-6.9,
    /// minor: below 4.0; unrated: no rating known).
    #[arg(long, value_enum, value_delimiter = ',', conflicts_with = "band")]
    pub class: Vec<ClassArg>,
    /// Report only these CVSS bands (critical here is 9.0-10.0; none is 0.0).
    #[arg(long, value_enum, value_delimiter = ',')]
    pub band: Vec<BandArg>,
    /// Leave out vulnerabilities that have no fixed version.
    #[arg(long)]
    pub ignore_unfixed: bool,
    /// Exit with this status when any vulnerability is reported (after --severity, --class,
    /// --band and --ignore-unfixed). Statuses 2-4 are reserved for errors.
    #[arg(long, default_value_t = 0, value_parser = exit_code)]
    pub exit_code: i32,
    /// OSV advisories to match against: a JSON file, a directory of them, or a zip
    /// archive (repeatable). Without it, the feed `slipway feed import` stored in the
    /// database is used.
    #[arg(long = "feed", value_name = "PATH")]
    pub feeds: Vec<PathBuf>,
    /// Where layer reports are cached (default: scan-cache in the data directory).
    #[arg(long)]
    pub cache_dir: Option<PathBuf>,
    /// Read every layer, neither using nor filling the cache.
    #[arg(long, conflicts_with = "cache_dir")]
    pub no_cache: bool,
    /// The platform to pick from a multi-platform image (default: this machine's, then
    /// linux/amd64), as OS/ARCH[/VARIANT].
    #[arg(long)]
    pub platform: Option<Platform>,
    /// Registry user name; the password is read from standard input (--password-stdin)
    /// or from SLIPWAY_SCAN_PASSWORD.
    #[arg(long, env = "SLIPWAY_SCAN_USERNAME")]
    pub username: Option<String>,
    /// Read the registry password from standard input.
    #[arg(long, requires = "username")]
    pub password_stdin: bool,
    /// Speak plain HTTP to a registry that is not on this machine (loopback registries
    /// always are spoken to over HTTP).
    #[arg(long)]
    pub insecure: bool,
    /// Where names without a registry host are looked up, in place of Docker Hub (a
    /// mirror: names keep Docker Hub's form, `library/` for official images).
    #[arg(long, env = "SLIPWAY_SCAN_DEFAULT_REGISTRY", default_value = registry::DOCKER_HUB, value_name = "HOST[:PORT]")]
    pub default_registry: String,
    /// Give up when the scan has not finished within this time (as trivy's: 5m, 90s,
    /// 1h30m; 0 for no limit).
    #[arg(long, default_value = "5m", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// No progress bars, warnings or notices on standard error: only the report (and
    /// errors that stop the scan). The exit status still tells an incomplete scan.
    #[arg(long, short)]
    pub quiet: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Sarif,
    Cyclonedx,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ClassArg {
    Critical,
    Major,
    Minor,
    Unrated,
}

/// A value of `--severity`: one of trivy's severities, or a store class in the deprecated
/// spelling.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SeverityArg {
    Unknown,
    Low,
    Medium,
    High,
    /// `lowercase` remembers the old spelling, which meant the store's class (CVSS 7.0 and
    /// above), to say that the meaning changed.
    Critical {
        lowercase: bool,
    },
    Class(ClassArg),
}

fn severity_arg(text: &str) -> Result<SeverityArg, String> {
    Ok(match text.to_ascii_lowercase().as_str() {
        "unknown" => SeverityArg::Unknown,
        "low" => SeverityArg::Low,
        "medium" => SeverityArg::Medium,
        "high" => SeverityArg::High,
        "critical" => SeverityArg::Critical { lowercase: text == "critical" },
        "major" => SeverityArg::Class(ClassArg::Major),
        "minor" => SeverityArg::Class(ClassArg::Minor),
        "unrated" => SeverityArg::Class(ClassArg::Unrated),
        _ => return Err(format!("{text:?} is not a severity: UNKNOWN, LOW, MEDIUM, HIGH or CRITICAL (store classes: --class)")),
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum BandArg {
    None,
    Low,
    Medium,
    High,
    Critical,
    Unrated,
}

fn exit_code(text: &str) -> Result<i32, String> {
    let code: u8 = text.parse().map_err(|_| format!("{text:?} is not a status from 0 to 255"))?;
    if (2..=EXIT_INCOMPLETE).contains(&i32::from(code)) {
        return Err(format!("{code} is reserved: 2 is a usage error, {EXIT_ERROR} a failed scan, {EXIT_INCOMPLETE} an incomplete one"));
    }
    Ok(i32::from(code))
}

/// What the command was asked to scan.
#[derive(Debug, PartialEq, Eq)]
enum Target {
    Registry(ImageRef),
    Oci { dir: PathBuf, tag: Option<String> },
    DockerArchive { file: PathBuf, reference: Option<String> },
}

impl Target {
    /// A path is taken whole when it exists; otherwise what follows its last `:` (a
    /// layout's tag) or first `:` (an archive's `REPO:TAG`) selects the image.
    fn parse(text: &str, default_registry: &str) -> anyhow::Result<Target> {
        if let Some(rest) = text.strip_prefix("oci:") {
            let (dir, tag) = match rest.rsplit_once(':') {
                Some((dir, tag)) if !Path::new(rest).exists() => (dir, Some(tag.to_owned())),
                _ => (rest, None),
            };
            return Ok(Target::Oci { dir: dir.into(), tag });
        }
        if let Some(rest) = text.strip_prefix("docker-archive:") {
            let (file, reference) = match rest.split_once(':') {
                Some((file, reference)) if !Path::new(rest).exists() => (file, Some(reference.to_owned())),
                _ => (rest, None),
            };
            return Ok(Target::DockerArchive { file: file.into(), reference });
        }
        Ok(Target::Registry(ImageRef::parse_with_default(text, default_registry)?))
    }
}

/// Runs `slipway scan`; returns the exit status. `data_dir` holds the default cache;
/// `database_url` names the database whose stored feed is used without `--feed`.
pub async fn run(args: ScanArgs, data_dir: &Path, database_url: String) -> i32 {
    let work = scan(&args, data_dir, database_url);
    let outcome = if args.timeout.is_zero() {
        work.await
    } else {
        tokio::time::timeout(args.timeout, work).await.unwrap_or_else(|_| {
            Err(anyhow::anyhow!("the scan did not finish within --timeout {}", humantime::format_duration(args.timeout)))
        })
    };
    match outcome {
        Ok(status) => status,
        Err(error) => {
            // Registries and images name things in errors too.
            eprintln!("slipway scan: {}", printable(&format!("{error:#}")));
            if error.is::<UsageError>() { 2 } else { EXIT_ERROR }
        }
    }
}

async fn scan(args: &ScanArgs, data_dir: &Path, database_url: String) -> anyhow::Result<i32> {
    let (filter, notices) = filter(args)?;
    if !args.quiet {
        notices.iter().for_each(|notice| eprintln!("{notice}"));
    }
    let target = Target::parse(&args.target, &args.default_registry)?;
    let source: Box<dyn ImageSource + Send> = match &target {
        Target::Oci { dir, tag } => Box::new(OciLayout::open(dir, tag.as_deref(), args.platform.as_ref(), &args.target)?),
        Target::DockerArchive { file, reference } => Box::new(DockerArchive::open(file, reference.as_deref(), &args.target)?),
        Target::Registry(reference) => {
            let options = RegistryOptions { insecure: args.insecure, credentials: credentials(args)? };
            Box::new(RegistryImage::open(reference, &options, args.platform.as_ref(), &args.target).await?)
        }
    };

    let mut scanner = Scanner::default();
    if !args.no_cache {
        scanner = scanner.cache(DirCache::new(args.cache_dir.clone().unwrap_or_else(|| data_dir.join("scan-cache"))));
    }
    let quiet = args.quiet;
    let analysis = tokio::task::spawn_blocking(move || {
        let bars = (!quiet && std::io::stderr().is_terminal()).then(|| progress::Bars::new(source.image()));
        scanner.analyze(source.as_ref(), &|layer, event| {
            if let Some(bars) = &bars {
                bars.event(layer, event);
            }
        })
    })
    .await
    .context("the scan stopped")?;

    let advisories =
        if args.feeds.is_empty() { AdvisorySource::Stored { database_url } } else { AdvisorySource::Files(args.feeds.clone()) };
    let loaded = advisories.load(&analysis.wanted()).await?;
    if !loaded.rejected.is_empty() && !args.quiet {
        eprintln!(
            "warning: {} feed records could not be read and were skipped (the first: {}: {})",
            loaded.rejected.len(),
            printable(&loaded.rejected[0].file),
            printable(&loaded.rejected[0].reason)
        );
    }
    let mut report = analysis.match_advisories(&loaded.index);
    report.retain(&filter);
    if !args.quiet {
        warn_about(&report);
    }

    let document = render(&report, args.format, args.output.is_none())?;
    match &args.output {
        Some(path) => std::fs::write(path, document).with_context(|| format!("writing {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            stdout.write_all(document.as_bytes()).and_then(|()| stdout.flush()).context("writing the report")?;
        }
    }
    Ok(if args.exit_code != 0 && !report.vulnerabilities.is_empty() {
        args.exit_code
    } else if !report.is_complete() {
        EXIT_INCOMPLETE
    } else {
        0
    })
}

fn credentials(args: &ScanArgs) -> anyhow::Result<Option<(String, String)>> {
    let Some(user) = &args.username else {
        return Ok(None);
    };
    let password = if args.password_stdin {
        let mut password = String::new();
        std::io::stdin().read_to_string(&mut password).context("reading the password from standard input")?;
        password.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        std::env::var("SLIPWAY_SCAN_PASSWORD").context("--username needs a password: pass --password-stdin or set SLIPWAY_SCAN_PASSWORD")?
    };
    Ok(Some((user.clone(), password)))
}

/// A command line that clap accepts but that asks for something impossible: exit status 2.
#[derive(Debug)]
struct UsageError(String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

/// The report's filter, and notices about deprecated spellings.
fn filter(args: &ScanArgs) -> anyhow::Result<(Filter, Vec<String>)> {
    let mut notices = Vec::new();
    let classes = |classes: &[ClassArg]| {
        SeveritySelection::Classes(
            classes
                .iter()
                .map(|class| match class {
                    ClassArg::Critical => Some(PolicyClass::Critical),
                    ClassArg::Major => Some(PolicyClass::Major),
                    ClassArg::Minor => Some(PolicyClass::Minor),
                    ClassArg::Unrated => None,
                })
                .collect(),
        )
    };
    let old_classes: Vec<ClassArg> = args
        .severity
        .iter()
        .filter_map(|s| match s {
            SeverityArg::Class(class) => Some(*class),
            _ => None,
        })
        .collect();
    let severity = if !old_classes.is_empty() {
        // major, minor and unrated are the store's classes: the whole list is read as the
        // old flag read it, critical included (CVSS 7.0 and above).
        let mut listed = Vec::new();
        for value in &args.severity {
            listed.push(match value {
                SeverityArg::Class(class) => *class,
                SeverityArg::Critical { .. } => ClassArg::Critical,
                other => {
                    return Err(UsageError(format!(
                        "--severity mixes store classes (major, minor, unrated) with trivy's severities ({other:?}): \
                         use --class for the classes"
                    ))
                    .into());
                }
            });
        }
        let spelled: Vec<String> = listed.iter().filter_map(|c| c.to_possible_value()).map(|v| v.get_name().to_owned()).collect();
        notices.push(format!(
            "notice: --severity {} names the store's classes, a deprecated spelling: use --class {} (--severity takes trivy's CVSS severities)",
            spelled.join(","),
            spelled.join(",")
        ));
        classes(&listed)
    } else if !args.severity.is_empty() {
        let mut bands = Vec::new();
        for value in &args.severity {
            match value {
                SeverityArg::Unknown => bands.extend([None, Some(Band::None)]),
                SeverityArg::Low => bands.push(Some(Band::Low)),
                SeverityArg::Medium => bands.push(Some(Band::Medium)),
                SeverityArg::High => bands.push(Some(Band::High)),
                SeverityArg::Critical { lowercase } => {
                    if *lowercase {
                        notices.push(
                            "notice: --severity critical now means CVSS 9.0-10.0, as in trivy; the store's class \
                             (7.0-10.0) is --class critical"
                                .to_owned(),
                        );
                    }
                    bands.push(Some(Band::Critical));
                }
                // Lists with a class took the branch above.
                SeverityArg::Class(_) => {}
            }
        }
        SeveritySelection::Bands(bands)
    } else if !args.class.is_empty() {
        classes(&args.class)
    } else if !args.band.is_empty() {
        SeveritySelection::Bands(
            args.band
                .iter()
                .map(|band| match band {
                    BandArg::None => Some(Band::None),
                    BandArg::Low => Some(Band::Low),
                    BandArg::Medium => Some(Band::Medium),
                    BandArg::High => Some(Band::High),
                    BandArg::Critical => Some(Band::Critical),
                    BandArg::Unrated => None,
                })
                .collect(),
        )
    } else {
        SeveritySelection::All
    };
    Ok((Filter { severity, ignore_unfixed: args.ignore_unfixed }, notices))
}

/// Layers that were not scanned and files that were not read go to stderr whatever
/// the format, so that they are seen even when the report goes to a file.
fn warn_about(report: &ScanReport) {
    for layer in &report.layers {
        if let LayerState::Failed { error } = &layer.state {
            eprintln!("warning: layer {} was not scanned: {}", layer.digest, printable(error));
        }
        if let Some(reason) = &layer.incomplete {
            eprintln!("warning: layer {} was scanned in part: {}", layer.digest, printable(reason));
        }
    }
    if !report.issues.is_empty() {
        eprintln!("warning: {} files inside layers could not be read (listed in --format json)", report.issues.len());
    }
    let unchecked: Vec<String> = report
        .packages
        .iter()
        .filter_map(|p| p.error.as_ref().map(|e| format!("{} {}: {e}", p.package.name, p.package.version)))
        .map(|line| printable(&line).into_owned())
        .collect();
    if let Some(first) = unchecked.first() {
        eprintln!("warning: {} packages could not be checked (the first: {first})", unchecked.len());
    }
}

/// The report in `format`; the table is colored when it goes to a terminal and
/// NO_COLOR is unset.
fn render(report: &ScanReport, format: Format, to_stdout: bool) -> anyhow::Result<String> {
    let timestamp = humantime::format_rfc3339_seconds(slipway_types::Clock::system().now()).to_string();
    let generator = Generator { name: "slipway", version: env!("CARGO_PKG_VERSION"), timestamp: &timestamp };
    let document = match format {
        Format::Table => {
            let color = to_stdout && std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty());
            return Ok(table::render(report, color));
        }
        Format::Json => json::document(report, &generator),
        Format::Sarif => sarif::document(report, &generator),
        Format::Cyclonedx => cyclonedx::document(report, &generator, &format!("urn:uuid:{}", uuid::Uuid::new_v4())),
    };
    let mut text = serde_json::to_string_pretty(&document)?;
    text.push('\n');
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_parse() {
        let dir = tempfile::tempdir().unwrap();
        let layout = dir.path().join("layout");
        std::fs::create_dir(&layout).unwrap();
        let path = layout.display();
        assert_eq!(Target::parse(&format!("oci:{path}"), registry::DOCKER_HUB).unwrap(), Target::Oci { dir: layout.clone(), tag: None });
        assert_eq!(
            Target::parse(&format!("oci:{path}:1.0"), registry::DOCKER_HUB).unwrap(),
            Target::Oci { dir: layout.clone(), tag: Some("1.0".into()) }
        );
        let archive = dir.path().join("image.tar");
        assert_eq!(
            Target::parse(&format!("docker-archive:{}:acme/app:1.0", archive.display()), registry::DOCKER_HUB).unwrap(),
            Target::DockerArchive { file: archive.clone(), reference: Some("acme/app:1.0".into()) }
        );
        std::fs::write(&archive, b"").unwrap();
        assert_eq!(
            Target::parse(&format!("docker-archive:{}", archive.display()), registry::DOCKER_HUB).unwrap(),
            Target::DockerArchive { file: archive, reference: None }
        );
        assert!(matches!(Target::parse("127.0.0.1:5000/app:1", registry::DOCKER_HUB).unwrap(), Target::Registry(_)));
        let Target::Registry(short) = Target::parse("app:1", "mirror.example").unwrap() else { panic!("a registry image") };
        assert_eq!(short.to_string(), "mirror.example/library/app:1");
        assert!(Target::parse("App:1", registry::DOCKER_HUB).is_err());
    }

    #[test]
    fn error_statuses_are_reserved() {
        assert_eq!(exit_code("1"), Ok(1));
        assert_eq!(exit_code("0"), Ok(0));
        assert_eq!(exit_code("5"), Ok(5));
        for reserved in ["2", "3", "4"] {
            assert!(exit_code(reserved).unwrap_err().contains("reserved"));
        }
        assert!(exit_code("256").is_err());
    }
}

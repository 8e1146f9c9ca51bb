//! Continuous re-assessment: after a feed change only the packages whose advisories
//! changed are re-matched, in the images the re-assessment index says hold them, and
//! each vulnerability new to a package of an image becomes an event.

use std::collections::{BTreeSet, HashMap};

use slipway_db::{FeedChange, FindingRecord, NewVulnerabilityEvent, Rematch, vulnerability_ids};

use crate::matching::{advisories_for, match_rows};
use crate::{Scanning, ScanningError};

/// Changed packages read at a time.
const BATCH: i64 = 500;

/// Findings and events held before they are written in one transaction: enough to write a
/// batch of small changes together, few enough to bound memory and the time a SQLite
/// write lock is held (a core Debian package alone touches most images).
const PENDING_ROWS: usize = 20_000;

/// What a re-assessment did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Reassessment {
    /// Changed packages that some image holds, re-matched.
    pub packages: usize,
    /// Images whose findings changed.
    pub images: usize,
    pub added: usize,
    pub updated: usize,
    pub removed: usize,
    pub events: usize,
}

impl Scanning {
    /// Re-matches every package noted as changed (the `FeedChanged` job's work).
    pub async fn reassess(&self) -> Result<Reassessment, ScanningError> {
        // A full feed import notes hundreds of thousands of packages; one statement
        // drops those no image holds.
        self.db.prune_feed_changes().await?;
        let mut done = Reassessment::default();
        let mut images: BTreeSet<String> = BTreeSet::new();
        loop {
            let changes = self.db.feed_changes(BATCH).await?;
            if changes.is_empty() {
                break;
            }
            let mut pending: Vec<(FeedChange, Rematch)> = Vec::new();
            let mut pending_rows = 0;
            for change in changes {
                let rows = self.db.packages_named(&change.ecosystem, &change.name).await?;
                let index = advisories_for(&self.db, [(change.ecosystem.as_str(), change.name.as_str())]).await?;
                let current = match_rows(&index, &rows, self.db.clock().now_ms());
                let stored = self.db.findings_named(&change.ecosystem, &change.name).await?;
                let rematch = difference(stored, current);
                if !rows.is_empty() {
                    done.packages += 1;
                }
                done.added += rematch.added.len();
                done.updated += rematch.updated.len();
                done.removed += rematch.removed.len();
                done.events += rematch.events.len();
                images.extend(rematch.added.iter().chain(&rematch.updated).map(|f| f.digest.clone()));
                images.extend(rematch.removed.iter().map(|(digest, _, _)| digest.clone()));
                pending_rows += rematch.added.len() + rematch.updated.len() + rematch.removed.len() + rematch.events.len();
                pending.push((change, rematch));
                if pending_rows >= PENDING_ROWS {
                    self.db.apply_rematches(&pending).await?;
                    pending.clear();
                    pending_rows = 0;
                }
            }
            if !pending.is_empty() {
                self.db.apply_rematches(&pending).await?;
            }
        }
        done.images = images.len();
        Ok(done)
    }
}

/// The difference between stored findings and a re-match's, with an event for each
/// vulnerability of a finding new to its package of an image.
fn difference(stored: Vec<FindingRecord>, current: Vec<FindingRecord>) -> Rematch {
    let key = |f: &FindingRecord| (f.digest.clone(), f.package.clone(), f.advisory_id.clone());
    let mut stored: HashMap<_, FindingRecord> = stored.into_iter().map(|f| (key(&f), f)).collect();
    let mut rematch = Rematch::default();
    for finding in current {
        match stored.remove(&key(&finding)) {
            Some(old) => {
                let same = (&old.aliases, &old.installed_version, &old.fixed_version, &old.status, &old.severity, &old.class)
                    == (
                        &finding.aliases,
                        &finding.installed_version,
                        &finding.fixed_version,
                        &finding.status,
                        &finding.severity,
                        &finding.class,
                    );
                if !same {
                    rematch.updated.push(FindingRecord { first_seen: old.first_seen, ..finding });
                }
            }
            None => {
                for vulnerability in vulnerability_ids(&finding.advisory_id, &finding.aliases) {
                    rematch.events.push(NewVulnerabilityEvent {
                        digest: finding.digest.clone(),
                        package: finding.package.clone(),
                        advisory_id: finding.advisory_id.clone(),
                        vulnerability,
                        class: finding.class.clone(),
                    });
                }
                rematch.added.push(finding);
            }
        }
    }
    let mut removed: Vec<_> = stored.into_keys().collect();
    removed.sort();
    rematch.removed = removed;
    rematch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(digest: &str, advisory: &str, aliases: &str, fixed: Option<&str>) -> FindingRecord {
        FindingRecord {
            digest: digest.into(),
            package: "pkg:pypi/jinja2@3.1.2".into(),
            advisory_id: advisory.into(),
            ecosystem: "PyPI".into(),
            match_name: "jinja2".into(),
            package_name: "Jinja2".into(),
            aliases: aliases.into(),
            installed_version: "3.1.2".into(),
            fixed_version: fixed.map(str::to_owned),
            status: "fix_available".into(),
            severity: None,
            class: "major".into(),
            first_seen: 5,
        }
    }

    #[test]
    fn the_difference_adds_updates_removes_and_names_each_cve_once() {
        let stored = vec![finding("i1", "GHSA-a", "[]", Some("3.1.3")), finding("i1", "GHSA-gone", "[]", None)];
        let current = vec![
            FindingRecord { first_seen: 99, ..finding("i1", "GHSA-a", "[]", Some("3.1.4")) },
            finding("i1", "GHSA-new", r#"["CVE-2024-1","CVE-2024-2","PYSEC-1","CVE-2024-1"]"#, None),
            finding("i2", "PYSEC-9", r#"["PYSEC-10"]"#, None),
        ];
        let rematch = difference(stored, current);
        assert_eq!(rematch.updated.len(), 1);
        assert_eq!((rematch.updated[0].fixed_version.as_deref(), rematch.updated[0].first_seen), (Some("3.1.4"), 5));
        assert_eq!(rematch.removed, [("i1".to_owned(), "pkg:pypi/jinja2@3.1.2".to_owned(), "GHSA-gone".to_owned())]);
        assert_eq!(rematch.added.len(), 2);
        let events: Vec<(&str, &str)> = rematch.events.iter().map(|e| (e.digest.as_str(), e.vulnerability.as_str())).collect();
        assert_eq!(events, [("i1", "CVE-2024-1"), ("i1", "CVE-2024-2"), ("i2", "PYSEC-9")]);
        // Nothing changed: nothing to do.
        let same = difference(vec![finding("i1", "GHSA-a", "[]", None)], vec![finding("i1", "GHSA-a", "[]", None)]);
        assert!(same.added.is_empty() && same.updated.is_empty() && same.removed.is_empty() && same.events.is_empty());
    }
}

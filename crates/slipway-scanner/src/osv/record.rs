//! The OSV record as the feeds serve it (schema 1.x), read with serde.
//!
//! Unknown fields are ignored, as the schema asks of clients ("new minor versions only
//! add fields"); fields the matcher does not use (references, credits) are not modelled.
//! Arrays the schema allows to be `null` read as empty.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// One OSV record.
#[derive(Clone, Debug, Deserialize)]
pub struct Record {
    pub schema_version: Option<String>,
    pub id: String,
    pub modified: String,
    pub published: Option<String>,
    pub withdrawn: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub aliases: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub upstream: Vec<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub related: Vec<String>,
    pub summary: Option<String>,
    pub details: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub severity: Vec<RecordSeverity>,
    #[serde(default, deserialize_with = "nullable")]
    pub affected: Vec<RecordAffected>,
    pub database_specific: Option<Value>,
}

/// A `severity[]` entry: a CVSS vector, or a vendor's word for `Ubuntu`.
#[derive(Clone, Debug, Deserialize)]
pub struct RecordSeverity {
    #[serde(rename = "type")]
    pub kind: String,
    pub score: String,
}

/// An `affected[]` entry.
#[derive(Clone, Debug, Deserialize)]
pub struct RecordAffected {
    /// Absent in entries that only describe GIT ranges of a repository.
    pub package: Option<RecordPackage>,
    #[serde(default, deserialize_with = "nullable")]
    pub severity: Vec<RecordSeverity>,
    #[serde(default, deserialize_with = "nullable")]
    pub ranges: Vec<RecordRange>,
    #[serde(default, deserialize_with = "nullable")]
    pub versions: Vec<String>,
    pub ecosystem_specific: Option<Value>,
    pub database_specific: Option<Value>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RecordPackage {
    pub ecosystem: String,
    pub name: String,
    pub purl: Option<String>,
}

#[derive(Clone, Debug, Deserialize)]
pub struct RecordRange {
    #[serde(rename = "type")]
    pub kind: RangeKind,
    pub repo: Option<String>,
    pub events: Vec<RecordEvent>,
    pub database_specific: Option<Value>,
}

/// An event object; the schema allows exactly one of the four fields.
#[derive(Clone, Debug, Deserialize)]
pub struct RecordEvent {
    pub introduced: Option<String>,
    pub fixed: Option<String>,
    pub last_affected: Option<String>,
    pub limit: Option<String>,
}

/// How a range's versions are ordered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RangeKind {
    /// The ecosystem's own version ordering.
    #[serde(rename = "ECOSYSTEM")]
    Ecosystem,
    /// SemVer 2.0 precedence.
    #[serde(rename = "SEMVER")]
    Semver,
    /// Commits of a Git repository: needs the commit graph, so never evaluated here.
    #[serde(rename = "GIT")]
    Git,
}

fn nullable<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Option::<T>::deserialize(deserializer).map(Option::unwrap_or_default)
}

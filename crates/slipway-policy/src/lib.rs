#![doc = include_str!("../README.md")]

mod actor;
mod decide;
mod scopes;

pub use actor::{Actor, Credential, OrgRole, SiteRole, Subject};
pub use decide::{Action, Decision, Refusal, RepoAccess, Resource, decide};
pub use scopes::{ApiScope, RepoAction, RepositoryRule, glob_match};

//! Only slipway-policy decides access: no other crate compares roles, matches on them,
//! or looks up memberships and entitlements to allow or deny. The one place that reads
//! roles to build the policy's actor, slipway-auth's `access.rs`, is named below.
//!
//! A lexical check, line by line, on every crate's `src` (test modules excluded): it
//! flags the forms such checks take (`role >= OrgRole::Maintainer`,
//! `site_role == Some(SiteRole::Admin)`, `matches!(…, SiteRole::…)`, a match arm on a role,
//! `site_role != "user"`, `namespaces.get(…)`, `tiers.contains(…)`), and its own test
//! shows that each form is caught.

use std::path::{Path, PathBuf};

/// Files outside the policy allowed to read roles: they build actors, they do not decide.
const ACTOR_BUILDERS: &[&str] = &["slipway-auth/src/access.rs"];

const ROLE_TYPES: [&str; 2] = ["SiteRole::", "OrgRole::"];
const ROLE_NAMES: [&str; 5] = ["\"admin\"", "\"moderator\"", "\"user\"", "\"owner\"", "\"maintainer\""];
const COMPARISONS: [&str; 6] = ["==", "!=", ">=", "<=", ">", "<"];
const MEMBERSHIP_LOOKUPS: [&str; 4] = ["namespaces.get(", "namespaces.contains_key(", "tiers.contains(", "tiers.get("];

/// Why `line` decides access, if it looks like it does.
fn decision_in(line: &str) -> Option<&'static str> {
    let code = line.split("//").next().unwrap_or_default();
    let compared = |before: &str, after: &str| {
        // A path before the type (`slipway_auth::access::`) and `Some(` do not hide the operator.
        let before = before.trim_end_matches(|c: char| c.is_alphanumeric() || c == '_' || c == ':').trim_end();
        let before = before.strip_suffix("Some(").unwrap_or(before).trim_end();
        let after = after.trim_start().trim_start_matches(')').trim_start();
        (COMPARISONS.iter().any(|op| before.ends_with(op)) && !before.ends_with("=>") && !before.ends_with("->"))
            || ["==", "!=", ">=", "<="].iter().any(|op| after.starts_with(op))
    };
    for role in ROLE_TYPES {
        for (at, _) in code.match_indices(role) {
            let rest = &code[at + role.len()..];
            let after = rest.trim_start_matches(|c: char| c.is_alphanumeric() || c == '_');
            if compared(&code[..at], after) {
                return Some("compares a role");
            }
            // `Some(SiteRole::Admin) =>` is an arm too.
            let after = after.trim_start().trim_start_matches(')').trim_start();
            if after.starts_with("=>") || (after.starts_with('|') && !after.starts_with("||")) {
                return Some("matches on a role");
            }
        }
    }
    if code.contains("matches!(") && ROLE_TYPES.iter().any(|r| code.contains(r)) {
        return Some("matches on a role");
    }
    for name in ROLE_NAMES {
        for (at, _) in code.match_indices(name) {
            if compared(&code[..at], &code[at + name.len()..]) {
                return Some("compares a stored role");
            }
        }
    }
    for (at, _) in code.match_indices("site_role") {
        let after = code[at + "site_role".len()..].trim_start();
        if ["==", "!=", ">=", "<=", ".is_some_and(", ".map_or("].iter().any(|op| after.starts_with(op)) {
            return Some("tests a site role");
        }
    }
    MEMBERSHIP_LOOKUPS.iter().any(|lookup| code.contains(lookup)).then_some("looks up a membership or an entitlement")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Every flagged line of `source`, up to its test module.
fn decisions(source: &str) -> Vec<(usize, &'static str)> {
    source
        .lines()
        .take_while(|line| line.trim() != "#[cfg(test)]")
        .enumerate()
        .filter_map(|(number, line)| decision_in(line).map(|why| (number + 1, why)))
        .collect()
}

#[test]
fn only_the_policy_decides_access() {
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("crates/");
    let mut files = Vec::new();
    for entry in std::fs::read_dir(crates).unwrap() {
        let dir = entry.unwrap().path();
        if dir.file_name().is_some_and(|n| n != "slipway-policy") && dir.join("src").is_dir() {
            rust_files(&dir.join("src"), &mut files);
        }
    }
    assert!(files.len() > 50, "found only {} source files under {}", files.len(), crates.display());
    let mut found = Vec::new();
    for file in &files {
        let relative = file.strip_prefix(crates).unwrap().to_string_lossy().replace('\\', "/");
        if ACTOR_BUILDERS.contains(&relative.as_str()) {
            continue;
        }
        let source = std::fs::read_to_string(file).unwrap();
        for (line, why) in decisions(&source) {
            found.push(format!("crates/{relative}:{line}: {why}"));
        }
    }
    assert!(found.is_empty(), "access is decided outside slipway-policy; ask slipway_policy::decide instead:\n{}", found.join("\n"));
}

/// Each form of check is caught, and what merely names or assigns roles is not.
#[test]
fn the_lint_tells_checks_from_assignments() {
    for check in [
        "if role >= OrgRole::Maintainer {",
        "self.role_in(org).is_some_and(|r| r >= OrgRole::Maintainer)",
        "subject.site_role == Some(SiteRole::Admin)",
        "let admin = account.site_role == SiteRole::Admin.as_str();",
        "matches!(subject.site_role, Some(SiteRole::Moderator | SiteRole::Admin))",
        "Some(SiteRole::Admin) => allowed.extend(Action::ALL),",
        "OrgRole::Owner | OrgRole::Maintainer => true,",
        "*role >= slipway_auth::access::OrgRole::Maintainer",
        "Some(slipway_policy::SiteRole::Admin) == subject.site_role",
        "let staff = v.account.site_role != \"user\";",
        "if membership.role == \"owner\" {",
        "subject.namespaces.get(namespace(repository)).is_some()",
        "s.tiers.contains(tier)",
    ] {
        assert!(decision_in(check).is_some(), "not caught: {check}");
    }
    for fine in [
        "Role::Owner => OrgRole::Owner,",
        "self.create_person(name, email, password, SiteRole::User, false).await",
        "site_role: SiteRole::User.as_str(),",
        "self.db().set_membership(name, &owner.id, OrgRole::Owner.as_str()).await?;",
        "let role = OrgRole::parse(&invitation.role).unwrap_or(OrgRole::Viewer);",
        "namespaces: BTreeMap<String, OrgRole>,",
        "// only owners (role == \"owner\") invite",
        "if a || b { return; }",
    ] {
        assert_eq!(decision_in(fine), None, "flagged: {fine}");
    }
    assert_eq!(decisions("fn f() {}\n#[cfg(test)]\nmod tests { fn g() { let _ = r >= OrgRole::Owner; } }"), vec![]);
}

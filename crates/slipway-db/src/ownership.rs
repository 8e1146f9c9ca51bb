//! Which domain owns which table, checked against the SQL each domain's module holds: a
//! handle's queries touch only its own domain's tables, apart from the few cross-domain
//! steps listed in `ALLOWED` with their reasons. A new table must be given an owner here,
//! and a query that reaches into another domain's table fails the test until it moves
//! behind that domain's handle or is listed with a reason.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Every table of the schema and the domain that owns it.
const OWNERS: &[(&str, &[&str])] = &[
    (
        "registry",
        &[
            "repositories",
            "blobs",
            "repository_blobs",
            "uploads",
            "manifests",
            "manifest_references",
            "tags",
            "blob_tombstones",
            "repository_pulls",
            "pull_windows",
        ],
    ),
    (
        "identity",
        &[
            "accounts",
            "organizations",
            "memberships",
            "access_tokens",
            "refresh_tokens",
            "repository_policies",
            "released_tags",
            "released_manifests",
            "entitlements",
            "invitations",
            "web_sessions",
            "email_tokens",
            "outbox",
            "request_windows",
            "sign_in_attempts",
            "two_factor",
            "recovery_codes",
            "sign_in_challenges",
            "sso_logins",
            "sso_links",
        ],
    ),
    (
        "catalog",
        &[
            "publishers",
            "media",
            "listings",
            "tiers",
            "license_agreements",
            "folded_pulls",
            "listing_events",
            "publisher_agreements",
            "listing_revisions",
            "security_notices",
            "vulnerability_classes",
            "security_exceptions",
            "vulnerability_policy_state",
        ],
    ),
    (
        "commerce",
        &[
            "billing_profiles",
            "payment_methods",
            "subscriptions",
            "subscription_periods",
            "payments",
            "invoice_counters",
            "invoices",
            "invoice_lines",
            "refunds",
            "idempotency_keys",
            "payout_statements",
            "fulfillment_orders",
            "fulfillment_webhooks",
            "webhook_deliveries",
            "payment_customers",
            "webhook_events",
        ],
    ),
    (
        "scanning",
        &[
            "advisories",
            "advisory_packages",
            "feed_revisions",
            "feed_sources",
            "feed_changes",
            "layer_reports",
            "image_scans",
            "image_parts",
            "inventory_parts",
            "part_packages",
            "findings",
            "staged_findings",
            "finding_batches",
            "vulnerability_events",
        ],
    ),
    ("jobs", &["jobs", "schedules"]),
    ("ledger", &["ledger_transactions", "ledger_entries"]),
    // Not a domain: the database's own clock, which every replica reads.
    ("core", &["test_clock"]),
];

/// The domain each module of this crate serves.
const MODULES: &[(&str, &str)] = &[
    ("lib.rs", "core"),
    ("clock.rs", "core"),
    ("registry.rs", "registry"),
    // The registry's read-only view for the catalog and security (`ImagesDb`).
    ("images.rs", "registry"),
    ("identity.rs", "identity"),
    ("sign_in.rs", "identity"),
    ("throttle.rs", "identity"),
    ("two_factor.rs", "identity"),
    ("sso.rs", "identity"),
    ("catalog.rs", "catalog"),
    ("vulnerability_policy.rs", "catalog"),
    ("scanning.rs", "scanning"),
    ("jobs.rs", "jobs"),
    ("ledger.rs", "ledger"),
    ("commerce.rs", "commerce"),
    ("payouts.rs", "commerce"),
    ("fulfillment.rs", "commerce"),
    ("payment_customers.rs", "commerce"),
];

/// Cross-domain uses that stay, each for a reason: (module, table, why).
const ALLOWED: &[(&str, &str, &str)] = &[
    (
        "two_factor.rs",
        "publishers",
        "two-factor sign-in may be required of the owners of organizations with a publisher profile: one query decides it where the roles are",
    ),
    (
        "fulfillment.rs",
        "entitlements",
        "a fulfillment order's change and the entitlement it grants or ends are recorded in one transaction (the entitlement has the order's id)",
    ),
    (
        "fulfillment.rs",
        "tiers",
        "an order names a tier of the publisher's, checked to exist and be licensed (read only; the catalog writes tiers)",
    ),
    (
        "fulfillment.rs",
        "listings",
        "an order's tier must belong to one of the ordering publisher's listings (read only; the catalog writes listings)",
    ),
    (
        "fulfillment.rs",
        "accounts",
        "an order's customer is found by account name or verified address, and pending orders attach to the account that verified it (read only)",
    ),
    (
        "catalog.rs",
        "repository_policies",
        "publishing, withdrawing or changing a listing sets its tier repositories' access in the same transaction \
         (derive_repository_policies), so no pull is ever allowed by a listing that is gone",
    ),
    (
        "identity.rs",
        "tiers",
        "a token's pulls of a tier repository of a live listing get its released versions only (read only; the catalog writes tiers)",
    ),
    (
        "identity.rs",
        "listings",
        "whether a repository's listing is in the store decides whether releases govern its pulls (read only; the catalog writes listings)",
    ),
    (
        "catalog.rs",
        "released_tags",
        "the catalog releases a live listing's versions to customers as moderators approve them; the registry enforces the releases",
    ),
    ("catalog.rs", "released_manifests", "releasing a version records every manifest it references, in the transaction that releases it"),
    (
        "commerce.rs",
        "entitlements",
        "a subscription's change and the entitlement it grants or ends are recorded in one transaction: neither exists without the other",
    ),
    ("commerce.rs", "tiers", "a subscription is listed with its tier's name, repository and tags (read only; the catalog writes tiers)"),
    (
        "commerce.rs",
        "ledger_transactions",
        "verify cross-checks invoices, payments and refunds against the ledger (read only; the ledger is written by post_in)",
    ),
    (
        "commerce.rs",
        "ledger_entries",
        "verify cross-checks invoices, payments and refunds against the ledger (read only; the ledger is written by post_in)",
    ),
    (
        "commerce.rs",
        "accounts",
        "a subscription is listed with its customer's account name, for invoices (read only; identity writes accounts)",
    ),
    ("commerce.rs", "listings", "a subscription is listed with its product's name and path (read only; the catalog writes listings)"),
    (
        "payouts.rs",
        "ledger_transactions",
        "verify cross-checks paid statements against the ledger's payouts (read only; the ledger is written by post_in)",
    ),
    (
        "payouts.rs",
        "ledger_entries",
        "verify cross-checks paid statements against the ledger's payouts (read only; the ledger is written by post_in)",
    ),
    (
        "vulnerability_policy.rs",
        "subscriptions",
        "a product on hold or revoked is told to its customers: the accounts of its live subscriptions (read only)",
    ),
    (
        "vulnerability_policy.rs",
        "entitlements",
        "a product on hold or revoked is told to the customers entitled to it otherwise, by a grant or an order (read only)",
    ),
    ("vulnerability_policy.rs", "accounts", "a product's customers are mailed at their verified addresses (read only)"),
    (
        "vulnerability_policy.rs",
        "findings",
        "the vulnerability policy reports the findings of released versions to their publishers (read only; scanning writes them)",
    ),
    (
        "vulnerability_policy.rs",
        "image_scans",
        "the deadline sweep reports the listings whose released images were scanned or re-assessed since its last run (read only)",
    ),
    (
        "vulnerability_policy.rs",
        "manifest_references",
        "a released index's platform images are what the scanner scans: the policy follows the index to them (read only)",
    ),
    (
        "vulnerability_policy.rs",
        "released_tags",
        "the policy holds a listing to what its customers may pull: the versions released to them (read only)",
    ),
    (
        "catalog.rs",
        "repository_pulls",
        "the catalog reads the registry's pull totals to fold them into its listings (fold_pulls); it never writes them",
    ),
];

/// Words and punctuation of SQL: `FROM (s.a, s.b)` is not a table named `s`.
fn tokens(sql: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in sql.char_indices() {
        let word = c.is_ascii_alphanumeric() || c == '_';
        match (word, start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                out.push(&sql[s..i]);
                start = None;
            }
            _ => {}
        }
        if !word && !c.is_whitespace() {
            out.push(&sql[i..i + c.len_utf8()]);
        }
    }
    out.extend(start.map(|s| &sql[s..]));
    out
}

/// The tables a piece of SQL names after FROM, JOIN, INTO, UPDATE or TABLE. Only lower-case
/// identifiers are table names: SQL keywords (`DO UPDATE SET`, `FROM (SELECT`) are
/// upper-case here, and so are the names of constants spliced in with `format!`.
fn tables_named(sql: &str) -> Vec<String> {
    tokens(sql)
        .windows(2)
        .filter(|w| matches!(w[0], "FROM" | "JOIN" | "INTO" | "UPDATE" | "TABLE"))
        .map(|w| w[1])
        .filter(|name| name.starts_with(|c: char| c.is_ascii_lowercase()))
        .filter(|name| name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
        .map(str::to_owned)
        .collect()
}

/// The string literals of Rust source, outside comments and before its tests (which may
/// set up other domains' rows to test against).
fn string_literals(source: &str) -> Vec<String> {
    let code = source.split("#[cfg(test)]\nmod tests").next().unwrap_or(source);
    let chars: Vec<char> = code.chars().collect();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < chars.len() {
        match chars[i] {
            '/' if chars.get(i + 1) == Some(&'/') => {
                while i < chars.len() && chars[i] != '\n' {
                    i += 1;
                }
            }
            // A character literal ('"', '\''); a lifetime ('a) has no closing quote.
            '\'' if chars.get(i + 2) == Some(&'\'') => i += 3,
            '\'' if chars.get(i + 1) == Some(&'\\') && chars.get(i + 3) == Some(&'\'') => i += 4,
            '"' => {
                let mut literal = String::new();
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    if chars[i] == '\\' {
                        i += 1;
                    }
                    literal.push(chars[i]);
                    i += 1;
                }
                out.push(literal);
            }
            _ => {}
        }
        i += 1;
    }
    out
}

/// What a module's SQL does wrong: tables it names that no domain owns, and tables of
/// other domains it touches without a listed reason.
/// The databases' own catalogs, which no domain owns: read only to tell a fresh database
/// from one with a schema (`database_is_empty`).
const CATALOGS: &[&str] = &["sqlite_master", "information_schema"];

fn violations(module: &str, source: &str, owner_of: &BTreeMap<&str, &str>) -> Vec<String> {
    let domain = MODULES.iter().find(|(m, _)| *m == module).map(|(_, d)| *d).unwrap_or("unassigned");
    let mut found = BTreeSet::new();
    for table in string_literals(source).iter().flat_map(|s| tables_named(s)).filter(|t| !CATALOGS.contains(&t.as_str())) {
        match owner_of.get(table.as_str()) {
            None => found.insert(format!("{module}: names {table}, a table no domain owns (add it to OWNERS)")),
            Some(owner) if *owner == domain => false,
            Some(_) if ALLOWED.iter().any(|(m, t, _)| *m == module && *t == table) => false,
            Some(owner) => found.insert(format!("{module} ({domain}) touches {table}, a table of {owner}")),
        };
    }
    found.into_iter().collect()
}

fn owner_of() -> BTreeMap<&'static str, &'static str> {
    OWNERS.iter().flat_map(|(domain, tables)| tables.iter().map(move |t| (*t, *domain))).collect()
}

/// The tables the migrations leave, in the order they run: created, less dropped.
fn schema_tables() -> BTreeSet<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations").join("sqlite");
    let mut names: Vec<_> = std::fs::read_dir(&dir).expect("migrations").map(|e| e.expect("entry").path()).collect();
    names.sort();
    let mut tables = BTreeSet::new();
    for path in names {
        let sql = std::fs::read_to_string(&path).expect("migration");
        let words: Vec<&str> = sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).filter(|w| !w.is_empty()).collect();
        for (i, w) in words.iter().enumerate() {
            let name = |skip: &[&str]| words[i + 1..].iter().find(|n| !skip.contains(n)).map(|n| n.to_string());
            match (*w, words.get(i + 1)) {
                ("CREATE", Some(&"TABLE")) => tables.extend(name(&["TABLE", "IF", "NOT", "EXISTS"])),
                ("CREATE", Some(&"VIRTUAL")) => tables.extend(name(&["VIRTUAL", "TABLE", "IF", "NOT", "EXISTS"])),
                ("DROP", Some(&"TABLE")) => {
                    if let Some(n) = name(&["TABLE", "IF", "EXISTS"]) {
                        tables.remove(&n);
                    }
                }
                // `ALTER TABLE old RENAME TO new` (not `RENAME COLUMN a TO b`).
                ("RENAME", Some(&"TO")) if i >= 2 && words[i - 2] == "TABLE" => {
                    tables.remove(words[i - 1]);
                    tables.extend(name(&["TO"]));
                }
                _ => {}
            }
        }
    }
    tables
}

/// The invariant "only domain services touch their tables": every module's queries
/// touch only its own domain's tables, or a cross-domain one listed with its reason.
#[test]
fn every_query_touches_only_its_domains_tables() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let owner_of = owner_of();
    let mut problems = Vec::new();
    let mut modules = BTreeSet::new();
    for entry in std::fs::read_dir(&src).expect("src") {
        let path = entry.expect("entry").path();
        let module = path.file_name().expect("name").to_string_lossy().into_owned();
        if module == "ownership.rs" || path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        if !MODULES.iter().any(|(m, _)| *m == module) {
            problems.push(format!("{module}: a module with no domain (add it to MODULES)"));
        }
        problems.extend(violations(&module, &std::fs::read_to_string(&path).expect("module"), &owner_of));
        modules.insert(module);
    }
    assert!(modules.contains("registry.rs") && modules.contains("catalog.rs"), "the modules were read: {modules:?}");
    for (module, table, _) in ALLOWED {
        let source = std::fs::read_to_string(src.join(module)).expect("module");
        if !string_literals(&source).iter().any(|s| tables_named(s).iter().any(|t| t == table)) {
            problems.push(format!("{module} no longer touches {table}: remove it from ALLOWED"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every table the migrations create has exactly one owner, and every owned table exists.
#[test]
fn every_table_has_one_owner() {
    let schema = schema_tables();
    assert!(schema.contains("listings") && schema.contains("jobs"), "the migrations were read: {schema:?}");
    let owned: Vec<&str> = OWNERS.iter().flat_map(|(_, tables)| tables.iter().copied()).collect();
    let unique: BTreeSet<&str> = owned.iter().copied().collect();
    assert_eq!(owned.len(), unique.len(), "a table is listed under two domains");
    let unique: BTreeSet<String> = unique.into_iter().map(str::to_owned).collect();
    assert_eq!(unique, schema, "OWNERS lists exactly the tables of the schema");
}

/// The check sees tables however SQL names them, and refuses a foreign one.
#[test]
fn a_foreign_table_is_refused_and_an_allowed_one_passes() {
    let source = r#"
        // "FROM listings" in a comment is not SQL.
        fn q() { sqlx::query("SELECT a FROM manifests m JOIN tags t ON t.digest = m.digest WHERE x IN (SELECT y FROM listings) AND (a, b) IS DISTINCT FROM (s.a, s.b)");
            sqlx::query("INSERT INTO repository_pulls (repository) VALUES ($1) ON CONFLICT (repository) DO UPDATE SET pulls = 1"); }
    "#;
    let found = violations("registry.rs", source, &owner_of());
    assert_eq!(found, ["registry.rs (registry) touches listings, a table of catalog"]);
    let allowed = r#"fn q() { sqlx::query("SELECT pulls FROM repository_pulls"); sqlx::query("UPDATE listings SET pulls = 1"); }"#;
    assert!(violations("catalog.rs", allowed, &owner_of()).is_empty());
    assert_eq!(violations("catalog.rs", r#"fn q() { sqlx::query("DELETE FROM nowhere"); }"#, &owner_of()).len(), 1);
}

/// Only the domain services (and the binary that builds them, and the tests' support)
/// reach the database: the web crate and the pure crates cannot even name a handle, so
/// the compiler refuses a query from them.
#[test]
fn only_domain_crates_depend_on_the_database() {
    const ALLOWED: &[&str] = &[
        "slipway-auth",
        "slipway-registry",
        "slipway-catalog",
        "slipway-commerce",
        "slipway-security",
        "slipway-jobs",
        "slipway",
        "slipway-test-support",
    ];
    let crates = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("crates folder").to_owned();
    let mut dependents = BTreeSet::new();
    for entry in std::fs::read_dir(&crates).expect("crates") {
        let dir = entry.expect("entry").path();
        let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else { continue };
        if manifest.lines().any(|l| l.trim_start().starts_with("slipway-db")) {
            dependents.insert(dir.file_name().expect("name").to_string_lossy().into_owned());
        }
    }
    assert!(dependents.contains("slipway-registry"), "the manifests were read: {dependents:?}");
    let strays: Vec<_> = dependents.iter().filter(|c| !ALLOWED.contains(&c.as_str())).collect();
    assert!(strays.is_empty(), "crates that must go through a domain service depend on slipway-db: {strays:?}");
}

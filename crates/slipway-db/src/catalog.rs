//! Queries behind the store: publishers, media, listings and tiers and license
//! agreements, one SQL text for both dialects. Search is not here: the catalog
//! crate answers it from an in-memory index built from [`CatalogDb::published_listings`] and
//! [`CatalogDb::published_tiers`].

use sqlx::any::AnyRow;
use sqlx::{Any, FromRow, Row, Transaction};

use crate::identity::unique_violation;
use crate::{CatalogDb, DbError};

#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct PublisherRecord {
    pub org: String,
    pub display_name: String,
    pub legal_name: String,
    pub website: String,
    pub phone: String,
    pub email: String,
    pub email_verified_at: Option<i64>,
    pub logo: Option<String>,
    pub story: String,
    pub verified_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct MediaRecord {
    pub id: String,
    pub content_type: String,
    pub width: i64,
    pub height: i64,
    pub content: Vec<u8>,
}

/// A listing row. List-valued fields are JSON arrays, decoded by the catalog crate.
#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct ListingRecord {
    pub id: String,
    pub publisher: String,
    pub name: String,
    pub slug: String,
    pub logo: Option<String>,
    pub short_description: String,
    pub category: String,
    pub search_tags: String,
    pub long_description: String,
    pub screenshots: String,
    pub support_url: String,
    pub support_email: String,
    pub support_info: String,
    pub sla: String,
    pub install_instructions: String,
    pub product_type: String,
    pub trust_level: String,
    pub badges: String,
    /// 1 when `badges` holds "certified" (the "certified only" filter reads it as is).
    pub certified: i64,
    pub platforms: String,
    pub license_version: i64,
    pub featured: i64,
    pub free: i64,
    pub paid: i64,
    pub pulls: i64,
    pub status: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub published_at: Option<i64>,
    /// Where it runs: `enterprise`, `community`, `neither`, or '' (not declared).
    pub runs_on: String,
    /// 1 when the publisher shows each version's vulnerability counts to everyone.
    pub public_scan_summary: i64,
    /// Read only: the publisher's display name (its organization name without a profile).
    pub publisher_name: String,
}

const LISTING_COLUMNS: &str = "l.id, l.publisher, l.name, l.slug, l.logo, l.short_description, l.category, l.search_tags, \
     l.long_description, l.screenshots, l.support_url, l.support_email, l.support_info, l.sla, l.install_instructions, \
     l.product_type, l.trust_level, l.badges, l.certified, l.platforms, l.license_version, l.featured, l.free, l.paid, l.pulls, \
     l.status, l.created_at, l.updated_at, l.published_at, l.runs_on, l.public_scan_summary, COALESCE(p.display_name, l.publisher) AS publisher_name";

/// Listings with their publisher's display name.
const LISTINGS: &str = "listings l LEFT JOIN publishers p ON p.org = l.publisher";

#[derive(Clone, Debug, Default, sqlx::FromRow)]
pub struct TierRecord {
    pub id: String,
    pub listing_id: String,
    pub slug: String,
    pub name: String,
    pub description: String,
    /// Price per billing period in the minor units of `currency`; 0 for a free tier.
    pub amount: i64,
    pub currency: String,
    /// `free`, `month`, `year` or `one_time`.
    pub billing_period: String,
    /// Days of free trial before the first charge; only on `month` and `year` tiers.
    pub trial_days: i64,
    pub access: String,
    pub repository: String,
    pub tags: String,
    pub position: i64,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct LicenseRecord {
    pub version: i64,
    pub url: String,
    pub body: String,
    pub created_at: i64,
}

/// What a product page shows, read in one statement: the listing, its tiers, its
/// publisher's profile, and the license agreement of the listing's current version.
#[derive(Clone, Debug)]
pub struct ProductRecord {
    pub listing: ListingRecord,
    pub tiers: Vec<TierRecord>,
    /// Whether the publisher is verified: all a product page shows of its profile.
    pub publisher_verified: bool,
    pub license: Option<LicenseRecord>,
}

/// The publisher's, the agreement's and the tier's columns of a [`ProductRecord`] row,
/// prefixed so that they do not shadow the listing's own (`created_at`, `name`). Only what
/// a product page shows: each output column costs PostgreSQL a little on every execution.
const PRODUCT_EXTRA_COLUMNS: &str = "p.verified_at AS p_verified_at, \
     a.version AS a_version, a.url AS a_url, a.body AS a_body, a.created_at AS a_created_at, \
     t.id AS t_id, t.slug AS t_slug, t.name AS t_name, t.description AS t_description, t.amount AS t_amount, \
     t.currency AS t_currency, t.billing_period AS t_billing_period, t.trial_days AS t_trial_days, t.access AS t_access, \
     t.repository AS t_repository, t.tags AS t_tags, t.position AS t_position";

/// The product statement's rows repeat the listing and its extras, one row per tier (a
/// listing without tiers has one row, with no tier): the record is read from the first
/// row, and each row adds its tier.
fn product_from_rows(rows: &[AnyRow]) -> Result<Option<ProductRecord>, sqlx::Error> {
    let Some(row) = rows.first() else { return Ok(None) };
    let tiers = rows.iter().map(tier_of_row).filter_map(Result::transpose).collect::<Result<_, _>>()?;
    let listing = ListingRecord::from_row(row)?;
    let publisher_verified = row.try_get::<Option<i64>, _>("p_verified_at")?.is_some();
    let license = match row.try_get::<Option<i64>, _>("a_version")? {
        Some(version) => Some(LicenseRecord {
            version,
            url: row.try_get("a_url")?,
            body: row.try_get("a_body")?,
            created_at: row.try_get("a_created_at")?,
        }),
        None => None,
    };
    Ok(Some(ProductRecord { listing, tiers, publisher_verified, license }))
}

/// The tier a row of the product statement carries, if any.
fn tier_of_row(row: &AnyRow) -> Result<Option<TierRecord>, sqlx::Error> {
    Ok(match row.try_get::<Option<String>, _>("t_id")? {
        Some(id) => Some(TierRecord {
            id,
            listing_id: row.try_get("id")?,
            slug: row.try_get("t_slug")?,
            name: row.try_get("t_name")?,
            description: row.try_get("t_description")?,
            amount: row.try_get("t_amount")?,
            currency: row.try_get("t_currency")?,
            billing_period: row.try_get("t_billing_period")?,
            trial_days: row.try_get("t_trial_days")?,
            access: row.try_get("t_access")?,
            repository: row.try_get("t_repository")?,
            tags: row.try_get("t_tags")?,
            position: row.try_get("t_position")?,
        }),
        None => None,
    })
}

/// The repositories a listing's tiers use, read inside the transaction about to change them.
async fn listing_repositories(tx: &mut Transaction<'static, Any>, listing_id: &str) -> Result<Vec<String>, DbError> {
    Ok(sqlx::query_scalar("SELECT repository FROM tiers WHERE listing_id = $1").bind(listing_id).fetch_all(&mut **tx).await?)
}

/// Sets the access of each of `repositories` from the catalog's current state, inside the
/// transaction that changed it: every change to a listing or its tiers (saving, publishing,
/// withdrawing) calls this for the repositories its tiers used before and use after, so
/// access never outlives the listing state that granted it.
///
/// A repository used by a tier of a published listing gets that tier's access (licensed:
/// the entitlement `publisher/listing/tier`); any other goes back to private staging (its
/// row is deleted). Tier repositories are unique, but should several published tiers ever
/// share one, the most restrictive wins.
///
/// `slipway admin set-access` writes the same rows. Its openings (public, logged-in,
/// licensed) of a tier's repository last until the next change of a listing using it,
/// which puts back what the listing says. Its explicit `staging` is a takedown: the catalog
/// never writes a `staging` row (it deletes the row), so one can only come from an
/// administrator, and listing changes leave it in place until another `set-access`.
async fn derive_repository_policies(tx: &mut Transaction<'static, Any>, repositories: &[String], now: i64) -> Result<(), DbError> {
    let mut seen = std::collections::BTreeSet::new();
    for repository in repositories.iter().filter(|r| seen.insert(r.as_str())) {
        // The parts of the entitlement name, joined by `entitlement_id` alone (Rust and
        // SQL must never build it each its own way).
        let derived: Option<(String, String, String, String)> = sqlx::query_as(
            "SELECT t.access, l.publisher, l.slug, t.slug
             FROM tiers t JOIN listings l ON l.id = t.listing_id
             WHERE t.repository = $1 AND l.status IN ('published', 'on_hold')
             ORDER BY CASE t.access WHEN 'licensed' THEN 0 WHEN 'logged_in' THEN 1 ELSE 2 END, t.id LIMIT 1",
        )
        .bind(repository)
        .fetch_optional(&mut **tx)
        .await?;
        match derived {
            Some((access, publisher, listing, tier)) => {
                let tier = slipway_types::entitlement_id(&publisher, &listing, &tier);
                sqlx::query(
                    "INSERT INTO repository_policies (repository, access, tier, updated_at) VALUES ($1, $2, $3, $4)
                     ON CONFLICT (repository) DO UPDATE SET access = excluded.access, tier = excluded.tier,
                         updated_at = excluded.updated_at
                     WHERE repository_policies.access <> 'staging'",
                )
                .bind(repository)
                .bind(access)
                .bind(tier)
                .bind(now)
                .execute(&mut **tx)
                .await?;
            }
            None => {
                sqlx::query("DELETE FROM repository_policies WHERE repository = $1 AND access <> 'staging'")
                    .bind(repository)
                    .execute(&mut **tx)
                    .await?;
            }
        }
    }
    Ok(())
}

/// The statuses in which a listing is in the store: found, shown and its repositories open
/// (on hold it stays, with a warning, and sells nothing new).
pub const LIVE_STATUSES: [&str; 2] = ["published", "on_hold"];

/// One move or message of a listing's moderation (see the `listing_events` table).
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ListingEventRecord {
    pub id: String,
    pub listing_id: String,
    pub seq: i64,
    pub at: i64,
    pub actor_id: Option<String>,
    pub actor_name: String,
    pub from_status: String,
    pub to_status: String,
    pub message: String,
}

/// Who moves a listing or writes to its thread, and what they say.
#[derive(Clone, Copy, Debug)]
pub struct EventInput<'a> {
    /// The event's id (made by the caller, as every id).
    pub id: &'a str,
    /// None for the operator's command line and the scheduler.
    pub actor_id: Option<&'a str>,
    pub actor_name: &'a str,
    pub message: &'a str,
}

/// Appends an event to a listing's thread inside the transaction that made it; the caller
/// holds the listing's row lock, so the next number is free.
async fn append_event(
    tx: &mut Transaction<'static, Any>,
    listing_id: &str,
    from: &str,
    to: &str,
    by: &EventInput<'_>,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO listing_events (id, listing_id, seq, at, actor_id, actor_name, from_status, to_status, message)
         SELECT $1, $2, COALESCE(MAX(seq), 0) + 1, $3, $4, $5, $6, $7, $8 FROM listing_events WHERE listing_id = $2",
    )
    .bind(by.id)
    .bind(listing_id)
    .bind(now)
    .bind(by.actor_id)
    .bind(by.actor_name)
    .bind(from)
    .bind(to)
    .bind(by.message)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Writes a listing and its tiers inside `tx`, and sets the access of every repository
/// its tiers used before or use now (see `CatalogDb::save_listing`).
async fn write_listing(tx: &mut Transaction<'static, Any>, l: &ListingRecord, tiers: &[TierRecord], now: i64) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO listings (id, publisher, name, slug, logo, short_description, category, search_tags, long_description,
             screenshots, support_url, support_email, support_info, sla, install_instructions, product_type, trust_level,
             badges, platforms, license_version, featured, free, paid, pulls, status, created_at, updated_at, published_at,
             certified, runs_on, public_scan_summary)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22,
             $23, $24, $25, $26, $27, $28, $29, $30, $31)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, logo = excluded.logo,
             short_description = excluded.short_description, category = excluded.category,
             search_tags = excluded.search_tags, long_description = excluded.long_description,
             screenshots = excluded.screenshots, support_url = excluded.support_url,
             support_email = excluded.support_email, support_info = excluded.support_info, sla = excluded.sla,
             install_instructions = excluded.install_instructions, product_type = excluded.product_type,
             trust_level = excluded.trust_level, badges = excluded.badges, certified = excluded.certified,
             platforms = excluded.platforms, runs_on = excluded.runs_on, public_scan_summary = excluded.public_scan_summary,
             featured = excluded.featured, free = excluded.free, paid = excluded.paid,
             updated_at = excluded.updated_at",
    )
    .bind(&l.id)
    .bind(&l.publisher)
    .bind(&l.name)
    .bind(&l.slug)
    .bind(&l.logo)
    .bind(&l.short_description)
    .bind(&l.category)
    .bind(&l.search_tags)
    .bind(&l.long_description)
    .bind(&l.screenshots)
    .bind(&l.support_url)
    .bind(&l.support_email)
    .bind(&l.support_info)
    .bind(&l.sla)
    .bind(&l.install_instructions)
    .bind(&l.product_type)
    .bind(&l.trust_level)
    .bind(&l.badges)
    .bind(&l.platforms)
    .bind(l.license_version)
    .bind(l.featured)
    .bind(l.free)
    .bind(l.paid)
    .bind(l.pulls)
    .bind(&l.status)
    .bind(l.created_at)
    .bind(l.updated_at)
    .bind(l.published_at)
    .bind(l.certified)
    .bind(&l.runs_on)
    .bind(l.public_scan_summary)
    .execute(&mut **tx)
    .await
    .map_err(|e| unique_violation(e, format!("{}/{} already exists", l.publisher, l.slug)))?;
    // Read after the upsert, which locks the listing's row: a concurrent save of the same
    // listing has committed by now, so no repository it left open is missed.
    let mut repositories = listing_repositories(tx, &l.id).await?;
    sqlx::query("DELETE FROM tiers WHERE listing_id = $1").bind(&l.id).execute(&mut **tx).await?;
    for t in tiers {
        sqlx::query(
            "INSERT INTO tiers (id, listing_id, slug, name, description, amount, currency, billing_period, trial_days,
                 access, repository, tags, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
        )
        .bind(&t.id)
        .bind(&l.id)
        .bind(&t.slug)
        .bind(&t.name)
        .bind(&t.description)
        .bind(t.amount)
        .bind(&t.currency)
        .bind(&t.billing_period)
        .bind(t.trial_days)
        .bind(&t.access)
        .bind(&t.repository)
        .bind(&t.tags)
        .bind(t.position)
        .execute(&mut **tx)
        .await
        .map_err(|e| unique_violation(e, format!("repository {} already backs another tier", t.repository)))?;
    }
    repositories.extend(tiers.iter().map(|t| t.repository.clone()));
    derive_repository_policies(tx, &repositories, now).await
}

impl CatalogDb {
    // ---- publishers and media ----------------------------------------------------------

    pub async fn put_publisher(&self, p: &PublisherRecord) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO publishers (org, display_name, legal_name, website, phone, email, email_verified_at, logo, story,
                 verified_at, created_at, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11)
             ON CONFLICT (org) DO UPDATE SET display_name = excluded.display_name, legal_name = excluded.legal_name,
                 website = excluded.website, phone = excluded.phone,
                 email_verified_at = CASE WHEN publishers.email = excluded.email THEN publishers.email_verified_at
                                          ELSE excluded.email_verified_at END,
                 email = excluded.email, logo = excluded.logo, story = excluded.story, updated_at = excluded.updated_at",
        )
        .bind(&p.org)
        .bind(&p.display_name)
        .bind(&p.legal_name)
        .bind(&p.website)
        .bind(&p.phone)
        .bind(&p.email)
        .bind(p.email_verified_at)
        .bind(&p.logo)
        .bind(&p.story)
        .bind(p.verified_at)
        .bind(self.clock.now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn publisher(&self, org: &str) -> Result<Option<PublisherRecord>, DbError> {
        Ok(sqlx::query_as::<Any, PublisherRecord>(
            "SELECT org, display_name, legal_name, website, phone, email, email_verified_at, logo, story, verified_at,
                 created_at, updated_at FROM publishers WHERE org = $1",
        )
        .bind(org)
        .fetch_optional(&self.read)
        .await?)
    }

    /// (organization, display name) of every verified publisher: the names new publishers
    /// must not imitate. Verified publishers are the few a moderator checked.
    pub async fn verified_publisher_names(&self) -> Result<Vec<(String, String)>, DbError> {
        Ok(sqlx::query_as::<Any, (String, String)>("SELECT org, display_name FROM publishers WHERE verified_at IS NOT NULL ORDER BY org")
            .fetch_all(&self.read)
            .await?)
    }

    /// Sets or clears verified-publisher status; false if there is no such publisher.
    pub async fn set_publisher_verified(&self, org: &str, verified: bool) -> Result<bool, DbError> {
        let at = verified.then(|| self.clock.now_ms());
        let done = sqlx::query("UPDATE publishers SET verified_at = $2, updated_at = $3 WHERE org = $1")
            .bind(org)
            .bind(at)
            .bind(self.clock.now_ms())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Marks the publisher's company email verified if it is still `email`.
    pub async fn verify_publisher_email(&self, org: &str, email: &str) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE publishers SET email_verified_at = $3 WHERE org = $1 AND email = $2")
            .bind(org)
            .bind(email)
            .bind(self.clock.now_ms())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    pub async fn put_media(&self, m: &MediaRecord) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO media (id, content_type, width, height, content, created_at) VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(&m.id)
        .bind(&m.content_type)
        .bind(m.width)
        .bind(m.height)
        .bind(&m.content)
        .bind(self.clock.now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn media(&self, id: &str) -> Result<Option<MediaRecord>, DbError> {
        Ok(sqlx::query_as::<Any, MediaRecord>("SELECT id, content_type, width, height, content FROM media WHERE id = $1")
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    // ---- listings and tiers -------------------------------------------------------------

    /// Creates or replaces a listing and its tiers in one transaction, and in it sets the
    /// access of every repository its tiers used before or use now from the catalog as it
    /// now stands (see `derive_repository_policies`): a removed tier's or a moved tier's
    /// old repository closes again. Fails with `Conflict` when the slug or a tier's
    /// repository is taken.
    pub async fn save_listing(&self, l: &ListingRecord, tiers: &[TierRecord]) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        write_listing(&mut tx, l, tiers, self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Saves the revision of a live listing that awaits review (`content`: the listing as
    /// its publisher wrote it, JSON), as a draft again if one was pending: an edit sends
    /// a submitted revision back to its publisher's desk.
    pub async fn save_revision(&self, listing_id: &str, content: &str) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        sqlx::query(
            "INSERT INTO listing_revisions (listing_id, content, status, created_at, updated_at) VALUES ($1, $2, 'draft', $3, $3)
             ON CONFLICT (listing_id) DO UPDATE SET content = excluded.content, status = 'draft', updated_at = excluded.updated_at",
        )
        .bind(listing_id)
        .bind(content)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The pending revision of a listing: its content (JSON), status and when it was saved.
    pub async fn revision(&self, listing_id: &str) -> Result<Option<(String, String, i64)>, DbError> {
        Ok(sqlx::query_as("SELECT content, status, updated_at FROM listing_revisions WHERE listing_id = $1")
            .bind(listing_id)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Moves a listing's pending revision from `from` to `to` and records it, as
    /// `move_listing` does a listing; false when the revision is not in `from` (any more).
    pub async fn move_revision(&self, listing_id: &str, from: &str, to: &str, by: &EventInput<'_>) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        let done = sqlx::query("UPDATE listing_revisions SET status = $3, updated_at = $4 WHERE listing_id = $1 AND status = $2")
            .bind(listing_id)
            .bind(from)
            .bind(to)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        let status: String = sqlx::query_scalar("SELECT status FROM listings WHERE id = $1").bind(listing_id).fetch_one(&mut *tx).await?;
        append_event(&mut tx, listing_id, &status, &status, by, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Applies an approved revision: the listing and its tiers become the revision's
    /// (`l`, `tiers`, as `save_listing` writes them, status kept) and the revision is gone,
    /// in one transaction with the event; false, nothing written, when the revision is not
    /// in `from` any more (edited or moved meanwhile).
    pub async fn apply_revision(&self, l: &ListingRecord, tiers: &[TierRecord], from: &str, by: &EventInput<'_>) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        let done = sqlx::query("DELETE FROM listing_revisions WHERE listing_id = $1 AND status = $2")
            .bind(&l.id)
            .bind(from)
            .execute(&mut *tx)
            .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        write_listing(&mut tx, l, tiers, now).await?;
        append_event(&mut tx, &l.id, &l.status, &l.status, by, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Drops a listing's pending revision, if any (the listing left the store).
    pub async fn drop_revision(&self, listing_id: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM listing_revisions WHERE listing_id = $1").bind(listing_id).execute(&self.write).await?;
        Ok(())
    }

    /// Moves a listing from status `from` to `to` and records the move, in one
    /// transaction: false (nothing written) when the listing is not in `from` any more, a
    /// concurrent move having won. A move into or out of the store (`LIVE_STATUSES`) sets
    /// its tiers' repositories' access in the same transaction, so a listing is never live
    /// with closed repositories or withdrawn with open ones.
    pub async fn move_listing(&self, id: &str, from: &str, to: &str, by: &EventInput<'_>) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        let (was_live, is_live) = (LIVE_STATUSES.contains(&from), LIVE_STATUSES.contains(&to));
        // published_at is when it went live, kept through a hold and its lifting.
        let goes_live = i64::from(is_live && !was_live);
        let done = sqlx::query(
            "UPDATE listings SET status = $3, updated_at = $4, published_at = CASE WHEN $5 = 1 THEN $4 ELSE published_at END
             WHERE id = $1 AND status = $2",
        )
        .bind(id)
        .bind(from)
        .bind(to)
        .bind(now)
        .bind(goes_live)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 0 {
            return Ok(false);
        }
        append_event(&mut tx, id, from, to, by, now).await?;
        if was_live != is_live {
            let repositories = listing_repositories(&mut tx, id).await?;
            derive_repository_policies(&mut tx, &repositories, now).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Adds a message to a listing's review thread without moving it; false when there is
    /// no such listing.
    pub async fn add_listing_message(&self, id: &str, by: &EventInput<'_>) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        // The no-op update takes the listing's row lock, so events are numbered in the
        // order they are written whatever else moves the listing meanwhile.
        let status: Option<String> = sqlx::query_scalar("UPDATE listings SET status = status WHERE id = $1 RETURNING status")
            .bind(id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(status) = status else { return Ok(false) };
        append_event(&mut tx, id, &status, &status, by, self.clock.now_ms()).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// A listing's latest `limit` moves and messages, oldest first.
    pub async fn listing_events(&self, listing_id: &str, limit: i64) -> Result<Vec<ListingEventRecord>, DbError> {
        let mut newest: Vec<ListingEventRecord> = sqlx::query_as(
            "SELECT id, listing_id, seq, at, actor_id, actor_name, from_status, to_status, message
             FROM listing_events WHERE listing_id = $1 ORDER BY seq DESC LIMIT $2",
        )
        .bind(listing_id)
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        newest.reverse();
        Ok(newest)
    }

    /// Listings waiting for a moderator (submitted or in review), the longest waiting
    /// first, at most `limit`, each with when it was last submitted.
    pub async fn moderation_queue(&self, limit: i64) -> Result<Vec<(ListingRecord, i64)>, DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LISTING_COLUMNS}, w.submitted_at
             FROM {LISTINGS}
             JOIN (SELECT listing_id, MAX(at) AS submitted_at FROM listing_events WHERE to_status = 'submitted'
                   GROUP BY listing_id) w ON w.listing_id = l.id
             WHERE l.status IN ('submitted', 'in_review')
             ORDER BY w.submitted_at, l.id LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|row| Ok((ListingRecord::from_row(row)?, row.try_get("submitted_at")?))).collect()
    }

    /// Live listings whose revision waits for a moderator, the longest waiting first, at
    /// most `limit`, each with its revision's status and when it last moved.
    pub async fn revision_queue(&self, limit: i64) -> Result<Vec<(ListingRecord, String, i64)>, DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LISTING_COLUMNS}, r.status AS revision_status, r.updated_at AS revision_at
             FROM {LISTINGS} JOIN listing_revisions r ON r.listing_id = l.id
             WHERE r.status IN ('submitted', 'in_review') AND l.status IN ('published', 'on_hold')
             ORDER BY r.updated_at, l.id LIMIT $1"
        )))
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        rows.iter().map(|row| Ok((ListingRecord::from_row(row)?, row.try_get("revision_status")?, row.try_get("revision_at")?))).collect()
    }

    /// The tags released of `repository`, with the digest each was released with.
    pub async fn released_tags(&self, repository: &str) -> Result<Vec<(String, String)>, DbError> {
        Ok(sqlx::query_as("SELECT tag, digest FROM released_tags WHERE repository = $1 ORDER BY tag")
            .bind(repository)
            .fetch_all(&self.read)
            .await?)
    }

    /// Releases versions to customers in one transaction: each tag as it points now
    /// (`tags`: repository, tag, digest; a tag released before moves to its new digest)
    /// and every manifest they reference (`manifests`: repository, digest).
    pub async fn release(&self, tags: &[(String, String, String)], manifests: &[(String, String)]) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        let now = self.clock.now_ms();
        for (repository, tag, digest) in tags {
            sqlx::query(
                "INSERT INTO released_tags (repository, tag, digest, released_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (repository, tag) DO UPDATE SET digest = excluded.digest, released_at = excluded.released_at",
            )
            .bind(repository)
            .bind(tag)
            .bind(digest)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        for (repository, digest) in manifests {
            sqlx::query("INSERT INTO released_manifests (repository, digest) VALUES ($1, $2) ON CONFLICT (repository, digest) DO NOTHING")
                .bind(repository)
                .bind(digest)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Records that `org` accepted version `version` of the publisher agreement (again is
    /// a no-op).
    pub async fn accept_publisher_agreement(&self, org: &str, version: i64, account_id: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO publisher_agreements (org, version, account_id, accepted_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (org, version) DO NOTHING",
        )
        .bind(org)
        .bind(version)
        .bind(account_id)
        .bind(self.clock.now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// The latest version of the publisher agreement `org` accepted, if any.
    pub async fn publisher_agreement_version(&self, org: &str) -> Result<Option<i64>, DbError> {
        Ok(sqlx::query_scalar("SELECT MAX(version) FROM publisher_agreements WHERE org = $1").bind(org).fetch_one(&self.read).await?)
    }

    pub async fn set_listing_badges(&self, id: &str, badges: &str, certified: bool) -> Result<bool, DbError> {
        let done = sqlx::query("UPDATE listings SET badges = $2, certified = $3, updated_at = $4 WHERE id = $1")
            .bind(id)
            .bind(badges)
            .bind(i64::from(certified))
            .bind(self.clock.now_ms())
            .execute(&self.write)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Follows a publisher's verification: its listings become Verified Publisher (or
    /// Community when withdrawn), except those marked Official.
    pub async fn set_publisher_trust_level(&self, publisher: &str, level: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE listings SET trust_level = $2 WHERE publisher = $1 AND trust_level <> 'official'")
            .bind(publisher)
            .bind(level)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn set_listing_trust_level(&self, id: &str, level: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE listings SET trust_level = $2 WHERE id = $1").bind(id).bind(level).execute(&self.write).await?;
        Ok(())
    }

    pub async fn set_listing_featured(&self, id: &str, featured: bool) -> Result<bool, DbError> {
        let done =
            sqlx::query("UPDATE listings SET featured = $2 WHERE id = $1").bind(id).bind(featured as i64).execute(&self.write).await?;
        Ok(done.rows_affected() == 1)
    }

    /// Records the OS/architecture pairs the listing's images run on (a search filter).
    pub async fn set_listing_platforms(&self, id: &str, platforms: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE listings SET platforms = $2 WHERE id = $1").bind(id).bind(platforms).execute(&self.write).await?;
        Ok(())
    }

    /// Folds what is new of the registry's pull totals (`repository_pulls`) into the pulls
    /// of the listings whose tiers the repositories back, at most `limit` repositories;
    /// returns how many were folded. Exact however many replicas fold at once: each
    /// repository's step moves `folded_pulls` from the amount it read to the total it read
    /// with a compare-and-set, in the transaction that adds the difference to listings,
    /// so a step that lost the race adds nothing (and the pulls counted meanwhile wait for
    /// the next fold). Running totals, rather than a log of increments, keep this exact
    /// on PostgreSQL too, where ids from a sequence can commit out of order and a cursor
    /// over them would skip some.
    pub async fn fold_pulls(&self, limit: i64) -> Result<usize, DbError> {
        let pending = sqlx::query_as::<Any, (String, i64, i64)>(
            "SELECT r.repository, r.pulls, COALESCE(f.pulls, 0) FROM repository_pulls r
             LEFT JOIN folded_pulls f ON f.repository = r.repository
             WHERE r.pulls > COALESCE(f.pulls, 0) ORDER BY r.repository LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?;
        let mut folded = 0;
        for (repository, total, already) in pending {
            let mut tx = self.begin_write().await?;
            sqlx::query("INSERT INTO folded_pulls (repository, pulls) VALUES ($1, 0) ON CONFLICT (repository) DO NOTHING")
                .bind(&repository)
                .execute(&mut *tx)
                .await?;
            let moved = sqlx::query("UPDATE folded_pulls SET pulls = $2 WHERE repository = $1 AND pulls = $3")
                .bind(&repository)
                .bind(total)
                .bind(already)
                .execute(&mut *tx)
                .await?
                .rows_affected();
            if moved == 0 {
                tx.rollback().await?;
                continue;
            }
            sqlx::query("UPDATE listings SET pulls = pulls + $2 WHERE id IN (SELECT listing_id FROM tiers WHERE repository = $1)")
                .bind(&repository)
                .bind(total - already)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            folded += 1;
        }
        Ok(folded)
    }

    pub async fn listing(&self, publisher: &str, slug: &str) -> Result<Option<ListingRecord>, DbError> {
        Ok(sqlx::query_as::<Any, ListingRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {LISTING_COLUMNS} FROM {LISTINGS} WHERE l.publisher = $1 AND l.slug = $2"
        )))
        .bind(publisher)
        .bind(slug)
        .fetch_optional(&self.read)
        .await?)
    }

    /// A product page's records in one round trip (a page read afresh is otherwise four).
    pub async fn product(&self, publisher: &str, slug: &str) -> Result<Option<ProductRecord>, DbError> {
        let rows = sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT {LISTING_COLUMNS}, {PRODUCT_EXTRA_COLUMNS} FROM {LISTINGS}
             LEFT JOIN license_agreements a ON a.listing_id = l.id AND a.version = l.license_version
             LEFT JOIN tiers t ON t.listing_id = l.id
             WHERE l.publisher = $1 AND l.slug = $2 ORDER BY t.position, t.slug"
        )))
        .bind(publisher)
        .bind(slug)
        .fetch_all(&self.read)
        .await?;
        Ok(product_from_rows(&rows)?)
    }

    pub async fn listing_by_id(&self, id: &str) -> Result<Option<ListingRecord>, DbError> {
        Ok(sqlx::query_as::<Any, ListingRecord>(sqlx::AssertSqlSafe(format!("SELECT {LISTING_COLUMNS} FROM {LISTINGS} WHERE l.id = $1")))
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    /// A publisher's listings, drafts included, newest first.
    pub async fn listings_of(&self, publisher: &str) -> Result<Vec<ListingRecord>, DbError> {
        Ok(sqlx::query_as::<Any, ListingRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {LISTING_COLUMNS} FROM {LISTINGS} WHERE l.publisher = $1 ORDER BY l.updated_at DESC, l.id"
        )))
        .bind(publisher)
        .fetch_all(&self.read)
        .await?)
    }

    /// Every published listing, most popular first (the browse order: featured, then
    /// pulls): what the catalog's in-memory search index is built from.
    pub async fn published_listings(&self) -> Result<Vec<ListingRecord>, DbError> {
        Ok(sqlx::query_as::<Any, ListingRecord>(sqlx::AssertSqlSafe(format!(
            "SELECT {LISTING_COLUMNS} FROM {LISTINGS} WHERE l.status IN ('published', 'on_hold') ORDER BY l.featured DESC, l.pulls DESC, l.id"
        )))
        .fetch_all(&self.read)
        .await?)
    }

    /// The tiers of every published listing, each listing's in its order: search results
    /// show them from memory (see [`CatalogDb::published_listings`]).
    pub async fn published_tiers(&self) -> Result<Vec<TierRecord>, DbError> {
        Ok(sqlx::query_as::<Any, TierRecord>(
            "SELECT t.id, t.listing_id, t.slug, t.name, t.description, t.amount, t.currency, t.billing_period, t.trial_days, t.access,
                 t.repository, t.tags, t.position
             FROM tiers t JOIN listings l ON l.id = t.listing_id WHERE l.status IN ('published', 'on_hold')
             ORDER BY t.listing_id, t.position, t.slug",
        )
        .fetch_all(&self.read)
        .await?)
    }

    /// The tiers of several listings at once, in each listing's order.
    pub async fn tiers_of(&self, listing_ids: &[String]) -> Result<Vec<TierRecord>, DbError> {
        if listing_ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (1..=listing_ids.len()).map(|i| format!("${i}")).collect();
        let sql = format!(
            "SELECT id, listing_id, slug, name, description, amount, currency, billing_period, trial_days, access, repository,
                 tags, position FROM tiers WHERE listing_id IN ({}) ORDER BY listing_id, position, slug",
            placeholders.join(", ")
        );
        let mut query = sqlx::query_as::<Any, TierRecord>(sqlx::AssertSqlSafe(sql));
        for id in listing_ids {
            query = query.bind(id);
        }
        Ok(query.fetch_all(&self.read).await?)
    }

    pub async fn tiers(&self, listing_id: &str) -> Result<Vec<TierRecord>, DbError> {
        Ok(sqlx::query_as::<Any, TierRecord>(
            "SELECT id, listing_id, slug, name, description, amount, currency, billing_period, trial_days, access, repository,
                 tags, position FROM tiers WHERE listing_id = $1 ORDER BY position, slug",
        )
        .bind(listing_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// Published listings per category, for the browse index.
    pub async fn category_counts(&self) -> Result<Vec<(String, i64)>, DbError> {
        Ok(sqlx::query_as::<Any, (String, i64)>(
            "SELECT category, COUNT(*) FROM listings WHERE status IN ('published', 'on_hold') GROUP BY category ORDER BY category",
        )
        .fetch_all(&self.read)
        .await?)
    }

    // ---- license agreements -------------------------------------------------------------

    /// Adds a version of the listing's license agreement and makes it current.
    pub async fn add_license(&self, listing_id: &str, url: &str, body: &str) -> Result<i64, DbError> {
        let mut tx = self.begin_write().await?;
        let version: i64 =
            sqlx::query_scalar("UPDATE listings SET license_version = license_version + 1 WHERE id = $1 RETURNING license_version")
                .bind(listing_id)
                .fetch_optional(&mut *tx)
                .await?
                .ok_or_else(|| DbError::Conflict(format!("no listing {listing_id}")))?;
        sqlx::query("INSERT INTO license_agreements (listing_id, version, url, body, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(listing_id)
            .bind(version)
            .bind(url)
            .bind(body)
            .bind(self.clock.now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(version)
    }

    pub async fn license(&self, listing_id: &str, version: i64) -> Result<Option<LicenseRecord>, DbError> {
        Ok(sqlx::query_as::<Any, LicenseRecord>(
            "SELECT version, url, body, created_at FROM license_agreements WHERE listing_id = $1 AND version = $2",
        )
        .bind(listing_id)
        .bind(version)
        .fetch_optional(&self.read)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;
    use crate::{IdentityDb, test_databases};

    fn event(message: &str) -> (String, String) {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        (format!("e{}", NEXT.fetch_add(1, Ordering::Relaxed)), message.to_owned())
    }

    /// Moves listing `id` into the store (published) or out of it (unpublished) from
    /// whatever status it has, as the operator; false when there is no such listing.
    async fn set_live(db: &CatalogDb, id: &str, live: bool) -> Result<bool, DbError> {
        let from: Option<String> =
            sqlx::query_scalar("SELECT status FROM listings WHERE id = $1").bind(id).fetch_optional(&db.read).await?;
        let Some(from) = from else { return Ok(false) };
        let (event_id, message) = event("");
        let by = EventInput { id: &event_id, actor_id: None, actor_name: "operator", message: &message };
        db.move_listing(id, &from, if live { "published" } else { "unpublished" }, &by).await
    }

    /// Migration 0023's backfill releases what customers could pull before releases existed:
    /// every tag of a live listing's tier repository, with an index's children, and nothing
    /// of a draft's. Run again here over such a catalog, on both backends.
    #[tokio::test]
    async fn upgrading_releases_every_tag_of_live_listings() {
        for (db, _dir) in test_databases().await {
            let db = db.catalog();
            for (id, status, repository) in [("live", "published", "acme/live"), ("draft", "draft", "acme/draft")] {
                let listing = ListingRecord {
                    id: id.into(),
                    publisher: "acme".into(),
                    slug: id.into(),
                    status: status.into(),
                    ..ListingRecord::default()
                };
                let tier = TierRecord {
                    id: format!("{id}-t"),
                    listing_id: id.into(),
                    slug: "t".into(),
                    repository: repository.into(),
                    tags: "[]".into(),
                    ..TierRecord::default()
                };
                db.save_listing(&listing, &[tier]).await.unwrap();
                for (tag, digest) in [("1.0", "sha256:index"), ("edge", "sha256:edge")] {
                    sqlx::query("INSERT INTO tags (repository, name, digest, updated_at) VALUES ($1, $2, $3, 1)")
                        .bind(repository)
                        .bind(tag)
                        .bind(digest)
                        .execute(&db.write)
                        .await
                        .unwrap();
                }
                for (child, kind) in [("sha256:child", "manifest"), ("sha256:layer", "blob")] {
                    sqlx::query("INSERT INTO manifest_references (repository, manifest, child, kind) VALUES ($1, 'sha256:index', $2, $3)")
                        .bind(repository)
                        .bind(child)
                        .bind(kind)
                        .execute(&db.write)
                        .await
                        .unwrap();
                }
            }
            let migration = match db.backend {
                crate::Backend::Sqlite => include_str!("../migrations/sqlite/0023_releases.sql"),
                crate::Backend::Postgres => include_str!("../migrations/postgres/0023_releases.sql"),
            };
            // From the line after the backfill's opening comment to the end.
            let backfill = migration.split_once("-- Before releases").unwrap().1.split_once('\n').unwrap().1;
            let statements =
                backfill.split(';').map(|s| s.lines().filter(|l| !l.trim_start().starts_with("--")).collect::<Vec<_>>().join("\n"));
            for statement in statements.filter(|s| !s.trim().is_empty()) {
                sqlx::query(sqlx::AssertSqlSafe(statement)).execute(&db.write).await.unwrap();
            }
            assert_eq!(
                db.released_tags("acme/live").await.unwrap(),
                [("1.0".to_owned(), "sha256:index".to_owned()), ("edge".into(), "sha256:edge".into())]
            );
            assert!(db.released_tags("acme/draft").await.unwrap().is_empty(), "a draft offered nothing");
            let manifests: Vec<String> =
                sqlx::query_scalar("SELECT digest FROM released_manifests WHERE repository = 'acme/live' ORDER BY digest")
                    .fetch_all(&db.read)
                    .await
                    .unwrap();
            assert_eq!(manifests, ["sha256:child", "sha256:edge", "sha256:index"], "an index's children, not its blobs");
        }
    }

    /// A move happens only from the status the mover saw (a second mover from the same
    /// status gets false and writes nothing); moves and messages are numbered in order;
    /// the queue holds what waits for a moderator, the longest waiting first.
    #[tokio::test]
    async fn listings_move_only_from_the_status_seen_and_their_thread_keeps_order() {
        for (db, _dir) in test_databases().await {
            let db = db.with_clock(slipway_types::Clock::manual(1_000)).catalog();
            for id in ["l1", "l2", "l3"] {
                let listing = ListingRecord {
                    id: id.into(),
                    publisher: "acme".into(),
                    slug: id.into(),
                    status: "draft".into(),
                    ..ListingRecord::default()
                };
                db.save_listing(&listing, &[]).await.unwrap();
            }
            let by = |id: &'static str, message: &'static str| EventInput { id, actor_id: Some("a1"), actor_name: "olga", message };
            assert!(db.move_listing("l2", "draft", "submitted", &by("e1", "first")).await.unwrap());
            db.clock().advance(std::time::Duration::from_secs(1)).unwrap();
            assert!(db.move_listing("l1", "draft", "submitted", &by("e2", "")).await.unwrap());
            assert!(!db.move_listing("l1", "draft", "submitted", &by("e3", "again")).await.unwrap(), "no longer a draft");
            assert!(db.add_listing_message("l1", &by("e4", "please look")).await.unwrap());
            assert!(!db.add_listing_message("missing", &by("e5", "hello")).await.unwrap());
            assert!(db.move_listing("l1", "submitted", "in_review", &by("e6", "")).await.unwrap());

            let events = db.listing_events("l1", 10).await.unwrap();
            let seen: Vec<_> = events.iter().map(|e| (e.seq, e.from_status.as_str(), e.to_status.as_str(), e.message.as_str())).collect();
            assert_eq!(
                seen,
                [(1, "draft", "submitted", ""), (2, "submitted", "submitted", "please look"), (3, "submitted", "in_review", "")]
            );
            assert_eq!(db.listing_events("l2", 10).await.unwrap().len(), 1);
            let latest: Vec<i64> = db.listing_events("l1", 2).await.unwrap().iter().map(|e| e.seq).collect();
            assert_eq!(latest, [2, 3], "the latest, oldest first");
            let queue: Vec<_> = db.moderation_queue(10).await.unwrap().into_iter().map(|(l, _)| l.id).collect();
            assert_eq!(queue, ["l2", "l1"], "l3 is a draft; l2 waits longest");
            assert_eq!(db.moderation_queue(1).await.unwrap().len(), 1, "bounded");

            assert_eq!(db.publisher_agreement_version("acme").await.unwrap(), None);
            db.accept_publisher_agreement("acme", 1, "a1").await.unwrap();
            db.accept_publisher_agreement("acme", 1, "a2").await.unwrap();
            db.accept_publisher_agreement("acme", 2, "a1").await.unwrap();
            assert_eq!(db.publisher_agreement_version("acme").await.unwrap(), Some(2));
        }
    }

    /// A product page's one statement brings the tiers in their order, the publisher's
    /// name and verification (unverified while it has no profile) and the agreement of the
    /// listing's current version, not an older one.
    #[tokio::test]
    async fn a_product_is_read_with_its_tiers_publisher_and_current_license() {
        for (db, _dir) in test_databases().await {
            let db = db.catalog();
            let listing = ListingRecord {
                id: "l1".into(),
                publisher: "acme".into(),
                name: "Rocket".into(),
                slug: "rocket".into(),
                ..ListingRecord::default()
            };
            db.save_listing(&listing, &[]).await.unwrap();
            assert!(db.product("acme", "missing").await.unwrap().is_none());
            let bare = db.product("acme", "rocket").await.unwrap().unwrap();
            assert_eq!((bare.listing.id.as_str(), bare.listing.license_version), ("l1", 0));
            assert!(bare.tiers.is_empty() && !bare.publisher_verified && bare.license.is_none());
            assert_eq!(bare.listing.publisher_name, "acme", "the organization's name until it has a profile");

            let tier = |id: &str, slug: &str, position, amount, trial_days| TierRecord {
                id: id.into(),
                listing_id: "l1".into(),
                slug: slug.into(),
                name: slug.to_uppercase(),
                access: "licensed".into(),
                repository: format!("acme/rocket-{slug}"),
                tags: "1.0,latest".into(),
                amount,
                trial_days,
                position,
                ..TierRecord::default()
            };
            let tiers = [tier("t3", "pro", 1, 900, 14), tier("t1", "free", 0, 0, 0), tier("t2", "enterprise", 2, 9_900, 0)];
            db.save_listing(&listing, &tiers).await.unwrap();
            let tiered = db.product("acme", "rocket").await.unwrap().unwrap();
            let read: Vec<_> = tiered
                .tiers
                .iter()
                .map(|t| (t.id.as_str(), t.slug.as_str(), t.name.as_str(), t.listing_id.as_str(), t.amount, t.trial_days))
                .collect();
            assert_eq!(
                read,
                [
                    ("t1", "free", "FREE", "l1", 0, 0),
                    ("t3", "pro", "PRO", "l1", 900, 14),
                    ("t2", "enterprise", "ENTERPRISE", "l1", 9_900, 0)
                ]
            );
            assert_eq!(
                (tiered.tiers[0].access.as_str(), tiered.tiers[0].repository.as_str(), tiered.tiers[0].tags.as_str()),
                ("licensed", "acme/rocket-free", "1.0,latest")
            );
            assert_eq!(tiered.listing.name, "Rocket", "the tier's name does not shadow the listing's");

            db.put_publisher(&PublisherRecord { org: "acme".into(), display_name: "Acme Corp".into(), ..PublisherRecord::default() })
                .await
                .unwrap();
            db.add_license("l1", "", "first terms").await.unwrap();
            db.add_license("l1", "https://acme.example/eula", "second terms").await.unwrap();
            let full = db.product("acme", "rocket").await.unwrap().unwrap();
            assert_eq!(full.tiers.len(), 3, "one listing however many rows the tiers make");
            assert_eq!(full.listing.license_version, 2);
            assert_eq!(full.listing.publisher_name, "Acme Corp");
            assert!(!full.publisher_verified);
            let license = full.license.unwrap();
            assert_eq!((license.version, license.url.as_str(), license.body.as_str()), (2, "https://acme.example/eula", "second terms"));
            assert!(license.created_at > 0, "the agreement's time, not the listing's");

            db.set_publisher_verified("acme", true).await.unwrap();
            let verified = db.product("acme", "rocket").await.unwrap().unwrap();
            assert!(verified.publisher_verified);
            assert_eq!(verified.tiers.len(), 3);
        }
    }

    /// Publishing opens the tiers' repositories as each tier says, saving a published
    /// listing applies its tiers' new access, and withdrawing makes them private again.
    #[tokio::test]
    async fn publishing_opens_tier_repositories_and_withdrawing_closes_them() {
        for (db, _dir) in test_databases().await {
            let (db, identity) = (db.catalog(), db.identity());
            let listing = ListingRecord {
                id: "l1".into(),
                publisher: "acme".into(),
                slug: "rocket".into(),
                status: "draft".into(),
                ..ListingRecord::default()
            };
            let tier = |access: &str| TierRecord {
                id: "t1".into(),
                slug: "pro".into(),
                access: access.into(),
                repository: "acme/rocket".into(),
                ..TierRecord::default()
            };
            let policy = || async { identity.repository_policy("acme/rocket").await.unwrap().map(|p| (p.access, p.tier)) };
            db.save_listing(&listing, &[tier("licensed")]).await.unwrap();
            assert_eq!(policy().await, None, "a draft's repositories stay private");
            assert!(set_live(&db, "l1", true).await.unwrap());
            assert_eq!(policy().await, Some(("licensed".to_owned(), Some("acme/rocket/pro".to_owned()))));
            db.save_listing(&listing, &[tier("public")]).await.unwrap();
            assert_eq!(policy().await.unwrap().0, "public", "the stored status counts, not the record's");
            assert!(set_live(&db, "l1", false).await.unwrap());
            assert_eq!(policy().await, None);
            assert!(!set_live(&db, "missing", true).await.unwrap());
        }
    }

    /// A listing `id` of acme with tiers `(slug, access, repository)`, saved as is.
    async fn save(db: &CatalogDb, id: &str, status: &str, tiers: &[(&str, &str, &str)]) {
        let listing = ListingRecord {
            id: id.into(),
            publisher: "acme".into(),
            slug: format!("rocket-{id}"),
            status: status.into(),
            ..ListingRecord::default()
        };
        let tiers: Vec<_> = tiers
            .iter()
            .map(|(slug, access, repository)| TierRecord {
                id: format!("{id}-{slug}"),
                slug: (*slug).into(),
                access: (*access).into(),
                repository: (*repository).into(),
                ..TierRecord::default()
            })
            .collect();
        db.save_listing(&listing, &tiers).await.unwrap();
    }

    async fn access(db: &IdentityDb, repository: &str) -> Option<String> {
        db.repository_policy(repository).await.unwrap().map(|p| p.access)
    }

    /// Issue 14 item 9: removing a tier from a published listing used to leave its
    /// repository public; it goes back to private staging.
    #[tokio::test]
    async fn removing_a_tier_closes_its_repository() {
        for (db, _dir) in test_databases().await {
            let (db, identity) = (db.catalog(), db.identity());
            save(&db, "l1", "draft", &[("free", "public", "acme/free"), ("team", "logged_in", "acme/team")]).await;
            assert!(set_live(&db, "l1", true).await.unwrap());
            assert_eq!(access(&identity, "acme/free").await.as_deref(), Some("public"));
            assert_eq!(access(&identity, "acme/team").await.as_deref(), Some("logged_in"));
            save(&db, "l1", "draft", &[("team", "logged_in", "acme/team")]).await;
            assert_eq!(access(&identity, "acme/free").await, None, "the removed tier's repository is staging again");
            assert_eq!(access(&identity, "acme/team").await.as_deref(), Some("logged_in"), "the remaining tier keeps its access");
        }
    }

    /// Issue 14 item 9: pointing a published tier at another repository used to leave the
    /// old one open; it goes back to staging and the new one gets the tier's access.
    #[tokio::test]
    async fn changing_a_tiers_repository_closes_the_old_one() {
        for (db, _dir) in test_databases().await {
            let (db, identity) = (db.catalog(), db.identity());
            save(&db, "l1", "draft", &[("free", "public", "acme/old")]).await;
            assert!(set_live(&db, "l1", true).await.unwrap());
            assert_eq!(access(&identity, "acme/old").await.as_deref(), Some("public"));
            save(&db, "l1", "draft", &[("free", "public", "acme/new")]).await;
            assert_eq!(access(&identity, "acme/old").await, None, "the old repository is staging again");
            assert_eq!(access(&identity, "acme/new").await.as_deref(), Some("public"));
        }
    }

    /// Issue 14 item 9: withdrawing a listing closes every repository its tiers used while
    /// published (including one a tier left before the withdrawal, which stayed open), but
    /// not one another published listing's tier now uses.
    #[tokio::test]
    async fn withdrawing_a_listing_closes_its_repositories() {
        for (db, _dir) in test_databases().await {
            let (db, identity) = (db.catalog(), db.identity());
            save(&db, "l1", "draft", &[("free", "public", "acme/a"), ("pro", "licensed", "acme/b"), ("team", "logged_in", "acme/e")]).await;
            save(&db, "l2", "draft", &[("free", "public", "acme/c")]).await;
            assert!(set_live(&db, "l1", true).await.unwrap());
            assert!(set_live(&db, "l2", true).await.unwrap());
            // acme/a moves from l1 to the other published listing, l1's free tier to acme/d,
            // and the team tier (acme/e) goes.
            save(&db, "l1", "draft", &[("free", "public", "acme/d"), ("pro", "licensed", "acme/b")]).await;
            save(&db, "l2", "draft", &[("free", "public", "acme/c"), ("team", "logged_in", "acme/a")]).await;
            assert_eq!(access(&identity, "acme/a").await.as_deref(), Some("logged_in"), "the listing now using it decides");
            assert!(set_live(&db, "l1", false).await.unwrap());
            for closed in ["acme/b", "acme/d", "acme/e"] {
                assert_eq!(access(&identity, closed).await, None, "{closed} is staging again");
            }
            assert_eq!(access(&identity, "acme/a").await.as_deref(), Some("logged_in"), "still used by a published tier");
            assert_eq!(access(&identity, "acme/c").await.as_deref(), Some("public"));
            assert!(set_live(&db, "l2", false).await.unwrap());
            for closed in ["acme/a", "acme/c"] {
                assert_eq!(access(&identity, closed).await, None, "{closed} is staging again");
            }
        }
    }

    /// `slipway admin set-access` on a tier's repository: an opening lasts until the
    /// listing next changes; an explicit staging (a takedown) survives listing changes.
    #[tokio::test]
    async fn admin_access_on_a_tier_repository() {
        for (db, _dir) in test_databases().await {
            let (db, identity) = (db.catalog(), db.identity());
            save(&db, "l1", "draft", &[("free", "public", "acme/a"), ("pro", "licensed", "acme/b")]).await;
            identity.set_repository_policy("acme/a", "logged_in", None).await.unwrap();
            assert!(set_live(&db, "l1", true).await.unwrap());
            assert_eq!(access(&identity, "acme/a").await.as_deref(), Some("public"), "publishing applies the listing");
            identity.set_repository_policy("acme/b", "staging", None).await.unwrap();
            identity.set_repository_policy("acme/a", "logged_in", None).await.unwrap();
            save(&db, "l1", "draft", &[("free", "public", "acme/a"), ("pro", "licensed", "acme/b")]).await;
            assert_eq!(access(&identity, "acme/a").await.as_deref(), Some("public"), "the next change applies the listing again");
            assert_eq!(access(&identity, "acme/b").await.as_deref(), Some("staging"), "a takedown stays through a save");
            assert!(set_live(&db, "l1", false).await.unwrap());
            assert!(set_live(&db, "l1", true).await.unwrap());
            assert_eq!(access(&identity, "acme/b").await.as_deref(), Some("staging"), "and through a withdrawal and publication");
            identity.set_repository_policy("acme/b", "public", None).await.unwrap();
            save(&db, "l1", "draft", &[("free", "public", "acme/a"), ("pro", "licensed", "acme/b")]).await;
            let lifted = identity.repository_policy("acme/b").await.unwrap().unwrap();
            assert_eq!(
                (lifted.access.as_str(), lifted.tier.as_deref()),
                ("licensed", Some("acme/rocket-l1/pro")),
                "lifted, the listing decides again"
            );
        }
    }

    /// The search index's source: published listings only, featured first, then by pulls
    /// (ties by id), with their publisher's display name.
    #[tokio::test]
    async fn published_listings_are_read_by_popularity() {
        for (db, _dir) in test_databases().await {
            let db = db.catalog();
            for (id, status, pulls) in
                [("l1", "published", 5), ("l2", "published", 50), ("l3", "draft", 500), ("l4", "published", 5), ("l5", "published", 50)]
            {
                let listing = ListingRecord {
                    id: id.into(),
                    publisher: "acme".into(),
                    slug: format!("rocket-{id}"),
                    status: status.into(),
                    ..ListingRecord::default()
                };
                db.save_listing(&listing, &[]).await.unwrap();
                sqlx::query("UPDATE listings SET pulls = $1 WHERE id = $2").bind(pulls).bind(id).execute(&db.write).await.unwrap();
            }
            db.set_listing_featured("l4", true).await.unwrap();
            let read = |records: Vec<ListingRecord>| records.into_iter().map(|r| (r.id, r.pulls, r.publisher_name)).collect::<Vec<_>>();
            let expected = |name: &str| {
                [("l4", 5), ("l2", 50), ("l5", 50), ("l1", 5)].map(|(id, pulls)| (id.to_owned(), pulls, name.to_owned())).to_vec()
            };
            assert_eq!(read(db.published_listings().await.unwrap()), expected("acme"), "featured, then by pulls; no draft");
            db.put_publisher(&PublisherRecord { org: "acme".into(), display_name: "Acme Corp".into(), ..PublisherRecord::default() })
                .await
                .unwrap();
            assert_eq!(read(db.published_listings().await.unwrap()), expected("Acme Corp"), "the profile's name once there is one");
        }
    }

    /// Search results show tiers from memory: those of published listings only, each
    /// listing's in its order.
    #[tokio::test]
    async fn published_tiers_are_read_in_order() {
        for (db, _dir) in test_databases().await {
            let db = db.catalog();
            for (id, status) in [("l1", "published"), ("l2", "draft"), ("l3", "published")] {
                let listing = ListingRecord {
                    id: id.into(),
                    publisher: "acme".into(),
                    slug: format!("rocket-{id}"),
                    status: status.into(),
                    ..ListingRecord::default()
                };
                let tier = |slug: &str, position: i64| TierRecord {
                    id: format!("{id}-{slug}"),
                    slug: slug.into(),
                    repository: format!("acme/{id}-{slug}"),
                    position,
                    ..TierRecord::default()
                };
                db.save_listing(&listing, &[tier("pro", 1), tier("free", 0)]).await.unwrap();
            }
            let read: Vec<_> = db.published_tiers().await.unwrap().into_iter().map(|t| (t.listing_id, t.slug)).collect();
            let expected = [("l1", "free"), ("l1", "pro"), ("l3", "free"), ("l3", "pro")].map(|(l, t)| (l.to_owned(), t.to_owned()));
            assert_eq!(read, expected);
        }
    }

    /// Pulls the registry records reach the listing backed by the repository exactly once,
    /// while several replicas fold at the same time as pulls keep arriving; pulls of a
    /// repository no listing uses are folded into nothing.
    #[tokio::test]
    async fn pulls_are_folded_into_listings_once_by_concurrent_folds() {
        for (db, _dir) in test_databases().await {
            let (catalog, registry) = (db.catalog(), db.registry());
            save(&catalog, "l1", "published", &[("free", "public", "acme/a"), ("pro", "licensed", "acme/b")]).await;
            let adds =
                futures::future::try_join_all((0..40).map(|i| registry.add_pulls(if i % 2 == 0 { "acme/a" } else { "acme/b" }, 1 + i % 3)));
            let stray = registry.add_pulls("acme/unlisted", 5);
            let folds = futures::future::try_join_all((0..6).map(|_| catalog.fold_pulls(100)));
            let (added, _, _) = futures::future::try_join3(adds, stray, folds).await.unwrap();
            assert_eq!(added.len(), 40);
            catalog.fold_pulls(100).await.unwrap();
            assert_eq!(catalog.fold_pulls(100).await.unwrap(), 0, "nothing is left to fold");
            let expected: i64 = (0..40).map(|i| 1 + i % 3).sum();
            assert_eq!(catalog.listing_by_id("l1").await.unwrap().unwrap().pulls, expected);
        }
    }
}

//! The catalog service: every operation the store front and the REST API offer, with its
//! access rule.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use slipway_auth::AuthService;
use slipway_auth::access::Subject;
use slipway_db::{AccountRecord, CatalogDb, ImagesDb, LicenseRecord, ListingRecord, MediaRecord, PublisherRecord, TierRecord};
use slipway_oci::{RepoName, Tag};
use slipway_policy::{Action, Refusal, Resource, decide};
use slipway_storage::BlobStore;

use crate::CatalogError;
use crate::cache::{ResultCache, Weigh};
use crate::index::{Document, Filter, Query, SearchIndex};
use crate::media::{self, LOGO_SIDE, MediaKind};
use crate::model::*;
use crate::moderation::{self, MoveOption};
use crate::pricing::validate_price;
use crate::release;
use crate::search::SearchParams;
use crate::text::{self, invalid};
use crate::typeahead::{IndexedListing, TypeaheadIndex};
use crate::versions::SummaryCache;

/// Who is acting: a signed-in account, the operator at the command line, or the
/// vulnerability policy's deadline sweep.
pub enum Actor<'a> {
    Operator,
    User(&'a Viewer),
    Policy,
}

/// A signed-in account with its roles.
#[derive(Clone, Debug)]
pub struct Viewer {
    pub account: AccountRecord,
    pub subject: Subject,
}

impl Viewer {
    /// The policy's actor: the account's own rights (a token's API scopes were checked
    /// where the request came in).
    pub fn actor(&self) -> slipway_policy::Actor<'_> {
        slipway_policy::Actor::signed_in(&self.subject)
    }
}

impl Actor<'_> {
    fn actor(&self) -> slipway_policy::Actor<'_> {
        match self {
            Actor::Operator | Actor::Policy => slipway_policy::Actor::OPERATOR,
            Actor::User(viewer) => viewer.actor(),
        }
    }
}

/// Asks the policy; a refusal keeps its kind (see `From<Refusal> for CatalogError`).
pub(crate) fn check(actor: &slipway_policy::Actor<'_>, action: Action, resource: Resource<'_>) -> Result<(), CatalogError> {
    Ok(decide(actor, action, &resource).into_result()?)
}

/// The policy's view of a stored listing.
pub(crate) fn listing_resource(record: &ListingRecord) -> Resource<'_> {
    Resource::Listing { publisher: &record.publisher, published: status_of(record).is_live() }
}

impl From<Refusal> for CatalogError {
    fn from(refusal: Refusal) -> CatalogError {
        match refusal.kind {
            slipway_types::ErrorKind::NotFound => CatalogError::NotFound(refusal.reason),
            // The catalog asks only about signed-in viewers and the operator, whom the
            // policy never sends to sign in; were one refused so, it stays a refusal.
            _ => CatalogError::Forbidden(refusal.reason),
        }
    }
}

/// One page of search results.
pub struct SearchPage {
    pub items: Vec<ListingSummary>,
    pub total: i64,
}

const MAX_TIERS: usize = 10;
const MAX_SCREENSHOTS: usize = 8;
const MAX_SEARCH_TAGS: usize = 20;
const MAX_TIER_TAGS: usize = 50;
const PUBLISHER_EMAIL_TTL_MS: i64 = 48 * 3600 * 1000;
/// The publisher agreement every publisher accepts before its first submission, and its
/// version: a new text is a new version, which publishers accept before submitting again.
pub const PUBLISHER_AGREEMENT_VERSION: i64 = 1;
pub const PUBLISHER_AGREEMENT: &str = include_str!("publisher_agreement.md");
/// The most events of a listing's review thread read and shown at once: the latest.
const MAX_THREAD: i64 = 200;
/// The most submissions the moderation queue shows at once.
const MAX_QUEUE: i64 = 200;
/// Repositories whose new pulls one `count_pulls` run folds; the rest wait for the next.
const PULL_FOLD_BATCH: i64 = 1_000;

#[derive(Clone)]
pub struct Catalog {
    pub(crate) db: CatalogDb,
    /// The registry's read model, for what images a listing's repositories hold.
    images: ImagesDb,
    store: Arc<dyn BlobStore>,
    pub(crate) auth: AuthService,
    summaries: SummaryCache,
    products: ResultCache<Arc<Product>>,
    /// One entry: this replica's search and typeahead indexes, refreshed as cached pages
    /// are.
    index: ResultCache<Arc<CatalogIndex>>,
    /// Whether the index has been built once (it may be rebuilding since).
    index_built: Arc<AtomicBool>,
}

/// What this replica knows of the published catalog, to search it without the database.
/// Both indexes number listings alike (by popularity), so a suggestion is shown from the
/// search index's summary of the listing.
struct CatalogIndex {
    search: SearchIndex<ListingSummary>,
    typeahead: TypeaheadIndex,
}

/// One index per replica, sized by the catalog rather than by traffic: it is not weighed
/// against the budget meant for cached pages.
impl Weigh for Arc<CatalogIndex> {
    fn weigh(&self) -> usize {
        0
    }
}

/// A listing under review as its pages show it (`Catalog::review_state`).
#[derive(Clone, Debug)]
pub struct ReviewState {
    pub listing: Listing,
    pub revision: Option<Revision>,
    /// The moves the viewer may make on the listing now.
    pub listing_moves: Vec<MoveOption>,
    /// And on its revision.
    pub revision_moves: Vec<MoveOption>,
    pub thread: Vec<ListingEvent>,
    /// A live listing's versions customers cannot pull yet, and whether the viewer may
    /// release them.
    pub pending: Vec<PendingVersion>,
    pub may_release: bool,
    /// Its standing under the vulnerability policy: notices, deadlines, exceptions.
    pub security: crate::vulnerability_policy::SecurityStanding,
}

/// What a product page shows of a published listing, with its Markdown rendered.
#[derive(Clone, Debug)]
pub struct Product {
    pub listing: Listing,
    pub publisher_verified: bool,
    pub license: Option<License>,
    pub long_html: String,
    pub install_html: String,
}

impl Weigh for Arc<Product> {
    fn weigh(&self) -> usize {
        self.listing.weigh() + self.long_html.len() + self.install_html.len() + self.license.as_ref().map_or(0, |l| l.text.len()) + 2048
    }
}

impl Catalog {
    pub fn new(db: CatalogDb, images: ImagesDb, store: Arc<dyn BlobStore>, auth: AuthService) -> Catalog {
        Catalog {
            db,
            images,
            store,
            auth,
            summaries: SummaryCache::default(),
            products: ResultCache::default(),
            index: ResultCache::default(),
            index_built: Arc::default(),
        }
    }

    /// The signed-in account's view: its roles and entitlements.
    pub async fn viewer(&self, account: AccountRecord) -> Result<Viewer, CatalogError> {
        let subject = self.auth.subject(&account).await?;
        Ok(Viewer { account, subject })
    }

    // ---- media ---------------------------------------------------------------------------

    /// Stores an uploaded logo or screenshot, returning its id.
    pub async fn upload_media(&self, _viewer: &Viewer, kind: MediaKind, bytes: Vec<u8>) -> Result<String, CatalogError> {
        let record = tokio::task::spawn_blocking(move || media::process(kind, &bytes))
            .await
            .map_err(|e| CatalogError::Internal(e.to_string()))??;
        self.db.put_media(&record).await?;
        Ok(record.id)
    }

    pub async fn media(&self, id: &str) -> Result<Option<MediaRecord>, CatalogError> {
        if !is_media_id(id) {
            return Ok(None);
        }
        Ok(self.db.media(id).await?)
    }

    async fn check_media(&self, field: &str, id: &str, kind: MediaKind) -> Result<(), CatalogError> {
        let found = self.media(id).await?.ok_or_else(|| invalid(field, format!("no uploaded image {id:?}")))?;
        if kind == MediaKind::Logo && (found.width != i64::from(LOGO_SIDE) || found.height != i64::from(LOGO_SIDE)) {
            return Err(invalid(field, "must be an image uploaded as a logo".into()));
        }
        Ok(())
    }

    // ---- publishers ------------------------------------------------------------------------

    /// Creates or updates `org`'s publisher profile. A new organization is created with the
    /// viewer as its owner; an existing one needs the viewer to be an owner or maintainer.
    /// A changed company email is sent a verification link under `base_url`.
    pub async fn save_publisher(
        &self,
        viewer: &Viewer,
        org: &str,
        input: &PublisherInput,
        base_url: &str,
    ) -> Result<Publisher, CatalogError> {
        let existing = self.db.publisher(org).await?;
        let profile = PublisherRecord {
            org: org.to_owned(),
            display_name: text::line("display_name", &input.display_name, 1, 80)?,
            legal_name: text::line("legal_name", &input.legal_name, 1, 200)?,
            website: text::web_url("website", &input.website, true)?,
            phone: text::phone(&input.phone)?,
            email: text::email("email", &input.email, true)?,
            email_verified_at: None,
            logo: match input.logo.as_deref().filter(|l| !l.is_empty()) {
                Some(id) => {
                    self.check_media("logo", id, MediaKind::Logo).await?;
                    Some(id.to_owned())
                }
                None => return Err(invalid("logo", "is required: a square image of at least 512x512 pixels".into())),
            },
            story: text::multiline("story", &input.story, 10_000)?,
            verified_at: None,
            created_at: self.db.clock().now_ms(),
            updated_at: self.db.clock().now_ms(),
        };
        let exists = self.auth.organization_exists(org).await?;
        if exists {
            check(&viewer.actor(), Action::EditPublisher, Resource::Organization { name: org })?;
        }
        if existing.as_ref().is_none_or(|p| p.display_name != profile.display_name) {
            // A new profile's organization name is checked too: it is in every pull path.
            self.refuse_imitation(org, existing.is_none(), &profile.display_name).await?;
        }
        if !exists {
            self.auth.create_organization(org, &viewer.account.name).await?;
        }
        let email_changed = existing.as_ref().is_none_or(|p| p.email != profile.email || p.email_verified_at.is_none());
        self.db.put_publisher(&profile).await?;
        // Its listings are found by the publisher's display name too.
        self.changed();
        if email_changed {
            self.send_publisher_verification(org, &profile.email, base_url).await?;
        }
        self.publisher(org).await?.ok_or_else(|| CatalogError::NotFound(org.into()))
    }

    /// Refuses a publisher name (or, for a new publisher, an organization name) that reads
    /// like a verified publisher's: anyone may make a publisher, and one named "Docker, Inc."
    /// or "D0cker" would borrow a verified one's trust.
    async fn refuse_imitation(&self, org: &str, new_org: bool, display_name: &str) -> Result<(), CatalogError> {
        for (verified_org, verified_name) in self.db.verified_publisher_names().await? {
            if verified_org == org {
                continue;
            }
            let alike = |name: &str| text::names_look_alike(name, &verified_name) || text::names_look_alike(name, &verified_org);
            let imitated = if alike(display_name) { Some(display_name) } else { (new_org && alike(org)).then_some(org) };
            if let Some(name) = imitated {
                return Err(CatalogError::Conflict(format!(
                    "“{name}” reads like the verified publisher {verified_name} ({verified_org}): choose a name of your own"
                )));
            }
        }
        Ok(())
    }

    async fn send_publisher_verification(&self, org: &str, email: &str, base_url: &str) -> Result<(), CatalogError> {
        // The code names the organization and the address it was sent to, so a link sent
        // before the address changed cannot verify the new one.
        let subject = format!("{org} {email}");
        let secret = self.auth.issue_code(&subject, "publisher", PUBLISHER_EMAIL_TTL_MS).await?;
        let body = format!(
            "Hello,\n\nconfirm that {email} is the company address of the publisher {org} on Slipway:\n\n{}/publishers/verify-email?token={secret}\n\nThe link works for 48 hours.\n",
            base_url.trim_end_matches('/')
        );
        self.auth.enqueue_mail(email, "Verify your publisher email address", &body).await?;
        Ok(())
    }

    /// Follows a publisher email verification link; returns the organization.
    pub async fn verify_publisher_email(&self, token: &str) -> Result<String, CatalogError> {
        let used = self.auth.use_code(token, "publisher").await?;
        let expired = || CatalogError::Invalid("this verification link is invalid, used or expired".into());
        let (org, email) = used.as_deref().and_then(|s| s.split_once(' ')).ok_or_else(expired)?;
        if !self.db.verify_publisher_email(org, email).await? {
            return Err(expired());
        }
        Ok(org.to_owned())
    }

    pub async fn publisher(&self, org: &str) -> Result<Option<Publisher>, CatalogError> {
        Ok(self.db.publisher(org).await?.map(publisher_from))
    }

    /// Publisher profiles the viewer may edit.
    pub async fn editable_publishers(&self, viewer: &Viewer) -> Result<Vec<Publisher>, CatalogError> {
        let mut out = Vec::new();
        let editable = |org: &&String| decide(&viewer.actor(), Action::EditPublisher, &Resource::Organization { name: org }).is_allowed();
        for org in viewer.subject.namespaces.keys().filter(editable) {
            if let Some(p) = self.publisher(org).await? {
                out.push(p);
            }
        }
        Ok(out)
    }

    /// Sets verified-publisher status (moderators); listings follow with their trust level.
    pub async fn set_publisher_verified(&self, actor: Actor<'_>, org: &str, verified: bool) -> Result<(), CatalogError> {
        check(&actor.actor(), Action::VerifyPublisher, Resource::Organization { name: org })?;
        if !self.db.set_publisher_verified(org, verified).await? {
            return Err(CatalogError::NotFound(format!("no publisher {org}")));
        }
        let level = if verified { TrustLevel::Verified } else { TrustLevel::Community };
        self.db.set_publisher_trust_level(org, level.as_str()).await?;
        self.changed();
        Ok(())
    }

    // ---- listings ----------------------------------------------------------------------------

    /// A product page's content. Published listings are served from the recent results
    /// (they are the same for every viewer); drafts, for the publisher's members and
    /// staff, are read afresh.
    pub async fn product(&self, viewer: Option<&Viewer>, publisher: &str, slug: &str) -> Result<Arc<Product>, CatalogError> {
        let catalog = self.clone();
        let (org, name) = (publisher.to_owned(), slug.to_owned());
        let published = move || async move { catalog.load_product(None, &org, &name).await.map(Arc::new) };
        match self.products.get_or_compute(format!("{publisher}/{slug}"), published).await {
            Err(CatalogError::NotFound(_)) if viewer.is_some() => Ok(Arc::new(self.load_product(viewer, publisher, slug).await?)),
            found => found,
        }
    }

    async fn load_product(&self, viewer: Option<&Viewer>, publisher: &str, slug: &str) -> Result<Product, CatalogError> {
        let record = self.db.product(publisher, slug).await?;
        let record = visible(record.filter(|r| may_see(viewer, &r.listing)), publisher, slug)?;
        let listing = listing_from(record.listing, record.tiers.into_iter().map(tier_from).collect());
        Ok(Product {
            publisher_verified: record.publisher_verified,
            license: record.license.map(license_from),
            long_html: text::markdown_html(&listing.long_description),
            install_html: text::markdown_html(&listing.install_instructions),
            listing,
        })
    }

    /// A listing; drafts only for the publisher's members and staff.
    pub async fn listing(&self, viewer: Option<&Viewer>, publisher: &str, slug: &str) -> Result<Listing, CatalogError> {
        let record = self.seen_record(viewer, publisher, slug).await?;
        self.assemble(record).await
    }

    /// A listing's row, if the viewer may see it; else the same "no product" as for none.
    pub(crate) async fn seen_record(&self, viewer: Option<&Viewer>, publisher: &str, slug: &str) -> Result<ListingRecord, CatalogError> {
        let record = self.db.listing(publisher, slug).await?;
        visible(record.filter(|r| may_see(viewer, r)), publisher, slug)
    }

    /// The product page's listing built from unsaved editor input, as the preview shows it:
    /// what the listing already earned (trust level, badges, platforms) is kept.
    pub async fn preview_listing(
        &self,
        viewer: &Viewer,
        org: &str,
        slug: Option<&str>,
        input: ListingInput,
    ) -> Result<Listing, CatalogError> {
        let existing = match slug {
            Some(s) => Some(self.listing(Some(viewer), org, s).await?),
            None => None,
        };
        Ok(Listing {
            id: String::new(),
            publisher: org.to_owned(),
            publisher_name: self.publisher(org).await?.map(|p| p.display_name).unwrap_or_else(|| org.to_owned()),
            slug: slug.map(str::to_owned).unwrap_or_else(|| text::slugify(&input.name)),
            name: input.name,
            logo_url: input.logo.as_deref().map(media_url),
            short_description: input.short_description,
            category: input.category,
            search_tags: input.search_tags,
            long_description: input.long_description,
            screenshots: input.screenshots.iter().map(|id| media_url(id)).collect(),
            support_url: input.support_url,
            support_email: input.support_email,
            support_info: input.support_info,
            sla: input.sla,
            install_instructions: input.install_instructions,
            product_type: input.product_type,
            trust_level: existing.as_ref().map_or(TrustLevel::Community, |e| e.trust_level),
            badges: existing.as_ref().map(|e| e.badges.clone()).unwrap_or_default(),
            platforms: existing.as_ref().map(|e| e.platforms.clone()).unwrap_or_default(),
            tiers: input.tiers,
            license_version: 0,
            pulls: 0,
            status: ListingStatus::Draft,
            runs_on: input.runs_on,
            public_scan_summary: input.public_scan_summary,
            updated_at: self.db.clock().now_ms(),
            published_at: None,
        })
    }

    /// A publisher's listings: all of them for its members and staff, else the published.
    pub async fn listings_of(&self, viewer: Option<&Viewer>, publisher: &str) -> Result<Vec<Listing>, CatalogError> {
        let records = self.db.listings_of(publisher).await?.into_iter().filter(|r| may_see(viewer, r)).collect();
        self.assemble_all(records).await
    }

    async fn assemble(&self, r: ListingRecord) -> Result<Listing, CatalogError> {
        let tiers = self.db.tiers(&r.id).await?.into_iter().map(tier_from).collect();
        Ok(listing_from(r, tiers))
    }

    /// Creates a draft listing for `publisher`, or replaces the content of the listing
    /// `slug` (`Some`) keeping its status, license and counters.
    pub async fn save_listing(
        &self,
        viewer: &Viewer,
        publisher: &str,
        slug: Option<&str>,
        input: &ListingInput,
    ) -> Result<Listing, CatalogError> {
        let existing = match slug {
            Some(slug) => Some(
                self.db.listing(publisher, slug).await?.ok_or_else(|| CatalogError::NotFound(format!("no product {publisher}/{slug}")))?,
            ),
            None => None,
        };
        let new_draft = Resource::Listing { publisher, published: false };
        check(&viewer.actor(), Action::EditListing, existing.as_ref().map_or(new_draft, listing_resource))?;
        let profile = self
            .db
            .publisher(publisher)
            .await?
            .ok_or_else(|| CatalogError::Invalid(format!("{publisher} has no publisher profile yet: create it first")))?;
        let status = existing.as_ref().map(status_of);
        if let Some(status @ (ListingStatus::Submitted | ListingStatus::InReview | ListingStatus::Approved | ListingStatus::Revoked)) =
            status
        {
            let why = match status {
                ListingStatus::Approved => "publish it first: a change to a live product is a revision, reviewed on its own",
                ListingStatus::Revoked => "it was revoked",
                _ => "it is under review: withdraw the submission (status draft) to change it",
            };
            return Err(CatalogError::Conflict(format!(
                "{publisher}/{} cannot be changed now: {why}",
                existing.map(|e| e.slug).unwrap_or_default()
            )));
        }
        let (record, tiers) = self.validate_listing(publisher, &profile, existing, input).await?;
        if status.is_some_and(ListingStatus::is_live) {
            // A live listing stays as customers see it until a moderator approves the change.
            let content = serde_json::to_string(input).map_err(|e| CatalogError::Internal(format!("encoding a revision: {e}")))?;
            self.db.save_revision(&record.id, &content).await?;
        } else {
            self.store_listing(&record, &tiers).await?;
            // A direct edit of a listing out of the store supersedes a revision left from
            // when it was live.
            self.db.drop_revision(&record.id).await?;
        }
        self.listing(Some(viewer), publisher, &record.slug).await
    }

    /// The change waiting for review of a live listing, for its publisher's members and
    /// staff: its status, the listing as it would be, and what differs from the live one.
    pub async fn revision(&self, viewer: &Viewer, publisher: &str, slug: &str) -> Result<Option<Revision>, CatalogError> {
        let record = visible(self.db.listing(publisher, slug).await?, publisher, slug)?;
        check(&viewer.actor(), Action::ViewListing, Resource::Listing { publisher, published: false })?;
        let Some((input, status, saved_at)) = self.pending_revision(&record).await? else { return Ok(None) };
        let (revised, tiers) = self.revised(&record, &input).await?;
        let proposed = listing_from(revised, tiers.into_iter().map(tier_from).collect());
        let live = self.assemble(record).await?;
        Ok(Some(Revision { status, saved_at, changed: changed_fields(&live, &proposed), listing: proposed }))
    }

    /// The listing and tiers a revision would write, validated as a save is.
    async fn revised(&self, live: &ListingRecord, input: &ListingInput) -> Result<(ListingRecord, Vec<TierRecord>), CatalogError> {
        let profile = self.db.publisher(&live.publisher).await?.unwrap_or_default();
        self.validate_listing(&live.publisher, &profile, Some(live.clone()), input).await
    }

    /// A live listing's pending revision, decoded: the input, its status, when saved.
    async fn pending_revision(&self, record: &ListingRecord) -> Result<Option<(ListingInput, ListingStatus, i64)>, CatalogError> {
        if !status_of(record).is_live() {
            return Ok(None);
        }
        let Some((content, status, saved_at)) = self.db.revision(&record.id).await? else { return Ok(None) };
        let input =
            serde_json::from_str(&content).map_err(|e| CatalogError::Internal(format!("a stored revision does not decode: {e}")))?;
        Ok(Some((input, ListingStatus::parse(&status).unwrap_or(ListingStatus::Draft), saved_at)))
    }

    /// Moves a live listing's revision through review as a submission moves (submitted,
    /// in_review, changes_requested, draft), by the same rules; `approved` replaces the
    /// live listing with it.
    pub async fn move_revision(
        &self,
        viewer: &Viewer,
        publisher: &str,
        slug: &str,
        request: &MoveRequest,
        base_url: &str,
    ) -> Result<Option<Revision>, CatalogError> {
        let record = self.seen_record(Some(viewer), publisher, slug).await?;
        let (input, from, _) = self
            .pending_revision(&record)
            .await?
            .ok_or_else(|| CatalogError::NotFound(format!("{publisher}/{slug} has no revision waiting")))?;
        let message = text::multiline("message", &request.message, moderation::MAX_MESSAGE)?;
        let chosen = self.pick_move(viewer, &record, from, request.status, &message)?;
        let (revised, tiers) = self.revised(&record, &input).await?;
        let event_id = uuid::Uuid::new_v4().to_string();
        let text = format!("{} (revision){}", chosen.what, if message.is_empty() { String::new() } else { format!(": {message}") });
        let by =
            slipway_db::EventInput { id: &event_id, actor_id: Some(&viewer.account.id), actor_name: &viewer.account.name, message: &text };
        let done = match chosen.to {
            ListingStatus::Approved => {
                let applied = self.db.apply_revision(&revised, &tiers, from.as_str(), &by).await?;
                if applied {
                    self.changed();
                    self.refresh_platforms(&record.id).await?;
                    self.release_offered(&tiers).await?;
                }
                applied
            }
            to => {
                if to == ListingStatus::Submitted {
                    self.check_submission(&revised, &tiers).await?;
                }
                self.db.move_revision(&record.id, from.as_str(), to.as_str(), &by).await?
            }
        };
        if !done {
            return Err(CatalogError::Conflict(format!("the revision of {} changed meanwhile: reload it and try again", record.name)));
        }
        let from_publisher = chosen.action == Action::EditListing;
        self.tell_other_side(&record, &viewer.account.name, &format!("{} (revision)", chosen.what), &message, from_publisher, base_url)
            .await?;
        self.revision(viewer, publisher, slug).await
    }

    async fn validate_listing(
        &self,
        publisher: &str,
        profile: &PublisherRecord,
        existing: Option<ListingRecord>,
        input: &ListingInput,
    ) -> Result<(ListingRecord, Vec<TierRecord>), CatalogError> {
        let name = text::line("name", &input.name, 1, 80)?;
        let slug = match &existing {
            Some(e) => e.slug.clone(),
            None => {
                text::slug("name", &text::slugify(&name), 64).map_err(|_| invalid("name", "needs at least one letter or digit".into()))?
            }
        };
        let category = input.category.trim();
        category_title(category).ok_or_else(|| invalid("category", format!("unknown category {category:?}")))?;
        let logo = match input.logo.as_deref().filter(|l| !l.is_empty()) {
            Some(id) => {
                self.check_media("logo", id, MediaKind::Logo).await?;
                Some(id.to_owned())
            }
            None => None,
        };
        if input.screenshots.len() > MAX_SCREENSHOTS {
            return Err(invalid("screenshots", format!("at most {MAX_SCREENSHOTS}")));
        }
        for id in &input.screenshots {
            self.check_media("screenshots", id, MediaKind::Screenshot).await?;
        }
        let mut search_tags = Vec::new();
        for tag in input.search_tags.iter().map(|t| t.trim().to_lowercase()).filter(|t| !t.is_empty()) {
            let tag = text::slug("search_tags", &tag, 32)?;
            if !search_tags.contains(&tag) {
                search_tags.push(tag);
            }
        }
        if search_tags.len() > MAX_SEARCH_TAGS {
            return Err(invalid("search_tags", format!("at most {MAX_SEARCH_TAGS}")));
        }
        let tiers = self.validate_tiers(publisher, &slug, &input.tiers)?;
        let now = self.db.clock().now_ms();
        let trust_level = match &existing {
            Some(e) if e.trust_level == TrustLevel::Official.as_str() => TrustLevel::Official,
            _ if profile.verified_at.is_some() => TrustLevel::Verified,
            _ => TrustLevel::Community,
        };
        let base = existing.unwrap_or_else(|| ListingRecord {
            id: uuid::Uuid::new_v4().to_string(),
            publisher: publisher.to_owned(),
            slug: slug.clone(),
            badges: "[]".into(),
            platforms: "[]".into(),
            status: ListingStatus::Draft.as_str().into(),
            created_at: now,
            ..ListingRecord::default()
        });
        let record = ListingRecord {
            name,
            logo,
            short_description: text::line("short_description", &input.short_description, 1, 140)?,
            category: category.to_owned(),
            search_tags: json(&search_tags),
            long_description: text::multiline("long_description", &input.long_description, 20_000)?,
            screenshots: json(&input.screenshots),
            support_url: text::web_url("support_url", &input.support_url, false)?,
            runs_on: input.runs_on.map_or("", RunsOn::as_str).to_owned(),
            public_scan_summary: i64::from(input.public_scan_summary),
            support_email: text::email("support_email", &input.support_email, false)?,
            support_info: text::multiline("support_info", &input.support_info, 2_000)?,
            sla: text::multiline("sla", &input.sla, 2_000)?,
            install_instructions: text::multiline("install_instructions", &input.install_instructions, 20_000)?,
            product_type: input.product_type.as_str().into(),
            trust_level: trust_level.as_str().into(),
            free: i64::from(tiers.iter().any(|t| t.amount == 0)),
            paid: i64::from(tiers.iter().any(|t| t.amount > 0)),
            updated_at: now,
            ..base
        };
        Ok((record, tiers))
    }

    fn validate_tiers(&self, publisher: &str, listing_slug: &str, tiers: &[Tier]) -> Result<Vec<TierRecord>, CatalogError> {
        if tiers.is_empty() || tiers.len() > MAX_TIERS {
            return Err(invalid("tiers", format!("a product needs 1 to {MAX_TIERS} tiers")));
        }
        let mut slugs = HashSet::new();
        let mut repositories = HashSet::new();
        tiers
            .iter()
            .enumerate()
            .map(|(position, t)| {
                let slug = text::slug("tier slug", t.slug.trim(), 32)?;
                if !slugs.insert(slug.clone()) {
                    return Err(invalid("tiers", format!("two tiers are called {slug:?}")));
                }
                let repository = t.repository.trim();
                let parsed: RepoName =
                    repository.parse().map_err(|_| invalid("tier repository", format!("{repository:?} is not a repository name")))?;
                if !parsed.as_str().starts_with(&format!("{publisher}/")) {
                    return Err(invalid("tier repository", format!("{repository:?} must be in the publisher's namespace {publisher}/")));
                }
                if !repositories.insert(repository.to_owned()) {
                    return Err(invalid("tiers", format!("two tiers use the repository {repository}: each tier needs its own")));
                }
                if t.tags.len() > MAX_TIER_TAGS {
                    return Err(invalid("tier tags", format!("at most {MAX_TIER_TAGS}")));
                }
                for tag in &t.tags {
                    // A pattern is a tag where `*` stands for any run of characters.
                    tag.replace('*', "x")
                        .parse::<Tag>()
                        .map_err(|_| invalid("tier tags", format!("{tag:?} is neither a tag nor a tag pattern (1.*, *-alpine)")))?;
                }
                let price = validate_price(&slug, t)?;
                if price.amount > 0 && t.access != Access::Licensed {
                    return Err(invalid(
                        "tier access",
                        format!("the paid tier {slug} must be licensed, or anyone could pull it without paying"),
                    ));
                }
                Ok(TierRecord {
                    // A tier is named by the entitlement it grants.
                    id: slipway_types::entitlement_id(publisher, listing_slug, &slug),
                    listing_id: String::new(),
                    name: text::line("tier name", &t.name, 1, 60)?,
                    description: text::multiline("tier description", &t.description, 1_000)?,
                    slug,
                    amount: price.amount,
                    currency: price.currency,
                    billing_period: price.billing_period.into(),
                    trial_days: price.trial_days,
                    access: t.access.as_str().into(),
                    repository: repository.to_owned(),
                    tags: json(&t.tags),
                    position: position as i64,
                })
            })
            .collect()
    }

    async fn store_listing(&self, record: &ListingRecord, tiers: &[TierRecord]) -> Result<(), CatalogError> {
        self.db.save_listing(record, tiers).await?;
        self.changed();
        self.refresh_platforms(&record.id).await?;
        Ok(())
    }

    /// Publishes a listing directly or withdraws it from the store: the moderator's (and
    /// the operator's) override of the review, recorded in the listing's thread like any
    /// move. Publishing is an approval (`Action::Approve`: not by a member of the
    /// publisher); a revoked listing stays revoked except for the operator.
    pub async fn set_published(&self, actor: Actor<'_>, publisher: &str, slug: &str, published: bool) -> Result<(), CatalogError> {
        let record =
            self.db.listing(publisher, slug).await?.ok_or_else(|| CatalogError::NotFound(format!("no product {publisher}/{slug}")))?;
        let from = status_of(&record);
        let (action, to, what) = if published {
            (Action::Approve, ListingStatus::Published, "published the product directly")
        } else {
            (Action::Moderate, ListingStatus::Unpublished, "withdrew the product from the store")
        };
        check(&actor.actor(), action, listing_resource(&record))?;
        if from.is_live() == published {
            return Ok(());
        }
        if from == ListingStatus::Revoked && !matches!(actor, Actor::Operator) {
            return Err(CatalogError::Conflict(format!("{} was revoked", record.name)));
        }
        self.record_move(&actor, &record, from, to, what, "").await
    }

    /// Moves a listing through moderation (see `moderation`): submitting, reviewing,
    /// approving, publishing, unpublishing, holding, revoking. Mail tells the other side.
    pub async fn move_listing(
        &self,
        viewer: &Viewer,
        publisher: &str,
        slug: &str,
        request: &MoveRequest,
        base_url: &str,
    ) -> Result<Listing, CatalogError> {
        let record = self.seen_record(Some(viewer), publisher, slug).await?;
        let from = status_of(&record);
        let message = text::multiline("message", &request.message, moderation::MAX_MESSAGE)?;
        let chosen = self.pick_move(viewer, &record, from, request.status, &message)?;
        if chosen.to == ListingStatus::Submitted {
            let tiers = self.db.tiers(&record.id).await?;
            self.check_submission(&record, &tiers).await?;
        }
        self.record_move(&Actor::User(viewer), &record, from, chosen.to, chosen.what, &message).await?;
        let from_publisher = chosen.action == Action::EditListing;
        self.tell_other_side(&record, &viewer.account.name, chosen.what, &message, from_publisher, base_url).await?;
        if matches!(chosen.to, ListingStatus::OnHold | ListingStatus::Revoked) || from == ListingStatus::OnHold {
            let why = if message.trim().is_empty() { format!("{} {}.", viewer.account.name, chosen.what) } else { message.clone() };
            self.tell_subscribers(&record, chosen.to, &why).await?;
        }
        self.listing(Some(viewer), publisher, slug).await
    }

    /// The move from `from` to `to` that the viewer may make (the first of the machine's
    /// in order), with its message present where it must be.
    fn pick_move(
        &self,
        viewer: &Viewer,
        record: &ListingRecord,
        from: ListingStatus,
        to: ListingStatus,
        message: &str,
    ) -> Result<&'static moderation::Move, CatalogError> {
        let mut candidates = moderation::moves(from, to).peekable();
        if candidates.peek().is_none() {
            let (from, to) = (from.label().to_lowercase(), to.label().to_lowercase());
            return Err(CatalogError::Conflict(format!("a listing that is {from} cannot become {to}")));
        }
        let actor = viewer.actor();
        let mut refusal = None;
        let chosen = candidates.find(|m| match decide(&actor, m.action, &listing_resource(record)).into_result() {
            Ok(()) => true,
            Err(r) => {
                refusal.get_or_insert(r);
                false
            }
        });
        let chosen = chosen.ok_or_else(|| refusal.map_or_else(|| CatalogError::Forbidden("not allowed".into()), CatalogError::from))?;
        if chosen.needs_message && message.trim().is_empty() {
            return Err(invalid("message", format!("say why: the publisher is told ({})", chosen.what)));
        }
        Ok(chosen)
    }

    /// Writes a move from the status read; a concurrent move that won makes this one a
    /// conflict, nothing written.
    pub(crate) async fn record_move(
        &self,
        actor: &Actor<'_>,
        record: &ListingRecord,
        from: ListingStatus,
        to: ListingStatus,
        what: &str,
        message: &str,
    ) -> Result<(), CatalogError> {
        let event_id = uuid::Uuid::new_v4().to_string();
        let (actor_id, actor_name) = match actor {
            Actor::Operator => (None, "operator"),
            Actor::Policy => (None, crate::vulnerability_policy::POLICY_ACTOR),
            Actor::User(viewer) => (Some(viewer.account.id.as_str()), viewer.account.name.as_str()),
        };
        let text = if message.is_empty() { what.to_owned() } else { format!("{what}: {message}") };
        let by = slipway_db::EventInput { id: &event_id, actor_id, actor_name, message: &text };
        if !self.db.move_listing(&record.id, from.as_str(), to.as_str(), &by).await? {
            return Err(CatalogError::Conflict(format!("{} changed meanwhile: reload it and try again", record.name)));
        }
        if from.is_live() || to.is_live() {
            // What the store shows of it changes (a hold's label, or the listing itself).
            self.changed();
        }
        if from.is_live() != to.is_live() {
            self.refresh_platforms(&record.id).await?;
        }
        if to.is_live() && !from.is_live() {
            // Reviewed with the listing: the versions its tiers offer now.
            let tiers = self.db.tiers(&record.id).await?;
            self.release_offered(&tiers).await?;
        }
        Ok(())
    }

    /// The versions `tiers` offer that customers cannot pull yet: offered tags never
    /// released, or pushed again since.
    async fn pending_of(&self, tiers: &[TierRecord]) -> Result<Vec<PendingVersion>, CatalogError> {
        let mut pending = Vec::new();
        for tier in tiers {
            let offered: Vec<String> = list(&tier.tags);
            let released: HashMap<String, String> = self.db.released_tags(&tier.repository).await?.into_iter().collect();
            for (tag, digest, _, _, pushed_at) in self.images.tagged_manifests(&tier.repository).await? {
                if release::offers(&offered, &tag) && released.get(&tag) != Some(&digest) {
                    let repository = tier.repository.clone();
                    pending.push(PendingVersion { tier: tier.name.clone(), repository, tag, digest, pushed_at });
                }
            }
        }
        Ok(pending)
    }

    /// Releases the versions `tiers` offer that customers cannot pull yet, with every
    /// manifest they reference; what was released.
    async fn release_offered(&self, tiers: &[TierRecord]) -> Result<Vec<PendingVersion>, CatalogError> {
        let pending = self.pending_of(tiers).await?;
        let mut manifests = Vec::new();
        for v in &pending {
            manifests.push((v.repository.clone(), v.digest.clone()));
            for child in self.images.manifest_children(&v.repository, &v.digest).await? {
                manifests.push((v.repository.clone(), child));
            }
        }
        let tags: Vec<_> = pending.iter().map(|v| (v.repository.clone(), v.tag.clone(), v.digest.clone())).collect();
        self.db.release(&tags, &manifests).await?;
        Ok(pending)
    }

    /// The versions of a live listing customers cannot pull yet (its publisher's members
    /// and staff).
    pub async fn pending_versions(&self, viewer: &Viewer, publisher: &str, slug: &str) -> Result<Vec<PendingVersion>, CatalogError> {
        let record = self.seen_record(Some(viewer), publisher, slug).await?;
        check(&viewer.actor(), Action::ViewListing, Resource::Listing { publisher, published: false })?;
        if !status_of(&record).is_live() {
            return Ok(Vec::new());
        }
        self.pending_of(&self.db.tiers(&record.id).await?).await
    }

    /// Releases to customers the new versions of a live listing (`Action::Approve`: not by
    /// its publisher's members), recorded in its thread and told to the publisher.
    pub async fn release_versions(
        &self,
        viewer: &Viewer,
        publisher: &str,
        slug: &str,
        base_url: &str,
    ) -> Result<Vec<PendingVersion>, CatalogError> {
        let record = self.seen_record(Some(viewer), publisher, slug).await?;
        check(&viewer.actor(), Action::Approve, listing_resource(&record))?;
        if !status_of(&record).is_live() {
            return Err(CatalogError::Conflict(format!(
                "{} is not in the store: its versions are released when it is published",
                record.name
            )));
        }
        let released = self.release_offered(&self.db.tiers(&record.id).await?).await?;
        if released.is_empty() {
            return Ok(released);
        }
        let versions: Vec<String> = released.iter().map(|v| format!("{}:{}", v.repository, v.tag)).collect();
        let text = format!("released {}", versions.join(", "));
        let event_id = uuid::Uuid::new_v4().to_string();
        let by =
            slipway_db::EventInput { id: &event_id, actor_id: Some(&viewer.account.id), actor_name: &viewer.account.name, message: &text };
        self.db.add_listing_message(&record.id, &by).await?;
        self.tell_other_side(&record, &viewer.account.name, &text, "", false, base_url).await?;
        Ok(released)
    }

    /// What a listing must have before it is submitted, every gap named at once: where it
    /// runs (eligibility), the publisher's support where the product runs on Docker
    /// Enterprise, the current publisher agreement accepted, and an image pushed for every
    /// tier (else its pull command would fail with "manifest unknown").
    async fn check_submission(&self, record: &ListingRecord, tiers: &[TierRecord]) -> Result<(), CatalogError> {
        let mut gaps = Vec::new();
        match RunsOn::parse(&record.runs_on) {
            None => gaps.push("say where it runs (runs_on: enterprise or community)".to_owned()),
            Some(RunsOn::Neither) => {
                gaps.push("a product that needs infrastructure that is not certified cannot be published in the store".to_owned())
            }
            Some(RunsOn::Enterprise) if record.support_url.is_empty() || record.support_email.is_empty() => {
                gaps.push("a product for Docker Enterprise needs its publisher's support: give a support URL and email".to_owned())
            }
            Some(_) => {}
        }
        let accepted = self.db.publisher_agreement_version(&record.publisher).await?.unwrap_or(0);
        if accepted < PUBLISHER_AGREEMENT_VERSION {
            gaps.push(format!("accept the publisher agreement (version {PUBLISHER_AGREEMENT_VERSION}) for {}", record.publisher));
        }
        if tiers.is_empty() {
            gaps.push("add at least one tier".to_owned());
        }
        for tier in tiers {
            let offered: Vec<String> = list(&tier.tags);
            let pushed = self.images.tagged_manifests(&tier.repository).await?;
            if !pushed.iter().any(|(tag, ..)| release::offers(&offered, tag)) {
                let which = if offered.is_empty() { String::new() } else { format!(" with one of the tags {}", offered.join(", ")) };
                gaps.push(format!("push an image to {}{which} for tier {}", tier.repository, tier.name));
            }
        }
        if gaps.is_empty() {
            return Ok(());
        }
        Err(CatalogError::Invalid(format!("{} cannot be submitted yet: {}", record.name, gaps.join("; "))))
    }

    /// Mails the other side of a review: the publisher's company address when a moderator
    /// acts, the moderators when the publisher does.
    async fn tell_other_side(
        &self,
        record: &ListingRecord,
        who: &str,
        what: &str,
        message: &str,
        from_publisher: bool,
        base_url: &str,
    ) -> Result<(), CatalogError> {
        let product = format!("{}/{}", record.publisher, record.slug);
        let said = if message.is_empty() { String::new() } else { format!("\n\n{message}\n") };
        let (recipients, link) = if from_publisher {
            (self.auth.staff_emails().await?, format!("{base_url}/moderation/{product}"))
        } else {
            let profile = self.db.publisher(&record.publisher).await?;
            (profile.map(|p| p.email).into_iter().filter(|e| !e.is_empty()).collect(), format!("{base_url}/publish/{product}"))
        };
        let subject = format!("{} ({product}): {who} {what}", record.name);
        let body = format!("Hello,\n\n{who} {what} on {} ({product}).{said}\nThe listing and its review thread: {link}\n", record.name);
        for recipient in recipients {
            self.auth.enqueue_mail(&recipient, &subject, &body).await?;
        }
        Ok(())
    }

    /// Adds a message to a listing's review thread (its publisher's editors and staff);
    /// the other side is mailed.
    pub async fn add_review_message(
        &self,
        viewer: &Viewer,
        publisher: &str,
        slug: &str,
        message: &str,
        base_url: &str,
    ) -> Result<Vec<ListingEvent>, CatalogError> {
        let record = self.seen_record(Some(viewer), publisher, slug).await?;
        let actor = viewer.actor();
        let from_publisher = decide(&actor, Action::EditListing, &listing_resource(&record)).is_allowed();
        if !from_publisher {
            check(&actor, Action::Moderate, listing_resource(&record))?;
        }
        let message = text::multiline("message", message, moderation::MAX_MESSAGE)?;
        if message.trim().is_empty() {
            return Err(invalid("message", "write something".into()));
        }
        let event_id = uuid::Uuid::new_v4().to_string();
        let by = slipway_db::EventInput {
            id: &event_id,
            actor_id: Some(&viewer.account.id),
            actor_name: &viewer.account.name,
            message: &message,
        };
        self.db.add_listing_message(&record.id, &by).await?;
        self.tell_other_side(&record, &viewer.account.name, "wrote", &message, from_publisher, base_url).await?;
        self.review_thread(viewer, publisher, slug).await
    }

    /// A listing's moves and messages, oldest first (the latest `MAX_THREAD`): for its
    /// publisher's members and staff.
    pub async fn review_thread(&self, viewer: &Viewer, publisher: &str, slug: &str) -> Result<Vec<ListingEvent>, CatalogError> {
        let record = visible(self.db.listing(publisher, slug).await?, publisher, slug)?;
        // The thread is never public, whatever the listing's status.
        check(&viewer.actor(), Action::ViewListing, Resource::Listing { publisher, published: false })?;
        let events = self.db.listing_events(&record.id, MAX_THREAD).await?;
        Ok(events
            .into_iter()
            .map(|e| ListingEvent {
                seq: e.seq,
                at: e.at,
                actor: e.actor_name,
                from: ListingStatus::parse(&e.from_status).unwrap_or(ListingStatus::Draft),
                to: ListingStatus::parse(&e.to_status).unwrap_or(ListingStatus::Draft),
                message: e.message,
            })
            .collect())
    }

    /// Everything a review page shows of a listing: the listing, its pending revision,
    /// the moves the viewer may make on each, and the thread (its members and staff).
    pub async fn review_state(&self, viewer: &Viewer, publisher: &str, slug: &str) -> Result<ReviewState, CatalogError> {
        let thread = self.review_thread(viewer, publisher, slug).await?;
        let record = visible(self.db.listing(publisher, slug).await?, publisher, slug)?;
        let revision = self.revision(viewer, publisher, slug).await?;
        let actor = viewer.actor();
        let allowed = |action| decide(&actor, action, &listing_resource(&record)).is_allowed();
        let listing_moves = moderation::options(status_of(&record), false, allowed);
        let revision_moves = revision.as_ref().map(|r| moderation::options(r.status, true, allowed)).unwrap_or_default();
        let pending = if status_of(&record).is_live() { self.pending_of(&self.db.tiers(&record.id).await?).await? } else { Vec::new() };
        let may_release = !pending.is_empty() && allowed(Action::Approve);
        let listing = self.assemble(record).await?;
        let security = self.security_standing(viewer, publisher, slug).await?;
        Ok(ReviewState { listing, revision, listing_moves, revision_moves, thread, pending, may_release, security })
    }

    /// Submissions waiting for a moderator, the longest waiting first (at most
    /// `MAX_QUEUE`); only those the viewer may moderate.
    pub async fn moderation_queue(&self, viewer: &Viewer) -> Result<Vec<QueuedSubmission>, CatalogError> {
        let actor = viewer.actor();
        let listings = self.db.moderation_queue(MAX_QUEUE).await?.into_iter().map(|(r, at)| (status_of(&r), false, r, at));
        let revisions = self
            .db
            .revision_queue(MAX_QUEUE)
            .await?
            .into_iter()
            .map(|(r, status, at)| (ListingStatus::parse(&status).unwrap_or(ListingStatus::Submitted), true, r, at));
        let mut queue: Vec<QueuedSubmission> = listings
            .chain(revisions)
            .filter(|(_, _, r, _)| decide(&actor, Action::Moderate, &listing_resource(r)).is_allowed())
            .map(|(status, revision, r, submitted_at)| QueuedSubmission {
                status,
                revision,
                publisher: r.publisher,
                slug: r.slug,
                name: r.name,
                submitted_at,
            })
            .collect();
        queue.sort_by(|a, b| (a.submitted_at, &a.publisher, &a.slug).cmp(&(b.submitted_at, &b.publisher, &b.slug)));
        queue.truncate(usize::try_from(MAX_QUEUE).unwrap_or(usize::MAX));
        Ok(queue)
    }

    /// Records that the viewer accepted the current publisher agreement for `org` (its
    /// owners and maintainers); `version` must be the current one.
    pub async fn accept_publisher_agreement(&self, viewer: &Viewer, org: &str, version: i64) -> Result<(), CatalogError> {
        check(&viewer.actor(), Action::EditPublisher, Resource::Organization { name: org })?;
        if version != PUBLISHER_AGREEMENT_VERSION {
            return Err(invalid(
                "version",
                format!("the current publisher agreement is version {PUBLISHER_AGREEMENT_VERSION}: read it and accept that one"),
            ));
        }
        Ok(self.db.accept_publisher_agreement(org, version, &viewer.account.id).await?)
    }

    /// The version of the publisher agreement `org` accepted last, if any: for its members
    /// and staff.
    pub async fn accepted_publisher_agreement(&self, viewer: &Viewer, org: &str) -> Result<Option<i64>, CatalogError> {
        check(&viewer.actor(), Action::ListMembers, Resource::Organization { name: org })?;
        Ok(self.db.publisher_agreement_version(org).await?)
    }

    pub async fn set_badges(&self, actor: Actor<'_>, publisher: &str, slug: &str, badges: &[Badge]) -> Result<(), CatalogError> {
        let record =
            self.db.listing(publisher, slug).await?.ok_or_else(|| CatalogError::NotFound(format!("no product {publisher}/{slug}")))?;
        check(&actor.actor(), Action::AwardBadges, listing_resource(&record))?;
        let badges: BTreeSet<&str> = badges.iter().map(|b| b.as_str()).collect();
        self.db.set_listing_badges(&record.id, &json(&badges), badges.contains(Badge::Certified.as_str())).await?;
        self.changed();
        Ok(())
    }

    pub async fn set_featured(&self, actor: Actor<'_>, publisher: &str, slug: &str, featured: bool) -> Result<(), CatalogError> {
        let record =
            self.db.listing(publisher, slug).await?.ok_or_else(|| CatalogError::NotFound(format!("no product {publisher}/{slug}")))?;
        check(&actor.actor(), Action::Feature, listing_resource(&record))?;
        self.db.set_listing_featured(&record.id, featured).await?;
        self.changed();
        Ok(())
    }

    pub async fn set_official(&self, actor: Actor<'_>, publisher: &str, slug: &str) -> Result<(), CatalogError> {
        let record =
            self.db.listing(publisher, slug).await?.ok_or_else(|| CatalogError::NotFound(format!("no product {publisher}/{slug}")))?;
        check(&actor.actor(), Action::MarkOfficial, listing_resource(&record))?;
        self.db.set_listing_trust_level(&record.id, TrustLevel::Official.as_str()).await?;
        self.changed();
        Ok(())
    }

    // ---- licenses --------------------------------------------------------------------------

    /// Adds a new version of the listing's license agreement; customers accept it anew.
    pub async fn set_license(&self, viewer: &Viewer, publisher: &str, slug: &str, license: &License) -> Result<i64, CatalogError> {
        let record =
            self.db.listing(publisher, slug).await?.ok_or_else(|| CatalogError::NotFound(format!("no product {publisher}/{slug}")))?;
        check(&viewer.actor(), Action::ChangeLicense, listing_resource(&record))?;
        let url = text::web_url("license url", &license.url, false)?;
        let body = text::multiline("license text", &license.text, 100_000)?;
        if url.is_empty() && body.is_empty() {
            return Err(invalid("license", "needs a link or a text".into()));
        }
        let version = self.db.add_license(&record.id, &url, &body).await?;
        self.changed();
        Ok(version)
    }

    /// The listing's current license agreement, if it has one.
    pub async fn license(&self, listing: &Listing) -> Result<Option<License>, CatalogError> {
        if listing.license_version == 0 {
            return Ok(None);
        }
        Ok(self.db.license(&listing.id, listing.license_version).await?.map(license_from))
    }

    // ---- search and browse --------------------------------------------------------------------

    /// Published listings matching `params`; `offset`/`limit` page through them.
    pub async fn search(&self, params: &SearchParams, offset: i64, limit: i64) -> Result<SearchPage, CatalogError> {
        let (offset, limit) = (offset.max(0) as usize, limit.clamp(1, 100) as usize);
        let index = self.index().await?;
        let hits = index.search.search(&params.query(&index.search)?, offset, limit);
        Ok(SearchPage { items: hits.items.into_iter().cloned().collect(), total: hits.total as i64 })
    }

    /// Typeahead: up to `limit` suggestions for what is being typed.
    pub async fn suggest(&self, q: &str, limit: usize) -> Result<Vec<Suggestion>, CatalogError> {
        let params = SearchParams { q: q.to_owned(), ..SearchParams::default() };
        if !params.has_words() {
            return Ok(Vec::new());
        }
        let index = self.index().await?;
        let typed = params.typed_words(&index.search, true)?;
        Ok(index.typeahead.suggest(&typed, limit.clamp(1, 20)).into_iter().map(|rank| index.search.item(rank).suggestion()).collect())
    }

    /// Builds this replica's search index ahead of the first search; returns how many
    /// listings it holds.
    pub async fn prepare_search(&self) -> Result<usize, CatalogError> {
        Ok(self.index().await?.search.len())
    }

    /// Whether searches are answered without waiting for a first build of the index.
    pub fn search_ready(&self) -> bool {
        self.index_built.load(Ordering::Acquire)
    }

    /// This replica's indexes of the published catalog, built from the database on first
    /// use, and again after a change or once stale.
    async fn index(&self) -> Result<Arc<CatalogIndex>, CatalogError> {
        let (db, built) = (self.db.clone(), self.index_built.clone());
        let build = move || async move {
            let (records, tier_records) = futures::try_join!(db.published_listings(), db.published_tiers())?;
            // A few seconds of CPU over 100,000 listings: off the request threads.
            let build = move || {
                let mut tiers: HashMap<String, Vec<Tier>> = HashMap::new();
                for t in tier_records {
                    tiers.entry(t.listing_id.clone()).or_default().push(tier_from(t));
                }
                let tags: Vec<String> = records.iter().map(|r| tag_text(&r.search_tags, &r.category)).collect();
                let typeahead = TypeaheadIndex::build(records.iter().zip(&tags).map(|(r, tags)| IndexedListing { name: &r.name, tags }));
                let documents = records.into_iter().zip(tags).map(|(r, tags)| {
                    let own = tiers.remove(&r.id).unwrap_or_default();
                    document(r, tags, own)
                });
                let search = SearchIndex::build(documents.collect());
                tracing::debug!(listings = search.len(), search_bytes = search.bytes(), "search index built");
                Arc::new(CatalogIndex { search, typeahead })
            };
            let index =
                tokio::task::spawn_blocking(build).await.map_err(|e| CatalogError::Internal(format!("building the search index: {e}")))?;
            built.store(true, Ordering::Release);
            Ok(index)
        };
        self.index.get_or_compute("index".into(), build).await
    }

    /// Featured listings for the home page.
    pub async fn featured(&self, limit: usize) -> Result<Vec<ListingSummary>, CatalogError> {
        let index = self.index().await?;
        let query = Query { filters: vec![Filter::Featured], ..Query::default() };
        Ok(index.search.search(&query, 0, limit).items.into_iter().cloned().collect())
    }

    /// After any change that search results show.
    fn changed(&self) {
        self.products.clear();
        self.index.clear();
    }

    /// Every category with how many published products it has.
    pub async fn categories(&self) -> Result<Vec<(&'static str, &'static str, i64)>, CatalogError> {
        let counts = self.db.category_counts().await?;
        Ok(CATEGORIES.iter().map(|(slug, title)| (*slug, *title, counts.iter().find(|(c, _)| c == slug).map_or(0, |(_, n)| *n))).collect())
    }

    /// Listings with their tiers, read in one query for the whole page.
    async fn assemble_all(&self, rows: Vec<ListingRecord>) -> Result<Vec<Listing>, CatalogError> {
        let ids: Vec<String> = rows.iter().map(|r| r.id.clone()).collect();
        let mut tiers: HashMap<String, Vec<Tier>> = HashMap::new();
        for t in self.db.tiers_of(&ids).await? {
            tiers.entry(t.listing_id.clone()).or_default().push(tier_from(t));
        }
        Ok(rows
            .into_iter()
            .map(|r| {
                let own = tiers.remove(&r.id).unwrap_or_default();
                listing_from(r, own)
            })
            .collect())
    }

    // ---- versions ------------------------------------------------------------------------------

    /// Every tag offered by the listing's tiers, newest first.
    pub async fn versions(&self, listing: &Listing) -> Result<Vec<Version>, CatalogError> {
        let mut out = Vec::new();
        for tier in &listing.tiers {
            for (tag, digest, _media_type, content, pushed_at) in self.images.tagged_manifests(&tier.repository).await? {
                if !release::offers(&tier.tags, &tag) {
                    continue;
                }
                let summary = self.summaries.summary(&self.images, self.store.as_ref(), &tier.repository, &digest, &content).await?;
                out.push(Version {
                    tier: tier.name.clone(),
                    tag,
                    digest,
                    compressed_size: summary.compressed_size,
                    platforms: summary.platforms,
                    pushed_at,
                });
            }
        }
        Ok(out)
    }

    /// Recomputes the platforms filter from the images the tiers offer.
    pub async fn refresh_platforms(&self, listing_id: &str) -> Result<(), CatalogError> {
        let Some(record) = self.db.listing_by_id(listing_id).await? else { return Ok(()) };
        let listing = self.assemble(record).await?;
        let platforms: BTreeSet<String> = self.versions(&listing).await?.into_iter().flat_map(|v| v.platforms).collect();
        let platforms = json(&platforms);
        if platforms != json(&listing.platforms) {
            self.db.set_listing_platforms(listing_id, &platforms).await?;
            self.changed();
        }
        Ok(())
    }

    /// Folds the pulls the registry recorded since the last run into the listings' pulls
    /// (popularity), at most `PULL_FOLD_BATCH` repositories a run; returns how many
    /// repositories were folded. A periodic job: replicas running it at once still count
    /// every pull once (`CatalogDb::fold_pulls`). The search index shows the new counts
    /// at its next refresh.
    pub async fn count_pulls(&self) -> Result<usize, CatalogError> {
        Ok(self.db.fold_pulls(PULL_FOLD_BATCH).await?)
    }

    // ---- what customers get -----------------------------------------------------------------

    /// The tier of a published listing that a customer may get, and the listing, checking
    /// that `accepted_license` is its current agreement (when it has one): the first steps
    /// of "Get Image" and of a checkout.
    pub async fn tier_to_get(
        &self,
        viewer: &Viewer,
        publisher: &str,
        slug: &str,
        tier: &str,
        accepted_license: Option<i64>,
    ) -> Result<(Listing, Tier), CatalogError> {
        let listing = self.listing(Some(viewer), publisher, slug).await?;
        match listing.status {
            ListingStatus::Published => {}
            ListingStatus::OnHold => {
                return Err(CatalogError::Conflict(format!(
                    "{} is on hold for unfixed vulnerabilities: it takes no new subscriptions until its publisher fixes them",
                    listing.name
                )));
            }
            _ => return Err(CatalogError::Invalid(format!("{} is not published", listing.name))),
        }
        let chosen = listing
            .tiers
            .iter()
            .find(|t| t.slug == tier)
            .cloned()
            .ok_or_else(|| CatalogError::NotFound(format!("{} has no tier {tier:?}", listing.name)))?;
        if listing.license_version > 0 && accepted_license != Some(listing.license_version) {
            return Err(CatalogError::Invalid(format!(
                "accept the license agreement (version {}) to get {}",
                listing.license_version, listing.name
            )));
        }
        Ok((listing, chosen))
    }

    /// The `docker pull` command of a tier's repository on `registry_host`: its first
    /// offered tag (`tags_json`, a JSON list), else its first pushed tag, else latest.
    pub async fn pull_command(&self, repository: &str, tags_json: &str, registry_host: &str) -> Result<String, CatalogError> {
        let tags: Vec<String> = serde_json::from_str(tags_json).unwrap_or_default();
        let tag = match tags.iter().find(|t| !t.contains('*')) {
            Some(tag) => tag.clone(),
            None => self
                .images
                .tagged_manifests(repository)
                .await?
                .into_iter()
                .map(|t| t.0)
                .find(|t| release::offers(&tags, t))
                .unwrap_or_else(|| "latest".to_owned()),
        };
        Ok(format!("docker pull {registry_host}/{repository}:{tag}"))
    }
}

fn is_media_id(id: &str) -> bool {
    id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
}

fn json<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string(value).expect("lists serialise")
}

fn list(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

pub fn media_url(id: &str) -> String {
    format!("/media/{id}")
}

/// Whether the policy lets `viewer` (None: anonymous) see `listing`: drafts are for the
/// publisher's members and staff.
/// The fields a revision changes, by the names the API uses.
fn changed_fields(live: &Listing, proposed: &Listing) -> Vec<String> {
    let json = |l: &Listing| serde_json::to_value(l).unwrap_or_default();
    let (live, proposed) = (json(live), json(proposed));
    REVISED_FIELDS.iter().filter(|f| live.get(**f) != proposed.get(**f)).map(|f| (*f).to_owned()).collect()
}

/// What a publisher writes of a listing (`ListingInput`), as `Listing` names it.
const REVISED_FIELDS: [&str; 16] = [
    "name",
    "logo_url",
    "short_description",
    "category",
    "search_tags",
    "long_description",
    "screenshots",
    "support_url",
    "support_email",
    "support_info",
    "sla",
    "install_instructions",
    "product_type",
    "runs_on",
    "public_scan_summary",
    "tiers",
];

pub(crate) fn status_of(record: &ListingRecord) -> ListingStatus {
    ListingStatus::parse(&record.status).unwrap_or(ListingStatus::Draft)
}

fn may_see(viewer: Option<&Viewer>, listing: &ListingRecord) -> bool {
    let actor = viewer.map_or(slipway_policy::Actor::ANONYMOUS, Viewer::actor);
    decide(&actor, Action::ViewListing, &listing_resource(listing)).is_allowed()
}

/// What was found, or the same "no product" whether it does not exist or may not be seen.
fn visible<T>(found: Option<T>, publisher: &str, slug: &str) -> Result<T, CatalogError> {
    found.ok_or_else(|| CatalogError::NotFound(format!("no product {publisher}/{slug}")))
}

fn license_from(l: LicenseRecord) -> License {
    License { version: l.version, url: l.url, text: l.body }
}

fn publisher_from(p: PublisherRecord) -> Publisher {
    Publisher {
        logo_url: p.logo.as_deref().map(media_url),
        org: p.org,
        display_name: p.display_name,
        legal_name: p.legal_name,
        website: p.website,
        phone: p.phone,
        email: p.email,
        email_verified: p.email_verified_at.is_some(),
        story: p.story,
        verified: p.verified_at.is_some(),
    }
}

fn tier_from(t: TierRecord) -> Tier {
    Tier {
        access: Access::parse(&t.access).unwrap_or(Access::Licensed),
        tags: list(&t.tags),
        slug: t.slug,
        name: t.name,
        description: t.description,
        amount: t.amount,
        currency: t.currency,
        billing_period: t.billing_period,
        trial_days: t.trial_days,
        repository: t.repository,
    }
}

fn listing_from(r: ListingRecord, tiers: Vec<Tier>) -> Listing {
    Listing {
        logo_url: r.logo.as_deref().map(media_url),
        search_tags: list(&r.search_tags),
        screenshots: list(&r.screenshots).iter().map(|id| media_url(id)).collect(),
        product_type: ProductType::parse(&r.product_type).unwrap_or(ProductType::Image),
        trust_level: TrustLevel::parse(&r.trust_level).unwrap_or(TrustLevel::Community),
        badges: list(&r.badges).iter().filter_map(|b| Badge::parse(b)).collect(),
        platforms: list(&r.platforms),
        status: status_of(&r),
        runs_on: RunsOn::parse(&r.runs_on),
        public_scan_summary: r.public_scan_summary != 0,
        id: r.id,
        publisher: r.publisher,
        publisher_name: r.publisher_name,
        slug: r.slug,
        name: r.name,
        short_description: r.short_description,
        category: r.category,
        long_description: r.long_description,
        support_url: r.support_url,
        support_email: r.support_email,
        support_info: r.support_info,
        sla: r.sla,
        install_instructions: r.install_instructions,
        tiers,
        license_version: r.license_version,
        pulls: r.pulls,
        updated_at: r.updated_at,
        published_at: r.published_at,
    }
}

/// What search knows of a listing: its text, the filters it passes, and its summary.
fn document(mut r: ListingRecord, tags: String, tiers: Vec<Tier>) -> Document<ListingSummary> {
    let mut filters = vec![
        Filter::Category(r.category.clone()),
        Filter::ProductType(r.product_type.clone()),
        Filter::TrustLevel(r.trust_level.clone()),
        Filter::Publisher(r.publisher.clone()),
    ];
    filters.extend(list(&r.platforms).into_iter().map(Filter::Platform));
    let flags = [(r.certified, Filter::Certified), (r.featured, Filter::Featured), (r.free, Filter::Free), (r.paid, Filter::Paid)];
    filters.extend(flags.into_iter().filter(|(on, _)| *on == 1).map(|(_, filter)| filter));
    let fields = [
        r.name.clone(),
        tags,
        format!("{} {}", r.publisher_name, r.publisher),
        r.short_description.clone(),
        std::mem::take(&mut r.long_description),
    ];
    Document {
        id: r.id.clone(),
        fields,
        filters: filters.iter().map(Filter::key).collect(),
        pulls: r.pulls,
        updated_at: r.updated_at,
        item: listing_from(r, tiers).into(),
    }
}

/// What search and typeahead index as a listing's tags: its search tags and its
/// category's title.
fn tag_text(search_tags: &str, category: &str) -> String {
    format!("{} {}", list(search_tags).join(" "), category_title(category).unwrap_or_default())
}

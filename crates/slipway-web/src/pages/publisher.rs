//! The publisher portal: the publisher profile, the listing editor and its preview.

use askama::Template;
use axum::extract::{Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use slipway_catalog::media::MediaKind;
use slipway_catalog::text::markdown_html;
use slipway_catalog::{
    Access, CATEGORIES, CatalogError, License, Listing, ListingInput, ProductType, Publisher, PublisherInput, ReviewState, RunsOn, Tier,
    Viewer,
};
use slipway_types::ErrorKind;

use crate::WebState;
use crate::session::mail_base_url;

use super::forms::{Submitted, input_of, listing_input, listing_input_lenient};
use super::store::ProductPage;
use super::{Chrome, PageError, PageResult, Visit, filters};

/// Blank tier rows the listing editor offers beyond the existing tiers.
const SPARE_TIERS: usize = 2;

#[derive(Template)]
#[template(path = "portal.html")]
struct PortalPage {
    chrome: Chrome,
    publishers: Vec<(Publisher, Vec<Listing>)>,
}

pub(super) async fn portal(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require("/publish")?;
    let mut publishers = Vec::new();
    for p in state.catalog.editable_publishers(viewer).await? {
        let listings = state.catalog.listings_of(Some(viewer), &p.org).await?;
        publishers.push((p, listings));
    }
    visit.render(PortalPage { chrome: visit.chrome_clone(), publishers })
}

#[derive(Template)]
#[template(path = "profile_form.html")]
struct ProfileFormPage {
    chrome: Chrome,
    org: String,
    existing: bool,
    input: PublisherInput,
    logo_url: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
pub(super) struct OrgQuery {
    org: Option<String>,
}

pub(super) async fn profile_form(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<OrgQuery>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.require("/publish/profile")?;
    let org = query.org.unwrap_or_default();
    let existing = if org.is_empty() { None } else { state.catalog.publisher(&org).await? };
    let input = match &existing {
        Some(p) => PublisherInput {
            display_name: p.display_name.clone(),
            legal_name: p.legal_name.clone(),
            website: p.website.clone(),
            phone: p.phone.clone(),
            email: p.email.clone(),
            logo: p.logo_url.as_deref().and_then(|u| u.rsplit('/').next()).map(str::to_owned),
            story: p.story.clone(),
        },
        None => PublisherInput {
            display_name: String::new(),
            legal_name: String::new(),
            website: String::new(),
            phone: String::new(),
            email: String::new(),
            logo: None,
            story: String::new(),
        },
    };
    let logo_url = existing.as_ref().and_then(|p| p.logo_url.clone());
    visit.render(ProfileFormPage { chrome: visit.chrome_clone(), org, existing: existing.is_some(), input, logo_url, error: None })
}

pub(super) async fn save_profile(State(state): State<WebState>, headers: HeaderMap, request: Request) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require("/publish/profile")?;
    let form = Submitted::from_request(request).await?;
    visit.check_csrf(&form.get("csrf"))?;
    let org = form.get("org").trim().to_owned();
    let mut input = PublisherInput {
        display_name: form.get("display_name"),
        legal_name: form.get("legal_name"),
        website: form.get("website"),
        phone: form.get("phone"),
        email: form.get("email"),
        logo: Some(form.get("logo_id")).filter(|l| !l.is_empty()),
        story: form.get("story"),
    };
    let result = async {
        if let Some(bytes) = form.file("logo") {
            input.logo = Some(state.catalog.upload_media(viewer, MediaKind::Logo, bytes).await?);
        }
        state.catalog.save_publisher(viewer, &org, &input, &mail_base_url(&state.auth)).await
    }
    .await;
    match result {
        Ok(_) => Ok(Redirect::to("/publish").into_response()),
        Err(e) if matches!(e.kind(), ErrorKind::Invalid | ErrorKind::Forbidden | ErrorKind::Conflict) => {
            let logo_url = input.logo.as_deref().map(slipway_catalog::media_url);
            let page = ProfileFormPage { chrome: visit.chrome_clone(), org, existing: false, input, logo_url, error: Some(e.to_string()) };
            visit.render_refused(e.kind(), page)
        }
        Err(e) => Err(e.into()),
    }
}

/// One row of the editor's tier table.
struct TierRow {
    index: usize,
    tier: Tier,
    /// The price as typed, e.g. "49.00" (USD) or "1500" (JPY).
    price: String,
}

#[derive(Template)]
#[template(path = "listing_form.html")]
struct ListingFormPage {
    chrome: Chrome,
    org: String,
    /// None while creating.
    slug: Option<String>,
    input: ListingInput,
    tiers: Vec<TierRow>,
    license: License,
    logo_url: Option<String>,
    error: Option<String>,
    categories: &'static [(&'static str, &'static str)],
    product_types: &'static [ProductType],
    runs_on_choices: &'static [RunsOn],
    accesses: &'static [Access],
    /// An existing listing's review (statuses, moves, thread), and where its form posts.
    review: Option<ReviewState>,
    action: String,
}

impl ListingFormPage {
    /// The upload limits, for the form's hint and the check the browser makes before
    /// sending (`static/app.js`); the server enforces both.
    fn max_form_bytes(&self) -> usize {
        super::FORM_LIMIT
    }

    fn max_image_bytes(&self) -> usize {
        slipway_catalog::media::MAX_UPLOAD_BYTES
    }

    fn limits_hint(&self) -> String {
        format!(
            "Images: PNG, JPEG or WebP, at most {} each; everything sent at once at most {}.",
            slipway_types::human_bytes(self.max_image_bytes() as u64),
            slipway_types::human_bytes(self.max_form_bytes() as u64)
        )
    }
}

fn blank_tier() -> Tier {
    Tier {
        slug: String::new(),
        name: String::new(),
        description: String::new(),
        amount: 0,
        currency: "USD".into(),
        billing_period: "free".into(),
        trial_days: 0,
        access: Access::Public,
        repository: String::new(),
        tags: Vec::new(),
    }
}

fn tier_rows(tiers: &[Tier]) -> Vec<TierRow> {
    tiers
        .iter()
        .cloned()
        .chain(std::iter::repeat_with(blank_tier).take(SPARE_TIERS))
        .enumerate()
        .map(|(index, tier)| TierRow {
            index,
            // With the currency's own decimal places: "49.00" USD, "1500" JPY, "12.345" KWD.
            price: match tier.price() {
                Some(price) => price.amount_string(),
                None if tier.is_free() => String::new(),
                // A code that is not ISO 4217 is refused on saving; the minor units show as typed.
                None => tier.amount.to_string(),
            },
            tier,
        })
        .collect()
}

pub(super) async fn new_listing_form(State(state): State<WebState>, headers: HeaderMap, Path(org): Path<String>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.require(&format!("/publish/{org}/products/new"))?;
    visit.render(new_listing_page(&visit, org, None))
}

/// The empty editor of a new product, with `error` when a submission was refused.
fn new_listing_page(visit: &Visit, org: String, error: Option<String>) -> ListingFormPage {
    let input = ListingInput {
        name: String::new(),
        logo: None,
        short_description: String::new(),
        category: "databases".into(),
        search_tags: Vec::new(),
        long_description: String::new(),
        screenshots: Vec::new(),
        support_url: String::new(),
        support_email: String::new(),
        support_info: String::new(),
        sla: String::new(),
        install_instructions: String::new(),
        product_type: ProductType::Image,
        runs_on: None,
        public_scan_summary: false,
        tiers: Vec::new(),
    };
    let license = License { version: 0, url: String::new(), text: String::new() };
    listing_form(visit, org, None, input, license, error)
}

fn listing_form(
    visit: &Visit,
    org: String,
    slug: Option<String>,
    input: ListingInput,
    license: License,
    error: Option<String>,
) -> ListingFormPage {
    ListingFormPage {
        chrome: visit.chrome_clone(),
        tiers: tier_rows(&input.tiers),
        logo_url: input.logo.as_deref().map(slipway_catalog::media_url),
        org,
        slug,
        input,
        license,
        error,
        categories: CATEGORIES,
        product_types: ProductType::ALL,
        runs_on_choices: RunsOn::ALL,
        accesses: Access::ALL,
        review: None,
        action: String::new(),
    }
}

pub(super) async fn edit_listing_form(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((org, slug)): Path<(String, String)>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require(&format!("/publish/{org}/products/{slug}"))?;
    let page = edit_listing_page(&state, &visit, viewer, org, slug, None).await?;
    visit.render(page)
}

/// The editor of a saved product as stored, with `error` when a submission was refused.
async fn edit_listing_page(
    state: &WebState,
    visit: &Visit,
    viewer: &Viewer,
    org: String,
    slug: String,
    error: Option<String>,
) -> Result<ListingFormPage, PageError> {
    let review = state.catalog.review_state(viewer, &org, &slug).await?;
    let license = state.catalog.license(&review.listing).await?.unwrap_or(License { version: 0, url: String::new(), text: String::new() });
    // A pending change is what the publisher goes on editing; the live listing stays.
    let input = input_of(review.revision.as_ref().map_or(&review.listing, |r| &r.listing));
    let mut page = listing_form(visit, org.clone(), Some(slug.clone()), input, license, error);
    page.action = format!("/publish/{org}/products/{slug}/review");
    page.review = Some(review);
    Ok(page)
}

pub(super) async fn save_new_listing(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    request: Request,
) -> PageResult {
    save_listing_form(state, headers, org, None, request).await
}

pub(super) async fn save_listing(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((org, slug)): Path<(String, String)>,
    request: Request,
) -> PageResult {
    save_listing_form(state, headers, org, Some(slug), request).await
}

async fn save_listing_form(state: WebState, headers: HeaderMap, org: String, slug: Option<String>, request: Request) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require(&format!("/publish/{org}/products/new"))?;
    let form = match Submitted::from_request(request).await {
        Ok(form) => form,
        // Too large to read: the editor again as stored, with the limits, still signed in.
        Err(PageError::Refused(ErrorKind::TooLarge, message)) => {
            let page = match slug {
                Some(slug) => edit_listing_page(&state, &visit, viewer, org, slug, Some(message)).await?,
                None => new_listing_page(&visit, org, Some(message)),
            };
            return visit.render_refused(ErrorKind::TooLarge, page);
        }
        Err(e) => return Err(e),
    };
    visit.check_csrf(&form.get("csrf"))?;
    let license = License { version: 0, url: form.get("license_url"), text: form.get("license_text") };
    let mut input = match listing_input(&form) {
        Ok(input) => input,
        Err(e) => {
            let fallback = ListingInput { tiers: Vec::new(), ..listing_input_lenient(&form) };
            return visit.render_refused(e.kind(), listing_form(&visit, org, slug, fallback, license, Some(e.to_string())));
        }
    };
    let uploaded = async {
        if let Some(bytes) = form.file("logo") {
            input.logo = Some(state.catalog.upload_media(viewer, MediaKind::Logo, bytes).await?);
        }
        for (name, bytes) in &form.files {
            if name == "screenshots" {
                input.screenshots.push(state.catalog.upload_media(viewer, MediaKind::Screenshot, bytes.clone()).await?);
            }
        }
        Ok::<(), CatalogError>(())
    }
    .await;
    if let Err(e @ CatalogError::Invalid(_)) = uploaded {
        return visit.render_refused(e.kind(), listing_form(&visit, org, slug, input, license, Some(e.to_string())));
    }
    uploaded?;
    if form.get("action") == "preview" {
        return preview(&state, &visit, viewer, &org, slug.as_deref(), input, license).await;
    }
    let saved = state.catalog.save_listing(viewer, &org, slug.as_deref(), &input).await;
    let listing = match saved {
        Ok(listing) => listing,
        Err(e) if matches!(e.kind(), ErrorKind::Invalid | ErrorKind::Conflict) => {
            return visit.render_refused(e.kind(), listing_form(&visit, org, slug, input, license, Some(e.to_string())));
        }
        Err(e) => return Err(e.into()),
    };
    let current = state.catalog.license(&listing).await?;
    let changed = current.as_ref().is_none_or(|c| c.url != license.url.trim() || c.text != license.text.trim());
    if changed
        && !(license.url.trim().is_empty() && license.text.trim().is_empty())
        && let Err(e) = state.catalog.set_license(viewer, &org, &listing.slug, &license).await
    {
        if e.kind() == ErrorKind::Internal {
            return Err(e.into());
        }
        let page = listing_form(&visit, org, Some(listing.slug.clone()), input, license, Some(e.to_string()));
        return visit.render_refused(e.kind(), page);
    }
    Ok(Redirect::to(&format!("/publish/{org}/products/{}", listing.slug)).into_response())
}

/// Renders the product page from unsaved editor input.
async fn preview(
    state: &WebState,
    visit: &Visit,
    viewer: &Viewer,
    org: &str,
    slug: Option<&str>,
    input: ListingInput,
    license: License,
) -> PageResult {
    let publisher = state.catalog.publisher(org).await?;
    let listing = state.catalog.preview_listing(viewer, org, slug, input).await?;
    let has_license = !(license.url.is_empty() && license.text.is_empty());
    let page = ProductPage {
        chrome: visit.chrome_clone(),
        publisher_verified: publisher.is_some_and(|p| p.verified),
        long_html: markdown_html(&listing.long_description),
        install_html: visit.install_html(&markdown_html(&listing.install_instructions)),
        license: has_license.then_some(license),
        error: None,
        preview: true,
        owned: Vec::new(),
        listing,
    };
    visit.render(page)
}

//! The store front: home, search, categories, product pages, publishers, subscriptions.

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use slipway_catalog::text::markdown_html;
use slipway_catalog::{
    CATEGORIES, CatalogError, License, Listed, Listing, ListingSummary, Product, ProductType, Publisher, SearchParams, TrustLevel, Version,
};
use slipway_security::SecuritySummary;
use slipway_types::ErrorKind;

use crate::WebState;

use super::{Chrome, PageError, PageResult, Visit, filters, status_of};

const PAGE_SIZE: i64 = 20;

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    featured: Vec<ListingSummary>,
    popular: Vec<ListingSummary>,
    categories: Vec<(&'static str, &'static str, i64)>,
}

pub(super) async fn home(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let featured = state.catalog.featured(8).await?;
    let popular = state.catalog.search(&SearchParams { sort: Some("popular".into()), ..Default::default() }, 0, 8).await?.items;
    let categories = state.catalog.categories().await?;
    visit.render(HomePage { chrome: visit.chrome_clone(), featured, popular, categories })
}

#[derive(Deserialize, Default)]
pub(super) struct SearchForm {
    #[serde(flatten)]
    params: SearchParamsForm,
    page: Option<String>,
}

/// The search page's parameters; all strings so a hand-edited URL still gets a page.
#[derive(Deserialize, Default, Clone)]
struct SearchParamsForm {
    #[serde(default)]
    q: String,
    category: Option<String>,
    certified: Option<String>,
    #[serde(rename = "type")]
    product_type: Option<String>,
    trust: Option<String>,
    pricing: Option<String>,
    platform: Option<String>,
    sort: Option<String>,
}

impl SearchParamsForm {
    fn params(&self) -> SearchParams {
        SearchParams {
            q: self.q.clone(),
            category: self.category.clone(),
            certified: self.certified.clone(),
            product_type: self.product_type.clone(),
            trust: self.trust.clone(),
            pricing: self.pricing.clone(),
            platform: self.platform.clone(),
            publisher: None,
            sort: self.sort.clone(),
        }
    }

    fn certified(&self) -> bool {
        matches!(self.certified.as_deref(), Some("1" | "true" | "on"))
    }

    fn value(v: &Option<String>) -> &str {
        v.as_deref().unwrap_or_default()
    }

    /// This search's URL at another page.
    fn url(&self, page: i64) -> String {
        let mut pairs: Vec<(&str, &str)> = vec![("q", &self.q)];
        for (k, v) in [
            ("category", &self.category),
            ("certified", &self.certified),
            ("type", &self.product_type),
            ("trust", &self.trust),
            ("pricing", &self.pricing),
            ("platform", &self.platform),
            ("sort", &self.sort),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                pairs.push((k, v));
            }
        }
        let page = page.to_string();
        pairs.push(("page", &page));
        format!("/search?{}", serde_urlencoded::to_string(pairs).unwrap_or_default())
    }
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchResultsPage {
    chrome: Chrome,
    heading: String,
    form: SearchParamsForm,
    certified: bool,
    results: Vec<ListingSummary>,
    total: i64,
    page: i64,
    pages: i64,
    prev_url: Option<String>,
    next_url: Option<String>,
    error: Option<String>,
    categories: &'static [(&'static str, &'static str)],
    product_types: &'static [ProductType],
    trust_levels: &'static [TrustLevel],
    platforms: &'static [&'static str],
}

const PLATFORMS: &[&str] = &["linux/amd64", "linux/arm64", "linux/arm/v7", "linux/s390x", "linux/ppc64le", "windows/amd64"];

pub(super) async fn search(State(state): State<WebState>, headers: HeaderMap, Query(form): Query<SearchForm>) -> PageResult {
    let heading =
        if form.params.q.trim().is_empty() { "All products".to_owned() } else { format!("Results for “{}”", form.params.q.trim()) };
    search_page(state, headers, form, heading).await
}

pub(super) async fn category(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Query(mut form): Query<SearchForm>,
) -> PageResult {
    let title = slipway_catalog::category_title(&slug)
        .ok_or_else(|| PageError::Refused(ErrorKind::NotFound, format!("There is no category {slug:?}.")))?;
    form.params.category = Some(slug);
    search_page(state, headers, form, title.to_owned()).await
}

async fn search_page(state: WebState, headers: HeaderMap, form: SearchForm, heading: String) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let page = form.page.as_deref().and_then(|p| p.parse::<i64>().ok()).unwrap_or(1).clamp(1, 500);
    let (results, total, error) = match state.catalog.search(&form.params.params(), (page - 1) * PAGE_SIZE, PAGE_SIZE).await {
        Ok(found) => (found.items, found.total, None),
        Err(CatalogError::Invalid(m)) => (Vec::new(), 0, Some(m)),
        Err(e) => return Err(e.into()),
    };
    let pages = (total + PAGE_SIZE - 1) / PAGE_SIZE;
    let status = if error.is_some() { status_of(ErrorKind::Invalid) } else { StatusCode::OK };
    visit.render_status(
        status,
        SearchResultsPage {
            chrome: visit.chrome_with_query(&form.params.q),
            heading,
            certified: form.params.certified(),
            prev_url: (page > 1).then(|| form.params.url(page - 1)),
            next_url: (page < pages).then(|| form.params.url(page + 1)),
            form: form.params,
            results,
            total,
            page,
            pages,
            error,
            categories: CATEGORIES,
            product_types: ProductType::ALL,
            trust_levels: TrustLevel::ALL,
            platforms: PLATFORMS,
        },
    )
}

#[derive(Template)]
#[template(path = "product.html")]
pub(super) struct ProductPage {
    pub(super) chrome: Chrome,
    pub(super) listing: Listing,
    pub(super) publisher_verified: bool,
    pub(super) long_html: String,
    pub(super) install_html: String,
    pub(super) license: Option<License>,
    pub(super) error: Option<String>,
    /// Shown to the publisher's members while the listing is a draft.
    pub(super) preview: bool,
    /// The tiers (by name) the reader holds a subscription to that grants access now.
    pub(super) owned: Vec<String>,
}

impl ProductPage {
    fn owns(&self, tier: &str) -> bool {
        self.owned.iter().any(|t| t == tier)
    }
}

pub(super) async fn product(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((publisher, slug)): Path<(String, String)>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    product_page(&state, &visit, &publisher, &slug, None).await
}

/// The product page; with a refused subscription, its message and the refusal's status.
async fn product_page(state: &WebState, visit: &Visit, publisher: &str, slug: &str, refused: Option<(ErrorKind, String)>) -> PageResult {
    let product = state.catalog.product(visit.viewer.as_ref(), publisher, slug).await?;
    let (status, error) = match refused {
        Some((kind, message)) => (status_of(kind), Some(message)),
        None => (StatusCode::OK, None),
    };
    let Product { listing, publisher_verified, license, long_html, install_html } = Product::clone(&product);
    let install_html = visit.install_html(&install_html);
    let owned = match &visit.viewer {
        Some(viewer) => state.commerce.owned_tiers(viewer, &listing.publisher, &listing.slug).await?,
        None => Vec::new(),
    };
    let page = ProductPage {
        chrome: visit.chrome_clone(),
        publisher_verified,
        long_html,
        install_html,
        license,
        error,
        preview: false,
        owned,
        listing,
    };
    visit.render_status(status, page)
}

#[derive(Template)]
#[template(path = "versions.html")]
struct VersionsPage {
    chrome: Chrome,
    listing: Listing,
    /// Whether the viewer sees vulnerability counts (the publisher shares them, or the
    /// viewer is its member or staff).
    shows_security: bool,
    /// Each version with its security summary, once scanned.
    versions: Vec<(Version, Option<SecuritySummary>)>,
}

pub(super) async fn versions(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((publisher, slug)): Path<(String, String)>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let listing = state.catalog.listing(visit.viewer.as_ref(), &publisher, &slug).await?;
    let shows_security = crate::scan_api::shows_summaries(visit.viewer.as_ref(), &listing);
    let mut versions = Vec::new();
    for version in state.catalog.versions(&listing).await? {
        let security =
            if shows_security { crate::scan_api::summary(&state, &listing, &version.tier, &version.digest).await? } else { None };
        versions.push((version, security));
    }
    visit.render(VersionsPage { chrome: visit.chrome_clone(), listing, shows_security, versions })
}

#[derive(Deserialize)]
pub(super) struct SubscribeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tier: String,
    accept_license: Option<String>,
    license_version: Option<i64>,
}

pub(super) async fn subscribe(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((publisher, slug)): Path<(String, String)>,
    Form(form): Form<SubscribeForm>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require(&format!("/products/{publisher}/{slug}"))?;
    visit.check_csrf(&form.csrf)?;
    let accepted = form.accept_license.is_some().then_some(form.license_version.unwrap_or(0));
    let listing = state.catalog.listing(Some(viewer), &publisher, &slug).await?;
    if listing.license_version > 0 && accepted.is_none() {
        let message = "Accept the license agreement to get this product.".to_owned();
        return product_page(&state, &visit, &publisher, &slug, Some((ErrorKind::Invalid, message))).await;
    }
    match state.commerce.subscribe_free(viewer, &publisher, &slug, &form.tier, accepted).await {
        Ok(()) => Ok(Redirect::to("/subscriptions").into_response()),
        Err(e) if matches!(e.kind(), ErrorKind::Invalid | ErrorKind::PaymentRequired) => {
            product_page(&state, &visit, &publisher, &slug, Some((e.kind(), e.to_string()))).await
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "publisher.html")]
struct PublisherPage {
    chrome: Chrome,
    publisher: Publisher,
    story_html: String,
    listings: Vec<ListingSummary>,
}

pub(super) async fn publisher(State(state): State<WebState>, headers: HeaderMap, Path(org): Path<String>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let publisher = state
        .catalog
        .publisher(&org)
        .await?
        .ok_or_else(|| PageError::Refused(ErrorKind::NotFound, format!("There is no publisher {org:?}.")))?;
    let listings = state.catalog.listings_of(None, &org).await?.into_iter().map(ListingSummary::from).collect();
    visit.render(PublisherPage { chrome: visit.chrome_clone(), story_html: markdown_html(&publisher.story), publisher, listings })
}

/// My subscriptions: each with its state, price, periods, pull command, invoices and the
/// forms to cancel or pay it, then every invoice and credit note.
pub(super) async fn subscriptions(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    super::checkout::subscriptions_page(&state, &visit, &headers, None).await
}

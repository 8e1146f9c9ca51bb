//! The server-rendered store front and publisher portal.

use std::collections::HashMap;

use askama::Template;
use axum::extract::{DefaultBodyLimit, Multipart, Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use slipway_auth::{AuthError, client_ip, random_secret};
use slipway_catalog::media::MediaKind;
use slipway_catalog::text::markdown_html;
use slipway_catalog::{
    Access, CATEGORIES, CatalogError, License, Listed, Listing, ListingInput, ListingSummary, Product, ProductType, Publisher,
    PublisherInput, SearchParams, Subscription, Tier, TrustLevel, Version, Viewer,
};
use slipway_security::SecuritySummary;

use crate::WebState;
use crate::session::{
    cookie, csrf_cookie, csrf_cookie_name, mail_base_url, registry_host, same_secret, scheme, secure, session, session_cookie,
    session_token,
};

/// Uploads (logo plus screenshots) in one editor form.
const FORM_LIMIT: usize = 48 * 1024 * 1024;
const PAGE_SIZE: i64 = 20;
/// Blank tier rows the listing editor offers beyond the existing tiers.
const SPARE_TIERS: usize = 2;

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(home))
        .route("/search", get(search))
        .route("/categories/{slug}", get(category))
        .route("/products/{publisher}/{slug}", get(product))
        .route("/products/{publisher}/{slug}/versions", get(versions))
        .route("/products/{publisher}/{slug}/subscribe", post(subscribe))
        .route("/publishers/{org}", get(publisher))
        .route("/publishers/verify-email", get(verify_publisher_email))
        .route("/signup", get(signup_form).post(signup))
        .route("/signup/sent", get(signup_sent))
        .route("/signin", get(signin_form).post(signin))
        .route("/signout", post(signout))
        .route("/verify-email", get(verify_email))
        .route("/subscriptions", get(subscriptions))
        .route("/publish", get(portal))
        .route("/publish/profile", get(profile_form).post(save_profile))
        .route("/publish/{org}/products/new", get(new_listing_form).post(save_new_listing))
        .route("/publish/{org}/products/{slug}", get(edit_listing_form).post(save_listing))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .with_state(state)
}

// ---- the page frame -------------------------------------------------------------------------

/// What the header of every page needs.
pub struct Chrome {
    pub user: Option<String>,
    pub staff: bool,
    /// The token every form on the page carries.
    pub csrf: String,
    pub q: String,
    /// Set when the CSRF token is a new double-submit cookie the response must set.
    new_cookie: bool,
}

/// A request's reader: who they are and the CSRF token for the page's forms.
struct Visit {
    viewer: Option<Viewer>,
    chrome: Chrome,
    /// Over https: the CSRF cookie is Secure, with a `__Host-` name.
    secure: bool,
}

impl Visit {
    async fn of(state: &WebState, headers: &HeaderMap) -> Result<Visit, PageError> {
        let (viewer, csrf, new_cookie) = match session(&state.auth, headers).await? {
            Some((account, csrf)) => (Some(state.catalog.viewer(account).await?), csrf, false),
            None => match cookie(headers, csrf_cookie_name(secure(&state.auth, headers))).filter(|c| c.len() == 64) {
                Some(c) => (None, c.to_owned(), false),
                None => (None, random_secret(), true),
            },
        };
        let user = viewer.as_ref().map(|v| v.account.name.clone());
        let staff = viewer.as_ref().is_some_and(|v| v.account.site_role != "user");
        Ok(Visit { viewer, chrome: Chrome { user, staff, csrf, q: String::new(), new_cookie }, secure: secure(&state.auth, headers) })
    }

    fn require(&self, next: &str) -> Result<&Viewer, PageError> {
        self.viewer.as_ref().ok_or_else(|| PageError::SignIn(next.to_owned()))
    }

    /// Checks a submitted form's token against this visit's.
    fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if self.chrome.new_cookie || !same_secret(sent, &self.chrome.csrf) {
            return Err(PageError::Status(
                StatusCode::FORBIDDEN,
                "This form has expired or came from another site. Go back, reload the page and try again.".into(),
            ));
        }
        Ok(())
    }

    fn render(&self, page: impl Template) -> Result<Response, PageError> {
        self.render_status(StatusCode::OK, page)
    }

    fn render_status(&self, status: StatusCode, page: impl Template) -> Result<Response, PageError> {
        let html = page.render().map_err(|e| PageError::Internal(e.to_string()))?;
        let mut response = (status, Html(html)).into_response();
        if self.chrome.new_cookie {
            response.headers_mut().append(header::SET_COOKIE, csrf_cookie(&self.chrome.csrf, self.secure));
        }
        Ok(response)
    }
}

/// Why a page could not be shown: rendered as a readable page, never a stack trace.
enum PageError {
    SignIn(String),
    Status(StatusCode, String),
    Internal(String),
}

impl From<CatalogError> for PageError {
    fn from(e: CatalogError) -> PageError {
        match e {
            CatalogError::Invalid(m) => PageError::Status(StatusCode::UNPROCESSABLE_ENTITY, m),
            CatalogError::NotFound(m) => PageError::Status(StatusCode::NOT_FOUND, m),
            CatalogError::Forbidden(m) => PageError::Status(StatusCode::FORBIDDEN, m),
            CatalogError::PaymentRequired(m) => PageError::Status(StatusCode::PAYMENT_REQUIRED, m),
            CatalogError::Db(slipway_db::DbError::Conflict(m)) => PageError::Status(StatusCode::CONFLICT, m),
            CatalogError::Db(slipway_db::DbError::BadText(m)) => PageError::Status(StatusCode::BAD_REQUEST, m),
            CatalogError::Auth(e) => e.into(),
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl From<AuthError> for PageError {
    fn from(e: AuthError) -> PageError {
        match e {
            AuthError::Invalid(m) | AuthError::NotFound(m) | AuthError::Forbidden(m) => {
                PageError::Status(StatusCode::UNPROCESSABLE_ENTITY, m)
            }
            AuthError::Db(slipway_db::DbError::Conflict(m)) => PageError::Status(StatusCode::CONFLICT, m),
            AuthError::Db(slipway_db::DbError::BadText(m)) => PageError::Status(StatusCode::BAD_REQUEST, m),
            AuthError::BadCredentials | AuthError::Unverified => PageError::Status(StatusCode::UNAUTHORIZED, e.to_string()),
            AuthError::Throttled(_) => PageError::Status(StatusCode::TOO_MANY_REQUESTS, e.to_string()),
            AuthError::Busy => PageError::Status(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
            other => PageError::Internal(other.to_string()),
        }
    }
}

impl From<crate::problem::Problem> for PageError {
    fn from(p: crate::problem::Problem) -> PageError {
        PageError::Status(p.0, p.1)
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage {
    chrome: Chrome,
    title: String,
    message: String,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            PageError::SignIn(next) => {
                return Redirect::to(&format!("/signin?next={}", encode(&same_origin_path(Some(&next))))).into_response();
            }
            PageError::Status(status, message) => (status, message),
            PageError::Internal(cause) => {
                tracing::error!(error = %cause, "page failed");
                (StatusCode::INTERNAL_SERVER_ERROR, "Something went wrong on our side. Try again in a moment.".to_owned())
            }
        };
        let chrome = Chrome { user: None, staff: false, csrf: String::new(), q: String::new(), new_cookie: false };
        let page = ErrorPage { chrome, title: status.canonical_reason().unwrap_or("Error").to_owned(), message };
        match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, "error").into_response(),
        }
    }
}

type PageResult = Result<Response, PageError>;

fn encode(s: &str) -> String {
    serde_urlencoded::to_string([("", s)]).map(|e| e[1..].to_owned()).unwrap_or_default()
}

/// The longest `next` followed after sign-in; a longer one falls back to `/`.
const MAX_NEXT_LEN: usize = 2_048;

/// Where to send someone after signing in: `next` when it is a path of this site, else
/// `/`. Every place that reads `next` goes through here. Accepted: a single leading `/`
/// (not `//` or `/\`, which browsers read as another host), then visible ASCII only, no
/// backslash anywhere, at most [`MAX_NEXT_LEN`] bytes; and the same once percent-decoded,
/// where control characters and whitespace are refused too. Browsers drop tabs and
/// newlines from a `Location`, so `/\t/evil.example` would be `//evil.example`, and a
/// newline cannot go into a header at all (the redirect failed with a 500).
fn same_origin_path(next: Option<&str>) -> String {
    match next {
        Some(n) if is_same_origin_path(n) => n.to_owned(),
        _ => "/".to_owned(),
    }
}

fn is_same_origin_path(next: &str) -> bool {
    let rooted = |path: &[u8]| path.first() == Some(&b'/') && !matches!(path.get(1), Some(b'/' | b'\\'));
    if next.len() > MAX_NEXT_LEN || !rooted(next.as_bytes()) || !next.bytes().all(|b| b.is_ascii_graphic() && b != b'\\') {
        return false;
    }
    let Ok(decoded) = String::from_utf8(percent_decode(next.as_bytes())) else { return false };
    rooted(decoded.as_bytes()) && decoded.chars().all(|c| !c.is_control() && !c.is_whitespace() && c != '\\')
}

/// `%XX` escapes decoded once (a `%` without two hex digits stays as it is).
fn percent_decode(s: &[u8]) -> Vec<u8> {
    let hex = |b: u8| (b as char).to_digit(16);
    let mut out = Vec::with_capacity(s.len());
    let mut i = 0;
    while i < s.len() {
        match (s[i], s.get(i + 1).copied().and_then(hex), s.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push((high * 16 + low) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

// ---- store front ----------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "home.html")]
struct HomePage {
    chrome: Chrome,
    featured: Vec<ListingSummary>,
    popular: Vec<ListingSummary>,
    categories: Vec<(&'static str, &'static str, i64)>,
}

async fn home(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let featured = state.catalog.featured(8).await?;
    let popular = state.catalog.search(&SearchParams { sort: Some("popular".into()), ..Default::default() }, 0, 8).await?.items;
    let categories = state.catalog.categories().await?;
    visit.render(HomePage { chrome: visit.chrome_clone(), featured, popular, categories })
}

impl Visit {
    fn chrome_clone(&self) -> Chrome {
        Chrome {
            user: self.chrome.user.clone(),
            staff: self.chrome.staff,
            csrf: self.chrome.csrf.clone(),
            q: self.chrome.q.clone(),
            new_cookie: false,
        }
    }

    fn chrome_with_query(&self, q: &str) -> Chrome {
        Chrome { q: q.to_owned(), ..self.chrome_clone() }
    }
}

#[derive(Deserialize, Default)]
struct SearchForm {
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

async fn search(State(state): State<WebState>, headers: HeaderMap, Query(form): Query<SearchForm>) -> PageResult {
    let heading =
        if form.params.q.trim().is_empty() { "All products".to_owned() } else { format!("Results for “{}”", form.params.q.trim()) };
    search_page(state, headers, form, heading).await
}

async fn category(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(slug): Path<String>,
    Query(mut form): Query<SearchForm>,
) -> PageResult {
    let title = slipway_catalog::category_title(&slug)
        .ok_or_else(|| PageError::Status(StatusCode::NOT_FOUND, format!("There is no category {slug:?}.")))?;
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
    let status = if error.is_some() { StatusCode::BAD_REQUEST } else { StatusCode::OK };
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
struct ProductPage {
    chrome: Chrome,
    listing: Listing,
    publisher_verified: bool,
    long_html: String,
    install_html: String,
    license: Option<License>,
    error: Option<String>,
    /// Shown to the publisher's members while the listing is a draft.
    preview: bool,
}

async fn product(State(state): State<WebState>, headers: HeaderMap, Path((publisher, slug)): Path<(String, String)>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    product_page(&state, &visit, &publisher, &slug, None).await
}

async fn product_page(state: &WebState, visit: &Visit, publisher: &str, slug: &str, error: Option<String>) -> PageResult {
    let product = state.catalog.product(visit.viewer.as_ref(), publisher, slug).await?;
    let status = if error.is_some() { StatusCode::UNPROCESSABLE_ENTITY } else { StatusCode::OK };
    let Product { listing, publisher_verified, license, long_html, install_html } = Product::clone(&product);
    let page =
        ProductPage { chrome: visit.chrome_clone(), publisher_verified, long_html, install_html, license, error, preview: false, listing };
    visit.render_status(status, page)
}

#[derive(Template)]
#[template(path = "versions.html")]
struct VersionsPage {
    chrome: Chrome,
    listing: Listing,
    /// Each version with its security summary, once scanned.
    versions: Vec<(Version, Option<SecuritySummary>)>,
}

async fn versions(State(state): State<WebState>, headers: HeaderMap, Path((publisher, slug)): Path<(String, String)>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let listing = state.catalog.listing(visit.viewer.as_ref(), &publisher, &slug).await?;
    let mut versions = Vec::new();
    for version in state.catalog.versions(&listing).await? {
        let security = crate::scan_api::summary(&state, &listing, &version.tier, &version.digest).await?;
        versions.push((version, security));
    }
    visit.render(VersionsPage { chrome: visit.chrome_clone(), listing, versions })
}

#[derive(Deserialize)]
struct SubscribeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    tier: String,
    accept_license: Option<String>,
    license_version: Option<i64>,
}

async fn subscribe(
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
        return product_page(&state, &visit, &publisher, &slug, Some(message)).await;
    }
    match state.catalog.subscribe(viewer, &publisher, &slug, &form.tier, accepted).await {
        Ok(()) => Ok(Redirect::to("/subscriptions").into_response()),
        Err(CatalogError::Invalid(m) | CatalogError::PaymentRequired(m)) => product_page(&state, &visit, &publisher, &slug, Some(m)).await,
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

async fn publisher(State(state): State<WebState>, headers: HeaderMap, Path(org): Path<String>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let publisher = state
        .catalog
        .publisher(&org)
        .await?
        .ok_or_else(|| PageError::Status(StatusCode::NOT_FOUND, format!("There is no publisher {org:?}.")))?;
    let listings = state.catalog.listings_of(None, &org).await?.into_iter().map(ListingSummary::from).collect();
    visit.render(PublisherPage { chrome: visit.chrome_clone(), story_html: markdown_html(&publisher.story), publisher, listings })
}

#[derive(Template)]
#[template(path = "subscriptions.html")]
struct SubscriptionsPage {
    chrome: Chrome,
    subscriptions: Vec<Subscription>,
}

async fn subscriptions(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require("/subscriptions")?;
    let subscriptions = state.catalog.subscriptions(viewer, &registry_host(&state.auth, &headers)).await?;
    visit.render(SubscriptionsPage { chrome: visit.chrome_clone(), subscriptions })
}

// ---- accounts -------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "message.html")]
struct MessagePage {
    chrome: Chrome,
    title: String,
    message: String,
}

#[derive(Template)]
#[template(path = "signup.html")]
struct SignupPage {
    chrome: Chrome,
    name: String,
    email: String,
    error: Option<String>,
}

async fn signup_form(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.render(SignupPage { chrome: visit.chrome_clone(), name: String::new(), email: String::new(), error: None })
}

#[derive(Deserialize)]
struct SignupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

async fn signup(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<SignupForm>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    match state.auth.sign_up(form.name.trim(), form.email.trim(), &form.password).await {
        // Redirect after the POST, so reloading the page does not sign up again.
        Ok(_) => Ok(Redirect::to("/signup/sent").into_response()),
        Err(AuthError::Invalid(m) | AuthError::Db(slipway_db::DbError::Conflict(m))) => {
            let page = SignupPage { chrome: visit.chrome_clone(), name: form.name, email: form.email, error: Some(m) };
            visit.render_status(StatusCode::UNPROCESSABLE_ENTITY, page)
        }
        Err(e) => Err(e.into()),
    }
}

async fn signup_sent(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.render(MessagePage {
        chrome: visit.chrome_clone(),
        title: "Check your email".into(),
        message: "We sent a link to your email address to verify it. Follow it, then sign in.".into(),
    })
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SigninPage {
    chrome: Chrome,
    name: String,
    next: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn signin_form(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<NextQuery>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.render(SigninPage {
        chrome: visit.chrome_clone(),
        name: String::new(),
        next: same_origin_path(query.next.as_deref()),
        error: None,
    })
}

#[derive(Deserialize)]
struct SigninForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    next: Option<String>,
}

async fn signin(State(state): State<WebState>, headers: HeaderMap, request: axum::extract::Request) -> PageResult {
    let ip = client_ip(request.extensions());
    let Form(form) =
        Form::<SigninForm>::from_request(request, &()).await.map_err(|e| PageError::Status(StatusCode::BAD_REQUEST, e.body_text()))?;
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let next = same_origin_path(form.next.as_deref());
    match state.auth.sign_in(form.name.trim(), &form.password, ip).await {
        Ok((value, _csrf, _account)) => {
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().insert(header::SET_COOKIE, session_cookie(&value, scheme(&state.auth, &headers) == "https"));
            Ok(response)
        }
        Err(e @ (AuthError::BadCredentials | AuthError::Unverified | AuthError::Throttled(_) | AuthError::Busy)) => {
            let message = if matches!(e, AuthError::BadCredentials) { "Wrong user name or password.".to_owned() } else { e.to_string() };
            let status = match e {
                AuthError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
                AuthError::Busy => StatusCode::SERVICE_UNAVAILABLE,
                _ => StatusCode::UNAUTHORIZED,
            };
            let retry_after = e.retry_after();
            let page = SigninPage { chrome: visit.chrome_clone(), name: form.name, next, error: Some(message) };
            let mut response = visit.render_status(status, page)?;
            if let Some(secs) = retry_after {
                response.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

use axum::extract::FromRequest as _;

#[derive(Deserialize)]
struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

async fn signout(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    if let Some(value) = session_token(&state.auth, &headers) {
        state.auth.sign_out(value).await?;
    }
    let mut response = Redirect::to("/").into_response();
    response.headers_mut().insert(header::SET_COOKIE, session_cookie("", visit.secure));
    Ok(response)
}

#[derive(Deserialize)]
struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// The page the verification email links to. The link's secret is single-use, so a GET
/// that consumes it is safe to follow.
async fn verify_email(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<TokenQuery>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let (status, message) = match state.auth.verify_email(&query.token).await {
        Ok(()) => (StatusCode::OK, "Your email address is verified. You can sign in now."),
        Err(_) => (StatusCode::BAD_REQUEST, "This verification link is invalid, used or expired."),
    };
    visit.render_status(status, MessagePage { chrome: visit.chrome_clone(), title: "Email verification".into(), message: message.into() })
}

async fn verify_publisher_email(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<TokenQuery>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let (status, message) = match state.catalog.verify_publisher_email(&query.token).await {
        Ok(org) => (StatusCode::OK, format!("The company email address of {org} is verified.")),
        Err(_) => (StatusCode::BAD_REQUEST, "This verification link is invalid, used or expired.".to_owned()),
    };
    visit.render_status(status, MessagePage { chrome: visit.chrome_clone(), title: "Publisher email verification".into(), message })
}

// ---- publisher portal -----------------------------------------------------------------------

#[derive(Template)]
#[template(path = "portal.html")]
struct PortalPage {
    chrome: Chrome,
    publishers: Vec<(Publisher, Vec<Listing>)>,
}

async fn portal(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require("/publish")?;
    let mut publishers = Vec::new();
    for p in state.catalog.editable_publishers(viewer).await? {
        let listings = state.catalog.listings_of(Some(viewer), &p.org).await?;
        publishers.push((p, listings));
    }
    visit.render(PortalPage { chrome: visit.chrome_clone(), publishers })
}

/// A multipart form's text fields and uploaded files.
struct Submitted {
    fields: HashMap<String, String>,
    files: Vec<(String, Vec<u8>)>,
}

impl Submitted {
    async fn read(mut multipart: Multipart) -> Result<Submitted, PageError> {
        let bad = |e: axum::extract::multipart::MultipartError| {
            PageError::Status(StatusCode::BAD_REQUEST, format!("The form could not be read: {e}"))
        };
        let mut out = Submitted { fields: HashMap::new(), files: Vec::new() };
        while let Some(field) = multipart.next_field().await.map_err(bad)? {
            let name = field.name().unwrap_or_default().to_owned();
            if field.file_name().is_some() {
                let bytes = field.bytes().await.map_err(bad)?;
                if !bytes.is_empty() {
                    out.files.push((name, bytes.to_vec()));
                }
            } else {
                out.fields.insert(name, field.text().await.map_err(bad)?);
            }
        }
        Ok(out)
    }

    fn get(&self, name: &str) -> String {
        self.fields.get(name).cloned().unwrap_or_default()
    }

    fn file(&self, name: &str) -> Option<Vec<u8>> {
        self.files.iter().find(|(n, _)| n == name).map(|(_, b)| b.clone())
    }
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
struct OrgQuery {
    org: Option<String>,
}

async fn profile_form(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<OrgQuery>) -> PageResult {
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

async fn save_profile(State(state): State<WebState>, headers: HeaderMap, multipart: Multipart) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require("/publish/profile")?;
    let form = Submitted::read(multipart).await?;
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
        Err(CatalogError::Invalid(m) | CatalogError::Forbidden(m)) | Err(CatalogError::Auth(AuthError::Invalid(m))) => {
            let logo_url = input.logo.as_deref().map(slipway_catalog::media_url);
            let page = ProfileFormPage { chrome: visit.chrome_clone(), org, existing: false, input, logo_url, error: Some(m) };
            visit.render_status(StatusCode::UNPROCESSABLE_ENTITY, page)
        }
        Err(e) => Err(e.into()),
    }
}

/// One row of the editor's tier table.
struct TierRow {
    index: usize,
    tier: Tier,
    /// The price as typed, e.g. "49.00".
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
    accesses: &'static [Access],
}

fn blank_tier() -> Tier {
    Tier {
        slug: String::new(),
        name: String::new(),
        description: String::new(),
        price_cents: 0,
        currency: "USD".into(),
        billing_period: "free".into(),
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
            price: if tier.price_cents == 0 { String::new() } else { format!("{}.{:02}", tier.price_cents / 100, tier.price_cents % 100) },
            tier,
        })
        .collect()
}

fn input_of(listing: &Listing) -> ListingInput {
    let id_of = |url: &str| url.rsplit('/').next().unwrap_or_default().to_owned();
    ListingInput {
        name: listing.name.clone(),
        logo: listing.logo_url.as_deref().map(id_of),
        short_description: listing.short_description.clone(),
        category: listing.category.clone(),
        search_tags: listing.search_tags.clone(),
        long_description: listing.long_description.clone(),
        screenshots: listing.screenshots.iter().map(|u| id_of(u)).collect(),
        support_url: listing.support_url.clone(),
        support_email: listing.support_email.clone(),
        support_info: listing.support_info.clone(),
        sla: listing.sla.clone(),
        install_instructions: listing.install_instructions.clone(),
        product_type: listing.product_type,
        tiers: listing.tiers.clone(),
    }
}

async fn new_listing_form(State(state): State<WebState>, headers: HeaderMap, Path(org): Path<String>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.require(&format!("/publish/{org}/products/new"))?;
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
        tiers: Vec::new(),
    };
    let license = License { version: 0, url: String::new(), text: String::new() };
    visit.render(listing_form(&visit, org, None, input, license, None))
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
        accesses: Access::ALL,
    }
}

async fn edit_listing_form(State(state): State<WebState>, headers: HeaderMap, Path((org, slug)): Path<(String, String)>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require(&format!("/publish/{org}/products/{slug}"))?;
    let listing = state.catalog.listing(Some(viewer), &org, &slug).await?;
    let license = state.catalog.license(&listing).await?.unwrap_or(License { version: 0, url: String::new(), text: String::new() });
    visit.render(listing_form(&visit, org, Some(slug), input_of(&listing), license, None))
}

async fn save_new_listing(State(state): State<WebState>, headers: HeaderMap, Path(org): Path<String>, multipart: Multipart) -> PageResult {
    save_listing_form(state, headers, org, None, multipart).await
}

async fn save_listing(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((org, slug)): Path<(String, String)>,
    multipart: Multipart,
) -> PageResult {
    save_listing_form(state, headers, org, Some(slug), multipart).await
}

/// The price field as cents: "49", "49.5" and "49.50" are all accepted.
fn cents(price: &str) -> Result<i64, CatalogError> {
    let price = price.trim().trim_start_matches(['$', '€', '£']);
    if price.is_empty() {
        return Ok(0);
    }
    let (whole, fraction) = price.split_once('.').unwrap_or((price, ""));
    let parsed = (|| {
        let whole: i64 = whole.parse().ok()?;
        let fraction: i64 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<i64>().ok()? * 10,
            2 => fraction.parse().ok()?,
            _ => return None,
        };
        whole.checked_mul(100)?.checked_add(fraction)
    })();
    parsed.ok_or_else(|| CatalogError::Invalid(format!("tier price: {price:?} is not an amount like 49.00")))
}

fn listing_input(form: &Submitted) -> Result<ListingInput, CatalogError> {
    let mut tiers = Vec::new();
    for index in 0..(MAX_FORM_TIERS) {
        let field = |name: &str| form.get(&format!("tier_{index}_{name}"));
        if field("name").trim().is_empty() && field("repository").trim().is_empty() {
            continue;
        }
        let price_cents = cents(&field("price"))?;
        tiers.push(Tier {
            slug: match field("slug").trim() {
                "" => slipway_catalog::text::slugify(&field("name")),
                s => s.to_owned(),
            },
            name: field("name"),
            description: field("description"),
            price_cents,
            currency: field("currency"),
            billing_period: field("period"),
            access: Access::parse(&field("access")).ok_or_else(|| CatalogError::Invalid("tier access: choose who may pull".into()))?,
            repository: field("repository"),
            tags: field("tags").split([',', ' ']).map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        });
    }
    Ok(ListingInput {
        name: form.get("name"),
        logo: Some(form.get("logo_id")).filter(|l| !l.is_empty()),
        short_description: form.get("short_description"),
        category: form.get("category"),
        search_tags: form.get("search_tags").split(',').map(str::trim).filter(|t| !t.is_empty()).map(str::to_owned).collect(),
        long_description: form.get("long_description"),
        screenshots: form.get("screenshot_ids").split_whitespace().map(str::to_owned).collect(),
        support_url: form.get("support_url"),
        support_email: form.get("support_email"),
        support_info: form.get("support_info"),
        sla: form.get("sla"),
        install_instructions: form.get("install_instructions"),
        product_type: ProductType::parse(&form.get("product_type")).unwrap_or(ProductType::Image),
        tiers,
    })
}

/// Tier rows a submitted form may carry (existing tiers plus spares).
const MAX_FORM_TIERS: usize = 12;

async fn save_listing_form(state: WebState, headers: HeaderMap, org: String, slug: Option<String>, multipart: Multipart) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require(&format!("/publish/{org}/products/new"))?;
    let form = Submitted::read(multipart).await?;
    visit.check_csrf(&form.get("csrf"))?;
    let license = License { version: 0, url: form.get("license_url"), text: form.get("license_text") };
    let mut input = match listing_input(&form) {
        Ok(input) => input,
        Err(e) => {
            let fallback = ListingInput { tiers: Vec::new(), ..listing_input_lenient(&form) };
            return visit
                .render_status(StatusCode::UNPROCESSABLE_ENTITY, listing_form(&visit, org, slug, fallback, license, Some(e.to_string())));
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
        return visit.render_status(StatusCode::UNPROCESSABLE_ENTITY, listing_form(&visit, org, slug, input, license, Some(e.to_string())));
    }
    uploaded?;
    if form.get("action") == "preview" {
        return preview(&state, &visit, viewer, &org, slug.as_deref(), input, license).await;
    }
    let saved = state.catalog.save_listing(viewer, &org, slug.as_deref(), &input).await;
    let listing = match saved {
        Ok(listing) => listing,
        Err(e @ (CatalogError::Invalid(_) | CatalogError::Db(slipway_db::DbError::Conflict(_)))) => {
            return visit
                .render_status(StatusCode::UNPROCESSABLE_ENTITY, listing_form(&visit, org, slug, input, license, Some(e.to_string())));
        }
        Err(e) => return Err(e.into()),
    };
    let current = state.catalog.license(&listing).await?;
    let changed = current.as_ref().is_none_or(|c| c.url != license.url.trim() || c.text != license.text.trim());
    if changed
        && !(license.url.trim().is_empty() && license.text.trim().is_empty())
        && let Err(e) = state.catalog.set_license(viewer, &org, &listing.slug, &license).await
    {
        let page = listing_form(&visit, org, Some(listing.slug.clone()), input, license, Some(e.to_string()));
        return visit.render_status(StatusCode::UNPROCESSABLE_ENTITY, page);
    }
    Ok(Redirect::to(&format!("/publish/{org}/products/{}", listing.slug)).into_response())
}

/// The form's fields without the parts that failed to parse, to show it again.
fn listing_input_lenient(form: &Submitted) -> ListingInput {
    ListingInput {
        name: form.get("name"),
        logo: Some(form.get("logo_id")).filter(|l| !l.is_empty()),
        short_description: form.get("short_description"),
        category: form.get("category"),
        search_tags: Vec::new(),
        long_description: form.get("long_description"),
        screenshots: Vec::new(),
        support_url: form.get("support_url"),
        support_email: form.get("support_email"),
        support_info: form.get("support_info"),
        sla: form.get("sla"),
        install_instructions: form.get("install_instructions"),
        product_type: ProductType::Image,
        tiers: Vec::new(),
    }
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
        install_html: markdown_html(&listing.install_instructions),
        license: has_license.then_some(license),
        error: None,
        preview: true,
        listing,
    };
    visit.render(page)
}

/// Helpers the templates call. Askama hands filters any displayable value, so numbers
/// arrive as text.
mod filters {
    use std::fmt::Display;

    /// Unix milliseconds as a calendar date.
    #[askama::filter_fn]
    pub fn date<T: Display>(ms: T, _: &dyn askama::Values) -> askama::Result<String> {
        let ms: i64 = ms.to_string().parse().unwrap_or_default();
        Ok(chrono::DateTime::from_timestamp_millis(ms).map(|d| d.format("%Y-%m-%d").to_string()).unwrap_or_default())
    }

    /// Bytes in human units.
    #[askama::filter_fn]
    pub fn size<T: Display>(bytes: T, _: &dyn askama::Values) -> askama::Result<String> {
        let b: f64 = bytes.to_string().parse().unwrap_or_default();
        Ok(match b {
            b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
            b if b >= 1e6 => format!("{:.1} MB", b / 1e6),
            b if b >= 1e3 => format!("{:.1} kB", b / 1e3),
            b => format!("{b} B"),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Issue 14 item 10: `next=/%09/evil.example` was followed as `/\t/evil.example`
    /// (browsers read `//evil.example`) and `next=/%0a/x` failed with a 500. Values as
    /// they arrive once the query or form is decoded, and some still percent-encoded.
    #[test]
    fn hostile_next_values_fall_back_to_the_home_page() {
        let long = format!("/{}", "a".repeat(MAX_NEXT_LEN));
        let hostile = [
            "",
            "evil.example",
            "//evil",
            "//evil.example/x",
            "/\\evil",
            "/\\/evil",
            "\\\\evil",
            "/a\\b",
            "/%09/evil",
            "/\t/x",
            "/%0a/x",
            "/\n/x",
            "/\r\n/x",
            "/%0d%0aSet-Cookie:x=1",
            "/ /x",
            "/%20/x",
            "/x y",
            "/%2f/evil",
            "/%2F%2Fevil",
            "/%5cevil",
            "/%5C/evil",
            "/\u{7f}",
            "/%7f",
            "/%00",
            "/\u{0}",
            "/%C2%A0x",
            "/\u{a0}x",
            "/é",
            "/%ff",
            "https://evil",
            "http:/evil",
            "javascript:alert(1)",
            " /x",
            "\t/x",
            &long,
        ];
        for value in hostile {
            assert_eq!(same_origin_path(Some(value)), "/", "{value:?} was followed");
        }
        assert_eq!(same_origin_path(None), "/");
    }

    #[test]
    fn same_origin_paths_are_followed() {
        let limit = format!("/{}", "a".repeat(MAX_NEXT_LEN - 1));
        for good in [
            "/",
            "/subscriptions",
            "/products/acme/rocket?tab=versions#top",
            "/publish/acme-co/products/new",
            "/search?q=a%2Bb",
            "/100%",
            &limit,
        ] {
            assert_eq!(same_origin_path(Some(good)), good);
        }
    }

    #[test]
    fn percent_decoding_leaves_broken_escapes_alone() {
        assert_eq!(percent_decode(b"/a%2Fb%2"), b"/a/b%2");
        assert_eq!(percent_decode(b"%zz%4"), b"%zz%4");
    }
}

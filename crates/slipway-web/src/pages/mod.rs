//! The server-rendered store front and publisher portal, one module per page family; this
//! module holds what every page shares: the page frame, the visit, and the error page.

mod account;
mod checkout;
mod forms;
mod orgs;
mod publisher;
mod review;
mod sales;
mod security;
mod settings;
mod sso;
mod store;
mod two_factor;

use askama::Template;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use slipway_auth::{AuthError, random_secret};
use slipway_catalog::{CatalogError, Viewer};
use slipway_types::ErrorKind;

use crate::WebState;
use crate::session::{cookie, csrf_cookie, csrf_cookie_name, registry_host, same_secret, secure, session};

/// Uploads (logo plus screenshots) in one editor form.
const FORM_LIMIT: usize = 48 * 1024 * 1024;

pub fn router(state: WebState) -> Router {
    Router::new()
        .route("/", get(store::home))
        .route("/search", get(store::search))
        .route("/categories/{slug}", get(store::category))
        .route("/products/{publisher}/{slug}", get(store::product))
        .route("/products/{publisher}/{slug}/versions", get(store::versions))
        .route("/products/{publisher}/{slug}/subscribe", post(store::subscribe))
        .route("/publishers/{org}", get(store::publisher))
        .route("/publishers/{org}/sales", get(sales::sales))
        .route("/publishers/{org}/sales/statements.csv", get(sales::statements_download))
        .route("/publishers/{org}/sales/refund", post(sales::refund))
        .route("/publishers/verify-email", get(account::verify_publisher_email))
        .route("/signup", get(account::signup_form).post(account::signup))
        .route("/signup/sent", get(account::signup_sent))
        .route("/signup/verified", get(account::signup_verified))
        .route("/signin", get(account::signin_form).post(account::signin))
        .route("/signin/two-factor", get(two_factor::code_form).post(two_factor::submit_code))
        .route("/signin/sso/{provider}", get(sso::start))
        .route("/signin/sso/{provider}/callback", get(sso::callback))
        .route("/signout", post(account::signout))
        .route("/verify-email", get(account::verify_email))
        .route("/verify-email/resend", get(account::resend_verification_form).post(account::resend_verification))
        .route("/invitations/accept", get(account::invitation).post(account::accept_invitation))
        .route("/forgot-password", get(account::forgot_password_form).post(account::forgot_password))
        .route("/reset-password", get(account::reset_password_form).post(account::reset_password))
        .route("/orgs", post(orgs::create))
        .route("/orgs/{org}/robots", post(orgs::add_robot))
        .route("/orgs/{org}/robots/{robot}/tokens", post(orgs::create_robot_token))
        .route("/orgs/{org}/robots/{robot}/tokens/{id}/revoke", post(orgs::revoke_robot_token))
        .route("/orgs/{org}/robots/{robot}/delete", post(orgs::delete_robot))
        .route("/orgs/{org}/members", get(orgs::members))
        .route("/orgs/{org}/members/invite", post(orgs::invite))
        .route("/orgs/{org}/members/{member}/role", post(orgs::change_role))
        .route("/orgs/{org}/members/{member}/remove", post(orgs::remove))
        .route("/orgs/{org}/leave", post(orgs::leave))
        .route("/orgs/{org}/transfer", post(orgs::transfer))
        .route("/settings", get(settings::settings))
        .route("/settings/password", post(settings::change_password))
        .route("/settings/email", post(settings::change_email))
        .route("/settings/email/confirm", get(settings::confirm_email))
        .route("/settings/sessions/sign-out-others", post(settings::sign_out_others))
        .route("/settings/delete", post(settings::delete_account))
        .route("/settings/tokens", get(settings::tokens).post(settings::create_token))
        .route("/settings/two-factor", get(two_factor::settings))
        .route("/settings/two-factor/setup", post(two_factor::begin))
        .route("/settings/two-factor/enable", post(two_factor::enable))
        .route("/settings/two-factor/recovery-codes", post(two_factor::new_recovery_codes))
        .route("/settings/two-factor/disable", post(two_factor::disable))
        .route("/settings/tokens/{id}/revoke", post(settings::revoke_token))
        .route("/subscriptions", get(store::subscriptions))
        .route("/subscriptions/{id}/cancel", post(checkout::cancel))
        .route("/subscriptions/{id}/pay", post(checkout::pay))
        .route("/checkout", get(checkout::checkout_form).post(checkout::checkout))
        .route("/billing", get(checkout::billing_form).post(checkout::save_billing))
        .route("/invoices/{id}", get(checkout::invoice))
        .route("/invoices/{id}/download", get(checkout::download_invoice))
        .route("/publish", get(publisher::portal))
        .route("/publish/profile", get(publisher::profile_form).post(publisher::save_profile))
        .route("/publish/{org}/products/new", get(publisher::new_listing_form).post(publisher::save_new_listing))
        .route("/publish/{org}/products/{slug}", get(publisher::edit_listing_form).post(publisher::save_listing))
        .route("/publish/{org}/products/{slug}/review", post(review::publisher_review))
        .route("/publish/{org}/agreement", get(review::agreement).post(review::accept_agreement))
        .route("/publish/{org}/security", get(security::repositories))
        .route("/publish/{org}/security/image", get(security::image))
        .route("/publish/{org}/security/export", get(security::export))
        .route("/moderation", get(review::queue))
        .route("/moderation/{publisher}/{slug}", get(review::console).post(review::moderate))
        .layer(DefaultBodyLimit::max(FORM_LIMIT))
        .with_state(state)
}

// ---- the page frame -------------------------------------------------------------------------

/// What the header of every page needs.
pub struct Chrome {
    pub user: Option<String>,
    /// The token every form on the page carries.
    pub csrf: String,
    pub q: String,
    /// The registry's host in this page's commands (`session::registry_host`).
    pub registry: String,
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
        let registry = registry_host(&state.auth, headers);
        Ok(Visit { viewer, chrome: Chrome { user, csrf, q: String::new(), registry, new_cookie }, secure: secure(&state.auth, headers) })
    }

    fn require(&self, next: &str) -> Result<&Viewer, PageError> {
        self.viewer.as_ref().ok_or_else(|| PageError::SignIn(next.to_owned()))
    }

    /// Checks a submitted form's token against this visit's.
    fn check_csrf(&self, sent: &str) -> Result<(), PageError> {
        if self.chrome.new_cookie || !same_secret(sent, &self.chrome.csrf) {
            return Err(PageError::Refused(
                ErrorKind::Forbidden,
                "This form has expired or came from another site. Go back, reload the page and try again.".into(),
            ));
        }
        Ok(())
    }

    fn render(&self, page: impl Template) -> Result<Response, PageError> {
        self.render_status(StatusCode::OK, page)
    }

    /// The page shown again with what was refused, answering the refusal's status.
    fn render_refused(&self, kind: ErrorKind, page: impl Template) -> Result<Response, PageError> {
        self.render_status(status_of(kind), page)
    }

    fn render_status(&self, status: StatusCode, page: impl Template) -> Result<Response, PageError> {
        let html = page.render().map_err(|e| PageError::Refused(ErrorKind::Internal, e.to_string()))?;
        let mut response = (status, Html(html)).into_response();
        if self.chrome.new_cookie {
            response.headers_mut().append(header::SET_COOKIE, csrf_cookie(&self.chrome.csrf, self.secure));
        }
        Ok(response)
    }
}

/// Why a page could not be shown: rendered as a readable page with the status of the
/// refusal's kind (the same status the API and the registry answer), never a stack trace.
enum PageError {
    SignIn(String),
    Refused(ErrorKind, String),
}

/// The HTTP status of a kind of refusal.
fn status_of(kind: ErrorKind) -> StatusCode {
    StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

impl From<CatalogError> for PageError {
    fn from(e: CatalogError) -> PageError {
        PageError::Refused(e.kind(), e.to_string())
    }
}

impl From<slipway_commerce::CommerceError> for PageError {
    fn from(e: slipway_commerce::CommerceError) -> PageError {
        PageError::Refused(e.kind(), e.to_string())
    }
}

impl From<AuthError> for PageError {
    fn from(e: AuthError) -> PageError {
        PageError::Refused(e.kind(), e.to_string())
    }
}

impl From<crate::problem::Problem> for PageError {
    fn from(p: crate::problem::Problem) -> PageError {
        PageError::Refused(p.0, p.1)
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
        let (kind, message) = match self {
            PageError::SignIn(next) => {
                return Redirect::to(&format!("/signin?next={}", encode(&same_origin_path(Some(&next))))).into_response();
            }
            PageError::Refused(ErrorKind::Internal, cause) => {
                tracing::error!(error = %cause, "page failed");
                (ErrorKind::Internal, "Something went wrong on our side. Try again in a moment.".to_owned())
            }
            PageError::Refused(kind, message) => (kind, message),
        };
        let status = status_of(kind);
        let chrome = Chrome { user: None, csrf: String::new(), q: String::new(), registry: String::new(), new_cookie: false };
        let page = ErrorPage { chrome, title: kind.title().to_owned(), message };
        let mut response = match page.render() {
            Ok(html) => (status, Html(html)).into_response(),
            Err(_) => (status, "error").into_response(),
        };
        if kind == ErrorKind::Unavailable {
            // Only busy password hashing answers 503 here, as in the API: worth retrying at once.
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
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

impl Visit {
    fn chrome_clone(&self) -> Chrome {
        Chrome {
            user: self.chrome.user.clone(),
            csrf: self.chrome.csrf.clone(),
            q: self.chrome.q.clone(),
            registry: self.chrome.registry.clone(),
            new_cookie: false,
        }
    }

    /// Install instructions' HTML with the registry placeholder filled in for this reader
    /// (a plain `host[:port]`, safe in HTML).
    fn install_html(&self, html: &str) -> String {
        html.replace(slipway_catalog::REGISTRY_PLACEHOLDER, &self.chrome.registry)
    }

    fn chrome_with_query(&self, q: &str) -> Chrome {
        Chrome { q: q.to_owned(), ..self.chrome_clone() }
    }
}

/// A count in at most four significant characters: 999, 12.3K, 2.4M, 1.1B (one decimal
/// below 100 of a unit, none above).
fn human_count(n: i64) -> String {
    let (value, unit) = match n.unsigned_abs() {
        v if v >= 1_000_000_000 => (n as f64 / 1e9, "B"),
        v if v >= 1_000_000 => (n as f64 / 1e6, "M"),
        v if v >= 1_000 => (n as f64 / 1e3, "K"),
        _ => return n.to_string(),
    };
    let text = if value.abs() < 100.0 { format!("{value:.1}") } else { format!("{value:.0}") };
    format!("{}{unit}", text.strip_suffix(".0").unwrap_or(&text))
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

    /// Unix milliseconds as a UTC date and time to the minute (deadlines of hours).
    #[askama::filter_fn]
    pub fn datetime<T: Display>(ms: T, _: &dyn askama::Values) -> askama::Result<String> {
        let ms: i64 = ms.to_string().parse().unwrap_or_default();
        Ok(chrono::DateTime::from_timestamp_millis(ms).map(|d| d.format("%Y-%m-%d %H:%M UTC").to_string()).unwrap_or_default())
    }

    /// A count as people read it: 999, 12.3K, 2.4M, 1.1B.
    #[askama::filter_fn]
    pub fn count<T: Display>(n: T, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(super::human_count(n.to_string().parse().unwrap_or_default()))
    }

    /// Bytes in human units.
    #[askama::filter_fn]
    pub fn size<T: Display>(bytes: T, _: &dyn askama::Values) -> askama::Result<String> {
        Ok(slipway_types::human_bytes(bytes.to_string().parse().unwrap_or_default()))
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
    fn counts_read_as_people_say_them() {
        for (n, shown) in [
            (0, "0"),
            (999, "999"),
            (1_000, "1K"),
            (1_049, "1K"),
            (12_345, "12.3K"),
            (999_499, "999K"),
            (2_362_598, "2.4M"),
            (1_000_000_000, "1B"),
            (i64::MAX, "9223372037B"),
        ] {
            assert_eq!(human_count(n), shown, "{n}");
        }
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

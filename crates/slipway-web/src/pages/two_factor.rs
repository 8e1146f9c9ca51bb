//! Two-factor sign-in in the browser: the code asked after a right password
//! (`/signin/two-factor`, which also sets it up when the site requires it of the account),
//! and `/settings/two-factor` to set it up, get new recovery codes or turn it off.
//!
//! Between the password and the code the browser holds only a short-lived challenge
//! cookie (HttpOnly, SameSite=Strict): no session exists until the code holds.

use askama::Template;
use axum::Form;
use axum::extract::{FromRequest as _, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use slipway_auth::{AuthError, Challenge, Enrolment, OpenedSession, client_ip};
use slipway_types::ErrorKind;

use crate::WebState;
use crate::session::{cookie, session_cookie};

use super::account::MessagePage;
use super::{Chrome, PageError, PageResult, Visit, same_origin_path};

const CHALLENGE_COOKIE: &str = "slipway_signin";
const SETTINGS_PATH: &str = "/settings/two-factor";
/// As long as the challenge it carries lives.
const CHALLENGE_COOKIE_SECS: i64 = 600;

fn challenge_cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-slipway_signin" } else { CHALLENGE_COOKIE }
}

/// The `Set-Cookie` value carrying a waiting sign-in (or, empty, clearing it).
pub(super) fn challenge_cookie(value: &str, secure: bool) -> HeaderValue {
    let max_age = if value.is_empty() { 0 } else { CHALLENGE_COOKIE_SECS };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        challenge_cookie_name(secure),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&cookie).expect("secrets are ASCII")
}

/// A secret to add to an authenticator, as the set-up form shows it.
struct SetUp {
    /// The `otpauth://` URI as a QR code (SVG made of rectangles only: no text of ours).
    qr_svg: String,
    secret: String,
    /// Where the code goes.
    action: &'static str,
    /// Where a sign-in goes on to (a set-up during sign-in).
    next: Option<String>,
}

impl SetUp {
    fn of(enrolment: Enrolment, action: &'static str, next: Option<String>) -> Result<SetUp, PageError> {
        let qr = qrcode::QrCode::new(enrolment.otpauth_uri.as_bytes())
            .map_err(|e| PageError::Refused(ErrorKind::Internal, format!("QR code: {e}")))?;
        let qr_svg = qr.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).quiet_zone(true).build();
        // The key in groups of four, as authenticator apps show it.
        let secret = enrolment.secret.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ");
        Ok(SetUp { qr_svg, secret, action, next })
    }
}

#[derive(Template)]
#[template(path = "signin_two_factor.html")]
struct CodePage {
    chrome: Chrome,
    name: String,
    next: String,
    /// Set when the account must set two-factor sign-in up to continue.
    setup: Option<SetUp>,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryCodesPage {
    chrome: Chrome,
    codes: Vec<String>,
    next: String,
}

#[derive(Deserialize)]
pub(super) struct NextQuery {
    next: Option<String>,
}

/// The waiting sign-in this browser holds, or a page that says it is gone.
async fn waiting(state: &WebState, visit: &Visit, headers: &HeaderMap) -> Result<Result<(String, Challenge), Response>, PageError> {
    let held = cookie(headers, challenge_cookie_name(visit.secure)).filter(|c| !c.is_empty()).map(str::to_owned);
    if let Some(secret) = held
        && let Some(challenge) = state.auth.challenge(&secret).await?
    {
        return Ok(Ok((secret, challenge)));
    }
    let page = MessagePage::new(visit, "Sign in again", "This sign-in expired or was completed: sign in again.").then("/signin", "Sign in");
    Ok(Err(visit.render_refused(ErrorKind::NotFound, page)?))
}

async fn code_page(
    state: &WebState,
    visit: &Visit,
    challenge: &Challenge,
    next: String,
    error: Option<String>,
) -> Result<CodePage, PageError> {
    let setup = match challenge.enabled {
        true => None,
        false => Some(SetUp::of(state.auth.enrolment(&challenge.account).await?, "/signin/two-factor", Some(next.clone()))?),
    };
    Ok(CodePage { chrome: visit.chrome_clone(), name: challenge.account.name.clone(), next, setup, error })
}

pub(super) async fn code_form(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<NextQuery>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let (_, challenge) = match waiting(&state, &visit, &headers).await? {
        Ok(held) => held,
        Err(gone) => return Ok(gone),
    };
    let page = code_page(&state, &visit, &challenge, same_origin_path(query.next.as_deref()), None).await?;
    no_store(visit.render(page)?)
}

#[derive(Deserialize)]
pub(super) struct CodeForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
    next: Option<String>,
}

pub(super) async fn submit_code(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<CodeForm>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let next = same_origin_path(form.next.as_deref());
    let (secret, challenge) = match waiting(&state, &visit, &headers).await? {
        Ok(held) => held,
        Err(gone) => return Ok(gone),
    };
    let outcome = match challenge.enabled {
        true => state.auth.complete_sign_in(&secret, &form.code).await.map(|opened| (opened, Vec::new())),
        false => state.auth.enrol_and_sign_in(&secret, &form.code).await,
    };
    match outcome {
        Ok((opened, codes)) => signed_in(&visit, opened, codes, next),
        Err(e @ (AuthError::Invalid(_) | AuthError::Throttled(_) | AuthError::Conflict(_))) => {
            let page = code_page(&state, &visit, &challenge, next, Some(e.to_string())).await?;
            with_retry_after(visit.render_refused(e.kind(), page)?, &e)
        }
        Err(e) => Err(e.into()),
    }
}

/// The session's cookie is set and the challenge's cleared; recovery codes from a set-up
/// are shown once before going on.
fn signed_in(visit: &Visit, opened: OpenedSession, codes: Vec<String>, next: String) -> PageResult {
    let mut response = if codes.is_empty() {
        Redirect::to(&next).into_response()
    } else {
        let page = RecoveryCodesPage {
            chrome: Chrome { user: Some(opened.account.name.clone()), csrf: opened.csrf.clone(), ..visit.chrome_clone() },
            codes,
            next,
        };
        no_store(visit.render(page)?)?
    };
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, session_cookie(&opened.cookie, visit.secure));
    headers.append(header::SET_COOKIE, challenge_cookie("", visit.secure));
    Ok(response)
}

fn no_store(mut response: Response) -> PageResult {
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

fn with_retry_after(mut response: Response, e: &AuthError) -> PageResult {
    if let Some(secs) = e.retry_after() {
        response.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    Ok(response)
}

#[derive(Template)]
#[template(path = "settings_two_factor.html")]
struct SettingsPage {
    chrome: Chrome,
    enabled: bool,
    required: bool,
    recovery_codes_left: i64,
    /// An unfinished set-up, waiting for its first code.
    setup: Option<SetUp>,
    notice: Option<String>,
    error: Option<String>,
}

impl SettingsPage {
    async fn of(state: &WebState, visit: &Visit) -> Result<SettingsPage, PageError> {
        let account = &visit.require(SETTINGS_PATH)?.account;
        let status = state.auth.two_factor_status(account).await?;
        let setup = match status.enabled {
            true => None,
            false => {
                state.auth.unfinished_enrolment(account).await?.map(|e| SetUp::of(e, "/settings/two-factor/enable", None)).transpose()?
            }
        };
        Ok(SettingsPage {
            chrome: visit.chrome_clone(),
            enabled: status.enabled,
            required: status.required,
            recovery_codes_left: status.recovery_codes_left,
            setup,
            notice: None,
            error: None,
        })
    }

    fn refused(mut self, visit: &Visit, e: AuthError) -> PageResult {
        if !matches!(
            e.kind(),
            ErrorKind::Invalid | ErrorKind::Conflict | ErrorKind::Forbidden | ErrorKind::Throttled | ErrorKind::Unavailable
        ) {
            return Err(e.into());
        }
        self.error = Some(e.to_string());
        with_retry_after(visit.render_refused(e.kind(), self)?, &e)
    }
}

#[derive(Deserialize)]
pub(super) struct DoneQuery {
    done: Option<String>,
}

pub(super) async fn settings(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<DoneQuery>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let mut page = SettingsPage::of(&state, &visit).await?;
    page.notice = match query.done.as_deref() {
        Some("off") => Some("Two-factor sign-in is off: your password alone signs you in.".into()),
        _ => None,
    };
    no_store(visit.render(page)?)
}

#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

/// Starts (or starts again) setting up: a new secret, shown on the settings page.
pub(super) async fn begin(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<CsrfOnly>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(SETTINGS_PATH)?.account;
    match state.auth.begin_two_factor(account).await {
        Ok(_) => Ok(Redirect::to(SETTINGS_PATH).into_response()),
        Err(e) => SettingsPage::of(&state, &visit).await?.refused(&visit, e),
    }
}

pub(super) async fn enable(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<CodeForm>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(SETTINGS_PATH)?.account;
    match state.auth.enable_two_factor(account, &form.code).await {
        Ok(codes) => no_store(visit.render(RecoveryCodesPage { chrome: visit.chrome_clone(), codes, next: SETTINGS_PATH.into() })?),
        Err(e) => SettingsPage::of(&state, &visit).await?.refused(&visit, e),
    }
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn new_recovery_codes(State(state): State<WebState>, headers: HeaderMap, request: axum::extract::Request) -> PageResult {
    let (visit, form, ip) = password_form(&state, &headers, request).await?;
    let account = &visit.require(SETTINGS_PATH)?.account;
    match state.auth.new_recovery_codes(account, &form.password, ip).await {
        Ok(codes) => no_store(visit.render(RecoveryCodesPage { chrome: visit.chrome_clone(), codes, next: SETTINGS_PATH.into() })?),
        Err(e) => SettingsPage::of(&state, &visit).await?.refused(&visit, e),
    }
}

pub(super) async fn disable(State(state): State<WebState>, headers: HeaderMap, request: axum::extract::Request) -> PageResult {
    let (visit, form, ip) = password_form(&state, &headers, request).await?;
    let account = &visit.require(SETTINGS_PATH)?.account;
    match state.auth.disable_two_factor(account, &form.password, ip).await {
        Ok(()) => Ok(Redirect::to(&format!("{SETTINGS_PATH}?done=off")).into_response()),
        Err(e) => SettingsPage::of(&state, &visit).await?.refused(&visit, e),
    }
}

async fn password_form(
    state: &WebState,
    headers: &HeaderMap,
    request: axum::extract::Request,
) -> Result<(Visit, PasswordForm, Option<std::net::IpAddr>), PageError> {
    let ip = client_ip(request.extensions());
    let Form(form) =
        Form::<PasswordForm>::from_request(request, &()).await.map_err(|e| PageError::Refused(ErrorKind::Malformed, e.body_text()))?;
    let visit = Visit::of(state, headers).await?;
    visit.check_csrf(&form.csrf)?;
    Ok((visit, form, ip))
}

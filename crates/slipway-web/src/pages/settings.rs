//! The signed-in account's own settings: `/settings/tokens` lists its access tokens (never
//! their secrets), creates one (name, expiry, repository patterns, actions, API access) and
//! shows its secret once with the `docker login` line for this registry, and revokes.
//!
//! Creating redirects (so reloading the page never makes a second token); the secret rides
//! to the page in a cookie scoped to it, HttpOnly and SameSite=Strict, for two minutes,
//! and the page that shows it clears it: shown once, and never in a URL or a log.

use askama::Template;
use axum::Form;
use axum::extract::FromRequest as _;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use slipway_auth::scope::{ScopeRule, TokenRule, stored_rules};
use slipway_auth::{AccessTokenRecord, AuthError, SessionInfo, TOKEN_PREFIX, client_ip};
use slipway_types::ErrorKind;

use crate::WebState;
use crate::session::{cookie, session_token};

use super::account::MessagePage;
use super::{Chrome, PageError, PageResult, Visit, filters};

const TOKENS_PATH: &str = "/settings/tokens";
/// The cookie carrying a new token's `id.secret` to the page that shows it once.
const NEW_TOKEN_COOKIE: &str = "slipway_new_token";
const NEW_TOKEN_COOKIE_SECS: u32 = 120;
/// The expiries the form offers, in days; `never` is the empty choice.
pub(super) const EXPIRY_CHOICES: [(&str, &str); 5] =
    [("7", "7 days"), ("30", "30 days"), ("90", "90 days"), ("365", "a year"), ("", "never")];

/// A token as the list shows it.
pub(super) struct TokenRow {
    pub(super) id: String,
    pub(super) name: String,
    /// Its rules, readable: `nimbus/*: pull, push`, `API: read`.
    pub(super) access: Vec<String>,
    pub(super) created_at: i64,
    pub(super) last_used_at: Option<i64>,
    pub(super) expires_at: Option<i64>,
    /// `active`, `expired` or `revoked`.
    pub(super) status: &'static str,
}

/// What the create form held, kept when it is refused.
#[derive(Default)]
struct TokenDraft {
    name: String,
    expires: String,
    patterns: String,
    pull: bool,
    push: bool,
    delete: bool,
    api: String,
}

/// A token just made: its secret, shown this once.
struct Created {
    name: String,
    secret: String,
}

#[derive(Template)]
#[template(path = "settings_tokens.html")]
struct TokensPage {
    chrome: Chrome,
    tokens: Vec<TokenRow>,
    draft: TokenDraft,
    expiry_choices: &'static [(&'static str, &'static str)],
    created: Option<Created>,
    notice: Option<String>,
    error: Option<String>,
}

pub(super) fn describe(record: &AccessTokenRecord, now: i64) -> TokenRow {
    let access = match stored_rules(&record.scopes) {
        Ok(rules) => rules
            .iter()
            .map(|rule| match rule {
                TokenRule::Repository(rule) => {
                    let actions: Vec<&str> = rule.actions.iter().map(|a| a.as_str()).collect();
                    format!("{}: {}", rule.repositories, actions.join(", "))
                }
                TokenRule::Api { api } => format!("API: {}", api.as_str()),
            })
            .collect(),
        Err(_) => vec!["unreadable: refused when used".to_owned()],
    };
    let status = match (record.revoked_at, record.expires_at) {
        (Some(_), _) => "revoked",
        (None, Some(expires)) if expires <= now => "expired",
        _ => "active",
    };
    TokenRow {
        id: record.id.clone(),
        name: record.name.clone(),
        access,
        created_at: record.created_at,
        last_used_at: record.last_used_at,
        expires_at: record.expires_at,
        status,
    }
}

impl TokensPage {
    async fn of(state: &WebState, visit: &Visit) -> Result<TokensPage, super::PageError> {
        let viewer = visit.require(TOKENS_PATH)?;
        let now = state.auth.now_ms();
        let mut tokens: Vec<TokenRow> =
            state.auth.access_tokens_of(&viewer.account).await?.iter().map(|record| describe(record, now)).collect();
        // Active first, newest first within each.
        tokens.sort_by(|a, b| (a.status != "active").cmp(&(b.status != "active")).then(b.created_at.cmp(&a.created_at)));
        Ok(TokensPage {
            chrome: visit.chrome_clone(),
            tokens,
            draft: TokenDraft { expires: "90".into(), pull: true, ..TokenDraft::default() },
            expiry_choices: &EXPIRY_CHOICES,
            created: None,
            notice: None,
            error: None,
        })
    }
}

/// The `Set-Cookie` value carrying a new token to the page (or, empty, clearing it).
fn new_token_cookie(value: &str, secure: bool) -> HeaderValue {
    let max_age = if value.is_empty() { 0 } else { NEW_TOKEN_COOKIE_SECS };
    let cookie = format!(
        "{NEW_TOKEN_COOKIE}={value}; Path={TOKENS_PATH}; HttpOnly; SameSite=Strict; Max-Age={max_age}{}",
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&cookie).expect("ids and secrets are ASCII")
}

#[derive(Deserialize)]
pub(super) struct TokensQuery {
    /// Set by the redirect after a revocation.
    revoked: Option<String>,
}

pub(super) async fn tokens(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<TokensQuery>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let mut page = TokensPage::of(&state, &visit).await?;
    if query.revoked.is_some() {
        page.notice = Some("The token is revoked: tools that used it are signed out within minutes.".into());
    }
    let Some(carried) = cookie(&headers, NEW_TOKEN_COOKIE).filter(|c| !c.is_empty()) else { return visit.render(page) };
    // Shown only for an active token of this account (the cookie is the browser's own,
    // but a stale or foreign value shows nothing).
    if let Some((id, secret)) = carried.split_once('.')
        && let Some(token) = page.tokens.iter().find(|t| t.id == id && t.status == "active")
        && secret.starts_with(TOKEN_PREFIX)
    {
        page.created = Some(Created { name: token.name.clone(), secret: secret.to_owned() });
    }
    let mut response = visit.render(page)?;
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().append(header::SET_COOKIE, new_token_cookie("", visit.secure));
    Ok(response)
}

#[derive(Deserialize)]
pub(super) struct NewTokenForm {
    #[serde(default)]
    pub(super) csrf: String,
    #[serde(default)]
    pub(super) name: String,
    #[serde(default)]
    expires: String,
    /// Repository patterns, one per line (`acme/*`, `acme/app`).
    #[serde(default)]
    patterns: String,
    pull: Option<String>,
    push: Option<String>,
    delete: Option<String>,
    /// `read`, `write` or empty (no API use).
    #[serde(default)]
    api: String,
}

/// The rules a form asks for, or why it cannot be a token.
pub(super) fn rules_of(form: &NewTokenForm) -> Result<(Vec<TokenRule>, Option<u32>), String> {
    let actions: Vec<&str> = [("pull", &form.pull), ("push", &form.push), ("delete", &form.delete)]
        .into_iter()
        .filter(|(_, on)| on.is_some())
        .map(|(a, _)| a)
        .collect();
    let patterns: Vec<&str> = form.patterns.lines().map(str::trim).filter(|p| !p.is_empty()).collect();
    if !patterns.is_empty() && actions.is_empty() {
        return Err("Choose what the token may do in those repositories: pull, push or delete.".into());
    }
    if patterns.is_empty() && !actions.is_empty() && form.api.is_empty() {
        return Err("Name the repositories the token may use (one pattern per line, e.g. acme/*), or give it API access only.".into());
    }
    let mut rules = Vec::new();
    for pattern in &patterns {
        let text = format!("{pattern}:{}", actions.join(","));
        let rule =
            ScopeRule::parse(&text).filter(|_| !pattern.contains(':')).ok_or_else(|| format!("{pattern:?} is not a repository pattern"))?;
        rules.push(TokenRule::Repository(rule));
    }
    match form.api.as_str() {
        "" => {}
        api => rules.push(TokenRule::parse(&format!("api:{api}")).ok_or_else(|| format!("API access {api:?} is not read or write"))?),
    }
    let expires = match form.expires.trim() {
        "" => None,
        days => Some(days.parse::<u32>().map_err(|_| format!("expiry {days:?} is not a number of days"))?),
    };
    Ok((rules, expires))
}

pub(super) async fn create_token(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<NewTokenForm>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let mut page = TokensPage::of(&state, &visit).await?;
    let account = &visit.require(TOKENS_PATH)?.account;
    let made = match rules_of(&form) {
        Ok((rules, expires)) => {
            state.auth.create_token(&account.name, form.name.trim(), &rules, expires).await.map_err(|e| match e.kind() {
                ErrorKind::Invalid | ErrorKind::Conflict => Ok(e.to_string()),
                _ => Err(e),
            })
        }
        Err(message) => Err(Ok(message)),
    };
    match made {
        Ok((secret, record)) => {
            let mut response = Redirect::to(TOKENS_PATH).into_response();
            response.headers_mut().insert(header::SET_COOKIE, new_token_cookie(&format!("{}.{secret}", record.id), visit.secure));
            Ok(response)
        }
        Err(Ok(message)) => {
            page.draft = TokenDraft {
                name: form.name,
                expires: form.expires,
                patterns: form.patterns,
                pull: form.pull.is_some(),
                push: form.push.is_some(),
                delete: form.delete.is_some(),
                api: form.api,
            };
            page.error = Some(message);
            visit.render_refused(ErrorKind::Invalid, page)
        }
        Err(Err(e)) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn revoke_token(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfOnly>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(TOKENS_PATH)?.account;
    state.auth.revoke_own_token(account, &id).await?;
    Ok(Redirect::to(&format!("{TOKENS_PATH}?revoked=1")).into_response())
}

// ---- /settings: profile, email, password, sessions ------------------------------------------

const SETTINGS_PATH: &str = "/settings";

#[derive(Template)]
#[template(path = "settings.html")]
struct SettingsPage {
    chrome: Chrome,
    name: String,
    email: String,
    verified: bool,
    role: String,
    organizations: Vec<(String, String)>,
    sessions: Vec<SessionInfo>,
    /// What the form just sent did, or why it was refused.
    notice: Option<String>,
    error: Option<String>,
    /// The email form's value, kept when it is refused.
    new_email: String,
}

impl SettingsPage {
    async fn of(state: &WebState, visit: &Visit, headers: &HeaderMap) -> Result<SettingsPage, super::PageError> {
        let account = &visit.require(SETTINGS_PATH)?.account;
        let cookie = session_token(&state.auth, headers).unwrap_or_default();
        Ok(SettingsPage {
            chrome: visit.chrome_clone(),
            name: account.name.clone(),
            email: account.email.clone().unwrap_or_default(),
            verified: account.email_verified_at.is_some(),
            role: account.site_role.clone(),
            organizations: state.auth.memberships(account).await?,
            sessions: state.auth.sessions(account, cookie).await?,
            notice: None,
            error: None,
            new_email: String::new(),
        })
    }
}

#[derive(Deserialize)]
pub(super) struct SettingsQuery {
    /// Set by the redirect after a change: which one.
    done: Option<String>,
}

pub(super) async fn settings(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<SettingsQuery>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let mut page = SettingsPage::of(&state, &visit, &headers).await?;
    page.notice = match query.done.as_deref() {
        Some("password") => Some("Your password is changed. Every other session was signed out; your access tokens still work.".into()),
        Some("email") => Some(
            "If no other account has that address, a link to confirm it is on its way there. Your address changes when it is followed."
                .into(),
        ),
        Some("sessions") => Some("Every other session is signed out.".into()),
        Some("left") => Some("You left the organization.".into()),
        _ => None,
    };
    visit.render(page)
}

/// Renders the settings page with a refusal's message, or passes an internal error on.
async fn refused(state: &WebState, visit: &Visit, headers: &HeaderMap, e: AuthError, new_email: String) -> PageResult {
    if !matches!(e.kind(), ErrorKind::Invalid | ErrorKind::Conflict | ErrorKind::Throttled | ErrorKind::Unavailable) {
        return Err(e.into());
    }
    let mut page = SettingsPage::of(state, visit, headers).await?;
    page.error = Some(e.to_string());
    page.new_email = new_email;
    let mut response = visit.render_refused(e.kind(), page)?;
    if let Some(secs) = e.retry_after() {
        response.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    Ok(response)
}

#[derive(Deserialize)]
pub(super) struct PasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    current: String,
    #[serde(default)]
    new: String,
}

pub(super) async fn change_password(State(state): State<WebState>, headers: HeaderMap, request: axum::extract::Request) -> PageResult {
    let ip = client_ip(request.extensions());
    let Form(form) =
        Form::<PasswordForm>::from_request(request, &()).await.map_err(|e| PageError::Refused(ErrorKind::Malformed, e.body_text()))?;
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(SETTINGS_PATH)?.account;
    let cookie = session_token(&state.auth, &headers).unwrap_or_default();
    match state.auth.change_password(account, &form.current, &form.new, cookie, ip).await {
        Ok(()) => Ok(Redirect::to("/settings?done=password").into_response()),
        Err(e) => refused(&state, &visit, &headers, e, String::new()).await,
    }
}

#[derive(Deserialize)]
pub(super) struct EmailForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn change_email(State(state): State<WebState>, headers: HeaderMap, request: axum::extract::Request) -> PageResult {
    let ip = client_ip(request.extensions());
    let Form(form) =
        Form::<EmailForm>::from_request(request, &()).await.map_err(|e| PageError::Refused(ErrorKind::Malformed, e.body_text()))?;
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(SETTINGS_PATH)?.account;
    match state.auth.request_email_change(account, &form.password, form.email.trim(), ip).await {
        Ok(()) => Ok(Redirect::to("/settings?done=email").into_response()),
        Err(e) => refused(&state, &visit, &headers, e, form.email).await,
    }
}

pub(super) async fn sign_out_others(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<CsrfOnly>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let account = &visit.require(SETTINGS_PATH)?.account;
    let cookie = session_token(&state.auth, &headers).unwrap_or_default();
    state.auth.sign_out_other_sessions(account, cookie).await?;
    Ok(Redirect::to("/settings?done=sessions").into_response())
}

#[derive(Deserialize)]
pub(super) struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// The page the email-change mail links to. The link's secret is single use, so following
/// it (as the verification link does) makes the change.
pub(super) async fn confirm_email(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<TokenQuery>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let page = |message: String| MessagePage::new(&visit, "Email address", message).then("/settings", "Your account");
    match state.auth.confirm_email_change(&query.token).await {
        Ok(account) => visit.render(page(format!("The email address of {} is now {}.", account.name, account.email.unwrap_or_default()))),
        Err(e) if e.kind() == ErrorKind::Internal => Err(e.into()),
        Err(e) => visit.render_refused(e.kind(), page(format!("{e}: ask for the change again on your account's page."))),
    }
}

#[derive(Deserialize)]
pub(super) struct DeleteForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    password: String,
    /// The account's name, typed again.
    #[serde(default)]
    confirm: String,
}

/// Deletes the signed-in account, after its name is typed again and its password asked;
/// refused with the reasons while it owns an organization or has a subscription with an
/// unpaid invoice or one that renews.
pub(super) async fn delete_account(State(state): State<WebState>, headers: HeaderMap, request: axum::extract::Request) -> PageResult {
    let ip = client_ip(request.extensions());
    let Form(form) =
        Form::<DeleteForm>::from_request(request, &()).await.map_err(|e| PageError::Refused(ErrorKind::Malformed, e.body_text()))?;
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let viewer = visit.require(SETTINGS_PATH)?;
    let account = &viewer.account;
    if form.confirm.trim() != account.name {
        let e = AuthError::Invalid(format!("type your user name, {}, to confirm", account.name));
        return refused(&state, &visit, &headers, e, String::new()).await;
    }
    let blockers = state.commerce.deletion_blockers(viewer).await?;
    if !blockers.is_empty() {
        let e = AuthError::Conflict(format!("the account cannot be deleted yet: {}", blockers.join("; ")));
        return refused(&state, &visit, &headers, e, String::new()).await;
    }
    match state.auth.delete_account(account, &form.password, ip).await {
        Ok(()) => {
            let page =
                MessagePage::new(&visit, "Account deleted", format!("The account {} is deleted, and you are signed out.", account.name));
            let mut response = visit.render(page)?;
            response.headers_mut().insert(header::SET_COOKIE, crate::session::session_cookie("", visit.secure));
            Ok(response)
        }
        Err(e) => refused(&state, &visit, &headers, e, String::new()).await,
    }
}

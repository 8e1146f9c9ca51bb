//! Who is asking: the session cookie, CSRF tokens, access tokens sent to the API as
//! bearer tokens, and the URLs links are built from.

use axum::http::{HeaderMap, HeaderValue, header};
use slipway_auth::AccountRecord;
use slipway_auth::access::{ApiTokenLimits, Subject};
use slipway_auth::{ApiToken, AuthError, AuthService};
use slipway_policy::{Action, Resource, decide};
use slipway_types::ErrorKind;

use crate::extract::SignedIn;
use crate::problem::Problem;

pub const SESSION_COOKIE: &str = "slipway_session";
/// Before sign-in, forms are protected by a double-submit cookie: a random value the page
/// embeds in the form and the browser sends back as this cookie.
pub const CSRF_COOKIE: &str = "slipway_csrf";
pub const SESSION_DAYS: i64 = 14;

/// Over https, cookie names carry the `__Host-` prefix: browsers then keep such a cookie
/// only if it is Secure, has Path=/ and no Domain, so neither a sibling subdomain nor a
/// plain-http page can plant one (a planted session or CSRF cookie defeats the
/// double-submit check). Browsers refuse the prefix without Secure, so over plain http
/// (tests, the demo) the names are bare; setter and reader both choose by `secure`.
pub fn session_cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-slipway_session" } else { SESSION_COOKIE }
}

pub fn csrf_cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-slipway_csrf" } else { CSRF_COOKIE }
}

/// Whether this request reached Slipway over https, so its cookies are Secure.
pub fn secure(auth: &AuthService, headers: &HeaderMap) -> bool {
    scheme(auth, headers) == "https"
}

/// The session cookie's value, under the name this request's scheme uses.
pub fn session_token<'a>(auth: &AuthService, headers: &'a HeaderMap) -> Option<&'a str> {
    cookie(headers, session_cookie_name(secure(auth, headers)))
}

pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(name)?.strip_prefix('='))
}

/// The signed-in account and its session's CSRF token, if any.
pub async fn session(auth: &AuthService, headers: &HeaderMap) -> Result<Option<(AccountRecord, String)>, Problem> {
    match session_token(auth, headers) {
        Some(value) => Ok(auth.session(value).await?),
        None => Ok(None),
    }
}

/// The signed-in account for the API, and its session's CSRF token (None for an access
/// token). An access token sent as `Authorization: Bearer` is used whenever there is one,
/// even beside a session cookie, and its API scopes must allow the request. With the
/// session cookie, state changes must echo the CSRF token in `X-CSRF-Token`; a bearer token
/// needs none, because it is never sent by a browser on its own (no cookie is involved, and
/// another site's page cannot set the header on a request to this origin).
pub async fn signed_in(auth: &AuthService, headers: &HeaderMap, changes_state: bool) -> Result<SignedIn, Problem> {
    if let Some((account, subject)) = token_caller(auth, headers, changes_state).await? {
        return Ok(SignedIn { account, csrf: None, subject: Some(subject) });
    }
    let (account, csrf) = session(auth, headers).await?.ok_or_else(|| Problem(ErrorKind::Unauthenticated, "sign in first".into()))?;
    if changes_state {
        let sent = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()).unwrap_or_default();
        if !same_secret(sent, &csrf) {
            return Err(Problem(ErrorKind::Forbidden, "missing or wrong X-CSRF-Token".into()));
        }
    }
    Ok(SignedIn { account, csrf: Some(csrf), subject: None })
}

/// The caller of an API request that anyone may make and signed-in callers see more of:
/// a bearer token's account (a bad token is refused, not taken for anonymous: the caller
/// meant to be someone), else the session's, else None.
pub async fn api_caller(auth: &AuthService, headers: &HeaderMap, changes_state: bool) -> Result<Option<SignedIn>, Problem> {
    if let Some((account, subject)) = token_caller(auth, headers, changes_state).await? {
        return Ok(Some(SignedIn { account, csrf: None, subject: Some(subject) }));
    }
    Ok(session(auth, headers).await?.map(|(account, csrf)| SignedIn { account, csrf: Some(csrf), subject: None }))
}

/// The value of `Authorization: Bearer VALUE`, if the request has one (the scheme is
/// case-insensitive). Other schemes are not read: the API takes only bearer tokens and
/// cookies, and a proxy in front may use Basic credentials of its own.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.as_bytes();
    let (scheme, rest) = value.split_at(value.iter().position(|&b| b == b' ').unwrap_or(value.len()));
    if !scheme.eq_ignore_ascii_case(b"bearer") {
        return None;
    }
    // A value that is not text cannot be a token: empty, it is refused as one.
    Some(std::str::from_utf8(rest).unwrap_or_default().trim())
}

/// The live access token a bearer value names: 401 for anything else (unknown, revoked,
/// expired, not an `slw_` token, or stored rules over the limits).
pub async fn check_bearer(auth: &AuthService, secret: &str) -> Result<ApiToken, Problem> {
    auth.api_token(secret).await.map_err(|e| match e {
        AuthError::BadCredentials => Problem(ErrorKind::Unauthenticated, "the access token is invalid, revoked or expired".into()),
        AuthError::Invalid(detail) => Problem(ErrorKind::Unauthenticated, detail),
        other => other.into(),
    })
}

/// The account a bearer token acts for, when the request carries one whose API scopes
/// allow it (403 when they do not).
/// A bearer token's account whose scopes allow the request, with the account's subject
/// (read for the check, and kept so that the handler need not read it again).
async fn token_caller(auth: &AuthService, headers: &HeaderMap, changes_state: bool) -> Result<Option<(AccountRecord, Subject)>, Problem> {
    let Some(secret) = bearer(headers) else { return Ok(None) };
    let token = check_bearer(auth, secret).await?;
    let subject = auth.subject(&token.account).await?;
    let action = if changes_state { Action::ApiWrite } else { Action::ApiRead };
    decide(&ApiTokenLimits::new(&token.rules).actor(&subject), action, &Resource::Api).into_result().map_err(crate::extract::refused)?;
    Ok(Some((token.account, subject)))
}

pub use slipway_auth::same_secret;

/// The base URL links in mail point to: the configured public URL, else the listen
/// address. Never this request's Host or X-Forwarded-* headers: the requester controls
/// them, and a password reset asked for with `Host: evil.example` would mail the victim's
/// code in a link to evil.example.
pub fn mail_base_url(auth: &AuthService) -> String {
    auth.settings().mail_link_base()
}

/// The browser's User-Agent, kept with a new session for the account's sessions list.
pub fn user_agent(headers: &HeaderMap) -> &str {
    headers.get(header::USER_AGENT).and_then(|h| h.to_str().ok()).unwrap_or_default()
}

pub fn host(headers: &HeaderMap) -> &str {
    headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost")
}

/// `https` behind a TLS-terminating proxy or with an https public URL.
pub fn scheme(auth: &AuthService, headers: &HeaderMap) -> &'static str {
    let forwarded = headers.get("x-forwarded-proto").is_some_and(|h| h.as_bytes() == b"https");
    if forwarded || auth.settings().public_url.as_deref().is_some_and(|u| u.starts_with("https://")) { "https" } else { "http" }
}

/// The registry host in every `docker pull`, `docker login` and install command, and in
/// `docker search` results: the public URL's host, else this request's Host (so a page read
/// at `localhost:5000` shows commands for `localhost:5000`: Docker keeps credentials per
/// host). A Host that is not a plain `host[:port]` falls back to the listen address, so the
/// value is safe in HTML, shell commands and JSON alike.
pub fn registry_host(auth: &AuthService, headers: &HeaderMap) -> String {
    if let Some(public) = auth.settings().public_host() {
        return public;
    }
    let host = host(headers);
    let plain = !host.is_empty() && host.len() <= 255 && host.bytes().all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b));
    if plain { host.to_owned() } else { auth.settings().listen.to_string() }
}

/// A `Set-Cookie` value for the session (or, with an empty value, one that ends it; ending
/// a `__Host-` cookie needs the same Secure, so pass the request's `secure` then too).
pub fn session_cookie(value: &str, secure: bool) -> HeaderValue {
    let max_age = if value.is_empty() { 0 } else { SESSION_DAYS * 24 * 3600 };
    let name = session_cookie_name(secure);
    let cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}", if secure { "; Secure" } else { "" });
    HeaderValue::from_str(&cookie).expect("cookie is ASCII")
}

/// A `Set-Cookie` value for the double-submit CSRF cookie (a hex value).
pub fn csrf_cookie(value: &str, secure: bool) -> HeaderValue {
    let name = csrf_cookie_name(secure);
    let cookie = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict{}", if secure { "; Secure" } else { "" });
    HeaderValue::from_str(&cookie).expect("cookie is ASCII")
}

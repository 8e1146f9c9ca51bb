//! Single sign-on in the browser: `/signin/sso/{provider}` sends the browser to the
//! provider, `/signin/sso/{provider}/callback` takes its answer and opens a session.
//!
//! The state travels twice: in the provider's redirect and in a cookie this browser got
//! when it started; the answer must carry both, so another site cannot sign a victim in to
//! the attacker's account by sending them a callback link. The cookie is SameSite=Lax: the
//! callback is a top-level navigation from the provider's site.

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use slipway_auth::{AuthError, SsoAnswer, client_ip};
use slipway_types::ErrorKind;

use crate::WebState;
use crate::session::{cookie, registry_host, scheme, session_cookie, user_agent};

use super::account::MessagePage;
use super::{PageResult, Visit, same_origin_path};

const STATE_COOKIE: &str = "slipway_sso";
/// As long as the sign-in it belongs to may take.
const STATE_COOKIE_SECS: i64 = 600;
/// The longest state or code taken from a callback's query.
const MAX_PARAM: usize = 4096;

fn state_cookie_name(secure: bool) -> &'static str {
    if secure { "__Host-slipway_sso" } else { STATE_COOKIE }
}

fn state_cookie(value: &str, secure: bool) -> HeaderValue {
    let max_age = if value.is_empty() { 0 } else { STATE_COOKIE_SECS };
    let cookie = format!(
        "{}={value}; Path=/; HttpOnly; SameSite=Lax; Max-Age={max_age}{}",
        state_cookie_name(secure),
        if secure { "; Secure" } else { "" }
    );
    HeaderValue::from_str(&cookie).expect("states are URL-safe ASCII")
}

/// Where the provider sends the browser back: the same for the start and the answer,
/// built like every other address the site shows (the public URL, else this Host).
fn redirect_uri(state: &WebState, headers: &HeaderMap, provider: &str) -> String {
    format!("{}://{}/signin/sso/{provider}/callback", scheme(&state.auth, headers), registry_host(&state.auth, headers))
}

#[derive(Deserialize)]
pub(super) struct StartQuery {
    next: Option<String>,
}

pub(super) async fn start(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    Query(query): Query<StartQuery>,
    request: axum::extract::Request,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let next = same_origin_path(query.next.as_deref());
    let ip = client_ip(request.extensions());
    match state.auth.begin_sso(&provider, &redirect_uri(&state, &headers, &provider), &next, ip).await {
        Ok(started) => {
            let mut response = Redirect::to(&started.url).into_response();
            response.headers_mut().insert(header::SET_COOKIE, state_cookie(&started.state, visit.secure));
            Ok(response)
        }
        Err(e) => refused(&visit, e),
    }
}

#[derive(Deserialize)]
pub(super) struct CallbackQuery {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    /// Set when the provider refused (the person cancelled, or the client is not allowed).
    error: Option<String>,
    error_description: Option<String>,
}

pub(super) async fn callback(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(provider): Path<String>,
    Query(query): Query<CallbackQuery>,
    request: axum::extract::Request,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    if let Some(error) = &query.error {
        let why = query.error_description.as_deref().unwrap_or(error);
        let why: String = why.chars().take(200).collect();
        return refused(&visit, AuthError::Invalid(format!("the sign-in provider said no: {why}")));
    }
    if query.code.is_empty() || query.code.len() > MAX_PARAM || query.state.len() > MAX_PARAM {
        return refused(&visit, AuthError::Invalid("single sign-on refused: the answer has no usable code or state".into()));
    }
    let held = cookie(&headers, state_cookie_name(visit.secure)).unwrap_or_default();
    let answer = SsoAnswer {
        provider: &provider,
        state: &query.state,
        cookie_state: held,
        code: &query.code,
        redirect_uri: &redirect_uri(&state, &headers, &provider),
        ip: client_ip(request.extensions()),
        user_agent: user_agent(&headers),
    };
    match state.auth.finish_sso(&answer).await {
        Ok((opened, next)) => {
            let mut response = Redirect::to(&same_origin_path(Some(&next))).into_response();
            let headers = response.headers_mut();
            headers.append(header::SET_COOKIE, session_cookie(&opened.cookie, visit.secure));
            headers.append(header::SET_COOKIE, state_cookie("", visit.secure));
            Ok(response)
        }
        Err(e) => refused(&visit, e),
    }
}

/// A readable page with the refusal's status and a way back to the sign-in page.
fn refused(visit: &Visit, e: AuthError) -> PageResult {
    let kind = e.kind();
    if kind == ErrorKind::Internal {
        return Err(e.into());
    }
    let retry_after = e.retry_after();
    let page = MessagePage::new(visit, "Single sign-on did not work", e.to_string()).then("/signin", "Back to sign-in");
    let mut response = visit.render_refused(kind, page)?;
    if let Some(secs) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    response.headers_mut().append(header::SET_COOKIE, state_cookie("", visit.secure));
    Ok(response)
}

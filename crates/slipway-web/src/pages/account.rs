//! Signing up, in and out, and the links mailed to verify addresses.

use askama::Template;
use axum::Form;
use axum::extract::{FromRequest as _, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use slipway_auth::{AuthError, client_ip};
use slipway_types::ErrorKind;

use crate::WebState;
use crate::session::{scheme, session_cookie, session_token};

use super::{Chrome, PageError, PageResult, Visit, same_origin_path};

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

pub(super) async fn signup_form(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.render(SignupPage { chrome: visit.chrome_clone(), name: String::new(), email: String::new(), error: None })
}

#[derive(Deserialize)]
pub(super) struct SignupForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn signup(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<SignupForm>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    match state.auth.sign_up(form.name.trim(), form.email.trim(), &form.password).await {
        // Redirect after the POST, so reloading the page does not sign up again.
        Ok(_) => Ok(Redirect::to("/signup/sent").into_response()),
        Err(e) if matches!(e.kind(), ErrorKind::Invalid | ErrorKind::Conflict) => {
            let page = SignupPage { chrome: visit.chrome_clone(), name: form.name, email: form.email, error: Some(e.to_string()) };
            visit.render_refused(e.kind(), page)
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn signup_sent(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
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
pub(super) struct NextQuery {
    next: Option<String>,
}

pub(super) async fn signin_form(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<NextQuery>) -> PageResult {
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

pub(super) async fn signin(State(state): State<WebState>, headers: HeaderMap, request: axum::extract::Request) -> PageResult {
    let ip = client_ip(request.extensions());
    let Form(form) =
        Form::<SigninForm>::from_request(request, &()).await.map_err(|e| PageError::Refused(ErrorKind::Malformed, e.body_text()))?;
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
            let page = SigninPage { chrome: visit.chrome_clone(), name: form.name, next, error: Some(message) };
            let mut response = visit.render_refused(e.kind(), page)?;
            if let Some(secs) = e.retry_after() {
                response.headers_mut().insert(header::RETRY_AFTER, secs.into());
            }
            Ok(response)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct CsrfForm {
    #[serde(default)]
    csrf: String,
}

pub(super) async fn signout(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<CsrfForm>) -> PageResult {
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
pub(super) struct TokenQuery {
    #[serde(default)]
    token: String,
}

/// What a verification link that is refused says, whatever the reason.
const LINK_REFUSED: &str = "This verification link is invalid, used or expired.";

/// The page the verification email links to. The link's secret is single-use, so a GET
/// that consumes it is safe to follow.
pub(super) async fn verify_email(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<TokenQuery>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let page = |message: &str| MessagePage { chrome: visit.chrome_clone(), title: "Email verification".into(), message: message.into() };
    match state.auth.verify_email(&query.token).await {
        Ok(()) => visit.render(page("Your email address is verified. You can sign in now.")),
        Err(e) if e.kind() == ErrorKind::Internal => Err(e.into()),
        Err(e) => visit.render_refused(e.kind(), page(LINK_REFUSED)),
    }
}

pub(super) async fn verify_publisher_email(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let page = |message: String| MessagePage { chrome: visit.chrome_clone(), title: "Publisher email verification".into(), message };
    match state.catalog.verify_publisher_email(&query.token).await {
        Ok(org) => visit.render(page(format!("The company email address of {org} is verified."))),
        Err(e) if e.kind() == ErrorKind::Internal => Err(e.into()),
        Err(e) => visit.render_refused(e.kind(), page(LINK_REFUSED.to_owned())),
    }
}

#[derive(Template)]
#[template(path = "forgot_password.html")]
struct ForgotPasswordPage {
    chrome: Chrome,
    email: String,
    error: Option<String>,
}

pub(super) async fn forgot_password_form(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.render(ForgotPasswordPage { chrome: visit.chrome_clone(), email: String::new(), error: None })
}

#[derive(Deserialize)]
struct ForgotPasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// Mails a reset link if the address is an account's, and answers the same either way:
/// the page does not tell who has an account.
pub(super) async fn forgot_password(State(state): State<WebState>, headers: HeaderMap, request: axum::extract::Request) -> PageResult {
    let ip = client_ip(request.extensions());
    let Form(form) = Form::<ForgotPasswordForm>::from_request(request, &())
        .await
        .map_err(|e| PageError::Refused(ErrorKind::Malformed, e.body_text()))?;
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    match state.auth.request_password_reset(form.email.trim(), ip).await {
        Ok(()) => visit.render(MessagePage {
            chrome: visit.chrome_clone(),
            title: "Check your email".into(),
            message: "If an account has this address, a link to choose a new password is on its way. It works for an hour.".into(),
        }),
        Err(e) if e.kind() == ErrorKind::Invalid => {
            let page = ForgotPasswordPage { chrome: visit.chrome_clone(), email: form.email, error: Some(e.to_string()) };
            visit.render_refused(e.kind(), page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Template)]
#[template(path = "reset_password.html")]
struct ResetPasswordPage {
    chrome: Chrome,
    token: String,
    error: Option<String>,
}

/// The form the reset mail links to. The link's code is used only when the form is sent:
/// following the link (or a mail scanner doing it) changes nothing.
pub(super) async fn reset_password_form(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<TokenQuery>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.render(ResetPasswordPage { chrome: visit.chrome_clone(), token: query.token, error: None })
}

#[derive(Deserialize)]
pub(super) struct ResetPasswordForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

pub(super) async fn reset_password(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<ResetPasswordForm>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    match state.auth.reset_password(&form.token, &form.password).await {
        Ok(()) => visit.render(MessagePage {
            chrome: visit.chrome_clone(),
            title: "Password changed".into(),
            message: "Your password is changed: sign in with it. Every other session was signed out and your access tokens were revoked."
                .into(),
        }),
        Err(e) if e.kind() == ErrorKind::Invalid => {
            let page = ResetPasswordPage { chrome: visit.chrome_clone(), token: form.token, error: Some(e.to_string()) };
            visit.render_refused(e.kind(), page)
        }
        Err(e) => Err(e.into()),
    }
}

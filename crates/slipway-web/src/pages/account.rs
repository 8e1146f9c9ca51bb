//! Signing up, in and out, and the links mailed to verify addresses.

use askama::Template;
use axum::Form;
use axum::extract::{FromRequest as _, Query, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use slipway_auth::{AuthError, SignInStep, SignedUp, client_ip};
use slipway_types::ErrorKind;

use crate::WebState;
use crate::session::{session_cookie, session_token, user_agent};

use super::{Chrome, PageError, PageResult, Visit, same_origin_path};

#[derive(Template)]
#[template(path = "message.html")]
pub(super) struct MessagePage {
    chrome: Chrome,
    title: String,
    message: String,
    /// Where to go next, as (path, text): the store front when empty.
    next: Vec<(String, &'static str)>,
}

impl MessagePage {
    pub(super) fn new(visit: &Visit, title: &str, message: impl Into<String>) -> MessagePage {
        MessagePage { chrome: visit.chrome_clone(), title: title.to_owned(), message: message.into(), next: Vec::new() }
    }

    pub(super) fn then(mut self, path: impl Into<String>, text: &'static str) -> MessagePage {
        self.next.push((path.into(), text));
        self
    }
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
        Ok(SignedUp::LinkSent) => Ok(Redirect::to("/signup/sent").into_response()),
        Ok(SignedUp::Verified) => Ok(Redirect::to("/signup/verified").into_response()),
        Err(e) if matches!(e.kind(), ErrorKind::Invalid | ErrorKind::Conflict) => {
            let page = SignupPage { chrome: visit.chrome_clone(), name: form.name, email: form.email, error: Some(e.to_string()) };
            visit.render_refused(e.kind(), page)
        }
        Err(e) => Err(e.into()),
    }
}

pub(super) async fn signup_sent(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.render(
        MessagePage::new(&visit, "Check your email", "We sent a link to your email address to verify it. Follow it, then sign in.")
            .then(RESEND_PATH, "No mail? Send the link again")
            .then("/signin", "Sign in"),
    )
}

/// Where sign-up leads in the demo store without a mail server.
pub(super) async fn signup_verified(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.render(
        MessagePage::new(
            &visit,
            "Your account is ready",
            "This demo store has no mail server, so your email address counts as verified without a link. Sign in to continue.",
        )
        .then("/signin", "Sign in"),
    )
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SigninPage {
    chrome: Chrome,
    name: String,
    next: String,
    error: Option<String>,
    /// The refusal was an unverified address: the page offers the link again.
    unverified: bool,
    /// Single sign-on providers: (name, label).
    sso: Vec<(String, String)>,
}

fn sso_buttons(state: &WebState) -> Vec<(String, String)> {
    state.auth.sso_providers().iter().map(|p| (p.name.clone(), p.label.clone())).collect()
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
        unverified: false,
        sso: sso_buttons(&state),
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
    match state.auth.sign_in(form.name.trim(), &form.password, ip, user_agent(&headers)).await {
        Ok(SignInStep::Session(opened)) => {
            let mut response = Redirect::to(&next).into_response();
            response.headers_mut().insert(header::SET_COOKIE, session_cookie(&opened.cookie, visit.secure));
            Ok(response)
        }
        Ok(SignInStep::SecondFactor { challenge, .. }) => {
            let mut response = Redirect::to(&format!("/signin/two-factor?next={}", super::encode(&next))).into_response();
            response.headers_mut().insert(header::SET_COOKIE, super::two_factor::challenge_cookie(&challenge, visit.secure));
            Ok(response)
        }
        Err(
            e @ (AuthError::BadCredentials | AuthError::Unverified | AuthError::SsoOnly(_) | AuthError::Throttled(_) | AuthError::Busy),
        ) => {
            let message = if matches!(e, AuthError::BadCredentials) { "Wrong user name or password.".to_owned() } else { e.to_string() };
            let unverified = matches!(e, AuthError::Unverified);
            let page = SigninPage {
                chrome: visit.chrome_clone(),
                name: form.name,
                next,
                error: Some(message),
                unverified,
                sso: sso_buttons(&state),
            };
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
    let page = |message: &str| MessagePage::new(&visit, "Email verification", message);
    match state.auth.verify_email(&query.token).await {
        Ok(()) => visit.render(page("Your email address is verified. You can sign in now.").then("/signin", "Sign in")),
        Err(e) if e.kind() == ErrorKind::Internal => Err(e.into()),
        Err(e) => visit.render_refused(e.kind(), page(LINK_REFUSED).then(RESEND_PATH, "Send a new link")),
    }
}

pub(super) async fn verify_publisher_email(
    State(state): State<WebState>,
    headers: HeaderMap,
    Query(query): Query<TokenQuery>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let page = |message: String| MessagePage::new(&visit, "Publisher email verification", message);
    match state.catalog.verify_publisher_email(&query.token).await {
        Ok(org) => visit.render(page(format!("The company email address of {org} is verified."))),
        Err(e) if e.kind() == ErrorKind::Internal => Err(e.into()),
        Err(e) => visit.render_refused(e.kind(), page(LINK_REFUSED.to_owned())),
    }
}

/// The path of the form that mails the verification link again.
const RESEND_PATH: &str = "/verify-email/resend";

/// A form that asks for an email address to mail a link to: a password reset, or the
/// verification link again.
#[derive(Template)]
#[template(path = "email_link.html")]
struct EmailLinkPage {
    chrome: Chrome,
    kind: &'static EmailLink,
    email: String,
    error: Option<String>,
}

/// What one of the email-link forms says and where it posts.
struct EmailLink {
    mails: Mails,
    id: &'static str,
    action: &'static str,
    title: &'static str,
    intro: &'static str,
    /// The page after sending: the same whoever has an account.
    sent: &'static str,
}

/// The link an email-link form mails.
enum Mails {
    Reset,
    Verification,
}

const FORGOT_PASSWORD: EmailLink = EmailLink {
    mails: Mails::Reset,
    id: "forgot-password",
    action: "/forgot-password",
    title: "Forgot your password?",
    intro: "Give your account's email address: we send it a link to choose a new password.",
    sent: "If an account has this address, a link to choose a new password is on its way. It works for an hour.",
};

const RESEND_VERIFICATION: EmailLink = EmailLink {
    mails: Mails::Verification,
    id: "resend-verification",
    action: RESEND_PATH,
    title: "Send the verification link again",
    intro: "Give the email address you signed up with: we send it a new link to verify it.",
    sent: "If an account is waiting for this address to be verified, a new link is on its way. It works for 48 hours.",
};

pub(super) async fn forgot_password_form(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    email_link_form(&state, &headers, &FORGOT_PASSWORD).await
}

pub(super) async fn resend_verification_form(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    email_link_form(&state, &headers, &RESEND_VERIFICATION).await
}

async fn email_link_form(state: &WebState, headers: &HeaderMap, kind: &'static EmailLink) -> PageResult {
    let visit = Visit::of(state, headers).await?;
    visit.render(EmailLinkPage { chrome: visit.chrome_clone(), kind, email: String::new(), error: None })
}

#[derive(Deserialize)]
struct EmailLinkForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    email: String,
}

/// Mails a reset link if the address is an account's, and answers the same either way:
/// the page does not tell who has an account.
pub(super) async fn forgot_password(State(state): State<WebState>, headers: HeaderMap, request: axum::extract::Request) -> PageResult {
    send_email_link(&state, &headers, request, &FORGOT_PASSWORD).await
}

/// Mails the verification link again if the address is an unverified account's, and
/// answers the same either way.
pub(super) async fn resend_verification(State(state): State<WebState>, headers: HeaderMap, request: axum::extract::Request) -> PageResult {
    send_email_link(&state, &headers, request, &RESEND_VERIFICATION).await
}

async fn send_email_link(state: &WebState, headers: &HeaderMap, request: axum::extract::Request, kind: &'static EmailLink) -> PageResult {
    let ip = client_ip(request.extensions());
    let Form(form) =
        Form::<EmailLinkForm>::from_request(request, &()).await.map_err(|e| PageError::Refused(ErrorKind::Malformed, e.body_text()))?;
    let visit = Visit::of(state, headers).await?;
    visit.check_csrf(&form.csrf)?;
    let email = form.email.trim();
    let sent = match kind.mails {
        Mails::Verification => state.auth.resend_verification(email, ip).await,
        Mails::Reset => state.auth.request_password_reset(email, ip).await,
    };
    match sent {
        Ok(()) => visit.render(MessagePage::new(&visit, "Check your email", kind.sent).then("/signin", "Back to sign in")),
        Err(e) if e.kind() == ErrorKind::Invalid => {
            let page = EmailLinkPage { chrome: visit.chrome_clone(), kind, email: form.email, error: Some(e.to_string()) };
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
        Ok(()) => visit.render(
            MessagePage::new(
                &visit,
                "Password changed",
                "Your password is changed: sign in with it. Every other session was signed out and your access tokens were revoked.",
            )
            .then("/signin", "Sign in"),
        ),
        Err(e) if e.kind() == ErrorKind::Invalid => {
            let page = ResetPasswordPage { chrome: visit.chrome_clone(), token: form.token, error: Some(e.to_string()) };
            visit.render_refused(e.kind(), page)
        }
        Err(e) => Err(e.into()),
    }
}

#[derive(Deserialize)]
pub(super) struct CodeQuery {
    #[serde(default)]
    code: String,
}

#[derive(Template)]
#[template(path = "invitation.html")]
struct InvitationPage {
    chrome: Chrome,
    code: String,
    org: String,
    role: String,
    /// The signed-in account's verified address is the invited one (the accept checks it
    /// again): otherwise the page says what to do instead of offering a button that fails.
    may_accept: bool,
}

/// The page the invitation mail links to: what it offers and an Accept button. Following
/// the link changes nothing (a mail scanner may follow it); accepting is a POST. As the
/// refusal does, the page never shows the invited address to another account.
pub(super) async fn invitation(State(state): State<WebState>, headers: HeaderMap, Query(query): Query<CodeQuery>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let here = format!("/invitations/accept?code={}", super::encode(&query.code));
    let viewer = visit.require(&here)?;
    let Some(invitation) = state.auth.invitation(&query.code).await? else {
        return visit.render_refused(
            ErrorKind::NotFound,
            MessagePage::new(
                &visit,
                "Invitation",
                "This invitation is invalid, used or expired: ask the organization's owner for a new one.",
            ),
        );
    };
    let account = &viewer.account;
    let may_accept =
        account.email_verified_at.is_some() && account.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(&invitation.email));
    visit.render(InvitationPage { chrome: visit.chrome_clone(), code: query.code, org: invitation.org, role: invitation.role, may_accept })
}

#[derive(Deserialize)]
pub(super) struct AcceptForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    code: String,
}

pub(super) async fn accept_invitation(State(state): State<WebState>, headers: HeaderMap, Form(form): Form<AcceptForm>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    visit.check_csrf(&form.csrf)?;
    let viewer = visit.require("/")?;
    match state.auth.accept_invitation(&viewer.account, &form.code).await {
        Ok((org, role)) => visit.render(
            MessagePage::new(&visit, "Invitation accepted", format!("You are now a member of {org}, as {}.", role.as_str()))
                .then(format!("/orgs/{org}/members"), "See its members")
                .then("/publish", "Go to the publisher portal"),
        ),
        Err(e) if e.kind() == ErrorKind::Internal => Err(e.into()),
        Err(e) => visit.render_refused(e.kind(), MessagePage::new(&visit, "Invitation", e.to_string())),
    }
}

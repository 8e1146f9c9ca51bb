//! Moderation in the web store: the moderators' queue and console, and the review forms
//! of both sides (the console's, and the publisher's on its listing editor). Each form
//! posts a move of the listing or of its pending revision, or a message; the catalog
//! decides who may make it (`Catalog::move_listing`, `move_revision`,
//! `add_review_message`).

use askama::Template;
use axum::Form;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect};
use serde::Deserialize;
use slipway_catalog::text::markdown_html;
use slipway_catalog::{
    Listing, ListingStatus, MoveRequest, PUBLISHER_AGREEMENT, PUBLISHER_AGREEMENT_VERSION, QueuedSubmission, ReviewState, Version, Viewer,
};
use slipway_security::SecuritySummary;
use slipway_types::ErrorKind;

use super::{Chrome, PageError, PageResult, Visit, filters};
use crate::WebState;
use crate::session::mail_base_url;

#[derive(Template)]
#[template(path = "moderation_queue.html")]
struct QueuePage {
    chrome: Chrome,
    queue: Vec<QueuedSubmission>,
}

/// Submissions waiting for a moderator, the longest waiting first.
pub(super) async fn queue(State(state): State<WebState>, headers: HeaderMap) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require("/moderation")?;
    let queue = state.catalog.moderation_queue(viewer).await?;
    visit.render(QueuePage { chrome: visit.chrome_clone(), queue })
}

#[derive(Template)]
#[template(path = "moderation_review.html")]
struct ReviewPage {
    chrome: Chrome,
    review: ReviewState,
    /// The listing as the revision would make it, else the listing.
    shown: Listing,
    versions: Vec<(Version, Option<SecuritySummary>)>,
    action: String,
}

/// One submission as a moderator reviews it: the listing (as a pending revision would
/// make it, with what the revision changes), its images' scans, the thread and the moves.
pub(super) async fn console(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((publisher, slug)): Path<(String, String)>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require(&console_path(&publisher, &slug))?;
    let review = state.catalog.review_state(viewer, &publisher, &slug).await?;
    let shown = review.revision.as_ref().map_or_else(|| review.listing.clone(), |r| r.listing.clone());
    let mut versions = Vec::new();
    for version in state.catalog.versions(&shown).await? {
        let security = crate::scan_api::summary(&state, &shown, &version.tier, &version.digest).await?;
        versions.push((version, security));
    }
    visit.render(ReviewPage { chrome: visit.chrome_clone(), review, shown, versions, action: console_path(&publisher, &slug) })
}

fn console_path(publisher: &str, slug: &str) -> String {
    format!("/moderation/{publisher}/{slug}")
}

/// A review form: `to` is `listing:STATUS`, `revision:STATUS` or `message`.
#[derive(Deserialize)]
pub(super) struct ReviewForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    message: String,
}

/// The console's form.
pub(super) async fn moderate(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((publisher, slug)): Path<(String, String)>,
    Form(form): Form<ReviewForm>,
) -> PageResult {
    let back = console_path(&publisher, &slug);
    review_form(&state, &headers, &publisher, &slug, &form, &back).await
}

/// The publisher's form, on its listing editor.
pub(super) async fn publisher_review(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path((org, slug)): Path<(String, String)>,
    Form(form): Form<ReviewForm>,
) -> PageResult {
    let back = format!("/publish/{org}/products/{slug}");
    review_form(&state, &headers, &org, &slug, &form, &back).await
}

/// Makes the move (or sends the message) a review form asks for and goes back to `back`,
/// or shows why it was refused.
async fn review_form(state: &WebState, headers: &HeaderMap, publisher: &str, slug: &str, form: &ReviewForm, back: &str) -> PageResult {
    let visit = Visit::of(state, headers).await?;
    let viewer = visit.require(back)?;
    visit.check_csrf(&form.csrf)?;
    review_step(state, viewer, publisher, slug, form).await?;
    Ok(Redirect::to(&format!("{back}#review")).into_response())
}

async fn review_step(state: &WebState, viewer: &Viewer, publisher: &str, slug: &str, form: &ReviewForm) -> Result<(), PageError> {
    let base = mail_base_url(&state.auth);
    let catalog = &state.catalog;
    let moved = |status: &str| {
        ListingStatus::parse(status)
            .map(|status| MoveRequest { status, message: form.message.clone() })
            .ok_or_else(|| PageError::Refused(ErrorKind::Invalid, format!("{status:?} is not a status")))
    };
    match form.to.split_once(':') {
        Some(("listing", status)) => {
            let request = moved(status)?;
            catalog.move_listing(viewer, publisher, slug, &request, &base).await?;
            if request.status == ListingStatus::Revoked {
                crate::moderation_api::end_revoked_subscriptions(state).await;
            }
        }
        Some(("revision", status)) => {
            catalog.move_revision(viewer, publisher, slug, &moved(status)?, &base).await?;
        }
        _ if form.to == "release" => {
            catalog.release_versions(viewer, publisher, slug, &base).await?;
        }
        _ if form.to == "message" => {
            catalog.add_review_message(viewer, publisher, slug, &form.message, &base).await?;
        }
        _ => return Err(PageError::Refused(ErrorKind::Invalid, "choose what to do: a move or a message".into())),
    }
    Ok(())
}

#[derive(Template)]
#[template(path = "agreement.html")]
struct AgreementPage {
    chrome: Chrome,
    org: String,
    /// The agreement, rendered (sanitised Markdown).
    text: String,
    version: i64,
    /// The version `org` accepted last, 0 for none.
    accepted: i64,
}

/// The publisher agreement, and the button to accept it for `org`.
pub(super) async fn agreement(State(state): State<WebState>, headers: HeaderMap, Path(org): Path<String>) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let viewer = visit.require(&format!("/publish/{org}/agreement"))?;
    let accepted = state.catalog.accepted_publisher_agreement(viewer, &org).await?.unwrap_or(0);
    let text = markdown_html(PUBLISHER_AGREEMENT);
    visit.render(AgreementPage { chrome: visit.chrome_clone(), org, text, version: PUBLISHER_AGREEMENT_VERSION, accepted })
}

#[derive(Deserialize)]
pub(super) struct AgreementForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    version: i64,
}

pub(super) async fn accept_agreement(
    State(state): State<WebState>,
    headers: HeaderMap,
    Path(org): Path<String>,
    Form(form): Form<AgreementForm>,
) -> PageResult {
    let visit = Visit::of(&state, &headers).await?;
    let back = format!("/publish/{org}/agreement");
    let viewer = visit.require(&back)?;
    visit.check_csrf(&form.csrf)?;
    state.catalog.accept_publisher_agreement(viewer, &org, form.version).await?;
    Ok(Redirect::to(&back).into_response())
}

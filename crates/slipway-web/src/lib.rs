#![doc = include_str!("../README.md")]

mod account_api;
mod commerce_api;
mod docker_search;
mod extract;
mod fulfillment_api;
mod moderation_api;
mod pages;
mod problem;
mod robots_api;
mod sales_api;
mod scan_api;
mod security_policy_api;
mod session;
mod settings_api;
mod store_api;
mod two_factor_api;
mod webhook_api;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use slipway_auth::AuthService;
use slipway_catalog::Catalog;
use slipway_commerce::Commerce;
use slipway_security::Scanning;
use utoipa::OpenApi as _;

/// What every page and API handler reads.
#[derive(Clone)]
pub struct WebState {
    pub catalog: Catalog,
    pub commerce: Commerce,
    pub fulfillment: slipway_commerce::Fulfillment,
    pub auth: AuthService,
    pub scanning: Scanning,
}

impl axum::extract::FromRef<WebState> for AuthService {
    fn from_ref(state: &WebState) -> AuthService {
        state.auth.clone()
    }
}

/// The store front, the publisher portal, /api/v1 and /api/openapi.json.
pub fn router(state: WebState) -> Router {
    let assets = Router::new()
        .route("/api/openapi.json", get(openapi))
        .route("/static/app.css", get(|| asset("text/css; charset=utf-8", include_str!("../static/app.css"))))
        .route("/static/app.js", get(|| asset("text/javascript; charset=utf-8", include_str!("../static/app.js"))))
        .route("/static/favicon.svg", get(|| asset("image/svg+xml", include_str!("../static/favicon.svg"))))
        .route("/media/{id}", get(media))
        .with_state(state.clone());
    account_api::router(state.auth.clone())
        .merge(store_api::router(state.clone()))
        .merge(moderation_api::router(state.clone()))
        .merge(security_policy_api::router(state.clone()))
        .merge(commerce_api::router(state.clone()))
        .merge(sales_api::router(state.clone()))
        .merge(fulfillment_api::router(state.clone()))
        .merge(scan_api::router(state.clone()))
        .merge(webhook_api::router(state.clone()))
        .merge(docker_search::router(state.clone()))
        .merge(settings_api::router(state.clone()))
        .merge(two_factor_api::router(state.clone()))
        .merge(robots_api::router(state.clone()))
        .merge(pages::router(state))
        .merge(assets)
        .layer(axum::middleware::from_fn(security_headers))
}

/// Operations only a signed-in session may call (`extract::SessionOnly`): an access token
/// gets 403 there.
const SESSION_ONLY: [&str; 17] = [
    "sign_out",
    "create_token",
    "revoke_token",
    "sessions",
    "sign_out_others",
    "change_password",
    "change_email",
    "delete_account",
    "two_factor_status",
    "begin_two_factor",
    "enable_two_factor",
    "new_recovery_codes",
    "disable_two_factor",
    "add_robot",
    "delete_robot",
    "create_robot_token",
    "revoke_robot_token",
];
/// Reads that anyone may make and signed-in callers see more of (`store_api::maybe_viewer`).
const OPTIONAL_CALLER: [&str; 6] = ["publisher_products", "product", "versions", "license", "scan_results", "product_security"];

/// The OpenAPI 3.1 document, generated from the handlers' annotations, plus the answers
/// the shared extractors give every operation (so no handler has to repeat them), and the
/// two ways to sign in: the session cookie (with `X-CSRF-Token` on changes) and an access
/// token as a bearer token.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
    use utoipa::openapi::{ContentBuilder, Ref, ResponseBuilder};
    let mut doc = store_api::StoreApi::openapi();
    doc.merge(account_api::AccountApi::openapi());
    doc.merge(settings_api::SettingsApi::openapi());
    doc.merge(two_factor_api::TwoFactorApi::openapi());
    doc.merge(robots_api::RobotsApi::openapi());
    doc.merge(moderation_api::ModerationApi::openapi());
    doc.merge(security_policy_api::SecurityPolicyApi::openapi());
    doc.merge(scan_api::ScanApi::openapi());
    doc.merge(commerce_api::CommerceApi::openapi());
    doc.merge(sales_api::SalesApi::openapi());
    let components = doc.components.get_or_insert_with(Default::default);
    components.add_security_scheme(
        "session",
        SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::with_description(
            session::SESSION_COOKIE,
            "The session cookie set by POST /api/v1/session (named __Host-slipway_session over https).",
        ))),
    );
    components.add_security_scheme(
        "csrf",
        SecurityScheme::ApiKey(ApiKey::Header(ApiKeyValue::with_description(
            "X-CSRF-Token",
            "The session's CSRF token (csrf_token from POST /api/v1/session or GET /api/v1/me), on every session request that changes state.",
        ))),
    );
    components.add_security_scheme(
        "bearer",
        SecurityScheme::Http(
            HttpBuilder::new()
                .scheme(HttpAuthScheme::Bearer)
                .bearer_format("slw_ access token")
                .description(Some(
                    "An access token (POST /api/v1/tokens, slipway admin create-token), without CSRF token. Its API scopes limit it: \
                     api:read allows GET, api:write everything else too, api:fulfillment the fulfillment API (/api/fulfillment/v1) alone. A token without \
                     an API scope gets 403; creating and revoking tokens and signing out need a session.",
                ))
                .build(),
        ),
    );
    let problem = |description: &str| {
        let content = ContentBuilder::new().schema(Some(Ref::from_schema_name("ProblemDocument"))).build();
        ResponseBuilder::new().description(description).content("application/problem+json", content).build()
    };
    let none: [&str; 0] = [];
    for item in doc.paths.paths.values_mut() {
        let operations = [(&mut item.get, false), (&mut item.put, true), (&mut item.post, true), (&mut item.delete, true)];
        for (operation, changes_state) in operations.into_iter().filter_map(|(op, changes)| op.as_mut().map(|op| (op, changes))) {
            let id = operation.operation_id.as_deref().unwrap_or_default();
            let session = if changes_state {
                SecurityRequirement::new("session", none).add("csrf", none)
            } else {
                SecurityRequirement::new("session", none)
            };
            let bearer = SecurityRequirement::new("bearer", none);
            // An operation that answers 401 needs a caller (sign-in itself excepted: its 401
            // is a wrong password).
            let needs_caller = operation.responses.responses.contains_key("401") && id != "sign_in";
            let security = if SESSION_ONLY.contains(&id) {
                Some(vec![session])
            } else if OPTIONAL_CALLER.contains(&id) {
                Some(vec![SecurityRequirement::default(), session, bearer])
            } else if needs_caller {
                Some(vec![session, bearer])
            } else {
                None
            };
            let responses = &mut operation.responses.responses;
            let mut add = |status: &str, description: &str| {
                responses.entry(status.to_owned()).or_insert_with(|| problem(description).into());
            };
            add("400", "Malformed query parameters or body");
            if operation.request_body.is_some() {
                add("415", "The body is not sent as application/json");
                add("422", "The body does not have the expected shape or breaks a rule");
            }
            if security.is_some() {
                add("401", "Not signed in, or the access token is invalid, revoked or expired (with WWW-Authenticate: Bearer)");
                add("403", "X-CSRF-Token missing or wrong, or the access token's API scopes do not allow this");
            }
            operation.security = security;
        }
    }
    // Merged after the shared answers: the fulfillment API takes bearer tokens alone and
    // lists its own answers.
    doc.merge(fulfillment_api::FulfillmentApi::openapi());
    // Signed by Stripe, not by a caller of the API: it lists its own answers.
    doc.merge(webhook_api::WebhookApi::openapi());
    doc
}

async fn openapi() -> Response {
    Json(openapi_document()).into_response()
}

async fn asset(content_type: &'static str, body: &'static str) -> Response {
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=300")], body).into_response()
}

/// Logos and screenshots. Ids are content hashes, so responses never change.
async fn media(State(state): State<WebState>, Path(id): Path<String>) -> Response {
    match state.catalog.media(&id).await {
        Ok(Some(m)) => {
            ([(header::CONTENT_TYPE, m.content_type), (header::CACHE_CONTROL, "public, max-age=31536000, immutable".to_owned())], m.content)
                .into_response()
        }
        Ok(None) => (StatusCode::NOT_FOUND, "no such image").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "reading media");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// Scripts, styles and images from this origin only; no framing, no plugins, no inline
/// script (so injected markup cannot run even if escaping were ever missed).
const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; \
                   form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

async fn security_headers(request: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    let html = headers.get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"text/html"));
    if html {
        headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        headers.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
    }
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    response
}

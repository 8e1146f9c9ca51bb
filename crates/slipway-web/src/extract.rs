//! Request extractors for /api/v1 whose rejections are problem documents, and the
//! signed-in caller, checked before any body is read (an anonymous caller gets 401 whatever
//! it sent).

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{Method, header};
use serde::de::DeserializeOwned;
use slipway_auth::AccountRecord;
use slipway_auth::AuthService;
use slipway_auth::access::{ApiTokenLimits, Subject};
use slipway_catalog::{Catalog, CatalogError, Viewer};
use slipway_policy::{Action, Refusal, Resource, decide};
use slipway_types::ErrorKind;

use crate::problem::Problem;
use crate::session::{bearer, check_bearer, signed_in};

/// Query parameters; malformed ones get 400.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        serde_urlencoded::from_str(parts.uri.query().unwrap_or_default())
            .map(ApiQuery)
            .map_err(|e| Problem(ErrorKind::Malformed, format!("query: {e}")))
    }
}

/// A JSON body: 415 without the JSON content type, 400 if it is not JSON, 422 if it does
/// not have the expected shape.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = Problem;

    async fn from_request(request: Request, state: &S) -> Result<Self, Problem> {
        let headers = request.headers().clone();
        let body = Bytes::from_request(request, state).await.map_err(|e| Problem(ErrorKind::TooLarge, e.body_text()))?;
        json_body(&headers, &body).map(ApiJson)
    }
}

/// A body read whole (for handlers that also hash it, such as idempotent ones), parsed as
/// `ApiJson` does: 415 without the JSON content type, 400 if not JSON, 422 if misshapen.
pub(crate) fn json_body<T: DeserializeOwned>(headers: &axum::http::HeaderMap, body: &[u8]) -> Result<T, Problem> {
    let json = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.starts_with("application/json"));
    if !json {
        return Err(Problem(ErrorKind::UnsupportedMediaType, "send the body as application/json".into()));
    }
    parse_json(body)
}

fn parse_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, Problem> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| Problem(ErrorKind::Malformed, format!("body is not JSON: {e}")))?;
    serde_json::from_value(value).map_err(|e| Problem(ErrorKind::Invalid, format!("body: {e}")))
}

/// The signed-in caller: an access token as `Authorization: Bearer` whose API scopes allow
/// the request, or the session cookie (then a request that changes state must also echo
/// the session's CSRF token in `X-CSRF-Token`).
pub struct SignedIn {
    pub account: AccountRecord,
    /// The session's CSRF token; None when the caller used an access token.
    pub csrf: Option<String>,
    /// The account's subject when checking the caller read it already (an access token's
    /// scopes are checked against it).
    pub subject: Option<Subject>,
}

impl SignedIn {
    /// The caller as the catalog and the store see it, reading the subject only if
    /// signing in did not.
    pub async fn viewer(self, catalog: &Catalog) -> Result<Viewer, CatalogError> {
        match self.subject {
            Some(subject) => Ok(Viewer { account: self.account, subject }),
            None => catalog.viewer(self.account).await,
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for SignedIn
where
    AuthService: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let auth = AuthService::from_ref(state);
        let changes_state = !matches!(parts.method, Method::GET | Method::HEAD);
        signed_in(&auth, &parts.headers, changes_state).await
    }
}

/// The caller of an endpoint that only a signed-in session may use: creating and revoking
/// access tokens, and signing out. An access token gets 403 there (401 if it is not a live
/// token), so a leaked token cannot make itself successors that outlive its revocation,
/// nor revoke the owner's other tokens.
pub struct SessionOnly(pub SignedIn);

impl<S: Send + Sync> FromRequestParts<S> for SessionOnly
where
    AuthService: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        let auth = AuthService::from_ref(state);
        if let Some(secret) = bearer(&parts.headers) {
            let token = check_bearer(&auth, secret).await?;
            let subject = auth.subject(&token.account).await?;
            let limits = ApiTokenLimits::new(&token.rules);
            let own = Resource::Account { id: &token.account.id };
            decide(&limits.actor(&subject), Action::ManageCredentials, &own).into_result().map_err(refused)?;
        }
        SignedIn::from_request_parts(parts, state).await.map(SessionOnly)
    }
}

/// A refusal of the policy as a problem document: its kind decides the status.
pub(crate) fn refused(refusal: Refusal) -> Problem {
    Problem(refusal.kind, refusal.reason)
}

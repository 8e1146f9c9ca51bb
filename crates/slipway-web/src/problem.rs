//! RFC 9457 problem documents: how every /api/v1 error is answered. A problem carries the
//! error's kind, which alone decides its `type`, `title` and status, so a refusal answers
//! the same here as on the store's pages and at /v2/.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use slipway_auth::AuthError;
use slipway_catalog::CatalogError;
use slipway_security::ScanningError;
use slipway_types::ErrorKind;
use utoipa::ToSchema;

/// An error response: `application/problem+json` with the kind and a detail for people.
#[derive(Debug)]
pub struct Problem(pub ErrorKind, pub String);

/// The problem document's shape, for the OpenAPI description.
#[derive(Serialize, ToSchema)]
pub struct ProblemDocument {
    /// `urn:slipway:problem:<kind>`: one per kind of error (invalid, unauthenticated,
    /// forbidden, not-found, conflict, ...), stable for programs to match on.
    #[schema(example = "urn:slipway:problem:not-found")]
    r#type: String,
    #[schema(example = "Not found")]
    title: String,
    #[schema(example = 404)]
    status: u16,
    #[schema(example = "no publisher acme")]
    detail: String,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let Problem(kind, detail) = self;
        let detail = if kind == ErrorKind::Internal {
            // Logged once, here at the edge; the client learns nothing about the cause.
            tracing::error!(error = %detail, "API request failed");
            "internal server error".to_owned()
        } else {
            detail
        };
        let status = StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = ProblemDocument { r#type: kind.problem_type(), title: kind.title().into(), status: kind.status(), detail };
        let mut response = (status, Json(body)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if kind == ErrorKind::Unavailable {
            // Only busy password hashing answers 503 here: worth retrying at once.
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if kind == ErrorKind::Unauthenticated {
            // A 401 must name a scheme that would work (RFC 9110): programs use the API
            // with an access token as a bearer token (RFC 6750).
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer realm=\"slipway\""));
        }
        response
    }
}

/// An `AuthError` as a problem response, with `Retry-After` when the refusal is about
/// timing (a throttled sign-in, busy password hashing).
pub fn auth_problem(e: AuthError) -> Response {
    let retry_after = e.retry_after();
    let mut response = Problem::from(e).into_response();
    if let Some(secs) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, secs.into());
    }
    response
}

impl From<AuthError> for Problem {
    fn from(e: AuthError) -> Problem {
        Problem(e.kind(), e.to_string())
    }
}

impl From<CatalogError> for Problem {
    fn from(e: CatalogError) -> Problem {
        Problem(e.kind(), e.to_string())
    }
}

impl From<slipway_commerce::CommerceError> for Problem {
    fn from(e: slipway_commerce::CommerceError) -> Problem {
        Problem(e.kind(), e.to_string())
    }
}

impl From<ScanningError> for Problem {
    fn from(e: ScanningError) -> Problem {
        Problem(e.kind(), e.to_string())
    }
}

pub type ApiResult = Result<Response, Problem>;

#[cfg(test)]
mod tests {
    use super::*;

    async fn document(problem: Problem) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = problem.into_response();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024).await.expect("body");
        (parts.status, parts.headers, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn every_kind_answers_its_status_type_and_title() {
        for kind in ErrorKind::ALL {
            let (status, headers, body) = document(Problem(kind, "why".into())).await;
            assert_eq!(status.as_u16(), kind.status(), "{kind:?}");
            assert_eq!(headers[header::CONTENT_TYPE], "application/problem+json");
            assert_eq!(body["type"], kind.problem_type());
            assert_eq!(body["title"], kind.title());
            assert_eq!(body["status"], kind.status());
            assert_eq!(headers.contains_key(header::WWW_AUTHENTICATE), kind == ErrorKind::Unauthenticated, "{kind:?}");
            assert_eq!(headers.contains_key(header::RETRY_AFTER), kind == ErrorKind::Unavailable, "{kind:?}");
            let shown = if kind == ErrorKind::Internal { "internal server error" } else { "why" };
            assert_eq!(body["detail"], shown, "{kind:?}");
        }
    }

    #[tokio::test]
    async fn a_throttled_sign_in_says_when_to_retry() {
        let response = auth_problem(AuthError::Throttled(30));
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(response.headers()[header::RETRY_AFTER], "30");
    }
}

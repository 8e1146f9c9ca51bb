//! RFC 9457 problem documents: how every /api/v1 error is answered.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use slipway_auth::AuthError;
use slipway_catalog::CatalogError;
use slipway_security::ScanningError;
use utoipa::ToSchema;

/// An error response: `application/problem+json`.
#[derive(Debug)]
pub struct Problem(pub StatusCode, pub String);

/// The problem document's shape, for the OpenAPI description.
#[derive(Serialize, ToSchema)]
pub struct ProblemDocument {
    #[schema(example = "about:blank")]
    r#type: String,
    title: String,
    status: u16,
    detail: String,
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let body = ProblemDocument {
            r#type: "about:blank".into(),
            title: self.0.canonical_reason().unwrap_or("error").into(),
            status: self.0.as_u16(),
            detail: self.1,
        };
        let mut response = (self.0, Json(body)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if self.0 == StatusCode::SERVICE_UNAVAILABLE {
            // Only busy password hashing answers 503 here: worth retrying at once.
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        if self.0 == StatusCode::UNAUTHORIZED {
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
        let status = match &e {
            AuthError::BadCredentials | AuthError::Unverified => StatusCode::UNAUTHORIZED,
            AuthError::Throttled(_) => StatusCode::TOO_MANY_REQUESTS,
            AuthError::Busy => StatusCode::SERVICE_UNAVAILABLE,
            AuthError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            AuthError::NotFound(_) => StatusCode::NOT_FOUND,
            AuthError::Forbidden(_) => StatusCode::FORBIDDEN,
            AuthError::Db(slipway_db::DbError::Conflict(_)) => StatusCode::CONFLICT,
            AuthError::Db(slipway_db::DbError::BadText(_)) => StatusCode::BAD_REQUEST,
            AuthError::Token(_) | AuthError::Db(_) | AuthError::Keys(_) => return internal(&e),
        };
        Problem(status, e.to_string())
    }
}

impl From<CatalogError> for Problem {
    fn from(e: CatalogError) -> Problem {
        let status = match &e {
            CatalogError::Invalid(_) => StatusCode::UNPROCESSABLE_ENTITY,
            CatalogError::NotFound(_) => StatusCode::NOT_FOUND,
            CatalogError::Forbidden(_) => StatusCode::FORBIDDEN,
            CatalogError::PaymentRequired(_) => StatusCode::PAYMENT_REQUIRED,
            CatalogError::Db(slipway_db::DbError::Conflict(_)) => StatusCode::CONFLICT,
            CatalogError::Db(slipway_db::DbError::BadText(_)) => StatusCode::BAD_REQUEST,
            CatalogError::Auth(_) => {
                let CatalogError::Auth(inner) = e else { unreachable!() };
                return inner.into();
            }
            CatalogError::Db(_) | CatalogError::Internal(_) => return internal(&e),
        };
        Problem(status, e.to_string())
    }
}

impl From<ScanningError> for Problem {
    fn from(e: ScanningError) -> Problem {
        let status = match &e {
            ScanningError::NotFound(_) => StatusCode::NOT_FOUND,
            ScanningError::Forbidden(_) => StatusCode::FORBIDDEN,
            ScanningError::Invalid(_) | ScanningError::Db(slipway_db::DbError::BadText(_)) => StatusCode::BAD_REQUEST,
            _ => return internal(&e),
        };
        Problem(status, e.to_string())
    }
}

/// Logs the cause once, here at the edge, and tells the client nothing about it.
fn internal(e: &dyn std::fmt::Display) -> Problem {
    tracing::error!(error = %e, "API request failed");
    Problem(StatusCode::INTERNAL_SERVER_ERROR, "internal server error".into())
}

pub type ApiResult = Result<Response, Problem>;

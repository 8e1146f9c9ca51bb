use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use slipway_oci::ErrorCode;

/// Everything the registry can refuse or fail with. Each variant maps to one of the
/// spec's codes in `code`, the single place where errors meet HTTP.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("{detail}")]
    Spec { code: ErrorCode, detail: String },
    #[error("upload is at offset {current}; chunk must start there")]
    OutOfOrder { current: u64, location: String },
    #[error("requested range not satisfiable for a blob of {size} bytes")]
    UnsatisfiableRange { size: u64 },
    #[error("{0}")]
    Db(#[from] slipway_db::DbError),
    #[error("{0}")]
    Storage(#[from] slipway_storage::StorageError),
}

impl RegistryError {
    pub fn spec(code: ErrorCode, detail: impl Into<String>) -> Self {
        RegistryError::Spec { code, detail: detail.into() }
    }

    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            RegistryError::Spec { code, .. } => Some(*code),
            RegistryError::OutOfOrder { .. } | RegistryError::UnsatisfiableRange { .. } => Some(ErrorCode::RangeInvalid),
            RegistryError::Db(_) | RegistryError::Storage(_) => None,
        }
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, code, message, detail) = match self.code() {
            Some(code) => {
                (StatusCode::from_u16(code.status()).unwrap_or(StatusCode::BAD_REQUEST), code.as_str(), code.message(), self.to_string())
            }
            None => {
                // The cause is logged once here; the client gets no internals.
                tracing::error!(error = %self, "registry internal error");
                if matches!(self, RegistryError::Storage(_)) {
                    metrics::counter!("slipway_storage_errors_total").increment(1);
                }
                (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "internal server error", String::new())
            }
        };
        let body = serde_json::json!({"errors": [{"code": code, "message": message, "detail": detail}]});
        let mut response = (status, axum::Json(body)).into_response();
        let headers = response.headers_mut();
        match self {
            RegistryError::OutOfOrder { current, location } => {
                headers.insert("Range", range_header(current));
                if let Ok(v) = HeaderValue::from_str(&location) {
                    headers.insert("Location", v);
                }
            }
            RegistryError::UnsatisfiableRange { size } => {
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
                    headers.insert("Content-Range", v);
                }
            }
            _ => {}
        }
        response
    }
}

/// The `Range` header of upload responses: `0-<last byte>`, or `0-0` when empty, as
/// docker-registry and the clients built against it expect.
pub fn range_header(size: u64) -> HeaderValue {
    HeaderValue::from_str(&format!("0-{}", size.saturating_sub(1))).expect("ascii")
}

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use slipway_oci::ErrorCode;
use slipway_types::ErrorKind;

/// Everything the registry can refuse or fail with. Each variant has a kind (`kind`),
/// which gives the HTTP status as on every other surface, and, for the OCI envelope, one
/// of the spec's codes (`code`).
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

    /// The spec's code for the envelope; None for failures the spec has no code for,
    /// which answer `UNKNOWN` as docker-registry does.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            RegistryError::Spec { code, .. } => Some(*code),
            RegistryError::OutOfOrder { .. } | RegistryError::UnsatisfiableRange { .. } => Some(ErrorCode::RangeInvalid),
            RegistryError::Db(_) | RegistryError::Storage(_) => None,
        }
    }

    /// What kind of failure this is, as on every surface.
    pub fn kind(&self) -> ErrorKind {
        match self {
            RegistryError::Spec { code, .. } => code_kind(*code),
            RegistryError::OutOfOrder { .. } | RegistryError::UnsatisfiableRange { .. } => ErrorKind::Invalid,
            RegistryError::Db(e) => e.kind(),
            RegistryError::Storage(e) => e.kind(),
        }
    }

    /// The HTTP status: the kind's, except where the distribution spec fixes another.
    pub fn status(&self) -> StatusCode {
        let status = match (self.code(), self.kind()) {
            // The spec answers 416 to a chunk out of order and to a range past the end.
            (Some(ErrorCode::RangeInvalid), _) => 416,
            // The spec answers 405 to an operation the registry does not offer.
            (Some(ErrorCode::Unsupported), _) => 405,
            // The spec answers 400 to every invalid request (NAME_INVALID, DIGEST_INVALID,
            // MANIFEST_INVALID, MANIFEST_BLOB_UNKNOWN, SIZE_INVALID, BLOB_UPLOAD_INVALID)
            // where the other surfaces answer 422, and clients expect it.
            (_, ErrorKind::Invalid) => 400,
            (_, kind) => kind.status(),
        };
        StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// The kind of each of the spec's codes.
fn code_kind(code: ErrorCode) -> ErrorKind {
    match code {
        ErrorCode::BlobUnknown | ErrorCode::BlobUploadUnknown | ErrorCode::ManifestUnknown | ErrorCode::NameUnknown => ErrorKind::NotFound,
        ErrorCode::BlobUploadInvalid
        | ErrorCode::DigestInvalid
        | ErrorCode::ManifestBlobUnknown
        | ErrorCode::ManifestInvalid
        | ErrorCode::NameInvalid
        | ErrorCode::SizeInvalid
        | ErrorCode::RangeInvalid
        | ErrorCode::Unsupported => ErrorKind::Invalid,
        ErrorCode::ManifestTooLarge => ErrorKind::TooLarge,
        ErrorCode::Unauthorized => ErrorKind::Unauthenticated,
        ErrorCode::Denied => ErrorKind::Forbidden,
        ErrorCode::TooManyRequests => ErrorKind::Throttled,
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let status = self.status();
        let (code, message, detail) = match (self.kind(), self.code()) {
            (ErrorKind::Internal, _) => {
                // The cause is logged once here; the client gets no internals.
                tracing::error!(error = %self, "registry internal error");
                if matches!(self, RegistryError::Storage(_)) {
                    metrics::counter!("slipway_storage_errors_total").increment(1);
                }
                ("UNKNOWN", "internal server error", String::new())
            }
            (_, Some(code)) => (code.as_str(), code.message(), self.to_string()),
            (kind, None) => ("UNKNOWN", kind.title(), self.to_string()),
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

#[cfg(test)]
mod tests {
    use super::*;

    const CODES: [ErrorCode; 16] = [
        ErrorCode::BlobUnknown,
        ErrorCode::BlobUploadInvalid,
        ErrorCode::BlobUploadUnknown,
        ErrorCode::DigestInvalid,
        ErrorCode::ManifestBlobUnknown,
        ErrorCode::ManifestInvalid,
        ErrorCode::ManifestUnknown,
        ErrorCode::NameInvalid,
        ErrorCode::NameUnknown,
        ErrorCode::SizeInvalid,
        ErrorCode::Unauthorized,
        ErrorCode::Denied,
        ErrorCode::Unsupported,
        ErrorCode::TooManyRequests,
        ErrorCode::RangeInvalid,
        ErrorCode::ManifestTooLarge,
    ];

    /// Each code answers the status the distribution spec gives it, which is its kind's
    /// status except for the spec's 400 (invalid requests), 405 and 416.
    #[test]
    fn every_code_answers_the_status_of_the_spec() {
        for code in CODES {
            let error = RegistryError::spec(code, "why");
            let spec = match code {
                ErrorCode::BlobUnknown | ErrorCode::BlobUploadUnknown | ErrorCode::ManifestUnknown | ErrorCode::NameUnknown => 404,
                ErrorCode::Unauthorized => 401,
                ErrorCode::Denied => 403,
                ErrorCode::Unsupported => 405,
                ErrorCode::TooManyRequests => 429,
                ErrorCode::RangeInvalid => 416,
                ErrorCode::ManifestTooLarge => 413,
                ErrorCode::BlobUploadInvalid
                | ErrorCode::DigestInvalid
                | ErrorCode::ManifestBlobUnknown
                | ErrorCode::ManifestInvalid
                | ErrorCode::NameInvalid
                | ErrorCode::SizeInvalid => 400,
            };
            assert_eq!(error.status().as_u16(), spec, "{code:?}");
            if spec != 400 && spec != 405 && spec != 416 {
                assert_eq!(spec, error.kind().status(), "{code:?} answers its kind's status");
            }
        }
    }

    #[test]
    fn every_error_has_a_kind() {
        let cases = [
            (RegistryError::spec(ErrorCode::Denied, "no"), ErrorKind::Forbidden),
            (RegistryError::OutOfOrder { current: 3, location: "/v2/a/blobs/uploads/x".into() }, ErrorKind::Invalid),
            (RegistryError::UnsatisfiableRange { size: 3 }, ErrorKind::Invalid),
            (RegistryError::Db(slipway_db::DbError::Conflict("raced".into())), ErrorKind::Conflict),
            (RegistryError::Db(slipway_db::DbError::Storage("disk".into())), ErrorKind::Internal),
            (RegistryError::Storage(slipway_storage::StorageError::UploadMissing), ErrorKind::Internal),
        ];
        for (error, kind) in cases {
            assert_eq!(error.kind(), kind, "{error:?}");
        }
        assert_eq!(RegistryError::UnsatisfiableRange { size: 3 }.status().as_u16(), 416);
    }

    async fn envelope(error: RegistryError) -> (u16, serde_json::Value) {
        let response = error.into_response();
        let status = response.status().as_u16();
        let bytes = axum::body::to_bytes(response.into_body(), 64 * 1024).await.expect("body");
        (status, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn the_envelope_keeps_the_specific_code_and_hides_internal_causes() {
        let (status, body) = envelope(RegistryError::spec(ErrorCode::BlobUnknown, "blob sha256:a is not in acme/app")).await;
        assert_eq!(status, 404);
        assert_eq!(body["errors"][0]["code"], "BLOB_UNKNOWN");
        assert_eq!(body["errors"][0]["detail"], "blob sha256:a is not in acme/app");
        let (status, body) = envelope(RegistryError::Db(slipway_db::DbError::Storage("disk unreadable".into()))).await;
        assert_eq!(status, 500);
        assert_eq!(body["errors"][0]["code"], "UNKNOWN");
        assert_eq!(body["errors"][0]["detail"], "");
        let (status, body) = envelope(RegistryError::Db(slipway_db::DbError::Conflict("raced".into()))).await;
        assert_eq!(status, 409);
        assert_eq!(body["errors"][0]["code"], "UNKNOWN");
        assert_eq!(body["errors"][0]["message"], "Conflict");
    }
}

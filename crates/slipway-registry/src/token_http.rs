//! `/auth/token` (Docker registry token authentication: GET with Basic credentials, and
//! OAuth2 POST with `grant_type=password` or `refresh_token`) and `/auth/jwks.json`: the
//! HTTP edge of `slipway_auth::AuthService`, which decides who gets which token.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use slipway_auth::scope::Scope;
use slipway_auth::{AuthError, AuthService, Credentials, client_ip};
use slipway_types::ErrorKind;

pub fn token_router(auth: AuthService) -> Router {
    Router::new().route("/auth/token", get(token_get).post(token_post)).route("/auth/jwks.json", get(jwks)).with_state(auth)
}

async fn jwks(State(auth): State<AuthService>) -> Json<serde_json::Value> {
    Json(auth.keys().jwks())
}

/// A refusal of the token service, in the registry's error envelope with the refusal's
/// own message.
struct TokenError(AuthError);

impl From<AuthError> for TokenError {
    fn from(e: AuthError) -> TokenError {
        TokenError(e)
    }
}

impl IntoResponse for TokenError {
    fn into_response(self) -> Response {
        let TokenError(e) = self;
        let kind = e.kind();
        let code = match kind {
            ErrorKind::Unauthenticated => "UNAUTHORIZED",
            ErrorKind::Forbidden => "DENIED",
            ErrorKind::Throttled | ErrorKind::Unavailable => "TOOMANYREQUESTS",
            ErrorKind::Malformed | ErrorKind::Invalid => "UNSUPPORTED",
            ErrorKind::NotFound
            | ErrorKind::Conflict
            | ErrorKind::PaymentRequired
            | ErrorKind::TooLarge
            | ErrorKind::UnsupportedMediaType
            | ErrorKind::Internal => "UNKNOWN",
        };
        let message = if kind == ErrorKind::Internal {
            // Logged once, here at the edge; the client learns nothing about the cause.
            tracing::error!(error = %e, "token service failure");
            "internal server error".to_owned()
        } else {
            e.to_string()
        };
        // The kind's status, but 400 for a request the token service cannot honour: the
        // status OAuth2 (RFC 6749 section 5.2) and the token specification give it, which
        // docker and containerd expect.
        let status = match kind {
            ErrorKind::Malformed | ErrorKind::Invalid => StatusCode::BAD_REQUEST,
            kind => StatusCode::from_u16(kind.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        };
        let body = serde_json::json!({"errors": [{"code": code, "message": message, "detail": null}]});
        let mut response = (status, Json(body)).into_response();
        if kind == ErrorKind::Unauthenticated {
            // A 401 names the scheme that would work (RFC 9110): Basic credentials here.
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"slipway\""));
        }
        if let Some(secs) = e.retry_after() {
            response.headers_mut().insert(header::RETRY_AFTER, secs.into());
        }
        response
    }
}

/// HTTP Basic credentials, if the request carries any.
fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let decoded = String::from_utf8(STANDARD.decode(encoded.trim()).ok()?).ok()?;
    let (user, secret) = decoded.split_once(':')?;
    Some((user.to_owned(), secret.to_owned()))
}

fn pairs(text: &str) -> Vec<(String, String)> {
    form_urlencoded::parse(text.as_bytes()).into_owned().collect()
}

fn first<'a>(pairs: &'a [(String, String)], key: &str) -> Option<&'a str> {
    pairs.iter().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
}

fn check_service(auth: &AuthService, pairs: &[(String, String)]) -> Result<(), AuthError> {
    match first(pairs, "service") {
        Some(service) if service != auth.settings().service => {
            Err(AuthError::Invalid(format!("unknown service {service:?}; this registry is {:?}", auth.settings().service)))
        }
        _ => Ok(()),
    }
}

async fn token_get(State(auth): State<AuthService>, request: Request) -> Result<Response, TokenError> {
    let ip = client_ip(request.extensions());
    let (headers, query) = (request.headers(), request.uri().query().map(str::to_owned));
    let params = pairs(query.as_deref().unwrap_or_default());
    check_service(&auth, &params)?;
    let credentials = match basic_credentials(headers) {
        Some((username, secret)) => Credentials::Password { username, secret },
        None => Credentials::Anonymous,
    };
    let who = auth.authenticate_with(credentials, ip).await?;
    // `scope` may repeat, and one value may hold several scopes separated by spaces.
    let scopes: Vec<Scope> =
        params.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| v.split(' ').filter_map(Scope::parse).collect::<Vec<_>>()).collect();
    let offline = first(&params, "offline_token") == Some("true");
    Ok(Json(auth.issue(&who, &scopes, offline).await?).into_response())
}

async fn token_post(State(auth): State<AuthService>, request: Request) -> Result<Response, TokenError> {
    let ip = client_ip(request.extensions());
    let body = axum::body::to_bytes(request.into_body(), 64 * 1024)
        .await
        .map_err(|_| AuthError::Invalid("token request body too large".into()))?;
    let form = pairs(std::str::from_utf8(&body).map_err(|_| AuthError::Invalid("form body is not UTF-8".into()))?);
    check_service(&auth, &form)?;
    let credentials = match first(&form, "grant_type") {
        Some("password") => Credentials::Password {
            username: first(&form, "username").unwrap_or_default().to_owned(),
            secret: first(&form, "password").unwrap_or_default().to_owned(),
        },
        Some("refresh_token") => Credentials::Refresh(first(&form, "refresh_token").unwrap_or_default().to_owned()),
        other => return Err(AuthError::Invalid(format!("unsupported grant_type {other:?}")).into()),
    };
    let who = auth.authenticate_with(credentials, ip).await?;
    let scopes: Vec<Scope> =
        form.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| v.split(' ').filter_map(Scope::parse).collect::<Vec<_>>()).collect();
    // OAuth2 clients get a refresh token when they ask for offline access; a password
    // grant from containerd stores one as its credential.
    let offline = first(&form, "access_type") == Some("offline");
    Ok(Json(auth.issue(&who, &scopes, offline).await?).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn answer(e: AuthError) -> (StatusCode, HeaderMap, serde_json::Value) {
        let (parts, body) = TokenError(e).into_response().into_parts();
        let bytes = axum::body::to_bytes(body, 64 * 1024).await.expect("body");
        (parts.status, parts.headers, serde_json::from_slice(&bytes).expect("json"))
    }

    #[tokio::test]
    async fn refusals_answer_their_kinds_status_in_the_envelope() {
        let (status, headers, body) = answer(AuthError::BadCredentials).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Basic realm=\"slipway\"");
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
        assert_eq!(body["errors"][0]["message"], "bad credentials");
        let (status, headers, body) = answer(AuthError::Throttled(7)).await;
        assert_eq!((status, &headers[header::RETRY_AFTER]), (StatusCode::TOO_MANY_REQUESTS, &HeaderValue::from(7)));
        assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS");
        assert_eq!(answer(AuthError::Busy).await.0, StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(answer(AuthError::Forbidden("no".into())).await.0, StatusCode::FORBIDDEN);
        let (status, _, body) = answer(AuthError::Invalid("unsupported grant_type".into())).await;
        assert_eq!((status, &body["errors"][0]["code"]), (StatusCode::BAD_REQUEST, &serde_json::json!("UNSUPPORTED")));
        let (status, _, body) = answer(AuthError::Keys("unreadable key file".into())).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(body["errors"][0]["message"], "internal server error");
    }
}

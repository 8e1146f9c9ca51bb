//! `/auth/token` (Docker registry token authentication: GET with Basic credentials, and
//! OAuth2 POST with `grant_type=password` or `refresh_token`) and `/auth/jwks.json`.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::AuthError;
use crate::client_addr::client_ip;
use crate::scope::Scope;
use crate::service::{AuthService, Credentials};

pub fn router(auth: AuthService) -> Router {
    Router::new().route("/auth/token", get(token_get).post(token_post)).route("/auth/jwks.json", get(jwks)).with_state(auth)
}

async fn jwks(State(auth): State<AuthService>) -> Json<serde_json::Value> {
    Json(auth.keys().jwks())
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = serde_json::json!({"errors": [{"code": code, "message": message, "detail": null}]});
    (status, Json(body)).into_response()
}

impl IntoResponse for AuthError {
    fn into_response(self) -> Response {
        match self {
            AuthError::BadCredentials => {
                let mut response = error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", "bad credentials");
                response.headers_mut().insert(header::WWW_AUTHENTICATE, header::HeaderValue::from_static("Basic realm=\"slipway\""));
                response
            }
            AuthError::Throttled(_) | AuthError::Busy => {
                let status = if matches!(self, AuthError::Busy) { StatusCode::SERVICE_UNAVAILABLE } else { StatusCode::TOO_MANY_REQUESTS };
                let mut response = error(status, "TOOMANYREQUESTS", &self.to_string());
                if let Some(secs) = self.retry_after() {
                    response.headers_mut().insert(header::RETRY_AFTER, secs.into());
                }
                response
            }
            AuthError::Unverified => error(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", &AuthError::Unverified.to_string()),
            AuthError::Invalid(message) => error(StatusCode::BAD_REQUEST, "UNSUPPORTED", &message),
            AuthError::Forbidden(message) => error(StatusCode::FORBIDDEN, "DENIED", &message),
            other => {
                tracing::error!(error = %other, "token service failure");
                error(StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", "internal server error")
            }
        }
    }
}

/// HTTP Basic credentials, if the request carries any.
pub fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
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

async fn token_get(State(auth): State<AuthService>, request: Request) -> Result<Response, AuthError> {
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

async fn token_post(State(auth): State<AuthService>, request: Request) -> Result<Response, AuthError> {
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
        other => return Err(AuthError::Invalid(format!("unsupported grant_type {other:?}"))),
    };
    let who = auth.authenticate_with(credentials, ip).await?;
    let scopes: Vec<Scope> =
        form.iter().filter(|(k, _)| k == "scope").flat_map(|(_, v)| v.split(' ').filter_map(Scope::parse).collect::<Vec<_>>()).collect();
    // OAuth2 clients get a refresh token when they ask for offline access; a password
    // grant from containerd stores one as its credential.
    let offline = first(&form, "access_type") == Some("offline");
    Ok(Json(auth.issue(&who, &scopes, offline).await?).into_response())
}

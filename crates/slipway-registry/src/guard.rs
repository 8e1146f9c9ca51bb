//! Access enforcement for /v2/: every request needs a registry token (Docker token
//! authentication) whose `access` claim covers what the request does. The decision of what
//! a token may hold is made once, at the token service; here it is only checked.

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use slipway_auth::{AuthService, Claims};

use crate::path::Route;

/// What a request needs: a resource and the actions the challenge should ask for.
pub struct Needed {
    /// `repository:<name>:<actions>` or `registry:catalog:*`; None for the base route.
    pub scope: Option<String>,
    kind: &'static str,
    name: String,
    action: &'static str,
}

impl Needed {
    pub fn of(route: &Route<'_>, method: &Method) -> Needed {
        let repo = |action: &'static str, challenge: &str| {
            let name = route.name().unwrap_or_default().to_owned();
            Needed { scope: Some(format!("repository:{name}:{challenge}")), kind: "repository", name, action }
        };
        match route {
            Route::Base => Needed { scope: None, kind: "", name: String::new(), action: "" },
            Route::Catalog => Needed { scope: Some("registry:catalog:*".into()), kind: "registry", name: "catalog".into(), action: "*" },
            Route::Manifest { .. } | Route::Blob { .. } if *method == Method::DELETE => repo("delete", "delete"),
            Route::Manifest { .. } if *method == Method::PUT => repo("push", "pull,push"),
            // Reading an upload's progress is a read, as in the reference registry.
            Route::Upload { .. } if *method == Method::GET => repo("pull", "pull"),
            Route::UploadStart { .. } | Route::Upload { .. } => repo("push", "pull,push"),
            Route::Tags { .. } | Route::Manifest { .. } | Route::Blob { .. } | Route::Referrers { .. } => repo("pull", "pull"),
        }
    }
}

pub enum Verdict {
    Allowed(Claims),
    Refused(Response),
}

/// The token service's address for the challenge: derived from the request's Host (and
/// X-Forwarded-Proto behind a TLS proxy) unless a public URL is configured.
fn realm(auth: &AuthService, headers: &HeaderMap) -> String {
    if let Some(url) = &auth.settings().public_url {
        return format!("{}/auth/token", url.trim_end_matches('/'));
    }
    let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
    let scheme = headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()).unwrap_or("http");
    format!("{scheme}://{host}/auth/token")
}

fn challenge(auth: &AuthService, headers: &HeaderMap, scope: Option<&str>, insufficient: bool) -> Response {
    let mut value = format!("Bearer realm=\"{}\",service=\"{}\"", realm(auth, headers), auth.settings().service);
    if let Some(scope) = scope {
        value.push_str(&format!(",scope=\"{scope}\""));
    }
    if insufficient {
        value.push_str(",error=\"insufficient_scope\"");
    }
    let body = serde_json::json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required", "detail": scope}]});
    let mut response = (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
    if let Ok(v) = HeaderValue::from_str(&value) {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    response
}

fn denied(message: String) -> Response {
    let body = serde_json::json!({"errors": [{"code": "DENIED", "message": message, "detail": null}]});
    (StatusCode::FORBIDDEN, axum::Json(body)).into_response()
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    value.strip_prefix("Bearer ").or_else(|| value.strip_prefix("bearer ")).map(str::trim)
}

pub async fn check(auth: &AuthService, headers: &HeaderMap, needed: &Needed) -> Verdict {
    let claims = match bearer(headers).map(|t| auth.verify(t)) {
        Some(Ok(claims)) => claims,
        _ => return Verdict::Refused(challenge(auth, headers, needed.scope.as_deref(), false)),
    };
    if needed.scope.is_none() || claims.allows(needed.kind, &needed.name, needed.action) {
        return Verdict::Allowed(claims);
    }
    // The token lacks the action. If its holder has the right (they asked for a token with
    // other scopes), challenge so the client fetches a fitting token; if not, say why.
    let holder = match auth.holder(&claims).await {
        Ok(holder) => holder,
        Err(e) => {
            tracing::error!(error = %e, "looking up a token's holder");
            return Verdict::Refused(challenge(auth, headers, needed.scope.as_deref(), true));
        }
    };
    let Some(account) = &holder.account else {
        return Verdict::Refused(challenge(auth, headers, needed.scope.as_deref(), true));
    };
    // The policy's reason for the refusal, or None when the holder may (then the client
    // asked for a token with other scopes and is challenged to fetch a fitting one).
    let decided = if needed.kind == "registry" {
        auth.catalog_refusal(&holder).await
    } else {
        auth.decide(&holder, &needed.name).await.map(|decision| match slipway_auth::scope::Action::parse(needed.action) {
            Some(action) => decision.refusals.get(&action).cloned(),
            None => Some(format!("{} may not {} {}", account.name, needed.action, needed.name)),
        })
    };
    let refusal = match decided {
        Ok(refusal) => refusal,
        Err(e) => {
            tracing::error!(error = %e, "access decision failed");
            Some(format!("{} is not allowed on {}", needed.action, needed.name))
        }
    };
    match refusal {
        Some(message) => Verdict::Refused(denied(message)),
        None => Verdict::Refused(challenge(auth, headers, needed.scope.as_deref(), true)),
    }
}

/// What to do with a cross-repository mount whose token lacks pull on the source.
pub enum MountSource {
    /// Drop the mount parameters: the request becomes a plain upload.
    Strip,
    /// Ask the client for a token that also covers the source.
    Challenge(Response),
}

pub async fn mount_source(auth: &AuthService, headers: &HeaderMap, claims: &Claims, name: &str, from: &str) -> MountSource {
    let asked_for_source = claims.access.iter().any(|a| a.kind == "repository" && a.name == from);
    if asked_for_source || from.parse::<slipway_oci::RepoName>().is_err() {
        return MountSource::Strip;
    }
    let may_pull = match auth.holder(claims).await {
        Ok(holder) => auth.decide(&holder, from).await.is_ok_and(|d| d.allowed.contains(&slipway_auth::scope::Action::Pull)),
        Err(_) => false,
    };
    if !may_pull {
        return MountSource::Strip;
    }
    let scope = format!("repository:{name}:pull,push repository:{from}:pull");
    MountSource::Challenge(challenge(auth, headers, Some(&scope), true))
}

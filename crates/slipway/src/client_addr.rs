//! The layer that works out each request's client address once, from the TCP peer and,
//! behind a trusted proxy, its forwarding header (`slipway_auth::TrustedProxies`).

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::HeaderValue;
use axum::http::header::HeaderName;
use axum::middleware::Next;
use axum::response::Response;
use slipway_auth::{AuthService, ClientAddr};

const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");

/// Middleware: works out the client's address once and puts it in the request's
/// extensions as `ClientAddr`, for everything that keys on an address
/// (`slipway_auth::client_ip` reads it). `X-Forwarded-Proto` then states the scheme for
/// what reads it later (secure cookies, the token realm): `https` on a TLS connection;
/// a trusted proxy's own value; from anyone else it is dropped, since a client's word is
/// not believed.
pub async fn record_client_addr(State(auth): State<AuthService>, mut request: Request, next: Next) -> Response {
    let proxies = &auth.settings().trusted_proxies;
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    if let Some(peer) = peer {
        let client = proxies.client(peer, request.headers());
        request.extensions_mut().insert(ClientAddr(client));
    }
    if request.extensions().get::<crate::server::OverTls>().is_some() {
        request.headers_mut().insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
    } else if !peer.is_some_and(|peer| proxies.contains(peer)) {
        request.headers_mut().remove(X_FORWARDED_PROTO);
    }
    next.run(request).await
}

#![doc = include_str!("../README.md")]

use std::sync::LazyLock;

/// The user agent of every outbound request.
pub const USER_AGENT: &str = concat!("slipway/", env!("CARGO_PKG_VERSION"));

/// Mozilla's roots, parsed once: every client merges them with the platform's.
static BUNDLED_ROOTS: LazyLock<Vec<reqwest::Certificate>> =
    LazyLock::new(|| webpki_root_certs::TLS_SERVER_ROOT_CERTS.iter().filter_map(|der| reqwest::Certificate::from_der(der).ok()).collect());

/// A client builder with Slipway's trust roots and user agent; the caller adds its
/// timeouts and redirect policy, then builds.
pub fn client() -> reqwest::ClientBuilder {
    reqwest::Client::builder().user_agent(USER_AGENT).tls_certs_merge(BUNDLED_ROOTS.iter().cloned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bundled_root_parses() {
        assert!(BUNDLED_ROOTS.len() > 100, "only {} roots", BUNDLED_ROOTS.len());
        assert_eq!(BUNDLED_ROOTS.len(), webpki_root_certs::TLS_SERVER_ROOT_CERTS.len());
    }

    #[test]
    fn a_client_builds() {
        client().build().expect("a client with the merged roots");
    }
}

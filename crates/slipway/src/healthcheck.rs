//! `slipway healthcheck`: asks the server this configuration describes whether it is
//! ready (`/readyz`: it answers, and its database does), for a container's HEALTHCHECK or
//! a service manager's probe. Exits non-zero otherwise.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use anyhow::Context;

use crate::Config;

pub async fn run(config: &Config) -> anyhow::Result<()> {
    let url = readiness_url(config.listen, config.tls.files()?.is_some());
    // The probe connects to this host's own listener by address, which the certificate
    // (made out to the public name) does not name: the answer, not the certificate, is
    // what is checked here.
    let client =
        reqwest::Client::builder().timeout(Duration::from_secs(5)).danger_accept_invalid_certs(true).build().context("an HTTP client")?;
    let response = client.get(&url).send().await.with_context(|| format!("GET {url}"))?;
    anyhow::ensure!(response.status().is_success(), "GET {url}: {}", response.status());
    Ok(())
}

/// The listener's own address, with a wildcard (0.0.0.0, ::) replaced by loopback.
fn readiness_url(listen: SocketAddr, tls: bool) -> String {
    let ip = match listen.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("{}://{}/readyz", if tls { "https" } else { "http" }, SocketAddr::new(ip, listen.port()))
}

#[cfg(test)]
mod tests {
    use super::readiness_url;

    #[test]
    fn a_wildcard_listener_is_probed_on_loopback() {
        assert_eq!(readiness_url("0.0.0.0:5000".parse().unwrap(), false), "http://127.0.0.1:5000/readyz");
        assert_eq!(readiness_url("[::]:5443".parse().unwrap(), true), "https://[::1]:5443/readyz");
        assert_eq!(readiness_url("192.0.2.7:5000".parse().unwrap(), false), "http://192.0.2.7:5000/readyz");
    }
}

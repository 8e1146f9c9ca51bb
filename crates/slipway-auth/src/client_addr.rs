//! The client's address, worked out once per request. Behind a reverse proxy the TCP peer
//! is the proxy, and counting every failure and pull against it throttled everyone behind
//! it at once (issue 14). So `X-Forwarded-For` (or `Forwarded: for=`) is read, but only
//! when the peer is a configured trusted proxy: from anyone else the header is the
//! client's own claim, and ignored.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, header};
use ipnet::IpNet;

use crate::AuthError;

/// The client's address, as the server's `record_client_addr` layer put it in the
/// request's extensions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ClientAddr(pub IpAddr);

/// Which header trusted proxies name the client in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1, ...` (nginx, HAProxy, Caddy, most load balancers).
    #[default]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client, for=proxy1`.
    Forwarded,
}

/// Hops read from the right before giving up: a longer chain is not a real deployment.
const MAX_HOPS: usize = 16;
/// A hop longer than this is not an address (`for="[v6]:port"` fits easily).
const MAX_HOP_LEN: usize = 64;

/// The proxies whose forwarding headers are believed.
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    nets: Arc<[IpNet]>,
    header: ForwardedHeader,
}

impl TrustedProxies {
    /// From CIDRs (`10.0.0.0/8`, `2001:db8::/32`) or single addresses, and the header
    /// name they set (`x-forwarded-for` or `forwarded`).
    pub fn new(cidrs: &[String], header: &str) -> Result<TrustedProxies, AuthError> {
        let nets = cidrs
            .iter()
            .map(|text| {
                let text = text.trim();
                text.parse::<IpNet>()
                    .or_else(|_| text.parse::<IpAddr>().map(IpNet::from))
                    .map(|net| net.trunc())
                    .map_err(|_| AuthError::Invalid(format!("trusted_proxies: {text:?} is not an address or CIDR (e.g. 10.0.0.0/8)")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let header = match header.trim().to_ascii_lowercase().as_str() {
            "x-forwarded-for" | "" => ForwardedHeader::XForwardedFor,
            "forwarded" => ForwardedHeader::Forwarded,
            other => return Err(AuthError::Invalid(format!("client_address_header: {other:?} is neither x-forwarded-for nor forwarded"))),
        };
        Ok(TrustedProxies { nets: nets.into(), header })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = ip.to_canonical();
        self.nets.iter().any(|net| net.contains(&ip))
    }

    /// The client behind `peer`: the right-most forwarded address that is not itself a
    /// trusted proxy, when `peer` is one; otherwise `peer`, whatever the headers say.
    pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = peer.to_canonical();
        if !self.contains(client) {
            return client;
        }
        let name = match self.header {
            ForwardedHeader::XForwardedFor => header::HeaderName::from_static("x-forwarded-for"),
            ForwardedHeader::Forwarded => header::FORWARDED,
        };
        // Several header lines read as one list, in order; walk it from the right.
        let lines: Vec<&str> = headers.get_all(name).iter().filter_map(|v| v.to_str().ok()).collect();
        let hops = lines.iter().rev().flat_map(|line| line.rsplit(',')).take(MAX_HOPS);
        for hop in hops {
            let parsed = match self.header {
                ForwardedHeader::XForwardedFor => parse_hop(hop),
                ForwardedHeader::Forwarded => forwarded_for(hop).and_then(parse_hop),
            };
            // An unreadable hop (`unknown`, an obfuscated name, garbage): whatever lies
            // further left was not vouched for, so the last trusted hop stands.
            let Some(ip) = parsed else { break };
            client = ip;
            if !self.contains(ip) {
                break;
            }
        }
        client
    }
}

/// The `for=` value of one `Forwarded` element.
fn forwarded_for(element: &str) -> Option<&str> {
    element.split(';').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        key.trim().eq_ignore_ascii_case("for").then(|| value.trim().trim_matches('"'))
    })
}

/// An address, with or without a port (`192.0.2.1:4711`, `[2001:db8::1]:4711`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if hop.len() > MAX_HOP_LEN {
        return None;
    }
    let hop = hop.trim();
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(ip.to_canonical())
}

/// How an address is counted: IPv4 alone, IPv6 by its /64, since one host or one home
/// usually holds a whole /64 and could otherwise pick a new address for each request.
pub fn address_group(ip: IpAddr) -> String {
    match ip.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => {
            let s = v6.segments();
            format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
        }
    }
}

/// The client's address: the one the server's `record_client_addr` layer worked out, else the TCP peer (when
/// the server was started with connection info).
pub fn client_ip(extensions: &axum::http::Extensions) -> Option<IpAddr> {
    extensions.get::<ClientAddr>().map(|c| c.0).or_else(|| extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_canonical()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn headers(name: &'static str, values: &[&str]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for v in values {
            map.append(name, HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn proxies(cidrs: &[&str], header: &str) -> TrustedProxies {
        TrustedProxies::new(&cidrs.iter().map(|s| s.to_string()).collect::<Vec<_>>(), header).unwrap()
    }

    /// Issue 14: a header from a peer that is not a trusted proxy is the client's own
    /// claim, and a spoofed address must not pick which throttle counts the request.
    #[test]
    fn headers_from_untrusted_peers_are_ignored() {
        let p = proxies(&["127.0.0.1/32"], "x-forwarded-for");
        let spoofed = headers("x-forwarded-for", &["10.9.9.9"]);
        assert_eq!(p.client(ip("127.0.0.2"), &spoofed), ip("127.0.0.2"));
        assert_eq!(TrustedProxies::default().client(ip("127.0.0.1"), &spoofed), ip("127.0.0.1"), "no proxies: nothing is trusted");
    }

    /// The right-most hop that is not a trusted proxy is the client: what the client put
    /// further left is its own claim.
    #[test]
    fn right_most_untrusted_hop_is_the_client() {
        let p = proxies(&["127.0.0.1", "10.0.0.0/8"], "x-forwarded-for");
        let h = headers("x-forwarded-for", &["6.6.6.6, 203.0.113.7, 10.1.2.3"]);
        assert_eq!(p.client(ip("127.0.0.1"), &h), ip("203.0.113.7"));
        // Several header lines form one list.
        let h = headers("x-forwarded-for", &["6.6.6.6", "203.0.113.8:5555", "10.1.2.3"]);
        assert_eq!(p.client(ip("::ffff:127.0.0.1"), &h), ip("203.0.113.8"), "mapped IPv4 peers and ports are understood");
        // Only proxies: the left-most of them; no header: the peer.
        assert_eq!(p.client(ip("127.0.0.1"), &headers("x-forwarded-for", &["10.0.0.1, 10.0.0.2"])), ip("10.0.0.1"));
        assert_eq!(p.client(ip("127.0.0.1"), &HeaderMap::new()), ip("127.0.0.1"));
        // Garbage stops the walk at the last trusted hop.
        assert_eq!(p.client(ip("127.0.0.1"), &headers("x-forwarded-for", &["6.6.6.6, unknown, 10.0.0.9"])), ip("10.0.0.9"));
        // Forwarded is not read unless configured: nginx passes it through untouched.
        assert_eq!(p.client(ip("127.0.0.1"), &headers("forwarded", &["for=6.6.6.6"])), ip("127.0.0.1"));
    }

    #[test]
    fn forwarded_header_when_configured() {
        let p = proxies(&["127.0.0.1/32"], "Forwarded");
        let h = headers("forwarded", &["for=6.6.6.6;proto=http, for=\"[2001:db8:cafe::17]:4711\";by=x"]);
        assert_eq!(p.client(ip("127.0.0.1"), &h), ip("2001:db8:cafe::17"));
        assert_eq!(p.client(ip("127.0.0.1"), &headers("x-forwarded-for", &["6.6.6.6"])), ip("127.0.0.1"));
        assert!(TrustedProxies::new(&["10.0.0.0/33".into()], "").is_err());
        assert!(TrustedProxies::new(&[], "x-real-ip").is_err());
    }

    /// Parsing is bounded: a header of thousands of hops costs at most MAX_HOPS parses,
    /// and a client cannot push the real address out of reach (it is on the right).
    #[test]
    fn long_headers_are_bounded() {
        let p = proxies(&["127.0.0.0/8"], "x-forwarded-for");
        let mut chain = vec!["127.0.0.5"; 5000].join(",");
        chain.push_str(",198.51.100.1");
        assert_eq!(p.client(ip("127.0.0.1"), &headers("x-forwarded-for", &[&chain])), ip("198.51.100.1"));
        let only_proxies = vec!["127.0.0.5"; 5000].join(",");
        assert_eq!(p.client(ip("127.0.0.1"), &headers("x-forwarded-for", &[&only_proxies])), ip("127.0.0.5"));
        let long = format!("{}1.2.3.4", " ".repeat(MAX_HOP_LEN));
        assert_eq!(p.client(ip("127.0.0.1"), &headers("x-forwarded-for", &[&long])), ip("127.0.0.1"));
    }

    /// IPv6 clients are counted by /64; IPv4, and IPv4 seen through a mapped IPv6
    /// socket, by address.
    #[test]
    fn ipv6_is_grouped_by_64() {
        assert_eq!(address_group(ip("2001:db8:1:2:aaaa::1")), address_group(ip("2001:db8:1:2:bbbb::9")));
        assert_ne!(address_group(ip("2001:db8:1:2::1")), address_group(ip("2001:db8:1:3::1")));
        assert_eq!(address_group(ip("2001:db8:1:2::1")), "2001:db8:1:2::/64");
        assert_eq!(address_group(ip("::ffff:192.0.2.1")), "192.0.2.1");
        assert_ne!(address_group(ip("192.0.2.1")), address_group(ip("192.0.2.2")));
    }
}

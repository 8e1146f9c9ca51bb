//! Pull rate limits, as Docker Hub applies them: manifest GETs count as pulls, per client
//! address for anonymous callers (IPv6 by /64, since one host usually owns the prefix) and
//! per account for signed-in ones. Counters live in this process: each replica enforces
//! the limit on the traffic it sees.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Default)]
pub struct RateLimitSettings {
    /// Pulls per window for anonymous callers, per address; 0 = unlimited.
    pub anonymous_pulls: u32,
    /// Pulls per window for signed-in callers, per account; 0 = unlimited.
    pub account_pulls: u32,
    pub window: Duration,
}

/// Outcome of counting one pull.
pub struct Quota {
    pub limit: u32,
    pub remaining: u32,
    pub window: Duration,
    /// When the window resets, if the pull was refused.
    pub retry_after: Option<Duration>,
}

#[derive(Default)]
pub struct RateLimiter {
    settings: RateLimitSettings,
    windows: Mutex<HashMap<String, (Instant, u32)>>,
}

/// The key an anonymous caller is counted under: grouped as the sign-in throttle groups
/// addresses (IPv6 by /64).
fn address_key(ip: IpAddr) -> String {
    format!("ip:{}", slipway_auth::address_group(ip))
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings) -> Self {
        RateLimiter { settings, windows: Mutex::default() }
    }

    /// Counts a pull by `account` (None: anonymous, counted by `ip`). None when the caller
    /// has no limit.
    /// Whether signed-in callers' pulls are limited at all (`account_pulls` > 0).
    pub fn limits_accounts(&self) -> bool {
        self.settings.account_pulls > 0
    }

    pub fn count(&self, account: Option<&str>, ip: Option<IpAddr>) -> Option<Quota> {
        let (limit, key) = match account {
            Some(name) => (self.settings.account_pulls, format!("account:{name}")),
            None => (self.settings.anonymous_pulls, address_key(ip?)),
        };
        if limit == 0 {
            return None;
        }
        let now = Instant::now();
        let window = self.settings.window;
        let mut windows = self.windows.lock().expect("rate limit lock");
        if windows.len() > 100_000 {
            // Bounded memory under address-scanning traffic: forget finished windows.
            windows.retain(|_, (start, _)| now.duration_since(*start) < window);
        }
        let entry = windows.entry(key).or_insert((now, 0));
        if now.duration_since(entry.0) >= window {
            *entry = (now, 0);
        }
        if entry.1 >= limit {
            let retry_after = window.saturating_sub(now.duration_since(entry.0));
            return Some(Quota { limit, remaining: 0, window, retry_after: Some(retry_after) });
        }
        entry.1 += 1;
        Some(Quota { limit, remaining: limit - entry.1, window, retry_after: None })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_per_address_and_account() {
        let limiter = RateLimiter::new(RateLimitSettings { anonymous_pulls: 2, account_pulls: 3, window: Duration::from_secs(60) });
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let same_64: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(limiter.count(None, Some(a)).unwrap().remaining, 1);
        assert_eq!(limiter.count(None, Some(same_64)).unwrap().remaining, 0);
        assert!(limiter.count(None, Some(a)).unwrap().retry_after.is_some(), "third pull from the /64 is refused");
        assert!(limiter.count(None, Some(other_64)).unwrap().retry_after.is_none());
        for remaining in [2, 1, 0] {
            assert_eq!(limiter.count(Some("alice"), Some(a)).unwrap().remaining, remaining);
        }
        assert!(limiter.count(Some("alice"), None).unwrap().retry_after.is_some());
        let unlimited = RateLimiter::new(RateLimitSettings::default());
        assert!(unlimited.count(None, Some(a)).is_none());
    }

    #[test]
    fn windows_reset() {
        let limiter = RateLimiter::new(RateLimitSettings { anonymous_pulls: 1, account_pulls: 0, window: Duration::from_millis(30) });
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        assert!(limiter.count(None, Some(ip)).unwrap().retry_after.is_none());
        assert!(limiter.count(None, Some(ip)).unwrap().retry_after.is_some());
        std::thread::sleep(Duration::from_millis(40));
        assert!(limiter.count(None, Some(ip)).unwrap().retry_after.is_none());
        assert!(limiter.count(Some("bob"), None).is_none(), "accounts unlimited");
    }
}

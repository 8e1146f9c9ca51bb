//! Pull rate limits, as Docker Hub applies them: manifest GETs count as pulls, per client
//! address for anonymous callers (IPv6 by /64, since one host usually owns the prefix) and
//! per account for signed-in ones. The counters are rows of the database (`pull_windows`),
//! so every replica behind a load balancer counts against the same window, and time is the
//! database's Clock, so tests move it.

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use slipway_db::RegistryDb;

use crate::error::RegistryError;

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

/// Ended windows are deleted once every this many counted pulls: the table holds about the
/// keys of one window, and the delete stays off almost every pull.
const FORGET_EVERY: u64 = 1024;

pub struct RateLimiter {
    settings: RateLimitSettings,
    db: RegistryDb,
    counted: AtomicU64,
}

/// The key an anonymous caller is counted under: grouped as the sign-in throttle groups
/// addresses (IPv6 by /64).
fn address_key(ip: IpAddr) -> String {
    format!("ip:{}", slipway_auth::address_group(ip))
}

impl RateLimiter {
    pub fn new(settings: RateLimitSettings, db: RegistryDb) -> Self {
        RateLimiter { settings, db, counted: AtomicU64::new(0) }
    }

    /// Whether signed-in callers' pulls are limited at all (`account_pulls` > 0).
    pub fn limits_accounts(&self) -> bool {
        self.settings.account_pulls > 0
    }

    /// Counts a pull by `account` (None: anonymous, counted by `ip`). None when the caller
    /// has no limit.
    pub async fn count(&self, account: Option<&str>, ip: Option<IpAddr>) -> Result<Option<Quota>, RegistryError> {
        let (limit, key) = match account {
            Some(name) => (self.settings.account_pulls, format!("account:{name}")),
            None => match ip {
                Some(ip) => (self.settings.anonymous_pulls, address_key(ip)),
                None => return Ok(None),
            },
        };
        if limit == 0 {
            return Ok(None);
        }
        let window = self.settings.window;
        let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
        let now = self.db.clock().now_ms();
        let ended_before = now.saturating_sub(window_ms);
        if self.counted.fetch_add(1, Ordering::Relaxed).is_multiple_of(FORGET_EVERY) {
            self.db.forget_pull_windows(ended_before).await?;
        }
        let (pulls, started) = self.db.count_pull_window(&key, ended_before).await?;
        let pulls = u32::try_from(pulls).unwrap_or(u32::MAX);
        if pulls > limit {
            let resets_in = started.saturating_add(window_ms).saturating_sub(now).max(0);
            let retry_after = Duration::from_millis(resets_in as u64);
            return Ok(Some(Quota { limit, remaining: 0, window, retry_after: Some(retry_after) }));
        }
        Ok(Some(Quota { limit, remaining: limit - pulls, window, retry_after: None }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slipway_types::Clock;

    async fn limiters(anonymous_pulls: u32, account_pulls: u32) -> Vec<(RateLimiter, Clock, slipway_db::TestHome)> {
        let mut out = Vec::new();
        for (db, home) in slipway_db::test_databases().await {
            let clock = Clock::manual(1_800_000_000_000);
            let db = db.with_clock(clock.clone()).registry();
            let settings = RateLimitSettings { anonymous_pulls, account_pulls, window: Duration::from_secs(60) };
            out.push((RateLimiter::new(settings, db), clock, home));
        }
        out
    }

    #[tokio::test]
    async fn counts_per_address_and_account() {
        for (limiter, _clock, _home) in limiters(2, 3).await {
            let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
            let same_64: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
            let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
            let count = |account, ip| limiter.count(account, ip);
            assert_eq!(count(None, Some(a)).await.unwrap().unwrap().remaining, 1);
            assert_eq!(count(None, Some(same_64)).await.unwrap().unwrap().remaining, 0);
            assert!(count(None, Some(a)).await.unwrap().unwrap().retry_after.is_some(), "third pull from the /64 is refused");
            assert!(count(None, Some(other_64)).await.unwrap().unwrap().retry_after.is_none());
            for remaining in [2, 1, 0] {
                assert_eq!(count(Some("alice"), Some(a)).await.unwrap().unwrap().remaining, remaining);
            }
            assert!(count(Some("alice"), None).await.unwrap().unwrap().retry_after.is_some());
            assert!(count(None, None).await.unwrap().is_none(), "no address, nothing to count by");
        }
    }

    /// A refused pull learns when the window resets; once it has, pulls count afresh.
    #[tokio::test]
    async fn windows_reset_on_the_clock() {
        for (limiter, clock, _home) in limiters(1, 0).await {
            let ip: IpAddr = "127.0.0.1".parse().unwrap();
            assert!(limiter.count(None, Some(ip)).await.unwrap().unwrap().retry_after.is_none());
            clock.advance(Duration::from_secs(20)).unwrap();
            let refused = limiter.count(None, Some(ip)).await.unwrap().unwrap();
            assert_eq!(refused.retry_after, Some(Duration::from_secs(40)));
            clock.advance(Duration::from_secs(40)).unwrap();
            assert!(limiter.count(None, Some(ip)).await.unwrap().unwrap().retry_after.is_none());
            assert!(limiter.count(Some("bob"), None).await.unwrap().is_none(), "accounts unlimited");
        }
    }

    /// Two replicas (two limiters on one database) count against one window.
    #[tokio::test]
    async fn replicas_share_the_window() {
        for (db, _home) in slipway_db::test_databases().await {
            let settings = RateLimitSettings { anonymous_pulls: 3, account_pulls: 0, window: Duration::from_secs(60) };
            let (one, two) = (RateLimiter::new(settings.clone(), db.registry()), RateLimiter::new(settings, db.registry()));
            let ip: IpAddr = "192.0.2.9".parse().unwrap();
            let mut admitted = 0;
            for i in 0..6 {
                let replica = if i % 2 == 0 { &one } else { &two };
                if replica.count(None, Some(ip)).await.unwrap().unwrap().retry_after.is_none() {
                    admitted += 1;
                }
            }
            assert_eq!(admitted, 3);
        }
    }
}

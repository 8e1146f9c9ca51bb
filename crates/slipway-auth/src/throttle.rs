//! Throttling of password sign-ins, and the bound on password hashing.
//!
//! Attempts are counted per (user name, client address) and, more loosely, per address,
//! each with delays that double once a free allowance is used, instead of the hard
//! 15-minute locks that locked everyone behind a proxy out, and named accounts out from
//! every address (issue 14). An attempt is counted before its password is hashed, in one
//! statement that refuses it while the key must wait, so parallel guesses cannot slip
//! past. Access tokens are checked by their SHA-256 lookup and never reach this: a
//! valid token always works, and guessing a robot's (nonexistent) password cannot lock
//! its tokens.
//!
//! argon2 takes 19 MiB and tens of milliseconds per hash: a semaphore bounds how many run
//! at once, and a request that cannot get a permit in time is answered 503.
//!
//! Registry clients send the same name and password with every token request, several
//! at once (`skopeo copy --src-creds --dest-creds` fetches blobs in parallel). Counted
//! one by one before any had succeeded, such a burst of right passwords passed the free
//! allowance and was refused 429. So sign-ins with the same name, password and client
//! in flight at once share one check: one attempt counted, one hash, one answer for all.
//! Nothing is remembered once it is answered, so this gives a guesser no shortcut: its
//! guesses differ, and each is counted.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use sha2::{Digest, Sha256};
use slipway_db::{Attempt, AttemptPolicy};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use crate::AuthError;
use crate::client_addr::address_group;
use crate::secrets::token_hash;
use crate::service::{AuthService, Authenticated};

const SECOND_MS: i64 = 1000;
const DAY_MS: i64 = 24 * 3600 * 1000;

#[derive(Clone, Debug)]
pub struct SignInSettings {
    /// Per (user name, client address): 5 free attempts, then 1 s, 2 s, 4 s ... up to 15 min.
    pub pair: AttemptPolicy,
    /// Per client address (IPv6 by /64), across names: looser, and it only slows that
    /// address down (50 free attempts, then up to a minute between attempts).
    pub address: AttemptPolicy,
    /// Password hashes run at once (argon2: 19 MiB each); 0 means twice the CPU count.
    pub hash_permits: usize,
    /// How long a request waits for a hashing permit before it is answered 503.
    pub hash_wait: Duration,
}

impl Default for SignInSettings {
    fn default() -> Self {
        SignInSettings {
            pair: AttemptPolicy { free: 5, first_delay_ms: SECOND_MS, max_delay_ms: 15 * 60 * SECOND_MS, forget_ms: DAY_MS },
            address: AttemptPolicy { free: 50, first_delay_ms: SECOND_MS, max_delay_ms: 60 * SECOND_MS, forget_ms: DAY_MS },
            hash_permits: 0,
            hash_wait: Duration::from_secs(1),
        }
    }
}

impl SignInSettings {
    pub fn effective_hash_permits(&self) -> usize {
        match self.hash_permits {
            0 => 2 * std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        }
    }
}

/// The answer to one password sign-in, shared by identical ones in flight with it.
type Shared = Result<Authenticated, SharedError>;

/// The errors a password sign-in answers, in a form its sharers can each have.
#[derive(Clone, Debug)]
enum SharedError {
    BadCredentials,
    Unverified,
    SsoOnly(String),
    Throttled(u64),
    /// Busy, or a failure (of the database) that a sharer answers as "try again".
    Busy,
}

impl From<AuthError> for SharedError {
    fn from(e: AuthError) -> SharedError {
        match e {
            AuthError::BadCredentials => SharedError::BadCredentials,
            AuthError::Unverified => SharedError::Unverified,
            AuthError::SsoOnly(provider) => SharedError::SsoOnly(provider),
            AuthError::Throttled(secs) => SharedError::Throttled(secs),
            other => {
                if !matches!(other, AuthError::Busy) {
                    tracing::warn!(error = %other, "password sign-in failed");
                }
                SharedError::Busy
            }
        }
    }
}

impl From<SharedError> for AuthError {
    fn from(e: SharedError) -> AuthError {
        match e {
            SharedError::BadCredentials => AuthError::BadCredentials,
            SharedError::Unverified => AuthError::Unverified,
            SharedError::SsoOnly(provider) => AuthError::SsoOnly(provider),
            SharedError::Throttled(secs) => AuthError::Throttled(secs),
            SharedError::Busy => AuthError::Busy,
        }
    }
}

/// The semaphore around argon2, a count of the hashes run (for tests and metrics), and the
/// password sign-ins in flight.
pub(crate) struct HashGate {
    permits: Arc<Semaphore>,
    wait: Duration,
    hashes: AtomicU64,
    /// Keys the in-flight map with a secret of this process, so that it holds no fast
    /// hash of a password that could be guessed offline.
    flight_key: [u8; 32],
    /// Keyed hash of (client, name, password) -> the answer those sign-ins share.
    in_flight: Mutex<HashMap<[u8; 32], Arc<OnceCell<Shared>>>>,
}

impl HashGate {
    pub(crate) fn new(settings: &SignInSettings) -> HashGate {
        HashGate {
            permits: Arc::new(Semaphore::new(settings.effective_hash_permits())),
            wait: settings.hash_wait,
            hashes: AtomicU64::new(0),
            flight_key: rand::random(),
            in_flight: Mutex::new(HashMap::new()),
        }
    }

    fn flight(&self, keys: &AttemptKeys, secret: &str) -> Flight<'_> {
        let mut hasher = Sha256::new();
        hasher.update(self.flight_key);
        hasher.update(keys.pair.as_bytes());
        hasher.update([0]);
        hasher.update(secret.as_bytes());
        let key: [u8; 32] = hasher.finalize().into();
        let cell = self.in_flight.lock().unwrap_or_else(|e| e.into_inner()).entry(key).or_default().clone();
        Flight { gate: self, key, cell }
    }
}

/// One sign-in's share of a flight. The first sharer done (answered, or dropped because
/// its client hung up) removes the flight from the map: later sign-ins check afresh, and
/// the map holds only sign-ins in progress.
struct Flight<'a> {
    gate: &'a HashGate,
    key: [u8; 32],
    cell: Arc<OnceCell<Shared>>,
}

impl Drop for Flight<'_> {
    fn drop(&mut self) {
        let mut map = self.gate.in_flight.lock().unwrap_or_else(|e| e.into_inner());
        if map.get(&self.key).is_some_and(|current| Arc::ptr_eq(current, &self.cell)) {
            map.remove(&self.key);
        }
    }
}

impl HashGate {
    /// Runs `work` (a hash) on a blocking thread once a permit is free; `Busy` if none
    /// frees up within the wait.
    async fn run<T: Send + 'static>(&self, work: impl FnOnce() -> T + Send + 'static) -> Result<T, AuthError> {
        let permit = match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
            Ok(Ok(permit)) => permit,
            _ => return Err(AuthError::Busy),
        };
        self.hashes.fetch_add(1, Ordering::Relaxed);
        // The permit goes with the work: a client that hangs up does not free it while
        // its hash still runs.
        tokio::task::spawn_blocking(move || {
            let out = work();
            drop(permit);
            out
        })
        .await
        .map_err(|e| AuthError::Invalid(format!("password hashing failed: {e}")))
    }
}

/// The throttle keys of one attempt. The name is hashed: it is the caller's text, of any
/// length.
struct AttemptKeys {
    pair: String,
    address: String,
}

impl AttemptKeys {
    fn new(username: &str, ip: Option<IpAddr>) -> AttemptKeys {
        let group = ip.map(address_group).unwrap_or_else(|| "unknown".to_owned());
        AttemptKeys { pair: format!("pair:{group}:{}", token_hash(username)), address: format!("addr:{group}") }
    }
}

pub(crate) fn throttled(wait_ms: i64) -> AuthError {
    AuthError::Throttled(((wait_ms + SECOND_MS - 1) / SECOND_MS).max(1) as u64)
}

impl AuthService {
    /// Hashes a new password, within the hashing bound.
    pub async fn hash_password(&self, password: &str) -> Result<String, AuthError> {
        let password = password.to_owned();
        self.hash_gate().run(move || crate::secrets::hash_password(&password)).await?
    }

    /// Checks a password against a stored hash, within the hashing bound.
    pub(crate) async fn verify_password(&self, password: String, stored: String) -> Result<bool, AuthError> {
        self.hash_gate().run(move || crate::secrets::verify_password(&password, &stored)).await
    }

    /// Password hashes and checks run since start.
    pub fn password_hashes(&self) -> u64 {
        self.hash_gate().hashes.load(Ordering::Relaxed)
    }

    /// Takes a hashing permit, if one is free: lets tests fill the semaphore.
    #[doc(hidden)]
    pub fn try_hold_hash_permit(&self) -> Option<OwnedSemaphorePermit> {
        self.hash_gate().permits.clone().try_acquire_owned().ok()
    }

    /// A password sign-in from `ip`, sharing the check of an identical one in flight.
    pub(crate) async fn throttled_password_sign_in(
        &self,
        username: &str,
        secret: String,
        ip: Option<IpAddr>,
    ) -> Result<Authenticated, AuthError> {
        let keys = AttemptKeys::new(username, ip);
        let flight = self.hash_gate().flight(&keys, &secret);
        // If the sign-in checking for everyone is dropped (its client hung up), a sharer
        // takes over: `get_or_init` runs the next waiter's check.
        let check = || async { self.counted_password_sign_in(username, secret, &keys).await.map_err(SharedError::from) };
        let shared = flight.cell.get_or_init(check).await.clone();
        drop(flight);
        shared.map_err(AuthError::from)
    }

    /// Counted first, then checked; a success clears the pair's count and gives back the
    /// address's.
    async fn counted_password_sign_in(&self, username: &str, secret: String, keys: &AttemptKeys) -> Result<Authenticated, AuthError> {
        self.count_attempt(keys).await?;
        match self.check_password(username, secret).await {
            result @ (Ok(_) | Err(AuthError::Unverified | AuthError::SsoOnly(_))) => {
                // The password was right: the pair starts afresh, and the address is not
                // slowed down by its own users' successes.
                self.db().clear_sign_in_attempts(&keys.pair).await?;
                self.db().refund_sign_in_attempt(&keys.address, &self.settings().sign_in.address).await?;
                result
            }
            Err(AuthError::Busy) => {
                // Never checked: not held against the caller.
                self.refund(keys).await?;
                Err(AuthError::Busy)
            }
            other => other,
        }
    }

    /// Counts the attempt against the pair, then the address; refuses it (without
    /// counting) when either must wait.
    async fn count_attempt(&self, keys: &AttemptKeys) -> Result<(), AuthError> {
        let settings = &self.settings().sign_in;
        let now = self.db().clock().now_ms();
        if rand::random::<u16>().is_multiple_of(512) {
            // Now and then, forget keys long silent, so the table stays small.
            let forget = settings.pair.forget_ms.max(settings.address.forget_ms);
            self.db().forget_sign_in_attempts(now - forget).await?;
        }
        // The pair first: a burst against one name is refused there without touching the
        // address's count, which other names from the address share.
        if let Attempt::Wait(ms) = self.db().count_sign_in_attempt(&keys.pair, &settings.pair, now).await? {
            return Err(throttled(ms));
        }
        if let Attempt::Wait(ms) = self.db().count_sign_in_attempt(&keys.address, &settings.address, now).await? {
            self.db().refund_sign_in_attempt(&keys.pair, &settings.pair).await?;
            return Err(throttled(ms));
        }
        Ok(())
    }

    async fn refund(&self, keys: &AttemptKeys) -> Result<(), AuthError> {
        let settings = &self.settings().sign_in;
        self.db().refund_sign_in_attempt(&keys.address, &settings.address).await?;
        self.db().refund_sign_in_attempt(&keys.pair, &settings.pair).await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_group_ipv6_and_hash_names() {
        let a = AttemptKeys::new("alice", Some("2001:db8:1:2::1".parse().unwrap()));
        let b = AttemptKeys::new("alice", Some("2001:db8:1:2:ffff::7".parse().unwrap()));
        assert_eq!((a.pair.as_str(), a.address.as_str()), (b.pair.as_str(), b.address.as_str()));
        assert!(!a.pair.contains("alice"));
        let long = AttemptKeys::new(&"x".repeat(100_000), None);
        assert!(long.pair.len() < 100, "bounded key");
    }

    #[test]
    fn waits_round_up_to_seconds() {
        assert!(matches!(throttled(1), AuthError::Throttled(1)));
        assert!(matches!(throttled(1000), AuthError::Throttled(1)));
        assert!(matches!(throttled(1001), AuthError::Throttled(2)));
    }
}

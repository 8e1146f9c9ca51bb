//! Two-factor sign-in: time-based one-time codes (TOTP, RFC 6238: HMAC-SHA-1, 6 digits,
//! 30-second steps, one step of clock skew either way) and ten one-time recovery codes.
//!
//! A password sign-in of an account with two-factor sign-in on does not open a session:
//! it opens a short-lived challenge, and the session is opened when a code holds for it.
//! An account that configuration requires to use it (staff, owners of publisher
//! organizations) and has not set it up gets a challenge too, which it completes by
//! setting it up: no session is ever opened for it without a second factor. Codes are
//! counted per account before they are checked, with the sign-in throttle's doubling
//! delays, and a code is accepted once (its time step is recorded). Registry clients
//! cannot answer a challenge: their password sign-ins are refused with a pointer to access
//! tokens (`AuthError::TokenRequired`).

use std::net::IpAddr;

use slipway_db::{AccountRecord, Attempt, NewSession, TwoFactorRule};
use totp_rs::{Builder, Secret, Totp};

use crate::secrets::{random_secret, token_hash};
use crate::service::AuthService;
use crate::sign_in::{MAX_USER_AGENT, SESSION_TTL_MS};
use crate::{AuthError, mail};

/// How long a password sign-in waits for its code.
const CHALLENGE_TTL_MS: i64 = 10 * 60 * 1000;
const RECOVERY_CODES: usize = 10;
/// Characters of a recovery code, shown as two groups of five.
const RECOVERY_CODE_LEN: usize = 10;
const RECOVERY_ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
/// The longest code text looked at: anything longer is no code.
const MAX_CODE_LEN: usize = 32;
const STEP_SECS: i64 = 30;
const ISSUER: &str = "Slipway";

/// A secret to add to an authenticator app, as a key and as an `otpauth://` URI (the QR
/// code's content).
#[derive(Clone, Debug)]
pub struct Enrolment {
    pub secret: String,
    pub otpauth_uri: String,
}

/// Whether an account uses two-factor sign-in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TwoFactorStatus {
    pub enabled: bool,
    /// Configuration requires it of this account: it cannot be turned off.
    pub required: bool,
    pub recovery_codes_left: i64,
}

/// A browser session: the cookie's value, its CSRF token, and whose it is.
#[derive(Clone, Debug)]
pub struct OpenedSession {
    pub cookie: String,
    pub csrf: String,
    pub account: AccountRecord,
}

/// The outcome of a right password.
#[derive(Clone, Debug)]
pub enum SignInStep {
    Session(Box<OpenedSession>),
    /// A code is needed: `challenge` is the secret the browser holds meanwhile. When
    /// `set_up` is true the account must first set up two-factor sign-in (it is required
    /// of it and is not on yet).
    SecondFactor {
        challenge: String,
        set_up: bool,
    },
}

/// A waiting sign-in, as the code page shows it.
#[derive(Clone, Debug)]
pub struct Challenge {
    pub account: AccountRecord,
    /// The account has two-factor sign-in on (else it must set it up to continue).
    pub enabled: bool,
}

impl AuthService {
    pub async fn two_factor_status(&self, account: &AccountRecord) -> Result<TwoFactorStatus, AuthError> {
        let enabled = self.db().two_factor(&account.id).await?.is_some_and(|t| t.enabled_at.is_some());
        Ok(TwoFactorStatus {
            enabled,
            required: self.two_factor_required(account).await?,
            recovery_codes_left: if enabled { self.db().recovery_codes_left(&account.id).await? } else { 0 },
        })
    }

    async fn two_factor_required(&self, account: &AccountRecord) -> Result<bool, AuthError> {
        let rule = self.settings().two_factor;
        if rule == TwoFactorRule::default() {
            return Ok(false);
        }
        Ok(self.db().two_factor_required(&account.id, rule).await?)
    }

    /// Starts setting up two-factor sign-in: a new secret, replacing an unfinished one.
    pub async fn begin_two_factor(&self, account: &AccountRecord) -> Result<Enrolment, AuthError> {
        let secret = Secret::from(rand::random::<[u8; 20]>().to_vec()).to_base32();
        if !self.db().start_two_factor(&account.id, &secret).await? {
            return Err(AuthError::Conflict("two-factor sign-in is already on".into()));
        }
        enrolment_of(secret, account)
    }

    /// The set-up waiting for its first code, if any.
    pub async fn unfinished_enrolment(&self, account: &AccountRecord) -> Result<Option<Enrolment>, AuthError> {
        match self.db().two_factor(&account.id).await?.filter(|t| t.enabled_at.is_none()) {
            Some(pending) => enrolment_of(pending.secret, account).map(Some),
            None => Ok(None),
        }
    }

    /// The unfinished set-up, or a new one: reloading the set-up page keeps the secret
    /// an authenticator may have scanned already.
    pub async fn enrolment(&self, account: &AccountRecord) -> Result<Enrolment, AuthError> {
        match self.unfinished_enrolment(account).await? {
            Some(enrolment) => Ok(enrolment),
            None => self.begin_two_factor(account).await,
        }
    }

    /// Finishes setting up with a code from the authenticator; returns the recovery codes
    /// (shown once).
    pub async fn enable_two_factor(&self, account: &AccountRecord, code: &str) -> Result<Vec<String>, AuthError> {
        let pending = self.db().two_factor(&account.id).await?;
        let Some(pending) = pending.filter(|t| t.enabled_at.is_none()) else {
            return Err(AuthError::Conflict("there is no two-factor set-up to finish: start again".into()));
        };
        self.count_code(account).await?;
        let step = matching_step(&pending.secret, &account.name, code, self.db().clock().now_ms())?
            .ok_or_else(|| AuthError::Invalid("that code is not the authenticator's current one: check the device's clock".into()))?;
        let (codes, hashes) = recovery_codes();
        if !self.db().enable_two_factor(&account.id, &pending.secret, step, &hashes).await? {
            return Err(AuthError::Conflict("the set-up changed meanwhile: start again".into()));
        }
        self.db().clear_sign_in_attempts(&code_key(account)).await?;
        self.tell(account, "Two-factor sign-in is on", "two-factor sign-in was turned on for your Slipway account").await?;
        Ok(codes)
    }

    /// Turns two-factor sign-in off, after the password is given again; refused while
    /// configuration requires it.
    pub async fn disable_two_factor(&self, account: &AccountRecord, password: &str, ip: Option<IpAddr>) -> Result<(), AuthError> {
        self.recheck_password(account, password, ip).await?;
        if self.two_factor_required(account).await? {
            return Err(AuthError::Forbidden("this site requires two-factor sign-in of your account: it cannot be turned off".into()));
        }
        self.db().disable_two_factor(&account.id).await?;
        self.tell(account, "Two-factor sign-in is off", "two-factor sign-in was turned off for your Slipway account").await
    }

    /// New recovery codes, replacing the old ones, after the password is given again.
    pub async fn new_recovery_codes(&self, account: &AccountRecord, password: &str, ip: Option<IpAddr>) -> Result<Vec<String>, AuthError> {
        self.recheck_password(account, password, ip).await?;
        if !self.two_factor_status(account).await?.enabled {
            return Err(AuthError::Conflict("two-factor sign-in is not on".into()));
        }
        let (codes, hashes) = recovery_codes();
        self.db().replace_recovery_codes(&account.id, &hashes).await?;
        Ok(codes)
    }

    /// After a right password: a session, or a challenge when a second factor is on or
    /// required.
    pub(crate) async fn after_password(
        &self,
        account: AccountRecord,
        ip: Option<IpAddr>,
        user_agent: &str,
    ) -> Result<SignInStep, AuthError> {
        let enabled = self.db().two_factor(&account.id).await?.is_some_and(|t| t.enabled_at.is_some());
        let user_agent: String = user_agent.chars().filter(|c| !c.is_control()).take(MAX_USER_AGENT).collect();
        let client = ip.map(crate::address_group).unwrap_or_default();
        if !enabled && !self.two_factor_required(&account).await? {
            return Ok(SignInStep::Session(Box::new(self.open_session(account, &user_agent, &client).await?)));
        }
        let challenge = random_secret();
        self.db()
            .create_sign_in_challenge(&NewSession {
                id_hash: &token_hash(&challenge),
                account_id: &account.id,
                csrf: "",
                expires_at: self.db().clock().now_ms() + CHALLENGE_TTL_MS,
                user_agent: &user_agent,
                client: &client,
            })
            .await?;
        Ok(SignInStep::SecondFactor { challenge, set_up: !enabled })
    }

    /// The live waiting sign-in a browser holds.
    pub async fn challenge(&self, challenge: &str) -> Result<Option<Challenge>, AuthError> {
        let Some(record) = self.db().sign_in_challenge(&token_hash(challenge)).await? else { return Ok(None) };
        let Some(account) = self.db().account_by_id(&record.account_id).await?.filter(|a| a.disabled_at.is_none()) else {
            return Ok(None);
        };
        let enabled = self.db().two_factor(&account.id).await?.is_some_and(|t| t.enabled_at.is_some());
        Ok(Some(Challenge { account, enabled }))
    }

    /// Completes a waiting sign-in with a code from the authenticator or a recovery code.
    pub async fn complete_sign_in(&self, challenge: &str, code: &str) -> Result<OpenedSession, AuthError> {
        let expired = || AuthError::Invalid("this sign-in expired: sign in again".into());
        let waiting = self.challenge(challenge).await?.ok_or_else(expired)?;
        if !waiting.enabled {
            return Err(AuthError::Conflict("set up two-factor sign-in first".into()));
        }
        self.check_second_factor(&waiting.account, code).await?;
        self.finish_challenge(challenge, waiting.account).await
    }

    /// Sets up two-factor sign-in from a waiting sign-in that requires it, and opens the
    /// session: the recovery codes come with it.
    pub async fn enrol_and_sign_in(&self, challenge: &str, code: &str) -> Result<(OpenedSession, Vec<String>), AuthError> {
        let waiting = self.challenge(challenge).await?.ok_or_else(|| AuthError::Invalid("this sign-in expired: sign in again".into()))?;
        let codes = self.enable_two_factor(&waiting.account, code).await?;
        Ok((self.finish_challenge(challenge, waiting.account).await?, codes))
    }

    /// Checks a second factor of an account with it on: counted first (per account, with
    /// the sign-in throttle's delays), a TOTP code accepted once, a recovery code used up.
    pub(crate) async fn check_second_factor(&self, account: &AccountRecord, code: &str) -> Result<(), AuthError> {
        let wrong = || AuthError::Invalid("that code is wrong or was already used".into());
        let record = self.db().two_factor(&account.id).await?.filter(|t| t.enabled_at.is_some()).ok_or_else(wrong)?;
        self.count_code(account).await?;
        let accepted = match matching_step(&record.secret, &account.name, code, self.db().clock().now_ms()) {
            Ok(Some(step)) => self.db().accept_two_factor_step(&account.id, step).await?,
            Ok(None) => false,
            Err(_) => match normalized_recovery_code(code) {
                Some(code) => {
                    let used = self.db().use_recovery_code(&account.id, &token_hash(&code)).await?;
                    if used {
                        let left = self.db().recovery_codes_left(&account.id).await?;
                        let body = format!("a recovery code was used to sign in to your Slipway account; {left} are left");
                        self.tell(account, "A recovery code was used", &body).await?;
                    }
                    used
                }
                None => false,
            },
        };
        if !accepted {
            return Err(wrong());
        }
        self.db().clear_sign_in_attempts(&code_key(account)).await?;
        Ok(())
    }

    async fn count_code(&self, account: &AccountRecord) -> Result<(), AuthError> {
        let policy = self.settings().sign_in.pair;
        match self.db().count_sign_in_attempt(&code_key(account), &policy, self.db().clock().now_ms()).await? {
            Attempt::Counted(_) => Ok(()),
            Attempt::Wait(ms) => Err(crate::throttle::throttled(ms)),
        }
    }

    async fn finish_challenge(&self, challenge: &str, account: AccountRecord) -> Result<OpenedSession, AuthError> {
        let record = self.db().sign_in_challenge(&token_hash(challenge)).await?;
        let record = record.ok_or_else(|| AuthError::Invalid("this sign-in expired: sign in again".into()))?;
        let (cookie, csrf) = (random_secret(), random_secret());
        let session = NewSession {
            id_hash: &token_hash(&cookie),
            account_id: &account.id,
            csrf: &csrf,
            expires_at: self.db().clock().now_ms() + SESSION_TTL_MS,
            user_agent: &record.user_agent,
            client: &record.client,
        };
        if !self.db().complete_sign_in(&token_hash(challenge), &session).await? {
            return Err(AuthError::Invalid("this sign-in was already completed or expired: sign in again".into()));
        }
        Ok(OpenedSession { cookie, csrf, account })
    }

    pub(crate) async fn open_session(&self, account: AccountRecord, user_agent: &str, client: &str) -> Result<OpenedSession, AuthError> {
        let (cookie, csrf) = (random_secret(), random_secret());
        self.db()
            .create_session(&NewSession {
                id_hash: &token_hash(&cookie),
                account_id: &account.id,
                csrf: &csrf,
                expires_at: self.db().clock().now_ms() + SESSION_TTL_MS,
                user_agent,
                client,
            })
            .await?;
        Ok(OpenedSession { cookie, csrf, account })
    }

    /// Whether a registry client's password sign-in must be refused: the account has
    /// two-factor sign-in on (or it is required of it), and a registry client cannot
    /// answer for a second factor.
    pub(crate) async fn password_needs_second_factor(&self, account: &AccountRecord) -> Result<bool, AuthError> {
        Ok(self.db().two_factor(&account.id).await?.is_some_and(|t| t.enabled_at.is_some()) || self.two_factor_required(account).await?)
    }

    async fn tell(&self, account: &AccountRecord, subject: &str, what: &str) -> Result<(), AuthError> {
        if let Some(email) = &account.email {
            let body = format!(
                "Hello {},\n\n{what}.\n\nIf this was not you, reset your password at once and contact the site's administrators.\n",
                account.name
            );
            mail::enqueue(self.db(), email, subject, &body).await?;
        }
        Ok(())
    }
}

fn enrolment_of(secret: String, account: &AccountRecord) -> Result<Enrolment, AuthError> {
    let otpauth_uri = totp(&secret, &account.name)?.to_url().map_err(|e| AuthError::Invalid(format!("otpauth URI: {e}")))?;
    Ok(Enrolment { secret, otpauth_uri })
}

fn code_key(account: &AccountRecord) -> String {
    format!("second-factor:{}", account.id)
}

fn totp(secret: &str, account_name: &str) -> Result<Totp, AuthError> {
    let bytes = Secret::try_from_base32(secret).map_err(|e| AuthError::Invalid(format!("stored two-factor secret: {e}")))?;
    Builder::new()
        .with_secret(bytes)
        .with_account_name(account_name)
        .with_issuer(Some(ISSUER))
        .with_step_duration(STEP_SECS as u64)
        .build()
        .map_err(|e| AuthError::Invalid(format!("two-factor secret: {e}")))
}

/// The time step a six-digit code is right for at `now_ms` (one step of skew either
/// way); Err when the text is not six digits (it may be a recovery code).
fn matching_step(secret: &str, account_name: &str, code: &str, now_ms: i64) -> Result<Option<i64>, AuthError> {
    let digits: String = code.chars().filter(|c| !c.is_whitespace()).take(MAX_CODE_LEN).collect();
    if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AuthError::Invalid("not a six-digit code".into()));
    }
    let now_secs = u64::try_from(now_ms / 1000).unwrap_or(0);
    Ok(totp(secret, account_name)?.check(&digits, now_secs).map(|step| step as i64))
}

/// A recovery code as stored (lowercase, without spaces or dashes), or None when the
/// text cannot be one.
fn normalized_recovery_code(code: &str) -> Option<String> {
    if code.len() > MAX_CODE_LEN {
        return None;
    }
    let code: String = code.chars().filter(|c| !c.is_whitespace() && *c != '-').map(|c| c.to_ascii_lowercase()).collect();
    (code.len() == RECOVERY_CODE_LEN && code.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))).then_some(code)
}

/// Ten new recovery codes (as shown: `abcde-fghjk`) and their hashes (as stored).
fn recovery_codes() -> (Vec<String>, Vec<String>) {
    (0..RECOVERY_CODES)
        .map(|_| {
            let raw: String =
                (0..RECOVERY_CODE_LEN).map(|_| RECOVERY_ALPHABET[rand::random_range(0..RECOVERY_ALPHABET.len())] as char).collect();
            let shown = format!("{}-{}", &raw[..5], &raw[5..]);
            (shown, token_hash(&raw))
        })
        .unzip()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 6238 Appendix B's SHA-1 vectors (secret "12345678901234567890"), last six digits.
    #[test]
    fn codes_match_the_rfc_6238_test_vectors() {
        let secret = Secret::from(b"12345678901234567890".to_vec()).to_base32();
        for (secs, code) in [(59_i64, "287082"), (1111111109, "081804"), (1234567890, "005924"), (2000000000, "279037")] {
            let step = matching_step(&secret, "t", code, secs * 1000).unwrap();
            assert_eq!(step, Some(secs / STEP_SECS), "{secs}");
            // One step of skew either way, no more.
            assert_eq!(matching_step(&secret, "t", code, (secs + STEP_SECS) * 1000).unwrap(), Some(secs / STEP_SECS));
            assert_eq!(matching_step(&secret, "t", code, (secs + 3 * STEP_SECS) * 1000).unwrap(), None);
        }
        assert!(matching_step(&secret, "t", "28708", 59_000).is_err());
        assert!(matching_step(&secret, "t", &"1".repeat(10_000), 59_000).is_err());
    }

    #[test]
    fn recovery_codes_are_distinct_and_read_back_as_typed() {
        let (codes, hashes) = recovery_codes();
        assert_eq!(codes.len(), RECOVERY_CODES);
        let distinct: std::collections::HashSet<_> = hashes.iter().collect();
        assert_eq!(distinct.len(), RECOVERY_CODES);
        for (code, hash) in codes.iter().zip(&hashes) {
            assert_eq!(code.len(), RECOVERY_CODE_LEN + 1);
            let typed = format!("  {} ", code.to_uppercase());
            assert_eq!(token_hash(&normalized_recovery_code(&typed).unwrap()), *hash);
        }
        assert_eq!(normalized_recovery_code("abcde-fghj1"), None, "1 is not in the alphabet");
        assert_eq!(normalized_recovery_code(&"a".repeat(100)), None);
    }
}

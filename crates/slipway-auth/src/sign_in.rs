//! Self-service accounts: sign-up with email verification, password reset, browser
//! sessions (failed sign-ins are throttled in throttle.rs).

use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;

use slipway_db::{AccountRecord, DbError};

use crate::access::SiteRole;
use crate::directory::{check_email, check_password};
use crate::secrets::{random_secret, token_hash};
use crate::service::{AuthService, SignUpVerification};
use crate::two_factor::SignInStep;
use crate::{AuthError, mail};

const VERIFY_TTL_MS: i64 = 48 * 3600 * 1000;
const RESET_TTL_MS: i64 = 3600 * 1000;
pub(crate) const SESSION_TTL_MS: i64 = 14 * 24 * 3600 * 1000;
/// The characters of a browser's User-Agent kept with its session.
pub(crate) const MAX_USER_AGENT: usize = 200;
/// The window in which mail that anyone can trigger is counted.
const MAIL_WINDOW_MS: i64 = 3600 * 1000;
/// Requests for a mailed link (a reset, a verification link again) per window for one email
/// address, and from one client (IPv6 by /64), beyond which no mail is sent (the answer
/// stays the same).
const LINKS_PER_EMAIL: i64 = 5;
const LINKS_PER_CLIENT: i64 = 20;
/// A link mailed less than this long ago, still unused and unexpired, stands: another
/// request sends no new mail.
const LINK_REUSE_MS: i64 = 15 * 60 * 1000;
/// A verification link mailed less than this long ago stands when someone asks for it
/// again (they most likely have not waited for it); after that a new link replaces it,
/// since the one asking says the first did not arrive. The per-address limit bounds mail.
const RESEND_AFTER_MS: i64 = 60 * 1000;

/// What became of a sign-up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SignedUp {
    /// A verification link is on its way (or, for an address that already has an account,
    /// a note to its owner: the answer is the same).
    LinkSent,
    /// The address counts as verified already (`SignUpVerification::AtOnce`, the demo).
    Verified,
}

/// Told when an account's email address is verified, after the verification is stored:
/// other domains act on addresses (commerce's fulfillment orders placed for an address
/// attach to the account that proves it owns it). The auth crate knows nothing of them;
/// the binary registers the hook (`AuthService::set_email_verified_hook`). A failure is
/// the hook's to log and make up for: the verification stands.
pub trait EmailVerifiedHook: Send + Sync {
    fn email_verified<'a>(&'a self, account: &'a AccountRecord) -> Pin<Box<dyn Future<Output = ()> + Send + 'a>>;
}

impl AuthService {
    /// Tells the hook, if any, that `account_id`'s address is verified.
    pub(crate) async fn verified(&self, account_id: &str) -> Result<(), AuthError> {
        if let Some(hook) = self.email_verified_hook()
            && let Some(account) = self.db().account_by_id(account_id).await?
        {
            hook.email_verified(&account).await;
        }
        Ok(())
    }

    /// Creates an unverified account and mails it a verification link. An address that
    /// already has an account gets the same answer (so sign-up cannot tell who has an
    /// account), and its owner a note instead of a link. A taken name is still refused:
    /// names are public. In the demo without a mail server the address counts as verified at
    /// once (which tells a taken address apart: acceptable there, never set otherwise).
    pub async fn sign_up(&self, name: &str, email: &str, password: &str) -> Result<SignedUp, AuthError> {
        let at_once = self.settings().sign_up_verification == SignUpVerification::AtOnce;
        match self.create_person(name, email, password, SiteRole::User, at_once).await {
            Ok(account) if at_once => {
                self.verified(&account.id).await?;
                tracing::info!(account = %name, "demo store without a mail server: the address counts as verified at once");
                Ok(SignedUp::Verified)
            }
            Ok(account) => {
                self.send_link(&account, "verify", VERIFY_TTL_MS, self.db().clock().now_ms()).await?;
                Ok(SignedUp::LinkSent)
            }
            // The same checks and password hash ran as for a new address before the insert
            // found the address taken, so the answer takes about as long.
            Err(AuthError::Db(DbError::Conflict(conflict))) => match self.db().account_by_email(email).await? {
                Some(owner) if self.db().account_by_name(name).await?.is_none() => {
                    self.mail_taken_address(&owner, email).await?;
                    Ok(SignedUp::LinkSent)
                }
                _ => Err(AuthError::Db(DbError::Conflict(conflict))),
            },
            Err(e) => Err(e),
        }
    }

    /// Mails the verification link again, if the address belongs to an account that has
    /// not verified it. Answers the same either way and whatever the limits held back, as
    /// a reset request does.
    pub async fn resend_verification(&self, email: &str, client: Option<IpAddr>) -> Result<(), AuthError> {
        check_email(email)?;
        let now = self.db().clock().now_ms();
        if self.over_link_limit("verify", email, client, now).await? {
            return Ok(());
        }
        let Some(id) = self.db().account_by_email(email).await? else { return Ok(()) };
        let Some(account) = self.db().account_by_id(&id).await? else { return Ok(()) };
        if account.email_verified_at.is_some() {
            return Ok(());
        }
        self.send_link(&account, "verify", VERIFY_TTL_MS, now - RESEND_AFTER_MS).await.map(drop)
    }

    /// Counts a request for a mailed link of `purpose` to `email` from `client`: true when
    /// the address or the client (IPv6 by /64) is over its limit for the window.
    pub(crate) async fn over_link_limit(&self, purpose: &str, email: &str, client: Option<IpAddr>, now: i64) -> Result<bool, AuthError> {
        let window_start = now - MAIL_WINDOW_MS;
        self.db().forget_request_windows(window_start).await?;
        let mut over = self.db().count_request(&format!("{purpose}-email:{}", email.to_lowercase()), window_start).await? > LINKS_PER_EMAIL;
        if let Some(client) = client {
            over |= self.db().count_request(&format!("{purpose}-client:{}", crate::address_group(client)), window_start).await?
                > LINKS_PER_CLIENT;
        }
        if over {
            tracing::info!(client = ?client, purpose, "request for a mailed link over its limit: no mail");
        }
        Ok(over)
    }

    /// Tells an address's owner that someone tried to sign up with it, at most once per
    /// window, so sign-up attempts cannot flood the mailbox.
    async fn mail_taken_address(&self, owner_id: &str, email: &str) -> Result<(), AuthError> {
        let window_start = self.db().clock().now_ms() - MAIL_WINDOW_MS;
        if self.db().count_request(&format!("signup-taken:{}", email.to_lowercase()), window_start).await? > 1 {
            return Ok(());
        }
        let Some(owner) = self.db().account_by_id(owner_id).await? else { return Ok(()) };
        let body = format!(
            "Hello {},\n\nsomeone tried to sign up to Slipway with this address, which already has your account. \
             No new account was made.\n\nIf it was you and you forgot your password, choose a new one at \
             {}/forgot-password\n\
             If it was not you, ignore this message.\n",
            owner.name,
            self.settings().mail_link_base()
        );
        mail::enqueue(self.db(), email, "Someone tried to sign up with your address", &body).await
    }

    /// Issues an email token and mails its link, unless the account holds a live token for
    /// `purpose` issued after `keep_if_issued_after`: then the mail sent with that one
    /// stands, and this returns false. Links start at the configured base
    /// (`AuthSettings::mail_link_base`), never at anything a request said.
    async fn send_link(&self, account: &AccountRecord, purpose: &str, ttl_ms: i64, keep_if_issued_after: i64) -> Result<bool, AuthError> {
        let Some(email) = &account.email else { return Ok(false) };
        let secret = random_secret();
        let expires_at = self.db().clock().now_ms() + ttl_ms;
        if !self.db().issue_email_token(&token_hash(&secret), &account.id, purpose, expires_at, keep_if_issued_after).await? {
            return Ok(false);
        }
        let base = self.settings().mail_link_base();
        let (subject, body) = match purpose {
            "verify" => {
                let link = format!("{base}/verify-email?token={secret}");
                if self.settings().sign_up_verification == SignUpVerification::Log {
                    // No mail server: the operator passes the link on (the message also
                    // waits in the outbox for when one is configured).
                    tracing::warn!(account = %account.name, %link, "no mail server: the verification link is written here instead");
                }
                (
                    "Verify your Slipway email address".to_owned(),
                    format!(
                        "Hello {},\n\nconfirm this address to finish signing up:\n\n{link}\n\nThe link works for 48 hours.\n",
                        account.name
                    ),
                )
            }
            _ => (
                "Reset your Slipway password".to_owned(),
                format!(
                    "Hello {},\n\nsomeone asked to reset your password. To choose a new one, use this code within an hour:\n\n{secret}\n\n(or open {base}/reset-password?token={secret})\n\nIf it was not you, ignore this message: your password is unchanged.\n",
                    account.name
                ),
            ),
        };
        mail::enqueue(self.db(), email, &subject, &body).await?;
        Ok(true)
    }

    pub async fn verify_email(&self, token: &str) -> Result<(), AuthError> {
        let account = self
            .db()
            .use_email_token(&token_hash(token), "verify")
            .await?
            .ok_or_else(|| AuthError::Invalid("this verification link is invalid, used or expired".into()))?;
        self.db().mark_email_verified(&account).await?;
        self.verified(&account).await
    }

    /// Marks a person's address verified by the operator's word (`slipway admin
    /// verify-email`), with what following the link does; the account as it is now.
    pub async fn verify_email_of(&self, name: &str) -> Result<AccountRecord, AuthError> {
        let account = self.db().account_by_name(name).await?.ok_or_else(|| AuthError::NotFound(format!("no account named {name:?}")))?;
        if account.kind != "person" || account.email.as_deref().unwrap_or_default().is_empty() {
            return Err(AuthError::Invalid(format!("{name} is not a person with an email address")));
        }
        if account.email_verified_at.is_none() {
            self.db().mark_email_verified(&account.id).await?;
            self.verified(&account.id).await?;
        }
        Ok(self.db().account_by_id(&account.id).await?.unwrap_or(account))
    }

    /// Mails a reset code if the address belongs to an account. Answers the same either
    /// way, so it cannot be used to discover accounts, and also when a limit holds the mail
    /// back: requests are counted per address asked for and per client (`client`, IPv6 by
    /// /64), and while a code mailed less than `LINK_REUSE_MS` ago is still live, no
    /// new one is sent (the mailbox already has a working code).
    pub async fn request_password_reset(&self, email: &str, client: Option<IpAddr>) -> Result<(), AuthError> {
        check_email(email)?;
        let now = self.db().clock().now_ms();
        if self.over_link_limit("reset", email, client, now).await? {
            return Ok(());
        }
        let Some(id) = self.db().account_by_email(email).await? else { return Ok(()) };
        let Some(account) = self.db().account_by_id(&id).await? else { return Ok(()) };
        self.send_link(&account, "reset", RESET_TTL_MS, now - LINK_REUSE_MS).await.map(drop)
    }

    /// Sets a new password and, in the same transaction, signs the account out everywhere
    /// and revokes its access tokens: whoever reset the password may be recovering the
    /// account from someone who knew the old one (and made tokens with it). The owner is
    /// told by mail.
    pub async fn reset_password(&self, token: &str, password: &str) -> Result<(), AuthError> {
        let invalid = || AuthError::Invalid("this reset code is invalid, used or expired".into());
        let hash = token_hash(token);
        // Checked before the (costly) password hash; used only in the transaction below.
        let account_id = self.db().email_token_account(&hash, "reset").await?.ok_or_else(invalid)?;
        let account = self.db().account_by_id(&account_id).await?.ok_or_else(invalid)?;
        check_password(password, &account.name, account.email.as_deref())?;
        let password_hash = self.hash_password(password).await?;
        let done = self.db().reset_password(&hash, &password_hash).await?.ok_or_else(invalid)?;
        // A reset code mailed to the address proves it too (the reset verified it).
        self.verified(&account.id).await?;
        if let Some(email) = &account.email {
            let tokens = match done.revoked_access_tokens {
                0 => String::new(),
                1 => " Your access token was revoked: create a new one for the tools that used it.".to_owned(),
                n => format!(" Your {n} access tokens were revoked: create new ones for the tools that used them."),
            };
            let body = format!(
                "Hello {},\n\nthe password of your Slipway account was just changed with a reset code sent to this address, \
                 and every session was signed out.{tokens}\n\nIf this was not you, reset your password again at once and \
                 contact the site's administrators.\n",
                account.name
            );
            mail::enqueue(self.db(), email, "Your Slipway password was changed", &body).await?;
        }
        Ok(())
    }

    /// Checks a password and opens a browser session, or a challenge for a second factor
    /// (two_factor.rs). `user_agent` is kept (shortened) for the account's sessions list,
    /// with the client's address group.
    pub async fn sign_in(&self, name: &str, password: &str, ip: Option<IpAddr>, user_agent: &str) -> Result<SignInStep, AuthError> {
        if password.starts_with(crate::TOKEN_PREFIX) {
            return Err(AuthError::Invalid("sign in to the web with your password, not an access token".into()));
        }
        let who = self.throttled_password_sign_in(name, password.to_owned(), ip).await?;
        let account = who.account.ok_or(AuthError::BadCredentials)?;
        self.after_password(account, ip, user_agent).await
    }

    /// The account and CSRF token of a live session.
    pub async fn session(&self, cookie: &str) -> Result<Option<(AccountRecord, String)>, AuthError> {
        let Some((account_id, csrf)) = self.db().session(&token_hash(cookie)).await? else { return Ok(None) };
        let account = self.db().account_by_id(&account_id).await?.filter(|a| a.disabled_at.is_none());
        Ok(account.map(|a| (a, csrf)))
    }

    pub async fn sign_out(&self, cookie: &str) -> Result<(), AuthError> {
        Ok(self.db().delete_session(&token_hash(cookie)).await?)
    }
}

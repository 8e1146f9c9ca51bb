//! Self-service accounts: sign-up with email verification, password reset, browser
//! sessions (failed sign-ins are throttled in throttle.rs).

use std::net::IpAddr;

use slipway_db::AccountRecord;

use crate::access::SiteRole;
use crate::directory::{check_email, check_password};
use crate::secrets::{random_secret, token_hash};
use crate::service::AuthService;
use crate::{mail, AuthError};

const VERIFY_TTL_MS: i64 = 48 * 3600 * 1000;
const RESET_TTL_MS: i64 = 3600 * 1000;
const SESSION_TTL_MS: i64 = 14 * 24 * 3600 * 1000;
impl AuthService {
    /// Creates an unverified account and mails it a verification link under `base_url`.
    pub async fn sign_up(&self, name: &str, email: &str, password: &str, base_url: &str) -> Result<AccountRecord, AuthError> {
        let account = self.create_person(name, email, password, SiteRole::User, false).await?;
        self.send_link(&account, "verify", VERIFY_TTL_MS, base_url).await?;
        Ok(account)
    }

    async fn send_link(&self, account: &AccountRecord, purpose: &str, ttl_ms: i64, base_url: &str) -> Result<(), AuthError> {
        let Some(email) = &account.email else { return Ok(()) };
        let secret = random_secret();
        self.db()
            .create_email_token(&token_hash(&secret), &account.id, purpose, slipway_db::now_ms() + ttl_ms)
            .await?;
        let base = base_url.trim_end_matches('/');
        let (subject, body) = match purpose {
            "verify" => (
                "Verify your Slipway email address".to_owned(),
                format!(
                    "Hello {},\n\nconfirm this address to finish signing up:\n\n{base}/verify-email?token={secret}\n\nThe link works for 48 hours.\n",
                    account.name
                ),
            ),
            _ => (
                "Reset your Slipway password".to_owned(),
                format!(
                    "Hello {},\n\nsomeone asked to reset your password. To choose a new one, use this code within an hour:\n\n{secret}\n\n(or open {base}/reset-password?token={secret})\n\nIf it was not you, ignore this message: your password is unchanged.\n",
                    account.name
                ),
            ),
        };
        mail::enqueue(self.db(), email, &subject, &body).await
    }

    pub async fn verify_email(&self, token: &str) -> Result<(), AuthError> {
        let account = self
            .db()
            .use_email_token(&token_hash(token), "verify")
            .await?
            .ok_or_else(|| AuthError::Invalid("this verification link is invalid, used or expired".into()))?;
        Ok(self.db().mark_email_verified(&account).await?)
    }

    /// Mails a reset code if the address belongs to an account. Answers the same either
    /// way, so it cannot be used to discover accounts.
    pub async fn request_password_reset(&self, email: &str, base_url: &str) -> Result<(), AuthError> {
        check_email(email)?;
        let Some(id) = self.db().account_by_email(email).await? else { return Ok(()) };
        let Some(account) = self.db().account_by_id(&id).await? else { return Ok(()) };
        self.send_link(&account, "reset", RESET_TTL_MS, base_url).await
    }

    /// Sets a new password and signs the account out everywhere.
    pub async fn reset_password(&self, token: &str, password: &str) -> Result<(), AuthError> {
        check_password(password)?;
        let account = self
            .db()
            .use_email_token(&token_hash(token), "reset")
            .await?
            .ok_or_else(|| AuthError::Invalid("this reset code is invalid, used or expired".into()))?;
        let hash = self.hash_password(password).await?;
        self.db().set_password_hash(&account, &hash).await?;
        // Whoever followed the link read the mailbox, so the address is verified too.
        self.db().mark_email_verified(&account).await?;
        Ok(self.db().sign_out_everywhere(&account).await?)
    }

    /// Checks a password and opens a browser session: (cookie value, CSRF token, account).
    pub async fn sign_in(&self, name: &str, password: &str, ip: Option<IpAddr>) -> Result<(String, String, AccountRecord), AuthError> {
        let who = self
            .authenticate_with(crate::Credentials::Password { username: name.to_owned(), secret: password.to_owned() }, ip)
            .await?;
        let account = who.account.ok_or(AuthError::BadCredentials)?;
        if who.token.is_some() {
            return Err(AuthError::Invalid("sign in to the web with your password, not an access token".into()));
        }
        let (cookie, csrf) = (random_secret(), random_secret());
        self.db().create_session(&token_hash(&cookie), &account.id, &csrf, slipway_db::now_ms() + SESSION_TTL_MS).await?;
        Ok((cookie, csrf, account))
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

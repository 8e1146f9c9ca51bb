//! An account's own settings: its browser sessions (listed, the others signed out), a new
//! password (the current one asked again), and a new email address, which counts only once
//! the link mailed to it is followed. Every change is told to the account's address.

use std::net::IpAddr;

use slipway_db::{AccountRecord, DbError};

use crate::directory::{check_email, check_password};
use crate::secrets::{random_secret, token_hash};
use crate::service::AuthService;
use crate::{AuthError, mail};

/// How long an email-change link works.
const EMAIL_CHANGE_TTL_MS: i64 = 48 * 3600 * 1000;

/// A live browser session of the account, for its settings page.
#[derive(Clone, Debug)]
pub struct SessionInfo {
    pub created_at: i64,
    pub expires_at: i64,
    /// The browser's User-Agent when it signed in (shortened), empty if unknown.
    pub user_agent: String,
    /// The client's address (IPv6 by /64), empty if unknown.
    pub client: String,
    /// The session this request came with.
    pub current: bool,
}

impl AuthService {
    /// The account's live browser sessions, newest first; `cookie` marks the current one.
    pub async fn sessions(&self, account: &AccountRecord, cookie: &str) -> Result<Vec<SessionInfo>, AuthError> {
        let current = token_hash(cookie);
        Ok(self
            .db()
            .sessions_of(&account.id)
            .await?
            .into_iter()
            .map(|s| SessionInfo {
                current: s.id_hash == current,
                created_at: s.created_at,
                expires_at: s.expires_at,
                user_agent: s.user_agent,
                client: s.client,
            })
            .collect())
    }

    /// Signs the account out of every session but the one `cookie` opened, and ends the
    /// `docker login` identities it stored; returns how many sessions ended.
    pub async fn sign_out_other_sessions(&self, account: &AccountRecord, cookie: &str) -> Result<u64, AuthError> {
        Ok(self.db().sign_out_others(&account.id, &token_hash(cookie), None).await?)
    }

    /// The current password, asked again before a change: a wrong one is refused as
    /// invalid (with the sign-in throttle's delays, which count it as a failed sign-in).
    pub(crate) async fn recheck_password(&self, account: &AccountRecord, password: &str, ip: Option<IpAddr>) -> Result<(), AuthError> {
        match self.throttled_password_sign_in(&account.name, password.to_owned(), ip).await {
            Ok(who) if who.token.is_none() && who.account.as_ref().is_some_and(|a| a.id == account.id) => Ok(()),
            Ok(_) | Err(AuthError::BadCredentials) => Err(AuthError::Invalid("the current password is wrong".into())),
            Err(e) => Err(e),
        }
    }

    /// Sets a new password after checking the current one; every other session is signed
    /// out and stored `docker login` identities end in the same transaction (this one stays
    /// signed in). Access tokens stay: the owner, who knew the password, made them. The
    /// address is told.
    pub async fn change_password(
        &self,
        account: &AccountRecord,
        current: &str,
        new: &str,
        cookie: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        self.recheck_password(account, current, ip).await?;
        check_password(new, &account.name, account.email.as_deref())?;
        if new == current {
            return Err(AuthError::Invalid("the new password is the current one".into()));
        }
        let hash = self.hash_password(new).await?;
        self.db().sign_out_others(&account.id, &token_hash(cookie), Some(&hash)).await?;
        if let Some(email) = &account.email {
            let body = format!(
                "Hello {},\n\nthe password of your Slipway account was just changed from its settings page, and every \
                 other session was signed out. Your access tokens still work.\n\nIf this was not you, reset your password \
                 at once ({}/forgot-password) and contact the site's administrators.\n",
                account.name,
                self.settings().mail_link_base()
            );
            mail::enqueue(self.db(), email, "Your Slipway password was changed", &body).await?;
        }
        Ok(())
    }

    /// Mails a link to `new_email` that makes it the account's address once followed, after
    /// checking the password; the current address is told. An address another account has
    /// gets the same answer and no mail (so the form cannot tell who has an account).
    /// Requests are limited per new address and per client as reset requests are.
    pub async fn request_email_change(
        &self,
        account: &AccountRecord,
        password: &str,
        new_email: &str,
        ip: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        check_email(new_email)?;
        if account.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(new_email)) {
            return Err(AuthError::Invalid("that is already your email address".into()));
        }
        self.recheck_password(account, password, ip).await?;
        let now = self.db().clock().now_ms();
        if self.over_link_limit("change-email", new_email, ip, now).await? || self.db().account_by_email(new_email).await?.is_some() {
            return Ok(());
        }
        let secret = random_secret();
        self.db().issue_email_change(&token_hash(&secret), &account.id, new_email, now + EMAIL_CHANGE_TTL_MS).await?;
        let base = self.settings().mail_link_base();
        let body = format!(
            "Hello {},\n\nconfirm this address as the new one of your Slipway account:\n\n{base}/settings/email/confirm?token={secret}\n\n\
             The link works for 48 hours. Until it is followed, your account keeps its current address.\n",
            account.name
        );
        mail::enqueue(self.db(), new_email, "Confirm your new Slipway email address", &body).await?;
        if let Some(old) = &account.email {
            let body = format!(
                "Hello {},\n\nsomeone signed in to your Slipway account asked to change its email address to {new_email}. \
                 Nothing changes until the link mailed there is followed.\n\nIf this was not you, change your password at once.\n",
                account.name
            );
            mail::enqueue(self.db(), old, "A change of your Slipway email address was asked for", &body).await?;
        }
        Ok(())
    }

    /// Follows an email-change link: the new address becomes the account's, verified; the
    /// old one is told. Returns the account as it is now.
    pub async fn confirm_email_change(&self, token: &str) -> Result<AccountRecord, AuthError> {
        let invalid = || AuthError::Invalid("this link is invalid, used or expired".into());
        let (account_id, old, new) = match self.db().change_email(&token_hash(token)).await {
            Ok(changed) => changed.ok_or_else(invalid)?,
            Err(DbError::Conflict(_)) => return Err(AuthError::Invalid("that address belongs to another account now".into())),
            Err(e) => return Err(e.into()),
        };
        self.verified(&account_id).await?;
        let account = self.db().account_by_id(&account_id).await?.ok_or_else(invalid)?;
        if let Some(old) = old {
            let body = format!(
                "Hello {},\n\nthe email address of your Slipway account is now {new}; mail for the account goes there from now on.\n\n\
                 If this was not you, contact the site's administrators.\n",
                account.name
            );
            mail::enqueue(self.db(), &old, "Your Slipway email address was changed", &body).await?;
        }
        Ok(account)
    }

    /// The organizations the account owns: while there is one, it cannot be deleted.
    pub async fn owned_organizations(&self, account: &AccountRecord) -> Result<Vec<String>, AuthError> {
        Ok(self.db().owned_organizations(&account.id).await?)
    }

    /// Deletes the account after its password is asked again: see
    /// `IdentityDb::delete_account` (its name stays taken; everything that signs it in
    /// ends). Refused, with the reason, while it owns an organization. Whatever else the
    /// account holds elsewhere (subscriptions) is the caller's to settle first. The
    /// address it had is told.
    pub async fn delete_account(&self, account: &AccountRecord, password: &str, ip: Option<IpAddr>) -> Result<(), AuthError> {
        self.recheck_password(account, password, ip).await?;
        let owned = self.owned_organizations(account).await?;
        if !owned.is_empty() {
            return Err(owns_organizations(&owned));
        }
        match self.db().delete_account(&account.id).await {
            Ok(true) => {}
            Ok(false) => return Ok(()),
            // Made an owner since the check above.
            Err(DbError::Conflict(_)) => return Err(owns_organizations(&self.owned_organizations(account).await?)),
            Err(e) => return Err(e.into()),
        }
        if let Some(email) = &account.email {
            let body = format!(
                "Hello {},\n\nyour Slipway account was deleted at your request: its sessions and access tokens no longer \
                 work and this address is forgotten. The name {} stays reserved.\n",
                account.name, account.name
            );
            mail::enqueue(self.db(), email, "Your Slipway account was deleted", &body).await?;
        }
        Ok(())
    }
}

fn owns_organizations(orgs: &[String]) -> AuthError {
    AuthError::Conflict(format!(
        "the account owns {}: hand ownership on to another member (or remove the organization) first",
        orgs.join(", ")
    ))
}

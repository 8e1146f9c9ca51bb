//! Queries behind single sign-on: sign-ins waiting for a provider's answer, and the
//! identities at providers that accounts are linked to.

use sqlx::Any;

use crate::identity::insert_account;
use crate::{DbError, IdentityDb, NewAccount};

/// A sign-in sent to a provider, as its answer is checked.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SsoLogin {
    pub provider: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub next: String,
}

/// Where a new sign-in is sent.
pub struct NewSsoLogin<'a> {
    pub state_hash: &'a str,
    pub provider: &'a str,
    pub nonce: &'a str,
    pub pkce_verifier: &'a str,
    pub next: &'a str,
    pub expires_at: i64,
}

/// An identity at a provider: (issuer, subject), and the provider's name in the settings.
pub struct SsoIdentity<'a> {
    pub issuer: &'a str,
    pub subject: &'a str,
    pub provider: &'a str,
}

impl IdentityDb {
    /// Stores a waiting sign-in (expired ones go with it, so the table stays small).
    pub async fn create_sso_login(&self, login: &NewSsoLogin<'_>) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sso_logins WHERE expires_at <= $1").bind(now).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO sso_logins (state_hash, provider, nonce, pkce_verifier, next, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(login.state_hash)
        .bind(login.provider)
        .bind(login.nonce)
        .bind(login.pkce_verifier)
        .bind(login.next)
        .bind(now)
        .bind(login.expires_at)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Uses up a waiting sign-in: None when it is unknown, used or expired.
    pub async fn take_sso_login(&self, state_hash: &str) -> Result<Option<SsoLogin>, DbError> {
        let mut tx = self.begin_write().await?;
        let login = sqlx::query_as::<Any, SsoLogin>(
            "SELECT provider, nonce, pkce_verifier, next FROM sso_logins WHERE state_hash = $1 AND expires_at > $2",
        )
        .bind(state_hash)
        .bind(self.clock.now_ms())
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query("DELETE FROM sso_logins WHERE state_hash = $1").bind(state_hash).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(login)
    }

    /// The account an identity is linked to.
    pub async fn sso_account(&self, issuer: &str, subject: &str) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>("SELECT account_id FROM sso_links WHERE issuer = $1 AND subject = $2")
            .bind(issuer)
            .bind(subject)
            .fetch_optional(&self.read)
            .await?)
    }

    /// The providers (by name) an account's identities are at.
    pub async fn sso_providers_of(&self, account_id: &str) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>("SELECT provider FROM sso_links WHERE account_id = $1 ORDER BY provider")
            .bind(account_id)
            .fetch_all(&self.read)
            .await?)
    }

    /// Links an identity to an existing account; a Conflict when it is linked already.
    pub async fn link_sso(&self, identity: &SsoIdentity<'_>, account_id: &str) -> Result<(), DbError> {
        insert_link(&self.write, identity, account_id, self.clock.now_ms()).await
    }

    /// Creates an account for an identity and links it, in one transaction.
    pub async fn create_sso_account(&self, account: &NewAccount<'_>, identity: &SsoIdentity<'_>) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        insert_account(&mut *tx, account, now).await?;
        insert_link(&mut *tx, identity, account.id, now).await?;
        tx.commit().await?;
        Ok(())
    }
}

async fn insert_link<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    identity: &SsoIdentity<'_>,
    account_id: &str,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query("INSERT INTO sso_links (issuer, subject, account_id, provider, created_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(identity.issuer)
        .bind(identity.subject)
        .bind(account_id)
        .bind(identity.provider)
        .bind(now)
        .execute(executor)
        .await
        .map_err(|e| crate::identity::unique_violation(e, "this identity is linked to an account already".into()))?;
    Ok(())
}

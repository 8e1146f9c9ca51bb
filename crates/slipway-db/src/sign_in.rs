//! Queries behind web sessions, email links and the outbox (sign-in throttling: throttle.rs).

use sqlx::Any;

use crate::{now_ms, Db, DbError};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OutboxMessage {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
}

impl Db {
    pub async fn create_session(&self, id_hash: &str, account_id: &str, csrf: &str, expires_at: i64) -> Result<(), DbError> {
        sqlx::query("INSERT INTO web_sessions (id_hash, account_id, csrf, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id_hash)
            .bind(account_id)
            .bind(csrf)
            .bind(now_ms())
            .bind(expires_at)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// (account id, csrf token) of a live session.
    pub async fn session(&self, id_hash: &str) -> Result<Option<(String, String)>, DbError> {
        Ok(sqlx::query_as::<Any, (String, String)>(
            "SELECT account_id, csrf FROM web_sessions WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(now_ms())
        .fetch_optional(&self.read)
        .await?)
    }

    pub async fn delete_session(&self, id_hash: &str) -> Result<(), DbError> {
        sqlx::query("DELETE FROM web_sessions WHERE id_hash = $1").bind(id_hash).execute(&self.write).await?;
        Ok(())
    }

    /// Ends every session and refresh token of an account (after a password change).
    pub async fn sign_out_everywhere(&self, account_id: &str) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM web_sessions WHERE account_id = $1").bind(account_id).execute(&mut *tx).await?;
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
            .bind(now_ms())
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn create_email_token(&self, token_hash: &str, account_id: &str, purpose: &str, expires_at: i64) -> Result<(), DbError> {
        sqlx::query("INSERT INTO email_tokens (token_hash, account_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(token_hash)
            .bind(account_id)
            .bind(purpose)
            .bind(now_ms())
            .bind(expires_at)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Marks an unused, unexpired email token used; returns its account.
    pub async fn use_email_token(&self, token_hash: &str, purpose: &str) -> Result<Option<String>, DbError> {
        let now = now_ms();
        let account = sqlx::query_scalar::<Any, String>(
            "UPDATE email_tokens SET used_at = $1
             WHERE token_hash = $2 AND purpose = $3 AND used_at IS NULL AND expires_at > $1
             RETURNING account_id",
        )
        .bind(now)
        .bind(token_hash)
        .bind(purpose)
        .fetch_optional(&self.write)
        .await?;
        Ok(account)
    }

    pub async fn mark_email_verified(&self, account_id: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE accounts SET email_verified_at = $1 WHERE id = $2 AND email_verified_at IS NULL")
            .bind(now_ms())
            .bind(account_id)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    pub async fn email_verified(&self, account_id: &str) -> Result<bool, DbError> {
        Ok(sqlx::query_scalar::<Any, i64>("SELECT email_verified_at FROM accounts WHERE id = $1 AND email_verified_at IS NOT NULL")
            .bind(account_id)
            .fetch_optional(&self.read)
            .await?
            .is_some())
    }

    pub async fn set_password_hash(&self, account_id: &str, hash: &str) -> Result<(), DbError> {
        sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2").bind(hash).bind(account_id).execute(&self.write).await?;
        Ok(())
    }

    pub async fn account_by_email(&self, email: &str) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>("SELECT id FROM accounts WHERE email = $1")
            .bind(email)
            .fetch_optional(&self.read)
            .await?)
    }

    // ---- outbox ------------------------------------------------------------------------

    pub async fn enqueue_mail(&self, id: &str, recipient: &str, subject: &str, body: &str) -> Result<(), DbError> {
        let now = now_ms();
        sqlx::query(
            "INSERT INTO outbox (id, recipient, subject, body, created_at, next_attempt_at, attempts) VALUES ($1, $2, $3, $4, $5, $5, 0)",
        )
        .bind(id)
        .bind(recipient)
        .bind(subject)
        .bind(body)
        .bind(now)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn due_mail(&self, limit: i64) -> Result<Vec<OutboxMessage>, DbError> {
        Ok(sqlx::query_as::<Any, OutboxMessage>(
            "SELECT id, recipient, subject, body, attempts FROM outbox
             WHERE sent_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2",
        )
        .bind(now_ms())
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    /// Records a delivery attempt: sent, or failed and retried at `retry_at`.
    pub async fn mail_attempted(&self, id: &str, error: Option<&str>, retry_at: i64) -> Result<(), DbError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        match error {
            None => sqlx::query("UPDATE outbox SET sent_at = $1, attempts = attempts + 1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?,
            Some(e) => sqlx::query("UPDATE outbox SET attempts = attempts + 1, last_error = $1, next_attempt_at = $2 WHERE id = $3")
                .bind(e)
                .bind(retry_at)
                .bind(id)
                .execute(&mut *tx)
                .await?,
        };
        tx.commit().await?;
        Ok(())
    }
}

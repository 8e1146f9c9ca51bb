//! Queries behind two-factor sign-in: an account's TOTP secret, its one-time recovery
//! codes, and the password sign-ins that wait for a code.

use sqlx::Any;

use crate::{DbError, IdentityDb, NewSession};

/// An account's TOTP secret and whether enrolment finished.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct TwoFactorRecord {
    /// Base32 (RFC 4648), as authenticator apps take it.
    pub secret: String,
    pub enabled_at: Option<i64>,
    /// The newest time step a code was accepted for (-1: none yet).
    pub last_step: i64,
}

/// A password sign-in waiting for its second factor.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct ChallengeRecord {
    pub account_id: String,
    pub user_agent: String,
    pub client: String,
}

/// Who must use two-factor sign-in, by configuration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct TwoFactorRule {
    /// Moderators and administrators.
    pub staff: bool,
    /// Owners of organizations that have a publisher profile.
    pub publisher_owners: bool,
}

impl IdentityDb {
    pub async fn two_factor(&self, account_id: &str) -> Result<Option<TwoFactorRecord>, DbError> {
        Ok(sqlx::query_as::<Any, TwoFactorRecord>("SELECT secret, enabled_at, last_step FROM two_factor WHERE account_id = $1")
            .bind(account_id)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Stores a new secret awaiting its first code, replacing an unfinished enrolment.
    /// False, and nothing changed, when two-factor sign-in is already on.
    pub async fn start_two_factor(&self, account_id: &str, secret: &str) -> Result<bool, DbError> {
        let changed = sqlx::query(
            "INSERT INTO two_factor (account_id, secret, created_at) VALUES ($1, $2, $3)
             ON CONFLICT (account_id) DO UPDATE SET secret = excluded.secret, created_at = excluded.created_at, last_step = -1
             WHERE two_factor.enabled_at IS NULL",
        )
        .bind(account_id)
        .bind(secret)
        .bind(self.clock.now_ms())
        .execute(&self.write)
        .await?
        .rows_affected();
        Ok(changed == 1)
    }

    /// Finishes enrolment with the step of the code that proved it, and stores the
    /// recovery codes' hashes, in one transaction. False when there was no unfinished
    /// enrolment with that secret (it was replaced, or finished by a racing request).
    pub async fn enable_two_factor(&self, account_id: &str, secret: &str, step: i64, code_hashes: &[String]) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        let enabled = sqlx::query(
            "UPDATE two_factor SET enabled_at = $1, last_step = $2
             WHERE account_id = $3 AND secret = $4 AND enabled_at IS NULL",
        )
        .bind(self.clock.now_ms())
        .bind(step)
        .bind(account_id)
        .bind(secret)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if enabled == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        replace_codes(&mut tx, account_id, code_hashes).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Records that a code of `step` was accepted; false when a code of this step or a
    /// later one already was (a replay).
    pub async fn accept_two_factor_step(&self, account_id: &str, step: i64) -> Result<bool, DbError> {
        let accepted =
            sqlx::query("UPDATE two_factor SET last_step = $1 WHERE account_id = $2 AND enabled_at IS NOT NULL AND last_step < $1")
                .bind(step)
                .bind(account_id)
                .execute(&self.write)
                .await?
                .rows_affected();
        Ok(accepted == 1)
    }

    /// Uses up a recovery code; false when it is unknown or used.
    pub async fn use_recovery_code(&self, account_id: &str, code_hash: &str) -> Result<bool, DbError> {
        let used = sqlx::query("UPDATE recovery_codes SET used_at = $1 WHERE account_id = $2 AND code_hash = $3 AND used_at IS NULL")
            .bind(self.clock.now_ms())
            .bind(account_id)
            .bind(code_hash)
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(used == 1)
    }

    pub async fn recovery_codes_left(&self, account_id: &str) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar::<Any, i64>("SELECT COUNT(*) FROM recovery_codes WHERE account_id = $1 AND used_at IS NULL")
            .bind(account_id)
            .fetch_one(&self.read)
            .await?)
    }

    /// Replaces every recovery code of an account with two-factor sign-in on.
    pub async fn replace_recovery_codes(&self, account_id: &str, code_hashes: &[String]) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        replace_codes(&mut tx, account_id, code_hashes).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Turns two-factor sign-in off: the secret, the recovery codes and waiting sign-ins go.
    pub async fn disable_two_factor(&self, account_id: &str) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        for delete in [
            "DELETE FROM two_factor WHERE account_id = $1",
            "DELETE FROM recovery_codes WHERE account_id = $1",
            "DELETE FROM sign_in_challenges WHERE account_id = $1",
        ] {
            sqlx::query(delete).bind(account_id).execute(&mut *tx).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Whether `rule` requires two-factor sign-in of the account. Decided in SQL, where
    /// the roles are, as every access decision on role names is.
    pub async fn two_factor_required(&self, account_id: &str, rule: TwoFactorRule) -> Result<bool, DbError> {
        let required = sqlx::query_scalar::<Any, i64>(
            "SELECT CASE
               WHEN $2 = 1 AND EXISTS (SELECT 1 FROM accounts WHERE id = $1 AND site_role IN ('admin', 'moderator')) THEN 1
               WHEN $3 = 1 AND EXISTS (SELECT 1 FROM memberships m JOIN publishers p ON p.org = m.org
                                        WHERE m.account_id = $1 AND m.role = 'owner') THEN 1
               ELSE 0 END",
        )
        .bind(account_id)
        .bind(i64::from(rule.staff))
        .bind(i64::from(rule.publisher_owners))
        .fetch_one(&self.read)
        .await?;
        Ok(required == 1)
    }

    /// Stores a password sign-in that waits for a code (the account's expired ones go).
    pub async fn create_sign_in_challenge(&self, challenge: &NewSession<'_>) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM sign_in_challenges WHERE account_id = $1 AND expires_at <= $2")
            .bind(challenge.account_id)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "INSERT INTO sign_in_challenges (id_hash, account_id, created_at, expires_at, user_agent, client)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(challenge.id_hash)
        .bind(challenge.account_id)
        .bind(now)
        .bind(challenge.expires_at)
        .bind(challenge.user_agent)
        .bind(challenge.client)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// A live waiting sign-in.
    pub async fn sign_in_challenge(&self, id_hash: &str) -> Result<Option<ChallengeRecord>, DbError> {
        Ok(sqlx::query_as::<Any, ChallengeRecord>(
            "SELECT account_id, user_agent, client FROM sign_in_challenges WHERE id_hash = $1 AND expires_at > $2",
        )
        .bind(id_hash)
        .bind(self.clock.now_ms())
        .fetch_optional(&self.read)
        .await?)
    }

    /// Turns a waiting sign-in into a web session in one transaction; false when it was
    /// used (by a racing request) or expired meanwhile.
    pub async fn complete_sign_in(&self, challenge_hash: &str, session: &NewSession<'_>) -> Result<bool, DbError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        let taken = sqlx::query("DELETE FROM sign_in_challenges WHERE id_hash = $1 AND account_id = $2 AND expires_at > $3")
            .bind(challenge_hash)
            .bind(session.account_id)
            .bind(now)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if taken == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        crate::sign_in::insert_session(&mut *tx, session, now).await?;
        tx.commit().await?;
        Ok(true)
    }
}

async fn replace_codes(tx: &mut sqlx::Transaction<'static, Any>, account_id: &str, code_hashes: &[String]) -> Result<(), DbError> {
    sqlx::query("DELETE FROM recovery_codes WHERE account_id = $1").bind(account_id).execute(&mut **tx).await?;
    for hash in code_hashes {
        sqlx::query("INSERT INTO recovery_codes (account_id, code_hash) VALUES ($1, $2)")
            .bind(account_id)
            .bind(hash)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

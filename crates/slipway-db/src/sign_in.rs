//! Queries behind web sessions, email links and the outbox (sign-in throttling: throttle.rs).

use sqlx::Any;

use crate::{DbError, IdentityDb};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct OutboxMessage {
    pub id: String,
    pub recipient: String,
    pub subject: String,
    pub body: String,
    pub attempts: i64,
}

/// What a password reset changed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PasswordReset {
    pub account_id: String,
    /// The account's access tokens that were live and are now revoked.
    pub revoked_access_tokens: u64,
}

/// A live browser session, as its account's settings list it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct SessionRecord {
    pub id_hash: String,
    pub created_at: i64,
    pub expires_at: i64,
    pub user_agent: String,
    pub client: String,
}

/// Where a new browser session comes from.
pub struct NewSession<'a> {
    pub id_hash: &'a str,
    pub account_id: &'a str,
    pub csrf: &'a str,
    pub expires_at: i64,
    pub user_agent: &'a str,
    pub client: &'a str,
}

/// What a followed email-change link changed: (account id, the old address, the new one).
pub type EmailChange = (String, Option<String>, String);

/// The most sessions an account's settings list.
const MAX_LISTED_SESSIONS: i64 = 100;

impl IdentityDb {
    pub async fn create_session(&self, session: &NewSession<'_>) -> Result<(), DbError> {
        insert_session(&self.write, session, self.clock.now_ms()).await
    }

    /// The account's live sessions, newest first (at most `MAX_LISTED_SESSIONS`).
    pub async fn sessions_of(&self, account_id: &str) -> Result<Vec<SessionRecord>, DbError> {
        Ok(sqlx::query_as::<Any, SessionRecord>(
            "SELECT id_hash, created_at, expires_at, user_agent, client FROM web_sessions
             WHERE account_id = $1 AND expires_at > $2 ORDER BY created_at DESC, id_hash LIMIT $3",
        )
        .bind(account_id)
        .bind(self.clock.now_ms())
        .bind(MAX_LISTED_SESSIONS)
        .fetch_all(&self.read)
        .await?)
    }

    /// Ends every session of the account but `keep` (a session's id hash) and revokes its
    /// refresh tokens (`docker login`'s stored identities); sets the new password hash first
    /// when one is given, in the same transaction. Returns how many sessions ended.
    pub async fn sign_out_others(&self, account_id: &str, keep: &str, new_password_hash: Option<&str>) -> Result<u64, DbError> {
        let mut tx = self.begin_write().await?;
        if let Some(hash) = new_password_hash {
            sqlx::query("UPDATE accounts SET password_hash = $1 WHERE id = $2").bind(hash).bind(account_id).execute(&mut *tx).await?;
        }
        let ended = sqlx::query("DELETE FROM web_sessions WHERE account_id = $1 AND id_hash <> $2")
            .bind(account_id)
            .bind(keep)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
            .bind(self.clock.now_ms())
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(ended)
    }

    /// The organizations the account owns (it cannot be deleted while it owns one).
    pub async fn owned_organizations(&self, account_id: &str) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>("SELECT org FROM memberships WHERE account_id = $1 AND role = 'owner' ORDER BY org")
            .bind(account_id)
            .fetch_all(&self.read)
            .await?)
    }

    /// Deletes a person's account, in one transaction: it is disabled (its name stays taken,
    /// so no one else gets its namespace or its pull paths), its address and password are
    /// forgotten, its sessions end, its access and refresh tokens are revoked and its
    /// memberships end. A Conflict, and nothing changed, while it owns an organization;
    /// false if it was deleted already.
    pub async fn delete_account(&self, account_id: &str) -> Result<bool, DbError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        let owns = sqlx::query_scalar::<Any, i64>("SELECT COUNT(*) FROM memberships WHERE account_id = $1 AND role = 'owner'")
            .bind(account_id)
            .fetch_one(&mut *tx)
            .await?;
        if owns > 0 {
            tx.rollback().await?;
            return Err(DbError::Conflict("the account owns an organization".into()));
        }
        let disabled = sqlx::query(
            "UPDATE accounts SET disabled_at = $1, email = NULL, email_verified_at = NULL, password_hash = NULL
             WHERE id = $2 AND disabled_at IS NULL",
        )
        .bind(now)
        .bind(account_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if disabled == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        for delete in [
            "DELETE FROM web_sessions WHERE account_id = $1",
            "DELETE FROM memberships WHERE account_id = $1",
            "DELETE FROM two_factor WHERE account_id = $1",
            "DELETE FROM recovery_codes WHERE account_id = $1",
            "DELETE FROM sign_in_challenges WHERE account_id = $1",
            "DELETE FROM sso_links WHERE account_id = $1",
        ] {
            sqlx::query(delete).bind(account_id).execute(&mut *tx).await?;
        }
        crate::identity::revoke_tokens(&mut tx, account_id, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Stores an email-change link (its hash) for `new_email`, replacing the account's live
    /// one: only the newest link mailed works.
    pub async fn issue_email_change(&self, token_hash: &str, account_id: &str, new_email: &str, expires_at: i64) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO email_tokens (token_hash, account_id, purpose, created_at, expires_at, new_email)
             VALUES ($1, $2, 'change-email', $3, $4, $5)
             ON CONFLICT (account_id, purpose) WHERE used_at IS NULL DO UPDATE
               SET token_hash = excluded.token_hash, created_at = excluded.created_at, expires_at = excluded.expires_at,
                   new_email = excluded.new_email",
        )
        .bind(token_hash)
        .bind(account_id)
        .bind(self.clock.now_ms())
        .bind(expires_at)
        .bind(new_email)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Uses a live email-change link and, in the same transaction, makes its address the
    /// account's, verified. None, and nothing changed, if the link is not live; a Conflict if
    /// another account took the address since the link was mailed.
    pub async fn change_email(&self, token_hash: &str) -> Result<Option<EmailChange>, DbError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        let used = sqlx::query_as::<Any, (String, Option<String>)>(
            "UPDATE email_tokens SET used_at = $1
             WHERE token_hash = $2 AND purpose = 'change-email' AND used_at IS NULL AND expires_at > $1
             RETURNING account_id, new_email",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some((account_id, Some(new_email))) = used else {
            tx.rollback().await?;
            return Ok(None);
        };
        let old = sqlx::query_scalar::<Any, Option<String>>("SELECT email FROM accounts WHERE id = $1")
            .bind(&account_id)
            .fetch_one(&mut *tx)
            .await?;
        sqlx::query("UPDATE accounts SET email = $1, email_verified_at = $2 WHERE id = $3")
            .bind(&new_email)
            .bind(now)
            .bind(&account_id)
            .execute(&mut *tx)
            .await
            .map_err(|e| crate::identity::unique_violation(e, format!("{new_email} belongs to another account")))?;
        tx.commit().await?;
        Ok(Some((account_id, old, new_email)))
    }

    /// (account id, csrf token) of a live session.
    pub async fn session(&self, id_hash: &str) -> Result<Option<(String, String)>, DbError> {
        Ok(sqlx::query_as::<Any, (String, String)>("SELECT account_id, csrf FROM web_sessions WHERE id_hash = $1 AND expires_at > $2")
            .bind(id_hash)
            .bind(self.clock.now_ms())
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
            .bind(self.clock.now_ms())
            .bind(account_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Stores a new email token (its hash), replacing the account's live one for the purpose:
    /// only the newest link mailed works.
    pub async fn create_email_token(&self, token_hash: &str, account_id: &str, purpose: &str, expires_at: i64) -> Result<(), DbError> {
        self.issue_email_token(token_hash, account_id, purpose, expires_at, self.clock.now_ms()).await?;
        Ok(())
    }

    /// Stores a new email token unless the account has a live one for the purpose issued
    /// after `keep_if_issued_after`: then that one stays and this returns false (the code
    /// already mailed is still good, so no new mail is due). An older live token is
    /// replaced. One statement, so concurrent requests issue at most one token.
    pub async fn issue_email_token(
        &self,
        token_hash: &str,
        account_id: &str,
        purpose: &str,
        expires_at: i64,
        keep_if_issued_after: i64,
    ) -> Result<bool, DbError> {
        let now = self.clock.now_ms();
        let issued = sqlx::query_scalar::<Any, String>(
            "INSERT INTO email_tokens (token_hash, account_id, purpose, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (account_id, purpose) WHERE used_at IS NULL DO UPDATE
               SET token_hash = excluded.token_hash, created_at = excluded.created_at, expires_at = excluded.expires_at
               WHERE email_tokens.created_at <= $6 OR email_tokens.expires_at <= $4
             RETURNING token_hash",
        )
        .bind(token_hash)
        .bind(account_id)
        .bind(purpose)
        .bind(now)
        .bind(expires_at)
        .bind(keep_if_issued_after)
        .fetch_optional(&self.write)
        .await?;
        Ok(issued.is_some())
    }

    /// The account of a live (unused, unexpired) email token, without using it.
    pub async fn email_token_account(&self, token_hash: &str, purpose: &str) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>(
            "SELECT account_id FROM email_tokens WHERE token_hash = $1 AND purpose = $2 AND used_at IS NULL AND expires_at > $3",
        )
        .bind(token_hash)
        .bind(purpose)
        .bind(self.clock.now_ms())
        .fetch_optional(&self.read)
        .await?)
    }

    /// Uses a live reset token and, in the same transaction, sets the account's new password
    /// hash, marks its address verified (whoever has the code read the mailbox), ends its
    /// sessions, and revokes its refresh tokens and its own access tokens (robots' tokens
    /// belong to the robots). None, and nothing changed, if the token is not live.
    pub async fn reset_password(&self, token_hash: &str, password_hash: &str) -> Result<Option<PasswordReset>, DbError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        let account_id = sqlx::query_scalar::<Any, String>(
            "UPDATE email_tokens SET used_at = $1
             WHERE token_hash = $2 AND purpose = 'reset' AND used_at IS NULL AND expires_at > $1
             RETURNING account_id",
        )
        .bind(now)
        .bind(token_hash)
        .fetch_optional(&mut *tx)
        .await?;
        let Some(account_id) = account_id else {
            tx.rollback().await?;
            return Ok(None);
        };
        sqlx::query("UPDATE accounts SET password_hash = $1, email_verified_at = COALESCE(email_verified_at, $2) WHERE id = $3")
            .bind(password_hash)
            .bind(now)
            .bind(&account_id)
            .execute(&mut *tx)
            .await?;
        for delete in ["DELETE FROM web_sessions WHERE account_id = $1", "DELETE FROM sign_in_challenges WHERE account_id = $1"] {
            sqlx::query(delete).bind(&account_id).execute(&mut *tx).await?;
        }
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(&account_id)
            .execute(&mut *tx)
            .await?;
        let revoked_access_tokens = sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(&account_id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        tx.commit().await?;
        Ok(Some(PasswordReset { account_id, revoked_access_tokens }))
    }

    /// Marks an unused, unexpired email token used; returns its account.
    pub async fn use_email_token(&self, token_hash: &str, purpose: &str) -> Result<Option<String>, DbError> {
        let now = self.clock.now_ms();
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
            .bind(self.clock.now_ms())
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
        Ok(sqlx::query_scalar::<Any, String>("SELECT id FROM accounts WHERE email = $1").bind(email).fetch_optional(&self.read).await?)
    }

    // ---- outbox ------------------------------------------------------------------------

    pub async fn enqueue_mail(&self, id: &str, recipient: &str, subject: &str, body: &str) -> Result<(), DbError> {
        let mut tx = self.begin_write().await?;
        enqueue_mail_in(&mut tx, self.clock.now_ms(), &Mail { id, recipient, subject, body }).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Claims up to `limit` due messages for `sender` until `lease_until`, in one statement:
    /// a message whose lease is held is not due, so two senders (replicas) never hold the
    /// same message. A sender that dies lets its lease run out and another takes over.
    pub async fn claim_mail(&self, sender: &str, lease_until: i64, limit: i64) -> Result<Vec<OutboxMessage>, DbError> {
        // The conditions are repeated outside the subquery: on PostgreSQL a claimant that
        // waited for a row another one was claiming re-checks them against the claimed row
        // and skips it.
        Ok(sqlx::query_as::<Any, OutboxMessage>(
            "UPDATE outbox SET claimed_until = $1, claimed_by = $2
             WHERE id IN (SELECT id FROM outbox WHERE sent_at IS NULL AND next_attempt_at <= $3 AND claimed_until <= $3
                          ORDER BY next_attempt_at, id LIMIT $4)
               AND sent_at IS NULL AND claimed_until <= $3
             RETURNING id, recipient, subject, body, attempts",
        )
        .bind(lease_until)
        .bind(sender)
        .bind(self.clock.now_ms())
        .bind(limit)
        .fetch_all(&self.write)
        .await?)
    }

    /// Records `sender`'s delivery attempt of a message it claimed: sent (the body, which
    /// may hold a code, is dropped; recipient and subject stay for the record), or failed
    /// and due again at `retry_at`. Either way the claim ends. False if the claim was lost
    /// (its lease ran out and another sender took the message).
    pub async fn mail_attempted(&self, id: &str, sender: &str, error: Option<&str>, retry_at: i64) -> Result<bool, DbError> {
        let query = match error {
            None => sqlx::query(
                "UPDATE outbox SET sent_at = $1, body = '', last_error = NULL, attempts = attempts + 1, claimed_until = 0, claimed_by = NULL
                 WHERE id = $2 AND claimed_by = $3",
            )
            .bind(self.clock.now_ms()),
            Some(e) => sqlx::query(
                "UPDATE outbox SET last_error = $1, next_attempt_at = $2, attempts = attempts + 1, claimed_until = 0, claimed_by = NULL
                 WHERE id = $3 AND claimed_by = $4",
            )
            .bind(e)
            .bind(retry_at),
        };
        let n = query.bind(id).bind(sender).execute(&self.write).await?.rows_affected();
        Ok(n > 0)
    }

    // ---- request windows ---------------------------------------------------------------

    /// Counts a request under `key` and returns the requests counted in the key's current
    /// window, this one included; a window that started at or before `window_start` has
    /// ended, and a new one starts now. One statement, so concurrent requests each count.
    pub async fn count_request(&self, key: &str, window_start: i64) -> Result<i64, DbError> {
        Ok(sqlx::query_scalar::<Any, i64>(
            "INSERT INTO request_windows (key, hits, window_start) VALUES ($1, 1, $2)
             ON CONFLICT (key) DO UPDATE SET
               hits = CASE WHEN request_windows.window_start > $3 THEN request_windows.hits + 1 ELSE 1 END,
               window_start = CASE WHEN request_windows.window_start > $3 THEN request_windows.window_start ELSE $2 END
             RETURNING hits",
        )
        .bind(key)
        .bind(self.clock.now_ms())
        .bind(window_start)
        .fetch_one(&self.write)
        .await?)
    }

    /// Forgets windows that started at or before `before` (they have ended).
    pub async fn forget_request_windows(&self, before: i64) -> Result<u64, DbError> {
        Ok(sqlx::query("DELETE FROM request_windows WHERE window_start <= $1").bind(before).execute(&self.write).await?.rows_affected())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use crate::{DbError, IdentityDb, NewAccessToken, NewAccount, NewSession, now_ms, test_databases};

    const MINUTE: i64 = 60_000;

    async fn body_of(db: &IdentityDb, id: &str) -> (String, String, String) {
        sqlx::query_as::<sqlx::Any, (String, String, String)>("SELECT recipient, subject, body FROM outbox WHERE id = $1")
            .bind(id)
            .fetch_one(&db.read)
            .await
            .unwrap()
    }

    /// Issue 14 item 21: the outbox was read without a claim (`due_mail`), so two
    /// replicas' mailers sent the same messages. Concurrent senders now never hold the same
    /// message, and between them send each once.
    #[tokio::test]
    async fn concurrent_senders_never_claim_the_same_message() {
        for (db, _dir) in test_databases().await {
            let db = db.identity();
            let all: BTreeSet<String> = (0..120).map(|i| format!("m{i:03}")).collect();
            for id in &all {
                db.enqueue_mail(id, "to@example.com", "subject", "body").await.unwrap();
            }
            let senders = (0..4).map(|s| {
                let db = db.clone();
                tokio::spawn(async move {
                    let sender = format!("sender{s}");
                    let mut got = Vec::new();
                    loop {
                        let claimed = db.claim_mail(&sender, now_ms() + MINUTE, 7).await.unwrap();
                        if claimed.is_empty() {
                            return got;
                        }
                        for message in claimed {
                            assert!(db.mail_attempted(&message.id, &sender, None, 0).await.unwrap(), "the claim holds");
                            got.push(message.id);
                        }
                    }
                })
            });
            let mut seen = BTreeSet::new();
            for sender in senders.collect::<Vec<_>>() {
                for id in sender.await.unwrap() {
                    assert!(seen.insert(id.clone()), "{id} was claimed twice");
                }
            }
            assert_eq!(seen, all);
            assert!(db.claim_mail("late", now_ms() + MINUTE, 10).await.unwrap().is_empty(), "sent mail is not due");
        }
    }

    #[tokio::test]
    async fn a_lapsed_mail_lease_passes_to_another_sender() {
        for (db, _dir) in test_databases().await {
            let db = db.identity();
            db.enqueue_mail("m", "to@example.com", "subject", "body").await.unwrap();
            assert_eq!(db.claim_mail("a", now_ms() + MINUTE, 10).await.unwrap().len(), 1);
            assert!(db.claim_mail("b", now_ms() + MINUTE, 10).await.unwrap().is_empty(), "held by a");
            // a fails; due again at once, and b takes it.
            assert!(db.mail_attempted("m", "a", Some("refused"), now_ms() - 1).await.unwrap());
            let again = db.claim_mail("b", now_ms() - 1, 10).await.unwrap();
            assert_eq!((again.len(), again[0].attempts), (1, 1));
            // b's lease has already lapsed: c takes over, and b can no longer record.
            assert_eq!(db.claim_mail("c", now_ms() + MINUTE, 10).await.unwrap().len(), 1);
            assert!(!db.mail_attempted("m", "b", None, 0).await.unwrap());
            assert!(db.mail_attempted("m", "c", None, 0).await.unwrap());
        }
    }

    /// Issue 14 item 18: sent mail kept its body, and with it reset and invitation codes
    /// in plain text. Once sent, only recipient and subject remain; a failed attempt keeps
    /// the body for the retry.
    #[tokio::test]
    async fn sent_mail_keeps_no_body() {
        for (db, _dir) in test_databases().await {
            let db = db.identity();
            db.enqueue_mail("m", "to@example.com", "Reset your password", "code 1234").await.unwrap();
            db.claim_mail("s", now_ms() + MINUTE, 10).await.unwrap();
            db.mail_attempted("m", "s", Some("down"), now_ms() - 1).await.unwrap();
            assert_eq!(body_of(&db, "m").await.2, "code 1234");
            db.claim_mail("s", now_ms() + MINUTE, 10).await.unwrap();
            db.mail_attempted("m", "s", None, 0).await.unwrap();
            assert_eq!(body_of(&db, "m").await, ("to@example.com".into(), "Reset your password".into(), String::new()));
        }
    }

    async fn person(db: &IdentityDb, id: &str) {
        let account = NewAccount {
            id,
            name: id,
            email: Some(&format!("{id}@example.com")),
            password_hash: Some("old"),
            site_role: "user",
            kind: "person",
            robot_org: None,
            email_verified: false,
        };
        db.create_account(&account).await.unwrap();
    }

    fn session<'a>(id_hash: &'a str, account_id: &'a str, user_agent: &'a str) -> NewSession<'a> {
        NewSession { id_hash, account_id, csrf: "csrf", expires_at: now_ms() + MINUTE, user_agent, client: "192.0.2.1" }
    }

    /// Issue 18: the sessions list and "sign out every other session" (with a new password
    /// in the same transaction), on both databases.
    #[tokio::test]
    async fn sessions_are_listed_and_the_others_signed_out() {
        for (db, _dir) in test_databases().await {
            let db = db.identity();
            person(&db, "u1").await;
            person(&db, "u2").await;
            for (id, account, agent) in [("s1", "u1", "laptop"), ("s2", "u1", "phone"), ("s3", "u2", "other")] {
                db.create_session(&session(id, account, agent)).await.unwrap();
            }
            db.create_session(&NewSession { expires_at: now_ms() - 1, ..session("old", "u1", "expired") }).await.unwrap();
            db.create_refresh_token("r1", "u1", None, now_ms() + MINUTE).await.unwrap();
            let listed: BTreeSet<(String, String)> =
                db.sessions_of("u1").await.unwrap().into_iter().map(|s| (s.id_hash, s.user_agent)).collect();
            assert_eq!(listed, [("s1".into(), "laptop".into()), ("s2".into(), "phone".into())].into_iter().collect());
            assert_eq!(db.sign_out_others("u1", "s1", Some("new hash")).await.unwrap(), 2, "the phone's and the expired one");
            assert!(db.session("s1").await.unwrap().is_some() && db.session("s2").await.unwrap().is_none());
            assert!(db.session("s3").await.unwrap().is_some(), "another account's session stays");
            assert!(db.refresh_token("r1").await.unwrap().unwrap().revoked_at.is_some());
            assert_eq!(db.account_by_id("u1").await.unwrap().unwrap().password_hash.as_deref(), Some("new hash"));
        }
    }

    /// An email change: only the newest link works, once; the address it names becomes the
    /// account's, verified; an address taken since is a conflict and changes nothing.
    #[tokio::test]
    async fn an_email_change_link_moves_the_address_once() {
        for (db, _dir) in test_databases().await {
            let db = db.identity();
            person(&db, "u1").await;
            person(&db, "u2").await;
            db.issue_email_change("first", "u1", "first@example.com", now_ms() + MINUTE).await.unwrap();
            db.issue_email_change("second", "u1", "new@example.com", now_ms() + MINUTE).await.unwrap();
            assert_eq!(db.change_email("first").await.unwrap(), None, "replaced by the newer link");
            let (account, old, new) = db.change_email("second").await.unwrap().unwrap();
            assert_eq!((account.as_str(), old.as_deref(), new.as_str()), ("u1", Some("u1@example.com"), "new@example.com"));
            let u1 = db.account_by_id("u1").await.unwrap().unwrap();
            assert_eq!((u1.email.as_deref(), u1.email_verified_at.is_some()), (Some("new@example.com"), true));
            assert_eq!(db.change_email("second").await.unwrap(), None, "once");

            db.issue_email_change("taken", "u2", "new@example.com", now_ms() + MINUTE).await.unwrap();
            assert!(matches!(db.change_email("taken").await, Err(DbError::Conflict(_))));
            assert_eq!(db.account_by_id("u2").await.unwrap().unwrap().email.as_deref(), Some("u2@example.com"));
            db.issue_email_change("late", "u2", "late@example.com", now_ms() - 1).await.unwrap();
            assert_eq!(db.change_email("late").await.unwrap(), None, "expired");
        }
    }

    /// Issue 14 item 13: every reset request queued a new code and mail. While a code
    /// issued recently is live, no new one is issued; an older one is replaced (only the
    /// newest code works), also when requests race.
    #[tokio::test]
    async fn a_recent_live_code_is_kept_and_an_older_one_replaced() {
        for (db, _dir) in test_databases().await {
            let db = db.identity();
            person(&db, "u1").await;
            let recent = || now_ms() - 15 * MINUTE;
            let racing = (0..8).map(|i| {
                let db = db.clone();
                tokio::spawn(async move {
                    db.issue_email_token(&format!("h{i}"), "u1", "reset", now_ms() + 60 * MINUTE, now_ms() - 15 * MINUTE).await.unwrap()
                })
            });
            let mut issued = 0;
            for r in racing.collect::<Vec<_>>() {
                issued += usize::from(r.await.unwrap());
            }
            assert_eq!(issued, 1, "racing requests issue one code");
            assert!(!db.issue_email_token("again", "u1", "reset", now_ms() + 60 * MINUTE, recent()).await.unwrap());
            // Another purpose has its own token.
            assert!(db.issue_email_token("v", "u1", "verify", now_ms() + 60 * MINUTE, recent()).await.unwrap());
            // Counted as old (issued before now): replaced, and the replaced code is dead.
            let live = sqlx::query_scalar::<sqlx::Any, String>(
                "SELECT token_hash FROM email_tokens WHERE account_id = 'u1' AND purpose = 'reset'",
            )
            .fetch_one(&db.read)
            .await
            .unwrap();
            assert!(db.issue_email_token("newer", "u1", "reset", now_ms() + 60 * MINUTE, now_ms()).await.unwrap());
            assert_eq!(db.email_token_account(&live, "reset").await.unwrap(), None);
            assert_eq!(db.email_token_account("newer", "reset").await.unwrap().as_deref(), Some("u1"));
            // Once used, a new one is issued at once.
            assert_eq!(db.use_email_token("newer", "reset").await.unwrap().as_deref(), Some("u1"));
            assert!(db.issue_email_token("after use", "u1", "reset", now_ms() + 60 * MINUTE, recent()).await.unwrap());
            // An expired one is replaced however recent.
            person(&db, "u2").await;
            assert!(db.issue_email_token("expired", "u2", "reset", now_ms() - 1, recent()).await.unwrap());
            assert!(db.issue_email_token("fresh", "u2", "reset", now_ms() + MINUTE, recent()).await.unwrap());
        }
    }

    /// Issue 14 item 17: access tokens survived a password reset. The reset revokes the
    /// account's own access tokens (not another account's, such as a robot's), its refresh
    /// tokens and sessions, in the transaction that sets the password.
    #[tokio::test]
    async fn a_password_reset_revokes_the_accounts_tokens_with_the_password_change() {
        for (db, _dir) in test_databases().await {
            let db = db.identity();
            person(&db, "u1").await;
            person(&db, "robot").await;
            for (id, account) in [("t1", "u1"), ("t2", "u1"), ("t3", "robot")] {
                let token = NewAccessToken { id, account_id: account, name: id, token_hash: id, scopes: "[]", expires_at: None };
                db.create_access_token(&token).await.unwrap();
            }
            db.revoke_access_token("t2").await.unwrap();
            let session =
                NewSession { id_hash: "s1", account_id: "u1", csrf: "csrf", expires_at: now_ms() + MINUTE, user_agent: "", client: "" };
            db.create_session(&session).await.unwrap();
            db.create_refresh_token("r1", "u1", None, now_ms() + MINUTE).await.unwrap();
            db.create_email_token("code", "u1", "reset", now_ms() + MINUTE).await.unwrap();

            assert_eq!(db.reset_password("wrong", "new").await.unwrap(), None);
            let done = db.reset_password("code", "new").await.unwrap().unwrap();
            assert_eq!((done.account_id.as_str(), done.revoked_access_tokens), ("u1", 1));
            assert!(db.access_token("t1").await.unwrap().unwrap().revoked_at.is_some());
            assert!(db.access_token("t3").await.unwrap().unwrap().revoked_at.is_none(), "other accounts keep theirs");
            assert!(db.session("s1").await.unwrap().is_none());
            assert!(db.refresh_token("r1").await.unwrap().unwrap().revoked_at.is_some());
            let account = db.account_by_id("u1").await.unwrap().unwrap();
            assert_eq!(account.password_hash.as_deref(), Some("new"));
            assert!(account.email_verified_at.is_some());
            assert_eq!(db.reset_password("code", "newer").await.unwrap(), None, "single use");
        }
    }

    #[tokio::test]
    async fn request_windows_count_until_they_end() {
        for (db, _dir) in test_databases().await {
            let db = db.identity();
            let window = || now_ms() - MINUTE;
            assert_eq!(db.count_request("k", window()).await.unwrap(), 1);
            assert_eq!(db.count_request("k", window()).await.unwrap(), 2);
            assert_eq!(db.count_request("other", window()).await.unwrap(), 1);
            // Seen from a window that ended already: counting starts again.
            assert_eq!(db.count_request("k", now_ms() + 1).await.unwrap(), 1);
            assert_eq!(db.forget_request_windows(now_ms() + 1).await.unwrap(), 2);
            assert_eq!(db.count_request("k", window()).await.unwrap(), 1);
        }
    }
}

/// A message for the outbox.
#[derive(Clone, Copy, Debug)]
pub struct Mail<'a> {
    pub id: &'a str,
    pub recipient: &'a str,
    pub subject: &'a str,
    pub body: &'a str,
}

/// Queues `mail` inside `tx`, a write transaction the caller began: for a change whose
/// message must go out if and only if the change is committed (an order's invitation, a
/// price change's notice).
pub(crate) async fn enqueue_mail_in(tx: &mut sqlx::Transaction<'static, Any>, now: i64, mail: &Mail<'_>) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO outbox (id, recipient, subject, body, created_at, next_attempt_at, attempts) VALUES ($1, $2, $3, $4, $5, $5, 0)",
    )
    .bind(mail.id)
    .bind(mail.recipient)
    .bind(mail.subject)
    .bind(mail.body)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Stores a web session (on the pool, or in the transaction that turns a waiting
/// two-factor sign-in into one).
pub(crate) async fn insert_session<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    session: &NewSession<'_>,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO web_sessions (id_hash, account_id, csrf, created_at, expires_at, user_agent, client)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(session.id_hash)
    .bind(session.account_id)
    .bind(session.csrf)
    .bind(now)
    .bind(session.expires_at)
    .bind(session.user_agent)
    .bind(session.client)
    .execute(executor)
    .await?;
    Ok(())
}

//! Queries behind accounts, organizations, tokens and access decisions.

use sqlx::Any;

use crate::{DbError, IdentityDb};

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccountRecord {
    pub id: String,
    pub name: String,
    pub email: Option<String>,
    pub password_hash: Option<String>,
    pub site_role: String,
    pub kind: String,
    pub robot_org: Option<String>,
    pub email_verified_at: Option<i64>,
    pub disabled_at: Option<i64>,
}

/// A new account; `password_hash` is already hashed by the caller.
pub struct NewAccount<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub email: Option<&'a str>,
    pub password_hash: Option<&'a str>,
    pub site_role: &'a str,
    pub kind: &'a str,
    pub robot_org: Option<&'a str>,
    /// Accounts made by an administrator start verified; sign-ups verify by email.
    pub email_verified: bool,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AccessTokenRecord {
    pub id: String,
    pub account_id: String,
    pub name: String,
    pub scopes: String,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

pub struct NewAccessToken<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub name: &'a str,
    pub token_hash: &'a str,
    pub scopes: &'a str,
    pub expires_at: Option<i64>,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct RefreshTokenRecord {
    pub account_id: String,
    pub access_token_id: Option<String>,
    pub expires_at: i64,
    pub revoked_at: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct PolicyRecord {
    pub access: String,
    pub tier: Option<String>,
}

const ACCOUNT_COLUMNS: &str = "id, name, email, password_hash, site_role, kind, robot_org, email_verified_at, disabled_at";

/// Locks an organization's row for the rest of the transaction (a no-op update: a row lock
/// on PostgreSQL; SQLite's write transaction holds the database anyway), so membership
/// checks and changes in it see no concurrent change.
async fn lock_organization(tx: &mut sqlx::Transaction<'static, Any>, org: &str) -> Result<(), DbError> {
    sqlx::query("UPDATE organizations SET created_at = created_at WHERE name = $1").bind(org).execute(&mut **tx).await?;
    Ok(())
}

async fn owners(tx: &mut sqlx::Transaction<'static, Any>, org: &str) -> Result<i64, DbError> {
    Ok(sqlx::query_scalar::<Any, i64>("SELECT COUNT(*) FROM memberships WHERE org = $1 AND role = 'owner'")
        .bind(org)
        .fetch_one(&mut **tx)
        .await?)
}

pub(crate) fn unique_violation(e: sqlx::Error, what: String) -> DbError {
    match &e {
        sqlx::Error::Database(d) if d.is_unique_violation() => DbError::Conflict(what),
        _ => e.into(),
    }
}

impl IdentityDb {
    // ---- accounts and organizations ----------------------------------------------------

    pub async fn create_account(&self, a: &NewAccount<'_>) -> Result<(), DbError> {
        insert_account(&self.write, a, self.clock.now_ms()).await
    }

    /// The verified addresses of the store's moderators and administrators who can sign
    /// in, at most `limit`: who hears of submissions.
    pub async fn staff_emails(&self, limit: i64) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar(
            "SELECT email FROM accounts WHERE site_role IN ('moderator', 'admin') AND disabled_at IS NULL
                 AND email_verified_at IS NOT NULL AND email <> '' ORDER BY email LIMIT $1",
        )
        .bind(limit)
        .fetch_all(&self.read)
        .await?)
    }

    pub async fn account_by_name(&self, name: &str) -> Result<Option<AccountRecord>, DbError> {
        Ok(sqlx::query_as::<Any, AccountRecord>(sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE name = $1")))
            .bind(name)
            .fetch_optional(&self.read)
            .await?)
    }

    pub async fn account_by_id(&self, id: &str) -> Result<Option<AccountRecord>, DbError> {
        Ok(sqlx::query_as::<Any, AccountRecord>(sqlx::AssertSqlSafe(format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE id = $1")))
            .bind(id)
            .fetch_optional(&self.read)
            .await?)
    }

    pub async fn create_organization(&self, name: &str) -> Result<(), DbError> {
        sqlx::query("INSERT INTO organizations (name, created_at) VALUES ($1, $2)")
            .bind(name)
            .bind(self.clock.now_ms())
            .execute(&self.write)
            .await
            .map_err(|e| unique_violation(e, format!("organization {name:?} already exists")))?;
        Ok(())
    }

    pub async fn organization_exists(&self, name: &str) -> Result<bool, DbError> {
        Ok(sqlx::query("SELECT 1 FROM organizations WHERE name = $1").bind(name).fetch_optional(&self.read).await?.is_some())
    }

    /// Adds a member or changes their role.
    pub async fn set_membership(&self, org: &str, account_id: &str, role: &str) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO memberships (org, account_id, role, created_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (org, account_id) DO UPDATE SET role = excluded.role",
        )
        .bind(org)
        .bind(account_id)
        .bind(role)
        .bind(self.clock.now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Gives a member another role (`Some`) or removes them (`None`), keeping at least one
    /// owner: a change that would leave none is a Conflict and changes nothing (it is made,
    /// counted and rolled back, so no role is compared outside the policy). The
    /// organization's row is locked first, so two owners removing each other at once
    /// cannot both succeed. False if the account is not a member.
    pub async fn change_membership(&self, org: &str, account_id: &str, role: Option<&str>) -> Result<bool, DbError> {
        let mut tx = self.begin_write().await?;
        lock_organization(&mut tx, org).await?;
        let query = match role {
            Some(role) => {
                sqlx::query("UPDATE memberships SET role = $3 WHERE org = $1 AND account_id = $2").bind(org).bind(account_id).bind(role)
            }
            None => sqlx::query("DELETE FROM memberships WHERE org = $1 AND account_id = $2").bind(org).bind(account_id),
        };
        if query.execute(&mut *tx).await?.rows_affected() == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if owners(&mut tx, org).await? == 0 {
            tx.rollback().await?;
            return Err(DbError::Conflict(format!("{org} keeps at least one owner")));
        }
        tx.commit().await?;
        Ok(true)
    }

    /// Deletes a robot account of `org` in one transaction: its membership ends (the
    /// organization keeps an owner), the account is disabled and its tokens revoked; its
    /// name stays taken. False, and nothing changed, when it is not a robot of `org`.
    pub async fn delete_robot(&self, org: &str, account_id: &str) -> Result<bool, DbError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        lock_organization(&mut tx, org).await?;
        let removed = sqlx::query(
            "DELETE FROM memberships WHERE org = $1 AND account_id = $2
               AND account_id IN (SELECT id FROM accounts WHERE kind = 'robot' AND robot_org = $1 AND disabled_at IS NULL)",
        )
        .bind(org)
        .bind(account_id)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if removed == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        if owners(&mut tx, org).await? == 0 {
            tx.rollback().await?;
            return Err(DbError::Conflict(format!("{org} keeps at least one owner")));
        }
        sqlx::query("UPDATE accounts SET disabled_at = $1 WHERE id = $2").bind(now).bind(account_id).execute(&mut *tx).await?;
        revoke_tokens(&mut tx, account_id, now).await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Makes `to` (a member) an owner and `from` (an owner) a maintainer, in one
    /// transaction. False, and nothing changed, if either is not what it must be.
    pub async fn transfer_ownership(&self, org: &str, from: &str, to: &str) -> Result<bool, DbError> {
        if from == to {
            return Ok(false);
        }
        let mut tx = self.begin_write().await?;
        lock_organization(&mut tx, org).await?;
        let raised = sqlx::query("UPDATE memberships SET role = 'owner' WHERE org = $1 AND account_id = $2")
            .bind(org)
            .bind(to)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        let stepped_down = sqlx::query("UPDATE memberships SET role = 'maintainer' WHERE org = $1 AND account_id = $2 AND role = 'owner'")
            .bind(org)
            .bind(from)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        if raised == 0 || stepped_down == 0 {
            tx.rollback().await?;
            return Ok(false);
        }
        tx.commit().await?;
        Ok(true)
    }

    /// (organization, role) for every organization the account belongs to.
    pub async fn memberships(&self, account_id: &str) -> Result<Vec<(String, String)>, DbError> {
        Ok(sqlx::query_as::<Any, (String, String)>("SELECT org, role FROM memberships WHERE account_id = $1 ORDER BY org")
            .bind(account_id)
            .fetch_all(&self.read)
            .await?)
    }

    // ---- access and refresh tokens -----------------------------------------------------

    pub async fn create_access_token(&self, t: &NewAccessToken<'_>) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO access_tokens (id, account_id, name, token_hash, scopes, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(t.id)
        .bind(t.account_id)
        .bind(t.name)
        .bind(t.token_hash)
        .bind(t.scopes)
        .bind(self.clock.now_ms())
        .bind(t.expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn access_token_by_hash(&self, token_hash: &str) -> Result<Option<AccessTokenRecord>, DbError> {
        Ok(sqlx::query_as::<Any, AccessTokenRecord>(
            "SELECT id, account_id, name, scopes, created_at, expires_at, last_used_at, revoked_at
             FROM access_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?)
    }

    pub async fn access_token(&self, id: &str) -> Result<Option<AccessTokenRecord>, DbError> {
        Ok(sqlx::query_as::<Any, AccessTokenRecord>(
            "SELECT id, account_id, name, scopes, created_at, expires_at, last_used_at, revoked_at
             FROM access_tokens WHERE id = $1",
        )
        .bind(id)
        .fetch_optional(&self.read)
        .await?)
    }

    pub async fn access_tokens_of(&self, account_id: &str) -> Result<Vec<AccessTokenRecord>, DbError> {
        Ok(sqlx::query_as::<Any, AccessTokenRecord>(
            "SELECT id, account_id, name, scopes, created_at, expires_at, last_used_at, revoked_at
             FROM access_tokens WHERE account_id = $1 ORDER BY created_at, id",
        )
        .bind(account_id)
        .fetch_all(&self.read)
        .await?)
    }

    /// Records use, at most once a minute per token so logins do not turn into writes.
    pub async fn touch_access_token(&self, id: &str) -> Result<(), DbError> {
        let now = self.clock.now_ms();
        sqlx::query("UPDATE access_tokens SET last_used_at = $1 WHERE id = $2 AND (last_used_at IS NULL OR last_used_at < $3)")
            .bind(now)
            .bind(id)
            .bind(now - 60_000)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Revokes an access token and every refresh token minted from it.
    pub async fn revoke_access_token(&self, id: &str) -> Result<bool, DbError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        let n = sqlx::query("UPDATE access_tokens SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("UPDATE refresh_tokens SET revoked_at = $1 WHERE access_token_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(n > 0)
    }

    pub async fn create_refresh_token(
        &self,
        token_hash: &str,
        account_id: &str,
        access_token_id: Option<&str>,
        expires_at: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO refresh_tokens (token_hash, account_id, access_token_id, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(account_id)
        .bind(access_token_id)
        .bind(self.clock.now_ms())
        .bind(expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn refresh_token(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>, DbError> {
        Ok(sqlx::query_as::<Any, RefreshTokenRecord>(
            "SELECT account_id, access_token_id, expires_at, revoked_at FROM refresh_tokens WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.read)
        .await?)
    }

    // ---- repository policies and entitlements ------------------------------------------

    pub async fn set_repository_policy(&self, repository: &str, access: &str, tier: Option<&str>) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO repository_policies (repository, access, tier, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (repository) DO UPDATE SET access = excluded.access, tier = excluded.tier, updated_at = excluded.updated_at",
        )
        .bind(repository)
        .bind(access)
        .bind(tier)
        .bind(self.clock.now_ms())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub async fn repository_policy(&self, repository: &str) -> Result<Option<PolicyRecord>, DbError> {
        Ok(sqlx::query_as::<Any, PolicyRecord>("SELECT access, tier FROM repository_policies WHERE repository = $1")
            .bind(repository)
            .fetch_optional(&self.read)
            .await?)
    }

    /// Whether `repository` backs a tier of a listing in the store: its pulls by customers
    /// are limited to released versions.
    pub async fn is_listed_repository(&self, repository: &str) -> Result<bool, DbError> {
        let found: Option<i64> = sqlx::query_scalar(
            "SELECT 1 FROM tiers t JOIN listings l ON l.id = t.listing_id
             WHERE t.repository = $1 AND l.status IN ('published', 'on_hold') LIMIT 1",
        )
        .bind(repository)
        .fetch_optional(&self.read)
        .await?;
        Ok(found.is_some())
    }

    /// The digest tag `tag` of `repository` was released with, if it was.
    pub async fn released_tag(&self, repository: &str, tag: &str) -> Result<Option<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT digest FROM released_tags WHERE repository = $1 AND tag = $2")
            .bind(repository)
            .bind(tag)
            .fetch_optional(&self.read)
            .await?)
    }

    /// The released tags of `repository`, by name.
    pub async fn released_tag_names(&self, repository: &str) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar("SELECT tag FROM released_tags WHERE repository = $1 ORDER BY tag")
            .bind(repository)
            .fetch_all(&self.read)
            .await?)
    }

    /// Whether a released version of `repository` references the manifest `digest`.
    pub async fn is_released_manifest(&self, repository: &str, digest: &str) -> Result<bool, DbError> {
        let found: Option<i64> = sqlx::query_scalar("SELECT 1 FROM released_manifests WHERE repository = $1 AND digest = $2")
            .bind(repository)
            .bind(digest)
            .fetch_optional(&self.read)
            .await?;
        Ok(found.is_some())
    }

    pub async fn grant_entitlement(
        &self,
        id: &str,
        account_id: &str,
        tier: &str,
        source: &str,
        expires_at: Option<i64>,
    ) -> Result<(), DbError> {
        sqlx::query("INSERT INTO entitlements (id, account_id, tier, source, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)")
            .bind(id)
            .bind(account_id)
            .bind(tier)
            .bind(source)
            .bind(self.clock.now_ms())
            .bind(expires_at)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Revokes every active entitlement of the account to the tier; returns how many.
    pub async fn revoke_entitlements(&self, account_id: &str, tier: &str) -> Result<u64, DbError> {
        let n = sqlx::query("UPDATE entitlements SET revoked_at = $1 WHERE account_id = $2 AND tier = $3 AND revoked_at IS NULL")
            .bind(self.clock.now_ms())
            .bind(account_id)
            .bind(tier)
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(n)
    }

    /// Tiers the account holds an unrevoked, unexpired entitlement to.
    pub async fn entitled_tiers(&self, account_id: &str) -> Result<Vec<String>, DbError> {
        Ok(sqlx::query_scalar::<Any, String>(
            "SELECT DISTINCT tier FROM entitlements
             WHERE account_id = $1 AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > $2) ORDER BY tier",
        )
        .bind(account_id)
        .bind(self.clock.now_ms())
        .fetch_all(&self.read)
        .await?)
    }
}

/// A pending invitation, as its recipient accepts it.
#[derive(Clone, Debug, sqlx::FromRow)]
pub struct InvitationRecord {
    pub org: String,
    pub email: String,
    pub role: String,
}

impl IdentityDb {
    pub async fn create_invitation(
        &self,
        token_hash: &str,
        org: &str,
        email: &str,
        role: &str,
        invited_by: &str,
        expires_at: i64,
    ) -> Result<(), DbError> {
        sqlx::query(
            "INSERT INTO invitations (token_hash, org, email, role, invited_by, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(token_hash)
        .bind(org)
        .bind(email)
        .bind(role)
        .bind(invited_by)
        .bind(self.clock.now_ms())
        .bind(expires_at)
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// A live (unused, unexpired) invitation, to check who may accept it.
    pub async fn live_invitation(&self, token_hash: &str) -> Result<Option<InvitationRecord>, DbError> {
        Ok(sqlx::query_as::<Any, InvitationRecord>(
            "SELECT org, email, role FROM invitations WHERE token_hash = $1 AND accepted_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(self.clock.now_ms())
        .fetch_optional(&self.read)
        .await?)
    }

    /// Accepts a live invitation sent to `email` (compared without case) on behalf of
    /// `account_id`: marks it used and adds the membership in one transaction. None if the
    /// invitation is unknown, used, expired or for another address; the address is part of
    /// the update so an invitation is never used up by an account it was not sent to.
    pub async fn accept_invitation(&self, token_hash: &str, account_id: &str, email: &str) -> Result<Option<InvitationRecord>, DbError> {
        let now = self.clock.now_ms();
        let mut tx = self.begin_write().await?;
        let invitation = sqlx::query_as::<Any, InvitationRecord>(
            "UPDATE invitations SET accepted_at = $1
             WHERE token_hash = $2 AND accepted_at IS NULL AND expires_at > $1 AND lower(email) = lower($3)
             RETURNING org, email, role",
        )
        .bind(now)
        .bind(token_hash)
        .bind(email)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(inv) = &invitation {
            sqlx::query(
                "INSERT INTO memberships (org, account_id, role, created_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (org, account_id) DO UPDATE SET role = excluded.role",
            )
            .bind(&inv.org)
            .bind(account_id)
            .bind(&inv.role)
            .bind(now)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(invitation)
    }

    /// Members of an organization: (account name, role).
    pub async fn members(&self, org: &str) -> Result<Vec<(String, String)>, DbError> {
        Ok(sqlx::query_as::<Any, (String, String)>(
            "SELECT a.name, m.role FROM memberships m JOIN accounts a ON a.id = m.account_id WHERE m.org = $1 ORDER BY a.name",
        )
        .bind(org)
        .fetch_all(&self.read)
        .await?)
    }
}

/// Stores a new account (on the pool, or in the transaction that links it to a single
/// sign-on identity).
pub(crate) async fn insert_account<'e, E: sqlx::Executor<'e, Database = Any>>(
    executor: E,
    a: &NewAccount<'_>,
    now: i64,
) -> Result<(), DbError> {
    sqlx::query(
        "INSERT INTO accounts (id, name, email, password_hash, site_role, kind, robot_org, created_at, email_verified_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(a.id)
    .bind(a.name)
    .bind(a.email)
    .bind(a.password_hash)
    .bind(a.site_role)
    .bind(a.kind)
    .bind(a.robot_org)
    .bind(now)
    .bind(a.email_verified.then_some(now))
    .execute(executor)
    .await
    .map_err(|e| unique_violation(e, format!("an account named {:?} or with that email already exists", a.name)))?;
    Ok(())
}

/// Revokes every access and refresh token of an account (it is deleted).
pub(crate) async fn revoke_tokens(tx: &mut sqlx::Transaction<'static, Any>, account_id: &str, now: i64) -> Result<(), DbError> {
    for revoke in [
        "UPDATE access_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL",
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE account_id = $2 AND revoked_at IS NULL",
    ] {
        sqlx::query(revoke).bind(now).bind(account_id).execute(&mut **tx).await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{DbError, IdentityDb, NewAccount, now_ms, test_databases};

    /// A verified person named `name` with the id `id`.
    async fn person(db: &IdentityDb, id: &str, name: &str, email: Option<&str>) {
        let account =
            NewAccount { id, name, email, password_hash: None, site_role: "user", kind: "person", robot_org: None, email_verified: true };
        db.create_account(&account).await.unwrap();
    }

    /// Issue 18: roles change, members leave or are removed, ownership moves, and an
    /// organization always keeps an owner, also when its two owners remove each other at
    /// once.
    #[tokio::test]
    async fn an_organization_keeps_an_owner() {
        for (db, _dir) in test_databases().await {
            let db = db.identity();
            for id in ["ann", "ben", "cat"] {
                person(&db, id, id, None).await;
            }
            db.create_organization("acme").await.unwrap();
            db.set_membership("acme", "ann", "owner").await.unwrap();
            db.set_membership("acme", "ben", "viewer").await.unwrap();
            let roles = || async { db.members("acme").await.unwrap() };
            assert!(matches!(db.change_membership("acme", "ann", Some("viewer")).await, Err(DbError::Conflict(_))), "the only owner");
            assert!(matches!(db.change_membership("acme", "ann", None).await, Err(DbError::Conflict(_))));
            assert!(!db.change_membership("acme", "cat", None).await.unwrap(), "not a member");
            assert!(db.change_membership("acme", "ben", Some("maintainer")).await.unwrap());
            assert!(!db.transfer_ownership("acme", "ben", "ann").await.unwrap(), "ben is no owner");
            assert!(!db.transfer_ownership("acme", "ann", "cat").await.unwrap(), "cat is no member");
            assert!(db.transfer_ownership("acme", "ann", "ben").await.unwrap());
            assert_eq!(roles().await, vec![("ann".to_owned(), "maintainer".to_owned()), ("ben".to_owned(), "owner".to_owned())]);
            assert!(db.change_membership("acme", "ann", None).await.unwrap(), "ann leaves");

            // Two owners removing each other at once: one wins, one owner remains.
            db.set_membership("acme", "cat", "owner").await.unwrap();
            let (a, b) = tokio::join!(db.change_membership("acme", "ben", None), db.change_membership("acme", "cat", None));
            let removed = [a, b].into_iter().filter(|r| matches!(r, Ok(true))).count();
            assert_eq!(removed, 1);
            assert_eq!(roles().await.iter().filter(|(_, role)| role == "owner").count(), 1);
        }
    }

    /// Issue 14 item 16: any account holding an invitation's code could accept it. The
    /// invited address is part of the acceptance, compared without case, and an attempt
    /// from another address leaves the invitation usable.
    #[tokio::test]
    async fn invitations_are_accepted_only_for_the_invited_address() {
        for (db, _dir) in test_databases().await {
            let db = db.identity();
            for (id, name) in [("a-founder", "founder"), ("a-bob", "bob"), ("a-mallory", "mallory")] {
                person(&db, id, name, Some(&format!("{name}@example.com"))).await;
            }
            db.create_organization("widgets").await.unwrap();
            db.create_invitation("code", "widgets", "Bob@Example.com", "maintainer", "a-founder", now_ms() + 60_000).await.unwrap();
            assert_eq!(db.live_invitation("code").await.unwrap().unwrap().email, "Bob@Example.com");
            assert!(db.accept_invitation("code", "a-mallory", "mallory@example.com").await.unwrap().is_none());
            assert!(db.memberships("a-mallory").await.unwrap().is_empty());
            assert!(db.live_invitation("code").await.unwrap().is_some(), "still usable by its addressee");
            let accepted = db.accept_invitation("code", "a-bob", "bob@EXAMPLE.com").await.unwrap().unwrap();
            assert_eq!((accepted.org.as_str(), accepted.role.as_str()), ("widgets", "maintainer"));
            assert_eq!(db.memberships("a-bob").await.unwrap(), vec![("widgets".to_owned(), "maintainer".to_owned())]);
            assert!(db.live_invitation("code").await.unwrap().is_none());
            assert!(db.accept_invitation("code", "a-bob", "bob@example.com").await.unwrap().is_none(), "single use");
            db.create_invitation("old", "widgets", "bob@example.com", "owner", "a-founder", now_ms() - 1).await.unwrap();
            assert!(db.live_invitation("old").await.unwrap().is_none(), "expired");
            assert!(db.accept_invitation("old", "a-bob", "bob@example.com").await.unwrap().is_none());
        }
    }
}

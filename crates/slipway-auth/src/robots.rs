//! Robot accounts: service accounts of an organization (`org+name`) for CI systems and
//! other automation, with a role like any member and access tokens only (no password, no
//! session). The organization's owners (and site administrators: the policy's
//! `ManageMembers`) add them, give them tokens, revoke those and delete them.

use slipway_db::{AccessTokenRecord, AccountRecord};

use crate::AuthError;
use crate::access::OrgRole;
use crate::scope::TokenRule;
use crate::service::AuthService;

/// A robot of an organization, its role there and its tokens (newest first).
#[derive(Clone, Debug)]
pub struct Robot {
    pub account: AccountRecord,
    pub role: String,
    pub tokens: Vec<AccessTokenRecord>,
}

impl AuthService {
    /// The organization's live robots with their tokens, for its owners.
    pub async fn robots(&self, actor: &AccountRecord, org: &str) -> Result<Vec<Robot>, AuthError> {
        self.ensure_owner(actor, org).await?;
        let prefix = format!("{org}+");
        let mut robots = Vec::new();
        for (name, role) in self.db().members(org).await?.into_iter().filter(|(name, _)| name.starts_with(&prefix)) {
            if let Some(account) = self.db().account_by_name(&name).await?.filter(|a| is_robot_of(a, org)) {
                let mut tokens = self.db().access_tokens_of(&account.id).await?;
                tokens.sort_by_key(|t| std::cmp::Reverse(t.created_at));
                robots.push(Robot { account, role, tokens });
            }
        }
        Ok(robots)
    }

    /// Adds a robot `org+name` with `role`.
    pub async fn add_robot(&self, actor: &AccountRecord, org: &str, name: &str, role: OrgRole) -> Result<AccountRecord, AuthError> {
        self.ensure_owner(actor, org).await?;
        self.create_robot(org, name, role).await
    }

    /// A new access token for a robot of `org`: the secret (shown once) and its record.
    pub async fn create_robot_token(
        &self,
        actor: &AccountRecord,
        org: &str,
        robot: &str,
        token_name: &str,
        rules: &[TokenRule],
        expires_in_days: Option<u32>,
    ) -> Result<(String, AccessTokenRecord), AuthError> {
        self.ensure_owner(actor, org).await?;
        let robot = self.robot_of(org, robot).await?;
        self.create_token(&robot.name, token_name, rules, expires_in_days).await
    }

    /// Revokes one of a robot's tokens; a token of anyone else is answered as missing.
    pub async fn revoke_robot_token(&self, actor: &AccountRecord, org: &str, robot: &str, id: &str) -> Result<(), AuthError> {
        self.ensure_owner(actor, org).await?;
        let robot = self.robot_of(org, robot).await?;
        match self.db().access_token(id).await? {
            Some(token) if token.account_id == robot.id => self.revoke_token(id).await,
            _ => Err(AuthError::NotFound(format!("{} has no token {id}", robot.name))),
        }
    }

    /// Deletes a robot: its membership ends, its tokens stop working, its name stays taken.
    pub async fn delete_robot(&self, actor: &AccountRecord, org: &str, robot: &str) -> Result<(), AuthError> {
        self.ensure_owner(actor, org).await?;
        let robot = self.robot_of(org, robot).await?;
        match self.db().delete_robot(org, &robot.id).await {
            Ok(true) => Ok(()),
            Ok(false) => Err(AuthError::NotFound(format!("{org} has no robot {}", robot.name))),
            Err(slipway_db::DbError::Conflict(_)) => {
                Err(AuthError::Invalid(format!("{org} must keep an owner: make another member owner first")))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// A live robot of `org`, named in full (`org+ci`) or by its own part (`ci`).
    async fn robot_of(&self, org: &str, name: &str) -> Result<AccountRecord, AuthError> {
        let full = if name.contains('+') { name.to_owned() } else { format!("{org}+{name}") };
        self.db()
            .account_by_name(&full)
            .await?
            .filter(|a| is_robot_of(a, org))
            .ok_or_else(|| AuthError::NotFound(format!("{org} has no robot {full}")))
    }
}

fn is_robot_of(account: &AccountRecord, org: &str) -> bool {
    account.kind == "robot" && account.robot_org.as_deref() == Some(org) && account.disabled_at.is_none()
}

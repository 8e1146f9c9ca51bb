//! Administration of accounts, organizations, tokens, repository policies and
//! entitlements: the operations behind `slipway admin ...` (and, later, the web pages).

use slipway_db::{AccessTokenRecord, AccountRecord, NewAccessToken, NewAccount};

use crate::access::{OrgRole, Policy, SiteRole};
use crate::scope::ScopeRule;
use crate::secrets::new_access_token;
use crate::service::AuthService;
use crate::AuthError;

const MIN_PASSWORD: usize = 8;

/// Account and organization names are namespaces, so they must be valid as the first
/// component of a repository name; `+` is kept for robots (`org+name`).
fn check_name(name: &str) -> Result<(), AuthError> {
    let valid = (2..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
        && name.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.bytes().last().is_some_and(|b| b.is_ascii_alphanumeric())
        && name.parse::<slipway_oci::RepoName>().is_ok();
    if valid {
        Ok(())
    } else {
        Err(AuthError::Invalid(format!(
            "{name:?} is not a valid name: 2-64 lowercase letters, digits and . _ - (starting and ending with a letter or digit)"
        )))
    }
}

pub(crate) fn check_password(password: &str) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD || password.len() > 1024 {
        return Err(AuthError::Invalid(format!("passwords need {MIN_PASSWORD} to 1024 characters")));
    }
    Ok(())
}

pub fn check_email(email: &str) -> Result<(), AuthError> {
    let ok = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if ok { Ok(()) } else { Err(AuthError::Invalid(format!("{email:?} is not an email address"))) }
}

fn millis_from_now(days: u32) -> i64 {
    slipway_db::now_ms() + i64::from(days) * 86_400_000
}

impl AuthService {
    async fn account_named(&self, name: &str) -> Result<AccountRecord, AuthError> {
        self.db().account_by_name(name).await?.ok_or_else(|| AuthError::NotFound(format!("no account named {name:?}")))
    }

    async fn name_free(&self, name: &str) -> Result<(), AuthError> {
        if self.db().account_by_name(name).await?.is_some() || self.db().organization_exists(name).await? {
            return Err(AuthError::Invalid(format!("the name {name:?} is taken")));
        }
        Ok(())
    }

    /// An account made by an administrator: its email address counts as verified.
    pub async fn create_user(&self, name: &str, email: &str, password: &str, role: SiteRole) -> Result<AccountRecord, AuthError> {
        self.create_person(name, email, password, role, true).await
    }

    pub(crate) async fn create_person(
        &self,
        name: &str,
        email: &str,
        password: &str,
        role: SiteRole,
        verified: bool,
    ) -> Result<AccountRecord, AuthError> {
        check_name(name)?;
        check_email(email)?;
        check_password(password)?;
        self.name_free(name).await?;
        let hash = self.hash_password(password).await?;
        let id = uuid::Uuid::new_v4().to_string();
        self.db()
            .create_account(&NewAccount {
                id: &id,
                name,
                email: Some(email),
                password_hash: Some(&hash),
                site_role: role.as_str(),
                kind: "person",
                robot_org: None,
                email_verified: verified,
            })
            .await?;
        self.account_named(name).await
    }

    pub async fn create_organization(&self, name: &str, owner: &str) -> Result<(), AuthError> {
        check_name(name)?;
        let owner = self.account_named(owner).await?;
        self.name_free(name).await?;
        self.db().create_organization(name).await?;
        self.db().set_membership(name, &owner.id, OrgRole::Owner.as_str()).await?;
        Ok(())
    }

    pub async fn set_member(&self, org: &str, account: &str, role: OrgRole) -> Result<(), AuthError> {
        if !self.db().organization_exists(org).await? {
            return Err(AuthError::NotFound(format!("no organization named {org:?}")));
        }
        let account = self.account_named(account).await?;
        self.db().set_membership(org, &account.id, role.as_str()).await?;
        Ok(())
    }

    /// A service account of `org`, named `org+name`, that signs in with access tokens only.
    pub async fn create_robot(&self, org: &str, name: &str, role: OrgRole) -> Result<AccountRecord, AuthError> {
        check_name(name)?;
        if !self.db().organization_exists(org).await? {
            return Err(AuthError::NotFound(format!("no organization named {org:?}")));
        }
        let full = format!("{org}+{name}");
        let id = uuid::Uuid::new_v4().to_string();
        self.db()
            .create_account(&NewAccount {
                id: &id,
                name: &full,
                email: None,
                password_hash: None,
                site_role: SiteRole::User.as_str(),
                kind: "robot",
                robot_org: Some(org),
                email_verified: false,
            })
            .await?;
        self.db().set_membership(org, &id, role.as_str()).await?;
        self.account_named(&full).await
    }

    /// Creates an access token for `account`; returns the secret (shown once) and its record.
    pub async fn create_token(
        &self,
        account: &str,
        name: &str,
        rules: &[ScopeRule],
        expires_in_days: Option<u32>,
    ) -> Result<(String, AccessTokenRecord), AuthError> {
        if name.trim().is_empty() || name.len() > 100 {
            return Err(AuthError::Invalid("a token needs a name of at most 100 characters".into()));
        }
        if rules.is_empty() {
            return Err(AuthError::Invalid("a token needs at least one scope, e.g. acme/*:pull,push".into()));
        }
        let account = self.account_named(account).await?;
        let (secret, hash) = new_access_token();
        let id = uuid::Uuid::new_v4().to_string();
        let scopes = serde_json::to_string(rules).map_err(|e| AuthError::Invalid(e.to_string()))?;
        self.db()
            .create_access_token(&NewAccessToken {
                id: &id,
                account_id: &account.id,
                name,
                token_hash: &hash,
                scopes: &scopes,
                expires_at: expires_in_days.map(millis_from_now),
            })
            .await?;
        let record = self.db().access_token(&id).await?.ok_or_else(|| AuthError::NotFound("token vanished".into()))?;
        Ok((secret, record))
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), AuthError> {
        if self.db().revoke_access_token(id).await? {
            Ok(())
        } else {
            Err(AuthError::NotFound(format!("no active token with id {id}")))
        }
    }

    pub async fn set_policy(&self, repository: &str, policy: &Policy) -> Result<(), AuthError> {
        repository
            .parse::<slipway_oci::RepoName>()
            .map_err(|e| AuthError::Invalid(e.to_string()))?;
        let (access, tier) = match policy {
            Policy::Staging => ("staging", None),
            Policy::Public => ("public", None),
            Policy::LoggedIn => ("logged_in", None),
            Policy::Licensed { tier } => ("licensed", Some(tier.as_str())),
        };
        Ok(self.db().set_repository_policy(repository, access, tier).await?)
    }

    pub async fn grant_entitlement(&self, account: &str, tier: &str, source: &str, expires_in_days: Option<u32>) -> Result<(), AuthError> {
        let account = self.account_named(account).await?;
        let id = uuid::Uuid::new_v4().to_string();
        Ok(self.db().grant_entitlement(&id, &account.id, tier, source, expires_in_days.map(millis_from_now)).await?)
    }

    pub async fn revoke_entitlement(&self, account: &str, tier: &str) -> Result<u64, AuthError> {
        let account = self.account_named(account).await?;
        Ok(self.db().revoke_entitlements(&account.id, tier).await?)
    }
}

const INVITATION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

impl AuthService {
    async fn role_in(&self, account: &AccountRecord, org: &str) -> Result<Option<OrgRole>, AuthError> {
        Ok(self.db().memberships(&account.id).await?.into_iter().find(|(o, _)| o == org).and_then(|(_, r)| OrgRole::parse(&r)))
    }

    /// Owners (and site administrators) manage an organization's members.
    async fn ensure_owner(&self, account: &AccountRecord, org: &str) -> Result<(), AuthError> {
        if !self.db().organization_exists(org).await? {
            return Err(AuthError::NotFound(format!("no organization named {org:?}")));
        }
        let admin = account.site_role == SiteRole::Admin.as_str();
        if admin || self.role_in(account, org).await? == Some(OrgRole::Owner) {
            Ok(())
        } else {
            Err(AuthError::Forbidden(format!("only owners of {org} can manage its members")))
        }
    }

    /// Mails an invitation to join `org` with `role`; the link's secret is shown only there.
    pub async fn invite(&self, inviter: &AccountRecord, org: &str, email: &str, role: OrgRole, base_url: &str) -> Result<(), AuthError> {
        check_email(email)?;
        self.ensure_owner(inviter, org).await?;
        let (secret, hash) = new_access_token();
        let expires = slipway_db::now_ms() + INVITATION_TTL_MS;
        self.db().create_invitation(&hash, org, email, role.as_str(), &inviter.id, expires).await?;
        let body = format!(
            "Hello,\n\n{} invites you to join the organization {org} on Slipway as {}.\n\nSign in at {} and accept with this code within 7 days:\n\n{secret}\n",
            inviter.name,
            role.as_str(),
            base_url.trim_end_matches('/')
        );
        crate::mail::enqueue(self.db(), email, &format!("Join {org} on Slipway"), &body).await
    }

    /// Adds `account` to the organization an invitation is for.
    pub async fn accept_invitation(&self, account: &AccountRecord, code: &str) -> Result<(String, OrgRole), AuthError> {
        let invitation = self
            .db()
            .accept_invitation(&crate::secrets::token_hash(code), &account.id)
            .await?
            .ok_or_else(|| AuthError::Invalid("this invitation is invalid, used or expired".into()))?;
        let role = OrgRole::parse(&invitation.role).unwrap_or(OrgRole::Viewer);
        Ok((invitation.org, role))
    }

    /// Members of `org`, for its members and site staff.
    pub async fn members(&self, viewer: &AccountRecord, org: &str) -> Result<Vec<(String, String)>, AuthError> {
        let staff = viewer.site_role != SiteRole::User.as_str();
        if !staff && self.role_in(viewer, org).await?.is_none() {
            return Err(AuthError::NotFound(format!("no organization named {org:?}")));
        }
        Ok(self.db().members(org).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_emails() {
        for ok in ["acme", "a1", "my-org", "x.y_z"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for bad in ["a", "Acme", "-acme", "acme-", "a/b", "a+b", "a:b", &"x".repeat(65)] {
            assert!(check_name(bad).is_err(), "{bad}");
        }
        assert!(check_email("dev@example.com").is_ok());
        for bad in ["dev", "@example.com", "dev@localhost", "a b@example.com"] {
            assert!(check_email(bad).is_err(), "{bad}");
        }
    }
}

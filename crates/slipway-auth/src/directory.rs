//! Administration of accounts, organizations, tokens, repository policies and
//! entitlements: the operations behind `slipway admin ...` (and, later, the web pages).

use slipway_db::{AccessTokenRecord, AccountRecord, DbError, NewAccessToken, NewAccount};
use slipway_policy::{Action, Actor, Refusal, Resource, decide};

use crate::AuthError;
use crate::access::{OrgRole, Policy, SiteRole};
use crate::scope::TokenRule;
use crate::secrets::{new_access_token, random_secret, token_hash};
use crate::service::AuthService;

const MIN_PASSWORD: usize = 8;

/// Account and organization names are namespaces, so they must be valid as the first
/// component of a repository name; `+` is kept for robots (`org+name`).
pub(crate) fn check_name(name: &str) -> Result<(), AuthError> {
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

/// Bytes at most: argon2 hashes the whole input, so this bounds the work per attempt.
const MAX_PASSWORD: usize = 1024;
/// Added digits or symbols that still leave a password "a common one" (`monkey12!`).
const MAX_AFFIX: usize = 4;

/// Passwords that are refused whatever else is true of them (NIST SP 800-63B 5.1.1.2).
static COMMON_PASSWORDS: std::sync::LazyLock<std::collections::HashSet<&'static str>> = std::sync::LazyLock::new(|| {
    include_str!("common_passwords.txt").lines().map(str::trim).filter(|l| !l.is_empty() && !l.starts_with('#')).collect()
});

/// A new password, per NIST SP 800-63B: a length (8 characters to 1024 bytes), no
/// composition rules, but refused when it is a commonly used password (or one with a few
/// digits or symbols added, or letters swapped for look-alikes), a run or repeat of one
/// character (`12345678`, `aaaaaaaa`), or built on the account's name or email address.
pub(crate) fn check_password(password: &str, name: &str, email: Option<&str>) -> Result<(), AuthError> {
    if password.chars().count() < MIN_PASSWORD || password.len() > MAX_PASSWORD {
        return Err(AuthError::Invalid(format!("passwords need {MIN_PASSWORD} characters to {MAX_PASSWORD} bytes")));
    }
    let lower = password.to_lowercase();
    if is_common(&lower) {
        return Err(AuthError::Invalid(
            "this password is one of the most commonly used (or a small variation of one): choose a less guessable one, for example a few unrelated words".into(),
        ));
    }
    // What is left once the name and address are taken out must stand as a password on its own.
    let mut context = vec![name.to_lowercase()];
    if let Some(email) = email {
        let email = email.to_lowercase();
        if let Some((local, domain)) = email.split_once('@') {
            context.extend([local.to_owned(), domain.to_owned()]);
        }
        context.push(email);
    }
    context.sort_by_key(|c| std::cmp::Reverse(c.len()));
    let mut rest = lower.clone();
    for word in context.iter().filter(|w| !w.is_empty()) {
        rest = rest.replace(word.as_str(), "");
    }
    if rest != lower && (rest.chars().count() < MIN_PASSWORD || is_common(&rest)) {
        return Err(AuthError::Invalid("a password must not be (or be built on) the account's name or email address".into()));
    }
    Ok(())
}

/// Whether a lowercase password is common: listed, listed once up to `MAX_AFFIX` digits,
/// symbols or spaces are trimmed from its ends, listed after undoing look-alike letters, or
/// a run or repeat of one character.
fn is_common(lower: &str) -> bool {
    let core = lower.trim_matches(|c: char| c.is_ascii_digit() || c.is_ascii_punctuation() || c.is_whitespace());
    let mut candidates = vec![lower];
    if !core.is_empty() && lower.chars().count() - core.chars().count() <= MAX_AFFIX {
        candidates.push(core);
    }
    candidates.iter().any(|c| {
        is_run(c) || COMMON_PASSWORDS.contains(c) || ['i', 'l'].iter().any(|&one| COMMON_PASSWORDS.contains(unleet(c, one).as_str()))
    })
}

/// Undoes the usual look-alike substitutions (`p@ssw0rd`); `1` stands for `one`.
fn unleet(text: &str, one: char) -> String {
    text.chars()
        .map(|c| match c {
            '@' | '4' => 'a',
            '3' => 'e',
            '0' => 'o',
            '$' | '5' => 's',
            '7' => 't',
            '1' | '!' => one,
            c => c,
        })
        .collect()
}

/// One character repeated, or a run up or down by one (`aaaa`, `12345678`, `hgfedcba`).
fn is_run(text: &str) -> bool {
    let chars: Vec<u32> = text.chars().map(u32::from).collect();
    if chars.len() < 4 {
        return false;
    }
    [0i64, 1, -1].iter().any(|&step| chars.windows(2).all(|w| i64::from(w[1]) - i64::from(w[0]) == step))
}

/// The longest expiry a token may be given: ten years. Longer says "never" in a way that
/// overflows nothing but misleads; no expiry is the honest way to ask for that.
pub const MAX_TOKEN_DAYS: u32 = 3650;
/// Token names are shown in lists and logs: printable text only.
const MAX_TOKEN_NAME: usize = 100;

fn check_token_name(name: &str) -> Result<(), AuthError> {
    if name.trim().is_empty() || name.chars().count() > MAX_TOKEN_NAME || name.chars().any(char::is_control) {
        return Err(AuthError::Invalid(format!("a token needs a name of 1 to {MAX_TOKEN_NAME} characters without control characters")));
    }
    Ok(())
}

pub fn check_email(email: &str) -> Result<(), AuthError> {
    let ok = email.len() <= 254
        && !email.chars().any(char::is_whitespace)
        && email.split_once('@').is_some_and(|(local, domain)| !local.is_empty() && domain.contains('.'));
    if ok { Ok(()) } else { Err(AuthError::Invalid(format!("{email:?} is not an email address"))) }
}

fn days_after(now_ms: i64, days: u32) -> i64 {
    now_ms + i64::from(days) * 86_400_000
}

impl AuthService {
    pub(crate) async fn account_named(&self, name: &str) -> Result<AccountRecord, AuthError> {
        self.db().account_by_name(name).await?.ok_or_else(|| AuthError::NotFound(format!("no account named {name:?}")))
    }

    async fn name_free(&self, name: &str) -> Result<(), AuthError> {
        if self.db().account_by_name(name).await?.is_some() || self.db().organization_exists(name).await? {
            return Err(AuthError::Conflict(format!("the name {name:?} is taken")));
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
        check_password(password, name, Some(email))?;
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

    pub async fn organization_exists(&self, name: &str) -> Result<bool, AuthError> {
        Ok(self.db().organization_exists(name).await?)
    }

    /// A single-use code for `purpose` that names `subject` (what the caller wants it to
    /// prove), live for `ttl_ms`; returns the secret to send. Only its hash is stored.
    pub async fn issue_code(&self, subject: &str, purpose: &str, ttl_ms: i64) -> Result<String, AuthError> {
        let secret = random_secret();
        self.db().create_email_token(&token_hash(&secret), subject, purpose, self.db().clock().now_ms() + ttl_ms).await?;
        Ok(secret)
    }

    /// Uses up a code of `purpose`: what it names, or None when it is unknown, used or
    /// expired.
    pub async fn use_code(&self, secret: &str, purpose: &str) -> Result<Option<String>, AuthError> {
        Ok(self.db().use_email_token(&token_hash(secret), purpose).await?)
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
        rules: &[TokenRule],
        expires_in_days: Option<u32>,
    ) -> Result<(String, AccessTokenRecord), AuthError> {
        check_token_name(name)?;
        crate::scope::check_new_rules(rules)?;
        if let Some(days) = expires_in_days.filter(|d| !(1..=MAX_TOKEN_DAYS).contains(d)) {
            return Err(AuthError::Invalid(format!(
                "a token expires in 1 to {MAX_TOKEN_DAYS} days (or never, when no expiry is given); {days} days is out of range"
            )));
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
                expires_at: expires_in_days.map(|days| days_after(self.db().clock().now_ms(), days)),
            })
            .await?;
        let record = self.db().access_token(&id).await?.ok_or_else(|| AuthError::NotFound("token vanished".into()))?;
        Ok((secret, record))
    }

    pub async fn revoke_token(&self, id: &str) -> Result<(), AuthError> {
        if self.db().revoke_access_token(id).await? { Ok(()) } else { Err(AuthError::NotFound(format!("no active token with id {id}"))) }
    }

    /// Revokes one of `account`'s own access tokens: another account's token is answered
    /// as missing, so its id reveals nothing.
    pub async fn revoke_own_token(&self, account: &AccountRecord, id: &str) -> Result<(), AuthError> {
        let Some(token) = self.db().access_token(id).await? else { return Err(AuthError::NotFound(format!("you have no token {id}"))) };
        let subject = self.subject(account).await?;
        // Another account's token is hidden: the policy answers not found, said as for no token.
        decide(&Actor::signed_in(&subject), Action::RevokeToken, &Resource::AccessToken { owner: &token.account_id })
            .into_result()
            .map_err(|refusal| AuthError::from(Refusal { reason: format!("you have no token {id}"), ..refusal }))?;
        self.revoke_token(id).await
    }

    /// The account's access tokens, revoked and expired ones included (never their secrets,
    /// which are stored only as hashes).
    pub async fn access_tokens_of(&self, account: &AccountRecord) -> Result<Vec<AccessTokenRecord>, AuthError> {
        Ok(self.db().access_tokens_of(&account.id).await?)
    }

    /// The account's organizations and its role in each, as (organization, role).
    pub async fn memberships(&self, account: &AccountRecord) -> Result<Vec<(String, String)>, AuthError> {
        Ok(self.db().memberships(&account.id).await?)
    }

    pub async fn set_policy(&self, repository: &str, policy: &Policy) -> Result<(), AuthError> {
        repository.parse::<slipway_oci::RepoName>().map_err(|e| AuthError::Invalid(e.to_string()))?;
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
        Ok(self
            .db()
            .grant_entitlement(&id, &account.id, tier, source, expires_in_days.map(|days| days_after(self.db().clock().now_ms(), days)))
            .await?)
    }

    pub async fn revoke_entitlement(&self, account: &str, tier: &str) -> Result<u64, AuthError> {
        let account = self.account_named(account).await?;
        Ok(self.db().revoke_entitlements(&account.id, tier).await?)
    }
}

const INVITATION_TTL_MS: i64 = 7 * 24 * 3600 * 1000;

impl AuthService {
    /// Owners (and site administrators) manage an organization's members.
    pub(crate) async fn ensure_owner(&self, account: &AccountRecord, org: &str) -> Result<(), AuthError> {
        if !self.db().organization_exists(org).await? {
            return Err(AuthError::NotFound(format!("no organization named {org:?}")));
        }
        let subject = self.subject(account).await?;
        Ok(decide(&Actor::signed_in(&subject), Action::ManageMembers, &Resource::Organization { name: org }).into_result()?)
    }

    /// Mails an invitation to join `org` with `role`; the link's secret is shown only there.
    /// The link starts at the configured base (`AuthSettings::mail_link_base`), never at
    /// anything a request said.
    pub async fn invite(&self, inviter: &AccountRecord, org: &str, email: &str, role: OrgRole) -> Result<(), AuthError> {
        check_email(email)?;
        self.ensure_owner(inviter, org).await?;
        let (secret, hash) = new_access_token();
        let expires = self.db().clock().now_ms() + INVITATION_TTL_MS;
        self.db().create_invitation(&hash, org, email, role.as_str(), &inviter.id, expires).await?;
        let base = self.settings().mail_link_base();
        let body = format!(
            "Hello,\n\n{} invites you to join the organization {org} on Slipway as {}.\n\n\
             Accept within 7 days at\n\n{base}/invitations/accept?code={secret}\n\n\
             (signed in with an account whose verified address is this one; sign up with it first if you have none).\n",
            inviter.name,
            role.as_str(),
        );
        crate::mail::enqueue(self.db(), email, &format!("Join {org} on Slipway"), &body).await
    }

    /// What a live invitation offers, for the page its link leads to (the link's holder
    /// already knows all of it from the mail): None when it is unknown, used or expired.
    pub async fn invitation(&self, code: &str) -> Result<Option<slipway_db::InvitationRecord>, AuthError> {
        Ok(self.db().live_invitation(&crate::secrets::token_hash(code)).await?)
    }

    /// Adds `account` to the organization an invitation is for. The invitation is bound to
    /// the address it was mailed to: only an account whose verified email is that address
    /// may accept it (issue 14: anyone holding the code could), and a refused attempt
    /// leaves it usable by its addressee.
    pub async fn accept_invitation(&self, account: &AccountRecord, code: &str) -> Result<(String, OrgRole), AuthError> {
        let hash = crate::secrets::token_hash(code);
        let invalid = || AuthError::Invalid("this invitation is invalid, used or expired".into());
        let pending = self.db().live_invitation(&hash).await?.ok_or_else(invalid)?;
        let subject = self.subject(account).await?;
        decide(&Actor::signed_in(&subject), Action::AcceptInvitation, &Resource::Invitation { email: &pending.email }).into_result()?;
        // Allowed, the account's verified address is the invited one; the statement checks
        // it again under its lock.
        let email = subject.verified_email.as_deref().unwrap_or_default();
        let invitation = self.db().accept_invitation(&hash, &account.id, email).await?.ok_or_else(invalid)?;
        let role = OrgRole::parse(&invitation.role).unwrap_or(OrgRole::Viewer);
        Ok((invitation.org, role))
    }

    /// The account named `name`, to be found among `org`'s members.
    async fn member_named(&self, org: &str, name: &str) -> Result<AccountRecord, AuthError> {
        self.db().account_by_name(name).await?.ok_or_else(|| not_member(name, org))
    }

    /// Whether `account` manages `org`'s members (its owners and site administrators), for
    /// pages that show the forms only to those whose requests would be allowed.
    pub async fn manages_members(&self, account: &AccountRecord, org: &str) -> Result<bool, AuthError> {
        match self.ensure_owner(account, org).await {
            Ok(()) => Ok(true),
            Err(AuthError::Forbidden(_)) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Owners (and site administrators) give a member another role; the last owner stays.
    pub async fn set_member_role(&self, actor: &AccountRecord, org: &str, member: &str, role: OrgRole) -> Result<(), AuthError> {
        self.ensure_owner(actor, org).await?;
        let account = self.member_named(org, member).await?;
        membership_changed(self.db().change_membership(org, &account.id, Some(role.as_str())).await, member, org)
    }

    /// Owners (and site administrators) remove a member; the last owner stays.
    pub async fn remove_member(&self, actor: &AccountRecord, org: &str, member: &str) -> Result<(), AuthError> {
        self.ensure_owner(actor, org).await?;
        let account = self.member_named(org, member).await?;
        self.leave_as(&account, org).await
    }

    /// A member leaves an organization (no permission needed beyond being one); the last
    /// owner cannot, until another member is made owner.
    pub async fn leave(&self, account: &AccountRecord, org: &str) -> Result<(), AuthError> {
        self.leave_as(account, org).await
    }

    async fn leave_as(&self, account: &AccountRecord, org: &str) -> Result<(), AuthError> {
        membership_changed(self.db().change_membership(org, &account.id, None).await, &account.name, org)
    }

    /// An owner hands ownership to another member and becomes a maintainer.
    pub async fn transfer_ownership(&self, actor: &AccountRecord, org: &str, to: &str) -> Result<(), AuthError> {
        self.ensure_owner(actor, org).await?;
        let target = self.member_named(org, to).await?;
        if self.db().transfer_ownership(org, &actor.id, &target.id).await? {
            Ok(())
        } else {
            Err(AuthError::Invalid(format!("ownership passes from an owner of {org} to another member of it, not to {to}")))
        }
    }

    /// Members of `org`, for its members and site staff.
    pub async fn members(&self, viewer: &AccountRecord, org: &str) -> Result<Vec<(String, String)>, AuthError> {
        let subject = self.subject(viewer).await?;
        decide(&Actor::signed_in(&subject), Action::ListMembers, &Resource::Organization { name: org }).into_result()?;
        Ok(self.db().members(org).await?)
    }
}

fn not_member(name: &str, org: &str) -> AuthError {
    AuthError::NotFound(format!("{name} is not a member of {org}"))
}

/// What a membership change answers: not found for a non-member, and a refusal with the
/// way out for a change that would leave the organization without an owner.
fn membership_changed(changed: Result<bool, DbError>, name: &str, org: &str) -> Result<(), AuthError> {
    match changed {
        Ok(true) => Ok(()),
        Ok(false) => Err(not_member(name, org)),
        Err(DbError::Conflict(_)) => Err(AuthError::Invalid(format!("{org} must keep an owner: make another member owner first"))),
        Err(e) => Err(e.into()),
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

    /// Issue 14, item 15: `password`, `12345678` and a password equal to the user name were
    /// accepted.
    #[test]
    fn common_and_personal_passwords_are_refused() {
        let refused = |password: &str, name: &str, email: &str| check_password(password, name, Some(email)).is_err();
        for common in [
            "password",
            "PASSWORD",
            "Password1",
            "password123!",
            "12345678",
            "123456789",
            "qwertyui",
            "qwertyuiop",
            "iloveyou",
            "iloveyou1",
            "sunshine",
            "football",
            "baseball",
            "princess",
            "trustno1",
            "p@ssw0rd",
            "P4ssw0rd!",
            "Passw0rd",
            "monkey12",
            "letmein!!",
            "1q2w3e4r",
            "aaaaaaaa",
            "abcdefgh",
            "87654321",
            "zaq12wsx",
            "qazwsxedc",
            "1qaz2wsx",
            "dragon2024",
            "  password  ",
        ] {
            assert!(refused(common, "someone", "someone@example.com"), "{common:?} is common");
        }
        for personal in ["newbie12", "NewbieNewbie", "newbie123456", "newbie@example.com", "NEWBIE-newbie", "newbie.dev!"] {
            assert!(refused(personal, "newbie", "newbie.dev@example.com"), "{personal:?} is built on the name or email");
        }
        for fine in [
            "correct horse battery staple",
            "a long enough password",
            "first password 1",
            "publisher password",
            "newbie-tramples-31-violets",
            "zq8#Lr2!vT",
            "Ünïcödé pässwörd",
        ] {
            assert!(!refused(fine, "newbie", "newbie@example.com"), "{fine:?} is a fine password");
        }
        assert!(refused("short", "x1", "x@example.com"), "too short");
        assert!(refused(&"x".repeat(1025), "x1", "x@example.com"), "too long");
        assert!(!refused(&"correct horse ".repeat(73), "x1", "x@example.com"), "1022 bytes are fine");
        assert!(check_password("robot secret 123", "ci", None).is_ok());
    }

    #[test]
    fn the_blocklist_is_loaded() {
        assert!(COMMON_PASSWORDS.len() > 1500, "{}", COMMON_PASSWORDS.len());
        assert!(COMMON_PASSWORDS.iter().all(|p| *p == p.to_lowercase() && !p.contains(' ')));
    }
}

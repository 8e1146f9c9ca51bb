//! The token service: checks credentials, works out what the caller may do, and signs it
//! into a short-lived registry token (Docker registry token authentication).

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use slipway_db::{AccessTokenRecord, AccountRecord, IdentityDb};

use crate::AuthError;
use crate::access::{Policy, decide};
use crate::client_addr::TrustedProxies;
use crate::keys::KeyRing;
use crate::scope::{Action, Scope, ScopeRule};
use crate::secrets::{DUMMY_HASH, TOKEN_PREFIX, new_access_token, token_hash};
use crate::throttle::{HashGate, SignInSettings};

#[derive(Clone, Debug)]
pub struct AuthSettings {
    /// `iss` of issued tokens.
    pub issuer: String,
    /// `aud` of issued tokens: the `service` clients name in token requests.
    pub service: String,
    pub token_ttl: Duration,
    pub refresh_ttl: Duration,
    /// The externally visible base URL (e.g. `https://store.example.com`) for the token
    /// realm; derived from each request's Host when unset.
    pub public_url: Option<String>,
    /// The address the server listens on: links in mail point there when `public_url` is
    /// unset (see `mail::link_base`), never at a request's Host.
    pub listen: std::net::SocketAddr,
    /// The listener speaks HTTPS (`[tls]`): such links start with `https://`.
    pub listen_tls: bool,
    /// Failed-sign-in delays and the password hashing bound.
    pub sign_in: SignInSettings,
    /// Reverse proxies whose forwarding headers name the client.
    pub trusted_proxies: TrustedProxies,
    /// How a new account's email address gets verified.
    pub sign_up_verification: SignUpVerification,
    /// Who must use two-factor sign-in.
    pub two_factor: slipway_db::TwoFactorRule,
    /// OpenID providers people may sign in with.
    pub sso: Vec<crate::SsoProvider>,
}

/// How sign-up verifies an address, from the mail settings (and `serve --demo`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignUpVerification {
    /// A link is mailed (a mail server is configured).
    #[default]
    Mail,
    /// No mail server: the link waits in the outbox and is also written to the log, so the
    /// operator can pass it on (or run `slipway admin verify-email USER`).
    Log,
    /// The demo without a mail server: addresses count as verified at once, so a newcomer
    /// signs up and signs in without reading a log. Never for a real store.
    AtOnce,
}

impl AuthSettings {
    /// The public URL's host (and port), as `docker pull` commands name the registry.
    pub fn public_host(&self) -> Option<String> {
        let (_, rest) = self.public_url.as_deref()?.split_once("://")?;
        Some(rest.trim_end_matches('/').to_owned())
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        AuthSettings {
            issuer: "slipway".into(),
            service: "slipway".into(),
            token_ttl: Duration::from_secs(300),
            refresh_ttl: Duration::from_secs(90 * 24 * 3600),
            public_url: None,
            listen: std::net::SocketAddr::from(([127, 0, 0, 1], 5000)),
            listen_tls: false,
            sign_in: SignInSettings::default(),
            trusted_proxies: TrustedProxies::default(),
            sign_up_verification: SignUpVerification::default(),
            two_factor: slipway_db::TwoFactorRule::default(),
            sso: Vec::new(),
        }
    }
}

/// What a token request presented.
pub enum Credentials {
    Anonymous,
    /// A name and a password or access token (HTTP Basic, or OAuth2 `grant_type=password`).
    Password {
        username: String,
        secret: String,
    },
    /// An OAuth2 refresh token (`docker login`'s stored identity token).
    Refresh(String),
}

/// A caller whose credentials checked out.
#[derive(Clone, Debug, Default)]
pub struct Authenticated {
    pub account: Option<AccountRecord>,
    /// Present when the caller used an access token: its limits apply on top of the
    /// account's own rights.
    pub token: Option<(AccessTokenRecord, Vec<ScopeRule>)>,
}

/// An access token presented to the REST API, and the account it acts for.
#[derive(Clone, Debug)]
pub struct ApiToken {
    pub account: AccountRecord,
    pub token: AccessTokenRecord,
    pub rules: Vec<crate::scope::TokenRule>,
}

/// One entry of the `access` claim.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ResourceActions {
    #[serde(rename = "type")]
    pub kind: String,
    pub name: String,
    pub actions: Vec<String>,
    /// Its pulls get only the versions released to customers (`Action::PullUnreleased`
    /// refused): the registry checks each manifest it serves against the releases.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub released_only: bool,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Claims {
    pub iss: String,
    /// The account name; empty for anonymous callers.
    pub sub: String,
    pub aud: String,
    pub exp: u64,
    pub nbf: u64,
    pub iat: u64,
    pub jti: String,
    #[serde(default)]
    pub access: Vec<ResourceActions>,
    /// The access token the caller signed in with, whose limits still apply.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tid: Option<String>,
}

impl Claims {
    pub fn allows(&self, kind: &str, name: &str, action: &str) -> bool {
        self.access.iter().any(|a| a.kind == kind && a.name == name && a.actions.iter().any(|x| x == action || x == "*"))
    }

    /// Whether the token's pulls of `repository` get only the released versions.
    pub fn released_only(&self, repository: &str) -> bool {
        self.access.iter().any(|a| a.kind == "repository" && a.name == repository && a.released_only)
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct TokenResponse {
    pub token: String,
    pub access_token: String,
    pub expires_in: u64,
    pub issued_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
}

#[derive(Clone)]
pub struct AuthService {
    db: IdentityDb,
    keys: Arc<KeyRing>,
    settings: Arc<AuthSettings>,
    hash_gate: Arc<HashGate>,
    /// Registry tokens whose signature held, until they expire.
    verified: Arc<crate::verified::VerifiedTokens>,
    /// Told when an account's address is verified (`sign_in::EmailVerifiedHook`); shared
    /// by every clone, set once by the binary.
    email_verified: Arc<std::sync::OnceLock<Arc<dyn crate::sign_in::EmailVerifiedHook>>>,
}

impl AuthService {
    pub fn new(db: IdentityDb, keys: KeyRing, settings: AuthSettings) -> Self {
        let hash_gate = Arc::new(HashGate::new(&settings.sign_in));
        AuthService {
            db,
            keys: Arc::new(keys),
            settings: Arc::new(settings),
            hash_gate,
            verified: Default::default(),
            email_verified: Default::default(),
        }
    }

    pub(crate) fn email_verified_hook(&self) -> Option<&Arc<dyn crate::sign_in::EmailVerifiedHook>> {
        self.email_verified.get()
    }

    /// Registers what to tell when an account's address is verified (commerce attaches the
    /// orders waiting for it). Set once: false if one was already set.
    pub fn set_email_verified_hook(&self, hook: Arc<dyn crate::sign_in::EmailVerifiedHook>) -> bool {
        self.email_verified.set(hook).is_ok()
    }

    pub(crate) fn hash_gate(&self) -> &HashGate {
        &self.hash_gate
    }

    /// Now, by the store's clock (which tests move): for pages that tell live from expired.
    pub fn now_ms(&self) -> i64 {
        self.db().clock().now_ms()
    }

    pub fn settings(&self) -> &AuthSettings {
        &self.settings
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// The identity tables, for this crate alone: other crates ask the service.
    pub(crate) fn db(&self) -> &IdentityDb {
        &self.db
    }

    /// Where mail for the store's moderators goes: their verified addresses (at most 100).
    pub async fn staff_emails(&self) -> Result<Vec<String>, AuthError> {
        Ok(self.db.staff_emails(100).await?)
    }

    /// Queues a message in the outbox (mail.rs); delivery happens off the request.
    pub async fn enqueue_mail(&self, recipient: &str, subject: &str, body: &str) -> Result<(), AuthError> {
        crate::mail::enqueue(&self.db, recipient, subject, body).await
    }

    /// Delivers due mail once through `transport` (`mail::deliver_due`); returns how many
    /// messages were sent.
    pub async fn deliver_mail(&self, transport: &dyn crate::mail::MailTransport) -> Result<usize, AuthError> {
        crate::mail::deliver_due(&self.db, transport).await
    }

    /// Checks credentials. Unknown names, wrong secrets, disabled accounts, and revoked or
    /// expired tokens all give the same answer, so the answer reveals nothing.
    pub async fn authenticate(&self, credentials: Credentials) -> Result<Authenticated, AuthError> {
        self.authenticate_with(credentials, None).await
    }

    /// Like `authenticate`, with password sign-ins counted against the name and the
    /// client address (`ip`) and slowed down after repeated failures (throttle.rs). An
    /// access token in the password field is looked up by its hash first and never
    /// throttled.
    pub async fn authenticate_with(&self, credentials: Credentials, ip: Option<IpAddr>) -> Result<Authenticated, AuthError> {
        match credentials {
            Credentials::Password { username, secret } if !secret.starts_with(TOKEN_PREFIX) => {
                let who = self.throttled_password_sign_in(&username, secret, ip).await?;
                match &who.account {
                    Some(account) if self.password_needs_second_factor(account).await? => Err(AuthError::TokenRequired),
                    _ => Ok(who),
                }
            }
            other => self.check_credentials(other).await,
        }
    }

    /// Checks a password. Unknown names, disabled accounts and robots (which have no
    /// password) cost one argon2 check against a dummy hash too, so the time taken does
    /// not tell which names exist (issue 14: 1-5 ms against 17-23 ms).
    pub(crate) async fn check_password(&self, username: &str, secret: String) -> Result<Authenticated, AuthError> {
        let account = self.db.account_by_name(username).await?.filter(|a| a.disabled_at.is_none());
        let stored = account.as_ref().and_then(|a| a.password_hash.clone());
        let has_password = stored.is_some();
        let matches = self.verify_password(secret, stored.unwrap_or_else(|| DUMMY_HASH.to_owned())).await?;
        let account = match account {
            Some(account) if matches && has_password => account,
            _ => return Err(AuthError::BadCredentials),
        };
        if account.kind == "person" && account.email_verified_at.is_none() {
            return Err(AuthError::Unverified);
        }
        if let Some(provider) = self.sso_only_label(&account).await? {
            return Err(AuthError::SsoOnly(provider));
        }
        Ok(Authenticated { account: Some(account), token: None })
    }

    async fn check_credentials(&self, credentials: Credentials) -> Result<Authenticated, AuthError> {
        match credentials {
            Credentials::Anonymous => Ok(Authenticated::default()),
            // authenticate_with sends passwords through the throttle; this arm keeps the match whole.
            Credentials::Password { username, secret } if !secret.starts_with(TOKEN_PREFIX) => self.check_password(&username, secret).await,
            Credentials::Password { username, secret } => {
                let account = self.db.account_by_name(&username).await?.ok_or(AuthError::BadCredentials)?;
                if account.disabled_at.is_some() {
                    return Err(AuthError::BadCredentials);
                }
                let token = self.live_access_token(&token_hash(&secret)).await?;
                if token.account_id != account.id {
                    return Err(AuthError::BadCredentials);
                }
                self.db.touch_access_token(&token.id).await?;
                let rules = parse_rules(&token.scopes);
                Ok(Authenticated { account: Some(account), token: Some((token, rules)) })
            }
            Credentials::Refresh(refresh) => {
                let record = self.db.refresh_token(&token_hash(&refresh)).await?.ok_or(AuthError::BadCredentials)?;
                if record.revoked_at.is_some() || record.expires_at <= self.db().clock().now_ms() {
                    return Err(AuthError::BadCredentials);
                }
                let account = self.db.account_by_id(&record.account_id).await?.ok_or(AuthError::BadCredentials)?;
                if account.disabled_at.is_some() {
                    return Err(AuthError::BadCredentials);
                }
                let token = match record.access_token_id {
                    Some(id) => {
                        let token = self.db.access_token(&id).await?.ok_or(AuthError::BadCredentials)?;
                        let token = self.check_live(token)?;
                        let rules = parse_rules(&token.scopes);
                        Some((token, rules))
                    }
                    None => None,
                };
                Ok(Authenticated { account: Some(account), token })
            }
        }
    }

    /// Checks an access token presented to the REST API as `Authorization: Bearer`: the
    /// account it acts for and its rules (the caller asks the policy about them, through
    /// `access::ApiTokenLimits`). Like a token in a password field it is looked up by its hash
    /// and never throttled; anything but a live token of an enabled account is
    /// `BadCredentials`, and stored rules over the limits are refused as at `/auth/token`.
    pub async fn api_token(&self, secret: &str) -> Result<ApiToken, AuthError> {
        if !secret.starts_with(TOKEN_PREFIX) {
            return Err(AuthError::BadCredentials);
        }
        let token = self.live_access_token(&token_hash(secret)).await?;
        let account =
            self.db.account_by_id(&token.account_id).await?.filter(|a| a.disabled_at.is_none()).ok_or(AuthError::BadCredentials)?;
        let rules = crate::scope::stored_rules(&token.scopes)?;
        // Only when the recorded use is over a minute old (as the statement itself
        // requires): API calls come far more often than token requests, and most would
        // otherwise each take the database's write lock for nothing.
        if token.last_used_at.is_none_or(|at| at < self.db().clock().now_ms() - 60_000) {
            self.db.touch_access_token(&token.id).await?;
        }
        Ok(ApiToken { account, token, rules })
    }

    async fn live_access_token(&self, hash: &str) -> Result<AccessTokenRecord, AuthError> {
        let token = self.db.access_token_by_hash(hash).await?.ok_or(AuthError::BadCredentials)?;
        self.check_live(token)
    }

    fn check_live(&self, token: AccessTokenRecord) -> Result<AccessTokenRecord, AuthError> {
        let expired = token.expires_at.is_some_and(|e| e <= self.db().clock().now_ms());
        if token.revoked_at.is_some() || expired {
            return Err(AuthError::BadCredentials);
        }
        // A token whose stored rules exceed the pattern limits is refused here, before any
        // of its patterns is matched (issue 14: such rows crashed or pinned the server).
        crate::scope::stored_rules(&token.scopes)?;
        Ok(token)
    }

    pub async fn policy(&self, repository: &str) -> Result<Policy, AuthError> {
        Ok(match self.db.repository_policy(repository).await? {
            Some(record) => Policy::from_record(&record.access, record.tier),
            None => Policy::Staging,
        })
    }

    /// What `who` may do to `repository`, and why pulling is refused if it is.
    pub async fn decide(&self, who: &Authenticated, repository: &str) -> Result<crate::access::Decision, AuthError> {
        let subject = match &who.account {
            Some(account) => Some(self.subject(account).await?),
            None => None,
        };
        let policy = self.policy(repository).await?;
        let rules = who.token.as_ref().map(|(_, rules)| rules.as_slice());
        Ok(decide(subject.as_ref(), rules, repository, &policy))
    }

    /// Whether `who` may list every repository (`registry:catalog:*`); why not if not.
    pub async fn catalog_refusal(&self, who: &Authenticated) -> Result<Option<String>, AuthError> {
        let subject = match &who.account {
            Some(account) => Some(self.subject(account).await?),
            None => None,
        };
        let rules = who.token.as_ref().map(|(_, rules)| rules.as_slice());
        let actor = crate::access::registry_actor(subject.as_ref(), rules);
        let decision = slipway_policy::decide(&actor, slipway_policy::Action::ListCatalog, &slipway_policy::Resource::Catalog);
        Ok(decision.into_result().err().map(|refusal| refusal.reason))
    }

    /// The tags of `repository` released to customers, by name (what a tag list shows a
    /// token that gets released versions only).
    pub async fn released_tag_names(&self, repository: &str) -> Result<std::collections::BTreeSet<String>, slipway_db::DbError> {
        Ok(self.db.released_tag_names(repository).await?.into_iter().collect())
    }

    /// Why a pull that gets only released versions (`Claims::released_only`) may not have
    /// the manifest `digest` it asked for by `tag` (None: by digest); None when it may. A
    /// tag serves customers while it points where it was released; a digest, while a
    /// release references it.
    pub async fn release_refusal(&self, repository: &str, tag: Option<&str>, digest: &str) -> Result<Option<String>, slipway_db::DbError> {
        Ok(match tag {
            Some(tag) => match self.db.released_tag(repository, tag).await? {
                Some(released) if released == digest => None,
                Some(_) => Some(format!("the version of {repository}:{tag} pushed last awaits the store's review: it is not released yet")),
                None => Some(format!("{repository}:{tag} is not released to customers")),
            },
            None if self.db.is_released_manifest(repository, digest).await? => None,
            None => Some(format!("manifest {digest} is not part of a released version of {repository}")),
        })
    }

    /// The intersection of what was asked and what is allowed. Asking for more than is
    /// allowed is not an error: the grant is simply smaller (possibly empty).
    pub async fn grant(&self, who: &Authenticated, requested: &[Scope]) -> Result<Vec<ResourceActions>, AuthError> {
        let mut by_repo: BTreeMap<String, BTreeSet<Action>> = BTreeMap::new();
        let mut catalog = false;
        for scope in requested {
            match scope {
                Scope::Repository { name, actions } => by_repo.entry(name.clone()).or_default().extend(actions),
                Scope::Catalog => catalog = true,
            }
        }
        let mut granted = Vec::new();
        for (repository, wanted) in by_repo {
            if repository.parse::<slipway_oci::RepoName>().is_err() {
                continue;
            }
            let decision = self.decide(who, &repository).await?;
            let actions: Vec<String> = wanted.intersection(&decision.allowed).map(|a| a.as_str().to_owned()).collect();
            // Only a live listing's tier repositories are governed by releases; one opened
            // by `slipway admin set-access` alone offers every tag.
            let pulls = actions.iter().any(|a| a == "pull");
            let released_only = pulls && !decision.unreleased && self.db.is_listed_repository(&repository).await?;
            granted.push(ResourceActions { kind: "repository".into(), name: repository, actions, released_only });
        }
        if catalog && self.catalog_refusal(who).await?.is_none() {
            granted.push(ResourceActions {
                kind: "registry".into(),
                name: "catalog".into(),
                actions: vec!["*".into()],
                released_only: false,
            });
        }
        Ok(granted)
    }

    /// Signs a registry token for `who`, with a refresh token when `offline` is asked for.
    pub async fn issue(&self, who: &Authenticated, requested: &[Scope], offline: bool) -> Result<TokenResponse, AuthError> {
        let access = self.grant(who, requested).await?;
        let now = self.db.clock().now_secs();
        let ttl = self.settings.token_ttl.as_secs();
        let claims = Claims {
            iss: self.settings.issuer.clone(),
            sub: who.account.as_ref().map(|a| a.name.clone()).unwrap_or_default(),
            aud: self.settings.service.clone(),
            exp: now + ttl,
            nbf: now.saturating_sub(1),
            iat: now,
            jti: uuid::Uuid::new_v4().to_string(),
            access,
            tid: who.token.as_ref().map(|(t, _)| t.id.clone()),
        };
        let token = self.keys.sign(&claims)?;
        let refresh_token = match (&who.account, offline) {
            (Some(account), true) => {
                let (refresh, hash) = new_access_token();
                let expires = (now + self.settings.refresh_ttl.as_secs()) as i64 * 1000;
                let token_id = who.token.as_ref().map(|(t, _)| t.id.as_str());
                self.db.create_refresh_token(&hash, &account.id, token_id, expires).await?;
                Some(refresh)
            }
            _ => None,
        };
        Ok(TokenResponse { access_token: token.clone(), token, expires_in: ttl, issued_at: rfc3339(now), refresh_token })
    }

    /// Checks a registry token presented to /v2/: its signature once (`verified.rs` keeps
    /// it), its times at every use.
    pub fn verify(&self, token: &str) -> Result<Claims, AuthError> {
        let now = self.db().clock().now_secs();
        if let Some(claims) = self.verified.get(token, now, crate::keys::LEEWAY_SECS) {
            return Ok(claims);
        }
        let claims: Claims = self.keys.verify(token, &self.settings.issuer, &self.settings.service, now)?;
        self.verified.insert(token, &claims, now);
        Ok(claims)
    }

    /// The caller a registry token was issued to, as of now (roles and entitlements may
    /// have changed since).
    pub async fn holder(&self, claims: &Claims) -> Result<Authenticated, AuthError> {
        if claims.sub.is_empty() {
            return Ok(Authenticated::default());
        }
        let account = self.db.account_by_name(&claims.sub).await?;
        let token = match &claims.tid {
            Some(id) => self.db.access_token(id).await?.map(|t| {
                let rules = parse_rules(&t.scopes);
                (t, rules)
            }),
            None => None,
        };
        Ok(Authenticated { account, token })
    }
}

/// The repository rules the registry matches. Unreadable or oversized rules become no
/// rules: the token then allows nothing.
fn parse_rules(scopes: &str) -> Vec<ScopeRule> {
    crate::scope::stored_rules(scopes).map(|rules| crate::scope::repository_rules(&rules)).unwrap_or_default()
}

fn rfc3339(secs: u64) -> String {
    chrono::DateTime::from_timestamp(secs as i64, 0).unwrap_or_default().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

#[cfg(test)]
mod tests {
    #[test]
    fn rfc3339_dates() {
        assert_eq!(super::rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(super::rfc3339(1_795_450_148), "2026-11-23T16:09:08Z");
        assert_eq!(super::rfc3339(951_782_400), "2000-02-29T00:00:00Z");
    }
}

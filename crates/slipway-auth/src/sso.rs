//! Single sign-on with OpenID Connect: the authorization code flow with PKCE (S256), a
//! `state` that is single use and bound to the browser, and a `nonce` the ID token must
//! carry. The provider's metadata and keys come from its discovery document; the ID
//! token's signature, issuer, audience, expiry and nonce are checked by the
//! `openidconnect` crate, against this server's clock.
//!
//! An identity (issuer, subject) is linked to an account once: on its first sign-in to the
//! account whose verified address is the identity's verified address, or to a new
//! account (named after the identity's preferred user name) when the provider may create
//! accounts. Providers marked `sso_only` take password sign-in away from the accounts
//! linked to them (access tokens keep working for tools).

use std::net::IpAddr;
use std::time::Duration;

use openidconnect::core::{CoreAuthenticationFlow, CoreClient, CoreProviderMetadata};
use openidconnect::{
    AuthorizationCode, ClientId, ClientSecret, CsrfToken, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier,
    RedirectUrl, Scope, TokenResponse,
};
use slipway_db::{AccountRecord, NewAccount, NewSsoLogin, SsoIdentity};

use crate::secrets::token_hash;
use crate::service::AuthService;
use crate::two_factor::OpenedSession;
use crate::{AuthError, directory};

/// How long a sign-in sent to a provider may take.
const LOGIN_TTL_MS: i64 = 10 * 60 * 1000;
/// The longest answer a provider may send (discovery, keys, tokens).
const PROVIDER_TIMEOUT: Duration = Duration::from_secs(10);
/// Sign-ins one client (IPv6 by /64) may start per window: each start fetches the
/// provider's discovery document and stores a pending login, so starts are rationed.
const STARTS_PER_CLIENT: i64 = 30;
const START_WINDOW_MS: i64 = 10 * 60 * 1000;
/// The most suffixes tried to make a new account's name unique.
const NAME_TRIES: u32 = 20;

/// An OpenID provider people may sign in with.
#[derive(Clone, Debug)]
pub struct SsoProvider {
    /// Its name in URLs (`/signin/sso/NAME`) and in the settings.
    pub name: String,
    /// The button's text ("Sign in with …").
    pub label: String,
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Whether a first sign-in with no matching account creates one.
    pub create_accounts: bool,
    /// Accounts linked to this provider cannot sign in with a password.
    pub sso_only: bool,
}

/// Where a browser is sent to sign in, and the state it must come back with.
#[derive(Clone, Debug)]
pub struct SsoRedirect {
    pub url: String,
    pub state: String,
}

/// What a provider's answer carried back.
pub struct SsoAnswer<'a> {
    pub provider: &'a str,
    /// The `state` in the callback's query, and the one the browser's cookie holds.
    pub state: &'a str,
    pub cookie_state: &'a str,
    pub code: &'a str,
    /// The redirect URI the sign-in was started with.
    pub redirect_uri: &'a str,
    pub ip: Option<IpAddr>,
    pub user_agent: &'a str,
}

impl AuthService {
    pub fn sso_providers(&self) -> &[SsoProvider] {
        &self.settings().sso
    }

    fn sso_provider(&self, name: &str) -> Result<&SsoProvider, AuthError> {
        self.sso_providers()
            .iter()
            .find(|p| p.name == name)
            .ok_or_else(|| AuthError::NotFound(format!("no sign-in provider named {name:?}")))
    }

    /// Starts a sign-in with `provider`: where to send the browser, with a fresh state,
    /// nonce and PKCE challenge (kept for the answer). A client starting more than
    /// `STARTS_PER_CLIENT` in a window is told to wait.
    pub async fn begin_sso(
        &self,
        provider: &str,
        redirect_uri: &str,
        next: &str,
        client: Option<IpAddr>,
    ) -> Result<SsoRedirect, AuthError> {
        let provider = self.sso_provider(provider)?;
        if let Some(client) = client {
            let now = self.db().clock().now_ms();
            let window_start = now - START_WINDOW_MS;
            let key = format!("sso-start-client:{}", crate::address_group(client));
            if self.db().count_request(&key, window_start).await? > STARTS_PER_CLIENT {
                tracing::info!(client = %client, "single sign-on starts over the client's limit");
                return Err(AuthError::Throttled((START_WINDOW_MS / 1000) as u64));
            }
        }
        let client = self.oidc_client(provider, redirect_uri).await?;
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (url, state, nonce) = client
            .authorize_url(CoreAuthenticationFlow::AuthorizationCode, CsrfToken::new_random, Nonce::new_random)
            .add_scope(Scope::new("email".into()))
            .add_scope(Scope::new("profile".into()))
            .set_pkce_challenge(challenge)
            .url();
        self.db()
            .create_sso_login(&NewSsoLogin {
                state_hash: &token_hash(state.secret()),
                provider: &provider.name,
                nonce: nonce.secret(),
                pkce_verifier: verifier.secret(),
                next,
                expires_at: self.db().clock().now_ms() + LOGIN_TTL_MS,
            })
            .await?;
        Ok(SsoRedirect { url: url.to_string(), state: state.secret().clone() })
    }

    /// Checks a provider's answer and opens a session: (the session, where to go next).
    pub async fn finish_sso(&self, answer: &SsoAnswer<'_>) -> Result<(OpenedSession, String), AuthError> {
        let refused = |why: &str| AuthError::Invalid(format!("single sign-on refused: {why}"));
        // The state is used up whatever follows, so an answer cannot be replayed.
        let login = self.db().take_sso_login(&token_hash(answer.state)).await?;
        let login = login.ok_or_else(|| refused("this sign-in is unknown, used or expired: start again"))?;
        if !crate::secrets::same_secret(answer.state, answer.cookie_state) || login.provider != answer.provider {
            return Err(refused("the answer does not belong to a sign-in started in this browser"));
        }
        let provider = self.sso_provider(answer.provider)?;
        let client = self.oidc_client(provider, answer.redirect_uri).await?;
        let http = provider_http()?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(answer.code.to_owned()))
            .map_err(|e| refused(&format!("the provider has no token endpoint: {e}")))?
            .set_pkce_verifier(PkceCodeVerifier::new(login.pkce_verifier))
            .request_async(&http)
            .await
            .map_err(|e| refused(&format!("the provider did not accept the code ({e})")))?;
        let id_token = tokens.id_token().ok_or_else(|| refused("the provider sent no ID token"))?;
        let clock = self.db().clock().clone();
        let verifier =
            client.id_token_verifier().set_time_fn(move || chrono::DateTime::from_timestamp_millis(clock.now_ms()).unwrap_or_default());
        let claims =
            id_token.claims(&verifier, &Nonce::new(login.nonce)).map_err(|e| refused(&format!("the ID token does not hold ({e})")))?;
        let subject = claims.subject().as_str();
        let mut email = claims.email().filter(|_| claims.email_verified() == Some(true)).map(|e| e.as_str().to_owned());
        let mut preferred = claims.preferred_username().map(|n| n.as_str().to_owned());
        if email.is_none() || preferred.is_none() {
            // Many providers put the profile in the UserInfo answer only; it must name the
            // same subject as the ID token.
            let info: openidconnect::core::CoreUserInfoClaims = client
                .user_info(tokens.access_token().clone(), Some(claims.subject().clone()))
                .map_err(|e| refused(&format!("the provider has no UserInfo endpoint: {e}")))?
                .request_async(&http)
                .await
                .map_err(|e| refused(&format!("the provider's UserInfo answer does not hold ({e})")))?;
            email = email.or_else(|| info.email().filter(|_| info.email_verified() == Some(true)).map(|e| e.as_str().to_owned()));
            preferred = preferred.or_else(|| info.preferred_username().map(|n| n.as_str().to_owned()));
        }
        let identity = SsoIdentity { issuer: claims.issuer().as_str(), subject, provider: &provider.name };
        let account = self.sso_account(provider, &identity, email.as_deref(), preferred.as_deref()).await?;
        let client_group = answer.ip.map(crate::address_group).unwrap_or_default();
        let user_agent: String = answer.user_agent.chars().filter(|c| !c.is_control()).take(crate::sign_in::MAX_USER_AGENT).collect();
        Ok((self.open_session(account, &user_agent, &client_group).await?, login.next))
    }

    /// The account an identity signs in to: linked before, linked now by its verified
    /// address, or created.
    async fn sso_account(
        &self,
        provider: &SsoProvider,
        identity: &SsoIdentity<'_>,
        email: Option<&str>,
        preferred: Option<&str>,
    ) -> Result<AccountRecord, AuthError> {
        let usable = |a: &AccountRecord| a.disabled_at.is_none() && a.kind == "person";
        if let Some(id) = self.db().sso_account(identity.issuer, identity.subject).await? {
            return self
                .db()
                .account_by_id(&id)
                .await?
                .filter(usable)
                .ok_or_else(|| AuthError::Forbidden("the account linked to this identity is closed".into()));
        }
        if let Some(email) = email
            && let Some(id) = self.db().account_by_email(email).await?
            && let Some(account) = self.db().account_by_id(&id).await?
        {
            if !usable(&account) || account.email_verified_at.is_none() {
                return Err(AuthError::Forbidden(
                    "an account with this address exists but has not verified it: sign in with its password once and verify it".into(),
                ));
            }
            self.db().link_sso(identity, &account.id).await?;
            return Ok(account);
        }
        if !provider.create_accounts {
            return Err(AuthError::Forbidden(format!(
                "no account here matches your {} identity: ask the site's administrators",
                provider.label
            )));
        }
        let base = account_name_from(preferred.or(email).unwrap_or("user"));
        for attempt in 0..NAME_TRIES {
            let name = if attempt == 0 { base.clone() } else { format!("{base}-{}", attempt + 1) };
            if self.db().account_by_name(&name).await?.is_some() {
                continue;
            }
            let id = uuid::Uuid::new_v4().to_string();
            let account = NewAccount {
                id: &id,
                name: &name,
                email,
                password_hash: None,
                site_role: crate::access::SiteRole::User.as_str(),
                kind: "person",
                robot_org: None,
                email_verified: email.is_some(),
            };
            match self.db().create_sso_account(&account, identity).await {
                Ok(()) => return self.account_named(&name).await,
                // Taken by a racing sign-up meanwhile: try the next name.
                Err(slipway_db::DbError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(AuthError::Conflict(format!("no free account name like {base:?}: ask the site's administrators")))
    }

    /// Whether an account must sign in through single sign-on (a provider it is linked to
    /// is `sso_only`): the provider's label, if so.
    pub(crate) async fn sso_only_label(&self, account: &AccountRecord) -> Result<Option<String>, AuthError> {
        if !self.sso_providers().iter().any(|p| p.sso_only) {
            return Ok(None);
        }
        let linked = self.db().sso_providers_of(&account.id).await?;
        Ok(self.sso_providers().iter().find(|p| p.sso_only && linked.contains(&p.name)).map(|p| p.label.clone()))
    }

    async fn oidc_client(
        &self,
        provider: &SsoProvider,
        redirect_uri: &str,
    ) -> Result<
        CoreClient<
            openidconnect::EndpointSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointNotSet,
            openidconnect::EndpointMaybeSet,
            openidconnect::EndpointMaybeSet,
        >,
        AuthError,
    > {
        let unavailable = |e: String| AuthError::Invalid(format!("the sign-in provider {} cannot be reached: {e}", provider.label));
        let issuer = IssuerUrl::new(provider.issuer.clone()).map_err(|e| unavailable(e.to_string()))?;
        let metadata = CoreProviderMetadata::discover_async(issuer, &provider_http()?).await.map_err(|e| unavailable(e.to_string()))?;
        let redirect = RedirectUrl::new(redirect_uri.to_owned()).map_err(|e| AuthError::Invalid(format!("redirect URI: {e}")))?;
        Ok(CoreClient::from_provider_metadata(
            metadata,
            ClientId::new(provider.client_id.clone()),
            Some(ClientSecret::new(provider.client_secret.clone())),
        )
        .set_redirect_uri(redirect))
    }
}

/// The longest answer a provider may send: discovery documents, key sets and token
/// answers are a few KiB.
const MAX_PROVIDER_ANSWER: usize = 1 << 20;

/// The HTTP client `openidconnect` calls providers through: no redirects followed (the
/// crate's advice against server-side request forgery), a bound on time and on the size of
/// an answer.
fn provider_http() -> Result<ProviderHttp, AuthError> {
    slipway_net::client()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(PROVIDER_TIMEOUT)
        .build()
        .map(ProviderHttp)
        .map_err(|e| AuthError::Invalid(format!("HTTP client: {e}")))
}

struct ProviderHttp(reqwest::Client);

impl<'c> openidconnect::AsyncHttpClient<'c> for ProviderHttp {
    type Error = std::io::Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<openidconnect::HttpResponse, std::io::Error>> + Send + 'c>>;

    fn call(&'c self, request: openidconnect::HttpRequest) -> Self::Future {
        Box::pin(async move {
            let request = reqwest::Request::try_from(request).map_err(std::io::Error::other)?;
            let mut response = self.0.execute(request).await.map_err(std::io::Error::other)?;
            let mut answer = openidconnect::http::Response::builder().status(response.status());
            if let Some(headers) = answer.headers_mut() {
                headers.extend(response.headers().iter().map(|(name, value)| (name.clone(), value.clone())));
            }
            let mut body = Vec::new();
            while let Some(chunk) = response.chunk().await.map_err(std::io::Error::other)? {
                if body.len() + chunk.len() > MAX_PROVIDER_ANSWER {
                    return Err(std::io::Error::other(format!("the answer is larger than {MAX_PROVIDER_ANSWER} bytes")));
                }
                body.extend_from_slice(&chunk);
            }
            answer.body(body).map_err(std::io::Error::other)
        })
    }
}

/// An account name made from a provider's user name or address: its local part, lowercase,
/// with what names may not hold dropped; "user" when nothing is left.
fn account_name_from(preferred: &str) -> String {
    let local = preferred.split('@').next().unwrap_or_default().to_lowercase();
    let kept: String = local.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')).take(30).collect();
    let trimmed = kept.trim_matches(|c: char| !c.is_ascii_alphanumeric()).to_owned();
    if directory::check_name(&trimmed).is_ok() { trimmed } else { "user".to_owned() }
}

#[cfg(test)]
mod tests {
    use openidconnect::AsyncHttpClient;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::{MAX_PROVIDER_ANSWER, account_name_from, provider_http};

    /// A one-connection provider on loopback answering `body` to whatever it is asked.
    async fn provider_answering(body: Vec<u8>) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request).await;
            let head = format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n", body.len());
            let _ = stream.write_all(head.as_bytes()).await;
            let _ = stream.write_all(&body).await;
        });
        format!("http://{addr}/.well-known/openid-configuration")
    }

    #[tokio::test]
    async fn a_provider_answer_is_read_whole_up_to_the_bound_and_refused_past_it() {
        let http = provider_http().unwrap();
        let within = vec![b'x'; MAX_PROVIDER_ANSWER];
        let request = openidconnect::http::Request::get(provider_answering(within.clone()).await).body(Vec::new()).unwrap();
        let answer = http.call(request).await.expect("an answer at the bound");
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["content-type"], "application/json");
        assert_eq!(answer.body(), &within);

        let past = vec![b'x'; MAX_PROVIDER_ANSWER + 1];
        let request = openidconnect::http::Request::get(provider_answering(past).await).body(Vec::new()).unwrap();
        let refused = http.call(request).await.expect_err("an answer past the bound");
        assert!(refused.to_string().contains("larger than"), "{refused}");
    }

    #[test]
    fn account_names_come_from_the_user_name_or_address() {
        assert_eq!(account_name_from("test-user@localhost"), "test-user");
        assert_eq!(account_name_from("Ada.Lovelace"), "ada.lovelace");
        assert_eq!(account_name_from("../../etc"), "etc");
        assert_eq!(account_name_from("Zoë <script>"), "zoscript");
        assert_eq!(account_name_from("@@@"), "user");
        assert_eq!(account_name_from(&"x".repeat(10_000)).len(), 30);
    }
}

//! Who may call the gateway: client keys (static and virtual), JWT, and the operator tokens.
//!
//! Depends on `config` and `domain`; knows nothing of HTTP — `http::middleware::auth` extracts
//! `Credentials` from headers and maps `AuthError` to a response. Keys and tokens are held only as
//! SHA-256 digests and compared in constant time; a key never reaches a log, a metric or a row.

mod jwt;
mod keys;
mod throttle;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;
use secrecy::ExposeSecret;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

pub use crate::domain::AuthError;
pub use jwt::JwtVerifier;
pub use keys::{KeyDigest, digest, equal, generate_key, key_prefix};
pub use throttle::{FAILURE_BURST, FailureThrottle};

use crate::config::{AuthSettings, EndpointAuth, TeamConfig, glob_match};
use crate::domain::Priority;

/// Operator tokens shorter than this are warned about at start and at each reload.
const MIN_TOKEN_BYTES: usize = 32;

/// The credentials a request carried, as text.
#[derive(Debug, Default, Clone, Copy)]
pub struct Credentials<'a> {
    /// `Authorization: Bearer <...>`.
    pub bearer: Option<&'a str>,
    /// `x-api-key`.
    pub api_key: Option<&'a str>,
    /// `X-Admin-Token`.
    pub admin_token: Option<&'a str>,
    /// `X-Worker-Token`.
    pub worker_token: Option<&'a str>,
}

/// How a caller proved who it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallerKind {
    /// Auth is off; the caller is known by address only.
    Anonymous,
    /// A key from `auth.api_keys`.
    StaticKey,
    /// A virtual key from the database.
    VirtualKey,
    /// A JWT; `id` is its `sub`.
    Jwt,
}

/// An authenticated caller: what limits and history know about it.
#[derive(Debug, Clone)]
pub struct Caller {
    /// Stable id for limits and history: `key:<digest prefix>`, a virtual key's id, a JWT `sub`, or
    /// `ip:<address>` when auth is off. Never the key itself.
    pub id: String,
    /// How it authenticated.
    pub kind: CallerKind,
    /// Its own requests-per-minute limit (virtual keys).
    pub rpm: Option<u32>,
    /// Its own tokens-per-minute limit (virtual keys).
    pub tpm: Option<u64>,
    /// Models it may use; `None` = any.
    pub models: Option<Arc<[String]>>,
    /// The user `/api/u/{user}/...` must name: a virtual key's name or a JWT `sub`; `None` for
    /// static keys, operators and anonymous callers.
    pub user: Option<String>,
    /// A virtual key's unique name (what a `key` budget names).
    pub key_name: Option<String>,
    /// A virtual key's team.
    pub team: Option<String>,
    /// A virtual key's own priority; `None` = its team's, else `normal`.
    pub priority: Option<Priority>,
    /// Its team's `models` allow-list (`*` patterns), set per request from the live `teams:`.
    pub team_models: Option<Arc<[String]>>,
}

impl Caller {
    /// Whether this caller may use `model`: its own list and its team's both allow it (`*`
    /// patterns in either).
    pub fn may_use(&self, model: &str) -> bool {
        let allows =
            |list: &Option<Arc<[String]>>| list.as_ref().is_none_or(|m| m.iter().any(|p| glob_match(p, model)));
        allows(&self.models) && allows(&self.team_models)
    }

    /// Takes its team's allow-list and, unless the key sets its own, priority from `teams`; a
    /// team no longer declared leaves both unset.
    pub fn join_team(&mut self, teams: &[TeamConfig]) {
        let Some(team) = self.team.as_deref().and_then(|t| teams.iter().find(|x| x.name == t)) else {
            return;
        };
        self.team_models = team.models.as_ref().map(|m| m.iter().cloned().collect());
        self.priority = self.priority.or(Some(team.priority));
    }
}

/// A virtual key as the cache holds it.
#[derive(Debug, Clone)]
pub struct VirtualKey {
    pub digest: KeyDigest,
    /// The caller it authenticates as.
    pub caller: Caller,
    /// Its expiry (epoch ms), checked on every request so it holds while the database is down.
    pub expires_at: Option<i64>,
}

/// What the database has said about virtual keys ever created (`Authenticator::note_key_history`).
const HISTORY_UNKNOWN: u8 = 0;
const HISTORY_NONE: u8 = 1;
const HISTORY_CREATED: u8 = 2;

/// What `auth:` configures; swapped whole by a reload.
#[derive(Debug)]
pub struct AuthConfig {
    static_keys: Vec<KeyDigest>,
    jwt: Option<JwtVerifier>,
    admin: Option<KeyDigest>,
    worker: Option<KeyDigest>,
    required: Option<bool>,
}

impl AuthConfig {
    /// From `auth:`; fails when a key file cannot be read or parsed. Warns about short tokens.
    pub fn new(settings: &AuthSettings) -> Result<Self, String> {
        let jwt = if settings.jwt.enabled() {
            Some(JwtVerifier::new(&settings.jwt)?)
        } else {
            None
        };
        for (key, token) in [
            ("auth.admin_token", &settings.admin_token),
            ("auth.worker_token", &settings.worker_token),
        ] {
            if token
                .as_ref()
                .is_some_and(|t| t.expose_secret().len() < MIN_TOKEN_BYTES)
            {
                tracing::warn!(
                    key,
                    min_bytes = MIN_TOKEN_BYTES,
                    "operator token is short and guessable; use a random one such as `openssl rand -hex 32`"
                );
            }
        }
        Ok(Self {
            static_keys: settings.api_keys.iter().map(|k| digest(k.expose_secret())).collect(),
            jwt,
            admin: settings.admin_token.as_ref().map(|t| digest(t.expose_secret())),
            worker: settings.worker_token.as_ref().map(|t| digest(t.expose_secret())),
            required: settings.required,
        })
    }

    /// Fetches the JWK set URL, if any, so its keys work from the first request; on failure the
    /// keys fetched under `previous` (same URL) stay, and the background refresh keeps trying.
    pub async fn prime(&self, previous: Option<&Self>) {
        let Some(jwt) = &self.jwt else {
            return;
        };
        if jwt.remote_source().is_none() {
            return;
        }
        if let Err(e) = jwt.fetch_remote(&jwks_client()).await {
            tracing::error!(error = %e, "JWK set not fetched; tokens signed by its keys are refused until it is");
            if let Some(old) = previous.and_then(|p| p.jwt.as_ref()) {
                jwt.inherit_remote(old);
            }
        }
    }
}

fn jwks_client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default()
}

/// Checks credentials. Static keys and tokens come from the config (swapped by a reload);
/// virtual keys are swapped in by the refresh task so the request path never waits on the
/// database.
#[derive(Debug)]
pub struct Authenticator {
    config: ArcSwap<AuthConfig>,
    virtual_keys: ArcSwap<HashMap<KeyDigest, (Caller, Option<i64>)>>,
    key_history: AtomicU8,
    throttle: FailureThrottle,
}

impl Authenticator {
    /// From `auth:`; fails when the RS256 key file or JWK set file cannot be read or parsed.
    pub fn new(settings: &AuthSettings) -> Result<Self, String> {
        Ok(Self::from_config(AuthConfig::new(settings)?))
    }

    /// From an `AuthConfig` already built (and primed).
    pub fn from_config(config: AuthConfig) -> Self {
        Self {
            config: ArcSwap::from_pointee(config),
            virtual_keys: ArcSwap::from_pointee(HashMap::new()),
            key_history: AtomicU8::new(HISTORY_UNKNOWN),
            throttle: FailureThrottle::default(),
        }
    }

    /// The configuration in force (a reload primes the next one against it).
    pub fn config(&self) -> Arc<AuthConfig> {
        self.config.load_full()
    }

    /// Installs a reloaded `auth:`.
    pub fn install(&self, config: AuthConfig) {
        self.config.store(Arc::new(config));
    }

    /// Whether client endpoints need credentials: `auth.required` when set; else whether any static
    /// key, JWT or admin token is configured or a virtual key was ever created. Never from how
    /// many keys are loaded now: revoking the last one must not open the gateway. Until the
    /// database has answered, it is assumed that one was.
    pub fn enabled(&self) -> bool {
        self.requirement().0
    }

    /// `enabled()` and why, for the startup log.
    pub fn requirement(&self) -> (bool, &'static str) {
        let c = self.config.load();
        if let Some(required) = c.required {
            return (required, "auth.required is set");
        }
        if !c.static_keys.is_empty() {
            return (true, "static API keys are configured");
        }
        if c.jwt.is_some() {
            return (true, "JWT is configured");
        }
        if c.admin.is_some() {
            return (true, "an admin token is configured");
        }
        match self.key_history.load(Ordering::Acquire) {
            HISTORY_CREATED => (true, "virtual keys have been created"),
            HISTORY_NONE => (
                false,
                "no key, JWT or admin token is configured and no virtual key was ever created",
            ),
            _ => (
                true,
                "the database has not said yet whether virtual keys were ever created",
            ),
        }
    }

    /// Records what the database says about keys ever created; once created, it stays so.
    pub fn note_key_history(&self, ever_created: bool) {
        let next = if ever_created { HISTORY_CREATED } else { HISTORY_NONE };
        let _ = self.key_history.fetch_update(Ordering::AcqRel, Ordering::Acquire, |h| {
            (h != HISTORY_CREATED).then_some(next)
        });
    }

    /// Whether the database has said that a virtual key was ever created.
    pub fn keys_ever_created(&self) -> bool {
        self.key_history.load(Ordering::Acquire) == HISTORY_CREATED
    }

    /// Installs the current set of virtual keys.
    pub fn replace_virtual_keys(&self, keys: Vec<VirtualKey>) {
        if !keys.is_empty() {
            self.note_key_history(true);
        }
        self.virtual_keys.store(Arc::new(
            keys.into_iter().map(|k| (k.digest, (k.caller, k.expires_at))).collect(),
        ));
    }

    /// A client: a key (static or virtual) or a JWT. When auth is not required, a caller without
    /// valid credentials is anonymous (known by `peer`).
    pub fn client(&self, creds: Credentials<'_>, peer: Option<IpAddr>) -> Result<Caller, AuthError> {
        let verdict = self.client_credentials(creds);
        if self.enabled() {
            verdict
        } else {
            Ok(verdict.unwrap_or_else(|_| anonymous(peer)))
        }
    }

    fn client_credentials(&self, creds: Credentials<'_>) -> Result<Caller, AuthError> {
        let presented = creds.bearer.or(creds.api_key).ok_or(AuthError::Missing)?;
        let config = self.config.load();
        if let Some(jwt) = &config.jwt
            && jwt::looks_like_jwt(presented)
        {
            return jwt.verify(presented);
        }
        self.key(&config, presented).ok_or(AuthError::Invalid)
    }

    /// A client of an endpoint with its own rule (a path route's `auth`, a `security:` rule):
    /// `api-key` accepts only a key (static or virtual), `jwt` only a valid JWT, `none` anyone
    /// (known by `peer`, like when auth is off).
    pub fn client_as(
        &self,
        scheme: EndpointAuth,
        creds: Credentials<'_>,
        peer: Option<IpAddr>,
    ) -> Result<Caller, AuthError> {
        let config = self.config.load();
        match scheme {
            EndpointAuth::None => Ok(anonymous(peer)),
            EndpointAuth::ApiKey => {
                let presented = creds.bearer.or(creds.api_key).ok_or(AuthError::Missing)?;
                self.key(&config, presented).ok_or(AuthError::Invalid)
            }
            EndpointAuth::Jwt => {
                let presented = creds.bearer.or(creds.api_key).ok_or(AuthError::Missing)?;
                match &config.jwt {
                    Some(jwt) if jwt::looks_like_jwt(presented) => jwt.verify(presented),
                    _ => Err(AuthError::Invalid),
                }
            }
        }
    }

    fn key(&self, config: &AuthConfig, presented: &str) -> Option<Caller> {
        let d = digest(presented);
        // Every static key is compared, matched or not, so timing does not reveal which one matched.
        let mut matched = None;
        for k in &config.static_keys {
            if keys::equal(k, &d) {
                matched = Some(k);
            }
        }
        if let Some(k) = matched {
            return Some(Caller {
                id: format!("key:{}", &k.hex()[..12]),
                kind: CallerKind::StaticKey,
                rpm: None,
                tpm: None,
                models: None,
                user: None,
                key_name: None,
                team: None,
                priority: None,
                team_models: None,
            });
        }
        let keys = self.virtual_keys.load();
        let (caller, expires_at) = keys.get(&d)?;
        // The refresh drops expired keys, but it cannot while the database is down.
        if expires_at.is_some_and(|e| e <= now_ms()) {
            return None;
        }
        Some(caller.clone())
    }

    /// An operator: `X-Admin-Token`, or the admin token as a bearer token.
    pub fn admin(&self, creds: Credentials<'_>) -> Result<(), AuthError> {
        let config = self.config.load();
        let Some(admin) = &config.admin else {
            return Err(AuthError::AdminDisabled);
        };
        let presented = creds.admin_token.or(creds.bearer);
        if presented.is_some_and(|t| keys::equal(admin, &digest(t))) {
            return Ok(());
        }
        // A wrong X-Admin-Token is a failed guess whatever else the request carries: answering
        // "not admin" because a client key came along would let guesses go uncounted.
        if creds.admin_token.is_some() {
            return Err(AuthError::Invalid);
        }
        // A valid client key here is a permission problem, not an authentication one.
        let client = creds.bearer.or(creds.api_key);
        if client.is_some_and(|c| self.key(&config, c).is_some()) {
            return Err(AuthError::NotAdmin);
        }
        Err(if presented.is_none() && client.is_none() {
            AuthError::Missing
        } else {
            AuthError::Invalid
        })
    }

    /// A worker node: `X-Worker-Token`.
    pub fn worker(&self, creds: Credentials<'_>) -> Result<(), AuthError> {
        let config = self.config.load();
        let Some(worker) = &config.worker else {
            return Err(AuthError::WorkerDisabled);
        };
        match creds.worker_token {
            None => Err(AuthError::Missing),
            Some(t) if keys::equal(worker, &digest(t)) => Ok(()),
            Some(_) => Err(AuthError::Invalid),
        }
    }

    /// Failed operator authentications per peer.
    pub fn throttle(&self) -> &FailureThrottle {
        &self.throttle
    }

    /// Periodic memory trim.
    pub fn housekeeping(&self) {
        self.throttle.housekeeping();
    }

    /// Refreshes the JWK set URL of the configuration in force every `jwks_refresh_seconds`, in
    /// the background: a token is never held up by the identity provider.
    pub fn spawn_jwks_refresh(self: &Arc<Self>, cancel: CancellationToken) -> JoinHandle<()> {
        let auth = self.clone();
        tokio::spawn(async move {
            let http = jwks_client();
            loop {
                let config = auth.config();
                let source = config
                    .jwt
                    .as_ref()
                    .and_then(|j| j.remote_source().map(|(_, every)| every));
                // Without a URL, look again later: a reload may add one.
                let every = source.unwrap_or(Duration::from_secs(5));
                tokio::select! {
                    () = tokio::time::sleep(every) => {}
                    () = cancel.cancelled() => return,
                }
                let config = auth.config();
                if let Some(jwt) = &config.jwt
                    && jwt.remote_source().is_some()
                    && let Err(e) = jwt.fetch_remote(&http).await
                {
                    tracing::warn!(error = %e, "JWK set not refreshed; keeping the previous keys");
                }
            }
        })
    }
}

fn now_ms() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
}

/// A caller known only by its address.
fn anonymous(peer: Option<IpAddr>) -> Caller {
    Caller {
        id: peer.map_or_else(|| "ip:unknown".to_owned(), |ip| format!("ip:{ip}")),
        kind: CallerKind::Anonymous,
        rpm: None,
        tpm: None,
        models: None,
        user: None,
        key_name: None,
        team: None,
        priority: None,
        team_models: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use secrecy::SecretString;

    fn settings(keys: &[&str], admin: Option<&str>) -> AuthSettings {
        AuthSettings {
            api_keys: keys.iter().map(|k| SecretString::from((*k).to_owned())).collect(),
            admin_token: admin.map(|a| SecretString::from(a.to_owned())),
            ..Default::default()
        }
    }

    fn bearer(token: &str) -> Credentials<'_> {
        Credentials {
            bearer: Some(token),
            ..Default::default()
        }
    }

    #[test]
    fn no_keys_means_auth_off_and_callers_known_by_address() {
        let a = Authenticator::new(&settings(&[], None)).unwrap();
        assert!(a.enabled(), "until the database has answered");
        a.note_key_history(false);
        let c = a
            .client(Credentials::default(), Some("10.1.2.3".parse().unwrap()))
            .unwrap();
        assert_eq!(c.id, "ip:10.1.2.3");
        assert_eq!(c.kind, CallerKind::Anonymous);
    }

    #[test]
    fn any_configured_key_is_accepted_by_bearer_or_header() {
        let a = Authenticator::new(&settings(&["sk-a", "sk-b"], None)).unwrap();
        assert_eq!(a.client(bearer("sk-a"), None).unwrap().kind, CallerKind::StaticKey);
        let header = Credentials {
            api_key: Some("sk-b"),
            ..Default::default()
        };
        assert!(a.client(header, None).is_ok());
        assert_eq!(a.client(bearer("sk-c"), None).unwrap_err(), AuthError::Invalid);
        assert_eq!(a.client(Credentials::default(), None).unwrap_err(), AuthError::Missing);
    }

    #[test]
    fn caller_id_never_contains_the_key() {
        let a = Authenticator::new(&settings(&["sk-secret-value"], None)).unwrap();
        let c = a.client(bearer("sk-secret-value"), None).unwrap();
        assert!(!c.id.contains("secret"));
    }

    #[test]
    fn admin_endpoints_distinguish_forbidden_from_unauthenticated() {
        let a = Authenticator::new(&settings(&["sk-a"], Some("adm"))).unwrap();
        assert!(
            a.admin(Credentials {
                admin_token: Some("adm"),
                ..Default::default()
            })
            .is_ok()
        );
        assert!(a.admin(bearer("adm")).is_ok());
        assert_eq!(a.admin(bearer("sk-a")).unwrap_err(), AuthError::NotAdmin);
        assert_eq!(a.admin(bearer("nope")).unwrap_err(), AuthError::Invalid);
        assert_eq!(a.admin(Credentials::default()).unwrap_err(), AuthError::Missing);
        let off = Authenticator::new(&settings(&["sk-a"], None)).unwrap();
        assert_eq!(off.admin(bearer("anything")).unwrap_err(), AuthError::AdminDisabled);
    }

    #[test]
    fn virtual_keys_switch_auth_on_and_carry_their_limits() {
        let a = Authenticator::new(&settings(&[], None)).unwrap();
        let caller = Caller {
            id: "vk1".into(),
            kind: CallerKind::VirtualKey,
            rpm: Some(5),
            tpm: None,
            models: None,
            user: Some("alice".into()),
            key_name: None,
            team: None,
            priority: None,
            team_models: None,
        };
        a.note_key_history(false);
        assert!(!a.enabled());
        a.replace_virtual_keys(vec![VirtualKey {
            digest: digest("sk-v"),
            caller: caller.clone(),
            expires_at: None,
        }]);
        assert!(a.enabled());
        assert_eq!(a.client(bearer("sk-v"), None).unwrap().rpm, Some(5));
        assert!(a.client(bearer("sk-x"), None).is_err());
        // The last key revoked: auth stays on, and nobody gets in.
        a.replace_virtual_keys(vec![]);
        a.note_key_history(false);
        assert!(a.enabled());
        assert!(a.client(bearer("sk-v"), None).is_err());
        assert!(a.client(Credentials::default(), None).is_err());
        // An expired key is refused even when no refresh has dropped it.
        a.replace_virtual_keys(vec![VirtualKey {
            digest: digest("sk-v"),
            caller,
            expires_at: Some(now_ms() - 1),
        }]);
        assert_eq!(a.client(bearer("sk-v"), None).unwrap_err(), AuthError::Invalid);
    }

    #[test]
    fn an_endpoint_rule_narrows_what_is_accepted() {
        let a = Authenticator::new(&settings(&["sk-a"], None)).unwrap();
        assert!(a.client_as(EndpointAuth::ApiKey, bearer("sk-a"), None).is_ok());
        assert_eq!(
            a.client_as(EndpointAuth::Jwt, bearer("sk-a"), None).unwrap_err(),
            AuthError::Invalid
        );
        let open = a.client_as(EndpointAuth::None, Credentials::default(), None).unwrap();
        assert_eq!(open.kind, CallerKind::Anonymous);
        let off = Authenticator::new(&settings(&[], None)).unwrap();
        off.note_key_history(false);
        assert_eq!(
            off.client_as(EndpointAuth::ApiKey, Credentials::default(), None)
                .unwrap_err(),
            AuthError::Missing
        );
    }
}

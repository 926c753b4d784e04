//! Who may call the gateway: client keys (static and virtual), JWT, and the operator tokens.
//!
//! Depends on `config` and `domain`; knows nothing of HTTP — `http::middleware::auth` extracts
//! `Credentials` from headers and maps `AuthError` to a response. Keys and tokens are held only as
//! SHA-256 digests and compared in constant time; a key never reaches a log, a metric or a row.

mod jwt;
mod keys;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use arc_swap::ArcSwap;
use secrecy::ExposeSecret;

pub use crate::domain::AuthError;
pub use jwt::JwtVerifier;
pub use keys::{KeyDigest, digest, generate_key, key_prefix};

use crate::config::{AuthSettings, EndpointAuth};

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
}

impl Caller {
    /// Whether this caller may use `model`.
    pub fn may_use(&self, model: &str) -> bool {
        self.models.as_ref().is_none_or(|m| m.iter().any(|x| x == model))
    }
}

/// A virtual key as the cache holds it.
#[derive(Debug, Clone)]
pub struct VirtualKey {
    /// Its digest.
    pub digest: KeyDigest,
    /// The caller it authenticates as.
    pub caller: Caller,
}

/// Checks credentials. Static keys and tokens come from the config; virtual keys are swapped in by
/// the refresh task so the request path never waits on the database.
#[derive(Debug)]
pub struct Authenticator {
    static_keys: Vec<KeyDigest>,
    virtual_keys: ArcSwap<HashMap<KeyDigest, Caller>>,
    jwt: Option<JwtVerifier>,
    admin: Option<KeyDigest>,
    worker: Option<KeyDigest>,
}

impl Authenticator {
    /// From `auth:`; fails when the RS256 key file cannot be read or parsed.
    pub fn new(settings: &AuthSettings) -> Result<Self, String> {
        let jwt = if settings.jwt.enabled() {
            Some(JwtVerifier::new(&settings.jwt)?)
        } else {
            None
        };
        Ok(Self {
            static_keys: settings.api_keys.iter().map(|k| digest(k.expose_secret())).collect(),
            virtual_keys: ArcSwap::from_pointee(HashMap::new()),
            jwt,
            admin: settings.admin_token.as_ref().map(|t| digest(t.expose_secret())),
            worker: settings.worker_token.as_ref().map(|t| digest(t.expose_secret())),
        })
    }

    /// Auth is on once any key, virtual key or JWT setting exists.
    pub fn enabled(&self) -> bool {
        !self.static_keys.is_empty() || self.jwt.is_some() || !self.virtual_keys.load().is_empty()
    }

    /// Installs the current set of virtual keys.
    pub fn replace_virtual_keys(&self, keys: Vec<VirtualKey>) {
        self.virtual_keys
            .store(Arc::new(keys.into_iter().map(|k| (k.digest, k.caller)).collect()));
    }

    /// A client: a key (static or virtual) or a JWT; anonymous (by `peer`) when auth is off.
    pub fn client(&self, creds: Credentials<'_>, peer: Option<IpAddr>) -> Result<Caller, AuthError> {
        if !self.enabled() {
            return Ok(anonymous(peer));
        }
        let presented = creds.bearer.or(creds.api_key).ok_or(AuthError::Missing)?;
        if let Some(jwt) = &self.jwt
            && jwt::looks_like_jwt(presented)
        {
            return jwt.verify(presented);
        }
        self.key(presented).ok_or(AuthError::Invalid)
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
        match scheme {
            EndpointAuth::None => Ok(anonymous(peer)),
            EndpointAuth::ApiKey => {
                let presented = creds.bearer.or(creds.api_key).ok_or(AuthError::Missing)?;
                self.key(presented).ok_or(AuthError::Invalid)
            }
            EndpointAuth::Jwt => {
                let presented = creds.bearer.or(creds.api_key).ok_or(AuthError::Missing)?;
                match &self.jwt {
                    Some(jwt) if jwt::looks_like_jwt(presented) => jwt.verify(presented),
                    _ => Err(AuthError::Invalid),
                }
            }
        }
    }

    fn key(&self, presented: &str) -> Option<Caller> {
        let d = digest(presented);
        // Every static key is compared, matched or not, so timing does not reveal which one matched.
        let mut matched = None;
        for k in &self.static_keys {
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
            });
        }
        self.virtual_keys.load().get(&d).cloned()
    }

    /// An operator: `X-Admin-Token`, or the admin token as a bearer token.
    pub fn admin(&self, creds: Credentials<'_>) -> Result<(), AuthError> {
        let Some(admin) = &self.admin else {
            return Err(AuthError::AdminDisabled);
        };
        let presented = creds.admin_token.or(creds.bearer);
        if presented.is_some_and(|t| keys::equal(admin, &digest(t))) {
            return Ok(());
        }
        // A valid client key here is a permission problem, not an authentication one.
        let client = creds.bearer.or(creds.api_key);
        if client.is_some_and(|c| self.key(c).is_some()) {
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
        let Some(worker) = &self.worker else {
            return Err(AuthError::WorkerDisabled);
        };
        match creds.worker_token {
            None => Err(AuthError::Missing),
            Some(t) if keys::equal(worker, &digest(t)) => Ok(()),
            Some(_) => Err(AuthError::Invalid),
        }
    }
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
        };
        a.replace_virtual_keys(vec![VirtualKey {
            digest: digest("sk-v"),
            caller,
        }]);
        assert!(a.enabled());
        assert_eq!(a.client(bearer("sk-v"), None).unwrap().rpm, Some(5));
        assert!(a.client(bearer("sk-x"), None).is_err());
        a.replace_virtual_keys(vec![]);
        assert!(!a.enabled());
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
        assert_eq!(
            off.client_as(EndpointAuth::ApiKey, Credentials::default(), None)
                .unwrap_err(),
            AuthError::Missing
        );
    }
}

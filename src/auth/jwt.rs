//! JWT as an alternative to keys: HS256 with a shared secret, RS256 with a public key, and any
//! number of public keys from a JWK set (a file, or a URL fetched in the background) for rotation.
//!
//! Every key is paired with the algorithms its family allows, so a token cannot pick its own
//! (`alg: none` does not parse, HS256 signed with a published RSA key does not match an RSA key).
//! `exp` and `nbf` are checked with 5 s of leeway; `aud` and `iss` when configured.

use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, JwkSet, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{AuthError, Caller, CallerKind};
use crate::config::JwtSettings;

/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECONDS: u64 = 5;
/// A JWK set larger than this is not a key set.
const MAX_JWKS_BYTES: usize = 1 << 20;

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

/// One verification key with the algorithms it may verify.
struct VerifyKey {
    /// The JWK `kid`; `None` for the configured secret and PEM key.
    kid: Option<String>,
    key: DecodingKey,
    validation: Validation,
}

/// Verifies bearer tokens against the configured keys; `sub` becomes the caller.
pub struct JwtVerifier {
    /// From `hs256_secret`, `rs256_public_key_file` and `jwks_file`: fixed until the next reload.
    fixed: Vec<VerifyKey>,
    /// From `jwks_url`: replaced by the background refresh; the last good set stays on failure.
    remote: ArcSwap<Vec<VerifyKey>>,
    url: Option<String>,
    refresh: Duration,
    audience: Option<String>,
    issuer: Option<String>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier")
            .field("fixed", &self.fixed.len())
            .field("remote", &self.remote.load().len())
            .field("url", &self.url)
            .finish()
    }
}

/// Three base64url segments starting with a JSON header: a JWT, not an API key.
pub(super) fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}

impl JwtVerifier {
    /// From `auth.jwt`; reads the RS256 public key file and the JWK set file. The JWK set URL is
    /// not fetched here (see `fetch_remote`).
    pub fn new(settings: &JwtSettings) -> Result<Self, String> {
        let audience = settings.audience.clone();
        let issuer = settings.issuer.clone();
        let validation = |algorithms: &[Algorithm]| validation(algorithms, audience.as_deref(), issuer.as_deref());
        let mut fixed = Vec::new();
        if let Some(secret) = &settings.hs256_secret {
            fixed.push(VerifyKey {
                kid: None,
                key: DecodingKey::from_secret(secret.expose_secret().as_bytes()),
                validation: validation(&[Algorithm::HS256]),
            });
        }
        if let Some(path) = &settings.rs256_public_key_file {
            let pem = std::fs::read(path).map_err(|e| format!("auth.jwt.rs256_public_key_file `{path}`: {e}"))?;
            let key = DecodingKey::from_rsa_pem(&pem)
                .map_err(|e| format!("auth.jwt.rs256_public_key_file `{path}`: not an RSA public key in PEM: {e}"))?;
            fixed.push(VerifyKey {
                kid: None,
                key,
                validation: validation(&[Algorithm::RS256]),
            });
        }
        if let Some(path) = &settings.jwks_file {
            let bytes = std::fs::read(path).map_err(|e| format!("auth.jwt.jwks_file `{path}`: {e}"))?;
            let keys = parse_jwks(&bytes, audience.as_deref(), issuer.as_deref())
                .map_err(|e| format!("auth.jwt.jwks_file `{path}`: {e}"))?;
            fixed.extend(keys);
        }
        Ok(Self {
            fixed,
            remote: ArcSwap::from_pointee(Vec::new()),
            url: settings.jwks_url.clone(),
            refresh: Duration::try_from_secs_f64(settings.jwks_refresh_seconds).unwrap_or(Duration::from_secs(300)),
            audience,
            issuer,
        })
    }

    /// The JWK set URL and how often to fetch it, when one is configured.
    pub(super) fn remote_source(&self) -> Option<(&str, Duration)> {
        self.url.as_deref().map(|u| (u, self.refresh))
    }

    /// Fetches the JWK set URL and installs its keys; on failure the previous keys stay.
    pub(super) async fn fetch_remote(&self, http: &reqwest::Client) -> Result<usize, String> {
        let Some(url) = &self.url else {
            return Ok(0);
        };
        let response = http
            .get(url)
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|e| format!("auth.jwt.jwks_url: {}", e.without_url()))?;
        if response.content_length().is_some_and(|n| n > MAX_JWKS_BYTES as u64) {
            return Err("auth.jwt.jwks_url: the key set is larger than 1 MiB".into());
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|e| format!("auth.jwt.jwks_url: {}", e.without_url()))?;
        if bytes.len() > MAX_JWKS_BYTES {
            return Err("auth.jwt.jwks_url: the key set is larger than 1 MiB".into());
        }
        let keys = parse_jwks(&bytes, self.audience.as_deref(), self.issuer.as_deref())
            .map_err(|e| format!("auth.jwt.jwks_url: {e}"))?;
        let n = keys.len();
        self.remote.store(Arc::new(keys));
        Ok(n)
    }

    /// Keeps `previous`'s fetched keys when both read the same URL (a reload must not drop keys
    /// that a failed fetch could not replace).
    pub(super) fn inherit_remote(&self, previous: &Self) {
        if self.url.is_some() && self.url == previous.url && self.remote.load().is_empty() {
            self.remote.store(previous.remote.load_full());
        }
    }

    /// The token's subject when its signature, time claims, audience and issuer check out.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthError::Invalid)?;
        let remote = self.remote.load();
        // A token naming its key is checked against that key only (and the kid-less configured
        // ones); one without a `kid` against every key.
        let matching = self
            .fixed
            .iter()
            .chain(remote.iter())
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(wanted), Some(kid)) => wanted == kid,
                _ => true,
            });
        let mut verdict = AuthError::Invalid;
        for k in matching {
            if !k.validation.algorithms.contains(&header.alg) {
                continue;
            }
            match jsonwebtoken::decode::<Claims>(token, &k.key, &k.validation) {
                Ok(data) => {
                    let sub = data.claims.sub;
                    // An empty subject would make every such token the same caller.
                    if sub.trim().is_empty() {
                        return Err(AuthError::Invalid);
                    }
                    return Ok(Caller {
                        id: format!("jwt:{sub}"),
                        kind: CallerKind::Jwt,
                        rpm: None,
                        tpm: None,
                        models: None,
                        user: Some(sub),
                        key_name: None,
                        team: None,
                        priority: None,
                        team_models: None,
                    });
                }
                Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => verdict = AuthError::Expired,
                Err(_) => {}
            }
        }
        Err(verdict)
    }
}

fn validation(algorithms: &[Algorithm], audience: Option<&str>, issuer: Option<&str>) -> Validation {
    let mut v = Validation::new(algorithms.first().copied().unwrap_or(Algorithm::RS256));
    v.algorithms = algorithms.to_vec();
    v.leeway = LEEWAY_SECONDS;
    v.validate_nbf = true;
    v.required_spec_claims.insert("sub".into());
    // Unset, `validate_aud` stays on: a token addressed to some audience is refused, since this
    // gateway identifies as none (RFC 7519 §4.1.3).
    if let Some(aud) = audience {
        v.set_audience(&[aud]);
        v.required_spec_claims.insert("aud".into());
    }
    if let Some(iss) = issuer {
        v.set_issuer(&[iss]);
        v.required_spec_claims.insert("iss".into());
    }
    v
}

/// The signing keys of a JWK set. Symmetric (`oct`) keys and encryption keys are skipped: a
/// published key set holds public keys, and a shared secret belongs in `hs256_secret`.
fn parse_jwks(bytes: &[u8], audience: Option<&str>, issuer: Option<&str>) -> Result<Vec<VerifyKey>, String> {
    let set: JwkSet = serde_json::from_slice(bytes).map_err(|e| format!("not a JWK set: {e}"))?;
    let mut keys = Vec::new();
    for jwk in &set.keys {
        let Some(algorithms) = algorithms_of(jwk) else {
            tracing::warn!(kid = ?jwk.common.key_id, "JWK skipped: not a public signing key this gateway verifies");
            continue;
        };
        let key = DecodingKey::from_jwk(jwk).map_err(|e| format!("key {:?}: {e}", jwk.common.key_id))?;
        keys.push(VerifyKey {
            kid: jwk.common.key_id.clone(),
            key,
            validation: validation(&algorithms, audience, issuer),
        });
    }
    if keys.is_empty() {
        return Err("no usable public signing key (RSA, EC P-256/P-384 or Ed25519)".into());
    }
    Ok(keys)
}

fn algorithms_of(jwk: &Jwk) -> Option<Vec<Algorithm>> {
    if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption)) {
        return None;
    }
    let family: Vec<Algorithm> = match &jwk.algorithm {
        AlgorithmParameters::RSA(_) => vec![
            Algorithm::RS256,
            Algorithm::RS384,
            Algorithm::RS512,
            Algorithm::PS256,
            Algorithm::PS384,
            Algorithm::PS512,
        ],
        AlgorithmParameters::EllipticCurve(p) => match p.curve {
            EllipticCurve::P256 => vec![Algorithm::ES256],
            EllipticCurve::P384 => vec![Algorithm::ES384],
            _ => return None,
        },
        AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => vec![Algorithm::EdDSA],
        AlgorithmParameters::OctetKeyPair(_) | AlgorithmParameters::OctetKey(_) => return None,
    };
    match jwk.common.key_algorithm {
        None => Some(family),
        // A key that names its algorithm verifies that one only, and only if it fits the key.
        Some(named) => {
            let alg = algorithm_named(named)?;
            family.contains(&alg).then(|| vec![alg])
        }
    }
}

fn algorithm_named(a: KeyAlgorithm) -> Option<Algorithm> {
    Some(match a {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use secrecy::SecretString;

    fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64
    }

    fn token(secret: &str, exp_offset: i64) -> String {
        let claims = serde_json::json!({"sub": "alice", "exp": now() + exp_offset});
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn verifier() -> JwtVerifier {
        JwtVerifier::new(&JwtSettings {
            hs256_secret: Some(SecretString::from("s3cret".to_owned())),
            ..Default::default()
        })
        .unwrap()
    }

    #[test]
    fn valid_token_names_its_subject() {
        let t = token("s3cret", 600);
        assert!(looks_like_jwt(&t));
        assert_eq!(verifier().verify(&t).unwrap().id, "jwt:alice");
    }

    #[test]
    fn expired_and_badly_signed_tokens_are_refused() {
        assert_eq!(
            verifier().verify(&token("s3cret", -600)).unwrap_err(),
            AuthError::Expired
        );
        assert_eq!(verifier().verify(&token("other", 600)).unwrap_err(), AuthError::Invalid);
    }

    #[test]
    fn a_jwks_without_a_usable_public_key_is_refused() {
        let oct = br#"{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}"#;
        assert!(parse_jwks(oct, None, None).is_err());
        assert!(parse_jwks(b"{}", None, None).is_err());
    }
}

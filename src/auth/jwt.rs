//! JWT as an alternative to keys (seed 002): HS256 with a shared secret or RS256 with a public key.

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;

use super::{AuthError, Caller, CallerKind};
use crate::config::JwtSettings;

#[derive(Deserialize)]
struct Claims {
    sub: String,
}

/// Verifies bearer tokens against the configured keys; `sub` becomes the caller.
pub struct JwtVerifier {
    keys: Vec<(DecodingKey, Validation)>,
}

impl std::fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtVerifier").field("keys", &self.keys.len()).finish()
    }
}

/// Three base64url segments starting with a JSON header: a JWT, not an API key.
pub(super) fn looks_like_jwt(token: &str) -> bool {
    token.starts_with("eyJ") && token.split('.').count() == 3
}

impl JwtVerifier {
    /// From `auth.jwt`; reads the RS256 public key file.
    pub fn new(settings: &JwtSettings) -> Result<Self, String> {
        let mut keys = Vec::new();
        if let Some(secret) = &settings.hs256_secret {
            let validation = Validation::new(Algorithm::HS256);
            keys.push((DecodingKey::from_secret(secret.expose_secret().as_bytes()), validation));
        }
        if let Some(path) = &settings.rs256_public_key_file {
            let pem = std::fs::read(path).map_err(|e| format!("auth.jwt.rs256_public_key_file `{path}`: {e}"))?;
            let key = DecodingKey::from_rsa_pem(&pem)
                .map_err(|e| format!("auth.jwt.rs256_public_key_file `{path}`: not an RSA public key in PEM: {e}"))?;
            keys.push((key, Validation::new(Algorithm::RS256)));
        }
        Ok(Self { keys })
    }

    /// The token's subject when its signature and expiry check out.
    pub fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let mut verdict = AuthError::Invalid;
        for (key, validation) in &self.keys {
            match jsonwebtoken::decode::<Claims>(token, key, validation) {
                Ok(data) => {
                    return Ok(Caller {
                        id: format!("jwt:{}", data.claims.sub),
                        kind: CallerKind::Jwt,
                        rpm: None,
                        tpm: None,
                        models: None,
                        user: Some(data.claims.sub),
                    });
                }
                Err(e) if matches!(e.kind(), ErrorKind::ExpiredSignature) => verdict = AuthError::Expired,
                Err(_) => {}
            }
        }
        Err(verdict)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{EncodingKey, Header, encode};
    use secrecy::SecretString;

    fn token(secret: &str, exp_offset: i64) -> String {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let claims = serde_json::json!({"sub": "alice", "exp": now + exp_offset});
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
            rs256_public_key_file: None,
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
}

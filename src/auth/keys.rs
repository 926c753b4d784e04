//! Key digests, constant-time comparison and generation of new keys.

use std::fmt;

use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// SHA-256 of a key or token: all the gateway ever keeps of one.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct KeyDigest([u8; 32]);

impl KeyDigest {
    /// Lowercase hex, as stored in the database.
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses a stored hex digest.
    pub fn from_hex(text: &str) -> Option<Self> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(text, &mut out).ok()?;
        Some(Self(out))
    }
}

impl fmt::Debug for KeyDigest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A digest is not secret, but a short form is all a log needs.
        write!(f, "KeyDigest({}…)", &self.hex()[..8])
    }
}

/// The digest of `key`.
pub fn digest(key: &str) -> KeyDigest {
    KeyDigest(Sha256::digest(key.as_bytes()).into())
}

/// Compares digests in constant time.
pub fn equal(a: &KeyDigest, b: &KeyDigest) -> bool {
    a.0.ct_eq(&b.0).into()
}

/// A new random key (`sk-aigw-` + 40 hex characters from the OS CSPRNG).
pub fn generate_key() -> Result<String, String> {
    use ring::rand::SecureRandom;
    let mut bytes = [0u8; 20];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system random source failed".to_owned())?;
    Ok(format!("sk-aigw-{}", hex::encode(bytes)))
}

/// The part of a key shown in listings.
pub fn key_prefix(key: &str) -> String {
    key.chars().take(12).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_are_distinct_and_round_trip_their_digest() {
        let a = generate_key().unwrap();
        let b = generate_key().unwrap();
        assert_ne!(a, b);
        assert!(a.starts_with("sk-aigw-") && a.len() == 48);
        let d = digest(&a);
        assert_eq!(KeyDigest::from_hex(&d.hex()), Some(d));
        assert!(equal(&d, &digest(&a)));
        assert!(!equal(&d, &digest(&b)));
    }
}

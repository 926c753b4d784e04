//! The cache key: the route, the endpoint and the body in a canonical form (keys sorted, no
//! whitespace), hashed. Only a key is built from the re-encoded body; what goes upstream is the
//! client's bytes.

use std::fmt::Write as _;

use serde_json::Value;
use sha2::{Digest, Sha256};

/// Bumped when the canonical form changes, so old entries are never read as new ones.
const VERSION: &str = "v2";

/// A SHA-256 digest naming one request, in hex.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CacheKey(String);

impl CacheKey {
    /// The key of `body` sent to `endpoint` for `route` (a named route's name, or the model) by
    /// `owner` (a caller's id, or empty when answers are shared). `None` when the body is not JSON
    /// (nothing to normalise, so nothing is cached).
    pub fn new(route: &str, endpoint: &str, owner: &str, body: &[u8]) -> Option<Self> {
        let value: Value = serde_json::from_slice(body).ok()?;
        let mut canonical = String::with_capacity(body.len());
        write_canonical(&value, &mut canonical);
        let mut hasher = Sha256::new();
        // Lengths first, so no choice of route or endpoint can run into the next field.
        for part in [VERSION, route, endpoint, owner] {
            hasher.update((part.len() as u64).to_be_bytes());
            hasher.update(part.as_bytes());
        }
        hasher.update(canonical.as_bytes());
        Some(Self(hex::encode(hasher.finalize())))
    }

    /// The hex digest.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// Compact JSON with object keys in byte order at every depth. Independent of serde_json's
/// `preserve_order` feature, which another crate in the tree could switch on.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(k, out);
                out.push(':');
                write_canonical(v, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(v, out);
            }
            out.push(']');
        }
        Value::String(s) => write_string(s, out),
        // null, booleans and numbers print the same however they were written.
        other => {
            let _ = write!(out, "{other}");
        }
    }
}

fn write_string(s: &str, out: &mut String) {
    // serde_json escapes the same text the same way, whatever escapes the client used.
    let _ = write!(out, "{}", Value::String(s.to_owned()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(body: &str) -> CacheKey {
        CacheKey::new("gpt-test", "/v1/chat/completions", "", body.as_bytes()).unwrap()
    }

    #[test]
    fn key_order_and_whitespace_do_not_change_the_key() {
        let a = key(r#"{"model":"gpt-test","messages":[{"role":"user","content":"Hi"}],"temperature":0}"#);
        let b = key(
            "{ \"temperature\": 0,\n  \"messages\": [ {\"content\": \"Hi\", \"role\": \"user\"} ],\n  \"model\": \"gpt-test\" }",
        );
        assert_eq!(a, b);
    }

    #[test]
    fn escapes_are_normalised() {
        assert_eq!(key(r#"{"content":"A\u00e9"}"#), key(r#"{"content":"Aé"}"#));
    }

    #[test]
    fn any_difference_in_values_changes_the_key() {
        let base = key(r#"{"messages":[{"role":"user","content":"Hi"}]}"#);
        assert_ne!(base, key(r#"{"messages":[{"role":"user","content":"Hi!"}]}"#));
        assert_ne!(base, key(r#"{"messages":[{"role":"user","content":"Hi"}],"n":2}"#));
        // Array order is meaning (the conversation), never sorted.
        assert_ne!(key(r#"{"m":[{"a":1},{"b":2}]}"#), key(r#"{"m":[{"b":2},{"a":1}]}"#));
    }

    #[test]
    fn route_and_endpoint_are_part_of_the_key() {
        let body = br#"{"model":"m"}"#;
        let chat = CacheKey::new("m", "/v1/chat/completions", "", body).unwrap();
        assert_ne!(chat, CacheKey::new("m", "/v1/responses", "", body).unwrap());
        assert_ne!(chat, CacheKey::new("other", "/v1/chat/completions", "", body).unwrap());
        // Field boundaries cannot be shifted between route and endpoint.
        assert_ne!(
            CacheKey::new("ab", "c", "", body).unwrap(),
            CacheKey::new("a", "bc", "", body).unwrap()
        );
    }

    #[test]
    fn each_owner_has_its_own_key_and_shared_answers_have_none() {
        let body = br#"{"model":"m"}"#;
        let alice = CacheKey::new("m", "/v1/chat/completions", "key:alice", body).unwrap();
        assert_ne!(
            alice,
            CacheKey::new("m", "/v1/chat/completions", "key:bob", body).unwrap()
        );
        assert_ne!(alice, CacheKey::new("m", "/v1/chat/completions", "", body).unwrap());
    }

    #[test]
    fn the_key_is_a_sha256_hex_digest_and_not_json_has_none() {
        assert_eq!(key("{}").as_str().len(), 64);
        assert!(key("{}").as_str().chars().all(|c| c.is_ascii_hexdigit()));
        assert!(CacheKey::new("m", "/v1/chat/completions", "", b"not json").is_none());
    }

    #[test]
    fn canonical_form_sorts_nested_keys_and_drops_whitespace() {
        let value: Value = serde_json::from_str(r#"{ "b": {"y": 1, "x": [true, null]}, "a": "s" }"#).unwrap();
        let mut out = String::new();
        write_canonical(&value, &mut out);
        assert_eq!(out, r#"{"a":"s","b":{"x":[true,null],"y":1}}"#);
    }
}

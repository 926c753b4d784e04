//! The shared store: one Redis key per answer under the configured prefix
//! (`{prefix}response:{digest}`, `SET ... EX ttl`), so every replica serves what any one stored.
//!
//! Every call is bounded: a slow or absent Redis is a miss for the caller, never a wait.

use std::time::Duration;

use redis::AsyncCommands;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};

use super::{CacheError, CachedAnswer};
use crate::domain::ProviderId;

/// The most one cache call may add to a request.
const CALL_TIMEOUT: Duration = Duration::from_millis(50);

pub(super) struct RedisStore {
    conn: ConnectionManager,
    prefix: String,
}

impl std::fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisStore")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// What precedes the body in a stored value (one JSON line).
#[derive(serde::Serialize, serde::Deserialize)]
struct Header {
    provider: String,
    upstream_model: String,
    content_type: String,
}

impl RedisStore {
    /// Connects lazily (on the first call, and again by itself after a failure), so a Redis that
    /// is down at start delays nothing. Must be called inside a tokio runtime.
    pub(super) fn new(url: &str, prefix: &str) -> Result<Self, String> {
        let client = redis::Client::open(url).map_err(|e| format!("REDIS_URL: {e}"))?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT * 4))
            .set_response_timeout(Some(CALL_TIMEOUT))
            // A few quick reconnects; after that the next call starts over.
            .set_number_of_retries(2)
            .set_max_delay(Duration::from_millis(500));
        let conn = ConnectionManager::new_lazy_with_config(client, config).map_err(|e| format!("REDIS_URL: {e}"))?;
        Ok(Self {
            conn,
            prefix: prefix.to_owned(),
        })
    }

    fn key(&self, digest: &str) -> String {
        format!("{}response:{digest}", self.prefix)
    }

    pub(super) async fn get(&self, digest: &str) -> Result<Option<CachedAnswer>, CacheError> {
        let key = self.key(digest);
        let mut conn = self.conn.clone();
        let value: Option<Vec<u8>> = bounded(async move { conn.get(key).await }).await?;
        Ok(value.and_then(|v| decode(&v)))
    }

    pub(super) async fn put(&self, digest: &str, answer: &CachedAnswer, ttl: Duration) -> Result<(), CacheError> {
        let key = self.key(digest);
        let value = encode(answer);
        let mut conn = self.conn.clone();
        let secs = ttl.as_secs().max(1);
        bounded(async move { conn.set_ex::<_, _, ()>(key, value, secs).await }).await
    }
}

async fn bounded<T>(call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, CacheError> {
    match tokio::time::timeout(CALL_TIMEOUT, call).await {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(CacheError(e.to_string())),
        Err(_) => Err(CacheError("redis call timed out".into())),
    }
}

/// `<header JSON>\n<body bytes>`: compact JSON has no raw newline, so the first one ends it.
fn encode(answer: &CachedAnswer) -> Vec<u8> {
    let header = Header {
        provider: answer.provider.as_str().to_owned(),
        upstream_model: answer.upstream_model.clone(),
        content_type: answer.content_type.clone(),
    };
    let mut out = serde_json::to_vec(&header).unwrap_or_default();
    out.push(b'\n');
    out.extend_from_slice(&answer.body);
    out
}

/// `None` for anything this version did not write (it is then a miss, and overwritten).
fn decode(value: &[u8]) -> Option<CachedAnswer> {
    let split = value.iter().position(|&b| b == b'\n')?;
    let header: Header = serde_json::from_slice(&value[..split]).ok()?;
    Some(CachedAnswer {
        provider: ProviderId::new(&header.provider),
        upstream_model: header.upstream_model,
        content_type: header.content_type,
        body: bytes::Bytes::copy_from_slice(&value[split + 1..]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stored_value_reads_back_whole() {
        let answer = CachedAnswer {
            provider: ProviderId::new("alpha"),
            upstream_model: "gpt\n-x".into(),
            content_type: "application/json".into(),
            body: bytes::Bytes::from_static(b"{\"a\":\"line\\nbreak\"}\n"),
        };
        let back = decode(&encode(&answer)).unwrap();
        assert_eq!(back.provider, answer.provider);
        assert_eq!(back.upstream_model, answer.upstream_model);
        assert_eq!(back.content_type, answer.content_type);
        assert_eq!(back.body, answer.body);
        assert!(decode(b"garbage").is_none());
    }
}

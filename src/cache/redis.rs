//! The shared store: one Redis key per answer under the configured prefix
//! (`{prefix}response:{digest}`, `SET ... EX ttl`), so every replica serves what any one stored.
//!
//! Every call is bounded: a slow or absent Redis is a miss for the caller, never a wait.

use std::time::Duration;

use redis::AsyncCommands;

use super::{CacheError, CachedAnswer};
use crate::domain::ProviderId;
use crate::limits::RedisLink;

/// The most one cache call may add to a request.
const CALL_TIMEOUT: Duration = Duration::from_millis(50);
/// The connection's own response timeout: longer than `CALL_TIMEOUT`, so one slow answer under
/// load is a miss without costing the connection.
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(250);

pub(super) struct RedisStore {
    link: RedisLink,
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
    /// Starts connecting in the background (`RedisLink`): a call made while Redis is down is a
    /// miss at once, never a wait on a connect. Must be called inside a tokio runtime.
    pub(super) fn new(url: &str, prefix: &str) -> Result<Self, String> {
        let link = RedisLink::new(url, "response cache", RESPONSE_TIMEOUT)?;
        link.start();
        Ok(Self {
            link,
            prefix: prefix.to_owned(),
        })
    }

    fn connection(&self) -> Result<redis::aio::MultiplexedConnection, CacheError> {
        self.link
            .current()
            .ok_or_else(|| CacheError("redis not connected (reconnecting in the background)".into()))
    }

    /// Bounds a call at `CALL_TIMEOUT`; an error a new connection could fix is reported to the
    /// link. A timeout is not: the link's own checks notice a Redis that stopped answering.
    async fn bounded<T>(&self, call: impl Future<Output = redis::RedisResult<T>>) -> Result<T, CacheError> {
        match tokio::time::timeout(CALL_TIMEOUT, call).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.link.failed(&e);
                Err(CacheError(e.to_string()))
            }
            Err(_) => Err(CacheError("redis call timed out".into())),
        }
    }

    fn key(&self, digest: &str) -> String {
        format!("{}response:{digest}", self.prefix)
    }

    pub(super) async fn get(&self, digest: &str) -> Result<Option<CachedAnswer>, CacheError> {
        let key = self.key(digest);
        let mut conn = self.connection()?;
        let value: Option<Vec<u8>> = self.bounded(async move { conn.get(key).await }).await?;
        Ok(value.and_then(|v| decode(&v)))
    }

    pub(super) async fn put(&self, digest: &str, answer: &CachedAnswer, ttl: Duration) -> Result<(), CacheError> {
        let key = self.key(digest);
        let value = encode(answer);
        let mut conn = self.connection()?;
        let secs = ttl.as_secs().max(1);
        self.bounded(async move { conn.set_ex::<_, _, ()>(key, value, secs).await })
            .await
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

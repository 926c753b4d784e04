//! Idempotency: a request repeated with the same `Idempotency-Key` (or the same client
//! `x-request-id`, what a load balancer sends again when it retries a POST) within
//! `idempotency.ttl_seconds` is never executed twice.
//!
//! Depends on `limits` (`RedisLink`); no actix. The first request claims its `Key` (Redis
//! `SET NX PX` with a short lease the holder keeps renewing, so a replica that dies frees it;
//! without Redis, or while Redis fails, a table in this process), runs, and leaves its `Done`:
//! a non-streamed answer to replay, or the word that it cannot be replayed (a stream, an answer
//! too large). A duplicate waits for the first, then gets the same answer; one with another body
//! is refused. `local` is the in-process table, `redis` the shared one. Keys are SHA-256 digests:
//! the client's key is never stored.

mod local;
mod redis;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use secrecy::ExposeSecret;
use sha2::{Digest, Sha256};

use crate::config::Settings;
use local::LocalTable;
use redis::RedisStore;

/// The request header a client names its operation with.
pub const KEY_HEADER: &str = "idempotency-key";
/// The response header a replayed answer carries.
pub const REPLAY_HEADER: &str = "x-ai-gateway-idempotent-replay";

/// Told of each Redis call that failed (the metrics' counter, given by `startup`).
pub type RedisErrorHook = Arc<dyn Fn() + Send + Sync>;

/// Which request a claim is for: the caller, the client's key and the endpoint, hashed; and the
/// body's digest, so a key reused with another body is told apart.
#[derive(Debug, Clone)]
pub struct Key {
    digest: String,
    body: [u8; 32],
}

impl Key {
    /// `kind` tells an `Idempotency-Key` from an `x-request-id`, so the two never meet.
    pub fn new(caller: &str, kind: &str, value: &str, endpoint: &str, body: &[u8]) -> Self {
        let mut h = Sha256::new();
        for part in [caller, kind, value, endpoint] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        Self {
            digest: hex::encode(h.finalize()),
            body: Sha256::digest(body).into(),
        }
    }

    /// A key that names the body too: the same id with another body is another request, not a
    /// reuse (a client may send one correlation id with several requests; a retry never changes
    /// the body).
    pub fn with_body(caller: &str, kind: &str, value: &str, endpoint: &str, body: &[u8]) -> Self {
        let mut key = Self::new(caller, kind, value, endpoint, body);
        let mut h = Sha256::new();
        h.update(key.digest.as_bytes());
        h.update(key.body);
        key.digest = hex::encode(h.finalize());
        key
    }
}

/// A finished non-streamed answer: what a duplicate is given.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Answer {
    /// HTTP status.
    pub status: u16,
    /// The headers worth replaying (content type, the gateway's own `x-ai-gateway-*`).
    pub headers: Vec<(String, String)>,
    /// The body, whole.
    #[serde(skip)]
    pub body: Bytes,
}

/// How the first execution ended.
#[derive(Debug, Clone)]
pub enum Done {
    /// Replay this.
    Answer(Arc<Answer>),
    /// A stream (or an answer too large to keep): it ran once, and cannot be replayed.
    Unreplayable,
}

/// What `Idempotency::begin` decided.
#[derive(Debug)]
pub enum Begin {
    /// This request is the first: run it, then `Claim::finish`.
    Execute(Claim),
    /// It already ran (or ran while this one waited).
    Replay(Done),
    /// The key was used with another body.
    Mismatch,
    /// The first is still running after `wait`.
    StillRunning,
}

/// The right to execute a key. Dropped without `finish` (the client went away, the answer was
/// a failure), it frees the key so a retry runs; in Redis the lease then expires on its own.
#[derive(Debug)]
pub struct Claim {
    inner: ClaimInner,
}

#[derive(Debug)]
enum ClaimInner {
    Local(local::LocalClaim),
    Redis {
        store: Arc<RedisStore>,
        key: Key,
        token: String,
        ttl: Duration,
    },
}

impl Claim {
    /// Runs `work` while keeping the claim alive (a Redis lease is renewed as it runs).
    pub async fn hold<T>(&self, work: impl Future<Output = T>) -> T {
        match &self.inner {
            ClaimInner::Local(_) => work.await,
            ClaimInner::Redis { store, key, token, .. } => {
                tokio::select! {
                    out = work => out,
                    never = store.renew_forever(key, token) => match never {},
                }
            }
        }
    }

    /// Records how the execution ended: `Some` is kept for the TTL and replayed, `None` frees the
    /// key (a failure a retry should run again).
    pub async fn finish(self, done: Option<Done>) {
        match self.inner {
            ClaimInner::Local(claim) => claim.finish(done),
            ClaimInner::Redis { store, key, token, ttl } => {
                let result = match done {
                    Some(done) => store.finish(&key, &done, ttl).await,
                    None => store.release(&key, &token).await,
                };
                if let Err(e) = result {
                    store.failed();
                    tracing::warn!(error = %e, "idempotency: could not record the answer in redis");
                }
            }
        }
    }
}

/// The claims, in Redis when `redis_url` is set (shared by every replica), else in this process.
#[derive(Debug)]
pub struct Idempotency {
    local: LocalTable,
    redis: Option<Arc<RedisStore>>,
}

impl Idempotency {
    /// The store `settings` ask for. With Redis, connects in the background; call inside a tokio
    /// runtime.
    pub fn new(settings: &Settings, on_redis_error: RedisErrorHook) -> Result<Self, String> {
        let redis = match &settings.redis_url {
            Some(url) => Some(Arc::new(RedisStore::new(
                url.expose_secret(),
                &settings.redis_prefix,
                on_redis_error,
            )?)),
            None => None,
        };
        Ok(Self {
            local: LocalTable::default(),
            redis,
        })
    }

    /// Claims `key`, or waits (at most `wait`) for the request that holds it.
    pub async fn begin(&self, key: &Key, ttl: Duration, wait: Duration) -> Begin {
        if let Some(store) = &self.redis {
            match store.begin(key, ttl, wait).await {
                Ok(redis::Begun::Claimed(token)) => {
                    return Begin::Execute(Claim {
                        inner: ClaimInner::Redis {
                            store: store.clone(),
                            key: key.clone(),
                            token,
                            ttl,
                        },
                    });
                }
                Ok(redis::Begun::Decided(begin)) => return begin,
                Err(e) => {
                    store.failed();
                    tracing::warn!(error = %e, "idempotency: redis failed; this replica's table decides");
                }
            }
        }
        self.local.begin(key, ttl, wait).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_by_caller_kind_and_endpoint_and_never_hold_the_raw_value() {
        let a = Key::new("c1", "key", "abc", "/v1/chat/completions", b"{}");
        assert_eq!(
            a.digest,
            Key::new("c1", "key", "abc", "/v1/chat/completions", b"{}").digest
        );
        for other in [
            Key::new("c2", "key", "abc", "/v1/chat/completions", b"{}"),
            Key::new("c1", "request-id", "abc", "/v1/chat/completions", b"{}"),
            Key::new("c1", "key", "abc", "/v1/embeddings", b"{}"),
        ] {
            assert_ne!(a.digest, other.digest);
        }
        assert!(!a.digest.contains("abc"));
        assert_ne!(
            a.body,
            Key::new("c1", "key", "abc", "/v1/chat/completions", b"{ }").body
        );
        let by_body = Key::with_body("c1", "key", "abc", "/v1/chat/completions", b"{}");
        assert_ne!(by_body.digest, a.digest);
        assert_ne!(
            by_body.digest,
            Key::with_body("c1", "key", "abc", "/v1/chat/completions", b"{ }").digest
        );
    }
}

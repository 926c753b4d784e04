//! Request and token limits: governor's GCRA in-process, or the same algorithm atomically in Redis
//! when several replicas must share one limit.
//!
//! Depends on `config` and `domain`; no actix. A Redis failure never fails a request: the check
//! falls back to the local limiter, and the fallback is counted and logged.

mod link;
mod local;
mod redis_gcra;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use tokio::sync::mpsc;

use secrecy::ExposeSecret;

use crate::config::Settings;
pub use crate::domain::Decision;
pub use link::RedisLink;
use local::LocalLimiter;
use redis_gcra::RedisLimiter;

/// A rate: `per_minute` sustained, `burst` at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    /// Requests per minute.
    pub per_minute: u32,
    /// Requests allowed back to back.
    pub burst: u32,
}

/// Checks quotas; one per process, shared by all workers.
#[derive(Debug)]
pub struct Limiter {
    local: LocalLimiter,
    redis: Option<RedisLimiter>,
    fallbacks: AtomicU64,
    /// Token counts on their way to Redis, once `token_writer` runs: a finished request hands its
    /// tokens over without waiting on the network or spawning a task of its own.
    tokens: OnceLock<mpsc::Sender<(String, u64)>>,
}

/// Token counts that may wait for the writer; past that, a count is applied locally instead.
const TOKEN_QUEUE: usize = 4096;

impl Limiter {
    /// In-process limits, or Redis-backed when `redis_url` is set.
    pub fn new(settings: &Settings) -> Result<Self, String> {
        let redis = match &settings.redis_url {
            Some(url) => Some(RedisLimiter::new(url.expose_secret(), &settings.redis_prefix)?),
            None => None,
        };
        Ok(Self {
            local: LocalLimiter::default(),
            redis,
            fallbacks: AtomicU64::new(0),
            tokens: OnceLock::new(),
        })
    }

    /// Whether limits are shared through Redis.
    pub fn shared(&self) -> bool {
        self.redis.is_some()
    }

    /// Starts connecting to Redis in the background (when limits are shared), so the first
    /// request finds the connection up. Must be called inside a tokio runtime.
    pub fn start(&self) {
        if let Some(redis) = &self.redis {
            redis.start();
        }
    }

    /// Whether the shared limiter is usable right now (false without Redis).
    pub fn redis_connected(&self) -> bool {
        self.redis.as_ref().is_some_and(RedisLimiter::connected)
    }

    /// Times Redis could not answer and the local limiter decided instead.
    pub fn fallbacks(&self) -> u64 {
        self.fallbacks.load(Ordering::Relaxed)
    }

    /// Counts one request of `key` in `scope` against `quota`.
    pub async fn check(&self, scope: &str, key: &str, quota: Quota) -> Decision {
        if let Some(redis) = &self.redis {
            match redis.check(scope, key, quota).await {
                Ok(decision) => return decision,
                Err(e) => self.fell_back(&e),
            }
        }
        self.local.check(scope, key, quota)
    }

    /// When `key` has used its `tpm` tokens this minute: how long until the next minute.
    pub async fn tokens_exhausted(&self, key: &str, tpm: u64) -> Option<Duration> {
        if let Some(redis) = &self.redis {
            match redis.tokens_used(key).await {
                Ok((used, reset)) => return (used >= tpm).then_some(reset),
                Err(e) => self.fell_back(&e),
            }
        }
        self.local.tokens_exhausted(key, tpm)
    }

    /// Counts `tokens` against `key` for this minute without waiting: locally at once, or queued
    /// for the Redis writer (`token_writer`) when limits are shared. Called when a request ends.
    pub fn record_tokens(&self, key: &str, tokens: u64) {
        if self.redis.is_some()
            && let Some(tx) = self.tokens.get()
        {
            match tx.try_send((key.to_owned(), tokens)) {
                Ok(()) => return,
                Err(_) => self.fell_back("token queue full"),
            }
        }
        self.local.add_tokens(key, tokens);
    }

    /// The task that carries recorded token counts to Redis, one at a time, falling back to the
    /// local count when Redis does not answer. `None` without Redis. Whoever owns background
    /// tasks runs it (start-up); it ends when the limiter is dropped.
    pub fn token_writer(self: &Arc<Self>) -> Option<impl Future<Output = ()> + Send + 'static> {
        self.redis.as_ref()?;
        let (tx, mut rx) = mpsc::channel::<(String, u64)>(TOKEN_QUEUE);
        self.tokens.set(tx).ok()?;
        let limiter = Arc::downgrade(self);
        Some(async move {
            while let Some((key, tokens)) = rx.recv().await {
                let Some(limiter) = limiter.upgrade() else { return };
                limiter.add_tokens(&key, tokens).await;
            }
        })
    }

    /// Adds `tokens` to `key`'s count for this minute.
    pub async fn add_tokens(&self, key: &str, tokens: u64) {
        if let Some(redis) = &self.redis {
            match redis.add_tokens(key, tokens).await {
                Ok(()) => return,
                Err(e) => self.fell_back(&e),
            }
        }
        self.local.add_tokens(key, tokens);
    }

    /// Drops idle keys; run from a timer so memory stays flat with many callers.
    pub fn housekeeping(&self) {
        self.local.housekeeping();
    }

    fn fell_back(&self, e: &str) {
        let n = self.fallbacks.fetch_add(1, Ordering::Relaxed) + 1;
        if n.is_power_of_two() {
            tracing::warn!(error = e, fallbacks_total = n, "redis unreachable; using local limits");
        }
    }
}

/// Shared handle.
pub type SharedLimiter = Arc<Limiter>;

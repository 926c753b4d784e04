//! Request and token limits: governor's GCRA in-process, or the same algorithm atomically in Redis
//! when several replicas must share one limit.
//!
//! Depends on `config` and `domain`; no actix. A Redis failure never fails a request: the check
//! falls back to the local limiter, and the fallback is counted and logged.

mod link;
mod local;
mod redis_gcra;

use std::future::Future;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
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
    /// `rate_limit.replicas`: the local limiter allows 1/replicas of every quota, so replicas
    /// deciding alone together stay within the limit instead of each allowing all of it.
    replicas: AtomicU32,
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
            replicas: AtomicU32::new(settings.rate_limit.replicas.max(1)),
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

    /// Waits (at most `within`) for the first Redis connection, so the first requests after
    /// start share the limit instead of deciding locally. True when connected, or without Redis.
    pub async fn connect_within(&self, within: Duration) -> bool {
        match &self.redis {
            Some(redis) => redis.connect_within(within).await,
            None => true,
        }
    }

    /// Sets `rate_limit.replicas` (at start and on every reload).
    pub fn set_replicas(&self, replicas: u32) {
        self.replicas.store(replicas.max(1), Ordering::Relaxed);
    }

    /// This replica's share of `quota` when it decides alone: never less than one request.
    fn share(&self, quota: Quota) -> Quota {
        let n = self.replicas.load(Ordering::Relaxed).max(1);
        Quota {
            per_minute: (quota.per_minute / n).max(1),
            burst: (quota.burst / n).max(1),
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
        self.local.check(scope, key, self.share(quota))
    }

    /// When `key` has used its `tpm` tokens this minute: how long until the next minute.
    pub async fn tokens_exhausted(&self, key: &str, tpm: u64) -> Option<Duration> {
        if let Some(redis) = &self.redis {
            match redis.tokens_used(key).await {
                Ok((used, reset)) => return (used >= tpm).then_some(reset),
                Err(e) => self.fell_back(&e),
            }
        }
        let n = u64::from(self.replicas.load(Ordering::Relaxed).max(1));
        self.local.tokens_exhausted(key, (tpm / n).max(1))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn deciding_alone_each_replica_allows_its_share_of_burst_rate_and_tokens() {
        let mut settings = Settings::default();
        settings.rate_limit.replicas = 3;
        let limiter = Limiter::new(&settings).unwrap();
        let quota = Quota {
            per_minute: 9,
            burst: 9,
        };
        let mut allowed = 0;
        for _ in 0..9 {
            allowed += usize::from(limiter.check("key", "a", quota).await.allowed);
        }
        assert_eq!(allowed, 3);
        limiter.add_tokens("a", 40).await;
        assert!(
            limiter.tokens_exhausted("a", 100).await.is_some(),
            "a third of 100 tokens"
        );
        limiter.set_replicas(1);
        assert!(limiter.tokens_exhausted("a", 100).await.is_none());
        assert!(
            limiter.connect_within(Duration::from_millis(1)).await,
            "no Redis: nothing to wait for"
        );
    }
}

//! The exact-match response cache for non-streamed inference answers.
//!
//! Depends on `config` and `domain`; no actix. `key` builds the key (route, endpoint and the body
//! re-encoded with sorted keys, hashed); `memory` keeps entries in-process (moka, bounded by
//! `cache.max_entries`, each entry with its own TTL); `redis` keeps them under
//! `{REDIS_PREFIX}response:` when `REDIS_URL` is set, so replicas share them. `ResponseCache` is
//! the one type the pipeline sees. A Redis failure or slow answer is an error the pipeline counts
//! and treats as a miss; it never reaches the client.

mod key;
mod memory;
mod redis;

use std::time::Duration;

use bytes::Bytes;
use secrecy::ExposeSecret;

pub use key::CacheKey;

use crate::config::Settings;
use crate::domain::ProviderId;
use memory::MemoryStore;
use redis::RedisStore;

/// The request header that turns the cache on (`on`) or off (`off`) for one request, and the
/// response header that says `hit` or `miss`.
pub const HEADER: &str = "x-ai-gateway-cache";

/// What a client asked for in `x-ai-gateway-cache`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CacheDirective {
    /// No header (or an unknown value): the route's setting decides.
    #[default]
    Default,
    /// `on`: cache this request with `cache.ttl_seconds`, whatever the route says.
    On,
    /// `off`: bypass the cache, even on a route that has it.
    Off,
}

impl CacheDirective {
    /// Reads the header's value (`on`/`off`, case-insensitive; `true`/`false`, `1`/`0` too).
    pub fn from_header(value: Option<&str>) -> Self {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            Some("on" | "true" | "1") => Self::On,
            Some("off" | "false" | "0") => Self::Off,
            _ => Self::Default,
        }
    }
}

/// Whether an answer came from the cache.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from the cache; no provider was called.
    Hit,
    /// Looked up and not found (or the store failed); answered by a provider.
    Miss,
}

impl CacheStatus {
    /// `hit` or `miss`: the response header, the history column and the metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Hit => "hit",
            Self::Miss => "miss",
        }
    }
}

/// How long a request's answer is cached, if the cache applies to it: the header's choice, else
/// the route's (`model` resolved through `Settings::route_for_model`).
pub fn ttl_for(settings: &Settings, model: &str, directive: CacheDirective) -> Option<Duration> {
    let seconds = match directive {
        CacheDirective::Off => return None,
        CacheDirective::On => Some(settings.cache.ttl_seconds),
        CacheDirective::Default => settings
            .route_for_model(model)
            .and_then(|r| r.cache_ttl(settings.cache.ttl_seconds)),
    };
    seconds.filter(|s| *s > 0).map(Duration::from_secs)
}

/// The name the key is built on: a named route's name, else the model as requested.
pub fn route_name<'a>(settings: &'a Settings, model: &'a str) -> &'a str {
    settings.route_for_model(model).map_or(model, |r| r.name.as_str())
}

/// A stored answer: what the client gets again on a hit.
#[derive(Debug, Clone)]
pub struct CachedAnswer {
    /// The provider that produced it.
    pub provider: ProviderId,
    /// The model it was asked for.
    pub upstream_model: String,
    pub content_type: String,
    /// The body as the client received it.
    pub body: Bytes,
}

/// Why a cache call failed (Redis only; the memory store cannot fail).
#[derive(Debug, thiserror::Error)]
#[error("response cache: {0}")]
pub struct CacheError(String);

#[derive(Debug)]
enum Store {
    Memory(MemoryStore),
    Redis(RedisStore),
}

/// The response cache: in memory, or in Redis when `REDIS_URL` is set.
#[derive(Debug)]
pub struct ResponseCache {
    store: Store,
    max_entry_bytes: usize,
}

impl ResponseCache {
    /// The store `settings` ask for. With Redis, connects lazily; call inside a tokio runtime.
    pub fn new(settings: &Settings) -> Result<Self, String> {
        let store = match &settings.redis_url {
            Some(url) => Store::Redis(RedisStore::new(url.expose_secret(), &settings.redis_prefix)?),
            None => Store::Memory(MemoryStore::new(settings.cache.max_entries, settings.cache.max_bytes)),
        };
        Ok(Self {
            store,
            max_entry_bytes: settings.cache.max_entry_bytes,
        })
    }

    /// `memory` or `redis`.
    pub fn backend(&self) -> &'static str {
        match self.store {
            Store::Memory(_) => "memory",
            Store::Redis(_) => "redis",
        }
    }

    /// The answer stored under `key`, if any and not expired.
    pub async fn get(&self, key: &CacheKey) -> Result<Option<CachedAnswer>, CacheError> {
        match &self.store {
            Store::Memory(m) => Ok(m.get(key.as_str())),
            Store::Redis(r) => r.get(key.as_str()).await,
        }
    }

    /// Stores `answer` for `ttl`; answers over `cache.max_entry_bytes` are skipped (`Ok(false)`).
    pub async fn put(&self, key: &CacheKey, answer: CachedAnswer, ttl: Duration) -> Result<bool, CacheError> {
        if answer.body.len() > self.max_entry_bytes {
            return Ok(false);
        }
        match &self.store {
            Store::Memory(m) => m.put(key.as_str(), answer, ttl),
            Store::Redis(r) => r.put(key.as_str(), &answer, ttl).await?,
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{RouteCache, RouteConfig};

    fn settings_with_route(cache: Option<RouteCache>) -> Settings {
        let mut s = Settings::default();
        s.cache.ttl_seconds = 300;
        s.routes.push(RouteConfig {
            name: "chat-default".into(),
            strategy: Default::default(),
            targets: vec!["alpha:gpt-test".parse().unwrap()],
            fallbacks: Vec::new(),
            on_context_length_exceeded: Vec::new(),
            cache,
            callback: None,
            description: None,
            stream_recovery: None,
        });
        s
    }

    #[test]
    fn the_header_reads_on_and_off_and_ignores_anything_else() {
        assert_eq!(CacheDirective::from_header(Some("on")), CacheDirective::On);
        assert_eq!(CacheDirective::from_header(Some(" OFF ")), CacheDirective::Off);
        assert_eq!(CacheDirective::from_header(Some("maybe")), CacheDirective::Default);
        assert_eq!(CacheDirective::from_header(None), CacheDirective::Default);
    }

    #[test]
    fn the_header_wins_over_the_route_and_routes_opt_in_with_their_ttl() {
        let on = settings_with_route(Some(RouteCache::Ttl { ttl_seconds: 7 }));
        let route = "rotation:chat-default";
        assert_eq!(
            ttl_for(&on, route, CacheDirective::Default),
            Some(Duration::from_secs(7))
        );
        assert_eq!(ttl_for(&on, route, CacheDirective::Off), None);
        assert_eq!(ttl_for(&on, route, CacheDirective::On), Some(Duration::from_secs(300)));
        let plain = settings_with_route(None);
        assert_eq!(ttl_for(&plain, "chat-default", CacheDirective::Default), None);
        assert_eq!(
            ttl_for(&plain, "gpt-test", CacheDirective::On),
            Some(Duration::from_secs(300))
        );
        let global = settings_with_route(Some(RouteCache::Enabled(true)));
        assert_eq!(
            ttl_for(&global, "chat-default", CacheDirective::Default),
            Some(Duration::from_secs(300))
        );
    }

    #[test]
    fn keys_are_built_on_the_route_name_whatever_the_strategy_prefix() {
        let s = settings_with_route(None);
        assert_eq!(route_name(&s, "autoselect:chat-default"), "chat-default");
        assert_eq!(route_name(&s, "gpt-test"), "gpt-test");
    }

    #[tokio::test]
    async fn answers_over_the_size_limit_are_not_stored() {
        let mut s = Settings::default();
        s.cache.max_entry_bytes = 4;
        let cache = ResponseCache::new(&s).unwrap();
        let key = CacheKey::new("m", "/v1/chat/completions", "", b"{}").unwrap();
        let answer = |body: &'static str| CachedAnswer {
            provider: ProviderId::new("alpha"),
            upstream_model: "m".into(),
            content_type: "application/json".into(),
            body: Bytes::from_static(body.as_bytes()),
        };
        assert!(
            !cache
                .put(&key, answer("{\"a\":1}"), Duration::from_secs(9))
                .await
                .unwrap()
        );
        assert!(cache.get(&key).await.unwrap().is_none());
        assert!(cache.put(&key, answer("{}"), Duration::from_secs(9)).await.unwrap());
        assert_eq!(cache.get(&key).await.unwrap().unwrap().body, Bytes::from_static(b"{}"));
        assert_eq!(cache.backend(), "memory");
    }
}

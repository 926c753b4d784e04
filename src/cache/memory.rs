//! The in-process store: moka's concurrent cache, bounded by entry count, each entry expiring after
//! its own TTL.

use std::sync::Arc;
use std::time::{Duration, Instant};

use moka::Expiry;
use moka::sync::Cache;

use super::CachedAnswer;

#[derive(Debug)]
struct Stored {
    answer: CachedAnswer,
    ttl: Duration,
}

/// Each entry lives for the TTL it was stored with (routes may differ).
struct OwnTtl;

impl Expiry<String, Arc<Stored>> for OwnTtl {
    fn expire_after_create(&self, _key: &String, value: &Arc<Stored>, _now: Instant) -> Option<Duration> {
        Some(value.ttl)
    }

    fn expire_after_update(
        &self,
        _key: &String,
        value: &Arc<Stored>,
        _now: Instant,
        _current: Option<Duration>,
    ) -> Option<Duration> {
        Some(value.ttl)
    }
}

pub(super) struct MemoryStore {
    entries: Cache<String, Arc<Stored>>,
}

impl std::fmt::Debug for MemoryStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MemoryStore")
            .field("entries", &self.entries.entry_count())
            .finish()
    }
}

impl MemoryStore {
    pub(super) fn new(max_entries: u64) -> Self {
        Self {
            entries: Cache::builder().max_capacity(max_entries).expire_after(OwnTtl).build(),
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<CachedAnswer> {
        self.entries.get(key).map(|s| s.answer.clone())
    }

    pub(super) fn put(&self, key: &str, answer: CachedAnswer, ttl: Duration) {
        self.entries.insert(key.to_owned(), Arc::new(Stored { answer, ttl }));
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::domain::ProviderId;

    fn answer(body: &'static str) -> CachedAnswer {
        CachedAnswer {
            provider: ProviderId::new("alpha"),
            upstream_model: "m".into(),
            content_type: "application/json".into(),
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    #[test]
    fn an_entry_is_served_until_its_own_ttl_passes() {
        let store = MemoryStore::new(10);
        store.put("short", answer("{}"), Duration::from_millis(50));
        store.put("long", answer("[]"), Duration::from_secs(60));
        assert_eq!(store.get("short").map(|a| a.body), Some(Bytes::from_static(b"{}")));
        std::thread::sleep(Duration::from_millis(80));
        assert!(store.get("short").is_none());
        assert!(store.get("long").is_some());
    }
}

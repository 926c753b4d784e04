//! The in-process store: moka's concurrent cache, bounded by bytes and by entry count, each entry
//! expiring after its own TTL.
//!
//! moka bounds one measure, the total weight. An entry weighs its size in bytes, but at least
//! `max_bytes / max_entries`: the weight bound then caps the bytes held and the entry count alike.

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
    pub(super) fn new(max_entries: u64, max_bytes: u64) -> Self {
        let floor = u32::try_from(max_bytes / max_entries.max(1)).unwrap_or(u32::MAX).max(1);
        Self {
            entries: Cache::builder()
                .max_capacity(max_bytes)
                .weigher(move |key: &String, value: &Arc<Stored>| weight(key, value).max(floor))
                .expire_after(OwnTtl)
                .build(),
        }
    }

    pub(super) fn get(&self, key: &str) -> Option<CachedAnswer> {
        self.entries.get(key).map(|s| s.answer.clone())
    }

    pub(super) fn put(&self, key: &str, answer: CachedAnswer, ttl: Duration) {
        self.entries.insert(key.to_owned(), Arc::new(Stored { answer, ttl }));
    }
}

/// What an entry holds in memory: its body, key and names, plus a fixed overhead for the
/// structures around them.
fn weight(key: &str, value: &Stored) -> u32 {
    let a = &value.answer;
    let bytes = a.body.len() + key.len() + a.upstream_model.len() + a.content_type.len() + 128;
    u32::try_from(bytes).unwrap_or(u32::MAX)
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
        let store = MemoryStore::new(10, 1024 * 1024);
        store.put("short", answer("{}"), Duration::from_millis(50));
        store.put("long", answer("[]"), Duration::from_secs(60));
        assert_eq!(store.get("short").map(|a| a.body), Some(Bytes::from_static(b"{}")));
        std::thread::sleep(Duration::from_millis(80));
        assert!(store.get("short").is_none());
        assert!(store.get("long").is_some());
    }

    fn big(len: usize) -> CachedAnswer {
        CachedAnswer {
            body: Bytes::from(vec![b' '; len]),
            ..answer("")
        }
    }

    fn held(store: &MemoryStore) -> (u64, u64) {
        store.entries.run_pending_tasks();
        (store.entries.entry_count(), store.entries.weighted_size())
    }

    #[test]
    fn memory_is_bounded_in_bytes() {
        // 1,000 entries allowed, but 1 MiB in all: 100 answers of 64 KiB cannot all stay.
        let store = MemoryStore::new(1_000, 1024 * 1024);
        for i in 0..100 {
            store.put(&format!("k{i}"), big(64 * 1024), Duration::from_secs(60));
        }
        let (count, bytes) = held(&store);
        assert!(bytes <= 1024 * 1024, "{bytes} bytes held");
        assert!(count <= 16, "{count} entries of 64 KiB held in 1 MiB");
    }

    #[test]
    fn the_entry_count_still_bounds_small_answers() {
        let store = MemoryStore::new(10, 1024 * 1024);
        for i in 0..100 {
            store.put(&format!("k{i}"), answer("{}"), Duration::from_secs(60));
        }
        let (count, _) = held(&store);
        assert!(count <= 10, "{count} entries held");
    }
}

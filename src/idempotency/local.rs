//! This replica's claims: one slot per key digest, `Running` (with a `watch` the duplicates wait
//! on) or `Done` until its TTL. Bounded: past `MAX_SLOTS`, expired slots are swept, and if the
//! table is still full a new key runs unclaimed rather than evicting a live one; past
//! `MAX_BYTES` of kept answers, a new answer is kept as `Unreplayable` (a repeat is refused,
//! never run twice).

use std::collections::HashMap;
use std::sync::{Arc, PoisonError};
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::{Begin, Claim, ClaimInner, Done, Key};

/// The most keys kept at once.
const MAX_SLOTS: usize = 100_000;
/// The most answer bytes kept at once.
const MAX_BYTES: usize = 256 * 1024 * 1024;

#[expect(
    clippy::disallowed_types,
    reason = "held for a few instructions, never across an await"
)]
type Slots = std::sync::Mutex<Table>;

#[derive(Default)]
struct Table {
    slots: HashMap<String, Slot>,
    next_id: u64,
    /// Bytes of the answers in `Done` slots.
    bytes: usize,
}

impl Table {
    fn sweep(&mut self, now: Instant) {
        let mut freed = 0;
        self.slots.retain(|_, s| match s {
            Slot::Done { until, done, .. } if *until <= now => {
                freed += weight(done);
                false
            }
            _ => true,
        });
        self.bytes -= freed.min(self.bytes);
    }

    fn remove(&mut self, digest: &str) {
        if let Some(Slot::Done { done, .. }) = self.slots.remove(digest) {
            self.bytes -= weight(&done).min(self.bytes);
        }
    }
}

fn weight(done: &Done) -> usize {
    match done {
        Done::Answer(a) => a.body.len(),
        Done::Unreplayable => 0,
    }
}

enum Slot {
    Running {
        id: u64,
        body: [u8; 32],
        done: watch::Receiver<Option<Done>>,
    },
    Done {
        body: [u8; 32],
        done: Done,
        until: Instant,
    },
}

#[derive(Default)]
pub(super) struct LocalTable {
    table: Arc<Slots>,
}

impl std::fmt::Debug for LocalTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalTable").finish_non_exhaustive()
    }
}

/// What the table said under its lock.
enum Look {
    Decided(Begin),
    Wait(watch::Receiver<Option<Done>>),
}

impl LocalTable {
    pub(super) async fn begin(&self, key: &Key, ttl: Duration, wait: Duration) -> Begin {
        let deadline = Instant::now() + wait;
        loop {
            let mut rx = match self.look(key, ttl) {
                Look::Decided(begin) => return begin,
                Look::Wait(rx) => rx,
            };
            match tokio::time::timeout_at(deadline, rx.wait_for(Option::is_some)).await {
                Err(_) => return Begin::StillRunning,
                Ok(Ok(done)) => {
                    if let Some(done) = done.clone() {
                        return Begin::Replay(done);
                    }
                }
                // The first gave up its claim (a failure, or its client left): claim it anew.
                Ok(Err(_)) => {}
            }
        }
    }

    fn look(&self, key: &Key, ttl: Duration) -> Look {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        match table.slots.get(&key.digest) {
            Some(Slot::Running { body, .. } | Slot::Done { body, .. }) if *body != key.body => {
                let expired = matches!(table.slots.get(&key.digest), Some(Slot::Done { until, .. }) if *until <= now);
                if !expired {
                    return Look::Decided(Begin::Mismatch);
                }
            }
            Some(Slot::Running { done, .. }) => return Look::Wait(done.clone()),
            Some(Slot::Done { done, until, .. }) if *until > now => {
                return Look::Decided(Begin::Replay(done.clone()));
            }
            _ => {}
        }
        // The slot this key had (expired, or another body's expired answer) goes first.
        table.remove(&key.digest);
        if table.slots.len() >= MAX_SLOTS || table.next_id.is_multiple_of(1024) {
            table.sweep(now);
        }
        let (tx, rx) = watch::channel(None);
        let id = table.next_id;
        table.next_id += 1;
        let claim = LocalClaim {
            table: self.table.clone(),
            digest: key.digest.clone(),
            body: key.body,
            id,
            ttl,
            tx: Some(tx),
        };
        if table.slots.len() < MAX_SLOTS {
            table.slots.insert(
                key.digest.clone(),
                Slot::Running {
                    id,
                    body: key.body,
                    done: rx,
                },
            );
        }
        Look::Decided(Begin::Execute(Claim {
            inner: ClaimInner::Local(claim),
        }))
    }
}

pub(super) struct LocalClaim {
    table: Arc<Slots>,
    digest: String,
    body: [u8; 32],
    id: u64,
    ttl: Duration,
    tx: Option<watch::Sender<Option<Done>>>,
}

impl std::fmt::Debug for LocalClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalClaim")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl LocalClaim {
    pub(super) fn finish(mut self, done: Option<Done>) {
        let Some(mut done) = done else { return };
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if table.bytes + weight(&done) > MAX_BYTES {
            table.sweep(Instant::now());
            if table.bytes + weight(&done) > MAX_BYTES {
                done = Done::Unreplayable;
            }
        }
        if matches!(table.slots.get(&self.digest), Some(Slot::Running { id, .. }) if *id == self.id) {
            table.bytes += weight(&done);
            table.slots.insert(
                self.digest.clone(),
                Slot::Done {
                    body: self.body,
                    done: done.clone(),
                    until: Instant::now() + self.ttl,
                },
            );
        }
        drop(table);
        if let Some(tx) = self.tx.take() {
            tx.send_replace(Some(done));
        }
    }
}

impl Drop for LocalClaim {
    /// Unfinished: the slot goes, and the waiters (their sender gone) try to claim it.
    fn drop(&mut self) {
        if self.tx.is_none() {
            return;
        }
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        if matches!(table.slots.get(&self.digest), Some(Slot::Running { id, .. }) if *id == self.id) {
            table.slots.remove(&self.digest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::idempotency::Answer;

    fn answer() -> Done {
        Done::Answer(Arc::new(Answer {
            status: 200,
            headers: Vec::new(),
            body: bytes::Bytes::from_static(b"{}"),
        }))
    }

    const TTL: Duration = Duration::from_secs(60);
    const WAIT: Duration = Duration::from_secs(5);

    #[tokio::test]
    async fn a_duplicate_waits_for_the_first_and_replays_it() {
        let table = LocalTable::default();
        let key = Key::new("c", "key", "k", "/e", b"{}");
        let Begin::Execute(claim) = table.begin(&key, TTL, WAIT).await else {
            panic!("the first executes")
        };
        let waiter = table.begin(&key, TTL, WAIT);
        let finisher = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            claim.finish(Some(answer())).await;
        };
        let (begin, ()) = tokio::join!(waiter, finisher);
        assert!(matches!(begin, Begin::Replay(Done::Answer(_))));
        assert!(matches!(table.begin(&key, TTL, WAIT).await, Begin::Replay(_)));
        let other_body = Key::new("c", "key", "k", "/e", b"{\"a\":1}");
        assert!(matches!(table.begin(&other_body, TTL, WAIT).await, Begin::Mismatch));
    }

    #[tokio::test]
    async fn a_claim_dropped_unfinished_lets_the_next_one_run() {
        let table = LocalTable::default();
        let key = Key::new("c", "key", "k", "/e", b"{}");
        let Begin::Execute(claim) = table.begin(&key, TTL, WAIT).await else {
            panic!("the first executes")
        };
        let waiter = table.begin(&key, TTL, WAIT);
        let dropper = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            claim.finish(None).await;
        };
        let (begin, ()) = tokio::join!(waiter, dropper);
        assert!(matches!(begin, Begin::Execute(_)));
    }

    #[tokio::test]
    async fn expired_answers_give_their_bytes_back() {
        let table = LocalTable::default();
        for n in 0..3 {
            let key = Key::new("c", "key", &n.to_string(), "/e", b"{}");
            let Begin::Execute(claim) = table.begin(&key, Duration::from_millis(10), WAIT).await else {
                panic!("a new key executes")
            };
            claim.finish(Some(answer())).await;
        }
        let bytes = |t: &LocalTable| t.table.lock().unwrap().bytes;
        assert_eq!(bytes(&table), 6);
        tokio::time::sleep(Duration::from_millis(20)).await;
        table.table.lock().unwrap().sweep(Instant::now());
        assert_eq!(bytes(&table), 0);
        assert!(table.table.lock().unwrap().slots.is_empty());
    }

    #[tokio::test]
    async fn an_expired_answer_runs_again() {
        let table = LocalTable::default();
        let key = Key::new("c", "key", "k", "/e", b"{}");
        let Begin::Execute(claim) = table.begin(&key, Duration::from_millis(10), WAIT).await else {
            panic!("the first executes")
        };
        claim.finish(Some(answer())).await;
        tokio::time::sleep(Duration::from_millis(30)).await;
        assert!(matches!(table.begin(&key, TTL, WAIT).await, Begin::Execute(_)));
    }
}

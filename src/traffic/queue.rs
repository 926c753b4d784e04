//! `Gate`: a counting semaphore whose waiters queue by priority, then first come first served,
//! in a queue of bounded size, with a cap that may change while requests hold and wait.
//!
//! Written here rather than taken from crates.io: `priority-semaphore` and `ranked-semaphore`
//! have neither a bounded queue (a full one must refuse at once) nor a cap that a reload can move.
//!
//! A released slot goes straight to the best waiter (its `oneshot` fires under the lock), so a
//! request arriving meanwhile cannot take it, and no wakeup is lost. A waiter that gives up (its
//! wait expired, or its request was dropped) leaves the queue under the same lock; when a slot was
//! handed to it in the meantime, it passes the slot on.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::PoisonError;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::domain::Priority;

/// The gate's lock: taken for a few instructions, never across an await.
#[expect(
    clippy::disallowed_types,
    reason = "held for a few instructions, never across an await"
)]
type StateLock = std::sync::Mutex<State>;

/// Why a request got no slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// The queue already held `queue.size` requests.
    Full,
    /// No slot came free within the wait allowed.
    Timeout,
}

impl Refused {
    /// The `reason` label of `gateway_queue_rejections_total`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Timeout => "timeout",
        }
    }
}

/// One level's slots and waiters.
#[derive(Debug)]
pub struct Gate {
    state: StateLock,
}

#[derive(Debug)]
struct State {
    cap: usize,
    in_use: usize,
    /// Arrival number, so one priority is served in arrival order.
    next: u64,
    /// `Priority` orders `High` first, so the first key is the best waiter.
    waiters: BTreeMap<(Priority, u64), oneshot::Sender<()>>,
}

/// One slot, given back when dropped.
#[derive(Debug)]
pub struct Permit {
    gate: Arc<Gate>,
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.release();
    }
}

/// A waiter's place in the queue; dropping it before it is settled leaves the queue cleanly.
struct Waiter<'a> {
    gate: &'a Arc<Gate>,
    key: (Priority, u64),
    granted: oneshot::Receiver<()>,
    settled: bool,
}

impl Waiter<'_> {
    /// Leaves the queue; `true` when a slot was handed over before it could.
    fn leave(&mut self) -> bool {
        self.settled = true;
        let still_queued = self.gate.lock().waiters.remove(&self.key).is_some();
        !still_queued && self.granted.try_recv().is_ok()
    }
}

impl Drop for Waiter<'_> {
    fn drop(&mut self) {
        if !self.settled && self.leave() {
            self.gate.release();
        }
    }
}

impl Gate {
    /// A gate of `cap` slots.
    pub fn new(cap: usize) -> Self {
        Self {
            state: StateLock::new(State {
                cap,
                in_use: 0,
                next: 0,
                waiters: BTreeMap::new(),
            }),
        }
    }

    /// Takes a slot now, or waits for one in priority order until `deadline`; refuses at once
    /// when `queue_size` requests wait already.
    pub async fn acquire(
        self: &Arc<Self>,
        priority: Priority,
        queue_size: usize,
        deadline: Instant,
    ) -> Result<Permit, Refused> {
        let (key, granted) = {
            let mut s = self.lock();
            if s.waiters.is_empty() && s.in_use < s.cap {
                s.in_use += 1;
                return Ok(self.permit());
            }
            if s.waiters.len() >= queue_size {
                return Err(Refused::Full);
            }
            let key = (priority, s.next);
            s.next += 1;
            let (tx, rx) = oneshot::channel();
            s.waiters.insert(key, tx);
            (key, rx)
        };
        let mut waiter = Waiter {
            gate: self,
            key,
            granted,
            settled: false,
        };
        let deadline = tokio::time::Instant::from_std(deadline);
        match tokio::time::timeout_at(deadline, &mut waiter.granted).await {
            Ok(Ok(())) => {
                waiter.settled = true;
                Ok(self.permit())
            }
            // A slot handed over just as the wait ran out is still a slot.
            _ if waiter.leave() => Ok(self.permit()),
            _ => Err(Refused::Timeout),
        }
    }

    /// Sets the cap; a larger one admits waiters at once, a smaller one lets holders finish.
    pub fn set_cap(&self, cap: usize) {
        let mut s = self.lock();
        if s.cap == cap {
            return;
        }
        s.cap = cap;
        while s.in_use < s.cap {
            let Some((_, tx)) = s.waiters.pop_first() else { break };
            if tx.send(()).is_ok() {
                s.in_use += 1;
            }
        }
    }

    /// (slots in use, cap, requests waiting).
    pub fn load(&self) -> (usize, usize, usize) {
        let s = self.lock();
        (s.in_use, s.cap, s.waiters.len())
    }

    /// Requests waiting now.
    pub fn queued(&self) -> usize {
        self.lock().waiters.len()
    }

    fn permit(self: &Arc<Self>) -> Permit {
        Permit { gate: self.clone() }
    }

    /// A slot comes back: it goes to the best waiter still there, unless the cap was lowered
    /// below what is in use.
    fn release(&self) {
        let mut s = self.lock();
        if s.in_use <= s.cap {
            while let Some((_, tx)) = s.waiters.pop_first() {
                if tx.send(()).is_ok() {
                    return;
                }
            }
        }
        s.in_use = s.in_use.saturating_sub(1);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::future::Future;
    use std::pin::Pin;
    use std::time::Duration;

    use futures_util::FutureExt;

    use super::*;

    type Acquiring = Pin<Box<dyn Future<Output = Result<Permit, Refused>>>>;

    fn later(ms: u64) -> Instant {
        Instant::now() + Duration::from_millis(ms)
    }

    /// An acquire polled once: queued (or refused) before the next line runs; no task is spawned.
    fn queue(gate: &Arc<Gate>, priority: Priority, deadline: Instant) -> Acquiring {
        let gate = gate.clone();
        let mut fut: Acquiring = Box::pin(async move { gate.acquire(priority, 8, deadline).await });
        assert!((&mut fut).now_or_never().is_none(), "it waits");
        fut
    }

    /// The one waiter that holds a slot now, by index (each is polled once, without waiting).
    fn granted(waiters: &mut [Option<Acquiring>]) -> Vec<(usize, Permit)> {
        let mut out = Vec::new();
        for (i, w) in waiters.iter_mut().enumerate() {
            if let Some(fut) = w
                && let Some(result) = fut.now_or_never()
            {
                out.push((i, result.unwrap()));
                *w = None;
            }
        }
        out
    }

    #[tokio::test]
    async fn a_free_slot_is_taken_at_once_and_given_back_on_drop() {
        let gate = Arc::new(Gate::new(2));
        let a = gate.acquire(Priority::Normal, 0, later(0)).await.unwrap();
        let _b = gate.acquire(Priority::Normal, 0, later(0)).await.unwrap();
        assert_eq!(gate.load(), (2, 2, 0));
        assert_eq!(
            gate.acquire(Priority::High, 0, later(1_000)).await.unwrap_err(),
            Refused::Full,
            "no queue: refused at once"
        );
        drop(a);
        assert_eq!(gate.load(), (1, 2, 0));
    }

    #[tokio::test]
    async fn a_released_slot_goes_to_the_highest_priority_then_the_earliest() {
        let gate = Arc::new(Gate::new(1));
        let mut held = gate.acquire(Priority::Normal, 8, later(0)).await.unwrap();
        let arrivals = [Priority::Low, Priority::Normal, Priority::Normal, Priority::High];
        let mut waiters: Vec<Option<Acquiring>> =
            arrivals.iter().map(|p| Some(queue(&gate, *p, later(5_000)))).collect();
        assert_eq!(gate.load(), (1, 1, 4));
        let mut order = Vec::new();
        for _ in 0..arrivals.len() {
            drop(held);
            let mut now = granted(&mut waiters);
            assert_eq!(now.len(), 1, "exactly one waiter gets the released slot");
            let (i, permit) = now.remove(0);
            order.push(i);
            held = permit;
        }
        assert_eq!(order, [3, 1, 2, 0], "high, then the normals in arrival order, then low");
        drop(held);
        assert_eq!(gate.load(), (0, 1, 0));
    }

    #[tokio::test]
    async fn a_full_queue_refuses_and_an_expired_wait_leaves_the_queue() {
        let gate = Arc::new(Gate::new(1));
        let _holder = gate.acquire(Priority::Normal, 1, later(0)).await.unwrap();
        let waiting = {
            let gate = gate.clone();
            async move { gate.acquire(Priority::Normal, 1, later(50)).await.map(drop) }
        };
        let full = async {
            tokio::task::yield_now().await;
            gate.acquire(Priority::High, 1, later(1_000)).await.map(drop)
        };
        let (waited, refused) = tokio::join!(waiting, full);
        assert_eq!(refused, Err(Refused::Full), "one waits already");
        assert_eq!(waited, Err(Refused::Timeout));
        assert_eq!(
            gate.load(),
            (1, 1, 0),
            "the expired waiter left; the holder still holds"
        );
    }

    #[tokio::test]
    async fn a_waiter_dropped_while_waiting_leaves_and_the_next_one_gets_the_slot() {
        let gate = Arc::new(Gate::new(1));
        let holder = gate.acquire(Priority::Normal, 8, later(0)).await.unwrap();
        let dropped = queue(&gate, Priority::High, later(5_000));
        let mut waiters = vec![Some(queue(&gate, Priority::Normal, later(5_000)))];
        drop(dropped);
        assert_eq!(gate.queued(), 1, "the dropped waiter left the queue");
        drop(holder);
        let next = granted(&mut waiters);
        assert_eq!(next.len(), 1);
        drop(next);
        assert_eq!(gate.load(), (0, 1, 0));
    }

    #[tokio::test]
    async fn a_slot_handed_to_a_waiter_that_is_then_dropped_passes_on() {
        let gate = Arc::new(Gate::new(1));
        let holder = gate.acquire(Priority::Normal, 8, later(0)).await.unwrap();
        let first = queue(&gate, Priority::High, later(5_000));
        let mut waiters = vec![Some(queue(&gate, Priority::Normal, later(5_000)))];
        drop(holder);
        assert_eq!(gate.load(), (1, 1, 1), "handed to the first waiter, which never looked");
        drop(first);
        let second = granted(&mut waiters);
        assert_eq!(second.len(), 1, "no slot is lost");
        drop(second);
        assert_eq!(gate.load(), (0, 1, 0));
    }

    #[tokio::test]
    async fn a_raised_cap_admits_waiters_and_a_lowered_one_drains_first() {
        let gate = Arc::new(Gate::new(1));
        let a = gate.acquire(Priority::Normal, 8, later(0)).await.unwrap();
        let mut waiters = vec![Some(queue(&gate, Priority::Normal, later(5_000)))];
        gate.set_cap(2);
        let b = granted(&mut waiters);
        assert_eq!(b.len(), 1, "the raised cap admits the waiter");
        gate.set_cap(1);
        let mut waiters = vec![Some(queue(&gate, Priority::Normal, later(5_000)))];
        drop(a);
        assert_eq!(gate.load(), (1, 1, 1), "still at the lowered cap: the waiter waits");
        assert!(granted(&mut waiters).is_empty());
        drop(b);
        let c = granted(&mut waiters);
        assert_eq!(c.len(), 1);
        drop(c);
        assert_eq!(gate.load(), (0, 1, 0));
    }
}

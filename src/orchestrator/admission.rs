//! A model candidate's concurrency caps, taken in its gate before any breaker is asked: its
//! route target's, its node's, then its provider's (narrowest first, so a request never holds a
//! provider-wide slot while it waits for one node or one route target).
//!
//! The slots travel with the attempt: a non-streamed answer gives them back when the walk leaves
//! the candidate, a stream keeps them until it ends. A candidate with no cap costs three `None`
//! checks: no lock, no allocation.
//!
//! The wait counts against the request's own timeout: it is at most the attempt's budget
//! (`timeout_seconds`, or `first_token_timeout_seconds` for a stream), and the first attempt's
//! deadline starts when the request joined the queue (its budget minus the wait), so a request
//! never takes longer than its timeout because it queued. Retries after it are new attempts and
//! get the whole budget, as they do without a queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::Orchestrator;
use crate::config::PerNode;
use crate::domain::Priority;
use crate::routing::Candidate;
use crate::traffic::{Level, Overload, Permit, Traffic};

/// What the model path needs to queue: the shared gates and this request's place in them.
#[derive(Debug, Clone, Copy)]
pub struct Admission<'a> {
    /// Every capped level's gate.
    pub traffic: &'a Traffic,
    /// This request's priority (the key's or team's, lowered by `x-ai-gateway-priority`).
    pub priority: Priority,
    /// `nodes.max_concurrency_per_node`.
    pub per_node: PerNode,
}

/// The slots one candidate holds, and the queue time its first attempt still has to pay.
#[derive(Debug, Default)]
pub(crate) struct Held {
    slots: Option<Arc<Vec<Permit>>>,
    unpaid_ns: AtomicU64,
}

impl Held {
    /// The slots, for a stream to keep until it ends (`None`: nothing is capped).
    pub fn slots(&self) -> Option<Arc<Vec<Permit>>> {
        self.slots.clone()
    }

    /// The time spent queued, once: the first attempt's deadline pays it, later ones start fresh.
    pub fn take_wait(&self) -> Duration {
        Duration::from_nanos(self.unpaid_ns.swap(0, Ordering::AcqRel))
    }
}

impl Orchestrator<'_> {
    /// Takes `c`'s slots for a request (`stream`: its budget is the first-token timeout), or says
    /// which level refused.
    pub(crate) async fn admit(&self, c: &Candidate, stream: bool) -> Result<Held, Overload> {
        let Some(a) = self.admission else {
            return Ok(Held::default());
        };
        let config = &c.provider.config;
        let node = c.node.as_ref().and_then(|n| Some((n, a.per_node.cap(n.slots)?)));
        if c.target_cap.is_none() && node.is_none() && config.max_concurrency.is_none() {
            return Ok(Held::default());
        }
        let budget = if stream {
            self.routing.first_token_timeout()
        } else {
            self.routing.timeout()
        };
        let queue = config.queue;
        let entered = Instant::now();
        let deadline = entered + queue.max_wait().min(budget);
        let mut levels: Vec<(Level, String, u32)> = Vec::with_capacity(3);
        if let Some(t) = &c.target_cap {
            let name = format!("route {} target {}", t.route, t.index);
            levels.push((Level::Route(t.route.clone(), t.index), name, t.max_concurrency));
        }
        if let Some((n, cap)) = node {
            levels.push((Level::Node(config.id.clone()), format!("node {}", n.url), cap));
        }
        if let Some(cap) = config.max_concurrency {
            // A node candidate carries its pool's settings under the node's id.
            let owner = c.node.as_ref().map_or(&config.id, |n| &n.pool);
            levels.push((Level::Provider(owner.clone()), format!("provider {owner}"), cap));
        }
        let mut slots = Vec::with_capacity(levels.len());
        for (level, name, cap) in levels {
            let got = a
                .traffic
                .acquire(level, || name, cap, a.priority, queue.size, deadline)
                .await;
            match got {
                Ok(permit) => slots.push(permit),
                Err((level, reason)) => {
                    return Err(Overload {
                        level,
                        reason,
                        waited: entered.elapsed(),
                        retry_after: queue.max_wait(),
                    });
                }
            }
        }
        let waited = u64::try_from(entered.elapsed().as_nanos()).unwrap_or(u64::MAX);
        Ok(Held {
            slots: Some(Arc::new(slots)),
            unpaid_ns: AtomicU64::new(waited),
        })
    }
}

//! Concurrency caps with a priority queue, per level: a provider (`max_concurrency`), a GPU node
//! (`nodes.max_concurrency_per_node`) and a named route's target (its `max_concurrency`).
//!
//! Depends on `config` and `domain`. `Traffic` keeps one `queue::Gate` per capped level, made on
//! first use and only for configured ids (so a client can never grow the map or a metric's
//! labels). It lives in `AppState`, outside the `Live` snapshot, so a reload keeps who holds and
//! who waits; `configure` applies the new caps, and every acquire re-reads its level's cap.
//! The orchestrator acquires in a candidate's gate and records nothing: waits and refusals reach
//! the metrics through the `QueueHook` given at start.
//!
//! Caps and queues are per replica: each gateway process counts only its own requests.

pub mod queue;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use dashmap::DashMap;

pub use queue::{Gate, Permit, Refused};

use crate::config::{ProviderConfig, RouteConfig};
use crate::domain::{Priority, ProviderId};

/// One capped level.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Level {
    /// A provider (a node pool counts every node's requests).
    Provider(ProviderId),
    /// A GPU node, by its id `pool/host:port`.
    Node(ProviderId),
    /// A named route's target, by route name and index in its `targets`.
    Route(String, usize),
}

impl Level {
    /// The `level` metrics label: `provider:<id>`, `node:<id>`, `route:<name>:<index>`.
    pub fn label(&self) -> String {
        match self {
            Self::Provider(id) => format!("provider:{id}"),
            Self::Node(id) => format!("node:{id}"),
            Self::Route(name, index) => format!("route:{name}:{index}"),
        }
    }
}

/// What a queue reports to the metrics (`level` is the label, from configured ids only).
#[derive(Debug, Clone, Copy)]
pub enum QueueEvent<'a> {
    /// A level got its gate: its series can exist at zero from now on.
    Opened {
        /// The level's label.
        level: &'a str,
    },
    /// A request got a slot after `waited` (zero when one was free).
    Admitted {
        /// The level's label.
        level: &'a str,
        /// Time spent queued.
        waited: Duration,
    },
    /// A request got none.
    Refused {
        /// The level's label.
        level: &'a str,
        /// `full` or `timeout`.
        reason: &'static str,
    },
}

/// Where queue events go; `startup` points it at the metrics.
pub type QueueHook = Arc<dyn Fn(QueueEvent<'_>) + Send + Sync>;

/// A capped level's gate, with its names.
#[derive(Debug)]
struct Entry {
    gate: Arc<Gate>,
    /// `provider openai`, `node http://gpu-1:8000`, `route chat target 0`.
    name: String,
    label: String,
}

/// A request that got no slot at one level.
#[derive(Debug, Clone)]
pub struct Overload {
    /// The level, as the client's message names it (`provider openai`, `node <url>`,
    /// `route <name> target <n>`).
    pub level: String,
    /// Full, or waited too long.
    pub reason: Refused,
    /// How long it waited.
    pub waited: Duration,
    /// What to tell the client: its queue's longest wait.
    pub retry_after: Duration,
}

impl std::fmt::Display for Overload {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self.reason {
            Refused::Full => write!(f, "{} (queue full)", self.level),
            Refused::Timeout => write!(f, "{} (no slot within {} ms)", self.level, self.waited.as_millis()),
        }
    }
}

/// A level's state for `/provider/status` and the depth gauge.
#[derive(Debug, Clone)]
pub struct LevelLoad {
    /// As messages name it.
    pub name: String,
    /// As the metrics label it.
    pub label: String,
    /// Slots held now.
    pub in_use: usize,
    /// Its cap (`usize::MAX` once a reload removed it).
    pub cap: usize,
    /// Requests waiting.
    pub queued: usize,
}

/// Every capped level's gate.
pub struct Traffic {
    gates: DashMap<Level, Entry>,
    /// Set once a node has a gate: until then the node choice reads no queue (and takes no lock).
    any_node: AtomicBool,
    hook: QueueHook,
}

impl std::fmt::Debug for Traffic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Traffic").field("levels", &self.gates.len()).finish()
    }
}

impl Default for Traffic {
    fn default() -> Self {
        Self::new(Arc::new(|_| {}))
    }
}

/// A removed cap: whoever waits goes, nobody waits again.
const NO_CAP: usize = usize::MAX;

impl Traffic {
    /// No gates yet; `hook` hears every wait and refusal.
    pub fn new(hook: QueueHook) -> Self {
        Self {
            gates: DashMap::new(),
            any_node: AtomicBool::new(false),
            hook,
        }
    }

    /// Takes a slot at `level` (capped at `cap`; `name` says it to a client), waiting in
    /// `priority` order until `deadline` behind at most `queue_size` others.
    pub async fn acquire(
        &self,
        level: Level,
        name: impl FnOnce() -> String,
        cap: u32,
        priority: Priority,
        queue_size: u32,
        deadline: Instant,
    ) -> Result<Permit, (String, Refused)> {
        let (gate, name, label) = self.gate(level, name, usize::try_from(cap).unwrap_or(NO_CAP));
        let entered = Instant::now();
        let queue_size = usize::try_from(queue_size).unwrap_or(usize::MAX);
        match gate.acquire(priority, queue_size, deadline).await {
            Ok(permit) => {
                (self.hook)(QueueEvent::Admitted {
                    level: &label,
                    waited: entered.elapsed(),
                });
                Ok(permit)
            }
            Err(reason) => {
                (self.hook)(QueueEvent::Refused {
                    level: &label,
                    reason: reason.as_str(),
                });
                Err((name, reason))
            }
        }
    }

    /// Applies a configuration's caps to the gates that exist: a changed cap applies at once, a
    /// removed one lets every waiter go. Nodes' caps follow their reports, at each acquire.
    pub fn configure(&self, providers: &[ProviderConfig], routes: &[RouteConfig]) {
        for entry in self.gates.iter() {
            let cap = match entry.key() {
                Level::Provider(id) => providers.iter().find(|p| &p.id == id).and_then(|p| p.max_concurrency),
                Level::Route(name, index) => routes
                    .iter()
                    .find(|r| &r.name == name)
                    .and_then(|r| r.targets.get(*index))
                    .and_then(|t| t.max_concurrency),
                Level::Node(_) => continue,
            };
            entry
                .gate
                .set_cap(cap.map_or(NO_CAP, |c| usize::try_from(c).unwrap_or(NO_CAP)));
        }
    }

    /// Requests waiting at `level` now (0 when it has no gate).
    pub fn queued(&self, level: &Level) -> usize {
        self.gates.get(level).map_or(0, |e| e.gate.queued())
    }

    /// Whether any node has a gate (the node choice reads queues only then).
    pub fn has_nodes(&self) -> bool {
        self.any_node.load(Ordering::Acquire)
    }

    /// Every level's load, by label.
    pub fn levels(&self) -> Vec<LevelLoad> {
        let mut all: Vec<LevelLoad> = self
            .gates
            .iter()
            .map(|e| {
                let (in_use, cap, queued) = e.gate.load();
                LevelLoad {
                    name: e.name.clone(),
                    label: e.label.clone(),
                    in_use,
                    cap,
                    queued,
                }
            })
            .collect();
        all.sort_by(|a, b| a.label.cmp(&b.label));
        all
    }

    fn gate(&self, level: Level, name: impl FnOnce() -> String, cap: usize) -> (Arc<Gate>, String, String) {
        if let Some(e) = self.gates.get(&level) {
            e.gate.set_cap(cap);
            return (e.gate.clone(), e.name.clone(), e.label.clone());
        }
        let label = level.label();
        if matches!(level, Level::Node(_)) {
            self.any_node.store(true, Ordering::Release);
        }
        let e = self.gates.entry(level).or_insert_with(|| {
            (self.hook)(QueueEvent::Opened { level: &label });
            Entry {
                gate: Arc::new(Gate::new(cap)),
                name: name(),
                label: label.clone(),
            }
        });
        e.gate.set_cap(cap);
        (e.gate.clone(), e.name.clone(), e.label.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;

    use super::*;

    #[tokio::test]
    async fn refusals_name_the_level_and_reach_the_hook() {
        let refused = Arc::new(AtomicUsize::new(0));
        let seen = refused.clone();
        let traffic = Traffic::new(Arc::new(move |e| {
            if let QueueEvent::Refused { level, reason } = e {
                assert_eq!((level, reason), ("route:chat:1", "full"));
                seen.fetch_add(1, Ordering::Relaxed);
            }
        }));
        let level = || Level::Route("chat".into(), 1);
        let name = || "route chat target 1".to_owned();
        let soon = Instant::now() + Duration::from_millis(10);
        let held = traffic
            .acquire(level(), name, 1, Priority::Normal, 0, soon)
            .await
            .unwrap();
        let (named, reason) = traffic
            .acquire(level(), name, 1, Priority::High, 0, soon)
            .await
            .unwrap_err();
        assert_eq!((named.as_str(), reason), ("route chat target 1", Refused::Full));
        assert_eq!(refused.load(Ordering::Relaxed), 1);
        let loads = traffic.levels();
        assert_eq!((loads[0].in_use, loads[0].cap, loads[0].queued), (1, 1, 0));
        drop(held);
    }

    #[tokio::test]
    async fn a_reload_that_removes_a_cap_lets_waiters_go() {
        let traffic = Traffic::default();
        let level = || Level::Provider(ProviderId::new("openai"));
        let far = Instant::now() + Duration::from_secs(5);
        let name = || "provider openai".to_owned();
        let _held = traffic
            .acquire(level(), name, 1, Priority::Normal, 8, far)
            .await
            .unwrap();
        let waiting = traffic.acquire(level(), name, 1, Priority::Normal, 8, far);
        let reload = async {
            while traffic.queued(&level()) == 0 {
                tokio::task::yield_now().await;
            }
            traffic.configure(&[], &[]);
        };
        let (waited, ()) = tokio::join!(waiting, reload);
        assert!(waited.is_ok());
    }
}

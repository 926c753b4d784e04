//! Spend: the price of every request and budgets that hold across replicas.
//!
//! `book` finds a provider's model's price (configuration, then `pricing.url`, then the
//! catalogue); `models_dev` parses what `pricing.url` serves into those fetched prices; `budgets`
//! says which budgets a request counts toward and the most it may cost; `period` turns a budget's
//! period into its calendar window; `counters` reserves and settles in Redis with one script per
//! call, or in this process while Redis cannot be reached.
//! Depends on `config`, `domain` and `limits` (the Redis link). The request path awaits one
//! bounded Redis call to reserve; settling goes through a queue the settle task drains.

mod book;
mod budgets;
mod counters;
mod models_dev;
mod period;

pub use book::{Fetched, FetchedPrices, PriceBook};
pub use budgets::{Applied, BudgetBook, CounterKey, NANOS, Subject, max_cost, to_nanos};
pub use counters::{Counters, Hold, Refused, Seeds};
pub use models_dev::{DocumentError, PROVIDER_IDS, Parsed, parse as parse_models_dev};
pub use period::{Window, window};

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::mpsc;

/// Settlements waiting for the settle task before new ones are kept in this process instead.
const SETTLE_QUEUE: usize = 10_000;

/// The settle queue's receiver until the settle task takes it.
#[expect(
    clippy::disallowed_types,
    reason = "locked once, by the settle task, never across an await"
)]
type ReceiverSlot = std::sync::Mutex<Option<mpsc::Receiver<Settlement>>>;

/// A request's cost to add to its budgets, replacing its reservation.
#[derive(Debug)]
pub struct Settlement {
    /// The budgets the reservation was made on (or a provider's, charged without one).
    pub applied: Vec<Applied>,
    /// The reservation, when one was made.
    pub hold: Option<Hold>,
    /// The real cost, nano-USD (0 for a failed request: the reservation is released).
    pub cost: i64,
}

/// A threshold a settlement crossed: `budget.threshold` is sent once per period and threshold.
#[derive(Debug, Clone)]
pub struct Crossing {
    /// The budget and its period.
    pub applied: Applied,
    /// The fraction of the limit crossed.
    pub threshold: f64,
    /// Spent after the settlement, nano-USD.
    pub spent: i64,
}

/// The gateway's spend state, shared by every `Live` snapshot.
#[derive(Debug)]
pub struct Spend {
    /// Budget counters.
    pub counters: Counters,
    /// Prices fetched from `pricing.url`.
    pub fetched: Fetched,
    /// What the last `pricing.url` fetch came to, for `/health`.
    pub fetch_status: ArcSwap<FetchStatus>,
    /// Added to the wall clock: tests move time to the next period with it.
    clock_offset_ms: AtomicI64,
    settle_tx: mpsc::Sender<Settlement>,
    settle_rx: ReceiverSlot,
}

/// A budget's current period, as the admin API and `/api/v1/me` show it.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct BudgetStatus {
    /// Spent so far this period, USD.
    pub spent_usd: f64,
    /// Held for requests still running, USD.
    pub reserved_usd: f64,
    /// What is left, USD (never below zero).
    pub remaining_usd: f64,
    /// When the period began, RFC 3339.
    pub period_start: String,
    /// When it ends, RFC 3339; null for a `total` budget.
    pub period_end: Option<String>,
}

fn rfc3339(ms: i64) -> String {
    jiff::Timestamp::from_millisecond(ms).map_or_else(|_| String::new(), |t| t.to_string())
}

/// The state of `pricing.url`.
#[derive(Debug, Clone, Default, serde::Serialize, utoipa::ToSchema)]
pub struct FetchStatus {
    /// The configured URL, when one is.
    pub url: Option<String>,
    /// When prices were last fetched and accepted (or loaded from the database), epoch ms.
    pub fetched_at_ms: Option<i64>,
    /// Models priced by the fetched document.
    pub models: usize,
    /// Why the last fetch failed; the previous prices stay in use.
    pub last_error: Option<String>,
}

impl Spend {
    /// Spend state over `counters`.
    pub fn new(counters: Counters) -> Self {
        let (settle_tx, settle_rx) = mpsc::channel(SETTLE_QUEUE);
        Self {
            counters,
            fetched: Arc::new(ArcSwap::from_pointee(FetchedPrices::new())),
            fetch_status: ArcSwap::from_pointee(FetchStatus::default()),
            clock_offset_ms: AtomicI64::new(0),
            settle_tx,
            settle_rx: ReceiverSlot::new(Some(settle_rx)),
        }
    }

    /// Now, epoch milliseconds, on the budgets' clock.
    pub fn now_ms(&self) -> i64 {
        let wall = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        wall.saturating_add(self.clock_offset_ms.load(Ordering::Relaxed))
    }

    /// `a`'s state now (Redis when it answers, else this replica's counters).
    pub async fn status(&self, a: &Applied) -> BudgetStatus {
        let (spent, held) = self.counters.status(a, self.now_ms()).await;
        BudgetStatus {
            spent_usd: spent as f64 / NANOS,
            reserved_usd: held as f64 / NANOS,
            remaining_usd: (a.limit - spent - held).max(0) as f64 / NANOS,
            period_start: rfc3339(a.window.start_ms),
            period_end: a.window.end_ms.map(rfc3339),
        }
    }

    /// A configured budget's state now; `None` for a budget kept per subject (no `name`, other
    /// than `gateway`), which has one counter per key, session, ...
    pub async fn budget_status(&self, budget: &crate::config::BudgetConfig) -> Option<BudgetStatus> {
        let name = match (&budget.name, budget.scope) {
            (Some(n), _) => n.clone(),
            (None, crate::config::BudgetScope::Gateway) => String::new(),
            (None, _) => return None,
        };
        Some(self.status(&BudgetBook::one(budget, &name, self.now_ms())).await)
    }

    /// Moves the budgets' clock (tests: "the next day").
    pub fn shift_clock(&self, by_ms: i64) {
        self.clock_offset_ms.fetch_add(by_ms, Ordering::Relaxed);
    }

    /// Hands a settlement to the settle task without waiting; a full queue settles it in this
    /// process at once (Redis then keeps the reservation until it expires).
    pub fn settle(&self, s: Settlement) {
        if let Err(mpsc::error::TrySendError::Full(s) | mpsc::error::TrySendError::Closed(s)) =
            self.settle_tx.try_send(s)
        {
            self.counters
                .fallbacks
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let _ = self.counters.settle_now_local(&s.applied, s.hold.as_ref(), s.cost);
        }
    }

    /// The settle task: drains the queue into the counters and hands every threshold crossed to
    /// `on_crossing`. Runs until the queue closes; started once by `startup`.
    pub async fn run_settler(self: Arc<Self>, on_crossing: impl Fn(Crossing) + Send + 'static) {
        let rx = self.settle_rx.lock().ok().and_then(|mut r| r.take());
        let Some(mut rx) = rx else { return };
        while let Some(s) = rx.recv().await {
            let now = self.now_ms();
            let spent = self.counters.settle(&s.applied, s.hold.as_ref(), s.cost, now).await;
            for (a, (before, after)) in s.applied.iter().zip(spent) {
                for &t in &a.budget.alert_at {
                    let mark = (a.limit as f64 * t).ceil() as i64;
                    if before < mark && after >= mark {
                        on_crossing(Crossing {
                            applied: a.clone(),
                            threshold: t,
                            spent: after,
                        });
                    }
                }
            }
        }
    }
}

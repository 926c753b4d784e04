//! Per-provider circuit breakers: failsafe's state machine behind a small trait of ours.
//!
//! CLOSED → OPEN after `failure_threshold` consecutive failed attempts; after
//! `reset_timeout_seconds` HALF_OPEN admits exactly one probe (failsafe admits everyone, so the
//! probe gate is ours); probe success → CLOSED, failure → OPEN for another reset period.
//! Each configured provider has one, and so does each GPU node (made on first use).

use std::collections::HashMap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use failsafe::backoff::{Constant, constant};
use failsafe::failure_policy::{ConsecutiveFailures, consecutive_failures};
use failsafe::{Config, Instrument, StateMachine};

use crate::config::BreakerSettings;
use crate::domain::ProviderId;

/// A breaker's state, as `/health` reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow.
    Closed,
    /// Calls are refused until the reset timeout passes.
    Open,
    /// One probe may pass.
    HalfOpen,
}

impl BreakerState {
    /// `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::Open => "open",
            Self::HalfOpen => "half_open",
        }
    }
}

/// Whether a call may go to the provider.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// No: the breaker is open (or its one probe is already out).
    Denied,
    /// Yes, as an ordinary call.
    Normal,
    /// Yes, as the single half-open probe.
    Probe,
}

/// What the orchestrator needs from a breaker; failsafe is one implementation.
pub trait CircuitBreaker: Send + Sync + fmt::Debug {
    /// Asks to make one call.
    fn admit(&self) -> Admission;
    /// Reports how an admitted call went (`failed` as decided by `classify`).
    fn record(&self, admission: Admission, failed: bool);
    /// Releases an admission whose call never finished (the request was dropped).
    fn abandon(&self, admission: Admission);
    /// Current state.
    fn state(&self) -> BreakerState;
    /// How long until a call may be admitted again, when denied.
    fn retry_after(&self) -> Option<Duration>;
}

/// An admitted call. Report it with `success` or `failure`; dropping it unreported (a cancelled
/// request) frees the half-open probe slot without judging the provider.
pub struct Permit<'a> {
    breaker: &'a dyn CircuitBreaker,
    admission: Admission,
    reported: bool,
}

impl<'a> Permit<'a> {
    /// Asks `breaker` for a permit; `None` when denied.
    pub fn acquire(breaker: &'a dyn CircuitBreaker) -> Option<Self> {
        match breaker.admit() {
            Admission::Denied => None,
            admission => Some(Self {
                breaker,
                admission,
                reported: false,
            }),
        }
    }

    /// Reports the call's result.
    pub fn finish(mut self, failed: bool) {
        self.reported = true;
        self.breaker.record(self.admission, failed);
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if !self.reported {
            self.breaker.abandon(self.admission);
        }
    }
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// Told of every state change (`open`, `half_open`, `closed`); `startup` points it at metrics.
pub type TransitionHook = Arc<dyn Fn(&'static str) + Send + Sync>;

/// Mirrors failsafe's private state through its `Instrument` callbacks.
struct Mirror {
    state: AtomicU8,
    opened_at_ms: AtomicU64,
    epoch: Instant,
    hook: TransitionHook,
}

impl fmt::Debug for Mirror {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mirror")
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl Mirror {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.epoch.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// The handle failsafe owns; the breaker keeps another to read the state.
#[derive(Debug, Clone)]
struct MirrorHandle(Arc<Mirror>);

impl Instrument for MirrorHandle {
    fn on_call_rejected(&self) {}
    fn on_open(&self) {
        self.0.opened_at_ms.store(self.0.now_ms(), Ordering::Release);
        self.0.state.store(OPEN, Ordering::Release);
        (self.0.hook)("open");
    }
    fn on_half_open(&self) {
        self.0.state.store(HALF_OPEN, Ordering::Release);
        (self.0.hook)("half_open");
    }
    fn on_closed(&self) {
        // failsafe reports `closed` once at construction; only real transitions reach the hook.
        if self.0.state.swap(CLOSED, Ordering::AcqRel) != CLOSED {
            (self.0.hook)("closed");
        }
    }
}

type Machine = StateMachine<ConsecutiveFailures<Constant>, MirrorHandle>;

/// The failsafe-backed breaker.
pub struct FailsafeBreaker {
    machine: Machine,
    mirror: Arc<Mirror>,
    probe_out: AtomicBool,
    reset: Duration,
}

impl fmt::Debug for FailsafeBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailsafeBreaker").field("state", &self.state()).finish()
    }
}

impl FailsafeBreaker {
    /// A closed breaker with the configured threshold and reset period.
    pub fn new(settings: &BreakerSettings, hook: TransitionHook) -> Self {
        let mirror = Arc::new(Mirror {
            state: AtomicU8::new(CLOSED),
            opened_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            hook,
        });
        let reset = settings.reset_timeout();
        let policy = consecutive_failures(settings.failure_threshold.max(1), constant(reset));
        let machine = Config::new()
            .failure_policy(policy)
            .instrument(MirrorHandle(mirror.clone()))
            .build();
        Self {
            machine,
            mirror,
            probe_out: AtomicBool::new(false),
            reset,
        }
    }

    fn open_remaining(&self) -> Duration {
        let opened = self.mirror.opened_at_ms.load(Ordering::Acquire);
        let elapsed = Duration::from_millis(self.mirror.now_ms().saturating_sub(opened));
        self.reset.saturating_sub(elapsed)
    }
}

impl CircuitBreaker for FailsafeBreaker {
    fn admit(&self) -> Admission {
        if !self.machine.is_call_permitted() {
            return Admission::Denied;
        }
        if self.mirror.state.load(Ordering::Acquire) != HALF_OPEN {
            return Admission::Normal;
        }
        match self
            .probe_out
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
        {
            Ok(_) => Admission::Probe,
            Err(_) => Admission::Denied,
        }
    }

    fn record(&self, admission: Admission, failed: bool) {
        if failed {
            self.machine.on_error();
        } else {
            self.machine.on_success();
        }
        if admission == Admission::Probe {
            self.probe_out.store(false, Ordering::Release);
        }
    }

    fn abandon(&self, admission: Admission) {
        if admission == Admission::Probe {
            self.probe_out.store(false, Ordering::Release);
        }
    }

    fn state(&self) -> BreakerState {
        match self.mirror.state.load(Ordering::Acquire) {
            CLOSED => BreakerState::Closed,
            // failsafe moves to half-open lazily, on the next call; report what a call would see.
            OPEN if self.open_remaining().is_zero() => BreakerState::HalfOpen,
            OPEN => BreakerState::Open,
            _ => BreakerState::HalfOpen,
        }
    }

    fn retry_after(&self) -> Option<Duration> {
        match self.state() {
            BreakerState::Closed => None,
            BreakerState::Open => Some(self.open_remaining()),
            BreakerState::HalfOpen => Some(Duration::from_secs(1)),
        }
    }
}

/// Gives a new breaker its transition hook; `startup` points it at metrics.
pub type HookFactory = Arc<dyn Fn(&ProviderId) -> TransitionHook + Send + Sync>;

/// One breaker per provider id; carried across config swaps so state survives a reload.
///
/// Configured providers get theirs when the set is built; GPU nodes, which come and go at run
/// time, get theirs on first use (`get_or_create`), with the same settings and hook.
#[derive(Clone, Default)]
pub struct BreakerSet {
    breakers: HashMap<ProviderId, Arc<dyn CircuitBreaker>>,
    created: Arc<Created>,
}

/// Breakers made on first use, shared by every snapshot built from the same start.
#[derive(Default)]
struct Created {
    map: ArcSwap<HashMap<ProviderId, Arc<dyn CircuitBreaker>>>,
    settings: BreakerSettings,
    hook: Option<HookFactory>,
}

impl fmt::Debug for BreakerSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerSet")
            .field("providers", &self.breakers.len())
            .field("created", &self.created.map.load().len())
            .finish()
    }
}

impl BreakerSet {
    /// Breakers for `ids`, reusing those in `previous` when present; `hook` gives each new
    /// breaker its transition hook.
    pub fn build<'a>(
        ids: impl IntoIterator<Item = &'a ProviderId>,
        settings: &BreakerSettings,
        previous: Option<&BreakerSet>,
        hook: HookFactory,
    ) -> Self {
        let breakers = ids
            .into_iter()
            .map(|id| {
                let existing = previous.and_then(|p| p.breakers.get(id)).cloned();
                let breaker = existing.unwrap_or_else(|| Arc::new(FailsafeBreaker::new(settings, hook(id))));
                (id.clone(), breaker)
            })
            .collect();
        let created = previous.map_or_else(
            || {
                Arc::new(Created {
                    map: ArcSwap::default(),
                    settings: settings.clone(),
                    hook: Some(hook.clone()),
                })
            },
            |p| p.created.clone(),
        );
        Self { breakers, created }
    }

    /// The breaker of `id`, if it has one yet.
    pub fn get(&self, id: &ProviderId) -> Option<Arc<dyn CircuitBreaker>> {
        self.breakers
            .get(id)
            .cloned()
            .or_else(|| self.created.map.load().get(id).cloned())
    }

    /// The breaker of `id`, made now (closed) when it has none yet.
    pub fn get_or_create(&self, id: &ProviderId) -> Arc<dyn CircuitBreaker> {
        if let Some(b) = self.get(id) {
            return b;
        }
        let c = &self.created;
        let fresh: Arc<dyn CircuitBreaker> = Arc::new(FailsafeBreaker::new(
            &c.settings,
            c.hook
                .as_ref()
                .map_or_else(|| Arc::new(|_| {}) as TransitionHook, |h| h(id)),
        ));
        c.map.rcu(|map| {
            let mut next = (**map).clone();
            next.entry(id.clone()).or_insert_with(|| fresh.clone());
            next
        });
        // Another caller may have won the race; use whichever breaker is in the map.
        c.map.load().get(id).cloned().unwrap_or(fresh)
    }

    /// The provider's state (`closed` for an unknown id).
    pub fn state(&self, id: &ProviderId) -> BreakerState {
        self.get(id).map_or(BreakerState::Closed, |b| b.state())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, reset_ms: u64) -> FailsafeBreaker {
        let settings = BreakerSettings {
            failure_threshold: threshold,
            reset_timeout_seconds: reset_ms as f64 / 1000.0,
        };
        FailsafeBreaker::new(&settings, Arc::new(|_| {}))
    }

    fn fail(b: &FailsafeBreaker) {
        Permit::acquire(b).unwrap().finish(true);
    }

    #[test]
    fn opens_after_threshold_consecutive_failures() {
        let b = breaker(3, 60_000);
        fail(&b);
        fail(&b);
        assert_eq!(b.state(), BreakerState::Closed);
        fail(&b);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(Permit::acquire(&b).is_none());
        assert!(b.retry_after().unwrap() > Duration::from_secs(59));
    }

    #[test]
    fn a_success_resets_the_count() {
        let b = breaker(2, 60_000);
        fail(&b);
        Permit::acquire(&b).unwrap().finish(false);
        fail(&b);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn half_open_admits_exactly_one_probe_then_closes_on_success() {
        let b = breaker(1, 50);
        fail(&b);
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(b.state(), BreakerState::HalfOpen);
        let probe = Permit::acquire(&b).expect("one probe");
        assert!(Permit::acquire(&b).is_none(), "a second caller waits for the probe");
        probe.finish(false);
        assert_eq!(b.state(), BreakerState::Closed);
    }

    #[test]
    fn failed_probe_reopens_for_another_period() {
        let b = breaker(1, 50);
        fail(&b);
        std::thread::sleep(Duration::from_millis(60));
        Permit::acquire(&b).unwrap().finish(true);
        assert_eq!(b.state(), BreakerState::Open);
        assert!(Permit::acquire(&b).is_none());
    }

    #[test]
    fn abandoned_probe_frees_the_slot() {
        let b = breaker(1, 50);
        fail(&b);
        std::thread::sleep(Duration::from_millis(60));
        drop(Permit::acquire(&b).unwrap());
        assert!(Permit::acquire(&b).is_some());
    }
}

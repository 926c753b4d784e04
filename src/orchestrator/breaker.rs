//! Circuit breakers: one per provider (and GPU node), and one per declared model of a provider.
//!
//! CLOSED → OPEN after `failure_threshold` consecutive failed attempts (with `min_callers` > 1:
//! that many failures within `reset_timeout_seconds`, from at least `min_callers` distinct
//! callers, so one client's bodies or long generations cannot open a breaker for every tenant);
//! after `reset_timeout_seconds` HALF_OPEN admits exactly one probe (failsafe admits everyone,
//! so the probe gate is ours; failsafe's machine is opened by one error, the counting is ours);
//! probe success → CLOSED,
//! failure → OPEN for another reset period. A permit released without a verdict (the request was
//! dropped, or the attempt never judged the upstream) frees the probe slot and changes nothing.
//!
//! Which breaker a failure counts on is `classify`'s call: the provider's for what is the
//! provider's (connection refused, TLS, DNS, connect timeout, its credentials), the model's for
//! what is the model's (429, 5xx, first-token timeout), when the model is declared.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use failsafe::backoff::{Constant, constant};
use failsafe::failure_policy::{ConsecutiveFailures, consecutive_failures};
use failsafe::{Config, Instrument, StateMachine};

use crate::config::{BreakerSettings, ProviderConfig};
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

/// What the orchestrator needs from a breaker.
pub trait CircuitBreaker: Send + Sync + fmt::Debug {
    /// Asks to make one call.
    fn admit(&self) -> Admission;
    /// Reports how an admitted call went (`failed` as decided by `classify`); `caller` is who made
    /// it (`None`: unknown, counted as a caller of its own).
    fn record(&self, admission: Admission, failed: bool, caller: Option<&str>);
    /// Releases an admission whose call never judged the upstream (the request was dropped, or
    /// the attempt is not the upstream's doing).
    fn abandon(&self, admission: Admission);
    /// Current state.
    fn state(&self) -> BreakerState;
    /// How long until a call may be admitted again, when denied.
    fn retry_after(&self) -> Option<Duration>;
}

/// An admitted call. Report it with `finish`; dropping it unreported (a cancelled request, an
/// attempt that says nothing about the upstream) frees the half-open probe slot without judging.
pub(super) struct Permit<'a> {
    breaker: &'a dyn CircuitBreaker,
    admission: Admission,
    reported: bool,
}

impl<'a> Permit<'a> {
    /// Asks `breaker` for a permit; `None` when denied.
    pub(super) fn acquire(breaker: &'a dyn CircuitBreaker) -> Option<Self> {
        match breaker.admit() {
            Admission::Denied => None,
            admission => Some(Self {
                breaker,
                admission,
                reported: false,
            }),
        }
    }

    /// Reports the call's result, from an unknown caller.
    #[cfg(test)]
    fn finish(self, failed: bool) {
        self.finish_for(failed, None);
    }

    /// Reports the call's result, made for `caller`.
    pub(super) fn finish_for(mut self, failed: bool, caller: Option<&str>) {
        self.reported = true;
        self.breaker.record(self.admission, failed, caller);
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

/// The most distinct callers one breaker remembers; past it the oldest is forgotten.
const MAX_CALLERS: usize = 1024;

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

/// The tally's lock: taken for a few instructions in synchronous code, never across an await.
#[expect(
    clippy::disallowed_types,
    reason = "held for a few instructions, never across an await"
)]
type TallyLock = std::sync::Mutex<Tally>;

/// The failures counted since the last success.
#[derive(Debug, Default)]
struct Tally {
    /// When each counted failure happened (the last `failure_threshold`).
    failures: VecDeque<Instant>,
    /// Each caller's latest counted failure; an unknown caller gets a key of its own.
    callers: HashMap<Arc<str>, Instant>,
    anonymous: u64,
}

/// failsafe's state machine, opened by one `on_error`; when to call it is decided here, from
/// the failures tallied (threshold, and with `min_callers` > 1 the callers within a reset period).
pub struct FailsafeBreaker {
    machine: Machine,
    mirror: Arc<Mirror>,
    probe_out: AtomicBool,
    /// Whether `tally` holds failures (a success then has something to clear).
    dirty: AtomicBool,
    tally: TallyLock,
    threshold: usize,
    min_callers: usize,
    reset: Duration,
}

impl fmt::Debug for FailsafeBreaker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FailsafeBreaker").field("state", &self.state()).finish()
    }
}

impl FailsafeBreaker {
    /// A closed breaker with the configured threshold, reset period and caller spread.
    pub fn new(settings: &BreakerSettings, hook: TransitionHook) -> Self {
        let mirror = Arc::new(Mirror {
            state: AtomicU8::new(CLOSED),
            opened_at_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            hook,
        });
        let reset = settings.reset_timeout();
        // One error opens failsafe's machine: the threshold is counted in `tally`.
        let policy = consecutive_failures(1, constant(reset));
        let machine = Config::new()
            .failure_policy(policy)
            .instrument(MirrorHandle(mirror.clone()))
            .build();
        Self {
            machine,
            mirror,
            probe_out: AtomicBool::new(false),
            dirty: AtomicBool::new(false),
            tally: TallyLock::new(Tally::default()),
            threshold: usize::try_from(settings.failure_threshold.max(1)).unwrap_or(usize::MAX),
            min_callers: usize::try_from(settings.min_callers.max(1)).unwrap_or(usize::MAX),
            reset,
        }
    }

    fn tally(&self) -> MutexGuard<'_, Tally> {
        // A panic while holding the lock leaves counts, never a broken invariant: keep going.
        self.tally.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn open_remaining(&self) -> Duration {
        let opened = self.mirror.opened_at_ms.load(Ordering::Acquire);
        let elapsed = Duration::from_millis(self.mirror.now_ms().saturating_sub(opened));
        self.reset.saturating_sub(elapsed)
    }

    fn clear(&self, tally: &mut Tally) {
        tally.failures.clear();
        tally.callers.clear();
        self.dirty.store(false, Ordering::Release);
    }

    /// Counts one failure while closed; opens when the threshold (and caller spread) is reached.
    fn count_failure(&self, caller: Option<&str>) {
        let now = Instant::now();
        let mut tally = self.tally();
        if self.mirror.state.load(Ordering::Acquire) != CLOSED {
            // A call admitted before the breaker opened, ending late: it changes nothing.
            return;
        }
        let reset = self.reset;
        if self.min_callers > 1 {
            // The spread across callers is judged within one reset period.
            while tally.failures.front().is_some_and(|t| now.duration_since(*t) > reset) {
                tally.failures.pop_front();
            }
            tally.callers.retain(|_, t| now.duration_since(*t) <= reset);
            let key: Arc<str> = match caller {
                Some(c) => Arc::from(c),
                None => {
                    tally.anonymous = tally.anonymous.wrapping_add(1);
                    Arc::from(format!("\0anonymous-{}", tally.anonymous))
                }
            };
            if tally.callers.len() >= MAX_CALLERS
                && !tally.callers.contains_key(&key)
                && let Some(oldest) = tally.callers.iter().min_by_key(|(_, t)| **t).map(|(k, _)| k.clone())
            {
                tally.callers.remove(&oldest);
            }
            tally.callers.insert(key, now);
        }
        tally.failures.push_back(now);
        if tally.failures.len() > self.threshold {
            tally.failures.pop_front();
        }
        self.dirty.store(true, Ordering::Release);
        if tally.failures.len() >= self.threshold && (self.min_callers <= 1 || tally.callers.len() >= self.min_callers)
        {
            self.clear(&mut tally);
            self.machine.on_error();
        }
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

    fn record(&self, admission: Admission, failed: bool, caller: Option<&str>) {
        match admission {
            Admission::Probe => {
                let mut tally = self.tally();
                self.clear(&mut tally);
                if failed {
                    self.machine.on_error();
                } else {
                    self.machine.on_success();
                }
                self.probe_out.store(false, Ordering::Release);
            }
            Admission::Normal if failed => self.count_failure(caller),
            Admission::Normal => {
                if self.dirty.load(Ordering::Acquire) {
                    let mut tally = self.tally();
                    self.clear(&mut tally);
                }
            }
            Admission::Denied => {}
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

/// One breaker per provider id, and one per declared model; carried across config swaps so state
/// survives a reload.
///
/// Configured providers get theirs when the set is built; GPU nodes, which come and go at run
/// time, and declared models get theirs on first use (`get_or_create`, `model`), with the same
/// settings and hook.
#[derive(Clone, Default)]
pub struct BreakerSet {
    breakers: HashMap<ProviderId, Arc<dyn CircuitBreaker>>,
    /// Each configured provider's declared models (none for a `"*"` provider).
    declared: HashMap<ProviderId, Arc<[String]>>,
    created: Arc<Created>,
}

/// A provider's declared model.
type ModelKey = (ProviderId, String);

/// Breakers made on first use, shared by every snapshot built from the same start: GPU nodes'
/// and declared models'.
#[derive(Default)]
struct Created {
    map: ArcSwap<HashMap<ProviderId, Arc<dyn CircuitBreaker>>>,
    models: ArcSwap<HashMap<ModelKey, Arc<dyn CircuitBreaker>>>,
    settings: BreakerSettings,
    hook: Option<HookFactory>,
}

impl fmt::Debug for BreakerSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BreakerSet")
            .field("providers", &self.breakers.len())
            .field("created", &self.created.map.load().len())
            .field("models", &self.created.models.load().len())
            .finish()
    }
}

impl BreakerSet {
    /// Breakers for `providers`, reusing those in `previous` when present; `hook` gives each new
    /// breaker its transition hook.
    pub fn build<'a>(
        providers: impl IntoIterator<Item = &'a ProviderConfig>,
        settings: &BreakerSettings,
        previous: Option<&BreakerSet>,
        hook: HookFactory,
    ) -> Self {
        let mut declared = HashMap::new();
        let breakers = providers
            .into_iter()
            .map(|p| {
                let id = &p.id;
                if !p.serves_any_model() && !p.models.is_empty() {
                    declared.insert(id.clone(), Arc::from(p.models.clone()));
                }
                let existing = previous.and_then(|prev| prev.breakers.get(id)).cloned();
                let breaker = existing.unwrap_or_else(|| Arc::new(FailsafeBreaker::new(settings, hook(id))));
                (id.clone(), breaker)
            })
            .collect();
        let created = previous.map_or_else(
            || {
                Arc::new(Created {
                    map: ArcSwap::default(),
                    models: ArcSwap::default(),
                    settings: settings.clone(),
                    hook: Some(hook.clone()),
                })
            },
            |p| p.created.clone(),
        );
        Self {
            breakers,
            declared,
            created,
        }
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

    /// The provider's state (`closed` for an unknown id), as `/health`, `/readyz`, routes and
    /// `gateway_breaker_state` see it: its own breaker's (connections, TLS, DNS, credentials, and
    /// for a `"*"` provider everything), or, while that one is closed, `open` when every model it
    /// declares has an open breaker (it can serve nothing), `half_open` when each of them is open
    /// or half-open. One model's open breaker alone leaves the provider `closed`.
    pub fn state(&self, id: &ProviderId) -> BreakerState {
        let own = self.get(id).map_or(BreakerState::Closed, |b| b.state());
        if own != BreakerState::Closed {
            return own;
        }
        let Some(declared) = self.declared.get(id) else {
            return own;
        };
        let models = self.created.models.load();
        let mut all_open = true;
        for m in declared.iter() {
            match models.get(&(id.clone(), m.clone())).map(|b| b.state()) {
                None | Some(BreakerState::Closed) => return BreakerState::Closed,
                Some(BreakerState::HalfOpen) => all_open = false,
                Some(BreakerState::Open) => {}
            }
        }
        if all_open {
            BreakerState::Open
        } else {
            BreakerState::HalfOpen
        }
    }

    /// The breaker of `model` on `provider`, made now (closed) when it has none yet; `None` when
    /// the model is not one the provider declares (a `"*"` provider breaks per provider only).
    pub fn model(&self, provider: &ProviderConfig, model: &str) -> Option<Arc<dyn CircuitBreaker>> {
        if provider.serves_any_model() || !provider.models.iter().any(|m| m == model) {
            return None;
        }
        let c = &self.created;
        let key = (provider.id.clone(), model.to_owned());
        if let Some(b) = c.models.load().get(&key) {
            return Some(b.clone());
        }
        // A model's transitions count as its provider's (`gateway_breaker_transitions_total`).
        let hook = c
            .hook
            .as_ref()
            .map_or_else(|| Arc::new(|_| {}) as TransitionHook, |h| h(&provider.id));
        let fresh: Arc<dyn CircuitBreaker> = Arc::new(FailsafeBreaker::new(&c.settings, hook));
        c.models.rcu(|map| {
            let mut next = (**map).clone();
            next.entry(key.clone()).or_insert_with(|| fresh.clone());
            next
        });
        Some(c.models.load().get(&key).cloned().unwrap_or(fresh))
    }

    /// The state of `model`'s breaker on `id` (`closed` when it has none yet).
    pub fn model_state(&self, id: &ProviderId, model: &str) -> BreakerState {
        self.created
            .models
            .load()
            .get(&(id.clone(), model.to_owned()))
            .map_or(BreakerState::Closed, |b| b.state())
    }

    /// The state of each model breaker of `id` made so far, by model name.
    pub fn model_states(&self, id: &ProviderId) -> Vec<(String, BreakerState)> {
        let mut states: Vec<_> = self
            .created
            .models
            .load()
            .iter()
            .filter(|((p, _), _)| p == id)
            .map(|((_, m), b)| (m.clone(), b.state()))
            .collect();
        states.sort_by(|a, b| a.0.cmp(&b.0));
        states
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(threshold: u32, reset_ms: u64) -> FailsafeBreaker {
        spread(threshold, reset_ms, 1)
    }

    fn spread(threshold: u32, reset_ms: u64, min_callers: u32) -> FailsafeBreaker {
        let settings = BreakerSettings {
            failure_threshold: threshold,
            reset_timeout_seconds: reset_ms as f64 / 1000.0,
            min_callers,
        };
        FailsafeBreaker::new(&settings, Arc::new(|_| {}))
    }

    fn fail_as(b: &FailsafeBreaker, caller: &str) {
        Permit::acquire(b).unwrap().finish_for(true, Some(caller));
    }

    #[test]
    fn one_callers_failures_never_open_a_breaker_that_needs_two() {
        let b = spread(2, 60_000, 2);
        for _ in 0..10 {
            fail_as(&b, "key:a");
        }
        assert_eq!(b.state(), BreakerState::Closed);
        fail_as(&b, "key:b");
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn a_callers_failures_older_than_the_reset_period_do_not_count_towards_the_spread() {
        let b = spread(2, 50, 2);
        fail_as(&b, "key:a");
        std::thread::sleep(Duration::from_millis(70));
        fail_as(&b, "key:b");
        assert_eq!(b.state(), BreakerState::Closed);
        fail_as(&b, "key:a");
        assert_eq!(b.state(), BreakerState::Open);
    }

    #[test]
    fn an_abandoned_probe_leaves_the_breaker_half_open() {
        let b = breaker(1, 50);
        fail(&b);
        std::thread::sleep(Duration::from_millis(60));
        drop(Permit::acquire(&b).unwrap());
        assert_eq!(b.state(), BreakerState::HalfOpen);
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

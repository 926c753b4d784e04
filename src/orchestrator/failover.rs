//! The one candidate walk, for every kind of upstream call: models (`Orchestrator::{run,
//! open_stream}`), path routes and the GPU worker proxy each supply only an `Upstream` — which
//! candidates, what to send, how to read the answer — and this walk does the rest, identically for
//! all: per-candidate gate (where concurrency caps queue), breaker permits (with the caller, for `min_callers`), the attempt,
//! `classify`, blame, backoff honouring `Retry-After`, the next candidate, and the final error that
//! lists every attempt (`ProvidersUnavailable` with `Retry-After` when every breaker refused).
//!
//! Classification, backoff and permits are private to `orchestrator`, so no other module can
//! rebuild a loop. Features that act per candidate (key pools, queues) belong in `Upstream::gate`,
//! which runs before any breaker is asked; features that act per attempt (stream recovery) belong
//! in `Upstream::attempt` or next to the one call of it below.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::breaker::{BreakerSet, CircuitBreaker, Permit};
use super::classify::{Blame, Verdict, classify};
use super::{Orchestrator, Outcome, Success, retry};
use crate::config::ProviderConfig;
use crate::domain::{AttemptOutcome, AttemptSummary, ProviderId};
use crate::error::{ApiError, Rejection};
use crate::providers::UpstreamError;
use crate::telemetry::traces;
use crate::traffic::Overload;
use tracing::Instrument as _;

/// Who a candidate is, for its breakers and the attempt log.
pub(crate) struct Target<'c> {
    /// Its breaker id (a provider, a node `pool/host:port`, a path target `host:port`).
    pub id: &'c ProviderId,
    /// The model it is asked for (empty when the call names none).
    pub model: &'c str,
    /// A configured provider whose declared models have breakers of their own; `None`: only the
    /// `id` breaker counts.
    pub provider: Option<&'c ProviderConfig>,
}

impl<'c> Target<'c> {
    /// A model candidate: its provider (or node) breaker, and its model's.
    pub fn of(c: &'c crate::routing::Candidate) -> Self {
        Self {
            id: &c.provider.config.id,
            model: &c.upstream_model,
            provider: Some(&c.provider.config),
        }
    }
}

/// What a candidate's gate decides before any breaker is asked.
pub(crate) enum Gate<R> {
    /// Call it, with what the gate prepared.
    Go(R),
    /// Pass it by; `Some` logs it as an attempt with that outcome.
    Skip(Option<AttemptOutcome>),
    /// Pass it by like an open breaker: it serves again in `retry_after` (every key of its pool
    /// rests), which the walk's `ProvidersUnavailable` takes into account.
    Unavailable {
        /// For the attempt log; not a call.
        outcome: AttemptOutcome,
        /// When it serves again.
        retry_after: Option<Duration>,
    },
    /// Pass it by: over a concurrency cap (logged as `Overloaded`); when no other candidate
    /// answers, the walk ends with `ApiError::Overloaded` naming the level.
    Busy(Overload),
    /// End the walk with this error.
    Stop(ApiError),
}

/// An attempt the upstream answered for itself (a success for its breakers).
pub(crate) struct Answered<T> {
    /// The answer handed on.
    pub value: T,
    /// For the attempt log (`Success`, or `Rejected` for a relayed client error).
    pub outcome: AttemptOutcome,
    /// The upstream's status, when it has one.
    pub status: Option<u16>,
}

impl<T> Answered<T> {
    /// A plain success.
    pub fn ok(value: T, status: Option<u16>) -> Self {
        Self {
            value,
            outcome: AttemptOutcome::Success,
            status,
        }
    }
}

/// A failed attempt.
pub(crate) struct Failed<T> {
    /// What went wrong, for `classify`.
    pub error: UpstreamError,
    /// The upstream's own answer, relayed as is when the failure is the client's (`GiveUp`);
    /// without one, the client gets `UpstreamRejected`.
    pub answer: Option<T>,
}

impl<T> From<UpstreamError> for Failed<T> {
    fn from(error: UpstreamError) -> Self {
        Self { error, answer: None }
    }
}

/// One kind of upstream call: what the walk needs from it.
pub(crate) trait Upstream {
    type Candidate;
    /// What a candidate's gate hands its attempts (a spliced body, a checked URL).
    type Ready;
    /// A successful answer.
    type Answer;

    /// The candidate's identity.
    fn target<'a>(&'a self, candidate: &'a Self::Candidate) -> Target<'a>;

    /// The per-candidate gate, before any breaker is asked.
    async fn gate(&self, candidate: &Self::Candidate) -> Gate<Self::Ready>;

    /// One call to the candidate.
    async fn attempt(
        &self,
        candidate: &Self::Candidate,
        ready: &Self::Ready,
    ) -> Result<Answered<Self::Answer>, Failed<Self::Answer>>;

    /// After a failed attempt: whether the failure belongs to what the gate chose rather than to
    /// the candidate (a pooled key the upstream refused); then the choice is remade in `ready`
    /// (another key) and the failure counts for no breaker and no retry.
    fn rearm(&self, _candidate: &Self::Candidate, _ready: &mut Self::Ready, _error: &UpstreamError) -> Rearm {
        Rearm::No
    }
}

/// What `Upstream::rearm` made of a failed attempt.
pub(crate) enum Rearm {
    /// The failure is the candidate's: the walk judges it as usual.
    No,
    /// The gate's choice was remade (another pooled key): the candidate is called again at once,
    /// keeping what else its gate prepared (its slots under a concurrency cap).
    Again,
    /// Nothing is left to choose from now (every key rests): the candidate is passed by like an
    /// open breaker.
    Pass {
        /// For the attempt log; not a call.
        outcome: AttemptOutcome,
        /// When it serves again.
        retry_after: Option<Duration>,
    },
}

/// The most times one candidate's gate is asked again after `Upstream::rearm` (each time rests
/// what the gate chose, so this only bounds a pathological pool).
const MAX_REARMS: usize = 32;

impl Orchestrator<'_> {
    /// Walks `candidates` in order until one answers; records nothing.
    pub(crate) async fn failover<U: Upstream>(&self, up: &U, candidates: &[U::Candidate]) -> Outcome<U::Answer> {
        self.failover_after(up, candidates, Vec::new()).await
    }

    /// `failover`, continuing a walk that already made `attempts` (they lead the outcome's list
    /// and count in its error).
    pub(crate) async fn failover_after<U: Upstream>(
        &self,
        up: &U,
        candidates: &[U::Candidate],
        mut attempts: Vec<AttemptSummary>,
    ) -> Outcome<U::Answer> {
        let mut by = PassedBy::default();
        for candidate in candidates {
            let target = up.target(candidate);
            let summary = |outcome, status, latency| AttemptSummary {
                provider: target.id.clone(),
                upstream_model: target.model.to_owned(),
                outcome,
                status,
                latency,
            };
            let passed = |o, waited| summary(o, None, waited);
            let mut ready = match self.through(up.gate(candidate).await, &target, &mut attempts, passed, &mut by) {
                Ok(Some(ready)) => ready,
                Ok(None) => continue,
                Err(e) => {
                    return Outcome {
                        result: Err(e),
                        attempts,
                    };
                }
            };
            let breakers = Breakers::of(self.breakers, &target);
            let mut retry = 0;
            let mut rearms = 0;
            loop {
                let Some(permits) = breakers.acquire() else {
                    by.retry_after = by.retry_after.into_iter().chain(breakers.retry_after()).min();
                    attempts.push(summary(AttemptOutcome::BreakerOpen, None, Duration::ZERO));
                    break;
                };
                let started = Instant::now();
                let span = self.client_span(&target, attempts.len() + 1);
                let result = if span.is_none() {
                    up.attempt(candidate, &ready).await
                } else {
                    // The adapter reads this attempt's context from the current span for `traceparent`.
                    up.attempt(candidate, &ready).instrument(span.clone()).await
                };
                let failed = match result {
                    Ok(answered) => {
                        traces::attempt_ended(&span, answered.status, None);
                        permits.report(Blame::Healthy, self.caller);
                        attempts.push(summary(answered.outcome, answered.status, started.elapsed()));
                        return self.answer(&target, answered.value, attempts);
                    }
                    Err(failed) => failed,
                };
                let err = failed.error;
                let class = classify(&err);
                traces::attempt_ended(&span, err.status, Some(class.outcome.as_str()));
                drop(span);
                let rearm = if rearms < MAX_REARMS {
                    up.rearm(candidate, &mut ready, &err)
                } else {
                    Rearm::No
                };
                let blame = if matches!(rearm, Rearm::No) {
                    class.blame
                } else {
                    Blame::Uncounted
                };
                permits.report(blame, self.caller);
                attempts.push(summary(class.outcome, err.status, started.elapsed()));
                tracing::warn!(
                    request_id = %self.request_id,
                    trace_id = self.request_id.trace_id().as_deref(),
                    provider = %target.id,
                    attempt = attempts.len(),
                    outcome = class.outcome.as_str(),
                    status = err.status,
                    error = %err,
                    "upstream attempt failed"
                );
                match rearm {
                    Rearm::No => {}
                    Rearm::Again => {
                        rearms += 1;
                        continue;
                    }
                    Rearm::Pass { outcome, retry_after } => {
                        let pass: Gate<()> = Gate::Unavailable { outcome, retry_after };
                        let _ = self.through(pass, &target, &mut attempts, passed, &mut by);
                        break;
                    }
                }
                match class.verdict {
                    Verdict::GiveUp => {
                        if let Some(answer) = failed.answer {
                            // The upstream's own answer to a client mistake: relayed as is.
                            return self.answer(&target, answer, attempts);
                        }
                        let calls = attempts.iter().filter(|a| a.was_called()).count();
                        let rejection = Rejection { error: err, calls };
                        return Outcome {
                            result: Err(rejection.into()),
                            attempts,
                        };
                    }
                    Verdict::NextProvider => break,
                    Verdict::Retry if retry < self.routing.max_retries => {
                        let r = self.routing;
                        let wait = retry::backoff(retry, r.backoff_base_ms, r.backoff_max_ms, err.retry_after);
                        retry += 1;
                        tokio::time::sleep(wait).await;
                    }
                    Verdict::Retry => break,
                }
            }
        }
        let called = || attempts.iter().filter(|a| a.was_called());
        let PassedBy {
            retry_after,
            overloaded,
        } = by;
        let result = if let Some(soonest) = overloaded.iter().map(|o| o.retry_after).min() {
            // Capacity, not failure, is what this request lacked: the client may retry soon.
            Err(ApiError::Overloaded {
                levels: overloaded.iter().map(ToString::to_string).collect(),
                retry_after: soonest,
                attempts: attempts.clone(),
            })
        } else if called().next().is_none() {
            Err(ApiError::ProvidersUnavailable { retry_after })
        } else if called().all(|a| a.outcome == AttemptOutcome::TooLarge) {
            Err(ApiError::ResponseTooLarge {
                limit: self.max_response_bytes,
                attempts: attempts.clone(),
            })
        } else {
            Err(ApiError::AllProvidersFailed {
                attempts: attempts.clone(),
            })
        };
        Outcome { result, attempts }
    }

    /// The attempt's client span (`Span::none()` with traces off: nothing is looked up or formatted).
    fn client_span(&self, target: &Target<'_>, number: usize) -> tracing::Span {
        if !traces::enabled() {
            return tracing::Span::none();
        }
        let attempt = traces::Attempt {
            provider: target.id.as_str(),
            kind: target.provider.map_or("", |p| p.kind.as_str()),
            model: target.model,
            number,
            breaker: self.breakers.state(target.id).as_str(),
        };
        traces::client(self.request_id, &attempt)
    }

    fn answer<T>(&self, target: &Target<'_>, value: T, attempts: Vec<AttemptSummary>) -> Outcome<T> {
        let success = Success {
            provider: target.id.clone(),
            upstream_model: target.model.to_owned(),
            value,
            served: crate::providers::Served::Direct,
        };
        Outcome {
            result: Ok(success),
            attempts,
        }
    }
}

/// What the walk keeps of the candidates it passed by without a call.
#[derive(Default)]
struct PassedBy {
    /// The soonest an open breaker or a resting key pool admits a call again.
    retry_after: Option<Duration>,
    /// Candidates over a concurrency cap, for `ApiError::Overloaded`.
    overloaded: Vec<Overload>,
}

impl Orchestrator<'_> {
    /// What the walk does with a gate's decision: `Some` prepared call, `None` when the candidate
    /// is passed by (logged as `summary` says, with the time it waited; kept in `by`), or the error
    /// that ends the walk.
    fn through<R>(
        &self,
        gate: Gate<R>,
        target: &Target<'_>,
        attempts: &mut Vec<AttemptSummary>,
        summary: impl Fn(AttemptOutcome, Duration) -> AttemptSummary,
        by: &mut PassedBy,
    ) -> Result<Option<R>, ApiError> {
        match gate {
            Gate::Go(ready) => Ok(Some(ready)),
            Gate::Skip(logged) => {
                attempts.extend(logged.map(|o| summary(o, Duration::ZERO)));
                Ok(None)
            }
            Gate::Unavailable {
                outcome,
                retry_after: ready_in,
            } => {
                by.retry_after = by.retry_after.into_iter().chain(ready_in).min();
                attempts.push(summary(outcome, Duration::ZERO));
                Ok(None)
            }
            Gate::Busy(overload) => {
                tracing::info!(
                    request_id = %self.request_id,
                    provider = %target.id,
                    level = %overload.level,
                    reason = overload.reason.as_str(),
                    "candidate over its concurrency cap; trying the next"
                );
                attempts.push(summary(AttemptOutcome::Overloaded, overload.waited));
                by.overloaded.push(overload);
                Ok(None)
            }
            Gate::Stop(e) => Err(e),
        }
    }
}

/// A candidate's breakers: its own, and its model's when the model has one.
struct Breakers {
    provider: Arc<dyn CircuitBreaker>,
    model: Option<Arc<dyn CircuitBreaker>>,
}

impl Breakers {
    fn of(set: &BreakerSet, target: &Target<'_>) -> Self {
        Self {
            provider: set.get_or_create(target.id),
            model: target.provider.and_then(|p| set.model(p, target.model)),
        }
    }

    /// Both permits, or none when either breaker refuses (the other's is released unjudged).
    fn acquire(&self) -> Option<Permits<'_>> {
        let provider = Permit::acquire(self.provider.as_ref())?;
        let model = match &self.model {
            Some(b) => Some(Permit::acquire(b.as_ref())?),
            None => None,
        };
        Some(Permits { provider, model })
    }

    /// The soonest either refusing breaker admits a call again.
    fn retry_after(&self) -> Option<Duration> {
        let model = self.model.as_ref().and_then(|m| m.retry_after());
        self.provider.retry_after().into_iter().chain(model).min()
    }
}

/// One attempt's permits.
struct Permits<'a> {
    provider: Permit<'a>,
    model: Option<Permit<'a>>,
}

impl Permits<'_> {
    /// Reports the attempt to the breaker `blame` names; a breaker it does not name is released
    /// unjudged, except that a healthy answer is a success for both.
    fn report(self, blame: Blame, caller: Option<&str>) {
        match (blame, self.model) {
            (Blame::Healthy, model) => {
                self.provider.finish_for(false, caller);
                if let Some(m) = model {
                    m.finish_for(false, caller);
                }
            }
            (Blame::Provider, _) | (Blame::Model, None) => self.provider.finish_for(true, caller),
            (Blame::Model, Some(m)) => m.finish_for(true, caller),
            (Blame::Uncounted, _) => {}
        }
    }
}

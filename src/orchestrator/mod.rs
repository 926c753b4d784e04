//! Executes a `RoutePlan`: concurrency caps → breaker gate → timeout → retry with backoff → next
//! provider, through the one candidate walk (`failover`) that path routes and the worker proxy use
//! too; this file supplies only the model path's gate and attempt (`Models`: splice, the pooled
//! key, the caps' slots from `admission`, in-flight counters, first chunk), and carries the walk on
//! over the plan's `overflow` when a candidate says the prompt is too long.
//!
//! Depends on `providers`, `routing`, `traffic`, `config`, `error` and `domain`. It records nothing: it returns
//! an `Outcome` with every attempt, and `pipeline` observes it exactly once. For streams, retry
//! and fallback happen only before the first byte is handed on (see `stream`); after it, only a
//! stream that may recover asks the next candidates to continue the same answer (see `recover`).

mod admission;
pub mod breaker;
mod classify;
mod failover;
pub mod recover;
mod retry;
pub mod stream;

use bytes::Bytes;
use futures_util::StreamExt;

use crate::config::{HostedTools, RoutingSettings};
use crate::dialects::splice_model;
use crate::dialects::sse;
use crate::domain::{AttemptOutcome, AttemptSummary, ClientHeaders, Dialect, InFlight, ProviderId, RequestId};
use crate::error::ApiError;
use crate::providers::keys::Refusal;
use crate::providers::{ByteStream, Call, Operation, Reply, Served, UpstreamError, UpstreamErrorKind};
use crate::routing::{Candidate, RoutePlan};
pub use admission::Admission;
use admission::Held;
use breaker::BreakerSet;
pub(crate) use failover::{Answered, Failed, Gate, Rearm, Target, Upstream};

/// What the orchestrator needs for one request.
pub struct Orchestrator<'a> {
    /// Retries and timeouts.
    pub routing: &'a RoutingSettings,
    /// Breakers by provider.
    pub breakers: &'a BreakerSet,
    /// The shared upstream client.
    pub http: &'a reqwest::Client,
    /// Sent upstream as `x-request-id`.
    pub request_id: &'a RequestId,
    /// The dialect of the body; adapters answer in it.
    pub dialect: Dialect,
    /// Largest non-streamed upstream body read (`limits.max_response_bytes`).
    pub max_response_bytes: usize,
    /// Who asks (`auth::Caller::id`: a key id, or the client address when auth is off); breakers
    /// with `min_callers` > 1 count distinct callers. `None`: unknown.
    pub caller: Option<&'a str>,
    /// The client's Anthropic protocol headers, for anthropic-kind upstreams.
    pub forward: &'a ClientHeaders,
    /// What keeps a request on one key of a provider's key pool: the session, else the Responses
    /// `prompt_cache_key`, else the caller. `None`: any key.
    pub affinity: Option<&'a str>,
    /// Model calls: the concurrency caps' queues and this request's priority in them; `None`
    /// for calls no cap applies to (path routes, the worker proxy, stored responses).
    pub admission: Option<Admission<'a>>,
}

/// Which provider answered, with what.
#[derive(Debug)]
pub struct Success<T> {
    /// The provider that answered.
    pub provider: ProviderId,
    /// The model name it was asked for.
    pub upstream_model: String,
    /// Its answer.
    pub value: T,
    /// For `/v1/responses`: whether the provider answered natively or through the chat bridge
    /// (and which hosted tools the bridge dropped); `Served::Direct` for every other call.
    pub served: Served,
}

/// A finished orchestration: the result and every attempt made or skipped.
#[derive(Debug)]
pub struct Outcome<T> {
    /// The answer or the error to give the client.
    pub result: Result<Success<T>, ApiError>,
    /// In order.
    pub attempts: Vec<AttemptSummary>,
}

impl<T> Outcome<T> {
    /// Upstream calls actually made (breaker skips excluded).
    pub fn calls_made(&self) -> usize {
        self.attempts.iter().filter(|a| a.was_called()).count()
    }
}

/// A stream whose first chunk has arrived: from here on it is committed to one provider.
pub struct StreamStart {
    /// The first upstream chunk.
    pub first: Bytes,
    /// Everything after it.
    pub rest: ByteStream,
}

impl std::fmt::Debug for StreamStart {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamStart")
            .field("first_len", &self.first.len())
            .finish_non_exhaustive()
    }
}

enum Job {
    Unary(Operation),
    Stream,
}

enum Got {
    Reply(Reply, Served),
    Stream(StreamStart, Served),
}

impl Orchestrator<'_> {
    /// One non-streamed request through the plan.
    pub async fn run(&self, plan: &RoutePlan, op: Operation, body: &Bytes) -> Outcome<Reply> {
        self.run_bridging(plan, op, body, HostedTools::default()).await
    }

    /// `run`, with what a Responses call bridged to chat does with hosted tools.
    pub async fn run_bridging(
        &self,
        plan: &RoutePlan,
        op: Operation,
        body: &Bytes,
        hosted_tools: HostedTools,
    ) -> Outcome<Reply> {
        self.drive(plan, Job::Unary(op), body, hosted_tools)
            .await
            .map(|got| match got {
                Got::Reply(r, served) => Ok((r, served)),
                Got::Stream(..) => Err(()),
            })
    }

    /// A streamed chat request: tries candidates until one delivers its first chunk.
    pub async fn open_stream(&self, plan: &RoutePlan, body: &Bytes) -> Outcome<StreamStart> {
        self.open_stream_bridging(plan, body, HostedTools::default()).await
    }

    /// `open_stream`, with what a Responses call bridged to chat does with hosted tools.
    pub async fn open_stream_bridging(
        &self,
        plan: &RoutePlan,
        body: &Bytes,
        hosted_tools: HostedTools,
    ) -> Outcome<StreamStart> {
        self.drive(plan, Job::Stream, body, hosted_tools)
            .await
            .map(|got| match got {
                Got::Stream(s, served) => Ok((s, served)),
                Got::Reply(..) => Err(()),
            })
    }

    async fn drive(&self, plan: &RoutePlan, job: Job, body: &Bytes, hosted_tools: HostedTools) -> Outcome<Got> {
        let models = Models {
            orchestrator: self,
            plan,
            job,
            body,
            hosted_tools,
        };
        let mut outcome = self.failover(&models, &plan.candidates).await;
        // A prompt too long for the candidate that refused it: the same walk goes on over the
        // overflow candidates not tried yet (a stream too: its refusal comes before any byte).
        while outcome.result.is_err()
            && let Some(last) = outcome.attempts.last()
            && last.outcome == AttemptOutcome::ContextLengthExceeded
        {
            let tried = |c: &&Candidate| {
                outcome
                    .attempts
                    .iter()
                    .any(|a| a.provider == c.provider.config.id && a.upstream_model == c.upstream_model)
            };
            let rest: Vec<Candidate> = plan.overflow.iter().filter(|c| !tried(c)).cloned().collect();
            if rest.is_empty() {
                break;
            }
            outcome = self.failover_after(&models, &rest, outcome.attempts).await;
        }
        outcome
    }

    async fn attempt(
        &self,
        candidate: &Candidate,
        job: &Job,
        ready: &Ready,
        hosted_tools: HostedTools,
    ) -> Result<Got, UpstreamError> {
        // Time spent queued for this candidate comes out of its first attempt's budget.
        let queued = ready.held.take_wait();
        let provider = &candidate.provider;
        let call = Call {
            provider: &provider.config,
            body: &ready.body,
            dialect: self.dialect,
            request_id: self.request_id,
            http: self.http,
            max_response_bytes: self.max_response_bytes,
            forward: self.forward,
            hosted_tools,
            key: ready.key,
            trace: crate::telemetry::traces::upstream(self.request_id),
        };
        let responses = self.dialect == Dialect::Responses;
        let id = &provider.config.id;
        // The candidate's node and route target count this request as in flight for as long as it
        // is served (a stream included).
        let in_flight: Vec<_> = candidate.in_flight.iter().map(InFlight::enter).collect();
        match job {
            Job::Unary(op) => {
                // The shared client bounds the connect on its own (`Timeout`); this deadline runs out
                // while the upstream works on the request, as a long generation does.
                let sent = async {
                    if responses {
                        provider.adapter.send_responses(&call).await
                    } else {
                        provider.adapter.send(&call, *op).await.map(|r| (r, Served::Direct))
                    }
                };
                match tokio::time::timeout(self.routing.timeout().saturating_sub(queued), sent).await {
                    Ok(result) => result.map(|(reply, served)| Got::Reply(reply, served)),
                    Err(_) => Err(UpstreamError::new(id, UpstreamErrorKind::Deadline)),
                }
            }
            Job::Stream => {
                let opening = async {
                    let (mut rest, served) = if responses {
                        provider.adapter.open_responses_stream(&call).await?
                    } else {
                        (provider.adapter.open_stream(&call).await?, Served::Direct)
                    };
                    loop {
                        match rest.next().await {
                            Some(Ok(chunk)) if chunk.is_empty() => continue,
                            Some(Ok(first)) => return Ok((StreamStart { first, rest }, served)),
                            Some(Err(e)) => return Err(e),
                            None => return Err(UpstreamError::new(id, UpstreamErrorKind::Malformed)),
                        }
                    }
                };
                let first_token = self.routing.first_token_timeout().saturating_sub(queued);
                let (start, served) = match tokio::time::timeout(first_token, opening).await {
                    Ok(result) => result?,
                    Err(_) => return Err(UpstreamError::new(id, UpstreamErrorKind::FirstTokenTimeout)),
                };
                if sse::first_event_is_error(&start.first) {
                    return Err(UpstreamError::new(id, UpstreamErrorKind::Malformed));
                }
                // The stream keeps its counters and its queue slots until it ends.
                let slots = ready.held.slots();
                let start = if in_flight.is_empty() && slots.is_none() {
                    start
                } else {
                    StreamStart {
                        first: start.first,
                        rest: Box::pin(start.rest.map(move |chunk| {
                            let _held = (&in_flight, &slots);
                            chunk
                        })),
                    }
                };
                Ok(Got::Stream(start, served))
            }
        }
    }
}

/// A model request: the plan's candidates, each asked for its upstream model.
struct Models<'a> {
    orchestrator: &'a Orchestrator<'a>,
    plan: &'a RoutePlan,
    job: Job,
    body: &'a Bytes,
    hosted_tools: HostedTools,
}

impl Orchestrator<'_> {
    /// The pooled key `c` is called with (0 without a pool), or when every key of its pool rests,
    /// how long until one serves.
    fn key_for(&self, c: &Candidate) -> Result<usize, Resting> {
        let Some(pool) = &c.provider.keys else {
            return Ok(0);
        };
        pool.choose(self.affinity.unwrap_or(""), &c.upstream_model)
            .ok_or_else(|| Resting(pool.ready_in(&c.upstream_model)))
    }
}

/// Every key of a candidate's pool rests; one serves again after the duration, if known.
struct Resting(Option<std::time::Duration>);

impl<R> From<Resting> for Gate<R> {
    fn from(resting: Resting) -> Self {
        Gate::Unavailable {
            outcome: AttemptOutcome::KeysCooling,
            retry_after: resting.0,
        }
    }
}

impl Orchestrator<'_> {
    /// After a failed attempt on `c` with pooled `key`: when `error` is the upstream refusing that
    /// key (429 for the model, 401/402/403 for the key), rests it and picks another.
    fn rekey(&self, c: &Candidate, key: &mut usize, error: &UpstreamError) -> Rearm {
        let (Some(pool), Some(refusal)) = (&c.provider.keys, Refusal::of_status(error.status)) else {
            return Rearm::No;
        };
        if error.kind != UpstreamErrorKind::Status {
            return Rearm::No;
        }
        pool.rest(*key, &c.upstream_model, refusal, error.retry_after);
        match self.key_for(c) {
            Ok(next) => {
                *key = next;
                Rearm::Again
            }
            Err(Resting(retry_after)) => Rearm::Pass {
                outcome: AttemptOutcome::KeysCooling,
                retry_after,
            },
        }
    }
}

/// What a model candidate's gate prepared: the body to send, the pooled key it goes with (0
/// without a pool) and the slots taken for it.
struct Ready {
    body: Bytes,
    key: usize,
    held: Held,
}

impl Upstream for Models<'_> {
    type Candidate = Candidate;
    type Ready = Ready;
    type Answer = Got;

    fn target<'a>(&'a self, c: &'a Candidate) -> Target<'a> {
        Target::of(c)
    }

    async fn gate(&self, c: &Candidate) -> Gate<Ready> {
        if let Job::Unary(op) = self.job
            && !c.provider.adapter.supports(op)
        {
            // Never reaches the upstream, so it is skipped before any breaker is asked.
            return Gate::Skip(Some(AttemptOutcome::Unsupported));
        }
        let key = match self.orchestrator.key_for(c) {
            Ok(key) => key,
            Err(resting) => return resting.into(),
        };
        let body = if c.upstream_model == self.plan.requested_model {
            self.body.clone()
        } else {
            match splice_model(self.body, &c.upstream_model) {
                Ok(spliced) => spliced,
                Err(e) => return Gate::Stop(e.into()),
            }
        };
        // Queued last, so a candidate refused for another reason never waits.
        match self.orchestrator.admit(c, matches!(self.job, Job::Stream)).await {
            Ok(held) => Gate::Go(Ready { body, key, held }),
            Err(overload) => Gate::Busy(overload),
        }
    }

    async fn attempt(&self, c: &Candidate, ready: &Ready) -> Result<Answered<Got>, Failed<Got>> {
        match self.orchestrator.attempt(c, &self.job, ready, self.hosted_tools).await {
            Ok(got) => Ok(Answered::ok(got, None)),
            Err(e) => Err(e.into()),
        }
    }

    /// A pooled key the upstream refused (429 for the model, 401/402/403 for the key) rests, and
    /// the same provider is asked again at once with another key: the provider is not at fault.
    fn rearm(&self, c: &Candidate, ready: &mut Ready, error: &UpstreamError) -> Rearm {
        self.orchestrator.rekey(c, &mut ready.key, error)
    }
}

impl Outcome<Got> {
    fn map<T>(self, f: impl FnOnce(Got) -> Result<(T, Served), ()>) -> Outcome<T> {
        let result = match self.result {
            Ok(s) => match f(s.value) {
                Ok((value, served)) => Ok(Success {
                    provider: s.provider,
                    upstream_model: s.upstream_model,
                    value,
                    served,
                }),
                Err(()) => Err(ApiError::internal(std::io::Error::other("orchestrator job mismatch"))),
            },
            Err(e) => Err(e),
        };
        Outcome {
            result,
            attempts: self.attempts,
        }
    }
}

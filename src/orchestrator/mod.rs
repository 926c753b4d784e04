//! Executes a `RoutePlan`: breaker gate → timeout → retry with backoff → next provider.
//!
//! Depends on `providers`, `routing`, `config`, `error` and `domain`. It records nothing: it returns
//! an `Outcome` with every attempt, and `pipeline` observes it exactly once. For streams, retry
//! and fallback happen only before the first byte is handed on (see `stream`).

pub mod breaker;
pub mod classify;
pub mod retry;
pub mod stream;

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;

use crate::config::RoutingSettings;
use crate::dialects::sse;
use crate::domain::{AttemptOutcome, AttemptSummary, Dialect, InFlight, ProviderId, RequestId, splice_model};
use crate::error::ApiError;
use crate::providers::{ByteStream, Call, Operation, Reply, UpstreamError, UpstreamErrorKind};
use crate::routing::{Candidate, RoutePlan};
use breaker::{BreakerSet, CircuitBreaker, Permit};
use classify::{Blame, Verdict, classify};

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
    Reply(Reply),
    Stream(StreamStart),
}

impl Orchestrator<'_> {
    /// One non-streamed request through the plan.
    pub async fn run(&self, plan: &RoutePlan, op: Operation, body: &Bytes) -> Outcome<Reply> {
        self.drive(plan, Job::Unary(op), body).await.map(|got| match got {
            Got::Reply(r) => Ok(r),
            Got::Stream(_) => Err(()),
        })
    }

    /// A streamed chat request: tries candidates until one delivers its first chunk.
    pub async fn open_stream(&self, plan: &RoutePlan, body: &Bytes) -> Outcome<StreamStart> {
        self.drive(plan, Job::Stream, body).await.map(|got| match got {
            Got::Stream(s) => Ok(s),
            Got::Reply(_) => Err(()),
        })
    }

    async fn drive(&self, plan: &RoutePlan, job: Job, body: &Bytes) -> Outcome<Got> {
        let mut attempts = Vec::new();
        for candidate in &plan.candidates {
            let id = &candidate.provider.config.id;
            if let Job::Unary(op) = job
                && !candidate.provider.adapter.supports(op)
            {
                // Never reaches the upstream, so it is skipped before any breaker is asked.
                attempts.push(summary(candidate, AttemptOutcome::Unsupported, None, Duration::ZERO));
                continue;
            }
            let spliced;
            let body = if candidate.upstream_model == plan.requested_model {
                body
            } else {
                match splice_model(body, &candidate.upstream_model) {
                    Ok(b) => {
                        spliced = b;
                        &spliced
                    }
                    Err(e) => {
                        return Outcome {
                            result: Err(e.into()),
                            attempts,
                        };
                    }
                }
            };
            let provider_breaker = self.breakers.get_or_create(id);
            let model_breaker = self
                .breakers
                .model(&candidate.provider.config, &candidate.upstream_model);
            for retry in 0..=self.routing.max_retries {
                let Some(permits) = Permits::acquire(provider_breaker.as_ref(), model_breaker.as_deref()) else {
                    attempts.push(summary(candidate, AttemptOutcome::BreakerOpen, None, Duration::ZERO));
                    break;
                };
                let started = Instant::now();
                let err = match self.attempt(candidate, &job, body).await {
                    Ok(got) => {
                        permits.report(Blame::Healthy, self.caller);
                        attempts.push(summary(candidate, AttemptOutcome::Success, None, started.elapsed()));
                        let success = Success {
                            provider: id.clone(),
                            upstream_model: candidate.upstream_model.clone(),
                            value: got,
                        };
                        return Outcome {
                            result: Ok(success),
                            attempts,
                        };
                    }
                    Err(e) => e,
                };
                let class = classify(&err);
                permits.report(class.blame, self.caller);
                attempts.push(summary(candidate, class.outcome, err.status, started.elapsed()));
                tracing::warn!(
                    request_id = %self.request_id,
                    provider = %id,
                    attempt = attempts.len(),
                    outcome = class.outcome.as_str(),
                    status = err.status,
                    error = %err,
                    "upstream attempt failed"
                );
                match class.verdict {
                    Verdict::GiveUp => {
                        let calls = attempts.iter().filter(|a| a.was_called()).count();
                        return Outcome {
                            result: Err(rejected(err, calls)),
                            attempts,
                        };
                    }
                    Verdict::NextProvider => break,
                    Verdict::Retry if retry < self.routing.max_retries => {
                        let r = self.routing;
                        tokio::time::sleep(retry::backoff(
                            retry,
                            r.backoff_base_ms,
                            r.backoff_max_ms,
                            err.retry_after,
                        ))
                        .await;
                    }
                    Verdict::Retry => {}
                }
            }
        }
        let called = || attempts.iter().filter(|a| a.was_called());
        let result = if called().next().is_none() {
            let retry_after = plan
                .candidates
                .iter()
                .flat_map(|c| {
                    let provider = self.breakers.get(&c.provider.config.id);
                    let model = self.breakers.model(&c.provider.config, &c.upstream_model);
                    [provider, model].into_iter().flatten()
                })
                .filter_map(|b| b.retry_after())
                .min();
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

    async fn attempt(&self, candidate: &Candidate, job: &Job, body: &Bytes) -> Result<Got, UpstreamError> {
        let provider = &candidate.provider;
        let call = Call {
            provider: &provider.config,
            body,
            dialect: self.dialect,
            request_id: self.request_id,
            http: self.http,
            max_response_bytes: self.max_response_bytes,
        };
        let id = &provider.config.id;
        // The candidate's node and route target count this request as in flight for as long as it
        // is served (a stream included).
        let in_flight: Vec<_> = candidate.in_flight.iter().map(InFlight::enter).collect();
        match job {
            Job::Unary(op) => {
                // The shared client bounds the connect on its own (`Timeout`); this deadline runs out
                // while the upstream works on the request, as a long generation does.
                match tokio::time::timeout(self.routing.timeout(), provider.adapter.send(&call, *op)).await {
                    Ok(result) => result.map(Got::Reply),
                    Err(_) => Err(UpstreamError::new(id, UpstreamErrorKind::Deadline)),
                }
            }
            Job::Stream => {
                let opening = async {
                    let mut rest = provider.adapter.open_stream(&call).await?;
                    loop {
                        match rest.next().await {
                            Some(Ok(chunk)) if chunk.is_empty() => continue,
                            Some(Ok(first)) => return Ok(StreamStart { first, rest }),
                            Some(Err(e)) => return Err(e),
                            None => return Err(UpstreamError::new(id, UpstreamErrorKind::Malformed)),
                        }
                    }
                };
                let start = match tokio::time::timeout(self.routing.first_token_timeout(), opening).await {
                    Ok(result) => result?,
                    Err(_) => return Err(UpstreamError::new(id, UpstreamErrorKind::FirstTokenTimeout)),
                };
                if sse::first_event_is_error(&start.first) {
                    return Err(UpstreamError::new(id, UpstreamErrorKind::Malformed));
                }
                let start = if in_flight.is_empty() {
                    start
                } else {
                    StreamStart {
                        first: start.first,
                        rest: Box::pin(start.rest.map(move |chunk| {
                            let _held = &in_flight;
                            chunk
                        })),
                    }
                };
                Ok(Got::Stream(start))
            }
        }
    }
}

impl Outcome<Got> {
    fn map<T>(self, f: impl FnOnce(Got) -> Result<T, ()>) -> Outcome<T> {
        let result = match self.result {
            Ok(s) => match f(s.value) {
                Ok(value) => Ok(Success {
                    provider: s.provider,
                    upstream_model: s.upstream_model,
                    value,
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

/// One attempt's permits: the provider's breaker, and the model's when the model has one.
struct Permits<'a> {
    provider: Permit<'a>,
    model: Option<Permit<'a>>,
}

impl<'a> Permits<'a> {
    /// Both permits, or none when either breaker refuses (the other's is released unjudged).
    fn acquire(provider: &'a dyn CircuitBreaker, model: Option<&'a dyn CircuitBreaker>) -> Option<Self> {
        let provider = Permit::acquire(provider)?;
        let model = match model {
            Some(b) => Some(Permit::acquire(b)?),
            None => None,
        };
        Some(Self { provider, model })
    }

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

fn summary(c: &Candidate, outcome: AttemptOutcome, status: Option<u16>, latency: Duration) -> AttemptSummary {
    AttemptSummary {
        provider: c.provider.config.id.clone(),
        upstream_model: c.upstream_model.clone(),
        outcome,
        status,
        latency,
    }
}

/// A client fault reported by the upstream, handed back in the OpenAI shape with its own fields.
fn rejected(err: UpstreamError, attempts: usize) -> ApiError {
    let detail = err.detail.map(|d| *d).unwrap_or_default();
    let status = err.status.unwrap_or(400);
    let message = if detail.message.is_empty() {
        format!("the upstream provider rejected the request (HTTP {status})")
    } else {
        detail.message
    };
    ApiError::UpstreamRejected {
        status,
        message,
        error_type: detail.error_type,
        code: detail.code,
        param: detail.param,
        provider: err.provider,
        attempts,
    }
}

//! Streams that recover (`stream_recovery: continue`): a stream cut or stalled after text reached
//! the client is continued by the next candidates of the same plan, and the continuation is
//! spliced into the same client stream.
//!
//! The relay (`stream`) keeps a `Recovery` for such a stream: it notes every event the client gets
//! (`dialects::resume::Progress`) and, at a cut, asks `Reopen` — which the pipeline supplies, as
//! it owns what a walk borrows — for a continuation. That runs `Orchestrator::continue_stream`: the
//! one candidate walk (`failover`) over the candidates after the one that was cut, whose gate
//! builds each candidate's body (a prefill where it takes one, else the instruction) and whose
//! attempt is the model path's own stream attempt. The continuation's events then go through
//! `dialects::resume::Splicer` on their way to the client.
//!
//! A stream is continued at most `MAX_CONTINUATIONS` times; one whose text is not continuable (a
//! tool call started, several choices, no text yet) or whose continuation fails (no candidate
//! left, each failed, one refused the prefill) ends with the dialect's error event as before.
//! Nothing here records: the observer is told (`StreamObserver::on_recovery`).

use bytes::Bytes;
use futures_util::future::BoxFuture;

use super::failover::{Answered, Failed, Gate, Target, Upstream};
use super::stream::StreamEnd;
use super::{Got, Job, Orchestrator, Outcome, Ready, Rearm, StreamStart};
use crate::config::{HostedTools, NodeRuntime};
use crate::dialects::resume::{self, Progress, Splicer, Style};
use crate::dialects::sse;
use crate::domain::{AttemptSummary, Dialect, ProviderId, Usage};
use crate::providers::UpstreamError;
use crate::routing::{Candidate, RoutePlan};

/// How many times one stream may be continued.
pub const MAX_CONTINUATIONS: u8 = 2;

/// The candidate whose stream was cut.
#[derive(Debug, Clone)]
pub struct Cut {
    /// Its provider (a node's own id for a node).
    pub provider: ProviderId,
    /// The model it was asked for.
    pub model: String,
}

/// A continuation that has delivered its first chunk.
#[derive(Debug)]
pub struct Continued {
    /// Its stream, from the first chunk.
    pub start: StreamStart,
    /// How it was asked.
    pub style: Style,
}

/// Opens a continuation: `Orchestrator::continue_stream` over the request's plan, run by whoever
/// owns what the walk borrows (the pipeline).
pub trait Reopen: Send + 'static {
    /// Asks the candidates after `cut` for the rest of the answer whose text so far is `sent`.
    fn reopen(&self, cut: Cut, sent: String) -> BoxFuture<'static, Outcome<Continued>>;
}

/// How a cut went, for the observer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryOutcome {
    /// A continuation was spliced in.
    Recovered,
    /// It was asked for, and no candidate gave one.
    Failed,
    /// It could not be asked for: a tool call, several choices, no text yet, or the limit reached.
    NotRecoverable,
}

impl RecoveryOutcome {
    /// The name, for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Recovered => "recovered",
            Self::Failed => "failed",
            Self::NotRecoverable => "not_recoverable",
        }
    }

    /// Every outcome, for metric series made at start.
    pub const ALL: [Self; 3] = [Self::Recovered, Self::Failed, Self::NotRecoverable];
}

/// What the observer is told of a cut on a stream that may recover.
#[derive(Debug, Clone)]
pub struct Recovered {
    /// The candidate that was cut.
    pub cut: Cut,
    /// How it was cut.
    pub end: StreamEnd,
    /// What came of it.
    pub outcome: RecoveryOutcome,
    /// The continuation's attempts (empty when none was asked for).
    pub attempts: Vec<AttemptSummary>,
    /// The candidate now serving the stream, when one continued it.
    pub by: Option<Cut>,
}

/// What a relayed stream keeps so it can be continued.
pub struct Recovery {
    reopen: Box<dyn Reopen>,
    /// The request as sent (for the estimate of a cut attempt's prompt).
    body: Bytes,
    progress: Progress,
    splicer: Option<Splicer>,
    left: u8,
    serving: Cut,
    /// Where the serving attempt's own text starts in `progress.text()`.
    attempt_from: usize,
    /// What the attempts cut so far are counted for.
    carried: Usage,
}

impl Recovery {
    /// For a stream in `dialect` of the request `body`, served by `serving`.
    pub fn new(reopen: Box<dyn Reopen>, body: Bytes, dialect: Dialect, serving: Cut) -> Self {
        Self {
            reopen,
            body,
            progress: Progress::new(dialect),
            splicer: None,
            left: MAX_CONTINUATIONS,
            serving,
            attempt_from: 0,
            carried: Usage::default(),
        }
    }

    /// Notes an event as the client gets it.
    pub(super) fn observe(&mut self, data: &[u8]) {
        self.progress.observe(data);
    }

    /// A run of the serving stream's events, as the client gets it: unchanged until a continuation
    /// serves it, then rewritten event by event.
    pub(super) fn splice(&mut self, run: Bytes) -> Bytes {
        let Some(splicer) = &mut self.splicer else {
            return run;
        };
        let mut out = Vec::with_capacity(run.len() + 64);
        for event in sse::events(&run) {
            // Comments and keep-alives of the continuation carry nothing the client needs.
            if let Some(data) = event.data {
                splicer.event(data, &mut out);
            }
        }
        Bytes::from(out)
    }

    /// At a cut: a continuation's stream when one can be had; the note tells the observer either way.
    pub(super) async fn resume(&mut self, end: StreamEnd) -> (Recovered, Option<StreamStart>) {
        let mut note = Recovered {
            cut: self.serving.clone(),
            end,
            outcome: RecoveryOutcome::NotRecoverable,
            attempts: Vec::new(),
            by: None,
        };
        if let Err(stuck) = self.progress.check() {
            tracing::warn!(provider = %note.cut.provider, why = stuck.as_str(), "a cut stream cannot be continued");
            return (note, None);
        }
        if self.left == 0 {
            tracing::warn!(provider = %note.cut.provider, "a cut stream was continued as often as it may be");
            return (note, None);
        }
        self.left -= 1;
        let sent = self.progress.text().to_owned();
        let seen = match &self.splicer {
            None => self.progress.usage(),
            Some(s) => s.start_usage(),
        };
        let (before, own) = sent.split_at(self.attempt_from.min(sent.len()));
        let cut_usage = resume::cut_usage(seen, &self.body, before, own);
        let outcome = self.reopen.reopen(self.serving.clone(), sent.clone()).await;
        note.attempts = outcome.attempts;
        let Ok(success) = outcome.result else {
            note.outcome = RecoveryOutcome::Failed;
            tracing::warn!(provider = %note.cut.provider, "no candidate continued the cut stream");
            return (note, None);
        };
        let by = Cut {
            provider: success.provider,
            model: success.upstream_model,
        };
        tracing::info!(
            cut = %note.cut.provider,
            by = %by.provider,
            style = success.value.style.as_str(),
            "a cut stream is continued"
        );
        self.carried = resume::add(self.carried, cut_usage);
        self.splicer = Some(Splicer::new(&self.progress, success.value.style, self.carried));
        self.attempt_from = sent.len();
        self.serving = by.clone();
        note.outcome = RecoveryOutcome::Recovered;
        note.by = Some(by);
        (note, Some(success.value.start))
    }
}

impl Orchestrator<'_> {
    /// Asks the candidates of `plan` after `cut` to continue the answer whose text so far is
    /// `sent`, through the one candidate walk; `body` is the request the cut stream answered.
    pub async fn continue_stream(
        &self,
        plan: &RoutePlan,
        body: &Bytes,
        cut: &Cut,
        sent: &str,
        hosted_tools: HostedTools,
    ) -> Outcome<Continued> {
        let after = plan
            .candidates
            .iter()
            .position(|c| c.provider.config.id == cut.provider && c.upstream_model == cut.model)
            .map_or(plan.candidates.len(), |i| i + 1);
        let job = Continuation {
            orchestrator: self,
            body,
            sent,
            hosted_tools,
        };
        self.failover(&job, &plan.candidates[after..]).await
    }
}

/// A continuation: each candidate asked in its own style.
struct Continuation<'a> {
    orchestrator: &'a Orchestrator<'a>,
    body: &'a Bytes,
    sent: &'a str,
    hosted_tools: HostedTools,
}

/// How `c` is asked to continue: Anthropic's protocol and vLLM nodes (or the catalogue's `vllm`
/// provider) take a prefill.
fn style(dialect: Dialect, c: &Candidate) -> Style {
    let anthropic = c.provider.config.kind == "anthropic";
    let vllm =
        c.node.as_ref().is_some_and(|n| n.runtime == NodeRuntime::Vllm) || c.provider.config.id.as_str() == "vllm";
    Style::for_upstream(dialect, anthropic, vllm)
}

impl Upstream for Continuation<'_> {
    type Candidate = Candidate;
    type Ready = (Ready, Style);
    type Answer = Continued;

    fn target<'a>(&'a self, c: &'a Candidate) -> Target<'a> {
        Target::of(c)
    }

    async fn gate(&self, c: &Candidate) -> Gate<(Ready, Style)> {
        let dialect = self.orchestrator.dialect;
        let style = style(dialect, c);
        let key = match self.orchestrator.key_for(c) {
            Ok(key) => key,
            Err(resting) => return resting.into(),
        };
        let body = match resume::continuation_body(self.body, dialect, &c.upstream_model, self.sent, style) {
            Ok(body) => body,
            Err(e) => return Gate::Stop(e.into()),
        };
        match self.orchestrator.admit(c, true).await {
            Ok(held) => Gate::Go((Ready { body, key, held }, style)),
            Err(overload) => Gate::Busy(overload),
        }
    }

    async fn attempt(&self, c: &Candidate, ready: &(Ready, Style)) -> Result<Answered<Continued>, Failed<Continued>> {
        let (prepared, style) = ready;
        match self
            .orchestrator
            .attempt(c, &Job::Stream, prepared, self.hosted_tools)
            .await
        {
            Ok(Got::Stream(start, _)) => Ok(Answered::ok(Continued { start, style: *style }, None)),
            Ok(Got::Reply(..)) => Err(crate::providers::UpstreamError::new(
                &c.provider.config.id,
                crate::providers::UpstreamErrorKind::Malformed,
            )
            .into()),
            Err(e) => Err(e.into()),
        }
    }

    fn rearm(&self, c: &Candidate, ready: &mut (Ready, Style), error: &UpstreamError) -> Rearm {
        self.orchestrator.rekey(c, &mut ready.0.key, error)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Duration;

    use futures_util::{StreamExt, stream};

    use super::*;
    use crate::orchestrator::Success;
    use crate::orchestrator::stream::{Source, StreamObserver, relay_recovering};
    use crate::providers::{Served, UpstreamError, UpstreamErrorKind};

    fn content(text: &str) -> String {
        format!(
            "data: {{\"id\":\"c\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{text}\"}},\"finish_reason\":null}}]}}\n\n"
        )
    }

    fn cut_after(first: &str, more: &[&str]) -> StreamStart {
        let mut rest: Vec<Result<Bytes, UpstreamError>> = more.iter().map(|m| Ok(Bytes::from(content(m)))).collect();
        rest.push(Err(UpstreamError::new(
            &ProviderId::new("p"),
            UpstreamErrorKind::StreamCut,
        )));
        StreamStart {
            first: Bytes::from(content(first)),
            rest: Box::pin(stream::iter(rest)),
        }
    }

    /// Continues every cut with a stream that is cut again after one word; counts the asks.
    struct Flaky(Arc<AtomicUsize>);

    impl Reopen for Flaky {
        fn reopen(&self, _: Cut, _: String) -> BoxFuture<'static, Outcome<Continued>> {
            let n = self.0.fetch_add(1, Ordering::SeqCst);
            Box::pin(async move {
                let start = cut_after(&format!(" more{n}"), &[]);
                Outcome {
                    result: Ok(Success {
                        provider: ProviderId::new(&format!("next{n}")),
                        upstream_model: "m".into(),
                        value: Continued {
                            start,
                            style: Style::ContinueFinalMessage,
                        },
                        served: Served::Direct,
                    }),
                    attempts: Vec::new(),
                }
            })
        }
    }

    /// Passes on what the relay tells it.
    struct Notes(std::sync::mpsc::Sender<RecoveryOutcome>);

    impl StreamObserver for Notes {
        fn on_event(&mut self, _: &[u8]) -> bool {
            true
        }
        fn on_end(&mut self, _: StreamEnd) {}
        fn on_recovery(&mut self, note: &Recovered) {
            let _ = self.0.send(note.outcome);
        }
    }

    #[tokio::test]
    async fn a_stream_is_continued_at_most_twice_then_ends_with_the_error_event() {
        // Arrange
        let asked = Arc::new(AtomicUsize::new(0));
        let (notes, told) = std::sync::mpsc::channel();
        let cut = Cut {
            provider: ProviderId::new("p"),
            model: "m".into(),
        };
        let recovery = Recovery::new(
            Box::new(Flaky(asked.clone())),
            Bytes::from_static(b"{}"),
            Dialect::OpenAi,
            cut,
        );
        let source = Source {
            provider: ProviderId::new("p"),
            dialect: Dialect::OpenAi,
            idle: Duration::from_secs(5),
            usage_required: false,
            shutdown: None,
        };

        // Act
        let out: Vec<Bytes> = relay_recovering(cut_after("Hello", &[" world"]), source, Notes(notes), Some(recovery))
            .map(|r| r.unwrap_or_default())
            .collect()
            .await;

        // Assert: both continuations spliced in, then the third cut ends the stream.
        let text = String::from_utf8_lossy(&out.concat()).into_owned();
        assert!(text.contains(" more0") && text.contains(" more1"), "{text}");
        assert!(
            text.contains("stream_upstream_error") && !text.contains("[DONE]"),
            "{text}"
        );
        assert!(text.contains("next1"), "the error names the provider cut last: {text}");
        assert_eq!(asked.load(Ordering::SeqCst), 2);
        let told: Vec<_> = told.try_iter().collect();
        assert_eq!(
            told,
            [
                RecoveryOutcome::Recovered,
                RecoveryOutcome::Recovered,
                RecoveryOutcome::NotRecoverable
            ]
        );
    }
}

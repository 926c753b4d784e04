//! The committed stream: events go to the client as they arrive; after the first byte an upstream
//! failure can no longer fall over, so it ends the stream with a final SSE error event and no
//! end marker (`[DONE]`, or Anthropic's `message_stop`) — a cut stream is never passed off as
//! complete. Events are already in the client's dialect; only the end marker and the error event
//! depend on it.
//!
//! A stream whose answer is whole is complete even when the upstream then closes (or breaks, or
//! falls silent) without its end marker: in the OpenAI dialect, once a `finish_reason` has passed
//! (and the usage chunk, when the client or a bridged front asked for it); in the Anthropic
//! dialect, once the `message_delta` carrying a `stop_reason` has passed. The relay then writes
//! the missing end marker itself, so the client (and a Responses front's `response.completed`)
//! sees a finished answer rather than an error.
//!
//! In the Responses dialect the stream is whole once `response.completed` (or
//! `response.incomplete`) has passed, and there is no `[DONE]`; an upstream's own
//! `response.failed` ends it as failed, and a stream cut before either ends with a
//! `response.failed` event the relay writes, naming the response the stream announced.
//!
//! A stream that may recover (`stream_recovery: continue`, see `recover`) is continued at a cut
//! instead: the continuation's events are spliced in and the stream goes on; only when it cannot be
//! continued does it end with the error event. Streams that may not recover are never parsed for it.
//!
//! At shutdown, a stream still running when the grace period ends is cut by the gateway: it gets
//! the dialect's error event and its observer hears `StreamEnd::Shutdown`, not a client disconnect.
//!
//! What the upstream connection has already read goes out together: the HTTP client hands a
//! response body over one HTTP chunk (often one event) per turn of its connection task, so after
//! each chunk the relay yields once and takes whatever that turn delivered, never waiting for the
//! network. One write to the client then carries every event of one upstream read, instead of one
//! write (and one loopback delivery) per event. A stream whose events come one at a time skips
//! that extra turn, looking again every few chunks.

use std::convert::Infallible;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{FutureExt, Stream, StreamExt, stream};
use tokio_util::sync::CancellationToken;

use super::StreamStart;
use super::recover::{Recovered, Recovery};
use crate::dialects::sse;
use crate::domain::{Dialect, ProviderId};
use crate::providers::{ByteStream, UpstreamError};

/// The most one gathered write holds; past it the rest waits for the next turn.
const MAX_GATHER: usize = 64 * 1024;
/// A paced stream (its last gather found nothing behind the chunk) checks again only every this
/// many chunks: the extra scheduler turn per event is not spent where events come one at a time.
const PROBE_EVERY: u8 = 8;

/// One item of the upstream body.
type Item = Option<Result<Bytes, UpstreamError>>;

/// How a relayed stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// The end marker passed (`[DONE]`, or `message_stop` in the Anthropic dialect).
    Complete,
    /// The upstream connection broke.
    UpstreamError,
    /// The upstream fell silent longer than `stream_idle_timeout_seconds`.
    IdleTimeout,
    /// The upstream closed without the end marker.
    Truncated,
    /// The gateway cut it: the shutdown grace period ran out.
    Shutdown,
}

impl StreamEnd {
    /// The snake_case name for logs and history.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::UpstreamError => "upstream_error",
            Self::IdleTimeout => "idle_timeout",
            Self::Truncated => "truncated",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Watches a relayed stream. Never told of an end means the client went away first: implement
/// `Drop` to notice that.
pub trait StreamObserver: Send + 'static {
    /// Sees each event's data (before it reaches the client); `false` drops the event from the
    /// client's stream (the usage chunk the client did not ask for).
    fn on_event(&mut self, data: &[u8]) -> bool;
    /// Called once when the stream ends on its own.
    fn on_end(&mut self, end: StreamEnd);
    /// Called at each cut of a stream that may recover, before it goes on or ends.
    fn on_recovery(&mut self, _note: &Recovered) {}
}

struct Relay<O> {
    first: Option<Bytes>,
    rest: ByteStream,
    /// The end (or error) met while gathering, handled after what came before it goes out.
    stashed: Option<Item>,
    /// Whether the last gather found more behind its chunk (a burst); else chunks since it.
    bursty: bool,
    since_probe: u8,
    idle: Duration,
    framer: sse::EventFramer,
    done: bool,
    /// The answer has ended (`finish_reason`, or Anthropic's `stop_reason`) before the end marker.
    answered: bool,
    /// A usage chunk has passed.
    usage_seen: bool,
    /// The upstream ended the stream as failed (a Responses `error` or `response.failed` event).
    failed: bool,
    /// The Responses stream's response id and last sequence number, for the closing event of a cut.
    response_id: Option<String>,
    sequence: Option<u64>,
    usage_required: bool,
    shutdown: Option<CancellationToken>,
    provider: ProviderId,
    dialect: Dialect,
    observer: O,
    finished: bool,
    /// Set when the stream may recover from a cut.
    recovery: Option<Box<Recovery>>,
}

impl<O: StreamObserver> Relay<O> {
    /// `chunk` and whatever the upstream has already delivered behind it, without waiting for more
    /// (looked for while the stream comes in bursts, and every `PROBE_EVERY` chunks otherwise).
    async fn gather(&mut self, chunk: Bytes) -> Bytes {
        if !self.bursty && self.since_probe < PROBE_EVERY {
            self.since_probe += 1;
            return chunk;
        }
        self.since_probe = 0;
        let mut out: Option<BytesMut> = None;
        let mut len = chunk.len();
        while len < MAX_GATHER {
            // Lets the connection task hand over the next chunk if it has one already read.
            tokio::task::yield_now().await;
            match self.rest.next().now_or_never() {
                Some(Some(Ok(next))) => {
                    let out = out.get_or_insert_with(|| {
                        let mut b = BytesMut::with_capacity(2 * chunk.len() + next.len());
                        b.extend_from_slice(&chunk);
                        b
                    });
                    out.extend_from_slice(&next);
                    len = out.len();
                }
                Some(end) => {
                    self.stashed = Some(end);
                    break;
                }
                None => break,
            }
        }
        self.bursty = out.is_some();
        out.map_or(chunk, BytesMut::freeze)
    }

    /// Lets the observer see each event, drops those it refuses, notes the end marker.
    fn filter(&mut self, run: Bytes) -> Bytes {
        let mut dropped = Vec::new();
        for event in sse::events(&run) {
            let Some(data) = event.data else { continue };
            if let Some(recovery) = &mut self.recovery {
                recovery.observe(data);
            }
            if sse::is_done(data) {
                self.done = true;
                continue;
            }
            match self.dialect {
                Dialect::Anthropic if sse::is_message_stop(data) => self.done = true,
                Dialect::Anthropic => self.answered |= has_value(data, b"\"stop_reason\""),
                Dialect::OpenAi => {
                    self.answered |= has_value(data, b"\"finish_reason\"");
                    self.usage_seen |= crate::dialects::wire::may_carry_usage(data);
                }
                Dialect::Responses => self.responses_event(data),
            }
            if !self.observer.on_event(data) {
                dropped.push(event.range);
            }
        }
        if dropped.is_empty() {
            return run;
        }
        let mut kept = BytesMut::with_capacity(run.len());
        let mut at = 0;
        for range in dropped {
            kept.extend_from_slice(&run[at..range.start]);
            at = range.end;
        }
        kept.extend_from_slice(&run[at..]);
        kept.freeze()
    }

    /// Notes how a Responses event bears on the end: a whole answer, an upstream failure.
    fn responses_event(&mut self, data: &[u8]) {
        if self.response_id.is_none() {
            self.response_id = sse::response_id(data);
        }
        if let Some(n) = sse::sequence_number(data) {
            self.sequence = Some(n);
        }
        match sse::responses_end(data) {
            Some(sse::ResponsesEnd::Whole) => self.done = true,
            Some(sse::ResponsesEnd::Failed) => {
                self.failed = true;
                self.done = true;
            }
            // `response.failed` may follow; if the stream ends first, the relay writes one.
            Some(sse::ResponsesEnd::Error) => self.failed = true,
            None => {}
        }
    }

    /// A run as the client gets it: a continuation's events are rewritten, anything else is not.
    fn splice(&mut self, run: Bytes) -> Bytes {
        match &mut self.recovery {
            Some(recovery) => recovery.splice(run),
            None => run,
        }
    }

    /// At a cut of a stream that may recover: whether a continuation now serves it.
    async fn recover(&mut self, end: StreamEnd) -> bool {
        if self.done || self.failed || self.whole() {
            return false;
        }
        let Some(recovery) = self.recovery.as_mut() else {
            return false;
        };
        let resumed = match &self.shutdown {
            Some(token) => {
                tokio::select! {
                    biased;
                    () = token.cancelled() => return false,
                    resumed = recovery.resume(end) => resumed,
                }
            }
            None => recovery.resume(end).await,
        };
        let (note, start) = resumed;
        self.observer.on_recovery(&note);
        let (Some(start), Some(by)) = (start, note.by) else {
            return false;
        };
        self.provider = by.provider;
        self.first = Some(start.first);
        self.rest = start.rest;
        self.stashed = None;
        // What the cut stream left half-framed is dropped: the client never saw it.
        self.framer = sse::EventFramer::default();
        self.bursty = true;
        self.since_probe = 0;
        true
    }

    /// Whether the answer is whole though its end marker never came.
    fn whole(&self) -> bool {
        self.answered && (self.usage_seen || !self.usage_required || self.dialect == Dialect::Anthropic)
    }

    fn end(&mut self, end: StreamEnd, mut out: BytesMut) -> Option<Bytes> {
        if self.failed && self.done {
            // The upstream closed the stream with its own `response.failed`: relayed, not completed.
            self.finished = true;
            tracing::warn!(provider = %self.provider, "stream ended by the upstream as failed");
            self.observer.on_end(StreamEnd::UpstreamError);
            return (!out.is_empty()).then(|| out.freeze());
        }
        let end = if !self.done && end != StreamEnd::Shutdown && end != StreamEnd::Complete && self.whole() {
            tracing::debug!(provider = %self.provider, end = end.as_str(), "stream ended after its answer without the end marker");
            out.extend_from_slice(end_marker(self.dialect));
            StreamEnd::Complete
        } else {
            end
        };
        self.finished = true;
        self.observer.on_end(end);
        if end != StreamEnd::Complete {
            tracing::warn!(provider = %self.provider, end = end.as_str(), "stream cut after it started");
            let response = CutResponse {
                id: self.response_id.as_deref(),
                sequence: self.sequence.map_or(0, |n| n.saturating_add(1)),
            };
            out.extend_from_slice(&error_event(&self.provider, end, self.dialect, &response));
        }
        (!out.is_empty()).then(|| out.freeze())
    }
}

/// Where a relayed stream comes from and what it speaks.
#[derive(Debug, Clone)]
pub struct Source {
    /// The provider committed to.
    pub provider: ProviderId,
    /// The dialect its events are in (the client's).
    pub dialect: Dialect,
    /// Longest silence between chunks.
    pub idle: Duration,
    /// Whether the answer is whole only with its usage chunk (the client asked for it, or a
    /// bridged front needs it).
    pub usage_required: bool,
    /// Cancelled when the shutdown grace period runs out: the stream is then cut by the gateway.
    pub shutdown: Option<CancellationToken>,
}

/// Turns a started upstream stream into the client's body.
pub fn relay<O: StreamObserver>(
    start: StreamStart,
    source: Source,
    observer: O,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    relay_recovering(start, source, observer, None)
}

/// `relay`, continuing the stream at a cut when `recovery` is set.
pub fn relay_recovering<O: StreamObserver>(
    start: StreamStart,
    source: Source,
    observer: O,
    recovery: Option<Recovery>,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let Source {
        provider,
        dialect,
        idle,
        usage_required,
        shutdown,
    } = source;
    let state = Relay {
        first: Some(start.first),
        rest: start.rest,
        stashed: None,
        bursty: true,
        since_probe: 0,
        idle,
        framer: sse::EventFramer::default(),
        done: false,
        answered: false,
        usage_seen: false,
        failed: false,
        response_id: None,
        sequence: None,
        usage_required,
        shutdown,
        provider,
        dialect,
        observer,
        finished: false,
        recovery: recovery.map(Box::new),
    };
    stream::unfold(state, |mut s| async move {
        loop {
            if s.finished {
                return None;
            }
            if s.done {
                // The end marker has been relayed, so the response is complete: end here instead of
                // waiting on the upstream connection, and never report its later hiccups.
                return s.end(StreamEnd::Complete, BytesMut::new()).map(|b| (Ok(b), s));
            }
            let chunk = match s.first.take() {
                // Out at once: the time to first token is not spent gathering.
                Some(first) => first,
                None => match next(&mut s).await {
                    Next::Cut => return s.end(StreamEnd::Shutdown, BytesMut::new()).map(|b| (Ok(b), s)),
                    Next::Item(Some(Ok(chunk))) => s.gather(chunk).await,
                    Next::Item(None) => {
                        if !s.done && s.recover(StreamEnd::Truncated).await {
                            continue;
                        }
                        // Whatever the upstream left unterminated still goes out, then the verdict.
                        let tail = s.framer.finish().map(|t| s.filter(t)).unwrap_or_default();
                        let end = if s.done {
                            StreamEnd::Complete
                        } else {
                            StreamEnd::Truncated
                        };
                        let out = s.end(end, BytesMut::from(&tail[..]))?;
                        return Some((Ok(out), s));
                    }
                    // A partial event left in the framer is dropped: the error event must start
                    // on an event boundary to be readable.
                    Next::Item(Some(Err(_))) => {
                        if s.recover(StreamEnd::UpstreamError).await {
                            continue;
                        }
                        return s.end(StreamEnd::UpstreamError, BytesMut::new()).map(|b| (Ok(b), s));
                    }
                    Next::Idle => {
                        if s.recover(StreamEnd::IdleTimeout).await {
                            continue;
                        }
                        return s.end(StreamEnd::IdleTimeout, BytesMut::new()).map(|b| (Ok(b), s));
                    }
                },
            };
            if let Some(run) = s.framer.push(chunk) {
                let run = s.splice(run);
                let out = s.filter(run);
                if !out.is_empty() {
                    return Some((Ok(out), s));
                }
            }
        }
    })
}

/// What waiting for the upstream gave.
enum Next {
    Item(Item),
    /// Nothing within the idle timeout.
    Idle,
    /// The shutdown grace period ran out.
    Cut,
}

/// The next upstream item: one stashed while gathering, else the next to arrive within the idle
/// timeout, unless shutdown's grace period runs out first.
async fn next<O>(s: &mut Relay<O>) -> Next {
    if let Some(item) = s.stashed.take() {
        return Next::Item(item);
    }
    let wait = tokio::time::timeout(s.idle, s.rest.next());
    let got = match &s.shutdown {
        Some(token) => {
            tokio::select! {
                biased;
                () = token.cancelled() => return Next::Cut,
                got = wait => got,
            }
        }
        None => wait.await,
    };
    got.map_or(Next::Idle, Next::Item)
}

/// Whether `key` appears in `data` with a value other than `null` (a byte scan: events are not
/// parsed for it).
fn has_value(data: &[u8], key: &[u8]) -> bool {
    let mut rest = data;
    while let Some(at) = memchr::memmem::find(rest, key) {
        rest = &rest[at + key.len()..];
        let Some(value) = rest.trim_ascii_start().strip_prefix(b":") else {
            continue;
        };
        if !value.trim_ascii_start().starts_with(b"null") {
            return true;
        }
    }
    false
}

/// The end marker of a whole answer whose upstream never sent it.
fn end_marker(dialect: Dialect) -> &'static [u8] {
    match dialect {
        Dialect::OpenAi => b"data: [DONE]\n\n",
        Dialect::Anthropic => b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
        // Never reached: a Responses stream is whole only once its own closing event passed.
        Dialect::Responses => b"",
    }
}

/// What the `response.failed` closing a cut Responses stream names.
struct CutResponse<'a> {
    /// The id `response.created` announced, if it came.
    id: Option<&'a str>,
    /// The event's `sequence_number`: after the last relayed.
    sequence: u64,
}

/// The final event of a cut stream, in the client's dialect: OpenAI's `data: {"error": ...}`, or
/// Anthropic's `event: error`.
fn error_event(provider: &ProviderId, end: StreamEnd, dialect: Dialect, cut: &CutResponse<'_>) -> Bytes {
    let why = match end {
        StreamEnd::IdleTimeout => "went silent",
        StreamEnd::Truncated => "closed the stream before its end",
        StreamEnd::Shutdown => "was cut off: the gateway is shutting down",
        _ => "broke the connection",
    };
    let message = if end == StreamEnd::Shutdown {
        format!("the stream from provider `{provider}` {why}; the response is incomplete, retry it")
    } else {
        format!("upstream provider `{provider}` {why}; the response is incomplete")
    };
    match dialect {
        Dialect::OpenAi => {
            let body = serde_json::json!({
                "error": {
                    "message": message,
                    "type": "server_error",
                    "param": null,
                    "code": format!("stream_{}", end.as_str()),
                }
            });
            sse::data_event(body.to_string().as_bytes())
        }
        Dialect::Anthropic => {
            let body = serde_json::json!({
                "type": "error",
                "error": { "type": "api_error", "message": message }
            });
            sse::named_event("error", body.to_string().as_bytes())
        }
        Dialect::Responses => {
            let created_at = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs());
            let body = serde_json::json!({
                "type": "response.failed",
                "sequence_number": cut.sequence,
                "response": {
                    "id": cut.id,
                    "object": "response",
                    "created_at": created_at,
                    "status": "failed",
                    "error": { "code": "server_error", "message": message },
                    "incomplete_details": null,
                    "output": [],
                    "usage": null,
                }
            });
            sse::named_event("response.failed", body.to_string().as_bytes())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Quiet;

    impl StreamObserver for Quiet {
        fn on_event(&mut self, _: &[u8]) -> bool {
            true
        }
        fn on_end(&mut self, _: StreamEnd) {}
    }

    fn source() -> Source {
        Source {
            provider: ProviderId::new("p"),
            dialect: Dialect::OpenAi,
            idle: Duration::from_secs(5),
            usage_required: false,
            shutdown: None,
        }
    }

    #[tokio::test]
    async fn chunks_already_delivered_go_out_in_one_write_after_the_first() {
        // Arrange: every chunk after the first is ready at once, as when one upstream read held them.
        let rest: Vec<Result<Bytes, UpstreamError>> = ["data: 2\n\n", "data: 3\n\n", "data: [DONE]\n\n"]
            .into_iter()
            .map(|c| Ok(Bytes::from_static(c.as_bytes())))
            .collect();
        let start = StreamStart {
            first: Bytes::from_static(b"data: 1\n\n"),
            rest: Box::pin(stream::iter(rest)),
        };

        // Act
        let out: Vec<Bytes> = relay(start, source(), Quiet)
            .map(|r| r.unwrap_or_default())
            .collect()
            .await;

        // Assert: the first chunk alone (time to first token), then the rest together, unchanged.
        assert_eq!(out.len(), 2, "{out:?}");
        assert_eq!(&out[0][..], b"data: 1\n\n");
        assert_eq!(&out[1][..], b"data: 2\n\ndata: 3\n\ndata: [DONE]\n\n");
    }

    #[tokio::test]
    async fn an_end_met_while_gathering_comes_after_what_preceded_it() {
        // Arrange: two chunks, then the connection breaks with no end marker.
        let rest: Vec<Result<Bytes, UpstreamError>> = vec![
            Ok(Bytes::from_static(b"data: 2\n\n")),
            Ok(Bytes::from_static(b"data: 3\n\n")),
            Err(UpstreamError::new(
                &ProviderId::new("p"),
                crate::providers::UpstreamErrorKind::StreamCut,
            )),
        ];
        let start = StreamStart {
            first: Bytes::from_static(b"data: 1\n\n"),
            rest: Box::pin(stream::iter(rest)),
        };

        // Act
        let out: Vec<Bytes> = relay(start, source(), Quiet)
            .map(|r| r.unwrap_or_default())
            .collect()
            .await;

        // Assert: both chunks were relayed, then the error event, and no [DONE].
        let all = out.concat();
        let text = String::from_utf8_lossy(&all);
        assert!(
            text.starts_with("data: 1\n\ndata: 2\n\ndata: 3\n\ndata: {\"error\""),
            "{text}"
        );
        assert!(
            text.contains("stream_upstream_error") && !text.contains("[DONE]"),
            "{text}"
        );
    }

    async fn relayed(dialect: Dialect, usage_required: bool, first: &'static str, rest: Vec<&'static str>) -> String {
        let rest: Vec<Result<Bytes, UpstreamError>> =
            rest.into_iter().map(|c| Ok(Bytes::from_static(c.as_bytes()))).collect();
        let start = StreamStart {
            first: Bytes::from_static(first.as_bytes()),
            rest: Box::pin(stream::iter(rest)),
        };
        let source = Source {
            dialect,
            usage_required,
            ..source()
        };
        let out: Vec<Bytes> = relay(start, source, Quiet)
            .map(|r| r.unwrap_or_default())
            .collect()
            .await;
        String::from_utf8_lossy(&out.concat()).into_owned()
    }

    const CONTENT: &str =
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n";
    const FINISH: &str = "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\": \"stop\"}]}\n\n";
    const USAGE: &str =
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":1,\"total_tokens\":2}}\n\n";

    #[tokio::test]
    async fn a_finished_answer_without_done_gets_done_from_the_relay() {
        let text = relayed(Dialect::OpenAi, false, CONTENT, vec![FINISH]).await;
        assert!(text.ends_with(&format!("{FINISH}data: [DONE]\n\n")), "{text}");
        assert!(!text.contains("error"), "{text}");
    }

    #[tokio::test]
    async fn a_null_finish_reason_is_not_an_end() {
        let text = relayed(Dialect::OpenAi, false, CONTENT, vec![CONTENT]).await;
        assert!(text.contains("stream_truncated") && !text.contains("[DONE]"), "{text}");
    }

    #[tokio::test]
    async fn an_answer_without_the_usage_it_was_asked_for_is_incomplete() {
        let cut = relayed(Dialect::OpenAi, true, CONTENT, vec![FINISH]).await;
        assert!(cut.contains("stream_truncated") && !cut.contains("[DONE]"), "{cut}");
        let whole = relayed(Dialect::OpenAi, true, CONTENT, vec![FINISH, USAGE]).await;
        assert!(whole.ends_with("data: [DONE]\n\n"), "{whole}");
    }

    #[tokio::test]
    async fn an_anthropic_answer_with_its_stop_reason_gets_message_stop_from_the_relay() {
        let start = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n";
        let delta = "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":1}}\n\n";
        let text = relayed(Dialect::Anthropic, false, start, vec![delta]).await;
        assert!(
            text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
            "{text}"
        );
        let cut = relayed(Dialect::Anthropic, false, start, vec![]).await;
        assert!(cut.contains("event: error") && !cut.contains("message_stop"), "{cut}");
    }

    const CREATED: &str = "event: response.created\ndata: {\"type\":\"response.created\",\"sequence_number\":0,\"response\":{\"id\":\"resp_1\",\"object\":\"response\",\"status\":\"in_progress\"}}\n\n";
    const DELTA: &str = "event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"sequence_number\":1,\"delta\":\"Hi\"}\n\n";
    const COMPLETED: &str = "event: response.completed\ndata: {\"type\":\"response.completed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_1\",\"status\":\"completed\"}}\n\n";
    const FAILED: &str = "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":2,\"response\":{\"id\":\"resp_1\",\"status\":\"failed\"}}\n\n";

    #[tokio::test]
    async fn a_responses_stream_is_whole_after_response_completed_and_gets_nothing_added() {
        let text = relayed(Dialect::Responses, false, CREATED, vec![DELTA, COMPLETED]).await;
        assert_eq!(text, format!("{CREATED}{DELTA}{COMPLETED}"));
    }

    #[tokio::test]
    async fn a_cut_responses_stream_ends_with_response_failed_naming_its_response() {
        let text = relayed(Dialect::Responses, false, CREATED, vec![DELTA]).await;
        let last = text.rsplit("\n\n").nth(1).unwrap_or_default();
        assert!(last.starts_with("event: response.failed\n"), "{text}");
        let data: serde_json::Value =
            serde_json::from_str(last.lines().nth(1).unwrap_or_default().trim_start_matches("data: ")).unwrap();
        assert_eq!(data["response"]["id"], "resp_1");
        assert_eq!(data["sequence_number"], 2);
        assert_eq!(data["response"]["status"], "failed");
    }

    #[tokio::test]
    async fn an_upstreams_own_response_failed_is_relayed_as_the_end() {
        let text = relayed(Dialect::Responses, false, CREATED, vec![FAILED]).await;
        assert_eq!(text, format!("{CREATED}{FAILED}"));
    }

    /// Counts the ends it is told of, and whether one was a shutdown cut.
    struct Ends(std::sync::Arc<(std::sync::atomic::AtomicUsize, std::sync::atomic::AtomicBool)>);

    impl StreamObserver for Ends {
        fn on_event(&mut self, _: &[u8]) -> bool {
            true
        }
        fn on_end(&mut self, end: StreamEnd) {
            use std::sync::atomic::Ordering::SeqCst;
            self.0.0.fetch_add(1, SeqCst);
            self.0.1.store(end == StreamEnd::Shutdown, SeqCst);
        }
    }

    #[tokio::test]
    async fn a_stream_running_when_the_grace_period_ends_is_cut_with_an_error_event() {
        // Arrange: an upstream that never sends another chunk, and a grace period already over.
        let start = StreamStart {
            first: Bytes::from_static(CONTENT.as_bytes()),
            rest: Box::pin(stream::pending()),
        };
        let token = CancellationToken::new();
        let ends = std::sync::Arc::new((
            std::sync::atomic::AtomicUsize::new(0),
            std::sync::atomic::AtomicBool::new(false),
        ));
        let source = Source {
            shutdown: Some(token.clone()),
            idle: Duration::from_secs(60),
            ..source()
        };
        token.cancel();

        // Act
        let out: Vec<Bytes> = tokio::time::timeout(
            Duration::from_secs(5),
            relay(start, source, Ends(ends.clone()))
                .map(|r| r.unwrap_or_default())
                .collect(),
        )
        .await
        .expect("the cut ends the stream");

        // Assert
        let text = String::from_utf8_lossy(&out.concat()).into_owned();
        assert!(text.contains("stream_shutdown") && !text.contains("[DONE]"), "{text}");
        assert_eq!(ends.0.load(std::sync::atomic::Ordering::SeqCst), 1);
        assert!(
            ends.1.load(std::sync::atomic::Ordering::SeqCst),
            "told of a shutdown cut"
        );
    }
}

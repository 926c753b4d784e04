//! The committed stream: events go to the client as they arrive; after the first byte an upstream
//! failure can no longer fall over, so it ends the stream with a final SSE error event and no
//! end marker (`[DONE]`, or Anthropic's `message_stop`) — a cut stream is never passed off as
//! complete. Events are already in the client's dialect; only the end marker and the error event
//! depend on it.
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

use super::StreamStart;
use crate::domain::{Dialect, ProviderId};
use crate::providers::{ByteStream, UpstreamError, sse};

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
}

impl StreamEnd {
    /// The snake_case name for logs and history.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::UpstreamError => "upstream_error",
            Self::IdleTimeout => "idle_timeout",
            Self::Truncated => "truncated",
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
    provider: ProviderId,
    dialect: Dialect,
    observer: O,
    finished: bool,
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
            if sse::is_done(data) {
                self.done = true;
                continue;
            }
            if self.dialect == Dialect::Anthropic && sse::is_message_stop(data) {
                self.done = true;
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

    fn end(&mut self, end: StreamEnd, mut out: BytesMut) -> Option<Bytes> {
        self.finished = true;
        self.observer.on_end(end);
        if end != StreamEnd::Complete {
            tracing::warn!(provider = %self.provider, end = end.as_str(), "stream cut after it started");
            out.extend_from_slice(&error_event(&self.provider, end, self.dialect));
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
}

/// Turns a started upstream stream into the client's body.
pub fn relay<O: StreamObserver>(
    start: StreamStart,
    source: Source,
    observer: O,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let Source {
        provider,
        dialect,
        idle,
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
        provider,
        dialect,
        observer,
        finished: false,
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
                    Ok(Some(Ok(chunk))) => s.gather(chunk).await,
                    Ok(None) => {
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
                    Ok(Some(Err(_))) => return s.end(StreamEnd::UpstreamError, BytesMut::new()).map(|b| (Ok(b), s)),
                    Err(_) => return s.end(StreamEnd::IdleTimeout, BytesMut::new()).map(|b| (Ok(b), s)),
                },
            };
            if let Some(run) = s.framer.push(chunk) {
                let out = s.filter(run);
                if !out.is_empty() {
                    return Some((Ok(out), s));
                }
            }
        }
    })
}

/// The next upstream item: one stashed while gathering, else the next to arrive within the idle
/// timeout (`Err` when none does).
async fn next<O>(s: &mut Relay<O>) -> Result<Item, tokio::time::error::Elapsed> {
    match s.stashed.take() {
        Some(item) => Ok(item),
        None => tokio::time::timeout(s.idle, s.rest.next()).await,
    }
}

/// The final event of a cut stream, in the client's dialect: OpenAI's `data: {"error": ...}`, or
/// Anthropic's `event: error`.
fn error_event(provider: &ProviderId, end: StreamEnd, dialect: Dialect) -> Bytes {
    let why = match end {
        StreamEnd::IdleTimeout => "went silent",
        StreamEnd::Truncated => "closed the stream before its end",
        _ => "broke the connection",
    };
    let message = format!("upstream provider `{provider}` {why}; the response is incomplete");
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
}

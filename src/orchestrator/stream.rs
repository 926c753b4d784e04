//! The committed stream: chunks go to the client as they arrive; after the first byte an upstream
//! failure can no longer fall over, so it ends the stream with a final SSE error event and no
//! `[DONE]` — a cut stream is never passed off as complete.

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};

use super::StreamStart;
use crate::domain::ProviderId;
use crate::providers::{ByteStream, sse};

/// How a relayed stream ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamEnd {
    /// `[DONE]` passed.
    Complete,
    /// The upstream connection broke.
    UpstreamError,
    /// The upstream fell silent longer than `stream_idle_timeout_seconds`.
    IdleTimeout,
    /// The upstream closed without `[DONE]`.
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

/// Watches a relayed stream; told how it ended (or, if never told, that the client went away).
pub trait StreamObserver: Send + 'static {
    /// Called once for every chunk handed to the client.
    fn on_chunk(&mut self, chunk: &Bytes);
    /// Called once when the stream ends on its own.
    fn on_end(&mut self, end: StreamEnd);
}

struct Relay<O> {
    first: Option<Bytes>,
    rest: ByteStream,
    idle: Duration,
    done: sse::DoneTracker,
    provider: ProviderId,
    observer: O,
    finished: bool,
}

/// Turns a started upstream stream into the client's body.
pub fn relay<O: StreamObserver>(
    start: StreamStart,
    idle: Duration,
    provider: ProviderId,
    observer: O,
) -> impl Stream<Item = Result<Bytes, Infallible>> + Send + 'static {
    let state = Relay {
        first: Some(start.first),
        rest: start.rest,
        idle,
        done: sse::DoneTracker::default(),
        provider,
        observer,
        finished: false,
    };
    stream::unfold(state, |mut s| async move {
        if s.finished {
            return None;
        }
        if let Some(first) = s.first.take() {
            s.done.observe(&first);
            s.observer.on_chunk(&first);
            return Some((Ok(first), s));
        }
        if s.done.is_done() {
            // `[DONE]` has been relayed, so the response is complete: end here instead of waiting
            // on the upstream connection, and never report its later hiccups as a broken stream.
            s.finished = true;
            s.observer.on_end(StreamEnd::Complete);
            return None;
        }
        let end = match tokio::time::timeout(s.idle, s.rest.next()).await {
            Ok(Some(Ok(chunk))) => {
                s.done.observe(&chunk);
                s.observer.on_chunk(&chunk);
                return Some((Ok(chunk), s));
            }
            Ok(None) => StreamEnd::Truncated,
            Ok(Some(Err(_))) => StreamEnd::UpstreamError,
            Err(_) => StreamEnd::IdleTimeout,
        };
        s.finished = true;
        s.observer.on_end(end);
        tracing::warn!(provider = %s.provider, end = end.as_str(), "stream cut after it started");
        Some((Ok(error_event(&s.provider, end)), s))
    })
}

fn error_event(provider: &ProviderId, end: StreamEnd) -> Bytes {
    let why = match end {
        StreamEnd::IdleTimeout => "went silent",
        StreamEnd::Truncated => "closed the stream before [DONE]",
        _ => "broke the connection",
    };
    let body = serde_json::json!({
        "error": {
            "message": format!("upstream provider `{provider}` {why}; the response is incomplete"),
            "type": "server_error",
            "param": null,
            "code": format!("stream_{}", end.as_str()),
        }
    });
    sse::data_event(body.to_string().as_bytes())
}

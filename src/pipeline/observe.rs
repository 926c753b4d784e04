//! Observing outcomes: the one place that logs what a request came to (and, later, records it).

use std::time::Instant;

use bytes::Bytes;

use crate::domain::{ProviderId, RequestId};
use crate::orchestrator::stream::{StreamEnd, StreamObserver};

/// Logs prompt text only when `LOG_PROMPTS=true`; the one gate for prompt and completion text.
pub(super) fn log_text(enabled: bool, request_id: &RequestId, what: &'static str, text: &[u8]) {
    if enabled {
        tracing::info!(request_id = %request_id, kind = what, text = %String::from_utf8_lossy(text), "payload");
    }
}

/// Follows a relayed stream to its end; a stream dropped before its end was cancelled by the client.
pub(super) struct StreamLog {
    pub request_id: RequestId,
    pub provider: ProviderId,
    pub started: Instant,
    pub chunks: usize,
    pub bytes: usize,
    pub ended: bool,
}

impl StreamObserver for StreamLog {
    fn on_chunk(&mut self, chunk: &Bytes) {
        self.chunks += 1;
        self.bytes += chunk.len();
    }

    fn on_end(&mut self, end: StreamEnd) {
        self.ended = true;
        tracing::info!(
            request_id = %self.request_id,
            provider = %self.provider,
            chunks = self.chunks,
            bytes = self.bytes,
            end = end.as_str(),
            duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            "stream finished"
        );
    }
}

impl Drop for StreamLog {
    fn drop(&mut self) {
        if !self.ended {
            tracing::info!(
                request_id = %self.request_id,
                provider = %self.provider,
                chunks = self.chunks,
                bytes = self.bytes,
                end = "cancelled",
                "client disconnected; upstream request cancelled"
            );
        }
    }
}

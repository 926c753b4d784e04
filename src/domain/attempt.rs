//! What one attempt against one provider came to: the orchestrator's account of its work.

use std::time::Duration;

use super::ProviderId;

/// How one attempt ended; a closed set, safe as a metrics label and stable in history rows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The upstream answered 2xx (for streams: sent its first chunk).
    Success,
    /// The provider was not called because its breaker is open.
    BreakerOpen,
    /// Connecting failed.
    Connect,
    /// No answer (or no first chunk) within the configured time.
    Timeout,
    /// 429 from the upstream.
    RateLimited,
    /// 5xx or 408 from the upstream.
    ServerError,
    /// 401/403/402: the provider's own credentials or account.
    Unauthorized,
    /// 404: the model is not served there.
    NotFound,
    /// 400/413/422 and other client faults, returned to the client as-is.
    Rejected,
    /// A 400 (or TGI's 422) saying the prompt does not fit the model's context window: the
    /// client's as-is, unless a route's `on_context_length_exceeded` or the request's own
    /// fallback models take it.
    ContextLengthExceeded,
    /// A 2xx whose body is not what the protocol promises, or an in-band error event.
    Malformed,
    /// The provider cannot do this operation.
    Unsupported,
    /// A 2xx body over `limits.max_response_bytes`, refused while reading.
    TooLarge,
    /// A 3xx: redirects are never followed (they would carry the key and prompt elsewhere).
    Redirected,
    /// The provider was not called because every key of its pool rests after refusals.
    KeysCooling,
    /// A stream that broke or stalled after its first chunk, which the gateway then asked the
    /// next candidate to continue (`stream_recovery: continue`).
    StreamCut,
    /// Not called: over a concurrency cap, and its queue was full or the wait ran out.
    Overloaded,
}

impl AttemptOutcome {
    /// The snake_case name used in logs, errors and history.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::BreakerOpen => "breaker_open",
            Self::Connect => "connect_error",
            Self::Timeout => "timeout",
            Self::RateLimited => "rate_limited",
            Self::ServerError => "server_error",
            Self::Unauthorized => "unauthorized",
            Self::NotFound => "not_found",
            Self::Rejected => "rejected",
            Self::ContextLengthExceeded => "context_length_exceeded",
            Self::Malformed => "malformed_response",
            Self::Unsupported => "unsupported",
            Self::TooLarge => "response_too_large",
            Self::Redirected => "redirected",
            Self::KeysCooling => "keys_cooling",
            Self::StreamCut => "stream_cut",
            Self::Overloaded => "overloaded",
        }
    }
}

/// One line of the attempt log returned with every outcome.
#[derive(Clone, Debug)]
pub struct AttemptSummary {
    /// Which provider was tried.
    pub provider: ProviderId,
    /// The model name sent upstream.
    pub upstream_model: String,
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Upstream HTTP status, when one arrived.
    pub status: Option<u16>,
    /// Time spent on this attempt.
    pub latency: Duration,
}

impl AttemptSummary {
    /// Whether the upstream was actually called (skips for open breakers, resting keys and full
    /// queues are not attempts).
    pub fn was_called(&self) -> bool {
        !matches!(
            self.outcome,
            AttemptOutcome::BreakerOpen | AttemptOutcome::KeysCooling | AttemptOutcome::Overloaded
        )
    }
}

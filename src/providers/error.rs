//! `UpstreamError`: why one attempt against one provider failed, as data the orchestrator can
//! classify without string matching.

use std::time::Duration;

use crate::domain::ProviderId;

/// The transport-level shape of a failure. Its meaning (retry? next provider? trip the breaker?)
/// is decided once, in `orchestrator::classify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamErrorKind {
    /// Could not connect, or the connection broke before a response.
    Connect,
    /// The transport's own deadline ran out: the connect timeout (the shared client sets no other).
    Timeout,
    /// A stream's first chunk did not come within `first_token_timeout_seconds`.
    FirstTokenTimeout,
    /// A non-streamed attempt's `timeout_seconds` ran out while the upstream was working on it
    /// (connected, request sent): a long generation, not a sign of an unhealthy upstream.
    Deadline,
    /// A non-2xx status (see `UpstreamError::status`).
    Status,
    /// A 2xx whose body is not what the protocol promises, or an in-band error event.
    Malformed,
    /// The stream broke after it started.
    StreamCut,
    /// The provider's protocol cannot do this operation.
    Unsupported,
    /// A 2xx body larger than `limits.max_response_bytes` (refused while reading).
    TooLarge,
}

/// One failed attempt.
#[derive(Debug, thiserror::Error)]
#[error("{provider}: {kind:?}{}", .status.map(|s| format!(" HTTP {s}")).unwrap_or_default())]
pub struct UpstreamError {
    /// Who failed.
    pub provider: ProviderId,
    /// What kind of failure.
    pub kind: UpstreamErrorKind,
    /// HTTP status, for `Status`.
    pub status: Option<u16>,
    /// The upstream's `Retry-After`, when sent.
    pub retry_after: Option<Duration>,
    /// The upstream's error fields when it answered in a known error shape (never the raw body).
    pub detail: Option<Box<ErrorDetail>>,
    /// The underlying cause, for logs.
    #[source]
    pub source: Option<Box<dyn std::error::Error + Send + Sync>>,
}

/// Fields of an upstream's own error body, kept so a client fault can be returned as-is.
#[derive(Debug, Clone, Default)]
pub struct ErrorDetail {
    /// `error.message`.
    pub message: String,
    /// `error.type`.
    pub error_type: Option<String>,
    /// `error.code` (strings and numbers alike, as text).
    pub code: Option<String>,
    /// `error.param`.
    pub param: Option<String>,
}

impl UpstreamError {
    /// A failure of `kind` with no status.
    pub fn new(provider: &ProviderId, kind: UpstreamErrorKind) -> Self {
        Self {
            provider: provider.clone(),
            kind,
            status: None,
            retry_after: None,
            detail: None,
            source: None,
        }
    }

    /// Attaches the cause.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// From a reqwest failure: timeouts and connect errors are told apart, anything else counts
    /// as a broken connection.
    pub fn from_reqwest(provider: &ProviderId, e: reqwest::Error) -> Self {
        let kind = if e.is_timeout() {
            UpstreamErrorKind::Timeout
        } else {
            UpstreamErrorKind::Connect
        };
        Self::new(provider, kind).with_source(e)
    }
}

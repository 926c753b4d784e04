//! Identifier newtypes parsed once at the edge.

use std::fmt;
use std::sync::Arc;

/// A configured provider's id (`openai`, `local-vllm`, ...).
///
/// Cheap to clone; safe as a metrics label because only configured ids are ever constructed.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProviderId(Arc<str>);

impl ProviderId {
    /// Wraps a configured id. `claude` is Anthropic's alias (seed 004) and always becomes `anthropic`.
    pub fn new(id: &str) -> Self {
        let canonical = if id.eq_ignore_ascii_case("claude") {
            "anthropic"
        } else {
            id
        };
        Self(Arc::from(canonical))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ProviderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The id that ties a client call, our logs and the upstream call together.
///
/// A client-supplied `x-request-id` is kept only when it is at most 128 printable ASCII
/// characters; anything else is replaced so that it can never inject into headers or logs.
///
/// It also carries the request's trace (`with_trace`), so every place that names the request —
/// the upstream call, the history row, a log line — can name its trace without another parameter.
#[derive(Clone, Debug)]
pub struct RequestId {
    id: Arc<str>,
    trace: Option<Arc<super::RequestTrace>>,
}

/// Two ids are the same request whatever trace handles they carry.
impl PartialEq for RequestId {
    fn eq(&self, other: &Self) -> bool {
        self.id == other.id
    }
}

impl Eq for RequestId {}

impl RequestId {
    /// Longest client-supplied id we echo.
    pub const MAX_LEN: usize = 128;

    /// Keeps the client's id when it is safe to echo, otherwise generates a UUIDv7.
    pub fn from_client(header: Option<&[u8]>) -> Self {
        match header {
            Some(raw) if Self::is_acceptable(raw) => {
                // is_acceptable guarantees printable ASCII, hence valid UTF-8.
                Self::of(Arc::from(String::from_utf8_lossy(raw).as_ref()))
            }
            _ => Self::generate(),
        }
    }

    /// A fresh time-ordered id.
    pub fn generate() -> Self {
        Self::of(Arc::from(uuid::Uuid::now_v7().to_string()))
    }

    fn of(id: Arc<str>) -> Self {
        Self { id, trace: None }
    }

    /// The same id, in `trace`.
    #[must_use]
    pub fn with_trace(mut self, trace: super::RequestTrace) -> Self {
        self.trace = Some(Arc::new(trace));
        self
    }

    /// The request's trace: a client `traceparent`, or traces on.
    pub fn trace(&self) -> Option<&super::RequestTrace> {
        self.trace.as_deref()
    }

    /// The trace id as 32 hex digits, when the request has a trace.
    pub fn trace_id(&self) -> Option<String> {
        self.trace.as_ref().map(|t| t.context.trace_id_hex())
    }

    fn is_acceptable(raw: &[u8]) -> bool {
        !raw.is_empty() && raw.len() <= Self::MAX_LEN && raw.iter().all(|b| (0x21..=0x7e).contains(b))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claude_is_an_alias_of_anthropic() {
        assert_eq!(ProviderId::new("claude"), ProviderId::new("anthropic"));
    }

    #[test]
    fn safe_client_request_id_is_kept() {
        assert_eq!(RequestId::from_client(Some(b"debug-123")).as_str(), "debug-123");
    }

    #[test]
    fn unsafe_client_request_ids_are_replaced() {
        let long = [b'a'; 129];
        for bad in [&long[..], b"a\r\nx-evil: 1", b"caf\xc3\xa9", b"has space", b""] {
            let id = RequestId::from_client(Some(bad));
            assert_ne!(id.as_str().as_bytes(), bad);
            assert_eq!(id.as_str().len(), 36, "a UUID replaces {bad:?}");
        }
    }
}

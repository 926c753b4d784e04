//! A request's place in a distributed trace: the W3C `traceparent` / `tracestate` it came with, and
//! the server span `telemetry::traces` opened for it when traces are on.

use std::fmt::Write as _;
use std::sync::Arc;

/// A W3C trace context (`traceparent`, version 00, and `tracestate` as sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceContext {
    /// 16 bytes, never all zero.
    pub trace_id: [u8; 16],
    /// The parent span: the client's span for a received context, ours for one we send.
    pub span_id: [u8; 8],
    /// `01`: sampled.
    pub flags: u8,
    /// `tracestate`, passed on untouched (header-safe text, at most 512 bytes, else dropped).
    pub state: Option<Arc<str>>,
}

/// The longest `tracestate` passed on (the W3C limit is 32 members; 512 bytes holds the usual ones).
const MAX_STATE: usize = 512;

impl TraceContext {
    /// Parses the client's headers; `None` for a missing or malformed `traceparent` (a new trace
    /// starts then, as the W3C specification asks).
    pub fn from_headers(traceparent: Option<&[u8]>, tracestate: Option<&[u8]>) -> Option<Self> {
        let raw = traceparent?;
        // `00-<32 hex>-<16 hex>-<2 hex>`; a later version may append fields after a `-`.
        if raw.len() < 55 || (raw.len() > 55 && raw[55] != b'-') {
            return None;
        }
        if raw[2] != b'-' || raw[35] != b'-' || raw[52] != b'-' {
            return None;
        }
        let version = hex_byte(raw[0], raw[1])?;
        if version == 0xff || (version == 0 && raw.len() != 55) {
            return None;
        }
        let mut trace_id = [0u8; 16];
        for (i, b) in trace_id.iter_mut().enumerate() {
            *b = hex_byte(raw[3 + 2 * i], raw[4 + 2 * i])?;
        }
        let mut span_id = [0u8; 8];
        for (i, b) in span_id.iter_mut().enumerate() {
            *b = hex_byte(raw[36 + 2 * i], raw[37 + 2 * i])?;
        }
        if trace_id == [0; 16] || span_id == [0; 8] {
            return None;
        }
        let flags = hex_byte(raw[53], raw[54])?;
        let state = tracestate
            .filter(|s| !s.is_empty() && s.len() <= MAX_STATE && s.iter().all(|b| (0x20..=0x7e).contains(b)))
            .map(|s| Arc::from(String::from_utf8_lossy(s).as_ref()));
        Some(Self {
            trace_id,
            span_id,
            flags,
            state,
        })
    }

    /// The trace id as 32 lowercase hex digits, as history rows and log lines carry it.
    pub fn trace_id_hex(&self) -> String {
        hex(&self.trace_id)
    }

    /// The `traceparent` header value.
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", hex(&self.trace_id), hex(&self.span_id), self.flags)
    }

    /// The caller asked for this trace to be recorded.
    pub fn sampled(&self) -> bool {
        self.flags & 1 == 1
    }
}

fn hex(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Lowercase only, as the W3C specification requires.
fn hex_byte(hi: u8, lo: u8) -> Option<u8> {
    let digit = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    Some(digit(hi)? << 4 | digit(lo)?)
}

/// What a request carries of its trace.
#[derive(Clone, Debug)]
pub struct RequestTrace {
    /// The context the request is in: the server span's with traces on, else the client's as it
    /// came. Its trace id goes into the history row and the access log line.
    pub context: TraceContext,
    /// The server span; `Span::none()` when traces are off. A handle: the span ends when its last
    /// clone (the request's, its history observer's) is dropped.
    pub span: tracing::Span,
    /// `gen_ai.operation.name` of the route (`chat`, `embeddings`, ...), for span names; `None`
    /// with traces off and on routes that are no GenAI operation.
    pub operation: Option<&'static str>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const PARENT: &[u8] = b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_round_trips() {
        let t = TraceContext::from_headers(Some(PARENT), Some(b"congo=t61rcWkgMzE")).unwrap();
        assert_eq!(t.trace_id_hex(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(t.traceparent().as_bytes(), PARENT);
        assert!(t.sampled());
        assert_eq!(t.state.as_deref(), Some("congo=t61rcWkgMzE"));
    }

    #[test]
    fn malformed_traceparents_start_a_new_trace() {
        for bad in [
            &b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"[..],
            b"00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            b"00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            b"ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(TraceContext::from_headers(Some(bad), None).is_none(), "{bad:?}");
        }
        let later = b"01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra";
        assert!(
            TraceContext::from_headers(Some(later), None).is_some(),
            "a later version's extra field"
        );
    }

    #[test]
    fn an_unsafe_tracestate_is_dropped() {
        let t = TraceContext::from_headers(Some(PARENT), Some(b"a=1\r\nx: y")).unwrap();
        assert!(t.state.is_none());
    }
}

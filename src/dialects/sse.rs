//! Server-sent-event framing shared by adapters and the stream relay.
//!
//! Upstream chunks are cut at event boundaries only: complete events go on at once (the original
//! bytes, not a copy, when a chunk holds whole events), and only an incomplete tail waits for the
//! rest of its event. Nothing is re-encoded.

use std::ops::Range;

use bytes::{Bytes, BytesMut};

/// Splits a byte stream into runs of complete SSE events.
#[derive(Debug, Default)]
pub struct EventFramer {
    pending: BytesMut,
}

impl EventFramer {
    /// Feeds one upstream chunk; returns the complete events now available, if any.
    pub fn push(&mut self, chunk: Bytes) -> Option<Bytes> {
        let data = if self.pending.is_empty() {
            chunk
        } else {
            self.pending.extend_from_slice(&chunk);
            self.pending.split().freeze()
        };
        let end = last_event_end(&data);
        if end < data.len() {
            self.pending.extend_from_slice(&data[end..]);
        }
        (end > 0).then(|| data.slice(..end))
    }

    /// What is left when the upstream closes: an event without its blank line, if any.
    pub fn finish(&mut self) -> Option<Bytes> {
        (!self.pending.is_empty()).then(|| self.pending.split().freeze())
    }
}

/// Index just past the blank line that ends the last complete event, or 0.
fn last_event_end(data: &[u8]) -> usize {
    let mut i = data.len();
    while i > 1 {
        i -= 1;
        if data[i] != b'\n' {
            continue;
        }
        let prev = data[i - 1];
        if prev == b'\n' || (prev == b'\r' && i >= 2 && data[i - 2] == b'\n') {
            return i + 1;
        }
    }
    0
}

/// One event inside a run of complete events.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event<'a> {
    /// Where the event (with its blank line) sits in the run.
    pub range: Range<usize>,
    /// Its first `data:` line's payload, if it has one.
    pub data: Option<&'a [u8]>,
}

/// The events in a run returned by `EventFramer::push` (or its unterminated `finish` tail).
pub fn events(run: &[u8]) -> impl Iterator<Item = Event<'_>> {
    let mut start = 0;
    std::iter::from_fn(move || {
        if start >= run.len() {
            return None;
        }
        let mut pos = start;
        let mut data = None;
        loop {
            let line_end = run[pos..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(run.len(), |p| pos + p);
            let raw = &run[pos..line_end];
            let line = raw.strip_suffix(b"\r").unwrap_or(raw);
            pos = (line_end + 1).min(run.len());
            if line.is_empty() {
                break;
            }
            if data.is_none()
                && let Some(rest) = line.strip_prefix(b"data:")
            {
                data = Some(rest.strip_prefix(b" ").unwrap_or(rest));
            }
            if line_end >= run.len() {
                break;
            }
        }
        let event = Event {
            range: start..pos,
            data,
        };
        start = pos;
        Some(event)
    })
}

/// Whether the first event in `chunk` is an in-band error (`data: {"error": ...}` with no
/// `choices`), which some upstreams send with a 200 status instead of failing the request.
pub fn first_event_is_error(chunk: &[u8]) -> bool {
    let Some(data) = events(chunk).find_map(|e| e.data) else {
        return false;
    };
    match serde_json::from_slice::<serde_json::Value>(data) {
        // The Responses API's in-band failures are typed events: `error`, or `response.failed`.
        Ok(serde_json::Value::Object(map)) => {
            (map.contains_key("error") && !map.contains_key("choices"))
                || map.get("type").is_some_and(|t| t == "error" || t == "response.failed")
        }
        _ => false,
    }
}

/// How a Responses API stream event ends the stream, if it does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResponsesEnd {
    /// `response.completed` or `response.incomplete`: the answer is whole.
    Whole,
    /// `response.failed`: the upstream ended it as failed.
    Failed,
    /// An `error` event: a failure, which `response.failed` may still follow.
    Error,
}

/// Whether a Responses event's data ends the stream (`response.completed`, `response.incomplete`,
/// `response.failed`) or reports an `error`. Only a payload naming one of those is parsed.
pub fn responses_end(data: &[u8]) -> Option<ResponsesEnd> {
    let names = [
        &b"response.completed"[..],
        b"response.incomplete",
        b"response.failed",
        b"\"error\"",
    ];
    if !names.iter().any(|n| memchr::memmem::find(data, n).is_some()) {
        return None;
    }
    #[derive(serde::Deserialize)]
    struct Typed<'a> {
        #[serde(borrow, rename = "type")]
        kind: &'a str,
    }
    match serde_json::from_slice::<Typed<'_>>(data).ok()?.kind {
        "response.completed" | "response.incomplete" => Some(ResponsesEnd::Whole),
        "response.failed" => Some(ResponsesEnd::Failed),
        "error" => Some(ResponsesEnd::Error),
        _ => None,
    }
}

/// The `sequence_number` of a Responses event (a byte scan), so an event the gateway adds can
/// follow the last one.
pub fn sequence_number(data: &[u8]) -> Option<u64> {
    const KEY: &[u8] = b"\"sequence_number\"";
    let at = memchr::memmem::rfind(data, KEY)?;
    let rest = data[at + KEY.len()..]
        .trim_ascii_start()
        .strip_prefix(b":")?
        .trim_ascii_start();
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    std::str::from_utf8(&rest[..digits]).ok()?.parse().ok()
}

/// The response id a Responses stream announces in its first event (`response.created`).
pub fn response_id(data: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Created {
        response: Inner,
    }
    #[derive(serde::Deserialize)]
    struct Inner {
        id: String,
    }
    memchr::memmem::find(data, b"\"response\"")?;
    serde_json::from_slice::<Created>(data).ok().map(|c| c.response.id)
}

/// Whether an event's data is OpenAI's end-of-stream marker.
pub fn is_done(data: &[u8]) -> bool {
    data.trim_ascii() == b"[DONE]"
}

/// Whether an event's data is Anthropic's end of stream, `{"type":"message_stop"}`.
pub fn is_message_stop(data: &[u8]) -> bool {
    // Cheap test first: only a payload naming the type is parsed.
    if !data.windows(12).any(|w| w == b"message_stop") {
        return false;
    }
    #[derive(serde::Deserialize)]
    struct Typed<'a> {
        #[serde(borrow, rename = "type")]
        kind: &'a str,
    }
    serde_json::from_slice::<Typed<'_>>(data).is_ok_and(|t| t.kind == "message_stop")
}

/// One SSE event named `event` (an `event:` line, as Anthropic and the Responses API send),
/// carrying `json` as its data.
pub fn named_event(event: &str, json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(event.len() + json.len() + 16);
    push_named_event(&mut out, event, json);
    Bytes::from(out)
}

/// Appends `event: <event>\ndata: <json>\n\n` to `out`.
pub fn push_named_event(out: &mut Vec<u8>, event: &str, json: &[u8]) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(event.as_bytes());
    out.push(b'\n');
    push_data_event(out, json);
}

/// Appends `data: <json>\n\n` to `out`.
pub fn push_data_event(out: &mut Vec<u8>, json: &[u8]) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
}

/// One SSE event carrying `json` as its data.
pub fn data_event(json: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(json.len() + 8);
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(json);
    out.extend_from_slice(b"\n\n");
    Bytes::from(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn datas(run: &[u8]) -> Vec<Option<&[u8]>> {
        events(run).map(|e| e.data).collect()
    }

    #[test]
    fn whole_events_pass_without_waiting() {
        let mut f = EventFramer::default();
        let chunk = Bytes::from_static(b"data: a\n\ndata: b\n\n");
        assert_eq!(f.push(chunk.clone()).unwrap(), chunk);
        assert!(f.finish().is_none());
    }

    #[test]
    fn a_split_event_waits_for_its_end() {
        let mut f = EventFramer::default();
        assert_eq!(
            &f.push(Bytes::from_static(b"data: a\n\ndata: [DO")).unwrap()[..],
            b"data: a\n\n"
        );
        assert_eq!(
            &f.push(Bytes::from_static(b"NE]\n\n")).unwrap()[..],
            b"data: [DONE]\n\n"
        );
    }

    #[test]
    fn crlf_framing_is_understood() {
        let mut f = EventFramer::default();
        let run = f.push(Bytes::from_static(b"data: a\r\n\r\ndata: b\r\n\r\n")).unwrap();
        assert_eq!(datas(&run), [Some(&b"a"[..]), Some(&b"b"[..])]);
    }

    #[test]
    fn events_report_ranges_and_data() {
        let run = b": ping\n\nevent: x\ndata: {\"a\":1}\n\ndata: [DONE]\n\n";
        let evs: Vec<_> = events(run).collect();
        assert_eq!(evs.len(), 3);
        assert_eq!(evs[0].data, None);
        assert_eq!(evs[1].data, Some(&b"{\"a\":1}"[..]));
        assert!(is_done(evs[2].data.unwrap()));
        assert_eq!(evs[2].range.end, run.len());
    }

    #[test]
    fn message_stop_is_recognised() {
        assert!(is_message_stop(br#"{"type":"message_stop"}"#));
        assert!(is_message_stop(br#"{ "type" : "message_stop", "x": 1 }"#));
        assert!(!is_message_stop(
            br#"{"type":"content_block_delta","delta":{"text":"message_stop"}}"#
        ));
        assert!(!is_message_stop(b"[DONE]"));
    }

    #[test]
    fn named_events_have_both_lines() {
        assert_eq!(
            &named_event("ping", br#"{"type":"ping"}"#)[..],
            b"event: ping\ndata: {\"type\":\"ping\"}\n\n"
        );
    }

    #[test]
    fn in_band_error_is_recognised() {
        assert!(first_event_is_error(
            b"data: {\"error\":{\"message\":\"overloaded\"}}\n\n"
        ));
        assert!(!first_event_is_error(b"data: {\"choices\":[{\"delta\":{}}]}\n\n"));
        assert!(!first_event_is_error(b": keep-alive\n\n"));
        assert!(first_event_is_error(
            b"event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"x\",\"sequence_number\":0}\n\n"
        ));
        assert!(!first_event_is_error(
            b"event: response.created\ndata: {\"type\":\"response.created\",\"response\":{\"id\":\"r\",\"error\":null}}\n\n"
        ));
    }

    #[test]
    fn responses_ends_are_recognised() {
        assert_eq!(
            responses_end(br#"{"type":"response.completed","response":{},"sequence_number":9}"#),
            Some(ResponsesEnd::Whole)
        );
        assert_eq!(
            responses_end(br#"{"type":"response.failed","response":{}}"#),
            Some(ResponsesEnd::Failed)
        );
        assert_eq!(
            responses_end(br#"{"type":"response.output_text.delta","delta":"response.completed"}"#),
            None
        );
        assert_eq!(sequence_number(br#"{"type":"x","sequence_number": 12}"#), Some(12));
        assert_eq!(
            response_id(br#"{"type":"response.created","response":{"id":"resp_1","object":"response"}}"#).as_deref(),
            Some("resp_1")
        );
    }
}

//! Server-sent-event helpers shared by adapters and the stream relay. They look at upstream
//! chunks as they pass; they never buffer a stream or re-frame its events.

use bytes::Bytes;

const DONE: &[u8] = b"data: [DONE]";

/// Watches a passing OpenAI-style stream for its `data: [DONE]` terminator, which may be split
/// across chunks. A stream that ends without it was cut, whatever the transport said.
#[derive(Debug, Default)]
pub struct DoneTracker {
    tail: Vec<u8>,
    done: bool,
}

impl DoneTracker {
    /// Feeds the next chunk.
    pub fn observe(&mut self, chunk: &[u8]) {
        if self.done {
            return;
        }
        // Only the last few bytes of the previous chunk can hold the start of a split marker.
        self.tail.extend_from_slice(&chunk[..chunk.len().min(DONE.len())]);
        if contains(&self.tail, DONE) || contains(chunk, DONE) {
            self.done = true;
            return;
        }
        let keep = DONE.len() - 1;
        if chunk.len() >= keep {
            self.tail.clear();
            self.tail.extend_from_slice(&chunk[chunk.len() - keep..]);
        } else if self.tail.len() > keep {
            // A short chunk was appended whole: keep the newest bytes only.
            self.tail.drain(..self.tail.len() - keep);
        }
    }

    /// Whether `[DONE]` has passed.
    pub fn is_done(&self) -> bool {
        self.done
    }
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}

/// Whether the first event in `chunk` is an in-band error (`data: {"error": ...}` with no
/// `choices`), which some upstreams send with a 200 status instead of failing the request.
pub fn first_event_is_error(chunk: &[u8]) -> bool {
    let Some(data) = first_data(chunk) else {
        return false;
    };
    match serde_json::from_slice::<serde_json::Value>(data) {
        Ok(serde_json::Value::Object(map)) => map.contains_key("error") && !map.contains_key("choices"),
        _ => false,
    }
}

fn first_data(chunk: &[u8]) -> Option<&[u8]> {
    chunk.split(|b| *b == b'\n').find_map(|line| {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        let rest = line.strip_prefix(b"data:")?;
        Some(rest.strip_prefix(b" ").unwrap_or(rest))
    })
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

    #[test]
    fn done_is_found_even_when_split_across_chunks() {
        let mut t = DoneTracker::default();
        t.observe(b"data: {\"a\":1}\n\ndata: [DO");
        assert!(!t.is_done());
        t.observe(b"NE]\n\n");
        assert!(t.is_done());
    }

    #[test]
    fn done_split_over_three_small_chunks() {
        let mut t = DoneTracker::default();
        for part in [&b"data: {}\n\ndata"[..], b": [D", b"ONE]\n\n"] {
            t.observe(part);
        }
        assert!(t.is_done());
    }

    #[test]
    fn done_in_one_chunk() {
        let mut t = DoneTracker::default();
        t.observe(b"data: [DONE]\n\n");
        assert!(t.is_done());
    }

    #[test]
    fn a_stream_without_done_is_not_done() {
        let mut t = DoneTracker::default();
        t.observe(b"data: {\"choices\":[]}\n\n");
        t.observe(b"data: {\"choices\":[]}\n\n");
        assert!(!t.is_done());
    }

    #[test]
    fn in_band_error_is_recognised() {
        assert!(first_event_is_error(
            b"data: {\"error\":{\"message\":\"overloaded\"}}\n\n"
        ));
        assert!(!first_event_is_error(b"data: {\"choices\":[{\"delta\":{}}]}\n\n"));
        assert!(!first_event_is_error(b": keep-alive\n\n"));
    }
}

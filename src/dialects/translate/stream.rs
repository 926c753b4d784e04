//! Event-by-event stream translation: each upstream chunk's complete events are translated and
//! handed on at once; only an event split across chunks waits for its end.

use bytes::Bytes;
use futures_util::{Stream, StreamExt, stream};

use crate::dialects::sse;

/// Turns one dialect's stream events into another's.
pub trait StreamTranslator: Send + 'static {
    /// One upstream event's `data:` payload; appends the translated event(s), possibly none.
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>);

    /// The upstream closed cleanly: appends what must follow (an end marker a protocol without
    /// one implies), or nothing when the stream was cut short.
    fn finish(&mut self, _out: &mut Vec<u8>) {}
}

/// Feeds `upstream` through `translator`: one output item per upstream chunk (empty when that
/// chunk completed no event), errors passed on as they are.
pub fn translate<S, E, T>(upstream: S, translator: T) -> impl Stream<Item = Result<Bytes, E>> + Send + 'static
where
    S: Stream<Item = Result<Bytes, E>> + Send + Unpin + 'static,
    E: Send + 'static,
    T: StreamTranslator,
{
    struct State<S, T> {
        upstream: S,
        translator: T,
        framer: sse::EventFramer,
        ended: bool,
    }
    let state = State {
        upstream,
        translator,
        framer: sse::EventFramer::default(),
        ended: false,
    };
    stream::unfold(state, |mut s| async move {
        if s.ended {
            return None;
        }
        let mut out = Vec::new();
        match s.upstream.next().await {
            Some(Ok(chunk)) => {
                if let Some(run) = s.framer.push(chunk) {
                    feed(&mut s.translator, &run, &mut out);
                }
            }
            Some(Err(e)) => {
                s.ended = true;
                return Some((Err(e), s));
            }
            None => {
                s.ended = true;
                if let Some(tail) = s.framer.finish() {
                    feed(&mut s.translator, &tail, &mut out);
                }
                s.translator.finish(&mut out);
            }
        }
        Some((Ok(Bytes::from(out)), s))
    })
}

/// Translates every event with data in a run of complete events.
pub(crate) fn feed<T: StreamTranslator + ?Sized>(translator: &mut T, run: &[u8], out: &mut Vec<u8>) {
    for event in sse::events(run) {
        if let Some(data) = event.data {
            translator.event(data, out);
        }
    }
}

/// Two translations in a row (Gemini → chat → Anthropic, say).
#[derive(Debug)]
pub struct Chain<A, B> {
    first: A,
    second: B,
    scratch: Vec<u8>,
}

impl<A, B> Chain<A, B> {
    /// `first`'s output is `second`'s input.
    pub fn new(first: A, second: B) -> Self {
        Self {
            first,
            second,
            scratch: Vec::new(),
        }
    }
}

impl<A: StreamTranslator, B: StreamTranslator> StreamTranslator for Chain<A, B> {
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) {
        self.scratch.clear();
        self.first.event(data, &mut self.scratch);
        feed(&mut self.second, &self.scratch, out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        self.scratch.clear();
        self.first.finish(&mut self.scratch);
        feed(&mut self.second, &self.scratch, out);
        self.second.finish(out);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Runs a whole upstream body through a translator, one event per chunk, and returns the
    /// output items (one per input chunk, the last after the upstream closed).
    pub(crate) fn run<T: StreamTranslator>(mut translator: T, upstream: &str) -> Vec<String> {
        let mut items = Vec::new();
        for event in upstream.split_terminator("\n\n").filter(|e| !e.trim().is_empty()) {
            let mut out = Vec::new();
            feed(&mut translator, format!("{event}\n\n").as_bytes(), &mut out);
            items.push(String::from_utf8(out).expect("utf-8"));
        }
        let mut out = Vec::new();
        translator.finish(&mut out);
        items.push(String::from_utf8(out).expect("utf-8"));
        items
    }

    /// The `data:` payloads of a translated body, parsed (`[DONE]` as a string).
    pub(crate) fn payloads(items: &[String]) -> Vec<serde_json::Value> {
        let all: String = items.concat();
        sse::events(all.as_bytes())
            .filter_map(|e| e.data)
            .map(|d| serde_json::from_slice(d).unwrap_or_else(|_| serde_json::Value::String("[DONE]".into())))
            .collect()
    }

    /// The `event:` names of a translated body.
    pub(crate) fn names(items: &[String]) -> Vec<String> {
        items
            .concat()
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .map(str::to_owned)
            .collect()
    }

    struct Upper;
    impl StreamTranslator for Upper {
        fn event(&mut self, data: &[u8], out: &mut Vec<u8>) {
            sse::push_data_event(out, &data.to_ascii_uppercase());
        }
        fn finish(&mut self, out: &mut Vec<u8>) {
            sse::push_data_event(out, b"END");
        }
    }

    #[tokio::test]
    async fn each_chunk_is_translated_as_it_arrives() {
        let chunks: Vec<Result<Bytes, ()>> = vec![
            Ok(Bytes::from_static(b"data: a\n\ndata: b")),
            Ok(Bytes::from_static(b"\n\n")),
        ];
        let out: Vec<_> = translate(stream::iter(chunks), Upper).collect().await;
        let out: Vec<Bytes> = out.into_iter().map(|r| r.unwrap()).collect();
        assert_eq!(&out[0][..], b"data: A\n\n");
        assert_eq!(&out[1][..], b"data: B\n\n");
        assert_eq!(&out[2][..], b"data: END\n\n");
    }

    #[test]
    fn chains_feed_the_first_into_the_second() {
        let items = run(Chain::new(Upper, Upper), "data: x\n\n");
        assert_eq!(items, ["data: X\n\n", "data: END\n\ndata: END\n\n"]);
    }
}

//! A `/v1/responses` call served through chat completions, for any adapter: the Responses body
//! becomes a chat request (`translate::responses`), the adapter's own chat path serves it (so
//! Anthropic and Gemini keep translating chat to their protocols), and the completion — or each
//! chat chunk as it arrives — becomes the Responses answer. Replies and events therefore leave the
//! provider layer in the Responses dialect whichever way they were served.

use bytes::Bytes;

use super::http;
use crate::dialects::translate::{self, StreamTranslator, responses};
use crate::dialects::{BridgeOptions, Peek, request_stream_usage, sse};
use crate::domain::Dialect;
use crate::providers::{ByteStream, Call, Operation, ProviderAdapter, Reply, Served, UpstreamError};

/// The chat request behind a Responses call, and what its answer must repeat. Anthropic's signed
/// thinking goes back only through the Anthropic adapter (`protocol` is the adapter's).
fn chat_request(call: &Call<'_>, protocol: &str) -> Result<(Bytes, responses::Echo, Served), UpstreamError> {
    let options = BridgeOptions {
        hosted_tools: call.hosted_tools,
        anthropic_thinking: protocol == "anthropic",
    };
    let (chat, echo) =
        responses::request(call.body, &options).map_err(|e| http::untranslatable(&call.provider.id, e))?;
    let served = Served::Bridged {
        dropped_tools: echo.dropped_tools.clone(),
    };
    Ok((chat, echo, served))
}

/// One non-streamed Responses call through `adapter`'s chat path.
pub(in crate::providers) async fn bridge_send<A: ProviderAdapter + ?Sized>(
    adapter: &A,
    call: &Call<'_>,
) -> Result<(Reply, Served), UpstreamError> {
    let (chat, echo, served) = chat_request(call, adapter.protocol())?;
    let reply = adapter
        .send(&call.with_body(&chat, Dialect::OpenAi), Operation::Chat)
        .await?;
    let body = responses::reply(&reply.body, &echo).ok_or_else(|| http::malformed(&call.provider.id))?;
    let reply = Reply {
        content_type: http::JSON.into(),
        body,
        ..reply
    };
    Ok((reply, served))
}

/// A Responses stream through `adapter`'s chat stream, which is asked for its usage chunk (the
/// closing `response.completed` carries usage).
pub(in crate::providers) async fn bridge_stream<A: ProviderAdapter + ?Sized>(
    adapter: &A,
    call: &Call<'_>,
) -> Result<(ByteStream, Served), UpstreamError> {
    let (chat, echo, served) = chat_request(call, adapter.protocol())?;
    let untranslatable = |e| http::untranslatable(&call.provider.id, e);
    let peek = Peek::chat(&chat).map_err(untranslatable)?;
    let chat = if peek.client_wants_stream_usage() {
        chat
    } else {
        request_stream_usage(&chat, &peek).map_err(untranslatable)?
    };
    let stream = adapter.open_stream(&call.with_body(&chat, Dialect::OpenAi)).await?;
    let events = WholeAnswer::new(responses::ToResponseEvents::new(echo));
    Ok((Box::pin(translate::translate(stream, events)), served))
}

/// Chat chunks → Responses events, also when the chat upstream closes a whole answer (its
/// `finish_reason` and usage passed) without `[DONE]`: the response is then completed, as the
/// chat relay completes such a stream.
struct WholeAnswer {
    inner: responses::ToResponseEvents,
    finished: bool,
    usage: bool,
    done: bool,
}

impl WholeAnswer {
    fn new(inner: responses::ToResponseEvents) -> Self {
        Self {
            inner,
            finished: false,
            usage: false,
            done: false,
        }
    }
}

impl StreamTranslator for WholeAnswer {
    fn event(&mut self, data: &[u8], out: &mut Vec<u8>) {
        self.done |= sse::is_done(data);
        self.finished |= has_value(data, b"\"finish_reason\"");
        self.usage |= crate::dialects::wire::may_carry_usage(data);
        self.inner.event(data, out);
    }

    fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.done && self.finished && self.usage {
            self.inner.event(b"[DONE]", out);
        }
        self.inner.finish(out);
    }
}

/// Whether `key` appears in `data` with a value other than `null` (a byte scan).
fn has_value(data: &[u8], key: &[u8]) -> bool {
    let mut rest = data;
    while let Some(at) = memchr::memmem::find(rest, key) {
        rest = &rest[at + key.len()..];
        let Some(value) = rest.trim_ascii_start().strip_prefix(b":") else {
            continue;
        };
        if !value.trim_ascii_start().starts_with(b"null") {
            return true;
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_whole_chat_answer_without_done_completes_the_response() {
        let echo = responses::request(br#"{"model":"m","input":"hi"}"#, &BridgeOptions::default())
            .unwrap()
            .1;
        let mut t = WholeAnswer::new(responses::ToResponseEvents::new(echo));
        let mut out = Vec::new();
        t.event(
            br#"{"id":"c","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
            &mut out,
        );
        t.event(
            br#"{"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
            &mut out,
        );
        t.event(
            br#"{"id":"c","choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}"#,
            &mut out,
        );
        t.finish(&mut out);
        assert!(String::from_utf8_lossy(&out).contains("event: response.completed"));
    }

    #[test]
    fn a_cut_chat_answer_is_not_completed() {
        let echo = responses::request(br#"{"model":"m","input":"hi"}"#, &BridgeOptions::default())
            .unwrap()
            .1;
        let mut t = WholeAnswer::new(responses::ToResponseEvents::new(echo));
        let mut out = Vec::new();
        t.event(
            br#"{"id":"c","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
            &mut out,
        );
        t.finish(&mut out);
        assert!(!String::from_utf8_lossy(&out).contains("response.completed"));
    }
}

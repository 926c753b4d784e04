//! The few fields the gateway reads from a client body, parsed once without copying the body.
//!
//! The body itself is forwarded as the original bytes: we never re-serialize what we only pass on.
//! When routing must rename the model, `splice_model` replaces just that JSON string in place.

use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

use super::Fallbacks;
use super::validate::Obj;

/// Why a client body was refused; becomes a 400 in the OpenAI error shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct BodyError {
    /// What was wrong and how to fix it.
    pub message: String,
    /// The offending field, when known.
    pub param: Option<String>,
    /// `invalid_json`, `missing_required_parameter` or `invalid_value`.
    pub code: &'static str,
}

/// What routing and the orchestrator need from a chat completion request.
#[derive(Debug, Clone)]
pub struct Peek {
    /// The requested model, as the client wrote it.
    pub model: String,
    /// Whether the client asked for server-sent events.
    pub stream: bool,
    /// `stream_options`, when present: whether it asks for the final usage chunk.
    pub stream_options: Option<StreamOptions>,
    /// Whether the request offers `tools` (a non-empty array): named routes skip targets without
    /// tool support.
    pub tools: bool,
    /// The most tokens the client lets the answer have (`max_completion_tokens`, `max_tokens`,
    /// Responses' `max_output_tokens`), which bounds what a budget reserves.
    pub max_tokens: Option<u64>,
    /// The models to try after `model` (`models` or `fallbacks`), as validation read them;
    /// empty and not present when the peek did not come from validation.
    pub fallbacks: Fallbacks,
}

/// The part of `stream_options` the gateway reads.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
pub struct StreamOptions {
    /// Ask for a final chunk carrying `usage`.
    #[serde(default)]
    pub include_usage: Option<bool>,
}

#[derive(Deserialize)]
struct ChatView {
    model: String,
    // Validated as an array (a JSON array of anything); Vec<IgnoredAny> never allocates.
    #[serde(rename = "messages")]
    _messages: Vec<IgnoredAny>,
    #[serde(default)]
    stream: Option<bool>,
    // An array would pass a derived struct's deserializer as its fields in order, and upstreams
    // refuse it; request_stream_usage can only add include_usage to an object.
    #[serde(default)]
    stream_options: Option<Obj<StreamOptions>>,
    #[serde(default)]
    tools: Option<Vec<IgnoredAny>>,
    #[serde(default)]
    max_tokens: Option<u64>,
    #[serde(default)]
    max_completion_tokens: Option<u64>,
}

impl Peek {
    /// Reads `model`, `messages` and `stream` from a `/v1/chat/completions` body.
    pub fn chat(body: &[u8]) -> Result<Self, BodyError> {
        let view: ChatView = parse(body)?;
        require_model(&view.model)?;
        Ok(Self {
            model: view.model,
            stream: view.stream.unwrap_or(false),
            stream_options: view.stream_options.map(|o| o.0),
            tools: view.tools.is_some_and(|t| !t.is_empty()),
            max_tokens: view.max_completion_tokens.or(view.max_tokens),
            fallbacks: Fallbacks::default(),
        })
    }

    /// Reads `model`, `messages` and `stream` from an Anthropic `/v1/messages` body (the same
    /// three fields; `max_tokens` is left for the upstream to judge).
    pub fn messages(body: &[u8]) -> Result<Self, BodyError> {
        Self::chat(body)
    }

    /// Reads `model`, `stream` and whether `tools` is offered from a `/v1/responses` body (after
    /// `validate::responses`), which goes to each provider as it is or bridged there.
    pub fn responses(body: &[u8]) -> Result<Self, BodyError> {
        #[derive(Deserialize)]
        struct ResponsesView {
            model: String,
            #[serde(default)]
            stream: Option<bool>,
            #[serde(default)]
            tools: Option<Vec<IgnoredAny>>,
            #[serde(default)]
            max_output_tokens: Option<u64>,
        }
        let view: ResponsesView = parse(body)?;
        require_model(&view.model)?;
        Ok(Self {
            model: view.model,
            stream: view.stream.unwrap_or(false),
            stream_options: None,
            tools: view.tools.is_some_and(|t| !t.is_empty()),
            max_tokens: view.max_output_tokens,
            fallbacks: Fallbacks::default(),
        })
    }

    /// Whether the client itself asked for the usage chunk of a stream.
    pub fn client_wants_stream_usage(&self) -> bool {
        self.stream_options.and_then(|o| o.include_usage).unwrap_or(false)
    }
}

/// What routing needs from an embeddings request.
#[derive(Debug, Clone)]
pub struct EmbeddingsPeek {
    /// The requested model.
    pub model: String,
    /// The models to try after it, as validation read them.
    pub fallbacks: Fallbacks,
}

#[derive(Deserialize)]
struct EmbeddingsView<'a> {
    model: String,
    // A string, an array of strings or of token arrays: the upstream judges the details.
    #[serde(borrow)]
    input: &'a RawValue,
}

impl EmbeddingsPeek {
    /// Reads `model` and checks that `input` is present in a `/v1/embeddings` body.
    pub fn parse(body: &[u8]) -> Result<Self, BodyError> {
        let view: EmbeddingsView<'_> = parse(body)?;
        require_model(&view.model)?;
        if !matches!(view.input.get().as_bytes().first(), Some(b'"' | b'[')) {
            return Err(BodyError {
                message: "`input` must be a string or an array of strings or token arrays".into(),
                param: Some("input".into()),
                code: "invalid_value",
            });
        }
        Ok(Self {
            model: view.model,
            fallbacks: Fallbacks::default(),
        })
    }
}

#[derive(Deserialize)]
struct CacheKeyView<'a> {
    #[serde(default, borrow)]
    prompt_cache_key: Option<std::borrow::Cow<'a, str>>,
}

/// A Responses body's `prompt_cache_key` (Codex sends its session there), when it is a non-empty
/// string; one pass that borrows it and skips every other field.
pub fn prompt_cache_key(body: &[u8]) -> Option<String> {
    let view: CacheKeyView<'_> = serde_json::from_slice(body).ok()?;
    let key = view.prompt_cache_key?;
    let key = key.trim();
    (!key.is_empty()).then(|| key.to_owned())
}

fn require_model(model: &str) -> Result<(), BodyError> {
    if model.trim().is_empty() {
        return Err(BodyError {
            message: "`model` must be a non-empty string".into(),
            param: Some("model".into()),
            code: "invalid_value",
        });
    }
    Ok(())
}

fn parse<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, BodyError> {
    // Derived struct deserializers also take a JSON array as the fields in order, which would let
    // `["gpt-4o", [...]]` through as a request; only an object is one.
    if body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[') {
        check_utf8(body)?;
        return Err(BodyError {
            message: "the request body must be a JSON object, not an array".into(),
            param: None,
            code: "invalid_value",
        });
    }
    deserialize_body(body)
}

fn check_utf8(body: &[u8]) -> Result<(), BodyError> {
    // JSON is UTF-8 (RFC 8259); serde skips validating strings it ignores, so check the whole body
    // once rather than forward invalid bytes upstream.
    if let Err(e) = std::str::from_utf8(body) {
        return Err(BodyError {
            message: format!(
                "the request body is not valid UTF-8 (invalid byte at {}); send JSON encoded as UTF-8",
                e.valid_up_to()
            ),
            param: None,
            code: "invalid_json",
        });
    }
    Ok(())
}

/// The body as one JSON value of type `T` and nothing after it, with errors naming the path of
/// the offending parameter (`messages[3].role`).
pub fn deserialize_body<'de, T: Deserialize<'de>>(body: &'de [u8]) -> Result<T, BodyError> {
    check_utf8(body)?;
    if body.starts_with(b"\xEF\xBB\xBF") {
        return Err(BodyError {
            message: "the request body starts with a byte order mark; send JSON without one (RFC 8259)".into(),
            param: None,
            code: "invalid_json",
        });
    }
    // Path tracking copies every key it passes; a body that parses needs no path, so the tracked
    // parse runs only to describe a refusal.
    let mut de = serde_json::Deserializer::from_slice(body);
    let untracked = match T::deserialize(&mut de).and_then(|value| de.end().map(|()| value)) {
        Ok(value) => return Ok(value),
        Err(e) => e,
    };
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize::<_, T>(&mut de).map_err(describe)?;
    de.end().map_err(|e| BodyError {
        message: format!("the request body is not valid JSON: {e}"),
        param: None,
        code: "invalid_json",
    })?;
    // Both parses see the same bytes; should they ever disagree, the first refusal stands.
    Err(BodyError {
        message: format!("the request body is invalid: {}", bounded(untracked.to_string())),
        param: None,
        code: "invalid_value",
    })
}

/// Longest message built from a parser error: serde's messages can quote what the client sent.
const MAX_MESSAGE_BYTES: usize = 512;

fn describe(err: serde_path_to_error::Error<serde_json::Error>) -> BodyError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let text = bounded(inner.to_string());
    let at = (path != ".").then_some(path);
    let join = |field: &str| match &at {
        Some(parent) => format!("{parent}.{field}"),
        None => field.to_owned(),
    };
    if let Some(field) = missing_field(&text) {
        let param = join(field);
        return BodyError {
            message: format!("you must provide `{param}`"),
            param: Some(param),
            code: "missing_required_parameter",
        };
    }
    // Two values for a key we read: an upstream might read the other one (`model` twice would
    // route on one and bill another).
    if let Some(field) = text.strip_prefix("duplicate field `").and_then(|r| r.split('`').next()) {
        let param = join(field);
        return BodyError {
            message: format!("`{param}` is given more than once; send it once"),
            param: Some(param),
            code: "invalid_value",
        };
    }
    // A literal like 1e999 is a syntax error to serde_json, but it sits in a known parameter.
    if let Some(param) = at.as_ref().filter(|_| text.starts_with("number out of range")) {
        return BodyError {
            message: format!("`{param}` is out of range: {text}"),
            param: Some(param.clone()),
            code: "invalid_value",
        };
    }
    if inner.is_syntax() || inner.is_eof() {
        return BodyError {
            message: format!(
                "the request body is not valid JSON ({text}); send a JSON object with `model` and `messages`"
            ),
            param: None,
            code: "invalid_json",
        };
    }
    match at {
        None => BodyError {
            message: format!("the request body must be a JSON object ({text})"),
            param: None,
            code: "invalid_value",
        },
        Some(path) => BodyError {
            message: format!("`{path}` is invalid: {text}"),
            param: Some(path),
            code: "invalid_value",
        },
    }
}

fn bounded(mut text: String) -> String {
    if text.len() > MAX_MESSAGE_BYTES {
        let mut end = MAX_MESSAGE_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push('…');
    }
    text
}

fn missing_field(text: &str) -> Option<&str> {
    let rest = text.strip_prefix("missing field `")?;
    rest.split('`').next()
}

/// Where `"model": "..."` sits in the original body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ModelSpan {
    start: usize,
    end: usize,
}

#[derive(Deserialize)]
struct ModelOnly<'a> {
    #[serde(borrow)]
    model: &'a RawValue,
}

/// Replaces the value of the top-level `model` with `new_model`, leaving every other byte as the
/// client sent it (unknown fields, key order, whitespace).
pub fn splice_model(body: &Bytes, new_model: &str) -> Result<Bytes, BodyError> {
    let view: ModelOnly<'_> = serde_json::from_slice(body).map_err(|e| BodyError {
        message: format!("cannot locate `model`: {e}"),
        param: Some("model".into()),
        code: "invalid_value",
    })?;
    let raw = view.model.get();
    // The RawValue borrows from `body`, so its address lies inside it.
    let start = (raw.as_ptr() as usize).saturating_sub(body.as_ptr() as usize);
    let span = ModelSpan {
        start,
        end: start + raw.len(),
    };
    let encoded = serde_json::to_string(new_model).map_err(|e| BodyError {
        message: format!("cannot encode model name: {e}"),
        param: Some("model".into()),
        code: "invalid_value",
    })?;
    let mut out = Vec::with_capacity(body.len() + encoded.len());
    out.extend_from_slice(&body[..span.start]);
    out.extend_from_slice(encoded.as_bytes());
    out.extend_from_slice(&body[span.end..]);
    Ok(Bytes::from(out))
}

/// Asks the upstream for a stream's final usage chunk (`stream_options.include_usage`) when the
/// client did not, so token counts are known for every stream. The common case — no
/// `stream_options` at all — inserts the key after the opening brace without touching other bytes.
pub fn request_stream_usage(body: &Bytes, peek: &Peek) -> Result<Bytes, BodyError> {
    let encode_err = |e: serde_json::Error| BodyError {
        message: format!("cannot set stream_options: {e}"),
        param: Some("stream_options".into()),
        code: "invalid_value",
    };
    if peek.stream_options.is_none() {
        let Some(open) = body.iter().position(|b| *b == b'{') else {
            return Ok(body.clone());
        };
        const KEY: &[u8] = br#""stream_options":{"include_usage":true}"#;
        let rest = &body[open + 1..];
        let empty_object = rest.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'}');
        let mut out = Vec::with_capacity(body.len() + KEY.len() + 1);
        out.extend_from_slice(&body[..=open]);
        out.extend_from_slice(KEY);
        if !empty_object {
            out.push(b',');
        }
        out.extend_from_slice(rest);
        return Ok(Bytes::from(out));
    }
    // Rare: the client sent stream_options without include_usage; edit it as a tree.
    let mut tree: serde_json::Value = serde_json::from_slice(body).map_err(encode_err)?;
    if let Some(options) = tree.get_mut("stream_options").and_then(|o| o.as_object_mut()) {
        options.insert("include_usage".into(), serde_json::Value::Bool(true));
    }
    serde_json::to_vec(&tree).map(Bytes::from).map_err(encode_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_cache_key_is_read_alone() {
        let body = br#"{"model":"gpt-5","input":[{"role":"user","content":"hi"}],"prompt_cache_key":"019a-sess\u0031","stream":true}"#;
        assert_eq!(prompt_cache_key(body).as_deref(), Some("019a-sess1"));
        assert_eq!(prompt_cache_key(br#"{"model":"m","prompt_cache_key":"  "}"#), None);
        assert_eq!(prompt_cache_key(br#"{"model":"m","prompt_cache_key":null}"#), None);
        assert_eq!(prompt_cache_key(br#"{"model":"m","prompt_cache_key":7}"#), None);
        assert_eq!(prompt_cache_key(br#"{"model":"m"}"#), None);
        assert_eq!(prompt_cache_key(b"not json"), None);
    }

    #[test]
    fn stream_options_must_be_an_object() {
        assert!(Peek::chat(br#"{"model":"m","messages":[],"stream_options":[]}"#).is_err());
        assert!(Peek::chat(br#"{"model":"m","messages":[],"stream_options":[true]}"#).is_err());
        let p = Peek::chat(br#"{"model":"m","messages":[],"stream_options":null}"#).unwrap();
        assert!(p.stream_options.is_none());
    }

    #[test]
    fn chat_peek_reads_model_and_stream() {
        let p = Peek::chat(br#"{"model":"m","messages":[],"stream":true,"top_k":3}"#).unwrap();
        assert_eq!(p.model, "m");
        assert!(p.stream);
        assert!(!p.tools);
        let p = Peek::chat(br#"{"model":"m","messages":[],"tools":[{"type":"function"}]}"#).unwrap();
        assert!(p.tools);
    }

    #[test]
    fn missing_messages_names_the_param() {
        let e = Peek::chat(br#"{"model":"m"}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages"));
        assert_eq!(e.code, "missing_required_parameter");
    }

    #[test]
    fn missing_model_names_the_param() {
        let e = Peek::chat(br#"{"messages":[]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model"));
    }

    #[test]
    fn wrong_types_name_the_param() {
        let e = Peek::chat(br#"{"model":"m","messages":"hi"}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("messages"));
        assert_eq!(e.code, "invalid_value");
        let e = Peek::chat(br#"{"model":5,"messages":[]}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("model"));
    }

    #[test]
    fn arrays_and_garbage_are_refused() {
        assert_eq!(Peek::chat(b"[1,2]").unwrap_err().code, "invalid_value");
        let positional = Peek::chat(br#" ["m", [], true]"#).unwrap_err();
        assert_eq!((positional.code, positional.param), ("invalid_value", None));
        assert!(EmbeddingsPeek::parse(br#"["m", "text"]"#).is_err());
        assert_eq!(Peek::chat(b"{not json").unwrap_err().code, "invalid_json");
        assert_eq!(Peek::chat(b"").unwrap_err().code, "invalid_json");
        assert_eq!(
            Peek::chat(br#"{"model":"m","messages":[]} trailing"#).unwrap_err().code,
            "invalid_json"
        );
    }

    #[test]
    fn splice_changes_only_the_model() {
        let body = Bytes::from_static(br#"{ "x": {"model": "keep"}, "model" : "alias", "z":1 }"#);
        let out = splice_model(&body, "real/\"name\"").unwrap();
        assert_eq!(
            &out[..],
            br#"{ "x": {"model": "keep"}, "model" : "real/\"name\"", "z":1 }"#
        );
    }

    #[test]
    fn stream_usage_is_requested_without_touching_other_bytes() {
        let body = Bytes::from_static(br#" {"model":"m","messages":[],"stream":true,"x":1}"#);
        let peek = Peek::chat(&body).unwrap();
        assert!(!peek.client_wants_stream_usage());
        let out = request_stream_usage(&body, &peek).unwrap();
        assert_eq!(
            &out[..],
            br#" {"stream_options":{"include_usage":true},"model":"m","messages":[],"stream":true,"x":1}"#
        );
        let body = Bytes::from_static(br#"{"model":"m","messages":[],"stream":true,"stream_options":{}}"#);
        let peek = Peek::chat(&body).unwrap();
        let out: serde_json::Value = serde_json::from_slice(&request_stream_usage(&body, &peek).unwrap()).unwrap();
        assert_eq!(out["stream_options"]["include_usage"], serde_json::json!(true));
    }

    #[test]
    fn embeddings_need_input() {
        let e = EmbeddingsPeek::parse(br#"{"model":"m"}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
        assert!(EmbeddingsPeek::parse(br#"{"model":"m","input":["a"]}"#).is_ok());
        assert!(EmbeddingsPeek::parse(br#"{"model":"m","input":"a"}"#).is_ok());
        for bad in [
            &br#"{"model":"m","input":null}"#[..],
            br#"{"model":"m","input":5}"#,
            br#"{"model":"m","input":{}}"#,
        ] {
            assert_eq!(EmbeddingsPeek::parse(bad).unwrap_err().param.as_deref(), Some("input"));
        }
    }
}

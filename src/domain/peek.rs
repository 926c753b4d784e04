//! The few fields the gateway reads from a client body, parsed once without copying the body.
//!
//! The body itself is forwarded as the original bytes: we never re-serialize what we only pass on.
//! When routing must rename the model, `splice_model` replaces just that JSON string in place.

use bytes::Bytes;
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::value::RawValue;

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
}

#[derive(Deserialize)]
struct ChatView {
    model: String,
    // Validated as an array (a JSON array of anything); Vec<IgnoredAny> never allocates.
    #[serde(rename = "messages")]
    _messages: Vec<IgnoredAny>,
    #[serde(default)]
    stream: Option<bool>,
}

impl Peek {
    /// Reads `model`, `messages` and `stream` from a `/v1/chat/completions` body.
    pub fn chat(body: &[u8]) -> Result<Self, BodyError> {
        let view: ChatView = parse(body)?;
        require_model(&view.model)?;
        Ok(Self {
            model: view.model,
            stream: view.stream.unwrap_or(false),
        })
    }
}

/// What routing needs from an embeddings request.
#[derive(Debug, Clone)]
pub struct EmbeddingsPeek {
    /// The requested model.
    pub model: String,
}

#[derive(Deserialize)]
struct EmbeddingsView {
    model: String,
    // A string, an array of strings or of token arrays: the upstream judges the shape.
    #[serde(rename = "input")]
    _input: IgnoredAny,
}

impl EmbeddingsPeek {
    /// Reads `model` and checks that `input` is present in a `/v1/embeddings` body.
    pub fn parse(body: &[u8]) -> Result<Self, BodyError> {
        let view: EmbeddingsView = parse(body)?;
        require_model(&view.model)?;
        Ok(Self { model: view.model })
    }
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
        return Err(BodyError {
            message: "the request body must be a JSON object, not an array".into(),
            param: None,
            code: "invalid_value",
        });
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = serde_path_to_error::deserialize(&mut de).map_err(describe)?;
    de.end().map_err(|e| BodyError {
        message: format!("the request body is not valid JSON: {e}"),
        param: None,
        code: "invalid_json",
    })?;
    Ok(value)
}

fn describe(err: serde_path_to_error::Error<serde_json::Error>) -> BodyError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    let text = inner.to_string();
    if inner.is_syntax() || inner.is_eof() {
        return BodyError {
            message: format!(
                "the request body is not valid JSON ({text}); send a JSON object with `model` and `messages`"
            ),
            param: None,
            code: "invalid_json",
        };
    }
    if let Some(field) = missing_field(&text) {
        return BodyError {
            message: format!("you must provide `{field}`"),
            param: Some(field.to_owned()),
            code: "missing_required_parameter",
        };
    }
    if path == "." {
        return BodyError {
            message: format!("the request body must be a JSON object ({text})"),
            param: None,
            code: "invalid_value",
        };
    }
    BodyError {
        message: format!("`{path}` is invalid: {text}"),
        param: Some(path),
        code: "invalid_value",
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chat_peek_reads_model_and_stream() {
        let p = Peek::chat(br#"{"model":"m","messages":[],"stream":true,"top_k":3}"#).unwrap();
        assert_eq!(p.model, "m");
        assert!(p.stream);
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
    fn embeddings_need_input() {
        let e = EmbeddingsPeek::parse(br#"{"model":"m"}"#).unwrap_err();
        assert_eq!(e.param.as_deref(), Some("input"));
        assert!(EmbeddingsPeek::parse(br#"{"model":"m","input":["a"]}"#).is_ok());
    }
}

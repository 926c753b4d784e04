//! Request validation before routing: the shapes every provider would refuse are answered 400
//! here, naming the parameter path (`messages[3].role`), so a broken or hostile body never reaches
//! an upstream or a breaker.
//!
//! Pure: bytes in, the routing view (`Peek`, `EmbeddingsPeek`) or a `BodyError` out; nothing is
//! rewritten. The cost is two passes over the bytes and no copy of them: a non-recursive scan
//! (UTF-8, nesting depth), then one borrowed serde pass that types only the fields we check and
//! skips every other value with serde_json's iterative `IgnoredAny`. Unknown fields pass through.
//! No error message repeats a client string longer than `ECHO_BYTES`: a 10 MB value must not
//! come back in the answer, the log or a history row.

use std::borrow::Cow;
use std::cell::Cell;
use std::fmt;
use std::marker::PhantomData;

use serde::Deserialize;
use serde::de::value::MapAccessDeserializer;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};

use crate::dialects::{BodyError, EmbeddingsPeek, Fallbacks, Peek, StreamOptions, deserialize_body};

/// Containers (objects and arrays) open at once, the body's own object included; deeper is 400.
pub const MAX_DEPTH: usize = 128;

/// Largest `n` (and `best_of`): OpenAI's documented maximum; each one is a whole completion.
pub const MAX_CHOICES: u64 = 128;

/// Longest client string quoted back in an error message.
const ECHO_BYTES: usize = 32;

/// The size limits a request's strings and lists must keep (`limits.*` in the settings).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Caps {
    /// Longest `model`, in bytes.
    pub max_model_bytes: usize,
    /// Longest identifier-like string we read: `user`, a message's `name`, tool and call ids,
    /// tool `type` and `name`, a content part's `type`.
    pub max_name_bytes: usize,
    /// Most entries in `tools`.
    pub max_tools: usize,
}

impl Caps {
    /// The defaults of `limits.*`.
    pub const DEFAULT: Self = Self {
        max_model_bytes: 256,
        max_name_bytes: 256,
        max_tools: 128,
    };
}

impl Default for Caps {
    fn default() -> Self {
        Self::DEFAULT
    }
}

thread_local! {
    // The caps of the validation running on this thread: serde's derived visitors take no
    // context, and a string must be refused by length before it is copied. Set and cleared
    // around one synchronous parse (`with_caps`), never held across an await.
    static CAPS: Cell<Caps> = const { Cell::new(Caps::DEFAULT) };
}

fn caps() -> Caps {
    CAPS.with(Cell::get)
}

fn with_caps<T>(caps: Caps, f: impl FnOnce() -> T) -> T {
    let previous = CAPS.with(|c| c.replace(caps));
    let out = f();
    CAPS.with(|c| c.set(previous));
    out
}

/// Checks a `/v1/chat/completions` body and returns what routing needs from it.
pub fn chat(body: &[u8], caps: Caps) -> Result<Peek, BodyError> {
    let view: ChatBody<'_> = parse(body, caps)?;
    let model = view.model.checked()?;
    non_empty(view.messages.len, "messages")?;
    at_most_tools(view.tools.as_ref().map(|t| t.len), caps)?;
    Ok(Peek {
        fallbacks: fallbacks(&model, view.models, view.fallbacks)?,
        model,
        stream: view.stream.is_some_and(|f| f.0),
        stream_options: view.stream_options.map(|o| StreamOptions {
            include_usage: o.0.include_usage.map(|f| f.0),
        }),
        tools: view.tools.is_some_and(|t| t.len > 0),
        max_tokens: view.max_completion_tokens.or(view.max_tokens).map(|c| c.0),
    })
}

/// Checks an Anthropic `/v1/messages` body and returns what routing needs from it.
pub fn messages(body: &[u8], caps: Caps) -> Result<Peek, BodyError> {
    let view: MessagesBody<'_> = parse(body, caps)?;
    let model = view.model.checked()?;
    non_empty(view.messages.len, "messages")?;
    at_most_tools(view.tools.as_ref().map(|t| t.len), caps)?;
    Ok(Peek {
        fallbacks: fallbacks(&model, view.models, view.fallbacks)?,
        model,
        stream: view.stream.is_some_and(|f| f.0),
        stream_options: None,
        tools: view.tools.is_some_and(|t| t.len > 0),
        max_tokens: view.max_tokens.map(|c| c.0),
    })
}

/// Checks a `/v1/responses` body (before it is bridged to chat) and returns the models it lists
/// to fall back on.
pub fn responses(body: &[u8], caps: Caps) -> Result<Fallbacks, BodyError> {
    let view: ResponsesBody<'_> = parse(body, caps)?;
    at_most_tools(view.tools.as_ref().map(|t| t.len), caps)?;
    let model = view.model.checked()?;
    fallbacks(&model, view.models, view.fallbacks)
}

/// Checks a `/v1/completions` body (before it is bridged to chat) and returns the models it lists
/// to fall back on.
pub fn completions(body: &[u8], caps: Caps) -> Result<Fallbacks, BodyError> {
    let view: CompletionsBody<'_> = parse(body, caps)?;
    let model = view.model.checked()?;
    fallbacks(&model, view.models, view.fallbacks)
}

/// Checks a `/v1/embeddings` body and returns what routing needs from it.
pub fn embeddings(body: &[u8], caps: Caps) -> Result<EmbeddingsPeek, BodyError> {
    let view: EmbeddingsBody<'_> = parse(body, caps)?;
    let model = view.model.checked()?;
    Ok(EmbeddingsPeek {
        fallbacks: fallbacks(&model, view.models, view.fallbacks)?,
        model,
    })
}

/// The models to try after `model`: `models` (OpenRouter's name) or `fallbacks` (LiteLLM's), not
/// both, since which one to follow would be a guess.
fn fallbacks(model: &str, models: ModelList<'_>, fallbacks: ModelList<'_>) -> Result<Fallbacks, BodyError> {
    match (models.present, fallbacks.present) {
        (true, true) => Err(BodyError {
            message: "list the models to fall back on in `models` or in `fallbacks`, not both".into(),
            param: Some("fallbacks".into()),
            code: "invalid_value",
        }),
        (true, false) => Ok(Fallbacks::of(model, models.names)),
        (false, true) => Ok(Fallbacks::of(model, fallbacks.names)),
        (false, false) => Ok(Fallbacks::default()),
    }
}

/// Refuses a body nested deeper than `MAX_DEPTH`, without recursion: one scan over the bytes that
/// skips strings (with `memchr`) and counts brackets. The param is the top-level key under which
/// the depth was exceeded. Malformed JSON is left for the parser to describe.
pub fn check_nesting(body: &[u8]) -> Result<(), BodyError> {
    // Fewer opening brackets than the limit, strings included, cannot nest past it: most bodies
    // are settled by this SIMD count alone.
    if memchr::memchr2_iter(b'[', b'{', body).nth(MAX_DEPTH).is_none() {
        return Ok(());
    }
    let mut depth = 0usize;
    // The last string seen at depth 1: in a valid body, the key of the value being scanned.
    let mut key = (0usize, 0usize);
    let mut i = 0usize;
    while let Some(&b) = body.get(i) {
        match b {
            b'"' => {
                let start = i + 1;
                let mut j = start;
                loop {
                    let Some(rest) = body.get(j..) else { return Ok(()) };
                    match memchr::memchr2(b'"', b'\\', rest) {
                        Some(k) if rest.get(k) == Some(&b'\\') => j += k + 2,
                        Some(k) => {
                            j += k;
                            break;
                        }
                        None => return Ok(()),
                    }
                }
                if depth == 1 {
                    key = (start, j);
                }
                i = j + 1;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    let name = body.get(key.0..key.1).map(|k| echo(&String::from_utf8_lossy(k)));
                    return Err(BodyError {
                        message: format!(
                            "the request body nests objects and arrays deeper than {MAX_DEPTH} levels{}; flatten it",
                            name.as_deref().map(|n| format!(" under `{n}`")).unwrap_or_default()
                        ),
                        param: name,
                        code: "invalid_value",
                    });
                }
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn parse<'de, T: Deserialize<'de>>(body: &'de [u8], caps: Caps) -> Result<T, BodyError> {
    check_nesting(body)?;
    with_caps(caps, || deserialize_body::<Obj<T>>(body)).map(|o| o.0)
}

fn non_empty(len: usize, param: &str) -> Result<(), BodyError> {
    if len == 0 {
        return Err(BodyError {
            message: format!("`{param}` must be a non-empty array"),
            param: Some(param.to_owned()),
            code: "invalid_value",
        });
    }
    Ok(())
}

fn at_most_tools(len: Option<usize>, caps: Caps) -> Result<(), BodyError> {
    match len {
        Some(n) if n > caps.max_tools => Err(BodyError {
            message: format!(
                "`tools` has {n} entries; at most {} are accepted (limits.max_tools)",
                caps.max_tools
            ),
            param: Some("tools".into()),
            code: "invalid_value",
        }),
        _ => Ok(()),
    }
}

/// `s`, or its first `ECHO_BYTES` bytes and an ellipsis.
fn echo(s: &str) -> String {
    if s.len() <= ECHO_BYTES {
        return s.to_owned();
    }
    let mut end = ECHO_BYTES;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", s.get(..end).unwrap_or_default())
}

/// The error for a string where another type belongs, without quoting the string.
fn not_a_string<E: de::Error>(expected: &dyn de::Expected) -> E {
    E::invalid_type(Unexpected::Other("a string"), expected)
}

mod bodies;
mod leaf;
#[cfg(test)]
mod tests;

use bodies::*;
use leaf::*;
// The peek reads `stream_options` with the same object-only rule.
pub(super) use leaf::Obj;

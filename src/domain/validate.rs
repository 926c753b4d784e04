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

use super::peek::{BodyError, EmbeddingsPeek, Peek, StreamOptions, deserialize_body};

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
        model,
        stream: view.stream.is_some_and(|f| f.0),
        stream_options: view.stream_options.map(|o| StreamOptions {
            include_usage: o.0.include_usage.map(|f| f.0),
        }),
        tools: view.tools.is_some_and(|t| t.len > 0),
    })
}

/// Checks an Anthropic `/v1/messages` body and returns what routing needs from it.
pub fn messages(body: &[u8], caps: Caps) -> Result<Peek, BodyError> {
    let view: MessagesBody<'_> = parse(body, caps)?;
    let model = view.model.checked()?;
    non_empty(view.messages.len, "messages")?;
    at_most_tools(view.tools.as_ref().map(|t| t.len), caps)?;
    Ok(Peek {
        model,
        stream: view.stream.is_some_and(|f| f.0),
        stream_options: None,
        tools: view.tools.is_some_and(|t| t.len > 0),
    })
}

/// Checks a `/v1/responses` body (before it is bridged to chat).
pub fn responses(body: &[u8], caps: Caps) -> Result<(), BodyError> {
    let view: ResponsesBody<'_> = parse(body, caps)?;
    at_most_tools(view.tools.as_ref().map(|t| t.len), caps)?;
    view.model.checked().map(drop)
}

/// Checks a `/v1/completions` body (before it is bridged to chat).
pub fn completions(body: &[u8], caps: Caps) -> Result<(), BodyError> {
    let view: CompletionsBody<'_> = parse(body, caps)?;
    view.model.checked().map(drop)
}

/// Checks a `/v1/embeddings` body and returns what routing needs from it.
pub fn embeddings(body: &[u8], caps: Caps) -> Result<EmbeddingsPeek, BodyError> {
    let view: EmbeddingsBody<'_> = parse(body, caps)?;
    Ok(EmbeddingsPeek {
        model: view.model.checked()?,
    })
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

// ---------------------------------------------------------------------------------------------
// Leaf types. Each has its own visitor, and all but the string ones ask for `deserialize_any`:
// serde's stock visitors, and serde_json's typed entry points, quote a wrong string whole.

/// An object, and only an object: derived struct deserializers also take an array as the fields
/// in order, which would let `["user", "hi"]` through as a message.
struct Obj<T>(T);

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Obj<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = T;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<T, E> {
                Err(not_a_string(&self))
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<T, A::Error> {
                T::deserialize(MapAccessDeserializer::new(map))
            }
        }
        d.deserialize_any(V(PhantomData)).map(Obj)
    }
}

/// An array of `T`, counted, never collected.
struct List<T> {
    len: usize,
    _of: PhantomData<T>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for List<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<T>(PhantomData<T>);
        impl<'de, T: Deserialize<'de>> Visitor<'de> for V<T> {
            type Value = List<T>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Err(not_a_string(&self))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut len = 0;
                while seq.next_element::<T>()?.is_some() {
                    len += 1;
                }
                Ok(List { len, _of: PhantomData })
            }
        }
        d.deserialize_any(V(PhantomData))
    }
}

/// `model`: a string of at most `limits.max_model_bytes`, refused before it is copied.
struct Model<'a>(Cow<'a, str>);

impl Model<'_> {
    fn checked(self) -> Result<String, BodyError> {
        if self.0.trim().is_empty() {
            return Err(BodyError {
                message: "`model` must be a non-empty string".into(),
                param: Some("model".into()),
                code: "invalid_value",
            });
        }
        Ok(self.0.into_owned())
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Model<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Model<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a model name (a string)")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Model<'de>, E> {
                cap(v, caps().max_model_bytes, "limits.max_model_bytes")?;
                Ok(Model(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Model<'de>, E> {
                cap(v, caps().max_model_bytes, "limits.max_model_bytes")?;
                Ok(Model(Cow::Owned(v.to_owned())))
            }
        }
        d.deserialize_str(V)
    }
}

fn cap<E: de::Error>(v: &str, max: usize, key: &str) -> Result<(), E> {
    if v.len() > max {
        return Err(E::custom(format_args!(
            "is {} bytes long; at most {max} are accepted ({key})",
            v.len()
        )));
    }
    Ok(())
}

/// An identifier-like string (`user`, names, ids, types): at most `limits.max_name_bytes`.
struct Name;

impl<'de> Deserialize<'de> for Name {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Name;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Name, E> {
                cap(v, caps().max_name_bytes, "limits.max_name_bytes").map(|()| Name)
            }
        }
        d.deserialize_str(V)
    }
}

/// Any string (text the upstream reads: its size is bounded by `limits.max_body_bytes` only).
struct Text;

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Text, E> {
                Ok(Text)
            }
        }
        d.deserialize_str(V)
    }
}

/// `true` or `false` (`"stream": "yes"` is not).
struct Flag(bool);

impl<'de> Deserialize<'de> for Flag {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Flag;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a boolean (true or false)")
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Flag, E> {
                Ok(Flag(v))
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Flag, E> {
                Err(not_a_string(&self))
            }
        }
        d.deserialize_any(V)
    }
}

/// Any JSON number (`temperature`, `top_p`, penalties). Out-of-range literals such as `1e999`
/// are refused by the parser itself.
struct Num;

impl<'de> Deserialize<'de> for Num {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Num;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a number")
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Num, E> {
                Ok(Num)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Num, E> {
                Ok(Num)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Num, E> {
                Ok(Num)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Num, E> {
                Err(not_a_string(&self))
            }
        }
        d.deserialize_any(V)
    }
}

/// An integer, signed (`seed`).
struct Int;

impl<'de> Deserialize<'de> for Int {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Int;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an integer")
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Int, E> {
                Ok(Int)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Int, E> {
                Ok(Int)
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Int, E> {
                Err(not_a_string(&self))
            }
        }
        d.deserialize_any(V)
    }
}

/// A non-negative integer of at most `MAX` (token counts, `n`, token ids).
struct Count<const MAX: u64>;

/// Token counts and token ids: 32-bit everywhere upstream.
type Tokens = Count<{ u32::MAX as u64 }>;

impl<'de, const MAX: u64> Deserialize<'de> for Count<MAX> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const MAX: u64>;
        impl<const MAX: u64> Visitor<'_> for V<MAX> {
            type Value = Count<MAX>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "an integer from 0 to {MAX}")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Count<MAX>, E> {
                if v > MAX {
                    return Err(E::invalid_value(Unexpected::Unsigned(v), &self));
                }
                Ok(Count)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Count<MAX>, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &self)),
                }
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Count<MAX>, E> {
                Err(not_a_string(&self))
            }
        }
        d.deserialize_any(V::<MAX>)
    }
}

/// A closed set of strings (roles, `encoding_format`).
trait Choices {
    const ALL: &'static [&'static str];
}

struct OneOf<C>(PhantomData<C>);

impl<'de, C: Choices> Deserialize<'de> for OneOf<C> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<C>(PhantomData<C>);
        impl<C: Choices> Visitor<'_> for V<C> {
            type Value = OneOf<C>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("one of ")?;
                for (i, c) in C::ALL.iter().enumerate() {
                    let sep = if i == 0 { "" } else { ", " };
                    write!(f, "{sep}`{c}`")?;
                }
                Ok(())
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<OneOf<C>, E> {
                if C::ALL.contains(&v) {
                    return Ok(OneOf(PhantomData));
                }
                Err(E::invalid_value(Unexpected::Str(&echo(v)), &self))
            }
        }
        d.deserialize_str(V(PhantomData))
    }
}

/// OpenAI chat roles.
struct ChatRoles;
impl Choices for ChatRoles {
    const ALL: &'static [&'static str] = &["system", "developer", "user", "assistant", "tool", "function"];
}

/// Roles of a Responses `input` message item.
struct ResponsesRoles;
impl Choices for ResponsesRoles {
    const ALL: &'static [&'static str] = &["system", "developer", "user", "assistant"];
}

/// Anthropic message roles (the system prompt is the top-level `system`).
struct AnthropicRoles;
impl Choices for AnthropicRoles {
    const ALL: &'static [&'static str] = &["user", "assistant"];
}

struct EncodingFormats;
impl Choices for EncodingFormats {
    const ALL: &'static [&'static str] = &["float", "base64"];
}

/// Message content: a string, an array of parts (objects with a `type`), or — where the API
/// allows it (`NULLABLE`) — null. An object is refused.
struct Content<const NULLABLE: bool>;

#[derive(Deserialize)]
struct Part {
    #[serde(rename = "type")]
    _type: Name,
}

impl<'de, const NULLABLE: bool> Deserialize<'de> for Content<NULLABLE> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<const NULLABLE: bool>;
        impl<'de, const NULLABLE: bool> Visitor<'de> for V<NULLABLE> {
            type Value = Content<NULLABLE>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                if NULLABLE {
                    f.write_str("a string, an array of content parts or null")
                } else {
                    f.write_str("a string or an array of content blocks")
                }
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Content)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                if NULLABLE {
                    return Ok(Content);
                }
                Err(E::invalid_type(Unexpected::Unit, &self))
            }
            fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
                self.visit_unit()
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                while seq.next_element::<Obj<Part>>()?.is_some() {}
                Ok(Content)
            }
        }
        d.deserialize_any(V::<NULLABLE>)
    }
}

/// An embeddings `input` or a completions `prompt`: a string, or a non-empty array of strings,
/// of token ids (one token array), or of token arrays — not a mix.
struct Input;

#[derive(Clone, Copy, PartialEq, Eq)]
enum InputItem {
    Text,
    Token,
    TokenArray,
}

impl InputItem {
    fn what(self) -> &'static str {
        match self {
            Self::Text => "strings",
            Self::Token => "token ids",
            Self::TokenArray => "token arrays",
        }
    }
}

impl<'de> Deserialize<'de> for InputItem {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = InputItem;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, a token id or an array of token ids")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<InputItem, E> {
                Ok(InputItem::Text)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<InputItem, E> {
                if v > u64::from(u32::MAX) {
                    return Err(E::invalid_value(
                        Unexpected::Unsigned(v),
                        &"a token id (0 to 4294967295)",
                    ));
                }
                Ok(InputItem::Token)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<InputItem, E> {
                match u64::try_from(v) {
                    Ok(v) => self.visit_u64(v),
                    Err(_) => Err(E::invalid_value(Unexpected::Signed(v), &"a token id (0 to 4294967295)")),
                }
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<InputItem, A::Error> {
                let mut len = 0usize;
                while seq.next_element::<Tokens>()?.is_some() {
                    len += 1;
                }
                if len == 0 {
                    return Err(de::Error::custom("a token array must not be empty"));
                }
                Ok(InputItem::TokenArray)
            }
        }
        d.deserialize_any(V)
    }
}

impl<'de> Deserialize<'de> for Input {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Input;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, an array of strings, an array of token ids or an array of token arrays")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<Input, E> {
                Ok(Input)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Input, A::Error> {
                let Some(first) = seq.next_element::<InputItem>()? else {
                    return Err(de::Error::custom("must not be an empty array"));
                };
                while let Some(item) = seq.next_element::<InputItem>()? {
                    if item != first {
                        return Err(de::Error::custom(format_args!(
                            "mixes {} with {}: send one kind per request",
                            first.what(),
                            item.what()
                        )));
                    }
                }
                Ok(Input)
            }
        }
        d.deserialize_any(V)
    }
}

// ---------------------------------------------------------------------------------------------
// The bodies. Only the fields we check are named; serde skips the rest without typing them.

#[derive(Deserialize)]
struct ChatBody<'a> {
    #[serde(borrow)]
    model: Model<'a>,
    messages: List<Obj<ChatMessage>>,
    stream: Option<Flag>,
    stream_options: Option<Obj<StreamOptionsView>>,
    tools: Option<List<Obj<Tool>>>,
    #[serde(rename = "max_tokens")]
    _max_tokens: Option<Tokens>,
    #[serde(rename = "max_completion_tokens")]
    _max_completion_tokens: Option<Tokens>,
    #[serde(rename = "n")]
    _n: Option<Count<MAX_CHOICES>>,
    #[serde(rename = "temperature")]
    _temperature: Option<Num>,
    #[serde(rename = "top_p")]
    _top_p: Option<Num>,
    #[serde(rename = "presence_penalty")]
    _presence_penalty: Option<Num>,
    #[serde(rename = "frequency_penalty")]
    _frequency_penalty: Option<Num>,
    #[serde(rename = "seed")]
    _seed: Option<Int>,
    #[serde(rename = "logprobs")]
    _logprobs: Option<Flag>,
    #[serde(rename = "top_logprobs")]
    _top_logprobs: Option<Tokens>,
    #[serde(rename = "parallel_tool_calls")]
    _parallel_tool_calls: Option<Flag>,
    #[serde(rename = "user")]
    _user: Option<Name>,
}

#[derive(Deserialize)]
struct StreamOptionsView {
    include_usage: Option<Flag>,
}

#[derive(Deserialize)]
struct ChatMessage {
    #[serde(rename = "role")]
    _role: OneOf<ChatRoles>,
    #[serde(rename = "content")]
    _content: Option<Content<true>>,
    #[serde(rename = "name")]
    _name: Option<Name>,
    #[serde(rename = "tool_call_id")]
    _tool_call_id: Option<Name>,
    #[serde(rename = "tool_calls")]
    _tool_calls: Option<List<Obj<ToolCall>>>,
}

#[derive(Deserialize)]
struct ToolCall {
    #[serde(rename = "id")]
    _id: Option<Name>,
    #[serde(rename = "type")]
    _type: Option<Name>,
    #[serde(rename = "function")]
    _function: Option<Obj<FunctionName>>,
}

#[derive(Deserialize)]
struct FunctionName {
    #[serde(rename = "name")]
    _name: Option<Name>,
}

/// A chat or Responses tool: an object with a `type`.
#[derive(Deserialize)]
struct Tool {
    #[serde(rename = "type")]
    _type: Name,
    #[serde(rename = "name")]
    _name: Option<Name>,
    #[serde(rename = "function")]
    _function: Option<Obj<FunctionName>>,
}

#[derive(Deserialize)]
struct MessagesBody<'a> {
    #[serde(borrow)]
    model: Model<'a>,
    messages: List<Obj<AnthropicMessage>>,
    stream: Option<Flag>,
    tools: Option<List<Obj<AnthropicTool>>>,
    #[serde(rename = "system")]
    _system: Option<Content<false>>,
    #[serde(rename = "max_tokens")]
    _max_tokens: Option<Tokens>,
    #[serde(rename = "temperature")]
    _temperature: Option<Num>,
    #[serde(rename = "top_p")]
    _top_p: Option<Num>,
    #[serde(rename = "top_k")]
    _top_k: Option<Tokens>,
    #[serde(rename = "stop_sequences")]
    _stop_sequences: Option<List<Text>>,
    #[serde(rename = "metadata")]
    _metadata: Option<Obj<AnthropicMetadata>>,
}

#[derive(Deserialize)]
struct AnthropicMessage {
    #[serde(rename = "role")]
    _role: OneOf<AnthropicRoles>,
    #[serde(rename = "content")]
    _content: Content<false>,
}

/// An Anthropic tool: custom tools have a `name` and no `type`, server tools both.
#[derive(Deserialize)]
struct AnthropicTool {
    #[serde(rename = "name")]
    _name: Option<Name>,
    #[serde(rename = "type")]
    _type: Option<Name>,
}

#[derive(Deserialize)]
struct AnthropicMetadata {
    #[serde(rename = "user_id")]
    _user_id: Option<Name>,
}

#[derive(Deserialize)]
struct ResponsesBody<'a> {
    #[serde(borrow)]
    model: Model<'a>,
    #[serde(rename = "input")]
    _input: ResponsesInput,
    tools: Option<List<Obj<Tool>>>,
    #[serde(rename = "instructions")]
    _instructions: Option<Text>,
    #[serde(rename = "stream")]
    _stream: Option<Flag>,
    #[serde(rename = "max_output_tokens")]
    _max_output_tokens: Option<Tokens>,
    #[serde(rename = "temperature")]
    _temperature: Option<Num>,
    #[serde(rename = "top_p")]
    _top_p: Option<Num>,
    #[serde(rename = "parallel_tool_calls")]
    _parallel_tool_calls: Option<Flag>,
    #[serde(rename = "user")]
    _user: Option<Name>,
}

/// A Responses `input`: a string or an array of item objects.
struct ResponsesInput;

#[derive(Deserialize)]
struct ResponsesItem {
    #[serde(rename = "type")]
    _type: Option<Name>,
    #[serde(rename = "role")]
    _role: Option<OneOf<ResponsesRoles>>,
    #[serde(rename = "content")]
    _content: Option<Content<true>>,
    #[serde(rename = "id")]
    _id: Option<Name>,
    #[serde(rename = "call_id")]
    _call_id: Option<Name>,
    #[serde(rename = "name")]
    _name: Option<Name>,
}

impl<'de> Deserialize<'de> for ResponsesInput {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ResponsesInput;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or an array of input items")
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<ResponsesInput, E> {
                Ok(ResponsesInput)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ResponsesInput, A::Error> {
                while seq.next_element::<Obj<ResponsesItem>>()?.is_some() {}
                Ok(ResponsesInput)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct CompletionsBody<'a> {
    #[serde(borrow)]
    model: Model<'a>,
    #[serde(rename = "prompt")]
    _prompt: Input,
    #[serde(rename = "suffix")]
    _suffix: Option<Text>,
    #[serde(rename = "stream")]
    _stream: Option<Flag>,
    #[serde(rename = "echo")]
    _echo: Option<Flag>,
    #[serde(rename = "max_tokens")]
    _max_tokens: Option<Tokens>,
    #[serde(rename = "n")]
    _n: Option<Count<MAX_CHOICES>>,
    #[serde(rename = "best_of")]
    _best_of: Option<Count<MAX_CHOICES>>,
    #[serde(rename = "logprobs")]
    _logprobs: Option<Count<5>>,
    #[serde(rename = "temperature")]
    _temperature: Option<Num>,
    #[serde(rename = "top_p")]
    _top_p: Option<Num>,
    #[serde(rename = "presence_penalty")]
    _presence_penalty: Option<Num>,
    #[serde(rename = "frequency_penalty")]
    _frequency_penalty: Option<Num>,
    #[serde(rename = "seed")]
    _seed: Option<Int>,
    #[serde(rename = "user")]
    _user: Option<Name>,
}

#[derive(Deserialize)]
struct EmbeddingsBody<'a> {
    #[serde(borrow)]
    model: Model<'a>,
    #[serde(rename = "input")]
    _input: Input,
    #[serde(rename = "dimensions")]
    _dimensions: Option<Tokens>,
    #[serde(rename = "encoding_format")]
    _encoding_format: Option<OneOf<EncodingFormats>>,
    #[serde(rename = "user")]
    _user: Option<Name>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const CAPS: Caps = Caps::DEFAULT;

    fn chat_err(body: &str) -> BodyError {
        chat(body.as_bytes(), CAPS).unwrap_err()
    }

    fn param(e: &BodyError) -> &str {
        e.param.as_deref().unwrap_or("<none>")
    }

    fn nested(levels: usize) -> String {
        format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"hi"}}],"extra":{}1{}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        )
    }

    #[test]
    fn a_typical_chat_body_passes_and_is_peeked() {
        let body = r#"{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},
            "messages":[{"role":"system","content":"be brief"},
                        {"role":"user","content":[{"type":"text","text":"hi"},{"type":"image_url","image_url":{"url":"x"}}]},
                        {"role":"assistant","content":null,"tool_calls":[{"id":"c1","type":"function","function":{"name":"f","arguments":"{}"}}]},
                        {"role":"tool","tool_call_id":"c1","content":"42"},
                        {"role":"developer","content":"x"},{"role":"function","name":"f","content":"y"}],
            "tools":[{"type":"function","function":{"name":"f","parameters":{}}}],
            "max_tokens":100,"n":2,"temperature":0.5,"top_p":1,"seed":-3,"user":"u","unknown":{"deep":[1,{"x":null}]}}"#;
        let peek = chat(body.as_bytes(), CAPS).unwrap();
        assert_eq!(peek.model, "gpt-4o");
        assert!(peek.stream && peek.tools && peek.client_wants_stream_usage());
    }

    #[test]
    fn messages_must_be_a_non_empty_array_of_objects() {
        assert_eq!(param(&chat_err(r#"{"model":"m","messages":[]}"#)), "messages");
        assert_eq!(param(&chat_err(r#"{"model":"m","messages":{}}"#)), "messages");
        assert_eq!(
            param(&chat_err(r#"{"model":"m","messages":[["user","hi"]]}"#)),
            "messages[0]"
        );
        assert_eq!(
            param(&chat_err(
                r#"{"model":"m","messages":[{"role":"user","content":"a"},"hi"]}"#
            )),
            "messages[1]"
        );
    }

    #[test]
    fn a_role_must_be_a_known_string() {
        let ok = r#"{"role":"user","content":"a"}"#;
        let e = chat_err(&format!(
            r#"{{"model":"m","messages":[{ok},{ok},{ok},{{"role":5,"content":"a"}}]}}"#
        ));
        assert_eq!(param(&e), "messages[3].role");
        assert_eq!(e.code, "invalid_value");
        let e = chat_err(r#"{"model":"m","messages":[{"role":"wizard","content":"a"}]}"#);
        assert_eq!(param(&e), "messages[0].role");
        assert!(e.message.contains("`assistant`"), "{}", e.message);
        let e = chat_err(r#"{"model":"m","messages":[{"content":"a"}]}"#);
        assert_eq!((param(&e), e.code), ("messages[0].role", "missing_required_parameter"));
    }

    #[test]
    fn content_is_a_string_an_array_of_parts_or_null() {
        let e = chat_err(r#"{"model":"m","messages":[{"role":"user","content":{"text":"a"}}]}"#);
        assert_eq!(param(&e), "messages[0].content");
        let e = chat_err(r#"{"model":"m","messages":[{"role":"user","content":5}]}"#);
        assert_eq!(param(&e), "messages[0].content");
        let e = chat_err(r#"{"model":"m","messages":[{"role":"user","content":["a"]}]}"#);
        assert_eq!(param(&e), "messages[0].content[0]");
        let e = chat_err(r#"{"model":"m","messages":[{"role":"user","content":[{"text":"a"}]}]}"#);
        assert_eq!(param(&e), "messages[0].content[0].type");
    }

    #[test]
    fn tools_are_objects_with_a_type_and_bounded_in_number() {
        let e = chat_err(r#"{"model":"m","messages":[{"role":"user","content":"a"}],"tools":[{"function":{}}]}"#);
        assert_eq!(param(&e), "tools[0].type");
        let e = chat_err(r#"{"model":"m","messages":[{"role":"user","content":"a"}],"tools":["f"]}"#);
        assert_eq!(param(&e), "tools[0]");
        let tools = vec![r#"{"type":"function"}"#; 129].join(",");
        let e = chat_err(&format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"a"}}],"tools":[{tools}]}}"#
        ));
        assert_eq!(param(&e), "tools");
    }

    #[test]
    fn numbers_go_where_numbers_go() {
        let msg = r#""messages":[{"role":"user","content":"a"}]"#;
        for (field, value) in [
            ("max_tokens", "-1"),
            ("max_tokens", "1.5"),
            ("max_tokens", "\"100\""),
            ("max_tokens", "1e999"),
            ("max_tokens", "99999999999"),
            ("n", "1000000"),
            ("temperature", "\"hot\""),
            ("temperature", "1e999"),
            ("stream", "\"yes\""),
            ("seed", "0.5"),
        ] {
            let e = chat_err(&format!(r#"{{"model":"m",{msg},"{field}":{value}}}"#));
            assert_eq!(param(&e), field, "{field}: {value} → {e:?}");
            assert_eq!(e.code, "invalid_value", "{field}: {value}");
        }
        assert!(
            chat(
                format!(r#"{{"model":"m",{msg},"n":128,"max_tokens":null}}"#).as_bytes(),
                CAPS
            )
            .is_ok()
        );
    }

    #[test]
    fn model_and_names_are_capped_without_quoting_them() {
        let long = "x".repeat(4 << 20);
        let e = chat_err(&format!(
            r#"{{"model":"{long}","messages":[{{"role":"user","content":"a"}}]}}"#
        ));
        assert_eq!(param(&e), "model");
        assert!(e.message.len() < 300, "{}", e.message);
        let escaped = "\\u0041".repeat(300);
        assert_eq!(
            param(&chat_err(&format!(r#"{{"model":"{escaped}","messages":[]}}"#))),
            "model"
        );
        let e = chat_err(&format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"a"}}],"user":"{long}"}}"#
        ));
        assert_eq!(param(&e), "user");
        let e = chat_err(&format!(
            r#"{{"model":"m","messages":[{{"role":"{long}","content":"a"}}]}}"#
        ));
        assert_eq!(param(&e), "messages[0].role");
        assert!(e.message.len() < 300, "{}", e.message);
        let e = chat_err(&format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"a"}}],"max_tokens":"{long}"}}"#
        ));
        assert!(e.message.len() < 300, "{}", e.message);
        // Content is text the upstream reads: only the body limit bounds it.
        assert!(
            chat(
                format!(r#"{{"model":"m","messages":[{{"role":"user","content":"{long}"}}]}}"#).as_bytes(),
                CAPS
            )
            .is_ok()
        );
        let tight = Caps {
            max_model_bytes: 3,
            ..CAPS
        };
        assert!(chat(br#"{"model":"abcd","messages":[{"role":"user","content":"a"}]}"#, tight).is_err());
        assert!(chat(br#"{"model":"abc","messages":[{"role":"user","content":"a"}]}"#, tight).is_ok());
    }

    #[test]
    fn nesting_deeper_than_the_limit_is_refused_by_a_flat_scan() {
        // The body's object and the messages' containers use 3 levels besides `extra`.
        assert!(chat(nested(MAX_DEPTH - 1).as_bytes(), CAPS).is_ok());
        let e = chat_err(&nested(MAX_DEPTH));
        assert_eq!(param(&e), "extra");
        // Far past any stack: the scan does not recurse.
        let e = chat_err(&nested(1_000_000));
        assert_eq!(param(&e), "extra");
        // Brackets inside strings, escaped quotes included, do not count.
        let inside = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"\"{}"}}]}}"#,
            "[".repeat(500)
        );
        assert!(chat(inside.as_bytes(), CAPS).is_ok());
        assert!(check_nesting(br#"{"a":"unterminated [[["#).is_ok());
    }

    #[test]
    fn duplicate_model_keys_and_odd_encodings_are_refused() {
        let e = chat_err(r#"{"model":"cheap","messages":[{"role":"user","content":"a"}],"model":"dear"}"#);
        assert_eq!(param(&e), "model");
        let e = chat(
            b"\xEF\xBB\xBF{\"model\":\"m\",\"messages\":[{\"role\":\"user\",\"content\":\"a\"}]}",
            CAPS,
        )
        .unwrap_err();
        assert_eq!(e.code, "invalid_json");
        let utf16: Vec<u8> = r#"{"model":"m"}"#.encode_utf16().flat_map(u16::to_le_bytes).collect();
        assert_eq!(chat(&utf16, CAPS).unwrap_err().code, "invalid_json");
        assert_eq!(
            chat(b"\x1f\x8b\x08\x00\x00\x00\x00\x00", CAPS).unwrap_err().code,
            "invalid_json"
        );
    }

    #[test]
    fn a_ten_megabyte_number_names_its_field_and_is_not_quoted() {
        let digits = "9".repeat(10 << 20);
        let e = chat_err(&format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":"a"}}],"max_tokens":{digits}}}"#
        ));
        assert_eq!((param(&e), e.code), ("max_tokens", "invalid_value"));
        assert!(e.message.len() < 300, "{}", e.message);
        // In a field we do not read it is the upstream's to judge, and passes untouched.
        assert!(
            chat(
                format!(r#"{{"model":"m","messages":[{{"role":"user","content":"a"}}],"x":{digits}}}"#).as_bytes(),
                CAPS
            )
            .is_ok()
        );
    }

    #[test]
    fn anthropic_messages_take_user_and_assistant_and_no_null_content() {
        let ok = r#"{"model":"c","max_tokens":10,"system":[{"type":"text","text":"s"}],
            "messages":[{"role":"user","content":[{"type":"text","text":"hi"}]},{"role":"assistant","content":"yo"}],
            "tools":[{"name":"get","input_schema":{}}],"metadata":{"user_id":"u"}}"#;
        assert!(messages(ok.as_bytes(), CAPS).unwrap().tools);
        let e = messages(br#"{"model":"c","messages":[{"role":"system","content":"a"}]}"#, CAPS).unwrap_err();
        assert_eq!(param(&e), "messages[0].role");
        let e = messages(br#"{"model":"c","messages":[{"role":"user","content":null}]}"#, CAPS).unwrap_err();
        assert_eq!(param(&e), "messages[0].content");
        let e = messages(
            br#"{"model":"c","messages":[{"role":"user","content":"a"}],"max_tokens":-5}"#,
            CAPS,
        )
        .unwrap_err();
        assert_eq!(param(&e), "max_tokens");
        let e = messages(br#"{"model":"c","messages":[]}"#, CAPS).unwrap_err();
        assert_eq!(param(&e), "messages");
    }

    #[test]
    fn responses_input_items_are_checked_in_their_own_terms() {
        assert!(responses(br#"{"model":"m","input":"hi"}"#, CAPS).is_ok());
        let ok = br#"{"model":"m","input":[{"role":"user","content":[{"type":"input_text","text":"a"}]},
            {"type":"function_call_output","call_id":"c","output":"x"}],"tools":[{"type":"web_search_preview"}]}"#;
        assert!(responses(ok, CAPS).is_ok());
        let e = responses(
            br#"{"model":"m","input":[{"role":"user","content":"a"},{"role":"tool","content":"a"}]}"#,
            CAPS,
        )
        .unwrap_err();
        assert_eq!(param(&e), "input[1].role");
        let e = responses(br#"{"model":"m","input":[["user"]]}"#, CAPS).unwrap_err();
        assert_eq!(param(&e), "input[0]");
        let e = responses(br#"{"model":"m","input":{"role":"user"}}"#, CAPS).unwrap_err();
        assert_eq!(param(&e), "input");
        let e = responses(br#"{"model":"m","input":"a","max_output_tokens":-1}"#, CAPS).unwrap_err();
        assert_eq!(param(&e), "max_output_tokens");
    }

    #[test]
    fn completions_prompts_and_embeddings_inputs_take_strings_or_tokens() {
        for input in [r#""a""#, r#"["a","b"]"#, "[1,2,3]", "[[1,2],[3]]"] {
            assert!(
                embeddings(format!(r#"{{"model":"m","input":{input}}}"#).as_bytes(), CAPS).is_ok(),
                "{input}"
            );
            assert!(
                completions(format!(r#"{{"model":"m","prompt":{input}}}"#).as_bytes(), CAPS).is_ok(),
                "{input}"
            );
        }
        for (input, at) in [
            ("null", "input"),
            ("5", "input"),
            ("{}", "input"),
            ("[]", "input"),
            (r#"["a",1]"#, "input"),
            ("[[]]", "input[0]"),
            ("[-1]", "input[0]"),
            (r#"[["a"]]"#, "input[0][0]"),
            ("[{}]", "input[0]"),
        ] {
            let e = embeddings(format!(r#"{{"model":"m","input":{input}}}"#).as_bytes(), CAPS).unwrap_err();
            assert_eq!(param(&e), at, "{input}: {e:?}");
        }
        let e = embeddings(br#"{"model":"m"}"#, CAPS).unwrap_err();
        assert_eq!((param(&e), e.code), ("input", "missing_required_parameter"));
        let e = embeddings(br#"{"model":"m","input":"a","encoding_format":"hex"}"#, CAPS).unwrap_err();
        assert_eq!(param(&e), "encoding_format");
        let e = completions(br#"{"model":"m","prompt":"a","n":1000000}"#, CAPS).unwrap_err();
        assert_eq!(param(&e), "n");
    }
}

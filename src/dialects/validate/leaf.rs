//! The leaf types validation reads: each has its own visitor, and all but the string ones ask
//! for `deserialize_any`, because serde's stock visitors and serde_json's typed entry points quote a
//! wrong string whole (a 10 MB value would come back in the answer).

use super::*;

/// An object, and only an object: derived struct deserializers also take an array as the fields
/// in order, which would let `["user", "hi"]` through as a message.
pub(in crate::dialects) struct Obj<T>(pub(in crate::dialects) T);

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
pub(super) struct List<T> {
    pub(super) len: usize,
    pub(super) _of: PhantomData<T>,
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
pub(super) struct Model<'a>(pub(super) Cow<'a, str>);

impl Model<'_> {
    pub(super) fn checked(self) -> Result<String, BodyError> {
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

/// `models` or `fallbacks`: the models to try after `model`, an array of at most
/// `MAX_FALLBACKS` non-empty names of at most `limits.max_model_bytes` (`null`: none). Every
/// refusal names the list itself, never an entry's index, and quotes no entry.
#[derive(Default)]
pub(super) struct ModelList<'a> {
    /// The member is in the body (`Default`: it is not).
    pub(super) present: bool,
    /// The names, in order.
    pub(super) names: Vec<Cow<'a, str>>,
}

impl<'de: 'a, 'a> Deserialize<'de> for ModelList<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = ModelList<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an array of model names")
            }
            fn visit_unit<E: de::Error>(self) -> Result<ModelList<'de>, E> {
                Ok(ModelList {
                    present: true,
                    names: Vec::new(),
                })
            }
            fn visit_str<E: de::Error>(self, _: &str) -> Result<ModelList<'de>, E> {
                Err(not_a_string(&self))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ModelList<'de>, A::Error> {
                let mut names = Vec::new();
                while let Some(entry) = seq.next_element::<Entry<'de>>()? {
                    let name = match entry {
                        Entry::Name(name) if !name.trim().is_empty() => name,
                        Entry::Name(_) => return Err(de::Error::custom("an entry is empty; list model names")),
                        Entry::Long(len) => {
                            let max = caps().max_model_bytes;
                            return Err(de::Error::custom(format_args!(
                                "an entry is {len} bytes long; at most {max} are accepted (limits.max_model_bytes)"
                            )));
                        }
                        Entry::Other => return Err(de::Error::custom("every entry must be a model name (a string)")),
                    };
                    if names.len() == crate::dialects::MAX_FALLBACKS {
                        return Err(de::Error::custom(format_args!(
                            "lists more than {} models",
                            crate::dialects::MAX_FALLBACKS
                        )));
                    }
                    names.push(name);
                }
                Ok(ModelList { present: true, names })
            }
        }
        d.deserialize_any(V)
    }
}

/// One entry of a `ModelList`, whatever it is: the list judges it, so a refusal names the list.
enum Entry<'a> {
    Name(Cow<'a, str>),
    /// A string over `limits.max_model_bytes` (its length only: it is never copied).
    Long(usize),
    Other,
}

impl<'de: 'a, 'a> Deserialize<'de> for Entry<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Entry<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a model name")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Entry<'de>, E> {
                Ok(match v.len() {
                    len if len > caps().max_model_bytes => Entry::Long(len),
                    _ => Entry::Name(Cow::Borrowed(v)),
                })
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Entry<'de>, E> {
                Ok(match v.len() {
                    len if len > caps().max_model_bytes => Entry::Long(len),
                    _ => Entry::Name(Cow::Owned(v.to_owned())),
                })
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Entry<'de>, E> {
                Ok(Entry::Other)
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<Entry<'de>, E> {
                Ok(Entry::Other)
            }
            fn visit_u64<E: de::Error>(self, _: u64) -> Result<Entry<'de>, E> {
                Ok(Entry::Other)
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<Entry<'de>, E> {
                Ok(Entry::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Entry<'de>, E> {
                Ok(Entry::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Entry<'de>, A::Error> {
                while seq.next_element::<de::IgnoredAny>()?.is_some() {}
                Ok(Entry::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry<'de>, A::Error> {
                while map.next_entry::<de::IgnoredAny, de::IgnoredAny>()?.is_some() {}
                Ok(Entry::Other)
            }
        }
        d.deserialize_any(V)
    }
}

pub(super) fn cap<E: de::Error>(v: &str, max: usize, key: &str) -> Result<(), E> {
    if v.len() > max {
        return Err(E::custom(format_args!(
            "is {} bytes long; at most {max} are accepted ({key})",
            v.len()
        )));
    }
    Ok(())
}

/// An identifier-like string (`user`, names, ids, types): at most `limits.max_name_bytes`.
pub(super) struct Name;

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
pub(super) struct Text;

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
pub(super) struct Flag(pub(super) bool);

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
pub(super) struct Num;

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
pub(super) struct Int;

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
pub(super) struct Count<const MAX: u64>(pub(super) u64);

/// Token counts and token ids: 32-bit everywhere upstream.
pub(super) type Tokens = Count<{ u32::MAX as u64 }>;

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
                Ok(Count(v))
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
pub(super) trait Choices {
    const ALL: &'static [&'static str];
}

pub(super) struct OneOf<C>(pub(super) PhantomData<C>);

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
pub(super) struct ChatRoles;
impl Choices for ChatRoles {
    const ALL: &'static [&'static str] = &["system", "developer", "user", "assistant", "tool", "function"];
}

/// Roles of a Responses `input` message item.
pub(super) struct ResponsesRoles;
impl Choices for ResponsesRoles {
    const ALL: &'static [&'static str] = &["system", "developer", "user", "assistant"];
}

/// Anthropic message roles. The system prompt is the top-level `system`, but a `system` message
/// may also sit mid-conversation: Claude Code sends one (the environment, the date) for models it
/// does not know, and Anthropic's API takes it. Whether an upstream can is the adapter's concern.
pub(super) struct AnthropicRoles;
impl Choices for AnthropicRoles {
    const ALL: &'static [&'static str] = &["user", "assistant", "system"];
}

pub(super) struct EncodingFormats;
impl Choices for EncodingFormats {
    const ALL: &'static [&'static str] = &["float", "base64"];
}

/// Message content: a string, an array of parts (objects with a `type`), or — where the API
/// allows it (`NULLABLE`) — null. An object is refused.
pub(super) struct Content<const NULLABLE: bool>;

#[derive(Deserialize)]
pub(super) struct Part {
    #[serde(rename = "type")]
    pub(super) _type: Name,
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
pub(super) struct Input;

#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum InputItem {
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

//! The request bodies as validation sees them: only the fields it checks are named; serde skips
//! the rest without typing them.

use super::*;

#[derive(Deserialize)]
pub(super) struct ChatBody<'a> {
    #[serde(borrow)]
    pub(super) model: Model<'a>,
    #[serde(borrow, default)]
    pub(super) models: ModelList<'a>,
    #[serde(borrow, default)]
    pub(super) fallbacks: ModelList<'a>,
    pub(super) messages: List<Obj<ChatMessage>>,
    pub(super) stream: Option<Flag>,
    pub(super) stream_options: Option<Obj<StreamOptionsView>>,
    pub(super) tools: Option<List<Obj<Tool>>>,
    pub(super) max_tokens: Option<Tokens>,
    pub(super) max_completion_tokens: Option<Tokens>,
    #[serde(rename = "n")]
    pub(super) _n: Option<Count<MAX_CHOICES>>,
    #[serde(rename = "temperature")]
    pub(super) _temperature: Option<Num>,
    #[serde(rename = "top_p")]
    pub(super) _top_p: Option<Num>,
    #[serde(rename = "presence_penalty")]
    pub(super) _presence_penalty: Option<Num>,
    #[serde(rename = "frequency_penalty")]
    pub(super) _frequency_penalty: Option<Num>,
    #[serde(rename = "seed")]
    pub(super) _seed: Option<Int>,
    #[serde(rename = "logprobs")]
    pub(super) _logprobs: Option<Flag>,
    #[serde(rename = "top_logprobs")]
    pub(super) _top_logprobs: Option<Tokens>,
    #[serde(rename = "parallel_tool_calls")]
    pub(super) _parallel_tool_calls: Option<Flag>,
    #[serde(rename = "user")]
    pub(super) _user: Option<Name>,
}

#[derive(Deserialize)]
pub(super) struct StreamOptionsView {
    pub(super) include_usage: Option<Flag>,
}

#[derive(Deserialize)]
pub(super) struct ChatMessage {
    #[serde(rename = "role")]
    pub(super) _role: OneOf<ChatRoles>,
    #[serde(rename = "content")]
    pub(super) _content: Option<Content<true>>,
    #[serde(rename = "name")]
    pub(super) _name: Option<Name>,
    #[serde(rename = "tool_call_id")]
    pub(super) _tool_call_id: Option<Name>,
    #[serde(rename = "tool_calls")]
    pub(super) _tool_calls: Option<List<Obj<ToolCall>>>,
}

#[derive(Deserialize)]
pub(super) struct ToolCall {
    #[serde(rename = "id")]
    pub(super) _id: Option<Name>,
    #[serde(rename = "type")]
    pub(super) _type: Option<Name>,
    #[serde(rename = "function")]
    pub(super) _function: Option<Obj<FunctionName>>,
}

#[derive(Deserialize)]
pub(super) struct FunctionName {
    #[serde(rename = "name")]
    pub(super) _name: Option<Name>,
}

/// A chat or Responses tool: an object with a `type`.
#[derive(Deserialize)]
pub(super) struct Tool {
    #[serde(rename = "type")]
    pub(super) _type: Name,
    #[serde(rename = "name")]
    pub(super) _name: Option<Name>,
    #[serde(rename = "function")]
    pub(super) _function: Option<Obj<FunctionName>>,
}

#[derive(Deserialize)]
pub(super) struct MessagesBody<'a> {
    #[serde(borrow)]
    pub(super) model: Model<'a>,
    #[serde(borrow, default)]
    pub(super) models: ModelList<'a>,
    #[serde(borrow, default)]
    pub(super) fallbacks: ModelList<'a>,
    pub(super) messages: List<Obj<AnthropicMessage>>,
    pub(super) stream: Option<Flag>,
    pub(super) tools: Option<List<Obj<AnthropicTool>>>,
    #[serde(rename = "system")]
    pub(super) _system: Option<Content<false>>,
    pub(super) max_tokens: Option<Tokens>,
    #[serde(rename = "temperature")]
    pub(super) _temperature: Option<Num>,
    #[serde(rename = "top_p")]
    pub(super) _top_p: Option<Num>,
    #[serde(rename = "top_k")]
    pub(super) _top_k: Option<Tokens>,
    #[serde(rename = "stop_sequences")]
    pub(super) _stop_sequences: Option<List<Text>>,
    #[serde(rename = "metadata")]
    pub(super) _metadata: Option<Obj<AnthropicMetadata>>,
}

#[derive(Deserialize)]
pub(super) struct AnthropicMessage {
    #[serde(rename = "role")]
    pub(super) _role: OneOf<AnthropicRoles>,
    #[serde(rename = "content")]
    pub(super) _content: Content<false>,
}

/// An Anthropic tool: custom tools have a `name` and no `type`, server tools both.
#[derive(Deserialize)]
pub(super) struct AnthropicTool {
    #[serde(rename = "name")]
    pub(super) _name: Option<Name>,
    #[serde(rename = "type")]
    pub(super) _type: Option<Name>,
}

#[derive(Deserialize)]
pub(super) struct AnthropicMetadata {
    #[serde(rename = "user_id")]
    pub(super) _user_id: Option<Name>,
}

#[derive(Deserialize)]
pub(super) struct ResponsesBody<'a> {
    #[serde(borrow)]
    pub(super) model: Model<'a>,
    #[serde(borrow, default)]
    pub(super) models: ModelList<'a>,
    #[serde(borrow, default)]
    pub(super) fallbacks: ModelList<'a>,
    #[serde(rename = "input")]
    pub(super) _input: ResponsesInput,
    pub(super) tools: Option<List<Obj<ResponsesTool>>>,
    #[serde(rename = "instructions")]
    pub(super) _instructions: Option<Text>,
    #[serde(rename = "stream")]
    pub(super) _stream: Option<Flag>,
    #[serde(rename = "store")]
    pub(super) _store: Option<Flag>,
    #[serde(rename = "max_output_tokens")]
    pub(super) _max_output_tokens: Option<Tokens>,
    #[serde(rename = "temperature")]
    pub(super) _temperature: Option<Num>,
    #[serde(rename = "top_p")]
    pub(super) _top_p: Option<Num>,
    #[serde(rename = "parallel_tool_calls")]
    pub(super) _parallel_tool_calls: Option<Flag>,
    #[serde(rename = "user")]
    pub(super) _user: Option<Name>,
    #[serde(rename = "safety_identifier")]
    pub(super) _safety_identifier: Option<Name>,
    #[serde(rename = "previous_response_id")]
    pub(super) _previous_response_id: Option<Name>,
    // A cache key is the client's own string (Codex sends its conversation id), not a name.
    #[serde(rename = "prompt_cache_key")]
    pub(super) _prompt_cache_key: Option<Text>,
    #[serde(rename = "include")]
    pub(super) _include: Option<List<Text>>,
    #[serde(rename = "reasoning")]
    pub(super) _reasoning: Option<Obj<ReasoningSettings>>,
}

/// A Responses tool: function and hosted tools have a `type`; a `namespace` tool also holds a
/// `tools` array of its own.
#[derive(Deserialize)]
pub(super) struct ResponsesTool {
    #[serde(rename = "type")]
    pub(super) _type: Name,
    #[serde(rename = "name")]
    pub(super) _name: Option<Name>,
    #[serde(rename = "tools")]
    pub(super) _tools: Option<List<Obj<Tool>>>,
}

/// The Responses `reasoning` object.
#[derive(Deserialize)]
pub(super) struct ReasoningSettings {
    #[serde(rename = "effort")]
    pub(super) _effort: Option<Name>,
    #[serde(rename = "summary")]
    pub(super) _summary: Option<Name>,
}

/// A Responses `input`: a string or an array of item objects.
pub(super) struct ResponsesInput;

/// An input item: a message, a function or custom tool call or its output, a reasoning item, an
/// `additional_tools` item (tools offered from that point on)... `output` is not checked: its shape
/// depends on the item type (an object for a computer call's output).
#[derive(Deserialize)]
pub(super) struct ResponsesItem {
    #[serde(rename = "type")]
    pub(super) _type: Option<Name>,
    #[serde(rename = "role")]
    pub(super) _role: Option<OneOf<ResponsesRoles>>,
    #[serde(rename = "content")]
    pub(super) _content: Option<Content<true>>,
    #[serde(rename = "id")]
    pub(super) _id: Option<Name>,
    #[serde(rename = "call_id")]
    pub(super) _call_id: Option<Name>,
    #[serde(rename = "name")]
    pub(super) _name: Option<Name>,
    #[serde(rename = "namespace")]
    pub(super) _namespace: Option<Name>,
    #[serde(rename = "arguments")]
    pub(super) _arguments: Option<Text>,
    /// A custom tool call's raw input.
    #[serde(rename = "input")]
    pub(super) _input: Option<Text>,
    #[serde(rename = "tools")]
    pub(super) _tools: Option<List<Obj<ResponsesTool>>>,
    #[serde(rename = "summary")]
    pub(super) _summary: Option<List<Obj<Part>>>,
    #[serde(rename = "encrypted_content")]
    pub(super) _encrypted_content: Option<Text>,
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
pub(super) struct CompletionsBody<'a> {
    #[serde(borrow)]
    pub(super) model: Model<'a>,
    #[serde(borrow, default)]
    pub(super) models: ModelList<'a>,
    #[serde(borrow, default)]
    pub(super) fallbacks: ModelList<'a>,
    #[serde(rename = "prompt")]
    pub(super) _prompt: Input,
    #[serde(rename = "suffix")]
    pub(super) _suffix: Option<Text>,
    #[serde(rename = "stream")]
    pub(super) _stream: Option<Flag>,
    #[serde(rename = "echo")]
    pub(super) _echo: Option<Flag>,
    #[serde(rename = "max_tokens")]
    pub(super) _max_tokens: Option<Tokens>,
    #[serde(rename = "n")]
    pub(super) _n: Option<Count<MAX_CHOICES>>,
    #[serde(rename = "best_of")]
    pub(super) _best_of: Option<Count<MAX_CHOICES>>,
    #[serde(rename = "logprobs")]
    pub(super) _logprobs: Option<Count<5>>,
    #[serde(rename = "temperature")]
    pub(super) _temperature: Option<Num>,
    #[serde(rename = "top_p")]
    pub(super) _top_p: Option<Num>,
    #[serde(rename = "presence_penalty")]
    pub(super) _presence_penalty: Option<Num>,
    #[serde(rename = "frequency_penalty")]
    pub(super) _frequency_penalty: Option<Num>,
    #[serde(rename = "seed")]
    pub(super) _seed: Option<Int>,
    #[serde(rename = "user")]
    pub(super) _user: Option<Name>,
}

#[derive(Deserialize)]
pub(super) struct EmbeddingsBody<'a> {
    #[serde(borrow)]
    pub(super) model: Model<'a>,
    #[serde(borrow, default)]
    pub(super) models: ModelList<'a>,
    #[serde(borrow, default)]
    pub(super) fallbacks: ModelList<'a>,
    #[serde(rename = "input")]
    pub(super) _input: Input,
    #[serde(rename = "dimensions")]
    pub(super) _dimensions: Option<Tokens>,
    #[serde(rename = "encoding_format")]
    pub(super) _encoding_format: Option<OneOf<EncodingFormats>>,
    #[serde(rename = "user")]
    pub(super) _user: Option<Name>,
}

//! Whether an upstream's refusal says the prompt does not fit the model's context window, from
//! the fields of its error body: what each provider and runtime actually answers, as data.
//!
//! A refusal that matches is a request a model with a larger window could still serve, so a
//! named route's `on_context_length_exceeded` may take it; any other refusal is the client's
//! to fix and goes back as it is.

/// Error codes (`error.code`) that mean exactly this: OpenAI's, also used by Azure OpenAI, Groq
/// and other OpenAI-compatible APIs.
const CODES: &[&str] = &["context_length_exceeded"];

/// Error types (`error.type`) that mean exactly this: llama.cpp's server.
const TYPES: &[&str] = &["exceed_context_size_error"];

/// Phrases of the error message, lowercase; each is specific to a context-window refusal.
const PHRASES: &[&str] = &[
    // OpenAI ("This model's maximum context length is 8192 tokens. However, your messages resulted
    // in 9000 tokens"), vLLM ("... However, you requested 5000 tokens (...)", "'max_tokens' is too
    // large: 8000. This model's maximum context length is 4096 tokens and your request has 2778
    // input tokens"), DeepSeek, Mistral ("Prompt contains 40000 tokens ..., too large for model
    // with 32768 maximum context length"), OpenRouter ("This endpoint's maximum context length").
    "maximum context length",
    // Anthropic: "prompt is too long: 208310 tokens > 200000 maximum".
    "prompt is too long",
    // Anthropic, when the prompt fits but `max_tokens` does not: "input length and `max_tokens`
    // exceed context limit: 197626 + 8192 > 200000".
    "exceed context limit",
    // OpenAI's Responses API: "Your input exceeds the context window of this model."
    "exceeds the context window",
    // Gemini: "The input token count (1200293) exceeds the maximum number of tokens allowed
    // (1048576)."
    "exceeds the maximum number of tokens allowed",
    // vLLM: "The decoder prompt (length 17772) is longer than the maximum model length of 16384.",
    // "Prompt length of 5016 is longer than the maximum model length of 4096."
    "longer than the maximum model length",
    // vLLM: "Input prompt (5000 tokens) is longer than the model's context length (4096 tokens)."
    "longer than the model's context length",
    // llama.cpp: "the request exceeds the available context size, try increasing it".
    "exceeds the available context size",
    // xAI: "This model's maximum prompt length is 131072 but the request contains 143155 tokens."
    "maximum prompt length",
    // Hugging Face TGI (a 422): "Input validation error: `inputs` tokens + `max_new_tokens` must be
    // <= 4096. Given: 4000 `inputs` tokens and 500 `max_new_tokens`".
    "`inputs` tokens + `max_new_tokens` must be",
    // Amazon Bedrock: "Input is too long for requested model."
    "input is too long",
];

/// Whether an error with this `code`, `error_type` and `message` says the prompt (with the
/// requested output) is longer than the model's context window.
pub fn context_overflow(code: Option<&str>, error_type: Option<&str>, message: &str) -> bool {
    if code.is_some_and(|c| CODES.contains(&c)) || error_type.is_some_and(|t| TYPES.contains(&t)) {
        return true;
    }
    // An error message is short (the adapters read at most a few KiB of an error body).
    let message = message.to_lowercase();
    PHRASES.iter().any(|p| message.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn said(message: &str) -> bool {
        context_overflow(None, None, message)
    }

    #[test]
    fn each_providers_own_words_match() {
        for message in [
            "This model's maximum context length is 8192 tokens. However, your messages resulted in 9000 tokens. Please reduce the length of the messages.",
            "This model's maximum context length is 16384 tokens. However, you requested 122946 tokens (112946 in the messages, 10000 in the completion). Please reduce the length of the messages or completion.",
            "'max_tokens' or 'max_completion_tokens' is too large: 8000. This model's maximum context length is 4096 tokens and your request has 2778 input tokens (8000 > 4096 - 2778). None",
            "The decoder prompt (length 17772) is longer than the maximum model length of 16384. Make sure that `max_model_len` is no smaller than the number of text tokens.",
            "Input prompt (5000 tokens) is longer than the model's context length (4096 tokens).",
            "prompt is too long: 208310 tokens > 200000 maximum",
            "input length and `max_tokens` exceed context limit: 197626 + 8192 > 200000, decrease input length or `max_tokens` and try again",
            "The input token count (1200293) exceeds the maximum number of tokens allowed (1048576).",
            "Prompt contains 40000 tokens and 0 draft tokens, too large for model with 32768 maximum context length",
            "Your input exceeds the context window of this model. Please adjust your input and try again.",
            "the request exceeds the available context size, try increasing it",
            "This model's maximum prompt length is 131072 but the request contains 143155 tokens.",
            "Input validation error: `inputs` tokens + `max_new_tokens` must be <= 4096. Given: 4000 `inputs` tokens and 500 `max_new_tokens`",
            "Input is too long for requested model.",
        ] {
            assert!(said(message), "{message}");
        }
    }

    #[test]
    fn the_code_or_type_alone_is_enough() {
        assert!(context_overflow(
            Some("context_length_exceeded"),
            None,
            "Please reduce the length."
        ));
        assert!(context_overflow(None, Some("exceed_context_size_error"), ""));
    }

    #[test]
    fn other_refusals_do_not_match() {
        for message in [
            "Invalid value for 'temperature': must be between 0 and 2.",
            "max_tokens is too large: 100000. This model supports at most 16384 completion tokens, whereas you provided 100000.",
            "messages: roles must alternate between \"user\" and \"assistant\"",
            "Request too large for gpt-4o on tokens per min (TPM): Limit 30000, Requested 50000.",
            "The model `gpt-5` does not exist or you do not have access to it.",
            "",
        ] {
            assert!(!said(message), "{message}");
        }
        assert!(!context_overflow(
            Some("invalid_value"),
            Some("invalid_request_error"),
            "bad"
        ));
    }
}

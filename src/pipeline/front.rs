//! The client-facing APIs served by the chat path, and the bridges between them and chat
//! completions.
//!
//! `/v1/chat/completions`, `/v1/messages` and `/v1/responses` reach the orchestrator as the client
//! sent them: the adapters translate Anthropic-dialect calls, and serve Responses calls natively or
//! bridged to chat per provider. `/v1/completions` is translated into a chat request here, before
//! routing, and its answer back after: the JSON reply as a whole, the stream event by event behind
//! the relay (which, like history, sees chat chunks).

use bytes::Bytes;

use super::BodyStream;
use crate::config::LimitSettings;
use crate::dialects::translate::{self, completions};
use crate::dialects::validate::{self, Caps};
use crate::dialects::{BodyError, Fallbacks, Peek};
use crate::domain::Dialect;
use crate::error::ApiError;

/// The API an inference request came in on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Front {
    /// `POST /v1/chat/completions`.
    Chat,
    /// `POST /v1/messages` (Anthropic's Messages API).
    Messages,
    /// `POST /v1/responses` (OpenAI's Responses API).
    Responses,
    /// `POST /v1/completions` (OpenAI's legacy completions).
    Completions,
}

impl Front {
    /// The route, as history rows name it.
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::Chat => "/v1/chat/completions",
            Self::Messages => "/v1/messages",
            Self::Responses => "/v1/responses",
            Self::Completions => "/v1/completions",
        }
    }

    /// The `task` label of `ai_request_count`.
    pub fn metric_task(self) -> &'static str {
        match self {
            Self::Chat => "chat",
            Self::Messages => "messages",
            Self::Responses => "responses",
            Self::Completions => "completions",
        }
    }

    /// Checks the body as the client sent it, before bridging or routing (`domain::validate`):
    /// a refusal names the parameter in the front's own terms (`input[2].role` on Responses).
    /// Chat, Messages and Responses bodies are peeked here; legacy completions are peeked after
    /// bridging, so only their fallback models are read here.
    pub(super) fn validate(self, body: &[u8], caps: Caps) -> Result<Checked, BodyError> {
        match self {
            Self::Chat => validate::chat(body, caps).map(Checked::Peeked),
            Self::Messages => validate::messages(body, caps).map(Checked::Peeked),
            Self::Responses => {
                let fallbacks = validate::responses(body, caps)?;
                let peek = Peek::responses(body)?;
                Ok(Checked::Peeked(Peek { fallbacks, ..peek }))
            }
            Self::Completions => validate::completions(body, caps).map(Checked::Bridged),
        }
    }

    /// The dialect the orchestrator and adapters see.
    pub fn dialect(self) -> Dialect {
        match self {
            Self::Messages => Dialect::Anthropic,
            Self::Responses => Dialect::Responses,
            Self::Chat | Self::Completions => Dialect::OpenAi,
        }
    }
}

/// What validation read from a body.
pub(super) enum Checked {
    /// The routing view, fallback models included.
    Peeked(Peek),
    /// A body peeked only once bridged (legacy completions): its fallback models.
    Bridged(Fallbacks),
}

impl Checked {
    /// The routing view; a bridged body (`body`, after `Bridge::inbound`) is peeked now.
    pub fn peek(self, body: &[u8]) -> Result<Peek, BodyError> {
        match self {
            Self::Peeked(peek) => Ok(peek),
            // The bridge copies only the fields chat knows: the lists are already gone.
            Self::Bridged(Fallbacks { models, .. }) => Peek::chat(body).map(|peek| Peek {
                fallbacks: Fallbacks { present: false, models },
                ..peek
            }),
        }
    }
}

/// The validation caps `limits.*` sets.
pub(super) fn caps(limits: &LimitSettings) -> Caps {
    Caps {
        max_model_bytes: limits.max_model_bytes,
        max_name_bytes: limits.max_name_bytes,
        max_tools: limits.max_tools,
    }
}

/// How a request's answer goes back to its front.
pub(super) enum Bridge {
    /// Already in the client's dialect.
    Direct,
    /// A chat answer to turn into a text completion or its chunks.
    Completions,
}

impl Bridge {
    /// The body the orchestrator gets, and the way back.
    pub fn inbound(front: Front, body: Bytes) -> Result<(Bytes, Self), ApiError> {
        Ok(match front {
            Front::Chat | Front::Messages | Front::Responses => (body, Self::Direct),
            Front::Completions => (completions::request(&body)?, Self::Completions),
        })
    }

    /// A complete answer in the front's shape, and its content type.
    pub fn reply(&self, body: Bytes, content_type: String) -> Result<(Bytes, String), ApiError> {
        let translated = match self {
            Self::Direct => return Ok((body, content_type)),
            Self::Completions => completions::reply(&body),
        };
        translated
            .map(|b| (b, "application/json".to_owned()))
            .ok_or_else(|| ApiError::internal(std::io::Error::other("a validated chat completion did not translate")))
    }

    /// The relayed chat stream in the front's shape, event by event.
    pub fn stream(self, body: BodyStream) -> BodyStream {
        match self {
            Self::Direct => body,
            Self::Completions => Box::pin(translate::translate(body, completions::ToCompletionChunks)),
        }
    }
}

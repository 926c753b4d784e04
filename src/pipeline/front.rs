//! The client-facing APIs served by the chat path, and the bridges between them and chat
//! completions.
//!
//! `/v1/chat/completions` and `/v1/messages` reach the orchestrator as the client sent them (the
//! adapters translate Anthropic-dialect calls). `/v1/responses` and `/v1/completions` are
//! translated into a chat request here, before routing, and their answers back after: the JSON
//! reply as a whole, the stream event by event behind the relay (which, like history, sees chat
//! chunks).

use bytes::Bytes;

use super::BodyStream;
use crate::config::LimitSettings;
use crate::dialects::translate::{self, completions, responses};
use crate::dialects::validate::{self, Caps};
use crate::dialects::{BodyError, BridgeOptions, HostedTools, Peek};
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
    /// Chat and Messages bodies are peeked in the same pass; bridged fronts are peeked after
    /// bridging, so `None`.
    pub fn validate(self, body: &[u8], caps: Caps) -> Result<Option<Peek>, BodyError> {
        match self {
            Self::Chat => validate::chat(body, caps).map(Some),
            Self::Messages => validate::messages(body, caps).map(Some),
            Self::Responses => validate::responses(body, caps).map(|()| None),
            Self::Completions => validate::completions(body, caps).map(|()| None),
        }
    }

    /// The dialect the orchestrator and adapters see.
    pub fn dialect(self) -> Dialect {
        match self {
            Self::Messages => Dialect::Anthropic,
            _ => Dialect::OpenAi,
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
    /// A chat answer to turn into a Responses object or events.
    Responses(responses::Echo),
    /// A chat answer to turn into a text completion or its chunks.
    Completions,
}

impl Bridge {
    /// The body the orchestrator gets, and the way back.
    pub fn inbound(front: Front, body: Bytes) -> Result<(Bytes, Self), ApiError> {
        Ok(match front {
            Front::Chat | Front::Messages => (body, Self::Direct),
            Front::Responses => {
                let options = BridgeOptions {
                    hosted_tools: HostedTools::Drop,
                };
                let (chat, echo) = responses::request(&body, &options)?;
                (chat, Self::Responses(echo))
            }
            Front::Completions => (completions::request(&body)?, Self::Completions),
        })
    }

    /// Whether the client must see the stream's usage chunk even when it did not ask for it
    /// (the Responses events end with usage, built from that chunk).
    pub fn needs_usage_chunk(&self) -> bool {
        matches!(self, Self::Responses(_))
    }

    /// A complete answer in the front's shape, and its content type.
    pub fn reply(&self, body: Bytes, content_type: String) -> Result<(Bytes, String), ApiError> {
        let translated = match self {
            Self::Direct => return Ok((body, content_type)),
            Self::Responses(echo) => responses::reply(&body, echo),
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
            Self::Responses(echo) => Box::pin(translate::translate(body, responses::ToResponseEvents::new(echo))),
            Self::Completions => Box::pin(translate::translate(body, completions::ToCompletionChunks)),
        }
    }
}

//! Anthropic's Messages API (`kind: anthropic`): `POST {base_url}/v1/messages`, key in
//! `x-api-key`, `anthropic-version` sent (2023-06-01 unless the provider's headers say otherwise).
//!
//! A client speaking Anthropic (`/v1/messages`) is passed through: its bytes go up untouched
//! (model spliced by routing only) and the upstream's bytes, JSON or events, come back as they are.
//! An OpenAI-dialect client is translated (`translate::anthropic`): its chat request becomes a
//! Messages request, the Message a chat completion, each stream event its chunk at once.
//! Reference: <https://docs.anthropic.com/en/api/messages>.

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

use super::http;
use crate::config::ProviderConfig;
use crate::dialects::translate::{self, anthropic};
use crate::dialects::wire;
use crate::domain::Dialect;
use crate::providers::{ByteStream, Call, Operation, ProviderAdapter, Reply, UpstreamError, UpstreamErrorKind};

/// Sent when the provider's config sets no `anthropic-version` header.
const VERSION: [(&str, &str); 1] = [("anthropic-version", "2023-06-01")];

/// The Anthropic Messages adapter for one provider: its endpoint and headers are prepared when
/// it is built.
#[derive(Debug)]
pub struct Anthropic {
    transport: http::Transport,
    /// `{base_url}/v1/messages`.
    messages: http::Endpoint,
}

impl Anthropic {
    /// The adapter serving `provider`.
    pub fn new(provider: &ProviderConfig) -> Self {
        let transport = http::Transport::new(provider, &VERSION);
        let messages = transport.endpoint(&Self::url(provider, "/messages"));
        Self { transport, messages }
    }

    fn body(call: &Call<'_>) -> Result<Bytes, UpstreamError> {
        match call.dialect {
            Dialect::Anthropic => Ok(translate::thinking::keep_signed(call.body)),
            Dialect::OpenAi | Dialect::Responses => {
                anthropic::request(call.body).map_err(|e| http::untranslatable(&call.provider.id, e))
            }
        }
    }

    fn url(provider: &ProviderConfig, path: &str) -> String {
        format!("{}/v1{path}", provider.base_url)
    }
}

#[async_trait::async_trait]
impl ProviderAdapter for Anthropic {
    fn protocol(&self) -> &'static str {
        "anthropic"
    }

    fn supports(&self, op: Operation) -> bool {
        op != Operation::Embeddings
    }

    async fn send(&self, call: &Call<'_>, op: Operation) -> Result<Reply, UpstreamError> {
        let id = &call.provider.id;
        if op == Operation::Embeddings {
            return Err(UpstreamError::new(id, UpstreamErrorKind::Unsupported));
        }
        let body = Self::body(call)?;
        let resp = self.transport.post(call, &self.messages, body, http::JSON).await?;
        let status = resp.status().as_u16();
        let body = http::body(id, resp, call.max_response_bytes).await?;
        match call.dialect {
            Dialect::Anthropic => {
                let inspected = wire::anthropic_message(&body).ok_or_else(|| http::malformed(id))?;
                Ok(Reply {
                    status,
                    content_type: http::JSON.into(),
                    body,
                    usage: inspected.usage,
                    text: inspected.text,
                })
            }
            Dialect::OpenAi | Dialect::Responses => {
                let (completion, usage, text) = anthropic::reply(&body).ok_or_else(|| http::malformed(id))?;
                Ok(Reply {
                    status,
                    content_type: http::JSON.into(),
                    body: completion,
                    usage: Some(usage),
                    text,
                })
            }
        }
    }

    async fn open_stream(&self, call: &Call<'_>) -> Result<ByteStream, UpstreamError> {
        let body = Self::body(call)?;
        let resp = self
            .transport
            .post(call, &self.messages, body, http::EVENT_STREAM)
            .await?;
        let stream = http::byte_stream(&call.provider.id, resp);
        Ok(match call.dialect {
            Dialect::Anthropic => stream,
            Dialect::OpenAi | Dialect::Responses => {
                let include_usage = super::wants_usage(call.body);
                Box::pin(translate::translate(
                    stream,
                    anthropic::ToChatChunks::new(include_usage),
                ))
            }
        })
    }

    async fn list_models(
        &self,
        provider: &ProviderConfig,
        http_client: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Vec<String>, UpstreamError> {
        let url = Self::url(provider, "/models");
        let body = http::get(provider, http_client, &url, timeout, &VERSION).await?;
        #[derive(Deserialize)]
        struct List {
            data: Vec<Card>,
        }
        #[derive(Deserialize)]
        struct Card {
            id: String,
        }
        let list: List = serde_json::from_slice(&body).map_err(|e| http::malformed(&provider.id).with_source(e))?;
        Ok(list.data.into_iter().map(|c| c.id).collect())
    }
}

//! The OpenAI wire protocol, spoken by OpenAI, Mistral, NVIDIA NIM, Groq, DeepSeek, Together,
//! OpenRouter, the Hugging Face router and the local runtimes (vLLM, Ollama, llama.cpp, TGI,
//! SGLang, LocalAI), and — on deployment URLs — by Azure OpenAI (`azure`).
//!
//! OpenAI-dialect bodies are forwarded as bytes; only error bodies and the shape of a successful
//! reply are read. Anthropic-dialect calls (`/v1/messages`) are translated to chat completions and
//! their answers back (`translate::messages`). Responses calls go to the upstream's own
//! `/responses` as they are, or through the chat bridge, as the provider's `responses:` mode and
//! what `auto` learnt say (`openai_responses`).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;

use super::openai_responses::{Native, ResponsesProbe};
use super::{azure, bridge_send, bridge_stream, http};
use crate::config::ProviderConfig;
use crate::dialects::translate::{self, messages};
use crate::dialects::wire;
use crate::domain::Dialect;
use crate::providers::{
    ByteStream, Call, Operation, ProviderAdapter, Reply, ResponsesStatus, Served, UpstreamError, UpstreamErrorKind,
};

const CHAT: &str = "/chat/completions";
const EMBEDDINGS: &str = "/embeddings";

/// Where an OpenAI-protocol upstream takes its calls.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Flavor {
    /// `{base_url}/chat/completions` (`kind: openai`).
    #[default]
    Plain,
    /// `{base_url}/openai/deployments/{model}/chat/completions` (`kind: azure`).
    Azure,
}

/// The OpenAI-compatible adapter (`kind: openai`, and `kind: azure` with `Flavor::Azure`) for one
/// provider: its endpoints and headers are prepared when it is built.
#[derive(Debug)]
pub struct OpenAiCompat {
    flavor: Flavor,
    transport: http::Transport,
    /// `{base_url}/chat/completions` (Plain only: Azure's URL names the deployment per call).
    chat: http::Endpoint,
    /// `{base_url}/embeddings` (Plain only).
    embeddings: http::Endpoint,
    /// `/v1/responses`: the mode, what `auto` learnt, the upstream's Responses URL.
    native: Native,
}

impl OpenAiCompat {
    /// The adapter for `flavor`, serving `provider`.
    pub fn new(flavor: Flavor, provider: &ProviderConfig) -> Self {
        Self::with_probe(flavor, provider, None)
    }

    /// The adapter for `flavor`, serving `provider`, keeping what `auto` learnt before (`probe`,
    /// from the adapter this one replaces).
    pub fn with_probe(flavor: Flavor, provider: &ProviderConfig, probe: Option<Arc<ResponsesProbe>>) -> Self {
        let transport = http::Transport::new(provider, &[]);
        let chat = transport.endpoint(&format!("{}/chat/completions", provider.base_url));
        let embeddings = transport.endpoint(&format!("{}/embeddings", provider.base_url));
        Self {
            flavor,
            transport,
            chat,
            embeddings,
            native: Native::new(provider, flavor == Flavor::Azure, probe),
        }
    }

    /// POSTs to `path` (`/chat/completions` or `/embeddings`) with `accept`.
    async fn post(
        &self,
        call: &Call<'_>,
        path: &str,
        body: Bytes,
        accept: &'static str,
    ) -> Result<reqwest::Response, UpstreamError> {
        match self.flavor {
            Flavor::Plain => {
                let url = if path == EMBEDDINGS {
                    &self.embeddings
                } else {
                    &self.chat
                };
                self.transport.post(call, url, body, accept).await
            }
            Flavor::Azure => {
                let url = azure::url(call.provider, &body, path)?;
                let url = Ok(self.transport.url(&call.provider.id, &url)?);
                self.transport.post(call, &url, body, accept).await
            }
        }
    }

    /// The chat body to send: the client's bytes, or their translation.
    fn chat_body(call: &Call<'_>) -> Result<Bytes, UpstreamError> {
        match call.dialect {
            Dialect::OpenAi | Dialect::Responses => Ok(call.body.clone()),
            Dialect::Anthropic => messages::request(call.body).map_err(|e| http::untranslatable(&call.provider.id, e)),
        }
    }
}

#[async_trait::async_trait]
impl ProviderAdapter for OpenAiCompat {
    fn protocol(&self) -> &'static str {
        match self.flavor {
            Flavor::Plain => "openai",
            Flavor::Azure => "azure",
        }
    }

    async fn send(&self, call: &Call<'_>, op: Operation) -> Result<Reply, UpstreamError> {
        let id = &call.provider.id;
        let (path, body) = match op {
            Operation::Chat => (CHAT, Self::chat_body(call)?),
            Operation::Embeddings => (EMBEDDINGS, call.body.clone()),
            Operation::CountTokens => return Err(UpstreamError::new(id, UpstreamErrorKind::Unsupported)),
        };
        let resp = self.post(call, path, body, http::JSON).await?;
        let status = resp.status().as_u16();
        let content_type = http::header_text(resp.headers(), CONTENT_TYPE).unwrap_or_else(|| http::JSON.into());
        let body = http::body(id, resp, call.max_response_bytes).await?;
        // A 2xx must be the object the protocol promises; anything else is retried, never passed
        // to the client as a success.
        let inspected = match op {
            Operation::Chat => wire::completion(&body),
            Operation::Embeddings => wire::embeddings(&body),
            Operation::CountTokens => None,
        };
        let Some(inspected) = inspected else {
            return Err(http::malformed(id));
        };
        if op == Operation::Chat && call.dialect == Dialect::Anthropic {
            let (message, usage, text) = messages::reply(&body).ok_or_else(|| http::malformed(id))?;
            return Ok(Reply {
                status,
                content_type: http::JSON.into(),
                body: message,
                usage,
                text,
            });
        }
        Ok(Reply {
            status,
            content_type,
            body,
            usage: inspected.usage,
            text: inspected.text,
        })
    }

    async fn open_stream(&self, call: &Call<'_>) -> Result<ByteStream, UpstreamError> {
        let body = Self::chat_body(call)?;
        let resp = self.post(call, CHAT, body, http::EVENT_STREAM).await?;
        let stream = http::byte_stream(&call.provider.id, resp);
        Ok(match call.dialect {
            Dialect::OpenAi | Dialect::Responses => stream,
            Dialect::Anthropic => Box::pin(translate::translate(stream, messages::ToMessageEvents::new())),
        })
    }

    async fn send_responses(&self, call: &Call<'_>) -> Result<(Reply, Served), UpstreamError> {
        if !self.native.tries() {
            return bridge_send(self, call).await;
        }
        match self.native.send(&self.transport, call).await {
            Ok(reply) => Ok((reply, Served::Native)),
            // The same attempt goes on through the bridge: the upstream is not at fault.
            Err(e) if self.native.learns(&call.provider.id, &e) => bridge_send(self, call).await,
            Err(e) => Err(e),
        }
    }

    async fn open_responses_stream(&self, call: &Call<'_>) -> Result<(ByteStream, Served), UpstreamError> {
        if !self.native.tries() {
            return bridge_stream(self, call).await;
        }
        match self.native.open_stream(&self.transport, call).await {
            Ok(stream) => Ok((stream, Served::Native)),
            Err(e) if self.native.learns(&call.provider.id, &e) => bridge_stream(self, call).await,
            Err(e) => Err(e),
        }
    }

    fn responses_status(&self) -> Option<ResponsesStatus> {
        Some(self.native.status())
    }

    fn responses_probe(&self) -> Option<Arc<ResponsesProbe>> {
        Some(self.native.probe())
    }

    async fn list_models(
        &self,
        provider: &ProviderConfig,
        http_client: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Vec<String>, UpstreamError> {
        let url = match self.flavor {
            Flavor::Plain => format!("{}/models", provider.base_url),
            Flavor::Azure => format!("{}/openai/models", provider.base_url),
        };
        let body = http::get(provider, http_client, &url, timeout, &[]).await?;
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

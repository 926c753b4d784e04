//! Google's Gemini API (`kind: gemini`): `{base_url}/models/{model}:generateContent`,
//! `:streamGenerateContent?alt=sse`, `:embedContent` and `:batchEmbedContents`, key in
//! `x-goog-api-key`.
//!
//! Every call is translated (`translate::gemini`): OpenAI chat and embeddings requests become
//! Gemini requests and the answers come back as chat completions, chunks and embeddings lists;
//! an Anthropic-dialect call goes through chat on the way (`translate::messages`). A safety block
//! is answered as a 400 that says so. Reference: <https://ai.google.dev/api/generate-content>.

use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

use super::http;
use crate::config::ProviderConfig;
use crate::dialects::translate::{self, Chain, gemini, messages};
use crate::dialects::wire;
use crate::domain::Dialect;
use crate::providers::UpstreamErrorKind;
use crate::providers::{ByteStream, Call, ErrorDetail, Operation, ProviderAdapter, Reply, UpstreamError};

/// The Gemini adapter for one provider: its headers are prepared when it is built (its URLs name
/// the model, so they are made per call).
#[derive(Debug)]
pub struct Gemini {
    transport: http::Transport,
}

/// `{base_url}/models/{model}:{method}`; a name already qualified (`models/...`,
/// `tunedModels/...`) is used as it is.
fn url(provider: &ProviderConfig, model: &str, method: &str) -> String {
    if model.contains('/') {
        format!("{}/{model}:{method}", provider.base_url)
    } else {
        format!("{}/models/{model}:{method}", provider.base_url)
    }
}

/// The chat body behind a call: the client's, or an Anthropic request translated.
fn chat_body(call: &Call<'_>) -> Result<Bytes, UpstreamError> {
    match call.dialect {
        Dialect::OpenAi | Dialect::Responses => Ok(call.body.clone()),
        Dialect::Anthropic => messages::request(call.body).map_err(|e| http::untranslatable(&call.provider.id, e)),
    }
}

fn blocked(call: &Call<'_>, message: String) -> UpstreamError {
    let mut err = UpstreamError::new(&call.provider.id, UpstreamErrorKind::Status);
    err.status = Some(400);
    err.detail = Some(Box::new(ErrorDetail {
        message,
        error_type: Some("invalid_request_error".into()),
        code: Some("content_filter".into()),
        param: None,
    }));
    err
}

impl Gemini {
    /// The adapter serving `provider`.
    pub fn new(provider: &ProviderConfig) -> Self {
        Self {
            transport: http::Transport::new(provider, &[]),
        }
    }

    /// POSTs `body` to the per-call `url`.
    async fn post(
        &self,
        call: &Call<'_>,
        url: &str,
        body: Bytes,
        accept: &'static str,
    ) -> Result<reqwest::Response, UpstreamError> {
        let url = Ok(self.transport.url(&call.provider.id, url)?);
        self.transport.post(call, &url, body, accept).await
    }

    async fn chat(&self, call: &Call<'_>) -> Result<Reply, UpstreamError> {
        let id = &call.provider.id;
        let chat = chat_body(call)?;
        let model = http::model_of(id, &chat)?;
        let body = gemini::request(&chat).map_err(|e| http::untranslatable(id, e))?;
        let resp = self
            .post(call, &url(call.provider, &model, "generateContent"), body, http::JSON)
            .await?;
        let status = resp.status().as_u16();
        let body = http::body(id, resp, call.max_response_bytes).await?;
        let (completion, usage, text) = gemini::reply(&body, &model).map_err(|e| match e {
            gemini::ReplyError::Blocked(message) => blocked(call, message),
            gemini::ReplyError::Malformed => http::malformed(id),
        })?;
        let body = match call.dialect {
            Dialect::OpenAi | Dialect::Responses => completion,
            Dialect::Anthropic => messages::reply(&completion).ok_or_else(|| http::malformed(id))?.0,
        };
        Ok(Reply {
            status,
            content_type: http::JSON.into(),
            body,
            usage,
            text,
        })
    }

    async fn embeddings(&self, call: &Call<'_>) -> Result<Reply, UpstreamError> {
        let id = &call.provider.id;
        let model = http::model_of(id, call.body)?;
        let (method, body) = gemini::embeddings_request(call.body, &model).map_err(|e| http::untranslatable(id, e))?;
        let name = match method {
            gemini::EmbedMethod::Single => "embedContent",
            gemini::EmbedMethod::Batch => "batchEmbedContents",
        };
        let resp = self
            .post(call, &url(call.provider, &model, name), body, http::JSON)
            .await?;
        let status = resp.status().as_u16();
        let body = http::body(id, resp, call.max_response_bytes).await?;
        let list = gemini::embeddings_reply(&body, method, &model).ok_or_else(|| http::malformed(id))?;
        let usage = wire::embeddings(&list).and_then(|i| i.usage);
        Ok(Reply {
            status,
            content_type: http::JSON.into(),
            body: list,
            usage,
            text: None,
        })
    }
}

#[async_trait::async_trait]
impl ProviderAdapter for Gemini {
    fn protocol(&self) -> &'static str {
        "gemini"
    }

    async fn send(&self, call: &Call<'_>, op: Operation) -> Result<Reply, UpstreamError> {
        match op {
            Operation::Chat => self.chat(call).await,
            Operation::Embeddings => self.embeddings(call).await,
            Operation::CountTokens => Err(UpstreamError::new(&call.provider.id, UpstreamErrorKind::Unsupported)),
        }
    }

    async fn open_stream(&self, call: &Call<'_>) -> Result<ByteStream, UpstreamError> {
        let id = &call.provider.id;
        let chat = chat_body(call)?;
        let model = http::model_of(id, &chat)?;
        let body = gemini::request(&chat).map_err(|e| http::untranslatable(id, e))?;
        let url = format!("{}?alt=sse", url(call.provider, &model, "streamGenerateContent"));
        let resp = self.post(call, &url, body, http::EVENT_STREAM).await?;
        let stream = http::byte_stream(id, resp);
        Ok(match call.dialect {
            Dialect::OpenAi | Dialect::Responses => {
                let include_usage = super::wants_usage(call.body);
                Box::pin(translate::translate(
                    stream,
                    gemini::ToChatChunks::new(&model, include_usage),
                ))
            }
            Dialect::Anthropic => {
                let chain = Chain::new(
                    gemini::ToChatChunks::new(&model, true),
                    messages::ToMessageEvents::new(),
                );
                Box::pin(translate::translate(stream, chain))
            }
        })
    }

    async fn list_models(
        &self,
        provider: &ProviderConfig,
        http_client: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Vec<String>, UpstreamError> {
        let body = http::get(
            provider,
            http_client,
            &format!("{}/models", provider.base_url),
            timeout,
            &[],
        )
        .await?;
        #[derive(Deserialize)]
        struct List {
            models: Vec<Card>,
        }
        #[derive(Deserialize)]
        struct Card {
            name: String,
        }
        let list: List = serde_json::from_slice(&body).map_err(|e| http::malformed(&provider.id).with_source(e))?;
        Ok(list
            .models
            .into_iter()
            .map(|c| c.name.strip_prefix("models/").map(str::to_owned).unwrap_or(c.name))
            .collect())
    }
}

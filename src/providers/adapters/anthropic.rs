//! Anthropic's Messages API (`kind: anthropic`): `POST {base_url}/v1/messages` and
//! `POST {base_url}/v1/messages/count_tokens`, key in `x-api-key`.
//!
//! A client speaking Anthropic (`/v1/messages`) is passed through: its bytes go up untouched
//! (model spliced by routing only) and the upstream's bytes, JSON or events, come back as they are.
//! An OpenAI-dialect client is translated (`translate::anthropic`): its chat request becomes a
//! Messages request, the Message a chat completion, each stream event its chunk at once.
//!
//! Two headers are the client's, whatever dialect it spoke: `anthropic-version` (else the
//! provider's `headers:`, else 2023-06-01) and `anthropic-beta`, the client's betas followed by the
//! provider's own (`anthropic_beta:`, then any `anthropic-beta` in its `headers:`), each once. A beta
//! selects the request shape (Anthropic refuses `context_management` without
//! `context-management-2025-06-27`), so dropping the client's breaks its requests.
//! Reference: <https://docs.anthropic.com/en/api/messages>,
//! <https://docs.anthropic.com/en/api/beta-headers>.

use std::time::Duration;

use bytes::Bytes;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde::Deserialize;

use super::http;
use crate::config::ProviderConfig;
use crate::dialects::translate::{self, anthropic};
use crate::dialects::{tokens, wire};
use crate::domain::{ClientHeaders, Dialect};
use crate::providers::{ByteStream, Call, Operation, ProviderAdapter, Reply, UpstreamError, UpstreamErrorKind};

const VERSION_HEADER: &str = "anthropic-version";
const BETA_HEADER: &str = "anthropic-beta";

/// Sent when neither the client nor the provider's config names an `anthropic-version`.
const VERSION: [(&str, &str); 1] = [(VERSION_HEADER, "2023-06-01")];

/// The Anthropic Messages adapter for one provider: its endpoints and headers are prepared when
/// it is built.
#[derive(Debug)]
pub struct Anthropic {
    transport: http::Transport,
    /// `{base_url}/v1/messages`.
    messages: http::Endpoint,
    /// `{base_url}/v1/messages/count_tokens`.
    count_tokens: http::Endpoint,
    /// The provider's own betas, sent after the client's.
    betas: Vec<String>,
}

impl Anthropic {
    /// The adapter serving `provider`.
    pub fn new(provider: &ProviderConfig) -> Self {
        let transport = http::Transport::new(provider, &VERSION);
        let messages = transport.endpoint(&Self::url(provider, "/messages"));
        let count_tokens = transport.endpoint(&Self::url(provider, "/messages/count_tokens"));
        let configured = provider
            .headers
            .iter()
            .filter(|(name, _)| name.eq_ignore_ascii_case(BETA_HEADER))
            .flat_map(|(_, value)| value.split(','));
        let betas = merge_betas(provider.anthropic_beta.iter().map(String::as_str).chain(configured));
        Self {
            transport,
            messages,
            count_tokens,
            betas,
        }
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

    /// This call's `anthropic-version` and `anthropic-beta`, set over the prepared headers. A
    /// client value that is not a valid header value is left out (actix has already refused most).
    fn protocol_headers(&self, client: &ClientHeaders) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(version) = client
            .anthropic_version
            .as_deref()
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .and_then(|v| HeaderValue::from_str(v).ok())
        {
            headers.insert(HeaderName::from_static(VERSION_HEADER), version);
        }
        let client_betas = client.anthropic_beta.as_deref().unwrap_or_default().split(',');
        let betas = merge_betas(client_betas.chain(self.betas.iter().map(String::as_str)));
        if !betas.is_empty()
            && let Ok(value) = HeaderValue::from_str(&betas.join(","))
        {
            headers.insert(HeaderName::from_static(BETA_HEADER), value);
        }
        headers
    }

    async fn count(&self, call: &Call<'_>) -> Result<Reply, UpstreamError> {
        let id = &call.provider.id;
        // The Token Counting API has no chat counterpart: only an Anthropic body is counted here.
        if call.dialect != Dialect::Anthropic {
            return Err(UpstreamError::new(id, UpstreamErrorKind::Unsupported));
        }
        let headers = self.protocol_headers(call.forward);
        let resp = self
            .transport
            .post_with(call, &self.count_tokens, call.body.clone(), http::JSON, headers)
            .await?;
        let status = resp.status().as_u16();
        let body = http::body(id, resp, call.max_response_bytes).await?;
        tokens::input_tokens(&body).ok_or_else(|| http::malformed(id))?;
        Ok(Reply {
            status,
            content_type: http::JSON.into(),
            body,
            usage: None,
            text: None,
        })
    }
}

/// Beta names in order, trimmed, each once (the first occurrence wins its place).
fn merge_betas<'a>(names: impl Iterator<Item = &'a str>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names.map(str::trim).filter(|n| !n.is_empty()) {
        if !out.iter().any(|seen| seen == name) {
            out.push(name.to_owned());
        }
    }
    out
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
        match op {
            Operation::Embeddings => return Err(UpstreamError::new(id, UpstreamErrorKind::Unsupported)),
            Operation::CountTokens => return self.count(call).await,
            Operation::Chat => {}
        }
        let body = Self::body(call)?;
        let headers = self.protocol_headers(call.forward);
        let resp = self
            .transport
            .post_with(call, &self.messages, body, http::JSON, headers)
            .await?;
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
        let headers = self.protocol_headers(call.forward);
        let resp = self
            .transport
            .post_with(call, &self.messages, body, http::EVENT_STREAM, headers)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn betas_merge_in_order_trimmed_and_once() {
        let merged = merge_betas(" a, b,,a ,c".split(',').chain(["c", "d", "b"]));
        assert_eq!(merged, ["a", "b", "c", "d"]);
        assert!(merge_betas(std::iter::empty()).is_empty());
    }
}

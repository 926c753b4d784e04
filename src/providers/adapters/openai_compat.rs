//! The OpenAI wire protocol, spoken by OpenAI, Mistral, NVIDIA NIM, Groq, DeepSeek, Together,
//! OpenRouter, the Hugging Face router and the local runtimes (vLLM, Ollama, llama.cpp, TGI,
//! SGLang, LocalAI). Bodies are forwarded as bytes; only error bodies and the shape of a
//! successful reply are read.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use secrecy::ExposeSecret;
use serde::Deserialize;

use crate::config::{AuthScheme, ProviderConfig};
use crate::providers::{
    ByteStream, Call, ErrorDetail, Operation, ProviderAdapter, Reply, UpstreamError, UpstreamErrorKind, wire,
};

/// Largest upstream error body we read to extract its message.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The longest `Retry-After` we take from an upstream.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// The OpenAI-compatible adapter (`kind: openai`).
#[derive(Debug, Default)]
pub struct OpenAiCompat;

#[async_trait::async_trait]
impl ProviderAdapter for OpenAiCompat {
    fn protocol(&self) -> &'static str {
        "openai"
    }

    async fn send(&self, call: &Call<'_>, op: Operation) -> Result<Reply, UpstreamError> {
        let path = match op {
            Operation::Chat => "/chat/completions",
            Operation::Embeddings => "/embeddings",
        };
        let resp = post(call, path, "application/json").await?;
        let status = resp.status().as_u16();
        let content_type = header_text(resp.headers(), CONTENT_TYPE);
        let id = &call.provider.id;
        let body = resp.bytes().await.map_err(|e| UpstreamError::from_reqwest(id, e))?;
        // A 2xx must be the object the protocol promises; anything else is retried, never passed
        // to the client as a success.
        let inspected = match op {
            Operation::Chat => wire::completion(&body),
            Operation::Embeddings => wire::embeddings(&body),
        };
        let Some(inspected) = inspected else {
            return Err(UpstreamError::new(id, UpstreamErrorKind::Malformed));
        };
        Ok(Reply {
            status,
            content_type: content_type.unwrap_or_else(|| "application/json".into()),
            body,
            usage: inspected.usage,
            text: inspected.text,
        })
    }

    async fn open_stream(&self, call: &Call<'_>) -> Result<ByteStream, UpstreamError> {
        let resp = post(call, "/chat/completions", "text/event-stream").await?;
        let id = call.provider.id.clone();
        Ok(Box::pin(resp.bytes_stream().map(move |item| {
            item.map_err(|e| UpstreamError::new(&id, UpstreamErrorKind::StreamCut).with_source(e))
        })))
    }

    async fn list_models(
        &self,
        provider: &ProviderConfig,
        http: &reqwest::Client,
        timeout: Duration,
    ) -> Result<Vec<String>, UpstreamError> {
        let req = http
            .get(format!("{}/models", provider.base_url))
            .headers(provider_headers(provider)?);
        let resp = req
            .timeout(timeout)
            .send()
            .await
            .map_err(|e| UpstreamError::from_reqwest(&provider.id, e))?;
        let resp = check_status(&provider.id, resp).await?;
        let body = resp
            .bytes()
            .await
            .map_err(|e| UpstreamError::from_reqwest(&provider.id, e))?;
        #[derive(Deserialize)]
        struct List {
            data: Vec<Card>,
        }
        #[derive(Deserialize)]
        struct Card {
            id: String,
        }
        let list: List = serde_json::from_slice(&body)
            .map_err(|e| UpstreamError::new(&provider.id, UpstreamErrorKind::Malformed).with_source(e))?;
        Ok(list.data.into_iter().map(|c| c.id).collect())
    }
}

async fn post(call: &Call<'_>, path: &str, accept: &'static str) -> Result<reqwest::Response, UpstreamError> {
    let p = call.provider;
    let mut headers = provider_headers(p)?;
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    headers.insert(ACCEPT, HeaderValue::from_static(accept));
    if let Ok(v) = HeaderValue::from_str(call.request_id.as_str()) {
        headers.insert(HeaderName::from_static("x-request-id"), v);
    }
    let resp = call
        .http
        .post(format!("{}{path}", p.base_url))
        .headers(headers)
        .body(call.body.clone())
        .send()
        .await
        .map_err(|e| UpstreamError::from_reqwest(&p.id, e))?;
    check_status(&p.id, resp).await
}

/// The provider's own credentials and static headers; the client's never pass through.
fn provider_headers(p: &ProviderConfig) -> Result<HeaderMap, UpstreamError> {
    let mut headers = HeaderMap::new();
    let bad = |e: &dyn std::fmt::Display| {
        UpstreamError::new(&p.id, UpstreamErrorKind::Unsupported)
            .with_source(std::io::Error::other(format!("invalid header in provider config: {e}")))
    };
    for (name, value) in &p.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?;
        let value = HeaderValue::from_str(value).map_err(|e| bad(&e))?;
        headers.insert(name, value);
    }
    if let Some(key) = &p.api_key {
        let (name, text) = match &p.auth {
            AuthScheme::Bearer => (
                reqwest::header::AUTHORIZATION,
                format!("Bearer {}", key.expose_secret()),
            ),
            AuthScheme::Header(h) => (
                HeaderName::from_bytes(h.as_bytes()).map_err(|e| bad(&e))?,
                key.expose_secret().to_owned(),
            ),
        };
        let mut value = HeaderValue::from_str(&text).map_err(|_| bad(&"api key is not a valid header value"))?;
        value.set_sensitive(true);
        headers.insert(name, value);
    }
    Ok(headers)
}

/// Turns a non-2xx answer into an `UpstreamError` carrying the upstream's own error fields.
async fn check_status(
    id: &crate::domain::ProviderId,
    resp: reqwest::Response,
) -> Result<reqwest::Response, UpstreamError> {
    let status = resp.status();
    if status.is_success() {
        return Ok(resp);
    }
    let retry_after = parse_retry_after(resp.headers());
    let detail = read_limited(resp, MAX_ERROR_BODY)
        .await
        .and_then(|b| parse_error_body(&b));
    let mut err = UpstreamError::new(id, UpstreamErrorKind::Status);
    err.status = Some(status.as_u16());
    err.retry_after = retry_after;
    err.detail = detail.map(Box::new);
    Err(err)
}

async fn read_limited(resp: reqwest::Response, limit: usize) -> Option<Bytes> {
    let mut out = Vec::new();
    let mut stream = resp.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        let room = limit.saturating_sub(out.len());
        out.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if out.len() >= limit {
            break;
        }
    }
    Some(Bytes::from(out))
}

/// Reads `{"error": {"message", "type", "code", "param"}}` (or `{"error": "text"}`, or
/// `{"message": ...}` as some runtimes send).
pub(crate) fn parse_error_body(body: &[u8]) -> Option<ErrorDetail> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    };
    let obj = match value.get("error") {
        Some(serde_json::Value::String(s)) => {
            return Some(ErrorDetail {
                message: s.clone(),
                ..Default::default()
            });
        }
        Some(inner @ serde_json::Value::Object(_)) => inner,
        _ => &value,
    };
    let message = obj.get("message").and_then(text)?;
    Some(ErrorDetail {
        message,
        error_type: obj.get("type").and_then(text),
        code: obj.get("code").and_then(text),
        param: obj.get("param").and_then(text),
    })
}

fn parse_retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let text = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    let wait = if let Ok(secs) = text.parse::<f64>() {
        Duration::try_from_secs_f64(secs).ok()?
    } else {
        let at = httpdate::parse_http_date(text).ok()?;
        at.duration_since(std::time::SystemTime::now())
            .unwrap_or(Duration::ZERO)
    };
    Some(wait.min(MAX_RETRY_AFTER))
}

fn header_text(headers: &reqwest::header::HeaderMap, name: HeaderName) -> Option<String> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openai_error_body_is_read() {
        let d = parse_error_body(
            br#"{"error":{"message":"bad temp","type":"invalid_request_error","param":"temperature","code":null}}"#,
        )
        .unwrap();
        assert_eq!(d.message, "bad temp");
        assert_eq!(d.param.as_deref(), Some("temperature"));
        assert_eq!(d.code, None);
    }

    #[test]
    fn plain_and_odd_error_bodies() {
        assert_eq!(parse_error_body(br#"{"error":"boom"}"#).unwrap().message, "boom");
        assert_eq!(
            parse_error_body(br#"{"message":"m","code":400}"#)
                .unwrap()
                .code
                .as_deref(),
            Some("400")
        );
        assert!(parse_error_body(b"<html>").is_none());
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_static("2"));
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(2)));
        h.insert(RETRY_AFTER, HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"));
        assert_eq!(parse_retry_after(&h), Some(Duration::ZERO));
    }
}

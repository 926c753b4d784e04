//! Transport shared by the adapters: the provider's own headers and query, the POST, non-2xx
//! answers turned into `UpstreamError`s carrying the upstream's error fields, `Retry-After`.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderName, HeaderValue, RETRY_AFTER};
use secrecy::{ExposeSecret, SecretString};

use crate::config::{AuthScheme, ProviderConfig};
use crate::dialects::BodyError;
use crate::domain::ProviderId;
use crate::providers::{ByteStream, Call, ErrorDetail, UpstreamError, UpstreamErrorKind};

/// Largest upstream error body we read to extract its message.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// Largest model list we read from an upstream (`GET /models`): an answer that never ends must not
/// grow the gateway's memory for the whole list timeout.
const MAX_LIST_BYTES: usize = 8 * 1024 * 1024;
/// The longest `Retry-After` we take from an upstream.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(3600);

/// `Accept` for a unary call.
pub(super) const JSON: &str = "application/json";
/// `Accept` for a stream.
pub(super) const EVENT_STREAM: &str = "text/event-stream";

/// What every call to one provider sends, worked out once when its adapter is built (when the
/// registry is, or for a node's candidate) instead of on every call: the credentials, the
/// provider's static headers, the protocol's own (`extra`) and `Content-Type`, and the query its
/// URLs carry. A header the config gets wrong is kept as its message and fails each call as it
/// always did (`Unsupported`, so the next provider is tried).
#[derive(Debug, Clone)]
pub(super) struct Transport {
    headers: Result<HeaderMap, String>,
    /// With a key pool, each key's credential header by index (`headers` carries the first).
    credentials: Vec<(HeaderName, HeaderValue)>,
    query: Vec<(String, String)>,
}

/// An upstream URL parsed once (with the provider's query), or why it does not parse.
pub(super) type Endpoint = Result<reqwest::Url, String>;

impl Transport {
    /// `p`'s headers, `extra` where the config does not set them, and `Content-Type: JSON`.
    pub(super) fn new(p: &ProviderConfig, extra: &[(&'static str, &'static str)]) -> Self {
        let headers = static_headers(p).map(|mut headers| {
            for (name, value) in extra {
                let name = HeaderName::from_static(name);
                if !headers.contains_key(&name) {
                    headers.insert(name, HeaderValue::from_static(value));
                }
            }
            headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON));
            headers
        });
        let credentials = p
            .key_pool
            .iter()
            .flat_map(|pool| &pool.keys)
            .filter_map(|(key, _)| credential(p, key).ok())
            .collect();
        Self {
            headers,
            credentials,
            query: p.query.clone(),
        }
    }

    /// A fixed endpoint (`url` plus the provider's query), parsed now for every later call.
    pub(super) fn endpoint(&self, url: &str) -> Endpoint {
        let mut url = reqwest::Url::parse(url).map_err(|e| e.to_string())?;
        if !self.query.is_empty() {
            url.query_pairs_mut().extend_pairs(&self.query);
        }
        Ok(url)
    }

    /// A URL that depends on the call (a deployment or model in its path), parsed per call.
    pub(super) fn url(&self, id: &ProviderId, url: &str) -> Result<reqwest::Url, UpstreamError> {
        self.endpoint(url).map_err(|e| unsupported(id, e))
    }

    /// POSTs `body` to `url` with the prepared headers, `Accept: accept` and the request id, and
    /// returns the response once its status is 2xx.
    pub(super) async fn post(
        &self,
        call: &Call<'_>,
        url: &Endpoint,
        body: Bytes,
        accept: &'static str,
    ) -> Result<reqwest::Response, UpstreamError> {
        self.post_with(call, url, body, accept, HeaderMap::new()).await
    }

    /// `post`, with `per_call` headers set over the prepared ones (the protocol headers a client
    /// chose, which differ from call to call).
    pub(super) async fn post_with(
        &self,
        call: &Call<'_>,
        url: &Endpoint,
        body: Bytes,
        accept: &'static str,
        per_call: HeaderMap,
    ) -> Result<reqwest::Response, UpstreamError> {
        let id = &call.provider.id;
        let mut headers = self.headers.clone().map_err(|e| unsupported(id, e))?;
        let url = url.clone().map_err(|e| unsupported(id, e))?;
        for (name, value) in &per_call {
            headers.insert(name.clone(), value.clone());
        }
        if call.key > 0
            && let Some((name, value)) = self.credentials.get(call.key)
        {
            headers.insert(name.clone(), value.clone());
        }
        headers.insert(ACCEPT, HeaderValue::from_static(accept));
        if let Ok(v) = HeaderValue::from_str(call.request_id.as_str()) {
            headers.insert(HeaderName::from_static("x-request-id"), v);
        }
        if let Some(trace) = &call.trace {
            // The provider's own static headers never carry a trace: this attempt's context wins.
            crate::providers::write_trace(&mut headers, trace);
        }
        // A `Request` takes the map as it is, where `RequestBuilder::headers` would merge it in.
        let mut request = reqwest::Request::new(reqwest::Method::POST, url);
        *request.headers_mut() = headers;
        *request.body_mut() = Some(body.into());
        let resp = call
            .http
            .execute(request)
            .await
            .map_err(|e| UpstreamError::from_reqwest(id, e))?;
        check_status(id, resp).await
    }
}

/// A provider config the protocol cannot use (a bad header or URL), with what was wrong.
fn unsupported(id: &ProviderId, message: String) -> UpstreamError {
    UpstreamError::new(id, UpstreamErrorKind::Unsupported).with_source(std::io::Error::other(message))
}

/// GETs `url` with the provider's credentials and query; the 2xx body, up to `MAX_LIST_BYTES`.
pub(super) async fn get(
    provider: &ProviderConfig,
    http: &reqwest::Client,
    url: &str,
    timeout: Duration,
    extra: &[(&'static str, &'static str)],
) -> Result<Bytes, UpstreamError> {
    let mut headers = provider_headers(provider)?;
    for (name, value) in extra {
        let name = HeaderName::from_static(name);
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    let resp = http
        .get(with_query(&provider.id, url, &provider.query)?)
        .headers(headers)
        .timeout(timeout)
        .send()
        .await
        .map_err(|e| UpstreamError::from_reqwest(&provider.id, e))?;
    let resp = check_status(&provider.id, resp).await?;
    body(&provider.id, resp, MAX_LIST_BYTES).await
}

/// `url` with the provider's query parameters appended (after any it already has).
fn with_query(id: &ProviderId, url: &str, query: &[(String, String)]) -> Result<reqwest::Url, UpstreamError> {
    let mut url =
        reqwest::Url::parse(url).map_err(|e| UpstreamError::new(id, UpstreamErrorKind::Unsupported).with_source(e))?;
    if !query.is_empty() {
        url.query_pairs_mut().extend_pairs(query);
    }
    Ok(url)
}

/// The whole 2xx body, refused (`TooLarge`) as soon as it is known to exceed `limit` bytes: from
/// its `Content-Length` before reading, else while reading, so no more than `limit` bytes are ever
/// held.
pub(super) async fn body(id: &ProviderId, mut resp: reqwest::Response, limit: usize) -> Result<Bytes, UpstreamError> {
    let too_large = || UpstreamError::new(id, UpstreamErrorKind::TooLarge);
    let read = |e| UpstreamError::from_reqwest(id, e);
    let declared = resp.content_length();
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large());
    }
    let Some(first) = resp.chunk().await.map_err(read)? else {
        return Ok(Bytes::new());
    };
    let mut len = first.len();
    let mut pieces = vec![first];
    // The pieces are kept as they came and joined once at the end: refusing a body never holds
    // more than `limit` bytes (and the piece that crossed it), however they arrived.
    while len <= limit {
        let Some(piece) = resp.chunk().await.map_err(read)? else {
            break;
        };
        len += piece.len();
        pieces.push(piece);
    }
    if len > limit {
        return Err(too_large());
    }
    if pieces.len() == 1 {
        // Most bodies arrive in one piece: handed on without a copy.
        return Ok(pieces.swap_remove(0));
    }
    let mut out = Vec::with_capacity(len);
    for piece in &pieces {
        out.extend_from_slice(piece);
    }
    Ok(Bytes::from(out))
}

/// The response body as it arrives; a break after the start is `StreamCut`.
pub(super) fn byte_stream(id: &ProviderId, resp: reqwest::Response) -> ByteStream {
    let id = id.clone();
    Box::pin(
        resp.bytes_stream()
            .map(move |item| item.map_err(|e| UpstreamError::new(&id, UpstreamErrorKind::StreamCut).with_source(e))),
    )
}

/// A 2xx whose body is not what the protocol promises.
pub(super) fn malformed(id: &ProviderId) -> UpstreamError {
    UpstreamError::new(id, UpstreamErrorKind::Malformed)
}

/// A request the upstream's protocol cannot express: answered as the upstream would refuse it
/// (a 400 client fault, never retried elsewhere), with a message saying what to change.
pub(super) fn untranslatable(id: &ProviderId, e: BodyError) -> UpstreamError {
    let mut err = UpstreamError::new(id, UpstreamErrorKind::Status);
    err.status = Some(400);
    err.detail = Some(Box::new(ErrorDetail {
        message: e.message,
        error_type: Some("invalid_request_error".into()),
        code: Some(e.code.into()),
        param: e.param,
    }));
    err
}

/// The value of the top-level `model` in a JSON body (after routing spliced it).
pub(super) fn model_of(id: &ProviderId, body: &[u8]) -> Result<String, UpstreamError> {
    #[derive(serde::Deserialize)]
    struct ModelOnly {
        model: String,
    }
    serde_json::from_slice::<ModelOnly>(body)
        .map(|m| m.model)
        .map_err(|e| UpstreamError::new(id, UpstreamErrorKind::Unsupported).with_source(e))
}

/// The provider's own credentials and static headers; the client's never pass through.
pub(super) fn provider_headers(p: &ProviderConfig) -> Result<HeaderMap, UpstreamError> {
    static_headers(p).map_err(|message| unsupported(&p.id, message))
}

fn static_headers(p: &ProviderConfig) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::new();
    let bad = |e: &dyn std::fmt::Display| format!("invalid header in provider config: {e}");
    for (name, value) in &p.headers {
        let name = HeaderName::from_bytes(name.as_bytes()).map_err(|e| bad(&e))?;
        let value = HeaderValue::from_str(value).map_err(|e| bad(&e))?;
        headers.insert(name, value);
    }
    if let Some(key) = &p.api_key {
        let (name, value) = credential(p, key)?;
        headers.insert(name, value);
    }
    Ok(headers)
}

/// The header that carries `key` the way `p` expects it, marked sensitive.
fn credential(p: &ProviderConfig, key: &SecretString) -> Result<(HeaderName, HeaderValue), String> {
    let bad = |e: &dyn std::fmt::Display| format!("invalid header in provider config: {e}");
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
    Ok((name, value))
}

/// Turns a non-2xx answer into an `UpstreamError` carrying the upstream's own error fields.
pub(super) async fn check_status(id: &ProviderId, resp: reqwest::Response) -> Result<reqwest::Response, UpstreamError> {
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

/// Reads `{"error": {"message", "type", "code", "param"}}` (OpenAI, Azure, and Anthropic's
/// `{"type": "error", "error": {"type", "message"}}`), Gemini's `{"error": {"code", "message",
/// "status"}}`, `{"error": "text"}`, or `{"message": ...}` as some runtimes send.
pub(crate) fn parse_error_body(body: &[u8]) -> Option<ErrorDetail> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    // Gemini answers with a JSON array holding the error object on some endpoints.
    let value = match value {
        serde_json::Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
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
        // Gemini names its kind `status` (e.g. INVALID_ARGUMENT).
        error_type: obj.get("type").or_else(|| obj.get("status")).and_then(text),
        code: obj.get("code").and_then(text),
        param: obj.get("param").and_then(text),
    })
}

fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
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

/// A response header as text.
pub(super) fn header_text(headers: &HeaderMap, name: HeaderName) -> Option<String> {
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
    fn anthropic_and_gemini_error_bodies_are_read() {
        let a = parse_error_body(
            br#"{"type":"error","error":{"type":"invalid_request_error","message":"max_tokens: Field required"}}"#,
        )
        .unwrap();
        assert_eq!(a.message, "max_tokens: Field required");
        assert_eq!(a.error_type.as_deref(), Some("invalid_request_error"));
        let g =
            parse_error_body(br#"{"error":{"code":400,"message":"API key not valid.","status":"INVALID_ARGUMENT"}}"#)
                .unwrap();
        assert_eq!(g.error_type.as_deref(), Some("INVALID_ARGUMENT"));
        assert_eq!(g.code.as_deref(), Some("400"));
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

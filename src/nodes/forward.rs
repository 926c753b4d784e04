//! Forwarding worker API calls to one node: the catch-all `POST /{path}` (answer buffered, so a
//! `job_id` can be read from it) and `GET /status|download/{job_id}` (answer streamed).
//!
//! Transport only: which node, failover and breakers are `pipeline`'s business.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::{CONTENT_TYPE, HeaderMap, HeaderName};

/// Response headers handed back to the client (everything else is the node's business).
const PASSED_HEADERS: &[&str] = &[
    "content-type",
    "content-disposition",
    "cache-control",
    "retry-after",
    "last-modified",
    "etag",
];

/// A node's complete answer.
#[derive(Debug)]
pub struct Forwarded {
    pub status: u16,
    /// The headers in `PASSED_HEADERS` it sent.
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

/// A node's body, as it arrives.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// A node's answer whose body is still arriving.
pub struct ForwardedStream {
    pub status: u16,
    /// The headers in `PASSED_HEADERS` it sent.
    pub headers: Vec<(&'static str, String)>,
    pub body: BodyStream,
}

impl std::fmt::Debug for ForwardedStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ForwardedStream")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Why a node gave no answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ForwardError {
    /// No connection, or it broke before the answer.
    #[error("node unreachable: {0}")]
    Connect(String),
    /// No answer in time.
    #[error("node did not answer in time")]
    Timeout,
    /// An answer longer than the cap (refused while reading, never held whole).
    #[error("node answered more than limits.max_response_bytes")]
    TooLarge,
}

/// `POST url` with the client's body and content type; waits for the whole answer, of at most
/// `max_bytes` (a node sending more is refused before it can grow the gateway's memory).
pub async fn post(
    http: &reqwest::Client,
    url: &str,
    body: Bytes,
    content_type: Option<&str>,
    request_id: &str,
    timeout: Duration,
    max_bytes: usize,
) -> Result<Forwarded, ForwardError> {
    let mut req = http
        .post(url)
        .timeout(timeout)
        .header("x-request-id", request_id)
        .body(body);
    if let Some(ct) = content_type {
        req = req.header(CONTENT_TYPE, ct);
    }
    let mut resp = req.send().await.map_err(error)?;
    let status = resp.status().as_u16();
    let headers = passed(resp.headers());
    if resp.content_length().is_some_and(|n| n > max_bytes as u64) {
        return Err(ForwardError::TooLarge);
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(error)? {
        if body.len() + chunk.len() > max_bytes {
            return Err(ForwardError::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Forwarded {
        status,
        headers,
        body: Bytes::from(body),
    })
}

/// `GET url`; returns once the headers arrive (within `timeout`), the body follows as a stream.
pub async fn get(
    http: &reqwest::Client,
    url: &str,
    request_id: &str,
    timeout: Duration,
) -> Result<ForwardedStream, ForwardError> {
    let send = http.get(url).header("x-request-id", request_id).send();
    let resp = tokio::time::timeout(timeout, send)
        .await
        .map_err(|_| ForwardError::Timeout)?
        .map_err(error)?;
    let status = resp.status().as_u16();
    let headers = passed(resp.headers());
    let body = resp.bytes_stream().map(|chunk| chunk.map_err(std::io::Error::other));
    Ok(ForwardedStream {
        status,
        headers,
        body: Box::pin(body),
    })
}

fn passed(headers: &HeaderMap) -> Vec<(&'static str, String)> {
    PASSED_HEADERS
        .iter()
        .filter_map(|name| {
            let value = headers.get(HeaderName::from_static(name))?.to_str().ok()?;
            Some((*name, value.to_owned()))
        })
        .collect()
}

fn error(e: reqwest::Error) -> ForwardError {
    if e.is_timeout() {
        ForwardError::Timeout
    } else {
        ForwardError::Connect(e.to_string())
    }
}

/// The `job_id` a worker's JSON answer names at its top level (a string or a number).
pub fn job_id(body: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Answer {
        job_id: Option<serde_json::Value>,
    }
    if !is_object(body) {
        return None;
    }
    let answer: Answer = serde_json::from_slice(body).ok()?;
    match answer.job_id? {
        serde_json::Value::String(s) if !s.is_empty() && s.len() <= 256 => Some(s),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// serde reads a struct from a JSON array too (`["x"]` as `job_id: "x"`); only an object counts.
fn is_object(body: &[u8]) -> bool {
    body.trim_ascii_start().first() == Some(&b'{')
}

/// The answer with its top-level `job_id` value replaced by `new_id`, every other byte as the
/// node sent it; `None` when there is no such value to replace.
pub fn replace_job_id(body: &Bytes, new_id: &str) -> Option<Bytes> {
    #[derive(serde::Deserialize)]
    struct Answer<'a> {
        #[serde(borrow)]
        job_id: &'a serde_json::value::RawValue,
    }
    if !is_object(body) {
        return None;
    }
    let answer: Answer<'_> = serde_json::from_slice(body).ok()?;
    let raw = answer.job_id.get();
    // The RawValue borrows from `body`, so its address lies inside it.
    let start = (raw.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let end = start + raw.len();
    let encoded = serde_json::to_string(new_id).ok()?;
    let mut out = Vec::with_capacity(body.len() + encoded.len());
    out.extend_from_slice(body.get(..start)?);
    out.extend_from_slice(encoded.as_bytes());
    out.extend_from_slice(body.get(end..)?);
    Some(Bytes::from(out))
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_the_job_id_value_is_replaced() {
        let body = Bytes::from_static(br#"{ "status": "queued", "job_id" : 42, "eta": {"job_id": 1} }"#);
        let out = replace_job_id(&body, "job_x").unwrap();
        assert_eq!(
            &out[..],
            br#"{ "status": "queued", "job_id" : "job_x", "eta": {"job_id": 1} }"#
        );
        assert!(replace_job_id(&Bytes::from_static(b"[1]"), "x").is_none());
    }

    use super::*;

    #[test]
    fn job_ids_are_read_from_the_top_level() {
        assert_eq!(job_id(br#"{"job_id":"j-1","status":"queued"}"#).as_deref(), Some("j-1"));
        assert_eq!(job_id(br#"{"job_id":42}"#).as_deref(), Some("42"));
        assert_eq!(job_id(br#"{"data":{"job_id":"x"}}"#), None);
        assert_eq!(job_id(br#"{"job_id":""}"#), None);
        assert_eq!(job_id(b"not json"), None);
        assert_eq!(job_id(br#"[1,2]"#), None);
        assert_eq!(job_id(br#"["x"]"#), None);
    }
}

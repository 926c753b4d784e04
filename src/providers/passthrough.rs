//! Transport for path routes (non-LLM services): one request sent as the client made it (method,
//! path, query, headers minus hop-by-hop and gateway credentials, the body's bytes), the answer's
//! head returned as soon as it arrives and its body streamed.
//!
//! Transport only: which target, failover, breakers and the SSRF decision are `pipeline`'s. When
//! the caller pins an address (the one the SSRF check accepted), a plain-HTTP request connects to
//! exactly it, so a DNS answer that changes between check and connect is never used.

use std::net::IpAddr;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use reqwest::header::{HOST, HeaderMap, HeaderName, HeaderValue};

use super::{UpstreamError, UpstreamErrorKind};
use crate::domain::ProviderId;

/// Headers that describe one connection, not the message (RFC 9110 §7.6.1), plus the ones the
/// transport sets itself.
const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
];

/// The gateway's own credentials: never sent upstream.
const CREDENTIALS: &[&str] = &["authorization", "x-api-key", "x-admin-token", "x-worker-token"];

/// One request to send.
#[derive(Debug)]
pub struct PassRequest<'a> {
    /// The method, upper case.
    pub method: &'a str,
    /// Target base URL + the client's path and query.
    pub url: String,
    /// The client's headers, as name/value pairs.
    pub headers: &'a [(String, Vec<u8>)],
    /// The body's bytes, forwarded untouched.
    pub body: Bytes,
    /// Propagated as `x-request-id`.
    pub request_id: &'a str,
    /// With traces on, this attempt's client span context, sent as `traceparent` / `tracestate`
    /// over the client's own; `None` leaves the client's headers as they came.
    pub trace: Option<crate::domain::TraceContext>,
    /// Time allowed until the response head.
    pub timeout: Duration,
    /// Longest silence between two chunks of the response body; the body ends in an error after.
    pub idle_timeout: Duration,
    /// Connect to this address instead of resolving the URL's host again (plain HTTP only).
    pub pin: Option<IpAddr>,
}

/// A response body as it arrives.
pub type PassBody = Pin<Box<dyn Stream<Item = Result<Bytes, std::io::Error>> + Send>>;

/// The answer: status and headers now, body as it arrives.
pub struct PassResponse {
    pub status: u16,
    /// Its headers minus hop-by-hop ones.
    pub headers: Vec<(String, Vec<u8>)>,
    /// `Retry-After` in seconds, when sent.
    pub retry_after: Option<Duration>,
    pub body: PassBody,
}

impl std::fmt::Debug for PassResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PassResponse")
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

/// Whether a header is passed on (either way).
pub fn passes(name: &str) -> bool {
    !HOP_BY_HOP
        .iter()
        .chain(CREDENTIALS)
        .any(|h| name.eq_ignore_ascii_case(h))
}

/// Sends one request; a connect failure or no head within `timeout` is an `UpstreamError`, any
/// status is an answer (the caller classifies it).
pub async fn send(
    http: &reqwest::Client,
    id: &ProviderId,
    req: PassRequest<'_>,
) -> Result<PassResponse, UpstreamError> {
    let method = reqwest::Method::from_bytes(req.method.as_bytes())
        .map_err(|e| UpstreamError::new(id, UpstreamErrorKind::Unsupported).with_source(e))?;
    let mut headers = HeaderMap::new();
    for (name, value) in req.headers.iter().filter(|(n, _)| passes(n)) {
        if let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_bytes(value)) {
            headers.append(n, v);
        }
    }
    let url = match req.pin {
        Some(ip) => pinned(&req.url, ip, &mut headers),
        None => req.url,
    };
    if let Ok(v) = HeaderValue::from_str(req.request_id) {
        headers.insert(HeaderName::from_static("x-request-id"), v);
    }
    if let Some(trace) = &req.trace {
        super::write_trace(&mut headers, trace);
    }
    let sent = http.request(method, url).headers(headers).body(req.body).send();
    let resp = tokio::time::timeout(req.timeout, sent)
        .await
        .map_err(|_| UpstreamError::new(id, UpstreamErrorKind::Timeout))?
        .map_err(|e| UpstreamError::from_reqwest(id, e))?;
    let status = resp.status().as_u16();
    let retry_after = resp
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let headers = resp
        .headers()
        .iter()
        .filter(|(n, _)| passes(n.as_str()))
        .map(|(n, v)| (n.as_str().to_owned(), v.as_bytes().to_vec()))
        .collect();
    let body = idle_limited(resp.bytes_stream(), req.idle_timeout);
    Ok(PassResponse {
        status,
        headers,
        retry_after,
        body: Box::pin(body),
    })
}

/// The body as it arrives, cut with an error when no chunk comes for `idle`.
fn idle_limited(
    body: impl Stream<Item = reqwest::Result<Bytes>> + Send + Unpin + 'static,
    idle: Duration,
) -> impl Stream<Item = Result<Bytes, std::io::Error>> + Send {
    futures_util::stream::unfold(Some(body), move |state| async move {
        let mut body = state?;
        match tokio::time::timeout(idle, body.next()).await {
            Ok(Some(Ok(chunk))) => Some((Ok(chunk), Some(body))),
            Ok(Some(Err(e))) => Some((Err(std::io::Error::other(e)), None)),
            Ok(None) => None,
            Err(_) => Some((
                Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "the target went silent",
                )),
                None,
            )),
        }
    })
}

/// `http://name:port/p` → `http://ip:port/p` with `Host: name:port`; HTTPS URLs stay as they are
/// (the certificate check ties the connection to the name instead).
fn pinned(url: &str, ip: IpAddr, headers: &mut HeaderMap) -> String {
    let Some(rest) = url.strip_prefix("http://") else {
        return url.to_owned();
    };
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..end];
    let port = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').and_then(|(_, after)| after.strip_prefix(':')),
        None => authority.rsplit_once(':').map(|(_, p)| p),
    };
    let host_ip = match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    };
    let new_authority = port.map_or_else(|| host_ip.clone(), |p| format!("{host_ip}:{p}"));
    if let Ok(v) = HeaderValue::from_str(authority) {
        headers.insert(HOST, v);
    }
    format!("http://{new_authority}{}", &rest[end..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_and_hop_by_hop_headers_never_pass() {
        for h in ["Authorization", "x-api-key", "Connection", "transfer-encoding", "Host"] {
            assert!(!passes(h), "{h}");
        }
        for h in ["content-type", "x-custom", "accept"] {
            assert!(passes(h), "{h}");
        }
    }

    #[test]
    fn a_pinned_plain_http_url_connects_to_the_checked_address() {
        let mut h = HeaderMap::new();
        let url = pinned("http://svc.local:8080/predict?x=1", "10.0.0.7".parse().unwrap(), &mut h);
        assert_eq!(url, "http://10.0.0.7:8080/predict?x=1");
        assert_eq!(h.get(HOST).unwrap(), "svc.local:8080");
        let url = pinned("http://svc/p", "fd00::1".parse().unwrap(), &mut h);
        assert_eq!(url, "http://[fd00::1]/p");
        let url = pinned("http://[fd00::2]:81/p", "fd00::2".parse().unwrap(), &mut h);
        assert_eq!(url, "http://[fd00::2]:81/p");
        assert_eq!(
            pinned("https://svc/p", "10.0.0.7".parse().unwrap(), &mut h),
            "https://svc/p"
        );
    }
}

//! A fast OpenAI-compatible upstream on raw HTTP/1.1 (tokio + httparse): `chat.completion` JSON,
//! or `chat.completion.chunk` SSE events (one HTTP chunk each) ending in `data: [DONE]`.
//!
//! The path prefix picks the behaviour, so one mock serves every provider of the generated config:
//! `/v1/...` answers normally; `/fail/v1/...` answers 503 in OpenAI's error shape; `/slow/v1/...`
//! streams one event, then one every `slow_interval` until `release` (or the client leaves).
//! With `stream_options.include_usage` every chunk carries `"usage": null` and a final chunk with
//! `"choices": []` carries the usage, as OpenAI does. Chunk count and delay are live settings.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use serde::Deserialize;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// Tokens the mock reports for every prompt.
pub const PROMPT_TOKENS: u64 = 5;
/// `completion_tokens` of a JSON answer.
pub const JSON_COMPLETION_TOKENS: u64 = 3;
const ANSWER: &str = "Hello from the bench.";

/// Live settings and counters, shared with the scenarios.
#[derive(Debug)]
pub struct Mock {
    /// The bound port.
    pub port: u16,
    /// Content chunks per normal stream.
    pub chunks: AtomicU32,
    /// Pause between stream events, µs (0: write them back to back).
    pub delay_us: AtomicU64,
    /// Pause between events of a `/slow` stream, ms.
    pub slow_interval_ms: AtomicU64,
    /// Chat calls answered (all paths).
    pub calls: AtomicU64,
    /// `/slow` streams currently open.
    pub slow_open: AtomicUsize,
    release: watch::Sender<u64>,
}

impl Mock {
    /// Binds `127.0.0.1:0` and serves until the process ends.
    pub async fn start() -> std::io::Result<Arc<Self>> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let (release, _) = watch::channel(0);
        let mock = Arc::new(Self {
            port: listener.local_addr()?.port(),
            chunks: AtomicU32::new(20),
            delay_us: AtomicU64::new(0),
            slow_interval_ms: AtomicU64::new(5_000),
            calls: AtomicU64::new(0),
            slow_open: AtomicUsize::new(0),
            release,
        });
        let serving = mock.clone();
        tokio::spawn(async move {
            loop {
                match listener.accept().await {
                    Ok((socket, _)) => {
                        let mock = serving.clone();
                        tokio::spawn(async move {
                            let _ = socket.set_nodelay(true);
                            let _ = mock.connection(socket).await;
                        });
                    }
                    // Out of descriptors: wait for some to close rather than spin.
                    Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
                }
            }
        });
        Ok(mock)
    }

    /// Sets the shape of normal streams.
    pub fn set_stream(&self, chunks: u32, delay: Duration) {
        self.chunks.store(chunks, Ordering::Relaxed);
        self.delay_us
            .store(u64::try_from(delay.as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    /// Ends every open `/slow` stream (finish chunk, usage, `[DONE]`).
    pub fn release_slow(&self) {
        self.release.send_modify(|g| *g += 1);
    }

    async fn connection(&self, mut socket: TcpStream) -> std::io::Result<()> {
        let mut buf = BytesMut::with_capacity(8 * 1024);
        loop {
            let (path, head_len, body_len, close) = loop {
                if let Some(head) = parse_head(&buf)? {
                    break head;
                }
                if socket.read_buf(&mut buf).await? == 0 {
                    return Ok(());
                }
            };
            while buf.len() < head_len + body_len {
                if socket.read_buf(&mut buf).await? == 0 {
                    return Ok(());
                }
            }
            let body = buf.split_to(head_len + body_len).split_off(head_len);
            self.answer(&mut socket, &path, &body).await?;
            if close {
                return Ok(());
            }
        }
    }

    async fn answer(&self, socket: &mut TcpStream, path: &str, body: &[u8]) -> std::io::Result<()> {
        if !path.ends_with("/chat/completions") {
            return socket
                .write_all(&response(
                    404,
                    "application/json",
                    br#"{"error":{"message":"not found","type":"invalid_request_error","param":null,"code":null}}"#,
                ))
                .await;
        }
        self.calls.fetch_add(1, Ordering::Relaxed);
        if path.starts_with("/fail/") {
            return socket
                .write_all(&response(
                    503,
                    "application/json",
                    br#"{"error":{"message":"mock provider is down","type":"server_error","param":null,"code":null}}"#,
                ))
                .await;
        }
        let Ok(req) = serde_json::from_slice::<ChatRequest>(body) else {
            return socket.write_all(&response(400, "application/json", br#"{"error":{"message":"invalid JSON","type":"invalid_request_error","param":null,"code":"invalid_json"}}"#)).await;
        };
        let usage = req.stream_options.is_some_and(|o| o.include_usage);
        match (req.stream, path.starts_with("/slow/")) {
            (false, _) => {
                socket
                    .write_all(&response(200, "application/json", completion(&req.model).as_bytes()))
                    .await
            }
            (true, false) => self.stream(socket, &req.model, usage).await,
            (true, true) => self.slow_stream(socket, &req.model, usage).await,
        }
    }

    async fn stream(&self, socket: &mut TcpStream, model: &str, usage: bool) -> std::io::Result<()> {
        let chunks = self.chunks.load(Ordering::Relaxed);
        let delay = Duration::from_micros(self.delay_us.load(Ordering::Relaxed));
        let mut out = SSE_HEAD.to_vec();
        out.extend_from_slice(&frame(&chunk_json(
            model,
            r#"{"role":"assistant","content":""}"#,
            None,
            usage,
        )));
        socket.write_all(&out).await?;
        for _ in 0..chunks {
            pause(delay).await;
            socket
                .write_all(&frame(&chunk_json(model, r#"{"content":"tok "}"#, None, usage)))
                .await?;
        }
        pause(delay).await;
        socket.write_all(&finish(model, usage, chunks)).await
    }

    async fn slow_stream(&self, socket: &mut TcpStream, model: &str, usage: bool) -> std::io::Result<()> {
        let mut released = self.release.subscribe();
        let interval = Duration::from_millis(self.slow_interval_ms.load(Ordering::Relaxed));
        let mut out = SSE_HEAD.to_vec();
        out.extend_from_slice(&frame(&chunk_json(
            model,
            r#"{"role":"assistant","content":""}"#,
            None,
            usage,
        )));
        socket.write_all(&out).await?;
        self.slow_open.fetch_add(1, Ordering::Relaxed);
        let _open = Guard(&self.slow_open);
        let mut sent = 0;
        loop {
            tokio::select! {
                () = tokio::time::sleep(interval) => {
                    sent += 1;
                    socket.write_all(&frame(&chunk_json(model, r#"{"content":"tok "}"#, None, usage))).await?;
                }
                _ = released.changed() => return socket.write_all(&finish(model, usage, sent)).await,
            }
        }
    }
}

/// Decrements a counter when dropped.
struct Guard<'a>(&'a AtomicUsize);

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

async fn pause(delay: Duration) {
    if delay.is_zero() {
        tokio::task::yield_now().await;
    } else {
        tokio::time::sleep(delay).await;
    }
}

#[derive(Deserialize)]
struct ChatRequest {
    #[serde(default)]
    model: String,
    #[serde(default)]
    stream: bool,
    #[serde(default)]
    stream_options: Option<StreamOptions>,
}

#[derive(Deserialize, Clone, Copy)]
struct StreamOptions {
    #[serde(default)]
    include_usage: bool,
}

/// `(path, head length, body length, connection: close)` once the head is complete.
fn parse_head(buf: &[u8]) -> std::io::Result<Option<(String, usize, usize, bool)>> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let head_len = match req.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(std::io::Error::new(std::io::ErrorKind::InvalidData, e)),
    };
    let mut body_len = 0;
    let mut close = false;
    for h in req.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            body_len = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
        } else if h.name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close") {
            close = true;
        }
    }
    Ok(Some((req.path.unwrap_or("/").to_owned(), head_len, body_len, close)))
}

const SSE_HEAD: &[u8] =
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\ntransfer-encoding: chunked\r\n\r\n";

/// A whole response with `content-length`.
fn response(status: u16, content_type: &str, body: &[u8]) -> Vec<u8> {
    let reason = match status {
        200 => "OK",
        400 => "Bad Request",
        404 => "Not Found",
        _ => "Service Unavailable",
    };
    let mut out = format!(
        "HTTP/1.1 {status} {reason}\r\ncontent-type: {content_type}\r\ncontent-length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    out.extend_from_slice(body);
    out
}

/// A `chat.completion` object with usage.
pub fn completion(model: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-bench","object":"chat.completion","created":1763769600,"model":"{model}","choices":[{{"index":0,"message":{{"role":"assistant","content":"{ANSWER}"}},"logprobs":null,"finish_reason":"stop"}}],"usage":{{"prompt_tokens":{PROMPT_TOKENS},"completion_tokens":{JSON_COMPLETION_TOKENS},"total_tokens":{}}}}}"#,
        PROMPT_TOKENS + JSON_COMPLETION_TOKENS
    )
}

/// One `chat.completion.chunk`; with `usage`, it carries `"usage":null` as OpenAI's do.
pub fn chunk_json(model: &str, delta: &str, finish: Option<&str>, usage: bool) -> String {
    let finish = finish.map_or_else(|| "null".to_owned(), |f| format!("\"{f}\""));
    let usage = if usage { r#","usage":null"# } else { "" };
    format!(
        r#"{{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1763769600,"model":"{model}","choices":[{{"index":0,"delta":{delta},"logprobs":null,"finish_reason":{finish}}}]{usage}}}"#
    )
}

/// The chunk with empty `choices` that carries a stream's usage.
pub fn usage_json(model: &str, completion_tokens: u32) -> String {
    let total = PROMPT_TOKENS + u64::from(completion_tokens);
    format!(
        r#"{{"id":"chatcmpl-bench","object":"chat.completion.chunk","created":1763769600,"model":"{model}","choices":[],"usage":{{"prompt_tokens":{PROMPT_TOKENS},"completion_tokens":{completion_tokens},"total_tokens":{total}}}}}"#
    )
}

/// One SSE event (`data: <payload>\n\n`) as one HTTP/1.1 chunk.
pub fn frame(payload: &str) -> Vec<u8> {
    let len = payload.len() + 8;
    let mut out = format!("{len:x}\r\ndata: ").into_bytes();
    out.extend_from_slice(payload.as_bytes());
    out.extend_from_slice(b"\n\n\r\n");
    out
}

/// The finish chunk, the usage chunk when asked for, `[DONE]` and the last HTTP chunk, in one write.
pub fn finish(model: &str, usage: bool, completion_tokens: u32) -> Vec<u8> {
    let mut out = frame(&chunk_json(model, "{}", Some("stop"), usage));
    if usage {
        out.extend_from_slice(&frame(&usage_json(model, completion_tokens)));
    }
    out.extend_from_slice(&frame("[DONE]"));
    out.extend_from_slice(b"0\r\n\r\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{ChunkedDecoder, SseScan};

    fn events(wire: &[u8]) -> (Vec<String>, SseScan) {
        let mut decoder = ChunkedDecoder::default();
        let mut scan = SseScan::default();
        let mut text = Vec::new();
        let (used, done) = decoder
            .feed(wire, |data| {
                text.extend_from_slice(data);
                scan.feed(data);
            })
            .unwrap();
        assert!(done && used == wire.len(), "the last chunk ends the body exactly");
        let text = String::from_utf8(text).unwrap();
        (text.split_terminator("\n\n").map(str::to_owned).collect(), scan)
    }

    #[test]
    fn an_event_is_one_http_chunk_of_data_line_and_blank_line() {
        assert_eq!(frame("[DONE]"), b"e\r\ndata: [DONE]\n\n\r\n");
    }

    #[test]
    fn with_include_usage_every_chunk_has_null_usage_then_a_usage_chunk_without_choices() {
        let (events, scan) = events(&finish("m", true, 7));
        assert_eq!(events.len(), 3);
        let last: serde_json::Value = serde_json::from_str(events[0].trim_start_matches("data: ")).unwrap();
        assert_eq!(last["usage"], serde_json::Value::Null);
        assert_eq!(last["choices"][0]["finish_reason"], "stop");
        let usage: serde_json::Value = serde_json::from_str(events[1].trim_start_matches("data: ")).unwrap();
        assert_eq!(usage["choices"], serde_json::json!([]));
        assert_eq!(usage["usage"]["completion_tokens"], 7);
        assert_eq!(usage["usage"]["total_tokens"], 12);
        assert_eq!(events[2], "data: [DONE]");
        assert!(scan.done && !scan.error && scan.events == 3);
    }

    #[test]
    fn without_include_usage_there_is_no_usage_at_all() {
        let (events, _) = events(&finish("m", false, 7));
        assert_eq!(events.len(), 2);
        assert!(!events[0].contains("usage"));
        let chunk: serde_json::Value =
            serde_json::from_str(&chunk_json("m", r#"{"content":"a"}"#, None, false)).unwrap();
        assert_eq!(chunk["choices"][0]["delta"]["content"], "a");
        assert!(chunk.get("usage").is_none());
    }

    #[test]
    fn the_completion_is_openai_json_with_usage() {
        let body: serde_json::Value = serde_json::from_str(&completion("gpt")).unwrap();
        assert_eq!(body["model"], "gpt");
        assert_eq!(body["usage"]["total_tokens"], 8);
    }

    #[test]
    fn a_request_head_gives_path_lengths_and_close() {
        let wire =
            b"POST /fail/v1/chat/completions HTTP/1.1\r\ncontent-length: 12\r\nConnection: close\r\n\r\n{\"model\":1}";
        let (path, head, body, close) = parse_head(wire).unwrap().unwrap();
        assert_eq!(
            (path.as_str(), head, body, close),
            ("/fail/v1/chat/completions", wire.len() - 11, 12, true)
        );
        assert!(parse_head(b"POST / HTTP/1.1\r\nhost: x\r\n").unwrap().is_none());
    }

    #[tokio::test]
    async fn a_stream_through_a_socket_has_role_content_finish_and_done_events() {
        let mock = Mock::start().await.unwrap();
        mock.set_stream(3, Duration::ZERO);
        let addr = std::net::SocketAddr::from(([127, 0, 0, 1], mock.port));
        let mut conn = crate::client::Conn::new(addr);
        let req = crate::client::request(addr, "/v1/chat/completions", None, br#"{"model":"m","stream":true}"#);
        let reply = conn.exchange(&req, crate::client::Mode::Full).await.unwrap();
        assert_eq!((reply.status, reply.events, reply.done), (200, 6, true));
        let reply = conn.exchange(&req, crate::client::Mode::Full).await.unwrap();
        assert_eq!(reply.events, 6, "the connection is kept alive");
    }
}

//! Issue 11's 100 MB upstream response: a non-streamed answer over `limits.max_response_bytes` is
//! refused while it is read (502 `upstream_response_too_large`, one attempt, breaker untouched)
//! without the gateway holding it, and a 100 MB stream is relayed whole with memory that stays
//! flat. The upstream writes its 100 MB on the fly, so neither side of the test holds them; the
//! gateway runs in this process, so its memory is this process's `VmRSS`.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::helpers::{ProviderSpec, TEST_MODEL, TestApp, assert_openai_error, chat_body, header, json, stream_body};

/// What the upstream sends for the big cases.
const HUGE: u64 = 100 * 1024 * 1024;
/// The model that gets a 100 MB chunked JSON body (no `Content-Length`).
const CHUNKED: &str = "huge-chunked";
/// The model that gets a 100 MB JSON body announced by its `Content-Length`.
const DECLARED: &str = "huge-declared";
/// Growth of this process's resident memory the 100 MB cases must stay under.
const MAX_GROWTH: u64 = 50 * 1024 * 1024;
/// Content of one piece of the generated bodies.
const PIECE: usize = 16 * 1024;

/// The memory tests measure this whole process: never two at once.
static MEASURING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A raw HTTP/1.1 upstream that generates its big bodies piece by piece as it writes them.
struct BigUpstream {
    base_url: String,
    /// Requests per kind: `[small, chunked, declared, stream]`.
    requests: Arc<[AtomicUsize; 4]>,
    /// SSE bytes written in the last stream's body (events only, not the HTTP chunk framing).
    sse_bytes: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for BigUpstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl BigUpstream {
    async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests: Arc<[AtomicUsize; 4]> = Arc::default();
        let sse_bytes = Arc::new(AtomicU64::new(0));
        let (r, s) = (requests.clone(), sse_bytes.clone());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                tokio::spawn(answer(socket, r.clone(), s.clone()));
            }
        });
        Self {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            requests,
            sse_bytes,
            task,
        }
    }

    fn count(&self, kind: usize) -> usize {
        self.requests[kind].load(Ordering::SeqCst)
    }
}

/// Reads one request and answers it by its model and `stream`; a write error (the gateway hung
/// up) ends the answer.
async fn answer(mut socket: TcpStream, requests: Arc<[AtomicUsize; 4]>, sse_bytes: Arc<AtomicU64>) {
    let Some(body) = read_request(&mut socket).await else {
        return;
    };
    let request: Value = serde_json::from_slice(&body).unwrap();
    let model = request["model"].as_str().unwrap_or_default();
    let _ = if request["stream"] == json!(true) {
        requests[3].fetch_add(1, Ordering::SeqCst);
        sse(&mut socket, &sse_bytes).await
    } else if model == CHUNKED {
        requests[1].fetch_add(1, Ordering::SeqCst);
        huge_json(&mut socket, false).await
    } else if model == DECLARED {
        requests[2].fetch_add(1, Ordering::SeqCst);
        huge_json(&mut socket, true).await
    } else {
        requests[0].fetch_add(1, Ordering::SeqCst);
        let body = completion_json("ok");
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        socket.write_all(&[head.as_bytes(), body.as_bytes()].concat()).await
    };
}

async fn read_request(socket: &mut TcpStream) -> Option<Vec<u8>> {
    let mut buf = Vec::new();
    let mut scratch = [0u8; 4096];
    let head_end = loop {
        let n = socket.read(&mut scratch).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&scratch[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .map_or(0, |v| v.trim().parse().unwrap());
    while buf.len() < head_end + length {
        let n = socket.read(&mut scratch).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&scratch[..n]);
    }
    Some(buf[head_end..head_end + length].to_vec())
}

fn completion_json(content: &str) -> String {
    json!({
        "id": "chatcmpl-big", "object": "chat.completion", "created": 1, "model": TEST_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    })
    .to_string()
}

/// A valid chat completion of exactly `HUGE` bytes whose content is `x`s, written `PIECE` by
/// `PIECE`: chunked, or with its `Content-Length` announced first.
async fn huge_json(socket: &mut TcpStream, declared: bool) -> std::io::Result<()> {
    let (start, end) = {
        let whole = completion_json("\u{0}");
        let (a, b) = whole.split_once("\\u0000").unwrap();
        (a.to_owned(), b.to_owned())
    };
    let head = if declared {
        format!("HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {HUGE}\r\n\r\n")
    } else {
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n".to_owned()
    };
    socket.write_all(head.as_bytes()).await?;
    let mut left = HUGE - (start.len() + end.len()) as u64;
    let filler = vec![b'x'; PIECE];
    let mut pieces = vec![start.into_bytes()];
    while left > 0 {
        let n = left.min(PIECE as u64) as usize;
        pieces.push(filler[..n].to_vec());
        left -= n as u64;
        for piece in pieces.drain(..) {
            write_piece(socket, &piece, !declared).await?;
        }
    }
    write_piece(socket, end.as_bytes(), !declared).await?;
    if !declared {
        socket.write_all(b"0\r\n\r\n").await?;
    }
    Ok(())
}

async fn write_piece(socket: &mut TcpStream, piece: &[u8], chunked: bool) -> std::io::Result<()> {
    if chunked {
        socket.write_all(format!("{:x}\r\n", piece.len()).as_bytes()).await?;
        socket.write_all(piece).await?;
        socket.write_all(b"\r\n").await
    } else {
        socket.write_all(piece).await
    }
}

/// At least `HUGE` bytes of chat chunk events (each one HTTP chunk), then the finish event and
/// `[DONE]`; `sse_bytes` ends up holding how many event bytes were written.
async fn sse(socket: &mut TcpStream, sse_bytes: &AtomicU64) -> std::io::Result<()> {
    let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n";
    socket.write_all(head.as_bytes()).await?;
    let text = "y".repeat(PIECE);
    let event = |delta: Value, finish: Value| {
        let chunk = json!({
            "id": "chatcmpl-big", "object": "chat.completion.chunk", "created": 1, "model": TEST_MODEL,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]
        });
        format!("data: {chunk}\n\n")
    };
    let content = event(json!({"content": text}), Value::Null);
    let mut written = 0u64;
    while written < HUGE {
        write_piece(socket, content.as_bytes(), true).await?;
        written += content.len() as u64;
    }
    let tail = event(json!({}), json!("stop")) + "data: [DONE]\n\n";
    write_piece(socket, tail.as_bytes(), true).await?;
    written += tail.len() as u64;
    sse_bytes.store(written, Ordering::SeqCst);
    socket.write_all(b"0\r\n\r\n").await
}

/// This process's resident memory, in bytes.
fn rss() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap();
    kb * 1024
}

/// Samples `rss()` every few milliseconds until dropped; `peak_growth` is the most it rose above
/// where it started.
struct RssWatch {
    start: u64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl RssWatch {
    fn start() -> Self {
        let start = rss();
        let peak = Arc::new(AtomicU64::new(start));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        // A thread of its own: it keeps sampling however busy the test's runtime is.
        std::thread::spawn(move || {
            while !s.load(Ordering::SeqCst) {
                p.fetch_max(rss(), Ordering::SeqCst);
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Self { start, peak, stop }
    }

    fn peak_growth(&self) -> u64 {
        self.peak.load(Ordering::SeqCst).saturating_sub(self.start)
    }
}

impl Drop for RssWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

async fn app(upstream: &BigUpstream) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("big", upstream.base_url.clone()).models(&[TEST_MODEL, CHUNKED, DECLARED]))
        // Retries allowed: the test shows an oversized answer is still asked for only once.
        .settings("routing: {max_retries: 2}")
        .spawn()
        .await
}

/// The 502 an oversized answer gets, with one upstream call made.
async fn assert_too_large(response: reqwest::Response) {
    assert_eq!(response.status(), 502);
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "1");
    let body = json(response).await;
    let error = assert_openai_error(&body);
    assert_eq!(error["type"], json!("server_error"));
    assert_eq!(error["code"], json!("upstream_response_too_large"));
    let message = error["message"].as_str().unwrap();
    assert!(
        message.contains("limits.max_response_bytes") && message.contains("33554432"),
        "{message}"
    );
}

/// The gateway still answers, and its breaker did not count the oversized answer.
async fn assert_still_serving(app: &TestApp, upstream: &BigUpstream) {
    let before = upstream.count(0);
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["choices"][0]["message"]["content"], json!("ok"));
    assert_eq!(upstream.count(0), before + 1);
    assert_eq!(app.breaker("big").await, "closed");
}

#[tokio::test]
async fn a_100_mb_chunked_answer_is_refused_while_read_with_bounded_memory() {
    // Arrange
    let _alone = MEASURING.lock().await;
    let upstream = BigUpstream::start().await;
    let app = app(&upstream).await;
    assert_still_serving(&app, &upstream).await;
    let watch = RssWatch::start();

    // Act
    let response = app.post_chat(&chat_body(CHUNKED)).await;

    // Assert: refused at the default 32 MiB, never retried, and never 100 MB held.
    assert_too_large(response).await;
    assert_eq!(upstream.count(1), 1, "an oversized answer is not asked for again");
    let growth = watch.peak_growth();
    assert!(growth < MAX_GROWTH, "resident memory grew by {growth} bytes");
    assert_still_serving(&app, &upstream).await;
}

#[tokio::test]
async fn a_100_mb_answer_announced_by_its_length_is_refused_before_reading() {
    // Arrange
    let _alone = MEASURING.lock().await;
    let upstream = BigUpstream::start().await;
    let app = app(&upstream).await;
    let watch = RssWatch::start();

    // Act
    let response = app.post_chat(&chat_body(DECLARED)).await;

    // Assert: its Content-Length alone decides; the little read before that is all it costs (the
    // bound is the other tests' one: the whole test process is measured, and other tests run).
    assert_too_large(response).await;
    assert_eq!(upstream.count(2), 1);
    let growth = watch.peak_growth();
    assert!(growth < MAX_GROWTH, "resident memory grew by {growth} bytes");
    assert_still_serving(&app, &upstream).await;
}

#[tokio::test]
async fn a_100_mb_stream_is_relayed_whole_with_bounded_memory() {
    // Arrange
    let _alone = MEASURING.lock().await;
    let upstream = BigUpstream::start().await;
    let app = app(&upstream).await;
    let watch = RssWatch::start();

    // Act: count the bytes as they arrive, keeping only the last few to check the ending.
    let response = app.post_chat(&stream_body(TEST_MODEL)).await;
    assert_eq!(response.status(), 200);
    let mut body = response.bytes_stream();
    let (mut received, mut tail) = (0u64, Vec::new());
    while let Some(chunk) = body.next().await {
        let chunk = chunk.unwrap();
        received += chunk.len() as u64;
        tail.extend_from_slice(&chunk);
        if tail.len() > 64 {
            tail.drain(..tail.len() - 64);
        }
    }

    // Assert: every byte arrived, in order up to `[DONE]`, and the gateway never held the stream.
    let sent = upstream.sse_bytes.load(Ordering::SeqCst);
    assert!(sent >= HUGE);
    assert_eq!(received, sent, "the client got exactly what the upstream sent");
    assert!(tail.ends_with(b"data: [DONE]\n\n"));
    let growth = watch.peak_growth();
    assert!(growth < MAX_GROWTH, "resident memory grew by {growth} bytes");
    assert_still_serving(&app, &upstream).await;
}

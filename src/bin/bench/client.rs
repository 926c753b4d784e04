//! The load generator's HTTP/1.1 client: one keep-alive TCP connection, requests written as
//! prebuilt bytes, responses parsed with httparse, `content-length` and chunked bodies (`wire`),
//! SSE events counted, the first one timed (time to first token), `[DONE]` noted.
//! No pool, no allocation per request beyond the read buffer's growth: its cost stays small
//! next to what it measures.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::wire::{ChunkedDecoder, SseScan};

/// How much of a response to read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// All of it.
    Full,
    /// Until the first SSE event, then drop the connection (a client that goes away).
    CancelAfterFirstEvent,
}

/// What one exchange came to.
#[derive(Clone, Copy, Debug)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Request written → response complete (or cancelled).
    pub latency: Duration,
    /// Request written → first SSE event, for streams.
    pub ttft: Option<Duration>,
    /// SSE events seen.
    pub events: u32,
    /// A `data: [DONE]` event was seen.
    pub done: bool,
    /// A `data: {"error"` event was seen.
    pub error_event: bool,
}

impl Reply {
    /// 200, and for streams a `[DONE]` with no error event.
    pub fn ok(&self, stream: bool) -> bool {
        self.status == 200 && (!stream || (self.done && !self.error_event))
    }
}

/// `POST path` with a JSON body, an optional bearer key and an optional `x-request-id`.
pub fn request(addr: SocketAddr, path: &str, key: Option<&str>, body: &[u8]) -> Vec<u8> {
    request_with_id(addr, path, key, None, body)
}

/// As `request`, naming the request id.
pub fn request_with_id(addr: SocketAddr, path: &str, key: Option<&str>, id: Option<&str>, body: &[u8]) -> Vec<u8> {
    let id = id.map(|id| ("x-request-id", id));
    request_with_headers(addr, path, key, id.as_slice(), body)
}

/// As `request`, with more headers.
pub fn request_with_headers(
    addr: SocketAddr,
    path: &str,
    key: Option<&str>,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Vec<u8> {
    let mut head = format!("POST {path} HTTP/1.1\r\nhost: {addr}\r\ncontent-type: application/json\r\n");
    if let Some(key) = key {
        head.push_str(&format!("authorization: Bearer {key}\r\n"));
    }
    for (name, value) in headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));
    let mut out = head.into_bytes();
    out.extend_from_slice(body);
    out
}

/// `GET path`.
pub fn get(addr: SocketAddr, path: &str) -> Vec<u8> {
    format!("GET {path} HTTP/1.1\r\nhost: {addr}\r\n\r\n").into_bytes()
}

/// One keep-alive connection, reopened after an error or a `connection: close`.
pub struct Conn {
    addr: SocketAddr,
    socket: Option<TcpStream>,
    buf: BytesMut,
    /// Told the time to first event of each stream as soon as it arrives (open-streams).
    pub on_first_event: Option<tokio::sync::mpsc::UnboundedSender<Duration>>,
}

impl Conn {
    /// Not connected yet.
    pub fn new(addr: SocketAddr) -> Self {
        Self {
            addr,
            socket: None,
            buf: BytesMut::with_capacity(16 * 1024),
            on_first_event: None,
        }
    }

    /// Writes `req` and reads the answer; any I/O or protocol error closes the connection.
    pub async fn exchange(&mut self, req: &[u8], mode: Mode) -> Result<Reply, String> {
        let result = self.exchange_inner(req, mode, None).await;
        if result.is_err() || mode == Mode::CancelAfterFirstEvent {
            self.socket = None;
        }
        result
    }

    /// As `exchange`, appending the body to `body`.
    pub async fn exchange_body(&mut self, req: &[u8], body: &mut Vec<u8>) -> Result<Reply, String> {
        let result = self.exchange_inner(req, Mode::Full, Some(body)).await;
        if result.is_err() {
            self.socket = None;
        }
        result
    }

    async fn exchange_inner(
        &mut self,
        req: &[u8],
        mode: Mode,
        mut keep: Option<&mut Vec<u8>>,
    ) -> Result<Reply, String> {
        if self.socket.is_none() {
            let socket = TcpStream::connect(self.addr)
                .await
                .map_err(|e| format!("connect: {e}"))?;
            let _ = socket.set_nodelay(true);
            self.socket = Some(socket);
            self.buf.clear();
        }
        let Some(socket) = self.socket.as_mut() else {
            return Err("not connected".into());
        };
        let started = Instant::now();
        socket.write_all(req).await.map_err(|e| format!("write: {e}"))?;
        let (status, head_len, body, close) = loop {
            if let Some(head) = parse_head(&self.buf)? {
                break head;
            }
            fill(socket, &mut self.buf).await?;
        };
        self.buf.advance(head_len);
        let mut reply = Reply {
            status,
            latency: Duration::ZERO,
            ttft: None,
            events: 0,
            done: false,
            error_event: false,
        };
        let mut scan = SseScan::default();
        match body {
            BodyKind::Length(len) => {
                while self.buf.len() < len {
                    fill(socket, &mut self.buf).await?;
                }
                if let Some(keep) = keep.as_mut() {
                    keep.extend_from_slice(&self.buf[..len]);
                }
                self.buf.advance(len);
            }
            BodyKind::Chunked => {
                let mut decoder = ChunkedDecoder::default();
                loop {
                    let (used, finished) = decoder.feed(&self.buf, |data| {
                        scan.feed(data);
                        if let Some(keep) = keep.as_mut() {
                            keep.extend_from_slice(data);
                        }
                    })?;
                    self.buf.advance(used);
                    if reply.ttft.is_none() && scan.events > 0 {
                        let ttft = started.elapsed();
                        reply.ttft = Some(ttft);
                        if let Some(tx) = &self.on_first_event {
                            let _ = tx.send(ttft);
                        }
                        if mode == Mode::CancelAfterFirstEvent {
                            break;
                        }
                    }
                    if finished {
                        break;
                    }
                    fill(socket, &mut self.buf).await?;
                }
            }
        }
        reply.latency = started.elapsed();
        (reply.events, reply.done, reply.error_event) = (scan.events, scan.done, scan.error);
        if close {
            self.socket = None;
        }
        Ok(reply)
    }
}

async fn fill(socket: &mut TcpStream, buf: &mut BytesMut) -> Result<(), String> {
    if buf.capacity() - buf.len() < 4096 {
        buf.reserve(16 * 1024);
    }
    match socket.read_buf(buf).await {
        Ok(0) => Err("connection closed by the server".into()),
        Ok(_) => Ok(()),
        Err(e) => Err(format!("read: {e}")),
    }
}

enum BodyKind {
    Length(usize),
    Chunked,
}

fn parse_head(buf: &[u8]) -> Result<Option<(u16, usize, BodyKind, bool)>, String> {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut res = httparse::Response::new(&mut headers);
    let head_len = match res.parse(buf) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(format!("bad response head: {e}")),
    };
    let mut body = BodyKind::Length(0);
    let mut close = false;
    for h in res.headers.iter() {
        if h.name.eq_ignore_ascii_case("content-length") {
            let len = std::str::from_utf8(h.value).ok().and_then(|v| v.trim().parse().ok());
            body = BodyKind::Length(len.ok_or("bad content-length")?);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") && h.value.eq_ignore_ascii_case(b"chunked") {
            body = BodyKind::Chunked;
        } else if h.name.eq_ignore_ascii_case("connection") && h.value.eq_ignore_ascii_case(b"close") {
            close = true;
        }
    }
    Ok(Some((res.code.unwrap_or(0), head_len, body, close)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_carry_length_key_and_id() {
        let addr = SocketAddr::from(([127, 0, 0, 1], 9));
        let req = request_with_id(addr, "/v1/x", Some("k"), Some("r1"), b"{}");
        let text = String::from_utf8(req).unwrap();
        assert!(text.starts_with("POST /v1/x HTTP/1.1\r\nhost: 127.0.0.1:9\r\n"));
        assert!(text.contains("authorization: Bearer k\r\nx-request-id: r1\r\ncontent-length: 2\r\n\r\n{}"));
    }
}

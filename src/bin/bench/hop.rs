//! The yardstick: a bare reverse proxy hop in front of the mock, which the gateway's figures are
//! read against. It does what any HTTP/1.1 reverse proxy must do and nothing more: a hyper server
//! takes each request, a pooled keep-alive hyper client sends it on to the mock, and both bodies
//! stream through frame by frame without being read, parsed or buffered whole. Hop-by-hop headers
//! are dropped both ways, as RFC 9110 §7.6.1 asks of a proxy; everything else passes unchanged.
//!
//! It runs as a child process (`bench hop`, a hidden subcommand of this binary), so its CPU time
//! and memory come from `/proc` exactly as the gateway's do, and on a tokio runtime with as many
//! worker threads as the gateway has actix workers (both default to the available cores).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName};
use hyper::http::uri::{Authority, Scheme};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::process::{Child, Command};

use crate::client::{Conn, Mode, get};
use crate::procfs::Proc;

type Upstream = Client<HttpConnector, Incoming>;
type Body = Either<Incoming, Full<Bytes>>;

/// Headers that belong to one connection, not to the message (RFC 9110 §7.6.1).
static HOP_BY_HOP: [HeaderName; 6] = [
    header::CONNECTION,
    HeaderName::from_static("keep-alive"),
    HeaderName::from_static("proxy-connection"),
    header::TE,
    header::TRAILER,
    header::UPGRADE,
];

/// Serves on `listener`, forwarding every request to `upstream`, until the process ends.
pub async fn serve(listener: TcpListener, upstream: SocketAddr) -> std::io::Result<()> {
    let authority = Authority::try_from(upstream.to_string())
        .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    let client: Upstream = Client::builder(TokioExecutor::new()).build(connector);
    loop {
        let socket = match listener.accept().await {
            Ok((socket, _)) => socket,
            // Out of descriptors: wait for some to close rather than spin.
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
        };
        let _ = socket.set_nodelay(true);
        let (client, authority) = (client.clone(), authority.clone());
        tokio::spawn(async move {
            let service = service_fn(move |req| forward(client.clone(), authority.clone(), req));
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(socket), service)
                .await;
        });
    }
}

async fn forward(
    client: Upstream,
    authority: Authority,
    mut req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    let mut target = std::mem::take(req.uri_mut()).into_parts();
    target.scheme = Some(Scheme::HTTP);
    target.authority = Some(authority);
    let Ok(uri) = Uri::from_parts(target) else {
        return Ok(bad_gateway());
    };
    *req.uri_mut() = uri;
    strip_hop_by_hop(req.headers_mut());
    match client.request(req).await {
        Ok(answer) => {
            let (mut parts, body) = answer.into_parts();
            strip_hop_by_hop(&mut parts.headers);
            Ok(Response::from_parts(parts, Either::Left(body)))
        }
        Err(_) => Ok(bad_gateway()),
    }
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    for name in &HOP_BY_HOP {
        headers.remove(name);
    }
}

fn bad_gateway() -> Response<Body> {
    let mut answer = Response::new(Either::Right(Full::new(Bytes::from_static(b"upstream unreachable"))));
    *answer.status_mut() = StatusCode::BAD_GATEWAY;
    answer
}

/// A running hop.
pub struct Hop {
    child: Child,
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its `/proc` entries.
    pub proc: Proc,
}

impl Hop {
    /// Starts `exe hop` in front of the mock on `upstream_port` and waits until a request passes
    /// through it (10 s at most).
    pub async fn start(exe: &Path, upstream_port: u16) -> Result<Self, String> {
        let addr = crate::gateway::free_port()?;
        let child = Command::new(exe)
            .arg("hop")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--upstream")
            .arg(SocketAddr::from(([127, 0, 0, 1], upstream_port)).to_string())
            // As the gateway's: nothing from the caller's shell (TOKIO_WORKER_THREADS, say).
            .env_clear()
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start {} hop: {e}", exe.display()))?;
        let pid = child.id().ok_or("the hop exited at once")?;
        let mut hop = Self {
            child,
            addr,
            proc: Proc::new(pid),
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        // The mock answers 404 here: any answer means the hop listens and reaches it.
        let probe = get(addr, "/ready");
        while Instant::now() < deadline {
            if let Ok(Some(status)) = hop.child.try_wait() {
                return Err(format!("the hop exited ({status})"));
            }
            if Conn::new(addr).exchange(&probe, Mode::Full).await.is_ok() {
                return Ok(hop);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Err("the hop did not answer within 10 s".into())
    }

    /// Ends it (nothing to flush).
    pub async fn stop(mut self) -> String {
        match self.child.kill().await {
            Ok(()) => "hop stopped".into(),
            Err(e) => format!("hop: {e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use http_body_util::BodyExt;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::sync::mpsc;

    use super::*;
    use crate::client::request;
    use crate::mock::Mock;

    async fn hop_in_front_of(upstream: SocketAddr) -> SocketAddr {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, upstream));
        addr
    }

    #[tokio::test]
    async fn json_and_streams_from_the_mock_arrive_as_they_would_directly() {
        let mock = Mock::start().await.unwrap();
        mock.set_stream(5, Duration::ZERO);
        let direct = SocketAddr::from(([127, 0, 0, 1], mock.port));
        let hop = hop_in_front_of(direct).await;
        for stream in [false, true] {
            let body = crate::scenarios::body("m", stream);
            let (mut via_direct, mut via_hop) = (Vec::new(), Vec::new());
            let a = Conn::new(direct)
                .exchange_body(&request(direct, "/v1/chat/completions", None, &body), &mut via_direct)
                .await
                .unwrap();
            let mut conn = Conn::new(hop);
            let b = conn
                .exchange_body(&request(hop, "/v1/chat/completions", Some("k"), &body), &mut via_hop)
                .await
                .unwrap();
            assert_eq!((a.status, a.events), (b.status, b.events));
            assert_eq!(via_direct, via_hop, "the body passes unchanged");
            let again = conn
                .exchange(&request(hop, "/v1/chat/completions", None, &body), Mode::Full)
                .await
                .unwrap();
            assert!(again.ok(stream), "the client connection is kept alive");
        }
    }

    /// An upstream that records the request and answers with chunks it sends one at a time, each
    /// only once the test says so.
    async fn stepped_upstream(
        chunks: &'static [&'static [u8]],
    ) -> (SocketAddr, mpsc::UnboundedReceiver<Vec<u8>>, mpsc::UnboundedSender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (seen_tx, seen) = mpsc::unbounded_channel();
        let (step, mut steps) = mpsc::unbounded_channel::<()>();
        tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            // The request's body is 11 bytes, after the head.
            while !got.windows(4).any(|w| w == b"\r\n\r\n") || !got.ends_with(b"hello, hop!") {
                let n = socket.read(&mut buf).await.unwrap();
                assert!(n > 0);
                got.extend_from_slice(&buf[..n]);
            }
            seen_tx.send(got).unwrap();
            socket
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nx-upstream: yes\r\nconnection: keep-alive\r\ntransfer-encoding: chunked\r\n\r\n")
                .await
                .unwrap();
            for chunk in chunks {
                steps.recv().await.unwrap();
                let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), chunk, b"\r\n"].concat();
                socket.write_all(&framed).await.unwrap();
            }
            steps.recv().await.unwrap();
            socket.write_all(b"0\r\n\r\n").await.unwrap();
            let _ = socket.read(&mut buf).await;
        });
        (addr, seen, step)
    }

    #[tokio::test]
    async fn a_streamed_response_passes_chunk_by_chunk_and_the_request_unchanged() {
        const CHUNKS: &[&[u8]] = &[b"data: one\n\n", b"data: two\n\n", b"data: [DONE]\n\n"];
        let (upstream, mut seen, step) = stepped_upstream(CHUNKS).await;
        let hop = hop_in_front_of(upstream).await;
        let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
        let req = Request::post(format!("http://{hop}/v1/chat/completions?x=1"))
            .header("authorization", "Bearer k")
            .header("connection", "keep-alive")
            .body(Full::new(Bytes::from_static(b"hello, hop!")))
            .unwrap();
        let answering = tokio::spawn(client.request(req));
        let forwarded = String::from_utf8(seen.recv().await.unwrap()).unwrap();
        assert!(
            forwarded.starts_with("POST /v1/chat/completions?x=1 HTTP/1.1\r\n"),
            "{forwarded}"
        );
        assert!(forwarded.contains("authorization: Bearer k\r\n"), "{forwarded}");
        assert!(!forwarded.to_ascii_lowercase().contains("connection:"), "{forwarded}");
        assert!(forwarded.ends_with("\r\n\r\nhello, hop!"), "{forwarded}");
        step.send(()).unwrap();
        let answer = answering.await.unwrap().unwrap();
        assert_eq!(answer.status(), 200);
        assert_eq!(answer.headers()["x-upstream"], "yes");
        assert!(answer.headers().get("connection").is_none());
        let mut body = answer.into_body();
        for chunk in CHUNKS {
            // The next chunk leaves the upstream only after this one reached the client.
            let frame = tokio::time::timeout(Duration::from_secs(5), body.frame())
                .await
                .expect("the chunk arrives before the next is sent")
                .unwrap()
                .unwrap();
            assert_eq!(frame.into_data().unwrap(), Bytes::from_static(chunk));
            step.send(()).unwrap();
        }
        assert!(body.frame().await.is_none(), "the body ends with the upstream's");
    }

    #[tokio::test]
    async fn an_unreachable_upstream_is_a_502() {
        let closed = crate::gateway::free_port().unwrap();
        let hop = hop_in_front_of(closed).await;
        let reply = Conn::new(hop).exchange(&get(hop, "/x"), Mode::Full).await.unwrap();
        assert_eq!(reply.status, 502);
    }
}

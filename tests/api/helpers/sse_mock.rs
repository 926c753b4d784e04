//! `SseMock`: a tiny hand-written HTTP/1.1 upstream on a random port whose response body is sent
//! a piece at a time, on command.
//!
//! wiremock writes whole bodies at once, so it cannot show that the gateway relays a stream
//! without buffering it, nor break a stream half-way. Here each accepted request becomes a
//! `Connection` the test drives: response headers go out at once (200, chunked, `connection:
//! close`), then every `send_*` call writes one HTTP chunk, `finish` ends the body cleanly, `cut`
//! drops the socket mid-body, and `closed()` resolves once the gateway hangs up. A stall is simply
//! sending nothing.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Mutex, mpsc, watch};

/// How long a test waits for the gateway to call a mock before failing loudly.
const CONNECT_WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone)]
enum Command {
    /// One HTTP chunk.
    Chunk(Bytes),
    /// The terminating chunk: a complete body.
    Finish,
    /// Drop the socket mid-body.
    Cut,
}

/// A request the mock received.
#[derive(Debug, Clone)]
pub struct Received {
    /// Request line target, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, String)>,
    /// The body bytes.
    pub body: Vec<u8>,
}

impl Received {
    /// A header's value, if sent.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One upstream request in progress; its response body is written on command.
#[derive(Debug)]
pub struct Connection {
    /// What the gateway sent.
    pub request: Received,
    commands: mpsc::UnboundedSender<Command>,
    closed: watch::Receiver<bool>,
}

impl Connection {
    /// Sends `data: <json>\n\n` as one chunk.
    pub fn send_event(&self, json: &str) {
        self.send_raw(format!("data: {json}\n\n"));
    }

    /// Sends `data: [DONE]\n\n` as one chunk.
    pub fn send_done(&self) {
        self.send_raw("data: [DONE]\n\n");
    }

    /// Sends these bytes as one chunk.
    pub fn send_raw(&self, bytes: impl Into<Bytes>) {
        self.command(Command::Chunk(bytes.into()));
    }

    /// Ends the body cleanly (terminating chunk), whatever was sent before.
    pub fn finish(&self) {
        self.command(Command::Finish);
    }

    /// Drops the connection mid-body, as a crashed upstream would.
    pub fn cut(&self) {
        self.command(Command::Cut);
    }

    /// Resolves once the gateway has closed its side of the connection; panics after 10 s.
    pub async fn closed(&self) {
        let mut closed = self.closed.clone();
        tokio::time::timeout(CONNECT_WAIT, closed.wait_for(|c| *c))
            .await
            .expect("the gateway never closed the upstream connection")
            .expect("mock connection task ended");
    }

    /// Whether the gateway has closed its side yet.
    pub fn is_closed(&self) -> bool {
        *self.closed.borrow()
    }

    fn command(&self, command: Command) {
        // After the connection is gone, commands have nowhere to go; that is what a test about a
        // vanished peer wants.
        let _ = self.commands.send(command);
    }
}

/// A streaming upstream on `127.0.0.1:<random port>`.
#[derive(Debug)]
pub struct SseMock {
    base_url: String,
    accepted: Arc<AtomicUsize>,
    connections: Mutex<mpsc::UnboundedReceiver<Connection>>,
    autoplay: Arc<Mutex<Option<Vec<Command>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for SseMock {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl SseMock {
    /// Starts an upstream answering `text/event-stream`.
    pub async fn start() -> Self {
        Self::start_with_content_type("text/event-stream").await
    }

    /// Starts an upstream whose held-back body has this content type (e.g. a JSON reply that
    /// arrives only when the test says so).
    pub async fn start_with_content_type(content_type: &'static str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind SSE mock");
        let port = listener.local_addr().expect("SSE mock address").port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let autoplay: Arc<Mutex<Option<Vec<Command>>>> = Arc::default();
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(accept_loop(
            listener,
            content_type,
            accepted.clone(),
            autoplay.clone(),
            tx,
        ));
        Self {
            base_url: format!("http://127.0.0.1:{port}/v1"),
            accepted,
            connections: Mutex::new(rx),
            autoplay,
            task,
        }
    }

    /// `http://127.0.0.1:PORT/v1`, the provider's `base_url`.
    pub fn base_url(&self) -> String {
        self.base_url.clone()
    }

    /// `http://127.0.0.1:PORT`, the `base_url` of a provider whose paths start at the host root
    /// (Anthropic's `/v1/messages`).
    pub fn root_url(&self) -> String {
        self.base_url.trim_end_matches("/v1").to_owned()
    }

    /// Requests received so far.
    pub fn requests(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The next request the gateway makes; panics if none arrives within 10 s.
    pub async fn next_connection(&self) -> Connection {
        let mut connections = self.connections.lock().await;
        tokio::time::timeout(CONNECT_WAIT, connections.recv())
            .await
            .expect("the gateway never called the SSE mock")
            .expect("SSE mock accept loop ended")
    }

    /// From now on, every new connection immediately gets these raw chunks and then a clean end.
    pub async fn autoplay_raw(&self, chunks: Vec<String>) {
        let mut script: Vec<Command> = chunks.into_iter().map(|c| Command::Chunk(Bytes::from(c))).collect();
        script.push(Command::Finish);
        *self.autoplay.lock().await = Some(script);
    }
}

async fn accept_loop(
    listener: TcpListener,
    content_type: &'static str,
    accepted: Arc<AtomicUsize>,
    autoplay: Arc<Mutex<Option<Vec<Command>>>>,
    connections: mpsc::UnboundedSender<Connection>,
) {
    while let Ok((stream, _)) = listener.accept().await {
        let script = autoplay.lock().await.clone();
        let accepted = accepted.clone();
        let connections = connections.clone();
        tokio::spawn(async move {
            let _ = stream.set_nodelay(true);
            let (mut reader, mut writer) = stream.into_split();
            let Some(request) = read_request(&mut reader).await else {
                return;
            };
            accepted.fetch_add(1, Ordering::SeqCst);
            let head = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: {content_type}\r\ncache-control: no-cache\r\n\
                 transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
            );
            if writer.write_all(head.as_bytes()).await.is_err() {
                return;
            }
            let (commands, queue) = mpsc::unbounded_channel();
            for command in script.into_iter().flatten() {
                let _ = commands.send(command);
            }
            let (closed_tx, closed) = watch::channel(false);
            let _ = connections.send(Connection {
                request,
                commands,
                closed,
            });
            serve(reader, writer, queue).await;
            let _ = closed_tx.send(true);
            // Keep the watch alive for late `closed()` callers until every receiver is gone.
            closed_tx.closed().await;
        });
    }
}

/// Writes commanded chunks until the body ends, the test cuts it, or the gateway hangs up.
async fn serve(mut reader: OwnedReadHalf, mut writer: OwnedWriteHalf, mut queue: mpsc::UnboundedReceiver<Command>) {
    let mut scratch = [0u8; 1024];
    let mut finished = false;
    loop {
        tokio::select! {
            command = queue.recv(), if !finished => match command {
                Some(Command::Chunk(bytes)) => {
                    let mut frame = format!("{:x}\r\n", bytes.len()).into_bytes();
                    frame.extend_from_slice(&bytes);
                    frame.extend_from_slice(b"\r\n");
                    if writer.write_all(&frame).await.is_err() || writer.flush().await.is_err() {
                        return;
                    }
                }
                Some(Command::Finish) => {
                    finished = true;
                    if writer.write_all(b"0\r\n\r\n").await.is_err() || writer.shutdown().await.is_err() {
                        return;
                    }
                }
                // A cut: both halves drop here, mid-body. A test that drops its handle without
                // ending the body leaves the stream stalled until the gateway hangs up.
                Some(Command::Cut) => return,
                None => finished = true,
            },
            read = reader.read(&mut scratch) => match read {
                // The gateway closed (or reset) its side.
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
        }
    }
}

/// Reads one request: head up to the blank line, then a `content-length` body.
async fn read_request(reader: &mut OwnedReadHalf) -> Option<Received> {
    let mut buf = Vec::new();
    let mut scratch = [0u8; 4096];
    let head_end = loop {
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at;
        }
        let n = reader.read(&mut scratch).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&scratch[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let path = lines.next()?.split(' ').nth(1)?.to_owned();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end + 4..].to_vec();
    while body.len() < length {
        let n = reader.read(&mut scratch).await.ok()?;
        if n == 0 {
            return None;
        }
        body.extend_from_slice(&scratch[..n]);
    }
    Some(Received { path, headers, body })
}

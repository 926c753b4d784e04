//! `SseReader`: reads a gateway's `text/event-stream` body event by event as the bytes arrive
//! (reqwest's `bytes_stream`), so a test can act between two events.

use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use serde_json::Value;

/// How long a test waits for the next event before failing loudly.
const EVENT_WAIT: Duration = Duration::from_secs(10);

type ByteStream = Pin<Box<dyn Stream<Item = reqwest::Result<Bytes>> + Send>>;

/// The client side of a streamed response.
pub struct SseReader {
    body: ByteStream,
    buffer: Vec<u8>,
}

impl SseReader {
    /// Starts reading `response`'s body.
    pub fn new(response: reqwest::Response) -> Self {
        Self {
            body: Box::pin(response.bytes_stream()),
            buffer: Vec::new(),
        }
    }

    /// The next event's `data` (lines joined by `\n`); `None` when the body ended. Events without
    /// data (comments, keep-alives) are skipped. Panics if nothing arrives within 10 s.
    pub async fn next_data(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let event: Vec<u8> = self.buffer.drain(..end + 2).collect();
                if let Some(data) = data_of(&event) {
                    return Some(data);
                }
                continue;
            }
            let next = tokio::time::timeout(EVENT_WAIT, self.body.next())
                .await
                .expect("no SSE event from the gateway within 10 s");
            match next {
                Some(Ok(bytes)) => self.buffer.extend_from_slice(&bytes),
                Some(Err(e)) => panic!("the gateway's SSE body failed: {e}"),
                None => {
                    assert!(
                        self.buffer.iter().all(u8::is_ascii_whitespace),
                        "body ended inside an event: {:?}",
                        String::from_utf8_lossy(&self.buffer)
                    );
                    return None;
                }
            }
        }
    }

    /// The next event's data parsed as JSON; panics at the end of the body or on `[DONE]`.
    pub async fn next_json(&mut self) -> Value {
        let data = self.next_data().await.expect("the stream ended early");
        serde_json::from_str(&data).unwrap_or_else(|e| panic!("event data `{data}` is not JSON: {e}"))
    }

    /// Every remaining event's data, until the body ends.
    pub async fn rest(mut self) -> Vec<String> {
        let mut all = Vec::new();
        while let Some(data) = self.next_data().await {
            all.push(data);
        }
        all
    }
}

fn data_of(event: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(event);
    let lines: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("data:"))
        .map(|rest| rest.strip_prefix(' ').unwrap_or(rest))
        .collect();
    (!lines.is_empty()).then(|| lines.join("\n"))
}

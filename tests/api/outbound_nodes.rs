//! Node answers are read with a size cap: a node whose health endpoint sends an endless body is
//! refused after `MAX_ANSWER_BYTES` instead of being read into memory until the timeout.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::TestApp;

/// A node answering `200` with a chunked body that never ends: to every request, or with
/// `healthy_gets` only to `POST`s (its `GET /health` is a small GPU worker answer); records the
/// most bytes any one endless answer got out.
pub async fn endless_node(healthy_gets: bool) -> (String, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let sent = Arc::new(AtomicUsize::new(0));
    let counter = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut head = [0u8; 4096];
                let n = socket.read(&mut head).await.unwrap_or(0);
                if healthy_gets && !head[..n].starts_with(b"POST") {
                    let health = br#"{"busy": false, "model": "m", "queue": 0}"#;
                    let answer = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                        health.len()
                    );
                    let _ = socket.write_all(answer.as_bytes()).await;
                    let _ = socket.write_all(health).await;
                    return;
                }
                let start = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n";
                if socket.write_all(start).await.is_err() {
                    return;
                }
                let mut chunk = b"10000\r\n".to_vec();
                chunk.extend(std::iter::repeat_n(b' ', 0x10000));
                chunk.extend_from_slice(b"\r\n");
                // Stops at 1 GiB (or when the gateway hangs up).
                let mut this_answer = 0;
                for _ in 0..16_384 {
                    if socket.write_all(&chunk).await.is_err() {
                        return;
                    }
                    this_answer += 0x10000;
                    counter.fetch_max(this_answer, Ordering::Relaxed);
                }
            });
        }
    });
    (url, sent)
}

#[tokio::test]
async fn an_endless_health_answer_is_cut_at_the_cap() {
    // Arrange
    let (node, sent) = endless_node(false).await;

    // Act: a few health rounds with a generous timeout.
    let app = TestApp::builder()
        .env("AI_NODES", &node)
        .settings("nodes: {health_interval_seconds: 0.5, health_timeout_seconds: 3}")
        .spawn()
        .await;
    tokio::time::sleep(Duration::from_secs(3)).await;

    // Assert: each answer was cut soon after the 4 MiB cap (the TCP buffers take a few MiB more);
    // without the cap the gateway reads until the 3 s timeout.
    let most = sent.load(Ordering::Relaxed);
    assert!(most > 0, "the node was never probed");
    assert!(
        most < 32 * 1024 * 1024,
        "{} MiB of one answer read from the node",
        most / (1024 * 1024)
    );
    drop(app);
}

#[tokio::test]
async fn an_endless_worker_answer_is_cut_at_max_response_bytes() {
    // Arrange: one worker node; answers above 1 MiB are refused.
    let (node, sent) = endless_node(true).await;
    let app = TestApp::builder()
        .env("AI_NODES", &node)
        .settings("nodes: {runtime: worker, health_interval_seconds: 0.5}")
        .settings("limits: {max_response_bytes: 1048576}")
        .settings("routing: {max_retries: 0}")
        .spawn()
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while app.health().await["nodes"][0]["online"] != serde_json::json!(true) {
        assert!(tokio::time::Instant::now() < deadline, "the worker never came online");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Act
    let response = app
        .post_json("/generate", &serde_json::json!({"model": "m", "prompt": "x"}))
        .await;

    // Assert: a failed attempt, not a 1 GiB read.
    assert_eq!(response.status(), 502);
    let most = sent.load(Ordering::Relaxed);
    assert!(
        most < 32 * 1024 * 1024,
        "{} MiB of one answer read from the node",
        most / (1024 * 1024)
    );
}

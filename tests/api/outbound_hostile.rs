//! Hostile upstreams beyond the list: an endless model list, huge response headers.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::{ProviderSpec, TEST_MODEL, TestApp, chat_body};
use crate::outbound_nodes::endless_node;

#[tokio::test]
async fn an_endless_upstream_model_list_is_cut_at_the_cap() {
    // Arrange: a provider serving any model, so `/v1/models` asks it for its list.
    let (upstream, sent) = endless_node(false).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("open", format!("{upstream}/v1")).models(&["*"]))
        .spawn()
        .await;

    // Act
    let response = app.get("/v1/models").await;

    // Assert: answered, and the list was refused soon after 8 MiB (not read for the 5 s timeout).
    assert_eq!(response.status(), 200);
    let most = sent.load(Ordering::Relaxed);
    assert!(most > 0, "the upstream was never asked");
    assert!(most < 40 * 1024 * 1024, "{} MiB of the list read", most / (1024 * 1024));
}

#[tokio::test]
async fn an_upstream_with_a_huge_header_is_a_failed_attempt_not_a_hang() {
    // Arrange: an upstream whose answer head carries a 2 MiB header.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/v1", listener.local_addr().expect("address"));
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut head = [0u8; 8192];
                let _ = socket.read(&mut head).await;
                let mut answer = b"HTTP/1.1 200 OK\r\nx-junk: ".to_vec();
                answer.extend(std::iter::repeat_n(b'a', 2 * 1024 * 1024));
                answer.extend_from_slice(b"\r\ncontent-length: 2\r\n\r\n{}");
                let _ = socket.write_all(&answer).await;
            });
        }
    });
    let app = TestApp::builder()
        .provider(ProviderSpec::new("junk", url))
        .spawn()
        .await;

    // Act
    let started = Instant::now();
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 502);
    assert!(started.elapsed() < Duration::from_secs(5), "{:?}", started.elapsed());
}

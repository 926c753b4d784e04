//! Webhook deliveries are limited per receiver: one receiver that accepts connections and never
//! answers cannot take every dispatcher slot, so a healthy receiver still gets its events promptly.

use std::time::Duration;

use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ProviderSpec, TEST_MODEL, TestApp, chat_body, completion, received, upstream_url};

/// A receiver that accepts connections and reads nothing back: every delivery waits for the
/// webhook timeout.
async fn blackhole() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    (url, task)
}

#[tokio::test]
async fn a_hanging_receiver_does_not_delay_a_healthy_one() {
    // Arrange
    let (dead, _hold) = blackhole().await;
    let live = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200))
        .mount(&live)
        .await;
    let alpha = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(completion())
        .mount(&alpha)
        .await;
    let settings = format!(
        "{{routes: [{{name: dead, targets: ['alpha:{TEST_MODEL}'], callback: '{dead}/hook'}}, {{name: live, targets: ['alpha:{TEST_MODEL}'], callback: '{}/hook'}}], webhooks: {{timeout_seconds: 20, max_retries: 0}}}}",
        live.uri()
    );
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(&settings)
        .spawn()
        .await;

    // Act: more events for the dead receiver than the dispatcher has slots, then one live one.
    for _ in 0..12 {
        assert_eq!(app.post_chat(&chat_body("dead")).await.status(), 200);
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(app.post_chat(&chat_body("live")).await.status(), 200);
    let sent = tokio::time::Instant::now();
    while received(&live).await.is_empty() {
        assert!(
            sent.elapsed() < Duration::from_secs(3),
            "the healthy receiver's event waited behind the hanging receiver's"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Assert
    assert_eq!(received(&live).await.len(), 1);
}

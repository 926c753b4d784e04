//! Outbound redirects (security issue, item 2): no upstream, node, path-route or webhook call
//! follows a 3xx. Each test points the gateway at a server answering every request with
//! `307 Location: <capture>`, where the capture server listens on another loopback address
//! (127.0.0.2), and asserts that the capture server never saw a request, so neither the
//! provider's key nor the prompt left for the host the redirect names.

use std::time::Duration;

use serde_json::json;
use wiremock::matchers::any;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    ProviderSpec, TEST_MODEL, TestApp, assert_openai_error, chat_body, completion, json, mount_chat, received,
    upstream_url,
};

/// A server on 127.0.0.2 that answers everything 200 and records what reached it.
async fn capture() -> MockServer {
    let listener = std::net::TcpListener::bind("127.0.0.2:0").expect("bind 127.0.0.2 (loopback)");
    let server = MockServer::builder().listener(listener).start().await;
    Mock::given(any()).respond_with(completion()).mount(&server).await;
    server
}

/// A server on 127.0.0.1 that answers every request with `307` to `target`'s `/steal`.
async fn redirecting_to(target: &MockServer) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(any())
        .respond_with(ResponseTemplate::new(307).insert_header("location", format!("{}/steal", target.uri()).as_str()))
        .mount(&server)
        .await;
    server
}

async fn assert_nothing_captured(capture: &MockServer) {
    let seen = received(capture).await;
    assert!(
        seen.is_empty(),
        "the redirect was followed: {:?}",
        seen.iter()
            .map(|r| (
                r.url.to_string(),
                r.headers.keys().map(|k| k.to_string()).collect::<Vec<_>>()
            ))
            .collect::<Vec<_>>()
    );
}

/// A chat call through a provider of `kind` whose upstream redirects: 502 naming the redirect,
/// and the capture server saw nothing.
async fn chat_through_redirecting(kind: &str) {
    // Arrange
    let capture = capture().await;
    let upstream = redirecting_to(&capture).await;
    let base = if kind == "openai" {
        upstream_url(&upstream)
    } else {
        upstream.uri()
    };
    let app = TestApp::builder()
        .provider(ProviderSpec::new("evil", base).kind(kind))
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_nothing_captured(&capture).await;
    assert_eq!(response.status(), 502, "{kind}");
    let body = json(response).await;
    let error = assert_openai_error(&body);
    let message = error["message"].as_str().unwrap_or_default();
    assert!(message.contains("redirected"), "{kind}: {message}");
    assert_eq!(received(&upstream).await.len(), 1, "{kind}: called once, never retried");
}

#[tokio::test]
async fn an_openai_upstream_redirect_is_not_followed() {
    chat_through_redirecting("openai").await;
}

#[tokio::test]
async fn an_anthropic_upstream_redirect_is_not_followed() {
    chat_through_redirecting("anthropic").await;
}

#[tokio::test]
async fn a_gemini_upstream_redirect_is_not_followed() {
    chat_through_redirecting("gemini").await;
}

#[tokio::test]
async fn a_redirecting_provider_is_not_retried_and_the_next_one_answers() {
    // Arrange
    let capture = capture().await;
    let evil = redirecting_to(&capture).await;
    let good = MockServer::start().await;
    mount_chat(&good, completion(), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("evil", upstream_url(&evil)))
        .provider(ProviderSpec::new("good", upstream_url(&good)))
        .settings("routing: {max_retries: 2}")
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(crate::helpers::header(&response, "x-ai-gateway-provider"), "good");
    assert_eq!(
        received(&evil).await.len(),
        1,
        "a redirect is not retried on the same provider"
    );
    assert_nothing_captured(&capture).await;
}

#[tokio::test]
async fn a_path_route_relays_a_redirect_to_its_client_unchanged() {
    // Arrange
    let capture = capture().await;
    let service = redirecting_to(&capture).await;
    let app = TestApp::builder()
        .env("API_KEYS", "sk-a")
        .settings(&json!({"path_routes": [{"path": "/predict", "target": service.uri()}]}).to_string())
        .spawn()
        .await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");

    // Act
    let response = client
        .post(app.url("/predict"))
        .bearer_auth("sk-a")
        .json(&json!({"input": "data"}))
        .send()
        .await
        .expect("POST /predict");

    // Assert
    assert_eq!(response.status(), 307);
    assert_eq!(
        crate::helpers::header(&response, "location"),
        format!("{}/steal", capture.uri())
    );
    assert_eq!(received(&service).await.len(), 1);
    assert_nothing_captured(&capture).await;
}

#[tokio::test]
async fn a_webhook_receiver_redirect_is_not_followed() {
    // Arrange
    let capture = capture().await;
    let receiver = redirecting_to(&capture).await;
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let settings = format!(
        "{{routes: [{{name: {TEST_MODEL}, targets: ['alpha:{TEST_MODEL}'], callback: '{}/hook'}}], webhooks: {{max_retries: 2}}}}",
        receiver.uri()
    );
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(&settings)
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;
    assert_eq!(response.status(), 200);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while received(&receiver).await.is_empty() {
        assert!(tokio::time::Instant::now() < deadline, "the webhook was never sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Assert
    assert_eq!(received(&receiver).await.len(), 1, "a redirect is refused, not retried");
    assert_nothing_captured(&capture).await;
}

#[tokio::test]
async fn a_node_health_probe_does_not_follow_a_redirect() {
    // Arrange
    let capture = capture().await;
    let node = redirecting_to(&capture).await;
    let app = TestApp::builder()
        .env("AI_NODES", &node.uri())
        .settings("nodes: {health_interval_seconds: 0.2, health_timeout_seconds: 1}")
        .spawn()
        .await;

    // Act: several health rounds.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while received(&node).await.len() < 3 {
        assert!(tokio::time::Instant::now() < deadline, "the node was never probed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Assert
    assert_nothing_captured(&capture).await;
    drop(app);
}

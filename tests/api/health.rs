//! `GET /livez`, `GET /readyz` and `GET /health`.

use serde_json::json;
use wiremock::MockServer;

use crate::helpers::{ProviderSpec, TEST_MODEL, TestApp, chat_body, failure, json, mount_chat, upstream_url};

#[tokio::test]
async fn livez_answers_200() {
    // Arrange
    let app = TestApp::builder().spawn().await;

    // Act
    let response = app.get("/livez").await;

    // Assert
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn readyz_answers_503_with_no_providers() {
    // Arrange
    let app = TestApp::builder().spawn().await;

    // Act
    let response = app.get("/readyz").await;

    // Assert
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn readyz_answers_200_with_one_provider() {
    // Arrange
    let alpha = MockServer::start().await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .spawn()
        .await;

    // Act
    let response = app.get("/readyz").await;

    // Assert
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn readyz_answers_503_once_every_breaker_is_open() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, failure(500), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings("routing: {circuit_breaker: {failure_threshold: 1, reset_timeout_seconds: 60}}")
        .spawn()
        .await;
    assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 502);

    // Act
    let response = app.get("/readyz").await;

    // Assert
    assert_eq!(response.status(), 503);
}

#[tokio::test]
async fn readyz_scope_process_answers_200_with_no_providers_and_with_every_breaker_open() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, failure(500), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings("routing: {circuit_breaker: {failure_threshold: 1, reset_timeout_seconds: 60}}")
        .spawn()
        .await;
    let empty = TestApp::builder().spawn().await;
    assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 502);
    assert_eq!(app.get("/readyz").await.status(), 503);

    // Act
    let open_breaker = app.get("/readyz?scope=process").await;
    let no_provider = empty.get("/readyz?scope=process").await;

    // Assert
    assert_eq!(open_breaker.status(), 200);
    assert_eq!(json(open_breaker).await["scope"], "process");
    assert_eq!(no_provider.status(), 200);
}

#[tokio::test]
async fn readyz_refuses_an_unknown_scope_naming_scope() {
    // Arrange
    let app = TestApp::builder().spawn().await;

    // Act
    let response = app.get("/readyz?scope=providers").await;

    // Assert
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert_eq!(body["error"]["param"], "scope");
}

#[tokio::test]
async fn health_reports_version_uptime_and_each_provider_by_priority() {
    // Arrange: beta is declared first but has the lower priority number.
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("beta", upstream_url(&beta))
                .priority(5)
                .models(&["*"]),
        )
        .provider(
            ProviderSpec::new("alpha", upstream_url(&alpha))
                .priority(1)
                .models(&["gpt-test", "gpt-other"]),
        )
        .spawn()
        .await;

    // Act
    let response = app.get("/health").await;

    // Assert
    assert_eq!(response.status(), 200);
    let health = json(response).await;
    assert_eq!(health["status"], "ok");
    assert_eq!(health["version"], env!("CARGO_PKG_VERSION"));
    assert!(health["uptime_seconds"].is_u64(), "{health}");
    assert_eq!(
        health["providers"],
        json!([
            {"id": "alpha", "kind": "openai", "breaker": "closed", "models": ["gpt-test", "gpt-other"], "priority": 1},
            {"id": "beta", "kind": "openai", "breaker": "closed", "models": ["*"], "priority": 5},
        ])
    );
}

#[tokio::test]
async fn readyz_scope_and_its_400_are_in_the_openapi_document() {
    // Arrange
    let app = TestApp::builder().spawn().await;

    // Act
    let spec = json(app.get("/openapi.json").await).await;

    // Assert
    let readyz = &spec["paths"]["/readyz"]["get"];
    let params = readyz["parameters"].as_array().expect("/readyz has parameters");
    assert!(
        params.iter().any(|p| p["name"] == "scope" && p["in"] == "query"),
        "{params:?}"
    );
    assert!(readyz["responses"]["400"].is_object());
}

//! `POST /v1/embeddings`: forwarded like chat, through the same fallback orchestrator.

use reqwest::header::AUTHORIZATION;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    ProviderSpec, TestApp, assert_openai_error, failure, fixtures, header, json, received, upstream_url,
};

const EMBEDDING_MODEL: &str = "text-embedding-3-small";

fn embeddings_reply() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(fixtures::EMBEDDINGS, "application/json")
}

async fn mount_embeddings(server: &MockServer, response: ResponseTemplate, calls: u64) {
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .respond_with(response)
        .expect(calls)
        .named("POST /v1/embeddings")
        .mount(server)
        .await;
}

fn provider(id: &str, upstream: &MockServer) -> ProviderSpec {
    ProviderSpec::new(id, upstream_url(upstream)).models(&[EMBEDDING_MODEL])
}

#[tokio::test]
async fn embeddings_are_forwarded_byte_for_byte_and_answered_as_sent() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_embeddings(&alpha, embeddings_reply(), 1).await;
    let app = TestApp::builder().provider(provider("alpha", &alpha)).spawn().await;
    let body = r#"{"input": "The food was delicious", "model": "text-embedding-3-small", "encoding_format": "float", "dimensions": 3}"#;

    // Act
    let response = app.post_raw("/v1/embeddings", body).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "alpha");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "1");
    assert_eq!(json(response).await, fixtures::json(fixtures::EMBEDDINGS));
    let requests = received(&alpha).await;
    assert_eq!(String::from_utf8_lossy(&requests[0].body), body);
    let expected_key = format!("Bearer {}", ProviderSpec::key_for("alpha"));
    assert_eq!(
        requests[0].headers.get(AUTHORIZATION).expect("authorization"),
        expected_key.as_str()
    );
}

#[tokio::test]
async fn embeddings_fall_back_to_the_next_provider_on_500() {
    // Arrange
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_embeddings(&alpha, failure(500), 1).await;
    mount_embeddings(&beta, embeddings_reply(), 1).await;
    let app = TestApp::builder()
        .provider(provider("alpha", &alpha))
        .provider(provider("beta", &beta))
        .spawn()
        .await;

    // Act
    let response = app
        .post_raw(
            "/v1/embeddings",
            r#"{"model": "text-embedding-3-small", "input": ["a", "b"]}"#,
        )
        .await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
}

#[tokio::test]
async fn embeddings_without_input_get_400_naming_input() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_embeddings(&alpha, embeddings_reply(), 0).await;
    let app = TestApp::builder().provider(provider("alpha", &alpha)).spawn().await;

    // Act
    let response = app
        .post_raw("/v1/embeddings", r#"{"model": "text-embedding-3-small"}"#)
        .await;

    // Assert
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    assert_eq!(assert_openai_error(&body)["param"], "input");
}

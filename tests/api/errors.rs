//! Requests the gateway refuses itself, before any upstream is called: every refusal is an
//! OpenAI-shaped error body with the right status, and the server goes on serving.

use bytes::Bytes;
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::helpers::{
    ProviderSpec, TEST_MODEL, TestApp, assert_openai_error, chat_body, completion, header, json, mount_chat,
    upstream_url,
};

/// A gateway whose one provider must never be called.
async fn untouched_provider_app(upstream: &MockServer, settings: &str) -> TestApp {
    mount_chat(upstream, completion(), 0).await;
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(upstream)))
        .settings(settings)
        .spawn()
        .await
}

/// Posts `body` to the chat endpoint and checks it is refused with 400, naming `param`.
async fn assert_bad_request(body: &str, param: Option<&str>) -> Value {
    // Arrange
    let alpha = MockServer::start().await;
    let app = untouched_provider_app(&alpha, "{}").await;

    // Act
    let response = app.post_raw("/v1/chat/completions", body.to_owned()).await;

    // Assert
    assert_eq!(response.status(), 400, "{body}");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "0");
    let body = json(response).await;
    let error = assert_openai_error(&body);
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["param"], param.map_or(Value::Null, |p| json!(p)), "{body}");
    error.clone()
}

#[tokio::test]
async fn malformed_json_gets_openai_error_shape_and_400() {
    let error = assert_bad_request(r#"{"model": "gpt-test", "messages": ["#, None).await;
    assert_eq!(error["code"], "invalid_json");
}

#[tokio::test]
async fn json_array_body_gets_400() {
    assert_bad_request(r#"[{"model": "gpt-test", "messages": []}]"#, None).await;
}

#[tokio::test]
async fn json_array_holding_the_fields_in_order_is_not_taken_for_a_request() {
    assert_bad_request(r#"["gpt-test", [{"role": "user", "content": "Hi"}]]"#, None).await;
}

#[tokio::test]
async fn empty_body_gets_400() {
    assert_bad_request("", None).await;
}

#[tokio::test]
async fn messages_that_are_not_an_array_get_400_naming_messages() {
    assert_bad_request(r#"{"model": "gpt-test", "messages": "x"}"#, Some("messages")).await;
}

#[tokio::test]
async fn model_that_is_not_a_string_gets_400_naming_model() {
    assert_bad_request(r#"{"model": 5, "messages": []}"#, Some("model")).await;
}

#[tokio::test]
async fn empty_model_gets_400_naming_model() {
    assert_bad_request(r#"{"model": "", "messages": []}"#, Some("model")).await;
}

#[tokio::test]
async fn stream_that_is_not_a_boolean_gets_400_naming_stream() {
    assert_bad_request(
        r#"{"model": "gpt-test", "messages": [], "stream": "yes"}"#,
        Some("stream"),
    )
    .await;
}

#[tokio::test]
async fn missing_model_gets_400_naming_model() {
    let error = assert_bad_request(r#"{"messages": [{"role": "user", "content": "Hi"}]}"#, Some("model")).await;
    assert_eq!(error["code"], "missing_required_parameter");
}

#[tokio::test]
async fn missing_messages_gets_400_naming_messages() {
    let error = assert_bad_request(r#"{"model": "gpt-test"}"#, Some("messages")).await;
    assert_eq!(error["code"], "missing_required_parameter");
}

#[tokio::test]
async fn body_over_max_body_bytes_gets_413_request_too_large() {
    // Arrange
    let alpha = MockServer::start().await;
    let app = untouched_provider_app(&alpha, "limits: {max_body_bytes: 1024}").await;
    let mut body = chat_body(TEST_MODEL);
    body["padding"] = json!("x".repeat(2048));

    // Act
    let response = app.post_chat(&body).await;

    // Assert
    assert_eq!(response.status(), 413);
    let body = json(response).await;
    let error = assert_openai_error(&body);
    assert_eq!(error["code"], "request_too_large");
}

#[tokio::test]
async fn chunked_body_over_max_body_bytes_gets_413_request_too_large() {
    // Arrange: no Content-Length, so the limit is enforced while reading.
    let alpha = MockServer::start().await;
    let app = untouched_provider_app(&alpha, "limits: {max_body_bytes: 1024}").await;
    let mut body = chat_body(TEST_MODEL);
    body["padding"] = json!("x".repeat(2048));
    let bytes = serde_json::to_vec(&body).expect("serialize");
    let chunks: Vec<Result<Bytes, std::io::Error>> = bytes.chunks(256).map(|c| Ok(Bytes::copy_from_slice(c))).collect();

    // Act
    let response = app
        .post_raw(
            "/v1/chat/completions",
            reqwest::Body::wrap_stream(futures_util::stream::iter(chunks)),
        )
        .await;

    // Assert
    assert_eq!(response.status(), 413);
    let body = json(response).await;
    assert_eq!(assert_openai_error(&body)["code"], "request_too_large");
}

#[tokio::test]
async fn server_keeps_serving_after_an_oversized_body() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings("limits: {max_body_bytes: 1024}")
        .spawn()
        .await;
    let mut oversized = chat_body(TEST_MODEL);
    oversized["padding"] = json!("x".repeat(2048));
    assert_eq!(app.post_chat(&oversized).await.status(), 413);

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn unknown_model_gets_404_model_not_found() {
    // Arrange
    let alpha = MockServer::start().await;
    let app = untouched_provider_app(&alpha, "{}").await;

    // Act
    let response = app.post_chat(&chat_body("no-such-model")).await;

    // Assert
    assert_eq!(response.status(), 404);
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "0");
    let body = json(response).await;
    let error = assert_openai_error(&body);
    assert_eq!(error["code"], "model_not_found");
    assert_eq!(error["param"], "model");
}

#[tokio::test]
async fn unknown_path_gets_404_in_openai_shape() {
    // Arrange
    let app = TestApp::builder().spawn().await;

    // Act
    let response = app.get("/v1/no-such-endpoint").await;

    // Assert
    assert_eq!(response.status(), 404);
    assert!(
        response.headers().contains_key("x-request-id"),
        "every response carries a request id"
    );
    let body = json(response).await;
    assert_openai_error(&body);
}

#[tokio::test]
async fn wrong_method_gets_405_in_openai_shape() {
    // Arrange
    let app = TestApp::builder().spawn().await;

    // Act
    let response = app.get("/v1/chat/completions").await;

    // Assert
    assert_eq!(response.status(), 405);
    let body = json(response).await;
    assert_openai_error(&body);
}

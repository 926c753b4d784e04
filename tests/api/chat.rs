//! `POST /v1/chat/completions`, non-streamed, when the first provider answers: what reaches the
//! upstream (bytes, key, request id) and what reaches the client (body, headers).

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use wiremock::MockServer;

use crate::helpers::{
    ProviderSpec, TEST_MODEL, TestApp, chat_body, completion, fixtures, header, json, mount_chat, received,
    upstream_url,
};

async fn one_provider_app(upstream: &MockServer) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(upstream)))
        .spawn()
        .await
}

/// Asserts `id` is a UUIDv7 as the gateway generates them.
fn assert_uuid_v7(id: &str) {
    let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("`{id}` is not a UUID: {e}"));
    assert_eq!(uuid.get_version_num(), 7, "`{id}` is a version 7 UUID");
}

#[tokio::test]
async fn chat_returns_the_upstream_completion_as_sent() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = one_provider_app(&alpha).await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, CONTENT_TYPE.as_str()), "application/json");
    assert_eq!(json(response).await, fixtures::json(fixtures::CHAT_COMPLETION));
}

#[tokio::test]
async fn chat_forwards_the_body_byte_for_byte_including_unknown_fields() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = one_provider_app(&alpha).await;
    // Odd spacing, key order and fields the gateway knows nothing about must all survive.
    let body = r#"{ "messages": [{"role":"user","content":"Hi"}],
        "top_k": 40, "chat_template_kwargs": {"enable_thinking": false},
        "model":  "gpt-test", "temperature": 0.25 }"#;

    // Act
    let response = app.post_raw("/v1/chat/completions", body).await;

    // Assert
    assert_eq!(response.status(), 200);
    let requests = received(&alpha).await;
    assert_eq!(requests.len(), 1);
    assert_eq!(String::from_utf8_lossy(&requests[0].body), body);
    let upstream: serde_json::Value = serde_json::from_slice(&requests[0].body).expect("JSON");
    assert_eq!(upstream["top_k"], 40);
    assert_eq!(upstream["chat_template_kwargs"]["enable_thinking"], false);
}

#[tokio::test]
async fn upstream_receives_the_provider_key_not_the_client_key() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = one_provider_app(&alpha).await;

    // Act
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header(AUTHORIZATION, "Bearer client-key")
        .json(&chat_body(TEST_MODEL))
        .send()
        .await
        .expect("POST");

    // Assert
    assert_eq!(response.status(), 200);
    let requests = received(&alpha).await;
    let sent: Vec<&str> = requests[0]
        .headers
        .get_all(AUTHORIZATION)
        .iter()
        .map(|v| v.to_str().expect("ASCII"))
        .collect();
    assert_eq!(sent, [format!("Bearer {}", ProviderSpec::key_for("alpha"))]);
    let all_headers = format!("{:?}", requests[0].headers);
    assert!(
        !all_headers.contains("client-key"),
        "the client's key leaked upstream: {all_headers}"
    );
}

#[tokio::test]
async fn client_request_id_is_echoed_and_sent_upstream() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = one_provider_app(&alpha).await;

    // Act
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header("x-request-id", "trace-42.abc")
        .json(&chat_body(TEST_MODEL))
        .send()
        .await
        .expect("POST");

    // Assert
    assert_eq!(header(&response, "x-request-id"), "trace-42.abc");
    let requests = received(&alpha).await;
    assert_eq!(
        requests[0].headers.get("x-request-id").expect("sent upstream"),
        "trace-42.abc"
    );
}

#[tokio::test]
async fn missing_request_id_is_generated_as_uuid_v7_and_sent_upstream() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = one_provider_app(&alpha).await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    let echoed = header(&response, "x-request-id");
    assert_uuid_v7(&echoed);
    let requests = received(&alpha).await;
    assert_eq!(
        requests[0].headers.get("x-request-id").expect("sent upstream"),
        echoed.as_str()
    );
}

async fn assert_request_id_is_replaced(sent: reqwest::header::HeaderValue) {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = one_provider_app(&alpha).await;

    // Act
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header("x-request-id", sent.clone())
        .json(&chat_body(TEST_MODEL))
        .send()
        .await
        .expect("POST");

    // Assert
    assert_eq!(response.status(), 200);
    let echoed = header(&response, "x-request-id");
    assert_ne!(echoed.as_bytes(), sent.as_bytes());
    assert_uuid_v7(&echoed);
    let requests = received(&alpha).await;
    assert_eq!(
        requests[0].headers.get("x-request-id").expect("sent upstream"),
        echoed.as_str()
    );
}

#[tokio::test]
async fn request_id_of_128_printable_characters_is_kept() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = one_provider_app(&alpha).await;
    let longest = "x".repeat(127) + "~";

    // Act
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header("x-request-id", longest.as_str())
        .json(&chat_body(TEST_MODEL))
        .send()
        .await
        .expect("POST");

    // Assert
    assert_eq!(header(&response, "x-request-id"), longest);
    let requests = received(&alpha).await;
    assert_eq!(
        requests[0].headers.get("x-request-id").expect("sent upstream"),
        longest.as_str()
    );
}

#[tokio::test]
async fn overlong_request_id_is_replaced_by_a_generated_one() {
    let long = "a".repeat(129);
    assert_request_id_is_replaced(long.parse().expect("valid header")).await;
}

#[tokio::test]
async fn request_id_with_spaces_is_replaced_by_a_generated_one() {
    assert_request_id_is_replaced("two words".parse().expect("valid header")).await;
}

#[tokio::test]
async fn non_ascii_request_id_is_replaced_by_a_generated_one() {
    let value = reqwest::header::HeaderValue::from_bytes("café".as_bytes()).expect("obs-text is a valid header");
    assert_request_id_is_replaced(value).await;
}

#[tokio::test]
async fn success_names_the_provider_and_the_attempts_in_headers() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = one_provider_app(&alpha).await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "alpha");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "1");
}

#[tokio::test]
async fn alias_sends_the_upstream_model_name_and_leaves_other_bytes_unchanged() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("alpha", upstream_url(&alpha))
                .models(&["meta-llama/Llama-3.1-8B-Instruct"])
                .alias("fast", "meta-llama/Llama-3.1-8B-Instruct"),
        )
        .spawn()
        .await;
    let body = r#"{"model" : "fast", "messages":[{"role":"user","content":"Hi"}], "top_k":5}"#;

    // Act
    let response = app.post_raw("/v1/chat/completions", body).await;

    // Assert
    assert_eq!(response.status(), 200);
    let requests = received(&alpha).await;
    let expected =
        r#"{"model" : "meta-llama/Llama-3.1-8B-Instruct", "messages":[{"role":"user","content":"Hi"}], "top_k":5}"#;
    assert_eq!(String::from_utf8_lossy(&requests[0].body), expected);
}

#[tokio::test]
async fn chat_via_anthropic_carries_cache_breakpoints_and_effort_and_answers_with_thinking() {
    // Arrange: an Anthropic upstream that answers with thinking and cache reads (Anthropic's
    // extended-thinking and prompt-caching examples).
    let claude = MockServer::start().await;
    let message = serde_json::json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "thinking", "thinking": "Six times seven.", "signature": "EqQBCgIYAhIMsig"},
                    {"type": "text", "text": "42"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1800, "output_tokens": 90}});
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v1/messages"))
        .and(wiremock::matchers::header("anthropic-version", "2023-06-01"))
        .and(wiremock::matchers::header_exists("x-api-key"))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(&message))
        .expect(1)
        .mount(&claude)
        .await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("claude", claude.uri())
                .kind("anthropic")
                .models(&["claude-sonnet-4-5"]),
        )
        .spawn()
        .await;
    let mark = serde_json::json!({"type": "ephemeral"});
    let body = serde_json::json!({"model": "claude-sonnet-4-5", "reasoning_effort": "low", "max_tokens": 512,
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "A long manual.", "cache_control": mark}]},
            {"role": "user", "content": [{"type": "text", "text": "Six times seven?", "cache_control": mark}]}
        ],
        "tools": [{"type": "function", "function": {"name": "calc", "parameters": {"type": "object"}}, "cache_control": mark}]});

    // Act
    let response = app.post_chat(&body).await;

    // Assert
    assert_eq!(response.status(), 200);
    let completion = json(response).await;
    let reply = &completion["choices"][0]["message"];
    assert_eq!(reply["content"], "42");
    assert_eq!(reply["reasoning_content"], "Six times seven.");
    assert_eq!(reply["thinking_blocks"][0]["signature"], "EqQBCgIYAhIMsig");
    assert_eq!(completion["usage"]["prompt_tokens"], 1812);
    assert_eq!(completion["usage"]["prompt_tokens_details"]["cached_tokens"], 1800);
    let sent: serde_json::Value = received(&claude).await[0].body_json().expect("Messages body");
    assert_eq!(sent["system"][0]["cache_control"], mark);
    assert_eq!(sent["messages"][0]["content"][0]["cache_control"], mark);
    assert_eq!(sent["tools"][0]["cache_control"], mark);
    assert_eq!(
        sent["thinking"],
        serde_json::json!({"type": "enabled", "budget_tokens": 1024})
    );
    assert_eq!(sent["max_tokens"], 1536, "raised above the thinking budget");
}

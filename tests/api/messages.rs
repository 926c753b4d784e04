//! `POST /v1/messages`: Anthropic's wire format in, served by an OpenAI-kind upstream (translated)
//! or an Anthropic-kind one (passed through), errors in Anthropic's shape.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::fixtures::{self, anthropic};
use crate::helpers::{
    ProviderSpec, SseMock, SseReader, TestApp, completion, header, json, mount_chat, received, upstream_url,
};

const CLAUDE: &str = "claude-sonnet-4-5";

fn request() -> Value {
    fixtures::json(anthropic::REQUEST)
}

fn stream_request() -> Value {
    let mut body = request();
    body["stream"] = json!(true);
    body
}

/// The Anthropic error shape, returning the inner `error` object.
fn assert_anthropic_error(body: &Value) -> &Value {
    assert_eq!(body["type"], "error", "top-level type is `error`: {body}");
    let error = &body["error"];
    assert!(error["type"].is_string(), "error.type is a string: {body}");
    assert!(error["message"].is_string(), "error.message is a string: {body}");
    error
}

async fn openai_kind_app(mock: &MockServer) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(mock)).models(&[CLAUDE]))
        .spawn()
        .await
}

async fn mount_messages(server: &MockServer, body: &'static str) {
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(body, "application/json"))
        .expect(1)
        .mount(server)
        .await;
}

#[tokio::test]
async fn messages_request_served_by_an_openai_upstream_comes_back_as_a_message() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = openai_kind_app(&alpha).await;

    // Act
    let response = app.post_messages(&request()).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "alpha");
    let message = json(response).await;
    let expected = fixtures::json(fixtures::CHAT_COMPLETION);
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"][0]["type"], "text");
    assert_eq!(
        message["content"][0]["text"],
        expected["choices"][0]["message"]["content"]
    );
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["usage"]["input_tokens"], expected["usage"]["prompt_tokens"]);
    assert_eq!(
        message["usage"]["output_tokens"],
        expected["usage"]["completion_tokens"]
    );
    let sent: Value = received(&alpha).await[0].body_json().expect("chat body");
    assert_eq!(sent["model"], CLAUDE);
    assert_eq!(sent["max_tokens"], 1024);
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "You are a helpful assistant."}, {"role": "user", "content": "Hello, world"}])
    );
}

#[tokio::test]
async fn messages_stream_from_an_openai_upstream_arrives_as_anthropic_events_chunk_by_chunk() {
    // Arrange
    let alpha = SseMock::start().await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()).models(&[CLAUDE]))
        .spawn()
        .await;
    let chunks = fixtures::chunk_payloads();
    let pending = tokio::spawn(app.post_messages(&stream_request()));
    let upstream = alpha.next_connection().await;
    let sent: Value = serde_json::from_slice(&upstream.request.body).expect("chat body");
    assert_eq!(
        sent["stream_options"]["include_usage"], true,
        "usage is asked for the message_delta"
    );

    // Act + Assert: each upstream chunk's events reach the client before the next is released.
    upstream.send_event(&chunks[0]);
    let response = pending.await.expect("request task");
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "content-type"), "text/event-stream");
    let mut reader = SseReader::new(response);
    assert_eq!(reader.next_json().await["type"], "message_start");
    upstream.send_event(&chunks[1]);
    assert_eq!(reader.next_json().await["type"], "content_block_start");
    let delta = reader.next_json().await;
    assert_eq!(delta["type"], "content_block_delta");
    let first_text = delta["delta"]["text"].as_str().expect("text").to_owned();
    let mut text = first_text;
    for chunk in &chunks[2..chunks.len() - 1] {
        upstream.send_event(chunk);
    }
    upstream.send_done();
    upstream.finish();
    let mut types = Vec::new();
    for data in reader.rest().await {
        let event: Value = serde_json::from_str(&data).expect("event JSON");
        if let Some(t) = event["delta"]["text"].as_str() {
            text.push_str(t);
        }
        types.push(event["type"].as_str().expect("type").to_owned());
    }
    assert_eq!(types.last().map(String::as_str), Some("message_stop"));
    assert!(types.contains(&"message_delta".to_owned()), "{types:?}");
    let expected: String = chunks[..chunks.len() - 1]
        .iter()
        .filter_map(|c| serde_json::from_str::<Value>(c).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, expected);
}

#[tokio::test]
async fn messages_reach_an_anthropic_upstream_byte_for_byte_and_come_back_untouched() {
    // Arrange
    let claude = MockServer::start().await;
    mount_messages(&claude, anthropic::MESSAGE).await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("claude", claude.uri())
                .kind("anthropic")
                .models(&[CLAUDE]),
        )
        .spawn()
        .await;
    let body = r#"{"model":"claude-sonnet-4-5","max_tokens":1024,"messages":[{"role":"user","content":"Hello, world"}],"top_k":5}"#;

    // Act
    let response = app
        .client
        .post(app.url("/v1/messages"))
        .header("x-api-key", "client-key")
        .header("anthropic-version", "2023-06-01")
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("POST /v1/messages");

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), anthropic::MESSAGE);
    let got = &received(&claude).await[0];
    assert_eq!(got.body, body.as_bytes());
    assert_eq!(got.headers["x-api-key"], ProviderSpec::key_for("claude").as_str());
    assert_eq!(got.headers["anthropic-version"], "2023-06-01");
    assert!(
        got.headers.get("authorization").is_none(),
        "the client's key never goes upstream"
    );
}

#[tokio::test]
async fn messages_stream_from_an_anthropic_upstream_passes_through_unchanged() {
    // Arrange
    let claude = SseMock::start().await;
    claude.autoplay_raw(fixtures::events(anthropic::STREAM)).await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("claude", claude.root_url())
                .kind("anthropic")
                .models(&[CLAUDE]),
        )
        .spawn()
        .await;

    // Act
    let response = app.post_messages(&stream_request()).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), anthropic::STREAM);
    assert_eq!(claude.requests(), 1);
    let rows = app.history_rows(1).await;
    assert_eq!(rows[0]["endpoint"], "/v1/messages");
    assert_eq!(rows[0]["status"], "success");
    assert_eq!(rows[0]["prompt_tokens"], 25);
    assert_eq!(rows[0]["completion_tokens"], 15);
    assert_eq!(rows[0]["result_summary"], "Hello!");
}

#[tokio::test]
async fn messages_fall_back_from_an_anthropic_provider_to_an_openai_one_in_one_request() {
    // Arrange
    let claude = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(529).set_body_raw(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            "application/json",
        ))
        .expect(1)
        .mount(&claude)
        .await;
    let openai = MockServer::start().await;
    mount_chat(&openai, completion(), 1).await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("claude", claude.uri())
                .kind("anthropic")
                .models(&[CLAUDE]),
        )
        .provider(ProviderSpec::new("openai", upstream_url(&openai)).models(&[CLAUDE]))
        .spawn()
        .await;

    // Act
    let response = app.post_messages(&request()).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "openai");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    assert_eq!(json(response).await["type"], "message");
    let row = &app.history_rows(1).await[0];
    let outcomes: Vec<&str> = row["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["outcome"].as_str().expect("outcome"))
        .collect();
    assert_eq!(outcomes, ["server_error", "success"]);
}

#[tokio::test]
async fn messages_errors_come_in_anthropic_shape() {
    // Arrange
    let app = TestApp::builder()
        .settings("auth: {api_keys: [client-key]}")
        .spawn()
        .await;

    // Act
    let unknown = app.post_messages(&request()).await;
    let no_key = app
        .client
        .post(app.url("/v1/messages"))
        .json(&request())
        .send()
        .await
        .expect("POST /v1/messages");
    let bad_json = app
        .client
        .post(app.url("/v1/messages"))
        .header("x-api-key", "client-key")
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .expect("POST /v1/messages");
    let wrong_method = app
        .client
        .get(app.url("/v1/messages"))
        .header("x-api-key", "client-key")
        .send()
        .await
        .expect("GET /v1/messages");

    // Assert
    assert_eq!(unknown.status(), 404);
    assert_eq!(assert_anthropic_error(&json(unknown).await)["type"], "not_found_error");
    assert_eq!(no_key.status(), 401);
    assert_eq!(
        assert_anthropic_error(&json(no_key).await)["type"],
        "authentication_error"
    );
    assert_eq!(bad_json.status(), 400);
    assert_eq!(
        assert_anthropic_error(&json(bad_json).await)["type"],
        "invalid_request_error"
    );
    assert_eq!(wrong_method.status(), 405);
    assert_anthropic_error(&json(wrong_method).await);
}

#[tokio::test]
async fn messages_rate_limit_refusals_come_in_anthropic_shape() {
    // Arrange
    let claude = MockServer::start().await;
    mount_messages(&claude, anthropic::MESSAGE).await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("claude", claude.uri())
                .kind("anthropic")
                .models(&[CLAUDE]),
        )
        .settings("rate_limit: {enabled: true, rpm: 1, burst: 1}")
        .spawn()
        .await;

    // Act
    let first = app.post_messages(&request()).await;
    let second = app.post_messages(&request()).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 429);
    assert!(second.headers().contains_key("retry-after"));
    assert_eq!(assert_anthropic_error(&json(second).await)["type"], "rate_limit_error");
}

#[tokio::test]
async fn an_anthropic_upstreams_client_fault_reaches_the_client_with_its_type() {
    // Arrange
    let claude = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(anthropic::ERROR_400, "application/json"))
        .expect(1)
        .mount(&claude)
        .await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("claude", claude.uri())
                .kind("anthropic")
                .models(&[CLAUDE]),
        )
        .spawn()
        .await;

    // Act
    let response = app
        .post_messages(&json!({"model": CLAUDE, "messages": [{"role": "user", "content": "Hi"}]}))
        .await;

    // Assert
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    let error = assert_anthropic_error(&body);
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["message"], "max_tokens: Field required");
}

#[tokio::test]
async fn messages_are_counted_under_their_own_task_and_endpoint() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = openai_kind_app(&alpha).await;

    // Act
    assert_eq!(app.post_messages(&request()).await.status(), 200);

    // Assert
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["endpoint"], "/v1/messages");
    assert_eq!(row["provider"], "alpha");
    let metrics = app.get("/metrics").await.text().await.expect("metrics text");
    let line = metrics
        .lines()
        .find(|l| {
            l.starts_with("ai_request_count{") && l.contains(r#"task="messages""#) && l.contains(r#"status="success""#)
        })
        .unwrap_or_else(|| panic!("no messages series in:\n{metrics}"));
    assert!(line.ends_with(" 1"), "{line}");
}

#[tokio::test]
async fn a_cut_messages_stream_ends_with_an_anthropic_error_event_and_no_message_stop() {
    // Arrange
    let claude = SseMock::start().await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("claude", claude.root_url())
                .kind("anthropic")
                .models(&[CLAUDE]),
        )
        .spawn()
        .await;
    let events = fixtures::events(anthropic::STREAM);
    let pending = tokio::spawn(app.post_messages(&stream_request()));
    let upstream = claude.next_connection().await;

    // Act
    upstream.send_raw(events[0].clone());
    let response = pending.await.expect("request task");
    upstream.send_raw(events[1].clone());
    upstream.cut();

    // Assert
    assert_eq!(response.status(), 200);
    let body = response.text().await.expect("body");
    let last = body.trim_end().rsplit("\n\n").next().expect("last event");
    assert!(last.starts_with("event: error\n"), "{body}");
    let data: Value = serde_json::from_str(
        last.lines()
            .nth(1)
            .and_then(|l| l.strip_prefix("data: "))
            .expect("data"),
    )
    .expect("error JSON");
    assert_eq!(assert_anthropic_error(&data)["type"], "api_error");
    assert!(!body.contains("message_stop"), "a cut stream never looks complete");
    assert_eq!(app.history_rows(1).await[0]["status"], "error");
}

#[tokio::test]
async fn a_chat_stream_falls_back_from_an_anthropic_provider_to_an_openai_one_before_the_first_byte() {
    // Arrange
    let claude = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(529).set_body_raw(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            "application/json",
        ))
        .expect(1)
        .mount(&claude)
        .await;
    let openai = SseMock::start().await;
    openai.autoplay_raw(fixtures::chunk_events()).await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("claude", claude.uri())
                .kind("anthropic")
                .models(&[CLAUDE]),
        )
        .provider(ProviderSpec::new("openai", openai.base_url()).models(&[CLAUDE]))
        .spawn()
        .await;
    let mut body = crate::helpers::stream_body(CLAUDE);
    body["stream_options"] = json!({"include_usage": false});

    // Act
    let response = app.post_chat(&body).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "openai");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    let rest = SseReader::new(response).rest().await;
    assert_eq!(rest.last().map(String::as_str), Some("[DONE]"));
}

/// A chat chunk as an OpenAI-compatible reasoning server (vLLM, DeepSeek) streams it.
fn reasoning_chunk(delta: Value, finish: Option<&str>) -> String {
    json!({"id": "chatcmpl-r1", "object": "chat.completion.chunk", "created": 1, "model": CLAUDE,
           "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    .to_string()
}

#[tokio::test]
async fn reasoning_from_an_openai_upstream_streams_as_a_signed_thinking_block_before_the_text() {
    // Arrange: Claude Code's shape: beta-only context management, budgeted thinking.
    let alpha = SseMock::start().await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()).models(&[CLAUDE]))
        .spawn()
        .await;
    let mut body = stream_request();
    body["thinking"] = json!({"type": "enabled", "budget_tokens": 8000});
    body["context_management"] = json!({"edits": [{"type": "clear_thinking_20251015"}]});
    body["max_tokens"] = json!(16000);
    let pending = tokio::spawn(app.post_messages(&body));
    let upstream = alpha.next_connection().await;
    let sent: Value = serde_json::from_slice(&upstream.request.body).expect("chat body");
    assert_eq!(sent["reasoning_effort"], "medium");
    assert!(
        sent.get("thinking").is_none() && sent.get("context_management").is_none(),
        "{sent}"
    );

    // Act + Assert: each piece reaches the client before the next is released.
    upstream.send_event(&reasoning_chunk(
        json!({"role": "assistant", "reasoning_content": "Greet back."}),
        None,
    ));
    let response = pending.await.expect("request task");
    assert_eq!(response.status(), 200);
    let mut reader = SseReader::new(response);
    assert_eq!(reader.next_json().await["type"], "message_start");
    let start = reader.next_json().await;
    assert_eq!(
        start["content_block"],
        json!({"type": "thinking", "thinking": "", "signature": ""})
    );
    assert_eq!(
        reader.next_json().await["delta"],
        json!({"type": "thinking_delta", "thinking": "Greet back."})
    );
    upstream.send_event(&reasoning_chunk(json!({"content": "Hello!"}), None));
    let signature = reader.next_json().await;
    assert_eq!(signature["delta"]["type"], "signature_delta");
    assert!(
        signature["delta"]["signature"]
            .as_str()
            .expect("signature")
            .starts_with("ai-gateway.reasoning.v1:")
    );
    assert_eq!(reader.next_json().await["type"], "content_block_stop");
    assert_eq!(reader.next_json().await["content_block"]["type"], "text");
    assert_eq!(reader.next_json().await["delta"]["text"], "Hello!");
    upstream.send_event(&reasoning_chunk(json!({}), Some("stop")));
    upstream.send_event(
        &json!({"id": "chatcmpl-r1", "object": "chat.completion.chunk", "created": 1, "model": CLAUDE, "choices": [],
                "usage": {"prompt_tokens": 120, "completion_tokens": 9, "total_tokens": 129,
                          "prompt_tokens_details": {"cached_tokens": 100}}})
        .to_string(),
    );
    upstream.send_done();
    let rest: Vec<Value> = reader
        .rest()
        .await
        .iter()
        .map(|d| serde_json::from_str(d).expect("event JSON"))
        .collect();
    let types: Vec<&str> = rest.iter().map(|e| e["type"].as_str().expect("type")).collect();
    assert_eq!(types, ["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(
        rest[1]["usage"],
        json!({"input_tokens": 20, "cache_read_input_tokens": 100, "cache_creation_input_tokens": 0, "output_tokens": 9})
    );
}

#[tokio::test]
async fn thinking_anthropic_did_not_sign_never_reaches_an_anthropic_upstream() {
    // Arrange: a conversation one turn of which an OpenAI-kind provider answered (failover), so
    // its thinking carries the gateway's signature.
    let claude = MockServer::start().await;
    mount_messages(&claude, anthropic::MESSAGE).await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("claude", claude.uri())
                .kind("anthropic")
                .models(&[CLAUDE]),
        )
        .spawn()
        .await;
    let signed = json!({"type": "thinking", "thinking": "Plan.", "signature": "EqQBCgIYAhIMsig"});
    let body = json!({"model": CLAUDE, "max_tokens": 4096, "thinking": {"type": "enabled", "budget_tokens": 2048},
    "messages": [
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": [signed, {"type": "text", "text": "Hi."}]},
        {"role": "user", "content": "And?"},
        {"role": "assistant", "content": [
            {"type": "thinking", "thinking": "Elsewhere.", "signature": "ai-gateway.reasoning.v1:0190"},
            {"type": "text", "text": "More."}]},
        {"role": "user", "content": "Go on."}
    ]});

    // Act
    let response = app.post_messages(&body).await;

    // Assert
    assert_eq!(response.status(), 200);
    let sent: Value = received(&claude).await[0].body_json().expect("Messages body");
    let messages = sent["messages"].as_array().expect("messages");
    assert_eq!(messages.len(), 5);
    assert_eq!(messages[1]["content"][0], signed, "Anthropic's own thinking goes back");
    assert_eq!(
        messages[3]["content"],
        json!([{"type": "text", "text": "More."}]),
        "the foreign block is gone"
    );
    assert_eq!(sent["thinking"], body["thinking"]);
}

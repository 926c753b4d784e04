//! Validation before routing: hostile bodies on every inference endpoint get a 400 in the
//! endpoint's dialect naming the parameter path, never reach the upstream (its request log stays
//! empty), never touch a breaker (one failure would open it here), and still leave a history row
//! and a metric. Unknown fields keep passing through untouched.

use serde_json::{Value, json};
use wiremock::MockServer;

use crate::helpers::{
    ProviderSpec, TEST_MODEL, TestApp, assert_openai_error, completion, json, mount_chat, received, upstream_url,
};

/// An upstream that would answer anything, behind a breaker that one failure opens.
async fn app(upstream: &MockServer) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(upstream)))
        .settings("routing: {max_retries: 0, circuit_breaker: {failure_threshold: 1, reset_timeout_seconds: 60}}")
        .spawn()
        .await
}

fn big(bytes: usize) -> String {
    "x".repeat(bytes)
}

fn nested(levels: usize) -> Value {
    let mut v = json!(1);
    for _ in 0..levels {
        v = json!([v]);
    }
    v
}

fn deep_body(levels: usize, mut body: Value, field: &str) -> Vec<u8> {
    // serde_json's own writer recurses; build the nesting as text instead.
    body[field] = json!("__DEEP__");
    let text = serde_json::to_string(&body).unwrap();
    text.replace(
        "\"__DEEP__\"",
        &format!("{}1{}", "[".repeat(levels), "]".repeat(levels)),
    )
    .into_bytes()
}

enum Shape {
    OpenAi,
    Anthropic,
}

/// Sends every body to `path`, checks each 400 names its param, then that nothing went upstream,
/// the breaker is closed, and each request has its history row and its metric.
async fn refuse_all(path: &str, task: &str, shape: Shape, cases: Vec<(&str, Vec<u8>, &str)>) {
    let upstream = MockServer::start().await;
    mount_chat(&upstream, completion(), 0).await;
    let app = app(&upstream).await;
    for (name, body, param) in &cases {
        let request = app
            .client
            .post(app.url(path))
            .header("content-type", "application/json")
            .header("x-api-key", "client-key")
            .header("anthropic-version", "2023-06-01")
            .body(body.clone());
        let response = request.send().await.expect("request sent");
        assert_eq!(response.status(), 400, "{name}");
        let body = json(response).await;
        match shape {
            Shape::OpenAi => {
                let error = assert_openai_error(&body);
                assert_eq!(error["param"], *param, "{name}: {body}");
                assert_eq!(error["type"], "invalid_request_error", "{name}");
            }
            Shape::Anthropic => {
                assert_eq!(body["type"], "error", "{name}: {body}");
                assert_eq!(body["error"]["type"], "invalid_request_error", "{name}: {body}");
                let message = body["error"]["message"].as_str().expect("message");
                assert!(message.contains(&format!("`{param}`")), "{name}: {message}");
            }
        }
        let text = body.to_string();
        assert!(
            text.len() < 2_000,
            "{name}: the answer does not echo the input ({} bytes)",
            text.len()
        );
    }
    assert!(received(&upstream).await.is_empty(), "nothing reached the upstream");
    assert_eq!(app.breaker("alpha").await, "closed");
    let rows = app.history_rows(cases.len()).await;
    for row in &rows {
        assert_eq!(row["endpoint"], path);
        assert_eq!(row["status"], "error");
        assert_eq!(row["http_status"], 400);
        let stored = row.to_string();
        assert!(
            stored.len() < 10_000,
            "the row holds no huge client string ({} bytes)",
            stored.len()
        );
    }
    let metrics = app.get("/metrics").await.text().await.expect("metrics text");
    let series = format!(
        r#"ai_request_count{{provider="none",status="error",task="{task}"}} {}"#,
        cases.len()
    );
    assert!(metrics.lines().any(|l| l == series), "no `{series}` in:\n{metrics}");
}

fn bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap()
}

fn chat_with(field: &str, value: Value) -> Vec<u8> {
    let mut body = json!({"model": TEST_MODEL, "messages": [{"role": "user", "content": "Hi"}]});
    body[field] = value;
    bytes(&body)
}

#[tokio::test]
async fn hostile_chat_bodies_get_400_naming_the_param_and_never_reach_the_upstream() {
    let ok = json!({"role": "user", "content": "Hi"});
    let base = json!({"model": TEST_MODEL, "messages": [ok]});
    refuse_all(
        "/v1/chat/completions",
        "chat",
        Shape::OpenAi,
        vec![
            ("deep nesting", deep_body(200, base.clone(), "metadata"), "metadata"),
            (
                "deep nesting in messages",
                bytes(&json!({"model": TEST_MODEL, "messages": [{"role": "user", "content": nested(300)}]})),
                "messages",
            ),
            (
                "messages of arrays",
                chat_with("messages", json!([["user", "Hi"]])),
                "messages[0]",
            ),
            ("empty messages", chat_with("messages", json!([])), "messages"),
            (
                "role of 5",
                chat_with("messages", json!([ok, ok, ok, {"role": 5, "content": "Hi"}])),
                "messages[3].role",
            ),
            (
                "unknown role",
                chat_with("messages", json!([{"role": "root", "content": "Hi"}])),
                "messages[0].role",
            ),
            (
                "content an object",
                chat_with("messages", json!([{"role": "user", "content": {"text": "Hi"}}])),
                "messages[0].content",
            ),
            (
                "tool without type",
                chat_with("tools", json!([{"function": {"name": "f"}}])),
                "tools[0].type",
            ),
            ("10 MB user", chat_with("user", json!(big(10 << 20))), "user"),
            (
                "10 MB role",
                chat_with("messages", json!([{"role": big(10 << 20), "content": "Hi"}])),
                "messages[0].role",
            ),
            ("4 MiB model", chat_with("model", json!(big(4 << 20))), "model"),
            ("negative max_tokens", chat_with("max_tokens", json!(-1)), "max_tokens"),
            (
                "max_tokens 1e999",
                br#"{"model":"gpt-test","messages":[{"role":"user","content":"Hi"}],"max_tokens":1e999}"#.to_vec(),
                "max_tokens",
            ),
            ("n of a million", chat_with("n", json!(1_000_000)), "n"),
            ("stream yes", chat_with("stream", json!("yes")), "stream"),
            (
                "duplicate model",
                br#"{"model":"gpt-test","messages":[{"role":"user","content":"Hi"}],"model":"other"}"#.to_vec(),
                "model",
            ),
            (
                "129 tools",
                chat_with("tools", json!(vec![json!({"type": "function"}); 129])),
                "tools",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn hostile_messages_bodies_get_400_in_anthropic_shape_and_never_reach_the_upstream() {
    let ok = json!({"role": "user", "content": "Hi"});
    let with = |field: &str, value: Value| {
        let mut body = json!({"model": TEST_MODEL, "max_tokens": 10, "messages": [ok]});
        body[field] = value;
        bytes(&body)
    };
    refuse_all(
        "/v1/messages",
        "messages",
        Shape::Anthropic,
        vec![
            (
                "deep nesting",
                deep_body(200, json!({"model": TEST_MODEL, "messages": [ok]}), "metadata"),
                "metadata",
            ),
            (
                "messages of arrays",
                with("messages", json!([["user", "Hi"]])),
                "messages[0]",
            ),
            (
                "role of 5",
                with("messages", json!([ok, ok, ok, {"role": 5, "content": "Hi"}])),
                "messages[3].role",
            ),
            (
                // `system` is a role there (a mid-conversation system message); `developer` is not.
                "developer role in messages",
                with("messages", json!([{"role": "developer", "content": "Hi"}])),
                "messages[0].role",
            ),
            (
                "content an object",
                with("messages", json!([{"role": "user", "content": {"text": "Hi"}}])),
                "messages[0].content",
            ),
            (
                "10 MB user_id",
                with("metadata", json!({"user_id": big(10 << 20)})),
                "metadata.user_id",
            ),
            ("4 MiB model", with("model", json!(big(4 << 20))), "model"),
            ("negative max_tokens", with("max_tokens", json!(-1)), "max_tokens"),
        ],
    )
    .await;
}

#[tokio::test]
async fn hostile_responses_bodies_get_400_naming_the_input_path_and_never_reach_the_upstream() {
    let with = |field: &str, value: Value| {
        let mut body = json!({"model": TEST_MODEL, "input": "Hi"});
        body[field] = value;
        bytes(&body)
    };
    refuse_all(
        "/v1/responses",
        "responses",
        Shape::OpenAi,
        vec![
            (
                "deep nesting",
                deep_body(200, json!({"model": TEST_MODEL, "input": "Hi"}), "metadata"),
                "metadata",
            ),
            ("input of arrays", with("input", json!([["user", "Hi"]])), "input[0]"),
            (
                "role of 5",
                with(
                    "input",
                    json!([{"role": "user", "content": "a"}, {"role": 5, "content": "Hi"}]),
                ),
                "input[1].role",
            ),
            (
                "content an object",
                with("input", json!([{"role": "user", "content": {"text": "Hi"}}])),
                "input[0].content",
            ),
            ("input an object", with("input", json!({"role": "user"})), "input"),
            ("10 MB user", with("user", json!(big(10 << 20))), "user"),
            ("4 MiB model", with("model", json!(big(4 << 20))), "model"),
            (
                "negative max_output_tokens",
                with("max_output_tokens", json!(-5)),
                "max_output_tokens",
            ),
            (
                "tool without type",
                with("tools", json!([{"name": "f"}])),
                "tools[0].type",
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn hostile_completions_bodies_get_400_naming_the_param_and_never_reach_the_upstream() {
    let with = |field: &str, value: Value| {
        let mut body = json!({"model": TEST_MODEL, "prompt": "Hi"});
        body[field] = value;
        bytes(&body)
    };
    refuse_all(
        "/v1/completions",
        "completions",
        Shape::OpenAi,
        vec![
            (
                "deep nesting",
                deep_body(200, json!({"model": TEST_MODEL, "prompt": "Hi"}), "logit_bias"),
                "logit_bias",
            ),
            ("prompt an object", with("prompt", json!({"text": "Hi"})), "prompt"),
            (
                "prompt of objects",
                with("prompt", json!([{"text": "Hi"}])),
                "prompt[0]",
            ),
            ("10 MB user", with("user", json!(big(10 << 20))), "user"),
            ("4 MiB model", with("model", json!(big(4 << 20))), "model"),
            ("n of a million", with("n", json!(1_000_000)), "n"),
            ("stream yes", with("stream", json!("yes")), "stream"),
        ],
    )
    .await;
}

#[tokio::test]
async fn hostile_embeddings_bodies_get_400_naming_the_param_and_never_reach_the_upstream() {
    let with = |field: &str, value: Value| {
        let mut body = json!({"model": TEST_MODEL, "input": "Hi"});
        body[field] = value;
        bytes(&body)
    };
    refuse_all(
        "/v1/embeddings",
        "embeddings",
        Shape::OpenAi,
        vec![
            (
                "deep nesting",
                deep_body(200, json!({"model": TEST_MODEL, "input": "Hi"}), "input"),
                "input",
            ),
            ("input an object", with("input", json!({"text": "Hi"})), "input"),
            (
                "input mixing strings and tokens",
                with("input", json!(["a", 1])),
                "input",
            ),
            ("token arrays of strings", with("input", json!([["a"]])), "input[0][0]"),
            ("empty input", with("input", json!([])), "input"),
            ("10 MB user", with("user", json!(big(10 << 20))), "user"),
            ("4 MiB model", with("model", json!(big(4 << 20))), "model"),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_valid_chat_body_with_unknown_fields_reaches_the_upstream_byte_for_byte() {
    // Arrange
    let upstream = MockServer::start().await;
    mount_chat(&upstream, completion(), 1).await;
    let app = app(&upstream).await;
    let body = r#"{"model":"gpt-test","messages":[{"role":"user","content":[{"type":"text","text":"Hi"}],"x-vendor":{"a":[1,2]}}],"top_k":3,"n":128,"temperature":0.2,"vendor_extra":{"deep":[[["ok"]]]}}"#;

    // Act
    let response = app.post_raw("/v1/chat/completions", body).await;

    // Assert
    assert_eq!(response.status(), 200);
    let sent = &received(&upstream).await[0].body;
    assert_eq!(String::from_utf8_lossy(sent), body);
}

#[tokio::test]
async fn a_model_within_a_raised_cap_is_routed() {
    // Arrange: the cap is configurable; 300 bytes is over the default and under this one.
    let upstream = MockServer::start().await;
    mount_chat(&upstream, completion(), 0).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&upstream)))
        .settings("limits: {max_model_bytes: 512}")
        .spawn()
        .await;

    // Act
    let response = app
        .post_raw("/v1/chat/completions", chat_with("model", json!(big(300))))
        .await;

    // Assert: past validation, it is an unknown model (404), not a 400.
    assert_eq!(response.status(), 404);
}

#[tokio::test]
async fn encoding_tricks_get_400_invalid_json_and_never_reach_the_upstream() {
    // Arrange
    let upstream = MockServer::start().await;
    mount_chat(&upstream, completion(), 0).await;
    let app = app(&upstream).await;
    let json_body = r#"{"model":"gpt-test","messages":[{"role":"user","content":"Hi"}]}"#;
    let mut bom = b"\xEF\xBB\xBF".to_vec();
    bom.extend_from_slice(json_body.as_bytes());
    let utf16: Vec<u8> = json_body.encode_utf16().flat_map(u16::to_le_bytes).collect();
    // A gzip member header and a deflate stream that would inflate far past the body limit: the
    // gateway never inflates request bodies, so it is just bytes that are not JSON.
    let mut bomb = vec![0x1f, 0x8b, 0x08, 0x00, 0, 0, 0, 0, 0x00, 0x03];
    bomb.extend(std::iter::repeat_n(0xEDu8, 64 * 1024));
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("byte order mark", "application/json", bom),
        (
            "UTF-16 declared in the charset",
            "application/json; charset=utf-16",
            utf16,
        ),
        ("gzip bomb", "application/json", bomb),
    ];

    for (name, content_type, body) in cases {
        // Act
        let response = app
            .client
            .post(app.url("/v1/chat/completions"))
            .header("content-type", content_type)
            .header("content-encoding", "gzip")
            .body(body)
            .send()
            .await
            .expect("request sent");

        // Assert
        assert_eq!(response.status(), 400, "{name}");
        let body = json(response).await;
        assert_eq!(assert_openai_error(&body)["code"], "invalid_json", "{name}: {body}");
    }
    assert!(received(&upstream).await.is_empty(), "nothing reached the upstream");
}

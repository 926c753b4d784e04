//! Coding-agent sessions and token details in history: the session headers and Responses'
//! `prompt_cache_key` become `session_id`, `GET /history?session=` filters on it (SQLite and
//! PostgreSQL), and cached, cache-write and reasoning tokens fill their columns from an OpenAI
//! upstream's usage details and from Anthropic's cache counts.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::fixtures::{self, anthropic};
use crate::helpers::{
    Database, ProviderSpec, SseMock, SseReader, TEST_MODEL, TestApp, chat_body, completion, json, mount_chat,
    stream_body, upstream_url,
};

/// Runs a test once per backend, so both stay equal.
macro_rules! on_both_databases {
    ($name:ident, $body:ident) => {
        mod $name {
            use super::*;
            #[tokio::test]
            async fn on_sqlite() {
                $body(Database::Sqlite).await;
            }
            #[tokio::test]
            async fn on_postgres() {
                $body(Database::Postgres).await;
            }
        }
    };
}

async fn app_on(db: Database, mock: &MockServer) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(mock)))
        .database(db)
        .spawn()
        .await
}

async fn post_with(app: &TestApp, path: &str, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut request = app.client.post(app.url(path)).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

async fn history(app: &TestApp, query: &str) -> Vec<Value> {
    let response = app.get(&format!("/history{query}")).await;
    assert_eq!(response.status(), 200);
    json(response).await.as_array().expect("rows").clone()
}

on_both_databases!(session_headers_are_recorded_and_filtered, session_headers);
async fn session_headers(db: Database) {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 4).await;
    let app = app_on(db, &alpha).await;
    let body = chat_body(TEST_MODEL);

    // Act: Claude Code's header, Codex's, a generic one, and none.
    for headers in [
        &[("x-claude-code-session-id", "7c1f-claude")][..],
        &[("session-id", "019a-codex")][..],
        &[("session_id", "7c1f-claude"), ("x-session-id", "ignored")][..],
        &[][..],
    ] {
        assert_eq!(
            post_with(&app, "/v1/chat/completions", &body, headers).await.status(),
            200
        );
    }
    app.history_rows(4).await;

    // Assert
    let claude = history(&app, "?session=7c1f-claude").await;
    assert_eq!(claude.len(), 2, "{claude:#?}");
    assert!(claude.iter().all(|r| r["session_id"] == "7c1f-claude"));
    let codex = history(&app, "?session=019a-codex").await;
    assert_eq!(codex.len(), 1);
    let user = json(app.get("/api/u/anyone/history?session=019a-codex").await).await;
    assert_eq!(user.as_array().map(Vec::len), Some(1), "the user namespace filters too");
    assert!(
        history(&app, "?session=ignored").await.is_empty(),
        "the first header present wins"
    );
    let all = history(&app, "").await;
    assert_eq!(all.iter().filter(|r| r["session_id"].is_null()).count(), 1);
    let response = app.get("/history?session=a%00b").await;
    assert_eq!(response.status(), 400);
    assert_eq!(json(response).await["error"]["param"], "session");
}

on_both_databases!(
    responses_prompt_cache_key_is_the_session_without_a_header,
    prompt_cache_key
);
async fn prompt_cache_key(db: Database) {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = app_on(db, &alpha).await;
    let body = json!({"model": TEST_MODEL, "input": "Hi", "prompt_cache_key": "019a-thread", "store": false});

    // Act
    assert_eq!(post_with(&app, "/v1/responses", &body, &[]).await.status(), 200);
    let headers = [("session-id", "019a-header")];
    assert_eq!(post_with(&app, "/v1/responses", &body, &headers).await.status(), 200);

    // Assert
    app.history_rows(2).await;
    let rows = history(&app, "?session=019a-thread").await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["endpoint"], "/v1/responses");
    assert_eq!(
        history(&app, "?session=019a-header").await.len(),
        1,
        "a header wins over the body"
    );
}

#[tokio::test]
async fn a_long_session_id_is_capped() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = app_on(Database::Sqlite, &alpha).await;
    let long = "s".repeat(5000);

    // Act
    let response = post_with(
        &app,
        "/v1/chat/completions",
        &chat_body(TEST_MODEL),
        &[("x-session-id", &long)],
    )
    .await;

    // Assert
    assert_eq!(response.status(), 200);
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["session_id"].as_str().expect("session").chars().count(), 256);
}

/// An OpenAI reply whose usage details name cached and reasoning tokens (the API reference's shape).
fn detailed_completion() -> Value {
    let mut c = fixtures::json(fixtures::CHAT_COMPLETION);
    c["usage"] = json!({
        "prompt_tokens": 2006, "completion_tokens": 300, "total_tokens": 2306,
        "prompt_tokens_details": {"cached_tokens": 1920, "audio_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": 256, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}
    });
    c
}

on_both_databases!(chat_usage_details_fill_the_token_columns, chat_usage_details);
async fn chat_usage_details(db: Database) {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(
        &alpha,
        ResponseTemplate::new(200).set_body_json(detailed_completion()),
        1,
    )
    .await;
    let app = app_on(db, &alpha).await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(
        json(response).await["usage"],
        detailed_completion()["usage"],
        "passed through untouched"
    );
    let row = &app.history_rows(1).await[0];
    assert_eq!(
        (
            &row["prompt_tokens"],
            &row["cached_tokens"],
            &row["reasoning_tokens"],
            &row["cache_write_tokens"]
        ),
        (&json!(2006), &json!(1920), &json!(256), &json!(0))
    );
}

#[tokio::test]
async fn a_streamed_usage_chunk_fills_the_token_columns() {
    // Arrange
    let upstream = SseMock::start().await;
    let usage = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": TEST_MODEL, "choices": [],
        "usage": {"prompt_tokens": 64, "completion_tokens": 8, "total_tokens": 72, "prompt_cache_hit_tokens": 48, "prompt_cache_miss_tokens": 16,
            "completion_tokens_details": {"reasoning_tokens": 5}}});
    let text = json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": TEST_MODEL,
        "choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "stop"}], "usage": null});
    upstream
        .autoplay_raw(vec![
            format!("data: {text}\n\n"),
            format!("data: {usage}\n\n"),
            "data: [DONE]\n\n".to_owned(),
        ])
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream.base_url()))
        .spawn()
        .await;

    // Act
    let rest = SseReader::new(app.post_chat(&stream_body(TEST_MODEL)).await)
        .rest()
        .await;

    // Assert
    assert_eq!(rest.last().map(String::as_str), Some("[DONE]"));
    let row = &app.history_rows(1).await[0];
    assert_eq!(
        (&row["cached_tokens"], &row["reasoning_tokens"]),
        (&json!(48), &json!(5))
    );
}

on_both_databases!(anthropic_cache_counts_fill_the_token_columns, anthropic_cache_counts);
async fn anthropic_cache_counts(db: Database) {
    // Arrange
    let claude = MockServer::start().await;
    let mut message = fixtures::json(anthropic::MESSAGE);
    message["usage"] = json!({"input_tokens": 12, "cache_creation_input_tokens": 2048, "cache_read_input_tokens": 4096, "output_tokens": 30});
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(message))
        .expect(1)
        .mount(&claude)
        .await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("claude", claude.uri())
                .kind("anthropic")
                .models(&["claude-sonnet-4-5"]),
        )
        .database(db)
        .spawn()
        .await;

    // Act
    let response = post_with(
        &app,
        "/v1/chat/completions",
        &chat_body("claude-sonnet-4-5"),
        &[("x-claude-code-session-id", "cc-1")],
    )
    .await;

    // Assert
    assert_eq!(response.status(), 200);
    let usage = &json(response).await["usage"];
    assert_eq!(usage["prompt_tokens"], 6156, "cache reads and writes are prompt tokens");
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 4096);
    let row = &app.history_rows(1).await[0];
    assert_eq!(
        (
            &row["prompt_tokens"],
            &row["cached_tokens"],
            &row["cache_write_tokens"],
            &row["reasoning_tokens"]
        ),
        (&json!(6156), &json!(4096), &json!(2048), &json!(0))
    );
    assert_eq!(row["session_id"], "cc-1");
}

//! `POST /v1/responses` (the Responses API) and `POST /v1/completions` (legacy completions),
//! bridged to chat-completions upstreams through the same orchestrator.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use wiremock::MockServer;

use crate::helpers::fixtures;
use crate::helpers::{
    ProviderSpec, SseMock, SseReader, TEST_MODEL, TestApp, assert_openai_error, completion, json, mount_chat, received,
    upstream_url,
};

const RESPONSE: &str = include_str!("../fixtures/responses/response.json");

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

async fn app_with(mock_base: String) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", mock_base))
        .spawn()
        .await
}

/// A streamed answer's events: (event name, data).
async fn named_events(response: reqwest::Response) -> Vec<(String, Value)> {
    let text = response.text().await.expect("body");
    text.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .map(|e| {
            let name = e
                .lines()
                .find_map(|l| l.strip_prefix("event: "))
                .expect("event line")
                .to_owned();
            let data = e.lines().find_map(|l| l.strip_prefix("data: ")).expect("data line");
            (name, serde_json::from_str(data).expect("data JSON"))
        })
        .collect()
}

#[tokio::test]
async fn responses_request_is_answered_with_a_response_object() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = app_with(upstream_url(&alpha)).await;

    // Act
    let response = app
        .post_json(
            "/v1/responses",
            &json!({"model": TEST_MODEL, "instructions": "Be brief.", "input": "Tell me a story.", "max_output_tokens": 100}),
        )
        .await;

    // Assert
    assert_eq!(response.status(), 200);
    let r = json(response).await;
    assert_eq!(
        keys(&r),
        keys(&fixtures::json(RESPONSE)),
        "the same fields as OpenAI's example"
    );
    let expected = fixtures::json(fixtures::CHAT_COMPLETION);
    assert_eq!(r["object"], "response");
    assert_eq!(r["status"], "completed");
    assert_eq!(r["instructions"], "Be brief.");
    assert_eq!(r["output"][0]["type"], "message");
    assert_eq!(
        r["output"][0]["content"][0]["text"],
        expected["choices"][0]["message"]["content"]
    );
    assert_eq!(r["usage"]["total_tokens"], expected["usage"]["total_tokens"]);
    let sent: Value = received(&alpha).await[0].body_json().expect("chat body");
    assert_eq!(
        sent["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Tell me a story."}])
    );
    assert_eq!(sent["max_tokens"], 100);
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["endpoint"], "/v1/responses");
}

#[tokio::test]
async fn responses_stream_brings_response_events_with_a_function_call() {
    // Arrange
    let alpha = SseMock::start().await;
    let call = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1",
                   "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        )
    };
    alpha
        .autoplay_raw(vec![
            call(json!({"role": "assistant", "content": null, "tool_calls": [{"index": 0, "id": "call_12345xyz", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]}), Value::Null),
            call(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"location\":"}}]}), Value::Null),
            call(json!({"tool_calls": [{"index": 0, "function": {"arguments": "\"Paris, France\"}"}}]}), Value::Null),
            call(json!({}), json!("tool_calls")),
            "data: {\"id\":\"chatcmpl-1\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"gpt-4.1\",\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":9,\"total_tokens\":59}}\n\n".into(),
            "data: [DONE]\n\n".into(),
        ])
        .await;
    let app = app_with(alpha.base_url()).await;
    let body = json!({
        "model": TEST_MODEL,
        "input": [{"role": "user", "content": "What is the weather like in Paris today?"}],
        "tools": [{"type": "function", "name": "get_weather", "description": "Get current temperature for a given location.",
                   "parameters": {"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]}}],
        "stream": true
    });

    // Act
    let response = app.post_json("/v1/responses", &body).await;

    // Assert
    assert_eq!(response.status(), 200);
    let events = named_events(response).await;
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    for (name, data) in &events {
        assert_eq!(data["type"], name.as_str(), "each event's data names its type");
    }
    let done = &events.last().expect("completed").1["response"];
    assert_eq!(done["output"][0]["type"], "function_call");
    assert_eq!(done["output"][0]["call_id"], "call_12345xyz");
    assert_eq!(done["output"][0]["arguments"], "{\"location\":\"Paris, France\"}");
    assert_eq!(
        done["usage"]["total_tokens"], 59,
        "the usage chunk feeds response.completed"
    );
    let sent: Value = serde_json::from_slice(&alpha.next_connection().await.request.body).expect("chat body");
    assert_eq!(sent["tools"][0]["function"]["name"], "get_weather");
    assert_eq!(sent["stream_options"]["include_usage"], true);
}

#[tokio::test]
async fn responses_stream_of_text_streams_deltas() {
    // Arrange
    let alpha = SseMock::start().await;
    alpha.autoplay_raw(fixtures::chunk_events()).await;
    let app = app_with(alpha.base_url()).await;

    // Act
    let response = app
        .post_json(
            "/v1/responses",
            &json!({"model": TEST_MODEL, "input": "Hi", "stream": true}),
        )
        .await;

    // Assert
    let events = named_events(response).await;
    let text: String = events
        .iter()
        .filter(|(n, _)| n == "response.output_text.delta")
        .map(|(_, d)| d["delta"].as_str().expect("delta").to_owned())
        .collect();
    let done = events
        .iter()
        .find(|(n, _)| n == "response.output_text.done")
        .expect("text done");
    assert_eq!(done.1["text"], text.as_str());
    assert_eq!(events.last().expect("last").0, "response.completed");
}

#[tokio::test]
async fn stateful_responses_features_are_refused_clearly() {
    // Arrange
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", "http://127.0.0.1:9/v1"))
        .spawn()
        .await;

    // Act
    let response = app
        .post_json(
            "/v1/responses",
            &json!({"model": TEST_MODEL, "input": "x", "previous_response_id": "resp_1"}),
        )
        .await;

    // Assert
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    assert_eq!(assert_openai_error(&body)["param"], "previous_response_id");
}

#[tokio::test]
async fn completions_request_is_answered_with_a_text_completion() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = app_with(upstream_url(&alpha)).await;

    // Act
    let response = app
        .post_json(
            "/v1/completions",
            &json!({"model": TEST_MODEL, "prompt": "Say this is a test", "temperature": 0}),
        )
        .await;

    // Assert
    assert_eq!(response.status(), 200);
    let c = json(response).await;
    let expected = fixtures::json(fixtures::CHAT_COMPLETION);
    assert_eq!(c["object"], "text_completion");
    assert_eq!(c["choices"][0]["text"], expected["choices"][0]["message"]["content"]);
    assert_eq!(c["usage"], expected["usage"]);
    let sent: Value = received(&alpha).await[0].body_json().expect("chat body");
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": "Say this is a test"}])
    );
    assert_eq!(sent["max_tokens"], 16, "the legacy API's default");
    assert_eq!(app.history_rows(1).await[0]["endpoint"], "/v1/completions");
}

#[tokio::test]
async fn completions_stream_arrives_as_text_completion_chunks() {
    // Arrange
    let alpha = SseMock::start().await;
    alpha.autoplay_raw(fixtures::chunk_events()).await;
    let app = app_with(alpha.base_url()).await;

    // Act
    let response = app
        .post_json(
            "/v1/completions",
            &json!({"model": TEST_MODEL, "prompt": "Hi", "stream": true}),
        )
        .await;

    // Assert
    let rest = SseReader::new(response).rest().await;
    assert_eq!(rest.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = rest[..rest.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("chunk"))
        .collect();
    assert!(chunks.iter().all(|c| c["object"] == "text_completion"), "{chunks:?}");
    let text: String = chunks.iter().filter_map(|c| c["choices"][0]["text"].as_str()).collect();
    let expected: String = fixtures::chunk_payloads()
        .iter()
        .filter_map(|p| serde_json::from_str::<Value>(p).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, expected);
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none_or(Value::is_null)),
        "no usage chunk unasked"
    );
}

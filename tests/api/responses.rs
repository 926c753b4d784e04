//! `POST /v1/responses` (the Responses API) and `POST /v1/completions` (legacy completions),
//! bridged to chat-completions upstreams through the same orchestrator.

use std::collections::BTreeSet;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::fixtures;
use crate::helpers::{
    ProviderSpec, SseMock, SseReader, TEST_MODEL, TestApp, assert_openai_error, completion, json, mount_chat, received,
    upstream_url,
};

const RESPONSE: &str = include_str!("../fixtures/responses/response.json");

/// What Codex CLI sends (tests/fixtures/responses/README.md).
const CODEX: &str = include_str!("../fixtures/responses/codex_request.json");

fn codex_body(stream: bool) -> Value {
    let mut body = fixtures::json(CODEX);
    body["model"] = json!(TEST_MODEL);
    body["stream"] = json!(stream);
    body
}

/// Top-level fields OpenAI's chat completions API knows; it refuses any other
/// ("Unrecognized request argument supplied").
const CHAT_FIELDS: &[&str] = &[
    "model",
    "messages",
    "stream",
    "stream_options",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "max_completion_tokens",
    "max_tokens",
    "temperature",
    "top_p",
    "user",
    "safety_identifier",
    "prompt_cache_key",
    "reasoning_effort",
    "response_format",
    "n",
    "stop",
    "seed",
    "logprobs",
    "top_logprobs",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "metadata",
    "store",
    "service_tier",
    "modalities",
    "audio",
    "prediction",
    "verbosity",
    "web_search_options",
];

/// Why OpenAI's chat completions API would refuse `body` (its own refusals, checked here because
/// the shared mocks take any body), or `None`.
fn chat_refusal(body: &Value) -> Option<String> {
    let obj = body.as_object()?;
    if let Some(k) = obj.keys().find(|k| !CHAT_FIELDS.contains(&k.as_str())) {
        return Some(format!("Unrecognized request argument supplied: {k}"));
    }
    if obj.contains_key("metadata") && body["store"] != true {
        return Some("The 'metadata' parameter is only allowed when 'store' is enabled.".into());
    }
    let tools = body["tools"].as_array();
    if tools.is_some_and(Vec::is_empty) {
        return Some("[] is too short - 'tools'".into());
    }
    for k in ["tool_choice", "parallel_tool_calls"] {
        if obj.contains_key(k) && tools.is_none() {
            return Some(format!(
                "Invalid value for '{k}': only allowed when 'tools' are specified."
            ));
        }
    }
    for t in tools.into_iter().flatten() {
        let name = t["function"]["name"].as_str().unwrap_or_default();
        let name_ok =
            (1..=64).contains(&name.len()) && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
        if t["type"] != "function" || !name_ok {
            return Some(format!("Invalid tool: {t}"));
        }
    }
    // A tool message answers a call of the assistant message before it.
    let mut open_calls: Vec<String> = Vec::new();
    for m in body["messages"].as_array()? {
        match m["role"].as_str() {
            Some("tool") => {
                let id = m["tool_call_id"].as_str().unwrap_or_default();
                let Some(at) = open_calls.iter().position(|c| c == id) else {
                    return Some(
                        "messages with role 'tool' must be a response to a preceding message with 'tool_calls'".into(),
                    );
                };
                open_calls.remove(at);
            }
            Some("assistant") => {
                open_calls = m["tool_calls"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| c["id"].as_str().map(str::to_owned))
                    .collect();
            }
            Some("system" | "developer" | "user") => open_calls.clear(),
            other => return Some(format!("Invalid role {other:?}")),
        }
    }
    None
}

/// A chat upstream as strict as OpenAI's about the request, answering `answer` once.
pub(crate) async fn strict_chat(server: &MockServer, answer: ResponseTemplate) {
    strict_chat_times(server, answer, 1).await;
}

/// `strict_chat`, expecting `calls` requests.
pub(crate) async fn strict_chat_times(server: &MockServer, answer: ResponseTemplate, calls: u64) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(move |req: &wiremock::Request| {
            let body: Value = serde_json::from_slice(&req.body).unwrap_or_default();
            match chat_refusal(&body) {
                Some(message) => ResponseTemplate::new(400).set_body_json(json!({"error": {
                    "message": message, "type": "invalid_request_error", "param": null, "code": null}})),
                None => answer.clone(),
            }
        })
        .expect(calls)
        .mount(server)
        .await;
}

/// A chat `usage` with the cache and reasoning details OpenAI reports.
fn detailed_usage() -> Value {
    json!({"prompt_tokens": 1200, "completion_tokens": 80, "total_tokens": 1280,
           "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
           "completion_tokens_details": {"reasoning_tokens": 48, "audio_tokens": 0}})
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object().expect("object").keys().cloned().collect()
}

pub(crate) async fn app_with(mock_base: String) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", mock_base))
        .spawn()
        .await
}

/// A streamed answer's events: (event name, data).
pub(crate) async fn named_events(response: reqwest::Response) -> Vec<(String, Value)> {
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
    assert_eq!(sent["max_completion_tokens"], 100);
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

#[tokio::test]
async fn a_codex_request_calls_a_namespaced_tool_through_a_chat_upstream() {
    // Arrange
    let alpha = MockServer::start().await;
    let completion = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1741476542, "model": "gpt-4.1",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "reasoning_content": "The sub-agent is still working; wait for it.",
            "tool_calls": [{"id": "call_wait", "type": "function",
                            "function": {"name": "multi_agent_v1__wait_agent", "arguments": "{\"ids\":[\"agent-1\"]}"}}]}}],
        "usage": detailed_usage()});
    strict_chat(&alpha, ResponseTemplate::new(200).set_body_json(completion)).await;
    let app = app_with(upstream_url(&alpha)).await;

    // Act
    let response = app.post_json("/v1/responses", &codex_body(false)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("x-ai-gateway-dropped-tools")
            .map(|v| v.to_str().unwrap()),
        Some("web_search"),
        "the hosted tool the bridge left out is named"
    );
    let r = json(response).await;
    assert_eq!(r["output"][0]["type"], "reasoning");
    assert_eq!(
        r["output"][0]["summary"],
        json!([{"type": "summary_text", "text": "The sub-agent is still working; wait for it."}])
    );
    let call = &r["output"][1];
    assert_eq!(call["type"], "function_call");
    assert_eq!(call["namespace"], "multi_agent_v1", "{call}");
    assert_eq!(call["name"], "wait_agent");
    assert_eq!(call["call_id"], "call_wait");
    assert_eq!(
        r["usage"],
        json!({"input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024}, "output_tokens": 80,
               "output_tokens_details": {"reasoning_tokens": 48}, "total_tokens": 1280})
    );
    let sent: Value = received(&alpha).await[0].body_json().expect("chat body");
    let names: Vec<&str> = sent["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .map(|t| t["function"]["name"].as_str().expect("name"))
        .collect();
    assert!(names.contains(&"multi_agent_v1__wait_agent"), "{names:?}");
    assert!(!names.iter().any(|n| n.contains("web_search")), "{names:?}");
    let history_call = sent["messages"]
        .as_array()
        .expect("messages")
        .iter()
        .flat_map(|m| m["tool_calls"].as_array().into_iter().flatten())
        .find(|c| c["id"] == "call_spawn")
        .expect("the namespaced call in the history");
    assert_eq!(history_call["function"]["name"], "multi_agent_v1__spawn_agent");
    assert_eq!(sent["reasoning_effort"], "medium");
    assert_eq!(sent["prompt_cache_key"], "019af3c2-5d7e-7f10-9a41-2b8c6d0e4f11");
}

#[tokio::test]
async fn a_streamed_codex_request_gets_reasoning_then_a_namespaced_call() {
    // Arrange
    let alpha = MockServer::start().await;
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1",
                   "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
        )
    };
    let sse = [
        chunk(json!({"role": "assistant", "content": null, "reasoning_content": "Still"}), Value::Null),
        chunk(json!({"reasoning_content": " working."}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "id": "call_wait", "type": "function", "function": {"name": "multi_agent_v1__wait_agent", "arguments": ""}}]}), Value::Null),
        chunk(json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"ids\":[\"agent-1\"]}"}}]}), Value::Null),
        chunk(json!({}), json!("tool_calls")),
        format!("data: {}\n\n", json!({"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1, "model": "gpt-4.1", "choices": [], "usage": detailed_usage()})),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    strict_chat(
        &alpha,
        ResponseTemplate::new(200).set_body_raw(sse, "text/event-stream"),
    )
    .await;
    let app = app_with(upstream_url(&alpha)).await;

    // Act
    let response = app.post_json("/v1/responses", &codex_body(true)).await;

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
            "response.reasoning_summary_part.added",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.delta",
            "response.reasoning_summary_text.done",
            "response.reasoning_summary_part.done",
            "response.output_item.done",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed"
        ]
    );
    let call_added = &events[9].1["item"];
    assert_eq!(
        (&call_added["namespace"], &call_added["name"]),
        (&json!("multi_agent_v1"), &json!("wait_agent"))
    );
    let done = &events.last().expect("completed").1["response"];
    assert_eq!(done["output"][0]["type"], "reasoning");
    assert_eq!(done["output"][0]["summary"][0]["text"], "Still working.");
    assert_eq!(done["output"][1]["namespace"], "multi_agent_v1");
    assert_eq!(done["output"][1]["arguments"], "{\"ids\":[\"agent-1\"]}");
    assert_eq!(done["usage"]["input_tokens_details"]["cached_tokens"], 1024);
    assert_eq!(done["usage"]["output_tokens_details"]["reasoning_tokens"], 48);
}

#[tokio::test]
async fn hosted_tools_are_left_out_and_the_request_is_answered() {
    // Arrange
    let alpha = MockServer::start().await;
    strict_chat(&alpha, completion()).await;
    let app = app_with(upstream_url(&alpha)).await;
    let body = json!({"model": TEST_MODEL, "input": "What happened today?", "tools": [{"type": "web_search"}],
                      "tool_choice": {"type": "web_search"}, "parallel_tool_calls": true, "store": false,
                      "include": ["reasoning.encrypted_content", "web_search_call.action.sources"],
                      "metadata": {"team": "a"}});

    // Act
    let response = app.post_json("/v1/responses", &body).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["output"][0]["type"], "message");
    let sent: Value = received(&alpha).await[0].body_json().expect("chat body");
    for k in [
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "include",
        "store",
        "metadata",
    ] {
        assert!(sent.get(k).is_none(), "{k} reached the chat upstream: {sent}");
    }
}

#[tokio::test]
async fn a_malformed_codex_body_is_refused_with_its_param() {
    // Arrange
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", "http://127.0.0.1:9/v1"))
        .spawn()
        .await;
    let mut body = codex_body(false);
    body["tools"][7]["tools"][1] = json!({"name": "send_input"});

    // Act
    let response = app.post_json("/v1/responses", &body).await;

    // Assert
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    assert_eq!(assert_openai_error(&body)["param"], "tools[7].tools[1].type");
}

#[tokio::test]
async fn a_stored_namespaced_call_goes_back_under_its_flat_name_when_the_conversation_continues() {
    // Arrange
    let alpha = MockServer::start().await;
    let completion = json!({"id": "chatcmpl-1", "object": "chat.completion", "created": 1741476542, "model": "gpt-4.1",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
            "tool_calls": [{"id": "call_wait", "type": "function",
                            "function": {"name": "multi_agent_v1__wait_agent", "arguments": "{}"}}]}}]});
    strict_chat_times(&alpha, ResponseTemplate::new(200).set_body_json(completion), 2).await;
    let app = app_with(upstream_url(&alpha)).await;
    let mut first = codex_body(false);
    first["store"] = json!(true);
    let stored = json(app.post_json("/v1/responses", &first).await).await;
    assert_eq!(stored["output"][0]["namespace"], "multi_agent_v1", "{stored}");
    let next = json!({"model": TEST_MODEL, "previous_response_id": stored["id"], "tools": first["tools"],
                      "input": [{"type": "function_call_output", "call_id": "call_wait", "output": "agent-1 finished"}]});

    // Act
    let response = app.post_json("/v1/responses", &next).await;

    // Assert
    assert_eq!(response.status(), 200);
    let sent: Value = received(&alpha).await[1].body_json().expect("chat body");
    let messages = sent["messages"].as_array().expect("messages");
    let call = &messages[messages.len() - 2];
    assert_eq!(
        call["tool_calls"][0]["function"]["name"], "multi_agent_v1__wait_agent",
        "{sent}"
    );
    assert_eq!(messages[messages.len() - 1]["tool_call_id"], "call_wait");
}

#[test]
fn the_strict_chat_mock_refuses_what_openai_refuses() {
    let ok = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
    assert_eq!(chat_refusal(&ok), None);
    let refused = [
        json!({"model": "m", "messages": [], "store": false, "include": ["reasoning.encrypted_content"]}),
        json!({"model": "m", "messages": [], "metadata": {"a": "b"}}),
        json!({"model": "m", "messages": [], "tool_choice": "auto"}),
        json!({"model": "m", "messages": [], "tools": []}),
        json!({"model": "m", "messages": [], "tools": [{"type": "web_search"}]}),
        json!({"model": "m", "messages": [], "tools": [{"type": "function", "function": {"name": "a.b"}}]}),
        json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "c", "content": "x"}]}),
    ];
    for body in refused {
        assert!(chat_refusal(&body).is_some(), "{body}");
    }
}

#[tokio::test]
async fn hosted_tools_reject_refuses_a_codex_request_on_a_bridged_provider() {
    // Arrange
    let alpha = MockServer::start().await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings("responses_bridge: {hosted_tools: reject}")
        .spawn()
        .await;

    // Act
    let response = app.post_json("/v1/responses", &codex_body(false)).await;

    // Assert
    assert_eq!(response.status(), 400);
    let e = json(response).await;
    assert!(
        e["error"]["param"].as_str().is_some_and(|p| p.ends_with(".type")),
        "{e}"
    );
    assert!(
        e["error"]["message"].as_str().is_some_and(|m| m.contains("web_search")),
        "{e}"
    );
    assert!(
        received(&alpha).await.is_empty(),
        "a refused request never reaches the upstream"
    );
}

#[tokio::test]
async fn responses_served_by_anthropic_report_cached_and_reasoning_tokens() {
    // Arrange: an Anthropic upstream that thinks, reads the cache and counts its thinking tokens.
    let claude = MockServer::start().await;
    let message = json!({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "thinking", "thinking": "Six times seven.", "signature": "EqQBCgIYAhIMsig"},
                    {"type": "text", "text": "42"}],
        "stop_reason": "end_turn", "stop_sequence": null,
        "usage": {"input_tokens": 20, "cache_creation_input_tokens": 30, "cache_read_input_tokens": 100,
                  "output_tokens": 60, "output_tokens_details": {"thinking_tokens": 45}}});
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_json(&message))
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

    // Act
    let response = app
        .post_json(
            "/v1/responses",
            &json!({"model": "claude-sonnet-4-5", "input": "Six times seven?", "reasoning": {"effort": "low"},
                    "include": ["reasoning.encrypted_content"], "store": false}),
        )
        .await;

    // Assert
    assert_eq!(response.status(), 200);
    let r = json(response).await;
    assert_eq!(
        r["usage"],
        json!({"input_tokens": 150, "input_tokens_details": {"cached_tokens": 100},
               "output_tokens": 60, "output_tokens_details": {"reasoning_tokens": 45}, "total_tokens": 210})
    );
    assert_eq!(r["output"][0]["type"], "reasoning");
    assert_eq!(r["output"][0]["summary"][0]["text"], "Six times seven.");
    assert!(r["output"][0]["encrypted_content"].is_string());
    let sent: Value = received(&claude).await[0].body_json().expect("Messages body");
    assert_eq!(sent["thinking"], json!({"type": "enabled", "budget_tokens": 1024}));
}

//! Streams that recover (`stream_recovery: continue`): a stream cut after text reached the client
//! is continued by the next provider and spliced into the same client stream, without repeated
//! text, with history and usage covering both attempts; without it, or inside a tool call, the cut
//! ends with the error event as before.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{Connection, ProviderSpec, SseMock, SseReader, TEST_MODEL, TestApp, stream_body};

const CLAUDE: &str = "claude-sonnet-4-5";

/// The ten chunks the first upstream sends before it drops the connection: the role, then words.
const WORDS: [&str; 9] = [
    "The",
    " quick",
    " brown",
    " fox",
    " jumps",
    " over",
    " the lazy dog.",
    " Then it",
    " went home",
];

fn sent() -> String {
    WORDS.concat()
}

/// A `chat.completion.chunk` from the upstream whose chunks carry `id`.
fn chunk(id: &str, delta: Value, finish: Option<&str>) -> String {
    json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": TEST_MODEL,
           "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    .to_string()
}

fn usage_chunk(id: &str, prompt: u64, completion: u64) -> String {
    json!({"id": id, "object": "chat.completion.chunk", "created": 1_700_000_000, "model": TEST_MODEL, "choices": [],
           "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}})
    .to_string()
}

/// A whole continuation from `id`, as raw SSE chunks: its role, `pieces`, the finish, the usage.
fn continuation(id: &str, pieces: &[&str]) -> Vec<String> {
    let mut events = vec![chunk(id, json!({"role": "assistant", "content": ""}), None)];
    events.extend(pieces.iter().map(|p| chunk(id, json!({"content": p}), None)));
    events.push(chunk(id, json!({}), Some("stop")));
    events.push(usage_chunk(id, 40, 5));
    let mut raw: Vec<String> = events.into_iter().map(|e| format!("data: {e}\n\n")).collect();
    raw.push("data: [DONE]\n\n".into());
    raw
}

async fn app(alpha: &SseMock, beta: &SseMock, beta_id: &str, settings: &str) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .provider(ProviderSpec::new(beta_id, beta.base_url()))
        .settings(settings)
        .spawn()
        .await
}

/// Starts a stream of `body`, lets alpha send its ten chunks and reads them; alpha's connection
/// is returned for the test to cut.
async fn ten_chunks_read(app: &TestApp, alpha: &SseMock, body: &Value) -> (Connection, SseReader, Vec<Value>) {
    let pending = tokio::spawn(app.post_chat(body));
    let upstream = alpha.next_connection().await;
    upstream.send_event(&chunk(
        "chatcmpl-alpha",
        json!({"role": "assistant", "content": ""}),
        None,
    ));
    for word in WORDS {
        upstream.send_event(&chunk("chatcmpl-alpha", json!({"content": word}), None));
    }
    let response = pending.await.expect("request task");
    assert_eq!(response.status(), 200);
    let mut reader = SseReader::new(response);
    let mut seen = Vec::new();
    for _ in 0..10 {
        seen.push(reader.next_json().await);
    }
    (upstream, reader, seen)
}

fn text(chunks: &[Value]) -> String {
    chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect()
}

/// The data of the rest of the stream, JSON events parsed; `[DONE]` as a string.
fn parsed(rest: Vec<String>) -> Vec<Value> {
    rest.into_iter()
        .map(|d| serde_json::from_str(&d).unwrap_or(Value::String(d)))
        .collect()
}

fn outcomes(row: &Value) -> Vec<String> {
    row["attempts"]
        .as_array()
        .expect("attempts")
        .iter()
        .map(|a| a["outcome"].as_str().expect("outcome").to_owned())
        .collect()
}

/// The value of `gateway_stream_recoveries_total` for `provider` and `outcome`.
async fn recoveries(app: &TestApp, provider: &str, outcome: &str) -> String {
    let text = app.get("/metrics").await.text().await.expect("metrics text");
    text.lines()
        .find(|l| {
            l.starts_with("gateway_stream_recoveries_total{")
                && l.contains(&format!("provider=\"{provider}\""))
                && l.contains(&format!("outcome=\"{outcome}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn a_stream_cut_after_ten_chunks_is_finished_by_the_next_provider_without_repeated_text() {
    // Arrange: beta, asked to continue, starts its last sentence over.
    let alpha = SseMock::start().await;
    let beta = SseMock::start().await;
    beta.autoplay_raw(continuation("chatcmpl-beta", &["Then it went", " home", " to sleep."]))
        .await;
    let app = app(&alpha, &beta, "beta", "routing: {stream_recovery: continue}").await;
    let (upstream, reader, first) = ten_chunks_read(&app, &alpha, &stream_body(TEST_MODEL)).await;

    // Act: alpha drops the connection.
    upstream.cut();
    let rest = parsed(reader.rest().await);

    // Assert: one answer, its text whole and not repeated, ending in [DONE], no error.
    assert_eq!(rest.last(), Some(&json!("[DONE]")), "{rest:?}");
    let chunks = &rest[..rest.len() - 1];
    assert!(chunks.iter().all(|c| c.get("error").is_none()), "{rest:?}");
    let all: Vec<Value> = first.iter().chain(chunks).cloned().collect();
    assert_eq!(text(&all), format!("{} to sleep.", sent()));
    assert!(
        all.iter().all(|c| c["id"] == "chatcmpl-alpha"),
        "the client sees one completion id: {all:?}"
    );
    assert_eq!(chunks.last().expect("finish")["choices"][0]["finish_reason"], "stop");
    assert!(
        chunks.iter().all(|c| c.get("usage").is_none_or(Value::is_null)),
        "usage was not asked for"
    );
    // beta was asked with the text and an instruction to continue it.
    let asked: Value = serde_json::from_slice(&beta.next_connection().await.request.body).expect("JSON body");
    let messages = asked["messages"].as_array().expect("messages");
    assert_eq!(
        messages[messages.len() - 2],
        json!({"role": "assistant", "content": sent()})
    );
    assert_eq!(messages[messages.len() - 1]["role"], "user");
    assert!(asked.get("continue_final_message").is_none());
    // History: both attempts, the provider that finished, usage covering both.
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["status"], "success");
    assert_eq!(row["provider"], "beta");
    assert_eq!(outcomes(row), ["stream_cut", "success"]);
    assert_eq!(row["prompt_tokens"].as_u64().map(|p| p > 40), Some(true), "{row}");
    assert_eq!(row["completion_tokens"].as_u64().map(|c| c > 5), Some(true), "{row}");
    assert_eq!(recoveries(&app, "alpha", "recovered").await, "1");
}

#[tokio::test]
async fn without_stream_recovery_the_same_cut_ends_with_the_error_event() {
    // Arrange
    let alpha = SseMock::start().await;
    let beta = SseMock::start().await;
    let app = app(&alpha, &beta, "beta", "{}").await;
    let (upstream, reader, _) = ten_chunks_read(&app, &alpha, &stream_body(TEST_MODEL)).await;

    // Act
    upstream.cut();
    let rest = parsed(reader.rest().await);

    // Assert
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0]["error"]["code"], "stream_upstream_error");
    assert_eq!(beta.requests(), 0);
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["status"], "error");
    assert_eq!(outcomes(row), ["success"]);
}

#[tokio::test]
async fn a_cut_inside_a_tool_call_ends_with_the_error_event_even_with_continue() {
    // Arrange
    let alpha = SseMock::start().await;
    let beta = SseMock::start().await;
    let app = app(&alpha, &beta, "beta", "routing: {stream_recovery: continue}").await;
    let (upstream, mut reader, _) = ten_chunks_read(&app, &alpha, &stream_body(TEST_MODEL)).await;
    let call = json!({"tool_calls": [{"index": 0, "id": "call_1", "type": "function",
                                      "function": {"name": "lookup", "arguments": "{\"q\":"}}]});
    upstream.send_event(&chunk("chatcmpl-alpha", call, None));
    assert!(reader.next_json().await["choices"][0]["delta"]["tool_calls"].is_array());

    // Act
    upstream.cut();
    let rest = parsed(reader.rest().await);

    // Assert
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0]["error"]["code"], "stream_upstream_error");
    assert_eq!(beta.requests(), 0);
    assert_eq!(app.history_rows(1).await[0]["status"], "error");
    assert_eq!(recoveries(&app, "alpha", "not_recoverable").await, "1");
}

#[tokio::test]
async fn a_route_that_continues_wins_and_vllm_is_asked_to_continue_the_final_message() {
    // Arrange: the gateway's default is `error`; the route says `continue`; the second target is
    // the catalogue's vLLM provider, which takes a prefill.
    let alpha = SseMock::start().await;
    let vllm = SseMock::start().await;
    vllm.autoplay_raw(continuation("cmpl-vllm", &[" to sleep."])).await;
    let settings = r"
routing: {stream_recovery: error}
routes:
  - name: chat
    targets: [alpha:gpt-test, vllm:gpt-test]
    stream_recovery: continue
";
    let app = app(&alpha, &vllm, "vllm", settings).await;
    let mut body = stream_body("chat");
    body["stream_options"] = json!({"include_usage": true});
    let (upstream, reader, first) = ten_chunks_read(&app, &alpha, &body).await;

    // Act
    upstream.cut();
    let rest = parsed(reader.rest().await);

    // Assert
    assert_eq!(rest.last(), Some(&json!("[DONE]")), "{rest:?}");
    let all: Vec<Value> = first.iter().chain(&rest[..rest.len() - 1]).cloned().collect();
    assert_eq!(text(&all), format!("{} to sleep.", sent()));
    // The client asked for usage: the one usage chunk counts both attempts.
    let usage = &rest[rest.len() - 2]["usage"];
    assert!(usage["prompt_tokens"].as_u64().expect("prompt") > 40, "{usage}");
    assert!(usage["completion_tokens"].as_u64().expect("completion") > 5, "{usage}");
    let asked: Value = serde_json::from_slice(&vllm.next_connection().await.request.body).expect("JSON body");
    assert_eq!(asked["continue_final_message"], true);
    assert_eq!(asked["add_generation_prompt"], false);
    let messages = asked["messages"].as_array().expect("messages");
    assert_eq!(messages.last(), Some(&json!({"role": "assistant", "content": sent()})));
}

#[tokio::test]
async fn a_provider_that_refuses_the_prefill_ends_the_stream_with_the_error_event() {
    // Arrange: the next candidate is an Anthropic model that takes no prefill.
    let alpha = SseMock::start().await;
    let claude = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(400).set_body_raw(
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"This model does not support assistant message prefill."}}"#,
            "application/json",
        ))
        .expect(1)
        .mount(&claude)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .provider(ProviderSpec::new("claude", claude.uri()).kind("anthropic"))
        .settings("routing: {stream_recovery: continue}")
        .spawn()
        .await;
    let (upstream, reader, _) = ten_chunks_read(&app, &alpha, &stream_body(TEST_MODEL)).await;

    // Act
    upstream.cut();
    let rest = parsed(reader.rest().await);

    // Assert
    assert_eq!(rest.len(), 1, "{rest:?}");
    assert_eq!(rest[0]["error"]["code"], "stream_upstream_error");
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["status"], "error");
    assert_eq!(outcomes(row), ["stream_cut", "rejected"]);
    assert_eq!(recoveries(&app, "alpha", "failed").await, "1");
}

/// An Anthropic event as the upstream sends it.
fn anthropic_event(data: &Value) -> String {
    format!("event: {}\ndata: {data}\n\n", data["type"].as_str().expect("type"))
}

#[tokio::test]
async fn an_anthropic_client_stream_recovers_as_one_message() {
    // Arrange: two Anthropic providers; the first is cut in the middle of its text block.
    let first = SseMock::start().await;
    let second = SseMock::start().await;
    let continued = [
        json!({"type": "message_start", "message": {"id": "msg_second", "type": "message", "role": "assistant",
               "content": [], "model": CLAUDE, "stop_reason": null, "usage": {"input_tokens": 40, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " forty-two."}}),
        json!({"type": "content_block_stop", "index": 0}),
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 4}}),
        json!({"type": "message_stop"}),
    ];
    second
        .autoplay_raw(continued.iter().map(anthropic_event).collect())
        .await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("first", first.root_url())
                .kind("anthropic")
                .models(&[CLAUDE]),
        )
        .provider(
            ProviderSpec::new("second", second.root_url())
                .kind("anthropic")
                .models(&[CLAUDE]),
        )
        .settings("routing: {stream_recovery: continue}")
        .spawn()
        .await;
    let body = json!({"model": CLAUDE, "max_tokens": 256, "stream": true,
                      "messages": [{"role": "user", "content": "What is the answer?"}]});
    let pending = tokio::spawn(app.post_messages(&body));
    let upstream = first.next_connection().await;
    for event in [
        json!({"type": "message_start", "message": {"id": "msg_first", "type": "message", "role": "assistant",
               "content": [], "model": CLAUDE, "stop_reason": null, "usage": {"input_tokens": 25, "output_tokens": 1}}}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "The answer"}}),
        json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " is: "}}),
    ] {
        upstream.send_raw(anthropic_event(&event));
    }
    let response = pending.await.expect("request task");
    assert_eq!(response.status(), 200);
    let mut reader = SseReader::new(response);
    let mut events = Vec::new();
    for _ in 0..4 {
        events.push(reader.next_json().await);
    }

    // Act
    upstream.cut();
    events.extend(parsed(reader.rest().await));

    // Assert: one message, one text block, the text whole, message_stop at the end.
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap_or_default()).collect();
    assert_eq!(kinds.iter().filter(|k| **k == "message_start").count(), 1, "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"message_stop"), "{kinds:?}");
    assert!(!kinds.contains(&"error"), "{kinds:?}");
    assert!(
        events.iter().all(|e| e.get("index").is_none_or(|i| i == 0)),
        "{events:?}"
    );
    let text: String = events.iter().filter_map(|e| e["delta"]["text"].as_str()).collect();
    assert_eq!(text, "The answer is: forty-two.");
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .expect("message_delta");
    assert!(delta["usage"]["output_tokens"].as_u64().expect("output") > 4, "{delta}");
    // The second provider got the text as a prefill, without its trailing space.
    let asked: Value = serde_json::from_slice(&second.next_connection().await.request.body).expect("JSON body");
    let last = asked["messages"].as_array().and_then(|m| m.last()).cloned();
    assert_eq!(
        last,
        Some(json!({"role": "assistant", "content": [{"type": "text", "text": "The answer is:"}]}))
    );
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["status"], "success");
    assert_eq!(row["provider"], "second");
    assert_eq!(outcomes(row), ["stream_cut", "success"]);
    assert_eq!(row["result_summary"], "The answer is: forty-two.");
}

#[tokio::test]
async fn a_legacy_completions_stream_recovers_too() {
    // Arrange
    let alpha = SseMock::start().await;
    let beta = SseMock::start().await;
    beta.autoplay_raw(continuation("chatcmpl-beta", &[" to sleep."])).await;
    let app = app(&alpha, &beta, "beta", "routing: {stream_recovery: continue}").await;
    let pending = tokio::spawn(app.post_json(
        "/v1/completions",
        &json!({"model": TEST_MODEL, "prompt": "Tell a story.", "stream": true}),
    ));
    let upstream = alpha.next_connection().await;
    for word in WORDS {
        upstream.send_event(&chunk("chatcmpl-alpha", json!({"content": word}), None));
    }
    let response = pending.await.expect("request task");
    assert_eq!(response.status(), 200);
    let mut reader = SseReader::new(response);
    let mut events = Vec::new();
    for _ in 0..WORDS.len() {
        events.push(reader.next_json().await);
    }

    // Act
    upstream.cut();
    let rest = parsed(reader.rest().await);

    // Assert
    assert_eq!(rest.last(), Some(&json!("[DONE]")), "{rest:?}");
    events.extend(rest[..rest.len() - 1].iter().cloned());
    let text: String = events.iter().filter_map(|e| e["choices"][0]["text"].as_str()).collect();
    assert_eq!(text, format!("{} to sleep.", sent()));
}

#[tokio::test]
async fn a_stream_that_stalls_is_continued_once_the_idle_timeout_passes() {
    // Arrange: alpha sends its ten chunks and then nothing.
    let alpha = SseMock::start().await;
    let beta = SseMock::start().await;
    beta.autoplay_raw(continuation("chatcmpl-beta", &[" to sleep."])).await;
    let settings = "routing: {stream_recovery: continue, stream_idle_timeout_seconds: 1}";
    let app = app(&alpha, &beta, "beta", settings).await;
    let (upstream, reader, first) = ten_chunks_read(&app, &alpha, &stream_body(TEST_MODEL)).await;

    // Act
    let rest = parsed(reader.rest().await);

    // Assert
    assert_eq!(rest.last(), Some(&json!("[DONE]")), "{rest:?}");
    let all: Vec<Value> = first.iter().chain(&rest[..rest.len() - 1]).cloned().collect();
    assert_eq!(text(&all), format!("{} to sleep.", sent()));
    upstream.closed().await;
    let row = &app.history_rows(1).await[0];
    assert_eq!(outcomes(row), ["stream_cut", "success"]);
}

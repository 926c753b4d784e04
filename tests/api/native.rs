//! OpenAI clients served by native upstreams: Anthropic (`kind: anthropic`), Gemini
//! (`kind: gemini`) and Azure OpenAI (`kind: azure`), each mocked with its own documented wire
//! format (`tests/fixtures/<provider>/`).

use serde_json::{Value, json};
use wiremock::matchers::{header as has_header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::fixtures::{self, anthropic, gemini};
use crate::helpers::{ProviderSpec, SseMock, SseReader, TestApp, assert_openai_error, header, json, received};

fn tool_request(model: &str) -> Value {
    json!({
        "model": model,
        "messages": [
            {"role": "system", "content": "You are a weather bot."},
            {"role": "user", "content": "What's the weather like in San Francisco?"}
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather",
            "description": "Get the current weather in a given location",
            "parameters": {"type": "object", "properties": {"location": {"type": "string"}, "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]}}, "required": ["location"]}
        }}],
        "tool_choice": "auto"
    })
}

async fn mock_json(server: &MockServer, at: &str, status: u16, body: &'static str) {
    Mock::given(method("POST"))
        .and(path(at))
        .respond_with(ResponseTemplate::new(status).set_body_raw(body, "application/json"))
        .expect(1)
        .mount(server)
        .await;
}

/// The streamed chunks' tool calls, assembled: (id, name, arguments) per index.
fn assemble_tool_calls(chunks: &[Value]) -> Vec<(String, String, String)> {
    let mut calls: Vec<(String, String, String)> = Vec::new();
    for chunk in chunks {
        for call in chunk["choices"][0]["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let i = usize::try_from(call["index"].as_u64().expect("index")).expect("small index");
            if calls.len() <= i {
                calls.resize(i + 1, Default::default());
            }
            if let Some(id) = call["id"].as_str() {
                calls[i].0 = id.to_owned();
            }
            if let Some(name) = call["function"]["name"].as_str() {
                calls[i].1.push_str(name);
            }
            if let Some(args) = call["function"]["arguments"].as_str() {
                calls[i].2.push_str(args);
            }
        }
    }
    calls
}

async fn chunks(response: reqwest::Response) -> Vec<Value> {
    let rest = SseReader::new(response).rest().await;
    assert_eq!(
        rest.last().map(String::as_str),
        Some("[DONE]"),
        "the stream ends with [DONE]: {rest:?}"
    );
    rest[..rest.len() - 1]
        .iter()
        .map(|d| serde_json::from_str(d).expect("chunk JSON"))
        .collect()
}

// --- Anthropic -------------------------------------------------------------------------------

async fn anthropic_app(base_url: String) -> TestApp {
    TestApp::builder()
        .provider(
            ProviderSpec::new("claude", base_url)
                .kind("anthropic")
                .models(&["claude-sonnet-4-5"]),
        )
        .spawn()
        .await
}

#[tokio::test]
async fn chat_via_anthropic_translates_the_request_and_the_tool_call_reply() {
    // Arrange
    let claude = MockServer::start().await;
    mock_json(&claude, "/v1/messages", 200, anthropic::MESSAGE_TOOL_USE).await;
    let app = anthropic_app(claude.uri()).await;

    // Act
    let response = app.post_chat(&tool_request("claude-sonnet-4-5")).await;

    // Assert
    assert_eq!(response.status(), 200);
    let completion = json(response).await;
    assert_eq!(completion["object"], "chat.completion");
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert_eq!(
        choice["message"]["content"],
        "I'll check the current weather in San Francisco for you."
    );
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["id"], "toolu_01A09q90qw90lq917835lq9");
    assert_eq!(call["function"]["name"], "get_weather");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().expect("arguments")).expect("JSON");
    assert_eq!(args, json!({"location": "San Francisco, CA", "unit": "celsius"}));
    assert_eq!(
        completion["usage"],
        json!({"prompt_tokens": 384, "completion_tokens": 68, "total_tokens": 452,
            "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 0}})
    );
    let got = &received(&claude).await[0];
    assert_eq!(got.headers["x-api-key"], ProviderSpec::key_for("claude").as_str());
    assert_eq!(got.headers["anthropic-version"], "2023-06-01");
    let sent: Value = got.body_json().expect("Messages body");
    assert_eq!(sent["system"], "You are a weather bot.");
    assert_eq!(
        sent["max_tokens"], 4096,
        "Anthropic needs max_tokens; the default fills it"
    );
    assert_eq!(
        sent["messages"],
        json!([{"role": "user", "content": [{"type": "text", "text": "What's the weather like in San Francisco?"}]}])
    );
    assert_eq!(sent["tools"][0]["name"], "get_weather");
    assert_eq!(sent["tools"][0]["input_schema"]["required"], json!(["location"]));
    assert_eq!(sent["tool_choice"], json!({"type": "auto"}));
}

#[tokio::test]
async fn chat_stream_via_anthropic_turns_each_event_into_its_chunk_at_once() {
    // Arrange
    let claude = SseMock::start().await;
    let app = anthropic_app(claude.root_url()).await;
    let events = fixtures::events(anthropic::STREAM);
    let mut body = tool_request("claude-sonnet-4-5");
    body["stream"] = json!(true);
    let pending = tokio::spawn(app.post_chat(&body));
    let upstream = claude.next_connection().await;
    assert_eq!(upstream.request.path, "/v1/messages");

    // Act + Assert: message_start → the role chunk; the text delta → its chunk, before more is sent.
    upstream.send_raw(events[0].clone());
    let response = pending.await.expect("request task");
    assert_eq!(response.status(), 200);
    let mut reader = SseReader::new(response);
    assert_eq!(reader.next_json().await["choices"][0]["delta"]["role"], "assistant");
    for event in &events[1..4] {
        upstream.send_raw(event.clone());
    }
    assert_eq!(reader.next_json().await["choices"][0]["delta"]["content"], "Hello");
    for event in &events[4..] {
        upstream.send_raw(event.clone());
    }
    upstream.finish();
    let rest = reader.rest().await;
    assert_eq!(rest.last().map(String::as_str), Some("[DONE]"));
    let finish: Value = serde_json::from_str(&rest[rest.len() - 2]).expect("finish chunk");
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    let row = &app.history_rows(1).await[0];
    assert_eq!(
        (row["prompt_tokens"].clone(), row["completion_tokens"].clone()),
        (json!(25), json!(15))
    );
}

#[tokio::test]
async fn streamed_tool_call_via_anthropic_arrives_as_tool_call_chunks() {
    // Arrange
    let claude = SseMock::start().await;
    claude.autoplay_raw(fixtures::events(anthropic::STREAM_TOOL_USE)).await;
    let app = anthropic_app(claude.root_url()).await;
    let mut body = tool_request("claude-sonnet-4-5");
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});

    // Act
    let chunks = chunks(app.post_chat(&body).await).await;

    // Assert
    let calls = assemble_tool_calls(&chunks);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].0, "toolu_01T1x1fJ34qAmk2tNTrN7Up6");
    assert_eq!(calls[0].1, "get_weather");
    let args: Value = serde_json::from_str(&calls[0].2).expect("arguments JSON");
    assert_eq!(args, json!({"location": "San Francisco, CA", "unit": "fahrenheit"}));
    let finish = chunks
        .iter()
        .find(|c| c["choices"][0]["finish_reason"].is_string())
        .expect("finish chunk");
    assert_eq!(finish["choices"][0]["finish_reason"], "tool_calls");
    let usage = chunks.last().expect("usage chunk");
    assert_eq!(usage["usage"]["prompt_tokens"], 472);
    assert_eq!(usage["usage"]["completion_tokens"], 89);
}

// --- Gemini ----------------------------------------------------------------------------------

async fn gemini_app(base_url: String) -> TestApp {
    TestApp::builder()
        .provider(
            ProviderSpec::new("gemini", base_url)
                .kind("gemini")
                .models(&["gemini-2.5-flash", "text-embedding-004"]),
        )
        .spawn()
        .await
}

#[tokio::test]
async fn chat_via_gemini_calls_generate_content_and_translates_the_answer() {
    // Arrange
    let google = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1beta/models/gemini-2.5-flash:generateContent"))
        .and(has_header("x-goog-api-key", ProviderSpec::key_for("gemini").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_raw(gemini::GENERATE, "application/json"))
        .expect(1)
        .mount(&google)
        .await;
    let app = gemini_app(format!("{}/v1beta", google.uri())).await;

    // Act
    let response = app.post_chat(&tool_request("gemini-2.5-flash")).await;

    // Assert
    assert_eq!(response.status(), 200);
    let completion = json(response).await;
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(completion["model"], "gemini-2.5-flash");
    assert!(
        completion["choices"][0]["message"]["content"]
            .as_str()
            .expect("text")
            .starts_with("AI learns")
    );
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        completion["usage"],
        json!({"prompt_tokens": 8, "completion_tokens": 47, "total_tokens": 55,
            "prompt_tokens_details": {"cached_tokens": 0}, "completion_tokens_details": {"reasoning_tokens": 30}})
    );
    let sent: Value = received(&google).await[0].body_json().expect("Gemini body");
    assert_eq!(
        sent["systemInstruction"],
        json!({"parts": [{"text": "You are a weather bot."}]})
    );
    assert_eq!(sent["contents"][0]["role"], "user");
    assert_eq!(sent["tools"][0]["functionDeclarations"][0]["name"], "get_weather");
    assert_eq!(sent["toolConfig"], json!({"functionCallingConfig": {"mode": "AUTO"}}));
}

#[tokio::test]
async fn gemini_function_call_becomes_an_openai_tool_call() {
    // Arrange
    let google = MockServer::start().await;
    mock_json(
        &google,
        "/v1beta/models/gemini-2.5-flash:generateContent",
        200,
        gemini::FUNCTION_CALL,
    )
    .await;
    let app = gemini_app(format!("{}/v1beta", google.uri())).await;

    // Act
    let completion = json(app.post_chat(&tool_request("gemini-2.5-flash")).await).await;

    // Assert
    let choice = &completion["choices"][0];
    assert_eq!(choice["finish_reason"], "tool_calls");
    assert!(choice["message"]["content"].is_null());
    let call = &choice["message"]["tool_calls"][0];
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "schedule_meeting");
    let args: Value = serde_json::from_str(call["function"]["arguments"].as_str().expect("arguments")).expect("JSON");
    assert_eq!(args["attendees"], json!(["Bob", "Alice"]));
}

#[tokio::test]
async fn chat_stream_via_gemini_uses_alt_sse_and_streams_chunks() {
    // Arrange
    let google = SseMock::start().await;
    let app = gemini_app(google.root_url() + "/v1beta").await;
    let events = fixtures::events(gemini::STREAM);
    let mut body = tool_request("gemini-2.5-flash");
    body["stream"] = json!(true);
    let pending = tokio::spawn(app.post_chat(&body));
    let upstream = google.next_connection().await;
    assert_eq!(
        upstream.request.path,
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
    );

    // Act + Assert: the first event's text reaches the client before the second is sent.
    upstream.send_raw(events[0].clone());
    let response = pending.await.expect("request task");
    assert_eq!(response.status(), 200);
    let mut reader = SseReader::new(response);
    assert_eq!(reader.next_json().await["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(reader.next_json().await["choices"][0]["delta"]["content"], "The");
    for event in &events[1..] {
        upstream.send_raw(event.clone());
    }
    upstream.finish();
    let rest = reader.rest().await;
    assert_eq!(rest.last().map(String::as_str), Some("[DONE]"));
    let text: String = rest[..rest.len() - 1]
        .iter()
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(text, " quick brown fox jumps over the lazy dog.");
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["total_tokens"], 21, "the usage chunk was asked for and counted");
}

#[tokio::test]
async fn streamed_function_call_via_gemini_arrives_as_a_tool_call_chunk() {
    // Arrange
    let google = SseMock::start().await;
    google
        .autoplay_raw(fixtures::events(gemini::STREAM_FUNCTION_CALL))
        .await;
    let app = gemini_app(google.root_url() + "/v1beta").await;
    let mut body = tool_request("gemini-2.5-flash");
    body["stream"] = json!(true);

    // Act
    let chunks = chunks(app.post_chat(&body).await).await;

    // Assert
    let calls = assemble_tool_calls(&chunks);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1, "get_current_temperature");
    assert_eq!(
        serde_json::from_str::<Value>(&calls[0].2).expect("JSON"),
        json!({"location": "London"})
    );
    assert!(
        chunks.iter().all(|c| c["usage"].is_null()),
        "no usage chunk the client did not ask for"
    );
}

#[tokio::test]
async fn a_prompt_gemini_blocks_is_a_clear_400() {
    // Arrange
    let google = MockServer::start().await;
    mock_json(
        &google,
        "/v1beta/models/gemini-2.5-flash:generateContent",
        200,
        gemini::BLOCKED,
    )
    .await;
    let app = gemini_app(format!("{}/v1beta", google.uri())).await;

    // Act
    let response = app.post_chat(&tool_request("gemini-2.5-flash")).await;

    // Assert
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    let error = assert_openai_error(&body);
    assert_eq!(error["code"], "content_filter");
    assert!(
        error["message"]
            .as_str()
            .expect("message")
            .contains("blockReason SAFETY"),
        "{body}"
    );
}

#[tokio::test]
async fn embeddings_via_gemini_use_embed_content_and_batch_embed_contents() {
    // Arrange
    let google = MockServer::start().await;
    mock_json(
        &google,
        "/v1beta/models/text-embedding-004:embedContent",
        200,
        gemini::EMBED,
    )
    .await;
    mock_json(
        &google,
        "/v1beta/models/text-embedding-004:batchEmbedContents",
        200,
        gemini::BATCH_EMBED,
    )
    .await;
    let app = gemini_app(format!("{}/v1beta", google.uri())).await;

    // Act
    let one = app
        .post_json(
            "/v1/embeddings",
            &json!({"model": "text-embedding-004", "input": "hello"}),
        )
        .await;
    let two = app
        .post_json(
            "/v1/embeddings",
            &json!({"model": "text-embedding-004", "input": ["a", "b"]}),
        )
        .await;

    // Assert
    assert_eq!(one.status(), 200);
    let one = json(one).await;
    assert_eq!(one["object"], "list");
    assert_eq!(
        one["data"][0]["embedding"],
        json!([0.013168523, -0.008711934, -0.046782676])
    );
    let two = json(two).await;
    assert_eq!(two["data"].as_array().expect("data").len(), 2);
    assert_eq!(two["data"][1]["index"], 1);
    let sent: Value = received(&google).await[1].body_json().expect("batch body");
    assert_eq!(sent["requests"][0]["model"], "models/text-embedding-004");
}

// --- Azure -----------------------------------------------------------------------------------

#[tokio::test]
async fn chat_via_azure_uses_the_deployment_url_api_version_and_api_key() {
    // Arrange
    let azure = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/openai/deployments/gpt-4o/chat/completions"))
        .and(query_param("api-version", "2024-10-21"))
        .and(has_header("api-key", ProviderSpec::key_for("azure").as_str()))
        .respond_with(ResponseTemplate::new(200).set_body_raw(
            include_str!("../fixtures/azure/chat_completion.json"),
            "application/json",
        ))
        .expect(1)
        .mount(&azure)
        .await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("azure", azure.uri())
                .kind("azure")
                .models(&["gpt-4o"])
                .set("query", json!({"api-version": "2024-10-21"})),
        )
        .spawn()
        .await;

    // Act
    let response = app
        .post_chat(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "Tell me a fact"}]}))
        .await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "azure");
    let body = response.text().await.expect("body");
    assert_eq!(
        body,
        include_str!("../fixtures/azure/chat_completion.json"),
        "OpenAI-dialect replies pass untouched"
    );
}

#[tokio::test]
async fn a_missing_azure_deployment_moves_on_to_the_next_provider() {
    // Arrange
    let azure = MockServer::start().await;
    mock_json(
        &azure,
        "/openai/deployments/gpt-4o/chat/completions",
        404,
        include_str!("../fixtures/azure/error_404.json"),
    )
    .await;
    let openai = MockServer::start().await;
    crate::helpers::mount_chat(&openai, crate::helpers::completion(), 1).await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("azure", azure.uri())
                .kind("azure")
                .models(&["gpt-4o"]),
        )
        .provider(ProviderSpec::new("openai", crate::helpers::upstream_url(&openai)).models(&["gpt-4o"]))
        .spawn()
        .await;

    // Act
    let response = app
        .post_chat(&json!({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}]}))
        .await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "openai");
}

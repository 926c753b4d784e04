//! `POST /v1/responses` served per provider: forwarded as it is to an OpenAI-protocol upstream
//! that speaks the Responses API (`responses: native`, or `auto` until it shows it does not), and
//! bridged to chat completions everywhere else, provider by provider.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{ProviderSpec, SseMock, TEST_MODEL, TestApp, completion, header, json, mount_chat, received};

/// A stored Responses answer with a reasoning item (encrypted) before the message: what the
/// bridge could never produce, so it shows the answer came through untouched.
const NATIVE_RESPONSE: &str = r#"{"id":"resp_native_1","object":"response","created_at":1741476542,"status":"completed","error":null,"incomplete_details":null,"instructions":null,"max_output_tokens":null,"model":"gpt-4.1-2025-04-14","output":[{"type":"reasoning","id":"rs_1","summary":[],"encrypted_content":"gAAAAB-opaque"},{"type":"message","id":"msg_1","status":"completed","role":"assistant","content":[{"type":"output_text","text":"Lumina found a hidden pool.","annotations":[]}]}],"parallel_tool_calls":true,"previous_response_id":null,"reasoning":{"effort":"low","summary":null},"store":false,"temperature":1.0,"text":{"format":{"type":"text"}},"tool_choice":"auto","tools":[{"type":"web_search_preview","search_context_size":"medium","user_location":null}],"top_p":1.0,"truncation":"disabled","usage":{"input_tokens":36,"input_tokens_details":{"cached_tokens":6},"output_tokens":87,"output_tokens_details":{"reasoning_tokens":40},"total_tokens":123},"user":null,"metadata":{}}"#;

const STREAM: &str = include_str!("../fixtures/responses/response_stream.sse");

/// Tool types the Responses API accepts; anything else is refused as the API refuses it.
const TOOL_TYPES: &[&str] = &[
    "function",
    "file_search",
    "web_search_preview",
    "web_search_preview_2025_03_11",
    "web_search",
    "computer_use_preview",
    "code_interpreter",
    "image_generation",
    "mcp",
    "local_shell",
    "custom",
];

/// `POST /v1/responses` as OpenAI serves it, as strict as the API: the provider's bearer key,
/// `model` and `input` required, chat-only fields and unknown tool types refused; a JSON
/// `response` object, or the event stream when `stream` is true.
struct StrictResponses {
    key: String,
}

fn invalid(message: &str, param: &str, code: &str) -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }))
}

impl Respond for StrictResponses {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let auth = request.headers.get("authorization").and_then(|v| v.to_str().ok());
        if auth != Some(format!("Bearer {}", self.key).as_str()) {
            return ResponseTemplate::new(401).set_body_json(json!({
                "error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}
            }));
        }
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return invalid("We could not parse the JSON body of your request.", "", "invalid_json");
        };
        if !body["model"].is_string() {
            return invalid(
                "Missing required parameter: 'model'.",
                "model",
                "missing_required_parameter",
            );
        }
        if body.get("input").is_none() {
            return invalid(
                "Missing required parameter: 'input'.",
                "input",
                "missing_required_parameter",
            );
        }
        for chat_only in ["messages", "stream_options", "max_tokens"] {
            if body.get(chat_only).is_some() {
                return invalid(
                    &format!("Unsupported parameter: '{chat_only}'."),
                    chat_only,
                    "unknown_parameter",
                );
            }
        }
        for (i, tool) in body["tools"].as_array().into_iter().flatten().enumerate() {
            let kind = tool["type"].as_str().unwrap_or_default();
            if !TOOL_TYPES.contains(&kind) {
                return invalid(
                    &format!("Invalid value: '{kind}'."),
                    &format!("tools[{i}].type"),
                    "invalid_value",
                );
            }
        }
        if body["stream"] == json!(true) {
            ResponseTemplate::new(200).set_body_raw(STREAM, "text/event-stream")
        } else {
            ResponseTemplate::new(200).set_body_raw(NATIVE_RESPONSE, "application/json")
        }
    }
}

/// Serves `/v1/responses` on `server` for provider `id`, expecting `calls` calls.
async fn mount_responses(server: &MockServer, id: &str, calls: impl Into<wiremock::Times>) {
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(StrictResponses {
            key: ProviderSpec::key_for(id),
        })
        .expect(calls)
        .named("POST /v1/responses")
        .mount(server)
        .await;
}

/// A chat-only upstream's answer to `/v1/responses`.
async fn mount_missing_responses(server: &MockServer, status: u16, calls: impl Into<wiremock::Times>) {
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(status).set_body_json(json!({"detail": "Not Found"})))
        .expect(calls)
        .named("POST /v1/responses (absent)")
        .mount(server)
        .await;
}

fn provider(id: &str, server: &MockServer, mode: &str) -> ProviderSpec {
    ProviderSpec::new(id, format!("{}/v1", server.uri())).set("responses", json!(mode))
}

fn request() -> Value {
    json!({"model": TEST_MODEL, "input": "Tell me a story.", "max_output_tokens": 100})
}

/// The named events of an SSE body, in order.
fn event_names(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("event: ")))
        .map(str::to_owned)
        .collect()
}

/// `/provider/status`'s `responses` entry for `id`.
async fn responses_status(app: &TestApp, id: &str) -> Value {
    let status: Value = app.get("/provider/status").await.json().await.expect("status JSON");
    status["providers"]
        .as_array()
        .expect("providers")
        .iter()
        .find(|p| p["id"] == id)
        .map(|p| p["responses"].clone())
        .expect("provider listed")
}

#[tokio::test]
async fn native_json_passes_the_body_through_with_only_the_model_spliced() {
    // Arrange: an alias, so routing renames the model; hosted tools, reasoning and `include`
    // the bridge could not express; odd spacing and key order the gateway must keep.
    let openai = MockServer::start().await;
    mount_responses(&openai, "openai", 1).await;
    let app = TestApp::builder()
        .provider(
            provider("openai", &openai, "native")
                .models(&["gpt-4.1"])
                .alias("smart", "gpt-4.1"),
        )
        .spawn()
        .await;
    let sent = r#"{ "input":"Tell me a story.", "model" : "smart", "reasoning":{"effort":"low"},
        "include":["reasoning.encrypted_content"], "store":false,
        "tools":[{"type":"web_search_preview"}] }"#;

    // Act
    let response = app.post_raw("/v1/responses", sent).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "openai");
    assert!(response.headers().get("x-ai-gateway-dropped-tools").is_none());
    assert_eq!(
        response.text().await.expect("body"),
        NATIVE_RESPONSE,
        "the upstream's bytes"
    );
    let upstream = &received(&openai).await[0];
    assert_eq!(upstream.url.path(), "/v1/responses");
    assert_eq!(
        String::from_utf8_lossy(&upstream.body),
        sent.replace(r#""smart""#, r#""gpt-4.1""#),
        "only `model` was spliced"
    );
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["endpoint"], "/v1/responses");
    assert_eq!(row["status"], "success");
    assert_eq!(row["prompt_tokens"], 36);
    assert_eq!(row["completion_tokens"], 87);
    assert_eq!(row["total_tokens"], 123);
    assert_eq!(row["result_summary"], "Lumina found a hidden pool.");
}

#[tokio::test]
async fn native_stream_is_relayed_untouched_and_its_usage_reaches_history() {
    // Arrange
    let openai = MockServer::start().await;
    mount_responses(&openai, "openai", 1).await;
    let app = TestApp::builder()
        .provider(provider("openai", &openai, "native"))
        .spawn()
        .await;
    let mut body = request();
    body["stream"] = json!(true);

    // Act
    let response = app.post_json("/v1/responses", &body).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.text().await.expect("body"),
        STREAM,
        "the upstream's events, as they were"
    );
    let sent: Value = received(&openai).await[0].body_json().expect("JSON");
    assert!(sent.get("stream_options").is_none(), "nothing chat-only was added");
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["status"], "success");
    assert_eq!(row["stream"], true);
    assert_eq!(row["prompt_tokens"], 37);
    assert_eq!(row["completion_tokens"], 11);
    assert_eq!(row["total_tokens"], 48);
    assert_eq!(row["result_summary"], "Hi there!");
}

#[tokio::test]
async fn auto_bridges_a_provider_whose_responses_endpoint_is_missing_from_then_on() {
    for status in [404, 405] {
        // Arrange: a chat-only upstream (no `/responses`).
        let vllm = MockServer::start().await;
        mount_missing_responses(&vllm, status, 1).await;
        mount_chat(&vllm, completion(), 2).await;
        let app = TestApp::builder()
            .provider(provider("vllm", &vllm, "auto"))
            .spawn()
            .await;
        assert_eq!(responses_status(&app, "vllm").await["serving"], "native");

        // Act: twice; the second goes straight to the bridge.
        let first = app.post_json("/v1/responses", &request()).await;
        let second = app.post_json("/v1/responses", &request()).await;

        // Assert
        for response in [first, second] {
            assert_eq!(response.status(), 200, "HTTP {status}");
            let r = json(response).await;
            assert_eq!(r["object"], "response");
            assert_eq!(r["status"], "completed");
        }
        let paths: Vec<String> = received(&vllm).await.iter().map(|r| r.url.path().to_owned()).collect();
        assert_eq!(
            paths,
            ["/v1/responses", "/v1/chat/completions", "/v1/chat/completions"],
            "HTTP {status}"
        );
        let shown = responses_status(&app, "vllm").await;
        assert_eq!(shown["mode"], "auto");
        assert_eq!(shown["serving"], "bridge");
        assert!(
            shown["detected"]
                .as_str()
                .is_some_and(|d| d.contains(&status.to_string())),
            "{shown}"
        );
        let rows = app.history_rows(2).await;
        assert!(rows.iter().all(|r| r["status"] == "success"), "{rows:#?}");
    }
}

#[tokio::test]
async fn a_model_not_found_404_is_no_sign_of_a_missing_endpoint_and_the_next_provider_answers() {
    // Arrange
    let first = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(404).set_body_json(json!({
            "error": {"message": "The model `gpt-test` does not exist or you do not have access to it.",
                      "type": "invalid_request_error", "param": null, "code": "model_not_found"}
        })))
        .expect(1)
        .mount(&first)
        .await;
    mount_chat(&first, completion(), 0).await;
    let second = MockServer::start().await;
    mount_responses(&second, "second", 1).await;
    let app = TestApp::builder()
        .provider(provider("first", &first, "auto"))
        .provider(provider("second", &second, "native"))
        .spawn()
        .await;

    // Act
    let response = app.post_json("/v1/responses", &request()).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "second");
    assert_eq!(response.text().await.expect("body"), NATIVE_RESPONSE);
    let shown = responses_status(&app, "first").await;
    assert_eq!(shown["serving"], "native", "{shown}");
    assert_eq!(shown["detected"], Value::Null);
}

#[tokio::test]
async fn a_native_failure_before_the_first_byte_falls_over_to_the_next_provider() {
    // Arrange
    let first = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(503).set_body_json(json!({
            "error": {"message": "The server is overloaded.", "type": "server_error", "param": null, "code": null}
        })))
        .expect(1..)
        .mount(&first)
        .await;
    let second = MockServer::start().await;
    mount_responses(&second, "second", 1).await;
    let app = TestApp::builder()
        .provider(provider("first", &first, "native"))
        .provider(provider("second", &second, "native"))
        .spawn()
        .await;
    let mut body = request();
    body["stream"] = json!(true);

    // Act
    let response = app.post_json("/v1/responses", &body).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "second");
    assert_eq!(response.text().await.expect("body"), STREAM);
}

#[tokio::test]
async fn a_native_stream_cut_midway_ends_with_response_failed_and_history_says_so() {
    // Arrange
    let upstream = SseMock::start().await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("openai", upstream.base_url()).set("responses", json!("native")))
        .spawn()
        .await;
    let mut body = request();
    body["stream"] = json!(true);
    let events: Vec<String> = STREAM.split_terminator("\n\n").map(|e| format!("{e}\n\n")).collect();

    // Act: the first five events, then the connection breaks.
    let pending = app.post_json("/v1/responses", &body);
    let client = tokio::spawn(pending);
    let connection = upstream.next_connection().await;
    assert_eq!(connection.request.path, "/v1/responses");
    for event in &events[..5] {
        connection.send_raw(event.clone());
    }
    connection.cut();
    let response = client.await.expect("client task");

    // Assert
    assert_eq!(response.status(), 200);
    let text = response.text().await.expect("body");
    let names = event_names(&text);
    assert_eq!(names.last().map(String::as_str), Some("response.failed"), "{text}");
    assert!(!names.iter().any(|n| n == "response.completed"), "{text}");
    let failed: Value = text
        .split("\n\n")
        .filter_map(|e| e.lines().find_map(|l| l.strip_prefix("data: ")))
        .last()
        .map(|d| serde_json::from_str(d).expect("JSON"))
        .expect("a last event");
    assert_eq!(failed["type"], "response.failed");
    assert_eq!(
        failed["response"]["id"],
        "resp_67c9fdcecf488190bdd9a0409de3a1ec07b8b0ad4e5eb654"
    );
    assert_eq!(failed["response"]["status"], "failed");
    assert_eq!(failed["response"]["error"]["code"], "server_error");
    assert_eq!(failed["sequence_number"], 5);
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["status"], "error");
    assert!(
        row["error_message"]
            .as_str()
            .is_some_and(|m| m.contains("stream ended")),
        "{row}"
    );
    assert_eq!(row["result_summary"], "Hi");
}

#[tokio::test]
async fn bridge_mode_never_calls_the_responses_endpoint() {
    // Arrange
    let openai = MockServer::start().await;
    mount_missing_responses(&openai, 404, 0).await;
    mount_chat(&openai, completion(), 1).await;
    let app = TestApp::builder()
        .provider(provider("openai", &openai, "bridge"))
        .spawn()
        .await;

    // Act
    let response = app.post_json("/v1/responses", &request()).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["object"], "response");
    let shown = responses_status(&app, "openai").await;
    assert_eq!(
        (shown["mode"].as_str(), shown["serving"].as_str()),
        (Some("bridge"), Some("bridge"))
    );
}

#[tokio::test]
async fn anthropic_and_gemini_providers_answer_responses_through_the_bridge() {
    // Arrange
    let claude = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(crate::helpers::fixtures::anthropic::MESSAGE, "application/json"),
        )
        .expect(1)
        .mount(&claude)
        .await;
    let google = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1beta/models/gemini-2.5-flash:generateContent"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(crate::helpers::fixtures::gemini::GENERATE, "application/json"),
        )
        .expect(1)
        .mount(&google)
        .await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("claude", claude.uri())
                .kind("anthropic")
                .models(&["claude-sonnet-4-5"]),
        )
        .provider(
            ProviderSpec::new("gemini", format!("{}/v1beta", google.uri()))
                .kind("gemini")
                .models(&["gemini-2.5-flash"]),
        )
        .spawn()
        .await;

    for model in ["claude-sonnet-4-5", "gemini-2.5-flash"] {
        // Act
        let response = app
            .post_json(
                "/v1/responses",
                &json!({"model": model, "input": "Hello", "max_output_tokens": 64}),
            )
            .await;

        // Assert
        assert_eq!(response.status(), 200, "{model}");
        let r = json(response).await;
        assert_eq!(r["object"], "response", "{model}");
        assert_eq!(r["status"], "completed", "{model}");
        assert_eq!(r["output"][0]["type"], "message", "{model}");
        assert!(
            r["usage"]["total_tokens"].as_u64().is_some_and(|t| t > 0),
            "{model}: {r}"
        );
    }
    let rows = app.history_rows(2).await;
    assert!(
        rows.iter()
            .all(|r| r["status"] == "success" && r["total_tokens"].as_i64() > Some(0)),
        "{rows:#?}"
    );
}

#[tokio::test]
async fn an_anthropic_stream_answers_responses_events_through_the_bridge() {
    // Arrange
    let claude = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(
            ResponseTemplate::new(200).set_body_raw(crate::helpers::fixtures::anthropic::STREAM, "text/event-stream"),
        )
        .expect(1)
        .mount(&claude)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("claude", claude.uri()).kind("anthropic"))
        .spawn()
        .await;
    let mut body = request();
    body["stream"] = json!(true);

    // Act
    let response = app.post_json("/v1/responses", &body).await;

    // Assert
    assert_eq!(response.status(), 200);
    let names = event_names(&response.text().await.expect("body"));
    assert_eq!(names.first().map(String::as_str), Some("response.created"));
    assert!(names.iter().any(|n| n == "response.output_text.delta"), "{names:?}");
    assert_eq!(names.last().map(String::as_str), Some("response.completed"));
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["status"], "success");
    assert!(row["total_tokens"].as_i64() > Some(0), "{row}");
}

#[test]
fn responses_on_a_provider_of_another_kind_is_a_config_error() {
    let yaml = "
providers:
  - id: claude
    kind: anthropic
    base_url: http://127.0.0.1:9
    responses: native
responses_bridge:
  hosted_tools: reject
";
    let problems = ai_gateway::config::load_str(yaml, &ai_gateway::config::Env::default())
        .unwrap_err()
        .problems;
    assert!(
        problems.iter().any(|p| p.contains("claude") && p.contains("responses")),
        "{problems:?}"
    );
    let fine = "
providers:
  - id: mine
    kind: openai
    base_url: http://127.0.0.1:9/v1
    responses: auto
responses_bridge:
  hosted_tools: reject
";
    let config = ai_gateway::config::load_str(fine, &ai_gateway::config::Env::default()).expect("valid");
    assert_eq!(
        config.settings.responses_bridge.hosted_tools,
        ai_gateway::config::HostedTools::Reject
    );
    assert!(
        ai_gateway::config::load_str(
            "responses_bridge:\n  hosted_tools: keep\n",
            &ai_gateway::config::Env::default()
        )
        .is_err()
    );
}

#[tokio::test]
async fn what_auto_learnt_survives_a_configuration_reload() {
    // Arrange: the provider is found to have no `/responses`.
    let vllm = MockServer::start().await;
    mount_missing_responses(&vllm, 404, 1).await;
    mount_chat(&vllm, completion(), 2).await;
    let app = TestApp::builder()
        .provider(provider("vllm", &vllm, "auto"))
        .spawn()
        .await;
    assert_eq!(app.post_json("/v1/responses", &request()).await.status(), 200);

    // Act
    ai_gateway::admin::reload_file(&app.state, ai_gateway::admin::ReloadCause::Signal)
        .await
        .expect("reload");
    let response = app.post_json("/v1/responses", &request()).await;

    // Assert: still bridged, `/responses` not asked again.
    assert_eq!(response.status(), 200);
    assert_eq!(responses_status(&app, "vllm").await["serving"], "bridge");
}

#[tokio::test]
async fn azure_native_calls_the_v1_responses_path_with_its_api_key() {
    // Arrange: Azure's v1 API takes the deployment in the body and no `api-version`.
    let azure = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/openai/v1/responses"))
        .and(wiremock::matchers::header(
            "api-key",
            ProviderSpec::key_for("azure").as_str(),
        ))
        .respond_with(ResponseTemplate::new(200).set_body_raw(NATIVE_RESPONSE, "application/json"))
        .expect(1)
        .mount(&azure)
        .await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("azure", azure.uri())
                .kind("azure")
                .set("auth", json!({"header": "api-key"}))
                .set("query", json!({"api-version": "2024-10-21"}))
                .set("responses", json!("native")),
        )
        .spawn()
        .await;

    // Act
    let response = app.post_json("/v1/responses", &request()).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("body"), NATIVE_RESPONSE);
    let upstream = &received(&azure).await[0];
    assert_eq!(upstream.url.query(), None, "no api-version on the v1 path");
}

#[tokio::test]
async fn a_stream_whose_first_event_is_an_error_falls_over_to_the_next_provider() {
    // Arrange: the first upstream opens its stream with an in-band `error` event.
    let first = MockServer::start().await;
    let error = "event: error\ndata: {\"type\":\"error\",\"code\":\"server_error\",\"message\":\"The server had an error.\",\"param\":null,\"sequence_number\":0}\n\n";
    Mock::given(method("POST"))
        .and(path("/v1/responses"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(error, "text/event-stream"))
        .expect(1..)
        .mount(&first)
        .await;
    let second = MockServer::start().await;
    mount_responses(&second, "second", 1).await;
    let app = TestApp::builder()
        .provider(provider("first", &first, "native"))
        .provider(provider("second", &second, "native"))
        .spawn()
        .await;
    let mut body = request();
    body["stream"] = json!(true);

    // Act
    let response = app.post_json("/v1/responses", &body).await;

    // Assert
    assert_eq!(header(&response, "x-ai-gateway-provider"), "second");
    assert_eq!(response.text().await.expect("body"), STREAM);
}

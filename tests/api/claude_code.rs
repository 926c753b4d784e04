//! Claude Code through the gateway: its real request (captured from Claude Code 2.1.332, trimmed:
//! `fixtures/anthropic/claude_code_request.json`), its protocol headers (`anthropic-beta`,
//! `anthropic-version`) reaching an Anthropic upstream merged with the provider's `anthropic_beta`,
//! the Token Counting API (passed through, or estimated), and Anthropic-shaped 404s under
//! `/v1/messages/`.
//!
//! The Anthropic upstream here is as strict as Anthropic's API on what these tests touch: it
//! refuses `context_management` unless `anthropic-beta` names `context-management-2025-06-27`
//! (400 "Extra inputs are not permitted", as Anthropic answers), takes only the API versions
//! Anthropic has published, wants the provider's `x-api-key`, and on `count_tokens` refuses the
//! fields the counting endpoint does not take (`max_tokens`, `stream`).

use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::fixtures::{self, anthropic};
use crate::helpers::{ProviderSpec, TestApp, header, json, received, upstream_url};

/// What Claude Code 2.1.332 sends in `anthropic-beta` for a model it knows.
const CLAUDE_CODE_BETAS: &str = "claude-code-20250219,interleaved-thinking-2025-05-14,context-management-2025-06-27,thinking-token-count-2026-05-13,advanced-tool-use-2025-11-20";
const CONTEXT_MANAGEMENT_BETA: &str = "context-management-2025-06-27";
/// The model in the captured request: Claude Code sends mid-conversation `system` messages for
/// models it does not know.
const MODEL: &str = "gpt-4o";
const CLAUDE_CODE_REQUEST: &str = include_str!("../fixtures/anthropic/claude_code_request.json");

fn claude_code_request() -> Value {
    fixtures::json(CLAUDE_CODE_REQUEST)
}

/// A count-tokens body as Anthropic documents it: a Messages body without `max_tokens`.
fn count_request(text: &str) -> Value {
    json!({
        "model": MODEL,
        "system": [{"type": "text", "text": "You are a careful coding agent."}],
        "messages": [{"role": "user", "content": [{"type": "text", "text": text}]}],
        "tools": [{"name": "Bash", "description": "Runs a command", "input_schema": {"type": "object", "properties": {"command": {"type": "string"}}}}],
        "thinking": {"type": "enabled", "budget_tokens": 1024}
    })
}

fn anthropic_error(status: u16, kind: &str, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_json(json!({"type": "error", "error": {"type": kind, "message": message}}))
}

/// Anthropic's Messages and Token Counting endpoints, refusing what Anthropic refuses.
struct StrictAnthropic {
    key: String,
    /// What `count_tokens` answers.
    input_tokens: u64,
}

impl Respond for StrictAnthropic {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let text = |name: &str| request.headers.get(name).and_then(|v| v.to_str().ok());
        if text("x-api-key") != Some(self.key.as_str()) {
            return anthropic_error(401, "authentication_error", "invalid x-api-key");
        }
        match text("anthropic-version") {
            Some("2023-06-01" | "2023-01-01") => {}
            Some(v) => {
                return anthropic_error(
                    400,
                    "invalid_request_error",
                    &format!("anthropic-version: invalid version {v}"),
                );
            }
            None => return anthropic_error(400, "invalid_request_error", "anthropic-version: header is required"),
        }
        let betas: Vec<&str> = text("anthropic-beta")
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .collect();
        let Ok(body) = serde_json::from_slice::<Value>(&request.body) else {
            return anthropic_error(400, "invalid_request_error", "There was an issue with the JSON body");
        };
        if body.get("context_management").is_some() && !betas.contains(&CONTEXT_MANAGEMENT_BETA) {
            return anthropic_error(
                400,
                "invalid_request_error",
                "context_management: Extra inputs are not permitted",
            );
        }
        if request.url.path() == "/v1/messages/count_tokens" {
            for field in ["max_tokens", "stream"] {
                if body.get(field).is_some() {
                    return anthropic_error(
                        400,
                        "invalid_request_error",
                        &format!("{field}: Extra inputs are not permitted"),
                    );
                }
            }
            return ResponseTemplate::new(200).set_body_json(json!({"input_tokens": self.input_tokens}));
        }
        if body.get("max_tokens").is_none() {
            return anthropic_error(400, "invalid_request_error", "max_tokens: Field required");
        }
        if body["stream"] == json!(true) {
            return ResponseTemplate::new(200).set_body_raw(anthropic::STREAM, "text/event-stream");
        }
        ResponseTemplate::new(200).set_body_raw(anthropic::MESSAGE, "application/json")
    }
}

async fn strict_anthropic(id: &str) -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(StrictAnthropic {
            key: ProviderSpec::key_for(id),
            input_tokens: 2_095,
        })
        .mount(&server)
        .await;
    server
}

fn claude(server: &MockServer) -> ProviderSpec {
    ProviderSpec::new("direct", server.uri())
        .kind("anthropic")
        .models(&[MODEL])
}

/// `POST path` as Claude Code sends it: `?beta=true`, its headers, and `body`.
async fn post_as_claude_code(app: &TestApp, path: &str, betas: Option<&str>, body: &Value) -> reqwest::Response {
    let mut request = app
        .client
        .post(app.url(&format!("{path}?beta=true")))
        .header("x-api-key", "client-key")
        .header("anthropic-version", "2023-06-01")
        .header("x-app", "cli")
        .header("x-claude-code-session-id", "5b0c7e0e-3f5e-4a57-9d55-0b5d0d7b2f6e")
        .header("anthropic-dangerous-direct-browser-access", "true")
        .json(body);
    if let Some(betas) = betas {
        request = request.header("anthropic-beta", betas);
    }
    request.send().await.expect("POST as Claude Code")
}

fn assert_anthropic_error(body: &Value) -> &Value {
    assert_eq!(body["type"], "error", "top-level type is `error`: {body}");
    assert!(body["error"]["message"].is_string(), "{body}");
    &body["error"]
}

#[tokio::test]
async fn claude_codes_request_reaches_anthropic_with_its_betas_merged_with_the_providers() {
    // Arrange
    let upstream = strict_anthropic("direct").await;
    let app = TestApp::builder()
        .provider(claude(&upstream).set(
            "anthropic_beta",
            json!(["fine-grained-tool-streaming-2025-05-14", CONTEXT_MANAGEMENT_BETA]),
        ))
        .spawn()
        .await;
    let body = claude_code_request();

    // Act
    let response = post_as_claude_code(&app, "/v1/messages", Some(CLAUDE_CODE_BETAS), &body).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(response.text().await.expect("events"), anthropic::STREAM);
    let got = &received(&upstream).await[0];
    assert_eq!(got.url.path(), "/v1/messages");
    assert_eq!(
        got.headers["anthropic-beta"],
        format!("{CLAUDE_CODE_BETAS},fine-grained-tool-streaming-2025-05-14").as_str(),
        "the client's betas first, the provider's after, each once"
    );
    assert_eq!(got.headers["anthropic-version"], "2023-06-01");
    assert_eq!(got.headers["x-api-key"], ProviderSpec::key_for("direct").as_str());
    for header in [
        "x-claude-code-session-id",
        "x-app",
        "anthropic-dangerous-direct-browser-access",
    ] {
        assert!(
            got.headers.get(header).is_none(),
            "{header} is the client's, not forwarded"
        );
    }
    let sent: Value = serde_json::from_slice(&got.body).expect("body");
    assert_eq!(sent, body, "the body goes up as the client sent it");
    assert_eq!(
        sent["messages"][1]["role"], "system",
        "the mid-conversation system message passed validation"
    );
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["status"], "success");
    assert_eq!(row["session_id"], "5b0c7e0e-3f5e-4a57-9d55-0b5d0d7b2f6e");
}

#[tokio::test]
async fn without_the_context_management_beta_anthropic_refuses_the_request_and_the_providers_beta_fixes_it() {
    // Arrange: one provider adds the beta itself, the other does not.
    let bare = strict_anthropic("direct").await;
    let configured = strict_anthropic("direct").await;
    let without = TestApp::builder().provider(claude(&bare)).spawn().await;
    let with = TestApp::builder()
        .provider(claude(&configured).set("anthropic_beta", json!([CONTEXT_MANAGEMENT_BETA])))
        .spawn()
        .await;
    let body = claude_code_request();

    // Act: a client that sends no `anthropic-beta`.
    let refused = post_as_claude_code(&without, "/v1/messages", None, &body).await;
    let served = post_as_claude_code(&with, "/v1/messages", None, &body).await;

    // Assert
    assert_eq!(refused.status(), 400);
    let refusal = json(refused).await;
    let error = assert_anthropic_error(&refusal);
    assert_eq!(error["type"], "invalid_request_error");
    assert_eq!(error["message"], "context_management: Extra inputs are not permitted");
    assert!(received(&bare).await[0].headers.get("anthropic-beta").is_none());
    assert_eq!(served.status(), 200);
    assert_eq!(
        received(&configured).await[0].headers["anthropic-beta"],
        CONTEXT_MANAGEMENT_BETA
    );
}

#[tokio::test]
async fn the_clients_anthropic_version_wins_over_the_default() {
    // Arrange
    let upstream = strict_anthropic("direct").await;
    let app = TestApp::builder().provider(claude(&upstream)).spawn().await;
    let body = json!({"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});

    // Act
    let older = app
        .client
        .post(app.url("/v1/messages"))
        .header("x-api-key", "client-key")
        .header("anthropic-version", "2023-01-01")
        .json(&body)
        .send()
        .await
        .expect("POST /v1/messages");
    let none = app
        .client
        .post(app.url("/v1/messages"))
        .header("x-api-key", "client-key")
        .json(&body)
        .send()
        .await
        .expect("POST /v1/messages");

    // Assert
    assert_eq!(older.status(), 200);
    assert_eq!(none.status(), 200);
    let got = received(&upstream).await;
    assert_eq!(got[0].headers["anthropic-version"], "2023-01-01");
    assert_eq!(
        got[1].headers["anthropic-version"], "2023-06-01",
        "the adapter's default"
    );
}

#[tokio::test]
async fn a_chat_client_translated_to_anthropic_forwards_its_beta_too() {
    // Arrange
    let upstream = strict_anthropic("direct").await;
    let app = TestApp::builder()
        .provider(claude(&upstream).set("anthropic_beta", json!(["token-efficient-tools-2025-02-19"])))
        .spawn()
        .await;
    let body = json!({"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});

    // Act
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header("anthropic-beta", "interleaved-thinking-2025-05-14")
        .json(&body)
        .send()
        .await
        .expect("POST /v1/chat/completions");

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(json(response).await["object"], "chat.completion");
    let got = &received(&upstream).await[0];
    assert_eq!(
        got.headers["anthropic-beta"],
        "interleaved-thinking-2025-05-14,token-efficient-tools-2025-02-19"
    );
    assert_eq!(got.headers["anthropic-version"], "2023-06-01");
}

#[tokio::test]
async fn count_tokens_goes_to_an_anthropic_provider_with_the_clients_headers() {
    // Arrange
    let upstream = strict_anthropic("direct").await;
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("direct", upstream.uri())
                .kind("anthropic")
                .models(&["sonnet"])
                .alias("sonnet", "claude-sonnet-4-5"),
        )
        .spawn()
        .await;
    let mut body = count_request("Count me.");
    body["model"] = json!("sonnet");
    body["context_management"] = json!({"edits": [{"type": "clear_thinking_20251015", "keep": "all"}]});

    // Act
    let response = post_as_claude_code(&app, "/v1/messages/count_tokens", Some(CLAUDE_CODE_BETAS), &body).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "direct");
    assert!(
        response.headers().get("x-ai-gateway-token-count").is_none(),
        "the provider's own count"
    );
    assert_eq!(json(response).await, json!({"input_tokens": 2_095}));
    let got = received(&upstream).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].url.path(), "/v1/messages/count_tokens");
    assert_eq!(got[0].headers["anthropic-beta"], CLAUDE_CODE_BETAS);
    let sent: Value = serde_json::from_slice(&got[0].body).expect("body");
    assert_eq!(
        sent["model"], "claude-sonnet-4-5",
        "routing renames the model as for messages"
    );
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["endpoint"], "/v1/messages/count_tokens");
    assert_eq!(row["status"], "success");
    assert_eq!(row["provider"], "direct");
}

#[tokio::test]
async fn count_tokens_for_a_chat_provider_is_estimated_locally() {
    // Arrange
    let openai = MockServer::start().await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&openai)).models(&[MODEL]))
        .spawn()
        .await;
    let short = count_request("Hi.");
    let long = count_request(&"Refactor the parser so that every error names its line and column. ".repeat(20));

    // Act
    let first = post_as_claude_code(&app, "/v1/messages/count_tokens", Some(CLAUDE_CODE_BETAS), &short).await;
    let second = post_as_claude_code(&app, "/v1/messages/count_tokens", None, &long).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ai-gateway-token-count"), "estimate");
    assert_eq!(header(&first, "x-ai-gateway-provider"), "alpha");
    assert_eq!(header(&second, "x-ai-gateway-token-count"), "estimate");
    let few = json(first).await["input_tokens"].as_u64().expect("input_tokens");
    let many = json(second).await["input_tokens"].as_u64().expect("input_tokens");
    // The short request is system + tool + a few words; each repeated sentence is about a dozen
    // tokens in o200k_base.
    assert!((20..200).contains(&few), "{few}");
    assert!(many > few + 19 * 10, "{few} then {many}");
    assert!(received(&openai).await.is_empty(), "an estimate calls no upstream");
    let rows = app.history_rows(2).await;
    assert!(
        rows.iter()
            .all(|r| r["endpoint"] == "/v1/messages/count_tokens" && r["status"] == "success")
    );
}

#[tokio::test]
async fn count_tokens_errors_come_in_anthropics_shape() {
    // Arrange
    let upstream = strict_anthropic("direct").await;
    let app = TestApp::builder()
        .provider(claude(&upstream))
        .settings("auth: {api_keys: [client-key]}")
        .spawn()
        .await;
    let mut with_max_tokens = count_request("Hi");
    with_max_tokens["max_tokens"] = json!(10);

    // Act
    let unknown_model = post_as_claude_code(
        &app,
        "/v1/messages/count_tokens",
        None,
        &json!({"model": "nope", "messages": [{"role": "user", "content": "Hi"}]}),
    )
    .await;
    let no_messages = post_as_claude_code(&app, "/v1/messages/count_tokens", None, &json!({"model": MODEL})).await;
    let refused_upstream = post_as_claude_code(&app, "/v1/messages/count_tokens", None, &with_max_tokens).await;
    let no_key = app
        .client
        .post(app.url("/v1/messages/count_tokens"))
        .json(&count_request("Hi"))
        .send()
        .await
        .expect("POST count_tokens");

    // Assert
    assert_eq!(unknown_model.status(), 404);
    assert_eq!(
        assert_anthropic_error(&json(unknown_model).await)["type"],
        "not_found_error"
    );
    assert_eq!(no_messages.status(), 400);
    assert_eq!(
        assert_anthropic_error(&json(no_messages).await)["type"],
        "invalid_request_error"
    );
    assert_eq!(refused_upstream.status(), 400);
    let refusal = json(refused_upstream).await;
    assert_eq!(
        assert_anthropic_error(&refusal)["message"],
        "max_tokens: Extra inputs are not permitted"
    );
    assert_eq!(no_key.status(), 401);
    assert_eq!(
        assert_anthropic_error(&json(no_key).await)["type"],
        "authentication_error"
    );
}

#[tokio::test]
async fn other_paths_under_v1_messages_are_404_in_anthropics_shape() {
    // Arrange
    let app = TestApp::builder().spawn().await;

    // Act + Assert
    for (verb, path) in [
        ("POST", "/v1/messages/batches"),
        ("GET", "/v1/messages/batches/msgbatch_01"),
        ("POST", "/v1/messages/foo"),
        ("POST", "/v1/messages/"),
    ] {
        let request = match verb {
            "GET" => app.client.get(app.url(path)),
            _ => app.client.post(app.url(path)).json(&json!({})),
        };
        let response = request.send().await.expect("request");
        assert_eq!(response.status(), 404, "{verb} {path}");
        let body = json(response).await;
        assert_eq!(
            assert_anthropic_error(&body)["type"],
            "not_found_error",
            "{verb} {path}: {body}"
        );
    }
    let wrong_method = app.get("/v1/messages/count_tokens").await;
    assert_eq!(wrong_method.status(), 405);
    assert_anthropic_error(&json(wrong_method).await);
}

#[test]
fn anthropic_beta_is_a_list_of_beta_names_on_anthropic_providers_only() {
    let load = |yaml: &str| ai_gateway::config::load_str(yaml, &ai_gateway::config::Env::default());
    let on_openai = "
providers:
  - id: mine
    kind: openai
    base_url: http://127.0.0.1:9/v1
    anthropic_beta: [context-management-2025-06-27]
";
    let problems = load(on_openai).unwrap_err().problems;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("mine") && p.contains("anthropic_beta")),
        "{problems:?}"
    );
    let not_a_name = "
providers:
  - id: direct
    kind: anthropic
    base_url: http://127.0.0.1:9
    anthropic_beta: ['a,b']
";
    let problems = load(not_a_name).unwrap_err().problems;
    assert!(
        problems
            .iter()
            .any(|p| p.contains("direct") && p.contains("not a beta name")),
        "{problems:?}"
    );
    let fine = "
providers:
  - id: direct
    kind: anthropic
    base_url: http://127.0.0.1:9
    anthropic_beta: [context-management-2025-06-27, token-efficient-tools-2025-02-19]
";
    let config = load(fine).expect("valid");
    let direct = config
        .providers
        .iter()
        .find(|p| p.id.as_str() == "direct")
        .expect("direct");
    assert_eq!(
        direct.anthropic_beta,
        ["context-management-2025-06-27", "token-efficient-tools-2025-02-19"]
    );
}

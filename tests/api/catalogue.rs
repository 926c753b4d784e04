//! The built-in catalogue with no config file: a vendor's key variable alone enables it, and the
//! models today's coding agents send by default (Codex CLI 0.171.0: `gpt-6.2-sol`; Claude Code
//! 2.1.332: `claude-opus-5-5`, and `claude-sonnet-5-5`, `claude-haiku-5-5`, `claude-fable-5-2` for
//! its other choices) are routed to that vendor.
//!
//! The gateway is built here from an `Env` snapshot with `Sources { file: None }`, as the binary
//! is when no `--config` is given; the process environment is never read or touched.

use std::collections::BTreeMap;
use std::time::Duration;

use ai_gateway::config::{Env, Sources, load};
use ai_gateway::startup::{Application, init_crypto};
use serde_json::{Value, json};
use wiremock::matchers::{header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::fixtures::{self, anthropic};
use crate::helpers::{chat_body, completion, mount_chat, received, upstream_url};

/// What Codex CLI 0.171.0 sends when its config names no model.
const CODEX_DEFAULT: &str = "gpt-6.2-sol";
/// What Claude Code 2.1.332 sends by default, then for `--model sonnet`, `haiku` and `fable`.
const CLAUDE_CODE_MODELS: [&str; 4] = [
    "claude-opus-5-5",
    "claude-sonnet-5-5",
    "claude-haiku-5-5",
    "claude-fable-5-2",
];
const OPENAI_KEY: &str = "sk-openai-from-env";
const ANTHROPIC_KEY: &str = "sk-ant-from-env";

/// A gateway loaded from `vars` alone (no config file), listening on a free port.
struct EnvOnlyGateway {
    address: String,
    client: reqwest::Client,
    _data: tempfile::TempDir,
}

impl EnvOnlyGateway {
    async fn spawn(vars: &[(&str, &str)]) -> Self {
        init_crypto();
        let data = tempfile::tempdir().expect("create temp dir");
        let mut env = Env::from_pairs(vars.iter().copied());
        // Where to listen and where to keep history are deployment facts, not provider config.
        env.set("AI_GATEWAY_LISTEN", "127.0.0.1:0");
        env.set("DATABASE_URL", format!("sqlite://{}/history.db", data.path().display()));
        let config = load(&Sources { file: None, env }).expect("the environment alone is a valid config");
        let app = Application::build(config).await.expect("gateway builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("build test client");
        Self {
            address,
            client,
            _data: data,
        }
    }

    async fn get(&self, route: &str) -> reqwest::Response {
        self.client
            .get(format!("{}{route}", self.address))
            .send()
            .await
            .expect("gateway answers")
    }

    async fn post(&self, route: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(format!("{}{route}", self.address))
            .json(body)
            .send()
            .await
            .expect("gateway answers")
    }

    /// `id → owned_by` of `GET /v1/models`.
    async fn model_owners(&self) -> BTreeMap<String, String> {
        let response = self.get("/v1/models").await;
        assert_eq!(response.status(), 200);
        let list: Value = response.json().await.expect("models list is JSON");
        list["data"]
            .as_array()
            .expect("data is an array")
            .iter()
            .map(|m| {
                (
                    m["id"].as_str().expect("id").to_owned(),
                    m["owned_by"].as_str().expect("owned_by").to_owned(),
                )
            })
            .collect()
    }
}

/// OpenAI's chat endpoint, answering only a request that carries the key from the environment.
async fn mount_openai(server: &MockServer, calls: u64) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(header("authorization", format!("Bearer {OPENAI_KEY}").as_str()))
        .respond_with(completion())
        .expect(calls)
        .named("OpenAI chat completions")
        .mount(server)
        .await;
}

/// Anthropic's Messages endpoint, answering only what the real one accepts: the key in
/// `x-api-key` and an `anthropic-version`.
async fn mount_anthropic(server: &MockServer, calls: u64) {
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .and(header("x-api-key", ANTHROPIC_KEY))
        .and(header("anthropic-version", "2023-06-01"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(anthropic::MESSAGE, "application/json"))
        .expect(calls)
        .named("Anthropic messages")
        .mount(server)
        .await;
}

fn messages_request(model: &str) -> Value {
    let mut body = fixtures::json(anthropic::REQUEST);
    body["model"] = json!(model);
    body
}

#[tokio::test]
async fn codex_default_model_goes_to_openai_with_only_its_key_in_the_environment() {
    // Arrange
    let openai = MockServer::start().await;
    mount_openai(&openai, 1).await;
    let base = upstream_url(&openai);
    let gateway = EnvOnlyGateway::spawn(&[("OPENAI_API_KEY", OPENAI_KEY), ("OPENAI_BASE_URL", &base)]).await;

    // Act
    let owners = gateway.model_owners().await;
    let response = gateway.post("/v1/chat/completions", &chat_body(CODEX_DEFAULT)).await;

    // Assert
    assert_eq!(
        owners.get(CODEX_DEFAULT).map(String::as_str),
        Some("openai"),
        "{owners:?}"
    );
    assert_eq!(response.status(), 200);
    let sent: Value = received(&openai).await[0].body_json().expect("chat body");
    assert_eq!(sent["model"], CODEX_DEFAULT);
}

#[tokio::test]
async fn every_claude_code_model_goes_to_anthropic_with_only_its_key_in_the_environment() {
    // Arrange
    let anthropic_mock = MockServer::start().await;
    mount_anthropic(&anthropic_mock, CLAUDE_CODE_MODELS.len() as u64).await;
    let base = anthropic_mock.uri();
    let gateway = EnvOnlyGateway::spawn(&[("ANTHROPIC_API_KEY", ANTHROPIC_KEY), ("ANTHROPIC_BASE_URL", &base)]).await;

    // Act
    let owners = gateway.model_owners().await;
    let mut statuses = Vec::new();
    for model in CLAUDE_CODE_MODELS {
        // Claude Code's own path, query string included.
        let response = gateway.post("/v1/messages?beta=true", &messages_request(model)).await;
        statuses.push((model, response.status().as_u16()));
    }

    // Assert
    for model in CLAUDE_CODE_MODELS {
        assert_eq!(
            owners.get(model).map(String::as_str),
            Some("anthropic"),
            "{model}: {owners:?}"
        );
    }
    assert!(statuses.iter().all(|(_, s)| *s == 200), "{statuses:?}");
    let sent: Vec<String> = received(&anthropic_mock)
        .await
        .iter()
        .map(|r| {
            let body: Value = r.body_json().expect("messages body");
            body["model"].as_str().expect("model").to_owned()
        })
        .collect();
    assert_eq!(sent, CLAUDE_CODE_MODELS, "each model reaches Anthropic unchanged");
}

#[tokio::test]
async fn with_both_keys_each_agent_model_goes_to_its_own_vendor() {
    // Arrange
    let openai = MockServer::start().await;
    let anthropic_mock = MockServer::start().await;
    mount_openai(&openai, 1).await;
    mount_anthropic(&anthropic_mock, 1).await;
    let openai_base = upstream_url(&openai);
    let anthropic_base = anthropic_mock.uri();
    let gateway = EnvOnlyGateway::spawn(&[
        ("OPENAI_API_KEY", OPENAI_KEY),
        ("OPENAI_BASE_URL", &openai_base),
        ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
        ("ANTHROPIC_BASE_URL", &anthropic_base),
    ])
    .await;

    // Act: OpenAI ranks before Anthropic, so only the model decides where a request goes.
    let claude = gateway
        .post("/v1/messages", &messages_request(CLAUDE_CODE_MODELS[0]))
        .await;
    let codex = gateway.post("/v1/chat/completions", &chat_body(CODEX_DEFAULT)).await;

    // Assert
    assert_eq!(claude.status(), 200);
    assert_eq!(codex.status(), 200);
    let owners = gateway.model_owners().await;
    assert_eq!(owners.get(CODEX_DEFAULT).map(String::as_str), Some("openai"));
    for model in CLAUDE_CODE_MODELS {
        assert_eq!(owners.get(model).map(String::as_str), Some("anthropic"), "{model}");
    }
}

#[tokio::test]
async fn the_one_backend_variables_alone_list_the_model_and_route_to_the_runtime() {
    // Arrange: a local runtime's OpenAI-compatible server (`make up BACKEND=ollama` sets these
    // three), which takes no key.
    let runtime = MockServer::start().await;
    mount_chat(&runtime, completion(), 1).await;
    let base = upstream_url(&runtime);
    let gateway = EnvOnlyGateway::spawn(&[
        ("BACKEND_KIND", "ollama"),
        ("BACKEND_BASE_URL", &base),
        ("MODEL_NAME", "llama3.2"),
    ])
    .await;

    // Act
    let owners = gateway.model_owners().await;
    let response = gateway.post("/v1/chat/completions", &chat_body("llama3.2")).await;

    // Assert
    assert_eq!(
        owners.get("llama3.2").map(String::as_str),
        Some("backend"),
        "{owners:?}"
    );
    assert_eq!(response.status(), 200);
    assert_eq!(
        response
            .headers()
            .get("x-ai-gateway-provider")
            .and_then(|v| v.to_str().ok()),
        Some("backend")
    );
    let sent: Value = received(&runtime).await[0].body_json().expect("chat body");
    assert_eq!(sent["model"], "llama3.2");
}

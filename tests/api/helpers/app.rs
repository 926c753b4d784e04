//! `TestApp`: the gateway built from a temp YAML file through `config::load`, served in-process on
//! `127.0.0.1:0`, and a client that speaks to it.
//!
//! Usage: `TestApp::builder().provider(ProviderSpec::new("alpha", upstream_url(&mock))).settings("routing: {max_retries: 2}").spawn().await`.

use std::future::Future;
use std::io::Write;
use std::sync::Once;
use std::time::Duration;

use actix_web::dev::ServerHandle;
use ai_gateway::config::{Env, LogFormat, LoggingSettings, Sources, load};
use ai_gateway::startup::{Application, init_crypto};
use ai_gateway::store::HistoryStore;
use serde_json::{Value, json};
use wiremock::MockServer;

/// The model every `ProviderSpec` serves unless told otherwise.
pub const TEST_MODEL: &str = "gpt-test";

/// Settings every test starts from; a test overrides only what its behaviour depends on.
///
/// No retries, tiny backoff and a breaker that never opens keep call counts exact; timeouts are
/// generous so that only a test about timeouts ever meets one, even on a loaded machine.
fn base_settings() -> Value {
    json!({
        "listen": "127.0.0.1:0",
        "routing": {
            "max_retries": 0,
            "timeout_seconds": 10,
            "first_token_timeout_seconds": 10,
            "stream_idle_timeout_seconds": 10,
            "backoff_base_ms": 1,
            "backoff_max_ms": 5000,
            "circuit_breaker": { "failure_threshold": 1000, "reset_timeout_seconds": 60 }
        }
    })
}

/// `http://127.0.0.1:PORT/v1` for a wiremock upstream: the base URL an OpenAI provider is given.
pub fn upstream_url(mock: &MockServer) -> String {
    format!("{}/v1", mock.uri())
}

/// A base URL nothing listens on: the port was free a moment ago and is closed now.
pub fn closed_port_url() -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    let port = listener.local_addr().expect("local address").port();
    drop(listener);
    format!("http://127.0.0.1:{port}/v1")
}

/// One `providers:` entry (kind `openai` unless told otherwise).
#[derive(Debug, Clone)]
pub struct ProviderSpec {
    id: String,
    kind: String,
    extra: Vec<(String, Value)>,
    base_url: String,
    api_key: String,
    models: Vec<String>,
    priority: Option<i32>,
    aliases: Vec<(String, String)>,
}

impl ProviderSpec {
    /// A provider serving `gpt-test` at `base_url` with key `sk-<id>-provider`; priority follows
    /// the order providers are added to the builder.
    pub fn new(id: &str, base_url: impl Into<String>) -> Self {
        Self {
            id: id.to_owned(),
            kind: "openai".to_owned(),
            extra: Vec::new(),
            base_url: base_url.into(),
            api_key: Self::key_for(id),
            models: vec![TEST_MODEL.to_owned()],
            priority: None,
            aliases: Vec::new(),
        }
    }

    /// The upstream key a provider with this id is configured with.
    pub fn key_for(id: &str) -> String {
        format!("sk-{id}-provider")
    }

    /// Sets the wire protocol (`anthropic`, `gemini`, `azure`).
    pub fn kind(mut self, kind: &str) -> Self {
        kind.clone_into(&mut self.kind);
        self
    }

    /// Sets another `providers:` field, e.g. `.set("query", json!({"api-version": "2024-10-21"}))`.
    pub fn set(mut self, key: &str, value: Value) -> Self {
        self.extra.push((key.to_owned(), value));
        self
    }

    /// Replaces the served models (`"*"` = any).
    pub fn models(mut self, models: &[&str]) -> Self {
        self.models = models.iter().map(|m| (*m).to_owned()).collect();
        self
    }

    /// Sets the priority explicitly (lower is tried first).
    pub fn priority(mut self, priority: i32) -> Self {
        self.priority = Some(priority);
        self
    }

    /// Maps the client-facing `alias` to `upstream` for this provider.
    pub fn alias(mut self, alias: &str, upstream: &str) -> Self {
        self.aliases.push((alias.to_owned(), upstream.to_owned()));
        self
    }

    fn to_yaml(&self, default_priority: i32) -> Value {
        let aliases: serde_json::Map<String, Value> = self
            .aliases
            .iter()
            .map(|(a, u)| (a.clone(), Value::String(u.clone())))
            .collect();
        let mut entry = json!({
            "id": self.id,
            "kind": self.kind,
            "base_url": self.base_url,
            "api_key": self.api_key,
            "models": self.models,
            "priority": self.priority.unwrap_or(default_priority),
            "model_aliases": aliases,
        });
        // The chat mocks have no `/responses`: an OpenAI-protocol provider bridges `/v1/responses`
        // unless a test says its mock speaks the Responses API (`.set("responses", ...)`).
        if matches!(self.kind.as_str(), "openai" | "azure") {
            entry["responses"] = json!("bridge");
        }
        for (key, value) in &self.extra {
            entry[key] = value.clone();
        }
        entry
    }
}

/// Builds a `TestApp`.
#[derive(Debug)]
#[must_use = "call .spawn().await to start the gateway"]
pub struct TestAppBuilder {
    providers: Vec<ProviderSpec>,
    settings: Value,
    database: Database,
    env: Env,
}

/// Which history database a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Database {
    /// A temp SQLite file (the default).
    Sqlite,
    /// A fresh database on the shared PostgreSQL server.
    Postgres,
}

impl TestAppBuilder {
    /// Adds a provider; without an explicit priority it ranks after those added before it.
    pub fn provider(mut self, provider: ProviderSpec) -> Self {
        self.providers.push(provider);
        self
    }

    /// Sets an environment variable as the gateway's config loader sees it (the process
    /// environment is never touched).
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.set(name, value);
        self
    }

    /// Runs the history on `database`.
    pub fn database(mut self, database: Database) -> Self {
        self.database = database;
        self
    }

    /// Merges a YAML snippet over the test settings, e.g. `"routing: {max_retries: 2}"`.
    pub fn settings(mut self, yaml: &str) -> Self {
        let overrides: Value = serde_yaml_ng::from_str(yaml).expect("settings snippet is valid YAML");
        merge(&mut self.settings, overrides);
        self
    }

    /// Writes the config file, loads it as the binary would, builds and spawns the gateway.
    pub async fn spawn(self) -> TestApp {
        init_test_logging();
        init_crypto();
        let mut tree = self.settings;
        // Every test gets its own history database: a fresh PostgreSQL database when asked for,
        // else an SQLite file in a temp dir that lives as long as the TestApp.
        let data = tempfile::tempdir().expect("create temp dir");
        if tree.get("database_url").is_none() {
            let url = match self.database {
                Database::Sqlite => format!("sqlite://{}/history.db", data.path().display()),
                Database::Postgres => super::db::fresh_postgres_database().await,
            };
            tree["database_url"] = Value::String(url);
        }
        // Providers given with `.provider(...)` follow any declared in a `.settings(...)` snippet.
        let mut providers = tree
            .get("providers")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default();
        providers.extend(self.providers.iter().zip(1..).map(|(p, rank)| p.to_yaml(rank)));
        tree["providers"] = Value::Array(providers);
        let mut file = tempfile::Builder::new()
            .suffix(".yaml")
            .tempfile()
            .expect("create temp config");
        // JSON is YAML, and serde_json keeps the tree exactly as built.
        file.write_all(&serde_json::to_vec_pretty(&tree).expect("settings serialize"))
            .expect("write temp config");
        let sources = Sources {
            file: Some(file.path().to_owned()),
            env: self.env,
        };
        let config = load(&sources).unwrap_or_else(|e| panic!("test config is invalid: {e}\n{tree:#}"));
        let app = Application::build(config).await.expect("gateway builds");
        let port = app.port();
        let state = app.state();
        let server = app.server_handle();
        let stopped = tokio::spawn(app.run_until_stopped());
        let client = reqwest::Client::builder()
            // A hung test fails loudly instead of hanging the suite.
            .timeout(Duration::from_secs(30))
            .build()
            .expect("build test client");
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client,
            store: state.store.clone(),
            state,
            server,
            stopped: Some(stopped),
            _data: data,
            _config: file,
        }
    }
}

fn merge(base: &mut Value, overrides: Value) {
    match (base, overrides) {
        (Value::Object(base), Value::Object(overrides)) => {
            for (key, value) in overrides {
                merge(base.entry(key).or_insert(Value::Null), value);
            }
        }
        (slot, value) => *slot = value,
    }
}

/// A running gateway.
#[derive(Debug)]
pub struct TestApp {
    /// `http://127.0.0.1:PORT`.
    pub address: String,
    /// The gateway's port.
    pub port: u16,
    /// A plain HTTP client for the gateway.
    pub client: reqwest::Client,
    /// The gateway's history database, for reading rows back.
    pub store: HistoryStore,
    /// The gateway's shared state (its live configuration, its reload entry points).
    pub state: actix_web::web::Data<ai_gateway::state::AppState>,
    /// Stops the server as SIGTERM does once its drain is over (`state.shutdown.request()` is the
    /// whole of SIGTERM).
    pub server: ServerHandle,
    stopped: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    _data: tempfile::TempDir,
    _config: tempfile::NamedTempFile,
}

impl TestApp {
    /// Starts building a gateway with no providers.
    pub fn builder() -> TestAppBuilder {
        TestAppBuilder {
            providers: Vec::new(),
            settings: base_settings(),
            database: Database::Sqlite,
            env: Env::default(),
        }
    }

    /// Stops the server as SIGTERM does after its drain (in-flight requests finish, the history
    /// writer flushes) and waits until it has fully stopped.
    pub async fn stop(&mut self) {
        self.server.stop(true).await;
        if let Some(stopped) = self.stopped.take() {
            stopped.await.expect("server task").expect("server stops cleanly");
        }
    }

    /// Waits until the history holds `n` rows (the writer flushes about every 100 ms), then
    /// returns them newest first.
    pub async fn history_rows(&self, n: usize) -> Vec<Value> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let rows = self
                .store
                .list(&ai_gateway::store::HistoryQuery {
                    limit: Some(1000),
                    ..Default::default()
                })
                .await
                .expect("history readable");
            if rows.len() >= n || tokio::time::Instant::now() > deadline {
                assert_eq!(rows.len(), n, "history rows: {rows:#?}");
                return rows
                    .into_iter()
                    .map(|r| serde_json::to_value(r).expect("row serializes"))
                    .collect();
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The config file the gateway was loaded from (a hot-reload test rewrites it).
    pub fn config_path(&self) -> &std::path::Path {
        self._config.path()
    }

    /// `address` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// `POST /v1/chat/completions` with a JSON body. The future owns everything it needs, so a
    /// test can `tokio::spawn` it while it drives a mock.
    pub fn post_chat(&self, body: &Value) -> impl Future<Output = reqwest::Response> + Send + 'static {
        let request = self.client.post(self.url("/v1/chat/completions")).json(body);
        async move { request.send().await.expect("POST /v1/chat/completions") }
    }

    /// `POST path` with a JSON body.
    pub fn post_json(&self, path: &str, body: &Value) -> impl Future<Output = reqwest::Response> + Send + 'static {
        let request = self.client.post(self.url(path)).json(body);
        let path = path.to_owned();
        async move { request.send().await.unwrap_or_else(|e| panic!("POST {path}: {e}")) }
    }

    /// `POST /v1/messages` as the official `anthropic` SDK sends it: `x-api-key`,
    /// `anthropic-version` and a JSON body.
    pub fn post_messages(&self, body: &Value) -> impl Future<Output = reqwest::Response> + Send + 'static {
        let request = self
            .client
            .post(self.url("/v1/messages"))
            .header("x-api-key", "client-key")
            .header("anthropic-version", "2023-06-01")
            .json(body);
        async move { request.send().await.expect("POST /v1/messages") }
    }

    /// `POST path` with these exact body bytes, sent as `application/json`.
    pub fn post_raw(
        &self,
        path: &str,
        body: impl Into<reqwest::Body>,
    ) -> impl Future<Output = reqwest::Response> + Send + 'static {
        let request = self
            .client
            .post(self.url(path))
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .body(body);
        let path = path.to_owned();
        async move { request.send().await.unwrap_or_else(|e| panic!("POST {path}: {e}")) }
    }

    /// `GET path`.
    pub fn get(&self, path: &str) -> impl Future<Output = reqwest::Response> + Send + 'static {
        let request = self.client.get(self.url(path));
        let path = path.to_owned();
        async move { request.send().await.unwrap_or_else(|e| panic!("GET {path}: {e}")) }
    }

    /// `GET /health`, parsed.
    pub async fn health(&self) -> Value {
        let response = self.get("/health").await;
        assert_eq!(response.status(), 200, "/health answers 200");
        response.json().await.expect("/health is JSON")
    }

    /// The breaker state `/health` reports for provider `id`.
    pub async fn breaker(&self, id: &str) -> String {
        let health = self.health().await;
        let providers = health["providers"].as_array().expect("providers is an array");
        let provider = providers
            .iter()
            .find(|p| p["id"] == id)
            .unwrap_or_else(|| panic!("/health does not list `{id}`: {health}"));
        provider["breaker"].as_str().expect("breaker is a string").to_owned()
    }

    /// Polls `/health` until provider `id`'s breaker reads `state`; panics after 10 s.
    pub async fn wait_for_breaker(&self, id: &str, state: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let now = self.breaker(id).await;
            if now == state {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "breaker of `{id}` is still `{now}`, never became `{state}`"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

/// Installs the gateway's log subscriber once, only when `TEST_LOG` is set.
fn init_test_logging() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        #[expect(clippy::disallowed_methods, reason = "tests read TEST_LOG to decide whether to log")]
        let enabled = std::env::var("TEST_LOG").is_ok_and(|v| !v.is_empty() && v != "0");
        if enabled {
            let settings = LoggingSettings {
                format: LogFormat::Pretty,
                filter: "info,ai_gateway=debug".into(),
                ..LoggingSettings::default()
            };
            ai_gateway::telemetry::init(&settings).expect("install the test log subscriber");
        }
    });
}

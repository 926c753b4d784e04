//! Provider key pools (`api_keys`): a request uses one key, sticky per session; a key the upstream
//! refuses (429 for one model, 401/402/403 for the whole key) rests while the request is retried
//! at once with another key of the same provider, and the provider's breakers never count it.
//! The mock answers by the `Authorization` header it receives, as OpenAI does per key.

use std::sync::Arc;
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{
    ProviderSpec, TEST_MODEL, TestApp, chat_body, completion, fixtures, header, json, received, stream_body,
    upstream_url,
};

/// OpenAI's 429 body for a rate-limited key.
const RATE_LIMITED: &str = r#"{"error":{"message":"Rate limit reached for gpt-test in organization org-x on requests per min (RPM): Limit 3, Used 3, Requested 1.","type":"requests","param":null,"code":"rate_limit_exceeded"}}"#;
/// OpenAI's 401 body for a revoked key.
const BAD_KEY: &str = r#"{"error":{"message":"Incorrect API key provided: sk-a. You can find your API key at https://platform.openai.com/account/api-keys.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}"#;

/// Answers each key with the status set for it (200: the completion fixture).
#[derive(Clone)]
struct PerKey {
    a: Arc<AtomicU16>,
    b: Arc<AtomicU16>,
    retry_after: Option<&'static str>,
    stream: bool,
}

impl PerKey {
    fn new(a: u16, b: u16) -> Self {
        Self {
            a: Arc::new(AtomicU16::new(a)),
            b: Arc::new(AtomicU16::new(b)),
            retry_after: None,
            stream: false,
        }
    }
}

impl Respond for PerKey {
    fn respond(&self, request: &Request) -> ResponseTemplate {
        let status = match bearer(request).as_str() {
            "sk-a" => self.a.load(Ordering::SeqCst),
            "sk-b" => self.b.load(Ordering::SeqCst),
            _ => 401,
        };
        let body = match status {
            200 if self.stream => {
                return ResponseTemplate::new(200).set_body_raw(fixtures::CHAT_COMPLETION_CHUNKS, "text/event-stream");
            }
            200 => return completion(),
            429 => RATE_LIMITED,
            _ => BAD_KEY,
        };
        let mut template = ResponseTemplate::new(status).set_body_raw(body, "application/json");
        if let Some(seconds) = self.retry_after {
            template = template.insert_header("retry-after", seconds);
        }
        template
    }
}

fn bearer(request: &Request) -> String {
    request
        .headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default()
        .to_owned()
}

async fn mount(mock: &MockServer, keys: PerKey) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(keys)
        .mount(mock)
        .await;
}

/// `alpha` with the keys `sk-a` and `sk-b`, serving `gpt-test` and `gpt-other`; a breaker that
/// opens on the first failure it counts, so a key rest that counted would show.
fn pooled(mock: &MockServer, cooldown: f64) -> ProviderSpec {
    ProviderSpec::new("alpha", upstream_url(mock))
        .set("api_key", Value::Null)
        .set("api_keys", json!(["sk-a", {"key": "sk-b", "weight": 1}]))
        .set("key_cooldown_seconds", json!(cooldown))
        .models(&[TEST_MODEL, "gpt-other"])
}

const STRICT_BREAKER: &str =
    "routing: {max_retries: 0, circuit_breaker: {failure_threshold: 1, reset_timeout_seconds: 60}}";

/// A session id that the pool maps to key `index` for `model`.
fn session_for(app: &TestApp, index: usize, model: &str) -> String {
    let live = app.state.live();
    let alpha = live
        .registry
        .providers()
        .iter()
        .find(|p| p.config.id.as_str() == "alpha");
    let pool = alpha.and_then(|p| p.keys.clone()).expect("alpha has a key pool");
    (0..1000)
        .map(|i| format!("session-{i}"))
        .find(|s| pool.choose(s, model) == Some(index))
        .expect("some session maps to each key")
}

async fn chat(app: &TestApp, session: &str, model: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/chat/completions"))
        .header("x-session-id", session)
        .json(&chat_body(model))
        .send()
        .await
        .expect("request reaches the gateway")
}

/// The keys the mock saw, in order.
async fn keys_seen(mock: &MockServer) -> Vec<String> {
    received(mock).await.iter().map(bearer).collect()
}

async fn provider_status(app: &TestApp) -> Value {
    let body = json(app.get("/provider/status").await).await;
    body["providers"]
        .as_array()
        .and_then(|ps| ps.iter().find(|p| p["id"] == "alpha").cloned())
        .expect("/provider/status lists alpha")
}

#[tokio::test]
async fn a_rate_limited_key_rests_for_its_model_and_the_other_key_answers_at_once() {
    // Arrange
    let mock = MockServer::start().await;
    let keys = PerKey::new(429, 200);
    mount(&mock, keys.clone()).await;
    let app = TestApp::builder()
        .provider(pooled(&mock, 1.0))
        .settings(STRICT_BREAKER)
        .spawn()
        .await;
    let on_a = session_for(&app, 0, TEST_MODEL);

    // Act
    let response = chat(&app, &on_a, TEST_MODEL).await;

    // Assert: retried at once with the other key, and no breaker counted the 429.
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "alpha");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    assert_eq!(keys_seen(&mock).await, ["sk-a", "sk-b"]);
    assert_eq!(app.breaker("alpha").await, "closed");
    let status = provider_status(&app).await;
    assert_eq!(status["model_breakers"][TEST_MODEL], "closed");
    assert_eq!(status["keys"][0]["resting_models"][0]["model"], TEST_MODEL);
    assert_eq!(
        status["keys"][0]["resting_seconds"], 0.0,
        "a 429 rests the key for one model only"
    );
    assert_eq!(status["keys"][0]["hash"].as_str().map(str::len), Some(8));
    assert!(!status.to_string().contains("sk-a"), "no key is shown: {status}");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains(r#"gateway_key_cooldowns_total{key="0",provider="alpha"} 1"#),
        "{metrics}"
    );

    // While it rests, the same session goes straight to the other key; another model still
    // uses the resting key.
    assert_eq!(chat(&app, &on_a, TEST_MODEL).await.status(), 200);
    keys.a.store(200, Ordering::SeqCst);
    assert_eq!(chat(&app, &on_a, "gpt-other").await.status(), 200);
    assert_eq!(keys_seen(&mock).await[2..], ["sk-b", "sk-a"]);

    // After its cooldown the session is back on its own key.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(chat(&app, &on_a, TEST_MODEL).await.status(), 200);
    assert_eq!(keys_seen(&mock).await[4..], ["sk-a"]);
}

#[tokio::test]
async fn a_refused_key_rests_whole_for_the_cooldown() {
    // Arrange
    let mock = MockServer::start().await;
    mount(&mock, PerKey::new(401, 200)).await;
    let app = TestApp::builder()
        .provider(pooled(&mock, 60.0))
        .settings(STRICT_BREAKER)
        .spawn()
        .await;
    let on_a = session_for(&app, 0, TEST_MODEL);
    let other_on_a = session_for(&app, 0, "gpt-other");

    // Act
    let first = chat(&app, &on_a, TEST_MODEL).await;
    let other_model = chat(&app, &other_on_a, "gpt-other").await;

    // Assert: the whole key rests, for every model, and the provider stays closed.
    assert_eq!(first.status(), 200);
    assert_eq!(other_model.status(), 200);
    assert_eq!(keys_seen(&mock).await, ["sk-a", "sk-b", "sk-b"]);
    assert_eq!(app.breaker("alpha").await, "closed");
    let rest = provider_status(&app).await["keys"][0]["resting_seconds"]
        .as_f64()
        .unwrap();
    assert!(rest > 55.0 && rest <= 60.0, "rests for key_cooldown_seconds: {rest}");
}

#[tokio::test]
async fn every_key_resting_skips_the_provider_like_an_open_breaker() {
    // Arrange: both keys are rate limited for 30 s; beta serves the same model.
    let mock = MockServer::start().await;
    mount(
        &mock,
        PerKey {
            retry_after: Some("30"),
            ..PerKey::new(429, 429)
        },
    )
    .await;
    let beta = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(completion())
        .expect(2)
        .mount(&beta)
        .await;
    let app = TestApp::builder()
        .provider(pooled(&mock, 60.0))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .settings(STRICT_BREAKER)
        .spawn()
        .await;

    // Act
    let first = chat(&app, "s", TEST_MODEL).await;
    let second = chat(&app, "s", TEST_MODEL).await;

    // Assert: both keys were tried once, then alpha is passed by without a call.
    assert_eq!(header(&first, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&second, "x-ai-gateway-provider"), "beta");
    assert_eq!(keys_seen(&mock).await.len(), 2);
    assert_eq!(app.breaker("alpha").await, "closed");
    let rows = app.history_rows(2).await;
    let outcomes: Vec<Value> = rows
        .iter()
        .flat_map(|r| r["attempts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["provider"] == "alpha")
        .map(|a| a["outcome"].clone())
        .collect();
    assert!(outcomes.contains(&json!("keys_cooling")), "{outcomes:?}");
}

#[tokio::test]
async fn with_no_other_provider_every_key_resting_is_a_503_with_retry_after() {
    // Arrange
    let mock = MockServer::start().await;
    mount(
        &mock,
        PerKey {
            retry_after: Some("30"),
            ..PerKey::new(429, 429)
        },
    )
    .await;
    let app = TestApp::builder()
        .provider(pooled(&mock, 60.0))
        .settings(STRICT_BREAKER)
        .spawn()
        .await;
    let first = chat(&app, "s", TEST_MODEL).await;
    assert_eq!(first.status(), 502, "both keys were refused in this request");

    // Act
    let second = chat(&app, "s", TEST_MODEL).await;

    // Assert
    assert_eq!(second.status(), 503);
    let wait: u64 = header(&second, "retry-after").parse().unwrap();
    assert!((28..=30).contains(&wait), "Retry-After follows the keys' rest: {wait}");
    assert_eq!(keys_seen(&mock).await.len(), 2);
}

#[tokio::test]
async fn a_session_keeps_its_key_and_sessions_spread_over_the_keys() {
    // Arrange
    let mock = MockServer::start().await;
    mount(&mock, PerKey::new(200, 200)).await;
    let app = TestApp::builder().provider(pooled(&mock, 60.0)).spawn().await;

    // Act
    for _ in 0..5 {
        assert_eq!(chat(&app, "one-session", TEST_MODEL).await.status(), 200);
    }
    for i in 0..20 {
        assert_eq!(chat(&app, &format!("other-{i}"), TEST_MODEL).await.status(), 200);
    }

    // Assert
    let seen = keys_seen(&mock).await;
    assert!(
        seen[..5].iter().all(|k| *k == seen[0]),
        "one session, one key: {seen:?}"
    );
    for key in ["sk-a", "sk-b"] {
        assert!(
            seen[5..].iter().any(|k| k == key),
            "{key} serves some sessions: {seen:?}"
        );
    }
}

#[tokio::test]
async fn a_stream_opens_with_the_other_key_when_its_key_is_rate_limited() {
    // Arrange
    let mock = MockServer::start().await;
    mount(
        &mock,
        PerKey {
            stream: true,
            ..PerKey::new(429, 200)
        },
    )
    .await;
    let app = TestApp::builder()
        .provider(pooled(&mock, 60.0))
        .settings(STRICT_BREAKER)
        .spawn()
        .await;
    let on_a = session_for(&app, 0, TEST_MODEL);

    // Act
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header("x-session-id", &on_a)
        .json(&stream_body(TEST_MODEL))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    assert_eq!(keys_seen(&mock).await, ["sk-a", "sk-b"]);
    assert_eq!(app.breaker("alpha").await, "closed");
}

#[tokio::test]
async fn changing_keys_keeps_the_slot_under_a_concurrency_cap() {
    // Arrange: one slot, and a queue that would give up long before the test's timeout.
    let mock = MockServer::start().await;
    mount(&mock, PerKey::new(429, 200)).await;
    let app = TestApp::builder()
        .provider(
            pooled(&mock, 60.0)
                .set("max_concurrency", json!(1))
                .set("queue", json!({"size": 4, "max_wait_ms": 500})),
        )
        .settings(STRICT_BREAKER)
        .spawn()
        .await;
    let on_a = session_for(&app, 0, TEST_MODEL);

    // Act
    let response = chat(&app, &on_a, TEST_MODEL).await;

    // Assert: the second key was called at once, not queued behind the request's own slot.
    assert_eq!(response.status(), 200);
    assert_eq!(keys_seen(&mock).await, ["sk-a", "sk-b"]);
    let status = json(app.get("/provider/status").await).await;
    let alpha = status["queues"]
        .as_array()
        .and_then(|q| q.iter().find(|l| l["level"] == "provider:alpha"))
        .unwrap_or_else(|| panic!("alpha's cap is listed: {status}"));
    assert_eq!(alpha["in_use"], 0, "the slot is free again: {alpha}");
    assert_eq!(alpha["cap"], 1);
}

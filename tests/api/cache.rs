//! The response cache: `x-ai-gateway-cache: on` or a route's `cache:` stores a non-streamed answer,
//! and the same request (whatever its key order or whitespace) is then answered without an
//! upstream call; `off` bypasses; entries expire; streams and errors are never stored; through
//! Redis two replicas share entries, and a Redis that is cut only costs hits.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::tcp_proxy::TcpProxy;
use crate::helpers::{
    Database, ProviderSpec, TEST_MODEL, TestApp, chat_body, completion, failure, fixtures, header, json, mount_chat,
    stream_body, upstream_url,
};

/// A Redis key prefix no other test (or environment) shares.
fn fresh_prefix() -> String {
    format!("aigw-test-{}:", uuid::Uuid::now_v7().simple())
}

async fn app_with(mock: &MockServer, settings: &str) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(mock)))
        .settings(settings)
        .spawn()
        .await
}

/// `POST path` with `x-ai-gateway-cache: value` and these exact body bytes.
async fn post_with_cache(app: &TestApp, path: &str, value: &str, body: impl Into<reqwest::Body>) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("x-ai-gateway-cache", value)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .expect("POST reaches the gateway")
}

async fn chat_cached(app: &TestApp, body: &Value) -> reqwest::Response {
    post_with_cache(app, "/v1/chat/completions", "on", body.to_string()).await
}

fn cache_header(response: &reqwest::Response) -> Option<String> {
    response
        .headers()
        .get("x-ai-gateway-cache")
        .map(|v| v.to_str().expect("ASCII").to_owned())
}

/// A counter's value in `/metrics` (the whole line prefix, labels included).
async fn metric(app: &TestApp, series: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no series `{series}` in /metrics"))
}

#[tokio::test]
async fn the_same_body_twice_with_the_header_is_a_miss_then_a_hit_with_one_upstream_call() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = app_with(&alpha, "{}").await;
    let body = chat_body(TEST_MODEL);

    // Act
    let first = chat_cached(&app, &body).await;
    let second = chat_cached(&app, &body).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    assert_eq!(cache_header(&first).as_deref(), Some("miss"));
    assert_eq!(cache_header(&second).as_deref(), Some("hit"));
    assert_eq!(header(&second, "x-ai-gateway-provider"), "alpha");
    assert_eq!(header(&second, "x-ai-gateway-attempts"), "0");
    let (a, b) = (json(first).await, json(second).await);
    assert_eq!(a, b);
    assert_eq!(a, fixtures::json(fixtures::CHAT_COMPLETION));
    assert_eq!(metric(&app, "gateway_cache_requests_total{result=\"hit\"}").await, 1);
    assert_eq!(metric(&app, "gateway_cache_requests_total{result=\"miss\"}").await, 1);
}

#[tokio::test]
async fn key_order_and_whitespace_differences_still_hit() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = app_with(&alpha, "{}").await;
    let compact = r#"{"model":"gpt-test","messages":[{"role":"user","content":"Hello!"}],"temperature":0.5}"#;
    let reordered = "{\n  \"temperature\": 0.5,\n  \"messages\": [ { \"content\": \"Hello!\", \"role\": \"user\" } ],\n  \"model\": \"gpt-test\"\n}";

    // Act
    let first = post_with_cache(&app, "/v1/chat/completions", "on", compact).await;
    let second = post_with_cache(&app, "/v1/chat/completions", "on", reordered).await;

    // Assert
    assert_eq!(cache_header(&first).as_deref(), Some("miss"));
    assert_eq!(cache_header(&second).as_deref(), Some("hit"));
}

#[tokio::test]
async fn a_different_body_misses() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = app_with(&alpha, "{}").await;
    let mut other = chat_body(TEST_MODEL);
    other["messages"][0]["content"] = json!("Hello again!");

    // Act
    let first = chat_cached(&app, &chat_body(TEST_MODEL)).await;
    let second = chat_cached(&app, &other).await;

    // Assert
    assert_eq!(cache_header(&first).as_deref(), Some("miss"));
    assert_eq!(cache_header(&second).as_deref(), Some("miss"));
}

#[tokio::test]
async fn without_the_header_and_without_a_cached_route_nothing_is_cached() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = app_with(&alpha, "{}").await;

    // Act
    let first = app.post_chat(&chat_body(TEST_MODEL)).await;
    let second = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(cache_header(&first), None);
    assert_eq!(cache_header(&second), None);
    // The series exist from the start, and a request the cache does not apply to is not counted.
    assert_eq!(metric(&app, "gateway_cache_requests_total{result=\"hit\"}").await, 0);
    assert_eq!(metric(&app, "gateway_cache_requests_total{result=\"miss\"}").await, 0);
}

/// A named route whose name is the model the provider serves, with this `cache:` value.
fn cached_route(cache: &str) -> String {
    format!("{{routes: [{{name: {TEST_MODEL}, targets: ['alpha:{TEST_MODEL}'], cache: {cache}}}]}}")
}

#[tokio::test]
async fn a_route_with_cache_on_caches_without_the_header() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = app_with(&alpha, &cached_route("true")).await;

    // Act
    let first = app.post_chat(&chat_body(TEST_MODEL)).await;
    let second = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(cache_header(&first).as_deref(), Some("miss"));
    assert_eq!(cache_header(&second).as_deref(), Some("hit"));
}

#[tokio::test]
async fn the_off_header_bypasses_a_routes_cache() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = app_with(&alpha, &cached_route("true")).await;
    let body = chat_body(TEST_MODEL).to_string();

    // Act
    let first = post_with_cache(&app, "/v1/chat/completions", "off", body.clone()).await;
    let second = post_with_cache(&app, "/v1/chat/completions", "off", body).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(cache_header(&first), None);
    assert_eq!(cache_header(&second), None);
}

#[tokio::test]
async fn an_entry_expires_after_the_routes_ttl() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = app_with(&alpha, &cached_route("{ttl_seconds: 1}")).await;

    // Act
    let first = app.post_chat(&chat_body(TEST_MODEL)).await;
    let within = app.post_chat(&chat_body(TEST_MODEL)).await;
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let after = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(cache_header(&first).as_deref(), Some("miss"));
    assert_eq!(cache_header(&within).as_deref(), Some("hit"));
    assert_eq!(cache_header(&after).as_deref(), Some("miss"));
}

#[tokio::test]
async fn streamed_requests_are_never_cached() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(
        &alpha,
        ResponseTemplate::new(200).set_body_raw(fixtures::CHAT_COMPLETION_CHUNKS, "text/event-stream"),
        2,
    )
    .await;
    let app = app_with(&alpha, "{}").await;

    // Act
    let first = chat_cached(&app, &stream_body(TEST_MODEL)).await;
    let second = chat_cached(&app, &stream_body(TEST_MODEL)).await;

    // Assert
    for response in [first, second] {
        assert_eq!(response.status(), 200);
        assert_eq!(cache_header(&response), None);
        let text = response.text().await.unwrap();
        assert!(text.contains("[DONE]"), "{text}");
    }
}

#[tokio::test]
async fn errors_are_never_cached() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, failure(500), 2).await;
    let app = app_with(&alpha, "{}").await;

    // Act
    let first = chat_cached(&app, &chat_body(TEST_MODEL)).await;
    let second = chat_cached(&app, &chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(first.status(), 502);
    assert_eq!(second.status(), 502);
}

#[tokio::test]
async fn the_responses_front_is_cached_in_its_own_shape() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = app_with(&alpha, "{}").await;
    let body = json!({"model": TEST_MODEL, "input": "Hello!"}).to_string();

    // Act
    let first = post_with_cache(&app, "/v1/responses", "on", body.clone()).await;
    let second = post_with_cache(&app, "/v1/responses", "on", body.clone()).await;
    // Chat on the same model is another key: no answer crosses fronts.
    let chat = chat_cached(&app, &chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(cache_header(&first).as_deref(), Some("miss"));
    assert_eq!(cache_header(&second).as_deref(), Some("hit"));
    let (a, b) = (json(first).await, json(second).await);
    assert_eq!(a["object"], json!("response"));
    assert_eq!(a, b);
    assert_eq!(cache_header(&chat).as_deref(), Some("miss"));
}

#[tokio::test]
async fn embeddings_are_cached_too() {
    // Arrange
    let alpha = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixtures::EMBEDDINGS, "application/json"))
        .expect(1)
        .mount(&alpha)
        .await;
    let app = app_with(&alpha, "{}").await;
    let body = json!({"model": TEST_MODEL, "input": "The food was delicious"}).to_string();

    // Act
    let first = post_with_cache(&app, "/v1/embeddings", "on", body.clone()).await;
    let second = post_with_cache(&app, "/v1/embeddings", "on", body).await;

    // Assert
    assert_eq!(cache_header(&first).as_deref(), Some("miss"));
    assert_eq!(cache_header(&second).as_deref(), Some("hit"));
    assert_eq!(json(second).await, fixtures::json(fixtures::EMBEDDINGS));
}

fn redis_settings(port: u16, prefix: &str) -> String {
    format!("{{redis_url: 'redis://127.0.0.1:{port}', redis_prefix: '{prefix}'}}")
}

#[tokio::test]
async fn a_replica_sharing_redis_hits_what_another_stored() {
    // Arrange: two gateways ("replicas") on the same Redis and prefix.
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let settings = redis_settings(6379, &fresh_prefix());
    let a = app_with(&alpha, &settings).await;
    let b = app_with(&alpha, &settings).await;

    // Act
    let stored = chat_cached(&a, &chat_body(TEST_MODEL)).await;
    let shared = chat_cached(&b, &chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(cache_header(&stored).as_deref(), Some("miss"));
    assert_eq!(cache_header(&shared).as_deref(), Some("hit"));
    assert_eq!(header(&shared, "x-ai-gateway-provider"), "alpha");
    assert_eq!(json(stored).await, json(shared).await);
}

#[tokio::test]
async fn replicas_with_different_prefixes_do_not_share_entries() {
    // Arrange: seed 001 — staging and production must never read each other's cache.
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let prod = app_with(&alpha, &redis_settings(6379, &fresh_prefix())).await;
    let staging = app_with(&alpha, &redis_settings(6379, &fresh_prefix())).await;

    // Act
    let first = chat_cached(&prod, &chat_body(TEST_MODEL)).await;
    let second = chat_cached(&staging, &chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(cache_header(&first).as_deref(), Some("miss"));
    assert_eq!(cache_header(&second).as_deref(), Some("miss"));
}

#[tokio::test]
async fn a_cut_redis_means_misses_and_requests_still_succeed_until_it_is_back() {
    // Arrange: Redis reachable only through a proxy the test owns, then cut.
    let proxy = TcpProxy::start("127.0.0.1:6379").await;
    let alpha = MockServer::start().await;
    // The warm-up, the two requests while cut, and any miss while the connection comes back.
    mount_chat(&alpha, completion(), 3..).await;
    let app = app_with(&alpha, &redis_settings(proxy.port, &fresh_prefix())).await;
    let warm = chat_cached(&app, &chat_body(TEST_MODEL)).await;
    assert_eq!(cache_header(&warm).as_deref(), Some("miss"));
    proxy.cut();

    // Act
    let first = chat_cached(&app, &chat_body(TEST_MODEL)).await;
    let second = chat_cached(&app, &chat_body(TEST_MODEL)).await;

    // Assert: answered by the provider, never an error; the failures are counted.
    for response in [first, second] {
        assert_eq!(response.status(), 200);
        assert_eq!(cache_header(&response).as_deref(), Some("miss"));
        assert_eq!(json(response).await, fixtures::json(fixtures::CHAT_COMPLETION));
    }
    assert!(metric(&app, "gateway_cache_redis_errors_total").await >= 2);

    // Once Redis is reachable again, the entry stored before the cut is served.
    proxy.restore();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let response = chat_cached(&app, &chat_body(TEST_MODEL)).await;
        assert_eq!(response.status(), 200);
        if cache_header(&response).as_deref() == Some("hit") {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "no hit after Redis came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs a history test once per backend, so both migrations stay equal.
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

on_both_databases!(history_rows_show_the_cache_column, history_rows_show_cache);
async fn history_rows_show_cache(db: Database) {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .database(db)
        .spawn()
        .await;

    // Act
    chat_cached(&app, &chat_body(TEST_MODEL)).await;
    chat_cached(&app, &chat_body(TEST_MODEL)).await;
    app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert: newest first.
    let rows = app.history_rows(3).await;
    let caches: Vec<&Value> = rows.iter().map(|r| &r["cache"]).collect();
    assert_eq!(caches, [&Value::Null, &json!("hit"), &json!("miss")]);
    let hit = &rows[1];
    assert_eq!(hit["provider"], json!("alpha"));
    assert_eq!(hit["status"], json!("success"));
    assert_eq!(hit["attempts"], json!([]));
    assert!(hit["prompt_tokens"].is_null(), "a hit used no tokens: {hit}");
    assert!(rows[2]["prompt_tokens"].is_number());
    let listed = json(app.get("/history").await).await;
    let listed: Vec<&Value> = listed
        .as_array()
        .expect("an array")
        .iter()
        .map(|r| &r["cache"])
        .collect();
    assert_eq!(listed, [&Value::Null, &json!("hit"), &json!("miss")]);
}

/// A chat with the cache header, as the caller holding `key`.
async fn chat_cached_as(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .header("x-ai-gateway-cache", "on")
        .json(body)
        .send()
        .await
        .expect("POST reaches the gateway")
}

#[tokio::test]
async fn one_tenant_never_learns_from_a_hit_what_another_asked() {
    // Arrange: two tenants; the first asks something and its answer is cached.
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .env("API_KEYS", "sk-tenant-a,sk-tenant-b")
        .spawn()
        .await;
    let body = chat_body(TEST_MODEL);
    assert_eq!(
        cache_header(&chat_cached_as(&app, "sk-tenant-a", &body).await).as_deref(),
        Some("miss")
    );

    // Act: the second tenant probes with the same body.
    let probe = chat_cached_as(&app, "sk-tenant-b", &body).await;
    let again = chat_cached_as(&app, "sk-tenant-a", &body).await;

    // Assert: a miss for the prober (an upstream call of its own); the first tenant still hits.
    assert_eq!(probe.status(), 200);
    assert_eq!(cache_header(&probe).as_deref(), Some("miss"));
    assert_eq!(cache_header(&again).as_deref(), Some("hit"));
}

#[tokio::test]
async fn a_shared_cache_answers_every_caller_from_one_entry() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .env("API_KEYS", "sk-tenant-a,sk-tenant-b")
        .settings("cache: {scope: shared}")
        .spawn()
        .await;
    let body = chat_body(TEST_MODEL);

    // Act
    let first = chat_cached_as(&app, "sk-tenant-a", &body).await;
    let second = chat_cached_as(&app, "sk-tenant-b", &body).await;

    // Assert
    assert_eq!(cache_header(&first).as_deref(), Some("miss"));
    assert_eq!(cache_header(&second).as_deref(), Some("hit"));
}

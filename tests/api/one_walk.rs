//! One walk for every upstream call: path routes and the worker proxy fail over through the
//! orchestrator's walk, so they answer an all-breakers-open refusal exactly as the model path does
//! (503 `providers_unavailable` with `Retry-After`), and count breaker failures per caller.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{MockNode, Runtime, TestApp, assert_openai_error, json};
use crate::nodes::{pool_builder, wait_for_node};

/// A `Retry-After` in whole seconds within the breakers' 60 s reset timeout, and the OpenAI-shaped
/// `providers_unavailable` body.
async fn assert_all_breakers_open(response: reqwest::Response) {
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["x-ai-gateway-attempts"], "0");
    let retry_after: u64 = response
        .headers()
        .get("retry-after")
        .expect("Retry-After on a 503 for open breakers")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");
    let body = json(response).await;
    assert_eq!(assert_openai_error(&body)["code"], "providers_unavailable");
}

async fn post(app: &TestApp, p: &str, key: Option<&str>, body: &Value) -> reqwest::Response {
    let request = app.client.post(app.url(p)).json(body);
    let request = match key {
        Some(k) => request.bearer_auth(k),
        None => request,
    };
    request.send().await.expect("POST")
}

#[tokio::test]
async fn a_path_route_whose_every_breaker_is_open_answers_503_with_retry_after() {
    // Arrange: two targets failing with 503, each breaker opening on its first failure.
    let (first, second) = (MockServer::start().await, MockServer::start().await);
    for server in [&first, &second] {
        Mock::given(method("POST"))
            .and(path("/predict"))
            .respond_with(ResponseTemplate::new(503))
            .expect(1)
            .mount(server)
            .await;
    }
    let settings = json!({
        "routing": {"max_retries": 0, "circuit_breaker": {"failure_threshold": 1, "reset_timeout_seconds": 60}},
        "path_routes": [{"path": "/predict", "targets": [first.uri(), second.uri()]}],
    });
    let app = TestApp::builder()
        .env("API_KEYS", "sk-a")
        .settings(&settings.to_string())
        .spawn()
        .await;
    let failed = post(&app, "/predict", Some("sk-a"), &json!({"input": 1})).await;
    assert_eq!(failed.status(), 502, "both targets failed and opened their breakers");

    // Act
    let refused = post(&app, "/predict", Some("sk-a"), &json!({"input": 1})).await;

    // Assert: neither target is called again (wiremock checks `expect(1)` on drop).
    assert_all_breakers_open(refused).await;
}

#[tokio::test]
async fn the_worker_proxy_answers_503_with_retry_after_when_every_nodes_breaker_is_open() {
    // Arrange: one worker node whose `/generate` fails with 503.
    let node = MockNode::start(Runtime::Worker, &["m"]).await;
    Mock::given(method("POST"))
        .and(path("/generate"))
        .respond_with(ResponseTemplate::new(503))
        .expect(1)
        .mount(&node.server)
        .await;
    let app = pool_builder(&[&node])
        .settings("routing: {max_retries: 0, circuit_breaker: {failure_threshold: 1, reset_timeout_seconds: 60}}")
        .spawn()
        .await;
    wait_for_node(&app, &node.url(), |v| v["online"] == true).await;
    let failed = post(&app, "/generate", None, &json!({"model": "m"})).await;
    assert_eq!(failed.status(), 502, "the node failed and its breaker opened");

    // Act
    let refused = post(&app, "/generate", None, &json!({"model": "m"})).await;

    // Assert
    assert_all_breakers_open(refused).await;
}

#[tokio::test]
async fn a_path_routes_breaker_with_min_callers_counts_distinct_callers() {
    // Arrange: a target failing with 503; its breaker needs two distinct callers to open.
    let target = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/predict"))
        .respond_with(ResponseTemplate::new(503))
        .mount(&target)
        .await;
    let settings = json!({
        "routing": {"max_retries": 0, "circuit_breaker": {"failure_threshold": 1, "min_callers": 2, "reset_timeout_seconds": 60}},
        "path_routes": [{"path": "/predict", "targets": [target.uri()]}],
    });
    let app = TestApp::builder()
        .env("API_KEYS", "sk-a,sk-b")
        .settings(&settings.to_string())
        .spawn()
        .await;

    // Act: one caller fails twice, then a second caller fails once.
    let mut statuses = Vec::new();
    for key in ["sk-a", "sk-a", "sk-b"] {
        statuses.push(post(&app, "/predict", Some(key), &json!({})).await.status().as_u16());
    }
    let after = post(&app, "/predict", Some("sk-a"), &json!({})).await;

    // Assert: one caller alone never opens it; the second distinct caller does.
    assert_eq!(statuses, [502, 502, 502]);
    assert_all_breakers_open(after).await;
}

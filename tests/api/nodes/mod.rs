//! The GPU node pool (issue 7): health per runtime, heartbeats, the choice of node, failover,
//! the registry and its tokens, worker jobs across restarts, provisioning.
//!
//! Mock nodes (`helpers::MockNode`) speak each runtime's real health formats; health checks run
//! every 0.2 s here, so waits are short and bounded by a deadline.

mod choice;
mod health;
mod jobs;
mod registry;

use std::time::Duration;

use serde_json::Value;

use crate::helpers::{MockNode, TestApp, TestAppBuilder, chat_body, header, json};

/// The admin token the pool tests run with.
pub const ADMIN: &str = "adm-secret";
/// The worker token.
pub const WORKER: &str = "wrk-secret";

/// Health checks every 0.2 s (timeout 1 s); heartbeats every 0.2 s, three may be missed.
pub const FAST: &str = "nodes: {health_interval_seconds: 0.2, health_timeout_seconds: 1, heartbeat_interval_seconds: 0.2, missed_heartbeats: 3}";

/// A gateway whose default pool (`AI_NODES`) is `nodes`, with the admin and worker tokens set.
pub fn pool_builder(nodes: &[&MockNode]) -> TestAppBuilder {
    let urls: Vec<String> = nodes.iter().map(|n| n.url()).collect();
    TestApp::builder()
        .env("AI_NODES", &urls.join(","))
        .env("INTERNAL_API_TOKEN", ADMIN)
        // An admin token alone makes client auth required; these tests call clients anonymously.
        .env("AUTH_REQUIRED", "false")
        .env("AI_CLUSTER_SECRET", WORKER)
        .settings(FAST)
}

/// `pool_builder(nodes).spawn()`, then waits until every node is online.
pub async fn pool_app(nodes: &[&MockNode]) -> TestApp {
    let app = pool_builder(nodes).spawn().await;
    for n in nodes {
        wait_for_node(&app, &n.url(), |v| v["online"] == true).await;
    }
    app
}

/// `GET /nodes` with the admin token: every node's view.
pub async fn node_views(app: &TestApp) -> Vec<Value> {
    let response = app
        .client
        .get(app.url("/nodes"))
        .header("X-Admin-Token", ADMIN)
        .send()
        .await
        .expect("GET /nodes");
    assert_eq!(response.status(), 200, "GET /nodes");
    json(response).await["nodes"].as_array().expect("nodes array").clone()
}

/// Polls `GET /nodes` until node `url` satisfies `ready` (5 s at most); returns its view.
pub async fn wait_for_node(app: &TestApp, url: &str, ready: impl Fn(&Value) -> bool) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let views = node_views(app).await;
        let view = views.iter().find(|v| v["url"] == url).cloned();
        if let Some(v) = &view
            && ready(v)
        {
            return v.clone();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "node {url} never reached the expected state; last seen: {view:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One chat request for `model`; returns the status and the node (or provider) that answered.
pub async fn chat_via(app: &TestApp, model: &str) -> (u16, String) {
    let response = app.post_chat(&chat_body(model)).await;
    let status = response.status().as_u16();
    let provider = response
        .headers()
        .get("x-ai-gateway-provider")
        .map(|v| v.to_str().expect("ASCII").to_owned())
        .unwrap_or_default();
    (status, provider)
}

// The Done-when, in-process: two nodes with different models.

#[tokio::test]
async fn requests_for_each_model_land_on_the_node_that_has_it_loaded() {
    // Arrange
    let llama = MockNode::vllm("llama-3.1-8b").await;
    let qwen = MockNode::vllm("qwen2.5-7b").await;
    let app = pool_app(&[&llama, &qwen]).await;

    // Act
    let (s1, first) = chat_via(&app, "llama-3.1-8b").await;
    let (s2, second) = chat_via(&app, "qwen2.5-7b").await;
    let (s3, third) = chat_via(&app, "llama-3.1-8b").await;

    // Assert
    assert_eq!((s1, s2, s3), (200, 200, 200));
    assert_eq!(first, llama.id());
    assert_eq!(second, qwen.id());
    assert_eq!(third, llama.id());
    assert_eq!(llama.chat_calls().await, 2);
    assert_eq!(qwen.chat_calls().await, 1);
}

#[tokio::test]
async fn a_stopped_node_goes_offline_and_its_traffic_moves_to_the_other() {
    // Arrange
    let llama = MockNode::vllm("llama-3.1-8b").await;
    let qwen = MockNode::vllm("qwen2.5-7b").await;
    let app = pool_app(&[&llama, &qwen]).await;

    // Act
    llama.stop();
    let view = wait_for_node(&app, &llama.url(), |v| v["online"] == false).await;
    let response = app.post_chat(&chat_body("llama-3.1-8b")).await;

    // Assert
    assert!(
        view["last_error"].as_str().is_some_and(|e| e.contains("unreachable")),
        "{view}"
    );
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), qwen.id());
    assert_eq!(
        header(&response, "x-ai-gateway-attempts"),
        "1",
        "an offline node is not tried"
    );
    let health = app.health().await;
    let listed = health["nodes"].as_array().expect("nodes in /health");
    let entry = listed
        .iter()
        .find(|n| n["url"] == llama.url())
        .expect("llama in /health");
    assert_eq!(entry["online"], false);
    assert_eq!(entry["model"], "llama-3.1-8b");
}

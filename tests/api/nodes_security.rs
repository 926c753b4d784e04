//! The node registry under attack: the shared worker token must not let a heartbeat add a node
//! (or hijack a hosted model), run-time nodes that go silent expire, provisioning refuses option
//! injection and hosts outside `nodes.allowed_networks` before running anything.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::MockServer;

use crate::helpers::{
    Database, MockNode, ProviderSpec, Runtime, TestApp, TestAppBuilder, assert_openai_error, chat_body,
    closed_port_url, completion, header, json, mount_chat, upstream_url,
};
use crate::nodes::{ADMIN, FAST, WORKER, node_views, wait_for_node};

/// A gateway with an empty wildcard pool `nodes` tried first (as `AI_NODES`' default pool is) and
/// a hosted OpenAI provider that lists `gpt-4o`.
fn hosted_and_pool(openai: &MockServer) -> TestAppBuilder {
    TestApp::builder()
        .env("INTERNAL_API_TOKEN", ADMIN)
        .env("AI_CLUSTER_SECRET", WORKER)
        // Operator tokens alone make client auth required; these chats are anonymous on purpose.
        .env("AUTH_REQUIRED", "false")
        .settings("providers: [{id: nodes, kind: node_pool, priority: 0}]")
        .settings(FAST)
        .provider(
            ProviderSpec::new("openai", upstream_url(openai))
                .models(&["gpt-4o"])
                .priority(5),
        )
}

async fn pulse(app: &TestApp, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/pulse"))
        .header("X-Worker-Token", WORKER)
        .json(body)
        .send()
        .await
        .expect("POST /pulse")
}

async fn admin_post(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("X-Admin-Token", ADMIN)
        .json(body)
        .send()
        .await
        .expect("admin POST")
}

/// The attack: anyone holding the (shared) worker token heartbeats from their own URL, claiming
/// `gpt-4o`. Before the fix the gateway registered that node for every replica and sent it the
/// model's traffic and prompts, ahead of the hosted provider that lists the model.
#[tokio::test]
async fn a_heartbeat_from_an_unknown_url_registers_nothing_and_takes_no_traffic() {
    // Arrange
    let openai = MockServer::start().await;
    mount_chat(&openai, completion(), 1).await;
    let rogue = MockNode::start(Runtime::Worker, &["gpt-4o"]).await;
    let db = format!("database_url: {}", crate::helpers::db::fresh_postgres_database().await);
    let app = hosted_and_pool(&openai)
        .database(Database::Postgres)
        .settings(&db)
        .spawn()
        .await;

    // Act
    let refused = pulse(&app, &json!({"url": rogue.url(), "busy": false, "model": "gpt-4o"})).await;
    let status = refused.status();
    let error = json(refused).await;
    let chat = app.post_chat(&chat_body("gpt-4o")).await;
    let replica = hosted_and_pool(&openai).settings(&db).spawn().await;
    // One health round on the second replica re-reads the shared table.
    tokio::time::sleep(Duration::from_millis(600)).await;

    // Assert
    assert_eq!(status, 404, "{error}");
    let inner = assert_openai_error(&error);
    assert_eq!(inner["param"], Value::Null);
    assert!(
        inner["message"].as_str().is_some_and(|m| m.contains("not registered")),
        "{error}"
    );
    assert_eq!(chat.status(), 200);
    assert_eq!(header(&chat, "x-ai-gateway-provider"), "openai");
    assert_eq!(rogue.chat_calls().await, 0, "the rogue node received no prompt");
    assert!(node_views(&app).await.is_empty(), "/nodes does not list it");
    assert!(node_views(&replica).await.is_empty(), "nor does another replica");
    assert!(
        app.store.list_nodes().await.expect("node table").is_empty(),
        "nothing stored"
    );
}

/// A node an operator registered may heartbeat, and it serves what it reports for models no
/// provider declares; a model the hosted provider lists stays the hosted provider's.
#[tokio::test]
async fn a_registered_node_reporting_a_hosted_model_never_takes_it_from_the_provider() {
    // Arrange
    let openai = MockServer::start().await;
    mount_chat(&openai, completion(), 1).await;
    let node = MockNode::start(Runtime::Worker, &["gpt-4o", "llama-local"]).await;
    let app = hosted_and_pool(&openai).spawn().await;
    let registered = admin_post(&app, "/register", &json!({"url": node.url()})).await;
    assert_eq!(registered.status(), 200);

    // Act
    let beat = pulse(&app, &json!({"url": node.url(), "models": ["gpt-4o", "llama-local"]})).await;
    let hosted = app.post_chat(&chat_body("gpt-4o")).await;
    let local = app.post_chat(&chat_body("llama-local")).await;

    // Assert
    assert_eq!(beat.status(), 200);
    assert_eq!(json(beat).await["source"], "api");
    assert_eq!(hosted.status(), 200);
    assert_eq!(header(&hosted, "x-ai-gateway-provider"), "openai");
    assert_eq!(local.status(), 200);
    assert_eq!(header(&local, "x-ai-gateway-provider"), node.id());
    assert_eq!(node.chat_calls().await, 1, "only the model no provider declares");
}

/// A heartbeat reporting an absurd model list is refused before anything is kept.
#[tokio::test]
async fn a_heartbeat_with_a_huge_model_list_is_refused() {
    // Arrange
    let openai = MockServer::start().await;
    let node = MockNode::start(Runtime::Worker, &["m"]).await;
    let app = hosted_and_pool(&openai).spawn().await;
    assert_eq!(
        admin_post(&app, "/register", &json!({"url": node.url()}))
            .await
            .status(),
        200
    );
    let models: Vec<String> = (0..5000).map(|i| format!("model-{i}")).collect();

    // Act
    let response = pulse(&app, &json!({"url": node.url(), "models": models})).await;

    // Assert
    assert_eq!(response.status(), 400);
    let error = json(response).await;
    assert_eq!(assert_openai_error(&error)["param"], "models");
    let view = wait_for_node(&app, &node.url(), |v| v["online"] == true).await;
    assert_eq!(view["models"], json!(["m"]), "the node's own report stands");
}

/// A node registered with `/register` whose health URL never answers and that stops
/// heartbeating goes offline, then is removed (table and memory) after
/// `nodes.expire_after_seconds`; a configured node never is.
#[tokio::test]
async fn a_run_time_node_that_goes_silent_expires() {
    // Arrange
    let silent = closed_port_url().trim_end_matches("/v1").to_owned();
    let configured = closed_port_url().trim_end_matches("/v1").to_owned();
    let app = TestApp::builder()
        .env("INTERNAL_API_TOKEN", ADMIN)
        .env("AI_CLUSTER_SECRET", WORKER)
        .env("AI_NODES", &configured)
        .settings(FAST)
        .settings("nodes: {expire_after_seconds: 1}")
        .spawn()
        .await;
    assert_eq!(
        admin_post(&app, "/register", &json!({"url": silent})).await.status(),
        200
    );
    assert_eq!(pulse(&app, &json!({"url": silent})).await.status(), 200);
    wait_for_node(&app, &silent, |v| v["online"] == true).await;

    // Act: no more heartbeats.
    wait_for_node(&app, &silent, |v| v["online"] == false).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while node_views(&app).await.iter().any(|v| v["url"] == silent.as_str()) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the silent node was never removed"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // Assert
    let stored: Vec<String> = app
        .store
        .list_nodes()
        .await
        .expect("node table")
        .into_iter()
        .map(|n| n.url)
        .collect();
    assert_eq!(stored, std::slice::from_ref(&configured), "removed from the table too");
    assert!(
        node_views(&app).await.iter().any(|v| v["url"] == configured.as_str()),
        "a configured node stays"
    );
}

/// A provisioning command that records that it ran.
fn marker_command(dir: &std::path::Path) -> (String, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let marker = dir.join("ran");
    let script = dir.join("deploy.sh");
    std::fs::write(&script, format!("#!/bin/sh\ntouch '{}'\nexit 0\n", marker.display())).expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (script.display().to_string(), marker)
}

const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

#[tokio::test]
async fn provisioning_refuses_an_option_as_user_and_runs_nothing() {
    // Arrange
    let dir = tempfile::tempdir().expect("temp dir");
    let (command, marker) = marker_command(dir.path());
    let app = TestApp::builder()
        .env("INTERNAL_API_TOKEN", ADMIN)
        .settings("providers: [{id: nodes, kind: node_pool, priority: 0}]")
        .settings(&format!(
            "nodes: {{provision_command: '{command}', provision_wait_seconds: 0}}"
        ))
        .spawn()
        .await;

    // Act / Assert
    for user in ["-oProxyCommand=touch /tmp/pwned", "root;id", "$(id)", "a b"] {
        let response = admin_post(
            &app,
            "/nodes/provision",
            &json!({"host": "gpu-9.internal", "ssh_key": KEY, "user": user}),
        )
        .await;
        assert_eq!(response.status(), 400, "{user}");
        let error = json(response).await;
        assert_eq!(assert_openai_error(&error)["param"], "user", "{error}");
    }
    assert!(!marker.exists(), "the command never ran");
}

#[tokio::test]
async fn provisioning_checks_allowed_networks_before_running_or_probing() {
    // Arrange
    let dir = tempfile::tempdir().expect("temp dir");
    let (command, marker) = marker_command(dir.path());
    let node = MockNode::start(Runtime::Worker, &["m"]).await;
    let app = TestApp::builder()
        .env("INTERNAL_API_TOKEN", ADMIN)
        .settings("providers: [{id: nodes, kind: node_pool, priority: 0}]")
        .settings(&format!(
            "nodes: {{provision_command: '{command}', provision_wait_seconds: 1, allowed_networks: [10.0.0.0/8]}}"
        ))
        .spawn()
        .await;

    // Act
    let ssh_outside = admin_post(
        &app,
        "/nodes/provision",
        &json!({"host": "127.0.0.1", "ssh_key": KEY, "url": "http://10.1.2.3:8000"}),
    )
    .await;
    let url_outside = admin_post(
        &app,
        "/nodes/provision",
        &json!({"host": "10.1.2.3", "ssh_key": KEY, "url": node.url()}),
    )
    .await;

    // Assert
    assert_eq!(ssh_outside.status(), 400);
    let error = json(ssh_outside).await;
    let inner = assert_openai_error(&error);
    assert_eq!(
        (&inner["param"], &inner["code"]),
        (&json!("host"), &json!("network_not_allowed"))
    );
    assert_eq!(url_outside.status(), 400);
    let error = json(url_outside).await;
    assert_eq!(assert_openai_error(&error)["code"], "network_not_allowed");
    assert!(!marker.exists(), "the command never ran");
    assert_eq!(node.requests_to("/health").await, 0, "the node was never probed");
}

/// `/register` with URLs that lead somewhere no node lives (cloud metadata, other schemes,
/// userinfo, numeric and IPv6 spellings of link-local, bad ports, control characters): each is
/// refused with 400 naming `url`, and nothing is registered.
#[tokio::test]
async fn registration_refuses_metadata_and_malformed_node_urls() {
    // Arrange
    let openai = MockServer::start().await;
    let app = hosted_and_pool(&openai).spawn().await;

    // Act / Assert
    for url in [
        "http://169.254.169.254",
        "http://169.254.169.254/latest/meta-data",
        "http://[fe80::1]:8000",
        "http://[fe80::1%25eth0]:8000",
        "http://0xa9fea9fe",
        "http://[::ffff:169.254.169.254]",
        "http://[fd00:ec2::254]",
        "http://0.0.0.0:8000",
        "http://2852039166",
        "file:///etc/passwd",
        "gopher://127.0.0.1:6379",
        "http://admin@127.0.0.1:8000",
        "http://127.0.0.1:99999",
        "http://127.0.0.1:0",
        "http://a\nb:8000",
        &format!("http://{}.example:8000", "a".repeat(3000)),
    ] {
        let response = admin_post(&app, "/register", &json!({ "url": url })).await;
        assert_eq!(response.status(), 400, "{url}");
        let error = json(response).await;
        assert_eq!(assert_openai_error(&error)["param"], "url", "{url}: {error}");
    }
    assert!(node_views(&app).await.is_empty());
}

/// Admin bodies with unknown fields are refused rather than half-applied.
#[tokio::test]
async fn node_admin_bodies_with_unknown_fields_are_refused() {
    // Arrange
    let openai = MockServer::start().await;
    let app = hosted_and_pool(&openai).spawn().await;

    // Act
    let register = admin_post(&app, "/register", &json!({"url": "http://127.0.0.1:9", "admin": true})).await;
    let provision = admin_post(
        &app,
        "/nodes/provision",
        &json!({"host": "h", "ssh_key": "k", "command": "rm -rf /"}),
    )
    .await;

    // Assert
    assert_eq!(register.status(), 400);
    assert_openai_error(&json(register).await);
    assert_eq!(provision.status(), 400);
    assert_openai_error(&json(provision).await);
    assert!(node_views(&app).await.is_empty());
}

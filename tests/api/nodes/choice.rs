//! Every step of the choice order, ties, and failover node → node → next provider.

use std::time::Duration;

use wiremock::MockServer;

use super::{chat_via, pool_app, pool_builder, wait_for_node};
use crate::helpers::{MockNode, ProviderSpec, Runtime, chat_body, completion, header, mount_chat, upstream_url};

#[tokio::test]
async fn a_node_with_the_model_loaded_and_free_beats_a_busy_one_and_an_idle_one() {
    // Arrange
    let busy = MockNode::vllm("m").await;
    let free = MockNode::vllm("m").await;
    let idle = MockNode::vllm("other").await;
    let app = pool_app(&[&busy, &free, &idle]).await;
    busy.set_load(true, 1, 0);
    wait_for_node(&app, &busy.url(), |v| v["busy"] == true).await;

    // Act
    let (status, node) = chat_via(&app, "m").await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!(node, free.id());
}

#[tokio::test]
async fn among_busy_nodes_with_the_model_the_least_queued_wins_over_an_idle_node() {
    // Arrange
    let deep = MockNode::vllm("m").await;
    let shallow = MockNode::vllm("m").await;
    let idle = MockNode::vllm("other").await;
    let app = pool_app(&[&deep, &shallow, &idle]).await;
    deep.set_load(true, 4, 6);
    shallow.set_load(true, 4, 1);
    wait_for_node(&app, &deep.url(), |v| v["queue_depth"] == 6).await;
    wait_for_node(&app, &shallow.url(), |v| v["queue_depth"] == 1).await;

    // Act
    let (status, node) = chat_via(&app, "m").await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!(node, shallow.id());
}

#[tokio::test]
async fn without_the_model_anywhere_an_idle_node_beats_a_busy_one() {
    // Arrange
    let busy = MockNode::start(Runtime::Worker, &["x"]).await;
    let idle = MockNode::start(Runtime::Worker, &["y"]).await;
    busy.set_load(true, 0, 0);
    let app = pool_app(&[&busy, &idle]).await;
    wait_for_node(&app, &busy.url(), |v| v["busy"] == true).await;

    // Act
    let (status, node) = chat_via(&app, "m").await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!(node, idle.id());
}

#[tokio::test]
async fn when_every_node_is_busy_without_the_model_any_online_node_serves() {
    // Arrange
    let busy = MockNode::start(Runtime::Worker, &["x"]).await;
    let offline = MockNode::start(Runtime::Worker, &["m"]).await;
    busy.set_load(true, 0, 0);
    let app = pool_app(&[&busy, &offline]).await;
    offline.stop();
    wait_for_node(&app, &busy.url(), |v| v["busy"] == true).await;
    wait_for_node(&app, &offline.url(), |v| v["online"] == false).await;

    // Act
    let (status, node) = chat_via(&app, "m").await;

    // Assert
    assert_eq!(status, 200);
    assert_eq!(node, busy.id());
    assert_eq!(offline.chat_calls().await, 0);
}

#[tokio::test]
async fn ties_go_to_the_node_with_fewer_requests_in_flight() {
    // Arrange: two identical nodes; the first request is held on whichever node it reaches.
    let a = MockNode::vllm("m").await;
    let b = MockNode::vllm("m").await;
    a.delay_chat(Duration::from_millis(800));
    b.delay_chat(Duration::from_millis(800));
    let app = pool_app(&[&a, &b]).await;

    // Act
    let first = tokio::spawn(app.post_chat(&chat_body("m")));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while a.chat_calls().await + b.chat_calls().await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first request never reached a node"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = app.post_chat(&chat_body("m")).await;
    let first = first.await.expect("first request");

    // Assert
    assert_eq!((first.status().as_u16(), second.status().as_u16()), (200, 200));
    assert_ne!(
        header(&first, "x-ai-gateway-provider"),
        header(&second, "x-ai-gateway-provider"),
        "the second request avoids the node busy with the first"
    );
    assert_eq!((a.chat_calls().await, b.chat_calls().await), (1, 1));
}

#[tokio::test]
async fn a_node_failing_mid_request_falls_over_to_the_next_node() {
    // Arrange
    let failing = MockNode::vllm("m").await;
    let backup = MockNode::vllm("other").await;
    let app = pool_app(&[&failing, &backup]).await;
    failing.fail_chat(503);

    // Act
    let response = app.post_chat(&chat_body("m")).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), backup.id());
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    let rows = app.history_rows(1).await;
    assert_eq!(rows[0]["provider"], "nodes", "history names the pool");
    let attempts = rows[0]["attempts"].as_array().expect("attempts");
    assert_eq!(attempts[0]["provider"], failing.id());
    assert_eq!(attempts[0]["outcome"], "server_error");
    assert_eq!(attempts[1]["provider"], backup.id());
}

#[tokio::test]
async fn a_node_dropping_the_connection_falls_over_and_its_breaker_opens() {
    // Arrange: the node looks healthy to the last health check but is cut before the request.
    let flaky = MockNode::vllm("m").await;
    let backup = MockNode::vllm("m2").await;
    let app = pool_builder(&[&flaky, &backup])
        .settings("nodes: {health_interval_seconds: 30}")
        .settings("routing: {circuit_breaker: {failure_threshold: 1, reset_timeout_seconds: 60}}")
        .spawn()
        .await;
    wait_for_node(&app, &flaky.url(), |v| v["online"] == true).await;
    wait_for_node(&app, &backup.url(), |v| v["online"] == true).await;
    flaky.stop();

    // Act
    let first = app.post_chat(&chat_body("m")).await;
    let second = app.post_chat(&chat_body("m")).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(header(&first, "x-ai-gateway-provider"), backup.id());
    assert_eq!(header(&first, "x-ai-gateway-attempts"), "2");
    assert_eq!(
        header(&second, "x-ai-gateway-attempts"),
        "1",
        "the open breaker skips the node"
    );
    let view = wait_for_node(&app, &flaky.url(), |v| v["breaker"] == "open").await;
    assert_eq!(view["id"], flaky.id());
}

#[tokio::test]
async fn when_every_node_fails_the_next_provider_by_priority_answers() {
    // Arrange
    let node = MockNode::vllm("m").await;
    let cloud = MockServer::start().await;
    mount_chat(&cloud, completion(), 1).await;
    let app = pool_builder(&[&node])
        .provider(
            ProviderSpec::new("cloud", upstream_url(&cloud))
                .models(&["*"])
                .priority(10),
        )
        .spawn()
        .await;
    wait_for_node(&app, &node.url(), |v| v["online"] == true).await;
    node.fail_chat(500);

    // Act
    let response = app.post_chat(&chat_body("m")).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "cloud");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    assert_eq!(node.chat_calls().await, 1);
}

#[tokio::test]
async fn a_pool_offers_only_nodes_with_the_model_when_another_provider_lists_it() {
    // Arrange
    let node = MockNode::vllm("llama").await;
    let cloud = MockServer::start().await;
    mount_chat(&cloud, completion(), 1).await;
    let app = pool_builder(&[&node])
        .provider(
            ProviderSpec::new("cloud", upstream_url(&cloud))
                .models(&["gpt-4o"])
                .priority(10),
        )
        .spawn()
        .await;
    wait_for_node(&app, &node.url(), |v| v["online"] == true).await;

    // Act
    let (status, provider) = chat_via(&app, "gpt-4o").await;

    // Assert
    assert_eq!((status, provider.as_str()), (200, "cloud"));
    assert_eq!(node.chat_calls().await, 0);
}

#[tokio::test]
async fn a_stream_through_a_node_is_relayed_and_counted_in_flight_until_it_ends() {
    // Arrange
    let node = MockNode::vllm("m").await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v1/chat/completions"))
        .and(wiremock::matchers::body_partial_json(
            serde_json::json!({"stream": true}),
        ))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_raw(crate::helpers::fixtures::CHAT_COMPLETION_CHUNKS, "text/event-stream"),
        )
        .with_priority(1)
        .mount(&node.server)
        .await;
    let app = pool_app(&[&node]).await;

    // Act
    let response = app.post_chat(&crate::helpers::stream_body("m")).await;
    let status = response.status();
    let provider = header(&response, "x-ai-gateway-provider");
    let text = response.text().await.expect("stream body");

    // Assert
    assert_eq!(status, 200);
    assert_eq!(provider, node.id());
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    let view = wait_for_node(&app, &node.url(), |v| v["in_flight"] == 0).await;
    assert_eq!(view["online"], true);
}

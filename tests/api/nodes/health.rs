//! Health checks in each runtime's terms, online/offline transitions, heartbeats, gauges.

use serde_json::json;

use super::{ADMIN, FAST, WORKER, node_views, pool_app, pool_builder, wait_for_node};
use crate::helpers::{MockNode, Runtime, TestApp, closed_port_url};

#[tokio::test]
async fn every_runtime_is_detected_and_reports_its_loaded_models() {
    // Arrange
    let nodes = [
        (
            MockNode::start(Runtime::Vllm, &["meta-llama/Llama-3.1-8B-Instruct"]).await,
            "meta-llama/Llama-3.1-8B-Instruct",
        ),
        (
            MockNode::start(Runtime::Ollama, &["llama3.2:latest"]).await,
            "llama3.2:latest",
        ),
        (
            MockNode::start(Runtime::LlamaCpp, &["qwen2.5-0.5b-q4_k_m.gguf"]).await,
            "qwen2.5-0.5b-q4_k_m.gguf",
        ),
        (
            MockNode::start(Runtime::Tgi, &["HuggingFaceH4/zephyr-7b-beta"]).await,
            "HuggingFaceH4/zephyr-7b-beta",
        ),
        (MockNode::start(Runtime::OpenAi, &["mistral-7b"]).await, "mistral-7b"),
        (
            MockNode::start(Runtime::Worker, &["hunyuan-video"]).await,
            "hunyuan-video",
        ),
    ];
    let refs: Vec<&MockNode> = nodes.iter().map(|(n, _)| n).collect();

    // Act
    let app = pool_app(&refs).await;

    // Assert
    let views = node_views(&app).await;
    for (node, model) in &nodes {
        let view = views.iter().find(|v| v["url"] == node.url()).expect("node listed");
        let runtime = refs
            .iter()
            .zip([
                Runtime::Vllm,
                Runtime::Ollama,
                Runtime::LlamaCpp,
                Runtime::Tgi,
                Runtime::OpenAi,
                Runtime::Worker,
            ])
            .find(|(n, _)| n.url() == node.url())
            .map(|(_, r)| r.name())
            .expect("runtime");
        assert_eq!(view["runtime"], runtime, "{view}");
        assert_eq!(view["online"], true, "{view}");
        assert_eq!(view["model"], *model, "{view}");
        assert_eq!(view["source"], "config");
    }
}

#[tokio::test]
async fn busy_and_queue_depth_come_from_each_runtimes_own_signals() {
    // Arrange
    let vllm = MockNode::start(Runtime::Vllm, &["m"]).await;
    let llamacpp = MockNode::start(Runtime::LlamaCpp, &["m"]).await;
    let tgi = MockNode::start(Runtime::Tgi, &["m"]).await;
    let worker = MockNode::start(Runtime::Worker, &["m"]).await;
    let app = pool_app(&[&vllm, &llamacpp, &tgi, &worker]).await;

    // Act
    vllm.set_load(false, 2, 3);
    llamacpp.set_load(true, 0, 0);
    tgi.set_load(false, 1, 4);
    worker.set_load(true, 0, 2);

    // Assert
    let v = wait_for_node(&app, &vllm.url(), |v| v["busy"] == true).await;
    assert_eq!((v["running"].clone(), v["queue_depth"].clone()), (json!(2), json!(3)));
    let l = wait_for_node(&app, &llamacpp.url(), |v| v["busy"] == true).await;
    assert_eq!(l["running"], 1, "the one slot is processing");
    let t = wait_for_node(&app, &tgi.url(), |v| v["busy"] == true).await;
    assert_eq!(t["queue_depth"], 4);
    let w = wait_for_node(&app, &worker.url(), |v| v["busy"] == true).await;
    assert_eq!(w["queue_depth"], 2);
}

#[tokio::test]
async fn a_node_goes_offline_when_it_stops_and_online_again_when_it_returns() {
    // Arrange
    let node = MockNode::vllm("m").await;
    let app = pool_app(&[&node]).await;

    // Act / Assert
    node.stop();
    wait_for_node(&app, &node.url(), |v| v["online"] == false).await;
    let (status, _) = super::chat_via(&app, "m").await;
    assert_eq!(status, 503, "no online node serves the model");
    node.restart();
    node.set_models(&["n"]);
    wait_for_node(&app, &node.url(), |v| v["online"] == true && v["model"] == "n").await;
    assert_eq!(
        super::chat_via(&app, "n").await.0,
        200,
        "the newly loaded model is routed"
    );
}

#[tokio::test]
async fn a_llamacpp_node_loading_its_model_is_offline_until_ready() {
    // Arrange
    let node = MockNode::start(Runtime::LlamaCpp, &["m"]).await;
    node.set_loading(true);
    let app = pool_builder(&[&node]).spawn().await;

    // Act / Assert
    let loading = wait_for_node(&app, &node.url(), |v| v["last_error"].is_string()).await;
    assert_eq!(loading["online"], false);
    assert!(
        loading["last_error"].as_str().is_some_and(|e| e.contains("503")),
        "{loading}"
    );
    node.set_loading(false);
    wait_for_node(&app, &node.url(), |v| v["online"] == true).await;
}

#[tokio::test]
async fn heartbeats_keep_an_unreachable_node_online_until_three_are_missed() {
    // Arrange: the gateway cannot reach this worker, but the worker can reach the gateway.
    let url = closed_port_url().trim_end_matches("/v1").to_owned();
    let app = TestApp::builder()
        .env("AI_NODES", &url)
        .env("AI_CLUSTER_SECRET", WORKER)
        .env("INTERNAL_API_TOKEN", ADMIN)
        // An admin token alone makes client auth required; these tests call clients anonymously.
        .env("AUTH_REQUIRED", "false")
        .settings(FAST)
        .spawn()
        .await;
    wait_for_node(&app, &url, |v| v["last_error"].is_string()).await;

    // Act
    let pulse = app
        .client
        .post(app.url("/pulse"))
        .header("X-Worker-Token", WORKER)
        .json(&json!({"url": url, "busy": true, "model": "hunyuan-video"}))
        .send()
        .await
        .expect("POST /pulse");

    // Assert
    assert_eq!(pulse.status(), 200);
    let view: serde_json::Value = pulse.json().await.expect("JSON");
    assert_eq!(view["online"], true);
    assert_eq!(view["busy"], true);
    assert_eq!(view["model"], "hunyuan-video");
    assert!(view["last_heartbeat"].is_string());
    // Three missed heartbeats at 0.2 s each: offline after 0.6 s without another one.
    let offline = wait_for_node(&app, &url, |v| v["online"] == false).await;
    assert_eq!(
        offline["model"],
        serde_json::Value::Null,
        "the health loop never saw a model"
    );
}

#[tokio::test]
async fn node_gauges_follow_the_pool() {
    // Arrange
    let a = MockNode::vllm("a").await;
    let b = MockNode::vllm("b").await;
    b.set_load(true, 1, 0);
    let app = pool_app(&[&a, &b]).await;
    wait_for_node(&app, &b.url(), |v| v["busy"] == true).await;

    // Act
    let text = app.get("/metrics").await.text().await.expect("metrics text");

    // Assert
    assert!(text.contains("gateway_nodes_online 2"), "{text}");
    assert!(text.contains("gateway_nodes_busy 1"), "{text}");
    assert!(
        text.contains(&format!("gateway_breaker_state{{provider=\"{}\"}} 0", a.id())),
        "each node has a breaker series"
    );
}

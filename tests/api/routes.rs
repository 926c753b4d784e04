//! Named routes (`routes:`): each strategy's distribution over mock providers, its fallback (next
//! target, then the route's `fallbacks`), the model forms clients use, `/v1/models`, the route
//! metric and the history row.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::MockServer;

use crate::helpers::{
    ProviderSpec, TEST_MODEL, TestApp, chat_body, completion, failure, header, json, mount_chat, received, upstream_url,
};

/// A gateway with one provider per mock (`alpha`, `beta`, `gamma`, ... in order) and `yaml`.
async fn app(mocks: &[(&str, &MockServer)], yaml: &str) -> TestApp {
    let mut builder = TestApp::builder().settings(yaml);
    for (id, mock) in mocks {
        builder = builder.provider(ProviderSpec::new(id, upstream_url(mock)));
    }
    builder.spawn().await
}

/// Sends `model` and returns the provider that answered (asserting 200).
async fn answered_by(app: &TestApp, body: &Value) -> String {
    let response = app.post_chat(body).await;
    assert_eq!(response.status(), 200, "{:?}", response.text().await);
    header(&response, "x-ai-gateway-provider")
}

fn route_yaml(strategy: &str, targets: &str) -> String {
    format!("routes: [{{name: pair, strategy: {strategy}, targets: [{targets}]}}]")
}

#[tokio::test]
async fn rotation_alternates_exactly_between_two_providers() {
    // Arrange
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, completion(), 4).await;
    mount_chat(&beta, completion(), 4).await;
    let yaml = route_yaml("priority", "alpha:gpt-test, beta:gpt-test");
    let app = app(&[("alpha", &alpha), ("beta", &beta)], &yaml).await;

    // Act: the prefix overrides the route's own `priority`.
    let mut order = Vec::new();
    for _ in 0..8 {
        order.push(answered_by(&app, &chat_body("rotation:pair")).await);
    }

    // Assert
    let expected: Vec<&str> = ["alpha", "beta"].into_iter().cycle().take(8).collect();
    assert_eq!(order, expected);
    // The upstream is asked for the target's model, the history keeps what the client asked for.
    let sent: Value = serde_json::from_slice(&received(&alpha).await[0].body).unwrap();
    assert_eq!(sent["model"], json!(TEST_MODEL));
    let rows = app.history_rows(8).await;
    assert!(rows.iter().all(|r| r["model"] == json!("rotation:pair")), "{rows:#?}");
    assert_eq!(rows[0]["provider"], json!(order[7]));
}

#[tokio::test]
async fn the_bare_name_uses_the_route_strategy_and_the_metric_counts_each_target() {
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, completion(), 2).await;
    mount_chat(&beta, completion(), 2).await;
    let app = app(
        &[("alpha", &alpha), ("beta", &beta)],
        &route_yaml("rotation", "alpha:gpt-test, beta:gpt-test"),
    )
    .await;
    for _ in 0..4 {
        answered_by(&app, &chat_body("pair")).await;
    }
    let metrics = app.get("/metrics").await.text().await.unwrap();
    for provider in ["alpha", "beta"] {
        let line = format!(
            r#"gateway_route_requests_total{{model="gpt-test",provider="{provider}",route="pair",status="success"}} 2"#
        );
        assert!(metrics.contains(&line), "missing {line}");
    }
}

#[tokio::test]
async fn weighted_follows_the_weights_within_a_statistical_bound() {
    // Arrange
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, completion(), 0..).await;
    mount_chat(&beta, completion(), 0..).await;
    let targets = "{provider: alpha, model: gpt-test, weight: 3}, {provider: beta, model: gpt-test, weight: 1}";
    let app = app(&[("alpha", &alpha), ("beta", &beta)], &route_yaml("weighted", targets)).await;

    // Act
    const N: usize = 400;
    let mut counts: HashMap<String, usize> = HashMap::new();
    for _ in 0..N {
        *counts.entry(answered_by(&app, &chat_body("pair")).await).or_default() += 1;
    }

    // Assert: alpha's share is 3/4; 300 ± 45 is over five standard deviations (8.7) wide.
    let alpha_hits = counts.get("alpha").copied().unwrap_or(0);
    assert!((255..=345).contains(&alpha_hits), "alpha answered {alpha_hits} of {N}");
    assert_eq!(alpha_hits + counts.get("beta").copied().unwrap_or(0), N);
}

#[tokio::test]
async fn least_latency_measures_both_then_converges_on_the_fast_provider() {
    // Arrange
    let (slow, fast) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&slow, completion().set_delay(Duration::from_millis(300)), 1..=2).await;
    mount_chat(&fast, completion(), 1..).await;
    let app = app(
        &[("slow", &slow), ("fast", &fast)],
        &route_yaml("least_latency", "slow:gpt-test, fast:gpt-test"),
    )
    .await;

    // Act
    let mut order = Vec::new();
    for _ in 0..10 {
        order.push(answered_by(&app, &chat_body("pair")).await);
    }

    // Assert: unmeasured targets go first (in written order), then the fastest keeps winning.
    assert_eq!(&order[..2], ["slow", "fast"]);
    assert!(order[2..].iter().all(|p| p == "fast"), "{order:?}");
}

#[tokio::test]
async fn least_busy_sends_a_concurrent_request_to_the_idle_provider() {
    // Arrange
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    let held = || completion().set_delay(Duration::from_millis(800));
    mount_chat(&alpha, held(), 2).await;
    mount_chat(&beta, held(), 1).await;
    let app = app(
        &[("alpha", &alpha), ("beta", &beta)],
        &route_yaml("least_busy", "alpha:gpt-test, beta:gpt-test"),
    )
    .await;

    // Act: the first request is held by alpha while the second is planned.
    let first = tokio::spawn(app.post_chat(&chat_body("pair")));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while received(&alpha).await.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "alpha never got the first request"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let second = app.post_chat(&chat_body("pair")).await;
    let first = first.await.unwrap();

    // Assert: then, with both idle again, the written order decides.
    assert_eq!(header(&first, "x-ai-gateway-provider"), "alpha");
    assert_eq!(header(&second, "x-ai-gateway-provider"), "beta");
    assert_eq!(answered_by(&app, &chat_body("pair")).await, "alpha");
}

#[tokio::test]
async fn autoselect_skips_a_provider_whose_breaker_is_open() {
    // Arrange: alpha fails once, which opens its breaker (threshold 1).
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, failure(500), 1).await;
    mount_chat(&beta, completion(), 2).await;
    let yaml = format!(
        "{}\nrouting: {{circuit_breaker: {{failure_threshold: 1}}}}",
        route_yaml("autoselect", "alpha:gpt-test, beta:gpt-test")
    );
    let app = app(&[("alpha", &alpha), ("beta", &beta)], &yaml).await;
    assert_eq!(answered_by(&app, &chat_body("pair")).await, "beta");
    app.wait_for_breaker("alpha", "open").await;

    // Act
    let response = app.post_chat(&chat_body("pair")).await;

    // Assert: beta is planned first, so alpha does not even appear as a skipped attempt.
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    let rows = app.history_rows(2).await;
    let attempts = rows[0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    assert_eq!(attempts[0]["provider"], json!("beta"));
}

#[tokio::test]
async fn autoselect_skips_targets_without_tools_or_with_too_small_a_context() {
    // Arrange
    let (plain, small, full) = (
        MockServer::start().await,
        MockServer::start().await,
        MockServer::start().await,
    );
    mount_chat(&plain, completion(), 1).await;
    mount_chat(&small, completion(), 0).await;
    mount_chat(&full, completion(), 1).await;
    let targets = "{provider: plain, model: gpt-test, supports_tools: false}, \
                   {provider: small, model: gpt-test, context_window: 50}, \
                   {provider: full, model: gpt-test}";
    let app = app(
        &[("plain", &plain), ("small", &small), ("full", &full)],
        &route_yaml("autoselect", targets),
    )
    .await;

    // Act: tools and a long prompt (about 1000 tokens).
    let mut body = chat_body("pair");
    body["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
    body["messages"][0]["content"] = json!("word ".repeat(800));
    let with_both = answered_by(&app, &body).await;
    body["tools"] = json!([]);
    let long_without_tools = answered_by(&app, &body).await;

    // Assert: `plain` cannot take tools and `small` cannot take the prompt, so `full` answers the
    // first. An empty tools list is no tools: `plain` (unmeasured, so first) takes the second,
    // and `small` is never asked.
    assert_eq!(with_both, "full");
    assert_eq!(long_without_tools, "plain");
}

#[tokio::test]
async fn autoselect_says_so_when_no_target_can_serve_the_request() {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 0).await;
    let targets = "{provider: alpha, model: gpt-test, supports_tools: false}";
    let app = app(&[("alpha", &alpha)], &route_yaml("autoselect", targets)).await;
    let mut body = chat_body("pair");
    body["tools"] = json!([{"type": "function", "function": {"name": "f", "parameters": {}}}]);
    let response = app.post_chat(&body).await;
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    let error = crate::helpers::assert_openai_error(&body);
    assert_eq!(error["param"], json!("model"));
    assert!(error["message"].as_str().unwrap().contains("tools"), "{error}");
}

#[tokio::test]
async fn a_failing_target_falls_back_to_the_next_target() {
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, failure(503), 1).await;
    mount_chat(&beta, completion(), 1).await;
    let app = app(
        &[("alpha", &alpha), ("beta", &beta)],
        &route_yaml("priority", "alpha:gpt-test, beta:gpt-test"),
    )
    .await;
    let response = app.post_chat(&chat_body("pair")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
}

#[tokio::test]
async fn when_every_target_fails_the_route_fallbacks_answer() {
    // Arrange: `main` → its targets fail → route `backup` (gamma) → plain model `spare` (delta).
    let mocks: Vec<MockServer> = futures_util::future::join_all((0..4).map(|_| MockServer::start())).await;
    mount_chat(&mocks[0], failure(500), 2).await;
    mount_chat(&mocks[1], failure(502), 2).await;
    mount_chat(&mocks[2], failure(500), 2).await;
    mount_chat(&mocks[3], completion(), 2).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&mocks[0])))
        .provider(ProviderSpec::new("beta", upstream_url(&mocks[1])))
        .provider(ProviderSpec::new("gamma", upstream_url(&mocks[2])))
        .provider(ProviderSpec::new("delta", upstream_url(&mocks[3])).models(&["spare"]))
        .settings(
            "routes:\n\
             - {name: main, strategy: rotation, targets: [alpha:gpt-test, beta:gpt-test], fallbacks: [backup, spare]}\n\
             - {name: backup, targets: [gamma:gpt-test], fallbacks: [main]}\n",
        )
        .spawn()
        .await;

    // Act: twice, so rotation starts once at each target.
    let first = app.post_chat(&chat_body("main")).await;
    let second = app.post_chat(&chat_body("rotation:main")).await;

    // Assert: the cycle from `backup` back to `main` is not followed; the plain model answers.
    for response in [&first, &second] {
        assert_eq!(response.status(), 200);
        assert_eq!(header(response, "x-ai-gateway-provider"), "delta");
        assert_eq!(header(response, "x-ai-gateway-attempts"), "4");
    }
    let sent: Value = serde_json::from_slice(&received(&mocks[3]).await[0].body).unwrap();
    assert_eq!(sent["model"], json!("spare"));
    let rows = app.history_rows(2).await;
    let tried: Vec<&Value> = rows[0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["provider"])
        .collect();
    assert_eq!(
        tried,
        [&json!("beta"), &json!("alpha"), &json!("gamma"), &json!("delta")]
    );
}

#[tokio::test]
async fn models_lists_routes_with_their_strategy_alongside_provider_models() {
    let alpha = MockServer::start().await;
    let app = app(
        &[("alpha", &alpha)],
        "routes: [{name: chat-default, strategy: autoselect, targets: [alpha:gpt-test], description: everyday chat}]",
    )
    .await;
    let list = json(app.get("/v1/models").await).await;
    let data = list["data"].as_array().unwrap();
    let route = data.iter().find(|m| m["id"] == "chat-default").expect("route listed");
    assert_eq!(route["object"], json!("model"));
    assert_eq!(route["owned_by"], json!("ai-gateway"));
    assert_eq!(route["strategy"], json!("autoselect"));
    assert_eq!(route["targets"], json!(["alpha:gpt-test"]));
    assert_eq!(route["description"], json!("everyday chat"));
    let model = data
        .iter()
        .find(|m| m["id"] == TEST_MODEL)
        .expect("provider model listed");
    assert_eq!(model["owned_by"], json!("alpha"));
    assert!(model.get("strategy").is_none());
}

#[tokio::test]
async fn a_stream_through_a_route_is_relayed_and_recorded() {
    let alpha = MockServer::start().await;
    let sse = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n";
    mount_chat(
        &alpha,
        wiremock::ResponseTemplate::new(200).set_body_raw(sse, "text/event-stream"),
        1,
    )
    .await;
    let app = app(&[("alpha", &alpha)], &route_yaml("rotation", "alpha:gpt-test")).await;
    let response = app.post_chat(&crate::helpers::stream_body("rotation:pair")).await;
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "alpha");
    assert!(response.text().await.unwrap().contains("[DONE]"));
    let rows = app.history_rows(1).await;
    assert_eq!(rows[0]["model"], json!("rotation:pair"));
    assert_eq!(rows[0]["stream"], json!(true));
}

#[tokio::test]
async fn other_fronts_resolve_routes_the_same_way() {
    // Arrange
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, completion(), 2).await;
    mount_chat(&beta, completion(), 1).await;
    let app = app(
        &[("alpha", &alpha), ("beta", &beta)],
        &route_yaml("rotation", "alpha:gpt-test, beta:gpt-test"),
    )
    .await;

    // Act: one rotation turn per request, whichever front it comes in on.
    let messages = app
        .post_messages(&json!({"model": "pair", "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}))
        .await;
    let responses = app
        .post_json("/v1/responses", &json!({"model": "pair", "input": "hi"}))
        .await;
    let completions = app
        .post_json("/v1/completions", &json!({"model": "pair", "prompt": "hi"}))
        .await;

    // Assert
    let answered: Vec<(u16, String)> = [&messages, &responses, &completions]
        .iter()
        .map(|r| (r.status().as_u16(), header(r, "x-ai-gateway-provider")))
        .collect();
    let expected = [(200, "alpha"), (200, "beta"), (200, "alpha")].map(|(s, p)| (s, p.to_owned()));
    assert_eq!(answered, expected);
    assert_eq!(json(messages).await["type"], json!("message"));
}

#[tokio::test]
async fn embeddings_resolve_routes_too() {
    let alpha = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/v1/embeddings"))
        .respond_with(
            wiremock::ResponseTemplate::new(200)
                .set_body_json(json!({"object": "list", "data": [], "model": "gpt-test"})),
        )
        .expect(1)
        .mount(&alpha)
        .await;
    let app = app(&[("alpha", &alpha)], &route_yaml("priority", "alpha:gpt-test")).await;
    let response = app
        .post_json("/v1/embeddings", &json!({"model": "pair", "input": "hi"}))
        .await;
    assert_eq!(response.status(), 200);
    let sent: Value = serde_json::from_slice(&received(&alpha).await[0].body).unwrap();
    assert_eq!(sent["model"], json!(TEST_MODEL));
}

//! Concurrency caps and their priority queue: a provider's `max_concurrency` with its `queue`, a
//! route target's cap, a node's, and `x-ai-gateway-priority`.
//!
//! The upstream is an `SseMock` that holds each answer until the test releases it, so a test
//! decides exactly when a slot comes free and sees, in the order requests reach the mock, which
//! waiter got it.

use std::time::Duration;

use ai_gateway::domain::ProviderId;
use ai_gateway::traffic::Level;
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::helpers::{
    Connection, MockNode, ProviderSpec, Runtime, SseMock, TEST_MODEL, TestApp, assert_openai_error, completion,
    fixtures, header, json, mount_chat, upstream_url,
};

/// A virtual key of `team`, once this gateway accepts it: the key refresh running in the
/// background may install a set read just before the key was stored, so the key is checked
/// twice, a moment apart, before a test relies on it.
async fn team_key(app: &TestApp, name: &str, team: &str) -> String {
    let key = crate::spend_budgets::team_key(&[app], name, team).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let mut accepted = 0;
    while accepted < 2 {
        let me = app
            .client
            .get(app.url("/api/v1/me"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        accepted = if me.status() == 200 { accepted + 1 } else { 0 };
        assert!(tokio::time::Instant::now() < deadline, "key {name} is never accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    key
}

/// A chat request whose message names it, so the mock can tell who reached it.
fn asking(who: &str) -> Value {
    json!({"model": TEST_MODEL, "messages": [{"role": "user", "content": who}]})
}

/// Provider `alpha` at `mock`, one request at a time, with this queue.
fn capped(mock: &SseMock, size: u32, max_wait_ms: u64) -> ProviderSpec {
    ProviderSpec::new("alpha", mock.base_url())
        .set("max_concurrency", json!(1))
        .set("queue", json!({"size": size, "max_wait_ms": max_wait_ms}))
}

/// Waits until `n` requests wait at `level` (5 s at most).
async fn until_queued(app: &TestApp, level: &Level, n: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while app.state.traffic.queued(level) != n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{} requests wait at {level:?}, never {n}",
            app.state.traffic.queued(level)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn alpha_level() -> Level {
    Level::Provider(ProviderId::new("alpha"))
}

/// Answers a held request with the chat completion fixture.
fn answer(connection: &Connection) {
    connection.send_raw(fixtures::CHAT_COMPLETION);
    connection.finish();
}

/// Who a request at the mock is (the content of its message).
fn who(connection: &Connection) -> String {
    let body: Value = serde_json::from_slice(&connection.request.body).expect("the gateway sent JSON");
    body["messages"][0]["content"].as_str().unwrap_or_default().to_owned()
}

/// A request sent with `key` (and `priority` in `x-ai-gateway-priority`), in a task of its own.
fn send(app: &TestApp, key: &str, priority: Option<&str>, body: &Value) -> tokio::task::JoinHandle<reqwest::Response> {
    let mut request = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body);
    if let Some(p) = priority {
        request = request.header("x-ai-gateway-priority", p);
    }
    tokio::spawn(async move { request.send().await.expect("POST /v1/chat/completions") })
}

/// Releases the held request and answers each next one at once: the order they reach the mock.
async fn serve_in_turn(alpha: &SseMock, held: &Connection, n: usize) -> Vec<String> {
    answer(held);
    let mut order = Vec::new();
    for _ in 0..n {
        let next = alpha.next_connection().await;
        order.push(who(&next));
        answer(&next);
    }
    order
}

#[tokio::test]
async fn a_request_over_the_cap_waits_for_the_slot_and_is_served() {
    // Arrange: one slot, held by the first request.
    let alpha = SseMock::start_with_content_type("application/json").await;
    let app = TestApp::builder().provider(capped(&alpha, 8, 5_000)).spawn().await;
    let first = tokio::spawn(app.post_chat(&asking("first")));
    let held = alpha.next_connection().await;

    // Act
    let second = tokio::spawn(app.post_chat(&asking("second")));
    until_queued(&app, &alpha_level(), 1).await;

    // Assert: it waits in the gateway, not at the upstream, and is served once the slot is free.
    assert_eq!(alpha.requests(), 1);
    let order = serve_in_turn(&alpha, &held, 1).await;
    assert_eq!(order, ["second"]);
    assert_eq!(first.await.unwrap().status(), 200);
    let second = second.await.unwrap();
    assert_eq!(second.status(), 200);
    assert_eq!(header(&second, "x-ai-gateway-provider"), "alpha");
}

#[tokio::test]
async fn a_high_priority_request_overtakes_queued_normal_ones() {
    // Arrange: a team with priority high and one without; the slot is held.
    let alpha = SseMock::start_with_content_type("application/json").await;
    let app = TestApp::builder()
        .provider(capped(&alpha, 8, 5_000))
        .settings("teams: [{name: interactive, priority: high}, {name: standard}]")
        .spawn()
        .await;
    let high = team_key(&app, "ui", "interactive").await;
    let normal = team_key(&app, "svc", "standard").await;
    let holder = send(&app, &normal, None, &asking("holder"));
    let held = alpha.next_connection().await;

    // Act: two normal requests queue, then a high one.
    let mut waiting = Vec::new();
    for (n, (key, name)) in [(&normal, "normal-1"), (&normal, "normal-2"), (&high, "high")]
        .into_iter()
        .enumerate()
    {
        waiting.push(send(&app, key, None, &asking(name)));
        until_queued(&app, &alpha_level(), n + 1).await;
    }

    // Assert: the high one reaches the upstream first, the normal ones in arrival order.
    let order = serve_in_turn(&alpha, &held, 3).await;
    assert_eq!(order, ["high", "normal-1", "normal-2"]);
    assert_eq!(holder.await.unwrap().status(), 200);
    for w in waiting {
        assert_eq!(w.await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn the_priority_header_lowers_freely_but_never_rises_above_the_keys() {
    // Arrange: a low-priority team's key asks for high; a normal one asks for nothing.
    let alpha = SseMock::start_with_content_type("application/json").await;
    let app = TestApp::builder()
        .provider(capped(&alpha, 8, 5_000))
        .settings("teams: [{name: batch, priority: low}, {name: standard}]")
        .spawn()
        .await;
    let low = team_key(&app, "nightly", "batch").await;
    let normal = team_key(&app, "svc", "standard").await;
    let holder = send(&app, &normal, None, &asking("holder"));
    let held = alpha.next_connection().await;

    // Act: the low key claims high and queues first; a normal request that lowers itself to low
    // queues next; then a plain normal one.
    let claims_high = send(&app, &low, Some("high"), &asking("low-claiming-high"));
    until_queued(&app, &alpha_level(), 1).await;
    let lowered = send(&app, &normal, Some("low"), &asking("normal-lowered"));
    until_queued(&app, &alpha_level(), 2).await;
    let plain = send(&app, &normal, None, &asking("normal"));
    until_queued(&app, &alpha_level(), 3).await;

    // Assert: the claim was capped at low, so the plain normal request goes first; the two lows
    // follow in arrival order.
    let order = serve_in_turn(&alpha, &held, 3).await;
    assert_eq!(order, ["normal", "low-claiming-high", "normal-lowered"]);
    for r in [holder, claims_high, lowered, plain] {
        assert_eq!(r.await.unwrap().status(), 200);
    }
}

#[tokio::test]
async fn an_unreadable_priority_header_is_refused_in_the_clients_dialect() {
    // Arrange
    let alpha = SseMock::start_with_content_type("application/json").await;
    let app = TestApp::builder().provider(capped(&alpha, 8, 5_000)).spawn().await;

    // Act
    let chat = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header("x-ai-gateway-priority", "urgent")
        .json(&asking("x"))
        .send()
        .await
        .unwrap();
    let messages = app
        .client
        .post(app.url("/v1/messages"))
        .header("anthropic-version", "2023-06-01")
        .header("x-ai-gateway-priority", "urgent")
        .json(&json!({"model": TEST_MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}))
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(chat.status(), 400);
    let body = json(chat).await;
    let error = assert_openai_error(&body);
    assert_eq!(error["param"], "x-ai-gateway-priority");
    assert_eq!(error["code"], "invalid_value");
    assert_eq!(messages.status(), 400);
    let body = json(messages).await;
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("x-ai-gateway-priority"),
        "{body}"
    );
    assert_eq!(alpha.requests(), 0);
}

#[tokio::test]
async fn a_full_queue_answers_503_overloaded_with_retry_after_and_the_metrics_count_it() {
    // Arrange: one slot held, one request waiting, room for no more.
    let alpha = SseMock::start_with_content_type("application/json").await;
    let app = TestApp::builder().provider(capped(&alpha, 1, 3_000)).spawn().await;
    let first = tokio::spawn(app.post_chat(&asking("first")));
    let held = alpha.next_connection().await;
    let second = tokio::spawn(app.post_chat(&asking("second")));
    until_queued(&app, &alpha_level(), 1).await;

    // Act
    let refused = app.post_chat(&asking("third")).await;
    let refused_messages = app
        .post_messages(&json!({"model": TEST_MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "x"}]}))
        .await;
    let status = json(app.get("/provider/status").await).await;
    let metrics = app.get("/metrics").await.text().await.unwrap();

    // Assert: refused at once, naming the level, with Retry-After (the queue's longest wait).
    assert_eq!(refused.status(), 503);
    assert_eq!(header(&refused, "retry-after"), "3");
    assert_eq!(header(&refused, "x-ai-gateway-attempts"), "0", "no upstream was called");
    let body = json(refused).await;
    let error = assert_openai_error(&body);
    assert_eq!(error["type"], "overloaded");
    assert_eq!(error["code"], "overloaded");
    let message = error["message"].as_str().unwrap();
    assert!(message.contains("provider alpha (queue full)"), "{message}");
    assert_eq!(refused_messages.status(), 503);
    assert_eq!(header(&refused_messages, "retry-after"), "3");
    let body = json(refused_messages).await;
    assert_eq!(body["error"]["type"], "overloaded_error", "{body}");
    let queue = &status["queues"][0];
    assert_eq!(
        (&queue["level"], &queue["in_use"], &queue["cap"], &queue["queued"]),
        (&json!("provider:alpha"), &json!(1), &json!(1), &json!(1)),
        "{status}"
    );
    assert!(
        metrics.contains("gateway_queue_depth{level=\"provider:alpha\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_queue_rejections_total{level=\"provider:alpha\",reason=\"full\"} 2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_queue_wait_seconds_count{level=\"provider:alpha\"} 1"),
        "only the first has its slot yet: {metrics}"
    );
    serve_in_turn(&alpha, &held, 1).await;
    assert_eq!(first.await.unwrap().status(), 200);
    assert_eq!(second.await.unwrap().status(), 200);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("gateway_queue_depth{level=\"provider:alpha\"} 0"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_queue_wait_seconds_count{level=\"provider:alpha\"} 2"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_request_that_waits_longer_than_max_wait_moves_on_to_the_next_provider() {
    // Arrange: alpha's slot is held; beta answers at once.
    let alpha = SseMock::start_with_content_type("application/json").await;
    let beta = MockServer::start().await;
    mount_chat(&beta, completion(), 1).await;
    let app = TestApp::builder()
        .provider(capped(&alpha, 8, 300))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .spawn()
        .await;
    let first = tokio::spawn(app.post_chat(&asking("first")));
    let held = alpha.next_connection().await;

    // Act
    let started = std::time::Instant::now();
    let second = app.post_chat(&asking("second")).await;

    // Assert: it waited alpha's max_wait_ms, then beta answered; alpha was never called for it.
    assert_eq!(second.status(), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(header(&second, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&second, "x-ai-gateway-attempts"), "1");
    assert_eq!(alpha.requests(), 1);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("gateway_queue_rejections_total{level=\"provider:alpha\",reason=\"timeout\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("gateway_upstream_attempts_total{outcome=\"overloaded\",provider=\"alpha\"} 1"),
        "{metrics}"
    );
    answer(&held);
    assert_eq!(first.await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_stream_holds_its_slot_until_it_ends() {
    // Arrange: a streaming upstream, one slot.
    let alpha = SseMock::start().await;
    let app = TestApp::builder().provider(capped(&alpha, 8, 5_000)).spawn().await;
    let mut stream_body = asking("stream");
    stream_body["stream"] = json!(true);
    let streaming = tokio::spawn(app.post_chat(&stream_body));
    let upstream = alpha.next_connection().await;
    let chunks = fixtures::chunk_events();
    upstream.send_raw(chunks[0].clone());
    let streaming = streaming.await.unwrap();
    assert_eq!(streaming.status(), 200, "the stream has started");

    // Act: another request arrives while the stream runs.
    let second = tokio::spawn(app.post_chat(&asking("second")));
    until_queued(&app, &alpha_level(), 1).await;
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Assert: it waits for as long as the stream lasts, and goes once the stream has ended.
    assert_eq!(alpha.requests(), 1, "the stream still holds the slot");
    for chunk in &chunks[1..] {
        upstream.send_raw(chunk.clone());
    }
    upstream.finish();
    let text = streaming.text().await.unwrap();
    assert!(text.contains("[DONE]"), "{text}");
    let next = alpha.next_connection().await;
    assert_eq!(who(&next), "second");
    answer(&next);
    assert_eq!(second.await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_route_targets_cap_names_the_route_and_target_when_it_is_full() {
    // Arrange: the provider has no cap of its own; the route's target allows one at a time and
    // its provider's queue holds none.
    let alpha = SseMock::start_with_content_type("application/json").await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()).set("queue", json!({"size": 0})))
        .settings("routes: [{name: chat, targets: [{provider: alpha, model: gpt-test, max_concurrency: 1}]}]")
        .spawn()
        .await;
    let mut body = asking("first");
    body["model"] = json!("chat");
    let first = tokio::spawn(app.post_chat(&body));
    let held = alpha.next_connection().await;

    // Act
    let refused = app.post_chat(&body).await;
    let direct = tokio::spawn(app.post_chat(&asking("direct")));

    // Assert: the route is full; the provider itself, asked directly, is not capped.
    assert_eq!(refused.status(), 503);
    let body = json(refused).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("route chat target 0 (queue full)"), "{message}");
    let next = alpha.next_connection().await;
    assert_eq!(who(&next), "direct");
    answer(&next);
    answer(&held);
    assert_eq!(direct.await.unwrap().status(), 200);
    assert_eq!(first.await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_node_is_capped_at_the_slots_its_runtime_reports() {
    // Arrange: a llama.cpp node with one slot (`/slots`), answering slowly; the pool queues none.
    let node = MockNode::start(Runtime::LlamaCpp, &[TEST_MODEL]).await;
    node.delay_chat(Duration::from_millis(1_500));
    let app = crate::nodes::pool_builder(&[&node])
        .settings("providers: [{id: nodes, kind: node_pool, models: ['*'], queue: {size: 0}}]")
        .spawn()
        .await;
    crate::nodes::wait_for_node(&app, &node.url(), |v| v["online"] == true && v["slots"] == 1).await;
    let first = tokio::spawn(app.post_chat(&asking("first")));
    let level = Level::Node(ProviderId::new(&node.id()));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while node.chat_calls().await == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first request never reached the node"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // Act
    let refused = app.post_chat(&asking("second")).await;

    // Assert
    assert_eq!(refused.status(), 503);
    let body = json(refused).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("node {} (queue full)", node.url())),
        "{message}"
    );
    assert_eq!(app.state.traffic.queued(&level), 0);
    assert_eq!(first.await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_cap_raised_by_a_reload_admits_the_waiting_request_at_once() {
    // Arrange: one slot held, one request waiting.
    let alpha = SseMock::start_with_content_type("application/json").await;
    let app = TestApp::builder().provider(capped(&alpha, 8, 5_000)).spawn().await;
    let first = tokio::spawn(app.post_chat(&asking("first")));
    let held = alpha.next_connection().await;
    let second = tokio::spawn(app.post_chat(&asking("second")));
    until_queued(&app, &alpha_level(), 1).await;

    // Act: the file now allows two at a time.
    let text = std::fs::read_to_string(app.config_path()).unwrap();
    let mut tree: Value = serde_json::from_str(&text).unwrap();
    tree["providers"][0]["max_concurrency"] = json!(2);
    std::fs::write(app.config_path(), serde_json::to_vec_pretty(&tree).unwrap()).unwrap();
    ai_gateway::admin::reload_file(&app.state, ai_gateway::admin::ReloadCause::Signal)
        .await
        .unwrap();

    // Assert: the waiting request goes while the first still holds its slot, which survived the
    // reload.
    let next = alpha.next_connection().await;
    assert_eq!(who(&next), "second");
    let status = json(app.get("/provider/status").await).await;
    assert_eq!(
        (&status["queues"][0]["in_use"], &status["queues"][0]["cap"]),
        (&json!(2), &json!(2))
    );
    answer(&next);
    answer(&held);
    assert_eq!(second.await.unwrap().status(), 200);
    assert_eq!(first.await.unwrap().status(), 200);
}

#[tokio::test]
async fn the_wait_counts_against_the_requests_own_timeout() {
    // Arrange: a queue that would wait 5 s, a non-streamed timeout of 0.5 s; a stream holds the
    // only slot (its first chunk came, so its own first-token timeout no longer applies).
    let alpha = SseMock::start().await;
    let app = TestApp::builder()
        .provider(capped(&alpha, 8, 5_000))
        .settings("routing: {timeout_seconds: 0.5}")
        .spawn()
        .await;
    let mut stream_body = asking("stream");
    stream_body["stream"] = json!(true);
    let streaming = tokio::spawn(app.post_chat(&stream_body));
    let upstream = alpha.next_connection().await;
    upstream.send_raw(fixtures::chunk_events()[0].clone());
    assert_eq!(streaming.await.unwrap().status(), 200);

    // Act
    let started = std::time::Instant::now();
    let refused = app.post_chat(&asking("second")).await;

    // Assert: it gave up when its timeout ran out, not after max_wait_ms.
    let waited = started.elapsed();
    assert_eq!(refused.status(), 503);
    assert!(
        waited >= Duration::from_millis(500) && waited < Duration::from_secs(3),
        "{waited:?}"
    );
    let body = json(refused).await;
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("provider alpha (no slot within"), "{message}");
    upstream.cut();
}

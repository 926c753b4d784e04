//! Webhooks: a route's `callback` receives one signed `request.completed` event per completed
//! request (JSON answers, streams, errors and cache hits alike), off the request path; 5xx are
//! retried with the same event id, other 4xx are not; a full queue drops and counts.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, Request, ResponseTemplate};

use crate::helpers::{
    ProviderSpec, TEST_MODEL, TestApp, chat_body, completion, failure, fixtures, header, json, mount_chat, received,
    stream_body, upstream_url,
};

const SECRET: &str = "whsec-test-secret";

/// A gateway whose route `gpt-test` (served by provider `alpha`) calls back `receiver/hook`.
async fn app_with_callback(alpha: &MockServer, receiver: &str, webhooks: &str) -> TestApp {
    let settings = format!(
        "{{routes: [{{name: {TEST_MODEL}, targets: ['alpha:{TEST_MODEL}'], callback: '{receiver}/hook'}}], webhooks: {webhooks}}}"
    );
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(alpha)))
        .env("WEBHOOK_SECRET", SECRET)
        .settings(&settings)
        .spawn()
        .await
}

async fn mount_hook(receiver: &MockServer, response: ResponseTemplate) {
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(response)
        .mount(receiver)
        .await;
}

/// Waits (at most 10 s) until `receiver` has had `n` requests, and returns them.
async fn wait_for_hooks(receiver: &MockServer, n: usize) -> Vec<Request> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let got = received(receiver).await;
        if got.len() >= n || tokio::time::Instant::now() > deadline {
            assert_eq!(got.len(), n, "webhook requests received");
            return got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Waits (at most 10 s) until `/metrics` shows `series` at `at_least`, and returns its value.
async fn wait_for_metric(app: &TestApp, series: &str, at_least: u64) -> u64 {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let text = app.get("/metrics").await.text().await.expect("metrics text");
        let value = text
            .lines()
            .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse::<u64>().ok()))
            .unwrap_or_else(|| panic!("no series `{series}` in /metrics"));
        if value >= at_least || tokio::time::Instant::now() > deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn request_header<'a>(request: &'a Request, name: &str) -> &'a str {
    request
        .headers
        .get(name)
        .unwrap_or_else(|| panic!("webhook request has no `{name}` header"))
        .to_str()
        .expect("ASCII header")
}

/// Recomputes the signature as a receiver would: HMAC-SHA256 over `<t>.<body>` with the secret.
fn assert_signed(request: &Request) {
    let value = request_header(request, "x-ai-gateway-signature");
    let parts: BTreeMap<&str, &str> = value.split(',').filter_map(|p| p.split_once('=')).collect();
    let t = parts["t"];
    assert!(t.parse::<u64>().is_ok(), "t is unix seconds: {value}");
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, SECRET.as_bytes());
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(&request.body);
    let expected = hex::encode(ring::hmac::sign(&key, &message).as_ref());
    assert_eq!(parts["v1"], expected, "signature of {value}");
}

fn event(request: &Request) -> Value {
    serde_json::from_slice(&request.body).expect("webhook body is JSON")
}

#[tokio::test]
async fn each_completed_request_sends_one_signed_event_with_its_outcome() {
    // Arrange
    let (alpha, receiver) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, completion(), 1).await;
    mount_hook(&receiver, ResponseTemplate::new(204)).await;
    let app = app_with_callback(&alpha, &receiver.uri(), "{}").await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;
    let request_id = header(&response, "x-request-id");

    // Assert
    assert_eq!(response.status(), 200);
    let hooks = wait_for_hooks(&receiver, 1).await;
    let hook = &hooks[0];
    assert_signed(hook);
    assert_eq!(request_header(hook, "content-type"), "application/json");
    assert!(!request_header(hook, "x-ai-gateway-event-id").is_empty());
    let e = event(hook);
    assert_eq!(e["type"], json!("request.completed"));
    assert_eq!(e["id"], json!(request_id));
    assert_eq!(e["route"], json!(TEST_MODEL));
    assert_eq!(e["endpoint"], json!("/v1/chat/completions"));
    assert_eq!(e["model"], json!(TEST_MODEL));
    assert_eq!(e["provider"], json!("alpha"));
    assert_eq!(e["status"], json!("success"));
    assert_eq!(e["status_code"], json!(200));
    assert!(e["latency_ms"].is_u64(), "{e}");
    assert!(e["created_at"].as_str().is_some_and(|t| t.ends_with('Z')), "{e}");
    assert_eq!(
        e["usage"],
        json!({
            "prompt_tokens": 1117, "completion_tokens": 46, "total_tokens": 1163,
            "cached_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0
        })
    );
    assert_eq!(e["cache"], Value::Null);
    // Outcome only: no prompt, no completion, no credential.
    let text = String::from_utf8_lossy(&hook.body);
    for secret in ["Hello!", "wooden boardwalk", "sk-alpha-provider", SECRET] {
        assert!(!text.contains(secret), "`{secret}` leaked into {text}");
    }
    assert_eq!(
        wait_for_metric(&app, "gateway_webhook_deliveries_total{result=\"delivered\"}", 1).await,
        1
    );
}

#[tokio::test]
async fn streams_errors_and_cache_hits_each_send_an_event() {
    // Arrange
    let (alpha, receiver) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"stream": true})))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixtures::CHAT_COMPLETION_CHUNKS, "text/event-stream"))
        .with_priority(1)
        .expect(1)
        .mount(&alpha)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(
            json!({"messages": [{"role": "user", "content": "fail"}]}),
        ))
        .respond_with(failure(500))
        .with_priority(1)
        .expect(1)
        .mount(&alpha)
        .await;
    mount_chat(&alpha, completion(), 1).await;
    mount_hook(&receiver, ResponseTemplate::new(200)).await;
    let app = app_with_callback(&alpha, &receiver.uri(), "{}").await;
    let cached = |app: &TestApp| {
        app.client
            .post(app.url("/v1/chat/completions"))
            .header("x-ai-gateway-cache", "on")
            .json(&chat_body(TEST_MODEL))
            .send()
    };
    let mut failing = chat_body(TEST_MODEL);
    failing["messages"][0]["content"] = json!("fail");

    // Act
    let mut ids = BTreeMap::new();
    for (name, response) in [
        ("miss", cached(&app).await.unwrap()),
        ("hit", cached(&app).await.unwrap()),
        ("stream", app.post_chat(&stream_body(TEST_MODEL)).await),
        ("error", app.post_chat(&failing).await),
    ] {
        ids.insert(header(&response, "x-request-id"), name);
        response.bytes().await.unwrap();
    }

    // Assert: one event each, whatever order they were delivered in.
    let hooks = wait_for_hooks(&receiver, 4).await;
    let events: BTreeMap<&str, Value> = hooks
        .iter()
        .map(|h| {
            assert_signed(h);
            let e = event(h);
            (ids[e["id"].as_str().unwrap()], e)
        })
        .collect();
    assert_eq!(events.len(), 4, "{events:#?}");
    assert_eq!(events["miss"]["cache"], json!("miss"));
    assert_eq!(events["hit"]["cache"], json!("hit"));
    assert_eq!(events["hit"]["provider"], json!("alpha"));
    assert_eq!(events["hit"]["status"], json!("success"));
    assert_eq!(events["hit"]["usage"], Value::Null);
    assert_eq!(events["stream"]["status"], json!("success"));
    assert_eq!(events["stream"]["cache"], Value::Null);
    assert_eq!(events["error"]["status"], json!("error"));
    assert_eq!(events["error"]["status_code"], json!(502));
    assert_eq!(events["error"]["provider"], json!("alpha"));
}

#[tokio::test]
async fn a_receiver_failing_twice_gets_the_same_event_a_third_time_and_it_counts_as_delivered() {
    // Arrange
    let (alpha, receiver) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, completion(), 1).await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(500))
        .up_to_n_times(2)
        .with_priority(1)
        .mount(&receiver)
        .await;
    mount_hook(&receiver, ResponseTemplate::new(200)).await;
    let app = app_with_callback(&alpha, &receiver.uri(), "{max_retries: 3}").await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    let hooks = wait_for_hooks(&receiver, 3).await;
    let ids: Vec<&str> = hooks
        .iter()
        .map(|h| request_header(h, "x-ai-gateway-event-id"))
        .collect();
    assert!(
        ids.iter().all(|id| *id == ids[0]),
        "one event id across retries: {ids:?}"
    );
    assert!(hooks.iter().all(|h| h.body == hooks[0].body), "the same body each time");
    hooks.iter().for_each(assert_signed);
    assert_eq!(
        wait_for_metric(&app, "gateway_webhook_deliveries_total{result=\"delivered\"}", 1).await,
        1
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(received(&receiver).await.len(), 3, "nothing after the delivery");
}

#[tokio::test]
async fn a_4xx_from_the_receiver_is_not_retried() {
    // Arrange
    let (alpha, receiver) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, completion(), 1).await;
    mount_hook(&receiver, ResponseTemplate::new(400)).await;
    let app = app_with_callback(&alpha, &receiver.uri(), "{max_retries: 3}").await;

    // Act
    app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert: counted as failed after one attempt; a failed delivery is final.
    assert_eq!(
        wait_for_metric(&app, "gateway_webhook_deliveries_total{result=\"failed\"}", 1).await,
        1
    );
    assert_eq!(received(&receiver).await.len(), 1);
    assert_eq!(
        wait_for_metric(&app, "gateway_webhook_deliveries_total{result=\"delivered\"}", 0).await,
        0
    );
}

#[tokio::test]
async fn a_receiver_that_never_answers_neither_fails_nor_holds_the_request() {
    // Arrange: a listener that never accepts, so a webhook attempt waits its full timeout.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let receiver = format!("http://{}", silent.local_addr().unwrap());
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = app_with_callback(&alpha, &receiver, "{timeout_seconds: 60, max_retries: 5}").await;

    // Act: were delivery on the request path, each answer would take at least a minute.
    let answers = tokio::time::timeout(Duration::from_secs(10), async {
        (
            app.post_chat(&chat_body(TEST_MODEL)).await,
            app.post_chat(&chat_body(TEST_MODEL)).await,
        )
    })
    .await
    .expect("answered without waiting for the receiver");

    // Assert
    for response in [answers.0, answers.1] {
        assert_eq!(response.status(), 200);
        assert_eq!(json(response).await, fixtures::json(fixtures::CHAT_COMPLETION));
    }
}

#[tokio::test]
async fn events_beyond_the_queue_are_dropped_and_counted_while_requests_succeed() {
    // Arrange: every delivery hangs, so the dispatcher's slots and the one-event queue fill up.
    let (alpha, receiver) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, completion(), 12).await;
    mount_hook(&receiver, ResponseTemplate::new(200).set_delay(Duration::from_secs(30))).await;
    let app = app_with_callback(&alpha, &receiver.uri(), "{queue_capacity: 1, timeout_seconds: 60}").await;

    // Act
    let mut statuses = Vec::new();
    for _ in 0..12 {
        statuses.push(app.post_chat(&chat_body(TEST_MODEL)).await.status().as_u16());
    }

    // Assert
    assert_eq!(statuses, [200; 12]);
    let dropped = wait_for_metric(&app, "gateway_webhook_deliveries_total{result=\"dropped\"}", 1).await;
    assert!((1..12).contains(&dropped), "dropped {dropped} of 12");
}

#[tokio::test]
async fn without_a_secret_events_are_sent_unsigned() {
    // Arrange
    let (alpha, receiver) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, completion(), 1).await;
    mount_hook(&receiver, ResponseTemplate::new(200)).await;
    let settings = format!(
        "{{routes: [{{name: {TEST_MODEL}, targets: ['alpha:{TEST_MODEL}'], callback: '{}/hook'}}]}}",
        receiver.uri()
    );
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(&settings)
        .spawn()
        .await;

    // Act
    app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    let hooks = wait_for_hooks(&receiver, 1).await;
    assert!(hooks[0].headers.get("x-ai-gateway-signature").is_none());
    assert!(hooks[0].headers.get("x-ai-gateway-event-id").is_some());
    assert_eq!(event(&hooks[0])["type"], json!("request.completed"));
}

#[tokio::test]
async fn requests_on_other_models_send_no_event() {
    // Arrange: the callback belongs to route `gpt-test`; `other-model` is served but not routed.
    let (alpha, receiver) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, completion(), 2).await;
    mount_hook(&receiver, ResponseTemplate::new(200)).await;
    let settings = format!(
        "{{routes: [{{name: {TEST_MODEL}, targets: ['alpha:{TEST_MODEL}'], callback: '{}/hook'}}]}}",
        receiver.uri()
    );
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)).models(&[TEST_MODEL, "other-model"]))
        .settings(&settings)
        .spawn()
        .await;

    // Act
    app.post_chat(&chat_body("other-model")).await;
    app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert: the routed request's event arrives; the other never does (it was emitted first).
    let hooks = wait_for_hooks(&receiver, 1).await;
    assert_eq!(event(&hooks[0])["model"], json!(TEST_MODEL));
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(received(&receiver).await.len(), 1);
}

//! What a breaker counts, and whose it is: long generations and unsupported operations are not
//! the upstream's failures, one client cannot open a breaker for everyone (`min_callers`), a
//! model's failures block that model only, a silent provider is left at once, and a stream whose
//! answer is whole is complete without the upstream's `[DONE]`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use wiremock::matchers::{body_partial_json, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    ProviderSpec, SseMock, SseReader, TEST_MODEL, TestApp, chat_body, closed_port_url, completion, failure, fixtures,
    header, mount_chat, stream_body, upstream_url,
};

async fn mount_embeddings(server: &MockServer, calls: u64) {
    Mock::given(method("POST"))
        .and(path("/v1/embeddings"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixtures::EMBEDDINGS, "application/json"))
        .expect(calls)
        .named("POST /v1/embeddings")
        .mount(server)
        .await;
}

fn embeddings_body() -> Value {
    json!({"model": TEST_MODEL, "input": "hello"})
}

async fn post_as(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("POST /v1/chat/completions")
}

#[tokio::test]
async fn two_slow_non_streamed_requests_leave_the_breaker_closed_for_the_next_caller() {
    // Arrange: alpha works on every request for longer than the attempt timeout (a long
    // generation); two failures would open its breaker if they counted.
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_chat(&alpha, completion().set_delay(Duration::from_secs(30)), 3).await;
    mount_chat(&beta, completion(), 3).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .settings(
            "routing: {max_retries: 1, timeout_seconds: 1, circuit_breaker: {failure_threshold: 2, reset_timeout_seconds: 60}}",
        )
        .spawn()
        .await;

    // Act: two slow requests.
    for _ in 0..2 {
        let response = app.post_chat(&chat_body(TEST_MODEL)).await;
        // Assert: alpha is tried once (never retried), then beta answers.
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
        assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    }

    // Assert: the breaker is closed and the next caller's request still reaches alpha.
    assert_eq!(app.breaker("alpha").await, "closed");
    let next = app.post_chat(&chat_body(TEST_MODEL)).await;
    assert_eq!(header(&next, "x-ai-gateway-attempts"), "2");
    alpha.verify().await;
}

#[tokio::test]
async fn with_min_callers_two_one_callers_failures_never_open_the_breaker_but_a_second_callers_do() {
    // Arrange: alpha fails everything; two clients with their own keys.
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_chat(&alpha, failure(500), 6).await;
    mount_chat(&beta, completion(), 6).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .settings(
            "{auth: {api_keys: [sk-tenant-one, sk-tenant-two]}, routing: {max_retries: 0, circuit_breaker: {failure_threshold: 2, reset_timeout_seconds: 60, min_callers: 2}}}",
        )
        .spawn()
        .await;

    // Act 1: one client makes five failed attempts on alpha.
    for _ in 0..5 {
        let response = post_as(&app, "sk-tenant-one", &chat_body(TEST_MODEL)).await;
        assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    }
    // Assert 1: alone it cannot open alpha's breaker for everyone.
    assert_eq!(app.breaker("alpha").await, "closed");

    // Act 2: a second client's failure on alpha.
    let response = post_as(&app, "sk-tenant-two", &chat_body(TEST_MODEL)).await;
    assert_eq!(response.status(), 200);

    // Assert 2: two callers failed within the reset period: alpha is open.
    assert_eq!(app.breaker("alpha").await, "open");
    alpha.verify().await;
}

#[tokio::test]
async fn a_silent_provider_is_left_after_one_first_token_timeout() {
    // Arrange: alpha accepts the stream and never says a word; retries are allowed.
    let alpha = SseMock::start().await;
    let beta = SseMock::start().await;
    beta.autoplay_raw(fixtures::chunk_events()).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .provider(ProviderSpec::new("beta", beta.base_url()))
        .settings("routing: {max_retries: 2, first_token_timeout_seconds: 1}")
        .spawn()
        .await;

    // Act
    let started = Instant::now();
    let pending = tokio::spawn(app.post_chat(&stream_body(TEST_MODEL)));
    let _stalled = alpha.next_connection().await;
    let response = pending.await.expect("request task");
    let elapsed = started.elapsed();

    // Assert: one timeout on alpha, then beta at once, not two more seconds of silence.
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    assert_eq!(alpha.requests(), 1);
    assert!(elapsed < Duration::from_millis(1_900), "fallback took {elapsed:?}");
}

#[tokio::test]
async fn a_429_storm_on_one_model_leaves_another_model_of_the_same_provider_served() {
    // Arrange: alpha serves two models; one of them is rate limited on every call.
    let alpha = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"model": "busy-model"})))
        .respond_with(failure(429))
        .mount(&alpha)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"model": "calm-model"})))
        .respond_with(completion())
        .expect(1)
        .mount(&alpha)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)).models(&["busy-model", "calm-model"]))
        .settings("routing: {max_retries: 0, circuit_breaker: {failure_threshold: 2, reset_timeout_seconds: 60}}")
        .spawn()
        .await;

    // Act 1: the storm opens the busy model's breaker.
    for _ in 0..2 {
        app.post_chat(&chat_body("busy-model")).await;
    }
    let refused = app.post_chat(&chat_body("busy-model")).await;
    assert_eq!(refused.status(), 503, "the busy model's breaker is open");

    // Act 2
    let calm = app.post_chat(&chat_body("calm-model")).await;

    // Assert: the other model is still served by the same provider, which reads closed.
    assert_eq!(calm.status(), 200);
    assert_eq!(header(&calm, "x-ai-gateway-provider"), "alpha");
    assert_eq!(app.breaker("alpha").await, "closed");
    let status: Value = app.get("/provider/status").await.json().await.expect("status JSON");
    let alpha_status = status["providers"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["id"] == "alpha"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(alpha_status["model_breakers"]["busy-model"], "open", "{alpha_status}");
    assert_eq!(alpha_status["model_breakers"]["calm-model"], "closed", "{alpha_status}");
    alpha.verify().await;
}

#[tokio::test]
async fn an_any_model_provider_breaks_as_a_whole() {
    // Arrange: alpha serves any model (`"*"`): it has no declared models, so no model breakers.
    let alpha = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"model": "busy-model"})))
        .respond_with(failure(429))
        .mount(&alpha)
        .await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .and(body_partial_json(json!({"model": "calm-model"})))
        .respond_with(completion())
        .expect(0)
        .mount(&alpha)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)).models(&["*"]))
        .settings("routing: {max_retries: 0, circuit_breaker: {failure_threshold: 2, reset_timeout_seconds: 60}}")
        .spawn()
        .await;

    // Act
    for _ in 0..2 {
        app.post_chat(&chat_body("busy-model")).await;
    }
    let calm = app.post_chat(&chat_body("calm-model")).await;

    // Assert: the provider's own breaker opened, so every model waits.
    assert_eq!(calm.status(), 503);
    assert_eq!(app.breaker("alpha").await, "open");
    alpha.verify().await;
}

#[tokio::test]
async fn a_stream_that_ends_with_a_finish_reason_but_no_done_reaches_the_client_complete() {
    // Arrange: the upstream sends the whole answer, finish_reason included, and closes without
    // `[DONE]`.
    let alpha = SseMock::start().await;
    let events: Vec<String> = fixtures::chunk_events()
        .into_iter()
        .filter(|e| !e.contains("[DONE]"))
        .collect();
    alpha.autoplay_raw(events).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&stream_body(TEST_MODEL)).await;

    // Assert: every event, then `[DONE]`, and no error event; recorded as a success.
    assert_eq!(response.status(), 200);
    let all = SseReader::new(response).rest().await;
    assert_eq!(all, fixtures::chunk_payloads(), "{all:?}");
    let rows = app.history_rows(1).await;
    assert_eq!(rows[0]["status"], "success", "{}", rows[0]);
}

#[tokio::test]
async fn a_stream_cut_before_its_finish_reason_still_ends_with_an_error_event() {
    // Arrange: the upstream closes after two content chunks.
    let alpha = SseMock::start().await;
    alpha.autoplay_raw(fixtures::chunk_events()[..2].to_vec()).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&stream_body(TEST_MODEL)).await;

    // Assert
    let all = SseReader::new(response).rest().await;
    let last = all.last().cloned().unwrap_or_default();
    assert!(last.contains("stream_truncated"), "{all:?}");
    assert!(!all.iter().any(|e| e == "[DONE]"), "{all:?}");
}

#[tokio::test]
async fn unsupported_operations_leave_a_half_open_breaker_half_open() {
    // Arrange: alpha (Anthropic, which has no embeddings) is down; beta serves embeddings.
    let beta = MockServer::start().await;
    mount_chat(&beta, completion(), 1).await;
    mount_embeddings(&beta, 3).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", closed_port_url()).kind("anthropic"))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .settings("routing: {max_retries: 0, circuit_breaker: {failure_threshold: 1, reset_timeout_seconds: 1}}")
        .spawn()
        .await;
    assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 200);
    assert_eq!(app.breaker("alpha").await, "open");
    app.wait_for_breaker("alpha", "half_open").await;

    // Act: embeddings, which alpha cannot do.
    for _ in 0..3 {
        let response = app.post_json("/v1/embeddings", &embeddings_body()).await;
        assert_eq!(response.status(), 200);
        assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    }

    // Assert: nothing judged alpha, so its probe is still to come.
    assert_eq!(app.breaker("alpha").await, "half_open");
    beta.verify().await;
}

#[tokio::test]
async fn six_connection_failures_open_the_breaker_though_unsupported_calls_come_between_them() {
    // Arrange: alpha (Anthropic) refuses connections; embeddings calls it cannot serve are
    // interleaved with chat calls that fail to connect.
    let beta = MockServer::start().await;
    mount_chat(&beta, completion(), 6).await;
    mount_embeddings(&beta, 6).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", closed_port_url()).kind("anthropic"))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .settings("routing: {max_retries: 0, circuit_breaker: {failure_threshold: 6, reset_timeout_seconds: 60}}")
        .spawn()
        .await;

    // Act
    for _ in 0..6 {
        assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 200);
        assert_eq!(app.post_json("/v1/embeddings", &embeddings_body()).await.status(), 200);
    }

    // Assert
    assert_eq!(app.breaker("alpha").await, "open");
    beta.verify().await;
}

#[tokio::test]
async fn a_stream_running_when_the_shutdown_grace_period_ends_is_cut_by_the_gateway_not_the_client() {
    // Arrange: a stream has started and its upstream goes quiet.
    let alpha = SseMock::start().await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .spawn()
        .await;
    let pending = tokio::spawn(app.post_chat(&stream_body(TEST_MODEL)));
    let connection = alpha.next_connection().await;
    connection.send_event(&fixtures::chunk_payloads()[0]);
    let response = pending.await.expect("request task");
    let mut reader = SseReader::new(response);
    assert!(reader.next_data().await.is_some());

    // Act: the grace period ends (what SIGTERM leads to 29 s later).
    app.state.shutdown.end_grace();

    // Assert: the client gets the dialect's error event, and history says the gateway cut it.
    let rest = reader.rest().await;
    let last: Value = serde_json::from_str(rest.last().map_or("null", String::as_str)).expect("JSON event");
    assert_eq!(last["error"]["code"], "stream_shutdown", "{rest:?}");
    assert!(!rest.iter().any(|e| e == "[DONE]"), "{rest:?}");
    let rows = app.history_rows(1).await;
    assert_eq!(rows[0]["status"], "error", "{}", rows[0]);
    let error = rows[0]["error_message"].as_str().unwrap_or_default();
    assert!(error.contains("shutdown") && !error.contains("client"), "{}", rows[0]);
}

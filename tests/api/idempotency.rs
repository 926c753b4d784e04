//! Idempotency: a request repeated with the same `Idempotency-Key` (or the same client
//! `x-request-id`) within `idempotency.ttl_seconds` reaches the upstream once; the repeat waits
//! for or replays the first answer, with `x-ai-gateway-idempotent-replay: true`. Another body
//! under the same key is 422, a repeated stream 409; replicas sharing Redis share the claims.

use std::time::Duration;

use serde_json::{Value, json};
use wiremock::{MockServer, ResponseTemplate};

use crate::helpers::{
    ProviderSpec, TEST_MODEL, TestApp, assert_openai_error, chat_body, completion, failure, fixtures, json, mount_chat,
    stream_body, upstream_url,
};

const REPLAY: &str = "x-ai-gateway-idempotent-replay";

async fn app_with(mock: &MockServer, settings: &str) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(mock)))
        .settings(settings)
        .spawn()
        .await
}

fn redis_settings() -> String {
    format!(
        "{{redis_url: 'redis://127.0.0.1:6379', redis_prefix: 'aigw-idem-{}:'}}",
        uuid::Uuid::now_v7().simple()
    )
}

async fn post(app: &TestApp, path: &str, header: (&str, &str), body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header(header.0, header.1)
        .json(body)
        .send()
        .await
        .expect("POST reaches the gateway")
}

async fn chat_keyed(app: &TestApp, key: &str, body: &Value) -> reqwest::Response {
    post(app, "/v1/chat/completions", ("idempotency-key", key), body).await
}

/// A counter's value in `/metrics` (the whole line prefix, labels included).
async fn metric(app: &TestApp, series: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.expect("metrics text");
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|v| v.trim().parse().ok()))
        .unwrap_or_else(|| panic!("no series `{series}` in /metrics"))
}

fn replayed(response: &reqwest::Response) -> bool {
    response.headers().get(REPLAY).is_some_and(|v| v == "true")
}

#[tokio::test]
async fn the_same_key_twice_calls_the_upstream_once_and_replays_the_answer() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = app_with(&alpha, "{}").await;

    // Act
    let first = chat_keyed(&app, "order-1", &chat_body(TEST_MODEL)).await;
    let second = chat_keyed(&app, "order-1", &chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    assert!(!replayed(&first));
    assert!(replayed(&second));
    assert_eq!(crate::helpers::header(&second, "x-ai-gateway-provider"), "alpha");
    assert_eq!(crate::helpers::header(&second, "content-type"), "application/json");
    let (a, b) = (first.bytes().await.unwrap(), second.bytes().await.unwrap());
    assert_eq!(a, b);
    assert_eq!(
        serde_json::from_slice::<Value>(&a).unwrap(),
        fixtures::json(fixtures::CHAT_COMPLETION)
    );
    assert_eq!(
        metric(&app, "gateway_idempotency_requests_total{result=\"executed\"}").await,
        1
    );
    assert_eq!(
        metric(&app, "gateway_idempotency_requests_total{result=\"replayed\"}").await,
        1
    );
}

#[tokio::test]
async fn concurrent_duplicates_call_the_upstream_once_and_both_get_the_answer() {
    // Arrange: the upstream answers slowly, so the repeat arrives while the first runs.
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion().set_delay(Duration::from_millis(400)), 1).await;
    let app = app_with(&alpha, "{}").await;
    let body = chat_body(TEST_MODEL);

    // Act
    let (a, b, c) = tokio::join!(
        chat_keyed(&app, "same", &body),
        chat_keyed(&app, "same", &body),
        chat_keyed(&app, "same", &body)
    );

    // Assert
    let responses = [a, b, c];
    assert!(responses.iter().all(|r| r.status() == 200));
    assert_eq!(responses.iter().filter(|r| !replayed(r)).count(), 1);
    for r in responses {
        assert_eq!(json(r).await, fixtures::json(fixtures::CHAT_COMPLETION));
    }
}

#[tokio::test]
async fn a_load_balancer_retry_with_the_same_request_id_is_not_executed_twice() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = app_with(&alpha, "{}").await;
    let body = chat_body(TEST_MODEL);

    // Act
    let first = post(&app, "/v1/chat/completions", ("x-request-id", "lb-7f3a"), &body).await;
    let retry = post(&app, "/v1/chat/completions", ("x-request-id", "lb-7f3a"), &body).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(retry.status(), 200);
    assert!(replayed(&retry));
    assert_eq!(crate::helpers::header(&retry, "x-request-id"), "lb-7f3a");
}

#[tokio::test]
async fn the_same_request_id_with_another_body_is_another_request() {
    // Arrange: a client that sends one correlation id with several requests.
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = app_with(&alpha, "{}").await;
    let mut other = chat_body(TEST_MODEL);
    other["messages"][0]["content"] = json!("Something else");

    // Act
    let first = post(
        &app,
        "/v1/chat/completions",
        ("x-request-id", "session-1"),
        &chat_body(TEST_MODEL),
    )
    .await;
    let second = post(&app, "/v1/chat/completions", ("x-request-id", "session-1"), &other).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    assert!(!replayed(&second));
}

#[tokio::test]
async fn requests_without_a_key_or_request_id_of_their_own_all_run() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = app_with(&alpha, "{}").await;

    // Act
    let first = app.post_chat(&chat_body(TEST_MODEL)).await;
    let second = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert!(!replayed(&first) && !replayed(&second));
}

#[tokio::test]
async fn the_same_key_with_another_body_is_refused_422_in_the_clients_dialect() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = app_with(&alpha, "{}").await;
    let mut other = chat_body(TEST_MODEL);
    other["messages"][0]["content"] = json!("Something else");
    let messages = json!({"model": TEST_MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});
    let mut other_messages = messages.clone();
    other_messages["max_tokens"] = json!(32);

    // Act
    let first = chat_keyed(&app, "k-1", &chat_body(TEST_MODEL)).await;
    let reused = chat_keyed(&app, "k-1", &other).await;
    let first_messages = post(&app, "/v1/messages", ("idempotency-key", "k-2"), &messages).await;
    let reused_messages = post(&app, "/v1/messages", ("idempotency-key", "k-2"), &other_messages).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(reused.status(), 422);
    let body = json(reused).await;
    let error = assert_openai_error(&body);
    assert_eq!(error["code"], "idempotency_key_reused");
    assert!(error["message"].as_str().unwrap().contains("new idempotency-key"));
    assert_eq!(first_messages.status(), 200);
    assert_eq!(reused_messages.status(), 422);
    let body = json(reused_messages).await;
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn a_repeated_stream_is_refused_409_and_never_run_twice() {
    // Arrange
    let alpha = MockServer::start().await;
    let stream = ResponseTemplate::new(200).set_body_raw(fixtures::CHAT_COMPLETION_CHUNKS, "text/event-stream");
    mount_chat(&alpha, stream, 1).await;
    let app = app_with(&alpha, "{}").await;

    // Act
    let first = chat_keyed(&app, "s-1", &stream_body(TEST_MODEL)).await;
    let first_text = first.text().await.unwrap();
    let repeat = chat_keyed(&app, "s-1", &stream_body(TEST_MODEL)).await;

    // Assert
    assert!(first_text.contains("[DONE]"));
    assert_eq!(repeat.status(), 409);
    let body = json(repeat).await;
    assert_eq!(assert_openai_error(&body)["code"], "idempotency_stream_not_replayable");
}

#[tokio::test]
async fn a_failed_first_attempt_leaves_the_key_free_for_the_retry() {
    // Arrange: the upstream fails once, then answers.
    let alpha = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(failure(503))
        .up_to_n_times(1)
        .with_priority(1)
        .mount(&alpha)
        .await;
    mount_chat(&alpha, completion(), 1).await;
    let app = app_with(&alpha, "{routing: {max_retries: 0}}").await;

    // Act
    let failed = chat_keyed(&app, "f-1", &chat_body(TEST_MODEL)).await;
    let retry = chat_keyed(&app, "f-1", &chat_body(TEST_MODEL)).await;

    // Assert
    assert!(failed.status().is_server_error());
    assert_eq!(retry.status(), 200);
    assert!(!replayed(&retry));
}

#[tokio::test]
async fn after_the_ttl_the_same_key_runs_again() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = app_with(&alpha, "{idempotency: {ttl_seconds: 1}}").await;

    // Act
    let first = chat_keyed(&app, "t-1", &chat_body(TEST_MODEL)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = chat_keyed(&app, "t-1", &chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(later.status(), 200);
    assert!(!replayed(&later));
}

#[tokio::test]
async fn a_ttl_of_zero_turns_deduplication_off() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let app = app_with(&alpha, "{idempotency: {ttl_seconds: 0}}").await;

    // Act
    let first = chat_keyed(&app, "z-1", &chat_body(TEST_MODEL)).await;
    let second = chat_keyed(&app, "z-1", &chat_body(TEST_MODEL)).await;

    // Assert
    assert!(!replayed(&first) && !replayed(&second));
}

#[tokio::test]
async fn replicas_sharing_redis_run_a_repeated_request_once() {
    // Arrange: two gateways on one Redis and prefix; the upstream is slow, so the repeat on the
    // other replica arrives while the first runs, and a third comes after it finished.
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion().set_delay(Duration::from_millis(400)), 1).await;
    let settings = redis_settings();
    let a = app_with(&alpha, &settings).await;
    let b = app_with(&alpha, &settings).await;
    tokio::time::sleep(Duration::from_millis(300)).await; // both links connect in the background
    let body = chat_body(TEST_MODEL);

    // Act
    let (first, during) = tokio::join!(chat_keyed(&a, "r-1", &body), async {
        tokio::time::sleep(Duration::from_millis(100)).await;
        chat_keyed(&b, "r-1", &body).await
    });
    let after = post(&b, "/v1/chat/completions", ("idempotency-key", "r-1"), &body).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(during.status(), 200);
    assert!(!replayed(&first));
    assert!(replayed(&during) && replayed(&after));
    assert_eq!(json(during).await, fixtures::json(fixtures::CHAT_COMPLETION));
    assert_eq!(json(after).await, fixtures::json(fixtures::CHAT_COMPLETION));
}

#[tokio::test]
async fn a_redis_that_is_down_is_counted_and_the_replica_decides_alone() {
    // Arrange: nothing listens on port 1.
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 1).await;
    let app = app_with(
        &alpha,
        "{redis_url: 'redis://127.0.0.1:1', redis_prefix: 'aigw-idem-down:'}",
    )
    .await;

    // Act
    let first = chat_keyed(&app, "d-1", &chat_body(TEST_MODEL)).await;
    let second = chat_keyed(&app, "d-1", &chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert_eq!(second.status(), 200);
    assert!(replayed(&second));
    assert!(metric(&app, "gateway_idempotency_redis_errors_total").await >= 2);
}

#[tokio::test]
async fn through_redis_the_same_key_runs_again_after_the_ttl() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 2).await;
    let settings = redis_settings().replace('}', ", idempotency: {ttl_seconds: 1}}");
    let a = app_with(&alpha, &settings).await;
    let b = app_with(&alpha, &settings).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Act
    let first = chat_keyed(&a, "rt-1", &chat_body(TEST_MODEL)).await;
    let replay = chat_keyed(&b, "rt-1", &chat_body(TEST_MODEL)).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = chat_keyed(&b, "rt-1", &chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(first.status(), 200);
    assert!(replayed(&replay));
    assert_eq!(later.status(), 200);
    assert!(!replayed(&later));
}

#[tokio::test]
async fn embeddings_and_messages_are_replayed_too() {
    // Arrange: one OpenAI upstream; `/v1/messages` reaches it translated to chat.
    let alpha = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/v1/embeddings"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixtures::EMBEDDINGS, "application/json"))
        .expect(1)
        .mount(&alpha)
        .await;
    mount_chat(&alpha, completion(), 1).await;
    let app = app_with(&alpha, "{}").await;
    let embeddings = json!({"model": TEST_MODEL, "input": "The food was delicious"});
    let messages = json!({"model": TEST_MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}]});

    // Act
    let e1 = post(&app, "/v1/embeddings", ("idempotency-key", "e"), &embeddings).await;
    let e2 = post(&app, "/v1/embeddings", ("idempotency-key", "e"), &embeddings).await;
    let m1 = post(&app, "/v1/messages", ("idempotency-key", "m"), &messages).await;
    let m2 = post(&app, "/v1/messages", ("idempotency-key", "m"), &messages).await;

    // Assert
    assert!(replayed(&e2) && replayed(&m2));
    assert_eq!(json(e1).await, json(e2).await);
    let (m1, m2) = (json(m1).await, json(m2).await);
    assert_eq!(m1["type"], "message");
    assert_eq!(m1, m2);
}

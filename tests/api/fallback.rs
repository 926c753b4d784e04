//! Retries and fallback, one failure class at a time: which failures are retried on the same
//! provider (`1 + max_retries` calls), which move on at once, which go straight back to the
//! client, and what the client gets when everything failed. Call counts are exact (`expect`).

use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, Request, Respond, ResponseTemplate};

use crate::helpers::{
    ProviderSpec, TEST_MODEL, TestApp, assert_openai_error, chat_body, closed_port_url, completion, failure, fixtures,
    header, json, mount_chat, upstream_url,
};

/// Two providers, `alpha` first, with `max_retries: 2` (so up to three calls each).
async fn two_provider_app(alpha_url: String, beta: &MockServer) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha_url))
        .provider(ProviderSpec::new("beta", upstream_url(beta)))
        .settings("routing: {max_retries: 2}")
        .spawn()
        .await
}

/// `alpha` answers `response` every time: it must be called exactly three times (one call and
/// two retries) before `beta` answers, and the client sees four upstream calls.
async fn assert_retried_then_next_provider_answers(response: ResponseTemplate) {
    // Arrange
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_chat(&alpha, response, 3).await;
    mount_chat(&beta, completion(), 1).await;
    let app = two_provider_app(upstream_url(&alpha), &beta).await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "4");
    assert_eq!(json(response).await, fixtures::json(fixtures::CHAT_COMPLETION));
}

/// `alpha` answers `response` once and is not retried although retries are allowed: the next
/// provider is called at once.
async fn assert_next_provider_is_called_at_once(response: ResponseTemplate) {
    // Arrange
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_chat(&alpha, response, 1).await;
    mount_chat(&beta, completion(), 1).await;
    let app = two_provider_app(upstream_url(&alpha), &beta).await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
}

/// `alpha` rejects the client's input with `status`: the client gets that status and alpha's own
/// error fields, and `beta` is never asked.
async fn assert_client_fault_is_returned_as_is(status: u16) {
    // Arrange
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_chat(&alpha, failure(status), 1).await;
    mount_chat(&beta, completion(), 0).await;
    let app = two_provider_app(upstream_url(&alpha), &beta).await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), status);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "alpha");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "1");
    let body = json(response).await;
    let error = assert_openai_error(&body);
    let upstream = fixtures::json(fixtures::ERROR_400);
    assert_eq!(error["message"], upstream["error"]["message"]);
    assert_eq!(error["type"], upstream["error"]["type"]);
    assert_eq!(error["param"], upstream["error"]["param"]);
    assert_eq!(error["code"], upstream["error"]["code"]);
}

#[tokio::test]
async fn server_error_500_is_retried_max_retries_times_then_next_provider_answers() {
    assert_retried_then_next_provider_answers(failure(500)).await;
}

#[tokio::test]
async fn rate_limit_429_is_retried_max_retries_times_then_next_provider_answers() {
    assert_retried_then_next_provider_answers(failure(429)).await;
}

#[tokio::test]
async fn request_timeout_408_is_retried_max_retries_times_then_next_provider_answers() {
    assert_retried_then_next_provider_answers(failure(408)).await;
}

#[tokio::test]
async fn malformed_2xx_without_choices_is_retried_then_next_provider_answers() {
    assert_retried_then_next_provider_answers(
        ResponseTemplate::new(200).set_body_raw(r#"{"foo":1}"#, "application/json"),
    )
    .await;
}

#[tokio::test]
async fn truncated_2xx_json_is_retried_then_next_provider_answers() {
    let truncated = &fixtures::CHAT_COMPLETION[..fixtures::CHAT_COMPLETION.len() / 2];
    assert_retried_then_next_provider_answers(ResponseTemplate::new(200).set_body_raw(truncated, "application/json"))
        .await;
}

#[tokio::test]
async fn connection_refused_is_retried_then_next_provider_answers() {
    // Arrange
    let beta = MockServer::start().await;
    mount_chat(&beta, completion(), 1).await;
    let app = two_provider_app(closed_port_url(), &beta).await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert: three refused connection attempts on alpha count as calls, then beta answers.
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "4");
}

#[tokio::test]
async fn upstream_slower_than_timeout_moves_to_the_next_provider_without_a_retry() {
    // Arrange: alpha would answer long after the one-second attempt timeout. It is working on the
    // request (a long generation): the same request would take as long again, so it is not retried.
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_chat(&alpha, completion().set_delay(Duration::from_secs(30)), 1).await;
    mount_chat(&beta, completion(), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .settings("routing: {max_retries: 1, timeout_seconds: 1}")
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    alpha.verify().await;
}

/// Answers with `response` and reports when each call arrived.
struct Timed {
    calls: mpsc::UnboundedSender<Instant>,
    response: ResponseTemplate,
}

impl Respond for Timed {
    fn respond(&self, _: &Request) -> ResponseTemplate {
        let _ = self.calls.send(Instant::now());
        self.response.clone()
    }
}

#[tokio::test]
async fn retry_after_on_429_is_waited_out_before_the_retry() {
    // Arrange: backoff alone would wait a millisecond or two; Retry-After asks for a second.
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    let (calls, mut arrivals) = mpsc::unbounded_channel();
    let response = failure(429).insert_header("retry-after", "1");
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(Timed { calls, response })
        .expect(2)
        .mount(&alpha)
        .await;
    mount_chat(&beta, completion(), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .settings("routing: {max_retries: 1}")
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert: the retry came no sooner than the upstream asked (a lower bound, never flaky).
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "3");
    let first = arrivals.recv().await.expect("first call");
    let second = arrivals.recv().await.expect("retry");
    assert!(
        second - first >= Duration::from_secs(1),
        "retried after {:?}, before Retry-After elapsed",
        second - first
    );
}

#[tokio::test]
async fn unauthorized_401_moves_to_next_provider_at_once() {
    assert_next_provider_is_called_at_once(failure(401)).await;
}

#[tokio::test]
async fn forbidden_403_moves_to_next_provider_at_once() {
    assert_next_provider_is_called_at_once(failure(403)).await;
}

#[tokio::test]
async fn not_found_404_moves_to_next_provider_at_once() {
    assert_next_provider_is_called_at_once(failure(404)).await;
}

#[tokio::test]
async fn bad_request_400_is_returned_as_is_and_next_provider_is_not_called() {
    assert_client_fault_is_returned_as_is(400).await;
}

#[tokio::test]
async fn payload_too_large_413_is_returned_as_is_and_next_provider_is_not_called() {
    assert_client_fault_is_returned_as_is(413).await;
}

#[tokio::test]
async fn unprocessable_422_is_returned_as_is_and_next_provider_is_not_called() {
    assert_client_fault_is_returned_as_is(422).await;
}

#[tokio::test]
async fn first_provider_500_falls_back_to_second_provider() {
    // Arrange: no retries, so one call each.
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_chat(&alpha, failure(500), 1).await;
    mount_chat(&beta, completion(), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    assert_eq!(json(response).await, fixtures::json(fixtures::CHAT_COMPLETION));
}

#[tokio::test]
async fn when_every_provider_fails_the_client_gets_502_naming_each_attempt() {
    // Arrange
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    let secret = r#"{"error":{"message":"internal trace: db password hunter2"}}"#;
    mount_chat(
        &alpha,
        ResponseTemplate::new(500).set_body_raw(secret, "application/json"),
        2,
    )
    .await;
    mount_chat(
        &beta,
        ResponseTemplate::new(503).set_body_raw(secret, "application/json"),
        2,
    )
    .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .settings("routing: {max_retries: 1}")
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 502);
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "4");
    let body = json(response).await;
    let error = assert_openai_error(&body);
    assert_eq!(error["code"], "all_providers_failed");
    assert_eq!(error["type"], "server_error");
    let message = error["message"].as_str().expect("message");
    assert_eq!(message.matches("alpha (server_error) HTTP 500").count(), 2, "{message}");
    assert_eq!(message.matches("beta (server_error) HTTP 503").count(), 2, "{message}");
    assert!(
        !body.to_string().contains("hunter2"),
        "raw upstream body leaked: {body}"
    );
}

#[tokio::test]
async fn dns_failure_falls_back_to_the_next_provider() {
    // Arrange: `.invalid` never resolves (RFC 2606).
    let beta = MockServer::start().await;
    mount_chat(&beta, completion(), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", "http://no-such-host.invalid/v1"))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
}

#[tokio::test]
async fn tls_failure_falls_back_to_the_next_provider() {
    // Arrange: https to a server that speaks plain HTTP: the TLS handshake fails.
    let (plain, beta) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&beta, completion(), 1).await;
    let https_to_plain = format!("{}/v1", plain.uri().replace("http://", "https://"));
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", https_to_plain))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
}

//! Per-provider circuit breakers, observed from outside: which providers get called, and what
//! `/health` reports, as a breaker opens, skips, lets one probe through and closes.

use wiremock::MockServer;

use crate::helpers::{
    ProviderSpec, SseMock, TEST_MODEL, TestApp, assert_openai_error, chat_body, completion, failure, fixtures, header,
    json, mount_chat, upstream_url,
};

/// `alpha` then `beta`, no retries, with these breaker settings.
async fn two_provider_app(alpha_url: String, beta: &MockServer, breaker: &str) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha_url))
        .provider(ProviderSpec::new("beta", upstream_url(beta)))
        .settings(&format!("routing: {{circuit_breaker: {breaker}}}"))
        .spawn()
        .await
}

#[tokio::test]
async fn breaker_opens_after_threshold_consecutive_failed_attempts() {
    // Arrange: one request makes three failed attempts (a call and two retries).
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_chat(&alpha, failure(500), 3).await;
    mount_chat(&beta, completion(), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .settings("routing: {max_retries: 2, circuit_breaker: {failure_threshold: 3, reset_timeout_seconds: 60}}")
        .spawn()
        .await;
    assert_eq!(app.breaker("alpha").await, "closed");

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(app.breaker("alpha").await, "open");
    assert_eq!(app.breaker("beta").await, "closed");
}

#[tokio::test]
async fn open_breaker_skips_provider_without_calling_it() {
    // Arrange: two failures open alpha's breaker for a minute.
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_chat(&alpha, failure(500), 2).await;
    mount_chat(&beta, completion(), 3).await;
    let app = two_provider_app(
        upstream_url(&alpha),
        &beta,
        "{failure_threshold: 2, reset_timeout_seconds: 60}",
    )
    .await;
    for _ in 0..2 {
        assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 200);
    }
    alpha.verify().await;
    alpha.reset().await;
    // A healthy alpha now, which must still not be called.
    mount_chat(&alpha, completion(), 0).await;
    assert_eq!(app.breaker("alpha").await, "open");

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert: a skip is not an attempt.
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "1");
}

#[tokio::test]
async fn breaker_opens_skips_then_probes_after_reset_and_closes_on_success() {
    // Arrange
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_chat(&alpha, failure(500), 2).await;
    mount_chat(&beta, completion(), 3).await;
    let app = two_provider_app(
        upstream_url(&alpha),
        &beta,
        "{failure_threshold: 2, reset_timeout_seconds: 1.5}",
    )
    .await;
    assert_eq!(app.breaker("alpha").await, "closed");

    // Act 1: two failed attempts open the breaker.
    for _ in 0..2 {
        assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 200);
    }
    // Assert 1
    assert_eq!(app.breaker("alpha").await, "open");
    alpha.verify().await;
    alpha.reset().await;
    mount_chat(&alpha, completion(), 0).await;

    // Act 2: while open, alpha is skipped.
    let skipped = app.post_chat(&chat_body(TEST_MODEL)).await;
    // Assert 2
    assert_eq!(header(&skipped, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&skipped, "x-ai-gateway-attempts"), "1");
    alpha.verify().await;
    alpha.reset().await;
    mount_chat(&alpha, completion(), 1).await;

    // Act 3: after the reset timeout one probe reaches alpha and succeeds.
    app.wait_for_breaker("alpha", "half_open").await;
    let probe = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert 3
    assert_eq!(probe.status(), 200);
    assert_eq!(header(&probe, "x-ai-gateway-provider"), "alpha");
    assert_eq!(app.breaker("alpha").await, "closed");
}

#[tokio::test]
async fn half_open_breaker_admits_exactly_one_probe() {
    // Arrange: alpha holds its answers until told, so the probe stays in flight as long as needed.
    let alpha = SseMock::start_with_content_type("application/json").await;
    let beta = MockServer::start().await;
    mount_chat(&beta, completion(), 2).await;
    let app = two_provider_app(
        alpha.base_url(),
        &beta,
        "{failure_threshold: 1, reset_timeout_seconds: 0.3}",
    )
    .await;
    let opening = tokio::spawn(app.post_chat(&chat_body(TEST_MODEL)));
    let broken = alpha.next_connection().await;
    broken.send_raw(r#"{"foo":1}"#);
    broken.finish();
    assert_eq!(opening.await.expect("request task").status(), 200);
    app.wait_for_breaker("alpha", "half_open").await;

    // Act: the probe reaches alpha and waits there; a second request arrives meanwhile.
    let probe = tokio::spawn(app.post_chat(&chat_body(TEST_MODEL)));
    let probe_upstream = alpha.next_connection().await;
    let second = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert: the second request skipped alpha.
    assert_eq!(second.status(), 200);
    assert_eq!(header(&second, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&second, "x-ai-gateway-attempts"), "1");
    assert_eq!(alpha.requests(), 2, "only the probe reached alpha");

    // Act: the probe succeeds.
    probe_upstream.send_raw(fixtures::CHAT_COMPLETION);
    probe_upstream.finish();
    let probe = probe.await.expect("request task");

    // Assert
    assert_eq!(probe.status(), 200);
    assert_eq!(header(&probe, "x-ai-gateway-provider"), "alpha");
    assert_eq!(app.breaker("alpha").await, "closed");
}

#[tokio::test]
async fn failed_probe_opens_the_breaker_again() {
    // Arrange
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_chat(&alpha, failure(500), 2).await;
    mount_chat(&beta, completion(), 2).await;
    let app = two_provider_app(
        upstream_url(&alpha),
        &beta,
        "{failure_threshold: 1, reset_timeout_seconds: 1}",
    )
    .await;
    assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 200);
    app.wait_for_breaker("alpha", "half_open").await;

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert: the probe was an attempt on alpha, then beta answered, and alpha is open again.
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    assert_eq!(app.breaker("alpha").await, "open");
}

#[tokio::test]
async fn client_errors_400_do_not_trip_the_breaker() {
    // Arrange: a threshold of one failure.
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_chat(&alpha, failure(400), 3).await;
    mount_chat(&beta, completion(), 0).await;
    let app = two_provider_app(
        upstream_url(&alpha),
        &beta,
        "{failure_threshold: 1, reset_timeout_seconds: 60}",
    )
    .await;

    // Act
    for _ in 0..3 {
        assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 400);
    }

    // Assert: every request still reached alpha, and its breaker stayed closed.
    assert_eq!(app.breaker("alpha").await, "closed");
}

#[tokio::test]
async fn when_every_breaker_is_open_the_client_gets_503_with_retry_after() {
    // Arrange: one failure each opens both breakers for a minute.
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_chat(&alpha, failure(500), 1).await;
    mount_chat(&beta, failure(500), 1).await;
    let app = two_provider_app(
        upstream_url(&alpha),
        &beta,
        "{failure_threshold: 1, reset_timeout_seconds: 60}",
    )
    .await;
    assert_eq!(app.post_chat(&chat_body(TEST_MODEL)).await.status(), 502);

    // Act
    let response = app.post_chat(&chat_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 503);
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "0");
    let retry_after: u64 = header(&response, "retry-after")
        .parse()
        .expect("Retry-After in seconds");
    assert!(
        (1..=60).contains(&retry_after),
        "Retry-After {retry_after} is within the reset timeout"
    );
    let body = json(response).await;
    let error = assert_openai_error(&body);
    assert_eq!(error["code"], "providers_unavailable");
}

//! `POST /v1/chat/completions` with `stream: true`: events are relayed as they arrive; before the
//! first chunk any failure falls over, after it a broken upstream ends the stream with a final
//! error event and no `[DONE]`.

use std::time::Duration;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use wiremock::MockServer;

use crate::helpers::{
    Connection, ProviderSpec, SseMock, SseReader, TEST_MODEL, TestApp, assert_openai_error, failure, fixtures, header,
    mount_chat, stream_body, upstream_url,
};

fn parse(data: &str) -> Value {
    serde_json::from_str(data).expect("event data is JSON")
}

fn fixture_events() -> Vec<String> {
    fixtures::chunk_payloads()
}

async fn one_provider_app(upstream: &SseMock, settings: &str) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream.base_url()))
        .settings(settings)
        .spawn()
        .await
}

/// Starts a stream on `app`, makes the upstream send the fixture's first event, and returns the
/// upstream connection with the client reader positioned after that event.
async fn started_stream(app: &TestApp, upstream: &SseMock) -> (Connection, SseReader) {
    let pending = tokio::spawn(app.post_chat(&stream_body(TEST_MODEL)));
    let connection = upstream.next_connection().await;
    connection.send_event(&fixture_events()[0]);
    let response = pending.await.expect("request task");
    assert_eq!(response.status(), 200);
    let mut reader = SseReader::new(response);
    assert_eq!(reader.next_json().await, parse(&fixture_events()[0]));
    (connection, reader)
}

/// The final event of a stream cut after it started: an OpenAI-shaped error, then the end.
async fn assert_ends_with_error_event(mut reader: SseReader, code: &str) {
    let last = reader.next_json().await;
    let error = assert_openai_error(&last);
    assert_eq!(error["type"], "server_error");
    assert_eq!(error["code"], code);
    assert!(error["message"].as_str().expect("message").contains("alpha"), "{last}");
    let rest = reader.rest().await;
    assert!(rest.is_empty(), "nothing follows the error event, no [DONE]: {rest:?}");
}

#[tokio::test]
async fn stream_reaches_client_chunk_by_chunk() {
    // Arrange
    let alpha = SseMock::start().await;
    let app = one_provider_app(&alpha, "{}").await;
    let events = fixture_events();
    let (upstream, mut reader) = started_stream(&app, &alpha).await;

    // Act + Assert: each event reaches the client before the upstream is told to send the next.
    for event in &events[1..events.len() - 1] {
        upstream.send_event(event);
        assert_eq!(reader.next_json().await, parse(event));
    }
    upstream.send_done();
    assert_eq!(reader.next_data().await.as_deref(), Some("[DONE]"));
    upstream.finish();
    assert_eq!(reader.next_data().await, None);
}

#[tokio::test]
async fn stream_relays_every_event_and_done_with_gateway_headers() {
    // Arrange
    let alpha = SseMock::start().await;
    alpha.autoplay_raw(fixtures::chunk_events()).await;
    let app = one_provider_app(&alpha, "{}").await;

    // Act
    let response = app.post_chat(&stream_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, CONTENT_TYPE.as_str()), "text/event-stream");
    assert_eq!(header(&response, "x-ai-gateway-provider"), "alpha");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "1");
    assert_eq!(SseReader::new(response).rest().await, fixture_events());
}

#[tokio::test]
async fn stream_request_reaches_upstream_byte_for_byte_with_the_provider_key() {
    // Arrange
    let alpha = SseMock::start().await;
    alpha.autoplay_raw(fixtures::chunk_events()).await;
    let app = one_provider_app(&alpha, "{}").await;
    let body = r#"{"model":"gpt-test","stream":true,"messages":[{"role":"user","content":"Hi"}],"top_k":3}"#;

    // Act
    let response = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header(AUTHORIZATION, "Bearer client-key")
        .header(CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await
        .expect("POST");
    assert_eq!(response.status(), 200);
    let request_id = header(&response, "x-request-id");
    drop(SseReader::new(response).rest().await);

    // Assert
    // The gateway asks for the usage chunk (issue 3) and changes nothing else.
    let request = alpha.next_connection().await.request;
    assert_eq!(request.path, "/v1/chat/completions");
    let expected = body.replacen('{', r#"{"stream_options":{"include_usage":true},"#, 1);
    assert_eq!(String::from_utf8_lossy(&request.body), expected);
    let expected_key = format!("Bearer {}", ProviderSpec::key_for("alpha"));
    assert_eq!(request.header("authorization"), Some(expected_key.as_str()));
    assert_eq!(request.header("x-request-id"), Some(request_id.as_str()));
}

#[tokio::test]
async fn stream_falls_over_when_no_first_chunk_arrives_in_time() {
    // Arrange: alpha answers 200 and then says nothing; beta streams at once.
    let alpha = SseMock::start().await;
    let beta = SseMock::start().await;
    beta.autoplay_raw(fixtures::chunk_events()).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .provider(ProviderSpec::new("beta", beta.base_url()))
        .settings("routing: {first_token_timeout_seconds: 1}")
        .spawn()
        .await;

    // Act
    let pending = tokio::spawn(app.post_chat(&stream_body(TEST_MODEL)));
    let stalled = alpha.next_connection().await;
    let response = pending.await.expect("request task");

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    assert_eq!(SseReader::new(response).rest().await, fixture_events());
    // The abandoned upstream request was hung up, not left open.
    stalled.closed().await;
}

#[tokio::test]
async fn stream_falls_over_when_the_first_event_is_an_in_band_error() {
    // Arrange
    let alpha = SseMock::start().await;
    alpha
        .autoplay_raw(vec![
            "data: {\"error\":{\"message\":\"model overloaded\",\"type\":\"server_error\"}}\n\n".to_owned(),
        ])
        .await;
    let beta = SseMock::start().await;
    beta.autoplay_raw(fixtures::chunk_events()).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .provider(ProviderSpec::new("beta", beta.base_url()))
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&stream_body(TEST_MODEL)).await;

    // Assert: the client sees beta's stream only, none of alpha's error.
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    assert_eq!(SseReader::new(response).rest().await, fixture_events());
}

#[tokio::test]
async fn stream_falls_over_when_the_first_provider_answers_500() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, failure(500), 1).await;
    let beta = SseMock::start().await;
    beta.autoplay_raw(fixtures::chunk_events()).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", beta.base_url()))
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&stream_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    assert_eq!(SseReader::new(response).rest().await, fixture_events());
}

#[tokio::test]
async fn stream_failure_before_the_first_chunk_is_retried_on_the_same_provider() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, failure(503), 2).await;
    let beta = SseMock::start().await;
    beta.autoplay_raw(fixtures::chunk_events()).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", beta.base_url()))
        .settings("routing: {max_retries: 1}")
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&stream_body(TEST_MODEL)).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "3");
    assert_eq!(SseReader::new(response).rest().await, fixture_events());
}

#[tokio::test]
async fn stream_that_fails_everywhere_before_starting_gets_502_json() {
    // Arrange
    let alpha = MockServer::start().await;
    let beta = MockServer::start().await;
    mount_chat(&alpha, failure(500), 1).await;
    mount_chat(&beta, failure(500), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .spawn()
        .await;

    // Act
    let response = app.post_chat(&stream_body(TEST_MODEL)).await;

    // Assert: nothing was streamed yet, so the client gets a plain error response.
    assert_eq!(response.status(), 502);
    assert_eq!(header(&response, CONTENT_TYPE.as_str()), "application/json");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    let body: Value = response.json().await.expect("JSON error body");
    assert_eq!(assert_openai_error(&body)["code"], "all_providers_failed");
}

#[tokio::test]
async fn stream_cut_after_first_chunk_ends_with_error_event_and_no_done() {
    // Arrange: beta is healthy but must not be used once alpha's stream has started.
    let alpha = SseMock::start().await;
    let beta = SseMock::start().await;
    beta.autoplay_raw(fixtures::chunk_events()).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .provider(ProviderSpec::new("beta", beta.base_url()))
        .settings("routing: {max_retries: 2}")
        .spawn()
        .await;
    let (upstream, mut reader) = started_stream(&app, &alpha).await;
    upstream.send_event(&fixture_events()[1]);
    assert_eq!(reader.next_json().await, parse(&fixture_events()[1]));

    // Act
    upstream.cut();

    // Assert
    assert_ends_with_error_event(reader, "stream_upstream_error").await;
    assert_eq!(alpha.requests(), 1, "no retry after the stream started");
    assert_eq!(beta.requests(), 0, "no fallback after the stream started");
}

#[tokio::test]
async fn stream_eof_without_done_ends_with_error_event() {
    // Arrange
    let alpha = SseMock::start().await;
    let app = one_provider_app(&alpha, "{}").await;
    let (upstream, reader) = started_stream(&app, &alpha).await;

    // Act: a clean end of the HTTP body, but no [DONE].
    upstream.finish();

    // Assert
    assert_ends_with_error_event(reader, "stream_truncated").await;
}

#[tokio::test]
async fn stream_cut_right_after_done_ends_cleanly_without_error_event() {
    // Arrange
    let alpha = SseMock::start().await;
    let app = one_provider_app(&alpha, "{}").await;
    let (upstream, reader) = started_stream(&app, &alpha).await;

    // Act: [DONE] arrives, then the connection drops before the HTTP body is closed properly.
    upstream.send_done();
    upstream.cut();

    // Assert: the stream was complete; nothing is reported as broken after [DONE].
    assert_eq!(reader.rest().await, ["[DONE]"]);
}

#[tokio::test]
async fn stream_ends_at_done_even_when_the_upstream_keeps_the_connection_open() {
    // Arrange: a long idle timeout, so only [DONE] can end the stream within the test's wait.
    let alpha = SseMock::start().await;
    let app = one_provider_app(&alpha, "routing: {stream_idle_timeout_seconds: 60}").await;
    let (upstream, reader) = started_stream(&app, &alpha).await;

    // Act: [DONE] arrives and the upstream lingers without ending its body.
    upstream.send_done();

    // Assert: the client's stream ends at [DONE] and the upstream connection is let go.
    assert_eq!(reader.rest().await, ["[DONE]"]);
    upstream.closed().await;
}

#[tokio::test]
async fn stream_idle_after_first_chunk_ends_with_error_event() {
    // Arrange
    let alpha = SseMock::start().await;
    let app = one_provider_app(&alpha, "routing: {stream_idle_timeout_seconds: 0.5}").await;
    let (upstream, reader) = started_stream(&app, &alpha).await;

    // Act: the upstream says nothing more.

    // Assert
    assert_ends_with_error_event(reader, "stream_idle_timeout").await;
    upstream.closed().await;
}

#[tokio::test]
async fn client_disconnect_cancels_the_upstream_stream() {
    // Arrange
    let alpha = SseMock::start().await;
    let app = one_provider_app(&alpha, "{}").await;
    let (upstream, reader) = started_stream(&app, &alpha).await;

    // Act: the client goes away mid-stream.
    drop(reader);

    // Assert: the gateway hangs up on the upstream. It may only notice the client is gone when a
    // write fails, so the upstream keeps producing until then.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !upstream.is_closed() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the upstream stream stayed open after the client left"
        );
        upstream.send_event(&fixture_events()[1]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn stream_request_that_asks_for_usage_itself_reaches_upstream_byte_for_byte() {
    // Arrange
    let alpha = SseMock::start().await;
    alpha.autoplay_raw(fixtures::chunk_events()).await;
    let app = one_provider_app(&alpha, "{}").await;
    let body = r#"{"model":"gpt-test","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"Hi"}],"x":1}"#;

    // Act
    let response = app.post_raw("/v1/chat/completions", body).await;
    assert_eq!(response.status(), 200);
    drop(SseReader::new(response).rest().await);

    // Assert
    let request = alpha.next_connection().await.request;
    assert_eq!(String::from_utf8_lossy(&request.body), body);
}

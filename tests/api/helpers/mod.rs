//! Test harness: the gateway in-process on port 0 (`app`), upstreams that answer on command
//! (`sse_mock`), GPU nodes speaking each runtime's formats (`mock_node`), a client-side SSE reader
//! (`sse_reader`) and OpenAI fixtures (`fixtures`).
//!
//! Tests speak to the gateway over real HTTP and assert on parsed JSON, never on strings.

mod app;
pub mod db;
pub mod fixtures;
mod mock_node;
mod sse_mock;
mod sse_reader;
pub mod tcp_proxy;

pub use app::{Database, ProviderSpec, TEST_MODEL, TestApp, TestAppBuilder, closed_port_url, upstream_url};
pub use mock_node::{MockNode, Runtime};
pub use sse_mock::{Connection, SseMock};
pub use sse_reader::SseReader;

use serde_json::Value;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

/// 200 with the chat completion fixture.
pub fn completion() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_raw(fixtures::CHAT_COMPLETION, "application/json")
}

/// `status` with the OpenAI error fixture as body.
pub fn failure(status: u16) -> ResponseTemplate {
    ResponseTemplate::new(status).set_body_raw(fixtures::ERROR_400, "application/json")
}

/// Answers `POST /v1/chat/completions` on `server` with `response`, expecting exactly `calls`
/// calls (checked when the server drops at the end of the test).
pub async fn mount_chat(server: &MockServer, response: ResponseTemplate, calls: impl Into<wiremock::Times>) {
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(response)
        .expect(calls)
        .named("POST /v1/chat/completions")
        .mount(server)
        .await;
}

/// The requests `server` received (request recording is on by default).
pub async fn received(server: &MockServer) -> Vec<wiremock::Request> {
    server.received_requests().await.expect("wiremock records requests")
}

/// A minimal valid chat request for `model`.
pub fn chat_body(model: &str) -> Value {
    serde_json::json!({
        "model": model,
        "messages": [{"role": "user", "content": "Hello!"}]
    })
}

/// A minimal valid streamed chat request for `model`.
pub fn stream_body(model: &str) -> Value {
    let mut body = chat_body(model);
    body["stream"] = Value::Bool(true);
    body
}

/// A response header as text; panics with the header's name when it is missing.
pub fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .unwrap_or_else(|| panic!("response has no `{name}` header"))
        .to_str()
        .expect("header is ASCII")
        .to_owned()
}

/// Reads the body as JSON.
pub async fn json(response: reqwest::Response) -> Value {
    response.json().await.expect("response body is JSON")
}

/// Checks the OpenAI error shape (`message`, `type`, and `param`/`code` present even when null)
/// and returns the inner `error` object.
pub fn assert_openai_error(body: &Value) -> &Value {
    let error = body
        .get("error")
        .unwrap_or_else(|| panic!("no `error` object in {body}"));
    let fields = error
        .as_object()
        .unwrap_or_else(|| panic!("`error` is not an object in {body}"));
    assert!(fields["message"].is_string(), "error.message is a string: {body}");
    assert!(fields["type"].is_string(), "error.type is a string: {body}");
    assert!(fields.contains_key("param"), "error.param is present: {body}");
    assert!(fields.contains_key("code"), "error.code is present: {body}");
    error
}

//! Hostile clients: slow or idle connections time out, malformed input gets a 4xx in the OpenAI
//! shape (or a clean close), and the next request is always served.

use std::time::Duration;

use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wiremock::MockServer;

use crate::helpers::{
    ProviderSpec, TEST_MODEL, TestApp, assert_openai_error, chat_body, completion, json, mount_chat, upstream_url,
};

const FAST_TIMEOUTS: &str = "limits: {body_timeout_seconds: 0.5, header_timeout_seconds: 0.5, keep_alive_seconds: 0.5}";

async fn app_with_mock(calls: u64) -> (TestApp, MockServer) {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), calls).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(FAST_TIMEOUTS)
        .spawn()
        .await;
    (app, alpha)
}

/// Reads until the server closes the connection (or 5 s pass); returns what it sent.
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out))
        .await
        .expect("server closes the connection");
    String::from_utf8_lossy(&out).into_owned()
}

async fn still_serves(app: &TestApp) {
    assert_eq!(app.get("/livez").await.status(), 200, "the server keeps serving");
}

#[tokio::test]
async fn headers_trickled_in_are_cut_off() {
    let (app, _mock) = app_with_mock(0).await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream
        .write_all(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    // ...and never finish the head.
    let answer = read_to_close(&mut stream).await;
    assert!(answer.is_empty() || answer.starts_with("HTTP/1.1 408"), "{answer}");
    still_serves(&app).await;
}

#[tokio::test]
async fn body_trickled_in_gets_408_in_openai_shape() {
    let (app, _mock) = app_with_mock(0).await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let head = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n";
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(b"{\"model\":").await.unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
    still_serves(&app).await;
}

#[tokio::test]
async fn idle_keep_alive_connections_are_closed() {
    let (app, _mock) = app_with_mock(0).await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let answer = read_to_close(&mut stream).await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
}

#[tokio::test]
async fn oversized_headers_are_refused_and_the_next_request_is_served() {
    let (app, _mock) = app_with_mock(0).await;
    // actix refuses a request head over 128 KiB with 431.
    let huge = "a".repeat(200 * 1024);
    let response = app.client.get(app.url("/livez")).header("x-huge", huge).send().await;
    match response {
        Ok(r) => assert!(r.status().is_client_error(), "{}", r.status()),
        Err(e) => assert!(e.is_request() || e.is_connect() || e.is_body(), "a clean close: {e}"),
    }
    still_serves(&app).await;
}

#[tokio::test]
async fn malformed_bodies_get_400_in_openai_shape() {
    let (app, _mock) = app_with_mock(0).await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "invalid UTF-8",
            b"{\"model\":\"gpt-test\",\"messages\":[{\"content\":\"\xff\xfe\"}]}".to_vec(),
        ),
        ("raw NUL byte", b"{\"model\":\"gpt-test\",\0\"messages\":[]}".to_vec()),
        (
            "duplicate keys",
            br#"{"model":"gpt-test","model":"other","messages":[]}"#.to_vec(),
        ),
    ];
    for (name, body) in cases {
        let response = app.post_raw("/v1/chat/completions", body).await;
        assert_eq!(response.status(), 400, "{name}");
        assert_openai_error(&json(response).await);
    }
    still_serves(&app).await;
}

#[tokio::test]
async fn deeply_nested_json_is_refused_without_a_crash_or_an_upstream_call() {
    // Valid JSON, but nested past 128 levels: refused before routing (tests/api/validation.rs).
    let alpha = MockServer::start().await;
    mount_chat(&alpha, completion(), 0).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .spawn()
        .await;
    let deep = format!(
        "{{\"model\":\"gpt-test\",\"messages\":[{}{}]}}",
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    let response = app.post_raw("/v1/chat/completions", deep).await;
    assert_eq!(response.status(), 400);
    assert_eq!(assert_openai_error(&json(response).await)["param"], "messages");
    still_serves(&app).await;
}

#[tokio::test]
async fn a_400_000_message_conversation_is_checked_and_forwarded_without_trouble() {
    let (app, alpha) = app_with_mock(1).await;
    let mut body = chat_body(TEST_MODEL);
    // 400,000 messages (about 12 MB, under the 16 MiB body limit), each checked on the way.
    body["messages"] = json!(vec![json!({"role": "user", "content": "a"}); 400_000]);
    let response = app.post_chat(&body).await;
    assert_eq!(response.status(), 200);
    let sent = &crate::helpers::received(&alpha).await[0].body;
    assert!(sent.len() > 10_000_000);
}

#[tokio::test]
async fn request_id_with_control_characters_is_replaced_not_echoed() {
    let (app, _mock) = app_with_mock(0).await;
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    stream
        .write_all(b"GET /livez HTTP/1.1\r\nHost: x\r\nx-request-id: evil\x01\x7fid\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    // actix refuses control characters in a header value outright (400); either way the
    // client's value is never echoed.
    let answer = read_to_close(&mut stream).await;
    assert!(
        answer.starts_with("HTTP/1.1 400") || answer.starts_with("HTTP/1.1 200"),
        "{answer}"
    );
    assert!(!answer.contains("evil"), "{answer}");
    still_serves(&app).await;
}

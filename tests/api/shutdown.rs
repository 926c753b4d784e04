//! Shutdown without loss: on SIGTERM (or `AppState.shutdown.request()`, its in-process twin)
//! `/readyz` answers 503 at once, requests are served for `shutdown.drain_seconds` with
//! `Connection: close`, then the listener closes, open streams get `shutdown.grace_seconds` and
//! are cut with the dialect's error event, and the process exits.

use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;
use wiremock::MockServer;

use crate::helpers::{
    ProviderSpec, SseMock, SseReader, TEST_MODEL, TestApp, chat_body, completion, fixtures, mount_chat, stream_body,
    upstream_url,
};

const PLAIN_MODEL: &str = "gpt-plain";

/// `alpha` streams `gpt-test` (driven by the test), `beta` answers `gpt-plain` at once.
async fn app(alpha: &SseMock, beta: &MockServer) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .provider(ProviderSpec::new("beta", upstream_url(beta)).models(&[PLAIN_MODEL]))
        .settings("shutdown: {drain_seconds: 1, grace_seconds: 1}")
        .spawn()
        .await
}

#[tokio::test]
async fn a_requested_shutdown_drains_with_connection_close_then_cuts_the_streams_left() {
    // Arrange: a stream is open and its upstream goes quiet.
    let (alpha, beta) = (SseMock::start().await, MockServer::start().await);
    mount_chat(&beta, completion(), 1..).await;
    let mut app = app(&alpha, &beta).await;
    assert_eq!(app.get("/readyz?scope=process").await.status(), 200);
    let pending = tokio::spawn(app.post_chat(&stream_body(TEST_MODEL)));
    let upstream = alpha.next_connection().await;
    upstream.send_event(&fixtures::chunk_payloads()[0]);
    let mut reader = SseReader::new(pending.await.expect("request task"));
    assert!(reader.next_data().await.is_some());

    // Act: what SIGTERM does.
    let started = Instant::now();
    app.state.shutdown.request();
    tokio::time::sleep(Duration::from_millis(100)).await;

    // Assert: not ready at once, on both scopes, but still serving, and closing each connection.
    assert_eq!(app.get("/readyz").await.status(), 503);
    assert_eq!(app.get("/readyz?scope=process").await.status(), 503);
    let served = app.post_chat(&chat_body(PLAIN_MODEL)).await;
    assert_eq!(served.status(), 200);
    assert_eq!(
        served.headers().get("connection").and_then(|v| v.to_str().ok()),
        Some("close"),
        "{:?}",
        served.headers()
    );

    // Assert: after the drain nothing new is accepted; the stream is cut when the grace ends.
    let rest = reader.rest().await;
    let cut_after = started.elapsed();
    assert!(
        app.client.get(app.url("/livez")).send().await.is_err(),
        "the listener is closed after the drain"
    );
    let last: Value = serde_json::from_str(rest.last().map_or("null", String::as_str)).expect("JSON event");
    assert_eq!(last["error"]["code"], "stream_shutdown", "{rest:?}");
    assert!(
        cut_after >= Duration::from_millis(1900) && cut_after < Duration::from_secs(5),
        "cut {cut_after:?} after the request: drain 1 s + grace 1 s"
    );
    app.stop().await;
    let rows = app.history_rows(2).await;
    let cut = rows
        .iter()
        .find(|r| r["model"] == TEST_MODEL)
        .expect("the stream's row");
    assert!(
        cut["error_message"].as_str().unwrap_or_default().contains("shutdown"),
        "{cut}"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn sigterm_makes_the_process_unready_then_exit_after_drain_and_grace() {
    // Arrange: the real binary with a stream open.
    let alpha = SseMock::start().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "listen: 127.0.0.1:{port}\ndatabase_url: sqlite://{db}/h.db\nshutdown: {{drain_seconds: 1, grace_seconds: 1}}\nproviders:\n  - {{id: alpha, kind: openai, base_url: '{alpha}', api_key: sk-a, models: [{TEST_MODEL}]}}\n",
        db = dir.path().display(),
        alpha = alpha.base_url(),
    );
    let config_path = dir.path().join("gateway.yaml");
    std::fs::write(&config_path, config).unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_ai-gateway"))
        .args(["serve", "--config"])
        .arg(&config_path)
        .env_remove("REDIS_URL")
        .env_remove("DATABASE_URL")
        .env_remove("AI_GATEWAY_LISTEN")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    ai_gateway::startup::init_crypto();
    let client = reqwest::Client::builder().build().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/livez")).send().await.is_err() {
        assert!(Instant::now() < deadline, "gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let pending = tokio::spawn(
        client
            .post(format!("{base}/v1/chat/completions"))
            .json(&stream_body(TEST_MODEL))
            .send(),
    );
    let upstream = alpha.next_connection().await;
    upstream.send_event(&fixtures::chunk_payloads()[0]);
    let mut reader = SseReader::new(pending.await.unwrap().unwrap());
    assert!(reader.next_data().await.is_some());

    // Act
    let started = Instant::now();
    let pid = child.id().unwrap().to_string();
    let sent = tokio::process::Command::new("kill")
        .args(["-TERM", &pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
    tokio::time::sleep(Duration::from_millis(200)).await;

    // Assert
    let ready = client.get(format!("{base}/readyz?scope=process")).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(
        ready.headers().get("connection").and_then(|v| v.to_str().ok()),
        Some("close")
    );
    let rest = reader.rest().await;
    let last: Value = serde_json::from_str(rest.last().map_or("null", String::as_str)).expect("JSON event");
    assert_eq!(last["error"]["code"], "stream_shutdown", "{rest:?}");
    let status = tokio::time::timeout(Duration::from_secs(15), child.wait())
        .await
        .expect("exits after drain and grace")
        .unwrap();
    assert!(status.success(), "{status}");
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(1900),
        "exited {took:?} after SIGTERM, before drain + grace"
    );
}

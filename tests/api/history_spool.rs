//! `history.spool_path`: rows recorded while the database cannot be reached survive the process
//! dying before it could write them. Each row is in the spool before it is queued; a gateway
//! started on the same spool writes them, each once (a replay of rows already written adds
//! nothing), and a stream that was open when the first gateway died becomes an interrupted row.
//!
//! The crash: the first gateway's database is cut off by a proxy the test owns and never comes
//! back, so its queued rows never leave its memory; a second gateway, pointed at the database
//! directly, is started on the spool the first one wrote. The second test kills the real binary
//! with SIGKILL while its rows are still queued (a flush interval of ten minutes) and restarts it.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::helpers::db::fresh_postgres_database;
use crate::helpers::tcp_proxy::TcpProxy;
use crate::helpers::{Connection, ProviderSpec, SseMock, SseReader, TEST_MODEL, TestApp, fixtures, stream_body};

const CLIENT_KEY: &str = "sk-history-spool-client";

async fn gateway(upstream: &SseMock, database_url: &str, spool: &Path) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream.base_url()))
        .settings(&format!(
            "{{database_url: '{database_url}', history: {{spool_path: '{}'}}}}",
            spool.display()
        ))
        // A static key: a replica that cannot read the key table refuses callers otherwise.
        .env("API_KEYS", CLIENT_KEY)
        .spawn()
        .await
}

/// Starts a stream with this request id; the upstream sends its first event, which the client reads.
async fn start_stream(app: &TestApp, upstream: &SseMock, request_id: &str) -> (Connection, SseReader) {
    let pending = tokio::spawn(
        app.client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .header("x-request-id", request_id)
            .json(&stream_body(TEST_MODEL))
            .send(),
    );
    let connection = upstream.next_connection().await;
    connection.send_event(&fixtures::chunk_payloads()[0]);
    let response = pending.await.expect("request task").expect("stream answered");
    assert_eq!(response.status(), 200);
    let mut reader = SseReader::new(response);
    assert!(reader.next_data().await.is_some(), "first event relayed");
    (connection, reader)
}

/// Waits until the spool files mention every one of `ids`.
async fn spooled(spool: &Path, ids: &[&str]) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let mut text = std::fs::read_to_string(spool).unwrap_or_default();
        text += &std::fs::read_to_string(format!("{}.1", spool.display())).unwrap_or_default();
        if ids.iter().all(|id| text.contains(id)) {
            return;
        }
        assert!(tokio::time::Instant::now() < deadline, "spool holds: {text}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn rows_of_a_gateway_that_died_with_its_database_down_arrive_once_from_the_spool() {
    // Arrange: a database the first gateway can only reach through a proxy that refuses.
    let direct = fresh_postgres_database().await;
    let proxy = TcpProxy::start("127.0.0.1:5432").await;
    proxy.cut();
    let through_proxy = direct.replace("127.0.0.1:5432", &format!("127.0.0.1:{}", proxy.port));
    let dir = tempfile::tempdir().expect("temp dir");
    let spool = dir.path().join("history.spool");
    let upstream = SseMock::start().await;
    let first = gateway(&upstream, &through_proxy, &spool).await;

    // Act: three streams complete and one stays open, all while the database is unreachable.
    let finished = ["spool-done-1", "spool-done-2", "spool-done-3"];
    for id in finished {
        let (connection, reader) = start_stream(&first, &upstream, id).await;
        for event in &fixtures::chunk_payloads()[1..] {
            connection.send_event(event);
        }
        connection.send_done();
        connection.finish();
        assert_eq!(reader.rest().await.last().map(String::as_str), Some("[DONE]"));
    }
    let (_open_upstream, _open_client) = start_stream(&first, &upstream, "spool-open").await;
    spooled(&spool, &[finished[0], finished[1], finished[2], "spool-open"]).await;
    assert_eq!(
        first.health().await["history"]["written"],
        0,
        "nothing reached the database"
    );
    // What the first gateway left, before anything replays it.
    let left = dir.path().join("left.spool");
    std::fs::copy(&spool, &left).expect("copy the spool");
    let _ = std::fs::copy(format!("{}.1", spool.display()), format!("{}.1", left.display()));

    // Act: the first gateway is gone (its queue never reaches the database); a new one starts on
    // its spool.
    let mut second = gateway(&upstream, &direct, &spool).await;

    // Assert: every row once, and the open stream as interrupted.
    let rows = second.history_rows(4).await;
    let row = |id: &str| -> &Value {
        let matching: Vec<&Value> = rows.iter().filter(|r| r["request_id"] == id).collect();
        assert_eq!(matching.len(), 1, "{id}: {rows:#?}");
        matching[0]
    };
    for id in finished {
        assert_eq!(row(id)["status"], "success", "{id}");
    }
    let open = row("spool-open");
    assert_eq!(open["status"], "error");
    assert_eq!(open["stream"], true);
    assert_eq!(open["provider"], "alpha");
    assert_eq!(open["model"], TEST_MODEL);
    assert_eq!(open["error_message"], ai_gateway::store::INTERRUPTED);
    second.stop().await;

    // Act: the same spool replayed again, into a database that already has every row.
    let third = gateway(&upstream, &direct, &left).await;
    let read_left = || {
        std::fs::read_to_string(&left).unwrap_or_default()
            + &std::fs::read_to_string(format!("{}.1", left.display())).unwrap_or_default()
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while read_left().contains("spool-done-1") && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Assert: nothing is written twice, and the spool is emptied once its rows are confirmed.
    third.history_rows(4).await;
    assert!(!read_left().contains("spool-done-1"), "{}", read_left());
}

/// The real binary on `config`, once `/livez` answers.
async fn serve(config: &Path, port: u16) -> std::process::Child {
    ai_gateway::startup::init_crypto();
    let child = std::process::Command::new(env!("CARGO_BIN_EXE_ai-gateway"))
        .args(["serve", "--config"])
        .arg(config)
        .env("API_KEYS", CLIENT_KEY)
        .env_remove("REDIS_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("gateway binary starts");
    let client = reqwest::Client::builder().build().expect("client");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while client
        .get(format!("http://127.0.0.1:{port}/livez"))
        .send()
        .await
        .is_err()
    {
        assert!(tokio::time::Instant::now() < deadline, "gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    child
}

#[tokio::test]
async fn a_sigkill_loses_no_admitted_row_and_leaves_the_open_stream_interrupted() {
    // Arrange: the real binary on SQLite, with a flush interval so long that every row is still
    // queued when the process is killed.
    let chat_upstream = wiremock::MockServer::start().await;
    crate::helpers::mount_chat(&chat_upstream, crate::helpers::completion(), 5).await;
    let stream_upstream = SseMock::start().await;
    let dir = tempfile::tempdir().expect("temp dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let db = format!("sqlite://{}/history.db", dir.path().display());
    let config_with = |flush_ms: u64| {
        format!(
            "listen: 127.0.0.1:{port}\ndatabase_url: '{db}'\nhistory: {{flush_interval_ms: {flush_ms}, spool_path: '{spool}'}}\nproviders:\n  - {{id: chat, kind: openai, base_url: '{chat}/v1', api_key: k, models: [{TEST_MODEL}], priority: 1}}\n  - {{id: alpha, kind: openai, base_url: '{sse}', api_key: k, models: [streamed], priority: 1}}\n",
            spool = dir.path().join("history.spool").display(),
            chat = chat_upstream.uri(),
            sse = stream_upstream.base_url(),
        )
    };
    let config = dir.path().join("gateway.yaml");
    std::fs::write(&config, config_with(600_000)).expect("write config");
    let mut gateway = serve(&config, port).await;
    let client = reqwest::Client::builder().build().expect("client");
    let url = format!("http://127.0.0.1:{port}/v1/chat/completions");

    // Act: five answers and one stream left open, then SIGKILL.
    let ids: Vec<String> = (1..=5).map(|n| format!("killed-{n}")).collect();
    for id in &ids {
        let status = client
            .post(&url)
            .bearer_auth(CLIENT_KEY)
            .header("x-request-id", id)
            .json(&crate::helpers::chat_body(TEST_MODEL))
            .send()
            .await
            .expect("answer")
            .status();
        assert_eq!(status, 200);
    }
    let pending = tokio::spawn(
        client
            .post(&url)
            .bearer_auth(CLIENT_KEY)
            .header("x-request-id", "killed-open")
            .json(&stream_body("streamed"))
            .send(),
    );
    let connection = stream_upstream.next_connection().await;
    connection.send_event(&fixtures::chunk_payloads()[0]);
    let response = pending.await.expect("request task").expect("stream answered");
    let mut reader = SseReader::new(response);
    assert!(reader.next_data().await.is_some());
    gateway.kill().expect("SIGKILL");
    let _ = gateway.wait();
    let store = ai_gateway::store::HistoryStore::connect(&db)
        .await
        .expect("open the SQLite file");
    assert_eq!(
        store.count().await.expect("count"),
        0,
        "nothing was written before the kill"
    );

    // Act: the gateway starts again on the same spool.
    std::fs::write(&config, config_with(50)).expect("write config");
    let mut restarted = serve(&config, port).await;

    // Assert: the five rows once each, and the open stream as an interrupted row.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let rows = loop {
        let rows = store
            .list(&ai_gateway::store::HistoryQuery {
                limit: Some(100),
                ..Default::default()
            })
            .await
            .expect("history readable");
        if rows.len() >= 6 || tokio::time::Instant::now() > deadline {
            break rows;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = restarted.kill();
    let _ = restarted.wait();
    assert_eq!(rows.len(), 6, "{rows:#?}");
    for id in &ids {
        let row: Vec<_> = rows.iter().filter(|r| &r.request_id == id).collect();
        assert_eq!(row.len(), 1, "{id}");
        assert_eq!(row[0].status, "success");
    }
    let open = rows
        .iter()
        .find(|r| r.request_id == "killed-open")
        .expect("the open stream's row");
    assert_eq!(open.status, "error");
    assert_eq!(open.error_message.as_deref(), Some(ai_gateway::store::INTERRUPTED));
}

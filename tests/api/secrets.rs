//! No secret (provider key, client key, admin and worker tokens, JWT, a wrong key a client tried)
//! ever reaches logs, history rows, metrics or response bodies. The real binary runs with debug
//! logging; every output is captured and searched.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::Duration;

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use wiremock::MockServer;

use crate::helpers::{completion, failure, mount_chat};

const PROVIDER_KEY: &str = "sk-prov-SECRET-A1";
const CLIENT_KEY: &str = "sk-client-SECRET-B2";
const ADMIN_TOKEN: &str = "adm-SECRET-C3";
const WORKER_TOKEN: &str = "wrk-SECRET-D4";
const JWT_SECRET: &str = "jwt-SECRET-E5";
const WRONG_KEY: &str = "sk-wrong-SECRET-F6";

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[tokio::test]
async fn secrets_never_reach_logs_history_metrics_or_responses() {
    // Arrange: the real binary, debug logs to a file, every kind of secret configured.
    let (good, bad) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&good, completion(), 1..).await;
    mount_chat(&bad, failure(401), 1..).await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let config = format!(
        "listen: 127.0.0.1:{port}\ndatabase_url: sqlite://{db}/h.db\nauth: {{jwt: {{hs256_secret: {JWT_SECRET}}}}}\nproviders:\n  - {{id: bad, kind: openai, base_url: '{bad}/v1', api_key: '${{PROV_KEY}}', models: [gpt-test], priority: 1}}\n  - {{id: good, kind: openai, base_url: '{good}/v1', api_key: '${{PROV_KEY}}', models: [gpt-test], priority: 2}}\n",
        db = dir.path().display(),
        bad = bad.uri(),
        good = good.uri(),
    );
    let config_path = dir.path().join("gateway.yaml");
    std::fs::write(&config_path, config).unwrap();
    let log_path = dir.path().join("gateway.log");
    let mut child = Command::new(env!("CARGO_BIN_EXE_ai-gateway"))
        .args(["serve", "--config"])
        .arg(&config_path)
        .env("PROV_KEY", PROVIDER_KEY)
        .env("API_KEYS", CLIENT_KEY)
        .env("INTERNAL_API_TOKEN", ADMIN_TOKEN)
        .env("AI_CLUSTER_SECRET", WORKER_TOKEN)
        .env("RUST_LOG", "debug")
        .env("LOG_PROMPTS", "false")
        // No load balancer here to drain for: SIGTERM at the end stops at once.
        .env("SHUTDOWN_DRAIN_SECONDS", "0")
        .env_remove("REDIS_URL")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    ai_gateway::startup::init_crypto();
    let client = reqwest::Client::builder().build().unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while client.get(format!("{base}/livez")).send().await.is_err() {
        assert!(tokio::time::Instant::now() < deadline, "gateway did not start");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let exp = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
        + 600;
    let jwt = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &serde_json::json!({"sub": "alice", "exp": exp}),
        &EncodingKey::from_secret(JWT_SECRET.as_bytes()),
    )
    .unwrap();
    let chat = serde_json::json!({"model": "gpt-test", "messages": [{"role": "user", "content": "hi"}]});

    // Act: every path a credential can take.
    let mut bodies = Vec::new();
    let requests = vec![
        client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(CLIENT_KEY)
            .json(&chat),
        client
            .post(format!("{base}/v1/chat/completions"))
            .header("x-api-key", CLIENT_KEY)
            .json(&chat),
        client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(&jwt)
            .json(&chat),
        client
            .post(format!("{base}/v1/chat/completions"))
            .bearer_auth(WRONG_KEY)
            .json(&chat),
        client
            .post(format!("{base}/ai/task"))
            .bearer_auth(CLIENT_KEY)
            .json(&serde_json::json!({"task": "summarize", "text": "x"})),
        client
            .post(format!("{base}/history/cleanup"))
            .header("x-admin-token", WRONG_KEY),
        client
            .post(format!("{base}/history/cleanup"))
            .header("x-admin-token", ADMIN_TOKEN),
        client.post(format!("{base}/history/cleanup")).bearer_auth(CLIENT_KEY),
        client.get(format!("{base}/history")).bearer_auth(CLIENT_KEY),
        client.get(format!("{base}/provider/status")).bearer_auth(CLIENT_KEY),
        client.get(format!("{base}/health")),
        client.get(format!("{base}/metrics")),
    ];
    for request in requests {
        let response = request.send().await.unwrap();
        let headers = format!("{:?}", response.headers());
        bodies.push(format!("{headers}\n{}", response.text().await.unwrap()));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let history = client
        .get(format!("{base}/history?limit=100"))
        // The admin token sees every caller's rows (a client key only its own).
        .header("x-admin-token", ADMIN_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let metrics = client
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let _ = Command::new("kill").arg("-TERM").arg(child.id().to_string()).status();
    let _ = child.wait();
    let mut logs = String::new();
    std::fs::File::open(&log_path)
        .unwrap()
        .read_to_string(&mut logs)
        .unwrap();
    let rows = rusqlite_free_dump(&dir.path().join("h.db"));

    // Assert
    assert!(
        logs.contains("\"request\""),
        "the log was captured: {}",
        &logs[..logs.len().min(500)]
    );
    assert!(history.contains("jwt:alice"), "history was written: {history}");
    for secret in [
        PROVIDER_KEY,
        CLIENT_KEY,
        ADMIN_TOKEN,
        WORKER_TOKEN,
        JWT_SECRET,
        WRONG_KEY,
        jwt.as_str(),
    ] {
        assert!(!logs.contains(secret), "secret {secret} in logs");
        assert!(!history.contains(secret), "secret {secret} in /history");
        assert!(!metrics.contains(secret), "secret {secret} in /metrics");
        assert!(!rows.contains(secret), "secret {secret} in the database file");
        for body in &bodies {
            assert!(!body.contains(secret), "secret {secret} in a response: {body}");
        }
    }
}

/// The raw bytes of the SQLite file (and its WAL), as text: a secret stored anywhere would show.
fn rusqlite_free_dump(path: &std::path::Path) -> String {
    let mut out = String::new();
    for suffix in ["", "-wal"] {
        let file = std::path::PathBuf::from(format!("{}{suffix}", path.display()));
        if let Ok(bytes) = std::fs::read(file) {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
    out
}

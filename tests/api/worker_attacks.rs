//! Attacks on seed 000's catch-all worker proxy and its job endpoints: undeclared runtime APIs,
//! dot segments (sent raw over TCP), keys limited to some models, and other callers' jobs.

use std::time::Duration;

use ai_gateway::auth::{digest, key_prefix};
use ai_gateway::store::{StoredKey, now_ms};
use serde_json::{Value, json};
use wiremock::matchers::method;
use wiremock::{Mock, ResponseTemplate};

use crate::helpers::{MockNode, Runtime, TestApp, json};
use crate::nodes::{ADMIN, pool_builder, wait_for_node};
use crate::paths_attacks::raw;

/// A worker node that accepts job `node-job-1` on `/generate` and answers 200 to any other POST.
async fn worker() -> MockNode {
    let node = MockNode::start(Runtime::Worker, &["m"]).await;
    node.serve_jobs("node-job-1").await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"status": "success"})))
        .mount(&node.server)
        .await;
    node
}

async fn app(node: &MockNode) -> TestApp {
    let app = pool_builder(&[node]).env("API_KEYS", "sk-a,sk-b").spawn().await;
    wait_for_node(&app, &node.url(), |v| v["online"] == true).await;
    app
}

async fn post(app: &TestApp, path: &str, key: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .bearer_auth(key)
        .json(body)
        .send()
        .await
        .expect("POST")
}

async fn get(app: &TestApp, path: &str, header: (&str, &str)) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header(header.0, header.1)
        .send()
        .await
        .expect("GET")
}

async fn node_paths(node: &MockNode) -> Vec<String> {
    node.server
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .filter(|r| r.method.as_str() != "GET")
        .map(|r| r.url.path().to_owned())
        .collect()
}

#[tokio::test]
async fn the_catch_all_forwards_only_declared_worker_paths() {
    // Arrange
    let node = worker().await;
    let app = app(&node).await;

    // Act: a runtime's own admin API, which a client must never reach.
    let mut statuses = Vec::new();
    for path in [
        "/api/pull",
        "/api/delete",
        "/v1/load_lora_adapter",
        "/v1/chat/completions/x",
    ] {
        statuses.push(
            post(&app, path, "sk-a", &json!({"model": "m", "name": "evil"}))
                .await
                .status()
                .as_u16(),
        );
    }
    let declared = post(&app, "/generate", "sk-a", &json!({"model": "m"})).await;

    // Assert
    assert_eq!(statuses, [404, 404, 404, 404]);
    assert_eq!(declared.status(), 202);
    assert_eq!(node_paths(&node).await, ["/generate"]);
}

#[tokio::test]
async fn dot_segments_never_reach_a_node() {
    // Arrange
    let node = worker().await;
    let app = app(&node).await;
    let body = r#"{"model":"m"}"#;

    // Act + Assert
    for target in [
        "/generate/../api/pull",
        "/generate/%2e%2e/api/delete",
        "/v1/x/../chat/completions",
        "/generate/./x",
        "//generate",
    ] {
        let head = format!("POST {target} HTTP/1.1\r\nAuthorization: Bearer sk-a\r\nContent-Type: application/json");
        let answer = raw(&app, &head, body).await;
        assert_eq!(answer.status, 400, "{target}: {answer:?}");
    }
    assert!(node_paths(&node).await.is_empty());
}

#[tokio::test]
async fn a_key_limited_to_some_models_must_name_one() {
    // Arrange
    let node = worker().await;
    let app = pool_builder(&[&node])
        .env("API_KEYS", "sk-a")
        .settings("auth: {refresh_seconds: 0.1}")
        .spawn()
        .await;
    wait_for_node(&app, &node.url(), |v| v["online"] == true).await;
    let key = "sk-aigw-narrow-worker";
    app.store
        .insert_key(&StoredKey {
            id: uuid::Uuid::now_v7().to_string(),
            name: "narrow".into(),
            key_hash: digest(key).hex(),
            key_prefix: key_prefix(key),
            rpm: None,
            tpm: None,
            models: Some("m".into()),
            created_at: now_ms(),
            expires_at: None,
            revoked_at: None,
            team: None,
            priority: None,
            user_name: None,
        })
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    // Loaded when its allow-list bites (until then the gateway is open and the key anonymous).
    while post(&app, "/generate", key, &json!({"model": "big"})).await.status() != 403 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the virtual key was never loaded"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let before = node_paths(&node).await.len();

    // Act
    let no_model = post(&app, "/generate", key, &json!({"prompt": "x"})).await;
    let not_a_string = post(&app, "/generate", key, &json!({"model": ["m"], "prompt": "x"})).await;
    let other_key_name = post(&app, "/generate", key, &json!({"model": "m", "model_key": "big"})).await;

    // Assert
    assert_eq!(no_model.status(), 400);
    assert_eq!(json(no_model).await["error"]["param"], "model");
    assert_eq!(not_a_string.status(), 400);
    assert_eq!(other_key_name.status(), 403);
    assert_eq!(node_paths(&node).await.len(), before, "a refused call reached the node");
}

#[tokio::test]
async fn a_job_is_seen_by_its_owner_and_the_admin_only_under_the_gateways_id() {
    // Arrange
    let node = worker().await;
    let app = app(&node).await;
    let accepted = post(&app, "/generate", "sk-a", &json!({"model": "m"})).await;
    assert_eq!(accepted.status(), 202);
    let body = json(accepted).await;
    let job = body["job_id"].as_str().expect("a job id").to_owned();

    // Act
    let owner = get(&app, &format!("/status/{job}"), ("authorization", "Bearer sk-a")).await;
    let other = get(&app, &format!("/status/{job}"), ("authorization", "Bearer sk-b")).await;
    let other_download = get(&app, &format!("/download/{job}"), ("authorization", "Bearer sk-b")).await;
    let admin = get(&app, &format!("/status/{job}"), ("x-admin-token", ADMIN)).await;
    let wrong_admin = get(&app, &format!("/status/{job}"), ("x-admin-token", "nope")).await;
    let node_id = get(&app, "/status/node-job-1", ("authorization", "Bearer sk-a")).await;

    // Assert
    assert_ne!(job, "node-job-1", "the node's id reached the client");
    assert!(job.starts_with("job_") && job.len() >= 36, "{job}");
    assert_eq!(body["status"], "queued", "the rest of the answer is the node's");
    assert_eq!(owner.status(), 200);
    assert_eq!(json(owner).await["status"], "done");
    assert_eq!(other.status(), 404);
    assert_eq!(other_download.status(), 404);
    assert_eq!(admin.status(), 200);
    assert_eq!(wrong_admin.status(), 401);
    assert_eq!(node_id.status(), 404, "the node's own id is not a gateway id");
}

#[tokio::test]
async fn a_job_id_is_never_re_owned_by_a_later_answer() {
    // Arrange: the node hands every caller the same id.
    let node = worker().await;
    let app = app(&node).await;
    let first = json(post(&app, "/generate", "sk-a", &json!({"model": "m"})).await).await;
    let second = json(post(&app, "/generate", "sk-b", &json!({"model": "m"})).await).await;
    let (a, b) = (first["job_id"].as_str().unwrap(), second["job_id"].as_str().unwrap());

    // Act
    let a_by_a = get(&app, &format!("/status/{a}"), ("authorization", "Bearer sk-a")).await;
    let a_by_b = get(&app, &format!("/status/{a}"), ("authorization", "Bearer sk-b")).await;

    // Assert
    assert_ne!(a, b);
    assert_eq!(a_by_a.status(), 200);
    assert_eq!(a_by_b.status(), 404);
}

#[tokio::test]
async fn job_mappings_age_out_with_history_retention() {
    // Arrange
    let node = worker().await;
    let app = app(&node).await;
    let job = json(post(&app, "/generate", "sk-a", &json!({"model": "m"})).await).await["job_id"]
        .as_str()
        .expect("job id")
        .to_owned();
    let old = ai_gateway::store::StoredJob {
        job_id: "job_old".into(),
        node_url: node.url(),
        pool: "nodes".into(),
        created_at: now_ms() - 3 * 86_400_000,
        node_job_id: "node-job-0".into(),
        caller: Some("key:x".into()),
    };
    app.store.insert_job(&old).await.unwrap();

    // Act
    let purged = app.store.purge_jobs_older_than_days(2).await.unwrap();

    // Assert
    assert_eq!(purged, 1);
    assert!(app.store.find_job("job_old").await.unwrap().is_none());
    let kept = app.store.find_job(&job).await.unwrap().expect("the new job stays");
    assert_eq!(kept.node_job_id, "node-job-1");
    assert_eq!(kept.caller.as_deref().map(|c| c.starts_with("key:")), Some(true));
}

//! The registry endpoints and their tokens: `/register`, `/nodes`, `DELETE /nodes/{url}`,
//! `/pulse`, `/nodes/provision`.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use serde_json::{Value, json};

use super::{ADMIN, FAST, WORKER, node_views, wait_for_node};
use crate::helpers::{MockNode, Runtime, TestApp, assert_openai_error, json};

/// A gateway with an empty default pool (declared, no nodes) and both tokens.
async fn empty_pool_app(extra: &str) -> TestApp {
    TestApp::builder()
        .env("INTERNAL_API_TOKEN", ADMIN)
        // An admin token alone makes client auth required; these tests call clients anonymously.
        .env("AUTH_REQUIRED", "false")
        .env("AI_CLUSTER_SECRET", WORKER)
        .env("API_KEYS", "sk-client")
        .settings("providers: [{id: nodes, kind: node_pool, priority: 0}]")
        .settings(FAST)
        .settings(extra)
        .spawn()
        .await
}

async fn admin_post(app: &TestApp, path: &str, body: &Value) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header("X-Admin-Token", ADMIN)
        .json(body)
        .send()
        .await
        .expect("admin POST")
}

#[tokio::test]
async fn registry_endpoints_need_the_admin_token_and_pulse_the_worker_token() {
    // Arrange
    let app = empty_pool_app("{}").await;
    let body = json!({"url": "http://127.0.0.1:9"});

    // Act / Assert
    for (path, method) in [
        ("/register", "POST"),
        ("/nodes", "POST"),
        ("/nodes", "GET"),
        ("/nodes/provision", "POST"),
    ] {
        let req = match method {
            "GET" => app.client.get(app.url(path)),
            _ => app.client.post(app.url(path)).json(&body),
        };
        let none = req.try_clone().expect("clone").send().await.expect("send");
        assert_eq!(none.status(), 401, "{method} {path} without a token");
        assert_openai_error(&json(none).await);
        let wrong = req
            .try_clone()
            .expect("clone")
            .header("X-Admin-Token", "nope")
            .send()
            .await
            .expect("send");
        assert_eq!(wrong.status(), 401, "{method} {path} with a wrong token");
        let client_key = req.bearer_auth("sk-client").send().await.expect("send");
        assert_eq!(client_key.status(), 403, "{method} {path} with a client key");
    }
    let delete = app
        .client
        .delete(app.url("/nodes/http%3A%2F%2F127.0.0.1%3A9"))
        .send()
        .await
        .expect("send");
    assert_eq!(delete.status(), 401);
    let pulse = app
        .client
        .post(app.url("/pulse"))
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(pulse.status(), 401, "pulse without the worker token");
    let pulse = app
        .client
        .post(app.url("/pulse"))
        .header("X-Worker-Token", "nope")
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(pulse.status(), 401, "pulse with a wrong worker token");
    let pulse = app
        .client
        .post(app.url("/pulse"))
        .header("X-Admin-Token", ADMIN)
        .json(&body)
        .send()
        .await
        .expect("send");
    assert_eq!(pulse.status(), 401, "the admin token is not the worker token");
}

#[tokio::test]
async fn registered_nodes_are_checked_listed_removed_and_survive_a_restart() {
    // Arrange
    let node = MockNode::start(Runtime::Ollama, &["llama3:latest"]).await;
    let data = tempfile::tempdir().expect("temp dir");
    let db = format!("database_url: sqlite://{}/gw.db", data.path().display());
    let mut app = empty_pool_app(&db).await;

    // Act
    let registered = admin_post(&app, "/register", &json!({"url": format!("{}/v1/", node.url())})).await;

    // Assert
    assert_eq!(registered.status(), 200);
    let view = json(registered).await;
    assert_eq!(view["url"], node.url(), "the URL is normalised");
    assert_eq!(view["online"], true, "registration checks health once");
    assert_eq!(view["runtime"], "ollama");
    assert_eq!(view["source"], "api");
    let chat = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth("sk-client")
        .json(&crate::helpers::chat_body("llama3"))
        .send()
        .await
        .expect("chat");
    assert_eq!(chat.status(), 200, "Ollama's :latest tag matches");
    app.stop().await;
    let app = empty_pool_app(&db).await;
    let restored = wait_for_node(&app, &node.url(), |v| v["online"] == true).await;
    assert_eq!(restored["source"], "api", "the node table survives a restart");
    let encoded = node.url().replace(':', "%3A").replace('/', "%2F");
    let removed = app
        .client
        .delete(app.url(&format!("/nodes/{encoded}")))
        .header("X-Admin-Token", ADMIN)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(removed.status(), 200);
    assert!(node_views(&app).await.is_empty());
    let again = app
        .client
        .delete(app.url(&format!("/nodes/{encoded}")))
        .header("X-Admin-Token", ADMIN)
        .send()
        .await
        .expect("DELETE");
    assert_eq!(again.status(), 404);
}

#[tokio::test]
async fn bad_registrations_say_what_is_wrong() {
    // Arrange
    let app = empty_pool_app("nodes: {allowed_networks: [10.0.0.0/8]}").await;

    // Act / Assert
    for (body, param) in [
        (json!({"url": "gpu-1:8000"}), "url"),
        (json!({"url": "http://10.0.0.1:8000", "pool": "elsewhere"}), "pool"),
        (json!({"url": "http://10.0.0.1:8000", "runtime": "triton"}), "runtime"),
        (json!({"url": "http://127.0.0.1:8000"}), "url"),
    ] {
        let response = admin_post(&app, "/nodes", &body).await;
        assert_eq!(response.status(), 400, "{body}");
        let error = json(response).await;
        assert_eq!(assert_openai_error(&error)["param"], param, "{error}");
    }
}

#[tokio::test]
async fn without_a_pool_registration_is_refused_and_unknown_post_paths_stay_404() {
    // Arrange
    let app = TestApp::builder()
        .env("INTERNAL_API_TOKEN", ADMIN)
        .env("AUTH_REQUIRED", "false")
        .spawn()
        .await;

    // Act
    let register = admin_post(&app, "/register", &json!({"url": "http://127.0.0.1:9"})).await;
    let catch_all = app.post_raw("/generate", r#"{"model":"m"}"#).await;
    let get_unknown = app.get("/generate").await;

    // Assert
    assert_eq!(register.status(), 400);
    assert_eq!(assert_openai_error(&json(register).await)["code"], "no_node_pool");
    assert_eq!(catch_all.status(), 404);
    assert_eq!(get_unknown.status(), 404);
}

/// Writes an executable fake provisioning command that checks the key file while it runs.
fn fake_command(dir: &Path, marker: &Path, exit: i32) -> String {
    let script = dir.join("deploy.sh");
    let text = format!(
        "#!/bin/sh\n\
         # $1 = host, $2 = key file\n\
         echo \"$2\" > '{marker}'\n\
         test -f \"$2\" || {{ echo 'key file missing'; exit 90; }}\n\
         test \"$(stat -c %a \"$2\")\" = 600 || {{ echo 'key file not 0600'; exit 91; }}\n\
         grep -q 'BEGIN OPENSSH PRIVATE KEY' \"$2\" || {{ echo 'key file content wrong'; exit 92; }}\n\
         test \"$AI_NODE_HOST\" = \"$1\" || exit 93\n\
         echo \"deploying worker to $1 as $AI_NODE_USER, url $AI_NODE_URL\"\n\
         exit {exit}\n",
        marker = marker.display()
    );
    std::fs::write(&script, text).expect("write the fake command");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    script.display().to_string()
}

const KEY: &str = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----\n";

#[tokio::test]
async fn provisioning_runs_the_command_with_a_private_key_file_and_registers_the_node() {
    // Arrange
    let node = MockNode::start(Runtime::Worker, &["hunyuan-video"]).await;
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("key-path");
    let command = fake_command(dir.path(), &marker, 0);
    let app = empty_pool_app(&format!(
        "nodes: {{provision_command: '{command}', provision_timeout_seconds: 10, provision_wait_seconds: 5}}"
    ))
    .await;

    // Act
    let response = admin_post(
        &app,
        "/nodes/provision",
        &json!({"host": "127.0.0.1", "ssh_key": KEY, "user": "ubuntu", "url": node.url()}),
    )
    .await;

    // Assert
    assert_eq!(response.status(), 200);
    let report = json(response).await;
    assert_eq!(report["exit_status"], 0, "{report}");
    assert_eq!(report["timed_out"], false);
    assert!(
        report["output_tail"]
            .as_str()
            .is_some_and(|t| t.contains("deploying worker to 127.0.0.1 as ubuntu")),
        "{report}"
    );
    assert_eq!(report["registered"], true);
    assert_eq!(report["node"]["source"], "provision");
    assert_eq!(report["node"]["online"], true);
    let key_path = std::fs::read_to_string(&marker).expect("the command recorded the key path");
    let key_path = Path::new(key_path.trim());
    if Path::new("/dev/shm").is_dir() {
        assert!(key_path.starts_with("/dev/shm"), "{}", key_path.display());
    }
    assert!(!key_path.exists(), "the key file is deleted after the command");
    assert!(
        !report.to_string().contains("b3BlbnNzaC1rZXktdjEAAAAA"),
        "the key is never echoed"
    );
}

#[tokio::test]
async fn a_failing_provisioning_command_registers_nothing_and_still_deletes_the_key() {
    // Arrange
    let dir = tempfile::tempdir().expect("temp dir");
    let marker = dir.path().join("key-path");
    let command = fake_command(dir.path(), &marker, 3);
    let app = empty_pool_app(&format!("nodes: {{provision_command: '{command}'}}")).await;

    // Act
    let response = admin_post(
        &app,
        "/nodes/provision",
        &json!({"host": "gpu-9.internal", "ssh_key": KEY}),
    )
    .await;

    // Assert
    assert_eq!(response.status(), 200);
    let report = json(response).await;
    assert_eq!(report["exit_status"], 3, "{report}");
    assert_eq!(report["registered"], false);
    assert_eq!(report["url"], "http://gpu-9.internal:8000");
    let key_path = std::fs::read_to_string(&marker).expect("the command recorded the key path");
    assert!(!Path::new(key_path.trim()).exists());
    assert!(node_views(&app).await.is_empty());
    let bad_host = admin_post(
        &app,
        "/nodes/provision",
        &json!({"host": "-oProxyCommand=x", "ssh_key": KEY}),
    )
    .await;
    assert_eq!(bad_host.status(), 400);
}

//! Seed 000's worker API: the catch-all `POST /{path}` to the best node, and job status and
//! download routed to the node that owns the job, across a gateway restart.

use serde_json::json;

use super::{pool_app, pool_builder, wait_for_node};
use crate::helpers::{Database, MockNode, Runtime, TestApp, header, json};

/// A restarted gateway on the same database still sends `/status/{job_id}` to the node that
/// accepted the job.
async fn job_status_survives_a_restart(database: Database) {
    // Arrange: two workers; only `video` has the requested model, so it gets the job.
    let image = MockNode::start(Runtime::Worker, &["sdxl"]).await;
    let video = MockNode::start(Runtime::Worker, &["hunyuan-video"]).await;
    video.serve_jobs("job-42").await;
    let data = tempfile::tempdir().expect("temp dir");
    let url = match database {
        Database::Sqlite => format!("sqlite://{}/gw.db", data.path().display()),
        Database::Postgres => crate::helpers::db::fresh_postgres_database().await,
    };
    let db = format!("database_url: {url}");
    let mut first = pool_builder(&[&image, &video]).settings(&db).spawn().await;
    wait_for_node(&first, &video.url(), |v| v["online"] == true).await;
    let accepted = first
        .post_raw(
            "/generate",
            json!({"model_key": "hunyuan-video", "prompt": "a cat"}).to_string(),
        )
        .await;
    assert_eq!(accepted.status(), 202);
    assert_eq!(header(&accepted, "x-ai-gateway-provider"), video.id());
    // The client gets the gateway's id for the job, never the node's.
    let job = json(accepted).await["job_id"].as_str().expect("job id").to_owned();
    assert_ne!(job, "job-42");

    // Act
    first.stop().await;
    let second = pool_builder(&[&image, &video]).settings(&db).spawn().await;
    let status = second.get(&format!("/status/{job}")).await;
    let download = second.get(&format!("/download/{job}")).await;

    // Assert
    assert_eq!(status.status(), 200);
    assert_eq!(header(&status, "x-ai-gateway-provider"), video.id());
    let body = json(status).await;
    assert_eq!(body["status"], "done");
    assert_eq!(body["node"], video.url());
    assert_eq!(download.status(), 200);
    assert_eq!(header(&download, "content-type"), "video/mp4");
    assert!(header(&download, "content-disposition").contains("out.mp4"));
    assert_eq!(
        download.text().await.expect("body"),
        format!("video bytes from {}", video.url())
    );
    assert_eq!(image.requests_to("/generate").await, 0);
}

#[tokio::test]
async fn job_status_reaches_the_owning_node_after_a_restart_on_sqlite() {
    job_status_survives_a_restart(Database::Sqlite).await;
}

#[tokio::test]
async fn job_status_reaches_the_owning_node_after_a_restart_on_postgres() {
    job_status_survives_a_restart(Database::Postgres).await;
}

#[tokio::test]
async fn an_unknown_job_is_404() {
    // Arrange
    let node = MockNode::start(Runtime::Worker, &["m"]).await;
    let app = pool_app(&[&node]).await;

    // Act
    let response = app.get("/status/nope").await;

    // Assert
    assert_eq!(response.status(), 404);
    crate::helpers::assert_openai_error(&json(response).await);
}

#[tokio::test]
async fn the_catch_all_fails_over_between_nodes_and_passes_client_errors_through() {
    // Arrange
    let broken = MockNode::start(Runtime::Worker, &["flux"]).await;
    let fine = MockNode::start(Runtime::Worker, &["other"]).await;
    let app = pool_builder(&[&broken, &fine])
        .settings("nodes: {health_interval_seconds: 30}")
        .settings("providers: [{id: nodes, kind: node_pool, worker_paths: [/generate, /reject]}]")
        .spawn()
        .await;
    wait_for_node(&app, &broken.url(), |v| v["online"] == true).await;
    wait_for_node(&app, &fine.url(), |v| v["online"] == true).await;
    broken.stop();
    fine.serve_jobs("job-7").await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .and(wiremock::matchers::path("/reject"))
        .respond_with(wiremock::ResponseTemplate::new(422).set_body_json(json!({"detail": "bad prompt"})))
        .mount(&fine.server)
        .await;

    // Act: the node with the model is cut off after its last health check.
    let accepted = app.post_raw("/generate", r#"{"model":"flux"}"#).await;
    let rejected = app.post_raw("/reject?x=1", r#"{"model":"other"}"#).await;

    // Assert
    assert_eq!(accepted.status(), 202);
    assert_eq!(header(&accepted, "x-ai-gateway-provider"), fine.id());
    assert_eq!(header(&accepted, "x-ai-gateway-attempts"), "2");
    let rejected_status = rejected.status();
    assert_eq!(rejected_status, 422, "a worker's 4xx reaches the client as it was sent");
    assert_eq!(json(rejected).await, json!({"detail": "bad prompt"}));
    let rows = app.history_rows(2).await;
    let endpoints: Vec<&str> = rows.iter().filter_map(|r| r["endpoint"].as_str()).collect();
    assert!(
        endpoints.contains(&"/generate") && endpoints.contains(&"/reject"),
        "{endpoints:?}"
    );
    assert!(rows.iter().all(|r| r["provider"] == "nodes"));
}

#[tokio::test]
async fn the_catch_all_needs_a_client_key_when_auth_is_on() {
    // Arrange
    let node = MockNode::start(Runtime::Worker, &["m"]).await;
    node.serve_jobs("job-1").await;
    let app: TestApp = pool_builder(&[&node])
        .env("API_KEYS", "sk-client")
        .env("AUTH_REQUIRED", "true")
        .spawn()
        .await;
    wait_for_node(&app, &node.url(), |v| v["online"] == true).await;

    // Act
    let anonymous = app.post_raw("/generate", "{}").await;
    let keyed = app
        .client
        .post(app.url("/generate"))
        .bearer_auth("sk-client")
        .body("{}")
        .send()
        .await
        .expect("POST /generate");

    // Assert
    assert_eq!(anonymous.status(), 401);
    assert_eq!(keyed.status(), 202);
}

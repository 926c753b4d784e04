//! `GET /api/v1/metrics?type=latency|errors|traffic[&endpoint=...]` (seed 002): JSON summaries
//! that count exactly the requests made.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{TestApp, assert_openai_error, json};

const ADMIN: &str = "admin-token";

async fn app_with(settings: Value) -> TestApp {
    TestApp::builder()
        .env("INTERNAL_API_TOKEN", ADMIN)
        // An admin token alone makes client auth required; these tests call clients anonymously.
        .env("AUTH_REQUIRED", "false")
        .settings(&settings.to_string())
        .spawn()
        .await
}

async fn summary(app: &TestApp, query: &str) -> reqwest::Response {
    app.client
        .get(app.url(&format!("/api/v1/metrics{query}")))
        .header("x-admin-token", ADMIN)
        .send()
        .await
        .unwrap()
}

fn row<'a>(rows: &'a Value, key: &str, name: &str) -> &'a Value {
    rows.as_array()
        .unwrap()
        .iter()
        .find(|r| r[key] == json!(name))
        .unwrap_or_else(|| panic!("no row {name} in {rows:#}"))
}

/// A service whose first target fails with 503 once, then answers: 3 requests, 4 attempts.
async fn traffic_on_predict() -> (TestApp, MockServer, MockServer) {
    let (first, second) = (MockServer::start().await, MockServer::start().await);
    Mock::given(method("POST"))
        .and(path("/predict"))
        .respond_with(ResponseTemplate::new(503))
        .up_to_n_times(1)
        .expect(1)
        .mount(&first)
        .await;
    Mock::given(method("POST"))
        .and(path("/predict"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": 1})))
        .expect(2)
        .mount(&first)
        .await;
    Mock::given(method("POST"))
        .and(path("/predict"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": 2})))
        .expect(1)
        .mount(&second)
        .await;
    let app = app_with(
        json!({"path_routes": [{"path": "/predict", "targets": [first.uri(), second.uri()], "auth": "none"}]}),
    )
    .await;
    for _ in 0..3 {
        let r = app.client.post(app.url("/predict")).body("{}").send().await.unwrap();
        assert_eq!(r.status(), 200);
    }
    let missing = app.client.get(app.url("/v1/models")).send().await.unwrap();
    assert_eq!(missing.status(), 200, "auth is off for built-in endpoints here");
    (app, first, second)
}

#[tokio::test]
async fn the_summaries_need_the_admin_token() {
    let app = app_with(json!({})).await;
    let response = app.client.get(app.url("/api/v1/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 401);
    assert_openai_error(&json(response).await);
}

#[tokio::test]
async fn an_unknown_type_gets_400_in_openai_shape() {
    let app = app_with(json!({})).await;
    let response = summary(&app, "?type=throughput").await;
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    assert_eq!(assert_openai_error(&body)["param"], json!("type"));
}

#[tokio::test]
async fn traffic_counts_every_request_per_endpoint_and_target() {
    // Arrange
    let (app, first, second) = traffic_on_predict().await;

    // Act
    let body = json(summary(&app, "?type=traffic").await).await;

    // Assert
    assert!(body.get("latency").is_none() && body.get("errors").is_none());
    let t = &body["traffic"];
    assert_eq!(t["total_requests"], json!(4));
    assert_eq!(t["requests_last_minute"], json!(4));
    assert_eq!(row(&t["endpoints"], "name", "/predict")["requests"], json!(3));
    assert_eq!(row(&t["endpoints"], "name", "/v1/models")["requests"], json!(1));
    let (a, b) = (first.address().port(), second.address().port());
    assert_eq!(
        row(&t["providers"], "name", &format!("127.0.0.1:{a}"))["requests"],
        json!(2)
    );
    assert_eq!(
        row(&t["providers"], "name", &format!("127.0.0.1:{b}"))["requests"],
        json!(1)
    );
}

#[tokio::test]
async fn errors_count_failed_attempts_per_target_and_responses_per_endpoint() {
    // Arrange
    let (app, first, second) = traffic_on_predict().await;

    // Act
    let body = json(summary(&app, "?type=errors&endpoint=/pred").await).await;

    // Assert
    let e = &body["errors"];
    assert_eq!(body["endpoint"], json!("/pred"));
    assert_eq!(
        e["endpoints"].as_array().unwrap().len(),
        1,
        "filtered to /predict: {e:#}"
    );
    let predict = row(&e["endpoints"], "endpoint", "/predict");
    assert_eq!(
        (predict["requests"].clone(), predict["server_errors"].clone()),
        (json!(3), json!(0))
    );
    let first_row = row(
        &e["providers"],
        "provider",
        &format!("127.0.0.1:{}", first.address().port()),
    );
    assert_eq!(first_row["attempts"], json!(3));
    assert_eq!(first_row["errors"], json!(1));
    assert_eq!(first_row["by_outcome"], json!({"server_error": 1, "success": 2}));
    let second_row = row(
        &e["providers"],
        "provider",
        &format!("127.0.0.1:{}", second.address().port()),
    );
    assert_eq!(
        (second_row["attempts"].clone(), second_row["errors"].clone()),
        (json!(1), json!(0))
    );
}

#[tokio::test]
async fn latency_has_percentiles_and_counts_and_no_type_means_all_three() {
    // Arrange
    let (app, first, _second) = traffic_on_predict().await;

    // Act
    let body = json(summary(&app, "").await).await;

    // Assert
    assert!(body["errors"].is_object() && body["traffic"].is_object());
    let l = &body["latency"];
    let predict = row(&l["endpoints"], "name", "/predict");
    assert_eq!(predict["count"], json!(3));
    let (p50, p99) = (predict["p50_ms"].as_f64().unwrap(), predict["p99_ms"].as_f64().unwrap());
    assert!(p50 > 0.0 && p50 <= p99, "{predict}");
    let target = row(
        &l["providers"],
        "name",
        &format!("127.0.0.1:{}", first.address().port()),
    );
    assert_eq!(target["count"], json!(3), "every attempt the first target answered");
}

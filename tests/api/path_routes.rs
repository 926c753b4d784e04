//! Path routes (seed 002): non-LLM services behind a path, proxied with method, path, query,
//! headers and body unchanged, failing over across targets, and the SSRF allow-list at config
//! load and at request time.

use ai_gateway::config::{Env, PathRouteConfig, Settings, load_str};
use ai_gateway::state::Live;
use serde_json::{Value, json};
use wiremock::matchers::{body_bytes, header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{SseMock, TestApp, assert_openai_error, closed_port_url, json, received};

/// A gateway with client key `sk-a` and the given `path_routes:` (and any other settings).
async fn app_with(settings: Value) -> TestApp {
    TestApp::builder()
        .env("API_KEYS", "sk-a")
        .settings(&settings.to_string())
        .spawn()
        .await
}

fn root(url: &str) -> String {
    url.trim_end_matches("/v1").to_owned()
}

async fn mount(server: &MockServer, status: u16, calls: u64) {
    Mock::given(method("POST"))
        .and(path("/predict"))
        .respond_with(ResponseTemplate::new(status).set_body_json(json!({"label": "cat"})))
        .expect(calls)
        .mount(server)
        .await;
}

async fn predict(app: &TestApp) -> reqwest::Response {
    app.client
        .post(app.url("/predict"))
        .bearer_auth("sk-a")
        .json(&json!({"input": "data"}))
        .send()
        .await
        .expect("POST /predict")
}

/// Replaces the live snapshot with `change` applied to its settings, skipping validation, as a
/// swap by a reload or the admin API looks to a request in flight.
fn swap_settings(app: &TestApp, change: impl FnOnce(&mut Settings)) {
    let old = app.state.live();
    let mut config = old.config.clone();
    change(&mut config.settings);
    let (live, _) = Live::build(config, Some(&old), &app.state.metrics, &app.state.spend.fetched);
    app.state.swap(live);
}

#[tokio::test]
async fn a_path_route_forwards_method_path_query_headers_and_body_unchanged() {
    // Arrange
    let service = MockServer::start().await;
    let raw = b"\x00raw model input, not JSON\xff".to_vec();
    Mock::given(method("PUT"))
        .and(path("/predict/v2/batch"))
        .and(query_param("version", "7"))
        .and(query_param("debug", "a b"))
        .and(header("x-custom", "kept"))
        .and(header("content-type", "application/octet-stream"))
        .and(body_bytes(raw.clone()))
        .respond_with(
            ResponseTemplate::new(201)
                .insert_header("x-model-version", "7")
                .set_body_raw("done", "text/plain"),
        )
        .expect(1)
        .mount(&service)
        .await;
    let app =
        app_with(json!({"path_routes": [{"path": "/predict", "target": service.uri(), "methods": ["POST", "PUT"]}]}))
            .await;

    // Act
    let response = app
        .client
        .put(app.url("/predict/v2/batch?version=7&debug=a%20b"))
        .bearer_auth("sk-a")
        .header("x-custom", "kept")
        .header("content-type", "application/octet-stream")
        .body(raw)
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), 201);
    let port = service.address().port();
    assert_eq!(response.headers()["x-model-version"], "7");
    assert_eq!(
        response.headers()["x-ai-gateway-provider"],
        format!("127.0.0.1:{port}").as_str()
    );
    assert_eq!(response.headers()["x-ai-gateway-attempts"], "1");
    assert_eq!(response.text().await.unwrap(), "done");
    let sent = &received(&service).await[0];
    assert!(
        sent.headers.get("authorization").is_none(),
        "the client's key must not reach the service"
    );
    assert!(sent.headers.get("x-request-id").is_some());
}

#[tokio::test]
async fn a_first_target_that_is_down_fails_over_to_the_second() {
    // Arrange
    let second = MockServer::start().await;
    mount(&second, 200, 1).await;
    let down = root(&closed_port_url());
    let app = app_with(json!({"path_routes": [{"path": "/predict", "targets": [down, second.uri()]}]})).await;

    // Act
    let response = predict(&app).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["x-ai-gateway-attempts"], "2");
    assert_eq!(json(response).await, json!({"label": "cat"}));
}

#[tokio::test]
async fn a_503_from_the_first_target_fails_over_to_the_second_with_exact_call_counts() {
    // Arrange
    let (first, second) = (MockServer::start().await, MockServer::start().await);
    mount(&first, 503, 1).await;
    mount(&second, 200, 1).await;
    let app = app_with(json!({"path_routes": [{"path": "/predict", "targets": [first.uri(), second.uri()]}]})).await;

    // Act
    let response = predict(&app).await;

    // Assert
    assert_eq!(response.status(), 200);
    let port = second.address().port();
    assert_eq!(
        response.headers()["x-ai-gateway-provider"],
        format!("127.0.0.1:{port}").as_str()
    );
}

#[tokio::test]
async fn every_target_failing_gives_502_in_openai_shape_and_a_4xx_is_relayed_without_failover() {
    // Arrange
    let (first, second) = (MockServer::start().await, MockServer::start().await);
    mount(&first, 500, 1).await;
    mount(&second, 502, 1).await;
    let (third, fourth) = (MockServer::start().await, MockServer::start().await);
    Mock::given(path("/classify"))
        .respond_with(ResponseTemplate::new(422).set_body_json(json!({"detail": "bad input"})))
        .expect(1)
        .mount(&third)
        .await;
    mount(&fourth, 200, 0).await;
    let app = app_with(json!({"path_routes": [
        {"path": "/predict", "targets": [first.uri(), second.uri()]},
        {"path": "/classify", "targets": [third.uri(), fourth.uri()]},
    ]}))
    .await;

    // Act
    let failed = predict(&app).await;
    let rejected = app
        .client
        .post(app.url("/classify"))
        .bearer_auth("sk-a")
        .body("x")
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(failed.status(), 502);
    assert_openai_error(&json(failed).await);
    assert_eq!(rejected.status(), 422);
    assert_eq!(json(rejected).await, json!({"detail": "bad input"}));
}

#[tokio::test]
async fn a_method_the_route_does_not_list_gets_405_in_openai_shape() {
    // Arrange
    let service = MockServer::start().await;
    mount(&service, 200, 0).await;
    let app = app_with(json!({"path_routes": [{"path": "/predict", "target": service.uri()}]})).await;

    // Act
    let response = app
        .client
        .get(app.url("/predict"))
        .bearer_auth("sk-a")
        .send()
        .await
        .unwrap();

    // Assert
    assert_eq!(response.status(), 405);
    let body = json(response).await;
    assert_eq!(assert_openai_error(&body)["code"], json!("method_not_allowed"));
}

#[tokio::test]
async fn other_paths_keep_their_old_answers_and_a_proxied_request_reaches_history() {
    // Arrange
    let service = MockServer::start().await;
    mount(&service, 200, 1).await;
    let app = app_with(json!({"path_routes": [{"path": "/predict", "target": service.uri()}]})).await;

    // Act
    let unknown = app.client.get(app.url("/predictor")).send().await.unwrap();
    let ok = predict(&app).await;

    // Assert
    assert_eq!(
        unknown.status(),
        404,
        "a path only starting like a route is not under it"
    );
    assert_eq!(ok.status(), 200);
    let rows = app.history_rows(1).await;
    assert_eq!(rows[0]["endpoint"], json!("/predict"));
    let port = service.address().port();
    assert_eq!(rows[0]["provider"], json!(format!("127.0.0.1:{port}")));
    assert_eq!(rows[0]["status"], json!("success"));
}

#[tokio::test]
async fn a_path_route_added_at_run_time_is_served_at_once() {
    // Arrange
    let service = MockServer::start().await;
    mount(&service, 200, 1).await;
    let app = app_with(json!({})).await;
    let before = predict(&app).await;

    // Act
    let target = service.uri();
    swap_settings(&app, |s| {
        s.path_routes
            .push(serde_json::from_value::<PathRouteConfig>(json!({"path": "/predict", "target": target})).unwrap());
    });
    let after = predict(&app).await;

    // Assert
    assert_eq!(before.status(), 404);
    assert_eq!(after.status(), 200);
}

#[test]
fn path_routes_that_would_shadow_built_in_endpoints_are_refused_with_every_problem() {
    let yaml = "path_routes:\n  - {path: /v1/predict, target: 'http://s:1'}\n  - {path: /health, target: 'http://s:1'}\n  - {path: /api/v1/x, target: 'ftp://s'}\n";
    let problems = load_str(yaml, &Env::default()).unwrap_err().problems;
    let about: Vec<&String> = problems.iter().filter(|p| p.starts_with("path_routes[")).collect();
    assert_eq!(about.len(), 4, "{problems:#?}");
    assert!(about[0].contains("/v1/predict") && about[0].contains("shadow"));
}

#[test]
fn a_target_outside_the_allow_list_is_refused_when_the_config_loads() {
    let yaml = "path_routes_allowed_networks: [10.0.0.0/8]\npath_routes:\n  - {path: /predict, targets: ['http://10.0.0.5:8080', 'http://169.254.169.254/latest']}\n";
    let problems = load_str(yaml, &Env::default()).unwrap_err().problems;
    assert_eq!(problems.len(), 1, "{problems:#?}");
    assert!(problems[0].contains("169.254.169.254") && problems[0].contains("path_routes_allowed_networks"));
    let ok = "path_routes_allowed_networks: [10.0.0.0/8]\npath_routes:\n  - {path: /predict, target: 'http://10.0.0.5:8080'}\n";
    assert!(load_str(ok, &Env::default()).is_ok());
}

#[tokio::test]
async fn a_target_resolving_outside_the_allow_list_at_request_time_is_refused_without_a_call() {
    // Arrange: `localhost` resolves into the allow-list when the config loads, and the request
    // reaches the service through the address that was checked.
    let service = MockServer::start().await;
    mount(&service, 200, 1).await;
    let target = format!("http://localhost:{}", service.address().port());
    let app = app_with(json!({
        "path_routes_allowed_networks": ["127.0.0.0/8", "::1/128"],
        "path_routes": [{"path": "/predict", "target": target}],
    }))
    .await;
    let allowed = predict(&app).await;
    let host = received(&service).await[0].headers["host"].to_str().unwrap().to_owned();

    // Act: the same name now resolves outside what is allowed (as after a DNS rebinding); the
    // snapshot is swapped without validation, so only the request-time check stands in the way.
    swap_settings(&app, |s| s.path_routes_allowed_networks = vec!["10.0.0.0/8".into()]);
    let refused = predict(&app).await;

    // Assert
    assert_eq!(allowed.status(), 200);
    assert_eq!(
        host,
        format!("localhost:{}", service.address().port()),
        "Host names the target"
    );
    assert_eq!(refused.status(), 503);
    let body = json(refused).await;
    assert!(
        assert_openai_error(&body)["message"]
            .as_str()
            .unwrap()
            .contains("path_routes_allowed_networks")
    );
}

#[tokio::test]
async fn the_answer_reaches_the_client_chunk_by_chunk() {
    // Arrange
    let service = SseMock::start_with_content_type("application/x-ndjson").await;
    let app = app_with(json!({"path_routes": [{"path": "/predict", "target": service.root_url()}]})).await;
    let request = app
        .client
        .post(app.url("/predict"))
        .bearer_auth("sk-a")
        .body("{}")
        .send();
    let (response, upstream) = tokio::join!(request, service.next_connection());
    let mut response = response.unwrap();

    // Act + Assert: each chunk reaches the client before the service is told to send the next.
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/x-ndjson");
    for part in ["{\"step\":1}\n", "{\"step\":2}\n"] {
        upstream.send_raw(part);
        assert_eq!(response.chunk().await.unwrap().unwrap(), part.as_bytes());
    }
    upstream.finish();
    assert_eq!(response.chunk().await.unwrap(), None);
}

#[tokio::test]
async fn an_open_breaker_skips_its_target_without_calling_it_and_shows_in_metrics() {
    // Arrange
    let (first, second) = (MockServer::start().await, MockServer::start().await);
    mount(&first, 503, 1).await;
    mount(&second, 200, 2).await;
    let app = app_with(json!({
        "routing": {"circuit_breaker": {"failure_threshold": 1}},
        "path_routes": [{"path": "/predict", "targets": [first.uri(), second.uri()]}],
    }))
    .await;

    // Act
    let tripped = predict(&app).await;
    let skipped = predict(&app).await;

    // Assert
    assert_eq!((tripped.status().as_u16(), skipped.status().as_u16()), (200, 200));
    assert_eq!(tripped.headers()["x-ai-gateway-attempts"], "2");
    assert_eq!(skipped.headers()["x-ai-gateway-attempts"], "1");
    let text = app.get("/metrics").await.text().await.unwrap();
    let series = format!(
        "gateway_breaker_state{{provider=\"127.0.0.1:{}\"}} 1",
        first.address().port()
    );
    assert!(text.contains(&series), "{series} not in /metrics");
}

#[tokio::test]
async fn a_path_routes_callback_gets_one_event_per_completed_request() {
    // Arrange
    let (service, receiver) = (MockServer::start().await, MockServer::start().await);
    mount(&service, 200, 1).await;
    Mock::given(method("POST"))
        .and(path("/hook"))
        .respond_with(ResponseTemplate::new(204))
        .expect(1)
        .mount(&receiver)
        .await;
    let callback = format!("{}/hook", receiver.uri());
    let app =
        app_with(json!({"path_routes": [{"path": "/predict", "target": service.uri(), "callback": callback}]})).await;

    // Act
    assert_eq!(predict(&app).await.status(), 200);

    // Assert
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while received(&receiver).await.is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let event: Value = serde_json::from_slice(&received(&receiver).await[0].body).unwrap();
    assert_eq!(event["route"], json!("/predict"));
    assert_eq!(event["endpoint"], json!("/predict"));
    assert_eq!(
        event["provider"],
        json!(format!("127.0.0.1:{}", service.address().port()))
    );
    assert_eq!(event["status_code"], json!(200));
}

//! `POST /ai/task` (seed 004's contract) with the decision engine, and `GET /provider/status`.

use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ProviderSpec, TestApp, assert_openai_error, failure, json, mount_chat, received, upstream_url};

const INVOICE: &str = "Invoice #INV-1042 from Acme Corp. Total amount: $5,000. Payment due: March 30, 2026.";

/// An OpenAI `chat.completion` whose answer is `content`.
fn answer(content: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "gpt-test",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    }))
}

async fn post_task(app: &TestApp, body: Value) -> reqwest::Response {
    app.client.post(app.url("/ai/task")).json(&body).send().await.unwrap()
}

async fn one(mock: &MockServer) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(mock)))
        .spawn()
        .await
}

#[tokio::test]
async fn summarize_answers_in_seed_004_shape() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, answer("A $5,000 invoice due March 30."), 1).await;
    let app = one(&alpha).await;

    // Act
    let response = post_task(&app, json!({"task": "summarize", "text": INVOICE, "provider": "auto"})).await;

    // Assert
    assert_eq!(response.status(), 200);
    let body = json(response).await;
    assert_eq!(body["provider_used"], json!("alpha"));
    assert_eq!(body["result"], json!("A $5,000 invoice due March 30."));
    assert_eq!(body["confidence"], json!(0.8));
    assert!(body["latency_ms"].is_u64());
    assert!(body.get("decision").is_none(), "no decision for summarize: {body}");
    let sent: Value = serde_json::from_slice(&received(&alpha).await[0].body).unwrap();
    assert_eq!(sent["model"], json!("gpt-test"));
    assert!(sent["messages"][0]["content"].as_str().unwrap().contains(INVOICE));
}

#[tokio::test]
async fn invoice_check_takes_the_models_validated_decision() {
    let alpha = MockServer::start().await;
    let model = r#"{"decision": "FAIL", "reasons": ["line items do not add up to the total"], "evidence": ["$5,000"]}"#;
    mount_chat(&alpha, answer(model), 1).await;
    let app = one(&alpha).await;
    let body = json(post_task(&app, json!({"task": "invoice_check", "text": INVOICE})).await).await;
    assert_eq!(body["decision"]["decision"], json!("FAIL"));
    assert_eq!(
        body["decision"]["reasons"],
        json!(["line items do not add up to the total"])
    );
    assert_eq!(
        body["confidence"],
        json!(0.8),
        "a valid structured answer keeps the confidence"
    );
}

#[tokio::test]
async fn invoice_check_falls_back_to_rules_and_lowers_confidence_when_the_answer_is_not_json() {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, answer("This invoice looks fine."), 1).await;
    let app = one(&alpha).await;
    let body = json(post_task(&app, json!({"task": "invoice_check", "text": INVOICE})).await).await;
    assert_eq!(body["decision"]["decision"], json!("PASS"));
    let evidence = body["decision"]["evidence"].as_array().unwrap();
    for field in ["amount", "total", "due"] {
        assert!(evidence.contains(&json!(field)), "{field} in {evidence:?}");
    }
    assert_eq!(body["confidence"], json!(0.56));
}

#[tokio::test]
async fn invoice_without_amount_needs_info_whatever_the_model_says() {
    let alpha = MockServer::start().await;
    mount_chat(
        &alpha,
        answer(r#"{"decision":"PASS","reasons":["ok"],"evidence":[]}"#),
        1,
    )
    .await;
    let app = one(&alpha).await;
    let text = "Invoice #12 from Acme Corp. Payment due: March 30, 2026.";
    let body = json(post_task(&app, json!({"task": "invoice_check", "text": text})).await).await;
    assert_eq!(body["decision"]["decision"], json!("NEEDS_INFO"));
}

#[tokio::test]
async fn document_review_returns_a_decision() {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, answer("Reviewed."), 1).await;
    let app = one(&alpha).await;
    let text = "Draft agreement between Acme and Beta dated 2026-01-01, signature: ______";
    let body = json(post_task(&app, json!({"task": "document_review", "text": text})).await).await;
    assert_eq!(body["decision"]["decision"], json!("FAIL"));
}

#[tokio::test]
async fn auto_falls_back_to_the_next_provider() {
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, failure(500), 1).await;
    mount_chat(&beta, answer("from beta"), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .spawn()
        .await;
    let body = json(post_task(&app, json!({"task": "summarize", "text": "x", "provider": "auto"})).await).await;
    assert_eq!(body["provider_used"], json!("beta"));
}

#[tokio::test]
async fn a_named_provider_is_tried_alone_and_its_failure_is_503() {
    // Arrange: beta would answer, but the client named alpha.
    let (alpha, beta) = (MockServer::start().await, MockServer::start().await);
    mount_chat(&alpha, failure(500), 1).await;
    mount_chat(&beta, answer("from beta"), 0).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .spawn()
        .await;

    // Act
    let response = post_task(&app, json!({"task": "summarize", "text": "x", "provider": "alpha"})).await;

    // Assert
    assert_eq!(response.status(), 503);
    let body = json(response).await;
    assert_eq!(assert_openai_error(&body)["code"], json!("all_providers_failed"));
}

#[tokio::test]
async fn every_provider_failing_is_503_in_openai_shape() {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, failure(502), 1).await;
    let app = one(&alpha).await;
    let response = post_task(&app, json!({"task": "summarize", "text": "x"})).await;
    assert_eq!(response.status(), 503);
    assert_openai_error(&json(response).await);
}

#[tokio::test]
async fn bad_task_requests_get_400_naming_the_field() {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, answer("x"), 0).await;
    let app = one(&alpha).await;
    let cases = [
        (json!({"text": "x"}), Some("task")),
        (json!({"task": "summarize"}), Some("text")),
        (json!({"task": "dance", "text": "x"}), Some("task")),
        (
            json!({"task": "summarize", "text": "x", "provider": "nobody"}),
            Some("provider"),
        ),
        (json!({"task": "summarize", "text": "  "}), Some("text")),
    ];
    for (body, param) in cases {
        let response = post_task(&app, body.clone()).await;
        assert_eq!(response.status(), 400, "{body}");
        let error = json(response).await;
        assert_eq!(assert_openai_error(&error)["param"], json!(param), "{body}");
    }
    let not_json = app.post_raw("/ai/task", "task=summarize").await;
    assert_eq!(not_json.status(), 400);
}

#[tokio::test]
async fn task_types_from_the_config_extend_the_built_in_ones() {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, answer("haiku"), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings("tasks: {types: {haiku: {prompt: 'Write a haiku about: {text}'}}}")
        .spawn()
        .await;
    let response = post_task(&app, json!({"task": "haiku", "text": "rust"})).await;
    assert_eq!(response.status(), 200);
    let sent: Value = serde_json::from_slice(&received(&alpha).await[0].body).unwrap();
    assert_eq!(sent["messages"][0]["content"], json!("Write a haiku about: rust"));
}

#[tokio::test]
async fn task_requests_leave_history_rows_with_their_task() {
    let alpha = MockServer::start().await;
    mount_chat(&alpha, answer("ok"), 1).await;
    let app = one(&alpha).await;
    post_task(&app, json!({"task": "classify", "text": "hello"})).await;
    let row = &app.history_rows(1).await[0];
    assert_eq!(row["task"], json!("classify"));
    assert_eq!(row["endpoint"], json!("/ai/task"));
    assert_eq!(row["result_summary"], json!("ok"));
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(metrics.contains(r#"ai_request_count{provider="alpha",status="success",task="classify"} 1"#));
}

#[tokio::test]
async fn provider_status_lists_breaker_last_error_and_latency() {
    // Arrange
    let alpha = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(failure(500))
        .mount(&alpha)
        .await;
    let app = one(&alpha).await;
    post_task(&app, json!({"task": "summarize", "text": "x"})).await;

    // Act
    let status = json(app.get("/provider/status").await).await;

    // Assert
    let providers = status["providers"].as_array().unwrap();
    let alpha = &providers[0];
    assert_eq!(alpha["id"], json!("alpha"));
    assert_eq!(alpha["enabled"], json!(true));
    assert_eq!(alpha["key_configured"], json!(true));
    assert_eq!(alpha["breaker"], json!("closed"));
    assert!(
        alpha["last_error"]
            .as_str()
            .unwrap()
            .starts_with("server_error HTTP 500")
    );
    assert!(alpha["latency_ms_p50"].is_u64());
    let openai = providers
        .iter()
        .find(|p| p["id"] == json!("openai"))
        .expect("catalogue providers are listed");
    assert_eq!(openai["enabled"], json!(false));
}

#[tokio::test]
async fn with_no_provider_enabled_a_task_gets_503_saying_how_to_enable_one() {
    let app = TestApp::builder().spawn().await;
    let response = post_task(&app, json!({"task": "summarize", "text": "x"})).await;
    assert_eq!(response.status(), 503);
    let body = json(response).await;
    assert!(
        assert_openai_error(&body)["message"]
            .as_str()
            .unwrap()
            .contains("no provider is enabled")
    );
}

//! Per-request fallbacks (`models`, OpenRouter's shape; `fallbacks`, LiteLLM's): the order models
//! are tried in, what the upstreams see (never the lists), and the allow-list checked before any
//! call. Mock upstreams answer in each provider's own error format.

use std::time::Duration;

use ai_gateway::auth::{digest, key_prefix};
use ai_gateway::store::{StoredKey, now_ms};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{
    ProviderSpec, TestApp, assert_openai_error, chat_body, completion, fixtures, header, json, mount_chat, received,
    upstream_url,
};

/// OpenAI's answer when a model is overloaded.
fn openai_503() -> ResponseTemplate {
    ResponseTemplate::new(503).set_body_json(json!({"error": {
        "message": "The server is overloaded or not ready yet.", "type": "server_error", "param": null, "code": null
    }}))
}

/// Anthropic's overloaded answer.
fn anthropic_overloaded() -> ResponseTemplate {
    ResponseTemplate::new(529).set_body_json(json!({
        "type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}
    }))
}

/// The JSON bodies `server` received.
async fn bodies(server: &MockServer) -> Vec<Value> {
    received(server)
        .await
        .iter()
        .map(|r| serde_json::from_slice(&r.body).expect("upstream body is JSON"))
        .collect()
}

/// Neither list reached the upstream.
fn no_lists(body: &Value) {
    assert!(
        body.get("models").is_none() && body.get("fallbacks").is_none(),
        "{body}"
    );
}

/// `(provider, upstream_model, outcome)` of each attempt of a history row.
fn attempts(row: &Value) -> Vec<(String, String, String)> {
    row["attempts"]
        .as_array()
        .unwrap_or_else(|| panic!("attempts: {row}"))
        .iter()
        .map(|a| {
            let text = |k: &str| a[k].as_str().unwrap_or_default().to_owned();
            (text("provider"), text("model"), text("outcome"))
        })
        .collect()
}

fn attempt(provider: &str, model: &str, outcome: &str) -> (String, String, String) {
    (provider.into(), model.into(), outcome.into())
}

/// `alpha` serves `gpt-a`, `beta` serves `gpt-b`, `gamma` serves `gpt-c`.
async fn three_models(alpha: &MockServer, beta: &MockServer, gamma: &MockServer, settings: &str) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(alpha)).models(&["gpt-a"]))
        .provider(ProviderSpec::new("beta", upstream_url(beta)).models(&["gpt-b"]))
        .provider(ProviderSpec::new("gamma", upstream_url(gamma)).models(&["gpt-c"]))
        .settings(settings)
        .spawn()
        .await
}

#[tokio::test]
async fn models_are_tried_in_order_and_history_names_the_one_that_answered() {
    // Arrange: the requested model's provider is overloaded; the first listed model answers.
    let (alpha, beta, gamma) = (
        MockServer::start().await,
        MockServer::start().await,
        MockServer::start().await,
    );
    mount_chat(&alpha, openai_503(), 1).await;
    mount_chat(&beta, completion(), 1).await;
    mount_chat(&gamma, completion(), 0).await;
    let app = three_models(&alpha, &beta, &gamma, "{}").await;
    let mut body = chat_body("gpt-a");
    // OpenRouter's clients repeat `model` first.
    body["models"] = json!(["gpt-a", "gpt-b", "gpt-c"]);

    // Act
    let response = app.post_chat(&body).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    let first = &bodies(&alpha).await[0];
    let second = &bodies(&beta).await[0];
    assert_eq!((&first["model"], &second["model"]), (&json!("gpt-a"), &json!("gpt-b")));
    no_lists(first);
    no_lists(second);
    assert_eq!(second["messages"], body["messages"], "the rest of the body is as sent");
    app.history_rows(1).await;
    let history = json(app.get("/history").await).await;
    let row = &history[0];
    assert_eq!(row["model"], json!("gpt-a"));
    assert_eq!(row["upstream_model"], json!("gpt-b"));
    assert_eq!(row["provider"], json!("beta"));
    assert_eq!(
        attempts(row),
        [
            attempt("alpha", "gpt-a", "server_error"),
            attempt("beta", "gpt-b", "success")
        ]
    );
}

#[tokio::test]
async fn fallbacks_work_the_same_on_the_messages_api_and_never_reach_the_upstream() {
    // Arrange: two Anthropic providers; the first is overloaded.
    let (first, second) = (MockServer::start().await, MockServer::start().await);
    for (mock, answer, calls) in [
        (&first, anthropic_overloaded(), 1),
        (
            &second,
            ResponseTemplate::new(200).set_body_raw(fixtures::anthropic::MESSAGE, "application/json"),
            1,
        ),
    ] {
        Mock::given(method("POST"))
            .and(path("/v1/messages"))
            .respond_with(answer)
            .expect(calls)
            .mount(mock)
            .await;
    }
    let app = TestApp::builder()
        .provider(
            ProviderSpec::new("claude-a", first.uri())
                .kind("anthropic")
                .models(&["claude-a"]),
        )
        .provider(
            ProviderSpec::new("claude-b", second.uri())
                .kind("anthropic")
                .models(&["claude-b"]),
        )
        .spawn()
        .await;
    let body = json!({
        "model": "claude-a", "max_tokens": 64, "fallbacks": ["claude-b"],
        "messages": [{"role": "user", "content": "Hello"}]
    });

    // Act
    let response = app.post_messages(&body).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "claude-b");
    assert_eq!(json(response).await["type"], json!("message"));
    let sent = &bodies(&second).await[0];
    assert_eq!(sent["model"], json!("claude-b"));
    no_lists(sent);
    no_lists(&bodies(&first).await[0]);
    let rows = app.history_rows(1).await;
    assert_eq!(rows[0]["upstream_model"], json!("claude-b"));
}

#[tokio::test]
async fn embeddings_take_fallback_models_too() {
    let (alpha, beta, gamma) = (
        MockServer::start().await,
        MockServer::start().await,
        MockServer::start().await,
    );
    for (mock, answer, calls) in [
        (&alpha, openai_503(), 1),
        (
            &beta,
            ResponseTemplate::new(200).set_body_raw(fixtures::EMBEDDINGS, "application/json"),
            1,
        ),
    ] {
        Mock::given(method("POST"))
            .and(path("/v1/embeddings"))
            .respond_with(answer)
            .expect(calls)
            .mount(mock)
            .await;
    }
    let app = three_models(&alpha, &beta, &gamma, "{}").await;

    let response = app
        .post_json(
            "/v1/embeddings",
            &json!({"model": "gpt-a", "input": "hi", "models": ["gpt-b"]}),
        )
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    let sent = &bodies(&beta).await[0];
    assert_eq!(sent["model"], json!("gpt-b"));
    no_lists(sent);
}

/// A virtual key that may use only `models` (comma-separated).
async fn narrow_key(app: &TestApp, key: &str, models: &str) {
    app.store
        .insert_key(&StoredKey {
            id: uuid::Uuid::now_v7().to_string(),
            name: "narrow".into(),
            key_hash: digest(key).hex(),
            key_prefix: key_prefix(key),
            rpm: None,
            tpm: None,
            models: Some(models.into()),
            created_at: now_ms(),
            expires_at: None,
            revoked_at: None,
            team: None,
            priority: None,
            user_name: None,
        })
        .await
        .expect("key stored");
    // The key refresh runs every 100 ms: until then the key is unknown (401); once loaded, a
    // model it may not use is refused (403) without any upstream call.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = app
            .client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(key)
            .json(&chat_body("not-allowed"))
            .send()
            .await
            .unwrap()
            .status();
        if status == 403 {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the key was never loaded ({status})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_listed_model_the_key_may_not_use_refuses_the_request_before_any_call() {
    // Arrange: the key may use gpt-a and gpt-b, not gpt-c.
    let (alpha, beta, gamma) = (
        MockServer::start().await,
        MockServer::start().await,
        MockServer::start().await,
    );
    for mock in [&alpha, &beta, &gamma] {
        mount_chat(mock, completion(), 0).await;
    }
    let app = three_models(
        &alpha,
        &beta,
        &gamma,
        "auth: {api_keys: [sk-static], refresh_seconds: 0.1}",
    )
    .await;
    narrow_key(&app, "sk-aigw-narrow", "gpt-a,gpt-b").await;

    for list in ["models", "fallbacks"] {
        let mut body = chat_body("gpt-a");
        body[list] = json!(["gpt-b", "gpt-c"]);

        // Act
        let response = app
            .client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth("sk-aigw-narrow")
            .json(&body)
            .send()
            .await
            .unwrap();

        // Assert: the same refusal as for `model`, and no upstream was called (`expect(0)`).
        assert_eq!(response.status(), 403, "{list}");
        let body = json(response).await;
        let error = assert_openai_error(&body);
        assert_eq!(error["code"], json!("model_not_allowed"));
        assert!(error["message"].as_str().unwrap().contains("gpt-c"), "{error}");
    }
}

#[tokio::test]
async fn a_wrong_list_is_a_400_naming_it_and_an_unknown_model_a_404() {
    let (alpha, beta, gamma) = (
        MockServer::start().await,
        MockServer::start().await,
        MockServer::start().await,
    );
    mount_chat(&alpha, completion(), 0).await;
    let app = three_models(&alpha, &beta, &gamma, "{}").await;
    for (extra, param) in [
        (json!({"models": ["gpt-b"], "fallbacks": ["gpt-c"]}), "fallbacks"),
        (json!({"models": "gpt-b"}), "models"),
        (json!({"fallbacks": ["gpt-b", 3]}), "fallbacks"),
        (json!({"models": ["", "gpt-b"]}), "models"),
    ] {
        let mut body = chat_body("gpt-a");
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        let response = app.post_chat(&body).await;
        assert_eq!(response.status(), 400, "{extra}");
        let body = json(response).await;
        assert_eq!(assert_openai_error(&body)["param"], json!(param), "{extra}");
    }
    let mut body = chat_body("gpt-a");
    body["models"] = json!(["gpt-b", "gpt-typo"]);
    let response = app.post_chat(&body).await;
    assert_eq!(
        response.status(),
        404,
        "an unknown listed model is not skipped silently"
    );
    assert_eq!(json(response).await["error"]["code"], json!("model_not_found"));
}

#[tokio::test]
async fn under_a_users_namespace_a_listed_route_not_granted_refuses_the_request() {
    // Arrange: alice is granted route `r-a` only.
    let (alpha, beta, gamma) = (
        MockServer::start().await,
        MockServer::start().await,
        MockServer::start().await,
    );
    for mock in [&alpha, &beta, &gamma] {
        mount_chat(mock, completion(), 0).await;
    }
    let app = three_models(
        &alpha,
        &beta,
        &gamma,
        "auth: {jwt: {hs256_secret: fallbacks-secret}}\n\
         routes: [{name: r-a, targets: ['alpha:gpt-a']}, {name: r-b, targets: ['beta:gpt-b']}]\n\
         users: [{name: alice, routes: [r-a]}]",
    )
    .await;
    let claims = json!({"sub": "alice", "exp": now_ms() / 1000 + 300});
    let token = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(b"fallbacks-secret"),
    )
    .unwrap();
    let mut body = chat_body("r-a");
    body["models"] = json!(["r-b"]);

    // Act
    let response = app
        .client
        .post(app.url("/api/u/alice/chat/completions"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();

    // Assert: refused as `model` would be, before any call.
    assert_eq!(response.status(), 403);
    let body = json(response).await;
    assert_eq!(assert_openai_error(&body)["type"], json!("permission_error"));
    assert!(body["error"]["message"].as_str().unwrap().contains("r-b"), "{body}");
}

#[tokio::test]
async fn legacy_completions_take_fallback_models_too() {
    let (alpha, beta, gamma) = (
        MockServer::start().await,
        MockServer::start().await,
        MockServer::start().await,
    );
    mount_chat(&alpha, openai_503(), 1).await;
    mount_chat(&beta, completion(), 1).await;
    let app = three_models(&alpha, &beta, &gamma, "{}").await;

    let response = app
        .post_json(
            "/v1/completions",
            &json!({"model": "gpt-a", "prompt": "Say hi", "fallbacks": ["gpt-b"]}),
        )
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(json(response).await["object"], json!("text_completion"));
    let sent = &bodies(&beta).await[0];
    assert_eq!(sent["model"], json!("gpt-b"));
    no_lists(sent);
}

#[tokio::test]
async fn the_responses_api_takes_fallback_models_too() {
    let (alpha, beta, gamma) = (
        MockServer::start().await,
        MockServer::start().await,
        MockServer::start().await,
    );
    mount_chat(&alpha, openai_503(), 1).await;
    mount_chat(&beta, completion(), 1).await;
    let app = three_models(&alpha, &beta, &gamma, "{}").await;

    let response = app
        .post_json(
            "/v1/responses",
            &json!({"model": "gpt-a", "input": "Say hi", "models": ["gpt-b"], "store": false}),
        )
        .await;

    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "beta");
    assert_eq!(json(response).await["object"], json!("response"));
    let sent = &bodies(&beta).await[0];
    assert_eq!(sent["model"], json!("gpt-b"));
    no_lists(sent);
}

//! Per-request fallbacks (`models`, OpenRouter's shape; `fallbacks`, LiteLLM's) and a route's
//! `on_context_length_exceeded`: the order models are tried in, what the upstreams see (never the
//! lists), the allow-list checked before any call, and which refusals go to a larger route.
//! Mock upstreams answer in each provider's own error format.

use std::time::Duration;

use ai_gateway::auth::{digest, key_prefix};
use ai_gateway::store::{StoredKey, now_ms};
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::admin_api::{admin, admin_app};
use crate::helpers::{
    ProviderSpec, TestApp, assert_openai_error, chat_body, completion, failure, fixtures, header, json, mount_chat,
    received, stream_body, upstream_url,
};

/// OpenAI's answer when a model is overloaded.
fn openai_503() -> ResponseTemplate {
    ResponseTemplate::new(503).set_body_json(json!({"error": {
        "message": "The server is overloaded or not ready yet.", "type": "server_error", "param": null, "code": null
    }}))
}

/// OpenAI's refusal of a prompt longer than the model's window.
fn openai_too_long() -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({"error": {
        "message": "This model's maximum context length is 8192 tokens. However, your messages resulted in 9013 tokens. Please reduce the length of the messages.",
        "type": "invalid_request_error", "param": "messages", "code": "context_length_exceeded"
    }}))
}

/// Anthropic's refusal of a prompt longer than the model's window.
fn anthropic_too_long() -> ResponseTemplate {
    ResponseTemplate::new(400).set_body_json(json!({
        "type": "error",
        "error": {"type": "invalid_request_error", "message": "prompt is too long: 208310 tokens > 200000 maximum"},
        "request_id": "req_011CUB2XUHWkFnQzxcKBbjpF"
    }))
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
    let (alpha, beta, gamma) = three_servers().await;
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
    let (alpha, beta, gamma) = three_servers().await;
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
    let (alpha, beta, gamma) = never_called().await;
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
    let (alpha, beta, gamma) = three_servers().await;
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

/// The three upstreams `context_app` takes.
async fn three_servers() -> (MockServer, MockServer, MockServer) {
    (
        MockServer::start().await,
        MockServer::start().await,
        MockServer::start().await,
    )
}

/// Three upstreams that must never be called (checked when they drop).
async fn never_called() -> (MockServer, MockServer, MockServer) {
    let servers = three_servers().await;
    for mock in [&servers.0, &servers.1, &servers.2] {
        mount_chat(mock, completion(), 0).await;
    }
    servers
}

/// History says `small` refused the prompt as too long and `long` answered.
async fn assert_small_refused_then_long_answered(app: &TestApp) {
    let rows = app.history_rows(1).await;
    assert_eq!(rows[0]["upstream_model"], json!("long-model"));
    assert_eq!(
        attempts(&rows[0]),
        [
            attempt("small", "small-model", "context_length_exceeded"),
            attempt("long", "long-model", "success")
        ]
    );
}

/// `small` (OpenAI protocol, `small-model`) and `haiku` (Anthropic, `claude-small`) each behind
/// a route whose `on_context_length_exceeded` is `long-context` (`long`, `long-model`).
async fn context_app(small: &MockServer, claude: &MockServer, long: &MockServer) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("small", upstream_url(small)).models(&["small-model"]))
        .provider(
            ProviderSpec::new("haiku", claude.uri())
                .kind("anthropic")
                .models(&["claude-small"]),
        )
        .provider(ProviderSpec::new("long", upstream_url(long)).models(&["long-model"]))
        .settings(
            "routes:\n\
             - {name: chat, targets: ['small:small-model'], on_context_length_exceeded: [long-context]}\n\
             - {name: claude-chat, targets: ['haiku:claude-small'], on_context_length_exceeded: [long-context]}\n\
             - {name: long-context, targets: ['long:long-model']}\n",
        )
        .spawn()
        .await
}

#[tokio::test]
async fn an_openai_context_length_refusal_goes_to_the_larger_route() {
    // Arrange
    let (small, claude, long) = three_servers().await;
    mount_chat(&small, openai_too_long(), 1).await;
    mount_chat(&long, completion(), 1).await;
    let app = context_app(&small, &claude, &long).await;

    // Act
    let response = app.post_chat(&chat_body("chat")).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "long");
    assert_eq!(header(&response, "x-ai-gateway-attempts"), "2");
    assert_eq!(bodies(&long).await[0]["model"], json!("long-model"));
    assert_small_refused_then_long_answered(&app).await;
}

#[tokio::test]
async fn an_anthropic_prompt_is_too_long_refusal_goes_to_the_larger_route() {
    // Arrange
    let (small, claude, long) = three_servers().await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(anthropic_too_long())
        .expect(1)
        .mount(&claude)
        .await;
    mount_chat(&long, completion(), 1).await;
    let app = context_app(&small, &claude, &long).await;

    // Act
    let response = app.post_chat(&chat_body("claude-chat")).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "long");
    assert_eq!(json(response).await, fixtures::json(fixtures::CHAT_COMPLETION));
}

#[tokio::test]
async fn any_other_refusal_is_returned_as_it_is_and_the_larger_route_is_never_called() {
    // Arrange: `small` refuses a parameter (OpenAI's error fixture).
    let (small, claude, long) = three_servers().await;
    mount_chat(&small, failure(400), 1).await;
    mount_chat(&long, completion(), 0).await;
    let app = context_app(&small, &claude, &long).await;

    // Act
    let response = app.post_chat(&chat_body("chat")).await;

    // Assert
    assert_eq!(response.status(), 400);
    let body = json(response).await;
    let error = assert_openai_error(&body);
    assert_eq!(error["param"], json!("temperature"));
    assert_eq!(error["code"], json!("invalid_type"));
    let rows = app.history_rows(1).await;
    assert_eq!(attempts(&rows[0]), [attempt("small", "small-model", "rejected")]);
}

#[tokio::test]
async fn a_too_long_refusal_without_anywhere_to_go_is_returned_as_it_is() {
    // `long-context` has no `on_context_length_exceeded` of its own.
    let (small, claude, long) = three_servers().await;
    mount_chat(&long, openai_too_long(), 1).await;
    mount_chat(&small, completion(), 0).await;
    let app = context_app(&small, &claude, &long).await;

    let response = app.post_chat(&chat_body("long-context")).await;

    assert_eq!(response.status(), 400);
    let body = json(response).await;
    assert_eq!(assert_openai_error(&body)["code"], json!("context_length_exceeded"));
}

#[tokio::test]
async fn a_stream_refused_as_too_long_is_opened_on_the_larger_route() {
    // Arrange: the refusal comes before any byte, so the stream can still go elsewhere.
    let (small, claude, long) = three_servers().await;
    mount_chat(&small, openai_too_long(), 1).await;
    mount_chat(
        &long,
        ResponseTemplate::new(200).set_body_raw(fixtures::CHAT_COMPLETION_CHUNKS, "text/event-stream"),
        1,
    )
    .await;
    let app = context_app(&small, &claude, &long).await;
    let mut body = stream_body("chat");
    body["models"] = json!(["chat"]);

    // Act
    let response = app.post_chat(&body).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "long");
    let text = response.text().await.unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    no_lists(&bodies(&small).await[0]);
    assert_small_refused_then_long_answered(&app).await;
}

#[tokio::test]
async fn a_too_long_prompt_goes_on_to_the_requests_own_models_after_the_route() {
    // Arrange: `chat` refuses as too long, `long-context` is overloaded, the client's own model
    // (on `haiku`) answers in Anthropic's format.
    let (small, claude, long) = three_servers().await;
    mount_chat(&small, openai_too_long(), 1).await;
    mount_chat(&long, openai_503(), 1).await;
    Mock::given(method("POST"))
        .and(path("/v1/messages"))
        .respond_with(ResponseTemplate::new(200).set_body_raw(fixtures::anthropic::MESSAGE, "application/json"))
        .expect(1)
        .mount(&claude)
        .await;
    let app = context_app(&small, &claude, &long).await;
    let mut body = chat_body("chat");
    body["fallbacks"] = json!(["claude-small"]);

    // Act
    let response = app.post_chat(&body).await;

    // Assert
    assert_eq!(response.status(), 200);
    assert_eq!(header(&response, "x-ai-gateway-provider"), "haiku");
    let rows = app.history_rows(1).await;
    assert_eq!(
        attempts(&rows[0]),
        [
            attempt("small", "small-model", "context_length_exceeded"),
            attempt("long", "long-model", "server_error"),
            attempt("haiku", "claude-small", "success")
        ]
    );
}

#[tokio::test]
async fn the_admin_api_takes_and_checks_on_context_length_exceeded() {
    let mock = MockServer::start().await;
    let app = admin_app()
        .provider(ProviderSpec::new("alpha", upstream_url(&mock)))
        .spawn()
        .await;
    let route =
        json!({"name": "chat", "targets": ["alpha:gpt-test"], "on_context_length_exceeded": ["long", "gpt-test"]});

    let (status, created) = admin(&app, Method::POST, "/api/v1/routes", Some(route)).await;

    assert_eq!(status, 201, "{created}");
    assert_eq!(
        created["item"]["on_context_length_exceeded"],
        json!(["long", "gpt-test"])
    );
    let live = app.state.live();
    let stored = live.config.settings.routes.iter().find(|r| r.name == "chat").unwrap();
    assert_eq!(stored.on_context_length_exceeded, ["long", "gpt-test"]);
    let (status, bad) = admin(
        &app,
        Method::POST,
        "/api/v1/routes",
        Some(json!({"name": "loop", "targets": ["alpha:gpt-test"], "on_context_length_exceeded": ["", "loop"]})),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    let message = assert_openai_error(&bad)["message"].as_str().unwrap().to_owned();
    assert!(
        message.contains("an entry is empty") && message.contains("the route itself"),
        "{message}"
    );
}

#[tokio::test]
async fn under_a_users_namespace_a_listed_route_not_granted_refuses_the_request() {
    // Arrange: alice is granted route `r-a` only.
    let (alpha, beta, gamma) = never_called().await;
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
    let (alpha, beta, gamma) = three_servers().await;
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
    let (alpha, beta, gamma) = three_servers().await;
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

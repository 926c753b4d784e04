//! A reload that changes `auth:` applies it, or refuses loudly: never runs on with the old keys.

use ai_gateway::admin::{ReloadCause, reload_file};
use serde_json::{Value, json};
use wiremock::MockServer;
use wiremock::matchers::path;

use crate::helpers::{ProviderSpec, TEST_MODEL, TestApp, chat_body, completion, upstream_url};

fn rewrite(app: &TestApp, edit: impl FnOnce(&mut Value)) {
    let text = std::fs::read_to_string(app.config_path()).unwrap();
    let mut tree: Value = serde_json::from_str(&text).unwrap();
    edit(&mut tree);
    std::fs::write(app.config_path(), serde_json::to_vec_pretty(&tree).unwrap()).unwrap();
}

async fn chat(app: &TestApp, key: &str) -> u16 {
    app.client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&chat_body(TEST_MODEL))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

async fn app(settings: &str) -> (TestApp, MockServer) {
    let alpha = MockServer::start().await;
    wiremock::Mock::given(path("/v1/chat/completions"))
        .respond_with(completion())
        .mount(&alpha)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(settings)
        .settings("reload: {watch_file: false}")
        .spawn()
        .await;
    (app, alpha)
}

#[tokio::test]
async fn a_static_key_removed_from_the_file_stops_working_at_the_reload() {
    // Arrange
    let (app, _alpha) = app("auth: {api_keys: [sk-leaked, sk-new], admin_token: old-admin-token}").await;
    assert_eq!(chat(&app, "sk-leaked").await, 200);

    // Act: the operator removes the leaked key and rotates the admin token, then sends SIGHUP.
    rewrite(&app, |tree| {
        tree["auth"]["api_keys"] = json!(["sk-new"]);
        tree["auth"]["admin_token"] = json!("new-admin-token");
    });
    reload_file(&app.state, ReloadCause::Signal).await.unwrap();

    // Assert
    assert_eq!(chat(&app, "sk-leaked").await, 401);
    assert_eq!(chat(&app, "sk-new").await, 200);
    let cleanup = |token: &'static str| {
        app.client
            .post(app.url("/history/cleanup"))
            .header("x-admin-token", token)
            .send()
    };
    assert_eq!(cleanup("old-admin-token").await.unwrap().status(), 401);
    assert_eq!(cleanup("new-admin-token").await.unwrap().status(), 200);
}

#[tokio::test]
async fn a_reload_whose_auth_cannot_be_built_is_refused_and_the_old_auth_stays() {
    let (app, _alpha) = app("auth: {api_keys: [sk-a]}").await;
    rewrite(&app, |tree| {
        tree["auth"]["api_keys"] = json!(["sk-b"]);
        tree["auth"]["jwt"] = json!({"rs256_public_key_file": "/nonexistent/key.pem"});
    });
    let err = reload_file(&app.state, ReloadCause::Signal).await.unwrap_err();
    assert!(
        err.problems.iter().any(|p| p.contains("rs256_public_key_file")),
        "{err}"
    );
    assert_eq!(chat(&app, "sk-a").await, 200);
    assert_eq!(chat(&app, "sk-b").await, 401);
}

#[tokio::test]
async fn a_reload_that_adds_the_first_key_turns_auth_on() {
    let (app, _alpha) = app("{}").await;
    let anonymous = || {
        app.client
            .post(app.url("/v1/chat/completions"))
            .json(&chat_body(TEST_MODEL))
            .send()
    };
    assert_eq!(anonymous().await.unwrap().status(), 200);
    rewrite(&app, |tree| tree["auth"] = json!({"api_keys": ["sk-first"]}));
    reload_file(&app.state, ReloadCause::Signal).await.unwrap();
    assert_eq!(anonymous().await.unwrap().status(), 401);
    assert_eq!(chat(&app, "sk-first").await, 200);
}

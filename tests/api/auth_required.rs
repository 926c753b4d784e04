//! Whether auth is required comes from configuration and history (`auth.required`), never from how
//! many virtual keys are loaded right now: revoking the last key must not open the gateway.

use std::time::Duration;

use ai_gateway::auth::{digest, key_prefix};
use ai_gateway::store::{HistoryStore, StoredKey, now_ms};
use wiremock::MockServer;

use crate::helpers::db::fresh_postgres_database;
use crate::helpers::tcp_proxy::TcpProxy;
use crate::helpers::{ProviderSpec, TEST_MODEL, TestApp, chat_body, completion, upstream_url};

fn stored_key(key: &str, name: &str, expires_at: Option<i64>) -> StoredKey {
    StoredKey {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.to_owned(),
        key_hash: digest(key).hex(),
        key_prefix: key_prefix(key),
        rpm: None,
        tpm: None,
        models: None,
        created_at: now_ms(),
        expires_at,
        revoked_at: None,
        team: None,
        priority: None,
        user_name: None,
    }
}

async fn upstream() -> MockServer {
    let alpha = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::path("/v1/chat/completions"))
        .respond_with(completion())
        .mount(&alpha)
        .await;
    alpha
}

async fn app(settings: &str, alpha: &MockServer) -> TestApp {
    TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(alpha)))
        .settings(settings)
        .spawn()
        .await
}

async fn chat(app: &TestApp, key: Option<&str>) -> u16 {
    let mut request = app
        .client
        .post(app.url("/v1/chat/completions"))
        .json(&chat_body(TEST_MODEL));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn get(app: &TestApp, path: &str, key: Option<&str>) -> u16 {
    let mut request = app.client.get(app.url(path));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap().status().as_u16()
}

async fn eventually_chat(app: &TestApp, key: Option<&str>, want: u16) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let status = chat(app, key).await;
        if status == want {
            return;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{key:?} still answers {status}, wanted {want}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Sleeps until a little after `expiry` (epoch ms).
async fn sleep_past(expiry: i64) {
    let left = u64::try_from(expiry - now_ms()).unwrap_or(0);
    tokio::time::sleep(Duration::from_millis(left + 300)).await;
}

#[tokio::test]
async fn revoking_the_last_virtual_key_does_not_open_the_gateway() {
    // Arrange: no static key, no JWT: the only credential is one virtual key.
    let alpha = upstream().await;
    let app = app("auth: {refresh_seconds: 0.1}", &alpha).await;
    app.store
        .insert_key(&stored_key("sk-aigw-only-one", "alice", None))
        .await
        .unwrap();
    eventually_chat(&app, None, 401).await;
    // Anonymous callers are refused before the first key refresh (fail closed): wait for the key.
    eventually_chat(&app, Some("sk-aigw-only-one"), 200).await;

    // Act: the attacker waits for the last key to be revoked.
    assert_eq!(app.store.revoke_key("alice").await.unwrap(), 1);
    eventually_chat(&app, Some("sk-aigw-only-one"), 401).await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    // Assert: nobody gets in, not anonymously, not with the revoked key, not on any user's namespace.
    assert_eq!(chat(&app, None).await, 401);
    assert_eq!(chat(&app, Some("sk-aigw-only-one")).await, 401);
    assert_eq!(get(&app, "/history", None).await, 401);
    assert_eq!(get(&app, "/history", Some("sk-aigw-only-one")).await, 401);
    assert_eq!(get(&app, "/api/u/alice/models", None).await, 401);
    assert_eq!(get(&app, "/api/u/bob/models", None).await, 401);
}

#[tokio::test]
async fn an_expired_last_key_does_not_open_the_gateway_either() {
    let alpha = upstream().await;
    let app = app("auth: {refresh_seconds: 0.1}", &alpha).await;
    // Long enough for the key to load on a busy machine before it expires.
    let expiry = now_ms() + 8000;
    app.store
        .insert_key(&stored_key("sk-aigw-short", "short", Some(expiry)))
        .await
        .unwrap();
    eventually_chat(&app, None, 401).await;
    // Anonymous callers are refused before the first key refresh (fail closed): wait for the key.
    eventually_chat(&app, Some("sk-aigw-short"), 200).await;
    sleep_past(expiry).await;
    assert_eq!(chat(&app, Some("sk-aigw-short")).await, 401);
    assert_eq!(chat(&app, None).await, 401);
}

#[tokio::test]
async fn a_replica_started_after_the_last_revocation_learns_from_the_database() {
    // Arrange: replica A creates and revokes a key in the shared PostgreSQL database.
    let database = fresh_postgres_database().await;
    let alpha = upstream().await;
    let settings = format!("database_url: {database}\nauth: {{refresh_seconds: 0.1}}");
    let a = app(&settings, &alpha).await;
    a.store
        .insert_key(&stored_key("sk-aigw-gone", "gone", None))
        .await
        .unwrap();
    a.store.revoke_key("gone").await.unwrap();

    // Act: replica B starts with no key loaded at all.
    let b = app(&settings, &alpha).await;

    // Assert
    assert_eq!(chat(&b, None).await, 401);
    assert_eq!(get(&b, "/history", None).await, 401);
    // Replica A learns of the key that was stored behind its back at its next refresh.
    eventually_chat(&a, None, 401).await;
}

#[tokio::test]
async fn auth_required_false_is_the_explicit_way_back_to_open() {
    let alpha = upstream().await;
    let app = app("auth: {refresh_seconds: 0.1, required: false}", &alpha).await;
    app.store.insert_key(&stored_key("sk-aigw-x", "x", None)).await.unwrap();
    app.store.revoke_key("x").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(chat(&app, None).await, 200);
}

#[tokio::test]
async fn auth_required_true_with_no_credential_at_all_lets_nobody_in() {
    let alpha = upstream().await;
    let app = app("auth: {required: true}", &alpha).await;
    assert_eq!(chat(&app, None).await, 401);
    assert_eq!(chat(&app, Some("anything")).await, 401);
    assert_eq!(get(&app, "/api/u/alice/models", None).await, 401);
}

#[tokio::test]
async fn an_admin_token_alone_makes_client_auth_required() {
    let alpha = upstream().await;
    let app = app("auth: {admin_token: adm-token-0123456789abcdef0123456789}", &alpha).await;
    assert_eq!(chat(&app, None).await, 401);
    assert_eq!(get(&app, "/history", None).await, 401);
}

#[tokio::test]
async fn a_fresh_first_run_without_any_credential_stays_open() {
    let alpha = upstream().await;
    let app = app("{}", &alpha).await;
    assert_eq!(chat(&app, None).await, 200);
}

#[tokio::test]
async fn a_key_stops_at_its_expiry_while_the_database_is_unreachable() {
    // Arrange: the gateway reaches PostgreSQL only through a proxy this test owns.
    let direct = fresh_postgres_database().await;
    let name = direct.rsplit('/').next().unwrap().to_owned();
    let proxy = TcpProxy::start("127.0.0.1:5432").await;
    let alpha = upstream().await;
    let app = app(
        &format!(
            "database_url: postgres://postgres@127.0.0.1:{}/{name}\nauth: {{refresh_seconds: 0.1}}",
            proxy.port
        ),
        &alpha,
    )
    .await;
    let writer = HistoryStore::connect(&direct).await.unwrap();
    let expiry = now_ms() + 8000;
    writer
        .insert_key(&stored_key("sk-aigw-expiring", "exp", Some(expiry)))
        .await
        .unwrap();
    // Anonymous callers are refused until the key table has been read (fail closed), so wait for
    // the refusal and then for the key itself.
    eventually_chat(&app, None, 401).await;
    eventually_chat(&app, Some("sk-aigw-expiring"), 200).await;

    // Act: the database goes away, and the key's expiry passes.
    proxy.cut();
    sleep_past(expiry).await;

    // Assert
    assert_eq!(chat(&app, Some("sk-aigw-expiring")).await, 401);
    assert_eq!(chat(&app, None).await, 401);
    proxy.restore();
}

//! The admin audit trail (`GET /api/v1/audit`): every admin change recorded with who made it (a
//! digest of the token, never the token), when, and the item before and after, secrets removed.

use std::os::unix::fs::PermissionsExt;

use ai_gateway::store::AuditFilter;
use reqwest::Method;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::admin_api::{ADMIN, admin, admin_app};
use crate::helpers::{MockNode, ProviderSpec, Runtime, TestApp, assert_openai_error, closed_port_url};

fn expected_actor(token: &str) -> String {
    format!("admin:{}", &hex::encode(Sha256::digest(token.as_bytes()))[..12])
}

async fn audit(app: &TestApp, query: &str) -> (u16, Value) {
    admin(app, Method::GET, &format!("/api/v1/audit{query}"), None).await
}

fn entry<'a>(trail: &'a Value, kind: &str, action: &str) -> &'a Value {
    trail["data"]
        .as_array()
        .expect("data array")
        .iter()
        .find(|e| e["kind"] == kind && e["action"] == action)
        .unwrap_or_else(|| panic!("no {action} {kind} in {trail:#}"))
}

/// Before the trail existed none of these changes left a record; now each does, newest first,
/// with the actor, the time and the item before and after.
#[tokio::test]
async fn every_admin_change_is_recorded_with_actor_time_before_and_after() {
    // Arrange
    let node = MockNode::start(Runtime::Worker, &["m"]).await;
    let app = admin_app()
        .provider(ProviderSpec::new("alpha", closed_port_url()))
        .settings("providers: [{id: nodes, kind: node_pool, priority: 0}]")
        .spawn()
        .await;
    let started = time::OffsetDateTime::now_utc().unix_timestamp() * 1000 - 1000;

    // Act
    let calls = [
        (
            Method::POST,
            "/api/v1/routes",
            Some(json!({"path": "/predict", "target": "http://ai-service:8080", "method": "POST"})),
        ),
        (
            Method::PUT,
            "/api/v1/routes?path=/predict",
            Some(json!({"target": "http://ai-service:9090"})),
        ),
        (
            Method::PUT,
            "/api/v1/security/predict",
            Some(json!({"authType": "api-key", "rateLimit": 100})),
        ),
        (
            Method::PUT,
            "/api/v1/users/alice",
            Some(json!({"providers": ["alpha"]})),
        ),
        (Method::DELETE, "/api/v1/users/alice", None),
        (Method::PUT, "/api/v1/providers/alpha", Some(json!({"enabled": false}))),
        (Method::POST, "/register", Some(json!({"url": node.url()}))),
    ];
    for (method, path, body) in calls {
        let (status, answer) = admin(&app, method.clone(), path, body).await;
        assert!((200..300).contains(&status), "{method} {path}: {status} {answer}");
    }
    let encoded = node.url().replace(':', "%3A").replace('/', "%2F");
    let (status, _) = admin(&app, Method::DELETE, &format!("/nodes/{encoded}"), None).await;
    assert_eq!(status, 200);
    let (status, trail) = audit(&app, "").await;

    // Assert
    assert_eq!(status, 200, "{trail}");
    let entries = trail["data"].as_array().expect("data");
    assert_eq!(entries.len(), 8, "{trail:#}");
    let actor = expected_actor(ADMIN);
    for e in entries {
        assert_eq!(e["actor"], actor.as_str());
        assert!(e["at"].as_i64().expect("at") >= started);
        assert!(e["timestamp"].is_string());
    }
    let times: Vec<i64> = entries.iter().map(|e| e["at"].as_i64().expect("at")).collect();
    assert!(times.windows(2).all(|w| w[0] >= w[1]), "newest first: {times:?}");
    assert_eq!(entries[0]["action"], "remove", "the last change comes first");
    let created = entry(&trail, "path_route", "create");
    assert_eq!(created["name"], "/predict");
    assert_eq!(created["before"], Value::Null);
    let updated = entry(&trail, "path_route", "update");
    assert_eq!(updated["before"]["targets"], "http://ai-service:8080");
    assert_eq!(updated["after"]["targets"], "http://ai-service:9090");
    let rule = entry(&trail, "security", "create");
    assert_eq!(rule["name"], "/predict");
    assert_eq!(rule["after"]["endpoint"], "/predict");
    let provider = entry(&trail, "provider", "update");
    assert_eq!(
        (&provider["before"]["enabled"], &provider["after"]["enabled"]),
        (&json!(true), &json!(false))
    );
    let deleted = entry(&trail, "user", "delete");
    assert_eq!(deleted["before"]["providers"], json!(["alpha"]));
    assert_eq!(deleted["after"], Value::Null);
    assert_eq!(entry(&trail, "node", "register")["after"]["url"], node.url());
    assert_eq!(entry(&trail, "node", "remove")["before"]["url"], node.url());
    assert!(!trail.to_string().contains(ADMIN), "the token itself is never recorded");
}

/// A created key's plaintext is shown once to its creator; the trail (table and API) records
/// its name and prefix only, and its revocation.
#[tokio::test]
async fn key_changes_are_recorded_without_the_key() {
    // Arrange
    let app = admin_app().spawn().await;

    // Act
    let (status, created) = admin(
        &app,
        Method::POST,
        "/api/v1/keys",
        Some(json!({"name": "ci", "rpm": 5})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().expect("key").to_owned();
    let (status, _) = admin(&app, Method::DELETE, "/api/v1/keys/ci", None).await;
    assert_eq!(status, 200);
    let (_, trail) = audit(&app, "?kind=key").await;

    // Assert
    let made = entry(&trail, "key", "create");
    assert_eq!(made["name"], "ci");
    assert_eq!(made["after"]["rpm"], 5);
    let revoked = entry(&trail, "key", "revoke");
    assert_eq!(revoked["before"]["keys"][0]["state"], "active");
    assert_eq!(revoked["after"]["keys"][0]["state"], "revoked");
    assert!(!trail.to_string().contains(&key), "the key is not in the API's answer");
    let rows = app
        .store
        .list_audit(&AuditFilter {
            limit: 100,
            ..AuditFilter::default()
        })
        .await
        .expect("audit rows");
    assert_eq!(rows.len(), 2);
    for row in rows {
        let text = format!("{row:?}");
        assert!(!text.contains(&key), "the key is not in the table: {text}");
        assert!(!text.contains(ADMIN), "nor is the admin token");
    }
}

/// Provisioning is recorded with what was asked, never the SSH key.
#[tokio::test]
async fn provisioning_is_recorded_without_the_ssh_key() {
    // Arrange
    let dir = tempfile::tempdir().expect("temp dir");
    let script = dir.path().join("deploy.sh");
    std::fs::write(&script, "#!/bin/sh\nexit 3\n").expect("script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let app = admin_app()
        .settings("providers: [{id: nodes, kind: node_pool, priority: 0}]")
        .settings(&format!("nodes: {{provision_command: '{}'}}", script.display()))
        .spawn()
        .await;
    let ssh_key = "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VjcmV0LXNzaC1rZXk=\n-----END OPENSSH PRIVATE KEY-----\n";

    // Act
    let (status, report) = admin(
        &app,
        Method::POST,
        "/nodes/provision",
        Some(json!({"host": "gpu-7.internal", "user": "ubuntu", "ssh_key": ssh_key})),
    )
    .await;
    let (_, trail) = audit(&app, "?kind=node").await;

    // Assert
    assert_eq!(status, 200, "{report}");
    let run = entry(&trail, "node", "provision");
    assert_eq!(run["name"], "gpu-7.internal");
    assert_eq!(run["after"]["request"]["user"], "ubuntu");
    assert_eq!(run["after"]["exit_status"], 3);
    assert!(!trail.to_string().contains("c2VjcmV0LXNzaC1rZXk"), "{trail}");
}

#[tokio::test]
async fn the_trail_filters_by_kind_since_and_limit_and_refuses_bad_parameters() {
    // Arrange
    let app = admin_app().spawn().await;
    for name in ["a", "b", "c"] {
        let (status, _) = admin(
            &app,
            Method::PUT,
            &format!("/api/v1/users/{name}"),
            Some(json!({"routes": []})),
        )
        .await;
        assert!((200..300).contains(&status));
    }
    let (status, _) = admin(&app, Method::POST, "/api/v1/keys", Some(json!({"name": "k"}))).await;
    assert_eq!(status, 201);

    // Act
    let (_, users) = audit(&app, "?kind=user").await;
    let (_, one) = audit(&app, "?limit=1").await;
    let (_, future) = audit(&app, "?since=2999-01-01T00:00:00Z").await;
    let (_, past) = audit(&app, "?since=2000-01-01T00:00:00Z&kind=key").await;
    let bad_since = audit(&app, "?since=yesterday").await;
    let bad_limit = audit(&app, "?limit=0").await;
    let unknown = audit(&app, "?colour=red").await;
    let anonymous = app.get("/api/v1/audit").await;

    // Assert
    assert_eq!(users["data"].as_array().expect("data").len(), 3);
    assert_eq!(users["data"][0]["name"], "c", "newest first");
    assert_eq!(one["data"].as_array().expect("data").len(), 1);
    assert_eq!(one["data"][0]["kind"], "key");
    assert_eq!(future["data"], json!([]));
    assert_eq!(past["data"].as_array().expect("data").len(), 1);
    for (status, body) in [bad_since, bad_limit, unknown] {
        assert_eq!(status, 400, "{body}");
        assert_openai_error(&body);
    }
    assert_eq!(anonymous.status(), 401);
}

/// The trail is append-only on PostgreSQL too: rows are readable through the API, and the
/// database itself refuses to rewrite one.
#[tokio::test]
async fn the_trail_is_append_only_on_postgres() {
    use diesel_async::{AsyncConnection, AsyncPgConnection, SimpleAsyncConnection};

    // Arrange
    let url = crate::helpers::db::fresh_postgres_database().await;
    let app = admin_app().settings(&format!("database_url: {url}")).spawn().await;
    let (status, _) = admin(&app, Method::PUT, "/api/v1/users/eve", Some(json!({"routes": []}))).await;
    assert!((200..300).contains(&status));

    // Act
    let (_, trail) = audit(&app, "?kind=user&since=2000-01-01T00:00:00Z").await;
    let mut conn = AsyncPgConnection::establish(&url).await.expect("connect");
    let rewrite = conn
        .batch_execute("UPDATE admin_audit SET actor = 'someone-else'")
        .await;

    // Assert
    assert_eq!(trail["data"][0]["name"], "eve");
    assert_eq!(trail["data"][0]["actor"], expected_actor(ADMIN).as_str());
    let error = rewrite.expect_err("an UPDATE is refused");
    assert!(error.to_string().contains("append-only"), "{error}");
}

/// The trail's only deletion is retention: rows older than `history.retention_days` go, the rest stay.
async fn trail_ages_out_with_retention(db: crate::helpers::Database) {
    use ai_gateway::store::{AuditRow, now_ms};

    // Arrange
    let app = admin_app().database(db).spawn().await;
    let (status, _) = admin(&app, Method::PUT, "/api/v1/users/eve", Some(json!({"routes": []}))).await;
    assert!((200..300).contains(&status));
    let old = AuditRow {
        id: "01000000-0000-7000-8000-000000000000".into(),
        at: now_ms() - 40 * 86_400_000,
        actor: "admin:old".into(),
        action: "update".into(),
        kind: "user".into(),
        name: "mallory".into(),
        before: None,
        after: Some("{}".into()),
    };
    app.store.insert_audit(&old).await.expect("insert");

    // Act
    let purged = app.store.purge_audit_older_than_days(30).await.expect("purge");

    // Assert
    assert_eq!(purged, 1, "only the 40-day-old row is past a 30-day retention");
    let left = app
        .store
        .list_audit(&AuditFilter {
            limit: 10,
            ..AuditFilter::default()
        })
        .await
        .expect("list");
    let names: Vec<&str> = left.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(names, ["eve"]);
}

mod the_trail_ages_out_with_retention {
    #[tokio::test]
    async fn on_sqlite() {
        super::trail_ages_out_with_retention(crate::helpers::Database::Sqlite).await;
    }
    #[tokio::test]
    async fn on_postgres() {
        super::trail_ages_out_with_retention(crate::helpers::Database::Postgres).await;
    }
}

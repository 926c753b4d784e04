//! Budgets across replicas and outages: two replicas on one Redis hold one team budget exactly
//! under 16 concurrent clients, Redis cut through a test-owned proxy leaves each replica deciding
//! alone (counted), a provider's spent budget makes the walk skip it, a cancelled stream is priced
//! on what was relayed, and `alert_at` sends `budget.threshold` once.

use std::time::Duration;

use ai_gateway::store::StoredKey;
use redis::AsyncCommands;
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::db::fresh_postgres_database;
use crate::helpers::tcp_proxy::TcpProxy;
use crate::helpers::{ProviderSpec, SseMock, SseReader, TEST_MODEL, TestApp, fixtures, header, json, upstream_url};

/// 10 completion tokens at $1,000 per million: $0.01, which `max_tokens: 10` reserves exactly.
const PRICING: &str = "pricing: {models: [{provider: \"*\", model: \"*\", input: 0, output: 1000}]}";

fn ten_tokens() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": TEST_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 3, "completion_tokens": 10, "total_tokens": 13}
    }))
}

async fn upstream() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(ten_tokens())
        .mount(&server)
        .await;
    server
}

/// A virtual key `name` in `team`, stored and loaded by `apps` at once.
pub async fn team_key(apps: &[&TestApp], name: &str, team: &str) -> String {
    let key = format!("sk-{}", uuid::Uuid::now_v7().simple());
    let stored = StoredKey {
        id: uuid::Uuid::now_v7().to_string(),
        name: name.into(),
        key_hash: ai_gateway::auth::digest(&key).hex(),
        key_prefix: key[..8].into(),
        rpm: None,
        tpm: None,
        models: None,
        created_at: 1,
        expires_at: None,
        revoked_at: None,
        team: Some(team.into()),
        priority: None,
        user_name: None,
    };
    apps[0].state.store.insert_key(&stored).await.expect("key stored");
    for app in apps {
        ai_gateway::admin::refresh_keys(&app.state.store, &app.state.auth).await;
    }
    key
}

/// A chat completion with `max_tokens: 10`, so a budget reserves exactly what it then costs.
pub async fn ask(app: &TestApp, key: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(key)
        .json(&json!({"model": TEST_MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .expect("request sent")
}

async fn history_costs(app: &TestApp, key: &str, n: usize) -> Vec<f64> {
    for _ in 0..200 {
        let response = app
            .client
            .get(app.url("/history?limit=200"))
            .bearer_auth(key)
            .send()
            .await
            .expect("history");
        let rows: Vec<Value> = json(response).await.as_array().cloned().unwrap_or_default();
        if rows.len() >= n {
            return rows.iter().filter_map(|r| r["cost_usd"].as_f64()).collect();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("history never had {n} rows");
}

#[tokio::test]
async fn two_replicas_on_one_redis_never_pass_a_team_budget_and_history_matches_the_counter() {
    // Arrange: $0.10 a month for team research, two replicas sharing Redis and PostgreSQL.
    let alpha = upstream().await;
    let prefix = format!("spend-{}:", uuid::Uuid::now_v7().simple());
    let database = fresh_postgres_database().await;
    let settings = format!(
        "{PRICING}\nredis_url: 'redis://127.0.0.1:6379'\nredis_prefix: '{prefix}'\ndatabase_url: '{database}'\n\
         teams: [{{name: research}}]\nbudgets: [{{scope: team, name: research, limit_usd: 0.10, period: monthly}}]\n\
         auth: {{required: true}}"
    );
    let spawn = || {
        TestApp::builder()
            .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
            .settings(&settings)
            .spawn()
    };
    let (a, b) = (spawn().await, spawn().await);
    let key = team_key(&[&a, &b], "ci-bot", "research").await;

    // Act: 16 clients, two requests each, half on each replica.
    let mut clients = Vec::new();
    for i in 0..16 {
        let app = if i % 2 == 0 { &a } else { &b };
        let (url, client, key) = (app.url("/v1/chat/completions"), app.client.clone(), key.clone());
        clients.push(tokio::spawn(async move {
            let mut admitted = 0;
            for _ in 0..2 {
                let response = client
                    .post(&url)
                    .bearer_auth(&key)
                    .json(&json!({"model": TEST_MODEL, "max_tokens": 10, "messages": [{"role": "user", "content": "Hi"}]}))
                    .send()
                    .await
                    .expect("request sent");
                match response.status().as_u16() {
                    200 => admitted += 1,
                    429 => assert_eq!(header(&response, "x-should-retry"), "false"),
                    other => panic!("unexpected status {other}"),
                }
            }
            admitted
        }));
    }
    let mut admitted = 0;
    for c in clients {
        admitted += c.await.expect("client");
    }

    // Assert: exactly the ten $0.01 requests the budget holds, never more.
    assert_eq!(admitted, 10, "admitted {admitted} requests of $0.01 against $0.10");
    let costs = history_costs(&a, &key, 32).await;
    let total: f64 = costs.iter().sum();
    assert!((total - 0.10).abs() < 1e-9, "history sums to {total}");
    let mut redis = redis::Client::open("redis://127.0.0.1:6379")
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = redis
        .keys(format!("{prefix}budget:team:monthly:*:research"))
        .await
        .unwrap();
    assert_eq!(keys.len(), 1, "{keys:?}");
    let mut spent: i64 = 0;
    for _ in 0..100 {
        spent = redis.hget(&keys[0], "spent").await.unwrap();
        if spent == 100_000_000 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(
        spent, 100_000_000,
        "the Redis counter (nano-USD) equals the history's sum"
    );
}

#[tokio::test]
async fn with_redis_cut_requests_go_on_the_fallback_is_counted_and_the_budget_still_holds() {
    // Arrange: one replica whose Redis is behind a proxy the test owns; $0.05 a day for its key.
    let alpha = upstream().await;
    let proxy = TcpProxy::start("127.0.0.1:6379").await;
    let settings = format!(
        "{PRICING}\nredis_url: 'redis://127.0.0.1:{}'\nredis_prefix: 'spend-cut-{}:'\n\
         teams: [{{name: ops}}]\nbudgets: [{{scope: key, name: cut-bot, limit_usd: 0.05, period: daily}}]\n\
         auth: {{required: true}}",
        proxy.port,
        uuid::Uuid::now_v7().simple()
    );
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(&settings)
        .spawn()
        .await;
    let key = team_key(&[&app], "cut-bot", "ops").await;
    for _ in 0..2 {
        assert_eq!(ask(&app, &key).await.status(), 200);
    }

    // Act: Redis goes away.
    proxy.cut();
    let mut statuses = Vec::new();
    for _ in 0..4 {
        statuses.push(ask(&app, &key).await.status().as_u16());
    }

    // Assert: three more fit, the sixth is refused; with one replica the overshoot is zero.
    assert_eq!(statuses, [200, 200, 200, 429]);
    let metrics = app.get("/metrics").await.text().await.unwrap();
    let fallbacks: f64 = metrics
        .lines()
        .find(|l| l.starts_with("gateway_budget_redis_fallbacks_total "))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .expect("the fallback counter");
    assert!(fallbacks >= 1.0, "{fallbacks}");
}

#[tokio::test]
async fn a_spent_provider_budget_makes_the_walk_skip_that_provider() {
    // Arrange: alpha may spend $0.01 a day, beta is unlimited.
    let alpha = upstream().await;
    let beta = upstream().await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)))
        .settings(&format!(
            "{PRICING}\nbudgets: [{{scope: provider, name: alpha, limit_usd: 0.01, period: daily}}]"
        ))
        .spawn()
        .await;

    // Act
    let first = ask(&app, "unused").await;
    assert_eq!(header(&first, "x-ai-gateway-provider"), "alpha");
    let mut second = None;
    for _ in 0..50 {
        // The settlement is applied off the request path; the next request sees it soon after.
        let r = ask(&app, "unused").await;
        if header(&r, "x-ai-gateway-provider") == "beta" {
            second = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Assert
    assert!(second.is_some(), "alpha's spent budget never sent the walk to beta");
}

#[tokio::test]
async fn a_budget_refuses_an_unpriced_model_unless_allowed() {
    // Arrange
    let alpha = upstream().await;
    let refuse = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings("budgets: [{scope: gateway, limit_usd: 100, period: monthly}]")
        .spawn()
        .await;
    let allow = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings("pricing: {unpriced: allow}\nbudgets: [{scope: gateway, limit_usd: 100, period: monthly}]")
        .spawn()
        .await;

    // Act
    let refused = ask(&refuse, "unused").await;
    let allowed = ask(&allow, "unused").await;

    // Assert
    assert_eq!(refused.status(), 429);
    let body = json(refused).await;
    assert_eq!(body["error"]["code"], "budget_exceeded");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("has no price"),
        "{body}"
    );
    assert!(body["error"]["message"].as_str().unwrap().contains("gateway"), "{body}");
    assert_eq!(allowed.status(), 200);
}

#[tokio::test]
async fn a_stream_the_client_cancels_is_priced_on_what_was_relayed() {
    // Arrange
    let alpha = SseMock::start().await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", alpha.base_url()))
        .settings(PRICING)
        .spawn()
        .await;
    let pending = tokio::spawn(app.post_chat(&crate::helpers::stream_body(TEST_MODEL)));
    let upstream = alpha.next_connection().await;
    let events = fixtures::chunk_payloads();
    upstream.send_event(&events[0]);
    upstream.send_event(&events[1]);
    let response = pending.await.expect("request");
    let mut reader = SseReader::new(response);
    reader.next_json().await;
    reader.next_json().await;

    // Act: the client leaves before the usage chunk.
    drop(reader);
    for _ in 0..200 {
        if upstream.is_closed() {
            break;
        }
        upstream.send_event(&events[1]);
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Assert: a cancelled row with an estimated, non-null cost.
    let mut row = Value::Null;
    for _ in 0..100 {
        let rows = json(app.get("/history").await).await;
        if let Some(r) = rows.as_array().and_then(|r| r.first()) {
            row = r.clone();
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(row["status"], "cancelled", "{row}");
    assert_eq!(row["cost_estimated"], true, "{row}");
    let cost = row["cost_usd"].as_f64().expect("priced");
    assert!(cost > 0.0, "{row}");
    assert!(row["completion_tokens"].as_i64().unwrap() > 0, "{row}");
}

#[tokio::test]
async fn crossing_alert_at_sends_one_signed_budget_threshold_event() {
    // Arrange: $0.02 for the gateway, alerts at half and at the whole.
    let alpha = upstream().await;
    let hooks = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(204))
        .mount(&hooks)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(&format!(
            "{PRICING}\nwebhooks: {{budget_url: '{}/budget', secret: s3cret}}\n\
             budgets: [{{scope: gateway, limit_usd: 0.02, period: monthly, alert_at: [0.5, 1.0]}}]",
            hooks.uri()
        ))
        .spawn()
        .await;

    // Act: two $0.01 requests cross 0.5 then 1.0; a third is refused and crosses nothing.
    assert_eq!(ask(&app, "unused").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ask(&app, "unused").await.status(), 200);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(ask(&app, "unused").await.status(), 429);

    // Assert
    let mut events = Vec::new();
    for _ in 0..100 {
        events = hooks.received_requests().await.unwrap_or_default();
        if events.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let events = hooks.received_requests().await.unwrap_or(events);
    assert_eq!(events.len(), 2, "one event per threshold");
    let bodies: Vec<Value> = events
        .iter()
        .map(|e| serde_json::from_slice(&e.body).unwrap())
        .collect();
    let thresholds: Vec<f64> = bodies.iter().map(|b| b["threshold"].as_f64().unwrap()).collect();
    assert_eq!(thresholds, [0.5, 1.0]);
    assert!(
        bodies
            .iter()
            .all(|b| b["type"] == "budget.threshold" && b["budget"] == "gateway:monthly")
    );
    assert!(events.iter().all(|e| e.headers.get("x-ai-gateway-signature").is_some()));
}

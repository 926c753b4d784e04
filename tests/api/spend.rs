//! What requests cost and budgets that hold: prices from a fixture config so each request costs a
//! known amount, the cost in history, metrics and `x-ai-gateway-cost-usd`, and a key's daily budget
//! refusing the request that would pass it until the next day (an injected clock).

use reqwest::Method;
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::admin_api::{ADMIN, admin};
use crate::helpers::{ProviderSpec, TEST_MODEL, TestApp, header, json, mount_chat, upstream_url};
use crate::spend_budgets::ask;

/// A chat completion whose usage is 10 prompt tokens (4 of them cached) and 10 completion tokens.
fn priced_completion() -> wiremock::ResponseTemplate {
    wiremock::ResponseTemplate::new(200).set_body_json(json!({
        "id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": TEST_MODEL,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20,
                  "prompt_tokens_details": {"cached_tokens": 4}}
    }))
}

/// Output at $1,000 per million tokens: 10 completion tokens cost exactly $0.01, and a request
/// with `max_tokens: 10` reserves exactly that. Input costs 0 except through the cached rate test.
const PRICING: &str = "pricing: {models: [{provider: alpha, model: \"*\", input: 0, output: 1000}]}";

async fn wait_for_rows(app: &TestApp, n: usize) -> Vec<Value> {
    for _ in 0..100 {
        let (_, rows) = admin(app, Method::GET, "/history?limit=100", None).await;
        let rows = rows.as_array().cloned().unwrap_or_default();
        if rows.len() >= n {
            return rows;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    panic!("history never had {n} rows");
}

#[tokio::test]
async fn a_daily_key_budget_admits_five_requests_refuses_the_sixth_and_resets_the_next_day() {
    // Arrange
    let alpha = MockServer::start().await;
    mount_chat(&alpha, priced_completion(), 6).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(&format!(
            "auth: {{admin_token: {ADMIN}}}\n{PRICING}\nbudgets: [{{scope: key, name: ci-bot, limit_usd: 0.05, period: daily}}]"
        ))
        .spawn()
        .await;
    let (status, created) = admin(&app, Method::POST, "/api/v1/keys", Some(json!({"name": "ci-bot"}))).await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().expect("the new key").to_owned();

    // Act + Assert: five requests at $0.01 each fit in $0.05.
    for i in 0..5 {
        let response = ask(&app, &key).await;
        assert_eq!(response.status(), 200, "request {i}");
        assert_eq!(header(&response, "x-ai-gateway-cost-usd").parse::<f64>().unwrap(), 0.01);
    }
    let refused = ask(&app, &key).await;
    assert_eq!(refused.status(), 429);
    assert_eq!(header(&refused, "x-should-retry"), "false");
    assert_eq!(
        header(&refused, "x-ai-gateway-budget-remaining-usd")
            .parse::<f64>()
            .unwrap(),
        0.0
    );
    let retry_after: u64 = header(&refused, "retry-after").parse().unwrap();
    assert!((1..=86_400).contains(&retry_after), "until the day ends: {retry_after}");
    let body = json(refused).await;
    assert_eq!(body["error"]["type"], "budget_exceeded");
    assert_eq!(body["error"]["code"], "budget_exceeded");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("key ci-bot"), "names the budget: {message}");
    assert!(!message.contains(&key), "never the key itself");

    // The key sees its own spend and what remains.
    let mut me = Value::Null;
    for _ in 0..100 {
        let response = app
            .client
            .get(app.url("/api/v1/me"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        me = json(response).await;
        if me["spend_usd"]["today"].as_f64() == Some(0.05) && me["budgets"][0]["spent_usd"].as_f64() == Some(0.05) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(me["key"], "ci-bot", "{me}");
    assert_eq!(me["budgets"][0]["id"], "key:ci-bot:daily", "{me}");
    assert_eq!(me["budgets"][0]["spent_usd"].as_f64(), Some(0.05), "{me}");
    assert_eq!(me["budgets"][0]["remaining_usd"].as_f64(), Some(0.0), "{me}");
    assert!((me["spend_usd"]["today"].as_f64().unwrap() - 0.05).abs() < 1e-9, "{me}");

    // The next day the budget is whole again.
    app.state.spend.shift_clock(86_400_000);
    assert_eq!(ask(&app, &key).await.status(), 200);

    // History: every answered request cost $0.01, the refused one nothing known.
    let rows = wait_for_rows(&app, 7).await;
    let costs: Vec<Option<f64>> = rows.iter().map(|r| r["cost_usd"].as_f64()).collect();
    assert_eq!(costs.iter().filter(|c| **c == Some(0.01)).count(), 6, "{costs:?}");
    assert_eq!(costs.iter().filter(|c| c.is_none()).count(), 1, "{costs:?}");
    assert!(rows.iter().all(|r| r["user"] == "ci-bot"));
}

#[tokio::test]
async fn a_team_limits_its_keys_models_and_requests_per_minute() {
    // Arrange: team research may use gpt-4o* models only, three requests a minute (a refused one counts too, as for a key).
    let alpha = MockServer::start().await;
    mount_chat(&alpha, priced_completion(), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)).models(&["gpt-4o-mini", "other-model"]))
        .settings(&format!(
            "auth: {{admin_token: {ADMIN}}}\nteams: [{{name: research, rpm: 3, models: [\"gpt-4o*\"], priority: high}}]"
        ))
        .spawn()
        .await;
    let key = crate::spend_budgets::team_key(&[&app], "r-bot", "research").await;
    let chat = |model: &'static str| {
        app.client
            .post(app.url("/v1/chat/completions"))
            .bearer_auth(&key)
            .json(&json!({"model": model, "messages": [{"role": "user", "content": "Hi"}]}))
            .send()
    };

    // Act + Assert: every request counts toward the team's rate, this one included.
    let me = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    let me = json(me).await;
    let who = (me["team"].as_str(), me["priority"].as_str());
    assert_eq!(who, (Some("research"), Some("high")), "{me}");
    let outside = chat("other-model").await.unwrap();
    assert_eq!(outside.status(), 403, "outside the team's models");
    assert_eq!(chat("gpt-4o-mini").await.unwrap().status(), 200);
    let fourth = chat("gpt-4o-mini").await.unwrap();
    assert_eq!(fourth.status(), 429, "the team's three requests a minute are used");
}

#[tokio::test]
async fn cached_tokens_cost_the_cached_rate_and_an_unpriced_model_costs_null() {
    // Arrange: input 100, cached 10, output 0 per million; beta has no price.
    let alpha = MockServer::start().await;
    mount_chat(&alpha, priced_completion(), 1).await;
    let beta = MockServer::start().await;
    mount_chat(&beta, priced_completion(), 1).await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .provider(ProviderSpec::new("beta", upstream_url(&beta)).models(&["unpriced-model"]))
        .settings("pricing: {models: [{provider: alpha, model: \"*\", input: 100, cached_input: 10, output: 0}]}")
        .spawn()
        .await;

    // Act
    let priced = app
        .client
        .post(app.url("/v1/chat/completions"))
        .json(&json!({"model": TEST_MODEL, "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();
    let unpriced = app
        .client
        .post(app.url("/v1/chat/completions"))
        .header("x-ai-gateway-tags", "ci, batch")
        .json(&json!({"model": "unpriced-model", "messages": [{"role": "user", "content": "Hi"}]}))
        .send()
        .await
        .unwrap();

    // Assert: 6 fresh tokens at 100 and 4 cached at 10, per million.
    assert_eq!(priced.status(), 200);
    let cost: f64 = header(&priced, "x-ai-gateway-cost-usd").parse().unwrap();
    assert!((cost - 0.00064).abs() < 1e-12, "{cost}");
    assert_eq!(unpriced.status(), 200);
    assert!(unpriced.headers().get("x-ai-gateway-cost-usd").is_none());
    let rows = wait_for_rows(&app, 2).await;
    let row = rows.iter().find(|r| r["model"] == "unpriced-model").unwrap();
    assert!(row["cost_usd"].is_null(), "null, never 0: {row}");
    assert_eq!(row["tags"], json!(["ci", "batch"]));
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics.contains("gateway_cost_unpriced_total{provider=\"beta\"} 1"),
        "{metrics}"
    );
    let line = metrics
        .lines()
        .find(|l| l.starts_with("gateway_cost_usd_total{model=\"other\",provider=\"alpha\"}"))
        .unwrap_or_else(|| panic!("{metrics}"));
    let counted: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!((counted - 0.00064).abs() < 1e-12, "{line}");
}

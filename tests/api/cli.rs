//! The management CLI: the real `ai-gateway` binary against a gateway running in-process.

use std::process::Output;

use reqwest::Method;
use serde_json::json;
use wiremock::MockServer;

use crate::admin_api::{ADMIN, CLIENT, admin, admin_app};
use crate::helpers::{ProviderSpec, TestApp, closed_port_url, completion, failure, mount_chat, upstream_url};

/// Runs `ai-gateway <args>` against `url` with the admin token and the client key.
async fn cli(url: &str, args: &[&str]) -> Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ai-gateway"));
    for name in [
        "AI_GATEWAY_URL",
        "AI_GATEWAY_API_KEY",
        "AI_GATEWAY_ADMIN_TOKEN",
        "INTERNAL_API_TOKEN",
        "AI_GATEWAY_CONFIG",
    ] {
        command.env_remove(name);
    }
    command
        .args(args)
        .env("AI_GATEWAY_URL", url)
        .env("AI_GATEWAY_ADMIN_TOKEN", ADMIN)
        .env("AI_GATEWAY_API_KEY", CLIENT)
        .kill_on_drop(true);
    command.output().await.expect("run the ai-gateway binary")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

async fn app_with(mock: &MockServer) -> TestApp {
    admin_app()
        .provider(ProviderSpec::new("alpha", upstream_url(mock)))
        .provider(ProviderSpec::new("beta", upstream_url(mock)))
        .spawn()
        .await
}

#[tokio::test]
async fn add_route_secure_and_routes_list_go_through_the_admin_api() {
    let mock = MockServer::start().await;
    let app = app_with(&mock).await;
    let out = cli(
        &app.address,
        &[
            "add-route",
            "--path",
            "/predict",
            "--target",
            "http://ai-service:8080",
            "--method",
            "POST",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("created path route /predict"), "{}", stdout(&out));
    let out = cli(
        &app.address,
        &[
            "add-route",
            "--name",
            "support",
            "--strategy",
            "rotation",
            "--target",
            "alpha:gpt-test",
            "--target",
            "beta:gpt-test",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("rotation:support"), "{}", stdout(&out));
    let route = app
        .state
        .live()
        .config
        .settings
        .route_for_model("rotation:support")
        .cloned()
        .unwrap();
    assert_eq!(route.targets.len(), 2);

    let out = cli(
        &app.address,
        &[
            "secure",
            "--endpoint",
            "/predict",
            "--auth",
            "jwt",
            "--rate-limit",
            "100/min",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, rules) = admin(&app, Method::GET, "/api/v1/security", None).await;
    assert_eq!(
        rules["data"][0]["item"],
        json!({"endpoint": "/predict", "auth": "jwt", "rate_limit": "100/min"})
    );

    let out = cli(&app.address, &["routes", "list"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let listing = stdout(&out);
    let lines: Vec<&str> = listing.lines().collect();
    assert!(lines[0].starts_with("KIND"), "{listing}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains("support") && l.contains("rotation") && l.contains("alpha:gpt-test, beta:gpt-test")),
        "{listing}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains("/predict") && l.contains("http://ai-service:8080")),
        "{listing}"
    );

    let out = cli(
        &app.address,
        &["add-route", "--path", "predict", "--target", "http://x:1"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).starts_with("Error: "), "{}", stderr(&out));
    assert!(stderr(&out).contains("Invalid route path"), "{}", stderr(&out));

    let out = cli(&app.address, &["routes", "delete", "support"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(app.state.live().config.settings.routes.is_empty());
}

#[tokio::test]
async fn providers_disable_stops_traffic_at_run_time() {
    let mock = MockServer::start().await;
    let app = app_with(&mock).await;
    let out = cli(&app.address, &["providers", "disable", "alpha"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("alpha is disabled"), "{}", stdout(&out));
    let live = app.state.live();
    let ids: Vec<&str> = live.registry.providers().iter().map(|p| p.config.id.as_str()).collect();
    assert_eq!(ids, ["beta"], "alpha is out of the live registry");
    let out = cli(&app.address, &["providers", "list"]).await;
    let listing = stdout(&out);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("alpha") && l.contains("false") && l.contains("api")),
        "{listing}"
    );
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("beta") && l.contains("true") && l.contains("closed")),
        "{listing}"
    );
    let out = cli(&app.address, &["providers", "disable", "ghost"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("no provider `ghost`"), "{}", stderr(&out));
}

#[tokio::test]
async fn smoke_reports_each_route_and_fails_when_one_fails() {
    let good = MockServer::start().await;
    mount_chat(&good, completion(), 1..).await;
    let bad = MockServer::start().await;
    mount_chat(&bad, failure(500), 1..).await;
    let app = admin_app()
        .provider(ProviderSpec::new("good", upstream_url(&good)))
        .provider(ProviderSpec::new("bad", upstream_url(&bad)).models(&["broken-model"]))
        .settings("routes: [{name: broken, targets: ['bad:broken-model']}]")
        .spawn()
        .await;

    let out = cli(&app.address, &["smoke", "--route", "gpt-test"]).await;
    assert!(out.status.success(), "{}\n{}", stdout(&out), stderr(&out));
    assert!(stdout(&out).contains("ok      gpt-test"), "{}", stdout(&out));
    let sent = good.received_requests().await.unwrap();
    let body: serde_json::Value = serde_json::from_slice(&sent[0].body).unwrap();
    assert_eq!(body["messages"][0]["content"], "smoke");
    assert_eq!(body["max_tokens"], 1);

    let out = cli(&app.address, &["smoke"]).await;
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    assert!(stdout(&out).contains("failed  priority:broken"), "{}", stdout(&out));
    assert!(stdout(&out).contains("0 ok, 1 failed"), "{}", stdout(&out));

    let out = cli(
        &app.address,
        &["smoke", "--route", "gpt-test", "--route", "broken-model"],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("1 ok, 1 failed"), "{}", stdout(&out));
}

#[tokio::test]
async fn an_unreachable_gateway_is_a_clear_error() {
    let url = closed_port_url().trim_end_matches("/v1").to_owned();
    for args in [
        &["routes", "list"][..],
        &["smoke"],
        &["providers", "disable", "x"],
        &["keys", "list"],
    ] {
        let out = cli(&url, args).await;
        assert_eq!(out.status.code(), Some(1), "{args:?}");
        assert!(
            stderr(&out).starts_with(&format!("Error: cannot reach the gateway at {url}")),
            "{args:?}: {}",
            stderr(&out)
        );
    }
}

#[tokio::test]
async fn init_writes_a_starter_config_and_keeps_an_existing_one() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("gw.yaml");
    let path_text = path.to_str().unwrap();
    let out = cli("http://127.0.0.1:9", &["init", "--config", path_text]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let check = cli("http://127.0.0.1:9", &["check-config", "--config", path_text]).await;
    assert!(check.status.success(), "{}", stdout(&check));
    let again = cli("http://127.0.0.1:9", &["init", "--config", path_text]).await;
    assert_eq!(again.status.code(), Some(1));
    assert!(stderr(&again).contains("--force"), "{}", stderr(&again));
}

#[tokio::test]
async fn keys_go_through_the_api_with_a_url_and_to_the_database_without_one() {
    let app = admin_app().spawn().await;
    let out = cli(&app.address, &["keys", "create", "--name", "ci-key", "--rpm", "5"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let printed = stdout(&out);
    let key = printed.lines().nth(1).unwrap().trim().to_owned();
    assert!(key.starts_with("sk-"), "{printed}");
    let stored = app.store.list_keys().await.unwrap();
    assert_eq!(stored[0].name, "ci-key");
    assert_ne!(stored[0].key_hash, key, "only the hash is stored");
    let out = cli(&app.address, &["keys", "revoke", "ci-key"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(app.store.active_keys().await.unwrap().is_empty());

    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/keys.db", dir.path().display());
    let direct = |args: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ai-gateway"));
        command
            .args(args)
            .env_remove("AI_GATEWAY_URL")
            .env_remove("AI_GATEWAY_CONFIG")
            .env("DATABASE_URL", &db)
            .kill_on_drop(true);
        async move { command.output().await.unwrap() }
    };
    let out = direct(&["keys", "create", "--name", "offline"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = direct(&["keys", "list"]).await;
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.contains("offline") && l.ends_with("active")),
        "{}",
        stdout(&out)
    );
}

#[tokio::test]
async fn metrics_prints_the_answer_as_json_or_as_a_table() {
    use wiremock::matchers::{method, path, query_param};
    let gateway = MockServer::start().await;
    let answer = json!({
        "type": "latency",
        "window_seconds": 3600,
        "rows": [
            {"endpoint": "/v1/chat/completions", "requests": 12, "p50_ms": 210},
            {"endpoint": "/predict", "requests": 3, "p50_ms": 40}
        ]
    });
    wiremock::Mock::given(method("GET"))
        .and(path("/api/v1/metrics"))
        .and(query_param("type", "latency"))
        .and(wiremock::matchers::header("x-admin-token", ADMIN))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(&answer))
        .expect(2)
        .mount(&gateway)
        .await;
    let out = cli(&gateway.uri(), &["metrics", "--format", "json", "--type", "latency"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let printed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(printed, answer);
    let out = cli(&gateway.uri(), &["metrics", "--type", "latency"]).await;
    let table = stdout(&out);
    assert!(table.contains("type: latency"), "{table}");
    let header = table
        .lines()
        .find(|l| l.starts_with("ENDPOINT"))
        .unwrap_or_else(|| panic!("{table}"));
    assert!(header.contains("REQUESTS") && header.contains("P50_MS"), "{table}");
    assert!(
        table.lines().any(|l| l.starts_with("/predict") && l.contains("40")),
        "{table}"
    );
}

#[tokio::test]
async fn nodes_add_list_and_remove_use_the_node_registry() {
    let node = crate::helpers::MockNode::start(crate::helpers::Runtime::Vllm, &["llama"]).await;
    let app = admin_app()
        .settings("providers: [{id: nodes, kind: node_pool, priority: 0}]")
        .spawn()
        .await;
    let url = node.url();
    let out = cli(&app.address, &["nodes", "add", &url, "--runtime", "vllm"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("(online)"), "{}", stdout(&out));
    let out = cli(&app.address, &["nodes", "list"]).await;
    let listing = stdout(&out);
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with(&url) && l.contains("nodes") && l.contains("vllm") && l.contains("true")),
        "{listing}"
    );
    let out = cli(&app.address, &["nodes", "remove", &url]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(app.store.list_nodes().await.unwrap().is_empty());
    let out = cli(&app.address, &["nodes", "remove", &url]).await;
    assert_eq!(
        out.status.code(),
        Some(1),
        "a second removal is refused: {}",
        stderr(&out)
    );
}

#[tokio::test]
async fn audit_prints_the_trail_newest_first() {
    let mock = MockServer::start().await;
    let app = app_with(&mock).await;
    let (status, _) = admin(
        &app,
        Method::PUT,
        "/api/v1/providers/beta",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200);
    let (status, _) = admin(&app, Method::PUT, "/api/v1/users/alice", Some(json!({"routes": []}))).await;
    assert!((200..300).contains(&status));

    let table = cli(&app.address, &["audit"]).await;
    let filtered = cli(&app.address, &["audit", "--kind", "provider", "--format", "json"]).await;
    let bad = cli(&app.address, &["audit", "--since", "yesterday"]).await;

    assert!(table.status.success(), "{}", stderr(&table));
    let lines: Vec<String> = stdout(&table).lines().map(str::to_owned).collect();
    assert!(lines[0].starts_with("TIME"), "{lines:?}");
    assert!(
        lines[1].contains("create") && lines[1].contains("alice"),
        "newest first: {lines:?}"
    );
    assert!(lines[2].contains("provider") && lines[2].contains("beta"), "{lines:?}");
    assert!(!stdout(&table).contains(ADMIN), "the token is never shown");
    let json: serde_json::Value = serde_json::from_str(&stdout(&filtered)).expect("JSON");
    assert_eq!(json["data"].as_array().expect("data").len(), 1);
    assert_eq!(json["data"][0]["after"]["enabled"], false);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("since"), "{}", stderr(&bad));
}

#[tokio::test]
async fn teams_budgets_and_key_teams_are_set_through_the_admin_api() {
    let app = admin_app().spawn().await;
    let out = cli(
        &app.address,
        &[
            "teams",
            "set",
            "research",
            "--rpm",
            "60",
            "--models",
            "gpt-4o*,o3",
            "--priority",
            "high",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let team = app.state.live().config.settings.teams[0].clone();
    assert_eq!((team.name.as_str(), team.rpm), ("research", Some(60)));
    assert_eq!(team.models, Some(vec!["gpt-4o*".to_owned(), "o3".to_owned()]));
    let out = cli(&app.address, &["teams", "list"]).await;
    let listing = stdout(&out);
    assert!(listing.lines().next().unwrap().starts_with("NAME"), "{listing}");
    assert!(
        listing
            .lines()
            .any(|l| l.starts_with("research") && l.contains("api") && l.contains("gpt-4o*, o3") && l.contains("high")),
        "{listing}"
    );

    let out = cli(
        &app.address,
        &[
            "budgets",
            "set",
            "--scope",
            "team",
            "--name",
            "research",
            "--limit-usd",
            "12.5",
            "--period",
            "monthly",
            "--alert-at",
            "0.5,1.0",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("team:research:monthly"), "{}", stdout(&out));
    let budget = app.state.live().config.settings.budgets[0].clone();
    assert_eq!((budget.limit_usd, budget.alert_at), (12.5, vec![0.5, 1.0]));
    let out = cli(&app.address, &["budgets", "list"]).await;
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.starts_with("team:research:monthly") && l.contains("12.500000") && l.contains("0.5, 1.0")),
        "{}",
        stdout(&out)
    );
    let out = cli(
        &app.address,
        &[
            "budgets",
            "set",
            "--scope",
            "planet",
            "--limit-usd",
            "1",
            "--period",
            "daily",
        ],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("planet"), "{}", stderr(&out));

    let out = cli(
        &app.address,
        &[
            "keys",
            "create",
            "--name",
            "k",
            "--team",
            "research",
            "--priority",
            "low",
            "--user",
            "alice",
        ],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let stored = app.store.list_keys().await.unwrap();
    assert_eq!(
        (
            stored[0].team.as_deref(),
            stored[0].priority.as_deref(),
            stored[0].user_name.as_deref()
        ),
        (Some("research"), Some("low"), Some("alice"))
    );
    let out = cli(&app.address, &["keys", "list"]).await;
    assert!(
        stdout(&out)
            .lines()
            .any(|l| l.contains("research") && l.contains("low") && l.contains("alice")),
        "{}",
        stdout(&out)
    );
    let out = cli(&app.address, &["keys", "create", "--name", "k2", "--team", "ghosts"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("team `ghosts` is not declared"),
        "{}",
        stderr(&out)
    );

    let out = cli(&app.address, &["teams", "delete", "research"]).await;
    assert_eq!(out.status.code(), Some(1), "a budget names it");
    let out = cli(&app.address, &["budgets", "delete", "team:research:monthly"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = cli(&app.address, &["teams", "delete", "research"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let settings = &app.state.live().config.settings;
    assert!(settings.teams.is_empty() && settings.budgets.is_empty());
    let out = cli(&app.address, &["teams", "delete", "research"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("[HTTP 404]"), "{}", stderr(&out));
}

#[tokio::test]
async fn spend_prints_the_report_as_a_table_or_json() {
    use wiremock::matchers::{method, path, query_param};
    let gateway = MockServer::start().await;
    let answer = json!({
        "since": "2026-01-01T00:00:00Z",
        "until": "2026-01-31T23:59:59.999Z",
        "total_usd": 3.75,
        "groups": [
            {"group": "research", "cost_usd": 2.5, "requests": 3, "input_tokens": 300, "output_tokens": 120},
            {"group": null, "cost_usd": 1.25, "requests": 1, "input_tokens": 10, "output_tokens": 4}
        ]
    });
    wiremock::Mock::given(method("GET"))
        .and(path("/api/v1/spend"))
        .and(query_param("group_by", "team"))
        .and(query_param("since", "2026-01-01"))
        .and(query_param("until", "2026-01-31"))
        .and(wiremock::matchers::header("x-admin-token", ADMIN))
        .respond_with(wiremock::ResponseTemplate::new(200).set_body_json(&answer))
        .expect(2)
        .mount(&gateway)
        .await;
    let args = [
        "spend",
        "--group-by",
        "team",
        "--since",
        "2026-01-01",
        "--until",
        "2026-01-31",
    ];
    let out = cli(&gateway.uri(), &args).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let table = stdout(&out);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].contains("2026-01-01T00:00:00Z") && lines[0].contains("team"),
        "{table}"
    );
    assert!(lines[1].starts_with("TEAM") && lines[1].contains("COST_USD"), "{table}");
    assert!(
        lines[2].starts_with("research") && lines[2].contains("2.500000") && lines[2].contains("300"),
        "{table}"
    );
    assert!(lines[3].starts_with('-') && lines[3].contains("1.250000"), "{table}");
    assert_eq!(lines[4], "total: 3.750000 USD");
    let out = cli(&gateway.uri(), &[&args[..], &["--json"]].concat()).await;
    let printed: serde_json::Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(printed, answer);
}

#[tokio::test]
async fn keys_created_without_a_gateway_check_the_team_against_the_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gw.yaml");
    let db = format!("sqlite://{}/keys.db", dir.path().display());
    std::fs::write(&config, format!("database_url: {db}\nteams: [{{name: research}}]\n")).unwrap();
    let direct = |args: &[&str]| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_ai-gateway"));
        command
            .args(args)
            .arg("--config")
            .arg(&config)
            .env_remove("AI_GATEWAY_URL")
            .env_remove("AI_GATEWAY_CONFIG")
            .env_remove("DATABASE_URL")
            .kill_on_drop(true);
        async move { command.output().await.unwrap() }
    };
    let out = direct(&[
        "keys",
        "create",
        "--name",
        "ok",
        "--team",
        "research",
        "--priority",
        "high",
    ])
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let out = direct(&["keys", "create", "--name", "no", "--team", "ghosts"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("team `ghosts` is not declared"),
        "{}",
        stderr(&out)
    );
    let out = direct(&["keys", "create", "--name", "no", "--priority", "urgent"]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("priority"), "{}", stderr(&out));
    let out = direct(&["keys", "list"]).await;
    let listing = stdout(&out);
    assert_eq!(listing.lines().count(), 2, "one key stored: {listing}");
    assert!(
        listing
            .lines()
            .any(|l| l.contains("research") && l.contains("high") && l.ends_with("active")),
        "{listing}"
    );
}

#[tokio::test]
async fn config_schema_prints_the_json_schema_of_the_configuration_file() {
    let out = cli(&closed_port_url(), &["config", "schema"]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    let schema: serde_json::Value = serde_json::from_str(&stdout(&out)).expect("the schema is JSON");
    assert_eq!(schema["$schema"], "http://json-schema.org/draft-07/schema#");
    assert_eq!(
        schema["additionalProperties"], false,
        "unknown keys are refused, as the loader does"
    );
    assert_eq!(schema["properties"]["listen"]["default"], "127.0.0.1:8080");
}

//! The admin API's spend side: teams, budgets and tags (changed for every replica like routes),
//! virtual keys' team, priority and user, and `/api/v1/spend` over hand-written history rows on
//! both backends.

use std::time::Duration;

use ai_gateway::domain::Usage;
use ai_gateway::store::{HistoryRecord, RequestStatus};
use reqwest::Method;
use serde_json::{Value, json};

use crate::admin_api::{ADMIN, CLIENT, admin, admin_app};
use crate::helpers::{Database, TestApp, assert_openai_error};

fn names(list: &Value) -> Vec<&str> {
    list["data"]
        .as_array()
        .expect("data is an array")
        .iter()
        .map(|v| v["name"].as_str().expect("name is a string"))
        .collect()
}

fn find<'a>(list: &'a Value, name: &str) -> &'a Value {
    list["data"]
        .as_array()
        .expect("data is an array")
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no `{name}` in {list}"))
}

/// The error's `param` after checking the OpenAI shape.
fn param(body: &Value) -> Value {
    assert_openai_error(body)["param"].clone()
}

async fn audit_actions(app: &TestApp, kind: &str) -> Vec<(String, String)> {
    let (status, trail) = admin(app, Method::GET, &format!("/api/v1/audit?kind={kind}"), None).await;
    assert_eq!(status, 200, "{trail}");
    trail["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_owned(),
                e["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

#[tokio::test]
async fn teams_are_put_listed_and_deleted_with_their_source() {
    let app = admin_app().settings("teams: [{name: research, rpm: 60}]").spawn().await;

    let (status, team) = admin(
        &app,
        Method::PUT,
        "/api/v1/teams/ops",
        Some(json!({"tpm": 1000, "models": ["gpt-4o*"], "priority": "high"})),
    )
    .await;
    assert_eq!(status, 200, "{team}");
    assert_eq!(team["kind"], "team");
    assert_eq!(team["source"], "api");
    assert!(team["updated_at"].is_i64(), "{team}");
    assert_eq!(
        team["item"],
        json!({"name": "ops", "tpm": 1000, "models": ["gpt-4o*"], "priority": "high"})
    );
    let (status, replaced) = admin(
        &app,
        Method::PUT,
        "/api/v1/teams/research",
        Some(json!({"name": "research", "rpm": 120})),
    )
    .await;
    assert_eq!(status, 200, "a file team is replaced too: {replaced}");
    assert_eq!(replaced["source"], "api");

    let (_, list) = admin(&app, Method::GET, "/api/v1/teams", None).await;
    assert_eq!(names(&list), ["research", "ops"]);
    assert_eq!(find(&list, "research")["item"]["rpm"], 120);
    assert_eq!(
        app.state.live().config.settings.teams.len(),
        2,
        "this replica applies its own change at once"
    );

    let (status, other) = admin(&app, Method::PUT, "/api/v1/teams/ops", Some(json!({"name": "dev"}))).await;
    assert_eq!(status, 400, "{other}");
    let (status, unknown) = admin(&app, Method::PUT, "/api/v1/teams/ops", Some(json!({"budget": 5}))).await;
    assert_eq!(status, 400, "{unknown}");
    assert!(
        unknown["error"]["message"].as_str().unwrap().contains("budget"),
        "{unknown}"
    );
    let (status, bad) = admin(
        &app,
        Method::PUT,
        "/api/v1/teams/ops",
        Some(json!({"priority": "urgent"})),
    )
    .await;
    assert_eq!((status, param(&bad)), (400, json!("priority")), "{bad}");

    let response = app
        .client
        .delete(app.url("/api/v1/teams/research"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    assert!(response.bytes().await.unwrap().is_empty(), "204 has no body");
    let (status, gone) = admin(&app, Method::DELETE, "/api/v1/teams/research", None).await;
    assert_eq!(status, 404, "{gone}");
    assert_openai_error(&gone);
    let (_, list) = admin(&app, Method::GET, "/api/v1/teams", None).await;
    assert_eq!(names(&list), ["ops"], "the file's team is hidden by a tombstone");

    let trail = audit_actions(&app, "team").await;
    let expected = [("delete", "research"), ("update", "research"), ("create", "ops")];
    let expected: Vec<(String, String)> = expected.iter().map(|(a, n)| ((*a).into(), (*n).into())).collect();
    assert_eq!(trail, expected, "every change is audited, newest first");
}

#[tokio::test]
async fn budgets_are_created_replaced_and_deleted_by_id() {
    let app = admin_app()
        .settings("teams: [{name: research}]\nbudgets: [{scope: gateway, limit_usd: 100, period: monthly}]")
        .spawn()
        .await;
    let budget =
        json!({"scope": "team", "name": "research", "limit_usd": 50, "period": "monthly", "alert_at": [0.8, 1.0]});

    let (status, created) = admin(&app, Method::POST, "/api/v1/budgets", Some(budget.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["kind"], "budget");
    assert_eq!(created["name"], "team:research:monthly");
    assert_eq!(created["source"], "api");
    assert_eq!(created["item"]["limit_usd"], 50.0);
    assert_eq!(created["status"]["spent_usd"], 0.0, "{created}");
    assert_eq!(created["status"]["remaining_usd"], 50.0, "{created}");
    assert!(created["status"]["period_end"].is_string(), "{created}");
    let (status, dup) = admin(&app, Method::POST, "/api/v1/budgets", Some(budget.clone())).await;
    assert_eq!(status, 409, "{dup}");
    assert_openai_error(&dup);

    let mut raised = budget.clone();
    raised["limit_usd"] = json!(75.5);
    let (status, replaced) = admin(&app, Method::PUT, "/api/v1/budgets/team:research:monthly", Some(raised)).await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["item"]["limit_usd"], 75.5);
    let (status, misfiled) = admin(&app, Method::PUT, "/api/v1/budgets/team:research:daily", Some(budget)).await;
    assert_eq!((status, param(&misfiled)), (400, json!("id")), "{misfiled}");
    let (status, created) = admin(
        &app,
        Method::PUT,
        "/api/v1/budgets/user:org%2Falice:daily",
        Some(json!({"scope": "user", "name": "org/alice", "limit_usd": 1, "period": "daily", "timezone": "Europe/Paris"})),
    )
    .await;
    assert_eq!(status, 200, "PUT creates, and an id may hold a slash: {created}");
    assert_eq!(created["name"], "user:org/alice:daily");

    let (status, undeclared) = admin(
        &app,
        Method::POST,
        "/api/v1/budgets",
        Some(json!({"scope": "team", "name": "ghosts", "limit_usd": 1, "period": "daily"})),
    )
    .await;
    assert_eq!(status, 400, "{undeclared}");
    assert!(
        undeclared["error"]["message"].as_str().unwrap().contains("ghosts"),
        "{undeclared}"
    );
    let (status, bad) = admin(
        &app,
        Method::POST,
        "/api/v1/budgets",
        Some(json!({"scope": "gateway", "limit_usd": -1, "period": "daily", "timezone": "Mars/Base"})),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    let message = bad["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("limit_usd") && message.contains("Mars/Base"),
        "every problem: {message}"
    );
    let (status, _) = admin(
        &app,
        Method::POST,
        "/api/v1/budgets",
        Some(json!({"scope": "planet", "limit_usd": 1, "period": "daily"})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, in_use) = admin(&app, Method::DELETE, "/api/v1/teams/research", None).await;
    assert_eq!(status, 400, "a budget still names the team: {in_use}");

    let (_, list) = admin(&app, Method::GET, "/api/v1/budgets", None).await;
    assert_eq!(
        names(&list),
        ["gateway:monthly", "team:research:monthly", "user:org/alice:daily"]
    );
    assert_eq!(find(&list, "gateway:monthly")["source"], "config");
    assert!(
        find(&list, "gateway:monthly")
            .as_object()
            .unwrap()
            .contains_key("status")
    );

    let (status, _) = admin(&app, Method::DELETE, "/api/v1/budgets/gateway:monthly", None).await;
    assert_eq!(status, 204);
    let (status, _) = admin(&app, Method::DELETE, "/api/v1/budgets/user:org%2Falice:daily", None).await;
    assert_eq!(status, 204);
    let (status, _) = admin(&app, Method::DELETE, "/api/v1/budgets/gateway:monthly", None).await;
    assert_eq!(status, 404);
    let ids: Vec<String> = app
        .state
        .live()
        .config
        .settings
        .budgets
        .iter()
        .map(|b| b.id())
        .collect();
    assert_eq!(ids, ["team:research:monthly"]);
    assert_eq!(audit_actions(&app, "budget").await.len(), 5);
}

#[tokio::test]
async fn tags_are_declared_and_removed() {
    let app = admin_app().settings("tags: [ci]").spawn().await;
    let (status, tag) = admin(&app, Method::PUT, "/api/v1/tags/nightly", None).await;
    assert_eq!(status, 200, "{tag}");
    assert_eq!(
        (&tag["kind"], &tag["item"], &tag["source"]),
        (&json!("tag"), &json!("nightly"), &json!("api"))
    );
    let (status, again) = admin(&app, Method::PUT, "/api/v1/tags/nightly", None).await;
    assert_eq!(status, 200, "declaring twice is harmless: {again}");
    let (status, bad) = admin(&app, Method::PUT, "/api/v1/tags/a,b", None).await;
    assert_eq!(status, 400, "{bad}");
    assert!(bad["error"]["message"].as_str().unwrap().contains("not a tag"), "{bad}");

    let (_, list) = admin(&app, Method::GET, "/api/v1/tags", None).await;
    assert_eq!(names(&list), ["ci", "nightly"]);
    assert_eq!(find(&list, "ci")["source"], "config");

    let (status, _) = admin(
        &app,
        Method::POST,
        "/api/v1/budgets",
        Some(json!({"scope": "tag", "name": "nightly", "limit_usd": 3, "period": "weekly"})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, in_use) = admin(&app, Method::DELETE, "/api/v1/tags/nightly", None).await;
    assert_eq!(status, 400, "a budget still names the tag: {in_use}");
    let (status, _) = admin(&app, Method::DELETE, "/api/v1/tags/ci", None).await;
    assert_eq!(status, 204);
    let (status, _) = admin(&app, Method::DELETE, "/api/v1/tags/ci", None).await;
    assert_eq!(status, 404);
    assert_eq!(app.state.live().config.settings.tags, ["nightly"]);
}

#[tokio::test]
async fn keys_carry_a_declared_team_a_priority_and_a_user() {
    let app = admin_app().settings("teams: [{name: research}]").spawn().await;
    let (status, created) = admin(
        &app,
        Method::POST,
        "/api/v1/keys",
        Some(json!({"name": "ci", "team": "research", "priority": "low", "user": "alice"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(
        (&created["team"], &created["priority"], &created["user"]),
        (&json!("research"), &json!("low"), &json!("alice"))
    );
    let (status, plain) = admin(&app, Method::POST, "/api/v1/keys", Some(json!({"name": "bare"}))).await;
    assert_eq!(status, 201, "{plain}");
    assert_eq!(
        (&plain["team"], &plain["priority"], &plain["user"]),
        (&Value::Null, &Value::Null, &json!("bare"))
    );

    let (status, unknown) = admin(
        &app,
        Method::POST,
        "/api/v1/keys",
        Some(json!({"name": "x", "team": "ghosts"})),
    )
    .await;
    assert_eq!((status, param(&unknown)), (400, json!("team")), "{unknown}");
    assert!(
        unknown["error"]["message"].as_str().unwrap().contains("research"),
        "names the declared teams: {unknown}"
    );
    let (status, bad) = admin(
        &app,
        Method::POST,
        "/api/v1/keys",
        Some(json!({"name": "x", "priority": "urgent"})),
    )
    .await;
    assert_eq!((status, param(&bad)), (400, json!("priority")), "{bad}");
    let (status, bad) = admin(
        &app,
        Method::POST,
        "/api/v1/keys",
        Some(json!({"name": "x", "user": " "})),
    )
    .await;
    assert_eq!((status, param(&bad)), (400, json!("user")), "{bad}");

    // A team created through the API counts at once.
    let (status, _) = admin(&app, Method::PUT, "/api/v1/teams/ops", Some(json!({}))).await;
    assert_eq!(status, 200);
    let (status, ops) = admin(
        &app,
        Method::POST,
        "/api/v1/keys",
        Some(json!({"name": "o", "team": "ops"})),
    )
    .await;
    assert_eq!(status, 201, "{ops}");

    let (_, keys) = admin(&app, Method::GET, "/api/v1/keys", None).await;
    let ci = find(&keys, "ci");
    assert_eq!(
        (&ci["team"], &ci["priority"], &ci["user"]),
        (&json!("research"), &json!("low"), &json!("alice"))
    );
    assert_eq!(find(&keys, "o")["team"], "ops");
    assert_eq!(keys["data"].as_array().unwrap().len(), 3, "refused keys are not stored");
}

#[tokio::test]
async fn the_spend_api_needs_the_admin_token() {
    let app = admin_app().spawn().await;
    for (method, path) in [
        (Method::GET, "/api/v1/spend"),
        (Method::GET, "/api/v1/teams"),
        (Method::PUT, "/api/v1/teams/x"),
        (Method::GET, "/api/v1/budgets"),
        (Method::POST, "/api/v1/budgets"),
        (Method::DELETE, "/api/v1/budgets/gateway:daily"),
        (Method::PUT, "/api/v1/tags/x"),
    ] {
        let anonymous = app.client.request(method.clone(), app.url(path)).send().await.unwrap();
        assert_eq!(anonymous.status(), 401, "{method} {path}");
        assert_openai_error(&anonymous.json().await.unwrap());
        let client = app
            .client
            .request(method.clone(), app.url(path))
            .bearer_auth(CLIENT)
            .send()
            .await
            .unwrap();
        assert_eq!(client.status(), 403, "{method} {path}");
    }
    assert!(app.state.live().config.settings.teams.is_empty(), "nothing changed");
}

#[tokio::test]
async fn teams_budgets_and_tags_changed_on_one_replica_apply_on_another() {
    let url = crate::helpers::db::fresh_postgres_database().await;
    let replica = || admin_app().settings(&format!("database_url: {url}")).spawn();
    let a = replica().await;
    let b = replica().await;

    let (status, _) = admin(&a, Method::PUT, "/api/v1/teams/research", Some(json!({"rpm": 30}))).await;
    assert_eq!(status, 200);
    let (status, _) = admin(&a, Method::PUT, "/api/v1/tags/nightly", None).await;
    assert_eq!(status, 200);
    let (status, _) = admin(
        &a,
        Method::POST,
        "/api/v1/budgets",
        Some(json!({"scope": "team", "name": "research", "limit_usd": 10, "period": "daily"})),
    )
    .await;
    assert_eq!(status, 201);
    eventually("replica B applies A's team, tag and budget", || {
        let live = b.state.live();
        let s = &live.config.settings;
        s.teams.iter().any(|t| t.name == "research" && t.rpm == Some(30))
            && s.tags == ["nightly"]
            && s.budgets.iter().any(|b| b.id() == "team:research:daily")
    })
    .await;
    let (_, teams) = admin(&b, Method::GET, "/api/v1/teams", None).await;
    assert_eq!(find(&teams, "research")["source"], "api");

    let (status, _) = admin(&b, Method::DELETE, "/api/v1/budgets/team:research:daily", None).await;
    assert_eq!(status, 204);
    let (status, _) = admin(&b, Method::DELETE, "/api/v1/teams/research", None).await;
    assert_eq!(status, 204);
    eventually("replica A drops what B deleted", || {
        let live = a.state.live();
        let s = &live.config.settings;
        s.teams.is_empty() && s.budgets.is_empty() && s.tags == ["nightly"]
    })
    .await;
    let c = replica().await;
    assert_eq!(
        c.state.live().config.settings.tags,
        ["nightly"],
        "a replica started later applies the stored changes at once"
    );
}

/// Polls `check` every 50 ms until it holds; panics after 5 s.
async fn eventually(what: &str, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while !check() {
        assert!(tokio::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One history row as the pipeline would write it, with only what the spend report reads set.
struct Row {
    at: &'static str,
    caller: Option<String>,
    team: Option<&'static str>,
    user: Option<&'static str>,
    tags: &'static [&'static str],
    provider: &'static str,
    model: &'static str,
    upstream_model: Option<&'static str>,
    cost_usd: Option<f64>,
    tokens: (u64, u64),
}

impl Row {
    fn record(&self) -> HistoryRecord {
        let at: jiff::Timestamp = self.at.parse().unwrap();
        let usage = Usage {
            prompt_tokens: self.tokens.0,
            completion_tokens: self.tokens.1,
            total_tokens: self.tokens.0 + self.tokens.1,
            ..Usage::default()
        };
        HistoryRecord {
            endpoint: "/v1/chat/completions".into(),
            request_id: uuid::Uuid::now_v7().to_string(),
            created_at_ms: at.as_millisecond(),
            task: None,
            model: Some(self.model.into()),
            provider: Some(self.provider.into()),
            upstream_model: self.upstream_model.map(str::to_owned),
            stream: false,
            status: RequestStatus::Success,
            http_status: 200,
            latency_ms: 5,
            ttft_ms: None,
            usage: Some(usage),
            attempts: Vec::new(),
            caller: self.caller.clone(),
            error_message: None,
            result_summary: None,
            prompt: None,
            cache: None,
            session_id: None,
            cost_usd: self.cost_usd,
            cost_estimated: false,
            team: self.team.map(str::to_owned),
            user: self.user.map(str::to_owned),
            tags: self.tags.iter().map(|t| (*t).to_owned()).collect(),
            charges: Vec::new(),
            trace_id: None,
        }
    }
}

/// `(group, cost_usd, requests, input_tokens, output_tokens)` of each group, in order.
async fn groups(app: &TestApp, query: &str) -> (Value, Vec<(Value, f64, i64, i64, i64)>) {
    let (status, report) = admin(app, Method::GET, &format!("/api/v1/spend?{query}"), None).await;
    assert_eq!(status, 200, "{query}: {report}");
    let groups = report["groups"]
        .as_array()
        .expect("groups")
        .iter()
        .map(|g| {
            (
                g["group"].clone(),
                g["cost_usd"].as_f64().unwrap(),
                g["requests"].as_i64().unwrap(),
                g["input_tokens"].as_i64().unwrap(),
                g["output_tokens"].as_i64().unwrap(),
            )
        })
        .collect();
    (report, groups)
}

/// Writes known rows (two virtual keys of one name, a static caller, no caller; costs that are
/// exact in binary so sums compare exactly) and checks every grouping.
async fn spend_report_groups_rows_exactly(database: Database) {
    let app = admin_app().database(database).spawn().await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, key) = admin(&app, Method::POST, "/api/v1/keys", Some(json!({"name": "ci"}))).await;
        assert_eq!(status, 201, "{key}");
        ids.push(key["id"].as_str().unwrap().to_owned());
    }
    let row = |at, caller: Option<String>, team, user, tags, provider, model, upstream_model, cost_usd, tokens| Row {
        at,
        caller,
        team,
        user,
        tags,
        provider,
        model,
        upstream_model,
        cost_usd,
        tokens,
    };
    let rows = [
        row(
            "2026-01-10T12:00:00Z",
            Some(ids[0].clone()),
            Some("research"),
            Some("alice"),
            &["ci", "nightly"][..],
            "openai",
            "gpt-4o",
            Some("gpt-4o-2024"),
            Some(1.5),
            (100, 50),
        ),
        row(
            "2026-01-10T13:00:00Z",
            Some(ids[1].clone()),
            Some("research"),
            Some("bob"),
            &["ci"],
            "openai",
            "gpt-4o-mini",
            None,
            Some(0.25),
            (10, 5),
        ),
        row(
            "2026-01-11T08:00:00Z",
            Some("static-client".into()),
            None,
            None,
            &[],
            "anthropic",
            "claude",
            Some("claude-x"),
            Some(2.0),
            (200, 100),
        ),
        row(
            "2026-01-11T23:59:59.999Z",
            None,
            Some("ops"),
            Some("alice"),
            &["nightly"],
            "anthropic",
            "claude",
            Some("claude-x"),
            None,
            (7, 3),
        ),
        // Outside the range on either side.
        row(
            "2025-12-31T23:59:59.999Z",
            Some(ids[0].clone()),
            Some("research"),
            None,
            &[],
            "openai",
            "gpt-4o",
            None,
            Some(100.0),
            (1, 1),
        ),
        row(
            "2026-01-12T00:00:00Z",
            Some(ids[0].clone()),
            Some("research"),
            None,
            &[],
            "openai",
            "gpt-4o",
            None,
            Some(50.0),
            (1, 1),
        ),
    ];
    let records: Vec<HistoryRecord> = rows.iter().map(Row::record).collect();
    assert_eq!(app.store.insert(&records).await.unwrap(), 6);
    let range = "since=2026-01-01&until=2026-01-11";
    let null = Value::Null;
    let g = |name: &str| json!(name);

    let (report, by_model) = groups(&app, range).await;
    assert_eq!(report["since"], "2026-01-01T00:00:00Z");
    assert_eq!(report["until"], "2026-01-11T23:59:59.999Z");
    assert_eq!(report["total_usd"], 3.75);
    assert_eq!(
        by_model,
        [
            (g("claude-x"), 2.0, 2, 207, 103),
            (g("gpt-4o-2024"), 1.5, 1, 100, 50),
            (g("gpt-4o-mini"), 0.25, 1, 10, 5)
        ],
        "model is the default grouping: upstream_model, else model"
    );
    let expected = [
        (
            "key",
            vec![
                (g("static-client"), 2.0, 1, 200, 100),
                (g("ci"), 1.75, 2, 110, 55),
                (null.clone(), 0.0, 1, 7, 3),
            ],
        ),
        (
            "team",
            vec![
                (null.clone(), 2.0, 1, 200, 100),
                (g("research"), 1.75, 2, 110, 55),
                (g("ops"), 0.0, 1, 7, 3),
            ],
        ),
        (
            "user",
            vec![
                (null.clone(), 2.0, 1, 200, 100),
                (g("alice"), 1.5, 2, 107, 53),
                (g("bob"), 0.25, 1, 10, 5),
            ],
        ),
        (
            "tag",
            vec![
                (null.clone(), 2.0, 1, 200, 100),
                (g("ci"), 1.75, 2, 110, 55),
                (g("nightly"), 1.5, 2, 107, 53),
            ],
        ),
        (
            "provider",
            vec![(g("anthropic"), 2.0, 2, 207, 103), (g("openai"), 1.75, 2, 110, 55)],
        ),
        (
            "day",
            vec![(g("2026-01-10"), 1.75, 2, 110, 55), (g("2026-01-11"), 2.0, 2, 207, 103)],
        ),
    ];
    for (by, want) in expected {
        let (report, got) = groups(&app, &format!("group_by={by}&{range}")).await;
        assert_eq!(got, want, "group_by={by}");
        assert_eq!(report["total_usd"], 3.75, "group_by={by}: each row counted once");
    }

    let (report, by_day) = groups(
        &app,
        "group_by=day&since=2026-01-11T08:00:00Z&until=2026-01-12T00:00:00Z",
    )
    .await;
    assert_eq!(
        by_day,
        [(g("2026-01-11"), 2.0, 2, 207, 103), (g("2026-01-12"), 50.0, 1, 1, 1)],
        "RFC 3339 bounds are included as given"
    );
    assert_eq!(report["total_usd"], 52.0);
    let (report, now) = groups(&app, "").await;
    assert!(now.is_empty(), "the default range is this month: {report}");

    for (query, name) in [
        ("group_by=week", "group_by"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("since=2026-02-01&until=2026-01-01", "until"),
    ] {
        let (status, refused) = admin(&app, Method::GET, &format!("/api/v1/spend?{query}"), None).await;
        assert_eq!((status, param(&refused)), (400, json!(name)), "{query}: {refused}");
    }
    let (status, unknown) = admin(&app, Method::GET, "/api/v1/spend?group=model", None).await;
    assert_eq!(status, 400, "{unknown}");
    assert_openai_error(&unknown);
}

#[tokio::test]
async fn spend_report_groups_history_rows_exactly_on_sqlite() {
    spend_report_groups_rows_exactly(Database::Sqlite).await;
}

#[tokio::test]
async fn spend_report_groups_history_rows_exactly_on_postgres() {
    spend_report_groups_rows_exactly(Database::Postgres).await;
}

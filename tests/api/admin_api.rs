//! The admin REST API (`/api/v1/...`): CRUD of routes, security rules, users, providers and keys;
//! changes shared by replicas through the database; hot reload of the config file.

use std::time::Duration;

use ai_gateway::admin::{ReloadCause, reload_file};
use reqwest::Method;
use serde_json::{Value, json};
use wiremock::MockServer;

use crate::helpers::{
    ProviderSpec, TEST_MODEL, TestApp, TestAppBuilder, assert_openai_error, chat_body, completion, header, upstream_url,
};

pub const ADMIN: &str = "adm-token";
pub const CLIENT: &str = "sk-client";

/// A gateway with an admin token, a client key, and a 200 ms sync and file-watch period.
pub fn admin_app() -> TestAppBuilder {
    TestApp::builder().settings(&format!(
        "auth: {{admin_token: {ADMIN}, api_keys: [{CLIENT}], refresh_seconds: 30, jwt: {{hs256_secret: admin-tests-jwt-secret}}}}\nreload: {{poll_seconds: 0.2}}"
    ))
}

/// Calls the admin API with the admin token as seed 002's clients send it (a bearer token).
pub async fn admin(app: &TestApp, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = app.client.request(method.clone(), app.url(path)).bearer_auth(ADMIN);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(Value::Null);
    (status, body)
}

/// `POST /v1/chat/completions` with the client key.
async fn chat(app: &TestApp, model: &str) -> reqwest::Response {
    app.client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(CLIENT)
        .json(&chat_body(model))
        .send()
        .await
        .expect("chat request")
}

fn find<'a>(list: &'a Value, kind: &str, name: &str) -> Option<&'a Value> {
    list["data"]
        .as_array()
        .expect("data is an array")
        .iter()
        .find(|v| v["kind"] == kind && v["name"] == name)
}

async fn upstream() -> MockServer {
    let mock = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(completion())
        .mount(&mock)
        .await;
    mock
}

/// Polls `check` every 50 ms until it holds; panics after `secs`.
async fn eventually<F, Fut>(secs: u64, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check().await {
        assert!(tokio::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn routes_are_created_listed_replaced_and_deleted_with_their_source() {
    let mock = upstream().await;
    let app = admin_app()
        .provider(ProviderSpec::new("alpha", upstream_url(&mock)))
        .provider(ProviderSpec::new("beta", upstream_url(&mock)))
        .settings("routes: [{name: from-file, targets: ['alpha:gpt-test']}]")
        .spawn()
        .await;

    let (status, created) = admin(
        &app,
        Method::POST,
        "/api/v1/routes",
        Some(json!({"path": "/predict", "target": "http://ai-service:8080", "method": "POST"})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["kind"], "path_route");
    assert_eq!(created["source"], "api");
    assert_eq!(created["item"]["targets"], json!("http://ai-service:8080"));
    let (status, created) = admin(
        &app,
        Method::POST,
        "/api/v1/routes",
        Some(json!({"name": "support", "strategy": "rotation", "targets": ["alpha:gpt-test", "beta:gpt-test"]})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["item"]["strategy"], "rotation");

    let (status, dup) = admin(
        &app,
        Method::POST,
        "/api/v1/routes",
        Some(json!({"name": "support", "targets": ["alpha:gpt-test"]})),
    )
    .await;
    assert_eq!(status, 409, "{dup}");
    assert_openai_error(&dup);

    let (status, bad) = admin(
        &app,
        Method::POST,
        "/api/v1/routes",
        Some(json!({"path": "predict", "targets": ["ftp://x"], "methods": ["FETCH"]})),
    )
    .await;
    assert_eq!(status, 400, "{bad}");
    let message = assert_openai_error(&bad)["message"].as_str().unwrap().to_owned();
    for problem in ["Invalid route path", "ftp://x", "FETCH"] {
        assert!(message.contains(problem), "every problem is reported: {message}");
    }
    let (status, _) = admin(&app, Method::POST, "/api/v1/routes", Some(json!({"target": "x"}))).await;
    assert_eq!(status, 400);

    let (_, list) = admin(&app, Method::GET, "/api/v1/routes", None).await;
    assert_eq!(find(&list, "route", "from-file").unwrap()["source"], "config");
    assert_eq!(find(&list, "route", "support").unwrap()["source"], "api");
    assert_eq!(find(&list, "path_route", "/predict").unwrap()["source"], "api");
    assert_eq!(
        app.state.live().config.settings.path_routes[0].path,
        "/predict",
        "this replica applies its own change at once"
    );

    let (status, replaced) = admin(
        &app,
        Method::PUT,
        "/api/v1/routes/from-file",
        Some(json!({"strategy": "weighted", "targets": ["beta:gpt-test"]})),
    )
    .await;
    assert_eq!(status, 200, "{replaced}");
    assert_eq!(replaced["source"], "api");
    assert_eq!(replaced["item"]["strategy"], "weighted");
    let (status, _) = admin(
        &app,
        Method::PUT,
        "/api/v1/routes/nobody",
        Some(json!({"targets": ["beta:gpt-test"]})),
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = admin(
        &app,
        Method::PUT,
        "/api/v1/routes?path=/predict",
        Some(json!({"targets": ["http://a:1", "http://b:2"], "methods": ["POST", "GET"]})),
    )
    .await;
    assert_eq!(status, 200);

    let (status, _) = admin(&app, Method::DELETE, "/api/v1/routes/from-file", None).await;
    assert_eq!(status, 200);
    let (status, _) = admin(&app, Method::DELETE, "/api/v1/routes?path=/predict", None).await;
    assert_eq!(status, 200);
    let (status, gone) = admin(&app, Method::DELETE, "/api/v1/routes/from-file", None).await;
    assert_eq!(status, 404, "{gone}");
    let (_, list) = admin(&app, Method::GET, "/api/v1/routes", None).await;
    let names: Vec<&str> = list["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["support"], "a file route can be deleted too: {list}");
}

#[tokio::test]
async fn the_admin_api_needs_the_admin_token() {
    let app = admin_app().spawn().await;
    let anonymous = app.get("/api/v1/routes").await;
    assert_eq!(anonymous.status(), 401);
    assert_openai_error(&anonymous.json().await.unwrap());
    let client = app
        .client
        .get(app.url("/api/v1/providers"))
        .bearer_auth(CLIENT)
        .send()
        .await
        .unwrap();
    assert_eq!(client.status(), 403);
    let by_header = app
        .client
        .get(app.url("/api/v1/users"))
        .header("x-admin-token", ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200);
}

#[tokio::test]
async fn security_rules_users_and_keys_are_managed() {
    let app = admin_app()
        .provider(ProviderSpec::new("alpha", "http://127.0.0.1:9/v1"))
        .spawn()
        .await;
    let (status, rule) = admin(
        &app,
        Method::PUT,
        "/api/v1/security/predict",
        Some(json!({"authType": "jwt", "rateLimit": 100})),
    )
    .await;
    assert_eq!(status, 201, "{rule}");
    assert_eq!(rule["name"], "/predict");
    assert_eq!(
        rule["item"],
        json!({"endpoint": "/predict", "auth": "jwt", "rate_limit": "100/min"})
    );
    let (status, _) = admin(
        &app,
        Method::PUT,
        "/api/v1/security/predict",
        Some(json!({"authType": "api-key", "rateLimit": "10/s"})),
    )
    .await;
    assert_eq!(status, 200, "a second PUT replaces");
    let (status, bad) = admin(
        &app,
        Method::PUT,
        "/api/v1/security/predict",
        Some(json!({"authType": "magic"})),
    )
    .await;
    assert_eq!(status, 400);
    assert!(bad["error"]["message"].as_str().unwrap().contains("magic"), "{bad}");
    let (_, rules) = admin(&app, Method::GET, "/api/v1/security", None).await;
    assert_eq!(rules["data"][0]["item"]["rate_limit"], "10/s");
    assert_eq!(app.state.live().config.settings.security.len(), 1);

    // A grant may name only a configured route.
    let (status, _) = admin(
        &app,
        Method::PUT,
        "/api/v1/users/alice",
        Some(json!({"routes": ["support"], "providers": []})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = admin(
        &app,
        Method::POST,
        "/api/v1/routes",
        Some(json!({"name": "support", "strategy": "rotation", "targets": ["alpha:m"]})),
    )
    .await;
    assert_eq!(status, 201);
    let (status, user) = admin(
        &app,
        Method::PUT,
        "/api/v1/users/alice",
        Some(json!({"routes": ["support"], "providers": []})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let (status, user) = admin(&app, Method::GET, "/api/v1/users/alice", None).await;
    assert_eq!((status, &user["item"]["routes"]), (200, &json!(["support"])));
    let (status, _) = admin(&app, Method::DELETE, "/api/v1/users/alice", None).await;
    assert_eq!(status, 200);
    let (status, _) = admin(&app, Method::GET, "/api/v1/users/alice", None).await;
    assert_eq!(status, 404);

    let (status, created) = admin(
        &app,
        Method::POST,
        "/api/v1/keys",
        Some(json!({"name": "ci", "rpm": 5})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let key = created["key"].as_str().unwrap().to_owned();
    let id = created["id"].as_str().unwrap().to_owned();
    let (_, keys) = admin(&app, Method::GET, "/api/v1/keys", None).await;
    assert_eq!(keys["data"][0]["name"], "ci");
    assert!(keys["data"][0].get("key").is_none(), "a listing never shows the key");
    assert!(
        !keys.to_string().contains(&key),
        "the key is shown once, only its hash is stored"
    );
    let with_key = |key: &str| app.client.get(app.url("/history")).bearer_auth(key).send();
    assert_eq!(
        with_key(&key).await.unwrap().status(),
        200,
        "the replica that created it accepts it at once"
    );
    let (status, _) = admin(&app, Method::DELETE, &format!("/api/v1/keys/{id}"), None).await;
    assert_eq!(status, 200);
    assert_eq!(with_key(&key).await.unwrap().status(), 401, "and refuses it at once");
    let (status, _) = admin(&app, Method::DELETE, &format!("/api/v1/keys/{id}"), None).await;
    assert_eq!(status, 404, "already revoked");
}

#[tokio::test]
async fn a_change_through_one_replica_is_applied_by_another_without_restart() {
    let alpha = upstream().await;
    let beta = upstream().await;
    let url = crate::helpers::db::fresh_postgres_database().await;
    let replica = || {
        admin_app()
            .settings(&format!("database_url: {url}"))
            .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
            .provider(ProviderSpec::new("beta", upstream_url(&beta)))
            .spawn()
    };
    let a = replica().await;
    let b = replica().await;
    assert_eq!(header(&chat(&b, TEST_MODEL).await, "x-ai-gateway-provider"), "alpha");

    let (status, _) = admin(
        &a,
        Method::POST,
        "/api/v1/routes",
        Some(json!({"name": "support", "strategy": "rotation", "targets": ["alpha:gpt-test", "beta:gpt-test"]})),
    )
    .await;
    assert_eq!(status, 201);
    eventually(5, "replica B serves the route replica A created", || async {
        let (_, list) = admin(&b, Method::GET, "/api/v1/routes", None).await;
        find(&list, "route", "support").is_some()
    })
    .await;
    assert!(
        b.state
            .live()
            .config
            .settings
            .route_for_model("rotation:support")
            .is_some()
    );

    let (status, view) = admin(
        &a,
        Method::PUT,
        "/api/v1/providers/alpha",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["enabled"], false);
    assert_eq!(header(&chat(&a, TEST_MODEL).await, "x-ai-gateway-provider"), "beta");
    eventually(5, "replica B stops sending alpha traffic", || async {
        header(&chat(&b, TEST_MODEL).await, "x-ai-gateway-provider") == "beta"
    })
    .await;
    let (_, providers) = admin(&b, Method::GET, "/api/v1/providers", None).await;
    let alpha_view = providers["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "alpha")
        .unwrap();
    assert_eq!(alpha_view["enabled"], false);
    assert_eq!(alpha_view["source"], "api");
    let before = alpha.received_requests().await.unwrap().len();
    for app in [&a, &b, &a, &b] {
        assert_eq!(header(&chat(app, TEST_MODEL).await, "x-ai-gateway-provider"), "beta");
    }
    assert_eq!(
        alpha.received_requests().await.unwrap().len(),
        before,
        "alpha gets nothing"
    );

    let (status, _) = admin(
        &b,
        Method::PUT,
        "/api/v1/providers/alpha",
        Some(json!({"enabled": true})),
    )
    .await;
    assert_eq!(status, 200);
    eventually(5, "replica A takes alpha back", || async {
        header(&chat(&a, TEST_MODEL).await, "x-ai-gateway-provider") == "alpha"
    })
    .await;
    let (status, _) = admin(
        &a,
        Method::PUT,
        "/api/v1/providers/ghost",
        Some(json!({"enabled": false})),
    )
    .await;
    assert_eq!(status, 404);
    let c = replica().await;
    assert!(
        c.state.live().config.settings.route_for_model("support").is_some(),
        "a replica started later applies the stored changes from its first request"
    );
}

/// Rewrites the test's config file through `edit` (the file is JSON, which is YAML).
fn rewrite(app: &TestApp, edit: impl FnOnce(&mut Value)) {
    let text = std::fs::read_to_string(app.config_path()).unwrap();
    let mut tree: Value = serde_json::from_str(&text).unwrap();
    edit(&mut tree);
    std::fs::write(app.config_path(), serde_json::to_vec_pretty(&tree).unwrap()).unwrap();
}

async fn reloads(app: &TestApp, result: &str) -> u64 {
    let text = app.get("/metrics").await.text().await.unwrap();
    let series = format!("gateway_config_reloads_total{{result=\"{result}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .unwrap_or_else(|| panic!("no {series} in /metrics"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test]
async fn a_changed_config_file_is_applied_and_an_invalid_one_refused() {
    let mock = upstream().await;
    let app = admin_app()
        .provider(ProviderSpec::new("alpha", upstream_url(&mock)))
        .spawn()
        .await;
    assert_eq!(chat(&app, "gpt-new").await.status(), 404);

    rewrite(&app, |tree| {
        tree["providers"][0]["models"] = json!(["gpt-test", "gpt-new"]);
        tree["routes"] = json!([{"name": "from-reload", "targets": ["alpha:gpt-new"]}]);
    });
    eventually(5, "the file watch applies the new model", || async {
        chat(&app, "gpt-new").await.status() == 200
    })
    .await;
    assert_eq!(reloads(&app, "ok").await, 1);
    let (_, list) = admin(&app, Method::GET, "/api/v1/routes", None).await;
    assert_eq!(find(&list, "route", "from-reload").unwrap()["source"], "config");

    rewrite(&app, |tree| tree["routing"]["max_retries"] = json!("many"));
    eventually(5, "the invalid file is counted", || async {
        reloads(&app, "invalid").await == 1
    })
    .await;
    assert_eq!(
        chat(&app, "gpt-new").await.status(),
        200,
        "the running configuration stays"
    );
    assert_eq!(app.state.live().config.settings.routing.max_retries, 0);
    let err = reload_file(&app.state, ReloadCause::Signal).await.unwrap_err();
    assert!(err.problems[0].contains("max_retries"), "{err}");
}

#[tokio::test]
async fn sighup_reloads_the_file_and_admin_changes_survive_it() {
    let mock = upstream().await;
    let app = admin_app()
        .settings("reload: {watch_file: false}")
        .provider(ProviderSpec::new("alpha", upstream_url(&mock)))
        .spawn()
        .await;
    let (status, _) = admin(
        &app,
        Method::POST,
        "/api/v1/routes",
        Some(json!({"name": "kept", "targets": ["alpha:gpt-test"]})),
    )
    .await;
    assert_eq!(status, 201);
    rewrite(&app, |tree| tree["providers"][0]["models"] = json!(["gpt-hup"]));
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        chat(&app, "gpt-hup").await.status(),
        404,
        "without watch_file only SIGHUP reloads"
    );
    let pid = std::process::id().to_string();
    let sent = tokio::process::Command::new("kill")
        .args(["-HUP", &pid])
        .status()
        .await
        .unwrap();
    assert!(sent.success());
    eventually(5, "SIGHUP applies the file", || async {
        chat(&app, "gpt-hup").await.status() == 200
    })
    .await;
    assert!(
        app.state.live().config.settings.route_for_model("kept").is_some(),
        "the admin API's route is applied over the reloaded file"
    );
}

#[tokio::test]
async fn a_request_in_flight_finishes_on_the_configuration_it_started_with() {
    let slow = MockServer::start().await;
    wiremock::Mock::given(wiremock::matchers::method("POST"))
        .respond_with(completion().set_delay(Duration::from_millis(1500)))
        .expect(1)
        .mount(&slow)
        .await;
    let fast = upstream().await;
    let app = admin_app()
        .settings("reload: {watch_file: false}")
        .provider(ProviderSpec::new("alpha", upstream_url(&slow)))
        .spawn()
        .await;
    let request = app
        .client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(CLIENT)
        .json(&chat_body(TEST_MODEL))
        .send();
    let in_flight = tokio::spawn(request);
    eventually(5, "the request reaches the slow upstream", || async {
        slow.received_requests().await.unwrap().len() == 1
    })
    .await;
    rewrite(&app, |tree| {
        tree["providers"][0]["base_url"] = json!(upstream_url(&fast))
    });
    reload_file(&app.state, ReloadCause::Signal).await.unwrap();
    assert_eq!(chat(&app, TEST_MODEL).await.status(), 200);
    assert_eq!(
        fast.received_requests().await.unwrap().len(),
        1,
        "new requests use the new file"
    );
    let response = in_flight.await.unwrap().unwrap();
    assert_eq!(response.status(), 200, "the request in flight was not cut");
    assert_eq!(
        slow.received_requests().await.unwrap().len(),
        1,
        "it finished on the upstream its snapshot named"
    );
}

//! Guessing the admin or worker token: failures are throttled per peer address.

use wiremock::MockServer;

use crate::helpers::{ProviderSpec, TestApp, upstream_url};

const ADMIN: &str = "admin-token-0123456789abcdef0123456789";
const WORKER: &str = "worker-token-0123456789abcdef012345678";

async fn app() -> TestApp {
    let alpha = MockServer::start().await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(&format!("auth: {{admin_token: {ADMIN}, worker_token: {WORKER}}}"))
        .spawn()
        .await;
    std::mem::forget(alpha);
    app
}

async fn guess(app: &TestApp, path: &str, header: &str, value: &str) -> reqwest::Response {
    app.client
        .post(app.url(path))
        .header(header, value)
        .header("content-type", "application/json")
        .body("{}")
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn guessing_the_admin_token_is_throttled_even_for_the_right_guess() {
    let app = app().await;
    let mut statuses = Vec::new();
    for i in 0..30 {
        statuses.push(
            guess(&app, "/history/cleanup", "x-admin-token", &format!("guess-{i}"))
                .await
                .status()
                .as_u16(),
        );
    }
    assert!(statuses.iter().take(5).all(|s| *s == 401), "{statuses:?}");
    assert_eq!(*statuses.last().unwrap(), 429, "{statuses:?}");
    let right = guess(&app, "/history/cleanup", "x-admin-token", ADMIN).await;
    assert_eq!(
        right.status(),
        429,
        "the right token must not be confirmed while throttled"
    );
    let wait: u64 = right.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(wait >= 1);
    let bearer = guess(&app, "/history/cleanup", "authorization", "Bearer nope").await;
    assert_eq!(bearer.status(), 429);
}

#[tokio::test]
async fn guessing_the_worker_token_is_throttled() {
    let app = app().await;
    let mut last = 0;
    for i in 0..30 {
        last = guess(&app, "/pulse", "x-worker-token", &format!("guess-{i}"))
            .await
            .status()
            .as_u16();
    }
    assert_eq!(last, 429);
    let right = guess(&app, "/pulse", "x-worker-token", WORKER).await;
    assert_eq!(right.status(), 429);
}

#[tokio::test]
async fn a_few_mistakes_are_not_throttled() {
    let app = app().await;
    for i in 0..3 {
        assert_eq!(
            guess(&app, "/history/cleanup", "x-admin-token", &format!("typo-{i}"))
                .await
                .status(),
            401
        );
    }
    assert_eq!(
        guess(&app, "/history/cleanup", "x-admin-token", ADMIN).await.status(),
        200
    );
}

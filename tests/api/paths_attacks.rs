//! Attacks on path routes and `security:` rules, sent over a raw TCP connection so the path
//! reaches the gateway exactly as written (HTTP clients normalise `..` and `%2e` away).

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::TestApp;

/// A raw answer: status, header lines (lower-case names) and body.
#[derive(Debug)]
pub struct RawAnswer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawAnswer {
    /// The first value of header `name` (lower case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

impl RawAnswer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or(Value::Null)
    }
}

/// Sends `head` (request line and headers, without the blank line) and `body` as written, on a
/// connection the gateway closes after answering; returns the answer.
pub async fn raw(app: &TestApp, head: &str, body: &str) -> RawAnswer {
    let mut stream = TcpStream::connect(("127.0.0.1", app.port)).await.unwrap();
    let request = format!(
        "{head}\r\nHost: gw\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("the gateway answers and closes")
        .unwrap();
    let text = String::from_utf8_lossy(&out).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    RawAnswer {
        status,
        headers,
        body: body.to_owned(),
    }
}

/// A service that answers every request with 200 and records it.
async fn service() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({"ok": true})))
        .mount(&server)
        .await;
    server
}

/// `/raw` is open (`auth: none`); `/raw/admin` needs a key (`sk-a`), with a rate-only sub-rule
/// under it.
async fn protected_app(service: &MockServer, extra: Value) -> TestApp {
    let mut settings = json!({
        "auth": {"api_keys": ["sk-a"]},
        "path_routes": [{"path": "/raw", "target": service.uri(), "methods": ["GET", "POST"], "auth": "none"}],
        "security": [
            {"endpoint": "/raw/admin", "auth": "api-key"},
            {"endpoint": "/raw/admin/hot", "rate_limit": "100/min"},
        ],
    });
    if let (Some(s), Some(e)) = (settings.as_object_mut(), extra.as_object()) {
        s.extend(e.clone());
    }
    TestApp::builder().settings(&settings.to_string()).spawn().await
}

async fn paths_seen(service: &MockServer) -> Vec<String> {
    service
        .received_requests()
        .await
        .unwrap_or_default()
        .iter()
        .map(|r| r.url.path().to_owned())
        .collect()
}

#[tokio::test]
async fn dot_segments_and_encoded_separators_never_reach_a_protected_path() {
    // Arrange
    let svc = service().await;
    let app = protected_app(&svc, json!({})).await;

    // Act + Assert: every spelling is refused before auth, routing or the upstream call.
    for target in [
        "/raw/x/../admin",
        "/raw/%2e%2e/raw/admin",
        "/raw/%2E%2E/raw/admin",
        "/raw/./admin",
        "/raw/%2e/admin",
        "/raw/.%2e/raw/admin",
        "/raw//admin",
        "/raw/admin;x=1",
        "/raw;/admin",
        "/raw/x%2f..%2fadmin",
        "/raw/x%5c..%5cadmin",
        "/raw/x\\..\\admin",
        "/raw/%252e%252e/admin",
        "/raw/%c0%ae%c0%ae/raw/admin",
    ] {
        let answer = raw(&app, &format!("GET {target} HTTP/1.1"), "").await;
        assert_eq!(answer.status, 400, "{target}: {answer:?}");
        assert_eq!(answer.json()["error"]["code"], "invalid_path", "{target}");
    }
    let seen = paths_seen(&svc).await;
    assert!(seen.is_empty(), "the service was called: {seen:?}");
    // The plain path still needs the key, and gets through with it.
    assert_eq!(raw(&app, "GET /raw/admin HTTP/1.1", "").await.status, 401);
    let keyed = raw(&app, "GET /raw/admin HTTP/1.1\r\nAuthorization: Bearer sk-a", "").await;
    assert_eq!(keyed.status, 200);
    assert_eq!(paths_seen(&svc).await, ["/raw/admin"]);
}

#[tokio::test]
async fn a_rate_only_sub_rule_keeps_its_parents_auth() {
    // Arrange
    let svc = service().await;
    let app = protected_app(&svc, json!({})).await;

    // Act
    let anonymous = raw(&app, "GET /raw/admin/hot HTTP/1.1", "").await;
    let keyed = raw(&app, "GET /raw/admin/hot HTTP/1.1\r\nx-api-key: sk-a", "").await;

    // Assert
    assert_eq!(anonymous.status, 401, "{anonymous:?}");
    assert_eq!(keyed.status, 200);
    assert_eq!(paths_seen(&svc).await, ["/raw/admin/hot"]);
}

#[tokio::test]
async fn an_encoded_character_stays_inside_its_segment_upstream() {
    // Arrange
    let svc = service().await;
    let app = protected_app(&svc, json!({})).await;

    // Act: `%3F` and `%23` would start a query or a fragment if the URL were concatenated.
    let answer = raw(&app, "GET /raw/a%3Fb%23c/d%20e?q=1 HTTP/1.1", "").await;

    // Assert
    assert_eq!(answer.status, 200, "{answer:?}");
    let requests = svc.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    let url = &requests[0].url;
    assert_eq!(url.path(), "/raw/a%3Fb%23c/d%20e");
    assert_eq!(url.query(), Some("q=1"));
}

#[tokio::test]
async fn forwarding_headers_from_an_untrusted_client_are_dropped() {
    // Arrange
    let svc = service().await;
    let app = protected_app(&svc, json!({})).await;

    // Act
    let answer = raw(
        &app,
        "GET /raw/x HTTP/1.1\r\nX-Forwarded-For: 10.0.0.1\r\nForwarded: for=10.0.0.1\r\nX-Real-IP: 10.0.0.1\r\nX-Forwarded-Host: admin.internal",
        "",
    )
    .await;

    // Assert
    assert_eq!(answer.status, 200);
    let requests = svc.received_requests().await.unwrap();
    for name in ["x-forwarded-for", "forwarded", "x-real-ip", "x-forwarded-host"] {
        assert!(!requests[0].headers.contains_key(name), "{name} reached the service");
    }
}

#[tokio::test]
async fn forwarding_headers_from_a_trusted_proxy_pass() {
    // Arrange
    let svc = service().await;
    let app = protected_app(&svc, json!({"trusted_proxies": ["127.0.0.0/8"]})).await;

    // Act
    let answer = raw(&app, "GET /raw/x HTTP/1.1\r\nX-Forwarded-For: 203.0.113.9", "").await;

    // Assert
    assert_eq!(answer.status, 200);
    let requests = svc.received_requests().await.unwrap();
    assert_eq!(
        requests[0].headers.get("x-forwarded-for").map(|v| v.as_bytes()),
        Some(&b"203.0.113.9"[..])
    );
}

#[tokio::test]
async fn headers_named_in_connection_are_not_forwarded() {
    // Arrange
    let svc = service().await;
    let app = protected_app(&svc, json!({})).await;

    // Act: `Connection` makes `x-internal` hop-by-hop, so it must stop at the gateway.
    let answer = raw(
        &app,
        "GET /raw/x HTTP/1.1\r\nConnection: x-internal\r\nX-Internal: 1\r\nX-Kept: 1",
        "",
    )
    .await;

    // Assert
    assert_eq!(answer.status, 200);
    let requests = svc.received_requests().await.unwrap();
    assert!(!requests[0].headers.contains_key("x-internal"));
    assert!(requests[0].headers.contains_key("x-kept"));
}

#[tokio::test]
async fn method_and_url_override_headers_never_reach_the_service() {
    // Arrange
    let svc = service().await;
    let app = protected_app(&svc, json!({})).await;

    // Act: frameworks that honour these would serve `/raw/admin` or DELETE behind the rules' back.
    let answer = raw(
        &app,
        "GET /raw/public HTTP/1.1\r\nX-Original-URL: /raw/admin\r\nX-Rewrite-URL: /raw/admin\r\nX-HTTP-Method-Override: DELETE",
        "",
    )
    .await;

    // Assert
    assert_eq!(answer.status, 200);
    let requests = svc.received_requests().await.unwrap();
    for name in ["x-original-url", "x-rewrite-url", "x-http-method-override"] {
        assert!(!requests[0].headers.contains_key(name), "{name} reached the service");
    }
}

#[tokio::test]
async fn a_lower_case_method_is_not_an_allowed_method() {
    // Arrange
    let svc = service().await;
    let app = protected_app(&svc, json!({})).await;

    // Act
    let answer = raw(&app, "get /raw/x HTTP/1.1", "").await;

    // Assert
    assert!(answer.status == 405 || answer.status == 400, "{answer:?}");
    assert!(paths_seen(&svc).await.is_empty());
}

#[tokio::test]
async fn an_absolute_form_target_goes_to_the_configured_service_under_its_rules() {
    // Arrange
    let svc = service().await;
    let app = protected_app(&svc, json!({})).await;

    // Act: the authority in the target names another server (and differs from `Host: gw`).
    let protected = raw(&app, "GET http://evil.invalid/raw/admin HTTP/1.1", "").await;
    let open = raw(&app, "GET http://evil.invalid/raw/x HTTP/1.1", "").await;

    // Assert
    assert_eq!(protected.status, 401, "{protected:?}");
    assert_eq!(open.status, 200, "{open:?}");
    let requests = svc.received_requests().await.unwrap();
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].url.path(), "/raw/x");
    let host = requests[0]
        .headers
        .get("host")
        .map(|v| v.to_str().unwrap_or_default().to_owned());
    assert!(
        !matches!(host.as_deref(), Some("evil.invalid" | "gw")),
        "the client's host reached the service: {host:?}"
    );
}

#[tokio::test]
async fn a_request_with_both_content_length_and_chunked_smuggles_nothing() {
    // Arrange
    let svc = service().await;
    let app = protected_app(&svc, json!({})).await;
    let smuggled = "0\r\n\r\nGET /raw/admin HTTP/1.1\r\nHost: gw\r\n\r\n";

    // Act
    let answer = raw(
        &app,
        "POST /raw/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Type: text/plain",
        smuggled,
    )
    .await;

    // Assert: refused, or served as one request; the protected path is never called.
    assert!(answer.status == 400 || answer.status == 200, "{answer:?}");
    assert_eq!(answer.header("connection"), Some("close"));
    assert!(
        !answer.body.contains("HTTP/1.1"),
        "a second answer came back: {answer:?}"
    );
    let seen = paths_seen(&svc).await;
    assert!(!seen.iter().any(|p| p == "/raw/admin"), "smuggled: {seen:?}");
}

//! JWT as an attacker sees it: audience, issuer, `nbf`, leeway, empty subjects, algorithm
//! confusion, and several verification keys (a JWKS file or URL) for rotation.

use std::time::Duration;

use ai_gateway::store::now_ms;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::helpers::{ProviderSpec, TEST_MODEL, TestApp, chat_body, completion, upstream_url};

const DIR: &str = env!("CARGO_MANIFEST_DIR");

fn fixture(name: &str) -> String {
    format!("{DIR}/tests/fixtures/jwt/{name}")
}

fn now() -> i64 {
    now_ms() / 1000
}

fn hs256(claims: &Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        claims,
        &EncodingKey::from_secret(b"jwt-secret"),
    )
    .unwrap()
}

fn rs256(private: &str, kid: Option<&str>, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    let pem = std::fs::read(fixture(private)).unwrap();
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_rsa_pem(&pem).unwrap()).unwrap()
}

async fn app(settings: &str) -> TestApp {
    let alpha = MockServer::start().await;
    Mock::given(path("/v1/chat/completions"))
        .respond_with(completion())
        .mount(&alpha)
        .await;
    let app = TestApp::builder()
        .provider(ProviderSpec::new("alpha", upstream_url(&alpha)))
        .settings(settings)
        .spawn()
        .await;
    // The mock lives as long as the process: the test only needs its answers.
    std::mem::forget(alpha);
    app
}

async fn chat(app: &TestApp, token: &str) -> u16 {
    app.client
        .post(app.url("/v1/chat/completions"))
        .bearer_auth(token)
        .json(&chat_body(TEST_MODEL))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn audience_and_issuer_are_checked_when_set() {
    let app = app("auth: {jwt: {hs256_secret: jwt-secret, audience: ai-gateway, issuer: 'https://idp.example'}}").await;
    let exp = now() + 300;
    let good = json!({"sub": "alice", "exp": exp, "aud": "ai-gateway", "iss": "https://idp.example"});
    assert_eq!(chat(&app, &hs256(&good)).await, 200);
    let listed = json!({"sub": "alice", "exp": exp, "aud": ["other", "ai-gateway"], "iss": "https://idp.example"});
    assert_eq!(chat(&app, &hs256(&listed)).await, 200);
    for (what, claims) in [
        (
            "another audience",
            json!({"sub": "a", "exp": exp, "aud": "billing", "iss": "https://idp.example"}),
        ),
        (
            "no audience",
            json!({"sub": "a", "exp": exp, "iss": "https://idp.example"}),
        ),
        (
            "another issuer",
            json!({"sub": "a", "exp": exp, "aud": "ai-gateway", "iss": "https://evil.example"}),
        ),
        ("no issuer", json!({"sub": "a", "exp": exp, "aud": "ai-gateway"})),
    ] {
        assert_eq!(chat(&app, &hs256(&claims)).await, 401, "{what}");
    }
}

#[tokio::test]
async fn not_before_is_honoured_and_the_leeway_is_at_most_five_seconds() {
    let app = app("auth: {jwt: {hs256_secret: jwt-secret}}").await;
    let early = json!({"sub": "alice", "exp": now() + 600, "nbf": now() + 60});
    assert_eq!(chat(&app, &hs256(&early)).await, 401, "a token not valid yet");
    let just_expired = json!({"sub": "alice", "exp": now() - 30});
    assert_eq!(chat(&app, &hs256(&just_expired)).await, 401, "expired 30 s ago");
    let skewed = json!({"sub": "alice", "exp": now() + 600, "nbf": now() + 2});
    assert_eq!(chat(&app, &hs256(&skewed)).await, 200, "within the leeway");
}

#[tokio::test]
async fn an_empty_or_missing_subject_is_refused() {
    let app = app("auth: {jwt: {hs256_secret: jwt-secret}}").await;
    for claims in [
        json!({"sub": "", "exp": now() + 300}),
        json!({"sub": "   ", "exp": now() + 300}),
        json!({"exp": now() + 300}),
    ] {
        assert_eq!(chat(&app, &hs256(&claims)).await, 401, "{claims}");
    }
}

#[tokio::test]
async fn a_jwks_file_holds_several_keys_for_rotation() {
    let app = app(&format!("auth: {{jwt: {{jwks_file: {}}}}}", fixture("jwks.json"))).await;
    let claims = json!({"sub": "alice", "exp": now() + 300});
    assert_eq!(
        chat(&app, &rs256("rs256_private.pem", Some("key-a"), &claims)).await,
        200
    );
    assert_eq!(
        chat(&app, &rs256("rs256_b_private.pem", Some("key-b"), &claims)).await,
        200
    );
    assert_eq!(
        chat(&app, &rs256("rs256_b_private.pem", None, &claims)).await,
        200,
        "no kid: every key is tried"
    );
    assert_eq!(
        chat(&app, &rs256("rs256_b_private.pem", Some("key-a"), &claims)).await,
        401,
        "a kid naming another key"
    );
    assert_eq!(
        chat(&app, &rs256("rs256_b_private.pem", Some("key-z"), &claims)).await,
        401,
        "an unknown kid"
    );
}

fn jwks_with(kids: &[&str]) -> Value {
    let all: Value = serde_json::from_slice(&std::fs::read(fixture("jwks.json")).unwrap()).unwrap();
    let keys: Vec<Value> = all["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| kids.contains(&k["kid"].as_str().unwrap()))
        .cloned()
        .collect();
    json!({ "keys": keys })
}

#[tokio::test]
async fn a_jwks_url_is_fetched_at_start_and_refreshed_in_the_background() {
    // Arrange: the identity provider publishes key-a only.
    let idp = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks_with(&["key-a"])))
        .mount(&idp)
        .await;
    let app = app(&format!(
        "auth: {{jwt: {{jwks_url: '{}/.well-known/jwks.json', jwks_refresh_seconds: 0.2}}}}",
        idp.uri()
    ))
    .await;
    let claims = json!({"sub": "alice", "exp": now() + 300});
    let a = rs256("rs256_private.pem", Some("key-a"), &claims);
    let b = rs256("rs256_b_private.pem", Some("key-b"), &claims);
    assert_eq!(chat(&app, &a).await, 200);
    assert_eq!(chat(&app, &b).await, 401);
    let fetched = idp.received_requests().await.unwrap().len();

    // Act: the provider rotates to key-b; then it goes down.
    idp.reset().await;
    Mock::given(method("GET"))
        .and(path("/.well-known/jwks.json"))
        .respond_with(ResponseTemplate::new(200).set_body_json(jwks_with(&["key-b"])))
        .mount(&idp)
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while chat(&app, &b).await != 200 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the rotated key was never fetched"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Assert: the old key is gone, and requests never waited on the URL.
    assert_eq!(chat(&app, &a).await, 401);
    idp.reset().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(500))
        .mount(&idp)
        .await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        chat(&app, &b).await,
        200,
        "a failed refresh keeps the last good key set"
    );
    assert!(fetched >= 1);
}

#[tokio::test]
async fn algorithm_confusion_and_unsigned_tokens_are_refused() {
    let app = app(&format!(
        "auth: {{jwt: {{rs256_public_key_file: {}}}}}",
        fixture("rs256_public.pem")
    ))
    .await;
    let claims = json!({"sub": "mallory", "exp": now() + 300});
    // HS256 signed with the RSA public key (which the attacker knows) as the HMAC secret.
    let public = std::fs::read(fixture("rs256_public.pem")).unwrap();
    let confused = jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(&public),
    )
    .unwrap();
    assert_eq!(chat(&app, &confused).await, 401);
    // alg: none, no signature.
    let b64 = |v: &Value| base64url(v.to_string().as_bytes());
    for header in [json!({"alg": "none", "typ": "JWT"}), json!({"alg": "None"})] {
        let unsigned = format!("{}.{}.", b64(&header), b64(&claims));
        assert_eq!(chat(&app, &unsigned).await, 401, "{header}");
    }
}

/// Unpadded base64url, enough to hand-craft a token.
fn base64url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

//! The generated OpenAPI document covers every route the gateway registers, and the docs UI is
//! served from the binary.

use std::collections::BTreeSet;

use crate::helpers::{TestApp, json};

/// Every path `http::configure` registers, read from its source so a new route cannot be added
/// without being documented. Static assets and the docs UI's own sub-paths are not API routes.
fn registered_routes() -> BTreeSet<String> {
    let source =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/mod.rs")).expect("read http/mod.rs");
    let call = regex::Regex::new(r#"add(?:_routes)?\(\s*cfg,\s*"([^"]+)""#).expect("pattern");
    call.captures_iter(&source)
        .map(|c| c[1].to_owned())
        .filter(|path| !path.starts_with("/static/") && !path.contains('{') && path != "/docs")
        .collect()
}

#[tokio::test]
async fn every_registered_route_is_in_the_openapi_document() {
    let app = TestApp::builder().spawn().await;
    let spec = json(app.get("/openapi.json").await).await;
    let documented: BTreeSet<String> = spec["paths"].as_object().expect("paths").keys().cloned().collect();
    let routes = registered_routes();
    assert!(routes.len() >= 14, "found only {routes:?}");
    let missing: Vec<&String> = routes.difference(&documented).collect();
    assert!(missing.is_empty(), "registered but not documented: {missing:?}");
    assert!(spec["components"]["schemas"]["ErrorBody"].is_object());
}

#[tokio::test]
async fn docs_ui_is_served_from_the_binary() {
    let app = TestApp::builder().spawn().await;
    let page = app.get("/docs/").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("swagger-ui"));
    assert_eq!(app.get("/docs/swagger-ui-bundle.js").await.status(), 200);
}

#[tokio::test]
async fn dashboard_is_served_at_the_root_without_credentials() {
    let app = TestApp::builder().settings("auth: {api_keys: [sk-x]}").spawn().await;
    let page = app.get("/").await;
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("<title>AI Gateway</title>"));
    assert_eq!(app.get("/static/app.js").await.status(), 200);
}

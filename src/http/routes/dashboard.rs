//! The dashboard at `/`: static files compiled into the binary, no build step. Open, like the
//! health endpoints; the page itself calls the API with the user's key.

use actix_web::HttpResponse;
use actix_web::http::header::{CACHE_CONTROL, CONTENT_TYPE};

const INDEX: &str = include_str!("../../../static/index.html");
const SCRIPT: &str = include_str!("../../../static/app.js");
const STYLE: &str = include_str!("../../../static/app.css");

fn file(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((CONTENT_TYPE, content_type))
        .insert_header((CACHE_CONTROL, "no-cache"))
        .body(body)
}

/// `GET /`.
#[utoipa::path(get, path = "/", tag = "operations", responses((status = 200, description = "The web dashboard", content_type = "text/html")))]
pub async fn index() -> HttpResponse {
    file("text/html; charset=utf-8", INDEX)
}

/// `GET /static/app.js`.
pub async fn script() -> HttpResponse {
    file("text/javascript; charset=utf-8", SCRIPT)
}

/// `GET /static/app.css`.
pub async fn style() -> HttpResponse {
    file("text/css; charset=utf-8", STYLE)
}

//! The console's stylesheet and script, compiled into the binary: no CDN, works offline.

use actix_web::{HttpResponse, get};

const CSS: &str = include_str!("../../static/ops.css");
const JS: &str = include_str!("../../static/ops.js");

#[get("/ops/static/ops.css")]
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=300"))
        .body(CSS)
}

#[get("/ops/static/ops.js")]
pub async fn script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header(("cache-control", "public, max-age=300"))
        .body(JS)
}
